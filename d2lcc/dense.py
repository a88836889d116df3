"""Dense layers inside a whole network: a batch of rows times a constant weight.

A dense (fully connected) layer multiplies an ``[M, K]`` activation by a
constant ``[K, N]`` weight, then adds a bias and often applies ReLU. The
operator chapter's micro-kernel (:mod:`d2lcc.matmul`, section
:numref:`sec_operators_matmul`) makes such a product fast for square matrices
it builds itself; here the same kernel serves any dense layer of a network,
in two steps, as :mod:`d2lcc.nchwc` does for convolutions:

1. :func:`legalize_map`: a ``relax.matmul`` of a float32 ``[M, K]`` activation
   (``M > 1``) by a constant float32 ``[K, N]`` weight becomes the TensorIR
   stages of :func:`dense_compute`. The weight is packed at compile time into
   ``[ceil(N/nr), K, nr]`` panels (:func:`pack_weight`, zero columns appended);
   the activation is packed at run time into ``[ceil(M/mr), K, mr]`` (zero rows
   appended). The product fills a padded ``[M', N']`` block that a last stage
   crops to ``[M, N]``. After fusion the kernel also carries its epilogue (bias,
   ReLU, casts).
2. :func:`schedule_module`: each such kernel gets the micro-kernel's schedule:
   an ``mr x nr`` block of the result accumulates in vector registers over the
   whole of K, blocks of rows and columns run in parallel, and the crop and the
   epilogue are applied as the accumulators are written out.

A single row (``M = 1``) is left to the rule in ``base`` or TVM's own, so that
:func:`d2lcc.compiler.schedule_row_times_kn` schedules it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import checks, ir
from . import target as targets

#: Names of the blocks :func:`dense_compute` writes: the run-time packing of the
#: activation, the padded product and the crop to the true shape.
PACK_BLOCK, PRODUCT_BLOCK, CROP_BLOCK = "dense_a_packed", "dense_product", "dense_crop"


def pack_weight(w: np.ndarray, nr: int) -> np.ndarray:
    """Pack a ``[K, N]`` weight into ``[ceil(N/nr), K, nr]`` column panels.

    Panel ``p`` holds columns ``p*nr .. p*nr + nr - 1`` side by side, so that
    the micro-kernel reads ``nr`` consecutive floats per step of K; when ``nr``
    does not divide N the last panel is completed with zero columns.

    >>> pack_weight(np.arange(6, dtype=np.float32).reshape(2, 3), 2)[1]
    array([[2., 0.],
           [5., 0.]], dtype=float32)
    """
    from .matmul import MAX_NR

    w = checks.array("dense.pack_weight", "w", w, ndim=2, dtypes=["float32"],
                     nonempty=True)
    nr = checks.positive_int("dense.pack_weight", "nr", nr, maximum=MAX_NR)
    k, n = w.shape
    panels = -(-n // nr)
    padded = np.zeros((k, panels * nr), np.float32)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, panels, nr).transpose(1, 0, 2))


def dense_compute(data, weight, n: int, mr: int):
    """TE stages of ``data @ W`` for a weight ``W`` that :func:`pack_weight` packed.

    ``data`` is float32 ``[M, K]``, ``weight`` float32 ``[ceil(N/nr), K, nr]``,
    ``n`` the weight's true N and ``mr`` the rows of the register block. The
    stages are :data:`PACK_BLOCK` (``[ceil(M/mr), K, mr]``, zero rows appended),
    :data:`PRODUCT_BLOCK` (``[ceil(M/mr)*mr, ceil(N/nr)*nr]``) and, when either
    is padded, :data:`CROP_BLOCK` (``[M, N]``), which is returned.
    """
    from tvm import te

    from .matmul import MAX_MR

    func = "dense.dense_compute"
    m, k = _te_shape(func, "data", data, 2)
    panels, wk, nr = _te_shape(func, "weight", weight, 3)
    if wk != k:
        raise ValueError(f"{func}: weight has K={wk}, data has K={k}")
    n = checks.positive_int(func, "n", n)
    if not (panels - 1) * nr < n <= panels * nr:
        raise ValueError(f"{func}: n={n} does not fit weight's {panels} panels "
                         f"of {nr} columns")
    mr = checks.positive_int(func, "mr", mr, maximum=MAX_MR)
    blocks = -(-m // mr)
    for what, shape in (("the packed data", (blocks, k, mr)),
                        ("the padded product", (blocks * mr, panels * nr))):
        if int(np.prod(shape, dtype=object)) > checks.MAX_COUNT:
            raise ValueError(f"{func}: {what} of shape {shape} has more than "
                             f"{checks.MAX_COUNT} elements")

    def row(io, c, ii):
        if m % mr == 0:
            return data[io * mr + ii, c]
        i = io * mr + ii
        return te.if_then_else(i < m, data[te.min(i, m - 1), c],
                               te.const(0, "float32"))

    packed = te.compute((blocks, k, mr), row, name=PACK_BLOCK)
    r = te.reduce_axis((0, k), name="k")
    product = te.compute(
        (blocks * mr, panels * nr),
        lambda i, j: te.sum(packed[i // mr, r, i % mr] * weight[j // nr, r, j % nr],
                            axis=r),
        name=PRODUCT_BLOCK)
    if (blocks * mr, panels * nr) == (m, n):
        return product
    return te.compute((m, n), lambda i, j: product[i, j], name=CROP_BLOCK)


def _te_shape(func: str, name: str, tensor: Any, ndim: int) -> tuple[int, ...]:
    from tvm import te, tirx

    if not isinstance(tensor, te.Tensor):
        raise TypeError(f"{func}: {name} must be a te.Tensor, "
                        f"got {type(tensor).__name__}")
    if str(tensor.dtype) != "float32":
        raise TypeError(f"{func}: {name} must be float32, got {tensor.dtype}")
    if len(tensor.shape) != ndim or not all(isinstance(d, (int, tirx.IntImm))
                                            for d in tensor.shape):
        raise ValueError(f"{func}: {name} must have a static {ndim}-D shape, "
                         f"got {list(tensor.shape)}")
    dims = tuple(int(d) for d in tensor.shape)
    if 0 in dims:
        raise ValueError(f"{func}: {name} must not be empty, got shape {dims}")
    return dims


def kernel_shape_for(target: Any = None):
    """The micro-kernel's block (:class:`d2lcc.matmul.KernelShape`) for ``target``.

    :func:`d2lcc.matmul.kernel_shape` picks it from a machine's vector width and
    register count; here the machine is the one ``target`` describes (default:
    this one): AVX-512 (``avx512f``), AVX2, or an AArch64 CPU with NEON.
    """
    import dataclasses

    from tvm.target import codegen

    from .machine import env
    from .matmul import kernel_shape

    target = targets.resolve(target, "dense.kernel_shape_for")
    if str(target.kind.name) != "llvm":
        raise ValueError(f"dense.kernel_shape_for: target={target} is not a CPU "
                         "(kind llvm)")
    mtriple = str(target.attrs.get("mtriple", "")) if target.attrs else ""
    if mtriple.startswith(("aarch64", "arm64")):
        machine = dataclasses.replace(env(), arch="aarch64", features=("neon",))
    else:
        features = tuple(f for f in ("avx2", "avx512f")
                         if codegen.target_has_features(f, target))
        machine = dataclasses.replace(env(), arch="x86_64", features=features)
    return kernel_shape(machine)


def _dense_call(call: Any) -> bool:
    """Whether ``call`` multiplies a static float32 ``[M>1, K]`` by a constant."""
    from tvm import tirx

    from .qnn.params import constant_value

    data, weight = call.args[0], call.args[1]
    shape = getattr(data.ty, "shape", None)
    w = constant_value(weight)
    if w is None or shape is None or w.ndim != 2 or len(shape) != 2:
        return False
    if not all(isinstance(d, tirx.IntImm) for d in shape):
        return False
    out_dtype = str(call.attrs.out_dtype)
    return (str(data.ty.dtype) == "float32" and w.dtype == np.float32
            and out_dtype in ("", "void", "None", "float32")
            and int(shape[0]) > 1 and min(w.shape) > 0)


def _legalize_rule(shape: Any, fallback: Callable) -> Callable:
    def rule(bb, call):
        from tvm import relax

        from .qnn.params import constant_value

        if not _dense_call(call):
            return fallback(bb, call)
        w = constant_value(call.args[1])
        packed = relax.const(pack_weight(w, shape.nr))
        try:
            return bb.call_te(dense_compute, call.args[0], packed, w.shape[1],
                              shape.mr, primfunc_name_hint="dense")
        except ValueError:  # too large for 32-bit indices: TVM's own rule
            return fallback(bb, call)

    return rule


def legalize_map(base: dict | None = None, target: Any = None) -> dict:
    """Legalization rules with a ``relax.matmul`` rule for float32 dense layers.

    Pass the result to ``relax.transform.LegalizeOps``. A ``relax.matmul`` of a
    float32 ``[M, K]`` activation with static shape and ``M > 1`` by a constant
    float32 ``[K, N]`` weight becomes :func:`dense_compute` on the weight packed
    for the block of :func:`kernel_shape_for` ``(target)``; every other call
    goes to ``base``'s rule for ``relax.matmul``, or TVM's own. The other rules
    of ``base`` are kept as they are.
    """
    import tvm

    func = "dense.legalize_map"
    checks.legalize_rules(func, "base", base)
    shape = kernel_shape_for(targets.resolve(target, func))
    rules = dict(base or {})
    fallback = rules.get("relax.matmul") or tvm.ir.Op.get("relax.matmul").get_attr(
        "FLegalize")
    rules["relax.matmul"] = _legalize_rule(shape, fallback)
    return rules


def is_dense_kernel(func: Any) -> bool:
    """Whether ``func`` is an unscheduled kernel that :func:`legalize_map` wrote."""
    import tvm
    from tvm import s_tir

    from .conv import has_block

    if not isinstance(func, tvm.tirx.PrimFunc):
        return False
    if ir.is_scheduled(func):
        return False
    sch = s_tir.Schedule(func)
    return has_block(sch, PRODUCT_BLOCK) and has_block(sch, PACK_BLOCK)


def block_shape(func: Any) -> tuple[int, int]:
    """``(mr, nr)``: the register block the packed layouts of a dense kernel fix."""
    from tvm import s_tir

    if not is_dense_kernel(func):
        raise TypeError("dense.block_shape: func must be an unscheduled PrimFunc "
                        f"that legalize_map wrote (blocks {PACK_BLOCK!r} and "
                        f"{PRODUCT_BLOCK!r})")
    sch = s_tir.Schedule(func)
    packed = sch.get(sch.get_sblock(PACK_BLOCK)).writes[0].source
    weight = [r.source for r in sch.get(sch.get_sblock(PRODUCT_BLOCK)).reads
              if not r.source.same_as(packed)]
    return int(packed.shape[-1]), int(weight[0].shape[-1])


def schedule_kernel(func: Any):
    """Return ``func`` (a dense kernel, maybe with a fused epilogue) scheduled.

    Loops ``jo, io, k, ii, ji`` over the padded product: a thread takes a panel
    of ``nr`` columns of the weight (``jo``) and a block of ``mr`` rows
    (``io``), both loops fused and run in parallel; the ``mr x nr`` block
    accumulates in registers (``ii`` unrolled, ``ji`` vectorized) over all of
    K and is written out once, through the crop and the epilogue.
    """
    from tvm import s_tir
    from tvm.s_tir.schedule import ScheduleError

    from .matmul import parallel_pack

    if not is_dense_kernel(func):
        raise TypeError("dense.schedule_kernel: func must be an unscheduled PrimFunc "
                        f"that legalize_map wrote (blocks {PACK_BLOCK!r} and "
                        f"{PRODUCT_BLOCK!r})")
    mr, nr = block_shape(func)
    sch = s_tir.Schedule(func)
    product = sch.get_sblock(PRODUCT_BLOCK)
    i, j, k = sch.get_loops(product)
    io, ii = sch.split(i, [None, mr])
    jo, ji = sch.split(j, [None, nr])
    sch.reorder(jo, io, k, ii, ji)
    acc = sch.cache_write(product, 0, "local")
    # under io first, then inline: inlined at the root, TVM 0.27 drops the crop's
    # bounds and the write-out runs past the output (padded rows written)
    sch.reverse_compute_at(acc, io)
    while sch.get_consumers(acc):  # crop, bias, ReLU, casts: in the write-out
        try:
            sch.reverse_compute_inline(sch.get_consumers(acc)[0])
        except ScheduleError:  # not element-wise: it stays a loop nest of its own
            break
    sch.parallel(sch.fuse(jo, io))
    sch.unroll(ii)
    sch.vectorize(ji)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(product, k)
    parallel_pack(sch, PACK_BLOCK)
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def schedule_module(mod: Any, target: Any = None):
    """Return ``mod`` with :func:`schedule_kernel` applied to every dense kernel.

    ``target`` is where the module will run (default: this machine). The
    register block was fixed by the packing :func:`legalize_map` chose; a
    block that needs more vector registers than ``target`` has (legalized for
    another target) still computes the right result, slowly, with a
    ``RuntimeWarning``.
    """
    import warnings

    import tvm

    func = "dense.schedule_module"
    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"{func}: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    shape = kernel_shape_for(targets.resolve(target, func))
    updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gv, kernel in mod.functions.items():
        if not is_dense_kernel(kernel):
            continue
        mr, nr = block_shape(kernel)
        vectors = -(-nr // shape.lanes)
        if mr * vectors + vectors + 1 > shape.registers:
            warnings.warn(f"{func}: kernel {gv.name_hint!r} has a {mr}x{nr} block, "
                          f"more than target's {shape.registers} vector registers "
                          "hold; call legalize_map with this target", RuntimeWarning,
                          stacklevel=2)
        updated[gv] = schedule_kernel(kernel)
    return updated
