"""Registration of the ``qnn`` operators as Relax operators, with their type inference.

Each operator is registered under the name ``relax.qnn.<op>``; the Relax
printer prints any operator whose name starts with ``relax.`` as ``R.<rest>``,
so a call prints as ``R.qnn.<op>(...)`` with its attributes as keywords, exactly
like a built-in operator (an operator named ``qnn.<op>`` would print as a
generic ``T.Call("qnn.<op>", ...)``, with or without a ``TScriptPrinterName``
attribute, which only the TIR printer reads). Registration happens once, on
the first call of :func:`get` (never at import time). Besides ``FInferType``
and ``FPurity``, each operator registers ``FLegalize`` (:func:`legalize`), so
Relax's own ``LegalizeOps`` (part of every default pipeline) lowers a qnn op
that reaches it with the rule registered in :mod:`d2lcc.qnn.common`.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import checks
from . import lower, lower_matmul  # noqa: F401  (they register the lowering rules)
from .common import check_rule_args, legalizations
from .shapes import conv2d_output_shape

#: The operators of the dialect, with one line of documentation each.
OP_DOCS: dict[str, str] = {
    "quantize": "float32 -> integer, saturating (see d2lcc.qnn.quantize)",
    "dequantize": "integer -> float32 (see d2lcc.qnn.dequantize)",
    "requantize": "integer -> integer with new parameters (see d2lcc.qnn.requantize)",
    "conv2d": "NCHW x OIHW integer convolution, int32 sums (see d2lcc.qnn.conv2d)",
    "dense": "[m, k] x [units, k] integer matrix product (see d2lcc.qnn.dense)",
    "add": "quantized elementwise sum (see d2lcc.qnn.add)",
    "mul": "quantized elementwise product (see d2lcc.qnn.mul)",
    "concatenate": "concatenation after requantizing (see d2lcc.qnn.concatenate)",
}

_registered: set[str] = set()


def op_name(name: str) -> str:
    """Return the registered name of a dialect operator, e.g. ``relax.qnn.conv2d``."""
    checks.one_of("qnn.ops.op_name", "name", name, OP_DOCS)
    return f"relax.qnn.{name}"


def get(name: str):
    """Return the ``tvm.ir.Op`` of a dialect operator (registering all on first use)."""
    import tvm

    if not isinstance(name, str) or name not in OP_DOCS:
        raise ValueError(f"qnn.ops.get: unknown operator name={name!r}; expected one "
                         f"of {sorted(OP_DOCS)}")
    if not _registered:
        register_all()
    return tvm.ir.Op.get(op_name(name))


def make_call(name: str, args: list, attrs: dict):
    """Return the ``relax.Call`` of operator ``name`` with ``args`` and ``attrs``."""
    import tvm
    from tvm import relax

    checks.one_of("qnn.ops.make_call", "name", name, OP_DOCS)
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"qnn.ops.make_call: args must be a list, "
                        f"got {type(args).__name__}")
    if not isinstance(attrs, dict):
        raise TypeError(f"qnn.ops.make_call: attrs must be a dict, "
                        f"got {type(attrs).__name__}")
    return relax.Call(get(name), list(args), tvm.ir.attrs.DictAttrs(attrs))


def is_qnn_call(expr: Any, name: str | None = None) -> bool:
    """Return whether ``expr`` calls a dialect operator (``name``, if given)."""
    import tvm
    from tvm import relax

    if name is not None:
        checks.one_of("qnn.ops.is_qnn_call", "name", name, OP_DOCS)
    if not isinstance(expr, relax.Call) or not isinstance(expr.op, tvm.ir.Op):
        return False
    full = str(expr.op.name)
    if name is not None:
        return full == op_name(name)
    return full.startswith("relax.qnn.")


def register_all() -> None:
    """Register every dialect operator with TVM (once per process)."""
    import tvm

    # RegisterOp and ListOpNames have no public wrapper in TVM 0.27 (private FFI).
    existing = set(tvm.ir._ffi_api.ListOpNames())
    for name, doc in OP_DOCS.items():
        full = op_name(name)
        if full not in existing:
            tvm.ir._ffi_api.RegisterOp(full, doc)
            # the call's tensor type, checked the moment a call is normalized
            tvm.ir.register_op_attr(full, "FInferType", INFER[name])
            # no side effects: passes may drop unused calls
            tvm.ir.register_op_attr(full, "FPurity", True)
            # how Relax's LegalizeOps lowers a call
            tvm.ir.register_op_attr(full, "FLegalize", legalize)
        _registered.add(name)


def legalize(bb, call):
    """FLegalize: lower a qnn call with its rule registered in d2lcc.qnn.common."""
    check_rule_args("qnn.ops.legalize", bb, call)
    if not is_qnn_call(call):
        raise ValueError(f"qnn.ops.legalize: call must call a qnn operator, "
                         f"got {call.op}")
    return legalizations()[str(call.op.name).rsplit(".", 1)[-1]](bb, call)


# --------------------------------------------------------------------- type inference


def _check_call(func: str, call) -> None:
    from tvm import relax

    if not isinstance(call, relax.Call):
        raise TypeError(f"{func}: call must be a relax.Call, got {type(call).__name__}")


def _tensor(expr, what: str):
    from tvm import relax

    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise TypeError(f"{what} must be a tensor with a known shape, got {ty}")
    return ty


def _static_shape(expr, what: str) -> list[int]:
    try:
        return [int(d) for d in _tensor(expr, what).shape]
    except TypeError:
        raise TypeError(f"{what} must have a static shape, got {expr.ty}") from None


def _same_shape(call, dtype: str):
    from tvm import relax

    return relax.TensorType(_tensor(call.args[0], "data").shape, dtype)


def infer_quantize(call, _bb):
    """Type of ``qnn.quantize``: the data's shape, ``out_dtype``."""
    _check_call("qnn.ops.infer_quantize", call)
    return _same_shape(call, str(call.attrs["out_dtype"]))


