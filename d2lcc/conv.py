"""2-D convolution: NumPy references, TensorIR definitions and CPU schedules.

Everything here is stride 1 with symmetric zero padding, the case of the
3x3 convolutions that dominate ResNet-style networks. Layouts:

- ``NCHW`` data and ``OIHW`` weights, as frameworks store them;
- the packed ``NCHW[x]c`` layout: data ``[N, C/x, H, W, x]``, weights
  ``[O/y, C/x, KH, KW, x, y]`` and output ``[N, O/y, H, W, y]``, so that ``y``
  output channels sit next to each other in memory and fill one SIMD register.

The book shows the functions listed in ``__teaching__`` verbatim, as cells a
reader can edit: :func:`unfold` (im2col), :func:`conv_nchw` (the definition),
:func:`tile_nchw` and :func:`tile_nchwc` (the schedules). They check nothing;
the public functions :func:`im2col`, :func:`conv2d_nchw_te`,
:func:`schedule_tiled` and :func:`schedule_packed` check their arguments and
then call them.

Padding is at most ``kernel - 1`` on each side: a wider border would only add
outputs that are always zero. NaN and infinities in the data propagate as
IEEE arithmetic says (``0 * inf`` is NaN).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import checks

__teaching__ = ("unfold", "conv_nchw", "tile_nchw", "tile_nchwc")

#: The dtypes the references and TensorIR builders accept.
FLOAT_DTYPES = ("float16", "float32", "float64")


def _float_array(func: str, name: str, value: Any, ndim: int) -> np.ndarray:
    return checks.array(func, name, value, ndim=ndim, dtypes=FLOAT_DTYPES,
                        nonempty=True)


def _padding(func: str, padding: Any, kh: int, kw: int) -> int:
    padding = checks.nonnegative_int(func, "padding", padding)
    if padding > min(kh, kw) - 1:
        raise ValueError(f"{func}: padding={padding} must be < the kernel size "
                         f"{min(kh, kw)} (a wider border only adds zero outputs)")
    return padding


def _kernel_fits(func: str, h: int, w: int, kh: int, kw: int, padding: int) -> None:
    if h + 2 * padding < kh or w + 2 * padding < kw:
        raise ValueError(f"{func}: the kernel {kh}x{kw} (k) is larger than the padded "
                         f"input {h + 2 * padding}x{w + 2 * padding} (h, w, padding)")


def _check_nchw(func: str, x: Any, w: Any, padding: Any) -> int:
    x = _float_array(func, "x", x, 4)
    w = _float_array(func, "w", w, 4)
    if x.dtype != w.dtype:
        raise TypeError(f"{func}: x is {x.dtype} but w is {w.dtype}; use one dtype")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"{func}: x has {x.shape[1]} channels but w expects "
                         f"{w.shape[1]} (w must be OIHW)")
    padding = _padding(func, padding, *w.shape[2:])
    _kernel_fits(func, *x.shape[2:], *w.shape[2:], padding)
    return padding


def conv2d_numpy(x: np.ndarray, w: np.ndarray, padding: int = 0) -> np.ndarray:
    """Reference convolution (stride 1): ``x`` is NCHW, ``w`` is OIHW; returns NCHW."""
    padding = _check_nchw("conv.conv2d_numpy", x, w, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    # windows: N C OH OW KH KW
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True).astype(x.dtype)


def unfold(x, kh, kw, padding=0):
    """Copy every ``C x KH x KW`` window of one image ``x`` (CHW) into a column."""
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    oh, ow = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    cols = np.empty((c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):  # one strided copy per kernel tap
        for j in range(kw):
            cols[:, i, j] = xp[:, i : i + oh, j : j + ow]
    return cols.reshape(c * kh * kw, oh * ow)


def im2col(x: np.ndarray, kh: int, kw: int, padding: int = 0) -> np.ndarray:
    """Unfold the (padded) input of one image into a ``[C*KH*KW, OH*OW]`` matrix.

    Checks its arguments, then runs :func:`unfold`.
    """
    x = _float_array("conv.im2col", "x", x, 3)
    kh = checks.positive_int("conv.im2col", "kh", kh)
    kw = checks.positive_int("conv.im2col", "kw", kw)
    padding = _padding("conv.im2col", padding, kh, kw)
    _kernel_fits("conv.im2col", *x.shape[1:], kh, kw, padding)
    return unfold(x, kh, kw, padding)


def conv2d_im2col(x: np.ndarray, w: np.ndarray, padding: int = 0) -> np.ndarray:
    """Convolution as im2col, then one NumPy (BLAS) matrix product per image."""
    padding = _check_nchw("conv.conv2d_im2col", x, w, padding)
    o, _, kh, kw = w.shape
    w2 = w.reshape(o, -1)
    oh = x.shape[2] + 2 * padding - kh + 1
    ow = x.shape[3] + 2 * padding - kw + 1
    images = [w2 @ im2col(img, kh, kw, padding) for img in x]
    return np.stack([y.reshape(o, oh, ow) for y in images])


def pack_data(x: np.ndarray, block: int) -> np.ndarray:
    """NCHW -> NCHW[block]c: ``[N, C/block, H, W, block]``."""
    x = checks.array("conv.pack_data", "x", x, ndim=4)
    block = checks.positive_int("conv.pack_data", "block", block)
    n, c, h, w = x.shape
    checks.multiple_of("conv.pack_data", "channels", c, block, "block")
    packed = x.reshape(n, c // block, block, h, w).transpose(0, 1, 3, 4, 2)
    return np.ascontiguousarray(packed)


def unpack_data(y: np.ndarray) -> np.ndarray:
    """NCHW[x]c -> NCHW (the inverse of :func:`pack_data`)."""
    y = checks.array("conv.unpack_data", "y", y, ndim=5)
    n, cc, h, w, b = y.shape
    return np.ascontiguousarray(y.transpose(0, 1, 4, 2, 3).reshape(n, cc * b, h, w))


def pack_weight(w: np.ndarray, in_block: int, out_block: int) -> np.ndarray:
    """OIHW -> ``[O/out_block, I/in_block, KH, KW, in_block, out_block]``."""
    func = "conv.pack_weight"
    w = checks.array(func, "w", w, ndim=4)
    in_block = checks.positive_int(func, "in_block", in_block)
    out_block = checks.positive_int(func, "out_block", out_block)
    o, i, kh, kw = w.shape
    checks.multiple_of(func, "output channels", o, out_block, "out_block")
    checks.multiple_of(func, "input channels", i, in_block, "in_block")
    w6 = w.reshape(o // out_block, out_block, i // in_block, in_block, kh, kw)
    return np.ascontiguousarray(w6.transpose(0, 2, 4, 5, 3, 1))


def largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of ``n`` up to ``limit``: a tile that splits ``n`` evenly.

    >>> largest_divisor(56, 16)
    14
    """
    n = checks.positive_int("conv.largest_divisor", "n", n)
    limit = checks.positive_int("conv.largest_divisor", "limit", limit)
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def divisor_tiles(width: int, blocks: int, limit: int) -> list[tuple[int, int]]:
    """Register tiles ``(columns, channel blocks)`` that divide a kernel's row.

    Every pair whose columns divide ``width``, whose channel blocks divide
    ``blocks``, and whose product (the sums held in registers) is at most
    ``limit``, fewest columns first.

    >>> divisor_tiles(6, 4, 4)
    [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (3, 1)]
    """
    func = "conv.divisor_tiles"
    width = checks.positive_int(func, "width", width)
    blocks = checks.positive_int(func, "blocks", blocks)
    limit = checks.positive_int(func, "limit", limit)
    return [(ow, oc) for ow in range(1, min(width, limit) + 1) if width % ow == 0
            for oc in range(1, min(blocks, limit) + 1) if blocks % oc == 0
            and ow * oc <= limit]


