/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lifecycle of real qemu VMs booting the test guest under TCG. */
#include "uvm-test-util.h"

#include <json-glib/json-glib.h>

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BOOT_TIMEOUT_MS 60000

typedef struct {
  char *dir;
  guint fds_before;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("uvm-lifecycle-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->fds_before = test_count_fds ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  test_remove_tree (f->dir);
  g_free (f->dir);
}

static gboolean
skip_without_guest (void)
{
  if (test_guest_available ())
    return FALSE;
  g_test_skip ("no test guest: set UVM_TEST_GUEST_DIR (meson test sets it)");
  return TRUE;
}

static void
assert_gone (UvmVm *vm, int pid, Fixture *f)
{
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
  if (pid > 0)
    {
      /* Reaped: the pid no longer names our child. */
      g_assert_cmpint (waitpid (pid, NULL, WNOHANG), ==, -1);
      g_assert_cmpint (errno, ==, ECHILD);
    }
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
start_and_boot (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_READY, BOOT_TIMEOUT_MS));
}

static void
test_boot_reaches_marker_with_events_in_order (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  EventLog log = { NULL };
  g_autofree char *described = NULL;
  int starting, running, stopping, shutdown, exited, stopped;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("boot", f->dir, NULL);
  event_log_attach (&log, vm);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);

  start_and_boot (vm);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);
  g_assert_cmpint (uvm_vm_get_pid (vm), >, 0);
  g_assert_true (uvm_vm_stop (vm, 20000, NULL, &error));
  g_assert_no_error (error);

  described = event_log_describe (&log);
  g_test_message ("events:\n%s", described);
  starting = event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_STARTING);
  running = event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_RUNNING);
  stopping = event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_STOPPING);
  shutdown = event_log_find (&log, 0, UVM_EVENT_GUEST_SHUTDOWN, 0);
  exited = event_log_find (&log, 0, UVM_EVENT_HYPERVISOR_EXITED, 0);
  stopped = event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_STOPPED);
  g_assert_cmpint (starting, ==, 0);
  g_assert_cmpint (running, ==, 1);
  g_assert_cmpint (stopping, >, running);
  g_assert_cmpint (shutdown, >, stopping);
  g_assert_cmpint (exited, >, shutdown);
  g_assert_cmpint (stopped, ==, (int) log.events->len - 1);
  g_assert_cmpint (stopped, >, exited);
  g_assert_cmpint (uvm_event_get_exit_code (g_ptr_array_index (log.events, exited)), ==, 0);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  event_log_clear (&log);
}

static void
test_graceful_stop_powers_guest_off_within_deadline (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0, elapsed_ms;
  int code = -2, sig = -2, pid;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("graceful", f->dir, NULL);
  start_and_boot (vm);
  pid = uvm_vm_get_pid (vm);

  t0 = g_get_monotonic_time ();
  g_assert_true (uvm_vm_stop (vm, 20000, NULL, &error));
  elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_test_message ("graceful stop took %" G_GINT64_FORMAT " ms", elapsed_ms);
  g_assert_cmpint (elapsed_ms, <, 20000);
  /* The guest saw the button and powered off; qemu exited by itself. */
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_POWEROFF, 1));
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (code, ==, 0);
  g_assert_cmpint (sig, ==, 0);
  g_object_unref (g_steal_pointer (&vm));
  g_assert_cmpint (kill (pid, 0), ==, -1);
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
test_forced_stop_when_guest_ignores_power_button (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  EventLog log = { NULL };
  gint64 t0, elapsed_ms;
  const guint deadline_ms = 1500;
  int pid;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("forced", f->dir, "uvm.powerbutton=ignore");
  event_log_attach (&log, vm);
  start_and_boot (vm);
  pid = uvm_vm_get_pid (vm);

  t0 = g_get_monotonic_time ();
  g_assert_true (uvm_vm_stop (vm, deadline_ms, NULL, &error));
  g_assert_no_error (error);
  elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_test_message ("forced stop took %" G_GINT64_FORMAT " ms", elapsed_ms);
  /* The deadline was honoured, then quit ended it within the grace. */
  g_assert_cmpint (elapsed_ms, >=, deadline_ms);
  g_assert_cmpint (elapsed_ms, <, deadline_ms + UVM_VM_STOP_GRACE_MS);
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_IGNORING, 1));
  g_assert_cmpint (event_log_find (&log, 0, UVM_EVENT_GUEST_SHUTDOWN, 0), ==, -1);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  assert_gone (vm, pid, f);
  event_log_clear (&log);
}

