"""Show the source of the package's passes in the book.

TVM's pass decorators (``pass_instrument``, ``function_pass``) replace a class
by a generated wrapper, which :func:`inspect.getsource` may not find.
:func:`source` reads the definition from the module file instead, by name.
"""

from __future__ import annotations

import ast
import importlib
import inspect

from .. import checks

_MODULES = ("analysis", "instruments", "levels", "pipeline", "relax_simplify", "timing",
            "tir_unroll")


def source(name: str) -> str:
    """Return the source of the class or function ``name`` of :mod:`d2lcc.passes`,
    decorators included."""
    checks.string("passes.source", "name", name)
    for module_name in _MODULES:
        module = importlib.import_module(f"{__package__}.{module_name}")
        text = inspect.getsource(module)
        for node in ast.parse(text).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                lines = text.splitlines()
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                return "\n".join(lines[first - 1 : node.end_lineno])
    raise ValueError(f"passes.source: name={name!r} names no class or function of "
                     "d2lcc.passes")
