"""Unit tests of d2lcc.layers: depthwise conv, max pooling, batch norm, folding."""

import inspect

import numpy as np
import pytest

from d2lcc import conv, layers


@pytest.fixture
def x():
    return np.random.default_rng(3).standard_normal((2, 16, 8, 12), dtype=np.float32)


@pytest.fixture
def stats():
    rng = np.random.default_rng(4)
    gamma, beta, mean = (rng.standard_normal(16).astype(np.float32) for _ in range(3))
    return gamma, beta, mean, rng.uniform(0.5, 2.0, 16).astype(np.float32)


def _run(mod, *arrays, out_shape):
    call, out = conv.runner(mod, *arrays, out_shape=out_shape)
    call()
    return out.numpy()


def test_depthwise_numpy_is_grouped_conv(x):
    w = np.random.default_rng(5).standard_normal((16, 3, 3), dtype=np.float32)
    per_channel = [conv.conv2d_numpy(x[:, c : c + 1], w[c][None, None], 1)
                   for c in range(16)]
    ref = np.concatenate(per_channel, axis=1)
    got = layers.depthwise_conv2d_numpy(x, w, 1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_depthwise_schedules_match_numpy(x):
    w = np.random.default_rng(6).standard_normal((16, 3, 3), dtype=np.float32)
    ref = layers.depthwise_conv2d_numpy(x, w, 1)
    func = layers.depthwise_conv2d_te(2, 16, 8, 12, 3, 1)
    mods = (func, layers.schedule_depthwise(func), layers.schedule_depthwise(func, 3))
    for mod in mods:
        y = _run(mod, x, w, out_shape=ref.shape)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_max_pool(x):
    ref = layers.max_pool2d_numpy(x, 2)
    assert ref.shape == (2, 16, 4, 6)
    assert ref[1, 3, 2, 5] == x[1, 3, 4:6, 10:12].max()
    func = layers.max_pool2d_te(2, 16, 8, 12, 2)
    for mod in (func, layers.schedule_pool(func)):
        np.testing.assert_array_equal(_run(mod, x, out_shape=ref.shape), ref)


def test_max_pool_nan_gives_nan(x):
    x = x.copy()
    x[0, 0, 1, 1] = np.nan
    y = layers.max_pool2d_numpy(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(np.delete(y.ravel(), 0)).all()


def test_batch_norm(x, stats):
    gamma, beta, mean, var = stats
    ref = layers.batch_norm_numpy(x, *stats)
    c = 5
    expect = (x[:, c] - mean[c]) / np.sqrt(var[c] + 1e-5) * gamma[c] + beta[c]
    np.testing.assert_allclose(ref[:, c], expect, rtol=1e-5, atol=1e-5)
    func = layers.batch_norm_te(x.shape)
    for mod in (func, layers.schedule_batch_norm(func)):
        y = _run(mod, x, *stats, out_shape=x.shape)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    packed = layers.schedule_batch_norm(layers.batch_norm_te((2, 2, 8, 12, 8)))
    y = _run(packed, conv.pack_data(x, 8), *stats, out_shape=(2, 2, 8, 12, 8))
    np.testing.assert_allclose(conv.unpack_data(y), ref, rtol=1e-5, atol=1e-5)


def test_batch_norm_zero_variance_needs_eps(x, stats):
    gamma, beta, mean, var = stats
    var = var.copy()
    var[2] = 0.0
    np.testing.assert_allclose(layers.batch_norm_numpy(x, gamma, beta, mean, var)[:, 2],
                               (x[:, 2] - mean[2]) / np.sqrt(1e-5) * gamma[2] + beta[2],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="batch_norm_numpy: eps=0.0 must be > 0"):
        layers.batch_norm_numpy(x, gamma, beta, mean, var, eps=0.0)
    var[2] = -1e-3  # var + eps < 0
    with pytest.raises(ValueError, match="layers.batch_norm_numpy: var \\+ eps"):
        layers.batch_norm_numpy(x, gamma, beta, mean, var)


def test_fold_batch_norm(x, stats):
    w = np.random.default_rng(7).standard_normal((16, 16, 3, 3), dtype=np.float32)
    w_folded, bias = layers.fold_batch_norm(w, *stats)
    ref = layers.batch_norm_numpy(conv.conv2d_numpy(x, w, 1), *stats)
    got = conv.conv2d_numpy(x, w_folded, 1) + bias.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)
    assert w_folded.dtype == w.dtype and bias.dtype == w.dtype


def test_teaching_functions_have_no_checks():
    assert set(layers.__teaching__) == {
        "tile_depthwise", "parallel_pool", "vectorize_batch_norm", "fold_into_conv"}
    for name in layers.__teaching__:
        source = inspect.getsource(getattr(layers, name))
        assert "checks." not in source and "raise" not in source, name
        assert len(source.splitlines()) <= 25, name


def test_no_private_imports_between_modules():
    source = inspect.getsource(layers)
    assert "import _" not in source and "._" not in source
    assert "layers" not in inspect.getsource(conv).replace("d2lcc.layers", "")


def test_default_lanes_follow_vector_lanes(monkeypatch):
    from d2lcc import cpu

    func = layers.batch_norm_te((1, 4, 4, 6))  # 24 values per channel
    for lanes in (4, 16):
        monkeypatch.setattr(cpu, "vector_lanes", lambda machine=None, dtype="float32",
                            lanes=lanes: lanes)
        text = layers.schedule_batch_norm(func).script()
        assert f"T.vectorized({conv.largest_divisor(24, lanes)})" in text


X = np.zeros((1, 8, 6, 6), np.float32)
S = np.ones(8, np.float32)
W = np.zeros((8, 3, 3), np.float32)
W4 = np.zeros((8, 8, 3, 3), np.float32)
DW = layers.depthwise_conv2d_te(1, 8, 6, 6, 3, 1)
BN = layers.batch_norm_te((1, 8, 6, 6))

# (function, args, kwargs, error, the message after "layers.<function>: ")
BAD_CALLS = [
    (layers.depthwise_conv2d_numpy, (X, W[:4], 1), {}, ValueError, "w has 4 filters"),
    (layers.depthwise_conv2d_numpy, (X[:0], W, 1), {}, ValueError,
     "x must not be empty"),
    (layers.depthwise_conv2d_numpy, (X, W, 3), {}, ValueError, "padding=3 must be <"),
    (layers.depthwise_conv2d_numpy, (X, W.astype(np.float64), 1), {}, TypeError,
     "w has dtype float64"),
    (layers.depthwise_conv2d_numpy, (X[..., :1, :1], W, 0), {}, ValueError,
     "the kernel"),
    (layers.max_pool2d_numpy, (X, 4), {}, ValueError, "height=6 must be a multiple"),
    (layers.max_pool2d_numpy, (X, 0), {}, ValueError, "size=0"),
    (layers.max_pool2d_numpy, (X, True), {}, TypeError, "size"),
    (layers.max_pool2d_numpy, (X[:, :0], 2), {}, ValueError, "x must not be empty"),
    (layers.batch_norm_numpy, (X, S, S, S, S[:4]), {}, ValueError, "var has 4 values"),
    (layers.batch_norm_numpy, (X, S, S, S * np.nan, S), {}, ValueError,
     "mean must be finite"),
    (layers.batch_norm_numpy, (X, S, S, S, -S), {}, ValueError,
     "var + eps must be > 0"),
    (layers.batch_norm_numpy, (X, S, S, S, S), {"eps": -1.0}, ValueError, "eps=-1.0"),
    (layers.fold_batch_norm, (W4, S, S, S, S), {"eps": 0}, ValueError,
     "eps=0.0 must be > 0"),
    (layers.batch_norm_numpy, (X, S, S, S, S), {"eps": float("nan")}, ValueError,
     "eps=nan"),
    (layers.batch_norm_numpy, (X, S, S, S, [1.0] * 8), {}, TypeError, "var must be"),
    (layers.fold_batch_norm, (W4, S, S, S[:4], S), {}, ValueError, "mean has 4 values"),
    (layers.fold_batch_norm, (W, S, S, S, S), {}, ValueError, "w must be 4-D"),
    (layers.fold_batch_norm, (W4[:0], S, S, S, S), {}, ValueError,
     "w must not be empty"),
    (layers.depthwise_conv2d_te, (1, 0, 8, 8, 3, 1), {}, ValueError, "c=0"),
    (layers.depthwise_conv2d_te, (1, 8, 8, 8, 3, -1), {}, ValueError, "padding=-1"),
    (layers.depthwise_conv2d_te, (1, 8, 8, 8, 3, 1, "f32"), {}, ValueError,
     "dtype='f32'"),
    (layers.depthwise_conv2d_te, (1, 8, 2, 2, 7, 2), {}, ValueError, "k=7"),
    (layers.depthwise_conv2d_te, (2**20, 2**12, 8, 8, 3, 1), {}, ValueError,
     "the padded input"),
    (layers.max_pool2d_te, (1, 1, 9, 8, 2), {}, ValueError, "h=9 must be a multiple"),
    (layers.max_pool2d_te, (1, 1, 8, 8, -2), {}, ValueError, "size=-2"),
    (layers.max_pool2d_te, (1, 1, 8, 8, 2, None), {}, ValueError, "dtype=None"),
    (layers.batch_norm_te, ((2, 16, 8),), {}, ValueError, "shape=(2, 16, 8)"),
    (layers.batch_norm_te, ((2, 0, 8, 8),), {}, ValueError, "shape[1]=0"),
    (layers.batch_norm_te, (5,), {}, TypeError, "shape"),
    (layers.batch_norm_te, ((1, 8, 8, 8),), {"eps": float("inf")}, ValueError,
     "eps=inf"),
    (layers.batch_norm_te, ((2**16, 2**16, 2, 2),), {}, ValueError,
     "the input (shape)"),
    (layers.schedule_depthwise, (DW,), {"lanes": 4}, ValueError,
     "output width=6 must be a multiple of lanes=4"),
    (layers.schedule_depthwise, (BN,), {}, ValueError,
     "func has no block named 'dwconv'"),
    (layers.schedule_pool, (None,), {}, TypeError, "func must be a tvm.tirx.PrimFunc"),
    (layers.schedule_pool, (DW,), {}, ValueError, "func has no block named 'pool'"),
    (layers.schedule_batch_norm, (BN,), {"lanes": 0}, ValueError, "lanes=0"),
    (layers.schedule_batch_norm, (BN,), {"lanes": 5}, ValueError,
     "elements per channel=36 must be a multiple of lanes=5"),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_inputs_raise(case):
    func, args, kwargs, error, message = BAD_CALLS[case]
    with pytest.raises(error) as info:
        func(*args, **kwargs)
    expected = f"layers.{func.__name__}: {message}"
    assert str(info.value).startswith(expected), str(info.value)
