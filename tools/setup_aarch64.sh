#!/usr/bin/env bash
# Set up what the Graviton2 section (chapter_hardware/graviton.md) needs to run
# AArch64 code on a machine that is not AArch64:
#   * qemu-aarch64-static (user-mode emulation) and the AArch64 cross compiler
#     (gcc/g++-aarch64-linux-gnu), from the system's apt when running as root;
#   * Debian's arm64 Python, unpacked into $CACHE/sysroot (no dpkg install);
#   * the aarch64 wheels of apache-tvm, apache-tvm-ffi, numpy, ml_dtypes and
#     typing_extensions (the versions of the host's venv), unpacked into $CACHE/site.
# $CACHE is $D2LCC_CACHE/aarch64 (default ~/.cache/d2lcc/aarch64).
#
# Idempotent: once $CACHE/READY exists (and qemu and the cross compiler are on
# PATH) it exits at once. It never fails the caller: when something cannot be
# installed it writes the reason to $CACHE/UNAVAILABLE, prints it and exits 0;
# d2lcc.aarch64.availability() reads that file and the book prints the reason.
# On an AArch64 machine there is nothing to set up (the code runs natively).
set -uo pipefail
cd "$(dirname "$0")/.."

CACHE=${D2LCC_CACHE:-$HOME/.cache/d2lcc}/aarch64
VENV=${VENV:-.venv}
HOST_PY=${HOST_PY:-$VENV/bin/python}
[ -x "$HOST_PY" ] || HOST_PY=python3
mkdir -p "$CACHE"

say() { echo "setup_aarch64: $*"; }
unavailable() {  # reason...
    echo "$*" > "$CACHE/UNAVAILABLE"
    rm -f "$CACHE/READY"
    say "UNAVAILABLE: $*"
    say "the Graviton2 section will compile and inspect, and skip running (it says why)"
    exit 0
}

if [ "$(uname -m)" = aarch64 ]; then
    say "this machine is AArch64: its code runs natively, nothing to set up"
    rm -f "$CACHE/UNAVAILABLE"
    exit 0
fi

# Only one setup at a time (make test may start several workers).
exec 9> "$CACHE/.lock"
command -v flock > /dev/null && flock 9

version() {  # the host venv's version of a distribution, or the fallback given
    "$HOST_PY" -c "from importlib import metadata as m; print(m.version('$1'))" \
        2> /dev/null || echo "$2"
}
WHEELS="apache-tvm==$(version apache-tvm 0.27.0.post1)
apache-tvm-ffi==$(version apache-tvm-ffi 0.1.14.post1)
numpy==$(version numpy 2.4.6)
ml_dtypes==$(version ml_dtypes 0.5.4)
typing_extensions==$(version typing_extensions 4.15.0)"
WANT=$(echo "$WHEELS" | tr '\n' ' ')

have_tools() {
    command -v qemu-aarch64-static > /dev/null &&
        command -v aarch64-linux-gnu-g++ > /dev/null
}
if [ -f "$CACHE/READY" ] && grep -qxF "wheels: $WANT" "$CACHE/READY" &&
        have_tools; then
    say "ready (cached in $CACHE)"
    exit 0
fi
rm -f "$CACHE/READY" "$CACHE/UNAVAILABLE"

# 1. Emulator and cross compiler from the system's package manager.
ROOT=0; [ "$(id -u)" = 0 ] && ROOT=1
APT="apt-get -o DPkg::Lock::Timeout=900"  # wait while another apt-get runs
if ! have_tools; then
    if [ $ROOT = 1 ] && command -v apt-get > /dev/null; then
        say "installing qemu-user-static and the AArch64 cross compiler with apt-get"
        pkgs="qemu-user-static gcc-aarch64-linux-gnu g++-aarch64-linux-gnu"
        # shellcheck disable=SC2086
        $APT install -y -q --no-install-recommends $pkgs > /dev/null 2>&1 || {
            $APT update -q > /dev/null 2>&1 &&
                $APT install -y -q --no-install-recommends $pkgs > /dev/null 2>&1; }
    fi
    have_tools || unavailable "qemu-aarch64-static or aarch64-linux-gnu-g++ is" \
        "missing and could not be installed (needs root and apt-get; on Debian:" \
        "apt-get install qemu-user-static gcc-aarch64-linux-gnu g++-aarch64-linux-gnu)"
