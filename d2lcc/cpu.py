"""What a CPU can do: SIMD width, caches, peak FLOP rate, memory bandwidth, roofline.

:numref:`sec_operators_cpu` measures this machine's two ceilings with kernels compiled
by TVM: :func:`peak_gflops` runs many independent fused multiply-adds on
vector registers (:func:`fma_kernel`), :func:`bandwidth_gbps` copies an array
much larger than the caches (:func:`copy_kernel`). A :class:`Roofline` made
of the two tells, for a kernel of a given arithmetic intensity, the best speed
it can reach; :func:`plot_roofline` draws it with kernels placed on it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np


def vector_lanes(machine=None, dtype: str = "float32") -> int:
    """How many ``dtype`` values one SIMD register holds (AVX-512: 64 bytes, AVX2: 32, NEON: 16)."""
    if machine is None:
        from .machine import env

        machine = env()
    bits = {"float32": 32, "float16": 16, "int8": 8, "int32": 32, "float64": 64}
    if dtype not in bits:
        raise ValueError(f"cpu.vector_lanes: dtype={dtype!r} must be one of {sorted(bits)}")
    if machine.has("avx512f"):
        width = 512
    elif machine.has("avx2"):
        width = 256
    else:
        width = 128  # NEON, or SSE on an old x86
    return width // bits[dtype]


def vector_registers(machine=None) -> int:
    """How many SIMD registers the ISA has: 32 with AVX-512 or on AArch64, else 16."""
    if machine is None:
        from .machine import env

        machine = env()
    return 32 if machine.has("avx512f") or machine.arch in ("aarch64", "arm64") else 16


def cache_sizes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, int]:
    """Return this core's data cache sizes in bytes, e.g. ``{"L1d": 49152, "L2": 2097152, "L3": ...}``.

    Read from Linux's sysfs; an empty dict where that is not available.
    """
    sizes: dict[str, int] = {}
    if not os.path.isdir(root):
        return sizes
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        try:
            level = open(os.path.join(path, "level")).read().strip()
            kind = open(os.path.join(path, "type")).read().strip()
            text = open(os.path.join(path, "size")).read().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1], 1)
        value = int(text.rstrip("KMG")) * scale
        sizes[f"L{level}d" if level == "1" else f"L{level}"] = value
    return sizes


def use_all_cores(cores: int | None = None) -> int:
    """Make TVM's runtime thread pool use ``cores`` threads (default: every core we may run on).

    TVM starts its pool on the first parallel call, with ``TVM_NUM_THREADS``
    (or ``OMP_NUM_THREADS``) threads; when neither is set it takes half of the
    hardware threads on x86, assuming two per core (hyper-threading). On a
    machine without SMT, such as most cloud VMs, that leaves half the cores
    idle. Call this before anything runs in parallel; it returns the pool's
    size, which tells whether it came in time.
    """
    import tvm

    from .machine import cores as _cores

    if cores is None:
        cores = _cores()
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise ValueError(f"cpu.use_all_cores: cores={cores!r} must be a positive int")
    os.environ.setdefault("TVM_NUM_THREADS", str(cores))
    return tvm.runtime.num_threads()


def fma_kernel(threads: int, accumulators: int, lanes: int, iters: int):
    """Return a PrimFunc in which each of ``threads`` threads runs ``iters`` rounds of
    ``accumulators`` independent vector FMAs ``acc = acc * x + x``, ``lanes`` floats wide.

    Independent accumulators hide the FMA latency: with ``latency x units``
    of them in flight, a core issues an FMA on every unit every cycle.
    """
    from tvm.script import tirx as T

    for name, value in (("threads", threads), ("accumulators", accumulators), ("lanes", lanes), ("iters", iters)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"cpu.fma_kernel: {name}={value!r} must be a positive int")
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


def copy_kernel(n: int, lanes: int, inputs: int = 1):
    """Return a PrimFunc over ``n`` float32, split across cores and vectorized: with
    ``inputs=1`` the copy ``B[i] = A0[i]``, with ``inputs=2`` the sum ``B[i] = A0[i] + A1[i]``.
    """
    import tvm
    from tvm import te

    if not isinstance(n, int) or n < 1 or n % (lanes * 64):
        raise ValueError(f"cpu.copy_kernel: n={n!r} must be a positive multiple of {lanes * 64}")
    if inputs not in (1, 2):
        raise ValueError(f"cpu.copy_kernel: inputs={inputs!r} must be 1 (copy) or 2 (add)")
    A = [te.placeholder((n,), "float32", name=f"A{k}") for k in range(inputs)]
    B = te.compute((n,), lambda i: A[0][i] if inputs == 1 else A[0][i] + A[1][i], name="B")
    sch = tvm.s_tir.Schedule(te.create_prim_func([*A, B]))
    (i,) = sch.get_loops("B")
    outer, inner = sch.split(i, [None, lanes * 64])
    sch.parallel(outer)
    _, vec = sch.split(inner, [None, lanes])
    sch.vectorize(vec)
    return sch.mod["main"]


def peak_gflops(accumulators: int | None = None, lanes: int | None = None, threads: int | None = None,
                iters: int = 1 << 18, repeat: int = 30) -> float:
    """Measure this machine's float32 peak in GFLOPS (2 FLOPs per FMA lane) with :func:`fma_kernel`.

    Defaults: all cores, this CPU's vector width, and as many accumulators as
    leave a few registers free (12 of 16, 24 of 32).
    """
    import tvm

    from .bench import measure
    from .machine import cores
    from .target import host

    lanes = lanes or vector_lanes()
    threads = threads or cores()
    accumulators = accumulators or (24 if vector_registers() == 32 else 12)
    kernel = fma_kernel(threads, accumulators, lanes, iters)
    f = tvm.compile(tvm.IRModule({"main": kernel}), target=host(threads))
    out = tvm.runtime.tensor(np.zeros((threads, accumulators, lanes), np.float32))
    x = tvm.runtime.tensor(np.full(lanes, 0.5, np.float32))  # acc -> 1: no overflow, no denormals
    t = measure(lambda: f(out, x), repeat=repeat, number=1)
    return 2 * threads * accumulators * lanes * iters / t.best / 1e9


def bandwidth_gbps(nbytes: int = 1 << 28, repeat: int = 5) -> float:
    """Measure memory bandwidth in GB/s (bytes read + written per second) with :func:`copy_kernel`.

    Like the STREAM benchmark :cite:`McCalpin.1995`, we run a copy (``nbytes``
    read, ``nbytes`` written) and an add (``2 nbytes`` read, ``nbytes``
    written), and also NumPy's ``copyto`` (a ``memcpy``, which on x86 writes
    large arrays with non-temporal stores that bypass the cache), and report
    the fastest: the roof is the best any program reaches. The default 256 MiB
    per array is much larger than the caches of a laptop or a small server.
    """
    import tvm

    from .bench import measure
    from .target import host

    lanes = vector_lanes()
    n = nbytes // 4 // (lanes * 64) * (lanes * 64)
    if n < 1:
        raise ValueError(f"cpu.bandwidth_gbps: nbytes={nbytes} is too small")
    out = tvm.runtime.tensor(np.empty(n, np.float32))
    ins = [tvm.runtime.tensor(np.ones(n, np.float32)) for _ in range(2)]
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    best = 2 * 4 * n / measure(lambda: np.copyto(dst, src), repeat=repeat, number=1).best / 1e9
    for inputs in (1, 2):
        f = tvm.compile(tvm.IRModule({"main": copy_kernel(n, lanes, inputs)}), target=host())
        t = measure(lambda: f(*ins[:inputs], out), repeat=repeat, number=1)
        best = max(best, (inputs + 1) * 4 * n / t.best / 1e9)
    return best


@dataclass(frozen=True)
class Roofline:
    """The roofline model :cite:`Williams.Waterman.Patterson.2009` of one machine.

    A kernel doing ``I`` FLOPs per byte of memory traffic (its arithmetic
    intensity) runs at most at ``min(peak_gflops, bandwidth_gbps * I)``.
    """

    peak_gflops: float
    bandwidth_gbps: float

    def __post_init__(self) -> None:
        if not (self.peak_gflops > 0 and self.bandwidth_gbps > 0):
            raise ValueError(f"Roofline: peak_gflops={self.peak_gflops} and bandwidth_gbps={self.bandwidth_gbps} must be > 0")

    @property
    def ridge(self) -> float:
        """The intensity (FLOPs/byte) where the two roofs meet: below it a kernel is bandwidth bound."""
        return self.peak_gflops / self.bandwidth_gbps

    def attainable(self, intensity):
        """The best GFLOPS a kernel of ``intensity`` FLOPs/byte can reach (works on arrays too)."""
        intensity = np.asarray(intensity, dtype=float)
        if np.any(intensity <= 0):
            raise ValueError("Roofline.attainable: intensity must be > 0")
        out = np.minimum(self.peak_gflops, self.bandwidth_gbps * intensity)
        return float(out) if out.ndim == 0 else out


def intensity(flops: float, nbytes: float) -> float:
    """Arithmetic intensity: FLOPs per byte moved to or from memory."""
    if not (flops > 0 and nbytes > 0):
        raise ValueError(f"cpu.intensity: flops={flops} and nbytes={nbytes} must be > 0")
    return flops / nbytes


def plot_roofline(roof: Roofline, points: Mapping[str, tuple[float, float]] | None = None, ax=None):
    """Draw ``roof`` on log-log axes and mark ``points``: ``{label: (FLOPs/byte, GFLOPS)}``."""
    from .plot import plot

    points = dict(points or {})
    lo = min([roof.ridge / 64] + [p[0] / 2 for p in points.values()])
    hi = max([roof.ridge * 16] + [p[0] * 2 for p in points.values()])
    x = np.geomspace(lo, hi, 64)
    ax = plot(x, {"roofline": roof.attainable(x)}, xlabel="arithmetic intensity (FLOPs/byte)",
              ylabel="GFLOPS", xscale="log10", yscale="log10", ax=ax)
    ax.lines[0].set_marker("")
    for (label, (i, gf)), marker in zip(points.items(), "osD^v<>ph*" * 4):
        ax.plot([i], [gf], marker=marker, linestyle="", label=label)
    ax.legend(fontsize="small")
    return ax
