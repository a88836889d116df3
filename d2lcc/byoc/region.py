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

from .. import checks
from .kernels import Kernel, describe, static_shape


@dataclass
class Step:
    """One kernel call: ``kernel`` on the tensors ``inputs``, written to ``output``.

    ``inputs`` holds C expressions of ``DLTensor*`` (x, w, then b or ``NULL``).
    """

    kernel: Kernel
    inputs: list[str]
    output: str

    def __post_init__(self):
        if not isinstance(self.kernel, Kernel):
            raise TypeError(f"byoc.Step: kernel must be a Kernel, "
                            f"got {type(self.kernel).__name__}")
        if not isinstance(self.inputs, list) or len(self.inputs) != 3:
            raise TypeError("byoc.Step: inputs must be a list of 3 C expressions")
        for i, expr in enumerate(self.inputs):
            checks.string("byoc.Step", f"inputs[{i}]", expr)
        checks.string("byoc.Step", "output", self.output)


@dataclass
class Region:
    """A function for one codegen: its symbol, argument sizes, temporaries, steps."""

    symbol: str
    sizes: list[int] = field(default_factory=list)   # elements of t[0], t[1], ...
    temps: list[tuple[int, ...]] = field(default_factory=list)  # shapes of v0, v1, ...
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self):
        checks.string("byoc.Region", "symbol", self.symbol)
        if not self.symbol.isidentifier():
            raise ValueError(f"byoc.Region: symbol={self.symbol!r} is not a C "
                             "identifier")
        for name in ("sizes", "temps", "steps"):
            if not isinstance(getattr(self, name), list):
                raise TypeError(f"byoc.Region: {name} must be a list, "
                                f"got {type(getattr(self, name)).__name__}")


def _outputs(func) -> list:
    """The variables a region returns, in order (one, or the fields of a tuple)."""
    from tvm import relax

    result = func.body.body
    fields = result.fields if isinstance(result, relax.Tuple) else [result]
    for value in fields:
        if not isinstance(value, relax.Var):
            raise ValueError(f"byoc: region {func.attrs['global_symbol']} returns "
                             f"{type(value).__name__}, not a variable")
    return list(fields)


def _size(ty, symbol: str) -> int:
    """Number of elements of a static float32 tensor type of region ``symbol``."""
    shape = static_shape(ty)
    if shape is None:
        raise ValueError(f"byoc: region {symbol} has a tensor of non-static shape "
                         f"{ty.shape}")
    return int(np.prod(shape, dtype=np.int64))


def read_region(func) -> Region:
    """Read a function marked ``Codegen`` into a :class:`Region`."""
    from tvm import relax

    if not isinstance(func, relax.Function) or "Codegen" not in (func.attrs or {}):
        raise TypeError("byoc.read_region: func must be a relax.Function marked "
                        f"Codegen, got {type(func).__name__}")

    symbol = str(func.attrs["global_symbol"])
    region = Region(symbol)
    names = {}
    for i, param in enumerate(func.params):
        names[param] = f"t[{i}]"
        region.sizes.append(_size(param.ty, symbol))
    for j, out in enumerate(_outputs(func)):
        names[out] = f"t[{len(func.params) + j}]"
        region.sizes.append(_size(out.ty, symbol))
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
