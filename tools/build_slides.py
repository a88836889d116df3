"""Build one offline HTML slide deck per chapter from the executed sections.

``tools/build_site.py`` calls :func:`build` after d2lbook has rendered the
site; ``python tools/build_slides.py [chapter_x ...]`` builds decks alone.

d2lbook 1.0.3 has ``d2lbook build slides``, but it only picks up text marked
with ``[**...**]`` / ``(**...**)`` in the markdown (the book has no marks, so it
writes nothing), it crashes unless ``[slides] github_repo`` names a GitHub
repository to push to, and its output is RISE notebooks, which need Jupyter
with the RISE extension to present. So the decks are made here, from the same
executed notebooks (``_build/eval``) the website renders:

* a section starts with a title slide; every ``##``/``###`` heading starts a
  slide; each paragraph contributes its first sentence, or the text marked
  with d2lbook's ``[**...**]`` where the author marked some;
* display math, figures and tables join their slide whole, and ``## Summary``
  gets a slide of its own; each code cell
  becomes a slide with its output as the website shows it (long outputs are
  cut); ``## Exercises`` and later parts of a section are left to the book;
* the deck is one HTML file with a small inline script (arrow keys, space,
  ``Esc`` for an overview, ``#12`` for a slide number); math uses the site's
  own MathJax, so a deck opens offline from ``_build/html/slides``.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import sys
from pathlib import Path

import mistune
import nbformat
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "_build" / "eval"
OUT = ROOT / "_build" / "html" / "slides"
MAX_OUTPUT_LINES = 14
MAX_BULLETS = 5
_MARKED = re.compile(r"[\[(]\*\*(.+?)\*\*[\])]", re.DOTALL)
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.DOTALL)


def chapters() -> list[str]:
    """The book's chapters with sections, in the order of the root toc."""
    text = (ROOT / "index.md").read_text(encoding="utf-8")
    names = re.findall(r"^(chapter_\w+)/index\s*$", text, re.MULTILINE)
    return [c for c in names if (ROOT / c / "index.md").exists()]


def sections(chapter: str) -> list[str]:
    """The chapter's sections in the order of its toc."""
    text = (ROOT / chapter / "index.md").read_text(encoding="utf-8")
    toc = re.search(r"```toc\n(.*?)```", text, re.DOTALL)
    names = [ln.strip() for ln in (toc.group(1) if toc else "").splitlines()]
    return [n for n in names if n and not n.startswith(":")]


def labels() -> dict[str, str]:
    """Every ``:label:`` of the book mapped to the title above it."""
    found = {}
    for md in ROOT.glob("chapter_*/*.md"):
        text = md.read_text(encoding="utf-8")
        for title, label in re.findall(r"^#+ (.+)\n:label:`(\w+)`", text, re.MULTILINE):
            found[label] = title.strip()
    return found


def _cite(keys: str) -> str:
    """``Chen.Moreau.Jiang.ea.2018`` -> ``Chen et al., 2018``."""
    out = []
    for key in keys.split(","):
        parts = key.strip().split(".")
        year = parts[-1] if parts[-1].isdigit() else ""
        names = [p for p in parts[:-1] if p != "ea"]
        who = names[0] + (" et al." if len(parts) > 3 or "ea" in parts
                          else (" and " + names[1] if len(names) > 1 else ""))
        out.append(f"{who}, {year}" if year else who)
    return "(" + "; ".join(out) + ")"


def _roles(text: str, titles: dict[str, str]) -> str:
    """Replace d2lbook's roles by text a slide can show."""
    text = re.sub(r"^:(label|eqlabel|width|height):`[^`]*`\s*$", "", text,
                  flags=re.MULTILINE)
    text = re.sub(r":numref:`(\w+)`", lambda m: f"*{titles.get(m.group(1), 'a section')}*",
                  text)
    text = re.sub(r":eqref:`\w+`", "the equation above", text)
    return re.sub(r":cite:`([^`]+)`", lambda m: _cite(m.group(1)), text)


def to_html(text: str, titles: dict[str, str]) -> str:
    """Markdown with math and d2lbook roles to HTML (math left to MathJax)."""
    text = _roles(text, titles)
    maths: list[str] = []

    def keep(m):
        maths.append(m.group(0))
        return f"MATHPLACEHOLDER{len(maths) - 1}X"

    body = mistune.html(_MATH.sub(keep, text))
    return re.sub(r"MATHPLACEHOLDER(\d+)X", lambda m: html.escape(maths[int(m.group(1))]),
                  body)


def _first_sentence(paragraph: str) -> str:
    marked = _MARKED.findall(paragraph)
    if marked:
        return " ".join(" ".join(m.split()) for m in marked)
    flat = " ".join(paragraph.split())
    m = re.search(r"(?<![A-Z]\.)(?<!e\.g)(?<!i\.e)[.:?!](\s|$)", _MATH.sub(
        lambda x: "M" * len(x.group(0)), flat))
    return flat[: m.end()].strip() if m else flat


