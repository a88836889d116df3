"""A small CNN trained in NumPy on scikit-learn's handwritten digits.

The QNN chapter measures how much accuracy 8-bit quantization costs, so it
needs a model that has learned something and a held-out set to score it on,
both made without a download. scikit-learn ships 1797 digits of 8x8 pixels
inside its wheel (``sklearn.datasets.load_digits``). The network is

    conv 1->8 (3x3, pad 1) -> ReLU = h1;  conv 8->8 (3x3, pad 1) -> ReLU = h2
    max pool 2x2 (h1 + h2) = p;  conv 8->16 (3x3, pad 1) -> ReLU = h3
    average pool 2x2 (concat(p, h3)) -> flatten (96) -> dense 96->10 (logits)

small enough to train in a few seconds on two cores, with a residual add and
a concatenation so that its quantized form uses ``QLinearAdd`` and
``QLinearConcat`` besides the convolutions and the matrix product.

:func:`load` splits the data with a seeded permutation, :func:`train` fits the
weights with Adam (seeded, deterministic on a given machine), :func:`forward`
is the NumPy forward pass (``__teaching__``, shown in the book) and
:func:`logits` its checked wrapper, :func:`to_onnx` writes the float model with
``onnx.helper``, :func:`accuracy` scores logits and :func:`agreement`
(``__teaching__``) compares two quantized outputs in units of their scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import checks
from .models import conv2d_taps

__teaching__ = ("forward", "agreement")

IMAGE_SHAPE = (1, 8, 8)
NUM_CLASSES = 10
#: (name, shape) of each weight, in the order the network uses them.
SHAPES: dict[str, tuple[int, ...]] = {
    "conv1_w": (8, 1, 3, 3),
    "conv1_b": (8,),
    "conv2_w": (8, 8, 3, 3),
    "conv2_b": (8,),
    "conv3_w": (16, 8, 3, 3),
    "conv3_b": (16,),
    "fc_w": (96, NUM_CLASSES),
    "fc_b": (NUM_CLASSES,),
}
_FLOATS = ("float32", "float64")


@dataclass(frozen=True)
class Split:
    """Images (N, 1, 8, 8) float32 in [0, 1] and int64 labels, training and held out."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x = _check_images("digits.Split", getattr(self, "x_" + part), "x_" + part)
            _check_labels("digits.Split", "y_" + part, getattr(self, "y_" + part),
                          len(x))


