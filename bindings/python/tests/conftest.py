# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures of the uvm package's tests: the test guest, runtime directories
under a private temporary directory, and a leak check around every test (no
new fd, no child process, no runtime directory left)."""

import gc
import os
import re
import shutil
import tempfile
import time

import pytest

import uvm

GUEST_DIR = os.environ.get("UVM_TEST_GUEST_DIR", "")
KERNEL = os.path.join(GUEST_DIR, "vmlinuz")
INITRAMFS = os.path.join(GUEST_DIR, "initramfs.img")
CH_STANDIN = os.environ.get("UVM_TEST_CH_STANDIN", "")


def guest_available():
    return os.path.isfile(KERNEL) and os.path.isfile(INITRAMFS)


needs_guest = pytest.mark.skipif(not guest_available(),
                                 reason="no test guest: set UVM_TEST_GUEST_DIR (meson test does)")
needs_standin = pytest.mark.skipif(not (guest_available() and os.access(CH_STANDIN, os.X_OK)),
                                   reason="no cloud-hypervisor stand-in: set UVM_TEST_CH_STANDIN")


def open_fds():
    """Open fds and what they are (without the one listdir used)."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    return fds


def child_pids():
    pids = []
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # ppid
            pids.append(int(entry))
    return pids


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="uvm-py-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def glib_singletons():
    """GLib makes some fds once per process (the default main context's
    eventfd, its worker thread's context on a first start): not leaks, so
    made before any test counts fds."""
    uvm.iterate(0.0)
    with pytest.raises(uvm.InvalidDefinition):
        uvm.Vm("warm-up").start()  # no kernel: refused before anything spawns


@pytest.fixture(autouse=True)
def no_leaks(request, glib_singletons):
    """Every test leaves the process as it found it."""
    gc.collect()
    fds = open_fds()
    yield
    gc.collect()
    uvm.iterate(0.0)
    deadline = time.monotonic() + 5
    while child_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child_pids() == [], "child processes left behind"
    leaked = {fd: what for fd, what in open_fds().items() if fd not in fds}
    assert not leaked, "fds left open: %s" % leaked
    rundir = getattr(request.node, "uvm_rundir", None)
    if rundir is not None:
        assert not os.path.exists(rundir), "runtime directory left: %s" % rundir


def make_vm(request, workdir, name, hypervisor="qemu", cmdline_extra="", **kw):
    """A VM booting the test guest, its console in workdir, its runtime
    directory recorded for the leak check."""
    rundir = os.path.join(workdir, "run", name)
    request.node.uvm_rundir = rundir
    cmdline = "console=ttyS0 quiet" + (" " + cmdline_extra if cmdline_extra else "")
    if hypervisor == "qemu":
        kw.setdefault("accel", "tcg")  # plain guests hang under this host's KVM
    else:
        kw.setdefault("accel", "auto")  # the backend refuses TCG
        kw.setdefault("hypervisor_path", CH_STANDIN)
    return uvm.Vm(name, hypervisor, kernel=KERNEL, initramfs=INITRAMFS, cmdline=cmdline,
                  memory_mib=256, runtime_dir=rundir,
                  devices=[uvm.Device.console(os.path.join(workdir, name + ".console"))], **kw)


def console_text(vm):
    try:
        with open(vm.console_path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_console(vm, marker, timeout=60.0):
    """Iterates the main context until `marker` is on the console
    (:meth:`uvm.Vm.wait_for_console`: no polling)."""
    try:
        vm.wait_for_console(re.escape(marker), timeout=timeout)
    except uvm.Error as e:
        raise AssertionError("no %s on the console (%s):\n%s"
                             % (marker, e, console_text(vm)[-2000:])) from e
