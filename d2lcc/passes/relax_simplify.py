"""Remove arithmetic with an identity element from Relax functions: ``x * 1``, ``x + 0``, ...

Networks pick such operations up from exporters and from earlier rewrites (a
folded scale of one, a bias of zeros). FoldConstant leaves them alone, since
``x`` is not a constant; this pass replaces the call by ``x`` wherever the
call's result has exactly ``x``'s type (so no broadcasting is lost).
The chapter writes it twice: with :class:`relax.PyExprMutator`
(:class:`SimplifyIdentityArith`) and with the dataflow pattern language
(:func:`simplify_identity_arith_dpl`).
"""

from __future__ import annotations

import numpy as np
import tvm
import tvm_ffi
from tvm import relax
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

# op name -> (identity value, may the constant come first?)
IDENTITIES = {
    "relax.add": (0, True),
    "relax.subtract": (0, False),
    "relax.multiply": (1, True),
    "relax.divide": (1, False),
}


def _is_all(expr, value) -> bool:
    return isinstance(expr, tvm.ir.expr.GenericConst) and bool(np.all(expr.value.numpy() == value))


def identity_operand(call: "relax.Expr") -> "relax.Expr | None":
    """Return ``x`` if ``call`` is ``x op c`` with ``c`` an all-identity constant and the same type as ``x``, else None."""
    if not isinstance(call, relax.Call) or not isinstance(call.op, tvm.ir.Op):
        return None
    if call.op.name not in IDENTITIES or len(call.args) != 2:
        return None
    value, commutes = IDENTITIES[call.op.name]
    lhs, rhs = call.args
    if _is_all(rhs, value):
        keep = lhs
    elif commutes and _is_all(lhs, value):
        keep = rhs
    else:
        return None
    return keep if tvm_ffi.structural_equal(keep.ty, call.ty) else None


@relax.expr_functor.mutator
class _IdentityRemover(relax.PyExprMutator):
    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        keep = identity_operand(call)
        return call if keep is None else keep


@relax.transform.function_pass(opt_level=0, name="SimplifyIdentityArith")
class SimplifyIdentityArith:
    """A Relax function pass replacing ``x * 1``, ``1 * x``, ``x / 1``, ``x + 0``, ``0 + x``, ``x - 0`` by ``x``."""

    def transform_function(self, func, mod, ctx):
        return _IdentityRemover(mod).visit_expr(func)


def simplify_identity_arith_dpl(func: "relax.Function") -> "relax.Function":
    """The same rewrite as :class:`SimplifyIdentityArith`, written with ``tvm.relax.dpl``."""
    if not isinstance(func, relax.Function):
        raise TypeError(f"simplify_identity_arith_dpl: func must be a relax.Function, got {type(func).__name__}")
    x, c = wildcard(), is_const()
    pattern = None
    for op in IDENTITIES:
        alt = is_op(op)(x, c) | is_op(op)(c, x)
        pattern = alt if pattern is None else pattern | alt

    def rewriter(call, _matches):
        keep = identity_operand(call)
        return call if keep is None else keep

    return rewrite_call(pattern, rewriter, func)
