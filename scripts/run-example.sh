#!/bin/sh
# Sets up, builds the library and the test guest, and runs the main example,
# examples/uvm-whonix-pair: a Whonix-style gateway (uplink + internal link)
# and a confined workstation on the internal link only, both the test guest
# under TCG; the workstation pings the gateway (look for
# "[whonix-workstation] UVM-PING-OK 10.152.152.10"). Ctrl-C, or the end of
# --run-for, stops the workstation, then the gateway, gracefully.
# Usage: scripts/run-example.sh [uvm-whonix-pair options...]   e.g. --run-for 20
# (The thin launcher for a single VM: build/examples/uvm-run --help.)
set -eu
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build
ninja -C build tests/guest/vmlinuz tests/guest/initramfs.img >/dev/null
# Plain guests hang under this host's KVM; software emulation boots in ~2 s.
# cloud-hypervisor has no software emulation: --tcg is for qemu only.
tcg=--tcg
case " $* " in
*" --hypervisor cloud-hypervisor "* | *" --hypervisor=cloud-hypervisor "*) tcg= ;;
esac
# The console relay of the build tree (the library looks in libexecdir).
export UVM_CONSOLE_RELAY="$PWD/build/libexec/uvm-console-relay"
exec build/examples/uvm-whonix-pair --kernel build/tests/guest/vmlinuz \
  --initramfs build/tests/guest/initramfs.img --cmdline "console=ttyS0 quiet" \
  $tcg --memory 256 --ping "$@"
