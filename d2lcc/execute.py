"""Compile a Relax module or a PrimFunc and run it on NumPy arrays.

Almost every section compiles a small program, feeds it NumPy arrays and
compares the result with NumPy. These are the two helpers they share:
:func:`build` returns the compiled ``main`` as a function of NumPy arrays, and
:func:`run` builds and calls it once. :func:`run_prim_func` does the same for a
single TensorIR function, which writes its result into an output buffer.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import checks
from . import target as targets


def _check_module(func: str, mod: Any) -> None:
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"{func}: mod must be a tvm.IRModule, got {type(mod).__name__}")
    if "main" not in [gv.name_hint for gv in mod.get_global_vars()]:
        raise ValueError(f"{func}: mod has no function named 'main'")


def _to_numpy(value: Any) -> Any:
    import tvm

    if isinstance(value, tvm.runtime.Tensor):
        return value.numpy()
    if isinstance(value, (list, tuple)) or type(value).__name__ == "Array":
        return tuple(_to_numpy(v) for v in value)
    return value


def build(mod: Any, target: Any = None, *, pipeline: Any = None) -> Callable[..., Any]:
    """Compile a Relax module and return its ``main`` as a function of NumPy arrays.

    Parameters
    ----------
    mod
        A :class:`tvm.IRModule` with a Relax function ``main``.
    target
        A :class:`tvm.target.Target` or target dictionary; this machine's CPU by
        default.
    pipeline
        The Relax pipeline: ``None`` for ``tvm.compile``'s default, a pipeline
        name such as ``"default"``, or a pass.

    Returns
    -------
    A function that takes NumPy arrays and returns a NumPy array (or a tuple of
    them when ``main`` returns a tuple).
    """
    import tvm
    from tvm import relax

    _check_module("execute.build", mod)
    target = targets.resolve(target, "execute.build")
    if pipeline is not None and not isinstance(pipeline, (str, tvm.transform.Pass)):
        raise TypeError("execute.build: pipeline must be None, a pipeline name or a "
                        f"tvm.transform.Pass, got {type(pipeline).__name__}")
    executable = tvm.compile(mod, target=target, relax_pipeline=pipeline or "default")
    device = tvm.cpu()
    main = relax.VirtualMachine(executable, device)["main"]

    def call(*inputs: np.ndarray) -> Any:
        for i, x in enumerate(inputs):
            checks.array("execute.build(...)", f"inputs[{i}]", x)
        return _to_numpy(main(*(tvm.runtime.tensor(x, device) for x in inputs)))

    return call


def run(mod: Any, *inputs: np.ndarray, target: Any = None, pipeline: Any = None) -> Any:
    """Compile ``mod`` (see :func:`build`) and return ``main(*inputs)`` as NumPy."""
    return build(mod, target, pipeline=pipeline)(*inputs)


def run_prim_func(func: Any, *inputs: np.ndarray, out_shape: tuple[int, ...],
                  out_dtype: str = "float32", target: Any = None) -> np.ndarray:
    """Compile a PrimFunc whose last parameter is its output and run it on NumPy arrays.

    Parameters
    ----------
    func
        A :class:`tvm.tirx.PrimFunc` (or a module holding one).
    inputs
        The input arrays, in the order of ``func``'s parameters.
    out_shape, out_dtype
        Shape and dtype of the output buffer the function writes.
    """
    import tvm

    if not isinstance(func, (tvm.tirx.PrimFunc, tvm.IRModule)):
        raise TypeError("execute.run_prim_func: func must be a PrimFunc or an "
                        "IRModule, "
                        f"got {type(func).__name__}")
    out_shape = checks.shape("execute.run_prim_func", "out_shape", out_shape,
                             allow_zero=True)
    try:
        if not isinstance(out_dtype, str):
            raise TypeError
        dtype = np.dtype(out_dtype)
    except TypeError:
        raise TypeError(f"execute.run_prim_func: out_dtype={out_dtype!r} is not "
                        "a dtype") from None
    for i, x in enumerate(inputs):
        checks.array("execute.run_prim_func", f"inputs[{i}]", x)
    lib = tvm.compile(func, target=targets.resolve(target, "execute.run_prim_func"))
    out = tvm.runtime.tensor(np.empty(out_shape, dtype))
    lib(*[tvm.runtime.tensor(x) for x in inputs], out)
    return out.numpy()
