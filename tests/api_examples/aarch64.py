"""Example arguments for d2lcc.aarch64 and d2lcc.int8.arm."""

import struct
import tempfile
from pathlib import Path


def _fake_aarch64_library():
    """A file with the ELF header of an AArch64 shared object (no code in it)."""
    path = Path(tempfile.mkdtemp(prefix="d2lcc_api_aarch64_")) / "fake.so"
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    path.write_bytes(ident + struct.pack("<HH", 3, 183) + bytes(44))
    return path


def _graviton2_executable():
    import tvm
    from tvm import te

    import d2lcc

    x = te.placeholder((4,), "float32", name="x")
    y = te.compute((4,), lambda i: x[i] + 1.0, name="y")
    return tvm.compile(tvm.IRModule({"main": te.create_prim_func([x, y])}),
                       d2lcc.target.graviton2())


def _sdot_schedule():
    from d2lcc.int8 import arm

    return arm.matmul(8, 16, 16)


EXAMPLES = {
    "d2lcc.aarch64.Availability": lambda: dict(mode="emulated", reason="QEMU"),
    "d2lcc.aarch64.Crashed": lambda: dict(message="killed", returncode=-4,
                                          signal_name="SIGILL", stderr=""),
    "d2lcc.aarch64.export": lambda: dict(
        executable=_graviton2_executable(),
        path=Path(tempfile.mkdtemp(prefix="d2lcc_api_aarch64_")) / "lib.so"),
    "d2lcc.aarch64.run": lambda: dict(library=_fake_aarch64_library()),
    "d2lcc.int8.arm.matmul": lambda: dict(m=8, n=16, k=16),
    "d2lcc.int8.arm.build": lambda: dict(sch=_sdot_schedule()),
}

# export links with the cross compiler and run starts an (emulated) process:
# their bad-value calls are checked, their valid calls are left to the unit tests.
NO_BASELINE = {"d2lcc.aarch64.export", "d2lcc.aarch64.run"}

# A negative return code is a signal number, so any nonzero one is a valid crash.
ACCEPTS_ANY = {"d2lcc.aarch64.Crashed": {"returncode"}}
