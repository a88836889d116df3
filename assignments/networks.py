"""Assignment 3: the cost of channel padding, and register tiles for a network."""

from __future__ import annotations

import numpy as np

from assignments.grading import Part

TITLE = "Padding and register tiles in a compiled network"
SOURCES = (("sec_networks_schedules", 4), ("sec_networks_schedules", 2))
STATEMENT = """
**Part 1 (3 points).** The book packs channels into blocks of `lanes` (the
vector width). Write `padding_overhead(channels, lanes)`: how many times more
multiply-adds a convolution does when its `channels` input channels are padded
up to a whole number of blocks (for example `8 / 3` for 3 channels and 8
lanes).

**Part 2 (7 points).** Write `pick_tiles(width, blocks, registers)`: the
register tile `(ow_tile, oc_tile)` of a packed convolution with output width
`width` and `blocks` output-channel blocks, on a CPU with `registers` vector
registers. A tile keeps `ow_tile * oc_tile` accumulators, `oc_tile` weight
vectors and one broadcast input in registers, so it must satisfy
`ow_tile * oc_tile + oc_tile + 1 <= registers`; `ow_tile` must divide `width`
and `oc_tile` must divide `blocks`. Among those tiles return one with the most
accumulators. The check compares your choice with every possible tile, then
schedules every convolution of the book's small CNN with your tiles
(`d2lcc.nchwc.schedule_conv`), builds it and compares it with NumPy.
"""


def check_padding(ns) -> None:
    for channels, lanes, want in ((3, 8, 8 / 3), (16, 8, 1.0), (17, 8, 24 / 17),
                                  (3, 16, 16 / 3), (1, 4, 4.0)):
        got = ns["padding_overhead"](channels, lanes)
        assert abs(float(got) - want) < 1e-9, (
            f"padding_overhead({channels}, {lanes}) = {got}, expected {want:.4f}")


def _fits(width, blocks, registers, tile) -> bool:
    ow, oc = tile
    return (width % ow == 0 and blocks % oc == 0
            and ow * oc + oc + 1 <= registers)


def _best_accumulators(width, blocks, registers) -> int:
    return max(ow * oc for ow in range(1, width + 1) for oc in range(1, blocks + 1)
               if _fits(width, blocks, registers, (ow, oc)))


def check_tiles(ns) -> None:
    import tvm

    import d2lcc
    from d2lcc import compiler, models, nchwc

    pick = ns["pick_tiles"]
    for width, blocks, registers in ((32, 4, 16), (7, 8, 16), (56, 8, 32),
                                     (13, 3, 16), (1, 1, 16), (14, 64, 32)):
        tile = tuple(int(t) for t in pick(width, blocks, registers))
        args = f"pick_tiles({width}, {blocks}, {registers}) = {tile}"
        assert len(tile) == 2 and min(tile) >= 1, f"{args}: not two positive ints"
        assert _fits(width, blocks, registers, tile), (
            f"{args} does not divide the loops or does not fit in the registers")
        best = _best_accumulators(width, blocks, registers)
        assert tile[0] * tile[1] == best, (
            f"{args} keeps {tile[0] * tile[1]} accumulators; {best} fit")
    weights = models.small_cnn_weights(0)
    target = d2lcc.target.host()
    mod = compiler.prepare(models.small_cnn_onnx(weights), target)
    registers = d2lcc.cpu.vector_registers()
    convs = [gv.name_hint for gv, f in mod.functions.items()
             if isinstance(f, tvm.tirx.PrimFunc) and nchwc.is_packed_conv(f)]
    assert convs, "the small CNN has no packed convolution (d2lcc changed?)"
    for name in convs:
        ext = nchwc.conv_extents(mod[name])
        tile = tuple(int(t) for t in pick(ext["j"], ext["o"], registers))
        mod = compiler.replace_prim_func(mod, name,
                                         nchwc.schedule_conv(mod[name], *tile))
    with target:
        net = compiler.build(compiler.dlight_pass()(mod), target)
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    got, want = net(x), models.small_cnn_numpy(x, weights)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (
        f"the CNN with your tiles is wrong: largest error {np.abs(got - want).max()}")


PARTS = (
    Part("padding_overhead", 3, ("padding_overhead",), check_padding),
    Part("pick_tiles", 7, ("pick_tiles",), check_tiles),
)
