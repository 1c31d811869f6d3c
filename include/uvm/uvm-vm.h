/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <gio/gio.h>
#include <uvm/uvm-types.h>

G_BEGIN_DECLS

#define UVM_TYPE_VM (uvm_vm_get_type ())
UVM_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (UvmVm, uvm_vm, UVM, VM, GObject)

/**
 * UvmEventFunc:
 * @vm: the VM the event is about
 * @event: (transfer none): the event; take a reference to keep it
 * @user_data: the data given to uvm_vm_connect_event()
 *
 * Receives the events of a VM, in the main context the VM was started in.
 */
typedef void (*UvmEventFunc) (UvmVm *vm, UvmEvent *event, gpointer user_data);

/**
 * UVM_VM_MIN_MEMORY:
 *
 * The least memory a VM definition may ask for, in bytes.
 */
#define UVM_VM_MIN_MEMORY (64 * UVM_MIB)
/** UVM_VM_MAX_VCPUS: the most vCPUs a definition may ask for. */
#define UVM_VM_MAX_VCPUS 255
/** UVM_VM_NAME_MAX: the longest VM name, in bytes. */
#define UVM_VM_NAME_MAX 64

/* ---- Definition ------------------------------------------------------ */

/**
 * uvm_vm_new:
 * @name: the VM's name: 1 to %UVM_VM_NAME_MAX bytes of letters, digits, '.',
 *   '_' and '-', not starting with '.' or '-'. It names the runtime
 *   directory and feeds derived identities (MACs), so keep it stable.
 * @hypervisor: the hypervisor to run it on
 *
 * Creates a VM definition with 1 vCPU, 256 MiB of memory, the backend's
 * default machine type and no devices. A malformed name is reported by
 * validation, not here.
 *
 * Returns: (transfer full): a new #UvmVm. Dropping the last reference to a
 *   running VM kills its hypervisor and cleans up after it.
 */
UVM_AVAILABLE_IN_0_1
UvmVm *uvm_vm_new (const char *name, UvmHypervisor hypervisor);

/**
 * uvm_vm_get_name:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none): the name given to uvm_vm_new().
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_get_name (UvmVm *vm);

/**
 * uvm_vm_get_hypervisor:
 * @vm: a #UvmVm
 *
 * Returns: the hypervisor given to uvm_vm_new().
 */
UVM_AVAILABLE_IN_0_1
UvmHypervisor uvm_vm_get_hypervisor (UvmVm *vm);

/**
 * uvm_vm_set_machine:
 * @vm: a #UvmVm
 * @machine: the machine type
 *
 * Changes take effect at the next start.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_machine (UvmVm *vm, UvmMachine machine);

/**
 * uvm_vm_get_machine:
 * @vm: a #UvmVm
 *
 * Returns: the machine type set, possibly %UVM_MACHINE_DEFAULT.
 */
UVM_AVAILABLE_IN_0_1
UvmMachine uvm_vm_get_machine (UvmVm *vm);

/**
 * uvm_vm_set_accel:
 * @vm: a #UvmVm
 * @accel: the accelerator
 *
 * Chooses how guest code runs; the default, %UVM_ACCEL_AUTO, prefers KVM.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_accel (UvmVm *vm, UvmAccel accel);

/**
 * uvm_vm_get_accel:
 * @vm: a #UvmVm
 *
 * Returns: the accelerator set.
 */
UVM_AVAILABLE_IN_0_1
UvmAccel uvm_vm_get_accel (UvmVm *vm);

/**
 * uvm_vm_set_kernel:
 * @vm: a #UvmVm
 * @kernel: path of the kernel image (bzImage or ELF vmlinux)
 * @initramfs: (nullable): path of an initramfs, or %NULL
 * @cmdline: (nullable): the kernel command line, or %NULL for none
 *
 * Boots the VM by direct kernel boot. Relative paths are made absolute now.
 * The files are checked (exist, readable) by validation.
 *
 * The kernel is optional on a hypervisor with %UVM_FEATURE_FIRMWARE_BOOT
 * (qemu with the q35 or pc machine type): a VM without one boots its first
 * disk device through the hypervisor's firmware (SeaBIOS), which then gets
 * boot index 0. Without a kernel a VM needs a disk, and validation refuses
 * it otherwise with %UVM_ERROR_INVALID_DEFINITION, as it does on the microvm
 * machine type (no firmware disk boot); cloud-hypervisor refuses it with
 * %UVM_ERROR_UNSUPPORTED. An initramfs and a command line go with a kernel
 * only. Since 0.2 for the disk boot; before, a kernel was always required.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_kernel (UvmVm      *vm,
                        const char *kernel,
                        const char *initramfs,
                        const char *cmdline);

/**
 * uvm_vm_get_kernel:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none) (nullable): the absolute kernel path, or %NULL.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_get_kernel (UvmVm *vm);

/**
 * uvm_vm_get_initramfs:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none) (nullable): the absolute initramfs path, or %NULL.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_get_initramfs (UvmVm *vm);

/**
 * uvm_vm_get_kernel_cmdline:
 * @vm: a #UvmVm
 *
 * The kernel command line given to uvm_vm_set_kernel() (not the
 * hypervisor's: that is uvm_vm_get_command_line()). Since 0.3.
 *
 * Returns: (transfer none) (nullable): the kernel command line, or %NULL.
 */
UVM_AVAILABLE_IN_0_3
const char *uvm_vm_get_kernel_cmdline (UvmVm *vm);

/**
 * uvm_vm_get_cmdline:
 * @vm: a #UvmVm
 *
 * The kernel command line. Deprecated since 0.3: the name was too close to
 * uvm_vm_get_command_line(); use uvm_vm_get_kernel_cmdline(), which does
 * the same.
 *
 * Returns: (transfer none) (nullable): the kernel command line, or %NULL.
 */
UVM_DEPRECATED_IN_0_3_FOR (uvm_vm_get_kernel_cmdline)
const char *uvm_vm_get_cmdline (UvmVm *vm);

/**
 * uvm_vm_set_vcpus:
 * @vm: a #UvmVm
 * @vcpus: number of virtual CPUs, 1 to %UVM_VM_MAX_VCPUS (checked at
 *   validation)
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_vcpus (UvmVm *vm, guint vcpus);

/**
 * uvm_vm_get_vcpus:
 * @vm: a #UvmVm
 *
 * Returns: the number of vCPUs.
 */
UVM_AVAILABLE_IN_0_1
guint uvm_vm_get_vcpus (UvmVm *vm);

/**
 * uvm_vm_set_memory:
 * @vm: a #UvmVm
 * @bytes: guest memory in bytes: at least %UVM_VM_MIN_MEMORY and a whole
 *   number of MiB (checked at validation)
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_memory (UvmVm *vm, guint64 bytes);

/**
 * uvm_vm_get_memory:
 * @vm: a #UvmVm
 *
 * Returns: guest memory in bytes.
 */
UVM_AVAILABLE_IN_0_1
guint64 uvm_vm_get_memory (UvmVm *vm);

