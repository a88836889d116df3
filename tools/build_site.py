"""Build the website, the notebook zip and the Colab notebooks from the executed sections.

Run by ``make book`` after ``tests/test_notebooks.py --reuse-executed`` has
executed every outdated section into ``_build/eval``, so d2lbook renders them
without executing anything again. Afterwards the site is made to work offline:
MathJax is served from the site itself, d2lbook's analytics loader and remote
copy-button icon are replaced by local ones, and a check fails the build if
any page still loads something from another host.

Colab notebooks and buttons are made here rather than by d2lbook, whose
``[colab]`` support crashes without tabs (``libs``) and writes broken links.

For instructors it adds the chapters' slide decks (``tools/build_slides.py``,
a "Slides" button on every chapter and section page), the students' bundle
of graded assignments (``assignments.zip``, without the staff solutions) and,
when ``make pdf`` has built it, the PDF; all three are linked in the header.
"""

from __future__ import annotations

import configparser
import html
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
COLAB = BUILD / "colab"
# Loads of these kinds from another host would make the site depend on the network.
REMOTE_LOAD = re.compile(
    r"""(<script[^>]+src=["']https?://|<link[^>]+href=["']https?://[^"']+\.(css|js)|<img[^>]+src=["']https?://"""
    r"""|url\(["']?https?://|\.src\s*=\s*["']https?://|['"]https?://[^'"]+\.js['"])""",
    re.IGNORECASE,
)


def config() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "config.ini", encoding="utf-8")
    return cfg


def run(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def colab_install_line(cfg: configparser.ConfigParser | None = None) -> str:
    """The one pip command every Colab notebook starts with: the pinned TVM pair and d2lcc at the book's release."""
    cfg = cfg or config()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if d.startswith(("apache-tvm==", "apache-tvm-ffi=="))]
    repo = cfg["DEFAULT"]["book_github_repo"]
    release = cfg["project"]["release"]
    d2lcc = f'"d2lcc @ git+https://github.com/{repo}@v{release}"'
    return "!pip install " + " ".join(pins + [d2lcc])


def zip_notebooks(dest: Path) -> None:
    """Zip the executed notebooks (``_build/ipynb``, links between them made clickable) for download."""
    import zipfile

    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((BUILD / "ipynb").rglob("*")):
            if path.is_file() and path.stat().st_size > 0:
                zf.write(path, path.relative_to(BUILD / "ipynb").as_posix())


def make_colab_notebooks(cfg: configparser.ConfigParser) -> list[Path]:
    """Copy the executed notebooks to ``_build/colab`` with the install cell first."""
    shutil.rmtree(COLAB, ignore_errors=True)
    shutil.copytree(BUILD / "ipynb", COLAB)
    header = (
        "This notebook belongs to *Dive into Deep Learning Compiler*. Run the next cell once "
        "per Colab session: it installs the TVM release and the `d2lcc` package the book uses."
    )
    written = []
    for path in sorted(COLAB.rglob("*.ipynb")):
        if path.stat().st_size == 0:
            continue
        nb = nbformat.read(path, as_version=4)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nb.cells[:0] = [nbformat.v4.new_markdown_cell(header), nbformat.v4.new_code_cell(colab_install_line(cfg))]
        nbformat.write(nb, path)
        written.append(path)
    return written


def add_colab_buttons(cfg: configparser.ConfigParser) -> int:
    """Put an 'Open in Colab' button into the title of every page that has code."""
    repo = cfg["colab"]["notebooks_repo"]
    count = 0
    for page in HTML.rglob("*.html"):
        rel = page.relative_to(HTML).with_suffix(".ipynb").as_posix()
        if not (COLAB / rel).exists() or 'id="Colab"' in (text := page.read_text(encoding="utf-8")):
            continue
        if 'class="highlight-python' not in text:
            continue
        url = html.escape(f"https://colab.research.google.com/github/{repo}/blob/master/{rel}")
        button = (
            f'<a href="{url}"><button style="float:right" id="Colab" '
            'class="mdl-button mdl-js-button mdl-button--primary mdl-js-ripple-effect">'
            '<i class="fas fa-external-link-alt"></i> Colab</button></a>'
        )
        page.write_text(text.replace("</h1>", button + "</h1>", 1), encoding="utf-8")
        count += 1
    return count


def assignments_bundle(dest: Path) -> list[str]:
    """Zip what students get: the checks, the starters and one notebook per assignment.

    The reference solutions (``assignments/solutions``) stay out.
    """
    import zipfile

    sys.path.insert(0, str(ROOT))
    from assignments import grading

    src = ROOT / "assignments"
    files = [src / "__init__.py", src / "grading.py"]
    files += [src / f"{name}.py" for name in grading.NAMES]
    files += [src / "starters" / f"{name}.py" for name in grading.NAMES]
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, path.relative_to(ROOT).as_posix())
        for i, name in enumerate(grading.NAMES, 1):
            nb = grading.student_notebook(name)
            zf.writestr(f"assignment{i}_{name}.ipynb", nbformat.writes(nb))
        return zf.namelist()


def _button(href: str, label: str, icon: str) -> str:
    return (f'<a href="{html.escape(href)}"><button style="float:right" '
            f'id="{label}" class="mdl-button mdl-js-button mdl-button--primary '
            f'mdl-js-ripple-effect"><i class="{icon}"></i> {label}</button></a>')


