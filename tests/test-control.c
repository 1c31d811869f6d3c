/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control plane seen from a UvmVm: what reaches the caller when the
 * hypervisor refuses, breaks, leaves or stops answering its control
 * connection, and how a run ends when it exits by itself.
 *
 * Most cases run against tests/scripted-qemu, which libuvm starts exactly
 * as it starts qemu and which then misbehaves as UVM_SCRIPTED_QEMU_MODE
 * says; the rest against the real qemu (a SIGSTOPped hypervisor, a bad
 * kernel) and the cloud-hypervisor stand-in (a bad kernel). */
#include "uvm-test-util.h"

#include <signal.h>
#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestBackend, test_backend_free)

/* Short, so that the deadline cases take well under a second each. */
#define SHORT_CONTROL_TIMEOUT_MS 300

typedef struct {
  char *dir;
  EventLog log;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("uvm-control-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->log.events = NULL;
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  event_log_clear (&f->log);
  test_remove_tree (f->dir);
  g_free (f->dir);
  g_unsetenv ("UVM_SCRIPTED_QEMU_MODE");
}

/* A VM of the test guest's definition whose "qemu" is tests/scripted-qemu
 * in @mode. */
static UvmVm *
scripted_vm_new (Fixture *f, const char *name, const char *mode)
{
  g_autofree char *script = g_build_filename (g_getenv ("UVM_TEST_SRCDIR"), "scripted-qemu", NULL);
  UvmVm *vm = test_guest_vm_new (name, f->dir, NULL);

  uvm_vm_set_hypervisor_path (vm, script);
  g_setenv ("UVM_SCRIPTED_QEMU_MODE", mode, TRUE);   /* the child inherits it */
  event_log_attach (&f->log, vm);
  return vm;
}

static gboolean
skip_without_guest (void)
{
  if (test_guest_available ())
    return FALSE;
  g_test_skip ("no test guest (UVM_TEST_GUEST_DIR)");
  return TRUE;
}

static void
assert_no_self_blame (const GError *error)
{
  g_test_message ("error: %s", error->message);
  g_assert_null (strstr (error->message, "signal 9"));
  g_assert_null (strstr (error->message, "killed by signal"));
}

static void
assert_nothing_left (UvmVm *vm)
{
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
}

/* ---- start ------------------------------------------------------------ */

/* Starts @vm, which must fail with @code, blaming no signal of libuvm's
 * and leaving nothing behind; returns the error for the case's own checks. */
static GError *
assert_start_fails (UvmVm *vm, int code)
{
  GError *error = NULL;

  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, code);
  assert_no_self_blame (error);
  assert_nothing_left (vm);
  return error;
}

static void
test_qmp_error_reply_during_start_reaches_caller (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "refused", "refuse-capabilities");
  error = assert_start_fails (vm, UVM_ERROR_HYPERVISOR);
  g_assert_nonnull (strstr (error->message, "scripted refusal"));
  g_assert_nonnull (strstr (error->message, "GenericError"));
  g_assert_nonnull (strstr (error->message, "qmp_capabilities"));
  /* Its log follows the cause. */
  g_assert_nonnull (strstr (error->message, "refused qmp_capabilities"));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_CRASHED);
}

static void
test_self_exit_during_start_reports_code_and_log (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "leaver", "close-after-greeting");
  error = assert_start_fails (vm, UVM_ERROR_START_FAILED);
  g_assert_nonnull (strstr (error->message, "exited with code 3"));
  g_assert_nonnull (strstr (error->message, "closing the QMP socket and exiting with code 3"));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_CRASHED);
}

static void
test_closed_control_socket_during_start_is_named (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int code = -1, sig = -1;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "lingerer", "close-and-linger");
  error = assert_start_fails (vm, UVM_ERROR_START_FAILED);
  g_assert_nonnull (strstr (error->message, "closed its control connection"));
  g_assert_nonnull (strstr (error->message, "stopped by libuvm"));
  g_assert_nonnull (strstr (error->message, "closing the QMP socket; still running"));
  /* The exit status itself stays true to what happened. */
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (sig, ==, SIGKILL);
}

