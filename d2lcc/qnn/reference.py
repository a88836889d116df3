"""NumPy references of every ``qnn`` operator, computed from the definitions.

Each function implements the semantics stated in the builder's docstring
(:mod:`d2lcc.qnn.api`, :mod:`d2lcc.qnn.api_elementwise`) directly: integer
arithmetic is exact (int64, or Python integers for fixed point), saturation
happens on exact values, and only the steps the definition does in float32
(quantize's division, requantize's ``compute="float32"`` product) are done in
float32. Nothing here shares code with the lowering beyond the multiplier
functions that define the constants. Arguments are checked like the
operators check them; bad ones raise ValueError/TypeError naming the function.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import checks
from .common import check_accumulator
from .fixed_point import (FIXED_POINT_ROUNDINGS, fixed_point_multiplier,
                          rescale_reference)
from .params import (DTYPE_RANGES, OUT_DTYPES, QUANT_DTYPES, requantize_multiplier,
                     scale_ratio, scale_values, zero_point_values)


def _data(func: str, data: Any, dtypes: Sequence[str],
          name: str = "data") -> np.ndarray:
    if not isinstance(data, np.ndarray):
        if isinstance(data, (str, bytes)) or data is None:
            raise TypeError(f"{func}: {name} must be a NumPy array, "
                            f"got {type(data).__name__}")
        data = np.asarray(data)
    return checks.array(func, name, data, dtypes=list(dtypes))


def _axis(func: str, axis: Any, ndim: int) -> int:
    checks.integer(func, "axis", axis, minimum=-max(ndim, 1), maximum=max(ndim, 1) - 1)
    return int(axis) % max(ndim, 1)


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A scalar or per-channel parameter shaped to broadcast along ``axis``."""
    if values.ndim == 0:
        return values
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def _params(func, arr, axis, scale, zero_point, dtype, names=("scale", "zero_point")):
    channels = arr.shape[axis] if arr.ndim else None
    s = scale_values(scale, func, names[0], channels)
    z = zero_point_values(zero_point, dtype, func, names[1], channels)
    return _along(s, axis, arr.ndim), _along(z, axis, arr.ndim)


def _saturate(exact: np.ndarray, dtype: str) -> np.ndarray:
    """Clip exact (float64 or int64) values to ``dtype``'s range and cast."""
    lo, hi = DTYPE_RANGES[dtype]
    return np.clip(exact, lo, hi).astype(dtype)


