#!/bin/bash
# The thin launcher examples/uvm-run as a user runs it: --dry-run prints the
# plan without starting anything; a real run boots the test guest, and
# Ctrl-C (SIGINT) stops it gracefully through the power button.
# With a cloud-hypervisor stand-in, the same run is repeated on it.
# Usage: check-example.sh UVM_RUN GUEST_DIR [CH_STANDIN]
set -euo pipefail
uvm_run=$1
guest=$2
ch=${3:-}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- output:"; cat "$tmp/out" 2>/dev/null; exit 1; }

common=(--name example-check --kernel "$guest/vmlinuz" --initramfs "$guest/initramfs.img"
        --cmdline "console=ttyS0 quiet" --accel tcg --memory 256M --ready UVM-GUEST-READY)

# 1. --dry-run: the plan, and nothing started or created.
"$uvm_run" "${common[@]}" --dry-run >"$tmp/out"
grep -q -- '-nodefaults' "$tmp/out" || fail "dry run printed no plan"
grep -q '^exec ' "$tmp/out" || fail "dry run plan has no exec line"
[ ! -e /run/uvm/example-check ] || fail "dry run created the runtime directory"

# 2. A real run, stopped with Ctrl-C once the guest is up.
run_and_interrupt() {
  "$uvm_run" "$@" >"$tmp/out" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    grep -q UVM-GUEST-READY "$tmp/out" && break
    kill -0 "$pid" 2>/dev/null || fail "uvm-run exited before the guest was up"
    sleep 0.1
  done
  grep -q UVM-GUEST-READY "$tmp/out" || fail "guest not up within 60 s"
  kill -INT "$pid"
  status=0
  wait "$pid" || status=$?
  pid=
  [ "$status" -eq 0 ] || fail "uvm-run exited with $status"
  grep -q UVM-GUEST-POWEROFF "$tmp/out" || fail "the guest did not see the power button"
  grep -q 'guest-shutdown' "$tmp/out" || fail "no guest-shutdown event"
  grep -q 'hypervisor-exited code 0' "$tmp/out" || fail "no exit event"
  grep -q 'state-changed stopped' "$tmp/out" || fail "no stopped state"
  grep -q 'guest ready: UVM-GUEST-READY' "$tmp/out" || fail "--ready did not report the guest"
  [ ! -e /run/uvm/example-check ] || fail "runtime directory left behind"
}
run_and_interrupt "${common[@]}"
if [ -n "$ch" ]; then
  # cloud-hypervisor needs KVM in real life; the stand-in only checks the
  # request, so leave the accelerator at auto for it.
  run_and_interrupt --name example-check --hypervisor cloud-hypervisor --hypervisor-path "$ch" \
    --kernel "$guest/vmlinuz" --initramfs "$guest/initramfs.img" --cmdline "console=ttyS0 quiet" \
    --memory 256M --ready UVM-GUEST-READY
fi
echo "ok: dry run, boot and Ctrl-C graceful stop on qemu${ch:+ and the cloud-hypervisor stand-in}"
