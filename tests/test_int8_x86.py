"""Tests of d2lcc.int8.x86: intrinsics, packing, tensorized kernels, whole modules.

The AVX2 path runs wherever the machine has AVX2 and is checked bit-exactly
against NumPy int32; the VNNI paths are compiled for named targets and their
assembly is checked, and they run only where d2lcc.env() has the feature.
"""

import numpy as np
import pytest

import d2lcc
from d2lcc.int8 import x86

tvm = pytest.importorskip("tvm")

HOST_AVX2 = d2lcc.env().has("avx2")
needs_avx2 = pytest.mark.skipif(not HOST_AVX2, reason="this machine has no AVX2")
RUNS = {"avx2": HOST_AVX2, "avx_vnni": d2lcc.env().has("avx_vnni"),
        "avx512_vnni": d2lcc.env().has("avx512_vnni")}
TARGETS = {"avx2": "haswell", "avx_vnni": "alderlake", "avx512_vnni": "cascadelake"}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _run_matmul(isa_name, m, n, k, a, b):
    target = d2lcc.target.named(TARGETS[isa_name])
    rt = tvm.compile(x86.matmul(m, n, k, isa_name).mod, target=target).jit()
    lanes = x86.isa(isa_name).lanes
    c = tvm.runtime.tensor(np.zeros((m, n), np.int32))
    rt["main"](tvm.runtime.tensor(a), tvm.runtime.tensor(x86.pack_weight(b, lanes)), c)
    return c.numpy()


# --- ISA choice -------------------------------------------------------------------

@pytest.mark.parametrize("name, isa_name", [
    ("haswell", "avx2"), ("skylake_avx512", "avx2"), ("cascadelake", "avx512_vnni"),
    ("alderlake", "avx_vnni"), ("sapphirerapids", "avx512_vnni"),
    ("graviton2", None), ("trainium", None)])
def test_isa_of_named_targets(name, isa_name):
    assert x86.isa_of(d2lcc.target.named(name)) == isa_name


def test_isa_of_host_follows_the_machine():
    expected = ("avx512_vnni" if d2lcc.env().has("avx512_vnni") else
                "avx_vnni" if d2lcc.env().has("avx_vnni") else
                "avx2" if HOST_AVX2 else None)
    if d2lcc.env().arch != "x86_64":
        expected = None
    assert x86.isa_of() == expected


def test_isa_table():
    assert [x86.isa(n).lanes for n in x86.ISAS] == [16, 8, 8]
    assert x86.isa("avx2").nr == 16 and x86.isa("avx512_vnni").nr == 64
    with pytest.raises(ValueError, match="int8.x86.isa: name="):
        x86.isa("sse4")


# --- packing and the saturation rule --------------------------------------------

def test_pack_weight_layout():
    b = _rng().integers(-128, 128, (10, 16), dtype=np.int8)
    p = x86.pack_weight(b, 8)
    assert p.shape == (2, 3, 8, 4)
    for j, k, lane, q in [(0, 0, 0, 0), (1, 2, 7, 1), (1, 1, 3, 3)]:
        assert p[j, k, lane, q] == b[4 * k + q, 8 * j + lane]
    assert np.all(p[:, 2, :, 2:] == 0)  # K padded with zero rows


def test_pack_conv_weight_layout():
    w = _rng().integers(-128, 128, (16, 3, 3, 2), dtype=np.int8)
    p = x86.pack_conv_weight(w, 8)
    assert p.shape == (2, 1, 3, 2, 8, 4)
    assert p[1, 0, 2, 1, 5, 2] == w[13, 2, 2, 1] and np.all(p[..., 3] == 0)


@pytest.mark.parametrize("bad, error", [
    (dict(b=np.zeros((4, 12), np.int8), lanes=8), ValueError),
    (dict(b=np.zeros((4, 16), np.uint8), lanes=8), TypeError),
    (dict(b=np.zeros((4, 16), np.int8), lanes=4), ValueError)])
