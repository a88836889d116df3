"""Valid example arguments of d2lcc.int8.x86's public functions (test_public_api)."""

import numpy as np


def _kernel():
    from tvm import te

    from d2lcc.int8 import x86

    a = te.placeholder((4, 8), "uint8", name="a")
    b = te.placeholder((1, 2, 8, 4), "int8", name="b")
    return te.create_prim_func([a, b, x86.matmul_compute(a, b)])


def _module():
    import tvm

    return tvm.IRModule({"k": _kernel()})


def _schedule():
    from tvm import s_tir

    from d2lcc.int8 import x86

    return s_tir.Schedule(x86.matmul_te(8, 8, 8, 8))


EXAMPLES = {
    "d2lcc.int8.x86.isa": lambda: dict(name="avx2"),
    "d2lcc.int8.x86.isa_of": lambda: dict(target=None),
    "d2lcc.int8.x86.dot_desc": lambda: dict(lanes=8),
    "d2lcc.int8.x86.dot_vnni": lambda: dict(lanes=16),
    "d2lcc.int8.x86.intrinsic": lambda: dict(name="avx2"),
    "d2lcc.int8.x86.pack_weight": lambda: dict(b=np.zeros((8, 16), np.int8),
                                               lanes=8),
    "d2lcc.int8.x86.pack_conv_weight": lambda: dict(
        w=np.zeros((8, 3, 3, 3), np.int8), lanes=8),
    "d2lcc.int8.x86.used_channels": lambda: dict(w=np.zeros((8, 8, 3, 3), np.int8)),
    "d2lcc.int8.x86.saturation_free": lambda: dict(b=np.zeros((4, 4), np.int8),
                                                   axis=0),
    "d2lcc.int8.x86.matmul_te": lambda: dict(m=8, n=16, k=8, lanes=8),
    "d2lcc.int8.x86.matmul": lambda: dict(m=8, n=16, k=8, isa_name="avx2"),
    "d2lcc.int8.x86.largest_divisor": lambda: dict(n=12, limit=5),
    "d2lcc.int8.x86.legalize_map": lambda: dict(target=None, base=None),
    "d2lcc.int8.x86.schedule_kernel": lambda: dict(func=_kernel(), target=None),
    "d2lcc.int8.x86.schedule_module": lambda: dict(mod=_module(), target=None),
    "d2lcc.int8.x86.fold_epilogue": lambda: dict(sch=_schedule(), block="C"),
}


def _te_conv():
    from tvm import te

    data = te.placeholder((1, 3, 6, 6), "uint8", name="data")
    weight = te.placeholder((1, 1, 3, 3, 8, 4), "int8", name="weight")
    return dict(data=data, weight=weight, strides=[1, 1], padding=[1, 1, 1, 1],
                dilation=[1, 1])


def _te_matmul():
    from tvm import te

    return dict(data=te.placeholder((4, 8), "uint8", name="a"),
                weight=te.placeholder((1, 2, 8, 4), "int8", name="b"))


EXAMPLES.update({
    "d2lcc.int8.x86.conv2d_compute": _te_conv,
    "d2lcc.int8.x86.matmul_compute": _te_matmul,
})
