/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cloud-hypervisor backend: a VMM started without a payload, then
 * vm.create with the VmConfig JSON, vm.add-net with each tap fd passed as
 * SCM_RIGHTS on the same sendmsg, vm.boot; events from --event-monitor. */
#include "backend/uvm-backend.h"
#include "proto/uvm-ch-events.h"
#include "proto/uvm-http.h"
#include "util/uvm-util.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define API_PREFIX "/api/v1/"

/* ---- Definition checks ---------------------------------------------- */

static gboolean
ch_validate (const UvmDesc *desc, GError **error)
{
  /* Everything cloud-hypervisor lacks is in its feature table. */
  return TRUE;
}

/* ---- Launch plan ----------------------------------------------------- */

static char *
node_to_string (JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);

  return json_to_string (root, FALSE);
}

/* cloud-hypervisor opens everything by path: it gets an fd the library
 * opened and the path /proc/self/fd/N, which skips the directories (the
 * runtime dir is closed to the VM user) but not the file's own mode. */
static void
add_reopened (JsonBuilder *b, UvmPlan *plan, const char *path, int flags, const char *what)
{
  g_autofree char *desc = g_strdup_printf ("%s '%s' (%s; cloud-hypervisor opens it as "
                                           "/proc/self/fd/N)", what, path,
                                           (flags & O_ACCMODE) == O_RDONLY ? "read-only"
                                           : (flags & O_ACCMODE) == O_WRONLY ? "write"
                                           : "read-write");
  int fd = uvm_plan_add_file_fd (plan, path, flags, UVM_PLAN_FILE_REOPENED, desc);
  g_autofree char *proc_path = g_strdup_printf ("/proc/self/fd/%d", fd);

  json_builder_add_string_value (b, proc_path);
}

static char *
build_vm_config (const UvmDesc *desc, UvmPlan *plan)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  gboolean have_disks = FALSE;
  const char *console = desc->console_path;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "payload");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "kernel");
  add_reopened (b, plan, desc->kernel, O_RDONLY, "kernel");
  if (desc->initramfs != NULL)
    {
      json_builder_set_member_name (b, "initramfs");
      add_reopened (b, plan, desc->initramfs, O_RDONLY, "initramfs");
    }
  if (desc->cmdline != NULL)
    {
      json_builder_set_member_name (b, "cmdline");
      json_builder_add_string_value (b, desc->cmdline);
    }
  json_builder_end_object (b);

  json_builder_set_member_name (b, "cpus");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "boot_vcpus");
  json_builder_add_int_value (b, desc->vcpus);
  json_builder_set_member_name (b, "max_vcpus");
  json_builder_add_int_value (b, desc->vcpus);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "memory");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) desc->memory);
  json_builder_end_object (b);

  /* Serial to the console relay like qemu's ttyS0; the virtio console
   * off, so the guest has exactly one console, as with the qemu backend.
   * "Tty" is stdin and stdout, and cloud-hypervisor takes input from stdin
   * only when it is a terminal: so a pty, whose other side the relay
   * holds ("Socket" would need it to bind a path in our directory). */
  json_builder_set_member_name (b, "serial");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, console ? "Tty" : "Null");
  json_builder_end_object (b);
  if (console != NULL)
    {
      const UvmDescDevice *dev = uvm_desc_find_kind (desc, UVM_DEVICE_CONSOLE);
      g_autofree char *relay_end = g_strdup_printf ("%s: the controlling side of the console's "
                                                    "pty (cloud-hypervisor's stdin and stdout "
                                                    "are its terminal side)", dev->id);

      uvm_plan_add_console_relay (plan, dev, UVM_PLAN_FD_CONSOLE_PTY, relay_end);
    }
  json_builder_set_member_name (b, "console");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, "Off");
  json_builder_end_object (b);

  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);

      switch (dev->kind)
        {
        case UVM_DEVICE_BALLOON:
          /* Starts empty: the guest has all its memory until a target. */
          json_builder_set_member_name (b, "balloon");
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "id");
          json_builder_add_string_value (b, dev->id);
          json_builder_set_member_name (b, "size");
          json_builder_add_int_value (b, 0);
          json_builder_end_object (b);
          break;
        case UVM_DEVICE_RNG:
          json_builder_set_member_name (b, "rng");
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "src");
          json_builder_add_string_value (b, "/dev/urandom");
          json_builder_end_object (b);
          break;
        default:
          break;
        }
    }
  /* The disks in a second pass: one array, whatever the devices' order. */
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);

      if (dev->kind != UVM_DEVICE_DISK)
        continue;
      if (!have_disks)
        {
          json_builder_set_member_name (b, "disks");
          json_builder_begin_array (b);
          have_disks = TRUE;
        }
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      {
        g_autofree char *what = g_strdup_printf ("%s: disk image", dev->id);
        add_reopened (b, plan, dev->path, dev->read_only ? O_RDONLY : O_RDWR, what);
      }
      json_builder_set_member_name (b, "readonly");
      json_builder_add_boolean_value (b, dev->read_only);
      /* Never probed: a guest must not turn a raw disk into qcow2. */
      json_builder_set_member_name (b, "image_type");
      json_builder_add_string_value (b, dev->format == UVM_STORAGE_FORMAT_QCOW2 ? "Qcow2" : "Raw");
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, dev->id);
      json_builder_end_object (b);
    }
  if (have_disks)
    json_builder_end_array (b);
  json_builder_end_object (b);
  return node_to_string (b);
}

