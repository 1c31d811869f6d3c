/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UvmVm: the definition, and the life of one hypervisor process at a time.
 *
 * Everything after start runs on the GMainContext that was thread-default at
 * start: the child watch (pidfd), the control connection, the timers of a
 * stop, and every event emission. */
#include "uvm-private.h"
#include "backend/uvm-backend.h"
#include "plan/uvm-plan.h"
#include "proc/uvm-child-watch.h"
#include "proto/uvm-http.h"
#include "proto/uvm-qmp.h"
#include "proc/uvm-seccomp.h"
#include "proc/uvm-spawn.h"
#include "proc/uvm-user.h"
#include "util/uvm-rundir.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_NAME "control.sock"
#define LOG_NAME "hypervisor.log"
#define CONSOLE_NAME "console.log"
/* Ready normally comes within tens of milliseconds (the control socket does
 * not wait for the guest); this only catches a hypervisor that hangs. */
#define START_TIMEOUT_MS 30000
#define LOG_TAIL_LINES 8
/* A hypervisor that exits closes its sockets a moment before its exit can
 * be seen through the pidfd: an EOF on the control connection counts as a
 * lost connection only when the process still runs this much later. */
#define CONTROL_EOF_GRACE_MS 500

typedef enum {
  STOP_IDLE,
  STOP_POWER_BUTTON,
  STOP_QUIT,
  STOP_TERM,
  STOP_KILL,
} StopPhase;

struct _UvmVm
{
  GObject parent_instance;

  /* Definition. */
  char *name;
  UvmHypervisor hypervisor;
  UvmMachine machine;
  UvmAccel accel;
  char *kernel;
  char *initramfs;
  char *cmdline;
  guint vcpus;
  guint64 memory;
  GPtrArray *devices;
  GStrv extra_args;
  char *hypervisor_path;
  char *runtime_dir;        /* as set, or NULL */
  gboolean start_paused;
  gboolean confined;        /* empty netns + socket filter for the hypervisor */
  guint32 user_uid;         /* uvm_vm_set_user(): a uid, UVM_USER_DYNAMIC or _CALLER */
  guint32 user_gid;
  UvmVm *gateway;           /* weak: cleared by gateway_weak_notify() */
  gulong gateway_handler;   /* on the gateway's "event" signal */
  gboolean gateway_is_self; /* set as its own gateway: refused by validation */
  char *definition_error;   /* a misuse met by a setter, refused by validation */
  guint control_timeout_ms;

  /* Paths of the runtime directory in effect (recomputed on change). */
  char *effective_dir;
  char *control_path;
  char *log_path;
  char *console_path;

  /* The current (or last) run. */
  UvmVmState state;
  GMainContext *context;
  UvmRundir *rundir;
  UvmChildWatch *child;
  UvmControl *control;
  gboolean console_in_rundir;
  GPtrArray *helpers;               /* Helper *: the run's helper processes */
  GStrv helper_files;               /* their log files, removed with the run */
  UvmUserLease *user_lease;         /* the run's dynamic uid, or NULL */
  UvmSpawnCreds creds;              /* who the run's processes run as */
  gboolean have_creds;              /* creds are those of a started run */

  GTask *start_task;
  GCancellable *start_cancellable;  /* ours: cancels the ready request */
  GError *start_error;              /* why a start is being aborted */
  GSource *start_timeout;
  GSource *start_cancel_source;

  StopPhase stop_phase;
  guint stop_timeout_ms;
  GSource *stop_timer;
  gboolean exit_expected;           /* a stop or kill was asked for */
  gboolean sent_term;               /* we sent the hypervisor SIGTERM */
  gboolean sent_kill;               /* ... or SIGKILL */

  /* The control connection of the run is lost (see sink_closed()). */
  gboolean control_lost;
  GError *control_error;
  GSource *control_grace;           /* EOF seen; is the process exiting? */
  gboolean guest_panicked;          /* this run's guest reported a panic */
  GQueue waiters;                   /* GTask: stop and wait callers */

  gboolean have_exit;
  int exit_code;
  int exit_signal;
};

/* A helper process of a run (passt), watched like the hypervisor. */
typedef struct {
  UvmVm *vm;                /* not a reference: the VM frees its helpers */
  UvmChildWatch *watch;     /* NULL once it exited */
  char *name;               /* the executable as configured ("passt") */
  char *device_id;
  char *network;
} Helper;

static void
helper_free (gpointer data)
{
  Helper *helper = data;

  /* Still running: SIGKILL and reaped here (passt keeps nothing that a
   * graceful exit would save), so no helper outlives its run. */
  uvm_child_watch_free (helper->watch);
  g_free (helper->name);
  g_free (helper->device_id);
  g_free (helper->network);
  g_free (helper);
}

static GSource *
attach_source (GSource *source, GMainContext *context, GSourceFunc func, gpointer data)
{
  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, context);
  return source;
}

enum { SIGNAL_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (UvmVm, uvm_vm, G_TYPE_OBJECT)

static void finish_run (UvmVm *self);
static void stop_helpers (UvmVm *self);
static void drop_gateway (UvmVm *self);
typedef struct _Waiter Waiter;
static void waiter_complete (Waiter *waiter, GError *error);

/* ---- Definition ---------------------------------------------------- */

static void
update_paths (UvmVm *self)
{
  g_free (self->effective_dir);
  g_free (self->control_path);
  g_free (self->log_path);
  self->effective_dir = self->runtime_dir ? g_strdup (self->runtime_dir)
                                          : uvm_rundir_default_path (self->name);
  self->control_path = g_build_filename (self->effective_dir, CONTROL_NAME, NULL);
  self->log_path = g_build_filename (self->effective_dir, LOG_NAME, NULL);
  g_clear_pointer (&self->console_path, g_free);
}

static gboolean
is_active (UvmVm *self)
{
  return self->child != NULL;
}

static void
uvm_vm_dispose (GObject *object)
{
  UvmVm *self = UVM_VM (object);

  drop_gateway (self);
  /* Last reference to a running VM: no leaked process, socket or dir.
   * Every pending operation holds a reference, so nothing waits on us. */
  if (self->control != NULL)
    {
      self->control->klass->free (self->control);
      self->control = NULL;
    }
  if (self->child != NULL)
    {
      uvm_child_watch_free (self->child);
      self->child = NULL;
      finish_run (self);
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
  self->helpers = g_ptr_array_new_with_free_func (helper_free);
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
  if (is_active (vm))
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
static gboolean
prepare_user (UvmVm *self, GError **error)
{
  uid_t uid = self->user_uid;
  gid_t gid = self->user_gid;

  g_clear_pointer (&self->user_lease, uvm_user_lease_release);
  self->have_creds = FALSE;
  if (self->user_uid == UVM_USER_CALLER ||
      (self->user_uid == UVM_USER_DYNAMIC && !uvm_user_can_change_ids ()))
    {
      uid = getuid ();
      gid = getgid ();
    }
  else if (self->user_uid == UVM_USER_DYNAMIC)
    {
      self->user_lease = uvm_user_lease_acquire (self->name, error);
      if (self->user_lease == NULL)
        return FALSE;
      uid = gid = uvm_user_lease_get_uid (self->user_lease);
    }
  if (!uvm_spawn_creds_init (&self->creds, uid, gid, error))
    {
      g_clear_pointer (&self->user_lease, uvm_user_lease_release);
      return FALSE;
    }
  self->have_creds = TRUE;
  return TRUE;
}

/* ---- Gateway (workstation behind gateway) -------------------------- */

/* Forced stop of a workstation whose gateway is gone; nobody waits on it,
 * the task holds the workstation until its hypervisor has been reaped. */
static void
stop_behind_gone_gateway (UvmVm *self, const char *why)
{
  if (!is_active (self))
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

static void
drop_gateway (UvmVm *self)
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
  drop_gateway (workstation);
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
static gboolean
check_gateway_relation (UvmVm *self, GError **error)
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
static gboolean
check_gateway (UvmVm *self, GError **error)
{
  UvmVm *gw = self->gateway;
  gboolean has_link = FALSE;
  UvmVmState state;

  if (gw == NULL)
    return TRUE;
  state = uvm_vm_get_state (gw);
  if (!is_active (gw) || (state != UVM_VM_STATE_RUNNING && state != UVM_VM_STATE_PAUSED))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "workstation '%s': its gateway '%s' is %s, not running; start the "
                          "gateway first", self->name, gw->name, uvm_vm_state_to_string (state));
  /* Every NIC of the workstation must be on an isolated network its
   * gateway is on: the gateway is its only way out, so a second NIC (an
   * uplink, a tap, another link) would be a leak. */
  for (guint i = 0; i < self->devices->len; i++)
    {
      UvmDevice *dev = g_ptr_array_index (self->devices, i);
      UvmNetwork *net = uvm_device_get_network (dev);
      gboolean shared = FALSE;

      if (net == NULL)
        continue;
      for (guint j = 0; j < gw->devices->len && uvm_network_get_kind (net) == UVM_NETWORK_ISOLATED; j++)
        if (uvm_device_get_network (g_ptr_array_index (gw->devices, j)) == net)
          shared = TRUE;
      if (!shared)
        {
          g_autofree char *field = uvm_vm_describe_device (self, dev);
          return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                                "workstation '%s': %s is on network '%s', which is not an isolated "
                                "network shared with its gateway '%s'; a workstation reaches the "
                                "network only through its gateway", self->name, field,
                                uvm_network_get_name (net), gw->name);
        }
      has_link = TRUE;
    }
  if (!has_link)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "workstation '%s' shares no isolated network with its gateway '%s'",
                          self->name, gw->name);
  return TRUE;
}

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
          vm->console_path = uvm_device_get_log_path (dev)
                               ? g_strdup (uvm_device_get_log_path (dev))
                               : g_build_filename (vm->effective_dir, CONSOLE_NAME, NULL);
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

/* ---- Validation and plan ------------------------------------------- */

/* What confinement rules out: a network stack inside the hypervisor that
 * needs host sockets: qemu's user-mode networking (slirp).  A passt uplink
 * is fine: passt, not confined, holds the host sockets and qemu only its
 * end of a socket pair; so is a tap the library makes. */
static gboolean
check_confinement (UvmVm *vm, GError **error)
{
  if (!vm->confined || vm->hypervisor != UVM_HYPERVISOR_QEMU)
    return TRUE;
  for (guint i = 0; i < vm->devices->len; i++)
    {
      UvmDevice *dev = g_ptr_array_index (vm->devices, i);
      UvmNetwork *net;
      g_autofree char *field = NULL;

      if (uvm_device_get_kind (dev) != UVM_DEVICE_NET)
        continue;
      net = uvm_device_get_network (dev);
      if (uvm_network_get_kind (net) != UVM_NETWORK_UPLINK ||
          uvm_network_effective_uplink_mode (net, vm->hypervisor) != UVM_UPLINK_USER)
        continue;
      field = uvm_vm_describe_device (vm, dev);
      return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                            "%s: uplink '%s' is qemu user-mode networking, which needs host "
                            "sockets; a confined VM has none (empty network namespace, no "
                            "inet sockets). Reach the outside through a gateway VM on an "
                            "isolated network, or do not confine this VM",
                            field, uvm_network_get_name (net));
    }
  return TRUE;
}

