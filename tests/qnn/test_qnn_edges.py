"""Numerics at the edges: saturation, NaN, int32 extremes, overflow, empty shapes.

Each test states the exact expected values (worked out by hand from the
definitions), then checks both the compiled operator and the NumPy reference,
so that a mistake shared by the two cannot pass.
"""

import numpy as np
import pytest
from tvm import relax

from d2lcc import qnn
from d2lcc.qnn import reference as ref
from d2lcc.qnn.fixed_point import fixed_point_multiplier

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _both(run, make, reference, *arrays):
    """The compiled result, after checking it equals the reference's."""
    got = run(make, *arrays)
    expected = reference(*arrays)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype
    return got


def test_quantize_saturates_huge_and_infinite_values_and_maps_nan_to_zero_point(run):
    x = np.array([3e9, -3e9, np.inf, -np.inf, 5.0, np.nan], np.float32)
    got = _both(run, lambda v: qnn.quantize(v, 0.1, 128, out_dtype="uint8"),
                lambda a: ref.quantize(a, 0.1, 128, "uint8"), x)
    np.testing.assert_array_equal(got, [255, 0, 255, 0, 178, 128])


@pytest.mark.parametrize("dtype", ["int8", "int16", "uint16", "int32"])
def test_quantize_saturates_to_every_dtype_bound(run, dtype):
    info = np.iinfo(dtype)
    zp = int(info.max) - 5 if dtype == "int32" else 3
    x = np.array([10.0, 3e38, -3e38, np.inf, -np.inf, np.nan, 0.0], np.float32)
    got = _both(run, lambda v: qnn.quantize(v, 1.0, zp, out_dtype=dtype),
                lambda a: ref.quantize(a, 1.0, zp, dtype), x)
    first = min(10 + zp, int(info.max))  # int32: 2**31 + 5 saturates, not wraps
    expected = [first, info.max, info.min, info.max, info.min, zp, zp]
    np.testing.assert_array_equal(got, expected)


def test_dequantize_int32_extremes_do_not_wrap(run):
    q = np.array([I32_MIN, I32_MAX, 0], np.int32)
    got = _both(run, lambda v: qnn.dequantize(v, 0.5, I32_MAX),
                lambda a: ref.dequantize(a, 0.5, I32_MAX), q)
    # q - zp = -(2**32 - 1), 0 and -(2**31 - 1), exact before the float32 rounding
    expected = np.array([-(2**32 - 1), 0, -(2**31 - 1)], np.float64) * 0.5
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert got[0] < 0


@pytest.mark.parametrize("compute,rounding", [
    ("float32", "TONEAREST"), ("fixed_point", "TONEAREST"), ("fixed_point", "UPWARD")])
def test_requantize_int32_extremes_saturate_in_every_mode(run, compute, rounding):
    q = np.array([I32_MIN, I32_MAX, 7, -7], np.int32)
    kwargs = dict(out_dtype="int32", rounding=rounding, compute=compute)
    args = (0.5, I32_MAX, 0.25, I32_MIN + 1)  # M = 2; both zero points extreme
    got = _both(run, lambda v: qnn.requantize(v, *args, **kwargs),
                lambda a: ref.requantize(a, *args, **kwargs), q)
    exact = [2 * (int(v) - I32_MAX) + I32_MIN + 1 for v in q]
    np.testing.assert_array_equal(got, np.clip(exact, I32_MIN, I32_MAX))
    assert got[0] == I32_MIN and got[1] == I32_MIN + 1


def test_fixed_point_requantize_saturates_instead_of_wrapping(run):
    q = np.array([-128, 127, 0], np.int8)
    kwargs = dict(compute="fixed_point")
    got = _both(run, lambda v: qnn.requantize(v, 1e8, 0, 1.0, 0, **kwargs),
                lambda a: ref.requantize(a, 1e8, 0, 1.0, 0, **kwargs), q)
    np.testing.assert_array_equal(got, [-128, 127, 0])


@pytest.mark.parametrize("multiplier", [2.0**30, 2.0**30 - 2.0**-3, 2.0**-33, 0.0])
def test_fixed_point_multiplier_refuses_shifts_outside_1_to_62(multiplier):
    with pytest.raises(ValueError, match="qnn.requantize: the multiplier"):
        fixed_point_multiplier(multiplier, what="input_scale=a / output_scale=b")


@pytest.mark.parametrize("multiplier", [2.0**30 - 2.0**-1, 2.0**-32, 1.0])
def test_fixed_point_multiplier_accepts_the_ends_of_its_range(multiplier):
    mantissa, shift = fixed_point_multiplier(multiplier)
    assert 2**30 <= int(mantissa) < 2**31 and 1 <= int(shift) <= 62
    assert abs(int(mantissa) * 2.0 ** -int(shift) - multiplier) <= multiplier * 2.0**-31


