"""Tests of d2lcc.dense: packing, legalization, the scheduled kernels, whole modules.

Every module is built as d2lcc.compile's "book" pipeline will build it
(simplify, legalize with dense.legalize_map, fuse, dense.schedule_module, build)
and checked against NumPy on fresh random data.
"""

import warnings

import numpy as np
import pytest

import d2lcc
from d2lcc import dense

tvm = pytest.importorskip("tvm")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _layer(x_shape, w, b=None, act="relu", out_dtype=None, x_dtype="float32"):
    """A Relax module: x @ w, then (optionally) + b, an activation and a cast."""
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, x_dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.matmul(x, relax.const(w, str(w.dtype))))
            if b is not None:
                y = bb.emit(relax.op.add(y, relax.const(b)))
            if act == "relu":
                y = bb.emit(relax.op.nn.relu(y))
            elif act == "sigmoid":
                y = bb.emit(relax.op.sigmoid(y))
            if out_dtype:
                y = bb.emit(relax.op.astype(y, out_dtype))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


def _prepare(mod, target=None, base=None, legalize_target=None):
    from d2lcc import compiler

    target = target or d2lcc.target.host()
    rules = dense.legalize_map(base, legalize_target or target)
    with target:
        passes = compiler.simplify_passes() + compiler.fuse_passes(rules)
        return tvm.transform.Sequential(passes)(mod)


def _compile(mod, target=None, **kwargs):
    """(prepared, scheduled, compiled) the way the book pipeline does it."""
    from d2lcc import compiler

    target = target or d2lcc.target.host()
    prepared = _prepare(mod, target, **kwargs)
    scheduled = dense.schedule_module(prepared, target)
    return prepared, scheduled, compiler.build(scheduled, target)


def _kernels(mod):
    return {gv.name_hint: f for gv, f in mod.functions.items()
            if isinstance(f, tvm.tirx.PrimFunc)}


def _reference(x, w, b=None, act="relu"):
    y = x.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        y = y + b
    if act == "relu":
        y = np.maximum(y, 0)
    elif act == "sigmoid":
        y = 1 / (1 + np.exp(-y))
    return y


def _close(actual, x, w, expected):
    """Within float32 rounding of a length-K sum: relative to sum |x| |w|."""
    scale = np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64) + 1
    assert actual.shape == expected.shape
    assert np.all(np.abs(actual - expected) <= 2e-6 * x.shape[1] * scale + 1e-6)


# --- packing ------------------------------------------------------------------

def test_pack_weight_layout_and_zero_columns():
    w = _rng().standard_normal((5, 20)).astype(np.float32)
    p = dense.pack_weight(w, 8)
    assert p.shape == (3, 5, 8) and p.dtype == np.float32 and p.flags.c_contiguous
    for panel, k, lane in [(0, 0, 0), (1, 4, 7), (2, 2, 3)]:
        assert p[panel, k, lane] == w[k, 8 * panel + lane]
    assert np.all(p[2, :, 4:] == 0)  # N = 20: four zero columns in the last panel
    assert dense.pack_weight(w, 4).shape == (5, 5, 4)  # nr divides N: no padding


@pytest.mark.parametrize("bad, error, match", [
    (dict(w=np.zeros((4, 8), np.float64), nr=8), TypeError, "w has dtype"),
    (dict(w=np.zeros((4, 8, 1), np.float32), nr=8), ValueError, "w must be 2-D"),
    (dict(w=np.zeros((0, 8), np.float32), nr=8), ValueError, "w must not be empty"),
    (dict(w=np.zeros((4, 8), np.float32), nr=0), ValueError, "nr"),
    (dict(w=[[1.0]], nr=8), TypeError, "w must be a NumPy array")])
def test_pack_weight_refuses(bad, error, match):
    with pytest.raises(error, match=f"dense.pack_weight: {match}"):
        dense.pack_weight(**bad)


# --- the kernel shape ------------------------------------------------------------

@pytest.mark.parametrize("name, lanes, mr, nr", [
    ("haswell", 8, 6, 16), ("skylake_avx512", 16, 6, 64), ("cascadelake", 16, 6, 64),
    ("graviton2", 4, 6, 16)])
