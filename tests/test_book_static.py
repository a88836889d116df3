"""Static checks of what readers see: code width, helpers defined once, no private
names, teaching code equal to the package's, and d2lcc's import structure.

These read the markdown and the package's source; nothing is executed except
imports of d2lcc modules (to compare the book's teaching cells with them).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

import notebooks

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "d2lcc"
SECTIONS = notebooks.sections()
MAX_WIDTH = 88

_CELL = re.compile(r"^```\{\.python \.input\}[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_FENCE = re.compile(r"^([ \t]*)```[\w{}. ]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
SAME_CODE = re.compile(r"^# Same code as d2lcc\.([\w.]+)\.(\w+); edit it here and re-run\.$")


def _text(section: str) -> str:
    return (ROOT / section).read_text(encoding="utf-8")


def _cells(section: str) -> list[tuple[int, str]]:
    """The executed code cells of a section, as (line of the first code line, source)."""
    text = _text(section)
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _CELL.finditer(text)]


def _parse(source: str) -> ast.Module:
    # IPython lines (%timeit, !ls) are not Python; blank them, keeping line numbers.
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    return ast.parse("\n".join(lines))


def _package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# --- width ------------------------------------------------------------------

@pytest.mark.parametrize("section", SECTIONS)
def test_code_lines_fit_the_code_box(section):
    text = _text(section)
    long = []
    for block in _FENCE.finditer(text):
        first = text.count("\n", 0, block.start(2)) + 1
        for i, line in enumerate(block.group(2).splitlines()):
            if len(line) - len(block.group(1)) > MAX_WIDTH:
                long.append(f"{section}:{first + i}: {len(line)} chars")
    assert not long, f"code lines wider than {MAX_WIDTH} characters:\n" + "\n".join(long)


def test_package_lines_fit_the_code_box():
    long = [
        f"{path.relative_to(ROOT)}:{i}: {len(line)} chars"
        for path in _package_files()
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if len(line) > MAX_WIDTH
    ]
    assert not long, f"d2lcc lines wider than {MAX_WIDTH} characters:\n" + "\n".join(long)


# --- one helper, one place ----------------------------------------------------

def _top_level_defs(section: str) -> list[tuple[str, int]]:
    found = []
    for line, source in _cells(section):
        for node in _parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append((node.name, line + node.lineno - 1))
    return found


def test_no_function_is_defined_in_two_sections():
    where = defaultdict(list)
    for section in SECTIONS:
        for name, line in _top_level_defs(section):
            where[name].append(f"{section}:{line}")
    twice = {name: places for name, places in where.items()
             if len({p.split(":")[0] for p in places}) > 1}
    assert not twice, (
        "functions defined in more than one section (move them to d2lcc, or rename):\n"
        + "\n".join(f"  {name}: {', '.join(places)}" for name, places in sorted(twice.items()))
    )


# --- private names ------------------------------------------------------------

_PRIVATE = re.compile(
    r"\b(?:d2lcc|tvm|tvm_ffi|relax|tirx|s_tir|qnn)(?:\.\w+)*\.(_[A-Za-z]\w*)"
    r"|\bfrom\s+(?:d2lcc|tvm)[\w.]*\s+import\s+[^#\n]*\b(_[A-Za-z]\w*)"
    r"|\bfrom\s+(?:d2lcc|tvm)[\w.]*\._\w+"
)


def _private_uses(source: str) -> list[tuple[int, str]]:
    lines = source.splitlines()
    found = []
    for i, line in enumerate(lines):
        code = line.split("#", 1)[0]
        match = _PRIVATE.search(code)
        if not match:
            continue
        said = "private" in line.lower() or (i > 0 and "private" in lines[i - 1].lower())
        if not said:
            found.append((i, line.strip()))
    return found


@pytest.mark.parametrize("section", SECTIONS)
def test_no_private_names_without_saying_so(section):
    bad = [f"{section}:{first + i}: {line}" for first, source in _cells(section)
           for i, line in _private_uses(source)]
    assert not bad, ("underscore-private names of d2lcc/TVM used without a comment that "
                     "says 'private' and why:\n" + "\n".join(bad))


def test_private_name_pattern():
    assert _private_uses("tvm.ir._ffi_api.RegisterOp('x')")
    assert _private_uses("from d2lcc.conv import _largest_divisor")
    assert _private_uses("d2lcc.qnn.transform._lowerings")
    assert not _private_uses("# private: TVM has no public way\ntvm.ir._ffi_api.X()")
    assert not _private_uses("print(d2lcc.__version__, mod.__class__)")
    assert not _private_uses("x._private_thing  # not d2lcc or tvm")


# --- d2lcc's import structure --------------------------------------------------

def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported, line) for every import of a d2lcc module in ``path``."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "d2lcc" or module.startswith("d2lcc."):
                found.append((module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("d2lcc."):
                    found.append((alias.name, [], node.lineno))
    return found


def _is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_no_module_imports_another_modules_private_names():
    bad = []
    for path in _package_files():
        for module, names, line in _imports(path):
            for name in names:
                if name.startswith("_") and not _is_module(f"{module}.{name}"):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {name}")
    assert not bad, "d2lcc modules importing underscore names of others:\n" + "\n".join(bad)


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _package_files():
        me = _module_name(path)
        for module, names, _ in _imports(path):
            targets = [f"{module}.{n}" for n in names if _is_module(f"{module}.{n}")]
            if not targets and _is_module(module):
                targets = [module]
            for target in targets:
                # A package's __init__ is run by importing any of its submodules:
                # an edge to a package we live in is not a dependency we chose.
                if target != me and not me.startswith(target + "."):
                    graph[me].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_no_import_cycles_in_d2lcc():
    cycles = _cycles(_import_graph())
    assert not cycles, "import cycles (function-level imports count too):\n" + "\n".join(
        " -> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# --- teaching code: the cell and the package hold the same function -----------

def _teaching_cells() -> list[tuple[str, int, str, str, str]]:
    """(section, line, module, function, the def's source in the cell)."""
    found = []
    for section in SECTIONS:
        for line, source in _cells(section):
            first = source.splitlines()[0] if source.strip() else ""
            match = SAME_CODE.match(first)
            if not match:
                continue
            module, name = match.groups()
            tree = _parse(source)
            node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                         and n.name == name), None)
            code = None
            if node is not None:
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                code = "\n".join(source.splitlines()[start - 1: node.end_lineno])
            found.append((section, line, module, name, code))
    return found


