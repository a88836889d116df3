"""int8 matmul with Arm's dot-product instructions ``sdot`` and ``udot``.

The dot-product extension of Armv8.2-A (Neoverse N1, hence AWS Graviton2, has
it; the Cortex-A72 of the first Graviton does not) adds ``sdot`` and ``udot``:
each of the four 32-bit lanes of the destination adds the dot product of four
int8 (uint8) pairs, 16 multiply-adds per instruction. This module writes that
instruction as a TensorIR *tensor intrinsic* (:func:`neon_dot_4x4`: a
description of ``C[4] += A[4] . B[4, 4]`` and its implementation with the LLVM
intrinsic), the int8 matmul with ``B`` packed in 4x4 tiles that match it
(:func:`matmul_int8_arm_te`), and the schedule that tensorizes the product
(:func:`tensorize_neon_dot`). :func:`matmul` checks its arguments and chains
them.

TVM 0.27 ships the same intrinsic as ``dot_4x4_i8i8s32_sdot`` in
``tvm.s_tir.tensor_intrin.arm_cpu``, but importing that module imports every
tensor intrinsic TVM has (about 35 s of CPU); ours is registered on first use.
"""

from __future__ import annotations

from .. import checks

__teaching__ = ("neon_dot_4x4", "matmul_int8_arm_te", "tensorize_neon_dot")

#: The instruction per input dtype, and the name we register its intrinsic under.
INSTRUCTIONS = {"int8": "sdot", "uint8": "udot"}
INTRINSICS = {"int8": "d2lcc_arm_sdot_4x4", "uint8": "d2lcc_arm_udot_4x4"}
#: Largest ``m`` and ``n`` (TVM indexes with int32).
MAX_MN = 1 << 15
#: Largest ``k`` whose int32 sums cannot overflow: ``k * 128 * 128 < 2**31``
#: for int8 and ``k * 255 * 255 < 2**31`` for uint8 (rounded down to 4).
MAX_K = {"int8": (2**31 - 1) // (128 * 128) // 4 * 4,
         "uint8": (2**31 - 1) // (255 * 255) // 4 * 4}


# --- the teaching functions, as the book shows them ---------------------------

def neon_dot_4x4(dtype="int8"):
    """Return the (description, implementation) of ``C[4] += A[4] . B[4, 4]``.

    ``C[j] += sum_k A[k] * B[j, k]`` in int32: one ``sdot`` (int8) or ``udot``
    (uint8), whose 16-byte second operand is A's 4 bytes repeated 4 times.
    """
    from tvm.script import tirx as T

    x4, x16 = f"{dtype}x4", f"{dtype}x16"
    llvm_name = f"llvm.aarch64.neon.{INSTRUCTIONS[dtype]}.v4i32.v16i8"

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle):
        A = T.match_buffer(a, (4,), dtype, offset_factor=1)
        B = T.match_buffer(b, (4, 4), dtype, offset_factor=1)
        C = T.match_buffer(c, (4,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:4], A[0:4], B[0:4, 0:4])
            T.writes(C[0:4])
            for j, k in T.grid(4, 4):
                with T.sblock("update"):
                    vj, vk = T.axis.remap("SR", [j, k])
                    C[vj] += T.cast(A[vk], "int32") * T.cast(B[vj, vk], "int32")

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle):
        A = T.match_buffer(a, (4,), dtype, offset_factor=1)
        B = T.match_buffer(b, (4, 4), dtype, offset_factor=1)
        C = T.match_buffer(c, (4,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:4], A[0:4], B[0:4, 0:4])
            T.writes(C[0:4])
            a_word = T.reinterpret(A.vload([0], x4), dtype="int32")  # 4 bytes
            a_bytes = T.reinterpret(T.broadcast(a_word, 4), dtype=x16)
            C[T.ramp(0, 1, 4)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id(llvm_name), C.vload([0], "int32x4"),
                a_bytes, B.vload([0, 0], x16), dtype="int32x4")

    return desc, impl