def test_kernel_shape_for_named_targets(name, lanes, mr, nr):
    shape = dense.kernel_shape_for(d2lcc.target.named(name))
    assert (shape.lanes, shape.mr, shape.nr) == (lanes, mr, nr)
    assert shape.registers_used <= shape.registers


def test_kernel_shape_for_host_is_the_operator_chapters():
    from d2lcc import matmul

    if d2lcc.env().arch != "x86_64":
        pytest.skip("the host target's features are read from LLVM on x86 only")
    assert dense.kernel_shape_for() == matmul.kernel_shape()


def test_kernel_shape_for_refuses_other_kinds():
    with pytest.raises(ValueError, match="dense.kernel_shape_for: target="):
        dense.kernel_shape_for(d2lcc.target.named("trainium"))
    with pytest.raises(TypeError, match="dense.kernel_shape_for: target"):
        dense.kernel_shape_for("llvm")


# --- the TE stages --------------------------------------------------------------

def _te(m, k, panels, nr, dtype="float32"):
    from tvm import te

    return (te.placeholder((m, k), dtype, name="x"),
            te.placeholder((panels, k, nr), dtype, name="w"))


def test_dense_compute_stages():
    from tvm import te

    data, weight = _te(7, 10, 2, 8)
    out = dense.dense_compute(data, weight, 13, 6)  # 12 x 16 product, cropped
    assert out.op.name == dense.CROP_BLOCK and [int(d) for d in out.shape] == [7, 13]
    product = out.op.input_tensors[0]
    assert product.op.name == dense.PRODUCT_BLOCK
    assert [int(d) for d in product.shape] == [12, 16]
    exact = dense.dense_compute(*_te(12, 10, 2, 8), 16, 6)
    assert exact.op.name == dense.PRODUCT_BLOCK  # nothing to crop
    func = te.create_prim_func([data, weight, out])
    assert dense.is_dense_kernel(func) and dense.block_shape(func) == (6, 8)


@pytest.mark.parametrize("args, error, match", [
    (lambda: (*_te(4, 8, 2, 8), 20, 6), ValueError, "n=20 does not fit"),
    (lambda: (*_te(4, 8, 2, 8), 8, 6), ValueError, "n=8 does not fit"),
    (lambda: (*_te(4, 8, 2, 8, "float16"), 16, 6), TypeError, "data must be float32"),
    (lambda: (_te(4, 8, 2, 8)[0], _te(4, 9, 2, 8)[1], 16, 6), ValueError, "K=9"),
    (lambda: (*_te(4, 8, 2, 8), 16, 0), ValueError, "mr"),
    (lambda: (np.zeros((4, 8)), _te(4, 8, 2, 8)[1], 16, 6), TypeError, "data must be"),
    (lambda: (*_te(2**16, 2**16, 1, 8), 8, 6), ValueError, "more than")])
def test_dense_compute_refuses(args, error, match):
    with pytest.raises(error, match=f"dense.dense_compute: .*{match}"):
        dense.dense_compute(*args())


# --- whole modules: exact against NumPy -------------------------------------------

SHAPES = [(2, 3, 5), (5, 17, 10), (6, 64, 16), (7, 33, 24), (13, 100, 9),
          (64, 512, 1024), (97, 31, 33), (200, 64, 40), (3, 1, 1), (12, 257, 130)]


@pytest.mark.parametrize("m, k, n", SHAPES)
def test_dense_relu_module_matches_numpy(m, k, n):
    rng = _rng(m * 1000 + n)
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    prepared, scheduled, compiled = _compile(_layer((m, k), w, b))
    kernels = _kernels(scheduled)
    assert list(kernels) == ["fused_dense_add_relu"]  # one kernel, epilogue fused
    assert "tirx.is_scheduled" in kernels["fused_dense_add_relu"].attrs
    y = compiled(x)
    _close(y, x, w, _reference(x, w, b))
    if y.size >= 16:  # the ReLU did something (not certain on a handful of values)
        assert (y == 0).any() and (y > 0).any()


