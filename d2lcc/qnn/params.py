"""Quantization parameters: turning Python numbers into Relax constants, and checking them.

Every builder in :mod:`d2lcc.qnn.api` passes its scales and zero points through
:func:`scale` and :func:`zero_point`, so that bad parameters fail early with an
error that names the operator and the argument, e.g.
``ValueError("qnn.conv2d: input_zero_point=300 is out of range for uint8 [0, 255]")``.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

#: Integer dtypes the dialect accepts for quantized tensors, with their ranges.
DTYPE_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
}

#: A quantization parameter: a Python number, a NumPy array (1-D: per channel) or a Relax expression.
ParamLike = Union[float, int, np.ndarray, Any]


def dtype_range(dtype: str, op: str, arg: str) -> tuple[int, int]:
    """Return ``(qmin, qmax)`` of an integer dtype, or raise a TypeError naming ``op`` and ``arg``."""
    if dtype not in DTYPE_RANGES:
        raise TypeError(f"{op}: {arg} has dtype {dtype!r}; expected one of {sorted(DTYPE_RANGES)}")
    return DTYPE_RANGES[dtype]


def constant_value(expr: Any) -> np.ndarray | None:
    """Return the NumPy value of a Relax constant (``None`` for any other expression)."""
    from tvm.ir.expr import Constant

    if isinstance(expr, Constant):
        return expr.value.numpy()
    return None


def _to_expr(value: ParamLike, dtype: str, op: str, arg: str):
    """Turn a number or array into a Relax constant of ``dtype``; pass Relax expressions through."""
    from tvm import relax

    if isinstance(value, relax.Expr):
        return value
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise TypeError(f"{op}: {arg}={value!r} must be a number, a 1-D array or a Relax expression")
    arr = np.asarray(value)
    if arr.ndim > 1 or arr.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {arg} must be a scalar or a 1-D array of numbers, got shape {arr.shape} {arr.dtype}")
    if dtype == "int32" and arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise ValueError(f"{op}: {arg}={value!r} must be an integer")
    return relax.const(arr.astype(dtype), dtype)


def _check_length(values: np.ndarray, op: str, arg: str, channels: int | None) -> None:
    if values.ndim == 0:
        return
    if channels is None:
        raise ValueError(f"{op}: {arg} must be a scalar (this operator is per-tensor), got shape {values.shape}")
    if values.shape != (channels,):
        raise ValueError(f"{op}: {arg} has {values.size} values but the channel axis has {channels}")


def scale(value: ParamLike, op: str, arg: str, channels: int | None = None):
    """Return ``value`` as a float32 Relax expression after checking it is positive and finite.

    ``channels`` is the length a per-channel (1-D) scale must have; ``None``
    allows only a scalar.
    """
    expr = _to_expr(value, "float32", op, arg)
    _check_dtype(expr, "float32", op, arg)
    values = constant_value(expr)
    if values is not None:
        _check_length(values, op, arg, channels)
        if not np.all(np.isfinite(values) & (values > 0)):
            raise ValueError(f"{op}: {arg}={_show(values)} must be positive and finite")
    return expr


def zero_point(value: ParamLike, dtype: str, op: str, arg: str, channels: int | None = None):
    """Return ``value`` as an int32 Relax expression after checking it lies in ``dtype``'s range."""
    expr = _to_expr(value, "int32", op, arg)
    _check_dtype(expr, "int32", op, arg)
    values = constant_value(expr)
    if values is not None:
        _check_length(values, op, arg, channels)
        lo, hi = dtype_range(dtype, op, arg)
        if np.any(values < lo) or np.any(values > hi):
            raise ValueError(f"{op}: {arg}={_show(values)} is out of range for {dtype} [{lo}, {hi}]")
    return expr


def _check_dtype(expr: Any, dtype: str, op: str, arg: str) -> None:
    ty = getattr(expr, "ty", None)
    got = getattr(ty, "dtype", None)
    if got is not None and str(got) != dtype:
        raise TypeError(f"{op}: {arg} must have dtype {dtype}, got {got}")


def _show(values: np.ndarray) -> str:
    return str(values.item()) if values.ndim == 0 else np.array2string(values, threshold=6)


def as_array(expr: Any, op: str, arg: str) -> np.ndarray:
    """Return the value of a constant parameter; raise a ValueError if it is not a constant."""
    values = constant_value(expr)
    if values is None:
        raise ValueError(f"{op}: {arg} must be a constant (relax.Constant) to be lowered, got {type(expr).__name__}")
    return values


def scale_ratio(input_scale, output_scale, *more_input_scales) -> np.ndarray:
    """Return ``input_scale * more_input_scales... / output_scale`` in float64.

    Every scale is first taken as float32 (what the Relax constants hold).
    """
    ratio = np.asarray(input_scale, np.float32).astype(np.float64)
    for extra in more_input_scales:
        ratio = ratio * np.asarray(extra, np.float32).astype(np.float64)
    return ratio / np.asarray(output_scale, np.float32).astype(np.float64)


def requantize_multiplier(input_scale, output_scale, *more_input_scales) -> np.ndarray:
    """Return :func:`scale_ratio` rounded once to a float32 multiplier.

    The lowering and the NumPy reference both call this function, so both use
    the very same multiplier.
    """
    return scale_ratio(input_scale, output_scale, *more_input_scales).astype(np.float32)
