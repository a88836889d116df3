"""The packed NCHW[x]c convolution inside a whole network.

The operator chapter made one convolution fast by packing channels into
blocks (:mod:`d2lcc.conv`): data ``NCHW[x]c``, weights ``OIHW[x]i[y]o``, one
vector register per output pixel holding a block of output channels. Here
the same idea serves a whole network, in three steps:

1. :func:`convert_layout`: every convolution whose channels divide into blocks
   computes in the packed layout; Relax's ``ConvertLayout`` carries the layout
   through the element-wise operators and pooling around it and removes the
   transforms that cancel, so the network stays packed from one convolution to
   the next. Weights are constants, so their packing is folded away at
   compile time.
2. :func:`legalize_conv2d`: a packed convolution (any stride, padding and
   kernel size) becomes a TensorIR function; after fusion it carries its
   epilogue (bias, residual addition, ReLU).
3. :func:`schedule_conv`: each fused kernel gets the operator chapter's
   register tiling, with the epilogue applied while the accumulators are
   written out.
"""

from __future__ import annotations

from typing import Any

from . import checks, fold, ir
from .conv import divisor_tiles, has_block, inline_blocks

#: The loops of a packed convolution's ``conv`` block, outermost first.
_LOOPS = ("b", "o", "i", "j", "ob", "rc", "ri", "rj", "rb")

# Shown verbatim in the book as a cell to edit; schedule_conv checks its arguments.
__teaching__ = ("tile_packed_conv", "block_packed_conv")


def channel_block(channels: int, lanes: int) -> int:
    """The channel block: ``lanes`` if it divides ``channels``, else all of them.

    >>> channel_block(64, 16), channel_block(3, 16)
    (16, 3)
    """
    channels = checks.positive_int("nchwc.channel_block", "channels", channels)
    lanes = checks.positive_int("nchwc.channel_block", "lanes", lanes)
    return lanes if channels % lanes == 0 else channels


def conv2d_nchwc_compute(data, kernel, strides, padding, out_dtype=None,
                         in_lanes=None):
    """TE stages of a packed convolution: ``pad`` (if any) and ``conv``.

    ``data`` is ``[N, C/bc, H, W, bc]``, ``kernel`` ``[O/bo, C/bc, KH, KW, bc, bo]``;
    the result is ``[N, O/bo, OH, OW, bo]``. ``padding`` is (top, left, bottom, right).
    ``out_dtype`` (default: the data's) is the type products are summed in, e.g.
    ``"int32"`` for ``uint8`` data and ``int8`` weights. ``in_lanes`` (default
    ``bc``) sums over only the first lanes of each input block: the others hold
    zero weights, as the channels :func:`pad_channels` adds do.
    """
    from tvm import te

    func = "nchwc.conv2d_nchwc_compute"
    n, cc, h, w, bc = _static_shape(func, "data", data, 5)
    oc, kc, kh, kw, kb, bo = _static_shape(func, "kernel", kernel, 6)
    if (kc, kb) != (cc, bc):
        raise ValueError(f"{func}: kernel's input channels ({kc} blocks of {kb}) "
                         f"do not match data's ({cc} blocks of {bc})")
    sh, sw = (checks.positive_int(func, f"strides[{i}]", v)
              for i, v in enumerate(_pair_of(func, "strides", strides, 2)))
    top, left, bottom, right = (checks.nonnegative_int(func, f"padding[{i}]", v)
                                for i, v in enumerate(_pair_of(func, "padding",
                                                               padding, 4)))
    oh = (h + top + bottom - kh) // sh + 1
    ow = (w + left + right - kw) // sw + 1
    if h + top + bottom < kh or w + left + right < kw:
        raise ValueError(f"{func}: the {kh}x{kw} kernel does not fit the padded "
                         f"{h}x{w} data")
    if top or left or bottom or right:
        def pad_value(b, c, i, j, x):
            inside = te.all(i >= top, i < h + top, j >= left, j < w + left)
            return te.if_then_else(inside, data[b, c, i - top, j - left, x],
                                   te.const(0, data.dtype))

        data = te.compute((n, cc, h + top + bottom, w + left + right, bc), pad_value,
                          name="pad")
    out_dtype = str(out_dtype or data.dtype)
    checks.one_of(func, "out_dtype", out_dtype, ["float32", "float64", "int32"])
    in_lanes = bc if in_lanes is None else checks.positive_int(
        func, "in_lanes", in_lanes, maximum=bc)
    rc, rb = te.reduce_axis((0, cc), "rc"), te.reduce_axis((0, in_lanes), "rb")
    ri, rj = te.reduce_axis((0, kh), "ri"), te.reduce_axis((0, kw), "rj")
    return te.compute(
        (n, oc, oh, ow, bo),
        lambda b, o, i, j, ob: te.sum(
            data[b, rc, i * sh + ri, j * sw + rj, rb].astype(out_dtype)
            * kernel[o, rc, ri, rj, rb, ob].astype(out_dtype),
            axis=[rc, ri, rj, rb]),
        name="conv")


