"""Builders of the quantized elementwise and concatenation operators (per-tensor parameters)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import params
from .params import ParamLike
from .api import QUANT_DTYPES, _call
from .shapes import check_dtype, normalize_axis, tensor_info

if TYPE_CHECKING:
    from tvm import relax


def _binary(name: str, lhs, rhs, lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale, output_zero_point):
    op = f"qnn.{name}"
    lshape, dtype = tensor_info(lhs, op, "lhs")
    rshape, rdtype = tensor_info(rhs, op, "rhs")
    check_dtype(dtype, QUANT_DTYPES, op, "lhs")
    if rdtype != dtype:
        raise TypeError(f"{op}: rhs has dtype {rdtype} but lhs has {dtype}; they must match")
    try:
        np.broadcast_shapes(tuple(lshape), tuple(rshape))
    except ValueError:
        raise ValueError(f"{op}: shapes of lhs {lshape} and rhs {rshape} do not broadcast") from None
    args = [
        lhs,
        rhs,
        params.scale(lhs_scale, op, "lhs_scale"),
        params.zero_point(lhs_zero_point, dtype, op, "lhs_zero_point"),
        params.scale(rhs_scale, op, "rhs_scale"),
        params.zero_point(rhs_zero_point, dtype, op, "rhs_zero_point"),
        params.scale(output_scale, op, "output_scale"),
        params.zero_point(output_zero_point, dtype, op, "output_zero_point"),
    ]
    return _call(name, args, {})


def add(
    lhs: relax.Expr,
    rhs: relax.Expr,
    lhs_scale: ParamLike,
    lhs_zero_point: ParamLike,
    rhs_scale: ParamLike,
    rhs_zero_point: ParamLike,
    output_scale: ParamLike,
    output_zero_point: ParamLike,
) -> relax.Call:
    """Quantized elementwise sum (NumPy broadcasting); the output has the inputs' dtype.

    Each input is first rescaled to the output scale in int32,
    ``round_half_to_even(M_x * float32(x - x_zero_point))`` with ``M_x = float32(x_scale / output_scale)``;
    the two are summed, ``output_zero_point`` is added and the result clipped.
    """
    qparams = (lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale, output_zero_point)
    return _binary("add", lhs, rhs, *qparams)


def mul(
    lhs: relax.Expr,
    rhs: relax.Expr,
    lhs_scale: ParamLike,
    lhs_zero_point: ParamLike,
    rhs_scale: ParamLike,
    rhs_zero_point: ParamLike,
    output_scale: ParamLike,
    output_zero_point: ParamLike,
) -> relax.Call:
    """Quantized elementwise product (NumPy broadcasting); the output has the inputs' dtype.

    ``clip(round_half_to_even(M * float32((lhs - lhs_zp) * (rhs - rhs_zp))) + output_zp)`` with
    ``M = float32(lhs_scale * rhs_scale / output_scale)`` (computed in float64, rounded once).
    """
    qparams = (lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point, output_scale, output_zero_point)
    return _binary("mul", lhs, rhs, *qparams)


def _check_concat_tensors(tensors: list, axis: int, op: str) -> tuple[str, int]:
    """Check that the tensors share a quantized dtype and every dimension but ``axis``; return both."""
    infos = [tensor_info(t, op, f"tensors[{i}]") for i, t in enumerate(tensors)]
    (shape0, dtype) = infos[0]
    check_dtype(dtype, QUANT_DTYPES, op, "tensors[0]")
    axis = normalize_axis(axis, len(shape0), op)
    for i, (shape, dt) in enumerate(infos):
        if dt != dtype:
            raise TypeError(f"{op}: tensors[{i}] has dtype {dt} but tensors[0] has {dtype}")
        off_axis = [(a, b) for k, (a, b) in enumerate(zip(shape, shape0)) if k != axis]
        if len(shape) != len(shape0) or any(a != b for a, b in off_axis):
            raise ValueError(f"{op}: tensors[{i}] has shape {shape}, which does not match {shape0} off axis {axis}")
    return dtype, axis


def concatenate(
    tensors: Sequence[relax.Expr],
    input_scales: Sequence[ParamLike],
    input_zero_points: Sequence[ParamLike],
    output_scale: ParamLike,
    output_zero_point: ParamLike,
    axis: int = 0,
) -> relax.Call:
    """Concatenate quantized tensors along ``axis``, requantizing each to the output parameters first.

    An input whose scale and zero point equal the output's is copied unchanged;
    the others follow :func:`d2lcc.qnn.requantize` (round half to even).
    """
    from tvm import relax

    op = "qnn.concatenate"
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: tensors must not be empty")
    if len(input_scales) != len(tensors) or len(input_zero_points) != len(tensors):
        raise ValueError(
            f"{op}: {len(tensors)} tensors need as many input_scales and input_zero_points, "
            f"got {len(input_scales)} and {len(input_zero_points)}"
        )
    dtype, axis = _check_concat_tensors(tensors, axis, op)
    scales = [params.scale(s, op, f"input_scales[{i}]") for i, s in enumerate(input_scales)]
    zps = [params.zero_point(z, dtype, op, f"input_zero_points[{i}]") for i, z in enumerate(input_zero_points)]
    args = [
        relax.Tuple(tensors),
        relax.Tuple(scales),
        relax.Tuple(zps),
        params.scale(output_scale, op, "output_scale"),
        params.zero_point(output_zero_point, dtype, op, "output_zero_point"),
    ]
    return _call("concatenate", args, {"axis": axis})
