"""TVM targets for this machine and for the other machines the book compiles for.

TVM 0.27 accepts targets only as dictionaries (``"llvm -mcpu=..."`` strings are
rejected) and ``relax.build`` wants a :class:`tvm.target.Target` object rather
than a bare dictionary. The helpers here return ``Target`` objects, so readers
never write either by hand.

A target's ``num-cores`` does *not* decide how many threads a parallel loop
uses. The code TVM's LLVM backend generates launches every parallel loop with
``TVMBackendParallelLaunch(lambda, closure, 0)``, whatever ``num-cores`` is:
zero tasks, meaning "one per thread of the runtime's pool", and the pool's
size comes from the ``TVM_NUM_THREADS`` environment variable when the pool
starts (see :func:`host`; ``tests/test_target.py`` checks the generated LLVM
IR). ``num-cores`` is read by MetaSchedule, which sizes the parallel loops it
generates and its builder/runner workers from it.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from . import checks
from .machine import cores

#: Largest ``num-cores`` the helpers accept. Larger than any CPU TVM compiles
#: for; a bigger number is a typo (the machine's own count is not the limit,
#: because one may tune for a larger machine than the one at hand).
MAX_CORES = 4096

# The machines the book compiles for besides the reader's own.
NAMED_TARGETS: dict[str, dict[str, Any]] = {
    # AWS Graviton2: Arm Neoverse N1 cores (NEON and the dot-product extension).
    "graviton2": {"kind": "llvm", "mtriple": "aarch64-linux-gnu",
                  "mcpu": "neoverse-n1"},
    # Intel Haswell: the AVX2 + FMA baseline of most laptops and cloud VMs.
    "haswell": {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "haswell"},
    # Intel Skylake-SP (e.g. AWS c5 of 2017): AVX-512 without VNNI.
    "skylake_avx512": {"kind": "llvm", "mtriple": "x86_64-linux-gnu",
                       "mcpu": "skylake-avx512"},
    # Intel Cascade Lake (e.g. AWS c5 of 2019): AVX-512 with VNNI.
    "cascadelake": {"kind": "llvm", "mtriple": "x86_64-linux-gnu",
                    "mcpu": "cascadelake"},
    # Intel Alder Lake: AVX-VNNI (vpdpbusd on 256-bit registers), no AVX-512.
    "alderlake": {"kind": "llvm", "mtriple": "x86_64-linux-gnu",
                  "mcpu": "alderlake"},
    # Intel Sapphire Rapids: AVX-512, VNNI and AMX tiles (int8 and bf16).
    "sapphirerapids": {"kind": "llvm", "mtriple": "x86_64-linux-gnu",
                       "mcpu": "sapphirerapids"},
    # AWS Trainium's NeuronCore-v2: TVM emits NKI kernel source for it.
    "trainium": {"kind": "trn"},
}


def make(spec: Mapping[str, Any]):
    """Return a :class:`tvm.target.Target` made from a dict, e.g. ``{"kind": "llvm"}``.

    Raises ``TypeError`` for a string or non-dict ``spec`` and ``ValueError``
    for a dict TVM cannot turn into a target (no ``kind``, an unknown kind or
    option, ``num-cores`` outside ``[1, MAX_CORES]``).
    """
    import tvm

    if isinstance(spec, str):
        raise TypeError(
            f"target.make: spec={spec!r} is a string; TVM 0.27 takes targets as "
            'dictionaries, e.g. {"kind": "llvm", "mcpu": "skylake"}'
        )
    if not isinstance(spec, Mapping):
        raise TypeError(f"target.make: spec must be a dict, got {type(spec).__name__}")
    if "kind" not in spec:
        raise ValueError(f"target.make: spec={dict(spec)!r} has no 'kind' "
                         "(e.g. 'llvm')")
    checks.string("target.make", "spec['kind']", spec["kind"])
    if "num-cores" in spec:
        checks.positive_int("target.make", "spec['num-cores']", spec["num-cores"],
                            maximum=MAX_CORES)
    try:
        return tvm.target.Target(dict(spec))
    except ValueError as err:  # TVM's message names the option; we name the call
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"target.make: spec={dict(spec)!r} is not a valid target: "
                         f"{first}") from None


def host_spec(num_cores: int | None = None) -> dict[str, Any]:
    """Return the target dictionary for this machine's CPU, as LLVM detects it.

    ``num_cores`` (default: the cores this process may run on) must be in
    ``[1, MAX_CORES]``; see :func:`host` for what it does and does not decide.
    """
    from tvm.target import codegen

    if num_cores is None:
        num_cores = cores()
    num_cores = checks.positive_int("target.host", "num_cores", num_cores,
                                    maximum=MAX_CORES)
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
        The target's ``num-cores`` attribute, 1 to :data:`MAX_CORES`; defaults
        to the cores this process may run on. MetaSchedule reads it to size
        parallel loops while tuning. It does not set how many threads a
        compiled parallel loop runs on: that is the size of TVM's thread pool.

    Notes
    -----
    Compiled parallel loops ask the runtime for zero tasks, i.e. one per
    thread of TVM's thread pool. The pool starts on the first parallel call,
    with ``TVM_NUM_THREADS`` threads, or half the hardware threads on x86 when
    that is unset (it assumes two per core). On a VM without SMT that leaves
    half the cores idle, so this also sets ``TVM_NUM_THREADS`` to this
    process's core count unless it is already set (:func:`d2lcc.cpu.use_all_cores`
    explains and checks it).
    """
    spec = host_spec(num_cores)
    os.environ.setdefault("TVM_NUM_THREADS", str(cores()))
    return make(spec)


