/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The console of a running guest: interactive through the console relay
 * (uvm_vm_open_console()), always logged to a log that outlives the run,
 * and waited on (uvm_vm_wait_for_console()).  Real qemu under TCG, the
 * cloud-hypervisor stand-in, and a real cloud-hypervisor when present; the
 * test guest runs a shell on its console (uvm.shell=1). */
#include "uvm-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define BOOT_MS 90000
#define ANSWER_MS 30000
#define SHELL_LINE "UVM-GUEST-SHELL"

static void
fixture_setup (TestVmFixture *f, gconstpointer data)
{
  test_vm_fixture_init (f, data, "uvm-console-XXXXXX");
}

/* A VM of the test guest with a shell on its console and its console log
 * in @f's "logs" directory (uvm_vm_set_log_dir()). */
static UvmVm *
shell_vm_new (TestVmFixture *f, const char *name)
{
  g_autofree char *logs = g_build_filename (f->dir, "logs", NULL);
  UvmVm *vm = uvm_vm_new (name, f->b->hypervisor);
  g_autofree char *rundir = g_build_filename (f->dir, "run", name, NULL);

  g_assert_cmpint (g_mkdir_with_parents (logs, 0700), ==, 0);
  uvm_vm_set_kernel (vm, test_guest_kernel (), test_guest_initramfs (),
                     "console=ttyS0 quiet uvm.shell=1");
  uvm_vm_set_accel (vm, f->b->accel);
  uvm_vm_set_memory (vm, 256 * UVM_MIB);
  uvm_vm_set_runtime_dir (vm, rundir);
  if (f->b->binary != NULL)
    uvm_vm_set_hypervisor_path (vm, f->b->binary);
  if (f->b->caller_user)
    uvm_vm_set_user (vm, UVM_USER_CALLER, UVM_USER_CALLER);
  uvm_vm_set_log_dir (vm, logs);
  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  return vm;
}

