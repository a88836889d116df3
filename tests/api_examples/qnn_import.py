"""Example arguments for d2lcc.qnn.ptq, qoperator, qdq and evaluate (the importer's)."""


def _float_model():
    from d2lcc import models

    return models.small_cnn_onnx(models.small_cnn_weights(0))


def _images(n=2):
    import numpy as np

    return np.random.default_rng(0).normal(size=(n, 3, 32, 32)).astype("float32")


def _bb():
    from tvm import relax

    bb = relax.BlockBuilder()
    bb.testing_scope([]).__enter__()  # rules emit into the current scope
    return bb


def _quantize_call():
    from tvm import relax

    from d2lcc.qnn import api

    x = relax.Var("x", relax.TensorType((2, 4), "float32"))
    return api.quantize(x, 0.5, 0)


def _qdq_module():
    from d2lcc.qnn import qdq
    from d2lcc.qnn.onnx_import import from_onnx

    return qdq.QuantizeToQnn()(from_onnx(_qdq_onnx(), to_integer=False))


def _qdq_onnx():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.float32(0.5), "s"),
             numpy_helper.from_array(np.uint8(128), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _zeros():
    import numpy as np

    return np.zeros((2, 4), np.float32)


EXAMPLES = {
    "d2lcc.qnn.ptq.float_input": lambda: dict(model=_float_model()),
    "d2lcc.qnn.ptq.quantize_model": lambda: dict(model=_float_model(),
                                                 calibration_data=_images()),
    "d2lcc.qnn.qoperator.to_qdq": lambda: dict(model=_qdq_onnx()),
    "d2lcc.qnn.qdq.ints": lambda: dict(values=[1, 2]),
    "d2lcc.qnn.qdq.dequantized": lambda: dict(expr=_quantize_call(),
                                              lookup=lambda v: None),
    "d2lcc.qnn.qdq.quantize_to_integer": lambda: dict(
        bb=_bb(), call=_quantize_call(), lookup=lambda v: None),
    "d2lcc.qnn.evaluate.run_reference": lambda: dict(mod=_qdq_module()),
}
#: ``dequantized`` answers "is this a dequantize?" for any expression.
ACCEPTS_ANY = {"d2lcc.qnn.qdq.dequantized": {"expr"},
               "d2lcc.qnn.qdq.Quantized": {"expr", "scale", "zero_point", "axis"}}
