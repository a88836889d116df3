"""d2lcc.ir's helpers for passes and kernels."""

import numpy as np
import pytest

from d2lcc import ir


def test_is_scheduled_reads_the_mark_and_refuses_other_objects():
    import tvm
    from tvm import relax

    mod = ir.single_op_module(relax.op.nn.relu, ((4,), "float32"))
    with tvm.target.Target({"kind": "llvm"}):
        lowered = relax.transform.LegalizeOps()(mod)
    (kernel,) = [f for f in lowered.functions.values()
                 if isinstance(f, tvm.tirx.PrimFunc)]
    assert not ir.is_scheduled(kernel)
    assert ir.is_scheduled(kernel.with_attr("tirx.is_scheduled", True))
    with pytest.raises(TypeError, match="func must be a tvm.tirx.PrimFunc"):
        ir.is_scheduled(lowered)


def test_rewrite_pass_rewrites_every_match_and_keeps_declined_ones():
    from tvm import relax
    from tvm.relax.dpl import is_op, wildcard

    x = wildcard()
    pattern = is_op("relax.negative")(is_op("relax.negative")(x))

    def rewrite(expr, matches):  # -(-x) is x, except for float16 (kept, say)
        return expr if str(expr.ty.dtype) == "float16" else matches[x]

    def twice(dtype):
        return ir.single_op_module(
            lambda v: relax.op.add(relax.op.negative(relax.op.negative(v)), v),
            ((3,), dtype))

    simplify = ir.rewrite_pass("NegNeg", pattern, rewrite)
    assert simplify.info.name == "NegNeg"
    assert ir.op_names(simplify(twice("float32"))) == ["add"]
    assert ir.op_names(simplify(twice("float16"))) == ["negative", "negative", "add"]
    from d2lcc import compiler

    v = np.arange(3, dtype=np.float32)
    got = compiler.compile(simplify(twice("float32")))(v)
    np.testing.assert_array_equal(got, 2 * v)
    with pytest.raises(TypeError, match="pattern must be a relax.dpl pattern"):
        ir.rewrite_pass("P", "x", rewrite)
    with pytest.raises(TypeError, match="rewrite must be callable"):
        ir.rewrite_pass("P", pattern, None)
