"""Every section of the book, executed as a notebook from its markdown.

A failing cell fails the section's test with the file, line, cell source and
error. ``--reuse-executed`` (used by ``make book``) skips sections whose
executed notebook is newer than the markdown and the ``d2lcc`` modules it uses.
"""

import pytest

import notebooks

SECTION_TIMEOUT_S = 900


def _selected(config):
    chosen = config.getoption("--section")
    found = notebooks.sections()
    if not chosen:
        return found
    missing = [s for s in chosen if s not in found]
    if missing:
        raise pytest.UsageError(f"--section: not a section of the book: {missing}; sections: {found}")
    return chosen


def pytest_generate_tests(metafunc):
    if "section" in metafunc.fixturenames:
        metafunc.parametrize("section", _selected(metafunc.config))


@pytest.mark.timeout(SECTION_TIMEOUT_S)
def test_section(section, request):
    if request.config.getoption("--reuse-executed") and notebooks.is_up_to_date(section):
        notebooks.mark_up_to_date(section)
        pytest.skip("executed notebook is up to date")
    try:
        result = notebooks.execute(section)
    except notebooks.SectionError as err:
        pytest.fail(str(err), pytrace=False)
    request.node.user_properties.append(("section_seconds", result.seconds))
    assert notebooks.output_path(section).exists()
