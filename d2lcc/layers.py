"""Depthwise convolution, max pooling, batch normalization: TensorIR and schedules.

These layers do little arithmetic per byte, so their schedules aim at moving
memory well: all cores, contiguous vector loads, and no extra passes over the
data. :func:`fold_batch_norm` removes batch normalization from inference
altogether by folding it into the preceding convolution.

The book shows the functions in ``__teaching__`` verbatim as cells a reader
can edit; they check nothing. The public builders (:func:`schedule_depthwise`,
:func:`schedule_pool`, :func:`schedule_batch_norm`, :func:`fold_batch_norm`)
check their arguments with :mod:`d2lcc.checks` and call them. NaN and
infinities in the data propagate as IEEE arithmetic says; the statistics of
batch normalization must be finite, with ``eps > 0`` and ``var + eps > 0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import checks
from .conv import (FLOAT_DTYPES, check_elements, largest_divisor, pad_spatial,
                   schedule_block)

__teaching__ = ("tile_depthwise", "parallel_pool", "vectorize_batch_norm",
                "fold_into_conv")


def _data(func: str, x: Any, ndim: int = 4) -> np.ndarray:
    return checks.array(func, "x", x, ndim=ndim, dtypes=FLOAT_DTYPES, nonempty=True)


def _sizes(func: str, **sizes: Any) -> list[int]:
    return [checks.positive_int(func, name, v) for name, v in sizes.items()]


def _padding(func: str, padding: Any, k: int) -> int:
    padding = checks.nonnegative_int(func, "padding", padding)
    if padding > k - 1:
        raise ValueError(f"{func}: padding={padding} must be < the kernel size {k} "
                         "(a wider border only adds zero outputs)")
    return padding


def depthwise_conv2d_numpy(x: np.ndarray, w: np.ndarray, padding: int) -> np.ndarray:
    """Depthwise convolution, stride 1: ``x`` NCHW, one filter per channel in ``w``.

    ``w`` is ``[C, KH, KW]``; ``padding`` zeros are added on each side.
    """
    func = "layers.depthwise_conv2d_numpy"
    x = _data(func, x)
    w = checks.array(func, "w", w, ndim=3, dtypes=(str(x.dtype),), nonempty=True)
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"{func}: w has {w.shape[0]} filters but x has {x.shape[1]} "
                         "channels (w must be [C, KH, KW])")
    padding = _padding(func, padding, min(w.shape[1:]))
    if min(x.shape[2] - w.shape[1], x.shape[3] - w.shape[2]) + 2 * padding < 0:
        raise ValueError(f"{func}: the kernel {w.shape[1:]} is larger than the "
                         "padded x")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[1:], axis=(2, 3))
    return np.einsum("nchwij,cij->nchw", win, w, optimize=True).astype(x.dtype)


def max_pool2d_numpy(x: np.ndarray, size: int) -> np.ndarray:
    """Max pooling with a ``size x size`` window and stride ``size`` (no padding).

    A window holding NaN gives NaN, as :func:`numpy.max` does.
    """
    func = "layers.max_pool2d_numpy"
    x = _data(func, x)
    size = checks.positive_int(func, "size", size)
    n, c, h, w = x.shape
    checks.multiple_of(func, "height", h, size, "size")
    checks.multiple_of(func, "width", w, size, "size")
    return x.reshape(n, c, h // size, size, w // size, size).max(axis=(3, 5))


def _statistics(func: str, channels: int, gamma, beta, mean, var, eps) -> float:
    for name, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        v = checks.array(func, name, v, ndim=1, dtypes=FLOAT_DTYPES, finite=True)
        if len(v) != channels:
            raise ValueError(f"{func}: {name} has {len(v)} values, expected one per "
                             f"channel ({channels})")
    eps = checks.real(func, "eps", eps, positive=True)
    if not np.all(var + eps > 0):
        raise ValueError(f"{func}: var + eps must be > 0 for every channel "
                         f"(min var={float(np.min(var))}, eps={eps})")
    return eps


def batch_norm_numpy(x, gamma, beta, mean, var, eps: float = 1e-5) -> np.ndarray:
    """Inference batch normalization of NCHW ``x`` with per-channel statistics."""
    func = "layers.batch_norm_numpy"
    x = _data(func, x)
    eps = _statistics(func, x.shape[1], gamma, beta, mean, var, eps)
    shape = (1, -1, 1, 1)
    scale = gamma / np.sqrt(var + eps)
    y = (x - mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)
    return y.astype(x.dtype)


def fold_into_conv(w, gamma, beta, mean, var, eps):
    """Scale each output channel's filter by ``gamma / sqrt(var + eps)``; add a bias."""
    scale = gamma / np.sqrt(var + eps)
    w_folded = w * scale.reshape(-1, 1, 1, 1)
    bias = beta - mean * scale
    return w_folded.astype(w.dtype), bias.astype(w.dtype)


