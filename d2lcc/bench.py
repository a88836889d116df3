"""Timing a function beside its baseline.

Every performance claim in the book is measured by the notebook itself, with
the baseline in the same run. :func:`measure` times one callable (warm-up
calls, then ``repeat`` timed rounds of ``number`` calls each; the median round
is reported); :func:`compare` times several on the same inputs and turns the
medians into speedups and GFLOPS; :func:`sweep` repeats a comparison over
problem sizes for a plot.

Both a compiled TVM function and its NumPy baseline are timed through the same
Python call, so per-call overhead (about a microsecond) is charged equally.

Every count is bounded (:data:`MAX_WARMUP`, :data:`MAX_REPEAT`,
:data:`MAX_NUMBER`, :data:`MAX_ROUND_S`), so that a typo such as
``min_round_s=float("inf")`` is refused instead of timing forever.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import checks

#: Most warm-up calls :func:`measure` makes.
MAX_WARMUP = 1000
#: Most timed rounds :func:`measure` runs.
MAX_REPEAT = 1000
#: Most calls per round; also where the automatic choice of ``number`` stops doubling.
MAX_NUMBER = 1 << 20
#: Longest round (seconds) :func:`measure` may be asked to fill.
MAX_ROUND_S = 10.0
#: Most problem sizes one :func:`sweep` runs.
MAX_SIZES = 1000


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one timed function, one entry per timed round.

    ``seconds`` must be non-empty, finite and >= 0; ``number`` is the calls per round.
    """

    name: str
    seconds: tuple[float, ...]
    number: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"bench.Timing: name must be a str, got "
                            f"{type(self.name).__name__}")
        if isinstance(self.seconds, (str, bytes)) or not isinstance(
            self.seconds, Sequence
        ):
            raise TypeError(f"bench.Timing: seconds must be a sequence of floats, got "
                            f"{type(self.seconds).__name__}")
        if len(self.seconds) == 0:
            raise ValueError("bench.Timing: seconds must not be empty")
        secs = tuple(checks.real("bench.Timing", f"seconds[{i}]", s, minimum=0.0)
                     for i, s in enumerate(self.seconds))
        object.__setattr__(self, "seconds", secs)
        checks.positive_int("bench.Timing", "number", self.number)

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
        """(slowest - fastest) / median: how noisy the rounds were.

        0 when every round took the same time; ``inf`` when the median is 0 s
        but the rounds differ (the clock could not resolve the calls).
        """
        width = max(self.seconds) - min(self.seconds)
        if width == 0:
            return 0.0
        return width / self.median if self.median > 0 else math.inf


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
    name
        The label of this timing in tables and plots.
    warmup
        Calls made and discarded first (the first call may compile or page in
        memory); 0 to :data:`MAX_WARMUP`.
    repeat
        Timed rounds, 1 to :data:`MAX_REPEAT`; the median round is what
        :attr:`Timing.median` reports.
    number
        Calls per round, 1 to :data:`MAX_NUMBER`. ``None`` picks the smallest
        power of two whose round lasts at least ``min_round_s`` seconds (at
        most :data:`MAX_NUMBER`), so short calls are not lost in the clock's
        resolution.
    min_round_s
        The round length that the automatic ``number`` aims for: finite,
        > 0 and at most :data:`MAX_ROUND_S` seconds.
    """
    func = "bench.measure"
    checks.function(func, "fn", fn)
    if not isinstance(name, str):
        raise TypeError(f"{func}: name must be a str, got {type(name).__name__}")
    warmup = checks.nonnegative_int(func, "warmup", warmup, maximum=MAX_WARMUP)
    repeat = checks.positive_int(func, "repeat", repeat, maximum=MAX_REPEAT)
    if number is not None:
        number = checks.positive_int(func, "number", number, maximum=MAX_NUMBER)
    min_round_s = checks.real(func, "min_round_s", min_round_s, positive=True,
                              maximum=MAX_ROUND_S)

    def round_seconds(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - start

    for _ in range(warmup):
        fn()
    if number is None:
        number = 1
        while round_seconds(number) < min_round_s and number < MAX_NUMBER:
            number *= 2
    rounds = tuple(round_seconds(number) / number for _ in range(repeat))
    return Timing(name=name, seconds=rounds, number=number)


def _per_call_work(func: str, name: str, value: Any) -> float | None:
    """``flops``/``nbytes``: ``None`` or a finite number > 0."""
    if value is None:
        return None
    return checks.real(func, name, value, positive=True)


@dataclass
class Comparison:
    """Timings of several candidates on the same inputs, the first being the baseline.

    Candidate names must be distinct; ``flops`` and ``nbytes`` (work done by
    one call) are ``None`` or finite and > 0.
    """

    timings: list[Timing]
    flops: float | None = None
    nbytes: float | None = None
    baseline: str = field(init=False)

    def __post_init__(self) -> None:
        func = "bench.Comparison"
        if isinstance(self.timings, (str, bytes)) or not isinstance(
            self.timings, Sequence
        ):
            raise TypeError(f"{func}: timings must be a list of Timing, got "
                            f"{type(self.timings).__name__}")
        if not self.timings:
            raise ValueError(f"{func}: timings must not be empty")
        for i, t in enumerate(self.timings):
            if not isinstance(t, Timing):
                raise TypeError(f"{func}: timings[{i}] must be a Timing, got "
                                f"{type(t).__name__}")
        names = [t.name for t in self.timings]
        if len(set(names)) != len(names):
            raise ValueError(f"{func}: timings has repeated names {names}")
        self.timings = list(self.timings)
        self.flops = _per_call_work(func, "flops", self.flops)
        self.nbytes = _per_call_work(func, "nbytes", self.nbytes)
        self.baseline = self.timings[0].name

    def __getitem__(self, name: str) -> Timing:
        for t in self.timings:
            if t.name == name:
                return t
        raise KeyError(f"Comparison: no candidate named {name!r}; "
                       f"have {[t.name for t in self.timings]}")

    def _median(self, func: str, name: str) -> float:
        """The median of candidate ``name``, refusing unknown names and 0 s."""
        if not isinstance(name, str):
            raise TypeError(f"{func}: name must be a str, got {type(name).__name__}")
        have = [t.name for t in self.timings]
        if name not in have:
            raise ValueError(f"{func}: name={name!r} is not a candidate; have {have}")
        median = self[name].median
        if median == 0:
            raise ValueError(f"{func}: {name!r} has a median of 0 s, too short for "
                             "the clock; time more calls per round (number=...)")
        return median

    def speedup(self, name: str) -> float:
        """How many times faster ``name`` is than the baseline (median over median)."""
        func = "Comparison.speedup"
        own = self._median(func, name)
        return self._median(func, self.baseline) / own

    def gflops(self, name: str) -> float:
        """Billions of floating-point (or integer) operations per second of ``name``."""
        if self.flops is None:
            raise ValueError("Comparison.gflops: no flops were given to compare()")
        return self.flops / self._median("Comparison.gflops", name) / 1e9

    def gbps(self, name: str) -> float:
        """Gigabytes per second moved by ``name``."""
        if self.nbytes is None:
            raise ValueError("Comparison.gbps: no nbytes were given to compare()")
        return self.nbytes / self._median("Comparison.gbps", name) / 1e9

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

        def line(vals: list[str]) -> str:
            return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                             for i, (v, w) in enumerate(zip(vals, widths)))

        return "\n".join([line(heads)] + [line(c) for c in cells])

    __repr__ = __str__


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


_MEASURE_KWARGS = ("warmup", "repeat", "number", "min_round_s")


def _check_measure_kwargs(func: str, kwargs: Mapping[str, Any]) -> None:
    for key in kwargs:
        if key not in _MEASURE_KWARGS:
            raise TypeError(f"{func}: unexpected keyword argument {key!r}; "
                            f"measure takes {list(_MEASURE_KWARGS)}")


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
        Work done by one call (finite, > 0), for GFLOPS and GB/s columns.
    measure_kwargs
        Passed on to :func:`measure` (``warmup``, ``repeat``, ``number``,
        ``min_round_s``, with its limits).

    Returns
    -------
    Comparison
        Prints as a table; :meth:`Comparison.speedup` gives the ratios.
    """
    func = "bench.compare"
    if not isinstance(candidates, Mapping):
        raise TypeError(f"{func}: candidates must be a dict of name -> callable, got "
                        f"{type(candidates).__name__}")
    if not candidates:
        raise ValueError(f"{func}: candidates must be a non-empty dict of "
                         "name -> callable")
    for label, fn in candidates.items():
        if not isinstance(label, str):
            raise TypeError(f"{func}: candidates keys must be str, got {label!r}")
        checks.function(func, f"candidates[{label!r}]", fn)
    flops = _per_call_work(func, "flops", flops)
    nbytes = _per_call_work(func, "nbytes", nbytes)
    _check_measure_kwargs(func, measure_kwargs)
    timings = [measure(fn, name=label, **measure_kwargs)
               for label, fn in candidates.items()]
    return Comparison(timings, flops=flops, nbytes=nbytes)


