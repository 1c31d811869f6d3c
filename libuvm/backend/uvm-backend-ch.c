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
ch_validate (UvmVm *vm, GError **error)
{
  /* Everything cloud-hypervisor lacks is in its feature table. */
  return TRUE;
}

/* ---- Launch plan ----------------------------------------------------- */

typedef struct {
  char *vm_config;       /* vm.create body */
  GPtrArray *net_bodies; /* vm.add-net bodies, in the order of the plan's tap fds */
  gboolean boot;         /* FALSE: start paused, i.e. created but not booted */
} ChPlanData;

static void
ch_plan_data_free (gpointer data)
{
  ChPlanData *d = data;

  g_free (d->vm_config);
  g_ptr_array_unref (d->net_bodies);
  g_free (d);
}

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
build_vm_config (UvmVm *vm, UvmPlan *plan)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  gboolean have_disks = FALSE;
  const char *console = uvm_vm_get_console_path (vm);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "payload");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "kernel");
  add_reopened (b, plan, uvm_vm_get_kernel (vm), O_RDONLY, "kernel");
  if (uvm_vm_get_initramfs (vm) != NULL)
    {
      json_builder_set_member_name (b, "initramfs");
      add_reopened (b, plan, uvm_vm_get_initramfs (vm), O_RDONLY, "initramfs");
    }
  if (uvm_vm_get_cmdline (vm) != NULL)
    {
      json_builder_set_member_name (b, "cmdline");
      json_builder_add_string_value (b, uvm_vm_get_cmdline (vm));
    }
  json_builder_end_object (b);

  json_builder_set_member_name (b, "cpus");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "boot_vcpus");
  json_builder_add_int_value (b, uvm_vm_get_vcpus (vm));
  json_builder_set_member_name (b, "max_vcpus");
  json_builder_add_int_value (b, uvm_vm_get_vcpus (vm));
  json_builder_end_object (b);

  json_builder_set_member_name (b, "memory");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) uvm_vm_get_memory (vm));
  json_builder_end_object (b);

  /* Serial to the console log like qemu's ttyS0; the virtio console off,
   * so the guest has exactly one console, as with the qemu backend. */
  json_builder_set_member_name (b, "serial");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, console ? "File" : "Null");
  if (console != NULL)
    {
      /* cloud-hypervisor truncates it when it opens it (File::create). */
      json_builder_set_member_name (b, "file");
      add_reopened (b, plan, console, O_WRONLY | O_CREAT, "serial console file");
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "console");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, "Off");
  json_builder_end_object (b);

  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    {
      UvmDevice *dev = uvm_vm_get_device (vm, i);
      UvmStorage *st;

      switch (uvm_device_get_kind (dev))
        {
        case UVM_DEVICE_BALLOON:
          /* Starts empty: the guest has all its memory until a target. */
          json_builder_set_member_name (b, "balloon");
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "id");
          json_builder_add_string_value (b, uvm_device_get_id (dev));
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
        case UVM_DEVICE_DISK:
          if (!have_disks)
            {
              json_builder_set_member_name (b, "disks");
              json_builder_begin_array (b);
              have_disks = TRUE;
            }
          st = uvm_device_get_storage (dev);
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "path");
          {
            g_autofree char *what = g_strdup_printf ("%s: disk image", uvm_device_get_id (dev));
            add_reopened (b, plan, uvm_storage_get_path (st),
                          uvm_storage_get_read_only (st) ? O_RDONLY : O_RDWR, what);
          }
          json_builder_set_member_name (b, "readonly");
          json_builder_add_boolean_value (b, uvm_storage_get_read_only (st));
          /* Never probed: a guest must not turn a raw disk into qcow2. */
          json_builder_set_member_name (b, "image_type");
          json_builder_add_string_value (b, uvm_storage_get_format (st) == UVM_STORAGE_FORMAT_QCOW2
                                              ? "Qcow2" : "Raw");
          json_builder_set_member_name (b, "id");
          json_builder_add_string_value (b, uvm_device_get_id (dev));
          json_builder_end_object (b);
          break;
        default:
          break;
        }
    }
  if (have_disks)
    json_builder_end_array (b);
  json_builder_end_object (b);
  return node_to_string (b);
}

static char *
build_net_config (UvmDevice *dev)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, uvm_device_get_id (dev));
  json_builder_set_member_name (b, "mac");
  json_builder_add_string_value (b, uvm_device_get_mac (dev));
  /* One tap fd: one queue pair. */
  json_builder_set_member_name (b, "num_queues");
  json_builder_add_int_value (b, 2);
  json_builder_end_object (b);
  return node_to_string (b);
}