static char *
build_net_config (const UvmDescDevice *dev)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, dev->id);
  json_builder_set_member_name (b, "mac");
  json_builder_add_string_value (b, dev->mac);
  /* One tap fd: one queue pair. */
  json_builder_set_member_name (b, "num_queues");
  json_builder_add_int_value (b, 2);
  json_builder_end_object (b);
  return node_to_string (b);
}

static UvmPlan *
ch_build_plan (UvmDesc *desc, GError **error)
{
  g_autoptr(UvmPlan) plan = uvm_plan_new (desc, "cloud-hypervisor");
  g_autofree char *control_what = g_strdup_printf ("control socket (REST API), listening on %s",
                                                   desc->control_path);
  int control_fd = uvm_plan_add_fd (plan, UVM_PLAN_FD_CONTROL_SOCKET, NULL, control_what);
  int event_fd = uvm_plan_add_fd (plan, UVM_PLAN_FD_EVENT_PIPE, NULL,
                                  "event monitor (pipe; the library reads the other end)");
  g_autofree char *api = g_strdup_printf ("fd=%d", control_fd);
  g_autofree char *events = g_strdup_printf ("fd=%d", event_fd);
  g_autofree char *vm_config = build_vm_config (desc, plan);

  /* No payload on the command line: the VM comes from vm.create, so that
   * taps can be added with their fds before it boots. */
  uvm_plan_add_args (plan, "--api-socket", api, "--event-monitor", events, "--seccomp", "true", NULL);
  for (guint i = 0; desc->extra_args[i] != NULL; i++)
    uvm_plan_add_args (plan, desc->extra_args[i], NULL);

  uvm_plan_add_request (plan, uvm_plan_request_new ("GET", API_PREFIX "vmm.ping", NULL,
                                                    UVM_PLAN_REQUEST_PLAIN))->on_attach = TRUE;
  uvm_plan_add_request (plan, uvm_plan_request_new ("PUT", API_PREFIX "vm.create", vm_config,
                                                    UVM_PLAN_REQUEST_PLAIN));
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);
      g_autofree char *what = NULL, *body = NULL;
      UvmPlanRequest *req;
      guint index;

      if (dev->kind != UVM_DEVICE_NET)
        continue;
      /* The validation let through only taps for cloud-hypervisor. */
      g_assert (dev->nic == UVM_DESC_NIC_LIB_TAP || dev->nic == UVM_DESC_NIC_TAP);
      if (dev->nic == UVM_DESC_NIC_LIB_TAP)
        what = g_strdup_printf ("%s, with vm.add-net", dev->tap_what);
      else
        what = g_strdup_printf ("%s: tap '%s' (IFF_VNET_HDR), with vm.add-net", dev->id, dev->tap);
      index = uvm_plan_add_control_fd (plan, dev->nic == UVM_DESC_NIC_LIB_TAP
                                               ? UVM_PLAN_FD_LIB_TAP : UVM_PLAN_FD_TAP,
                                       dev, what);
      body = build_net_config (dev);
      req = uvm_plan_add_request (plan, uvm_plan_request_new ("PUT", API_PREFIX "vm.add-net", body,
                                                              UVM_PLAN_REQUEST_PLAIN));
      uvm_plan_request_add_fd (req, index);
    }
  if (!desc->start_paused)
    uvm_plan_add_request (plan, uvm_plan_request_new ("PUT", API_PREFIX "vm.boot", NULL,
                                                      UVM_PLAN_REQUEST_PLAIN));
  uvm_plan_add_request (plan, uvm_plan_request_new ("GET", API_PREFIX "vm.info", NULL,
                                                    UVM_PLAN_REQUEST_STATE))->on_attach = TRUE;
  return g_steal_pointer (&plan);
}

