#!/usr/bin/env python3
"""Smoke-check the libuvm test guest under qemu TCG (no libuvm involved).

Usage: tests/guest/check-guest.py GUESTDIR [--quick] [--no-tsc-hint]

GUESTDIR holds vmlinuz and initramfs.img (from build-guest.sh). Checks, on
both -M q35 and -M microvm: boot to UVM-GUEST-READY (timed), ACPI power
button -> UVM-GUEST-POWEROFF and qemu exit 0, uvm.powerbutton=ignore;
then two q35 guests linked by a socketpair ping each other, and
uvm.panic=1 panics. Prints "N passed, N failed" last; exits 1 on failure.
"""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

QEMU = "qemu-system-x86_64"


def host_tsc_khz():
    """Approximate host TSC rate, which is what the guest's TSC runs at under TCG."""
    try:
        with open("/sys/devices/system/cpu/cpu0/tsc_freq_khz") as f:
            return int(f.read())
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError, IndexError):
        pass
    return 2000000


# -M microvm has neither HPET nor ACPI PM timer, so when the kernel's TSC
# calibration against the PIT fails (often under TCG on a busy host) it
# hangs in early boot. Telling it the TSC rate avoids the calibration.
MICROVM_APPEND = "tsc_early_khz=%d" % host_tsc_khz()


