"""Shape arithmetic and input checks shared by the builders and the type inference."""

from __future__ import annotations

from typing import Any, Sequence


def conv2d_output_shape(
    data: Sequence[int],
    weight: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> list[int]:
    """Return the NCHW output shape of a conv2d; ``padding`` is ``(top, left, bottom, right)``."""
    n, _, h, w = data
    o, _, kh, kw = weight
    oh = (h + padding[0] + padding[2] - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + padding[1] + padding[3] - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    return [n, o, oh, ow]


def tensor_info(expr: Any, op: str, arg: str) -> tuple[list[int], str]:
    """Return ``(static shape, dtype)`` of a Relax tensor expression, or raise a TypeError."""
    from tvm import relax

    if not isinstance(expr, relax.Expr):
        raise TypeError(f"{op}: {arg} must be a Relax expression (e.g. a relax.Var), got {type(expr).__name__}")
    try:
        ty = expr.ty
    except Exception:  # an expression not yet normalized has no type
        ty = None
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise TypeError(f"{op}: {arg} must be a tensor with a known shape; emit it with a BlockBuilder first")
    try:
        shape = [int(d) for d in ty.shape]
    except TypeError:
        raise TypeError(f"{op}: {arg} must have a static shape, got {ty.shape}") from None
    return shape, str(ty.dtype)


def check_dtype(dtype: str, allowed: Sequence[str], op: str, arg: str) -> None:
    """Raise a TypeError naming ``op`` and ``arg`` unless ``dtype`` is one of ``allowed``."""
    if dtype not in allowed:
        raise TypeError(f"{op}: {arg} has dtype {dtype}; expected one of {list(allowed)}")


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    """Return ``axis`` as a non-negative index into ``ndim`` dimensions, or raise a ValueError."""
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis={axis!r} is out of range for a {ndim}-D tensor")
    return axis % ndim


def pair(value: int | Sequence[int], op: str, arg: str, size: int = 2) -> list[int]:
    """Return ``value`` as a list of ``size`` ints (a single int is repeated)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * size
    values = list(value)
    if len(values) != size or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{op}: {arg}={value!r} must be an int or {size} ints")
    return values
