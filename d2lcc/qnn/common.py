"""What the lowering rules share: their registry and a few emitting helpers.

As in TVM's ``relax/transform/legalize_ops``, each rule carries its own
registration, ``@register_legalize("quantize")`` on the function that lowers
``qnn.quantize``; :func:`d2lcc.qnn.transform.Canonicalize` and the operators'
``FLegalize`` attribute both look the rule up here at call time, so a rule
re-registered in a notebook takes effect at once.

The helpers keep wide values from wrapping: :func:`centered` subtracts a zero
point in int64 when the data is int32, and :func:`saturate` adds the output
zero point and clips *in floating point*, before the only cast to the output
dtype, in float64 when that dtype is int32 (float32 cannot hold 2**31 - 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import checks
from .params import DTYPE_RANGES, INT32_MAX, constant_value

if TYPE_CHECKING:
    from tvm import relax

#: A lowering rule: given the BlockBuilder and a qnn call, emit steps, return a result.
LegalizeFunc = Callable[["relax.BlockBuilder", "relax.Call"], "relax.Expr"]

_RULES: dict[str, LegalizeFunc] = {}


def register_legalize(name: str) -> Callable[[LegalizeFunc], LegalizeFunc]:
    """Decorator: make the function the lowering rule of ``qnn.<name>``."""
    checks.string("qnn.common.register_legalize", "name", name)

    def register(rule: LegalizeFunc) -> LegalizeFunc:
        checks.function("qnn.common.register_legalize", "rule", rule)
        _RULES[name] = rule
        return rule

    return register


def legalizations() -> dict[str, LegalizeFunc]:
    """Return a copy of the registered rules, by operator name (``"quantize"``, ...)."""
    return dict(_RULES)


def int_values(func: str, name: str, values: Any, lo: int, hi: int) -> np.ndarray:
    """Return a scalar or 1-D array of integers in ``[lo, hi]`` as int64, or raise.

    The error names ``func`` and ``name``; floats must hold whole numbers.
    """
    checks.string("qnn.common.int_values", "func", func)
    checks.string("qnn.common.int_values", "name", name)
    lo = checks.integer("qnn.common.int_values", "lo", lo)
    hi = checks.integer("qnn.common.int_values", "hi", hi)
    if hi < lo:
        raise ValueError(f"qnn.common.int_values: lo={lo} > hi={hi}, an empty range")
    if isinstance(values, (bool, np.bool_, str, bytes)) or values is None:
        raise TypeError(f"{func}: {name}={values!r} must be an integer or a 1-D array "
                        "of integers")
    try:
        arr = np.asarray(values)
    except Exception:  # an object NumPy cannot read as an array
        arr = np.asarray(None)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1:
        raise TypeError(f"{func}: {name} must be an integer or a 1-D array of "
                        f"integers, got {type(values).__name__}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise ValueError(f"{func}: {name}={values!r} must hold whole numbers")
    wide = arr.astype(object) if arr.dtype.kind != "f" else np.round(arr).astype(object)
    if wide.size and (min(wide.flat) < lo or max(wide.flat) > hi):
        raise ValueError(f"{func}: {name}={values!r} is out of range "
                         f"[lo={lo}, hi={hi}]")
    return arr.astype(np.int64)


def check_rule_args(func: str, bb: Any, call: Any) -> None:
    """Raise a TypeError unless ``bb`` is a BlockBuilder and ``call`` a Call."""
    from tvm import relax

    checks.string("qnn.common.check_rule_args", "func", func)

    if not isinstance(bb, relax.BlockBuilder):
        raise TypeError(f"{func}: bb must be a relax.BlockBuilder, "
                        f"got {type(bb).__name__}")
    if not isinstance(call, relax.Call):
        raise TypeError(f"{func}: call must be a relax.Call, got {type(call).__name__}")


def is_zero(expr: Any) -> bool:
    """Return whether ``expr`` is a constant whose values are all zero."""
    values = constant_value(expr)
    return values is not None and not np.any(values)


def const_along(values: Any, axis: int, ndim: int, dtype: str):
    """Return a scalar or 1-D NumPy parameter as a constant along ``axis``."""
    from tvm import relax

    func = "qnn.common.const_along"
    ndim = checks.positive_int(func, "ndim", ndim, maximum=64)
    checks.integer(func, "axis", axis, minimum=0, maximum=ndim - 1)
    checks.one_of(func, "dtype", dtype, [*DTYPE_RANGES, "int64", "float32", "float64"])
    if dtype in DTYPE_RANGES or dtype == "int64":
        lo, hi = DTYPE_RANGES.get(dtype, (-(2**63), 2**63 - 1))
        values = int_values(func, "values", values, lo, hi).astype(dtype)
    else:
        values = checks.array(func, "values", np.asarray(values, dtype), finite=False)
    if values.ndim == 1:
        shape = [1] * ndim
        shape[axis] = values.size
        values = values.reshape(shape)
    elif values.ndim != 0:
        raise ValueError(f"{func}: values must be a scalar or 1-D, got {values.shape}")
    return relax.const(values, dtype)


def along(bb: relax.BlockBuilder, expr: Any, axis: int, ndim: int,
          dtype: str | None = None):
    """Return a scalar or per-channel parameter shaped to broadcast along ``axis``.

    With ``dtype``, the parameter is also converted (folded for a constant).
    """
    from tvm import relax

    func = "qnn.common.along"
    if not isinstance(bb, relax.BlockBuilder):
        raise TypeError(f"{func}: bb must be a relax.BlockBuilder, "
                        f"got {type(bb).__name__}")
    if not isinstance(expr, relax.Expr):
        raise TypeError(f"{func}: expr must be a Relax expression, "
                        f"got {type(expr).__name__}")
    ndim = checks.positive_int(func, "ndim", ndim, maximum=64)
    checks.integer(func, "axis", axis, minimum=0, maximum=ndim - 1)
    if dtype is not None:
        checks.one_of(func, "dtype", dtype,
                      [*DTYPE_RANGES, "int64", "float32", "float64"])
    values = constant_value(expr)
    if values is not None:
        return const_along(values, axis, ndim, dtype or values.dtype.name)
    if not isinstance(expr.ty, relax.TensorType) or len(expr.ty.shape) > 1:
        raise ValueError(f"{func}: expr must be a scalar or 1-D tensor, got {expr.ty}")
    if len(expr.ty.shape) == 1:
        shape = [-1 if d == axis else 1 for d in range(ndim)]
        expr = bb.emit(relax.op.reshape(expr, shape))
    if dtype is not None and str(expr.ty.dtype) != dtype:
        expr = bb.emit(relax.op.astype(expr, dtype))
    return expr


def _check_emit_args(func: str, bb: Any, x: Any, axis: Any, ndim: Any) -> None:
    from tvm import relax

    if not isinstance(bb, relax.BlockBuilder):
        raise TypeError(f"{func}: bb must be a relax.BlockBuilder, "
                        f"got {type(bb).__name__}")
    if not isinstance(x, relax.Expr) or not isinstance(x.ty, relax.TensorType):
        raise TypeError(f"{func}: x must be a normalized Relax tensor expression, "
                        f"got {type(x).__name__}")
    ndim = checks.positive_int(func, "ndim", ndim, maximum=64)
    checks.integer(func, "axis", axis, minimum=0, maximum=ndim - 1)


def _check_param(func: str, zero_point: Any) -> None:
    from tvm import relax

    if not isinstance(zero_point, relax.Expr):
        raise TypeError(f"{func}: zero_point must be a Relax expression, "
                        f"got {type(zero_point).__name__}")


def centered(bb: relax.BlockBuilder, x: Any, zero_point: Any, axis: int, ndim: int):
    """Emit ``x - zero_point`` exactly: in int32, or in int64 when ``x`` is int32.

    An int32 ``x`` with a zero point of 0 is returned as it is.
    """
    from tvm import relax

    _check_emit_args("qnn.common.centered", bb, x, axis, ndim)
    _check_param("qnn.common.centered", zero_point)
    if str(x.ty.dtype) == "int32" and is_zero(zero_point):
        return x
    wide = "int64" if str(x.ty.dtype) == "int32" else "int32"
    x = bb.emit(relax.op.astype(x, wide))
    if not is_zero(zero_point):
        x = bb.emit(relax.op.subtract(x, along(bb, zero_point, axis, ndim, wide)))
    return x


def saturate(bb: relax.BlockBuilder, x: Any, zero_point: Any, dtype: str, axis: int,
             ndim: int):
    """Add ``zero_point`` to the rounded float ``x``, clip to ``dtype``, cast.

    The sum is exact whenever it lands in ``dtype``'s range (float32 holds every
    integer up to 2**24, float64 up to 2**53), and anything beyond the range,
    infinities included, clips to the nearest bound.
    """
    from tvm import relax

    _check_emit_args("qnn.common.saturate", bb, x, axis, ndim)
    _check_param("qnn.common.saturate", zero_point)
    lo, hi = DTYPE_RANGES[checks.one_of("qnn.common.saturate", "dtype", dtype,
                                        list(DTYPE_RANGES))]
    if dtype == "int32" and str(x.ty.dtype) != "float64":
        x = bb.emit(relax.op.astype(x, "float64"))
    if not is_zero(zero_point):
        x = bb.emit(relax.op.add(x, along(bb, zero_point, axis, ndim, str(x.ty.dtype))))
    x = bb.emit(relax.op.clip(x, lo, hi))
    return relax.op.astype(x, dtype)


def accumulator_bound(k: int, data_dtype: str, input_zero_point: int,
                      weight_dtype: str, kernel_zero_points: Any) -> int:
    """Largest magnitude any int32 step of a lowered conv2d/dense can reach.

    Every step of the four-term form sums ``k`` terms, each at most
    ``(max|d| + |zd|) * (max|w| + max|zw|)`` in magnitude.
    """
    func = "qnn.common.accumulator_bound"
    k = checks.nonnegative_int(func, "k", k, maximum=2**62)
    checks.one_of(func, "data_dtype", data_dtype, list(DTYPE_RANGES))
    checks.one_of(func, "weight_dtype", weight_dtype, list(DTYPE_RANGES))
    dmax = max(abs(v) for v in DTYPE_RANGES[data_dtype])
    wmax = max(abs(v) for v in DTYPE_RANGES[weight_dtype])
    zd = abs(int(int_values(func, "input_zero_point", input_zero_point,
                            -(2**31), 2**31 - 1)))
    zw = int(np.max(np.abs(int_values(func, "kernel_zero_points", kernel_zero_points,
                                      -(2**31), 2**31 - 1)), initial=0))
    return k * (dmax + zd) * (wmax + zw)


def check_accumulator(op: str, k: int, data_dtype: str, input_zero_point: int,
                      weight_dtype: str, kernel_zero_points: Any) -> None:
    """Raise a ValueError naming ``op`` if int32 steps of the lowering can overflow."""
    checks.string("qnn.common.check_accumulator", "op", op)
    bound = accumulator_bound(k, data_dtype, input_zero_point, weight_dtype,
                              kernel_zero_points)
    if bound > INT32_MAX:
        per_k = bound // k
        raise ValueError(
            f"{op}: k={k} products of {data_dtype} data (zero point "
            f"{int(input_zero_point)}) and {weight_dtype} weights (kernel zero points "
            f"up to {int(np.max(np.abs(kernel_zero_points), initial=0))}) can reach "
            f"{bound} in int32 steps, beyond 2**31 - 1; k (the reduction length K) "
            "must be at most "
            f"{INT32_MAX // per_k} for these types and zero points")
