"""Registration of the ``qnn`` operators as real Relax operators, with their type inference.

Each operator is registered under the name ``relax.qnn.<op>``; the Relax
printer prints any operator whose name starts with ``relax.`` as ``R.<rest>``,
so a call prints as ``R.qnn.<op>(...)`` with its attributes as keywords, exactly
like a built-in operator (an operator named ``qnn.<op>`` would print as a
generic ``T.Call("qnn.<op>", ...)``, with or without a ``TScriptPrinterName``
attribute, which only the TIR printer reads). Registration happens once, on
the first call of :func:`get` (never at import time). Besides ``FInferType``
and ``FPurity``, each operator registers ``FLegalize`` with its Canonicalize
rule, so Relax's own ``LegalizeOps`` (part of every default pipeline) also
lowers a qnn op that reaches it.
"""

from __future__ import annotations

from typing import Callable

#: The operators of the dialect, with one line of documentation each.
OP_DOCS: dict[str, str] = {
    "quantize": "float32 -> int: clip(round(x / scale) + zero_point)",
    "dequantize": "int -> float32: scale * (q - zero_point)",
    "requantize": "int -> int: clip(round(input_scale / output_scale * (q - input_zp)) + output_zp)",
    "conv2d": "NCHW x OIHW integer convolution of (data - input_zp) and (weight - kernel_zp), int32 out",
    "dense": "[m, k] x [units, k] integer matrix product of (data - input_zp) and (weight - kernel_zp)",
    "add": "quantized elementwise sum, each input rescaled to the output scale",
    "mul": "quantized elementwise product, requantized to the output scale",
    "concatenate": "concatenation after requantizing every input to the output scale",
}

_registered: set[str] = set()


def op_name(name: str) -> str:
    """Return the registered name of a dialect operator, e.g. ``relax.qnn.conv2d``."""
    return f"relax.qnn.{name}"


def get(name: str):
    """Return the ``tvm.ir.Op`` of a dialect operator, registering all of them on first use."""
    import tvm

    if name not in OP_DOCS:
        raise ValueError(f"qnn.ops.get: unknown operator name={name!r}; expected one of {sorted(OP_DOCS)}")
    if not _registered:
        _register_all()
    return tvm.ir.Op.get(op_name(name))


def is_qnn_call(expr, name: str | None = None) -> bool:
    """Return whether ``expr`` is a call of a dialect operator (of ``name``, if given)."""
    import tvm
    from tvm import relax

    if not isinstance(expr, relax.Call) or not isinstance(expr.op, tvm.ir.Op):
        return False
    full = str(expr.op.name)
    if name is not None:
        return full == op_name(name)
    return full.startswith("relax.qnn.")


def _register_all() -> None:
    import tvm

    existing = set(tvm.ir._ffi_api.ListOpNames())
    for name, doc in OP_DOCS.items():
        # The "relax." prefix is what makes TVMScript print a call as R.qnn.<name>(...);
        # an operator named "qnn.<name>" would print as T.Call("qnn.<name>", ...), and the
        # TScriptPrinterName attribute does not change that (only the TIR printer reads it).
        full = op_name(name)
        if full not in existing:
            tvm.ir._ffi_api.RegisterOp(full, doc)
            tvm.ir.register_op_attr(full, "FInferType", _INFER[name])  # the call's tensor type
            tvm.ir.register_op_attr(full, "FPurity", True)  # no side effects: passes may drop unused calls
            tvm.ir.register_op_attr(full, "FLegalize", _legalize)  # how LegalizeOps lowers it
        _registered.add(name)


def _legalize(bb, call):
    """FLegalize: Relax's LegalizeOps lowers a qnn call with the same rule as qnn.transform.Canonicalize."""
    from .transform import _lowerings

    return _lowerings()[str(call.op.name).rsplit(".", 1)[-1]](bb, call)


# ----------------------------------------------------------------------------- type inference


def _tensor(expr):
    return expr.ty


def _same_shape(call, dtype: str):
    from tvm import relax

    return relax.TensorType(_tensor(call.args[0]).shape, dtype)


def _infer_quantize(call, _bb):
    return _same_shape(call, str(call.attrs["out_dtype"]))


def _infer_dequantize(call, _bb):
    return _same_shape(call, "float32")


def _infer_requantize(call, _bb):
    return _same_shape(call, str(call.attrs["out_dtype"]))


def _infer_conv2d(call, _bb):
    from tvm import relax

    from .shapes import conv2d_output_shape

    data, weight = (_static_shape(call.args[i]) for i in (0, 1))
    a = call.attrs
    shape = conv2d_output_shape(data, weight, _ints(a["strides"]), _ints(a["padding"]), _ints(a["dilation"]))
    return relax.TensorType(shape, str(a["out_dtype"]))


def _infer_dense(call, _bb):
    from tvm import relax

    data, weight = (_static_shape(call.args[i]) for i in (0, 1))
    return relax.TensorType([data[0], weight[0]], str(call.attrs["out_dtype"]))


def _infer_binary(call, _bb):
    from tvm import relax

    import numpy as np

    lhs, rhs = (_static_shape(call.args[i]) for i in (0, 1))
    shape = np.broadcast_shapes(tuple(lhs), tuple(rhs))
    return relax.TensorType(list(shape), str(_tensor(call.args[0]).dtype))


def _infer_concatenate(call, _bb):
    from tvm import relax

    shapes = [_static_shape(f) for f in call.args[0].fields]
    axis = int(call.attrs["axis"])
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return relax.TensorType(out, str(_tensor(call.args[0].fields[0]).dtype))


def _static_shape(expr) -> list[int]:
    return [int(d) for d in expr.ty.shape]


def _ints(values) -> list[int]:
    return [int(v) for v in values]


_INFER: dict[str, Callable] = {
    "quantize": _infer_quantize,
    "dequantize": _infer_dequantize,
    "requantize": _infer_requantize,
    "conv2d": _infer_conv2d,
    "dense": _infer_dense,
    "add": _infer_binary,
    "mul": _infer_binary,
    "concatenate": _infer_concatenate,
}
