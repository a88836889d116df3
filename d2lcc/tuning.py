"""Automatic scheduling with MetaSchedule: tune, apply the best schedule, check it.

MetaSchedule (``tvm.s_tir.meta_schedule``) searches the space of schedules
that its rules can generate for a TensorIR function, measures candidates on
the machine, and keeps every measurement in a *database*. Tuning only
*records*; nothing is applied until we ask the database for the best record
and replay its trace on the workload. :func:`apply_best` does that and
:func:`check_applied` proves that the function we build is the tuned one.

The book ships small databases (``d2lcc/data/matmul512_<isa>/``), tuned
offline with :func:`tune` by ``tools/tune_shipped_database.py``, so readers
can apply a well-tuned schedule without tuning for minutes themselves.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

# The shipped databases, one per x86-64 vector ISA level, so that each runs on
# any CPU of that level: "avx2" (AVX2 + FMA: Intel Haswell or later, AMD Zen or
# later) and "avx512" (AVX-512 F/BW/CD/DQ/VL: Intel Skylake-SP or later, AMD Zen 4).
SHIPPED_TARGETS: dict[str, dict[str, Any]] = {
    "avx2": {"kind": "llvm", "mcpu": "x86-64-v3", "num-cores": 2},
    "avx512": {"kind": "llvm", "mcpu": "x86-64-v4", "num-cores": 2},
}
SHIPPED_SIZE = 512


def matmul_workload(n: int, dtype: str = "float32"):
    """Return an IRModule whose ``main`` computes ``C = A @ B`` for n x n matrices.

    The module is built the same way every time, so its structural hash (what
    MetaSchedule's database keys records by) is stable across runs.
    """
    import tvm
    from tvm import te

    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"tuning.matmul_workload: n={n!r} must be a positive int")
    a = te.placeholder((n, n), dtype, name="A")
    b = te.placeholder((n, n), dtype, name="B")
    k = te.reduce_axis((0, n), name="k")
    c = te.compute((n, n), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return tvm.IRModule({"main": te.create_prim_func([a, b, c])})


def tune(
    mod, target, work_dir: str | Path, trials: int, *, trials_per_iter: int = 16, seed: int = 0, quiet: bool = True
):
    """Tune every PrimFunc of ``mod`` with MetaSchedule for at most ``trials`` measured candidates.

    Returns the :class:`JSONDatabase` in ``work_dir`` that holds every measurement.
    ``quiet`` keeps the progress log out of stdout (see ``work_dir/logs``).
    The search is seeded, but the measured times (and so the result) still
    depend on the machine and its load.
    """
    import tvm
    from tvm.s_tir import meta_schedule as ms

    for name, value in (("trials", trials), ("trials_per_iter", trials_per_iter)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"tuning.tune: {name}={value!r} must be a positive int")
    if isinstance(target, dict):
        target = tvm.target.Target(target)
    with _quiet(quiet):
        return ms.tune_tir(
            mod=mod, target=target, work_dir=str(work_dir), max_trials_global=trials,
            num_trials_per_iter=min(trials_per_iter, trials), seed=seed,
            builder=ms.builder.LocalBuilder(f_build=build_candidate, timeout_sec=60),
        )


@contextlib.contextmanager
def _quiet(quiet: bool):
    """Keep MetaSchedule's progress out of stdout (it still goes to the work_dir's logs).

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
    """Compile one candidate in a builder process (what the default builder does, minus one import).

    MetaSchedule's default build function first imports every tensor
    intrinsic TVM has (about 20 s of CPU), and its builder starts fresh
    processes for every batch of candidates, with a 30 s limit per build. On
    a small or busy machine every build then times out and the batch is lost.
    Scalar and vector float32 schedules need no tensor intrinsics.
    """
    import tvm
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm.tirx.build(mod, target=target)


