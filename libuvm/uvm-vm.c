/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UvmVm: the object and its definition (setters, getters, devices, the
 * gateway relation, event handlers).  The rest of its life is in
 * uvm-vm-validate.c (definition -> description -> plan), uvm-vm-launch.c
 * (plan -> running processes), uvm-vm-supervise.c (state, exit, stop) and
 * uvm-vm-control.c (requests to a running hypervisor). */
#include "uvm-vm-private.h"

#include <string.h>
#include <unistd.h>

enum { SIGNAL_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (UvmVm, uvm_vm, G_TYPE_OBJECT)

/* ---- Definition ---------------------------------------------------- */

static void
update_paths (UvmVm *self)
{
  g_free (self->attached_lease);
  g_free (self->effective_dir);
  g_free (self->control_path);
  g_free (self->log_path);
  self->effective_dir = self->runtime_dir ? g_strdup (self->runtime_dir)
                                          : uvm_rundir_default_path (self->name);
  self->control_path = g_build_filename (self->effective_dir, CONTROL_NAME, NULL);
  self->log_path = g_build_filename (self->effective_dir, LOG_NAME, NULL);
  g_free (self->console_socket_path);
  self->console_socket_path = g_build_filename (self->effective_dir, CONSOLE_SOCKET_NAME, NULL);
  g_clear_pointer (&self->console_path, g_free);
}

gboolean
uvm_vm_is_active (UvmVm *self)
{
  return self->child != NULL;
}

static void
uvm_vm_dispose (GObject *object)
{
  UvmVm *self = UVM_VM (object);

  uvm_vm_drop_gateway (self);
  /* Last reference to a running VM: no leaked process, socket or dir.
   * Every pending operation holds a reference, so nothing waits on us. */
  if (self->control != NULL)
    {
      self->control->klass->free (self->control);
      self->control = NULL;
    }
  /* Detached: it runs on, unsupervised until someone attaches; its files
   * and record stay, the lock goes. */
  if (self->child != NULL && self->lifetime == UVM_VM_LIFETIME_DETACHED)
    uvm_vm_let_go (self);
  if (self->child != NULL)
    {
      uvm_child_watch_free (self->child);
      self->child = NULL;
      uvm_vm_finish_run (self);
    }
  G_OBJECT_CLASS (uvm_vm_parent_class)->dispose (object);
}

static void
uvm_vm_finalize (GObject *object)
{
  UvmVm *self = UVM_VM (object);

  g_free (self->name);
  g_free (self->definition_error);
  g_clear_error (&self->control_error);
  g_free (self->kernel);
  g_free (self->initramfs);
  g_free (self->cmdline);
  g_ptr_array_unref (self->devices);
  g_strfreev (self->extra_args);
  g_free (self->hypervisor_path);
  g_free (self->runtime_dir);
  g_free (self->effective_dir);
  g_free (self->control_path);
  g_free (self->log_path);
  g_free (self->console_path);
  g_free (self->console_socket_path);
  g_free (self->log_dir);
  g_strfreev (self->helper_files);
  g_ptr_array_unref (self->helpers);
  g_clear_pointer (&self->context, g_main_context_unref);
  G_OBJECT_CLASS (uvm_vm_parent_class)->finalize (object);
}

static void
uvm_vm_class_init (UvmVmClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = uvm_vm_dispose;
  object_class->finalize = uvm_vm_finalize;

  /**
   * UvmVm::event:
   * @vm: the VM
   * @event: the #UvmEvent
   *
   * Emitted in the VM's main context for every event, in order.
   */
  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                        0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                        UVM_TYPE_EVENT | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
uvm_vm_init (UvmVm *self)
{
  self->devices = g_ptr_array_new_with_free_func (g_object_unref);
  self->helpers = g_ptr_array_new_with_free_func (uvm_vm_helper_free);
  self->extra_args = g_new0 (char *, 1);
  self->vcpus = 1;
  self->memory = 256 * UVM_MIB;
  self->control_timeout_ms = UVM_VM_DEFAULT_CONTROL_TIMEOUT_MS;
  self->user_uid = UVM_USER_DYNAMIC;
  self->user_gid = UVM_USER_DYNAMIC;
  g_queue_init (&self->waiters);
}

UvmVm *
uvm_vm_new (const char *name, UvmHypervisor hypervisor)
{
  UvmVm *self;

  g_return_val_if_fail (name != NULL, NULL);
  self = g_object_new (UVM_TYPE_VM, NULL);
  self->name = g_strdup (name);
  self->hypervisor = hypervisor;
  update_paths (self);
  return self;
}

const char *
uvm_vm_get_name (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->name;
}

UvmHypervisor
uvm_vm_get_hypervisor (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), UVM_HYPERVISOR_QEMU);
  return vm->hypervisor;
}

