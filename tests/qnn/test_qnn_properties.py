"""Property-based tests (Hypothesis) of every qnn operator.

Each operator, lowered and compiled, equals its NumPy reference on generated
shapes, scales (extreme ratios included), zero points across each dtype's full
range and edge values (0, +-inf, NaN, dtype bounds, values beyond int32).

Compiling is the slow part, so quantize and dequantize take their scale and zero
point as run-time inputs and reuse one compiled module per (shape, dtype, axis); the
other operators need constant parameters, so each example compiles one module and
runs it on several data arrays. The default profile runs a few examples per test
(the file takes well under a minute on one core) and is derandomized, so CI is
reproducible. For a long random sweep, set ``D2LCC_LONG=1``::

    D2LCC_LONG=1 .venv/bin/python -m pytest -q tests/qnn/test_qnn_properties.py
"""

import functools
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tvm import relax

from d2lcc import qnn
from d2lcc.qnn import reference as ref
from d2lcc.qnn.params import DTYPE_RANGES

from qnn_harness import build_module, compiled

LONG = os.environ.get("D2LCC_LONG", "") not in ("", "0")
settings.register_profile("qnn-ci", max_examples=6, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("qnn-long", max_examples=150, deadline=None,
                          suppress_health_check=list(HealthCheck))
PROFILE = settings.get_profile("qnn-long" if LONG else "qnn-ci")

SHAPES = [(7,), (2, 3), (1, 3, 2, 2)]
EIGHT_BITS = st.sampled_from(["int8", "uint8"])
EDGE_FLOATS = [0.0, -0.0, np.inf, -np.inf, np.nan, 3e9, -3e9, 3.4e38, 1e-45, 0.5, -1.5]


def scales(lo=1e-6, hi=1e6):
    """Positive scales that float32 holds, spread over orders of magnitude."""
    exponent = st.floats(np.log10(lo), np.log10(hi))
    return exponent.map(lambda e: float(np.float32(10.0**e)))


def zero_points(dtype):
    lo, hi = DTYPE_RANGES[dtype]
    return st.one_of(st.sampled_from([lo, hi, 0]), st.integers(lo, hi))


def float_data(draw, shape):
    values = st.one_of(st.sampled_from(EDGE_FLOATS),
                       st.floats(-2.0**40, 2.0**40, width=32),
                       st.floats(-300, 300, width=32))
    return np.array(draw(st.lists(values, min_size=int(np.prod(shape)),
                                  max_size=int(np.prod(shape)))),
                    np.float32).reshape(shape)


def int_data(draw, shape, dtype):
    lo, hi = DTYPE_RANGES[dtype]
    edges = st.sampled_from([lo, hi, 0, lo + 1, hi - 1])
    values = st.one_of(edges, st.integers(lo, hi))
    size = int(np.prod(shape))
    return np.array(draw(st.lists(values, min_size=size, max_size=size)),
                    dtype).reshape(shape)


def _compiled(make, *types):
    """``make`` over tensors of ``types``, lowered and compiled, as a function."""
    arrays = [np.zeros(shape, dtype) for shape, dtype in types]
    return compiled(qnn.transform.Canonicalize()(build_module(make, arrays)))


def _axis(axis):
    return -1 if axis is None else axis


@functools.lru_cache(maxsize=None)
def _quantize_module(shape, out_dtype, axis):
    c = (shape[axis],) if axis is not None else ()

    def make(x, s, z):
        return qnn.quantize(x, s, z, out_dtype=out_dtype, axis=_axis(axis))

    return _compiled(make, (shape, "float32"), (c, "float32"), (c, "int32"))


@functools.lru_cache(maxsize=None)
def _dequantize_module(shape, dtype, axis):
    c = (shape[axis],) if axis is not None else ()

    def make(q, s, z):
        return qnn.dequantize(q, s, z, axis=_axis(axis))

    return _compiled(make, (shape, dtype), (c, "float32"), (c, "int32"))


@st.composite
def per_tensor_or_channel(draw, shape, elements):
    """``(axis, values)``: a scalar (axis None) or one value per channel of an axis."""
    if draw(st.booleans()):
        return None, np.asarray(draw(elements))
    axis = draw(st.integers(0, len(shape) - 1))
    return axis, np.asarray(draw(st.lists(elements, min_size=shape[axis],
                                          max_size=shape[axis])))


@PROFILE
@given(st.data(), st.sampled_from(SHAPES), st.sampled_from(sorted(DTYPE_RANGES)))
def test_quantize(data, shape, out_dtype):
    axis, s = data.draw(per_tensor_or_channel(shape, scales(1e-30, 1e30)))
    z = np.asarray([data.draw(zero_points(out_dtype)) for _ in range(s.size)],
                   np.int32).reshape(s.shape)
    run = _quantize_module(shape, out_dtype, axis)
    for _ in range(3):
        x = float_data(data.draw, shape)
        s32 = s.astype(np.float32)
        expected = ref.quantize(x, s32, z, out_dtype, _axis(axis))
        np.testing.assert_array_equal(run([x, s32, z]), expected)


@PROFILE
@given(st.data(), st.sampled_from(SHAPES), st.sampled_from(sorted(DTYPE_RANGES)))
def test_dequantize(data, shape, dtype):
    axis, s = data.draw(per_tensor_or_channel(shape, scales(1e-30, 1e30)))
    z = np.asarray([data.draw(zero_points(dtype)) for _ in range(s.size)],
                   np.int32).reshape(s.shape)
    run = _dequantize_module(shape, dtype, axis)
    for _ in range(3):
        q = int_data(data.draw, shape, dtype)
        s32 = s.astype(np.float32)
        expected = ref.dequantize(q, s32, z, _axis(axis))
        np.testing.assert_array_equal(run([q, s32, z]), expected)


@st.composite
def requantize_cases(draw):
    shape = draw(st.sampled_from(SHAPES))
    dtypes = st.sampled_from(sorted(DTYPE_RANGES))
    in_dtype, out_dtype = draw(dtypes), draw(dtypes)
    compute = draw(st.sampled_from(["float32", "fixed_point"]))
    rounding = draw(st.sampled_from(["TONEAREST", "UPWARD"] if compute == "fixed_point"
                                    else ["TONEAREST"]))
    s_in = draw(scales(1e-12, 1e12))
    # fixed point needs M = s_in / s_out in [2**-32, 2**30): draw the ratio instead
    ratio = draw(scales(1e-9, 1e8) if compute == "fixed_point" else scales(1e-20, 1e20))
    s_out = float(np.float32(s_in / ratio))
    params = (s_in, draw(zero_points(in_dtype)), s_out, draw(zero_points(out_dtype)))
    kwargs = dict(out_dtype=out_dtype, rounding=rounding, compute=compute)
    return shape, in_dtype, params, kwargs


@PROFILE
@given(st.data(), requantize_cases())
def test_requantize(data, case):
    shape, in_dtype, params, kwargs = case
    try:
        qnn.params.requantize_multiplier(params[0], params[2])
        if kwargs["compute"] == "fixed_point":
            qnn.fixed_point.fixed_point_multiplier(qnn.params.scale_ratio(params[0],
                                                                          params[2]))
    except ValueError:  # the float32 rounding of s_out moved M out of range
        return
    run = _compiled(lambda v: qnn.requantize(v, *params, **kwargs), (shape, in_dtype))
    for _ in range(3):
        q = int_data(data.draw, shape, in_dtype)
        expected = ref.requantize(q, *params, **kwargs)
        np.testing.assert_array_equal(run([q]), expected)


@st.composite
def binary_cases(draw):
    dtype = draw(st.sampled_from(["int8", "uint8"]))
    lshape = draw(st.sampled_from([(2, 3), (3,), (1, 3)]))
    rshape = draw(st.sampled_from([(2, 3), (3,), (2, 1)]))
    params = []
    for _ in range(3):
        params += [draw(scales(1e-15, 1e15)), draw(zero_points(dtype))]
    return dtype, lshape, rshape, tuple(params)


@PROFILE
@given(st.data(), binary_cases(), st.sampled_from(["add", "mul"]))
def test_add_mul(data, case, name):
    dtype, lshape, rshape, params = case
    build = getattr(qnn, name)
    try:
        run = _compiled(lambda a, b: build(a, b, *params), (lshape, dtype),
                        (rshape, dtype))
    except ValueError as err:  # a scale ratio beyond float32 is refused
        assert "overflows float32" in str(err)
        return
    for _ in range(3):
        a, b = int_data(data.draw, lshape, dtype), int_data(data.draw, rshape, dtype)
        expected = getattr(ref, name)(a, b, *params)
        np.testing.assert_array_equal(run([a, b]), expected)


@PROFILE
@given(st.data(), st.sampled_from(["int8", "uint8"]), st.integers(1, 3))
def test_concatenate(data, dtype, n):
    widths = [data.draw(st.integers(1, 3)) for _ in range(n)]
    s_out, z_out = data.draw(scales(1e-4, 1e4)), data.draw(zero_points(dtype))
    same = st.just((s_out, z_out))
    other = st.tuples(scales(1e-4, 1e4), zero_points(dtype))
    pairs = [data.draw(st.one_of(same, other)) for _ in range(n)]
    s_in, z_in = [p[0] for p in pairs], [p[1] for p in pairs]
    types = [((2, w), dtype) for w in widths]
    run = _compiled(lambda *vs: qnn.concatenate(vs, s_in, z_in, s_out, z_out, axis=1),
                    *types)
    for _ in range(3):
        parts = [int_data(data.draw, (2, w), dtype) for w in widths]
        expected = ref.concatenate(parts, s_in, z_in, s_out, z_out, axis=1)
        np.testing.assert_array_equal(run(parts), expected)


@st.composite
def matmul_params(draw, ddt, wdt, units):
    zd = draw(zero_points(ddt))
    per_channel = draw(st.booleans())
    n = units if per_channel else 1
    zw = np.asarray([draw(zero_points(wdt)) for _ in range(n)], np.int32)
    return zd, (zw if per_channel else zw[0])


@PROFILE
@given(st.data(), EIGHT_BITS, EIGHT_BITS)
def test_dense(data, ddt, wdt):
    m, k, units = (data.draw(st.integers(0 if i == 1 else 1, 6)) for i in range(3))
    zd, zw = data.draw(matmul_params(ddt, wdt, units))
    const_weight = data.draw(st.booleans())
    w = int_data(data.draw, (units, k), wdt)
    if const_weight:
        make, extra = (lambda v: qnn.dense(v, relax.const(w), zd, zw, 0.1, 0.2)), []
    else:
        make, extra = (lambda v, u: qnn.dense(v, u, zd, zw, 0.1, 0.2)), [w]
    run = _compiled(make, ((m, k), ddt), *[(a.shape, a.dtype.name) for a in extra])
    for _ in range(3):
        d = int_data(data.draw, (m, k), ddt)
        np.testing.assert_array_equal(run([d] + extra), ref.dense(d, w, zd, zw))


@PROFILE
@given(st.data(), EIGHT_BITS, EIGHT_BITS)
def test_conv2d(data, ddt, wdt):
    groups = data.draw(st.sampled_from([1, 2]))
    c, o = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    strides = [data.draw(st.integers(1, 2)) for _ in range(2)]
    padding = [data.draw(st.integers(0, 2)) for _ in range(4)]
    h, w_ = kh + data.draw(st.integers(0, 3)), kw + data.draw(st.integers(0, 3))
    zd, zw = data.draw(matmul_params(ddt, wdt, o))
    window = dict(strides=strides, padding=padding, groups=groups)
    dshape, wshape = (1, c, h, w_), (o, c // groups, kh, kw)
    run = _compiled(lambda v, u: qnn.conv2d(v, u, zd, zw, 0.1, 0.2, **window),
                    (dshape, ddt), (wshape, wdt))
    for _ in range(2):
        d, wt = int_data(data.draw, dshape, ddt), int_data(data.draw, wshape, wdt)
        expected = ref.conv2d(d, wt, zd, zw, strides, padding, groups=groups)
        np.testing.assert_array_equal(run([d, wt]), expected)
