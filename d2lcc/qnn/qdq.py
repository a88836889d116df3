"""From QDQ to integer operators: Relay's fake-quantization-to-integer on Relax.

A model in QDQ form computes in float between ``dequantize`` and ``quantize``
calls::

    xf = qnn.dequantize(x, xs, xz)          # integer -> float
    wf = qnn.dequantize(w, ws, wz)
    y  = R.nn.conv2d(xf, wf)                # a float operator
    q  = qnn.quantize(y, ys, yz)            # float -> integer

The quantize says which integers the float result becomes, so the float
operator between the two can run on integers instead:
``qnn.conv2d(x, w, xz, wz)`` sums exactly in int32 with the scale
``xs * ws``, and ``qnn.requantize`` takes the sum to ``(ys, yz)``. The pass
:func:`FakeQuantizationToInteger` does this for every ``qnn.quantize`` whose
input is a supported float operator on dequantized inputs; TVM's Relay had it
as ``FakeQuantizationToInteger`` (2021). A rule per float operator
(:data:`RULES`) turns the operator into integer operators and reports the
integer result's scale and zero point as a :class:`Quantized`; the pass
adds the bias, requantizes to the quantize's parameters and folds a ReLU or
clip into the integer range. Calls it cannot rewrite stay in float.

:func:`QuantizeToQnn` first maps Relax's built-in ``R.quantize`` /
``R.dequantize`` (what TVM's ONNX frontend makes of QuantizeLinear and
DequantizeLinear) to the dialect's ``qnn.quantize`` / ``qnn.dequantize``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from . import api, api_elementwise
from .common import check_rule_args
from .ops import is_qnn_call
from .params import DTYPE_RANGES, constant_value
from .transform import rewrite_calls

__teaching__ = ("conv2d_to_integer",)


class Quantized(NamedTuple):
    """An integer tensor ``expr`` with ``real = scale * (expr - zero_point)``.

    ``scale`` and ``zero_point`` are NumPy scalars or 1-D arrays along ``axis``.
    """

    expr: Any
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 1


def dequantized(expr, lookup: Callable) -> Quantized | None:
    """If ``expr`` is bound to ``qnn.dequantize(q, s, z)`` with constants, return it.

    ``lookup(var)`` returns the value bound to a variable (or None). Returns
    None for anything else.
    """
    from tvm import relax

    from .. import checks

    checks.function("qnn.qdq.dequantized", "lookup", lookup)
    call = lookup(expr) if isinstance(expr, relax.Var) else expr
    if not is_qnn_call(call, "dequantize"):
        return None
    scale, zero = constant_value(call.args[1]), constant_value(call.args[2])
    if scale is None or zero is None:
        return None
    return Quantized(call.args[0], scale, zero, int(call.attrs["axis"]))


def ints(values) -> list[int]:
    """A TVM array of integers (an operator attribute) as a list of ints."""
    import tvm

    if not isinstance(values, (tvm.ir.Array, list, tuple)) or not all(
            isinstance(v, (tvm.tirx.IntImm, int, np.integer)) for v in values):
        raise TypeError(f"qnn.qdq.ints: values must be an array of integers, got "
                        f"{values!r:.60}")
    return [int(v) for v in values]


def _per_tensor(*values: Quantized | None) -> bool:
    return all(v is not None and v.scale.size == 1 and v.zero_point.size == 1
               for v in values)


# Same code as d2lcc.qnn.qdq.conv2d_to_integer; edit it here and re-run.
def conv2d_to_integer(bb, call, lookup, out):
    x = dequantized(call.args[0], lookup)
    w = dequantized(call.args[1], lookup)
    if x is None or w is None or call.attrs.data_layout != "NCHW":
        return None
    a = call.attrs
    acc = api.conv2d(x.expr, w.expr, x.zero_point, w.zero_point, x.scale, w.scale,
                     strides=ints(a.strides), padding=ints(a.padding),
                     dilation=ints(a.dilation), groups=int(a.groups))
    return Quantized(bb.emit(acc), x.scale * w.scale, np.int32(0), axis=1)


def _matmul_to_integer(bb, call, lookup, out) -> Quantized | None:
    """``R.matmul(dq(a), dq(w).T)`` (Gemm) or ``R.matmul(dq(a), dq(w))`` -> dense."""
    from tvm import relax

    a = dequantized(call.args[0], lookup)
    b = lookup(call.args[1]) if isinstance(call.args[1], relax.Var) else None
    if a is None or len(a.expr.ty.shape) != 2:
        return None
    if isinstance(b, relax.Call) and _op_name(b) == "relax.permute_dims":
        w = dequantized(b.args[0], lookup)
        weight, axis = (w.expr, w.axis) if w is not None else (None, None)
    else:
        w = dequantized(call.args[1], lookup)
        values = constant_value(w.expr) if w is not None else None
        weight = None if values is None else relax.const(np.ascontiguousarray(values.T))
        axis = None if w is None else 1 - w.axis
    if weight is None or (w.scale.size > 1 and axis != 0):
        return None
    acc = api.dense(a.expr, weight, a.zero_point, w.zero_point, a.scale, w.scale)
    return Quantized(bb.emit(acc), a.scale * w.scale, np.int32(0), axis=1)


def _elementwise(builder):
    def rule(bb, call, lookup, out) -> Quantized | None:
        a, b = (dequantized(arg, lookup) for arg in call.args[:2])
        if not _per_tensor(a, b) or a.expr.ty.dtype != b.expr.ty.dtype:
            return None
        if str(a.expr.ty.dtype) != out.dtype:
            return None
        value = builder(a.expr, b.expr, a.scale, a.zero_point, b.scale, b.zero_point,
                        out.scale, out.zero_point)
        return Quantized(bb.emit(value), out.scale, out.zero_point)

    rule.__doc__ = f"Elementwise op on dequantized inputs -> ``{builder.__name__}``."
    return rule


def _concat_to_integer(bb, call, lookup, out) -> Quantized | None:
    """``R.concat`` of dequantized tensors -> ``qnn.concatenate``."""
    from tvm import relax

    fields = call.args[0]
    if isinstance(fields, relax.Var):
        fields = lookup(fields)
    if not isinstance(fields, relax.Tuple):
        return None
    parts = [dequantized(f, lookup) for f in fields.fields]
    if not _per_tensor(*parts) or any(str(p.expr.ty.dtype) != out.dtype for p in parts):
        return None
    value = api_elementwise.concatenate(
        [p.expr for p in parts], [p.scale for p in parts],
        [p.zero_point for p in parts], out.scale, out.zero_point,
        axis=int(call.attrs.axis))
    return Quantized(bb.emit(value), out.scale, out.zero_point)


def _carry_to_integer(bb, call, lookup, out) -> Quantized | None:
    """An op that moves values (reshape, max pool, ...) runs on the integers as is.

    Exact for per-tensor parameters: ``max`` commutes with the increasing map
    ``q -> scale * (q - zero_point)``, and moving values changes none.
    """
    from tvm import relax

    x = dequantized(call.args[0], lookup)
    if not _per_tensor(x):
        return None
    moved = relax.Call(call.op, [x.expr, *call.args[1:]], call.attrs, call.ty_args)
    return Quantized(bb.emit(moved), x.scale, x.zero_point)


def _identity_to_integer(bb, call, lookup, out) -> Quantized | None:
    """``quantize(dequantize(x))`` (with an activation folded in, see the pass)."""
    return dequantized(call, lookup)


def _window_counts(shape, attrs) -> np.ndarray:
    """How many input elements (padding excluded) each pooling window covers."""
    h, w = shape[2], shape[3]
    ones = np.zeros((h + attrs[2][0] + attrs[2][2], w + attrs[2][1] + attrs[2][3]))
    ones[attrs[2][0]:attrs[2][0] + h, attrs[2][1]:attrs[2][1] + w] = 1
    (kh, kw), (sh, sw), (dh, dw) = attrs[0], attrs[1], attrs[3]
    oh = (ones.shape[0] - dh * (kh - 1) - 1) // sh + 1
    ow = (ones.shape[1] - dw * (kw - 1) - 1) // sw + 1
    counts = np.zeros((oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            counts += ones[i * dh:i * dh + sh * (oh - 1) + 1:sh,
                           j * dw:j * dw + sw * (ow - 1) + 1:sw]
    return counts.reshape(1, 1, oh, ow)


def _avg_pool2d_to_integer(bb, call, lookup, out) -> Quantized | None:
    """``R.nn.avg_pool2d`` -> exact int32 window sums (a depthwise ``qnn.conv2d``
    with a kernel of ones), divided by the window size in the requantize.

    Where windows cover different numbers of elements (padding not counted),
    the sums are dequantized, divided and quantized in float32.
    """
    from tvm import relax

    x, a = dequantized(call.args[0], lookup), call.attrs
    if not _per_tensor(x) or a.ceil_mode or a.layout != "NCHW":
        return None
    channels = int(x.expr.ty.shape[1])
    pool, pad = ints(a.pool_size), ints(a.padding)
    ones = relax.const(np.ones((channels, 1, *pool), np.int8))
    sums = bb.emit(api.conv2d(x.expr, ones, x.zero_point, 0, x.scale, 1.0,
                              strides=ints(a.strides), padding=pad,
                              dilation=ints(a.dilation), groups=channels))
    if a.count_include_pad or not any(pad):
        return Quantized(sums, np.float32(x.scale / np.prod(pool)), np.int32(0))
    geometry = (pool, ints(a.strides), pad, ints(a.dilation))
    counts = _window_counts(ints(list(x.expr.ty.shape.values)), geometry)
    total = bb.emit(api.dequantize(sums, x.scale, 0))
    mean = bb.emit(relax.op.divide(total, relax.const(counts)))
    value = api.quantize(mean, out.scale, out.zero_point, out.dtype, axis=1)
    return Quantized(bb.emit(value), out.scale, out.zero_point)


def _mean_to_integer(bb, call, lookup, out) -> Quantized | None:
    """``R.mean(x, axis=[2, 3])`` (a global average pool) -> an int32 sum.

    ``mean = scale * (sum - n * zero_point) / n`` over the ``n`` elements.
    """
    from tvm import relax

    x = dequantized(call.args[0], lookup)
    if not _per_tensor(x) or len(x.expr.ty.shape) != 4:
        return None
    if sorted(int(i) for i in call.attrs.axis) != [2, 3]:
        return None
    n = int(x.expr.ty.shape[2]) * int(x.expr.ty.shape[3])
    wide = bb.emit(relax.op.astype(x.expr, "int32"))
    total = relax.op.sum(wide, axis=[2, 3], keepdims=bool(call.attrs.keepdims))
    return Quantized(bb.emit(total), np.float32(x.scale / n),
                     np.int32(n * int(x.zero_point)))


#: Float operator -> rule ``rule(bb, call, lookup, out)`` returning a
#: :class:`Quantized` integer result (or None to leave the call in float).
RULES: dict[str, Callable] = {
    "relax.nn.conv2d": conv2d_to_integer,
    "relax.matmul": _matmul_to_integer,
    "relax.add": _elementwise(api_elementwise.add),
    "relax.multiply": _elementwise(api_elementwise.mul),
    "relax.concat": _concat_to_integer,
    "relax.nn.avg_pool2d": _avg_pool2d_to_integer,
    "relax.mean": _mean_to_integer,
    "relax.qnn.dequantize": _identity_to_integer,
    **{name: _carry_to_integer for name in (
        "relax.nn.max_pool2d", "relax.reshape", "relax.permute_dims",
        "relax.squeeze", "relax.expand_dims", "relax.flatten")},
}
#: Operators whose int32 result may take a bias added before requantizing.
ACCUMULATORS = ("relax.nn.conv2d", "relax.matmul")


class _Output(NamedTuple):
    """The parameters of the ``qnn.quantize`` being rewritten."""

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str


def _call(expr, lookup):
    from tvm import relax

    value = lookup(expr) if isinstance(expr, relax.Var) else expr
    return value if isinstance(value, relax.Call) else None


def _op_name(call) -> str:
    """The operator name of a call (empty for calls of functions)."""
    import tvm

    return call.op.name if isinstance(call.op, tvm.ir.Op) else ""


def _activation_range(src, out: Output) -> tuple[Any, tuple[int, int] | None]:
    """Peel a ReLU/clip off ``src``; return its input and its range in integers."""
    name = _op_name(src)
    lo_q, hi_q = DTYPE_RANGES[out.dtype]
    zero = int(out.zero_point)
    if name == "relax.nn.relu":
        return src.args[0], (max(lo_q, zero), hi_q)
    if name == "relax.clip":
        values = [getattr(arg.value, "value", arg.value) for arg in src.args[1:3]]
        lo, hi = (float(v) for v in values)
        bounds = [zero + int(np.round(np.float32(v) / out.scale)) for v in (lo, hi)]
        return src.args[0], (max(lo_q, bounds[0]), min(hi_q, bounds[1]))
    return None, None


def _bias(src, lookup):
    """Split ``add(acc, bias)`` into the accumulating call and the bias operand."""
    if _op_name(src) != "relax.add":
        return src, None
    for i in (0, 1):
        core = _call(src.args[i], lookup)
        if core is not None and _op_name(core) in ACCUMULATORS:
            return core, src.args[1 - i]
    return src, None


def _integer_bias(bias, lookup, acc_scale, shape) -> np.ndarray | None:
    """The bias as int32 in the accumulator's scale, shaped like the operand."""
    call = _call(bias, lookup)
    if call is not None and _op_name(call) == "relax.reshape":
        bias = call.args[0]
    q = dequantized(bias, lookup)
    values = constant_value(q.expr) if q is not None else constant_value(bias)
    if values is None:
        return None
    if q is not None and q.zero_point.max(initial=0) == 0 and np.allclose(
            q.scale, acc_scale, rtol=1e-6, atol=0):
        ints = values.astype(np.int64)
    else:
        real = (values.astype(np.float64) - (0 if q is None else q.zero_point))
        real = real * (1.0 if q is None else q.scale)
        ints = np.round(real / np.asarray(acc_scale, np.float64))
    if np.abs(ints).max(initial=0) >= 2**31:
        return None
    return ints.astype(np.int32).reshape(shape)


