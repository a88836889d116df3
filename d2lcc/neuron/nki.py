"""A NumPy interpreter for the subset of NKI that TVM's Trainium backend generates.

TVM 0.27 (``tvm.backend.trn``) prints NKI kernels as Python source that imports
``neuronxcc`` (the Neuron compiler, not installable here). :func:`run` executes
such a source with stand-ins for the ``neuronxcc`` modules written in NumPy:
every ``nl.load``/``nl.store`` (DMA), ``nisa.nc_matmul`` (tensor engine),
``nisa.tensor_tensor``/``tensor_scalar``/``tensor_copy`` and memsets (vector
engine) and ``nisa.activation`` (scalar engine) computes its result on NumPy
arrays and is charged a time by :mod:`d2lcc.neuron.cost`.

Timing: each engine runs its instructions in program order, one at a time; an
instruction starts when its engine is free, the data it reads have been
written, and the elements it overwrites are no longer being read or written
(a scoreboard kept per element). So independent instructions on different
engines overlap, which is what double buffering exploits. The times are those
of the model, not of hardware.

Checks the hardware (or the Neuron compiler) would impose: a partition
dimension of at most 128 that is the first dimension of every tile, SBUF and
PSUM capacities, the matmul tile limits; a call outside the subset raises a
``ValueError`` that names it.
"""

from __future__ import annotations

import builtins
import math
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from .. import checks
from . import cost

_FUNC = "nki.run"
_FILE = "<nki kernel>"
_BINARY = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
           "maximum": np.maximum, "minimum": np.minimum}
_UNARY = {"exp": np.exp, "sqrt": np.sqrt}
_DTYPES = {"float32": np.float32, "float16": np.float16}


def _refuse(what: str) -> ValueError:
    return ValueError(f"{_FUNC}: the NeuronCore model does not support {what}")


class _Namespace:
    """A stand-in module: known names are attributes, any other name is refused."""

    def __init__(self, prefix: str, **names):
        self._prefix = prefix
        self.__dict__.update(names)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise _refuse(f"{self._prefix}.{name}")


@dataclass
class _Op:
    name: str


@dataclass
class _Pending:
    """A computed value not yet written: engine, busy seconds, reads, FLOPs."""

    values: np.ndarray
    engine: str
    name: str
    seconds: float
    reads: list
    flops: int = 0


@dataclass
class _Accumulate:
    dest: "_Access"
    value: _Pending


class _Tensor:
    """An NKI tensor in HBM, SBUF or PSUM, with its per-element scoreboard."""

    def __init__(self, core, data, space, par_axis=0, label=""):
        self.core, self.data, self.space = core, data, space
        self.par_axis, self.label = par_axis, label
        if space == "hbm":  # device memory is not scoreboarded (see issue())
            self.ready = self.free = None
        else:
            self.ready, self.free = np.zeros(data.shape), np.zeros(data.shape)

    def reshape(self, shape):
        if self.space != "hbm":
            raise _refuse(f"reshape of an on-chip tensor ({self.label})")
        shape = tuple(int(s) for s in shape)
        return _Tensor(self.core, self.data.reshape(shape), "hbm", 0, self.label)

    def __getitem__(self, idx):
        return _Access(self, idx if isinstance(idx, tuple) else (idx,))

    def __setitem__(self, idx, value):
        self.core.assign(self[idx], value)


class _Access:
    """``tensor[idx]``: a tile of a tensor, read lazily."""

    def __init__(self, tensor, idx):
        self.tensor, self.idx = tensor, idx
        try:
            self.shape = np.broadcast_shapes(*[np.shape(i) for i in idx])
            self._values = tensor.data[idx]  # read now: bounds checked here
        except (IndexError, ValueError) as err:
            raise ValueError(f"{_FUNC}: bad index into {tensor.label}: {err}") from None
        if tensor.space != "hbm":
            self._check_partition()

    def _check_partition(self):
        par = self.idx[self.tensor.par_axis]
        others = [i for a, i in enumerate(self.idx) if a != self.tensor.par_axis]
        p_shape = np.shape(par)
        ok = (len(p_shape) >= 1 and p_shape[0] == self.shape[0]
              and all(s == 1 for s in p_shape[1:])
              and all(np.ndim(i) == 0 or np.shape(i)[0] == 1 for i in others))
        if not ok:
            raise ValueError(f"{_FUNC}: misaligned partition dimension in an access "
                             f"to {self.tensor.label}: the partition index must run "
                             f"along the first dimension of the tile {self.shape}")

    def values(self):
        return self._values

    def column(self):
        """The tile as a per-partition operand: shape (P, 1) for a (P,) access."""
        v = self.values().astype(np.float32)
        return v.reshape(-1, 1) if v.ndim == 1 else v

    def __iadd__(self, other):
        return _Accumulate(self, other)


