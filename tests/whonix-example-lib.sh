# shellcheck shell=bash disable=SC2154  # $pair and common are the sourcing script's
# Sourced by check-whonix-example.sh (qemu) and check-whonix-example-ch.sh
# (the cloud-hypervisor stand-in), after `set -euo pipefail` and with $pair
# set: the scratch directory, fail(), the two VM names, and the real run
# that both make (start, the workstation's ping, Ctrl-C, a graceful stop).

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

gw=whonix-gateway
ws=whonix-workstation
for name in $gw $ws; do
  [ ! -e /run/uvm/"$name" ] || fail "/run/uvm/$name exists before the test (another run?)"
done

# start_pair_until_ping SECONDS: starts "$pair" "${common[@]}" in the
# background (consoles in $tmp/consoles, output in $tmp/out, its PID in
# $pid) and waits up to SECONDS for the workstation to ping the gateway;
# both runtime directories must then exist.
start_pair_until_ping() {
  local seconds=$1
  "$pair" "${common[@]}" --console-dir "$tmp/consoles" >"$tmp/out" 2>&1 &
  pid=$!
  ws_console=$tmp/consoles/$ws.console.log
  for _ in $(seq $((seconds * 10))); do
    grep -q 'UVM-PING-OK 10.152.152.10' "$ws_console" 2>/dev/null && break
    grep -q 'UVM-PING-FAIL' "$ws_console" 2>/dev/null && fail "the workstation could not ping the gateway"
    kill -0 "$pid" 2>/dev/null || fail "uvm-whonix-pair exited before the ping"
    sleep 0.1
  done
  grep -q 'UVM-PING-OK 10.152.152.10' "$ws_console" || fail "no UVM-PING-OK 10.152.152.10 within $seconds s"
  for name in $gw $ws; do
    [ -d /run/uvm/"$name" ] || fail "/run/uvm/$name missing while running"
  done
}

# interrupt_pair: Ctrl-C (SIGINT) to the pair started above, which must
# exit 0 having copied the consoles to stdout and stopped both guests
# gracefully, workstation first, leaving nothing in /run/uvm.
interrupt_pair() {
  local status=0 ws_stop gw_stopping
  kill -INT "$pid"
  wait "$pid" || status=$?
  pid=
  [ "$status" -eq 0 ] || fail "uvm-whonix-pair exited with $status"
  grep -q "\[$ws\] UVM-PING-OK 10.152.152.10" "$tmp/out" || fail "the console was not copied to stdout"
  for name in $gw $ws; do
    grep -q UVM-GUEST-POWEROFF "$tmp/consoles/$name.console.log" || fail "$name did not see the power button"
    grep -q "$name: hypervisor-exited code 0" "$tmp/out" || fail "$name: no exit event"
    grep -q "$name: state-changed stopped" "$tmp/out" || fail "$name: no stopped state"
    [ ! -e /run/uvm/"$name" ] || fail "/run/uvm/$name left behind"
  done
  # Workstation first.
  ws_stop=$(grep -n "$ws: state-changed stopped" "$tmp/out" | head -1 | cut -d: -f1)
  gw_stopping=$(grep -n "$gw: state-changed stopping" "$tmp/out" | head -1 | cut -d: -f1)
  [ "$ws_stop" -lt "$gw_stopping" ] || fail "the gateway was stopped before the workstation"
}