def _static_shape(func: str, name: str, tensor: Any, ndim: int) -> tuple[int, ...]:
    from tvm import te, tirx

    if not isinstance(tensor, te.Tensor):
        raise TypeError(f"{func}: {name} must be a te.Tensor, "
                        f"got {type(tensor).__name__}")
    if len(tensor.shape) != ndim or not all(isinstance(d, (int, tirx.IntImm))
                                            for d in tensor.shape):
        raise ValueError(f"{func}: {name} must have a static {ndim}-D shape, "
                         f"got {tensor.shape}")
    return tuple(int(d) for d in tensor.shape)


def _pair_of(func: str, name: str, value: Any, size: int) -> list:
    from tvm import tirx

    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") \
            or len(value) != size:
        raise TypeError(f"{func}: {name} must be a list of {size} ints, got {value!r}")
    # call_te hands lists over as TVM arrays of IntImm
    return [int(v.value) if isinstance(v, tirx.IntImm) else v for v in value]


def _layout_block(layout: str, axis: str) -> int | None:
    """The block of ``axis`` in a layout such as ``"NCHW16c"`` (None if unblocked)."""
    import re

    match = re.search(rf"(\d+){axis}", layout)
    return int(match.group(1)) if match else None


def legalize_conv2d(bb: Any, call: Any):
    """Legalize a ``relax.nn.conv2d`` call: packed layouts here, the rest as TVM does.

    A convolution in ``NCHW[x]c`` with weights ``OIHW[x]i[y]o`` becomes a call of
    the TensorIR function :func:`conv2d_nchwc_compute` builds; any other layout
    goes to TVM's own legalization.
    """
    import tvm
    from tvm import relax

    if not isinstance(bb, relax.BlockBuilder):
        raise TypeError(f"nchwc.legalize_conv2d: bb must be a relax.BlockBuilder, "
                        f"got {type(bb).__name__}")
    if not (isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.Op)
            and call.op.name == "relax.nn.conv2d"):
        raise TypeError("nchwc.legalize_conv2d: call must be a call of "
                        f"relax.nn.conv2d, got {type(call).__name__}")
    attrs = call.attrs
    data_layout, kernel_layout = str(attrs.data_layout), str(attrs.kernel_layout)
    packed = (_layout_block(data_layout, "c") is not None
              and kernel_layout.startswith("OIHW") and str(attrs.out_layout) ==
              data_layout.replace(str(_layout_block(data_layout, "c")),
                                  str(_layout_block(kernel_layout, "o"))))
    if not packed or int(attrs.groups) != 1 or any(int(d) != 1 for d in attrs.dilation):
        default = tvm.ir.Op.get("relax.nn.conv2d").get_attr("FLegalize")
        return default(bb, call)
    strides = [int(s) for s in attrs.strides]
    padding = [int(p) for p in attrs.padding]
    return bb.call_te(conv2d_nchwc_compute, call.args[0], call.args[1], strides,
                      padding, str(call.ty.dtype), used_lanes(call.args[1]),
                      primfunc_name_hint="conv2d_nchwc")


def used_lanes(weight: Any) -> int | None:
    """How many leading input lanes of a one-block packed weight are not all zero.

    For a constant ``OIHW[x]i[y]o`` weight with a single input block (the
    first layer of an image network, its 3 channels padded to a block by
    :func:`pad_channels`), the number of input lanes up to the last nonzero
    one; None for anything else (more blocks, or not a constant), meaning all.
    """
    import numpy as np
    import tvm

    if not isinstance(weight, tvm.ir.expr.Constant) \
            or len(weight.value.shape) != 6 or int(weight.value.shape[1]) != 1:
        return None
    w = weight.value.numpy()
    nonzero = np.flatnonzero(np.any(w != 0, axis=(0, 1, 2, 3, 5)))
    return int(nonzero[-1]) + 1 if nonzero.size else None


