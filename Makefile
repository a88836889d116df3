# The book's two commands (see README.md):
#   make book   build the website into _build/html and the notebook zip
#   make test   unit tests of d2lcc, then every section executed as a notebook
# Both set up ./.venv first. Other targets: section, serve, screenshots, clean,
#   pdf (the book as a PDF) and slides (the chapters' slide decks; make book builds them too).

VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
PYTEST := $(BIN)/python -m pytest

.PHONY: book test setup unit section serve screenshots clean pdf slides

setup:
	@VENV=$(VENV) bash tools/setup.sh
	@VENV=$(VENV) bash tools/setup_aarch64.sh

# Executes only the sections whose markdown or d2lcc changed, then lets d2lbook
# render the already executed notebooks (it finds none outdated).
book: setup
	$(PYTEST) tests/test_notebooks.py --reuse-executed -q
	$(BIN)/python tools/build_site.py

test: setup
	$(PYTEST) tests --ignore=tests/test_notebooks.py --ignore=tests/test_site.py -n 2
	$(PYTEST) tests/test_notebooks.py tests/test_site.py

unit: setup
	$(PYTEST) tests --ignore=tests/test_notebooks.py --ignore=tests/test_site.py -n 2

# make section S=chapter_getting_started/install.md
section: setup
	$(PYTEST) tests/test_notebooks.py --section $(S)

# The book as one PDF, _build/pdf/d2l-compiler.pdf, with d2lbook's LaTeX builder.
# tools/setup_pdf.sh installs TeX Live (xelatex), latexmk, xindy, rsvg-convert and
# the fonts from apt (as root or with sudo). Not part of make test (slow).
pdf: setup
	bash tools/setup_pdf.sh
	$(PYTEST) tests/test_notebooks.py --reuse-executed -q
	$(BIN)/d2lbook build pdf
	@if [ -d _build/html ]; then cp _build/pdf/d2l-compiler.pdf _build/html/; fi
	@echo "Built _build/pdf/d2l-compiler.pdf"

# The chapters' slide decks (_build/html/slides) from the executed sections.
slides: setup
	$(PYTEST) tests/test_notebooks.py --reuse-executed -q
	$(BIN)/python tools/build_slides.py

serve:
	@echo "Serving _build/html at http://localhost:8000 (Ctrl-C stops)"
	$(BIN)/python -m http.server 8000 --directory _build/html

screenshots:
	$(BIN)/python tools/screenshot.py

clean:
	rm -rf _build
