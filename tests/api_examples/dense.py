"""Valid example arguments of d2lcc.dense's public functions (test_public_api)."""

import numpy as np


def _te_args():
    from tvm import te

    data = te.placeholder((5, 8), "float32", name="x")
    weight = te.placeholder((2, 8, 16), "float32", name="w")
    return dict(data=data, weight=weight, n=20, mr=6)


def _kernel():
    from tvm import te

    from d2lcc import dense

    args = _te_args()
    return te.create_prim_func([args["data"], args["weight"],
                                dense.dense_compute(**args)])


def _module():
    import tvm

    return tvm.IRModule({"k": _kernel()})


EXAMPLES = {
    "d2lcc.dense.pack_weight": lambda: dict(w=np.ones((4, 20), np.float32), nr=16),
    "d2lcc.dense.dense_compute": _te_args,
    "d2lcc.dense.kernel_shape_for": lambda: dict(target=None),
    "d2lcc.dense.legalize_map": lambda: dict(base=None, target=None),
    "d2lcc.dense.is_dense_kernel": lambda: dict(func=_kernel()),
    "d2lcc.dense.block_shape": lambda: dict(func=_kernel()),
    "d2lcc.dense.schedule_kernel": lambda: dict(func=_kernel()),
    "d2lcc.dense.schedule_module": lambda: dict(mod=_module(), target=None),
}

#: A predicate: anything that is not a dense kernel is simply not one.
ACCEPTS_ANY = {"d2lcc.dense.is_dense_kernel": {"func"}}
