import os
import subprocess
import sys

import numpy as np
import pytest
import tvm

from d2lcc import cpu
from d2lcc.machine import Machine


def _machine(*features, arch="x86_64"):
    return Machine(cpu="test", arch=arch, cores=2, features=features, python="3",
                   tvm="0", tvm_ffi="0")


@pytest.mark.parametrize("features, arch, lanes, registers", [
    (("avx2", "fma", "avx512f"), "x86_64", 16, 32),  # AVX-512
    (("avx2", "fma"), "x86_64", 8, 16),  # AVX2
    ((), "x86_64", 4, 16),  # SSE only
    (("neon",), "aarch64", 4, 32),  # NEON
    (("neon", "dotprod"), "arm64", 4, 32),  # Apple silicon
])
def test_vector_lanes_and_registers_follow_the_isa(features, arch, lanes, registers):
    machine = _machine(*features, arch=arch)
    assert cpu.vector_lanes(machine) == lanes
    assert cpu.vector_lanes(machine, "int8") == 4 * lanes
    assert cpu.vector_lanes(machine, "float64") == lanes // 2
    assert cpu.vector_registers(machine) == registers


def test_vector_lanes_bad_input():
    with pytest.raises(ValueError, match="dtype='bfloat3'"):
        cpu.vector_lanes(_machine("avx2"), "bfloat3")
    with pytest.raises(TypeError, match="machine must be"):
        cpu.vector_lanes("avx2")
    with pytest.raises(TypeError, match="machine must be"):
        cpu.vector_registers(16)


def _sysfs(root, entries):
    for name, (level, kind, size) in entries.items():
        d = root / name
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")


def test_cache_sizes_reads_sysfs(tmp_path):
    _sysfs(tmp_path, {"index0": ("1", "Data", "48K"),
                      "index1": ("1", "Instruction", "32K"),
                      "index2": ("2", "Unified", "2048K"),
                      "index3": ("3", "Unified", "32M"),
                      "index4": ("4", "Unified", "garbage")})
    expected = {"L1d": 48 << 10, "L2": 2 << 20, "L3": 32 << 20}
    assert cpu.cache_sizes(str(tmp_path)) == expected
    assert cpu.cache_sizes(str(tmp_path / "missing")) == {}
    with pytest.raises(TypeError, match="root must be a str"):
        cpu.cache_sizes(None)


def test_stream_bytes_overflows_the_caches_within_a_memory_budget():
    caches = {"L1d": 32 << 10, "L2": 1 << 20, "L3": 32 << 20}
    assert cpu.stream_bytes("DRAM", caches, cores=2) == 64 << 20  # the floor
    big = {**caches, "L3": 480 << 20}
    assert cpu.stream_bytes("DRAM", big, cores=2) == 512 << 20  # the ceiling
    mid = {**caches, "L3": 100 << 20}
    assert cpu.stream_bytes("DRAM", mid, cores=2) == 200 << 20  # twice the L3
    assert cpu.stream_bytes("DRAM", {}, cores=2) == 64 << 20  # no sysfs
    # Three arrays fit in half of the level (L2: one per core).
    assert 6 * cpu.stream_bytes("L3", caches, cores=2) <= 32 << 20
    assert (4 << 20) - 6 < 6 * cpu.stream_bytes("L2", caches, cores=4) <= 4 << 20
    with pytest.raises(ValueError, match="level='L9'"):
        cpu.stream_bytes("L9", caches)
    with pytest.raises(ValueError, match="level='L3' is not among"):
        cpu.stream_bytes("L3", {"L2": 1 << 20})
    with pytest.raises(ValueError, match=r"caches\['L3'\]=-1"):
        cpu.stream_bytes("DRAM", {"L3": -1})
    with pytest.raises(TypeError, match="caches must be a dict"):
        cpu.stream_bytes("DRAM", [1, 2])
    with pytest.raises(ValueError, match="cores=0"):
        cpu.stream_bytes("L2", caches, cores=0)


def test_fma_kernel_computes_the_recurrence():
    iters, lanes = 5, 8
    kernel = cpu.fma_kernel(2, 3, lanes, iters)
    f = tvm.compile(tvm.IRModule({"main": kernel}), target={"kind": "llvm"})
    x = np.random.default_rng(0).uniform(0.1, 0.9, lanes).astype(np.float32)
    out = tvm.runtime.tensor(np.zeros((2, 3, lanes), np.float32))
    f(out, tvm.runtime.tensor(x))
    acc = x.copy()
    for _ in range(iters):
        acc = acc * x + x
    expected = np.broadcast_to(acc, (2, 3, lanes))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_copy_kernel_copies_and_adds():
    n = 8 * 64 * 3
    lib = tvm.compile(tvm.IRModule({"main": cpu.copy_kernel(n, 8)}),
                      target={"kind": "llvm"})
    a = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    b = tvm.runtime.tensor(np.zeros(n, np.float32))
    lib(tvm.runtime.tensor(a), b)
    np.testing.assert_array_equal(b.numpy(), a)
    add = tvm.compile(tvm.IRModule({"main": cpu.copy_kernel(n, 8, inputs=2)}),
                      target={"kind": "llvm"})
    add(tvm.runtime.tensor(a), tvm.runtime.tensor(2 * a), b)
    np.testing.assert_allclose(b.numpy(), 3 * a)


