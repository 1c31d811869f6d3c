# SPDX-License-Identifier: LGPL-2.1-or-later
"""Launch and control microVMs under qemu and cloud-hypervisor (libuvm).

A thin layer over libuvm's C API, built with cffi. Objects own their C
counterparts; nothing of GLib shows through.

Main context: every call runs on the calling thread's thread-default GLib
main context (the global default one unless the caller pushed another with
some other GLib binding). The blocking calls (:meth:`Vm.start`,
:meth:`Vm.stop`, :meth:`Vm.wait`, :meth:`Vm.pause`, :meth:`Vm.resume`,
:meth:`Vm.qmp`, :meth:`Vm.ch_request`, :meth:`Vm.set_balloon_target`,
:meth:`Vm.events` and :func:`iterate`) iterate it, and event callbacks run
there, during those calls. An exception raised by a callback is kept and
re-raised, unchanged (traceback and chained context kept), by the binding
call that was iterating when it happened, once the C operation is complete;
if nothing was iterating, by the next binding call.

Lifetime: a :class:`Vm` garbage-collected while its hypervisor runs is
killed (libuvm's dispose: SIGKILL, reaped, runtime directory removed) and a
:class:`ResourceWarning` is emitted. Use ``with`` or :meth:`Vm.stop` to stop
a guest gracefully. Devices, networks and storages given to a VM are kept
alive by the Python objects that hold them.
"""

import collections
import enum
import json
import math
import os
import threading
import time
import warnings
import weakref

from ._uvm import ffi, lib

__all__ = [
    "version", "supports", "hypervisor_names", "iterate", "vms_from_json", "vms_to_json",
    "Hypervisor", "State", "EventKind", "Feature", "UplinkMode", "Machine", "Accel",
    "StorageFormat", "NetworkKind", "DeviceKind",
    "Storage", "Network", "Device", "Vm", "Event", "EventIterator",
    "Error", "InvalidDefinition", "Unsupported", "StartFailed", "HypervisorDied",
    "ProtocolError", "HypervisorError", "Timeout", "Busy", "NotRunning",
    "PermissionDenied", "Cancelled",
]


def _str(p):
    """A C string (NULL-safe) as str."""
    if p == ffi.NULL:
        return None
    return ffi.string(p).decode("utf-8", "surrogateescape")


def _take_str(p):
    """A C string we own: copied to str, then freed."""
    try:
        return _str(p)
    finally:
        if p != ffi.NULL:
            lib.g_free(p)


def _cstr(s):
    """str, bytes or path-like (or None) as an argument for a `const char *`."""
    if s is None:
        return ffi.NULL
    return os.fsencode(s)


version = _str(lib.uvm_get_version())
"""The version of the libuvm the module was loaded with, e.g. "0.3.0"."""


# ---- Enums --------------------------------------------------------------


def _enum(name, prefix, doc, members):
    cls = enum.IntEnum(name, [(m, getattr(lib, prefix + m)) for m in members],
                       module=__name__)
    cls.__doc__ = doc
    return cls


Hypervisor = _enum("Hypervisor", "UVM_HYPERVISOR_",
                   "Which hypervisor runs a VM (UvmHypervisor).",
                   ["QEMU", "CLOUD_HYPERVISOR"])
State = _enum("State", "UVM_VM_STATE_", "The state of a VM (UvmVmState).",
              ["DEFINED", "STARTING", "RUNNING", "PAUSED", "STOPPING", "STOPPED", "CRASHED"])
EventKind = _enum("EventKind", "UVM_EVENT_", "What an :class:`Event` reports (UvmEventKind).",
                  ["STATE_CHANGED", "GUEST_SHUTDOWN", "GUEST_RESET", "GUEST_PANIC",
                   "HYPERVISOR_EXITED", "DEVICE_DELETED", "HYPERVISOR_EVENT", "CONTROL_LOST",
                   "CONSOLE_MATCH"])
Feature = _enum("Feature", "UVM_FEATURE_", "What a backend can do, for :func:`supports` (UvmFeature).",
                ["MACHINE_Q35", "MACHINE_PC", "MACHINE_MICROVM", "SOFTWARE_EMULATION",
                 "USER_NETWORK", "SOCKET_LINK", "TAP_NETWORK", "QCOW2", "BALLOON", "HOTPLUG",
                 "RAW_QMP", "RAW_REST", "BRIDGE_LINK", "PASST_UPLINK", "TAP_NAT_UPLINK",
                 "HOST_BRIDGE", "FIRMWARE_BOOT"])
UplinkMode = _enum("UplinkMode", "UVM_UPLINK_", "How an uplink network reaches out (UvmUplinkMode).",
                   ["AUTO", "USER", "PASST", "TAP_NAT"])
Machine = _enum("Machine", "UVM_MACHINE_", "The machine type (UvmMachine).",
                ["DEFAULT", "Q35", "PC", "MICROVM"])
Accel = _enum("Accel", "UVM_ACCEL_", "The accelerator (UvmAccel).", ["AUTO", "KVM", "TCG"])
StorageFormat = _enum("StorageFormat", "UVM_STORAGE_FORMAT_",
                      "The format of a disk image (UvmStorageFormat).", ["RAW", "QCOW2"])
NetworkKind = _enum("NetworkKind", "UVM_NETWORK_", "What a :class:`Network` is (UvmNetworkKind).",
                    ["ISOLATED", "UPLINK", "TAP", "BRIDGE"])
DeviceKind = _enum("DeviceKind", "UVM_DEVICE_", "What a :class:`Device` is (UvmDeviceKind).",
                   ["NET", "DISK", "CONSOLE", "RNG", "BALLOON"])


def _to_enum(cls, value, what):
    """An enum member from a member, an int or a name ("cloud-hypervisor", "q35")."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        key = value.replace("-", "_").upper()
        if key in cls.__members__:
            return cls[key]
        raise ValueError("%s: unknown %s %r (one of: %s)"
                         % (what, cls.__name__, value,
                            ", ".join(m.lower().replace("_", "-") for m in cls.__members__)))
    return cls(value)


def hypervisor_names():
    """The names of the hypervisors this libuvm has a backend for, e.g.
    ["qemu", "cloud-hypervisor"]: the library's own (uvm_hypervisor_to_string())."""
    names = (lib.uvm_hypervisor_to_string(hv) for hv in Hypervisor)
    return [_str(n) for n in names if n != ffi.NULL]