class Guest:
    def __init__(self, guestdir, machine="q35", append="", extra=(), pass_fds=(), qmp=False):
        self.tmp = tempfile.mkdtemp(prefix="uvm-guest-")
        self.qmp_path = os.path.join(self.tmp, "qmp.sock") if qmp else None
        if machine.startswith("microvm") and "--no-tsc-hint" not in sys.argv:
            append = (MICROVM_APPEND + " " + append).strip()
        cmd = [QEMU, "-nodefaults", "-no-user-config", "-display", "none",
               "-accel", "tcg", "-M", machine, "-m", "256M",
               "-kernel", os.path.join(guestdir, "vmlinuz"),
               "-initrd", os.path.join(guestdir, "initramfs.img"),
               "-append", ("console=ttyS0 quiet " + append).strip(),
               "-serial", "stdio", "-no-reboot"]
        if qmp:
            cmd += ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        cmd += list(extra)
        self.start = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=pass_fds)
        self.buf = b""
        self.lines = []  # (seconds since start, line)

    def _pump(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], max(timeout, 0))
        if not r:
            return True
        return self._read()

    def _read(self):
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            return False
        self.buf += data
        now = time.monotonic() - self.start
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append((now, line.decode(errors="replace").rstrip("\r")))
        return True

    def wait_line(self, prefix, timeout=60):
        """Seconds since launch at which a line starting with prefix appeared."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for t, line in self.lines[seen:]:
                if line.startswith(prefix):
                    return t, line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                return None, None

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end and self._pump(end - time.monotonic()):
            pass

    def qmp(self, *commands):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.qmp_path)
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
        out = []
        for c in ("qmp_capabilities",) + commands:
            f.write(json.dumps({"execute": c}) + "\n")
            f.flush()
            while True:
                msg = json.loads(f.readline())
                if "return" in msg or "error" in msg:
                    out.append(msg)
                    break
        s.close()
        return out

    def wait_exit(self, timeout):
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self._pump(0.1)
        return self.proc.poll()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def transcript(self):
        return "\n".join("  %6.2f %s" % tl for tl in self.lines)


def pump_all(guests, seconds):
    """Read the consoles of all guests for a while (accurate timestamps)."""
    end = time.monotonic() + seconds
    live = list(guests)
    while live and time.monotonic() < end:
        r, _, _ = select.select([g.proc.stdout for g in live], [], [], end - time.monotonic())
        for g in live[:]:
            if g.proc.stdout in r and not g._read():
                live.remove(g)
        if all(any(l.startswith("UVM-PING-") for _, l in g.lines) for g in guests):
            break


results = []


def check(name, ok, detail="", guest=None):
    results.append(ok)
    print("%s: %s%s" % ("ok" if ok else "FAIL", name, " (%s)" % detail if detail else ""))
    if not ok and guest is not None:
        print(guest.transcript())
    sys.stdout.flush()


def main():
    guestdir = sys.argv[1]
    quick = "--quick" in sys.argv[2:]
    for machine in ("q35", "microvm"):
        # boot time + power button -> poweroff
        g = Guest(guestdir, machine, qmp=True)
        t, _ = g.wait_line("UVM-GUEST-READY")
        check("%s boots to UVM-GUEST-READY" % machine, t is not None,
              "%.2f s" % t if t else "", g)
        if t is not None:
            g.qmp("system_powerdown")
            p, _ = g.wait_line("UVM-GUEST-POWEROFF", 20)
            rc = g.wait_exit(20)
            check("%s power button -> UVM-GUEST-POWEROFF, qemu exit 0" % machine,
                  p is not None and rc == 0, "rc=%s" % rc, g)
        g.kill()
        if quick:
            continue
        # uvm.powerbutton=ignore
        g = Guest(guestdir, machine, "uvm.powerbutton=ignore", qmp=True)
        t, _ = g.wait_line("UVM-GUEST-READY")
        if t is not None:
            g.qmp("system_powerdown")
            p, _ = g.wait_line("UVM-GUEST-IGNORING-POWERBUTTON", 20)
            g.drain(2)
            check("%s uvm.powerbutton=ignore keeps running" % machine,
                  p is not None and g.proc.poll() is None, "", g)
        else:
            check("%s uvm.powerbutton=ignore boots" % machine, False, "", g)
        g.kill()

    # two guests, point to point over a socketpair
    for machine, dev in (("q35", "virtio-net-pci"), ("microvm", "virtio-net-device")):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        guests = []
        t0 = time.monotonic()
        for i, (fd, me, peer) in enumerate(((a, "10.0.0.1", "10.0.0.2"), (b, "10.0.0.2", "10.0.0.1"))):
            extra = ["-netdev", "dgram,id=n0,local.type=fd,local.str=%d" % fd.fileno(),
                     "-device", "%s,netdev=n0,mac=02:00:00:00:00:%02x" % (dev, i + 1)]
            guests.append(Guest(guestdir, machine, "uvm.ip=%s/24 uvm.ping=%s" % (me, peer),
                                extra, pass_fds=(fd.fileno(),)))
        a.close()
        b.close()
        pump_all(guests, 60)
        for g, peer in zip(guests, ("10.0.0.2", "10.0.0.1")):
            r, _ = g.wait_line("UVM-GUEST-READY", 60)
            t, line = g.wait_line("UVM-PING-", 60)
            check("%s ping pair: %s" % (machine, line), line == "UVM-PING-OK " + peer,
                  "READY %.2f s, ping %.2f s after launch" % (r, t) if r and t else "", g)
        print("  %s pair: both done %.2f s after the first launch" % (machine, time.monotonic() - t0))
        for g in guests:
            g.kill()

    # uvm.ip1 (second NIC) and a ping list: A has eth0 -> B and eth1 -> C
    if not quick:
        ab = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ac = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)

        def nic(i, fd, mac):
            return ["-netdev", "dgram,id=n%d,local.type=fd,local.str=%d" % (i, fd.fileno()),
                    "-device", "virtio-net-pci,netdev=n%d,mac=02:00:00:00:01:%02x" % (i, mac)]
        a = Guest(guestdir, "q35", "uvm.ip=10.0.0.1/24 uvm.ip1=10.0.1.1/24 uvm.ping=10.0.0.2,10.0.1.2",
                  nic(0, ab[0], 1) + nic(1, ac[0], 2), pass_fds=(ab[0].fileno(), ac[0].fileno()))
        b = Guest(guestdir, "q35", "uvm.ip=10.0.0.2/24", nic(0, ab[1], 3), pass_fds=(ab[1].fileno(),))
        c = Guest(guestdir, "q35", "uvm.ip=10.0.1.2/24", nic(0, ac[1], 4), pass_fds=(ac[1].fileno(),))
        for s in ab + ac:
            s.close()
        _, l1 = a.wait_line("UVM-PING-", 60)
        _, l2 = a.wait_line("UVM-PING-OK 10.0.1.2", 60)
        check("two NICs (uvm.ip1) and a ping list: %s / %s" % (l1, l2),
              l1 == "UVM-PING-OK 10.0.0.2" and l2 is not None, "", a)
        for g in (a, b, c):
            g.kill()

    # uvm.panic=1 (with panic=-1 the kernel reboots at once; -no-reboot makes qemu exit)
    g = Guest(guestdir, "q35", "uvm.panic=1 panic=-1")
    t, _ = g.wait_line("UVM-GUEST-READY")
    rc = g.wait_exit(30)
    check("uvm.panic=1 panics", rc == 0 and any("Kernel panic" in l for _, l in g.lines),
          "rc=%s" % rc, g)
    g.kill()

    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