void
uvm_vm_set_machine (UvmVm *vm, UvmMachine machine)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->machine = machine;
}

UvmMachine
uvm_vm_get_machine (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), UVM_MACHINE_DEFAULT);
  return vm->machine;
}

void
uvm_vm_set_accel (UvmVm *vm, UvmAccel accel)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->accel = accel;
}

UvmAccel
uvm_vm_get_accel (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), UVM_ACCEL_AUTO);
  return vm->accel;
}

static void
replace_path (char **field, const char *path)
{
  g_free (*field);
  *field = path != NULL ? uvm_absolute_path (path) : NULL;
}

void
uvm_vm_set_kernel (UvmVm *vm, const char *kernel, const char *initramfs, const char *cmdline)
{
  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (kernel != NULL);
  replace_path (&vm->kernel, kernel);
  replace_path (&vm->initramfs, initramfs);
  g_free (vm->cmdline);
  vm->cmdline = g_strdup (cmdline);
}

const char *
uvm_vm_get_kernel (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->kernel;
}

const char *
uvm_vm_get_initramfs (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->initramfs;
}

const char *
uvm_vm_get_cmdline (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->cmdline;
}

const char *
uvm_vm_get_kernel_cmdline (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->cmdline;
}

void
uvm_vm_set_vcpus (UvmVm *vm, guint vcpus)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->vcpus = vcpus;
}

guint
uvm_vm_get_vcpus (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), 0);
  return vm->vcpus;
}

void
uvm_vm_set_memory (UvmVm *vm, guint64 bytes)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->memory = bytes;
}

guint64
uvm_vm_get_memory (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), 0);
  return vm->memory;
}

static const char *
kind_prefix (UvmDeviceKind kind)
{
  switch (kind)
    {
    case UVM_DEVICE_NET: return "net";
    case UVM_DEVICE_DISK: return "disk";
    case UVM_DEVICE_CONSOLE: return "console";
    case UVM_DEVICE_RNG: return "rng";
    case UVM_DEVICE_BALLOON: return "balloon";
    default: return "dev";
    }
}

void
uvm_vm_add_device (UvmVm *vm, UvmDevice *device)
{
  g_autofree char *default_id = NULL;
  guint same_kind = 0;

  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (UVM_IS_DEVICE (device));

  for (guint i = 0; i < vm->devices->len; i++)
    if (uvm_device_get_kind (g_ptr_array_index (vm->devices, i)) == uvm_device_get_kind (device))
      same_kind++;
  default_id = g_strdup_printf ("%s%u", kind_prefix (uvm_device_get_kind (device)), same_kind);
  if (!uvm_device_claim (device, vm->name, vm->hypervisor, default_id))
    {
      g_critical ("uvm_vm_add_device: device '%s' belongs to another VM already; not added to '%s'",
                  uvm_device_get_id (device), vm->name);
      /* Fail closed: a VM missing a device its program meant it to have
       * (a disk, a NIC, a console) must not start as if nothing happened. */
      if (vm->definition_error == NULL)
        vm->definition_error = g_strdup_printf ("devices[%u]: device '%s' belongs to another VM "
                                                "already and was not added",
                                                vm->devices->len, uvm_device_get_id (device));
      g_object_unref (device);
      return;
    }
  g_ptr_array_add (vm->devices, device);
  g_clear_pointer (&vm->console_path, g_free);
}

guint
uvm_vm_get_n_devices (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), 0);
  return vm->devices->len;
}

UvmDevice *
uvm_vm_get_device (UvmVm *vm, guint index)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  if (index >= vm->devices->len)
    return NULL;
  return g_ptr_array_index (vm->devices, index);
}

void
uvm_vm_set_extra_args (UvmVm *vm, const char *const *args)
{
  g_return_if_fail (UVM_IS_VM (vm));
  g_strfreev (vm->extra_args);
  vm->extra_args = args ? g_strdupv ((char **) args) : g_new0 (char *, 1);
}

const char *const *
uvm_vm_get_extra_args (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return (const char *const *) vm->extra_args;
}

void
uvm_vm_set_hypervisor_path (UvmVm *vm, const char *path)
{
  g_return_if_fail (UVM_IS_VM (vm));
  g_free (vm->hypervisor_path);
  vm->hypervisor_path = g_strdup (path);
}

const char *
uvm_vm_get_hypervisor_path (UvmVm *vm)
{
  const UvmBackend *backend;

  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  if (vm->hypervisor_path != NULL)
    return vm->hypervisor_path;
  backend = uvm_backend_lookup (vm->hypervisor, NULL);
  return backend ? backend->default_binary : "";
}

