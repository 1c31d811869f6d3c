#!/bin/bash
# The Whonix-style pair example (examples/uvm-whonix-pair) on the
# cloud-hypervisor stand-in (tests/ch-standin, first in PATH), as root in a
# private network and PID namespace: the library makes the internal network
# a bridge of taps and the gateway's uplink a tap with NAT (the defaults on
# cloud-hypervisor); the confined workstation pings the gateway over the
# bridge; Ctrl-C stops both (exit 0); then nothing is left: no link in the
# namespace but lo, no nftables table, no runtime directory in /run/uvm, no
# process in the PID namespace but this script.
# Usage: check-whonix-example-ch.sh PAIR_BINARY GUEST_DIR STANDIN_DIR
set -euo pipefail

if [ "${1:-}" != --inner ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (CAP_NET_ADMIN for taps, bridge and NAT)"; exit 77; }
  command -v unshare >/dev/null || { echo "SKIP: unshare (util-linux) is not installed"; exit 77; }
  # --kill-child: nothing of ours outlives the namespace, even on failure.
  exec unshare --net --pid --fork --mount-proc --kill-child "$0" --inner "$@"
fi
shift
pair=$1
guest=$2
standin_dir=$3
export PATH=$standin_dir:$PATH
# shellcheck source-path=SCRIPTDIR source=whonix-example-lib.sh
. "$(dirname "$0")/whonix-example-lib.sh"
ip link set lo up
[ "$(command -v cloud-hypervisor)" = "$standin_dir/cloud-hypervisor" ] ||
  fail "the stand-in is not first in PATH"
# cloud-hypervisor needs KVM in real life; the stand-in simulates the guest,
# so no --tcg (the library refuses TCG on cloud-hypervisor).
common=(--hypervisor cloud-hypervisor --kernel "$guest/vmlinuz" --initramfs "$guest/initramfs.img"
        --cmdline "console=ttyS0 quiet" --memory 256 --ping)

# 1. --dry-run: a bridge for the internal network, a tap with NAT for the
#    uplink, nothing created.
"$pair" "${common[@]}" --dry-run >"$tmp/out"
[ "$(grep -c '^exec cloud-hypervisor' "$tmp/out")" -eq 2 ] || fail "dry run did not print two cloud-hypervisor plans"
sed -n "/^# ---- $gw\$/,/^# ---- $ws\$/p" "$tmp/out" >"$tmp/gw-plan"
sed -n "/^# ---- $ws\$/,\$p" "$tmp/out" >"$tmp/ws-plan"
grep -q "of the uplink 'whonix-uplink'" "$tmp/gw-plan" || fail "the gateway's uplink is not a library-made tap"
grep -q "nftables table" "$tmp/gw-plan" || fail "the gateway's uplink has no NAT table"
grep -q "on bridge '.*' of the isolated network 'whonix-internal'" "$tmp/gw-plan" || fail "the gateway is not on the internal bridge"
grep -q "on bridge '.*' of the isolated network 'whonix-internal'.*isolated port" "$tmp/ws-plan" ||
  fail "the workstation is not on an isolated port of the internal bridge"
grep -q '^# confined:' "$tmp/ws-plan" || fail "the workstation's plan has no '# confined:' line"
! grep -q 'whonix-uplink' "$tmp/ws-plan" || fail "the workstation has the uplink"
[ "$(ip -o link | wc -l)" -eq 1 ] || fail "dry run created links: $(ip -o link)"

# 2. A real run: the workstation reaches the gateway over the bridge, then Ctrl-C.
start_pair_until_ping 60
# Running: the bridge, a tap per member NIC (gateway: uplink and internal;
# workstation: internal), and the NAT table.
[ -n "$(ip -o link show type bridge)" ] || fail "no bridge while running"
[ "$(ip -o link show type tun | wc -l)" -eq 3 ] || fail "expected 3 taps while running: $(ip -o link)"
interrupt_pair

# Nothing left in the namespaces.
links=$(ip -o link | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || fail "links left in the namespace: $links"
if command -v nft >/dev/null; then
  [ -z "$(nft list tables)" ] || fail "nftables tables left: $(nft list tables)"
fi
# (ps runs as a direct child, not in a subshell that would list itself.)
ps -e -o pid=,comm= >"$tmp/ps"
others=$(awk -v self=$$ '$1 != self && $2 != "ps"' "$tmp/ps")
[ -z "$others" ] || fail "processes left in the PID namespace: $others"
echo "ok: cloud-hypervisor stand-in: dry run (bridge, tap+NAT uplink, workstation confined), ping over the bridge, Ctrl-C stops both, nothing left"
