/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a hypervisor backend provides, and the table of backends.
 *
 * A backend is one file plus one entry in the table of uvm-backend.c: its
 * data (name, default binary, features, default uplink mode), a pure
 * function from a VM description (plan/uvm-desc.h) to a launch plan, and a
 * control-connection class that turns requests into protocol messages and
 * protocol events into library events.  A backend never sees a UvmVm: it
 * includes nothing above plan/ and proto/.  Tests register a backend of
 * their own with uvm_backend_register(). */
#pragma once

#include <gio/gio.h>
#include "uvm-event-private.h"
#include "plan/uvm-desc.h"
#include "plan/uvm-plan.h"

G_BEGIN_DECLS

typedef enum {
  UVM_CONTROL_PAUSE,
  UVM_CONTROL_RESUME,
  UVM_CONTROL_POWER_BUTTON,   /* ask the guest to power off */
  UVM_CONTROL_QUIT,           /* ask the hypervisor to exit */
  UVM_CONTROL_BALLOON,        /* set the balloon to a guest-visible size */
} UvmControlOp;

typedef struct _UvmControl UvmControl;

/* How a control connection reports back to its VM; called in the VM's
 * context.  @state reports a state the hypervisor says the guest entered
 * (paused/running). */
typedef struct {
  void (*event)  (gpointer vm, UvmEvent *event);
  void (*state)  (gpointer vm, UvmVmState state);
  void (*closed) (gpointer vm, const GError *error);
} UvmControlSink;

/* What the launcher hands a new control connection: the typed result of
 * executing a plan's fd steps.  The connection takes both fds. */
typedef struct {
  int control_fd;   /* a socket connected to the control socket */
  int event_fd;     /* the library's end of UVM_PLAN_FD_EVENT_PIPE, or -1 */
} UvmLaunchResult;

/* A reply to a request.  @status: the HTTP status, or 0 for protocols
 * without one (QMP); @body: the reply's JSON text (QMP: the "return"
 * value; REST: the body, may be empty), or NULL. */
typedef struct {
  guint status;
  char *body;
} UvmControlReply;

void uvm_control_reply_free (UvmControlReply *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmControlReply, uvm_control_reply_free)

typedef struct {
  /* Sends @request with @fds (SCM_RIGHTS; the caller keeps and closes
   * them).  The task returns a UvmControlReply (free with
   * uvm_control_reply_free()); with @raw FALSE a refusal is an error
   * (UVM_ERROR_HYPERVISOR naming the request and quoting the hypervisor),
   * with @raw TRUE any reply the protocol delivers is returned. */
  void (*send_async)    (UvmControl *control, const UvmPlanRequest *request,
                         const int *fds, guint n_fds, gboolean raw,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data);
  /* The guest state in @reply to a UVM_PLAN_REQUEST_STATE request. */
  gboolean (*reply_state) (UvmControl *control, const UvmControlReply *reply,
                           UvmVmState *state, GError **error);
  /* The request for @op: a new request the caller frees.  @guest_bytes and
   * @memory: the balloon target and the VM's memory (UVM_CONTROL_BALLOON). */
  UvmPlanRequest *(*op_request) (UvmControl *control, UvmControlOp op, guint64 guest_bytes,
                                 guint64 memory);
  /* The escape hatch: a request as the caller wrote it (@method NULL for
   * a protocol without methods, @name the command or endpoint), sent with
   * send_async (raw); NULL with UVM_ERROR_UNSUPPORTED when the protocol
   * has no such request. */
  UvmPlanRequest *(*raw_request) (UvmControl *control, const char *method, const char *name,
                                  const char *body, GError **error);
  /* The deadline of every request from now on (0: none). */
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
  /* What UVM_UPLINK_AUTO means on this hypervisor. */
  UvmUplinkMode default_uplink;
  /* Checks that need the backend's knowledge (machine types, device
   * placement).  The generic checks ran already; @desc is complete. */
  gboolean    (*validate)    (const UvmDesc *desc, GError **error);
  UvmPlan    *(*build_plan)  (UvmDesc *desc, GError **error);
  /* A control connection for a run of @plan (NULL when attaching to a
   * running VM: then only the plan's on_attach requests are sent); takes
   * the fds of @launch. */
  UvmControl *(*control_new) (const UvmPlan *plan, const UvmLaunchResult *launch,
                              const UvmControlSink *sink, gpointer vm);
} UvmBackend;

/* The backend of @hypervisor, or NULL with UVM_ERROR_INVALID_DEFINITION
 * ("hypervisor: unknown hypervisor N") when the table has none. */
const UvmBackend *uvm_backend_lookup (UvmHypervisor hypervisor, GError **error);
/* The hypervisor whose backend is called @name; FALSE when none is. */
gboolean          uvm_backend_find (const char *name, UvmHypervisor *hypervisor);
/* Adds @backend to the table as @hypervisor (not one taken yet); for
 * tests.  Not thread-safe: call before any VM is used. */
void              uvm_backend_register (UvmHypervisor hypervisor, const UvmBackend *backend);

gboolean uvm_backend_supports (const UvmBackend *backend, UvmFeature feature);

extern const UvmBackend uvm_backend_qemu;
extern const UvmBackend uvm_backend_cloud_hypervisor;

G_END_DECLS
