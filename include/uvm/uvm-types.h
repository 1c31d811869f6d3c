/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <glib.h>
#include <glib-object.h>
#include <uvm/uvm-version-macros.h>

G_BEGIN_DECLS

/** UVM_KIB: one kibibyte, for sizes given in bytes. */
#define UVM_KIB (G_GUINT64_CONSTANT (1024))
/** UVM_MIB: one mebibyte. */
#define UVM_MIB (G_GUINT64_CONSTANT (1024) * UVM_KIB)
/** UVM_GIB: one gibibyte. */
#define UVM_GIB (G_GUINT64_CONSTANT (1024) * UVM_MIB)

/**
 * UvmHypervisor:
 * @UVM_HYPERVISOR_QEMU: qemu-system-x86_64, controlled through QMP.
 * @UVM_HYPERVISOR_CLOUD_HYPERVISOR: cloud-hypervisor, controlled through its
 *   REST API (since 0.2).
 *
 * The hypervisor a #UvmVm runs on.
 */
typedef enum {
  UVM_HYPERVISOR_QEMU = 0,
  UVM_HYPERVISOR_CLOUD_HYPERVISOR = 1,
} UvmHypervisor;

/**
 * UvmMachine:
 * @UVM_MACHINE_DEFAULT: the backend's default (q35 for qemu).
 * @UVM_MACHINE_Q35: qemu's q35 (PCIe, ACPI).
 * @UVM_MACHINE_PC: qemu's i440fx "pc" machine (PCI, ACPI).
 * @UVM_MACHINE_MICROVM: qemu's minimal "microvm" machine: virtio-mmio
 *   devices, ACPI on, no PCI and so no device hotplug.
 *
 * The machine type of the virtual hardware.
 */
typedef enum {
  UVM_MACHINE_DEFAULT = 0,
  UVM_MACHINE_Q35 = 1,
  UVM_MACHINE_PC = 2,
  UVM_MACHINE_MICROVM = 3,
} UvmMachine;

/**
 * UvmAccel:
 * @UVM_ACCEL_AUTO: use KVM when the hypervisor can, else software emulation.
 * @UVM_ACCEL_KVM: KVM only; starting fails without it.
 * @UVM_ACCEL_TCG: qemu's software emulation (TCG) only.
 *
 * How guest code is executed.
 */
typedef enum {
  UVM_ACCEL_AUTO = 0,
  UVM_ACCEL_KVM = 1,
  UVM_ACCEL_TCG = 2,
} UvmAccel;

/**
 * UvmVmState:
 * @UVM_VM_STATE_DEFINED: not started (or not yet started again).
 * @UVM_VM_STATE_STARTING: the hypervisor is being spawned and its control
 *   socket negotiated.
 * @UVM_VM_STATE_RUNNING: the guest runs.
 * @UVM_VM_STATE_PAUSED: the guest's vCPUs are stopped.
 * @UVM_VM_STATE_STOPPING: a stop was requested and the hypervisor has not
 *   exited yet.
 * @UVM_VM_STATE_STOPPED: the hypervisor exited after a stop request or a
 *   guest power-off, and was reaped.
 * @UVM_VM_STATE_CRASHED: the hypervisor exited unasked (a signal, a non-zero
 *   exit, an exit after a guest panic, or a failed start), and was reaped.
 *
 * The life of one run of a VM. A stopped or crashed VM may be started again.
 */
typedef enum {
  UVM_VM_STATE_DEFINED = 0,
  UVM_VM_STATE_STARTING = 1,
  UVM_VM_STATE_RUNNING = 2,
  UVM_VM_STATE_PAUSED = 3,
  UVM_VM_STATE_STOPPING = 4,
  UVM_VM_STATE_STOPPED = 5,
  UVM_VM_STATE_CRASHED = 6,
} UvmVmState;

/**
 * UvmVmLifetime:
 * @UVM_VM_LIFETIME_ATTACHED: the hypervisor and its helpers die with the
 *   process that started them (`PR_SET_PDEATHSIG`), and when the last
 *   reference to the #UvmVm goes. The default, and the only behaviour
 *   before 0.3.
 * @UVM_VM_LIFETIME_DETACHED: the hypervisor and its helpers outlive the
 *   process that started them: no parent-death signal, a session of their
 *   own; dropping the #UvmVm lets go of them without a signal. Another
 *   process takes them over with uvm_vm_attach(). Since 0.3.
 *
 * How long a VM's processes live (uvm_vm_set_lifetime()).
 */
