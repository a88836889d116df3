"""Assignment 6: int8 dot products as the hardware computes them, and code paths."""

from __future__ import annotations

import numpy as np

from assignments.grading import Part

TITLE = "int8 dot products: what the instructions compute, and which ones to use"
SOURCES = (("sec_many_targets", 4), ("sec_deploy", 1))
STATEMENT = """
The int8 kernels of the hardware chapter (`d2lcc.int8`) multiply `uint8`
activations by `int8` weights. On AVX2, `vpmaddubsw` multiplies byte pairs and
adds each pair into a *saturating* `int16`; `vpmaddwd` (with a vector of ones)
adds two of those `int16` into an `int32`. VNNI's `vpdpbusd` (AVX-512 VNNI and
AVX-VNNI) and Arm's `sdot`/`udot` (the `dotprod` extension) add four products
straight into `int32`.

**Part 1 (4 points).** Write `avx2_dot(a, b)`: the `int32` dot product of a
`uint8` vector `a` and an `int8` vector `b` (length a multiple of 4) exactly
as the AVX2 pair of instructions computes it, saturation included. The check
compares with an emulation of the instructions on random and extreme vectors.

**Part 2 (3 points).** Write `best_int8_isa(features)`: given a set of CPU
feature names as `d2lcc.env().features` reports them, return the instruction
family an int8 kernel should use: `"avx512_vnni"`, `"avx_vnni"`, `"avx2"`,
`"dotprod"` (Arm), or `None` when there is none of them. Prefer the widest
family the CPU has. The check tries several CPUs and this machine.

**Part 3 (3 points).** Write `int8_dot(k)`: a PrimFunc of `C[i] = sum_q
A[i, q] * B[q]` for a `uint8` `A` of shape `(16, k)`, an `int8` `B` of
shape `(k,)` and an `int32` `C`, exact for every input (no `int16` anywhere).
The check runs it here on extreme inputs and compiles it for Graviton2 and
Cascade Lake, machines this one may not be: compiling needs only the target.
"""


def _avx2_reference(a: np.ndarray, b: np.ndarray) -> int:
    prods = a.astype(np.int32) * b.astype(np.int32)
    pairs = np.clip(prods[0::2] + prods[1::2], -32768, 32767)  # vpmaddubsw
    return int(pairs.sum(dtype=np.int64))  # vpmaddwd and int32 adds


def check_avx2(ns) -> None:
    rng = np.random.default_rng(13)
    cases = [(rng.integers(0, 256, 64, dtype=np.uint8),
              rng.integers(-128, 128, 64, dtype=np.int8)) for _ in range(20)]
    cases.append((np.full(32, 255, np.uint8), np.full(32, 127, np.int8)))
    cases.append((np.full(32, 255, np.uint8), np.full(32, -128, np.int8)))
    cases.append((np.full(8, 3, np.uint8), np.full(8, -2, np.int8)))
    for a, b in cases:
        got, want = int(ns["avx2_dot"](a, b)), _avx2_reference(a, b)
        assert got == want, (
            f"avx2_dot of a={a[:4]}..., b={b[:4]}... is {got}; the instructions "
            f"give {want} (exact: {int(a.astype(np.int64) @ b.astype(np.int64))})")


_CPUS = (
    ({"avx2", "fma", "avx512f", "avx512_vnni"}, "avx512_vnni"),
    ({"avx2", "avx_vnni"}, "avx_vnni"),
    ({"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}, "avx512_vnni"),
    ({"avx2", "fma", "avx512f"}, "avx2"),
    ({"avx2"}, "avx2"),
    ({"neon", "dotprod"}, "dotprod"),
    ({"neon"}, None),
    (set(), None),
)


def _best(features) -> str | None:
    return next((f for _, f in _CPUS if f and f in features), None)


def check_isa(ns) -> None:
    import d2lcc

    for features, want in _CPUS + ((set(d2lcc.env().features),
                                    _best(d2lcc.env().features)),):
        got = ns["best_int8_isa"](set(features))
        assert got == want, (
            f"best_int8_isa({sorted(features)}) = {got!r}, expected {want!r}")


def check_int8_dot(ns) -> None:
    import tvm

    import d2lcc
    from d2lcc.execute import run_prim_func

    k = 256
    func = ns["int8_dot"](k)
    assert isinstance(func, tvm.tirx.PrimFunc), "int8_dot must return a PrimFunc"
    rng = np.random.default_rng(17)
    a = rng.integers(0, 256, (16, k), dtype=np.uint8)
    a[0], a[1] = 255, 255
    b = rng.integers(-128, 128, k, dtype=np.int8)
    b[: k // 2] = 127
    got = run_prim_func(func, a, b, out_shape=(16,), out_dtype="int32")
    want = a.astype(np.int64) @ b.astype(np.int64)
    assert np.array_equal(got, want), (
        f"C differs from the exact dot products by up to {np.abs(got - want).max()}")
    for name in ("graviton2", "cascadelake"):
        tvm.compile(func, target=d2lcc.target.named(name))


PARTS = (
    Part("avx2_dot", 4, ("avx2_dot",), check_avx2),
    Part("best_int8_isa", 3, ("best_int8_isa",), check_isa),
    Part("int8_dot", 3, ("int8_dot",), check_int8_dot),
)
