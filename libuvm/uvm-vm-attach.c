/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VMs beyond the process that started them: the state record of a run,
 * reclaiming what a killed launcher left, taking over a detached VM from
 * another process (uvm_vm_attach) and listing VMs (uvm_vm_list). */
#include "uvm-vm-private.h"
#include "proc/uvm-record.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

/* ---- The record ------------------------------------------------------- */

static char *
attach_requests_json (const UvmPlan *plan)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_array (b);
  for (guint i = 0; i < plan->requests->len; i++)
    {
      const UvmPlanRequest *request = g_ptr_array_index (plan->requests, i);

      if (!request->on_attach)
        continue;
      json_builder_begin_object (b);
      if (request->method != NULL)
        {
          json_builder_set_member_name (b, "method");
          json_builder_add_string_value (b, request->method);
        }
      json_builder_set_member_name (b, "target");
      json_builder_add_string_value (b, request->target);
      if (request->body != NULL)
        {
          json_builder_set_member_name (b, "body");
          json_builder_add_string_value (b, request->body);
        }
      json_builder_set_member_name (b, "state");
      json_builder_add_boolean_value (b, request->role == UVM_PLAN_REQUEST_STATE);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

gboolean
uvm_vm_write_record (UvmVm *self, const UvmPlan *plan, gboolean ready, GError **error)
{
  g_autoptr(UvmRecord) record = uvm_record_new ();

  record->name = g_strdup (self->name);
  record->hypervisor = g_strdup (uvm_hypervisor_to_string (self->hypervisor));
  record->detached = plan->desc->detached;
  record->ready = ready;
  record->process.pid = uvm_child_watch_get_pid (self->child);
  record->process.start_time = uvm_process_start_time (record->process.pid);
  for (guint i = 0; i < self->helpers->len; i++)
    {
      Helper *helper = g_ptr_array_index (self->helpers, i);

      if (helper->watch != NULL)
        uvm_record_add_helper (record, uvm_child_watch_get_pid (helper->watch), helper->name);
    }
  record->control_path = g_strdup (plan->desc->control_path);
  record->console_path = g_strdup (plan->desc->console_path);
  record->log_path = g_strdup (plan->desc->log_path);
  record->files = uvm_vm_run_files (self);
  record->console_log_start = self->console_log_start;
  if (self->user_lease != NULL)
    record->user_lease = g_strdup (uvm_user_lease_get_path (self->user_lease));
  /* Before the handshake the record only has to let a later start or
   * attach find the process and end it: what an attacher needs (its
   * requests, the definition) is written once, when the VM is ready. */
  if (!ready)
    return uvm_record_write (record, plan->desc->runtime_dir, error);
  record->attach_requests = attach_requests_json (plan);
  /* The frozen definition (a workstation with its gateway: the document
   * names it).  A definition that started always has a JSON form. */
  if (self->gateway != NULL)
    {
      UvmVm *pair[] = { self->gateway, self };

      record->definition = uvm_vms_to_json (pair, 2, error);
    }
  else
    record->definition = uvm_vm_to_json (self, error);
  if (record->definition == NULL)
    return FALSE;
  return uvm_record_write (record, plan->desc->runtime_dir, error);
}

/* SIGKILL to @process if it still is that process, and a moment for it
 * to go: it is not our child, so there is nothing to reap. */
static void
kill_recorded (const UvmRecordProcess *process)
{
  struct pollfd p = { .events = POLLIN };
  int fd;

  if (!uvm_record_process_alive (process))
    return;
  fd = pidfd_open (process->pid, 0);
  /* Checked again through the pidfd: the pid cannot be reused under it. */
  if (fd < 0 || !uvm_record_process_alive (process))
    {
      if (fd >= 0)
        close (fd);
      return;
    }
  pidfd_send_signal (fd, SIGKILL, NULL, 0);
  p.fd = fd;
  while (poll (&p, 1, 5000) < 0 && errno == EINTR)
    ;
  close (fd);
}

static void
kill_helpers (const UvmRecord *record)
{
  for (guint i = 0; i < record->helpers->len; i++)
    kill_recorded (&g_array_index (record->helpers, UvmRecordProcess, i));
}

gboolean
uvm_vm_reclaim_record (const char *dir, const char *name, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(UvmRecord) record = uvm_record_read (dir, &local);

  if (record == NULL)
    {
      /* None, or not one we can read: nothing of ours runs from here. */
      if (!g_error_matches (local, UVM_ERROR, UVM_ERROR_NOT_FOUND))
        g_debug ("VM '%s': %s; removed", name, local->message);
      uvm_record_remove (dir);
      return TRUE;
    }
  if (uvm_record_process_alive (&record->process) && record->ready)
    return uvm_set_error (error, UVM_ERROR_BUSY, "VM '%s' runs already, detached from the process "
                          "that started it (%s pid %d); attach to it (uvm_vm_attach) to control "
                          "or stop it", name, record->hypervisor, (int) record->process.pid);
  /* A start whose launcher died before it finished: nobody can know what
   * state that hypervisor is in.  Or a stale record. */
  kill_recorded (&record->process);
  kill_helpers (record);
  if (record->user_lease != NULL)
    uvm_user_lease_reclaim (record->user_lease);
  g_info ("VM '%s': reclaiming what the run of pid %d left", name, (int) record->process.pid);
  uvm_record_remove (dir);
  return TRUE;
}

/* A stale record's directory, locked by us in @rundir: what its run left
 * goes (processes, lease, record, files, the directory). */
static void
reclaim_dir (UvmRundir *rundir, const char *dir, const UvmRecord *record)
{
  uvm_vm_reclaim_record (dir, record->name, NULL);
  uvm_rundir_release (rundir, (const char *const *) record->files);
}

/* ---- Attach ----------------------------------------------------------- */

static char *
attach_dir (const char *root, const char *name, GError **error)
{
  if (root == NULL && strchr (name, '/') != NULL)
    return g_canonicalize_filename (name, NULL);
  if (*name == '\0' || *name == '.' || strchr (name, '/') != NULL)
    {
      uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "name: '%s' is not a VM name", name);
      return NULL;
    }
  if (root != NULL)
    return g_build_filename (root, name, NULL);
  return uvm_rundir_default_path (name);
}