def tile_packed_conv(sch: Any, ow_tile: int, oc_tile: int) -> None:
    """Register-tile the ``conv`` block of a fused packed convolution, in place.

    ``ow_tile`` output columns times ``oc_tile`` blocks of output channels (one
    vector each) accumulate in registers over the whole reduction: each input
    value, broadcast once, meets ``oc_tile`` weight vectors. The epilogue (bias,
    residual addition, ReLU: every block after ``conv``) is applied as the
    accumulators are written out.
    """
    conv = sch.get_sblock("conv")
    b, o, i, j, ob, rc, ri, rj, rb = sch.get_loops(conv)
    oo, oi = sch.split(o, [None, oc_tile])
    jo, ji = sch.split(j, [None, ow_tile])
    sch.reorder(b, oo, i, jo, rc, ri, rj, rb, oi, ji, ob)
    out = sch.cache_write(conv, 0, "local")
    while sch.get_consumers(out):  # fold the epilogue into the write-out, in order
        sch.reverse_compute_inline(sch.get_consumers(out)[0])
    sch.reverse_compute_at(out, jo)
    sch.parallel(sch.fuse(b, oo, i))
    sch.unroll(oi)
    sch.unroll(ji)
    sch.vectorize(ob)
    sch.vectorize(sch.get_loops(out)[-1])
    sch.decompose_reduction(conv, rc)


def block_packed_conv(sch: Any, ow_tile: int, oc_tile: int, rc_chunk: int,
                      rows: int) -> None:
    """Register-tile the ``conv`` block and block its reduction for the L1 cache.

    The input-channel blocks are visited ``rc_chunk`` at a time, outermost:
    each chunk's weights for ``oc_tile`` output blocks stay in the L1 cache
    while every tile of ``rows`` output rows adds its share, and the partial
    sums wait in memory between chunks; the epilogue runs over those rows once
    the last chunk is in. ``ow_tile`` need not divide the output width: the
    columns left over form one narrower tile of their own (``loop_partition``).
    """
    conv = sch.get_sblock("conv")
    b, o, i, j, ob, rc, ri, rj, rb = sch.get_loops(conv)
    oo, oi = sch.split(o, [None, oc_tile])
    io, ii = sch.split(i, [None, rows])
    rco, rci = sch.split(rc, [None, rc_chunk])
    sch.reorder(b, oo, io, rco, ii, j, rci, ri, rj, rb, oi, ob)
    if sch.get_consumers(conv):
        epilogue = sch.get_consumers(conv)[0]
        while sch.get_consumers(epilogue):  # one pass over the rows, in order
            sch.reverse_compute_inline(sch.get_consumers(epilogue)[0])
        sch.reverse_compute_at(epilogue, io)
        sch.vectorize(sch.get_loops(epilogue)[-1])
    sch.parallel(sch.fuse(b, oo, io))
    sch.unroll(oi)
    sch.vectorize(ob)
    init = sch.decompose_reduction(conv, rco)
    sch.vectorize(sch.get_loops(init)[-1])
    width = int(sch.get(j).extent)
    tail = width % ow_tile
    parts = sch.loop_partition(j, [width - tail, None]) if 0 < tail < width else [j]
    for part in parts:
        update = sch.get_child_blocks(part)[0] if part is not j else conv
        cols, rci, ri, rj, rb, oi, ob = sch.get_loops(update)[-7:]
        if int(sch.get(cols).extent) % ow_tile == 0:
            outer, tile = sch.split(cols, [None, ow_tile])
            sch.reorder(outer, rci, ri, rj, rb, oi, tile, ob)
        else:  # the columns left over, all in one tile
            tile = cols
            sch.reorder(rci, ri, rj, rb, oi, tile, ob)
        sch.unroll(tile)


def _inline_shared_epilogue(sch: Any) -> None:
    """Inline the epilogue into its last block if a step of it has two readers.

    ``where(isnan(y), 0, y)`` reads ``y`` twice; folding such an epilogue
    into the write-out one consumer at a time (``reverse_compute_inline``)
    leaves the second reader pointing at a buffer that no longer exists (TVM
    0.27). Inlined forward into the last step first, it folds as one block.
    """
    keep = ("pad", "conv")
    if any(len(sch.get_consumers(b)) > 1
           for b in sch.get_child_blocks(sch.get_sblock("root"))
           if sch.get(b).name_hint not in keep):
        inline_blocks(sch, keep)


