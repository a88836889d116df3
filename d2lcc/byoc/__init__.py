"""Bring Your Own Codegen: hand matmul and conv2d regions to our own backends.

The chapter "Compiling for Hardware" builds this package in the four steps of
TVM's BYOC flow:

- :mod:`d2lcc.byoc.patterns`: step 1, the dataflow patterns (matmul or conv2d,
  then an optional bias and ReLU) and the checks that refuse what our kernels
  cannot run (:func:`pattern_table`, :func:`register_patterns`).
- :mod:`d2lcc.byoc.partition`: step 2, ``FuseOpsByPattern`` and
  ``MergeCompositeFunctions`` (:func:`partition`).
- :mod:`d2lcc.byoc.kernels` and :mod:`d2lcc.byoc.region`: what one composite
  computes (:class:`Kernel`, with a NumPy :func:`reference`) and what one
  offloaded region calls, in order.
- :mod:`d2lcc.byoc.c_codegen`: step 3, the codegen ``d2lcc_c``, which writes C.
- :mod:`d2lcc.byoc.library`: step 3 again, the codegen ``d2lcc_blas``, which
  calls a library (NumPy's BLAS) through registered packed functions.
- :mod:`d2lcc.byoc.build`: step 4, :func:`register` the codegens,
  :func:`compile` a network with its regions offloaded, :func:`export_library`
  and :func:`run_exported` (load and run in a fresh process).
"""

from .build import CFLAGS, compile, export_library, offload, register, run_exported
from .c_codegen import kernel_source
from .kernels import Kernel, describe, reference
from .partition import partition
from .patterns import CODEGENS, UNSUPPORTED, pattern_table, register_patterns

__all__ = [
    "CFLAGS",
    "CODEGENS",
    "Kernel",
    "UNSUPPORTED",
    "compile",
    "describe",
    "export_library",
    "kernel_source",
    "offload",
    "partition",
    "pattern_table",
    "reference",
    "register",
    "register_patterns",
    "run_exported",
]
