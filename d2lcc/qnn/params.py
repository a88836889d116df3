"""Quantization parameters: dtype ranges, Relax constants from Python numbers, checks.

Every builder passes its scales and zero points through :func:`scale` and
:func:`zero_point`, so that bad parameters fail early with an error that names
the operator and the argument, e.g.
``ValueError("qnn.conv2d: input_zero_point=300 is out of range for uint8 [0, 255]")``.
Values are checked *before* they are cast, so ``2**32 + 5`` is refused rather
than stored as 5, and a float scale that float32 cannot hold (``1e-50``,
``1e39``) is refused rather than turned into 0 or infinity.
"""

from __future__ import annotations

import numbers
from typing import Any, Union

import numpy as np

from .. import checks

#: Integer dtypes the dialect accepts for quantized tensors, with their ranges.
DTYPE_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
}
#: Operand dtypes of conv2d, dense, add, mul and concatenate.
QUANT_DTYPES = ("int8", "uint8")
#: Output dtypes of quantize and requantize; input dtypes of dequantize and requantize.
OUT_DTYPES = tuple(DTYPE_RANGES)
#: Largest magnitude an int32 holds.
INT32_MAX = 2**31 - 1

#: A parameter: a number, a 1-D array (per channel) or a Relax expression.
ParamLike = Union[float, int, np.ndarray, Any]


def dtype_range(dtype: str, op: str = "qnn.params.dtype_range",
                arg: str = "dtype") -> tuple[int, int]:
    """Return ``(qmin, qmax)`` of a quantized dtype, or raise naming ``op``, ``arg``."""
    checks.string("qnn.params.dtype_range", "op", op)
    checks.string("qnn.params.dtype_range", "arg", arg)
    if not isinstance(dtype, str):
        raise TypeError(f"{op}: {arg} must be a dtype name (str), got "
                        f"{type(dtype).__name__}")
    if dtype not in DTYPE_RANGES:
        raise TypeError(f"{op}: {arg}={dtype!r} is not supported; expected one of "
                        f"{list(DTYPE_RANGES)}")
    return DTYPE_RANGES[dtype]


def constant_value(expr: Any) -> np.ndarray | None:
    """Return the NumPy value of a Relax constant (``None`` for anything else)."""
    from tvm.ir.expr import Constant

    if isinstance(expr, Constant):
        return expr.value.numpy()
    return None


def _is_expr(value: Any) -> bool:
    from tvm import relax

    return isinstance(value, relax.Expr)


