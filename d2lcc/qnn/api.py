"""Builders of the quantize, dequantize, requantize, conv2d and dense operators.

These docstrings are the dialect's semantics (the one place they are stated);
:mod:`d2lcc.qnn.reference` computes them from these definitions in NumPy and
:mod:`d2lcc.qnn.lower` / :mod:`d2lcc.qnn.lower_matmul` lower them to Relax.
Common to all: ``real = scale * (q - zero_point)``, as in TFLite and ONNX;
every rounding is round half to even (``np.round``, Relax ``R.round``, ONNX).

Each builder returns a ``relax.Call``. ``data``/``weight`` may be any Relax
tensor expression with a static shape, nested calls included. Scales and zero
points are Relax expressions, Python numbers or 1-D arrays (per channel);
numbers become float32 (scales) or int32 (zero points) constants after being
checked. Bad input raises a ValueError or TypeError naming the operator and
the argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .. import checks
from . import params
from .common import check_accumulator
from .fixed_point import FIXED_POINT_ROUNDINGS, fixed_point_multiplier
from .ops import make_call
from .params import OUT_DTYPES, QUANT_DTYPES, ParamLike, constant_value
from .shapes import check_dtype, conv2d_output_shape, normalize_axis, pair, tensor_info

if TYPE_CHECKING:
    from tvm import relax

#: The roundings each ``compute`` mode of requantize supports.
ROUNDINGS = {"float32": ("TONEAREST",), "fixed_point": FIXED_POINT_ROUNDINGS}


def quantize(data: relax.Expr, scale: ParamLike, zero_point: ParamLike,
             out_dtype: str = "int8", axis: int = -1) -> relax.Call:
    """Quantize float32 ``data`` to the integer ``out_dtype``, saturating.

    ``q = clip(round(data / scale) + zero_point, qmin, qmax)``: the division and
    rounding in float32; then the zero point is added and the result clipped
    while still a float (float64 for int32), so values beyond the range,
    +-inf included, become ``qmax``/``qmin``. NaN becomes ``zero_point``
    (the real number 0). ``scale``/``zero_point`` are scalars or 1-D arrays
    along ``axis``.
    """
    op = "qnn.quantize"
    check_dtype(out_dtype, OUT_DTYPES, op, "out_dtype")
    shape, dtype = tensor_info(data, op, "data")
    check_dtype(dtype, ["float32"], op, "data")
    axis = normalize_axis(axis, len(shape), op)
    s = params.scale(scale, op, "scale", shape[axis])
    z = params.zero_point(zero_point, out_dtype, op, "zero_point", shape[axis])
    return make_call("quantize", [data, s, z], {"out_dtype": out_dtype, "axis": axis})


def dequantize(data: relax.Expr, scale: ParamLike, zero_point: ParamLike,
               axis: int = -1) -> relax.Call:
    """Dequantize integer ``data`` to float32: ``float32(data - zero_point) * scale``.

    The difference is exact (in int64 for int32 data); converting it to float32
    rounds only beyond 2**24, and the product rounds once.
    """
    op = "qnn.dequantize"
    shape, dtype = tensor_info(data, op, "data")
    check_dtype(dtype, OUT_DTYPES, op, "data")
    axis = normalize_axis(axis, len(shape), op)
    s = params.scale(scale, op, "scale", shape[axis])
    z = params.zero_point(zero_point, dtype, op, "zero_point", shape[axis])
    return make_call("dequantize", [data, s, z], {"axis": axis})


def requantize(
    data: relax.Expr,
    input_scale: ParamLike,
    input_zero_point: ParamLike,
    output_scale: ParamLike,
    output_zero_point: ParamLike,
    out_dtype: str = "int8",
    axis: int = -1,
    rounding: str = "TONEAREST",
    compute: str = "float32",
) -> relax.Call:
    """Rescale integer ``data`` to new quantization parameters, saturating.

    ``q = clip(round(M * (data - input_zero_point)) + output_zero_point)`` with
    ``M = input_scale / output_scale``; the difference is exact (int64 for
    int32 data) and the clip happens before the cast, so nothing wraps.

    - ``compute="float32"``: ``M`` is the ratio rounded once to float32
      (:func:`d2lcc.qnn.params.requantize_multiplier`; it must not overflow);
      the difference is converted to float32 and multiplied in float32;
      ``rounding="TONEAREST"`` (half to even) only.
    - ``compute="fixed_point"``: integers only (:mod:`d2lcc.qnn.fixed_point`),
      ``M`` as a 31-bit mantissa and a shift in ``[1, 62]`` (so ``M`` below
      ``2**30``), exact int64 products; ``rounding`` ``"TONEAREST"`` (half to
      even) or ``"UPWARD"`` (half toward +infinity).
    """
    op = "qnn.requantize"
    checks.one_of(op, "compute", compute, list(ROUNDINGS))
    if rounding not in ROUNDINGS[compute]:
        raise ValueError(f"{op}: rounding={rounding!r} is not supported with "
                         f"compute={compute!r}; expected one of "
                         f"{list(ROUNDINGS[compute])}")
    check_dtype(out_dtype, OUT_DTYPES, op, "out_dtype")
    shape, dtype = tensor_info(data, op, "data")
    check_dtype(dtype, OUT_DTYPES, op, "data")
    axis = normalize_axis(axis, len(shape), op)
    c = shape[axis]
    s_in = params.scale(input_scale, op, "input_scale", c)
    s_out = params.scale(output_scale, op, "output_scale", c)
    args = [
        data,
        s_in,
        params.zero_point(input_zero_point, dtype, op, "input_zero_point", c),
        s_out,
        params.zero_point(output_zero_point, out_dtype, op, "output_zero_point", c),
    ]
    _check_multiplier(op, constant_value(s_in), constant_value(s_out), compute)
    attrs = {"out_dtype": out_dtype, "axis": axis, "rounding": rounding,
             "compute": compute}
    return make_call("requantize", args, attrs)


def _check_multiplier(op: str, s_in, s_out, compute: str) -> None:
    """With constant scales, refuse a multiplier the chosen ``compute`` cannot use."""
    if s_in is None or s_out is None:
        return
    if compute == "fixed_point":
        what = f"input_scale={s_in} / output_scale={s_out}"
        fixed_point_multiplier(params.scale_ratio(s_in, s_out), op, what)
    else:
        params.requantize_multiplier(s_in, s_out, op=op)


def _matmul_params(op, data, weight, zero_points, scales, units, k):
    """Check conv2d/dense operands; return their four parameters as expressions."""
    input_zero_point, kernel_zero_point = zero_points
    input_scale, kernel_scale = scales
    _, ddtype = tensor_info(data, op, "data")
    _, wdtype = tensor_info(weight, op, "weight")
    check_dtype(ddtype, QUANT_DTYPES, op, "data")
    check_dtype(wdtype, QUANT_DTYPES, op, "weight")
    zd = params.zero_point(input_zero_point, ddtype, op, "input_zero_point")
    zw = params.zero_point(kernel_zero_point, wdtype, op, "kernel_zero_point", units)
    zd_value, zw_value = constant_value(zd), constant_value(zw)
    if zd_value is not None and zw_value is not None:
        check_accumulator(op, k, ddtype, int(zd_value), wdtype, zw_value)
    return [
        zd,
        zw,
        params.scale(input_scale, op, "input_scale"),
        params.scale(kernel_scale, op, "kernel_scale", units),
    ]


def conv2d(
    data: relax.Expr,
    weight: relax.Expr,
    input_zero_point: ParamLike,
    kernel_zero_point: ParamLike,
    input_scale: ParamLike,
    kernel_scale: ParamLike,
    strides: int | Sequence[int] = (1, 1),
    padding: int | Sequence[int] = (0, 0),
    dilation: int | Sequence[int] = (1, 1),
    groups: int = 1,
    out_dtype: str = "int32",
    data_layout: str = "NCHW",
    kernel_layout: str = "OIHW",
) -> relax.Call:
    """Quantized 2-D convolution (data NCHW, weight OIHW) with exact int32 sums.

    ``out[n, o] = sum (data - input_zero_point) * (weight[o] - kernel_zero_point[o])``
    over the ``K = C / groups * KH * KW`` products of each window; padding pads
    with real zero (the input zero point). The kernel parameters may be
    per-channel along axis 0 (O); the scales are carried for the requantize that
    follows (the output's scale is ``input_scale * kernel_scale``). No rounding.

    The sums are exact: a call whose int32 steps could overflow, that is with
    ``K * (max|d| + |input_zero_point|) * (max|w| + max|kernel_zero_point|)``
    above ``2**31 - 1`` (``max|d|`` = 255 for uint8, 128 for int8), is refused.
    Empty batches, channels or ``K = 0`` give empty or all-zero results.
    Only NCHW/OIHW are supported; ``padding`` is an int, ``(h, w)`` or
    ``(top, left, bottom, right)``.
    """
    op = "qnn.conv2d"
    checks.one_of(op, "data_layout", data_layout, ["NCHW"])
    checks.one_of(op, "kernel_layout", kernel_layout, ["OIHW"])
    check_dtype(out_dtype, ["int32"], op, "out_dtype")
    wshape, _ = tensor_info(weight, op, "weight")
    dshape, _ = tensor_info(data, op, "data")
    geometry = _conv2d_geometry(dshape, wshape, strides, padding, dilation, groups)
    zero_points = (input_zero_point, kernel_zero_point)
    scales = (input_scale, kernel_scale)
    k = wshape[1] * wshape[2] * wshape[3]
    qparams = _matmul_params(op, data, weight, zero_points, scales, wshape[0], k)
    attrs = {**geometry, "groups": groups, "out_dtype": out_dtype}
    return make_call("conv2d", [data, weight, *qparams], attrs)


def _conv2d_geometry(dshape, wshape, strides, padding, dilation, groups):
    """Check the shapes and window of a conv2d; return strides, padding, dilation."""
    op = "qnn.conv2d"
    if len(dshape) != 4 or len(wshape) != 4:
        raise ValueError(f"{op}: data must be 4-D NCHW and weight 4-D OIHW, got "
                         f"{dshape} and {wshape}")
    checks.positive_int(op, "groups", groups)
    if dshape[1] % groups or wshape[0] % groups:
        raise ValueError(f"{op}: groups={groups!r} must divide the channels "
                         f"{dshape[1]} (data) and {wshape[0]} (weight)")
    if dshape[1] != wshape[1] * groups:
        raise ValueError(f"{op}: weight has {wshape[1]} input channels per group but "
                         f"data has {dshape[1]} / {groups}")
    pad = _padding(padding, op)
    strides, dilation = pair(strides, op, "strides"), pair(dilation, op, "dilation")
    if min(strides) < 1 or min(dilation) < 1 or min(pad) < 0:
        raise ValueError(f"{op}: strides={strides} and dilation={dilation} must be "
                         f">= 1 and padding={pad} >= 0")
    if min(wshape[2:]) < 1:
        raise ValueError(f"{op}: the kernel window {wshape[2:]} must be at least 1 x 1")
    if min(conv2d_output_shape(dshape, wshape, strides, pad, dilation)[2:]) < 1:
        raise ValueError(f"{op}: the kernel {wshape[2:]} (dilation {dilation}) does "
                         f"not fit the padded input {dshape[2:]} (padding {pad})")
    return {"strides": strides, "padding": pad, "dilation": dilation}


def _padding(padding, op: str) -> list[int]:
    """Return padding as (top, left, bottom, right) from an int, (h, w) or 4 ints."""
    if isinstance(padding, (list, tuple)) and len(padding) == 4:
        return pair(padding, op, "padding", 4)
    return pair(padding, op, "padding") * 2


def dense(
    data: relax.Expr,
    weight: relax.Expr,
    input_zero_point: ParamLike,
    kernel_zero_point: ParamLike,
    input_scale: ParamLike,
    kernel_scale: ParamLike,
    out_dtype: str = "int32",
) -> relax.Call:
    """Quantized matrix product of ``data [m, k]`` and ``weight [units, k]``, int32.

    ``out[i, j] = sum_k (data[i, k] - input_zero_point) * (weight[j, k] -
    kernel_zero_point[j])``, exact; the kernel parameters may be per-channel
    along axis 0 (units). The same overflow bound as :func:`conv2d` applies,
    with ``K = k``; ``k = 0`` gives zeros.
    """
    op = "qnn.dense"
    check_dtype(out_dtype, ["int32"], op, "out_dtype")
    dshape, _ = tensor_info(data, op, "data")
    wshape, _ = tensor_info(weight, op, "weight")
    if len(dshape) != 2 or len(wshape) != 2 or dshape[1] != wshape[1]:
        raise ValueError(f"{op}: data [m, k] and weight [units, k] do not match: "
                         f"{dshape} and {wshape}")
    zero_points = (input_zero_point, kernel_zero_point)
    scales = (input_scale, kernel_scale)
    units, k = wshape
    qparams = _matmul_params(op, data, weight, zero_points, scales, units, k)
    return make_call("dense", [data, weight, *qparams], {"out_dtype": out_dtype})
