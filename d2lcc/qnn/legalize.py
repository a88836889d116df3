"""Legalizing quantized conv2d/dense operands to uint8 data x int8 weights.

Intel's VNNI instruction ``vpdpbusd`` (and AVX2's ``vpmaddubsw``) multiplies
*unsigned* 8-bit values by *signed* 8-bit values. A conv2d or dense with other
operand types is rewritten with the identity

    (d - zd) = ((d + 128) - (zd + 128))   and   (w - zw) = ((w - 128) - (zw - 128)),

which shifts int8 data into uint8 and uint8 weights into int8 without changing
any product, hence without changing the int32 result.

The rule :func:`legalize_matmul` is what :numref:`sec_qnn_legalize` teaches;
the book shows it as a cell readers can edit (``__teaching__``), so it checks
nothing: :func:`~d2lcc.qnn.transform.rewrite_calls` hands it a BlockBuilder
and a ``qnn.conv2d``/``qnn.dense`` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import checks
from .params import as_array, constant_value

if TYPE_CHECKING:
    from tvm import relax

__teaching__ = ("legalize_matmul",)


def shift(bb: relax.BlockBuilder, x, offset: int, dtype: str):
    """Return ``dtype(int32(x) + offset)``: folded for a constant, emitted otherwise."""
    from tvm import relax

    if not isinstance(bb, relax.BlockBuilder):
        raise TypeError(f"qnn.legalize.shift: bb must be a relax.BlockBuilder, "
                        f"got {type(bb).__name__}")
    if not isinstance(x, relax.Expr):
        raise TypeError(f"qnn.legalize.shift: x must be a Relax expression, "
                        f"got {type(x).__name__}")
    offset = checks.integer("qnn.legalize.shift", "offset", offset, minimum=-255,
                            maximum=255)
    checks.one_of("qnn.legalize.shift", "dtype", dtype, ["int8", "uint8"])
    values = constant_value(x)
    if values is not None:
        shifted = (values.astype(np.int32) + offset).astype(dtype)
        return relax.const(shifted, dtype)
    x = bb.emit(relax.op.astype(x, "int32"))
    x = bb.emit(relax.op.add(x, relax.const(offset, "int32")))
    return bb.emit(relax.op.astype(x, dtype))


def legalize_matmul(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Rewrite one ``qnn.conv2d``/``qnn.dense`` call to uint8 data and int8 weights."""
    from tvm import relax

    data, weight, zd, zw, sd, sw = call.args
    op = str(call.op.name).replace("relax.", "")
    if str(data.ty.dtype) == "int8":
        data = shift(bb, data, 128, "uint8")
        zd = as_array(zd, op, "input_zero_point").astype(np.int32) + 128
        zd = relax.const(zd, "int32")
    if str(weight.ty.dtype) == "uint8":
        weight = shift(bb, weight, -128, "int8")
        zw = as_array(zw, op, "kernel_zero_point").astype(np.int32) - 128
        zw = relax.const(zw, "int32")
    if data.same_as(call.args[0]) and weight.same_as(call.args[1]):
        return call
    return relax.Call(call.op, [data, weight, zd, zw, sd, sw], call.attrs)