def _to_hypervisor(value, what):
    """A :class:`Hypervisor` from a member, an int or the library's name for
    it ("qemu", "cloud-hypervisor"; uvm_hypervisor_from_string())."""
    if isinstance(value, str):
        out = ffi.new("UvmHypervisor *")
        if not lib.uvm_hypervisor_from_string(value.encode(), out):
            raise ValueError("%s: unknown hypervisor %r (one of: %s)"
                             % (what, value, ", ".join(hypervisor_names())))
        return Hypervisor(out[0])
    return _to_enum(Hypervisor, value, what)


def _maybe_enum(cls, value):
    try:
        return cls(value)
    except ValueError:
        return int(value)  # a kind from a newer libuvm: kept as a plain int


# ---- Errors -------------------------------------------------------------


class Error(Exception):
    """Base of every error of libuvm.

    ``str(e)`` is the C library's message (it names the field or request
    concerned); ``e.code`` the UvmError code (an int), or None for errors
    outside the UvmError domain (:class:`Cancelled`).
    """

    code = lib.UVM_ERROR_FAILED


class InvalidDefinition(Error):
    """The VM definition is wrong (UVM_ERROR_INVALID_DEFINITION); nothing was started."""

    code = lib.UVM_ERROR_INVALID_DEFINITION


class Unsupported(Error):
    """The hypervisor or machine type cannot do what was asked (UVM_ERROR_UNSUPPORTED)."""

    code = lib.UVM_ERROR_UNSUPPORTED


class StartFailed(Error):
    """The hypervisor could not be run or failed while starting (UVM_ERROR_START_FAILED)."""

    code = lib.UVM_ERROR_START_FAILED


class HypervisorDied(Error):
    """The hypervisor exited while a request waited (UVM_ERROR_HYPERVISOR_DIED)."""

    code = lib.UVM_ERROR_HYPERVISOR_DIED


class ProtocolError(Error):
    """The control socket carried something that is not the protocol (UVM_ERROR_PROTOCOL)."""

    code = lib.UVM_ERROR_PROTOCOL


class HypervisorError(Error):
    """The hypervisor answered a request with an error (UVM_ERROR_HYPERVISOR)."""

    code = lib.UVM_ERROR_HYPERVISOR


class Timeout(Error, TimeoutError):
    """A deadline passed (UVM_ERROR_TIMEOUT); also a :class:`TimeoutError`."""

    code = lib.UVM_ERROR_TIMEOUT


class Busy(Error):
    """Already running, another operation under way, or the runtime directory is held (UVM_ERROR_BUSY)."""

    code = lib.UVM_ERROR_BUSY


class NotRunning(Error):
    """The operation needs a running hypervisor (UVM_ERROR_NOT_RUNNING)."""

    code = lib.UVM_ERROR_NOT_RUNNING


class PermissionDenied(Error, PermissionError):
    """A privilege is missing (UVM_ERROR_PERMISSION); also a :class:`PermissionError`."""

    code = lib.UVM_ERROR_PERMISSION


class ControlLost(Error):
    """The hypervisor runs on, but its control connection is lost (UVM_ERROR_CONTROL_LOST).

    Only :meth:`Vm.stop` (which then uses signals) or :meth:`Vm.kill` can
    reach it; see :attr:`Vm.control_lost`.
    """

    code = lib.UVM_ERROR_CONTROL_LOST


class Cancelled(Error):
    """The operation was cancelled (GIO's G_IO_ERROR_CANCELLED); ``code`` is None."""

    code = None


_ERRORS = {cls.code: cls for cls in (InvalidDefinition, Unsupported, StartFailed,
                                     HypervisorDied, ProtocolError, HypervisorError, Timeout,
                                     Busy, NotRunning, PermissionDenied, ControlLost)}


def _make_error(cls, message, code):
    # One positional argument only: OSError subclasses read two as (errno, strerror).
    exc = cls(message)
    exc.code = code
    return exc


def _take_error(gerror):
    """The exception for a GError, which is freed."""
    try:
        domain, code = gerror.domain, gerror.code
        message = _str(gerror.message) or "unknown error"
    finally:
        lib.g_error_free(gerror)
    if domain == lib.uvm_error_quark():
        return _make_error(_ERRORS.get(code, Error), message, code)
    if domain == lib.g_io_error_quark() and code == lib.G_IO_ERROR_CANCELLED:
        return _make_error(Cancelled, message, None)
    return _make_error(Error, message, lib.UVM_ERROR_FAILED)


# ---- Main context and callback exceptions ---------------------------------

_tls = threading.local()


def _pending():
    try:
        return _tls.pending
    except AttributeError:
        _tls.pending = []
        return _tls.pending


def _raise_pending(also=None):
    """Re-raises the first exception a callback raised (others become notes).

    `also` is an exception the binding call was about to raise; it is noted
    on the callback's exception rather than lost.
    """
    pending = _pending()
    if not pending:
        return
    exc = pending.pop(0)
    notes = ["uvm: also raised by a later event callback: %r" % e for e in pending]
    pending.clear()
    if also is not None:
        notes.append("uvm: the call that was iterating also failed: %r" % also)
    if hasattr(exc, "add_note"):
        for note in notes:
            exc.add_note(note)
    raise exc


def _context():
    return ffi.gc(lib.g_main_context_ref_thread_default(), lib.g_main_context_unref)


# Longest blocking wait in C before Python gets control back (for signals,
# such as KeyboardInterrupt).
_SLICE = 0.25


@ffi.def_extern()
def _uvm_py_on_timeout(user_data):
    return 0  # G_SOURCE_REMOVE: the source only wakes the iteration up


def _iterate_once(ctx, seconds):
    """Dispatches one iteration, blocking at most `seconds`."""
    if seconds is not None and seconds <= 0:
        return bool(lib.g_main_context_iteration(ctx, 0))
    source = lib.g_timeout_source_new(max(1, math.ceil(min(seconds if seconds is not None
                                                           else _SLICE, _SLICE) * 1000)))
    lib.g_source_set_callback(source, lib._uvm_py_on_timeout, ffi.NULL, ffi.NULL)
    lib.g_source_attach(source, ctx)
    try:
        return bool(lib.g_main_context_iteration(ctx, 1))
    finally:
        lib.g_source_destroy(source)
        lib.g_source_unref(source)


def iterate(timeout=0.0):
    """Runs pending event callbacks; waits up to `timeout` seconds for a source.

    Dispatches what is ready in the thread-default main context; when
    nothing is and `timeout` > 0, waits up to that long for something to
    become ready and dispatches it. Re-raises a callback's exception.
    Returns whether anything was dispatched.
    """
    _raise_pending()
    ctx = _context()
    dispatched = False
    deadline = time.monotonic() + timeout
    while True:
        while lib.g_main_context_iteration(ctx, 0):
            dispatched = True
        _raise_pending()
        remaining = deadline - time.monotonic()
        if dispatched or remaining <= 0:
            return dispatched
        dispatched = _iterate_once(ctx, remaining)


