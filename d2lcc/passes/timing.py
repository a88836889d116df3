"""Read the report of TVM's :class:`~tvm.ir.instrument.PassTimingInstrument` as numbers.

``PassTimingInstrument.render()`` returns text with one line per pass run,
indented by one tab per nesting level::

    _pipeline: 171398us [287us] (82.75%; 82.75%)
    \tsequential: 171111us [33us] (82.61%; 99.83%)
    \t\tLegalizeOps: 20961us [20961us] (10.12%; 12.25%)

The first number is the pass's total time, the bracketed one the time spent
in the pass itself rather than in passes it ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import checks

_LINE = re.compile(r"^(\t*)(.+): (\d+)us \[(\d+)us\]")


@dataclass(frozen=True)
class PassTime:
    """One line of a pass timing report: nesting depth, pass name, seconds in total
    and seconds in the pass itself (both finite and >= 0, ``self_s <= total_s``)."""

    depth: int
    name: str
    total_s: float
    self_s: float

    def __post_init__(self):
        func = "PassTime"
        checks.nonnegative_int(func, "depth", self.depth)
        checks.string(func, "name", self.name)
        total = checks.real(func, "total_s", self.total_s, minimum=0.0)
        own = checks.real(func, "self_s", self.self_s, minimum=0.0)
        if own > total:
            raise ValueError(f"{func}: self_s={own} must be <= total_s={total}")


def parse_pass_timing(report: str) -> list[PassTime]:
    """Parse ``PassTimingInstrument.render()`` output into :class:`PassTime` rows.

    Rows come in report order; an empty report gives an empty list.
    """
    if not isinstance(report, str):
        raise TypeError("parse_pass_timing: report must be a str, "
                        f"got {type(report).__name__}")
    rows = []
    for line in report.splitlines():
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"parse_pass_timing: report has a line it cannot read: "
                             f"{line[:60]!r}")
        tabs, name, total, own = match.groups()
        rows.append(PassTime(len(tabs), name, int(total) * 1e-6, int(own) * 1e-6))
    return rows
