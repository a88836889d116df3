"""Unit tests of d2lcc.tuning: databases, applying and checking the best record,
the shipped databases, and bad input (corrupt database files included)."""

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
        factors = sch.sample_perfect_tile(j, n=2, max_innermost_factor=16,
                                          decision=[n // inner, inner])
        jo, ji = sch.split(j, factors)
        sch.reorder(i, jo, k, ji)
        sch.vectorize(ji)
        sch.parallel(i)
        db.commit_tuning_record(
            ms.database.TuningRecord(sch.trace, workload, [secs], TARGET, args)
        )
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
    with pytest.raises(ValueError, match="tuning.apply_best: no tuning record matches"):
        tuning.apply_best(db, other, TARGET)
    with pytest.raises(ValueError, match="no tuning record matches mod"):
        tuning.tuned_module(db, other, TARGET)


def test_teaching_functions_are_what_the_checked_ones_run(tmp_path):
    mod = tuning.matmul_workload(64)
    db = _fake_database(tmp_path, mod)
    applied = tuning.tuned_module(db, mod, TARGET)
    import tvm_ffi

    assert tvm_ffi.structural_equal(applied, tuning.apply_best(db, mod, TARGET))
    assert tuning.matches_best(applied, db, mod)
    assert not tuning.matches_best(mod, db, mod)
    assert tuning.__teaching__ == ("tuned_module", "matches_best")


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
    args = [tvm.runtime.tensor(v, tvm.cpu())
            for v in (a, b, np.zeros((16, 16), np.float32))]
    lib(*args)
    np.testing.assert_allclose(args[2].numpy(), a @ b, rtol=1e-5, atol=1e-5)


def test_quiet_restores_printer_and_log_level():
    import logging

    name = "s_tir.meta_schedule.print_interactive_table"
    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    before_level = logger.level
    before = tvm_ffi.get_global_func(name)
    assert before is not None
    with tuning.quiet_logs(True):
        assert logger.level == logging.WARNING
        assert tvm_ffi.get_global_func(name)("ignored") is None
    assert logger.level == before_level
    del before
    with pytest.raises(Exception):  # the original printer is back: refuses a non-table
        tvm_ffi.get_global_func(name)("not a table")


def test_record_seconds_needs_a_measurement(tmp_path):
    mod = tuning.matmul_workload(64)
    db = _fake_database(tmp_path, mod)
    rec = tuning.best_record(db, mod)
    empty = ms.database.TuningRecord(rec.trace, rec.workload, [], rec.target,
                                     rec.args_info)
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


def test_check_applied_compares_with_the_replayed_best_not_with_mod(tmp_path):
    """A best schedule that changes nothing makes the untuned mod the tuned one:
    check_applied says so (it has no built-in "differs from mod" clause)."""
    mod = tuning.matmul_workload(32)
    db = ms.database.JSONDatabase(work_dir=str(tmp_path))
    workload = db.commit_workload(mod)
    args = ms.arg_info.ArgInfo.from_prim_func(mod["main"])
    sch = tvm.s_tir.Schedule(mod)
    sch.get_loops(sch.get_sblock("C"))  # looks at the program, changes nothing
    identity = sch.trace
    db.commit_tuning_record(ms.database.TuningRecord(identity, workload, [1e-4],
                                                     TARGET, args))
    assert tuning.check_applied(mod, db, mod)
    with pytest.raises(TypeError, match="tuning.check_applied: applied must be"):
        tuning.check_applied(None, db, mod)


def test_replay_refuses_a_trace_of_another_workload(tmp_path):
    mod = tuning.matmul_workload(64)
    record = tuning.best_record(_fake_database(tmp_path, mod), mod)
    other = tvm.IRModule({"main": mod["main"].with_attr("global_symbol", "main")})
    assert tuning.replay(record, other) is not None  # same loops: it applies
    from tvm import te

    a = te.placeholder((8,), "float32", name="A")
    plain = tvm.IRModule({"main": te.create_prim_func(
        [a, te.compute((8,), lambda i: a[i] + 1, name="B")])})
    with pytest.raises(ValueError, match="replay: record's trace does not apply"):
        tuning.replay(record, plain)
    with pytest.raises(TypeError, match="tuning.replay: record must be"):
        tuning.replay(None, mod)


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda: tuning.matmul_workload(2**40), ValueError, "n=1099511627776 must be"),
        (lambda: tuning.matmul_workload(8, "int4"), ValueError, "dtype='int4'"),
        (lambda: tuning.matmul_workload(8.0), TypeError, "n must be an int"),
        (lambda: tuning.best_record(None, tuning.matmul_workload(8)), TypeError,
         "best_record: database must be"),
        (lambda: tuning.shipped_isa("x86"), TypeError, "shipped_isa: machine must be"),
        (lambda: tuning.shipped_database(None), ValueError, "isa=None"),
        (lambda: tuning.record_seconds(None), TypeError, "record must be"),
        (lambda: tuning.build_candidate(None, TARGET), TypeError, "mod must be"),
        (lambda: tuning.load_database(None), TypeError, "path must be a path"),
        (lambda: tuning.load_database(""), ValueError, "path='.' must name a folder"),
    ],
)
def test_bad_arguments_are_named(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(trials=2**40), ValueError, "tuning.tune: trials=1099511627776 must be"),
        (dict(trials_per_iter=0), ValueError, "trials_per_iter=0"),
        (dict(seed=-1), ValueError, "seed=-1 must be >= 0"),
        (dict(quiet=1), TypeError, "quiet must be True or False"),
        (dict(target="llvm"), TypeError, "tuning.tune: target must be"),
        (dict(target={"kind": "nope"}), ValueError, "tuning.tune: target=.* not valid"),
        (dict(mod=None), TypeError, "tuning.tune: mod must be a tvm.IRModule"),
        (dict(work_dir=None), TypeError, "tuning.tune: work_dir must be a path"),
    ],
)
def test_tune_refuses_bad_arguments_before_tuning(tmp_path, kwargs, exc, msg):
    args = dict(mod=tuning.matmul_workload(16), target=TARGET, work_dir=tmp_path,
                trials=1)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        tuning.tune(**args)
    assert not (tmp_path / "logs").exists()  # nothing was tuned


