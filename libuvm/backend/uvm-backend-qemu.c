/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qemu backend: command line for qemu-system-x86_64 and a QMP control
 * connection. */
#include "backend/uvm-backend.h"
#include "proto/uvm-qmp.h"
#include "util/uvm-util.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ---- Definition checks ---------------------------------------------- */

static UvmMachine
effective_machine (const UvmDesc *desc)
{
  return desc->machine == UVM_MACHINE_DEFAULT ? UVM_MACHINE_Q35 : desc->machine;
}

static gboolean
qemu_validate (const UvmDesc *desc, GError **error)
{
  UvmMachine machine = effective_machine (desc);

  if (machine != UVM_MACHINE_Q35 && machine != UVM_MACHINE_PC && machine != UVM_MACHINE_MICROVM)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "machine: unknown machine type %d",
                          (int) machine);
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);

      if (machine == UVM_MACHINE_MICROVM && dev->hotpluggable)
        return uvm_set_error (error, UVM_ERROR_UNSUPPORTED,
                              "%s: hotpluggable devices need PCI, and the microvm machine "
                              "type has none", dev->field);
    }
  return TRUE;
}

/* ---- Launch plan ----------------------------------------------------- */

typedef struct {
  UvmPlan *plan;
  gboolean mmio;        /* microvm: virtio-mmio devices */
  guint next_chassis;   /* q35 root ports for hotpluggable devices */
} PlanBuilder;

static char *
printf_qemu (const char *first, ...)
{
  /* Builds "k=v,k=v" where each value is escaped: pairs of (key, value)
   * strings, a NULL value skips the pair, a NULL key ends the list.  The
   * first string is the option's leading token and is not escaped. */
  GString *out = g_string_new (first);
  va_list args;
  const char *key;

  va_start (args, first);
  while ((key = va_arg (args, const char *)) != NULL)
    {
      const char *value = va_arg (args, const char *);
      if (value == NULL)
        continue;
      if (out->len > 0)
        g_string_append_c (out, ',');
      g_string_append (out, key);
      g_string_append_c (out, '=');
      uvm_append_qemu_value (out, value);
    }
  va_end (args);
  return g_string_free (out, FALSE);
}

static char *
derive_uuid (const char *name)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 d[32];
  gsize len = sizeof d;

  g_checksum_update (sum, (const guchar *) "uvm-uuid\0", 9);
  g_checksum_update (sum, (const guchar *) name, strlen (name));
  g_checksum_get_digest (sum, d, &len);
  d[6] = (d[6] & 0x0f) | 0x80;   /* RFC 9562 version 8: vendor-defined */
  d[8] = (d[8] & 0x3f) | 0x80;   /* RFC 4122 variant */
  return g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                          d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9],
                          d[10], d[11], d[12], d[13], d[14], d[15]);
}

/* -device for a virtio device: the transport follows the machine, and a
 * hotpluggable device gets a PCIe root port of its own on q35 (its bus
 * cannot take hotplug otherwise). */
static void
add_virtio_device (PlanBuilder *b, const UvmDescDevice *dev, const char *model,
                   const char *k1, const char *v1, const char *k2, const char *v2)
{
  g_autofree char *driver = g_strdup_printf ("%s-%s", model, b->mmio ? "device" : "pci");
  g_autofree char *port = NULL;
  const char *id = dev->id;

  if (dev->hotpluggable && effective_machine (b->plan->desc) == UVM_MACHINE_Q35)
    {
      g_autofree char *chassis = g_strdup_printf ("%u", ++b->next_chassis);
      port = g_strdup_printf ("%s-port", id);
      uvm_plan_add_args (b->plan, "-device", NULL);
      uvm_plan_take_arg (b->plan, printf_qemu ("pcie-root-port", "id", port,
                                               "chassis", chassis, NULL));
    }
  uvm_plan_add_args (b->plan, "-device", NULL);
  uvm_plan_take_arg (b->plan, printf_qemu (driver, "id", id, "bus", port,
                                           k1, v1, k2, v2, NULL));
}

