"""Passes and pass instruments written in the chapter "The Pass Infrastructure".

- :mod:`d2lcc.passes.levels`: give an existing pass an opt level of our choice.
- :mod:`d2lcc.passes.instruments`: record which passes ran, and how the IR grew or
  shrank.
- :mod:`d2lcc.passes.timing`: read TVM's pass timing report into numbers.
- :mod:`d2lcc.passes.analysis`: count Relax bindings, TensorIR loops and memory
  accesses.
- :mod:`d2lcc.passes.relax_simplify`: remove ``x * 1``, ``x + 0``, ... from Relax
  functions.
- :mod:`d2lcc.passes.tir_unroll`: mark short innermost TensorIR loops as unrolled.
- :mod:`d2lcc.passes.pipeline`: TVM's CPU pipeline with our passes in front.
- :func:`source`: the source of any of these, for printing in the book.
"""

from .analysis import count_memory_accesses, count_relax_bindings, count_tir_loops
from .instruments import IRSizeRecorder, PassRecorder
from .levels import with_opt_level
from .pipeline import cpu_pipeline_with
from .relax_simplify import SimplifyIdentityArith, simplify_identity_arith_dpl
from .source import source
from .timing import PassTime, parse_pass_timing
from .tir_unroll import UnrollShortLoops

__all__ = [
    "IRSizeRecorder",
    "PassRecorder",
    "PassTime",
    "SimplifyIdentityArith",
    "UnrollShortLoops",
    "count_memory_accesses",
    "count_relax_bindings",
    "cpu_pipeline_with",
    "count_tir_loops",
    "parse_pass_timing",
    "simplify_identity_arith_dpl",
    "source",
    "with_opt_level",
]