def fold_batch_norm(w, gamma, beta, mean, var, eps: float = 1e-5):
    """Fold batch normalization into the convolution before it; return ``(w, bias)``.

    ``batch_norm(conv(x, w)) == conv(x, w_folded) + bias`` because the
    normalization is an affine map per output channel (:func:`fold_into_conv`).
    """
    func = "layers.fold_batch_norm"
    w = checks.array(func, "w", w, ndim=4, dtypes=FLOAT_DTYPES, nonempty=True)
    eps = _statistics(func, w.shape[0], gamma, beta, mean, var, eps)
    return fold_into_conv(w, gamma, beta, mean, var, eps)


def depthwise_conv2d_te(n: int, c: int, h: int, w: int, k: int, padding: int,
                        dtype: str = "float32"):
    """The PrimFunc of a stride-1 depthwise convolution (blocks ``pad``, ``dwconv``)."""
    from tvm import te

    func = "layers.depthwise_conv2d_te"
    n, c, h, w, k = _sizes(func, n=n, c=c, h=h, w=w, k=k)
    padding = _padding(func, padding, k)
    if min(h, w) + 2 * padding < k:
        raise ValueError(f"{func}: k={k} is larger than the padded input "
                         f"{h + 2 * padding}x{w + 2 * padding}")
    dtype = checks.one_of(func, "dtype", dtype, FLOAT_DTYPES)
    check_elements(func, "the padded input (n, c, h, w, padding)",
                   (n, c, h + 2 * padding, w + 2 * padding))
    x = te.placeholder((n, c, h, w), dtype, name="X")
    wt = te.placeholder((c, k, k), dtype, name="W")
    xp = pad_spatial(x, padding)
    rh, rw = te.reduce_axis((0, k), "rh"), te.reduce_axis((0, k), "rw")
    y = te.compute(
        (n, c, h + 2 * padding - k + 1, w + 2 * padding - k + 1),
        lambda b, ch, i, j: te.sum(xp[b, ch, i + rh, j + rw] * wt[ch, rh, rw],
                                   axis=[rh, rw]),
        name="dwconv",
    )
    return te.create_prim_func([x, wt, y])


def tile_depthwise(sch, lanes):
    """Channels in parallel, each padded just before use; rows vectorized."""
    blk = sch.get_sblock("dwconv")
    b, ch, i, j, rh, rw = sch.get_loops(blk)
    jo, ji = sch.split(j, [None, lanes])
    sch.reorder(b, ch, i, jo, rh, rw, ji)
    fused = sch.fuse(b, ch)
    sch.parallel(fused)
    sch.compute_at(sch.get_sblock("pad"), fused)  # pad one channel, while in cache
    sch.unroll(rh)
    sch.unroll(rw)
    sch.vectorize(ji)
    sch.decompose_reduction(blk, rh)


def schedule_depthwise(func, lanes: int | None = None):
    """Schedule a :func:`depthwise_conv2d_te` function with :func:`tile_depthwise`.

    ``lanes`` (default: the largest divisor of the output width that fits one
    vector register) must divide the output width. Returns the IRModule.
    """
    from .cpu import vector_lanes

    name = "layers.schedule_depthwise"
    sch = schedule_block(name, func, "dwconv", 6)
    width = int(sch.get(sch.get_loops(sch.get_sblock("dwconv"))[3]).extent)
    if lanes is None:
        lanes = largest_divisor(width, vector_lanes())
    lanes = checks.positive_int(name, "lanes", lanes)
    checks.multiple_of(name, "output width", width, lanes, "lanes")
    tile_depthwise(sch, lanes)
    return sch.mod


