# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python bindings of libuvm (cffi, API mode).

Offline install against an installed libuvm (found with pkg-config), with
Debian's python3-cffi, python3-setuptools and python3-dev:

    pip install --no-build-isolation ./bindings/python

For the in-tree build, meson runs uvm_build.py instead (UVM_BUILD_DIR).
"""

from setuptools import setup

setup(
    name="uvm",
    version="0.3.0",
    description="Launch and control microVMs under qemu and cloud-hypervisor (libuvm)",
    license="LGPL-2.1-or-later",
    packages=["uvm"],
    package_data={"uvm": ["py.typed", "__init__.pyi", "_cdef.h"]},
    python_requires=">=3.9",
    install_requires=["cffi>=1.15"],
    cffi_modules=["uvm_build.py:ffibuilder"],
    zip_safe=False,
)