def _blocks(source: str) -> list[str]:
    """Split a markdown cell into blocks, keeping math and fenced code whole."""
    blocks, current, fence = [], [], False
    for line in source.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not line.strip() and not fence and "$$" not in "\n".join(current[-1:]):
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _output_html(outputs) -> str:
    parts = []
    for out in outputs:
        data = out.get("data", {})
        if "image/svg+xml" in data:
            svg = "".join(data["image/svg+xml"])
            uri = base64.b64encode(svg.encode()).decode()
            parts.append(f'<img class="plot" src="data:image/svg+xml;base64,{uri}">')
        elif "image/png" in data:
            parts.append(f'<img class="plot" src="data:image/png;base64,{data["image/png"]}">')
        else:
            text = out.get("text") or data.get("text/plain") or ""
            text = "".join(text) if isinstance(text, list) else text
            lines = text.rstrip("\n").splitlines()
            if len(lines) > MAX_OUTPUT_LINES:
                lines = lines[:MAX_OUTPUT_LINES] + [f"... ({len(lines)} lines in the book)"]
            if lines:
                parts.append("<pre class=output>" + html.escape("\n".join(lines)) + "</pre>")
    return "".join(parts)


def _code_html(source: str) -> str:
    lines = source.splitlines()
    if len(lines) > 24:
        lines = lines[:24] + ["# ... (the rest is in the book)"]
    return highlight("\n".join(lines), PythonLexer(), HtmlFormatter(nowrap=False))


class Deck:
    def __init__(self, title: str, titles: dict[str, str]):
        self.title, self.titles = title, titles
        self.slides: list[tuple[str, str, str]] = []  # (anchor, heading, body html)

    def add(self, heading: str, body: str, anchor: str = "") -> None:
        self.slides.append((anchor, heading, body))

    def add_section(self, name: str, nb) -> None:
        heading, bullets, skip = "", [], False

        def flush():
            nonlocal bullets
            if bullets:
                self.add(heading, to_html("\n".join(bullets), self.titles))
                bullets = []

        for cell in nb.cells:
            if cell.cell_type == "code":
                if skip or not cell.source.strip():
                    continue
                flush()
                self.add(heading, _code_html(cell.source) + _output_html(cell.get("outputs", [])))
                continue
            for block in _blocks(cell.source):
                level = len(block) - len(block.lstrip("#"))
                if 1 <= level <= 3 and block[level:level + 1] == " ":
                    flush()
                    text = block.splitlines()[0][level:].strip()
                    if level == 1:
                        heading = text
                        self.add(text, "", anchor=name)
                        continue
                    skip = text in ("Exercises", "Discussions")
                    heading = text
                    continue
                if skip or block.startswith(":"):
                    continue
                if heading == "Summary":
                    flush()
                    self.add(heading, to_html(block, self.titles))
                elif block.startswith(("$$", "![", "|")):  # whole, beside the text
                    bullets.append("\n" + block + "\n")
                elif block.startswith("```"):
                    continue
                else:
                    if block.lstrip().startswith(("* ", "- ", "1. ")):
                        items = re.split(r"\n(?=\s*(?:[*-]|\d+\.) )", block)
                        bullets += ["* " + _first_sentence(re.sub(r"^\s*(?:[*-]|\d+\.) ",
                                                                  "", it)) for it in items]
                    else:
                        bullets.append("* " + _first_sentence(block))
                    if len(bullets) >= MAX_BULLETS:
                        flush()
        flush()

    def render(self, mathjax: str) -> str:
        style = HtmlFormatter().get_style_defs(".highlight")
        slides = []
        for i, (anchor, heading, body) in enumerate(self.slides, 1):
            ident = f' id="{anchor}"' if anchor else ""
            cls = "slide title" if anchor else "slide"
            slides.append(f'<section class="{cls}"{ident} data-n="{i}">'
                          f"<h2>{to_html(heading, self.titles)[3:-5]}</h2>{body}</section>")
        return PAGE.format(title=html.escape(self.title), style=style, mathjax=mathjax,
                           slides="\n".join(slides))


def build_chapter(chapter: str, out_dir: Path = OUT) -> Path | None:
    """Write ``<out_dir>/<chapter>.html``; None if no section is executed yet."""
    titles = labels()
    index = (ROOT / chapter / "index.md").read_text(encoding="utf-8")
    title = re.search(r"^# (.+)$", index, re.MULTILINE).group(1).strip()
    deck = Deck(title, titles)
    names = sections(chapter)
    listing = "".join(f"<li>{html.escape(titles.get(_label(chapter, n), n))}</li>"
                      for n in names)
    deck.add(title, f'<p class="book">Dive into Deep Learning Compiler</p><ol>{listing}</ol>')
    found = 0
    for name in names:
        path = EVAL / chapter / f"{name}.ipynb"
        if path.exists() and path.stat().st_size:
            deck.add_section(name, nbformat.read(path, as_version=4))
            found += 1
    if not found:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    for img in re.findall(r'src="\.\./img/([^"]+)"', "".join(s[2] for s in deck.slides)):
        (out_dir / "img").mkdir(exist_ok=True)
        shutil.copy(ROOT / "img" / img, out_dir / "img" / img)
    page = deck.render("../_static/mathjax/tex-chtml.js").replace('src="../img/', 'src="img/')
    path = out_dir / f"{chapter}.html"
    path.write_text(page, encoding="utf-8")
    return path


