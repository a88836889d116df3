"""QNN-level simplification: ``quantize(dequantize(q))`` with equal parameters is ``q``.

Quantized models in the "QDQ" format wrap every float operator in a
dequantize/quantize pair; once an operator between them is removed (or found
to commute with quantization), a pair with equal parameters is left behind.
At the dialect level the pattern is two calls whose parameters we compare; after
lowering it is a multiply, divide, round, add, clip and two casts that no
generic pass could prove to be the identity.

It is the identity, exactly: with ``a = q - zero_point`` (exact in float32) and
the relative rounding errors ``|e1|, |e2| <= 2**-24`` of the multiply and the
divide, the round trip computes ``a * (1 + e1) * (1 + e2)``, which differs
from ``a`` by at most ``|a| * (2**-23 + 2**-48)``: less than 0.5 for
``|a| < 2**22`` (any 8- or 16-bit ``q``), so rounding gives ``a`` back, and
``a + zero_point = q`` is in range, so the clip changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from .common import check_rule_args
from .ops import is_qnn_call
from .params import constant_value

if TYPE_CHECKING:
    from tvm import relax

#: Input dtypes whose round trip is proven exact (``|q - zero_point| < 2**22``).
EXACT_DTYPES = ("int8", "uint8", "int16", "uint16")


def _same_constant(a, b) -> bool:
    va, vb = constant_value(a), constant_value(b)
    if va is None or vb is None:
        return False
    return va.shape == vb.shape and bool(np.all(va == vb))


def fold_dequantize_quantize(bb: relax.BlockBuilder, call: relax.Call,
                             lookup: Callable) -> relax.Expr:
    """Return ``q`` for ``quantize(dequantize(q, s, z), s, z)``, else ``call``."""
    check_rule_args("qnn.simplify.fold_dequantize_quantize", bb, call)
    if not callable(lookup):
        raise TypeError("qnn.simplify.fold_dequantize_quantize: lookup must be "
                        "callable")
    source = lookup(call.args[0])
    if source is None or not is_qnn_call(source, "dequantize"):
        return call
    q = source.args[0]
    dtype = str(q.ty.dtype)
    same_params = (_same_constant(call.args[1], source.args[1])
                   and _same_constant(call.args[2], source.args[2]))
    if not same_params or dtype != str(call.attrs["out_dtype"]):
        return call
    per_tensor = constant_value(call.args[1]).ndim == 0
    same_axis = per_tensor or int(call.attrs["axis"]) == int(source.attrs["axis"])
    return q if same_axis and dtype in EXACT_DTYPES else call