static GPtrArray *
requests_from_record (const UvmRecord *record, GError **error)
{
  g_autoptr(JsonNode) node = record->attach_requests ? json_from_string (record->attach_requests, NULL)
                                                     : NULL;
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func ((GDestroyNotify) uvm_plan_request_free);
  JsonArray *a = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;

  for (guint i = 0; a != NULL && i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (e) ? json_node_get_object (e) : NULL;
      const char *target = o ? uvm_json_node_get_string (json_object_get_member (o, "target")) : NULL;

      if (target == NULL)
        break;
      g_ptr_array_add (requests, uvm_plan_request_new (
        uvm_json_node_get_string (json_object_get_member (o, "method")), target,
        uvm_json_node_get_string (json_object_get_member (o, "body")),
        json_object_get_boolean_member_with_default (o, "state", FALSE)
          ? UVM_PLAN_REQUEST_STATE : UVM_PLAN_REQUEST_PLAIN));
    }
  if (requests->len == 0)
    {
      uvm_set_error (error, UVM_ERROR_PROTOCOL, "the state record lists no requests for an "
                     "attacher");
      return NULL;
    }
  return g_steal_pointer (&requests);
}

/* A new VM of the record's definition, its runtime directory @dir. */
static UvmVm *
vm_from_record (const UvmRecord *record, const char *dir, GError **error)
{
  g_autoptr(GPtrArray) vms = NULL;
  UvmHypervisor hypervisor;
  UvmVm *vm = NULL;

  if (!uvm_hypervisor_from_string (record->hypervisor, &hypervisor))
    {
      uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "VM '%s' runs on '%s', which this libuvm "
                     "has no backend for", record->name, record->hypervisor);
      return NULL;
    }
  if (record->definition == NULL)
    {
      uvm_set_error (error, UVM_ERROR_PROTOCOL, "the state record of VM '%s' has no definition",
                     record->name);
      return NULL;
    }
  vms = uvm_vms_new_from_json (record->definition, error);
  if (vms == NULL)
    {
      g_prefix_error (error, "the definition in the state record of VM '%s': ", record->name);
      return NULL;
    }
  for (guint i = 0; i < vms->len && vm == NULL; i++)
    if (g_str_equal (uvm_vm_get_name (g_ptr_array_index (vms, i)), record->name))
      vm = g_object_ref (g_ptr_array_index (vms, i));
  if (vm == NULL || uvm_vm_get_hypervisor (vm) != hypervisor)
    {
      g_clear_object (&vm);
      uvm_set_error (error, UVM_ERROR_PROTOCOL, "the definition in the state record of VM '%s' "
                     "does not describe it", record->name);
      return NULL;
    }
  /* The gateway of the document is a definition, not the running
   * gateway: a taken-over workstation keeps no relation (its NICs were
   * checked when it started). */
  uvm_vm_set_gateway (vm, NULL);
  uvm_vm_set_runtime_dir (vm, dir);
  return vm;
}

