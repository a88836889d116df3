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

Trainium is no LLVM target: TVM's ``trn`` backend turns TIRx kernels that place
their data in Trainium's on-chip memories (SBUF, PSUM) and call NKI
instructions into NKI kernel source. :func:`dense_bias_nki` is the small CNN's
classifier written that way, :func:`nki_source` compiles it, and
:func:`run_nki_numpy` executes the generated source on NumPy stand-ins for the
few NKI calls it uses, since the Neuron compiler and hardware are not at hand.
"""

from __future__ import annotations

import math
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from . import checks
from . import target as targets
from .machine import Machine

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

#: Bytes of SBUF per partition on a Trainium (trn1) NeuronCore, the limit the
#: kernel of :func:`dense_bias_nki` must fit (TVM's ``aws/trn1`` target tags).
TRN_SBUF_BYTES = 196608
#: Partitions of SBUF: the contraction length of one NKI matmul tile.
TRN_PARTITIONS = 128
#: Largest free size of the moving operand of one NKI matmul.
TRN_MOVING_FREE = 512


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
                         "(see artifacts.nki_source)")
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
    """Whether code for ``arch`` using features ``needs`` runs on ``machine``, and why."""
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
    """Compile ``model`` for LLVM ``target`` like :func:`d2lcc.compile`, without loading.

    Returns ``(scheduled, executable)``: the scheduled Relax module (its
    TensorIR functions are the kernels) and what ``tvm.compile`` returned,
    ready for :func:`export` and ``executable.mod.imports[0].inspect_source``.
    ``d2lcc.compile`` also loads the code into this process, which fails for
    another architecture. The book's schedules (``schedules="book"``) size
    their vectors for this machine (:func:`d2lcc.cpu.vector_lanes`), not for
    ``target``.
    """
    import tvm

    from . import compiler

    func = "artifacts.cross_compile"
    target = _llvm_target(func, target)
    checks.one_of(func, "schedules", schedules, compiler.SCHEDULES)
    scheduled = compiler.optimize(model, target, schedules=schedules)
    with target:
        lower = tvm.transform.Sequential(compiler.lower_passes(target))
        executable = tvm.compile(scheduled, target=target, relax_pipeline=lower)
    return scheduled, executable


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
        checks.nonnegative_int(func, "size", self.size, maximum=2**40)
        checks.nonnegative_int(func, "kernels", self.kernels)
        checks.boolean(func, "runs_here", self.runs_here)
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


def dense_bias_nki(k: int, n: int):
    """The layer ``y = x @ w + b`` (x: 1 x k, w: k x n, b: n) as a Trainium kernel.

    A TIRx function whose buffers live in Trainium's memories: the ``k`` inputs
    and the weights are loaded into SBUF with the contraction axis across the
    128 partitions (``k / 128`` tiles), an NKI matmul per tile accumulates in a
    PSUM tile, the bias is added on the way back to SBUF, and the row is stored.
    ``k`` must be a multiple of 128; ``n`` at most 512 (the largest moving tile),
    and the tiles must fit the :data:`TRN_SBUF_BYTES` of a partition.
    """
    from tvm.script import tirx as T

    func = "artifacts.dense_bias_nki"
    k = checks.positive_int(func, "k", k, maximum=TRN_PARTITIONS * 4096)
    checks.multiple_of(func, "k", k, TRN_PARTITIONS, "the 128 SBUF partitions")
    n = checks.positive_int(func, "n", n, maximum=TRN_MOVING_FREE)
    kt = k // TRN_PARTITIONS
    per_partition = 4 * (kt + kt * n + 2 * n)
    if per_partition > TRN_SBUF_BYTES:
        raise ValueError(f"{func}: k={k}, n={n} need {per_partition} bytes of each "
                         f"SBUF partition, more than its {TRN_SBUF_BYTES}")

    @T.prim_func
    def dense_bias(x: T.Buffer((1, k)), w: T.Buffer((k, n)), b: T.Buffer((n,)),
                   y: T.Buffer((1, n))):
        T.func_attr({"num_inputs": 3})
        T.device_entry()
        x_sb = T.alloc_buffer((128, kt, 1), "float32", scope="trn.sbuf")
        w_sb = T.alloc_buffer((128, kt, n), "float32", scope="trn.sbuf")
        b_sb = T.alloc_buffer((1, n), "float32", scope="trn.sbuf")
        acc = T.alloc_buffer((1, 1, n), "float32", scope="trn.psum")
        y_sb = T.alloc_buffer((1, n), "float32", scope="trn.sbuf")
        for t in range(kt):  # one load per tile: partition p holds x[t * 128 + p]
            with T.attr(0, "tensorized_nki_instruction", 1):
                for p in range(128):
                    T.nki.load(x_sb[p, t, 0], x[0, t * 128 + p])
        for t in range(kt):
            with T.attr(0, "tensorized_nki_instruction", 1):
                for p, j in T.grid(128, n):
                    T.nki.load(w_sb[p, t, j], w[t * 128 + p, j])
        with T.attr(0, "tensorized_nki_instruction", 1):
            for j in range(n):
                T.nki.load(b_sb[0, j], b[j])
        with T.attr(0, "tensorized_nki_instruction", 1):
            for j in range(n):
                T.nki.memset(acc[0, 0, j], T.float32(0.0))
        for t in range(kt):  # acc += x_tile.T @ w_tile on the Tensor Engine
            with T.attr(0, "tensorized_nki_instruction", 1):
                for j, p in T.grid(n, 128):
                    T.nki.matmul(acc[0, 0, j], x_sb[p, t, 0], w_sb[p, t, j], 1)
        with T.attr(0, "tensorized_nki_instruction", 1):
            for j in range(n):
                T.nki.tensortensor(y_sb[0, j], acc[0, 0, j], b_sb[0, j], "add")
        with T.attr(0, "tensorized_nki_instruction", 1):
            for j in range(n):
                T.nki.store(y[0, j], y_sb[0, j])

    return dense_bias


def nki_source(func: Any, target: Any = None) -> str:
    """Compile a Trainium TIRx kernel with TVM's ``trn`` pipeline; return the NKI source.

    ``target`` is a ``trn`` target, :func:`d2lcc.target.named` ``("trainium")``
    by default. Nothing runs: the source is Python for the Neuron compiler.
    """
    import tvm

    name = "artifacts.nki_source"
    if not isinstance(func, tvm.tirx.PrimFunc):
        raise TypeError(f"{name}: func must be a tvm.tirx.PrimFunc, "
                        f"got {type(func).__name__}")
    target = targets.resolve(target if target is not None else
                             targets.NAMED_TARGETS["trainium"], name)
    if str(target.kind.name) != "trn":
        raise ValueError(f"{name}: target kind {str(target.kind.name)!r} is not "
                         "'trn' (Trainium)")
    with target:
        executable = tvm.compile(tvm.IRModule({"main": func}), tir_pipeline="trn")
    sources = [m.inspect_source() for m in executable.mod.imports if m.kind == "nki"]
    if not sources:
        raise ValueError(f"{name}: TVM produced no NKI module for func (it placed "
                         "no code on the device; is the body under T.device_entry()?)")
    return sources[0]


class _DeviceTensor:
    """A kernel argument in device memory: indexing it names a region to load/store."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def reshape(self, shape):
        return _DeviceTensor(self.array.reshape(shape))  # a view of the same memory

    def __getitem__(self, index):
        return self.array, index


