import numpy as np
import pytest

from d2lcc import models


def _conv_loops(x, w, b, stride, padding):
    # The definition, one output element at a time.
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.empty((n, o, oh, ow), dtype=np.float64)
    for i in range(n):
        for k in range(o):
            for p in range(oh):
                for q in range(ow):
                    rows = slice(p * stride, p * stride + kh)
                    cols = slice(q * stride, q * stride + kw)
                    win = xp[i, :, rows, cols]
                    out[i, k, p, q] = np.sum(win * w[k]) + b[k]
    return out


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2)])
def test_conv2d_numpy_matches_loops(stride, padding):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 6)).astype("float32")
    w = rng.standard_normal((4, 3, 3, 2)).astype("float32")
    b = rng.standard_normal(4).astype("float32")
    got = models.conv2d_numpy(x, w, b, stride=stride, padding=padding)
    ref = _conv_loops(x, w, b, stride, padding)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_conv2d_numpy_errors():
    x = np.zeros((1, 3, 4, 4), "float32")
    with pytest.raises(ValueError, match="conv2d_numpy: x has 3 channels"):
        models.conv2d_numpy(x, np.zeros((2, 4, 3, 3), "float32"),
                            np.zeros(2, "float32"))
    with pytest.raises(ValueError, match="must be 4-D"):
        models.conv2d_numpy(x[0], np.zeros((2, 3, 3, 3), "float32"),
                            np.zeros(2, "float32"))
    w, b = np.zeros((2, 3, 3, 3), "float32"), np.zeros(2, "float32")
    with pytest.raises(ValueError, match="models.conv2d_numpy: stride=0"):
        models.conv2d_numpy(x, w, b, stride=0)
    with pytest.raises(ValueError, match="padding=-1 must be >= 0"):
        models.conv2d_numpy(x, w, b, padding=-1)
    with pytest.raises(ValueError, match="padding=1099511627776"):
        models.conv2d_numpy(x, w, b, padding=2**40)
    with pytest.raises(ValueError, match="padding=100000 makes a padded input"):
        models.conv2d_numpy(x, w, b, padding=100_000)
    with pytest.raises(TypeError, match="models.conv2d_numpy: stride must be an int"):
        models.conv2d_numpy(x, w, b, stride=1.0)
    with pytest.raises(ValueError, match="b has 3 entries but w has 2 output channels"):
        models.conv2d_numpy(x, w, np.zeros(3, "float32"))
    with pytest.raises(ValueError, match="3x3 kernel does not fit the padded 2x2"):
        models.conv2d_numpy(x[:, :, :2, :2], w, b)
    with pytest.raises(TypeError, match="models.conv2d_numpy: x must be a NumPy array"):
        models.conv2d_numpy(None, w, b)
    with pytest.raises(TypeError, match="x has dtype <U1"):
        models.conv2d_numpy(np.full((1, 3, 4, 4), "a"), w, b)


def test_conv2d_numpy_propagates_nan_like_the_definition():
    x = np.ones((1, 1, 3, 3), "float32")
    x[0, 0, 0, 0] = np.nan
    w, b = np.ones((1, 1, 2, 2), "float32"), np.zeros(1, "float32")
    out = models.conv2d_numpy(x, w, b)
    assert np.isnan(out[0, 0, 0, 0]) and np.isfinite(out[0, 0, 1:, 1:]).all()


def test_weights_are_deterministic_and_shaped():
    a, b = models.small_cnn_weights(3), models.small_cnn_weights(3)
    assert list(a) == list(models.SMALL_CNN_SHAPES)
    for name, shape in models.SMALL_CNN_SHAPES.items():
        assert a[name].shape == shape and a[name].dtype == np.float32
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["fc_w"], models.small_cnn_weights(4)["fc_w"])
    with pytest.raises(TypeError, match="small_cnn_weights: seed"):
        models.small_cnn_weights(1.5)
    with pytest.raises(ValueError, match="small_cnn_weights: seed=-1 must be >= 0"):
        models.small_cnn_weights(-1)


