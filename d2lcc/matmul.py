"""Matrix multiplication on a CPU, one schedule at a time.

:numref:`sec_operators_matmul` optimizes ``C = A @ B`` for square float32 matrices in
small steps. Each step is one function here that takes the previous step's
schedule (by calling the previous function) and adds one idea, so the book can
print a step with :func:`inspect.getsource` and the reader sees only what is
new:

======================  ===================================================
:func:`default`          the loops as written: ``i, j, k``
:func:`reorder`          ``i, k, j``: the inner loop walks rows of B and C
:func:`parallel`         the outer loop runs on all cores
:func:`tiled`            cache tiles, the inner loop vectorized, one unrolled
:func:`cache_write`      a tile of C accumulates in a local buffer
:func:`packed_b`         B repacked so that a tile's columns are contiguous
:func:`micro_kernel`     a register-sized block of C, A and B both packed
======================  ===================================================

:func:`build` compiles any of them for this machine; :func:`kernel_shape`
picks the micro-kernel's block from the SIMD width.
"""

from __future__ import annotations

from dataclasses import dataclass

# Cache tile of the middle steps (tiled, cache_write, packed_b): 32 x 32 floats
# of C (4 KiB) plus the matching rows and columns of A and B fit in a 32 KiB L1.
TILE = 32