/**
 * uvm_vm_add_device:
 * @vm: a #UvmVm
 * @device: (transfer full): the device; the VM takes over the caller's
 *   reference, so `uvm_vm_add_device (vm, uvm_device_new_rng ())` leaks
 *   nothing
 *
 * Attaches a device. A device without an id gets one from its kind and
 * position ("net0", ...); a net device without a MAC gets one derived from
 * the VM and network names. A device belongs to one VM: adding it to a
 * second one is a programming error (g_critical) and is ignored. Takes
 * effect at the next start.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_add_device (UvmVm *vm, UvmDevice *device);

/**
 * uvm_vm_get_n_devices:
 * @vm: a #UvmVm
 *
 * Returns: how many devices the VM has.
 */
UVM_AVAILABLE_IN_0_1
guint uvm_vm_get_n_devices (UvmVm *vm);

/**
 * uvm_vm_get_device:
 * @vm: a #UvmVm
 * @index: 0 to uvm_vm_get_n_devices() - 1
 *
 * Returns: (transfer none) (nullable): the device at @index in the order
 *   added, or %NULL when out of range.
 */
UVM_AVAILABLE_IN_0_1
UvmDevice *uvm_vm_get_device (UvmVm *vm, guint index);

/**
 * uvm_vm_set_extra_args:
 * @vm: a #UvmVm
 * @args: (nullable) (array zero-terminated=1): arguments appended to the
 *   hypervisor's command line as they are (never split or re-quoted), or
 *   %NULL for none
 *
 * An escape hatch for what the definition cannot say. The library does not
 * check them; the hypervisor may refuse them at start.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_extra_args (UvmVm *vm, const char *const *args);

/**
 * uvm_vm_get_extra_args:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none) (array zero-terminated=1): the extra arguments;
 *   an empty array when none.
 */
UVM_AVAILABLE_IN_0_1
const char *const *uvm_vm_get_extra_args (UvmVm *vm);

/**
 * uvm_vm_set_hypervisor_path:
 * @vm: a #UvmVm
 * @path: (nullable): the hypervisor executable, a path or a name looked up
 *   in PATH; %NULL for the default ("qemu-system-x86_64")
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_hypervisor_path (UvmVm *vm, const char *path);

/**
 * uvm_vm_get_hypervisor_path:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none): the executable as set, or the default name.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_get_hypervisor_path (UvmVm *vm);

/**
 * uvm_vm_set_runtime_dir:
 * @vm: a #UvmVm
 * @path: (nullable): directory for the control socket, logs and locks, or
 *   %NULL for the default: `/run/uvm/NAME` for root, else
 *   `$XDG_RUNTIME_DIR/uvm/NAME`
 *
 * The directory is created with mode 0700 at start, held with a lock while
 * the hypervisor runs (a second process starting the same VM gets
 * %UVM_ERROR_BUSY), and the library's files in it, then the directory
 * itself when empty, are removed when the hypervisor has been reaped.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_runtime_dir (UvmVm *vm, const char *path);

/**
 * uvm_vm_get_runtime_dir:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none): the runtime directory in effect.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_get_runtime_dir (UvmVm *vm);

/**
 * uvm_vm_set_start_paused:
 * @vm: a #UvmVm
 * @paused: whether to start with the vCPUs stopped
 *
 * A VM started paused is ready (controllable) as soon as its hypervisor is,
 * in state %UVM_VM_STATE_PAUSED; uvm_vm_resume() lets the guest run.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_set_start_paused (UvmVm *vm, gboolean paused);

/**
 * uvm_vm_get_start_paused:
 * @vm: a #UvmVm
 *
 * Returns: whether the VM starts paused.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_get_start_paused (UvmVm *vm);

/**
 * uvm_vm_set_confined:
 * @vm: a #UvmVm
 * @confined: whether to confine the hypervisor's networking
 *
 * Confines the hypervisor process (not the guest) so that it cannot reach
 * any network by itself, for a workstation whose only way out is its
 * gateway. Off by default; takes effect at the next start. A confined
 * hypervisor:
 *
 * - runs in a new, empty network namespace: it has only a loopback
 *   interface `lo`, and that is down. The file descriptors the library
 *   gives it keep working, because they were opened before, in the
 *   caller's namespace: isolated-link socket pairs, taps, the control
 *   socket, the event pipe. Requests that name an interface (ioctls such
 *   as SIOCGIFMTU on a socket) look the name up in the empty namespace,
 *   so a hypervisor that asks them about its tap by name gets `ENODEV`;
 * - runs under a seccomp filter on which socket() fails with `EACCES` for
 *   the families `AF_INET`, `AF_INET6`, `AF_PACKET` and `AF_NETLINK`
 *   (through every system-call ABI of the machine: on x86-64 the i386
 *   `socketcall (SYS_SOCKET)` is denied for every family, since its
 *   arguments cannot be inspected). Unix sockets, socketpair() (which the
 *   kernel offers for unix sockets only) and io_uring stay allowed. The
 *   filter is a denylist: it stacks with the hypervisor's own (qemu
 *   `-sandbox`, cloud-hypervisor's seccomp) and changes nothing else. A
 *   socket made some other way (an io_uring socket request, which seccomp
 *   does not see) still lands in the empty namespace.
 *
 * The namespace needs `CAP_SYS_ADMIN`: as root (or with that capability)
 * it just works; otherwise the start fails with %UVM_ERROR_PERMISSION
 * naming `CAP_SYS_ADMIN`, and nothing is left running. The filter needs
 * nothing (the child sets no_new_privs, as it always does).
 *
 * Validation refuses what a confined VM cannot run: qemu user-mode
 * networking (%UVM_UPLINK_USER), which opens host sockets in the qemu
 * process, fails with %UVM_ERROR_INVALID_DEFINITION naming the device.
 * Uplinks whose host side is outside the hypervisor (%UVM_UPLINK_PASST:
 * a passt process, not confined; %UVM_UPLINK_TAP_NAT: a tap fd) work.
 * The launch plan (uvm_vm_get_launch_plan()) shows the confinement in a
 * `# confined: ...` comment; the command line does not change. Since 0.2.
 */
UVM_AVAILABLE_IN_0_2
void uvm_vm_set_confined (UvmVm *vm, gboolean confined);

/**
 * uvm_vm_get_confined:
 * @vm: a #UvmVm
 *
 * Since 0.2.
 *
 * Returns: whether the VM's hypervisor is confined (uvm_vm_set_confined()).
 */
UVM_AVAILABLE_IN_0_2
gboolean uvm_vm_get_confined (UvmVm *vm);

/**
 * UVM_USER_DYNAMIC:
 *
 * For uvm_vm_set_user(): the default. When libuvm runs as root (with
 * `CAP_SETUID` and `CAP_SETGID`), each run gets a user of its own from the
 * reserved range uid 2000000000 to 2000065535 (the gid equals the uid):
 * the start point is derived from the VM name, so a VM usually gets the
 * same uid again, and two VMs running at once never share one (a lock
 * file under `/run/uvm/.users` holds it for the run). When libuvm does not
 * run as root, the hypervisor runs as the caller's own user. Since 0.3.
 */
