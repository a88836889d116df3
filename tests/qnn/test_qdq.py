"""d2lcc.qnn.qdq: QuantizeToQnn and FakeQuantizationToInteger on hand-built modules."""

import numpy as np
import pytest
from qnn_harness import compiled
from tvm import relax

from d2lcc import ir
from d2lcc.qnn import api, evaluate, qdq


def _ops(mod):
    text = mod.script(show_meta=False)
    return [line.split("= R.")[1].split("(")[0] for line in text.splitlines()
            if "= R." in line]


def _fq(inner, out_scale=0.05, out_zero=10, in_scale=0.05, in_zero=10):
    """quantize(inner(dequantize(quantize(x)))) over a [1, 2, 4, 4] float input."""
    def build(x):
        q = api.quantize(x, in_scale, in_zero, "uint8", axis=1)
        return api.quantize(inner(api.dequantize(q, in_scale, in_zero, axis=1)),
                            out_scale, out_zero, "uint8", axis=1)
    bb_mod = ir.single_op_module(build, ((1, 2, 4, 4), "float32"))
    return relax.transform.Normalize()(bb_mod)


def _check_against_float(before, after, rng):
    x = rng.normal(0, 1, (1, 2, 4, 4)).astype("float32")
    got, ref = compiled(after)([x]), compiled(before)([x])
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, evaluate.run_reference(after, x))


@pytest.mark.parametrize("inner, expected", [
    (relax.op.nn.relu, ["qnn.quantize", "maximum", "minimum"]),
    (lambda y: relax.op.clip(y, -0.2, 0.3), ["qnn.quantize", "maximum", "minimum"]),
    (lambda y: relax.op.nn.max_pool2d(y, (2, 2), (2, 2)),
     ["qnn.quantize", "nn.max_pool2d"]),
    (lambda y: relax.op.reshape(y, (1, 32)), ["qnn.quantize", "reshape"]),
])
def test_rewrites_are_exact(rng, inner, expected):
    before = _fq(inner)
    after = qdq.FakeQuantizationToInteger()(before)
    assert _ops(after) == expected
    _check_against_float(before, after, rng)


def test_different_parameters_get_a_requantize(rng):
    before = _fq(lambda y: relax.op.nn.max_pool2d(y, (2, 2), (2, 2)), out_scale=0.1,
                 out_zero=3)
    after = qdq.FakeQuantizationToInteger()(before)
    assert _ops(after) == ["qnn.quantize", "nn.max_pool2d", "qnn.requantize"]
    x = rng.normal(0, 1, (1, 2, 4, 4)).astype("float32")
    np.testing.assert_array_equal(compiled(after)([x]),
                                  evaluate.run_reference(after, x))
    ulps = np.abs(compiled(after)([x]).astype(int) - compiled(before)([x]))
    assert ulps.max() <= 1


def test_an_operator_without_a_rule_stays_in_float():
    before = _fq(lambda y: relax.op.nn.softmax(y, axis=1))
    after = qdq.FakeQuantizationToInteger()(before)
    assert "nn.softmax" in _ops(after) and "qnn.dequantize" in _ops(after)


def test_rules_can_be_replaced():
    before = _fq(relax.op.nn.relu)
    after = qdq.FakeQuantizationToInteger({})(before)
    assert "nn.relu" not in _ops(after)  # identity rule absent: nothing matched
    kept = qdq.FakeQuantizationToInteger({"relax.nn.conv2d": qdq.conv2d_to_integer})
    assert "nn.relu" in _ops(kept(before))


def test_quantize_to_qnn_maps_builtin_operators():
    def build(x):
        q = relax.op.quantize(x, relax.const(0.5, "float32"), relax.const(3, "int8"),
                              axis=1, out_dtype="int8")
        return relax.op.dequantize(q, relax.const(0.5, "float32"),
                                   relax.const(3, "int8"), axis=1)
    mod = qdq.QuantizeToQnn()(ir.single_op_module(build, ((2, 4), "float32")))
    assert _ops(mod) == ["qnn.quantize", "qnn.dequantize"]


def test_quantize_to_qnn_needs_constant_parameters():
    def build(x, s):
        return relax.op.quantize(x, s, relax.const(3, "int8"), axis=1,
                                 out_dtype="int8")
    mod = ir.single_op_module(build, ((2, 4), "float32"), ((), "float32"))
    with pytest.raises(ValueError, match="QuantizeToQnn: relax.quantize needs "
                       "constant scale and zero point"):
        qdq.QuantizeToQnn()(mod)


def test_bad_arguments():
    with pytest.raises(TypeError, match="FakeQuantizationToInteger: rules must be"):
        qdq.FakeQuantizationToInteger([("relax.nn.conv2d", None)])
    with pytest.raises(TypeError, match="rules\\['x'\\]"):
        qdq.FakeQuantizationToInteger({"x": 3})
    with pytest.raises(TypeError, match="qdq.ints: values must be an array"):
        qdq.ints("abc")
    with pytest.raises(TypeError, match="dequantized: lookup"):
        qdq.dequantized(None, "not callable")
    assert qdq.ints([1, np.int64(2)]) == [1, 2]
