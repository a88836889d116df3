"""Unit tests of d2lcc.passes: the passes and instruments of the chapter on passes."""

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.script import ir as I
from tvm.script import relax as R

from d2lcc import execute
from d2lcc import ir as d2lcc_ir
from d2lcc.passes import (
    IRSizeRecorder,
    PassRecorder,
    SimplifyIdentityArith,
    UnrollShortLoops,
    count_memory_accesses,
    count_relax_bindings,
    count_tir_loops,
    simplify_identity_arith_dpl,
    source,
    with_opt_level,
)
from d2lcc.passes.tir_unroll import unroll_short_loops


def _module(rng):
    rows, cols = 2, 3
    ones = R.const(np.ones((rows, cols), "float32"))
    zeros = R.const(np.zeros((rows, cols), "float32"))
    wide = R.const(np.ones((4, rows, cols), "float32"))
    bias = R.const(rng.standard_normal((rows, cols)).astype("float32"))

    @I.ir_module
    class Mod:
        @R.function
        def main(x: R.Tensor((2, 3), "float32")):
            with R.dataflow():
                a = R.multiply(x, ones)  # identity
                b = R.add(zeros, a)  # identity, constant first
                c = R.subtract(b, R.const(0.0, "float32"))  # identity, scalar
                d = R.divide(R.const(1.0, "float32"), c)  # NOT an identity (1 / c)
                e = R.add(d, bias)  # not an identity
                f = R.multiply(e, wide)  # broadcasts: must stay
                R.output(f)
            return f

    return Mod


def _ops(mod):
    names = []

    def on_call(call):
        if isinstance(call.op, tvm.ir.Op):
            names.append(call.op.name)

    tvm_ffi.structural_walk(mod["main"], [(relax.Call, on_call)])
    return sorted(names)


def _run(mod, x):
    return execute.run(mod, x, target=tvm.target.Target({"kind": "llvm"}))


def test_simplify_identity_arith_both_versions_agree_and_keep_numerics():
    rng = np.random.default_rng(0)
    mod = _module(rng)
    clean = tvm.transform.Sequential([relax.transform.CanonicalizeBindings(),
                                      relax.transform.DeadCodeElimination()])
    by_mutator = clean(SimplifyIdentityArith()(mod))
    by_pattern = clean(tvm.IRModule({"main": simplify_identity_arith_dpl(mod["main"])}))
    assert _ops(by_mutator) == ["relax.add", "relax.divide", "relax.multiply"]
    assert tvm_ffi.structural_equal(by_mutator, by_pattern)
    assert relax.analysis.check_well_formed(by_mutator)
    x = rng.uniform(1, 2, (2, 3)).astype("float32")
    np.testing.assert_allclose(_run(by_mutator, x), _run(mod, x), rtol=1e-6)


def test_simplify_identity_arith_dpl_rejects_non_function():
    with pytest.raises(TypeError, match="simplify_identity_arith_dpl: func"):
        simplify_identity_arith_dpl(tvm.IRModule())


def test_with_opt_level_gates_inside_sequential_only():
    mod = _module(np.random.default_rng(1))
    simplify = with_opt_level(SimplifyIdentityArith(), 3)
    assert simplify.info.opt_level == 3
    assert simplify.info.name == "SimplifyIdentityArith"
    rec = PassRecorder()
    with tvm.transform.PassContext(opt_level=2, instruments=[rec]):
        out = tvm.transform.Sequential([simplify])(mod)
    assert rec.names(1) == [] and tvm_ffi.structural_equal(out, mod)
    with tvm.transform.PassContext(opt_level=3, instruments=[rec]):
        tvm.transform.Sequential([simplify])(mod)
    assert rec.names(1) == ["SimplifyIdentityArith"]
    assert rec.names(2) == ["SimplifyIdentityArith"]  # the wrapped pass, one deeper
    renamed = with_opt_level(SimplifyIdentityArith(), 2, name="Simplify@O2")
    assert renamed.info.name == "Simplify@O2" and renamed.info.opt_level == 2


