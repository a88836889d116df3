"""Tests of d2lcc.byoc: patterns, partitioning, both codegens, export, refusals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tvm
from tvm import relax

from d2lcc import byoc, ir
from d2lcc.byoc import c_codegen, kernels, library, patterns, region

COMBOS = list(itertools.product(("matmul", "conv2d"), (False, True), (False, True)))


def chain(op, bias, relu, x_shape, w, b=None, strides=(1, 1), padding=(0, 0)):
    """A one-input module: relu?(op(x, w) + b?), then tanh (which stays with TVM)."""

    def build(x):
        if op == "matmul":
            y = relax.op.matmul(x, relax.const(w))
        else:
            y = relax.op.nn.conv2d(x, relax.const(w), strides=strides, padding=padding)
        if bias:
            y = relax.op.add(y, relax.const(b))
        if relu:
            y = relax.op.nn.relu(y)
        return relax.op.tanh(y)

    return ir.single_op_module(build, (x_shape, "float32"))


def composites(mod):
    """The Composite names of the functions nested in mod's Codegen functions."""
    names = []
    for _, func in mod.functions.items():
        if isinstance(func, relax.Function) and "Codegen" in (func.attrs or {}):
            for binding in func.body.blocks[0].bindings:
                if isinstance(binding.value, relax.Function):
                    names.append(str(binding.value.attrs["Composite"]))
    return names


def random_case(rng, op, bias, relu):
    """Random shapes and float32 data for one kernel; returns (module, inputs, ref)."""
    if op == "matmul":
        m, k, n = (int(v) for v in rng.integers(1, 40, 3))
        x = rng.standard_normal((m, k)).astype("float32")
        w = rng.standard_normal((k, n)).astype("float32")
        b = rng.standard_normal(n).astype("float32")
        kernel = kernels.Kernel("matmul", (m, k), (k, n), (m, n), bias, relu)
        return chain(op, bias, relu, x.shape, w, b), x, kernel, w, b
    c, o = (int(v) for v in rng.integers(1, 6, 2))
    h, wd = (int(v) for v in rng.integers(3, 12, 2))
    r, s = (int(v) for v in rng.integers(1, 4, 2))
    strides = tuple(int(v) for v in rng.integers(1, 3, 2))
    pad = tuple(int(v) for v in rng.integers(0, 2, 2))
    x = rng.standard_normal((int(rng.integers(1, 3)), c, h, wd)).astype("float32")
    w = rng.standard_normal((o, c, r, s)).astype("float32")
    b = rng.standard_normal((1, o, 1, 1)).astype("float32")
    out = (x.shape[0], o, (h + 2 * pad[0] - r) // strides[0] + 1,
           (wd + 2 * pad[1] - s) // strides[1] + 1)
    kernel = kernels.Kernel("conv2d", x.shape, w.shape, out, bias, relu, strides,
                            (pad[0], pad[1], pad[0], pad[1]))
    return chain(op, bias, relu, x.shape, w, b, strides, pad), x, kernel, w, b


# ----------------------------------------------------------------- patterns


@pytest.mark.parametrize("op,bias,relu", COMBOS)
def test_each_pattern_matches_its_chain_and_nothing_else(op, bias, relu):
    rng = np.random.default_rng(0)
    mod, *_ = random_case(rng, op, bias, relu)
    parted = byoc.partition(mod)
    name = op + "_bias" * bias + "_relu" * relu
    assert composites(parted) == [f"d2lcc_c.{name}"]
    assert ir.op_names(parted) == ["tanh"]  # the rest stays with TVM


def test_nothing_matches_a_module_without_matmul_or_conv():
    mod = ir.single_op_module(lambda x: relax.op.nn.relu(relax.op.tanh(x)),
                              ([4, 4], "float32"))
    parted = byoc.partition(mod)
    assert composites(parted) == []
    assert ir.op_names(parted) == ["tanh", "nn.relu"]


def test_a_bias_that_is_not_per_channel_stays_with_tvm():
    w = np.ones((8, 4), "float32")
    full = np.ones((3, 4), "float32")  # one value per element, not per channel
    mod = ir.single_op_module(
        lambda x: relax.op.nn.relu(relax.op.add(relax.op.matmul(x, relax.const(w)),
                                                relax.const(full))),
        ([3, 8], "float32"))
    parted = byoc.partition(mod)
    assert composites(parted) == ["d2lcc_c.matmul"]
    assert ir.op_names(parted) == ["add", "nn.relu"]


def test_pattern_table_is_longest_first_and_registers():
    names = [entry[0] for entry in byoc.pattern_table("d2lcc_blas")]
    assert names[0] == "d2lcc_blas.matmul_bias_relu" and names[3] == "d2lcc_blas.matmul"
    assert len(names) == 8
    registered = byoc.register_patterns("d2lcc_c")
    from tvm.relax.backend.pattern_registry import get_patterns_with_prefix

    found = [str(p.name) for p in get_patterns_with_prefix("d2lcc_c")]
    assert found[:len(registered)] == registered


# ------------------------------------------------------- codegens, numerics


def run_offloaded(mod, codegen, *inputs):
    compiled = byoc.compile(mod, codegen, schedules="none")
    return compiled(*inputs), compiled


@pytest.mark.parametrize("codegen", ["d2lcc_c", "d2lcc_blas"])
def test_generated_code_matches_numpy_on_random_shapes(codegen):
    rng = np.random.default_rng(7)
    for op, bias, relu in COMBOS:
        mod, x, kernel, w, b = random_case(rng, op, bias, relu)
        got, compiled = run_offloaded(mod, codegen, x)
        want = np.tanh(kernels.reference(kernel, x, w, b))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=str(kernel))
        assert any(codegen in name for name in
                   (k.name for k in compiled.profile(x, repeat=1)))


