#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Python examples (examples/uvm-run.py, examples/uvm-whonix-pair.py) as a
# user runs them, on the in-tree `uvm` package (PYDIR, put on PYTHONPATH):
#
#  1. uvm-run.py --dry-run prints the plan and starts nothing; a bad
#     definition is the library's message and exit 1, not a traceback.
#  2. uvm-run.py --run-for boots the test guest under TCG, copies its console,
#     stops it through the power button and exits 0, leaving nothing in
#     /run/uvm; Ctrl-C (SIGINT) once the guest is up does the same.
#  3. uvm-whonix-pair.py --dry-run prints both plans, the workstation's
#     confined; with --ping --run-for 20 the confined workstation pings the
#     gateway, both stop gracefully (workstation first), exit 0, nothing left.
#
# Usage: check-python-examples.sh PYDIR EXAMPLES_DIR GUEST_DIR
set -euo pipefail
pydir=$1
examples=$2
guest=$3
export PYTHONPATH=$pydir${PYTHONPATH:+:$PYTHONPATH}
# Warnings (a ResourceWarning for a VM dropped while running) are errors.
export PYTHONWARNINGS=error
run=$examples/uvm-run.py
pair=$examples/uvm-whonix-pair.py
name=pyexample-check
gw=whonix-gateway
ws=whonix-workstation

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
nothing_left() {
  for n in "$@"; do
    [ ! -e /run/uvm/"$n" ] || fail "/run/uvm/$n left behind"
  done
}
no_traceback() { ! grep -q '^Traceback' "$tmp/out" || fail "a Python traceback"; }

for n in $name $gw $ws; do
  [ ! -e /run/uvm/"$n" ] || fail "/run/uvm/$n exists before the test (another run?)"
done
{ [ -x "$run" ] && [ -x "$pair" ]; } || fail "the Python examples are not executable"

common=(--name "$name" --kernel "$guest/vmlinuz" --initramfs "$guest/initramfs.img"
        --cmdline "console=ttyS0 quiet" --accel tcg --memory 256M)

# ---- 1. uvm-run.py: dry run, bad definition ---------------------------------
"$run" "${common[@]}" --dry-run >"$tmp/out" 2>&1 || fail "dry run exited $?"
grep -q -- '-nodefaults' "$tmp/out" || fail "dry run printed no plan"
grep -q '^exec ' "$tmp/out" || fail "dry run plan has no exec line"
nothing_left $name
status=0
"$run" "${common[@]}" --cpus 0 --dry-run >"$tmp/out" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "--cpus 0 exited $status, not 1"
grep -q "^uvm-run: .*vcpus" "$tmp/out" || fail "--cpus 0: no message naming the field"
no_traceback

# ---- 2. uvm-run.py: real boots ----------------------------------------------
# check_stopped: the run in $tmp/out saw the guest up, the power button, the
# events of a graceful stop, and left nothing behind.
check_stopped() {
  grep -q UVM-GUEST-READY "$tmp/out" || fail "no UVM-GUEST-READY on the console copy"
  grep -q UVM-GUEST-POWEROFF "$tmp/out" || fail "the guest did not see the power button"
  grep -q "$name: guest-shutdown" "$tmp/out" || fail "no guest-shutdown event"
  grep -q "$name: hypervisor-exited code 0" "$tmp/out" || fail "no exit event"
  grep -q "$name: state-changed stopped" "$tmp/out" || fail "no stopped state"
  no_traceback
  nothing_left $name
}
status=0
timeout 120 "$run" "${common[@]}" --run-for 20 >"$tmp/out" 2>&1 || status=$?
[ "$status" -eq 0 ] || fail "uvm-run.py --run-for 20 exited with $status"
check_stopped

"$run" "${common[@]}" >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 600); do
  grep -q UVM-GUEST-READY "$tmp/out" && break
  kill -0 "$pid" 2>/dev/null || fail "uvm-run.py exited before the guest was up"
  sleep 0.1
done
grep -q UVM-GUEST-READY "$tmp/out" || fail "guest not up within 60 s"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || fail "uvm-run.py exited with $status after Ctrl-C"
check_stopped

# ---- 3. uvm-whonix-pair.py ---------------------------------------------------
common=(--kernel "$guest/vmlinuz" --initramfs "$guest/initramfs.img"
        --cmdline "console=ttyS0 quiet" --tcg --memory 256 --ping)
"$pair" "${common[@]}" --dry-run >"$tmp/out" 2>&1 || fail "pair dry run exited $?"
[ "$(grep -c '^exec ' "$tmp/out")" -eq 2 ] || fail "dry run did not print two plans"
sed -n "/^# ---- $ws\$/,\$p" "$tmp/out" >"$tmp/ws-plan"
[ -s "$tmp/ws-plan" ] || fail "no workstation plan"
grep -q '^# confined:' "$tmp/ws-plan" || fail "the workstation is not confined"
! grep -q -- '-netdev user' "$tmp/ws-plan" || fail "the workstation has user-mode networking"
grep -q 'uvm\.ping=10\.152\.152\.10\b' "$tmp/ws-plan" || fail "--ping did not reach the workstation"
grep -q 'uvm.ip=10.152.152.11/18' "$tmp/ws-plan" || fail "the workstation has no Whonix address"
"$pair" "${common[@]}" --no-confine --dry-run >"$tmp/out" 2>&1 || fail "--no-confine dry run exited $?"
! grep -q '^# confined:' "$tmp/out" || fail "--no-confine: a VM is still confined"
status=0
"$pair" "${common[@]}" --uplink bogus --dry-run >"$tmp/out" 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "--uplink bogus was not a usage error (exit $status)"
nothing_left $gw $ws

status=0
timeout 180 "$pair" "${common[@]}" --console-dir "$tmp/consoles" --run-for 20 \
  >"$tmp/out" 2>&1 || status=$?
[ "$status" -eq 0 ] || fail "uvm-whonix-pair.py --run-for 20 exited with $status"
grep -q "UVM-PING-OK 10.152.152.10" "$tmp/consoles/$ws.console.log" ||
  fail "the workstation did not ping the gateway within 20 s"
grep -q "^\[$ws\] UVM-PING-OK 10.152.152.10" "$tmp/out" || fail "the console was not copied to stdout"
for n in $gw $ws; do
  grep -q UVM-GUEST-POWEROFF "$tmp/consoles/$n.console.log" || fail "$n did not see the power button"
  grep -q "$n: hypervisor-exited code 0" "$tmp/out" || fail "$n: no exit event"
  grep -q "$n: state-changed stopped" "$tmp/out" || fail "$n: no stopped state"
done
ws_stop=$(grep -n "$ws: state-changed stopped" "$tmp/out" | head -1 | cut -d: -f1)
gw_stopping=$(grep -n "$gw: state-changed stopping" "$tmp/out" | head -1 | cut -d: -f1)
[ "$ws_stop" -lt "$gw_stopping" ] || fail "the gateway was stopped before the workstation"
no_traceback
nothing_left $gw $ws
echo "ok: uvm-run.py (dry run, bad definition, --run-for, Ctrl-C) and uvm-whonix-pair.py (dry run, ping, --run-for) on the in-tree package"
