"""d2lcc.aarch64: availability, exporting and running AArch64 libraries.

The tests that run AArch64 code need an AArch64 machine or the emulator that
``tools/setup_aarch64.sh`` sets up; where neither is available they are
skipped with the reason, which is also issued as a warning so that it shows in
pytest's summary without ``-rs``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from d2lcc import aarch64

ROOT = Path(__file__).resolve().parents[1]


def fake_elf(path: Path, machine: int = 183, kind: int = 3) -> Path:
    """A file whose ELF header says AArch64 (183) shared object (3); no code."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    path.write_bytes(ident + struct.pack("<HH", kind, machine) + bytes(44))
    return path


def need_aarch64():
    """Skip (with the reason, also as a warning) unless AArch64 code can run here."""
    how = aarch64.availability()
    if not how:
        warnings.warn(f"AArch64 tests skipped: {how.reason}", stacklevel=2)
        pytest.skip(f"AArch64 code cannot run here: {how.reason}")
    if aarch64.cross_compiler() is None:
        reason = f"no {aarch64.CROSS_CXX} to link AArch64 libraries (run " \
                 f"{aarch64.SETUP})"
        warnings.warn(f"AArch64 tests skipped: {reason}", stacklevel=2)
        pytest.skip(reason)
    return how


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """An exported PrimFunc library (y = 2x + 1) and a Relax one (x + x, and x * x)."""
    need_aarch64()
    import tvm
    from tvm import relax, te
    from tvm.script import relax as R

    import d2lcc

    folder = tmp_path_factory.mktemp("aarch64")
    target = d2lcc.target.graviton2()
    x = te.placeholder((37,), "float32", name="x")
    y = te.compute((37,), lambda i: x[i] * 2.0 + 1.0, name="y")
    prim = tvm.compile(tvm.IRModule({"main": te.create_prim_func([x, y])}), target)

    @R.function
    def main(a: R.Tensor((3, 5), "float32")):
        with R.dataflow():
            s = R.add(a, a)
            p = R.multiply(a, a)
            out = (s, p)
            R.output(out)
        return out

    vm = tvm.compile(tvm.IRModule({"main": main}), target,
                     relax_pipeline=relax.get_default_pipeline(target))
    return {"prim": aarch64.export(prim, folder / "prim.so"),
            "vm": aarch64.export(vm, folder / "vm.so")}


# --- no AArch64 needed ---------------------------------------------------------

def test_cache_dir_follows_d2lcc_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LCC_CACHE", str(tmp_path))
    assert aarch64.cache_dir() == tmp_path / "aarch64"
    monkeypatch.delenv("D2LCC_CACHE")
    assert aarch64.cache_dir() == Path("~/.cache/d2lcc/aarch64").expanduser()


def test_availability_says_why_not(monkeypatch, tmp_path):
    monkeypatch.setattr(aarch64, "is_native", lambda: False)
    monkeypatch.setenv("D2LCC_CACHE", str(tmp_path))
    monkeypatch.setattr(aarch64, "qemu", lambda: None)
    how = aarch64.availability()
    assert not how and how.mode == "unavailable"
    assert "qemu-aarch64-static" in how.reason and aarch64.SETUP in how.reason
    monkeypatch.setattr(aarch64, "qemu", lambda: "/usr/bin/qemu-aarch64-static")
    how = aarch64.availability()
    assert not how and "no emulated Python" in how.reason
    (tmp_path / "aarch64").mkdir()
    (tmp_path / "aarch64" / "UNAVAILABLE").write_text("apt-get is missing\n")
    how = aarch64.availability()
    assert not how and "apt-get is missing" in how.reason
    assert str(how).startswith("unavailable: ")


def test_availability_native(monkeypatch):
    monkeypatch.setattr(aarch64, "is_native", lambda: True)
    how = aarch64.availability()
    assert how and how.mode == "native"


def test_availability_class_checks_its_fields():
    with pytest.raises(ValueError, match="mode"):
        aarch64.Availability("maybe", "x")
    with pytest.raises(ValueError, match="reason"):
        aarch64.Availability("native", "")


def test_crashed_names_signal():
    err = aarch64.Crashed("m", -4, "SIGILL", "")
    assert err.signal == "SIGILL" and err.returncode == -4 and str(err) == "m"
    with pytest.raises(ValueError, match="signal_name"):
        aarch64.Crashed("m", -4, "SIGNOPE", "")
    with pytest.raises(ValueError, match="returncode"):
        aarch64.Crashed("m", 1000, None, "")
    with pytest.raises(ValueError, match="returncode=0"):
        aarch64.Crashed("m", 0, None, "")
    with pytest.raises(TypeError, match="stderr"):
        aarch64.Crashed("m", 1, None, None)


