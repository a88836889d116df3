"""Unit tests of d2lcc.checks, the shared argument checks."""

import numpy as np
import pytest

from d2lcc import checks


def test_integer_normalizes_numpy_ints_and_bounds():
    assert checks.integer("f", "n", np.int64(5), minimum=0, maximum=5) == 5
    assert type(checks.positive_int("f", "n", np.int32(3))) is int
    assert checks.nonnegative_int("f", "n", 0) == 0


@pytest.mark.parametrize("value", [True, 1.0, "3", None, [1]])
def test_integer_refuses_non_ints_naming_function_and_argument(value):
    with pytest.raises(TypeError, match=r"^f: n must be an int"):
        checks.positive_int("f", "n", value)


@pytest.mark.parametrize("value, bound", [(0, ">= 1"), (-1, ">= 1"), (2**40, "<= ")])
def test_positive_int_range(value, bound):
    with pytest.raises(ValueError, match=rf"^f: n={value} must be {bound}"):
        checks.positive_int("f", "n", value)


def test_multiple_of():
    assert checks.multiple_of("f", "n", 32, 16, "tile") == 32
    with pytest.raises(ValueError, match="n=100 must be a multiple of tile=16"):
        checks.multiple_of("f", "n", 100, 16, "tile")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_real_refuses_non_finite(value):
    with pytest.raises(ValueError, match="must be a finite number"):
        checks.real("f", "x", value)


def test_real_bounds_and_inf():
    assert checks.real("f", "x", float("inf"), allow_inf=True) == float("inf")
    with pytest.raises(ValueError, match="nan must be a finite"):
        checks.real("f", "x", float("nan"), allow_inf=True)
    with pytest.raises(ValueError, match="x=0.0 must be > 0"):
        checks.real("f", "x", 0, positive=True)
    with pytest.raises(ValueError, match="x=3.0 must be <= 2"):
        checks.real("f", "x", 3, maximum=2)
    with pytest.raises(TypeError, match="real number"):
        checks.real("f", "x", True)
    with pytest.raises(TypeError, match="real number"):
        checks.real("f", "x", "1.0")


def test_boolean_and_one_of_and_string_and_function():
    assert checks.boolean("f", "b", np.bool_(True)) is True
    with pytest.raises(TypeError, match="f: b must be True or False"):
        checks.boolean("f", "b", 1)
    assert checks.one_of("f", "mode", "UPWARD", ["UPWARD", "TONEAREST"]) == "UPWARD"
    with pytest.raises(ValueError, match="mode='BOGUS' must be one of"):
        checks.one_of("f", "mode", "BOGUS", ["UPWARD", "TONEAREST"])
    with pytest.raises(ValueError, match="must be one of"):
        checks.one_of("f", "k", 1, [True])  # 1 == True, but it is not the bool
    with pytest.raises(ValueError, match="must not be empty"):
        checks.string("f", "s", "")
    with pytest.raises(TypeError, match="f: fn must be callable"):
        checks.function("f", "fn", 3)


def test_array_checks():
    a = np.zeros((2, 3), np.float32)
    assert checks.array("f", "a", a, ndim=2, dtypes=["float32"]) is a
    with pytest.raises(TypeError, match="must be a NumPy array"):
        checks.array("f", "a", [1, 2])
    with pytest.raises(ValueError, match="must be 1-D"):
        checks.array("f", "a", a, ndim=1)
    with pytest.raises(TypeError, match="dtype float32"):
        checks.array("f", "a", a, dtypes=["int8"])
    with pytest.raises(ValueError, match="must not be empty"):
        checks.array("f", "a", np.zeros((0,)), nonempty=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        checks.array("f", "a", np.array([1.0, np.inf]), finite=True)


def test_shape():
    assert checks.shape("f", "s", [2, np.int64(3)]) == (2, 3)
    assert checks.shape("f", "s", (0, 3), allow_zero=True) == (0, 3)
    with pytest.raises(ValueError, match=r"s\[0\]=0 must be >= 1"):
        checks.shape("f", "s", (0, 3))
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        checks.shape("f", "s", (1,), ndim=2)
    with pytest.raises(TypeError, match="tuple of ints"):
        checks.shape("f", "s", 3)


def test_multiple_of_refuses_a_zero_divisor_by_name():
    with pytest.raises(ValueError, match="tile=0 must be >= 1"):
        checks.multiple_of("f", "n", 32, 0, "tile")


def test_legalize_rules():
    rule = lambda bb, call: call  # noqa: E731
    assert checks.legalize_rules("f", "m", None) is None
    assert checks.legalize_rules("f", "m", {"relax.add": rule}) == {"relax.add": rule}
    with pytest.raises(TypeError, match="f: m must be a dict or None, got list"):
        checks.legalize_rules("f", "m", [rule])
    with pytest.raises(TypeError, match="f: m key"):
        checks.legalize_rules("f", "m", {1: rule})
    with pytest.raises(TypeError, match=r"f: m\['relax.add'\] must be callable"):
        checks.legalize_rules("f", "m", {"relax.add": 3})