def test_pack_weight_refuses(bad, error):
    with pytest.raises(error, match="int8.x86.pack_weight"):
        x86.pack_weight(**bad)


def test_saturation_free_edges():
    assert x86.saturation_free(np.array([[-64], [-64]], np.int8))  # -32640 fits
    assert x86.saturation_free(np.array([[63], [63]], np.int8))
    assert not x86.saturation_free(np.array([[65], [64]], np.int8))  # 33 150
    assert not x86.saturation_free(np.array([[-65], [-64]], np.int8))
    assert x86.saturation_free(np.array([[127], [-128]], np.int8))  # opposite signs
    # pairs are (0, 1), (2, 3): 100 and 100 in different pairs are fine
    assert x86.saturation_free(np.array([[100], [0], [100], [0]], np.int8))
    assert x86.saturation_free(np.zeros((0, 3), np.int8))
    w = np.zeros((2, 2, 1, 1), np.int8)
    w[0, :, 0, 0] = 100
    assert x86.saturation_free(w, axis=0) and not x86.saturation_free(w, axis=1)


# --- the intrinsics and the matmul ----------------------------------------------

@needs_avx2
@pytest.mark.parametrize("m, n, k", [(64, 64, 64), (1, 32, 36), (12, 24, 128)])
def test_avx2_matmul_is_exact_for_7bit_weights(m, n, k):
    rng = _rng(m)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-64, 64, (k, n), dtype=np.int8)
    a[0, :] = 255  # the extremes
    b[:, 0] = -64
    expected = a.astype(np.int32) @ b.astype(np.int32)
    np.testing.assert_array_equal(_run_matmul("avx2", m, n, k, a, b), expected)


@needs_avx2
def test_avx2_matmul_saturates_full_range_weights_as_documented():
    a = np.full((1, 4), 255, np.uint8)
    b = np.full((4, 8), 127, np.int8)
    assert not x86.saturation_free(b)
    # each pair sum 2 * 255 * 127 = 64770 saturates to 32767: two pairs per lane
    np.testing.assert_array_equal(_run_matmul("avx2", 1, 8, 4, a, b), 2 * 32767)


@pytest.mark.parametrize("isa_name, mnemonic, register", [
    ("avx2", "vpmaddubsw", "ymm"), ("avx_vnni", "{vex}\tvpdpbusd", "ymm"),
    ("avx512_vnni", "vpdpbusd", "zmm")])
def test_assembly_has_the_dot_product_instruction(isa_name, mnemonic, register):
    target = d2lcc.target.named(TARGETS[isa_name])
    rt = tvm.compile(x86.matmul(12, 64, 64, isa_name).mod, target=target).jit()
    lines = [line for line in rt.inspect_source("asm").splitlines()
             if mnemonic in line]
    assert lines and all(register in line for line in lines)
    if isa_name == "avx2":
        assert "vpmaddwd" in rt.inspect_source("asm")


@pytest.mark.parametrize("isa_name", ["avx_vnni", "avx512_vnni"])
def test_vnni_matmul_is_exact_where_it_runs(isa_name):
    if not RUNS[isa_name]:
        pytest.skip(f"this machine has no {isa_name}")
    rng = _rng(3)
    a = rng.integers(0, 256, (24, 128), dtype=np.uint8)
    b = rng.integers(-128, 128, (128, 64), dtype=np.int8)  # full range: exact
    expected = a.astype(np.int32) @ b.astype(np.int32)
    np.testing.assert_array_equal(_run_matmul(isa_name, 24, 64, 128, a, b), expected)


def test_intrinsic_registers_once():
    name = x86.intrinsic("avx2")
    assert name == x86.intrinsic("avx2") == "d2lcc_dot_8x4_avx2"


