#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""uvm-whonix-pair.py: examples/uvm-whonix-pair.c in Python.

A Whonix-style workstation behind a gateway, on qemu or cloud-hypervisor
(--hypervisor, the same for both VMs), with the `uvm` package
(bindings/python).

The gateway gets two NICs: the uplink (--uplink auto|user|passt|tap-nat) as
eth0 and the internal isolated network as eth1; the workstation gets one, on
the internal network, and runs confined (vm.confined) unless --no-confine.
`ws.gateway = gw` puts the workstation behind the gateway: it starts only
once the gateway runs, and the library stops it when the gateway's
hypervisor exits.

Each guest boots a kernel (--kernel/--initramfs for both, or the
--gateway-... and --workstation-... ones) or, on qemu, a disk image through
the firmware (--gateway-disk, --workstation-disk), as real Whonix KVM images
do.  The Whonix addresses are appended to each kernel command line as uvm.ip=
parameters (what the test guest understands); --ping has the workstation
ping the gateway (uvm.ping=).  Both consoles are copied to stdout, each line
prefixed with the VM's name; events go to stderr.

--dry-run prints both launch plans and starts nothing.  Ctrl-C (or the end
of --run-for) stops the workstation, then the gateway, gracefully; a second
Ctrl-C kills both.
"""
import argparse
import os
import signal
import sys
import time

import uvm

PROG = "uvm-whonix-pair"

# Whonix's own addressing, the same as examples/whonix-pair.h of the C
# example (application constants: libuvm does not configure guests).
WHONIX_GATEWAY_INTERNAL = "10.152.152.10/18"
WHONIX_WORKSTATION_INTERNAL = "10.152.152.11/18"
WHONIX_GATEWAY_EXTERNAL = "10.0.2.15/24"
WHONIX_UPLINK_GATEWAY = "10.0.2.2"

STOP_TIMEOUT = 10.0


class UsageError(Exception):
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, description="A Whonix-style workstation behind a gateway.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs CAP_NET_ADMIN (root, or a user and network namespace of your own):\n"
               "  --uplink tap-nat, and --hypervisor cloud-hypervisor, whose internal\n"
               "  network is a bridge of library-made taps and whose default uplink is\n"
               "  tap-nat.\n"
               "The workstation is confined (empty network namespace, no new inet\n"
               "sockets) unless --no-confine. Ctrl-C stops the workstation, then the\n"
               "gateway; a second Ctrl-C stops both at once.")
    p.add_argument("--hypervisor", default="qemu", choices=uvm.hypervisor_names(),
                   help="%s (default qemu), for both VMs" % " or ".join(uvm.hypervisor_names()))
    p.add_argument("--kernel", metavar="PATH", help="kernel of both guests (of those without a disk)")
    p.add_argument("--initramfs", metavar="PATH",
                   help="initramfs of both guests (of those without a disk)")
    for role in ("gateway", "workstation"):
        p.add_argument(f"--{role}-kernel", metavar="PATH", help=f"kernel of the {role}")
        p.add_argument(f"--{role}-initramfs", metavar="PATH", help=f"initramfs of the {role}")
        p.add_argument(f"--{role}-disk", metavar="PATH",
                       help=f"disk image of the {role}, booted by the firmware unless "
                            f"--{role}-kernel (qemu only)")
    p.add_argument("--disk-format", choices=("raw", "qcow2"),
                   help="format of both disks (default: qcow2 for names ending in .qcow2, else raw)")
    p.add_argument("--cmdline", default="console=ttyS0", metavar="ARGS",
                   help="kernel command line of both (default: console=ttyS0)")
    p.add_argument("--uplink", default="auto", choices=("auto", "user", "passt", "tap-nat"),
                   help="the gateway's uplink (default auto)")
    p.add_argument("--memory", type=int, default=256, metavar="MIB",
                   help="memory of each guest in MiB (default 256)")
    p.add_argument("--tcg", action="store_true",
                   help="run under TCG instead of preferring KVM (qemu only)")
    p.add_argument("--no-confine", action="store_true",
                   help="do not confine the workstation's hypervisor")
    p.add_argument("--ping", action="store_true",
                   help="have the workstation ping the gateway (test guest; needs a workstation kernel)")
    p.add_argument("--console-dir", metavar="DIR",
                   help="keep the consoles as DIR/NAME.console.log (default: runtime directory)")
    p.add_argument("--run-for", type=int, default=0, metavar="S",
                   help="stop both gracefully after S seconds (default: on Ctrl-C only)")
    p.add_argument("--dry-run", action="store_true", help="print both launch plans and exit")
    return p.parse_args(argv)


class Payload:
    """What one guest boots: a kernel, a disk through the firmware, or both."""

    def __init__(self, name, role, args):
        self.name = name
        self.kernel = getattr(args, f"{role}_kernel")
        self.initramfs = getattr(args, f"{role}_initramfs")
        self.disk = getattr(args, f"{role}_disk")
        # --kernel and --initramfs only go to a guest without a disk.
        if self.kernel is None and self.disk is None:
            self.kernel = args.kernel
            self.initramfs = self.initramfs or args.initramfs
        if self.kernel is None and self.disk is None:
            raise UsageError(f"the {role} needs a kernel or a disk: give --kernel, "
                             f"--{role}-kernel or --{role}-disk")
        if self.kernel is None and self.initramfs is not None:
            raise UsageError(f"--{role}-initramfs needs a kernel (--{role}-kernel); "
                             "a disk boots through the firmware")
        fmt = args.disk_format
        if fmt is None:
            fmt = "qcow2" if self.disk and self.disk.endswith(".qcow2") else "raw"
        self.disk_format = fmt


def guest_new(payload, args, addresses):
    devices = []
    if payload.disk is not None:
        devices.append(uvm.Device.disk(uvm.Storage(payload.disk, format=payload.disk_format)))
    log = None
    if args.console_dir is not None:
        log = os.path.join(args.console_dir, f"{payload.name}.console.log")
    devices.append(uvm.Device.console(log_path=log))
    return uvm.Vm(payload.name, args.hypervisor,
                  # No kernel: the firmware boots the disk, and the
                  # addresses are the image's own business.
                  kernel=payload.kernel, initramfs=payload.initramfs,
                  cmdline=f"{args.cmdline} {addresses}" if payload.kernel else None,
                  memory_mib=args.memory, accel="tcg" if args.tcg else "auto",
                  devices=devices)


def build_pair(args):
    gp = Payload("whonix-gateway", "gateway", args)
    wp = Payload("whonix-workstation", "workstation", args)
    if args.hypervisor == "cloud-hypervisor" and (gp.disk or wp.disk):
        role = "gateway" if gp.disk else "workstation"
        raise UsageError(f"--{role}-disk: disk images are for qemu; cloud-hypervisor "
                         "boots kernels only here (no firmware boot)")
    if args.ping and wp.kernel is None:
        raise UsageError("--ping needs a workstation kernel (the test guest); a disk "
                         "image has its own tools")
    if args.run_for < 0 or args.memory <= 0:
        raise UsageError("--run-for and --memory must be positive")

    uplink = uvm.Network.uplink("whonix-uplink", mode=args.uplink)
    internal = uvm.Network.isolated("whonix-internal")
    gw = guest_new(gp, args, f"uvm.ip={WHONIX_GATEWAY_EXTERNAL} uvm.ip1={WHONIX_GATEWAY_INTERNAL}")
    gw.add_device(uvm.Device.net(uplink))       # eth0
    gw.add_device(uvm.Device.net(internal))     # eth1
    ws_addresses = f"uvm.ip={WHONIX_WORKSTATION_INTERNAL}"
    if args.ping:
        ws_addresses += " uvm.ping=" + WHONIX_GATEWAY_INTERNAL.split("/")[0]
    ws = guest_new(wp, args, ws_addresses)
    ws.add_device(uvm.Device.net(internal))
    ws.confined = not args.no_confine
    ws.gateway = gw
    return gw, ws


class Console:
    """Copies what a console wrote since the last call to stdout, a whole
    line at a time, prefixed with the VM's name.  The file stays open: the
    runtime directory holding it goes once the hypervisor is gone."""

    def __init__(self, vm):
        self.vm = vm
        self.file = None
        self.pending = b""

    def copy(self, flush=False):
        if self.file is None and self.vm.console_path:
            try:
                self.file = open(self.vm.console_path, "rb")
            except FileNotFoundError:
                return
        if self.file is None:
            return
        self.pending += self.file.read()
        if flush and self.pending and not self.pending.endswith(b"\n"):
            self.pending += b"\n"
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            text = line.rstrip(b"\r").decode(errors="replace")
            print(f"[{self.vm.name}] {text}", flush=True)

    def close(self):
        self.copy(flush=True)
        if self.file is not None:
            self.file.close()


def has_exited(vm):
    return vm.exit_status is not None


def main(argv):
    args = parse_args(argv)
    try:
        if args.console_dir is not None:
            os.makedirs(args.console_dir, mode=0o700, exist_ok=True)
        gw, ws = build_pair(args)
        if args.dry_run:
            for vm in (gw, ws):
                sys.stdout.write(f"# ---- {vm.name}\n{vm.launch_plan}")
            return 0
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except (uvm.Error, OSError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1

    def on_event(vm, ev):
        print(f"{PROG}: {vm.name}: {ev}", file=sys.stderr, flush=True)

    gw.on_event(on_event)
    ws.on_event(on_event)
    try:
        # The gateway first: the workstation's start is refused otherwise.
        gw.start()
        ws.start()
    except uvm.Error as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        for vm in (ws, gw):
            try:
                if vm.pid is not None:
                    vm.stop(timeout=0)
            except uvm.Error:
                pass
        return 1
    print(f"gateway console: {gw.console_path}\nworkstation console: {ws.console_path}",
          flush=True)

    status = 0
    interrupts = 0

    def on_signal(signum, frame):
        # Python runs this between two iterations of the binding's main
        # context (vm.wait() and vm.stop() iterate in slices of at most
        # 0.25 s); the second Ctrl-C kills both, also during a stop.
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            for vm in (ws, gw):
                try:
                    vm.kill()
                except uvm.Error:
                    pass        # already gone

    def stop(vm, what):
        nonlocal status
        if has_exited(vm):
            return
        try:
            vm.stop(timeout=0 if interrupts > 1 else STOP_TIMEOUT)
        except uvm.Error as e:
            if not has_exited(vm):
                print(f"{PROG}: stopping the {what}: {e}", file=sys.stderr)
                status = 1

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    deadline = time.monotonic() + args.run_for if args.run_for > 0 else None
    consoles = [Console(gw), Console(ws)]
    stopping = False
    try:
        while not (has_exited(gw) and has_exited(ws)):
            uvm.iterate(timeout=0.05)
            for c in consoles:
                c.copy()
            if deadline is not None and time.monotonic() >= deadline:
                print(f"{PROG}: --run-for time is up, stopping", file=sys.stderr, flush=True)
                interrupts += 1
                deadline = None
            # The library stops the workstation when the gateway exits; when
            # the workstation exits on its own, take the gateway down too.
            if (interrupts or has_exited(ws)) and not stopping:
                stopping = True
                stop(ws, "workstation")     # workstation first,
                stop(gw, "gateway")         # then the gateway
    finally:
        for c in consoles:
            c.close()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
