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
        nchwc.schedule_conv(func, ow_tile=4)
    with pytest.raises(ValueError, match="must be a multiple of oc_tile=3"):
        nchwc.schedule_conv(func, oc_tile=3)


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
