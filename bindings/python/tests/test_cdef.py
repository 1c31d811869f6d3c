# SPDX-License-Identifier: LGPL-2.1-or-later
"""The curated cdef is checked against the real headers at build time."""

import os
import sys

import pytest

pytest.importorskip("cffi")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
if not os.environ.get("UVM_BUILD_DIR"):
    pytest.skip("needs UVM_BUILD_DIR (meson test sets it)", allow_module_level=True)

import uvm_build  # noqa: E402
from cffi import VerificationError  # noqa: E402


def compile_with(cdef, tmp_path, name):
    ffi = uvm_build.make_builder(cdef=cdef, module_name=name)
    return ffi.compile(tmpdir=str(tmp_path), verbose=False)


def altered(old, new):
    cdef = uvm_build.read_cdef()
    assert old in cdef
    return cdef.replace(old, new)


def test_the_real_cdef_compiles(tmp_path):
    assert os.path.exists(compile_with(None, tmp_path, "_uvm_cdef_ok"))


def test_a_changed_argument_type_fails_the_build(tmp_path):
    cdef = altered("void uvm_vm_set_vcpus (UvmVm *vm, guint vcpus);",
                   "void uvm_vm_set_vcpus (UvmVm *vm, const char *vcpus);")
    with pytest.raises(VerificationError):
        compile_with(cdef, tmp_path, "_uvm_cdef_bad_arg")


def test_a_narrower_integer_argument_fails_the_build(tmp_path):
    # An implicit conversion cffi's own wrappers would accept silently.
    cdef = altered("void uvm_vm_set_memory (UvmVm *vm, guint64 bytes);",
                   "void uvm_vm_set_memory (UvmVm *vm, guint bytes);")
    with pytest.raises(VerificationError):
        compile_with(cdef, tmp_path, "_uvm_cdef_bad_width")


def test_a_wrong_enum_value_fails_the_build(tmp_path):
    cdef = altered("UVM_ERROR_PERMISSION = 10,", "UVM_ERROR_PERMISSION = 11,")
    with pytest.raises(VerificationError):
        compile_with(cdef, tmp_path, "_uvm_cdef_bad_enum")
