"""A small convolutional network that several chapters compile, in three forms.

The network classifies 3x32x32 images into 10 classes:

    conv 3->8 (3x3, stride 2, pad 1) -> ReLU -> conv 8->16 (3x3, stride 2, pad 1)
    -> ReLU -> flatten -> dense 1024->10

:func:`small_cnn_weights` draws its weights from a seeded generator,
:func:`small_cnn_numpy` runs it in plain NumPy (the reference every compiled
version is checked against), and :func:`small_cnn_onnx` writes it as an ONNX
model built with ``onnx.helper``, so no file is ever downloaded. The ONNX
model is what TVM's importer and onnxruntime both read.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

# (name, shape) of each weight, in the order the network uses them.
SMALL_CNN_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1_w": (8, 3, 3, 3),
    "conv1_b": (8,),
    "conv2_w": (16, 8, 3, 3),
    "conv2_b": (16,),
    "fc_w": (10, 16 * 8 * 8),
    "fc_b": (10,),
}
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10


def small_cnn_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Return deterministic float32 weights for the small CNN.

    Weights are normal with He scaling (std = sqrt(2 / fan_in)) so that
    activations keep their size through the layers; biases are small.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"small_cnn_weights: seed must be an int, got {type(seed).__name__}")
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in SMALL_CNN_SHAPES.items():
        if name.endswith("_b"):
            weights[name] = (0.1 * rng.standard_normal(shape)).astype("float32")
        else:
            fan_in = int(np.prod(shape[1:]))
            weights[name] = (np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)).astype("float32")
    return weights


def _check_weights(func: str, weights: Mapping[str, np.ndarray]) -> None:
    for name, shape in SMALL_CNN_SHAPES.items():
        if name not in weights:
            raise ValueError(f"{func}: weights has no {name!r} (expected keys {list(SMALL_CNN_SHAPES)})")
        if tuple(weights[name].shape) != shape:
            raise ValueError(f"{func}: weights[{name!r}] has shape {tuple(weights[name].shape)}, expected {shape}")


def conv2d_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """2-D convolution (cross-correlation, NCHW input, OIHW weight) in NumPy.

    Each of the KH*KW filter taps adds one matrix product of the strided input
    window and the weights, so the Python loop runs only over the taps.
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_numpy: x and w must be 4-D (NCHW, OIHW), got {x.ndim}-D and {w.ndim}-D")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"conv2d_numpy: x has {x.shape[1]} channels but w expects {w.shape[1]}")
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d_numpy: stride={stride} must be >= 1 and padding={padding} >= 0")
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, oh, ow, o), dtype=np.float32)
    for r in range(kh):
        for s in range(kw):
            window = xp[:, :, r : r + stride * oh : stride, s : s + stride * ow : stride]
            out += np.einsum("nchw,oc->nhwo", window, w[:, :, r, s])
    return (out + b).transpose(0, 3, 1, 2)


def small_cnn_numpy(x: np.ndarray, weights: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run the small CNN on a batch ``x`` of shape (N, 3, 32, 32); return (N, 10) logits."""
    _check_weights("small_cnn_numpy", weights)
    if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"small_cnn_numpy: x has shape {x.shape}, expected (N, {', '.join(map(str, IMAGE_SHAPE))})")
    h = np.maximum(conv2d_numpy(x, weights["conv1_w"], weights["conv1_b"], stride=2, padding=1), 0)
    h = np.maximum(conv2d_numpy(h, weights["conv2_w"], weights["conv2_b"], stride=2, padding=1), 0)
    h = h.reshape(h.shape[0], -1)
    return h @ weights["fc_w"].T + weights["fc_b"]


def small_cnn_onnx(weights: Mapping[str, np.ndarray], batch: int | str = 1, opset: int = 17) -> "onnx.ModelProto":
    """Return the small CNN as an ``onnx.ModelProto`` with the weights as initializers.

    Parameters
    ----------
    weights
        The arrays of :func:`small_cnn_weights` (keys and shapes as in ``SMALL_CNN_SHAPES``).
    batch
        The batch size of the input ``"x"``; a string such as ``"N"`` makes it symbolic.
    opset
        The ONNX operator set version the model declares.

    Raises
    ------
    ValueError
        If a weight is missing or has the wrong shape, or ``batch`` is not a
        positive int or a non-empty string.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _check_weights("small_cnn_onnx", weights)
    if not (isinstance(batch, str) and batch) and not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"small_cnn_onnx: batch={batch!r} must be a positive int or a dimension name")
    conv = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["x", "conv1_w", "conv1_b"], ["c1"], **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "conv2_w", "conv2_b"], ["c2"], **conv),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Flatten", ["r2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *IMAGE_SHAPE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, NUM_CLASSES])],
        initializer=[numpy_helper.from_array(np.asarray(weights[k], "float32"), k) for k in SMALL_CNN_SHAPES],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    onnx.checker.check_model(model)
    return model
