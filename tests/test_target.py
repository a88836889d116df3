import pytest
import tvm

from d2lcc import target


def test_host_target_is_llvm_with_cores():
    t = target.host()
    assert isinstance(t, tvm.target.Target)
    assert t.kind.name == "llvm"
    assert int(t.attrs["num-cores"]) >= 1
    assert int(target.host(num_cores=1).attrs["num-cores"]) == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_host_rejects_bad_core_count(bad):
    with pytest.raises(ValueError, match="num_cores"):
        target.host(num_cores=bad)


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


def test_make_rejects_strings_and_missing_kind():
    with pytest.raises(TypeError, match="string"):
        target.make("llvm -mcpu=skylake")
    with pytest.raises(ValueError, match="no 'kind'"):
        target.make({"mcpu": "skylake"})
    with pytest.raises(TypeError, match="must be a dict"):
        target.make(42)


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
        "assert tvm.runtime.num_threads() == d2lcc.env().cores, tvm.runtime.num_threads()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
