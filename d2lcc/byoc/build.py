"""BYOC step 4: build a partitioned network, run it, export it, load it elsewhere.

:func:`register` makes the package's codegens known to TVM (``RunCodegen``
looks them up by name, and the ``d2lcc_blas`` code calls its library by
name). :func:`compile` runs the four steps on a whole network and compiles
what is left with :func:`d2lcc.compiler.optimize`, so the result is a
:class:`d2lcc.compiler.CompiledModel` like ``d2lcc.compile``'s;
:func:`export_library` writes it as one shared library and :func:`run_exported`
loads and runs such a file in a fresh Python process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import checks
from .. import target as targets
from .patterns import CODEGENS, UNSUPPORTED

#: Flags for the C++ compiler that compiles generated C (``Executable.jit`` and
#: ``export_library`` pass none by default, which means no optimization).
#: ``-march=native`` tunes for the compiling machine: drop it to run elsewhere.
CFLAGS = ("-O3", "-march=native")


def register() -> list[str]:
    """Register both codegens (``relax.ext.d2lcc_c``, ``relax.ext.d2lcc_blas``), the
    library functions the ``d2lcc_blas`` code calls, and both pattern tables.

    A codegen already registered under one of these names is kept, so a reader
    who registers an edited codegen sees it used by :func:`compile`. Returns
    the names of the global functions.
    """
    import tvm

    from .c_codegen import c_codegen
    from .library import blas_codegen, register_library
    from .patterns import register_patterns

    codegens = {"relax.ext.d2lcc_c": c_codegen, "relax.ext.d2lcc_blas": blas_codegen}
    for name, codegen in codegens.items():
        if tvm.get_global_func(name, allow_missing=True) is None:
            tvm.register_global_func(name, codegen)
    for codegen in CODEGENS:
        register_patterns(codegen)
    return list(codegens) + register_library()


def offload(model: Any, codegen: str = "d2lcc_c", unsupported: str = "error"):
    """Import ``model``, partition it for ``codegen`` and run the codegen.

    Returns the Relax module in which each region is a ``call_dps_packed`` of
    its symbol, with the generated runtime module in its ``external_mods``
    attribute.
    """
    import tvm
    from tvm import relax

    from .. import compiler
    from .partition import partition

    checks.one_of("byoc.offload", "codegen", codegen, CODEGENS)
    checks.one_of("byoc.offload", "unsupported", unsupported, UNSUPPORTED)
    mod = compiler.import_model(model)
    mod = tvm.transform.Sequential(compiler.simplify_passes())(mod)
    mod = partition(mod, codegen, unsupported)
    register()
    return relax.transform.RunCodegen()(mod)


def _cflags(flags: Sequence[str] | None, func: str) -> list[str]:
    """``flags`` (default :data:`CFLAGS`) as a checked list of strings."""
    if flags is None:
        return list(CFLAGS)
    if isinstance(flags, (str, bytes)) or not isinstance(flags, (list, tuple)):
        raise TypeError(f"{func}: cflags must be a list of strings, "
                        f"got {type(flags).__name__}")
    return [checks.string(func, f"cflags[{i}]", f) for i, f in enumerate(flags)]


def compile(model: Any, codegen: str = "d2lcc_c", target: Any = None, *,  # noqa: A001
            schedules: str = "book", unsupported: str = "error",
            cflags: Sequence[str] | None = None):
    """Offload ``model``'s matmul/conv2d regions to ``codegen``, compile the rest.

    Parameters
    ----------
    model
        A Relax module or ONNX model, as for :func:`d2lcc.compile`.
    codegen
        ``"d2lcc_c"`` (generated C) or ``"d2lcc_blas"`` (NumPy's BLAS).
    target
        The target of what TVM compiles; this machine by default.
    schedules
        How TVM schedules the kernels it keeps (see :func:`d2lcc.compile`).
    unsupported
        ``"error"`` or ``"tvm"``, see :func:`d2lcc.byoc.partition`.
    cflags
        Flags for compiling the generated C (default :data:`CFLAGS`).

    Returns
    -------
    d2lcc.compiler.CompiledModel
    """
    import tvm

    from .. import compiler

    flags = _cflags(cflags, "byoc.compile")
    target = targets.resolve(target, "byoc.compile")
    checks.one_of("byoc.compile", "schedules", schedules, compiler.SCHEDULES)
    offloaded = offload(model, codegen, unsupported)
    scheduled = compiler.optimize(offloaded, target, schedules=schedules)

    @tvm.transform.module_pass(opt_level=0)
    def lower(mod, _ctx):
        with target:
            return tvm.transform.Sequential(compiler.lower_passes(target))(mod)

    executable = tvm.compile(scheduled, target=target, relax_pipeline=lower)
    executable.jit(options=flags)  # compile the generated C with our flags, once
    return compiler.CompiledModel(scheduled, executable, target)


def export_library(compiled: Any, path: str | os.PathLike,
                   cflags: Sequence[str] | None = None) -> Path:
    """Write ``compiled`` (what :func:`compile` returns) as one shared library."""
    from ..compiler import CompiledModel

    if not isinstance(compiled, CompiledModel):
        raise TypeError("byoc.export_library: compiled must be a CompiledModel, "
                        f"got {type(compiled).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"byoc.export_library: path must be a path, "
                        f"got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".so" or not path.parent.is_dir():
        raise ValueError(f"byoc.export_library: path={str(path)!r} must name a .so "
                         "file in an existing folder")
    flags = _cflags(cflags, "byoc.export_library")
    compiled.executable.export_library(str(path), options=flags)
    return path


#: What :func:`run_exported` runs in a fresh Python process: load the library
#: with TVM alone (plus d2lcc's library functions when asked), run ``main``.
LOADER = """
import sys
import numpy as np
import tvm
from tvm import relax

library, data, register = sys.argv[1:4]
if register == "1":
    import d2lcc.byoc
    d2lcc.byoc.register()
vm = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())
arrays = np.load(data)
inputs = [tvm.runtime.tensor(arrays[f"x{i}"]) for i in range(len(arrays.files))]
np.save(data + ".out.npy", vm["main"](*inputs).numpy())
"""


def run_exported(path: str | os.PathLike, *inputs: np.ndarray,
                 register: bool = False, timeout: float = 120.0) -> np.ndarray:
    """Load the library at ``path`` in a new Python process, run ``main(*inputs)``.

    The new process imports TVM and NumPy only, unless ``register`` is True:
    then it also registers d2lcc's library functions, which code generated by
    ``d2lcc_blas`` calls (as a vendor's code needs the vendor's runtime).
    Returns ``main``'s output; raises RuntimeError with the process's error
    output if it fails.
    """
    func = "byoc.run_exported"
    if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file():
        raise ValueError(f"{func}: path={path!r} is not an existing file")
    for i, x in enumerate(inputs):
        checks.array(func, f"inputs[{i}]", x)
    register = checks.boolean(func, "register", register)
    timeout = checks.real(func, "timeout", timeout, positive=True, maximum=3600.0)
    with tempfile.TemporaryDirectory(prefix="d2lcc-byoc-") as folder:
        data = os.path.join(folder, "inputs.npz")
        np.savez(data, **{f"x{i}": x for i, x in enumerate(inputs)})
        done = subprocess.run(
            [sys.executable, "-c", LOADER, str(path), data, "1" if register else "0"],
            capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{func}: the new process failed:\n"
                               f"{done.stderr[-2000:]}")
        return np.load(data + ".out.npy")
