"""The shared pieces: rule registry, accumulator bound, parameter checks, types."""

import numpy as np
import pytest
from tvm import relax

import d2lcc
from d2lcc import qnn
from d2lcc.qnn import common, params, shapes


def test_every_operator_has_a_registered_rule_used_by_canonicalize_and_flegalize():
    assert set(common.legalizations()) == set(qnn.ops.OP_DOCS)
    rule = common.legalizations()["quantize"]
    calls = []

    @common.register_legalize("quantize")
    def spy(bb, call):
        calls.append(call)
        return rule(bb, call)

    try:
        mod = d2lcc.ir.single_op_module(lambda x: qnn.quantize(x, 0.5, 1),
                                        ((3,), "float32"))
        qnn.transform.Canonicalize()(mod)
        d2lcc.execute.run(mod, np.zeros(3, np.float32))  # LegalizeOps -> FLegalize
        assert len(calls) == 2
    finally:
        common.register_legalize("quantize")(rule)
    assert common.legalizations()["quantize"] is rule


def test_accumulator_bound_is_the_largest_step_magnitude():
    assert common.accumulator_bound(1, "uint8", 0, "int8", 127) == 255 * 255
    assert common.accumulator_bound(10, "int8", -3, "uint8", np.array([0, 9])) == (
        10 * (128 + 3) * (255 + 9))
    assert common.accumulator_bound(0, "uint8", 200, "uint8", 200) == 0


@pytest.mark.parametrize("call,error,message", [
    (lambda: common.accumulator_bound(-1, "uint8", 0, "int8", 0), ValueError, "k=-1"),
    (lambda: common.accumulator_bound(1, "int7", 0, "int8", 0), ValueError,
     "data_dtype='int7'"),
    (lambda: common.register_legalize(3), TypeError, "name must be a str"),
    (lambda: common.register_legalize("dense")(None), TypeError,
     "rule must be callable"),
    (lambda: common.check_rule_args("f", None, None), TypeError, "f: bb must be"),
    (lambda: common.const_along([1, 2], 3, 2, "int32"), ValueError, "axis=3"),
    (lambda: params.scale_values([[1.0]], "op", "s"), TypeError, "op: s must be"),
    (lambda: params.zero_point_values(1.5, "int8", "op", "z"), ValueError,
     "op: z=1.5 must be an integer"),
    (lambda: params.zero_point_values(0, "int7", "op", "z"), TypeError, "int7"),
    (lambda: params.requantize_multiplier(1.0, 0.0), ValueError, "output_scale=0.0"),
    (lambda: qnn.ops.make_call("relu", [], {}), ValueError, "name='relu'"),
    (lambda: qnn.ops.legalize(None, None), TypeError, "qnn.ops.legalize: bb"),
    (lambda: qnn.ops.infer_dense(None, None), TypeError, "qnn.ops.infer_dense: call"),
    (lambda: shapes.pair((1, 2, 3), "op", "strides"), ValueError, "op: strides="),
    (lambda: shapes.normalize_axis(3, 2, "op"), ValueError, "op: axis=3"),
])
def test_shared_helpers_refuse_bad_input(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_expr_type_infers_nested_calls_without_emitting_them():
    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    nested = relax.op.add(relax.op.multiply(x, x), x)
    ty = shapes.expr_type(nested, "op", "data")
    assert [int(d) for d in ty.shape] == [2, 3] and str(ty.dtype) == "float32"
    assert shapes.tensor_info(qnn.quantize(nested, 0.1, 0), "op", "data") == (
        [2, 3], "int8")


def test_zero_point_ranges_are_checked_before_the_cast():
    with pytest.raises(ValueError, match="op: z=4294967301 is out of range for int32"):
        params.zero_point_values(2**32 + 5, "int32", "op", "z")
    np.testing.assert_array_equal(
        params.zero_point_values([0, 2**31 - 1], "int32", "op", "z", 2),
        [0, 2**31 - 1])
