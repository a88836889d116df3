"""The lowering of quantize and conv2d, compared with hand-written Relax."""

import numpy as np
import tvm_ffi
from tvm import relax
from tvm.script import relax as R


import d2lcc
from d2lcc import qnn
from d2lcc.ir import single_op_module as _one_op_module


def _assert_same(actual_mod, expected_func):
    """Compare after CanonicalizeBindings (drops var-to-var bindings), ignore names."""
    canonical = relax.transform.CanonicalizeBindings()(actual_mod)
    actual = canonical["main"].without_attr("global_symbol")
    expected_func = expected_func.without_attr("global_symbol")
    same = tvm_ffi.structural_equal(actual, expected_func, map_free_vars=True)
    assert same, actual.script(show_meta=False)


def _quantize_module(out_dtype="uint8", zero_point=127):
    def make(x):
        return qnn.quantize(x, 0.5, zero_point, out_dtype=out_dtype)

    return _one_op_module(make, ((2, 5), "float32"))


def test_qnn_ops_print_as_themselves():
    printed = ('R.qnn.quantize(x0, R.const(0.5, "float32"), R.const(127, "int32"), '
               'axis=1, out_dtype="uint8")')
    assert printed in _quantize_module().script()


def test_quantize_saturates_in_float_before_the_cast():
    @R.function
    def expected(x0: R.Tensor((2, 5), "float32")) -> R.Tensor((2, 5), "uint8"):
        with R.dataflow():
            a = R.divide(x0, R.const(0.5, "float32"))
            b = R.round(a)
            nan = R.isnan(b)
            c = R.where(nan, R.const(0.0, "float32"), b)
            d = R.add(c, R.const(127.0, "float32"))
            e = R.clip(d, 0, 255)
            f = R.astype(e, "uint8")
            R.output(f)
        return f

    _assert_same(qnn.transform.Canonicalize()(_quantize_module()), expected)


def test_quantize_to_int32_saturates_in_float64():
    @R.function
    def expected(x0: R.Tensor((2, 5), "float32")) -> R.Tensor((2, 5), "int32"):
        with R.dataflow():
            a = R.divide(x0, R.const(0.5, "float32"))
            b = R.round(a)
            b64 = R.astype(b, "float64")
            nan = R.isnan(b64)
            c = R.where(nan, R.const(0.0, "float64"), b64)
            d = R.add(c, R.const(-7.0, "float64"))
            e = R.clip(d, -(2**31), 2**31 - 1)
            f = R.astype(e, "int32")
            R.output(f)
        return f

    lowered = qnn.transform.Canonicalize()(_quantize_module("int32", -7))
    _assert_same(lowered, expected)


def test_conv2d_with_zero_points_lowers_to_four_terms():
    make = lambda d, w: qnn.conv2d(d, w, 1, 1, 0.5, 0.25)  # noqa: E731
    mod = _one_op_module(make, ((1, 3, 6, 6), "uint8"), ((4, 3, 3, 3), "uint8"))
    ones = relax.const(np.ones((1, 1, 3, 3), "int32"))

    @R.function
    def expected(
        x0: R.Tensor((1, 3, 6, 6), "uint8"), x1: R.Tensor((4, 3, 3, 3), "uint8")
    ):
        with R.dataflow():
            conv = R.nn.conv2d(x0, x1, out_dtype="int32")
            d32 = R.astype(x0, "int32")
            dsum = R.sum(d32, axis=[1], keepdims=True)
            pooled = R.nn.conv2d(dsum, ones, out_dtype="int32")
            w32 = R.astype(x1, "int32")
            wsum = R.sum(w32, axis=[1, 2, 3])
            wsum4 = R.reshape(wsum, [1, 4, 1, 1])
            t1 = R.subtract(conv, pooled)
            t2 = R.subtract(t1, wsum4)
            out = R.add(t2, R.const(27, "int32"))
            R.output(out)
        return out

    _assert_same(qnn.transform.Canonicalize()(mod), expected)


def test_symmetric_conv2d_lowers_to_one_integer_conv():
    make = lambda d, w: qnn.conv2d(d, w, 0, 0, 0.5, 0.25, padding=(1, 1))  # noqa: E731
    mod = _one_op_module(make, ((1, 3, 6, 6), "int8"), ((4, 3, 3, 3), "int8"))

    @R.function
    def expected(
        x0: R.Tensor((1, 3, 6, 6), "int8"), x1: R.Tensor((4, 3, 3, 3), "int8")
    ):
        with R.dataflow():
            out = R.nn.conv2d(x0, x1, padding=[1, 1, 1, 1], out_dtype="int32")
            R.output(out)
        return out

    _assert_same(qnn.transform.Canonicalize()(mod), expected)


def test_conv2d_with_constant_weight_folds_the_constant_terms():
    w = np.random.default_rng(0).integers(0, 256, (4, 3, 3, 3)).astype("uint8")
    make = lambda d: qnn.conv2d(d, relax.const(w), 1, 1, 0.5, 0.25)  # noqa: E731
    mod = _one_op_module(make, ((1, 3, 6, 6), "uint8"))
    ones = relax.const(np.ones((1, 1, 3, 3), "int32"))
    folded = 27 - w.astype(np.int64).sum(axis=(1, 2, 3))
    folded = relax.const(folded.astype("int32").reshape(1, 4, 1, 1))
    weight = relax.const(w)

    @R.function
    def expected(x0: R.Tensor((1, 3, 6, 6), "uint8")):
        with R.dataflow():
            conv = R.nn.conv2d(x0, weight, out_dtype="int32")
            d32 = R.astype(x0, "int32")
            dsum = R.sum(d32, axis=[1], keepdims=True)
            pooled = R.nn.conv2d(dsum, ones, out_dtype="int32")
            t1 = R.subtract(conv, pooled)
            out = R.add(t1, folded)
            R.output(out)
        return out

    _assert_same(qnn.transform.Canonicalize()(mod), expected)


def test_zero_terms_are_not_emitted():
    lowered = qnn.transform.Canonicalize()(_quantize_module("int8", 0))
    assert d2lcc.ir.op_names(lowered) == [
        "divide", "round", "isnan", "where", "clip", "astype"]
    mod = _one_op_module(lambda q: qnn.dequantize(q, 0.5, 0), ((2, 5), "int8"))
    assert "subtract" not in d2lcc.ir.op_names(qnn.transform.Canonicalize()(mod))