void
uvm_vm_set_runtime_dir (UvmVm *vm, const char *path)
{
  g_return_if_fail (UVM_IS_VM (vm));
  if (uvm_vm_is_active (vm))
    {
      g_critical ("uvm_vm_set_runtime_dir: VM '%s' is running; the runtime directory cannot "
                  "change under it", vm->name);
      return;
    }
  replace_path (&vm->runtime_dir, path);
  update_paths (vm);
}

const char *
uvm_vm_get_runtime_dir (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->effective_dir;
}

void
uvm_vm_set_start_paused (UvmVm *vm, gboolean paused)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->start_paused = !!paused;
}

gboolean
uvm_vm_get_start_paused (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  return vm->start_paused;
}

void
uvm_vm_set_confined (UvmVm *vm, gboolean confined)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->confined = !!confined;
}

gboolean
uvm_vm_get_confined (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  return vm->confined;
}

/* ---- Events ------------------------------------------------------- */

void
uvm_vm_emit_event (UvmVm *self, UvmEvent *event)
{
  g_autoptr(UvmVm) hold G_GNUC_UNUSED = g_object_ref (self);

  g_signal_emit (self, signals[SIGNAL_EVENT], 0, event);
}

/* ---- Lifetime --------------------------------------------------------- */

void
uvm_vm_set_lifetime (UvmVm *vm, UvmVmLifetime lifetime)
{
  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (lifetime == UVM_VM_LIFETIME_ATTACHED || lifetime == UVM_VM_LIFETIME_DETACHED);
  vm->lifetime = lifetime;
}

UvmVmLifetime
uvm_vm_get_lifetime (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), UVM_VM_LIFETIME_ATTACHED);
  return vm->lifetime;
}

/* ---- User of the hypervisor ------------------------------------------ */

void
uvm_vm_set_user (UvmVm *vm, guint32 uid, guint32 gid)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->user_uid = uid;
  /* The special values name a user, not a uid: the gid goes with them.
   * A special gid with a real uid would reach setresgid() as -1, "keep
   * ours" (root's group): the uid's number stands in. */
  if (uid == UVM_USER_DYNAMIC || uid == UVM_USER_CALLER)
    vm->user_gid = uid;
  else if (gid == UVM_USER_DYNAMIC || gid == UVM_USER_CALLER)
    vm->user_gid = uid;
  else
    vm->user_gid = gid;
}

guint32
uvm_vm_get_user (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), UVM_USER_DYNAMIC);
  return vm->user_uid;
}

guint32
uvm_vm_get_group (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), UVM_USER_DYNAMIC);
  return vm->user_gid;
}

gboolean
uvm_vm_get_run_user (UvmVm *vm, guint32 *uid, guint32 *gid)
{
  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  if (uid != NULL)
    *uid = vm->have_creds ? vm->creds.uid : 0;
  if (gid != NULL)
    *gid = vm->have_creds ? vm->creds.gid : 0;
  return vm->have_creds;
}

/* Who this run's processes run as: a dynamic uid (held until the run
 * ends), the caller, or the uid set; computed before any fork. */
/* ---- Gateway (workstation behind gateway) -------------------------- */

/* Forced stop of a workstation whose gateway is gone; nobody waits on it,
 * the task holds the workstation until its hypervisor has been reaped. */
static void
stop_behind_gone_gateway (UvmVm *self, const char *why)
{
  if (!uvm_vm_is_active (self))
    return;
  g_debug ("VM '%s': gateway %s; stopping the workstation", self->name, why);
  uvm_vm_stop_async (self, 0, NULL, NULL, NULL);
}

static void
on_gateway_event (UvmVm *gateway, UvmEvent *event, gpointer user_data)
{
  UvmVm *self = user_data;

  if (uvm_event_get_kind (event) == UVM_EVENT_HYPERVISOR_EXITED)
    stop_behind_gone_gateway (self, "hypervisor exited");
}

static void
gateway_weak_notify (gpointer data, GObject *where_the_object_was)
{
  UvmVm *self = data;

  /* The gateway's dispose has killed its hypervisor (if any) without an
   * exit event; its handlers are gone with it. */
  self->gateway = NULL;
  self->gateway_handler = 0;
  stop_behind_gone_gateway (self, "dropped");
}

void
uvm_vm_drop_gateway (UvmVm *self)
{
  self->gateway_is_self = FALSE;
  if (self->gateway == NULL)
    return;
  g_clear_signal_handler (&self->gateway_handler, self->gateway);
  g_object_weak_unref (G_OBJECT (self->gateway), gateway_weak_notify, self);
  self->gateway = NULL;
}