def _call(fn, *args):
    """Calls a C function whose last argument is GError **, raising on error."""
    _raise_pending()
    err = ffi.new("GError **")
    ret = fn(*args, err)
    exc = _take_error(err[0]) if err[0] != ffi.NULL else None
    _raise_pending(exc)
    if exc is not None:
        raise exc
    return ret


def supports(hypervisor, feature):
    """Whether `hypervisor` ("qemu", "cloud-hypervisor" or a :class:`Hypervisor`)
    supports `feature` (a :class:`Feature` or its name): the table validation uses."""
    hv = _to_hypervisor(hypervisor, "hypervisor")
    ft = _to_enum(Feature, feature, "feature")
    return bool(lib.uvm_hypervisor_supports(hv, ft))


# ---- Definition objects ---------------------------------------------------


class Storage:
    """A disk image (UvmStorage), to back :meth:`Device.disk`.

    `format` is "raw" or "qcow2" (or a :class:`StorageFormat`);
    `create_size` (bytes) makes the library create a missing image of that
    size at start.
    """

    def __init__(self, path, format="raw", read_only=False, create_size=None):
        self._ptr = ffi.gc(lib.uvm_storage_new_image(_cstr(path)), lib.g_object_unref)
        self.format = format
        self.read_only = read_only
        if create_size is not None:
            self.create_size = create_size

    @property
    def path(self):
        """The absolute image path."""
        return _str(lib.uvm_storage_get_path(self._ptr))

    @property
    def format(self):
        """The image format (:class:`StorageFormat`)."""
        return _maybe_enum(StorageFormat, lib.uvm_storage_get_format(self._ptr))

    @format.setter
    def format(self, value):
        lib.uvm_storage_set_format(self._ptr, _to_enum(StorageFormat, value, "format"))

    @property
    def read_only(self):
        """Whether the guest sees the disk read-only."""
        return bool(lib.uvm_storage_get_read_only(self._ptr))

    @read_only.setter
    def read_only(self, value):
        lib.uvm_storage_set_read_only(self._ptr, bool(value))

    @property
    def create_size(self):
        """Size in bytes of an image created at start when missing; None when not set."""
        size = lib.uvm_storage_get_create_size(self._ptr)
        return size or None

    @create_size.setter
    def create_size(self, value):
        lib.uvm_storage_set_create_size(self._ptr, int(value or 0))

    @classmethod
    def _wrap(cls, ptr):
        """Internal: a Storage for an existing UvmStorage (takes a reference)."""
        self = cls.__new__(cls)
        self._ptr = ffi.gc(ffi.cast("UvmStorage *", lib.g_object_ref(ptr)), lib.g_object_unref)
        return self

    def __repr__(self):
        return "<uvm.Storage %r %s>" % (self.path, self.format.name.lower())


class Network:
    """A network VMs join with :meth:`Device.net` (UvmNetwork).

    Make one with :meth:`isolated`, :meth:`uplink`, :meth:`tap` or
    :meth:`bridge`; see uvm-network.h for what each needs of the host.
    """

    def __init__(self, _ptr):
        """Internal: use the class methods."""
        self._ptr = ffi.gc(_ptr, lib.g_object_unref)

    @classmethod
    def isolated(cls, name):
        """A VM-to-VM segment on which the host has no address."""
        return cls(lib.uvm_network_new_isolated(_cstr(name)))

    @classmethod
    def uplink(cls, name, mode="auto"):
        """NAT to the outside for one VM; `mode` "auto", "user", "passt" or "tap-nat"."""
        net = cls(lib.uvm_network_new_uplink(_cstr(name)))
        net.uplink_mode = mode
        return net

    @classmethod
    def tap(cls, name, tap_name):
        """An existing host tap interface `tap_name`."""
        return cls(lib.uvm_network_new_tap(_cstr(name), _cstr(tap_name)))

    @classmethod
    def bridge(cls, name, host_bridge):
        """A port on the existing host bridge `host_bridge`."""
        return cls(lib.uvm_network_new_bridge(_cstr(name), _cstr(host_bridge)))

    @property
    def name(self):
        """The network's name."""
        return _str(lib.uvm_network_get_name(self._ptr))

    @property
    def kind(self):
        """What the network is (:class:`NetworkKind`)."""
        return _maybe_enum(NetworkKind, lib.uvm_network_get_kind(self._ptr))

    @property
    def uplink_mode(self):
        """For an uplink, how it reaches out (:class:`UplinkMode`)."""
        return _maybe_enum(UplinkMode, lib.uvm_network_get_uplink_mode(self._ptr))

    @uplink_mode.setter
    def uplink_mode(self, value):
        lib.uvm_network_set_uplink_mode(self._ptr, _to_enum(UplinkMode, value, "mode"))

    @property
    def tap_name(self):
        """For a tap network, the host interface; else None."""
        return _str(lib.uvm_network_get_tap_name(self._ptr))

    @property
    def host_bridge(self):
        """For a bridge network, the host bridge; else None."""
        return _str(lib.uvm_network_get_host_bridge(self._ptr))

    @classmethod
    def _wrap(cls, ptr):
        """Internal: a Network for an existing UvmNetwork (takes a reference)."""
        return cls(ffi.cast("UvmNetwork *", lib.g_object_ref(ptr)))

    def __repr__(self):
        return "<uvm.Network %r %s>" % (self.name, self.kind.name.lower())


