"""Remove arithmetic with identity elements from Relax functions: ``x * 1``, ``x + 0``.

Networks pick such operations up from exporters and from earlier rewrites (a
folded scale of one, a bias of zeros). FoldConstant leaves them alone, since
``x`` is not a constant; this pass replaces the call by ``x`` wherever the
call's result has exactly ``x``'s type (so no broadcasting is lost).

The chapter writes the rewrite twice, and shows both as cells a reader can
edit: with :class:`relax.PyExprMutator` (:func:`remove_identities`, the body of
the function pass :func:`SimplifyIdentityArith`) and with the dataflow pattern
language (:func:`remove_by_pattern`, checked and called by
:func:`simplify_identity_arith_dpl`). Both ask :func:`identity_operand`.
"""

from __future__ import annotations

import numpy as np
import tvm
import tvm_ffi
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

__teaching__ = ("identity_operand", "remove_identities", "remove_by_pattern")

# op name -> (identity value, may the constant come first?)
IDENTITIES = {
    "relax.add": (0, True),
    "relax.subtract": (0, False),
    "relax.multiply": (1, True),
    "relax.divide": (1, False),
}


def identity_operand(call):
    """Return x if call is `x op c` (or `c op x` where op commutes), c a constant
    of identity elements and the call typed like x; else None."""
    if not isinstance(call, relax.Call) or not isinstance(call.op, tvm.ir.Op):
        return None
    if call.op.name not in IDENTITIES or len(call.args) != 2:
        return None
    value, commutes = IDENTITIES[call.op.name]
    lhs, rhs = call.args
    sides = [(lhs, rhs), (rhs, lhs)] if commutes else [(lhs, rhs)]
    for keep, const in sides:
        is_identity = isinstance(const, tvm.ir.expr.GenericConst) and bool(
            np.all(const.value.numpy() == value))
        if is_identity and tvm_ffi.structural_equal(keep.ty, call.ty):
            return keep
    return None


def remove_identities(func, mod, ctx):
    """Rebuild func, replacing each call that identity_operand accepts."""

    @relax.expr_functor.mutator
    class IdentityRemover(relax.PyExprMutator):
        def visit_call_(self, call):
            call = self.visit_expr_post_order(call)  # rewrite the arguments first
            keep = identity_operand(call)
            return call if keep is None else keep

    return IdentityRemover(mod).visit_expr(func)


def SimplifyIdentityArith() -> "tvm.transform.Pass":  # noqa: N802 (like TVM's passes)
    """Return a Relax function pass replacing ``x * 1``, ``1 * x``, ``x / 1``,
    ``x + 0``, ``0 + x``, ``x - 0`` by ``x`` (see :func:`remove_identities`)."""
    return relax.transform.function_pass(remove_identities, opt_level=0,
                                         name="SimplifyIdentityArith")


def remove_by_pattern(func):
    """The rewrite of remove_identities, written with tvm.relax.dpl."""
    x, c = wildcard(), is_const()
    pattern = None
    for op in IDENTITIES:
        either = is_op(op)(x, c) | is_op(op)(c, x)
        pattern = either if pattern is None else pattern | either

    def rewriter(call, _matches):
        keep = identity_operand(call)
        return call if keep is None else keep

    return rewrite_call(pattern, rewriter, func)


def simplify_identity_arith_dpl(func: "relax.Function") -> "relax.Function":
    """Return ``func`` rewritten by :func:`remove_by_pattern`."""
    if not isinstance(func, relax.Function):
        raise TypeError("simplify_identity_arith_dpl: func must be a relax.Function, "
                        f"got {type(func).__name__}")
    return remove_by_pattern(func)
