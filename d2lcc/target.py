"""TVM targets for this machine and for the other machines the book compiles for.

TVM 0.27 accepts targets only as dictionaries (``"llvm -mcpu=..."`` strings are
rejected) and ``relax.build`` wants a :class:`tvm.target.Target` object rather
than a bare dictionary. The helpers here return ``Target`` objects, so readers
never write either by hand.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from .machine import cores as _cores

# The machines the book compiles for besides the reader's own.
NAMED_TARGETS: dict[str, dict[str, Any]] = {
    # AWS Graviton2: Arm Neoverse N1 cores (NEON and the dot-product extension).
    "graviton2": {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "neoverse-n1"},
    # Intel Cascade Lake (e.g. AWS c5): AVX-512 with VNNI.
    "cascadelake": {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "cascadelake"},
}


def make(spec: Mapping[str, Any]):
    """Return a :class:`tvm.target.Target` made from a dictionary such as ``{"kind": "llvm"}``."""
    import tvm

    if isinstance(spec, str):
        raise TypeError(
            f"target.make: spec={spec!r} is a string; TVM 0.27 takes targets as "
            'dictionaries, e.g. {"kind": "llvm", "mcpu": "skylake"}'
        )
    if not isinstance(spec, Mapping):
        raise TypeError(f"target.make: spec must be a dict, got {type(spec).__name__}")
    if "kind" not in spec:
        raise ValueError(f"target.make: spec={dict(spec)!r} has no 'kind' (e.g. 'llvm')")
    return tvm.target.Target(dict(spec))


def host_spec(num_cores: int | None = None) -> dict[str, Any]:
    """Return the target dictionary for this machine's CPU, as LLVM detects it."""
    from tvm.target import codegen

    if num_cores is None:
        num_cores = _cores()
    if not isinstance(num_cores, int) or isinstance(num_cores, bool) or num_cores < 1:
        raise ValueError(f"target.host: num_cores={num_cores!r} must be a positive int")
    spec: dict[str, Any] = {"kind": "llvm", "num-cores": num_cores}
    cpu = codegen.llvm_get_system_cpu()
    if cpu and cpu != "generic":
        spec["mcpu"] = cpu
    return spec


def host(num_cores: int | None = None):
    """Return a :class:`tvm.target.Target` for this machine's CPU.

    Parameters
    ----------
    num_cores
        How many cores the generated code may use; defaults to the cores this
        process may run on.

    Notes
    -----
    TVM's runtime starts its thread pool on the first parallel call, with
    ``TVM_NUM_THREADS`` threads, or half the hardware threads on x86 when that
    is unset (it assumes two per core). On a VM without SMT that leaves half
    the cores idle, so this also sets ``TVM_NUM_THREADS`` to this process's
    core count unless it is already set (:func:`d2lcc.cpu.use_all_cores`
    explains and checks it).
    """
    spec = host_spec(num_cores)
    os.environ.setdefault("TVM_NUM_THREADS", str(_cores()))
    return make(spec)


def named(name: str):
    """Return the :class:`tvm.target.Target` of one of :data:`NAMED_TARGETS`."""
    if name not in NAMED_TARGETS:
        raise ValueError(f"target.named: unknown name={name!r}; expected one of {sorted(NAMED_TARGETS)}")
    return make(NAMED_TARGETS[name])


def graviton2():
    """Return the target of an AWS Graviton2 CPU (AArch64 Neoverse N1, NEON + dotprod)."""
    return named("graviton2")


def cascadelake():
    """Return the target of an Intel Cascade Lake CPU (AVX-512 with VNNI)."""
    return named("cascadelake")
