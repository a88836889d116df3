"""What machine and which TVM a notebook runs on.

Performance sections print :func:`env` first, so that every number on the
page comes with the CPU, core count and TVM version that produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata

from . import checks

# ISA features the book talks about, as the book names them.
FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
            "amx_bf16", "neon", "dotprod")

# /proc/cpuinfo flag names (x86 "flags", Arm "Features") -> the book's names.
_CPUINFO_FLAGS = {
    "avx2": "avx2",
    "fma": "fma",
    "avx512f": "avx512f",
    "avx512_vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
    "asimd": "neon",
    "asimddp": "dotprod",
}


#: Most cores a :class:`Machine` may report (a larger count is a typo).
MAX_CORES = 4096


def _feature(func: str, name: str, value: object) -> str:
    checks.string(func, name, value)
    if value not in FEATURES:
        raise ValueError(f"{func}: unknown {name}={value!r}; expected one of "
                         f"{FEATURES}")
    return value


@dataclass(frozen=True)
class Machine:
    """A description of the machine a notebook runs on.

    Tests make fake machines with it, so its fields are checked: strings for
    the names and versions, ``cores`` in ``[1, MAX_CORES]`` and ``features``
    a sequence of names from :data:`FEATURES` (stored as a tuple).
    """

    cpu: str
    arch: str
    cores: int
    features: tuple[str, ...]
    python: str
    tvm: str
    tvm_ffi: str

    def __post_init__(self) -> None:
        func = "machine.Machine"
        for name in ("cpu", "arch", "python", "tvm", "tvm_ffi"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{func}: {name} must be a str, got "
                                f"{type(value).__name__}")
        checks.positive_int(func, "cores", self.cores, maximum=MAX_CORES)
        feats = self.features
        if isinstance(feats, (str, bytes)) or not isinstance(feats, (tuple, list)):
            raise TypeError(f"{func}: features must be a tuple of feature names, got "
                            f"{type(feats).__name__}")
        feats = tuple(_feature(func, f"features[{i}]", f) for i, f in enumerate(feats))
        object.__setattr__(self, "features", feats)

    def has(self, feature: str) -> bool:
        """Return whether the CPU has ``feature`` (one of :data:`FEATURES`)."""
        return _feature("Machine.has", "feature", feature) in self.features

    def __str__(self) -> str:
        rows = [
            ("CPU", self.cpu),
            ("architecture", self.arch),
            ("cores", str(self.cores)),
            ("ISA features",
             ", ".join(self.features) or "(none of " + ", ".join(FEATURES) + ")"),
            ("Python", self.python),
            ("apache-tvm", self.tvm),
            ("apache-tvm-ffi", self.tvm_ffi),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}} : {v}" for k, v in rows)

    __repr__ = __str__


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """Return the CPU model and the book's ISA features found in /proc/cpuinfo text."""
    if not isinstance(text, str):
        raise TypeError(f"machine.parse_cpuinfo: text must be str, got "
                        f"{type(text).__name__}")
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    found = {_CPUINFO_FLAGS[f] for f in flags if f in _CPUINFO_FLAGS}
    return model, tuple(f for f in FEATURES if f in found)


def _macos_cpu() -> tuple[str, tuple[str, ...]]:
    def sysctl(name: str) -> str:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True)
        return out.stdout.strip()

    model = sysctl("machdep.cpu.brand_string")
    feats = []
    if platform.machine() == "arm64":
        feats.append("neon")
        if sysctl("hw.optional.arm.FEAT_DotProd") == "1":
            feats.append("dotprod")
    return model, tuple(f for f in FEATURES if f in feats)


def _cpu() -> tuple[str, tuple[str, ...]]:
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model, feats = parse_cpuinfo(f.read())
        if platform.machine() == "aarch64" and "neon" not in feats:
            feats = ("neon",) + feats  # NEON is mandatory on AArch64
        return model or platform.processor() or "unknown", feats
    if platform.system() == "Darwin":
        return _macos_cpu()
    return platform.processor() or "unknown", ()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cores() -> int:
    """Return the number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def env() -> Machine:
    """Describe this machine: CPU model, cores, ISA features, Python, TVM versions."""
    model, feats = _cpu()
    return Machine(
        cpu=model,
        arch=platform.machine(),
        cores=cores(),
        features=feats,
        python=platform.python_version(),
        tvm=_version("apache-tvm"),
        tvm_ffi=_version("apache-tvm-ffi"),
    )