def _static_shape(func: str, name: str, tensor: Any) -> tuple[int, ...]:
    from tvm import te, tirx

    if not isinstance(tensor, te.Tensor):
        raise TypeError(f"{func}: {name} must be a te.Tensor, "
                        f"got {type(tensor).__name__}")
    if not all(isinstance(d, (int, tirx.IntImm)) for d in tensor.shape):
        raise ValueError(f"{func}: {name} must have a static shape, got {tensor.shape}")
    return tuple(int(d) for d in tensor.shape)


def check_elements(func_name: str, what: str, shape: tuple[int, ...]) -> None:
    """Refuse a tensor ``shape`` of more than :data:`d2lcc.checks.MAX_COUNT` elements.

    TVM indexes buffers with 32-bit integers unless told otherwise, so a larger
    tensor would fail deep inside compilation; the message starts with
    ``func_name`` and names ``what`` (e.g. ``"the padded input"``) instead.
    """
    func_name = checks.string("conv.check_elements", "func_name", func_name)
    what = checks.string("conv.check_elements", "what", what)
    shape = checks.shape("conv.check_elements", "shape", shape, allow_zero=True)
    count = int(np.prod(shape, dtype=object))
    if count > checks.MAX_COUNT:
        raise ValueError(f"{func_name}: {what} of shape {shape} has {count} elements, "
                         f"more than {checks.MAX_COUNT}")