static const UvmBackend *
check_definition (UvmVm *vm, GError **error)
{
  const UvmBackend *backend;

  if (vm->definition_error != NULL)
    {
      uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "%s", vm->definition_error);
      return NULL;
    }
  if (!check_gateway_relation (vm, error))
    return NULL;
  backend = uvm_backend_lookup (vm->hypervisor, error);
  if (backend == NULL || !uvm_backend_validate_common (vm, backend, error) ||
      !backend->validate (vm, error) || !check_confinement (vm, error))
    return NULL;
  return backend;
}

static char *
resolve_binary (UvmVm *vm, GError **error)
{
  const char *bin = uvm_vm_get_hypervisor_path (vm);
  char *path;

  if (strchr (bin, '/') != NULL)
    {
      if (access (bin, X_OK) == 0 && g_file_test (bin, G_FILE_TEST_IS_REGULAR))
        return uvm_absolute_path (bin);
      uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                     "hypervisor-path: '%s' is not an executable file", bin);
      return NULL;
    }
  path = g_find_program_in_path (bin);
  if (path == NULL)
    uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                   "hypervisor-path: '%s' was not found in PATH (is the hypervisor installed?)",
                   bin);
  return path;
}

/* The executables of @plan's helpers, looked up in PATH like the
 * hypervisor's, before anything is created. */
static GStrv
resolve_helpers (UvmVm *vm, const UvmPlan *plan, GError **error)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < plan->helpers->len; i++)
    {
      const UvmPlanHelper *helper = g_ptr_array_index (plan->helpers, i);
      char *path = g_find_program_in_path (helper->binary);

      if (path == NULL)
        {
          g_autofree char *field = uvm_vm_describe_device (vm, helper->device);
          uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                         "%s: the uplink '%s' runs '%s', which was not found in PATH (install "
                         "%s, or choose another uplink mode)", field,
                         uvm_network_get_name (uvm_device_get_network (helper->device)),
                         helper->binary, helper->binary);
          return NULL;
        }
      g_ptr_array_add (paths, path);
    }
  g_ptr_array_add (paths, NULL);
  return (GStrv) g_ptr_array_free (g_steal_pointer (&paths), FALSE);
}

static UvmPlan *build_plan (UvmVm *vm, const UvmBackend **backend_out, GError **error);

gboolean
uvm_vm_validate (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = NULL;
  g_autofree char *bin = NULL;
  g_auto(GStrv) helpers = NULL;

  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  plan = build_plan (vm, NULL, error);
  if (plan == NULL)
    return FALSE;
  bin = resolve_binary (vm, error);
  if (bin != NULL)
    helpers = resolve_helpers (vm, plan, error);
  return helpers != NULL;
}

static UvmPlan *
build_plan (UvmVm *vm, const UvmBackend **backend_out, GError **error)
{
  const UvmBackend *backend = check_definition (vm, error);
  UvmPlan *plan;

  if (backend == NULL)
    return NULL;
  plan = backend->build_plan (vm, error);
  if (plan == NULL)
    return NULL;
  plan->runtime_dir = g_strdup (vm->effective_dir);
  plan->control_path = g_strdup (vm->control_path);
  plan->log_path = g_strdup (vm->log_path);
  plan->confined = vm->confined;
  plan->uid = vm->user_uid;
  plan->gid = vm->user_gid;
  if (backend_out != NULL)
    *backend_out = backend;
  return plan;
}

char *
uvm_vm_get_command_line (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = NULL;

  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  plan = build_plan (vm, NULL, error);
  return plan ? uvm_plan_to_command_line (plan) : NULL;
}

char *
uvm_vm_get_launch_plan (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = NULL;

  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  plan = build_plan (vm, NULL, error);
  return plan ? uvm_plan_to_script (plan) : NULL;
}

/* ---- Events and state ---------------------------------------------- */

static void
emit_event (UvmVm *self, UvmEvent *event)
{
  g_autoptr(UvmVm) hold G_GNUC_UNUSED = g_object_ref (self);

  g_signal_emit (self, signals[SIGNAL_EVENT], 0, event);
}

static void
set_state (UvmVm *self, UvmVmState state)
{
  UvmVmState previous = self->state;
  g_autoptr(UvmEvent) event = NULL;

  if (state == previous)
    return;
  self->state = state;
  g_debug ("VM '%s': %s -> %s", self->name, uvm_vm_state_to_string (previous),
           uvm_vm_state_to_string (state));
  event = uvm_event_new_state_changed (state, previous);
  emit_event (self, event);
}

static void
sink_event (gpointer vm, UvmEvent *event)
{
  UvmVm *self = vm;

  if (uvm_event_get_kind (event) == UVM_EVENT_GUEST_PANIC)
    self->guest_panicked = TRUE;
  uvm_event_set_state (event, self->state);
  emit_event (self, event);
}

static void
sink_state (gpointer vm, UvmVmState state)
{
  UvmVm *self = vm;

  /* Only the guest's run state is the hypervisor's to tell; starting and
   * stopping are ours. */
  if (self->state == UVM_VM_STATE_RUNNING || self->state == UVM_VM_STATE_PAUSED)
    set_state (self, state);
}

static void stop_advance (UvmVm *self);

static gboolean
control_usable (UvmVm *self)
{
  return self->control != NULL && !self->control_lost;
}

/* The hypervisor runs on, but no request can reach it: say so at once
 * (event, uvm_vm_get_control_lost()), and let a stop under way go straight
 * to signals. */
