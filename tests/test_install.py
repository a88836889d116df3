"""The installed toolchain is the pinned one, and the files that name it agree."""

import configparser
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import d2lcc

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins():
    pins = {}
    for req in _pyproject()["project"]["dependencies"]:
        spec = req.split(";")[0]
        if "==" in spec:
            name, version = spec.split("==")
            pins[name.strip()] = version.strip()
    return pins


def test_installed_tvm_pair_is_the_pinned_pair():
    pins = _pins()
    assert pins == {"apache-tvm": "0.27.0.post1", "apache-tvm-ffi": "0.1.14.post1"}
    for name, version in pins.items():
        assert metadata.version(name) == version


def test_irmodule_round_trips_through_json():
    # With apache-tvm-ffi 0.1.15.post2 this segfaults; MetaSchedule depends on it.
    import tvm
    import tvm_ffi
    from tvm.script import relax as R

    @tvm.script.ir_module
    class Module:
        @R.function
        def main(x: R.Tensor((2, 3), "float32")) -> R.Tensor((2, 3), "float32"):
            y = R.add(x, x)
            return y

    text = tvm.ir.save_json(Module)
    assert tvm_ffi.structural_equal(tvm.ir.load_json(text), Module)


def test_release_matches_package_version():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "config.ini")
    assert cfg["project"]["release"] == d2lcc.__version__


def test_build_yml_follows_pyproject():
    text = (ROOT / "build.yml").read_text()
    python = next(line.split("=")[1].strip() for line in text.splitlines() if line.strip().startswith("- python="))
    requires = _pyproject()["project"]["requires-python"]
    low, high = (part.strip(">=<") for part in requires.split(","))
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(low) <= as_tuple(python) < as_tuple(high)
    extras = set(_pyproject()["project"]["optional-dependencies"])
    assert "- -e .[book,test]" in text and extras == {"book", "test"}
    assert "pandoc" in text  # d2lbook needs it; pip cannot provide it in conda


@pytest.mark.parametrize("pin", ["d2lbook==1.0.3", "pybtex==0.24.0", "setuptools<82"])
def test_book_extra_carries_the_d2lbook_pins(pin):
    assert pin in _pyproject()["project"]["optional-dependencies"]["book"]