def quantize_to_integer(bb, call, lookup, rules: dict | None = None):
    """Rewrite ``qnn.quantize(f(dequantized...))`` into integer operators.

    Returns the integer expression (``call`` itself where no rule applies).
    ``rules`` is a dict like :data:`RULES` (the default).
    """
    from tvm import relax

    from .. import checks

    func = "qnn.qdq.quantize_to_integer"
    check_rule_args(func, bb, call)
    checks.function(func, "lookup", lookup)
    if rules is not None and not isinstance(rules, dict):
        raise TypeError(f"{func}: rules must be a dict, got {type(rules).__name__}")
    if not is_qnn_call(call, "quantize"):
        raise ValueError(f"{func}: call must call qnn.quantize")

    scale, zero = constant_value(call.args[1]), constant_value(call.args[2])
    out_dtype = str(call.attrs["out_dtype"])
    if scale is None or zero is None or scale.size != 1 or out_dtype not in (
            "int8", "uint8"):
        return call
    out = _Output(scale.reshape(()), zero.reshape(()), out_dtype)
    src = _call(call.args[0], lookup)
    if src is None:
        return call
    inner, act = _activation_range(src, out)
    if inner is not None:
        src = _call(inner, lookup)
        if src is None:
            return call
    src, bias = _bias(src, lookup)
    rule = (rules or RULES).get(_op_name(src))
    got = rule(bb, src, lookup, out) if rule else None
    if got is None:
        return call
    expr = got.expr
    if bias is not None:
        ints = _integer_bias(bias, lookup, got.scale, [int(d) for d in bias.ty.shape])
        if ints is None:
            return call
        expr = bb.emit(relax.op.add(expr, relax.const(ints)))
    same = (str(expr.ty.dtype) == out_dtype and np.all(got.scale == out.scale)
            and np.all(got.zero_point == out.zero_point))
    if not same:
        expr = bb.emit(api.requantize(expr, got.scale, got.zero_point, out.scale,
                                      out.zero_point, out_dtype, axis=got.axis))
    if act is not None:
        lo, hi = act
        expr = bb.emit(relax.op.maximum(expr, relax.const(lo, out_dtype)))
        expr = relax.op.minimum(expr, relax.const(hi, out_dtype))
    return expr


