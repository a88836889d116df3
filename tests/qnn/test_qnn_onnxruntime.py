"""qnn ops compiled by TVM against onnxruntime's QuantizeLinear, DequantizeLinear,
QLinearConv and QLinearMatMul.

Where rounding conventions may differ (onnxruntime's requantization inside
QLinearConv/QLinearMatMul), results may differ by one unit; the tests allow
exactly that and no more. Weights stay in [-64, 63]: on AVX2 without VNNI,
onnxruntime saturates int16 pair sums for full-range int8 weights.
"""

import numpy as np
import pytest

from d2lcc import qnn
from d2lcc.qnn import onnxrt


def _assert_within_one_unit(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
    message = f"{int((diff > 1).sum())} values differ by more than 1 (max {diff.max()})"
    assert diff.max() <= 1, message


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_matches_quantize_linear(run, rng, dtype, per_channel):
    x = rng.normal(0, 6, (2, 4, 9)).astype("float32")
    n = 4 if per_channel else None
    s = np.asarray(rng.uniform(0.02, 0.2, n), np.float32)
    offset = 100 if dtype == "uint8" else 0
    z = np.asarray(rng.integers(-20, 20, n) + offset, np.int32)
    got = run(lambda v: qnn.quantize(v, s, z, out_dtype=dtype, axis=1), x)
    _assert_within_one_unit(got, onnxrt.quantize_linear(x, s, z, dtype, axis=1))


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_dequantize_matches_dequantize_linear(run, rng, dtype, per_channel):
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    q = rng.integers(lo, hi + 1, (3, 5, 4)).astype(dtype)
    n = 5 if per_channel else None
    s = np.asarray(rng.uniform(0.02, 0.2, n), np.float32)
    z = np.asarray(rng.integers(lo, hi + 1, n), np.int32)
    got = run(lambda v: qnn.dequantize(v, s, z, axis=1), q)
    expected = onnxrt.dequantize_linear(q, s, z, axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("groups,padding,strides", [
    (1, (1, 1, 1, 1), (1, 1)), (2, (0, 1, 2, 0), (2, 1))])
def test_conv2d_requantize_matches_qlinear_conv(run, rng, per_channel, groups, padding,
                                                strides):
    x = rng.integers(0, 256, (1, 4, 7, 8)).astype("uint8")
    w = rng.integers(-64, 64, (6, 4 // groups, 3, 3)).astype("int8")
    xs, xz, ys, yz = np.float32(0.04), 131, np.float32(0.6), 117
    ws = np.asarray(rng.uniform(0.005, 0.02, 6 if per_channel else None), np.float32)
    wz = np.zeros(6 if per_channel else (), np.int32)

    def make(d, k):
        acc = qnn.conv2d(d, k, xz, wz, xs, ws, strides=strides, padding=padding,
                         groups=groups)
        from tvm import relax

        acc = relax.BlockBuilder.current().emit(acc)
        return qnn.requantize(acc, xs * ws, 0, ys, yz, out_dtype="uint8", axis=1)

    got = run(make, x, w)
    expected = onnxrt.qlinear_conv(x, xs, xz, w, ws, wz.astype("int8"), ys, yz, strides,
                                   padding, groups=groups)
    _assert_within_one_unit(got, expected)


def test_dense_requantize_matches_qlinear_matmul(run, rng):
    a = rng.integers(0, 256, (6, 40)).astype("uint8")
    b = rng.integers(-64, 64, (40, 9)).astype("int8")
    az, bz, yz = 120, -3, 98
    as_, bs, ys = np.float32(0.03), np.float32(0.01), np.float32(0.4)

    def make(d, k):
        from tvm import relax

        acc = relax.BlockBuilder.current().emit(qnn.dense(d, k, az, bz, as_, bs))
        return qnn.requantize(acc, as_ * bs, 0, ys, yz, out_dtype="uint8")

    got = run(make, a, np.ascontiguousarray(b.T))
    _assert_within_one_unit(got, onnxrt.qlinear_matmul(a, as_, az, b, bs, bz, ys, yz))
