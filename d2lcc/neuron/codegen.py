"""The book's NeuronCore kernels in TIRx, and NKI source generated from them by TVM.

TVM 0.27 has a Trainium backend (``tvm.backend.trn``, target kind ``trn``):
TIRx kernels written with the ``Tx.nki`` namespace (one call per NKI
instruction, under a ``tensorized_nki_instruction`` attribute) and buffers in
the ``trn.sbuf``/``trn.psum`` scopes compile with ``tir_pipeline="trn"`` to NKI
source, without Neuron hardware or compiler. This module builds three such
kernels, an elementwise add (:func:`add_kernel`), a tiled matmul with a bias and
an optional ReLU in its epilogue (:func:`tiled_matmul`, shown in the book,
checked by :func:`matmul_kernel`), and prints their NKI with :func:`generate`.
"""

from __future__ import annotations

from .. import checks

__teaching__ = ("tiled_matmul",)

#: SBUF/PSUM partitions: the first dimension of every on-chip tile.
P = 128


def tiled_matmul(m, k, n, tile_m=128, tile_n=512, bufs=2, relu=False):
    """TIRx kernel: C = AT.T @ B + bias (then ReLU) in tile_m x tile_n blocks."""
    from tvm.script import tirx as Tx

    kt, mi_n = k // P, tile_m // P

    @Tx.prim_func
    def kernel(AT: Tx.Buffer((k, m)), B: Tx.Buffer((k, n)), bias: Tx.Buffer((m, 1)),
               C: Tx.Buffer((m, n))):
        Tx.func_attr({"num_inputs": 3})
        Tx.device_entry()
        a_sb = Tx.alloc_buffer((P, bufs, tile_m), "float32", scope="trn.sbuf")
        b_sb = Tx.alloc_buffer((P, bufs, tile_n), "float32", scope="trn.sbuf")
        bias_sb = Tx.alloc_buffer((P, mi_n), "float32", scope="trn.sbuf")
        acc = Tx.alloc_buffer((mi_n, P, tile_n), "float32", scope="trn.psum")
        c_sb = Tx.alloc_buffer((P, bufs, tile_n), "float32", scope="trn.sbuf")
        for mb in range(m // tile_m):
            for mi in range(mi_n):  # one bias value per output row = per partition
                with Tx.attr(0, "tensorized_nki_instruction", 1):
                    for p in range(P):
                        Tx.nki.load(bias_sb[p, mi], bias[mb * tile_m + mi * P + p, 0])
            for nb in range(n // tile_n):
                for mi in range(mi_n):  # zero the PSUM accumulators
                    with Tx.attr(0, "tensorized_nki_instruction", 1):
                        for i, j in Tx.grid(P, tile_n):
                            Tx.nki.memset(acc[mi, i, j], Tx.float32(0))
                for kk in range(kt):  # DMA a K-slice of both operands into SBUF
                    with Tx.attr(0, "tensorized_nki_instruction", 1):
                        for p, j in Tx.grid(P, tile_m):
                            Tx.nki.load(a_sb[p, kk % bufs, j],
                                        AT[kk * P + p, mb * tile_m + j])
                    with Tx.attr(0, "tensorized_nki_instruction", 1):
                        for p, j in Tx.grid(P, tile_n):
                            Tx.nki.load(b_sb[p, kk % bufs, j],
                                        B[kk * P + p, nb * tile_n + j])
                    for mi in range(mi_n):  # 128 x tile_n products into PSUM
                        with Tx.attr(0, "tensorized_nki_instruction", 1):
                            for i, j, p in Tx.grid(P, tile_n, P):
                                Tx.nki.matmul(acc[mi, i, j],
                                              a_sb[p, kk % bufs, mi * P + i],
                                              b_sb[p, kk % bufs, j], True)
                for mi in range(mi_n):  # epilogue on the vector engine, then store
                    with Tx.attr(0, "tensorized_nki_instruction", 1):
                        for i, j in Tx.grid(P, tile_n):
                            if relu:  # max(acc + bias, 0) in one instruction
                                Tx.nki.scalar_tensor_scalar(
                                    c_sb[i, mi % bufs, j], acc[mi, i, j],
                                    bias_sb[i, mi], Tx.float32(0), "add", "max")
                            else:
                                Tx.nki.tensorscalar(c_sb[i, mi % bufs, j],
                                                    acc[mi, i, j], bias_sb[i, mi],
                                                    "add")
                    with Tx.attr(0, "tensorized_nki_instruction", 1):
                        for i, j in Tx.grid(P, tile_n):
                            Tx.nki.store(C[mb * tile_m + mi * P + i, nb * tile_n + j],
                                         c_sb[i, mi % bufs, j])

    return kernel


def matmul_kernel(m: int, k: int, n: int, *, tile_m: int = 128, tile_n: int = 512,
                  bufs: int = 2, relu: bool = False):
    """Checked :func:`tiled_matmul`: TIRx PrimFunc of ``C = AT.T @ B + bias`` (ReLU).

    ``m``, ``k`` are multiples of 128; ``tile_m`` a multiple of 128 dividing
    ``m``; ``tile_n`` at most 512 (one PSUM bank of float32) dividing ``n``;
    ``bufs`` (1 or 2) is the number of SBUF buffers per operand: 2 is double
    buffering. Whether the tiles fit SBUF/PSUM is for the model to say.
    """
    func = "codegen.matmul_kernel"
    for name, value in (("m", m), ("k", k), ("n", n)):
        checks.positive_int(func, name, value, maximum=1 << 20)
    tile_m = checks.positive_int(func, "tile_m", tile_m, maximum=1 << 20)
    tile_n = checks.positive_int(func, "tile_n", tile_n, maximum=512)
    checks.one_of(func, "bufs", bufs, [1, 2])
    checks.boolean(func, "relu", relu)
    checks.multiple_of(func, "k", k, P, "partitions")
    checks.multiple_of(func, "tile_m", tile_m, P, "partitions")
    checks.multiple_of(func, "m", m, tile_m, "tile_m")
    checks.multiple_of(func, "n", n, tile_n, "tile_n")
    return tiled_matmul(m, k, n, tile_m, tile_n, bufs, relu)


def add_kernel(rows: int, cols: int, *, tile: int = 512):
    """TIRx PrimFunc of ``C = A + B`` (``[rows, cols]`` float32, [128, tile] tiles)."""
    func = "codegen.add_kernel"
    rows = checks.positive_int(func, "rows", rows, maximum=1 << 20)
    cols = checks.positive_int(func, "cols", cols, maximum=1 << 20)
    tile = checks.positive_int(func, "tile", tile, maximum=1 << 20)
    checks.multiple_of(func, "rows", rows, P, "partitions")
    checks.multiple_of(func, "cols", cols, tile, "tile")
    from tvm.script import tirx as Tx

    @Tx.prim_func
    def kernel(A: Tx.Buffer((rows, cols)), B: Tx.Buffer((rows, cols)),
               C: Tx.Buffer((rows, cols))):
        Tx.func_attr({"num_inputs": 2})
        Tx.device_entry()
        a = Tx.alloc_buffer((P, tile), "float32", scope="trn.sbuf")
        b = Tx.alloc_buffer((P, tile), "float32", scope="trn.sbuf")
        c = Tx.alloc_buffer((P, tile), "float32", scope="trn.sbuf")
        for r in range(rows // P):
            for t in range(cols // tile):
                with Tx.attr(0, "tensorized_nki_instruction", 1):
                    for p, j in Tx.grid(P, tile):
                        Tx.nki.load(a[p, j], A[r * P + p, t * tile + j])
                with Tx.attr(0, "tensorized_nki_instruction", 1):
                    for p, j in Tx.grid(P, tile):
                        Tx.nki.load(b[p, j], B[r * P + p, t * tile + j])
                with Tx.attr(0, "tensorized_nki_instruction", 1):
                    for p, j in Tx.grid(P, tile):
                        Tx.nki.tensortensor(c[p, j], a[p, j], b[p, j], "add")
                with Tx.attr(0, "tensorized_nki_instruction", 1):
                    for p, j in Tx.grid(P, tile):
                        Tx.nki.store(C[r * P + p, t * tile + j], c[p, j])

    return kernel


def generate(func) -> str:
    """NKI source of a TIRx PrimFunc, from TVM's ``trn`` backend (``tir_pipeline``)."""
    import tvm

    from .. import target

    if not isinstance(func, tvm.tirx.PrimFunc):
        raise TypeError(f"codegen.generate: func must be a tvm.tirx.PrimFunc, got "
                        f"{type(func).__name__}")
    with target.named("trainium"):
        exe = tvm.compile(tvm.IRModule({"main": func}), tir_pipeline="trn")
    return exe.mod.imports[0].inspect_source()
