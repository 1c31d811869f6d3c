#!/bin/sh
# Sets up, builds and runs the whole test suite (real qemu, real guest).
# Usage: scripts/run-tests.sh [BUILDDIR] [meson test args...]
set -eu
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
builddir=${1:-build}
[ $# -gt 0 ] && shift
[ -f "$builddir/build.ninja" ] || meson setup "$builddir"
ninja -C "$builddir"
meson test -C "$builddir" --print-errorlogs "$@"
