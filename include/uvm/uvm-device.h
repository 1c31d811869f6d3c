/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <uvm/uvm-types.h>

G_BEGIN_DECLS

/**
 * UvmDeviceKind:
 * @UVM_DEVICE_NET: a virtio network interface on a #UvmNetwork.
 * @UVM_DEVICE_DISK: a virtio block device on a #UvmStorage.
 * @UVM_DEVICE_CONSOLE: the guest's first serial port (ttyS0), written to a
 *   log file and, since 0.3, interactive (uvm_vm_open_console()).
 * @UVM_DEVICE_RNG: a virtio entropy source fed from the host's /dev/urandom.
 * @UVM_DEVICE_BALLOON: a virtio memory balloon, driven with
 *   uvm_vm_set_balloon_target(). Since 0.2.
 *
 * What a #UvmDevice is. Later releases add kinds; treat unknown kinds as
 * opaque.
 */
typedef enum {
  UVM_DEVICE_NET = 0,
  UVM_DEVICE_DISK = 1,
  UVM_DEVICE_CONSOLE = 2,
  UVM_DEVICE_RNG = 3,
  UVM_DEVICE_BALLOON = 4,
} UvmDeviceKind;

#define UVM_TYPE_DEVICE (uvm_device_get_type ())
UVM_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (UvmDevice, uvm_device, UVM, DEVICE, GObject)

/**
 * uvm_device_new_net:
 * @network: the network the interface joins; a reference is taken
 * @mac: (nullable): MAC address as "xx:xx:xx:xx:xx:xx", or %NULL to derive a
 *   locally administered unicast address from the VM and network names
 *
 * Creates a network interface. A malformed @mac is reported when the VM is
 * validated.
 *
 * Returns: (transfer full): a new #UvmDevice.
 */
UVM_AVAILABLE_IN_0_1
UvmDevice *uvm_device_new_net (UvmNetwork *network, const char *mac);

/**
 * uvm_device_new_disk:
 * @storage: the storage backing the disk; a reference is taken
 *
 * Creates a virtio block device. Disks appear in the guest in the order they
 * were added (/dev/vda, /dev/vdb, ...).
 *
 * Returns: (transfer full): a new #UvmDevice.
 */
UVM_AVAILABLE_IN_0_1
UvmDevice *uvm_device_new_disk (UvmStorage *storage);

/**
 * uvm_device_new_console:
 * @log_path: (nullable): file the guest's serial output is appended to, or
 *   %NULL for the VM's log directory (uvm_vm_set_log_dir()), else
 *   `console.log` in the VM's runtime directory (removed with it)
 *
 * Creates the guest's serial console (ttyS0; boot the kernel with
 * `console=ttyS0`). A VM has at most one console device. While the VM
 * runs, the console relay appends everything the guest writes to the log
 * and serves the console to clients (uvm_vm_open_console(),
 * uvm_vm_wait_for_console_async()); see uvm_vm_get_console_path().
 *
 * Returns: (transfer full): a new #UvmDevice.
 */
UVM_AVAILABLE_IN_0_1
UvmDevice *uvm_device_new_console (const char *log_path);

/**
 * uvm_device_new_rng:
 *
 * Creates a virtio entropy device fed from the host's /dev/urandom.
 *
 * Returns: (transfer full): a new #UvmDevice.
 */
UVM_AVAILABLE_IN_0_1
UvmDevice *uvm_device_new_rng (void);

/**
 * uvm_device_new_balloon:
 *
 * Creates a virtio memory balloon. A VM has at most one. The guest needs
 * its driver (virtio_balloon) for targets to take effect. Since 0.2.
 *
 * Returns: (transfer full): a new #UvmDevice.
 */
UVM_AVAILABLE_IN_0_2
UvmDevice *uvm_device_new_balloon (void);

/**
 * uvm_device_get_kind:
 * @device: a #UvmDevice
 *
 * Returns: the kind of the device.
 */
UVM_AVAILABLE_IN_0_1
UvmDeviceKind uvm_device_get_kind (UvmDevice *device);

