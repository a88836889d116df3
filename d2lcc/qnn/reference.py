"""NumPy integer references of every ``qnn`` operator.

Each function computes exactly what the lowering (:mod:`d2lcc.qnn.lower`)
computes: the same float32 operations in the same order and the same rounding
(round half to even, like ``np.round`` and Relax's ``R.round``), so the tests
compare the two bit for bit.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .fixed_point import fixed_point_multiplier, rescale_reference
from .params import DTYPE_RANGES, requantize_multiplier, scale_ratio


def _along(param, axis: int, ndim: int, dtype) -> np.ndarray:
    """Return a scalar or per-channel parameter shaped to broadcast along ``axis`` of an ``ndim``-D tensor."""
    value = np.asarray(param, dtype)
    if value.ndim == 0:
        return value
    shape = [1] * ndim
    shape[axis] = value.size
    return value.reshape(shape)


def _clip_cast(values: np.ndarray, dtype: str) -> np.ndarray:
    lo, hi = DTYPE_RANGES[dtype]
    return np.clip(values, lo, hi).astype(dtype)


def quantize(data: np.ndarray, scale, zero_point, out_dtype: str = "int8", axis: int = -1) -> np.ndarray:
    """``clip(int32(round_half_to_even(float32(data) / scale)) + zero_point)`` cast to ``out_dtype``."""
    x = np.asarray(data, np.float32)
    axis %= x.ndim
    q = np.round(x / _along(scale, axis, x.ndim, np.float32)).astype(np.int32)
    return _clip_cast(q + _along(zero_point, axis, x.ndim, np.int32), out_dtype)


def dequantize(data: np.ndarray, scale, zero_point, axis: int = -1) -> np.ndarray:
    """``scale * float32(int32(data) - zero_point)``, all in float32."""
    q = np.asarray(data)
    axis %= q.ndim
    centered = (q.astype(np.int32) - _along(zero_point, axis, q.ndim, np.int32)).astype(np.float32)
    return centered * _along(scale, axis, q.ndim, np.float32)


def _rescale(q: np.ndarray, zero_point, multiplier: np.ndarray) -> np.ndarray:
    """``int32(round_half_to_even(float32(q - zero_point) * multiplier))``."""
    centered = (q.astype(np.int32) - zero_point).astype(np.float32)
    return np.round(centered * multiplier).astype(np.int32)


def requantize(
    data: np.ndarray,
    input_scale,
    input_zero_point,
    output_scale,
    output_zero_point,
    out_dtype: str = "int8",
    axis: int = -1,
    rounding: str = "TONEAREST",
    compute: str = "float32",
) -> np.ndarray:
    """``clip(round(M * (data - input_zp)) + output_zp)`` with ``M = in_s / out_s``.

    ``compute="float32"``: float32 ``M`` and arithmetic, round half to even.
    ``compute="fixed_point"``: int64 arithmetic with a 31-bit mantissa and a shift, rounding
    ``"TONEAREST"`` (half to even) or ``"UPWARD"`` (half toward +infinity).
    """
    q = np.asarray(data)
    axis %= q.ndim
    zp = _along(input_zero_point, axis, q.ndim, np.int32)
    if compute == "fixed_point":
        mantissa, shift = fixed_point_multiplier(scale_ratio(input_scale, output_scale))
        centered = q.astype(np.int32) - zp
        m_, s_ = _along(mantissa, axis, q.ndim, np.int64), _along(shift, axis, q.ndim, np.int64)
        scaled = rescale_reference(centered, m_, s_, rounding)
    else:
        m = requantize_multiplier(input_scale, output_scale)
        scaled = _rescale(q, zp, _along(m, axis, q.ndim, np.float32))
    return _clip_cast(scaled + _along(output_zero_point, axis, q.ndim, np.int32), out_dtype)


def conv2d(
    data: np.ndarray,
    weight: np.ndarray,
    input_zero_point,
    kernel_zero_point,
    strides: Sequence[int] = (1, 1),
    padding: Sequence[int] = (0, 0),
    dilation: Sequence[int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """Direct int64 convolution of ``data - input_zp`` (padded with real zeros) and ``weight - kernel_zp``."""
    pad = list(padding) * 2 if len(padding) == 2 else list(padding)
    x = np.asarray(data, np.int64) - int(input_zero_point)
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
    w = np.asarray(weight, np.int64) - _along(kernel_zero_point, 0, 4, np.int64)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilation
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    og = o // groups
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
            for g in range(groups):
                xs = patch[:, g * cg : (g + 1) * cg]
                ws = w[g * og : (g + 1) * og, :, i, j]
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", xs, ws)
    return out.astype(np.int32)


def dense(data: np.ndarray, weight: np.ndarray, input_zero_point, kernel_zero_point) -> np.ndarray:
    """``(data - input_zp) @ (weight - kernel_zp[:, None]).T`` in int64, returned as int32."""
    x = np.asarray(data, np.int64) - int(input_zero_point)
    w = np.asarray(weight, np.int64) - _along(kernel_zero_point, 0, 2, np.int64)
    return (x @ w.T).astype(np.int32)


def add(lhs, rhs, lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale, output_zero_point) -> np.ndarray:
    """Rescale each input to the output scale (round half to even), sum, add the output zero point, clip."""
    dtype = np.asarray(lhs).dtype.name
    a = _rescale(np.asarray(lhs), lhs_zero_point, requantize_multiplier(lhs_scale, output_scale))
    b = _rescale(np.asarray(rhs), rhs_zero_point, requantize_multiplier(rhs_scale, output_scale))
    return _clip_cast(a + b + np.int32(output_zero_point), dtype)


def mul(lhs, rhs, lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale, output_zero_point) -> np.ndarray:
    """``clip(round(M * float32((lhs - lhs_zp) * (rhs - rhs_zp))) + out_zp)``, ``M = f32(ls * rs / os)``."""
    dtype = np.asarray(lhs).dtype.name
    prod = (np.asarray(lhs).astype(np.int32) - lhs_zero_point) * (np.asarray(rhs).astype(np.int32) - rhs_zero_point)
    m = requantize_multiplier(lhs_scale, output_scale, rhs_scale)
    return _clip_cast(_rescale(prod, 0, m) + np.int32(output_zero_point), dtype)


def concatenate(tensors, input_scales, input_zero_points, output_scale, output_zero_point, axis: int = 0) -> np.ndarray:
    """Requantize every input to the output parameters, then concatenate along ``axis``."""
    parts = []
    for t, s, z in zip(tensors, input_scales, input_zero_points):
        t = np.asarray(t)
        same = np.float32(s) == np.float32(output_scale) and int(z) == int(output_zero_point)
        parts.append(t if same else requantize(t, s, z, output_scale, output_zero_point, t.dtype.name))
    return np.concatenate(parts, axis=axis)
