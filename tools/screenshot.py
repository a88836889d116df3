"""Look at the built site as a reader would: headless Chromium screenshots of a few pages.

Serves ``_build/html`` on a loopback port, opens each page in headless
Chromium (with no network besides that port) and writes PNGs to
``_build/screenshots``. By default it shoots the index, the installation
section and the first page that has math, so navigation, code cells with
outputs, rendered math and the Colab button can be checked by eye.

    python tools/screenshot.py [page.html ...]
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,1600",
    "--virtual-time-budget=8000",  # let MathJax and the theme's scripts finish
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("screenshot: no Chromium found (Debian: apt-get install chromium)")


def first_page_with_math() -> str | None:
    for page in sorted(HTML.rglob("*.html")):
        if 'class="math' in page.read_text(encoding="utf-8", errors="replace"):
            return page.relative_to(HTML).as_posix()
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per file is noise here
        pass


def shoot(pages: list[str]) -> list[Path]:
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    OUT.mkdir(parents=True, exist_ok=True)
    shots = []
    try:
        for page in pages:
            png = OUT / (page.replace("/", "_").replace(".html", ".png"))
            with tempfile.TemporaryDirectory() as profile:
                subprocess.run(
                    [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                     f"http://127.0.0.1:{server.server_port}/{page}"],
                    check=True, capture_output=True, timeout=120,
                )
            shots.append(png)
            print(png.relative_to(ROOT))
    finally:
        server.shutdown()
    return shots


def main() -> None:
    if not (HTML / "index.html").exists():
        sys.exit("screenshot: build the site first (make book)")
    pages = sys.argv[1:] or ["index.html", "chapter_getting_started/install.html"]
    if not sys.argv[1:] and (math := first_page_with_math()):
        pages.append(math)
    shoot(pages)


if __name__ == "__main__":
    main()