void
uvm_vm_set_gateway (UvmVm *workstation, UvmVm *gateway)
{
  g_return_if_fail (UVM_IS_VM (workstation));
  g_return_if_fail (gateway == NULL || UVM_IS_VM (gateway));

  if (gateway == workstation->gateway && gateway != NULL)
    return;
  uvm_vm_drop_gateway (workstation);
  if (gateway == NULL)
    return;
  /* Kept, not asserted away: a VM that is its own gateway has none, and
   * starting it would fail open.  Validation refuses it. */
  if (gateway == workstation)
    {
      workstation->gateway_is_self = TRUE;
      return;
    }
  workstation->gateway = gateway;
  g_object_weak_ref (G_OBJECT (gateway), gateway_weak_notify, workstation);
  workstation->gateway_handler = g_signal_connect (gateway, "event",
                                                   G_CALLBACK (on_gateway_event), workstation);
}

UvmVm *
uvm_vm_get_gateway (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->gateway_is_self ? vm : vm->gateway;
}

/* The gateway relation itself, which needs no running VM: nobody is its
 * own gateway, and following gateways never leads back to the start. */
gboolean
uvm_vm_check_gateway_relation (UvmVm *self, GError **error)
{
  g_autoptr(GString) chain = NULL;
  guint hops = 0;

  if (self->gateway_is_self)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "gateway: VM '%s' is set as its own gateway; a workstation's gateway "
                          "must be another VM", self->name);
  chain = g_string_new (NULL);
  g_string_append_printf (chain, "'%s'", self->name);
  for (UvmVm *gw = self->gateway; gw != NULL; gw = gw->gateway_is_self ? NULL : gw->gateway)
    {
      g_string_append_printf (chain, " -> '%s'", gw->name);
      if (gw == self || ++hops > 64)
        return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                              "gateway: the gateways form a cycle (%s, each VM behind the next): "
                              "a workstation needs a gateway that is not, in turn, behind it",
                              chain->str);
    }
  return TRUE;
}

/* Fail closed: a workstation starts only behind a running (or paused)
 * gateway with which it shares an isolated network. */
const char *
uvm_vm_get_control_path (UvmVm *vm)
{
  return vm->control_path;
}

const char *
uvm_vm_get_log_path (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->log_path;
}

const char *
uvm_vm_get_console_path (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  if (vm->console_path == NULL)
    {
      for (guint i = 0; i < vm->devices->len; i++)
        {
          UvmDevice *dev = g_ptr_array_index (vm->devices, i);
          if (uvm_device_get_kind (dev) != UVM_DEVICE_CONSOLE)
            continue;
          if (uvm_device_get_log_path (dev) != NULL)
            vm->console_path = g_strdup (uvm_device_get_log_path (dev));
          else if (vm->log_dir != NULL)
            {
              /* Named after the VM: one log directory serves many VMs. */
              g_autofree char *name = g_strdup_printf ("%s-console.log", vm->name);
              vm->console_path = g_build_filename (vm->log_dir, name, NULL);
            }
          else
            vm->console_path = g_build_filename (vm->effective_dir, CONSOLE_NAME, NULL);
          break;
        }
    }
  return vm->console_path;
}

char *
uvm_vm_describe_device (UvmVm *vm, UvmDevice *device)
{
  guint index = 0;

  g_ptr_array_find (vm->devices, device, &index);
  return g_strdup_printf ("devices[%u] (%s)", index,
                          uvm_device_get_id (device) ? uvm_device_get_id (device) : "?");
}

typedef struct {
  UvmEventFunc func;
  gpointer user_data;
  GDestroyNotify notify;
} EventClosure;

static void
event_closure_marshal (UvmVm *vm, UvmEvent *event, gpointer data)
{
  EventClosure *c = data;

  c->func (vm, event, c->user_data);
}

static void
event_closure_free (gpointer data, GClosure *closure)
{
  EventClosure *c = data;

  if (c->notify)
    c->notify (c->user_data);
  g_free (c);
}

gulong
uvm_vm_connect_event (UvmVm *vm, UvmEventFunc func, gpointer user_data, GDestroyNotify notify)
{
  EventClosure *c;

  g_return_val_if_fail (UVM_IS_VM (vm), 0);
  g_return_val_if_fail (func != NULL, 0);
  c = g_new0 (EventClosure, 1);
  c->func = func;
  c->user_data = user_data;
  c->notify = notify;
  return g_signal_connect_data (vm, "event", G_CALLBACK (event_closure_marshal), c,
                                event_closure_free, 0);
}

void
uvm_vm_disconnect_event (UvmVm *vm, gulong handler_id)
{
  g_return_if_fail (UVM_IS_VM (vm));
  g_signal_handler_disconnect (vm, handler_id);
}