class _Core:
    """The modelled NeuronCore: engines' clocks, the trace, on-chip memory usage."""

    def __init__(self, model: cost.CoreModel):
        self.model = model
        self.engine_free = Counter()
        self.busy = Counter()
        self.calls = Counter()
        self.trace = []
        self.end = 0.0
        self.psum_used = 0
        self.flops = 0
        self.dma_bytes = 0
        self.dma_transfers = 0
        self.n_buffers = 0

    # --- allocation -------------------------------------------------------
    def ndarray(self, shape, dtype, buffer):
        marks = [a for a, s in enumerate(shape) if isinstance(s, _ParDim)]
        par_axis = marks[0] if marks else 0
        dims = [int(s.n) if isinstance(s, _ParDim) else int(s) for s in shape]
        dtype = np.dtype(dtype)
        self.n_buffers += 1
        space = buffer[0]
        label = f"{space.upper()} buffer #{self.n_buffers} {dims} {dtype}"
        if dims[par_axis] > self.model.partitions:
            raise ValueError(f"{_FUNC}: {label}: partition dimension {dims[par_axis]} "
                             f"exceeds the {self.model.partitions} partitions")
        per_part = math.prod(d for a, d in enumerate(dims) if a != par_axis)
        per_part *= dtype.itemsize
        if space == "sbuf":
            base = buffer[1]
            if base + per_part > self.model.sbuf_bytes:
                raise ValueError(f"{_FUNC}: SBUF overflow: {label} needs bytes "
                                 f"[{base}, {base + per_part}) of each partition, "
                                 f"which has {self.model.sbuf_bytes}")
        else:
            self.psum_used += per_part
            if self.psum_used > self.model.psum_bytes:
                raise ValueError(f"{_FUNC}: PSUM overflow: {label} brings PSUM use to "
                                 f"{self.psum_used} bytes per partition, which has "
                                 f"{self.model.psum_bytes}")
        return _Tensor(self, np.zeros(dims, dtype), space, par_axis, label)

    # --- scheduling -------------------------------------------------------
    def issue(self, engine, name, seconds, reads, dest, latency=0.0):
        """Schedule one instruction; device memory (HBM) is assumed hazard-free.

        The kernels generated here never read back what they stored, so only
        SBUF and PSUM elements carry ready/free times.
        """
        reads = [acc for acc in reads if acc.tensor.ready is not None]
        start = self.engine_free[engine]
        for acc in reads:
            start = max(start, float(acc.tensor.ready[acc.idx].max(initial=0.0)))
        t = dest.tensor
        if t.ready is not None:
            start = max(start, float(t.ready[dest.idx].max(initial=0.0)),
                        float(t.free[dest.idx].max(initial=0.0)))
        busy_end = start + seconds
        done = busy_end + latency
        self.engine_free[engine] = busy_end
        self.busy[engine] += seconds
        for acc in reads:
            acc.tensor.free[acc.idx] = np.maximum(acc.tensor.free[acc.idx], done)
        if t.ready is not None:
            t.ready[dest.idx] = done
        self.calls[name] += 1
        self.trace.append((engine, name, start, done))
        self.end = max(self.end, done)

    def write(self, dest, values):
        if tuple(np.shape(values)) != tuple(dest.shape):
            raise ValueError(f"{_FUNC}: shape mismatch writing {np.shape(values)} "
                             f"into a tile of shape {dest.shape} of "
                             f"{dest.tensor.label}")
        dest.tensor.data[dest.idx] = values

    def assign(self, dest, value):
        space = dest.tensor.space
        if isinstance(value, _Accumulate):
            if value.dest.tensor is not dest.tensor or value.value.name != "nc_matmul":
                raise _refuse("'+=' except nc_matmul accumulating into PSUM")
            pending, reads = value.value, value.value.reads + [dest]
            values = dest.values().astype(np.float32) + pending.values
        elif isinstance(value, _Pending):
            pending, reads, values = value, value.reads, value.values
        elif isinstance(value, (int, float, np.floating, np.integer)):
            pending = _Pending(None, "vector", "memset",
                               cost.vector_seconds(self.model, _free(dest)), [])
            reads, values = [], np.full(dest.shape, value)
        else:
            raise _refuse(f"assigning a {type(value).__name__} to a tile")
        if pending.name == "nc_matmul" and space != "psum":
            raise ValueError(f"{_FUNC}: nc_matmul writes PSUM, not {space.upper()}")
        if pending.name == "load" and space != "sbuf":
            raise ValueError(f"{_FUNC}: nl.load writes SBUF, not {space.upper()}")
        if space == "hbm":
            raise ValueError(f"{_FUNC}: compute results cannot be written to HBM; "
                             "use nl.store")
        self.write(dest, values)
        self.flops += pending.flops
        latency = self.model.dma_latency_s if pending.engine == "dma" else 0.0
        self.issue(pending.engine, pending.name, pending.seconds, reads, dest, latency)


