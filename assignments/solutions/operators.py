"""Assignment 2: reference solution (course staff only)."""

import tvm
from tvm import te

import d2lcc


def softmax(cols):
    """A PrimFunc: the softmax of each row of a float32 (m, cols) input, m symbolic."""
    m = te.var("m")
    X = te.placeholder((m, cols), "float32", name="X")
    k = te.reduce_axis((0, cols), name="k")
    row_max = te.compute((m,), lambda i: te.max(X[i, k], axis=k), name="row_max")
    E = te.compute((m, cols), lambda i, j: te.exp(X[i, j] - row_max[i]), name="E")
    k2 = te.reduce_axis((0, cols), name="k2")
    row_sum = te.compute((m,), lambda i: te.sum(E[i, k2], axis=k2), name="row_sum")
    Y = te.compute((m, cols), lambda i, j: E[i, j] / row_sum[i], name="Y")
    return te.create_prim_func([X, Y])


def schedule_vadd(n):
    """A tvm.s_tir.Schedule of C = A + B: outer loop parallel, inner loop vectorized."""
    A = te.placeholder((n,), "float32", name="A")
    B = te.placeholder((n,), "float32", name="B")
    C = te.compute((n,), lambda i: A[i] + B[i], name="C")
    sch = tvm.s_tir.Schedule(te.create_prim_func([A, B, C]))
    (i,) = sch.get_loops(sch.get_sblock("C"))
    outer, inner = sch.split(i, factors=[None, d2lcc.cpu.vector_lanes()])
    sch.parallel(outer)
    sch.vectorize(inner)
    return sch