/**
 * uvm_device_set_id:
 * @device: a #UvmDevice
 * @id: (nullable): an identifier unique within the VM (letters, digits, '-'
 *   and '_', starting with a letter, at most 31 bytes), or %NULL for one
 *   derived from the kind and position ("net0", "disk1", ...)
 *
 * Names the device in the hypervisor (qemu's device id), in events and in
 * the launch plan. A malformed or duplicate id is reported at validation.
 */
UVM_AVAILABLE_IN_0_1
void uvm_device_set_id (UvmDevice *device, const char *id);

/**
 * uvm_device_get_id:
 * @device: a #UvmDevice
 *
 * Returns: (transfer none) (nullable): the id set by uvm_device_set_id() or
 *   assigned when the device was added to a VM; %NULL before either.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_device_get_id (UvmDevice *device);

/**
 * uvm_device_set_hotpluggable:
 * @device: a #UvmDevice
 * @hotpluggable: whether the device must be removable while the guest runs
 *
 * Places the device where it can later be unplugged (a PCIe root port of its
 * own on q35). Machines without PCI (microvm) refuse such devices at
 * validation with %UVM_ERROR_UNSUPPORTED.
 */
UVM_AVAILABLE_IN_0_1
void uvm_device_set_hotpluggable (UvmDevice *device, gboolean hotpluggable);

/**
 * uvm_device_get_hotpluggable:
 * @device: a #UvmDevice
 *
 * Returns: whether the device was made hotpluggable.
 */
UVM_AVAILABLE_IN_0_1
gboolean uvm_device_get_hotpluggable (UvmDevice *device);

/**
 * uvm_device_get_network:
 * @device: a #UvmDevice
 *
 * Returns: (transfer none) (nullable): the network of a net device, else
 *   %NULL.
 */
UVM_AVAILABLE_IN_0_1
UvmNetwork *uvm_device_get_network (UvmDevice *device);

/**
 * uvm_device_get_storage:
 * @device: a #UvmDevice
 *
 * Returns: (transfer none) (nullable): the storage of a disk, else %NULL.
 */
UVM_AVAILABLE_IN_0_1
UvmStorage *uvm_device_get_storage (UvmDevice *device);

/**
 * uvm_device_get_mac:
 * @device: a #UvmDevice
 *
 * Returns: (transfer none) (nullable): for a net device, the MAC address
 *   given at creation or derived when it was added to a VM; else %NULL.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_device_get_mac (UvmDevice *device);

/**
 * uvm_device_get_log_path:
 * @device: a #UvmDevice
 *
 * Returns: (transfer none) (nullable): for a console, the log file given at
 *   creation (%NULL when it goes to the runtime directory, see
 *   uvm_vm_get_console_path()); else %NULL.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_device_get_log_path (UvmDevice *device);

/**
 * uvm_device_set_tap_name:
 * @device: a net #UvmDevice
 * @tap_name: (nullable): an interface name (1-15 bytes), or %NULL for the
 *   derived one
 *
 * Overrides the name of the tap the library creates for this NIC (members
 * of a bridged %UVM_NETWORK_ISOLATED, %UVM_NETWORK_BRIDGE, and
 * %UVM_UPLINK_TAP_NAT uplinks). The default is "uvt" plus 8 hex digits of a
 * hash of the VM and network names. An invalid name is refused at
 * validation (%UVM_ERROR_INVALID_DEFINITION); a name already in use on the
 * host at start (%UVM_ERROR_BUSY). Ignored for other networks. Since 0.2.
 */
UVM_AVAILABLE_IN_0_2
void uvm_device_set_tap_name (UvmDevice *device, const char *tap_name);

/**
 * uvm_device_get_tap_name:
 * @device: a net #UvmDevice
 *
 * Gets the tap name set with uvm_device_set_tap_name(). Since 0.2.
 *
 * Returns: (nullable): the name, or %NULL when the derived one is used.
 */
UVM_AVAILABLE_IN_0_2
const char *uvm_device_get_tap_name (UvmDevice *device);

G_END_DECLS