static void
attach_watch_helpers (UvmVm *vm, const UvmRecord *record)
{
  for (guint i = 0; i < record->helpers->len; i++)
    {
      const UvmRecordProcess *p = &g_array_index (record->helpers, UvmRecordProcess, i);
      g_autoptr(GError) error = NULL;
      Helper *h;
      int fd;

      if (!uvm_record_process_alive (p) || (fd = pidfd_open (p->pid, 0)) < 0)
        continue;
      h = g_new0 (Helper, 1);
      h->vm = vm;
      h->name = g_strdup (p->name);
      h->watch = uvm_child_watch_new_foreign (p->pid, fd, vm->context, uvm_vm_on_helper_exit, h,
                                              &error);
      if (h->watch == NULL)
        {
          g_debug ("VM '%s': helper %d: %s", vm->name, (int) p->pid, error->message);
          uvm_vm_helper_free (h);
          continue;
        }
      g_ptr_array_add (vm->helpers, h);
    }
}

void
uvm_vm_let_go (UvmVm *self)
{
  if (self->control != NULL)
    {
      self->control->klass->free (self->control);
      self->control = NULL;
    }
  g_clear_pointer (&self->child, uvm_child_watch_release);
  for (guint i = 0; i < self->helpers->len; i++)
    {
      Helper *h = g_ptr_array_index (self->helpers, i);
      g_clear_pointer (&h->watch, uvm_child_watch_release);
    }
  g_ptr_array_set_size (self->helpers, 0);
  uvm_vm_clear_start_plan (self);
  uvm_source_clear (&self->start_timeout);
  uvm_source_clear (&self->start_cancel_source);
  uvm_source_clear (&self->stop_timer);
  uvm_source_clear (&self->control_grace);
  g_clear_object (&self->start_cancellable);
  g_clear_pointer (&self->rundir, uvm_rundir_unlock);
  /* A detached hypervisor holds the uid's lease: keep the file. */
  g_clear_pointer (&self->user_lease, uvm_user_lease_forget);
}

void
uvm_vm_attach_succeeded (UvmVm *self)
{
  GTask *task = g_steal_pointer (&self->attach_task);

  g_debug ("VM '%s': attached (%s)", self->name, uvm_vm_state_to_string (self->state));
  g_task_return_pointer (task, g_object_ref (self), g_object_unref);
  g_object_unref (task);   /* and with it the task's hold on the VM */
}

void
uvm_vm_attach_failed (UvmVm *self, GError *error)
{
  GTask *task = g_steal_pointer (&self->attach_task);

  g_cancellable_cancel (self->start_cancellable);
  uvm_vm_let_go (self);
  g_prefix_error (&error, "attaching to VM '%s': ", self->name);
  g_task_return_error (task, error);
  g_object_unref (task);
}

