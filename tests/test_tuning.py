"""Unit tests of d2lcc.tuning: databases, applying the best record, checking it, the shipped database."""

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm.s_tir import meta_schedule as ms

from d2lcc import tuning

TARGET = tvm.target.Target(tuning.SHIPPED_TARGETS["avx2"])


def _fake_database(tmp_path, mod, seconds=(2e-3, 1e-3, 3e-3)):
    """A JSON database with three hand-made schedules of ``mod`` and made-up run times.

    (MetaSchedule's own design spaces would do, but generating them imports
    TVM's tensor intrinsics, about half a minute of CPU.)
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = ms.database.JSONDatabase(work_dir=str(tmp_path))
    workload = db.commit_workload(mod)
    args = ms.arg_info.ArgInfo.from_prim_func(mod["main"])
    for inner, secs in zip((4, 8, 16), seconds):
        sch = tvm.s_tir.Schedule(mod)
        i, j, k = sch.get_loops("C")
        n = int(sch.get(j).extent)
        factors = sch.sample_perfect_tile(j, n=2, max_innermost_factor=16, decision=[n // inner, inner])
        jo, ji = sch.split(j, factors)
        sch.reorder(i, jo, k, ji)
        sch.vectorize(ji)
        sch.parallel(i)
        db.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, [secs], TARGET, args))
    return db


def _matmul_ok(module, n, target=TARGET):
    lib = tvm.compile(module, target=target)
    rng = np.random.default_rng(n)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(v, dev) for v in (a, b, np.zeros((n, n), np.float32))]
    lib(*args)
    np.testing.assert_allclose(args[2].numpy(), a @ b, rtol=1e-4, atol=1e-3)


def test_matmul_workload_is_stable():
    m1, m2 = tuning.matmul_workload(32), tuning.matmul_workload(32)
    assert tvm_ffi.structural_equal(m1, m2)
    assert not tvm_ffi.structural_equal(m1, tuning.matmul_workload(64))
    with pytest.raises(ValueError, match="tuning.matmul_workload"):
        tuning.matmul_workload(0)


def test_best_record_apply_and_check(tmp_path):
    mod = tuning.matmul_workload(64)
    db = _fake_database(tmp_path, mod)
    best = tuning.best_record(db, mod)
    assert tuning.record_seconds(best) == pytest.approx(1e-3)
    applied = tuning.apply_best(db, mod, TARGET)
    assert tuning.check_applied(applied, db, mod)
    assert not tuning.check_applied(mod, db, mod)  # the untuned module is caught
    _matmul_ok(applied, 64)


def test_check_applied_rejects_another_record(tmp_path):
    mod = tuning.matmul_workload(64)
    db = _fake_database(tmp_path, mod)
    slower = tuning.replay(db.get_top_k(db.commit_workload(mod), 3)[-1], mod)
    assert not tuning.check_applied(slower, db, mod)


def test_missing_workload_raises(tmp_path):
    db = _fake_database(tmp_path, tuning.matmul_workload(64))
    other = tuning.matmul_workload(32)
    with pytest.raises(ValueError, match="tuning.best_record"):
        tuning.best_record(db, other)
    with pytest.raises(ValueError, match="tuning.apply_best"):
        tuning.apply_best(db, other, TARGET)


def test_save_top_and_load(tmp_path):
    mod = tuning.matmul_workload(64)
    db = _fake_database(tmp_path / "all", mod)
    tuning.save_top(db, mod, tmp_path / "top", top_k=2)
    loaded = tuning.load_database(tmp_path / "top")
    assert len(loaded.get_all_tuning_records()) == 2
    assert tuning.record_seconds(tuning.best_record(loaded, mod)) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="tuning.save_top"):
        tuning.save_top(db, mod, tmp_path / "x", top_k=0)
    with pytest.raises(ValueError, match="tuning.load_database"):
        tuning.load_database(tmp_path / "nothing")


def test_tune_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="tuning.tune: trials"):
        tuning.tune(tuning.matmul_workload(16), TARGET, tmp_path, 0)


@pytest.mark.parametrize("isa", sorted(tuning.SHIPPED_TARGETS))
def test_shipped_databases_apply(isa):
    mod = tuning.matmul_workload(tuning.SHIPPED_SIZE)
    db = tuning.shipped_database(isa)
    record = tuning.best_record(db, mod)
    assert record.target.attrs["mcpu"] == tuning.SHIPPED_TARGETS[isa]["mcpu"]
    applied = tuning.apply_best(db, mod, tvm.target.Target(tuning.SHIPPED_TARGETS[isa]))
    assert tuning.check_applied(applied, db, mod)
    with pytest.raises(ValueError, match="tuning.shipped_database_path"):
        tuning.shipped_database_path("sse2")


def test_shipped_isa():
    from d2lcc.machine import Machine

    def machine(*features):
        return Machine("cpu", "x86_64", 2, features, "3.11", "0.27", "0.1")

    assert tuning.shipped_isa(machine("avx2", "fma", "avx512f")) == "avx512"
    assert tuning.shipped_isa(machine("avx2", "fma")) == "avx2"
    assert tuning.shipped_isa(machine("neon")) == "avx2"


def test_build_candidate_compiles():
    lib = tuning.build_candidate(tuning.matmul_workload(16), TARGET)
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((16, 16), dtype=np.float32) for _ in range(2))
    args = [tvm.runtime.tensor(v, tvm.cpu()) for v in (a, b, np.zeros((16, 16), np.float32))]
    lib(*args)
    np.testing.assert_allclose(args[2].numpy(), a @ b, rtol=1e-5, atol=1e-5)


def test_quiet_restores_printer_and_log_level():
    import logging

    name = "s_tir.meta_schedule.print_interactive_table"
    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    before_level = logger.level
    before = tvm_ffi.get_global_func(name)
    assert before is not None
    with tuning._quiet(True):
        assert logger.level == logging.WARNING
        assert tvm_ffi.get_global_func(name)("ignored") is None
    assert logger.level == before_level
    del before
    with pytest.raises(Exception):  # the original printer is back: it rejects a non-table
        tvm_ffi.get_global_func(name)("not a table")


def test_record_seconds_needs_a_measurement(tmp_path):
    mod = tuning.matmul_workload(64)
    db = _fake_database(tmp_path, mod)
    rec = tuning.best_record(db, mod)
    empty = ms.database.TuningRecord(rec.trace, rec.workload, [], rec.target, rec.args_info)
    with pytest.raises(ValueError, match="tuning.record_seconds"):
        tuning.record_seconds(empty)


def test_load_database_leaves_the_files_alone(tmp_path):
    mod = tuning.matmul_workload(64)
    _fake_database(tmp_path / "db", mod)
    files = sorted((tmp_path / "db").glob("*.json"))
    before = [f.read_bytes() for f in files]
    db = tuning.load_database(tmp_path / "db")
    db.commit_tuning_record(tuning.best_record(db, mod))  # writes go to a private copy
    assert [f.read_bytes() for f in files] == before
