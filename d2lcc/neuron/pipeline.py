"""Pipelined model parallelism across several modelled NeuronCores.

Inferentia's Neuron SDK (2019) could split a network's layers into contiguous
groups, one per NeuronCore, and stream inputs through the cores like an
assembly line ("NeuronCore Pipeline"): each core keeps its layers' weights in
its own on-chip memory, so weights are loaded once instead of for every input,
and only activations travel from core to core. This module models that:
:func:`layer_seconds` is one dense layer's time on one core,
:func:`balanced_stages` (shown in the book) splits layers into stages, and
:func:`simulate` streams inputs through the stages. All times are modelled.
"""

from __future__ import annotations

from typing import Sequence

from .. import checks
from . import cost

__teaching__ = ("balanced_stages",)


def balanced_stages(times, n_stages):
    """Split ``times`` into ``n_stages`` contiguous groups; minimize the largest sum."""
    n = len(times)
    prefix = [0.0]
    for t in times:
        prefix.append(prefix[-1] + t)
    inf = float("inf")
    # best[s][i]: smallest possible largest stage, first i layers in s stages
    best = [[inf] * (n + 1) for _ in range(n_stages + 1)]
    cut = [[0] * (n + 1) for _ in range(n_stages + 1)]
    best[0][0] = 0.0
    for s in range(1, n_stages + 1):
        for i in range(s, n + 1):
            for j in range(s - 1, i):  # the last stage holds layers j .. i-1
                cost_ = max(best[s - 1][j], prefix[i] - prefix[j])
                if cost_ < best[s][i]:
                    best[s][i], cut[s][i] = cost_, j
    bounds, i = [], n
    for s in range(n_stages, 0, -1):
        bounds.append((cut[s][i], i))
        i = cut[s][i]
    return bounds[::-1]


def partition(times: Sequence[float], n_stages: int) -> list:
    """Checked :func:`balanced_stages`: ``[(first, end), ...]`` layers of each stage."""
    func = "pipeline.partition"
    times = _times(func, "times", times)
    n_stages = checks.positive_int(func, "n_stages", n_stages, maximum=len(times))
    return balanced_stages(times, n_stages)


def layer_seconds(model: cost.CoreModel, n_in: int, n_out: int, batch: int, *,
                  dtype: str = "bfloat16", weights_on_chip: bool = True) -> float:
    """Modelled time of one dense layer ``[batch, n_in] x [n_in, n_out]`` on one core.

    The tensor engine's time is one ``nc_matmul`` per 128 x 128 weight tile
    and 512-wide slice of the batch; the DMA time moves the activations in and
    out, plus the weights when they are not kept on chip. Engines overlap, so
    the layer takes the larger of the two (a roofline), which assumes the
    kernel double-buffers well.
    """
    func = "pipeline.layer_seconds"
    _model(func, model)
    n_in = checks.positive_int(func, "n_in", n_in, maximum=1 << 20)
    n_out = checks.positive_int(func, "n_out", n_out, maximum=1 << 20)
    batch = checks.positive_int(func, "batch", batch, maximum=1 << 20)
    checks.one_of(func, "dtype", dtype, list(cost.ITEMSIZE))
    checks.boolean(func, "weights_on_chip", weights_on_chip)
    p, size = model.partitions, cost.ITEMSIZE[dtype]
    tiles = -(-n_in // p) * -(-n_out // p)
    slices = -(-batch // model.moving_max)
    width = min(batch, model.moving_max)
    compute = tiles * slices * cost.matmul_seconds(model, width, dtype)
    nbytes = batch * (n_in + n_out) * size
    if not weights_on_chip:
        nbytes += n_in * n_out * size
    return max(compute, nbytes / model.dma_bandwidth)


def simulate(stage_s: Sequence[float], n_inputs: int, link_s: float = 0.0) -> dict:
    """Stream ``n_inputs`` inputs through pipeline stages of ``stage_s`` seconds each.

    Stage ``s`` starts input ``i`` when it has finished input ``i - 1`` and
    stage ``s - 1`` has finished input ``i`` (plus ``link_s`` to move the
    activations between cores). Returns ``latency_s`` (mean time from an
    input's first stage starting to its last stage ending), ``throughput``
    (inputs per second over the whole stream) and ``total_s``.
    """
    func = "pipeline.simulate"
    stage_s = _times(func, "stage_s", stage_s)
    n_inputs = checks.positive_int(func, "n_inputs", n_inputs, maximum=1 << 20)
    link_s = checks.real(func, "link_s", link_s, minimum=0.0)
    done = [0.0] * len(stage_s)  # when each stage finished its previous input
    latency = 0.0
    for _ in range(n_inputs):
        ready = 0.0
        for s, t in enumerate(stage_s):
            start = max(done[s], ready + (link_s if s else 0.0))
            if s == 0:
                first = start
            done[s] = ready = start + t
        latency += ready - first
    return {"latency_s": latency / n_inputs, "throughput": n_inputs / done[-1],
            "total_s": done[-1]}


def _model(func, model):
    if not isinstance(model, cost.CoreModel):
        raise TypeError(f"{func}: model must be a cost.CoreModel, got "
                        f"{type(model).__name__}")


def _times(func, name, times):
    if isinstance(times, (str, bytes)) or not isinstance(times, (list, tuple)):
        raise TypeError(f"{func}: {name} must be a list of seconds, got "
                        f"{type(times).__name__}")
    if not times:
        raise ValueError(f"{func}: {name} must not be empty")
    return [checks.real(func, f"{name}[{i}]", t, minimum=0.0)
            for i, t in enumerate(times)]
