"""Bad input raises a ValueError/TypeError that names the operator and the argument."""

import numpy as np
import pytest
from tvm import relax

from d2lcc import qnn


def _var(shape, dtype):
    return relax.Var("x", relax.TensorType(shape, dtype))


F32 = _var((2, 3), "float32")
U8 = _var((2, 3), "uint8")
I8 = _var((2, 3), "int8")
I32 = _var((2, 3), "int32")
D = _var((1, 3, 5, 5), "uint8")
W = _var((4, 3, 3, 3), "int8")

CASES = [
    (lambda: qnn.quantize(F32, 0.5, 300, out_dtype="uint8"), ValueError, "qnn.quantize: zero_point=300 is out of range for uint8 [0, 255]"),
    (lambda: qnn.quantize(F32, 0.5, -1, out_dtype="uint8"), ValueError, "qnn.quantize: zero_point=-1"),
    (lambda: qnn.quantize(F32, 0.0, 0), ValueError, "qnn.quantize: scale=0.0 must be positive and finite"),
    (lambda: qnn.quantize(F32, -1.0, 0), ValueError, "qnn.quantize: scale"),
    (lambda: qnn.quantize(F32, float("nan"), 0), ValueError, "qnn.quantize: scale=nan"),
    (lambda: qnn.quantize(F32, float("inf"), 0), ValueError, "qnn.quantize: scale=inf"),
    (lambda: qnn.quantize(F32, [0.1, 0.2], 0), ValueError, "qnn.quantize: scale has 2 values but the channel axis has 3"),
    (lambda: qnn.quantize(F32, 0.1, [0, 0]), ValueError, "qnn.quantize: zero_point has 2 values"),
    (lambda: qnn.quantize(F32, 0.1, 0, axis=2), ValueError, "qnn.quantize: axis=2"),
    (lambda: qnn.quantize(U8, 0.1, 0), TypeError, "qnn.quantize: data has dtype uint8"),
    (lambda: qnn.quantize(F32, 0.1, 0, out_dtype="float16"), TypeError, "qnn.quantize: out_dtype"),
    (lambda: qnn.quantize(F32, 0.1, 0.5), ValueError, "qnn.quantize: zero_point=0.5 must be an integer"),
    (lambda: qnn.quantize(F32, "0.1", 0), TypeError, "qnn.quantize: scale"),
    (lambda: qnn.quantize(np.zeros(3), 0.1, 0), TypeError, "qnn.quantize: data must be a Relax expression"),
    (lambda: qnn.quantize(F32, relax.const(1, "int32"), 0), TypeError, "qnn.quantize: scale must have dtype float32"),
    (lambda: qnn.dequantize(F32, 0.1, 0), TypeError, "qnn.dequantize: data has dtype float32"),
    (lambda: qnn.dequantize(I8, 0.1, 128), ValueError, "qnn.dequantize: zero_point=128 is out of range for int8 [-128, 127]"),
    (lambda: qnn.requantize(I32, 0.1, 0, 0.2, 256, out_dtype="uint8"), ValueError, "qnn.requantize: output_zero_point=256"),
    (lambda: qnn.requantize(U8, 0.1, -3, 0.2, 0), ValueError, "qnn.requantize: input_zero_point=-3"),
    (lambda: qnn.requantize(I32, 0.1, 0, -0.2, 0), ValueError, "qnn.requantize: output_scale"),
    (lambda: qnn.requantize(I32, 0.1, 0, 0.2, 0, rounding="UPWARD"), ValueError, "qnn.requantize: rounding='UPWARD'"),
    (lambda: qnn.conv2d(D, W, 300, 0, 0.1, 0.1), ValueError, "qnn.conv2d: input_zero_point=300 is out of range for uint8 [0, 255]"),
    (lambda: qnn.conv2d(D, W, 0, 200, 0.1, 0.1), ValueError, "qnn.conv2d: kernel_zero_point=200 is out of range for int8"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.1, [0.1, 0.2]), ValueError, "qnn.conv2d: kernel_scale has 2 values but the channel axis has 4"),
    (lambda: qnn.conv2d(D, W, 0, [0, 1, 2], 0.1, 0.1), ValueError, "qnn.conv2d: kernel_zero_point has 3 values"),
    (lambda: qnn.conv2d(D, W, [0, 1, 2], 0, 0.1, 0.1), ValueError, "qnn.conv2d: input_zero_point must be a scalar"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.0, 0.1), ValueError, "qnn.conv2d: input_scale"),
    (lambda: qnn.conv2d(_var((1, 5, 5, 3), "uint8"), W, 0, 0, 0.1, 0.1), ValueError, "qnn.conv2d: weight has 3 input channels"),
    (lambda: qnn.conv2d(D, _var((4, 3, 3), "int8"), 0, 0, 0.1, 0.1), ValueError, "qnn.conv2d: data must be 4-D NCHW"),
    (lambda: qnn.conv2d(_var((1, 3, 5, 5), "float32"), W, 0, 0, 0.1, 0.1), TypeError, "qnn.conv2d: data has dtype float32"),
    (lambda: qnn.conv2d(D, _var((4, 3, 3, 3), "int32"), 0, 0, 0.1, 0.1), TypeError, "qnn.conv2d: weight has dtype int32"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.1, 0.1, groups=2), ValueError, "qnn.conv2d: groups=2"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.1, 0.1, strides=0), ValueError, "qnn.conv2d: strides"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.1, 0.1, padding=(1, 2, 3)), ValueError, "qnn.conv2d: padding"),
    (lambda: qnn.conv2d(D, _var((4, 3, 7, 7), "int8"), 0, 0, 0.1, 0.1), ValueError, "qnn.conv2d: the kernel"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.1, 0.1, out_dtype="int8"), TypeError, "qnn.conv2d: out_dtype"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.1, 0.1, data_layout="NHWC"), ValueError, "qnn.conv2d: data_layout='NHWC'"),
    (lambda: qnn.conv2d(D, W, 0, 0, 0.1, 0.1, kernel_layout="HWIO"), ValueError, "kernel_layout='HWIO' are not supported"),
    (lambda: qnn.dense(U8, _var((4, 2), "int8"), 0, 0, 0.1, 0.1), ValueError, "qnn.dense: data [m, k] and weight [units, k]"),
    (lambda: qnn.dense(U8, _var((4, 3), "int8"), 0, -129, 0.1, 0.1), ValueError, "qnn.dense: kernel_zero_point=-129"),
    (lambda: qnn.dense(U8, _var((4, 3), "int8"), 0, 0, 0.1, [0.1] * 3), ValueError, "qnn.dense: kernel_scale has 3 values"),
    (lambda: qnn.add(U8, I8, 0.1, 0, 0.1, 0, 0.1, 0), TypeError, "qnn.add: rhs has dtype int8"),
    (lambda: qnn.add(U8, _var((4, 3), "uint8"), 0.1, 0, 0.1, 0, 0.1, 0), ValueError, "qnn.add: shapes of lhs"),
    (lambda: qnn.mul(U8, U8, 0.1, 0, 0.1, 0, 0.1, 256), ValueError, "qnn.mul: output_zero_point=256"),
    (lambda: qnn.mul(U8, U8, 0.1, 0, -0.1, 0, 0.1, 0), ValueError, "qnn.mul: rhs_scale"),
    (lambda: qnn.mul(I32, I32, 0.1, 0, 0.1, 0, 0.1, 0), TypeError, "qnn.mul: lhs has dtype int32"),
    (lambda: qnn.concatenate([U8, U8], [0.1], [0, 0], 0.1, 0), ValueError, "qnn.concatenate: 2 tensors need"),
    (lambda: qnn.concatenate([U8, I8], [0.1, 0.1], [0, 0], 0.1, 0), TypeError, "qnn.concatenate: tensors[1] has dtype int8"),
    (lambda: qnn.concatenate([U8, _var((3, 4), "uint8")], [0.1] * 2, [0] * 2, 0.1, 0), ValueError, "qnn.concatenate: tensors[1] has shape"),
    (lambda: qnn.concatenate([U8, U8], [0.1, 0.1], [0, 300], 0.1, 0), ValueError, "qnn.concatenate: input_zero_points[1]=300"),
    (lambda: qnn.concatenate([], [], [], 0.1, 0), ValueError, "qnn.concatenate: tensors must not be empty"),
]


@pytest.mark.parametrize("build,error,message", CASES, ids=[c[2][:60] for c in CASES])
def test_bad_input_names_op_and_argument(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


def test_lowering_needs_constant_parameters():
    s = relax.Var("s", relax.TensorType((), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [I32, s]):
        out = bb.emit(qnn.requantize(I32, s, 0, 0.5, 0))
        bb.emit_func_output(out)
    with pytest.raises(ValueError, match="qnn.requantize: input_scale must be a constant"):
        qnn.transform.Canonicalize()(bb.get())
