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
effective_machine (UvmVm *vm)
{
  UvmMachine m = uvm_vm_get_machine (vm);
  return m == UVM_MACHINE_DEFAULT ? UVM_MACHINE_Q35 : m;
}

static gboolean
qemu_validate (UvmVm *vm, GError **error)
{
  UvmMachine machine = effective_machine (vm);

  if (machine != UVM_MACHINE_Q35 && machine != UVM_MACHINE_PC && machine != UVM_MACHINE_MICROVM)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "machine: unknown machine type %d",
                          (int) machine);
  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    {
      UvmDevice *dev = uvm_vm_get_device (vm, i);

      if (machine == UVM_MACHINE_MICROVM && uvm_device_get_hotpluggable (dev))
        {
          g_autofree char *field = uvm_vm_describe_device (vm, dev);
          return uvm_set_error (error, UVM_ERROR_UNSUPPORTED,
                                "%s: hotpluggable devices need PCI, and the microvm machine "
                                "type has none", field);
        }
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
add_virtio_device (PlanBuilder *b, UvmVm *vm, UvmDevice *dev, const char *model,
                   const char *k1, const char *v1, const char *k2, const char *v2)
{
  g_autofree char *driver = g_strdup_printf ("%s-%s", model, b->mmio ? "device" : "pci");
  g_autofree char *port = NULL;
  const char *id = uvm_device_get_id (dev);

  if (uvm_device_get_hotpluggable (dev) && effective_machine (vm) == UVM_MACHINE_Q35)
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
static gboolean
add_passt_netdev (PlanBuilder *b, UvmVm *vm, UvmDevice *dev, const char *backend_id,
                  GError **error)
{
  const char *id = uvm_device_get_id (dev);
  const char *net_name = uvm_network_get_name (uvm_device_get_network (dev));
  g_autofree char *rundir = g_path_get_dirname (uvm_vm_get_log_path (vm));
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
  return TRUE;
}

/* Firmware boot (no kernel): the first disk is the one the firmware boots. */
static gboolean
is_boot_disk (UvmVm *vm, UvmDevice *dev)
{
  if (uvm_vm_get_kernel (vm) != NULL)
    return FALSE;
  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    if (uvm_device_get_kind (uvm_vm_get_device (vm, i)) == UVM_DEVICE_DISK)
      return uvm_vm_get_device (vm, i) == dev;
  return FALSE;
}

static gboolean
plan_device (PlanBuilder *b, UvmVm *vm, UvmDevice *dev, GError **error)
{
  const char *id = uvm_device_get_id (dev);
  g_autofree char *backend_id = g_strdup_printf ("%s-be", id);

  switch (uvm_device_get_kind (dev))
    {
    case UVM_DEVICE_CONSOLE:
      {
        g_autofree char *what = g_strdup_printf ("%s: console file '%s' (write, append; fd set)",
                                                 id, uvm_vm_get_console_path (vm));
        g_autofree char *fdset = add_fdset (b, uvm_vm_get_console_path (vm),
                                            O_WRONLY | O_CREAT | O_APPEND, what);

        uvm_plan_add_args (b->plan, "-chardev", NULL);
        uvm_plan_take_arg (b->plan, printf_qemu ("file", "id", id, "path", fdset,
                                                 "append", "on", NULL));
      }
      uvm_plan_add_args (b->plan, "-serial", NULL);
      uvm_plan_take_arg (b->plan, g_strdup_printf ("chardev:%s", id));
      return TRUE;

    case UVM_DEVICE_BALLOON:
      add_virtio_device (b, vm, dev, "virtio-balloon", NULL, NULL, NULL, NULL);
      return TRUE;

    case UVM_DEVICE_RNG:
      uvm_plan_add_args (b->plan, "-object", NULL);
      uvm_plan_take_arg (b->plan, printf_qemu ("rng-random", "id", backend_id,
                                               "filename", "/dev/urandom", NULL));
      add_virtio_device (b, vm, dev, "virtio-rng", "rng", backend_id, NULL, NULL);
      return TRUE;

    case UVM_DEVICE_DISK:
      {
        UvmStorage *st = uvm_device_get_storage (dev);
        gboolean ro = uvm_storage_get_read_only (st);
        const char *format = uvm_storage_get_format (st) == UVM_STORAGE_FORMAT_QCOW2 ? "qcow2" : "raw";
        g_autofree char *what = g_strdup_printf ("%s: disk image '%s' (%s; fd set)", id,
                                                 uvm_storage_get_path (st),
                                                 ro ? "read-only" : "read-write");
        g_autofree char *fdset = add_fdset (b, uvm_storage_get_path (st),
                                            ro ? O_RDONLY : O_RDWR, what);

        uvm_plan_add_args (b->plan, "-blockdev", NULL);
        uvm_plan_take_arg (b->plan, printf_qemu ("", "driver", format, "node-name", backend_id,
                                                 "read-only", ro ? "on" : "off",
                                                 "file.driver", "file",
                                                 "file.filename", fdset,
                                                 NULL));
        add_virtio_device (b, vm, dev, "virtio-blk", "drive", backend_id,
                           "bootindex", is_boot_disk (vm, dev) ? "0" : NULL);
        return TRUE;
      }

    case UVM_DEVICE_NET:
      {
        UvmNetwork *net = uvm_device_get_network (dev);

        uvm_plan_add_args (b->plan, "-netdev", NULL);
        if (uvm_network_uses_lib_tap (net, UVM_HYPERVISOR_QEMU))
          {
            g_autofree char *what = uvm_lib_tap_description (vm, dev);
            int fd = uvm_plan_add_fd (b->plan, UVM_PLAN_FD_LIB_TAP, dev, what);
            g_autofree char *fd_str = g_strdup_printf ("%d", fd);
            uvm_plan_take_arg (b->plan, printf_qemu ("tap", "id", backend_id, "fd", fd_str, NULL));
          }
        else if (uvm_network_effective_uplink_mode (net, UVM_HYPERVISOR_QEMU) == UVM_UPLINK_PASST)
          {
            if (!add_passt_netdev (b, vm, dev, backend_id, error))
              return FALSE;
          }
        else if (uvm_network_get_kind (net) == UVM_NETWORK_UPLINK)
          {
            uvm_plan_take_arg (b->plan, printf_qemu ("user", "id", backend_id, NULL));
          }
        else if (uvm_network_get_kind (net) == UVM_NETWORK_TAP)
          {
            g_autofree char *what = g_strdup_printf ("%s: tap '%s' (IFF_VNET_HDR)", id,
                                                     uvm_network_get_tap_name (net));
            int fd = uvm_plan_add_fd (b->plan, UVM_PLAN_FD_TAP, dev, what);
            g_autofree char *fd_str = g_strdup_printf ("%d", fd);
            /* With fd= qemu reads the vnet header flag from the tap itself
             * (and refuses vnet_hdr=). */
            uvm_plan_take_arg (b->plan, printf_qemu ("tap", "id", backend_id, "fd", fd_str, NULL));
          }
        else
          {
            g_autofree char *what = g_strdup_printf ("%s: end of the isolated link '%s' "
                                                     "(AF_UNIX SOCK_DGRAM socket pair)",
                                                     id, uvm_network_get_name (net));
            int fd = uvm_plan_add_fd (b->plan, UVM_PLAN_FD_NET_LINK, dev, what);
            g_autofree char *fd_str = g_strdup_printf ("%d", fd);
            uvm_plan_take_arg (b->plan, printf_qemu ("dgram", "id", backend_id,
                                                     "local.type", "fd", "local.str", fd_str,
                                                     NULL));
          }
        add_virtio_device (b, vm, dev, "virtio-net", "netdev", backend_id,
                           "mac", uvm_device_get_mac (dev));
        return TRUE;
      }
    }
  return uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "device kind %d is not supported by qemu",
                        (int) uvm_device_get_kind (dev));
}

static UvmPlan *
qemu_build_plan (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = uvm_plan_new (uvm_vm_get_name (vm), "qemu",
                                          uvm_vm_get_hypervisor_path (vm));
  PlanBuilder b = { plan, FALSE, 0 };
  UvmMachine machine = effective_machine (vm);
  g_autofree char *uuid = derive_uuid (uvm_vm_get_name (vm));
  g_autofree char *smp = g_strdup_printf ("%u", uvm_vm_get_vcpus (vm));
  g_autofree char *mem = g_strdup_printf ("%" G_GUINT64_FORMAT "M", uvm_vm_get_memory (vm) / UVM_MIB);
  g_autofree char *control_what = g_strdup_printf ("control socket (QMP), listening on %s",
                                                   uvm_vm_get_control_path (vm));
  g_autofree char *control_fd = g_strdup_printf ("%d", uvm_plan_add_fd (plan, UVM_PLAN_FD_CONTROL_SOCKET,
                                                                        NULL, control_what));
  const char *const *extra;

  b.mmio = machine == UVM_MACHINE_MICROVM;
  uvm_plan_add_args (plan, "-name", NULL);
  uvm_plan_take_arg (plan, printf_qemu ("", "guest", uvm_vm_get_name (vm), NULL));
  uvm_plan_add_args (plan, "-uuid", uuid, NULL);
  /* Never the user's or the distribution's defaults: -nodefaults drops the
   * default NIC (a slirp uplink a workstation could use to bypass its
   * gateway), -no-user-config the config files. */
  uvm_plan_add_args (plan, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", NULL);
  uvm_plan_add_args (plan, "-machine", machine == UVM_MACHINE_MICROVM ? "microvm,acpi=on"
                                     : machine == UVM_MACHINE_PC ? "pc" : "q35", NULL);
  switch (uvm_vm_get_accel (vm))
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
  if (uvm_vm_get_start_paused (vm))
    uvm_plan_add_args (plan, "-S", NULL);
  /* Without a kernel the firmware boots the first disk (its bootindex). */
  if (uvm_vm_get_kernel (vm) != NULL)
    {
      uvm_plan_add_args (plan, "-kernel", NULL);
      uvm_plan_take_arg (plan, add_reopened (plan, uvm_vm_get_kernel (vm), "kernel"));
    }
  if (uvm_vm_get_initramfs (vm) != NULL)
    {
      uvm_plan_add_args (plan, "-initrd", NULL);
      uvm_plan_take_arg (plan, add_reopened (plan, uvm_vm_get_initramfs (vm), "initramfs"));
    }
  if (uvm_vm_get_cmdline (vm) != NULL)
    uvm_plan_add_args (plan, "-append", uvm_vm_get_cmdline (vm), NULL);
  if (machine != UVM_MACHINE_MICROVM)
    uvm_plan_add_args (plan, "-device", "pvpanic", NULL);   /* GUEST_PANICKED events */

  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    if (!plan_device (&b, vm, uvm_vm_get_device (vm, i), error))
      return NULL;

  extra = uvm_vm_get_extra_args (vm);
  for (guint i = 0; extra[i] != NULL; i++)
    uvm_plan_add_args (plan, extra[i], NULL);

  uvm_plan_add_request (plan, "{\"execute\": \"qmp_capabilities\"}");
  uvm_plan_add_request (plan, "{\"execute\": \"query-status\"}");
  return g_steal_pointer (&plan);
}

/* ---- Control connection ------------------------------------------------ */

typedef struct {
  UvmControl parent;
  UvmQmpClient *qmp;
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

static void
ready_status_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) reply = uvm_qmp_client_execute_finish (g_task_get_task_data (task), result, &error);
  JsonObject *obj;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  obj = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
  if (obj == NULL || !json_object_has_member (obj, "status"))
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_PROTOCOL,
                               "query-status: reply has no status");
      return;
    }
  g_task_return_int (task, state_from_status (json_object_get_string_member (obj, "status")));
}

