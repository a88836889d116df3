"""Legalizing quantized conv2d/dense operands to uint8 data x int8 weights.

Intel's VNNI instruction ``vpdpbusd`` (and AVX2's ``vpmaddubsw``) multiplies
*unsigned* 8-bit values by *signed* 8-bit values. A conv2d or dense with other
operand types is rewritten with the identity

    (d - zd) = ((d + 128) - (zd + 128))   and   (w - zw) = ((w - 128) - (zw - 128)),

which shifts int8 data into uint8 and uint8 weights into int8 without changing
any product, hence without changing the int32 result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .params import as_array, constant_value

if TYPE_CHECKING:
    from tvm import relax


def shift(bb: relax.BlockBuilder, x, offset: int, dtype: str):
    """Return ``dtype(int32(x) + offset)``: folded for a constant, emitted otherwise."""
    from tvm import relax

    values = constant_value(x)
    if values is not None:
        return relax.const((values.astype(np.int32) + offset).astype(dtype), dtype)
    x = bb.emit(relax.op.astype(x, "int32"))
    x = bb.emit(relax.op.add(x, relax.const(offset, "int32")))
    return bb.emit(relax.op.astype(x, dtype))


def legalize_matmul(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Rewrite one ``qnn.conv2d``/``qnn.dense`` call so that data is uint8 and weight is int8."""
    from tvm import relax

    data, weight, zd, zw, sd, sw = call.args
    op = str(call.op.name).replace("relax.", "")
    if str(data.ty.dtype) == "int8":
        data = shift(bb, data, 128, "uint8")
        zd = relax.const(as_array(zd, op, "input_zero_point").astype(np.int32) + 128, "int32")
    if str(weight.ty.dtype) == "uint8":
        weight = shift(bb, weight, -128, "int8")
        zw = relax.const(as_array(zw, op, "kernel_zero_point").astype(np.int32) - 128, "int32")
    if data.same_as(call.args[0]) and weight.same_as(call.args[1]):
        return call
    return relax.Call(call.op, [data, weight, zd, zw, sd, sw], call.attrs)
