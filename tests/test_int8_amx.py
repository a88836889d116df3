"""Tests of d2lcc.int8.amx: the AMX kernel compiles to tile instructions anywhere,
its weight layout is right (checked on a NumPy model of ``tdpbusd``), and it runs
bit-exactly where d2lcc.env() has amx_int8.
"""

import numpy as np
import pytest

import d2lcc
from d2lcc import asm
from d2lcc.int8 import amx, x86

tvm = pytest.importorskip("tvm")

HAS_AMX = d2lcc.env().has("amx_int8")
needs_amx = pytest.mark.skipif(not HAS_AMX, reason="this CPU has no AMX int8")


def _asm(m, n, k, parallel=True):
    lib = tvm.compile(amx.matmul(m, n, k, parallel), target=d2lcc.target.named(
        "sapphirerapids"))
    return lib.jit().inspect_source("asm")


def test_kernel_compiles_to_tile_instructions_for_sapphire_rapids():
    text = _asm(64, 64, 256)
    counts = asm.mnemonic_counts(text)
    for name in ("ldtilecfg", "tilerelease"):
        assert counts.get(name, 0) >= 1, name
    for name in ("tilezero tmm", "tileloadd tmm", "tdpbusd tmm", "tilestored tmm"):
        assert counts.get(name, 0) >= 4, name
    # the k loop: 2 tiles of A, 2 of B, 4 products, per 64 bytes of k
    loop = asm.mnemonic_counts("\n".join(asm.hot_loop(text, "tdpbusd")))
    assert loop["tdpbusd tmm"] % 4 == 0
    assert loop["tileloadd tmm"] == loop["tdpbusd tmm"]


def test_serial_kernel_launches_no_threads():
    assert "TVMBackendParallelLaunch" in _asm(64, 64, 64)
    assert "TVMBackendParallelLaunch" not in _asm(64, 64, 64, parallel=False)


def test_supports_reads_the_targets_features():
    assert amx.supports(d2lcc.target.named("sapphirerapids"))
    for name in ("cascadelake", "alderlake", "haswell", "graviton2"):
        assert not amx.supports(d2lcc.target.named(name)), name
    assert amx.supports() == (HAS_AMX and amx.supports(d2lcc.target.host()))


def _tdpbusd(c, a_tile, b_tile):
    """NumPy model of tdpbusd: C[m, n] += sum_q,i A[m, 4q + i] * B[q, 4n + i]."""
    a = a_tile.astype(np.int64).reshape(16, 16, 4)  # m, q, i
    b = b_tile.astype(np.int64).reshape(16, 16, 4)  # q, n, i
    return c + np.einsum("mqi,qni->mn", a, b)


def test_packed_weight_rows_are_tdpbusd_weight_tiles():
    """16 consecutive rows of one column block of pack_weight(b, 16) are a B tile."""
    rng = np.random.default_rng(0)
    m, n, k = 32, 32, 128
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    packed = x86.pack_weight(b, 16).reshape(n // 16, k // 4, 64)
    c = np.zeros((m, n), np.int64)
    for i in range(0, m, 16):
        for j in range(n // 16):
            for q in range(0, k // 4, 16):
                c[i:i + 16, 16 * j:16 * j + 16] = _tdpbusd(
                    c[i:i + 16, 16 * j:16 * j + 16], a[i:i + 16, 4 * q:4 * q + 64],
                    packed[j, q:q + 16])
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


def test_request_permission_is_refused_without_amx():
    granted = amx.request_permission()
    assert isinstance(granted, bool)
    if not HAS_AMX:
        assert not granted


@pytest.mark.skipif(HAS_AMX, reason="this CPU has AMX")
def test_multiply_refuses_clearly_without_amx():
    with pytest.raises(RuntimeError, match="int8.amx.multiply: this CPU has no AMX"):
        amx.multiply(np.zeros((32, 64), np.uint8), np.zeros((64, 32), np.int8))


@needs_amx
@pytest.mark.parametrize("m, n, k", [(32, 32, 64), (33, 70, 100), (128, 96, 320)])
def test_multiply_is_exact_with_full_range_weights(m, n, k):
    rng = np.random.default_rng(m)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    for parallel in (True, False):
        np.testing.assert_array_equal(amx.multiply(a, b, parallel),
                                      a.astype(np.int32) @ b.astype(np.int32))


@needs_amx
def test_multiply_extremes_do_not_saturate():
    a = np.full((32, 256), 255, np.uint8)
    b = np.full((256, 32), -128, np.int8)
    assert (amx.multiply(a, b) == 255 * -128 * 256).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(m=33, n=32, k=64), "m=33"), (dict(m=32, n=48, k=64), "n=48"),
    (dict(m=32, n=32, k=96), "k=96"), (dict(m=0, n=32, k=64), "m=0"),
    (dict(m=32, n=32, k=2**20), "k="),
])
def test_matmul_refuses_sizes_that_are_not_whole_tiles(kwargs, match):
    with pytest.raises(ValueError, match=f"int8.amx.matmul: {match}"):
        amx.matmul(**kwargs)


def test_bad_arguments_name_the_function_and_argument():
    with pytest.raises(TypeError, match="int8.amx.matmul: parallel"):
        amx.matmul(32, 32, 64, parallel="yes")
    with pytest.raises(TypeError, match="int8.amx.multiply: a"):
        amx.multiply(None, np.zeros((64, 32), np.int8))
    with pytest.raises((TypeError, ValueError), match="int8.amx.multiply: b"):
        amx.multiply(np.zeros((32, 64), np.uint8), np.zeros((64, 32), np.float32))
    with pytest.raises(ValueError, match="int8.amx.multiply: a is"):
        amx.multiply(np.zeros((32, 64), np.uint8), np.zeros((60, 32), np.int8))
    with pytest.raises(TypeError, match="int8.amx.supports: target"):
        amx.supports(3)
