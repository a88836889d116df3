"""A small convolutional network that several chapters compile, in three forms.

The network classifies 3x32x32 images into 10 classes:

    conv 3->8 (3x3, stride 2, pad 1) -> ReLU -> conv 8->16 (3x3, stride 2, pad 1)
    -> ReLU -> flatten -> dense 1024->10

:func:`small_cnn_weights` draws its weights from a seeded generator,
:func:`small_cnn_numpy` runs it in plain NumPy (the reference every compiled
version is checked against), and :func:`small_cnn_onnx` writes it as an ONNX
model built with ``onnx.helper``, so no file is ever downloaded. The ONNX
model is what TVM's importer and onnxruntime both read.

The book shows the NumPy reference, :func:`conv2d_taps` and
:func:`small_cnn_forward` (``__teaching__``), as cells a reader can edit; they
check nothing. :func:`conv2d_numpy` and :func:`small_cnn_numpy` check their
arguments and then call them.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from . import checks

__teaching__ = ("conv2d_taps", "small_cnn_forward")

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


#: The ONNX operator sets :func:`small_cnn_onnx` can declare: 7 (the first
#: with today's Gemm) to 18, the last that ONNX IR version 8 (what the model
#: declares, readable by every onnxruntime since 1.10) supports.
ONNX_OPSETS = range(7, 19)
#: Most elements a padded input of :func:`conv2d_numpy` may have (1 GiB of float32).
MAX_PADDED_ELEMENTS = 1 << 28
_FLOAT_DTYPES = ("float16", "float32", "float64")


def small_cnn_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Return deterministic float32 weights for the small CNN.

    Weights are normal with He scaling (std = sqrt(2 / fan_in)) so that
    activations keep their size through the layers; biases are small.
    ``seed`` is an int in ``[0, 2**63 - 1]``.
    """
    seed = checks.integer("models.small_cnn_weights", "seed", seed, minimum=0,
                          maximum=2**63 - 1)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in SMALL_CNN_SHAPES.items():
        if name.endswith("_b"):
            weights[name] = (0.1 * rng.standard_normal(shape)).astype("float32")
        else:
            std = np.sqrt(2.0 / int(np.prod(shape[1:])))
            weights[name] = (std * rng.standard_normal(shape)).astype("float32")
    return weights


def check_weights(weights: Mapping[str, np.ndarray],
                  caller: str = "models.check_weights") -> None:
    """Raise unless ``weights`` holds every array of the small CNN, as float, in shape.

    ``weights`` must map each name of ``SMALL_CNN_SHAPES`` to an array of that
    shape (float16/32/64, finite or not); extra keys are ignored. Errors start
    with ``caller``, the public function that checks its argument ``weights``.
    """
    checks.string("models.check_weights", "caller", caller)
    if not isinstance(weights, Mapping):
        raise TypeError(f"{caller}: weights must be a dict of name -> array, got "
                        f"{type(weights).__name__}")
    for name, shape in SMALL_CNN_SHAPES.items():
        if name not in weights:
            raise ValueError(f"{caller}: weights has no {name!r} "
                             f"(expected keys {list(SMALL_CNN_SHAPES)})")
        value = checks.array(caller, f"weights[{name!r}]", weights[name],
                             dtypes=_FLOAT_DTYPES)
        if value.shape != shape:
            raise ValueError(f"{caller}: weights[{name!r}] has shape {value.shape}, "
                             f"expected {shape}")


def _check_conv(x, w, b, stride, padding) -> tuple[int, int]:
    """Check :func:`conv2d_numpy`'s arguments; return (stride, padding)."""
    func = "models.conv2d_numpy"
    numeric = _FLOAT_DTYPES + ("int8", "uint8", "int16", "int32", "int64")
    x = checks.array(func, "x", x, ndim=4, dtypes=numeric)
    w = checks.array(func, "w", w, ndim=4, dtypes=numeric)
    b = checks.array(func, "b", b, ndim=1, dtypes=numeric)
    stride = checks.positive_int(func, "stride", stride)
    padding = checks.nonnegative_int(func, "padding", padding)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"{func}: x has {x.shape[1]} channels but w expects "
                         f"{w.shape[1]}")
    if b.shape[0] != w.shape[0]:
        raise ValueError(f"{func}: b has {b.shape[0]} entries but w has "
                         f"{w.shape[0]} output channels")
    if 0 in w.shape:
        raise ValueError(f"{func}: w must not be empty, got shape {w.shape}")
    padded = x.shape[2] + 2 * padding, x.shape[3] + 2 * padding
    if padded[0] < w.shape[2] or padded[1] < w.shape[3]:
        raise ValueError(f"{func}: the {w.shape[2]}x{w.shape[3]} kernel does not fit "
                         f"the padded {padded[0]}x{padded[1]} input "
                         f"(padding={padding})")
    if x.shape[0] * x.shape[1] * padded[0] * padded[1] > MAX_PADDED_ELEMENTS:
        raise ValueError(f"{func}: padding={padding} makes a padded input of more "
                         f"than MAX_PADDED_ELEMENTS={MAX_PADDED_ELEMENTS} elements")
    return stride, padding


