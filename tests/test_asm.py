"""Tests of d2lcc.asm: instruction lines, mnemonic keys, counts and the hot loop."""

import pytest

from d2lcc import asm

LISTING = """\
\t.text
\t.globl\tkernel
kernel:                                 # @kernel
\txorl\t%eax, %eax
.LBB0_1:                                # outer loop
\tvpxor\t%xmm0, %xmm0, %xmm0
.LBB0_2:                                # inner loop
\tvpbroadcastd\t(%rdi,%rax), %zmm1
\tvpdpbusd\t(%rsi), %zmm1, %zmm0
\tvpdpbusd\t64(%rsi), %zmm1, %zmm2
\t{vex} vpdpbusd\t%ymm3, %ymm4, %ymm5
\taddq\t$4, %rax
\tjne\t.LBB0_2
# %bb.3:
\tvmovdqu64\t%zmm0, (%rdx)
\tdecl\t%ecx
\tjne\t.LBB0_1
\tretq
"""


def test_instructions_drop_labels_directives_and_comments():
    ins = asm.instructions(LISTING)
    assert ins[0] == "xorl\t%eax, %eax"
    assert ins[-1] == "retq"
    assert not any(i.startswith((".", "#")) or i.endswith(":") for i in ins)
    assert len(ins) == 12
    assert asm.instructions("") == []


@pytest.mark.parametrize("line, key", [
    ("vfmadd231ps\t%ymm1, %ymm2, %ymm3", "vfmadd231ps ymm"),
    ("vfmadd231ps\t(%rax){1to16}, %zmm2, %zmm3", "vfmadd231ps zmm"),
    ("vpbroadcastd\t%xmm0, %zmm1", "vpbroadcastd zmm"),  # widest register wins
    ("{vex} vpdpbusd\t%ymm3, %ymm4, %ymm5", "{vex} vpdpbusd ymm"),
    ("tdpbusd\t%tmm6, %tmm4, %tmm0", "tdpbusd tmm"),
    ("fmla\tv0.4s, v1.4s, v2.4s", "fmla v"),
    ("sdot\tv0.4s, v1.16b, v2.16b", "sdot v"),
    ("addq\t$4, %rax", "addq"),
    ("retq", "retq"),
])
def test_mnemonic_keys_name_the_widest_register_class(line, key):
    assert asm.mnemonic(line) == key


def test_mnemonic_counts_are_sorted_and_complete():
    counts = asm.mnemonic_counts(LISTING)
    assert counts["vpdpbusd zmm"] == 2
    assert counts["{vex} vpdpbusd ymm"] == 1
    assert counts["jne"] == 2
    assert list(counts)[0] in ("vpdpbusd zmm", "jne")
    assert sum(counts.values()) == len(asm.instructions(LISTING))
    assert asm.mnemonic_counts("") == {}


def test_hot_loop_is_the_innermost_loop_with_the_instruction():
    loop = asm.hot_loop(LISTING, "vpdpbusd")
    assert loop[0].startswith("vpbroadcastd") and loop[-1] == "jne\t.LBB0_2"
    assert len(loop) == 6
    # the {vex} form matches the bare mnemonic and its own key
    assert asm.hot_loop(LISTING, "{vex} vpdpbusd ymm") == loop
    assert asm.hot_loop(LISTING, "vpdpbusd zmm") == loop
    # an instruction only in the outer loop gives the outer loop
    outer = asm.hot_loop(LISTING, "vmovdqu64")
    assert outer[0].startswith("vpxor") and outer[-1] == "jne\t.LBB0_1"
    assert asm.hot_loop(LISTING, "tdpbusd") == []


def test_hot_loop_of_a_compiled_kernel():
    tvm = pytest.importorskip("tvm")
    import d2lcc
    from d2lcc.int8 import x86

    lib = tvm.compile(x86.matmul(64, 64, 64, "avx512_vnni").mod,
                      target=d2lcc.target.named("cascadelake"))
    text = lib.jit().inspect_source("asm")
    counts = asm.mnemonic_counts("\n".join(asm.hot_loop(text, "vpdpbusd")))
    assert counts["vpdpbusd zmm"] == 4 * 4  # a 4 x 4-vector register block


@pytest.mark.parametrize("call", [
    lambda: asm.instructions(None), lambda: asm.instructions(b"x"),
    lambda: asm.mnemonic_counts(3), lambda: asm.hot_loop(None, "vpdpbusd"),
    lambda: asm.hot_loop("", 7), lambda: asm.mnemonic(None),
])
def test_bad_types_raise_type_error(call):
    with pytest.raises(TypeError, match=r"asm\.\w+: "):
        call()


def test_bad_values_raise_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="asm.hot_loop: name"):
        asm.hot_loop(LISTING, "  ")
    with pytest.raises(ValueError, match="asm.mnemonic: instruction"):
        asm.mnemonic("   ")