def pad_spatial(x, padding: int, name: str = "pad"):
    """A TE stage that zero-pads axes 2 and 3 (height, width) of ``x`` by ``padding``.

    Parameters
    ----------
    x
        A ``te.Tensor`` with at least four axes (NCHW or NCHW[x]c).
    padding
        Zeros added on each side of both spatial axes.
    name
        The name of the stage (its block in the PrimFunc).
    """
    from tvm import te

    func = "conv.pad_spatial"
    shape = list(_static_shape(func, "x", x))
    if len(shape) < 4:
        raise ValueError(f"{func}: x must have at least 4 axes, "
                         f"got shape {tuple(shape)}")
    padding = checks.nonnegative_int(func, "padding", padding)
    name = checks.string(func, "name", name)
    h, w = shape[2], shape[3]
    shape[2], shape[3] = h + 2 * padding, w + 2 * padding
    check_elements(func, "the padded x", tuple(shape))

    def value(*idx):
        i, j = idx[2], idx[3]
        inside = te.all(i >= padding, i < h + padding, j >= padding, j < w + padding)
        src = list(idx)
        src[2], src[3] = i - padding, j - padding
        return te.if_then_else(inside, x[tuple(src)], te.const(0, x.dtype))

    return te.compute(shape, value, name=name)


def conv_nchw(xp, wt):
    """The ``conv`` stage: convolve padded NCHW ``xp`` with OIHW ``wt``, stride 1."""
    from tvm import te

    n, c, hp, wp = xp.shape
    o, _, kh, kw = wt.shape
    rc = te.reduce_axis((0, c), "rc")
    ri, rj = te.reduce_axis((0, kh), "ri"), te.reduce_axis((0, kw), "rj")
    return te.compute(
        (n, o, hp - kh + 1, wp - kw + 1),
        lambda b, oc, i, j: te.sum(
            xp[b, rc, i + ri, j + rj] * wt[oc, rc, ri, rj], axis=[rc, ri, rj]
        ),
        name="conv",
    )


def _conv_sizes(func: str, n, c, h, w, o, k, padding, dtype) -> tuple:
    sizes = [checks.positive_int(func, name, v)
             for name, v in zip("nchwok", (n, c, h, w, o, k))]
    n, c, h, w, o, k = sizes
    padding = _padding(func, padding, k, k)
    _kernel_fits(func, h, w, k, k, padding)
    dtype = checks.one_of(func, "dtype", dtype, FLOAT_DTYPES)
    oh, ow = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    padded = (n, c, h + 2 * padding, w + 2 * padding)
    for what, shape in (("the padded input (n, c, h, w, padding)", padded),
                        ("the weight (o, c, k)", (o, c, k, k)),
                        ("the output (n, o, h, w, k, padding)", (n, o, oh, ow))):
        check_elements(func, what, shape)
    return n, c, h, w, o, k, padding, dtype


def conv2d_nchw_te(n: int, c: int, h: int, w: int, o: int, k: int, padding: int,
                   dtype: str = "float32"):
    """Return the PrimFunc ``Y = conv2d(X, W)`` (NCHW, OIHW): stages ``pad``, ``conv``.

    ``n, c, h, w`` is the input's shape, ``o`` the output channels, ``k`` the
    (square) kernel size and ``padding`` the zeros added on each side.
    """
    from tvm import te

    n, c, h, w, o, k, padding, dtype = _conv_sizes(
        "conv.conv2d_nchw_te", n, c, h, w, o, k, padding, dtype)
    x = te.placeholder((n, c, h, w), dtype, name="X")
    wt = te.placeholder((o, c, k, k), dtype, name="W")
    return te.create_prim_func([x, wt, conv_nchw(pad_spatial(x, padding), wt)])


