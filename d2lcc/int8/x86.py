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

from .. import checks, ir
from ..conv import divisor_tiles, inline_blocks, largest_divisor

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
    (an epilogue fused after the product) are applied as the block is written
    out, as far as :func:`fold_epilogue` can.
    """
    i, j, k = sch.get_loops(block)[-3:]
    io, ii = sch.split(i, [None, mr])
    jo, jv, ji = sch.split(j, [None, vectors, lanes])
    ko, ki = sch.split(k, [None, 4])
    sch.reorder(jo, io, ko, ii, jv, ji, ki)
    acc = sch.cache_write(block, 0, "local")
    fold_epilogue(sch, acc)  # e.g. requantize, applied as C is written out
    sch.reverse_compute_at(acc, io)
    sch.parallel(sch.fuse(*sch.get_loops(block)[:-6]))  # all loops above io
    sch.unroll(ii)
    sch.unroll(jv)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(block, ko)
    sch.tensorize(ji, intrin)


def matmul(m: int, n: int, k: int, isa_name: str = "avx2"):
    """Return a tensorized schedule of :func:`matmul_te` for ISA ``isa_name``.

    ``n`` must be a multiple of the ISA's lanes (8 or 16) and ``k`` of 4. The
    register block is the ISA's (:class:`Isa`), shrunk to divide ``m`` and ``n``.
    """
    from tvm import s_tir

    spec = isa(checks.one_of("int8.x86.matmul", "isa_name", isa_name, ISAS))
    sch = s_tir.Schedule(matmul_te(m, n, k, spec.lanes))
    mr = largest_divisor(m, spec.mr)
    vectors = largest_divisor(n // spec.lanes, spec.vectors)
    tensorize_matmul(sch, sch.get_sblock("C"), mr, vectors, spec.lanes,
                     intrinsic(isa_name))
    return sch


# --- inside a whole model: legalization and scheduling --------------------------

#: The product blocks that :func:`legalize_map`'s rules write and
#: :func:`schedule_module` tensorizes.
MATMUL_BLOCK, CONV_BLOCK = "int8_matmul", "int8_conv2d"


def matmul_compute(data, weight):
    """TE stages of ``data @ weight``: ``data`` uint8 ``[M, K]``, weight packed.

    ``weight`` is ``[N/lanes, K4/4, lanes, 4]`` (:func:`pack_weight`); when K is
    not a multiple of 4, a stage ``data_pad`` appends zero columns.
    """
    from tvm import te

    func = "int8.x86.matmul_compute"
    m, k = _te_tensor(func, "data", data, 2, "uint8")
    blocks, k4, lanes, four = _te_tensor(func, "weight", weight, 4, "int8")
    if four != 4 or k4 != -(-k // 4):
        raise ValueError(f"{func}: weight {[blocks, k4, lanes, four]} is not data's "
                         f"K={k} packed by pack_weight")
    if k4 * 4 != k:
        data = te.compute((m, k4 * 4), lambda i, c: te.if_then_else(
            c < k, data[i, te.min(c, k - 1)], te.const(0, "uint8")), name="data_pad")
    r = te.reduce_axis((0, k4 * 4), name="k")
    return te.compute((m, blocks * lanes), lambda i, j: te.sum(
        data[i, r].astype("int32")
        * weight[j // lanes, r // 4, j % lanes, r % 4].astype("int32"), axis=r),
        name=MATMUL_BLOCK)


def conv2d_compute(data, weight, strides, padding, dilation):
    """TE stages of an int8 convolution on a packed weight, the product block last
    but for the layout change.

    ``weight`` is int8 ``[O/lanes, C4/4, KH, KW, lanes, 4]``
    (:func:`pack_conv_weight`); ``padding`` is (top, left, bottom, right).
    ``data`` is uint8, either packed ``[N, C/bc, H, W, bc]`` (``bc`` a multiple
    of 4; the result is int32 ``[N, O/lanes, OH, OW, lanes]``), or NCHW: then a
    stage ``pack`` lays it out as ``[N, C4/4, H, W, 4]`` and a stage ``unpack``
    returns the result in NCHW. A weight with fewer channels than the data
    (``C4 < C``) reads only the data's first ``C4``: the convolution of a
    first layer whose 3 channels were padded to a block skips the padding.
    """
    from tvm import te

    func = "int8.x86.conv2d_compute"
    plain = isinstance(data, te.Tensor) and len(data.shape) == 4
    if plain:
        n, c, h, w = _te_tensor(func, "data", data, 4, "uint8")
        cb, bc = -(-c // 4), 4
    else:
        n, cb, h, w, bc = _te_tensor(func, "data", data, 5, "uint8")
        checks.multiple_of(func, "data's channel block", bc, 4, "4")
    ob, groups, kh, kw, lanes, four = _te_tensor(func, "weight", weight, 6, "int8")
    if four != 4 or groups * 4 > cb * bc:
        raise ValueError(f"{func}: weight {list(weight.shape)} does not fit data "
                         f"{list(data.shape)} (see pack_conv_weight)")
    sh, sw = _ints(func, "strides", strides, 2, 1)
    dh, dw = _ints(func, "dilation", dilation, 2, 1)
    top, left, bottom, right = _ints(func, "padding", padding, 4, 0)
    if min(h + top + bottom - dh * (kh - 1), w + left + right - dw * (kw - 1)) < 1:
        raise ValueError(f"{func}: the {kh}x{kw} kernel does not fit the padded data")
    if plain or top or left or bottom or right:
        def pad_value(b, g, i, j, x):
            inside = te.all(i >= top, i < h + top, j >= left, j < w + left)
            i, j = te.min(te.max(i - top, 0), h - 1), te.min(te.max(j - left, 0), w - 1)
            if plain:
                inside = te.all(inside, g * 4 + x < c)
                value = data[b, te.min(g * 4 + x, c - 1), i, j]
            else:
                value = data[b, g, i, j, x]
            return te.if_then_else(inside, value, te.const(0, "uint8"))

        data = te.compute((n, cb, h + top + bottom, w + left + right, bc), pad_value,
                          name="pack" if plain else "pad")
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    per = bc // 4  # groups of 4 channels per channel block of the data
    rg, rq = te.reduce_axis((0, groups), "rg"), te.reduce_axis((0, 4), "rq")
    ri, rj = te.reduce_axis((0, kh), "ri"), te.reduce_axis((0, kw), "rj")
    out = te.compute(
        (n, ob, oh, ow, lanes),
        lambda b, o, y, x, l: te.sum(
            data[b, rg // per, y * sh + ri * dh, x * sw + rj * dw, rg % per * 4 + rq]
            .astype("int32") * weight[o, rg, ri, rj, l, rq].astype("int32"),
            axis=[rg, ri, rj, rq]),
        name=CONV_BLOCK)
    if not plain:
        return out
    return te.compute((n, ob * lanes, oh, ow),
                      lambda b, o, y, x: out[b, o // lanes, y, x, o % lanes],
                      name="unpack")


def _te_tensor(func: str, name: str, value: Any, ndim: int, dtype: str) -> list:
    """The static shape of a TE tensor of ``ndim`` dimensions and ``dtype``."""
    from tvm import te, tirx

    if not isinstance(value, te.Tensor):
        raise TypeError(f"{func}: {name} must be a te.Tensor, "
                        f"got {type(value).__name__}")
    if len(value.shape) != ndim or str(value.dtype) != dtype or not all(
            isinstance(d, (int, tirx.IntImm)) for d in value.shape):
        raise ValueError(f"{func}: {name} must be a static {ndim}-D {dtype} tensor, "
                         f"got {list(value.shape)} {value.dtype}")
    return [int(d) for d in value.shape]


def _ints(func: str, name: str, value: Any, size: int, minimum: int) -> list[int]:
    from tvm import tirx

    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") \
            or len(value) != size:
        raise TypeError(f"{func}: {name} must be a list of {size} ints, "
                        f"got {value!r}")
    # call_te hands lists over as TVM arrays of IntImm
    values = [int(v.value) if isinstance(v, tirx.IntImm) else v for v in value]
    return [checks.integer(func, f"{name}[{i}]", v, minimum=minimum,
                           maximum=MAX_SIZE) for i, v in enumerate(values)]


def pack_conv_weight(w: np.ndarray, lanes: int) -> np.ndarray:
    """Pack an int8 ``[O, C, KH, KW]`` weight to ``[O/lanes, C4/4, KH, KW, lanes, 4]``.

    ``C`` is padded with zero channels to a multiple of 4; ``O`` must be a
    multiple of ``lanes``.
    """
    func = "int8.x86.pack_conv_weight"
    w = checks.array(func, "w", w, ndim=4, dtypes=["int8"])
    lanes = checks.one_of(func, "lanes", lanes, [8, 16])
    o, c, kh, kw = w.shape
    checks.multiple_of(func, "w.shape[0]", o, lanes, "lanes")
    w = np.pad(w, [(0, 0), (0, -c % 4), (0, 0), (0, 0)])
    w = w.reshape(o // lanes, lanes, -1, 4, kh, kw).transpose(0, 2, 4, 5, 1, 3)
    return np.ascontiguousarray(w)


def used_channels(w: np.ndarray) -> int:
    """The input channels of an ``[O, C, KH, KW]`` weight worth multiplying.

    Up to the last channel with a nonzero weight, rounded up to a multiple of
    4 (one group of the dot product), and at most ``C``; at least 4.
    """
    w = checks.array("int8.x86.used_channels", "w", w, ndim=4)
    nonzero = np.flatnonzero(np.any(w != 0, axis=(0, 2, 3)))
    last = int(nonzero[-1]) + 1 if nonzero.size else 1
    return min(w.shape[1], max(4, -(-last // 4) * 4))


def _layout_blocks(data_layout: str, kernel_layout: str, out_layout: str):
    """``(bc, bo)`` of ``NCHW[bc]c``, ``OIHW[bc]i[bo]o``, ``NCHW[bo]c``; 0s for NCHW."""
    import re

    if (data_layout, kernel_layout, out_layout) == ("NCHW", "OIHW", "NCHW"):
        return 0, 0
    d = re.fullmatch(r"NCHW(\d+)c", data_layout)
    k = re.fullmatch(r"OIHW(\d+)i(\d+)o", kernel_layout)
    o = re.fullmatch(r"NCHW(\d+)c", out_layout)
    if d and k and o and d.group(1) == k.group(1) and k.group(2) == o.group(1):
        return int(d.group(1)), int(o.group(1))
    return None


def _is_int8_product(call, weight_ndim: int) -> bool:
    from tvm import tirx

    from ..qnn.params import constant_value

    data, weight = call.args[0], call.args[1]
    return (constant_value(weight) is not None and len(weight.ty.shape) == weight_ndim
            and str(data.ty.dtype) == "uint8" and str(weight.ty.dtype) == "int8"
            and str(call.attrs.out_dtype) == "int32"
            and all(isinstance(d, tirx.IntImm) for d in data.ty.shape))


def _legalize_matmul_rule(spec: Isa, fallback: Callable) -> Callable:
    def rule(bb, call):
        from tvm import relax

        from ..qnn.params import constant_value

        if not _is_int8_product(call, 2) or len(call.args[0].ty.shape) != 2:
            return fallback(bb, call)
        w = constant_value(call.args[1])
        if w.shape[1] % spec.lanes or (spec.name == "avx2" and not saturation_free(w)):
            return fallback(bb, call)
        packed = relax.const(pack_weight(w, spec.lanes))
        return bb.call_te(matmul_compute, call.args[0], packed,
                          primfunc_name_hint="int8_matmul")

    return rule


def _legalize_conv2d_rule(spec: Isa, fallback: Callable) -> Callable:
    def rule(bb, call):
        from tvm import relax

        from ..qnn.params import constant_value

        attrs = call.attrs
        blocks = _layout_blocks(str(attrs.data_layout), str(attrs.kernel_layout),
                                str(attrs.out_layout or attrs.data_layout))
        if (not _is_int8_product(call, 4 if blocks == (0, 0) else 6)
                or blocks is None or int(attrs.groups) != 1
                or blocks[0] % 4 or blocks[1] not in (0, spec.lanes)):
            return fallback(bb, call)
        w = constant_value(call.args[1])
        if blocks != (0, 0):  # OIHW[bc]i[bo]o back to OIHW
            w = w.transpose(0, 5, 1, 4, 2, 3).reshape(
                w.shape[0] * w.shape[5], w.shape[1] * w.shape[4], *w.shape[2:4])
        if w.shape[0] % spec.lanes or (spec.name == "avx2"
                                       and not saturation_free(w, axis=1)):
            return fallback(bb, call)
        w = w[:, :used_channels(w)]  # channels of zero weights need no products
        return bb.call_te(conv2d_compute, call.args[0], relax.const(pack_conv_weight(
            w, spec.lanes)), [int(s) for s in attrs.strides],
            [int(p) for p in attrs.padding], [int(d) for d in attrs.dilation],
            primfunc_name_hint="int8_conv2d")

    return rule


def legalize_map(target: Any = None, base: dict | None = None) -> dict:
    """Legalization rules for ``relax.matmul`` and ``relax.nn.conv2d``, for ``target``.

    Pass the result to ``relax.transform.LegalizeOps``. A call with uint8 data,
    a constant int8 weight and an int32 result (what :mod:`d2lcc.qnn` lowers
    quantized dense and conv2d layers to after ``LegalizeUint8Int8``) becomes a
    kernel (block :data:`MATMUL_BLOCK` or :data:`CONV_BLOCK`) on a weight
    packed at compile time. Convolutions may be in NCHW/OIHW or in a packed
    ``NCHW[x]c`` layout whose output block is the ISA's lanes; one group only.
    Every other call (including, on AVX2, a weight whose int16 pair sums could
    saturate: see :func:`saturation_free`) goes to ``base``'s rule for the
    operator, or TVM's own. With no int8 ISA in ``target``, the map is ``base``.
    """
    import tvm

    from .. import target as targets

    target = targets.resolve(target, "int8.x86.legalize_map")
    checks.legalize_rules("int8.x86.legalize_map", "base", base)
    rules = dict(base or {})
    name = isa_of(target)
    if name is None:
        return rules
    spec = isa(name)

    def fallback(op):
        return rules.get(op) or tvm.ir.Op.get(op).get_attr("FLegalize")

    rules["relax.matmul"] = _legalize_matmul_rule(spec, fallback("relax.matmul"))
    rules["relax.nn.conv2d"] = _legalize_conv2d_rule(spec,
                                                     fallback("relax.nn.conv2d"))
    return rules


def conv_tiles(width: int, blocks: int, isa_name: str) -> tuple[int, int]:
    """``(ow_tile, vectors)``: the register block of an int8 convolution's rows.

    As many accumulators as the ISA's register block holds (``mr * vectors``)
    over ``ow_tile`` pixels of a row (a divisor of ``width``) and ``vectors``
    blocks of output channels (a divisor of ``blocks``); among tiles with as
    many accumulators, the one closest to the ISA's own ``mr`` by ``vectors``
    shape. A row whose width has no divisor up to ``mr`` (Inception's 13-
    and 55-wide rows) then still fills the registers, with more channel
    blocks per pixel instead of one accumulator per weight vector.
    """
    func = "int8.x86.conv_tiles"
    width = checks.positive_int(func, "width", width)
    blocks = checks.positive_int(func, "blocks", blocks)
    spec = isa(checks.one_of(func, "isa_name", isa_name, ISAS))
    tiles = divisor_tiles(width, blocks, spec.mr * spec.vectors)
    return max(tiles, key=lambda t: (t[0] * t[1],
                                     min(t[0], spec.mr) * min(t[1], spec.vectors)))


def _tensorize_conv(sch, block, ow_tile, vectors, intrin):
    """Register-block a :func:`conv2d_compute` product and tensorize it.

    ``ow_tile`` output pixels of a row times ``vectors`` blocks of output
    channels accumulate in registers over the whole reduction; each
    intrinsic call adds 4 input channels' products to one vector.
    """
    b, o, y, x, lane, rg, ri, rj, rq = sch.get_loops(block)
    oo, ov = sch.split(o, [None, vectors])
    xo, xi = sch.split(x, [None, ow_tile])
    sch.reorder(b, oo, y, xo, rg, ri, rj, xi, ov, lane, rq)
    acc = sch.cache_write(block, 0, "local")
    fold_epilogue(sch, acc)
    sch.reverse_compute_at(acc, xo)
    sch.parallel(sch.fuse(b, oo, y))
    sch.unroll(xi)
    sch.unroll(ov)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(block, rg)
    sch.tensorize(lane, intrin)


def fold_epilogue(sch, block) -> None:
    """Fold the consumers of ``block`` into it, one by one, while that is exact.

    A consumer is folded (``reverse_compute_inline``) when it visits every
    element ``block`` writes once (element-wise steps, casts, layout changes);
    the first that does not (a slice, a reduction) stops the folding and stays
    a loop nest of its own.
    """
    from tvm.s_tir import Schedule
    from tvm.s_tir.schedule import ScheduleError

    func = "int8.x86.fold_epilogue"
    if not isinstance(sch, Schedule):
        raise TypeError(f"{func}: sch must be a tvm.s_tir.Schedule, "
                        f"got {type(sch).__name__}")
    block = _block(func, sch, block)
    while sch.get_consumers(block):
        consumer = sch.get_consumers(block)[0]
        written = sch.get(block).writes[0].source
        visits = 1
        for iv in sch.get(consumer).iter_vars:
            visits *= int(iv.dom.extent)
        if visits != int(np.prod([int(d) for d in written.shape])):
            return
        try:
            sch.reverse_compute_inline(consumer)
        except ScheduleError:
            return


def _block(func: str, sch, block):
    """``block`` as a block of ``sch``: a block, or the name of one."""
    from tvm.s_tir.schedule import SBlockRV, ScheduleError

    if isinstance(block, SBlockRV):
        return block
    checks.string(func, "block", block)
    try:
        return sch.get_sblock(block)
    except ScheduleError:
        raise ValueError(f"{func}: block={block!r} is not a block of sch") from None


def _parallel_rest(sch, keep) -> None:
    """Run every other top-level block's loops in parallel (pads, layouts)."""
    from tvm.s_tir.schedule import ScheduleError

    for block in sch.get_child_blocks(sch.get_sblock("root")):
        loops = sch.get_loops(block)
        if sch.get(block).name_hint in keep or not loops:
            continue
        try:
            sch.parallel(sch.fuse(*loops) if len(loops) > 1 else loops[0])
        except ScheduleError:  # a reduction: leave it serial
            pass


