#!/bin/bash
# Make a libvirtd usable for bench/bench-libvirt.sh, and undo it afterwards.
#
# Usage: bench/setup-libvirt.sh          # install, configure, start
#        bench/setup-libvirt.sh --stop   # stop what the first form started
#
# Idempotent: run it as often as you like; it installs only what is missing,
# rewrites only its own block of qemu.conf and starts only daemons that are
# not running. It records what it started (and whether it added the
# qemu.conf block) in a state file, so that --stop stops those daemons and
# removes that block, and leaves alone a libvirtd that was running before.
#
# Steps, each skipped when already done:
#   1. apt-get install libvirt-daemon-system libvirt-clients
#      libvirt-daemon-driver-qemu (no recommends); the package creates the
#      libvirt-qemu user, which is checked and created if missing.
#   2. A marked block in /etc/libvirt/qemu.conf that runs qemu as root:
#      user = "root", group = "root". That is all a container-like host with
#      no systemd needed in our tries (mount namespaces, cgroups and the
#      default security driver worked); settings for hosts that lack more go
#      in $UVM_LIBVIRT_QEMU_CONF_EXTRA (lines, e.g. 'namespaces = []').
#      Only written when this script starts libvirtd (a running libvirtd
#      would not see it).
#   3. virtlogd and libvirtd: with systemd as init through systemctl,
#      otherwise as `virtlogd -d` and `libvirtd -d`, each under a small
#      python3 reaper of orphans (see reaper_py for why).
#   4. `virsh -c qemu:///system version` must work.
#
# On failure: exit 1 with one line "setup-libvirt.sh: unusable: <reason>" on
# stderr. Needs root (apt-get, /etc, the system daemons).
#
# Environment:
#   UVM_LIBVIRT_STATE             state file (default /run/libuvm-bench-libvirt.state)
#   UVM_LIBVIRT_QEMU_CONF_EXTRA   extra qemu.conf lines for the block
set -uo pipefail

