"""Read one offloaded function (a region) into the steps a codegen emits.

After ``MergeCompositeFunctions`` a region is a Relax function marked
``Codegen`` whose body defines composite functions and calls them in order.
Called through ``call_dps_packed``, its compiled form receives the region's
parameters followed by its output tensors. :func:`read_region` names each
tensor the way the generated C does: ``t[i]`` for the i-th argument (parameters,
then outputs) and ``&v<k>`` for the k-th intermediate, which the generated code
allocates itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kernels import Kernel, describe, static_shape


@dataclass
class Step:
    """One kernel call: ``kernel`` on the tensors ``inputs``, written to ``output``.

    ``inputs`` holds C expressions of ``DLTensor*`` (x, w, then b or ``NULL``).
    """

    kernel: Kernel
    inputs: list[str]
    output: str


@dataclass
class Region:
    """A function for one codegen: its symbol, argument sizes, temporaries, steps."""

    symbol: str
    sizes: list[int] = field(default_factory=list)   # elements of t[0], t[1], ...
    temps: list[tuple[int, ...]] = field(default_factory=list)  # shapes of v0, v1, ...
    steps: list[Step] = field(default_factory=list)


def region_outputs(func) -> list:
    """The variables a region returns, in order (one, or the fields of a tuple)."""
    from tvm import relax

    result = func.body.body
    fields = result.fields if isinstance(result, relax.Tuple) else [result]
    for value in fields:
        if not isinstance(value, relax.Var):
            raise ValueError(f"byoc: region {func.attrs['global_symbol']} returns "
                             f"{type(value).__name__}, not a variable")
    return list(fields)


def tensor_size(ty, symbol: str) -> int:
    """Number of elements of a static float32 tensor type of region ``symbol``."""
    shape = static_shape(ty)
    if shape is None:
        raise ValueError(f"byoc: region {symbol} has a tensor of non-static shape "
                         f"{ty.shape}")
    return int(np.prod(shape, dtype=np.int64))


def read_region(func) -> Region:
    """Read a function marked ``Codegen`` into a :class:`Region`."""
    from tvm import relax

    symbol = str(func.attrs["global_symbol"])
    region = Region(symbol)
    names = {}
    for i, param in enumerate(func.params):
        names[param] = f"t[{i}]"
        region.sizes.append(tensor_size(param.ty, symbol))
    for j, out in enumerate(region_outputs(func)):
        names[out] = f"t[{len(func.params) + j}]"
        region.sizes.append(tensor_size(out.ty, symbol))
    composites = {}
    for block in func.body.blocks:
        for binding in block.bindings:
            var, value = binding.var, binding.value
            if isinstance(value, relax.Function):
                composites[var] = describe(value)
            elif isinstance(value, relax.Call) and value.op in composites:
                kernel = composites[value.op]
                if any(arg not in names for arg in value.args):
                    raise ValueError(f"byoc: region {symbol} passes an expression "
                                     f"that is not a tensor variable to {kernel.name}")
                inputs = [names[arg] for arg in value.args]
                if var not in names:
                    names[var] = f"&v{len(region.temps)}"
                    region.temps.append(static_shape(var.ty))
                inputs += ["NULL"] * (3 - len(inputs))
                region.steps.append(Step(kernel, inputs, names[var]))
            else:
                raise ValueError(f"byoc: region {symbol} binds {type(value).__name__} "
                                 f"{var.name}, which no codegen of d2lcc handles")
    return region
