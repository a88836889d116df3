"""Unit tests of d2lcc.conv: references, layouts, TensorIR, schedules, onnxruntime."""

import inspect

import numpy as np
import pytest

from d2lcc import conv, cpu


def _brute(x, w, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, hp, wp = xp.shape
    o, _, kh, kw = w.shape
    y = np.zeros((n, o, hp - kh + 1, wp - kw + 1), np.float64)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            window = xp[:, :, i : i + kh, j : j + kw]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", window, w)
    return y


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 9, 7), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    return x, w


def _run(mod, *arrays, out_shape):
    call, out = conv.runner(mod, *arrays, out_shape=out_shape)
    call()
    return out.numpy()


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_references_match_brute_force(data, padding):
    x, w = data
    ref = _brute(x, w, padding)
    for f in (conv.conv2d_numpy, conv.conv2d_im2col):
        np.testing.assert_allclose(f(x, w, padding), ref, rtol=1e-4, atol=1e-4)


def test_references_propagate_nan_and_inf(data):
    x, w = data
    x = x.copy()
    x[0, 3, 4, 4] = np.nan
    x[1, 0, 0, 0] = np.inf
    for f in (conv.conv2d_numpy, conv.conv2d_im2col):
        y = f(x, w, 1)
        assert np.isnan(y[0, :, 3:6, 3:6]).all()  # every window holding the NaN
        assert np.isfinite(y[0, :, 0, 0]).all()  # outputs far from it stay finite
        assert not np.isfinite(y[1, :, 0, 0]).any()  # inf times weights: +-inf


def test_im2col_shape_and_columns(data):
    x, _ = data
    cols = conv.im2col(x[0], 3, 3, 1)
    assert cols.shape == (16 * 9, 9 * 7)
    # Column (row 0, col 0) holds the top-left window, zero-padded.
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    np.testing.assert_array_equal(cols[:, 0], xp[:, :3, :3].reshape(-1))


def test_unfold_is_what_im2col_runs(data):
    x, w = data
    cols = conv.unfold(x[0], 3, 2, 1)
    np.testing.assert_array_equal(cols, conv.im2col(x[0], 3, 2, 1))
    # Weights times the columns is the convolution (the im2col identity).
    y = w.reshape(w.shape[0], -1) @ conv.unfold(x[0], 3, 3, 0)
    ref = conv.conv2d_numpy(x[:1], w, 0)[0]
    np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=1e-4, atol=1e-4)


def test_pack_unpack_roundtrip(data):
    x, w = data
    np.testing.assert_array_equal(conv.unpack_data(conv.pack_data(x, 4)), x)
    wp = conv.pack_weight(w, 4, 8)
    assert wp.shape == (2, 4, 3, 3, 4, 8)
    assert wp[1, 2, 0, 1, 3, 5] == w[1 * 8 + 5, 2 * 4 + 3, 0, 1]


def test_largest_divisor():
    assert conv.largest_divisor(56, 16) == 14
    assert conv.largest_divisor(56, 8) == 8
    assert conv.largest_divisor(7, 4) == 1
    assert conv.largest_divisor(3, 100) == 3
    for bad in (0, -1, True, 2.0, None):
        with pytest.raises((TypeError, ValueError), match="conv.largest_divisor: n"):
            conv.largest_divisor(bad, 4)
        with pytest.raises((TypeError, ValueError),
                           match="conv.largest_divisor: limit"):
            conv.largest_divisor(8, bad)


def test_one_source_for_the_vector_width():
    # The SIMD width is cpu.vector_lanes()'s fact alone; conv keeps no copy of it.
    assert not hasattr(conv, "simd_floats")


def test_default_ow_tile_follows_vector_lanes(monkeypatch):
    # With 4 lanes (NEON, SSE) the tiled schedule splits a width of 8 into 2 x 4;
    # with 16 (AVX-512) it would keep all 8 columns in one tile.
    func = conv.conv2d_nchw_te(1, 8, 8, 8, 8, 3, 1)
    for lanes, tile in ((4, 4), (16, 8)):
        monkeypatch.setattr(cpu, "vector_lanes", lambda machine=None, dtype="float32",
                            lanes=lanes: lanes)
        text = conv.schedule_tiled(func).script()
        assert f"T.vectorized({tile})" in text, (lanes, tile)
        assert f"T.vectorized({8 if tile == 4 else 4})" not in text


