#!/usr/bin/env bash
# Create ./.venv (if needed) and install d2lcc with everything the book and the
# tests need. Re-running is cheap: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.d2lcc-installed"

if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] < (3, 14)))'; then
    echo "setup: $PYTHON is $("$PYTHON" --version 2>&1); the book needs Python 3.10-3.13 (set PYTHON=...)" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    echo "setup: installing d2lcc[book,test] into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip "setuptools<82" wheel
    "$VENV/bin/python" -m pip install --quiet -e ".[book,test]"
    touch "$STAMP"
fi

# pandoc: d2lbook converts notebooks to reStructuredText with it.
if ! command -v pandoc >/dev/null 2>&1 && [ ! -x "$VENV/bin/pandoc" ]; then
    echo "setup: pandoc is not on PATH; trying the system package manager, then a wheel that ships it"
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        (apt-get install -y -q pandoc >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q pandoc >/dev/null 2>&1; }) || true
    fi
    if ! command -v pandoc >/dev/null 2>&1; then
        "$VENV/bin/python" -m pip install --quiet "pypandoc-binary>=1.13,<2" || true
        bin=$("$VENV/bin/python" -c 'import pypandoc, os; print(os.path.join(os.path.dirname(pypandoc.__file__), "files", "pandoc"))' 2>/dev/null || true)
        if [ -n "$bin" ] && [ -x "$bin" ]; then
            ln -sf "$bin" "$VENV/bin/pandoc"
        else
            echo "setup: could not install pandoc. Install it yourself (https://pandoc.org/installing.html," >&2
            echo "       e.g. 'apt-get install pandoc' or 'brew install pandoc') and run this again." >&2
            exit 1
        fi
    fi
fi
echo "setup: ready ($("$VENV/bin/python" -c 'import tvm, tvm_ffi; print("apache-tvm", tvm.__version__, "/ apache-tvm-ffi", tvm_ffi.__version__)'))"
