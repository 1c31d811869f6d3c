/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a hypervisor backend provides.  A backend is one file plus one entry
 * in the table of uvm-backend.c: definition checks, the launch plan, and a
 * control connection that turns library operations into protocol requests
 * and protocol events into library events. */
#pragma once

#include <gio/gio.h>
#include "uvm-private.h"
#include "plan/uvm-plan.h"

G_BEGIN_DECLS

typedef enum {
  UVM_CONTROL_PAUSE,
  UVM_CONTROL_RESUME,
  UVM_CONTROL_POWER_BUTTON,   /* ask the guest to power off */
  UVM_CONTROL_QUIT,           /* ask the hypervisor to exit */
} UvmControlOp;

typedef struct _UvmControl UvmControl;

/* How a control connection reports back to its VM; called in the VM's
 * context.  @state_changed reports a state the hypervisor says the guest
 * entered (paused/running). */
typedef struct {
  void (*event)  (gpointer vm, UvmEvent *event);
  void (*state)  (gpointer vm, UvmVmState state);
  void (*closed) (gpointer vm, const GError *error);
} UvmControlSink;

typedef struct {
  /* Negotiates the protocol and learns the guest's state; the task returns
   * the UvmVmState as an int (g_task_propagate_int), or an error. */
  void (*ready_async)   (UvmControl *control, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
  /* The task returns a boolean. */
  void (*request_async) (UvmControl *control, UvmControlOp op, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
  /* Balloon target as the guest-visible size; @memory is the VM's memory,
   * for backends whose API takes the balloon's own size.  Boolean task. */
  void (*balloon_async) (UvmControl *control, guint64 guest_bytes, guint64 memory,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data);
  /* The deadline of every request from now on (0: none), the
   * negotiation of ready_async included: set before it. */
  void (*set_request_timeout) (UvmControl *control, guint timeout_ms);
  /* The hypervisor exited: deliver the events it wrote before that. */
  void (*read_pending)  (UvmControl *control);
  void (*free)          (UvmControl *control);
} UvmControlClass;

struct _UvmControl {
  const UvmControlClass *klass;
  const UvmControlSink *sink;
  gpointer vm;
};

#define UVM_FEATURE_BIT(f) (G_GUINT64_CONSTANT (1) << (f))

typedef struct {
  const char *name;
  const char *default_binary;
  guint64 features;          /* UVM_FEATURE_BIT (UvmFeature) set */
  /* Checks that need the backend's knowledge (machine types, devices,
   * network kinds).  The generic checks ran already. */
  gboolean    (*validate)    (UvmVm *vm, GError **error);
  UvmPlan    *(*build_plan)  (UvmVm *vm, GError **error);
  /* Takes ownership of @fd, a socket connected to the control socket, and
   * of every fd >= 0 in @kept, which parallels @plan->fds: the parent's
   * side of plan fds the child does not get (event pipe read end, taps to
   * send).  @plan stays valid only during the call. */
  UvmControl *(*control_new) (int fd, UvmPlan *plan, int *kept, const UvmControlSink *sink,
                              gpointer vm);
} UvmBackend;

/* NULL with UVM_ERROR_UNSUPPORTED when this build has no such backend. */
const UvmBackend *uvm_backend_lookup (UvmHypervisor hypervisor, GError **error);

extern const UvmBackend uvm_backend_qemu;
extern const UvmBackend uvm_backend_cloud_hypervisor;

gboolean uvm_backend_supports (const UvmBackend *backend, UvmFeature feature);

/* Backend-independent checks of a definition (uvm-backend.c), including
 * that the backend has every feature the definition uses. */
gboolean uvm_backend_validate_common (UvmVm *vm, const UvmBackend *backend, GError **error);

/* What a plan says about the library-created tap @tap of @dev on the bridge
 * @bridge of an isolated network (uvm-backend.c). */
/* What the launch plan says of the tap the library makes for @dev
 * (UVM_PLAN_FD_LIB_TAP): its name and what it is attached to. */
char *uvm_lib_tap_description (UvmVm *vm, UvmDevice *dev);

/* Private VM accessors the backends need (uvm-vm.c). */
const char *uvm_vm_get_control_path (UvmVm *vm);
char       *uvm_vm_describe_device (UvmVm *vm, UvmDevice *device);

/* For the cloud-hypervisor escape hatch (uvm-backend-ch.c). */
typedef struct _UvmHttpClient UvmHttpClient;
gboolean       uvm_control_is_cloud_hypervisor (UvmControl *control);
UvmHttpClient *uvm_ch_control_get_http (UvmControl *control, const char *endpoint);

/* For the qemu escape hatch (uvm-backend-qemu.c). */
typedef struct _UvmQmpClient UvmQmpClient;
gboolean      uvm_control_is_qemu (UvmControl *control);
UvmQmpClient *uvm_qemu_control_get_qmp (UvmControl *control);

G_END_DECLS
