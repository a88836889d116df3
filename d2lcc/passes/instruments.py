"""Pass instruments: callbacks the pass infrastructure calls around every pass.

A pass that runs inside another (a Sequential's children, or the TensorIR
pipeline that FoldConstant runs to evaluate constants) runs one level deeper.
Both instruments here keep that depth, so that we can look only at the passes
we called (depth 0) or at the children of a Sequential we called (depth 1).

:class:`IRSizeRecorder` is taught in the chapter: the section on instruments
shows it as a cell a reader can edit.
"""

from __future__ import annotations

from tvm.ir.instrument import pass_instrument

from .. import checks
from .analysis import count_relax_bindings, count_tir_loops

__teaching__ = ("IRSizeRecorder",)


@pass_instrument
class PassRecorder:
    """Record the name and nesting depth of every pass that runs.

    Passes that a Sequential skips (opt level too high, disabled) never reach
    an instrument, so they are absent from :attr:`events`.
    """

    def __init__(self):
        self.events: list[tuple[int, str]] = []
        self.level = 0

    def enter_pass_ctx(self):
        self.events, self.level = [], 0

    def run_before_pass(self, mod, info):
        self.events.append((self.level, info.name))
        self.level += 1

    def run_after_pass(self, mod, info):
        self.level -= 1

    def names(self, depth: int = 0) -> list[str]:
        """Names of the passes that ran at nesting ``depth`` (0: called by us), in
        order."""
        depth = checks.nonnegative_int("PassRecorder.names", "depth", depth)
        return [name for d, name in self.events if d == depth]


@pass_instrument
class IRSizeRecorder:
    """After each pass at nesting ``depth``, count Relax bindings and TensorIR loops."""

    def __init__(self, depth=1):
        self.depth, self.rows, self.level = depth, [], 0

    def enter_pass_ctx(self):
        self.rows, self.level = [], 0

    def run_before_pass(self, mod, info):
        if not self.rows and self.level == self.depth:
            self.rows.append(self.row("(input)", mod))
        self.level += 1

    def run_after_pass(self, mod, info):
        self.level -= 1
        if self.level == self.depth:
            self.rows.append(self.row(info.name, mod))

    def row(self, name, mod):
        return (name, count_relax_bindings(mod), count_tir_loops(mod))


# TVM's decorator returns a generated class; give it back its own qualified name so
# that its repr and inspect.getsource (which the book's static test uses) find it.
PassRecorder.__qualname__ = "PassRecorder"
IRSizeRecorder.__qualname__ = "IRSizeRecorder"
