"""2-D convolution: NumPy references, TensorIR definitions and CPU schedules.

Everything here is stride 1 with symmetric zero padding, the case of the
3x3 convolutions that dominate ResNet-style networks. Layouts:

- ``NCHW`` data and ``OIHW`` weights, as frameworks store them;
- the packed ``NCHW[x]c`` layout: data ``[N, C/x, H, W, x]``, weights
  ``[O/y, C/x, KH, KW, x, y]`` and output ``[N, O/y, H, W, y]``, so that ``y``
  output channels sit next to each other in memory and fill one SIMD register.
"""

from __future__ import annotations

import numpy as np


def _check_nchw(func: str, x: np.ndarray, w: np.ndarray, padding: int) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"{func}: x and w must be 4-D (NCHW, OIHW), got x.ndim={x.ndim}, w.ndim={w.ndim}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"{func}: x has {x.shape[1]} channels but w expects {w.shape[1]}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"{func}: padding={padding!r} must be a non-negative int")
    if x.shape[2] + 2 * padding < w.shape[2] or x.shape[3] + 2 * padding < w.shape[3]:
        raise ValueError(f"{func}: kernel {w.shape[2:]} is larger than the padded input")


def conv2d_numpy(x: np.ndarray, w: np.ndarray, padding: int = 0) -> np.ndarray:
    """Reference convolution (stride 1): ``x`` is NCHW, ``w`` is OIHW; returns NCHW."""
    _check_nchw("conv.conv2d_numpy", x, w, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))  # N C OH OW KH KW
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True).astype(x.dtype)