class Device:
    """A device of a VM (UvmDevice); make one with the class methods."""

    def __init__(self, _ptr, network=None, storage=None):
        """Internal: use the class methods."""
        self._ptr = ffi.gc(_ptr, lib.g_object_unref)
        self._network = network
        self._storage = storage
        self._in_vm = False

    @classmethod
    def net(cls, network, mac=None, tap_name=None):
        """A virtio NIC on `network`; `mac` "xx:xx:..." or None for a derived one;
        `tap_name` overrides the name of a library-made tap."""
        dev = cls(lib.uvm_device_new_net(network._ptr, _cstr(mac)), network=network)
        if tap_name is not None:
            lib.uvm_device_set_tap_name(dev._ptr, _cstr(tap_name))
        return dev

    @classmethod
    def disk(cls, storage):
        """A virtio block device on `storage` (a :class:`Storage`)."""
        return cls(lib.uvm_device_new_disk(storage._ptr), storage=storage)

    @classmethod
    def console(cls, log_path=None):
        """The guest's serial console (ttyS0) written to `log_path`, or to the
        runtime directory when None (see :attr:`Vm.console_path`)."""
        return cls(lib.uvm_device_new_console(_cstr(log_path)))

    @classmethod
    def rng(cls):
        """A virtio entropy source fed from the host's /dev/urandom."""
        return cls(lib.uvm_device_new_rng())

    @classmethod
    def balloon(cls):
        """A virtio memory balloon (see :meth:`Vm.set_balloon_target`)."""
        return cls(lib.uvm_device_new_balloon())

    @property
    def kind(self):
        """What the device is (:class:`DeviceKind`)."""
        return _maybe_enum(DeviceKind, lib.uvm_device_get_kind(self._ptr))

    @property
    def id(self):
        """The device id; None until set or assigned by :meth:`Vm.add_device`.

        Settable before the device is added to a VM; afterwards setting it
        raises :class:`InvalidDefinition` (the VM has derived names from it).
        """
        return _str(lib.uvm_device_get_id(self._ptr))

    @id.setter
    def id(self, value):
        if self._in_vm:
            raise _make_error(InvalidDefinition,
                              "device id: cannot change once the device is in a VM",
                              lib.UVM_ERROR_INVALID_DEFINITION)
        lib.uvm_device_set_id(self._ptr, _cstr(value))

    @property
    def hotpluggable(self):
        """Whether the device must be removable while the guest runs."""
        return bool(lib.uvm_device_get_hotpluggable(self._ptr))

    @hotpluggable.setter
    def hotpluggable(self, value):
        lib.uvm_device_set_hotpluggable(self._ptr, bool(value))

    @property
    def mac(self):
        """For a NIC, its MAC address (given, or derived once added to a VM)."""
        return _str(lib.uvm_device_get_mac(self._ptr))

    @property
    def tap_name(self):
        """For a NIC, the tap name override, or None."""
        return _str(lib.uvm_device_get_tap_name(self._ptr))

    @property
    def network(self):
        """For a NIC, its :class:`Network`; else None."""
        return self._network

    @property
    def storage(self):
        """For a disk, its :class:`Storage`; else None."""
        return self._storage

    @property
    def log_path(self):
        """For a console, the log file given at creation; else None."""
        return _str(lib.uvm_device_get_log_path(self._ptr))

    @classmethod
    def _wrap_in_vm(cls, ptr, network, storage):
        """Internal: a Device for an existing UvmDevice of a VM (takes a reference)."""
        dev = cls(ffi.cast("UvmDevice *", lib.g_object_ref(ptr)), network=network,
                  storage=storage)
        dev._in_vm = True
        return dev

    def __repr__(self):
        return "<uvm.Device %s id=%r>" % (self.kind.name.lower(), self.id)


# ---- Events ---------------------------------------------------------------


class Event:
    """One event of a VM (a copy of a UvmEvent).

    Attributes: ``kind`` (:class:`EventKind`), ``state`` and
    ``previous_state`` (:class:`State`), ``exit_code`` and ``exit_signal``
    (for HYPERVISOR_EXITED), ``device_id`` (DEVICE_DELETED), ``name`` (the
    hypervisor's own event name, or None), ``data`` (its data, parsed JSON,
    or None), ``timestamp`` (µs of the monotonic clock, as
    ``time.monotonic_ns() // 1000`` on Linux). ``str(ev)`` is libuvm's
    one-line description.
    """

    __slots__ = ("kind", "state", "previous_state", "exit_code", "exit_signal", "device_id",
                 "name", "data", "timestamp", "_text")

    def __init__(self, ptr):
        """Internal: events come from :meth:`Vm.on_event` and :meth:`Vm.events`."""
        self.kind = _maybe_enum(EventKind, lib.uvm_event_get_kind(ptr))
        self.state = _maybe_enum(State, lib.uvm_event_get_state(ptr))
        self.previous_state = _maybe_enum(State, lib.uvm_event_get_previous_state(ptr))
        self.exit_code = lib.uvm_event_get_exit_code(ptr)
        self.exit_signal = lib.uvm_event_get_exit_signal(ptr)
        self.device_id = _str(lib.uvm_event_get_device_id(ptr))
        self.name = _str(lib.uvm_event_get_name(ptr))
        data = _str(lib.uvm_event_get_data_json(ptr))
        self.data = json.loads(data) if data is not None else None
        self.timestamp = lib.uvm_event_get_timestamp(ptr)
        self._text = _take_str(lib.uvm_event_to_string(ptr))

    def __str__(self):
        return self._text

    def __repr__(self):
        return "<uvm.Event %s>" % self._text


class _Handler:
    """What a connected C handler points at: the callback and its VM."""

    __slots__ = ("vm_ref", "callback", "handle", "__weakref__")

    def __init__(self, vm, callback):
        self.vm_ref = weakref.ref(vm)
        self.callback = callback
        self.handle = ffi.new_handle(self)


@ffi.def_extern()
def _uvm_py_on_event(vm_ptr, event_ptr, user_data):
    try:
        handler = ffi.from_handle(user_data)
        vm = handler.vm_ref()
        if vm is not None:
            handler.callback(vm, Event(event_ptr))
    except BaseException as e:  # noqa: B902 - kept for the iterating call
        _pending().append(e)


class EventIterator:
    """Blocking iterator over a VM's events, made by :meth:`Vm.events`.

    Collects events from its creation on (also those that arrive during
    other calls); ``next()`` iterates the main context until one is there.
    Ends when `timeout` seconds pass with no new event, or after
    HYPERVISOR_EXITED was yielded and nothing is pending. :meth:`close` (or
    exhaustion) disconnects it.
    """

    def __init__(self, vm, timeout):
        self._vm = vm
        self._timeout = timeout
        self._queue = collections.deque()
        self._exited = False
        self._id = vm.on_event(lambda _vm, ev: self._queue.append(ev))

    def __iter__(self):
        return self

    def __next__(self):
        _raise_pending()
        if self._id is None:
            raise StopIteration
        ctx = _context()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while not self._queue:
            if self._exited:
                # Whatever is ready now still belongs to this run.
                for _ in range(100):
                    if not lib.g_main_context_iteration(ctx, 0):
                        break
                _raise_pending()
                if not self._queue:
                    break
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            _iterate_once(ctx, remaining)
            _raise_pending()
        if not self._queue:
            self.close()
            raise StopIteration
        ev = self._queue.popleft()
        if ev.kind == EventKind.HYPERVISOR_EXITED:
            self._exited = True
        return ev

    def close(self):
        """Disconnects from the VM; the iterator then ends."""
        if self._id is not None:
            self._vm.remove_event_handler(self._id)
            self._id = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ---- The VM ---------------------------------------------------------------