static UvmPlan *
ch_build_plan (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = uvm_plan_new (uvm_vm_get_name (vm), "cloud-hypervisor",
                                          uvm_vm_get_hypervisor_path (vm));
  g_autofree char *control_what = g_strdup_printf ("control socket (REST API), listening on %s",
                                                   uvm_vm_get_control_path (vm));
  int control_fd = uvm_plan_add_fd (plan, UVM_PLAN_FD_CONTROL_SOCKET, NULL, control_what);
  int event_fd = uvm_plan_add_fd (plan, UVM_PLAN_FD_EVENT_PIPE, NULL,
                                  "event monitor (pipe; the library reads the other end)");
  g_autofree char *api = g_strdup_printf ("fd=%d", control_fd);
  g_autofree char *events = g_strdup_printf ("fd=%d", event_fd);
  ChPlanData *data = g_new0 (ChPlanData, 1);
  const char *const *extra = uvm_vm_get_extra_args (vm);

  data->net_bodies = g_ptr_array_new_with_free_func (g_free);
  data->boot = !uvm_vm_get_start_paused (vm);
  data->vm_config = build_vm_config (vm, plan);
  plan->backend_data = data;
  plan->backend_data_free = ch_plan_data_free;

  /* No payload on the command line: the VM comes from vm.create, so that
   * taps can be added with their fds before it boots. */
  uvm_plan_add_args (plan, "--api-socket", api, "--event-monitor", events, "--seccomp", "true", NULL);
  for (guint i = 0; extra[i] != NULL; i++)
    uvm_plan_add_args (plan, extra[i], NULL);

  uvm_plan_add_request (plan, "GET " API_PREFIX "vmm.ping");
  {
    g_autofree char *req = g_strdup_printf ("PUT " API_PREFIX "vm.create %s", data->vm_config);
    uvm_plan_add_request (plan, req);
  }
  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    {
      UvmDevice *dev = uvm_vm_get_device (vm, i);
      UvmNetwork *net;
      g_autofree char *what = NULL, *req = NULL, *tap = NULL;
      char *body;

      if (uvm_device_get_kind (dev) != UVM_DEVICE_NET)
        continue;
      net = uvm_device_get_network (dev);
      if (uvm_network_uses_lib_tap (net, UVM_HYPERVISOR_CLOUD_HYPERVISOR))
        {
          g_autofree char *desc = uvm_lib_tap_description (vm, dev);

          tap = uvm_network_member_tap_name (net, dev, uvm_vm_get_name (vm));
          what = g_strdup_printf ("%s, with vm.add-net", desc);
          uvm_plan_add_control_fd (plan, UVM_PLAN_FD_LIB_TAP, dev, what);
        }
      else
        {
          tap = g_strdup (uvm_network_get_tap_name (net));
          what = g_strdup_printf ("%s: tap '%s' (IFF_VNET_HDR), with vm.add-net",
                                  uvm_device_get_id (dev), tap);
          uvm_plan_add_control_fd (plan, UVM_PLAN_FD_TAP, dev, what);
        }
      body = build_net_config (dev);
      req = g_strdup_printf ("PUT " API_PREFIX "vm.add-net %s + fd of tap '%s' (SCM_RIGHTS)", body,
                             tap);
      g_ptr_array_add (data->net_bodies, body);
      uvm_plan_add_request (plan, req);
    }
  if (data->boot)
    uvm_plan_add_request (plan, "PUT " API_PREFIX "vm.boot");
  uvm_plan_add_request (plan, "GET " API_PREFIX "vm.info");
  return g_steal_pointer (&plan);
}

/* ---- Control connection ------------------------------------------------ */

typedef struct {
  UvmControl parent;
  UvmHttpClient *http;
  UvmChEventMonitor *events;
  char *vm_config;
  GPtrArray *net_bodies;
  GArray *net_fds;       /* int, parallel to net_bodies; closed once sent */
  gboolean boot;
  gboolean booted;
  gboolean host_shutdown;   /* we sent vm.shutdown/vmm.shutdown */
} ChControl;

/* One API call; non-2xx becomes UVM_ERROR_HYPERVISOR quoting the body. */
typedef struct {
  char *endpoint;
} CallData;

static void
call_data_free (gpointer data)
{
  CallData *c = data;

  g_free (c->endpoint);
  g_free (c);
}

static void
call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  CallData *c = g_task_get_task_data (task);
  UvmHttpClient *http = g_object_get_data (G_OBJECT (task), "uvm-http");
  GError *error = NULL;
  g_autoptr(UvmHttpResponse) response = uvm_http_client_request_finish (http, result, &error);

  if (response == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (response->status < 200 || response->status > 299)
    {
      g_autofree char *text = uvm_http_response_error_text (response);
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_HYPERVISOR, "%s: %s (HTTP %u)",
                               c->endpoint, text, response->status);
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&response), (GDestroyNotify) uvm_http_response_free);
}

