"""Automatic scheduling with MetaSchedule: tune, apply the best schedule, check it.

MetaSchedule (``tvm.s_tir.meta_schedule``) searches the space of schedules
that its rules can generate for a TensorIR function, measures candidates on
the machine, and keeps every measurement in a *database*. Tuning only
*records*; nothing is applied until we ask the database for the best record
and replay its trace on the workload. :func:`apply_best` does that and
:func:`check_applied` checks that the module we build is the tuned one. The
book shows their cores, :func:`tuned_module` and :func:`matches_best`
(``__teaching__``), as cells a reader can edit; they check nothing.

The book ships small databases (``d2lcc/data/matmul512_<isa>/``), tuned
offline with :func:`tune` by ``tools/tune_shipped_database.py``, so readers
can apply a well-tuned schedule without tuning for minutes themselves.
:func:`load_database` checks a database's two JSON files line by line before
TVM reads them (TVM's reader can crash the process on a malformed record), so
a truncated or corrupt file gives a message that names the file and the line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import checks
from . import target as _target_mod

__teaching__ = ("tuned_module", "matches_best")

# The shipped databases, one per x86-64 vector ISA level, so that each runs on
# any CPU of that level: "avx2" (AVX2 + FMA: Intel Haswell or later, AMD Zen or
# later) and "avx512" (AVX-512 F/BW/CD/DQ/VL: Intel Skylake-SP or later, AMD Zen 4).
SHIPPED_TARGETS: dict[str, dict[str, Any]] = {
    "avx2": {"kind": "llvm", "mcpu": "x86-64-v3", "num-cores": 2},
    "avx512": {"kind": "llvm", "mcpu": "x86-64-v4", "num-cores": 2},
}
SHIPPED_SIZE = 512
#: Largest matrix side :func:`matmul_workload` builds (a 1 GiB float32 matrix).
MAX_N = 16384
#: Element types :func:`matmul_workload` accepts.
DTYPES = ("float16", "float32", "float64", "int32", "int64")
#: Most measured candidates one :func:`tune` call may ask for.
MAX_TRIALS = 100_000
#: Most records :func:`save_top` writes.
MAX_TOP_K = 1000
_FILES = ("database_workload.json", "database_tuning_record.json")


def _module(func: str, name: str, mod: Any):
    """Refuse anything but a :class:`tvm.IRModule`."""
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"{func}: {name} must be a tvm.IRModule, got "
                        f"{type(mod).__name__}")
    return mod


def _database(func: str, database: Any):
    from tvm.s_tir import meta_schedule as ms

    if not isinstance(database, ms.database.Database):
        raise TypeError(f"{func}: database must be a MetaSchedule Database, got "
                        f"{type(database).__name__}")
    return database


def _record(func: str, record: Any):
    from tvm.s_tir import meta_schedule as ms

    if not isinstance(record, ms.database.TuningRecord):
        raise TypeError(f"{func}: record must be a MetaSchedule TuningRecord, got "
                        f"{type(record).__name__}")
    return record


def _path(func: str, name: str, path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise TypeError(f"{func}: {name} must be a path (str or os.PathLike), got "
                        f"{type(path).__name__}")
    path = Path(path)
    if str(path) in ("", "."):
        raise ValueError(f"{func}: {name}={str(path)!r} must name a folder")
    return path


def matmul_workload(n: int, dtype: str = "float32"):
    """Return an IRModule whose ``main`` computes ``C = A @ B`` for n x n matrices.

    ``n`` is 1 to :data:`MAX_N`; ``dtype`` one of :data:`DTYPES`. The module
    is built the same way every time, so its structural hash (what
    MetaSchedule's database keys records by) is stable across runs.
    """
    import tvm
    from tvm import te

    n = checks.positive_int("tuning.matmul_workload", "n", n, maximum=MAX_N)
    checks.one_of("tuning.matmul_workload", "dtype", dtype, DTYPES)
    a = te.placeholder((n, n), dtype, name="A")
    b = te.placeholder((n, n), dtype, name="B")
    k = te.reduce_axis((0, n), name="k")
    c = te.compute((n, n), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return tvm.IRModule({"main": te.create_prim_func([a, b, c])})


def tune(mod, target, work_dir: str | Path, trials: int, *, trials_per_iter: int = 16,
         seed: int = 0, quiet: bool = True):
    """Tune the PrimFuncs of ``mod`` with MetaSchedule, measuring <= ``trials`` of them.

    Returns the :class:`JSONDatabase` in ``work_dir`` that holds every measurement.
    ``trials`` is 1 to :data:`MAX_TRIALS`, ``trials_per_iter`` 1 to 1024, ``seed``
    an int >= 0; ``quiet`` keeps the progress log out of stdout (see
    ``work_dir/logs``). The search is seeded, but the measured times (and so
    the result) still depend on the machine and its load.
    """
    from tvm.s_tir import meta_schedule as ms

    func = "tuning.tune"
    _module(func, "mod", mod)
    target = _target_mod.resolve(target, func, default_host=False)
    work_dir = _path(func, "work_dir", work_dir)
    if work_dir.exists() and not work_dir.is_dir():
        raise ValueError(f"{func}: work_dir={str(work_dir)!r} is a file, not a folder")
    trials = checks.positive_int(func, "trials", trials, maximum=MAX_TRIALS)
    trials_per_iter = checks.positive_int(func, "trials_per_iter", trials_per_iter,
                                          maximum=1024)
    seed = checks.integer(func, "seed", seed, minimum=0, maximum=2**31 - 1)
    quiet = checks.boolean(func, "quiet", quiet)
    with quiet_logs(quiet):
        return ms.tune_tir(
            mod=mod, target=target, work_dir=str(work_dir), max_trials_global=trials,
            num_trials_per_iter=min(trials_per_iter, trials), seed=seed,
            builder=ms.builder.LocalBuilder(f_build=build_candidate, timeout_sec=60),
        )


def quiet_logs(quiet: bool = True):
    """A context manager that keeps MetaSchedule's progress out of stdout when
    ``quiet`` (it still goes to the work_dir's logs).

    In Jupyter, MetaSchedule also shows its progress table through pandas; we
    swap that printer for a no-op while tuning and put it back afterwards.
    """
    return _quiet_context(checks.boolean("tuning.quiet_logs", "quiet", quiet))


@contextlib.contextmanager
def _quiet_context(quiet: bool):
    """Keep MetaSchedule's progress out of stdout (it still goes to work_dir's logs).

    In Jupyter, MetaSchedule also shows its progress table through pandas; we
    swap that printer for a no-op while tuning and put it back afterwards.
    """
    if not quiet:
        yield
        return
    import logging

    import tvm_ffi

    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    name = "s_tir.meta_schedule.print_interactive_table"
    level, printer = logger.level, tvm_ffi.get_global_func(name)
    logger.setLevel(logging.WARNING)
    tvm_ffi.register_global_func(name, lambda data: None, override=True)
    try:
        yield
    finally:
        tvm_ffi.register_global_func(name, printer, override=True)
        logger.setLevel(level)


def build_candidate(mod, target, _params=None):
    """Compile one candidate in a builder process (the default build minus one import).

    MetaSchedule's default build function first imports every tensor
    intrinsic TVM has (about 20 s of CPU), and its builder starts fresh
    processes for every batch of candidates, with a 30 s limit per build. On
    a small or busy machine every build then times out and the batch is lost.
    Scalar and vector float32 schedules need no tensor intrinsics.
    """
    import tvm
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    _module("tuning.build_candidate", "mod", mod)
    target = _target_mod.resolve(target, "tuning.build_candidate", default_host=False)
    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm.tirx.build(mod, target=target)


def _json_lines(func: str, file: Path) -> list[Any]:
    """Parse a JSON-lines file, naming the file and line of the first bad line."""
    try:
        text = file.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{func}: {file} is not a text file") from None
    rows, lines = [], text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            # Every line a JSONDatabase writes ends with a newline.
            last = number == len(lines) and not text.endswith("\n")
            cut = "; the file looks truncated" if last else ""
            raise ValueError(f"{func}: {file} line {number} is not valid JSON "
                             f"({err.msg}, column {err.colno}){cut}") from None
    return rows


def _check_workloads(func: str, file: Path) -> int:
    rows = _json_lines(func, file)
    for number, row in rows:
        if not (isinstance(row, list) and len(row) == 2
                and all(isinstance(v, str) for v in row) and row[0].isdigit()):
            raise ValueError(f"{func}: {file} line {number} is not a workload "
                             '(expected ["<structural hash>", "<module>"])')
    if not rows:
        raise ValueError(f"{func}: {file} holds no workload")
    return len(rows)


def _check_records(func: str, file: Path, workloads: int) -> None:
    rows = _json_lines(func, file)
    for number, row in rows:
        where = f"{func}: {file} line {number}"
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[1], list)
                and len(row[1]) == 4):
            raise ValueError(f"{where} is not a tuning record (expected "
                             "[workload index, [trace, run_secs, target, args_info]])")
        index, (trace, secs, target, args) = row
        if not isinstance(index, int) or isinstance(index, bool) or not (
            0 <= index < workloads
        ):
            raise ValueError(f"{where}: workload index {index!r} is not in "
                             f"[0, {workloads}) (the workload file has {workloads})")
        if not (isinstance(trace, list) and isinstance(target, dict)
                and isinstance(args, list)):
            raise ValueError(f"{where}: the trace, target or args_info has the wrong "
                             "JSON type")
        if secs is not None and not (isinstance(secs, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and v >= 0 for v in secs
        )):
            raise ValueError(f"{where}: run_secs={secs!r} must be a list of "
                             "finite times >= 0")
    if not rows:
        raise ValueError(f"{func}: {file} holds no tuning record")


def load_database(path: str | Path):
    """Open the MetaSchedule JSON database in the folder ``path`` (read-only use).

    Raises ``ValueError`` naming the file (and line) when a file is missing,
    empty, truncated or not a database file, before TVM reads it.
    """
    from tvm.s_tir import meta_schedule as ms

    func = "tuning.load_database"
    path = _path(func, "path", path)
    if not path.is_dir():
        raise ValueError(f"{func}: path={str(path)!r} is not a folder")
    files = [path / name for name in _FILES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"{func}: {path} is not a tuning database; missing {missing}")
    workloads = _check_workloads(func, files[0])
    _check_records(func, files[1], workloads)
    # Work on a copy: a JSONDatabase appends to its files, and the shipped ones
    # must stay as they are.
    copy = Path(tempfile.mkdtemp(prefix="d2lcc_db_"))
    for f in files:
        shutil.copy(f, copy / f.name)
    try:
        return ms.database.JSONDatabase(work_dir=str(copy), allow_missing=False)
    except Exception as err:  # TVM's own reader: name the folder, keep TVM's reason
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
        raise ValueError(f"{func}: TVM cannot read the database in {path}: "
                         f"{reason}") from None


def shipped_isa(machine=None) -> str:
    """The shipped database that suits ``machine`` (default: this one).

    Returns ``"avx512"`` or ``"avx2"``.

    Other CPUs get ``"avx2"``'s schedule, compiled for their own target. (An
    AVX-512 CPU without AVX-512 BW/DQ/VL, such as Knights Landing, would need
    ``"avx2"``; :mod:`d2lcc.machine` reports only ``avx512f``.)
    """
    from .machine import Machine, env

    if machine is None:
        machine = env()
    if not isinstance(machine, Machine):
        raise TypeError(f"tuning.shipped_isa: machine must be a d2lcc.machine.Machine "
                        f"or None, got {type(machine).__name__}")
    return "avx512" if machine.has("avx512f") else "avx2"


def shipped_database_path(isa: str = "avx2") -> Path:
    """The folder of a database that d2lcc ships (tuned offline, see the module doc)."""
    checks.one_of("tuning.shipped_database_path", "isa", isa, sorted(SHIPPED_TARGETS))
    return Path(__file__).parent / "data" / f"matmul{SHIPPED_SIZE}_{isa}"


def shipped_database(isa: str = "avx2"):
    """Open the shipped database of a SHIPPED_SIZE float32 matmul tuned for ``isa``."""
    checks.one_of("tuning.shipped_database", "isa", isa, sorted(SHIPPED_TARGETS))
    return load_database(shipped_database_path(isa))


def best_record(database, mod):
    """Return the fastest valid tuning record of ``mod`` in ``database``.

    Raises ``ValueError`` when the database holds no record for this exact
    workload (another size, dtype or function gives another structural hash).
    """
    func = "tuning.best_record"
    _database(func, database)
    _module(func, "mod", mod)
    if not database.has_workload(mod):
        raise ValueError(
            f"{func}: the database has no record of this mod; "
            "was it tuned for another function, size or dtype?"
        )
    records = database.get_top_k(database.commit_workload(mod), 1)
    if not records:
        raise ValueError(f"{func}: mod's workload is known but has no successful "
                         "measurement")
    return records[0]


def replay(record, mod):
    """Apply ``record``'s trace (each step and decision) to a fresh schedule of ``mod``.

    Raises ``ValueError`` when the trace does not fit ``mod`` (it was recorded
    for another workload).
    """
    import tvm

    func = "tuning.replay"
    _record(func, record)
    _module(func, "mod", mod)
    sch = tvm.s_tir.Schedule(mod)
    try:
        record.trace.apply_to_schedule(sch, remove_postproc=False)
    except Exception as err:  # a ScheduleError or InternalError deep inside TVM
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
        raise ValueError(f"{func}: record's trace does not apply to mod (recorded for "
                         f"another workload?): {reason}") from None
    return sch.mod


def tuned_module(database, mod, target):
    """Return ``mod`` with ``database``'s best schedule applied, ready to compile."""
    from tvm.s_tir import meta_schedule as ms

    sch = ms.tir_integration.compile_tir(database, mod, target)
    if sch is None:  # no record of this workload: never fall back to untuned mod
        raise ValueError("no tuning record matches mod; nothing was applied")
    return sch.mod


