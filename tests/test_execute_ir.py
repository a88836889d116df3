"""Unit tests of d2lcc.execute and d2lcc.ir."""

import numpy as np
import pytest

from d2lcc import execute, ir


def _relu_module(shape=(2, 3)):
    from tvm import relax

    return ir.single_op_module(lambda x: relax.op.nn.relu(x), (shape, "float32"))


def test_single_op_module_and_op_names():
    from tvm import relax

    mod = ir.single_op_module(lambda a, b: relax.op.add(relax.op.nn.relu(a), b),
                              ((4,), "float32"), ((4,), "float32"))
    assert ir.op_names(mod) == ["nn.relu", "add"]
    assert [p.name for p in mod["main"].params] == ["x0", "x1"]
    assert ir.prim_func_count(mod) == 0


def test_run_matches_numpy_and_build_is_reusable():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3)).astype(np.float32)
    mod = _relu_module()
    np.testing.assert_array_equal(execute.run(mod, x), np.maximum(x, 0))
    main = execute.build(mod)
    y = -x
    np.testing.assert_array_equal(main(y), np.maximum(y, 0))


def test_prim_func_count_after_legalize():
    from tvm import relax

    assert ir.prim_func_count(relax.transform.LegalizeOps()(_relu_module())) == 1


def test_run_prim_func():
    from tvm import te

    a = te.placeholder((5,), name="A")
    b = te.compute((5,), lambda i: a[i] * 2.0, name="B")
    x = np.arange(5, dtype=np.float32)
    out = execute.run_prim_func(te.create_prim_func([a, b]), x, out_shape=(5,))
    np.testing.assert_array_equal(out, 2 * x)


def test_bad_arguments_name_the_argument():
    with pytest.raises(TypeError, match="execute.build: mod must be a tvm.IRModule"):
        execute.build("main")
    with pytest.raises(TypeError, match="target must be"):
        execute.build(_relu_module(), target="llvm")
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a NumPy array"):
        execute.run(_relu_module(), [1.0, 2.0])
    with pytest.raises(TypeError, match="build must be callable"):
        ir.single_op_module(None, ((2,), "float32"))
    with pytest.raises(TypeError, match=r"arg_types\[0\] must be a \(shape, dtype\)"):
        ir.single_op_module(lambda x: x, (2, "float32", 1))
    with pytest.raises(ValueError, match="no function named func='f'"):
        ir.op_names(_relu_module(), "f")
    with pytest.raises(TypeError, match="out_shape must be a tuple"):
        execute.run_prim_func(_relu_module(), out_shape=3)