static void
ch_call (ChControl *self, const char *method, const char *endpoint, const char *body,
         const int *fds, guint n_fds, GCancellable *cancellable, GAsyncReadyCallback callback,
         gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autofree char *path = g_strconcat (API_PREFIX, endpoint, NULL);
  CallData *c = g_new0 (CallData, 1);

  c->endpoint = g_strdup (endpoint);
  g_task_set_task_data (task, c, call_data_free);
  /* The HTTP client's tasks have no GObject source: keep it with ours. */
  g_object_set_data_full (G_OBJECT (task), "uvm-http", uvm_http_client_ref (self->http),
                          (GDestroyNotify) uvm_http_client_unref);
  uvm_http_client_request_async (self->http, method, path, body, fds, n_fds, cancellable,
                                 call_done, task);
}

static UvmHttpResponse *
ch_call_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* The start sequence: ping, create, add-net for each tap, boot, info. */
typedef enum { STEP_PING, STEP_CREATE, STEP_ADD_NET, STEP_BOOT, STEP_INFO, STEP_DONE } ReadyStep;

typedef struct {
  ChControl *self;
  ReadyStep step;
  guint net_index;
} ReadyData;

static void ready_next (GTask *task);

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

static void
ready_step_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ReadyData *d = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(UvmHttpResponse) response = ch_call_finish (result, &error);

  if (response == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  switch (d->step)
    {
    case STEP_ADD_NET:
      /* Sent: our copy of the tap fd is no longer needed. */
      uvm_close_fd (&g_array_index (d->self->net_fds, int, d->net_index));
      if (++d->net_index < d->self->net_bodies->len)
        break;
      d->step = d->self->boot ? STEP_BOOT : STEP_INFO;
      break;
    case STEP_BOOT:
      d->self->booted = TRUE;
      d->step = STEP_INFO;
      break;
    case STEP_INFO:
      {
        g_autoptr(JsonNode) node = json_from_string (response->body, NULL);
        JsonObject *obj = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
        const char *state = obj ? json_object_get_string_member_with_default (obj, "state", NULL) : NULL;
        gboolean ok;
        UvmVmState vm_state = state_from_info (state, &ok);

        if (!ok)
          g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_PROTOCOL,
                                   "vm.info: unexpected state %s", state ? state : "(none)");
        else
          g_task_return_int (task, vm_state);
        return;
      }
    case STEP_CREATE:
      d->step = d->self->net_bodies->len > 0 ? STEP_ADD_NET : d->self->boot ? STEP_BOOT : STEP_INFO;
      break;
    default:
      d->step++;
      break;
    }
  ready_next (g_steal_pointer (&task));
}

static void
ready_next (GTask *task)
{
  ReadyData *d = g_task_get_task_data (task);
  ChControl *self = d->self;
  GCancellable *cancellable = g_task_get_cancellable (task);

  switch (d->step)
    {
    case STEP_PING:
      ch_call (self, "GET", "vmm.ping", NULL, NULL, 0, cancellable, ready_step_done, task);
      break;
    case STEP_CREATE:
      ch_call (self, "PUT", "vm.create", self->vm_config, NULL, 0, cancellable, ready_step_done, task);
      break;
    case STEP_ADD_NET:
      ch_call (self, "PUT", "vm.add-net", g_ptr_array_index (self->net_bodies, d->net_index),
               &g_array_index (self->net_fds, int, d->net_index), 1, cancellable,
               ready_step_done, task);
      break;
    case STEP_BOOT:
      ch_call (self, "PUT", "vm.boot", NULL, NULL, 0, cancellable, ready_step_done, task);
      break;
    case STEP_INFO:
    case STEP_DONE:
      ch_call (self, "GET", "vm.info", NULL, NULL, 0, cancellable, ready_step_done, task);
      break;
    }
}

static void
ch_ready_async (UvmControl *control, GCancellable *cancellable, GAsyncReadyCallback callback,
                gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  ReadyData *d = g_new0 (ReadyData, 1);

  d->self = (ChControl *) control;
  d->step = STEP_PING;
  g_task_set_task_data (task, d, g_free);
  ready_next (task);
}