def quantize(data: np.ndarray, scale, zero_point, out_dtype: str = "int8",
             axis: int = -1) -> np.ndarray:
    """Reference of :func:`d2lcc.qnn.quantize` (NaN becomes the zero point)."""
    func = "qnn.reference.quantize"
    checks.one_of(func, "out_dtype", out_dtype, OUT_DTYPES)
    x = _data(func, data, ["float32", "float64"]).astype(np.float32)
    axis = _axis(func, axis, x.ndim)
    s, z = _params(func, x, axis, scale, zero_point, out_dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.round(x / s)  # float32 division, half to even
    rounded = np.where(np.isnan(rounded), 0.0, rounded.astype(np.float64))
    return _saturate(rounded + z, out_dtype)  # exact: float64 holds both terms


def dequantize(data: np.ndarray, scale, zero_point, axis: int = -1) -> np.ndarray:
    """Reference of :func:`d2lcc.qnn.dequantize`."""
    func = "qnn.reference.dequantize"
    q = _data(func, data, OUT_DTYPES)
    axis = _axis(func, axis, q.ndim)
    s, z = _params(func, q, axis, scale, zero_point, q.dtype.name)
    return (q.astype(np.int64) - z).astype(np.float32) * s


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
    """Reference of :func:`d2lcc.qnn.requantize` (both ``compute`` modes)."""
    func = "qnn.reference.requantize"
    checks.one_of(func, "compute", compute, ["float32", "fixed_point"])
    allowed = FIXED_POINT_ROUNDINGS if compute == "fixed_point" else ("TONEAREST",)
    checks.one_of(func, "rounding", rounding, allowed)
    checks.one_of(func, "out_dtype", out_dtype, OUT_DTYPES)
    q = _data(func, data, OUT_DTYPES)
    axis = _axis(func, axis, q.ndim)
    c = q.shape[axis] if q.ndim else None
    s_in = scale_values(input_scale, func, "input_scale", c)
    s_out = scale_values(output_scale, func, "output_scale", c)
    z_in = zero_point_values(input_zero_point, q.dtype.name, func,
                             "input_zero_point", c)
    z_out = zero_point_values(output_zero_point, out_dtype, func,
                              "output_zero_point", c)
    diff = q.astype(np.int64) - _along(z_in, axis, q.ndim)  # exact
    z_out = _along(z_out, axis, q.ndim)
    if compute == "fixed_point":
        what = f"input_scale={s_in} / output_scale={s_out}"
        mantissa, shift = fixed_point_multiplier(scale_ratio(s_in, s_out), func, what)
        scaled = rescale_reference(diff, _along(mantissa, axis, q.ndim),
                                   _along(shift, axis, q.ndim), rounding)
        return _saturate(scaled + z_out, out_dtype)
    m = _along(requantize_multiplier(s_in, s_out, op=func), axis, q.ndim)
    with np.errstate(over="ignore"):
        scaled = np.round(diff.astype(np.float32) * m)  # float32, half to even
    return _saturate(scaled.astype(np.float64) + z_out, out_dtype)


def _weight(func: str, weight: Any, ndim: int) -> np.ndarray:
    if not isinstance(weight, np.ndarray):
        raise TypeError(f"{func}: weight must be a NumPy array, got "
                        f"{type(weight).__name__}")
    return checks.array(func, "weight", weight, ndim=ndim, dtypes=list(QUANT_DTYPES))


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
    """Reference of :func:`d2lcc.qnn.conv2d`: direct sums over windows, exact, int32."""
    func = "qnn.reference.conv2d"
    d = checks.array(func, "data", _data(func, data, QUANT_DTYPES), ndim=4)
    w = _weight(func, weight, 4)
    groups = checks.positive_int(func, "groups", groups)
    # A single int means the same on every side, as for the qnn.conv2d builder.
    strides, dilation, padding = (
        [v] * n if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
        for v, n in ((strides, 2), (dilation, 2), (padding, 4)))
    (sh, sw) = checks.shape(func, "strides", strides, ndim=2)
    (dh, dw) = checks.shape(func, "dilation", dilation, ndim=2)
    if isinstance(padding, (list, tuple)) and len(padding) == 2:
        padding = list(padding) * 2
    t, l, b, r = checks.shape(func, "padding", padding, ndim=4, allow_zero=True)
    n, c, h, wd = d.shape
    o, cg, kh, kw = w.shape
    if c != cg * groups or o % groups or min(kh, kw) < 1:
        raise ValueError(f"{func}: weight {w.shape} does not fit data {d.shape} with "
                         f"groups={groups}")
    zd = int(zero_point_values(input_zero_point, d.dtype.name, func,
                               "input_zero_point"))
    zw = zero_point_values(kernel_zero_point, w.dtype.name, func,
                           "kernel_zero_point", o)
    check_accumulator(func, cg * kh * kw, d.dtype.name, zd, w.dtype.name, zw)
    x = np.pad(d.astype(np.int64) - zd, ((0, 0), (0, 0), (t, b), (l, r)))
    ww = w.astype(np.int64) - _along(zw, 0, 4)
    oh = (h + t + b - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + l + r - dw * (kw - 1) - 1) // sw + 1
    if min(oh, ow) < 1:
        raise ValueError(f"{func}: the kernel does not fit the padded input")
    out = np.zeros((n, o, oh, ow), np.int64)
    og = o // groups
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            for g in range(groups):
                xs = x[:, g * cg:(g + 1) * cg, rows, cols]
                ws = ww[g * og:(g + 1) * og, :, i, j]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", xs, ws)
    return out.astype(np.int32)  # exact: check_accumulator bounds every sum


def dense(data: np.ndarray, weight: np.ndarray, input_zero_point,
          kernel_zero_point) -> np.ndarray:
    """Reference of :func:`d2lcc.qnn.dense`: ``(data - zd) @ (weight - zw).T``."""
    func = "qnn.reference.dense"
    d = checks.array(func, "data", _data(func, data, QUANT_DTYPES), ndim=2)
    w = _weight(func, weight, 2)
    if d.shape[1] != w.shape[1]:
        raise ValueError(f"{func}: data {d.shape} and weight {w.shape} do not match")
    zd = int(zero_point_values(input_zero_point, d.dtype.name, func,
                               "input_zero_point"))
    zw = zero_point_values(kernel_zero_point, w.dtype.name, func,
                           "kernel_zero_point", w.shape[0])
    check_accumulator(func, d.shape[1], d.dtype.name, zd, w.dtype.name, zw)
    x = d.astype(np.int64) - zd
    return (x @ (w.astype(np.int64) - _along(zw, 0, 2)).T).astype(np.int32)


def _binary_operands(func: str, lhs: Any, rhs: Any):
    a = _data(func, lhs, QUANT_DTYPES, "lhs")
    b = _data(func, rhs, QUANT_DTYPES, "rhs")
    if a.dtype != b.dtype:
        raise TypeError(f"{func}: rhs has dtype {b.dtype} but lhs has {a.dtype}")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{func}: shapes of lhs {a.shape} and rhs {b.shape} do not "
                         "broadcast") from None
    return a, b, a.dtype.name