/* ---- Control connection ------------------------------------------------ */

typedef struct {
  UvmControl parent;
  UvmHttpClient *http;
  UvmChEventMonitor *events;
  gboolean booted;          /* vm.boot was sent: resume is vm.resume */
  gboolean host_shutdown;   /* we sent vm.shutdown/vmm.shutdown/vm.delete */
} ChControl;

/* One API call; with !raw a non-2xx status becomes UVM_ERROR_HYPERVISOR
 * quoting the body. */
typedef struct {
  UvmHttpClient *http;
  char *endpoint;           /* the path without the API prefix, for errors */
  gboolean raw;
} CallData;

static void
call_data_free (gpointer data)
{
  CallData *c = data;

  uvm_http_client_unref (c->http);
  g_free (c->endpoint);
  g_free (c);
}

static void
call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  CallData *c = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(UvmHttpResponse) response = uvm_http_client_request_finish (c->http, result, &error);
  UvmControlReply *reply;

  if (response == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (!c->raw && (response->status < 200 || response->status > 299))
    {
      g_autofree char *text = uvm_http_response_error_text (response);
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_HYPERVISOR, "%s: %s (HTTP %u)",
                               c->endpoint, text, response->status);
      return;
    }
  reply = g_new0 (UvmControlReply, 1);
  reply->status = response->status;
  reply->body = g_steal_pointer (&response->body);
  g_task_return_pointer (task, reply, (GDestroyNotify) uvm_control_reply_free);
}

/* Every request goes through here, the plan's, the operations' and the
 * escape hatch's.  A stop is ours, not the guest's: v53.0 says vm/shutdown
 * for vm.shutdown, vmm.shutdown and also vm.delete of a running VM (seen on
 * the real binary: vm/shutdown, then vm/deleted). */
static void
ch_send_async (UvmControl *control, const UvmPlanRequest *request, const int *fds, guint n_fds,
               gboolean raw, GCancellable *cancellable, GAsyncReadyCallback callback,
               gpointer user_data)
{
  ChControl *self = (ChControl *) control;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  CallData *c = g_new0 (CallData, 1);
  const char *endpoint = g_str_has_prefix (request->target, API_PREFIX)
                           ? request->target + strlen (API_PREFIX) : request->target;

  c->http = uvm_http_client_ref (self->http);
  c->endpoint = g_strdup (endpoint);
  c->raw = raw;
  g_task_set_task_data (task, c, call_data_free);
  /* From now on a resume is vm.resume (as before: a failed boot fails the
   * start or the resume that sent it). */
  if (g_str_equal (endpoint, "vm.boot"))
    self->booted = TRUE;
  if (g_str_equal (endpoint, "vm.shutdown") || g_str_equal (endpoint, "vmm.shutdown") ||
      g_str_equal (endpoint, "vm.delete"))
    self->host_shutdown = TRUE;
  uvm_http_client_request_async (self->http, request->method, request->target, request->body,
                                 fds, n_fds, cancellable, call_done, task);
}

