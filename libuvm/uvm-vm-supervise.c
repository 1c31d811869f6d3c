/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Supervision of a run: state and events, the control connection's
 * reports, helper and hypervisor exits, the end of a run, stop escalation
 * (power button, quit, SIGTERM, SIGKILL) and the waiters of stop and wait.
 * Everything runs on the GMainContext that was thread-default at start. */
#include "uvm-vm-private.h"
#include "proc/uvm-record.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

typedef struct _Waiter Waiter;
static void waiter_complete (Waiter *waiter, GError *error);
static void stop_advance (UvmVm *self);

void
uvm_vm_helper_free (gpointer data)
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

void
uvm_vm_eof_grace (UvmVm *self, GSource **slot, GSourceFunc on_expiry)
{
  uvm_source_clear (slot);
  *slot = uvm_vm_attach_source (g_timeout_source_new (CONTROL_EOF_GRACE_MS), self->context,
                                on_expiry, self);
}

GSource *
uvm_vm_attach_source (GSource *source, GMainContext *context, GSourceFunc func, gpointer data)
{
  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, context);
  return source;
}

/* ---- Events and state ---------------------------------------------- */

void
uvm_vm_set_state (UvmVm *self, UvmVmState state)
{
  UvmVmState previous = self->state;
  g_autoptr(UvmEvent) event = NULL;

  if (state == previous)
    return;
  self->state = state;
  g_debug ("VM '%s': %s -> %s", self->name, uvm_vm_state_to_string (previous),
           uvm_vm_state_to_string (state));
  event = uvm_event_new_state_changed (state, previous);
  uvm_vm_emit_event (self, event);
}

static void
sink_event (gpointer vm, UvmEvent *event)
{
  UvmVm *self = vm;

  if (uvm_event_get_kind (event) == UVM_EVENT_GUEST_PANIC)
    self->guest_panicked = TRUE;
  if (uvm_event_get_kind (event) == UVM_EVENT_GUEST_SHUTDOWN)
    self->guest_shut_down = TRUE;
  uvm_event_set_state (event, self->state);
  uvm_vm_emit_event (self, event);
}

