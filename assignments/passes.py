"""Assignment 5: a Relax rewrite, and when the order of two passes matters."""

from __future__ import annotations

import numpy as np

from assignments.grading import Part

TITLE = "A pattern rewrite, and the order of passes"
SOURCES = (("sec_passes_relax_pass", 2), ("sec_passes_what_is_a_pass", 1))
STATEMENT = """
**Part 1 (6 points).** Write `merge_permutes(mod)`: it returns a copy of the
Relax module `mod` in which every `permute_dims` applied to the result of
another `permute_dims` is replaced by one `permute_dims` with the composed
axis order, or by its input when the two cancel. Handle `axes=None` (reverse
the axes) too. Use the pattern language of :numref:`sec_passes_relax_pass`
(`rewrite_call`) or write a `PyExprMutator`. The check applies it to
modules with two permutations of a 3-D tensor, runs them, compares with the
unchanged modules, and counts the `permute_dims` left (dead bindings
count too: clean up after the rewrite).

**Part 2 (4 points).** Write `order_matters()`: it returns a Relax module
for which `FoldConstant` then `DeadCodeElimination` gives a different module
(by `tvm_ffi.structural_equal`) than `DeadCodeElimination` then
`FoldConstant`. Both results must still compute the same function of its
inputs. In a comment, say which pass leaves work for the other.
"""

_AXES = ((None, None), ([1, 0, 2], [1, 0, 2]), ([1, 2, 0], [1, 2, 0]),
         ([0, 2, 1], None), ([2, 0, 1], [0, 2, 1]))


def _compose(first, second, ndim=3):
    first = list(range(ndim))[::-1] if first is None else first
    second = list(range(ndim))[::-1] if second is None else second
    return [first[i] for i in second]


def check_merge(ns) -> None:
    from tvm import relax

    import d2lcc
    from d2lcc import ir

    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    for first, second in _AXES:
        mod = ir.single_op_module(
            lambda t, f=first, s=second: relax.op.permute_dims(
                relax.op.exp(relax.op.permute_dims(t, f)), s), ((2, 3, 4), "float32"))
        plain = ir.single_op_module(
            lambda t, f=first, s=second: relax.op.permute_dims(
                relax.op.permute_dims(t, f), s), ((2, 3, 4), "float32"))
        for label, m in (("exp between", mod), ("back to back", plain)):
            out = ns["merge_permutes"](m)
            count = ir.op_names(out).count("permute_dims")
            want = d2lcc.execute.run(m, x)
            got = d2lcc.execute.run(out, x)
            assert got.shape == want.shape and np.array_equal(got, want), (
                f"axes {first} then {second} ({label}): the result changed")
            if label == "exp between":
                assert count == 2, (
                    f"axes {first}, {second}: an exp separates the two permutations, "
                    f"so both must stay; {count} are left")
                continue
            identity = _compose(first, second) == [0, 1, 2]
            expected = 0 if identity else 1
            assert count == expected, (
                f"axes {first} then {second}: {count} permute_dims left, "
                f"expected {expected}")


def check_order(ns) -> None:
    import tvm
    import tvm_ffi
    from tvm import relax

    import d2lcc

    mod = ns["order_matters"]()
    assert isinstance(mod, tvm.IRModule), "order_matters must return an IRModule"
    fold, dce = relax.transform.FoldConstant(), relax.transform.DeadCodeElimination()
    fold_first, dce_first = dce(fold(mod)), fold(dce(mod))
    assert not tvm_ffi.structural_equal(fold_first, dce_first), (
        "both orders give the same module")
    params = mod["main"].params
    inputs = [np.random.default_rng(i).standard_normal(
        [int(d) for d in p.ty.shape]).astype(str(p.ty.dtype))
        for i, p in enumerate(params)]
    a = d2lcc.execute.run(fold_first, *inputs)
    b = d2lcc.execute.run(dce_first, *inputs)
    assert np.allclose(a, b), "the two orders compute different results"


PARTS = (
    Part("merge_permutes", 6, ("merge_permutes",), check_merge),
    Part("order_matters", 4, ("order_matters",), check_order),
)