def parallel_pad(sch: Any) -> None:
    """Zero-pad the input in parallel, a vector at a time, if the kernel pads at all.

    The ``pad`` stage copies the whole input once per call; left alone it runs
    on one core while the convolution that follows uses all of them.
    """
    from tvm import s_tir

    if not isinstance(sch, s_tir.Schedule):
        raise TypeError(f"nchwc.parallel_pad: sch must be a tvm.s_tir.Schedule, "
                        f"got {type(sch).__name__}")
    if has_block(sch, "pad"):
        loops = sch.get_loops(sch.get_sblock("pad"))
        sch.parallel(sch.fuse(*loops[:3]))
        sch.vectorize(loops[-1])


def conv_extents(func: Any) -> dict[str, int]:
    """The loop extents of a packed-convolution kernel's ``conv`` block, by loop name.

    ``o`` is the number of output-channel blocks, ``j`` the output width.
    """
    from tvm import s_tir

    if not is_packed_conv(func):
        raise TypeError("nchwc.conv_extents: func must be an unscheduled PrimFunc "
                        "that legalize_conv2d wrote (a 'conv' block with 9 loops)")
    sch = s_tir.Schedule(func)
    loops = sch.get_loops(sch.get_sblock("conv"))
    return {name: int(sch.get(loop).extent) for name, loop in zip(_LOOPS, loops)}


def default_tiles(width: int, blocks: int) -> tuple[int, int]:
    """``(ow_tile, oc_tile)`` for an output ``width`` and ``blocks`` channel blocks.

    At most 12 accumulators (fewer where the CPU has fewer than 16 vector
    registers), leaving registers for the weight vectors and broadcast
    inputs. In order of preference, measured on ResNet-50's and Inception
    v1's convolutions on a 2-core AVX2 machine (tools/bench_network.py):

    1. at least two columns by two to four channel blocks, most accumulators
       first, then most channel blocks: 2x4 where it divides (each broadcast
       input meets four weight vectors), 3x4 on Inception's 27-wide rows, 5x2
       on its 55-wide ones; up to 2.5x faster than one channel block per tile;
    2. a row of at least six columns by one block (7x1 on a 7-wide output);
    3. one column by up to eight blocks (a prime width such as 13);
    4. whatever divides, most accumulators first.
    """
    from .cpu import vector_registers

    width = checks.positive_int("nchwc.default_tiles", "width", width)
    blocks = checks.positive_int("nchwc.default_tiles", "blocks", blocks)
    tiles = divisor_tiles(width, blocks, min(12, vector_registers() - 4))
    paired = [t for t in tiles if t[0] >= 2 and 2 <= t[1] <= 4]
    best = max(paired, key=lambda t: (t[0] * t[1], t[1]), default=(1, 1))
    if best[0] * best[1] >= 6:
        return best
    row = max(ow for ow, oc in tiles if oc == 1)
    if row >= 6:
        return row, 1
    column = max(oc for ow, oc in tiles if ow == 1 and oc <= 8)
    if column >= 4:
        return 1, column
    return max(tiles, key=lambda t: (t[0] * t[1], t[1]))


