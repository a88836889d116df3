"""BYOC step 2: cut the regions our patterns match out of a module.

:func:`partition_for` (shown in the book) runs the two passes every Relax
BYOC backend runs: ``FuseOpsByPattern`` wraps each match in a composite
function, and ``MergeCompositeFunctions`` groups neighbouring composites into
one function per region, marked ``Codegen=<name>`` for ``RunCodegen``.
:func:`partition` checks its arguments and calls it.
"""

from __future__ import annotations

from .. import checks
from .patterns import CODEGENS, UNSUPPORTED, pattern_table

__teaching__ = ("partition_for",)


def partition_for(mod, codegen, unsupported="error"):
    """Group what codegen's patterns match into functions marked for codegen."""
    from tvm import relax

    patterns = pattern_table(codegen, unsupported)
    mod = relax.transform.FuseOpsByPattern(patterns, bind_constants=False)(mod)
    return relax.transform.MergeCompositeFunctions()(mod)


def partition(mod, codegen: str = "d2lcc_c", unsupported: str = "error"):
    """Return ``mod`` with every matmul/conv2d region our kernels can run offloaded.

    Parameters
    ----------
    mod
        A Relax module whose ``main`` holds a dataflow block (TVM's importers
        write one); weights may be constants or parameters.
    codegen
        ``"d2lcc_c"`` (generated C) or ``"d2lcc_blas"`` (calls into NumPy's BLAS).
    unsupported
        What to do with a match the kernels cannot run: ``"error"`` raises a
        ValueError naming the operator and the problem, ``"tvm"`` leaves it to TVM.
    """
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"byoc.partition: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    checks.one_of("byoc.partition", "codegen", codegen, CODEGENS)
    checks.one_of("byoc.partition", "unsupported", unsupported, UNSUPPORTED)
    try:
        return partition_for(mod, codegen, unsupported)
    except ValueError as err:
        message = str(err)
        start = message.find("byoc.partition:")
        if start < 0:
            raise
        # the check's error crosses TVM's C++ pass; keep its message, drop the trace
        raise ValueError(message[start:].splitlines()[0]) from None