def test_run_refuses_bad_arguments(tmp_path):
    lib = fake_elf(tmp_path / "fake.so")
    x = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="library"):
        aarch64.run(3, x)
    with pytest.raises(ValueError, match="library=.*not a file"):
        aarch64.run(tmp_path / "missing.so", x)
    (tmp_path / "text.so").write_text("hello")
    with pytest.raises(ValueError, match="not ELF"):
        aarch64.run(tmp_path / "text.so", x)
    with pytest.raises(ValueError, match="not an AArch64 shared object"):
        aarch64.run(fake_elf(tmp_path / "x86.so", machine=62), x)
    with pytest.raises(ValueError, match="not an AArch64 shared object"):
        aarch64.run(fake_elf(tmp_path / "obj.o", kind=1), x)
    with pytest.raises(TypeError, match=r"inputs\[0\]"):
        aarch64.run(lib, [1.0, 2.0])
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        aarch64.run(lib, x, x.astype(np.complex64))
    with pytest.raises(TypeError, match="outputs"):
        aarch64.run(lib, x, outputs="float32")
    with pytest.raises(TypeError, match="outputs"):
        aarch64.run(lib, x, outputs=[])
    with pytest.raises(TypeError, match=r"outputs\[0\]"):
        aarch64.run(lib, x, outputs=[(3,)])
    with pytest.raises(ValueError, match=r"outputs\[0\] dtype"):
        aarch64.run(lib, x, outputs=[((3,), "complex64")])
    with pytest.raises(ValueError, match=r"outputs\[0\] shape"):
        aarch64.run(lib, x, outputs=[((-1,), "float32")])
    with pytest.raises(ValueError, match="function"):
        aarch64.run(lib, x, function="main; rm")
    with pytest.raises(ValueError, match="cpu"):
        aarch64.run(lib, x, cpu="pentium")
    for bad in (0.0, -1.0, float("nan"), 1e9):
        with pytest.raises(ValueError, match="timeout"):
            aarch64.run(lib, x, timeout=bad)


def test_run_raises_unavailable_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(aarch64, "is_native", lambda: False)
    monkeypatch.setenv("D2LCC_CACHE", str(tmp_path))
    monkeypatch.setattr(aarch64, "qemu", lambda: None)
    with pytest.raises(aarch64.Unavailable, match="qemu-aarch64-static"):
        aarch64.run(fake_elf(tmp_path / "fake.so"), np.zeros(2, np.float32))


def test_export_refuses_bad_arguments(monkeypatch, tmp_path):
    import tvm
    from tvm import te

    import d2lcc

    x = te.placeholder((4,), "float32", name="x")
    y = te.compute((4,), lambda i: x[i] + 1.0, name="y")
    ex = tvm.compile(tvm.IRModule({"main": te.create_prim_func([x, y])}),
                     d2lcc.target.graviton2())
    with pytest.raises(TypeError, match="executable"):
        aarch64.export("lib", tmp_path / "a.so")
    with pytest.raises(TypeError, match="path"):
        aarch64.export(ex, 3)
    with pytest.raises(ValueError, match=r"path=.*\.so"):
        aarch64.export(ex, tmp_path / "a.tar")
    with pytest.raises(ValueError, match="does not exist"):
        aarch64.export(ex, tmp_path / "no" / "a.so")
    monkeypatch.setattr(aarch64, "cross_compiler", lambda: None)
    with pytest.raises(aarch64.Unavailable, match=aarch64.CROSS_CXX):
        aarch64.export(ex, tmp_path / "a.so")


def test_setup_script_is_valid_bash():
    script = ROOT / aarch64.SETUP
    assert script.is_file()
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(script)], check=True)


# --- running AArch64 code -------------------------------------------------------

def test_export_writes_an_aarch64_shared_object(libraries):
    from d2lcc import deploy

    for path in libraries.values():
        header = deploy.elf_header(path)
        assert header.machine == "AArch64" and header.kind == "shared object"


def test_run_prim_func_matches_numpy(libraries):
    x = np.random.default_rng(0).standard_normal(37).astype(np.float32)
    x[:3] = [np.inf, -np.inf, np.nan]  # IEEE specials survive the round trip
    (y,) = aarch64.run(libraries["prim"], x, outputs=[((37,), "float32")])
    np.testing.assert_array_equal(y, x * 2 + 1)
    assert y.dtype == np.float32


def test_run_relax_vm_returns_every_output(libraries):
    a = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    s, p = aarch64.run(libraries["vm"], a)
    np.testing.assert_array_equal(s, a + a)
    np.testing.assert_array_equal(p, a * a)


def test_run_reports_a_failing_child(libraries):
    x = np.zeros(37, np.float32)
    with pytest.raises(aarch64.Crashed, match="exited with status") as info:
        aarch64.run(libraries["prim"], x, outputs=[((37,), "float32")],
                    function="no_such_function")
    assert info.value.signal is None and info.value.returncode != 0
    assert "no_such_function" in info.value.stderr


def test_run_timeout_raises(libraries):
    with pytest.raises(TimeoutError, match="timeout"):
        aarch64.run(libraries["prim"], np.zeros(37, np.float32),
                    outputs=[((37,), "float32")], timeout=0.05)
