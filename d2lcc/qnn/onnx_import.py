"""Import a pre-quantized ONNX model (QDQ or QOperator format) into the qnn dialect.

:func:`from_onnx` takes three steps, each a tool of its own:

1. :func:`d2lcc.qnn.qoperator.to_qdq` rewrites QOperator nodes
   (``QLinearConv``, ``QLinearAdd``, ...) into DequantizeLinear -> float op ->
   QuantizeLinear at the ONNX level and checks that every scale and zero
   point is a constant, so both formats continue as one;
2. TVM's ONNX frontend (``tvm.relax.frontend.onnx.from_onnx``) imports the
   QDQ graph: the float operators as Relax operators, QuantizeLinear and
   DequantizeLinear as ``R.quantize``/``R.dequantize``, which
   :func:`d2lcc.qnn.qdq.QuantizeToQnn` maps to ``qnn.quantize``/``qnn.dequantize``;
3. :func:`d2lcc.qnn.qdq.FakeQuantizationToInteger` rewrites each dequantize
   -> float op -> quantize into integer qnn operators plus a requantize.

``main`` takes the model's float input and returns its float output.
"""

from __future__ import annotations

from typing import Any

from .. import checks


def _check_inputs(model) -> None:
    """Every graph input that is not a constant needs a static shape."""
    inits = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param
                     for d in dims]
            raise ValueError(f"qnn.onnx_import.from_onnx: graph input {value.name!r} "
                             f"needs a static shape, got {shape}")


def _frontend(model):
    """TVM's ONNX importer; an operator it lacks is reported with its nodes' names."""
    import tvm
    from tvm.relax.frontend import onnx as onnx_frontend

    try:
        return onnx_frontend.from_onnx(model, keep_params_in_input=False)
    except (NotImplementedError, tvm.error.OpNotImplemented) as err:
        listed = str(err).split(":")[-1].replace(".", " ").replace(",", " ").split()
        missing = sorted({n.op_type for n in model.graph.node} & set(listed))
        if not missing:
            raise
        node = next(n.name for n in model.graph.node if n.op_type in missing)
        raise ValueError(f"qnn.onnx_import: operator {missing[0]!r} (node "
                         f"{node!r}) is not supported by TVM's ONNX frontend: "
                         f"{err}") from None


def from_onnx(model, to_integer: bool = True) -> Any:
    """Return an IRModule whose ``main`` computes the quantized ONNX ``model``.

    Parameters
    ----------
    model : onnx.ModelProto
        A quantized model in QDQ or QOperator format (as onnxruntime's
        ``quantize_static`` writes them), with static input shapes and
        constant scales and zero points.
    to_integer : bool
        Run :func:`d2lcc.qnn.qdq.FakeQuantizationToInteger` (the default).
        With False, the module keeps the float operators between
        ``qnn.dequantize`` and ``qnn.quantize`` calls.

    Raises
    ------
    ValueError
        Naming the node and operator type: an operator the importer cannot
        import, a missing scale, a scale or zero point that is not a constant.
    """
    import onnx

    from . import qdq, qoperator

    func = "qnn.onnx_import.from_onnx"
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"{func}: model must be an onnx.ModelProto, "
                        f"got {type(model).__name__}")
    checks.boolean(func, "to_integer", to_integer)
    _check_inputs(model)
    mod = _frontend(qoperator.to_qdq(model))
    mod = qdq.QuantizeToQnn()(mod)
    return qdq.FakeQuantizationToInteger()(mod) if to_integer else mod