#define UVM_USER_DYNAMIC ((guint32) 0xffffffffu)

/**
 * UVM_USER_CALLER:
 *
 * For uvm_vm_set_user(): the hypervisor keeps the caller's uid and gid
 * (root stays uid 0), still with every capability dropped. Since 0.3.
 */
#define UVM_USER_CALLER ((guint32) 0xfffffffeu)

/**
 * uvm_vm_set_user:
 * @vm: a #UvmVm
 * @uid: the uid the hypervisor and its helpers (passt) run as, or
 *   %UVM_USER_DYNAMIC (the default) or %UVM_USER_CALLER
 * @gid: their gid; ignored for %UVM_USER_DYNAMIC and %UVM_USER_CALLER;
 *   %UVM_USER_DYNAMIC or %UVM_USER_CALLER here with a real @uid means a gid
 *   equal to @uid
 *
 * Chooses the unprivileged user of the VM's processes; takes effect at the
 * next start. Whatever the user, every process libuvm starts runs with
 * empty capability sets (effective, permitted, inheritable, ambient) and,
 * when libuvm holds `CAP_SETPCAP`, an empty bounding set, under
 * no_new_privs. Its only supplementary group is the group that owns
 * `/dev/kvm`, when that exists, so that KVM keeps working.
 *
 * The library opens what the hypervisor needs and passes file descriptors:
 * qemu gets its disk images and console file through `-add-fd` fd sets,
 * cloud-hypervisor its disks and serial file as `/proc/self/fd/N`, both
 * their kernel and initramfs as `/proc/self/fd/N`. A path under
 * `/proc/self/fd` skips directory permissions but the hypervisor reopens
 * the file, and the file's own mode must let the VM user read it (write it
 * too, for a writable cloud-hypervisor disk); a start that would fail so
 * fails with %UVM_ERROR_PERMISSION naming the file. Files the library
 * creates for the VM (an image with uvm_storage_set_create_size(),
 * cloud-hypervisor's console file) are given to the VM user, and a file
 * owned by an earlier dynamic user is given to the current one.
 *
 * Without `CAP_SETUID` and `CAP_SETGID` the library cannot change users:
 * %UVM_USER_DYNAMIC and %UVM_USER_CALLER then run the hypervisor as the
 * caller, and any other @uid or @gid fails at start with
 * %UVM_ERROR_PERMISSION. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
void uvm_vm_set_user (UvmVm *vm, guint32 uid, guint32 gid);

/**
 * uvm_vm_get_user:
 * @vm: a #UvmVm
 *
 * Since 0.3.
 *
 * Returns: the uid as set with uvm_vm_set_user(): a uid,
 *   %UVM_USER_DYNAMIC (the default) or %UVM_USER_CALLER.
 */
UVM_AVAILABLE_IN_0_3
guint32 uvm_vm_get_user (UvmVm *vm);

/**
 * uvm_vm_get_group:
 * @vm: a #UvmVm
 *
 * Since 0.3.
 *
 * Returns: the gid as set with uvm_vm_set_user(), or %UVM_USER_DYNAMIC or
 *   %UVM_USER_CALLER when the uid is one of those.
 */
UVM_AVAILABLE_IN_0_3
guint32 uvm_vm_get_group (UvmVm *vm);

/**
 * uvm_vm_get_run_user:
 * @vm: a #UvmVm
 * @uid: (out) (optional): the uid the current run's processes run as
 * @gid: (out) (optional): their gid
 *
 * The user in effect for the current (or last started) run, e.g. the
 * dynamic uid it was given. Since 0.3.
 *
 * Returns: %TRUE when the VM has been started, %FALSE (and 0s) before.
 */
UVM_AVAILABLE_IN_0_3
gboolean uvm_vm_get_run_user (UvmVm *vm, guint32 *uid, guint32 *gid);

/**
 * uvm_vm_set_gateway:
 * @workstation: a #UvmVm: the workstation
 * @gateway: (nullable): the VM that is @workstation's only way out, or
 *   %NULL to clear
 *
 * Puts @workstation behind @gateway, Whonix-style. The link itself is an
 * ordinary %UVM_NETWORK_ISOLATED network that both VMs have a net device
 * on; this call adds the rules that make the two a unit:
 *
 * - Fail closed: uvm_vm_start() of @workstation fails with
 *   %UVM_ERROR_INVALID_DEFINITION, before anything is created (no runtime
 *   directory, no process, no socket pair), when @gateway is not running
 *   or paused (%UVM_VM_STATE_RUNNING or %UVM_VM_STATE_PAUSED), or when the
 *   two share no isolated network (no #UvmNetwork of kind
 *   %UVM_NETWORK_ISOLATED on which both have a net device). The code is
 *   the one for a definition that cannot be started as it stands; the
 *   message names the gateway and what is missing.
 * - The start order is therefore enforced: the gateway first.
 * - The relation itself is validated, not asserted: a VM set as its own
 *   gateway, or gateways that lead back to a VM (A behind B behind A),
 *   make uvm_vm_validate(), the plan and the start fail with
 *   %UVM_ERROR_INVALID_DEFINITION naming the `gateway` field (since 0.3;
 *   before, setting a VM as its own gateway was a critical warning that
 *   left it without one).
 * - When @gateway's hypervisor exits, for any reason (stopped, crashed,
 *   killed from outside, or its #UvmVm dropped while running), the
 *   workstation is stopped at once, forced, as by uvm_vm_stop() with a
 *   timeout of 0 (its guest gets no power-button press). We chose to stop
 *   the workstation rather than cut its link: with a socket-pair link the
 *   workstation's frames already go nowhere once the gateway is gone, and
 *   a stopped workstation cannot be re-linked to something else by
 *   accident; a new start is again checked against a running gateway.
 *
 * @workstation holds a weak reference to @gateway: no reference cycle, and
 * dropping the gateway clears it (uvm_vm_get_gateway() then returns
 * %NULL). Changing or clearing the gateway, or finalizing @workstation,
 * disconnects everything it attached to the gateway. Both VMs must be used
 * from the same main context. Setting it while @workstation runs affects
 * only later starts and later gateway exits. Since 0.2.
 */
UVM_AVAILABLE_IN_0_2
void uvm_vm_set_gateway (UvmVm *workstation, UvmVm *gateway);

/**
 * uvm_vm_get_gateway:
 * @vm: a #UvmVm
 *
 * Since 0.2.
 *
 * Returns: (transfer none) (nullable): the gateway set with
 *   uvm_vm_set_gateway(), or %NULL when none is set or it was finalized.
 */
UVM_AVAILABLE_IN_0_2
UvmVm *uvm_vm_get_gateway (UvmVm *vm);

