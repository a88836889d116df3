"""Argument checks shared by every public function of :mod:`d2lcc`.

Each check takes the public function's name (``func``), the argument's name
(``name``) and its value, and either returns the value in a normal form or
raises a :class:`TypeError` (wrong kind of value) or :class:`ValueError` (right
kind, wrong value) whose message starts with ``"func: name=..."``, so that a
reader sees at once which call and which argument to fix::

    >>> positive_int("matmul.tiled", "tile", 0)
    Traceback (most recent call last):
    ...
    ValueError: matmul.tiled: tile=0 must be >= 1

Booleans are refused where numbers are expected (``True`` is an ``int`` in
Python, but ``groups=True`` is a mistake, not a group count). Upper bounds
keep helpers from hanging or allocating without limit on a typo.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import numpy as np

#: Largest loop count, size or repetition any helper accepts unless it says otherwise.
MAX_COUNT = 2**31 - 1


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def integer(func: str, name: str, value: Any, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` in ``[minimum, maximum]`` (``None``: no bound)."""
    if not _is_int(value):
        raise TypeError(f"{func}: {name} must be an int, got {type(value).__name__} "
                        f"{_show(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{func}: {name}={value} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{func}: {name}={value} must be <= {maximum}")
    return value


def positive_int(func: str, name: str, value: Any, *, maximum: int = MAX_COUNT) -> int:
    """Return ``value`` as an ``int`` in ``[1, maximum]``."""
    return integer(func, name, value, minimum=1, maximum=maximum)


def nonnegative_int(func: str, name: str, value: Any, *,
                    maximum: int = MAX_COUNT) -> int:
    """Return ``value`` as an ``int`` in ``[0, maximum]``."""
    return integer(func, name, value, minimum=0, maximum=maximum)


def multiple_of(func: str, name: str, value: int, divisor: int,
                divisor_name: str) -> int:
    """Check that ``value`` is a multiple of ``divisor`` (both already checked ints)."""
    if not divisor:
        raise ValueError(f"{func}: {divisor_name}=0 must be >= 1 (a divisor of "
                         f"{name}={value})")
    if value % divisor:
        raise ValueError(f"{func}: {name}={value} must be a multiple of "
                         f"{divisor_name}={divisor}")
    return value


def real(func: str, name: str, value: Any, *, minimum: float | None = None,
         maximum: float | None = None, positive: bool = False,
         allow_inf: bool = False) -> float:
    """Return ``value`` as a finite ``float`` (``allow_inf`` admits +-inf, never NaN).

    ``positive`` requires ``value > 0``; ``minimum``/``maximum`` are inclusive.
    """
    if not isinstance(value, (numbers.Real, np.floating, np.integer)) or isinstance(
        value, (bool, np.bool_)
    ):
        raise TypeError(f"{func}: {name} must be a real number, got "
                        f"{type(value).__name__} {_show(value)}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{func}: {name}={value} must be a finite number")
    if positive and not value > 0:
        raise ValueError(f"{func}: {name}={value} must be > 0")
    if minimum is not None and value < minimum:
        raise ValueError(f"{func}: {name}={value} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{func}: {name}={value} must be <= {maximum}")
    return value


def boolean(func: str, name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool`` (NumPy's too); refuse 0, 1 and the like."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be True or False, got "
                        f"{type(value).__name__} {_show(value)}")
    return bool(value)


def one_of(func: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices`` (compared with ``==``)."""
    choices = list(choices)
    try:
        ok = any(value == c and type(value) is type(c) for c in choices)
    except Exception:  # an array or an odd object: not one of the choices
        ok = False
    if not ok:
        raise ValueError(f"{func}: {name}={_show(value)} must be one of {choices}")
    return value


def string(func: str, name: str, value: Any) -> str:
    """Return ``value`` if it is a non-empty ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"{func}: {name} must be a str, got {type(value).__name__} "
                        f"{_show(value)}")
    if not value:
        raise ValueError(f"{func}: {name} must not be empty")
    return value


def function(func: str, name: str, value: Any) -> Any:
    """Return ``value`` if it is callable."""
    if not callable(value):
        raise TypeError(f"{func}: {name} must be callable, got {type(value).__name__}")
    return value


def legalize_rules(func: str, name: str, value: Any) -> dict | None:
    """Return ``value`` if it is ``None`` or a dict of operator name -> legalization.

    The form ``relax.transform.LegalizeOps`` takes: string keys such as
    ``"relax.nn.conv2d"``, callable values.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{func}: {name} must be a dict or None, "
                        f"got {type(value).__name__}")
    for op, rule in value.items():
        string(func, f"{name} key", op)
        function(func, f"{name}[{op!r}]", rule)
    return value


def array(func: str, name: str, value: Any, *, ndim: int | None = None,
          dtypes: Sequence[str] | None = None, finite: bool = False,
          nonempty: bool = False) -> np.ndarray:
    """Return ``value`` if it is a NumPy array of the given rank and dtype(s).

    ``finite`` refuses NaN and infinities; ``nonempty`` refuses arrays with no elements.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{func}: {name} must be a NumPy array, "
                        f"got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{func}: {name} must be {ndim}-D, got shape {value.shape}")
    if dtypes is not None and str(value.dtype) not in dtypes:
        raise TypeError(f"{func}: {name} has dtype {value.dtype}; expected one of "
                        f"{list(dtypes)}")
    if nonempty and value.size == 0:
        raise ValueError(f"{func}: {name} must not be empty, got shape {value.shape}")
    if finite and value.dtype.kind in "fc" and not np.isfinite(value).all():
        raise ValueError(f"{func}: {name} must be finite (it holds NaN or inf)")
    return value


def shape(func: str, name: str, value: Any, *, ndim: int | None = None,
          allow_zero: bool = False) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ints (each >= 1, or >= 0 with ``allow_zero``)."""
    if _is_int(value) or not isinstance(value, (tuple, list)):
        raise TypeError(f"{func}: {name} must be a tuple of ints, got "
                        f"{type(value).__name__} {_show(value)}")
    if ndim is not None and len(value) != ndim:
        raise ValueError(f"{func}: {name}={_show(value)} must have {ndim} dimensions")
    low = 0 if allow_zero else 1
    dims = []
    for i, dim in enumerate(value):
        dims.append(integer(func, f"{name}[{i}]", dim, minimum=low, maximum=MAX_COUNT))
    return tuple(dims)
