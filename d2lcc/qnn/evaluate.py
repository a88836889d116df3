"""Run an imported qnn module in NumPy, operator by operator: the bit-exact reference.

:func:`run_reference` walks the bindings of ``main`` and computes each call in
NumPy: the qnn operators with :mod:`d2lcc.qnn.reference` (their definitions),
the Relax operators the importer leaves between them (integer adds, clips,
reshapes, max pools, sums) with NumPy's integer arithmetic. Whatever TVM
compiles from the same module must give the same bits.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import checks
from . import reference
from .params import constant_value


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _max_pool2d(x: np.ndarray, attrs) -> np.ndarray:
    (kh, kw), (sh, sw) = _ints(attrs.pool_size), _ints(attrs.strides)
    (dh, dw), (t, l, b, r) = _ints(attrs.dilation), _ints(attrs.padding)
    if attrs.ceil_mode:
        raise ValueError("qnn.evaluate.run_reference: max_pool2d with ceil_mode "
                         "is not supported")
    low = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    padded = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=low)
    oh = (padded.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (padded.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.full(x.shape[:2] + (oh, ow), low, x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                            j * dw:j * dw + sw * (ow - 1) + 1:sw]
            out = np.maximum(out, window)
    return out


def _qnn(name: str, args: list, attrs) -> np.ndarray:
    a = attrs
    if name == "quantize":
        return reference.quantize(args[0], args[1], args[2], str(a["out_dtype"]),
                                  int(a["axis"]))
    if name == "dequantize":
        return reference.dequantize(args[0], args[1], args[2], int(a["axis"]))
    if name == "requantize":
        return reference.requantize(*args, out_dtype=str(a["out_dtype"]),
                                    axis=int(a["axis"]), rounding=str(a["rounding"]),
                                    compute=str(a["compute"]))
    if name == "conv2d":
        return reference.conv2d(args[0], args[1], args[2], args[3],
                                _ints(a["strides"]), _ints(a["padding"]),
                                _ints(a["dilation"]), int(a["groups"]))
    if name == "dense":
        return reference.dense(*args[:4])
    if name in ("add", "mul"):
        return getattr(reference, name)(*args)
    if name == "concatenate":  # (tensors), (scales), (zero points), scale, zero
        return reference.concatenate(*args, axis=int(a["axis"]))
    raise ValueError(f"qnn.evaluate.run_reference: no reference for qnn.{name}")


def _same_dtype(f: Callable) -> Callable:
    """A binary NumPy function whose result keeps the first operand's dtype."""
    return lambda args, attrs: f(args[0], args[1]).astype(args[0].dtype)


#: Relax operator -> NumPy computation ``f(args, attrs)``.
RELAX_OPS: dict[str, Callable] = {
    "relax.add": _same_dtype(np.add),
    "relax.subtract": _same_dtype(np.subtract),
    "relax.multiply": _same_dtype(np.multiply),
    "relax.divide": _same_dtype(np.divide),
    "relax.maximum": _same_dtype(np.maximum),
    "relax.minimum": _same_dtype(np.minimum),
    "relax.reshape": lambda args, attrs: args[0].reshape(args[1]),
    "relax.permute_dims": lambda args, attrs: np.transpose(
        args[0], None if attrs.axes is None else _ints(attrs.axes)),
    "relax.astype": lambda args, attrs: args[0].astype(str(attrs.dtype)),
    "relax.sum": lambda args, attrs: args[0].sum(
        axis=tuple(_ints(attrs.axis)), keepdims=bool(attrs.keepdims),
        dtype=args[0].dtype),
    "relax.nn.max_pool2d": lambda args, attrs: _max_pool2d(args[0], attrs),
}


def _value(expr, env: dict) -> Any:
    from tvm import relax

    if isinstance(expr, relax.Var):
        return env[expr]
    if isinstance(expr, relax.ShapeExpr):
        return tuple(int(v) for v in expr.values)
    if isinstance(expr, relax.Tuple):
        return [_value(f, env) for f in expr.fields]
    value = constant_value(expr)
    if value is None:
        raise ValueError(f"qnn.evaluate.run_reference: cannot evaluate {type(expr)}")
    return value


def _call(call, env: dict) -> np.ndarray:
    from tvm import relax

    from .ops import is_qnn_call

    if isinstance(call, relax.Var):
        return env[call]
    if not isinstance(call, relax.Call):
        return _value(call, env)
    args = [_value(a, env) for a in call.args]
    if is_qnn_call(call):
        return _qnn(call.op.name.split(".")[-1], args, call.attrs)
    name = getattr(call.op, "name", "")
    if name not in RELAX_OPS:
        raise ValueError(f"qnn.evaluate.run_reference: operator {name!r} has no "
                         f"NumPy reference; known: {sorted(RELAX_OPS)}")
    return RELAX_OPS[name](args, call.attrs)


def run_reference(mod, *inputs: np.ndarray) -> np.ndarray:
    """Compute ``mod["main"](*inputs)`` in NumPy, binding by binding.

    ``mod`` is a module of qnn operators and the Relax operators in
    :data:`RELAX_OPS` (what :func:`d2lcc.qnn.from_onnx` produces); an
    operator outside them raises ``ValueError`` naming it.
    """
    import tvm
    from tvm import relax

    func = "qnn.evaluate.run_reference"
    if not isinstance(mod, tvm.IRModule) or "main" not in [g.name_hint for g in
                                                           mod.get_global_vars()]:
        raise TypeError(f"{func}: mod must be a tvm.IRModule with a main function, "
                        f"got {type(mod).__name__}")
    main = mod["main"]
    if len(inputs) != len(main.params):
        raise ValueError(f"{func}: main takes {len(main.params)} inputs, got "
                         f"{len(inputs)}")
    env = {}
    for i, (param, x) in enumerate(zip(main.params, inputs)):
        checks.array(func, f"inputs[{i}]", x, dtypes=(str(param.ty.dtype),))
        if tuple(x.shape) != tuple(_ints(param.ty.shape)):
            raise ValueError(f"{func}: inputs[{i}] has shape {x.shape}, main wants "
                             f"{tuple(_ints(param.ty.shape))}")
        env[param] = x
    body = main.body
    for block in body.blocks:
        for binding in block.bindings:
            env[binding.var] = _call(binding.value, env)
    return _call(body.body, env)
