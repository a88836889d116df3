"""Unit tests of d2lcc.nchwc: packed convolutions inside a Relax network."""

import numpy as np
import pytest

from d2lcc import conv, execute, nchwc


def _conv_module(c, o, size, k, stride, pad, weight):
    from tvm import relax

    from d2lcc import ir

    return ir.single_op_module(
        lambda x: relax.op.nn.conv2d(x, relax.const(weight), stride, pad),
        ((1, c, size, size), "float32"))


def _reference(x, w, stride, pad):
    full = conv.conv2d_numpy(np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)]), w)
    return full[:, :, ::stride, ::stride]


def test_channel_block():
    assert nchwc.channel_block(64, 16) == 16
    assert nchwc.channel_block(3, 8) == 3
    with pytest.raises(ValueError, match="channels=0"):
        nchwc.channel_block(0, 8)


@pytest.mark.parametrize("c, o, size, k, stride, pad", [
    (3, 16, 15, 7, 2, 3),   # the first layer of an image network, odd size
    (16, 8, 8, 1, 1, 0),    # 1x1
    (8, 16, 9, 3, 2, 1),    # strided 3x3
])
def test_compiled_network_conv_matches_numpy(c, o, size, k, stride, pad):
    import tvm
    from tvm import relax

    rng = np.random.default_rng(c + o)
    x = rng.standard_normal((1, c, size, size)).astype(np.float32)
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    mod = _conv_module(c, o, size, k, stride, pad, w)
    with tvm.target.Target({"kind": "llvm"}):
        mod = tvm.transform.Sequential(nchwc.layout_passes(8))(mod)
        mod = relax.transform.LegalizeOps({"relax.nn.conv2d": nchwc.legalize_conv2d})(mod)
    kernels = [f for f in mod.functions.values() if nchwc.is_packed_conv(f)]
    assert len(kernels) == 1
    scheduled = nchwc.schedule_module(mod)
    assert not any(nchwc.is_packed_conv(f) for f in scheduled.functions.values())
    out = execute.run(scheduled, x)
    np.testing.assert_allclose(out, _reference(x, w, stride, pad), rtol=1e-4, atol=1e-4)


