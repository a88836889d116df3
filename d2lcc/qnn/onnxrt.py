"""onnxruntime as an independent reference: one-node ONNX models of quantized operators.

Each function builds a single-node ONNX model (opset 13) in memory and runs it
with onnxruntime's CPU provider, so tests and sections can compare a qnn
operator with a widely used implementation. Conventions that differ from
:mod:`d2lcc.qnn.reference` (onnxruntime may multiply by a reciprocal or use a
fixed-point multiplier) make results differ by at most one unit.

On AVX2 machines without VNNI, onnxruntime's ``QLinearConv``/``QLinearMatMul``
with uint8 data and int8 weights sum pairs of products in int16 and saturate
for full-range weights; keep weights in [-64, 63] when comparing there.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import checks
from .params import scale_values, zero_point_values

OPSET = 13


def _run(op_type: str, inputs: dict[str, np.ndarray], out_dtype,
         attrs: dict | None = None) -> np.ndarray:
    """Build a one-node model over ``inputs`` (in order); return its only output."""
    import onnxruntime as ort
    from onnx import helper

    names = list(inputs)
    elem = helper.np_dtype_to_tensor_dtype
    vin = [helper.make_tensor_value_info(n, elem(v.dtype), v.shape)
           for n, v in inputs.items()]
    out = helper.make_tensor_value_info("y", elem(np.dtype(out_dtype)), None)
    node = helper.make_node(op_type, names, ["y"], **(attrs or {}))
    graph = helper.make_graph([node], op_type, vin, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {n: np.ascontiguousarray(v) for n, v in inputs.items()})[0]


def _check(func: str, **arrays) -> None:
    for name, value in arrays.items():
        checks.array(func, name, value)


def _scale(func: str, name: str, value) -> np.ndarray:
    """A checked scale (scalar or 1-D) as float32."""
    channels = np.size(value) if np.ndim(value) == 1 else None
    return scale_values(value, func, name, channels)


def _zp(func: str, name: str, value, dtype) -> np.ndarray:
    """A checked zero point (scalar or 1-D) in ``dtype``."""
    channels = np.size(value) if np.ndim(value) == 1 else None
    return zero_point_values(value, np.dtype(dtype).name, func, name,
                             channels).astype(dtype)


def quantize_linear(x: np.ndarray, scale, zero_point, dtype: str = "uint8",
                    axis: int = 1) -> np.ndarray:
    """ONNX ``QuantizeLinear``: ``saturate(round_half_to_even(x / scale) + zp)``."""
    _check("qnn.onnxrt.quantize_linear", x=x)
    checks.one_of("qnn.onnxrt.quantize_linear", "dtype", dtype, ["uint8", "int8"])
    func = "qnn.onnxrt.quantize_linear"
    checks.integer(func, "axis", axis, minimum=-x.ndim, maximum=max(x.ndim - 1, 0))
    inputs = {"x": np.asarray(x, np.float32), "s": _scale(func, "scale", scale),
              "z": _zp(func, "zero_point", zero_point, dtype)}
    return _run("QuantizeLinear", inputs, dtype, {"axis": axis})


def dequantize_linear(q: np.ndarray, scale, zero_point, axis: int = 1) -> np.ndarray:
    """ONNX ``DequantizeLinear``: ``(q - zero_point) * scale``."""
    func = "qnn.onnxrt.dequantize_linear"
    _check(func, q=q)
    checks.integer(func, "axis", axis, minimum=-q.ndim, maximum=max(q.ndim - 1, 0))
    inputs = {"q": q, "s": _scale(func, "scale", scale),
              "z": _zp(func, "zero_point", zero_point, q.dtype)}
    return _run("DequantizeLinear", inputs, np.float32, {"axis": axis})


def qlinear_conv(
    x: np.ndarray,
    x_scale,
    x_zero_point,
    w: np.ndarray,
    w_scale,
    w_zero_point,
    y_scale,
    y_zero_point,
    strides: Sequence[int] = (1, 1),
    padding: Sequence[int] = (0, 0, 0, 0),
    dilation: Sequence[int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """ONNX ``QLinearConv`` without bias; ``padding`` is (top, left, bottom, right)."""
    func = "qnn.onnxrt.qlinear_conv"
    _check(func, x=x, w=w)
    inputs = {
        "x": x,
        "xs": _scale(func, "x_scale", x_scale),
        "xz": _zp(func, "x_zero_point", x_zero_point, x.dtype),
        "w": w,
        "ws": _scale(func, "w_scale", w_scale),
        "wz": _zp(func, "w_zero_point", w_zero_point, w.dtype),
        "ys": _scale(func, "y_scale", y_scale),
        "yz": _zp(func, "y_zero_point", y_zero_point, x.dtype),
    }
    attrs = {"strides": list(checks.shape(func, "strides", strides, ndim=2)),
             "pads": list(checks.shape(func, "padding", padding, ndim=4,
                                       allow_zero=True)),
             "dilations": list(checks.shape(func, "dilation", dilation, ndim=2)),
             "group": checks.positive_int(func, "groups", groups)}
    return _run("QLinearConv", inputs, x.dtype, attrs)


def qlinear_matmul(a: np.ndarray, a_scale, a_zero_point, b: np.ndarray, b_scale,
                   b_zero_point, y_scale, y_zero_point) -> np.ndarray:
    """ONNX ``QLinearMatMul`` of ``a [m, k]`` and ``b [k, n]``, in ``a``'s dtype."""
    func = "qnn.onnxrt.qlinear_matmul"
    _check(func, a=a, b=b)
    inputs = {
        "a": a,
        "as": _scale(func, "a_scale", a_scale),
        "az": _zp(func, "a_zero_point", a_zero_point, a.dtype),
        "b": b,
        "bs": _scale(func, "b_scale", b_scale),
        "bz": _zp(func, "b_zero_point", b_zero_point, b.dtype),
        "ys": _scale(func, "y_scale", y_scale),
        "yz": _zp(func, "y_zero_point", y_zero_point, a.dtype),
    }
    return _run("QLinearMatMul", inputs, a.dtype)