def FakeQuantizationToInteger(rules: dict | None = None):
    """Return a pass rewriting dequantize -> float op -> quantize into integer ops.

    ``rules`` maps float operator names (``"relax.nn.conv2d"``) to rules as in
    :data:`RULES` (the default). Calls no rule handles stay as they are;
    dequantize calls and float operators left unused are removed.
    """
    import tvm
    from tvm import relax

    from .. import checks

    func = "qnn.qdq.FakeQuantizationToInteger"
    if rules is not None:
        if not isinstance(rules, dict):
            raise TypeError(f"{func}: rules must be a dict, got {type(rules).__name__}")
        for name, rule in rules.items():
            checks.string(func, "rules key", name)
            checks.function(func, f"rules[{name!r}]", rule)

    def run(mod, _ctx):
        def rule(bb, call, lookup):
            return quantize_to_integer(bb, call, lookup, rules)

        rewritten = rewrite_calls(mod, {"quantize": rule}, with_lookup=True)
        rewritten = relax.transform.CanonicalizeBindings()(rewritten)
        return relax.transform.DeadCodeElimination()(rewritten)

    return tvm.transform.module_pass(run, opt_level=0,
                                     name="qnn.FakeQuantizationToInteger")


def _to_qnn_call(call):
    """``R.quantize``/``R.dequantize`` with constant parameters -> the qnn builders."""
    scale, zero = constant_value(call.args[1]), constant_value(call.args[2])
    if scale is None or zero is None:
        raise ValueError(f"qnn.qdq.QuantizeToQnn: {call.op.name} needs constant "
                         "scale and zero point")
    axis = int(call.attrs.axis)
    zero = zero.astype(np.int64)
    if scale.size == 1 and zero.size == 1:  # one value, perhaps as a [1] array
        scale, zero = scale.reshape(()), zero.reshape(())
    if call.op.name == "relax.quantize":
        return api.quantize(call.args[0], scale.astype(np.float32), zero,
                            str(call.attrs.out_dtype), axis)
    return api.dequantize(call.args[0], scale.astype(np.float32), zero, axis)


def QuantizeToQnn():
    """Return a pass mapping ``R.quantize``/``R.dequantize`` to ``qnn`` calls.

    Relax's built-in operators and the dialect's agree on the arithmetic
    (round half to even, saturate); the dialect's are what the QNN passes match.
    Scales and zero points must be constants (``ValueError`` otherwise).
    """
    import tvm
    from tvm import relax

    names = ("relax.quantize", "relax.dequantize")

    @relax.expr_functor.mutator
    class _Mutator(relax.PyExprMutator):
        def visit_call_(self, call):
            call = self.visit_expr_post_order(call)
            if isinstance(call.op, tvm.ir.Op) and call.op.name in names:
                return _to_qnn_call(call)
            return call

    def run(mod, _ctx):
        mutator = _Mutator(mod)
        for gv, fn in mod.functions.items():
            if isinstance(fn, relax.Function):
                mutator.builder_.update_func(gv, mutator.visit_expr(fn))
        return mutator.builder_.get()

    return tvm.transform.module_pass(run, opt_level=0, name="qnn.QuantizeToQnn")