static void
declare_control_lost (UvmVm *self, const GError *error)
{
  g_autoptr(JsonObject) data = json_object_new ();
  g_autoptr(UvmEvent) event = NULL;

  uvm_source_clear (&self->control_grace);
  if (self->control_lost || self->child == NULL)
    return;
  self->control_lost = TRUE;
  g_clear_error (&self->control_error);
  self->control_error = g_error_new (UVM_ERROR, UVM_ERROR_CONTROL_LOST,
                                     "VM '%s': the control connection to its hypervisor is lost "
                                     "(%s); only a stop by signals or a kill can reach it",
                                     self->name, error->message);
  g_debug ("%s", self->control_error->message);
  json_object_set_string_member (data, "error", error->message);
  event = uvm_event_new_hypervisor (UVM_EVENT_CONTROL_LOST, self->state, "control-lost", data,
                                    NULL);
  emit_event (self, event);
  if (self->child != NULL && self->state == UVM_VM_STATE_STOPPING &&
      self->stop_phase < STOP_TERM)
    {
      uvm_source_clear (&self->stop_timer);
      self->stop_phase = STOP_QUIT;   /* the next step is SIGTERM */
      stop_advance (self);
    }
}

static gboolean
on_control_grace (gpointer user_data)
{
  UvmVm *self = user_data;
  g_autoptr(GError) error = g_error_new_literal (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                                                 "the hypervisor closed the control connection "
                                                 "but kept running");

  g_clear_pointer (&self->control_grace, g_source_unref);
  declare_control_lost (self, error);
  return G_SOURCE_REMOVE;
}

/* The control connection ended, broke or timed out (@error NULL for a
 * plain EOF), seen by the connection itself or by a request that failed.
 * During a start the start fails on its own; after a run nothing is left
 * to lose. */
static void
control_failed (UvmVm *self, const GError *error)
{
  if (self->child == NULL || self->start_task != NULL || self->control_lost ||
      self->control_grace != NULL)
    return;
  if (error != NULL && !g_error_matches (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED))
    {
      declare_control_lost (self, error);
      return;
    }
  /* EOF or a broken pipe: the hypervisor may be exiting, as after `quit`
   * or a guest power-off; its exit is then the news.  A quit in flight
   * makes an EOF the expected answer. */
  if (uvm_child_watch_has_exited (self->child) ||
      (self->state == UVM_VM_STATE_STOPPING && self->stop_phase == STOP_QUIT))
    return;
  self->control_grace = attach_source (g_timeout_source_new (CONTROL_EOF_GRACE_MS), self->context,
                                       on_control_grace, self);
}

static void
sink_closed (gpointer vm, const GError *error)
{
  UvmVm *self = vm;

  g_debug ("VM '%s': control connection closed%s%s", self->name, error ? ": " : "",
           error ? error->message : "");
  control_failed (self, error);
}

/* A request of ours failed: errors that mean the connection is gone or out
 * of step (not an error answer of the hypervisor, not a cancellation) make
 * the control connection lost. */
static void
note_request_error (UvmVm *self, const GError *error)
{
  if (error->domain == UVM_ERROR &&
      (error->code == UVM_ERROR_HYPERVISOR_DIED || error->code == UVM_ERROR_PROTOCOL ||
       error->code == UVM_ERROR_TIMEOUT))
    control_failed (self, error);
}

static const UvmControlSink control_sink = {
  .event = sink_event,
  .state = sink_state,
  .closed = sink_closed,
};

UvmVmState
uvm_vm_get_state (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), UVM_VM_STATE_DEFINED);
  return vm->state;
}

int
uvm_vm_get_pid (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), 0);
  return vm->child ? uvm_child_watch_get_pid (vm->child) : 0;
}

void
uvm_vm_set_control_timeout (UvmVm *vm, guint timeout_ms)
{
  g_return_if_fail (UVM_IS_VM (vm));
  vm->control_timeout_ms = timeout_ms;
}

guint
uvm_vm_get_control_timeout (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), 0);
  return vm->control_timeout_ms;
}

gboolean
uvm_vm_get_control_lost (UvmVm *vm, GError **error)
{
  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  if (!vm->control_lost)
    return FALSE;
  if (error != NULL)
    g_propagate_error (error, g_error_copy (vm->control_error));
  return TRUE;
}