def _load(region):
    array, index = region
    return array[index].copy()


def _store(region, value):
    array, index = region
    array[index] = value


def _nc_matmul(stationary, moving):
    """NKI's Tensor Engine matmul, stationary.T @ moving, with its tile limits."""
    if stationary.shape[0] != moving.shape[0] or stationary.shape[0] > 128:
        raise ValueError(f"nc_matmul: partition sizes {stationary.shape[0]} and "
                         f"{moving.shape[0]} must be equal and at most 128")
    if math.prod(stationary.shape[1:]) > 128 or math.prod(moving.shape[1:]) > 512:
        raise ValueError(f"nc_matmul: free sizes of {stationary.shape} and "
                         f"{moving.shape} exceed 128 and 512")
    return np.tensordot(stationary, moving, axes=(0, 0))


def _nki_namespace() -> dict[str, Any]:
    """NumPy stand-ins for the NKI names the kernels of this module use."""
    same = lambda f: f  # noqa: E731 - decorators that change nothing here
    nl = SimpleNamespace(
        arange=np.arange, par_dim=lambda size: size, psum="psum", add=np.add,
        ndarray=lambda shape, dtype, buffer=None: np.full(shape, np.nan, dtype),
        sequential_range=lambda size, **_: range(size), load=_load, store=_store)
    nisa = SimpleNamespace(nc_matmul=_nc_matmul, tensor_copy=np.copy,
                           tensor_tensor=lambda a, b, op: op(a, b))
    compiler = SimpleNamespace(enable_stack_allocator=same,
                               skip_middle_end_transformations=same)
    return {"np": np, "math": math, "nl": nl, "nisa": nisa,
            "nki": SimpleNamespace(language=nl, compiler=compiler),
            "nt": SimpleNamespace(mutable_tensor=None),
            "ncc": SimpleNamespace(sbuf=SimpleNamespace(mod_alloc=lambda **_: "sbuf")),
            "baremetal": lambda **_: same}


def run_nki_numpy(source: str, inputs: Sequence[np.ndarray],
                  out_shape: Sequence[int]) -> np.ndarray:
    """Execute NKI kernel ``source`` on NumPy stand-ins; return the float32 output.

    The source's imports are dropped and its ``nl``/``nisa`` calls run as
    NumPy: loads and stores copy regions of the arguments, ``nc_matmul`` is
    ``stationary.T @ moving`` (refusing tiles larger than the Tensor Engine
    takes), SBUF and PSUM tiles start as NaN so that a read before a write
    shows. It checks the index arithmetic and data flow TVM generated, not
    the Neuron compiler nor the chip. Only the calls :func:`dense_bias_nki`'s
    kernel makes are modelled; any other raises ``ValueError``.
    """
    func = "artifacts.run_nki_numpy"
    checks.string(func, "source", source)
    found = re.search(r"^def (\w+)\(", source, re.MULTILINE)
    if found is None:
        raise ValueError(f"{func}: source defines no kernel function")
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"{func}: inputs must be a list of arrays, "
                        f"got {type(inputs).__name__}")
    arrays = [checks.array(func, f"inputs[{i}]", x, dtypes=["float32"], finite=True)
              for i, x in enumerate(inputs)]
    out = np.full(checks.shape(func, "out_shape", out_shape), np.nan, "float32")
    code = "\n".join(line for line in source.splitlines()
                     if not line.startswith(("import ", "from ")))
    namespace = _nki_namespace()
    try:
        exec(compile(code, "<nki kernel>", "exec"), namespace)  # noqa: S102
        kernel = namespace[found.group(1)]
        kernel(*(_DeviceTensor(np.ascontiguousarray(a)) for a in arrays),
               _DeviceTensor(out))
    except AttributeError as err:
        raise ValueError(f"{func}: the kernel uses an NKI name the NumPy stand-ins "
                         f"do not model ({err})") from None
    except (IndexError, TypeError) as err:
        raise ValueError(f"{func}: the kernel does not fit its arguments "
                         f"({type(err).__name__}: {err})") from None
    return out