@pytest.mark.parametrize("bad, error", [
    (dict(m=8, n=12, k=8), ValueError), (dict(m=8, n=16, k=6), ValueError),
    (dict(m=0, n=16, k=8), ValueError), (dict(m=8, n=16, k=8, isa_name="avx"),
                                         ValueError)])
def test_matmul_refuses(bad, error):
    with pytest.raises(error, match="int8.x86"):
        x86.matmul(**bad)


# --- whole modules ------------------------------------------------------------------

def _lowered(build, shape, dtype="int8"):
    from d2lcc import qnn

    mod = d2lcc.ir.single_op_module(build, (shape, dtype))
    passes = [qnn.transform.LegalizeUint8Int8(), qnn.transform.Canonicalize()]
    return tvm.transform.Sequential(passes)(mod)


def _compile(mod, target, extra_passes=(), base=None):
    from d2lcc import compiler

    with target:
        passes = compiler.simplify_passes() + list(extra_passes)
        passes += compiler.fuse_passes(x86.legalize_map(target, base))
        prepared = tvm.transform.Sequential(passes)(mod)
    return prepared, x86.schedule_module(prepared, target)


def _kernels(mod):
    return {gv.name_hint: f for gv, f in mod.functions.items()
            if isinstance(f, tvm.tirx.PrimFunc)}


def _conv_model(w, zw, padding, strides=1, dilation=1, out_slice=None):
    from tvm import relax

    from d2lcc import qnn

    def build(x):
        y = qnn.conv2d(x, relax.const(w), 5, zw, 0.1, 0.01, strides=strides,
                       padding=padding, dilation=dilation)
        y = qnn.requantize(y, 0.001, 0, 0.05, 3, out_dtype="int8")
        if out_slice:
            y = relax.op.strided_slice(y, [2, 3], [0, 0], [out_slice, out_slice])
        return y

    return build


@needs_avx2
@pytest.mark.parametrize("c, o, padding, strides, dilation, zw, out_slice", [
    (3, 16, 1, 1, 1, "per-channel", None),  # first layer: 3 channels padded to 4
    (8, 8, 0, 2, 1, 0, None),  # symmetric weights: no zero-point terms
    (6, 16, 2, 1, 2, 0, 6),  # dilation; a slice after the requantize
])
def test_conv2d_module_is_exact(c, o, padding, strides, dilation, zw, out_slice):
    rng = _rng(c)
    w = rng.integers(-64, 64, (o, c, 3, 3), dtype=np.int8)
    zw = rng.integers(-3, 3, o) if zw == "per-channel" else zw
    mod = _lowered(_conv_model(w, zw, padding, strides, dilation, out_slice),
                   (1, c, 10, 10))
    target = d2lcc.target.host()
    prepared, scheduled = _compile(mod, target)
    x = rng.integers(-128, 128, (1, c, 10, 10), dtype=np.int8)
    expected = d2lcc.execute.run(mod, x)
    from d2lcc import compiler

    np.testing.assert_array_equal(compiler.build(scheduled, target)(x), expected)
    int8 = [f for n, f in _kernels(scheduled).items() if "int8_conv2d" in n]
    assert len(int8) == 1 and "tirx.is_scheduled" in int8[0].attrs
    assert "llvm.x86.avx2.pmadd.ub.sw" in int8[0].script()


@needs_avx2
def test_dense_module_is_exact_and_epilogue_folds():
    from tvm import relax

    from d2lcc import compiler, qnn

    rng = _rng(7)
    w = rng.integers(-64, 64, (32, 50), dtype=np.int8)  # K = 50: padded to 52

    def build(x):
        y = qnn.dense(x, relax.const(w), 3, 2, 0.05, 0.01)
        return qnn.requantize(y, 0.0005, 0, 0.1, 0, out_dtype="uint8")

    mod = _lowered(build, (2, 50))
    target = d2lcc.target.host()
    prepared, scheduled = _compile(mod, target)
    x = rng.integers(-128, 128, (2, 50), dtype=np.int8)
    np.testing.assert_array_equal(compiler.build(scheduled, target)(x),
                                  d2lcc.execute.run(mod, x))
    (name,) = [n for n in _kernels(scheduled) if "int8_matmul" in n]
    script = scheduled[name].script()
    assert "T.round" not in script.split("int8_matmul_update_o")[0]
    assert "T.nearbyint" in script  # the requantize, folded into the write-out


