#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# libuvm can be consumed the two ways its users do, each proven by building
# and running tests/consumer/consumer.c (includes only <uvm/uvm.h>):
#
#  1. installed: `meson install --destdir` of BUILDDIR into a scratch root,
#     then cc with `pkg-config --cflags --libs libuvm`.  Also checks that the
#     installed headers are exactly the public headers plus the generated
#     ones (uvm-version.h, uvm-version-macros.h, uvm-enum-types.h), and that
#     the library's SONAME is libuvm.so.0.
#  2. meson subproject: tests/consumer/meson.build in a scratch project whose
#     subprojects/libuvm is a symlink to SRCROOT, resolved through libuvm's
#     meson.override_dependency().
#
# Each consumer must print the project version, then a qemu command line.
# Nothing is written to SRCROOT or the configured prefix; BUILDDIR only gets
# meson's install log.  The install uses --no-rebuild: under `meson test` the
# build is fresh; when running this by hand, run ninja -C BUILDDIR first.
# MESON and CC override the meson and C compiler used.
#
# usage: check-consumers.sh SRCROOT BUILDDIR
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 SRCROOT BUILDDIR" >&2
  exit 2
fi
srcroot=$(cd "$1" && pwd)
builddir=$(cd "$2" && pwd)
meson=${MESON:-meson}
cc=${CC:-cc}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

for tool in "$meson" "$cc" pkg-config readelf ldd python3; do
  command -v "$tool" > /dev/null || fail "$tool not found"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uvm-consumers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The consumers write their fake kernel under TMPDIR: keep it in ours.
export TMPDIR=$tmp
unset LD_LIBRARY_PATH

version=$("$meson" introspect "$builddir" --projectinfo |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[ -n "$version" ] || fail "no project version from meson introspect $builddir"

# check_run LABEL EXPECTED_LIBUVM_SO PROGRAM: PROGRAM (run in the current
# environment) loads EXPECTED_LIBUVM_SO, succeeds and prints the version and
# a command line booting its fake kernel (passed as an fd).
check_run() {
  local label=$1 want_so=$2 prog=$3 got_so out
  got_so=$(ldd "$prog" | awk '$1 == "libuvm.so.0" { print $3 }')
  [ "$got_so" = "$want_so" ] ||
    fail "$label: loads libuvm.so.0 from '${got_so:-nowhere}', not $want_so"
  out=$("$prog") || fail "$label: consumer exited $?: $out"
  printf '%s\n' "$out" | sed "s/^/$label: /"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ] ||
    fail "$label: expected 2 lines of output"
  [ "$(printf '%s\n' "$out" | sed -n 1p)" = "$version" ] ||
    fail "$label: output does not start with the project version $version"
  case "$(printf '%s\n' "$out" | sed -n 2p)" in
    # The kernel reaches qemu as an fd the library opened (least privilege):
    # the command line names /proc/self/fd/N, the launch plan the path.
    *" -nodefaults "*" -kernel /proc/self/fd/"[0-9]*" "*) ;;
    *) fail "$label: command line lacks -nodefaults or the kernel passed as an fd" ;;
  esac
}

# ---- 1. Installed, found with pkg-config ------------------------------------
root=$tmp/root
"$meson" install -C "$builddir" --no-rebuild --destdir "$root" --quiet \
  > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "meson install"; }

mapfile -t pcs < <(find "$root" -name libuvm.pc)
[ "${#pcs[@]}" -eq 1 ] || fail "expected one installed libuvm.pc, found: ${pcs[*]:-none}"
pcdir=$(dirname "${pcs[0]}")

