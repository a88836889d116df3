"""Small float ONNX models, one quantizable operator each, for the importer's tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, x_shape, y_shape, inits, opset=13):
    """A float model ``x -> nodes -> y``; ``inits`` (name -> array) are initializers."""
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v), k)
                     for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def _w(rng, *shape):
    fan_in = int(np.prod(shape[1:])) or 1
    return (rng.normal(size=shape) * np.sqrt(2 / fan_in)).astype("float32")


def op_model(op: str, seed: int = 0):
    """A float model around one operator ``op``; returns (model, input shape)."""
    rng = np.random.default_rng(seed)
    x = [1, 4, 8, 8]
    n = helper.make_node
    conv_inits = {"w": _w(rng, 6, 4, 3, 3), "b": 0.1 * _w(rng, 6)}
    if op == "Conv":
        nodes = [n("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 1, 2], strides=[2, 1])]
        return model(nodes, x, None, conv_inits), x
    if op in ("Relu", "Clip"):
        act = (n("Relu", ["c"], ["y"]) if op == "Relu" else
               n("Clip", ["c", "lo", "hi"], ["y"]))
        inits = {**conv_inits, "lo": np.float32(-0.5), "hi": np.float32(1.0)}
        return model([n("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), act],
                     x, None, inits), x
    if op in ("MatMul", "Gemm"):
        x = [3, 16]
        if op == "MatMul":
            return model([n("MatMul", ["x", "w"], ["y"])], x, None,
                         {"w": _w(rng, 16, 5)}), x
        return model([n("Gemm", ["x", "w", "b"], ["y"], transB=1)], x, None,
                     {"w": _w(rng, 5, 16), "b": 0.1 * _w(rng, 5)}), x
    if op in ("Add", "Mul"):
        return model([n(op, ["x", "c"], ["y"])], x, None,
                     {"c": rng.normal(size=(1, 4, 1, 8)).astype("float32")}), x
    if op == "Concat":
        return model([n("Concat", ["x", "c"], ["y"], axis=1)], x, None,
                     {"c": 3 * rng.normal(size=(1, 2, 8, 8)).astype("float32")}), x
    if op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
        pool = {"MaxPool": n("MaxPool", ["c"], ["y"], kernel_shape=[3, 3],
                             strides=[2, 2], pads=[1, 1, 1, 1]),
                "AveragePool": n("AveragePool", ["c"], ["y"], kernel_shape=[3, 3],
                                 strides=[1, 1], pads=[1, 1, 1, 1]),
                "GlobalAveragePool": n("GlobalAveragePool", ["c"], ["y"])}[op]
        return model([n("Conv", ["x", "w", "b"], ["c"]), pool], x, None,
                     conv_inits), x
    if op in ("Reshape", "Flatten", "Transpose"):
        node = {"Reshape": n("Reshape", ["c", "s"], ["y"]),
                "Flatten": n("Flatten", ["c"], ["y"]),
                "Transpose": n("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1])}[op]
        inits = {**conv_inits, "s": np.array([1, -1], np.int64)}
        return model([n("Conv", ["x", "w", "b"], ["c"]), node], x, None, inits), x
    if op == "Softmax":
        x = [2, 10]
        return model([n("MatMul", ["x", "w"], ["m"]), n("Softmax", ["m"], ["y"])],
                     x, None, {"w": _w(rng, 10, 10)}), x
    raise ValueError(op)


OPS = ("Conv", "Relu", "Clip", "MatMul", "Gemm", "Add", "Mul", "Concat", "MaxPool",
       "AveragePool", "GlobalAveragePool", "Reshape", "Flatten", "Transpose",
       "Softmax")