def test_add_and_mul_saturate_with_extreme_scale_ratios(run):
    a = np.array([0, 255, 128, 1], np.uint8)
    b = np.array([255, 0, 128, 1], np.uint8)
    big = (1e30, 0, 1e30, 255, 1e-6, 7)  # multipliers 1e36 and overflowing products
    got = _both(run, lambda x, y: qnn.add(x, y, *big),
                lambda x, y: ref.add(x, y, *big), a, b)
    # M * (l - 0) + M * (r - 255) with M = 1e36: 0, 255M - 255M = 0, M, -253M
    np.testing.assert_array_equal(got, [7, 7, 255, 0])
    got = _both(run, lambda x, y: qnn.mul(x, y, 1e19, 0, 1e19, 0, 1.0, 3),
                lambda x, y: ref.mul(x, y, 1e19, 0, 1e19, 0, 1.0, 3), a, b)
    np.testing.assert_array_equal(got, [3, 3, 255, 255])


# The largest K whose int32 steps cannot overflow for uint8 data (zero point 0)
# and int8 weights with kernel zero point 127: every term is at most
# (255 + 0) * (128 + 127) = 65025 in magnitude.
K_MAX = I32_MAX // 65025


def test_dense_is_exact_at_the_accumulator_bound(run):
    d = np.full((1, K_MAX), 255, np.uint8)
    w = np.full((2, K_MAX), -128, np.int8)
    got = _both(run, lambda x, y: qnn.dense(x, y, 0, 127, 0.1, 0.1),
                lambda x, y: ref.dense(x, y, 0, 127), d, w)
    assert K_MAX == 33025 and got[0, 0] == -65025 * K_MAX


@pytest.mark.parametrize("k", [K_MAX + 1, 40000])
def test_dense_beyond_the_bound_is_refused(k):
    x = relax.Var("x", relax.TensorType((1, k), "uint8"))
    w = relax.Var("w", relax.TensorType((2, k), "int8"))
    with pytest.raises(ValueError, match=f"qnn.dense: k={k} products of uint8"):
        qnn.dense(x, w, 0, 127, 0.1, 0.1)
    with pytest.raises(ValueError, match=f"qnn.reference.dense: k={k}"):
        ref.dense(np.zeros((1, k), np.uint8), np.zeros((2, k), np.int8), 0, 127)


def test_conv2d_beyond_the_bound_is_refused():
    c = K_MAX // 9 + 1  # 3 x 3 windows: K = 9 * c > K_MAX
    x = relax.Var("x", relax.TensorType((1, c, 3, 3), "uint8"))
    w = relax.Var("w", relax.TensorType((1, c, 3, 3), "int8"))
    with pytest.raises(ValueError, match=f"qnn.conv2d: k={9 * c} products"):
        qnn.conv2d(x, w, 0, 127, 0.1, 0.1)


@pytest.mark.parametrize("dshape,wshape,oshape", [
    ((1, 0, 4, 4), (3, 0, 2, 2), (1, 3, 3, 3)),  # no input channels: sums are 0
    ((0, 2, 4, 4), (3, 2, 2, 2), (0, 3, 3, 3)),  # empty batch
    ((1, 2, 4, 4), (0, 2, 2, 2), (1, 0, 3, 3)),  # no output channels
])
def test_conv2d_with_empty_dimensions(run, dshape, wshape, oshape):
    d, w = np.full(dshape, 9, np.uint8), np.full(wshape, 2, np.int8)
    got = _both(run, lambda x, y: qnn.conv2d(x, y, 4, 1, 0.1, 0.1),
                lambda x, y: ref.conv2d(x, y, 4, 1), d, w)
    assert got.shape == oshape and not np.any(got)


@pytest.mark.parametrize("m,k,units", [(2, 0, 3), (0, 4, 3), (2, 4, 0)])
def test_dense_with_empty_dimensions(run, m, k, units):
    d, w = np.full((m, k), 9, np.uint8), np.full((units, k), 2, np.int8)
    got = _both(run, lambda x, y: qnn.dense(x, y, 4, 1, 0.1, 0.1),
                lambda x, y: ref.dense(x, y, 4, 1), d, w)
    assert got.shape == (m, units) and not np.any(got)


def test_elementwise_ops_on_empty_tensors(run):
    x = np.zeros((0, 3), np.float32)
    _both(run, lambda v: qnn.quantize(v, 0.5, 1, out_dtype="uint8"),
          lambda a: ref.quantize(a, 0.5, 1, "uint8"), x)
    q = np.zeros((2, 0), np.int8)
    _both(run, lambda a, b: qnn.add(a, b, 0.1, 0, 0.2, 1, 0.3, 2),
          lambda a, b: ref.add(a, b, 0.1, 0, 0.2, 1, 0.3, 2), q, q)


def test_reference_conv2d_takes_an_int_padding_like_the_builder():
    from d2lcc.qnn import reference

    rng = np.random.default_rng(2)
    q = rng.integers(-128, 128, (1, 2, 5, 5)).astype("int8")
    w = rng.integers(-127, 128, (3, 2, 3, 3)).astype("int8")
    np.testing.assert_array_equal(reference.conv2d(q, w, 1, 0, padding=1),
                                  reference.conv2d(q, w, 1, 0, padding=(1, 1, 1, 1)))
    with pytest.raises(TypeError, match="padding"):
        reference.conv2d(q, w, 1, 0, padding=True)