/**
 * uvm_vm_validate:
 * @vm: a #UvmVm
 * @error: return location for a #GError
 *
 * Checks the definition without starting anything: every check that start
 * makes before it spawns, including that the hypervisor executable is found.
 *
 * Returns: %TRUE when the definition can be started; otherwise %FALSE with
 *   %UVM_ERROR_INVALID_DEFINITION or %UVM_ERROR_UNSUPPORTED and a message
 *   naming the field.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_validate (UvmVm *vm, GError **error);

/**
 * uvm_vm_get_command_line:
 * @vm: a #UvmVm
 * @error: return location for a #GError
 *
 * The hypervisor command line the next start would execute, shell-quoted
 * on one line. File descriptors it names (the control socket, links) are the
 * numbers the child will have. Helper processes the library starts first
 * (passt for %UVM_UPLINK_PASST, since 0.2) precede it, each as
 * `helper args... &`. Pure: nothing is created or opened, and the
 * executable is not looked up.
 *
 * Returns: (transfer full) (nullable): the command line, or %NULL with the
 *   validation error.
 */
UVM_AVAILABLE_IN_0_1
char *uvm_vm_get_command_line (UvmVm *vm, GError **error);

/**
 * uvm_vm_get_launch_plan:
 * @vm: a #UvmVm
 * @error: return location for a #GError
 *
 * The whole launch plan as a commented shell script: the runtime directory,
 * each file descriptor passed to the child and what it is, the command line
 * one option per line, and the control requests sent after spawn. Pure,
 * like uvm_vm_get_command_line().
 *
 * Returns: (transfer full) (nullable): the plan, or %NULL with the
 *   validation error.
 */
UVM_AVAILABLE_IN_0_1
char *uvm_vm_get_launch_plan (UvmVm *vm, GError **error);

/* ---- Lifecycle ------------------------------------------------------- */

/**
 * uvm_vm_start_async:
 * @vm: a #UvmVm in state DEFINED, STOPPED or CRASHED
 * @cancellable: (nullable): cancels the start; the hypervisor is then killed
 *   and reaped before the callback runs
 * @callback: called when the VM is ready or the start failed
 * @user_data: data for @callback
 *
 * Validates, prepares the runtime directory, binds the control socket,
 * spawns the hypervisor and negotiates the control protocol. The VM is ready
 * when the hypervisor confirms the guest's state (running, or paused for a
 * VM set to start paused). The main context that is thread-default now
 * becomes the VM's context: its events, the child watch and all later
 * callbacks run there. Must be called from the thread that owns it.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_start_async (UvmVm              *vm,
                         GCancellable       *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer            user_data);

/**
 * uvm_vm_start_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the VM is ready. On %FALSE nothing is left running or
 *   on disk (the runtime directory is removed) and @error is
 *   %UVM_ERROR_INVALID_DEFINITION, %UVM_ERROR_UNSUPPORTED, %UVM_ERROR_BUSY,
 *   %UVM_ERROR_START_FAILED (the hypervisor could not be executed, or
 *   exited during start: its exit code or signal and its last log lines),
 *   %UVM_ERROR_HYPERVISOR (it refused a start request: the message quotes
 *   its error, e.g. cloud-hypervisor's REST error body or qemu's error class
 *   and description), %UVM_ERROR_PROTOCOL (its control connection carried
 *   what is not the protocol), %UVM_ERROR_HYPERVISOR_DIED (it closed the
 *   control connection), %UVM_ERROR_TIMEOUT (no answer in time) or
 *   %G_IO_ERROR_CANCELLED. In every case the message gives the root cause
 *   first and then the hypervisor's last log lines, if it wrote any; when
 *   libuvm itself ended the hypervisor after such an error, the message
 *   says so and never blames that signal. For a confined VM
 *   (uvm_vm_set_confined()) also %UVM_ERROR_PERMISSION (no
 *   `CAP_SYS_ADMIN` for its network namespace) or %UVM_ERROR_FAILED (its
 *   seccomp filter could not be built; nothing was spawned).
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_start_finish (UvmVm *vm, GAsyncResult *result, GError **error);

/**
 * uvm_vm_start:
 * @vm: a #UvmVm
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_start_async(): iterates the thread-default main
 * context until the start completes, so other sources of that context may
 * run meanwhile.
 *
 * Returns: as uvm_vm_start_finish().
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_start (UvmVm *vm, GCancellable *cancellable, GError **error);

/**
 * uvm_vm_pause_async:
 * @vm: a running #UvmVm
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the vCPUs are stopped or the request failed
 * @user_data: data for @callback
 *
 * Stops the guest's vCPUs. Pausing a paused VM succeeds.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_pause_async (UvmVm              *vm,
                         GCancellable       *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer            user_data);

/**
 * uvm_vm_pause_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE when paused; else %FALSE with %UVM_ERROR_NOT_RUNNING,
 *   %UVM_ERROR_HYPERVISOR, %UVM_ERROR_HYPERVISOR_DIED or
 *   %G_IO_ERROR_CANCELLED.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_pause_finish (UvmVm *vm, GAsyncResult *result, GError **error);

/**
 * uvm_vm_pause:
 * @vm: a #UvmVm
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_pause_async(): iterates the thread-default main
 * context until it completes, so other sources of that context may run
 * meanwhile.
 *
 * Returns: as uvm_vm_pause_finish().
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_pause (UvmVm *vm, GCancellable *cancellable, GError **error);

/**
 * uvm_vm_resume_async:
 * @vm: a paused #UvmVm
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the vCPUs run again or the request failed
 * @user_data: data for @callback
 *
 * Lets the guest run again, also one started paused. Resuming a running VM
 * succeeds.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_resume_async (UvmVm              *vm,
                          GCancellable       *cancellable,
                          GAsyncReadyCallback callback,
                          gpointer            user_data);

/**
 * uvm_vm_resume_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE when running; errors as uvm_vm_pause_finish().
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_resume_finish (UvmVm *vm, GAsyncResult *result, GError **error);

/**
 * uvm_vm_resume:
 * @vm: a #UvmVm
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_resume_async(): iterates the thread-default main
 * context until it completes, so other sources of that context may run
 * meanwhile.
 *
 * Returns: as uvm_vm_resume_finish().
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_resume (UvmVm *vm, GCancellable *cancellable, GError **error);

/**
 * uvm_vm_stop_async:
 * @vm: a #UvmVm
 * @timeout_ms: how long the guest gets to power off after the ACPI power
 *   button; 0 skips the button (forced stop)
 * @cancellable: (nullable): cancels the wait only; the escalation goes on
 * @callback: called when the hypervisor has exited and been reaped
 * @user_data: data for @callback
 *
 * Stops the VM: presses the power button (qemu `system_powerdown`) unless
 * @timeout_ms is 0 or the guest is paused, waits up to @timeout_ms for the
 * hypervisor to exit, then asks the hypervisor to quit (`quit`), then sends
 * SIGTERM, then SIGKILL, each after a short grace period
 * (%UVM_VM_STOP_GRACE_MS). A stop while a start is under way cancels the
 * start. Concurrent stops complete together; the first one's deadline rules.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_stop_async (UvmVm              *vm,
                        guint               timeout_ms,
                        GCancellable       *cancellable,
                        GAsyncReadyCallback callback,
                        gpointer            user_data);

/** UVM_VM_STOP_GRACE_MS: time given to each escalation step of a stop. */
#define UVM_VM_STOP_GRACE_MS 2000

