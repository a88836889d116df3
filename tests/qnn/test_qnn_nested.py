"""Builders accept any Relax expression: nested calls no BlockBuilder has emitted yet.

Every operator is built around another call, lowered, compiled and compared
with the NumPy references, and the common chains with onnxruntime.
"""

import numpy as np
import pytest
from tvm import relax

from d2lcc import qnn
from d2lcc.qnn import onnxrt
from d2lcc.qnn import reference as ref


def _ints(rng, shape, dtype, lo=None, hi=None):
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def test_quantize_of_a_plain_relax_call_and_dequantize_around_it(run, rng):
    x = rng.normal(0, 4, (3, 5)).astype(np.float32)

    def make(v):
        q = qnn.quantize(relax.op.multiply(v, v), 0.2, 3, out_dtype="int8")
        return qnn.dequantize(q, 0.2, 3)

    expected = ref.dequantize(ref.quantize(x * x, 0.2, 3, "int8"), 0.2, 3)
    np.testing.assert_array_equal(run(make, x), expected)


def test_requantize_of_conv2d_and_dense(run, rng):
    d = _ints(rng, (1, 4, 6, 6), "uint8")
    w = _ints(rng, (3, 4, 3, 3), "int8")
    m = _ints(rng, (2, 7), "int8")
    u = _ints(rng, (5, 7), "uint8")

    def make(x, k, a, b):
        conv = qnn.conv2d(x, k, 9, 0, 0.1, 0.02, padding=1)
        y = qnn.requantize(conv, 0.002, 0, 0.5, 4, out_dtype="uint8", axis=1)
        mm = qnn.requantize(qnn.dense(a, b, -3, 100, 0.1, 0.1), 0.01, 0, 0.3, -2,
                            compute="fixed_point")
        return relax.Tuple([y, mm])

    got_conv, got_dense = run(make, d, w, m, u)
    acc = ref.conv2d(d, w, 9, 0, padding=(1, 1))
    np.testing.assert_array_equal(got_conv, ref.requantize(acc, 0.002, 0, 0.5, 4,
                                                           "uint8", axis=1))
    expected = ref.requantize(ref.dense(m, u, -3, 100), 0.01, 0, 0.3, -2,
                              compute="fixed_point")
    np.testing.assert_array_equal(got_dense, expected)


def test_add_mul_concatenate_of_nested_calls(run, rng):
    a = _ints(rng, (2, 3), "uint8")
    b = _ints(rng, (2, 3), "int32", -5000, 5000)
    qp = (0.05, 10, 0.07, 128, 0.1, 100)

    def make(x, y):
        y8 = qnn.requantize(y, 0.001, 0, 0.07, 128, out_dtype="uint8")
        s = qnn.add(x, y8, *qp)
        p = qnn.mul(qnn.requantize(x, 0.05, 10, 0.05, 12, out_dtype="uint8"), y8,
                    0.05, 12, 0.07, 128, 0.1, 100)
        return qnn.concatenate([s, p, x], [0.1, 0.1, 0.05], [100, 100, 10], 0.1, 100,
                               axis=1)

    y8 = ref.requantize(b, 0.001, 0, 0.07, 128, "uint8")
    s = ref.add(a, y8, *qp)
    p = ref.mul(ref.requantize(a, 0.05, 10, 0.05, 12, "uint8"), y8, 0.05, 12, 0.07, 128,
                0.1, 100)
    expected = ref.concatenate([s, p, a], [0.1, 0.1, 0.05], [100, 100, 10], 0.1, 100,
                               axis=1)
    np.testing.assert_array_equal(run(make, a, b), expected)


def _within_one_unit(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= 1, f"{int((diff > 1).sum())} values differ by more than one"


@pytest.mark.parametrize("trial", range(3))
def test_random_nested_chains_match_onnxruntime(run, rng, trial):
    dtype = ["uint8", "int8", "uint8"][trial]
    x = rng.normal(0, 3, (1, 4, 6, 5)).astype(np.float32)
    xs = np.float32(rng.uniform(0.01, 0.1))
    xz = int(rng.integers(0, 256) if dtype == "uint8" else rng.integers(-128, 128))
    w = _ints(rng, (3, 4, 3, 3), "int8", -64, 63)
    ws = np.asarray(rng.uniform(0.005, 0.02, 3), np.float32)
    ys, yz = np.float32(rng.uniform(0.2, 0.6)), int(rng.integers(0, 100))

    def make(v, k):
        q = qnn.quantize(v, xs, xz, out_dtype=dtype)
        acc = qnn.conv2d(q, k, xz, 0, xs, ws, padding=1)
        y = qnn.requantize(acc, xs * ws, 0, ys, yz, out_dtype=dtype, axis=1)
        return relax.Tuple([q, qnn.dequantize(y, ys, yz, axis=1)])

    got_q, got_y = run(make, x, w)
    q = onnxrt.quantize_linear(x, xs, xz, dtype)
    _within_one_unit(got_q, q)
    y = onnxrt.qlinear_conv(got_q, xs, xz, w, ws, np.zeros(3, np.int8), ys, yz,
                            padding=(1, 1, 1, 1))
    expected = onnxrt.dequantize_linear(y, ys, yz)
    np.testing.assert_allclose(got_y, expected, rtol=0, atol=float(ys) * 1.001)


def test_nested_dense_requantize_matches_qlinear_matmul(run, rng):
    a = _ints(rng, (4, 24), "uint8")
    b = _ints(rng, (24, 6), "int8", -64, 63)
    az, bz, yz = 117, 3, 90
    as_, bs, ys = np.float32(0.03), np.float32(0.01), np.float32(0.25)

    def make(d, k):
        return qnn.requantize(qnn.dense(d, k, az, bz, as_, bs), as_ * bs, 0, ys, yz,
                              out_dtype="uint8")

    got = run(make, a, np.ascontiguousarray(b.T))
    _within_one_unit(got, onnxrt.qlinear_matmul(a, as_, az, b, bs, bz, ys, yz))


def test_a_nested_call_with_a_bad_inner_operand_names_the_inner_operator():
    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    with pytest.raises(TypeError, match="qnn.dequantize: data has dtype float32"):
        qnn.requantize(qnn.dequantize(x, 0.1, 0), 0.1, 0, 0.2, 0)