def load_database(path: str | Path):
    """Open the MetaSchedule JSON database in the folder ``path`` (read-only use)."""
    from tvm.s_tir import meta_schedule as ms

    path = Path(path)
    files = [path / "database_workload.json", path / "database_tuning_record.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"tuning.load_database: {path} is not a tuning database; missing {missing}")
    # Work on a copy: a JSONDatabase appends to its files, and the shipped ones must stay as they are.
    copy = Path(tempfile.mkdtemp(prefix="d2lcc_db_"))
    for f in files:
        shutil.copy(f, copy / f.name)
    return ms.database.JSONDatabase(work_dir=str(copy), allow_missing=False)


def shipped_isa(machine=None) -> str:
    """The shipped database that suits ``machine`` (default: this one): ``"avx512"`` or ``"avx2"``.

    Other CPUs get ``"avx2"``'s schedule, compiled for their own target. (An
    AVX-512 CPU without AVX-512 BW/DQ/VL, such as Knights Landing, would need
    ``"avx2"``; :mod:`d2lcc.machine` reports only ``avx512f``.)
    """
    if machine is None:
        from .machine import env

        machine = env()
    return "avx512" if machine.has("avx512f") else "avx2"


def shipped_database_path(isa: str = "avx2") -> Path:
    """The folder of a database that d2lcc ships (tuned offline, see the module docstring)."""
    if isa not in SHIPPED_TARGETS:
        raise ValueError(f"tuning.shipped_database_path: isa={isa!r} must be one of {sorted(SHIPPED_TARGETS)}")
    return Path(__file__).parent / "data" / f"matmul{SHIPPED_SIZE}_{isa}"


def shipped_database(isa: str = "avx2"):
    """Open the shipped database of a ``SHIPPED_SIZE`` float32 matmul tuned for ``SHIPPED_TARGETS[isa]``."""
    return load_database(shipped_database_path(isa))


def best_record(database, mod):
    """Return the fastest valid tuning record of ``mod`` in ``database``.

    Raises ``ValueError`` when the database holds no record for this exact
    workload (another size, dtype or function gives another structural hash).
    """
    if not database.has_workload(mod):
        raise ValueError(
            "tuning.best_record: the database has no record of this workload; "
            "was it tuned for another function, size or dtype?"
        )
    records = database.get_top_k(database.commit_workload(mod), 1)
    if not records:
        raise ValueError("tuning.best_record: the workload is known but has no successful measurement")
    return records[0]


def replay(record, mod):
    """Apply ``record``'s trace (every schedule step and decision) to a fresh schedule of ``mod``."""
    import tvm

    sch = tvm.s_tir.Schedule(mod)
    record.trace.apply_to_schedule(sch, remove_postproc=False)
    return sch.mod


def apply_best(database, mod, target):
    """Return ``mod`` with the database's best schedule applied (an IRModule ready to compile).

    This is the step that is easy to forget: tuning only records. Raises
    ``ValueError`` instead of silently returning the untuned ``mod``.
    """
    import tvm
    from tvm.s_tir import meta_schedule as ms

    if isinstance(target, dict):
        target = tvm.target.Target(target)
    sch = ms.tir_integration.compile_tir(database, mod, target)
    if sch is None:
        raise ValueError("tuning.apply_best: no tuning record matches this workload; nothing was applied")
    return sch.mod


def check_applied(applied, database, mod) -> bool:
    """Return whether ``applied`` is the tuned program: equal to the best record replayed, unequal to ``mod``."""
    import tvm_ffi

    tuned = replay(best_record(database, mod), mod)
    return bool(tvm_ffi.structural_equal(applied, tuned)) and not tvm_ffi.structural_equal(applied, mod)


def record_seconds(record) -> float:
    """The mean of the run times the tuner measured for ``record``, in seconds."""
    secs = [float(s) for s in record.run_secs]
    if not secs:
        raise ValueError("tuning.record_seconds: the record has no measured run time")
    return sum(secs) / len(secs)


def save_top(database, mod, path: str | Path, top_k: int = 4) -> None:
    """Write the ``top_k`` fastest records of ``mod`` into a new JSON database in ``path``."""
    from tvm.s_tir import meta_schedule as ms

    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"tuning.save_top: top_k={top_k!r} must be a positive int")
    best_record(database, mod)  # raises when there is nothing to save
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in ("database_workload.json", "database_tuning_record.json"):
        (path / name).unlink(missing_ok=True)
    out = ms.database.JSONDatabase(work_dir=str(path))
    workload = out.commit_workload(mod)
    for rec in reversed(database.get_top_k(database.commit_workload(mod), top_k)):
        out.commit_tuning_record(
            ms.database.TuningRecord(rec.trace, workload, rec.run_secs, rec.target, rec.args_info)
        )
