/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-test-util.h"

#include <json-glib/json-glib.h>

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#ifdef UVM_COMPILATION
#include "backend-test/uvm-backend-qemu-minimal.h"
#endif

static char *guest_kernel, *guest_initramfs;

gboolean
test_guest_available (void)
{
  const char *dir = g_getenv ("UVM_TEST_GUEST_DIR");

  if (guest_kernel != NULL)
    return TRUE;
  if (dir == NULL)
    return FALSE;
  guest_kernel = g_build_filename (dir, "vmlinuz", NULL);
  guest_initramfs = g_build_filename (dir, "initramfs.img", NULL);
  if (!g_file_test (guest_kernel, G_FILE_TEST_IS_REGULAR) ||
      !g_file_test (guest_initramfs, G_FILE_TEST_IS_REGULAR))
    {
      g_clear_pointer (&guest_kernel, g_free);
      g_clear_pointer (&guest_initramfs, g_free);
      return FALSE;
    }
  return TRUE;
}

const char *
test_guest_kernel (void)
{
  return guest_kernel;
}

const char *
test_guest_initramfs (void)
{
  return guest_initramfs;
}

TestBackend *
test_backend_new_qemu (void)
{
  TestBackend *b = g_new0 (TestBackend, 1);

  b->hypervisor = UVM_HYPERVISOR_QEMU;
  b->name = uvm_hypervisor_to_string (b->hypervisor);
  b->accel = UVM_ACCEL_TCG;   /* plain guests hang under this host's KVM */
  return b;
}

#ifdef UVM_COMPILATION
/* Only in the copy of this file built on the internal library
 * (test_util_internal in tests/meson.build): the backend table is not
 * exported from libuvm.so. */
TestBackend *
test_backend_new_qemu_minimal (void)
{
  TestBackend *b = g_new0 (TestBackend, 1);

  test_backend_qemu_minimal_register ();
  b->name = TEST_QEMU_MINIMAL_NAME;
  b->hypervisor = TEST_HYPERVISOR_QEMU_MINIMAL;
  b->accel = UVM_ACCEL_TCG;   /* the only one it supports */
  return b;
}
#endif

TestBackend *
test_backend_new_ch_standin (void)
{
  TestBackend *b = g_new0 (TestBackend, 1);
  const char *path = g_getenv ("UVM_TEST_CH_STANDIN");

  b->name = "cloud-hypervisor-standin";
  b->hypervisor = UVM_HYPERVISOR_CLOUD_HYPERVISOR;
  b->accel = UVM_ACCEL_AUTO;  /* the backend refuses TCG */
  if (path == NULL || *path == '\0')
    b->skip_reason = g_strdup ("no cloud-hypervisor stand-in: set UVM_TEST_CH_STANDIN "
                               "(meson test sets it)");
  else
    b->binary = g_strdup (path);
  return b;
}

TestBackend *
test_backend_new_cloud_hypervisor (void)
{
  TestBackend *b = g_new0 (TestBackend, 1);
  const char *path = g_getenv ("UVM_TEST_CLOUD_HYPERVISOR");
  struct stat st;

  b->hypervisor = UVM_HYPERVISOR_CLOUD_HYPERVISOR;
  b->name = uvm_hypervisor_to_string (b->hypervisor);
  b->accel = UVM_ACCEL_AUTO;
  if (path != NULL && *path != '\0')
    b->binary = g_strdup (path);
  else
    b->binary = g_find_program_in_path ("cloud-hypervisor");
  if (b->binary == NULL)
    b->skip_reason = g_strdup ("no cloud-hypervisor binary: set UVM_TEST_CLOUD_HYPERVISOR or put "
                               "it on PATH");
  else if (access ("/dev/kvm", R_OK | W_OK) != 0)
    b->skip_reason = g_strdup_printf ("cloud-hypervisor (%s) needs /dev/kvm, which is not "
                                      "usable here", b->binary);
  else if (stat ("/dev/kvm", &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)) != (S_IROTH | S_IWOTH))
    {
      /* The default per-VM user is neither the owner nor in the group:
       * cloud-hypervisor would exit at once with "Failed to open hypervisor
       * interface ... Permission denied (os error 13)". */
      b->caller_user = TRUE;
      g_test_message ("cloud-hypervisor (%s): /dev/kvm is %s %u:%u mode %04o, closed to the "
                      "per-VM user; the hypervisor runs as the caller (UVM_USER_CALLER)",
                      b->binary, S_ISCHR (st.st_mode) ? "a device" : "a file",
                      (guint) st.st_uid, (guint) st.st_gid, (guint) (st.st_mode & 07777));
    }
  return b;
}

