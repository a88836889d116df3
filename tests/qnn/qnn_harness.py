"""Helpers of the qnn tests: build a one-op module, lower, compile for the host, run."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def host_target():
    import d2lcc

    return d2lcc.target.host()


def build_module(make, arrays):
    """A module whose ``main`` takes tensors like ``arrays`` and returns make(*vars)."""
    from d2lcc import ir

    return ir.single_op_module(make, *((a.shape, a.dtype.name) for a in arrays))


def qnn_ops_in(mod) -> list[str]:
    """Names of the qnn operators still called in ``mod``."""
    text = mod.script(show_meta=False)
    lines = [line for line in text.splitlines() if "R.qnn." in line]
    return sorted({line.split("R.qnn.")[1].split("(")[0] for line in lines})


def compiled(mod):
    """Compile a module of plain Relax ops for the host; return main as a function.

    The function takes a list of NumPy arrays and returns NumPy (a tuple when
    ``main`` returns a tuple).
    """
    import tvm
    from tvm import relax

    target = host_target()
    ex = tvm.compile(mod, target, relax_pipeline=relax.get_default_pipeline(target))
    main = relax.VirtualMachine(ex, tvm.cpu())["main"]

    def call(arrays):
        # np.require keeps 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)
        tensors = [tvm.runtime.tensor(np.require(a, requirements="C")) for a in arrays]
        out = main(*tensors)
        if isinstance(out, tvm.runtime.Tensor):
            return out.numpy()
        return tuple(o.numpy() for o in out)  # main returned a tuple

    return call


def compile_and_run(mod, arrays):
    """Compile a module of plain Relax ops for the host; run ``main`` on ``arrays``."""
    return compiled(mod)(arrays)


def lower_and_run(make, *arrays, passes=()):
    """Build ``make`` over ``arrays``, run ``passes`` and Canonicalize, compile, run."""
    from d2lcc import qnn

    mod = build_module(make, arrays)
    for p in passes:
        mod = p(mod)
    lowered = qnn.transform.Canonicalize()(mod)
    assert qnn_ops_in(lowered) == []
    return compile_and_run(lowered, arrays)
