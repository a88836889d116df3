"""Unit tests of d2lcc.conv: references, layouts, TensorIR schedules, onnxruntime wrapper."""

import numpy as np
import pytest

from d2lcc import conv


def _brute(x, w, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, hp, wp = xp.shape
    o, _, kh, kw = w.shape
    y = np.zeros((n, o, hp - kh + 1, wp - kw + 1), np.float64)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            y[:, :, i, j] = np.einsum("nchw,ochw->no", xp[:, :, i : i + kh, j : j + kw], w)
    return y


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 9, 7), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    return x, w


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_references_match_brute_force(data, padding):
    x, w = data
    ref = _brute(x, w, padding)
    np.testing.assert_allclose(conv.conv2d_numpy(x, w, padding), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv.conv2d_im2col(x, w, padding), ref, rtol=1e-4, atol=1e-4)


def test_im2col_shape_and_columns(data):
    x, _ = data
    cols = conv.im2col(x[0], 3, 3, 1)
    assert cols.shape == (16 * 9, 9 * 7)
    # Column (row 0, col 0) holds the top-left window, zero-padded.
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    np.testing.assert_array_equal(cols[:, 0], xp[:, :3, :3].reshape(-1))


def test_pack_unpack_roundtrip(data):
    x, w = data
    np.testing.assert_array_equal(conv.unpack_data(conv.pack_data(x, 4)), x)
    wp = conv.pack_weight(w, 4, 8)
    assert wp.shape == (2, 4, 3, 3, 4, 8)
    assert wp[1, 2, 0, 1, 3, 5] == w[1 * 8 + 5, 2 * 4 + 3, 0, 1]


def test_bad_inputs_raise(data):
    x, w = data
    with pytest.raises(ValueError, match="conv.conv2d_numpy"):
        conv.conv2d_numpy(x, w[:, :3], 1)
    with pytest.raises(ValueError, match="padding"):
        conv.conv2d_im2col(x, w, -1)
    with pytest.raises(ValueError, match="conv.im2col"):
        conv.im2col(x, 3, 3)
    with pytest.raises(ValueError, match="conv.pack_data"):
        conv.pack_data(x, 5)
    with pytest.raises(ValueError, match="conv.pack_weight"):
        conv.pack_weight(w, 3, 8)
    with pytest.raises(ValueError, match="conv.conv2d_nchwc_te"):
        conv.conv2d_nchwc_te(1, 12, 8, 8, 16, 3, 1, 8)


def test_simd_floats():
    assert conv.simd_floats() in (8, 16)


def _run(mod, *arrays, out_shape):
    call, out = conv.runner(conv.build(mod), *arrays, out_shape=out_shape)
    call()
    return out.numpy()


def test_naive_and_tiled_match_numpy(data):
    x, w = data
    ref = conv.conv2d_numpy(x, w, 1)
    func = conv.conv2d_nchw_te(2, 16, 9, 7, 16, 3, 1)
    np.testing.assert_allclose(_run(func, x, w, out_shape=ref.shape), ref, rtol=1e-4, atol=1e-3)
    tiled = conv.schedule_tiled(func, oc_tile=4, ow_tile=7)
    np.testing.assert_allclose(_run(tiled, x, w, out_shape=ref.shape), ref, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="oc_tile"):
        conv.schedule_tiled(func, oc_tile=5)
    with pytest.raises(ValueError, match="ow_tile"):
        conv.schedule_tiled(func, ow_tile=4)


@pytest.mark.parametrize("block", [8, 16])
def test_packed_matches_numpy(data, block):
    x, w = data
    ref = conv.conv2d_numpy(x, w, 1)
    func = conv.conv2d_nchwc_te(2, 16, 9, 7, 16, 3, 1, block)
    out_shape = (2, 16 // block, 9, 7, block)
    y = _run(conv.schedule_packed(func), conv.pack_data(x, block), conv.pack_weight(w, block, block),
             out_shape=out_shape)
    np.testing.assert_allclose(conv.unpack_data(y), ref, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="ow_tile"):
        conv.schedule_packed(func, ow_tile=3)


def test_onnxruntime_conv2d(data):
    x, w = data
    f = conv.onnxruntime_conv2d(w, 1, num_threads=1)
    np.testing.assert_allclose(f(x), conv.conv2d_numpy(x, w, 1), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="conv.onnxruntime_conv2d"):
        conv.onnxruntime_conv2d(w.astype(np.float64), 1)


def test_packed_with_bias(data):
    x, w = data
    bias = np.random.default_rng(8).standard_normal(16).astype(np.float32)
    ref = conv.conv2d_numpy(x, w, 1) + bias.reshape(1, -1, 1, 1)
    func = conv.conv2d_nchwc_te(2, 16, 9, 7, 16, 3, 1, 8, bias=True)
    y = _run(conv.schedule_packed(func), conv.pack_data(x, 8), conv.pack_weight(w, 8, 8), bias.reshape(2, 8),
             out_shape=(2, 2, 9, 7, 8))
    np.testing.assert_allclose(conv.unpack_data(y), ref, rtol=1e-4, atol=1e-3)