def test_pad_channels_pads_only_what_does_not_divide():
    from tvm import relax

    from d2lcc import ir

    rng = np.random.default_rng(0)
    w3 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    padded = nchwc.pad_channels(8)(_conv_module(3, 8, 6, 3, 1, 1, w3))
    assert ir.op_names(padded) == ["nn.pad", "nn.conv2d"]
    w8 = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    same = nchwc.pad_channels(8)(_conv_module(8, 8, 6, 3, 1, 1, w8))
    assert ir.op_names(same) == ["nn.conv2d"]
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(execute.run(relax.transform.LegalizeOps()(padded), x),
                               _reference(x, w3, 1, 1), rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lanes=0"):
        nchwc.pad_channels(0)
    with pytest.raises(TypeError, match="lanes must be an int"):
        nchwc.layout_passes("8")
    with pytest.raises(TypeError, match="mod must be a tvm.IRModule"):
        nchwc.schedule_module(None)
    assert not nchwc.is_packed_conv(None)


def test_default_tiles_divide_the_kernel_and_fit_the_registers():
    from d2lcc import cpu

    limit = cpu.vector_registers() - 4
    for width in (1, 7, 14, 28, 56, 112, 13):
        for blocks in (1, 2, 3, 8, 64):
            ow_tile, oc_tile = nchwc.default_tiles(width, blocks)
            assert width % ow_tile == 0 and blocks % oc_tile == 0
            assert ow_tile * oc_tile <= limit
    assert nchwc.default_tiles(56, 8) == (2, 4)
    assert nchwc.default_tiles(56, 2) == (4, 2)
    assert nchwc.default_tiles(7, 64)[1] == 1
    if cpu.vector_registers() >= 16:  # the measured choices of the docstring
        assert nchwc.default_tiles(27, 24) == (3, 4)
        assert nchwc.default_tiles(55, 24) == (5, 2)
        assert nchwc.default_tiles(13, 40) == (1, 8)
        assert nchwc.default_tiles(7, 64) == (7, 1)
    with pytest.raises(ValueError, match="width=0"):
        nchwc.default_tiles(0, 4)


def test_schedule_conv_refuses_tiles_that_do_not_divide():
    from tvm import te

    data = te.placeholder((1, 2, 6, 6, 8), "float32", name="data")
    kernel = te.placeholder((2, 2, 3, 3, 8, 8), "float32", name="kernel")
    func = te.create_prim_func(
        [data, kernel, nchwc.conv2d_nchwc_compute(data, kernel, [1, 1], [1, 1, 1, 1])])
    assert nchwc.conv_extents(func) == dict(b=1, o=2, i=6, j=6, ob=8, rc=2, ri=3,
                                            rj=3, rb=8)
    with pytest.raises(ValueError, match="must be a multiple of ow_tile=4"):
        nchwc.schedule_conv(func, ow_tile=4, blocking=None)
    with pytest.raises(ValueError, match="must be a multiple of oc_tile=3"):
        nchwc.schedule_conv(func, oc_tile=3)
    nchwc.schedule_conv(func, ow_tile=4, oc_tile=2)  # blocked: columns left over


def test_a_failing_layout_conversion_keeps_nchw_with_a_warning():
    import tvm

    from d2lcc import compiler, zoo

    # TVM 0.27's ConvertLayout fails on R.nn.dropout's tuple result, which
    # compiler.remove_dropout (one of the simplify passes) takes out first.
    mod = compiler.import_model(zoo.load("squeezenet", check=False))
    with tvm.target.Target({"kind": "llvm"}):
        with pytest.warns(RuntimeWarning, match="ConvertLayout failed"):
            kept = nchwc.convert_layout_or_keep(["NCHW8c", "OIHW8i8o"])(mod)
    assert kept.same_as(mod)
    with pytest.raises(TypeError, match="layouts must be a list"):
        nchwc.convert_layout_or_keep("NCHW8c")


def test_integer_packed_conv_sums_in_its_out_dtype():
    """uint8 data x int8 weights -> int32, as a lowered quantized conv is."""
    import tvm
    from tvm import relax

    from d2lcc import execute

    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (1, 1, 3, 3, 8, 8), dtype=np.int8)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 1, 6, 6, 8), "uint8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.nn.conv2d(
                x, relax.const(w), padding=[1, 1, 1, 1], data_layout="NCHW8c",
                kernel_layout="OIHW8i8o", out_layout="NCHW8c", out_dtype="int32"))
        bb.emit_func_output(y)
    mod = relax.transform.LegalizeOps({"relax.nn.conv2d": nchwc.legalize_conv2d})(
        bb.get())
    kernel = next(f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    header = next(ln for ln in kernel.script().splitlines() if "def " in ln)
    assert header.rstrip("):").endswith('"int32"'), header  # the output buffer
    data = rng.integers(0, 256, (1, 1, 6, 6, 8), dtype=np.uint8)
    got = execute.run(mod, data)
    padded = np.pad(data[0, 0].astype(np.int64), [(1, 1), (1, 1), (0, 0)])
    expected = np.zeros((6, 6, 8), np.int64)
    for i in range(3):
        for j in range(3):
            expected += padded[i:i + 6, j:j + 6] @ w[0, 0, i, j].astype(np.int64)
    np.testing.assert_array_equal(got[0, 0], expected)


def _packed_func(cc, o, size, k, pad, bc=8, in_lanes=None):
    from tvm import te

    data = te.placeholder((1, cc, size, size, bc), "float32", name="data")
    kernel = te.placeholder((o, cc, k, k, bc, 8), "float32", name="kernel")
    out = nchwc.conv2d_nchwc_compute(data, kernel, [1, 1], [pad] * 4,
                                     in_lanes=in_lanes)
    return te.create_prim_func([data, kernel, out])


def _packed_numpy(x, w, pad, in_lanes=None):
    """conv2d of packed x [1, C, H, W, c] and w [O, C, K, K, c, o], in float64."""
    lanes = x.shape[-1] if in_lanes is None else in_lanes
    x, w = x[..., :lanes].astype(np.float64), w[..., :lanes, :].astype(np.float64)
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad), (0, 0)])
    k, size = w.shape[2], xp.shape[2] - w.shape[2] + 1
    out = np.zeros((1, w.shape[0], size, size, w.shape[-1]))
    for i in range(k):
        for j in range(k):
            out[0] += np.einsum("chwx,ocxy->ohwy", xp[0, :, i:i + size, j:j + size],
                                w[:, :, i, j])
    return out


def _run_prim(func, *arrays):
    import tvm

    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}),
                      target=tvm.target.Target({"kind": "llvm"}))
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in arrays]
    shape = [int(d) for d in func.params[-1].shape]
    args.append(tvm.runtime.tensor(np.zeros(shape, np.float32), dev))
    lib["main"](*args)
    return args[-1].numpy()


@pytest.mark.parametrize("ow_tile, blocking", [
    (2, (1, 1)), (2, (2, 7)), (2, (4, 7)), (3, (2, 7)),  # 3 columns + 1 left over
    (5, (4, 1)), (8, (1, 7)),  # a tile wider than the row: one narrower tile
    (None, "auto"), (7, None)])