static void
test_forced_stop_without_deadline_is_immediate (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0, elapsed_ms;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("immediate", f->dir, NULL);
  start_and_boot (vm);
  t0 = g_get_monotonic_time ();
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_test_message ("stop without deadline took %" G_GINT64_FORMAT " ms", elapsed_ms);
  g_assert_cmpint (elapsed_ms, <, UVM_VM_STOP_GRACE_MS);
  /* qemu quit on request: the guest never saw a power button. */
  g_assert_false (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_POWEROFF, 1));
  assert_gone (vm, 0, f);
}

static void
test_sigkill_from_outside_is_reported_and_cleaned_up (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  EventLog log = { NULL };
  UvmEvent *exit_event;
  int pid, idx, code = 0, sig = 0;
  g_autofree char *rundir = NULL;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("sigkill", f->dir, NULL);
  event_log_attach (&log, vm);
  start_and_boot (vm);
  pid = uvm_vm_get_pid (vm);
  rundir = g_strdup (uvm_vm_get_runtime_dir (vm));
  g_assert_true (g_file_test (rundir, G_FILE_TEST_IS_DIR));

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_true (uvm_vm_wait (vm, 10000, NULL, &error));
  g_assert_no_error (error);

  idx = event_log_find (&log, 0, UVM_EVENT_HYPERVISOR_EXITED, 0);
  g_assert_cmpint (idx, >=, 0);
  exit_event = g_ptr_array_index (log.events, idx);
  g_assert_cmpint (uvm_event_get_exit_signal (exit_event), ==, SIGKILL);
  g_assert_cmpint (uvm_event_get_exit_code (exit_event), ==, -1);
  g_assert_cmpint (event_log_find (&log, idx, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_CRASHED), >, idx);
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (sig, ==, SIGKILL);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_CRASHED);
  g_assert_false (g_file_test (rundir, G_FILE_TEST_EXISTS));
  assert_gone (vm, pid, f);
  event_log_clear (&log);
}

static void
test_start_failure_quotes_qemu_and_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  const char *const bad[] = { "-definitely-not-an-option", NULL };

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("badarg", f->dir, NULL);
  uvm_vm_set_extra_args (vm, bad);
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_START_FAILED);
  g_test_message ("error: %s", error->message);
  /* qemu's own words, not a guess of ours. */
  g_assert_nonnull (strstr (error->message, "-definitely-not-an-option"));
  g_assert_nonnull (strstr (error->message, "invalid option"));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_CRASHED);
  assert_gone (vm, 0, f);
}

static void
test_exec_failure_is_reported (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *fake = g_build_filename (f->dir, "not-qemu", NULL);

  if (skip_without_guest ())
    return;
  /* Executable bit set, but not something the kernel can run. */
  g_assert_true (g_file_set_contents (fake, "\x7f" "ELF garbage", -1, NULL));
  g_assert_cmpint (g_chmod (fake, 0755), ==, 0);
  vm = test_guest_vm_new ("execfail", f->dir, NULL);
  uvm_vm_set_hypervisor_path (vm, fake);
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_START_FAILED);
  g_assert_nonnull (strstr (error->message, "cannot execute"));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
  assert_gone (vm, 0, f);
}

static void
test_pause_and_resume_change_state (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *status = NULL;
  EventLog log = { NULL };

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("pause", f->dir, NULL);
  event_log_attach (&log, vm);
  start_and_boot (vm);

  g_assert_true (uvm_vm_pause (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_PAUSED);
  status = uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (status, "\"running\":false"));
  g_assert_true (uvm_vm_pause (vm, NULL, &error));   /* idempotent */
  g_assert_no_error (error);

  g_assert_true (uvm_vm_resume (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);
  g_clear_pointer (&status, g_free);
  status = uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, &error);
  g_assert_nonnull (strstr (status, "\"running\":true"));
  g_assert_cmpint (event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_PAUSED), >, 0);

  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  event_log_clear (&log);
}