@dataclass
class _ParDim:
    n: int


def _free(acc: _Access) -> int:
    """Elements per partition of a tile."""
    return int(math.prod(acc.shape[1:])) if len(acc.shape) > 1 else 1


def _operand(core, value, shape_of):
    """A scalar, or a per-partition column read from SBUF/PSUM."""
    if isinstance(value, _Access):
        col = value.column()
        fits = col.shape[1:] in ((1,), tuple(shape_of[1:]))
        if col.shape[0] != shape_of[0] or not fits:
            raise ValueError(f"{_FUNC}: operand of shape {value.shape} does not fit a "
                             f"tile of shape {tuple(shape_of)}")
        return col, [value]
    if isinstance(value, (int, float, np.floating, np.integer)):
        return np.float32(value), []
    raise _refuse(f"an operand of type {type(value).__name__}")


def _op(op, table):
    if not isinstance(op, _Op) or op.name not in table:
        name = getattr(op, "name", op)
        raise _refuse(f"the operator {name!r} here (supported: {sorted(table)})")
    return table[op.name]


def _modules(core: _Core):
    """The stand-ins for neuronxcc.nki.{language, isa, compiler, typing}."""
    model = core.model

    def on_chip(acc, what):
        if not isinstance(acc, _Access) or acc.tensor.space == "hbm":
            raise ValueError(f"{_FUNC}: {what} takes a tile in SBUF or PSUM")
        return acc

    def load(src):
        if not isinstance(src, _Access) or src.tensor.space != "hbm":
            raise ValueError(f"{_FUNC}: nl.load reads device memory (HBM)")
        values = src.values()
        core.dma_bytes += values.nbytes
        core.dma_transfers += 1
        return _Pending(values, "dma", "load", cost.dma_seconds(model, values.nbytes),
                        [src])

    def store(dst, value):
        if not isinstance(dst, _Access) or dst.tensor.space != "hbm":
            raise ValueError(f"{_FUNC}: nl.store writes device memory (HBM)")
        on_chip(value, "nl.store")
        values = value.values()
        core.write(dst, values.astype(dst.tensor.data.dtype))
        core.dma_bytes += values.nbytes
        core.dma_transfers += 1
        core.issue("dma", "store", cost.dma_seconds(model, values.nbytes), [value], dst,
                   model.dma_latency_s)

    def nc_matmul(stationary, moving, **kwargs):
        if kwargs:
            raise _refuse(f"nisa.nc_matmul options {sorted(kwargs)}")
        for acc in (on_chip(stationary, "nc_matmul"), on_chip(moving, "nc_matmul")):
            if acc.tensor.space != "sbuf":
                raise ValueError(f"{_FUNC}: nc_matmul reads its operands from SBUF")
        (k, m), (k2, n) = stationary.shape, moving.shape
        if k != k2 or k > model.partitions or m > model.partitions:
            raise ValueError(f"{_FUNC}: nc_matmul stationary {stationary.shape} and "
                             f"moving {moving.shape} must share a contraction "
                             f"dimension <= {model.partitions}, stationary free <= "
                             f"{model.partitions}")
        if n * 4 > model.psum_bank_bytes or n > model.moving_max:
            raise ValueError(f"{_FUNC}: nc_matmul moving free size {n} exceeds "
                             f"{model.moving_max} (one PSUM bank)")
        dtype = str(stationary.tensor.data.dtype)
        values = (stationary.values().astype(np.float32).T
                  @ moving.values().astype(np.float32))
        return _Pending(values, "tensor", "nc_matmul",
                        cost.matmul_seconds(model, n, dtype),
                        [stationary, moving], flops=2 * k * m * n)

    def tensor_tensor(a, b, op):
        f = _op(op, _BINARY)
        on_chip(a, "tensor_tensor")
        on_chip(b, "tensor_tensor")
        if a.shape != b.shape:
            raise ValueError(f"{_FUNC}: tensor_tensor shapes {a.shape} and {b.shape}")
        values = f(a.values().astype(np.float32), b.values().astype(np.float32))
        return _Pending(values, "vector", "tensor_tensor",
                        cost.vector_seconds(model, _free(a)), [a, b])

    def tensor_scalar(data, operand0, op0, reverse0=False, operand1=None, op1=None,
                      reverse1=False):
        on_chip(data, "tensor_scalar")
        x, reads = data.values().astype(np.float32), [data]
        for operand, op, reverse in ((operand0, op0, reverse0),
                                     (operand1, op1, reverse1)):
            if op is None:
                continue
            value, more = _operand(core, operand, data.shape)
            f = _op(op, _BINARY)
            x = f(value, x) if reverse else f(x, value)
            reads += more
        return _Pending(x, "vector", "tensor_scalar",
                        cost.vector_seconds(model, _free(data)), reads)

    def tensor_copy(data, **kwargs):
        if kwargs:
            raise _refuse(f"nisa.tensor_copy options {sorted(kwargs)}")
        on_chip(data, "tensor_copy")
        return _Pending(data.values().astype(np.float32), "vector", "tensor_copy",
                        cost.vector_seconds(model, _free(data)), [data])

    def activation(op, data, bias=None, scale=1.0):
        f = _op(op, _UNARY)
        on_chip(data, "activation")
        x, reads = data.values().astype(np.float32), [data]
        s, more = _operand(core, scale, data.shape)
        x, reads = x * s, reads + more
        if bias is not None:
            b, more = _operand(core, bias, data.shape)
            x, reads = x + b, reads + more
        with np.errstate(invalid="ignore", over="ignore"):
            values = f(x)
        return _Pending(values, "scalar", "activation",
                        cost.vector_seconds(model, _free(data)), reads)

    ops = {name: _Op(name) for name in list(_BINARY) + list(_UNARY)}
    language = _Namespace(
        "nl", arange=np.arange, par_dim=_ParDim, load=load, store=store,
        sequential_range=lambda n, **kw: range(n),
        affine_range=lambda n, **kw: range(n),
        ndarray=lambda shape, dtype, buffer: _alloc(core, shape, dtype, buffer),
        psum=("psum",), sbuf=("sbuf", 0), **ops)
    isa = _Namespace("nisa", nc_matmul=nc_matmul, tensor_tensor=tensor_tensor,
                     tensor_scalar=tensor_scalar, tensor_copy=tensor_copy,
                     activation=activation)
    same = lambda *args, **kwargs: (lambda f: f)  # noqa: E731 - a decorator factory
    compiler = _Namespace(
        "ncc", enable_stack_allocator=lambda f: f,
        skip_middle_end_transformations=lambda f: f,
        sbuf=SimpleNamespace(mod_alloc=lambda base_addr=0, **kw: ("sbuf", base_addr)),
        psum=SimpleNamespace(mod_alloc=lambda **kw: ("psum",)))
    typing = _Namespace("nt", mutable_tensor=object)
    def refused(name):
        def call(*args, **kwargs):
            raise _refuse(f"nki.{name}")
        return call

    nki = _Namespace("nki", language=language, isa=isa, compiler=compiler,
                     typing=typing, baremetal=same, benchmark=refused("benchmark"),
                     simulate_kernel=refused("simulate_kernel"), trace=refused("trace"))
    return _Namespace("neuronxcc", nki=nki)


