"""Rewrite an ONNX model's QOperator nodes into QDQ form, at the ONNX level.

onnxruntime writes a quantized model in one of two formats. In the QOperator
format a quantized operator is one node (``QLinearConv``, ``QLinearAdd``,
...) that takes integer tensors with their scales and zero points; in the QDQ
format the float operator stays and DequantizeLinear/QuantizeLinear nodes
around it carry the same information. The two say the same thing:
``QLinearConv(x, xs, xz, w, ws, wz, ys, yz, b)`` is
``QuantizeLinear(Conv(DQ(x, xs, xz), DQ(w, ws, wz), DQ(b, xs * ws, 0)), ys, yz)``.

:func:`to_qdq` rewrites every QOperator node that way, so that one importer
(TVM's ONNX frontend, which knows the float operators and imports
Quantize/DequantizeLinear) and one Relax pass (:mod:`d2lcc.qnn.qdq`, which
turns dequantize -> float op -> quantize into integer operators) serve both
formats. It also checks what both formats need: every scale and zero point is
a constant, and every operator is one the importer knows.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

#: QOperator nodes rewritten by :func:`to_qdq`, with the float op they quantize.
QOPERATORS = {
    "QLinearConv": "Conv", "QLinearMatMul": "MatMul", "QGemm": "Gemm",
    "QLinearAdd": "Add", "QLinearMul": "Mul", "QLinearConcat": "Concat",
    "QLinearGlobalAveragePool": "GlobalAveragePool",
    "QLinearAveragePool": "AveragePool", "QLinearSigmoid": "Sigmoid",
    "QLinearLeakyRelu": "LeakyRelu", "QLinearSoftmax": "Softmax",
}  # fmt: skip
#: Float activations that, applied to an integer tensor, get a DQ/Q pair.
ACTIVATIONS = ("Relu", "Clip")
#: Operators that move integer values without changing them (scale carried).
CARRIERS = ("MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
            "Identity", "Slice", "Gather", "Split")


class _Rewriter:
    """The state of one rewrite: the model's constants, new nodes and initializers."""

    def __init__(self, model):
        from onnx import numpy_helper

        graph = model.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:  # Constant nodes are constants too
            if node.op_type == "Constant" and node.attribute:
                self.constants[node.output[0]] = _constant_node_value(node)
        self.nodes, self.new_inits = [], {}
        self.params: dict[str, tuple[str, str, int]] = {}  # int tensor -> (s, z, axis)
        self.count = 0

    def const(self, node, index: int, what: str, optional: bool = False):
        """The name of constant input ``index`` of ``node``, checked; None if absent."""
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            if optional:
                return None
            raise ValueError(f"qnn.onnx_import: {node.op_type} node {node.name!r} has "
                             f"no {what} (input {index})")
        if name not in self.constants:
            raise ValueError(f"qnn.onnx_import: {node.op_type} node {node.name!r} "
                             f"needs {name!r} to be an initializer (its {what} must "
                             "be a constant, not computed by the graph)")
        return name

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}__qdq{self.count}"

    def add_const(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.new_inits[name] = value
        self.constants[name] = value
        return name

    def emit(self, op_type: str, inputs: list, outputs: list, name: str = "",
             **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name,
                                           **attrs))

    def dequantize(self, node, x: str, s: int, z: int, axis: int = 1) -> str:
        """Emit DequantizeLinear of ``x`` with the constant inputs ``s``, ``z``."""
        scale = self.const(node, s, "scale")
        zero = self.const(node, z, "zero point", optional=True)
        out = self.fresh(f"{x}_dq")
        self.emit("DequantizeLinear", [x, scale] + ([zero] if zero else []), [out],
                  axis=axis)
        return out

    def quantize(self, node, value: str, s: int, z: int, out: str) -> None:
        """Emit QuantizeLinear of ``value`` into ``out`` (constants ``s``, ``z``)."""
        scale = self.const(node, s, "scale")
        zero = self.const(node, z, "zero point", optional=True)
        self.emit("QuantizeLinear", [value, scale] + ([zero] if zero else []), [out])
        self.params[out] = (scale, zero, 1)