def test_a_merged_region_chains_kernels_through_temporaries():
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((6, 9)).astype("float32")
    w2 = rng.standard_normal((9, 5)).astype("float32")
    mod = ir.single_op_module(
        lambda x: relax.op.matmul(relax.op.nn.relu(relax.op.matmul(x, relax.const(w1))),
                                  relax.const(w2)), ([4, 6], "float32"))
    offloaded = byoc.offload(mod)
    source = offloaded.attrs["external_mods"][0].inspect_source()
    assert "d2lcc_temp(&v0" in source and source.count("static int") >= 2
    x = rng.standard_normal((4, 6)).astype("float32")
    got, _ = run_offloaded(mod, "d2lcc_c", x)
    np.testing.assert_allclose(got, np.maximum(x @ w1, 0) @ w2, rtol=1e-5, atol=1e-5)


def test_generated_c_handles_large_and_special_values():
    w = np.array([[1.0, -1.0], [1.0, 1.0]], "float32")
    mod = chain("matmul", False, True, (3, 2), w)
    x = np.array([[3e38, 3e38], [np.inf, 0], [np.nan, 1]], "float32")
    got, _ = run_offloaded(mod, "d2lcc_c", x)
    with np.errstate(all="ignore"):
        want = np.tanh(np.maximum(x @ w, 0))
    assert np.isnan(want[2]).all()  # NaN stays NaN through ReLU, as in NumPy
    np.testing.assert_array_equal(got, want)


def test_wrapper_checks_arguments_at_run_time():
    w = np.ones((4, 3), "float32")
    compiled = byoc.compile(chain("matmul", False, False, (2, 4), w), "d2lcc_c")
    symbol = [k for k in compiled.profile(np.ones((2, 4), "float32"), repeat=1)
              if "d2lcc_c" in k.name][0].name
    func = compiled.executable.jit().get_function(symbol, query_imports=True)
    dev = tvm.cpu()
    good = [tvm.runtime.tensor(np.ones(s, "float32"), dev) for s in [(2, 4), (4, 3),
                                                                     (2, 3)]]
    func(*good)
    np.testing.assert_array_equal(good[2].numpy(), np.full((2, 3), 4.0, "float32"))
    with pytest.raises(ValueError, match="argument 0 is not float32"):
        func(tvm.runtime.tensor(np.ones((2, 4), "float64"), dev), *good[1:])
    with pytest.raises(ValueError, match="argument 1 has the wrong number"):
        func(good[0], tvm.runtime.tensor(np.ones((4, 4), "float32"), dev), good[2])
    with pytest.raises(ValueError, match="wrong number of arguments"):
        func(*good[:2])