TEACHING = _teaching_cells()


@pytest.mark.parametrize("section, line, module, name, code", TEACHING,
                         ids=[f"{t[0]}:{t[1]}" for t in TEACHING])
def test_teaching_cell_equals_the_package(section, line, module, name, code):
    assert code is not None, f"{section}:{line}: the cell does not define {name}"
    obj = getattr(importlib.import_module(f"d2lcc.{module}"), name)
    package = textwrap.dedent(inspect.getsource(obj)).rstrip()
    assert textwrap.dedent(code).rstrip() == package, (
        f"{section}:{line}: the cell's {name} differs from d2lcc.{module}.{name}; "
        "change both together")
    rest = _text(section)[_text(section).index(code) + len(code):]
    assert re.search(rf"\b{name}\b", rest), (
        f"{section}:{line}: the page never uses its own {name} after defining it")


def _teaching_names() -> list[tuple[str, str]]:
    found = []
    for path in _package_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__teaching__" for t in node.targets):
                module = _module_name(path).removeprefix("d2lcc.")
                found += [(module, name) for name in ast.literal_eval(node.value)]
    return found


def test_every_teaching_function_is_shown_in_the_book():
    shown = {(module, name) for _, _, module, name, _ in TEACHING}
    missing = [f"d2lcc.{m}.{n}" for m, n in _teaching_names() if (m, n) not in shown]
    assert not missing, ("listed in __teaching__ but shown in no cell starting with "
                         "'# Same code as ...':\n" + "\n".join(missing))


# --- printed package source: no private names -----------------------------------

_GETSOURCE = re.compile(r"inspect\.getsource\(\s*([A-Za-z_][\w.]*)\s*\)")


