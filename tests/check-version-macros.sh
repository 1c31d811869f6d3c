#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The version macros of <uvm/uvm.h> enforce what they promise: with
# UVM_VERSION_MAX_ALLOWED older than a function's release, using it warns
# (an error under -Werror); with UVM_VERSION_MIN_REQUIRED at or past the
# release that deprecated a function, using it warns; otherwise the same
# source compiles cleanly.  Each failing case must fail for its reason:
# the compiler's message names the function (or the #error).
#
# CC (default cc) is the compiler; the flags for GLib come from pkg-config.
#
# usage: check-version-macros.sh SOURCE BUILD_INCLUDE_DIR SOURCE_INCLUDE_DIR
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 SOURCE BUILD_INCLUDE_DIR SOURCE_INCLUDE_DIR" >&2
  exit 2
fi
src=$1 build_inc=$2 src_inc=$3
read -ra cc <<< "${CC:-cc}"
[ -r "$src" ] || { echo "check-version-macros: cannot read $src" >&2; exit 2; }
for h in uvm-version.h uvm-version-macros.h uvm-enum-types.h; do
  [ -r "$build_inc/uvm/$h" ] || { echo "check-version-macros: no $build_inc/uvm/$h" >&2; exit 2; }
done
read -ra glib <<< "$(pkg-config --cflags gobject-2.0 gio-2.0)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0 failed=0

compile () {
  "${cc[@]}" -std=gnu11 -Wall -c -o "$work/out.o" -I"$build_inc" -I"$src_inc" "${glib[@]}" \
    "$@" "$src" > "$work/log" 2>&1
}

# passes DESCRIPTION FLAGS...: compiles without a diagnostic about the
# version macros.
passes () {
  local what=$1
  shift
  n=$((n + 1))
  if ! compile "$@"; then
    echo "FAIL: $what: did not compile ($*):"
    sed 's/^/    /' "$work/log"
    failed=1
  elif grep -q 'deprecated\|Not available' "$work/log"; then
    echo "FAIL: $what: compiled, but warned ($*):"
    sed 's/^/    /' "$work/log"
    failed=1
  else
    echo "ok $n: $what"
  fi
}

# warns DESCRIPTION PATTERN FLAGS...: compiles, with a warning matching
# PATTERN (grep -E): without -Werror the macros only warn.
warns () {
  local what=$1 pattern=$2
  shift 2
  n=$((n + 1))
  if ! compile "$@"; then
    echo "FAIL: $what: did not compile ($*):"
    sed 's/^/    /' "$work/log"
    failed=1
  elif ! grep -Eq "$pattern" "$work/log"; then
    echo "FAIL: $what: no warning matching '$pattern' ($*):"
    sed 's/^/    /' "$work/log"
    failed=1
  else
    echo "ok $n: $what"
  fi
}

# fails DESCRIPTION PATTERN FLAGS...: does not compile, and the compiler
# says why in a line matching PATTERN (grep -E).
fails () {
  local what=$1 pattern=$2
  shift 2
  n=$((n + 1))
  if compile "$@"; then
    echo "FAIL: $what: compiled, but must not ($*)"
    failed=1
  elif ! grep -Eq "$pattern" "$work/log"; then
    echo "FAIL: $what: failed, but not with '$pattern' ($*):"
    sed 's/^/    /' "$work/log"
    failed=1
  else
    echo "ok $n: $what"
  fi
}

max02=-DUVM_VERSION_MAX_ALLOWED=UVM_VERSION_0_2
max01=-DUVM_VERSION_MAX_ALLOWED=UVM_VERSION_0_1
min01=-DUVM_VERSION_MIN_REQUIRED=UVM_VERSION_0_1
min02=-DUVM_VERSION_MIN_REQUIRED=UVM_VERSION_0_2
min03=-DUVM_VERSION_MIN_REQUIRED=UVM_VERSION_0_3
unavailable_03="uvm_hypervisor_to_string.*Not available before 0\.3"
deprecated="uvm_vm_get_cmdline.*deprecated.*uvm_vm_get_kernel_cmdline"

# UVM_VERSION_MAX_ALLOWED
passes "0.3 API, default macros, -Werror" -DUSE_0_3_API -Werror
fails "0.3 API, MAX_ALLOWED 0.2, -Werror" "$unavailable_03" -DUSE_0_3_API "$min01" "$max02" -Werror
fails "0.3 API, MAX_ALLOWED 0.2, -Werror=deprecated-declarations" "$unavailable_03" \
  -DUSE_0_3_API "$min01" "$max02" -Werror=deprecated-declarations
warns "0.3 API, MAX_ALLOWED 0.2, no -Werror: a warning only" "$unavailable_03" \
  -DUSE_0_3_API "$min01" "$max02"
passes "0.2 API, MAX_ALLOWED 0.2, -Werror" -DUSE_0_2_API "$min01" "$max02" -Werror
fails "0.2 API, MAX_ALLOWED 0.1, -Werror" "uvm_hypervisor_supports.*Not available before 0\.2" \
  -DUSE_0_2_API "$min01" "$max01" -Werror

# UVM_VERSION_MIN_REQUIRED and deprecation
warns "API deprecated in 0.3, default macros (MIN_REQUIRED is current): a warning" "$deprecated" \
  -DUSE_DEPRECATED_API
fails "API deprecated in 0.3, MIN_REQUIRED 0.3, -Werror=deprecated-declarations" "$deprecated" \
  -DUSE_DEPRECATED_API "$min03" -Werror=deprecated-declarations
passes "API deprecated in 0.3, MIN_REQUIRED 0.2, -Werror=deprecated-declarations" \
  -DUSE_DEPRECATED_API "$min02" -Werror=deprecated-declarations
passes "API deprecated in 0.3, MIN_REQUIRED 0.3, UVM_DISABLE_DEPRECATION_WARNINGS, -Werror" \
  -DUSE_DEPRECATED_API "$min03" -DUVM_DISABLE_DEPRECATION_WARNINGS -Werror

# Settings the headers refuse.
fails "MIN_REQUIRED newer than the headers" "MIN_REQUIRED is newer" \
  -DUSE_0_2_API "-DUVM_VERSION_MIN_REQUIRED=UVM_ENCODE_VERSION(9,0)"
fails "MAX_ALLOWED older than MIN_REQUIRED" "MAX_ALLOWED is older than" \
  -DUSE_0_2_API "$min03" "$max02"

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "ok: the version macros enforced all $n cases"
