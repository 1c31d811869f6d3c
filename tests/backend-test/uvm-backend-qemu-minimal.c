/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "qemu-minimal": the test-only backend of uvm-backend-qemu-minimal.h.
 *
 * What it does differently from the built-in qemu backend, on purpose and
 * where it is cheap: one machine (pc, i440fx), TCG only, a kernel and
 * nothing but a console (every other device is refused), and a start that
 * always creates the guest stopped (-S) and lets it run with a "cont"
 * request of the plan, so that "start paused" is the same plan minus one
 * request.  Its control class speaks QMP through libuvm's QMP client and
 * maps only the events it needs: STOP/RESUME (run state) and a guest's
 * SHUTDOWN; everything else passes through under qemu's name. */
#include "uvm-backend-qemu-minimal.h"

#include "proto/uvm-qmp.h"
#include "util/uvm-util.h"

#include <fcntl.h>

/* ---- Definition checks ---------------------------------------------- */

static gboolean
minimal_validate (const UvmDesc *desc, GError **error)
{
  /* The library checked the machine, the accelerator, balloon, qcow2 and
   * NICs against the feature set; what has no feature bit is ours. */
  if (desc->accel == UVM_ACCEL_KVM)
    return uvm_set_error (error, UVM_ERROR_UNSUPPORTED,
                          "accel: " TEST_QEMU_MINIMAL_NAME " runs guests under TCG only");
  if (desc->kernel == NULL)
    return uvm_set_error (error, UVM_ERROR_UNSUPPORTED,
                          "kernel: " TEST_QEMU_MINIMAL_NAME " boots a kernel only");
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);

      if (dev->kind != UVM_DEVICE_CONSOLE)
        return uvm_set_error (error, UVM_ERROR_UNSUPPORTED,
                              "%s: " TEST_QEMU_MINIMAL_NAME " supports no devices but a console",
                              dev->field);
    }
  return TRUE;
}

/* ---- Launch plan ----------------------------------------------------- */

/* "KEY=VALUE" with VALUE escaped for qemu's option syntax (',' doubled). */
static char *
qemu_pair (const char *key, const char *value)
{
  GString *out = g_string_new (key);

  g_string_append_c (out, '=');
  uvm_append_qemu_value (out, value);
  return g_string_free (out, FALSE);
}

static void
plan_console (UvmPlan *plan, const UvmDescDevice *dev)
{
  /* The console relay every backend uses (plan/uvm-plan.h), joined to
   * qemu by a stream socket pair: the console is interactive and logged. */
  g_autofree char *relay_end = g_strdup_printf ("%s: the relay's end of the serial socket pair",
                                                dev->id);
  g_autofree char *qemu_end = g_strdup_printf ("%s: qemu's end of the serial socket pair",
                                               dev->id);
  g_autofree char *id = qemu_pair ("id", dev->id);
  int fd;

  uvm_plan_add_console_relay (plan, dev, UVM_PLAN_FD_HELPER_STREAM, relay_end);
  fd = uvm_plan_add_fd (plan, UVM_PLAN_FD_HELPER_STREAM, dev, qemu_end);
  uvm_plan_add_args (plan, "-chardev", NULL);
  uvm_plan_take_arg (plan, g_strdup_printf ("socket,%s,fd=%d,server=off", id, fd));
  uvm_plan_add_args (plan, "-serial", NULL);
  uvm_plan_take_arg (plan, g_strdup_printf ("chardev:%s", dev->id));
}

/* qemu reads the kernel and the initramfs by path: /proc/self/fd/N of an
 * fd we opened. */
static char *
plan_boot_file (UvmPlan *plan, const char *path, const char *what)
{
  g_autofree char *desc = g_strdup_printf ("%s '%s' (read-only; reopened as /proc/self/fd/N)",
                                           what, path);

  return g_strdup_printf ("/proc/self/fd/%d",
                          uvm_plan_add_file_fd (plan, path, O_RDONLY, UVM_PLAN_FILE_REOPENED,
                                                desc));
}