def _d2lcc_aliases(sources: list[str]) -> dict[str, str]:
    """Names code cells bind to d2lcc modules: {'qnn': 'd2lcc.qnn', ...}."""
    aliases = {"d2lcc": "d2lcc"}
    for source in sources:
        for node in ast.walk(_parse(source)):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module and (
                    node.module == "d2lcc" or node.module.startswith("d2lcc.")):
                for alias in node.names:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name.startswith("d2lcc."):
                        aliases[alias.asname] = alias.name
    return aliases


def _getsource_targets(sources: list[str]) -> list[tuple[int, int, str]]:
    """(cell index, line in cell, full dotted name) of each d2lcc object printed."""
    aliases, found = _d2lcc_aliases(sources), []
    for k, source in enumerate(sources):
        for i, line in enumerate(source.splitlines()):
            for match in _GETSOURCE.finditer(line.split("#", 1)[0]):
                head, _, rest = match.group(1).partition(".")
                if head in aliases:
                    found.append((k, i, aliases[head] + (f".{rest}" if rest else "")))
    return found


def _resolve(dotted: str):
    """The object named by a full dotted path starting with d2lcc, importing modules."""
    parts = dotted.split(".")
    obj, i = importlib.import_module(parts[0]), 1
    while i < len(parts):
        try:
            obj = importlib.import_module(".".join(parts[: i + 1]))
        except ImportError:
            obj = getattr(obj, parts[i])
        i += 1
    return obj


def _printed_sources() -> list[tuple[str, int, str]]:
    """(section, line, dotted name) of each d2lcc object a cell prints with getsource."""
    found = []
    for section in SECTIONS:
        cells = _cells(section)
        for k, i, name in _getsource_targets([source for _, source in cells]):
            found.append((section, cells[k][0] + i, name))
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and name != "_" and not (
        name.startswith("__") and name.endswith("__"))


def _private_names_in(source: str) -> list[str]:
    """Underscore-private names a piece of source calls, reads or imports."""
    found = []
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            found.append(f".{node.attr}")
        elif isinstance(node, ast.Name) and _is_private(node.id):
            found.append(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                for name in (alias.name.split(".")[-1], alias.asname or ""):
                    if _is_private(name):
                        found.append(f"import {alias.name} as {alias.asname or name}")
    return sorted(set(found))


PRINTED = _printed_sources()


def test_printed_sources_are_found():
    cells = ["import d2lcc\nfrom d2lcc import qnn, models as m\nimport d2lcc.cpu as c",
             "print(inspect.getsource(qnn.params.requantize_multiplier))\n"
             "print(inspect.getsource( m.conv2d_numpy ))\n"
             "print(inspect.getsource(d2lcc.deploy.elf_header))\n"
             "x = inspect.getsource(c.Roofline.attainable)  # a method\n"
             "print(inspect.getsource(np.pad))"]
    names = [name for _, _, name in _getsource_targets(cells)]
    assert names == ["d2lcc.qnn.params.requantize_multiplier",
                     "d2lcc.models.conv2d_numpy", "d2lcc.deploy.elf_header",
                     "d2lcc.cpu.Roofline.attainable"]
    assert all(callable(_resolve(name)) for name in names)
    assert PRINTED, "no section prints package source: is the pattern still right?"


@pytest.mark.parametrize("section, line, name", PRINTED,
                         ids=[f"{p[0]}:{p[1]}" for p in PRINTED])
def test_printed_package_source_has_no_private_names(section, line, name):
    obj = _resolve(name)
    private = _private_names_in(inspect.getsource(obj))
    assert not private, (
        f"{section}:{line} prints the source of {name}, which uses "
        f"underscore-private names: {', '.join(private)}. Show it as teaching code, "
        "or make it call public functions.")


def test_private_name_finder():
    assert _private_names_in("def f(x):\n    return _check(x)\n") == ["_check"]
    assert _private_names_in("def f(m):\n    return m._impl\n") == ["._impl"]
    assert _private_names_in("def f():\n    from os import cpu_count as _n\n") == [
        "import cpu_count as _n"]
    assert _private_names_in("def f(x):\n    return x.__class__, __name__, _\n") == []
