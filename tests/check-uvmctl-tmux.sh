#!/bin/sh
# uvmctl in a real terminal, as a user types it: in a tmux session (a
# server of its own, -L) `uvmctl run --detach`, `uvmctl list` (the VM is
# listed), `uvmctl console` (a command typed into the guest's shell, its
# answer on the screen, Ctrl-] ends the session and the terminal is back
# in cooked mode), `uvmctl stop`; then nothing is left.
# Usage: check-uvmctl-tmux.sh UVMCTL GUEST-DIR
set -eu
# Absolute: the shell in tmux runs in the test's directory.
uvmctl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
guest=$2
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed"; exit 77; }
[ -f "$guest/vmlinuz" ] || { echo "SKIP: no test guest in $guest"; exit 77; }

dir=$(mktemp -d /tmp/uvm-uvmctl-tmux-XXXXXX)
root=$dir/run
server=uvmctl-test-$$
pid=
cleanup() {
	tmux -L "$server" kill-server 2>/dev/null || true
	# Only if the test failed half-way: the VM it started.
	if [ -d "$root/tty1" ]; then "$uvmctl" --root "$root" kill tty1 >/dev/null 2>&1 || true; fi
	rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/def.json" <<JSON
{ "schema": 1, "vms": [ { "name": "tty1", "hypervisor": "qemu", "accel": "tcg",
  "kernel": "$guest/vmlinuz", "initramfs": "$guest/initramfs.img",
  "cmdline": "console=ttyS0 quiet uvm.shell=1", "memory": "256MiB",
  "devices": [ { "kind": "console", "log_path": "$dir/tty1.log" } ] } ] }
JSON

t() { tmux -L "$server" "$@"; }
type_line() { t send-keys -t uvm -l "$1"; t send-keys -t uvm Enter; }
screen() { t capture-pane -p -t uvm -S -300; }
fail() {
	echo "FAIL: $1"
	echo "---- screen ----"
	screen || true
	echo "---- console log ----"
	cat "$dir/tty1.log" 2>/dev/null || true
	exit 1
}
# wait_for TEXT SECONDS: until the screen shows TEXT.
wait_for() {
	i=0
	while ! screen | grep -qF -- "$1"; do
		i=$((i + 1))
		[ $i -le $(($2 * 10)) ] || fail "no '$1' on the screen within $2 s"
		sleep 0.1
	done
	echo "ok: '$1' on the screen"
}

t -f /dev/null new-session -d -s uvm -x 160 -y 50 /bin/sh
type_line "PS1='tmux\$ '; cd '$dir'"

type_line "'$uvmctl' --root '$root' run --detach --ready-pattern UVM-GUEST-SHELL def.json; echo run-exit=\$?"
wait_for "run-exit=0" 120

type_line "clear; '$uvmctl' --root '$root' list; echo list-exit=\$?"
wait_for "list-exit=0" 30
line=$(screen | grep -E '^tty1 +qemu +[0-9]+ +yes +no +-$') || fail "tty1 is not listed as a running detached VM"
pid=$(echo "$line" | awk '{ print $3 }')
echo "ok: listed: $line"

type_line "clear; '$uvmctl' --root '$root' console tty1; echo console-exit=\$?"
wait_for "Escape character is ^]" 30
t send-keys -t uvm Enter
wait_for "uvm-guest#" 30
type_line 'echo answer-$((6*7))'
wait_for "answer-42" 60
t send-keys -t uvm C-]
wait_for "console-exit=0" 30
screen | grep -qF "console: ended (^])" || fail "the console did not end through its escape key"
type_line "stty -a | tr ' ;' '\n\n' | grep -qx icanon && echo tty-restored"
wait_for "tty-restored" 30

type_line "clear; '$uvmctl' --root '$root' stop tty1; echo stop-exit=\$?"
wait_for "stop-exit=0" 60

# Nothing left: the hypervisor (reparented to init, which may not have
# reaped it yet: a zombie counts as gone) and the runtime directory.
i=0
while [ -e "/proc/$pid" ] && ! grep -q ') Z ' "/proc/$pid/stat" 2>/dev/null; do
	i=$((i + 1))
	[ $i -le 100 ] || fail "the hypervisor $pid still runs"
	sleep 0.1
done
[ ! -e "$root/tty1" ] || fail "the runtime directory $root/tty1 is still there"
if pgrep -f "uvm-console-relay" | while read -r p; do
	grep -qF "$root" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
done | grep -q .; then
	fail "a console relay of this test is left"
fi
grep -qF "answer-42" "$dir/tty1.log" || fail "the console log lacks the session"
echo "ok: nothing left; the console log kept the session"