def resolve(target: Any, caller: str = "target.resolve", *,
            default_host: bool = True):
    """Return a :class:`tvm.target.Target` from what a public function was given.

    A ``Target`` is returned as it is, a dictionary goes through :func:`make`,
    and ``None`` means this machine (:func:`host`) when ``default_host``.
    Anything else raises an error that starts with ``caller``.
    """
    import tvm

    checks.string("target.resolve", "caller", caller)
    checks.boolean("target.resolve", "default_host", default_host)
    if target is None and default_host:
        return host()
    if isinstance(target, tvm.target.Target):
        return target
    if isinstance(target, dict):
        try:
            return make(target)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{caller}: target={target!r} is not valid "
                             f"({err})") from None
    kinds = "a tvm.target.Target, a dict or None" if default_host else \
        "a tvm.target.Target or a dict"
    raise TypeError(f"{caller}: target must be {kinds}, got {type(target).__name__}")


def named(name: str):
    """Return the :class:`tvm.target.Target` of one of :data:`NAMED_TARGETS`."""
    if isinstance(name, str) and name not in NAMED_TARGETS:
        raise ValueError(f"target.named: unknown name={name!r}; expected one of "
                         f"{sorted(NAMED_TARGETS)}")
    checks.string("target.named", "name", name)
    return make(NAMED_TARGETS[name])


def graviton2():
    """Return the target of an AWS Graviton2 CPU (Neoverse N1, NEON + dotprod)."""
    return named("graviton2")


def haswell():
    """Return the target of an Intel Haswell CPU (AVX2 + FMA, no AVX-512)."""
    return named("haswell")


def cascadelake():
    """Return the target of an Intel Cascade Lake CPU (AVX-512 with VNNI)."""
    return named("cascadelake")


def sapphirerapids():
    """Return the target of an Intel Sapphire Rapids CPU (AVX-512, VNNI, AMX)."""
    return named("sapphirerapids")


def float32_lanes(target: Any = None) -> int:
    """How many float32 values one vector register of ``target``'s CPU holds.

    16 with AVX-512, 8 with AVX2, 4 on AArch64 (NEON) and on x86 CPUs without
    AVX2. Read from the target's LLVM features, not from this machine, so a
    network compiled for Cascade Lake gets 512-bit blocks on any machine.
    ``target`` defaults to this machine (:func:`host`); a non-CPU target
    raises ``ValueError``.
    """
    from tvm.target import codegen

    target = resolve(target, "target.float32_lanes")
    if str(target.kind.name) != "llvm":
        raise ValueError(f"target.float32_lanes: target={target} is not a CPU "
                         "(kind 'llvm') target")
    triple = str(target.attrs.get("mtriple", "")) if target.attrs else ""
    if triple.startswith(("aarch64", "arm")):
        return 4
    if codegen.target_has_features("avx512f", target):
        return 16
    if codegen.target_has_features("avx2", target):
        return 8
    return 4
