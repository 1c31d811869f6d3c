# SPDX-License-Identifier: LGPL-2.1-or-later
"""The console from Python: Vm.open_console() (a socket typed into and read),
Vm.wait_for_console(), the log directory that keeps the console log."""

import os
import time

import pytest

import uvm
from conftest import (CH_STANDIN, INITRAMFS, KERNEL, needs_guest, needs_standin)


def shell_vm(request, workdir, name, hypervisor="qemu"):
    """The test guest with a shell on its console (uvm.shell=1) and its
    console log in workdir/logs."""
    rundir = os.path.join(workdir, "run", name)
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    request.node.uvm_rundir = rundir
    kw = {"accel": "tcg"} if hypervisor == "qemu" else {"accel": "auto",
                                                         "hypervisor_path": CH_STANDIN}
    return uvm.Vm(name, hypervisor, kernel=KERNEL, initramfs=INITRAMFS,
                  cmdline="console=ttyS0 quiet uvm.shell=1", memory_mib=256,
                  runtime_dir=rundir, log_dir=logs, devices=[uvm.Device.console()], **kw)


def read_until(sock, text, timeout=30.0):
    sock.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    while text not in got:
        assert time.monotonic() < deadline, "no %r on the console; read %r" % (text, got)
        chunk = sock.recv(4096)
        assert chunk, "the console closed; read %r" % got
        got += chunk
    return got


def typed_answer(request, workdir, hypervisor):
    vm = shell_vm(request, workdir, "py-typed-" + hypervisor[:2], hypervisor)
    vm.start()
    try:
        vm.wait_for_console("UVM-GUEST-SHELL", timeout=90)
        with vm.open_console() as console:
            console.sendall(b"echo $((6*7))\n")
            read_until(console, b"\n42\r\n")
        log = vm.console_path
    finally:
        vm.stop()
    with open(log, "rb") as f:
        session = f.read()
    assert b"UVM-GUEST-READY" in session
    assert b"echo $((6*7))" in session
    assert b"\n42\r\n" in session
    assert log == os.path.join(vm.log_dir, vm.name + "-console.log")


@needs_guest
def test_a_typed_command_is_answered_and_the_log_outlives_the_stop(request, workdir):
    typed_answer(request, workdir, "qemu")


@needs_standin
def test_the_same_on_the_cloud_hypervisor_standin(request, workdir):
    typed_answer(request, workdir, "cloud-hypervisor")


@needs_standin
def test_wait_for_console_returns_the_line_and_times_out(request, workdir):
    vm = shell_vm(request, workdir, "py-wait", "cloud-hypervisor")
    events = []
    vm.on_event(lambda v, e: events.append(e) if e.kind == uvm.EventKind.CONSOLE_MATCH else None)
    vm.start()
    try:
        line = vm.wait_for_console("^UVM-GUEST-READY$", timeout=30)
        assert line == "UVM-GUEST-READY"
        assert len(events) == 1
        before = time.monotonic()
        with pytest.raises(uvm.Timeout):
            vm.wait_for_console("never-printed", timeout=0.3)
        assert time.monotonic() - before >= 0.3
    finally:
        vm.stop()


def test_open_console_without_a_running_vm_raises_not_running(workdir):
    vm = uvm.Vm("py-idle", kernel=KERNEL, devices=[uvm.Device.console()],
                runtime_dir=os.path.join(workdir, "run"))
    with pytest.raises(uvm.NotRunning):
        vm.open_console()
    with pytest.raises(uvm.NotRunning):
        vm.wait_for_console("x", timeout=1)