def _constant_node_value(node) -> np.ndarray:
    from onnx import helper, numpy_helper

    attr = node.attribute[0]
    value = helper.get_attribute_value(attr)
    if attr.name == "value":
        return numpy_helper.to_array(value)
    return np.asarray(value)


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _bias(rw: _Rewriter, node, b: int, s_in: str, s_w: str) -> str | None:
    """Dequantize an int32 bias whose scale is ``s_in * s_w`` (zero point 0)."""
    name = rw.const(node, b, "bias", optional=True)
    if name is None:
        return None
    scale = (rw.constants[s_in].astype(np.float32)
             * rw.constants[s_w].astype(np.float32)).reshape(-1)
    scale = scale[0] if scale.size == 1 else scale
    s = rw.add_const(f"{name}_scale", np.asarray(scale, np.float32))
    z = rw.add_const(f"{name}_zero_point", np.zeros(np.shape(scale), np.int32))
    out = rw.fresh(f"{name}_dq")
    rw.emit("DequantizeLinear", [name, s, z], [out], axis=0)
    return out


def _weight_axis(rw: _Rewriter, node, s: int, axis: int) -> int:
    """The DequantizeLinear axis of a weight: ``axis`` if per channel, else 1."""
    return axis if np.size(rw.constants[rw.const(node, s, "scale")]) > 1 else 1


def _conv(rw: _Rewriter, node, attrs) -> None:
    x = rw.dequantize(node, node.input[0], 1, 2)
    w = rw.dequantize(node, node.input[3], 4, 5, _weight_axis(rw, node, 4, 0))
    b = _bias(rw, node, 8, rw.const(node, 1, "scale"), rw.const(node, 4, "scale"))
    y = rw.fresh(f"{node.output[0]}_float")
    rw.emit("Conv", [x, w] + ([b] if b else []), [y], node.name, **attrs)
    rw.quantize(node, y, 6, 7, node.output[0])


def _matmul(rw: _Rewriter, node, _attrs) -> None:
    a = rw.dequantize(node, node.input[0], 1, 2)
    b = rw.dequantize(node, node.input[3], 4, 5, _weight_axis(rw, node, 4, 1))
    y = rw.fresh(f"{node.output[0]}_float")
    rw.emit("MatMul", [a, b], [y], node.name)
    rw.quantize(node, y, 6, 7, node.output[0])


def _gemm(rw: _Rewriter, node, attrs) -> None:
    if attrs.get("alpha", 1.0) != 1.0:
        raise ValueError(f"qnn.onnx_import: QGemm node {node.name!r}: only alpha=1 "
                         f"is supported, got {attrs['alpha']}")
    trans_b = int(attrs.get("transB", 0))
    a = rw.dequantize(node, node.input[0], 1, 2)
    b = rw.dequantize(node, node.input[3], 4, 5,
                      _weight_axis(rw, node, 4, 0 if trans_b else 1))
    c = _bias(rw, node, 6, rw.const(node, 1, "scale"), rw.const(node, 4, "scale"))
    quantized_out = len(node.input) > 7 and node.input[7]
    y = rw.fresh(f"{node.output[0]}_float") if quantized_out else node.output[0]
    gemm_attrs = {k: v for k, v in attrs.items() if k in ("transA", "transB")}
    rw.emit("Gemm", [a, b] + ([c] if c else []), [y], node.name, **gemm_attrs)
    if quantized_out:
        rw.quantize(node, y, 7, 8, node.output[0])


def _binary(rw: _Rewriter, node, _attrs) -> None:
    a = rw.dequantize(node, node.input[0], 1, 2)
    b = rw.dequantize(node, node.input[3], 4, 5)
    y = rw.fresh(f"{node.output[0]}_float")
    rw.emit(QOPERATORS[node.op_type], [a, b], [y], node.name)
    rw.quantize(node, y, 6, 7, node.output[0])


def _concat(rw: _Rewriter, node, attrs) -> None:
    if (len(node.input) - 2) % 3 or len(node.input) < 5:
        raise ValueError(f"qnn.onnx_import: QLinearConcat node {node.name!r} needs "
                         "(y_scale, y_zero_point) then triples (x, scale, zero "
                         f"point), got {len(node.input)} inputs")
    parts = [rw.dequantize(node, node.input[i], i + 1, i + 2)
             for i in range(2, len(node.input), 3)]
    y = rw.fresh(f"{node.output[0]}_float")
    rw.emit("Concat", parts, [y], node.name, axis=attrs["axis"])
    rw.quantize(node, y, 0, 1, node.output[0])


