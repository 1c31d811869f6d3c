#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""uvm-run.py: the thin launcher of examples/uvm-run.c, in Python.

Boots a kernel + initramfs with the `uvm` package (bindings/python), prints
the launch plan on request, stays attached printing events (stderr) and the
serial console (stdout), and stops the VM gracefully on Ctrl-C or at the end
of --run-for; a second Ctrl-C kills it.  Exits with the hypervisor's exit
code (128 + the signal when it was killed).

    examples/uvm-run.py --kernel vmlinuz --initramfs initramfs.img --accel tcg

Only the package API is used: everything runs on this thread, and the
binding runs the library's main context inside its blocking calls
(vm.wait() below), which is when the event callback is called.
"""
import argparse
import signal
import sys
import threading
import time

import uvm

PROG = "uvm-run"


def parse_memory(text):
    """'256', '256M' or '1G' as MiB (a bare number is MiB)."""
    units = {"": 1, "M": 1, "G": 1024}
    number, unit = text, ""
    if text[-1:].upper() in ("M", "G"):
        number, unit = text[:-1], text[-1].upper()
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a size like 256M or 1G")
    return int(number) * units[unit]


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Boot a microVM with libuvm.")
    p.add_argument("-n", "--name", default="uvm-run", help="VM name (default uvm-run)")
    p.add_argument("-H", "--hypervisor", default="qemu", choices=uvm.hypervisor_names(),
                   help="%s (default qemu)" % " or ".join(uvm.hypervisor_names()))
    p.add_argument("--hypervisor-path", metavar="FILE",
                   help="hypervisor executable (default: looked up in PATH)")
    p.add_argument("-k", "--kernel", metavar="FILE", required=True, help="kernel image")
    p.add_argument("-i", "--initramfs", metavar="FILE", help="initramfs")
    p.add_argument("-c", "--cmdline", default="console=ttyS0", metavar="TEXT",
                   help="kernel command line (default console=ttyS0)")
    p.add_argument("-m", "--memory", type=parse_memory, default=256, metavar="SIZE",
                   help="memory, e.g. 256M or 1G; a bare number is MiB (default 256M)")
    p.add_argument("-p", "--cpus", type=int, default=1, metavar="N", help="vCPUs (default 1)")
    p.add_argument("-M", "--machine", choices=("q35", "pc", "microvm"), help="machine type")
    p.add_argument("-a", "--accel", default="auto", choices=("auto", "kvm", "tcg"),
                   help="accelerator (default auto)")
    p.add_argument("-d", "--disk", action="append", default=[], metavar="FILE",
                   help="raw disk image (repeatable; suffix :ro for read-only)")
    p.add_argument("--user-net", action="store_true",
                   help="add a NIC on a user-mode (NAT) uplink (qemu)")
    p.add_argument("--tap", metavar="IFNAME", help="add a NIC on an existing tap interface")
    p.add_argument("--rng", action="store_true", help="add a virtio entropy device")
    p.add_argument("--console-log", metavar="FILE",
                   help="write the serial console to FILE (default: this terminal)")
    p.add_argument("-t", "--stop-timeout", type=int, default=10, metavar="S",
                   help="seconds the guest gets to power off on Ctrl-C (default 10)")
    p.add_argument("-x", "--extra-arg", action="append", default=[], metavar="ARG",
                   help="extra hypervisor argument (repeatable)")
    p.add_argument("--run-for", type=int, default=0, metavar="S",
                   help="stop gracefully after S seconds (default: on Ctrl-C only)")
    p.add_argument("--print-plan", action="store_true",
                   help="print the launch plan before starting")
    p.add_argument("--dry-run", action="store_true", help="print the launch plan and exit")
    return p.parse_args(argv)


def build_vm(args):
    devices = [uvm.Device.console(log_path=args.console_log)]
    if args.rng:
        devices.append(uvm.Device.rng())
    if args.user_net:
        devices.append(uvm.Device.net(uvm.Network.uplink("uplink")))
    if args.tap:
        devices.append(uvm.Device.net(uvm.Network.tap("tap", args.tap)))
    for disk in args.disk:
        read_only = disk.endswith(":ro")
        path = disk[:-3] if read_only else disk
        devices.append(uvm.Device.disk(uvm.Storage(path, read_only=read_only)))
    return uvm.Vm(args.name, args.hypervisor,
                  kernel=args.kernel, initramfs=args.initramfs, cmdline=args.cmdline,
                  vcpus=max(args.cpus, 0), memory_mib=args.memory, machine=args.machine,
                  accel=args.accel, devices=devices, hypervisor_path=args.hypervisor_path,
                  extra_args=args.extra_arg)


class Console(threading.Thread):
    """Copies the guest's console to stdout through a console connection
    (vm.open_console()): a thread blocked on the socket, woken by the
    guest's output, until the relay closes it when the hypervisor is gone.
    The console log keeps everything either way."""

    def __init__(self, vm):
        super().__init__(daemon=True)
        self.sock = vm.open_console()

    def run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()

    def close(self):
        # The relay ends the connection after the guest's last bytes.
        self.join(timeout=5.0)
        self.sock.close()


def main(argv):
    args = parse_args(argv)
    try:
        vm = build_vm(args)
        if args.print_plan or args.dry_run:
            sys.stdout.write(vm.launch_plan)
            sys.stdout.flush()
            if args.dry_run:
                return 0
        vm.on_event(lambda v, ev: print(f"{PROG}: {v.name}: {ev}", file=sys.stderr, flush=True))
        vm.start()
    except (uvm.Error, OSError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1

    interrupts = 0

    def on_signal(signum, frame):
        # Python runs this between two iterations of the binding's main
        # context (vm.wait() and vm.stop() iterate in slices of at most
        # 0.25 s); the second Ctrl-C kills, also during a graceful stop.
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            try:
                vm.kill()
            except uvm.Error:
                pass            # already gone

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    deadline = time.monotonic() + args.run_for if args.run_for > 0 else None
    console = None if args.console_log else Console(vm)
    if console:
        console.start()
    stopping = False
    try:
        # Slices only to notice a Ctrl-C or the --run-for deadline: the
        # console is copied by its own thread as the guest writes.
        while not vm.wait(timeout=0.25):
            if deadline is not None and time.monotonic() >= deadline:
                interrupts += 1
                deadline = None
            if interrupts and not stopping:
                # Power button with a deadline, then forced.
                stopping = True
                try:
                    vm.stop(timeout=0 if interrupts > 1 else max(args.stop_timeout, 0))
                except uvm.Error as e:
                    print(f"{PROG}: stop: {e}", file=sys.stderr)
    finally:
        if console:
            console.close()
    code, sig = vm.exit_status or (1, 0)
    return 128 + sig if sig else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