static UvmPlan *
minimal_build_plan (UvmDesc *desc, GError **error)
{
  g_autoptr(UvmPlan) plan = uvm_plan_new (desc, TEST_QEMU_MINIMAL_NAME);
  g_autofree char *control_what = g_strdup_printf ("QMP socket, listening on %s",
                                                   desc->control_path);
  int control_fd = uvm_plan_add_fd (plan, UVM_PLAN_FD_CONTROL_SOCKET, NULL, control_what);

  uvm_plan_add_args (plan, "-name", NULL);
  uvm_plan_take_arg (plan, qemu_pair ("guest", desc->name));
  uvm_plan_add_args (plan, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                     "-machine", "pc", "-accel", "tcg", NULL);
  uvm_plan_add_args (plan, "-smp", NULL);
  uvm_plan_take_arg (plan, g_strdup_printf ("%u", desc->vcpus));
  uvm_plan_add_args (plan, "-m", NULL);
  uvm_plan_take_arg (plan, g_strdup_printf ("%" G_GUINT64_FORMAT "M", desc->memory / UVM_MIB));
  uvm_plan_add_args (plan, "-chardev", NULL);
  uvm_plan_take_arg (plan, g_strdup_printf ("socket,id=qmp,fd=%d,server=on,wait=off", control_fd));
  uvm_plan_add_args (plan, "-mon", "chardev=qmp,mode=control", NULL);
  /* Always created stopped: the plan's "cont" starts the vCPUs. */
  uvm_plan_add_args (plan, "-S", "-kernel", NULL);
  uvm_plan_take_arg (plan, plan_boot_file (plan, desc->kernel, "kernel"));
  if (desc->initramfs != NULL)
    {
      uvm_plan_add_args (plan, "-initrd", NULL);
      uvm_plan_take_arg (plan, plan_boot_file (plan, desc->initramfs, "initramfs"));
    }
  if (desc->cmdline != NULL)
    uvm_plan_add_args (plan, "-append", desc->cmdline, NULL);
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);

      /* minimal_validate() let nothing else through. */
      if (dev->kind != UVM_DEVICE_CONSOLE)
        return uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "%s: not a console", dev->field),
               NULL;
      plan_console (plan, dev);
    }
  for (guint i = 0; desc->extra_args[i] != NULL; i++)
    uvm_plan_add_args (plan, desc->extra_args[i], NULL);

  uvm_plan_add_request (plan, uvm_plan_request_new (NULL, "qmp_capabilities", NULL,
                                                    UVM_PLAN_REQUEST_PLAIN));
  if (!desc->start_paused)
    uvm_plan_add_request (plan, uvm_plan_request_new (NULL, "cont", NULL, UVM_PLAN_REQUEST_PLAIN));
  uvm_plan_add_request (plan, uvm_plan_request_new (NULL, "query-status", NULL,
                                                    UVM_PLAN_REQUEST_STATE));
  return g_steal_pointer (&plan);
}

/* ---- Control connection ---------------------------------------------- */

typedef struct {
  UvmControl parent;
  UvmQmpClient *qmp;
  gboolean handshake_sent;
} MinimalControl;

static void
minimal_on_event (UvmQmpClient *client, const char *name, JsonObject *data,
                  gint64 timestamp_us, gpointer user_data)
{
  MinimalControl *self = user_data;
  UvmEventKind kind = UVM_EVENT_HYPERVISOR_EVENT;
  g_autoptr(UvmEvent) event = NULL;

  if (g_str_equal (name, "STOP"))
    self->parent.sink->state (self->parent.vm, UVM_VM_STATE_PAUSED);
  else if (g_str_equal (name, "RESUME"))
    self->parent.sink->state (self->parent.vm, UVM_VM_STATE_RUNNING);
  else if (g_str_equal (name, "SHUTDOWN") && data != NULL &&
           json_object_get_boolean_member_with_default (data, "guest", FALSE))
    /* -no-reboot: a guest's reset ends qemu as a SHUTDOWN too. */
    kind = g_strcmp0 (json_object_get_string_member_with_default (data, "reason", NULL),
                      "guest-reset") == 0 ? UVM_EVENT_GUEST_RESET : UVM_EVENT_GUEST_SHUTDOWN;
  event = uvm_event_new_hypervisor (kind, UVM_VM_STATE_DEFINED, name, data, NULL);
  self->parent.sink->event (self->parent.vm, event);
}

