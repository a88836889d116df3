"""Timing a function beside its baseline.

Every performance claim in the book is measured by the notebook itself, with
the baseline in the same run. :func:`measure` times one callable (warm-up
calls, then ``repeat`` timed rounds of ``number`` calls each; the median round
is reported); :func:`compare` times several on the same inputs and turns the
medians into speedups and GFLOPS; :func:`sweep` repeats a comparison over
problem sizes for a plot.

Both a compiled TVM function and its NumPy baseline are timed through the same
Python call, so per-call overhead (about a microsecond) is charged equally.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one timed function, one entry per timed round."""

    name: str
    seconds: tuple[float, ...]
    number: int

    @property
    def median(self) -> float:
        """The median seconds per call over the rounds."""
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        """The fastest round's seconds per call."""
        return min(self.seconds)

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median: how noisy the rounds were."""
        return (max(self.seconds) - min(self.seconds)) / self.median


def _check_positive_int(func: str, name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{func}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{func}: {name}={value} must be >= {minimum}")


def measure(
    fn: Callable[[], Any],
    *,
    name: str = "",
    warmup: int = 1,
    repeat: int = 5,
    number: int | None = None,
    min_round_s: float = 0.02,
) -> Timing:
    """Time ``fn()`` and return its seconds per call.

    Parameters
    ----------
    fn
        A callable taking no arguments, e.g. ``lambda: f(a, b, c)``.
    warmup
        Calls made and discarded first (the first call may compile or page in memory).
    repeat
        Timed rounds; the median round is what :attr:`Timing.median` reports.
    number
        Calls per round. ``None`` picks the smallest power of two whose round
        lasts at least ``min_round_s`` seconds, so short calls are not lost in
        the clock's resolution.
    """
    if not callable(fn):
        raise TypeError(f"measure: fn must be callable, got {type(fn).__name__}")
    _check_positive_int("measure", "warmup", warmup, minimum=0)
    _check_positive_int("measure", "repeat", repeat)
    if number is not None:
        _check_positive_int("measure", "number", number)
    if not min_round_s > 0:
        raise ValueError(f"measure: min_round_s={min_round_s} must be > 0")

    def round_seconds(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - start

    for _ in range(warmup):
        fn()
    if number is None:
        number = 1
        while round_seconds(number) < min_round_s and number < 1 << 20:
            number *= 2
    rounds = tuple(round_seconds(number) / number for _ in range(repeat))
    return Timing(name=name, seconds=rounds, number=number)


@dataclass
class Comparison:
    """Timings of several candidates on the same inputs, the first being the baseline."""

    timings: list[Timing]
    flops: float | None = None
    nbytes: float | None = None
    baseline: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.timings:
            raise ValueError("Comparison: timings must not be empty")
        self.baseline = self.timings[0].name

    def __getitem__(self, name: str) -> Timing:
        for t in self.timings:
            if t.name == name:
                return t
        raise KeyError(f"Comparison: no candidate named {name!r}; have {[t.name for t in self.timings]}")

    def speedup(self, name: str) -> float:
        """How many times faster ``name`` is than the baseline (median over median)."""
        return self[self.baseline].median / self[name].median

    def gflops(self, name: str) -> float:
        """Billions of floating-point (or integer) operations per second of ``name``."""
        if self.flops is None:
            raise ValueError("Comparison.gflops: no flops were given to compare()")
        return self.flops / self[name].median / 1e9

    def gbps(self, name: str) -> float:
        """Gigabytes per second moved by ``name``."""
        if self.nbytes is None:
            raise ValueError("Comparison.gbps: no nbytes were given to compare()")
        return self.nbytes / self[name].median / 1e9

    def rows(self) -> list[dict[str, Any]]:
        """The table as a list of dicts, one per candidate."""
        out = []
        for t in self.timings:
            row: dict[str, Any] = {"name": t.name, "median_ms": t.median * 1e3}
            if self.flops is not None:
                row["GFLOPS"] = self.gflops(t.name)
            if self.nbytes is not None:
                row["GB/s"] = self.gbps(t.name)
            row[f"vs {self.baseline}"] = self.speedup(t.name)
            out.append(row)
        return out

    def __str__(self) -> str:
        rows = self.rows()
        heads = list(rows[0])
        cells = [[_fmt(r[h]) for h in heads] for r in rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
        line = lambda vals: "  ".join(  # noqa: E731
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths))
        )
        return "\n".join([line(heads)] + [line(c) for c in cells])

    __repr__ = __str__


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def compare(
    candidates: Mapping[str, Callable[[], Any]],
    *,
    flops: float | None = None,
    nbytes: float | None = None,
    **measure_kwargs: Any,
) -> Comparison:
    """Time each candidate and compare it with the first one (the baseline).

    Parameters
    ----------
    candidates
        Names mapped to zero-argument callables, baseline first, e.g.
        ``{"numpy": lambda: a @ b, "tvm": lambda: f(a_t, b_t, c_t)}``.
    flops, nbytes
        Work done by one call, for GFLOPS and GB/s columns.
    measure_kwargs
        Passed on to :func:`measure` (``warmup``, ``repeat``, ``number``, ``min_round_s``).

    Returns
    -------
    Comparison
        Prints as a table; :meth:`Comparison.speedup` gives the ratios.
    """
    if not isinstance(candidates, Mapping) or not candidates:
        raise ValueError("compare: candidates must be a non-empty dict of name -> callable")
    for label, value in (("flops", flops), ("nbytes", nbytes)):
        if value is not None and not value > 0:
            raise ValueError(f"compare: {label}={value} must be > 0")
    timings = [measure(fn, name=name, **measure_kwargs) for name, fn in candidates.items()]
    return Comparison(timings, flops=flops, nbytes=nbytes)


def sweep(
    sizes: Sequence[Any],
    make_candidates: Callable[[Any], Mapping[str, Callable[[], Any]]],
    *,
    flops: Callable[[Any], float] | None = None,
    nbytes: Callable[[Any], float] | None = None,
    **measure_kwargs: Any,
) -> list[Comparison]:
    """Run :func:`compare` once per size; ``make_candidates(size)`` builds the inputs and callables.

    Returns one :class:`Comparison` per size, in order, ready for
    :func:`d2lcc.plot.plot` via :func:`series`.
    """
    if len(sizes) == 0:
        raise ValueError("sweep: sizes must not be empty")
    return [
        compare(
            make_candidates(n),
            flops=None if flops is None else flops(n),
            nbytes=None if nbytes is None else nbytes(n),
            **measure_kwargs,
        )
        for n in sizes
    ]


def series(results: Sequence[Comparison], metric: str = "gflops") -> dict[str, list[float]]:
    """Turn :func:`sweep` results into ``{name: [value per size]}`` for plotting.

    ``metric`` is ``"gflops"``, ``"gbps"``, ``"speedup"`` or ``"ms"``.
    """
    getters = {
        "gflops": lambda c, n: c.gflops(n),
        "gbps": lambda c, n: c.gbps(n),
        "speedup": lambda c, n: c.speedup(n),
        "ms": lambda c, n: c[n].median * 1e3,
    }
    if metric not in getters:
        raise ValueError(f"series: metric={metric!r} must be one of {sorted(getters)}")
    if not results:
        raise ValueError("series: results must not be empty")
    names = [t.name for t in results[0].timings]
    return {n: [getters[metric](c, n) for c in results] for n in names}
