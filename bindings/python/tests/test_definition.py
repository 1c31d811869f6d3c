# SPDX-License-Identifier: LGPL-2.1-or-later
"""Definitions, validation, the launch plan and the error mapping: nothing runs."""

import json
import os

import pytest

import uvm
from conftest import child_pids


def test_version_is_the_library_version():
    assert uvm.version == "0.3.0"


def test_supports_takes_names_and_enums():
    assert uvm.supports("qemu", uvm.Feature.RAW_QMP)
    assert not uvm.supports("cloud-hypervisor", "raw-qmp")
    assert uvm.supports(uvm.Hypervisor.CLOUD_HYPERVISOR, uvm.Feature.RAW_REST)


def test_hypervisor_names_are_the_librarys():
    assert uvm.hypervisor_names() == ["qemu", "cloud-hypervisor"]
    assert uvm.Vm("hv", "cloud-hypervisor").hypervisor == uvm.Hypervisor.CLOUD_HYPERVISOR


def test_an_unknown_hypervisor_name_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError) as info:
        uvm.Vm("hv", "kvm")
    assert "'kvm'" in str(info.value)
    assert "qemu, cloud-hypervisor" in str(info.value)


def test_kernel_cmdline_and_its_old_name_agree(workdir):
    vm = uvm.Vm("k", kernel=os.path.join(workdir, "vmlinuz"), cmdline="console=ttyS0")
    assert vm.kernel_cmdline == "console=ttyS0"
    assert vm.cmdline == vm.kernel_cmdline


def test_enums_mirror_the_c_values():
    assert uvm.State.RUNNING == 2 and uvm.State.CRASHED == 6
    assert uvm.EventKind.HYPERVISOR_EXITED == 4
    assert uvm.UplinkMode.TAP_NAT == 3 and uvm.Feature.FIRMWARE_BOOT == 16


def test_errors_form_one_hierarchy_with_the_c_code():
    assert issubclass(uvm.Timeout, uvm.Error) and issubclass(uvm.Timeout, TimeoutError)
    assert issubclass(uvm.PermissionDenied, PermissionError)
    with pytest.raises(uvm.InvalidDefinition) as info:
        uvm.Vm("bad name!").validate()
    assert info.value.code == 1
    assert "name" in str(info.value)


def test_invalid_definition_raises_before_anything_spawns(workdir):
    rundir = os.path.join(workdir, "run", "x")
    vm = uvm.Vm("x", kernel=os.path.join(workdir, "no-such-kernel"), runtime_dir=rundir)
    with pytest.raises(uvm.InvalidDefinition) as info:
        vm.start()
    assert "kernel" in str(info.value)
    assert not os.path.exists(rundir)
    assert child_pids() == []
    assert vm.state == uvm.State.DEFINED and vm.pid is None


def test_unsupported_feature_maps_to_unsupported(workdir):
    vm = uvm.Vm("ch", "cloud-hypervisor", kernel=os.path.join(workdir, "k"),
                machine="microvm", hypervisor_path="/bin/true")
    with pytest.raises((uvm.Unsupported, uvm.InvalidDefinition)):
        vm.validate()


def test_launch_plan_and_command_line_are_readable(workdir):
    kernel = os.path.join(workdir, "vmlinuz")
    open(kernel, "wb").close()
    vm = uvm.Vm("plan", kernel=kernel, cmdline="console=ttyS0", accel="tcg",
                runtime_dir=os.path.join(workdir, "plan"), extra_args=["-S"],
                devices=[uvm.Device.console(), uvm.Device.rng()])
    # The console relay (a helper) starts first, as a shell would: "... & qemu".
    assert vm.command_line.startswith("uvm-console-relay ")
    assert " & qemu-system-x86_64 " in vm.command_line
    assert "-accel tcg" in vm.command_line and vm.command_line.endswith("-S")
    assert vm.launch_plan.startswith("#!/bin/sh")
    assert "runtime directory: %s" % os.path.join(workdir, "plan") in vm.launch_plan
    assert [d.id for d in vm.devices] == ["console0", "rng0"]


def test_initramfs_without_kernel_is_refused_at_once():
    with pytest.raises(uvm.InvalidDefinition):
        uvm.Vm("k", initramfs="/initrd")


