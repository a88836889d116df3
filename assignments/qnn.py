"""Assignment 4: per-channel quantization parameters, and qnn.mul lowered by hand."""

from __future__ import annotations

import numpy as np

from assignments.grading import Part

TITLE = "Per-channel parameters, and the lowering of a quantized product"
SOURCES = (("sec_qnn_basics", 2), ("sec_qnn_elementwise", 1))
STATEMENT = r"""
**Part 1 (4 points).** Write `per_channel_params(w, axis)` without a Python
loop over the channels: the asymmetric `uint8` scale and zero point of every
slice of `w` along `axis`, with the rule of :numref:`sec_qnn_basics`
(`lo = min(min(slice), 0)`, `hi = max(max(slice), 0)`,
`scale = (hi - lo) / 255`, `zero_point = clip(0 - round(lo / scale), 0, 255)`).
Return two arrays shaped to broadcast against `w` (size 1 on every axis but
`axis`); zero points as integers. The check compares with a loop over the
channels for several shapes and axes (negative ones too).

**Part 2 (6 points).** Write `mul_module(shape_a, shape_b, lhs_scale,
lhs_zero_point, rhs_scale, rhs_zero_point, output_scale, output_zero_point)`:
a Relax module whose `main(a, b)` takes two `uint8` tensors and computes
`qnn.mul` from plain Relax operators only (`astype`, `subtract`, `multiply`,
`round`, `add`, `clip`; no `qnn` operator), bit for bit as
:eqref:`eq_qnn_mul` in :numref:`sec_qnn_elementwise`. Round the multiplier
$M = s_a s_b / s_o$ to float32 once, as the dialect does
(`float(np.float32(...))`). The check runs your module on every pair of
`uint8` values for three sets of parameters, one of which saturates, and
compares with `d2lcc.qnn.reference.mul`.
"""


def _params_loop(w: np.ndarray, axis: int):
    slices = np.moveaxis(w, axis, 0)
    shape = [1] * w.ndim
    shape[axis] = -1
    scales, zps = [], []
    for c in slices:
        lo, hi = min(float(c.min()), 0.0), max(float(c.max()), 0.0)
        s = (hi - lo) / 255
        scales.append(s)
        zps.append(int(np.clip(0 - np.round(lo / s), 0, 255)))
    return np.array(scales).reshape(shape), np.array(zps).reshape(shape)


def check_params(ns) -> None:
    rng = np.random.default_rng(11)
    for shape, axis in (((8, 3, 3, 3), 0), ((4, 6), 1), ((5, 2, 7), -1),
                        ((3, 4, 2), 1)):
        w = rng.standard_normal(shape).astype(np.float32) * rng.uniform(0.1, 3)
        w[0] = np.abs(w[0])  # a slice without negative values (lo = 0)
        scales, zps = (np.asarray(v) for v in ns["per_channel_params"](w, axis))
        want_s, want_z = _params_loop(w, axis % w.ndim)
        label = f"shape {shape}, axis {axis}"
        assert scales.shape == want_s.shape, (
            f"{label}: scales have shape {scales.shape}, expected {want_s.shape}")
        assert zps.shape == want_z.shape, (
            f"{label}: zero points have shape {zps.shape}, expected {want_z.shape}")
        assert np.allclose(scales, want_s, rtol=1e-6), f"{label}: scales differ"
        assert np.issubdtype(zps.dtype, np.integer), f"{label}: zero points not ints"
        assert np.array_equal(zps, want_z), f"{label}: zero points differ"


def check_mul(ns) -> None:
    import d2lcc
    from d2lcc import ir
    from d2lcc.qnn import reference

    grid = np.arange(256, dtype=np.uint8)
    a, b = grid.reshape(256, 1), grid.reshape(1, 256)
    settings = ((0.1, 128, 0.05, 100, 0.2, 120), (0.02, 0, 0.03, 255, 0.01, 7),
                (0.5, 130, 0.5, 120, 0.001, 128))  # the last one saturates
    for params in settings:
        mod = ns["mul_module"]([256, 1], [1, 256], *params)
        ops = ir.op_names(mod)
        assert not [op for op in ops if "qnn" in op], (
            f"main still calls qnn operators: {sorted(set(ops))}")
        got = np.asarray(d2lcc.execute.run(mod, a, b))
        want = reference.mul(a, b, *params)
        assert got.dtype == np.uint8, f"main returns {got.dtype}, not uint8"
        wrong = int(np.count_nonzero(got.astype(int) != want.astype(int)))
        assert wrong == 0, (
            f"parameters {params}: {wrong} of 65536 products differ from "
            f"qnn.reference.mul, by up to "
            f"{np.abs(got.astype(int) - want.astype(int)).max()}")


PARTS = (
    Part("per_channel_params", 4, ("per_channel_params",), check_params),
    Part("mul_module", 6, ("mul_module",), check_mul),
)