def conv2d_nchwc_te(n: int, c: int, h: int, w: int, o: int, k: int, padding: int,
                    block: int, dtype: str = "float32", bias: bool = False):
    """Return the PrimFunc of the packed convolution (layouts: see :func:`pack_weight`).

    Both the input and the output channels are split into chunks of ``block``.
    With ``bias=True`` the function takes a third input ``B[O/block, block]``
    that a stage named ``bias`` adds to every output.
    """
    from tvm import te

    func = "conv.conv2d_nchwc_te"
    n, c, h, w, o, k, padding, dtype = _conv_sizes(func, n, c, h, w, o, k, padding,
                                                   dtype)
    block = checks.positive_int(func, "block", block)
    checks.multiple_of(func, "c", c, block, "block")
    checks.multiple_of(func, "o", o, block, "block")
    bias = checks.boolean(func, "bias", bias)
    x = te.placeholder((n, c // block, h, w, block), dtype, name="X")
    wt = te.placeholder((o // block, c // block, k, k, block, block), dtype, name="W")
    xp = pad_spatial(x, padding)
    rcc, rcb = te.reduce_axis((0, c // block), "rcc"), te.reduce_axis((0, block), "rcb")
    rkh, rkw = te.reduce_axis((0, k), "rkh"), te.reduce_axis((0, k), "rkw")
    oh, ow = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    y = te.compute(
        (n, o // block, oh, ow, block),
        lambda b, oc, i, j, ob: te.sum(
            xp[b, rcc, i + rkh, j + rkw, rcb] * wt[oc, rcc, rkh, rkw, rcb, ob],
            axis=[rcc, rkh, rkw, rcb],
        ),
        name="conv",
    )
    if not bias:
        return te.create_prim_func([x, wt, y])
    bv = te.placeholder((o // block, block), dtype, name="B")
    z = te.compute(y.shape, lambda b, oc, i, j, ob: y[b, oc, i, j, ob] + bv[oc, ob],
                   name="bias")
    return te.create_prim_func([x, wt, bv, z])


def schedule_block(func_name: str, func: Any, block: str,
                   n_loops: int | tuple[int, ...]):
    """Open a schedule of ``func``; check it has ``block`` inside ``n_loops`` loops.

    ``n_loops`` is a loop count or a tuple of the counts allowed.

    The public schedule builders of :mod:`d2lcc.conv` and :mod:`d2lcc.layers`
    start with this, so that a wrong function is refused with a message
    starting ``"func_name: func ..."`` instead of an error from deep in TVM.

    Returns
    -------
    tvm.s_tir.Schedule
    """
    import tvm

    func_name = checks.string("conv.schedule_block", "func_name", func_name)
    block = checks.string("conv.schedule_block", "block", block)
    allowed = n_loops if isinstance(n_loops, tuple) else (n_loops,)
    for count in allowed:
        checks.positive_int("conv.schedule_block", "n_loops", count)
    if not isinstance(func, tvm.tirx.PrimFunc):
        raise TypeError(f"{func_name}: func must be a tvm.tirx.PrimFunc, "
                        f"got {type(func).__name__}")
    sch = tvm.s_tir.Schedule(func)
    try:
        loops = sch.get_loops(sch.get_sblock(block))
    except Exception:  # noqa: BLE001 (TVM raises its own error type)
        raise ValueError(f"{func_name}: func has no block named {block!r}") from None
    if len(loops) not in allowed:
        raise ValueError(f"{func_name}: func's block {block!r} sits in {len(loops)} "
                         f"loops, expected {' or '.join(map(str, allowed))}")
    return sch


def has_block(sch: Any, name: str) -> bool:
    """Whether the schedule's function has a block called ``name``."""
    import tvm
    from tvm import s_tir

    if not isinstance(sch, s_tir.Schedule):
        raise TypeError(f"conv.has_block: sch must be a tvm.s_tir.Schedule, "
                        f"got {type(sch).__name__}")
    checks.string("conv.has_block", "name", name)
    try:
        sch.get_sblock(name)
    except (tvm.error.InternalError, ValueError, RuntimeError):
        return False
    return True


def inline_blocks(sch: Any, keep: Any = ()) -> None:
    """Inline every top-level block not named in ``keep`` into its consumers.

    Where TVM refuses (a reduction, or the block that writes the kernel's
    output) the block stays as it is. What is left is the blocks that do the
    work, each reading inputs directly, ready to be tiled and to take the
    element-wise steps as their epilogue.
    """
    from tvm import s_tir

    if not isinstance(sch, s_tir.Schedule):
        raise TypeError(f"conv.inline_blocks: sch must be a tvm.s_tir.Schedule, "
                        f"got {type(sch).__name__}")
    if not isinstance(keep, (tuple, list, set, frozenset)) \
            or not all(isinstance(k, str) for k in keep):
        raise TypeError(f"conv.inline_blocks: keep must be a collection of block "
                        f"names, got {keep!r}")
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        if sch.get(block).name_hint not in keep:
            try:
                sch.compute_inline(block)
            except s_tir.schedule.ScheduleError:
                pass


def _extent(sch, loop) -> int:
    return int(sch.get(loop).extent)


def tile_nchw(sch, oc_tile, ow_tile):
    """Keep an ``oc_tile x ow_tile`` block of outputs in registers; rows in parallel."""
    blk = sch.get_sblock("conv")
    b, oc, i, j, rc, rh, rw = sch.get_loops(blk)
    oco, oci = sch.split(oc, [None, oc_tile])
    jo, ji = sch.split(j, [None, ow_tile])
    sch.reorder(b, oco, i, jo, rc, rh, rw, oci, ji)
    acc = sch.cache_write(blk, 0, "local")  # the block of outputs, in registers
    sch.reverse_compute_at(acc, jo)
    sch.parallel(sch.fuse(b, oco, i))
    sch.unroll(oci)
    sch.vectorize(ji)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(blk, rc)
    pad = sch.get_loops(sch.get_sblock("pad"))
    sch.parallel(sch.fuse(pad[0], pad[1]))


def schedule_tiled(func, oc_tile: int = 4, ow_tile: int | None = None):
    """Schedule a :func:`conv2d_nchw_te` function with :func:`tile_nchw`; return it.

    An ``oc_tile x ow_tile`` block of outputs stays in registers while the
    reduction runs; the ``ow_tile`` axis (contiguous in memory) is vectorized
    and the (batch, channel-tile, row) loops run in parallel. ``ow_tile``
    defaults to the largest divisor of the output width that fits one vector
    register (:func:`d2lcc.cpu.vector_lanes`).
    """
    from .cpu import vector_lanes

    name = "conv.schedule_tiled"
    sch = schedule_block(name, func, "conv", 7)
    _, oc, _, j, *_ = sch.get_loops(sch.get_sblock("conv"))
    oc_tile = checks.positive_int(name, "oc_tile", oc_tile)
    checks.multiple_of(name, "output channels", _extent(sch, oc), oc_tile, "oc_tile")
    if ow_tile is None:
        ow_tile = largest_divisor(_extent(sch, j), vector_lanes())
    ow_tile = checks.positive_int(name, "ow_tile", ow_tile)
    checks.multiple_of(name, "output width", _extent(sch, j), ow_tile, "ow_tile")
    tile_nchw(sch, oc_tile, ow_tile)
    return sch.mod


def tile_nchwc(sch, ow_tile, bias):
    """Vectorize the packed convolution over its block of output channels.

    Each step of the reduction broadcasts one input value and multiplies it
    with a vector of weights (one per output channel), accumulating into
    ``ow_tile`` vector registers, one per output column.
    """
    blk = sch.get_sblock("conv")
    b, oc, i, j, ob, rcc, rh, rw, rcb = sch.get_loops(blk)
    jo, ji = sch.split(j, [None, ow_tile])
    sch.reorder(b, oc, i, jo, rcc, rh, rw, rcb, ji, ob)
    acc = sch.cache_write(blk, 0, "local")
    if bias:  # add the bias while the accumulators are copied out
        sch.reverse_compute_inline(sch.get_sblock("bias"))
    sch.reverse_compute_at(acc, jo)
    sch.parallel(sch.fuse(b, oc, i))
    sch.unroll(ji)
    sch.vectorize(ob)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(blk, rcc)
    pad = sch.get_loops(sch.get_sblock("pad"))
    sch.parallel(sch.fuse(pad[0], pad[1]))


def schedule_packed(func, ow_tile: int | None = None):
    """Schedule a :func:`conv2d_nchwc_te` function with :func:`tile_nchwc`; return it.

    ``ow_tile`` output columns are kept in vector registers; the default is
    the largest divisor of the output width up to 14, which leaves room for
    the weights and the broadcast input in 16 vector registers.
    """
    name = "conv.schedule_packed"
    sch = schedule_block(name, func, "conv", 9)
    width = _extent(sch, sch.get_loops(sch.get_sblock("conv"))[3])
    if ow_tile is None:
        ow_tile = largest_divisor(width, 14)
    ow_tile = checks.positive_int(name, "ow_tile", ow_tile)
    checks.multiple_of(name, "output width", width, ow_tile, "ow_tile")
    tile_nchwc(sch, ow_tile, bias=has_block(sch, "bias"))
    return sch.mod


def runner(mod, *arrays: np.ndarray, out_shape: tuple[int, ...],
           out_dtype: str = "float32") -> tuple[Callable[[], Any], Any]:
    """Compile ``mod`` for this CPU, copy ``arrays`` to TVM; return ``(call, out)``.

    ``call()`` runs the kernel and fills the TVM tensor ``out`` (read it back
    with ``out.numpy()``); it is what benchmarks time, since it neither
    compiles nor copies. For a single checked run, :func:`d2lcc.execute.run_prim_func`
    is simpler.

    Parameters
    ----------
    mod
        A PrimFunc or IRModule whose last parameter is the output, or a library
        that ``tvm.compile`` already returned (to read its assembly too).
    arrays
        The inputs, in the order of the function's parameters.
    out_shape, out_dtype
        Shape and dtype of the output buffer.
    """
    import tvm

    from .target import host

    if not isinstance(mod, (tvm.tirx.PrimFunc, tvm.IRModule, tvm.runtime.Executable)):
        raise TypeError("conv.runner: mod must be a PrimFunc, an IRModule or a "
                        f"compiled library, got {type(mod).__name__}")
    for i, a in enumerate(arrays):
        checks.array("conv.runner", f"arrays[{i}]", a)
    out_shape = checks.shape("conv.runner", "out_shape", out_shape)
    out_dtype = checks.string("conv.runner", "out_dtype", out_dtype)
    try:
        dtype = np.dtype(out_dtype)
    except TypeError:
        raise TypeError(f"conv.runner: out_dtype={out_dtype!r} is not a dtype") \
            from None
    check_elements("conv.runner", "out", out_shape)
    compiled = isinstance(mod, tvm.runtime.Executable)
    lib = mod if compiled else tvm.compile(mod, target=host())
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in arrays]
    out = tvm.runtime.tensor(np.zeros(out_shape, dtype), dev)
    return (lambda: lib(*args, out)), out


def onnxruntime_conv2d(w: np.ndarray, padding: int, num_threads: int | None = None,
                       groups: int = 1):
    """Return ``f(x) -> y``: onnxruntime's Conv (stride 1) with the OIHW weights ``w``.

    ``groups`` splits the channels into groups; with as many groups as
    channels (and ``w`` of shape ``[C, 1, KH, KW]``) it is a depthwise convolution.

    The model is built in memory with the ``onnx`` helpers; onnxruntime runs it
    on ``num_threads`` threads (default: the cores this process may use).
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from .machine import cores

    func = "conv.onnxruntime_conv2d"
    w = checks.array(func, "w", w, ndim=4, dtypes=("float32",), nonempty=True)
    padding = _padding(func, padding, *w.shape[2:])
    if num_threads is not None:
        num_threads = checks.positive_int(func, "num_threads", num_threads,
                                          maximum=1024)
    groups = checks.positive_int(func, "groups", groups)
    checks.multiple_of(func, "output channels", w.shape[0], groups, "groups")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[padding] * 4,
                            kernel_shape=list(w.shape[2:]), group=groups)
    x_info = helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["n", w.shape[1] * groups, "h", "w"])
    graph = helper.make_graph(
        [node], "conv2d", [x_info],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads or cores()
    # Idle onnxruntime threads would otherwise spin and steal the cores from whatever
    # runs next.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x})[0]