@pytest.mark.parametrize(
    "args, error, match",
    [
        (("not a pass", 2), TypeError, "with_opt_level: inner"),
        ((None, 5), ValueError, "with_opt_level: opt_level=5"),
        ((None, True), TypeError, "with_opt_level: opt_level must be an int"),
        ((None, -1), ValueError, "with_opt_level: opt_level=-1 must be >= 0"),
        ((None, 2, ""), ValueError, "with_opt_level: name must not be empty"),
        ((None, 2, 7), TypeError, "with_opt_level: name must be a str"),
    ],
)
def test_with_opt_level_errors(args, error, match):
    inner = args[0] if args[0] is not None else relax.transform.FoldConstant()
    args = (inner,) + args[1:]
    with pytest.raises(error, match=match):
        with_opt_level(*args)


def test_counts_and_size_recorder():
    mod = _module(np.random.default_rng(2))
    assert count_relax_bindings(mod) == 6 and count_tir_loops(mod) == 0
    legal = relax.transform.LegalizeOps()(mod)
    # five ops on 2-D tensors (the two 2x3 additions share one PrimFunc), one 3-D result
    assert d2lcc_ir.prim_func_count(legal) == 5
    assert count_tir_loops(legal) == 4 * 2 + 3
    sizes = IRSizeRecorder(depth=1)
    with tvm.transform.PassContext(instruments=[sizes]):
        tvm.transform.Sequential([relax.transform.LegalizeOps(),
                                  SimplifyIdentityArith()])(mod)
    assert sizes.rows[0] == ("(input)", 6, 0)
    assert [r[0] for r in sizes.rows[1:]] == ["LegalizeOps", "SimplifyIdentityArith"]
    with pytest.raises(TypeError, match="count_relax_bindings: mod"):
        count_relax_bindings(mod["main"])
    with pytest.raises(TypeError, match="count_tir_loops: mod"):
        count_tir_loops(None)
    with pytest.raises(ValueError, match="PassRecorder.names: depth=-2 must be >= 0"):
        PassRecorder().names(-2)


def test_count_memory_accesses_matmul():
    rng = np.random.default_rng(3)
    m, k, n = (int(v) for v in rng.integers(2, 9, size=3))
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((m, k), "float32"))
    b = relax.Var("b", relax.TensorType((k, n), "float32"))
    with bb.function("main", [a, b]):
        bb.emit_func_output(bb.emit(relax.op.matmul(a, b)))
    Mod = bb.get()

    legal = relax.transform.LegalizeOps()(Mod)
    prim = [f for f in legal.functions.values() if isinstance(f, tirx.PrimFunc)][0]
    counts = count_memory_accesses(prim)
    assert counts["a"] == (m * n * k, 0) and counts["b"] == (m * n * k, 0)
    # the update reads and writes C every iteration; the init also stores (upper bound)
    assert counts["matmul"] == (m * n * k, 2 * m * n * k)
    with pytest.raises(TypeError, match="count_memory_accesses: func"):
        count_memory_accesses(legal)


def test_unroll_short_loops():
    @I.ir_module
    class Mod:
        @R.function
        def main(x: R.Tensor((8, 3), "float32"), y: R.Tensor((8, 5), "float32")):
            return (R.exp(x), R.exp(y))

    legal = relax.transform.LegalizeOps()(Mod)
    out = UnrollShortLoops(max_extent=4)(legal)
    kinds = {}
    for gv, func in out.functions.items():
        if isinstance(func, tirx.PrimFunc):
            found = []
            tvm_ffi.structural_walk(func.body,
                                    [(tirx.For, lambda f: found.append(f.kind))])
            kinds[gv.name_hint] = found
    unrolled = sorted(sum(k == tirx.ForKind.UNROLLED for k in ks)
                      for ks in kinds.values())
    assert unrolled == [0, 1]  # only the extent-3 loop is short enough
    with pytest.raises(ValueError, match="UnrollShortLoops: max_extent=0 must be >= 1"):
        UnrollShortLoops(0)
    # the teaching function itself does not check: max_extent=0 unrolls nothing
    prims = [f for f in legal.functions.values() if isinstance(f, tirx.PrimFunc)]
    assert all(tvm_ffi.structural_equal(unroll_short_loops(f, 0), f) for f in prims)