@needs_avx2
@pytest.mark.parametrize("packed", [False, True])
def test_padded_conv2d_is_exact(packed):
    """Zero padding inside the kernel, in NCHW and in NCHW8c (from ConvertLayout).

    In the packed layout the data is read as it is, without a packing stage.
    """
    from tvm import relax

    from d2lcc import compiler, nchwc
    from d2lcc.conv import conv2d_numpy

    rng = _rng(11)
    w = rng.integers(-64, 64, (16, 12, 3, 3), dtype=np.int8)

    def build(x):
        return relax.op.nn.conv2d(x, relax.const(w), padding=1, out_dtype="int32")

    mod = d2lcc.ir.single_op_module(build, ((1, 12, 8, 7), "uint8"))
    target = d2lcc.target.host()
    layout = nchwc.layout_passes(8) if packed else []  # 12 channels: padded to 16
    base = {"relax.nn.conv2d": nchwc.legalize_conv2d}
    prepared, scheduled = _compile(mod, target, layout, base)
    (kernel,) = [f for n, f in _kernels(scheduled).items() if "int8_conv2d" in n]
    assert ('"pack"' in kernel.script()) != packed
    x = rng.integers(0, 256, (1, 12, 8, 7), dtype=np.uint8)
    x[0, :, 0, 0] = 255
    expected = conv2d_numpy(x.astype(np.float64), w.astype(np.float64), 1)
    np.testing.assert_array_equal(compiler.build(scheduled, target)(x), expected)



def test_used_channels_rounds_the_last_nonzero_channel_up_to_a_group():
    w = np.zeros((8, 8, 3, 3), np.int8)
    assert x86.used_channels(w) == 4  # nothing to multiply: one group still
    w[:, :3] = 1
    assert x86.used_channels(w) == 4  # a first layer: 3 channels of 8
    w[0, 5, 2, 2] = -1
    assert x86.used_channels(w) == 8
    assert x86.used_channels(np.ones((8, 3, 1, 1), np.int8)) == 3
    with pytest.raises(ValueError, match="w must be 4-D"):
        x86.used_channels(np.ones((8, 3), np.int8))


@needs_avx2
def test_first_layer_multiplies_only_its_real_channels():
    """3 channels packed to a block of 8: the kernel reads one group of 4."""
    from tvm import relax, s_tir

    from d2lcc import compiler, nchwc
    from d2lcc.conv import conv2d_numpy

    rng = _rng(12)
    w = rng.integers(-64, 64, (16, 3, 3, 3), dtype=np.int8)

    def build(x):
        return relax.op.nn.conv2d(x, relax.const(w), strides=2, padding=1,
                                  out_dtype="int32")

    mod = d2lcc.ir.single_op_module(build, ((1, 3, 9, 9), "uint8"))
    target = d2lcc.target.host()
    base = {"relax.nn.conv2d": nchwc.legalize_conv2d}
    prepared, scheduled = _compile(mod, target, nchwc.layout_passes(8), base)
    (name,) = [n for n in _kernels(prepared) if "int8_conv2d" in n]
    sch = s_tir.Schedule(prepared[name])
    extents = [int(sch.get(loop).extent)
               for loop in sch.get_loops(sch.get_sblock(x86.CONV_BLOCK))]
    assert extents[5] == 1  # one group of 4 channels, not two
    x = rng.integers(0, 256, (1, 3, 9, 9), dtype=np.uint8)
    full = conv2d_numpy(x.astype(np.float64), w.astype(np.float64), 1)
    expected = full[..., ::2, ::2]  # stride 2
    np.testing.assert_array_equal(compiler.build(scheduled, target)(x), expected)

