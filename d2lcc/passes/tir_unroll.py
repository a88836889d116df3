"""A TensorIR pass: mark short innermost loops as unrolled.

Written with the schedule API (:class:`tvm.s_tir.Schedule`) inside a
``prim_func_pass``, so it applies to functions that still have ``T.sblock``s,
i.e. before the TensorIR lowering pipeline runs.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import s_tir, tirx


def _block_names(func) -> list[str]:
    names: list[str] = []
    tvm_ffi.structural_walk(func.body, [(s_tir.SBlock, lambda b: names.append(b.name_hint))], order="pre")
    return [n for n in names if n != "root"]


def unroll_short_loops(func: "tirx.PrimFunc", max_extent: int = 4) -> "tirx.PrimFunc":
    """Return ``func`` with every innermost serial loop of extent <= ``max_extent`` unrolled."""
    if not isinstance(max_extent, int) or isinstance(max_extent, bool) or max_extent < 1:
        raise ValueError(f"UnrollShortLoops: max_extent={max_extent!r} must be a positive int")
    names = _block_names(func)
    if not names:
        return func
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    for name in names:
        loops = sch.get_loops(sch.get_sblock(name))
        if not loops:
            continue
        loop = sch.get(loops[-1])
        extent = loop.extent
        if loop.kind == tirx.ForKind.SERIAL and isinstance(extent, tirx.IntImm) and extent.value <= max_extent:
            sch.unroll(loops[-1])
    return sch.mod["main"].with_attrs(func.attrs) if func.attrs else sch.mod["main"]


def UnrollShortLoops(max_extent: int = 4) -> "tvm.transform.Pass":  # noqa: N802 (named like TVM's pass constructors)
    """Return a ``prim_func_pass`` applying :func:`unroll_short_loops` to every TensorIR function."""
    if not isinstance(max_extent, int) or isinstance(max_extent, bool) or max_extent < 1:
        raise ValueError(f"UnrollShortLoops: max_extent={max_extent!r} must be a positive int")

    def transform(func, _mod, _ctx):
        return unroll_short_loops(func, max_extent)

    return tirx.transform.prim_func_pass(transform, opt_level=0, name="UnrollShortLoops")
