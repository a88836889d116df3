"""Assignment 6 (starter): write the three functions, then run the check."""

import numpy as np
import tvm
from tvm import te

import d2lcc


def avx2_dot(a, b):
    """uint8 a . int8 b as vpmaddubsw (saturating int16 pairs) + vpmaddwd compute it."""
    # YOUR CODE HERE
    raise NotImplementedError


def best_int8_isa(features):
    """"avx512_vnni", "avx_vnni", "avx2", "dotprod" or None for a set of features."""
    # YOUR CODE HERE
    raise NotImplementedError


def int8_dot(k):
    """PrimFunc: C[i] = sum_q A[i, q] * B[q]; A uint8 (16, k), B int8 (k,), C int32."""
    # YOUR CODE HERE
    raise NotImplementedError


if __name__ == "__main__":
    from assignments.grading import check

    check("hardware", globals())