def apply_best(database, mod, target):
    """Return ``mod`` with the database's best schedule applied, ready to compile.

    This is the step that is easy to forget: tuning only records. Checks its
    arguments, then runs :func:`tuned_module`. Raises ``ValueError`` instead
    of silently returning the untuned ``mod``.
    """
    func = "tuning.apply_best"
    _database(func, database)
    _module(func, "mod", mod)
    target = _target_mod.resolve(target, func, default_host=False)
    try:
        return tuned_module(database, mod, target)
    except ValueError as err:
        raise ValueError(f"{func}: {err}") from None


def matches_best(applied, database, mod):
    """Whether ``applied`` is ``database``'s best record of ``mod``, replayed afresh."""
    import tvm_ffi

    tuned = replay(best_record(database, mod), mod)
    return bool(tvm_ffi.structural_equal(applied, tuned))


def check_applied(applied, database, mod) -> bool:
    """Return whether ``applied`` is the tuned program of ``mod``.

    The tuned program is ``database``'s best record of ``mod`` replayed, step
    by step, on a fresh schedule of ``mod`` (:func:`replay`), a route
    independent of :func:`apply_best`. So ``check_applied(apply_best(...), db,
    mod)`` is true, and the untuned ``mod`` or a module built from another
    record fails the check, unless that record's schedule happens to produce
    the same program (e.g. a best schedule that changes nothing). Checks its
    arguments, then runs :func:`matches_best`.
    """
    _module("tuning.check_applied", "applied", applied)
    return matches_best(applied, database, mod)


