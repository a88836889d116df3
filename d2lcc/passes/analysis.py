"""Small analyses of IRModules: counts of Relax bindings, TensorIR loops, accesses."""

from __future__ import annotations

from collections import Counter

import tvm
import tvm_ffi
from tvm import relax, tirx


def _check_module(func: str, mod) -> None:
    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"{func}: mod must be a tvm.IRModule, got {type(mod).__name__}")


def count_relax_bindings(mod: "tvm.IRModule") -> int:
    """Return how many bindings (``v = ...`` lines) the Relax functions of ``mod``
    hold."""
    _check_module("count_relax_bindings", mod)
    total = 0
    for func in mod.functions.values():
        if isinstance(func, relax.Function) and isinstance(func.body, relax.SeqExpr):
            total += sum(len(block.bindings) for block in func.body.blocks)
    return total


def count_tir_loops(mod: "tvm.IRModule") -> int:
    """Return how many ``for`` loops the TensorIR functions of ``mod`` hold."""
    _check_module("count_tir_loops", mod)
    loops = []
    for func in mod.functions.values():
        if isinstance(func, tirx.PrimFunc):
            tvm_ffi.structural_walk(func.body, [(tirx.For, loops.append)])
    return len(loops)


def count_memory_accesses(func: "tirx.PrimFunc") -> dict[str, tuple[int, int]]:
    """Count the loads and stores one call of ``func`` executes, per buffer.

    Each load or store is weighted by the product of the extents of the loops
    around it (loops must have constant extents; both branches of an ``if``
    count, and so does a reduction block's init at every iteration: the result
    is an upper bound where there are conditions or reductions).

    Returns
    -------
    dict
        Buffer name -> ``(loads, stores)``.
    """
    if not isinstance(func, tirx.PrimFunc):
        raise TypeError("count_memory_accesses: func must be a tirx.PrimFunc, "
                        f"got {type(func).__name__}")
    loads: Counter = Counter()
    stores: Counter = Counter()
    _count(func.body, 1, loads, stores)
    names = sorted(set(loads) | set(stores))
    return {n: (loads[n], stores[n]) for n in names}


def _count(node, weight: int, loads: Counter, stores: Counter) -> None:
    if isinstance(node, tirx.For):
        if not isinstance(node.extent, tirx.IntImm):
            raise ValueError(f"count_memory_accesses: func has a loop {node.loop_var} "
                             f"with a non-constant extent {node.extent}")
        _count(node.body, weight * int(node.extent.value), loads, stores)
        return
    if isinstance(node, tirx.While):
        raise ValueError("count_memory_accesses: func has a while loop, whose trip "
                         "count is unknown")
    if isinstance(node, tirx.BufferStore):
        stores[node.buffer.name] += weight
        _count_loads([node.value, *node.indices], weight, loads)
        return
    # Any other statement: visit its child statements, count loads in its expressions.
    children = _child_stmts(node)
    if children is None:
        _count_loads([node], weight, loads)
        return
    for child in children:
        _count(child, weight, loads, stores)


def _child_stmts(node):
    if isinstance(node, tirx.SeqStmt):
        return list(node.seq)
    if isinstance(node, tvm.s_tir.SBlockRealize):
        return [node.block]
    if isinstance(node, tvm.s_tir.SBlock):
        return [s for s in (node.init, node.body) if s is not None]
    if isinstance(node, (tirx.LetStmt, tirx.AttrStmt, tirx.DeclBuffer,
                         tirx.AllocBuffer)):
        return [node.body] if getattr(node, "body", None) is not None else []
    if isinstance(node, tirx.IfThenElse):
        return [s for s in (node.then_case, node.else_case) if s is not None]
    return None


def _count_loads(exprs, weight: int, loads: Counter) -> None:
    # A TensorIR buffer load is an ``ir.TensorLoad`` whose source is the buffer.
    def on_load(load):
        loads[getattr(load.source, "name", str(load.source))] += weight

    for expr in exprs:
        tvm_ffi.structural_walk(expr, [(tvm.ir.expr.TensorLoad, on_load)])
