"""Static checks of the book's markdown that the HTML build would only warn about."""

import re
from pathlib import Path

import pytest

import notebooks

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = notebooks.sections()


def _text(section):
    return (ROOT / section).read_text(encoding="utf-8")


def _labels():
    return {m for s in SECTIONS for m in re.findall(r"^:label:`([^`]+)`", _text(s), re.MULTILINE)} | {
        m for s in SECTIONS for m in re.findall(r":eqlabel:`([^`]+)`", _text(s))
    }


@pytest.mark.parametrize("section", SECTIONS)
def test_cross_references_resolve(section):
    labels = _labels()
    for ref in re.findall(r":(?:numref|eqref|ref):`([^`]+)`", _text(section)):
        assert ref in labels, f"{section}: no :label: {ref!r} in the book"


@pytest.mark.parametrize("section", SECTIONS)
def test_citations_are_in_the_bib_file(section):
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), re.MULTILINE))
    for group in re.findall(r":cite:`([^`]+)`", _text(section)):
        for key in group.split(","):
            assert key.strip() in keys, f"{section}: citation {key.strip()!r} is not in references.bib"


@pytest.mark.parametrize("section", SECTIONS)
def test_labelled_equations_are_one_line(section):
    # d2lbook turns $$...$$ + :eqlabel: into `.. math::` with `:label:` after the
    # body; with a multi-line body the label becomes part of the formula.
    for body in re.findall(r"\$\$((?:(?!\$\$).)*)\$\$\n:eqlabel:", _text(section), re.DOTALL):
        assert "\n" not in body, f"{section}: a labelled equation spans lines: {body[:60]!r}"