static void
test_state_change_made_through_raw_qmp_is_seen (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("rawstop", f->dir, NULL);
  start_and_boot (vm);
  reply = uvm_vm_qmp_execute (vm, "stop", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "{}");
  /* qemu's STOP event, not our request, moved the state. */
  g_assert_true (test_wait_for_state (vm, UVM_VM_STATE_PAUSED, 5000));
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
test_raw_qmp_error_carries_class_and_description (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("rawerr", f->dir, NULL);
  start_and_boot (vm);
  reply = uvm_vm_qmp_execute (vm, "no-such-command", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_HYPERVISOR);
  g_assert_nonnull (strstr (error->message, "CommandNotFound"));
  g_clear_error (&error);

  reply = uvm_vm_qmp_execute (vm, "query-status", "[1,2]", NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_clear_error (&error);

  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
test_start_paused_is_ready_paused (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *console = NULL;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("paused", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_PAUSED);
  /* No vCPU ran: nothing on the console yet. */
  g_assert_false (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_READY, 500));
  g_assert_true (uvm_vm_resume (vm, NULL, &error));
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_READY, BOOT_TIMEOUT_MS));
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
test_second_start_of_same_runtime_dir_is_busy (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) a = NULL, b = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_guest ())
    return;
  a = test_guest_vm_new ("twin", f->dir, NULL);
  b = test_guest_vm_new ("twin", f->dir, NULL);
  uvm_vm_set_start_paused (a, TRUE);
  g_assert_true (uvm_vm_start (a, NULL, &error));
  g_assert_false (uvm_vm_start (b, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_clear_error (&error);
  /* Starting a running VM again is refused too. */
  g_assert_false (uvm_vm_start (a, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_clear_error (&error);
  g_assert_true (uvm_vm_stop (a, 0, NULL, &error));
}

static void
test_vm_restarts_after_stop (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int first_pid;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("restart", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  first_pid = uvm_vm_get_pid (vm);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_pid (vm), !=, first_pid);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_PAUSED);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  assert_gone (vm, 0, f);
}

static void
test_dropping_running_vm_kills_it (Fixture *f, gconstpointer data)
{
  UvmVm *vm;
  g_autoptr(GError) error = NULL;
  g_autofree char *rundir = NULL;
  int pid;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("dropped", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  pid = uvm_vm_get_pid (vm);
  rundir = g_strdup (uvm_vm_get_runtime_dir (vm));
  g_object_unref (vm);
  g_assert_cmpint (kill (pid, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  g_assert_false (g_file_test (rundir, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
test_kill_stops_with_sigkill (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int code = 0, sig = 0;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("killed", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_true (uvm_vm_kill (vm, &error));
  g_assert_true (uvm_vm_wait (vm, 5000, NULL, &error));
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (sig, ==, SIGKILL);
  /* Asked for: a stop, not a crash. */
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  g_assert_false (uvm_vm_kill (vm, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_NOT_RUNNING);
}

static void
test_wait_times_out_while_running (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("waiting", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_false (uvm_vm_wait (vm, 200, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_clear_error (&error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_PAUSED);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
on_start_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError **error = user_data;

  g_assert_false (uvm_vm_start_finish (UVM_VM (source), result, error));
}

static void
test_stop_during_start_cancels_the_start (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) start_error = NULL, error = NULL;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("stopstart", f->dir, NULL);
  uvm_vm_start_async (vm, NULL, on_start_done, &start_error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STARTING);
  g_assert_true (uvm_vm_stop (vm, 5000, NULL, &error));
  g_assert_no_error (error);
  while (start_error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (start_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  assert_gone (vm, 0, f);
}

static void
test_guest_panic_is_reported (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  EventLog log = { NULL };
  gint64 deadline;

  if (skip_without_guest ())
    return;
  vm = test_guest_vm_new ("panic", f->dir, "uvm.panic=1");
  event_log_attach (&log, vm);
  start_and_boot (vm);
  deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (event_log_find (&log, 0, UVM_EVENT_GUEST_PANIC, 0) < 0 && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (10000);
  g_assert_cmpint (event_log_find (&log, 0, UVM_EVENT_GUEST_PANIC, 0), >=, 0);
  /* With -no-reboot qemu powers a panicked guest off: an exit nobody
   * asked for, after a panic, is a crash even with exit code 0. */
  g_assert_true (uvm_vm_wait (vm, 30000, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_CRASHED);
  event_log_clear (&log);
}

static void
test_microvm_boots_and_powers_off (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int code = -1;

  if (skip_without_guest ())
    return;
  /* microvm has no HPET or ACPI PM timer, and under TCG on a busy host
   * the kernel's PIT calibration of the TSC sometimes fails and boot
   * hangs (seen 1-2 in 10 boots of plain qemu, without libuvm): give the
   * kernel the TSC rate so that it does not calibrate. */
  vm = test_guest_vm_new ("micro", f->dir, "tsc_early_khz=2000000");
  uvm_vm_set_machine (vm, UVM_MACHINE_MICROVM);
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  start_and_boot (vm);
  g_assert_true (uvm_vm_stop (vm, 20000, NULL, &error));
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_POWEROFF, 1));
  g_assert_true (uvm_vm_get_exit_status (vm, &code, NULL));
  g_assert_cmpint (code, ==, 0);
}

static void
test_isolated_link_carries_ping_between_two_vms (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL;
  g_autoptr(UvmVm) a = NULL, b = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0;

  if (skip_without_guest ())
    return;
  link = uvm_network_new_isolated ("test-link");
  a = test_guest_vm_new ("link-a", f->dir, "uvm.ip=10.99.0.1/24 uvm.ping=10.99.0.2");
  b = test_guest_vm_new ("link-b", f->dir, "uvm.ip=10.99.0.2/24 uvm.ping=10.99.0.1");
  uvm_vm_add_device (a, uvm_device_new_net (link, NULL));
  uvm_vm_add_device (b, uvm_device_new_net (link, NULL));

  t0 = g_get_monotonic_time ();
  g_assert_true (uvm_vm_start (a, NULL, &error));
  g_assert_true (uvm_vm_start (b, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (a), "UVM-PING-OK 10.99.0.2", BOOT_TIMEOUT_MS));
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (b), "UVM-PING-OK 10.99.0.1", BOOT_TIMEOUT_MS));
  g_test_message ("both pings answered %" G_GINT64_FORMAT " ms after start",
                  (g_get_monotonic_time () - t0) / 1000);
  g_assert_true (uvm_vm_stop (a, 0, NULL, &error));
  g_assert_true (uvm_vm_stop (b, 0, NULL, &error));
  g_clear_object (&a);
  g_clear_object (&b);
  g_clear_object (&link);   /* the network holds the socket pair until here */
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
test_devices_reach_qemu_with_their_ids_and_modes (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");
  g_autofree char *ro_path = g_build_filename (f->dir, "base.img", NULL);
  g_autofree char *rw_path = g_build_filename (f->dir, "scratch.img", NULL);
  g_autoptr(UvmStorage) ro = uvm_storage_new_image (ro_path);
  g_autoptr(UvmStorage) rw = uvm_storage_new_image (rw_path);
  g_autofree char *peripherals = NULL, *blocks = NULL;
  g_autoptr(JsonNode) block_node = NULL;
  JsonArray *block_list;
  gboolean seen_ro = FALSE, seen_rw = FALSE;
  GStatBuf st;

  if (skip_without_guest ())
    return;
  g_assert_true (g_file_set_contents (ro_path, "read-only base", -1, NULL));
  uvm_storage_set_read_only (ro, TRUE);
  uvm_storage_set_create_size (rw, 64 * UVM_MIB);
  vm = test_guest_vm_new ("devices", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  uvm_vm_add_device (vm, uvm_device_new_disk (ro));
  uvm_vm_add_device (vm, uvm_device_new_disk (rw));
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);

  /* The image asked for was created sparse, at its size. */
  g_assert_cmpint (g_stat (rw_path, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, 64 * UVM_MIB);
  g_assert_cmpint (st.st_blocks * 512, <, 1 * UVM_MIB);

  /* qemu itself reports the devices under the ids of the definition. */
  peripherals = uvm_vm_qmp_execute (vm, "qom-list", "{\"path\":\"/machine/peripheral\"}", NULL, &error);
  g_assert_no_error (error);
  for (const char *const *id = (const char *const[]) { "\"rng0\"", "\"disk0\"", "\"disk1\"", "\"net0\"", NULL }; *id; id++)
    g_assert_nonnull (strstr (peripherals, *id));

  blocks = uvm_vm_qmp_execute (vm, "query-block", NULL, NULL, &error);
  g_assert_no_error (error);
  block_node = json_from_string (blocks, NULL);
  g_assert_nonnull (block_node);
  block_list = json_node_get_array (block_node);
  for (guint i = 0; i < json_array_get_length (block_list); i++)
    {
      JsonObject *dev = json_array_get_object_element (block_list, i);
      JsonObject *inserted = json_object_get_object_member (dev, "inserted");
      const char *file = json_object_get_string_member (inserted, "file");
      gboolean read_only = json_object_get_boolean_member (inserted, "ro");

      if (g_str_equal (file, ro_path))
        seen_ro = read_only;
      else if (g_str_equal (file, rw_path))
        seen_rw = !read_only;
    }
  g_assert_true (seen_ro);
  g_assert_true (seen_rw);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
test_uplink_gateway_answers_ping (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_guest ())
    return;
  /* 10.0.2.2 is qemu's user-mode gateway, answered inside qemu: no packet
   * leaves the machine. */
  vm = test_guest_vm_new ("uplink", f->dir, "uvm.ip=10.0.2.15/24 uvm.ping=10.0.2.2");
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  start_and_boot (vm);
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (vm), "UVM-PING-OK 10.0.2.2", BOOT_TIMEOUT_MS));
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static char *
proc_file (int pid, const char *name)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/%s", pid, name);
  char *contents = NULL;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  return contents;
}

static void
test_child_gets_only_its_fds_and_a_safe_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *fd_dir = NULL, *status = NULL, *limits = NULL, *stat = NULL;
  g_autofree char *leak_target = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;
  int leaked[2], pid;
  GStatBuf st;

  if (skip_without_guest ())
    return;
  /* A careless host program: a pipe without O_CLOEXEC. */
  g_assert_cmpint (pipe (leaked), ==, 0);
  g_assert_cmpint (fstat (leaked[0], &st), ==, 0);
  leak_target = g_strdup_printf ("pipe:[%lu]", (unsigned long) st.st_ino);

  vm = test_guest_vm_new ("childsetup", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  pid = uvm_vm_get_pid (vm);

  fd_dir = g_strdup_printf ("/proc/%d/fd", pid);
  dir = g_dir_open (fd_dir, 0, NULL);
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link = g_build_filename (fd_dir, name, NULL);
      g_autofree char *target = g_file_read_link (link, NULL);
      int fd = atoi (name);

      g_assert_nonnull (target);
      g_assert_cmpstr (target, !=, leak_target);
      if (fd == 0)
        g_assert_cmpstr (target, ==, "/dev/null");
      else if (fd == 1 || fd == 2)
        g_assert_cmpstr (target, ==, uvm_vm_get_log_path (vm));
    }

  status = proc_file (pid, "status");
  g_assert_nonnull (strstr (status, "NoNewPrivs:\t1"));
  limits = proc_file (pid, "limits");
  g_assert_true (g_regex_match_simple ("Max core file size +0 +0 ", limits, 0, 0));
  /* Its own session: field 6 of stat is the session id (after "(comm)"). */
  stat = proc_file (pid, "stat");
  {
    g_auto(GStrv) fields = g_strsplit (strrchr (stat, ')') + 2, " ", -1);
    g_assert_cmpint (atoi (fields[3]), ==, pid);
  }
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  close (leaked[0]);
  close (leaked[1]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add ("/qemu/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("boot-reaches-marker-with-events-in-order", test_boot_reaches_marker_with_events_in_order);
  ADD ("graceful-stop-powers-guest-off-within-deadline", test_graceful_stop_powers_guest_off_within_deadline);
  ADD ("forced-stop-when-guest-ignores-power-button", test_forced_stop_when_guest_ignores_power_button);
  ADD ("forced-stop-without-deadline-is-immediate", test_forced_stop_without_deadline_is_immediate);
  ADD ("sigkill-from-outside-is-reported-and-cleaned-up", test_sigkill_from_outside_is_reported_and_cleaned_up);
  ADD ("start-failure-quotes-qemu-and-leaves-nothing", test_start_failure_quotes_qemu_and_leaves_nothing);
  ADD ("exec-failure-is-reported", test_exec_failure_is_reported);
  ADD ("pause-and-resume-change-state", test_pause_and_resume_change_state);
  ADD ("state-change-made-through-raw-qmp-is-seen", test_state_change_made_through_raw_qmp_is_seen);
  ADD ("raw-qmp-error-carries-class-and-description", test_raw_qmp_error_carries_class_and_description);
  ADD ("start-paused-is-ready-paused", test_start_paused_is_ready_paused);
  ADD ("second-start-of-same-runtime-dir-is-busy", test_second_start_of_same_runtime_dir_is_busy);
  ADD ("vm-restarts-after-stop", test_vm_restarts_after_stop);
  ADD ("dropping-running-vm-kills-it", test_dropping_running_vm_kills_it);
  ADD ("kill-stops-with-sigkill", test_kill_stops_with_sigkill);
  ADD ("wait-times-out-while-running", test_wait_times_out_while_running);
  ADD ("stop-during-start-cancels-the-start", test_stop_during_start_cancels_the_start);
  ADD ("guest-panic-is-reported", test_guest_panic_is_reported);
  ADD ("microvm-boots-and-powers-off", test_microvm_boots_and_powers_off);
  ADD ("isolated-link-carries-ping-between-two-vms", test_isolated_link_carries_ping_between_two_vms);
  ADD ("devices-reach-qemu-with-their-ids-and-modes", test_devices_reach_qemu_with_their_ids_and_modes);
  ADD ("uplink-gateway-answers-ping", test_uplink_gateway_answers_ping);
  ADD ("child-gets-only-its-fds-and-a-safe-setup", test_child_gets_only_its_fds_and_a_safe_setup);
#undef ADD
  return g_test_run ();
}
