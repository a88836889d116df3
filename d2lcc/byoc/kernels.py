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

from .. import checks

#: The operators the book's codegens offload, by short name.
OPS = {"matmul": "relax.matmul", "conv2d": "relax.nn.conv2d"}


@dataclass(frozen=True)
class Kernel:
    """One composite: ``y = relu?(op(x, w) + b?)``, float32, static shapes.

    ``x``, ``w`` and ``out`` are shapes; for ``matmul`` they are [M, K], [K, N]
    and [M, N], for ``conv2d`` NCHW, OIHW and NCHW, with ``strides`` (h, w) and
    ``padding`` (top, left, bottom, right). The shapes must agree.
    """

    op: str
    x: tuple[int, ...]
    w: tuple[int, ...]
    out: tuple[int, ...]
    bias: bool
    relu: bool
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self):
        func = "byoc.Kernel"
        checks.one_of(func, "op", self.op, list(OPS))
        rank = 2 if self.op == "matmul" else 4
        for name in ("x", "w", "out"):
            shape = checks.shape(func, name, getattr(self, name))
            if len(shape) != rank:
                raise ValueError(f"{func}: {name}={shape} must have {rank} dimensions "
                                 f"for {self.op}")
            object.__setattr__(self, name, shape)
        checks.boolean(func, "bias", self.bias)
        checks.boolean(func, "relu", self.relu)
        strides = checks.shape(func, "strides", self.strides)
        padding = tuple(checks.nonnegative_int(func, f"padding[{i}]", p)
                        for i, p in enumerate(_sequence(func, "padding", self.padding)))
        if len(strides) != 2 or len(padding) != 4:
            raise ValueError(f"{func}: strides={strides} must have 2 entries and "
                             f"padding={padding} 4")
        object.__setattr__(self, "strides", strides)
        object.__setattr__(self, "padding", padding)
        if self.out != self.expected_out():
            raise ValueError(f"{func}: out={self.out} does not match x={self.x}, "
                             f"w={self.w}: expected {self.expected_out()}")

    def expected_out(self) -> tuple[int, ...]:
        """The output shape that ``x``, ``w``, strides and padding imply."""
        if self.op == "matmul":
            (m, k), (k2, n) = self.x, self.w
            if k != k2:
                raise ValueError(f"byoc.Kernel: x={self.x} and w={self.w} disagree "
                                 "on K")
            return (m, n)
        (batch, c, h, w), (o, c2, r, s) = self.x, self.w
        (top, left, bottom, right), (sh, sw) = self.padding, self.strides
        if c != c2 or h + top + bottom < r or w + left + right < s:
            raise ValueError(f"byoc.Kernel: w={self.w} does not fit x={self.x} "
                             f"with padding={self.padding}")
        return (batch, o, (h + top + bottom - r) // sh + 1,
                (w + left + right - s) // sw + 1)

    @property
    def name(self) -> str:
        """The pattern name without its codegen prefix, e.g. ``conv2d_bias_relu``."""
        return self.op + "_bias" * self.bias + "_relu" * self.relu


def _sequence(func: str, name: str, value) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"{func}: {name} must be a tuple, got {type(value).__name__}")
    return tuple(value)


def static_shape(ty) -> tuple[int, ...] | None:
    """The shape of a Relax tensor type as ints (None if a dimension is symbolic)."""
    import tvm
    from tvm import relax

    if not isinstance(ty, relax.TensorType):
        raise TypeError(f"byoc.static_shape: ty must be a relax.TensorType, "
                        f"got {type(ty).__name__}")
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
    if any(shape is None for shape in shapes):
        raise ValueError(f"byoc.describe: composite {name!r} has a non-static shape")
    extra = {}
    if op == "conv2d":
        extra = dict(strides=tuple(int(s) for s in core.attrs.strides),
                     padding=tuple(int(p) for p in core.attrs.padding))
    return Kernel(op, shapes[0], shapes[1], shapes[2], "_bias" in name,
                  name.endswith("_relu"), **extra)


def reference(kernel: Kernel, x: np.ndarray, w: np.ndarray,
              b: np.ndarray | None = None) -> np.ndarray:
    """NumPy result of ``kernel`` on float32 arrays (the tests' ground truth).

    ``b`` holds one value per output channel (any shape with that many
    elements); it is ignored when the kernel has no bias.
    """
    func = "byoc.reference"
    if not isinstance(kernel, Kernel):
        raise TypeError(f"{func}: kernel must be a Kernel, got {type(kernel).__name__}")
    floats = ("float16", "float32", "float64")
    for name, value, shape in (("x", x, kernel.x), ("w", w, kernel.w)):
        value = checks.array(func, name, value, dtypes=floats)
        if value.shape != shape:
            raise ValueError(f"{func}: {name} has shape {value.shape}, the kernel "
                             f"takes {shape}")
    channels = kernel.out[-1] if kernel.op == "matmul" else kernel.out[1]
    if kernel.bias:
        b = checks.array(func, "b", b, dtypes=floats)
        if b.size != channels:
            raise ValueError(f"{func}: b has {b.size} elements, the kernel has "
                             f"{channels} output channels")
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