static UvmVmState
state_from_info (const char *state, gboolean *ok)
{
  *ok = TRUE;
  if (g_strcmp0 (state, "Running") == 0)
    return UVM_VM_STATE_RUNNING;
  if (g_strcmp0 (state, "Paused") == 0 || g_strcmp0 (state, "Created") == 0)
    return UVM_VM_STATE_PAUSED;   /* created and not booted: started paused */
  *ok = FALSE;
  return UVM_VM_STATE_DEFINED;
}

static gboolean
ch_reply_state (UvmControl *control, const UvmControlReply *reply, UvmVmState *state,
                GError **error)
{
  g_autoptr(JsonNode) node = reply->body ? json_from_string (reply->body, NULL) : NULL;
  JsonObject *obj = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *info = obj ? uvm_json_node_get_string (json_object_get_member (obj, "state")) : NULL;
  gboolean ok;

  *state = state_from_info (info, &ok);
  if (!ok)
    return uvm_set_error (error, UVM_ERROR_PROTOCOL, "vm.info: unexpected state %s",
                          info ? info : "(none)");
  /* A connection that did not boot it (an attacher) learns here whether
   * a resume is vm.resume (booted) or vm.boot (created only). */
  ((ChControl *) control)->booted = g_strcmp0 (info, "Created") != 0;
  return TRUE;
}

static UvmPlanRequest *
ch_op_request (UvmControl *control, UvmControlOp op, guint64 guest_bytes, guint64 memory)
{
  ChControl *self = (ChControl *) control;
  g_autofree char *body = NULL;
  const char *endpoint = NULL;

  switch (op)
    {
    case UVM_CONTROL_PAUSE:
      endpoint = API_PREFIX "vm.pause";
      break;
    case UVM_CONTROL_RESUME:
      /* A VM started paused was created but never booted. */
      endpoint = self->booted ? API_PREFIX "vm.resume" : API_PREFIX "vm.boot";
      break;
    case UVM_CONTROL_POWER_BUTTON:
      endpoint = API_PREFIX "vm.power-button";
      break;
    case UVM_CONTROL_QUIT:
      /* Ends the VMM; returns 200 on v53 where the spec says 204. */
      endpoint = API_PREFIX "vmm.shutdown";
      break;
    case UVM_CONTROL_BALLOON:
      /* cloud-hypervisor's desired_balloon is the balloon's size, the
       * memory taken from the guest: the complement of our guest-visible
       * target. */
      endpoint = API_PREFIX "vm.resize";
      body = g_strdup_printf ("{\"desired_balloon\":%" G_GUINT64_FORMAT "}", memory - guest_bytes);
      break;
    }
  return uvm_plan_request_new ("PUT", endpoint, body, UVM_PLAN_REQUEST_PLAIN);
}

static UvmPlanRequest *
ch_raw_request (UvmControl *control, const char *method, const char *name, const char *body,
                GError **error)
{
  g_autofree char *path = g_strconcat (API_PREFIX, name, NULL);

  if (method == NULL)
    {
      uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "%s: the REST API needs a method", name);
      return NULL;
    }
  return uvm_plan_request_new (method, path, body, UVM_PLAN_REQUEST_PLAIN);
}

