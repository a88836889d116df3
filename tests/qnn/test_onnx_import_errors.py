"""d2lcc.qnn.from_onnx refuses what it cannot import, naming the node and operator."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from d2lcc.qnn import qoperator
from d2lcc.qnn.onnx_import import from_onnx


def _model(nodes, inits, inputs=None, x_shape=(1, 4)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(
        nodes, "g", [x, *(inputs or [])], [y],
        initializer=[numpy_helper.from_array(np.asarray(v), k)
                     for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


QDQ = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
       helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant")]
PARAMS = {"s": np.float32(0.1), "z": np.uint8(128)}


def test_a_plain_qdq_model_imports():
    mod = from_onnx(_model(QDQ, PARAMS))
    assert "R.qnn.quantize" in mod.script()


def test_unsupported_operator_is_named():
    nodes = [helper.make_node("QLinearFoo", ["x"], ["y"], name="foo1",
                              domain="com.microsoft")]
    with pytest.raises(ValueError, match="operator 'QLinearFoo' \\(node 'foo1'"):
        from_onnx(_model(nodes, {}))


def test_operator_tvm_lacks_is_named():
    nodes = [helper.make_node("Celu", ["x"], ["y"], name="celu1")]
    with pytest.raises(ValueError, match="operator 'Celu' \\(node 'celu1'\\)"):
        from_onnx(_model(nodes, {}))


def test_missing_scale_is_named():
    nodes = [helper.make_node("QuantizeLinear", ["x", "", "z"], ["y"], name="q0")]
    with pytest.raises(ValueError, match="QuantizeLinear node 'q0' has no scale"):
        from_onnx(_model(nodes, {"z": np.uint8(0)}))


def test_non_constant_zero_point_is_named():
    z = helper.make_tensor_value_info("z", TensorProto.UINT8, [])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q1"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="d1")]
    with pytest.raises(ValueError, match="QuantizeLinear node 'q1' needs 'z' to be an "
                       "initializer \\(its zero point must be a constant"):
        from_onnx(_model(nodes, {"s": np.float32(0.1)}, inputs=[z]))


def test_qlinear_node_with_computed_scale_is_named():
    s = helper.make_tensor_value_info("xs", TensorProto.FLOAT, [])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("QLinearMatMul", ["q", "xs", "z", "w", "s", "wz", "s",
                                                "z"], ["q2"], name="mm"),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["y"])]
    inits = {**PARAMS, "w": np.ones((4, 2), np.int8), "wz": np.int8(0)}
    with pytest.raises(ValueError, match="QLinearMatMul node 'mm' needs 'xs' to be an "
                       "initializer \\(its scale"):
        from_onnx(_model(nodes, inits, inputs=[s]))


def test_dynamic_input_shape_is_refused():
    with pytest.raises(ValueError, match="graph input 'x' needs a static shape"):
        from_onnx(_model(QDQ, PARAMS, x_shape=("N", 4)))


def test_bad_arguments():
    with pytest.raises(TypeError, match="from_onnx: model must be an onnx.ModelProto"):
        from_onnx("model.onnx")
    with pytest.raises(TypeError, match="to_integer"):
        from_onnx(_model(QDQ, PARAMS), to_integer="yes")
    with pytest.raises(TypeError, match="to_qdq: model must be an onnx.ModelProto"):
        qoperator.to_qdq(None)


def test_qgemm_with_alpha_is_refused():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("QGemm", ["q", "s", "z", "w", "s", "wz", "", "s", "z"],
                              ["q2"], name="g", domain="com.microsoft", alpha=2.0),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["y"])]
    inits = {**PARAMS, "w": np.ones((4, 2), np.int8), "wz": np.int8(0)}
    with pytest.raises(ValueError, match="QGemm node 'g': only alpha=1"):
        from_onnx(_model(nodes, inits))


def test_relu_on_an_integer_tensor_gets_its_parameters():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("Relu", ["q"], ["r"]),
             helper.make_node("DequantizeLinear", ["r", "s", "z"], ["y"])]
    qdq = qoperator.to_qdq(_model(nodes, PARAMS))
    assert [n.op_type for n in qdq.graph.node] == [
        "QuantizeLinear", "DequantizeLinear", "Relu", "QuantizeLinear",
        "DequantizeLinear"]
    from qnn_harness import compiled

    x = np.array([[-1.0, -0.05, 0.04, 3.0]], np.float32)
    got = compiled(from_onnx(_model(nodes, PARAMS)))([x])
    np.testing.assert_array_equal(got, np.float32([[0, 0, 0, 3.0]]))
