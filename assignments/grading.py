"""Automatic checks of the course's graded assignments (a small nbgrader).

Each assignment is a module of this package (``assignments/<name>.py``) with a
``TITLE``, the exercises it comes from (``SOURCES``), a ``STATEMENT`` and a
tuple ``PARTS`` of :class:`Part`. A part's check receives the names a
student defined (a notebook's or a file's globals) and raises
``AssertionError`` with a message that says what is wrong.

A student checks their work from a notebook::

    from assignments.grading import check
    check("operators", globals())

or from a terminal, on a notebook or a Python file::

    python -m assignments.grading operators my_answers.ipynb

Course staff grade a folder of submissions the same way (``--json`` prints
one line of points per file). The starters are in ``assignments/starters``;
the reference solutions in ``assignments/solutions`` are for staff only and
are left out of the site and of the students' bundle.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import re
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

ROOT = Path(__file__).resolve().parent
#: The assignments in the order of the book's chapters.
NAMES = ("getting_started", "operators", "networks", "qnn", "passes", "hardware")


@dataclasses.dataclass(frozen=True)
class Part:
    """One graded part: the functions a student writes and the check of them."""

    name: str
    points: int
    functions: tuple[str, ...]
    check: Callable[[Mapping[str, Any]], None]


@dataclasses.dataclass
class PartResult:
    name: str
    points: int
    earned: int
    seconds: float
    message: str = ""


@dataclasses.dataclass
class Report:
    assignment: str
    parts: list[PartResult]

    @property
    def earned(self) -> int:
        return sum(p.earned for p in self.parts)

    @property
    def points(self) -> int:
        return sum(p.points for p in self.parts)

    @property
    def passed(self) -> bool:
        return self.earned == self.points

    def __str__(self) -> str:
        lines = [f"Assignment '{self.assignment}': {self.earned}/{self.points} points"]
        for p in self.parts:
            mark = "PASS" if p.earned == p.points else "FAIL"
            lines.append(f"  {mark} {p.name:28s} {p.earned}/{p.points}  "
                         f"({p.seconds:.1f} s)")
            if p.message:
                lines += ["       " + line for line in p.message.splitlines()[:12]]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"assignment": self.assignment, "earned": self.earned,
                "points": self.points,
                "parts": [dataclasses.asdict(p) for p in self.parts]}


def assignment(name: str):
    """The module of assignment ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"grading.assignment: name={name!r} is not one of {NAMES}")
    return importlib.import_module(f"assignments.{name}")


def section_titles() -> dict[str, str]:
    """Section labels of the book beside this package, mapped to their titles."""
    titles = {}
    for md in sorted(ROOT.parent.glob("chapter_*/*.md")):
        text = md.read_text(encoding="utf-8")
        found = re.search(r"^# (.+)\n:label:`(\w+)`", text, re.MULTILINE)
        if found:
            titles[found.group(2)] = found.group(1).strip()
    return titles


def student_notebook(name: str):
    """The notebook a student gets: the statement, the starter code, the check."""
    import nbformat

    module = assignment(name)
    number = NAMES.index(name) + 1
    sources = ", ".join(f"exercise {n} of :numref:`{label}`"
                        for label, n in module.SOURCES)
    header = (f"# Assignment {number}: {module.TITLE}\n\n"
              f"Made from {sources} of *Dive into Deep Learning Compiler*. "
              "Write your code in the next cell, then run the last cell: it "
              "checks your functions and prints your points.\n"
              + module.STATEMENT)
    titles = section_titles()
    header = re.sub(r":numref:`(\w+)`",
                    lambda m: f"*{titles.get(m.group(1), m.group(1))}*", header)
    header = re.sub(r":eqref:`(\w+)`", "the equation", header)
    starter = (ROOT / "starters" / f"{name}.py").read_text()
    starter = starter.split('\n\nif __name__ == "__main__":')[0].rstrip() + "\n"
    check_cell = f'from assignments.grading import check\n\ncheck("{name}", globals());'
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(header),
                nbformat.v4.new_code_cell(starter),
                nbformat.v4.new_code_cell(check_cell)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    return nb


def load(path: str | Path) -> dict[str, Any]:
    """The names a ``.py`` file or a notebook's code cells define.

    Notebook lines that start with ``!`` or ``%`` (shell and magics) and cells
    that call ``check(`` are skipped, so a notebook grades itself only once.
    """
    path = Path(path)
    if path.suffix == ".py":
        return runpy.run_path(str(path), run_name="submission")
    if path.suffix != ".ipynb":
        raise ValueError(f"grading.load: {path} is neither a .py file nor a notebook")
    import nbformat

    nb = nbformat.read(path, as_version=4)
    namespace: dict[str, Any] = {"__name__": "submission"}
    for cell in nb.cells:
        if cell.cell_type != "code" or "check(" in cell.source:
            continue
        lines = [ln for ln in cell.source.splitlines()
                 if not ln.lstrip().startswith(("!", "%"))]
        exec(compile("\n".join(lines), str(path), "exec"), namespace)
    return namespace


def _message(err: BaseException) -> str:
    if isinstance(err, NotImplementedError):
        return "not implemented yet"
    if isinstance(err, AssertionError):
        return str(err) or "a check failed:\n" + traceback.format_exc(limit=-1)
    return f"{type(err).__name__}: {err}"


def check(name: str, solution: Mapping[str, Any] | str | Path,
          verbose: bool = True) -> Report:
    """Grade ``solution`` (names, a module or a path) for assignment ``name``."""
    module = assignment(name)
    if isinstance(solution, (str, Path)):
        solution = load(solution)
    elif not isinstance(solution, Mapping):
        solution = vars(solution)
    results = []
    for part in module.PARTS:
        start = time.perf_counter()
        missing = [f for f in part.functions if not callable(solution.get(f))]
        try:
            if missing:
                raise AssertionError("define " + ", ".join(f"`{f}`" for f in missing))
            part.check(solution)
            earned, message = part.points, ""
        except Exception as err:  # a student's code may raise anything
            earned, message = 0, _message(err)
        results.append(PartResult(part.name, part.points, earned,
                                  time.perf_counter() - start, message))
    report = Report(name, results)
    if verbose:
        print(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", choices=NAMES)
    parser.add_argument("submissions", nargs="+", help=".py files or notebooks")
    parser.add_argument("--json", action="store_true", help="one JSON line per file")
    args = parser.parse_args(argv)
    ok = True
    for path in args.submissions:
        report = check(args.assignment, path, verbose=not args.json)
        if args.json:
            print(json.dumps({"file": path, **report.as_dict()}))
        ok &= report.passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