def conv2d_taps(x, w, b, stride=1, padding=0):
    """2-D convolution (NCHW input, OIHW weight), one matrix product per filter tap."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, oh, ow, o), dtype=np.float32)
    for r in range(kh):
        for s in range(kw):
            rows = slice(r, r + stride * oh, stride)
            cols = slice(s, s + stride * ow, stride)
            window = xp[:, :, rows, cols]
            out += np.einsum("nchw,oc->nhwo", window, w[:, :, r, s])
    return (out + b).transpose(0, 3, 1, 2)


def conv2d_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                 padding: int = 0) -> np.ndarray:
    """2-D convolution (cross-correlation, NCHW input, OIHW weight) in NumPy.

    Checks its arguments, then runs :func:`conv2d_taps`: each of the KH*KW
    filter taps adds one matrix product of the strided input window and the
    weights, so the Python loop runs only over the taps.
    """
    stride, padding = _check_conv(x, w, b, stride, padding)
    return conv2d_taps(np.asarray(x), np.asarray(w), np.asarray(b), stride, padding)


def _check_image(func: str, x) -> None:
    x = checks.array(func, "x", x, ndim=4, dtypes=_FLOAT_DTYPES, nonempty=True)
    if tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{func}: x has shape {x.shape}, expected "
                         f"(N, {', '.join(map(str, IMAGE_SHAPE))})")


def small_cnn_forward(x, weights):
    """The small CNN in NumPy: two strided convolutions with ReLU, then dense."""
    h = conv2d_taps(x, weights["conv1_w"], weights["conv1_b"], stride=2, padding=1)
    h = np.maximum(h, 0)
    h = conv2d_taps(h, weights["conv2_w"], weights["conv2_b"], stride=2, padding=1)
    h = np.maximum(h, 0).reshape(h.shape[0], -1)  # flatten each image
    return h @ weights["fc_w"].T + weights["fc_b"]


def small_cnn_numpy(x: np.ndarray, weights: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run the small CNN on images ``x`` (N, 3, 32, 32); return the (N, 10) logits.

    N must be >= 1; ``weights`` as from :func:`small_cnn_weights`. Checks its
    arguments, then runs :func:`small_cnn_forward`.
    """
    _check_image("models.small_cnn_numpy", x)
    check_weights(weights, "models.small_cnn_numpy")
    arrays = {name: np.asarray(weights[name]) for name in SMALL_CNN_SHAPES}
    return small_cnn_forward(np.asarray(x), arrays)


def small_cnn_onnx(weights: Mapping[str, np.ndarray], batch: int | str = 1,
                   opset: int = 17) -> "onnx.ModelProto":
    """Return the small CNN as an ``onnx.ModelProto`` with the weights as initializers.

    Parameters
    ----------
    weights
        The arrays of :func:`small_cnn_weights` (keys and shapes as in
        ``SMALL_CNN_SHAPES``).
    batch
        The batch size of the input ``"x"`` (1 to ``checks.MAX_COUNT``); a
        string such as ``"N"`` makes it symbolic.
    opset
        The ONNX operator set version the model declares, one of :data:`ONNX_OPSETS`.

    Raises
    ------
    ValueError, TypeError
        If a weight is missing or has the wrong shape or dtype, ``batch`` is
        not a positive int or a non-empty string, or ``opset`` is out of range.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    func = "models.small_cnn_onnx"
    check_weights(weights, func)
    if isinstance(batch, str):
        checks.string(func, "batch", batch)
    else:
        batch = checks.positive_int(func, "batch", batch)
    opset = checks.integer(func, "opset", opset, minimum=ONNX_OPSETS.start,
                           maximum=ONNX_OPSETS.stop - 1)
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
        initializer=[numpy_helper.from_array(np.asarray(weights[k], "float32"), k)
                     for k in SMALL_CNN_SHAPES],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    onnx.checker.check_model(model)
    return model
