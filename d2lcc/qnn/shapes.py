"""Types, shapes and window arithmetic shared by the builders and the type inference.

A builder may receive any Relax expression, including a nested call that no
BlockBuilder has normalized yet (``qnn.requantize(qnn.conv2d(...), ...)``).
:func:`expr_type` finds its type by normalizing a copy in a scratch
BlockBuilder, which runs each operator's type inference (``FInferType``); the
expression itself is passed on unchanged and normalized again when it is emitted.
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import checks


def conv2d_output_shape(
    data: Sequence[int],
    weight: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> list[int]:
    """NCHW output shape of a conv2d; padding is (top, left, bottom, right)."""
    func = "qnn.shapes.conv2d_output_shape"
    n, _, h, w = checks.shape(func, "data", data, ndim=4, allow_zero=True)
    o, _, kh, kw = checks.shape(func, "weight", weight, ndim=4, allow_zero=True)
    sh, sw = checks.shape(func, "strides", strides, ndim=2)
    dh, dw = checks.shape(func, "dilation", dilation, ndim=2)
    pad = checks.shape(func, "padding", padding, ndim=4, allow_zero=True)
    oh = (h + pad[0] + pad[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pad[1] + pad[3] - dw * (kw - 1) - 1) // sw + 1
    return [n, o, oh, ow]


def expr_type(expr: Any, op: str, arg: str):
    """Return the type of a Relax expression, inferred if it is not normalized yet."""
    from tvm import relax

    checks.string("qnn.shapes.expr_type", "op", op)
    checks.string("qnn.shapes.expr_type", "arg", arg)
    if not isinstance(expr, relax.Expr):
        raise TypeError(f"{op}: {arg} must be a Relax expression (e.g. a relax.Var), "
                        f"got {type(expr).__name__}")
    ty = getattr(expr, "ty", None)
    if isinstance(ty, (relax.TensorType, relax.TupleType)):
        return ty
    scratch = relax.BlockBuilder()
    with scratch.testing_scope([]):
        return scratch.normalize(expr).ty


def tensor_info(expr: Any, op: str, arg: str) -> tuple[list[int], str]:
    """Return ``(static shape, dtype)`` of a Relax tensor expression, or raise."""
    from tvm import relax

    ty = expr_type(expr, op, arg)
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise TypeError(f"{op}: {arg} must be a tensor with a known shape, got {ty}")
    try:
        shape = [int(d) for d in ty.shape]
    except TypeError:
        raise TypeError(f"{op}: {arg} must have a static shape, "
                        f"got {ty.shape}") from None
    return shape, str(ty.dtype)


def check_dtype(dtype: Any, allowed: Sequence[str], op: str, arg: str) -> str:
    """Return ``dtype`` if it is one of ``allowed``; else raise a TypeError."""
    checks.string("qnn.shapes.check_dtype", "op", op)
    checks.string("qnn.shapes.check_dtype", "arg", arg)
    if not isinstance(allowed, (list, tuple)):
        raise TypeError(f"qnn.shapes.check_dtype: allowed must be a list of dtype "
                        f"names, got {type(allowed).__name__}")
    if not isinstance(dtype, str) or dtype not in allowed:
        shown = dtype if isinstance(dtype, str) else repr(dtype)
        raise TypeError(f"{op}: {arg} has dtype {shown}; expected one of "
                        f"{list(allowed)}")
    return dtype


def normalize_axis(axis: Any, ndim: int, op: str) -> int:
    """Return ``axis`` as a non-negative index into ``ndim`` dimensions, or raise."""
    checks.string("qnn.shapes.normalize_axis", "op", op)
    ndim = checks.nonnegative_int("qnn.shapes.normalize_axis", "ndim", ndim)
    checks.integer(op, "axis", axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis={axis!r} is out of range for a tensor of "
                         f"ndim={ndim} dimensions")
    return int(axis) % ndim


def pair(value: Any, op: str, arg: str, size: int = 2) -> list[int]:
    """Return ``value`` as a list of ``size`` ints (a single int is repeated)."""
    checks.string("qnn.shapes.pair", "op", op)
    checks.string("qnn.shapes.pair", "arg", arg)
    size = checks.positive_int("qnn.shapes.pair", "size", size, maximum=64)
    if isinstance(value, (list, tuple)):
        if len(value) != size:
            raise ValueError(f"{op}: {arg}={value!r} must be an int or {size} ints")
        return [checks.integer(op, f"{arg}[{i}]", v) for i, v in enumerate(value)]
    return [checks.integer(op, arg, value)] * size
