"""Bad input to every public function of d2lcc.passes raises a clear error.

Each error is a TypeError or ValueError whose message starts with the function's
name and names the argument. The teaching functions (``__teaching__``), which the
book shows verbatim, do not check their arguments and are not tested here.
"""

import importlib
import inspect

import numpy as np
import pytest
import tvm
from tvm import relax

import d2lcc.passes as passes
from d2lcc.passes import (
    PassRecorder,
    PassTime,
    UnrollShortLoops,
    count_memory_accesses,
    count_relax_bindings,
    count_tir_loops,
    cpu_pipeline_with,
    parse_pass_timing,
    simplify_identity_arith_dpl,
    source,
    with_opt_level,
)

FOLD = relax.transform.FoldConstant()
LLVM = tvm.target.Target({"kind": "llvm"})

CASES = [
    # (call, error, message start)
    (lambda: count_relax_bindings(None), TypeError, "count_relax_bindings: mod"),
    (lambda: count_relax_bindings("mod"), TypeError, "count_relax_bindings: mod"),
    (lambda: count_tir_loops(None), TypeError, "count_tir_loops: mod"),
    (lambda: count_tir_loops(3), TypeError, "count_tir_loops: mod"),
    (lambda: count_memory_accesses(None), TypeError, "count_memory_accesses: func"),
    (lambda: count_memory_accesses(tvm.IRModule()), TypeError,
     "count_memory_accesses: func"),
    (lambda: PassRecorder().names(None), TypeError, "PassRecorder.names: depth"),
    (lambda: PassRecorder().names(-1), ValueError, "PassRecorder.names: depth=-1"),
    (lambda: PassRecorder().names(1.5), TypeError, "PassRecorder.names: depth"),
    (lambda: PassRecorder().names(True), TypeError, "PassRecorder.names: depth"),
    (lambda: PassRecorder().names(2**40), ValueError, "PassRecorder.names: depth"),
    (lambda: with_opt_level(None, 2), TypeError, "with_opt_level: inner"),
    (lambda: with_opt_level(FOLD, None), TypeError, "with_opt_level: opt_level"),
    (lambda: with_opt_level(FOLD, 2.0), TypeError, "with_opt_level: opt_level"),
    (lambda: with_opt_level(FOLD, 10**12), ValueError, "with_opt_level: opt_level"),
    (lambda: with_opt_level(FOLD, -3), ValueError, "with_opt_level: opt_level=-3"),
    (lambda: with_opt_level(FOLD, 1, name=b"x"), TypeError, "with_opt_level: name"),
    (lambda: cpu_pipeline_with(None), TypeError, "cpu_pipeline_with: target"),
    (lambda: cpu_pipeline_with({"kind": "llvm"}), TypeError,
     "cpu_pipeline_with: target"),
    (lambda: cpu_pipeline_with(tvm.target.Target({"kind": "c"})), ValueError,
     "cpu_pipeline_with: target='c'"),
    (lambda: cpu_pipeline_with(LLVM, before=None), TypeError,
     "cpu_pipeline_with: before"),
    (lambda: cpu_pipeline_with(LLVM, before=FOLD), TypeError,
     "cpu_pipeline_with: before"),
    (lambda: cpu_pipeline_with(LLVM, before=["FoldConstant"]), TypeError,
     r"cpu_pipeline_with: before\[0\]"),
    (lambda: cpu_pipeline_with(LLVM, name=None), TypeError, "cpu_pipeline_with: name"),
    (lambda: cpu_pipeline_with(LLVM, name=""), ValueError, "cpu_pipeline_with: name"),
    (lambda: simplify_identity_arith_dpl(None), TypeError,
     "simplify_identity_arith_dpl: func"),
    (lambda: simplify_identity_arith_dpl(tvm.IRModule()), TypeError,
     "simplify_identity_arith_dpl: func"),
    (lambda: source(None), TypeError, "passes.source: name"),
    (lambda: source(""), ValueError, "passes.source: name"),
    (lambda: source("no_such_thing"), ValueError, "passes.source: name='no_such"),
    (lambda: parse_pass_timing(None), TypeError, "parse_pass_timing: report"),
    (lambda: parse_pass_timing(b"x: 1us [1us]"), TypeError, "parse_pass_timing: rep"),
    (lambda: parse_pass_timing("x: -1us [1us]"), ValueError, "parse_pass_timing: rep"),
    (lambda: parse_pass_timing("x: 1us [2us]"), ValueError, "PassTime: self_s"),
    (lambda: PassTime(None, "x", 0.0, 0.0), TypeError, "PassTime: depth"),
    (lambda: PassTime(-1, "x", 0.0, 0.0), ValueError, "PassTime: depth=-1"),
    (lambda: PassTime(0, None, 0.0, 0.0), TypeError, "PassTime: name"),
    (lambda: PassTime(0, "x", float("nan"), 0.0), ValueError, "PassTime: total_s"),
    (lambda: PassTime(0, "x", float("inf"), 0.0), ValueError, "PassTime: total_s"),
    (lambda: PassTime(0, "x", 1.0, -1.0), ValueError, "PassTime: self_s=-1.0"),
    (lambda: PassTime(0, "x", "1", 0.0), TypeError, "PassTime: total_s"),
    (lambda: UnrollShortLoops(None), TypeError, "UnrollShortLoops: max_extent"),
    (lambda: UnrollShortLoops(0), ValueError, "UnrollShortLoops: max_extent=0"),
    (lambda: UnrollShortLoops(-4), ValueError, "UnrollShortLoops: max_extent=-4"),
    (lambda: UnrollShortLoops(2.5), TypeError, "UnrollShortLoops: max_extent"),
    (lambda: UnrollShortLoops(False), TypeError, "UnrollShortLoops: max_extent"),
    (lambda: UnrollShortLoops(2**40), ValueError, "UnrollShortLoops: max_extent"),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_bad_input_raises_named_error(index):
    call, error, message = CASES[index]
    with pytest.raises(error, match="^" + message):
        call()


def test_every_public_function_is_covered():
    """Every public callable of d2lcc.passes but the teaching ones has a case above."""
    text = open(__file__, encoding="utf-8").read()
    teaching = set()
    for module_name in ("analysis", "instruments", "levels", "pipeline",
                        "relax_simplify", "source", "timing", "tir_unroll"):
        module = importlib.import_module(f"d2lcc.passes.{module_name}")
        teaching |= set(getattr(module, "__teaching__", ()))
    public = [n for n in passes.__all__ if callable(getattr(passes, n))]
    no_arguments = {"SimplifyIdentityArith"}  # a pass constructor without parameters
    missing = [n for n in public if n not in teaching | no_arguments
               and f"{n}(" not in text]
    assert missing == []
    assert not inspect.signature(passes.SimplifyIdentityArith).parameters


def test_edges_give_defined_answers():
    """Empty modules and an empty timing report have defined, not failing, answers."""
    empty = tvm.IRModule()
    assert count_relax_bindings(empty) == 0 and count_tir_loops(empty) == 0
    assert parse_pass_timing("") == [] and parse_pass_timing("\n\n") == []
    assert PassRecorder().names(10**6) == []
    big = with_opt_level(FOLD, 4)
    assert big.info.opt_level == 4 and big.info.name == "FoldConstant"
    x = relax.Var("x", relax.TensorType((0,), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.multiply(x, relax.const(np.ones(0, "float32"))))
        bb.emit_func_output(y)
    out = simplify_identity_arith_dpl(bb.get()["main"])
    assert isinstance(out, relax.Function)
