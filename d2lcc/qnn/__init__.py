"""The QNN dialect, rebuilt on Relax: quantized operators, their lowering, and QNN-level passes.

In 2019 TVM imported pre-quantized models through QNN, a Relay dialect whose
operators covered the quantized operators of many frameworks and were lowered
("canonicalized") into existing operators, so every existing pass and schedule
applied to them :cite:`Jain.Bhattacharya.Masuda.ea.2020`. Relay is gone from TVM 0.27 and Relax has only
``quantize``/``dequantize``; this package brings the dialect back.

Operators
---------
Eight real Relax operators, registered from Python on first use
(:mod:`d2lcc.qnn.ops`: ``FInferType``, ``FPurity``, ``FLegalize``) under the names
``relax.qnn.<op>``; the ``relax.`` prefix makes TVMScript print them as
``R.qnn.quantize(x, ..., out_dtype="uint8", axis=1)``. Builders
(``data``/``weight`` are Relax tensor expressions; scales and zero points are
Relax expressions, Python numbers or 1-D arrays for per-channel parameters;
scales become float32 constants, zero points int32 constants)::

    quantize(data, scale, zero_point, out_dtype="int8", axis=-1)
    dequantize(data, scale, zero_point, axis=-1)
    requantize(data, input_scale, input_zero_point, output_scale, output_zero_point,
               out_dtype="int8", axis=-1, rounding="TONEAREST", compute="float32")
    conv2d(data, weight, input_zero_point, kernel_zero_point, input_scale, kernel_scale,
           strides=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, out_dtype="int32",
           data_layout="NCHW", kernel_layout="OIHW")           # only NCHW/OIHW
    dense(data, weight, input_zero_point, kernel_zero_point, input_scale, kernel_scale,
          out_dtype="int32")
    add(lhs, rhs, lhs_scale, lhs_zero_point, rhs_scale, rhs_zero_point,
        output_scale, output_zero_point)                        # mul: same parameters
    concatenate(tensors, input_scales, input_zero_points, output_scale,
                output_zero_point, axis=0)

Semantics (real = scale * (q - zero_point), as in TFLite and ONNX); every
rounding is round half to even (``np.round``, Relax ``R.round``, ONNX), done in
float32; ``M`` is a float32 multiplier computed in float64 and rounded once
(:func:`d2lcc.qnn.params.requantize_multiplier`):

- quantize: ``clip(int32(round(x / scale)) + zp)`` cast to ``out_dtype``.
- dequantize: ``float32(int32(q) - zp) * scale``.
- requantize: ``clip(int32(round(float32(q - zp_in) * M)) + zp_out)``, ``M = in_scale / out_scale``,
  ``rounding="TONEAREST"`` = half to even (Relay's TONEAREST meant half away from zero).
  ``compute="fixed_point"`` is integer-only (:mod:`d2lcc.qnn.fixed_point`): ``M`` as a 31-bit
  mantissa and a right shift in int64, ``rounding`` ``"TONEAREST"`` (half to even) or
  ``"UPWARD"`` (half toward +infinity, Relay's default); within one unit of the float32 mode.
- conv2d (NCHW/OIHW) and dense (``data [m, k]``, ``weight [units, k]``): exact int32 sums of
  ``(d - zd) * (w - zw[o])``; conv2d pads with real zero. Kernel scale/zero point may be
  per-channel (axis 0 of the weight = axis 1 of the output). No rounding; the scales are
  carried for the requantize that follows (output scale = input_scale * kernel_scale).
- add: each input rescaled to the output scale, ``round(float32(x - zp_x) * (s_x / s_out))``,
  then summed with ``zp_out`` and clipped; mul: ``clip(round(float32((l - zl)(r - zr)) * M) + zp_out)``,
  ``M = s_l * s_r / s_out``. Both per-tensor, NumPy broadcasting, output dtype = input dtype.
- concatenate: inputs whose parameters differ from the output's are requantized, then joined.

Per-channel parameters lie along ``axis`` (quantize/dequantize/requantize) or the
output channel (conv2d/dense). Bad input raises ValueError/TypeError naming the
operator and argument, e.g. ``qnn.conv2d: input_zero_point=300 is out of range for uint8 [0, 255]``.

Passes (:mod:`d2lcc.qnn.transform`)
-----------------------------------
- ``transform.Canonicalize()``: lowers every qnn op to plain Relax ops (:mod:`d2lcc.qnn.lower`,
  :mod:`d2lcc.qnn.lower_matmul`). quantize becomes divide, round, astype int32, add zp, clip,
  astype; conv2d/dense become the four-term form ``int conv - zw * pooled data sum - zd * weight
  sums + K * zd * zw``, omitting zero terms (one ``R.nn.conv2d`` when both zero points are 0)
  and folding constants in NumPy (with a constant weight, its transpose for dense and the last
  two terms, which become one constant). conv2d with padding and ``zd != 0`` first pads the
  data with ``zd`` (``R.nn.pad``), so that padded positions are real zeros.
- The ops also register ``FLegalize`` with the same rules, so ``relax.get_default_pipeline``
  (whose ``LegalizeOps`` lowers them) compiles a module that still holds qnn ops;
  run Canonicalize explicitly to see or transform the lowered Relax first.
- ``transform.LegalizeUint8Int8()``: runs before lowering; rewrites conv2d/dense to uint8 data x
  int8 weights (VNNI's ``vpdpbusd`` operands) by shifting by 128 and moving the zero points
  (:mod:`d2lcc.qnn.legalize`); the int32 results are unchanged.
- ``transform.FoldDequantizeQuantize()``: runs before lowering; replaces
  ``quantize(dequantize(q, s, z), s, z)`` by ``q`` for 8/16-bit ``q``, an identity proven in
  :mod:`d2lcc.qnn.simplify` and invisible to passes once the pair is lowered.

References: :mod:`d2lcc.qnn.reference` has a NumPy function per operator with the same
arguments (scales/zero points as numbers or arrays; no ``input_scale``/``kernel_scale`` for
conv2d/dense, which do not use them) computing bit-identical results.
:mod:`d2lcc.qnn.onnxrt` runs one-node ONNX models in onnxruntime (``quantize_linear``,
``dequantize_linear``, ``qlinear_conv``, ``qlinear_matmul``) as an independent check.
:func:`d2lcc.qnn.onnx_import.from_onnx` imports a pre-quantized ONNX model made of
QuantizeLinear, DequantizeLinear, QLinearConv (with bias) and QLinearMatMul into a
Relax module of qnn ops (TVM 0.27's own ONNX frontend has no QLinearConv/QLinearMatMul).

Example::

    from tvm import relax
    from d2lcc import qnn
    x = relax.Var("x", relax.TensorType((2, 5), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            q = bb.emit_output(qnn.quantize(x, 0.5, 127, out_dtype="uint8"))
        bb.emit_func_output(q)
    mod = qnn.transform.Canonicalize()(bb.get())   # then relax.get_default_pipeline(target)

A conv2d is followed by a requantize to 8 bits: ``qnn.requantize(acc, input_scale *
kernel_scale, 0, output_scale, output_zero_point, out_dtype="uint8", axis=1)``.

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

from . import fixed_point, ops, params, reference, transform
from .api import conv2d, dense, dequantize, quantize, requantize
from .api_elementwise import add, concatenate, mul

__all__ = [
    # builders
    "quantize", "dequantize", "requantize", "conv2d", "dense", "add", "mul", "concatenate",
    # submodules
    "fixed_point", "ops", "params", "reference", "transform",
]  # fmt: skip
