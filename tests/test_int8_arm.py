"""d2lcc.int8.arm: the sdot/udot intrinsic, the packed int8 matmul, its schedule.

The packed computation is checked on this machine (it is plain TensorIR); the
tensorized kernel is compiled for Graviton2 and its assembly read here, and it
runs where AArch64 code can run (natively or under the emulator that
``tools/setup_aarch64.sh`` sets up), otherwise those tests are skipped with
the reason, also issued as a warning.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import d2lcc
from d2lcc import aarch64, artifacts, execute
from d2lcc.int8 import arm
from test_aarch64 import need_aarch64


def full_range(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape, dtype=dtype)


def sdot_count(executable):
    return artifacts.instruction_families(
        executable.mod.inspect_source("asm"))["sdot/udot"]


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_packed_computation_matches_numpy_here(dtype):
    rng = np.random.default_rng(0)
    m, n, k = 5, 12, 20
    a, b = full_range(rng, dtype, (m, k)), full_range(rng, dtype, (k, n))
    c = execute.run_prim_func(arm.matmul_int8_arm_te(m, n, k, dtype), a, b,
                              out_shape=(m, n), out_dtype="int32")
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))


def test_register_is_idempotent():
    import tvm

    assert arm.register("int8") == arm.register("int8") == arm.INTRINSICS["int8"]
    assert arm.register("uint8") == arm.INTRINSICS["uint8"]
    for name in arm.INTRINSICS.values():
        assert tvm.s_tir.TensorIntrin.get(name, allow_missing=True) is not None


@pytest.mark.parametrize("dtype, mr, nr", [("int8", 4, 16), ("uint8", 4, 16),
                                           ("int8", 2, 8)])
def test_kernel_uses_one_dot_per_accumulator(dtype, mr, nr):
    sch = arm.matmul(16, 32, 64, dtype, mr, nr)
    asm = arm.build(sch).mod.inspect_source("asm")
    instr = arm.INSTRUCTIONS[dtype]
    other = "udot" if instr == "sdot" else "sdot"
    lines = [ln.split()[0] for ln in asm.splitlines()
             if ln.startswith("\t") and ln.split()]
    # the k loop is unrolled by LLVM at most; it never holds a partial block
    assert lines.count(instr) > 0 and lines.count(instr) % (mr * nr // 4) == 0
    assert lines.count(other) == 0 and lines.count("smull") == 0


def test_build_refuses_targets_without_dotprod():
    sch = arm.matmul(8, 16, 16)
    bad = [d2lcc.target.host(),
           {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"},
           d2lcc.target.named("trainium")]
    for target in bad:
        with pytest.raises(ValueError, match="dot-product extension"):
            arm.build(sch, target)
    with_dot = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72",
                "mattr": ["+dotprod"]}
    assert sdot_count(arm.build(sch, with_dot)) > 0
    with pytest.raises(TypeError, match="sch"):
        arm.build("schedule")
    with pytest.raises(TypeError, match="target"):
        arm.build(sch, "neoverse-n1")


def test_max_k_is_the_last_safe_multiple_of_4():
    for dtype, largest in (("int8", 128 * 128), ("uint8", 255 * 255)):
        k = arm.MAX_K[dtype]
        assert k % 4 == 0 and k * largest <= 2**31 - 1 < (k + 4) * largest
        arm.matmul(4, 16, k, dtype)  # accepted
        with pytest.raises(ValueError, match="k="):
            arm.matmul(4, 16, k + 4, dtype)


def test_matmul_refuses_bad_arguments():
    cases = [(dict(dtype="float32"), ValueError, "dtype"),
             (dict(k=30), ValueError, "k=30"),
             (dict(nr=6), ValueError, "nr=6"),
             (dict(m=10), ValueError, "m=10"),
             (dict(n=40), ValueError, "n=40"),
             (dict(mr=0), ValueError, "mr=0"),
             (dict(m=2**40), ValueError, "m="),
             (dict(k=2.0), TypeError, "k must be an int"),
             (dict(m=None), TypeError, "m must be an int")]
    for change, error, words in cases:
        kwargs = dict(m=16, n=32, k=32) | change
        with pytest.raises(error, match=words):
            arm.matmul(**kwargs)
    with pytest.raises(ValueError, match="dtype"):
        arm.register("int4")


@pytest.fixture(scope="module")
def sdot_library(tmp_path_factory):
    need_aarch64()
    folder = tmp_path_factory.mktemp("int8_arm")
    libs = {}
    for dtype in ("int8", "uint8"):
        executable = arm.build(arm.matmul(12, 32, 68, dtype, mr=4, nr=16))
        libs[dtype] = aarch64.export(executable, folder / f"matmul_{dtype}.so")
    return libs


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_sdot_kernel_is_exact_on_aarch64(sdot_library, dtype):
    rng = np.random.default_rng(2)
    a, b = full_range(rng, dtype, (12, 68)), full_range(rng, dtype, (68, 32))
    info = np.iinfo(dtype)
    extreme = info.min if dtype == "int8" else info.max  # the largest products
    a[0], b[:, 0] = extreme, extreme
    (c,) = aarch64.run(sdot_library[dtype], a, b, outputs=[((12, 32), "int32")])
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))
    assert c[0, 0] == 68 * extreme * extreme


def test_sdot_kernel_dies_with_sigill_without_dotprod(sdot_library):
    how = need_aarch64()
    if how.mode != "emulated":
        pytest.skip("a native CPU cannot pretend to be a Cortex-A72")
    a, b = np.ones((12, 68), np.int8), np.ones((68, 32), np.int8)
    with pytest.raises(aarch64.Crashed) as info:
        aarch64.run(sdot_library["int8"], a, b, outputs=[((12, 32), "int32")],
                    cpu="cortex-a72")
    assert info.value.signal == "SIGILL"
    (c,) = aarch64.run(sdot_library["int8"], a, b, outputs=[((12, 32), "int32")],
                       cpu="max")  # QEMU's "max" CPU has every feature it knows
    assert (c == 68).all()


@pytest.mark.skipif(not os.environ.get("D2LCC_LONG"),
                    reason="imports all of TVM's tensor intrinsics (~35 s of CPU); "
                           "set D2LCC_LONG=1")
def test_tvm_builtin_sdot_intrinsic_gives_the_same_kernel():
    import tvm
    from tvm.s_tir.tensor_intrin import arm_cpu

    def kernel(intrin):
        sch = tvm.s_tir.Schedule(arm.matmul_int8_arm_te(16, 32, 64))
        arm.tensorize_neon_dot(sch, 4, 16, intrin)
        return arm.build(sch).mod.inspect_source("asm")

    theirs = kernel(arm_cpu.ARM_DOT_4x4_i8_SDOT_INTRIN)
    ours = kernel(arm.register("int8"))
    assert theirs.count("\tsdot\t") == ours.count("\tsdot\t") > 0