class _AsyncOp:
    """One C async call in flight: what its finish function returned, or its error."""
    __slots__ = ("finish", "done", "value", "error", "handle", "cancellable", "__weakref__")

    def __init__(self, finish):
        self.finish = finish
        self.done = False
        self.value = None
        self.error = None
        self.handle = None
        self.cancellable = None


# Operations whose Python caller has gone (interrupted) but whose C
# callback is still to come: kept alive until it comes.
_IN_FLIGHT = set()


@ffi.def_extern()
def _uvm_py_on_ready(source, result, user_data):
    op = ffi.from_handle(user_data)
    try:
        err = ffi.new("GError **")
        op.value = op.finish(result, err)
        if err[0] != ffi.NULL:
            op.error = _take_error(err[0])
    except BaseException as e:
        op.error = e
    finally:
        op.done = True
        _IN_FLIGHT.discard(op)


def _run_async(begin, finish, timeout=None, cancel_on_interrupt=False, before=True):
    """Runs one C async operation to its end on the thread-default context.

    `begin(cancellable, callback, user_data)` starts it; `finish(result,
    err)` is its _finish function; returns what that returned, or raises
    the mapped error.  Python code (signal handlers, Ctrl-C) runs between
    iterations: an interrupted call either cancels the operation and waits
    for it (`cancel_on_interrupt`, so that nothing is left half-done) or
    leaves it running to completion in later iterations.  With `timeout`,
    the operation is cancelled when it passes and :class:`Timeout` raised.
    With `before` False, a callback's pending exception is raised only
    after the operation (for cleanup that must happen regardless).
    """
    if before:
        _raise_pending()
    op = _AsyncOp(finish)
    op.cancellable = ffi.gc(lib.g_cancellable_new(), lib.g_object_unref)
    op.handle = ffi.new_handle(op)
    ctx = _context()
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    _IN_FLIGHT.add(op)
    begin(op.cancellable, lib._uvm_py_on_ready, op.handle)
    try:
        while not op.done:
            remaining = None
            if deadline is not None and not timed_out:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    lib.g_cancellable_cancel(op.cancellable)
                    continue
            _iterate_once(ctx, remaining)
    except BaseException:
        if cancel_on_interrupt:
            lib.g_cancellable_cancel(op.cancellable)
            while not op.done:
                _iterate_once(ctx, None)
        raise
    exc = op.error
    if timed_out and isinstance(exc, Cancelled):
        exc = _make_error(Timeout, "not done within %g s; cancelled" % timeout,
                          lib.UVM_ERROR_TIMEOUT)
    _raise_pending(exc)
    if exc is not None:
        raise exc
    return op.value


_RUNNING_STATES = None  # filled below, once State exists


def _cjson(text):
    """A definition document (str or bytes) as a C string."""
    if isinstance(text, str):
        return text.encode("utf-8")
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    raise TypeError("a definition document is a str or bytes, not %s" % type(text).__name__)


def _link_gateways(vms):
    """Gives each Vm of `vms` the Python side of the gateway relation set in C."""
    by_ptr = {int(ffi.cast("uintptr_t", vm._vm)): vm for vm in vms}
    for vm in vms:
        gw = lib.uvm_vm_get_gateway(vm._vm)
        if gw != ffi.NULL:
            vm._gateway_ref = weakref.ref(by_ptr[int(ffi.cast("uintptr_t", gw))])


def vms_from_json(text):
    """The VMs of a definition document (str or bytes), as a list of :class:`Vm`.

    VMs whose devices name one network share one :class:`Network` (one
    UvmNetwork), and a VM's ``"gateway"`` is its :attr:`Vm.gateway`. The
    gateway is held weakly, as in C: keep the list (or the gateway) alive.
    Raises :class:`InvalidDefinition` naming the JSON path at fault.
    """
    array = _call(lib.uvm_vms_new_from_json, _cjson(text))
    try:
        networks = {}
        vms = [Vm._adopt(ffi.cast("UvmVm *", lib.g_object_ref(array.pdata[i])), networks)
               for i in range(array.len)]
    finally:
        lib.g_ptr_array_unref(array)
    _link_gateways(vms)
    return vms


def vms_to_json(vms):
    """One definition document (a str) of the :class:`Vm` objects in `vms`,
    with their shared networks and gateway relations; :func:`vms_from_json`
    reads it back. Raises :class:`InvalidDefinition` for what a document
    cannot say (two VMs of one name, a gateway not among `vms`, ...)."""
    vms = list(vms)
    if not vms:
        raise ValueError("vms_to_json: no VMs to write")
    array = ffi.new("UvmVm *[]", [vm._vm for vm in vms])
    return _take_str(_call(lib.uvm_vms_to_json, array, len(vms)))


