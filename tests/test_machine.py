import pytest

import d2lcc
from d2lcc import machine

X86_CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7R32
flags\t\t: fpu sse sse2 avx fma avx2 bmi2
processor\t: 1
model name\t: AMD EPYC 7R32
flags\t\t: fpu sse sse2 avx fma avx2 bmi2
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid \
asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
"""

CASCADELAKE_CPUINFO = (
    "model name : Intel(R) Xeon(R) Platinum 8275CL\n"
    "flags : avx2 fma avx512f avx512_vnni\n"
)


def test_parse_x86_cpuinfo():
    model, feats = machine.parse_cpuinfo(X86_CPUINFO)
    assert model == "AMD EPYC 7R32"
    assert feats == ("avx2", "fma")


def test_parse_arm_cpuinfo_maps_names():
    _, feats = machine.parse_cpuinfo(ARM_CPUINFO)
    assert feats == ("neon", "dotprod")


def test_parse_vnni_cpuinfo():
    _, feats = machine.parse_cpuinfo(CASCADELAKE_CPUINFO)
    assert "avx512_vnni" in feats and "avx512f" in feats


def test_parse_cpuinfo_rejects_non_text():
    with pytest.raises(TypeError, match="parse_cpuinfo: text"):
        machine.parse_cpuinfo(b"flags: avx2")


def test_env_reports_this_machine():
    info = d2lcc.env()
    assert info.cores >= 1
    assert info.tvm == "0.27.0.post1"
    assert info.tvm_ffi == "0.1.14.post1"
    assert set(info.features) <= set(machine.FEATURES)
    text = str(info)
    for field in ("CPU", "cores", "ISA features", "apache-tvm", "apache-tvm-ffi"):
        assert field in text


def test_has_checks_feature_name():
    info = d2lcc.env()
    assert info.has("avx2") == ("avx2" in info.features)
    with pytest.raises(ValueError, match="Machine.has: unknown feature='avx3'"):
        info.has("avx3")
    with pytest.raises(TypeError, match="Machine.has: feature must be a str"):
        info.has(None)


def _fields(**changes):
    fields = dict(cpu="test", arch="x86_64", cores=2, features=("avx2",), python="3",
                  tvm="0", tvm_ffi="0")
    fields.update(changes)
    return fields


def test_machine_checks_its_fields():
    m = machine.Machine(**_fields(features=["fma", "avx2"]))
    assert m.features == ("fma", "avx2") and m.has("fma")
    with pytest.raises(ValueError, match="machine.Machine: cores=0 must be >= 1"):
        machine.Machine(**_fields(cores=0))
    with pytest.raises(ValueError, match="cores=1099511627776 must be <= 4096"):
        machine.Machine(**_fields(cores=2**40))
    with pytest.raises(TypeError, match="machine.Machine: cores must be an int"):
        machine.Machine(**_fields(cores=2.0))
    with pytest.raises(TypeError, match="machine.Machine: features must be a tuple"):
        machine.Machine(**_fields(features="avx2"))
    with pytest.raises(ValueError, match=r"unknown features\[0\]='sse9'"):
        machine.Machine(**_fields(features=("sse9",)))
    with pytest.raises(TypeError, match="machine.Machine: tvm must be a str"):
        machine.Machine(**_fields(tvm=None))


def test_import_is_lazy():
    import subprocess
    import sys

    code = (
        "import sys, d2lcc\n"
        "assert 'tvm' not in sys.modules and 'matplotlib' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parse_amx_cpuinfo():
    text = ("model name : Intel(R) Xeon(R) Platinum 8488C\n"
            "flags : avx2 fma avx512f avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8\n")
    _, feats = machine.parse_cpuinfo(text)
    assert feats == ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni",
                     "amx_int8", "amx_bf16")
