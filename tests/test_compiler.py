"""Unit tests of d2lcc.compiler (d2lcc.compile and its helpers) on the small CNN."""

import numpy as np
import pytest

import d2lcc
from d2lcc import compiler, models


@pytest.fixture(scope="module")
def cnn():
    weights = models.small_cnn_weights(seed=1)
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    return models.small_cnn_onnx(weights, batch=2), weights, x


@pytest.fixture(scope="module")
def compiled(cnn):
    return d2lcc.compile(cnn[0])


def test_compile_matches_numpy_reference(cnn, compiled):
    _, weights, x = cnn
    np.testing.assert_allclose(compiled(x), models.small_cnn_numpy(x, weights),
                               rtol=1e-4, atol=1e-4)


def test_kernels_are_fused_and_scheduled(compiled):
    import tvm

    kernels = compiled.kernels()
    assert sum(name.startswith("fused_conv2d") and "_add" in name and "_relu" in name
               for name in kernels) == 2, kernels
    funcs = [f for f in compiled.module.functions.values()
             if isinstance(f, tvm.tirx.PrimFunc)]
    assert any(f.attrs and "tirx.is_scheduled" in f.attrs for f in funcs)


def test_profile_lists_every_kernel_once_per_run(cnn, compiled):
    rows = compiled.profile(cnn[2], repeat=3)
    names = {r.name for r in rows}
    assert {k for k in compiled.kernels() if k != "reshape"} <= names
    assert all(r.calls >= 1 and r.seconds > 0 for r in rows)
    assert abs(sum(r.share for r in rows) - 1) < 1e-9
    assert rows == sorted(rows, key=lambda r: -r.seconds)


def test_replace_prim_func_swaps_one_kernel(cnn):
    import tvm
    from tvm import te

    mod = compiler.optimize(cnn[0])
    name = next(n for n in (gv.name_hint for gv in mod.get_global_vars())
                if n.startswith(("fused_matmul", "fused_dense")))
    old = mod[name]
    shapes = [(tuple(int(d) for d in p.shape), p.dtype) for p in old.params]
    # A kernel that writes zeros: the network's output must become zeros too.
    ins = [te.placeholder(s, d) for s, d in shapes[:-1]]
    out = te.compute(shapes[-1][0], lambda *i: tvm.tirx.const(0, "float32"))
    zero = te.create_prim_func(ins + [out])
    swapped = compiler.replace_prim_func(mod, name, zero)
    assert swapped[name].attrs["tirx.is_scheduled"]
    assert mod[name].same_as(old)  # the input module is unchanged
    import tvm_ffi

    assert not tvm_ffi.structural_equal(swapped[name], old)
    np.testing.assert_array_equal(compiler.build(swapped)(cnn[2]), 0)
    with pytest.raises(ValueError, match="no kernel name='nope'"):
        compiler.replace_prim_func(mod, "nope", zero)
    wrong = te.create_prim_func([te.placeholder((3,)), te.compute((3,), lambda i: 0.0)])
    with pytest.raises(ValueError, match="func takes"):
        compiler.replace_prim_func(mod, name, wrong)