gboolean
uvm_vm_get_exit_status (UvmVm *vm, int *exit_code, int *exit_signal)
{
  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  if (!vm->have_exit)
    return FALSE;
  if (exit_code)
    *exit_code = vm->exit_code;
  if (exit_signal)
    *exit_signal = vm->exit_signal;
  return TRUE;
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

/* ---- Helper processes ---------------------------------------------- */

/* A helper exited on its own while the run goes on (its exits at the end
 * of a run are ours, and unwatched): the VM keeps running without that
 * uplink, and the caller hears of it. */
static void
on_helper_exit (int code, int sig, gpointer user_data)
{
  Helper *helper = user_data;
  UvmVm *self = helper->vm;
  g_autoptr(JsonObject) data = json_object_new ();
  g_autoptr(UvmEvent) event = NULL;

  g_debug ("VM '%s': %s of uplink '%s' exited (code %d, signal %d)", self->name, helper->name,
           helper->network, code, sig);
  uvm_child_watch_free (helper->watch);   /* reaped: only closes the pidfd */
  helper->watch = NULL;
  /* passt ends when qemu's end of the pair closes: when the hypervisor
   * is gone already, its exit (about to be reported) is the news. */
  if (self->child == NULL || uvm_child_watch_has_exited (self->child))
    return;
  json_object_set_string_member (data, "helper", helper->name);
  json_object_set_string_member (data, "network", helper->network);
  json_object_set_string_member (data, "device", helper->device_id);
  json_object_set_int_member (data, "exit-code", code);
  json_object_set_int_member (data, "exit-signal", sig);
  event = uvm_event_new_hypervisor (UVM_EVENT_HYPERVISOR_EVENT, self->state,
                                    "uplink-helper-exited", data, NULL);
  emit_event (self, event);
}

/* Ends and reaps every helper of the run (see helper_free()). */
static void
stop_helpers (UvmVm *self)
{
  g_ptr_array_set_size (self->helpers, 0);
}

/* ---- The end of a run ---------------------------------------------- */

/* The files of a run in the runtime dir: removed when stale at start and
 * when the run ends.  Free with g_strfreev(). */
static GStrv
run_files (UvmVm *self)
{
  GStrvBuilder *files = g_strv_builder_new ();
  GStrv out;

  g_strv_builder_add_many (files, CONTROL_NAME, LOG_NAME, NULL);
  if (self->console_in_rundir)
    g_strv_builder_add (files, CONSOLE_NAME);
  if (self->helper_files != NULL)
    g_strv_builder_addv (files, (const char **) self->helper_files);
  out = g_strv_builder_end (files);
  g_strv_builder_unref (files);
  return out;
}


/* Releases what a run holds once its process is gone. */
static void
finish_run (UvmVm *self)
{
  uvm_source_clear (&self->start_timeout);
  uvm_source_clear (&self->start_cancel_source);
  uvm_source_clear (&self->stop_timer);
  uvm_source_clear (&self->control_grace);
  g_clear_object (&self->start_cancellable);
  stop_helpers (self);
  {
    g_auto(GStrv) files = run_files (self);
    uvm_rundir_release (self->rundir, (const char *const *) files);
  }
  self->rundir = NULL;
  g_clear_pointer (&self->user_lease, uvm_user_lease_release);   /* its processes are gone */
  /* The hypervisor's tap fds are closed (it was reaped, or never ran) and
   * so are ours: the taps are gone; the last member removes the bridge. */
  for (guint i = 0; i < self->devices->len; i++)
    {
      UvmNetwork *net = uvm_device_get_network (g_ptr_array_index (self->devices, i));
      if (net != NULL)
        uvm_network_release_lib_tap (net, g_ptr_array_index (self->devices, i));
    }
  self->stop_phase = STOP_IDLE;
}

/* Whether the exit was caused by a signal libuvm sent: such an exit is
 * never the hypervisor's own doing and never blamed on it. */
static gboolean
exit_by_our_signal (UvmVm *self, int sig)
{
  return (sig == SIGKILL && self->sent_kill) || (sig == SIGTERM && self->sent_term);
}

/* The end of a run that a stop or kill asked for: it exited with code 0
 * (quit, power-off), of a signal we sent, or with a code of its own after
 * our SIGTERM.  Anything else is the hypervisor's own exit, a crash,
 * whatever request was in flight. */
static gboolean
exit_as_asked (UvmVm *self, int code, int sig)
{
  if (sig != 0)
    return exit_by_our_signal (self, sig);
  return code == 0 || self->sent_term;
}

/* The error of a start that ended with the hypervisor's exit: the root
 * cause first (what the hypervisor answered, or how it exited), then its
 * last log lines.  @cause (taken, may be NULL) is why libuvm aborted the
 * start, if it did. */
static GError *
start_failure_error (UvmVm *self, GError *cause, int code, int sig, const char *tail)
{
  const char *hv = uvm_backend_lookup (self->hypervisor, NULL)->name;
  g_autofree char *how = NULL;
  g_autofree char *log = tail ? g_strdup_printf ("; its log ends with:\n%s", tail)
                              : g_strdup (" (its log is empty)");
  GError *error;

  if (cause != NULL && cause->domain == G_IO_ERROR)
    return cause;   /* cancelled by the caller: that is the whole story */
  if (!exit_by_our_signal (self, sig))
    how = sig ? g_strdup_printf ("was killed by signal %d", sig)
              : g_strdup_printf ("exited with code %d", code);

  if (cause == NULL || g_error_matches (cause, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED))
    {
      /* The hypervisor went away by itself (an EOF on its control socket
       * is the first sign of that): its exit is the news. */
      if (how != NULL)
        error = g_error_new (UVM_ERROR, UVM_ERROR_START_FAILED, "%s '%s' %s during start%s",
                             hv, self->name, how, log);
      else
        error = g_error_new (UVM_ERROR, UVM_ERROR_START_FAILED,
                             "%s '%s' closed its control connection during start (%s) and was "
                             "then stopped by libuvm%s", hv, self->name, cause->message, log);
    }
  else
    {
      /* What the hypervisor answered, or why we gave up on it; its own
       * code (HYPERVISOR, PROTOCOL, TIMEOUT, ...) stays. */
      error = g_error_new (cause->domain, cause->code, "%s '%s' failed to start: %s%s%s%s", hv,
                           self->name, cause->message, how ? "; it then " : "", how ? how : "",
                           log);
    }
  g_clear_error (&cause);
  return error;
}

static void
on_child_exit (int code, int sig, gpointer user_data)
{
  UvmVm *self = user_data;
  g_autoptr(UvmVm) hold G_GNUC_UNUSED = g_object_ref (self);
  g_autoptr(UvmEvent) event = NULL;
  g_autofree char *tail = NULL;
  GTask *start_task;
  UvmVmState final;
  Waiter *waiter;

  g_debug ("VM '%s': hypervisor exited (code %d, signal %d)", self->name, code, sig);
  self->have_exit = TRUE;
  self->exit_code = code;
  self->exit_signal = sig;
  uvm_child_watch_free (self->child);   /* reaped: only closes the pidfd */
  self->child = NULL;
  if (self->control != NULL)
    {
      /* The pidfd may fire before the last events were read (a panic, a
       * guest shutdown): hear them before reporting the exit. */
      self->control->klass->read_pending (self->control);
      self->control->klass->free (self->control);
      self->control = NULL;
    }
  if (self->start_task != NULL)
    tail = uvm_read_file_tail (self->log_path, LOG_TAIL_LINES);
  finish_run (self);

  start_task = g_steal_pointer (&self->start_task);
  if (start_task != NULL)
    final = UVM_VM_STATE_CRASHED;
  else if (self->exit_expected)
    final = exit_as_asked (self, code, sig) ? UVM_VM_STATE_STOPPED : UVM_VM_STATE_CRASHED;
  else if (sig == 0 && code == 0 && !self->guest_panicked)
    final = UVM_VM_STATE_STOPPED;   /* the guest powered off */
  else
    final = UVM_VM_STATE_CRASHED;

  event = uvm_event_new_exited (self->state, code, sig);
  emit_event (self, event);
  set_state (self, final);

  if (start_task != NULL)
    {
      g_task_return_error (start_task, start_failure_error (self, g_steal_pointer (&self->start_error),
                                                            code, sig, tail));
      g_object_unref (start_task);
    }
  while ((waiter = g_queue_pop_head (&self->waiters)) != NULL)
    waiter_complete (waiter, NULL);
}

/* ---- Start --------------------------------------------------------- */

static void
abort_start (UvmVm *self, GError *error)
{
  if (self->start_error == NULL)
    self->start_error = error;
  else
    g_clear_error (&error);
  g_cancellable_cancel (self->start_cancellable);
  /* The exit handler completes the start: nothing is reported before the
   * process is reaped and its files are gone. */
  if (self->child != NULL)
    {
      self->sent_kill = TRUE;
      uvm_child_watch_signal (self->child, SIGKILL);
    }
}

static gboolean
on_start_grace (gpointer user_data)
{
  UvmVm *self = user_data;

  g_clear_pointer (&self->start_timeout, g_source_unref);
  abort_start (self, NULL);   /* the cause is recorded already */
  return G_SOURCE_REMOVE;
}

static void
on_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(UvmVm) self = user_data;
  GError *error = NULL;
  gssize state = g_task_propagate_int (G_TASK (result), &error);
  GTask *task;

  if (self->start_task == NULL || self->start_error != NULL)
    {
      g_clear_error (&error);   /* aborted already; the exit handler reports */
      return;
    }
  if (state < 0 && g_error_matches (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED) &&
      self->child != NULL && !uvm_child_watch_has_exited (self->child))
    {
      /* It closed its end of the control socket: most likely it is
       * exiting, and its own exit status and last log lines are the root
       * cause.  A moment for that before we end it. */
      self->start_error = error;
      g_cancellable_cancel (self->start_cancellable);
      uvm_source_clear (&self->start_timeout);
      self->start_timeout = attach_source (g_timeout_source_new (CONTROL_EOF_GRACE_MS),
                                           self->context, on_start_grace, self);
      return;
    }
  if (state < 0)
    {
      abort_start (self, error);
      return;
    }
  uvm_source_clear (&self->start_timeout);
  uvm_source_clear (&self->start_cancel_source);
  g_clear_object (&self->start_cancellable);
  task = g_steal_pointer (&self->start_task);
  set_state (self, (UvmVmState) state);
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static gboolean
on_start_timeout (gpointer user_data)
{
  UvmVm *self = user_data;

  g_clear_pointer (&self->start_timeout, g_source_unref);
  abort_start (self, g_error_new (UVM_ERROR, UVM_ERROR_TIMEOUT,
                                  "it did not become ready within %d ms", START_TIMEOUT_MS));
  return G_SOURCE_REMOVE;
}

static gboolean
on_start_cancelled (GCancellable *cancellable, gpointer user_data)
{
  UvmVm *self = user_data;

  g_clear_pointer (&self->start_cancel_source, g_source_unref);
  abort_start (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "VM '%s': start cancelled",
                                  self->name));
  return G_SOURCE_REMOVE;
}


static int
bind_control_socket (const char *path, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "control socket: %s", g_strerror (errno));
      return -1;
    }
  unlink (path);
  /* Bound and listening before the hypervisor exists: our connection
   * queues in the backlog, so there is no socket to wait or poll for. */
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 || chmod (path, 0600) != 0 ||
      listen (fd, 16) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "control socket '%s': %s", path,
                     g_strerror (errno));
      uvm_close_fd (&fd);
    }
  return fd;
}

static int
connect_control_socket (const char *path, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "connecting to '%s': %s", path,
                     g_strerror (errno));
      uvm_close_fd (&fd);
    }
  return fd;
}

static int
open_log (const char *path, GError **error)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0)
    uvm_set_error (error, UVM_ERROR_START_FAILED, "opening '%s': %s", path, g_strerror (errno));
  return fd;
}

/* Spawns @helper (at @path) with its fds: stdin /dev/null (@null_fd), its
 * log as stdout and stderr, and the helper's ends of the socket pairs
 * (@helper_ends: device -> fd).  Not confined, but hardened like the
 * hypervisor (uvm_spawn()), and watched. */
