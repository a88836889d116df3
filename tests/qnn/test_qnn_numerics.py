"""Every qnn op, lowered by Canonicalize and compiled, equals its NumPy reference.

The comparisons are bit for bit.
"""

import numpy as np
import pytest

from d2lcc import qnn
from d2lcc.qnn import reference as ref
from d2lcc.qnn.params import DTYPE_RANGES


def _ints(rng, shape, dtype):
    lo, hi = DTYPE_RANGES[dtype]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def _zp(rng, dtype, size=None):
    lo, hi = DTYPE_RANGES[dtype]
    return np.asarray(rng.integers(max(lo, -100), min(hi, 100) + 1, size), np.int32)


def _scale(rng, size=None):
    # float64 on purpose: builders and references must both round it to float32 first.
    return rng.uniform(0.01, 0.5, size)


@pytest.mark.parametrize("out_dtype", ["uint8", "int8", "int32"])
def test_quantize_per_tensor(run, rng, out_dtype):
    x = rng.normal(0, 8, (3, 17)).astype("float32")
    s, z = _scale(rng), _zp(rng, out_dtype)
    got = run(lambda v: qnn.quantize(v, s, z, out_dtype=out_dtype), x)
    np.testing.assert_array_equal(got, ref.quantize(x, s, z, out_dtype))


def test_quantize_rounds_ties_to_even(run):
    x = (np.arange(-8, 8, dtype="float32") + 0.5) * 0.25  # every x / 0.25 is a tie
    got = run(lambda v: qnn.quantize(v, 0.25, 0, out_dtype="int8"), x)
    np.testing.assert_array_equal(got, np.round(np.arange(-8, 8) + 0.5).astype("int8"))
    np.testing.assert_array_equal(got, ref.quantize(x, 0.25, 0, "int8"))


def test_quantize_per_channel(run, rng):
    x = rng.normal(0, 4, (2, 5, 7)).astype("float32")
    s, z = _scale(rng, 5), _zp(rng, "uint8", 5)
    got = run(lambda v: qnn.quantize(v, s, z, out_dtype="uint8", axis=1), x)
    np.testing.assert_array_equal(got, ref.quantize(x, s, z, "uint8", axis=1))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32"])
def test_dequantize(run, rng, dtype):
    q = _ints(rng, (4, 9), dtype)
    s, z = _scale(rng), _zp(rng, dtype)
    got = run(lambda v: qnn.dequantize(v, s, z), q)
    np.testing.assert_array_equal(got, ref.dequantize(q, s, z))


def test_dequantize_per_channel(run, rng):
    q = _ints(rng, (6, 3), "int8")
    s, z = _scale(rng, 6), _zp(rng, "int8", 6)
    got = run(lambda v: qnn.dequantize(v, s, z, axis=0), q)
    np.testing.assert_array_equal(got, ref.dequantize(q, s, z, axis=0))


@pytest.mark.parametrize("in_dtype,out_dtype", [
    ("int32", "uint8"), ("uint8", "int8"), ("int8", "int32")])
def test_requantize_per_tensor(run, rng, in_dtype, out_dtype):
    q = _ints(rng, (5, 11), in_dtype) // (2**16 if in_dtype == "int32" else 1)
    args = (_scale(rng), _zp(rng, in_dtype), _scale(rng), _zp(rng, out_dtype))
    got = run(lambda v: qnn.requantize(v, *args, out_dtype=out_dtype), q)
    np.testing.assert_array_equal(got, ref.requantize(q, *args, out_dtype=out_dtype))


def test_requantize_per_channel(run, rng):
    q = rng.integers(-5000, 5000, (2, 4, 3, 3)).astype("int32")
    args = (_scale(rng, 4) * 0.01, 0, _scale(rng), _zp(rng, "uint8"))
    got = run(lambda v: qnn.requantize(v, *args, out_dtype="uint8", axis=1), q)
    expected = ref.requantize(q, *args, out_dtype="uint8", axis=1)
    np.testing.assert_array_equal(got, expected)


CONV_CASES = [
    # data, weight, (n, c, h, w), (o, kh, kw), strides, padding, dilation, groups,
    # per_channel, const_weight
    ("uint8", "uint8", (1, 3, 7, 6), (4, 3, 3), (1, 1), (0, 0), (1, 1), 1, False,
     False),
    ("uint8", "int8", (2, 4, 8, 8), (6, 3, 3), (2, 2), (1, 1), (1, 1), 2, True, False),
    ("int8", "int8", (1, 5, 9, 7), (5, 3, 2), (1, 2), (2, 1, 0, 1), (2, 1), 5, True,
     True),
    ("int8", "uint8", (1, 8, 6, 6), (16, 1, 1), (1, 1), (0, 0), (1, 1), 1, False, True),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}x{c[1]}-g{c[7]}")
