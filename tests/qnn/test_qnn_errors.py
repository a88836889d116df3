"""Bad input raises a ValueError/TypeError that names the operator and the argument."""

import numpy as np
import pytest
from tvm import relax

import d2lcc
from d2lcc import qnn
from d2lcc.qnn import reference as ref


def _var(shape, dtype):
    return relax.Var("x", relax.TensorType(shape, dtype))


F32 = _var((2, 3), "float32")
U8 = _var((2, 3), "uint8")
I8 = _var((2, 3), "int8")
I32 = _var((2, 3), "int32")
D = _var((1, 3, 5, 5), "uint8")
W = _var((4, 3, 3, 3), "int8")
W2 = _var((4, 2), "int8")
W3 = _var((4, 3), "int8")
Q = qnn.quantize
CONV = qnn.conv2d

CASES = [
    (lambda: Q(F32, 0.5, 300, out_dtype="uint8"), ValueError,
     "qnn.quantize: zero_point=300 is out of range for uint8 [0, 255]"),
    (lambda: Q(F32, 0.5, -1, out_dtype="uint8"), ValueError,
     "qnn.quantize: zero_point=-1"),
    (lambda: Q(F32, 0.5, 2**32 + 5, out_dtype="int32"), ValueError,
     "qnn.quantize: zero_point=4294967301 is out of range for int32"),
    (lambda: Q(F32, 0.5, 2**70), ValueError, "qnn.quantize: zero_point=118059"),
    (lambda: Q(F32, 0.0, 0), ValueError, "qnn.quantize: scale=0.0 must be positive"),
    (lambda: Q(F32, -1.0, 0), ValueError, "qnn.quantize: scale"),
    (lambda: Q(F32, float("nan"), 0), ValueError, "qnn.quantize: scale=nan"),
    (lambda: Q(F32, float("inf"), 0), ValueError, "qnn.quantize: scale=inf"),
    (lambda: Q(F32, 1e-50, 0), ValueError,
     "qnn.quantize: scale=1e-50 becomes 0 or inf"),
    (lambda: Q(F32, 1e39, 0), ValueError, "qnn.quantize: scale=1e+39 becomes 0 or inf"),
    (lambda: Q(F32, True, 0), TypeError, "qnn.quantize: scale=True"),
    (lambda: Q(F32, [0.1, 0.2], 0), ValueError,
     "qnn.quantize: scale has 2 values but the channel axis has 3"),
    (lambda: Q(F32, 0.1, [0, 0]), ValueError, "qnn.quantize: zero_point has 2 values"),
    (lambda: Q(F32, 0.1, 0, axis=2), ValueError, "qnn.quantize: axis=2"),
    (lambda: Q(F32, 0.1, 0, axis=True), TypeError, "qnn.quantize: axis"),
    (lambda: Q(U8, 0.1, 0), TypeError, "qnn.quantize: data has dtype uint8"),
    (lambda: Q(F32, 0.1, 0, out_dtype="float16"), TypeError, "qnn.quantize: out_dtype"),
    (lambda: Q(F32, 0.1, 0, out_dtype="int7"), TypeError,
     "qnn.quantize: out_dtype has dtype int7"),
    (lambda: Q(F32, 0.1, 0.5), ValueError,
     "qnn.quantize: zero_point=0.5 must be an integer"),
    (lambda: Q(F32, "0.1", 0), TypeError, "qnn.quantize: scale"),
    (lambda: Q(np.zeros(3), 0.1, 0), TypeError,
     "qnn.quantize: data must be a Relax expression"),
    (lambda: Q(F32, relax.const(1, "int32"), 0), TypeError,
     "qnn.quantize: scale must have dtype float32"),
    (lambda: Q(F32, 0.1, relax.const(2**31 - 1, "int32"), out_dtype="uint8"),
     ValueError,
     "qnn.quantize: zero_point=2147483647 is out of range for uint8"),
    (lambda: qnn.dequantize(F32, 0.1, 0), TypeError,
     "qnn.dequantize: data has dtype float32"),
    (lambda: qnn.dequantize(I8, 0.1, 128), ValueError,
     "qnn.dequantize: zero_point=128 is out of range for int8 [-128, 127]"),
    (lambda: qnn.requantize(I32, 0.1, 0, 0.2, 256, out_dtype="uint8"), ValueError,
     "qnn.requantize: output_zero_point=256"),
    (lambda: qnn.requantize(U8, 0.1, -3, 0.2, 0), ValueError,
     "qnn.requantize: input_zero_point=-3"),
    (lambda: qnn.requantize(I32, 0.1, 0, -0.2, 0), ValueError,
     "qnn.requantize: output_scale"),
    (lambda: qnn.requantize(I32, 0.1, 0, 0.2, 0, rounding="UPWARD"), ValueError,
     "qnn.requantize: rounding='UPWARD'"),
    (lambda: qnn.requantize(I32, 0.1, 0, 0.2, 0, rounding="BOGUS",
                            compute="fixed_point"),
     ValueError, "qnn.requantize: rounding='BOGUS'"),
    (lambda: qnn.requantize(I32, 0.1, 0, 0.2, 0, compute="double"), ValueError,
     "qnn.requantize: compute='double'"),
    (lambda: qnn.requantize(I32, 2.0**30, 0, 1.0, 0, compute="fixed_point"), ValueError,
     "qnn.requantize: the multiplier"),
    (lambda: qnn.requantize(I32, 2.0**30 - 2.0**-3, 0, 1.0, 0, compute="fixed_point"),
     ValueError, "(input_scale=1073741824.0 / output_scale=1.0)"),
    (lambda: qnn.requantize(I32, 1e-10, 0, 1.0, 0, compute="fixed_point"), ValueError,
     "outside [2**-32, 2**30)"),
    (lambda: qnn.requantize(I32, 3e38, 0, 1e-3, 0), ValueError, "overflows float32"),
    (lambda: CONV(D, W, 300, 0, 0.1, 0.1), ValueError,
     "qnn.conv2d: input_zero_point=300 is out of range for uint8 [0, 255]"),
    (lambda: CONV(D, W, 0, 200, 0.1, 0.1), ValueError,
     "qnn.conv2d: kernel_zero_point=200 is out of range for int8"),
    (lambda: CONV(D, W, 0, 0, 0.1, [0.1, 0.2]), ValueError,
     "qnn.conv2d: kernel_scale has 2 values but the channel axis has 4"),
    (lambda: CONV(D, W, 0, [0, 1, 2], 0.1, 0.1), ValueError,
     "qnn.conv2d: kernel_zero_point has 3 values"),
    (lambda: CONV(D, W, [0, 1, 2], 0, 0.1, 0.1), ValueError,
     "qnn.conv2d: input_zero_point must be a scalar"),
    (lambda: CONV(D, W, 0, 0, 0.0, 0.1), ValueError, "qnn.conv2d: input_scale"),
    (lambda: CONV(_var((1, 5, 5, 3), "uint8"), W, 0, 0, 0.1, 0.1), ValueError,
     "qnn.conv2d: weight has 3 input channels"),
    (lambda: CONV(D, _var((4, 3, 3), "int8"), 0, 0, 0.1, 0.1), ValueError,
     "qnn.conv2d: data must be 4-D NCHW"),
    (lambda: CONV(_var((1, 3, 5, 5), "float32"), W, 0, 0, 0.1, 0.1), TypeError,
     "qnn.conv2d: data has dtype float32"),
    (lambda: CONV(D, _var((4, 3, 3, 3), "int32"), 0, 0, 0.1, 0.1), TypeError,
     "qnn.conv2d: weight has dtype int32"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, groups=2), ValueError,
     "qnn.conv2d: groups=2"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, groups=True), TypeError, "qnn.conv2d: groups"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, groups=0), ValueError, "qnn.conv2d: groups=0"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, strides=0), ValueError, "qnn.conv2d: strides"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, strides=(1, True)), TypeError,
     "qnn.conv2d: strides[1]"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, padding=(1, 2, 3)), ValueError,
     "qnn.conv2d: padding"),
    (lambda: CONV(D, _var((4, 3, 7, 7), "int8"), 0, 0, 0.1, 0.1), ValueError,
     "qnn.conv2d: the kernel"),
    (lambda: CONV(D, _var((4, 3, 0, 1), "int8"), 0, 0, 0.1, 0.1), ValueError,
     "qnn.conv2d: the kernel window [0, 1] must be at least 1 x 1"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, out_dtype="int8"), TypeError,
     "qnn.conv2d: out_dtype"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, data_layout="NHWC"), ValueError,
     "qnn.conv2d: data_layout='NHWC'"),
    (lambda: CONV(D, W, 0, 0, 0.1, 0.1, kernel_layout="HWIO"), ValueError,
     "qnn.conv2d: kernel_layout='HWIO'"),
    (lambda: qnn.dense(U8, W2, 0, 0, 0.1, 0.1), ValueError,
     "qnn.dense: data [m, k] and weight [units, k]"),
    (lambda: qnn.dense(U8, W3, 0, -129, 0.1, 0.1), ValueError,
     "qnn.dense: kernel_zero_point=-129"),
    (lambda: qnn.dense(U8, W3, 0, 0, 0.1, [0.1] * 3), ValueError,
     "qnn.dense: kernel_scale has 3 values"),
    (lambda: qnn.add(U8, I8, 0.1, 0, 0.1, 0, 0.1, 0), TypeError,
     "qnn.add: rhs has dtype int8"),
    (lambda: qnn.add(U8, _var((4, 3), "uint8"), 0.1, 0, 0.1, 0, 0.1, 0), ValueError,
     "qnn.add: shapes of lhs"),
    (lambda: qnn.add(U8, U8, 3e38, 0, 0.1, 0, 1e-38, 0), ValueError,
     "qnn.add: the scale ratio"),
    (lambda: qnn.mul(U8, U8, 0.1, 0, 0.1, 0, 0.1, 256), ValueError,
     "qnn.mul: output_zero_point=256"),
    (lambda: qnn.mul(U8, U8, 0.1, 0, -0.1, 0, 0.1, 0), ValueError,
     "qnn.mul: rhs_scale"),
    (lambda: qnn.mul(I32, I32, 0.1, 0, 0.1, 0, 0.1, 0), TypeError,
     "qnn.mul: lhs has dtype int32"),
    (lambda: qnn.concatenate([U8, U8], [0.1], [0, 0], 0.1, 0), ValueError,
     "qnn.concatenate: 2 tensors need"),
    (lambda: qnn.concatenate([U8, I8], [0.1, 0.1], [0, 0], 0.1, 0), TypeError,
     "qnn.concatenate: tensors[1] has dtype int8"),
    (lambda: qnn.concatenate([U8, _var((3, 4), "uint8")], [0.1] * 2, [0] * 2, 0.1, 0),
     ValueError, "qnn.concatenate: tensors[1] has shape"),
    (lambda: qnn.concatenate([U8, U8], [0.1, 0.1], [0, 300], 0.1, 0), ValueError,
     "qnn.concatenate: input_zero_points[1]=300"),
    (lambda: qnn.concatenate([], [], [], 0.1, 0), ValueError,
     "qnn.concatenate: tensors must not be empty"),
    (lambda: qnn.concatenate(U8, [0.1], [0], 0.1, 0), TypeError,
     "qnn.concatenate: tensors must be a list"),
]

