import struct
import sys
import tarfile

import pytest

from d2lcc import deploy


def _header(ei_class=2, ei_data=1, e_type=1, e_machine=183):
    order = "<" if ei_data == 1 else ">"
    ident = b"\x7fELF" + bytes([ei_class, ei_data, 1]) + bytes(9)
    return ident + struct.pack(order + "HH", e_type, e_machine) + bytes(44)


@pytest.mark.parametrize(
    "fields,expected",
    [
        (dict(), "ELF 64-bit little-endian relocatable object for AArch64"),
        (dict(e_type=3, e_machine=62),
         "ELF 64-bit little-endian shared object for x86-64"),
        (dict(ei_class=1, ei_data=2, e_type=2, e_machine=40),
         "ELF 32-bit big-endian executable for ARM"),
        (dict(e_machine=999),
         "ELF 64-bit little-endian relocatable object for e_machine=999"),
    ],
)
def test_elf_header_fields(fields, expected):
    assert str(deploy.elf_header(_header(**fields))) == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="needs an ELF interpreter binary")
def test_elf_header_of_this_python():
    import platform

    header = deploy.elf_header(sys.executable)
    assert header.bits == 64
    names = {"x86_64": "x86-64", "aarch64": "AArch64"}
    assert header.machine == names.get(platform.machine(), header.machine)


def test_elf_header_errors(tmp_path):
    with pytest.raises(ValueError, match="parse_elf_header: data is not an ELF file"):
        deploy.elf_header(b"MZ" + bytes(62))
    with pytest.raises(ValueError, match="at least 20"):
        deploy.elf_header(b"\x7fELF")
    with pytest.raises(ValueError, match="EI_CLASS=7"):
        deploy.elf_header(_header(ei_class=7))
    with pytest.raises(TypeError, match="elf_header: source"):
        deploy.elf_header(12)
    with pytest.raises(ValueError, match="deploy.elf_header: source=.*does not exist"):
        deploy.elf_header(tmp_path / "missing.so")
    with pytest.raises(ValueError, match="deploy.elf_header: source=.*is not a file"):
        deploy.elf_header(tmp_path)
    with pytest.raises(ValueError, match="data has 0 bytes"):
        deploy.elf_header(b"")


def test_parse_elf_header():
    header = deploy.parse_elf_header(_header(e_type=3, e_machine=243))
    assert (header.bits, header.endian, header.kind, header.machine) == (
        64, "little", "shared object", "RISC-V")
    assert deploy.parse_elf_header(bytearray(_header()[:20])).machine == "AArch64"
    with pytest.raises(TypeError, match="parse_elf_header: data must be bytes"):
        deploy.parse_elf_header("\x7fELF" + "\0" * 60)
    with pytest.raises(ValueError, match="parse_elf_header: data has 19 bytes"):
        deploy.parse_elf_header(_header()[:19])
    with pytest.raises(ValueError, match="EI_DATA=3"):
        deploy.parse_elf_header(_header(ei_data=1)[:5] + b"\x03" + bytes(58))


def test_elf_header_class_checks_fields():
    with pytest.raises(ValueError, match="deploy.ElfHeader: bits=16 must be one of"):
        deploy.ElfHeader(16, "little", "executable", "x86-64")
    with pytest.raises(ValueError, match="endian='middle'"):
        deploy.ElfHeader(64, "middle", "executable", "x86-64")


def test_elf_headers_in_tar(tmp_path):
    (tmp_path / "lib0.o").write_bytes(_header())
    (tmp_path / "devc.o").write_bytes(_header(e_machine=62))
    (tmp_path / "notes.txt").write_text("not an object")
    archive = tmp_path / "lib.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("lib0.o", "devc.o", "notes.txt"):
            tar.add(tmp_path / name, arcname=name)
    headers = deploy.elf_headers_in_tar(archive)
    assert sorted(headers) == ["devc.o", "lib0.o"]
    assert headers["lib0.o"].machine == "AArch64"
    assert headers["devc.o"].machine == "x86-64"
    with pytest.raises(ValueError, match="is not a tar archive"):
        deploy.elf_headers_in_tar(tmp_path / "lib0.o")


def test_elf_headers_in_tar_bad_archives(tmp_path):
    with pytest.raises(TypeError, match="elf_headers_in_tar: path must be a path"):
        deploy.elf_headers_in_tar(0)  # not a file descriptor: that would read stdin
    with pytest.raises(ValueError, match="path=.*does not exist"):
        deploy.elf_headers_in_tar(tmp_path / "none.tar")
    (tmp_path / "short.o").write_bytes(b"\x7fELF")
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "short.o", arcname="short.o")
    with pytest.raises(ValueError, match="member 'short.o' of path=.*at least 20"):
        deploy.elf_headers_in_tar(archive)
    (tmp_path / "lib0.o").write_bytes(_header() + bytes(4096))
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        tar.add(tmp_path / "lib0.o", arcname="lib0.o")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[:700])
    with pytest.raises(ValueError, match="in_tar: path=.*(damaged|not a tar)"):
        deploy.elf_headers_in_tar(cut)
