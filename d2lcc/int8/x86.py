"""int8 kernels for x86 CPUs: ``vpmaddubsw`` + ``vpmaddwd`` (AVX2) and ``vpdpbusd``.

A quantized convolution or dense layer, once lowered (:mod:`d2lcc.qnn`), is an
integer product of uint8 activations and int8 weights accumulated in int32.
x86 CPUs have instructions for exactly that, four products per 32-bit lane:

==============  ========================  ================================
ISA             instructions              int32 lanes (register)
==============  ========================  ================================
``avx2``        ``vpmaddubsw``, then      8 (ymm); pair sums saturate to
                ``vpmaddwd`` with ones    int16
``avx_vnni``    ``{vex} vpdpbusd``        8 (ymm), exact
``avx512_vnni`` ``vpdpbusd``              16 (zmm), exact
==============  ========================  ================================

TVM schedules reach these instructions through *tensorization*: a tensor
intrinsic pairs a description (a small TensorIR loop nest:
``C[l] += sum_q A[q] * B[l, q]`` over ``lanes`` outputs and 4 products) with an
implementation (the LLVM intrinsic calls). TVM 0.27 ships such intrinsics
(``dot_16x4_vnni``, ``dot_16x4_avx512``), but the first fails LLVM 22's
verifier and the second saturates, so we define our own (:func:`dot_desc`,
:func:`dot_avx2`, :func:`dot_vnni`) and register them on first use
(:func:`intrinsic`), never at import time.

Weights are packed ahead of time so that the 4 products of one lane and the
``lanes`` outputs of one instruction are 4 x ``lanes`` consecutive bytes:
``[N/lanes, K/4, lanes, 4]`` for a matrix (:func:`pack_weight`),
``[O/lanes, C/4, KH, KW, lanes, 4]`` for a convolution. Kernels:

* :func:`matmul` schedules ``C = A @ B`` (uint8 ``[M, K]`` x packed int8) with
  :func:`tensorize_matmul`: an ``mr x nr`` register block of int32
  accumulators, the intrinsic on each ``lanes``-wide vector.
* :func:`legalize_map` and :func:`schedule_module` do the same inside a Relax
  module lowered from QNN: every uint8 x int8 -> int32 ``matmul`` and
  ``conv2d`` with a constant weight becomes a kernel on pre-packed weights,
  and those kernels (with the epilogue fused into them) are tensorized.

The ISA comes from the *target's* features (:func:`isa_of`), never from the
machine the code runs on: compiling for ``cascadelake`` works anywhere, running
the result needs a VNNI CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import checks

__teaching__ = ("dot_avx2", "tensorize_matmul")

#: The instruction families, from the most to the least capable.
ISAS = ("avx512_vnni", "avx_vnni", "avx2")

#: Largest matrix side or channel count the builders accept (int32 indexing).
MAX_SIZE = 1 << 15


@dataclass(frozen=True)
class Isa:
    """One instruction family: its int32 lanes and its register block."""

    name: str
    lanes: int  # int32 outputs per instruction (one vector register)
    mr: int  # rows of the register block (broadcast activations)
    vectors: int  # vectors of outputs per row of the block
    instruction: str  # the mnemonic to look for in the assembly

    @property
    def nr(self) -> int:
        """Columns of the register block."""
        return self.vectors * self.lanes

    @property
    def intrinsic_name(self) -> str:
        """The name under which :func:`intrinsic` registers the tensor intrinsic."""
        return f"d2lcc_dot_{self.lanes}x4_{self.name}"


# Register blocks: AVX2 and AVX-VNNI have 16 ymm registers (8 accumulators, 2
# weight vectors, a broadcast and, on AVX2, the int16 temporaries and the
# vector of ones); AVX-512 has 32 zmm registers (24 accumulators).
_ISAS = {
    "avx512_vnni": Isa("avx512_vnni", 16, 6, 4, "vpdpbusd"),
    "avx_vnni": Isa("avx_vnni", 8, 4, 2, "vpdpbusd"),
    "avx2": Isa("avx2", 8, 4, 2, "vpmaddubsw"),
}


def isa(name: str) -> Isa:
    """Return the :class:`Isa` called ``name`` (one of :data:`ISAS`)."""
    return _ISAS[checks.one_of("int8.x86.isa", "name", name, ISAS)]


def isa_of(target: Any = None) -> str | None:
    """The best of :data:`ISAS` that ``target`` (default: this machine) supports.

    Read from the LLVM features of the target's ``mcpu``: ``cascadelake`` gives
    ``"avx512_vnni"``, ``alderlake`` ``"avx_vnni"``, ``haswell`` and ``znver3``
    ``"avx2"``; a target without AVX2 (or not x86) gives ``None``.
    """
    from tvm.target import codegen

    from .. import target as targets

    target = targets.resolve(target, "int8.x86.isa_of")
    if str(target.kind.name) != "llvm":
        return None
    mtriple = str(target.attrs.get("mtriple", "")) if target.attrs else ""
    if mtriple and not mtriple.startswith(("x86_64", "i686", "i386")):
        return None
    for name, features in (("avx512_vnni", ["avx512vnni", "avx512bw"]),
                           ("avx_vnni", ["avxvnni"]), ("avx2", ["avx2"])):
        if all(codegen.target_has_features(f, target) for f in features):
            return name
    return None


# --- the tensor intrinsics ------------------------------------------------------

def dot_desc(lanes: int):
    """What the intrinsic computes: ``C[l] += sum_q int32(A[q]) * int32(B[l, q])``.

    ``A`` is 4 uint8 activations, ``B`` ``lanes`` rows of 4 int8 weights, ``C``
    ``lanes`` int32 accumulators in registers (scope ``local``).
    """
    from tvm.script import tirx as T

    lanes = checks.one_of("int8.x86.dot_desc", "lanes", lanes, [8, 16])

    @T.prim_func(s_tir=True)
    def desc(A: T.Buffer((4,), "uint8", offset_factor=1),
             B: T.Buffer((lanes, 4), "int8", offset_factor=1),
             C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local")):
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:4], B[0:lanes, 0:4])
            T.writes(C[0:lanes])
            for i, k in T.grid(lanes, 4):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.Cast("int32", A[vk]) * T.Cast("int32", B[vi, vk])

    return desc


def dot_avx2():
    """The AVX2 implementation: 8 lanes, ``vpmaddubsw`` then ``vpmaddwd``."""
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def impl(A: T.Buffer((4,), "uint8", offset_factor=1),
             B: T.Buffer((8, 4), "int8", offset_factor=1),
             C: T.Buffer((8,), "int32", offset_factor=1, scope="local")):
        with T.sblock("root"):
            T.reads(C[0:8], A[0:4], B[0:8, 0:4])
            T.writes(C[0:8])
            # the 4 activation bytes, copied to all 8 lanes: 32 bytes
            a4 = T.reinterpret("int32", A.vload([0], "uint8x4"))
            a = T.reinterpret("uint8x32", T.broadcast(a4, 8))
            # 16 int16: a[2i] * b[2i] + a[2i+1] * b[2i+1], saturated to int16
            pairs = T.call_llvm_pure_intrin("int16x16", "llvm.x86.avx2.pmadd.ub.sw",
                                            a, B.vload([0, 0], "int8x32"))
            # 8 int32: pairs[2l] + pairs[2l+1], the 4 products of lane l
            ones = T.broadcast(T.int16(1), 16)
            quads = T.call_llvm_pure_intrin("int32x8", "llvm.x86.avx2.pmadd.wd",
                                            pairs, ones)
            C[T.ramp(0, 1, 8)] = C.vload([0], "int32x8") + quads

    return impl


def dot_vnni(lanes: int):
    """The VNNI implementation: one ``vpdpbusd`` on ``lanes`` int32 (16: zmm, 8: ymm).

    LLVM 22's ``vpdpbusd`` intrinsics take the bytes as byte vectors
    (``<64 x i8>``); TVM 0.27's ``dot_16x4_vnni`` passes ``<16 x i32>`` and
    fails LLVM's verifier.
    """
    from tvm.script import tirx as T

    lanes = checks.one_of("int8.x86.dot_vnni", "lanes", lanes, [8, 16])
    llvm_name = f"llvm.x86.avx512.vpdpbusd.{32 * lanes}"
    acc, u8, i8 = f"int32x{lanes}", f"uint8x{4 * lanes}", f"int8x{4 * lanes}"

    @T.prim_func(s_tir=True)
    def impl(A: T.Buffer((4,), "uint8", offset_factor=1),
             B: T.Buffer((lanes, 4), "int8", offset_factor=1),
             C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local")):
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:4], B[0:lanes, 0:4])
            T.writes(C[0:lanes])
            a4 = T.reinterpret("int32", A.vload([0], "uint8x4"))
            a = T.reinterpret(u8, T.broadcast(a4, lanes))
            C[T.ramp(0, 1, lanes)] = T.call_llvm_pure_intrin(
                acc, llvm_name, C.vload([0], acc), a, B.vload([0, 0], i8))

    return impl


def intrinsic(name: str) -> str:
    """Register the tensor intrinsic of ISA ``name`` (once) and return its name."""
    from tvm import s_tir

    spec = isa(name)
    if s_tir.TensorIntrin.get(spec.intrinsic_name, allow_missing=True) is None:
        impl = dot_avx2() if name == "avx2" else dot_vnni(spec.lanes)
        s_tir.TensorIntrin.register(spec.intrinsic_name, dot_desc(spec.lanes), impl)
    return spec.intrinsic_name


# --- packing and exactness ----------------------------------------------------

def pack_weight(b: np.ndarray, lanes: int) -> np.ndarray:
    """Pack an int8 ``[K, N]`` matrix to ``[N/lanes, ceil(K/4), lanes, 4]``.

    ``packed[j, k, l, q] = b[4k + q, lanes*j + l]``; K is padded with zero rows
    to a multiple of 4. ``N`` must be a multiple of ``lanes``.
    """
    func = "int8.x86.pack_weight"
    b = checks.array(func, "b", b, ndim=2, dtypes=["int8"])
    lanes = checks.one_of(func, "lanes", lanes, [8, 16])
    k, n = b.shape
    checks.multiple_of(func, "b.shape[1]", n, lanes, "lanes")
    b = np.pad(b, [(0, -k % 4), (0, 0)])
    packed = b.reshape(-1, 4, n // lanes, lanes).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(packed)


def saturation_free(b: np.ndarray, axis: int = 0) -> bool:
    """Whether AVX2's int16 pair sums are exact for every uint8 activation.

    ``vpmaddubsw`` adds the products of weights ``4q, 4q+1`` (and ``4q+2,
    4q+3``) along the reduction ``axis`` of ``b`` in int16. With activations in
    [0, 255], the sum stays in [-32768, 32767] for all of them exactly when the
    positive weights of each pair add up to at most 128 and the negative ones
    to at least -128: always for 7-bit weights in [-64, 63], not for [-128, 127].
    """
    func = "int8.x86.saturation_free"
    b = checks.array(func, "b", b, dtypes=["int8"])
    axis = checks.integer(func, "axis", axis, minimum=-max(b.ndim, 1),
                          maximum=max(b.ndim, 1) - 1)
    w = np.moveaxis(b.astype(np.int32), axis, 0)
    w = np.pad(w, [(0, -w.shape[0] % 2)] + [(0, 0)] * (w.ndim - 1))
    pos, neg = np.maximum(w, 0), np.minimum(w, 0)
    pos, neg = pos[0::2] + pos[1::2], neg[0::2] + neg[1::2]
    return bool(np.all(255 * pos <= 32767) and np.all(255 * neg >= -32768))


# --- the matmul kernel ----------------------------------------------------------

def matmul_te(m: int, n: int, k: int, lanes: int):
    """The PrimFunc of ``C = A @ B``: uint8 ``A[m, k]``, packed int8 B, int32 ``C``.

    B arrives packed (:func:`pack_weight`, ``k`` a multiple of 4); the block
    ``C`` reads ``B_packed[j // lanes, k // 4, j % lanes, k % 4]``.
    """
    from tvm import te

    func = "int8.x86.matmul_te"
    m, n, k = (checks.positive_int(func, name, v, maximum=MAX_SIZE)
               for name, v in (("m", m), ("n", n), ("k", k)))
    lanes = checks.one_of(func, "lanes", lanes, [8, 16])
    checks.multiple_of(func, "n", n, lanes, "lanes")
    checks.multiple_of(func, "k", k, 4, "4")
    A = te.placeholder((m, k), "uint8", name="A")
    B = te.placeholder((n // lanes, k // 4, lanes, 4), "int8", name="B_packed")
    r = te.reduce_axis((0, k), name="k")
    C = te.compute((m, n), lambda i, j: te.sum(
        A[i, r].astype("int32")
        * B[j // lanes, r // 4, j % lanes, r % 4].astype("int32"), axis=r), name="C")
    return te.create_prim_func([A, B, C])


def tensorize_matmul(sch, block, mr, vectors, lanes, intrin):
    """Register-block ``block`` (loops ``i, j, k``) and tensorize it with ``intrin``.

    Each ``mr x (vectors * lanes)`` block of C accumulates in registers (a
    ``local`` buffer) over the whole of k; inside it, one intrinsic call
    adds 4 products to each of ``lanes`` accumulators. The block's consumers
    (an epilogue fused after the product) are applied as the block is written out.
    """
    i, j, k = sch.get_loops(block)[-3:]
    io, ii = sch.split(i, [None, mr])
    jo, jv, ji = sch.split(j, [None, vectors, lanes])
    ko, ki = sch.split(k, [None, 4])
    sch.reorder(jo, io, ko, ii, jv, ji, ki)
    acc = sch.cache_write(block, 0, "local")
    while sch.get_consumers(acc):  # fold the epilogue into the write-out
        sch.reverse_compute_inline(sch.get_consumers(acc)[0])
    sch.reverse_compute_at(acc, io)
    sch.parallel(sch.fuse(*sch.get_loops(block)[:-6]))  # all loops above io
    sch.unroll(ii)
    sch.unroll(jv)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(block, ko)
    sch.tensorize(ji, intrin)


def largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is at most ``limit``."""
    from ..conv import largest_divisor as divisor

    return divisor(n, limit)


def matmul(m: int, n: int, k: int, isa_name: str = "avx2"):
    """Return a tensorized schedule of :func:`matmul_te` for ISA ``isa_name``.

    ``n`` must be a multiple of the ISA's lanes (8 or 16) and ``k`` of 4. The
    register block is the ISA's (:class:`Isa`), shrunk to divide ``m`` and ``n``.
    """
    from tvm import s_tir

    spec = isa(isa_name)
    sch = s_tir.Schedule(matmul_te(m, n, k, spec.lanes))
    mr = largest_divisor(m, spec.mr)
    vectors = largest_divisor(n // spec.lanes, spec.vectors)
    tensorize_matmul(sch, sch.get_sblock("C"), mr, vectors, spec.lanes,
                     intrinsic(isa_name))
    return sch