static void
sink_state (gpointer vm, UvmVmState state)
{
  UvmVm *self = vm;

  /* Only the guest's run state is the hypervisor's to tell; starting and
   * stopping are ours. */
  if (self->state == UVM_VM_STATE_RUNNING || self->state == UVM_VM_STATE_PAUSED)
    uvm_vm_set_state (self, state);
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
  uvm_vm_emit_event (self, event);
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
  uvm_vm_eof_grace (self, &self->control_grace, on_control_grace);
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
void
uvm_vm_note_request_error (UvmVm *self, const GError *error)
{
  if (error->domain == UVM_ERROR &&
      (error->code == UVM_ERROR_HYPERVISOR_DIED || error->code == UVM_ERROR_PROTOCOL ||
       error->code == UVM_ERROR_TIMEOUT))
    control_failed (self, error);
}

const UvmControlSink uvm_vm_control_sink = {
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

/* ---- Helper processes ---------------------------------------------- */

/* A helper exited on its own while the run goes on (its exits at the end
 * of a run are ours, and unwatched): the VM keeps running without that
 * uplink, and the caller hears of it. */
void
uvm_vm_on_helper_exit (int code, int sig, gpointer user_data)
{
  Helper *helper = user_data;
  UvmVm *self = helper->vm;
  g_autoptr(JsonObject) data = json_object_new ();
  g_autoptr(UvmEvent) event = NULL;

  g_debug ("VM '%s': %s of uplink '%s' exited (code %d, signal %d)", self->name, helper->name,
           helper->network, code, sig);
  uvm_child_watch_free (helper->watch);   /* reaped: only closes the pidfd */
  helper->watch = NULL;
  /* passt (and the console relay) end when the hypervisor's end of the
   * pair closes: when the hypervisor is gone already, its exit (about to
   * be reported) is the news. */
  if (self->child == NULL || uvm_child_watch_has_exited (self->child))
    return;
  if (uvm_vm_helper_is_console_relay (helper))
    {
      /* A clean exit is its answer to the hypervisor closing the serial
       * line: the hypervisor is exiting, its exit is the news.  Killed or
       * failed: the guest runs on with its console neither logged nor
       * served. */
      if (code == 0 && sig == 0)
        return;
      json_object_set_int_member (data, "exit-code", code);
      json_object_set_int_member (data, "exit-signal", sig);
      event = uvm_event_new_hypervisor (UVM_EVENT_HYPERVISOR_EVENT, self->state,
                                        "console-relay-exited", data, helper->device_id);
      uvm_vm_emit_event (self, event);
      return;
    }
  json_object_set_string_member (data, "helper", helper->name);
  json_object_set_string_member (data, "network", helper->network);
  json_object_set_string_member (data, "device", helper->device_id);
  json_object_set_int_member (data, "exit-code", code);
  json_object_set_int_member (data, "exit-signal", sig);
  event = uvm_event_new_hypervisor (UVM_EVENT_HYPERVISOR_EVENT, self->state,
                                    "uplink-helper-exited", data, NULL);
  uvm_vm_emit_event (self, event);
}

/* Ends and reaps every helper of the run (see uvm_vm_helper_free()). */
void
uvm_vm_stop_helpers (UvmVm *self)
{
  g_ptr_array_set_size (self->helpers, 0);
}

/* ---- The end of a run ---------------------------------------------- */

/* The files of a run in the runtime dir: removed when stale at start and
 * when the run ends.  Free with g_strfreev(). */
GStrv
uvm_vm_run_files (UvmVm *self)
{
  GStrvBuilder *files = g_strv_builder_new ();
  GStrv out;

  g_strv_builder_add_many (files, CONTROL_NAME, LOG_NAME, UVM_RECORD_NAME, NULL);
  if (self->console_in_rundir)
    g_strv_builder_add (files, CONSOLE_NAME);
  if (uvm_vm_get_console_path (self) != NULL)
    g_strv_builder_add (files, CONSOLE_SOCKET_NAME);
  if (self->helper_files != NULL)
    g_strv_builder_addv (files, (const char **) self->helper_files);
  out = g_strv_builder_end (files);
  g_strv_builder_unref (files);
  return out;
}


/* Releases what a run holds once its process is gone. */
void
uvm_vm_finish_run (UvmVm *self)
{
  uvm_vm_clear_start_plan (self);
  uvm_source_clear (&self->start_timeout);
  uvm_source_clear (&self->start_cancel_source);
  uvm_source_clear (&self->stop_timer);
  uvm_source_clear (&self->control_grace);
  g_clear_object (&self->start_cancellable);
  /* The console log gets the hypervisor's last words before the relay
   * is ended with the other helpers. */
  uvm_vm_drain_console_relay (self);
  uvm_vm_stop_helpers (self);
  {
    g_auto(GStrv) files = uvm_vm_run_files (self);
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

void
uvm_vm_on_child_exit (int code, int sig, gpointer user_data)
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
  uvm_vm_finish_run (self);

  if (self->attach_task != NULL)
    {
      /* Gone while we attached: nothing of it is left to take over. */
      uvm_vm_set_state (self, UVM_VM_STATE_CRASHED);
      uvm_vm_attach_failed (self, g_error_new (UVM_ERROR, UVM_ERROR_NOT_RUNNING,
                                               "its hypervisor exited"));
      return;
    }
  start_task = g_steal_pointer (&self->start_task);
  if (start_task != NULL)
    final = UVM_VM_STATE_CRASHED;
  else if (code == -1 && sig == -1)
    /* Not our child (taken over with uvm_vm_attach): how it ended is
     * unknown; a stop we asked for or a guest that shut down is a stop. */
    final = (self->exit_expected || self->guest_shut_down) && !self->guest_panicked
              ? UVM_VM_STATE_STOPPED : UVM_VM_STATE_CRASHED;
  else if (self->exit_expected)
    final = exit_as_asked (self, code, sig) ? UVM_VM_STATE_STOPPED : UVM_VM_STATE_CRASHED;
  else if (sig == 0 && code == 0 && !self->guest_panicked)
    final = UVM_VM_STATE_STOPPED;   /* the guest powered off */
  else
    final = UVM_VM_STATE_CRASHED;

  event = uvm_event_new_exited (self->state, code, sig);
  uvm_vm_emit_event (self, event);
  uvm_vm_set_state (self, final);

  if (start_task != NULL)
    {
      g_task_return_error (start_task, start_failure_error (self, g_steal_pointer (&self->start_error),
                                                            code, sig, tail));
      g_object_unref (start_task);
    }
  while ((waiter = g_queue_pop_head (&self->waiters)) != NULL)
    waiter_complete (waiter, NULL);
}


void
uvm_vm_sync_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  UvmSyncCall *call = user_data;

  call->result = g_object_ref (result);
}

GAsyncResult *
uvm_vm_sync_call_wait (UvmSyncCall *call)
{
  GMainContext *context = g_main_context_ref_thread_default ();

  while (call->result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_unref (context);
  return call->result;
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
  if (!uvm_vm_control_op_finish (result, &error))
    {
      g_debug ("VM '%s': stop request failed: %s", self->name, error->message);
      uvm_vm_note_request_error (self, error);
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
          uvm_vm_control_op_async (self, UVM_CONTROL_POWER_BUTTON, 0, NULL, on_stop_request_done,
                                   g_object_ref (self));
          break;
        }
      G_GNUC_FALLTHROUGH;
    case STOP_POWER_BUTTON:
      if (control_usable (self))
        {
          self->stop_phase = STOP_QUIT;
          uvm_vm_control_op_async (self, UVM_CONTROL_QUIT, 0, NULL, on_stop_request_done,
                                   g_object_ref (self));
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
  self->stop_timer = uvm_vm_attach_source (g_timeout_source_new (wait_ms), self->context,
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
    waiter->cancel_source = uvm_vm_attach_source (g_cancellable_source_new (cancellable), self->context,
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

  if (!uvm_vm_is_active (vm))
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
      uvm_vm_abort_start (vm, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                    "VM '%s': start cancelled by a stop", vm->name));
      return;
    }
  uvm_vm_set_state (vm, UVM_VM_STATE_STOPPING);
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
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_stop_async (vm, timeout_ms, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_stop_finish (vm, result, error);
}

gboolean
uvm_vm_kill (UvmVm *vm, GError **error)
{
  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  if (!uvm_vm_is_active (vm))
    return uvm_set_error (error, UVM_ERROR_NOT_RUNNING, "VM '%s' has no hypervisor process",
                          vm->name);
  vm->exit_expected = TRUE;
  if (vm->start_task != NULL)
    {
      uvm_vm_abort_start (vm, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
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
  if (!uvm_vm_is_active (vm))
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
  UvmSyncCall call = { NULL };
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
      timer = uvm_vm_attach_source (g_timeout_source_new ((guint) timeout_ms), ctx, on_wait_timeout, inner);
      g_main_context_unref (ctx);
    }
  uvm_vm_wait_async (vm, inner, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
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

