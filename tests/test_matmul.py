import numpy as np
import pytest
import tvm

from d2lcc import matmul
from d2lcc.machine import Machine

SHAPE = matmul.KernelShape(lanes=8, registers=16, mr=6, nr=16)  # AVX2's: any x86-64


def _machine(*features, arch="x86_64"):
    return Machine(cpu="test", arch=arch, cores=2, features=features, python="3",
                   tvm="0", tvm_ffi="0")


def _check_product(sch, n, seed=0):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    c = tvm.runtime.tensor(np.zeros((n, n), np.float32))
    matmul.build(sch)(tvm.runtime.tensor(a), tvm.runtime.tensor(b), c)
    np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("step", matmul.STEPS)
def test_every_step_computes_a_matmul(step):
    _check_product(matmul.schedule(step, 64, SHAPE), 64)


def test_builders_chain_the_teaching_steps():
    # tiled -> cache_write -> packed_b each add what their step says.
    assert "T.parallel" in matmul.parallel(32).mod.script()
    assert "C_local" in matmul.cache_write(32, 4, 16).mod.script()
    text = matmul.packed_b(32, 4, 16).mod.script()
    assert "B_packed" in text and "C_local" in text
    loops = matmul.reorder(32).get_loops("C")
    assert len(loops) == 3


def test_matmul_te_packing_stages():
    plain = matmul.matmul_te(32).script()
    assert "A_packed" not in plain and "B_packed" not in plain
    text = matmul.matmul_te(32, pack_b=16, pack_a=4).script()
    assert "B_packed" in text and "A_packed" in text
    assert "C_pad" in matmul.matmul_te(32, pack_b=16, pack_a=5).script()


def test_kernel_shape_fits_the_register_file():
    avx512 = matmul.kernel_shape(_machine("avx2", "fma", "avx512f"))
    avx2 = matmul.kernel_shape(_machine("avx2", "fma"))
    neon = matmul.kernel_shape(_machine("neon", arch="aarch64"))
    assert (avx512.mr, avx512.nr) == (6, 64)
    assert (avx2.mr, avx2.nr) == (6, 16)
    assert (neon.mr, neon.nr) == (6, 16)
    for s in (avx512, avx2, neon):
        assert s.registers_used <= s.registers and s.fmas_per_load > 1.4


@pytest.mark.parametrize("mr", [6, 5])
def test_micro_kernel_pads_rows_that_do_not_divide(mr):
    sch = matmul.micro_kernel(64, mr, 16)
    assert "C_pad_local" in sch.mod.script()
    _check_product(sch, 64, seed=mr)


def test_micro_kernel_vectorizes_the_block():
    text = matmul.micro_kernel(64, 4, 16).mod.script()
    assert "T.vectorized" in text and "T.unroll" in text and "C_local" in text


@pytest.mark.parametrize("call, error, match", [
    (lambda: matmul.tiled(64, 0, 8), ValueError, "matmul.tiled: mr=0 must be >= 1"),
    (lambda: matmul.tiled(-64, 4, 8), ValueError, "matmul.tiled: n=-64 must be >= 1"),
    (lambda: matmul.tiled(64, 4, 5), ValueError, "n=64 must be a multiple of nr=5"),
    (lambda: matmul.tiled(64, 3, 8), ValueError, "n=64 must be a multiple of mr=3"),
    (lambda: matmul.tiled(64, 4, 8, pack_b=-1), ValueError, "pack_b=-1"),
    (lambda: matmul.cache_write(64, 4, 0), ValueError, "nr=0"),
    (lambda: matmul.packed_b(64, 100, 16), ValueError, "mr=100 must be <= 64"),
    (lambda: matmul.micro_kernel(60, 4, 16), ValueError, "n=60 must be a multiple"),
    (lambda: matmul.micro_kernel(64, 0, 16), ValueError, "mr=0"),
    (lambda: matmul.micro_kernel(64, 4, 2**20), ValueError, "nr=1048576 must be <="),
    (lambda: matmul.micro_kernel(2**20, 4, 16), ValueError, "n=1048576 must be <="),
    (lambda: matmul.default(64, pack_b=5), ValueError, "multiple of pack_b=5"),
    (lambda: matmul.default(64.0), TypeError, "matmul.default: n must be an int"),
    (lambda: matmul.reorder(None), TypeError, "matmul.reorder: n must be an int"),
    (lambda: matmul.parallel(True), TypeError, "matmul.parallel: n must be an int"),
    (lambda: matmul.schedule("fast", 64), ValueError, "step='fast'"),
    (lambda: matmul.schedule("tiled", 0), ValueError, "n=0"),
    (lambda: matmul.schedule("tiled", 64, (6, 16)), TypeError, "shape must be"),
    (lambda: matmul.build("C = A @ B"), TypeError, "matmul.build: sch must be"),
    (lambda: matmul.build(matmul.default(8), target="llvm"), TypeError, "target must"),
    (lambda: matmul.KernelShape(8, 16, 6, 12), ValueError, "nr=12 must be a multiple"),
    (lambda: matmul.KernelShape(0, 16, 6, 16), ValueError, "lanes=0"),
    (lambda: matmul.kernel_shape("avx2"), TypeError, "kernel_shape: machine must be"),
])
def test_bad_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()