U8_NP = np.zeros((2, 3), np.uint8)
REFERENCE_CASES = [
    (lambda: ref.quantize(np.zeros(3, np.float32), 0.1, 0, "int7"), ValueError,
     "qnn.reference.quantize: out_dtype='int7'"),
    (lambda: ref.quantize(np.zeros(3, np.float32), 0.1, 2**32 + 5, "int32"), ValueError,
     "qnn.reference.quantize: zero_point=4294967301 is out of range"),
    (lambda: ref.quantize(np.zeros(3, np.int8), 0.1, 0), TypeError,
     "qnn.reference.quantize: data has dtype int8"),
    (lambda: ref.dequantize(U8_NP, 0.0, 0), ValueError,
     "qnn.reference.dequantize: scale"),
    (lambda: ref.requantize(U8_NP, 0.1, 0, 0.2, 0, rounding="BOGUS"), ValueError,
     "qnn.reference.requantize: rounding='BOGUS'"),
    (lambda: ref.requantize(U8_NP, 0.1, 0, 0.2, 0, rounding="BOGUS",
                            compute="fixed_point"), ValueError, "rounding='BOGUS'"),
    (lambda: ref.requantize(U8_NP, 0.1, 0, 0.2, 0, compute="double"), ValueError,
     "qnn.reference.requantize: compute='double'"),
    (lambda: ref.requantize(U8_NP, 0.1, 0, 0.2, 0, out_dtype="int7"), ValueError,
     "qnn.reference.requantize: out_dtype='int7'"),
    (lambda: ref.concatenate([U8_NP, U8_NP], [0.1], [0], 0.1, 0), ValueError,
     "qnn.reference.concatenate: 2 tensors need as many input_scales"),
    (lambda: ref.concatenate([U8_NP, U8_NP], [0.1, 0.1], [0, 0], 0.1, 0, axis=2),
     ValueError, "qnn.reference.concatenate: axis=2"),
    (lambda: ref.conv2d(np.zeros((1, 3, 5, 5), np.uint8),
                        np.zeros((4, 3, 3, 3), np.int8), 0, 0, groups=True),
     TypeError, "qnn.reference.conv2d: groups"),
    (lambda: ref.dense(U8_NP, np.zeros((4, 3), np.int8), 0, 128), ValueError,
     "qnn.reference.dense: kernel_zero_point=128"),
    (lambda: ref.add(U8_NP, U8_NP.astype(np.int8), 0.1, 0, 0.1, 0, 0.1, 0), TypeError,
     "qnn.reference.add: rhs has dtype int8"),
    (lambda: ref.mul(U8_NP, U8_NP, 0.1, 0, 0.1, 0, 0.1, -1), ValueError,
     "qnn.reference.mul: output_zero_point=-1"),
]


