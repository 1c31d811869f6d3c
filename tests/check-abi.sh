#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The ABI of the built libuvm.so is compatible with the baseline committed in
# tests/abi/libuvm.abi: nothing removed, no function or type the baseline
# has changed.  Additions pass, and are printed.
#
# Regenerate the baseline only when a release adds API (never to silence a
# reported break), from a build with debug info (the default buildtype,
# debugoptimized), then review and commit the diff:
#
#   ninja -C build && tests/check-abi.sh --update build/libuvm/libuvm.so tests/abi/libuvm.abi include/uvm
#
# Both sides are made by abidw with the same options (ABIDW_OPTS below):
# no paths or source locations (reproducible across checkouts and build
# dirs), hash type ids (stable when unrelated types come and go), only the
# exported interfaces, and only the types of the public headers (so private
# struct layouts may change freely).
#
# usage: check-abi.sh [--update] LIBUVM.SO BASELINE.abi INCLUDE_UVM_DIR
set -euo pipefail

update=0
if [ "${1:-}" = "--update" ]; then
  update=1
  shift
fi
if [ $# -ne 3 ]; then
  echo "usage: $0 [--update] LIBUVM.SO BASELINE.abi INCLUDE_UVM_DIR" >&2
  exit 2
fi
lib=$1 baseline=$2 incdir=$3

for tool in abidw abidiff readelf; do
  if ! command -v "$tool" > /dev/null; then
    echo "FAIL: $tool not found (Debian: apt-get install abigail-tools binutils;" \
         "scripts/setup-debian.sh does)" >&2
    exit 1
  fi
done
[ -r "$lib" ] || { echo "check-abi: cannot read $lib" >&2; exit 2; }
[ -d "$incdir" ] || { echo "check-abi: no directory $incdir" >&2; exit 2; }

# Without DWARF, abidw sees symbol names only: a changed signature would go
# unnoticed, and the comparison with a baseline that has types is noise.
if ! readelf -S -W "$lib" | grep -q '\.debug_info'; then
  echo "SKIP: $lib has no debug info (.debug_info); build with -g (buildtype" \
       "debug or debugoptimized) to check its ABI"
  exit 77
fi

ABIDW_OPTS=(
  --no-corpus-path --no-comp-dir-path --no-show-locs
  --type-id-style hash
  --exported-interfaces-only
  --drop-private-types --headers-dir "$incdir"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# abidw, then the translation units' paths made relative to the source root
# (the compiler records them relative to the build dir, "../libuvm/x.c" or
# "../../src/libuvm/x.c"), so the baseline does not depend on where the
# build dir is.
run_abidw () {
  abidw "${ABIDW_OPTS[@]}" --out-file "$1.raw" "$lib"
  sed -E "s#(<abi-instr [^>]* path=')[^']*/(libuvm/)#\1\2#" "$1.raw" > "$1"
}

run_abidw "$work/current.abi"

if [ "$update" -eq 1 ]; then
  # Reproducible: a second run must write the same bytes.
  run_abidw "$work/again.abi"
  if ! cmp -s "$work/current.abi" "$work/again.abi"; then
    echo "FAIL: abidw is not reproducible on $lib; baseline not written" >&2
    diff -u "$work/current.abi" "$work/again.abi" | head -40 >&2
    exit 1
  fi
  mkdir -p "$(dirname "$baseline")"
  cp "$work/current.abi" "$baseline"
  echo "wrote $baseline ($(grep -c '<elf-symbol ' "$baseline") symbols); review and commit it"
  exit 0
fi

[ -r "$baseline" ] || { echo "FAIL: no baseline $baseline (see the top of $0)" >&2; exit 1; }

set +e
abidiff --no-show-locs "$baseline" "$work/current.abi" > "$work/report" 2>&1
rc=$?
set -e

# abidiff's exit status is a bit field: 1 error, 2 usage error, 4 an ABI
# change, 8 an incompatible ABI change (e.g. a removed symbol).
if [ $((rc & 3)) -ne 0 ]; then
  echo "FAIL: abidiff could not compare (exit $rc):"
  cat "$work/report"
  exit 1
fi
if [ $((rc & 8)) -ne 0 ]; then
  echo "FAIL: incompatible ABI change against $baseline:"
  cat "$work/report"
  exit 1
fi
if [ $((rc & 4)) -ne 0 ]; then
  # A change that abidiff does not call incompatible: fine only when all it
  # did was add.  Its summary lines read, e.g.,
  #   "Functions changes summary: 0 Removed, 1 Changed, 2 Added functions"
  #   "Function symbols changes summary: 0 Removed, 1 Added function symbol ..."
  bad=$(grep -E 'changes summary:' "$work/report" \
        | grep -E '(^|[^0-9])([1-9][0-9]*) (Removed|Changed)' || true)
  if [ -n "$bad" ]; then
    echo "FAIL: ABI change against $baseline (removed or changed interfaces):"
    cat "$work/report"
    exit 1
  fi
  echo "ok: only additions against $baseline (update the baseline when releasing them):"
  cat "$work/report"
  exit 0
fi
echo "ok: the ABI of $(basename "$lib") equals $baseline" \
     "($(grep -c '<elf-symbol ' "$baseline") symbols)"