/* An fd set of its own for @path, opened by the library with @flags:
 * "-add-fd fd=N,set=N,opaque=PATH" and returns "/dev/fdset/N", which qemu
 * opens by dup()ing the fd of the set with the same access mode.  The
 * hypervisor never sees the path: its directory may be closed to it. */
static char *
add_fdset (PlanBuilder *b, const char *path, int flags, const char *what)
{
  int fd = uvm_plan_add_file_fd (b->plan, path, flags, UVM_PLAN_FILE_FD, what);
  g_autofree char *n = g_strdup_printf ("%d", fd);

  uvm_plan_add_args (b->plan, "-add-fd", NULL);
  uvm_plan_take_arg (b->plan, printf_qemu ("", "fd", n, "set", n, "opaque", path, NULL));
  return g_strdup_printf ("/dev/fdset/%d", fd);
}

/* qemu reads the kernel and initramfs by path (not through qemu_open, so
 * no fd sets): /proc/self/fd/N of an fd the library opened. */
static char *
add_reopened (UvmPlan *plan, const char *path, const char *what)
{
  g_autofree char *desc = g_strdup_printf ("%s '%s' (read-only; qemu reads it as "
                                           "/proc/self/fd/N)", what, path);
  int fd = uvm_plan_add_file_fd (plan, path, O_RDONLY, UVM_PLAN_FILE_REOPENED, desc);

  return g_strdup_printf ("/proc/self/fd/%d", fd);
}

/* -netdev for a passt uplink (UVM_UPLINK_PASST): a passt helper started
 * before qemu, the two joined by a stream socket pair (frames with a
 * 32-bit length prefix, the qemu socket protocol passt speaks). */
static void
add_passt_netdev (PlanBuilder *b, const UvmDescDevice *dev, const char *backend_id)
{
  const char *id = dev->id;
  const char *net_name = dev->network;
  const char *rundir = b->plan->desc->runtime_dir;
  g_autofree char *log_name = g_strdup_printf ("passt-%s.log", id);
  g_autofree char *log_path = g_build_filename (rundir, log_name, NULL);
  g_autofree char *helper_what = g_strdup_printf ("%s: passt for the uplink '%s'", id, net_name);
  g_autofree char *passt_end = g_strdup_printf ("%s: passt's end of the stream socket pair "
                                                "to qemu (AF_UNIX SOCK_STREAM)", id);
  g_autofree char *qemu_end = g_strdup_printf ("%s: qemu's end of the stream socket pair to "
                                               "passt (uplink '%s')", id, net_name);
  UvmPlanHelper *passt = uvm_plan_add_helper (b->plan, "passt", dev, helper_what, log_path);
  g_autofree char *passt_fd = g_strdup_printf ("%d", uvm_plan_helper_add_fd (passt,
                                                 UVM_PLAN_FD_HELPER_STREAM, dev, passt_end));
  g_autofree char *qemu_fd = g_strdup_printf ("%d", uvm_plan_add_fd (b->plan,
                                                UVM_PLAN_FD_HELPER_STREAM, dev, qemu_end));

  /* Foreground (our child, reaped by us); quiet; IPv4 only (Whonix's
   * outside is IPv4, and no IPv6 address leaks to the guest); the Whonix
   * external addresses; --no-map-gw: 10.0.2.2 is not the host's loopback;
   * no inbound ports.  It logs to its stderr, a file in the runtime dir
   * the library opens: passt runs as the VM user, who cannot open files
   * there. */
  uvm_plan_helper_add_args (passt, "--foreground", "--quiet", "--ipv4-only",
                            "--fd", passt_fd,
                            "--address", "10.0.2.15", "--netmask", "24", "--gateway", "10.0.2.2",
                            "--no-map-gw",
                            "--tcp-ports", "none", "--udp-ports", "none", NULL);
  uvm_plan_take_arg (b->plan, printf_qemu ("stream", "id", backend_id, "server", "off",
                                           "addr.type", "fd", "addr.str", qemu_fd, NULL));
}