/* Starts @vm and waits for the guest's shell. */
static void
start_to_shell (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  test_vm_start_ok (vm);
  line = uvm_vm_wait_for_console (vm, SHELL_LINE, BOOT_MS, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
}

static void
write_text (int fd, const char *text)
{
  gsize len = strlen (text);

  while (len > 0)
    {
      ssize_t n = write (fd, text, len);
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      text += n;
      len -= (gsize) n;
    }
}

/* Reads @fd (blocking, with poll() for the deadline) until @text was
 * received; returns everything read.  Fails the test at the deadline. */
static char *
read_until (int fd, const char *text, guint timeout_ms)
{
  GString *got = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;

  while (strstr (got->str, text) == NULL)
    {
      struct pollfd pfd = { fd, POLLIN, 0 };
      int left = (int) ((deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);
      char buf[4096];
      ssize_t n;

      if (left <= 0)
        g_error ("no \"%s\" on the console within %u ms; read:\n%s", text, timeout_ms, got->str);
      if (poll (&pfd, 1, left) <= 0)
        continue;
      n = read (fd, buf, sizeof buf);
      if (n == 0)
        g_error ("the console closed before \"%s\"; read:\n%s", text, got->str);
      if (n > 0)
        g_string_append_len (got, buf, n);
    }
  return g_string_free (got, FALSE);
}

/* The console relays that are children of this process (they are the
 * VMs' helpers, so ours). */
static guint
count_relays (void)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  g_autofree char *me = g_strdup_printf ("%d", (int) getpid ());
  const char *entry;
  guint n = 0;

  while ((entry = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc", entry, "status", NULL);
      g_autofree char *status = NULL;
      g_autofree char *ppid = NULL;

      if (!g_ascii_isdigit (entry[0]) || !g_file_get_contents (path, &status, NULL, NULL))
        continue;
      ppid = test_proc_status_field (atoi (entry), "PPid");
      if (strstr (status, "Name:\tuvm-console-rel") != NULL && g_strcmp0 (ppid, me) == 0)
        n++;
    }
  return n;
}

static void
test_typed_command_is_answered_and_the_log_keeps_the_session (TestVmFixture *f,
                                                               gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *answer = NULL;
  g_autofree char *log = NULL;
  g_autofree char *log_path = NULL;
  int fd;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "typed");
  start_to_shell (vm);
  fd = uvm_vm_open_console (vm, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  g_assert_true (fcntl (fd, F_GETFD) & FD_CLOEXEC);
  write_text (fd, "echo $((6*7))\n");
  /* The answer on a line of its own (the command line itself has no 42). */
  answer = read_until (fd, "\n42\r\n", ANSWER_MS);
  close (fd);
  log_path = g_strdup (uvm_vm_get_console_path (vm));
  test_vm_stop_ok (vm);

  /* After the stop: the whole session, from the boot to the answer. */
  g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
  g_assert_nonnull (strstr (log, "UVM-GUEST-READY"));
  g_assert_nonnull (strstr (log, "echo $((6*7))"));
  g_assert_nonnull (strstr (log, "\n42\r\n"));
  g_assert_true (g_str_has_prefix (log_path, f->dir));
  g_assert_true (g_str_has_suffix (log_path, "/logs/typed-console.log"));
}

static void
test_two_clients_both_read_the_guest (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *first = NULL, *second = NULL;
  int a, b;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "two");
  start_to_shell (vm);
  a = uvm_vm_open_console (vm, &error);
  g_assert_no_error (error);
  b = uvm_vm_open_console (vm, &error);
  g_assert_no_error (error);
  /* Typed through the second, answered to both. */
  write_text (b, "echo two-$((20+1))\n");
  first = read_until (a, "\ntwo-21\r\n", ANSWER_MS);
  second = read_until (b, "\ntwo-21\r\n", ANSWER_MS);
  close (a);
  close (b);
  test_vm_stop_ok (vm);
}

static void
on_event (UvmVm *vm, UvmEvent *event, gpointer user_data)
{
  if (uvm_event_get_kind (event) == UVM_EVENT_CONSOLE_MATCH)
    g_ptr_array_add (user_data, g_strdup (uvm_event_get_data_json (event)));
}

static void
test_wait_matches_a_line_printed_later_and_emits_an_event (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) matches = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *line = NULL;
  gulong handler;
  int fd;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "later");
  start_to_shell (vm);
  handler = uvm_vm_connect_event (vm, on_event, matches, NULL);
  fd = uvm_vm_open_console (vm, &error);
  g_assert_no_error (error);
  /* Printed only after this, by the guest: the typed line does not match
   * (it has "$((3+4))", not "7"). */
  write_text (fd, "echo later-$((3+4))-done\n");
  line = uvm_vm_wait_for_console (vm, "^later-7-done$", ANSWER_MS, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (line, ==, "later-7-done");
  g_assert_cmpuint (matches->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (matches, 0), "later-7-done"));
  uvm_vm_disconnect_event (vm, handler);
  close (fd);
  test_vm_stop_ok (vm);
}

static void
test_wait_finds_output_from_before_the_call (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "before");
  start_to_shell (vm);
  /* READY came before the shell line waited for above. */
  line = uvm_vm_wait_for_console (vm, "UVM-GUEST-READY", 1000, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (line, "UVM-GUEST-READY"));
  test_vm_stop_ok (vm);
}

static void
test_wait_matches_a_prompt_but_dollar_waits_for_the_line_end (TestVmFixture *f,
                                                              gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL, *whole = NULL;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "prompt");
  start_to_shell (vm);
  /* The shell's prompt has no newline: the line being written counts. */
  line = uvm_vm_wait_for_console (vm, "uvm-guest# ", ANSWER_MS, NULL, &error);
  g_assert_no_error (error);
  /* (busybox's line editing asks the terminal for the cursor position,
   * ESC [6n, after the prompt.) */
  g_assert_true (g_str_has_prefix (line, "uvm-guest# "));
  /* `$` is the end of a line, which the prompt's line has not reached. */
  whole = uvm_vm_wait_for_console (vm, "uvm-guest# $", 1000, NULL, &error);
  g_assert_null (whole);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  test_vm_stop_ok (vm);
}

static void
test_wait_times_out (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  gint64 before;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "timeout");
  start_to_shell (vm);
  before = g_get_monotonic_time ();
  line = uvm_vm_wait_for_console (vm, "never-printed-[0-9]", 400, NULL, &error);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_null (line);
  g_assert_cmpint (g_get_monotonic_time () - before, >=, 400 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (g_get_monotonic_time () - before, <, 10000 * G_TIME_SPAN_MILLISECOND);
  test_vm_stop_ok (vm);
}