def max_pool2d_te(n: int, c: int, h: int, w: int, size: int, dtype: str = "float32"):
    """The PrimFunc of ``size x size`` max pooling, stride ``size`` (block ``pool``)."""
    from tvm import te

    func = "layers.max_pool2d_te"
    n, c, h, w, size = _sizes(func, n=n, c=c, h=h, w=w, size=size)
    checks.multiple_of(func, "h", h, size, "size")
    checks.multiple_of(func, "w", w, size, "size")
    dtype = checks.one_of(func, "dtype", dtype, FLOAT_DTYPES)
    check_elements(func, "the input (n, c, h, w)", (n, c, h, w))
    x = te.placeholder((n, c, h, w), dtype, name="X")
    rh, rw = te.reduce_axis((0, size), "rh"), te.reduce_axis((0, size), "rw")
    y = te.compute(
        (n, c, h // size, w // size),
        lambda b, ch, i, j: te.max(x[b, ch, i * size + rh, j * size + rw],
                                   axis=[rh, rw]),
        name="pool",
    )
    return te.create_prim_func([x, y])


def parallel_pool(sch):
    """Channels in parallel and the window unrolled; the width loop stays scalar.

    With stride ``size``, neighbouring outputs read inputs ``size`` apart, so a
    vector of outputs would need a gather.
    """
    blk = sch.get_sblock("pool")
    b, ch, i, j, rh, rw = sch.get_loops(blk)
    sch.parallel(sch.fuse(b, ch))
    sch.unroll(rh)
    sch.unroll(rw)


def schedule_pool(func):
    """Schedule a :func:`max_pool2d_te` function with :func:`parallel_pool`."""
    sch = schedule_block("layers.schedule_pool", func, "pool", 6)
    parallel_pool(sch)
    return sch.mod


def batch_norm_te(shape: tuple[int, ...], eps: float = 1e-5, dtype: str = "float32"):
    """The PrimFunc of inference batch normalization over axis 1 of ``shape``.

    ``shape`` is NCHW, or NCHW[x]c when it has five axes (channel ``c * x + cb``).
    Stages: ``scale`` and ``shift`` (one value per channel), then ``bn``. The
    kernel computes ``1 / sqrt(var + eps)`` with ``eps > 0``: a channel whose
    ``var`` is below ``-eps`` at run time gives NaN, as IEEE arithmetic says.
    """
    from tvm import te

    func = "layers.batch_norm_te"
    if isinstance(shape, (tuple, list)) and len(shape) not in (4, 5):
        raise ValueError(f"{func}: shape={shape} must be NCHW or NCHW[x]c "
                         "(4 or 5 axes)")
    shape = checks.shape(func, "shape", shape)
    check_elements(func, "the input (shape)", shape)
    eps = checks.real(func, "eps", eps, positive=True)
    dtype = checks.one_of(func, "dtype", dtype, FLOAT_DTYPES)
    channels = shape[1] * (shape[4] if len(shape) == 5 else 1)
    x = te.placeholder(shape, dtype, name="X")
    gamma, beta, mean, var = (te.placeholder((channels,), dtype, name=s)
                              for s in ("gamma", "beta", "mean", "var"))
    scale = te.compute((channels,), lambda c: gamma[c] / te.sqrt(var[c] + eps),
                       name="scale")
    shift = te.compute((channels,), lambda c: beta[c] - mean[c] * scale[c],
                       name="shift")

    def channel(idx):
        return idx[1] * shape[4] + idx[4] if len(shape) == 5 else idx[1]

    y = te.compute(shape, lambda *i: x[i] * scale[channel(i)] + shift[channel(i)],
                   name="bn")
    return te.create_prim_func([x, gamma, beta, mean, var, y])


def vectorize_batch_norm(sch, lanes):
    """One pass: (batch, channel) loops in parallel, the rest fused and vectorized."""
    loops = sch.get_loops(sch.get_sblock("bn"))
    inner = sch.fuse(*loops[2:])
    _, vec = sch.split(inner, [None, lanes])
    sch.vectorize(vec)
    sch.parallel(sch.fuse(loops[0], loops[1]))


def schedule_batch_norm(func, lanes: int | None = None):
    """Schedule a :func:`batch_norm_te` function with :func:`vectorize_batch_norm`.

    ``lanes`` (default: the largest divisor of a channel's element count that
    fits one vector register) must divide that count. Returns the IRModule.
    """
    from .cpu import vector_lanes

    name = "layers.schedule_batch_norm"
    sch = schedule_block(name, func, "bn", (4, 5))
    loops = sch.get_loops(sch.get_sblock("bn"))
    inner = int(np.prod([int(sch.get(v).extent) for v in loops[2:]]))
    if lanes is None:
        lanes = largest_divisor(inner, vector_lanes())
    lanes = checks.positive_int(name, "lanes", lanes)
    checks.multiple_of(name, "elements per channel", inner, lanes, "lanes")
    vectorize_batch_norm(sch, lanes)
    return sch.mod
