"""One model, many targets: build, export and inspect a network for each machine.

Amazon SageMaker Neo compiles one trained model for each kind of machine it
will run on and ships every artifact with a small runtime. This module does the
per-target work of that idea for the book's section "One Model, Many Targets":

- :func:`cross_compile` runs the stages of :func:`d2lcc.compile` for any LLVM
  target and stops before loading the result, so it also works for code this
  process cannot load (an x86 process refuses AArch64 code);
- :func:`export` writes the file a deployment ships (a shared library, or a
  ``.tar`` of object files where no linker for the target is installed);
- :func:`instruction_families` counts the vector instructions that matter in
  the generated assembly;
- :func:`required_features`, :func:`can_run` and :func:`runs_here` say whether
  this machine can run the code, and if not, why;
- :func:`build` does all of it for one target and returns an :class:`Artifact`,
  a row of the section's table (:func:`table`).

Trainium is no LLVM target: its kernels are TIRx written for its on-chip
memories, which :mod:`d2lcc.neuron` builds and runs on a NumPy model.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import checks
from . import target as targets
from .machine import FEATURES, Machine

__teaching__ = ("can_run",)

#: LLVM's names of the ISA features the book talks about -> the book's names
#: (those of :data:`d2lcc.machine.FEATURES`).
LLVM_FEATURES = {
    "avx2": "avx2", "fma": "fma", "avx512f": "avx512f", "avx512vnni": "avx512_vnni",
    "avxvnni": "avx_vnni", "amx-int8": "amx_int8", "amx-bf16": "amx_bf16",
    "neon": "neon", "dotprod": "dotprod",
}

#: Instruction families counted in assembly: name -> regular expression that
#: an instruction line (stripped) must match. x86 FMA is split by register
#: width (xmm: 4 floats or one scalar, ymm: 8, zmm: 16); ``fmla`` is the NEON
#: vector multiply-add and ``fmadd`` its scalar Arm form; ``vpdpbusd`` and
#: ``sdot``/``udot`` are the int8 dot-product instructions of x86 and Arm.
INSTRUCTION_FAMILIES = {
    "fma xmm": r"vfn?m(add|sub)\w*\s.*%xmm",
    "fma ymm": r"vfn?m(add|sub)\w*\s.*%ymm",
    "fma zmm": r"vfn?m(add|sub)\w*\s.*%zmm",
    "vpdpbusd": r"(\{vex\}\s*)?vpdpbusds?\s",
    "fmla": r"fmla\s+v\d+\.",
    "fmadd": r"fmadd\s+[sdh]\d+",
    "sdot/udot": r"[su]dot\s",
}
_FAMILY_PATTERNS = {name: re.compile(p) for name, p in INSTRUCTION_FAMILIES.items()}

# platform.machine() and LLVM triples spell the two architectures several ways.
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}

#: Largest artifact an :class:`Artifact` describes (1 TiB would be a typo).
MAX_ARTIFACT_BYTES = 2**39


def arch_name(name: str) -> str:
    """Normalize an architecture name (``"arm64"`` -> ``"aarch64"``, ``"AMD64"`` ->
    ``"x86_64"``); other names are returned lower-cased."""
    checks.string("artifacts.arch_name", "name", name)
    name = name.lower()
    return _ARCH_ALIASES.get(name, name)


def _llvm_target(func: str, target: Any):
    target = targets.resolve(target, func, default_host=False)
    if str(target.kind.name) != "llvm":
        raise ValueError(f"{func}: target kind {str(target.kind.name)!r} is not an "
                         "LLVM CPU target; Trainium ('trn') takes TIRx kernels "
                         "(see d2lcc.neuron.codegen)")
    return target


def target_arch(target: Any) -> str:
    """The architecture an LLVM target compiles for, e.g. ``"x86_64"``, ``"aarch64"``.

    Read from the target's ``mtriple``; a target without one (such as
    :func:`d2lcc.target.host`) compiles for this machine's triple.
    """
    from tvm.target import codegen

    target = _llvm_target("artifacts.target_arch", target)
    triple = str(target.attrs.get("mtriple", "")) or codegen.llvm_get_system_triple()
    return arch_name(triple.split("-")[0])


def required_features(target: Any) -> tuple[str, ...]:
    """The ISA features, by the book's names, that LLVM may use for ``target``.

    LLVM derives a feature set from the target's ``mcpu`` (Cascade Lake implies
    AVX-512 and VNNI, for instance) and may use any of it; a CPU without one of
    them can die with SIGILL (illegal instruction) on the code.
    """
    from tvm.target import codegen

    target = _llvm_target("artifacts.required_features", target)
    llvm = codegen.llvm_get_cpu_features(target)
    return tuple(book for name, book in LLVM_FEATURES.items() if name in llvm)


# Same code as d2lcc.artifacts.can_run; edit it here and re-run.
def can_run(arch: str, needs: Sequence[str], machine: Machine) -> tuple[bool, str]:
    """Whether code for ``arch`` that uses ``needs`` runs on ``machine``, and why."""
    if arch != arch_name(machine.arch):
        return False, f"{arch} code; this machine is {arch_name(machine.arch)}"
    missing = [feature for feature in needs if not machine.has(feature)]
    if missing:
        return False, f"needs {', '.join(missing)}, which this CPU lacks (SIGILL)"
    return True, f"this CPU has {', '.join(needs) or 'the base instruction set'}"


def runs_here(target: Any, machine: Machine | None = None) -> tuple[bool, str]:
    """Whether code compiled for LLVM ``target`` runs on ``machine``, and why.

    ``machine`` defaults to this one (:func:`d2lcc.env`). Returns
    :func:`can_run` of the target's architecture and required features.
    """
    func = "artifacts.runs_here"
    target = _llvm_target(func, target)
    if machine is None:
        from .machine import env

        machine = env()
    elif not isinstance(machine, Machine):
        raise TypeError(f"{func}: machine must be a d2lcc.machine.Machine or None, "
                        f"got {type(machine).__name__}")
    return can_run(target_arch(target), required_features(target), machine)


def instruction_families(asm: str) -> dict[str, int]:
    """Count the instructions of each of :data:`INSTRUCTION_FAMILIES` in ``asm``.

    ``asm`` is assembly text as ``inspect_source("asm")`` returns it:
    instructions are the tab-indented lines that are not directives.
    """
    checks.string("artifacts.instruction_families", "asm", asm)
    counts = dict.fromkeys(INSTRUCTION_FAMILIES, 0)
    for line in asm.splitlines():
        text = line.strip()
        if not line.startswith("\t") or not text or text.startswith("."):
            continue
        for name, pattern in _FAMILY_PATTERNS.items():
            if pattern.match(text):
                counts[name] += 1
    return counts


def cross_compile(model: Any, target: Any, *, schedules: str = "book"):
    """Compile ``model`` for an LLVM ``target`` with :func:`d2lcc.compile`.

    Returns ``(scheduled, executable)``: the scheduled Relax module (its
    TensorIR functions are the kernels) and what ``tvm.compile`` returned,
    ready for :func:`export` and ``executable.mod.imports[0].inspect_source``.
    Nothing is loaded into this process (``d2lcc.compile`` loads code on its
    first call only), so any architecture works. The book's schedules size
    their vectors for ``target`` (:func:`d2lcc.target.float32_lanes`).
    """
    from . import compiler

    func = "artifacts.cross_compile"
    target = _llvm_target(func, target)
    checks.one_of(func, "schedules", schedules, compiler.SCHEDULES)
    compiled = compiler.compile(model, target, schedules=schedules)
    return compiled.module, compiled.executable


def _path(func: str, name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or \
            not isinstance(os.fspath(value), str) or not os.fspath(value):
        raise TypeError(f"{func}: {name} must be a non-empty path (str or "
                        f"os.PathLike), got {type(value).__name__} {value!r}")
    return Path(value)


def export(executable: Any, target: Any, stem: str | os.PathLike) -> Path:
    """Write ``executable`` as the file a deployment to ``target`` ships; return it.

    For this machine's architecture, ``stem + ".so"``, a shared library linked
    by the system's C compiler. For AArch64 elsewhere, also a ``.so`` where
    :func:`d2lcc.aarch64.cross_compiler` finds a cross linker; otherwise a
    ``stem + ".tar"`` of object files, which ``tvm.runtime.load_module`` links
    on the target machine. The folder of ``stem`` must exist.
    """
    import tvm

    from . import aarch64

    func = "artifacts.export"
    if not isinstance(executable, tvm.runtime.Executable):
        raise TypeError(f"{func}: executable must be what tvm.compile returns, "
                        f"got {type(executable).__name__}")
    target = _llvm_target(func, target)
    stem = _path(func, "stem", stem)
    if not stem.parent.is_dir():
        raise ValueError(f"{func}: stem={str(stem)!r}: folder {str(stem.parent)!r} "
                         "does not exist")
    arch = target_arch(target)
    if arch == arch_name(platform.machine()):
        path = stem.with_name(stem.name + ".so")
        executable.export_library(str(path))
    elif arch == "aarch64" and aarch64.cross_compiler():
        path = aarch64.export(executable, stem.with_name(stem.name + ".so"))
    else:
        path = stem.with_name(stem.name + ".tar")
        executable.export_library(str(path))
    return path


@dataclass
class Artifact:
    """One target's build of a model: a row of the section's table."""

    name: str  # the target's name, e.g. "haswell"
    mcpu: str  # the CPU LLVM compiled for
    arch: str  # e.g. "x86_64", "aarch64"
    path: Path  # the exported file
    size: int  # its size in bytes
    kernels: int  # TensorIR kernels in the module
    instructions: dict[str, int]  # counts of INSTRUCTION_FAMILIES
    needs: tuple[str, ...]  # required_features
    runs_here: bool
    reason: str  # why it runs here or not
    executable: Any = field(repr=False, default=None)
    scheduled: Any = field(repr=False, default=None)

    def __post_init__(self) -> None:
        func = "artifacts.Artifact"
        for name in ("name", "mcpu", "arch", "reason"):
            checks.string(func, name, getattr(self, name))
        self.path = _path(func, "path", self.path)
        if not self.path.is_file():
            raise ValueError(f"{func}: path={str(self.path)!r} is not a file")
        checks.positive_int(func, "size", self.size, maximum=MAX_ARTIFACT_BYTES)
        checks.positive_int(func, "kernels", self.kernels)
        checks.boolean(func, "runs_here", self.runs_here)
        if isinstance(self.needs, (str, bytes)) or \
                not isinstance(self.needs, (tuple, list)):
            raise TypeError(f"{func}: needs must be a tuple of feature names, "
                            f"got {type(self.needs).__name__}")
        for i, feature in enumerate(self.needs):
            checks.one_of(func, f"needs[{i}]", feature, FEATURES)
        self.needs = tuple(self.needs)
        if not isinstance(self.instructions, dict) or \
                set(self.instructions) != set(INSTRUCTION_FAMILIES):
            raise ValueError(f"{func}: instructions must be a dict with keys "
                             f"{list(INSTRUCTION_FAMILIES)}")


def build(model: Any, name: str, target: Any, folder: str | os.PathLike, *,
          schedules: str = "book") -> Artifact:
    """Cross-compile ``model`` for ``target``, export it to ``folder``, inspect it.

    The file is ``folder/<name>.so`` (or ``.tar``, see :func:`export`); the
    returned :class:`Artifact` also holds the executable and scheduled module.
    """
    from . import ir

    func = "artifacts.build"
    checks.string(func, "name", name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"{func}: name={name!r} must be a plain file name "
                         "(letters, digits, '_', '-', '.')")
    target = _llvm_target(func, target)
    folder = _path(func, "folder", folder)
    if not folder.is_dir():
        raise ValueError(f"{func}: folder={str(folder)!r} is not a folder")
    scheduled, executable = cross_compile(model, target, schedules=schedules)
    path = export(executable, target, folder / name)
    asm = executable.mod.imports[0].inspect_source("asm")
    ok, reason = runs_here(target)
    return Artifact(
        name=name, mcpu=str(target.attrs.get("mcpu", "generic")),
        arch=target_arch(target), path=path, size=path.stat().st_size,
        kernels=ir.prim_func_count(scheduled), instructions=instruction_families(asm),
        needs=required_features(target), runs_here=ok, reason=reason,
        executable=executable, scheduled=scheduled)


def table(rows: Sequence[Artifact]) -> str:
    """Format artifacts as a text table: target, CPU, file, KiB, kernels, counts."""
    func = "artifacts.table"
    if isinstance(rows, (str, bytes)) or not isinstance(rows, (list, tuple)) \
            or not rows:
        raise TypeError(f"{func}: rows must be a non-empty list of Artifact, "
                        f"got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, Artifact):
            raise TypeError(f"{func}: rows[{i}] must be an Artifact, "
                            f"got {type(row).__name__}")
    head = ["target", "mcpu", "file", "KiB", "kernels", *INSTRUCTION_FAMILIES]
    body = [[r.name, r.mcpu, r.path.suffix, f"{r.size / 1024:.0f}", str(r.kernels),
             *(str(r.instructions[k]) for k in INSTRUCTION_FAMILIES)] for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) if i > 2 else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths)))
                     for line in [head, *body])