/* How long the probe waits for the guest's first words: a guest that runs
 * prints them in about 2 s under TCG, well under a second on KVM. */
#define PROBE_TIMEOUT_MS 20000
#define GUEST_SKIP_ENV "UVM_TEST_CH_GUEST_SKIP"

/* A hypervisor's error as one line for a skip reason (TAP keeps one line):
 * from cloud-hypervisor's own "Error: ..." chain when it is there (its log
 * has a backtrace before it), whitespace runs made one space. */
static char *
one_line_error (const char *message)
{
  const char *chain = strstr (message, "Error: Cloud Hypervisor exited");
  g_autofree char *head = chain ? g_strndup (message, strcspn (message, "\n")) : NULL;
  g_autofree char *text = chain ? g_strconcat (head, " ", chain, NULL) : g_strdup (message);
  g_auto(GStrv) words = g_strsplit_set (text, " \t\n", -1);
  GString *out = g_string_new (NULL);

  for (guint i = 0; words[i] != NULL; i++)
    if (*words[i] != '\0')
      g_string_append_printf (out, "%s%s", out->len ? " " : "", words[i]);
  return g_string_free (out, FALSE);
}

/* What the hypervisor says when started as the per-VM user (the default),
 * kept as the reason to skip the tests of that user; quick: it fails at
 * once or is stopped before it boots anything. */
static void
probe_own_user (TestBackend *backend)
{
  g_autofree char *dir = g_dir_make_tmp ("uvm-user-probe-XXXXXX", NULL);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (dir);
  vm = test_guest_vm_new_on (backend, "userprobe", dir, NULL);
  uvm_vm_set_user (vm, UVM_USER_DYNAMIC, UVM_USER_DYNAMIC);
  uvm_vm_set_start_paused (vm, TRUE);
  if (!uvm_vm_start (vm, NULL, &error))
    {
      g_autofree char *said = one_line_error (error->message);

      backend->user_skip_reason = g_strdup_printf ("%s cannot run as the per-VM user here: %s",
                                                   backend->binary, said);
    }
  else
    {
      backend->user_skip_reason = g_strdup_printf ("%s started as the per-VM user, but the "
                                                   "suite runs it as the caller", backend->binary);
      uvm_vm_stop (vm, 0, NULL, NULL);
    }
  g_clear_object (&vm);
  test_remove_tree (dir);
  g_test_message ("%s", backend->user_skip_reason);
}

void
test_backend_probe_guest (TestBackend *backend)
{
  g_autofree char *dir = NULL;
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL, *ping = NULL, *version = NULL, *state = NULL;
  guint status = 0;

  if (backend->skip_reason != NULL || backend->guest_skip_reason != NULL ||
      !test_guest_available ())
    return;
  if (backend->caller_user)
    probe_own_user (backend);
  /* A test's subprocess inherits the parent's finding instead of probing. */
  if (g_getenv (GUEST_SKIP_ENV) != NULL)
    {
      if (*g_getenv (GUEST_SKIP_ENV) != '\0')
        backend->guest_skip_reason = g_strdup (g_getenv (GUEST_SKIP_ENV));
      return;
    }
  dir = g_dir_make_tmp ("uvm-guest-probe-XXXXXX", NULL);
  g_assert_nonnull (dir);
  vm = test_guest_vm_new_on (backend, "probe", dir, NULL);
  if (!uvm_vm_start (vm, NULL, &error))
    {
      /* The hypervisor's own words (vm.boot's error body, its log). */
      g_autofree char *said = one_line_error (error->message);

      backend->guest_skip_reason = g_strdup_printf ("%s refuses the test guest here: %s",
                                                    backend->binary, said);
      test_remove_tree (dir);
      return;
    }
  ping = uvm_vm_ch_request (vm, "GET", "vmm.ping", NULL, &status, NULL, NULL);
  if (ping != NULL)
    {
      g_autoptr(JsonNode) node = json_from_string (ping, NULL);

      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        version = g_strdup (json_object_get_string_member_with_default (json_node_get_object (node),
                                                                        "build_version", NULL));
    }
  if (!test_vm_wait_for_text (vm, GUEST_READY, PROBE_TIMEOUT_MS))
    {
      reply = uvm_vm_ch_request (vm, "GET", "vm.info", NULL, &status, NULL, NULL);
      if (reply != NULL)
        {
          g_autoptr(JsonNode) node = json_from_string (reply, NULL);

          if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
            state = g_strdup (json_object_get_string_member_with_default (json_node_get_object (node),
                                                                          "state", NULL));
        }
      backend->guest_skip_reason =
        g_strdup_printf ("the test guest does not run on %s (%s) here: vm.boot succeeded and "
                         "vm.info says \"%s\", but the serial console stayed empty for %u s "
                         "(this host's KVM runs no ordinary guest)", backend->binary,
                         version ? version : "version unknown", state ? state : "(no answer)",
                         PROBE_TIMEOUT_MS / 1000);
    }
  uvm_vm_stop (vm, 0, NULL, NULL);
  g_clear_object (&vm);
  test_remove_tree (dir);
  if (backend->guest_skip_reason != NULL)
    g_test_message ("%s", backend->guest_skip_reason);
  g_setenv (GUEST_SKIP_ENV, backend->guest_skip_reason ? backend->guest_skip_reason : "", TRUE);
}

