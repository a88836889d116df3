"""Unit tests of d2lcc.zoo: model-zoo architectures with seeded weights."""

import numpy as np
import pytest

from d2lcc import zoo


def _run(model, x):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {zoo.data_input(model).name: x})[0]


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_every_listed_architecture_is_shipped(name):
    assert zoo.path(name).exists()


def test_check_architecture_matches_the_shipped_output():
    assert zoo.check_architecture("squeezenet") <= 1e-4


def test_load_replaces_every_constant_weight_deterministically():
    a, b = zoo.load("squeezenet", seed=0), zoo.load("squeezenet", seed=0, check=False)
    c = zoo.load("squeezenet", seed=1, check=False)
    assert not any(n.op_type == "ConstantOfShape" for n in a.graph.node)
    assert [i.name for i in a.graph.input] == [zoo.data_input(a).name]
    assert zoo.input_shape(a) == (1, 3, 224, 224)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    ya, yb, yc = _run(a, x), _run(b, x), _run(c, x)
    np.testing.assert_array_equal(ya, yb)
    assert np.isfinite(ya).all() and not np.allclose(ya, yc)
    # The weights matter: the output is not the uniform answer of constant weights.
    assert ya.std() > 1e-3


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="zoo.load: name='resnet18' must be one of"):
        zoo.load("resnet18")
    with pytest.raises(ValueError, match="seed=-1"):
        zoo.load("squeezenet", seed=-1)
    with pytest.raises(TypeError, match="check must be True or False"):
        zoo.load("squeezenet", check=1)
    with pytest.raises(TypeError, match="model must be an onnx.ModelProto"):
        zoo.data_input("model.onnx")


def test_numpy_reference_agrees_with_onnxruntime():
    model = zoo.load("squeezenet", seed=2, check=False)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.testing.assert_allclose(zoo.numpy_reference(model)(x), _run(model, x),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="x has shape"):
        zoo.numpy_reference(model)(x[:, :, :100])
    with pytest.raises(TypeError, match="model must be an onnx.ModelProto"):
        zoo.numpy_reference(None)


def test_numpy_reference_uses_stored_batch_norm_statistics():
    import onnx
    from onnx import TensorProto, helper

    c = 3
    stats = [helper.make_tensor(n, TensorProto.FLOAT, [c], v) for n, v in (
        ("s", [1.0, 2.0, 0.5]), ("b", [0.0, 1.0, -1.0]), ("m", [0.5, 0.0, 1.0]),
        ("v", [4.0, 1.0, 0.25]))]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    graph = helper.make_graph(
        [node], "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 2, 2])], stats)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 4
    x = np.random.default_rng(0).standard_normal((1, c, 2, 2)).astype(np.float32)
    s, b, m, v = (np.array(t.float_data, np.float32)[:, None, None] for t in stats)
    expected = s * (x - m) / np.sqrt(v + 1e-5) + b
    np.testing.assert_allclose(zoo.numpy_reference(model)(x), expected, rtol=1e-6)