@needs_avx2
def test_full_range_weights_fall_back_on_avx2_but_not_on_vnni():
    from tvm import relax

    w = np.full((16, 8), 127, np.int8)

    def build(x):
        return relax.op.matmul(x, relax.const(w), out_dtype="int32")

    mod = d2lcc.ir.single_op_module(build, ((4, 16), "uint8"))
    prepared, _ = _compile(mod, d2lcc.target.named("haswell"))
    assert not any("int8_matmul" in n for n in _kernels(prepared))
    prepared, scheduled = _compile(mod, d2lcc.target.named("cascadelake"))
    assert not any("int8_matmul" in n for n in _kernels(prepared))  # N=8 < 16 lanes
    prepared, scheduled = _compile(mod, d2lcc.target.named("alderlake"))
    assert any("int8_matmul" in n for n in _kernels(prepared))
    x = np.full((4, 16), 255, np.uint8)
    from d2lcc import compiler

    out = compiler.build(prepared, d2lcc.target.host())(x)  # unscheduled: runs here
    np.testing.assert_array_equal(out, np.full((4, 8), 16 * 255 * 127))


def test_no_int8_isa_leaves_the_base_map():
    base = {"relax.nn.conv2d": lambda bb, call: call}
    assert x86.legalize_map(d2lcc.target.named("graviton2"), base) == base
    assert x86.legalize_map(d2lcc.target.named("graviton2")) == {}


def test_schedule_module_checks():
    with pytest.raises(TypeError, match="int8.x86.schedule_module: mod"):
        x86.schedule_module("mod")
    with pytest.raises(TypeError, match="int8.x86.schedule_kernel: func"):
        x86.schedule_kernel(x86.matmul_te(8, 8, 8, 8).with_attr(
            "tirx.is_scheduled", True))
    with pytest.raises(ValueError, match="packed for 8 lanes"):
        x86.schedule_kernel(_kernels(tvm.IRModule({"k": _matmul_kernel()}))["k"],
                            d2lcc.target.named("cascadelake"))
    with pytest.raises(ValueError, match="no int8 dot-product ISA"):
        x86.schedule_kernel(_matmul_kernel(), d2lcc.target.named("graviton2"))


def _matmul_kernel():
    from tvm import te

    a = te.placeholder((4, 8), "uint8", name="a")
    b = te.placeholder((1, 2, 8, 4), "int8", name="b")
    return te.create_prim_func([a, b, x86.matmul_compute(a, b)])


def test_fold_epilogue_refuses_a_non_schedule():
    with pytest.raises(TypeError, match="int8.x86.fold_epilogue: sch"):
        x86.fold_epilogue("sch", None)


def test_conv_tiles_fill_the_register_block_on_any_width():
    for name in x86.ISAS:
        spec = x86.isa(name)
        for width in (1, 7, 13, 27, 55, 56, 112):
            for blocks in (1, 3, 8, 24, 64):
                ow, ov = x86.conv_tiles(width, blocks, name)
                assert width % ow == 0 and blocks % ov == 0
                assert ow * ov <= spec.mr * spec.vectors
    # the ISA's own block where it divides; a prime width still gets 8 sums
    assert x86.conv_tiles(56, 8, "avx2") == (4, 2)
    assert x86.conv_tiles(13, 24, "avx2") == (1, 8)
    assert x86.conv_tiles(56, 8, "avx512_vnni") == (4, 4)
    with pytest.raises(ValueError, match="width=0"):
        x86.conv_tiles(0, 8, "avx2")
    with pytest.raises(ValueError, match="isa_name='sse2'"):
        x86.conv_tiles(8, 8, "sse2")