static gboolean
plan_device (PlanBuilder *b, const UvmDescDevice *dev, GError **error)
{
  const char *id = dev->id;
  g_autofree char *backend_id = g_strdup_printf ("%s-be", id);

  switch (dev->kind)
    {
    case UVM_DEVICE_CONSOLE:
      {
        /* The serial line is a stream socket pair to the console relay,
         * which logs it and serves console.sock: the console stays
         * interactive and logged whoever started qemu. */
        g_autofree char *relay_end = g_strdup_printf ("%s: the relay's end of the serial "
                                                      "socket pair to qemu (AF_UNIX "
                                                      "SOCK_STREAM)", id);
        g_autofree char *qemu_end = g_strdup_printf ("%s: qemu's end of the serial socket pair "
                                                     "to the console relay (AF_UNIX "
                                                     "SOCK_STREAM)", id);
        g_autofree char *qemu_fd = NULL;

        uvm_plan_add_console_relay (b->plan, dev, UVM_PLAN_FD_HELPER_STREAM, relay_end);
        qemu_fd = g_strdup_printf ("%d", uvm_plan_add_fd (b->plan, UVM_PLAN_FD_HELPER_STREAM,
                                                          dev, qemu_end));
        uvm_plan_add_args (b->plan, "-chardev", NULL);
        uvm_plan_take_arg (b->plan, printf_qemu ("socket", "id", id, "fd", qemu_fd,
                                                 "server", "off", NULL));
      }
      uvm_plan_add_args (b->plan, "-serial", NULL);
      uvm_plan_take_arg (b->plan, g_strdup_printf ("chardev:%s", id));
      return TRUE;

    case UVM_DEVICE_BALLOON:
      add_virtio_device (b, dev, "virtio-balloon", NULL, NULL, NULL, NULL);
      return TRUE;

    case UVM_DEVICE_RNG:
      uvm_plan_add_args (b->plan, "-object", NULL);
      uvm_plan_take_arg (b->plan, printf_qemu ("rng-random", "id", backend_id,
                                               "filename", "/dev/urandom", NULL));
      add_virtio_device (b, dev, "virtio-rng", "rng", backend_id, NULL, NULL);
      return TRUE;

    case UVM_DEVICE_DISK:
      {
        gboolean ro = dev->read_only;
        const char *format = dev->format == UVM_STORAGE_FORMAT_QCOW2 ? "qcow2" : "raw";
        g_autofree char *what = g_strdup_printf ("%s: disk image '%s' (%s; fd set)", id,
                                                 dev->path, ro ? "read-only" : "read-write");
        g_autofree char *fdset = add_fdset (b, dev->path,
                                            ro ? O_RDONLY : O_RDWR, what);

        uvm_plan_add_args (b->plan, "-blockdev", NULL);
        uvm_plan_take_arg (b->plan, printf_qemu ("", "driver", format, "node-name", backend_id,
                                                 "read-only", ro ? "on" : "off",
                                                 "file.driver", "file",
                                                 "file.filename", fdset,
                                                 NULL));
        /* Without a kernel the firmware boots this one. */
        add_virtio_device (b, dev, "virtio-blk", "drive", backend_id,
                           "bootindex", dev->boot ? "0" : NULL);
        return TRUE;
      }

    case UVM_DEVICE_NET:
      uvm_plan_add_args (b->plan, "-netdev", NULL);
      switch (dev->nic)
        {
        case UVM_DESC_NIC_LIB_TAP:
          {
            int fd = uvm_plan_add_fd (b->plan, UVM_PLAN_FD_LIB_TAP, dev, dev->tap_what);
            g_autofree char *fd_str = g_strdup_printf ("%d", fd);
            uvm_plan_take_arg (b->plan, printf_qemu ("tap", "id", backend_id, "fd", fd_str, NULL));
          }
          break;
        case UVM_DESC_NIC_PASST:
          add_passt_netdev (b, dev, backend_id);
          break;
        case UVM_DESC_NIC_USER:
          uvm_plan_take_arg (b->plan, printf_qemu ("user", "id", backend_id, NULL));
          break;
        case UVM_DESC_NIC_TAP:
          {
            g_autofree char *what = g_strdup_printf ("%s: tap '%s' (IFF_VNET_HDR)", id, dev->tap);
            int fd = uvm_plan_add_fd (b->plan, UVM_PLAN_FD_TAP, dev, what);
            g_autofree char *fd_str = g_strdup_printf ("%d", fd);
            /* With fd= qemu reads the vnet header flag from the tap itself
             * (and refuses vnet_hdr=). */
            uvm_plan_take_arg (b->plan, printf_qemu ("tap", "id", backend_id, "fd", fd_str, NULL));
          }
          break;
        case UVM_DESC_NIC_LINK:
          {
            g_autofree char *what = g_strdup_printf ("%s: end of the isolated link '%s' "
                                                     "(AF_UNIX SOCK_DGRAM socket pair)",
                                                     id, dev->network);
            int fd = uvm_plan_add_fd (b->plan, UVM_PLAN_FD_NET_LINK, dev, what);
            g_autofree char *fd_str = g_strdup_printf ("%d", fd);
            uvm_plan_take_arg (b->plan, printf_qemu ("dgram", "id", backend_id,
                                                     "local.type", "fd", "local.str", fd_str,
                                                     NULL));
          }
          break;
        }
      add_virtio_device (b, dev, "virtio-net", "netdev", backend_id, "mac", dev->mac);
      return TRUE;
    }
  return uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "%s: device kind %d is not supported by "
                        "qemu", dev->field, (int) dev->kind);
}

