"""The QNN dialect, rebuilt on Relax: quantized operators, their lowering, QNN passes.

In 2019 TVM imported pre-quantized models through QNN, a Relay dialect whose
operators covered the quantized operators of many frameworks and were lowered
("canonicalized") into existing operators, so every existing pass and schedule
applied to them :cite:`Jain.Bhattacharya.Masuda.ea.2020`. Relay is gone from
TVM 0.27 and Relax has only ``quantize``/``dequantize``; this package brings
the dialect back.

Operators
---------
Eight real Relax operators, registered from Python on first use
(:mod:`d2lcc.qnn.ops`: ``FInferType``, ``FPurity``, ``FLegalize``) under the
names ``relax.qnn.<op>``; the ``relax.`` prefix makes TVMScript print them as
``R.qnn.quantize(x, ..., out_dtype="uint8", axis=1)``. One builder per
operator, each returning a ``relax.Call``::

    quantize(data, scale, zero_point, out_dtype="int8", axis=-1)
    dequantize(data, scale, zero_point, axis=-1)
    requantize(data, input_scale, input_zero_point, output_scale,
               output_zero_point, out_dtype="int8", axis=-1,
               rounding="TONEAREST", compute="float32")
    conv2d(data, weight, input_zero_point, kernel_zero_point, input_scale,
           kernel_scale, strides=(1, 1), padding=(0, 0), dilation=(1, 1),
           groups=1, out_dtype="int32", data_layout="NCHW",
           kernel_layout="OIHW")
    dense(data, weight, input_zero_point, kernel_zero_point, input_scale,
          kernel_scale, out_dtype="int32")
    add(lhs, rhs, lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point,
        output_scale, output_zero_point)                 # mul: the same
    concatenate(tensors, input_scales, input_zero_points, output_scale,
                output_zero_point, axis=0)

Semantics
---------
Stated once, in the builders' docstrings (:mod:`d2lcc.qnn.api`,
:mod:`d2lcc.qnn.api_elementwise`); :mod:`d2lcc.qnn.reference` computes each
definition in NumPy.

Modules
-------
- :mod:`~d2lcc.qnn.params`, :mod:`~d2lcc.qnn.shapes`: checking parameters and types.
- :mod:`~d2lcc.qnn.common`: the lowering rules' registry (``@register_legalize``)
  and shared emitting helpers; :mod:`~d2lcc.qnn.lower` (elementwise rules),
  :mod:`~d2lcc.qnn.lower_matmul` (conv2d/dense), :mod:`~d2lcc.qnn.fixed_point`.
- :mod:`~d2lcc.qnn.transform`: ``Canonicalize`` (lower every qnn op),
  ``LegalizeUint8Int8`` (:mod:`~d2lcc.qnn.legalize`) and
  ``FoldDequantizeQuantize`` (:mod:`~d2lcc.qnn.simplify`). The ``FLegalize``
  attribute uses the same rules, so ``tvm.compile`` also lowers qnn ops.
- :mod:`~d2lcc.qnn.onnxrt` runs one-node ONNX models in onnxruntime as an
  independent check.
- Pre-quantized models: :func:`d2lcc.qnn.from_onnx` imports both formats of
  onnxruntime's quantizer (:mod:`~d2lcc.qnn.ptq`): QOperator nodes are
  rewritten to QDQ (:mod:`~d2lcc.qnn.qoperator`), TVM's ONNX frontend imports
  them, and :mod:`~d2lcc.qnn.qdq` turns dequantize -> float op -> quantize
  into integer ``qnn`` operators; :mod:`~d2lcc.qnn.evaluate` runs an imported
  module in NumPy.

Why real operators rather than composite functions
--------------------------------------------------
A registered operator is one node with a name and attributes: it prints as
itself, type inference checks it when it is built, and QNN-level passes match
it by name before anything is lowered, which is how Relay's QNN worked.
Composite functions (``R.function`` bodies tagged with a ``Composite``
attribute) would already contain the lowered ops, so a pass such as
uint8 x int8 legalization would have to recognise and rebuild their bodies.
The cost is that the operators exist only in this Python process (registered
on first use), and TVMScript can print but not parse them back.
"""

from . import (evaluate, fixed_point, onnx_import, onnxrt, ops, params, ptq, qdq,
               qoperator, reference, transform)
from .api import conv2d, dense, dequantize, quantize, requantize
from .api_elementwise import add, concatenate, mul
from .onnx_import import from_onnx

__all__ = [
    # builders
    "quantize", "dequantize", "requantize", "conv2d", "dense", "add", "mul",
    "concatenate",
    # import of pre-quantized ONNX models
    "from_onnx",
    # submodules
    "evaluate", "fixed_point", "onnx_import", "onnxrt", "ops", "params", "ptq", "qdq",
    "qoperator", "reference", "transform",
]  # fmt: skip
