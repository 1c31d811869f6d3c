#!/bin/sh
# Sets up, builds and runs the whole test suite (real qemu, real guest).
# Usage: scripts/run-tests.sh [BUILDDIR] [meson test args...]
set -eu
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
builddir=${1:-build}
[ $# -gt 0 ] && shift
[ -f "$builddir/build.ninja" ] || meson setup "$builddir"
ninja -C "$builddir"
status=0
meson test -C "$builddir" --print-errorlogs "$@" || status=$?
# One closing line any CI reader understands, counted from meson's log.
/usr/bin/python3 - "$builddir/meson-logs/testlog.json" <<'PY' || true
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