gboolean
test_backend_skip_own_user (const TestBackend *backend)
{
  if (test_backend_skip (backend))
    return TRUE;
  if (backend->caller_user)
    {
      g_test_skip (backend->user_skip_reason ? backend->user_skip_reason
                                             : "the hypervisor runs as the caller here");
      return TRUE;
    }
  return FALSE;
}

gboolean
test_backend_skip_guest (const TestBackend *backend)
{
  if (test_backend_skip (backend))
    return TRUE;
  if (backend->guest_skip_reason != NULL)
    {
      g_test_skip (backend->guest_skip_reason);
      return TRUE;
    }
  return FALSE;
}

void
test_backend_free (TestBackend *backend)
{
  if (backend == NULL)
    return;
  g_free (backend->binary);
  g_free (backend->skip_reason);
  g_free (backend->guest_skip_reason);
  g_free (backend->user_skip_reason);
  g_free (backend);
}

gboolean
test_backend_skip (const TestBackend *backend)
{
  if (backend->skip_reason != NULL)
    {
      g_test_skip (backend->skip_reason);
      return TRUE;
    }
  if (!test_guest_available ())
    {
      g_test_skip ("no test guest: set UVM_TEST_GUEST_DIR (meson test sets it)");
      return TRUE;
    }
  return FALSE;
}

gboolean
test_backend_skip_cb (gconstpointer backend)
{
  return test_backend_skip (backend);
}

UvmVm *
test_guest_vm_new_on (const TestBackend *backend, const char *name, const char *dir,
                      const char *cmdline_extra)
{
  UvmVm *vm = uvm_vm_new (name, backend->hypervisor);
  g_autofree char *rundir = g_build_filename (dir, "run", name, NULL);
  g_autofree char *console = test_console_path (dir, name);
  g_autofree char *cmdline = g_strdup_printf ("console=ttyS0 quiet%s%s",
                                              cmdline_extra ? " " : "",
                                              cmdline_extra ? cmdline_extra : "");

  /* The same bzImage for every backend: cloud-hypervisor boots bzImage
   * directly (again) since v39; the stand-in only checks that it is one. */
  uvm_vm_set_kernel (vm, test_guest_kernel (), test_guest_initramfs (), cmdline);
  uvm_vm_set_accel (vm, backend->accel);
  uvm_vm_set_memory (vm, 256 * UVM_MIB);
  uvm_vm_set_runtime_dir (vm, rundir);
  if (backend->binary != NULL)
    uvm_vm_set_hypervisor_path (vm, backend->binary);
  if (backend->caller_user)
    uvm_vm_set_user (vm, UVM_USER_CALLER, UVM_USER_CALLER);
  uvm_vm_add_device (vm, uvm_device_new_console (console));
  return vm;
}

UvmVm *
test_guest_vm_new_qemu (const char *name, const char *dir, const char *cmdline_extra)
{
  static TestBackend *qemu;

  if (qemu == NULL)
    qemu = test_backend_new_qemu ();
  return test_guest_vm_new_on (qemu, name, dir, cmdline_extra);
}

UvmVm *
test_member_new (const TestBackend *backend, const char *dir, const char *name, UvmNetwork *net,
                 const char *cmdline_extra)
{
  UvmVm *vm;

  g_assert_true (test_guest_available ());
  vm = test_guest_vm_new_on (backend, name, dir, cmdline_extra);
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  return vm;
}