def _label(chapter: str, name: str) -> str:
    text = (ROOT / chapter / f"{name}.md").read_text(encoding="utf-8")
    m = re.search(r":label:`(\w+)`", text)
    return m.group(1) if m else name


def build(only: list[str] | None = None, out_dir: Path = OUT) -> list[Path]:
    """Build the decks (all chapters by default) and their index page."""
    written = [p for c in (only or chapters()) if (p := build_chapter(c, out_dir))]
    items = "".join(f'<li><a href="{p.name}">{html.escape(_deck_title(p))}</a></li>'
                    for p in written)
    (out_dir / "index.html").write_text(INDEX.format(items=items), encoding="utf-8")
    return written


def _deck_title(path: Path) -> str:
    return re.search(r"<title>(.*?)</title>", path.read_text(encoding="utf-8")).group(1)


INDEX = """<!DOCTYPE html><html><head><meta charset="utf-8">
<title>Slides: Dive into Deep Learning Compiler</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto}}</style></head>
<body><h1>Slides</h1><p>One deck per chapter, made from the book's sections.
Arrow keys or space move; Esc shows all slides; print for a handout.</p>
<ol>{items}</ol><p><a href="../index.html">Back to the book</a></p></body></html>
"""

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script>window.MathJax = {{tex: {{inlineMath: [["$", "$"]], displayMath: [["$$", "$$"]]}}}};
</script>
<script async src="{mathjax}"></script>
<style>
html,body{{margin:0;height:100%;background:#222;font-family:"Helvetica Neue",Arial,sans-serif}}
.slide{{display:none;box-sizing:border-box;width:100vw;height:100vh;padding:3vh 6vw;
  background:#fff;overflow:auto;font-size:2.6vh;line-height:1.4}}
.slide.current{{display:block}}
.slide h2{{color:#1a4c8b;font-size:4.2vh;margin:0 0 2vh;border-bottom:2px solid #ddd}}
.slide.title{{display:none;text-align:center;padding-top:30vh}}
.slide.title.current{{display:block}}
.slide.title h2{{font-size:6vh;border:none}}
.slide pre{{font-size:2.1vh;background:#f5f5f5;padding:1vh 1vw;overflow:auto;margin:1vh 0}}
.slide pre.output{{background:#fff;border:1px solid #ddd}}
.slide img{{max-width:80%;max-height:55vh;display:block;margin:1vh auto}}
.book{{color:#777}} ol{{text-align:left;display:inline-block}}
#counter{{position:fixed;right:1.5vw;bottom:1vh;color:#999;font-size:1.8vh}}
body.overview .slide{{display:inline-block;width:30vw;height:30vh;margin:.5vw;
  font-size:.8vh;vertical-align:top;cursor:pointer;overflow:hidden}}
body.overview .slide.title{{padding-top:5vh}}
body.overview #counter{{display:none}}
@media print{{.slide,.slide.title{{display:block;height:auto;min-height:100vh;
  page-break-after:always}} #counter{{display:none}}}}
{style}
</style></head>
<body>
{slides}
<div id="counter"></div>
<script>
var slides = document.querySelectorAll(".slide"), at = 0;
function show(n) {{
  at = Math.max(0, Math.min(slides.length - 1, n));
  slides.forEach(function (s, i) {{ s.classList.toggle("current", i === at); }});
  document.getElementById("counter").textContent = (at + 1) + " / " + slides.length;
  history.replaceState(null, "", "#" + (at + 1));
}}
function start() {{
  var h = location.hash.slice(1), el = h && document.getElementById(h);
  if (el) return show(Array.prototype.indexOf.call(slides, el));
  show((parseInt(h, 10) || 1) - 1);
}}
document.addEventListener("keydown", function (e) {{
  var k = e.key;
  if (k === "Escape") document.body.classList.toggle("overview");
  else if (["ArrowRight", "ArrowDown", "PageDown", " "].indexOf(k) >= 0) show(at + 1);
  else if (["ArrowLeft", "ArrowUp", "PageUp"].indexOf(k) >= 0) show(at - 1);
  else if (k === "Home") show(0);
  else if (k === "End") show(slides.length - 1);
  else return;
  e.preventDefault();
}});
slides.forEach(function (s, i) {{ s.addEventListener("click", function () {{
  if (document.body.classList.contains("overview")) {{
    document.body.classList.remove("overview"); show(i); }} }}); }});
start();
</script></body></html>
"""


if __name__ == "__main__":
    decks = build(sys.argv[1:] or None)
    print("\n".join(str(p.relative_to(ROOT)) for p in decks))