static void
test_relay_ends_with_the_hypervisor (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *sock = NULL;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "relay");
  start_to_shell (vm);
  g_assert_cmpuint (count_relays (), ==, 1);
  sock = g_strdup (uvm_vm_get_console_socket_path (vm));
  g_assert_true (g_file_test (sock, G_FILE_TEST_EXISTS));
  test_vm_stop_ok (vm);
  g_assert_cmpuint (count_relays (), ==, 0);
  g_assert_false (g_file_test (sock, G_FILE_TEST_EXISTS));
  /* No console to open any more. */
  g_assert_cmpint (uvm_vm_open_console (vm, &error), ==, -1);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_NOT_RUNNING);
}

static void
on_wait_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError **error = user_data;
  g_autofree char *line = uvm_vm_wait_for_console_finish (UVM_VM (source), result, error);

  g_assert_null (line);
  g_assert_nonnull (*error);
}

static void
test_wait_fails_when_the_hypervisor_exits (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  GError *wait_error = NULL;

  SKIP_IF_NO_GUEST (f);
  vm = shell_vm_new (f, "exits");
  start_to_shell (vm);
  uvm_vm_wait_for_console_async (vm, "never-printed", NULL, on_wait_done, &wait_error);
  g_assert_true (uvm_vm_kill (vm, &error));
  g_assert_no_error (error);
  while (wait_error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (wait_error, UVM_ERROR, UVM_ERROR_NOT_RUNNING);
  g_clear_error (&wait_error);
  g_assert_true (test_wait_for_state (vm, UVM_VM_STATE_STOPPED, ANSWER_MS));
}

static void
test_log_dir_must_exist (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (f->dir, "no-such-dir", NULL);

  SKIP_IF_UNAVAILABLE (f);
  vm = shell_vm_new (f, "nodir");
  uvm_vm_set_log_dir (vm, missing);
  g_assert_cmpstr (uvm_vm_get_log_dir (vm), ==, missing);
  g_assert_false (uvm_vm_validate (vm, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_true (g_str_has_prefix (error->message, "log-dir: "));
}

static void
test_wait_refuses_a_pattern_that_does_not_compile (TestVmFixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = shell_vm_new (f, "badpattern");
  line = uvm_vm_wait_for_console (vm, "UVM-(", 1000, NULL, &error);
  g_assert_null (line);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_FAILED);
  g_assert_true (g_str_has_prefix (error->message, "pattern: "));
}

static const TestVmCase cases[] = {
  { "typed-command-is-answered-and-the-log-keeps-the-session",
    test_typed_command_is_answered_and_the_log_keeps_the_session },
  { "two-clients-both-read-the-guest", test_two_clients_both_read_the_guest },
  { "wait-matches-a-line-printed-later-and-emits-an-event",
    test_wait_matches_a_line_printed_later_and_emits_an_event },
  { "wait-finds-output-from-before-the-call", test_wait_finds_output_from_before_the_call },
  { "wait-matches-a-prompt-but-dollar-waits-for-the-line-end",
    test_wait_matches_a_prompt_but_dollar_waits_for_the_line_end },
  { "wait-times-out", test_wait_times_out },
  { "wait-fails-when-the-hypervisor-exits", test_wait_fails_when_the_hypervisor_exits },
  { "relay-ends-with-the-hypervisor", test_relay_ends_with_the_hypervisor },
  { "log-dir-must-exist", test_log_dir_must_exist },
  { "wait-refuses-a-pattern-that-does-not-compile",
    test_wait_refuses_a_pattern_that_does_not_compile },
};

int
main (int argc, char **argv)
{
  TestBackends backends;

  test_vm_suite_init (&argc, &argv, &backends);
  for (TestBackend **b = (TestBackend *[]) { backends.qemu, backends.ch_standin,
                                             backends.cloud_hypervisor, NULL }; *b != NULL; b++)
    test_add_vm_tests ("/console", *b, cases, G_N_ELEMENTS (cases),
                       (GTestFixtureFunc) fixture_setup,
                       (GTestFixtureFunc) test_vm_fixture_teardown);
  return test_vm_suite_run (&backends);
}
