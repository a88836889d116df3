"""d2lcc.qnn.ptq: onnxruntime's post-training quantizer behind a checked front end."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from d2lcc import models
from d2lcc.qnn import ptq


@pytest.fixture(scope="module")
def float_model():
    return models.small_cnn_onnx(models.small_cnn_weights(0))


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(1).normal(size=(8, 3, 32, 32)).astype("float32")


def _inits(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _ops(model):
    return [n.op_type for n in model.graph.node]


def test_formats_write_their_operators(float_model, data):
    qdq = ptq.quantize_model(float_model, data, quant_format="QDQ")
    qop = ptq.quantize_model(float_model, data, quant_format="QOperator")
    assert {"Conv", "Gemm", "QuantizeLinear", "DequantizeLinear"} <= set(_ops(qdq))
    assert "QLinearConv" in _ops(qop) and "Conv" not in _ops(qop)
    assert _ops(qop)[0] == "QuantizeLinear" and _ops(qop)[-1] == "DequantizeLinear"


def test_input_model_is_left_as_it_was(float_model, data):
    before = float_model.SerializeToString()
    ptq.quantize_model(float_model, data)
    assert float_model.SerializeToString() == before


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("act", ["uint8", "int8"])
def test_types_and_scales(float_model, data, per_channel, act):
    model = ptq.quantize_model(float_model, data, quant_format="QOperator",
                               per_channel=per_channel, activation_type=act)
    conv = next(n for n in model.graph.node if n.op_type == "QLinearConv")
    inits = _inits(model)
    x_zp, w, w_scale = (inits.get(conv.input[i]) for i in (2, 3, 4))
    assert w.dtype == np.int8
    assert w_scale.size == (w.shape[0] if per_channel else 1)
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    assert inits[q.input[2]].dtype == np.dtype(act)
    del x_zp


def test_reduce_range_keeps_weights_in_7_bits(float_model, data):
    full = _inits(ptq.quantize_model(float_model, data, quant_format="QOperator"))
    small = _inits(ptq.quantize_model(float_model, data, quant_format="QOperator",
                                      reduce_range=True))
    weights = [k for k, v in small.items() if v.dtype == np.int8 and v.ndim >= 2]
    assert weights
    assert all(np.abs(small[k]).max() <= 64 for k in weights)
    assert any(np.abs(full[k]).max() == 127 for k in weights)


@pytest.mark.parametrize("act, zero", [("uint8", 128), ("int8", 0)])
def test_symmetric_activations_center_the_zero_point(float_model, data, act, zero):
    model = ptq.quantize_model(float_model, data, quant_format="QOperator",
                               activation_type=act, symmetric_activation=True)
    inits = _inits(model)
    zps = [inits[n.input[2]] for n in model.graph.node
           if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert zps and all(int(z) == zero for z in zps)


def test_quantized_model_runs_and_stays_close(float_model, data):
    import onnxruntime as ort

    model = ptq.quantize_model(float_model, data, per_channel=True)
    def run(m, x):
        s = ort.InferenceSession(m.SerializeToString(),
                                 providers=["CPUExecutionProvider"])
        return s.run(None, {"x": x})[0]
    x = data[:1]
    ref, got = run(float_model, x), run(model, x)
    assert np.abs(ref - got).max() < 0.1 * np.abs(ref).max()


def test_dynamic_batch_is_calibrated_in_chunks():
    model = models.small_cnn_onnx(models.small_cnn_weights(0), batch="N")
    x = np.zeros((ptq.CALIBRATION_BATCH + 3, 3, 32, 32), np.float32)
    assert ptq.quantize_model(model, x).graph.node


def test_float_input():
    model = models.small_cnn_onnx(models.small_cnn_weights(0), batch=2)
    assert ptq.float_input(model) == ("x", [2, 3, 32, 32])


def test_bad_input(float_model, data):
    f = ptq.quantize_model
    with pytest.raises(TypeError, match="quantize_model: model must be an onnx"):
        f("model.onnx", data)
    with pytest.raises(ValueError, match="calibration_data has shape"):
        f(float_model, data[:, :, :16])
    with pytest.raises(TypeError, match="calibration_data has dtype float64"):
        f(float_model, data.astype(np.float64))
    with pytest.raises(ValueError, match="must be finite"):
        f(float_model, np.full_like(data, np.nan))
    with pytest.raises(ValueError, match="quant_format"):
        f(float_model, data, quant_format="QLinear")
    with pytest.raises(ValueError, match="activation_type"):
        f(float_model, data, activation_type="int16")
    with pytest.raises(TypeError, match="per_channel"):
        f(float_model, data, per_channel="yes")
    batch2 = models.small_cnn_onnx(models.small_cnn_weights(0), batch=2)
    with pytest.raises(ValueError, match="not a multiple of the model's batch size 2"):
        f(batch2, data[:3])
    two_inputs = onnx.ModelProto()
    two_inputs.CopyFrom(float_model)
    two_inputs.graph.input.append(onnx.helper.make_tensor_value_info(
        "z", onnx.TensorProto.FLOAT, [1]))
    with pytest.raises(ValueError, match="exactly one non-constant input"):
        f(two_inputs, data)


def test_per_channel_qdq_of_an_opset9_model_loads_in_onnxruntime():
    """Per-channel DequantizeLinear needs opset 13: a zoo network (opset 9) is
    converted first, or onnxruntime refuses the quantized file."""
    import onnxruntime as ort

    from d2lcc import zoo
    from d2lcc.qnn import ptq

    model = zoo.load("squeezenet", seed=0)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) < 13
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    q = ptq.quantize_model(model, x, quant_format="QDQ", per_channel=True)
    session = ort.InferenceSession(q.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x[:1]})[0]
    assert np.isfinite(out).all()
