"""Builders of the quantized add, mul and concatenate (per-tensor parameters).

Like :mod:`d2lcc.qnn.api`, these docstrings are the operators' semantics. The
output has the inputs' dtype (int8 or uint8) and saturates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import params
from .ops import make_call
from .params import QUANT_DTYPES, ParamLike, constant_value
from .shapes import check_dtype, normalize_axis, tensor_info

if TYPE_CHECKING:
    from tvm import relax


def _check_multipliers(op: str, pairs) -> None:
    """With constant scales, refuse multipliers that overflow float32."""
    for inputs, output in pairs:
        values = [constant_value(s) for s in (*inputs, output)]
        if all(v is not None for v in values):
            params.requantize_multiplier(values[0], values[-1], *values[1:-1], op=op)


def _binary(name: str, lhs, rhs, scales_and_zero_points) -> relax.Call:
    op = f"qnn.{name}"
    lshape, dtype = tensor_info(lhs, op, "lhs")
    rshape, rdtype = tensor_info(rhs, op, "rhs")
    check_dtype(dtype, QUANT_DTYPES, op, "lhs")
    if rdtype != dtype:
        raise TypeError(f"{op}: rhs has dtype {rdtype} but lhs has {dtype}; "
                        "they must match")
    try:
        np.broadcast_shapes(tuple(lshape), tuple(rshape))
    except ValueError:
        raise ValueError(f"{op}: shapes of lhs {lshape} and rhs {rshape} do not "
                         "broadcast") from None
    s_l, z_l, s_r, z_r, s_o, z_o = scales_and_zero_points
    args = [
        lhs,
        rhs,
        params.scale(s_l, op, "lhs_scale"),
        params.zero_point(z_l, dtype, op, "lhs_zero_point"),
        params.scale(s_r, op, "rhs_scale"),
        params.zero_point(z_r, dtype, op, "rhs_zero_point"),
        params.scale(s_o, op, "output_scale"),
        params.zero_point(z_o, dtype, op, "output_zero_point"),
    ]
    if name == "add":
        _check_multipliers(op, [((args[2],), args[6]), ((args[4],), args[6])])
    else:
        _check_multipliers(op, [((args[2], args[4]), args[6])])
    return make_call(name, args, {})


def add(lhs: relax.Expr, rhs: relax.Expr, lhs_scale: ParamLike,
        lhs_zero_point: ParamLike, rhs_scale: ParamLike, rhs_zero_point: ParamLike,
        output_scale: ParamLike, output_zero_point: ParamLike) -> relax.Call:
    """Quantized elementwise sum (NumPy broadcasting), saturating.

    Each input is rescaled to the output scale,
    ``round(M_x * (x - x_zero_point))`` with the float32 multiplier
    ``M_x = float32(x_scale / output_scale)`` and an exact product (float64
    holds it); the two are summed, ``output_zero_point`` is added and the
    result clipped to the dtype.
    """
    qparams = (lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale,
               output_zero_point)
    return _binary("add", lhs, rhs, qparams)


def mul(lhs: relax.Expr, rhs: relax.Expr, lhs_scale: ParamLike,
        lhs_zero_point: ParamLike, rhs_scale: ParamLike, rhs_zero_point: ParamLike,
        output_scale: ParamLike, output_zero_point: ParamLike) -> relax.Call:
    """Quantized elementwise product (NumPy broadcasting), saturating.

    ``clip(round(M * (lhs - lhs_zp) * (rhs - rhs_zp)) + output_zp)`` with the
    float32 multiplier ``M = float32(lhs_scale * rhs_scale / output_scale)``
    (computed in float64, rounded once) and an exact product.
    """
    qparams = (lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale,
               output_zero_point)
    return _binary("mul", lhs, rhs, qparams)


def _check_concat_tensors(tensors: list, axis: int, op: str) -> tuple[str, int]:
    """Check the tensors share a quantized dtype and every dimension but ``axis``."""
    infos = [tensor_info(t, op, f"tensors[{i}]") for i, t in enumerate(tensors)]
    (shape0, dtype) = infos[0]
    check_dtype(dtype, QUANT_DTYPES, op, "tensors[0]")
    axis = normalize_axis(axis, len(shape0), op)
    for i, (shape, dt) in enumerate(infos):
        if dt != dtype:
            raise TypeError(f"{op}: tensors[{i}] has dtype {dt} but tensors[0] has "
                            f"{dtype}")
        off_axis = [(a, b) for k, (a, b) in enumerate(zip(shape, shape0)) if k != axis]
        if len(shape) != len(shape0) or any(a != b for a, b in off_axis):
            raise ValueError(f"{op}: tensors[{i}] has shape {shape}, which does not "
                             f"match {shape0} off axis {axis}")
    return dtype, axis


def concatenate(
    tensors: Sequence[relax.Expr],
    input_scales: Sequence[ParamLike],
    input_zero_points: Sequence[ParamLike],
    output_scale: ParamLike,
    output_zero_point: ParamLike,
    axis: int = 0,
) -> relax.Call:
    """Concatenate quantized tensors along ``axis``, requantizing each one first.

    An input whose scale and zero point equal the output's is copied
    unchanged; the others are requantized as :func:`d2lcc.qnn.requantize`
    does with ``compute="float32"``.
    """
    from tvm import relax

    op = "qnn.concatenate"
    for name, seq in (("tensors", tensors), ("input_scales", input_scales),
                      ("input_zero_points", input_zero_points)):
        if not isinstance(seq, (list, tuple)):
            raise TypeError(f"{op}: {name} must be a list or tuple, "
                            f"got {type(seq).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: tensors must not be empty")
    if len(input_scales) != len(tensors) or len(input_zero_points) != len(tensors):
        raise ValueError(
            f"{op}: {len(tensors)} tensors need as many input_scales and "
            f"input_zero_points, got {len(input_scales)} and {len(input_zero_points)}")
    dtype, axis = _check_concat_tensors(tensors, axis, op)
    scales = [params.scale(s, op, f"input_scales[{i}]")
              for i, s in enumerate(input_scales)]
    zps = [params.zero_point(z, dtype, op, f"input_zero_points[{i}]")
           for i, z in enumerate(input_zero_points)]
    s_out = params.scale(output_scale, op, "output_scale")
    _check_multipliers(op, [((s,), s_out) for s in scales])
    args = [
        relax.Tuple(tensors),
        relax.Tuple(scales),
        relax.Tuple(zps),
        s_out,
        params.zero_point(output_zero_point, dtype, op, "output_zero_point"),
    ]
    return make_call("concatenate", args, {"axis": axis})