static gboolean
spawn_helper (UvmVm *self, const UvmPlanHelper *helper, const char *path, char *const *envp,
              int null_fd, GHashTable *helper_ends, GError **error)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, TRUE, sizeof (UvmSpawnFd));
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  int log_fd = open_log (helper->log_path, error);
  int pidfd = -1;
  GPid pid = 0;
  gboolean ok;
  Helper *h;

  if (log_fd < 0)
    return FALSE;
  g_array_append_vals (fds, (UvmSpawnFd[]) { { null_fd, 0 }, { log_fd, 1 }, { log_fd, 2 } }, 3);
  for (guint i = 0; i < helper->fds->len; i++)
    {
      const UvmPlanFd *pfd = g_ptr_array_index (helper->fds, i);
      UvmSpawnFd sfd = { GPOINTER_TO_INT (g_hash_table_lookup (helper_ends, pfd->device)) - 1,
                         pfd->target };

      /* Only socket pairs reach helpers: their ends were made with the
       * hypervisor's. */
      if (pfd->kind != UVM_PLAN_FD_HELPER_STREAM || sfd.source < 0)
        {
          close (log_fd);
          return uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: no socket pair for %s",
                                helper->what, pfd->what);
        }
      g_array_append_val (fds, sfd);
    }
  g_ptr_array_add (argv, (gpointer) path);
  for (guint i = 0; i < helper->args->len; i++)
    g_ptr_array_add (argv, g_ptr_array_index (helper->args, i));
  g_ptr_array_add (argv, NULL);

  {
    UvmSpawnRequest req = { path, (char *const *) argv->pdata, envp,
                            (const UvmSpawnFd *) fds->data, fds->len, .creds = &self->creds };
    ok = uvm_spawn (&req, &pid, &pidfd, error);
  }
  close (log_fd);
  if (!ok)
    {
      g_prefix_error (error, "%s: ", helper->what);
      return FALSE;
    }
  h = g_new0 (Helper, 1);
  h->vm = self;
  h->name = g_strdup (helper->binary);
  h->device_id = g_strdup (uvm_device_get_id (helper->device));
  h->network = g_strdup (uvm_network_get_name (uvm_device_get_network (helper->device)));
  h->watch = uvm_child_watch_new (pid, pidfd, self->context, on_helper_exit, h, error);
  if (h->watch == NULL)
    {
      helper_free (h);
      g_prefix_error (error, "%s: ", helper->what);
      return FALSE;
    }
  g_ptr_array_add (self->helpers, h);
  return TRUE;
}

/* Opens the file of @pfd (UVM_PLAN_FD_FILE) for the hypervisor.  What it
 * reopens through /proc/self/fd must be open to the VM user by the file's
 * mode: checked here, so that the error names the file. */
static int
open_plan_file (UvmVm *self, const UvmPlanFd *pfd, GError **error)
{
  int access_mode = (pfd->flags & O_ACCMODE) == O_RDONLY ? R_OK
                    : (pfd->flags & O_ACCMODE) == O_WRONLY ? W_OK : (R_OK | W_OK);
  gboolean created = FALSE;
  struct stat st;
  int fd = -1;

  if (pfd->flags & O_CREAT)
    {
      fd = open (pfd->path, pfd->flags | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
      created = fd >= 0;
    }
  if (fd < 0)
    fd = open (pfd->path, (pfd->flags & ~O_CREAT) | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: cannot open '%s': %s", pfd->what,
                     pfd->path, g_strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: fstat: %s", pfd->what,
                     g_strerror (errno));
      uvm_close_fd (&fd);
      return -1;
    }
  /* A file the hypervisor reopens (cloud-hypervisor's serial file, a
   * created image) belongs to the VM user when we made it, now or for an
   * earlier run of a dynamic user (whose uid may differ this time); a file
   * of anyone else is left as it is. */
  if (pfd->use == UVM_PLAN_FILE_REOPENED && self->creds.change_ids &&
      st.st_uid != self->creds.uid &&
      (created || (st.st_uid >= UVM_USER_RANGE_FIRST &&
                   st.st_uid - UVM_USER_RANGE_FIRST < UVM_USER_RANGE_SIZE)))
    {
      if (fchown (fd, self->creds.uid, self->creds.gid) != 0)
        {
          uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: chown: %s", pfd->what,
                         g_strerror (errno));
          uvm_close_fd (&fd);
          return -1;
        }
      st.st_uid = self->creds.uid;
    }
  if (pfd->use == UVM_PLAN_FILE_REOPENED && !uvm_user_may_access (&st, &self->creds, access_mode))
    {
      uvm_set_error (error, UVM_ERROR_PERMISSION,
                     "%s: the hypervisor reopens '%s' through /proc/self/fd as uid %u gid %u, "
                     "and the file's mode %04o (owner %u, group %u) does not let that user %s "
                     "it; make it %s for the VM user, or choose another user "
                     "(uvm_vm_set_user())", pfd->what, pfd->path, (unsigned) self->creds.uid,
                     (unsigned) self->creds.gid, (unsigned) (st.st_mode & 07777),
                     (unsigned) st.st_uid, (unsigned) st.st_gid,
                     access_mode == R_OK ? "read" : access_mode == W_OK ? "write" : "read and write",
                     access_mode == R_OK ? "readable" : access_mode == W_OK ? "writable"
                     : "readable and writable");
      uvm_close_fd (&fd);
      return -1;
    }
  return fd;
}

static void
close_fd_value (gpointer value)
{
  close (GPOINTER_TO_INT (value) - 1);
}

/* Opens every fd the plan lists plus stdio, spawns the helpers, then the
 * hypervisor, and connects.  On failure everything opened here is closed
 * again and every helper ended. */
static gboolean
spawn_plan (UvmVm *self, UvmPlan *plan, const char *binary, char *const *helper_paths,
            const UvmSeccompProgram *filter, int *control_fd, int *kept, GError **error)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, TRUE, sizeof (UvmSpawnFd));
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_auto(GStrv) envp = g_get_environ ();
  /* The helpers' ends of the socket pairs, by device (fd + 1: 0 is none). */
  g_autoptr(GHashTable) helper_ends = g_hash_table_new_full (NULL, NULL, NULL, close_fd_value);
  int null_fd = -1, log_fd = -1, pidfd = -1;
  gboolean ok = FALSE;
  GPid pid = 0;

  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  log_fd = open (self->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (null_fd < 0 || log_fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "opening '%s': %s",
                     null_fd < 0 ? "/dev/null" : self->log_path, g_strerror (errno));
      goto out;
    }
  g_array_append_vals (fds, (UvmSpawnFd[]) { { null_fd, 0 }, { log_fd, 1 }, { log_fd, 2 } }, 3);
  /* Images to create exist before the plan's files are opened. */
  for (guint i = 0; i < self->devices->len; i++)
    {
      UvmDevice *dev = g_ptr_array_index (self->devices, i);
      if (uvm_device_get_kind (dev) == UVM_DEVICE_DISK &&
          !uvm_storage_prepare (uvm_device_get_storage (dev),
                                self->creds.change_ids ? self->creds.uid : (uid_t) -1,
                                self->creds.gid, error))
        goto out;
    }

  for (guint i = 0; i < plan->fds->len; i++)
    {
      const UvmPlanFd *pfd = g_ptr_array_index (plan->fds, i);
      UvmSpawnFd sfd = { -1, pfd->target };
      int pipe_fds[2];

      switch (pfd->kind)
        {
        case UVM_PLAN_FD_CONTROL_SOCKET:
          sfd.source = bind_control_socket (self->control_path, error);
          break;
        case UVM_PLAN_FD_NET_LINK:
          sfd.source = uvm_network_open_link_fd (uvm_device_get_network (pfd->device),
                                                 pfd->device, error);
          break;
        case UVM_PLAN_FD_EVENT_PIPE:
          if (pipe2 (pipe_fds, O_CLOEXEC) != 0)
            {
              uvm_set_error (error, UVM_ERROR_START_FAILED, "event pipe: %s", g_strerror (errno));
              break;
            }
          sfd.source = pipe_fds[1];
          kept[i] = pipe_fds[0];
          break;
        case UVM_PLAN_FD_TAP:
          sfd.source = uvm_network_open_tap_fd (uvm_device_get_network (pfd->device), error);
          break;
        case UVM_PLAN_FD_HELPER_STREAM:
          {
            int pair[2];

            /* Stream, not datagram: qemu's stream netdev and passt --fd
             * frame with a length prefix. */
            if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
              {
                uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: socketpair: %s", pfd->what,
                               g_strerror (errno));
                break;
              }
            sfd.source = pair[0];
            g_hash_table_insert (helper_ends, pfd->device, GINT_TO_POINTER (pair[1] + 1));
          }
          break;
        case UVM_PLAN_FD_FILE:
          sfd.source = open_plan_file (self, pfd, error);
          break;
        case UVM_PLAN_FD_LIB_TAP:
          /* A workstation's port is isolated: it reaches only the
           * non-isolated ports (its gateway), never another workstation. */
          sfd.source = uvm_network_open_lib_tap (uvm_device_get_network (pfd->device),
                                                 pfd->device, self->name,
                                                 self->gateway != NULL, error);
          break;
        }
      if (sfd.source < 0)
        goto out;
      if (pfd->target == UVM_PLAN_FD_NOT_INHERITED)
        {
          kept[i] = sfd.source;   /* the control connection sends it */
          continue;
        }
      g_array_append_val (fds, sfd);
    }

  /* Helpers first: passt is there when qemu starts talking to it. */
  for (guint i = 0; i < plan->helpers->len; i++)
    if (!spawn_helper (self, g_ptr_array_index (plan->helpers, i), helper_paths[i], envp, null_fd,
                       helper_ends, error))
      goto out;
  /* Our copies of their ends would keep the pairs open after a helper died. */
  g_hash_table_remove_all (helper_ends);

  g_ptr_array_add (argv, (gpointer) binary);
  for (guint i = 0; i < plan->args->len; i++)
    g_ptr_array_add (argv, g_ptr_array_index (plan->args, i));
  g_ptr_array_add (argv, NULL);

  {
    /* Confined: every fd above was opened here, in our namespace, so the
     * links, taps, control socket and event pipe work from the empty one. */
    UvmSpawnRequest req = { binary, (char *const *) argv->pdata, envp,
                            (const UvmSpawnFd *) fds->data, fds->len,
                            .new_netns = self->confined, .filter = filter,
                            .creds = &self->creds };
    if (!uvm_spawn (&req, &pid, &pidfd, error))
      goto out;
  }
  self->child = uvm_child_watch_new (pid, pidfd, self->context, on_child_exit, self, error);
  if (self->child == NULL)
    goto out;
  *control_fd = connect_control_socket (self->control_path, error);
  if (*control_fd < 0)
    {
      /* Cannot control it: do not leave it running. */
      uvm_child_watch_free (self->child);
      self->child = NULL;
      goto out;
    }
  ok = TRUE;