static void
minimal_on_closed (UvmQmpClient *client, const GError *error, gpointer user_data)
{
  MinimalControl *self = user_data;

  self->parent.sink->closed (self->parent.vm, error);
}

static void
return_body (GTask *task, char *body)
{
  UvmControlReply *reply = g_new0 (UvmControlReply, 1);

  reply->body = body;
  g_task_return_pointer (task, reply, (GDestroyNotify) uvm_control_reply_free);
}

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (uvm_qmp_client_handshake_finish (g_task_get_task_data (task), result, &error))
    return_body (task, g_strdup ("{}"));
  else
    g_task_return_error (task, error);
}

static void
on_execute (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) ret = uvm_qmp_client_execute_finish (g_task_get_task_data (task), result,
                                                           &error);

  if (ret == NULL)
    g_task_return_error (task, error);
  else
    return_body (task, json_to_string (ret, FALSE));
}

/* QMP answers a refusal with an error reply, whatever @raw says; the
 * plan's qmp_capabilities is the client's handshake (it reads the greeting
 * first). */
static void
minimal_send_async (UvmControl *control, const UvmPlanRequest *request, const int *fds,
                    guint n_fds, gboolean raw, GCancellable *cancellable,
                    GAsyncReadyCallback callback, gpointer user_data)
{
  MinimalControl *self = (MinimalControl *) control;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr(JsonNode) arguments = NULL;
  g_autoptr(GError) error = NULL;

  /* The task holds the client: a reply may come after the control goes. */
  g_task_set_task_data (task, uvm_qmp_client_ref (self->qmp),
                        (GDestroyNotify) uvm_qmp_client_unref);
  if (g_str_equal (request->target, "qmp_capabilities") && !self->handshake_sent)
    {
      self->handshake_sent = TRUE;
      uvm_qmp_client_handshake_async (self->qmp, cancellable, on_handshake, task);
      return;
    }
  if (!self->handshake_sent)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_PROTOCOL,
                               "%s: sent before qmp_capabilities", request->target);
      g_object_unref (task);
      return;
    }
  if (request->body != NULL && (arguments = json_from_string (request->body, &error)) == NULL)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION,
                               "%s: arguments are not JSON: %s", request->target, error->message);
      g_object_unref (task);
      return;
    }
  uvm_qmp_client_execute_async (self->qmp, request->target, arguments, fds, n_fds, cancellable,
                                on_execute, task);
}

static gboolean
minimal_reply_state (UvmControl *control, const UvmControlReply *reply, UvmVmState *state,
                     GError **error)
{
  g_autoptr(JsonNode) node = reply->body ? json_from_string (reply->body, NULL) : NULL;
  JsonObject *obj = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonNode *running = obj ? json_object_get_member (obj, "running") : NULL;

  /* This backend reads "running" (a boolean) where the qemu backend reads
   * "status": prelaunch, paused and the other stopped states are paused. */
  if (running == NULL || json_node_get_value_type (running) != G_TYPE_BOOLEAN)
    return uvm_set_error (error, UVM_ERROR_PROTOCOL, "query-status: reply has no \"running\"");
  *state = json_node_get_boolean (running) ? UVM_VM_STATE_RUNNING : UVM_VM_STATE_PAUSED;
  return TRUE;
}