/**
 * uvm_vm_stop_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE once the hypervisor is gone, also when it already was;
 *   %FALSE with %UVM_ERROR_NOT_RUNNING for a VM never started, or
 *   %G_IO_ERROR_CANCELLED.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_stop_finish (UvmVm *vm, GAsyncResult *result, GError **error);

/**
 * uvm_vm_stop:
 * @vm: a #UvmVm
 * @timeout_ms: as for uvm_vm_stop_async()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_stop_async(): iterates the thread-default main
 * context until it completes, so other sources of that context may run
 * meanwhile.
 *
 * Returns: as uvm_vm_stop_finish().
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_stop (UvmVm        *vm,
                      guint         timeout_ms,
                      GCancellable *cancellable,
                      GError      **error);

/**
 * uvm_vm_kill:
 * @vm: a #UvmVm
 * @error: return location for a #GError
 *
 * Sends SIGKILL to the hypervisor now. The exit is reported as usual
 * (%UVM_EVENT_HYPERVISOR_EXITED, state %UVM_VM_STATE_STOPPED) once reaped
 * in the VM's main context; use uvm_vm_wait() to wait for it.
 *
 * Returns: %TRUE when the signal was sent; %FALSE with
 *   %UVM_ERROR_NOT_RUNNING when there is no hypervisor process.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_kill (UvmVm *vm, GError **error);

/**
 * uvm_vm_wait_async:
 * @vm: a #UvmVm
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the hypervisor has exited and been reaped
 * @user_data: data for @callback
 *
 * Waits for the hypervisor to exit, for whatever reason, without asking it
 * to. Completes at once for a VM that is not running.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_wait_async (UvmVm              *vm,
                        GCancellable       *cancellable,
                        GAsyncReadyCallback callback,
                        gpointer            user_data);

/**
 * uvm_vm_wait_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE once the hypervisor is gone; %FALSE with
 *   %G_IO_ERROR_CANCELLED.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_wait_finish (UvmVm *vm, GAsyncResult *result, GError **error);

/**
 * uvm_vm_wait:
 * @vm: a #UvmVm
 * @timeout_ms: the longest wait, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_wait_async() with a deadline: iterates the
 * thread-default main context (where the deadline's timer is attached too)
 * until the hypervisor is gone or the deadline passes, so other sources of
 * that context may run meanwhile.
 *
 * Returns: %TRUE once the hypervisor is gone; %FALSE with
 *   %UVM_ERROR_TIMEOUT (it still runs) or %G_IO_ERROR_CANCELLED.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_wait (UvmVm        *vm,
                      int           timeout_ms,
                      GCancellable *cancellable,
                      GError      **error);

/**
 * uvm_vm_get_state:
 * @vm: a #UvmVm
 *
 * Returns: the current state.
 */
UVM_AVAILABLE_IN_0_1
UvmVmState uvm_vm_get_state (UvmVm *vm);

/**
 * uvm_vm_state_to_string:
 * @state: a #UvmVmState
 *
 * Returns: (transfer none): a static lower-case name ("running", ...), or
 *   "unknown".
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_state_to_string (UvmVmState state);

/**
 * uvm_vm_get_pid:
 * @vm: a #UvmVm
 *
 * Returns: the hypervisor's process id while it runs, else 0. Signal it
 *   through the library (uvm_vm_kill()), which uses a pidfd and so cannot
 *   hit a recycled pid.
 */
UVM_AVAILABLE_IN_0_1
int uvm_vm_get_pid (UvmVm *vm);

/**
 * uvm_vm_get_exit_status:
 * @vm: a #UvmVm
 * @exit_code: (out) (optional): exit code, or -1 when a signal ended it
 * @exit_signal: (out) (optional): the signal, or 0
 *
 * How the last run's hypervisor ended.
 *
 * Returns: %TRUE when a run has ended and the outputs were set.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_vm_get_exit_status (UvmVm *vm, int *exit_code, int *exit_signal);

/**
 * UVM_VM_DEFAULT_CONTROL_TIMEOUT_MS:
 *
 * The default of uvm_vm_set_control_timeout(): 10 s, far above what any
 * request of a healthy hypervisor takes. Since 0.3.
 */
#define UVM_VM_DEFAULT_CONTROL_TIMEOUT_MS 10000

