"""Assignment 2: a numerically safe softmax, and a vector schedule."""

from __future__ import annotations

import numpy as np

from assignments.grading import Part

TITLE = "Softmax as tensor expressions, and a schedule for vector addition"
SOURCES = (("sec_operators_expressions", 1), ("sec_operators_vector_add", 2))
STATEMENT = """
**Part 1 (5 points).** Write `softmax(cols)`: a PrimFunc with a float32 input
`X` of shape `(m, cols)`, where `m` is a *symbolic* number of rows
(`te.var("m")`), and an output of the same shape holding the softmax of each
row. Build it from three tensor expressions (row maximum; exponentials minus
the maximum, with their row sum; division). The check runs one compiled
function on 1, 3 and 50 rows, including rows with entries near +-1000: a
softmax that does not subtract the row maximum overflows there.

**Part 2 (5 points).** Write `schedule_vadd(n)`: it returns a
`tvm.s_tir.Schedule` of `C = A + B` (float32, length `n`, a multiple of 64)
whose outer loop runs in parallel and whose inner loop is vectorized with
`d2lcc.cpu.vector_lanes()` lanes. The check compiles it, compares the result
with NumPy, and reads the loop kinds in the scheduled TensorIR and the vector
additions in the assembly.
"""


def _softmax_reference(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_softmax(ns) -> None:
    import tvm

    import d2lcc

    cols = 16
    func = ns["softmax"](cols)
    assert isinstance(func, tvm.tirx.PrimFunc), "softmax must return a PrimFunc"
    rows = func.params[0].shape[0]  # TVM 0.27: the parameters are buffers
    assert not isinstance(rows, tvm.tirx.IntImm), (
        f"the number of rows is the constant {rows}; make it symbolic (te.var)")
    call = tvm.compile(func, target=d2lcc.target.host())
    rng = np.random.default_rng(3)
    for m in (1, 3, 50):
        x = rng.standard_normal((m, cols)).astype(np.float32)
        x[0] *= 1000  # exp overflows unless the row maximum is subtracted
        out = tvm.runtime.tensor(np.zeros_like(x))
        call(tvm.runtime.tensor(x), out)
        got, want = out.numpy(), _softmax_reference(x.astype(np.float64))
        assert np.all(np.isfinite(got)), (
            f"{m} rows: the result holds inf or NaN (large entries overflow exp)")
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), (
            f"{m} rows: largest error {np.abs(got - want).max():.3g}")


def check_schedule(ns) -> None:
    import tvm

    import d2lcc

    for n in (4096, 1 << 16):
        sch = ns["schedule_vadd"](n)
        assert isinstance(sch, tvm.s_tir.Schedule), (
            "schedule_vadd must return a tvm.s_tir.Schedule")
        script = sch.mod.script()
        for kind in ("T.parallel", "T.vectorized"):
            assert kind in script, f"n={n}: the scheduled function has no {kind} loop"
        lib = tvm.compile(sch.mod, target=d2lcc.target.host())
        a, b = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
        c = tvm.runtime.tensor(np.zeros(n, np.float32))
        lib(tvm.runtime.tensor(a), tvm.runtime.tensor(b), c)
        assert np.array_equal(c.numpy(), a + b), f"n={n}: C is not A + B"
    asm = lib.mod.inspect_source("asm")
    lanes = d2lcc.cpu.vector_lanes()
    vector_add = {16: "%zmm", 8: "%ymm", 4: ".4s"}.get(lanes, "%xmm")
    assert any(("add" in ln and vector_add in ln) for ln in asm.splitlines()), (
        f"no {lanes}-lane vector addition ({vector_add}) in the assembly")


PARTS = (
    Part("softmax", 5, ("softmax",), check_softmax),
    Part("schedule_vadd", 5, ("schedule_vadd",), check_schedule),
)
