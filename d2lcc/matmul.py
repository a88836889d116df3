"""Matrix multiplication on a CPU, one schedule step at a time.

:numref:`sec_operators_matmul` optimizes ``C = A @ B`` for square float32
matrices in small steps. Each step is a short *teaching function* that changes
a :class:`tvm.s_tir.Schedule` in place and adds one idea; the book shows each
as a code cell the reader can edit (they are listed in ``__teaching__`` and
check nothing). The public builders below check their arguments, then chain
the steps:

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

from . import checks

__teaching__ = ("matmul_te", "reorder_ikj", "parallel_rows", "tile_block",
                "accumulate_locally", "parallel_pack", "register_block")

#: Largest matrix size: ``n * n`` element indices must fit TVM's int32 indexing.
MAX_N = 1 << 15
#: Largest block: ``mr`` rows are unrolled and ``nr`` columns vectorized.
MAX_MR, MAX_NR = 64, 1024


# --- the teaching functions, as the book shows them ---------------------------

def matmul_te(n, pack_b=0, pack_a=0):
    """Return the PrimFunc of ``C = A @ B`` (all ``n x n`` float32) written with ``te``.

    ``pack_b = w > 0`` adds ``B_packed[n/w, n, w]`` (``w`` columns of B side
    by side), which the product reads instead of B; ``pack_a = h > 0`` adds
    ``A_packed[ceil(n/h), n, h]`` (``h`` rows of A, interleaved, padded with
    zero rows); the product then fills a taller ``C_pad``, copied to C.
    """
    from tvm import te

    A = te.placeholder((n, n), "float32", name="A")
    B = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis((0, n), name="k")
    a, b, rows = (lambda i, k: A[i, k]), (lambda k, j: B[k, j]), n
    if pack_b:
        w = pack_b
        Bp = te.compute((n // w, n, w), lambda jo, k, ji: B[k, jo * w + ji],
                        name="B_packed")
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


def reorder_ikj(sch):
    """Step 1: loop order ``i, k, j``; the inner loop walks rows of B and C."""
    i, j, k = sch.get_loops("C")
    sch.reorder(i, k, j)


def parallel_rows(sch):
    """Step 2: the rows of C (the outer loop ``i``) are shared among the cores."""
    i, k, j = sch.get_loops("C")
    sch.parallel(i)


def tile_block(sch, mr, nr):
    """Step 3: ``mr x nr`` blocks of C; ``ji`` vectorized, ``ii`` above it unrolled."""
    i, j, k = sch.get_loops("C")
    io, ii = sch.split(i, [None, mr])
    jo, ji = sch.split(j, [None, nr])
    sch.reorder(io, jo, k, ii, ji)
    sch.parallel(io)
    sch.unroll(ii)
    sch.vectorize(ji)


def accumulate_locally(sch):
    """Step 4: each block of C accumulates in a local buffer, written to C once."""
    io, jo, k, ii, ji = sch.get_loops("C")
    acc = sch.cache_write("C", 0, "local")  # block "C" now writes C_local
    sch.reverse_compute_at(acc, jo)  # copy C_local -> C after each block
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction("C", k)  # zero C_local before the k loop


def parallel_pack(sch, name):
    """Step 5: packing stage ``[n/w, n, w]``: blocks in parallel, w floats at once."""
    outer, _, inner = sch.get_loops(name)
    sch.parallel(outer)
    sch.vectorize(inner)


def register_block(sch, n, mr, nr):
    """Step 6: the micro-kernel on ``matmul_te(n, pack_b=nr, pack_a=mr)``'s schedule.

    Loops ``jo, io, k, ii, ji``: each core takes a panel of ``nr`` columns of
    B (``jo``) and packs it; every block of ``mr`` rows of A streams past it
    while the ``mr x nr`` accumulators stay in vector registers.
    """
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
    b_pack = sch.get_sblock("B_packed")
    sch.compute_at(b_pack, jo)  # each thread packs its panel right before using it
    sch.vectorize(sch.get_loops(b_pack)[-1])
    parallel_pack(sch, "A_packed")


# --- the public builders: check the arguments, then run the steps -------------

def _size(func: str, n: int) -> int:
    return checks.positive_int(func, "n", n, maximum=MAX_N)


def _block(func: str, n: int, mr: int, nr: int, *, mr_divides: bool = True):
    mr = checks.positive_int(func, "mr", mr, maximum=MAX_MR)
    nr = checks.positive_int(func, "nr", nr, maximum=MAX_NR)
    if mr_divides:
        checks.multiple_of(func, "n", n, mr, "mr")
    checks.multiple_of(func, "n", n, nr, "nr")
    return mr, nr


def default(n: int, pack_b: int = 0, pack_a: int = 0):
    """Step 0: the schedule of :func:`matmul_te` as written, loops ``i, j, k``.

    ``pack_b`` (0: no packing) must divide ``n``; ``pack_a`` need not.
    """
    n = _size("matmul.default", n)
    pack_b = checks.nonnegative_int("matmul.default", "pack_b", pack_b, maximum=MAX_NR)
    pack_a = checks.nonnegative_int("matmul.default", "pack_a", pack_a, maximum=MAX_MR)
    if pack_b:
        checks.multiple_of("matmul.default", "n", n, pack_b, "pack_b")
    import tvm

    return tvm.s_tir.Schedule(matmul_te(n, pack_b, pack_a))


def reorder(n: int):
    """Step 1 for size ``n``: :func:`reorder_ikj` on :func:`default`."""
    sch = default(_size("matmul.reorder", n))
    reorder_ikj(sch)
    return sch


def parallel(n: int):
    """Step 2 for size ``n``: :func:`parallel_rows` after :func:`reorder`."""
    sch = reorder(_size("matmul.parallel", n))
    parallel_rows(sch)
    return sch


def tiled(n: int, mr: int, nr: int, pack_b: int = 0):
    """Step 3: :func:`tile_block` with ``mr x nr`` blocks; both must divide ``n``."""
    n = _size("matmul.tiled", n)
    mr, nr = _block("matmul.tiled", n, mr, nr)
    sch = default(n, pack_b)
    tile_block(sch, mr, nr)
    return sch


def cache_write(n: int, mr: int, nr: int, pack_b: int = 0):
    """Step 4: :func:`tiled`, then :func:`accumulate_locally`."""
    n = _size("matmul.cache_write", n)
    mr, nr = _block("matmul.cache_write", n, mr, nr)
    sch = tiled(n, mr, nr, pack_b)
    accumulate_locally(sch)
    return sch


def packed_b(n: int, mr: int, nr: int):
    """Step 5: :func:`cache_write` reading ``B_packed[n/nr, n, nr]``, packed first."""
    n = _size("matmul.packed_b", n)
    mr, nr = _block("matmul.packed_b", n, mr, nr)
    sch = cache_write(n, mr, nr, pack_b=nr)
    parallel_pack(sch, "B_packed")
    return sch


def micro_kernel(n: int, mr: int, nr: int):
    """Step 6: :func:`register_block`; ``nr`` must divide ``n``, ``mr`` need not."""
    n = _size("matmul.micro_kernel", n)
    mr, nr = _block("matmul.micro_kernel", n, mr, nr, mr_divides=False)
    sch = default(n, pack_b=nr, pack_a=mr)
    register_block(sch, n, mr, nr)
    return sch


@dataclass(frozen=True)
class KernelShape:
    """The register block of the micro-kernel: ``mr`` rows by ``nr`` columns of C."""

    lanes: int  # float32 values in one vector register
    registers: int  # vector registers the ISA has
    mr: int
    nr: int

    def __post_init__(self) -> None:
        for name in ("lanes", "registers", "mr", "nr"):
            checks.positive_int("matmul.KernelShape", name, getattr(self, name),
                                maximum=MAX_NR)
        checks.multiple_of("matmul.KernelShape", "nr", self.nr, self.lanes, "lanes")

    @property
    def registers_used(self) -> int:
        """Accumulators, one row of B (nr / lanes vectors) and one broadcast of A."""
        return self.mr * self.nr // self.lanes + self.nr // self.lanes + 1

    @property
    def fmas_per_load(self) -> float:
        """Vector FMAs per load (mr broadcasts of A, nr / lanes vectors of B) per k."""
        v = self.nr // self.lanes
        return self.mr * v / (self.mr + v)


def kernel_shape(machine=None) -> KernelShape:
    """Pick the micro-kernel's ``mr x nr`` block from the SIMD width and registers.

    On each ``k`` the block does ``mr * v`` vector FMAs (``v = nr / lanes``)
    and loads ``mr`` broadcasts of A and ``v`` vectors of B. For ``v`` in 1, 2,
    4 (so that ``nr`` divides power-of-two sizes) we take as many rows as fit
    in the register file (``mr * v`` accumulators + ``v`` + 1) and keep the
    ``v`` with the most FMAs per load: 6 x 64 with AVX-512, 6 x 16 with AVX2.
    """
    from .cpu import vector_lanes, vector_registers
    from .machine import Machine

    if machine is not None and not isinstance(machine, Machine):
        raise TypeError("matmul.kernel_shape: machine must be a d2lcc.machine.Machine "
                        f"or None, got {type(machine).__name__}")
    lanes, registers = vector_lanes(machine), vector_registers(machine)

    def fmas_per_load(v: int) -> float:
        mr = (registers - v - 1) // v
        return mr * v / (mr + v)

    v = max((1, 2, 4), key=fmas_per_load)
    return KernelShape(lanes=lanes, registers=registers, mr=(registers - v - 1) // v,
                       nr=v * lanes)


STEPS = ("default", "reorder", "parallel", "tiled", "cache_write", "packed_b",
         "micro_kernel")


def schedule(step: str, n: int, shape: KernelShape | None = None):
    """Return the schedule of ``step`` (one of :data:`STEPS`) for size ``n``.

    Steps from ``tiled`` on use the block of ``shape`` (default
    :func:`kernel_shape`); those before ``micro_kernel`` round its rows down to
    a power of two, so that blocks divide the power-of-two sizes of the book.
    """
    step = checks.one_of("matmul.schedule", "step", step, STEPS)
    n = _size("matmul.schedule", n)
    if shape is not None and not isinstance(shape, KernelShape):
        raise TypeError("matmul.schedule: shape must be a matmul.KernelShape or None, "
                        f"got {type(shape).__name__}")
    fn = {"default": default, "reorder": reorder, "parallel": parallel, "tiled": tiled,
          "cache_write": cache_write, "packed_b": packed_b,
          "micro_kernel": micro_kernel}[step]
    if STEPS.index(step) < STEPS.index("tiled"):
        return fn(n)
    shape = shape or kernel_shape()
    mr = shape.mr if step == "micro_kernel" else 1 << (shape.mr.bit_length() - 1)
    return fn(n, mr, shape.nr)


def build(sch, target=None):
    """Compile a schedule (or IRModule) for ``target`` (default: this CPU)."""
    import tvm

    from .target import host

    mod = sch.mod if isinstance(sch, tvm.s_tir.Schedule) else sch
    if not isinstance(mod, tvm.IRModule):
        raise TypeError("matmul.build: sch must be a tvm.s_tir.Schedule or an "
                        f"IRModule, got {type(sch).__name__}")
    if target is not None and not isinstance(target, (tvm.target.Target, dict)):
        raise TypeError("matmul.build: target must be a tvm.target.Target, a dict or "
                        f"None, got {type(target).__name__}")
    return tvm.compile(mod, target=target or host())
