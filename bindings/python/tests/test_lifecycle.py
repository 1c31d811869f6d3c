# SPDX-License-Identifier: LGPL-2.1-or-later
"""Booting the real test guest (qemu TCG) and the cloud-hypervisor stand-in."""

import gc
import os
import signal
import time
import warnings

import pytest

import uvm
from conftest import console_text, make_vm, needs_guest, needs_standin, wait_console

K = uvm.EventKind
S = uvm.State


def summary(events):
    """Kinds of the events, state changes as their new state."""
    out = []
    for ev in events:
        if ev.kind == K.STATE_CHANGED:
            out.append(ev.state.name.lower())
        elif ev.kind in (K.GUEST_SHUTDOWN, K.HYPERVISOR_EXITED):
            out.append(ev.kind.name.lower())
    return out


GRACEFUL = ["starting", "running", "stopping", "guest_shutdown", "hypervisor_exited", "stopped"]


@needs_guest
def test_graceful_stop_lets_the_guest_power_off(request, workdir):
    vm = make_vm(request, workdir, "py-graceful")
    vm.start()
    assert vm.state == S.RUNNING and vm.pid is not None
    wait_console(vm, "UVM-GUEST-READY")
    vm.stop(timeout=20)
    assert "UVM-GUEST-POWEROFF" in console_text(vm)
    assert vm.state == S.STOPPED and vm.pid is None
    assert vm.exit_status == (0, 0)


@needs_guest
def test_forced_stop_ends_a_guest_that_ignores_the_power_button(request, workdir):
    vm = make_vm(request, workdir, "py-forced", cmdline_extra="uvm.powerbutton=ignore")
    vm.start()
    wait_console(vm, "UVM-GUEST-READY")
    t0 = time.monotonic()
    vm.stop(timeout=1)
    elapsed = time.monotonic() - t0
    assert vm.state == S.STOPPED and vm.pid is None
    assert "UVM-GUEST-POWEROFF" not in console_text(vm)
    assert 1.0 <= elapsed < 1 + 3 * 2 + 2  # the deadline, then at most three grace periods


@needs_guest
def test_signal_handlers_run_during_a_stop_and_can_kill(request, workdir):
    # A second Ctrl-C during a graceful stop: the handler runs while stop()
    # waits (it iterates, it is not one blocking C call) and its kill ends
    # the stop long before the 30 s deadline.
    vm = make_vm(request, workdir, "py-sigstop", cmdline_extra="uvm.powerbutton=ignore")
    vm.start()
    wait_console(vm, "UVM-GUEST-READY")
    handled = []

    def on_alarm(signum, frame):
        handled.append(time.monotonic())
        vm.kill()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        t0 = time.monotonic()
        vm.stop(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert handled, "the signal handler did not run during stop()"
    assert elapsed < 5, elapsed
    assert vm.exit_status is not None and vm.exit_status[1] == 9  # our SIGKILL, not the escalation
    assert vm.pid is None


@needs_guest
def test_events_arrive_in_order_through_the_iterator_and_a_callback(request, workdir):
    vm = make_vm(request, workdir, "py-events")
    seen = []
    handle = vm.on_event(lambda v, ev: seen.append((v, ev)))
    events = vm.events(timeout=10)
    vm.start()
    wait_console(vm, "UVM-GUEST-READY")
    vm.stop(timeout=20)
    got = list(events)
    assert summary(got) == GRACEFUL
    assert [str(e) for _, e in seen] == [str(e) for e in got]
    assert all(v is vm for v, _ in seen)
    assert got[-2].exit_code == 0 and got[-2].exit_signal == 0
    assert [e.timestamp for e in got] == sorted(e.timestamp for e in got)
    vm.remove_event_handler(handle)


@needs_guest
def test_an_exception_in_a_callback_surfaces_from_the_iterating_call(request, workdir):
    vm = make_vm(request, workdir, "py-raise")

    def callback(_vm, ev):
        if ev.kind == K.STATE_CHANGED and ev.state == S.RUNNING:
            raise ValueError("from the callback")

    vm.on_event(callback)
    with pytest.raises(ValueError, match="from the callback"):
        vm.start()
    assert vm.state == S.RUNNING  # the start itself completed
    vm.stop(timeout=0)
    assert vm.state == S.STOPPED


@needs_guest
def test_a_hypervisor_killed_from_outside_reports_signal_9_and_crashes(request, workdir):
    vm = make_vm(request, workdir, "py-killed")
    vm.start()
    events = vm.events(timeout=10)
    os.kill(vm.pid, signal.SIGKILL)
    exited = [e for e in events if e.kind == K.HYPERVISOR_EXITED]
    assert len(exited) == 1
    assert exited[0].exit_signal == 9 and exited[0].exit_code == -1
    assert vm.state == S.CRASHED
    assert vm.exit_status == (-1, 9)


@needs_guest
def test_start_timeout_cancels_the_start(request, workdir):
    vm = make_vm(request, workdir, "py-timeout")
    with pytest.raises(uvm.Timeout):
        vm.start(timeout=0.001)
    assert vm.pid is None and vm.state != S.RUNNING


@needs_guest
def test_with_statement_always_stops(request, workdir):
    vm = make_vm(request, workdir, "py-with")
    with pytest.raises(RuntimeError):
        with vm:
            assert vm.state == S.RUNNING
            raise RuntimeError("body failed")
    assert vm.state == S.STOPPED and vm.pid is None


@needs_guest
def test_garbage_collecting_a_running_vm_kills_it(request, workdir):
    vm = make_vm(request, workdir, "py-gc")
    vm.start()
    pid, rundir = vm.pid, vm.runtime_dir
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del vm
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "py-gc" in str(w.message)
               for w in caught)
    assert not os.path.exists("/proc/%d" % pid)  # killed and reaped
    assert not os.path.exists(rundir)