/**
 * uvm_vm_set_control_timeout:
 * @vm: a #UvmVm
 * @timeout_ms: how long one control request (QMP command, REST call) may go
 *   unanswered, in milliseconds; 0 means no deadline
 *
 * Sets the deadline of every request libuvm sends to the hypervisor:
 * those of a start (the QMP handshake, cloud-hypervisor's vm.create and
 * vm.boot, ...), uvm_vm_pause(), uvm_vm_resume(), balloon changes, the
 * requests of a stop, uvm_vm_qmp_execute() and uvm_vm_ch_request(). A
 * request still unanswered at its deadline fails with %UVM_ERROR_TIMEOUT
 * naming it; the hypervisor is then out of step with libuvm, so the
 * control connection is given up: a %UVM_EVENT_CONTROL_LOST event is
 * emitted (outside a start; a start fails instead), later requests fail
 * at once with %UVM_ERROR_CONTROL_LOST, and a stop escalates straight to
 * signals. The start as a whole keeps its own, longer deadline.
 *
 * Takes effect at the next start. The default is
 * %UVM_VM_DEFAULT_CONTROL_TIMEOUT_MS. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
void uvm_vm_set_control_timeout (UvmVm *vm, guint timeout_ms);

/**
 * uvm_vm_get_control_timeout:
 * @vm: a #UvmVm
 *
 * Returns: the deadline of one control request in milliseconds (0: none);
 *   see uvm_vm_set_control_timeout(). Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
guint uvm_vm_get_control_timeout (UvmVm *vm);

/**
 * uvm_vm_get_control_lost:
 * @vm: a #UvmVm
 * @error: (nullable): return location for why the connection was lost
 *
 * Whether the hypervisor of the current run still runs but can no longer
 * be controlled: its control connection was closed by the hypervisor,
 * broken by what is not the protocol, or a request went unanswered past
 * the control timeout (uvm_vm_set_control_timeout()). The
 * %UVM_EVENT_CONTROL_LOST event reports the moment it happens. While it
 * is %TRUE, uvm_vm_pause(), uvm_vm_resume(), balloon changes and the raw
 * requests fail at once with %UVM_ERROR_CONTROL_LOST, and a stop sends
 * SIGTERM, then SIGKILL, without trying the power button or `quit`. A new
 * start clears it.
 *
 * Returns: %TRUE (with @error set to a copy of the reason, when given) if
 *   the control connection was lost during the current or last run.
 *   Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
gboolean uvm_vm_get_control_lost (UvmVm *vm, GError **error);

/**
 * uvm_vm_get_console_path:
 * @vm: a #UvmVm
 *
 * The console log: every byte the guest writes to its serial console is
 * appended to it while the VM runs (since 0.3 through the console relay,
 * whoever started the VM). It is the path given to
 * uvm_device_new_console(); else `NAME-console.log` in the log directory
 * (uvm_vm_set_log_dir()), which stays after the VM stopped; else
 * `console.log` in the runtime directory, removed with it when the run
 * ends.
 *
 * Returns: (transfer none) (nullable): the console log, or %NULL without a
 *   console device.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_get_console_path (UvmVm *vm);

/**
 * uvm_vm_set_log_dir:
 * @vm: a #UvmVm that is not running
 * @path: (nullable): an existing directory, or %NULL for none
 *
 * Where the console log of a console device created without a path goes:
 * `NAME-console.log` in @path (NAME the VM's name), appended to across
 * runs and kept after the VM stopped. Without a log directory (the
 * default) it is `console.log` in the runtime directory, removed at the
 * end of each run, as before 0.3. A relative @path is made absolute now.
 * A directory that does not exist fails validation (field `log-dir`).
 * Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
void uvm_vm_set_log_dir (UvmVm *vm, const char *path);

/**
 * uvm_vm_get_log_dir:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none) (nullable): the log directory set with
 *   uvm_vm_set_log_dir(), or %NULL. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
const char *uvm_vm_get_log_dir (UvmVm *vm);

/**
 * uvm_vm_get_console_socket_path:
 * @vm: a #UvmVm
 *
 * The unix socket (`console.sock` in the runtime directory) on which the
 * console relay of a running VM serves its serial console: each client
 * receives everything the guest writes from the moment it connected, and
 * what it writes goes to the guest (several clients may be connected at
 * once; their input is interleaved). Any process allowed into the runtime
 * directory may connect; uvm_vm_open_console() does it for this one.
 *
 * Returns: (transfer none) (nullable): the socket's path, or %NULL without
 *   a console device. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
const char *uvm_vm_get_console_socket_path (UvmVm *vm);

/**
 * uvm_vm_open_console:
 * @vm: a running #UvmVm with a console device
 * @error: return location for a #GError, or %NULL
 *
 * Connects to the VM's console (see uvm_vm_get_console_socket_path()):
 * reading the fd gives the guest's serial output from the moment the relay
 * accepted the connection, right after this call (what came before is in
 * the console log, uvm_vm_get_console_path()), writing it
 * types into the guest's console. The console log keeps receiving
 * everything whether or not the fd is read; a client that does not read
 * is dropped once 1 MiB waits for it. End of file means the hypervisor
 * exited. The fd is blocking; may be called from any thread.
 *
 * Returns: a new connected stream socket (close-on-exec) that the caller
 *   owns and closes, or -1 with @error set: %UVM_ERROR_NOT_RUNNING when the
 *   VM has no console device or no hypervisor process, or the socket
 *   cannot be reached. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
int uvm_vm_open_console (UvmVm *vm, GError **error);

/**
 * uvm_vm_wait_for_console_async:
 * @vm: a running #UvmVm with a console device
 * @pattern: a #GRegex pattern (Perl syntax); a word without special
 *   characters is a plain substring (quote others with
 *   g_regex_escape_string())
 * @cancellable: (nullable): a #GCancellable
 * @callback: called on the thread-default main context of the caller
 * @user_data: data for @callback
 *
 * Waits until a line of the guest's console output matches @pattern:
 * the readiness of a guest that prints a line when it is up. Each line
 * (without its line ending) is matched on its own, whatever the reads
 * that brought it. The line being written (no newline yet, such as a
 * shell prompt) is matched too, as far as it arrived: a pattern may match
 * the start of a line before its end came. End the pattern with `$` to
 * match whole lines only (`$` never matches where a line was not ended
 * yet). Output since the current run started
 * counts, also output written before this call: a line printed between
 * uvm_vm_start() and the call is found. Nothing polls: the wait reads the
 * console log each time it grows (inotify), and learns from the console
 * socket when the relay ended.
 *
 * A match emits %UVM_EVENT_CONSOLE_MATCH before @callback runs.
 * Errors (from uvm_vm_wait_for_console_finish()): %UVM_ERROR_NOT_RUNNING
 * (no console device, no hypervisor, or the hypervisor exited before a
 * match), %UVM_ERROR_FAILED (a @pattern that does not compile, an
 * unreadable log), %G_IO_ERROR_CANCELLED. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
void uvm_vm_wait_for_console_async (UvmVm *vm, const char *pattern, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);

/**
 * uvm_vm_wait_for_console_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError, or %NULL
 *
 * Returns: (transfer full) (nullable): the line that matched (without its
 *   line ending), or %NULL with @error set. Free with g_free(). Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
char *uvm_vm_wait_for_console_finish (UvmVm *vm, GAsyncResult *result, GError **error);

/**
 * uvm_vm_wait_for_console:
 * @vm: a running #UvmVm with a console device
 * @pattern: a #GRegex pattern, as for uvm_vm_wait_for_console_async()
 * @timeout_ms: the most to wait, in milliseconds; 0 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The blocking form of uvm_vm_wait_for_console_async(): iterates the
 * thread-default main context until a line matches, @timeout_ms passed
 * (%UVM_ERROR_TIMEOUT), or the wait failed.
 *
 * Returns: (transfer full) (nullable): the line that matched, or %NULL with
 *   @error set. Free with g_free(). Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
char *uvm_vm_wait_for_console (UvmVm *vm, const char *pattern, guint timeout_ms,
                               GCancellable *cancellable, GError **error);

/**
 * uvm_vm_get_log_path:
 * @vm: a #UvmVm
 *
 * Returns: (transfer none): the file in the runtime directory that receives
 *   the hypervisor's stdout and stderr while it runs. It is removed with the
 *   runtime directory; its last lines are quoted in start errors.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_vm_get_log_path (UvmVm *vm);

/**
 * uvm_vm_connect_event:
 * @vm: a #UvmVm
 * @func: the function to call for each event
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data when the handler is disconnected or
 *   the VM finalized
 *
 * Subscribes to the VM's events; the same as connecting to its "event"
 * signal, for callers that do not use GObject signals directly. Events
 * arrive in the VM's main context, in the order they happened.
 *
 * Returns: a handler id for uvm_vm_disconnect_event(), never 0.
 */
UVM_AVAILABLE_IN_0_1
gulong uvm_vm_connect_event (UvmVm         *vm,
                             UvmEventFunc   func,
                             gpointer       user_data,
                             GDestroyNotify notify);

/**
 * uvm_vm_disconnect_event:
 * @vm: a #UvmVm
 * @handler_id: an id from uvm_vm_connect_event()
 *
 * Unsubscribes; @user_data's notify runs now.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_disconnect_event (UvmVm *vm, gulong handler_id);

/* ---- Escape hatch ---------------------------------------------------- */

/**
 * uvm_vm_qmp_execute_async:
 * @vm: a running qemu #UvmVm
 * @command: the QMP command name, e.g. "query-status"
 * @arguments_json: (nullable): its arguments as a JSON object text, or %NULL
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the reply
 * @user_data: data for @callback
 *
 * Sends a raw QMP command on the VM's control connection. The library does
 * not interpret it, so a command that changes state (e.g. "stop") shows up
 * through the events qemu sends.
 */
