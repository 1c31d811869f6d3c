/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM description: the definition of a VM frozen when it is validated,
 * planned or started, with everything resolved that depends on more than
 * one object (device ids and MACs, how each NIC is built, tap names, the
 * paths of the runtime directory, the boot disk).  Backends get only this:
 * a backend is a function from a description to a plan, and it never sees
 * a UvmVm, UvmNetwork or UvmStorage.  Immutable once built; shared by
 * reference (the plan keeps its description). */
#pragma once

#include <uvm/uvm.h>

G_BEGIN_DECLS

/* How a NIC reaches its network (decided by uvm-vm-validate.c from the
 * network kind, the membership and what the backend can do). */
typedef enum {
  UVM_DESC_NIC_LINK,      /* one end of an isolated socket-pair link */
  UVM_DESC_NIC_LIB_TAP,   /* a tap the library makes (bridge, host bridge, tap+NAT) */
  UVM_DESC_NIC_TAP,       /* the existing tap of a TAP network */
  UVM_DESC_NIC_USER,      /* the hypervisor's own user-mode NAT */
  UVM_DESC_NIC_PASST,     /* a passt helper joined by a stream socket pair */
} UvmDescNic;

typedef struct {
  UvmDeviceKind kind;
  char *id;
  char *field;            /* "devices[N] (ID)": how errors name it */
  gboolean hotpluggable;

  /* UVM_DEVICE_NET */
  char *mac;
  char *network;          /* the network's name */
  UvmDescNic nic;
  char *tap;              /* LIB_TAP and TAP: the tap's name */
  char *tap_what;         /* LIB_TAP: what the plan says of the tap */

  /* UVM_DEVICE_DISK */
  char *path;
  gboolean read_only;
  UvmStorageFormat format;
  gboolean boot;          /* the disk the firmware boots (no kernel) */

  /* The device object itself, for the launcher only (it opens the link
   * end or makes the tap of this device at start).  Backends never read
   * it: everything they need is in the fields above. */
  UvmDevice *object;
} UvmDescDevice;

typedef struct {
  gatomicrefcount ref;
  char *name;
  UvmHypervisor hypervisor;
  UvmMachine machine;       /* as set: UVM_MACHINE_DEFAULT is the backend's choice */
  UvmAccel accel;
  char *kernel;             /* NULL: firmware boots the boot disk */
  char *initramfs;
  char *cmdline;
  guint vcpus;
  guint64 memory;
  GPtrArray *devices;       /* UvmDescDevice *, in the definition's order */
  GStrv extra_args;
  char *binary;             /* the hypervisor as configured (not resolved) */
  char *runtime_dir;
  char *control_path;
  char *log_path;
  char *console_path;       /* the console log; NULL without a console device */
  char *console_socket_path; /* the console relay's socket; NULL without a console */
  gboolean start_paused;
  gboolean confined;
  gboolean workstation;     /* behind a gateway: isolated bridge ports */
  gboolean detached;        /* its processes outlive the launcher */
  guint32 uid;              /* uvm_vm_get_user(), uvm_vm_get_group() */
  guint32 gid;
} UvmDesc;

UvmDesc       *uvm_desc_new (void);
UvmDesc       *uvm_desc_ref (UvmDesc *desc);
void           uvm_desc_unref (UvmDesc *desc);
/* Appends a new device record (its strings NULL) and returns it. */
UvmDescDevice *uvm_desc_add_device (UvmDesc *desc, UvmDeviceKind kind, const char *id,
                                    const char *field, UvmDevice *object);
guint          uvm_desc_get_n_devices (const UvmDesc *desc);
const UvmDescDevice *uvm_desc_get_device (const UvmDesc *desc, guint index);
/* The first device of @kind, or NULL. */
const UvmDescDevice *uvm_desc_find_kind (const UvmDesc *desc, UvmDeviceKind kind);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmDesc, uvm_desc_unref)

G_END_DECLS