@needs_standin
def test_the_same_lifecycle_on_the_cloud_hypervisor_standin(request, workdir):
    vm = make_vm(request, workdir, "py-ch", hypervisor="cloud-hypervisor")
    events = vm.events(timeout=10)
    with vm:
        assert vm.state == S.RUNNING
        wait_console(vm, "UVM-GUEST-READY")
        status, body = vm.ch_request("GET", "vm.info")
        assert status == 200 and '"state"' in body
    assert vm.state == S.STOPPED
    kinds = summary(events)
    assert kinds[:3] == ["starting", "running", "stopping"]
    assert kinds[-2:] == ["hypervisor_exited", "stopped"]


# The repository's tests/scripted-qemu: a QMP peer libuvm starts in place of qemu.
SCRIPTED_QEMU = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                             "tests", "scripted-qemu")


@needs_guest
def test_lost_control_connection_is_an_event_and_fails_fast(request, workdir, monkeypatch):
    # tests/scripted-qemu closes its QMP socket after the start and keeps running.
    monkeypatch.setenv("UVM_SCRIPTED_QEMU_MODE", "close-after-ready")
    vm = make_vm(request, workdir, "py-lost", hypervisor_path=SCRIPTED_QEMU)
    assert vm.control_timeout == 10.0  # UVM_VM_DEFAULT_CONTROL_TIMEOUT_MS
    kinds = []
    vm.on_event(lambda vm, ev: kinds.append(ev.kind))
    vm.start()
    assert vm.control_lost is None
    deadline = time.monotonic() + 5
    while K.CONTROL_LOST not in kinds and time.monotonic() < deadline:
        uvm.iterate(0.1)
    assert K.CONTROL_LOST in kinds
    assert "control connection" in vm.control_lost
    with pytest.raises(uvm.ControlLost):
        vm.resume()
    t0 = time.monotonic()
    vm.stop(timeout=60)  # straight to signals, not a minute of power button
    assert time.monotonic() - t0 < 4
    assert vm.state == S.STOPPED


@needs_guest
def test_control_timeout_raises_timeout(request, workdir, monkeypatch):
    monkeypatch.setenv("UVM_SCRIPTED_QEMU_MODE", "mute-after-ready")
    vm = make_vm(request, workdir, "py-mute", hypervisor_path=SCRIPTED_QEMU, control_timeout=0.3)
    assert vm.control_timeout == 0.3
    vm.start()
    with pytest.raises(uvm.Timeout):
        vm.pause()
    assert vm.control_lost is not None
    vm.stop(timeout=60)
    assert vm.state == S.STOPPED


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


@needs_guest
@pytest.mark.skipif(os.geteuid() != 0, reason="changing users needs root")
def test_hypervisor_runs_as_its_own_user_without_capabilities(request, workdir):
    vm = make_vm(request, workdir, "py-user", start_paused=True)
    assert vm.user == "dynamic" and vm.run_user is None
    vm.start()
    status = proc_status(vm.pid)
    uid, gid = vm.run_user
    assert uid != 0 and gid != 0
    assert status["Uid"] == [str(uid)] * 4 and status["Gid"] == [str(gid)] * 4
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[cap][0], 16) == 0, cap
    assert status["NoNewPrivs"] == ["1"]
    vm.stop(timeout=0)
    vm.user = "caller"
    assert vm.user == "caller"
    vm.start()
    status = proc_status(vm.pid)
    assert status["Uid"] == ["0"] * 4 and int(status["CapEff"][0], 16) == 0
    assert vm.run_user == (0, 0)
    vm.stop(timeout=0)
