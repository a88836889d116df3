"""Valid example arguments of d2lcc.int8.amx's and d2lcc.asm's public functions."""

import numpy as np

LISTING = ".LBB0_1:\n\tvpdpbusd\t%zmm1, %zmm2, %zmm0\n\tjne\t.LBB0_1\n"

EXAMPLES = {
    "d2lcc.int8.amx.matmul": lambda: dict(m=32, n=32, k=64),
    "d2lcc.int8.amx.supports": lambda: dict(target=None),
    "d2lcc.int8.amx.multiply": lambda: dict(a=np.zeros((32, 64), np.uint8),
                                            b=np.zeros((64, 32), np.int8)),
    "d2lcc.asm.instructions": lambda: dict(asm=LISTING),
    "d2lcc.asm.mnemonic": lambda: dict(instruction="vpdpbusd\t%zmm1, %zmm2, %zmm0"),
    "d2lcc.asm.mnemonic_counts": lambda: dict(asm=LISTING),
    "d2lcc.asm.hot_loop": lambda: dict(asm=LISTING, name="vpdpbusd"),
}

#: multiply runs only on an AMX CPU; elsewhere its valid call raises RuntimeError.
NO_BASELINE = {"d2lcc.int8.amx.multiply"}