def add_instructor_links(decks: list[Path], pdf: bool) -> int:
    """Slides buttons on chapter and section pages; Slides, Assignments, PDF in the header.

    d2lbook writes the header links verbatim, so a relative one (the notebook
    zip) breaks on pages in a chapter folder: they are made relative to each page.
    """
    cfg = config()
    zip_name = f"{cfg['project']['name']}.zip"
    chapters = {p.stem for p in decks}
    links = [("slides/index.html", "Slides", "fas fa-desktop"),
             ("assignments.zip", "Assignments", "fas fa-tasks")]
    if pdf:
        links.append((f"{cfg['project']['name']}.pdf", "PDF", "fas fa-file-pdf"))
    buttons = 0
    for page in HTML.rglob("*.html"):
        rel = page.relative_to(HTML)
        if rel.parts[0] in ("slides", "_static", "_sources"):
            continue
        text = page.read_text(encoding="utf-8")
        up = "../" * (len(rel.parts) - 1)
        text = text.replace(f'href="{zip_name}"', f'href="{up}{zip_name}"')
        nav = '<nav class="mdl-navigation">'
        if nav in text and 'id="header-slides"' not in text:
            extra = ""
            for href, label, icon in links:
                ident = ' id="header-slides"' if label == "Slides" else ""
                extra += (f'<a class="mdl-navigation__link"{ident} href="{up}{href}">'
                          f'<i class="{icon}"></i> {label}</a>')
            text = text.replace(nav, nav + extra, 1)
        if rel.parts[0] in chapters and 'id="Slides"' not in text:
            anchor = "" if rel.stem == "index" else f"#{rel.stem}"
            button = _button(f"../slides/{rel.parts[0]}.html{anchor}", "Slides",
                             "fas fa-desktop")
            text = text.replace("</h1>", button + "</h1>", 1)
            buttons += 1
        page.write_text(text, encoding="utf-8")
    return buttons


def copy_pdf(cfg: configparser.ConfigParser) -> bool:
    """Copy the PDF that ``make pdf`` built into the site, if there is one."""
    pdf = BUILD / "pdf" / f"{cfg['project']['name']}.pdf"
    if pdf.exists():
        shutil.copy(pdf, HTML / pdf.name)
    return pdf.exists()


def install_mathjax() -> None:
    """Copy MathJax 3 (tex-chtml and its fonts) into the site; conf.py points mathjax_path at it."""
    import mathjax  # the django-static-mathjax wheel

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    dest = HTML / "_static" / "mathjax"
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "output" / "chtml").mkdir(parents=True)
    shutil.copy(es5 / "tex-chtml.js", dest / "tex-chtml.js")
    shutil.copytree(es5 / "output" / "chtml" / "fonts", dest / "output" / "chtml" / "fonts")


def localize_d2l_js() -> None:
    """Drop d2lbook's Google Analytics loader and use the local copy-button icon."""
    from d2lbook import sphinx_template

    path = HTML / "_static" / "d2l.js"
    text = path.read_text(encoding="utf-8")
    tracker = sphinx_template.google_tracker.replace("GOOGLE_ANALYTICS_TRACKING_ID", "")
    stub = (
        "\n// No analytics: links open directly.\n"
        "var captureOutboundLink = function(url) { document.location = url; };\n"
        "var tagClick = function(tab) {};\n"
    )
    if tracker in text:
        text = text.replace(tracker, stub)
    text = re.sub(
        r"https://raw\.githubusercontent\.com/[^\"]+/copy-button\.svg",
        "${DOCUMENTATION_OPTIONS.URL_ROOT}_static/copy-button.svg",
        text,
    )
    path.write_text(text, encoding="utf-8")
    shutil.copy(ROOT / "static" / "copy-button.svg", HTML / "_static" / "copy-button.svg")


def remote_loads() -> list[str]:
    """Every place in the site that would load a script, style, font or image from another host."""
    found = []
    for path in HTML.rglob("*"):
        if path.suffix not in (".html", ".js", ".css") or "mathjax" in path.parts:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if line.lstrip().startswith(("//", "*", "/*")):
                continue  # comments
            for match in REMOTE_LOAD.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{lineno}: {match.group(0)}")
    return found


def outdated_sections() -> list[str]:
    """Sections whose executed notebook is missing or older than the markdown or d2lcc."""
    sys.path.insert(0, str(ROOT / "tests"))
    import notebooks

    return [s for s in notebooks.sections() if not notebooks.is_up_to_date(s)]


def main() -> int:
    cfg = config()
    if cfg.get("colab", "github_repo", fallback=""):
        sys.exit("config.ini: keep [colab] github_repo empty; tools/build_site.py makes the Colab notebooks")
    stale = outdated_sections()
    if stale:
        print("These sections are not executed (or changed since): run `make book`, which executes them first:\n  "
              + "\n  ".join(stale), file=sys.stderr)
        return 1
    env_bin = str(Path(sys.executable).parent)
    os.environ["PATH"] = env_bin + os.pathsep + os.environ.get("PATH", "")
    run("d2lbook", "build", "html")
    zip_notebooks(HTML / f"{cfg['project']['name']}.zip")
    notebooks = make_colab_notebooks(cfg)
    buttons = add_colab_buttons(cfg)
    install_mathjax()
    localize_d2l_js()
    sys.path.insert(0, str(ROOT / "tools"))
    import build_slides

    decks = build_slides.build()
    bundle = assignments_bundle(HTML / "assignments.zip")
    slide_buttons = add_instructor_links(decks, copy_pdf(cfg))
    problems = remote_loads()
    if problems:
        print("The site loads resources from other hosts:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"Built {HTML} ({len(notebooks)} Colab notebooks in {COLAB}, {buttons} Colab buttons, "
          f"{len(decks)} slide decks, {slide_buttons} Slides buttons, "
          f"{len(bundle)} files in assignments.zip); no remote loads.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
