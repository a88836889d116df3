"""Post-training quantization of a float ONNX model with onnxruntime's quantizer.

:func:`quantize_model` is a thin, checked front end to
``onnxruntime.quantization.quantize_static``: it calibrates activation ranges
by running the float model on NumPy data the caller supplies (no files, no
downloads) and returns the quantized model as an ``onnx.ModelProto`` in either
of the two formats onnxruntime writes:

- ``"QDQ"``: the float operators stay; QuantizeLinear/DequantizeLinear pairs
  are inserted around them (weights are stored quantized, followed by a
  DequantizeLinear);
- ``"QOperator"``: quantized operators replace the float ones
  (``QLinearConv``, ``QLinearMatMul``, ``QLinearAdd``, ...), with a
  QuantizeLinear at the model input and a DequantizeLinear at its output.

Options map one to one to onnxruntime's: ``per_channel`` (one weight scale per
output channel), ``activation_type``/``weight_type`` (``"uint8"``/``"int8"``),
``reduce_range`` (7-bit weights, which keeps the pair sums of AVX2's
``vpmaddubsw`` inside int16) and ``symmetric_activation`` (activation ranges
made symmetric around zero, so the zero point is 0 for int8 and 128 for
uint8). Weights are always quantized symmetrically, onnxruntime's default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from typing import Any, Iterator

import numpy as np

from .. import checks

FORMATS = ("QDQ", "QOperator")
TYPES = ("uint8", "int8")
#: Most samples one calibration batch holds when the model's batch is dynamic.
CALIBRATION_BATCH = 64


def float_input(model) -> tuple[str, list]:
    """Return the name and shape (ints, or None where dynamic) of ``model``'s input.

    ``model`` must be an ``onnx.ModelProto`` with exactly one graph input that
    is not an initializer, of element type float32.
    """
    return _float_input(model, "qnn.ptq.float_input")


def _float_input(model, func: str) -> tuple[str, list]:
    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"{func}: model must be an onnx.ModelProto, "
                        f"got {type(model).__name__}")
    inits = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    if len(inputs) != 1:
        raise ValueError(f"{func}: model must have exactly one non-constant input, "
                         f"got {[v.name for v in inputs]}")
    ttype = inputs[0].type.tensor_type
    if ttype.elem_type != onnx.TensorProto.FLOAT:
        raise ValueError(f"{func}: model input {inputs[0].name!r} must be float32, "
                         f"got element type {ttype.elem_type}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
    return inputs[0].name, dims


def _batches(data: np.ndarray, batch: int | None) -> Iterator[np.ndarray]:
    step = batch or CALIBRATION_BATCH
    for start in range(0, len(data), step):
        yield np.ascontiguousarray(data[start:start + step])


def _reader(name: str, data: np.ndarray, batch: int | None):
    """An onnxruntime ``CalibrationDataReader`` over ``data`` split into batches."""
    from onnxruntime.quantization import CalibrationDataReader

    class _NumpyReader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter({name: b} for b in _batches(data, batch))

        def get_next(self):
            return next(self.feeds, None)

    return _NumpyReader()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence onnxruntime's quantizer's advice, printed through ``logging``."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _check_data(func: str, data, dims: list) -> np.ndarray:
    data = checks.array(func, "calibration_data", data, ndim=len(dims),
                        dtypes=("float32",), finite=True, nonempty=True)
    for axis, (want, got) in enumerate(zip(dims[1:], data.shape[1:]), start=1):
        if want is not None and want != got:
            raise ValueError(f"{func}: calibration_data has shape {data.shape}; "
                             f"axis {axis} must be {want} (model input {dims})")
    batch = dims[0] if dims else None
    if batch is not None and len(data) % batch:
        raise ValueError(f"{func}: calibration_data holds {len(data)} samples, not "
                         f"a multiple of the model's batch size {batch}")
    return data


def quantize_model(
    model,
    calibration_data: np.ndarray,
    *,
    quant_format: str = "QDQ",
    per_channel: bool = False,
    activation_type: str = "uint8",
    weight_type: str = "int8",
    reduce_range: bool = False,
    symmetric_activation: bool = False,
) -> Any:
    """Quantize a float ONNX ``model`` with onnxruntime; return the quantized model.

    Parameters
    ----------
    model : onnx.ModelProto
        A float32 model with one input; its first input axis is the batch.
    calibration_data : numpy.ndarray
        float32 samples of the input, stacked on axis 0 (a multiple of the
        model's batch size when it is static); activation ranges are the
        minimum and maximum seen over them.
    quant_format : {"QDQ", "QOperator"}
    per_channel : bool
        One weight scale per output channel instead of one per tensor.
    activation_type, weight_type : {"uint8", "int8"}
    reduce_range : bool
        Quantize weights to 7 bits.
    symmetric_activation : bool
        Make activation ranges symmetric around zero.

    Returns
    -------
    onnx.ModelProto
        The quantized model; it takes and returns float32 like ``model``.
    """
    func = "qnn.ptq.quantize_model"
    name, dims = _float_input(model, func)
    data = _check_data(func, calibration_data, dims)
    checks.one_of(func, "quant_format", quant_format, FORMATS)
    checks.one_of(func, "activation_type", activation_type, TYPES)
    checks.one_of(func, "weight_type", weight_type, TYPES)
    flags = {flag: checks.boolean(func, flag, value) for flag, value in (
        ("per_channel", per_channel), ("reduce_range", reduce_range),
        ("symmetric_activation", symmetric_activation))}
    return _quantize(model, _reader(name, data, dims[0] if dims else None),
                     quant_format, activation_type, weight_type, **flags)


def _at_least_opset(model, version: int):
    """``model`` converted to ONNX opset ``version`` if its default opset is older.

    QuantizeLinear/DequantizeLinear exist from opset 10 and take a per-channel
    ``axis`` from opset 13; onnxruntime's quantizer writes them whatever the
    model's opset, and a model-zoo network (opset 9) would then not load.
    """
    import onnx
    from onnx import version_converter

    current = max((o.version for o in model.opset_import
                   if o.domain in ("", "ai.onnx")), default=version)
    if current >= version:
        return model
    return version_converter.convert_version(model, version)


def _quantize(model, reader, quant_format: str, activation_type: str,
              weight_type: str, per_channel: bool, reduce_range: bool,
              symmetric_activation: bool):
    import onnx
    from onnxruntime import quantization as q

    qtype = {"uint8": q.QuantType.QUInt8, "int8": q.QuantType.QInt8}
    qformat = {"QDQ": q.QuantFormat.QDQ, "QOperator": q.QuantFormat.QOperator}
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        # onnxruntime edits a ModelProto it is given (it moves the weights
        # to an external file); a copy on disk keeps the caller's intact
        source, path = (os.path.join(tmp, f) for f in ("float.onnx", "int8.onnx"))
        onnx.save(_at_least_opset(model, 13 if per_channel else 10), source)
        q.quantize_static(
            source, path, reader, quant_format=qformat[quant_format],
            per_channel=per_channel, reduce_range=reduce_range,
            activation_type=qtype[activation_type], weight_type=qtype[weight_type],
            extra_options={"ActivationSymmetric": symmetric_activation,
                           "WeightSymmetric": True},
        )  # fmt: skip
        return onnx.load(path)
