"""Assignment 5 (starter): write the two functions, then run the check."""

import numpy as np
import tvm
from tvm import relax, te
from tvm.relax.dpl import is_op, rewrite_call, wildcard


def merge_permutes(mod):
    """Compose back-to-back permute_dims into one, or drop them when they cancel."""
    inner = wildcard()
    first = is_op("relax.permute_dims")(inner)
    second = is_op("relax.permute_dims")(first)
    # YOUR CODE HERE
    raise NotImplementedError


def order_matters():
    """A module where FoldConstant, DCE and DCE, FoldConstant give different results."""
    # YOUR CODE HERE
    raise NotImplementedError


if __name__ == "__main__":
    from assignments.grading import check

    check("passes", globals())
