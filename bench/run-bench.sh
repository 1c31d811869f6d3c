#!/bin/bash
# Run libuvm's launch benchmark: the one documented command.
#
# Usage: bench/run-bench.sh [bench-launch options]
#   e.g. bench/run-bench.sh                 # 20 start rounds, 200 round trips
#        bench/run-bench.sh --rounds 50
#        bench/run-bench.sh --smoke         # CI: 1 round, 5 round trips
#        bench/run-bench.sh --help          # all options of bench-launch
#
# It configures and builds the project (meson + ninja) in the build
# directory if needed, builds the test guest there with
# tests/guest/build-guest.sh (cached after the first time), and runs
# bench-launch with the guest's paths; every argument is passed through.
# The result is a Markdown table on stdout; progress goes to stderr.
#
# Environment:
#   UVM_BUILD_DIR        build directory (default: build/ in the source tree)
#   UVM_BENCH_KERNEL     use this kernel and UVM_BENCH_INITRAMFS instead of
#   UVM_BENCH_INITRAMFS  building the test guest (both must be set)
#
# Needs what building libuvm needs (meson, ninja, a C compiler, GLib and
# json-glib headers), qemu-system-x86, and for the guest busybox-static and
# cpio (see tests/guest/README.md).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=${UVM_BUILD_DIR:-$srcdir/build}

command -v meson >/dev/null || die "meson not found (apt-get install meson ninja-build)"
command -v ninja >/dev/null || die "ninja not found (apt-get install ninja-build)"

# ---- build ------------------------------------------------------------------
if [ ! -f "$builddir/build.ninja" ]; then
	note "configuring $builddir"
	meson setup "$builddir" "$srcdir" -Dbench=true >&2
elif ! meson introspect --buildoptions "$builddir" 2>/dev/null |
	python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; sys.exit(0 if o.get("bench", True) else 1)' 2>/dev/null; then
	note "enabling -Dbench=true in $builddir"
	meson configure "$builddir" -Dbench=true >&2
fi
ninja -C "$builddir" bench/bench-launch >&2
bench=$builddir/bench/bench-launch
[ -x "$bench" ] || die "$bench was not built"

# ---- guest ------------------------------------------------------------------
if [ -n "${UVM_BENCH_KERNEL:-}" ] || [ -n "${UVM_BENCH_INITRAMFS:-}" ]; then
	[ -n "${UVM_BENCH_KERNEL:-}" ] && [ -n "${UVM_BENCH_INITRAMFS:-}" ] ||
		die "set both UVM_BENCH_KERNEL and UVM_BENCH_INITRAMFS, or neither"
	kernel=$UVM_BENCH_KERNEL
	initramfs=$UVM_BENCH_INITRAMFS
else
	guestdir=$builddir/tests/guest
	note "building the test guest in $guestdir (cached)"
	ninja -C "$builddir" tests/guest/vmlinuz tests/guest/initramfs.img >&2
	kernel=$guestdir/vmlinuz
	initramfs=$guestdir/initramfs.img
fi

# ---- run --------------------------------------------------------------------
exec "$bench" --kernel "$kernel" --initramfs "$initramfs" "$@"