static UvmPlan *
qemu_build_plan (UvmDesc *desc, GError **error)
{
  g_autoptr(UvmPlan) plan = uvm_plan_new (desc, "qemu");
  PlanBuilder b = { plan, FALSE, 0 };
  UvmMachine machine = effective_machine (desc);
  g_autofree char *uuid = derive_uuid (desc->name);
  g_autofree char *smp = g_strdup_printf ("%u", desc->vcpus);
  g_autofree char *mem = g_strdup_printf ("%" G_GUINT64_FORMAT "M", desc->memory / UVM_MIB);
  g_autofree char *control_what = g_strdup_printf ("control socket (QMP), listening on %s",
                                                   desc->control_path);
  g_autofree char *control_fd = g_strdup_printf ("%d", uvm_plan_add_fd (plan, UVM_PLAN_FD_CONTROL_SOCKET,
                                                                        NULL, control_what));
  b.mmio = machine == UVM_MACHINE_MICROVM;
  uvm_plan_add_args (plan, "-name", NULL);
  uvm_plan_take_arg (plan, printf_qemu ("", "guest", desc->name, NULL));
  uvm_plan_add_args (plan, "-uuid", uuid, NULL);
  /* Never the user's or the distribution's defaults: -nodefaults drops the
   * default NIC (a slirp uplink a workstation could use to bypass its
   * gateway), -no-user-config the config files. */
  uvm_plan_add_args (plan, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", NULL);
  uvm_plan_add_args (plan, "-machine", machine == UVM_MACHINE_MICROVM ? "microvm,acpi=on"
                                     : machine == UVM_MACHINE_PC ? "pc" : "q35", NULL);
  switch (desc->accel)
    {
    case UVM_ACCEL_KVM:
      uvm_plan_add_args (plan, "-accel", "kvm", "-cpu", "host", NULL);
      break;
    case UVM_ACCEL_TCG:
      uvm_plan_add_args (plan, "-accel", "tcg", NULL);
      break;
    default:
      uvm_plan_add_args (plan, "-accel", "kvm", "-accel", "tcg", "-cpu", "max", NULL);
      break;
    }
  uvm_plan_add_args (plan, "-smp", smp, "-m", mem, NULL);
  /* qemu's own seccomp filter: no obsolete syscalls, no setuid, no
   * fork/exec (we hand it every resource as an fd), no resource control. */
  uvm_plan_add_args (plan, "-sandbox",
                     "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
                     NULL);
  uvm_plan_add_args (plan, "-chardev", NULL);
  uvm_plan_take_arg (plan, printf_qemu ("socket", "id", "uvm-qmp", "fd", control_fd,
                                        "server", "on", "wait", "off", NULL));
  uvm_plan_add_args (plan, "-mon", "chardev=uvm-qmp,mode=control", NULL);
  if (desc->start_paused)
    uvm_plan_add_args (plan, "-S", NULL);
  /* Without a kernel the firmware boots the boot disk (its bootindex). */
  if (desc->kernel != NULL)
    {
      uvm_plan_add_args (plan, "-kernel", NULL);
      uvm_plan_take_arg (plan, add_reopened (plan, desc->kernel, "kernel"));
    }
  if (desc->initramfs != NULL)
    {
      uvm_plan_add_args (plan, "-initrd", NULL);
      uvm_plan_take_arg (plan, add_reopened (plan, desc->initramfs, "initramfs"));
    }
  if (desc->cmdline != NULL)
    uvm_plan_add_args (plan, "-append", desc->cmdline, NULL);
  if (machine != UVM_MACHINE_MICROVM)
    uvm_plan_add_args (plan, "-device", "pvpanic", NULL);   /* GUEST_PANICKED events */

  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    if (!plan_device (&b, uvm_desc_get_device (desc, i), error))
      return NULL;

  for (guint i = 0; desc->extra_args[i] != NULL; i++)
    uvm_plan_add_args (plan, desc->extra_args[i], NULL);

  /* The QMP client reads the greeting before the first request. */
  /* Every new QMP connection greets and needs the handshake: an attacher
   * sends both too. */
  uvm_plan_add_request (plan, uvm_plan_request_new (NULL, "qmp_capabilities", NULL,
                                                    UVM_PLAN_REQUEST_PLAIN))->on_attach = TRUE;
  uvm_plan_add_request (plan, uvm_plan_request_new (NULL, "query-status", NULL,
                                                    UVM_PLAN_REQUEST_STATE))->on_attach = TRUE;
  return g_steal_pointer (&plan);
}

/* ---- Control connection ------------------------------------------------ */

typedef struct {
  UvmControl parent;
  UvmQmpClient *qmp;
  gboolean greeted;     /* the handshake was sent */
} QemuControl;

static void
qemu_on_event (UvmQmpClient *client, const char *event, JsonObject *data,
               gint64 timestamp_us, gpointer user_data)
{
  QemuControl *self = user_data;
  const UvmControlSink *sink = self->parent.sink;
  UvmEventKind kind = UVM_EVENT_HYPERVISOR_EVENT;
  const char *device = NULL;
  UvmEvent *ev;

  if (g_str_equal (event, "STOP"))
    sink->state (self->parent.vm, UVM_VM_STATE_PAUSED);
  else if (g_str_equal (event, "RESUME"))
    sink->state (self->parent.vm, UVM_VM_STATE_RUNNING);
  else if (g_str_equal (event, "SHUTDOWN") && data != NULL &&
           json_object_get_boolean_member_with_default (data, "guest", FALSE))
    {
      /* With -no-reboot a guest reset also arrives as SHUTDOWN. */
      const char *reason = json_object_get_string_member_with_default (data, "reason", "");
      kind = g_str_equal (reason, "guest-reset") ? UVM_EVENT_GUEST_RESET : UVM_EVENT_GUEST_SHUTDOWN;
    }
  else if (g_str_equal (event, "RESET") && data != NULL &&
           json_object_get_boolean_member_with_default (data, "guest", FALSE))
    kind = UVM_EVENT_GUEST_RESET;
  else if (g_str_equal (event, "GUEST_PANICKED"))
    kind = UVM_EVENT_GUEST_PANIC;
  else if (g_str_equal (event, "DEVICE_DELETED"))
    {
      kind = UVM_EVENT_DEVICE_DELETED;
      device = data ? json_object_get_string_member_with_default (data, "device", NULL) : NULL;
    }

  ev = uvm_event_new_hypervisor (kind, UVM_VM_STATE_DEFINED, event, data, device);
  sink->event (self->parent.vm, ev);
  uvm_event_unref (ev);
}

static void
qemu_on_closed (UvmQmpClient *client, const GError *error, gpointer user_data)
{
  QemuControl *self = user_data;

  self->parent.sink->closed (self->parent.vm, error);
}

static UvmVmState
state_from_status (const char *status)
{
  /* query-status "status" values (RunState): running or one of the stopped
   * kinds.  Everything but running is paused from the caller's view. */
  return g_strcmp0 (status, "running") == 0 ? UVM_VM_STATE_RUNNING : UVM_VM_STATE_PAUSED;
}

static gboolean
qemu_reply_state (UvmControl *control, const UvmControlReply *reply, UvmVmState *state,
                  GError **error)
{
  g_autoptr(JsonNode) node = reply->body ? json_from_string (reply->body, NULL) : NULL;
  JsonObject *obj = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *status = obj ? uvm_json_node_get_string (json_object_get_member (obj, "status"))
                           : NULL;

  if (status == NULL)
    return uvm_set_error (error, UVM_ERROR_PROTOCOL, "query-status: reply has no status");
  *state = state_from_status (status);
  return TRUE;
}

/* The QMP client's tasks have no GObject source: ours keeps the client. */
static GTask *
qemu_task_new (QemuControl *self, GCancellable *cancellable, GAsyncReadyCallback callback,
               gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_task_data (task, uvm_qmp_client_ref (self->qmp), (GDestroyNotify) uvm_qmp_client_unref);
  return task;
}

static void
return_reply (GTask *task, const char *body)
{
  UvmControlReply *reply = g_new0 (UvmControlReply, 1);

  reply->body = g_strdup (body);
  g_task_return_pointer (task, reply, (GDestroyNotify) uvm_control_reply_free);
}

static void
execute_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) reply = uvm_qmp_client_execute_finish (g_task_get_task_data (task), result,
                                                             &error);
  g_autofree char *body = NULL;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  body = json_to_string (reply, FALSE);
  return_reply (task, body);
}

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!uvm_qmp_client_handshake_finish (g_task_get_task_data (task), result, &error))
    g_task_return_error (task, error);
  else
    return_reply (task, "{}");
}

