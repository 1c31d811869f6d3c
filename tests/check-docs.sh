#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every public function has a gi-docgen doc comment.

(A Python script despite its name: the test suite calls every ABI/API
check tests/check-*.sh.)

For each function declared after a UVM_AVAILABLE_IN_* or
UVM_DEPRECATED_IN_*[_FOR (f)] macro in the public headers (include/uvm/*.h,
uvm-version.h.in, and the GENERATED_HEADERs made at build time), the lines
immediately before the macro must be a doc comment that opens with

    /**
     * function_name:

and documents every parameter (" * @param:" lines) and, for a function that
returns a value, has a "Returns:" section.  G_DECLARE_*_TYPE lines are
exempt (their get_type function is generated).

usage: check-docs.sh INCLUDE_UVM_DIR [GENERATED_HEADER...]
"""

import pathlib
import re
import sys

MACRO = re.compile(r"^\s*UVM_(?:AVAILABLE|DEPRECATED)_IN_\w+\b(?:\s*\([^)]*\))?\s*(.*)$")
G_DECLARE = re.compile(r"^\s*G_DECLARE_\w+_TYPE\s*\(")
NAME = re.compile(r"(\w+)\s*\(")


def declaration_after(lines, i, rest):
    """The declaration text from the macro line @i up to its ';'."""
    text = rest
    j = i
    while ";" not in text and not G_DECLARE.match(text):
        j += 1
        if j >= len(lines):
            break
        text += " " + lines[j].strip()
    return text.split(";")[0]


def parameters(decl):
    """Parameter names of a C function declaration ('void' gives none)."""
    start = decl.index("(")
    depth, end = 0, None
    for k in range(start, len(decl)):
        if decl[k] == "(":
            depth += 1
        elif decl[k] == ")":
            depth -= 1
            if depth == 0:
                end = k
                break
    inside = decl[start + 1:end].strip()
    if inside in ("", "void"):
        return []
    names = []
    for param in inside.split(","):
        param = param.strip()
        if param == "...":
            names.append("...")
            continue
        m = re.search(r"(\w+)\s*(\[[^\]]*\])?$", param)
        names.append(m.group(1) if m else param)
    return names


def returns_value(decl, name):
    before = decl[: decl.index(name)]
    before = re.sub(r"\b(const|G_GNUC_\w+|extern|static|inline)\b", "", before)
    return before.strip() != "void"


def doc_comment_before(lines, i):
    """The doc comment ending on line i-1, as a list of lines, or None."""
    end = i - 1
    if end < 0 or not lines[end].rstrip().endswith("*/"):
        return None
    start = end
    while start >= 0 and not lines[start].lstrip().startswith("/*"):
        start -= 1
    if start < 0 or not lines[start].lstrip().startswith("/**"):
        return None
    return lines[start:end + 1]


def check_header(path):
    problems = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = MACRO.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        decl = declaration_after(lines, i, m.group(1).strip())
        if G_DECLARE.match(decl):
            continue
        nm = NAME.search(decl)
        if not nm:
            problems.append(f"{path.name}:{i + 1}: cannot parse the declaration '{decl}'")
            continue
        name = nm.group(1)
        where = f"{path.name}:{i + 1}: {name}"
        doc = doc_comment_before(lines, i)
        if doc is None:
            problems.append(f"{where}: no doc comment immediately before the declaration")
            continue
        if doc[0].strip() != "/**" or len(doc) < 2 or \
                not re.match(r"^\s*\*\s+" + re.escape(name) + r":", doc[1]):
            problems.append(f"{where}: the doc comment before it does not open with "
                            f"'/**' and ' * {name}:'")
            continue
        text = "\n".join(doc)
        for param in parameters(decl[nm.start():]):
            if not re.search(r"^\s*\*\s+@" + re.escape(param) + r":", text, re.M):
                problems.append(f"{where}: parameter '{param}' is not documented (@{param}:)")
        if returns_value(decl, name) and not re.search(r"^\s*\*\s+Returns:", text, re.M):
            problems.append(f"{where}: returns a value but has no 'Returns:' section")
    return problems


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    incdir = pathlib.Path(argv[1])
    headers = sorted(incdir.glob("*.h")) + sorted(incdir.glob("*.h.in"))
    headers += [pathlib.Path(p) for p in argv[2:]]
    if not headers:
        print(f"check-docs: no headers in {incdir}", file=sys.stderr)
        return 2
    problems, count = [], 0
    for header in headers:
        count += sum(1 for l in header.read_text().splitlines()
                     if MACRO.match(l) and not l.lstrip().startswith("#"))
        problems += check_header(header)
    if count == 0:
        print(f"check-docs: no UVM_AVAILABLE_IN_* declarations in {incdir}", file=sys.stderr)
        return 2
    if problems:
        print("FAIL: public functions without a complete doc comment:")
        for p in problems:
            print("    " + p)
        return 1
    print(f"ok: {count} UVM_AVAILABLE_IN_* declarations in {len(headers)} headers, "
          "every function documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
