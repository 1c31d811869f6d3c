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
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$tmp"/out "$tmp"/consoles/*; do
    [ -e "$f" ] && { echo "--- $f:"; cat "$f"; }
  done
  exit 1
}

ip link set lo up
gw=whonix-gateway
ws=whonix-workstation
for name in $gw $ws; do
  [ ! -e /run/uvm/$name ] || fail "/run/uvm/$name exists before the test (another run?)"
done
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
"$pair" "${common[@]}" --console-dir "$tmp/consoles" >"$tmp/out" 2>&1 &
pid=$!
ws_console=$tmp/consoles/$ws.console.log
for _ in $(seq 600); do
  grep -q 'UVM-PING-OK 10.152.152.10' "$ws_console" 2>/dev/null && break
  grep -q 'UVM-PING-FAIL' "$ws_console" 2>/dev/null && fail "the workstation could not ping the gateway"
  kill -0 "$pid" 2>/dev/null || fail "uvm-whonix-pair exited before the ping"
  sleep 0.1
done
grep -q 'UVM-PING-OK 10.152.152.10' "$ws_console" || fail "no UVM-PING-OK 10.152.152.10 within 60 s"
for name in $gw $ws; do
  [ -d /run/uvm/$name ] || fail "/run/uvm/$name missing while running"
done
# Running: the bridge, a tap per member NIC (gateway: uplink and internal;
# workstation: internal), and the NAT table.
[ -n "$(ip -o link show type bridge)" ] || fail "no bridge while running"
[ "$(ip -o link show type tun | wc -l)" -eq 3 ] || fail "expected 3 taps while running: $(ip -o link)"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || fail "uvm-whonix-pair exited with $status"
grep -q "\[$ws\] UVM-PING-OK 10.152.152.10" "$tmp/out" || fail "the console was not copied to stdout"
for name in $gw $ws; do
  grep -q UVM-GUEST-POWEROFF "$tmp/consoles/$name.console.log" || fail "$name did not see the power button"
  grep -q "$name: hypervisor-exited code 0" "$tmp/out" || fail "$name: no exit event"
  grep -q "$name: state-changed stopped" "$tmp/out" || fail "$name: no stopped state"
  [ ! -e /run/uvm/$name ] || fail "/run/uvm/$name left behind"
done
ws_stop=$(grep -n "$ws: state-changed stopped" "$tmp/out" | head -1 | cut -d: -f1)
gw_stopping=$(grep -n "$gw: state-changed stopping" "$tmp/out" | head -1 | cut -d: -f1)
[ "$ws_stop" -lt "$gw_stopping" ] || fail "the gateway was stopped before the workstation"

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