UVM_AVAILABLE_IN_0_1
void uvm_vm_qmp_execute_async (UvmVm              *vm,
                               const char         *command,
                               const char         *arguments_json,
                               GCancellable       *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer            user_data);

/**
 * uvm_vm_qmp_execute_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the reply's "return" value as JSON
 *   text, or %NULL with %UVM_ERROR_HYPERVISOR (qemu's error class and
 *   description), %UVM_ERROR_INVALID_DEFINITION (@arguments_json is not a
 *   JSON object), %UVM_ERROR_UNSUPPORTED (not a qemu VM),
 *   %UVM_ERROR_NOT_RUNNING or %UVM_ERROR_HYPERVISOR_DIED.
 */
UVM_AVAILABLE_IN_0_1
char *uvm_vm_qmp_execute_finish (UvmVm *vm, GAsyncResult *result, GError **error);

/**
 * uvm_vm_qmp_execute:
 * @vm: a #UvmVm
 * @command: the QMP command name
 * @arguments_json: (nullable): its arguments as a JSON object text
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_qmp_execute_async(): iterates the thread-default main
 * context until it completes, so other sources of that context may run
 * meanwhile.
 *
 * Returns: (transfer full) (nullable): as uvm_vm_qmp_execute_finish().
 */
UVM_AVAILABLE_IN_0_1
char *uvm_vm_qmp_execute (UvmVm        *vm,
                          const char   *command,
                          const char   *arguments_json,
                          GCancellable *cancellable,
                          GError      **error);

/**
 * uvm_vm_set_balloon_target_async:
 * @vm: a running #UvmVm with a balloon device
 * @guest_bytes: the memory the guest should keep, in bytes: at most the
 *   VM's memory (uvm_vm_get_memory()), a whole number of MiB
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the hypervisor accepted the target
 * @user_data: data for @callback
 *
 * Asks the guest's balloon driver to leave it @guest_bytes of memory. The
 * meaning is the same on both hypervisors: qemu's `balloon` takes this
 * guest-visible size as it is; cloud-hypervisor's `vm.resize` takes the
 * balloon's own size, so the library sends `desired_balloon` = memory -
 * @guest_bytes. Completion means the request was accepted; the guest
 * inflates or deflates the balloon afterwards, at its own pace. Since 0.2.
 */
UVM_AVAILABLE_IN_0_2
void uvm_vm_set_balloon_target_async (UvmVm              *vm,
                                      guint64             guest_bytes,
                                      GCancellable       *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer            user_data);

/**
 * uvm_vm_set_balloon_target_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the hypervisor accepted the target; %FALSE with
 *   %UVM_ERROR_UNSUPPORTED (no balloon device), %UVM_ERROR_INVALID_DEFINITION
 *   (target out of range), %UVM_ERROR_NOT_RUNNING, %UVM_ERROR_BUSY,
 *   %UVM_ERROR_HYPERVISOR or %UVM_ERROR_HYPERVISOR_DIED. Since 0.2.
 */
UVM_AVAILABLE_IN_0_2
gboolean uvm_vm_set_balloon_target_finish (UvmVm        *vm,
                                           GAsyncResult *result,
                                           GError      **error);

/**
 * uvm_vm_set_balloon_target:
 * @vm: a #UvmVm
 * @guest_bytes: the memory the guest should keep, in bytes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_set_balloon_target_async(): iterates the
 * thread-default main context until it completes, so other sources of that
 * context may run meanwhile. Since 0.2.
 *
 * Returns: as uvm_vm_set_balloon_target_finish().
 */
UVM_AVAILABLE_IN_0_2
gboolean uvm_vm_set_balloon_target (UvmVm        *vm,
                                    guint64       guest_bytes,
                                    GCancellable *cancellable,
                                    GError      **error);

/**
 * uvm_vm_ch_request_async:
 * @vm: a running cloud-hypervisor #UvmVm
 * @method: "GET" or "PUT"
 * @endpoint: the API endpoint without prefix, e.g. "vm.info", "vm.counters"
 * @body_json: (nullable): the request body as JSON text, or %NULL for none
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the response
 * @user_data: data for @callback
 *
 * Sends a raw request on the VM's API connection
 * (`http://localhost/api/v1/ENDPOINT`). The library does not interpret it;
 * state changes it causes show up through the event monitor. Since 0.2.
 */
UVM_AVAILABLE_IN_0_2
void uvm_vm_ch_request_async (UvmVm              *vm,
                              const char         *method,
                              const char         *endpoint,
                              const char         *body_json,
                              GCancellable       *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer            user_data);

/**
 * uvm_vm_ch_request_finish:
 * @vm: a #UvmVm
 * @result: the #GAsyncResult given to the callback
 * @status: (out) (optional): the HTTP status, whatever it is
 * @error: return location for a #GError
 *
 * A non-2xx status is not an error here: the status and the body (the
 * hypervisor's error text) are returned as they came.
 *
 * Returns: (transfer full) (nullable): the response body ("" when none), or
 *   %NULL with %UVM_ERROR_UNSUPPORTED (not a cloud-hypervisor VM),
 *   %UVM_ERROR_INVALID_DEFINITION (@body_json is not JSON),
 *   %UVM_ERROR_NOT_RUNNING, %UVM_ERROR_HYPERVISOR_DIED or
 *   %UVM_ERROR_PROTOCOL.
 */
UVM_AVAILABLE_IN_0_2
char *uvm_vm_ch_request_finish (UvmVm        *vm,
                                GAsyncResult *result,
                                guint        *status,
                                GError      **error);

/**
 * uvm_vm_ch_request:
 * @vm: a #UvmVm
 * @method: "GET" or "PUT"
 * @endpoint: the API endpoint without prefix
 * @body_json: (nullable): the request body as JSON text
 * @status: (out) (optional): the HTTP status
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_ch_request_async(): iterates the thread-default main
 * context until it completes, so other sources of that context may run
 * meanwhile. Since 0.2.
 *
 * Returns: (transfer full) (nullable): as uvm_vm_ch_request_finish().
 */
UVM_AVAILABLE_IN_0_2
char *uvm_vm_ch_request (UvmVm        *vm,
                         const char   *method,
                         const char   *endpoint,
                         const char   *body_json,
                         guint        *status,
                         GCancellable *cancellable,
                         GError      **error);