static void
ch_on_event (const char *source, const char *event, JsonObject *properties, gint64 timestamp_us,
             gpointer user_data)
{
  ChControl *self = user_data;
  const UvmControlSink *sink = self->parent.sink;
  g_autofree char *name = g_strdup_printf ("%s/%s", source, event);
  UvmEventKind kind = UVM_EVENT_HYPERVISOR_EVENT;
  const char *device = NULL;
  UvmEvent *ev;

  if (g_str_equal (name, "vm/paused"))
    sink->state (self->parent.vm, UVM_VM_STATE_PAUSED);
  else if (g_str_equal (name, "vm/resumed") || g_str_equal (name, "vm/booted"))
    sink->state (self->parent.vm, UVM_VM_STATE_RUNNING);
  else if (g_str_equal (name, "vm/shutdown") && !self->host_shutdown)
    kind = UVM_EVENT_GUEST_SHUTDOWN;   /* v53 also says so after our own stop */
  else if (g_str_equal (name, "vm/rebooted"))
    kind = UVM_EVENT_GUEST_RESET;
  else if (g_str_equal (name, "guest/panic"))
    kind = UVM_EVENT_GUEST_PANIC;
  else if (g_str_equal (name, "vm/device-removed"))
    {
      kind = UVM_EVENT_DEVICE_DELETED;
      device = properties ? json_object_get_string_member_with_default (properties, "id", NULL) : NULL;
    }
  ev = uvm_event_new_hypervisor (kind, UVM_VM_STATE_DEFINED, name, properties, device);
  sink->event (self->parent.vm, ev);
  uvm_event_unref (ev);
}

static void
ch_set_request_timeout (UvmControl *control, guint timeout_ms)
{
  uvm_http_client_set_request_timeout (((ChControl *) control)->http, timeout_ms);
}

static void
ch_on_closed (UvmHttpClient *client, const GError *error, gpointer user_data)
{
  ChControl *self = user_data;

  self->parent.sink->closed (self->parent.vm, error);
}

static void
ch_read_pending (UvmControl *control)
{
  uvm_ch_event_monitor_read_pending (((ChControl *) control)->events);
}

static void
ch_control_free (UvmControl *control)
{
  ChControl *self = (ChControl *) control;

  uvm_ch_event_monitor_free (self->events);
  uvm_http_client_set_closed_handler (self->http, NULL, NULL);
  uvm_http_client_close (self->http);
  uvm_http_client_unref (self->http);
  g_free (self);
}

static const UvmControlClass ch_control_class = {
  .send_async = ch_send_async,
  .reply_state = ch_reply_state,
  .op_request = ch_op_request,
  .raw_request = ch_raw_request,
  .set_request_timeout = ch_set_request_timeout,
  .read_pending = ch_read_pending,
  .free = ch_control_free,
};

static UvmControl *
ch_control_new (const UvmPlan *plan, const UvmLaunchResult *launch, const UvmControlSink *sink,
                gpointer vm)
{
  ChControl *self = g_new0 (ChControl, 1);

  /* An attacher has no event pipe: cloud-hypervisor's events go to the
   * process that started it. */
  self->parent.klass = &ch_control_class;
  self->parent.sink = sink;
  self->parent.vm = vm;
  self->http = uvm_http_client_new (launch->control_fd);
  uvm_http_client_set_closed_handler (self->http, ch_on_closed, self);
  if (launch->event_fd >= 0)
    self->events = uvm_ch_event_monitor_new (launch->event_fd, ch_on_event, NULL, self);
  return &self->parent;
}

const UvmBackend uvm_backend_cloud_hypervisor = {
  .name = "cloud-hypervisor",
  .default_binary = "cloud-hypervisor",
  .features = UVM_FEATURE_BIT (UVM_FEATURE_TAP_NETWORK) | UVM_FEATURE_BIT (UVM_FEATURE_BRIDGE_LINK) | UVM_FEATURE_BIT (UVM_FEATURE_QCOW2) |
              UVM_FEATURE_BIT (UVM_FEATURE_BALLOON) | UVM_FEATURE_BIT (UVM_FEATURE_HOTPLUG) |
              UVM_FEATURE_BIT (UVM_FEATURE_RAW_REST) | UVM_FEATURE_BIT (UVM_FEATURE_HOST_BRIDGE) |
              UVM_FEATURE_BIT (UVM_FEATURE_TAP_NAT_UPLINK),
  /* No network stack of its own: a tap the library makes, with NAT. */
  .default_uplink = UVM_UPLINK_TAP_NAT,
  .validate = ch_validate,
  .build_plan = ch_build_plan,
  .control_new = ch_control_new,
};