def load(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Load the 1797 digits and split them with a permutation seeded by ``seed``.

    Pixels (0 to 16 in the data set) are scaled to [0, 1]. ``test_fraction``
    (0.05 to 0.95) of the images, rounded, are held out.
    """
    from sklearn.datasets import load_digits

    func = "digits.load"
    test_fraction = checks.real(func, "test_fraction", test_fraction, minimum=0.05,
                                maximum=0.95)
    seed = checks.integer(func, "seed", seed, minimum=0, maximum=2**63 - 1)
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, fit = order[:n_test], order[n_test:]
    return Split(x[fit], y[fit], x[test], y[test])


def init_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float32 weights: He-scaled normal kernels, zero biases."""
    seed = checks.integer("digits.init_weights", "seed", seed, minimum=0,
                          maximum=2**63 - 1)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in SHAPES.items():
        if name.endswith("_b"):
            weights[name] = np.zeros(shape, np.float32)
            continue
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        std = np.sqrt(2.0 / fan_in)
        weights[name] = (std * rng.standard_normal(shape)).astype(np.float32)
    return weights


def forward(x, weights):
    """The digits network in NumPy: images (N, 1, 8, 8) -> logits (N, 10)."""
    def conv_relu(h, name):
        h = conv2d_taps(h, weights[name + "_w"], weights[name + "_b"], padding=1)
        return np.maximum(h, 0)

    def pool(h, reduce):  # 2x2 windows, stride 2
        n, c, height, width = h.shape
        return reduce(h.reshape(n, c, height // 2, 2, width // 2, 2), axis=(3, 5))

    h1 = conv_relu(x, "conv1")
    h2 = conv_relu(h1, "conv2")
    p = pool(h1 + h2, np.max)  # residual add, then max pool: (N, 8, 4, 4)
    h3 = conv_relu(p, "conv3")
    h = pool(np.concatenate([p, h3], axis=1), np.mean)  # (N, 24, 2, 2)
    return h.reshape(len(h), -1) @ weights["fc_w"] + weights["fc_b"]


def _check_weights(weights: Mapping[str, np.ndarray], func: str) -> None:
    """Raise ValueError/TypeError unless ``weights`` has every array of ``SHAPES``."""
    if not isinstance(weights, Mapping):
        raise TypeError(f"{func}: weights must be a mapping of arrays, got "
                        f"{type(weights).__name__}")
    for name, shape in SHAPES.items():
        if name not in weights:
            raise ValueError(f"{func}: weights has no {name!r}")
        value = checks.array(func, f"weights[{name!r}]", weights[name],
                             dtypes=_FLOATS, finite=True)
        if value.shape != shape:
            raise ValueError(f"{func}: weights[{name!r}] has shape {value.shape}, "
                             f"expected {shape}")


def _check_images(func: str, x, name: str = "x") -> np.ndarray:
    x = checks.array(func, name, x, ndim=4, dtypes=_FLOATS, nonempty=True, finite=True)
    if tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{func}: {name} has shape {x.shape}, expected (N, 1, 8, 8)")
    return x


def _check_labels(func: str, name: str, y, n: int) -> np.ndarray:
    y = checks.array(func, name, y, ndim=1, dtypes=("int32", "int64"))
    if len(y) != n:
        raise ValueError(f"{func}: {name} has {len(y)} labels for {n} images")
    if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise ValueError(f"{func}: {name} must hold class numbers 0 to "
                         f"{NUM_CLASSES - 1}")
    return y


def logits(x: np.ndarray, weights: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run the network on images ``x`` (N, 1, 8, 8); return float32 logits (N, 10).

    Checks its arguments, then runs :func:`forward`.
    """
    x = _check_images("digits.logits", x)
    _check_weights(weights, "digits.logits")
    arrays = {k: np.asarray(weights[k], np.float32) for k in SHAPES}
    return forward(x.astype(np.float32), arrays).astype(np.float32)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows of ``scores`` (N, 10) whose largest entry is at ``labels``."""
    func = "digits.accuracy"
    scores = checks.array(func, "scores", scores, ndim=2, nonempty=True)
    if scores.dtype.kind != "f" or scores.shape[1] != NUM_CLASSES:
        raise ValueError(f"{func}: scores must be float (N, {NUM_CLASSES}), got "
                         f"{scores.dtype} {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"{func}: scores holds NaN")
    labels = _check_labels(func, "labels", labels, len(scores))
    return float(np.mean(scores.argmax(axis=1) == labels))


def agreement(a, b, scale):
    """Fraction of equal outputs, and the largest difference in units of ``scale``."""
    ulps = np.rint(np.abs(a.astype(np.float64) - b) / scale)
    return float(np.mean(ulps == 0)), int(ulps.max())


def output_agreement(a: np.ndarray, b: np.ndarray, scale: float) -> tuple[float, int]:
    """Compare two dequantized outputs of one quantized model, run two ways.

    ``a`` and ``b`` are float arrays of the same shape holding ``scale`` times
    integers (what a final DequantizeLinear returns). Returns the fraction of
    entries whose integers are equal (bit-exact outputs) and the largest
    difference in units of the last place, i.e. of ``scale``. Checks its
    arguments, then runs :func:`agreement`.
    """
    func = "digits.output_agreement"
    a = checks.array(func, "a", a, nonempty=True, finite=True)
    b = checks.array(func, "b", b, nonempty=True, finite=True)
    if a.shape != b.shape:
        raise ValueError(f"{func}: a and b must have the same shape, got {a.shape} "
                         f"and {b.shape}")
    for name, value in (("a", a), ("b", b)):
        if value.dtype.kind != "f":
            raise TypeError(f"{func}: {name} must be a float array, got {value.dtype}")
    scale = checks.real(func, "scale", scale, positive=True)
    return agreement(a, b, scale)


# --------------------------------------------------------------------------
# Training: the same network with a backward pass (im2col convolutions).
# --------------------------------------------------------------------------


def _im2col(x: np.ndarray) -> np.ndarray:
    """3x3 patches of ``x`` padded by 1: (N*H*W, C*9), rows in (n, h, w) order."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    patches = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    return patches.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def _col2im(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Adjoint of :func:`_im2col`: sum each patch gradient back into the image."""
    n, c, h, w = shape
    patches = cols.reshape(n, h, w, c, 3, 3)
    grad = np.zeros((n, c, h + 2, w + 2), cols.dtype)
    for r in range(3):
        for s in range(3):
            grad[:, :, r:r + h, s:s + w] += patches[..., r, s].transpose(0, 3, 1, 2)
    return grad[:, :, 1:-1, 1:-1]


def _conv(x, w, b, tape):
    cols = _im2col(x)
    out = cols @ w.reshape(len(w), -1).T + b
    n, _, h, wd = x.shape
    y = np.maximum(out, 0)
    tape.append((cols, x.shape, out > 0))
    return y.reshape(n, h, wd, -1).transpose(0, 3, 1, 2)


def _conv_back(dy, w, record):
    cols, shape, active = record
    d = dy.transpose(0, 2, 3, 1).reshape(-1, len(w)) * active
    dw = (d.T @ cols).reshape(w.shape)
    return _col2im(d @ w.reshape(len(w), -1), shape), dw, d.sum(axis=0)


def _quads(h):
    """(N, C, H, W) -> (N, C, H/2, W/2, 4): the four values of each 2x2 window."""
    n, c, height, width = h.shape
    windows = h.reshape(n, c, height // 2, 2, width // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return windows.reshape(n, c, height // 2, width // 2, 4)


def _unquads(g):
    """Adjoint of :func:`_quads` (a permutation, so also its inverse)."""
    n, c, h2, w2, _ = g.shape
    windows = g.reshape(n, c, h2, w2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return windows.reshape(n, c, 2 * h2, 2 * w2)


def _loss_and_grads(x, y, wts):
    """Mean cross-entropy of a batch and the gradient of every weight."""
    tape: list = []
    h1 = _conv(x, wts["conv1_w"], wts["conv1_b"], tape)
    h2 = _conv(h1, wts["conv2_w"], wts["conv2_b"], tape)
    quads = _quads(h1 + h2)
    first = quads.argmax(axis=-1)[..., None] == np.arange(4)  # one max per window
    p = quads.max(axis=-1)
    h3 = _conv(p, wts["conv3_w"], wts["conv3_b"], tape)
    feats = _quads(np.concatenate([p, h3], axis=1)).mean(axis=-1).reshape(len(x), -1)
    z = feats @ wts["fc_w"] + wts["fc_b"]
    z = np.exp(z - z.max(axis=1, keepdims=True))
    prob = z / z.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(prob[np.arange(len(y)), y] + 1e-12))
    dz = prob
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    g = {"fc_w": feats.T @ dz, "fc_b": dz.sum(axis=0)}
    dfeats = (dz @ wts["fc_w"].T).reshape(len(x), 24, 2, 2, 1) / 4
    dcat = _unquads(np.broadcast_to(dfeats, (len(x), 24, 2, 2, 4)))
    dp, g["conv3_w"], g["conv3_b"] = _conv_back(dcat[:, 8:], wts["conv3_w"], tape[2])
    dp = dp + dcat[:, :8]
    dsum = _unquads(first * dp[..., None])
    dh1, g["conv2_w"], g["conv2_b"] = _conv_back(dsum, wts["conv2_w"], tape[1])
    _, g["conv1_w"], g["conv1_b"] = _conv_back(dh1 + dsum, wts["conv1_w"], tape[0])
    return loss, g


def train(x: np.ndarray, y: np.ndarray, *, epochs: int = 12, batch: int = 32,
          learning_rate: float = 0.005, seed: int = 0) -> dict[str, np.ndarray]:
    """Fit the network to images ``x`` (N, 1, 8, 8) and labels ``y`` with Adam.

    Each of the ``epochs`` passes over the data takes steps on mini-batches
    of ``batch`` images (the last one smaller; a ``batch`` of N or more is
    full-batch gradient descent) with step size ``learning_rate``.

    Starts from :func:`init_weights` (``seed``) and visits the images in an
    order drawn from the same seed, so two calls on one machine return the
    same float32 weights. Returns them in the layout :func:`forward` reads.
    """
    from threadpoolctl import threadpool_limits

    func = "digits.train"
    x = _check_images(func, x).astype(np.float32)
    y = _check_labels(func, "y", y, len(x))
    epochs = checks.positive_int(func, "epochs", epochs, maximum=1000)
    batch = checks.positive_int(func, "batch", batch)
    learning_rate = checks.real(func, "learning_rate", learning_rate, positive=True,
                                maximum=1.0)
    with threadpool_limits(limits=1):  # tiny matrices: threads only add waiting
        return _adam(x, y, init_weights(seed), epochs, batch, learning_rate, seed)


def _adam(x, y, wts, epochs, batch, learning_rate, seed):
    rng = np.random.default_rng(seed)
    m = {k: np.zeros_like(v) for k, v in wts.items()}
    v = {k: np.zeros_like(w) for k, w in wts.items()}
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            _, grads = _loss_and_grads(x[idx], y[idx], wts)
            step += 1
            for k, g in grads.items():  # Adam, betas 0.9 and 0.999
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                m_hat, v_hat = m[k] / (1 - 0.9**step), v[k] / (1 - 0.999**step)
                wts[k] = (wts[k] - learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
                          ).astype(np.float32)
    return wts


def to_onnx(weights: Mapping[str, np.ndarray], batch: int | str = "N",
            opset: int = 17) -> "onnx.ModelProto":
    """Return the float32 network as an ``onnx.ModelProto`` built with ``onnx.helper``.

    Parameters
    ----------
    weights
        Arrays with the names and shapes of ``SHAPES`` (from :func:`train`).
    batch
        The batch size of the input ``"x"``: an int (1 to ``checks.MAX_COUNT``)
        or a non-empty string such as ``"N"`` for a symbolic size.
    opset
        The ONNX operator set the model declares, 13 to 18.

    The output ``"y"`` holds the logits (N, 10); the dense layer is a MatMul
    and an Add, which onnxruntime's quantizer turns into QLinearMatMul and
    QLinearAdd (a Gemm would become the Microsoft-only QGemm).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    func = "digits.to_onnx"
    _check_weights(weights, func)
    if isinstance(batch, str):
        checks.string(func, "batch", batch)
    else:
        batch = checks.positive_int(func, "batch", batch)
    opset = checks.integer(func, "opset", opset, minimum=13, maximum=18)
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "conv1_w", "conv1_b"], ["c1"], **conv),
        node("Relu", ["c1"], ["h1"]),
        node("Conv", ["h1", "conv2_w", "conv2_b"], ["c2"], **conv),
        node("Relu", ["c2"], ["h2"]),
        node("Add", ["h1", "h2"], ["s"]),
        node("MaxPool", ["s"], ["p"], **pool),
        node("Conv", ["p", "conv3_w", "conv3_b"], ["c3"], **conv),
        node("Relu", ["c3"], ["h3"]),
        node("Concat", ["p", "h3"], ["cat"], axis=1),
        node("AveragePool", ["cat"], ["a"], **pool),
        node("Flatten", ["a"], ["f"], axis=1),
        node("MatMul", ["f", "fc_w"], ["m"]),
        node("Add", ["m", "fc_b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "digits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *IMAGE_SHAPE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, NUM_CLASSES])],
        initializer=[numpy_helper.from_array(np.asarray(weights[k], "float32"), k)
                     for k in SHAPES],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    onnx.checker.check_model(model)
    return model
