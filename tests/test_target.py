import pytest
import tvm

from d2lcc import target


def test_host_target_is_llvm_with_cores():
    t = target.host()
    assert isinstance(t, tvm.target.Target)
    assert t.kind.name == "llvm"
    assert int(t.attrs["num-cores"]) >= 1
    assert int(target.host(num_cores=1).attrs["num-cores"]) == 1


@pytest.mark.parametrize(
    "bad, exc",
    [(0, ValueError), (-2, ValueError), (2**40, ValueError), (1.5, TypeError),
     (True, TypeError), ("4", TypeError), (float("nan"), TypeError)],
)
def test_host_rejects_bad_core_count(bad, exc):
    with pytest.raises(exc, match="target.host: num_cores"):
        target.host(num_cores=bad)
    with pytest.raises(exc, match="target.host: num_cores"):
        target.host_spec(num_cores=bad)


def test_host_accepts_up_to_max_cores():
    t = target.host(num_cores=target.MAX_CORES)
    assert int(t.attrs["num-cores"]) == target.MAX_CORES
    with pytest.raises(ValueError, match=f"must be <= {target.MAX_CORES}"):
        target.host(num_cores=target.MAX_CORES + 1)


def test_num_cores_does_not_set_the_parallel_task_count():
    """Parallel loops ask the runtime for 0 tasks (one per pool thread) whatever
    ``num-cores`` says; TVM_NUM_THREADS, not the target, sizes the pool."""
    import re

    from tvm import te

    a = te.placeholder((64,), "float32", name="a")
    b = te.compute((64,), lambda i: a[i] * 2.0, name="b")
    sch = tvm.s_tir.Schedule(te.create_prim_func([a, b]))
    sch.parallel(sch.get_loops("b")[0])
    launch = re.compile(r"call i32 %\w+\(ptr nonnull @__tvm_parallel_lambda\w*, "
                        r"ptr [^,]+, i32 (\d+)\)")
    for cores in (1, 8):
        ll = tvm.tirx.build(sch.mod, target=target.host(cores)).inspect_source("ll")
        assert "@__TVMBackendParallelLaunch" in ll
        assert launch.findall(ll) == ["0"], cores


def test_graviton2_is_neoverse_n1_with_dotprod():
    t = target.graviton2()
    assert str(t.attrs["mtriple"]).startswith("aarch64")
    assert str(t.attrs["mcpu"]) == "neoverse-n1"
    assert bool(t.features.has_dotprod) and bool(t.features.has_asimd)


def test_cascadelake_target():
    t = target.cascadelake()
    assert str(t.attrs["mcpu"]) == "cascadelake"
    assert str(t.attrs["mtriple"]).startswith("x86_64")


def test_named_rejects_unknown():
    with pytest.raises(ValueError, match="unknown name='tpu'"):
        target.named("tpu")
    with pytest.raises(TypeError, match="target.named: name must be a str"):
        target.named(None)


def test_make_rejects_strings_and_missing_kind():
    with pytest.raises(TypeError, match="string"):
        target.make("llvm -mcpu=skylake")
    with pytest.raises(ValueError, match="no 'kind'"):
        target.make({"mcpu": "skylake"})
    with pytest.raises(TypeError, match="must be a dict"):
        target.make(42)
    with pytest.raises(TypeError, match=r"target.make: spec\['kind'\] must be a str"):
        target.make({"kind": 3})
    with pytest.raises(ValueError, match=r"spec\['num-cores'\]=0 must be >= 1"):
        target.make({"kind": "llvm", "num-cores": 0})
    with pytest.raises(ValueError, match="target.make: .* not a valid target: .*'foo'"):
        target.make({"kind": "llvm", "foo": 1})
    with pytest.raises(ValueError, match="not a valid target: .*nope"):
        target.make({"kind": "nope"})


def test_host_target_compiles_and_runs():
    import numpy as np
    from tvm import te

    a = te.placeholder((16,), "float32", name="a")
    b = te.compute((16,), lambda i: a[i] + 1.0, name="b")
    f = tvm.compile(te.create_prim_func([a, b]), target=target.host())
    dev = tvm.cpu()
    x = np.random.default_rng(0).standard_normal(16).astype("float32")
    y = tvm.runtime.tensor(np.empty(16, "float32"), dev)
    f(tvm.runtime.tensor(x, dev), y)
    np.testing.assert_allclose(y.numpy(), x + 1)


def test_host_gives_tvm_a_thread_per_core():
    import subprocess
    import sys

    code = (
        "import os; os.environ.pop('TVM_NUM_THREADS', None)\n"
        "import d2lcc, tvm\n"
        "d2lcc.target.host()\n"
        "assert os.environ['TVM_NUM_THREADS'] == str(d2lcc.env().cores)\n"
        "n = tvm.runtime.num_threads()\n"
        "assert n == d2lcc.env().cores, n\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pool_size_comes_from_tvm_num_threads_not_num_cores():
    import os
    import subprocess
    import sys

    code = (
        "import d2lcc, tvm\n"
        "t = d2lcc.target.host(num_cores=8)\n"
        "assert int(t.attrs['num-cores']) == 8\n"
        "n = tvm.runtime.num_threads()\n"
        "assert n == 1, n\n"
    )
    env = dict(os.environ, TVM_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_resolve_takes_targets_dicts_and_none():
    import tvm

    llvm = target.resolve({"kind": "llvm"}, "f")
    assert isinstance(llvm, tvm.target.Target) and target.resolve(llvm, "f") is llvm
    assert target.resolve(None, "f").kind.name == "llvm"
    with pytest.raises(TypeError, match="f: target must be a tvm.target.Target or a "
                                        "dict, got NoneType"):
        target.resolve(None, "f", default_host=False)
    with pytest.raises(TypeError, match="f: target must be a tvm.target.Target, a "
                                        "dict or None, got str"):
        target.resolve("llvm", "f")
    with pytest.raises(ValueError, match="f: target=.* is not valid"):
        target.resolve({"mcpu": "x"}, "f")


@pytest.mark.parametrize("name, mcpu", [("haswell", "haswell"),
                                        ("skylake_avx512", "skylake-avx512"),
                                        ("alderlake", "alderlake"),
                                        ("sapphirerapids", "sapphirerapids")])
def test_named_x86_targets(name, mcpu):
    t = target.named(name)
    assert str(t.kind.name) == "llvm" and str(t.attrs["mcpu"]) == mcpu
    assert str(t.attrs["mtriple"]) == "x86_64-linux-gnu"


def test_haswell_and_sapphirerapids_helpers():
    assert str(target.haswell().attrs["mcpu"]) == "haswell"
    assert str(target.sapphirerapids().attrs["mcpu"]) == "sapphirerapids"


def test_trainium_target_is_trn():
    assert str(target.named("trainium").kind.name) == "trn"


@pytest.mark.parametrize("name, lanes", [("haswell", 8), ("cascadelake", 16),
                                         ("alderlake", 8), ("graviton2", 4),
                                         ("sapphirerapids", 16)])
def test_float32_lanes_come_from_the_target(name, lanes):
    assert target.float32_lanes(target.named(name)) == lanes


def test_float32_lanes_of_the_host_match_the_machine():
    from d2lcc import cpu

    assert target.float32_lanes() == cpu.vector_lanes()


def test_float32_lanes_refuses_non_cpu_targets():
    with pytest.raises(ValueError, match="float32_lanes: target=.*not a CPU"):
        target.float32_lanes(target.named("trainium"))
    with pytest.raises(TypeError, match="float32_lanes: target"):
        target.float32_lanes("llvm")