typedef enum {
  UVM_VM_LIFETIME_ATTACHED = 0,
  UVM_VM_LIFETIME_DETACHED = 1,
} UvmVmLifetime;

/**
 * UvmFeature:
 * @UVM_FEATURE_MACHINE_Q35: qemu's q35 machine type.
 * @UVM_FEATURE_MACHINE_PC: qemu's pc (i440fx) machine type.
 * @UVM_FEATURE_MACHINE_MICROVM: qemu's microvm machine type.
 * @UVM_FEATURE_SOFTWARE_EMULATION: running guests without KVM (qemu's TCG).
 * @UVM_FEATURE_USER_NETWORK: user-mode NAT (%UVM_NETWORK_UPLINK).
 * @UVM_FEATURE_SOCKET_LINK: point-to-point links over a socket pair
 *   (%UVM_NETWORK_ISOLATED between two VMs).
 * @UVM_FEATURE_TAP_NETWORK: tap interfaces (%UVM_NETWORK_TAP).
 * @UVM_FEATURE_QCOW2: qcow2 disk images.
 * @UVM_FEATURE_BALLOON: the memory balloon (uvm_device_new_balloon()).
 * @UVM_FEATURE_HOTPLUG: hotpluggable devices (uvm_device_set_hotpluggable()).
 * @UVM_FEATURE_RAW_QMP: uvm_vm_qmp_execute().
 * @UVM_FEATURE_RAW_REST: uvm_vm_ch_request().
 * @UVM_FEATURE_BRIDGE_LINK: %UVM_NETWORK_ISOLATED with more than two members
 *   or a cloud-hypervisor member: a bridge and one tap per member NIC, all
 *   created by the library (needs CAP_NET_ADMIN). Since 0.2.
 * @UVM_FEATURE_PASST_UPLINK: %UVM_UPLINK_PASST. Since 0.2.
 * @UVM_FEATURE_TAP_NAT_UPLINK: %UVM_UPLINK_TAP_NAT. Since 0.2.
 * @UVM_FEATURE_HOST_BRIDGE: %UVM_NETWORK_BRIDGE. Since 0.2.
 * @UVM_FEATURE_FIRMWARE_BOOT: booting a disk through the hypervisor's
 *   firmware when no kernel is set. Since 0.2.
 *
 * What a hypervisor backend may or may not do; see uvm_hypervisor_supports().
 * A definition that needs a feature its hypervisor lacks is refused at
 * validation with %UVM_ERROR_UNSUPPORTED. Since 0.2; later releases add
 * features.
 */
typedef enum {
  UVM_FEATURE_MACHINE_Q35 = 0,
  UVM_FEATURE_MACHINE_PC = 1,
  UVM_FEATURE_MACHINE_MICROVM = 2,
  UVM_FEATURE_SOFTWARE_EMULATION = 3,
  UVM_FEATURE_USER_NETWORK = 4,
  UVM_FEATURE_SOCKET_LINK = 5,
  UVM_FEATURE_TAP_NETWORK = 6,
  UVM_FEATURE_QCOW2 = 7,
  UVM_FEATURE_BALLOON = 8,
  UVM_FEATURE_HOTPLUG = 9,
  UVM_FEATURE_RAW_QMP = 10,
  UVM_FEATURE_RAW_REST = 11,
  UVM_FEATURE_BRIDGE_LINK = 12,
  UVM_FEATURE_PASST_UPLINK = 13,
  UVM_FEATURE_TAP_NAT_UPLINK = 14,
  UVM_FEATURE_HOST_BRIDGE = 15,
  UVM_FEATURE_FIRMWARE_BOOT = 16,
} UvmFeature;

typedef struct _UvmVm UvmVm;
typedef struct _UvmDevice UvmDevice;
typedef struct _UvmNetwork UvmNetwork;
typedef struct _UvmStorage UvmStorage;
typedef struct _UvmEvent UvmEvent;
typedef struct _UvmVmInfo UvmVmInfo;

G_END_DECLS