def test_bad_arguments_are_named(cnn, compiled):
    with pytest.raises(TypeError, match="compile: model must be"):
        d2lcc.compile("model.onnx")
    with pytest.raises(TypeError, match="compile: target must be"):
        d2lcc.compile(cnn[0], target="llvm")
    with pytest.raises(ValueError, match="tune_trials=-1"):
        d2lcc.compile(cnn[0], tune_trials=-1)
    with pytest.raises(TypeError, match="database must be"):
        d2lcc.compile(cnn[0], database=3)
    with pytest.raises(ValueError, match="got 0 inputs"):
        compiled()
    with pytest.raises(ValueError, match=r"inputs\[0\] has shape"):
        compiled(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(TypeError, match="dtype float64"):
        compiled(np.zeros((2, 3, 32, 32)))
    with pytest.raises(ValueError, match="repeat=0"):
        compiled.profile(cnn[2], repeat=0)


def test_small_kernels_dlight_gets_wrong_are_scheduled_and_correct():
    from tvm import relax

    from d2lcc import ir

    rng = np.random.default_rng(5)
    w = rng.standard_normal((64, 40)).astype(np.float32)  # [K, N], as ONNX leaves it
    mod = ir.single_op_module(
        lambda x: relax.op.nn.softmax(relax.op.matmul(x, relax.const(w))),
        ((1, 64), "float32"))
    scheduled = compiler.optimize(mod)
    kernels = {gv.name_hint: f for gv, f in scheduled.functions.items()
               if not isinstance(f, relax.Function)}
    softmax = next(f for n, f in kernels.items() if "softmax" in n)
    # serial, as legalization wrote it: no parallel loop around the row
    assert "T.parallel" not in softmax.script()
    matmul = next(f for n, f in kernels.items() if "matmul" in n)
    assert "T.parallel" in matmul.script() and "T.vectorized" in matmul.script()
    x = rng.standard_normal((1, 64)).astype(np.float32)
    logits = x @ w
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(compiler.build(scheduled)(x), expected, rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(TypeError, match="one row times a"):
        compiler.schedule_row_times_kn(softmax)


def test_row_times_kn_reads_bands_of_rows_in_parallel():
    import tvm
    from tvm import relax

    from d2lcc import ir

    rng = np.random.default_rng(6)
    w = rng.standard_normal((2048, 24)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    mod = ir.single_op_module(
        lambda x: relax.op.add(relax.op.matmul(x, relax.const(w)), relax.const(b)),
        ((1, 2048), "float32"))
    scheduled = compiler.optimize(mod)
    kernel = next(f for f in scheduled.functions.values()
                  if isinstance(f, tvm.tirx.PrimFunc) and "matmul" in f.script())
    text = kernel.script()
    assert "matmul_rf" in text and "T.parallel(T.int64(8))" in text  # 8 bands of K
    x = rng.standard_normal((1, 2048)).astype(np.float32)
    expected = x.astype(np.float64) @ w + b
    np.testing.assert_allclose(compiler.build(scheduled)(x), expected, rtol=1e-4,
                               atol=1e-4)


def test_leftover_data_movement_kernels_run_in_parallel_and_stay_exact():
    import tvm
    from tvm import relax

    from d2lcc import ir

    def network(x):
        packed = relax.op.layout_transform(
            x, index_map=lambda n, c, h, w: (n, c // 8, h, w, c % 8))
        pooled = relax.op.nn.max_pool2d(packed, 3, 2, 1, layout="NCHW8c")
        return relax.op.nn.pad(pooled, [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])

    mod = ir.single_op_module(network, ((1, 16, 12, 12), "float32"))
    with tvm.target.Target({"kind": "llvm"}):
        lowered = relax.transform.LegalizeOps()(mod)
    scheduled = compiler.schedule_leftovers(lowered)
    kernels = [f for f in scheduled.functions.values()
               if isinstance(f, tvm.tirx.PrimFunc)]
    assert len(kernels) == 3
    for kernel in kernels:
        assert "tirx.is_scheduled" in kernel.attrs and "T.parallel" in kernel.script()
    pool = next(f for f in kernels if "pool_max" in f.script())
    assert "T.vectorized(T.int64(8))" in pool.script()  # the channel block
    assert "pad_temp" not in pool.script()  # the padding is read on the fly
    x = np.random.default_rng(7).standard_normal((1, 16, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(compiler.build(scheduled)(x),
                                  compiler.build(lowered)(x))
    softmax = ir.single_op_module(relax.op.nn.softmax, ((4, 8), "float32"))
    with tvm.target.Target({"kind": "llvm"}):
        softmax = relax.transform.LegalizeOps()(softmax)
    kernel = next(f for f in softmax.functions.values()
                  if isinstance(f, tvm.tirx.PrimFunc))
    assert compiler.schedule_loops(kernel) is None  # its reductions cannot inline
    with pytest.raises(TypeError, match="func must be a tvm.tirx.PrimFunc"):
        compiler.schedule_loops(mod)
    with pytest.raises(TypeError, match="mod must be a tvm.IRModule"):
        compiler.schedule_leftovers(pool)


def test_a_pool_fused_with_its_consumers_runs_in_parallel_and_stays_exact():
    import tvm
    from tvm import relax

    from d2lcc import ir

    def network(x):  # a pool, then the int8 -> uint8 shift a quantized net adds
        pooled = relax.op.nn.max_pool2d(x, 3, 1, 1, layout="NCHW8c")
        shifted = relax.op.add(relax.op.astype(pooled, "int32"), relax.const(128))
        return relax.op.astype(shifted, "uint8")

    mod = ir.single_op_module(network, ((1, 4, 9, 9, 8), "int8"))
    with tvm.target.Target({"kind": "llvm"}):
        fused = tvm.transform.Sequential([
            relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
            relax.transform.FuseOps(), relax.transform.FuseTIR()])(mod)
    kernel = next(f for f in fused.functions.values()
                  if isinstance(f, tvm.tirx.PrimFunc))
    scheduled = compiler.schedule_loops(kernel)
    text = scheduled.script()
    assert "T.parallel" in text and text.count("T.vectorized(T.int64(8))") == 2
    x = np.random.default_rng(3).integers(-128, 128, (1, 4, 9, 9, 8), dtype=np.int8)
    padded = np.pad(x.astype(np.int32), [(0, 0), (0, 0), (1, 1), (1, 1), (0, 0)],
                    constant_values=-128)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    expected = (windows.max(axis=(-2, -1)) + 128).astype(np.uint8)
    got = compiler.build(compiler.schedule_leftovers(fused))(x)
    np.testing.assert_array_equal(got, expected)
    # A reduction over products of two tensors is not a pool: DLight's.
    product = ir.single_op_module(
        lambda a: relax.op.matmul(a, relax.const(np.ones((8, 8), np.float32))),
        ((4, 8), "float32"))
    with tvm.target.Target({"kind": "llvm"}):
        product = relax.transform.LegalizeOps()(product)
    matmul = next(f for f in product.functions.values()
                  if isinstance(f, tvm.tirx.PrimFunc))
    assert compiler.schedule_loops(matmul) is None


def test_resnet50_matches_the_numpy_reference():
    from d2lcc import zoo

    model = zoo.load("resnet50", seed=3, check=False)
    x = np.random.default_rng(4).standard_normal(zoo.input_shape(model))
    x = x.astype(np.float32)
    expected = zoo.numpy_reference(model)(x)
    got = d2lcc.compile(model)(x)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)
    assert got.argmax() == expected.argmax()


def test_shipped_database_is_applied_and_checked():
    from d2lcc import tuning

    # The database was tuned for the batch-1 network with seed-0 weights.
    weights = models.small_cnn_weights(seed=0)
    model = models.small_cnn_onnx(weights)
    x = np.random.default_rng(6).standard_normal((1, 3, 32, 32)).astype(np.float32)
    target = d2lcc.target.host()
    database = tuning.load_database(compiler.shipped_network_database("small_cnn"))
    prepared = compiler.prepare(model, target, schedules="dlight")
    fast = d2lcc.compile(model, target, schedules="dlight", database=database)
    np.testing.assert_allclose(fast(x), models.small_cnn_numpy(x, weights),
                               rtol=1e-4, atol=1e-4)
    applied = compiler.applied_from_database(prepared, fast.module, database, target)
    assert applied and all(applied.values())
    plain = d2lcc.compile(model, target, schedules="dlight")
    assert not any(compiler.applied_from_database(prepared, plain.module, database,
                                                  target).values())
    curve = compiler.tuning_curve(compiler.shipped_network_database("small_cnn"))
    assert len(curve) == len(database.get_all_tuning_records())
    assert all(b <= a for a, b in zip(curve, curve[1:])) and curve[-1] < curve[0]
    with pytest.raises(ValueError, match="network='resnet50'"):
        compiler.shipped_network_database("resnet50")
    with pytest.raises(ValueError, match="has no database_tuning_record.json"):
        compiler.tuning_curve("/nonexistent")


def _quantized_cnn():
    """quantize -> qnn.conv2d (int8 data, per-channel weights) -> requantize -> ReLU
    -> qnn.dense -> dequantize: the shape of a pre-quantized model."""
    from tvm import relax

    from d2lcc import qnn

    rng = np.random.default_rng(3)
    w = rng.integers(-64, 64, (8, 4, 3, 3), dtype=np.int8)
    wd = rng.integers(-64, 64, (16, 8 * 6 * 6), dtype=np.int8)

    def build(x):
        q = qnn.quantize(x, 0.05, 2, out_dtype="int8")
        y = qnn.conv2d(q, relax.const(w), 2, 0, 0.05, rng.uniform(0.005, 0.02, 8),
                       padding=(0, 0))
        y = qnn.requantize(y, 0.0005, 0, 0.04, -3, out_dtype="int8")
        y = relax.op.maximum(y, relax.const(-3, "int8"))
        y = relax.op.reshape(y, (1, 8 * 6 * 6))
        y = qnn.dense(y, relax.const(wd), -3, 0, 0.04, 0.01)
        return qnn.dequantize(y, 0.0004, 0)

    return d2lcc.ir.single_op_module(build, ((1, 4, 8, 8), "float32"))


def test_compile_lowers_a_quantized_model_to_int8_kernels():
    from d2lcc import execute
    from d2lcc.int8 import x86

    mod = _quantized_cnn()
    assert compiler.has_qnn_ops(mod)
    x = np.random.default_rng(4).standard_normal((1, 4, 8, 8)).astype("float32")
    expected = execute.run(mod, x)  # the dialect's own lowering, no schedules
    compiled = d2lcc.compile(mod)
    np.testing.assert_array_equal(compiled(x), expected)
    names = compiled.kernels()
    if x86.isa_of(d2lcc.target.host()) is not None:
        assert any("int8_conv2d" in n for n in names), names
        assert any("int8_matmul" in n for n in names), names
    assert not compiler.has_qnn_ops(compiled.module)


def test_has_qnn_ops_refuses_a_non_module(cnn):
    with pytest.raises(TypeError, match="has_qnn_ops: mod"):
        compiler.has_qnn_ops(None)
    assert not compiler.has_qnn_ops(compiler.import_model(cnn[0]))


def test_dropout_is_removed_so_inception_convs_get_packed():
    from d2lcc import zoo

    mod = compiler.prepare(zoo.load("inception_v1", seed=0))
    names = [gv.name_hint for gv in mod.functions]
    assert not any("dropout" in n for n in names), names
    convs = [n for n in names if "conv2d" in n]
    assert len(convs) >= 40, names  # 57 convolutions, some of the same shape
    assert all("conv2d_nchwc" in n for n in convs), names  # every one packed


def test_power_to_roots_rewrites_lrn_and_keeps_its_values():
    import onnxruntime as ort
    import tvm
    from onnx import TensorProto, helper

    node = helper.make_node("LRN", ["x"], ["y"], size=5, alpha=1e-4, beta=0.75,
                            bias=1.0)
    info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 16, 7, 7])
            for n in ("x", "y")]
    model = helper.make_model(helper.make_graph([node], "g", info[:1], info[1:]),
                              opset_imports=[helper.make_opsetid("", 13)])
    mod = tvm.transform.Sequential([compiler.power_to_roots()])(
        compiler.import_model(model))
    ops = d2lcc.ir.op_names(mod)
    assert "power" not in ops and ops.count("sqrt") == 2, ops
    x = np.random.default_rng(0).standard_normal((1, 16, 7, 7)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    compiled = d2lcc.compile(model)
    np.testing.assert_allclose(compiled(x), session.run(None, {"x": x})[0],
                               rtol=1e-5, atol=1e-7)
    # At the edges, against LRN's definition (onnxruntime's running window sum
    # turns inf - inf into NaN in channels the inf is not in).
    x[0, 0, 0, :3] = [np.inf, np.nan, 3e38]
    with np.errstate(over="ignore", invalid="ignore"):
        square = np.pad(x.astype(np.float64) ** 2, [(0, 0), (2, 2), (0, 0), (0, 0)])
        window = sum(square[:, i:i + 16] for i in range(5))
        expected = (x / (1.0 + 1e-4 / 5 * window) ** 0.75).astype(np.float32)
    np.testing.assert_allclose(compiled(x), expected, rtol=1e-5, atol=1e-7)


def test_clip_becomes_min_max_so_quantized_networks_stay_packed():
    import tvm
    from tvm import relax

    from d2lcc import ir, nchwc

    mod = ir.single_op_module(lambda x: relax.op.clip(x, -2, 3),
                              ((1, 8, 2, 2), "float32"))
    rewritten = compiler.clip_to_min_max()(mod)
    assert ir.op_names(rewritten) == ["minimum", "maximum"]
    x = np.array([-np.inf, -5, -2, 0, 2.5, 3, 7, np.inf] * 4, np.float32)
    x = x.reshape(1, 8, 2, 2)
    np.testing.assert_array_equal(compiler.build(compiler.optimize(rewritten))(x),
                                  np.clip(x, -2, 3))
    # two quantized convolutions in a row: each requantization ends in a clip,
    # which used to send the activations back to NCHW between the convolutions
    from d2lcc import qnn

    rng = np.random.default_rng(4)
    w1 = rng.integers(-64, 64, (16, 8, 3, 3), dtype=np.int8)
    w2 = rng.integers(-64, 64, (16, 16, 3, 3), dtype=np.int8)

    def two_convs(x):
        q = qnn.quantize(x, 0.05, 0, out_dtype="int8")
        for w in (w1, w2):
            q = qnn.conv2d(q, relax.const(w), 0, 0, 0.05, 0.01, padding=(1, 1))
            q = qnn.requantize(q, 0.0005, 0, 0.05, 0, out_dtype="int8")
        return qnn.dequantize(q, 0.05, 0)

    two = ir.single_op_module(two_convs, ((1, 8, 6, 6), "float32"))
    def after_rounding(keep_clip):
        simplify = [p for p in compiler.simplify_passes()
                    if not (keep_clip and p.info.name == "ClipToMinMax")]
        with tvm.target.Target({"kind": "llvm"}):
            packed = tvm.transform.Sequential(compiler.qnn_passes() + simplify
                                              + nchwc.layout_passes(8))(two)
        names = ir.op_names(packed)
        return [names[i + 1] for i, n in enumerate(names) if n == "round"]

    # the requantization after each convolution stays packed (and did not)
    assert after_rounding(keep_clip=False) == ["isnan", "minimum", "minimum"]
    assert after_rounding(keep_clip=True) == ["isnan"] + ["layout_transform"] * 2
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(d2lcc.compile(two)(x),
                                  d2lcc.compile(two, schedules="none")(x))