/* Every request goes through here, the plan's, the operations' and the
 * escape hatch's.  QMP has no refusals but errors: @raw changes nothing.
 * qmp_capabilities, the plan's first request, is sent by the client's
 * handshake, which reads the greeting before it. */
static void
qemu_send_async (UvmControl *control, const UvmPlanRequest *request, const int *fds,
                 guint n_fds, gboolean raw, GCancellable *cancellable,
                 GAsyncReadyCallback callback, gpointer user_data)
{
  QemuControl *self = (QemuControl *) control;
  GTask *task = qemu_task_new (self, cancellable, callback, user_data);
  g_autoptr(JsonNode) args = NULL;

  if (!self->greeted)
    {
      if (!g_str_equal (request->target, "qmp_capabilities") || request->body != NULL)
        {
          g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_PROTOCOL,
                                   "%s: QMP takes qmp_capabilities first", request->target);
          g_object_unref (task);
          return;
        }
      self->greeted = TRUE;
      uvm_qmp_client_handshake_async (self->qmp, cancellable, handshake_done, task);
      return;
    }
  if (request->body != NULL)
    args = json_from_string (request->body, NULL);
  uvm_qmp_client_execute_async (self->qmp, request->target, args, fds, n_fds, cancellable,
                                execute_done, task);
}

