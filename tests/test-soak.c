/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Soak test: many start/stop cycles of the test guest in one process, then
 * the process must hold what it held before: the same number of open fds
 * and threads, no child process (running or unreaped), no runtime
 * directory left in the default place (/run/uvm/NAME for root), and every
 * cycle must have succeeded.  What a leak of one fd or one child per cycle
 * does to a long-lived user of the library shows here, not in the suites
 * that start a VM once.
 *
 * Not timed: cycles are counted, not measured.  Run it alone with
 *   meson test -C build --suite soak
 * UVM_SOAK_CYCLES (default 1000) sets the number of qemu cycles and
 * UVM_SOAK_CH_CYCLES (default 100) those on the cloud-hypervisor stand-in.
 *
 * Each backend gets a mix: most cycles start paused or running and stop
 * forced (uvm_vm_stop() with no deadline: quit, no power button); every
 * GRACEFUL_EVERY-th boots the guest to its marker and stops gracefully
 * (the guest powers off by itself, exit code 0).  A UvmVm object serves
 * CYCLES_PER_VM cycles and is then dropped, so restarts of one object and
 * finalization are both part of the soak. */
#include "uvm-test-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BOOT_TIMEOUT_MS 60000
#define GRACEFUL_TIMEOUT_MS 20000
#define GRACEFUL_EVERY 100
#define CYCLES_PER_VM 10
/* Failures described in full; the rest are only counted. */
#define MAX_REPORTED 10

/* ---- what the process holds ------------------------------------------- */

