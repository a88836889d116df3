"""Valid example arguments of the whole-network schedules (test_public_api)."""


def _pool_kernel():
    import tvm
    from tvm import relax

    from d2lcc import ir

    mod = ir.single_op_module(lambda x: relax.op.nn.max_pool2d(x, 3, 2, 1),
                              ((1, 8, 12, 12), "float32"))
    with tvm.target.Target({"kind": "llvm"}):
        mod = relax.transform.LegalizeOps()(mod)
    return mod


EXAMPLES = {
    "d2lcc.nchwc.default_blocking": lambda: dict(
        extents=dict(b=1, o=32, i=14, j=14, ob=8, rc=32, ri=3, rj=3, rb=8),
        ow_tile=2, oc_tile=4, l1_bytes=32768),
    "d2lcc.nchwc.used_lanes": lambda: dict(
        weight=__import__("tvm").relax.const(
            __import__("numpy").ones((2, 1, 3, 3, 8, 8), "float32"))),
    "d2lcc.compiler.schedule_loops": lambda: dict(
        func=next(f for f in _pool_kernel().functions.values()
                  if isinstance(f, __import__("tvm").tirx.PrimFunc))),
    "d2lcc.compiler.schedule_leftovers": lambda: dict(mod=_pool_kernel()),
    "d2lcc.conv.divisor_tiles": lambda: dict(width=6, blocks=4, limit=4),
    "d2lcc.int8.x86.conv_tiles": lambda: dict(width=56, blocks=8, isa_name="avx2"),
}

# used_lanes answers None ("all lanes") for anything that is not a packed constant
ACCEPTS_ANY = {"d2lcc.nchwc.used_lanes": {"weight"}}