def sweep(
    sizes: Sequence[Any],
    make_candidates: Callable[[Any], Mapping[str, Callable[[], Any]]],
    *,
    flops: Callable[[Any], float] | None = None,
    nbytes: Callable[[Any], float] | None = None,
    **measure_kwargs: Any,
) -> list[Comparison]:
    """Run :func:`compare` once per size; ``make_candidates(size)`` makes callables.

    ``sizes`` is a non-empty list (at most :data:`MAX_SIZES` entries);
    ``flops``/``nbytes``, when given, map a size to the work of one call.
    Returns one :class:`Comparison` per size, in order, ready for
    :func:`d2lcc.plot.plot` via :func:`series`.
    """
    func = "bench.sweep"
    if isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    if isinstance(sizes, (str, bytes, Mapping)) or not isinstance(sizes, Sequence):
        raise TypeError(f"{func}: sizes must be a list of sizes, got "
                        f"{type(sizes).__name__}")
    if len(sizes) == 0:
        raise ValueError(f"{func}: sizes must not be empty")
    if len(sizes) > MAX_SIZES:
        raise ValueError(f"{func}: sizes has {len(sizes)} entries; at most "
                         f"{MAX_SIZES}")
    checks.function(func, "make_candidates", make_candidates)
    for label, value in (("flops", flops), ("nbytes", nbytes)):
        if value is not None:
            checks.function(func, label, value)
    _check_measure_kwargs(func, measure_kwargs)
    return [
        compare(
            make_candidates(n),
            flops=None if flops is None else flops(n),
            nbytes=None if nbytes is None else nbytes(n),
            **measure_kwargs,
        )
        for n in sizes
    ]