fi

# 2. Debian's arm64 Python and the libraries it and libtvm need, unpacked.
if ! dpkg --print-foreign-architectures 2> /dev/null | grep -qx arm64; then
    [ $ROOT = 1 ] || unavailable "apt does not know arm64 packages and adding the" \
        "architecture needs root (dpkg --add-architecture arm64; apt-get update)"
    say "adding the arm64 architecture to apt (for downloading, not installing)"
    dpkg --add-architecture arm64
    if ! $APT update -q > /dev/null 2>&1; then
        # e.g. a mirror without arm64 packages: leave apt as we found it
        dpkg --remove-architecture arm64
        $APT update -q > /dev/null 2>&1
        unavailable "apt-get update failed after adding the arm64 architecture" \
            "(does this system's package mirror carry arm64 packages?)"
    fi
fi
PYVER=$(apt-cache depends python3-minimal:arm64 2> /dev/null |
        grep -o 'python3\.[0-9]*-minimal' | head -1 | sed 's/-minimal//')
[ -n "$PYVER" ] || unavailable "apt knows no arm64 python3-minimal package"
DEBS="$CACHE/debs"
mkdir -p "$DEBS"
required="libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 $PYVER-minimal lib$PYVER-minimal
lib$PYVER-stdlib"
optional="libffi8 libbz2-1.0 liblzma5 libuuid1 libmpdec3 libssl3 libssl3t64"
say "downloading Debian's arm64 $PYVER into $DEBS"
for p in $required; do
    ls "$DEBS/${p}_"*_arm64.deb > /dev/null 2>&1 && continue
    (cd "$DEBS" && apt-get download -q "$p:arm64" > /dev/null 2>&1) ||
        unavailable "apt-get download $p:arm64 failed"
done
for p in $optional; do
    ls "$DEBS/${p}_"*_arm64.deb > /dev/null 2>&1 && continue
    (cd "$DEBS" && apt-get download -q "$p:arm64" > /dev/null 2>&1) || true
done
rm -rf "$CACHE/sysroot"
for deb in "$DEBS"/*.deb; do
    dpkg-deb -x "$deb" "$CACHE/sysroot" || unavailable "dpkg-deb -x $deb failed"
done
[ -x "$CACHE/sysroot/usr/bin/$PYVER" ] || unavailable "no $PYVER in the arm64 packages"

# 3. The aarch64 wheels, for the emulated Python's version.
TAG=$(echo "$PYVER" | sed 's/python3\./3/')  # python3.11 -> 311
say "downloading the aarch64 wheels (cp$TAG): $WANT"
mkdir -p "$CACHE/wheels"
# shellcheck disable=SC2086
"$HOST_PY" -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --python-version "$TAG" --implementation cp \
    -d "$CACHE/wheels" $WANT || unavailable "pip download of the aarch64 wheels failed"
rm -rf "$CACHE/site"
mkdir -p "$CACHE/site"
for whl in "$CACHE"/wheels/*.whl; do
    "$HOST_PY" -m zipfile -e "$whl" "$CACHE/site" || unavailable "unzipping $whl failed"
done
rm -rf "$CACHE/wheels"  # unpacked; READY records the versions

# 4. Check: the emulated Python imports what d2lcc.aarch64's runner uses.
say "checking that the emulated Python imports numpy and tvm_ffi (a few seconds)"
probe='import platform, numpy, tvm_ffi; print(platform.machine(), numpy.__version__)'
check=$(QEMU_LD_PREFIX="$CACHE/sysroot" QEMU_CPU=neoverse-n1 \
        PYTHONPATH="$CACHE/site" PYTHONNOUSERSITE=1 timeout 300 \
        qemu-aarch64-static "$CACHE/sysroot/usr/bin/$PYVER" -c "$probe" 2>&1) ||
    unavailable "the emulated Python failed to import numpy and tvm_ffi: $check"
[ -f "$CACHE/site/tvm/lib/libtvm_runtime.so" ] ||
    unavailable "the apache-tvm wheel has no tvm/lib/libtvm_runtime.so"
{
    echo "python: usr/bin/$PYVER"
    echo "wheels: $WANT"
    echo "check: $check"
} > "$CACHE/READY"
say "ready: $check, cached in $CACHE ($(du -sh "$CACHE" | cut -f1))"