static UvmPlanRequest *
minimal_op_request (UvmControl *control, UvmControlOp op, guint64 guest_bytes, guint64 memory)
{
  switch (op)
    {
    case UVM_CONTROL_PAUSE:
      return uvm_plan_request_new (NULL, "stop", NULL, UVM_PLAN_REQUEST_PLAIN);
    case UVM_CONTROL_RESUME:
      return uvm_plan_request_new (NULL, "cont", NULL, UVM_PLAN_REQUEST_PLAIN);
    case UVM_CONTROL_POWER_BUTTON:
      return uvm_plan_request_new (NULL, "system_powerdown", NULL, UVM_PLAN_REQUEST_PLAIN);
    case UVM_CONTROL_QUIT:
      return uvm_plan_request_new (NULL, "quit", NULL, UVM_PLAN_REQUEST_PLAIN);
    case UVM_CONTROL_BALLOON:
      break;
    }
  /* No UVM_FEATURE_BALLOON: the library refuses a balloon device before a
   * VM of this backend exists, so it never asks for this. */
  g_return_val_if_reached (NULL);
}

static UvmPlanRequest *
minimal_raw_request (UvmControl *control, const char *method, const char *name, const char *body,
                     GError **error)
{
  if (method != NULL)
    {
      uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "QMP commands have no method ('%s %s')",
                     method, name);
      return NULL;
    }
  return uvm_plan_request_new (NULL, name, body, UVM_PLAN_REQUEST_PLAIN);
}

static void
minimal_set_request_timeout (UvmControl *control, guint timeout_ms)
{
  uvm_qmp_client_set_request_timeout (((MinimalControl *) control)->qmp, timeout_ms);
}

static void
minimal_read_pending (UvmControl *control)
{
  uvm_qmp_client_read_pending (((MinimalControl *) control)->qmp);
}

static void
minimal_control_free (UvmControl *control)
{
  MinimalControl *self = (MinimalControl *) control;

  /* No callbacks into a VM that is letting its control go. */
  uvm_qmp_client_set_event_handler (self->qmp, NULL, NULL, NULL);
  uvm_qmp_client_set_closed_handler (self->qmp, NULL, NULL, NULL);
  uvm_qmp_client_close (self->qmp);
  uvm_qmp_client_unref (self->qmp);
  g_free (self);
}

static const UvmControlClass minimal_control_class = {
  .send_async = minimal_send_async,
  .reply_state = minimal_reply_state,
  .op_request = minimal_op_request,
  .raw_request = minimal_raw_request,
  .set_request_timeout = minimal_set_request_timeout,
  .read_pending = minimal_read_pending,
  .free = minimal_control_free,
};

static UvmControl *
minimal_control_new (const UvmPlan *plan, const UvmLaunchResult *launch,
                     const UvmControlSink *sink, gpointer vm)
{
  MinimalControl *self = g_new0 (MinimalControl, 1);

  /* The plan has no UVM_PLAN_FD_EVENT_PIPE: events come over QMP. */
  g_assert (launch->event_fd < 0);
  self->parent.klass = &minimal_control_class;
  self->parent.sink = sink;
  self->parent.vm = vm;
  self->qmp = uvm_qmp_client_new (launch->control_fd);
  uvm_qmp_client_set_event_handler (self->qmp, minimal_on_event, self, NULL);
  uvm_qmp_client_set_closed_handler (self->qmp, minimal_on_closed, self, NULL);
  return &self->parent;
}

const UvmBackend test_backend_qemu_minimal = {
  .name = TEST_QEMU_MINIMAL_NAME,
  .default_binary = "qemu-system-x86_64",
  /* Only what it implements: the library refuses the rest, naming it. */
  .features = UVM_FEATURE_BIT (UVM_FEATURE_MACHINE_PC) |
              UVM_FEATURE_BIT (UVM_FEATURE_SOFTWARE_EMULATION) |
              UVM_FEATURE_BIT (UVM_FEATURE_RAW_QMP),
  /* No uplink of any kind (no network feature): the value is never used. */
  .default_uplink = UVM_UPLINK_USER,
  .validate = minimal_validate,
  .build_plan = minimal_build_plan,
  .control_new = minimal_control_new,
};

void
test_backend_qemu_minimal_register (void)
{
  uvm_backend_register (TEST_HYPERVISOR_QEMU_MINIMAL, &test_backend_qemu_minimal);
}