def infer_dequantize(call, _bb):
    """Type of ``qnn.dequantize``: the data's shape, float32."""
    _check_call("qnn.ops.infer_dequantize", call)
    return _same_shape(call, "float32")


def infer_requantize(call, _bb):
    """Type of ``qnn.requantize``: the data's shape, ``out_dtype``."""
    _check_call("qnn.ops.infer_requantize", call)
    return _same_shape(call, str(call.attrs["out_dtype"]))


def infer_conv2d(call, _bb):
    """Type of ``qnn.conv2d``: ``[N, O, OH, OW]`` from the window attributes."""
    _check_call("qnn.ops.infer_conv2d", call)
    from tvm import relax

    data = _static_shape(call.args[0], "qnn.conv2d: data")
    weight = _static_shape(call.args[1], "qnn.conv2d: weight")
    a = call.attrs
    window = [[int(v) for v in a[key]] for key in ("strides", "padding", "dilation")]
    shape = conv2d_output_shape(data, weight, *window)
    return relax.TensorType(shape, str(a["out_dtype"]))


def infer_dense(call, _bb):
    """Type of ``qnn.dense``: one row per data row, one column per weight row."""
    _check_call("qnn.ops.infer_dense", call)
    from tvm import relax

    data = _static_shape(call.args[0], "qnn.dense: data")
    weight = _static_shape(call.args[1], "qnn.dense: weight")
    return relax.TensorType([data[0], weight[0]], str(call.attrs["out_dtype"]))


def infer_binary(call, _bb):
    """Type of ``qnn.add``/``qnn.mul``: the broadcast shape, the inputs' dtype."""
    _check_call("qnn.ops.infer_binary", call)
    import numpy as np
    from tvm import relax

    lhs = _static_shape(call.args[0], "qnn binary op: lhs")
    rhs = _static_shape(call.args[1], "qnn binary op: rhs")
    shape = np.broadcast_shapes(tuple(lhs), tuple(rhs))
    return relax.TensorType(list(shape), str(call.args[0].ty.dtype))


def infer_concatenate(call, _bb):
    """Type of ``qnn.concatenate``: the inputs joined along ``axis``."""
    _check_call("qnn.ops.infer_concatenate", call)
    from tvm import relax

    fields = call.args[0].fields
    shapes = [_static_shape(f, f"qnn.concatenate: tensors[{i}]")
              for i, f in enumerate(fields)]
    axis = int(call.attrs["axis"])
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return relax.TensorType(out, str(fields[0].ty.dtype))


INFER: dict[str, Callable] = {
    "quantize": infer_quantize,
    "dequantize": infer_dequantize,
    "requantize": infer_requantize,
    "conv2d": infer_conv2d,
    "dense": infer_dense,
    "add": infer_binary,
    "mul": infer_binary,
    "concatenate": infer_concatenate,
}

# Old private names, kept while the book's dialect section still prints them.
_register_all, _legalize, _infer_dense = register_all, legalize, infer_dense
