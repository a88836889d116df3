"""Lowering of the elementwise ``qnn`` operators into plain Relax operators.

Each ``lower_<op>(bb, call)`` emits the intermediate steps through the
BlockBuilder ``bb`` and returns the final expression. Terms that are zero (a
zero point of 0) are not emitted, and arithmetic on constant parameters is done
here in NumPy, in float32, exactly as :mod:`d2lcc.qnn.reference` does it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .fixed_point import fixed_point_multiplier, lower_rescale
from .params import DTYPE_RANGES, as_array, constant_value, requantize_multiplier, scale_ratio

if TYPE_CHECKING:
    from tvm import relax


def _R():
    from tvm import relax

    return relax


def is_zero(expr) -> bool:
    """Return whether ``expr`` is a constant whose values are all zero."""
    values = constant_value(expr)
    return values is not None and not np.any(values)


def along(bb: relax.BlockBuilder, expr, axis: int, ndim: int):
    """Return a scalar or per-channel (1-D) parameter shaped to broadcast along ``axis`` of ``ndim`` dims."""
    values = constant_value(expr)
    if values is not None:
        return expr if values.ndim == 0 else const_along(values, axis, ndim, values.dtype.name)
    if len(expr.ty.shape) == 0:
        return expr
    return bb.emit(_R().op.reshape(expr, [-1 if d == axis else 1 for d in range(ndim)]))


def const_along(values: np.ndarray, axis: int, ndim: int, dtype: str):
    """Return a NumPy parameter as a Relax constant shaped to broadcast along ``axis``."""
    relax = _R()
    values = np.asarray(values, dtype)
    if values.ndim == 1:
        shape = [1] * ndim
        shape[axis] = values.size
        values = values.reshape(shape)
    return relax.const(values, dtype)


def clip_cast(bb: relax.BlockBuilder, x, dtype: str):
    """Clip an int32 expression to ``dtype``'s range and cast it (nothing to do for int32)."""
    relax = _R()
    if dtype == "int32":
        return x
    lo, hi = DTYPE_RANGES[dtype]
    return relax.op.astype(bb.emit(relax.op.clip(x, lo, hi)), dtype)


def centered_int32(bb: relax.BlockBuilder, x, zero_point):
    """Return ``int32(x) - zero_point``, skipping the cast for int32 and the subtraction for a zero point 0."""
    relax = _R()
    if str(x.ty.dtype) != "int32":
        x = bb.emit(relax.op.astype(x, "int32"))
    if not is_zero(zero_point):
        x = bb.emit(relax.op.subtract(x, zero_point))
    return x


def rescale(bb: relax.BlockBuilder, x, zero_point, multiplier):
    """Emit ``int32(round(float32(int32(x) - zero_point) * multiplier))`` (round half to even)."""
    relax = _R()
    x = centered_int32(bb, x, zero_point)
    x = bb.emit(relax.op.astype(x, "float32"))
    x = bb.emit(relax.op.multiply(x, multiplier))
    x = bb.emit(relax.op.round(x))
    return bb.emit(relax.op.astype(x, "int32"))


def lower_quantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """divide by the scale, round (half to even), cast to int32, add the zero point, clip, cast."""
    relax = _R()
    data, scale, zero_point = call.args
    axis, ndim, out_dtype = int(call.attrs["axis"]), len(data.ty.shape), str(call.attrs["out_dtype"])
    x = bb.emit(relax.op.divide(data, along(bb, scale, axis, ndim)))
    x = bb.emit(relax.op.round(x))
    x = bb.emit(relax.op.astype(x, "int32"))
    if not is_zero(zero_point):
        x = bb.emit(relax.op.add(x, along(bb, zero_point, axis, ndim)))
    return clip_cast(bb, x, out_dtype)


def lower_dequantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """cast to int32, subtract the zero point, cast to float32, multiply by the scale."""
    relax = _R()
    data, scale, zero_point = call.args
    axis, ndim = int(call.attrs["axis"]), len(data.ty.shape)
    x = centered_int32(bb, data, along(bb, zero_point, axis, ndim))
    x = bb.emit(relax.op.astype(x, "float32"))
    return relax.op.multiply(x, along(bb, scale, axis, ndim))