def _product_block(func) -> str | None:
    from tvm import s_tir

    from ..conv import has_block

    if ir.is_scheduled(func):
        return None
    sch = s_tir.Schedule(func)
    for name in (MATMUL_BLOCK, CONV_BLOCK):
        if has_block(sch, name):
            return name
    return None


def schedule_kernel(func, target: Any = None):
    """Return ``func`` (a kernel :func:`legalize_map` wrote, maybe fused) tensorized.

    The ISA comes from ``target`` (default: this machine); its lanes must be
    those the weight was packed for.
    """
    import tvm
    from tvm import s_tir

    from .. import target as targets

    name = "int8.x86.schedule_kernel"
    if not isinstance(func, tvm.tirx.PrimFunc) or _product_block(func) is None:
        raise TypeError(f"{name}: func must be an unscheduled PrimFunc with a block "
                        f"{MATMUL_BLOCK!r} or {CONV_BLOCK!r} (see legalize_map)")
    target = targets.resolve(target, name)
    isa_name = isa_of(target)
    if isa_name is None:
        raise ValueError(f"{name}: target={target} has no int8 dot-product ISA "
                         f"(one of {ISAS})")
    spec = isa(isa_name)
    sch = s_tir.Schedule(func)
    block_name = _product_block(func)
    block = sch.get_sblock(block_name)
    weight = sch.get(block).reads[1].source
    lanes = int(weight.shape[-2])
    if lanes != spec.lanes:
        raise ValueError(f"{name}: the weight was packed for {lanes} lanes, "
                         f"target's {isa_name} has {spec.lanes}")
    extents = [int(sch.get(loop).extent) for loop in sch.get_loops(block)]
    # What fusion put beside the product (zero-point terms, requantization
    # steps) then reads only inputs and the product: its epilogue.
    inline_blocks(sch, {block_name, "pack", "pad", "data_pad", "unpack"})
    if block_name == MATMUL_BLOCK:
        tensorize_matmul(sch, block, largest_divisor(extents[0], spec.mr),
                         largest_divisor(extents[1] // lanes, spec.vectors), lanes,
                         intrinsic(isa_name))
    else:
        _tensorize_conv(sch, block, *conv_tiles(extents[3], extents[1], isa_name),
                        intrinsic(isa_name))
    _parallel_rest(sch, {block_name, block_name + "_local"})
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def schedule_module(mod: Any, target: Any = None):
    """Return ``mod`` with :func:`schedule_kernel` applied to every int8 kernel.

    Kernels are those :func:`legalize_map`'s rules wrote (after fusion they may
    carry an epilogue: the zero-point terms and requantization). Other
    functions are left as they are.
    """
    import tvm

    from .. import target as targets

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"int8.x86.schedule_module: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    target = targets.resolve(target, "int8.x86.schedule_module")
    updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gv, func in mod.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc) and _product_block(func):
            updated[gv] = schedule_kernel(func, target)
    return updated
