"""Assignment 1: a first kernel, checked here and compiled for other CPUs."""

from __future__ import annotations

import numpy as np

from assignments.grading import Part

TITLE = "A first kernel, and the same kernel for three CPUs"
SOURCES = (("sec_vector_add", 2), ("sec_install", 2), ("sec_deploy", 1))
STATEMENT = """
**Part 1 (4 points).** Write `axpy(n, alpha)`: it returns a TensorIR function
(a `tvm.tirx.PrimFunc`, from TVMScript or from `te.create_prim_func`) with
three float32 buffers `A`, `B`, `C` of shape `(n,)` that computes
`C[i] = alpha * A[i] + B[i]`. The check compiles it for this machine and
compares it with NumPy for several `n` and `alpha`.

**Part 2 (4 points).** Write `assembly_for(func, name)`: it compiles the
PrimFunc `func` for the named target `d2lcc.target.named(name)` (`"haswell"`,
`"graviton2"`, ...) and returns the assembly text. The check reads the vector
registers in what you return: 256-bit `ymm` registers for Haswell, Arm
`v` registers with four float lanes (`.4s`) for Graviton2. Nothing compiled for
Graviton2 can run here: say in a comment why the check can still read it.
"""


def _vector_add(n: int):
    from tvm import te

    a = te.placeholder((n,), "float32", name="A")
    b = te.placeholder((n,), "float32", name="B")
    c = te.compute((n,), lambda i: a[i] + b[i], name="C")
    return te.create_prim_func([a, b, c])


def check_axpy(ns) -> None:
    import tvm

    from d2lcc.execute import run_prim_func

    rng = np.random.default_rng(7)
    for n, alpha in ((1, 2.0), (17, -0.5), (1000, 3.25)):
        func = ns["axpy"](n, alpha)
        assert isinstance(func, tvm.tirx.PrimFunc), (
            f"axpy({n}, {alpha}) returned {type(func).__name__}, not a PrimFunc")
        assert len(func.params) == 3, "axpy's function takes A, B and C"
        a, b = rng.standard_normal((2, n)).astype(np.float32)
        got = run_prim_func(func, a, b, out_shape=(n,))
        want = np.float32(alpha) * a + b
        assert np.allclose(got, want, rtol=1e-6, atol=1e-6), (
            f"axpy({n}, {alpha}) is wrong: largest error "
            f"{np.abs(got - want).max():.3g}")


def check_assembly(ns) -> None:
    func = _vector_add(1024)
    haswell = ns["assembly_for"](func, "haswell")
    graviton = ns["assembly_for"](func, "graviton2")
    for name, text in (("haswell", haswell), ("graviton2", graviton)):
        assert isinstance(text, str) and len(text) > 100, (
            f"assembly_for(func, {name!r}) must return the assembly as a string")
    assert "%ymm" in haswell, "no ymm register in the Haswell assembly"
    assert "%" not in graviton and ".4s" in graviton, (
        "the Graviton2 assembly should use Arm registers such as v0.4s; "
        "was it compiled for this machine instead?")


PARTS = (
    Part("axpy", 4, ("axpy",), check_axpy),
    Part("assembly_for", 4, ("assembly_for",), check_assembly),
)
