#!/usr/bin/env bash
# Install the LaTeX toolchain that `make pdf` (d2lbook build pdf) needs, from
# the system package manager. Debian/Ubuntu (apt-get, as root or with sudo).
# Re-running is cheap: it installs only what is missing.
#
# What each package is for:
#   texlive-xetex             xelatex: d2lbook's LaTeX engine (UTF-8 text)
#   texlive-latex-extra       titlesec, natbib and the other packages of the preamble
#   texlive-fonts-recommended, texlive-fonts-extra-links, fonts-freefont-otf
#                             FreeSerif/FreeSans/FreeMono, d2lbook's default fonts
#   texlive-plain-generic, texlive-science
#                             packages Sphinx's LaTeX writer and the math use
#   latexmk                   runs xelatex and bibtex until references settle
#   xindy                     the index processor Sphinx uses with xelatex
#   librsvg2-bin              rsvg-convert: the book's SVG figures to PDF
#   lmodern, fonts-dejavu     fallback fonts for symbols in code and outputs
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have xelatex || need+=(texlive-xetex texlive-latex-extra texlive-fonts-recommended
                       texlive-plain-generic texlive-science lmodern)
have latexmk || need+=(latexmk)
have xindy || need+=(xindy)
have rsvg-convert || need+=(librsvg2-bin)
fc-list 2>/dev/null | grep -q FreeSerif || need+=(fonts-freefont-otf)
fc-list 2>/dev/null | grep -q DejaVuSansMono || need+=(fonts-dejavu-core)

if [ ${#need[@]} -eq 0 ]; then
    echo "setup_pdf: the LaTeX toolchain is installed ($(xelatex --version | head -n 1))"
    exit 0
fi
if ! have apt-get; then
    echo "setup_pdf: no apt-get here. Install a TeX Live with xelatex, latexmk, xindy," >&2
    echo "           rsvg-convert (librsvg) and the FreeFont fonts, then run 'make pdf'." >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    have sudo || { echo "setup_pdf: run as root or install sudo" >&2; exit 1; }
    SUDO=sudo
fi
echo "setup_pdf: installing ${need[*]} (about 1 GB; a few minutes)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
echo "setup_pdf: ready ($(xelatex --version | head -n 1))"
