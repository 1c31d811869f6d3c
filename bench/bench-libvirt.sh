#!/bin/bash
# libvirt's side of the launch comparison: the test guest started with
# `virsh create` and stopped with `virsh destroy`, through qemu:///system.
#
# Usage: bench/bench-libvirt.sh --kernel FILE --initramfs FILE [--rounds N]
#                               [--json FILE] [--smoke]
#   --rounds N   measured rounds (default 20), after one warm-up round
#   --json FILE  write the results in the format of the bench JSON contract
#                (ids libvirt_start and libvirt_stop, a = "libvirt", b = null)
#   --smoke      one round, no warm-up (CI)
#
# Each round defines a transient domain with a new name (uvm-bench-libvirt-
# PID-N): type 'qemu' (TCG), q35, 256 MiB, 1 vCPU, direct kernel boot with
# cmdline "console=ttyS0 quiet", serial console to a file, no NIC, no
# graphics, no memory balloon; the same guest bench-launch starts.
#   start: `virsh -c qemu:///system create FILE` until it returns; the domain
#          is then running, which is what libvirt offers as controllable.
#   stop:  once the guest printed UVM-GUEST-READY on its console (or after a
#          fixed settle delay if the console file cannot be read),
#          `virsh destroy NAME` until it returns and the qemu process is gone.
# Both include virsh's own start and connection to libvirtd, as a user of
# libvirt's command line pays them. Medians and p10/p90 (nearest rank) go to
# stdout as a Markdown table; progress to stderr.
#
# libvirt not usable (no virsh, no answer from qemu:///system, the first
# domain fails to start): one line "skipped: <reason>" on stdout, the JSON
# file holds {"id": ..., "skipped": reason} entries, and the exit status is 0.
# bench/setup-libvirt.sh installs and starts a libvirtd for the run.
#
# Leaves nothing behind: domains are destroyed and the console files and
# libvirt's per-domain logs of our domains are removed, also on interruption.
set -uo pipefail

prog=${0##*/}
uri=qemu:///system
ready_marker=UVM-GUEST-READY
ready_timeout_s=60
settle_s=5

note() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

usage() {
	sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"
	exit "${1:-0}"
}

kernel= initramfs= rounds=20 json= smoke=0
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=${2:-}; shift 2 || usage 2 >&2 ;;
	--initramfs) initramfs=${2:-}; shift 2 || usage 2 >&2 ;;
	--rounds) rounds=${2:-}; shift 2 || usage 2 >&2 ;;
	--json) json=${2:-}; shift 2 || usage 2 >&2 ;;
	--smoke) smoke=1; shift ;;
	-h | --help) usage 0 ;;
	*) echo "$prog: unknown argument $1" >&2; usage 2 >&2 ;;
	esac
done
[ -n "$kernel" ] && [ -n "$initramfs" ] || die "--kernel and --initramfs are required"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive number"
warmup=1
if [ "$smoke" = 1 ]; then
	rounds=1 warmup=0
fi
command -v python3 >/dev/null || die "python3 is needed for the statistics and the JSON file"
# Paths as libvirtd (another process, another working directory) sees them.
kernel=$(realpath -e "$kernel") || die "kernel not found"
initramfs=$(realpath -e "$initramfs") || die "initramfs not found"

# ---- results ------------------------------------------------------------------

environment_json() {
	local qemu cpus
	qemu=$(qemu-system-x86_64 --version 2>/dev/null | head -n1)
	cpus=$(nproc)
	python3 - "$qemu" "$cpus" "$(uname -r)" "$1" <<'EOF'
import json, sys
qemu, cpus, kernel, note = sys.argv[1:5]
print(json.dumps({"qemu": qemu, "cpus": int(cpus), "kernel": kernel, "note": note}))
EOF
}