char *
test_plan_name (UvmVm *vm, const char *marker)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = uvm_vm_get_launch_plan (vm, &error);
  const char *p, *end;

  g_assert_no_error (error);
  p = strstr (plan, marker);
  if (p == NULL)
    g_error ("no \"%s\" in the plan:\n%s", marker, plan);
  p += strlen (marker);
  end = strchr (p, '\'');
  g_assert_nonnull (end);
  return g_strndup (p, end - p);
}

char *
test_bridge_of (UvmVm *vm)
{
  return test_plan_name (vm, "on bridge '");
}

char *
test_tap_of (UvmVm *vm)
{
  return test_plan_name (vm, ": tap '");
}

char *
test_console_path (const char *dir, const char *name)
{
  return g_strdup_printf ("%s/%s.console", dir, name);
}

void
test_assert_console (const char *dir, const char *name, const char *text, guint timeout_ms)
{
  g_autofree char *console = test_console_path (dir, name);
  g_autofree char *contents = NULL;

  if (!test_wait_for_text (console, text, timeout_ms))
    {
      g_file_get_contents (console, &contents, NULL, NULL);
      g_error ("%s: no \"%s\" on the console:\n%s", name, text, contents ? contents : "");
    }
}

static gboolean
on_timeout (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
on_tick (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

gboolean
test_wait_for_text (const char *path, const char *text, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, on_timeout, &expired);
  /* The console is a file qemu writes: look again every 20 ms while
   * letting the VM's sources run. */
  guint tick = g_timeout_add (20, on_tick, NULL);
  gboolean found = FALSE;

  while (!expired)
    {
      g_autofree char *contents = NULL;

      if (g_file_get_contents (path, &contents, NULL, NULL) && strstr (contents, text))
        {
          found = TRUE;
          break;
        }
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (tick);
  if (!expired)
    g_source_remove (id);
  return found;
}

gboolean
test_vm_wait_for_text (UvmVm *vm, const char *text, guint timeout_ms)
{
  g_autofree char *escaped = g_regex_escape_string (text, -1);
  /* Whole lines, as a test reading the log after the match expects. */
  g_autofree char *pattern = g_strconcat (escaped, ".*$", NULL);
  g_autofree char *line = NULL;
  g_autoptr(GError) error = NULL;

  line = uvm_vm_wait_for_console (vm, pattern, timeout_ms, NULL, &error);
  if (line != NULL)
    return TRUE;
  {
    g_autofree char *log = NULL;

    g_file_get_contents (uvm_vm_get_console_path (vm), &log, NULL, NULL);
    g_test_message ("waiting for \"%s\" on the console of '%s': %s; the console log:\n%s",
                    text, uvm_vm_get_name (vm), error->message, log ? log : "(unreadable)");
  }
  if (g_error_matches (error, UVM_ERROR, UVM_ERROR_TIMEOUT))
    return FALSE;
  /* Not running (any more): what it wrote is in the log. */
  return test_wait_for_text (uvm_vm_get_console_path (vm), text, 1);
}

gboolean
test_wait_for_state (UvmVm *vm, UvmVmState state, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, on_timeout, &expired);

  while (!expired && uvm_vm_get_state (vm) != state)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return uvm_vm_get_state (vm) == state;
}

void
test_remove_tree (const char *path)
{
  GStatBuf st;

  if (g_lstat (path, &st) != 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      g_assert_nonnull (dir);
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          test_remove_tree (child);
        }
      g_assert_no_errno (g_rmdir (path));
    }
  else
    g_assert_no_errno (g_unlink (path));
}

void
test_write_file (const char *path, const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

char *
test_proc_status_field (int pid, const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree char *status = NULL, *key = g_strdup_printf ("\n%s:\t", field);
  const char *p, *end;

  g_assert_true (g_file_get_contents (path, &status, NULL, NULL));
  p = strstr (status, key);
  if (p == NULL)
    return NULL;
  p += strlen (key);
  end = strchr (p, '\n');
  return g_strndup (p, end ? (gsize) (end - p) : strlen (p));
}

guint
test_count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (g_dir_read_name (dir) != NULL)
    n++;
  return n - 1;   /* the GDir's own fd */
}

static void
on_event (UvmVm *vm, UvmEvent *event, gpointer user_data)
{
  EventLog *log = user_data;

  g_ptr_array_add (log->events, uvm_event_ref (event));
}

static void
free_event (gpointer event)
{
  uvm_event_unref (event);
}

