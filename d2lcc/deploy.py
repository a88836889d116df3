"""Looking inside compiled artifacts before shipping them to another machine.

A library compiled for another CPU cannot run here, but its ELF header says
which machine it was built for. :func:`parse_elf_header` reads the few header
fields that matter from the first 64 bytes of an ELF file (no external tool
such as ``file`` or ``readelf`` needed); :func:`elf_header` does so for a file
and :func:`elf_headers_in_tar` for every object file in a ``.tar`` written by
``Executable.export_library``.
"""

from __future__ import annotations

import os
import struct
import tarfile
from dataclasses import dataclass

from . import checks

# e_machine values (System V ABI, "ELF Header") of the machines the book meets.
ELF_MACHINES = {3: "x86", 40: "ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}
# e_type values.
ELF_TYPES = {1: "relocatable object", 2: "executable", 3: "shared object",
             4: "core file"}


@dataclass(frozen=True)
class ElfHeader:
    """The fields of an ELF header that say what machine a file is for."""

    bits: int  # 32 or 64
    endian: str  # "little" or "big"
    kind: str  # one of ELF_TYPES' values, e.g. "shared object"
    machine: str  # one of ELF_MACHINES' values, e.g. "AArch64", or "e_machine=<n>"

    def __post_init__(self) -> None:
        func = "deploy.ElfHeader"
        checks.one_of(func, "bits", self.bits, (32, 64))
        checks.one_of(func, "endian", self.endian, ("little", "big"))
        checks.string(func, "kind", self.kind)
        checks.string(func, "machine", self.machine)

    def __str__(self) -> str:
        return (f"ELF {self.bits}-bit {self.endian}-endian {self.kind} "
                f"for {self.machine}")


def _existing_file(func: str, name: str, path) -> str:
    """``path`` (str or os.PathLike) as a str, refusing missing files and folders."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{func}: {name} must be a path (str or os.PathLike), got "
                        f"{type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):  # a bytes path
        raise TypeError(f"{func}: {name} must be a str path, got {path!r}")
    if not os.path.exists(path):
        raise ValueError(f"{func}: {name}={path!r} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"{func}: {name}={path!r} is not a file")
    return path


def parse_elf_header(data: bytes) -> ElfHeader:
    """Parse the leading bytes of an ELF file (at least 20 of them) into an ElfHeader.

    Raises ``TypeError`` unless ``data`` is bytes, and ``ValueError`` if it is
    shorter than an ELF identification or is not ELF.
    """
    func = "deploy.parse_elf_header"
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"{func}: data must be bytes, got {type(data).__name__}")
    if len(data) < 20:
        raise ValueError(f"{func}: data has {len(data)} bytes, an ELF header needs "
                         "at least 20")
    if data[:4] != b"\x7fELF":  # the magic number
        raise ValueError(f"{func}: data is not an ELF file (starts with "
                         f"{bytes(data[:4])!r}, expected b'\\x7fELF')")
    ei_class, ei_data = data[4], data[5]  # 1: 32-bit, 2: 64-bit; 1: little endian
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ValueError(f"{func}: data has an invalid EI_CLASS={ei_class} or "
                         f"EI_DATA={ei_data}")
    order = "<" if ei_data == 1 else ">"
    e_type, e_machine = struct.unpack(order + "HH", data[16:20])
    return ElfHeader(
        bits=32 * ei_class,
        endian="little" if ei_data == 1 else "big",
        kind=ELF_TYPES.get(e_type, f"e_type={e_type}"),
        machine=ELF_MACHINES.get(e_machine, f"e_machine={e_machine}"),
    )


def elf_header(source: bytes | str | os.PathLike) -> ElfHeader:
    """Parse the ELF header of a file (given by path) or of its leading bytes.

    Reads the first 64 bytes of the file and hands them to
    :func:`parse_elf_header`.

    Raises
    ------
    TypeError
        If ``source`` is neither bytes nor a path.
    ValueError
        If the file does not exist, or the data is shorter than an ELF
        identification or is not ELF.
    """
    func = "deploy.elf_header"
    if isinstance(source, (str, os.PathLike)):
        with open(_existing_file(func, "source", source), "rb") as f:
            return parse_elf_header(f.read(64))
    if isinstance(source, (bytes, bytearray)):
        return parse_elf_header(bytes(source[:64]))
    raise TypeError(f"{func}: source must be bytes or a path, got "
                    f"{type(source).__name__}")


def elf_headers_in_tar(path: str | os.PathLike) -> dict[str, ElfHeader]:
    """Return the ELF header of every ``.o`` member of a tar archive, by member name.

    Raises ``ValueError`` naming the archive (and the member) when the file is
    missing, is not a tar archive, is truncated, or holds a ``.o`` that is not ELF.
    """
    func = "deploy.elf_headers_in_tar"
    path = _existing_file(func, "path", path)
    if not tarfile.is_tarfile(path):
        raise ValueError(f"{func}: path={path!r} is not a tar archive")
    headers = {}
    try:
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.endswith(".o"):
                    data = archive.extractfile(member).read(64)
                    try:
                        headers[member.name] = parse_elf_header(data)
                    except ValueError as err:
                        raise ValueError(f"{func}: member {member.name!r} of "
                                         f"path={path!r}: {err}") from None
    except (tarfile.TarError, EOFError) as err:
        raise ValueError(f"{func}: path={path!r} is a damaged tar archive: "
                         f"{err}") from None
    return headers
