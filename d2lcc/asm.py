"""Reading x86 and Arm assembly: instructions, their mnemonics, the hot loop.

A kernel's speed is decided by the few instructions of its innermost loop.
``inspect_source("asm")`` returns the whole module, with the runtime's glue
around the kernel, so this module picks out what matters:

- :func:`instructions` lists the instruction lines (no labels, directives or
  comments);
- :func:`mnemonic_counts` counts each mnemonic, keyed by the widest register
  class it touches (``"vpdpbusd zmm"``, ``"{vex} vpdpbusd ymm"``,
  ``"tdpbusd tmm"``), since ``vfmadd231ps`` on ``ymm`` and on ``zmm`` do
  different amounts of work;
- :func:`hot_loop` returns the innermost loop (a label and the backward branch
  to it) that holds the most instructions of a given mnemonic.

:func:`d2lcc.artifacts.instruction_families` counts fixed families (FMA by
width, ``vpdpbusd``, ``sdot``) over a whole module; the functions here work
on any mnemonic and on one loop.
"""

from __future__ import annotations

import re

from . import checks

#: Register classes, widest first: AMX tiles, then AVX-512, AVX, SSE vectors
#: and Arm's NEON ``v`` registers.
REGISTER_CLASSES = ("tmm", "zmm", "ymm", "xmm", "v")

_REGISTER = {
    "tmm": re.compile(r"%tmm\d"),
    "zmm": re.compile(r"%zmm\d"),
    "ymm": re.compile(r"%ymm\d"),
    "xmm": re.compile(r"%xmm\d"),
    "v": re.compile(r"\bv\d+\.\d*[bhsd]\b"),
}
_LABEL = re.compile(r"^([.\w$]+):")
_BRANCH = re.compile(r"^(j\w+|b(\.\w+)?|cbn?z|tbn?z)\s+(?:\w+,\s*)*([.\w$]+)\s*$")

#: Largest assembly text accepted (1 GiB would be a mistake, not a module).
MAX_CHARS = 1 << 30


def _text(func: str, asm) -> str:
    if not isinstance(asm, str):
        raise TypeError(f"{func}: asm must be a str, got {type(asm).__name__}")
    if len(asm) > MAX_CHARS:
        raise ValueError(f"{func}: asm has {len(asm)} characters, more than "
                         f"{MAX_CHARS}")
    return asm


def _instruction(line: str) -> str | None:
    """The instruction on an assembly line, without comment; None if none."""
    text = line.split("#")[0].split("//")[0].strip()
    if not text or text.startswith(".") or _LABEL.match(text) or text.endswith(":"):
        return None
    return text


def instructions(asm: str) -> list[str]:
    """The instruction lines of ``asm``, stripped, in order (comments removed)."""
    asm = _text("asm.instructions", asm)
    return [ins for ins in map(_instruction, asm.splitlines()) if ins is not None]


def mnemonic(instruction: str) -> str:
    """The key of one instruction: mnemonic and widest register class.

    ``"vfmadd231ps %ymm1, %ymm2, %ymm3"`` gives ``"vfmadd231ps ymm"``;
    a prefix such as ``{vex}`` stays part of the mnemonic; an instruction
    without vector registers gives the mnemonic alone (``"addq"``).
    """
    checks.string("asm.mnemonic", "instruction", instruction)
    words = instruction.split()
    if not words:
        raise ValueError("asm.mnemonic: instruction is empty")
    name = words[0]
    if name.startswith("{") and len(words) > 1:
        name = f"{name} {words[1]}"
    for cls in REGISTER_CLASSES:
        if _REGISTER[cls].search(instruction):
            return f"{name} {cls}"
    return name


def mnemonic_counts(asm: str) -> dict[str, int]:
    """How often each :func:`mnemonic` key occurs in ``asm``, most frequent first."""
    counts: dict[str, int] = {}
    for ins in instructions(_text("asm.mnemonic_counts", asm)):
        key = mnemonic(ins)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def hot_loop(asm: str, name: str) -> list[str]:
    """The instructions of the loop of ``asm`` with the most ``name`` instructions.

    A loop is the code from a label to a later branch back to that label.
    ``name`` is a mnemonic (``"vpdpbusd"``, which also matches
    ``{vex} vpdpbusd``) or a :func:`mnemonic` key (``"vpdpbusd zmm"``).
    Among loops with equally many, the shortest (the innermost) wins.
    Returns ``[]`` when no loop holds such an instruction.
    """
    asm = _text("asm.hot_loop", asm)
    name = checks.string("asm.hot_loop", "name", name).strip()
    if not name:
        raise ValueError("asm.hot_loop: name is empty")
    labels: dict[str, int] = {}
    body: list[str] = []
    best: list[str] = []
    best_count = 0

    def matches(ins: str) -> bool:
        key = mnemonic(ins)
        words = key.split(" ")
        if words[-1] in REGISTER_CLASSES:
            words = words[:-1]
        bare = [w for w in words if not w.startswith("{")]  # {vex} prefix
        return name in (key, " ".join(words), " ".join(bare))

    for line in asm.splitlines():
        text = line.split("#")[0].split("//")[0].strip()
        label = _LABEL.match(text)
        if label:
            labels[label.group(1)] = len(body)
            continue
        ins = _instruction(line)
        if ins is None:
            continue
        body.append(ins)
        branch = _BRANCH.match(ins)
        if branch and branch.group(3) in labels:
            loop = body[labels[branch.group(3)]:]
            count = sum(map(matches, loop))
            if count > best_count or (count == best_count and count
                                      and len(loop) < len(best)):
                best, best_count = loop, count
    return list(best)
