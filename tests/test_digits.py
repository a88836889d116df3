import numpy as np
import pytest

from d2lcc import digits
from d2lcc.digits import _loss_and_grads  # private: checked against finite differences


@pytest.fixture(scope="module")
def split():
    return digits.load()


@pytest.fixture(scope="module")
def trained(split):
    return digits.train(split.x_train, split.y_train)


def _forward_loops(x, w):
    # The network one output element at a time, in float64.
    def conv(h, name):
        wt, b = w[name + "_w"].astype(np.float64), w[name + "_b"]
        n, c, height, width = h.shape
        hp = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.empty((n, len(wt), height, width))
        for i in range(height):
            for j in range(width):
                patch = hp[:, :, i:i + 3, j:j + 3].reshape(n, -1)
                out[:, :, i, j] = patch @ wt.reshape(len(wt), -1).T + b
        return np.maximum(out, 0)

    def pool(h, how):
        n, c, height, width = h.shape
        out = np.empty((n, c, height // 2, width // 2))
        for i in range(height // 2):
            for j in range(width // 2):
                out[:, :, i, j] = how(h[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2],
                                      axis=(2, 3))
        return out

    h1 = conv(x.astype(np.float64), "conv1")
    p = pool(h1 + conv(h1, "conv2"), np.max)
    cat = np.concatenate([p, conv(p, "conv3")], axis=1)
    feats = pool(cat, np.mean).reshape(len(x), -1)
    return feats @ w["fc_w"] + w["fc_b"]


def test_load_split(split):
    n_train, n_test = len(split.x_train), len(split.x_test)
    assert n_train + n_test == 1797 and n_test == round(0.2 * 1797)
    for x, y in [(split.x_train, split.y_train), (split.x_test, split.y_test)]:
        assert x.shape[1:] == (1, 8, 8) and x.dtype == np.float32
        assert 0 <= x.min() and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    # disjoint: no held-out image is a training image at the same index of the data set
    again = digits.load()
    np.testing.assert_array_equal(again.x_test, split.x_test)
    other = digits.load(seed=1)
    assert not np.array_equal(other.y_test, split.y_test)
    small = digits.load(test_fraction=0.5)
    assert len(small.x_test) == round(0.5 * 1797)


def test_split_is_a_partition(split):
    from sklearn.datasets import load_digits

    images = (load_digits().images / 16).astype(np.float32)
    keys = {im.tobytes() for im in images}
    seen = [x[0].tobytes() for x in np.concatenate([split.x_train, split.x_test])]
    assert set(seen) == keys


def test_forward_matches_loops():
    w = digits.init_weights(3)
    rng = np.random.default_rng(0)
    w = {k: v + 0.1 * rng.standard_normal(v.shape).astype(np.float32)
         for k, v in w.items()}
    x = rng.random((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(digits.logits(x, w), _forward_loops(x, w), rtol=1e-4,
                               atol=1e-5)


def test_gradients_match_finite_differences(split):
    rng = np.random.default_rng(5)
    w = {k: v.astype(np.float64) + 0.1 * rng.standard_normal(v.shape)
         for k, v in digits.init_weights(1).items()}
    x, y = split.x_train[:6].astype(np.float64), split.y_train[:6]
    loss, grads = _loss_and_grads(x, y, w)
    logits = _forward_loops(x, w)
    z = logits - logits.max(axis=1, keepdims=True)
    expected = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(6), y])
    assert abs(loss - expected) < 1e-9
    eps = 1e-6
    for name, value in w.items():
        for _ in range(4):
            idx = tuple(rng.integers(0, d) for d in value.shape)
            plus = {k: v.copy() for k, v in w.items()}
            minus = {k: v.copy() for k, v in w.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric = (_loss_and_grads(x, y, plus)[0]
                       - _loss_and_grads(x, y, minus)[0]) / (2 * eps)
            assert abs(numeric - grads[name][idx]) < 1e-6, (name, idx)


def test_train_learns_and_is_deterministic(split, trained):
    train_acc = digits.accuracy(digits.logits(split.x_train, trained), split.y_train)
    test_acc = digits.accuracy(digits.logits(split.x_test, trained), split.y_test)
    assert train_acc > 0.97 and test_acc > 0.95
    again = digits.train(split.x_train, split.y_train)
    for k in digits.SHAPES:
        assert again[k].dtype == np.float32
        np.testing.assert_array_equal(again[k], trained[k])


def test_onnx_matches_numpy(split, trained):
    import onnxruntime as ort

    x = split.x_test[:50]
    for batch in ("N", 50):
        model = digits.to_onnx(trained, batch=batch)
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        y = session.run(None, {"x": x})[0]
        np.testing.assert_allclose(y, digits.logits(x, trained), rtol=1e-4, atol=1e-4)
    ops = [n.op_type for n in digits.to_onnx(trained).graph.node]
    assert {"Add", "Concat", "MaxPool", "AveragePool", "MatMul"} <= set(ops)


def test_accuracy_and_agreement():
    scores = np.array([[0.0] * 10, [1.0] + [0.0] * 9, [0.0] * 9 + [np.inf]])
    assert digits.accuracy(scores, np.array([0, 0, 9])) == 1.0
    assert digits.accuracy(scores, np.array([1, 0, 0])) == pytest.approx(1 / 3)
    a = np.array([0.0, 0.5, 1.0], np.float32)
    b = np.array([0.0, 0.25, 1.0], np.float32)
    assert digits.agreement(a, b, 0.25) == (pytest.approx(2 / 3), 1)
    assert digits.output_agreement(a, a, 0.25) == (1.0, 0)
    assert digits.output_agreement(a, b - 0.75, np.float32(0.25)) == (0.0, 4)


@pytest.mark.parametrize("call, error, match", [
    (lambda: digits.load(test_fraction=1.0), ValueError, "test_fraction=1.0"),
    (lambda: digits.load(seed=-1), ValueError, "seed=-1"),
    (lambda: digits.logits(np.zeros((1, 1, 8, 7), np.float32),
                           digits.init_weights()), ValueError, "x has shape"),
    (lambda: digits.logits(np.full((1, 1, 8, 8), np.nan, np.float32),
                           digits.init_weights()), ValueError, "finite"),
    (lambda: digits.logits(np.zeros((1, 1, 8, 8), np.float32), {}), ValueError,
     "no 'conv1_w'"),
    (lambda: digits.logits(np.zeros((1, 1, 8, 8), np.float32),
                           {**digits.init_weights(), "fc_w": np.zeros((10, 96))}),
     ValueError, r"weights\['fc_w'\] has shape"),
    (lambda: digits.train(np.zeros((4, 1, 8, 8), np.float32), np.array([0, 1, 2])),
     ValueError, "3 labels for 4 images"),
    (lambda: digits.train(np.zeros((2, 1, 8, 8), np.float32), np.array([0, 10])),
     ValueError, "class numbers"),
    (lambda: digits.train(np.zeros((2, 1, 8, 8), np.float32), np.array([0, 1]),
                          batch=0), ValueError, "batch=0"),
    (lambda: digits.train(np.zeros((2, 1, 8, 8), np.float32), np.array([0, 1]),
                          learning_rate=np.inf), ValueError, "learning_rate"),
    (lambda: digits.accuracy(np.zeros((2, 9)), np.array([0, 1])), ValueError,
     "scores must be"),
    (lambda: digits.accuracy(np.full((1, 10), np.nan), np.array([0])), ValueError,
     "NaN"),
    (lambda: digits.accuracy(np.zeros((1, 10)), np.array([0.0])), TypeError,
     "labels has dtype"),
    (lambda: digits.to_onnx(digits.init_weights(), batch=0), ValueError, "batch=0"),
    (lambda: digits.to_onnx(digits.init_weights(), opset=12), ValueError, "opset=12"),
    (lambda: digits.output_agreement(np.zeros(2), np.zeros(3), 0.1), ValueError,
     "same shape"),
    (lambda: digits.output_agreement(np.zeros(2), np.zeros(2), 0.0), ValueError,
     "scale=0.0"),
    (lambda: digits.output_agreement(np.zeros(0), np.zeros(0), 0.1), ValueError,
     "empty"),
    (lambda: digits.output_agreement(np.zeros(1), np.array([np.nan]), 0.1),
     ValueError, "finite"),
    (lambda: digits.output_agreement(np.zeros(1, int), np.zeros(1, int), 0.1),
     TypeError, "float array"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