def test_definition_properties_round_trip(workdir):
    st = uvm.Storage(os.path.join(workdir, "d.qcow2"), format="qcow2", read_only=True,
                     create_size=1 << 30)
    assert (st.format, st.read_only, st.create_size) == (uvm.StorageFormat.QCOW2, True, 1 << 30)
    net = uvm.Network.uplink("up", mode="tap-nat")
    assert net.kind == uvm.NetworkKind.UPLINK and net.uplink_mode == uvm.UplinkMode.TAP_NAT
    assert uvm.Network.bridge("b", "br0").host_bridge == "br0"
    assert uvm.Network.tap("t", "tap7").tap_name == "tap7"
    nic = uvm.Device.net(uvm.Network.isolated("lan"), mac="52:54:00:00:00:01", tap_name="uvtx")
    nic.id = "lan0"
    nic.hotpluggable = True
    disk = uvm.Device.disk(st)
    vm = uvm.Vm("props", vcpus=2, memory_mib=512, machine="q35", confined=True,
                devices=[nic, disk])
    assert (vm.vcpus, vm.memory_mib, vm.machine, vm.confined) == (2, 512, uvm.Machine.Q35, True)
    assert nic.network.name == "lan" and disk.storage is st and nic.tap_name == "uvtx"
    assert nic.id == "lan0" and nic.hotpluggable and nic.mac == "52:54:00:00:00:01"
    with pytest.raises(uvm.InvalidDefinition):
        uvm.Vm("other").add_device(nic)
    with pytest.raises(uvm.InvalidDefinition):
        nic.id = "renamed"


def test_gateway_is_held_weakly():
    gw, ws = uvm.Vm("gw"), uvm.Vm("ws")
    ws.gateway = gw
    assert ws.gateway is gw
    del gw
    assert ws.gateway is None


# ---- definition documents (docs/definition-schema.md) ----------------------

WHONIX_PAIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "json",
                           "whonix-pair.json")


def test_from_json_reads_a_document_of_one_vm():
    vm = uvm.Vm.from_json(json.dumps({
        "schema": 1,
        "networks": [{"name": "wan", "kind": "uplink", "uplink_mode": "passt"}],
        "vms": [{"name": "j", "hypervisor": "cloud-hypervisor", "kernel": "/k", "vcpus": 2,
                 "memory": "1GiB", "user": "caller",
                 "devices": [{"kind": "net", "network": "wan", "id": "up"},
                             {"kind": "disk", "path": "/d.qcow2", "format": "qcow2",
                              "read_only": True},
                             {"kind": "console"}]}]}))
    assert (vm.name, vm.hypervisor, vm.kernel) == ("j", uvm.Hypervisor.CLOUD_HYPERVISOR, "/k")
    assert (vm.vcpus, vm.memory_mib, vm.user) == (2, 1024, "caller")
    nic, disk, console = vm.devices
    assert nic.id == "up" and nic.network.uplink_mode == uvm.UplinkMode.PASST
    assert disk.storage.format == uvm.StorageFormat.QCOW2 and disk.storage.read_only
    assert console.kind == uvm.DeviceKind.CONSOLE


def test_from_json_errors_name_the_json_path():
    with pytest.raises(uvm.InvalidDefinition) as info:
        uvm.Vm.from_json('{"schema": 1, "vms": [{"name": "e", "hypervisor": "qemu", '
                         '"devices": [{"kind": "net", "network": "lan"}]}]}')
    assert str(info.value) == 'vms[0].devices[0].network: no network \'lan\' in "networks"'
    with pytest.raises(TypeError):
        uvm.Vm.from_json(None)


def test_to_json_reads_back_to_the_same_launch_plan(workdir):
    kernel = os.path.join(workdir, "vmlinuz")
    open(kernel, "wb").close()
    vm = uvm.Vm("rt", kernel=kernel, cmdline="console=ttyS0", accel="tcg", memory_mib=384,
                runtime_dir=os.path.join(workdir, "rt"), extra_args=["-S", "a b"],
                devices=[uvm.Device.console(), uvm.Device.rng(),
                         uvm.Device.net(uvm.Network.isolated("lan"))])
    text = vm.to_json()
    assert json.loads(text)["schema"] == 1
    copy = uvm.Vm.from_json(text)
    assert copy.launch_plan == vm.launch_plan
    assert copy.command_line == vm.command_line
    assert copy.to_json() == text


def test_vms_from_json_shares_networks_and_sets_the_gateway():
    with open(WHONIX_PAIR) as f:
        gw, ws = uvm.vms_from_json(f.read())
    assert ws.gateway is gw and gw.gateway is None
    assert gw.devices[2].network is ws.devices[3].network
    assert gw.devices[2].network.name == "whonix-internal"


def test_vms_to_json_writes_the_pair_and_its_shared_network():
    lan = uvm.Network.isolated("lan")
    gw = uvm.Vm("gw", devices=[uvm.Device.net(lan)])
    ws = uvm.Vm("ws", devices=[uvm.Device.net(lan)])
    ws.gateway = gw
    document = json.loads(uvm.vms_to_json([gw, ws]))
    assert document["networks"] == [{"name": "lan", "kind": "isolated"}]
    assert document["vms"][1]["gateway"] == "gw"
    with pytest.raises(uvm.InvalidDefinition) as info:
        ws.to_json()
    assert "gateway 'gw'" in str(info.value)
    with pytest.raises(ValueError):
        uvm.vms_to_json([])
