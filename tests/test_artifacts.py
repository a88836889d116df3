"""Tests of d2lcc.artifacts: one model built, exported and inspected per target."""

import platform
import tarfile

import numpy as np
import pytest

import d2lcc
from d2lcc import artifacts, deploy, models
from d2lcc.machine import Machine


def _machine(arch="x86_64", features=("avx2", "fma")):
    return Machine(cpu="test", arch=arch, cores=2, features=features, python="3",
                   tvm="0", tvm_ffi="0")


@pytest.fixture(scope="module")
def model():
    return models.small_cnn_onnx(models.small_cnn_weights(0))


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype("float32")


ASM = "\n".join([
    "fused_conv:",
    "\t.p2align\t4",
    "\tvfmadd231ps\t%ymm1, %ymm2, %ymm0",
    "\tvfmadd132ps\t(%rsi), %zmm0, %zmm1",
    "\tvfmadd231ss\t%xmm1, %xmm2, %xmm0",
    "\tvfnmsub213ps\t%ymm1, %ymm2, %ymm0",
    "\tvpdpbusd\t%zmm1, %zmm2, %zmm0",
    "\t{vex}\tvpdpbusd\t%ymm1, %ymm2, %ymm0",
    "\tfmla\tv0.4s, v1.4s, v2.4s",
    "\tfmadd\ts0, s1, s2, s3",
    "\tsdot\tv0.4s, v1.16b, v2.16b",
    "\tudot\tv0.4s, v1.16b, v2.16b",
    "// vfmadd231ps %ymm0 in a comment line without a tab",
    "\tvaddps\t%ymm1, %ymm2, %ymm0",
])


def test_instruction_families_counts_each_family():
    counts = artifacts.instruction_families(ASM)
    assert counts == {"fma xmm": 1, "fma ymm": 2, "fma zmm": 1, "vpdpbusd": 2,
                      "fmla": 1, "fmadd": 1, "sdot/udot": 2}
    assert artifacts.instruction_families("\t.text\n") == dict.fromkeys(
        artifacts.INSTRUCTION_FAMILIES, 0)


def test_instruction_families_refuses_non_text():
    with pytest.raises(TypeError, match="instruction_families: asm"):
        artifacts.instruction_families(b"\tfmla v0.4s")
    with pytest.raises(ValueError, match="instruction_families: asm"):
        artifacts.instruction_families("")


@pytest.mark.parametrize("name,expected", [
    ("arm64", "aarch64"), ("AMD64", "x86_64"), ("x86_64", "x86_64"),
    ("riscv64", "riscv64")])
def test_arch_name(name, expected):
    assert artifacts.arch_name(name) == expected


def test_target_arch_and_features_of_named_targets():
    named = d2lcc.target.named
    assert artifacts.target_arch(named("graviton2")) == "aarch64"
    assert artifacts.target_arch(named("haswell")) == "x86_64"
    assert artifacts.target_arch(d2lcc.target.host()) == \
        artifacts.arch_name(platform.machine())
    assert artifacts.required_features(named("haswell")) == ("avx2", "fma")
    assert artifacts.required_features(named("graviton2")) == ("neon", "dotprod")
    cascade = artifacts.required_features(named("cascadelake"))
    assert {"avx512f", "avx512_vnni"} <= set(cascade) and "amx_int8" not in cascade
    assert {"amx_int8", "amx_bf16"} <= set(
        artifacts.required_features(named("sapphirerapids")))
    assert "avx512f" not in artifacts.required_features(named("alderlake"))


def test_can_run_reasons():
    ok, why = artifacts.can_run("x86_64", ("avx2", "fma"), _machine())
    assert ok and "avx2, fma" in why
    ok, why = artifacts.can_run("x86_64", ("avx2", "avx512f"), _machine())
    assert not ok and "avx512f" in why and "avx2," not in why and "SIGILL" in why
    ok, why = artifacts.can_run("aarch64", ("neon",), _machine())
    assert not ok and "aarch64" in why
    assert artifacts.can_run("aarch64", ("neon",), _machine("arm64", ("neon",)))[0]
    assert artifacts.can_run("x86_64", (), _machine(features=()))[0]


def test_runs_here_follows_this_machine():
    machine = d2lcc.env()
    assert artifacts.runs_here(d2lcc.target.host())[0]
    ok, why = artifacts.runs_here(d2lcc.target.named("cascadelake"))
    expect = machine.has("avx512f") and machine.has("avx512_vnni") and \
        artifacts.arch_name(machine.arch) == "x86_64"
    assert ok == expect
    if not ok:
        assert "avx512" in why or "x86_64 code" in why
    fake = _machine("aarch64", ("neon", "dotprod"))
    assert artifacts.runs_here(d2lcc.target.named("graviton2"), fake)[0]
    assert not artifacts.runs_here(d2lcc.target.named("haswell"), fake)[0]


