"""Example arguments for d2lcc.artifacts (one model compiled for many targets)."""


def _target(name="haswell"):
    import d2lcc

    return d2lcc.target.named(name)


def _model():
    from d2lcc import models

    return models.small_cnn_onnx(models.small_cnn_weights(0))


def _executable():
    import tvm
    from tvm import te

    a = te.placeholder((4,), "float32", name="a")
    b = te.compute((4,), lambda i: a[i] * 2.0, name="b")
    mod = tvm.IRModule({"main": te.create_prim_func([a, b])})
    return tvm.compile(mod, target=_target())


def _folder():
    import tempfile

    return tempfile.mkdtemp(prefix="d2lcc-artifacts-")


def _artifact():
    from pathlib import Path

    from d2lcc import artifacts

    path = Path(_folder()) / "haswell.so"
    path.write_bytes(bytes(1024))
    return artifacts.Artifact(
        name="haswell", mcpu="haswell", arch="x86_64", path=path,
        size=1024, kernels=7, instructions=dict.fromkeys(
            artifacts.INSTRUCTION_FAMILIES, 0), needs=("avx2", "fma"),
        runs_here=True, reason="this CPU has avx2, fma")


EXAMPLES = {
    "d2lcc.artifacts.arch_name": lambda: dict(name="arm64"),
    "d2lcc.artifacts.target_arch": lambda: dict(target=_target()),
    "d2lcc.artifacts.required_features": lambda: dict(target=_target()),
    "d2lcc.artifacts.runs_here": lambda: dict(target=_target()),
    "d2lcc.artifacts.instruction_families": lambda: dict(
        asm="\tvfmadd231ps\t%ymm0, %ymm1, %ymm2\n"),
    "d2lcc.artifacts.cross_compile": lambda: dict(model=_model(), target=_target()),
    "d2lcc.artifacts.export": lambda: dict(
        executable=_executable(), target=_target(), stem=_folder() + "/copy"),
    "d2lcc.artifacts.build": lambda: dict(
        model=_model(), name="haswell", target=_target(), folder=_folder()),
    "d2lcc.artifacts.table": lambda: dict(rows=[_artifact()]),
    "d2lcc.artifacts.Artifact": lambda: {
        k: getattr(_artifact(), k) for k in (
            "name", "mcpu", "arch", "path", "size", "kernels", "instructions",
            "needs", "runs_here", "reason")},
}

#: Whole-network builds take seconds each; the unit tests make them.
NO_BASELINE = {"d2lcc.artifacts.cross_compile", "d2lcc.artifacts.build"}