def test_small_cnn_numpy_matches_loops():
    rng = np.random.default_rng(11)
    w = models.small_cnn_weights(0)
    x = rng.standard_normal((2, 3, 32, 32)).astype("float32")
    h = np.maximum(_conv_loops(x, w["conv1_w"], w["conv1_b"], 2, 1), 0)
    h = np.maximum(_conv_loops(h, w["conv2_w"], w["conv2_b"], 2, 1), 0)
    ref = h.reshape(2, -1) @ w["fc_w"].T.astype(np.float64) + w["fc_b"]
    got = models.small_cnn_numpy(x, w)
    assert got.shape == (2, 10)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_teaching_functions_are_what_the_checked_ones_run():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 32, 32)).astype("float32")
    w = models.small_cnn_weights(2)
    np.testing.assert_array_equal(models.small_cnn_forward(x, w),
                                  models.small_cnn_numpy(x, w))
    b = w["conv1_b"]
    np.testing.assert_allclose(models.conv2d_taps(x, w["conv1_w"], b, 2, 1),
                               _conv_loops(x, w["conv1_w"], b, 2, 1),
                               rtol=1e-5, atol=1e-5)
    assert "conv2d_taps" in models.__teaching__
    assert "small_cnn_forward" in models.__teaching__


def test_check_weights():
    w = models.small_cnn_weights(0)
    assert models.check_weights(w) is None
    assert models.check_weights(dict(w, extra=np.zeros(3))) is None  # extra keys: fine
    with pytest.raises(ValueError, match="models.check_weights: weights has no 'fc_b'"):
        models.check_weights({k: v for k, v in w.items() if k != "fc_b"})
    with pytest.raises(ValueError, match="my.caller: weights\\['fc_w'\\] has shape"):
        models.check_weights(dict(w, fc_w=np.zeros((10, 5), "float32")), "my.caller")
    with pytest.raises(TypeError, match="models.check_weights: weights must be a dict"):
        models.check_weights([1, 2])
    with pytest.raises(TypeError, match="models.check_weights: caller"):
        models.check_weights(w, caller=None)


def test_small_cnn_numpy_errors():
    w = models.small_cnn_weights(0)
    with pytest.raises(ValueError, match="expected \\(N, 3, 32, 32\\)"):
        models.small_cnn_numpy(np.zeros((1, 3, 16, 16), "float32"), w)
    bad = dict(w, fc_w=np.zeros((10, 5), "float32"))
    with pytest.raises(ValueError, match="weights\\['fc_w'\\] has shape"):
        models.small_cnn_numpy(np.zeros((1, 3, 32, 32), "float32"), bad)
    missing = {k: v for k, v in w.items() if k != "conv1_b"}
    with pytest.raises(ValueError, match="no 'conv1_b'"):
        models.small_cnn_numpy(np.zeros((1, 3, 32, 32), "float32"), missing)
    with pytest.raises(TypeError, match="small_cnn_numpy: weights must be a dict"):
        models.small_cnn_numpy(np.zeros((1, 3, 32, 32), "float32"), None)
    with pytest.raises(TypeError, match=r"weights\['fc_b'\] has dtype int64"):
        models.small_cnn_numpy(np.zeros((1, 3, 32, 32), "float32"),
                               dict(w, fc_b=np.zeros(10, "int64")))
    with pytest.raises(TypeError, match="small_cnn_numpy: x must be a NumPy array"):
        models.small_cnn_numpy([[0.0]], w)
    with pytest.raises(ValueError, match="small_cnn_numpy: x must not be empty"):
        models.small_cnn_numpy(np.zeros((0, 3, 32, 32), "float32"), w)


def test_small_cnn_onnx_runs_like_numpy():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(5)
    w = models.small_cnn_weights(1)
    model = models.small_cnn_onnx(w, batch="N")
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    for n in (1, 3):
        x = rng.standard_normal((n, 3, 32, 32)).astype("float32")
        np.testing.assert_allclose(sess.run(None, {"x": x})[0],
                                   models.small_cnn_numpy(x, w), rtol=1e-4, atol=1e-4)


def test_small_cnn_onnx_errors():
    w = models.small_cnn_weights(0)
    with pytest.raises(ValueError, match="small_cnn_onnx: batch=0"):
        models.small_cnn_onnx(w, batch=0)
    with pytest.raises(ValueError, match="small_cnn_onnx: weights has no"):
        models.small_cnn_onnx({})
    with pytest.raises(TypeError, match="small_cnn_onnx: batch must be an int"):
        models.small_cnn_onnx(w, batch=True)
    with pytest.raises(ValueError, match="small_cnn_onnx: batch must not be empty"):
        models.small_cnn_onnx(w, batch="")
    with pytest.raises(ValueError, match="small_cnn_onnx: opset=19 must be <= 18"):
        models.small_cnn_onnx(w, opset=19)
    assert models.small_cnn_onnx(w, opset=18).opset_import[0].version == 18