static void
request_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(UvmHttpResponse) response = ch_call_finish (result, &error);

  if (response == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
ch_request_async (UvmControl *control, UvmControlOp op, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data)
{
  ChControl *self = (ChControl *) control;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  const char *endpoint = NULL;

  switch (op)
    {
    case UVM_CONTROL_PAUSE:
      endpoint = "vm.pause";
      break;
    case UVM_CONTROL_RESUME:
      /* A VM started paused was created but never booted. */
      endpoint = self->booted ? "vm.resume" : "vm.boot";
      self->booted = TRUE;
      break;
    case UVM_CONTROL_POWER_BUTTON:
      endpoint = "vm.power-button";
      break;
    case UVM_CONTROL_QUIT:
      /* Ends the VMM; returns 200 on v53 where the spec says 204. */
      endpoint = "vmm.shutdown";
      self->host_shutdown = TRUE;
      break;
    }
  ch_call (self, "PUT", endpoint, NULL, NULL, 0, cancellable, request_done, task);
}

static void
ch_balloon_async (UvmControl *control, guint64 guest_bytes, guint64 memory,
                  GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  ChControl *self = (ChControl *) control;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autofree char *body = NULL;

  /* cloud-hypervisor's desired_balloon is the balloon's size, the memory
   * taken from the guest: the complement of our guest-visible target. */
  body = g_strdup_printf ("{\"desired_balloon\":%" G_GUINT64_FORMAT "}", memory - guest_bytes);
  ch_call (self, "PUT", "vm.resize", body, NULL, 0, cancellable, request_done, task);
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
  for (guint i = 0; i < self->net_fds->len; i++)
    uvm_close_fd (&g_array_index (self->net_fds, int, i));
  g_array_unref (self->net_fds);
  g_ptr_array_unref (self->net_bodies);
  g_free (self->vm_config);
  g_free (self);
}

static const UvmControlClass ch_control_class = {
  .ready_async = ch_ready_async,
  .request_async = ch_request_async,
  .balloon_async = ch_balloon_async,
  .set_request_timeout = ch_set_request_timeout,
  .read_pending = ch_read_pending,
  .free = ch_control_free,
};

static UvmControl *
ch_control_new (int fd, UvmPlan *plan, int *kept, const UvmControlSink *sink, gpointer vm)
{
  ChControl *self = g_new0 (ChControl, 1);
  ChPlanData *data = plan->backend_data;

  self->parent.klass = &ch_control_class;
  self->parent.sink = sink;
  self->parent.vm = vm;
  self->http = uvm_http_client_new (fd);
  uvm_http_client_set_closed_handler (self->http, ch_on_closed, self);
  self->vm_config = g_strdup (data->vm_config);
  self->boot = data->boot;
  self->net_bodies = g_ptr_array_new_with_free_func (g_free);
  self->net_fds = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < plan->fds->len; i++)
    {
      const UvmPlanFd *pfd = g_ptr_array_index (plan->fds, i);

      if (kept[i] < 0)
        continue;
      if (pfd->kind == UVM_PLAN_FD_EVENT_PIPE)
        self->events = uvm_ch_event_monitor_new (kept[i], ch_on_event, NULL, self);
      else if (pfd->kind == UVM_PLAN_FD_TAP || pfd->kind == UVM_PLAN_FD_LIB_TAP)
        g_array_append_val (self->net_fds, kept[i]);
      else
        close (kept[i]);
    }
  for (guint i = 0; i < data->net_bodies->len; i++)
    g_ptr_array_add (self->net_bodies, g_strdup (g_ptr_array_index (data->net_bodies, i)));
  g_assert (self->net_bodies->len == self->net_fds->len);
  return &self->parent;
}

gboolean
uvm_control_is_cloud_hypervisor (UvmControl *control)
{
  return control->klass == &ch_control_class;
}

/* The escape hatch uses the connection directly: any endpoint, any status.
 * A raw stop is still ours, not the guest's: v53.0 says vm/shutdown for
 * vm.shutdown, vmm.shutdown and also vm.delete of a running VM (seen on the
 * real binary: vm/shutdown, then vm/deleted). */
UvmHttpClient *
uvm_ch_control_get_http (UvmControl *control, const char *endpoint)
{
  ChControl *self = (ChControl *) control;

  if (g_strcmp0 (endpoint, "vm.shutdown") == 0 || g_strcmp0 (endpoint, "vmm.shutdown") == 0 ||
      g_strcmp0 (endpoint, "vm.delete") == 0)
    self->host_shutdown = TRUE;
  return self->http;
}

const UvmBackend uvm_backend_cloud_hypervisor = {
  .name = "cloud-hypervisor",
  .default_binary = "cloud-hypervisor",
  .features = UVM_FEATURE_BIT (UVM_FEATURE_TAP_NETWORK) | UVM_FEATURE_BIT (UVM_FEATURE_BRIDGE_LINK) | UVM_FEATURE_BIT (UVM_FEATURE_QCOW2) |
              UVM_FEATURE_BIT (UVM_FEATURE_BALLOON) | UVM_FEATURE_BIT (UVM_FEATURE_HOTPLUG) |
              UVM_FEATURE_BIT (UVM_FEATURE_RAW_REST) | UVM_FEATURE_BIT (UVM_FEATURE_HOST_BRIDGE) |
              UVM_FEATURE_BIT (UVM_FEATURE_TAP_NAT_UPLINK),
  .validate = ch_validate,
  .build_plan = ch_build_plan,
  .control_new = ch_control_new,
};
