"""Builders of the ``qnn`` operators: one function per operator, each returning a ``relax.Call``.

Quantization parameters are Relax expressions; Python numbers and NumPy arrays
are turned into constants (scales float32, zero points int32). A 1-D array is a
per-channel parameter along the documented axis. Every argument is checked, and
bad input raises a ValueError or TypeError that names the operator and the argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from . import params
from .params import ParamLike
from .ops import get as _op
from .shapes import check_dtype, conv2d_output_shape, normalize_axis, pair, tensor_info

if TYPE_CHECKING:
    from tvm import relax

QUANT_DTYPES = ("int8", "uint8")
OUT_DTYPES = ("int8", "uint8", "int16", "uint16", "int32")
#: The roundings each ``compute`` mode of requantize supports.
ROUNDINGS = {"float32": ("TONEAREST",), "fixed_point": ("TONEAREST", "UPWARD")}


def _call(name: str, args: list, attrs: dict) -> relax.Call:
    import tvm
    from tvm import relax

    return relax.Call(_op(name), args, tvm.ir.attrs.DictAttrs(attrs))


def quantize(
    data: relax.Expr, scale: ParamLike, zero_point: ParamLike, out_dtype: str = "int8", axis: int = -1
) -> relax.Call:
    """Quantize float32 ``data``: ``clip(round_half_to_even(data / scale) + zero_point)`` in ``out_dtype``.

    ``scale``/``zero_point`` are scalars or 1-D arrays along ``axis`` of ``data``.
    """
    op = "qnn.quantize"
    shape, dtype = tensor_info(data, op, "data")
    check_dtype(dtype, ["float32"], op, "data")
    check_dtype(out_dtype, OUT_DTYPES, op, "out_dtype")
    axis = normalize_axis(axis, len(shape), op)
    s = params.scale(scale, op, "scale", shape[axis])
    z = params.zero_point(zero_point, out_dtype, op, "zero_point", shape[axis])
    return _call("quantize", [data, s, z], {"out_dtype": out_dtype, "axis": axis})


def dequantize(data: relax.Expr, scale: ParamLike, zero_point: ParamLike, axis: int = -1) -> relax.Call:
    """Dequantize integer ``data`` to float32: ``scale * float32(data - zero_point)`` (one float rounding)."""
    op = "qnn.dequantize"
    shape, dtype = tensor_info(data, op, "data")
    check_dtype(dtype, OUT_DTYPES, op, "data")
    axis = normalize_axis(axis, len(shape), op)
    s = params.scale(scale, op, "scale", shape[axis])
    z = params.zero_point(zero_point, dtype, op, "zero_point", shape[axis])
    return _call("dequantize", [data, s, z], {"axis": axis})


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
    """Rescale integer ``data`` to new quantization parameters.

    With ``compute="float32"`` (default):
    ``clip(round_half_to_even(M * float32(data - input_zero_point)) + output_zero_point)``
    with the float32 multiplier ``M = float32(input_scale / output_scale)``
    (:func:`d2lcc.qnn.params.requantize_multiplier`). With ``compute="fixed_point"``:
    integers only, ``M`` as a 31-bit mantissa and a shift (:mod:`d2lcc.qnn.fixed_point`),
    rounding ``"TONEAREST"`` (half to even) or ``"UPWARD"`` (half toward +infinity).
    """
    op = "qnn.requantize"
    shape, dtype = tensor_info(data, op, "data")
    check_dtype(dtype, OUT_DTYPES, op, "data")
    check_dtype(out_dtype, OUT_DTYPES, op, "out_dtype")
    if compute not in ROUNDINGS:
        raise ValueError(f"{op}: compute={compute!r} is not supported; expected one of {list(ROUNDINGS)}")
    if rounding not in ROUNDINGS[compute]:
        raise ValueError(
            f"{op}: rounding={rounding!r} is not supported with compute={compute!r}; "
            f"expected one of {list(ROUNDINGS[compute])}"
        )
    axis = normalize_axis(axis, len(shape), op)
    c = shape[axis]
    args = [
        data,
        params.scale(input_scale, op, "input_scale", c),
        params.zero_point(input_zero_point, dtype, op, "input_zero_point", c),
        params.scale(output_scale, op, "output_scale", c),
        params.zero_point(output_zero_point, out_dtype, op, "output_zero_point", c),
    ]
    attrs = {"out_dtype": out_dtype, "axis": axis, "rounding": rounding, "compute": compute}
    return _call("requantize", args, attrs)


def _matmul_params(op, data, weight, zero_points, scales, units):
    """Check the operands of conv2d/dense and return their four quantization parameters as Relax constants."""
    (input_zero_point, kernel_zero_point), (input_scale, kernel_scale) = zero_points, scales
    _, ddtype = tensor_info(data, op, "data")
    _, wdtype = tensor_info(weight, op, "weight")
    check_dtype(ddtype, QUANT_DTYPES, op, "data")
    check_dtype(wdtype, QUANT_DTYPES, op, "weight")
    return [
        params.zero_point(input_zero_point, ddtype, op, "input_zero_point"),
        params.zero_point(kernel_zero_point, wdtype, op, "kernel_zero_point", units),
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
    """Quantized 2-D convolution (data NCHW, weight OIHW), accumulating in int32.

    Only the NCHW/OIHW layouts are supported (the layout arguments exist so that
    other layouts fail with a clear error); ``padding`` is an int, ``(h, w)`` or
    ``(top, left, bottom, right)``.

    ``out[n, o] = sum (data - input_zero_point) * (weight[o] - kernel_zero_point[o])``;
    padding pads with real zero (the input zero point). The kernel parameters may be
    per-channel along axis 0 (O); the scales are carried for later passes (the
    output's scale is ``input_scale * kernel_scale``).
    """
    op = "qnn.conv2d"
    if data_layout != "NCHW" or kernel_layout != "OIHW":
        raise ValueError(
            f"{op}: data_layout={data_layout!r}, kernel_layout={kernel_layout!r} are not supported; use NCHW and OIHW"
        )
    wshape, _ = tensor_info(weight, op, "weight")
    geometry = _conv2d_geometry(tensor_info(data, op, "data")[0], wshape, strides, padding, dilation, groups)
    check_dtype(out_dtype, ["int32"], op, "out_dtype")
    zero_points, scales = (input_zero_point, kernel_zero_point), (input_scale, kernel_scale)
    qparams = _matmul_params(op, data, weight, zero_points, scales, wshape[0])
    return _call("conv2d", [data, weight, *qparams], {**geometry, "groups": groups, "out_dtype": out_dtype})


def _conv2d_geometry(dshape, wshape, strides, padding, dilation, groups: int) -> dict[str, list[int]]:
    """Check the shapes and window of a conv2d; return strides, padding (4 ints) and dilation as lists."""
    op = "qnn.conv2d"
    if len(dshape) != 4 or len(wshape) != 4:
        raise ValueError(f"{op}: data must be 4-D NCHW and weight 4-D OIHW, got {dshape} and {wshape}")
    if not isinstance(groups, int) or groups < 1 or dshape[1] % groups or wshape[0] % groups:
        raise ValueError(
            f"{op}: groups={groups!r} must be a positive int dividing channels {dshape[1]} and {wshape[0]}"
        )
    if dshape[1] != wshape[1] * groups:
        raise ValueError(f"{op}: weight has {wshape[1]} input channels per group but data has {dshape[1]} / {groups}")
    pad = _padding(padding, op)
    strides, dilation = pair(strides, op, "strides"), pair(dilation, op, "dilation")
    if min(strides + dilation) < 1 or min(pad) < 0:
        raise ValueError(f"{op}: strides/dilation must be >= 1 and padding >= 0")
    if min(conv2d_output_shape(dshape, wshape, strides, pad, dilation)) < 1:
        raise ValueError(f"{op}: the kernel {wshape[2:]} does not fit the padded input {dshape[2:]}")
    return {"strides": strides, "padding": pad, "dilation": dilation}


def _padding(padding: int | Sequence[int], op: str) -> list[int]:
    """Return padding as ``(top, left, bottom, right)`` from an int, ``(h, w)`` or four ints."""
    if not isinstance(padding, int) and len(padding) == 4:
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
    """Quantized matrix product of ``data [m, k]`` and ``weight [units, k]``, accumulating in int32.

    ``out[i, j] = sum_k (data[i, k] - input_zero_point) * (weight[j, k] - kernel_zero_point[j])``;
    the kernel parameters may be per-channel along axis 0 (units).
    """
    op = "qnn.dense"
    dshape, _ = tensor_info(data, op, "data")
    wshape, _ = tensor_info(weight, op, "weight")
    if len(dshape) != 2 or len(wshape) != 2 or dshape[1] != wshape[1]:
        raise ValueError(f"{op}: data [m, k] and weight [units, k] do not match: {dshape} and {wshape}")
    check_dtype(out_dtype, ["int32"], op, "out_dtype")
    zero_points, scales = (input_zero_point, kernel_zero_point), (input_scale, kernel_scale)
    qparams = _matmul_params(op, data, weight, zero_points, scales, wshape[0])
    return _call("dense", [data, weight, *qparams], {"out_dtype": out_dtype})