def _ids(cases):
    return [c[2][:60] for c in cases]


@pytest.mark.parametrize("build,error,message", CASES, ids=_ids(CASES))
def test_bad_input_names_op_and_argument(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


@pytest.mark.parametrize("build,error,message", REFERENCE_CASES,
                         ids=_ids(REFERENCE_CASES))
def test_references_check_arguments_like_the_operators(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


def test_lowering_needs_constant_parameters():
    s = relax.Var("s", relax.TensorType((), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [I32, s]):
        out = bb.emit(qnn.requantize(I32, s, 0, 0.5, 0))
        bb.emit_func_output(out)
    message = "qnn.requantize: input_scale must be a constant"
    with pytest.raises(ValueError, match=message):
        qnn.transform.Canonicalize()(bb.get())


def test_rewrite_calls_checks_its_rules():
    mod = d2lcc.ir.single_op_module(lambda x: relax.op.abs(x), ((2,), "float32"))
    message = "qnn.transform.rewrite_calls: rules key='relu'"
    with pytest.raises(ValueError, match=message):
        qnn.transform.rewrite_calls(mod, {"relu": lambda bb, call: call})
    message = r"rewrite_calls: rules\['dense'\] must be callable"
    with pytest.raises(TypeError, match=message):
        qnn.transform.rewrite_calls(mod, {"dense": 3})
    with pytest.raises(TypeError, match="qnn.transform.rewrite_calls: mod must be"):
        qnn.transform.rewrite_calls(None, {})
