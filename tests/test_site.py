"""The website, the notebook zip and the Colab notebooks build from the executed sections.

Runs after tests/test_notebooks.py (same pytest call in ``make test``), so
d2lbook finds every notebook executed and renders without executing again.
"""

import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_site  # noqa: E402


@pytest.fixture(scope="module")
def site():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_site.py")], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_site_has_every_section(site):
    import notebooks

    for section in notebooks.sections():
        assert (build_site.HTML / Path(section).with_suffix(".html")).exists(), section


def test_site_is_offline(site):
    assert "no remote loads" in site
    assert build_site.remote_loads() == []
    assert (build_site.HTML / "_static" / "mathjax" / "tex-chtml.js").exists()
    js = (build_site.HTML / "_static" / "d2l.js").read_text()
    assert "google-analytics" not in js and "raw.githubusercontent" not in js


def test_install_page_has_outputs_and_colab_button(site):
    page = (build_site.HTML / "chapter_getting_started" / "install.html").read_text()
    assert 'id="Colab"' in page
    text = re.sub(r"<[^>]+>", "", page)  # outputs are syntax-highlighted into many spans
    assert "ISA features" in text and "architecture" in text  # the executed output of d2lcc.env()


def test_notebook_zip_holds_every_notebook(site):
    import notebooks

    names = set(zipfile.ZipFile(build_site.HTML / "d2l-compiler.zip").namelist())
    for section in notebooks.sections():
        assert Path(section).with_suffix(".ipynb").as_posix() in names, section


def _pins():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {d.split("==")[0]: d.split("==")[1] for d in deps if d.startswith("apache-tvm")}


def test_every_colab_notebook_starts_with_the_pinned_install(site):
    line = build_site.colab_install_line()
    args = shlex.split(line.removeprefix("!"))
    assert args[:2] == ["pip", "install"]
    pins = _pins()
    assert sorted(args[2:4]) == sorted(f"{k}=={v}" for k, v in pins.items())
    cfg = build_site.config()
    assert args[4] == (
        f"d2lcc @ git+https://github.com/{cfg['DEFAULT']['book_github_repo']}@v{cfg['project']['release']}"
    )
    colab = sorted(build_site.COLAB.rglob("*.ipynb"))
    assert len(colab) >= 2
    for path in colab:
        cells = nbformat.read(path, as_version=4).cells
        code = [c for c in cells if c.cell_type == "code"]
        assert code[0].source == line, path


def test_colab_install_resolves_on_python_312(tmp_path):
    """Resolve the install cell for Colab (CPython 3.12, manylinux x86_64) with pip's dry run.

    GitHub is out of reach here, so d2lcc's git URL is replaced by d2lcc's own
    requirements from pyproject.toml: the same set pip would resolve.
    """
    args = shlex.split(build_site.colab_install_line().removeprefix("!"))[2:]
    reqs = [a for a in args if not a.startswith("d2lcc @")]
    reqs += tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-",
           "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:", "--target", str(tmp_path)]
    for p in platforms:
        cmd += ["--platform", p]
    proc = subprocess.run(cmd + reqs, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    chosen = {m["metadata"]["name"]: m["metadata"]["version"] for m in __import__("json").loads(proc.stdout)["install"]}
    for name, version in _pins().items():
        assert chosen[name] == version
    assert re.match(r"\d", chosen["numpy"])


def test_every_chapter_has_slides_linked_from_its_pages(site):
    import build_slides

    for chapter in build_slides.chapters():
        executed = [s for s in build_slides.sections(chapter)
                    if (build_slides.EVAL / chapter / f"{s}.ipynb").exists()]
        if not executed:
            continue  # a chapter whose sections have not landed yet
        deck = build_site.HTML / "slides" / f"{chapter}.html"
        text = deck.read_text()
        assert text.count('class="slide') > len(executed), chapter
        for section in executed:
            assert f'id="{section}"' in text, (chapter, section)
            page = (build_site.HTML / chapter / f"{section}.html").read_text()
            assert f"../slides/{chapter}.html#{section}" in page, (chapter, section)
        assert "../_static/mathjax/tex-chtml.js" in text
    index = (build_site.HTML / "slides" / "index.html").read_text()
    assert index.count("<li>") >= 5


def test_header_links_slides_and_assignments_relative_to_the_page(site):
    page = (build_site.HTML / "chapter_qnn" / "basics.html").read_text()
    for href in ("../slides/index.html", "../assignments.zip", "../d2l-compiler.zip"):
        assert f'href="{href}"' in page, href
    assert 'href="slides/index.html"' in (build_site.HTML / "index.html").read_text()


def test_assignments_bundle_has_no_solutions(site):
    from assignments import grading

    names = zipfile.ZipFile(build_site.HTML / "assignments.zip").namelist()
    assert not [n for n in names if "solution" in n], names
    for i, name in enumerate(grading.NAMES, 1):
        assert f"assignment{i}_{name}.ipynb" in names
        assert f"assignments/starters/{name}.py" in names
    secret = (ROOT / "assignments" / "solutions" / "qnn.py").read_text().splitlines()
    marker = next(ln for ln in secret if "float64 times M is exact" in ln).strip()
    for path in build_site.HTML.rglob("*"):
        if path.suffix in (".html", ".ipynb", ".txt", ".js"):
            assert marker not in path.read_text(errors="replace"), path


def test_slides_open_without_the_site(tmp_path):
    """A deck built alone is one HTML file plus its figures; only MathJax is the site's."""
    import build_slides

    decks = build_slides.build(["chapter_qnn"], tmp_path)
    assert [p.name for p in decks] == ["chapter_qnn.html"]
    text = decks[0].read_text()
    assert build_site.REMOTE_LOAD.search(text) is None
    assert "<pre class=output>" in text and 'class="highlight"' in text
    assert "## " not in text and ":label:" not in text and ":numref:" not in text
    for img in re.findall(r'src="(img/[^"]+)"', text):
        assert (tmp_path / img).exists(), img