def test_apply_best_and_save_top_arguments(tmp_path):
    mod = tuning.matmul_workload(64)
    db = _fake_database(tmp_path / "db", mod)
    with pytest.raises(TypeError, match="tuning.apply_best: target must be"):
        tuning.apply_best(db, mod, "llvm")
    with pytest.raises(TypeError, match="tuning.apply_best: mod must be"):
        tuning.apply_best(db, mod["main"], TARGET)
    with pytest.raises(ValueError, match="save_top: top_k=1099511627776 must be <="):
        tuning.save_top(db, mod, tmp_path / "top", top_k=2**40)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="save_top: path=.* is a file"):
        tuning.save_top(db, mod, tmp_path / "file")
    applied = tuning.apply_best(db, mod, dict(tuning.SHIPPED_TARGETS["avx2"]))
    assert tuning.check_applied(applied, db, mod)


def _copy_shipped(tmp_path):
    import shutil

    folder = tmp_path / "db"
    shutil.copytree(tuning.shipped_database_path("avx2"), folder)
    return (folder, folder / "database_workload.json",
            folder / "database_tuning_record.json")


def _truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


@pytest.mark.parametrize(
    "which, damage, msg",
    [
        ("workload", _truncate, r"workload.json line 1 is not valid JSON.*truncated"),
        ("record", _truncate, r"record.json line \d+ is not valid JSON.*truncated"),
        ("workload", lambda f: f.write_text("hello{"), "workload.json line 1 is not"),
        ("workload", lambda f: f.write_text(""), "workload.json holds no workload"),
        ("record", lambda f: f.write_text(""), "record.json holds no tuning record"),
        ("workload", lambda f: f.write_text('["x", 3]\n'), "line 1 is not a workload"),
        ("record", lambda f: f.write_text('{"a": 1}\n'), "line 1 is not a tuning rec"),
        ("record", lambda f: f.write_text('[7, [[], [1.0], {}, []]]\n'),
         r"line 1: workload index 7 is not in \[0, 1\)"),
        ("record", lambda f: f.write_text('[0, [[], [-1.0], {}, []]]\n'),
         r"run_secs=\[-1.0\] must be a list of finite times"),
        ("record", lambda f: f.write_bytes(b"\xff\xfe\x00"), "is not a text file"),
        ("record", lambda f: f.unlink(), "is not a tuning database; missing"),
    ],
)
def test_corrupt_database_files_are_named(tmp_path, which, damage, msg):
    folder, workloads, records = _copy_shipped(tmp_path)
    damage(workloads if which == "workload" else records)
    with pytest.raises(ValueError, match="tuning.load_database: .*" + msg):
        tuning.load_database(folder)


def test_load_database_refuses_a_file_and_keeps_tvm_errors_named(tmp_path):
    folder, workloads, records = _copy_shipped(tmp_path)
    with pytest.raises(ValueError, match="path=.* is not a folder"):
        tuning.load_database(workloads)
    line = records.read_text().splitlines()[0]
    index, (trace, secs, target, args) = __import__("json").loads(line)
    bad = [index, [[["NoSuchInstruction"]], secs, target, args]]
    bad = __import__("json").dumps(bad)
    records.write_text(bad + "\n")
    with pytest.raises(ValueError, match="tuning.load_database: TVM cannot read"):
        tuning.load_database(folder)