def series(
    results: Sequence[Comparison], metric: str = "gflops"
) -> dict[str, list[float]]:
    """Turn :func:`sweep` results into ``{name: [value per size]}`` for plotting.

    ``metric`` is ``"gflops"``, ``"gbps"``, ``"speedup"`` or ``"ms"``. Every
    result must have the same candidates (names taken from the first).
    """
    func = "bench.series"
    getters = {
        "gflops": lambda c, n: c.gflops(n),
        "gbps": lambda c, n: c.gbps(n),
        "speedup": lambda c, n: c.speedup(n),
        "ms": lambda c, n: c[n].median * 1e3,
    }
    checks.one_of(func, "metric", metric, sorted(getters))
    if isinstance(results, (str, bytes)) or not isinstance(results, Sequence):
        raise TypeError(f"{func}: results must be a list of Comparison, got "
                        f"{type(results).__name__}")
    if not results:
        raise ValueError(f"{func}: results must not be empty")
    for i, c in enumerate(results):
        if not isinstance(c, Comparison):
            raise TypeError(f"{func}: results[{i}] must be a Comparison, got "
                            f"{type(c).__name__}")
    names = [t.name for t in results[0].timings]
    for i, c in enumerate(results):
        if [t.name for t in c.timings] != names:
            raise ValueError(f"{func}: results[{i}] has candidates "
                             f"{[t.name for t in c.timings]}, results[0] has {names}")
    return {n: [getters[metric](c, n) for c in results] for n in names}
