"""Running AArch64 libraries from any machine: natively on Arm, else emulated.

The book compiles for AWS Graviton2 (Arm Neoverse N1) on whatever machine the
reader has. To check such code against NumPy we must run it. On an AArch64
machine we simply start a child Python. Elsewhere we use QEMU's *user-mode
emulation*: ``qemu-aarch64-static`` translates the AArch64 instructions of one
Linux process into the host's, and passes its system calls to the host kernel.
The process it runs is Debian's arm64 Python with the aarch64 wheels of TVM
and NumPy; ``tools/setup_aarch64.sh`` puts both in :func:`cache_dir` (nothing
is downloaded here). ``QEMU_CPU`` chooses which CPU QEMU pretends to be, and
so which instructions it accepts: a Neoverse N1 has the dot-product extension
(``sdot``/``udot``), a Cortex-A72 does not and raises SIGILL on them.

Emulated code runs many times slower than on the real CPU, and not
proportionally so: emulated times say nothing about performance.

Main entry points: :func:`availability` (can we run, and how, or why not),
:func:`export` (an executable as an AArch64 shared library, linked with the
cross compiler) and :func:`run` (call a function of such a library on NumPy
arrays, in a child process, and return its outputs).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import checks

#: CPUs ``QEMU_CPU`` may name here (QEMU has more; these are the book's).
#: ``neoverse-n1`` is Graviton2's core, ``cortex-a72`` Graviton (2018)'s, without
#: the dot-product instructions; ``max`` enables every feature QEMU implements.
QEMU_CPUS = ("neoverse-n1", "cortex-a72", "cortex-a53", "cortex-a57", "cortex-a76",
             "neoverse-v1", "max")
#: Emulator executables tried in this order.
QEMU_NAMES = ("qemu-aarch64-static", "qemu-aarch64")
#: Cross compiler used to link AArch64 shared libraries on other machines.
CROSS_CXX = "aarch64-linux-gnu-g++"
#: Longest a child run may take, in seconds (emulation of TVM's import is slow).
MAX_TIMEOUT_S = 3600.0
#: dtypes :func:`run` passes in and out (what ``np.savez`` and TVM both know).
DTYPES = ("float32", "float64", "float16", "int8", "uint8", "int16", "int32", "int64",
          "uint32", "bool")
SETUP = "tools/setup_aarch64.sh"

# The child process. It loads TVM's runtime library alone (not the compiler,
# whose 240 MB take QEMU far longer to load than the rest), the kernels' library
# through TVM's FFI, calls one function and saves the outputs. Tensors cross
# between NumPy and TVM through DLPack, without copies.
RUNNER = '''\
import ctypes
import sys

import numpy as np
import tvm_ffi

runtime, lib_path, in_path, out_path, function, outputs = sys.argv[1:]
ctypes.CDLL(runtime, ctypes.RTLD_GLOBAL)  # libtvm_runtime.so: the Relax VM
lib = tvm_ffi.load_module(lib_path)
with np.load(in_path) as f:
    arrays = [np.ascontiguousarray(f[f"in{i}"]) for i in range(len(f.files))]
args = [tvm_ffi.from_dlpack(a) for a in arrays]
if outputs == "vm":  # a Relax executable: the VM returns the outputs
    vm = lib["vm_load_executable"]()
    vm["vm_initialization"](1, 0, 2)  # CPU (DLPack type 1), device 0, pooled memory
    result = vm[function](*args)
    result = [result] if isinstance(result, tvm_ffi.Tensor) else list(result)
    result = [np.from_dlpack(r).copy() for r in result]
else:  # a PrimFunc library: the caller passes the outputs, "shape:dtype;..."
    result = []
    for spec in outputs.split(";"):
        shape, dtype = spec.split(":")
        result.append(np.zeros([int(d) for d in shape.split(",") if d], dtype))
    lib[function](*args, *[tvm_ffi.from_dlpack(r) for r in result])
np.savez(out_path, **{f"out{i}": r for i, r in enumerate(result)})
'''


class Unavailable(RuntimeError):
    """AArch64 code cannot run on this machine (the message says why)."""


class Crashed(RuntimeError):
    """The AArch64 process died; ``signal`` names the signal (e.g. ``SIGILL``)."""

    def __init__(self, message: str, returncode: int, signal_name: str | None,
                 stderr: str):
        func = "aarch64.Crashed"
        checks.string(func, "message", message)
        checks.integer(func, "returncode", returncode, minimum=-255, maximum=255)
        if returncode == 0:
            raise ValueError(f"{func}: returncode=0 means the process succeeded")
        if signal_name is not None:
            checks.one_of(func, "signal_name", signal_name,
                          [s.name for s in signal.Signals])
        if not isinstance(stderr, str):
            raise TypeError(f"{func}: stderr must be a str, got "
                            f"{type(stderr).__name__}")
        super().__init__(message)
        self.returncode = returncode
        self.signal = signal_name
        self.stderr = stderr


@dataclass(frozen=True)
class Availability:
    """How AArch64 code runs here: ``mode`` and, in words, ``reason``.

    ``mode`` is ``"native"`` (this machine is AArch64), ``"emulated"``
    (QEMU user-mode emulation is set up) or ``"unavailable"``; the object is
    true unless unavailable.
    """

    mode: str
    reason: str

    def __post_init__(self) -> None:
        checks.one_of("aarch64.Availability", "mode", self.mode,
                      ("native", "emulated", "unavailable"))
        checks.string("aarch64.Availability", "reason", self.reason)

    def __bool__(self) -> bool:
        return self.mode != "unavailable"

    def __str__(self) -> str:
        return f"{self.mode}: {self.reason}"


def cache_dir() -> Path:
    """The folder ``tools/setup_aarch64.sh`` fills: ``$D2LCC_CACHE/aarch64``.

    ``D2LCC_CACHE`` defaults to ``~/.cache/d2lcc``.
    """
    root = os.environ.get("D2LCC_CACHE") or os.path.join("~", ".cache", "d2lcc")
    return Path(root).expanduser() / "aarch64"


def is_native() -> bool:
    """Whether this machine runs AArch64 code itself."""
    return platform.machine().lower() in ("aarch64", "arm64")


def qemu() -> str | None:
    """The path of the QEMU AArch64 user-mode emulator on PATH, or None."""
    for name in QEMU_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _emulated_python() -> Path | None:
    """The arm64 Python the setup unpacked (read from its READY file), or None."""
    ready = cache_dir() / "READY"
    if not ready.is_file():
        return None
    for line in ready.read_text().splitlines():
        key, _, value = line.partition(": ")
        if key == "python" and (cache_dir() / "sysroot" / value).is_file():
            return cache_dir() / "sysroot" / value
    return None


def availability() -> Availability:
    """Say whether and how AArch64 code can run here, and if not, why.

    Reads what ``tools/setup_aarch64.sh`` left in :func:`cache_dir`; starts
    no process.
    """
    if is_native():
        return Availability("native", f"this machine is {platform.machine()}")
    unavailable = cache_dir() / "UNAVAILABLE"
    if unavailable.is_file():
        return Availability("unavailable", "tools/setup_aarch64.sh could not set up "
                            f"emulation: {unavailable.read_text().strip()}")
    if qemu() is None:
        return Availability("unavailable", "no qemu-aarch64-static on PATH; run "
                            f"{SETUP} (as root on Debian/Ubuntu it installs it)")
    if _emulated_python() is None:
        return Availability("unavailable", f"no emulated Python in {cache_dir()}; "
                            f"run {SETUP} to download it (about 120 MB)")
    return Availability("emulated", f"{Path(qemu()).name} with the arm64 Python and "
                        f"TVM in {cache_dir()}")


def cross_compiler() -> str | None:
    """The C++ compiler that links AArch64 shared libraries here, or None.

    Natively, the system's ``g++``; elsewhere :data:`CROSS_CXX` if it is on PATH.
    """
    return shutil.which("g++") if is_native() else shutil.which(CROSS_CXX)


def export(executable: Any, path: str | os.PathLike) -> Path:
    """Write ``executable`` (what ``tvm.compile`` returned) as an AArch64 ``.so``.

    Links with :func:`cross_compiler`; raises :class:`Unavailable` naming the
    missing compiler, ``ValueError`` for a path not ending in ``.so``.
    """
    import tvm
    from tvm.support import cc

    func = "aarch64.export"
    if not isinstance(executable, tvm.runtime.Executable):
        raise TypeError(f"{func}: executable must be what tvm.compile returns, "
                        f"got {type(executable).__name__}")
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise TypeError(f"{func}: path must be a str or os.PathLike, "
                        f"got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".so":
        raise ValueError(f"{func}: path={str(path)!r} must end in .so")
    if not path.parent.is_dir():
        raise ValueError(f"{func}: path={str(path)!r}: folder {str(path.parent)!r} "
                         "does not exist")
    compiler = cross_compiler()
    if compiler is None:
        raise Unavailable(f"{func}: no {CROSS_CXX} on PATH to link AArch64 code; run "
                          f"{SETUP} (it installs g++-aarch64-linux-gnu)")
    executable.export_library(str(path), fcompile=cc.cross_compiler(compiler))
    return path


def _library(func: str, library: Any) -> Path:
    from .deploy import elf_header

    if not isinstance(library, (str, os.PathLike)) or \
            not isinstance(os.fspath(library), str):
        raise TypeError(f"{func}: library must be a path (str or os.PathLike), "
                        f"got {type(library).__name__}")
    path = Path(library)
    if not path.is_file():
        raise ValueError(f"{func}: library={str(path)!r} is not a file")
    try:
        header = elf_header(path)
    except ValueError as err:
        raise ValueError(f"{func}: library={str(path)!r} is not ELF ({err})") from None
    if header.machine != "AArch64" or header.kind != "shared object":
        raise ValueError(f"{func}: library={str(path)!r} is an {header}, not an "
                         "AArch64 shared object (see aarch64.export)")
    return path.resolve()


def _outputs(func: str, outputs: Any) -> str:
    """``outputs`` as the runner's argument: ``"vm"`` or ``"2,3:float32;..."``."""
    if outputs is None:
        return "vm"
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, (list, tuple)) \
            or not outputs:
        raise TypeError(f"{func}: outputs must be None or a non-empty list of "
                        f"(shape, dtype) pairs, got {type(outputs).__name__}")
    specs = []
    for i, pair in enumerate(outputs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(f"{func}: outputs[{i}] must be a (shape, dtype) pair, "
                            f"got {pair!r}")
        shape = checks.shape(func, f"outputs[{i}] shape", pair[0], allow_zero=True)
        dtype = checks.one_of(func, f"outputs[{i}] dtype", pair[1], DTYPES)
        specs.append(",".join(map(str, shape)) + ":" + dtype)
    return ";".join(specs)


def _runtime_library(native: bool) -> Path:
    """``libtvm_runtime.so`` of the TVM that runs the child (the host's natively)."""
    from importlib.util import find_spec

    if native:
        package = Path(find_spec("tvm").submodule_search_locations[0])
    else:
        package = cache_dir() / "site" / "tvm"
    return package / "lib" / "libtvm_runtime.so"


def _command(cpu: str) -> tuple[list[str], Path, dict[str, str]]:
    """The child's interpreter (a command line), TVM runtime and environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "QEMU_", "VIRTUAL_ENV"))}
    if is_native():
        return [sys.executable], _runtime_library(native=True), env
    found = availability()
    if not found:
        raise Unavailable(f"aarch64.run: cannot run AArch64 code here ({found.reason})")
    sysroot = cache_dir() / "sysroot"
    env.update(QEMU_LD_PREFIX=str(sysroot), QEMU_CPU=cpu,
               PYTHONPATH=str(cache_dir() / "site"), PYTHONNOUSERSITE="1",
               TVM_NUM_THREADS="1")
    return [qemu(), str(_emulated_python())], _runtime_library(native=False), env


def run(library: str | os.PathLike, *inputs: np.ndarray,
        outputs: Sequence[tuple[Sequence[int], str]] | None = None,
        function: str = "main", cpu: str = "neoverse-n1",
        timeout: float = 600.0) -> list[np.ndarray]:
    """Call ``function`` of an AArch64 library on NumPy ``inputs``; return its outputs.

    The call happens in a child process: natively on an AArch64 machine, else
    under QEMU emulating ``cpu`` (one of :data:`QEMU_CPUS`; ignored natively).

    Parameters
    ----------
    library
        An AArch64 shared library written by :func:`export`.
    inputs
        NumPy arrays, passed in order.
    outputs
        ``None`` for a Relax executable (run by the Relax VM, which returns the
        outputs); for a library of PrimFuncs, the ``(shape, dtype)`` of each
        output buffer, which the function fills after the inputs.
    function, cpu, timeout
        The function's name, the emulated CPU, and the limit in seconds.

    Returns
    -------
    The outputs as a list of NumPy arrays.

    Raises
    ------
    Unavailable
        Where AArch64 code cannot run (:func:`availability` says why).
    Crashed
        If the process dies, with the signal's name in ``.signal`` (SIGILL for
        an instruction the CPU lacks).
    """
    func = "aarch64.run"
    path = _library(func, library)
    for i, x in enumerate(inputs):
        checks.array(func, f"inputs[{i}]", x, dtypes=DTYPES)
    spec = _outputs(func, outputs)
    checks.string(func, "function", function)
    if not re.fullmatch(r"[A-Za-z_][\w.]*", function):
        raise ValueError(f"{func}: function={function!r} is not a function name")
    cpu = checks.one_of(func, "cpu", cpu, QEMU_CPUS)
    timeout = checks.real(func, "timeout", timeout, positive=True,
                          maximum=MAX_TIMEOUT_S)
    python, runtime, env = _command(cpu)
    with tempfile.TemporaryDirectory(prefix="d2lcc-aarch64-") as tmp:
        script, in_path, out_path = (Path(tmp) / n for n in
                                     ("runner.py", "in.npz", "out.npz"))
        script.write_text(RUNNER)
        np.savez(in_path, **{f"in{i}": x for i, x in enumerate(inputs)})
        try:
            done = subprocess.run(
                python + [str(script), str(runtime), str(path), str(in_path),
                          str(out_path), function, spec],
                env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{func}: {path.name} ran longer than "
                               f"timeout={timeout} s") from None
        if done.returncode != 0:
            raise _crashed(func, path, cpu, done)
        with np.load(out_path) as f:
            return [f[f"out{i}"] for i in range(len(f.files))]


def _crashed(func: str, path: Path, cpu: str, done) -> Crashed:
    code = done.returncode
    name = None
    if code < 0:
        name = signal.Signals(-code).name
    elif code > 128 and code - 128 in signal.valid_signals():
        name = signal.Signals(code - 128).name
    where = "natively" if is_native() else f"under QEMU_CPU={cpu}"
    what = f"was killed by {name}" if name else f"exited with status {code}"
    tail = done.stderr.strip().splitlines()[-3:]
    return Crashed(f"{func}: {path.name} {what} {where}: " + " | ".join(tail),
                   code, name, done.stderr)