def default_blocking(extents: dict[str, int], ow_tile: int, oc_tile: int,
                     l1_bytes: int | None = None) -> tuple[int, int]:
    """``(rc_chunk, rows)`` for :func:`block_packed_conv`.

    ``extents`` are :func:`conv_extents`' loop extents. The chunk is the most
    input-channel blocks whose weights for one tile (``oc_tile`` output blocks)
    fill at most half of the L1 data cache (``l1_bytes``, this core's by
    default; at least one block), the rows the most output rows whose partial
    sums fill at most all of it (at least one row).
    """
    from .cpu import cache_sizes

    name = "nchwc.default_blocking"
    if not isinstance(extents, dict) or set(extents) != set(_LOOPS):
        raise TypeError(f"{name}: extents must be a dict of the loop extents "
                        f"{list(_LOOPS)} (see conv_extents), got {extents!r}")
    for loop in _LOOPS:
        checks.positive_int(name, f"extents[{loop!r}]", extents[loop])
    ow_tile = checks.positive_int(name, "ow_tile", ow_tile)
    oc_tile = checks.positive_int(name, "oc_tile", oc_tile)
    if l1_bytes is None:
        l1_bytes = cache_sizes().get("L1d", 32 * 1024)
    l1_bytes = checks.positive_int(name, "l1_bytes", l1_bytes)
    itemsize = 4  # float32 weights and sums
    block = extents["rb"] * extents["ri"] * extents["rj"] * oc_tile * extents["ob"]
    rc_chunk = max(d for d in range(1, extents["rc"] + 1) if extents["rc"] % d == 0
                   and (d == 1 or d * block * itemsize <= l1_bytes // 2))
    row = extents["j"] * oc_tile * extents["ob"] * itemsize
    rows = max(d for d in range(1, extents["i"] + 1) if extents["i"] % d == 0
               and (d == 1 or d * row <= l1_bytes))
    return rc_chunk, rows


def blocked_tiles(blocks: int) -> tuple[int, int]:
    """``(ow_tile, oc_tile)`` for :func:`block_packed_conv`: 3x4 where 4 divides.

    Three columns by four channel blocks keep 12 sums in registers; the
    columns need not divide the width. Where the channel blocks are not a
    multiple of 4, 4x2, else 8x1. Measured on ResNet-50 on a 2-core AVX2
    machine, 3x4 beat the best dividing tile on 21 of its 23 convolutions
    (by up to 30% on the 7-wide ones, whose only dividing tile is 7x1).
    """
    blocks = checks.positive_int("nchwc.blocked_tiles", "blocks", blocks)
    for ow_tile, oc_tile in ((3, 4), (4, 2), (8, 1)):
        if blocks % oc_tile == 0:
            return ow_tile, oc_tile
    raise AssertionError("unreachable: 1 divides every block count")


#: Reductions of at most this many multiply-adds per output keep
#: :func:`tile_packed_conv`: too short for blocking to pay for the round trip
#: of the partial sums through memory.
SHORT_REDUCTION = 64


def schedule_conv(func: Any, ow_tile: int | None = None, oc_tile: int | None = None,
                  blocking: Any = "auto"):
    """Return ``func`` (a fused packed-convolution PrimFunc) scheduled for this CPU.

    ``blocking`` is ``"auto"``, None or a pair ``(rc_chunk, rows)``. None
    means :func:`tile_packed_conv`, whose tiles must divide the kernel
    (default :func:`default_tiles`); a pair means :func:`block_packed_conv`
    (default tiles :func:`blocked_tiles`). ``"auto"`` picks None for a short
    reduction (at most :data:`SHORT_REDUCTION` multiply-adds per output),
    else :func:`default_blocking`'s pair.
    """
    from tvm import s_tir

    name = "nchwc.schedule_conv"
    if not is_packed_conv(func):
        raise TypeError(f"{name}: func must be an unscheduled PrimFunc "
                        "that legalize_conv2d wrote (a 'conv' block with 9 loops)")
    extents = conv_extents(func)
    auto = isinstance(blocking, str) and blocking == "auto"
    if not auto and blocking is not None and not (isinstance(blocking, (tuple, list))
                                                  and len(blocking) == 2):
        raise TypeError(f"{name}: blocking must be 'auto', None or a pair "
                        f"(rc_chunk, rows), got {blocking!r}")
    if auto:
        blocked = extents["rc"] * extents["ri"] * extents["rj"] * extents["rb"] \
            > SHORT_REDUCTION
    else:
        blocked = blocking is not None
    default = (blocked_tiles(extents["o"]) if blocked
               else default_tiles(extents["j"], extents["o"]))
    ow_tile = checks.positive_int(name, "ow_tile", default[0] if ow_tile is None
                                  else ow_tile)
    oc_tile = checks.positive_int(name, "oc_tile", default[1] if oc_tile is None
                                  else oc_tile)
    if not blocked:  # block_packed_conv tiles any width; this one must divide
        checks.multiple_of(name, "output width", extents["j"], ow_tile, "ow_tile")
    checks.multiple_of(name, "output channel blocks", extents["o"], oc_tile, "oc_tile")
    if not blocked:
        blocking = None
    elif auto:
        blocking = default_blocking(extents, ow_tile, oc_tile)
    else:
        rc_chunk = checks.positive_int(name, "blocking[0]", blocking[0])
        rows = checks.positive_int(name, "blocking[1]", blocking[1])
        checks.multiple_of(name, "input channel blocks", extents["rc"], rc_chunk,
                           "rc_chunk")
        checks.multiple_of(name, "output height", extents["i"], rows, "rows")
        blocking = rc_chunk, rows
    sch = s_tir.Schedule(func)
    _inline_shared_epilogue(sch)
    if blocking is None:
        tile_packed_conv(sch, ow_tile, oc_tile)
    else:
        block_packed_conv(sch, ow_tile, oc_tile, *blocking)
    parallel_pad(sch)
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def pad_channels(lanes: int):
    """A pass that pads the input channels of constant-weight convolutions to ``lanes``.

    A convolution whose input channels do not divide into blocks of ``lanes``
    (the first layer of an image network has 3) would otherwise stay in NCHW,
    and so would everything up to the next convolution. Zero channels, with
    zero weights, do not change the result.
    """
    import numpy as np
    from tvm import relax
    from tvm.relax.dpl import is_const, is_op, wildcard

    lanes = checks.positive_int("nchwc.pad_channels", "lanes", lanes)
    data, weight = wildcard(), is_const()
    pattern = is_op("relax.nn.conv2d")(data, weight)

    def rewrite(expr, matches):
        attrs = expr.attrs
        w = matches[weight].value.numpy()
        channels = w.shape[1]
        if (str(attrs.data_layout), str(attrs.kernel_layout)) != ("NCHW", "OIHW") \
                or int(attrs.groups) != 1 or channels % lanes == 0:
            return expr
        extra = lanes - channels % lanes
        x = relax.op.nn.pad(matches[data], [0, 0, 0, extra, 0, 0, 0, 0])
        w = np.pad(w, [(0, 0), (0, extra), (0, 0), (0, 0)])
        return relax.op.nn.conv2d(x, relax.const(w), attrs.strides, attrs.padding,
                                  attrs.dilation, 1, "NCHW", "OIHW", attrs.out_layout,
                                  attrs.out_dtype)

    return ir.rewrite_pass("PadConvChannels", pattern, rewrite)


def layout_passes(lanes: int) -> list:
    """The passes that put a network's convolutions in ``NCHW[lanes]c``."""
    from tvm import relax

    lanes = checks.positive_int("nchwc.layout_passes", "lanes", lanes)
    layouts = [f"NCHW{lanes}c", f"OIHW{lanes}i{lanes}o"]
    return [pad_channels(lanes), relax.transform.FoldConstant(),
            convert_layout_or_keep(layouts), isnan_after_transforms(),
            pad_in_packed_layout(), pack_through_elementwise(),
            relax.transform.EliminateCommonSubexpr(),
            relax.transform.DeadCodeElimination(), fold.fold_constants(),
            relax.transform.FoldConstant()]


def isnan_after_transforms():
    """A pass that moves a layout transform from ``isnan(x)`` onto ``x``.

    ``ConvertLayout`` may put a layout transform on the ``bool`` result of
    the NaN test of a quantization, ``where(isnan(x), 0, x)``, when its
    consumer stays in NCHW; TVM 0.27's legalization of ``layout_transform``
    then fails on the ``bool`` tensor (it fills padding with a float zero).
    Transforming ``x`` first and testing afterwards is the same tensor.
    """
    from tvm import relax
    from tvm.relax.dpl import is_op, wildcard

    x = wildcard()
    pattern = is_op("relax.layout_transform")(is_op("relax.isnan")(x))

    def rewrite(expr, matches):
        return relax.op.isnan(relax.op.layout_transform(matches[x],
                                                        expr.attrs.index_map))

    return ir.rewrite_pass("IsnanAfterTransforms", pattern, rewrite)


def _known_shape(expr: Any) -> list[int] | None:
    """The shape of a tensor expression, or None if it is unknown or symbolic."""
    shape = getattr(expr.ty, "shape", None)
    if shape is None:
        return None
    try:
        return [int(d) for d in shape]
    except (TypeError, ValueError):
        return None


def _is_packing(index_map: Any, unpack: bool, block: int) -> bool:
    """Whether ``index_map`` is NCHW[block]c -> NCHW (``unpack``) or the reverse.

    Checked on sample points rather than by the map's text, which may differ.
    """
    samples = [(0, 1, 2, 3, block - 1), (1, 2, 0, 1, 0)] if unpack else \
        [(0, block + 1, 2, 3), (1, 2 * block - 1, 0, 1)]
    for point in samples:
        if unpack:
            n, cb, h, w, ci = point
            want = (n, cb * block + ci, h, w)
        else:
            n, c, h, w = point
            want = (n, c // block, h, w, c % block)
        try:
            got = tuple(int(v) for v in index_map.map_indices(list(point)))
        except (TypeError, ValueError):
            return False
        if got != want:
            return False
    return True


def pad_in_packed_layout():
    """A pass that pads packed activations where ``ConvertLayout`` unpacks them.

    TVM 0.27's ``ConvertLayout`` has no packed-layout rule for ``nn.pad``, so
    a pad between two packed convolutions (the lowering of a ``qnn.conv2d``
    whose zero point is not 0 emits one, :mod:`d2lcc.qnn.lower_matmul`) sits
    between a transform back to NCHW and one into ``NCHW[x]c`` again: two
    copies of the activations around a third. A pad of only H and W commutes
    with the packing, so the three become one pad of the packed tensor.
    """
    from tvm import relax
    from tvm.relax.dpl import is_op, wildcard

    x = wildcard()
    unpack = is_op("relax.layout_transform")(x)
    padded = is_op("relax.nn.pad")(unpack)
    pattern = is_op("relax.layout_transform")(padded)

    def rewrite(expr, matches):
        shape, out = _known_shape(matches[x]), _known_shape(expr)
        pad = matches[padded].attrs
        widths = [int(v) for v in pad.pad_width]
        if (shape is None or out is None or len(shape) != 5 or len(out) != 5
                or str(pad.pad_mode) != "constant"
                or any(widths[:4]) or out[1] != shape[1] or out[4] != shape[4]
                or not _is_packing(matches[unpack].attrs.index_map, True, shape[4])
                or not _is_packing(expr.attrs.index_map, False, shape[4])):
            return expr
        return relax.op.nn.pad(matches[x], widths + [0, 0],
                               pad_value=float(pad.pad_value))

    return ir.rewrite_pass("PadInPackedLayout", pattern, rewrite)


#: Element-wise operators :func:`pack_through_elementwise` computes packed.
ELEMENTWISE = ("add", "subtract", "multiply", "divide", "minimum", "maximum",
               "where", "astype", "round", "sqrt", "negative", "abs")


def pack_through_elementwise():
    """A pass that packs the inputs of element-wise steps instead of their result.

    ``ConvertLayout`` (TVM 0.27) has no packed-layout rule for ``where``, so
    the requantization between two packed layers, ``where(isnan(x), 0, x)``
    then a clip and a cast, runs in NCHW between a transform out of the
    packed layout and one back into it, and a max pool on its result runs in
    NCHW too. This pass moves a transform into ``NCHW[x]c`` up through such
    steps: ``pack(f(a, b))`` becomes ``f(pack(a), pack(b))`` for the operators
    in :data:`ELEMENTWISE` whose other operands are scalars (a ``bool``
    operand only as ``isnan(a)``, tested on ``pack(a)``), ``pack(pool(a))``
    becomes a pool of ``pack(a)`` in the packed layout, and ``pack(unpack(x))``
    becomes ``x``. Run it with common-subexpression and dead-code elimination,
    which merge what it duplicates and drop the NCHW steps nothing reads.
    """
    import tvm
    from tvm import relax
    from tvm.relax.dpl import is_op, wildcard

    y, tested = wildcard(), wildcard()
    nan_test = is_op("relax.isnan")(tested)  # the only bool operand it moves past
    guarded = is_op("relax.where")(nan_test, wildcard(), wildcard())
    pattern = (is_op("relax.layout_transform")(guarded)
               | is_op("relax.layout_transform")(y))
    pools = {"relax.nn.max_pool2d": relax.op.nn.max_pool2d,
             "relax.nn.avg_pool2d": relax.op.nn.avg_pool2d}

    def rewrite(expr, matches):
        inner = matches[guarded] if guarded in matches else matches[y]
        out = _known_shape(expr)
        if not isinstance(inner, relax.Call) or out is None or len(out) != 5 \
                or not _is_packing(expr.attrs.index_map, False, out[4]):
            return expr
        index_map, shape = expr.attrs.index_map, _known_shape(inner)
        op = str(inner.op.name) if isinstance(inner.op, tvm.ir.Op) else ""
        if op == "relax.layout_transform":
            source = inner.args[0]
            if _known_shape(source) == out and _is_packing(
                    inner.attrs.index_map, True, out[4]):
                return source
            return expr
        if op in pools and str(inner.attrs.layout) == "NCHW" \
                and str(inner.attrs.out_layout) == "NCHW":
            a = inner.attrs
            return pools[op](relax.op.layout_transform(inner.args[0], index_map),
                             a.pool_size, a.strides, a.padding, a.dilation,
                             bool(a.ceil_mode), bool(a.count_include_pad),
                             layout=f"NCHW{out[4]}c")
        if op.removeprefix("relax.") not in ELEMENTWISE or shape is None:
            return expr
        args, moved = [], False
        for k, arg in enumerate(inner.args):
            dims = _known_shape(arg)
            if k == 0 and guarded in matches:  # isnan(a): test pack(a) instead
                args.append(relax.op.isnan(relax.op.layout_transform(
                    matches[tested], index_map)))
            elif getattr(arg.ty, "dtype", None) == "bool":
                return expr  # a bool transform would not legalize (TVM 0.27)
            elif dims == shape:
                args.append(relax.op.layout_transform(arg, index_map))
                moved = True
            elif dims is None or any(d != 1 for d in dims):
                return expr  # a tensor operand that is not a scalar
            else:
                args.append(arg)
        return relax.Call(inner.op, args, inner.attrs) if moved else expr

    return ir.rewrite_pass("PackThroughElementwise", pattern, rewrite)


def convert_layout_or_keep(layouts: list[str]):
    """Relax's ``ConvertLayout`` to ``layouts`` for conv2d; on failure, a warning.

    TVM 0.27's ``ConvertLayout`` fails on some graphs (for instance on
    ``R.nn.dropout``, whose result is a tuple: "Expected nested to match
    tuple"; :func:`d2lcc.compiler.remove_dropout` removes it before this pass
    runs). Then the network keeps its layout, every convolution stays in
    NCHW (legalized and scheduled as TVM does it, slower but right), and a
    ``RuntimeWarning`` says so.
    """
    import warnings

    import tvm
    from tvm import relax

    if not (isinstance(layouts, list) and len(layouts) == 2
            and all(isinstance(v, str) for v in layouts)):
        raise TypeError("nchwc.convert_layout_or_keep: layouts must be a list of two "
                        f"layout strings, got {layouts!r}")
    convert = relax.transform.ConvertLayout({"relax.nn.conv2d": layouts})

    @tvm.transform.module_pass(opt_level=0, name="ConvertLayoutOrKeep")
    def transform(mod, _ctx):
        try:
            return convert(mod)
        except tvm.error.InternalError as err:
            first = str(err).strip().splitlines()[-1][:160]
            warnings.warn(f"nchwc: ConvertLayout failed ({first}); the network keeps "
                          "NCHW and its convolutions are not packed", RuntimeWarning,
                          stacklevel=2)
            return mod

    return transform


def is_packed_conv(func: Any) -> bool:
    """Whether ``func`` is an unscheduled kernel that :func:`legalize_conv2d` wrote."""
    import tvm
    from tvm import s_tir

    if not isinstance(func, tvm.tirx.PrimFunc):
        return False
    if ir.is_scheduled(func):
        return False
    sch = s_tir.Schedule(func)
    return has_block(sch, "conv") and len(sch.get_loops(sch.get_sblock("conv"))) == 9


def schedule_module(mod: Any, blocking: Any = "auto"):
    """Return ``mod`` with :func:`schedule_conv` applied to every packed convolution.

    ``blocking`` is passed on to :func:`schedule_conv` (``"auto"`` or None).
    """
    import tvm

    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"nchwc.schedule_module: mod must be a tvm.IRModule, "
                        f"got {type(mod).__name__}")
    if blocking is not None and not (isinstance(blocking, str) and blocking == "auto"):
        raise ValueError("nchwc.schedule_module: blocking must be 'auto' or None, "
                         f"got {blocking!r}")
    updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gv, func in mod.functions.items():
        if is_packed_conv(func):
            updated[gv] = schedule_conv(func, blocking=blocking)
    return updated