class Vm:
    """A microVM (UvmVm): its definition, then its hypervisor's lifecycle.

    ``Vm(name, hypervisor="qemu", *, kernel=None, initramfs=None,
    cmdline=None, vcpus=1, memory_mib=256, machine=None, accel="auto",
    devices=(), start_paused=False, confined=False, runtime_dir=None,
    hypervisor_path=None, extra_args=())``

    Nothing is checked or created until :meth:`validate` or :meth:`start`.
    ``with Vm(...) as vm:`` starts it and always stops it (``stop(5.0)``,
    then a kill if that fails). A Vm garbage-collected while its hypervisor
    runs is killed, with a :class:`ResourceWarning`.

    Deviation from the spec forced by the C API: an `initramfs` or `cmdline`
    without a `kernel` raises :class:`InvalidDefinition` at once
    (uvm_vm_set_kernel() takes the three together and needs the kernel).
    """

    def __init__(self, name, hypervisor="qemu", *, kernel=None, initramfs=None, cmdline=None,
                 vcpus=1, memory_mib=256, machine=None, accel="auto", devices=(),
                 start_paused=False, confined=False, runtime_dir=None, hypervisor_path=None,
                 extra_args=(), control_timeout=None, user=None, log_dir=None):
        self._vm = None
        self._handlers = {}
        self._devices = []
        self._gateway_ref = None
        hv = _to_hypervisor(hypervisor, "hypervisor")
        if kernel is None and (initramfs is not None or cmdline is not None):
            raise _make_error(InvalidDefinition,
                              "kernel: an initramfs and a command line go with a kernel only",
                              lib.UVM_ERROR_INVALID_DEFINITION)
        self._vm = lib.uvm_vm_new(_cstr(name), hv)
        if kernel is not None:
            lib.uvm_vm_set_kernel(self._vm, _cstr(kernel), _cstr(initramfs), _cstr(cmdline))
        lib.uvm_vm_set_vcpus(self._vm, int(vcpus))
        lib.uvm_vm_set_memory(self._vm, int(memory_mib) * 1024 * 1024)
        if machine is not None:
            lib.uvm_vm_set_machine(self._vm, _to_enum(Machine, machine, "machine"))
        lib.uvm_vm_set_accel(self._vm, _to_enum(Accel, accel, "accel"))
        lib.uvm_vm_set_start_paused(self._vm, bool(start_paused))
        lib.uvm_vm_set_confined(self._vm, bool(confined))
        if control_timeout is not None:
            self.control_timeout = control_timeout
        if user is not None:
            self.user = user
        if runtime_dir is not None:
            lib.uvm_vm_set_runtime_dir(self._vm, _cstr(runtime_dir))
        if hypervisor_path is not None:
            lib.uvm_vm_set_hypervisor_path(self._vm, _cstr(hypervisor_path))
        if log_dir is not None:
            lib.uvm_vm_set_log_dir(self._vm, _cstr(log_dir))
        if extra_args:
            args = [ffi.new("char[]", os.fsencode(a)) for a in extra_args]
            array = ffi.new("const char *[]", args + [ffi.NULL])
            lib.uvm_vm_set_extra_args(self._vm, array)
        for dev in devices:
            self.add_device(dev)

    def __del__(self):
        vm = getattr(self, "_vm", None)
        if vm is None:
            return
        self._vm = None
        for hid in list(self._handlers):
            lib.uvm_vm_disconnect_event(vm, hid)
        self._handlers.clear()
        state = lib.uvm_vm_get_state(vm)
        if lib.uvm_vm_get_pid(vm) != 0 or state in _RUNNING_STATES:
            warnings.warn("uvm.Vm %r was garbage-collected while its hypervisor ran: killed "
                          "(use 'with' or stop())" % _str(lib.uvm_vm_get_name(vm)),
                          ResourceWarning, source=self)
        lib.g_object_unref(vm)  # dispose kills, reaps and cleans up

    # -- definition documents (docs/definition-schema.md)

    @classmethod
    def from_json(cls, text):
        """A Vm from a definition document of exactly one VM (str or bytes).

        Raises :class:`InvalidDefinition` naming the JSON path at fault
        (``vms[0].devices[1].network: ...``); for a document of several VMs
        use :func:`vms_from_json`.
        """
        ptr = _call(lib.uvm_vm_new_from_json, _cjson(text))
        vms = [cls._adopt(ptr, {})]
        _link_gateways(vms)
        return vms[0]

    def to_json(self):
        """The VM's definition document (a str), which :meth:`from_json`
        reads back into a VM with the same launch plan.

        Raises :class:`InvalidDefinition` for what one document cannot say
        (a gateway other than the VM itself: use :func:`vms_to_json`).
        """
        return _take_str(_call(lib.uvm_vm_to_json, self._vm))

    @classmethod
    def _adopt(cls, ptr, networks):
        """Internal: a Vm owning the reference `ptr`, with Device, Network and
        Storage objects for what its devices hold; `networks` maps C
        pointers to the Network objects made so far, so that VMs sharing a
        network share one Network object too."""
        self = cls.__new__(cls)
        self._vm = ptr
        self._handlers = {}
        self._gateway_ref = None
        self._devices = []
        for i in range(lib.uvm_vm_get_n_devices(ptr)):
            dptr = lib.uvm_vm_get_device(ptr, i)
            nptr = lib.uvm_device_get_network(dptr)
            sptr = lib.uvm_device_get_storage(dptr)
            network = storage = None
            if nptr != ffi.NULL:
                key = int(ffi.cast("uintptr_t", nptr))
                if key not in networks:
                    networks[key] = Network._wrap(nptr)
                network = networks[key]
            if sptr != ffi.NULL:
                storage = Storage._wrap(sptr)
            self._devices.append(Device._wrap_in_vm(dptr, network, storage))
        return self

    # -- definition

    def add_device(self, device):
        """Adds `device` (a :class:`Device`); returns it. Its id and MAC are
        assigned now unless set. A device belongs to one VM: adding it to a
        second raises :class:`InvalidDefinition`."""
        if device._in_vm:
            raise _make_error(InvalidDefinition, "device %s: already in a VM" % device.id,
                              lib.UVM_ERROR_INVALID_DEFINITION)
        # uvm_vm_add_device() takes over a reference; the Device keeps its own.
        lib.uvm_vm_add_device(self._vm, lib.g_object_ref(device._ptr))
        device._in_vm = True
        self._devices.append(device)
        return device

    @property
    def name(self):
        """The VM's name."""
        return _str(lib.uvm_vm_get_name(self._vm))

    @property
    def hypervisor(self):
        """The hypervisor (:class:`Hypervisor`)."""
        return _maybe_enum(Hypervisor, lib.uvm_vm_get_hypervisor(self._vm))

    @property
    def kernel(self):
        """The absolute kernel path, or None."""
        return _str(lib.uvm_vm_get_kernel(self._vm))

    @property
    def initramfs(self):
        """The absolute initramfs path, or None."""
        return _str(lib.uvm_vm_get_initramfs(self._vm))

    @property
    def kernel_cmdline(self):
        """The kernel command line, or None (not the hypervisor's: see
        :meth:`command_line`)."""
        return _str(lib.uvm_vm_get_kernel_cmdline(self._vm))

    @property
    def cmdline(self):
        """The kernel command line, or None; the older name of
        :attr:`kernel_cmdline`."""
        return self.kernel_cmdline

    @property
    def vcpus(self):
        """The number of vCPUs."""
        return lib.uvm_vm_get_vcpus(self._vm)

    @property
    def memory_mib(self):
        """The guest's memory in MiB."""
        return lib.uvm_vm_get_memory(self._vm) // (1024 * 1024)

    @property
    def machine(self):
        """The machine type (:class:`Machine`)."""
        return _maybe_enum(Machine, lib.uvm_vm_get_machine(self._vm))

    @property
    def accel(self):
        """The accelerator (:class:`Accel`)."""
        return _maybe_enum(Accel, lib.uvm_vm_get_accel(self._vm))

    @property
    def devices(self):
        """The devices, in the order they were added (a new list)."""
        return list(self._devices)

    @property
    def confined(self):
        """Whether the hypervisor runs confined (no network of its own); settable."""
        return bool(lib.uvm_vm_get_confined(self._vm))

    @confined.setter
    def confined(self, value):
        lib.uvm_vm_set_confined(self._vm, bool(value))

    @property
    def gateway(self):
        """The gateway :class:`Vm` this one is behind, or None; settable (None clears).

        Held weakly, as in C: a gateway that is garbage-collected is cleared.
        """
        ptr = lib.uvm_vm_get_gateway(self._vm)
        gw = self._gateway_ref() if self._gateway_ref is not None else None
        if ptr == ffi.NULL or gw is None or gw._vm != ptr:
            return None
        return gw

    @gateway.setter
    def gateway(self, gateway):
        lib.uvm_vm_set_gateway(self._vm, gateway._vm if gateway is not None else ffi.NULL)
        self._gateway_ref = weakref.ref(gateway) if gateway is not None else None

    @property
    def runtime_dir(self):
        """The runtime directory in effect."""
        return _str(lib.uvm_vm_get_runtime_dir(self._vm))

    @property
    def console_path(self):
        """The file the console device writes to, or None without one."""
        return _str(lib.uvm_vm_get_console_path(self._vm))

    @property
    def log_path(self):
        """The runtime-directory file receiving the hypervisor's output."""
        return _str(lib.uvm_vm_get_log_path(self._vm))

    @property
    def log_dir(self):
        """Where the console log goes (``NAME-console.log``, kept after the
        VM stopped), or None: then ``console.log`` in the runtime directory,
        removed with it. Set it with the ``log_dir`` argument."""
        return _str(lib.uvm_vm_get_log_dir(self._vm))

    @property
    def console_socket_path(self):
        """The unix socket serving the running VM's console (any process
        allowed into the runtime directory may connect), or None without a
        console device."""
        return _str(lib.uvm_vm_get_console_socket_path(self._vm))

    def open_console(self):
        """A new connection to the running guest's serial console, as a
        connected :class:`socket.socket` (blocking, not inherited): reading
        it gives the guest's output from now on, what is sent goes to the
        guest. The console log keeps everything either way. Raises
        :class:`NotRunning` without a console device or a hypervisor."""
        import socket
        fd = _call(lib.uvm_vm_open_console, self._vm)
        return socket.socket(fileno=fd)

    def wait_for_console(self, pattern, timeout=None):
        """Waits until a console line matches `pattern` (a GRegex, Perl
        syntax; a plain word is a substring) and returns that line (str,
        without its line ending). Output since the current run started
        counts, also from before the call; the line being written (a prompt)
        counts too, as far as it arrived (end the pattern with ``$`` for
        whole lines only). Emits a CONSOLE_MATCH event. Raises :class:`Timeout`
        after `timeout` seconds (None: no limit), :class:`NotRunning` when
        there is no console or the hypervisor exits first, :class:`Error`
        for a pattern that does not compile."""
        vm = self._vm
        cpattern = _cstr(pattern)
        return _take_str(_run_async(
            lambda c, cb, h: lib.uvm_vm_wait_for_console_async(vm, cpattern, c, cb, h),
            lambda result, err: lib.uvm_vm_wait_for_console_finish(vm, result, err),
            timeout=timeout, cancel_on_interrupt=True))

    def validate(self):
        """Checks the definition without starting anything; raises
        :class:`InvalidDefinition` or :class:`Unsupported` naming the field."""
        _call(lib.uvm_vm_validate, self._vm)

    @property
    def command_line(self):
        """The command line the next start would run, shell-quoted (raises like :meth:`validate`)."""
        return _take_str(_call(lib.uvm_vm_get_command_line, self._vm))

    @property
    def launch_plan(self):
        """The whole launch plan as a commented shell script (raises like :meth:`validate`)."""
        return _take_str(_call(lib.uvm_vm_get_launch_plan, self._vm))

    # -- lifecycle

    @property
    def state(self):
        """The current state (:class:`State`)."""
        return _maybe_enum(State, lib.uvm_vm_get_state(self._vm))

    @property
    def pid(self):
        """The hypervisor's pid while it runs, else None."""
        return lib.uvm_vm_get_pid(self._vm) or None

    @property
    def user(self):
        """Who the hypervisor and its helpers run as; settable, for later starts.

        ``"dynamic"`` (the default: a uid of its own per running VM when
        libuvm runs as root), ``"caller"`` (the caller's uid, every
        capability still dropped), or a ``(uid, gid)`` tuple (an int is
        ``(uid, uid)``).
        """
        uid = lib.uvm_vm_get_user(self._vm)
        if uid == lib.UVM_USER_DYNAMIC:
            return "dynamic"
        if uid == lib.UVM_USER_CALLER:
            return "caller"
        return (uid, lib.uvm_vm_get_group(self._vm))

    @user.setter
    def user(self, value):
        if value == "dynamic":
            uid = gid = lib.UVM_USER_DYNAMIC
        elif value == "caller":
            uid = gid = lib.UVM_USER_CALLER
        elif isinstance(value, int):
            uid = gid = value
        else:
            uid, gid = value
        for what, n in (("uid", uid), ("gid", gid)):
            if not 0 <= int(n) <= 0xFFFFFFFF:
                raise ValueError("user: %s %r is out of range" % (what, n))
        lib.uvm_vm_set_user(self._vm, int(uid), int(gid))

    @property
    def run_user(self):
        """The (uid, gid) the current or last run's processes ran as, or None before a start."""
        uid, gid = ffi.new("guint32 *"), ffi.new("guint32 *")
        if not lib.uvm_vm_get_run_user(self._vm, uid, gid):
            return None
        return (uid[0], gid[0])

    @property
    def control_timeout(self):
        """Deadline of one control request in seconds (0: none); settable, for later starts.

        A request unanswered past it raises :class:`Timeout` and the control
        connection is given up (:attr:`control_lost`).
        """
        return lib.uvm_vm_get_control_timeout(self._vm) / 1000.0

    @control_timeout.setter
    def control_timeout(self, seconds):
        ms = int(round(float(seconds) * 1000))
        if ms < 0 or ms > 0xFFFFFFFF:
            raise ValueError("control_timeout: %r seconds is out of range" % seconds)
        lib.uvm_vm_set_control_timeout(self._vm, ms)

    @property
    def control_lost(self):
        """Why the control connection of the running hypervisor was lost (a str), or None.

        Set from the moment a CONTROL_LOST event is emitted until the next start.
        """
        err = ffi.new("GError **")
        if not lib.uvm_vm_get_control_lost(self._vm, err):
            return None
        return str(_take_error(err[0]))

    @property
    def exit_status(self):
        """How the last run's hypervisor ended: (exit code or -1, signal or 0), or None."""
        code, sig = ffi.new("int *"), ffi.new("int *")
        if not lib.uvm_vm_get_exit_status(self._vm, code, sig):
            return None
        return (code[0], sig[0])

    def start(self, timeout=None):
        """Starts the VM and blocks until it is ready (running, or paused if so defined).

        `timeout` in seconds (None: no limit): when it passes, the start is
        cancelled (the hypervisor killed and reaped) and :class:`Timeout` is
        raised. Raises :class:`InvalidDefinition`, :class:`Unsupported`,
        :class:`Busy`, :class:`StartFailed` (quoting the hypervisor's log),
        :class:`PermissionDenied`; nothing is left running on error.
        """
        vm = self._vm
        try:
            _run_async(lambda c, cb, h: lib.uvm_vm_start_async(vm, c, cb, h),
                       lambda result, err: lib.uvm_vm_start_finish(vm, result, err),
                       timeout=timeout, cancel_on_interrupt=True)
        except Timeout as e:
            raise _make_error(Timeout, "start: not ready within %g s; the start was cancelled"
                              % timeout, lib.UVM_ERROR_TIMEOUT) from e

    def stop(self, timeout=5.0):
        """Stops the VM and blocks until the hypervisor is gone.

        Presses the power button and gives the guest `timeout` seconds to
        power off, then escalates (quit request, SIGTERM, SIGKILL, 2 s
        each); `timeout` 0 skips the button (forced stop). Succeeds also
        when the VM had already stopped; raises :class:`NotRunning` for a
        VM never started. Signal handlers run while it waits (a second
        Ctrl-C may call :meth:`kill`); if one raises, the stop goes on in
        later binding calls.
        """
        self._stop(timeout)

    def _stop(self, timeout, before=True):
        vm = self._vm
        ms = max(0, int(round(timeout * 1000)))
        _run_async(lambda c, cb, h: lib.uvm_vm_stop_async(vm, ms, c, cb, h),
                   lambda result, err: lib.uvm_vm_stop_finish(vm, result, err), before=before)

    def kill(self):
        """Sends SIGKILL to the hypervisor now; :meth:`wait` for the exit.
        Raises :class:`NotRunning` without a hypervisor process."""
        _call(lib.uvm_vm_kill, self._vm)

    def pause(self):
        """Stops the guest's vCPUs (pausing a paused VM succeeds)."""
        vm = self._vm
        _run_async(lambda c, cb, h: lib.uvm_vm_pause_async(vm, c, cb, h),
                   lambda result, err: lib.uvm_vm_pause_finish(vm, result, err))

    def resume(self):
        """Lets a paused guest run again."""
        vm = self._vm
        _run_async(lambda c, cb, h: lib.uvm_vm_resume_async(vm, c, cb, h),
                   lambda result, err: lib.uvm_vm_resume_finish(vm, result, err))

    def wait(self, timeout=None):
        """Waits for the hypervisor to exit, for whatever reason, without asking it to.

        Returns True once it is gone (at once for a VM not running), False
        when `timeout` seconds (None: no limit) pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            try:
                _call(lib.uvm_vm_wait, self._vm, max(0, int(remaining * 1000)), ffi.NULL)
                return True
            except Timeout:
                if deadline is not None and time.monotonic() >= deadline:
                    return False

    def set_balloon_target(self, nbytes):
        """Asks the balloon driver to leave the guest `nbytes` of memory
        (a whole number of MiB, at most the VM's memory)."""
        vm = self._vm
        n = int(nbytes)
        _run_async(lambda c, cb, h: lib.uvm_vm_set_balloon_target_async(vm, n, c, cb, h),
                   lambda result, err: lib.uvm_vm_set_balloon_target_finish(vm, result, err))

    def qmp(self, command, arguments=None):
        """Sends a raw QMP command (qemu only); returns the parsed "return" value.

        `arguments` is a dict (sent as JSON) or a JSON object text. Raises
        :class:`HypervisorError` with qemu's error, :class:`Unsupported` on
        cloud-hypervisor, :class:`NotRunning`, :class:`HypervisorDied`.
        """
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        vm = self._vm
        c_command, c_arguments = _cstr(command), _cstr(arguments)
        text = _take_str(_run_async(
            lambda c, cb, h: lib.uvm_vm_qmp_execute_async(vm, c_command, c_arguments, c, cb, h),
            lambda result, err: lib.uvm_vm_qmp_execute_finish(vm, result, err)))
        return json.loads(text) if text else None

    def ch_request(self, method, endpoint, body=None):
        """Sends a raw cloud-hypervisor API request; returns (HTTP status, body text).

        `endpoint` without prefix ("vm.info"); `body` a JSON text or an
        object sent as JSON. A non-2xx status is not an error.
        """
        if body is not None and not isinstance(body, str):
            body = json.dumps(body)
        vm = self._vm
        status = ffi.new("guint *")
        args = (_cstr(method), _cstr(endpoint), _cstr(body))
        text = _take_str(_run_async(
            lambda c, cb, h: lib.uvm_vm_ch_request_async(vm, *args, c, cb, h),
            lambda result, err: lib.uvm_vm_ch_request_finish(vm, result, status, err)))
        return (status[0], text)

    # -- events

    def on_event(self, callback):
        """Calls ``callback(vm, event)`` for each event, in order, in the main
        context (during blocking binding calls). The callback is kept alive
        while connected. Returns a handle for :meth:`remove_event_handler`."""
        handler = _Handler(self, callback)
        hid = lib.uvm_vm_connect_event(self._vm, lib._uvm_py_on_event, handler.handle, ffi.NULL)
        self._handlers[hid] = handler
        return hid

    def remove_event_handler(self, handle):
        """Disconnects a callback connected with :meth:`on_event`."""
        if self._handlers.pop(handle, None) is not None and self._vm is not None:
            lib.uvm_vm_disconnect_event(self._vm, handle)

    def events(self, timeout=10.0):
        """A blocking iterator over the events from now on (an :class:`EventIterator`).

        It ends when `timeout` seconds pass with no new event (None: never),
        or after HYPERVISOR_EXITED was yielded and nothing is pending.
        """
        return EventIterator(self, timeout)

    # -- context manager

    def __enter__(self):
        """Starts the VM (see :meth:`start`)."""
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        """Stops the VM: ``stop(timeout=5.0)``, then kill and wait if that fails."""
        try:
            self._stop(5.0, before=False)
        except Error:
            if self.pid is not None:
                try:
                    self.kill()
                except NotRunning:
                    pass
                self.wait(10.0)
        _raise_pending()
        return False

    def __repr__(self):
        return "<uvm.Vm %r %s %s>" % (self.name, self.hypervisor.name.lower(),
                                      self.state.name.lower())


_RUNNING_STATES = (lib.UVM_VM_STATE_STARTING, lib.UVM_VM_STATE_RUNNING,
                   lib.UVM_VM_STATE_PAUSED, lib.UVM_VM_STATE_STOPPING)