out:
  /* The child has its copies; ours would keep the link and socket alive
   * after the hypervisor died. */
  for (guint i = 3; i < fds->len; i++)
    close (g_array_index (fds, UvmSpawnFd, i).source);
  uvm_close_fd (&null_fd);
  uvm_close_fd (&log_fd);
  if (!ok)
    {
      for (guint i = 0; i < plan->fds->len; i++)
        uvm_close_fd (&kept[i]);
      stop_helpers (self);
    }
  return ok;
}

void
uvm_vm_start_async (UvmVm *vm, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(UvmPlan) plan = NULL;
  g_autofree char *binary = NULL;
  g_auto(GStrv) helper_paths = NULL;
  g_autoptr(UvmSeccompProgram) filter = NULL;
  const UvmBackend *backend = NULL;
  GError *error = NULL;
  g_autofree int *kept = NULL;
  int control_fd = -1;

  g_return_if_fail (UVM_IS_VM (vm));
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_start_async);

  if (is_active (vm))
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_BUSY, "VM '%s' is %s already",
                               vm->name, uvm_vm_state_to_string (vm->state));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  /* The definition first (the gateway relation included), then whether
   * its gateway runs. */
  plan = build_plan (vm, &backend, &error);
  if (plan != NULL && !check_gateway (vm, &error))
    g_clear_pointer (&plan, uvm_plan_free);
  if (plan != NULL)
    binary = resolve_binary (vm, &error);
  if (binary != NULL)
    helper_paths = resolve_helpers (vm, plan, &error);
  if (helper_paths != NULL && vm->confined)
    filter = uvm_seccomp_build_confinement (&error);
  if (helper_paths == NULL || (vm->confined && filter == NULL))
    {
      g_task_return_error (task, error);
      return;
    }

  vm->console_in_rundir = FALSE;
  if (uvm_vm_get_console_path (vm) != NULL)
    {
      g_autofree char *default_console = g_build_filename (vm->effective_dir, CONSOLE_NAME, NULL);
      vm->console_in_rundir = g_str_equal (default_console, uvm_vm_get_console_path (vm));
    }
  g_strfreev (vm->helper_files);
  {
    GStrvBuilder *logs = g_strv_builder_new ();
    g_auto(GStrv) files = NULL;

    for (guint i = 0; i < plan->helpers->len; i++)
      g_strv_builder_add (logs, ((UvmPlanHelper *) g_ptr_array_index (plan->helpers, i))->log_path);
    vm->helper_files = g_strv_builder_end (logs);
    g_strv_builder_unref (logs);
    files = run_files (vm);
    vm->rundir = uvm_rundir_acquire (vm->effective_dir, (const char *const *) files, &error);
  }
  if (vm->rundir == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (!prepare_user (vm, &error))
    {
      finish_run (vm);
      g_task_return_error (task, error);
      return;
    }
  g_clear_pointer (&vm->context, g_main_context_unref);
  vm->context = g_main_context_ref_thread_default ();
  vm->exit_expected = FALSE;
  vm->sent_term = vm->sent_kill = FALSE;
  vm->guest_panicked = FALSE;
  vm->have_exit = FALSE;
  vm->control_lost = FALSE;
  g_clear_error (&vm->control_error);
  g_clear_error (&vm->start_error);

  kept = g_new (int, plan->fds->len + 1);
  for (guint i = 0; i < plan->fds->len; i++)
    kept[i] = -1;
  if (!spawn_plan (vm, plan, binary, helper_paths, filter, &control_fd, kept, &error))
    {
      finish_run (vm);
      g_task_return_error (task, error);
      return;
    }
  vm->control = backend->control_new (control_fd, plan, kept, &control_sink, vm);
  vm->control->klass->set_request_timeout (vm->control, vm->control_timeout_ms);
  vm->start_task = g_steal_pointer (&task);
  vm->start_cancellable = g_cancellable_new ();
  vm->start_timeout = attach_source (g_timeout_source_new (START_TIMEOUT_MS), vm->context,
                                     on_start_timeout, vm);
  if (cancellable != NULL)
    vm->start_cancel_source = attach_source (g_cancellable_source_new (cancellable), vm->context,
                                             G_SOURCE_FUNC (on_start_cancelled), vm);
  set_state (vm, UVM_VM_STATE_STARTING);
  vm->control->klass->ready_async (vm->control, vm->start_cancellable, on_ready,
                                   g_object_ref (vm));
}

gboolean
uvm_vm_start_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Sync variants: run the async call and iterate the thread-default context,
 * where GTask delivers the callback. */
typedef struct {
  GAsyncResult *result;
} SyncCall;

static void
sync_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SyncCall *call = user_data;

  call->result = g_object_ref (result);
}

static GAsyncResult *
sync_call_wait (SyncCall *call)
{
  GMainContext *context = g_main_context_ref_thread_default ();

  while (call->result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_unref (context);
  return call->result;
}

gboolean
uvm_vm_start (UvmVm *vm, GCancellable *cancellable, GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_start_async (vm, cancellable, sync_call_done, &call);
  result = sync_call_wait (&call);
  return uvm_vm_start_finish (vm, result, error);
}

/* ---- Pause / resume ------------------------------------------------ */

static gboolean
check_controllable (UvmVm *self, GTask *task)
{
  if (self->control == NULL || self->state == UVM_VM_STATE_STARTING ||
      self->state == UVM_VM_STATE_STOPPING)
    {
      g_task_return_new_error (task, UVM_ERROR,
                               self->state == UVM_VM_STATE_STARTING ||
                                 self->state == UVM_VM_STATE_STOPPING
                                 ? UVM_ERROR_BUSY : UVM_ERROR_NOT_RUNNING,
                               "VM '%s' is %s", self->name, uvm_vm_state_to_string (self->state));
      return FALSE;
    }
  /* Fail fast: nothing sent can be answered. */
  if (self->control_lost)
    {
      g_task_return_error (task, g_error_copy (self->control_error));
      return FALSE;
    }
  return TRUE;
}

static void
on_run_state_request_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  UvmVm *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      note_request_error (self, error);
      g_task_return_error (task, error);
      return;
    }
  sink_state (self, GPOINTER_TO_INT (g_task_get_task_data (task)));
  g_task_return_boolean (task, TRUE);
}

