"""Lowering rules of the elementwise ``qnn`` operators into plain Relax operators.

Each rule takes the BlockBuilder ``bb`` and one call, emits the intermediate
steps through ``bb`` and returns the expression that replaces the call; it is
registered with ``@register_legalize`` (see :mod:`d2lcc.qnn.common`). Terms that
are zero (a zero point of 0) are not emitted. Every rule saturates: results
are clipped while still floats (or int64), before the one cast to the output
dtype, so nothing wraps around.

``lower_quantize`` is the rule :numref:`sec_qnn_lower_quantize` teaches; the book
shows it as a cell readers can edit (``__teaching__``).
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from .common import along, centered, const_along, is_zero, register_legalize, saturate
from .fixed_point import fixed_point_multiplier, lower_rescale
from .params import DTYPE_RANGES, as_array, requantize_multiplier, scale_ratio

__teaching__ = ("lower_quantize",)


@register_legalize("quantize")
def lower_quantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Lower qnn.quantize: divide, round, NaN to 0, add the zero point, clip, cast."""
    data, scale, zero_point = call.args
    axis, dtype = int(call.attrs["axis"]), str(call.attrs["out_dtype"])
    ndim, (lo, hi) = len(data.ty.shape), DTYPE_RANGES[dtype]
    wide = "float64" if dtype == "int32" else "float32"  # holds lo, hi, zero_point
    x = bb.emit(relax.op.divide(data, along(bb, scale, axis, ndim)))
    x = bb.emit(relax.op.round(x))  # half to even
    if wide != "float32":
        x = bb.emit(relax.op.astype(x, wide))
    x = bb.emit(relax.op.where(relax.op.isnan(x), relax.const(0, wide), x))
    if not is_zero(zero_point):
        x = bb.emit(relax.op.add(x, along(bb, zero_point, axis, ndim, wide)))
    x = bb.emit(relax.op.clip(x, lo, hi))  # saturate while still a float
    return relax.op.astype(x, dtype)


@register_legalize("dequantize")
def _lower_dequantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """``float32(data - zero_point) * scale``, the difference exact (int32/int64)."""
    data, scale, zero_point = call.args
    axis, ndim = int(call.attrs["axis"]), len(data.ty.shape)
    x = centered(bb, data, zero_point, axis, ndim)
    x = bb.emit(relax.op.astype(x, "float32"))
    return relax.op.multiply(x, along(bb, scale, axis, ndim))


def _rounded(bb: relax.BlockBuilder, x, multiplier, dtype: str):
    """Emit ``round(dtype(x) * multiplier)`` (half to even) for an integer ``x``."""
    x = bb.emit(relax.op.astype(x, dtype))
    x = bb.emit(relax.op.multiply(x, multiplier))
    return bb.emit(relax.op.round(x))


@register_legalize("requantize")
def _lower_requantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Rescale by ``input_scale / output_scale`` (float32 or fixed point), saturate."""
    data, s_in, z_in, s_out, z_out = call.args
    op, attrs = "qnn.requantize", call.attrs
    axis, ndim, dtype = int(attrs["axis"]), len(data.ty.shape), str(attrs["out_dtype"])
    s_in, s_out = as_array(s_in, op, "input_scale"), as_array(s_out, op, "output_scale")
    x = centered(bb, data, z_in, axis, ndim)
    if str(attrs["compute"]) == "fixed_point":
        what = f"input_scale={s_in} / output_scale={s_out}"
        mantissa, shift = fixed_point_multiplier(scale_ratio(s_in, s_out), op, what)
        if str(x.ty.dtype) != "int64":
            x = bb.emit(relax.op.astype(x, "int64"))
        x = lower_rescale(bb, x, mantissa, shift, str(attrs["rounding"]), axis, ndim)
        if not is_zero(z_out):
            x = bb.emit(relax.op.add(x, along(bb, z_out, axis, ndim, "int64")))
        lo, hi = DTYPE_RANGES[dtype]
        return relax.op.astype(bb.emit(relax.op.clip(x, lo, hi)), dtype)
    m = requantize_multiplier(s_in, s_out, op=op)
    x = _rounded(bb, x, const_along(m, axis, ndim, "float32"), "float32")
    return saturate(bb, x, z_out, dtype, axis, ndim)


def _per_tensor(call: relax.Call) -> tuple[int, str]:
    """``ndim`` (at least 1) and dtype of a per-tensor binary call's output."""
    return max(1, len(call.ty.shape)), str(call.args[0].ty.dtype)


@register_legalize("add")
def _lower_add(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """``round(M_l * (l - z_l)) + round(M_r * (r - z_r))`` in float64, saturated."""
    lhs, rhs, s_l, z_l, s_r, z_r, s_o, z_o = call.args
    op, (ndim, dtype) = "qnn.add", _per_tensor(call)
    s_o = as_array(s_o, op, "output_scale")
    terms = []
    for x, s, z, name in ((lhs, s_l, z_l, "lhs_scale"), (rhs, s_r, z_r, "rhs_scale")):
        m = requantize_multiplier(as_array(s, op, name), s_o, op=op)
        x = centered(bb, x, z, 0, ndim)
        terms.append(_rounded(bb, x, relax.const(np.float64(m), "float64"), "float64"))
    x = bb.emit(relax.op.add(*terms))
    return saturate(bb, x, z_o, dtype, 0, ndim)


@register_legalize("mul")
def _lower_mul(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """``round(M * (l - z_l) * (r - z_r))``, exact in float64, saturated."""
    lhs, rhs, s_l, z_l, s_r, z_r, s_o, z_o = call.args
    op, (ndim, dtype) = "qnn.mul", _per_tensor(call)
    s_l, s_r = as_array(s_l, op, "lhs_scale"), as_array(s_r, op, "rhs_scale")
    m = requantize_multiplier(s_l, as_array(s_o, op, "output_scale"), s_r, op=op)
    lhs, rhs = centered(bb, lhs, z_l, 0, ndim), centered(bb, rhs, z_r, 0, ndim)
    prod = relax.op.multiply(lhs, rhs)
    x = _rounded(bb, bb.emit(prod), relax.const(np.float64(m), "float64"), "float64")
    return saturate(bb, x, z_o, dtype, 0, ndim)


@register_legalize("concatenate")
def _lower_concatenate(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Requantize every input whose parameters differ from the output's, then concat."""
    tensors, scales, zps, s_o, z_o = call.args
    op = "qnn.concatenate"
    s_out = as_array(s_o, op, "output_scale")
    z_out = as_array(z_o, op, "output_zero_point")
    parts = []
    for i, (t, s, z) in enumerate(zip(tensors.fields, scales.fields, zps.fields)):
        s_in = as_array(s, op, f"input_scales[{i}]")
        z_in = as_array(z, op, f"input_zero_points[{i}]")
        if s_in == s_out and z_in == z_out:
            parts.append(t)
            continue
        ndim, dtype = max(1, len(t.ty.shape)), str(t.ty.dtype)
        m = requantize_multiplier(s_in, s_out, op=op)
        x = centered(bb, t, z, 0, ndim)
        x = _rounded(bb, x, relax.const(m, "float32"), "float32")
        parts.append(bb.emit(saturate(bb, x, z_o, dtype, 0, ndim)))
    return relax.op.concat(parts, axis=int(call.attrs["axis"]))
