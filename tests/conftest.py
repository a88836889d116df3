import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_addoption(parser):
    group = parser.getgroup("d2lcc book")
    group.addoption("--section", action="append", default=[], help="execute only this section (path to its .md); repeatable")
    group.addoption("--reuse-executed", action="store_true", help="skip sections whose executed notebook is up to date")


_SECTION_TIMES = {}


def pytest_runtest_logreport(report):
    for key, value in getattr(report, "user_properties", []):
        if key == "section_seconds" and report.when == "call":
            _SECTION_TIMES[report.nodeid.split("[", 1)[-1].rstrip("]")] = value


def pytest_terminal_summary(terminalreporter):
    if not _SECTION_TIMES:
        return
    tr = terminalreporter
    tr.section("section times (slowest first)")
    for name, seconds in sorted(_SECTION_TIMES.items(), key=lambda kv: -kv[1]):
        tr.write_line(f"{seconds:8.1f} s  {name}")
    tr.write_line(f"{sum(_SECTION_TIMES.values()):8.1f} s  total over {len(_SECTION_TIMES)} sections")
