"""Real network architectures without downloads: the ONNX model zoo in the onnx wheel.

The ``onnx`` package ships nine model-zoo architectures as test data
(``onnx/backend/test/data/light/``): ResNet-50, Inception v1 and v2,
DenseNet-121, SqueezeNet, ShuffleNet, VGG-19, AlexNet and ZFNet-512, each
with the output it should give. To keep the files small, their weights are
not stored: ``ConstantOfShape`` nodes fill every weight with one value.

:func:`load` gives such a network real-looking weights: it first runs the
shipped model and compares its output with the shipped expected output (so we
know the architecture is what the file says), then replaces each constant
weight by seeded random values of the right kind (He-scaled convolution and
dense weights, batch-norm statistics near those of the data), so the network
computes something that depends on every weight, and deterministically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import checks

#: The short names of the shipped architectures, and their file names.
MODELS: dict[str, str] = {
    "alexnet": "bvlc_alexnet",
    "densenet121": "densenet121",
    "inception_v1": "inception_v1",
    "inception_v2": "inception_v2",
    "resnet50": "resnet50",
    "shufflenet": "shufflenet",
    "squeezenet": "squeezenet",
    "vgg19": "vgg19",
    "zfnet512": "zfnet512",
}


def path(name: str) -> Path:
    """The shipped ``.onnx`` file of architecture ``name`` (one of :data:`MODELS`)."""
    import onnx

    checks.one_of("zoo.path", "name", name, list(MODELS))
    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    found = folder / f"light_{MODELS[name]}.onnx"
    if not found.exists():
        raise FileNotFoundError(f"zoo.path: the installed onnx package has no {found}")
    return found


def data_input(model: Any):
    """The graph input that carries data (neither a weight nor a node's output)."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"zoo.data_input: model must be an onnx.ModelProto, "
                        f"got {type(model).__name__}")
    inits = {t.name for t in model.graph.initializer}
    produced = {o for node in model.graph.node for o in node.output}
    found = [i for i in model.graph.input if i.name not in inits | produced]
    if len(found) != 1:
        raise ValueError(f"zoo.data_input: expected one data input, found "
                         f"{[i.name for i in found]}")
    return found[0]


def input_shape(model: Any) -> tuple[int, ...]:
    """The shape of :func:`data_input` (``(1, 3, 224, 224)`` for every zoo model)."""
    dims = data_input(model).type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)


def _shipped(name: str):
    import onnx

    model = onnx.load(str(path(name)))
    # The files also list every weight as a graph input, although nodes make
    # them; runtimes reject an input that a node overwrites.
    produced = {o for node in model.graph.node for o in node.output}
    keep = [i for i in model.graph.input if i.name not in produced]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model


def check_architecture(name: str, model: Any = None) -> float:
    """Run the shipped model with onnxruntime and return its largest difference
    from the shipped expected output; raise ``ValueError`` if it exceeds 1e-4.

    The input is what ONNX's backend tests feed these files: ``arange(n) / n``.
    """
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = _shipped(name) if model is None else model
    shape = input_shape(model)
    size = int(np.prod(shape))
    x = (np.arange(size).reshape(shape) / size).astype(np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the files carry unused initializers; do not warn
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {data_input(model).name: x})[0]
    expected_file = path(name).with_name(f"light_{MODELS[name]}_output_0.pb")
    expected = numpy_helper.to_array(onnx.load_tensor(str(expected_file)))
    error = float(np.abs(got - expected).max())
    if got.shape != expected.shape or not error <= 1e-4:
        raise ValueError(f"zoo.check_architecture: {name} gives output {got.shape} "
                         f"off by {error} from the shipped {expected.shape}")
    return error


def _consumers(model) -> dict[str, tuple[str, int]]:
    found = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            found.setdefault(name, (node.op_type, k))
    return found


def _random_weight(kind: tuple[str, int], shape: tuple[int, ...], rng) -> np.ndarray:
    op, position = kind
    if op == "Conv" and position == 1 or op in ("Gemm", "MatMul") and position == 1:
        fan_in = int(np.prod(shape[1:])) if op == "Conv" else shape[0]
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    if op == "BatchNormalization":
        # scale, bias, running mean, running variance
        return {1: rng.uniform(0.5, 1.0, shape), 2: 0.1 * rng.standard_normal(shape),
                3: np.zeros(shape), 4: np.ones(shape)}[position]
    return 0.05 * rng.standard_normal(shape)


