"""Assignment 3: reference solution (course staff only)."""


def padding_overhead(channels, lanes):
    """Multiply-adds with channels padded to blocks of lanes, over those without."""
    padded = -(-channels // lanes) * lanes
    return padded / channels


def pick_tiles(width, blocks, registers):
    """(ow_tile, oc_tile): divides (width, blocks), fits, most accumulators."""
    tiles = [(ow, oc) for ow in range(1, width + 1) if width % ow == 0
             for oc in range(1, blocks + 1) if blocks % oc == 0
             if ow * oc + oc + 1 <= registers]
    return max(tiles, key=lambda t: (t[0] * t[1], t[1]))
