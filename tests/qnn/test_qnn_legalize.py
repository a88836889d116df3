"""LegalizeUint8Int8: conv2d/dense take uint8 data x int8 weights, same results."""

import numpy as np
import pytest
from tvm import relax

from d2lcc import qnn
from d2lcc.qnn import reference as ref
from d2lcc.qnn.params import DTYPE_RANGES

from qnn_harness import build_module


def _ints(rng, shape, dtype):
    lo, hi = DTYPE_RANGES[dtype]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def _operand_dtypes(mod):
    """(data dtype, weight dtype) of every qnn.conv2d / qnn.dense call in ``mod``."""
    found = []

    def visit(expr):
        if qnn.ops.is_qnn_call(expr, "conv2d") or qnn.ops.is_qnn_call(expr, "dense"):
            found.append((str(expr.args[0].ty.dtype), str(expr.args[1].ty.dtype)))

    relax.analysis.post_order_visit(mod["main"], visit)
    return found


@pytest.mark.parametrize("ddt,wdt", [
    ("int8", "int8"), ("uint8", "uint8"), ("int8", "uint8"), ("uint8", "int8")])
@pytest.mark.parametrize("const_weight", [False, True])
def test_legalized_conv2d_is_uint8_x_int8_and_equal(run, rng, ddt, wdt, const_weight):
    d, w = _ints(rng, (1, 4, 6, 6), ddt), _ints(rng, (3, 4, 3, 3), wdt)
    zd = int(rng.integers(0, 100)) - (50 if ddt == "int8" else 0)
    zw = rng.integers(0, 50, 3).astype("int32") - (25 if wdt == "int8" else 0)
    kwargs = dict(padding=(1, 1), strides=(2, 1))
    if const_weight:
        def make(v):
            return qnn.conv2d(v, relax.const(w), zd, zw, 0.1, 0.1, **kwargs)

        arrays = (d,)
    else:
        def make(v, u):
            return qnn.conv2d(v, u, zd, zw, 0.1, 0.1, **kwargs)

        arrays = (d, w)
    legal = qnn.transform.LegalizeUint8Int8()(build_module(make, arrays))
    assert _operand_dtypes(legal) == [("uint8", "int8")]
    expected = ref.conv2d(d, w, zd, zw, (2, 1), (1, 1))
    got = run(make, *arrays, passes=[qnn.transform.LegalizeUint8Int8()])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("ddt,wdt", [("int8", "int8"), ("uint8", "uint8")])
def test_legalized_dense_is_uint8_x_int8_and_equal(run, rng, ddt, wdt):
    d, w = _ints(rng, (5, 16), ddt), _ints(rng, (7, 16), wdt)
    zd, zw = (3, 250) if wdt == "uint8" else (-3, 5)
    make = lambda v, u: qnn.dense(v, u, zd, zw, 0.1, 0.1)  # noqa: E731
    legal = qnn.transform.LegalizeUint8Int8()(build_module(make, (d, w)))
    assert _operand_dtypes(legal) == [("uint8", "int8")]
    got = run(make, d, w, passes=[qnn.transform.LegalizeUint8Int8()])
    np.testing.assert_array_equal(got, ref.dense(d, w, zd, zw))


def test_legalize_leaves_uint8_x_int8_alone():
    arrays = (np.zeros((2, 8), "uint8"), np.zeros((3, 8), "int8"))
    mod = build_module(lambda a, b: qnn.dense(a, b, 1, 0, 0.1, 0.1), arrays)
    legal = qnn.transform.LegalizeUint8Int8()(mod)
    assert legal.script() == mod.script()


def test_legalize_matmul_is_the_pass_rule_and_teaching_code():
    import inspect

    import tvm_ffi

    from d2lcc.qnn import legalize

    arrays = (np.zeros((2, 8), "int8"), np.zeros((3, 8), "uint8"))
    mod = build_module(lambda a, b: qnn.dense(a, b, 1, 200, 0.1, 0.1), arrays)
    rules = {"conv2d": legalize.legalize_matmul, "dense": legalize.legalize_matmul}
    mine = qnn.transform.rewrite_calls(mod, rules)
    assert _operand_dtypes(mine) == [("uint8", "int8")]
    assert tvm_ffi.structural_equal(mine, qnn.transform.LegalizeUint8Int8()(mod))
    # The book shows it verbatim, so it carries no argument checks.
    assert legalize.__teaching__ == ("legalize_matmul",)
    assert "check" not in inspect.getsource(legalize.legalize_matmul)