static UvmPlanRequest *
qemu_op_request (UvmControl *control, UvmControlOp op, guint64 guest_bytes, guint64 memory)
{
  static const char *const commands[] = {
    [UVM_CONTROL_PAUSE] = "stop",
    [UVM_CONTROL_RESUME] = "cont",
    [UVM_CONTROL_POWER_BUTTON] = "system_powerdown",
    [UVM_CONTROL_QUIT] = "quit",
    [UVM_CONTROL_BALLOON] = "balloon",
  };
  g_autofree char *body = NULL;

  /* qemu's "balloon" takes the size the guest keeps: ours as it is. */
  if (op == UVM_CONTROL_BALLOON)
    body = g_strdup_printf ("{\"value\":%" G_GUINT64_FORMAT "}", guest_bytes);
  return uvm_plan_request_new (NULL, commands[op], body, UVM_PLAN_REQUEST_PLAIN);
}

static UvmPlanRequest *
qemu_raw_request (UvmControl *control, const char *method, const char *name, const char *body,
                  GError **error)
{
  if (method != NULL)
    {
      uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "QMP has no methods ('%s')", method);
      return NULL;
    }
  return uvm_plan_request_new (NULL, name, body, UVM_PLAN_REQUEST_PLAIN);
}

static void
qemu_set_request_timeout (UvmControl *control, guint timeout_ms)
{
  uvm_qmp_client_set_request_timeout (((QemuControl *) control)->qmp, timeout_ms);
}

