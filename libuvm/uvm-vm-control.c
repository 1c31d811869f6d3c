/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Requests to a running hypervisor through its control connection:
 * pause, resume, balloon, and the two escape hatches (raw QMP, raw REST),
 * all through the backend's control class. */
#include "uvm-vm-private.h"

#include <string.h>

/* ---- One path for every request ------------------------------------- */

void
uvm_vm_control_op_async (UvmVm *self, UvmControlOp op, guint64 guest_bytes,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr(UvmPlanRequest) request = self->control->klass->op_request (self->control, op,
                                                                        guest_bytes, self->memory);

  self->control->klass->send_async (self->control, request, NULL, 0, FALSE, cancellable,
                                    callback, user_data);
}

gboolean
uvm_vm_control_op_finish (GAsyncResult *result, GError **error)
{
  g_autoptr(UvmControlReply) reply = g_task_propagate_pointer (G_TASK (result), error);

  return reply != NULL;
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

  if (!uvm_vm_control_op_finish (result, &error))
    {
      uvm_vm_note_request_error (self, error);
      g_task_return_error (task, error);
      return;
    }
  uvm_vm_control_sink.state (self, GPOINTER_TO_INT (g_task_get_task_data (task)));
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
  uvm_vm_control_op_async (vm, op, 0, cancellable, on_run_state_request_done,
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
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_pause_async (vm, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
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
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_resume_async (vm, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_resume_finish (vm, result, error);
}

/* ---- Balloon ------------------------------------------------------- */

static void
on_balloon_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!uvm_vm_control_op_finish (result, &error))
    {
      uvm_vm_note_request_error (g_task_get_source_object (task), error);
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
  uvm_vm_control_op_async (vm, UVM_CONTROL_BALLOON, guest_bytes, cancellable, on_balloon_done,
                           g_steal_pointer (&task));
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
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_set_balloon_target_async (vm, guest_bytes, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_set_balloon_target_finish (vm, result, error);
}

/* ---- The escape hatches ----------------------------------------------- */

/* Whether @vm can take a raw request now; otherwise @task returns why. */
static gboolean
check_raw (UvmVm *vm, UvmFeature feature, const char *hypervisor, GTask *task)
{
  if (vm->control == NULL || vm->state == UVM_VM_STATE_STARTING)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_NOT_RUNNING, "VM '%s' is %s",
                               vm->name, uvm_vm_state_to_string (vm->state));
      return FALSE;
    }
  if (vm->control_lost)
    {
      g_task_return_error (task, g_error_copy (vm->control_error));
      return FALSE;
    }
  if (!uvm_hypervisor_supports (vm->hypervisor, feature))
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_UNSUPPORTED,
                               "VM '%s' does not run on %s", vm->name, hypervisor);
      return FALSE;
    }
  return TRUE;
}

/* The reply (its body, with its status as the task's data) of a raw
 * request; the run may end before it comes (the task holds the VM). */
static void
on_raw_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  UvmControlReply *reply = g_task_propagate_pointer (G_TASK (result), &error);

  if (reply == NULL)
    {
      uvm_vm_note_request_error (g_task_get_source_object (task), error);
      g_task_return_error (task, error);
      return;
    }
  g_task_set_task_data (task, GUINT_TO_POINTER (reply->status), NULL);
  g_task_return_pointer (task, g_steal_pointer (&reply->body), g_free);
  uvm_control_reply_free (reply);
}

static void
send_raw (UvmVm *vm, GTask *task, const char *method, const char *name, const char *body)
{
  GError *error = NULL;
  g_autoptr(UvmPlanRequest) request = vm->control->klass->raw_request (vm->control, method, name,
                                                                       body, &error);

  if (request == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  vm->control->klass->send_async (vm->control, request, NULL, 0, TRUE,
                                  g_task_get_cancellable (task), on_raw_done, task);
}

void
uvm_vm_qmp_execute_async (UvmVm *vm, const char *command, const char *arguments_json,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(JsonNode) args = NULL;

  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (command != NULL);
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_qmp_execute_async);

  if (!check_raw (vm, UVM_FEATURE_RAW_QMP, "qemu", task))
    return;
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
  send_raw (vm, g_steal_pointer (&task), NULL, command, arguments_json);
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
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_qmp_execute_async (vm, command, arguments_json, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_qmp_execute_finish (vm, result, error);
}

void
uvm_vm_ch_request_async (UvmVm *vm, const char *method, const char *endpoint,
                         const char *body_json, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (method != NULL && endpoint != NULL);
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_ch_request_async);

  if (!check_raw (vm, UVM_FEATURE_RAW_REST, "cloud-hypervisor", task))
    return;
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
  send_raw (vm, g_steal_pointer (&task), method, endpoint, body_json);
}

char *
uvm_vm_ch_request_finish (UvmVm *vm, GAsyncResult *result, guint *status, GError **error)
{
  char *body;

  g_return_val_if_fail (g_task_is_valid (result, vm), NULL);
  body = g_task_propagate_pointer (G_TASK (result), error);
  if (body != NULL && status != NULL)
    *status = GPOINTER_TO_UINT (g_task_get_task_data (G_TASK (result)));
  return body;
}

char *
uvm_vm_ch_request (UvmVm *vm, const char *method, const char *endpoint, const char *body_json,
                   guint *status, GCancellable *cancellable, GError **error)
{
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_ch_request_async (vm, method, endpoint, body_json, cancellable, uvm_vm_sync_call_done,
                           &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_ch_request_finish (vm, result, status, error);
}
