"""Integer-only requantization: a real multiplier as a 31-bit mantissa and a shift.

Hardware without fast floating point (and TFLite's reference kernels, after
:cite:`Jacob.Kligys.Chen.ea.2018`) rescale an integer ``x`` by a real
multiplier ``m`` with integers only: ``m ~= mantissa * 2**-shift`` with
``mantissa`` in ``[2**30, 2**31)`` and ``shift`` in ``[1, 62]``, so that
``round(x * m)`` is ``x * mantissa`` (an int64 product) shifted right by
``shift`` with rounding: half up (toward +infinity), or half to even.

This module computes the mantissa and shift, the exact reference (Python
integers, no overflow possible) and the Relax lowering used by
``qnn.requantize(..., compute="fixed_point")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import checks
from .common import const_along, int_values

if TYPE_CHECKING:
    from tvm import relax

FIXED_POINT_ROUNDINGS = ("TONEAREST", "UPWARD")
#: Shifts the int64 lowering supports (``1 << shift`` must fit in an int64).
SHIFT_RANGE = (1, 62)


def fixed_point_multiplier(multiplier: Any, op: str = "qnn.requantize",
                           what: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return int64 ``(mantissa, shift)`` with ``multiplier ~= mantissa * 2**-shift``.

    ``mantissa`` has 31 significant bits, in ``[2**30, 2**31)``, and ``shift``
    lies in ``[1, 62]``: multipliers that round (at 31 bits) to a value outside
    ``[2**-32, 2**30)`` raise a ValueError naming ``op`` and ``what`` (a
    description of where the multiplier came from, such as the two scales).
    """
    func = "qnn.fixed_point.fixed_point_multiplier"
    checks.string(func, "op", op)
    if what is not None:
        checks.string(func, "what", what)
    try:
        if isinstance(multiplier, (bool, np.bool_, str)) or multiplier is None:
            raise TypeError
        m = np.asarray(multiplier, np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: multiplier must be a number or an array, "
                        f"got {type(multiplier).__name__}") from None
    source = f" ({what})" if what else ""
    if not np.all(np.isfinite(m) & (m > 0)):
        raise ValueError(f"{op}: the multiplier {m}{source} must be positive and "
                         "finite")
    frac, exp = np.frexp(m)  # m = frac * 2**exp, frac in [0.5, 1)
    mantissa = np.round(frac * 2.0**31).astype(np.int64)
    carry = mantissa == 2**31  # frac rounded up to 1.0
    mantissa = np.where(carry, mantissa // 2, mantissa)
    shift = 31 - (exp.astype(np.int64) + carry)
    if np.any(shift < SHIFT_RANGE[0]) or np.any(shift > SHIFT_RANGE[1]):
        raise ValueError(
            f"{op}: the multiplier {m}{source} is outside [2**-32, 2**30) once rounded "
            "to 31 bits, which fixed-point requantization needs; use compute='float32'")
    return mantissa, shift


def rescale_reference(x: Any, mantissa: Any, shift: Any,
                      rounding: str = "TONEAREST") -> np.ndarray:
    """Exact ``round(x * mantissa * 2**-shift)`` with Python integers, as int64.

    ``rounding`` is ``"TONEAREST"`` (ties to even) or ``"UPWARD"`` (ties toward
    +infinity). Arrays broadcast like NumPy arrays.
    """
    func = "qnn.fixed_point.rescale_reference"
    checks.one_of(func, "rounding", rounding, FIXED_POINT_ROUNDINGS)
    x = checks.array(func, "x", np.asarray(x) if not isinstance(x, np.ndarray) else x,
                     dtypes=["int8", "uint8", "int16", "uint16", "int32", "int64"])
    mantissa = checks.array(func, "mantissa", np.asarray(mantissa),
                            dtypes=["int32", "int64"])
    shift = checks.array(func, "shift", np.asarray(shift), dtypes=["int32", "int64"])
    if np.any(shift < SHIFT_RANGE[0]) or np.any(shift > SHIFT_RANGE[1]):
        raise ValueError(f"{func}: shift={shift} must lie in {list(SHIFT_RANGE)}")
    if np.any(mantissa < 0):
        raise ValueError(f"{func}: mantissa={mantissa} must be >= 0")

    def one(xi: int, mi: int, si: int) -> int:
        q, r = divmod(xi * mi, 1 << si)  # floor division: r in [0, 2**si)
        half = 1 << (si - 1)
        if r > half or (r == half and (rounding == "UPWARD" or q % 2)):
            q += 1
        return q

    exact = np.frompyfunc(one, 3, 1)(x.astype(object), mantissa.astype(object),
                                     shift.astype(object))
    return np.asarray(exact, dtype=np.int64)


def lower_rescale(bb: relax.BlockBuilder, x: relax.Expr, mantissa: np.ndarray,
                  shift: np.ndarray, rounding: str, axis: int, ndim: int) -> relax.Expr:
    """Emit the integer-only rescale of an int64 expression ``x``; returns int64.

    With ``p = x * mantissa``, ``p >> shift`` rounds down; adding bit
    ``shift - 1`` of ``p`` rounds half up, without the overflow that adding
    ``2**(shift - 1)`` to ``p`` could cause. For ties to even, a tie (the
    bits shifted out are exactly one half) with an odd result steps back by one.
    """
    from tvm import relax

    func = "qnn.fixed_point.lower_rescale"
    if not isinstance(bb, relax.BlockBuilder):
        raise TypeError(f"{func}: bb must be a relax.BlockBuilder, "
                        f"got {type(bb).__name__}")
    if not isinstance(x, relax.Expr):
        raise TypeError(f"{func}: x must be a Relax expression, got {type(x).__name__}")
    checks.one_of("qnn.fixed_point.lower_rescale", "rounding", rounding,
                  FIXED_POINT_ROUNDINGS)
    mantissa = int_values(func, "mantissa", mantissa, 1, 2**31 - 1)
    shift = int_values(func, "shift", shift, 1, 62)

    def c(values):
        return const_along(np.asarray(values, np.int64), axis, ndim, "int64")

    p = bb.emit(relax.op.multiply(x, c(mantissa)))
    q = bb.emit(relax.op.right_shift(p, c(shift)))
    half_bit = bb.emit(relax.op.right_shift(p, c(shift - 1)))
    half_bit = bb.emit(relax.op.bitwise_and(half_bit, relax.const(1, "int64")))
    if rounding == "TONEAREST":
        rest = bb.emit(relax.op.bitwise_and(p, c(np.left_shift(1, shift) - 1)))
        tie = bb.emit(relax.op.equal(rest, c(np.left_shift(1, shift - 1))))
        odd = bb.emit(relax.op.bitwise_and(q, relax.const(1, "int64")))
        half_bit = bb.emit(relax.op.where(tie, odd, half_bit))
    return bb.emit(relax.op.add(q, half_bit))