def _check(func: str, n: int, *divisors: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"matmul.{func}: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"matmul.{func}: n={n} must be positive")
    for d in divisors:
        if n % d:
            raise ValueError(f"matmul.{func}: n={n} must be a multiple of {d}")


def matmul_te(n: int, pack_b: int = 0, pack_a: int = 0):
    """Return the PrimFunc of ``C = A @ B`` (all ``n x n`` float32) defined with ``te``.

    ``pack_b = w > 0`` adds a stage ``B_packed[n/w, n, w]`` (``w`` columns of B
    side by side) that the product reads instead of B; ``pack_a = h > 0`` adds
    ``A_packed[ceil(n/h), n, h]`` (``h`` rows of A, interleaved) likewise. When
    ``h`` does not divide ``n``, A_packed is padded with zero rows, the product
    is computed into a taller ``C_pad`` and its first ``n`` rows copied to C.
    """
    from tvm import te

    _check("matmul_te", n, *(d for d in (pack_b,) if d))
    if pack_a < 0:
        raise ValueError(f"matmul.matmul_te: pack_a={pack_a} must be >= 0")
    A = te.placeholder((n, n), "float32", name="A")
    B = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis((0, n), name="k")
    a, b, rows = (lambda i, k: A[i, k]), (lambda k, j: B[k, j]), n
    if pack_b:
        w = pack_b
        Bp = te.compute((n // w, n, w), lambda jo, k, ji: B[k, jo * w + ji], name="B_packed")
        b = lambda k, j: Bp[j // w, k, j % w]  # noqa: E731
    if pack_a:
        h, rows = pack_a, -(-n // pack_a) * pack_a
        Ap = te.compute((rows // h, n, h), lambda io, k, ii: te.if_then_else(
            io * h + ii < n, A[te.min(io * h + ii, n - 1), k], 0.0), name="A_packed")
        a = lambda i, k: Ap[i // h, k, i % h]  # noqa: E731
    name = "C" if rows == n else "C_pad"
    C = te.compute((rows, n), lambda i, j: te.sum(a(i, k) * b(k, j), axis=k), name=name)
    if rows != n:
        C = te.compute((n, n), lambda i, j: C[i, j], name="C")
    return te.create_prim_func([A, B, C])


def _schedule(func):
    import tvm

    return tvm.s_tir.Schedule(func)


def default(n: int, pack_b: int = 0, pack_a: int = 0):
    """Step 0: the loops as ``te`` writes them, ``for i, j, k`` (packing as in :func:`matmul_te`)."""
    return _schedule(matmul_te(n, pack_b, pack_a))


def reorder(n: int):
    """Step 1: loop order ``i, k, j``, so the inner loop reads B and writes C row by row."""
    sch = default(n)
    i, j, k = sch.get_loops("C")
    sch.reorder(i, k, j)
    return sch


def parallel(n: int):
    """Step 2: the rows of C (loop ``i``) are shared among the cores."""
    sch = reorder(n)
    i, k, j = sch.get_loops("C")
    sch.parallel(i)
    return sch


def tiled(n: int, mr: int, nr: int, pack_b: int = 0):
    """Step 3: ``mr x nr`` blocks of C; the inner ``j`` vectorized, the ``i`` above it unrolled."""
    _check("tiled", n, mr, nr)
    sch = default(n, pack_b)
    i, j, k = sch.get_loops("C")
    io, ii = sch.split(i, [None, mr])
    jo, ji = sch.split(j, [None, nr])
    sch.reorder(io, jo, k, ii, ji)
    sch.parallel(io)
    sch.unroll(ii)
    sch.vectorize(ji)
    return sch


def cache_write(n: int, mr: int, nr: int, pack_b: int = 0):
    """Step 4: each block of C accumulates in a local buffer (registers), written to C once."""
    sch = tiled(n, mr, nr, pack_b)
    io, jo, k, ii, ji = sch.get_loops("C")
    acc = sch.cache_write("C", 0, "local")  # block "C" now writes C_local
    sch.reverse_compute_at(acc, jo)  # copy C_local -> C after each block
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction("C", k)  # zero C_local before the k loop
    return sch


def _parallel_pack(sch, name: str) -> None:
    # A packing stage [n/w, n, w]: blocks of w in parallel, each copied w floats at a time.
    outer, _, inner = sch.get_loops(name)
    sch.parallel(outer)
    sch.vectorize(inner)


def packed_b(n: int, mr: int, nr: int):
    """Step 5: B is first copied to ``B_packed[n/nr, n, nr]``: a block's columns of B become contiguous."""
    sch = cache_write(n, mr, nr, pack_b=nr)
    _parallel_pack(sch, "B_packed")
    return sch


def micro_kernel(n: int, mr: int, nr: int):
    """Step 6: A packed too, and the panel loop ``jo`` outermost, so a panel of B stays in cache.

    ``mr`` need not divide ``n`` (A is padded with zero rows; only the copy of
    the accumulators to C checks the row index), ``nr`` must.

    The loop nest is ``jo, io, k, ii, ji``: for each panel of ``nr`` columns of
    B (``jo``, shared among the cores), every block of ``mr`` rows of A streams
    past it, and the ``mr x nr`` accumulators stay in vector registers for the
    whole ``k`` loop (``ii`` unrolled, ``ji`` one instruction per vector).
    """
    _check("micro_kernel", n, nr)
    sch = default(n, pack_b=nr, pack_a=mr)
    product = "C" if n % mr == 0 else "C_pad"  # mr not dividing n: rows padded
    i, j, k = sch.get_loops(product)
    io, ii = sch.split(i, [None, mr])
    jo, ji = sch.split(j, [None, nr])
    sch.reorder(jo, io, k, ii, ji)
    sch.parallel(jo)
    sch.unroll(ii)
    sch.vectorize(ji)
    acc = sch.cache_write(product, 0, "local")
    sch.reverse_compute_at(acc, io)
    if product == "C_pad":
        sch.reverse_compute_inline("C")  # write the accumulators straight to C
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(product, k)
    packed_b = sch.get_sblock("B_packed")
    sch.compute_at(packed_b, jo)  # each thread packs its own panel, right before using it
    sch.vectorize(sch.get_loops(packed_b)[-1])
    _parallel_pack(sch, "A_packed")
    return sch


@dataclass(frozen=True)
class KernelShape:
    """The register block of the micro-kernel: ``mr`` rows by ``nr`` columns of C."""

    lanes: int  # float32 values in one vector register
    registers: int  # vector registers the ISA has
    mr: int
    nr: int

    @property
    def registers_used(self) -> int:
        """Accumulators, plus one row of B (nr / lanes vectors), plus one broadcast of A."""
        return self.mr * self.nr // self.lanes + self.nr // self.lanes + 1

    @property
    def fmas_per_load(self) -> float:
        """Vector FMAs per load (mr broadcasts of A, nr / lanes vectors of B) on each k."""
        v = self.nr // self.lanes
        return self.mr * v / (self.mr + v)


def kernel_shape(machine=None) -> KernelShape:
    """Pick the micro-kernel's ``mr x nr`` block from the SIMD width and register count of ``machine``.

    On each ``k`` the block does ``mr * v`` vector FMAs (``v = nr / lanes``)
    and loads ``mr`` broadcasts of A and ``v`` vectors of B. For ``v`` in 1, 2,
    4 (so that ``nr`` divides power-of-two sizes) we take as many rows as fit
    in the register file (``mr * v`` accumulators + ``v`` + 1) and keep the
    ``v`` with the most FMAs per load: 6 x 64 with AVX-512, 6 x 16 with AVX2.
    """
    if machine is None:
        from .machine import env

        machine = env()
    from .cpu import vector_lanes, vector_registers

    lanes, registers = vector_lanes(machine), vector_registers(machine)

    def fmas_per_load(v: int) -> float:
        mr = (registers - v - 1) // v
        return mr * v / (mr + v)

    v = max((1, 2, 4), key=fmas_per_load)
    return KernelShape(lanes=lanes, registers=registers, mr=(registers - v - 1) // v, nr=v * lanes)


STEPS = ("default", "reorder", "parallel", "tiled", "cache_write", "packed_b", "micro_kernel")


def schedule(step: str, n: int, shape: KernelShape | None = None):
    """Return the schedule of ``step`` (one of :data:`STEPS`) for size ``n``.

    Steps from ``tiled`` on use the block of ``shape`` (default
    :func:`kernel_shape`); those before ``micro_kernel`` round its rows down to
    a power of two, so that blocks divide the power-of-two sizes of the book.
    """
    if step not in STEPS:
        raise ValueError(f"matmul.schedule: unknown step={step!r}; expected one of {STEPS}")
    fn = globals()[step]
    if STEPS.index(step) < STEPS.index("tiled"):
        return fn(n)
    shape = shape or kernel_shape()
    mr = shape.mr if step == "micro_kernel" else 1 << (shape.mr.bit_length() - 1)
    return fn(n, mr, shape.nr)


def build(sch, target=None):
    """Compile a schedule (or IRModule) for ``target`` (default: this CPU, all cores)."""
    import tvm

    from .target import host

    mod = sch.mod if hasattr(sch, "mod") else sch
    return tvm.compile(mod, target=target or host())
