import numpy as np
import pytest
import tvm

from d2lcc import matmul
from d2lcc.machine import Machine

SHAPE = matmul.KernelShape(lanes=8, registers=16, mr=6, nr=16)  # AVX2's block: runs on any x86-64


def _machine(*features, arch="x86_64"):
    return Machine(cpu="test", arch=arch, cores=2, features=features, python="3", tvm="0", tvm_ffi="0")


@pytest.mark.parametrize("step", matmul.STEPS)
def test_every_step_computes_a_matmul(step):
    n = 64
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    f = matmul.build(matmul.schedule(step, n, SHAPE))
    c = tvm.runtime.tensor(np.zeros((n, n), np.float32))
    f(tvm.runtime.tensor(a), tvm.runtime.tensor(b), c)
    np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-4, atol=1e-4)


def test_matmul_te_packing_stages():
    plain = matmul.matmul_te(32).script()
    assert "A_packed" not in plain and "B_packed" not in plain
    text = matmul.matmul_te(32, pack_b=16, pack_a=4).script()
    assert "B_packed" in text and "A_packed" in text
    with pytest.raises(ValueError, match="n=30 must be a multiple of 16"):
        matmul.matmul_te(30, pack_b=16)
    with pytest.raises(TypeError, match="n must be an int"):
        matmul.matmul_te(32.0)


def test_kernel_shape_fits_the_register_file():
    avx512 = matmul.kernel_shape(_machine("avx2", "fma", "avx512f"))
    avx2 = matmul.kernel_shape(_machine("avx2", "fma"))
    neon = matmul.kernel_shape(_machine("neon", arch="aarch64"))
    assert (avx512.mr, avx512.nr) == (6, 64) and (avx2.mr, avx2.nr) == (6, 16) and (neon.mr, neon.nr) == (6, 16)
    for s in (avx512, avx2, neon):
        assert s.registers_used <= s.registers and s.fmas_per_load > 1.4


@pytest.mark.parametrize("mr", [6, 5])
def test_micro_kernel_pads_rows_that_do_not_divide(mr):
    n = 64
    rng = np.random.default_rng(mr)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    sch = matmul.micro_kernel(n, mr, 16)
    assert "C_pad_local" in sch.mod.script()
    c = tvm.runtime.tensor(np.zeros((n, n), np.float32))
    matmul.build(sch)(tvm.runtime.tensor(a), tvm.runtime.tensor(b), c)
    np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-4, atol=1e-4)


def test_micro_kernel_vectorizes_the_block():
    text = matmul.micro_kernel(64, 4, 16).mod.script()
    assert "T.vectorized" in text and "T.unroll" in text and "C_local" in text
    with pytest.raises(ValueError, match="n=60 must be a multiple of 16"):
        matmul.micro_kernel(60, 4, 16)
    with pytest.raises(ValueError, match="unknown step='fast'"):
        matmul.schedule("fast", 64)
