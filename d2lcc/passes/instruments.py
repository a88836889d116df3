"""Pass instruments: callbacks the pass infrastructure calls around every pass.

A pass that runs inside another (a Sequential's children, or the TensorIR
pipeline that FoldConstant runs to evaluate constants) runs one level deeper.
Both instruments here keep that depth, so that we can look only at the passes
we called (depth 0) or at the children of a Sequential we called (depth 1).
"""

from __future__ import annotations

from tvm.ir.instrument import pass_instrument

from .analysis import count_relax_bindings, count_tir_loops


def _check_depth(func: str, depth) -> None:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise ValueError(f"{func}: depth={depth!r} must be a non-negative int")


@pass_instrument
class PassRecorder:
    """Record the name and nesting depth of every pass that runs.

    Passes that a Sequential skips (opt level too high, disabled) never reach
    an instrument, so they are absent from :attr:`events`.
    """

    def __init__(self):
        self.events: list[tuple[int, str]] = []
        self._depth = 0

    def enter_pass_ctx(self):
        self.events, self._depth = [], 0

    def run_before_pass(self, mod, info):
        self.events.append((self._depth, info.name))
        self._depth += 1

    def run_after_pass(self, mod, info):
        self._depth -= 1

    def names(self, depth: int = 0) -> list[str]:
        """Names of the passes that ran at nesting ``depth`` (0: called by us), in order."""
        _check_depth("PassRecorder.names", depth)
        return [name for d, name in self.events if d == depth]


@pass_instrument
class IRSizeRecorder:
    """After each pass at nesting ``depth``, count Relax bindings and TensorIR loops."""

    def __init__(self, depth: int = 1):
        _check_depth("IRSizeRecorder", depth)
        self.depth = depth
        self.rows: list[tuple[str, int, int]] = []
        self._depth = 0

    def enter_pass_ctx(self):
        self.rows, self._depth = [], 0

    def run_before_pass(self, mod, info):
        if not self.rows and self._depth == self.depth:
            self.rows.append(("(input)", count_relax_bindings(mod), count_tir_loops(mod)))
        self._depth += 1

    def run_after_pass(self, mod, info):
        self._depth -= 1
        if self._depth == self.depth:
            self.rows.append((info.name, count_relax_bindings(mod), count_tir_loops(mod)))
