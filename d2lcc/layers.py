"""Depthwise convolution, max pooling and batch normalization: references, TensorIR, schedules.

These layers do little arithmetic per byte, so their schedules aim at moving
memory well: all cores, contiguous vector loads, and no extra passes over the
data. :func:`fold_batch_norm` removes batch normalization from inference
altogether by folding it into the preceding convolution.
"""

from __future__ import annotations

import numpy as np


def _check_positive(func: str, **values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"layers.{func}: {name}={v!r} must be a positive int")


def depthwise_conv2d_numpy(x: np.ndarray, w: np.ndarray, padding: int) -> np.ndarray:
    """Depthwise convolution, stride 1: ``x`` NCHW, ``w`` ``[C, KH, KW]``, one filter per channel."""
    if x.ndim != 4 or w.ndim != 3 or w.shape[0] != x.shape[1]:
        raise ValueError(f"layers.depthwise_conv2d_numpy: need x NCHW and w [C, KH, KW], got {x.shape}, {w.shape}")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[1:], axis=(2, 3))
    return np.einsum("nchwij,cij->nchw", win, w, optimize=True).astype(x.dtype)


def max_pool2d_numpy(x: np.ndarray, size: int) -> np.ndarray:
    """Max pooling with a ``size x size`` window and stride ``size`` (no padding)."""
    n, c, h, w = x.shape
    if h % size or w % size:
        raise ValueError(f"layers.max_pool2d_numpy: height {h} and width {w} must be multiples of size={size}")
    return x.reshape(n, c, h // size, size, w // size, size).max(axis=(3, 5))


def batch_norm_numpy(x, gamma, beta, mean, var, eps: float = 1e-5) -> np.ndarray:
    """Inference batch normalization of NCHW ``x`` with per-channel statistics."""
    shape = (1, -1, 1, 1)
    scale = gamma / np.sqrt(var + eps)
    return ((x - mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)).astype(x.dtype)


def fold_batch_norm(w, gamma, beta, mean, var, eps: float = 1e-5):
    """Fold batch normalization into the convolution before it: return ``(w_folded, bias)``.

    ``batch_norm(conv(x, w)) == conv(x, w_folded) + bias`` because the
    normalization is an affine map per output channel.
    """
    if w.ndim != 4 or not (len(gamma) == len(beta) == len(mean) == len(var) == w.shape[0]):
        raise ValueError(f"layers.fold_batch_norm: need OIHW weights and {w.shape[0]} statistics per input")
    scale = gamma / np.sqrt(var + eps)
    w_folded = (w * scale.reshape(-1, 1, 1, 1)).astype(w.dtype)
    return w_folded, (beta - mean * scale).astype(w.dtype)


def depthwise_conv2d_te(n: int, c: int, h: int, w: int, k: int, padding: int, dtype: str = "float32"):
    """The PrimFunc of a stride-1 depthwise convolution (blocks ``pad`` and ``dwconv``)."""
    from tvm import te

    from .conv import _padded

    _check_positive("depthwise_conv2d_te", n=n, c=c, h=h, w=w, k=k)
    x = te.placeholder((n, c, h, w), dtype, name="X")
    wt = te.placeholder((c, k, k), dtype, name="W")
    xp = _padded(x, padding)
    rh, rw = te.reduce_axis((0, k), "rh"), te.reduce_axis((0, k), "rw")
    y = te.compute(
        (n, c, h + 2 * padding - k + 1, w + 2 * padding - k + 1),
        lambda b, ch, i, j: te.sum(xp[b, ch, i + rh, j + rw] * wt[ch, rh, rw], axis=[rh, rw]),
        name="dwconv",
    )
    return te.create_prim_func([x, wt, y])


def schedule_depthwise(func, lanes: int | None = None):
    """Channels in parallel, each channel's padded copy made just before use, rows vectorized."""
    import tvm

    from .conv import _largest_divisor, simd_floats

    sch = tvm.s_tir.Schedule(func)
    blk = sch.get_sblock("dwconv")
    b, ch, i, j, rh, rw = sch.get_loops(blk)
    lanes = lanes or _largest_divisor(int(sch.get(j).extent), simd_floats())
    jo, ji = sch.split(j, [None, lanes])
    sch.reorder(b, ch, i, jo, rh, rw, ji)
    fused = sch.fuse(b, ch)
    sch.parallel(fused)
    sch.compute_at(sch.get_sblock("pad"), fused)  # pad one channel at a time, while it is in cache
    sch.unroll(rh)
    sch.unroll(rw)
    sch.vectorize(ji)
    sch.decompose_reduction(blk, rh)
    return sch.mod


def max_pool2d_te(n: int, c: int, h: int, w: int, size: int, dtype: str = "float32"):
    """The PrimFunc of ``size x size`` max pooling with stride ``size`` (block ``pool``)."""
    from tvm import te

    _check_positive("max_pool2d_te", n=n, c=c, h=h, w=w, size=size)
    if h % size or w % size:
        raise ValueError(f"layers.max_pool2d_te: height {h} and width {w} must be multiples of size={size}")
    x = te.placeholder((n, c, h, w), dtype, name="X")
    rh, rw = te.reduce_axis((0, size), "rh"), te.reduce_axis((0, size), "rw")
    y = te.compute(
        (n, c, h // size, w // size),
        lambda b, ch, i, j: te.max(x[b, ch, i * size + rh, j * size + rw], axis=[rh, rw]),
        name="pool",
    )
    return te.create_prim_func([x, y])


def schedule_pool(func):
    """Channels in parallel and the window loops unrolled.

    With stride ``size``, neighbouring outputs read inputs ``size`` apart, so a
    vector of outputs would need a gather; we leave the width loop scalar and
    let each output's window be straight-line code.
    """
    import tvm

    sch = tvm.s_tir.Schedule(func)
    blk = sch.get_sblock("pool")
    b, ch, i, j, rh, rw = sch.get_loops(blk)
    sch.parallel(sch.fuse(b, ch))
    sch.unroll(rh)
    sch.unroll(rw)
    return sch.mod


def batch_norm_te(shape: tuple[int, ...], eps: float = 1e-5, dtype: str = "float32"):
    """The PrimFunc of inference batch normalization over axis 1 of ``shape``.

    ``shape`` is NCHW, or NCHW[x]c when it has five axes (channel ``c * x + cb``).
    Stages: ``scale`` and ``shift`` (one value per channel), then ``bn``.
    """
    from tvm import te

    if len(shape) not in (4, 5):
        raise ValueError(f"layers.batch_norm_te: shape={shape} must be NCHW or NCHW[x]c")
    channels = shape[1] * (shape[4] if len(shape) == 5 else 1)
    x = te.placeholder(shape, dtype, name="X")
    gamma, beta, mean, var = (te.placeholder((channels,), dtype, name=s) for s in ("gamma", "beta", "mean", "var"))
    scale = te.compute((channels,), lambda c: gamma[c] / te.sqrt(var[c] + eps), name="scale")
    shift = te.compute((channels,), lambda c: beta[c] - mean[c] * scale[c], name="shift")

    def channel(idx):
        return idx[1] * shape[4] + idx[4] if len(shape) == 5 else idx[1]

    y = te.compute(shape, lambda *i: x[i] * scale[channel(i)] + shift[channel(i)], name="bn")
    return te.create_prim_func([x, gamma, beta, mean, var, y])


def schedule_batch_norm(func):
    """One pass over the data: (batch, channel) loops in parallel, the rest fused and vectorized."""
    import tvm

    from .conv import _largest_divisor, simd_floats

    sch = tvm.s_tir.Schedule(func)
    loops = sch.get_loops(sch.get_sblock("bn"))
    inner = sch.fuse(*loops[2:])
    lanes = _largest_divisor(int(sch.get(inner).extent), simd_floats())
    _, vec = sch.split(inner, [None, lanes])
    sch.vectorize(vec)
    sch.parallel(sch.fuse(loops[0], loops[1]))
    return sch.mod
