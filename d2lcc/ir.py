"""Build and inspect small Relax modules.

:func:`single_op_module` wraps one expression in a ``main`` function, so a
section can compile a single operator; :func:`op_names` lists the operators a
``main`` calls, which is how the book shows what a pass changed;
:func:`prim_func_count` counts the TensorIR kernels of a module.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from . import checks


def single_op_module(build: Callable[..., Any], *arg_types: tuple[Sequence[int], str]):
    """A module whose ``main`` takes tensors of ``arg_types``, returns ``build(*args)``.

    Parameters
    ----------
    build
        A function of the Relax parameters of ``main`` that returns a Relax
        expression (for example ``lambda x: relax.op.nn.relu(x)``).
    arg_types
        One ``(shape, dtype)`` pair for each parameter.
    """
    from tvm import relax

    checks.function("ir.single_op_module", "build", build)
    params = []
    for i, pair in enumerate(arg_types):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"ir.single_op_module: arg_types[{i}] must be a "
                            "(shape, dtype) "
                            f"pair, got {pair!r}")
        shape = checks.shape("ir.single_op_module", f"arg_types[{i}] shape", pair[0],
                             allow_zero=True)
        dtype = checks.string("ir.single_op_module", f"arg_types[{i}] dtype", pair[1])
        params.append(relax.Var(f"x{i}", relax.TensorType(shape, dtype)))
    bb = relax.BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(build(*params))
        bb.emit_func_output(out)
    return bb.get()


def op_names(mod: Any, func: str = "main") -> list[str]:
    """Return the operators called by the bindings of ``mod[func]``, in order.

    Names lose their ``relax.`` prefix (``"qnn.quantize"``, ``"nn.conv2d"``);
    calls of functions rather than operators (``call_tir`` targets, say) are skipped.
    """
    import tvm
    from tvm import relax

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"ir.op_names: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    checks.string("ir.op_names", "func", func)
    if func not in [gv.name_hint for gv in mod.get_global_vars()]:
        raise ValueError(f"ir.op_names: mod has no function named func={func!r}")
    names = []
    for block in mod[func].body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
                names.append(str(value.op.name).removeprefix("relax."))
    return names


def prim_func_count(mod: Any) -> int:
    """Return how many TensorIR functions (kernels) ``mod`` holds."""
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"ir.prim_func_count: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    return sum(isinstance(f, tvm.tirx.PrimFunc) for f in mod.functions.values())
