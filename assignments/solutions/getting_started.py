"""Assignment 1: reference solution (course staff only)."""

import tvm
from tvm import te

import d2lcc


def axpy(n, alpha):
    """A PrimFunc with float32 buffers A, B, C of shape (n,): C = alpha * A + B."""
    a = te.placeholder((n,), "float32", name="A")
    b = te.placeholder((n,), "float32", name="B")
    c = te.compute((n,), lambda i: tvm.tirx.const(alpha, "float32") * a[i] + b[i],
                   name="C")
    return te.create_prim_func([a, b, c])


def assembly_for(func, name):
    """The assembly of ``func`` compiled for ``d2lcc.target.named(name)``.

    Compiling only needs LLVM's backend for the target's architecture, which
    TVM's LLVM carries for x86 and AArch64; running would need the CPU.
    """
    lib = tvm.compile(func, target=d2lcc.target.named(name))
    return lib.mod.inspect_source("asm")