def lower_requantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """rescale by the float32 multiplier ``input_scale / output_scale``, add the output zero point, clip."""
    relax = _R()
    data, s_in, z_in, s_out, z_out = call.args
    op, axis, ndim = "qnn.requantize", int(call.attrs["axis"]), len(data.ty.shape)
    ratio = scale_ratio(as_array(s_in, op, "input_scale"), as_array(s_out, op, "output_scale"))
    if str(call.attrs["compute"]) == "fixed_point":
        mantissa, shift = fixed_point_multiplier(ratio, op)
        x = centered_int32(bb, data, along(bb, z_in, axis, ndim))
        x = lower_rescale(bb, x, mantissa, shift, str(call.attrs["rounding"]), axis, ndim)
    else:
        m = ratio.astype(np.float32)
        x = rescale(bb, data, along(bb, z_in, axis, ndim), const_along(m, axis, ndim, "float32"))
    if not is_zero(z_out):
        x = bb.emit(relax.op.add(x, along(bb, z_out, axis, ndim)))
    return clip_cast(bb, x, str(call.attrs["out_dtype"]))


def lower_add(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """rescale both inputs to the output scale, add them and the output zero point, clip."""
    relax = _R()
    lhs, rhs, s_l, z_l, s_r, z_r, s_o, z_o = call.args
    op = "qnn.add"
    s_o = as_array(s_o, op, "output_scale")
    a = rescale(bb, lhs, z_l, relax.const(requantize_multiplier(as_array(s_l, op, "lhs_scale"), s_o)))
    b = rescale(bb, rhs, z_r, relax.const(requantize_multiplier(as_array(s_r, op, "rhs_scale"), s_o)))
    x = bb.emit(relax.op.add(a, b))
    if not is_zero(z_o):
        x = bb.emit(relax.op.add(x, z_o))
    return clip_cast(bb, x, str(lhs.ty.dtype))


def lower_mul(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """multiply the centered inputs in int32, rescale by ``lhs_scale * rhs_scale / output_scale``, clip."""
    relax = _R()
    lhs, rhs, s_l, z_l, s_r, z_r, s_o, z_o = call.args
    op = "qnn.mul"
    s_l, s_r = as_array(s_l, op, "lhs_scale"), as_array(s_r, op, "rhs_scale")
    m = requantize_multiplier(s_l, as_array(s_o, op, "output_scale"), s_r)
    prod = bb.emit(relax.op.multiply(centered_int32(bb, lhs, z_l), centered_int32(bb, rhs, z_r)))
    x = rescale(bb, prod, relax.const(0, "int32"), relax.const(m))
    if not is_zero(z_o):
        x = bb.emit(relax.op.add(x, z_o))
    return clip_cast(bb, x, str(lhs.ty.dtype))


def lower_concatenate(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """requantize every input whose parameters differ from the output's, then ``R.concat``."""
    relax = _R()
    tensors, scales, zps, s_o, z_o = call.args
    op = "qnn.concatenate"
    s_out, z_out = as_array(s_o, op, "output_scale"), as_array(z_o, op, "output_zero_point")
    parts = []
    for i, (t, s, z) in enumerate(zip(tensors.fields, scales.fields, zps.fields)):
        s_in, z_in = as_array(s, op, f"input_scales[{i}]"), as_array(z, op, f"input_zero_points[{i}]")
        if s_in == s_out and z_in == z_out:
            parts.append(t)
            continue
        x = rescale(bb, t, z, relax.const(requantize_multiplier(s_in, s_out)))
        if z_out != 0:
            x = bb.emit(relax.op.add(x, z_o))
        parts.append(bb.emit(clip_cast(bb, x, str(t.ty.dtype))))
    return relax.op.concat(parts, axis=int(call.attrs["axis"]))
