"""Unit tests of d2lcc.layers: depthwise convolution, max pooling, batch norm and its folding."""

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
    call, out = conv.runner(conv.build(mod), *arrays, out_shape=out_shape)
    call()
    return out.numpy()


def test_depthwise_numpy_is_grouped_conv(x):
    w = np.random.default_rng(5).standard_normal((16, 3, 3), dtype=np.float32)
    ref = np.concatenate(
        [conv.conv2d_numpy(x[:, c : c + 1], w[c][None, None], 1) for c in range(16)], axis=1
    )
    np.testing.assert_allclose(layers.depthwise_conv2d_numpy(x, w, 1), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="layers.depthwise_conv2d_numpy"):
        layers.depthwise_conv2d_numpy(x, w[:8], 1)


def test_depthwise_schedules_match_numpy(x):
    w = np.random.default_rng(6).standard_normal((16, 3, 3), dtype=np.float32)
    ref = layers.depthwise_conv2d_numpy(x, w, 1)
    func = layers.depthwise_conv2d_te(2, 16, 8, 12, 3, 1)
    for mod in (func, layers.schedule_depthwise(func)):
        np.testing.assert_allclose(_run(mod, x, w, out_shape=ref.shape), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="layers.depthwise_conv2d_te"):
        layers.depthwise_conv2d_te(1, 0, 8, 8, 3, 1)


def test_max_pool(x):
    ref = layers.max_pool2d_numpy(x, 2)
    assert ref.shape == (2, 16, 4, 6)
    assert ref[1, 3, 2, 5] == x[1, 3, 4:6, 10:12].max()
    func = layers.max_pool2d_te(2, 16, 8, 12, 2)
    for mod in (func, layers.schedule_pool(func)):
        np.testing.assert_array_equal(_run(mod, x, out_shape=ref.shape), ref)
    with pytest.raises(ValueError, match="layers.max_pool2d_numpy"):
        layers.max_pool2d_numpy(x, 5)
    with pytest.raises(ValueError, match="layers.max_pool2d_te"):
        layers.max_pool2d_te(1, 1, 9, 8, 2)


def test_batch_norm(x, stats):
    gamma, beta, mean, var = stats
    ref = layers.batch_norm_numpy(x, *stats)
    c = 5
    expect = (x[:, c] - mean[c]) / np.sqrt(var[c] + 1e-5) * gamma[c] + beta[c]
    np.testing.assert_allclose(ref[:, c], expect, rtol=1e-5, atol=1e-5)
    func = layers.batch_norm_te(x.shape)
    for mod in (func, layers.schedule_batch_norm(func)):
        np.testing.assert_allclose(_run(mod, x, *stats, out_shape=x.shape), ref, rtol=1e-5, atol=1e-5)
    packed = layers.schedule_batch_norm(layers.batch_norm_te((2, 2, 8, 12, 8)))
    y = _run(packed, conv.pack_data(x, 8), *stats, out_shape=(2, 2, 8, 12, 8))
    np.testing.assert_allclose(conv.unpack_data(y), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="layers.batch_norm_te"):
        layers.batch_norm_te((2, 16, 8))


def test_fold_batch_norm(x, stats):
    w = np.random.default_rng(7).standard_normal((16, 16, 3, 3), dtype=np.float32)
    w_folded, bias = layers.fold_batch_norm(w, *stats)
    ref = layers.batch_norm_numpy(conv.conv2d_numpy(x, w, 1), *stats)
    got = conv.conv2d_numpy(x, w_folded, 1) + bias.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="layers.fold_batch_norm"):
        layers.fold_batch_norm(w, *(s[:8] for s in stats))