# ------------------------------------------------------------ export / load


def test_export_and_run_in_a_fresh_process(tmp_path):
    rng = np.random.default_rng(5)
    mod, x, kernel, w, b = random_case(rng, "conv2d", True, True)
    want = np.tanh(kernels.reference(kernel, x, w, b))
    c = byoc.compile(mod, "d2lcc_c")
    path = byoc.export_library(c, tmp_path / "c.so")
    np.testing.assert_allclose(byoc.run_exported(path, x), want, rtol=1e-5, atol=1e-5)
    blas = byoc.compile(mod, "d2lcc_blas")
    path = byoc.export_library(blas, tmp_path / "blas.so")
    np.testing.assert_allclose(byoc.run_exported(path, x, register=True), want,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="d2lcc.blas.conv2d is not registered"):
        byoc.run_exported(path, x)


# ------------------------------------------------------------------ refusals


def unsupported_modules():
    f16 = ir.single_op_module(lambda x, w: relax.op.matmul(x, w),
                              ([4, 8], "float16"), ([8, 3], "float16"))
    batched = ir.single_op_module(lambda x, w: relax.op.matmul(x, w),
                                  ([2, 4, 8], "float32"), ([2, 8, 3], "float32"))
    nhwc = ir.single_op_module(
        lambda x, w: relax.op.nn.conv2d(x, w, data_layout="NHWC", kernel_layout="OHWI"),
        ([1, 8, 8, 4], "float32"), ([6, 3, 3, 4], "float32"))
    grouped = ir.single_op_module(lambda x, w: relax.op.nn.conv2d(x, w, groups=2),
                                  ([1, 4, 8, 8], "float32"), ([6, 2, 3, 3], "float32"))
    dilated = ir.single_op_module(lambda x, w: relax.op.nn.conv2d(x, w, dilation=2),
                                  ([1, 4, 8, 8], "float32"), ([6, 4, 3, 3], "float32"))
    x = relax.Var("x", relax.TensorType([tvm.tirx.Var("n", "int64"), 8], "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.matmul(x, relax.const(np.ones((8, 3),
                                                                        "float32"))))
        bb.emit_func_output(out)
    return [
        (f16, "relax.matmul to d2lcc_c: data dtype is float16"),
        (batched, r"relax.matmul to d2lcc_c: operand ranks are \[3, 3\]"),
        (nhwc, "relax.nn.conv2d to d2lcc_c: layouts are data=NHWC, kernel=OHWI"),
        (grouped, "relax.nn.conv2d to d2lcc_c: groups=2"),
        (dilated, r"relax.nn.conv2d to d2lcc_c: dilation=\[2, 2\]"),
        (bb.get(), r"relax.matmul to d2lcc_c: data shape \(n, 8\) is not static"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_unsupported_region_is_refused_at_partition_time(case):
    mod, message = unsupported_modules()[case]
    with pytest.raises(ValueError, match="byoc.partition: cannot offload " + message):
        byoc.partition(mod)
    with pytest.raises(ValueError, match="pass unsupported='tvm'"):
        byoc.compile(mod, "d2lcc_blas")
    assert composites(byoc.partition(mod, unsupported="tvm")) == []


def test_unsupported_region_left_to_tvm_still_runs():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 8, 8)).astype("float32")
    w = rng.standard_normal((6, 2, 3, 3)).astype("float32")
    mod = ir.single_op_module(lambda v: relax.op.nn.conv2d(v, relax.const(w), groups=2),
                              (x.shape, "float32"))
    got = byoc.compile(mod, "d2lcc_c", unsupported="tvm", schedules="none")(x)
    halves = [kernels.reference(kernels.Kernel("conv2d", (1, 2, 8, 8), (3, 2, 3, 3),
                                               (1, 3, 6, 6), False, False),
                                x[:, 2 * g:2 * g + 2], w[3 * g:3 * g + 3])
              for g in range(2)]
    np.testing.assert_allclose(got, np.concatenate(halves, axis=1), rtol=1e-5,
                               atol=1e-5)


