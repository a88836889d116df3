"""What a CPU can do: SIMD width, caches, peak FLOP rate, memory bandwidth, roofline.

:numref:`sec_operators_cpu` measures this machine's two ceilings with kernels
compiled by TVM: :func:`peak_gflops` runs many independent fused multiply-adds
on vector registers (:func:`fma_kernel`), :func:`bandwidth_gbps` streams arrays
of a chosen size through the cores (:func:`copy_kernel`). The bandwidth depends
on where arrays of that size live: :func:`stream_bytes` picks sizes that fit
in a cache level or, by default, overflow every cache, so that the roof is
main memory's. A :class:`Roofline` made of a peak and a bandwidth tells, for a
kernel of a given arithmetic intensity, the best speed it can reach;
:func:`plot_roofline` draws it with kernels placed on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import checks

__teaching__ = ("fma_kernel", "copy_kernel")

_BITS = {"float32": 32, "float16": 16, "int8": 8, "int32": 32, "float64": 64}
#: The most threads :func:`use_all_cores` and :func:`peak_gflops` accept.
MAX_THREADS = 1024
#: The most FMA rounds :func:`peak_gflops` runs per call (a second or so per core).
MAX_ITERS = 1 << 24
#: The most FMA lanes one call of the peak kernel may run (a few seconds at most).
MAX_WORK = 1 << 36
#: The most timed rounds the measurements accept.
MAX_REPEAT = 1000


def _machine(func: str, machine):
    from .machine import Machine, env

    if machine is None:
        return env()
    if not isinstance(machine, Machine):
        raise TypeError(f"{func}: machine must be a d2lcc.machine.Machine or None, "
                        f"got {type(machine).__name__}")
    return machine


def vector_lanes(machine=None, dtype: str = "float32") -> int:
    """How many ``dtype`` values one SIMD register of ``machine`` holds.

    AVX-512: 64-byte registers (16 float32), AVX2: 32 bytes (8), SSE on x86
    without AVX2 and NEON on Arm: 16 bytes (4). An x86 with AVX but not AVX2
    counts as 16 bytes: its 32-byte registers lack the integer and FMA
    instructions the book's kernels use. ``machine`` defaults to
    :func:`d2lcc.env`.
    """
    dtype = checks.one_of("cpu.vector_lanes", "dtype", dtype, sorted(_BITS))
    machine = _machine("cpu.vector_lanes", machine)
    if machine.has("avx512f"):
        width = 512
    elif machine.has("avx2"):
        width = 256
    else:
        width = 128  # NEON, or SSE on an x86 without AVX2
    return width // _BITS[dtype]


def vector_registers(machine=None) -> int:
    """How many SIMD registers the ISA has: 32 with AVX-512 or on AArch64, else 16."""
    machine = _machine("cpu.vector_registers", machine)
    return 32 if machine.has("avx512f") or machine.arch in ("aarch64", "arm64") else 16


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def cache_sizes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, int]:
    """Return this core's data cache sizes in bytes, e.g. ``{"L1d": 49152, "L2": ...}``.

    Read from Linux's sysfs; an empty dict where that is not available, and
    entries that cannot be parsed are left out.
    """
    root = checks.string("cpu.cache_sizes", "root", root)
    sizes: dict[str, int] = {}
    if not os.path.isdir(root):
        return sizes
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        try:
            level = _read(os.path.join(path, "level"))
            kind = _read(os.path.join(path, "type"))
            text = _read(os.path.join(path, "size"))
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if kind == "Instruction" or not digits.isdigit() or not level.isdigit():
            continue
        sizes[f"L{level}d" if level == "1" else f"L{level}"] = int(digits) * scale
    return sizes


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30  # unknown: assume a small machine


def stream_bytes(level: str = "DRAM", caches: Mapping[str, int] | None = None,
                 cores: int | None = None) -> int:
    """Bytes per array for measuring the bandwidth of one level of the memory hierarchy.

    A STREAM kernel touches up to three arrays. For ``"L2"`` (private to each
    core, so ``cores`` of them) and ``"L3"`` (shared) the three fit in half of
    the level. For ``"DRAM"`` each array is twice the largest cache (so even a
    copy's two arrays overflow it four times), at least 64 MiB, and at most
    512 MiB and a sixteenth of the physical memory: on a CPU whose cache is
    larger than that, the result is limited and the roof is partly the cache's.
    """
    level = checks.one_of("cpu.stream_bytes", "level", level, ["L2", "L3", "DRAM"])
    if caches is None:
        caches = cache_sizes()
    if not isinstance(caches, Mapping):
        raise TypeError("cpu.stream_bytes: caches must be a dict such as "
                        f"cpu.cache_sizes() returns, got {type(caches).__name__}")
    for name, size in caches.items():
        checks.positive_int("cpu.stream_bytes", f"caches[{name!r}]", size,
                            maximum=1 << 40)
    if cores is None:
        from .machine import cores as _cores

        cores = _cores()
    cores = checks.positive_int("cpu.stream_bytes", "cores", cores, maximum=MAX_THREADS)
    if level == "DRAM":
        largest = max(caches.values(), default=32 << 20)  # no sysfs: assume 32 MiB
        cap = min(512 << 20, _physical_memory() // 16)
        return max(64 << 20, min(2 * largest, cap))
    if level not in caches:
        raise ValueError(f"cpu.stream_bytes: level={level!r} is not among this "
                         f"machine's caches {sorted(caches)}")
    total = caches[level] * (cores if level == "L2" else 1)
    return max(4 << 10, total // 6)


def use_all_cores(cores: int | None = None) -> int:
    """Ask TVM's runtime thread pool for ``cores`` threads (default: all our cores).

    TVM starts its pool on the first parallel call, with ``TVM_NUM_THREADS``
    (or ``OMP_NUM_THREADS``) threads; when neither is set it takes half of the
    hardware threads on x86, assuming two per core (hyper-threading). On a
    machine without SMT, such as most cloud VMs, that leaves half the cores
    idle. This sets ``TVM_NUM_THREADS`` unless it is already set (so a value
    chosen by the user wins) and returns the pool's size. The pool never has
    more threads than the process has cores; if it has fewer than ``cores``,
    the variable was set otherwise or the pool had already started. The
    target's ``num-cores`` plays no part: compiled parallel loops ask the pool
    for all of its threads.
    """
    import tvm

    from . import machine

    if cores is None:
        cores = machine.cores()
    cores = checks.positive_int("cpu.use_all_cores", "cores", cores,
                                maximum=MAX_THREADS)
    os.environ.setdefault("TVM_NUM_THREADS", str(cores))
    return tvm.runtime.num_threads()


def fma_kernel(threads, accumulators, lanes, iters):
    """A PrimFunc: each of ``threads`` threads runs ``iters`` rounds of ``accumulators``
    independent vector FMAs ``acc = acc * x + x``, ``lanes`` floats wide."""
    from tvm.script import tirx as T

    P, V, L = threads, accumulators, lanes

    @T.prim_func
    def fma(out: T.Buffer((P, V, L), "float32"), x: T.Buffer((L,), "float32")):
        T.func_attr({"tirx.noalias": True})  # out and x do not overlap
        for p in T.parallel(P):
            acc = T.decl_buffer((V, L), "float32", scope="local")
            for v in T.unroll(V):
                for l in T.vectorized(L):
                    acc[v, l] = x[l]
            for _ in range(iters):
                for v in T.unroll(V):
                    for l in T.vectorized(L):
                        acc[v, l] = acc[v, l] * x[l] + x[l]
            for v in T.unroll(V):
                for l in T.vectorized(L):
                    out[p, v, l] = acc[v, l]

    return fma


def copy_kernel(n, lanes, inputs=1):
    """A PrimFunc over ``n`` float32 (a multiple of ``64 * lanes``), split across cores
    and vectorized: ``B = A0`` (``inputs=1``) or ``B = A0 + A1`` (``inputs=2``)."""
    import tvm
    from tvm import te

    A = [te.placeholder((n,), "float32", name=f"A{k}") for k in range(inputs)]
    B = te.compute((n,), lambda i: A[0][i] if inputs == 1 else A[0][i] + A[1][i],
                   name="B")
    sch = tvm.s_tir.Schedule(te.create_prim_func([*A, B]))
    (i,) = sch.get_loops("B")
    outer, inner = sch.split(i, [None, lanes * 64])  # chunks of 64 vectors
    sch.parallel(outer)
    _, vec = sch.split(inner, [None, lanes])
    sch.vectorize(vec)
    return sch.mod["main"]


def peak_gflops(accumulators: int | None = None, lanes: int | None = None,
                threads: int | None = None, iters: int = 1 << 18,
                repeat: int = 30) -> float:
    """Measure this machine's float32 peak in GFLOPS (2 FLOPs per FMA lane), best round.

    Runs :func:`fma_kernel`. Defaults: all cores, this CPU's vector width
    (:func:`vector_lanes`), and as many accumulators as leave a few registers
    free (12 of 16, 24 of 32). ``iters`` is at most :data:`MAX_ITERS`.
    """
    import tvm

    from .bench import measure
    from .machine import cores
    from .target import host

    f = "cpu.peak_gflops"
    lanes = vector_lanes() if lanes is None else checks.positive_int(f, "lanes", lanes,
                                                                      maximum=64)
    threads = cores() if threads is None else threads
    threads = checks.positive_int(f, "threads", threads, maximum=MAX_THREADS)
    if accumulators is None:
        accumulators = 24 if vector_registers() == 32 else 12
    accumulators = checks.positive_int(f, "accumulators", accumulators, maximum=256)
    iters = checks.positive_int(f, "iters", iters, maximum=MAX_ITERS)
    repeat = checks.positive_int(f, "repeat", repeat, maximum=MAX_REPEAT)
    if threads * accumulators * lanes * iters > MAX_WORK:
        raise ValueError(f"{f}: iters={iters} with threads={threads}, accumulators="
                         f"{accumulators}, lanes={lanes} is more than {MAX_WORK} FMA "
                         "lanes per call")
    kernel = fma_kernel(threads, accumulators, lanes, iters)
    lib = tvm.compile(tvm.IRModule({"main": kernel}), target=host(threads))
    out = tvm.runtime.tensor(np.zeros((threads, accumulators, lanes), np.float32))
    x = tvm.runtime.tensor(np.full(lanes, 0.5, np.float32))  # acc -> 1: no overflow
    t = measure(lambda: lib(out, x), repeat=repeat, number=1)
    return 2 * threads * accumulators * lanes * iters / t.best / 1e9


def bandwidth_gbps(nbytes: int | None = None, repeat: int = 5) -> float:
    """Measure the bandwidth in GB/s (bytes read + written per second) for arrays
    of ``nbytes`` bytes each (default :func:`stream_bytes`: larger than every cache).

    Like the STREAM benchmark :cite:`McCalpin.1995`, we run a copy (``nbytes``
    read, ``nbytes`` written) and an add (``2 nbytes`` read, ``nbytes``
    written) with :func:`copy_kernel`, and NumPy's ``copyto`` (a ``memcpy``,
    which on x86 writes large arrays with non-temporal stores that bypass the
    cache), and report the fastest: the roof is the best any program reaches.
    Arrays that fit in a cache measure that cache's bandwidth, not memory's.
    ``nbytes`` is rounded down to whole chunks of 64 vectors.
    """
    import tvm

    from .bench import measure
    from .target import host

    lanes = vector_lanes()
    chunk = 4 * lanes * 64
    limit = max(chunk, min(2 << 30, _physical_memory() // 16))
    if nbytes is None:
        nbytes = stream_bytes()
    nbytes = checks.integer("cpu.bandwidth_gbps", "nbytes", nbytes, minimum=chunk,
                            maximum=limit)
    repeat = checks.positive_int("cpu.bandwidth_gbps", "repeat", repeat,
                                 maximum=MAX_REPEAT)
    n = nbytes // chunk * (lanes * 64)
    arrays = [tvm.runtime.empty((n,), "float32") for _ in range(3)]
    views = [np.from_dlpack(a) for a in arrays]  # NumPy views of the same memory
    for v in views:
        v.fill(1.0)  # touch every page before timing
    best = 2 * 4 * n / measure(lambda: np.copyto(views[2], views[0]), repeat=repeat,
                               number=1).best / 1e9
    for inputs in (1, 2):
        lib = tvm.compile(tvm.IRModule({"main": copy_kernel(n, lanes, inputs)}),
                          target=host())
        args = [*arrays[:inputs], arrays[2]]
        t = measure(lambda: lib(*args), repeat=repeat, number=1)
        best = max(best, (inputs + 1) * 4 * n / t.best / 1e9)
    return best


@dataclass(frozen=True)
class Roofline:
    """The roofline model :cite:`Williams.Waterman.Patterson.2009` of one machine.

    A kernel doing ``I`` FLOPs per byte of memory traffic (its arithmetic
    intensity) runs at most at ``min(peak_gflops, bandwidth_gbps * I)``. The
    bandwidth is that of the level of the memory hierarchy that serves the
    kernel's arrays (see :func:`bandwidth_gbps`).
    """

    peak_gflops: float
    bandwidth_gbps: float

    def __post_init__(self) -> None:
        for name in ("peak_gflops", "bandwidth_gbps"):
            value = checks.real("cpu.Roofline", name, getattr(self, name),
                                positive=True)
            object.__setattr__(self, name, value)

    @property
    def ridge(self) -> float:
        """The intensity (FLOPs/byte) where the roofs meet: the ridge point."""
        return self.peak_gflops / self.bandwidth_gbps

    def attainable(self, intensity):
        """The best GFLOPS at ``intensity`` FLOPs/byte (a number or an array)."""
        intensity = np.asarray(intensity, dtype=float)
        if intensity.size == 0 or not np.all(np.isfinite(intensity)) or np.any(
                intensity <= 0):
            raise ValueError("Roofline.attainable: intensity must be finite and > 0")
        out = np.minimum(self.peak_gflops, self.bandwidth_gbps * intensity)
        return float(out) if out.ndim == 0 else out


def intensity(flops: float, nbytes: float) -> float:
    """Arithmetic intensity: FLOPs per byte moved to or from memory."""
    flops = checks.real("cpu.intensity", "flops", flops, positive=True)
    nbytes = checks.real("cpu.intensity", "nbytes", nbytes, positive=True)
    return flops / nbytes


def plot_roofline(roof: Roofline,
                  points: Mapping[str, tuple[float, float]] | None = None,
                  ax=None, label: str = "roofline"):
    """Draw ``roof`` (log-log) and mark ``points``: ``{name: (FLOPs/byte, GFLOPS)}``.

    Pass the ``ax`` of an earlier call (and another ``label``) to draw a second
    roof, e.g. a cache's bandwidth beside main memory's.
    """
    from .plot import plot

    if not isinstance(roof, Roofline):
        raise TypeError(f"cpu.plot_roofline: roof must be a cpu.Roofline, got "
                        f"{type(roof).__name__}")
    label = checks.string("cpu.plot_roofline", "label", label)
    if points is not None and not isinstance(points, Mapping):
        raise TypeError("cpu.plot_roofline: points must be a dict {label: (FLOPs/byte, "
                        f"GFLOPS)}}, got {type(points).__name__}")
    points = dict(points or {})
    for name, point in points.items():
        if not isinstance(point, (tuple, list)) or len(point) != 2:
            raise TypeError(f"cpu.plot_roofline: points[{name!r}] must be a pair "
                            "(FLOPs/byte, GFLOPS)")
        for k in (0, 1):
            checks.real("cpu.plot_roofline", f"points[{name!r}][{k}]", point[k],
                        positive=True)
    lo = min([roof.ridge / 64] + [p[0] / 2 for p in points.values()])
    hi = max([roof.ridge * 16] + [p[0] * 2 for p in points.values()])
    x = np.geomspace(lo, hi, 64)
    first = ax is None
    ax = plot(x, {label: roof.attainable(x)},
              xlabel="arithmetic intensity (FLOPs/byte)", ylabel="GFLOPS",
              xscale="log10", yscale="log10", ax=ax)
    ax.lines[-1].set_marker("")
    if not first:
        ax.lines[-1].set_linestyle("--")
    for (name, (i, gf)), marker in zip(points.items(), "osD^v<>ph*" * 4):
        ax.plot([i], [gf], marker=marker, linestyle="", label=name)
    ax.legend(fontsize="small")
    return ax