static guint
count_dir_entries (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Children of every thread of this process, running or zombie
 * (/proc/self/task/TID/children; the child of a thread is listed under
 * that thread). */
static guint
count_children (void)
{
  g_autoptr(GDir) tasks = g_dir_open ("/proc/self/task", 0, NULL);
  const char *tid;
  guint n = 0;

  g_assert_nonnull (tasks);
  while ((tid = g_dir_read_name (tasks)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/children", tid);
      g_autofree char *contents = NULL;
      g_auto(GStrv) pids = NULL;

      if (!g_file_get_contents (path, &contents, NULL, NULL))
        continue;   /* the thread has just ended */
      pids = g_strsplit_set (g_strstrip (contents), " ", -1);
      for (guint i = 0; pids[i] != NULL; i++)
        if (pids[i][0] != '\0')
          n++;
    }
  return n;
}

typedef struct {
  guint fds;
  guint threads;
  guint children;
} Holdings;

static void
holdings_take (Holdings *h)
{
  h->fds = test_count_fds ();
  h->threads = count_dir_entries ("/proc/self/task");
  h->children = count_children ();
}

/* ---- the cycles -------------------------------------------------------- */

typedef enum {
  CYCLE_PAUSED_FORCED,
  CYCLE_RUNNING_FORCED,
  CYCLE_GRACEFUL,
} CycleKind;

static const char *const cycle_kind_names[] = { "paused, forced stop", "running, forced stop",
                                                "booted, graceful stop" };

typedef struct {
  const TestBackend *b;
  char *dir;          /* consoles */
  char *name_prefix;  /* of every VM of this run: soakPID-BACKEND- */
  guint n_ok;
  guint n_failed;
  guint n_kind[G_N_ELEMENTS (cycle_kind_names)];
  GString *failures;
} Soak;

static void
soak_fail (Soak *s, guint cycle, CycleKind kind, const char *what, const GError *error)
{
  s->n_failed++;
  if (s->n_failed <= MAX_REPORTED)
    g_string_append_printf (s->failures, "  cycle %u (%s): %s%s%s\n", cycle,
                            cycle_kind_names[kind], what, error ? ": " : "",
                            error ? error->message : "");
}

static CycleKind
cycle_kind (guint cycle)
{
  if (cycle % GRACEFUL_EVERY == GRACEFUL_EVERY - 1)
    return CYCLE_GRACEFUL;
  return cycle % 2 == 0 ? CYCLE_PAUSED_FORCED : CYCLE_RUNNING_FORCED;
}

/* One start and stop of @vm; records a failure and returns at the first
 * thing that goes wrong (the stop still runs, so the next cycle starts
 * clean). */
static void
run_cycle (Soak *s, UvmVm *vm, guint cycle)
{
  CycleKind kind = cycle_kind (cycle);
  g_autoptr(GError) error = NULL;
  UvmVmState expected = kind == CYCLE_PAUSED_FORCED ? UVM_VM_STATE_PAUSED : UVM_VM_STATE_RUNNING;
  const char *console = uvm_vm_get_console_path (vm);
  int pid, code = -2, sig = -2;

  s->n_kind[kind]++;
  /* The graceful check reads the console: only this run's boot on it. */
  if (console != NULL)
    g_unlink (console);
  uvm_vm_set_start_paused (vm, kind == CYCLE_PAUSED_FORCED);
  if (!uvm_vm_start (vm, NULL, &error))
    {
      soak_fail (s, cycle, kind, "start failed", error);
      return;
    }
  pid = uvm_vm_get_pid (vm);
  if (uvm_vm_get_state (vm) != expected)
    soak_fail (s, cycle, kind, uvm_vm_state_to_string (uvm_vm_get_state (vm)), NULL);
  else if (pid <= 0)
    soak_fail (s, cycle, kind, "no hypervisor pid after start", NULL);
  else if (!g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_IS_DIR))
    soak_fail (s, cycle, kind, "no runtime directory while running", NULL);
  else if (kind == CYCLE_GRACEFUL &&
           !test_wait_for_text (console, GUEST_READY, BOOT_TIMEOUT_MS))
    soak_fail (s, cycle, kind, "the guest did not boot to its marker", NULL);
  else
    {
      if (!uvm_vm_stop (vm, kind == CYCLE_GRACEFUL ? GRACEFUL_TIMEOUT_MS : 0, NULL, &error))
        soak_fail (s, cycle, kind, "stop failed", error);
      else if (uvm_vm_get_state (vm) != UVM_VM_STATE_STOPPED)
        soak_fail (s, cycle, kind, "not stopped after stop", NULL);
      else if (uvm_vm_get_pid (vm) != 0)
        soak_fail (s, cycle, kind, "a pid after stop", NULL);
      else if (waitpid (pid, NULL, WNOHANG) != -1 || errno != ECHILD)
        soak_fail (s, cycle, kind, "the hypervisor is still our child after stop", NULL);
      else if (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS))
        soak_fail (s, cycle, kind, "the runtime directory is left after stop", NULL);
      else if (kind == CYCLE_GRACEFUL &&
               (!uvm_vm_get_exit_status (vm, &code, &sig) || code != 0 || sig != 0))
        soak_fail (s, cycle, kind, "a graceful stop did not end in exit code 0", NULL);
      else if (kind == CYCLE_GRACEFUL && !test_wait_for_text (console, GUEST_POWEROFF, 1))
        soak_fail (s, cycle, kind, "the guest did not power off by itself", NULL);
      else
        s->n_ok++;
      return;
    }
  /* A failed cycle still ends with the VM stopped. */
  g_clear_error (&error);
  if (!uvm_vm_stop (vm, 0, NULL, &error))
    soak_fail (s, cycle, kind, "stop after a failure failed", error);
}

/* Names of this run's runtime directories still in the default place. */
static char *
leftover_runtime_dirs (const char *parent, const char *prefix)
{
  g_autoptr(GDir) dir = g_dir_open (parent, 0, NULL);
  GString *left = g_string_new (NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, prefix))
      g_string_append_printf (left, " %s", name);
  return g_string_free (left, FALSE);
}

static guint
cycles_from_env (const char *variable, guint fallback)
{
  const char *value = g_getenv (variable);
  guint64 n;

  if (value == NULL || *value == '\0')
    return fallback;
  if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT, &n, NULL))
    g_error ("%s=%s: not a positive number", variable, value);
  return (guint) n;
}

