"""An int8 matrix product on Intel AMX tiles: ``tdpbusd`` on 16 x 64-byte tiles.

Advanced Matrix Extensions (AMX, Sapphire Rapids and later) add eight tile
registers ``tmm0``-``tmm7`` of up to 16 rows of 64 bytes, and ``tdpbusd``,
which multiplies a 16 x 64 tile of uint8 by a 16 x 64 tile of int8 (64 x 16
in groups of 4 rows, the layout of ``vpdpbusd``) into a 16 x 16 tile of
int32: 16384 multiply-adds in one instruction :cite:`Intel.SDM.2023`.

TVM 0.27 ships no AMX tensor intrinsic, so :func:`matmul_func` writes the
kernel directly in TIRx with LLVM's AMX intrinsics, whose tile operands are
immediate register numbers: ``llvm.x86.ldtilecfg`` (the tile shapes),
``llvm.x86.tilezero``, ``llvm.x86.tileloadd64`` (rows of a tile from memory
with a stride), ``llvm.x86.tdpbusd``, ``llvm.x86.tilestored64`` and
``llvm.x86.tilerelease``. Each thread configures its tiles itself.

The weight is packed as for AVX-512 VNNI, ``[N/16, K/4, 16, 4]``
(:func:`d2lcc.int8.x86.pack_weight` with 16 lanes): 16 consecutive rows of
one column block are exactly a ``tdpbusd`` weight tile.

Linux gives a process the 8 KiB of tile state only on request:
:func:`request_permission` makes the ``arch_prctl(ARCH_REQ_XCOMP_PERM,
XFEATURE_XTILEDATA)`` system call; without it the first tile instruction
kills the process. Compiling works anywhere (for a target with ``amx-int8``,
such as ``d2lcc.target.named("sapphirerapids")``); running needs an AMX CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import checks

__teaching__ = ("matmul_func",)

#: Rows and bytes per row of every tile the kernel uses.
TILE_ROWS, TILE_BYTES = 16, 64
#: Rows and columns of C per block: 2 x 2 accumulator tiles.
BLOCK = 2 * TILE_ROWS
#: K per step: one tile of A holds 64 uint8 of each row.
K_STEP = TILE_BYTES
#: Largest matrix side the builder accepts (int32 indexing).
MAX_SIZE = 1 << 15

# Linux's arch_prctl system call and its request for the AMX tile data state.
SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 158, 0x1023, 18


# Same code as d2lcc.int8.amx.matmul_func; edit it here and re-run.
def matmul_func(m, n, k, parallel=True):
    """TIRx of ``C = A @ B`` on AMX: 2 x 2 accumulator tiles per 32 x 32 block of C.

    ``A`` uint8 ``[m, k]``, ``B`` int8 packed ``[n/16, k/4, 16, 4]``, ``C`` int32;
    tiles 0-3 accumulate, 4-5 hold A, 6-7 hold B, all 16 rows of 64 bytes.
    """
    from tvm.script import tirx as T

    def amx(name, *args):  # one AMX instruction; tile numbers are int8 immediates
        return T.evaluate(T.call_llvm_intrin("void", "llvm.x86." + name, *args))

    loop = T.parallel if parallel else T.serial

    @T.prim_func
    def main(A: T.Buffer((m, k), "uint8"),
             B: T.Buffer((n // 16, k // 4, 16, 4), "int8"),
             C: T.Buffer((m, n), "int32")):
        T.func_attr({"tirx.noalias": True})
        for ib in loop(m // 32):
            cfg = T.alloc_buffer((64,), "uint8")  # palette 1, then rows/bytes per tile
            for t in range(64):
                cfg[t] = T.uint8(0)
            cfg[0] = T.uint8(1)
            for t in range(8):
                cfg[16 + 2 * t] = T.uint8(64)  # bytes per row (16-bit field)
                cfg[48 + t] = T.uint8(16)  # rows
            amx("ldtilecfg", T.address_of(cfg[0]))
            for jb in range(n // 32):
                for t in T.unroll(4):
                    amx("tilezero", T.int8(t))
                for kb in range(k // 64):
                    for r in T.unroll(2):
                        amx("tileloadd64", T.int8(4 + r),
                            T.address_of(A[ib * 32 + r * 16, kb * 64]), T.int64(k))
                        amx("tileloadd64", T.int8(6 + r),
                            T.address_of(B[jb * 2 + r, kb * 16, 0, 0]), T.int64(64))
                    for r in T.unroll(2):
                        for c in T.unroll(2):
                            amx("tdpbusd", T.int8(2 * r + c), T.int8(4 + r),
                                T.int8(6 + c))
                for r in T.unroll(2):
                    for c in T.unroll(2):
                        amx("tilestored64", T.int8(2 * r + c),
                            T.address_of(C[ib * 32 + r * 16, jb * 32 + c * 16]),
                            T.int64(4 * n))
            amx("tilerelease")

    return main


def matmul(m: int, n: int, k: int, parallel: bool = True):
    """The IRModule of :func:`matmul_func`, ready for ``tvm.compile``.

    ``m`` and ``n`` must be multiples of 32 (2 x 2 tiles of 16 rows or
    columns), ``k`` of 64 (the bytes in a tile row).
    """
    import tvm

    func = "int8.amx.matmul"
    m, n, k = (checks.positive_int(func, name, v, maximum=MAX_SIZE)
               for name, v in (("m", m), ("n", n), ("k", k)))
    checks.multiple_of(func, "m", m, BLOCK, str(BLOCK))
    checks.multiple_of(func, "n", n, BLOCK, str(BLOCK))
    checks.multiple_of(func, "k", k, K_STEP, str(K_STEP))
    parallel = checks.boolean(func, "parallel", parallel)
    return tvm.IRModule({"main": matmul_func(m, n, k, parallel)})


def supports(target: Any = None) -> bool:
    """Whether LLVM ``target`` (default: this machine) has AMX int8 (``amx-int8``)."""
    from tvm.target import codegen

    from .. import target as targets

    target = targets.resolve(target, "int8.amx.supports")
    if str(target.kind.name) != "llvm":
        return False
    mtriple = str(target.attrs.get("mtriple", "")) if target.attrs else ""
    if mtriple and not mtriple.startswith("x86_64"):
        return False
    return bool(codegen.target_has_features("amx-int8", target))


def request_permission() -> bool:
    """Ask Linux for this process's AMX tile state; return whether it was granted.

    Makes ``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`` (Linux 5.16
    and later). Returns False on other systems, on CPUs without AMX and on
    kernels that refuse; asking again after a grant is harmless.
    """
    import ctypes
    import platform
    import sys

    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = (SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
    return libc.syscall(*map(ctypes.c_long, args)) == 0


def multiply(a: np.ndarray, b: np.ndarray, parallel: bool = True) -> np.ndarray:
    """``a @ b`` in int32 on this CPU's AMX unit: uint8 ``a [m, k]``, int8 ``b [k, n]``.

    Pads the sides with zeros to whole tiles, compiles :func:`matmul` for this
    machine, packs ``b`` and runs the kernel.
    Raises ``RuntimeError`` where the CPU has no AMX int8 or Linux refuses the
    tile state (compile for ``d2lcc.target.named("sapphirerapids")`` and read
    the assembly instead).
    """
    import tvm

    from .. import target as targets
    from ..machine import env
    from .x86 import pack_weight

    func = "int8.amx.multiply"
    a = checks.array(func, "a", a, ndim=2, dtypes=["uint8"], nonempty=True)
    b = checks.array(func, "b", b, ndim=2, dtypes=["int8"], nonempty=True)
    parallel = checks.boolean(func, "parallel", parallel)
    (m, k), n = a.shape, b.shape[1]
    if b.shape[0] != k:
        raise ValueError(f"{func}: a is {list(a.shape)} and b is {list(b.shape)}; "
                         "a's columns must equal b's rows")
    if max(m, n, k) > MAX_SIZE:
        raise ValueError(f"{func}: sides {[m, k, n]} must be <= {MAX_SIZE}")
    host = targets.host()
    if not env().has("amx_int8") or not supports(host):
        raise RuntimeError(f"{func}: this CPU has no AMX int8 (amx_int8); compile "
                           "int8.amx.matmul for another target and inspect it")
    if not request_permission():
        raise RuntimeError(f"{func}: Linux refused the AMX tile state (arch_prctl "
                           "ARCH_REQ_XCOMP_PERM); a kernel >= 5.16 is needed")
    # zero rows and columns add nothing: pad to whole blocks and tile rows
    mp, np_, kp = (-(-x // step) * step for x, step in
                   ((m, BLOCK), (n, BLOCK), (k, K_STEP)))
    a_pad = np.zeros((mp, kp), np.uint8)
    a_pad[:m, :k] = a
    b_pad = np.zeros((kp, np_), np.int8)
    b_pad[:k, :n] = b
    lib = tvm.compile(matmul(mp, np_, kp, parallel), target=host)
    c = tvm.runtime.tensor(np.zeros((mp, np_), np.int32))
    lib["main"](tvm.runtime.tensor(a_pad), tvm.runtime.tensor(pack_weight(b_pad, 16)),
                c)
    return c.numpy()[:m, :n]