# The .pc as installed: its version, and paths under the configured prefix.
pcvar() { PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" pkg-config "$@" libuvm; }
[ "$(pcvar --modversion)" = "$version" ] || fail "libuvm.pc version is not $version"
prefix=$(pcvar --variable=prefix)
libdir=$(pcvar --variable=libdir)
includedir=$(pcvar --variable=includedir)
for dir in "$libdir" "$includedir"; do
  case $dir in
    "$prefix"/*) ;;
    *) fail "libuvm.pc: $dir is not under its prefix $prefix" ;;
  esac
done
[ "$root$libdir/pkgconfig" = "$pcdir" ] || fail "libuvm.pc is not in \$libdir/pkgconfig ($libdir)"
echo "installed: prefix $prefix, libdir $libdir, includedir $includedir"

# Installed headers: exactly the public ones plus the generated ones.
(cd "$srcroot/include/uvm" && ls -1 -- *.h
 printf '%s\n' uvm-version.h uvm-version-macros.h uvm-enum-types.h) | sort > "$tmp/headers.want"
(cd "$root$includedir/uvm" && ls -1) | sort > "$tmp/headers.got" ||
  fail "no headers installed in $includedir/uvm"
diff -u "$tmp/headers.want" "$tmp/headers.got" >&2 ||
  fail "installed headers (+) differ from include/uvm/*.h + the generated ones (-)"
! grep -n '@[A-Za-z_]*@' "$root$includedir/uvm/uvm-version.h" \
    "$root$includedir/uvm/uvm-version-macros.h" "$root$includedir/uvm/uvm-enum-types.h" >&2 ||
  fail "installed generated headers have unsubstituted placeholders"

# The library: SONAME, and the development symlink -luvm links through.
[ -L "$root$libdir/libuvm.so" ] || fail "no libuvm.so development symlink in $libdir"
[ -e "$root$libdir/libuvm.so.0" ] || fail "no libuvm.so.0 in $libdir"
soname=$(readelf -d "$root$libdir/libuvm.so.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libuvm.so.0" ] || fail "installed libuvm has SONAME '${soname}', not libuvm.so.0"

# Compile against the install.  libuvm.pc says prefix=$prefix; pkgconf's
# PKG_CONFIG_SYSROOT_DIR would prepend the scratch root to glib's paths as
# well, so use a copy of the .pc relocated into the scratch root instead.
mkdir "$tmp/pc"
grep -q '^prefix=' "${pcs[0]}" || fail "libuvm.pc has no prefix= line"
sed "s|^prefix=.*|prefix=$root$prefix|" "${pcs[0]}" > "$tmp/pc/libuvm.pc"
flags=$(PKG_CONFIG_PATH="$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
        pkg-config --cflags --libs libuvm) || fail "pkg-config --cflags --libs libuvm"
echo "installed: pkg-config --cflags --libs libuvm: $flags"
case " $flags " in
  *" -I$root$includedir "*" -L$root$libdir "*) ;;
  *) fail "pkg-config flags do not point into the installed tree" ;;
esac
read -ra flags <<< "$flags"
"$cc" -std=gnu11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/consumer-pc" \
  "$srcroot/tests/consumer/consumer.c" "${flags[@]}" ||
  fail "cc consumer.c \$(pkg-config --cflags --libs libuvm)"
LD_LIBRARY_PATH=$root$libdir check_run installed "$root$libdir/libuvm.so.0" "$tmp/consumer-pc"

# ---- 2. Meson subproject ----------------------------------------------------
proj=$tmp/consumer
mkdir -p "$proj/subprojects"
cp "$srcroot/tests/consumer/meson.build" "$srcroot/tests/consumer/consumer.c" "$proj/"
ln -s "$srcroot" "$proj/subprojects/libuvm"
"$meson" setup "$tmp/consumer-build" "$proj" -Dlibuvm:tests=false -Dlibuvm:bench=false \
  > "$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log" >&2; fail "meson setup of the consumer project"; }
grep -qxF "Message: uvm-consumer: libuvm dependency version $version" "$tmp/setup.log" ||
  { cat "$tmp/setup.log" >&2; fail "dependency('libuvm') in the consumer project is not version $version"; }
"$meson" compile -C "$tmp/consumer-build" > "$tmp/compile.log" 2>&1 ||
  { cat "$tmp/compile.log" >&2; fail "meson compile of the consumer project"; }
sub_so=$tmp/consumer-build/subprojects/libuvm/libuvm/libuvm.so.0
check_run subproject "$sub_so" "$tmp/consumer-build/uvm-consumer"
check_run subproject-var "$sub_so" "$tmp/consumer-build/uvm-consumer-var"

echo "PASS: libuvm $version consumed installed (pkg-config) and as a meson subproject"
