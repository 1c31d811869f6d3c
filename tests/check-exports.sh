#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The exported symbols of libuvm.so are exactly the public API:
#   1. the dynamic symbols the library defines (less the version node
#      symbol, e.g. UVM_0.1) are exactly the names in the version script;
#   2. every one starts with uvm_ and carries a default version (@@UVM_x.y);
#   3. every function declared with UVM_AVAILABLE_IN_* or UVM_DEPRECATED_IN_*
#      in the public headers (and G_DECLARE_FINAL_TYPE's NAME_get_type) is in
#      the version script, and every name of the version script is declared.
#
# GENERATED_HEADERs are public headers made at build time (uvm-enum-types.h).
#
# usage: check-exports.sh LIBUVM.SO LIBUVM.SYM INCLUDE_UVM_DIR [GENERATED_HEADER...]
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 LIBUVM.SO LIBUVM.SYM INCLUDE_UVM_DIR [GENERATED_HEADER...]" >&2
  exit 2
fi
lib=$1 sym=$2 incdir=$3
shift 3
generated=("$@")
for f in "$lib" "$sym" "${generated[@]}"; do
  [ -r "$f" ] || { echo "check-exports: cannot read $f" >&2; exit 2; }
done
[ -d "$incdir" ] || { echo "check-exports: no directory $incdir" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

fail () {
  echo "FAIL: $1"
  sed 's/^/    /' "$2"
  failed=1
}

# Names of the version script's global sections: "name;" lines, comments
# stripped.  "local: *;" has no name and so is left out.
perl -0777 -ne 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g; print "$1\n" while /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*;/mg' \
  "$sym" | LC_ALL=C sort -u > "$work/sym"
# The version nodes ("UVM_0.1 {"), which the library defines as absolute
# symbols of their own.
perl -0777 -ne 's{/\*.*?\*/}{}gs; print "$1\n" while /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\{/mg' \
  "$sym" | LC_ALL=C sort -u > "$work/nodes"

if [ ! -s "$work/sym" ]; then
  echo "check-exports: no symbols found in $sym" >&2
  exit 2
fi

# 1. Defined dynamic symbols == version script.
nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' | LC_ALL=C sort -u \
  | LC_ALL=C comm -23 - "$work/nodes" > "$work/exported"
LC_ALL=C comm -23 "$work/exported" "$work/sym" > "$work/extra"
LC_ALL=C comm -13 "$work/exported" "$work/sym" > "$work/missing"
[ -s "$work/extra" ] && fail "exported by $lib but not listed in $sym:" "$work/extra"
[ -s "$work/missing" ] && fail "listed in $sym but not exported by $lib:" "$work/missing"

# 2. Prefix and version of every exported symbol.
grep -v '^uvm_' "$work/exported" > "$work/unprefixed" || true
[ -s "$work/unprefixed" ] && fail "exported symbols without the uvm_ prefix:" "$work/unprefixed"

# readelf columns: Num: Value Size Type Bind Vis Ndx Name
readelf --dyn-syms -W "$lib" \
  | awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $8 != "" { print $8 }' > "$work/versioned-names"
LC_ALL=C comm -23 "$work/exported" \
  <(grep '@@' "$work/versioned-names" | sed 's/@@.*//' | LC_ALL=C sort -u) > "$work/unversioned"
[ -s "$work/unversioned" ] && fail "exported symbols without a default version (@@NODE):" \
  "$work/unversioned"
grep '@@' "$work/versioned-names" | sed 's/.*@@//' | LC_ALL=C sort -u \
  | LC_ALL=C comm -23 - "$work/nodes" > "$work/unknown-nodes"
[ -s "$work/unknown-nodes" ] && fail "symbol versions that are not nodes of $sym:" \
  "$work/unknown-nodes"

# 3. Every UVM_AVAILABLE_IN_* / UVM_DEPRECATED_IN_*[_FOR (f)] declaration of
#    the public headers is in the version script.  The macro stands on its
#    own line before the declaration (house style); "#define
#    UVM_AVAILABLE_IN_..." lines do not start with it and so are not matched.
headers=("$incdir"/*.h)
[ -e "$incdir/uvm-version.h.in" ] && headers+=("$incdir/uvm-version.h.in")
headers+=("${generated[@]}")
perl -0777 -ne '
  s{/\*.*?\*/}{}gs;
  while (/^[ \t]*UVM_(?:AVAILABLE|DEPRECATED)_IN_\w+(?:[ \t]*\([^)\n]*\))?[ \t]*\n?(G_DECLARE_\w+\s*\([^)]*\)|[^;]*;)/mgs) {
    my $decl = $1;
    if ($decl =~ /G_DECLARE_(?:FINAL|DERIVABLE|INTERFACE)_TYPE\s*\(\s*\w+\s*,\s*(\w+)/) {
      print "$1_get_type\n";
    } elsif ($decl =~ /(\w+)\s*\(/) {
      print "$1\n";
    } else {
      print STDERR "check-exports: cannot parse declaration: $decl\n";
      exit 3;
    }
  }' "${headers[@]}" | LC_ALL=C sort -u > "$work/declared"
if [ ! -s "$work/declared" ]; then
  echo "check-exports: no UVM_AVAILABLE_IN_* declarations found under $incdir" >&2
  exit 2
fi
LC_ALL=C comm -23 "$work/declared" "$work/sym" > "$work/undeclared-in-sym"
[ -s "$work/undeclared-in-sym" ] && fail "declared with UVM_AVAILABLE_IN_*/UVM_DEPRECATED_IN_* but not in $sym:" \
  "$work/undeclared-in-sym"
LC_ALL=C comm -13 "$work/declared" "$work/sym" > "$work/sym-not-declared"
[ -s "$work/sym-not-declared" ] && fail "in $sym but declared by no public header with UVM_AVAILABLE_IN_*/UVM_DEPRECATED_IN_*:" \
  "$work/sym-not-declared"

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "ok: $(wc -l < "$work/exported") exported symbols, all uvm_*, all versioned," \
     "matching $(basename "$sym") and the $(wc -l < "$work/declared") declarations of $incdir"
