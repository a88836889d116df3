"""Importing pre-quantized ONNX models (QDQ, QLinearConv, QLinearMatMul) into qnn.

Each imported model is compiled and checked against onnxruntime.
"""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from d2lcc import qnn
from d2lcc.qnn.onnx_import import from_onnx

from qnn_harness import compile_and_run, qnn_ops_in


def _model(nodes, x_shape, initializers):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.asarray(v), name=k)
             for k, v in initializers.items()]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _ort(model, x):
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _conv_model(rng, per_channel):
    o = 5
    inits = {
        "xs": np.float32(0.05), "xz": np.uint8(128),
        "w": rng.integers(-64, 64, (o, 3, 3, 3)).astype(np.int8),
        "ws": np.asarray(rng.uniform(0.005, 0.02, o if per_channel else None),
                         np.float32),
        "wz": np.zeros(o if per_channel else (), np.int8),
        "ys": np.float32(0.3), "yz": np.uint8(100),
        "b": rng.integers(-500, 500, o).astype(np.int32),
    }  # fmt: skip
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("QLinearConv",
                         ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["yq"],
                         pads=[1, 0, 1, 2], strides=[2, 1]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
    ]  # fmt: skip
    return _model(nodes, [1, 3, 8, 7], inits)


def _matmul_model(rng):
    inits = {
        "xs": np.float32(0.04), "xz": np.uint8(120),
        "b": rng.integers(-64, 64, (16, 6)).astype(np.int8),
        "bs": np.float32(0.01), "bz": np.int8(2),
        "ys": np.float32(0.2), "yz": np.uint8(90),
    }  # fmt: skip
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("QLinearMatMul",
                         ["xq", "xs", "xz", "b", "bs", "bz", "ys", "yz"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
    ]
    return _model(nodes, [4, 16], inits)


@pytest.mark.parametrize("kind", ["conv", "conv-per-channel", "matmul"])
def test_imported_model_matches_onnxruntime(rng, kind):
    if kind == "matmul":
        model = _matmul_model(rng)
    else:
        model = _conv_model(rng, kind.endswith("per-channel"))
    x_shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = rng.normal(0, 2, x_shape).astype(np.float32)
    mod = from_onnx(model)
    assert {"quantize", "dequantize", "requantize"} <= set(qnn_ops_in(mod))
    got = compile_and_run(qnn.transform.Canonicalize()(mod), [x])
    expected = _ort(model, x)
    ys = next(t for t in model.graph.initializer if t.name == "ys")
    y_scale = float(numpy_helper.to_array(ys))
    # at most one unit apart
    np.testing.assert_allclose(got, expected, rtol=0, atol=y_scale * 1.001)


def test_unsupported_operator_is_named(rng):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu1")]
    message = "qnn.onnx_import: operator 'Relu' \\(node 'relu1'\\) is not supported"
    with pytest.raises(ValueError, match=message):
        from_onnx(_model(nodes, [2, 2], {}))


def test_parameters_must_be_initializers():
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, None)
    zp = numpy_helper.from_array(np.uint8(3), name="z")
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q")
    graph = helper.make_graph([node], "g", [x, s], [y], initializer=[zp])
    model = helper.make_model(graph)
    message = "QuantizeLinear node 'q' needs 's' to be an initializer"
    with pytest.raises(ValueError, match=message):
        from_onnx(model)
