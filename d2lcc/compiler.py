"""Compile a whole network for the CPU, and see where its time goes.

:func:`compile` (exported as ``d2lcc.compile``) is the book's one way to turn a
model into a fast function of NumPy arrays. It takes a Relax module or an ONNX
model and runs the stages the operator chapter introduced one at a time:

1. *import* (ONNX through ``tvm.relax.frontend.onnx``) and *simplify*:
   decompose inference-only operators, fold batch norm into the preceding
   convolution's weights;
2. *legalize and fuse*: every Relax operator becomes a TensorIR function, and
   chains of them (conv + bias + ReLU) become one kernel;
3. *schedule*: a MetaSchedule database (shipped or tuned live) where it has a
   record for a kernel, DLight's CPU rules for the rest;
4. *lower and build* for the Relax virtual machine.

:func:`replace_prim_func` swaps one kernel of a module for a hand-scheduled
one, and :meth:`CompiledModel.profile` times every kernel call, so a reader
sees which operator to optimize next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import checks, fold, ir
from . import target as targets


def import_model(model: Any):
    """Return a Relax module for ``model`` (an IRModule, or an ``onnx.ModelProto``).

    ONNX weights become constants of the module (``keep_params_in_input=False``),
    so that the compiler can fold and pre-pack them.
    """
    import tvm

    if isinstance(model, tvm.IRModule):
        return model
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency of d2lcc
        onnx = None
    if onnx is not None and isinstance(model, onnx.ModelProto):
        from tvm.relax.frontend.onnx import from_onnx

        return from_onnx(model, keep_params_in_input=False)
    raise TypeError("compile: model must be a tvm.IRModule or an onnx.ModelProto, "
                    f"got {type(model).__name__}")


#: What :func:`compile` schedules, from least to most: ``"none"`` leaves every
#: kernel as legalization wrote it (loops in order, no SIMD beyond what LLVM
#: finds), ``"dlight"`` applies DLight's CPU rules to every kernel, ``"book"``
#: also packs the convolutions (:mod:`d2lcc.nchwc`) and the batched dense layers
#: (:mod:`d2lcc.dense`) and schedules them like the operator chapter did, and
#: gives a quantized model's int8 products the dot-product kernels of
#: :mod:`d2lcc.int8.x86`.
SCHEDULES = ("none", "dlight", "book")


def sum_to_add():
    """A pass that turns ONNX ``Sum`` of two tensors, as imported, into ``add``.

    TVM's ONNX importer writes ``Sum(a, b)`` as ``sum(stack([broadcast_to(a),
    broadcast_to(b)]), axis=0)``: a copy of both inputs and a reduction, which
    neither fuses into the convolution before it nor keeps a packed layout.
    """
    from tvm import relax
    from tvm.relax.dpl import is_op, is_tuple, wildcard

    a, b = wildcard(), wildcard()
    spread = [is_op("relax.broadcast_to")(x, wildcard()) for x in (a, b)]
    stacked = is_op("relax.stack")(is_tuple(spread))
    pattern = is_op("relax.sum")(stacked)

    def rewrite(expr, matches):
        stack = matches[stacked]
        if int(stack.attrs.axis) != 0 or list(expr.attrs.axis or []) != [0] \
                or expr.attrs.keepdims:
            return expr
        return relax.op.add(matches[a], matches[b])

    return ir.rewrite_pass("SumToAdd", pattern, rewrite)


def remove_dropout():
    """A pass that replaces inference-time dropout by its input.

    ONNX ``Dropout`` imports as ``R.nn.dropout``, which returns the output and
    a mask as a tuple; at inference the output is the input. Left in, it costs
    a copy, and ``ConvertLayout`` fails on the tuple ("Expected nested to
    match tuple"), which would keep a whole network (Inception v1) unpacked.
    """
    from tvm.relax.dpl import is_op, is_tuple_get_item, wildcard

    x = wildcard()
    pattern = is_tuple_get_item(is_op("relax.nn.dropout")(x), 0)
    return ir.rewrite_pass("RemoveDropout", pattern, lambda expr, matches: matches[x])


def power_to_roots():
    """A pass that writes ``x ** 0.5`` and ``x ** 0.75`` with square roots.

    Local response normalization (Inception v1's LRN) divides by
    ``(k + a * sum(x * x)) ** 0.75``; a general power calls ``powf`` per
    element, several times slower than the vector square root. For the
    non-negative bases LRN produces, ``sqrt(y) * sqrt(sqrt(y))`` is the same
    number up to rounding; a negative base gives NaN either way.
    """
    from tvm import relax
    from tvm.relax.dpl import is_const, is_op, wildcard

    x, exponent = wildcard(), is_const()
    pattern = is_op("relax.power")(x, exponent)

    def rewrite(expr, matches):
        value = matches[exponent].value.numpy()
        if value.size != 1 or str(value.dtype) != "float32":
            return expr
        base, e = matches[x], float(value.reshape(()))
        root = relax.op.sqrt(base)
        if e == 0.5:
            return root
        if e == 0.75:
            return relax.op.multiply(root, relax.op.sqrt(root))
        return expr

    return ir.rewrite_pass("PowerToRoots", pattern, rewrite)


def clip_to_min_max():
    """A pass that writes ``clip(x, lo, hi)`` as ``maximum(minimum(x, hi), lo)``.

    The same numbers, but Relax's ``ConvertLayout`` (TVM 0.27) knows no layout
    rule for ``clip``: it puts a layout transform on each side of every clip,
    and a quantized network, which clips after every requantization, falls
    back to NCHW between its packed convolutions. ``minimum`` and ``maximum``
    with scalar constants are element-wise operators it carries through.
    """
    import numpy as np
    from tvm import relax
    from tvm.relax.dpl import is_op, wildcard

    x = wildcard()
    pattern = is_op("relax.clip")(x, wildcard(), wildcard())

    def rewrite(expr, matches):
        dtype = str(expr.ty.dtype)
        bounds = []
        for arg in expr.args[1:]:  # constant bounds (IntImm or FloatImm) only
            value = getattr(arg, "value", None)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return expr
            bounds.append(relax.const(np.array(value, dtype=dtype)))
        lo, hi = bounds
        return relax.op.maximum(relax.op.minimum(matches[x], hi), lo)

    return ir.rewrite_pass("ClipToMinMax", pattern, rewrite)


def simplify_passes() -> list:
    """Stage 1 after import: inference-only rewrites and constant folding."""
    from tvm import relax

    return [
        sum_to_add(),
        remove_dropout(),
        power_to_roots(),
        clip_to_min_max(),
        relax.transform.DeadCodeElimination(),
        relax.transform.FoldBatchnormToConv2D(),
        relax.transform.DecomposeOpsForInference(),
        relax.transform.CanonicalizeBindings(),
        fold.fold_constants(),
        relax.transform.FoldConstant(),
    ]


def fuse_passes(legalize_map: dict | None = None) -> list:
    """Stage 2: legalize every operator to TensorIR, then fuse chains of kernels.

    ``legalize_map`` maps operator names to legalization functions that replace
    TVM's own for those operators (see :func:`d2lcc.nchwc.legalize_conv2d`).
    """
    from tvm import relax

    checks.legalize_rules("fuse_passes", "legalize_map", legalize_map)

    return [
        relax.transform.LegalizeOps(legalize_map),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        relax.transform.DeadCodeElimination(),
    ]


def lower_passes(target: Any) -> list:
    """The passes of stage 4: what the CPU pipeline runs after fusion."""
    from tvm.relax.backend.cpu_generic import pipeline

    return pipeline.dataflow_lower_passes(target) + pipeline.finalize_passes(target)


def _block_names(func: Any) -> list[str]:
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    return [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]


def _row_times_kn(func: Any) -> bool:
    """Whether ``func`` computes one row times a ``[K, N]`` weight."""
    import tvm
    from tvm import s_tir

    if not isinstance(func, tvm.tirx.PrimFunc):
        return False
    sch = s_tir.Schedule(func)
    if "matmul" not in _block_names(func):
        return False
    loops = sch.get_loops(sch.get_sblock("matmul"))
    if len(loops) != 3:
        return False
    m, n, k = (int(sch.get(loop).extent) for loop in loops)
    shapes = [tuple(int(d) for d in p.shape) for p in func.params]
    return m == 1 and n != k and (k, n) in shapes


def schedule_row_times_kn(func: Any):
    """Schedule one row times a ``[K, N]`` weight: rows of the weight in parallel.

    The ONNX importer turns a dense layer's weight into ``[K, N]`` (it folds the
    transpose of ``Gemm(transB=1)`` into the constant); DLight's matrix-vector
    rule expects ``[N, K]`` and reads this one a column at a time. The work is
    streaming the weight from memory, so each thread takes a contiguous band
    of K rows (``rfactor``: a partial sum of the whole output row per band),
    reads it front to back, a vector of columns at a time, and a short serial
    loop adds the bands' partial rows.
    """
    from tvm import s_tir

    from .conv import largest_divisor

    if not _row_times_kn(func):
        raise TypeError("schedule_row_times_kn: func must compute one row times a "
                        "[K, N] weight in a block named 'matmul'")
    sch = s_tir.Schedule(func)
    block = sch.get_sblock("matmul")
    _, _, k = sch.get_loops(block)
    bands = largest_divisor(int(sch.get(k).extent), 8)
    band, rows = sch.split(k, [bands, None])
    partial = sch.rfactor(band, 0)
    i, j, band, rows = sch.get_loops(partial)
    jo, ji = sch.split(j, [None, largest_divisor(int(sch.get(j).extent), 16)])
    sch.reorder(band, i, rows, jo, ji)
    sch.parallel(band)
    sch.vectorize(ji)
    sch.decompose_reduction(partial, rows)
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def schedule_small_kernels(mod: Any):
    """Schedule the kernels DLight gets wrong, before DLight sees them.

    DLight's CPU ``Reduction`` rule (TVM 0.27) schedules a one-row softmax by
    running the whole row's computation inside a parallel loop over its
    columns: every thread recomputes the row into the same temporary buffers,
    a race and a thousandfold waste. A softmax of one row is short enough to
    run serially, as legalization wrote it. A row times a ``[K, N]`` weight gets
    :func:`schedule_row_times_kn`.
    """
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"schedule_small_kernels: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gv, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc) or ir.is_scheduled(func):
            continue
        if "T_softmax_maxelem" in _block_names(func):
            updated[gv] = func.with_attr("tirx.is_scheduled", True)
        elif _row_times_kn(func):
            try:
                updated[gv] = schedule_row_times_kn(func)
            except tvm.s_tir.schedule.ScheduleError:
                # e.g. an int8 product whose epilogue reads a second producer:
                # the consumer cannot move under the column loop; DLight's turn.
                continue
    return updated


#: The most terms a reduction may have for :func:`schedule_loops` (a pooling
#: window; a 7x7 global pool has 49).
POOL_WINDOW = 64


def schedule_loops(func: Any):
    """Schedule a data-movement kernel no rule covers: inline, reorder, go parallel.

    Legalization writes pads, layout transforms and pools as plain loop nests,
    and neither DLight nor the book's rules schedule them, so they run on one
    core. Here the producers are inlined into the last block (a pool reads
    its padding on the fly), the loops follow the output's index order (so
    writes are contiguous) with any reduction loops just inside them, the
    outer loops run in parallel, and a short innermost output loop (a channel
    block) is vectorized. A pool fused with element-wise consumers (the shift
    of a quantized tensor, say) keeps one consumer block, computed inside the
    pool's outer loops right after each block of pooled values. Returns None
    where that does not apply: more than one block that cannot be inlined
    besides such a consumer, loops that are not one per block axis, or a
    reduction that is not a pool: one over more than :data:`POOL_WINDOW`
    terms, or over products of two tensors.
    """
    import math
    import re

    import tvm
    from tvm import s_tir

    from .conv import inline_blocks

    if not isinstance(func, tvm.tirx.PrimFunc):
        raise TypeError(f"schedule_loops: func must be a tvm.tirx.PrimFunc, "
                        f"got {type(func).__name__}")
    sch = s_tir.Schedule(func)
    inline_blocks(sch)  # a reduction stays: it must be the main block below
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    if len(blocks) > 2:
        return None
    block, tail = blocks[0], (blocks[1] if len(blocks) == 2 else None)
    loops, stmt = sch.get_loops(block), sch.get(block)
    if not loops:
        return None
    realize = sch.get(loops[-1]).body  # the block sits right inside its loops
    values = list(stmt.iter_vars)
    if not isinstance(realize, s_tir.SBlockRealize) or len(loops) != len(values) \
            or not all(b.same_as(sch.get(loop).loop_var)
                       for b, loop in zip(realize.iter_values, loops)):
        return None
    reduce = [iv.iter_type == 2 for iv in values]  # 2: CommReduce
    terms = math.prod(int(iv.dom.extent) for r, iv in zip(reduce, values) if r)
    inputs = []  # the tensors the block reads, besides its own output
    for r in stmt.reads:
        if not any(r.source.same_as(t.source) for t in [*stmt.writes, *inputs]):
            inputs.append(r)
    if terms > POOL_WINDOW or (any(reduce) and len(inputs) != 1):
        return None  # a long reduction or a product of two tensors: DLight's
    written = [set(re.findall(r"\w+", str(r.min))) for r in stmt.writes[0].region]
    position = {i: min((k for k, names in enumerate(written)
                        if str(values[i].var) in names), default=len(written))
                for i in range(len(loops)) if not reduce[i]}
    spatial = sorted(position, key=position.get)
    inner = spatial[-1] if int(sch.get(loops[spatial[-1]]).extent) <= 16 else None
    outer = [loops[i] for i in spatial if i != inner]
    order = outer + [loops[i] for i in range(len(loops)) if reduce[i]]
    sch.reorder(*(order + ([loops[inner]] if inner is not None else [])))
    parallel, work = [], 1
    for loop in outer:
        if work >= 64:
            break
        parallel.append(loop)
        work *= int(sch.get(loop).extent)
    if parallel:
        sch.parallel(sch.fuse(*parallel) if len(parallel) > 1 else parallel[0])
    if inner is not None:
        sch.vectorize(loops[inner])
    if tail is not None:
        kept = len(outer) - len(parallel) + bool(parallel)  # outer loops after fusing
        if not kept:
            return None
        try:
            sch.reverse_compute_at(tail, sch.get_loops(block)[kept - 1])
        except s_tir.schedule.ScheduleError:
            return None
        last = sch.get_loops(tail)[-1]
        if len(sch.get_loops(tail)) > kept and int(sch.get(last).extent) <= 16:
            sch.vectorize(last)
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def schedule_leftovers(mod: Any):
    """Return ``mod`` with :func:`schedule_loops` applied to each unscheduled kernel."""
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"schedule_leftovers: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gv, func in mod.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc) and not ir.is_scheduled(func):
            scheduled = schedule_loops(func)
            if scheduled is not None:
                updated[gv] = scheduled
    return updated


def dlight_pass():
    """DLight's CPU rules, applied to every kernel no earlier stage scheduled.

    A kernel on which a rule fails (TVM 0.27's ``Reduction`` rule raises a
    ScheduleError on some fused kernels, e.g. a global average pool fused with
    an unrelated output) keeps the loops legalization wrote, with a
    ``RuntimeWarning`` naming it, instead of failing the whole compile.
    """
    import warnings

    import tvm
    from tvm.s_tir import dlight

    rules = dlight.ApplyDefaultSchedule(dlight.cpu.GEMV(), dlight.cpu.Reduction())

    def transform(mod, _ctx):
        updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
        for gv, func in mod.functions.items():
            if not isinstance(func, tvm.tirx.PrimFunc):
                continue
            try:
                one = rules(tvm.IRModule({gv: func}))
            except Exception as err:  # noqa: BLE001 - any rule failure: keep loops
                first = str(err).strip().splitlines()[-1][:160]
                warnings.warn(f"dlight_pass: DLight failed on kernel "
                              f"{gv.name_hint!r}; it keeps its loops ({first})",
                              RuntimeWarning, stacklevel=2)
                continue
            updated[gv] = one[gv]
        return updated

    return tvm.transform.module_pass(transform, opt_level=0, name="d2lcc.DLight")


def _database(database: Any):
    from tvm.s_tir import meta_schedule as ms

    from . import tuning

    if database is None or isinstance(database, ms.database.Database):
        return database
    if isinstance(database, (str, Path)):
        if not Path(database).is_dir():
            raise ValueError(f"compile: database={str(database)!r} is not the folder "
                             "of a MetaSchedule JSON database")
        try:
            return tuning.load_database(database)
        except ValueError as err:
            raise ValueError(f"compile: database={str(database)!r}: {err}") from None
    raise TypeError("compile: database must be a MetaSchedule Database, a path "
                    "or None, "
                    f"got {type(database).__name__}")


def has_qnn_ops(mod: Any) -> bool:
    """Return whether a Relax module calls an operator of the QNN dialect."""
    import tvm
    from tvm import relax

    from .qnn.ops import is_qnn_call

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"has_qnn_ops: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    found = []

    def visit(expr):
        if not found and is_qnn_call(expr):
            found.append(expr)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return bool(found)


def qnn_passes() -> list:
    """Stage 0 for a quantized model: QNN-level rewrites, then lower the dialect.

    uint8 activations and int8 weights for every quantized conv2d and dense
    (the operands of ``vpdpbusd`` and ``vpmaddubsw``), quantize/dequantize
    round trips removed, then every ``qnn`` operator lowered to integer Relax
    (:mod:`d2lcc.qnn.transform`).
    """
    from .qnn import transform

    return [transform.LegalizeUint8Int8(), transform.FoldDequantizeQuantize(),
            transform.Canonicalize()]


def prepare(model: Any, target: Any = None, *, schedules: str = "book"):
    """Run stages 1 and 2 of :func:`compile`: the fused module, before any schedule.

    With ``schedules="book"`` the convolutions are packed (:mod:`d2lcc.nchwc`)
    before legalization, batched dense layers get kernels on packed weights
    (:mod:`d2lcc.dense`), and on x86 the int8 products of a quantized model get
    kernels on pre-packed weights (:func:`d2lcc.int8.x86.legalize_map`); the
    other settings keep TVM's layouts. A module with QNN operators is lowered
    first (:func:`qnn_passes`).
    """
    import tvm

    from . import dense, nchwc

    mod = import_model(model)
    target = targets.resolve(target, "prepare")
    checks.one_of("prepare", "schedules", schedules, SCHEDULES)
    quantized = has_qnn_ops(mod)
    passes = (qnn_passes() if quantized else []) + simplify_passes()
    legalize_map = None
    if schedules == "book":
        passes += nchwc.layout_passes(targets.float32_lanes(target))
        legalize_map = dense.legalize_map({"relax.nn.conv2d": nchwc.legalize_conv2d},
                                          target)
        if quantized:
            from .int8 import x86

            legalize_map = x86.legalize_map(target, base=legalize_map)
    with target:
        return tvm.transform.Sequential(passes + fuse_passes(legalize_map))(mod)


def optimize(model: Any, target: Any = None, *, schedules: str = "book",
             database: Any = None, tune_trials: int = 0,
             work_dir: str | Path | None = None):
    """Run stages 1-3 of :func:`compile` and return the scheduled Relax module.

    Stage 3 applies, in this order: the best records of ``database``; with
    ``schedules="book"``, :func:`d2lcc.nchwc.schedule_conv` to every packed
    convolution left; live tuning of what is still unscheduled; with "book",
    :func:`schedule_leftovers` to data movement and pools; DLight's rules to
    the rest (unless ``schedules="none"``).
    """
    import tempfile

    from tvm import relax

    from . import dense, nchwc

    target = targets.resolve(target, "compile")
    checks.one_of("compile", "schedules", schedules, SCHEDULES)
    database = _database(database)
    tune_trials = checks.nonnegative_int("compile", "tune_trials", tune_trials,
                                         maximum=100_000)
    work_dir = _work_dir("compile", work_dir)
    mod = prepare(model, target, schedules=schedules)
    if database is not None:
        with target, database:
            mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
    if schedules == "book":
        from .int8 import x86

        if x86.isa_of(target) is not None:  # int8 kernels of a quantized model
            mod = x86.schedule_module(mod, target)
        mod = nchwc.schedule_module(mod)
        mod = dense.schedule_module(mod, target)
    if tune_trials:
        folder = work_dir or Path(tempfile.mkdtemp(prefix="d2lcc-"))
        tuned = tune_network(mod, target, folder, tune_trials)
        with target, tuned:
            mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
    if schedules != "none":
        mod = schedule_small_kernels(mod)
        if schedules == "book":  # before DLight, which runs a fused pool serially
            mod = schedule_leftovers(mod)
        with target:
            mod = dlight_pass()(mod)
    return mod


def _work_dir(func: str, work_dir: Any) -> Path | None:
    if work_dir is None:
        return None
    if not isinstance(work_dir, (str, Path)) or not str(work_dir):
        raise TypeError(f"{func}: work_dir must be a folder path or None, "
                        f"got {type(work_dir).__name__} {work_dir!r}")
    return Path(work_dir)


def tune_network(mod: Any, target: Any, work_dir: str | Path, trials: int, *,
                 trials_per_iter: int = 8, seed: int = 0):
    """Tune every kernel of a fused module with MetaSchedule; return the database.

    ``trials`` is shared by all kernels (MetaSchedule's task scheduler gives
    more to the kernels that take more time); each round measures at most
    ``trials_per_iter`` candidates of one kernel, so that small budgets still
    reach every kernel.
    """
    from tvm.s_tir import meta_schedule as ms

    from . import tuning

    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"tune_network: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    target = targets.resolve(target, "tune_network")
    work_dir = _work_dir("tune_network", work_dir)
    if work_dir is None:
        raise TypeError("tune_network: work_dir must be a folder path, got None")
    seed = checks.integer("tune_network", "seed", seed, minimum=0, maximum=2**31 - 1)
    trials = checks.positive_int("tune_network", "trials", trials, maximum=100_000)
    trials_per_iter = checks.positive_int("tune_network", "trials_per_iter",
                                          trials_per_iter, maximum=1024)
    builder = ms.builder.LocalBuilder(f_build=tuning.build_candidate, timeout_sec=60)
    with tuning.quiet_logs():  # progress goes to work_dir/logs
        return ms.relax_integration.tune_relax(
            mod=mod, params={}, target=target, work_dir=str(work_dir),
            max_trials_global=trials, num_trials_per_iter=min(trials_per_iter, trials),
            seed=seed, builder=builder,
        )


#: Networks with a MetaSchedule database in ``d2lcc/data/<network>_<isa>``.
SHIPPED_NETWORKS = ("small_cnn",)


def shipped_network_database(network: str, isa: str | None = None) -> Path:
    """The folder of the database shipped for ``network`` at vector ISA level ``isa``.

    ``isa`` defaults to :func:`d2lcc.tuning.shipped_isa` of this machine; the
    databases are made by ``tools/tune_network_database.py``.
    """
    from . import tuning

    checks.one_of("shipped_network_database", "network", network,
                  list(SHIPPED_NETWORKS))
    isa = tuning.shipped_isa() if isa is None else checks.one_of(
        "shipped_network_database", "isa", isa, ["avx2", "avx512"])
    folder = Path(__file__).parent / "data" / f"{network}_{isa}"
    if not (folder / "database_tuning_record.json").exists():
        raise ValueError(f"shipped_network_database: no database is shipped for "
                         f"network={network!r} at isa={isa!r}")
    return folder


def tuning_curve(database_dir: str | Path) -> list[float]:
    """The sum over kernels of the best time found so far, after every trial.

    ``database_dir`` is a MetaSchedule JSON database folder. Its record file
    lists the candidates in the order they were measured (the database API
    returns them sorted by speed, so we read the file). A kernel not yet
    measured counts with the time of its first measured candidate, so the
    curve starts from the first schedules tried and each point is the kernel
    time of a network whose kernels each run once.
    """
    import json

    if not isinstance(database_dir, (str, Path)):
        raise TypeError("tuning_curve: database_dir must be a folder path, "
                        f"got {type(database_dir).__name__}")
    path = Path(database_dir) / "database_tuning_record.json"
    if not path.is_file():
        raise ValueError(f"tuning_curve: database_dir={str(database_dir)!r} has no "
                         "database_tuning_record.json")
    measured = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            workload, record = json.loads(line)
            secs = [float(t) for t in record[1]]
        except (ValueError, TypeError, IndexError):
            raise ValueError(f"tuning_curve: {path}:{number} is not a tuning "
                             "record") from None
        if secs and all(0 <= t < 1e9 for t in secs):  # else: failed to build or run
            measured.append((workload, sum(secs) / len(secs)))
    best: dict[int, float] = {}
    for key, seconds in measured:  # until measured, a kernel counts its first time
        best.setdefault(key, seconds)
    curve = []
    for key, seconds in measured:
        best[key] = min(best[key], seconds)
        curve.append(sum(best.values()))
    return curve


def applied_from_database(prepared: Any, scheduled: Any, database: Any,
                          target: Any = None) -> dict[str, bool]:
    """For each kernel of ``prepared`` that ``database`` has a record for, whether
    ``scheduled`` holds exactly that record's schedule.

    The expected kernel is the database's best record replayed on the
    unscheduled kernel (``database.query_ir_module``); the comparison is
    structural, on the loop nests (attributes such as ``tirx.is_scheduled``
    aside).
    """
    import tvm
    import tvm_ffi
    from tvm.s_tir import meta_schedule as ms

    for name, mod in (("prepared", prepared), ("scheduled", scheduled)):
        if not isinstance(mod, tvm.IRModule):
            raise TypeError(f"applied_from_database: {name} must be a tvm.IRModule, "
                            f"got {type(mod).__name__}")
    if not isinstance(database, ms.database.Database):
        raise TypeError("applied_from_database: database must be a MetaSchedule "
                        f"Database, got {type(database).__name__}")
    target = targets.resolve(target, "applied_from_database")
    found = {}
    for gv, func in prepared.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc):
            continue
        task = tvm.IRModule({"main": func.with_attr("global_symbol", "main")})
        expected = database.query_ir_module(task, target, "main")  # as tuning saw it
        if expected is None or gv.name_hint not in [
                g.name_hint for g in scheduled.get_global_vars()]:
            continue
        found[gv.name_hint] = bool(tvm_ffi.structural_equal(
            expected["main"].body, scheduled[gv.name_hint].body, map_free_vars=True))
    return found


@dataclass
class KernelTime:
    """One kernel's share of a network's run time (:meth:`CompiledModel.profile`)."""

    name: str
    calls: int
    seconds: float
    share: float

    def __post_init__(self):
        checks.string("KernelTime", "name", self.name)
        checks.positive_int("KernelTime", "calls", self.calls)
        checks.real("KernelTime", "seconds", self.seconds, minimum=0.0)
        checks.real("KernelTime", "share", self.share, minimum=0.0, maximum=1.0)


class CompiledModel:
    """A compiled network: call it with NumPy arrays, profile its kernels."""

    def __init__(self, module: Any, executable: Any, target: Any):
        import tvm

        if not isinstance(module, tvm.IRModule):
            raise TypeError(f"CompiledModel: module must be a tvm.IRModule, "
                            f"got {type(module).__name__}")
        if not isinstance(executable, tvm.runtime.Executable):
            raise TypeError("CompiledModel: executable must be what tvm.compile "
                            f"returns, got {type(executable).__name__}")
        if not isinstance(target, tvm.target.Target):
            raise TypeError(f"CompiledModel: target must be a tvm.target.Target, "
                            f"got {type(target).__name__}")

        self.module = module
        self.executable = executable
        self.target = target
        self.device = tvm.cpu()
        self._vm = None  # loaded on first use: code for another CPU never loads here
        params = module["main"].params
        self.input_types = [(tuple(int(d) for d in p.ty.shape), str(p.ty.dtype))
                            for p in params]

    @property
    def vm(self):
        """The Relax virtual machine running the code (loaded on first use)."""
        from tvm import relax

        if self._vm is None:
            self._vm = relax.VirtualMachine(self.executable, self.device)
        return self._vm

    @property
    def main(self):
        """The compiled ``main`` function (takes and returns TVM tensors)."""
        return self.vm["main"]

    def _tensors(self, inputs: Sequence[np.ndarray]) -> list:
        import tvm

        if len(inputs) != len(self.input_types):
            raise ValueError(f"CompiledModel: got {len(inputs)} inputs, main takes "
                             f"{len(self.input_types)}: {self.input_types}")
        out = []
        for i, (x, (shape, dtype)) in enumerate(zip(inputs, self.input_types)):
            checks.array("CompiledModel", f"inputs[{i}]", x, dtypes=[dtype])
            if tuple(x.shape) != shape:
                raise ValueError(f"CompiledModel: inputs[{i}] has shape {x.shape}, "
                                 f"main expects {shape}")
            out.append(tvm.runtime.tensor(x, self.device))
        return out

    def __call__(self, *inputs: np.ndarray) -> Any:
        """Run ``main`` on NumPy arrays and return NumPy (a tuple for tuple outputs)."""
        import tvm

        result = self.main(*self._tensors(inputs))
        if isinstance(result, tvm.runtime.Tensor):
            return result.numpy()
        return tuple(r.numpy() for r in result)

    def timer(self, *inputs: np.ndarray):
        """Return a function of no arguments that runs the network once (for timing)."""
        tensors, main = self._tensors(inputs), self.main
        return lambda: main(*tensors)

    def kernels(self) -> list[str]:
        """The names of the module's TensorIR kernels, sorted."""
        import tvm

        return sorted(gv.name_hint for gv, f in self.module.functions.items()
                      if isinstance(f, tvm.tirx.PrimFunc))

    def profile(self, *inputs: np.ndarray, repeat: int = 10) -> list[KernelTime]:
        """Time every kernel call of ``repeat`` runs; return kernels, slowest first.

        The Relax VM calls an *instrument* before and after each call it makes;
        we read the clock at both. Builtins (allocation, reshape views) are
        counted under their own names, so the shares add up to the time the VM
        spends in calls. The Python calls in between cost time and let the
        thread pool's workers sleep between kernels, so the times add up to
        more than a plain run: compare shares, and time the whole network
        with :meth:`timer`.
        """
        repeat = checks.positive_int("CompiledModel.profile", "repeat", repeat,
                                     maximum=10_000)
        tensors = self._tensors(inputs)
        self.main(*tensors)  # warm up: first calls start threads and page memory
        totals: dict[str, list[float]] = {}
        started: list[float] = []

        def instrument(func, name, before, ret, *args):
            if before:
                started.append(time.perf_counter())
            else:
                entry = totals.setdefault(str(name), [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - started.pop()
            return 0

        self.vm.set_instrument(instrument)
        try:
            self.main(*tensors)  # the first instrumented run pays one-time costs
            totals.clear()
            for _ in range(repeat):
                self.main(*tensors)
        finally:
            self.vm.set_instrument(None)
        total = sum(seconds for _, seconds in totals.values()) or 1.0
        rows = [KernelTime(name, calls // repeat, seconds / repeat, seconds / total)
                for name, (calls, seconds) in totals.items()]
        return sorted(rows, key=lambda r: -r.seconds)


def compile(model: Any, target: Any = None, *, schedules: str = "book",  # noqa: A001
            database: Any = None, tune_trials: int = 0,
            work_dir: str | Path | None = None) -> CompiledModel:
    """Compile a network for the CPU and return it as a function of NumPy arrays.

    Parameters
    ----------
    model
        A Relax :class:`tvm.IRModule` with a ``main`` function, or an
        ``onnx.ModelProto``.
    target
        A :class:`tvm.target.Target` or target dictionary; this machine's CPU
        (:func:`d2lcc.target.host`) by default.
    schedules
        One of :data:`SCHEDULES`: ``"book"`` (default) packs and schedules the
        convolutions and uses DLight elsewhere; ``"dlight"`` and ``"none"`` are
        the baselines the book compares with.
    database
        A MetaSchedule database (or the path of a JSON database folder) whose
        best records are applied to the kernels they match.
    tune_trials
        When positive, tune the network's kernels live with MetaSchedule for
        this many trials in all, and apply the result.
    work_dir
        Where live tuning keeps its database and logs (a new temporary folder
        by default).
    """
    target = targets.resolve(target, "compile")
    scheduled = optimize(model, target, schedules=schedules, database=database,
                         tune_trials=tune_trials, work_dir=work_dir)
    return build(scheduled, target)


def build(scheduled: Any, target: Any = None) -> CompiledModel:
    """Run stage 4 of :func:`compile` on a module :func:`optimize` returned.

    Use it after changing a scheduled module, e.g. with :func:`replace_prim_func`.
    """
    import tvm

    if not isinstance(scheduled, tvm.IRModule):
        raise TypeError(f"build: scheduled must be a tvm.IRModule, "
                        f"got {type(scheduled).__name__}")
    target = targets.resolve(target, "build")

    @tvm.transform.module_pass(opt_level=0)
    def lower(mod, _ctx):
        with target:
            return tvm.transform.Sequential(lower_passes(target))(mod)

    executable = tvm.compile(scheduled, target=target, relax_pipeline=lower)
    compiled = CompiledModel(scheduled, executable, target)
    if _loads_here(target):
        _ = compiled.vm  # load now, so that the first call times the network only
    return compiled


def _loads_here(target: Any) -> bool:
    import platform

    triple = str(target.attrs.get("mtriple", "")) if target.attrs else ""
    machine = platform.machine().lower().replace("amd64", "x86_64")
    return not triple or triple.split("-")[0].replace("arm64", "aarch64") == machine


def replace_prim_func(mod: Any, name: str, func: Any):
    """Return a copy of ``mod`` whose kernel ``name`` is replaced by ``func``.

    ``func`` must take buffers of the same shapes and dtypes, in the same
    order, so that the Relax code that calls the kernel stays valid; the new
    function is marked as scheduled, so DLight and MetaSchedule leave it alone.
    """
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"replace_prim_func: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    checks.string("replace_prim_func", "name", name)
    if isinstance(func, tvm.IRModule) and len(func.functions) == 1:
        func = next(iter(func.functions.values()))
    if not isinstance(func, tvm.tirx.PrimFunc):
        raise TypeError(f"replace_prim_func: func must be a tvm.tirx.PrimFunc, "
                        f"got {type(func).__name__}")
    names = {gv.name_hint: gv for gv in mod.get_global_vars()}
    if name not in names or not isinstance(mod[name], tvm.tirx.PrimFunc):
        kernels = sorted(n for n, gv in names.items()
                         if isinstance(mod[gv], tvm.tirx.PrimFunc))
        raise ValueError(f"replace_prim_func: mod has no kernel name={name!r}; "
                         f"kernels: {kernels}")
    old, new = _buffer_types(mod[name]), _buffer_types(func)
    if old != new:
        raise ValueError(f"replace_prim_func: func takes {new}, but kernel {name!r} "
                         f"takes {old}")
    func = func.with_attr("global_symbol", name).with_attr("tirx.is_scheduled", True)
    updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    updated[names[name]] = func
    return updated


def _buffer_types(func: Any) -> list[tuple[tuple[int, ...], str]]:
    types = []
    for param in func.params:  # in TVM 0.27 a kernel's parameters are its buffers
        shape = getattr(param, "shape", None)
        if shape is not None:
            types.append((tuple(int(d) for d in shape), str(param.dtype)))
    return types
