#!/bin/bash
# The Whonix-style pair example (examples/uvm-whonix-pair) as a user runs it:
# --dry-run prints both plans (the workstation's confined and without
# user-mode networking) and starts nothing; a real run boots both test
# guests under TCG, the confined workstation pings the gateway over the
# internal link, and Ctrl-C (SIGINT) stops both gracefully, workstation
# first, leaving nothing in /run/uvm.  Disk images (what real Whonix KVM
# images are) are checked as a dry run: firmware boot plans on qemu, refused
# on cloud-hypervisor.  The cloud-hypervisor run is check-whonix-example-ch.sh.
# Usage: check-whonix-example.sh PAIR_BINARY GUEST_DIR
set -euo pipefail
pair=$1
guest=$2
# shellcheck source-path=SCRIPTDIR source=whonix-example-lib.sh
. "$(dirname "$0")/whonix-example-lib.sh"
common=(--kernel "$guest/vmlinuz" --initramfs "$guest/initramfs.img"
        --cmdline "console=ttyS0 quiet" --tcg --memory 256 --ping)

# 1. --dry-run: two plans, nothing started or created.
"$pair" "${common[@]}" --dry-run >"$tmp/out"
[ "$(grep -c '^exec ' "$tmp/out")" -eq 2 ] || fail "dry run did not print two plans"
grep -q "^# ---- $gw\$" "$tmp/out" || fail "no gateway plan"
grep -q "^# ---- $ws\$" "$tmp/out" || fail "no workstation plan"
sed -n "/^# ---- $gw\$/,/^# ---- $ws\$/p" "$tmp/out" >"$tmp/gw-plan"
sed -n "/^# ---- $ws\$/,\$p" "$tmp/out" >"$tmp/ws-plan"
grep -q -- '-netdev user' "$tmp/gw-plan" || fail "the gateway has no uplink"
grep -q -- '-netdev dgram' "$tmp/gw-plan" || fail "the gateway has no internal link"
grep -q '^# confined:' "$tmp/ws-plan" || fail "the workstation's plan has no '# confined:' line"
! grep -q -- '-netdev user' "$tmp/ws-plan" || fail "the workstation has user-mode networking"
grep -q -- '-netdev dgram' "$tmp/ws-plan" || fail "the workstation has no internal link"
grep -q 'uvm.ping=10.152.152.10' "$tmp/ws-plan" || fail "--ping did not reach the workstation's command line"
for name in $gw $ws; do
  [ ! -e /run/uvm/$name ] || fail "dry run created /run/uvm/$name"
done

# 1b. --dry-run with disk images: no kernel, the disk is the firmware's
#     boot disk, the format follows the name or --disk-format.
: >"$tmp/Whonix-Gateway.qcow2"
: >"$tmp/Whonix-Workstation.img"
disks=(--gateway-disk "$tmp/Whonix-Gateway.qcow2" --workstation-disk "$tmp/Whonix-Workstation.img"
       --tcg --memory 256)
"$pair" "${disks[@]}" --dry-run >"$tmp/out"
[ "$(grep -c '^exec ' "$tmp/out")" -eq 2 ] || fail "disk dry run did not print two plans"
! grep -q -- '-kernel\|-initrd\|-append' "$tmp/out" || fail "a disk-booted guest has a kernel option"
sed -n "/^# ---- $gw\$/,/^# ---- $ws\$/p" "$tmp/out" >"$tmp/gw-plan"
sed -n "/^# ---- $ws\$/,\$p" "$tmp/out" >"$tmp/ws-plan"
# The image reaches qemu as an fd set labelled with its path: disk0's
# blockdev has the format, its fd set the path.
disk_is() {  # FORMAT IMAGE-NAME PLAN-FILE
  grep -q "driver=$1,node-name=disk0-be,.*file.filename=/dev/fdset/" "$3" &&
    grep -q -- "-add-fd fd=[0-9]*,set=[0-9]*,opaque=.*$2" "$3"
}
disk_is qcow2 Whonix-Gateway.qcow2 "$tmp/gw-plan" || fail "the gateway's .qcow2 disk is not qcow2"
disk_is raw Whonix-Workstation.img "$tmp/ws-plan" || fail "the workstation's .img disk is not raw"
for plan in "$tmp/gw-plan" "$tmp/ws-plan"; do
  grep -q -- '-device virtio-blk-pci,id=disk0,drive=disk0-be,bootindex=0' "$plan" ||
    fail "no boot disk (bootindex=0) in $(basename "$plan")"
done
grep -q -- '-netdev user' "$tmp/gw-plan" || fail "the disk-booted gateway has no uplink"
grep -q '^# confined:' "$tmp/ws-plan" || fail "the disk-booted workstation is not confined"
"$pair" "${disks[@]}" --disk-format raw --dry-run >"$tmp/out"
sed -n "/^# ---- $gw\$/,/^# ---- $ws\$/p" "$tmp/out" >"$tmp/gw-plan"
disk_is raw Whonix-Gateway.qcow2 "$tmp/gw-plan" || fail "--disk-format raw was not applied"
status=0
"$pair" "${disks[@]}" --hypervisor cloud-hypervisor --dry-run >"$tmp/out" 2>&1 || status=$?
[ "$status" -eq 2 ] && grep -q 'disk images are for qemu' "$tmp/out" ||
  fail "cloud-hypervisor with disk images was not refused (exit $status)"
status=0
"$pair" "${disks[@]}" --ping --dry-run >"$tmp/out" 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "--ping with a disk-booted workstation was not refused (exit $status)"
for name in $gw $ws; do
  [ ! -e /run/uvm/$name ] || fail "disk dry run created /run/uvm/$name"
done

# 1c. --uplink: the mode reaches the library (tap-nat: a library-made tap
#     with a NAT table); an unknown mode is a usage error.  (passt is left
#     out: whether it plans depends on the library, and the example only
#     passes the mode on and prints the library's error.)
"$pair" "${common[@]}" --uplink tap-nat --dry-run >"$tmp/out"
sed -n "/^# ---- $gw\$/,/^# ---- $ws\$/p" "$tmp/out" >"$tmp/gw-plan"
grep -q -- '-netdev tap,id=net0-be' "$tmp/gw-plan" && grep -q 'nftables table' "$tmp/gw-plan" ||
  fail "--uplink tap-nat did not give the gateway a tap with NAT"
! grep -q -- '-netdev user' "$tmp/out" || fail "--uplink tap-nat still has user-mode networking"
"$pair" "${common[@]}" --uplink user --dry-run >"$tmp/out"
grep -q -- '-netdev user' "$tmp/out" || fail "--uplink user did not give user-mode networking"
status=0
"$pair" "${common[@]}" --uplink bogus --dry-run >"$tmp/out" 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "--uplink bogus was not a usage error (exit $status)"

# 2. A real run: the workstation reaches the gateway, then Ctrl-C.
start_pair_until_ping 120
interrupt_pair
echo "ok: dry run (two plans, workstation confined, no user-mode net), disk-image dry run, ping over the internal link, Ctrl-C stops both"
