import numpy as np
import pytest
import tvm

from d2lcc import cpu
from d2lcc.machine import Machine


def _machine(*features, arch="x86_64"):
    return Machine(cpu="test", arch=arch, cores=2, features=features, python="3", tvm="0", tvm_ffi="0")


def test_vector_lanes_and_registers_follow_the_isa():
    assert cpu.vector_lanes(_machine("avx2", "fma", "avx512f")) == 16
    assert cpu.vector_lanes(_machine("avx2", "fma")) == 8
    assert cpu.vector_lanes(_machine("avx2"), "int8") == 32
    assert cpu.vector_lanes(_machine("neon", arch="aarch64")) == 4
    assert cpu.vector_registers(_machine("avx2", "avx512f")) == 32
    assert cpu.vector_registers(_machine("avx2")) == 16
    assert cpu.vector_registers(_machine("neon", arch="aarch64")) == 32
    with pytest.raises(ValueError, match="dtype='bfloat3'"):
        cpu.vector_lanes(_machine("avx2"), "bfloat3")


def test_cache_sizes_reads_sysfs(tmp_path):
    for name, (level, kind, size) in {
        "index0": ("1", "Data", "48K"),
        "index1": ("1", "Instruction", "32K"),
        "index2": ("2", "Unified", "2048K"),
        "index3": ("3", "Unified", "32M"),
    }.items():
        d = tmp_path / name
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert cpu.cache_sizes(str(tmp_path)) == {"L1d": 48 << 10, "L2": 2 << 20, "L3": 32 << 20}
    assert cpu.cache_sizes(str(tmp_path / "missing")) == {}


def test_fma_kernel_computes_the_recurrence():
    iters, lanes = 5, 8
    f = tvm.compile(tvm.IRModule({"main": cpu.fma_kernel(2, 3, lanes, iters)}), target={"kind": "llvm"})
    x = np.random.default_rng(0).uniform(0.1, 0.9, lanes).astype(np.float32)
    out = tvm.runtime.tensor(np.zeros((2, 3, lanes), np.float32))
    f(out, tvm.runtime.tensor(x))
    acc = x.copy()
    for _ in range(iters):
        acc = acc * x + x
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(acc, (2, 3, lanes)), rtol=1e-6)
    with pytest.raises(ValueError, match="accumulators=0"):
        cpu.fma_kernel(1, 0, 8, 1)


def test_copy_kernel_copies():
    n = 8 * 64 * 3
    f = tvm.compile(tvm.IRModule({"main": cpu.copy_kernel(n, 8)}), target={"kind": "llvm"})
    a = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    b = tvm.runtime.tensor(np.zeros(n, np.float32))
    f(tvm.runtime.tensor(a), b)
    np.testing.assert_array_equal(b.numpy(), a)
    g = tvm.compile(tvm.IRModule({"main": cpu.copy_kernel(n, 8, inputs=2)}), target={"kind": "llvm"})
    g(tvm.runtime.tensor(a), tvm.runtime.tensor(2 * a), b)
    np.testing.assert_allclose(b.numpy(), 3 * a)
    with pytest.raises(ValueError, match="n=100"):
        cpu.copy_kernel(100, 8)
    with pytest.raises(ValueError, match="inputs=3"):
        cpu.copy_kernel(n, 8, inputs=3)


def test_measurements_are_positive():
    assert cpu.peak_gflops(iters=1 << 10, repeat=2) > 0
    assert cpu.bandwidth_gbps(nbytes=1 << 20, repeat=2) > 0
    with pytest.raises(ValueError, match="nbytes=16"):
        cpu.bandwidth_gbps(nbytes=16)


def test_roofline():
    roof = cpu.Roofline(peak_gflops=100.0, bandwidth_gbps=20.0)
    assert roof.ridge == 5.0
    assert roof.attainable(1.0) == 20.0 and roof.attainable(50.0) == 100.0
    np.testing.assert_allclose(roof.attainable(np.array([0.5, 5.0, 10.0])), [10.0, 100.0, 100.0])
    with pytest.raises(ValueError, match="intensity must be > 0"):
        roof.attainable(0.0)
    with pytest.raises(ValueError, match="bandwidth_gbps=0"):
        cpu.Roofline(10.0, 0.0)
    assert cpu.intensity(8.0, 4.0) == 2.0
    with pytest.raises(ValueError, match="nbytes=0"):
        cpu.intensity(1.0, 0)


def test_plot_roofline_marks_points():
    import matplotlib

    matplotlib.use("Agg")
    ax = cpu.plot_roofline(cpu.Roofline(100.0, 20.0), {"vector add": (1 / 12, 1.5)})
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["roofline", "vector add"]
    assert ax.get_xscale() == "log" and "FLOPs/byte" in ax.get_xlabel()


def test_use_all_cores_sets_the_pool_size():
    # The pool may already run in this test process; the call must at least
    # leave TVM_NUM_THREADS set and report a positive pool size.
    assert cpu.use_all_cores() >= 1
    import os

    assert int(os.environ["TVM_NUM_THREADS"]) >= 1
    with pytest.raises(ValueError, match="cores=0"):
        cpu.use_all_cores(0)


def test_use_all_cores_in_a_fresh_process():
    import os
    import subprocess
    import sys

    code = "from d2lcc import cpu, machine; assert cpu.use_all_cores() == machine.cores()"
    env = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