def load(name: str, seed: int = 0, check: bool = True):
    """Return architecture ``name`` as an ``onnx.ModelProto``, with seeded weights.

    Parameters
    ----------
    name
        One of :data:`MODELS`, e.g. ``"resnet50"``.
    seed
        Seed of the weights; the same seed gives the same model.
    check
        First run :func:`check_architecture` on the shipped file.
    """
    import onnx
    from onnx import numpy_helper

    checks.one_of("zoo.load", "name", name, list(MODELS))
    seed = checks.nonnegative_int("zoo.load", "seed", seed)
    checks.boolean("zoo.load", "check", check)
    model = _shipped(name)
    if check:
        check_architecture(name, model)
    data = data_input(model)
    rng = np.random.default_rng(seed)
    consumers = _consumers(model)
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes, weights = [], {}
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in constants:
            shape = tuple(int(d) for d in constants[node.input[0]])
            weights[node.output[0]] = shape
        else:
            nodes.append(node)
    for tensor_name, value in constants.items():  # weights stored as real tensors
        if value.dtype == np.float32 and consumers.get(tensor_name, ("", 0))[1] >= 1:
            weights[tensor_name] = value.shape
    used = {i for node in nodes for i in node.input}
    kept = [t for t in model.graph.initializer
            if t.name in used and t.name not in weights]
    new = [numpy_helper.from_array(
        _random_weight(consumers[w], shape, rng).astype(np.float32), w)
        for w, shape in weights.items() if w in used]
    del model.graph.node[:], model.graph.initializer[:], model.graph.input[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(kept + new)
    model.graph.input.append(data)
    # IR version 4 is the first where an initializer need not be a graph input.
    model.ir_version = max(model.ir_version, 4)
    onnx.checker.check_model(model)
    return model


def numpy_reference(model: Any):
    """Return a function that runs ``model`` in NumPy: ONNX's reference evaluator.

    ``onnx.reference.ReferenceEvaluator`` implements every ONNX operator in
    NumPy. Its opset-9 ``BatchNormalization`` fills in the default ``momentum``
    and then mixes the batch's own statistics into the running ones, as in
    training; a deployed network uses the stored statistics only, which is
    what onnxruntime and TVM compute. We replace that operator by the
    inference formula ``scale * (x - mean) / sqrt(var + eps) + bias``. Its
    ``Softmax`` also ignores that before opset 13 the operator flattens the
    input to 2-D at ``axis`` (SqueezeNet's ``1000 x 1 x 1`` output then sums to
    1 over a single element); we replace it too.
    """
    import onnx
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.op_run import OpRun

    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"zoo.numpy_reference: model must be an onnx.ModelProto, "
                        f"got {type(model).__name__}")

    class BatchNormalization(OpRun):  # the name is the ONNX operator it replaces
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=None, **_attrs):
            shape = (-1,) + (1,) * (x.ndim - 2)
            eps = 1e-5 if epsilon is None else epsilon
            y = (scale.reshape(shape) * (x - mean.reshape(shape))
                 / np.sqrt(var.reshape(shape) + eps) + bias.reshape(shape))
            return (y.astype(x.dtype),)

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=13)

    class Softmax(OpRun):
        op_domain = ""

        def _run(self, x, axis=None, **_attrs):
            if opset >= 13:  # along one axis
                z = np.exp(x - x.max(axis=-1 if axis is None else axis, keepdims=True))
                return ((z / z.sum(axis=-1 if axis is None else axis,
                                   keepdims=True)).astype(x.dtype),)
            # Before opset 13: flatten to 2-D at ``axis`` (default 1), then rows.
            # (OpRun fills in the newest schema's default, -1: read the node.)
            given = [a.i for a in self.onnx_node.attribute if a.name == "axis"]
            axis = (given[0] if given else 1) % x.ndim
            rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
            z = np.exp(rows - rows.max(axis=1, keepdims=True))
            y = (z / z.sum(axis=1, keepdims=True)).reshape(x.shape)
            return (y.astype(x.dtype),)

    evaluator = ReferenceEvaluator(model, new_ops=[BatchNormalization, Softmax])
    name = data_input(model).name
    shape = input_shape(model)

    def run(x: np.ndarray) -> np.ndarray:
        checks.array("zoo.numpy_reference(...)", "x", x, dtypes=["float32"])
        if tuple(x.shape) != shape:
            raise ValueError(f"zoo.numpy_reference(...): x has shape {x.shape}, "
                             f"the model takes {shape}")
        return evaluator.run(None, {name: x})[0]

    return run