def _alloc(core, shape, dtype, buffer):
    if not isinstance(buffer, tuple):
        raise _refuse(f"the buffer {buffer!r}")
    if np.dtype(dtype).name not in _DTYPES:
        raise _refuse(f"dtype {np.dtype(dtype).name} (supported: {sorted(_DTYPES)})")
    return core.ndarray(shape, dtype, buffer)


def _importer(root):
    def find(name):
        obj = root
        for part in name.split(".")[1:]:
            obj = getattr(obj, part)
        return obj

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "neuronxcc" or name.startswith("neuronxcc."):
            return find(name) if fromlist else root
        if name in ("numpy", "math"):
            return builtins.__import__(name, globals, locals, fromlist, level)
        raise _refuse(f"importing {name!r}")

    return importer


@dataclass
class KernelRun:
    """What :func:`run` returns: the output and the modelled time and work."""

    output: np.ndarray
    time_s: float
    busy_s: dict = field(default_factory=dict)
    calls: dict = field(default_factory=dict)
    flops: int = 0
    dma_bytes: int = 0
    dma_transfers: int = 0
    trace: list = field(default_factory=list)

    def __post_init__(self):
        func = "nki.KernelRun"
        checks.array(func, "output", self.output)
        checks.real(func, "time_s", self.time_s, minimum=0.0)
        for name in ("busy_s", "calls"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{func}: {name} must be a dict")
        if not isinstance(self.trace, list):
            raise TypeError(f"{func}: trace must be a list")
        checks.nonnegative_int(func, "flops", self.flops, maximum=2**62)
        for name in ("dma_bytes", "dma_transfers"):
            checks.nonnegative_int(func, name, getattr(self, name), maximum=2**36)

    def utilization(self, engine: str) -> float:
        """Fraction of the modelled time that ``engine`` was busy."""
        checks.one_of(f"{type(self).__name__}.utilization", "engine", engine,
                      ["dma", "tensor", "vector", "scalar"])
        return self.busy_s.get(engine, 0.0) / self.time_s if self.time_s else 0.0


def run(source: str, inputs: Sequence[np.ndarray], out_shape: tuple,
        out_dtype: str = "float32", model: cost.CoreModel | None = None) -> KernelRun:
    """Run a generated NKI kernel on NumPy ``inputs`` in the NeuronCore model.

    Parameters
    ----------
    source
        NKI source as TVM's Trainium backend prints it (one ``def ..._kernel``).
    inputs
        The input arrays, in the kernel's parameter order; the output is the
        last parameter and is allocated here, zero-filled.
    out_shape, out_dtype
        Shape and type (``"float32"`` or ``"float16"``) of the output.
    model
        The core's constants (default :class:`~d2lcc.neuron.cost.CoreModel()`).
    """
    checks.string(_FUNC, "source", source)
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"{_FUNC}: inputs must be a list of NumPy arrays")
    for i, x in enumerate(inputs):
        checks.array(_FUNC, f"inputs[{i}]", x, dtypes=list(_DTYPES))
    out_shape = checks.shape(_FUNC, "out_shape", out_shape)
    checks.one_of(_FUNC, "out_dtype", out_dtype, list(_DTYPES))
    if model is None:
        model = cost.CoreModel()
    if not isinstance(model, cost.CoreModel):
        raise TypeError(f"{_FUNC}: model must be a cost.CoreModel, got "
                        f"{type(model).__name__}")
    core = _Core(model)
    root = _modules(core)
    env = {"__builtins__": dict(vars(builtins), __import__=_importer(root))}
    try:
        exec(compile(source, _FILE, "exec"), env)  # noqa: S102
    except (SyntaxError, NameError, TypeError, AttributeError) as err:
        raise ValueError(f"{_FUNC}: source is not an NKI kernel: {err!r}") from None
    kernels = [v for k, v in env.items() if k.endswith("_kernel")
               and getattr(getattr(v, "__code__", None), "co_filename", "") == _FILE]
    if len(kernels) != 1:
        raise ValueError(f"{_FUNC}: source must define one '..._kernel' function, "
                         f"found {len(kernels)}")
    kernel = kernels[0]
    n_params = kernel.__code__.co_argcount
    if n_params != len(inputs) + 1:
        raise ValueError(f"{_FUNC}: the kernel takes {n_params} tensors (inputs, "
                         f"then the output); got {len(inputs)} inputs")
    args = [_Tensor(core, np.array(x), "hbm", label=f"input {i}")
            for i, x in enumerate(inputs)]
    out = _Tensor(core, np.zeros(out_shape, out_dtype), "hbm", label="output")
    try:  # tiles are small: one BLAS thread is faster than several fighting
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        threadpool_limits = None
    try:
        if threadpool_limits is None:
            kernel(*args, out)
        else:
            with threadpool_limits(limits=1):
                kernel(*args, out)
    except (NameError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{_FUNC}: the kernel in source failed: {err!r}") from None
    return KernelRun(output=out.data, time_s=core.end, busy_s=dict(core.busy),
                     calls=dict(core.calls), flops=core.flops,
                     dma_bytes=core.dma_bytes, dma_transfers=core.dma_transfers,
                     trace=core.trace)