def im2col(x: np.ndarray, kh: int, kw: int, padding: int = 0) -> np.ndarray:
    """Unfold the (padded) input of one image into a ``[C*KH*KW, OH*OW]`` matrix."""
    if x.ndim != 3:
        raise ValueError(f"conv.im2col: x must be one CHW image, got shape {x.shape}")
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    oh, ow = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    cols = np.empty((c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):  # one strided copy per kernel tap
        for j in range(kw):
            cols[:, i, j] = xp[:, i : i + oh, j : j + ow]
    return cols.reshape(c * kh * kw, oh * ow)


def conv2d_im2col(x: np.ndarray, w: np.ndarray, padding: int = 0) -> np.ndarray:
    """Convolution as im2col followed by one NumPy (BLAS) matrix multiplication per image."""
    _check_nchw("conv.conv2d_im2col", x, w, padding)
    o, _, kh, kw = w.shape
    w2 = w.reshape(o, -1)
    oh = x.shape[2] + 2 * padding - kh + 1
    ow = x.shape[3] + 2 * padding - kw + 1
    return np.stack([(w2 @ im2col(img, kh, kw, padding)).reshape(o, oh, ow) for img in x])


def pack_data(x: np.ndarray, block: int) -> np.ndarray:
    """NCHW -> NCHW[block]c: ``[N, C/block, H, W, block]``."""
    n, c, h, w = x.shape
    if c % block:
        raise ValueError(f"conv.pack_data: channels={c} is not a multiple of block={block}")
    return np.ascontiguousarray(x.reshape(n, c // block, block, h, w).transpose(0, 1, 3, 4, 2))


def unpack_data(y: np.ndarray) -> np.ndarray:
    """NCHW[x]c -> NCHW (the inverse of :func:`pack_data`)."""
    n, cc, h, w, b = y.shape
    return np.ascontiguousarray(y.transpose(0, 1, 4, 2, 3).reshape(n, cc * b, h, w))


def pack_weight(w: np.ndarray, in_block: int, out_block: int) -> np.ndarray:
    """OIHW -> ``[O/out_block, I/in_block, KH, KW, in_block, out_block]``."""
    o, i, kh, kw = w.shape
    if o % out_block or i % in_block:
        raise ValueError(
            f"conv.pack_weight: shape {w.shape} does not divide into out_block={out_block}, in_block={in_block}"
        )
    w6 = w.reshape(o // out_block, out_block, i // in_block, in_block, kh, kw)
    return np.ascontiguousarray(w6.transpose(0, 2, 4, 5, 3, 1))


def simd_floats() -> int:
    """float32 lanes of this CPU's widest vector register: 16 with AVX-512, else 8."""
    from .machine import env

    return 16 if env().has("avx512f") else 8


def _padded(x, padding: int, name: str = "pad"):
    """A TE stage that zero-pads the two spatial axes (axes 2 and 3) of ``x``."""
    from tvm import te

    shape = list(x.shape)
    h, w = shape[2], shape[3]
    shape[2], shape[3] = h + 2 * padding, w + 2 * padding

    def value(*idx):
        i, j = idx[2], idx[3]
        inside = te.all(i >= padding, i < h + padding, j >= padding, j < w + padding)
        src = list(idx)
        src[2], src[3] = i - padding, j - padding
        return te.if_then_else(inside, x[tuple(src)], te.const(0.0, x.dtype))

    return te.compute(shape, value, name=name)


def conv2d_nchw_te(n: int, c: int, h: int, w: int, o: int, k: int, padding: int, dtype: str = "float32"):
    """Return the PrimFunc ``Y = conv2d(X, W)`` in NCHW/OIHW with blocks ``pad`` and ``conv``."""
    from tvm import te

    x = te.placeholder((n, c, h, w), dtype, name="X")
    wt = te.placeholder((o, c, k, k), dtype, name="W")
    xp = _padded(x, padding)
    ric, rkh, rkw = te.reduce_axis((0, c), "ric"), te.reduce_axis((0, k), "rkh"), te.reduce_axis((0, k), "rkw")
    oh, ow = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    y = te.compute(
        (n, o, oh, ow),
        lambda b, oc, i, j: te.sum(xp[b, ric, i + rkh, j + rkw] * wt[oc, ric, rkh, rkw], axis=[ric, rkh, rkw]),
        name="conv",
    )
    return te.create_prim_func([x, wt, y])


def conv2d_nchwc_te(
    n: int, c: int, h: int, w: int, o: int, k: int, padding: int, block: int, dtype: str = "float32",
    bias: bool = False,
):
    """Return the PrimFunc of the packed convolution (NCHW[block]c data, see :func:`pack_weight`).

    Both the input and the output channels are split into chunks of ``block``.
    With ``bias=True`` the function takes a third input ``B[O/block, block]``
    that a stage named ``bias`` adds to every output.
    """
    from tvm import te

    if c % block or o % block:
        raise ValueError(f"conv.conv2d_nchwc_te: channels c={c}, o={o} must be multiples of block={block}")
    x = te.placeholder((n, c // block, h, w, block), dtype, name="X")
    wt = te.placeholder((o // block, c // block, k, k, block, block), dtype, name="W")
    xp = _padded(x, padding)
    rcc, rcb = te.reduce_axis((0, c // block), "rcc"), te.reduce_axis((0, block), "rcb")
    rkh, rkw = te.reduce_axis((0, k), "rkh"), te.reduce_axis((0, k), "rkw")
    oh, ow = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    y = te.compute(
        (n, o // block, oh, ow, block),
        lambda b, oc, i, j, ob: te.sum(
            xp[b, rcc, i + rkh, j + rkw, rcb] * wt[oc, rcc, rkh, rkw, rcb, ob], axis=[rcc, rkh, rkw, rcb]
        ),
        name="conv",
    )
    if not bias:
        return te.create_prim_func([x, wt, y])
    bv = te.placeholder((o // block, block), dtype, name="B")
    z = te.compute(y.shape, lambda b, oc, i, j, ob: y[b, oc, i, j, ob] + bv[oc, ob], name="bias")
    return te.create_prim_func([x, wt, bv, z])


def _largest_divisor(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _has_block(sch, name: str) -> bool:
    try:
        sch.get_sblock(name)
    except Exception:  # noqa: BLE001 (TVM raises its own error type)
        return False
    return True


def _parallel_pad(sch) -> None:
    """Run the padding stage in parallel over its (batch, channel) loops."""
    loops = sch.get_loops(sch.get_sblock("pad"))
    sch.parallel(sch.fuse(loops[0], loops[1]))


def schedule_tiled(func, oc_tile: int = 4, ow_tile: int | None = None):
    """Tile the NCHW convolution of :func:`conv2d_nchw_te` for registers; return the IRModule.

    An ``oc_tile x ow_tile`` block of outputs stays in registers while the
    reduction runs; the ``ow_tile`` axis (contiguous in memory) is vectorized
    and the (batch, channel-tile, row) loops run in parallel.
    """
    import tvm

    sch = tvm.s_tir.Schedule(func)
    conv = sch.get_sblock("conv")
    b, oc, i, j, rc, rh, rw = sch.get_loops(conv)
    n_oc, n_ow = (int(v.extent) for v in (sch.get(oc), sch.get(j)))
    if n_oc % oc_tile:
        raise ValueError(f"conv.schedule_tiled: oc_tile={oc_tile} does not divide {n_oc} output channels")
    ow_tile = ow_tile or _largest_divisor(n_ow, simd_floats())
    if n_ow % ow_tile:
        raise ValueError(f"conv.schedule_tiled: ow_tile={ow_tile} does not divide output width {n_ow}")
    oco, oci = sch.split(oc, [None, oc_tile])
    jo, ji = sch.split(j, [None, ow_tile])
    sch.reorder(b, oco, i, jo, rc, rh, rw, oci, ji)
    acc = sch.cache_write(conv, 0, "local")
    sch.reverse_compute_at(acc, jo)
    sch.parallel(sch.fuse(b, oco, i))
    sch.unroll(oci)
    sch.vectorize(ji)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(conv, rc)
    _parallel_pad(sch)
    return sch.mod


def schedule_packed(func, ow_tile: int | None = None):
    """Schedule :func:`conv2d_nchwc_te`: vectorize the output-channel block; return the IRModule.

    Each step of the reduction broadcasts one input value and multiplies it
    with a vector of ``block`` weights (one per output channel), accumulating
    into ``ow_tile`` vector registers, one per output column.
    """
    import tvm

    sch = tvm.s_tir.Schedule(func)
    conv = sch.get_sblock("conv")
    b, oc, i, j, ob, rcc, rh, rw, rcb = sch.get_loops(conv)
    n_ow = int(sch.get(j).extent)
    ow_tile = ow_tile or _largest_divisor(n_ow, 14)
    if n_ow % ow_tile:
        raise ValueError(f"conv.schedule_packed: ow_tile={ow_tile} does not divide output width {n_ow}")
    jo, ji = sch.split(j, [None, ow_tile])
    sch.reorder(b, oc, i, jo, rcc, rh, rw, rcb, ji, ob)
    acc = sch.cache_write(conv, 0, "local")
    if _has_block(sch, "bias"):  # add the bias while copying the accumulators out
        sch.reverse_compute_inline(sch.get_sblock("bias"))
    sch.reverse_compute_at(acc, jo)
    sch.parallel(sch.fuse(b, oc, i))
    sch.unroll(ji)
    sch.vectorize(ob)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.decompose_reduction(conv, rcc)
    _parallel_pad(sch)
    return sch.mod


def onnxruntime_conv2d(w: np.ndarray, padding: int, num_threads: int | None = None, groups: int = 1):
    """Return ``f(x) -> y``: onnxruntime's Conv (stride 1) with the weights ``w`` (OIHW) baked in.

    ``groups`` splits the channels into groups; with as many groups as
    channels (and ``w`` of shape ``[C, 1, KH, KW]``) it is a depthwise convolution.

    The model is built in memory with the ``onnx`` helpers; onnxruntime runs it
    on ``num_threads`` threads (default: the cores this process may use).
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from .machine import cores

    if w.ndim != 4 or w.dtype != np.float32:
        raise ValueError(f"conv.onnxruntime_conv2d: w must be a 4-D float32 OIHW array, got {w.dtype} {w.shape}")
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], pads=[padding] * 4, kernel_shape=list(w.shape[2:]), group=groups
    )
    graph = helper.make_graph(
        [node], "conv2d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", w.shape[1] * groups, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads or cores()
    # Idle onnxruntime threads would otherwise spin and steal the cores from whatever runs next.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x})[0]


def build(mod, target=None):
    """Compile a scheduled convolution (IRModule or PrimFunc) for ``target`` (default: this CPU)."""
    import tvm

    from .target import host

    return tvm.compile(mod, target=target or host())


def runner(lib, *arrays: np.ndarray, out_shape: tuple[int, ...], dtype: str = "float32"):
    """Copy ``arrays`` to TVM once; return ``(call, out)``: ``call()`` runs ``lib`` and fills ``out``.

    ``out.numpy()`` reads the result back; ``call`` is what benchmarks time.
    """
    import tvm

    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in arrays]
    out = tvm.runtime.tensor(np.zeros(out_shape, dtype), dev)
    return (lambda: lib(*args, out)), out
