#!/bin/bash
# libuvm's benchmarks, side by side in one run: the one documented command.
#
# Usage: bench/run-bench.sh [--smoke] [--rounds N] [--round-trips M]
#                           [--counts 1,10,50,100] [--no-libvirt] [--out DIR]
#   bench/run-bench.sh               # everything: ~3 min on 2 cores
#   bench/run-bench.sh --smoke       # every part once, small (CI)
#
# It installs what it needs (scripts/setup-debian.sh, gnuplot-nox), builds
# the project and the test guest in the build directory, then runs
#   1. bench-launch   start → ready, QMP round trip, forced and graceful
#                     stop: libuvm against a raw launcher of the same qemu
#                     argv, alternating; the cloud-hypervisor stand-in's
#                     start and REST round trip against a raw client
#                     (labelled: they measure our client, not a hypervisor);
#   2. bench-scale    1, 10, 50, 100 VMs started paused from one process:
#                     time to all ready, event latency, library memory per
#                     VM, time to stop them all;
#   3. bench-libvirt  the same guest with `virsh create` / `virsh destroy`,
#                     after bench/setup-libvirt.sh made a libvirtd usable
#                     (skipped, with the reason, when it cannot);
# and prints one Markdown table (bench/report.py) with the ratios and which
# targets are met.  Results go to DIR (default BUILD/bench-results): the
# JSON of each part, report.md, scale.csv and scale.svg (the plot of
# latency and time-to-ready against the number of VMs).
#
# Environment: UVM_BUILD_DIR (default: build/ in the source tree).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=${UVM_BUILD_DIR:-$srcdir/build}
smoke=
libvirt=1
out=
# 2000 round trips per side: with fewer, the guests' own TCG work on 2
# cores makes the ratio swing (1.20x at 300, 0.89-0.96x at 2000 here).
launch_args=(--round-trips 2000)
scale_args=()
libvirt_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1; launch_args+=(--smoke); scale_args+=(--smoke); libvirt_args+=(--smoke) ;;
	--rounds) launch_args+=(--rounds "$2"); libvirt_args+=(--rounds "$2"); shift ;;
	--round-trips) launch_args+=(--round-trips "$2"); shift ;;
	--counts) scale_args+=(--counts "$2"); shift ;;
	--no-libvirt) libvirt= ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
	shift
done
out=${out:-$builddir/bench-results}

# ---- what it needs ----------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	"$srcdir/scripts/setup-debian.sh" >&2
	command -v gnuplot >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >&2
fi
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" "$srcdir" -Dbench=true >&2
meson configure "$builddir" -Dbench=true >&2
ninja -C "$builddir" bench/bench-launch bench/bench-scale \
	tests/guest/vmlinuz tests/guest/initramfs.img >&2
kernel=$builddir/tests/guest/vmlinuz
initramfs=$builddir/tests/guest/initramfs.img
mkdir -p "$out"
rm -f "$out"/*.json "$out"/report.md "$out"/scale.csv "$out"/scale.svg

# ---- 1. launch, control, stop -----------------------------------------------
note "1/3 bench-launch ${launch_args[*]}"
"$builddir/bench/bench-launch" --kernel "$kernel" --initramfs "$initramfs" \
	--json "$out/launch.json" "${launch_args[@]}" >&2

# ---- 2. scale ---------------------------------------------------------------
note "2/3 bench-scale ${scale_args[*]}"
"$builddir/bench/bench-scale" --kernel "$kernel" --initramfs "$initramfs" \
	--json "$out/scale.json" --csv "$out/scale.csv" "${scale_args[@]}" >&2

# ---- 3. libvirt -------------------------------------------------------------
if [ -n "$libvirt" ]; then
	note "3/3 libvirt"
	if reason=$("$srcdir/bench/setup-libvirt.sh" 2>&1 >/dev/null); then
		"$srcdir/bench/bench-libvirt.sh" --kernel "$kernel" --initramfs "$initramfs" \
			--json "$out/libvirt.json" "${libvirt_args[@]}" >&2 || true
		"$srcdir/bench/setup-libvirt.sh" --stop >&2 || true
	else
		note "libvirt skipped: $(echo "$reason" | tail -n 1)"
		printf '{"program": "bench-libvirt", "results": [%s, %s]}\n' \
			"{\"id\": \"libvirt_start\", \"label\": \"libvirt: virsh create\", \"skipped\": $(printf '%s' "$(echo "$reason" | tail -n 1)" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" \
			"{\"id\": \"libvirt_stop\", \"label\": \"libvirt: virsh destroy\", \"skipped\": \"see libvirt_start\"}" \
			>"$out/libvirt.json"
	fi
else
	note "3/3 libvirt: not run (--no-libvirt)"
fi

# ---- report and plot ----------------------------------------------------------
jsons=("$out/launch.json" "$out/scale.json")
[ -f "$out/libvirt.json" ] && jsons+=("$out/libvirt.json")
/usr/bin/python3 "$srcdir/bench/report.py" "${jsons[@]}" | tee "$out/report.md"
if command -v gnuplot >/dev/null && [ -s "$out/scale.csv" ]; then
	gnuplot -e "csv='$out/scale.csv'; out='$out/scale.svg'" "$srcdir/bench/plot-scale.gp"
	echo
	echo "Plot: $out/scale.svg"
else
	note "no plot: gnuplot or $out/scale.csv missing"
fi
echo "Results: $out (launch.json, scale.json, libvirt.json, report.md, scale.csv)"
[ -z "$smoke" ] || note "smoke run: figures from 1 round are not measurements"