def _array(value: Any, op: str, arg: str) -> np.ndarray:
    """A scalar or 1-D array of real numbers (no bools, strings or objects)."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{op}: {arg}={value!r} must be a number, a 1-D array or a "
                        "Relax expression")
    if isinstance(value, numbers.Integral):  # Python ints of any size, checked later
        return np.asarray(value, dtype=object)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {arg} must be a number or a 1-D array of numbers") \
            from None
    if arr.dtype == object and arr.ndim <= 1:
        if all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
               for v in arr.ravel()):
            return arr
    if arr.ndim > 1 or arr.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {arg} must be a scalar or a 1-D array of numbers, "
                        f"got shape {arr.shape} {arr.dtype}")
    return arr


def _show(values: np.ndarray) -> str:
    values = np.asarray(values)
    if values.ndim == 0:
        return str(values.item())
    return np.array2string(values, threshold=6)


def _check_length(values: np.ndarray, op: str, arg: str, channels: int | None) -> None:
    if channels is not None:
        checks.nonnegative_int(op, "channels", channels)
    if values.ndim == 0:
        return
    if channels is None:
        raise ValueError(f"{op}: {arg} must be a scalar (this operator is per-tensor), "
                         f"got shape {values.shape}")
    if values.shape != (channels,):
        raise ValueError(f"{op}: {arg} has {values.size} values but the channel axis "
                         f"has {channels}")


def _check_expr_dtype(expr: Any, dtype: str, op: str, arg: str) -> None:
    from .shapes import expr_type

    ty = expr_type(expr, op, arg)
    got = getattr(ty, "dtype", None)
    if got is None or str(got) != dtype:
        raise TypeError(f"{op}: {arg} must have dtype {dtype}, got {got}")


def scale_values(value: Any, op: str, arg: str,
                 channels: int | None = None) -> np.ndarray:
    """Return a number or 1-D array of scales as float32 after checking them.

    Each must be positive and finite, also once rounded to float32.
    ``channels`` is the length a per-channel (1-D) scale must have; ``None``
    allows only a scalar.
    """
    checks.string("qnn.params.scale_values", "op", op)
    checks.string("qnn.params.scale_values", "arg", arg)
    arr = _array(value, op, arg).astype(np.float64)
    _check_length(arr, op, arg, channels)
    with np.errstate(over="ignore"):
        as_f32 = arr.astype(np.float32)
    _check_positive(arr, as_f32, op, arg)
    return as_f32


def scale(value: ParamLike, op: str, arg: str, channels: int | None = None):
    """Return ``value`` as a float32 Relax expression after checking it.

    Numbers and arrays are checked by :func:`scale_values`; Relax expressions
    must be float32, and a constant one is checked like a number.
    """
    from tvm import relax

    checks.string("qnn.params.scale", "op", op)
    checks.string("qnn.params.scale", "arg", arg)
    if _is_expr(value):
        _check_expr_dtype(value, "float32", op, arg)
        values = constant_value(value)
        if values is not None:
            _check_length(values, op, arg, channels)
            _check_positive(values, values, op, arg)
        return value
    return relax.const(scale_values(value, op, arg, channels), "float32")


def _check_positive(original: np.ndarray, as_f32: np.ndarray, op: str, arg: str):
    if not np.all(np.isfinite(original) & (original > 0)):
        raise ValueError(f"{op}: {arg}={_show(original)} must be positive and finite")
    with np.errstate(over="ignore"):
        ok = np.all(np.isfinite(as_f32) & (as_f32 > 0))
    if not ok:
        raise ValueError(f"{op}: {arg}={_show(original)} becomes 0 or inf in float32; "
                         "scales must lie in [1.4e-45, 3.4e38]")


def _integers(arr: np.ndarray, op: str, arg: str) -> list[int]:
    """The values of a number array as Python ints; non-integers raise a ValueError."""
    out = []
    for v in arr.ravel().tolist():
        if isinstance(v, float) and not (np.isfinite(v) and v == int(v)):
            raise ValueError(f"{op}: {arg}={_show(arr)} must be an integer")
        out.append(int(v))
    return out


def zero_point_values(value: Any, dtype: str, op: str, arg: str,
                      channels: int | None = None) -> np.ndarray:
    """Return a number or 1-D array of zero points as int64, checked to fit ``dtype``.

    The range is checked on the exact values, before any cast.
    """
    checks.string("qnn.params.zero_point_values", "op", op)
    checks.string("qnn.params.zero_point_values", "arg", arg)
    lo, hi = dtype_range(dtype, op, f"the dtype of {arg}")
    arr = _array(value, op, arg)
    _check_length(arr, op, arg, channels)
    ints = _integers(arr, op, arg)
    _check_range(arr, ints, dtype, lo, hi, op, arg)
    return np.asarray(ints, np.int64).reshape(arr.shape)


def zero_point(value: ParamLike, dtype: str, op: str, arg: str,
               channels: int | None = None):
    """Return ``value`` as an int32 Relax expression after checking it fits ``dtype``.

    Numbers and arrays are checked by :func:`zero_point_values`; Relax
    expressions must be int32, and a constant one is checked like a number.
    """
    from tvm import relax

    checks.string("qnn.params.zero_point", "op", op)
    checks.string("qnn.params.zero_point", "arg", arg)
    if _is_expr(value):
        lo, hi = dtype_range(dtype, op, f"the dtype of {arg}")
        _check_expr_dtype(value, "int32", op, arg)
        values = constant_value(value)
        if values is not None:
            _check_length(values, op, arg, channels)
            _check_range(values, _integers(values, op, arg), dtype, lo, hi, op, arg)
        return value
    values = zero_point_values(value, dtype, op, arg, channels)
    return relax.const(values.astype(np.int32), "int32")


def _check_range(arr, ints: list[int], dtype: str, lo: int, hi: int, op: str, arg: str):
    if any(v < lo or v > hi for v in ints):
        raise ValueError(f"{op}: {arg}={_show(arr)} is out of range for {dtype} "
                         f"[{lo}, {hi}]")


def as_array(expr: Any, op: str, arg: str) -> np.ndarray:
    """Return the value of a constant parameter; anything else raises a ValueError."""
    checks.string("qnn.params.as_array", "op", op)
    checks.string("qnn.params.as_array", "arg", arg)
    values = constant_value(expr)
    if values is None:
        raise ValueError(f"{op}: {arg} must be a constant (relax.Constant) to be "
                         f"lowered, got {type(expr).__name__}")
    return values


def _scale_values(value: Any, name: str) -> np.ndarray:
    return scale_values(value, "qnn.params.scale_ratio", name,
                        channels=np.size(value)).astype(np.float64)


def scale_ratio(input_scale, output_scale, *more_input_scales) -> np.ndarray:
    """Return ``input_scale * more_input_scales... / output_scale`` in float64.

    Every scale is first rounded to float32 (what the Relax constants hold).
    """
    ratio = _scale_values(input_scale, "input_scale")
    for i, extra in enumerate(more_input_scales):
        ratio = ratio * _scale_values(extra, f"more_input_scales[{i}]")
    return ratio / _scale_values(output_scale, "output_scale")


def requantize_multiplier(input_scale, output_scale, *more_input_scales,
                          op: str = "qnn.requantize") -> np.ndarray:
    """Return :func:`scale_ratio` rounded once to a float32 multiplier.

    The lowering and the NumPy reference both call this function, so both use
    the very same multiplier. A ratio that overflows float32 raises a
    ValueError naming ``op`` and the ratio.
    """
    checks.string("qnn.params.requantize_multiplier", "op", op)
    ratio = scale_ratio(input_scale, output_scale, *more_input_scales)
    with np.errstate(over="ignore"):
        m = ratio.astype(np.float32)
    if not np.all(np.isfinite(m)):  # ratio is finite in float64, not in float32
        raise ValueError(f"{op}: the scale ratio (input scales / output_scale) "
                         f"reaches {ratio.max():.3g}, which overflows float32; the "
                         "multiplier must be below 3.4e38")
    return m
