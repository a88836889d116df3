"""Passes over ``qnn`` programs: :func:`Canonicalize` (lowering), and the QNN-level
:func:`LegalizeUint8Int8` and :func:`FoldDequantizeQuantize`, which run before it.

Both are ordinary ``tvm.transform`` module passes, so they compose with
Relax's own passes in a ``tvm.transform.Sequential``.
"""

from __future__ import annotations

from typing import Callable

from . import ops  # importing ops also registers every lowering rule
from .common import legalizations
from .legalize import legalize_matmul
from .simplify import fold_dequantize_quantize


def rewrite_calls(mod, rules: dict[str, Callable], with_lookup: bool = False):
    """Return ``mod`` with each call of a qnn op in ``rules`` replaced by its rule.

    ``rules`` maps operator names (``"conv2d"``) to rules ``rule(bb, call)``.
    A rule emits its intermediate steps through the BlockBuilder ``bb`` and
    returns the expression that replaces the call. With ``with_lookup``, it is
    called as ``rule(bb, call, lookup)``, where ``lookup(var)`` returns the
    value bound to a variable (or None).
    """
    import tvm
    from tvm import relax

    from .. import checks

    func = "qnn.transform.rewrite_calls"
    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"{func}: mod must be a tvm.IRModule, got {type(mod).__name__}")
    if not isinstance(rules, dict):
        raise TypeError(f"{func}: rules must be a dict, got {type(rules).__name__}")
    for name, rule in rules.items():
        checks.one_of(func, "rules key", name, ops.OP_DOCS)
        checks.function(func, f"rules[{name!r}]", rule)
    checks.boolean(func, "with_lookup", with_lookup)

    @relax.expr_functor.mutator
    class _Rewriter(relax.PyExprMutator):
        def visit_call_(self, call):
            call = self.visit_expr_post_order(call)
            for name, rule in rules.items():
                if ops.is_qnn_call(call, name):
                    if with_lookup:
                        return rule(self.builder_, call, self._lookup)
                    return rule(self.builder_, call)
            return call

        def _lookup(self, var):
            return self.lookup_binding(var) if isinstance(var, relax.Var) else None

    rewriter = _Rewriter(mod)
    for gv, fn in mod.functions.items():
        if isinstance(fn, relax.Function):
            rewriter.builder_.update_func(gv, rewriter.visit_expr(fn))
    return rewriter.builder_.get()


def Canonicalize():
    """Return a pass that lowers every ``qnn`` operator into plain Relax operators.

    Each call is replaced by its rule registered in :mod:`d2lcc.qnn.common`
    (``@register_legalize``), looked up when the pass runs. After it, the
    module holds only built-in Relax operators, so
    ``relax.get_default_pipeline(target)`` (or ``tvm.compile``) compiles it.
    Scales and zero points of requantize, conv2d, dense, add, mul and
    concatenate must be constants; quantize and dequantize accept any expression.
    """
    import tvm

    def run(mod, _ctx):
        return rewrite_calls(mod, legalizations())

    return tvm.transform.module_pass(run, opt_level=0, name="qnn.Canonicalize")


def FoldDequantizeQuantize():
    """Return a pass that replaces ``quantize(dequantize(q, s, z), s, z)`` by ``q``.

    The replacement is proven exact.

    Only pairs with equal constant parameters, equal axes, the same integer
    dtype on both ends and an 8- or 16-bit ``q`` are folded; see
    :mod:`d2lcc.qnn.simplify`. Dequantize calls left unused are removed.
    """
    import tvm
    from tvm import relax

    def run(mod, _ctx):
        rules = {"quantize": fold_dequantize_quantize}
        folded = rewrite_calls(mod, rules, with_lookup=True)
        return relax.transform.DeadCodeElimination()(folded)

    name = "qnn.FoldDequantizeQuantize"
    return tvm.transform.module_pass(run, opt_level=0, name=name)


def LegalizeUint8Int8():
    """Return a pass making ``qnn.conv2d``/``qnn.dense`` take uint8 data, int8 weights.

    This is the operand pair of Intel VNNI's ``vpdpbusd`` (and of AVX2's
    ``vpmaddubsw``). int8 data is shifted by +128 and uint8 weights by -128;
    the zero points shift with them, so the int32 result is unchanged. See
    :mod:`d2lcc.qnn.legalize`.
    """
    import tvm

    def run(mod, _ctx):
        rules = {"conv2d": legalize_matmul, "dense": legalize_matmul}
        return rewrite_calls(mod, rules)

    return tvm.transform.module_pass(run, opt_level=0, name="qnn.LegalizeUint8Int8")
