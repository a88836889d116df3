"""Build and inspect small Relax modules.

:func:`single_op_module` wraps one expression in a ``main`` function, so a
section can compile a single operator; :func:`op_names` lists the operators a
``main`` calls, which is how the book shows what a pass changed;
:func:`prim_func_count` counts the TensorIR kernels of a module;
:func:`is_scheduled` says whether a kernel is marked scheduled;
:func:`rewrite_pass` makes a Relax pass out of a pattern and a rewrite.
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


def is_scheduled(func: Any) -> bool:
    """Whether the kernel ``func`` carries TVM's ``tirx.is_scheduled`` mark.

    Each scheduling stage of :func:`d2lcc.compile` marks what it schedules,
    and every later stage (DLight's rules among them) leaves marked kernels
    as they are.
    """
    import tvm

    if not isinstance(func, tvm.tirx.PrimFunc):
        raise TypeError(f"ir.is_scheduled: func must be a tvm.tirx.PrimFunc, "
                        f"got {type(func).__name__}")
    return func.attrs is not None and "tirx.is_scheduled" in func.attrs


def rewrite_pass(name: str, pattern: Any, rewrite: Callable[[Any, dict], Any]):
    """A Relax function pass that rewrites every match of ``pattern``.

    ``rewrite(expr, matches)`` gets the matched call and the map from the
    pattern's parts to what they matched, and returns the replacement (or
    ``expr`` itself, to keep it): TVM's ``relax.dpl.rewrite_call``, applied to
    each function of a module.
    """
    from tvm import relax
    from tvm.relax.dpl import DFPattern, rewrite_call

    checks.string("ir.rewrite_pass", "name", name)
    if not isinstance(pattern, DFPattern):
        raise TypeError(f"ir.rewrite_pass: pattern must be a relax.dpl pattern, "
                        f"got {type(pattern).__name__}")
    if not callable(rewrite):
        raise TypeError(f"ir.rewrite_pass: rewrite must be callable, "
                        f"got {type(rewrite).__name__}")

    @relax.transform.function_pass(opt_level=0, name=name)
    def transform(func, mod, ctx):
        return rewrite_call(pattern, rewrite, func)

    return transform
