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


def _f32(value) -> np.ndarray:
    return np.asarray(value, np.float32)


def quantize_linear(x: np.ndarray, scale, zero_point, dtype: str = "uint8",
                    axis: int = 1) -> np.ndarray:
    """ONNX ``QuantizeLinear``: ``saturate(round_half_to_even(x / scale) + zp)``."""
    _check("qnn.onnxrt.quantize_linear", x=x)
    checks.one_of("qnn.onnxrt.quantize_linear", "dtype", dtype, ["uint8", "int8"])
    inputs = {"x": _f32(x), "s": _f32(scale), "z": np.asarray(zero_point, dtype)}
    return _run("QuantizeLinear", inputs, dtype, {"axis": axis})


def dequantize_linear(q: np.ndarray, scale, zero_point, axis: int = 1) -> np.ndarray:
    """ONNX ``DequantizeLinear``: ``(q - zero_point) * scale``."""
    _check("qnn.onnxrt.dequantize_linear", q=q)
    inputs = {"q": q, "s": _f32(scale), "z": np.asarray(zero_point, q.dtype)}
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
    _check("qnn.onnxrt.qlinear_conv", x=x, w=w)
    inputs = {
        "x": x,
        "xs": _f32(x_scale),
        "xz": np.asarray(x_zero_point, x.dtype),
        "w": w,
        "ws": _f32(w_scale),
        "wz": np.asarray(w_zero_point, w.dtype),
        "ys": _f32(y_scale),
        "yz": np.asarray(y_zero_point, x.dtype),
    }
    attrs = {"strides": list(strides), "pads": list(padding),
             "dilations": list(dilation), "group": groups}
    return _run("QLinearConv", inputs, x.dtype, attrs)


def qlinear_matmul(a: np.ndarray, a_scale, a_zero_point, b: np.ndarray, b_scale,
                   b_zero_point, y_scale, y_zero_point) -> np.ndarray:
    """ONNX ``QLinearMatMul`` of ``a [m, k]`` and ``b [k, n]``, in ``a``'s dtype."""
    _check("qnn.onnxrt.qlinear_matmul", a=a, b=b)
    inputs = {
        "a": a,
        "as": _f32(a_scale),
        "az": np.asarray(a_zero_point, a.dtype),
        "b": b,
        "bs": _f32(b_scale),
        "bz": np.asarray(b_zero_point, b.dtype),
        "ys": _f32(y_scale),
        "yz": np.asarray(y_zero_point, a.dtype),
    }
    return _run("QLinearMatMul", inputs, a.dtype)
