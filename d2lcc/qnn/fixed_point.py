"""Integer-only requantization: a real multiplier as a 31-bit mantissa and a right shift.

Hardware without fast floating point (and TFLite's reference kernels, after
:cite:`Jacob.Kligys.Chen.ea.2018`) rescale an int32 accumulator ``x`` by a real multiplier ``m`` with integers only:
``m = mantissa * 2**-shift`` with ``mantissa`` in ``[2**30, 2**31)``, so

    round(x * m) = (x * mantissa + 2**(shift - 1)) >> shift      (int64 arithmetic)

rounds half up (toward +infinity); round half to even additionally steps
back by one on exact ties whose result is odd. This module computes the
mantissa and shift, the NumPy reference, and the Relax lowering used by
``qnn.requantize(..., compute="fixed_point")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tvm import relax

FIXED_POINT_ROUNDINGS = ("TONEAREST", "UPWARD")


def fixed_point_multiplier(multiplier, op: str = "qnn.requantize") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(mantissa, shift)`` (int64 arrays) with ``multiplier ~= mantissa * 2**-shift``.

    ``mantissa`` lies in ``[2**30, 2**31)`` (31 significant bits) and ``shift`` in ``[1, 62]``;
    multipliers outside ``[2**-31, 2**30)`` raise a ValueError naming ``op``.
    """
    m = np.asarray(multiplier, np.float64)
    if np.any(~np.isfinite(m)) or np.any(m < 2.0**-31) or np.any(m >= 2.0**30):
        raise ValueError(f"{op}: the multiplier {m} is outside [2**-31, 2**30) for fixed-point requantization")
    frac, exp = np.frexp(m)  # m = frac * 2**exp, frac in [0.5, 1)
    mantissa = np.round(frac * 2.0**31).astype(np.int64)
    carry = mantissa == 2**31  # frac rounded up to 1.0
    mantissa = np.where(carry, mantissa // 2, mantissa)
    shift = 31 - (exp.astype(np.int64) + carry)
    return mantissa, shift


def rescale_reference(x, mantissa, shift, rounding: str = "TONEAREST") -> np.ndarray:
    """NumPy: ``round(x * mantissa * 2**-shift)`` in int64 (half up, or half to even)."""
    p = np.asarray(x, np.int64) * mantissa
    half = np.left_shift(np.int64(1), shift - 1)
    q = np.right_shift(p + half, shift)
    if rounding == "TONEAREST":
        mask = np.left_shift(np.int64(1), shift) - 1
        tie = np.bitwise_and(p, mask) == half
        q = np.where(tie, q - np.bitwise_and(q, 1), q)
    return q.astype(np.int32)


def lower_rescale(
    bb: relax.BlockBuilder, x: relax.Expr, mantissa: np.ndarray, shift: np.ndarray, rounding: str, axis: int, ndim: int
) -> relax.Expr:
    """Emit the integer-only rescale of an int32 expression ``x``; returns an int32 expression."""
    from tvm import relax

    from .lower import const_along

    def c(values):
        return const_along(np.asarray(values, np.int64), axis, ndim, "int64")

    x = bb.emit(relax.op.astype(x, "int64"))
    p = bb.emit(relax.op.multiply(x, c(mantissa)))
    q = bb.emit(relax.op.add(p, c(np.left_shift(np.int64(1), shift - 1))))
    q = bb.emit(relax.op.right_shift(q, c(shift)))
    if rounding == "TONEAREST":
        rest = bb.emit(relax.op.bitwise_and(p, c(np.left_shift(np.int64(1), shift) - 1)))
        tie = bb.emit(relax.op.equal(rest, c(np.left_shift(np.int64(1), shift - 1))))
        odd = bb.emit(relax.op.bitwise_and(q, relax.const(1, "int64")))
        q = bb.emit(relax.op.where(tie, bb.emit(relax.op.subtract(q, odd)), q))
    return bb.emit(relax.op.astype(q, "int32"))