void
uvm_vm_attach_async (const char *root, const char *name, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr(UvmRundir) rundir = NULL;
  g_autoptr(UvmRecord) record = NULL;
  g_autoptr(UvmVm) vm = NULL;
  g_autofree char *dir = NULL;
  const UvmBackend *backend;
  UvmLaunchResult launch = { -1, -1 };
  GError *error = NULL;
  int pidfd;

  g_return_if_fail (name != NULL);
  g_task_set_source_tag (task, uvm_vm_attach_async);
  dir = attach_dir (root, name, &error);
  if (dir != NULL)
    rundir = uvm_rundir_take (dir, &error);
  if (rundir != NULL)
    record = uvm_record_read (dir, &error);
  if (record == NULL)
    {
      if (rundir != NULL && g_error_matches (error, UVM_ERROR, UVM_ERROR_NOT_FOUND))
        g_prefix_error (&error, "no VM runs from '%s': ", dir);
      g_task_return_error (task, error);
      return;
    }
  if (!uvm_record_process_alive (&record->process) || !record->ready)
    {
      gboolean alive = uvm_record_process_alive (&record->process);

      /* Stale, or a start its launcher never finished: reclaimed. */
      reclaim_dir (g_steal_pointer (&rundir), dir, record);
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_NOT_RUNNING,
                               alive ? "VM '%s': its launcher died during the start; that "
                                       "hypervisor (pid %d) was killed and its files removed"
                                     : "VM '%s': its hypervisor (pid %d) is gone; the stale "
                                       "record and files were removed",
                               record->name, (int) record->process.pid);
      return;
    }
  vm = vm_from_record (record, dir, &error);
  backend = vm ? uvm_backend_lookup (vm->hypervisor, &error) : NULL;
  if (backend == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  vm->lifetime = UVM_VM_LIFETIME_DETACHED;
  vm->rundir = g_steal_pointer (&rundir);
  vm->attached_lease = g_strdup (record->user_lease);
  /* Waits for console lines read this run's output, not earlier runs'. */
  vm->console_log_start = record->console_log_start;
  /* What its end removes: the record's list of the run's files. */
  g_strfreev (vm->helper_files);
  vm->helper_files = g_strdupv (record->files);
  vm->context = g_main_context_ref_thread_default ();
  vm->start_requests = requests_from_record (record, &error);
  pidfd = vm->start_requests ? pidfd_open (record->process.pid, 0) : -1;
  if (vm->start_requests != NULL && pidfd < 0)
    error = g_error_new (UVM_ERROR, UVM_ERROR_FAILED, "pidfd_open (%d): %s",
                         (int) record->process.pid, g_strerror (errno));
  if (pidfd >= 0 && !uvm_record_process_alive (&record->process))
    {
      close (pidfd);
      pidfd = -1;
      error = g_error_new (UVM_ERROR, UVM_ERROR_NOT_RUNNING, "VM '%s': its hypervisor (pid %d) "
                           "exited just now", record->name, (int) record->process.pid);
    }
  if (pidfd >= 0)
    vm->child = uvm_child_watch_new_foreign (record->process.pid, pidfd, vm->context,
                                             uvm_vm_on_child_exit, vm, &error);
  if (vm->child != NULL)
    launch.control_fd = uvm_vm_connect_control (record->control_path, &error);
  if (launch.control_fd < 0)
    {
      uvm_vm_let_go (vm);
      g_prefix_error (&error, "attaching to VM '%s': ", record->name);
      g_task_return_error (task, error);
      return;
    }
  attach_watch_helpers (vm, record);
  vm->control = backend->control_new (NULL, &launch, &uvm_vm_control_sink, vm);
  vm->control->klass->set_request_timeout (vm->control, vm->control_timeout_ms);
  vm->start_step = 0;
  vm->start_have_state = FALSE;
  /* The task holds the VM until it is done (the sources do not). */
  g_task_set_task_data (task, g_object_ref (vm), g_object_unref);
  vm->attach_task = g_steal_pointer (&task);
  uvm_vm_arm_start_deadlines (vm, cancellable);
  uvm_vm_send_requests (vm);
}