def test_epilogue_is_computed_in_the_write_out():
    rng = _rng(1)
    w = rng.standard_normal((40, 20)).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    _, scheduled, _ = _compile(_layer((9, 40), w, b))
    script = _kernels(scheduled)["fused_dense_add_relu"].script()
    # no intermediate of the product, the sum or the crop: one output written
    assert "T_add_intermediate" not in script and "dense_crop" not in script
    assert "T.parallel" in script and "T.vectorized" in script
    assert "T.where" in script  # the crop: 12 padded rows, 32 padded columns


@pytest.mark.parametrize("act, out_dtype", [(None, None), ("sigmoid", None),
                                            ("relu", "float64")])
def test_other_epilogues(act, out_dtype):
    rng = _rng(2)
    w = rng.standard_normal((30, 21)).astype(np.float32)
    x = rng.standard_normal((11, 30)).astype(np.float32)
    b = rng.standard_normal(21).astype(np.float32) if act else None
    _, scheduled, compiled = _compile(_layer((11, 30), w, b, act, out_dtype))
    assert len(_kernels(scheduled)) == 1
    y = compiled(x)
    assert y.dtype == np.dtype(out_dtype or "float32")
    _close(y, x, w, _reference(x, w, b, act))


def test_inf_and_nan_propagate():
    rng = _rng(3)
    w = rng.uniform(0.5, 1.0, (20, 19)).astype(np.float32)  # positive: no inf - inf
    w[4, 3] = np.inf
    x = rng.uniform(0.5, 1.0, (7, 20)).astype(np.float32)
    x[1, 2] = np.nan
    x[2, 0] = np.inf
    x[5, 0] = -np.inf
    _, _, compiled = _compile(_layer((7, 20), w, act=None))
    y = compiled(x)
    with np.errstate(invalid="ignore"):
        expected = x @ w
    assert np.isnan(y[1]).all() and np.isposinf(y[2]).all()
    assert np.isneginf(np.delete(y[5], 3)).all() and np.isnan(y[5, 3])  # -inf + inf
    assert np.isposinf(y[[0, 3, 4, 6], 3]).all()  # the infinite weight, column 3
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(y), kind(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(y[finite], expected[finite], rtol=1e-5)


def test_huge_values_overflow_to_inf_like_numpy():
    w = np.full((4, 3), 3e38, np.float32)
    x = np.full((2, 4), 2.0, np.float32)
    _, _, compiled = _compile(_layer((2, 4), w, act=None))
    assert np.isposinf(compiled(x)).all()


# --- what the rule leaves to others ---------------------------------------------

def _matmul_call_rule(calls):
    def base(bb, call):
        calls.append(call)
        return tvm.ir.Op.get("relax.matmul").get_attr("FLegalize")(bb, call)

    return base


def test_one_row_goes_to_the_base_rule():
    from d2lcc import compiler

    w = _rng(4).standard_normal((16, 24)).astype(np.float32)
    calls = []
    prepared = _prepare(_layer((1, 16), w), base={"relax.matmul": _matmul_call_rule(
        calls)})
    assert len(calls) == 1
    assert not any(dense.is_dense_kernel(f) for f in _kernels(prepared).values())
    untouched = _kernels(dense.schedule_module(prepared)).values()
    assert not any(f.attrs is not None and "tirx.is_scheduled" in f.attrs
                   for f in untouched)
    x = _rng(5).standard_normal((1, 16)).astype(np.float32)
    target = d2lcc.target.host()
    scheduled = compiler.schedule_small_kernels(prepared)  # M = 1: the lead's rule
    _close(compiler.build(scheduled, target)(x), x, w, _reference(x, w))


@pytest.mark.parametrize("case", ["float64", "weight_input", "three_d"])
def test_other_products_fall_back(case):
    from tvm import relax

    rng = _rng(6)
    if case == "weight_input":
        bb = relax.BlockBuilder()
        x = relax.Var("x", relax.TensorType((4, 8), "float32"))
        wv = relax.Var("w", relax.TensorType((8, 16), "float32"))
        with bb.function("main", [x, wv]):
            with bb.dataflow():
                out = bb.emit_output(relax.op.matmul(x, wv))
            bb.emit_func_output(out)
        mod = bb.get()
    elif case == "float64":
        mod = _layer((4, 8), rng.standard_normal((8, 16)), act=None, x_dtype="float64")
    else:
        mod = _layer((2, 4, 8), rng.standard_normal((8, 16)).astype(np.float32),
                     act=None)
    calls = []
    prepared = _prepare(mod, base={"relax.matmul": _matmul_call_rule(calls)})
    assert len(calls) == 1
    assert not any(dense.is_dense_kernel(f) for f in _kernels(prepared).values())


def test_legalize_map_keeps_other_rules():
    def conv_rule(bb, call):
        return call

    rules = dense.legalize_map({"relax.nn.conv2d": conv_rule})
    assert rules["relax.nn.conv2d"] is conv_rule and callable(rules["relax.matmul"])


@pytest.mark.parametrize("base, error, match", [
    ("rules", TypeError, "base must be a dict"),
    ({"relax.matmul": 3}, TypeError, r"base\['relax.matmul'\] must be callable"),
    ({1: len}, TypeError, "base key")])
def test_legalize_map_refuses(base, error, match):
    with pytest.raises(error, match=f"dense.legalize_map: {match}"):
        dense.legalize_map(base)


# --- scheduling -------------------------------------------------------------------

def test_block_from_another_target_warns_and_stays_exact():
    rng = _rng(8)
    w = rng.standard_normal((24, 70)).astype(np.float32)
    x = rng.standard_normal((8, 24)).astype(np.float32)
    mod = _layer((8, 24), w, act=None)
    prepared = _prepare(mod, legalize_target=d2lcc.target.named("cascadelake"))
    assert [dense.block_shape(f) for f in _kernels(prepared).values()] == [(6, 64)]
    if dense.kernel_shape_for().registers >= 29:
        pytest.skip("this machine's registers hold a 6x64 block")
    with pytest.warns(RuntimeWarning, match="dense.schedule_module: kernel"):
        scheduled = dense.schedule_module(prepared)
    from d2lcc import compiler

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _close(compiler.build(scheduled)(x), x, w, _reference(x, w, act=None))


def test_schedule_refuses_what_it_did_not_write():
    from tvm import te

    a = te.placeholder((4, 4), "float32", name="a")
    func = te.create_prim_func([a, te.compute((4, 4), lambda i, j: a[i, j] * 2)])
    assert not dense.is_dense_kernel(func) and not dense.is_dense_kernel(None)
    with pytest.raises(TypeError, match="dense.schedule_kernel: func"):
        dense.schedule_kernel(func)
    with pytest.raises(TypeError, match="dense.block_shape: func"):
        dense.block_shape(func)
    with pytest.raises(TypeError, match="dense.schedule_module: mod"):
        dense.schedule_module(func)
    data, weight = _te(6, 8, 1, 8)
    scheduled = dense.schedule_kernel(
        te.create_prim_func([data, weight, dense.dense_compute(data, weight, 8, 6)]))
    assert not dense.is_dense_kernel(scheduled)  # scheduled once, left alone after


def _onnx_mlp(w1, b1, w2, b2, batch):
    """An ONNX MLP as exporters write it: Gemm(transB=1), Relu, Gemm(transB=1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(a, name) for name, a in
             (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, w1.shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, w2.shape[0]])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_onnx_mlp_both_layers_packed():
    pytest.importorskip("onnx")
    from d2lcc import compiler

    rng = _rng(9)
    w1 = rng.standard_normal((48, 30)).astype(np.float32)  # ONNX [N, K]
    b1 = rng.standard_normal(48).astype(np.float32)
    w2 = rng.standard_normal((10, 48)).astype(np.float32)
    b2 = rng.standard_normal(10).astype(np.float32)
    x = rng.standard_normal((8, 30)).astype(np.float32)
    mod = compiler.import_model(_onnx_mlp(w1, b1, w2, b2, batch=8))
    _, scheduled, compiled = _compile(mod)
    kernels = _kernels(scheduled)
    assert sorted(kernels) == ["fused_dense1_add1", "fused_dense_add_relu"], kernels
    assert not any("transpose" in k or "permute" in k for k in kernels)
    h = np.maximum(x.astype(np.float64) @ w1.T + b1, 0)
    np.testing.assert_allclose(compiled(x), h @ w2.T + b2, rtol=1e-4, atol=1e-3)
