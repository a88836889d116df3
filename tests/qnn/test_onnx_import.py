"""d2lcc.qnn.from_onnx on models quantized by onnxruntime, one operator at a time.

Each model is quantized by :func:`d2lcc.qnn.ptq.quantize_model` in both
formats; the import must run every quantizable operator on integers, agree
with onnxruntime on the same file within one unit of the last place, and
agree with the NumPy reference of the imported module bit for bit.
"""

import functools

import numpy as np
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from onnx_models import OPS, op_model
from qnn_harness import compiled

from d2lcc.qnn import evaluate, ptq
from d2lcc.qnn.onnx_import import from_onnx

#: The integer operators each float operator must become.
EXPECTED = {
    "Conv": "qnn.conv2d", "Relu": "qnn.conv2d", "Clip": "qnn.conv2d",
    "MatMul": "qnn.dense", "Gemm": "qnn.dense", "Add": "qnn.add", "Mul": "qnn.mul",
    "Concat": "qnn.concatenate", "MaxPool": "nn.max_pool2d",
    "AveragePool": "qnn.conv2d", "GlobalAveragePool": "sum", "Reshape": "reshape",
    "Flatten": "reshape", "Transpose": "permute_dims", "Softmax": "nn.softmax",
}  # fmt: skip


#: Float operators that must not survive the rewrite ("add" adds int32 biases).
FLOAT_OPS = {"nn.conv2d", "matmul", "multiply", "concat", "nn.avg_pool2d", "mean",
             "nn.relu", "clip"}


def ops_in(mod) -> set:
    text = mod.script(show_meta=False)
    return {line.split("= R.")[1].split("(")[0] for line in text.splitlines()
            if "= R." in line}


def output_scale(model) -> float:
    last = [n for n in model.graph.node if n.op_type == "DequantizeLinear"][-1]
    inits = {t.name: t for t in model.graph.initializer}
    return float(numpy_helper.to_array(inits[last.input[1]]))


@functools.lru_cache(maxsize=None)
def quantized(op, fmt, per_channel, act):
    model, shape = op_model(op)
    data = np.random.default_rng(1).normal(size=(8 * shape[0], *shape[1:]))
    q = ptq.quantize_model(model, data.astype("float32"), quant_format=fmt,
                           per_channel=per_channel, activation_type=act,
                           reduce_range=True)
    return q, shape


def onnxruntime_run(model, x):
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


CASES = [(op, fmt, pc, act) for op in OPS for fmt in ("QDQ", "QOperator")
         for pc, act in ((True, "uint8"), (False, "int8"))]


@pytest.mark.parametrize("op, fmt, per_channel, act", CASES)
def test_operator_matches_onnxruntime_and_reference(op, fmt, per_channel, act):
    model, shape = quantized(op, fmt, per_channel, act)
    mod = from_onnx(model)
    assert EXPECTED[op] in ops_in(mod)
    if op != "Softmax":  # softmax stays float between dequantize and quantize
        assert not FLOAT_OPS & ops_in(mod), ops_in(mod)
    run = compiled(mod)
    scale = output_scale(model)
    rng = np.random.default_rng(2)
    for _ in range(2):
        x = rng.normal(0, 1.5, shape).astype("float32")
        got = run([x])
        ulps = np.abs(got - onnxruntime_run(model, x)) / scale
        assert ulps.max() <= 1.001, f"{op} {fmt}: {ulps.max()} units apart"
        if op != "Softmax":
            np.testing.assert_array_equal(got, evaluate.run_reference(mod, x))


def test_no_float_arithmetic_left_in_a_cnn():
    model, shape = quantized("Conv", "QOperator", True, "uint8")
    ops = ops_in(from_onnx(model))
    assert ops == {"qnn.quantize", "qnn.conv2d", "add", "qnn.requantize",
                   "qnn.dequantize"}


def test_to_integer_false_keeps_the_float_operator():
    model, _ = quantized("Conv", "QDQ", True, "uint8")
    ops = ops_in(from_onnx(model, to_integer=False))
    assert {"nn.conv2d", "qnn.quantize", "qnn.dequantize"} <= ops
    assert "qnn.conv2d" not in ops
