"""A TensorIR pass: mark short innermost loops as unrolled.

Written with the schedule API (:class:`tvm.s_tir.Schedule`) inside a
``prim_func_pass``, so it applies to functions that still have ``T.sblock``s,
i.e. before the TensorIR lowering pipeline runs. The chapter shows
:func:`unroll_short_loops` as a cell a reader can edit; :func:`UnrollShortLoops`
checks its argument and wraps it in a pass.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import s_tir, tirx

from .. import checks

__teaching__ = ("unroll_short_loops",)


def unroll_short_loops(func, max_extent):
    """Return func with each innermost serial loop of extent <= max_extent marked
    as unrolled."""
    blocks = []
    tvm_ffi.structural_walk(func.body, [(s_tir.SBlock, blocks.append)], order="pre")
    names = [block.name_hint for block in blocks if block.name_hint != "root"]
    if not names:  # no blocks: already lowered, nothing a schedule can change
        return func
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    for name in names:
        loops = sch.get_loops(sch.get_sblock(name))
        if not loops:
            continue
        loop = sch.get(loops[-1])
        short = isinstance(loop.extent, tirx.IntImm) and loop.extent.value <= max_extent
        if short and loop.kind == tirx.ForKind.SERIAL:
            sch.unroll(loops[-1])
    return sch.mod["main"]


def UnrollShortLoops(max_extent: int = 4) -> "tvm.transform.Pass":  # noqa: N802
    """Return a ``prim_func_pass`` applying :func:`unroll_short_loops` to every
    TensorIR function (named like TVM's pass constructors).

    ``max_extent`` (an int >= 1) is the longest loop that gets unrolled.
    """
    max_extent = checks.positive_int("UnrollShortLoops", "max_extent", max_extent)

    def transform(func, _mod, _ctx):
        return unroll_short_loops(func, max_extent)

    return tirx.transform.prim_func_pass(transform, opt_level=0,
                                         name="UnrollShortLoops")
