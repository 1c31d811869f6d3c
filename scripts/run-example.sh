#!/bin/sh
# Sets up, builds the library and the test guest, and boots the guest with
# the thin launcher examples/uvm-run (Ctrl-C stops it gracefully).
# Usage: scripts/run-example.sh [uvm-run options...]   e.g. --run-for 5
set -eu
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
ninja -C build tests/guest/vmlinuz tests/guest/initramfs.img >/dev/null
# Plain guests hang under this host's KVM; software emulation boots in ~2 s.
exec build/examples/uvm-run --kernel build/tests/guest/vmlinuz --initramfs build/tests/guest/initramfs.img \
  --cmdline "console=ttyS0 quiet" --accel tcg --memory 256M --print-plan "$@"