def matmul_int8_arm_te(m, n, k, dtype="int8"):
    """Return the PrimFunc of ``C = A @ B`` (``dtype`` in, int32 out), B packed 4x4.

    ``B_packed[n/4, k/4, 4, 4]`` holds, for 4 columns and 4 values of k, the
    4x4 tile the intrinsic reads: ``B_packed[jo, ko, ji, ki] = B[4ko+ki, 4jo+ji]``.
    """
    from tvm import te

    A = te.placeholder((m, k), dtype, name="A")
    B = te.placeholder((k, n), dtype, name="B")
    Bp = te.compute((n // 4, k // 4, 4, 4),
                    lambda jo, ko, ji, ki: B[ko * 4 + ki, jo * 4 + ji], name="B_packed")
    r = te.reduce_axis((0, k), name="k")
    C = te.compute((m, n), lambda i, j: te.sum(
        A[i, r].astype("int32") * Bp[j // 4, r // 4, j % 4, r % 4].astype("int32"),
        axis=r), name="C")
    return te.create_prim_func([A, B, C])


def tensorize_neon_dot(sch, mr, nr, intrin):
    """An ``mr x nr`` block of C per step of k; each 4 columns x 4 k: one ``intrin``."""
    i, j, k = sch.get_loops("C")
    io, ii = sch.split(i, [None, mr])
    jo, jn, ji = sch.split(j, [None, nr // 4, 4])
    ko, ki = sch.split(k, [None, 4])
    sch.reorder(io, jo, ko, ii, jn, ji, ki)
    sch.parallel(io)
    init = sch.decompose_reduction("C", ko)  # C = 0 before the k loop
    sch.vectorize(sch.get_loops(init)[-1])
    sch.tensorize(ji, intrin)  # the loops ji, ki become one call of intrin
    sch.unroll(ii)
    sch.unroll(jn)
    pack = sch.get_loops("B_packed")
    sch.parallel(pack[0])
    sch.vectorize(pack[-1])


# --- the public functions: check the arguments, then run the steps ------------

def register(dtype: str = "int8") -> str:
    """Register :func:`neon_dot_4x4` for ``dtype`` (once) and return its name."""
    import tvm

    dtype = checks.one_of("int8.arm.register", "dtype", dtype, sorted(INSTRUCTIONS))
    name = INTRINSICS[dtype]
    if tvm.s_tir.TensorIntrin.get(name, allow_missing=True) is None:
        tvm.s_tir.TensorIntrin.register(name, *neon_dot_4x4(dtype))
    return name


def matmul(m: int, n: int, k: int, dtype: str = "int8", mr: int = 4, nr: int = 16):
    """Return the schedule of an int8 (or uint8) matmul tensorized with sdot (udot).

    ``A[m, k] @ B[k, n]`` accumulates in int32; ``mr`` must divide ``m``,
    ``nr`` (a multiple of 4) must divide ``n``, 4 must divide ``k``, and ``k``
    is at most ``MAX_K[dtype]`` so that no int32 sum can overflow. Compile
    it for an Arm target with the dot-product extension, e.g.
    :func:`d2lcc.target.graviton2`.
    """
    import tvm

    func = "int8.arm.matmul"
    dtype = checks.one_of(func, "dtype", dtype, sorted(INSTRUCTIONS))
    m = checks.positive_int(func, "m", m, maximum=MAX_MN)
    n = checks.positive_int(func, "n", n, maximum=MAX_MN)
    k = checks.positive_int(func, "k", k, maximum=MAX_K[dtype])
    mr = checks.positive_int(func, "mr", mr, maximum=64)
    nr = checks.positive_int(func, "nr", nr, maximum=256)
    checks.multiple_of(func, "nr", nr, 4, "4 (the lanes of sdot)")
    checks.multiple_of(func, "m", m, mr, "mr")
    checks.multiple_of(func, "n", n, nr, "nr")
    checks.multiple_of(func, "k", k, 4, "4 (the bytes of one sdot lane)")
    sch = tvm.s_tir.Schedule(matmul_int8_arm_te(m, n, k, dtype))
    tensorize_neon_dot(sch, mr, nr, register(dtype))
    return sch


def build(sch, target=None):
    """Compile a schedule from :func:`matmul` for an Arm target with ``sdot``.

    ``target`` (default :func:`d2lcc.target.graviton2`) must be AArch64 with
    the dot-product extension: LLVM cannot select ``sdot`` elsewhere and aborts
    the whole process, so a target without it raises ``ValueError`` here.
    """
    import tvm

    from .. import target as targets

    func = "int8.arm.build"
    if not isinstance(sch, (tvm.s_tir.Schedule, tvm.IRModule)):
        raise TypeError(f"{func}: sch must be a tvm.s_tir.Schedule or an IRModule, "
                        f"got {type(sch).__name__}")
    target = targets.graviton2() if target is None else targets.resolve(target, func)
    if not target.features.is_aarch64 or not target.features.has_dotprod:
        cpu = target.attrs.get("mcpu", "generic")
        raise ValueError(f"{func}: target (kind {target.kind.name}, mcpu={cpu!s}) "
                         "lacks the Arm dot-product extension; LLVM would abort "
                         "compiling sdot for it (use an AArch64 mcpu that has it, "
                         "e.g. neoverse-n1, or mattr ['+dotprod'])")
    mod = sch.mod if isinstance(sch, tvm.s_tir.Schedule) else sch
    return tvm.compile(mod, target=target)