def _scalar_params(func: str, dtype: str, names, values):
    """Per-tensor scales (float32) and zero points (int64), checked, in order."""
    out = []
    for name, value in zip(names, values):
        if name.endswith("scale"):
            out.append(scale_values(value, func, name))
        else:
            out.append(zero_point_values(value, dtype, func, name))
    return out


_BINARY_NAMES = ("lhs_scale", "lhs_zero_point", "rhs_scale", "rhs_zero_point",
                 "output_scale", "output_zero_point")


def add(lhs, rhs, lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale,
        output_zero_point) -> np.ndarray:
    """Reference of :func:`d2lcc.qnn.add`."""
    func = "qnn.reference.add"
    a, b, dtype = _binary_operands(func, lhs, rhs)
    values = (lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale,
              output_zero_point)
    s_l, z_l, s_r, z_r, s_o, z_o = _scalar_params(func, dtype, _BINARY_NAMES, values)
    m_l = requantize_multiplier(s_l, s_o, op=func).astype(np.float64)
    m_r = requantize_multiplier(s_r, s_o, op=func).astype(np.float64)
    # (x - z) has at most 9 bits and M 24: float64 holds the product exactly.
    ra = np.round((a.astype(np.int64) - z_l) * m_l)
    rb = np.round((b.astype(np.int64) - z_r) * m_r)
    return _saturate(ra + rb + z_o, dtype)


def mul(lhs, rhs, lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale,
        output_zero_point) -> np.ndarray:
    """Reference of :func:`d2lcc.qnn.mul`."""
    func = "qnn.reference.mul"
    a, b, dtype = _binary_operands(func, lhs, rhs)
    values = (lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale,
              output_zero_point)
    s_l, z_l, s_r, z_r, s_o, z_o = _scalar_params(func, dtype, _BINARY_NAMES, values)
    prod = (a.astype(np.int64) - z_l) * (b.astype(np.int64) - z_r)  # at most 17 bits
    m = requantize_multiplier(s_l, s_o, s_r, op=func).astype(np.float64)
    return _saturate(np.round(prod * m) + z_o, dtype)


def concatenate(tensors, input_scales, input_zero_points, output_scale,
                output_zero_point, axis: int = 0) -> np.ndarray:
    """Reference of :func:`d2lcc.qnn.concatenate`."""
    func = "qnn.reference.concatenate"
    for name, seq in (("tensors", tensors), ("input_scales", input_scales),
                      ("input_zero_points", input_zero_points)):
        if not isinstance(seq, (list, tuple)):
            raise TypeError(f"{func}: {name} must be a list or tuple, "
                            f"got {type(seq).__name__}")
    if not tensors:
        raise ValueError(f"{func}: tensors must not be empty")
    if not len(tensors) == len(input_scales) == len(input_zero_points):
        raise ValueError(f"{func}: {len(tensors)} tensors need as many input_scales "
                         f"and input_zero_points, got {len(input_scales)} and "
                         f"{len(input_zero_points)}")
    arrays = [_data(func, t, QUANT_DTYPES, f"tensors[{i}]")
              for i, t in enumerate(tensors)]
    dtype = arrays[0].dtype.name
    if any(t.dtype.name != dtype for t in arrays):
        raise TypeError(f"{func}: tensors must share one dtype, got "
                        f"{[t.dtype.name for t in arrays]}")
    _axis(func, axis, arrays[0].ndim)
    s_out = scale_values(output_scale, func, "output_scale")
    z_out = zero_point_values(output_zero_point, dtype, func, "output_zero_point")
    parts = []
    for i, (t, s, z) in enumerate(zip(arrays, input_scales, input_zero_points)):
        s = scale_values(s, func, f"input_scales[{i}]")
        z = zero_point_values(z, dtype, func, f"input_zero_points[{i}]")
        same = s == s_out and z == z_out
        parts.append(t if same else requantize(t, s, z, s_out, z_out, dtype))
    try:
        return np.concatenate(parts, axis=axis)
    except ValueError as err:
        raise ValueError(f"{func}: tensors do not match off axis {axis}: "
                         f"{err}") from None