/**
 * uvm_vm_set_lifetime:
 * @vm: a #UvmVm
 * @lifetime: a #UvmVmLifetime
 *
 * Sets whether the VM's processes die with the process that starts them
 * (%UVM_VM_LIFETIME_ATTACHED, the default) or outlive it
 * (%UVM_VM_LIFETIME_DETACHED). Takes effect at the next start.
 *
 * Every run writes a state record, `state.json` in its runtime directory
 * (atomically, before uvm_vm_start() returns): the hypervisor, its process
 * id and start time (so that a reused pid is never taken for it), its
 * helpers, the control socket, the console and the frozen definition
 * (uvm_vm_to_json()). A detached VM is found there by uvm_vm_list() and
 * taken over by uvm_vm_attach(); the record of an attached VM whose
 * launcher was killed is reclaimed by the next start of that name.
 *
 * While the starting process keeps the #UvmVm, it supervises the VM as
 * before (events, stop, exit status). When it drops its last reference,
 * or exits, the hypervisor runs on unsupervised until another process
 * attaches. A process that drops a detached VM and keeps running becomes
 * the parent of an unsupervised process: its exit leaves a zombie until
 * that process exits. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
void uvm_vm_set_lifetime (UvmVm *vm, UvmVmLifetime lifetime);

/**
 * uvm_vm_get_lifetime:
 * @vm: a #UvmVm
 *
 * Returns: the VM's #UvmVmLifetime; %UVM_VM_LIFETIME_DETACHED for a VM
 *   returned by uvm_vm_attach(). Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
UvmVmLifetime uvm_vm_get_lifetime (UvmVm *vm);

/**
 * uvm_vm_attach_async:
 * @root: (nullable): the runtime root the VM's directory is in, or %NULL
 *   for the default (`/run/uvm` as root, `$XDG_RUNTIME_DIR/uvm` otherwise)
 * @name: the VM's name, or (with @root %NULL) the path of its runtime
 *   directory (anything with a `/`)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called in the thread-default main context when done
 * @user_data: data for @callback
 *
 * Takes over a running or paused VM started by another process (or by a
 * launcher that has since died): locks its runtime directory (a second
 * controller gets %UVM_ERROR_BUSY naming the process that holds it),
 * reads its state record, checks that the recorded process is still the
 * same one (pid and start time), watches it through a pidfd, connects to
 * its control socket and sends the requests the launch plan lists for an
 * attacher (uvm_vm_get_launch_plan(): a new QMP connection's handshake and
 * `query-status`; cloud-hypervisor's `vmm.ping` and `vm.info`). The #UvmVm
 * it returns has the definition of the record and the same operations,
 * events and stop escalation as one this process started, with two
 * differences: the hypervisor is not this process's child, so its exit
 * status is unknown (uvm_vm_get_exit_status() gives -1 and -1; a stop that
 * was asked for, or a guest that shut down, ends STOPPED, anything else
 * CRASHED); and cloud-hypervisor's event monitor writes to the process
 * that started it, so an attacher hears no cloud-hypervisor events (its
 * state follows its own requests). qemu's monitor takes one client at a
 * time: the runtime directory's lock keeps a second controller out rather
 * than letting it wait for a greeting that would never come.
 *
 * A record whose process is gone is stale: its files are removed and the
 * attach fails with %UVM_ERROR_NOT_RUNNING saying so; so is a start that
 * never finished (its launcher died during the start): that hypervisor is
 * killed. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
void uvm_vm_attach_async (const char          *root,
                          const char          *name,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data);

/**
 * uvm_vm_attach_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the attached #UvmVm, or %NULL with
 *   %UVM_ERROR_NOT_FOUND (no such runtime directory or no state record),
 *   %UVM_ERROR_BUSY (another process controls it), %UVM_ERROR_NOT_RUNNING
 *   (a stale record, reclaimed), %UVM_ERROR_PROTOCOL (not a state record),
 *   %UVM_ERROR_PERMISSION, or an error of the control connection. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
UvmVm *uvm_vm_attach_finish (GAsyncResult *result, GError **error);

/**
 * uvm_vm_attach:
 * @root: (nullable): as for uvm_vm_attach_async()
 * @name: as for uvm_vm_attach_async()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous uvm_vm_attach_async(): iterates the thread-default main
 * context until it completes. Since 0.3.
 *
 * Returns: (transfer full) (nullable): as uvm_vm_attach_finish().
 */
UVM_AVAILABLE_IN_0_3
UvmVm *uvm_vm_attach (const char *root, const char *name, GCancellable *cancellable,
                      GError **error);

/**
 * uvm_vm_list:
 * @root: (nullable): the runtime root, as for uvm_vm_attach_async()
 * @error: return location for a #GError
 *
 * Lists the VMs with a state record under @root, without taking any of
 * them over. A record whose process is gone is reported as stale
 * (uvm_vm_info_get_stale()) and, when no process holds its directory,
 * reclaimed (its files removed). Since 0.3.
 *
 * Returns: (transfer full) (element-type UvmVmInfo): the VMs by name, or
 *   %NULL with %UVM_ERROR_FAILED when @root cannot be read (a root that
 *   does not exist has no VMs: an empty array).
 */
UVM_AVAILABLE_IN_0_3
GPtrArray *uvm_vm_list (const char *root, GError **error);

/**
 * uvm_vm_info_get_type:
 *
 * Returns: the #GType of the boxed #UvmVmInfo. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
GType uvm_vm_info_get_type (void);

/**
 * uvm_vm_info_ref:
 * @info: a #UvmVmInfo
 *
 * Returns: (transfer full): @info. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
UvmVmInfo *uvm_vm_info_ref (UvmVmInfo *info);

/**
 * uvm_vm_info_unref:
 * @info: (transfer full): a #UvmVmInfo
 *
 * Drops a reference. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
void uvm_vm_info_unref (UvmVmInfo *info);

/**
 * uvm_vm_info_get_name:
 * @info: a #UvmVmInfo of uvm_vm_list()
 *
 * Returns: the VM's name. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
const char *uvm_vm_info_get_name (UvmVmInfo *info);

/**
 * uvm_vm_info_get_runtime_dir:
 * @info: a #UvmVmInfo
 *
 * Returns: the VM's runtime directory (give it to uvm_vm_attach() as
 *   @name). Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
const char *uvm_vm_info_get_runtime_dir (UvmVmInfo *info);

/**
 * uvm_vm_info_get_hypervisor:
 * @info: a #UvmVmInfo
 *
 * Returns: the hypervisor's name as the record says
 *   (uvm_hypervisor_from_string()). Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
const char *uvm_vm_info_get_hypervisor (UvmVmInfo *info);

/**
 * uvm_vm_info_get_pid:
 * @info: a #UvmVmInfo
 *
 * Returns: the hypervisor's process id as recorded. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
int uvm_vm_info_get_pid (UvmVmInfo *info);

/**
 * uvm_vm_info_get_stale:
 * @info: a #UvmVmInfo
 *
 * Returns: whether the recorded process is gone (or is another process
 *   with the same pid now). Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
gboolean uvm_vm_info_get_stale (UvmVmInfo *info);

/**
 * uvm_vm_info_get_detached:
 * @info: a #UvmVmInfo
 *
 * Returns: whether the VM was started with %UVM_VM_LIFETIME_DETACHED.
 *   Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
gboolean uvm_vm_info_get_detached (UvmVmInfo *info);

/**
 * uvm_vm_info_get_controller_pid:
 * @info: a #UvmVmInfo
 *
 * Returns: the process that supervises the VM now (holds its runtime
 *   directory: its launcher or an attacher), or 0 when none does. Since 0.3.
 */
UVM_AVAILABLE_IN_0_3
int uvm_vm_info_get_controller_pid (UvmVmInfo *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmVmInfo, uvm_vm_info_unref)

G_END_DECLS