prog=${0##*/}
uri=qemu:///system
state=${UVM_LIBVIRT_STATE:-/run/libuvm-bench-libvirt.state}
qemu_conf=/etc/libvirt/qemu.conf
begin_mark='# BEGIN libuvm bench (bench/setup-libvirt.sh)'
end_mark='# END libuvm bench'

note() { echo "$prog: $*" >&2; }
unusable() { echo "$prog: unusable: $*" >&2; exit 1; }

usage() {
	sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"
	exit "${1:-0}"
}

# systemd as init: it leaves /run/systemd/system behind (sd_booted()'s test).
have_systemd() { [ -d /run/systemd/system ]; }

usable() { virsh -c "$uri" version >/dev/null 2>&1; }

# Alive and not a zombie: PID 1 here may not reap daemonized children.
alive() {
	local pid=$1 st
	[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# The pid in a daemon's pid file if that process runs and is the daemon.
daemon_pid() {
	local name=$1 pid
	pid=$(cat "/run/$name.pid" 2>/dev/null) || return 1
	alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
	echo "$pid"
}

record() { echo "$1" >>"$state"; }
# $1: a basic regular expression for the start of a line.
recorded() { [ -f "$state" ] && grep -q "^$1" "$state"; }

# qemu.conf without our block (marker lines compared literally).
conf_without_block() {
	awk -v b="$begin_mark" -v e="$end_mark" '$0 == b { skip = 1 } !skip { print } $0 == e { skip = 0 }' "$qemu_conf"
}

# Rewrites qemu.conf in place, keeping its owner and mode, with $1 (the
# whole text, which the caller produced before truncating anything).
replace_conf() {
	printf '%s\n' "$1" >"$qemu_conf"
}

remove_conf_block() {
	local text
	[ -f "$qemu_conf" ] || return 0
	text=$(conf_without_block) && replace_conf "$text" ||
		note "could not remove our block from $qemu_conf"
}

# ---- --stop -------------------------------------------------------------------

stop_pid() {
	local name=$1 pid=$2 i
	alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	note "$name ($pid) ignored SIGTERM for 10 s; killing it"
	kill -KILL "$pid" 2>/dev/null
}

do_stop() {
	local line
	if [ ! -f "$state" ]; then
		note "nothing recorded in $state: nothing to stop"
		return 0
	fi
	# Our domains only: a bench interrupted hard may have left one.
	if usable; then
		virsh -c "$uri" list --name 2>/dev/null | grep '^uvm-bench-' |
			while read -r line; do
				note "destroying leftover domain $line"
				virsh -c "$uri" destroy "$line" >/dev/null 2>&1
			done
	fi
	# libvirtd before virtlogd: libvirtd holds connections to virtlogd.
	for line in $(grep -E '^(unit|pid):libvirtd' "$state") $(grep -E '^(unit|pid):virtlogd' "$state"); do
		case $line in
		unit:*)
			note "systemctl stop ${line#unit:}"
			systemctl stop "${line#unit:}" ;;
		pid:*)
			line=${line#pid:}
			note "stopping ${line%%=*} (pid ${line#*=})"
			stop_pid "${line%%=*}" "${line#*=}" ;;
		esac
	done
	if recorded conf:added$; then
		note "removing our block from $qemu_conf"
		remove_conf_block
	fi
	rm -f "$state"
}

# ---- setup ----------------------------------------------------------------------

install_packages() {
	command -v virsh >/dev/null && command -v libvirtd >/dev/null && command -v virtlogd >/dev/null &&
		[ -n "$(find /usr/lib /usr/lib64 -path '*/libvirt/connection-driver/libvirt_driver_qemu.so' -print -quit 2>/dev/null)" ] &&
		return 0
	command -v apt-get >/dev/null || unusable "libvirt is not installed and there is no apt-get"
	note "installing libvirt (apt-get, log in /tmp/libuvm-setup-libvirt-apt.log)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu \
		>/tmp/libuvm-setup-libvirt-apt.log 2>&1 ||
		unusable "apt-get install of libvirt failed (see /tmp/libuvm-setup-libvirt-apt.log)"
}

ensure_user() {
	id libvirt-qemu >/dev/null 2>&1 && return 0
	note "creating the libvirt-qemu system user"
	getent group kvm >/dev/null || groupadd --system kvm
	useradd --system --no-create-home --home-dir /var/lib/libvirt \
		--shell /usr/sbin/nologin --gid kvm libvirt-qemu ||
		unusable "cannot create the libvirt-qemu user"
}

write_conf_block() {
	local text
	[ -f "$qemu_conf" ] || unusable "$qemu_conf is missing (libvirt-daemon-driver-qemu not installed?)"
	grep -qxF "$begin_mark" "$qemu_conf" || record conf:added
	text=$(conf_without_block) || unusable "cannot read $qemu_conf"
	text+=$'\n'"$begin_mark"
	text+=$'\n''# qemu as root: no dedicated user can be set up to own the guest files here.'
	text+=$'\n''user = "root"'$'\n''group = "root"'
	if [ -n "${UVM_LIBVIRT_QEMU_CONF_EXTRA:-}" ]; then
		text+=$'\n'"$UVM_LIBVIRT_QEMU_CONF_EXTRA"
	fi
	text+=$'\n'"$end_mark"
	replace_conf "$text" || unusable "cannot write $qemu_conf"
}

# Runs "$@" as the child of a process that is a child subreaper
# (PR_SET_CHILD_SUBREAPER) and reaps every process orphaned below it until
# none is left, then exits with the command's status. Why: libvirtd
# daemonizes qemu, and `virsh destroy` returns only once qemu's pid is gone,
# zombie included; an init that reaps late (seen here: 1-2 s) would be
# measured as libvirt's stop time. systemd reaps at once.
reaper_py='
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit(125)
child = os.fork()
if child == 0:
    os.close(3)
    os.execvp(sys.argv[1], sys.argv[1:])
status = 0
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    if pid == child:
        status = os.waitstatus_to_exitcode(st)
        try:
            os.write(3, b"%d\n" % status)
            os.close(3)
        except OSError:
            pass
sys.exit(status)
'

# Starts one daemon unless it runs; records it if we started it.
start_daemon() {
	local name=$1 pid i status
	if have_systemd; then
		systemctl is-active --quiet "$name" && return 0
		note "systemctl start $name"
		systemctl start "$name" || unusable "systemctl start $name failed"
		record "unit:$name"
		return 0
	fi
	daemon_pid "$name" >/dev/null && return 0
	note "starting $name -d (under a reaper of orphans)"
	# The reaper stays in the background for the daemon's lifetime; it
	# reports the status of `$name -d` itself on fd 3.
	status=$(setsid python3 -c "$reaper_py" "$name" -d 3>&1 </dev/null >/dev/null 2>&1 &)
	[ "$status" = 0 ] || unusable "$name -d failed (status ${status:-?}; see /var/log/libvirt/$name.log)"
	for ((i = 0; i < 50; i++)); do
		pid=$(daemon_pid "$name") && break
		sleep 0.1
	done
	[ -n "$pid" ] || unusable "$name did not stay up (see /var/log/libvirt/$name.log)"
	record "pid:$name=$pid"
}

do_setup() {
	local i
	if usable; then
		# Running already: ours from an earlier run, or someone else's,
		# whose configuration is not ours to change.
		recorded pid:libvirtd= || recorded unit:libvirtd ||
			note "libvirtd was already running (not started by us; --stop will leave it)"
		virsh -c "$uri" version | sed -n "s/^./$prog: &/p" >&2
		return 0
	fi
	[ "$(id -u)" = 0 ] || unusable "needs root to install and start libvirtd"
	install_packages
	ensure_user
	if have_systemd && systemctl is-active --quiet libvirtd ||
		! have_systemd && daemon_pid libvirtd >/dev/null; then
		unusable "libvirtd runs but '$uri' does not answer (see /var/log/libvirt/libvirtd.log)"
	fi
	write_conf_block
	start_daemon virtlogd
	start_daemon libvirtd
	for ((i = 0; i < 100; i++)); do
		usable && break
		sleep 0.1
	done
	usable || unusable "$(virsh -c "$uri" version 2>&1 | grep -m1 -i error || echo "virsh -c $uri version fails")"
	virsh -c "$uri" version | sed -n "s/^./$prog: &/p" >&2
}

case ${1:-} in
"") do_setup ;;
--stop) do_stop ;;
-h | --help) usage 0 ;;
*) echo "$prog: unknown argument $1" >&2; usage 2 >&2 ;;
esac