UvmVm *
uvm_vm_attach_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

UvmVm *
uvm_vm_attach (const char *root, const char *name, GCancellable *cancellable, GError **error)
{
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_attach_async (root, name, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_attach_finish (result, error);
}

/* ---- List --------------------------------------------------------------- */

struct _UvmVmInfo
{
  gatomicrefcount ref;
  char *name;
  char *dir;
  char *hypervisor;
  int pid;
  gboolean stale;
  gboolean detached;
  int controller;
};

G_DEFINE_BOXED_TYPE (UvmVmInfo, uvm_vm_info, uvm_vm_info_ref, uvm_vm_info_unref)

UvmVmInfo *
uvm_vm_info_ref (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  g_atomic_ref_count_inc (&info->ref);
  return info;
}

void
uvm_vm_info_unref (UvmVmInfo *info)
{
  if (info == NULL || !g_atomic_ref_count_dec (&info->ref))
    return;
  g_free (info->name);
  g_free (info->dir);
  g_free (info->hypervisor);
  g_free (info);
}

const char *
uvm_vm_info_get_name (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->name;
}

const char *
uvm_vm_info_get_runtime_dir (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->dir;
}

const char *
uvm_vm_info_get_hypervisor (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->hypervisor;
}

int
uvm_vm_info_get_pid (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, 0);
  return info->pid;
}

gboolean
uvm_vm_info_get_stale (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, FALSE);
  return info->stale;
}

gboolean
uvm_vm_info_get_detached (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, FALSE);
  return info->detached;
}

int
uvm_vm_info_get_controller_pid (UvmVmInfo *info)
{
  g_return_val_if_fail (info != NULL, 0);
  return info->controller;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 ((*(UvmVmInfo *const *) a)->name, (*(UvmVmInfo *const *) b)->name);
}

GPtrArray *
uvm_vm_list (const char *root, GError **error)
{
  g_autofree char *default_root = NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) uvm_vm_info_unref);
  g_autoptr(GDir) d = NULL;
  g_autoptr(GError) local = NULL;
  const char *entry;

  if (root == NULL)
    {
      g_autofree char *probe = uvm_rundir_default_path ("x");
      root = default_root = g_path_get_dirname (probe);
    }
  d = g_dir_open (root, 0, &local);
  if (d == NULL)
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&out);
      uvm_set_error (error, UVM_ERROR_FAILED, "listing '%s': %s", root, local->message);
      return NULL;
    }
  while ((entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *dir = g_build_filename (root, entry, NULL);
      g_autoptr(UvmRecord) record = NULL;
      g_autoptr(UvmRundir) rundir = NULL;
      UvmVmInfo *info;

      if (entry[0] == '.' || !g_file_test (dir, G_FILE_TEST_IS_DIR))
        continue;
      record = uvm_record_read (dir, NULL);
      if (record == NULL)
        continue;
      info = g_new0 (UvmVmInfo, 1);
      g_atomic_ref_count_init (&info->ref);
      info->name = g_strdup (record->name);
      info->dir = g_steal_pointer (&dir);
      info->hypervisor = g_strdup (record->hypervisor);
      info->pid = (int) record->process.pid;
      info->detached = record->detached;
      info->stale = !uvm_record_process_alive (&record->process);
      /* Held: its launcher or an attacher supervises it (the lock file
       * names it).  Free and stale: nobody will clean up but us. */
      rundir = uvm_rundir_take (info->dir, &local);
      if (rundir == NULL && g_error_matches (local, UVM_ERROR, UVM_ERROR_BUSY))
        info->controller = uvm_rundir_holder_pid (info->dir);
      g_clear_error (&local);
      if (rundir != NULL && info->stale)
        reclaim_dir (g_steal_pointer (&rundir), info->dir, record);
      g_ptr_array_add (out, info);
    }
  g_ptr_array_sort (out, compare_names);
  return g_steal_pointer (&out);
}
