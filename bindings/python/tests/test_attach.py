# SPDX-License-Identifier: LGPL-2.1-or-later
"""Detached VMs: list_vms() and Vm.attach() (qemu under TCG and the
cloud-hypervisor stand-in)."""

import gc
import os
import time

import pytest

import uvm
from conftest import make_vm, needs_guest, needs_standin

S = uvm.State


def _reap_children(timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            assert time.monotonic() < deadline, "a child of the detached VM still runs"
            time.sleep(0.02)


def _detached_then_attached(request, workdir, hypervisor):
    root = os.path.join(workdir, "run")
    vm = make_vm(request, workdir, "pyattach", hypervisor, lifetime="detached")
    assert vm.lifetime == uvm.Lifetime.DETACHED
    vm.start()
    pid = vm.pid
    # Dropped: a detached VM runs on, unsupervised.
    del vm
    gc.collect()
    os.kill(pid, 0)

    listed = {info.name: info for info in uvm.list_vms(root)}
    info = listed["pyattach"]
    assert info.pid == pid and info.detached and not info.stale
    assert info.controller_pid == 0
    assert info.hypervisor == hypervisor

    vm = uvm.Vm.attach("pyattach", root=root)
    try:
        assert vm.state == S.RUNNING and vm.pid == pid
        with pytest.raises(uvm.Busy) as busy:
            uvm.Vm.attach(info.runtime_dir)
        assert ("process %d" % os.getpid()) in str(busy.value)
        vm.pause()
        assert vm.state == S.PAUSED
        vm.resume()
        assert vm.state == S.RUNNING
        vm.stop(timeout=0)
        assert vm.state == S.STOPPED
        assert vm.exit_status == (-1, -1)  # not our child as far as the VM knows
    finally:
        if vm.state not in (S.STOPPED, S.CRASHED):
            vm.kill()
        # This process started it and let go: it is still the parent of
        # the hypervisor and its console relay and reaps them
        # (uvm_vm_set_lifetime() says so).
        os.waitpid(pid, 0)
        _reap_children()
    assert not os.path.exists(info.runtime_dir)
    assert uvm.list_vms(root) == []
    with pytest.raises(uvm.NotFound):
        uvm.Vm.attach("pyattach", root=root)


@needs_guest
def test_detached_qemu_vm_is_listed_attached_and_stopped(request, workdir):
    _detached_then_attached(request, workdir, "qemu")


@needs_standin
def test_detached_standin_vm_is_listed_attached_and_stopped(request, workdir):
    _detached_then_attached(request, workdir, "cloud-hypervisor")
