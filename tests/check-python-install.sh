#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Python package installed the offline way a user does it, against an
# installed libuvm:
#
#   meson install                                   (here: --destdir a scratch root)
#   pip install --no-build-isolation ./bindings/python
#
# with Debian's pip, setuptools, wheel and cffi only: no index, no
# dependencies fetched, no build isolation.  pip finds libuvm with
# `pkg-config libuvm` (a copy of the installed libuvm.pc relocated into the
# scratch root, as tests/check-consumers.sh does) and installs into
# --target a scratch site directory.  The installed package must then
# import with LD_LIBRARY_PATH at the staged lib directory, load that
# libuvm.so.0, have uvm.version equal to the project version, and raise
# uvm.InvalidDefinition for a bad definition.
#
# Nothing is written to SRCROOT (pip builds in a copy of bindings/python) or
# the configured prefix; BUILDDIR only gets meson's install log.  The install
# uses --no-rebuild: run ninja -C BUILDDIR first when running this by hand.
#
# usage: check-python-install.sh SRCROOT BUILDDIR
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 SRCROOT BUILDDIR" >&2
  exit 2
fi
srcroot=$(cd "$1" && pwd)
builddir=$(cd "$2" && pwd)
meson=${MESON:-meson}
python=/usr/bin/python3

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uvm-python-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
unset LD_LIBRARY_PATH PYTHONPATH
# pip as a user runs it, minus whatever this machine's pip configuration
# says (an index, a cache, a user site).
export PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
  PIP_NO_INPUT=1 PYTHONNOUSERSITE=1

version=$("$meson" introspect "$builddir" --projectinfo |
          "$python" -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[ -n "$version" ] || fail "no project version from meson introspect $builddir"

# ---- 1. libuvm, installed into a scratch root -------------------------------
root=$tmp/root
"$meson" install -C "$builddir" --no-rebuild --destdir "$root" --quiet \
  > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "meson install"; }
mapfile -t pcs < <(find "$root" -name libuvm.pc)
[ "${#pcs[@]}" -eq 1 ] || fail "expected one installed libuvm.pc, found: ${pcs[*]:-none}"
prefix=$(PKG_CONFIG_PATH=$(dirname "${pcs[0]}") pkg-config --variable=prefix libuvm)
libdir=$(PKG_CONFIG_PATH=$(dirname "${pcs[0]}") pkg-config --variable=libdir libuvm)
mkdir "$tmp/pc"
sed "s|^prefix=.*|prefix=$root$prefix|" "${pcs[0]}" > "$tmp/pc/libuvm.pc"
export PKG_CONFIG_PATH=$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

# ---- 2. pip install --no-build-isolation, offline ---------------------------
# A copy without what an earlier in-tree build may have left (pip builds in
# the directory it is given).
cp -r "$srcroot/bindings/python" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
site=$tmp/site
"$python" -m pip install --no-build-isolation --no-deps --no-index --target "$site" "$tmp/src" \
  > "$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log" >&2; fail "pip install --no-build-isolation"; }
ls "$site"/uvm/_uvm*.so > /dev/null 2>&1 || { cat "$tmp/pip.log" >&2; fail "pip installed no uvm/_uvm*.so"; }

# ---- 3. The installed package ----------------------------------------------
LD_LIBRARY_PATH=$root$libdir PYTHONPATH=$site "$python" -W error - "$site" "$root$libdir" "$version" <<'EOF' ||
import os, sys
site, libdir, version = sys.argv[1:]
import uvm

def check(ok, what):
    if not ok:
        sys.exit("FAIL: " + what)

check(os.path.dirname(os.path.dirname(os.path.abspath(uvm.__file__))) == site,
      "uvm imported from %s, not from %s" % (uvm.__file__, site))
with open("/proc/self/maps") as f:
    loaded = {line.split()[-1] for line in f if "libuvm.so" in line}
check(loaded == {os.path.realpath(os.path.join(libdir, "libuvm.so.0"))},
      "libuvm loaded from %s, not %s" % (sorted(loaded), libdir))
check(uvm.version == version, "uvm.version is %r, not %r" % (uvm.version, version))
try:
    kernel = os.path.join(os.environ["TMPDIR"], "vmlinuz")
    open(kernel, "w").close()
    vm = uvm.Vm("python-install-check", kernel=kernel, vcpus=0)
    vm.validate()
except uvm.InvalidDefinition as e:
    check("vcpus" in str(e), "the InvalidDefinition does not name vcpus: %s" % e)
else:
    check(False, "vcpus=0 raised no uvm.InvalidDefinition")
print("installed: uvm %s from %s on %s" % (uvm.version, site, sorted(loaded)[0]))
EOF
  fail "the installed package"

echo "PASS: pip install --no-build-isolation of bindings/python against the installed libuvm $version"