static void
qemu_read_pending (UvmControl *control)
{
  uvm_qmp_client_read_pending (((QemuControl *) control)->qmp);
}

static void
qemu_control_free (UvmControl *control)
{
  QemuControl *self = (QemuControl *) control;

  /* Detach first: closing must not call back into a VM that is going. */
  uvm_qmp_client_set_event_handler (self->qmp, NULL, NULL, NULL);
  uvm_qmp_client_set_closed_handler (self->qmp, NULL, NULL, NULL);
  uvm_qmp_client_close (self->qmp);
  uvm_qmp_client_unref (self->qmp);
  g_free (self);
}

static const UvmControlClass qemu_control_class = {
  .send_async = qemu_send_async,
  .reply_state = qemu_reply_state,
  .op_request = qemu_op_request,
  .raw_request = qemu_raw_request,
  .set_request_timeout = qemu_set_request_timeout,
  .read_pending = qemu_read_pending,
  .free = qemu_control_free,
};

static UvmControl *
qemu_control_new (const UvmPlan *plan, const UvmLaunchResult *launch, const UvmControlSink *sink,
                  gpointer vm)
{
  QemuControl *self = g_new0 (QemuControl, 1);

  g_assert (launch->event_fd < 0);   /* events come over QMP */
  self->parent.klass = &qemu_control_class;
  self->parent.sink = sink;
  self->parent.vm = vm;
  self->qmp = uvm_qmp_client_new (launch->control_fd);
  uvm_qmp_client_set_event_handler (self->qmp, qemu_on_event, self, NULL);
  uvm_qmp_client_set_closed_handler (self->qmp, qemu_on_closed, self, NULL);
  return &self->parent;
}

const UvmBackend uvm_backend_qemu = {
  .name = "qemu",
  .default_binary = "qemu-system-x86_64",
  .features = UVM_FEATURE_BIT (UVM_FEATURE_MACHINE_Q35) | UVM_FEATURE_BIT (UVM_FEATURE_MACHINE_PC) |
              UVM_FEATURE_BIT (UVM_FEATURE_MACHINE_MICROVM) |
              UVM_FEATURE_BIT (UVM_FEATURE_SOFTWARE_EMULATION) |
              UVM_FEATURE_BIT (UVM_FEATURE_USER_NETWORK) | UVM_FEATURE_BIT (UVM_FEATURE_SOCKET_LINK) |
              UVM_FEATURE_BIT (UVM_FEATURE_BRIDGE_LINK) | UVM_FEATURE_BIT (UVM_FEATURE_HOST_BRIDGE) |
              UVM_FEATURE_BIT (UVM_FEATURE_TAP_NAT_UPLINK) |
              UVM_FEATURE_BIT (UVM_FEATURE_TAP_NETWORK) | UVM_FEATURE_BIT (UVM_FEATURE_QCOW2) |
              UVM_FEATURE_BIT (UVM_FEATURE_BALLOON) | UVM_FEATURE_BIT (UVM_FEATURE_HOTPLUG) |
              UVM_FEATURE_BIT (UVM_FEATURE_RAW_QMP) | UVM_FEATURE_BIT (UVM_FEATURE_FIRMWARE_BOOT) |
              UVM_FEATURE_BIT (UVM_FEATURE_PASST_UPLINK),
  /* slirp inside qemu: nothing to set up on the host. */
  .default_uplink = UVM_UPLINK_USER,
  .validate = qemu_validate,
  .build_plan = qemu_build_plan,
  .control_new = qemu_control_new,
};
