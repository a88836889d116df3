"""Lowering of ``qnn.conv2d`` and ``qnn.dense`` into the four-term integer form.

With data ``d``, weight ``w``, zero points ``zd`` (data) and ``zw[o]`` (kernel)
and ``K`` the number of products per output,

    sum (d - zd)(w - zw) = sum d*w  -  zw * sum d  -  zd * sum w  +  K * zd * zw,

so the expensive part is an ordinary integer convolution (matrix product) of
the raw 8-bit tensors. Every step is int32; a call whose steps could overflow
is refused (:func:`d2lcc.qnn.common.check_accumulator`), and with no products
at all (``K = 0``) the result is zeros. The second term pools the data over
channels and the
window; the third sums the weights of every output channel (folded when the
weight is a constant); the fourth is a constant. Terms whose zero point is 0
are not emitted, so a symmetric conv2d lowers to a single ``R.nn.conv2d``.
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from .common import check_accumulator, const_along, register_legalize
from .params import as_array, constant_value


def _zero_points(call, op: str) -> tuple[int, np.ndarray]:
    zd = int(as_array(call.args[2], op, "input_zero_point"))
    zw = as_array(call.args[3], op, "kernel_zero_point").astype(np.int64)
    return zd, zw


def _weight_sums(bb: relax.BlockBuilder, weight, axes: list[int]):
    """Per-output-channel sums of the weight: a constant for a constant weight."""
    values = constant_value(weight)
    if values is not None:
        return values.astype(np.int64).sum(axis=tuple(axes))
    w32 = bb.emit(relax.op.astype(weight, "int32"))
    return bb.emit(relax.op.sum(w32, axis=axes))


def _pooled_data_sum(bb: relax.BlockBuilder, data, wshape, attrs, padding):
    """Sum of the data over each group's channels and each window.

    The shape is ``[N, O, OH, OW]`` (``[N, 1, OH, OW]`` with one group).
    """
    n, c, h, w = (int(d) for d in data.ty.shape)
    o, _, kh, kw = wshape
    groups = int(attrs["groups"])
    x = bb.emit(relax.op.astype(data, "int32"))
    if groups == 1:
        x = bb.emit(relax.op.sum(x, axis=[1], keepdims=True))
    else:
        x = bb.emit(relax.op.reshape(x, [n, groups, c // groups, h, w]))
        x = bb.emit(relax.op.sum(x, axis=[2]))
    ones = relax.const(np.ones((groups, 1, kh, kw), np.int32), "int32")
    kwargs = dict(strides=_ints(attrs["strides"]), dilation=_ints(attrs["dilation"]),
                  out_dtype="int32", padding=padding, groups=groups)
    x = bb.emit(relax.op.nn.conv2d(x, ones, **kwargs))
    if groups > 1 and o // groups > 1:
        x = bb.emit(relax.op.repeat(x, o // groups, axis=1))
    return x


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _times(bb: relax.BlockBuilder, x, factor: np.ndarray, axis: int, ndim: int):
    """Emit ``x * factor`` (a scalar or per-channel constant); 1 emits nothing."""
    if factor.ndim == 0 and factor == 1:
        return x
    return bb.emit(relax.op.multiply(x, const_along(factor, axis, ndim, "int32")))


def _combine(bb: relax.BlockBuilder, acc, pooled, zw: np.ndarray, wsums, zd: int,
             k: int, axis: int, ndim: int):
    """``acc - zw * pooled - zd * wsums + k * zd * zw``, leaving out zero terms.

    With a constant weight the last two terms are one folded constant. The last
    operation is returned unemitted, so it binds to the variable of the replaced call.
    """
    steps = []
    if np.any(zw):
        steps.append((relax.op.subtract, _times(bb, pooled, zw, axis, ndim)))
    if zd and isinstance(wsums, np.ndarray):
        folded = np.broadcast_to(k * zd * zw, wsums.shape) - zd * wsums
        if np.any(folded):
            steps.append((relax.op.add, const_along(folded, axis, ndim, "int32")))
    elif zd:
        shape = [-1 if d == axis else 1 for d in range(ndim)]
        wsums = bb.emit(relax.op.reshape(wsums, shape))
        steps.append((relax.op.subtract, _times(bb, wsums, np.array(zd), axis, ndim)))
        if np.any(zw):
            steps.append((relax.op.add, const_along(k * zd * zw, axis, ndim, "int32")))
    if not steps:
        return acc
    for i, (fn, term) in enumerate(steps):
        acc = fn(acc, term) if i == len(steps) - 1 else bb.emit(fn(acc, term))
    return acc


def _checked(call: relax.Call, op: str, k: int) -> tuple[int, np.ndarray]:
    """The zero points of a conv2d/dense call, after checking its int32 steps fit."""
    zd, zw = _zero_points(call, op)
    ddt, wdt = str(call.args[0].ty.dtype), str(call.args[1].ty.dtype)
    check_accumulator(op, k, ddt, zd, wdt, zw)
    return zd, zw


@register_legalize("conv2d")
def _lower_conv2d(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Lower ``qnn.conv2d`` to an integer ``R.nn.conv2d`` plus zero-point terms."""
    data, weight = call.args[0], call.args[1]
    attrs = call.attrs
    wshape = [int(d) for d in weight.ty.shape]
    k = wshape[1] * wshape[2] * wshape[3]
    zd, zw = _checked(call, "qnn.conv2d", k)
    if k == 0:  # no products: every sum is 0
        return relax.op.zeros([int(d) for d in call.ty.shape], "int32")
    padding = _ints(attrs["padding"])
    if zd and any(padding):
        # Pad with the zero point (real 0), so that every window has all K products.
        t, l, b, r = padding
        pad_width = [0, 0, 0, 0, t, b, l, r]
        data = bb.emit(relax.op.nn.pad(data, pad_width, pad_value=float(zd)))
        padding = [0, 0, 0, 0]
    kwargs = dict(strides=_ints(attrs["strides"]), dilation=_ints(attrs["dilation"]),
                  groups=int(attrs["groups"]))
    acc = relax.op.nn.conv2d(data, weight, padding=padding, out_dtype="int32", **kwargs)
    if np.any(zw) or zd:
        acc = bb.emit(acc)
    pooled = _pooled_data_sum(bb, data, wshape, attrs, padding) if np.any(zw) else None
    wsums = _weight_sums(bb, weight, [1, 2, 3]) if zd else None
    return _combine(bb, acc, pooled, zw, wsums, zd, k, axis=1, ndim=4)


@register_legalize("dense")
def _lower_dense(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Lower ``qnn.dense`` to an integer ``R.matmul`` plus zero-point terms."""
    data, weight = call.args[0], call.args[1]
    k = int(weight.ty.shape[1])
    zd, zw = _checked(call, "qnn.dense", k)
    if k == 0:  # no products: every sum is 0
        return relax.op.zeros([int(d) for d in call.ty.shape], "int32")
    values = constant_value(weight)
    if values is not None:
        wt = relax.const(np.ascontiguousarray(values.T))
    else:
        wt = bb.emit(relax.op.permute_dims(weight, [1, 0]))
    acc = relax.op.matmul(data, wt, out_dtype="int32")
    if np.any(zw) or zd:
        acc = bb.emit(acc)
    pooled = None
    if np.any(zw):
        pooled = bb.emit(relax.op.astype(data, "int32"))
        pooled = bb.emit(relax.op.sum(pooled, axis=[1], keepdims=True))
    wsums = _weight_sums(bb, weight, [1]) if zd else None
    return _combine(bb, acc, pooled, zw, wsums, zd, k, axis=1, ndim=2)
