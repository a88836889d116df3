"""Integer-only requantization (compute="fixed_point"): multiplier, ties, compiled."""

import numpy as np
import pytest
from tvm import relax

from d2lcc import qnn
from d2lcc.qnn import reference as ref
from d2lcc.qnn.fixed_point import fixed_point_multiplier, rescale_reference


def test_multiplier_has_31_significant_bits(rng):
    m = rng.uniform(2.0**-20, 2.0**10, 1000)
    mantissa, shift = fixed_point_multiplier(m)
    assert np.all((mantissa >= 2**30) & (mantissa < 2**31))
    approx = mantissa * 2.0 ** (-shift.astype(np.float64))
    np.testing.assert_allclose(approx, m, rtol=2.0**-31)


def test_multiplier_rounding_up_to_a_power_of_two_carries():
    # frac rounds up to 1.0
    mantissa, shift = fixed_point_multiplier(np.nextafter(1.0, 0.0))
    assert (int(mantissa), int(shift)) == (2**30, 30)


@pytest.mark.parametrize(
    "rounding,expected",
    [("TONEAREST", [-2, -2, -0, 0, 2, 2, 4]), ("UPWARD", [-2, -1, 0, 1, 2, 3, 4])],
)
def test_ties_round_half_to_even_or_up(rounding, expected):
    x = np.array([-5, -3, -1, 1, 3, 5, 7])  # x * 0.5 is always a tie
    mantissa, shift = fixed_point_multiplier(0.5)
    got = rescale_reference(x, mantissa, shift, rounding)
    np.testing.assert_array_equal(got, expected)


def test_fixed_point_is_within_one_unit_of_float(rng):
    q = rng.integers(-(2**20), 2**20, 5000).astype("int32")
    args = (0.0123, 3, 0.5, 10)
    fixed = ref.requantize(q, *args, out_dtype="int32", compute="fixed_point")
    floating = ref.requantize(q, *args, out_dtype="int32")
    assert np.abs(fixed.astype(np.int64) - floating).max() <= 1


@pytest.mark.parametrize("rounding", ["TONEAREST", "UPWARD"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_compiled_fixed_point_requantize_is_bit_exact(run, rng, rounding, per_channel):
    q = rng.integers(-(2**24), 2**24, (2, 3, 5)).astype("int32")
    q[0, 0, :] = 2 * np.arange(5) + 1  # ties for a multiplier of 0.5 below
    s_in = rng.uniform(0.001, 0.01, 3 if per_channel else None)
    if not per_channel:
        s_in = 0.5 * 0.25  # multiplier 0.5 exactly: every odd value is a tie
    args = (s_in, 7, 0.25, -3)
    kwargs = dict(out_dtype="int8", axis=1, rounding=rounding, compute="fixed_point")
    got = run(lambda v: qnn.requantize(v, *args, **kwargs), q)
    np.testing.assert_array_equal(got, ref.requantize(q, *args, **kwargs))


def test_fixed_point_lowering_uses_integers_only():
    mod = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4,), "int32"))
    with mod.function("main", [x]):
        out = mod.emit(qnn.requantize(x, 0.1, 0, 0.3, 0, compute="fixed_point"))
        mod.emit_func_output(out)
    text = qnn.transform.Canonicalize()(mod.get()).script()
    assert "float" not in text and "R.right_shift" in text


def test_bad_compute_and_rounding():
    x = relax.Var("x", relax.TensorType((4,), "int32"))
    with pytest.raises(ValueError, match="qnn.requantize: compute='double'"):
        qnn.requantize(x, 0.1, 0, 0.3, 0, compute="double")
    message = "rounding=.UPWARD. is not supported with compute=.float32."
    with pytest.raises(ValueError, match=message):
        qnn.requantize(x, 0.1, 0, 0.3, 0, rounding="UPWARD")
    with pytest.raises(ValueError, match=r"qnn.requantize: the multiplier .* outside"):
        fixed_point_multiplier(2.0**31)
