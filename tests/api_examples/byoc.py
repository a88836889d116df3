"""Valid example arguments of d2lcc.byoc for tests/test_public_api.py."""


def _module():
    import numpy as np
    from tvm import relax

    from d2lcc import ir

    w = np.ones((4, 3), "float32")
    return ir.single_op_module(
        lambda x: relax.op.nn.relu(relax.op.matmul(x, relax.const(w))),
        ([2, 4], "float32"))


def _kernel():
    from d2lcc.byoc import Kernel

    return Kernel("conv2d", (1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 3, 3), True, True)


def _region_func():
    from d2lcc import byoc

    parted = byoc.partition(_module())
    return [f for _, f in parted.functions.items() if "Codegen" in (f.attrs or {})][0]


def _composite():
    from tvm import relax

    func = _region_func()
    return [b.value for b in func.body.blocks[0].bindings
            if isinstance(b.value, relax.Function)][0]


def _matmul_call():
    return _composite().body.blocks[0].bindings[0].value


def _region():
    from d2lcc.byoc.region import read_region

    return read_region(_region_func())


_COMPILED = {}


def _compiled():
    if "c" not in _COMPILED:
        from d2lcc import byoc

        _COMPILED["c"] = byoc.compile(_module())
    return _COMPILED["c"]


def _exported():
    import tempfile
    from pathlib import Path

    from d2lcc import byoc

    path = Path(tempfile.mkdtemp(prefix="d2lcc-api-")) / "m.so"
    return str(byoc.export_library(_compiled(), path))


def _ones(*shape):
    import numpy as np

    return np.ones(shape, "float32")


def _tensor_type():
    from tvm import relax

    return relax.TensorType([2, 3], "float32")


def _folder_so():
    import tempfile

    return tempfile.mkdtemp(prefix="d2lcc-api-") + "/m.so"


EXAMPLES = {
    "d2lcc.byoc.build.offload": lambda: dict(model=_module()),
    "d2lcc.byoc.build.compile": lambda: dict(model=_module()),
    "d2lcc.byoc.build.export_library": lambda: dict(compiled=_compiled(),
                                                    path=_folder_so()),
    "d2lcc.byoc.build.run_exported": lambda: dict(path=_exported()),
    "d2lcc.byoc.partition.partition": lambda: dict(mod=_module()),
    "d2lcc.byoc.kernels.Kernel": lambda: dict(
        op="conv2d", x=(1, 2, 5, 5), w=(3, 2, 3, 3), out=(1, 3, 3, 3), bias=True,
        relu=True),
    "d2lcc.byoc.kernels.static_shape": lambda: dict(ty=_tensor_type()),
    "d2lcc.byoc.kernels.describe": lambda: dict(func=_composite()),
    "d2lcc.byoc.kernels.reference": lambda: dict(
        kernel=_kernel(), x=_ones(1, 2, 5, 5), w=_ones(3, 2, 3, 3), b=_ones(3)),
    "d2lcc.byoc.patterns.problem": lambda: dict(call=_matmul_call()),
    "d2lcc.byoc.patterns.pattern_table": lambda: dict(),
    "d2lcc.byoc.patterns.register_patterns": lambda: dict(),
    "d2lcc.byoc.region.read_region": lambda: dict(func=_region_func()),
    "d2lcc.byoc.region.Step": lambda: dict(kernel=_kernel(),
                                           inputs=["t[0]", "t[1]", "NULL"],
                                           output="t[2]"),
    "d2lcc.byoc.region.Region": lambda: dict(symbol="f"),
    "d2lcc.byoc.c_codegen.conv2d_c": lambda: dict(name="k", k=_kernel()),
    "d2lcc.byoc.c_codegen.wrapper_c": lambda: dict(region=_region(),
                                                   kernel_args=lambda e: e),
    "d2lcc.byoc.c_codegen.c_kernel_arg": lambda: dict(expr="t[0]"),
    "d2lcc.byoc.c_codegen.c_source_module": lambda: dict(code="int x;", symbols=[]),
    "d2lcc.byoc.c_codegen.kernel_source": lambda: dict(kernel=_kernel()),
    "d2lcc.byoc.library.blas_codegen": lambda: dict(
        functions=[_region_func()], options={}, constant_names={}),
}

#: Compiling and running a subprocess take seconds each.
NO_BASELINE = {"d2lcc.byoc.build.compile", "d2lcc.byoc.build.export_library",
               "d2lcc.byoc.build.run_exported"}

ACCEPTS_ANY = {
    # RunCodegen's options and constant names: our regions take weights as
    # arguments and have no options, so the codegen ignores both.
    "d2lcc.byoc.library.blas_codegen": {"options", "constant_names"},
}
