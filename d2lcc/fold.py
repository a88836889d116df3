"""Constant folding in NumPy, for the passes that prepare a network's weights.

Folding batch norm into convolutions and packing weights into blocks leaves
a network with many small computations on constants. Relax's
``FoldConstant`` evaluates each by compiling it with LLVM, which takes most
of the compile time of a ResNet-50; :func:`fold_constants` evaluates the
few operators these passes produce in NumPy instead.
"""

from __future__ import annotations

import numpy as np


def index_expr(expr, env: dict):
    """Evaluate an integer index expression of TIR on NumPy arrays of indices.

    ``env`` maps variable names to arrays; only what layout maps use is
    supported (constants, ``+``, ``-``, ``*``, floor division and modulo).
    """
    import tvm

    tirx = tvm.tirx
    if not isinstance(env, dict):
        raise TypeError(f"fold.index_expr: env must be a dict, "
                        f"got {type(env).__name__}")
    if not isinstance(expr, tvm.ir.expr.Expr):
        raise TypeError(f"fold.index_expr: expr must be a TIR expression, "
                        f"got {type(expr).__name__}")
    if isinstance(expr, tirx.Var):
        if expr.name not in env:
            raise ValueError(f"fold.index_expr: env has no value for {expr.name}")
        return env[expr.name]
    if isinstance(expr, tirx.IntImm):
        return int(expr.value)
    ops = {tirx.Add: np.add, tirx.Sub: np.subtract, tirx.Mul: np.multiply,
           tirx.FloorDiv: np.floor_divide, tirx.FloorMod: np.mod}
    for kind, op in ops.items():
        if isinstance(expr, kind):
            return op(index_expr(expr.a, env), index_expr(expr.b, env))
    raise ValueError(f"fold.index_expr: cannot evaluate {type(expr).__name__} {expr}")


def _numpy_rules() -> dict:
    def layout(call, x):
        index_map = call.attrs.index_map
        shape = tuple(int(d) for d in call.ty.shape)
        if call.attrs.pad_value is not None or int(np.prod(shape)) != x.size:
            return None  # padding: leave it to FoldConstant
        grids = np.indices(x.shape, sparse=True)
        env = {v.name: g for v, g in zip(index_map.initial_indices, grids)}
        where = tuple(np.broadcast_to(index_expr(e, env), x.shape)
                      for e in index_map.final_indices)
        out = np.empty(shape, x.dtype)
        out[where] = x
        return out

    return {
        "relax.add": lambda call, a, b: np.add(a, b),
        "relax.subtract": lambda call, a, b: np.subtract(a, b),
        "relax.multiply": lambda call, a, b: np.multiply(a, b),
        "relax.divide": lambda call, a, b: np.divide(a, b),
        "relax.sqrt": lambda call, a: np.sqrt(a),
        "relax.reshape": lambda call, a, shape: np.reshape(a, shape),
        "relax.layout_transform": layout,
    }


def fold_constants():
    """A pass that evaluates arithmetic, reshapes and layout changes of constants.

    Relax's ``FoldConstant`` evaluates such calls too, but by compiling each one
    with LLVM: folding batch norm and packing the weights of a ResNet-50 that
    way takes most of the compile time. The operators this pass folds are few
    and simple, so NumPy computes the same values (for ``layout_transform``,
    TVM's own index map does) in a fraction of it.
    """
    import numpy as np
    import tvm
    from tvm import relax

    rules = _numpy_rules()

    def value(mutator, arg):
        if isinstance(arg, relax.Var):
            bound = mutator.lookup_binding(arg)
            arg = arg if bound is None else bound
        if isinstance(getattr(arg, "value", None), tvm.runtime.Tensor):
            return arg.value.numpy()
        if isinstance(arg, tvm.tirx.FloatImm):
            return np.asarray(arg.value, dtype=str(arg.ty))
        if isinstance(arg, relax.ShapeExpr):
            return tuple(int(v) for v in arg.values)
        return None

    @relax.expr_functor.mutator
    class Folder(relax.PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            rule = rules.get(call.op.name) if isinstance(call.op, tvm.ir.Op) else None
            if rule is None or getattr(call.ty, "dtype", None) is None:
                return call
            args = [value(self, a) for a in call.args]
            if any(a is None for a in args):
                return call
            out = rule(call, *args)
            if out is None:
                return call
            out = np.asarray(out).astype(str(call.ty.dtype))
            return relax.const(out, str(call.ty.dtype))

    @relax.transform.function_pass(opt_level=0, name="FoldConstantsNumPy")
    def transform(func, mod, ctx):
        return Folder().visit_expr(func)

    return transform