void
event_log_attach (EventLog *log, UvmVm *vm)
{
  if (log->events == NULL)
    log->events = g_ptr_array_new_with_free_func (free_event);
  uvm_vm_connect_event (vm, on_event, log, NULL);
}

void
event_log_clear (EventLog *log)
{
  g_clear_pointer (&log->events, g_ptr_array_unref);
}

int
event_log_find (EventLog *log, guint from, UvmEventKind kind, UvmVmState state)
{
  for (guint i = from; log->events && i < log->events->len; i++)
    {
      UvmEvent *ev = g_ptr_array_index (log->events, i);
      if (uvm_event_get_kind (ev) != kind)
        continue;
      if (kind == UVM_EVENT_STATE_CHANGED && uvm_event_get_state (ev) != state)
        continue;
      return (int) i;
    }
  return -1;
}

int
event_log_find_name (EventLog *log, guint from, const char *name)
{
  for (guint i = from; log->events && i < log->events->len; i++)
    if (g_strcmp0 (uvm_event_get_name (g_ptr_array_index (log->events, i)), name) == 0)
      return (int) i;
  return -1;
}

char *
event_log_describe (EventLog *log)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; log->events && i < log->events->len; i++)
    {
      g_autofree char *s = uvm_event_to_string (g_ptr_array_index (log->events, i));
      g_string_append_printf (out, "  %u: %s\n", i, s);
    }
  return g_string_free (out, FALSE);
}

char *
event_log_states (EventLog *log)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; log->events && i < log->events->len; i++)
    {
      UvmEvent *ev = g_ptr_array_index (log->events, i);

      if (uvm_event_get_kind (ev) != UVM_EVENT_STATE_CHANGED)
        continue;
      if (out->len > 0)
        g_string_append_c (out, ',');
      g_string_append (out, uvm_vm_state_to_string (uvm_event_get_state (ev)));
    }
  return g_string_free (out, FALSE);
}

void
test_warm_up_glib (void)
{
  g_type_ensure (G_TYPE_TASK);
  (void) g_main_context_default ();
}

void
test_vm_fixture_init (TestVmFixture *f, const TestBackend *backend, const char *tmpl)
{
  f->b = backend;
  f->dir = g_dir_make_tmp (tmpl, NULL);
  g_assert_nonnull (f->dir);
  f->fds_before = test_count_fds ();
}

void
test_vm_fixture_clear (TestVmFixture *f)
{
  test_remove_tree (f->dir);
  g_free (f->dir);
}

void
test_vm_fixture_teardown (TestVmFixture *f, gconstpointer data)
{
  test_vm_fixture_clear (f);
}

void
test_vm_start_ok (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;
  gboolean started = uvm_vm_start (vm, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (started);
}

void
test_vm_start_and_boot (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  test_vm_start_ok (vm);
  line = uvm_vm_wait_for_console (vm, GUEST_READY, 60000, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (line, GUEST_READY));
}

void
test_vm_start_and_boot_on (const TestBackend *backend, UvmVm *vm)
{
  if (backend->guest_skip_reason == NULL)
    {
      test_vm_start_and_boot (vm);
      return;
    }
  test_vm_start_ok (vm);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);
  g_test_message ("console not checked: %s", backend->guest_skip_reason);
}

void
test_vm_stop_ok (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  g_assert_no_error (error);
}

void
test_add_vm_tests (const char *prefix, const TestBackend *backend,
                   const TestVmCase *tests, gsize n_tests,
                   GTestFixtureFunc setup, GTestFixtureFunc teardown)
{
  for (gsize i = 0; i < n_tests; i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/%s/%s", prefix, backend->name, tests[i].path);

      g_test_add_vtable (path, sizeof (TestVmFixture), backend, setup,
                         (GTestFixtureFunc) tests[i].func, teardown);
    }
}

void
test_vm_suite_init (int *argc, char ***argv, TestBackends *backends)
{
  g_test_init (argc, argv, NULL);
  test_warm_up_glib ();
  backends->qemu = test_backend_new_qemu ();
  backends->ch_standin = test_backend_new_ch_standin ();
  backends->cloud_hypervisor = test_backend_new_cloud_hypervisor ();
  test_backend_probe_guest (backends->cloud_hypervisor);
}

int
test_vm_suite_run (TestBackends *backends)
{
  int ret = g_test_run ();

  g_clear_pointer (&backends->qemu, test_backend_free);
  g_clear_pointer (&backends->ch_standin, test_backend_free);
  g_clear_pointer (&backends->cloud_hypervisor, test_backend_free);
  return ret;
}