def test_source():
    text = source("PassRecorder")
    assert text.startswith("@pass_instrument\nclass PassRecorder")
    assert "def names" in text
    assert source("with_opt_level").startswith("def with_opt_level(")
    with pytest.raises(ValueError, match="passes.source: name='nope' names no class"):
        source("nope")
    with pytest.raises(TypeError, match="passes.source: name must be a str"):
        source(3)


def test_parse_pass_timing():
    from d2lcc.passes import PassTime, parse_pass_timing

    report = ("_pipeline: 1500us [300us] (80.00%; 80.00%)\n"
              "\tLegalizeOps: 1200us [1200us] (64.00%; 80.00%)\n\n")
    assert parse_pass_timing(report) == [
        PassTime(0, "_pipeline", 1500e-6, 300e-6),
        PassTime(1, "LegalizeOps", 1200e-6, 1200e-6),
    ]
    timing = tvm.ir.instrument.PassTimingInstrument()
    with tvm.transform.PassContext(instruments=[timing]):
        outer = tvm.transform.Sequential([relax.transform.FoldConstant()], name="Outer")
        outer(_module(np.random.default_rng(4)))
        rows = parse_pass_timing(timing.render())
    assert [(r.depth, r.name) for r in rows[:2]] == [(0, "Outer"), (1, "FoldConstant")]
    assert rows[0].total_s >= rows[1].total_s >= 0
    assert parse_pass_timing("") == []
    with pytest.raises(ValueError, match="parse_pass_timing: report has a line"):
        parse_pass_timing("oops")
    with pytest.raises(TypeError, match="parse_pass_timing: report must be a str"):
        parse_pass_timing(None)


def test_cpu_pipeline_with():
    from d2lcc.passes import cpu_pipeline_with

    rng = np.random.default_rng(5)
    mod = _module(rng)
    tgt = tvm.target.Target({"kind": "llvm"})
    rec = PassRecorder()
    pipeline = cpu_pipeline_with(tgt, before=[SimplifyIdentityArith()])
    assert pipeline.info.name == "BookPipeline"
    with tvm.transform.PassContext(instruments=[rec]):
        exe = tvm.compile(mod, tgt, relax_pipeline=pipeline)
    names = rec.names(2)
    assert names[:4] == ["SimplifyIdentityArith", "DispatchSampling",
                         "DispatchSortScan", "LegalizeOps"]
    assert "FuseOps" in names and "FuseTIR" in names
    assert names.index("FuseTIR") < names.index("AttachGlobalSymbol")
    x = rng.uniform(1, 2, (2, 3)).astype("float32")
    vm = relax.VirtualMachine(exe, tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(x, tvm.cpu())).numpy()
    np.testing.assert_allclose(out, _run(mod, x), rtol=1e-6)


def test_identity_operand_decisions():
    from d2lcc.passes.relax_simplify import identity_operand

    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    ones = relax.const(np.ones((2, 3), "float32"))
    zeros = relax.const(np.zeros(3, "float32"))
    half = relax.const(np.full((2, 3), 0.5, "float32"))
    bb = relax.BlockBuilder()
    with bb.function("f", [x]):
        calls = [
            bb.normalize(relax.op.multiply(ones, x)),  # identity, constant first
            bb.normalize(relax.op.add(x, zeros)),  # identity: a (3,) zero broadcasts
            bb.normalize(relax.op.divide(ones, x)),  # 1 / x is not x
            bb.normalize(relax.op.multiply(x, half)),  # not all ones
            bb.normalize(relax.op.subtract(zeros, x)),  # 0 - x is not x
        ]
        bb.emit_func_output(x)
    found = [identity_operand(c) is not None for c in calls]
    assert found == [True, True, False, False, False]
    assert identity_operand(x) is None


def test_count_memory_accesses_rejects_symbolic_extents():
    n = tvm.tirx.Var("n", "int64")
    bb = relax.BlockBuilder()
    a = relax.Var("a", relax.TensorType((n,), "float32"))
    with bb.function("main", [a]):
        bb.emit_func_output(bb.emit(relax.op.exp(a)))
    legal = relax.transform.LegalizeOps()(bb.get())
    prim = [f for f in legal.functions.values() if isinstance(f, tirx.PrimFunc)][0]
    with pytest.raises(ValueError, match="count_memory_accesses: func has a loop .* "
                                         "non-constant extent"):
        count_memory_accesses(prim)