static void
ready_handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  UvmQmpClient *qmp = g_task_get_task_data (task);

  if (!uvm_qmp_client_handshake_finish (qmp, result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  GCancellable *cancellable = g_task_get_cancellable (task);

  uvm_qmp_client_execute_async (qmp, "query-status", NULL, NULL, 0, cancellable,
                                ready_status_done, g_steal_pointer (&task));
}

static void
qemu_ready_async (UvmControl *control, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data)
{
  QemuControl *self = (QemuControl *) control;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  /* The QMP client's tasks have no GObject source; keep the client with
   * the task instead. */
  g_task_set_task_data (task, uvm_qmp_client_ref (self->qmp), (GDestroyNotify) uvm_qmp_client_unref);
  uvm_qmp_client_handshake_async (self->qmp, cancellable, ready_handshake_done, task);
}

static void
request_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) reply = uvm_qmp_client_execute_finish (g_task_get_task_data (task), result, &error);

  if (reply == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
qemu_request_async (UvmControl *control, UvmControlOp op, GCancellable *cancellable,
                    GAsyncReadyCallback callback, gpointer user_data)
{
  static const char *const commands[] = {
    [UVM_CONTROL_PAUSE] = "stop",
    [UVM_CONTROL_RESUME] = "cont",
    [UVM_CONTROL_POWER_BUTTON] = "system_powerdown",
    [UVM_CONTROL_QUIT] = "quit",
  };
  QemuControl *self = (QemuControl *) control;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_task_data (task, uvm_qmp_client_ref (self->qmp), (GDestroyNotify) uvm_qmp_client_unref);
  uvm_qmp_client_execute_async (self->qmp, commands[op], NULL, NULL, 0, cancellable,
                                request_done, task);
}

static void
qemu_balloon_async (UvmControl *control, guint64 guest_bytes, guint64 memory,
                    GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  QemuControl *self = (QemuControl *) control;
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) args = NULL;

  /* qemu's "balloon" takes the size the guest keeps: ours as it is. */
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "value");
  json_builder_add_int_value (b, (gint64) guest_bytes);
  json_builder_end_object (b);
  args = json_builder_get_root (b);
  g_task_set_task_data (task, uvm_qmp_client_ref (self->qmp), (GDestroyNotify) uvm_qmp_client_unref);
  uvm_qmp_client_execute_async (self->qmp, "balloon", args, NULL, 0, cancellable, request_done, task);
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
  .ready_async = qemu_ready_async,
  .request_async = qemu_request_async,
  .balloon_async = qemu_balloon_async,
  .set_request_timeout = qemu_set_request_timeout,
  .read_pending = qemu_read_pending,
  .free = qemu_control_free,
};

static UvmControl *
qemu_control_new (int fd, UvmPlan *plan, int *kept, const UvmControlSink *sink, gpointer vm)
{
  QemuControl *self = g_new0 (QemuControl, 1);

  for (guint i = 0; i < plan->fds->len; i++)   /* qemu inherits all it needs */
    if (kept[i] >= 0)
      close (kept[i]);
  self->parent.klass = &qemu_control_class;
  self->parent.sink = sink;
  self->parent.vm = vm;
  self->qmp = uvm_qmp_client_new (fd);
  uvm_qmp_client_set_event_handler (self->qmp, qemu_on_event, self, NULL);
  uvm_qmp_client_set_closed_handler (self->qmp, qemu_on_closed, self, NULL);
  return &self->parent;
}

gboolean
uvm_control_is_qemu (UvmControl *control)
{
  return control->klass == &qemu_control_class;
}

/* The escape hatch uses the connection directly. */
UvmQmpClient *
uvm_qemu_control_get_qmp (UvmControl *control)
{
  return ((QemuControl *) control)->qmp;
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
  .validate = qemu_validate,
  .build_plan = qemu_build_plan,
  .control_new = qemu_control_new,
};
