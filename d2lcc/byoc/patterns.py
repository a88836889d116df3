"""BYOC step 1: the patterns our codegens claim, and the checks that refuse a match.

Each pattern matches ``matmul`` or ``conv2d``, optionally followed by a bias
``add`` and a ``relu`` (:func:`make_pattern`, shown in the book). A match is
only a candidate: :func:`problem` names what our kernels cannot do (a dtype
other than float32, a layout other than NCHW/OIHW, a batched matmul, a grouped
or dilated convolution, a symbolic shape). :func:`pattern_table` turns both
into the ``(name, pattern, annotations, check)`` tuples that
``FuseOpsByPattern`` and TVM's pattern registry take; its ``unsupported``
argument says what the check does with a problem: ``"error"`` raises a
:class:`ValueError` naming the operator and the problem (the book's default:
no surprise at run time), ``"tvm"`` declines the match, so TVM compiles the
call itself (what TVM's TensorRT patterns do).
"""

from __future__ import annotations

import numpy as np
from tvm.relax.dpl import is_op, wildcard

from .. import checks
from .kernels import OPS, static_shape

__teaching__ = ("make_pattern",)

#: What a pattern's check may do with a match the kernels cannot run.
UNSUPPORTED = ("error", "tvm")
#: The codegens of this package, by the name ``RunCodegen`` looks up.
CODEGENS = ("d2lcc_c", "d2lcc_blas")


def make_pattern(op, bias, relu):
    """Pattern for relu?(op(x, w) + b?), with its parts named for the check."""
    x, w = wildcard(), wildcard()
    core = is_op(OPS[op])(x, w)
    root, parts = core, {"x": x, "w": w, "core": core}
    if bias:
        parts["b"] = wildcard()
        root = is_op("relax.add")(root, parts["b"])
    if relu:
        root = is_op("relax.nn.relu")(root)
    parts["root"] = root
    return root, parts


def problem(call) -> str | None:
    """Why our kernels cannot run ``call`` (a matmul or conv2d), or None if they can."""
    import tvm
    from tvm import relax

    if not (isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.Op)
            and call.op.name in OPS.values()):
        raise TypeError("byoc.problem: call must be a relax.Call of "
                        f"{sorted(OPS.values())}, got {type(call).__name__}")
    for role, arg in zip(("data", "weight"), call.args):
        if arg.ty.dtype != "float32":
            return f"{role} dtype is {arg.ty.dtype} (the kernels are float32 only)"
        if static_shape(arg.ty) is None:
            dims = ", ".join(str(d.value) if isinstance(d, tvm.tirx.IntImm) else str(d)
                             for d in arg.ty.shape)
            return f"{role} shape ({dims}) is not static"
    if call.ty.dtype != "float32":
        return f"out_dtype is {call.ty.dtype} (the kernels are float32 only)"
    if call.op.name == OPS["matmul"]:
        ranks = [arg.ty.ndim for arg in call.args]
        if ranks != [2, 2]:
            return f"operand ranks are {ranks} (the kernels take 2-D matmuls only)"
        return None
    attrs = call.attrs
    layouts = (attrs.data_layout, attrs.kernel_layout, attrs.out_layout)
    if tuple(str(s) for s in layouts) != ("NCHW", "OIHW", "NCHW"):
        return (f"layouts are data={attrs.data_layout}, kernel={attrs.kernel_layout}, "
                f"out={attrs.out_layout} (the kernels take NCHW data and OIHW weights)")
    if int(attrs.groups) != 1:
        return f"groups={int(attrs.groups)} (the kernels take dense convolutions)"
    if any(int(d) != 1 for d in attrs.dilation):
        return f"dilation={[int(d) for d in attrs.dilation]} (the kernels take 1)"
    return None


def _per_channel_bias(call, bias) -> bool:
    """Whether ``bias`` adds one float32 value per output channel of ``call``."""
    shape, out = static_shape(bias.ty), static_shape(call.ty)
    if shape is None or out is None or bias.ty.dtype != "float32":
        return False
    channels = out[-1] if call.op.name == OPS["matmul"] else out[1]
    axis = len(out) - 1 if call.op.name == OPS["matmul"] else 1
    # the bias must broadcast along every axis except the channel axis
    aligned = (1,) * (len(out) - len(shape)) + shape
    return (len(aligned) == len(out) and int(np.prod(shape)) == channels
            and all(s == 1 for i, s in enumerate(aligned) if i != axis))


def _make_check(codegen: str, unsupported: str):
    """The check function of ``codegen``'s patterns (see the module docstring)."""

    def check(context) -> bool:
        call = context.annotated_expr["core"]
        reason = problem(call)
        if reason is not None:
            if unsupported == "tvm":
                return False
            raise ValueError(
                f"byoc.partition: cannot offload {call.op.name} to {codegen}: "
                f"{reason}; pass unsupported='tvm' to leave such calls to TVM")
        bias = context.annotated_expr.get("b")
        return bias is None or _per_channel_bias(call, bias)

    return check


def pattern_table(codegen: str = "d2lcc_c", unsupported: str = "error") -> list:
    """The patterns of ``codegen``, longest first (FuseOpsByPattern's priority order).

    Each entry is ``(f"{codegen}.{name}", pattern, annotations, check)``.
    """
    checks.one_of("byoc.pattern_table", "codegen", codegen, CODEGENS)
    checks.one_of("byoc.pattern_table", "unsupported", unsupported, UNSUPPORTED)
    check = _make_check(codegen, unsupported)
    table = []
    for op in OPS:
        for bias, relu in ((True, True), (True, False), (False, True), (False, False)):
            root, parts = make_pattern(op, bias, relu)
            name = f"{codegen}.{op}" + "_bias" * bias + "_relu" * relu
            table.append((name, root, parts, check))
    return table


def register_patterns(codegen: str = "d2lcc_c") -> list[str]:
    """Put ``codegen``'s patterns into TVM's pattern registry; return their names.

    ``tvm.relax.backend.pattern_registry.get_patterns_with_prefix(codegen)``
    then finds them, as it finds the patterns of TVM's own backends. Registering
    again replaces them.
    """
    from tvm.relax.backend.pattern_registry import register_patterns as register

    table = pattern_table(codegen)
    register(table[::-1])  # the registry gives later entries higher priority
    return [entry[0] for entry in table]