def record_seconds(record) -> float:
    """The mean of the run times the tuner measured for ``record``, in seconds."""
    func = "tuning.record_seconds"
    _record(func, record)
    secs = [float(s) for s in (record.run_secs or [])]
    if not secs:
        raise ValueError(f"{func}: the record has no measured run time")
    if not all(math.isfinite(s) and s >= 0 for s in secs):
        raise ValueError(f"{func}: the record's run times {secs} are not all finite "
                         "and >= 0")
    return sum(secs) / len(secs)


def save_top(database, mod, path: str | Path, top_k: int = 4) -> None:
    """Write the ``top_k`` fastest records of ``mod`` into a JSON database at ``path``.

    ``top_k`` is 1 to :data:`MAX_TOP_K`; ``path`` is a folder (made if missing),
    whose database files are replaced.
    """
    from tvm.s_tir import meta_schedule as ms

    func = "tuning.save_top"
    top_k = checks.positive_int(func, "top_k", top_k, maximum=MAX_TOP_K)
    path = _path(func, "path", path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{func}: path={str(path)!r} is a file, not a folder")
    best_record(database, mod)  # raises when there is nothing to save
    path.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        (path / name).unlink(missing_ok=True)
    out = ms.database.JSONDatabase(work_dir=str(path))
    workload = out.commit_workload(mod)
    for rec in reversed(database.get_top_k(database.commit_workload(mod), top_k)):
        out.commit_tuning_record(
            ms.database.TuningRecord(rec.trace, workload, rec.run_secs, rec.target,
                                     rec.args_info)
        )
