"""Import a pre-quantized ONNX model into Relax with ``qnn`` operators.

TVM 0.27's ONNX frontend imports QuantizeLinear/DequantizeLinear but not
QLinearConv or QLinearMatMul. :func:`from_onnx` reads a model made of those
four operators and maps each one to the dialect, the way the 2019 QNN
frontends did:

- QuantizeLinear -> ``qnn.quantize``; DequantizeLinear -> ``qnn.dequantize``;
- QLinearConv -> ``qnn.conv2d`` (+ the int32 bias) -> ``qnn.requantize`` (with
  scale ``x_scale * w_scale``);
- QLinearMatMul -> ``qnn.dense`` (the constant ``b [k, n]`` transposed) ->
  ``qnn.requantize``.

Scales and zero points must be initializers; graph inputs need static shapes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import api

SUPPORTED = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul")


class _Graph:
    """An ONNX graph's values while it is imported: constants (NumPy), Relax exprs."""

    def __init__(self, bb, constants: dict[str, np.ndarray]):
        self.bb, self.constants, self.values = bb, constants, {}

    def const(self, name: str, node) -> np.ndarray:
        if name not in self.constants:
            raise ValueError(f"qnn.onnx_import: {node.op_type} node {node.name!r} "
                             f"needs {name!r} to be an initializer")
        return self.constants[name]

    def tensor(self, name: str):
        from tvm import relax

        if name in self.values:
            return self.values[name]
        return relax.const(self.constants[name])


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _quantize(g: _Graph, node, attrs):
    x, s, z = node.input[:3]
    zp = g.const(z, node)
    return api.quantize(g.tensor(x), g.const(s, node), zp.astype(np.int32),
                        zp.dtype.name, attrs.get("axis", 1))


def _dequantize(g: _Graph, node, attrs):
    q, s, z = node.input[:3]
    zp = g.const(z, node).astype(np.int32)
    return api.dequantize(g.tensor(q), g.const(s, node), zp, attrs.get("axis", 1))


def _requantized(g: _Graph, acc, in_scale, y_scale, y_zp, axis: int):
    acc = g.bb.emit(acc)
    return api.requantize(acc, in_scale, 0, y_scale, y_zp.astype(np.int32),
                          y_zp.dtype.name, axis=axis)


def _qlinear_conv(g: _Graph, node, attrs):
    from tvm import relax

    x, xs, xz, w, ws, wz, ys, yz = node.input[:8]
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"qnn.onnx_import: QLinearConv node {node.name!r}: only "
                         "explicit pads are supported")
    t, l, b, r = attrs.get("pads", [0, 0, 0, 0])
    xs_, ws_ = g.const(xs, node), g.const(ws, node)
    zd, zw = (g.const(name, node).astype(np.int32) for name in (xz, wz))
    acc = api.conv2d(
        g.tensor(x), g.tensor(w), zd, zw, xs_, ws_,
        strides=tuple(attrs.get("strides", [1, 1])), padding=(t, l, b, r),
        dilation=tuple(attrs.get("dilations", [1, 1])),
        groups=int(attrs.get("group", 1)),
    )  # fmt: skip
    if len(node.input) > 8 and node.input[8]:
        bias = g.const(node.input[8], node).astype(np.int32).reshape(1, -1, 1, 1)
        acc = relax.op.add(g.bb.emit(acc), relax.const(bias))
    in_scale = np.float32(xs_) * ws_
    return _requantized(g, acc, in_scale, g.const(ys, node), g.const(yz, node), axis=1)


def _qlinear_matmul(g: _Graph, node, _attrs):
    from tvm import relax

    a, as_, az, b, bs, bz, ys, yz = node.input[:8]
    weight = relax.const(np.ascontiguousarray(g.const(b, node).T))
    as_, bs_ = g.const(as_, node), g.const(bs, node)
    zero_points = [g.const(name, node).astype(np.int32) for name in (az, bz)]
    acc = api.dense(g.tensor(a), weight, *zero_points, as_, bs_)
    in_scale = np.float32(as_) * bs_
    return _requantized(g, acc, in_scale, g.const(ys, node), g.const(yz, node), axis=1)


_CONVERTERS: dict[str, Callable] = {
    "QuantizeLinear": _quantize,
    "DequantizeLinear": _dequantize,
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
}


def _input_vars(graph, constants) -> list:
    from onnx import helper
    from tvm import relax

    params = []
    for value in graph.input:
        if value.name in constants:
            continue
        ttype = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in ttype.shape.dim]
        if any(d is None for d in dims):
            raise ValueError(f"qnn.onnx_import: graph input {value.name!r} needs a "
                             f"static shape, got {dims}")
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(ttype.elem_type)).name
        params.append(relax.Var(value.name, relax.TensorType(dims, dtype)))
    return params


def from_onnx(model) -> Any:
    """Return an IRModule whose ``main`` computes ``model`` with qnn operators.

    ``model`` is an ``onnx.ModelProto`` made of the operators in ``SUPPORTED``.
    """
    from onnx import numpy_helper
    from tvm import relax

    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"qnn.onnx_import.from_onnx: model must be an onnx.ModelProto, "
                        f"got {type(model).__name__}")
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    params = _input_vars(graph, constants)
    bb = relax.BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            g = _Graph(bb, constants)
            g.values.update({p.name: p for p in params})
            for node in graph.node:
                if node.op_type not in _CONVERTERS:
                    raise ValueError(
                        f"qnn.onnx_import: operator {node.op_type!r} (node "
                        f"{node.name!r}) is not supported; "
                        f"supported: {list(SUPPORTED)}"
                    )
                value = _CONVERTERS[node.op_type](g, node, _attrs(node))
                g.values[node.output[0]] = bb.emit(value)
            outs = [g.values[o.name] for o in graph.output]
            out = bb.emit_output(outs[0] if len(outs) == 1 else relax.Tuple(outs))
        bb.emit_func_output(out)
    return bb.get()