static void
run_state_request (UvmVm *vm, UvmControlOp op, UvmVmState target, gpointer tag,
                   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (vm, cancellable, callback, user_data);

  g_task_set_source_tag (task, tag);
  g_task_set_task_data (task, GINT_TO_POINTER (target), NULL);
  if (!check_controllable (vm, task))
    return;
  /* Already there: cloud-hypervisor refuses a pause of a paused VM (500),
   * and the API promises success. */
  if (vm->state == target)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  vm->control->klass->request_async (vm->control, op, cancellable, on_run_state_request_done,
                                     g_steal_pointer (&task));
}

void
uvm_vm_pause_async (UvmVm *vm, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer user_data)
{
  g_return_if_fail (UVM_IS_VM (vm));
  run_state_request (vm, UVM_CONTROL_PAUSE, UVM_VM_STATE_PAUSED, uvm_vm_pause_async,
                     cancellable, callback, user_data);
}

gboolean
uvm_vm_pause_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
uvm_vm_pause (UvmVm *vm, GCancellable *cancellable, GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_pause_async (vm, cancellable, sync_call_done, &call);
  result = sync_call_wait (&call);
  return uvm_vm_pause_finish (vm, result, error);
}

void
uvm_vm_resume_async (UvmVm *vm, GCancellable *cancellable, GAsyncReadyCallback callback,
                     gpointer user_data)
{
  g_return_if_fail (UVM_IS_VM (vm));
  run_state_request (vm, UVM_CONTROL_RESUME, UVM_VM_STATE_RUNNING, uvm_vm_resume_async,
                     cancellable, callback, user_data);
}

gboolean
uvm_vm_resume_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
uvm_vm_resume (UvmVm *vm, GCancellable *cancellable, GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_resume_async (vm, cancellable, sync_call_done, &call);
  result = sync_call_wait (&call);
  return uvm_vm_resume_finish (vm, result, error);
}

/* ---- Balloon ------------------------------------------------------- */

static void
on_balloon_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      note_request_error (g_task_get_source_object (task), error);
      g_task_return_error (task, error);
    }
  else
    g_task_return_boolean (task, TRUE);
}

void
uvm_vm_set_balloon_target_async (UvmVm *vm, guint64 guest_bytes, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  gboolean have_balloon = FALSE;

  g_return_if_fail (UVM_IS_VM (vm));
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_set_balloon_target_async);
  for (guint i = 0; i < vm->devices->len; i++)
    if (uvm_device_get_kind (g_ptr_array_index (vm->devices, i)) == UVM_DEVICE_BALLOON)
      have_balloon = TRUE;
  if (!have_balloon)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_UNSUPPORTED,
                               "VM '%s' has no balloon device (uvm_device_new_balloon)", vm->name);
      return;
    }
  if (guest_bytes == 0 || guest_bytes > vm->memory || guest_bytes % UVM_MIB != 0)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION,
                               "balloon target: %" G_GUINT64_FORMAT " bytes must be a whole "
                               "number of MiB between 1 MiB and the VM's memory (%"
                               G_GUINT64_FORMAT " MiB)", guest_bytes, vm->memory / UVM_MIB);
      return;
    }
  if (!check_controllable (vm, task))
    return;
  vm->control->klass->balloon_async (vm->control, guest_bytes, vm->memory, cancellable,
                                     on_balloon_done, g_steal_pointer (&task));
}

gboolean
uvm_vm_set_balloon_target_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
uvm_vm_set_balloon_target (UvmVm *vm, guint64 guest_bytes, GCancellable *cancellable,
                           GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_set_balloon_target_async (vm, guest_bytes, cancellable, sync_call_done, &call);
  result = sync_call_wait (&call);
  return uvm_vm_set_balloon_target_finish (vm, result, error);
}

/* ---- Stop, kill, wait ---------------------------------------------- */

static void stop_advance (UvmVm *self);

static gboolean
on_stop_timer (gpointer user_data)
{
  UvmVm *self = user_data;

  g_clear_pointer (&self->stop_timer, g_source_unref);
  stop_advance (self);
  return G_SOURCE_REMOVE;
}

static void
on_stop_request_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(UvmVm) self = user_data;
  g_autoptr(GError) error = NULL;

  /* A failed request only means the next step comes at its deadline,
   * unless the connection is gone: then signals come at once. */
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_debug ("VM '%s': stop request failed: %s", self->name, error->message);
      note_request_error (self, error);
    }
}

/* One step of the escalation: power button, quit, SIGTERM, SIGKILL; each
 * waits for the exit (which ends everything) or its deadline. */
static void
stop_advance (UvmVm *self)
{
  guint wait_ms = UVM_VM_STOP_GRACE_MS;

  if (self->child == NULL)
    return;
  switch (self->stop_phase)
    {
    case STOP_IDLE:
      if (self->stop_timeout_ms > 0 && control_usable (self))
        {
          self->stop_phase = STOP_POWER_BUTTON;
          wait_ms = self->stop_timeout_ms;
          self->control->klass->request_async (self->control, UVM_CONTROL_POWER_BUTTON, NULL,
                                               on_stop_request_done, g_object_ref (self));
          break;
        }
      G_GNUC_FALLTHROUGH;
    case STOP_POWER_BUTTON:
      if (control_usable (self))
        {
          self->stop_phase = STOP_QUIT;
          self->control->klass->request_async (self->control, UVM_CONTROL_QUIT, NULL,
                                               on_stop_request_done, g_object_ref (self));
          break;
        }
      G_GNUC_FALLTHROUGH;
    case STOP_QUIT:
      self->stop_phase = STOP_TERM;
      self->sent_term = TRUE;
      uvm_child_watch_signal (self->child, SIGTERM);
      break;
    case STOP_TERM:
    case STOP_KILL:
      self->stop_phase = STOP_KILL;
      self->sent_kill = TRUE;
      uvm_child_watch_signal (self->child, SIGKILL);
      return;   /* SIGKILL cannot be ignored: the pidfd will fire */
    }
  self->stop_timer = attach_source (g_timeout_source_new (wait_ms), self->context,
                                    on_stop_timer, self);
}

/* A stop or wait caller: its task and the source watching its cancellable.
 * Completing it always destroys the source, which holds no reference, so
 * nothing outlives the completion. */
struct _Waiter {
  GTask *task;
  GSource *cancel_source;
};

static void
waiter_complete (Waiter *waiter, GError *error)
{
  uvm_source_clear (&waiter->cancel_source);
  if (error != NULL)
    g_task_return_error (waiter->task, error);
  else
    g_task_return_boolean (waiter->task, TRUE);
  g_object_unref (waiter->task);
  g_free (waiter);
}

/* A cancellable source dispatches in the VM's context, whichever thread
 * cancelled. */
static gboolean
on_waiter_cancelled (GCancellable *cancellable, gpointer user_data)
{
  Waiter *waiter = user_data;
  UvmVm *self = g_task_get_source_object (waiter->task);

  g_queue_remove (&self->waiters, waiter);
  waiter_complete (waiter, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                "Operation was cancelled"));
  return G_SOURCE_REMOVE;
}

static void
add_waiter (UvmVm *self, GTask *task, GCancellable *cancellable)
{
  Waiter *waiter = g_new0 (Waiter, 1);

  waiter->task = g_object_ref (task);
  if (cancellable != NULL)
    waiter->cancel_source = attach_source (g_cancellable_source_new (cancellable), self->context,
                                           G_SOURCE_FUNC (on_waiter_cancelled), waiter);
  g_queue_push_tail (&self->waiters, waiter);
}

void
uvm_vm_stop_async (UvmVm *vm, guint timeout_ms, GCancellable *cancellable,
                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (UVM_IS_VM (vm));
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_stop_async);

  if (!is_active (vm))
    {
      if (vm->have_exit)
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_NOT_RUNNING,
                                 "VM '%s' was never started", vm->name);
      return;
    }
  add_waiter (vm, task, cancellable);
  if (vm->exit_expected)
    return;   /* a stop is under way; this one completes with it */
  vm->exit_expected = TRUE;
  /* A paused guest cannot react to its power button. */
  vm->stop_timeout_ms = vm->state == UVM_VM_STATE_RUNNING ? timeout_ms : 0;
  if (vm->start_task != NULL)
    {
      abort_start (vm, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                    "VM '%s': start cancelled by a stop", vm->name));
      return;
    }
  set_state (vm, UVM_VM_STATE_STOPPING);
  stop_advance (vm);
}