def test_blocked_reduction_matches_numpy(ow_tile, blocking):
    """Every chunk of the reduction adds into the same sums, in any blocking."""
    func = _packed_func(cc=4, o=4, size=7, k=3, pad=1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 7, 7, 8)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3, 8, 8)).astype(np.float32)
    scheduled = nchwc.schedule_conv(func, ow_tile, 2, blocking=blocking)
    if blocking is not None and ow_tile is not None and ow_tile < 7 and 7 % ow_tile:
        assert "conv_update_j1" in scheduled.script()  # the tile of leftovers
    got = _run_prim(scheduled, x, w)
    np.testing.assert_allclose(got, _packed_numpy(x, w, 1), rtol=1e-4, atol=1e-4)


def test_short_reductions_keep_the_sums_in_registers():
    """A 1x1 conv over one input block: no blocking, the epilogue folded."""
    short = _packed_func(cc=1, o=4, size=6, k=1, pad=0)
    assert '"conv_local"' in nchwc.schedule_conv(short).script()  # registers
    two = _packed_func(cc=2, o=4, size=6, k=1, pad=0)  # 2 * 8 = 16 terms
    assert '"conv_local"' in nchwc.schedule_conv(two).script()
    deep = _packed_func(cc=2, o=4, size=6, k=3, pad=1)  # 2 * 9 * 8 = 144
    assert '"conv_local"' not in nchwc.schedule_conv(deep).script()


def test_blocked_tiles():
    assert nchwc.blocked_tiles(64) == (3, 4)
    assert nchwc.blocked_tiles(26) == (4, 2)
    assert nchwc.blocked_tiles(3) == (8, 1)
    with pytest.raises(ValueError, match="blocks=0"):
        nchwc.blocked_tiles(0)


def test_default_blocking_keeps_chunks_in_half_of_l1():
    extents = dict(b=1, o=32, i=14, j=14, ob=8, rc=32, ri=3, rj=3, rb=8)
    # one input block of a 3x3 tile of 4 output blocks: 9 * 8 * 32 * 4 B = 9 KiB
    assert nchwc.default_blocking(extents, 2, 4, l1_bytes=32768) == (1, 14)
    assert nchwc.default_blocking(extents, 2, 4, l1_bytes=65536) == (2, 14)
    one_by_one = dict(extents, rc=8, ri=1, rj=1)  # 8 KiB of weights in all: one pass
    assert nchwc.default_blocking(one_by_one, 2, 4, l1_bytes=32768) == (8, 14)
    wide = dict(extents, i=56, j=56)  # rows of partial sums: 56 * 32 * 4 B = 7 KiB
    assert nchwc.default_blocking(wide, 2, 4, l1_bytes=32768) == (1, 4)
    tiny = dict(extents, rc=7)  # no chunk fits: still one block at a time
    assert nchwc.default_blocking(tiny, 2, 4, l1_bytes=1024) == (1, 1)
    with pytest.raises(TypeError, match="extents must be a dict"):
        nchwc.default_blocking({"o": 1}, 2, 4)
    with pytest.raises(ValueError, match="extents\\['rc'\\]"):
        nchwc.default_blocking(dict(extents, rc=0), 2, 4)
    with pytest.raises(ValueError, match="l1_bytes"):
        nchwc.default_blocking(extents, 2, 4, l1_bytes=0)


def test_schedule_conv_checks_blocking():
    func = _packed_func(cc=4, o=4, size=6, k=3, pad=1)
    with pytest.raises(ValueError, match="must be a multiple of rc_chunk=3"):
        nchwc.schedule_conv(func, 2, 2, blocking=(3, 2))
    with pytest.raises(ValueError, match="must be a multiple of rows=4"):
        nchwc.schedule_conv(func, 2, 2, blocking=(2, 4))
    with pytest.raises(TypeError, match="blocking must be 'auto', None or a pair"):
        nchwc.schedule_conv(func, 2, 2, blocking="fast")


