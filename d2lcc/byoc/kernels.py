"""What one offloaded kernel computes: :class:`Kernel`, read from a composite function.

``FuseOpsByPattern`` wraps every match of a pattern in a *composite* function
(attribute ``Composite``, e.g. ``"d2lcc_c.conv2d_bias_relu"``). A codegen does not
want to walk Relax to find out what such a function does; :func:`describe`
reads it once into a :class:`Kernel` (the operator, static shapes, strides and
padding, and whether a bias and a ReLU follow), which every emitter and the
NumPy reference (:func:`reference`) take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The operators the book's codegens offload, by short name.
OPS = {"matmul": "relax.matmul", "conv2d": "relax.nn.conv2d"}


@dataclass(frozen=True)
class Kernel:
    """One composite: ``y = relu?(op(x, w) + b?)``, float32, static shapes.

    ``x``, ``w`` and ``out`` are shapes; for ``conv2d`` they are NCHW, OIHW and
    NCHW, ``strides`` is (h, w) and ``padding`` (top, left, bottom, right).
    """

    op: str
    x: tuple[int, ...]
    w: tuple[int, ...]
    out: tuple[int, ...]
    bias: bool
    relu: bool
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def name(self) -> str:
        """The pattern name without its codegen prefix, e.g. ``conv2d_bias_relu``."""
        return self.op + "_bias" * self.bias + "_relu" * self.relu


def composite_name(op: str, bias: bool, relu: bool) -> str:
    """The name of the pattern for ``op`` with an optional bias and ReLU."""
    return op + "_bias" * bias + "_relu" * relu


def static_shape(ty) -> tuple[int, ...] | None:
    """The shape of a Relax tensor type as ints, or None if some dimension is symbolic."""
    import tvm

    if ty.shape is None:
        return None
    dims = []
    for dim in ty.shape:
        if not isinstance(dim, tvm.tirx.IntImm):
            return None
        dims.append(int(dim.value))
    return tuple(dims)


def describe(func) -> Kernel:
    """Read a composite function made by :func:`d2lcc.byoc.partition` into a Kernel."""
    import tvm
    from tvm import relax

    if not isinstance(func, relax.Function) or "Composite" not in (func.attrs or {}):
        raise TypeError("byoc.describe: func must be a composite relax.Function, "
                        f"got {type(func).__name__}")
    name = str(func.attrs["Composite"]).split(".", 1)[-1]
    core = None
    for block in func.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if (isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op)
                    and value.op.name in OPS.values()):
                core = value
    if core is None:
        raise ValueError(f"byoc.describe: composite {name!r} calls no operator of "
                         f"{sorted(OPS.values())}")
    op = [short for short, full in OPS.items() if full == core.op.name][0]
    shapes = [static_shape(arg.ty) for arg in core.args] + [static_shape(func.ret_ty)]
    kernel = Kernel(op, shapes[0], shapes[1], shapes[2], "_bias" in name,
                    name.endswith("_relu"))
    if op == "conv2d":
        attrs = core.attrs
        kernel = Kernel(op, kernel.x, kernel.w, kernel.out, kernel.bias, kernel.relu,
                        tuple(int(s) for s in attrs.strides),
                        tuple(int(p) for p in attrs.padding))
    return kernel


def reference(kernel: Kernel, x: np.ndarray, w: np.ndarray,
              b: np.ndarray | None = None) -> np.ndarray:
    """NumPy result of ``kernel`` on float32 arrays (the tests' ground truth).

    ``b`` holds one value per output channel (any shape with that many
    elements); it is ignored when the kernel has no bias.
    """
    if not isinstance(kernel, Kernel):
        raise TypeError(f"byoc.reference: kernel must be a Kernel, "
                        f"got {type(kernel).__name__}")
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    if kernel.op == "matmul":
        y = x @ w
        channel_shape = (1, -1)
    else:
        top, left, bottom, right = kernel.padding
        xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        kh, kw = w.shape[2:]
        windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
        windows = windows[:, :, ::kernel.strides[0], ::kernel.strides[1]]
        y = np.einsum("nchwrs,ocrs->nohw", windows, w)
        channel_shape = (1, -1, 1, 1)
    if kernel.bias:
        y = y + np.asarray(b, np.float64).reshape(channel_shape)
    if kernel.relu:
        y = np.maximum(y, 0)
    return y.astype(np.float32)