static void
test_peer_that_never_greets_times_out (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "mute", "never-greet");
  uvm_vm_set_control_timeout (vm, SHORT_CONTROL_TIMEOUT_MS);
  t0 = g_get_monotonic_time ();
  error = assert_start_fails (vm, UVM_ERROR_TIMEOUT);
  /* The request deadline, not the start's 30 s. */
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
  g_assert_nonnull (strstr (error->message, "handshake"));
}

/* ---- a running VM ------------------------------------------------------ */

static void
test_unanswered_request_times_out_and_loses_control (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) lost = NULL;
  gint64 t0;
  int index;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "silent", "mute-after-ready");
  uvm_vm_set_control_timeout (vm, SHORT_CONTROL_TIMEOUT_MS);
  test_vm_start_ok (vm);
  g_assert_false (uvm_vm_get_control_lost (vm, NULL));

  g_assert_false (uvm_vm_pause (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_test_message ("pause: %s", error->message);
  g_assert_nonnull (strstr (error->message, "stop"));
  g_clear_error (&error);

  /* Reported at once: the event and the flag. */
  index = event_log_find (&f->log, 0, UVM_EVENT_CONTROL_LOST, 0);
  g_assert_cmpint (index, >=, 0);
  g_assert_true (uvm_vm_get_control_lost (vm, &lost));
  g_assert_error (lost, UVM_ERROR, UVM_ERROR_CONTROL_LOST);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);

  /* Later requests fail fast instead of waiting for another deadline. */
  t0 = g_get_monotonic_time ();
  g_assert_false (uvm_vm_resume (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_CONTROL_LOST);
  g_clear_error (&error);
  g_assert_null (uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_CONTROL_LOST);
  g_clear_error (&error);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, SHORT_CONTROL_TIMEOUT_MS * 1000 / 2);

  /* A stop goes straight to signals: not 60 s of power button. */
  t0 = g_get_monotonic_time ();
  g_assert_true (uvm_vm_stop (vm, 60000, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, (UVM_VM_STOP_GRACE_MS + 1000) * 1000);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  assert_nothing_left (vm);
}

static gboolean
on_deadline (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the default context until an event of @kind was logged or
 * @timeout_ms passed. */
static gboolean
wait_for_event (Fixture *f, UvmEventKind kind, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, on_deadline, &expired);

  while (event_log_find (&f->log, 0, kind, 0) < 0 && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return event_log_find (&f->log, 0, kind, 0) >= 0;
}

static void
test_closed_connection_is_reported_without_a_request (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "closer", "close-after-ready");
  test_vm_start_ok (vm);
  /* Nobody asks anything: the VM still says so. */
  g_assert_true (wait_for_event (f, UVM_EVENT_CONTROL_LOST, 5000));
  g_assert_true (uvm_vm_get_control_lost (vm, NULL));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);

  g_assert_false (uvm_vm_resume (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_CONTROL_LOST);
  g_clear_error (&error);

  t0 = g_get_monotonic_time ();
  g_assert_true (uvm_vm_stop (vm, 60000, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, (UVM_VM_STOP_GRACE_MS + 1000) * 1000);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  assert_nothing_left (vm);
}

static void
test_self_exit_during_stop_is_a_crash (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int code = -1, sig = -1;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "quitter", "exit-on-powerdown");
  test_vm_start_ok (vm);
  g_assert_true (uvm_vm_stop (vm, 10000, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_CRASHED);
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (code, ==, 1);
  g_assert_cmpint (sig, ==, 0);
  g_assert_false (uvm_vm_get_control_lost (vm, NULL));
  assert_nothing_left (vm);
}

static void
test_graceful_stop_of_scripted_peer_is_stopped (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int code = -1, sig = -1;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "polite", "normal");
  test_vm_start_ok (vm);
  g_assert_true (uvm_vm_stop (vm, 10000, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (code, ==, 0);
  /* The power-off, seen through EOF then exit, is no lost connection. */
  g_assert_cmpint (event_log_find (&f->log, 0, UVM_EVENT_CONTROL_LOST, 0), <, 0);
  assert_nothing_left (vm);
}

static void
test_hostile_peer_never_swaps_answers (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_guest ())
    return;
  vm = scripted_vm_new (f, "hostile", "hostile-after-ready");
  uvm_vm_set_control_timeout (vm, 5000);
  test_vm_start_ok (vm);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *version = uvm_vm_qmp_execute (vm, "query-version", NULL, NULL, &error);
      g_autofree char *status = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (strstr (version, "\"package\":\"scripted\""));
      status = uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (strstr (status, "\"status\":\"running\""));
    }
  g_assert_true (uvm_vm_pause (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_resume (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (uvm_vm_get_control_lost (vm, NULL));
  test_vm_stop_ok (vm);
  assert_nothing_left (vm);
}

/* ---- real hypervisors --------------------------------------------------- */

/* A hypervisor that stops answering (SIGSTOP): the request times out,
 * the control connection is lost, and a stop ends it by signals. */
static void
stopped_hypervisor_times_out (Fixture *f, const TestBackend *b)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int code = -1, sig = -1;
  gint64 t0;

  vm = test_guest_vm_new (b, "frozen", f->dir, NULL);
  event_log_attach (&f->log, vm);
  uvm_vm_set_start_paused (vm, TRUE);   /* no guest to run meanwhile */
  uvm_vm_set_control_timeout (vm, SHORT_CONTROL_TIMEOUT_MS);
  test_vm_start_ok (vm);
  g_assert_cmpint (kill (uvm_vm_get_pid (vm), SIGSTOP), ==, 0);

  g_assert_false (uvm_vm_resume (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_test_message ("resume: %s", error->message);
  /* Named: qemu's "cont", cloud-hypervisor's boot of a VM started paused. */
  g_assert_nonnull (strstr (error->message, b->hypervisor == UVM_HYPERVISOR_QEMU ? "cont" : "vm.boot"));
  g_clear_error (&error);
  g_assert_cmpint (event_log_find (&f->log, 0, UVM_EVENT_CONTROL_LOST, 0), >=, 0);

  /* SIGTERM waits on a stopped process; SIGKILL does not. */
  t0 = g_get_monotonic_time ();
  g_assert_true (uvm_vm_stop (vm, 60000, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, (2 * UVM_VM_STOP_GRACE_MS + 1000) * 1000);
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (sig, ==, SIGKILL);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  assert_nothing_left (vm);
}

static void
test_stopped_qemu_times_out_and_stop_uses_signals (Fixture *f, gconstpointer data)
{
  g_autoptr(TestBackend) b = test_backend_new_qemu ();

  if (skip_without_guest ())
    return;
  stopped_hypervisor_times_out (f, b);
}

static void
test_stopped_cloud_hypervisor_times_out_and_stop_uses_signals (Fixture *f, gconstpointer data)
{
  g_autoptr(TestBackend) b = test_backend_new_ch_standin ();

  if (skip_without_guest () || test_backend_skip (b))
    return;
  stopped_hypervisor_times_out (f, b);
}

static void
test_bad_kernel_on_qemu_quotes_qemu (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *junk = g_build_filename (f->dir, "not-a-kernel", NULL);

  if (skip_without_guest ())
    return;
  test_write_file (junk, "this is no kernel\n");
  vm = test_guest_vm_new ("badkernel", f->dir, NULL);
  uvm_vm_set_kernel (vm, junk, NULL, "console=ttyS0");
  error = assert_start_fails (vm, UVM_ERROR_START_FAILED);
  g_assert_nonnull (strstr (error->message, "exited with code 1"));
  /* qemu's own words about the kernel (qemu 7.2: "invalid kernel header"). */
  g_assert_nonnull (strstr (error->message, "kernel"));
  g_assert_nonnull (strstr (error->message, "its log ends with"));
}

/* cloud-hypervisor (the stand-in, or the real one) refuses a bad kernel at
 * vm.boot: its REST error body reaches the caller. */
static void
bad_kernel_quotes_the_vmm (Fixture *f, const TestBackend *b)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *junk = g_build_filename (f->dir, "not-a-kernel", NULL);

  test_write_file (junk, "this is no kernel\n");
  vm = test_guest_vm_new (b, "chbadkernel", f->dir, NULL);
  uvm_vm_set_kernel (vm, junk, NULL, "console=ttyS0");
  error = assert_start_fails (vm, UVM_ERROR_HYPERVISOR);
  /* The VMM's own REST error body, naming the request. */
  g_assert_nonnull (strstr (error->message, "Invalid bzImage"));
  g_assert_nonnull (strstr (error->message, "vm.boot"));
}

static void
test_bad_kernel_on_cloud_hypervisor_standin_quotes_the_vmm (Fixture *f, gconstpointer data)
{
  g_autoptr(TestBackend) b = test_backend_new_ch_standin ();

  if (skip_without_guest () || test_backend_skip (b))
    return;
  bad_kernel_quotes_the_vmm (f, b);
}

/* The same two cases on a real cloud-hypervisor (UVM_TEST_CLOUD_HYPERVISOR,
 * else PATH; skipped without one): only the control plane is involved. */
static void
test_bad_kernel_on_real_cloud_hypervisor_quotes_the_vmm (Fixture *f, gconstpointer data)
{
  g_autoptr(TestBackend) b = test_backend_new_cloud_hypervisor ();

  if (skip_without_guest () || test_backend_skip (b))
    return;
  bad_kernel_quotes_the_vmm (f, b);
}

static void
test_stopped_real_cloud_hypervisor_times_out_and_stop_uses_signals (Fixture *f, gconstpointer data)
{
  g_autoptr(TestBackend) b = test_backend_new_cloud_hypervisor ();

  if (skip_without_guest () || test_backend_skip (b))
    return;
  stopped_hypervisor_times_out (f, b);
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  test_warm_up_glib ();

  ADD ("/control/start/qmp-error-reply-reaches-caller",
       test_qmp_error_reply_during_start_reaches_caller);
  ADD ("/control/start/self-exit-reports-code-and-log",
       test_self_exit_during_start_reports_code_and_log);
  ADD ("/control/start/closed-control-socket-is-named",
       test_closed_control_socket_during_start_is_named);
  ADD ("/control/start/peer-that-never-greets-times-out",
       test_peer_that_never_greets_times_out);
  ADD ("/control/run/unanswered-request-times-out-and-loses-control",
       test_unanswered_request_times_out_and_loses_control);
  ADD ("/control/run/closed-connection-is-reported-without-a-request",
       test_closed_connection_is_reported_without_a_request);
  ADD ("/control/run/self-exit-during-stop-is-a-crash", test_self_exit_during_stop_is_a_crash);
  ADD ("/control/run/graceful-stop-is-stopped", test_graceful_stop_of_scripted_peer_is_stopped);
  ADD ("/control/run/hostile-peer-never-swaps-answers", test_hostile_peer_never_swaps_answers);
  ADD ("/control/qemu/stopped-hypervisor-times-out-and-stop-uses-signals",
       test_stopped_qemu_times_out_and_stop_uses_signals);
  ADD ("/control/qemu/bad-kernel-quotes-qemu", test_bad_kernel_on_qemu_quotes_qemu);
  ADD ("/control/cloud-hypervisor-standin/stopped-hypervisor-times-out-and-stop-uses-signals",
       test_stopped_cloud_hypervisor_times_out_and_stop_uses_signals);
  ADD ("/control/cloud-hypervisor-standin/bad-kernel-quotes-the-vmm",
       test_bad_kernel_on_cloud_hypervisor_standin_quotes_the_vmm);
  ADD ("/control/cloud-hypervisor/bad-kernel-quotes-the-vmm",
       test_bad_kernel_on_real_cloud_hypervisor_quotes_the_vmm);
  ADD ("/control/cloud-hypervisor/stopped-hypervisor-times-out-and-stop-uses-signals",
       test_stopped_real_cloud_hypervisor_times_out_and_stop_uses_signals);
  return g_test_run ();
}