def test_zero_padded_input_lanes_are_skipped_and_the_result_kept():
    """The first layer's 3 channels padded to 8: only 3 lanes are summed."""
    import tvm
    from tvm import relax

    rng = np.random.default_rng(2)
    w = np.zeros((2, 1, 3, 3, 8, 8), np.float32)
    w[:, :, :, :, :3] = rng.standard_normal((2, 1, 3, 3, 3, 8))
    assert nchwc.used_lanes(relax.const(w)) == 3
    assert nchwc.used_lanes(relax.const(np.zeros((2, 1, 3, 3, 8, 8), np.float32))) \
        is None
    assert nchwc.used_lanes(relax.const(np.ones((2, 2, 1, 1, 8, 8), np.float32))) \
        is None  # two input blocks: all lanes
    assert nchwc.used_lanes(relax.Var("w", relax.TensorType((2, 1, 3, 3, 8, 8),
                                                            "float32"))) is None
    func = _packed_func(cc=1, o=2, size=6, k=3, pad=1, in_lanes=3)
    assert nchwc.conv_extents(func)["rb"] == 3
    x = rng.standard_normal((1, 1, 6, 6, 8)).astype(np.float32)
    got = _run_prim(nchwc.schedule_conv(func), x, w)
    np.testing.assert_allclose(got, _packed_numpy(x, w, 1, in_lanes=3), rtol=1e-4,
                               atol=1e-4)
    x[..., 3:] = 1e30  # lanes past the third are never read (their weights are 0)
    np.testing.assert_allclose(_run_prim(nchwc.schedule_conv(func), x, w), got,
                               rtol=1e-6)
    # and a network's first layer gets it through legalization
    mod = _conv_module(3, 16, 9, 3, 1, 1, rng.standard_normal((16, 3, 3, 3))
                       .astype(np.float32))
    with tvm.target.Target({"kind": "llvm"}):
        mod = tvm.transform.Sequential(nchwc.layout_passes(8))(mod)
        mod = relax.transform.LegalizeOps({"relax.nn.conv2d": nchwc.legalize_conv2d})(
            mod)
    kernel = next(f for f in mod.functions.values() if nchwc.is_packed_conv(f))
    assert nchwc.conv_extents(kernel)["rb"] == 3
    with pytest.raises(ValueError, match="in_lanes"):
        _packed_func(cc=1, o=2, size=6, k=3, pad=1, in_lanes=9)