static void
soak (const TestBackend *backend, guint n_cycles)
{
  Soak s = { .b = backend };
  Holdings before, after;
  g_autofree char *runtime_parent = NULL, *left = NULL;
  UvmVm *vm = NULL;
  gint64 t0 = g_get_monotonic_time ();

  if (test_backend_skip (backend))
    return;
  s.dir = g_dir_make_tmp ("uvm-soak-XXXXXX", NULL);
  g_assert_nonnull (s.dir);
  s.name_prefix = g_strdup_printf ("soak%d-%s-", (int) getpid (),
                                   backend->hypervisor == UVM_HYPERVISOR_QEMU ? "q" : "ch");
  s.failures = g_string_new (NULL);
  holdings_take (&before);

  for (guint cycle = 0; cycle < n_cycles; cycle++)
    {
      if (vm == NULL)
        {
          g_autofree char *name = g_strdup_printf ("%s%u", s.name_prefix, cycle / CYCLES_PER_VM);

          vm = test_guest_vm_new (backend, name, s.dir, NULL);
          /* The default runtime directory, where a user's VMs have theirs. */
          uvm_vm_set_runtime_dir (vm, NULL);
          if (runtime_parent == NULL)
            runtime_parent = g_path_get_dirname (uvm_vm_get_runtime_dir (vm));
        }
      run_cycle (&s, vm, cycle);
      if (cycle % CYCLES_PER_VM == CYCLES_PER_VM - 1 || cycle == n_cycles - 1)
        g_clear_object (&vm);
      if (cycle % 100 == 99)
        g_test_message ("%s: %u cycles, %u failed, %.0f s", backend->name, cycle + 1, s.n_failed,
                        (g_get_monotonic_time () - t0) / 1e6);
    }

  holdings_take (&after);
  left = leftover_runtime_dirs (runtime_parent, s.name_prefix);
  g_test_message ("%s: %u cycles (%u paused+forced, %u running+forced, %u graceful) in %.0f s; "
                  "fds %u -> %u, threads %u -> %u, children %u -> %u",
                  backend->name, n_cycles, s.n_kind[CYCLE_PAUSED_FORCED],
                  s.n_kind[CYCLE_RUNNING_FORCED], s.n_kind[CYCLE_GRACEFUL],
                  (g_get_monotonic_time () - t0) / 1e6, before.fds, after.fds, before.threads,
                  after.threads, before.children, after.children);
  if (s.n_failed > 0)
    g_test_message ("%u failed cycles, the first ones:\n%s", s.n_failed, s.failures->str);
  g_assert_cmpuint (s.n_failed, ==, 0);
  g_assert_cmpuint (s.n_ok, ==, n_cycles);
  g_assert_cmpuint (after.fds, ==, before.fds);
  g_assert_cmpuint (after.threads, ==, before.threads);
  g_assert_cmpuint (after.children, ==, before.children);
  g_assert_cmpstr (left, ==, "");

  test_remove_tree (s.dir);
  g_free (s.dir);
  g_free (s.name_prefix);
  g_string_free (s.failures, TRUE);
}

static void
test_qemu_cycles_leave_nothing_behind (gconstpointer data)
{
  soak (data, cycles_from_env ("UVM_SOAK_CYCLES", 1000));
}

static void
test_ch_standin_cycles_leave_nothing_behind (gconstpointer data)
{
  soak (data, cycles_from_env ("UVM_SOAK_CH_CYCLES", 100));
}

int
main (int argc, char **argv)
{
  TestBackends backends;

  test_vm_suite_init (&argc, &argv, &backends);
  g_test_add_data_func ("/soak/qemu/start-stop-cycles-leave-nothing-behind", backends.qemu,
                        test_qemu_cycles_leave_nothing_behind);
  g_test_add_data_func ("/soak/cloud-hypervisor-standin/start-stop-cycles-leave-nothing-behind",
                        backends.ch_standin, test_ch_standin_cycles_leave_nothing_behind);
  return test_vm_suite_run (&backends);
}