def _unary(rw: _Rewriter, node, attrs) -> None:
    """QLinear{GlobalAveragePool, AveragePool, Sigmoid, LeakyRelu, Softmax}."""
    attrs.pop("opset", None)  # QLinearSoftmax's: the Softmax opset it follows
    if attrs.pop("channels_last", 0):
        raise ValueError(f"qnn.onnx_import: {node.op_type} node {node.name!r}: "
                         "channels_last=1 is not supported")
    x = rw.dequantize(node, node.input[0], 1, 2)
    y = rw.fresh(f"{node.output[0]}_float")
    rw.emit(QOPERATORS[node.op_type], [x], [y], node.name, **attrs)
    rw.quantize(node, y, 3, 4, node.output[0])


_REWRITES: dict[str, Callable] = {
    "QLinearConv": _conv, "QLinearMatMul": _matmul, "QGemm": _gemm,
    "QLinearAdd": _binary, "QLinearMul": _binary, "QLinearConcat": _concat,
    "QLinearGlobalAveragePool": _unary, "QLinearAveragePool": _unary,
    "QLinearSigmoid": _unary, "QLinearLeakyRelu": _unary, "QLinearSoftmax": _unary,
}  # fmt: skip


def _activation(rw: _Rewriter, node) -> bool:
    """Give Relu/Clip on an integer tensor the DQ/Q pair of that tensor's parameters."""
    source = node.input[0]
    if source not in rw.params:
        return False
    scale, zero, axis = rw.params[source]
    x = rw.fresh(f"{source}_dq")
    rw.emit("DequantizeLinear", [source, scale] + ([zero] if zero else []), [x],
            axis=axis)
    y = rw.fresh(f"{node.output[0]}_float")
    rw.emit(node.op_type, [x, *node.input[1:]], [y], node.name, **_attrs(node))
    rw.emit("QuantizeLinear", [y, scale] + ([zero] if zero else []), [node.output[0]])
    rw.params[node.output[0]] = (scale, zero, axis)
    return True


def _check_qdq_node(rw: _Rewriter, node) -> None:
    """QuantizeLinear/DequantizeLinear: constant scale and zero point."""
    rw.const(node, 1, "scale")
    rw.const(node, 2, "zero point", optional=True)


def _track(rw: _Rewriter, node) -> None:
    """Record the parameters of integer tensors that QDQ and carrier nodes make."""
    if node.op_type == "QuantizeLinear":
        zero = node.input[2] if len(node.input) > 2 else None
        axis = int(_attrs(node).get("axis", 1))
        rw.params[node.output[0]] = (node.input[1], zero or None, axis)
    elif node.op_type in CARRIERS and node.input and node.input[0] in rw.params:
        for out in node.output:
            rw.params[out] = rw.params[node.input[0]]


def to_qdq(model) -> Any:
    """Return a copy of ``model`` with every QOperator node rewritten into QDQ form.

    Each node of :data:`QOPERATORS` becomes DequantizeLinear nodes on its
    integer inputs, the float operator, and a QuantizeLinear of its output
    (an int32 bias is dequantized with the scale ``x_scale * w_scale``);
    ``Relu``/``Clip`` applied to an integer tensor get the tensor's own
    DequantizeLinear/QuantizeLinear pair. QuantizeLinear/DequantizeLinear
    nodes and float operators are kept. Raises ``ValueError`` naming the node
    for a scale or zero point that is not a constant, a missing scale, or an
    operator from a domain other than ONNX's own that is not rewritten here.
    """
    import onnx
    from onnx import helper, numpy_helper

    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"qnn.qoperator.to_qdq: model must be an onnx.ModelProto, "
                        f"got {type(model).__name__}")
    rw = _Rewriter(model)
    for node in model.graph.node:
        if node.op_type in _REWRITES:
            _REWRITES[node.op_type](rw, node, _attrs(node))
            continue
        if node.domain not in ("", "ai.onnx"):
            raise ValueError(
                f"qnn.onnx_import: operator {node.op_type!r} (node {node.name!r}, "
                f"domain {node.domain!r}) is not supported; the quantized "
                f"operators supported are {sorted(QOPERATORS)}")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            _check_qdq_node(rw, node)
        if node.op_type in ACTIVATIONS and _activation(rw, node):
            continue
        rw.nodes.append(node)
        _track(rw, node)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(rw.nodes)
    out.graph.initializer.extend(numpy_helper.from_array(v, k)
                                 for k, v in rw.new_inits.items())
    del out.opset_import[:]
    out.opset_import.extend(o for o in model.opset_import
                            if o.domain in ("", "ai.onnx"))
    if not any(o.domain in ("", "ai.onnx") for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid("", 13))
    return out