def test_isnan_moves_after_a_layout_transform():
    """TVM 0.27 cannot legalize a layout transform of a bool tensor."""
    from tvm import relax

    from d2lcc import compiler, ir

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 2, 2), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            nan = bb.emit(relax.op.isnan(x))
            y = bb.emit_output(relax.op.layout_transform(
                nan, index_map=lambda n, c, h, w: (n, c // 8, h, w, c % 8)))
        bb.emit_func_output(y)
    mod = bb.get()
    moved = nchwc.isnan_after_transforms()(mod)
    assert ir.op_names(moved) == ["layout_transform", "isnan"]
    x = np.random.default_rng(8).standard_normal((1, 16, 2, 2)).astype(np.float32)
    x[0, 3, 1, 0] = np.nan
    got = compiler.compile(moved)(x)
    expected = np.isnan(x).reshape(1, 2, 8, 2, 2).transpose(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(got, expected)


def _unpack_pad_pack(shape, widths, block=8, pack=None):
    """A module that unpacks ``NCHW[block]c``, pads, and packs (``pack``) again."""
    from tvm import relax

    pack = pack or (lambda n, c, h, w: (n, c // block, h, w, c % block))
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "uint8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            flat = bb.emit(relax.op.layout_transform(
                x, index_map=lambda n, c, h, w, ci: (n, c * block + ci, h, w)))
            padded = bb.emit(relax.op.nn.pad(flat, widths, pad_value=128.0))
            y = bb.emit_output(relax.op.layout_transform(padded, index_map=pack))
        bb.emit_func_output(y)
    return bb.get()


def test_pad_between_packed_layouts_pads_the_packed_tensor():
    from d2lcc import compiler, ir

    mod = _unpack_pad_pack((1, 2, 5, 6, 8), [0, 0, 0, 0, 1, 2, 0, 3])
    moved = nchwc.pad_in_packed_layout()(mod)
    assert ir.op_names(moved) == ["nn.pad"]  # the two copies are gone
    x = np.random.default_rng(9).integers(0, 256, (1, 2, 5, 6, 8), dtype=np.uint8)
    expected = np.pad(x, [(0, 0), (0, 0), (1, 2), (0, 3), (0, 0)],
                      constant_values=128)
    np.testing.assert_array_equal(compiler.compile(moved)(x), expected)
    np.testing.assert_array_equal(compiler.compile(mod)(x), expected)
    # A pad of the channels, or a different packing, must stay as it was.
    for kept in (_unpack_pad_pack((1, 2, 5, 6, 8), [0, 0, 0, 8, 1, 1, 1, 1]),
                 _unpack_pad_pack((1, 2, 5, 6, 8), [0, 0, 0, 0, 1, 1, 1, 1], pack=(
                     lambda n, c, h, w: (n, c % 2, h, w, c // 2))),
                 _unpack_pad_pack((1, 2, 5, 6, 8), [0, 0, 0, 0, 1, 1, 1, 1], pack=(
                     lambda n, c, h, w: (n, c // 4, h, w, c % 4)))):
        assert ir.op_names(nchwc.pad_in_packed_layout()(kept)).count(
            "layout_transform") == 2


def test_requantization_and_pool_between_packed_convs_stay_packed():
    """where() has no packed rule: without the pass the chain runs in NCHW."""
    import tvm
    from tvm import relax

    from d2lcc import compiler, ir

    rng = np.random.default_rng(10)
    w1, w2 = (rng.standard_normal((16, 16, 1, 1)).astype(np.float32) for _ in "ab")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 5, 5), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, relax.const(w1)))
            y = bb.emit(relax.op.round(relax.op.divide(y, relax.const(0.25))))
            y = bb.emit(relax.op.where(relax.op.isnan(y), relax.const(0.0), y))
            y = bb.emit(relax.op.maximum(relax.op.minimum(y, relax.const(8.0)),
                                         relax.const(-8.0)))
            pooled = bb.emit(relax.op.nn.max_pool2d(y, 3, 1, 1))
            z = bb.emit_output(relax.op.add(relax.op.nn.conv2d(y, relax.const(w2)),
                                            relax.op.nn.conv2d(pooled,
                                                               relax.const(w2))))
        bb.emit_func_output(z)
    mod = bb.get()
    with tvm.target.Target({"kind": "llvm"}):
        packed = tvm.transform.Sequential(nchwc.layout_passes(8))(mod)
    names = ir.op_names(packed)
    # in once, out once: nothing between the convolutions goes back to NCHW
    assert names.count("layout_transform") == 2, names
    assert names.count("where") == 1 and names.count("nn.max_pool2d") == 1
    xs = rng.standard_normal((1, 16, 5, 5)).astype(np.float32)
    xs[0, :, 2, 2] = np.nan  # NaN becomes 0 before the clip, in both layouts
    expected = compiler.compile(mod, schedules="none")(xs)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(compiler.compile(mod)(xs), expected, rtol=1e-5,
                               atol=1e-5)
    # A tensor operand that is not a scalar stops the move: it stays NCHW.
    bias = relax.const(rng.standard_normal((1, 16, 1, 1)).astype(np.float32))
    unpacked = relax.Var("u", relax.TensorType((1, 2, 5, 5, 8), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [unpacked]):
        with bb.dataflow():
            flat = bb.emit(relax.op.layout_transform(
                unpacked, index_map=lambda n, c, h, w, ci: (n, c * 8 + ci, h, w)))
            shifted = bb.emit(relax.op.add(flat, bias))
            out = bb.emit_output(relax.op.layout_transform(
                shifted, index_map=lambda n, c, h, w: (n, c // 8, h, w, c % 8)))
        bb.emit_func_output(out)
    kept = bb.get()
    assert ir.op_names(nchwc.pack_through_elementwise()(kept)) == ir.op_names(kept)


def _unpack_where_pack(batch, cond):
    """unpack -> where(cond(y), 0, y) -> pack, on a batch that may be symbolic."""
    from tvm import relax, tirx

    n = tirx.Var("n", "int64") if batch == "n" else batch
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((n, 2, 3, 3, 8), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.layout_transform(
                x, index_map=lambda b, c, h, w, ci: (b, c * 8 + ci, h, w)))
            test = bb.emit(cond(y))
            y = bb.emit(relax.op.where(test, relax.const(0.0), y))
            out = bb.emit_output(relax.op.layout_transform(
                y, index_map=lambda b, c, h, w: (b, c // 8, h, w, c % 8)))
        bb.emit_func_output(out)
    return bb.get()


def test_pack_through_elementwise_moves_only_what_it_can_legalize():
    from tvm import relax

    from d2lcc import ir

    moved = nchwc.pack_through_elementwise()(_unpack_where_pack(1, relax.op.isnan))
    moved = relax.transform.DeadCodeElimination()(moved)
    assert ir.op_names(moved) == ["isnan", "where"]  # no transform left
    # A bool from another test would need a bool transform: left alone.
    greater = _unpack_where_pack(1, lambda y: relax.op.greater(y, relax.const(0.0)))
    assert ir.op_names(nchwc.pack_through_elementwise()(greater)) == \
        ir.op_names(greater)
    # A symbolic batch: shapes are not known numbers, nothing moves, no error.
    symbolic = _unpack_where_pack("n", relax.op.isnan)
    assert ir.op_names(nchwc.pack_through_elementwise()(symbolic)) == \
        ir.op_names(symbolic)
