"""Helpers of the qnn tests: build a one-op module, lower it, compile it for the host, run it."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def host_target():
    import d2lcc

    return d2lcc.target.host()


def build_module(make, arrays):
    """Return an IRModule whose ``main`` takes tensors shaped like ``arrays`` and returns ``make(*vars)``."""
    return module_from_types(make, *((a.shape, a.dtype.name) for a in arrays))


def module_from_types(make, *types):
    """Return an IRModule whose ``main`` takes tensors of the given ``(shape, dtype)`` and returns ``make(*vars)``."""
    from tvm import relax

    params = [relax.Var(f"x{i}", relax.TensorType(shape, dtype)) for i, (shape, dtype) in enumerate(types)]
    bb = relax.BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(make(*params))
        bb.emit_func_output(out)
    return bb.get()


def qnn_ops_in(mod) -> list[str]:
    """Names of the qnn operators still called in ``mod``."""
    text = mod.script(show_meta=False)
    return sorted({line.split("R.qnn.")[1].split("(")[0] for line in text.splitlines() if "R.qnn." in line})


def compile_and_run(mod, arrays):
    """Compile a module with only plain Relax ops for the host CPU and run ``main`` on ``arrays``."""
    import tvm
    from tvm import relax

    target = host_target()
    ex = tvm.compile(mod, target, relax_pipeline=relax.get_default_pipeline(target))
    vm = relax.VirtualMachine(ex, tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays])
    return out.numpy()


def lower_and_run(make, *arrays, passes=()):
    """Build ``make`` over ``arrays``, run ``passes`` then qnn.transform.Canonicalize, compile and run."""
    from d2lcc import qnn

    mod = build_module(make, arrays)
    for p in passes:
        mod = p(mod)
    lowered = qnn.transform.Canonicalize()(mod)
    assert qnn_ops_in(lowered) == []
    return compile_and_run(lowered, arrays)