def test_teaching_functions_have_no_checks():
    assert conv.__teaching__ == ("unfold", "conv_nchw", "tile_nchw", "tile_nchwc")
    for name in conv.__teaching__:
        source = inspect.getsource(getattr(conv, name))
        assert "checks." not in source and "raise" not in source, name
        assert len(source.splitlines()) <= 25, name


def test_naive_and_tiled_match_numpy(data):
    x, w = data
    ref = conv.conv2d_numpy(x, w, 1)
    func = conv.conv2d_nchw_te(2, 16, 9, 7, 16, 3, 1)
    tiled = conv.schedule_tiled(func, oc_tile=4, ow_tile=7)
    for mod in (func, tiled):
        y = _run(mod, x, w, out_shape=ref.shape)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="output channels=16 .* oc_tile"):
        conv.schedule_tiled(func, oc_tile=5)
    with pytest.raises(ValueError, match="schedule_tiled: output width=7 .* ow_tile"):
        conv.schedule_tiled(func, ow_tile=4)


@pytest.mark.parametrize("block", [8, 16])
def test_packed_matches_numpy(data, block):
    x, w = data
    ref = conv.conv2d_numpy(x, w, 1)
    func = conv.conv2d_nchwc_te(2, 16, 9, 7, 16, 3, 1, block)
    out_shape = (2, 16 // block, 9, 7, block)
    xc, wc = conv.pack_data(x, block), conv.pack_weight(w, block, block)
    y = _run(conv.schedule_packed(func), xc, wc, out_shape=out_shape)
    np.testing.assert_allclose(conv.unpack_data(y), ref, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="ow_tile"):
        conv.schedule_packed(func, ow_tile=3)


def test_packed_with_bias(data):
    x, w = data
    bias = np.random.default_rng(8).standard_normal(16).astype(np.float32)
    ref = conv.conv2d_numpy(x, w, 1) + bias.reshape(1, -1, 1, 1)
    func = conv.conv2d_nchwc_te(2, 16, 9, 7, 16, 3, 1, 8, bias=True)
    xc, wc = conv.pack_data(x, 8), conv.pack_weight(w, 8, 8)
    y = _run(conv.schedule_packed(func), xc, wc, bias.reshape(2, 8),
             out_shape=(2, 2, 9, 7, 8))
    np.testing.assert_allclose(conv.unpack_data(y), ref, rtol=1e-4, atol=1e-3)


def test_pad_spatial_and_conv_nchw_compose():
    from tvm import te

    x = te.placeholder((1, 2, 4, 4), "float32", name="X")
    wt = te.placeholder((3, 2, 3, 3), "float32", name="W")
    y = conv.conv_nchw(conv.pad_spatial(x, 1), wt)
    assert [int(d) for d in y.shape] == [1, 3, 4, 4]
    with pytest.raises(TypeError, match="conv.pad_spatial: x"):
        conv.pad_spatial(np.zeros((1, 1, 2, 2)), 1)
    with pytest.raises(ValueError, match="conv.pad_spatial: x must have at least 4"):
        conv.pad_spatial(te.placeholder((4, 4), "float32"), 1)
    with pytest.raises(ValueError, match="conv.pad_spatial: padding"):
        conv.pad_spatial(x, -1)
    with pytest.raises(ValueError, match="conv.pad_spatial: name"):
        conv.pad_spatial(x, 1, "")


def test_onnxruntime_conv2d(data):
    x, w = data
    f = conv.onnxruntime_conv2d(w, 1, num_threads=1)
    np.testing.assert_allclose(f(x), conv.conv2d_numpy(x, w, 1), rtol=1e-4, atol=1e-3)
    depthwise = conv.onnxruntime_conv2d(w[:, :1], 1, num_threads=1, groups=16)
    assert depthwise(x).shape == (2, 16, 9, 7)


def test_schedule_block_refuses_other_functions(data):
    pool = conv.conv2d_nchw_te(1, 8, 8, 8, 8, 3, 1)
    packed = conv.conv2d_nchwc_te(1, 8, 8, 8, 8, 3, 1, 8)
    with pytest.raises(TypeError, match="conv.schedule_tiled: func must be a tvm.tirx"):
        conv.schedule_tiled(None)
    with pytest.raises(ValueError, match="schedule_tiled: func's block 'conv' sits"):
        conv.schedule_tiled(packed)
    with pytest.raises(ValueError, match="schedule_packed: func's block 'conv' sits"):
        conv.schedule_packed(pool)
    with pytest.raises(ValueError, match="f: func has no block named 'nope'"):
        conv.schedule_block("f", pool, "nope", 7)
    with pytest.raises(TypeError, match="conv.schedule_block: n_loops"):
        conv.schedule_block("f", pool, "conv", [7])


def test_check_elements():
    conv.check_elements("f", "x", (2**15, 2**15))
    with pytest.raises(ValueError, match="f: the input .* has 4294967296 elements"):
        conv.check_elements("f", "the input", (2**16, 2**16))
    with pytest.raises(TypeError, match="conv.check_elements: shape"):
        conv.check_elements("f", "x", 5)


X = np.zeros((1, 8, 6, 6), np.float32)
W = np.zeros((8, 8, 3, 3), np.float32)
F64, I32 = W.astype(np.float64), X.astype(np.int32)
NAIVE = conv.conv2d_nchw_te(1, 8, 8, 8, 8, 3, 1)

# (function, args, kwargs, error, the message after "conv.<function>: ")
BAD_CALLS = [
    (conv.conv2d_numpy, (X, W[:, :3], 1), {}, ValueError, "x has 8 channels"),
    (conv.conv2d_numpy, (X[:0], W, 1), {}, ValueError, "x must not be empty"),
    (conv.conv2d_numpy, (X, F64, 1), {}, TypeError, "x is float32 but w is float64"),
    (conv.conv2d_numpy, (I32, W, 1), {}, TypeError, "x has dtype int32"),
    (conv.conv2d_numpy, (X, W, 3), {}, ValueError, "padding=3 must be <"),
    (conv.conv2d_numpy, (X, W, True), {}, TypeError, "padding"),
    (conv.conv2d_numpy, (X[..., :1, :1], W, 0), {}, ValueError, "the kernel 3x3"),
    (conv.conv2d_numpy, (None, W), {}, TypeError, "x"),
    (conv.conv2d_im2col, (X, W, -1), {}, ValueError, "padding=-1"),
    (conv.im2col, (X, 3, 3), {}, ValueError, "x must be 3-D"),
    (conv.im2col, (X[0], 0, 3), {}, ValueError, "kh=0"),
    (conv.im2col, (X[0], 3, 2.5), {}, TypeError, "kw"),
    (conv.im2col, (X[0], 9, 9), {}, ValueError, "the kernel 9x9"),
    (conv.pack_data, (X, 3), {}, ValueError, "channels=8 must be a multiple"),
    (conv.pack_data, (X, 0), {}, ValueError, "block=0"),
    (conv.pack_data, (X[0], 4), {}, ValueError, "x must be 4-D"),
    (conv.unpack_data, (X,), {}, ValueError, "y must be 5-D"),
    (conv.pack_weight, (W, 3, 8), {}, ValueError, "input channels=8"),
    (conv.pack_weight, (W, 8, -8), {}, ValueError, "out_block=-8"),
    (conv.conv2d_nchw_te, (-1, 8, 8, 8, 8, 3, 1), {}, ValueError, "n=-1"),
    (conv.conv2d_nchw_te, (1, 0, 8, 8, 8, 3, 1), {}, ValueError, "c=0"),
    (conv.conv2d_nchw_te, (1, 8, 8, 8, 8, 0, 0), {}, ValueError, "k=0"),
    (conv.conv2d_nchw_te, (1, 8, 8, 8, 8, 3, -1), {}, ValueError, "padding=-1"),
    (conv.conv2d_nchw_te, (1, 8, 2, 2, 8, 5, 1), {}, ValueError, "the kernel 5x5"),
    (conv.conv2d_nchw_te, (1, 8, 8, 8, 8, 3, 1, "floot32"), {}, ValueError,
     "dtype='floot32'"),
    (conv.conv2d_nchw_te, (2**20, 2**12, 8, 8, 8, 3, 1), {}, ValueError,
     "the padded input"),
    (conv.conv2d_nchwc_te, (1, 12, 8, 8, 16, 3, 1, 8), {}, ValueError,
     "c=12 must be a multiple of block=8"),
    (conv.conv2d_nchwc_te, (1, 8, 8, 8, 8, 3, 1, 0), {}, ValueError, "block=0"),
    (conv.conv2d_nchwc_te, (1, 8, 8, 8, 8, 3, 1, 8), {"bias": 1}, TypeError, "bias"),
    (conv.runner, (None,), {"out_shape": (1,)}, TypeError, "mod"),
    (conv.runner, (NAIVE, X, [1]), {"out_shape": (1,)}, TypeError, "arrays[1]"),
    (conv.runner, (NAIVE,), {"out_shape": (0, 1)}, ValueError, "out_shape"),
    (conv.runner, (NAIVE,), {"out_shape": (1,), "out_dtype": "float33"}, TypeError,
     "out_dtype='float33'"),
    (conv.onnxruntime_conv2d, (F64, 1), {}, TypeError, "w has dtype float64"),
    (conv.onnxruntime_conv2d, (W, 1), {"groups": True}, TypeError, "groups"),
    (conv.onnxruntime_conv2d, (W, 1), {"groups": 3}, ValueError,
     "output channels=8 must be a multiple of groups=3"),
    (conv.onnxruntime_conv2d, (W, 1), {"num_threads": 0}, ValueError, "num_threads=0"),
    (conv.onnxruntime_conv2d, (W, -2), {}, ValueError, "padding=-2"),
    (conv.schedule_tiled, (NAIVE,), {"oc_tile": 0}, ValueError, "oc_tile=0"),
    (conv.schedule_tiled, (NAIVE,), {"ow_tile": True}, TypeError, "ow_tile"),
    (conv.schedule_packed, (None,), {}, TypeError, "func"),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_inputs_raise(case):
    func, args, kwargs, error, message = BAD_CALLS[case]
    with pytest.raises(error) as info:
        func(*args, **kwargs)
    expected = f"conv.{func.__name__}: {message}"
    assert str(info.value).startswith(expected), str(info.value)


def test_divisor_tiles_divide_the_row_and_fit_the_limit():
    assert conv.divisor_tiles(6, 4, 4) == [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2),
                                           (3, 1)]
    assert conv.divisor_tiles(13, 40, 12) == [(1, 1), (1, 2), (1, 4), (1, 5),
                                              (1, 8), (1, 10)]
    with pytest.raises(ValueError, match="limit=0"):
        conv.divisor_tiles(6, 4, 0)


def test_inline_blocks_keeps_reductions_outputs_and_named_blocks():
    import tvm
    from tvm import s_tir, te

    x = te.placeholder((8, 8), name="x")
    shifted = te.compute((8, 8), lambda i, j: x[i, j] + 1.0, name="shifted")
    scaled = te.compute((8, 8), lambda i, j: shifted[i, j] * 2.0, name="scaled")
    k = te.reduce_axis((0, 8), "k")
    total = te.compute((8,), lambda i: te.sum(scaled[i, k], axis=k), name="total")
    out = te.compute((8,), lambda i: total[i] - 1.0, name="out")
    func = te.create_prim_func([x, out])

    def names(sch):
        return [sch.get(b).name_hint
                for b in sch.get_child_blocks(sch.get_sblock("root"))]

    sch = s_tir.Schedule(func)
    conv.inline_blocks(sch)
    assert names(sch) == ["total", "out"]  # a reduction and the output stay
    sch = s_tir.Schedule(func)
    conv.inline_blocks(sch, keep={"shifted"})
    assert names(sch) == ["shifted", "total", "out"]
    xs = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    got = tvm.runtime.tensor(np.zeros(8, np.float32))
    tvm.compile(sch.mod, target="llvm")(tvm.runtime.tensor(xs), got)
    np.testing.assert_allclose(got.numpy(), ((xs + 1) * 2).sum(1) - 1, rtol=1e-5)
    with pytest.raises(TypeError, match="sch must be a tvm.s_tir.Schedule"):
        conv.inline_blocks(func)
    with pytest.raises(TypeError, match="keep must be a collection of block names"):
        conv.inline_blocks(s_tir.Schedule(func), keep="shifted")