@pytest.mark.parametrize("zero_points", ["asymmetric", "symmetric"])
def test_conv2d(run, rng, case, zero_points):
    ddt, wdt, dshape, (o, kh, kw), strides, padding, dilation, groups = case[:8]
    per_channel, const_weight = case[8:]
    d = _ints(rng, dshape, ddt)
    w = _ints(rng, (o, dshape[1] // groups, kh, kw), wdt)
    zd = _zp(rng, ddt) if zero_points == "asymmetric" else 0
    zw = _zp(rng, wdt, o if per_channel else None) if zero_points == "asymmetric" else 0
    sw = _scale(rng, o if per_channel else None)
    conv_kwargs = dict(strides=strides, padding=padding, dilation=dilation,
                       groups=groups)
    if const_weight:
        from tvm import relax

        def make(v):
            return qnn.conv2d(v, relax.const(w), zd, zw, 0.1, sw, **conv_kwargs)

        got = run(make, d)
    else:
        got = run(lambda v, u: qnn.conv2d(v, u, zd, zw, 0.1, sw, **conv_kwargs), d, w)
    expected = ref.conv2d(d, w, zd, zw, strides, padding, dilation, groups)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("ddt,wdt", [
    ("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8")])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("const_weight", [False, True])
def test_dense(run, rng, ddt, wdt, per_channel, const_weight):
    m, k, units = rng.integers(1, 9), rng.integers(1, 40), rng.integers(1, 12)
    d, w = _ints(rng, (m, k), ddt), _ints(rng, (units, k), wdt)
    zd, zw = _zp(rng, ddt), _zp(rng, wdt, units if per_channel else None)
    sw = _scale(rng, units if per_channel else None)
    if const_weight:
        from tvm import relax

        got = run(lambda v: qnn.dense(v, relax.const(w), zd, zw, 0.2, sw), d)
    else:
        got = run(lambda v, u: qnn.dense(v, u, zd, zw, 0.2, sw), d, w)
    np.testing.assert_array_equal(got, ref.dense(d, w, zd, zw))


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("shapes", [((3, 8), (3, 8)), ((2, 3, 4), (3, 1))])
def test_add_mul(run, rng, op, dtype, shapes):
    a, b = _ints(rng, shapes[0], dtype), _ints(rng, shapes[1], dtype)
    params = (_scale(rng), _zp(rng, dtype), _scale(rng), _zp(rng, dtype), _scale(rng),
              _zp(rng, dtype))
    if op == "mul":  # an output scale in the products' range: not everything saturates
        params = params[:4] + (params[0] * params[2] * 40, params[5])
    got = run(lambda x, y: getattr(qnn, op)(x, y, *params), a, b)
    np.testing.assert_array_equal(got, getattr(ref, op)(a, b, *params))


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_concatenate(run, rng, dtype):
    parts = [_ints(rng, (2, c, 3), dtype) for c in (1, 4, 2)]
    s_out, z_out = _scale(rng), _zp(rng, dtype)
    # the middle input already has the output parameters
    scales = [_scale(rng), s_out, _scale(rng)]
    zps = [_zp(rng, dtype), z_out, _zp(rng, dtype)]
    got = run(lambda *vs: qnn.concatenate(vs, scales, zps, s_out, z_out, axis=1),
              *parts)
    expected = ref.concatenate(parts, scales, zps, s_out, z_out, axis=1)
    np.testing.assert_array_equal(got, expected)


def _random_conv_case(rng):
    groups = int(rng.choice([1, 2, 3]))
    c, o = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    kh, kw = (int(k) for k in rng.integers(1, 4, 2))
    strides = [int(s) for s in rng.integers(1, 3, 2)]
    dilation = [int(d) for d in rng.integers(1, 3, 2)]
    padding = [int(p) for p in rng.integers(0, 3, 4)]
    h = int(rng.integers(dilation[0] * (kh - 1) + 1, 10))
    w = int(rng.integers(dilation[1] * (kw - 1) + 1, 10))
    ddt, wdt = rng.choice(["uint8", "int8"], 2)
    dshape, wshape = (int(rng.integers(1, 3)), c, h, w), (o, c // groups, kh, kw)
    return dshape, wshape, strides, padding, dilation, groups, ddt, wdt


@pytest.mark.parametrize("trial", range(6))
def test_conv2d_random_configurations(run, rng, trial):
    case = _random_conv_case(rng)
    dshape, wshape, strides, padding, dilation, groups, ddt, wdt = case
    d, w = _ints(rng, dshape, ddt), _ints(rng, wshape, wdt)
    per_channel = bool(rng.integers(0, 2))
    zd, zw = _zp(rng, ddt), _zp(rng, wdt, wshape[0] if per_channel else None)
    kwargs = dict(strides=strides, padding=padding, dilation=dilation, groups=groups)
    got = run(lambda v, u: qnn.conv2d(v, u, zd, zw, 0.1, 0.2, **kwargs), d, w)
    expected = ref.conv2d(d, w, zd, zw, strides, padding, dilation, groups)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("trial", range(4))
def test_quantize_requantize_random_shapes(run, rng, trial):
    shape = tuple(int(s) for s in rng.integers(1, 6, int(rng.integers(1, 5))))
    axis = int(rng.integers(0, len(shape)))
    c = shape[axis]
    x = rng.normal(0, 5, shape).astype("float32")
    s1, z1, s2, z2 = _scale(rng, c), _zp(rng, "int8", c), _scale(rng), _zp(rng, "uint8")

    def make(v):
        q = qnn.quantize(v, s1, z1, out_dtype="int8", axis=axis)  # nested, not emitted
        return qnn.requantize(q, s1, z1, s2, z2, out_dtype="uint8", axis=axis)

    q = ref.quantize(x, s1, z1, "int8", axis)
    expected = ref.requantize(q, s1, z1, s2, z2, "uint8", axis)
    np.testing.assert_array_equal(run(make, x), expected)