def test_measurements_are_positive_and_bounded():
    assert cpu.peak_gflops(iters=1 << 10, repeat=2) > 0
    assert cpu.bandwidth_gbps(nbytes=1 << 20, repeat=2) > 0


@pytest.mark.parametrize("call, error, match", [
    (lambda: cpu.peak_gflops(iters=2**40), ValueError, "iters=1099511627776 must be"),
    (lambda: cpu.peak_gflops(accumulators=0), ValueError, "accumulators=0"),
    (lambda: cpu.peak_gflops(threads=1024, accumulators=256, iters=1 << 24),
     ValueError, "iters=16777216 with threads=1024"),
    (lambda: cpu.peak_gflops(threads=-1), ValueError, "threads=-1"),
    (lambda: cpu.peak_gflops(lanes=1.5), TypeError, "lanes must be an int"),
    (lambda: cpu.peak_gflops(repeat=True), TypeError, "repeat must be an int"),
    (lambda: cpu.bandwidth_gbps(nbytes=16), ValueError, "nbytes=16 must be >="),
    (lambda: cpu.bandwidth_gbps(nbytes=1 << 50), ValueError, "nbytes=.* must be <="),
    (lambda: cpu.bandwidth_gbps(nbytes="1G"), TypeError, "nbytes must be an int"),
    (lambda: cpu.bandwidth_gbps(repeat=0), ValueError, "repeat=0"),
    (lambda: cpu.use_all_cores(0), ValueError, "cores=0"),
    (lambda: cpu.use_all_cores(2**32 + 2), ValueError, "cores=4294967298 must be <="),
    (lambda: cpu.use_all_cores(2.0), TypeError, "cores must be an int"),
])
def test_bad_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_roofline():
    roof = cpu.Roofline(peak_gflops=100.0, bandwidth_gbps=20.0)
    assert roof.ridge == 5.0
    assert roof.attainable(1.0) == 20.0 and roof.attainable(50.0) == 100.0
    np.testing.assert_allclose(roof.attainable(np.array([0.5, 5.0, 10.0])),
                               [10.0, 100.0, 100.0])
    for bad in (0.0, -1.0, float("nan"), float("inf"), np.array([])):
        with pytest.raises(ValueError, match="intensity must be finite and > 0"):
            roof.attainable(bad)
    with pytest.raises(ValueError, match="bandwidth_gbps=0.0 must be > 0"):
        cpu.Roofline(10.0, 0.0)
    with pytest.raises(ValueError, match="peak_gflops=nan"):
        cpu.Roofline(float("nan"), 1.0)
    with pytest.raises(TypeError, match="peak_gflops must be a real number"):
        cpu.Roofline(None, 1.0)
    assert cpu.intensity(8.0, 4.0) == 2.0
    with pytest.raises(ValueError, match="nbytes=0.0 must be > 0"):
        cpu.intensity(1.0, 0)
    with pytest.raises(ValueError, match="flops=inf"):
        cpu.intensity(float("inf"), 1.0)


def test_plot_roofline_marks_points_and_a_second_roof():
    import matplotlib

    matplotlib.use("Agg")
    ax = cpu.plot_roofline(cpu.Roofline(100.0, 20.0), {"vector add": (1 / 12, 1.5)})
    assert [line.get_label() for line in ax.lines] == ["roofline", "vector add"]
    assert ax.get_xscale() == "log" and "FLOPs/byte" in ax.get_xlabel()
    cpu.plot_roofline(cpu.Roofline(100.0, 80.0), ax=ax, label="L3")
    assert [line.get_label() for line in ax.lines][-1] == "L3"
    assert ax.lines[-1].get_linestyle() == "--"
    with pytest.raises(TypeError, match="roof must be a cpu.Roofline"):
        cpu.plot_roofline((100.0, 20.0))
    with pytest.raises(TypeError, match=r"points\['x'\] must be a pair"):
        cpu.plot_roofline(cpu.Roofline(100.0, 20.0), {"x": 3.0})
    with pytest.raises(ValueError, match=r"points\['x'\]\[1\]=-1.0 must be > 0"):
        cpu.plot_roofline(cpu.Roofline(100.0, 20.0), {"x": (1.0, -1.0)})


def _fresh(code, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], check=True, env={**base, **env},
                         capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_use_all_cores_sizes_the_pool_in_a_fresh_process():
    from d2lcc import machine

    # Unset, TVM takes half the hardware threads on x86; the call must give all cores.
    code = "from d2lcc import cpu; print(cpu.use_all_cores())"
    assert _fresh(code) == machine.cores()
    assert _fresh("from d2lcc import cpu; print(cpu.use_all_cores(1))") == 1
    # A value the user set wins, and the returned pool size says so.
    assert _fresh("from d2lcc import cpu; print(cpu.use_all_cores(2))",
                  TVM_NUM_THREADS="1") == 1