# ----------------------------------------------------- helpers and bad input


def test_kernel_checks_its_shapes():
    with pytest.raises(ValueError, match="disagree on K"):
        kernels.Kernel("matmul", (2, 3), (4, 5), (2, 5), False, False)
    with pytest.raises(ValueError, match="out=.* does not match"):
        kernels.Kernel("matmul", (2, 3), (3, 5), (2, 6), False, False)
    with pytest.raises(ValueError, match="op"):
        kernels.Kernel("dense", (2, 3), (3, 5), (2, 5), False, False)
    with pytest.raises(ValueError, match="does not fit"):
        kernels.Kernel("conv2d", (1, 2, 2, 2), (1, 2, 3, 3), (1, 1, 1, 1), False, False)
    with pytest.raises(TypeError, match="bias"):
        kernels.Kernel("matmul", (2, 3), (3, 5), (2, 5), 1, False)
    k = kernels.Kernel("conv2d", [1, 2, 5, 5], [3, 2, 3, 3], [1, 3, 3, 3], True, True,
                       [2, 2], [1, 1, 1, 1])
    assert k.name == "conv2d_bias_relu" and k.strides == (2, 2)


def test_reference_checks_arrays():
    k = kernels.Kernel("matmul", (2, 3), (3, 4), (2, 4), True, False)
    with pytest.raises(ValueError, match="x has shape"):
        kernels.reference(k, np.ones((3, 3)), np.ones((3, 4)), np.ones(4))
    with pytest.raises(ValueError, match="b has 3 elements"):
        kernels.reference(k, np.ones((2, 3)), np.ones((3, 4)), np.ones(3))
    with pytest.raises(TypeError, match="kernel"):
        kernels.reference("matmul", np.ones((2, 3)), np.ones((3, 4)))


def test_emitters_and_helpers_refuse_bad_arguments():
    k = kernels.Kernel("matmul", (2, 3), (3, 4), (2, 4), False, False)
    with pytest.raises(ValueError, match="not a C identifier"):
        byoc.kernel_source(k, "2fast")
    with pytest.raises(ValueError, match="not a conv2d"):
        c_codegen.conv2d_c("k", k)
    with pytest.raises(TypeError, match="region"):
        c_codegen.wrapper_c("region", str)
    with pytest.raises(TypeError, match="func"):
        region.read_region(relax.Var("x", relax.TensorType([2], "float32")))
    with pytest.raises(TypeError, match="call"):
        patterns.problem(relax.const(1.0))
    with pytest.raises(TypeError, match="functions"):
        library.blas_codegen(None, {}, {})
    with pytest.raises(ValueError, match="codegen"):
        byoc.partition(ir.single_op_module(relax.op.tanh, ([2], "float32")), "dnnl")
    with pytest.raises(TypeError, match="mod"):
        byoc.partition("mod")
    with pytest.raises(TypeError, match="cflags"):
        byoc.compile(ir.single_op_module(relax.op.tanh, ([2], "float32")), cflags="-O3")
    assert "for (int p = 0; p < 3; ++p)" in byoc.kernel_source(k)


def test_register_is_idempotent():
    first, second = byoc.register(), byoc.register()
    assert first == second
    assert tvm.get_global_func("relax.ext.d2lcc_c", allow_missing=True) is not None