gboolean
uvm_vm_stop_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
uvm_vm_stop (UvmVm *vm, guint timeout_ms, GCancellable *cancellable, GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_stop_async (vm, timeout_ms, cancellable, sync_call_done, &call);
  result = sync_call_wait (&call);
  return uvm_vm_stop_finish (vm, result, error);
}

gboolean
uvm_vm_kill (UvmVm *vm, GError **error)
{
  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  if (!is_active (vm))
    return uvm_set_error (error, UVM_ERROR_NOT_RUNNING, "VM '%s' has no hypervisor process",
                          vm->name);
  vm->exit_expected = TRUE;
  if (vm->start_task != NULL)
    {
      abort_start (vm, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                    "VM '%s': start cancelled by a kill", vm->name));
      return TRUE;
    }
  vm->sent_kill = TRUE;
  if (!uvm_child_watch_signal (vm->child, SIGKILL))
    return uvm_set_error (error, UVM_ERROR_FAILED, "VM '%s': SIGKILL: %s", vm->name,
                          g_strerror (errno));
  return TRUE;
}

void
uvm_vm_wait_async (UvmVm *vm, GCancellable *cancellable, GAsyncReadyCallback callback,
                   gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (UVM_IS_VM (vm));
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_wait_async);
  if (!is_active (vm))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  add_waiter (vm, task, cancellable);
}

gboolean
uvm_vm_wait_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
on_wait_timeout (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

gboolean
uvm_vm_wait (UvmVm *vm, int timeout_ms, GCancellable *cancellable, GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GCancellable) inner = g_cancellable_new ();
  GSource *timer = NULL;
  gulong link = 0;
  GError *local = NULL;
  gboolean ok;

  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  if (cancellable != NULL)
    link = g_cancellable_connect (cancellable, G_CALLBACK (g_cancellable_cancel),
                                  g_object_ref (inner), g_object_unref);
  if (timeout_ms >= 0)
    {
      GMainContext *ctx = g_main_context_ref_thread_default ();
      timer = attach_source (g_timeout_source_new ((guint) timeout_ms), ctx, on_wait_timeout, inner);
      g_main_context_unref (ctx);
    }
  uvm_vm_wait_async (vm, inner, sync_call_done, &call);
  result = sync_call_wait (&call);
  ok = uvm_vm_wait_finish (vm, result, &local);
  if (timer != NULL)
    {
      g_source_destroy (timer);
      g_source_unref (timer);
    }
  if (cancellable != NULL)
    g_cancellable_disconnect (cancellable, link);
  if (!ok && (cancellable == NULL || !g_cancellable_is_cancelled (cancellable)) &&
      g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_clear_error (&local);
      return uvm_set_error (error, UVM_ERROR_TIMEOUT, "VM '%s' still runs after %d ms",
                            vm->name, timeout_ms);
    }
  if (!ok)
    g_propagate_error (error, local);
  return ok;
}

/* ---- Raw QMP ------------------------------------------------------- */

/* The task keeps the QMP client it asked: the run (and its control) may end
 * before the reply, and a new run has a new client. */
static void
on_qmp_execute_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) reply = uvm_qmp_client_execute_finish (g_task_get_task_data (task), result,
                                                             &error);

  if (reply == NULL)
    {
      note_request_error (g_task_get_source_object (task), error);
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, json_to_string (reply, FALSE), g_free);
}

void
uvm_vm_qmp_execute_async (UvmVm *vm, const char *command, const char *arguments_json,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(JsonNode) args = NULL;
  UvmQmpClient *qmp;

  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (command != NULL);
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_qmp_execute_async);

  if (vm->control == NULL || vm->state == UVM_VM_STATE_STARTING)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_NOT_RUNNING, "VM '%s' is %s",
                               vm->name, uvm_vm_state_to_string (vm->state));
      return;
    }
  if (vm->control_lost)
    {
      g_task_return_error (task, g_error_copy (vm->control_error));
      return;
    }
  if (!uvm_control_is_qemu (vm->control))
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_UNSUPPORTED,
                               "VM '%s' does not run on qemu", vm->name);
      return;
    }
  if (arguments_json != NULL)
    {
      GError *error = NULL;
      args = json_from_string (arguments_json, &error);
      if (args == NULL || !JSON_NODE_HOLDS_OBJECT (args))
        {
          g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION,
                                   "arguments: not a JSON object%s%s", error ? ": " : "",
                                   error ? error->message : "");
          g_clear_error (&error);
          return;
        }
    }
  qmp = uvm_qemu_control_get_qmp (vm->control);
  g_task_set_task_data (task, uvm_qmp_client_ref (qmp), (GDestroyNotify) uvm_qmp_client_unref);
  uvm_qmp_client_execute_async (qmp, command, args, NULL, 0, cancellable, on_qmp_execute_done,
                                g_steal_pointer (&task));
}

char *
uvm_vm_qmp_execute_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

char *
uvm_vm_qmp_execute (UvmVm *vm, const char *command, const char *arguments_json,
                    GCancellable *cancellable, GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_qmp_execute_async (vm, command, arguments_json, cancellable, sync_call_done, &call);
  result = sync_call_wait (&call);
  return uvm_vm_qmp_execute_finish (vm, result, error);
}

/* ---- Raw cloud-hypervisor request ------------------------------------ */

typedef struct {
  UvmHttpClient *http;
  guint status;
} ChRequestData;

static void
ch_request_data_free (gpointer data)
{
  ChRequestData *d = data;

  uvm_http_client_unref (d->http);
  g_free (d);
}

static void
on_ch_request_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ChRequestData *d = g_task_get_task_data (task);
  GError *error = NULL;
  UvmHttpResponse *response = uvm_http_client_request_finish (d->http, result, &error);

  if (response == NULL)
    {
      note_request_error (g_task_get_source_object (task), error);
      g_task_return_error (task, error);
      return;
    }
  d->status = response->status;
  g_task_return_pointer (task, g_steal_pointer (&response->body), g_free);
  uvm_http_response_free (response);
}

void
uvm_vm_ch_request_async (UvmVm *vm, const char *method, const char *endpoint,
                         const char *body_json, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *path = NULL;
  ChRequestData *d;

  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (method != NULL && endpoint != NULL);
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_ch_request_async);

  if (vm->control == NULL || vm->state == UVM_VM_STATE_STARTING)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_NOT_RUNNING, "VM '%s' is %s",
                               vm->name, uvm_vm_state_to_string (vm->state));
      return;
    }
  if (vm->control_lost)
    {
      g_task_return_error (task, g_error_copy (vm->control_error));
      return;
    }
  if (!uvm_control_is_cloud_hypervisor (vm->control))
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_UNSUPPORTED,
                               "VM '%s' does not run on cloud-hypervisor", vm->name);
      return;
    }
  if (body_json != NULL)
    {
      g_autoptr(JsonNode) node = json_from_string (body_json, NULL);
      if (node == NULL)
        {
          g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION,
                                   "body: not JSON");
          return;
        }
    }
  d = g_new0 (ChRequestData, 1);
  d->http = uvm_http_client_ref (uvm_ch_control_get_http (vm->control, endpoint));
  g_task_set_task_data (task, d, ch_request_data_free);
  path = g_strconcat ("/api/v1/", endpoint, NULL);
  uvm_http_client_request_async (d->http, method, path, body_json, NULL, 0, cancellable,
                                 on_ch_request_done, g_steal_pointer (&task));
}

char *
uvm_vm_ch_request_finish (UvmVm *vm, GAsyncResult *result, guint *status, GError **error)
{
  ChRequestData *d;
  char *body;

  g_return_val_if_fail (g_task_is_valid (result, vm), NULL);
  d = g_task_get_task_data (G_TASK (result));
  body = g_task_propagate_pointer (G_TASK (result), error);
  if (body != NULL && status != NULL)
    *status = d->status;
  return body;
}

char *
uvm_vm_ch_request (UvmVm *vm, const char *method, const char *endpoint, const char *body_json,
                   guint *status, GCancellable *cancellable, GError **error)
{
  SyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_ch_request_async (vm, method, endpoint, body_json, cancellable, sync_call_done, &call);
  result = sync_call_wait (&call);
  return uvm_vm_ch_request_finish (vm, result, status, error);
}