# skip REASON: report that libvirt could not be measured; exit 0.
skip() {
	echo "skipped: $1"
	note "skipped: $1"
	[ -n "$json" ] || exit 0
	python3 - "$json" "$1" "$(environment_json "libvirt not measured")" <<'EOF' || die "cannot write $json"
import json, sys
path, reason, env = sys.argv[1:4]
doc = {"program": "bench-libvirt", "environment": json.loads(env),
       "results": [{"id": i, "skipped": reason} for i in ("libvirt_start", "libvirt_stop")]}
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
EOF
	exit 0
}

# ---- the domain -------------------------------------------------------------------

xml_escape() {
	local s=$1
	s=${s//&/&amp;} s=${s//</&lt;} s=${s//>/&gt;} s=${s//\'/&apos;} s=${s//\"/&quot;}
	printf '%s' "$s"
}

# domain_xml NAME CONSOLE_FILE
domain_xml() {
	cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$(xml_escape "$kernel")</kernel>
    <initrd>$(xml_escape "$initramfs")</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'>
      <source path='$(xml_escape "$2")'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# Alive and not a zombie (the init of a container may not reap qemu, which
# libvirt daemonizes).
alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# stamp VAR: VAR = now in ns, without forking (that would be timed too).
stamp() {
	local t=$EPOCHREALTIME
	printf -v "$1" '%s' "${t%.*}${t#*.}000"
}

workdir=
current=
cleanup() {
	if [ -n "$current" ]; then
		virsh -c "$uri" destroy "$current" >/dev/null 2>&1
		rm -f "/var/log/libvirt/qemu/$current.log"
	fi
	[ -n "$workdir" ] && rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- checks: is libvirt usable? ---------------------------------------------------

command -v virsh >/dev/null || skip "virsh not found (bench/setup-libvirt.sh installs libvirt)"
if ! out=$(virsh -c "$uri" version 2>&1); then
	skip "libvirt $uri does not answer: $(echo "$out" | grep -m1 . ) (bench/setup-libvirt.sh starts it)"
fi
libvirt_version=$(echo "$out" | sed -n 's/^Using library: libvirt //p')
hypervisor=$(echo "$out" | sed -n 's/^Running hypervisor: //p')
workdir=$(mktemp -d /tmp/libuvm-bench-libvirt.XXXXXX) || die "mktemp failed"
chmod 755 "$workdir"

# ---- rounds -----------------------------------------------------------------------

start_ns=() stop_ns=() ready_ns=() not_ready=0

# round N: one start and stop; appends to the arrays unless N is a warm-up.
round() {
	local n=$1 name xml console t0 t1 t2 t3 tr pid out i
	name=uvm-bench-libvirt-$$-$n
	xml=$workdir/$name.xml
	console=$workdir/$name.console
	domain_xml "$name" "$console" >"$xml"

	stamp t0
	current=$name
	if ! out=$(virsh -c "$uri" create "$xml" 2>&1); then
		current=
		rm -f "/var/log/libvirt/qemu/$name.log"
		out=$(echo "$out" | grep -m1 -i error || echo "$out" | grep -m1 .)
		[ "$n" -le 1 ] && skip "virsh create failed: $out"
		die "round $n: virsh create failed: $out"
	fi
	stamp t1
	pid=$(cat "/run/libvirt/qemu/$name.pid" 2>/dev/null)

	tr=
	if [ -r "$console" ]; then
		for ((i = 0; i < ready_timeout_s * 50; i++)); do
			if grep -qF "$ready_marker" "$console" 2>/dev/null; then
				stamp tr
				break
			fi
			sleep 0.02
		done
		[ -n "$tr" ] || { note "round $n: no $ready_marker within $ready_timeout_s s"; not_ready=$((not_ready + 1)); }
	else
		note "round $n: console file not readable; waiting $settle_s s instead"
		not_ready=$((not_ready + 1))
		sleep "$settle_s"
	fi

	stamp t2
	out=$(virsh -c "$uri" destroy "$name" 2>&1) || die "round $n: virsh destroy failed: $out"
	if [ -n "$pid" ]; then
		for ((i = 0; i < 10000; i++)); do
			alive "$pid" || break
			sleep 0.001
		done
	fi
	stamp t3
	current=
	rm -f "$xml" "$console" "/var/log/libvirt/qemu/$name.log"

	note "round $n$([ "$n" -le 0 ] && echo " (warm-up)"): create $(((t1 - t0) / 1000)) us," \
		"ready $([ -n "$tr" ] && echo "$(((tr - t0) / 1000)) us after create began" || echo "not seen")," \
		"destroy $(((t3 - t2) / 1000)) us"
	[ -z "$pid" ] && note "round $n: qemu's pid file was not readable; destroy timed without waiting for the process"
	if [ "$n" -ge 1 ]; then
		start_ns+=($((t1 - t0)))
		stop_ns+=($((t3 - t2)))
		[ -n "$tr" ] && ready_ns+=($((tr - t0)))
	fi
	return 0
}

# Warm-up rounds are numbered 0, -1, ...: libvirtd probes and caches on the
# first domain, which is not what we measure.
for ((r = 1 - warmup; r <= rounds; r++)); do
	round "$r"
done

# ---- report -----------------------------------------------------------------------

python3 - "$json" "$rounds" "$warmup" "$libvirt_version" "$hypervisor" "$not_ready" \
	"$(environment_json "libvirt $libvirt_version via virsh -c $uri; $rounds rounds after $warmup warm-up")" \
	"${start_ns[*]}" "${stop_ns[*]}" "${ready_ns[*]-}" "$kernel" "$initramfs" <<'EOF' || die "cannot write the report"
import json, math, sys

(path, rounds, warmup, version, hypervisor, not_ready, env,
 start, stop, ready, kernel, initramfs) = sys.argv[1:13]

def summary(ns_text):
    v = sorted(int(x) / 1e6 for x in ns_text.split())
    if not v:
        return None
    n = len(v)
    rank = lambda q: v[max(1, math.ceil(q * n)) - 1]
    median = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    r = lambda x: round(x, 1)
    return {"name": "libvirt", "n": n, "median": r(median), "p10": r(rank(0.1)),
            "p90": r(rank(0.9)), "min": r(v[0]), "max": r(v[-1])}

s, t, rd = summary(start), summary(stop), summary(ready)
print()
print("## libvirt launch benchmark")
print()
print(f"- libvirt {version}, {hypervisor}, qemu:///system")
print(f"- guest: transient domain, type qemu (TCG), q35, 1 vCPU, 256 MiB, direct kernel boot "
      f"(kernel {kernel}, initrd {initramfs}, cmdline \"console=ttyS0 quiet\"), serial console to a file, "
      f"no NIC, no graphics, no memballoon")
print(f"- {rounds} round(s) after {warmup} warm-up; a new domain name per round; "
      f"times include virsh's own start and connection")
print(f"- stop is timed after the guest printed UVM-GUEST-READY"
      + (f" (not seen in {not_ready} round(s): stopped after a timeout/settle delay)" if int(not_ready) else ""))
print()
print("| measurement | median | p10 | p90 | min | max | n |")
print("|---|---:|---:|---:|---:|---:|---:|")
for label, x in (("virsh create -> running (ms)", s),
                 ("virsh destroy -> qemu gone (ms)", t),
                 ("(info) create began -> guest READY (ms)", rd)):
    if x:
        print(f"| {label} | {x['median']:.1f} | {x['p10']:.1f} | {x['p90']:.1f} | "
              f"{x['min']:.1f} | {x['max']:.1f} | {x['n']} |")
if path:
    doc = {"program": "bench-libvirt", "environment": json.loads(env), "results": [
        {"id": "libvirt_start", "label": "start → running (libvirt: virsh create, TCG)",
         "unit": "ms", "a": s, "b": None},
        {"id": "libvirt_stop", "label": "forced stop (libvirt: virsh destroy until qemu is gone)",
         "unit": "ms", "a": t, "b": None},
    ]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
EOF
