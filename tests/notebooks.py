"""Execute the book's sections as notebooks, the way ``d2lbook build eval`` does.

Each section's markdown is read with d2lbook's own reader, executed with
nbclient in its output folder, and written to ``_build/eval/<section>.ipynb``,
where ``d2lbook build html`` picks it up instead of executing it again.
"""

from __future__ import annotations

import configparser
import glob
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT / "_build" / "eval"


def _config() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "config.ini", encoding="utf-8")
    return cfg


def _globs(patterns: str) -> set[Path]:
    out: set[Path] = set()
    for pattern in patterns.split():
        out.update(Path(p) for p in glob.glob(str(ROOT / pattern), recursive=True))
    return out


def sections() -> list[str]:
    """All markdown files that d2lbook turns into notebooks, relative to the root."""
    build = _config()["build"]
    found = _globs(build.get("notebooks", "**/*.md"))
    found -= _globs(build.get("exclusions", "")) | _globs(build.get("non-notebooks", ""))
    found = {p for p in found if "_build" not in p.parts and not p.name.startswith("README")}
    return sorted(str(p.relative_to(ROOT)) for p in found)


def dependencies() -> list[Path]:
    """Files listed in ``[build] dependencies`` (d2lbook re-executes every section when one changes)."""
    return sorted(p for p in _globs(_config()["build"].get("dependencies", "")) if p.is_file())


PACKAGE = ROOT / "d2lcc"
_USES = re.compile(r"\bd2lcc\.(\w+)|from\s+d2lcc\s+import\s+([\w ,]+)")
_RELATIVE = re.compile(r"^\s*from\s+(\.+)(\w+)", re.MULTILINE)


def _module_files(name: str) -> list[Path]:
    if (PACKAGE / name).is_dir():
        return sorted((PACKAGE / name).rglob("*.py"))
    return [PACKAGE / f"{name}.py"] if (PACKAGE / f"{name}.py").exists() else []


def _names_used(text: str) -> set[str]:
    names = set()
    for attr, imported in _USES.findall(text):
        names.add(attr) if attr else names.update(n.strip() for n in imported.split(","))
    return names


def section_dependencies(section: str) -> list[Path]:
    """The d2lcc files a section uses: the modules it names, and what those import, transitively."""
    todo = _names_used((ROOT / section).read_text(encoding="utf-8"))
    if not todo and "d2lcc" not in (ROOT / section).read_text(encoding="utf-8"):
        return []
    files: set[Path] = {PACKAGE / "__init__.py"}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for path in _module_files(name):
            files.add(path)
            text = path.read_text(encoding="utf-8")
            top = path.parent == PACKAGE
            todo |= _names_used(text)
            # "from .x" in d2lcc/*.py and "from ..x" in d2lcc/pkg/*.py name top-level modules.
            todo |= {mod for dots, mod in _RELATIVE.findall(text) if len(dots) == (1 if top else 2)}
    return sorted(files)


def output_path(section: str) -> Path:
    return EVAL_DIR / Path(section).with_suffix(".ipynb")


def is_up_to_date(section: str) -> bool:
    """Whether the executed notebook is newer than its markdown and the d2lcc files it uses."""
    out = output_path(section)
    if not out.exists() or out.stat().st_size == 0:
        return False
    newest = max([(ROOT / section).stat().st_mtime] + [p.stat().st_mtime for p in section_dependencies(section)])
    return out.stat().st_mtime > newest


def mark_up_to_date(section: str) -> None:
    """Touch an up-to-date notebook so that d2lbook, which compares it with all of d2lcc, agrees."""
    os.utime(output_path(section))


def has_code(section: str) -> bool:
    return "```{.python .input}" in (ROOT / section).read_text(encoding="utf-8")


class SectionError(Exception):
    """A cell of a section failed; the message names the file, line, cell source and error."""


@dataclass
class Result:
    section: str
    seconds: float


def _source_line(markdown: str, cell_source: str) -> int:
    first = next((ln for ln in cell_source.splitlines() if ln.strip()), "")
    for number, line in enumerate(markdown.splitlines(), start=1):
        if first and line.rstrip() == first.rstrip():
            return number
    return 0


_EXERCISES = re.compile(r"^## Exercises[^\n]*\n(.*?)(?=^#{1,2} |\Z)", re.MULTILINE | re.DOTALL)
_FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)


def exercise_blocks(markdown: str) -> list[tuple[int, str]]:
    """The ```python blocks of the Exercises section, as (line in the markdown, code).

    Readers are asked to run these; the runner executes them after the section's
    last cell, in the same kernel, so each must work as written.
    """
    found = []
    for section in _EXERCISES.finditer(markdown):
        for block in _FENCE.finditer(markdown, section.start(1), section.end(1)):
            indent = len(block.group(1))
            code = "\n".join(ln[indent:] for ln in block.group(2).splitlines())
            found.append((markdown.count("\n", 0, block.start(2)) + 1, code))
    return found


def _clean_outputs(nb) -> None:
    # As d2lbook does: stderr is shown like stdout, widget reprs are dropped.
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/plain", "")
            if isinstance(text, str) and text.startswith("HBox"):
                continue
            if out.get("name") == "stderr":
                out["name"] = "stdout"
            kept.append(out)
        cell["outputs"] = kept
    nb["metadata"].update({"language_info": {"name": "python"}})


def execute(section: str, cell_timeout: int = 600, root: Path = ROOT, out: Path | None = None) -> Result:
    """Execute one section and write its notebook; raise :class:`SectionError` on a failing cell.

    ``section`` is relative to ``root``; the notebook goes to ``out`` (default: under ``_build/eval``).
    """
    from d2lbook import library, notebook
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    markdown = (root / section).read_text(encoding="utf-8")
    nb = library.format_code_nb(notebook.read_markdown(markdown))
    exercises = exercise_blocks(markdown)
    for line, code in exercises:
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["d2lcc_exercise_line"] = line
        nb.cells.append(cell)
    out = output_path(section) if out is None else out
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()  # never leave a stale notebook behind a failure
    env_backup = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = "ignore"
    client = NotebookClient(
        nb, timeout=cell_timeout, kernel_name="python3", resources={"metadata": {"path": str(out.parent)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        failed = next(
            (c for c in nb.cells if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))),
            None,
        )
        source = failed.source if failed is not None else "(unknown cell)"
        what = "a cell failed"
        if failed is not None and "d2lcc_exercise_line" in failed.metadata:
            line, what = failed.metadata["d2lcc_exercise_line"], "an exercise's code failed"
        else:
            line = _source_line(markdown, source)
        error = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # drop terminal colours
        raise SectionError(
            f"{section}:{line}: {what}\n--- cell source ---\n{source}\n"
            f"--- error ---\n{error}"
        ) from None
    except Exception as err:  # timeouts and dead kernels
        raise SectionError(f"{section}: execution stopped: {type(err).__name__}: {err}") from None
    finally:
        if env_backup is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = env_backup
    seconds = time.perf_counter() - start
    # The exercises ran only to prove they work; the page shows them as text.
    nb.cells = [c for c in nb.cells if "d2lcc_exercise_line" not in c.metadata]
    _clean_outputs(nb)
    tmp = out.with_suffix(".ipynb.tmp")
    tmp.write_text(nbformat.writes(nb), encoding="utf-8")
    tmp.replace(out)
    return Result(section, seconds)