def test_llvm_functions_refuse_trainium_and_bad_machines():
    trainium = d2lcc.target.named("trainium")
    for fn in (artifacts.target_arch, artifacts.required_features,
               artifacts.runs_here):
        with pytest.raises(ValueError, match="not an LLVM CPU target"):
            fn(trainium)
    with pytest.raises(TypeError, match="runs_here: machine"):
        artifacts.runs_here(d2lcc.target.host(), machine="x86_64")
    with pytest.raises(TypeError, match="target"):
        artifacts.target_arch("llvm -mcpu=haswell")


def test_cross_compile_matches_d2lcc_compile(model, image):
    import tvm
    from tvm import relax

    host = d2lcc.target.host()
    scheduled, executable = artifacts.cross_compile(model, host)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    ours = vm["main"](tvm.runtime.tensor(image)).numpy()
    np.testing.assert_allclose(ours, d2lcc.compile(model, host)(image),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours, models.small_cnn_numpy(image,
                               models.small_cnn_weights(0)), rtol=1e-4, atol=1e-4)
    assert d2lcc.ir.prim_func_count(scheduled) > 0
    with pytest.raises(ValueError, match="schedules"):
        artifacts.cross_compile(model, host, schedules="fast")


def test_build_exports_and_inspects_each_architecture(model, image, tmp_path):
    import tvm
    from tvm import relax

    haswell = artifacts.build(model, "haswell", d2lcc.target.named("haswell"),
                              tmp_path)
    assert haswell.path == tmp_path / "haswell.so"
    assert haswell.size == haswell.path.stat().st_size
    header = deploy.elf_header(haswell.path)
    assert header.kind == "shared object" and header.machine == "x86-64"
    assert haswell.instructions["fma ymm"] > 0 == haswell.instructions["fma zmm"]
    assert haswell.needs == ("avx2", "fma")
    if haswell.runs_here:
        vm = relax.VirtualMachine(tvm.runtime.load_module(haswell.path), tvm.cpu())
        np.testing.assert_allclose(
            vm["main"](tvm.runtime.tensor(image)).numpy(),
            models.small_cnn_numpy(image, models.small_cnn_weights(0)),
            rtol=1e-4, atol=1e-4)
    arm = artifacts.build(model, "graviton2", d2lcc.target.named("graviton2"),
                          tmp_path)
    assert arm.kernels == haswell.kernels
    assert arm.instructions["fmla"] > 0 and arm.instructions["fma ymm"] == 0
    if arm.path.suffix == ".so":
        assert deploy.elf_header(arm.path).machine == "AArch64"
    else:
        assert arm.path.suffix == ".tar" and tarfile.is_tarfile(arm.path)
        assert all(h.machine == "AArch64"
                   for h in deploy.elf_headers_in_tar(arm.path).values())
    text = artifacts.table([haswell, arm])
    assert text.splitlines()[0].split()[:5] == ["target", "mcpu", "file", "KiB",
                                                "kernels"]
    assert "neoverse-n1" in text.splitlines()[2]


def test_build_and_export_refuse_bad_places(model, tmp_path):
    haswell = d2lcc.target.named("haswell")
    with pytest.raises(ValueError, match="build: name"):
        artifacts.build(model, "../escape", haswell, tmp_path)
    with pytest.raises(ValueError, match="build: folder"):
        artifacts.build(model, "x", haswell, tmp_path / "missing")
    with pytest.raises(ValueError, match="export: stem"):
        _, executable = artifacts.cross_compile(model, haswell)
        artifacts.export(executable, haswell, tmp_path / "missing" / "x")
    with pytest.raises(TypeError, match="export: executable"):
        artifacts.export("lib.so", haswell, tmp_path / "x")


def test_artifact_checks_its_fields(tmp_path):
    path = tmp_path / "a.so"
    path.write_bytes(b"x")
    good = dict(name="a", mcpu="haswell", arch="x86_64", path=path, size=1,
                kernels=1,
                instructions=dict.fromkeys(artifacts.INSTRUCTION_FAMILIES, 0),
                needs=["avx2"], runs_here=True, reason="ok")
    assert artifacts.Artifact(**good).needs == ("avx2",)
    for field, value, error in [("path", tmp_path / "none.so", ValueError),
                                ("size", 0, ValueError),
                                ("needs", ("avx9",), ValueError),
                                ("needs", "avx2", TypeError),
                                ("instructions", {"fmla": 1}, ValueError),
                                ("runs_here", 1, TypeError)]:
        with pytest.raises(error, match=f"Artifact: {field}"):
            artifacts.Artifact(**{**good, field: value})
    with pytest.raises(TypeError, match="table: rows"):
        artifacts.table([])
