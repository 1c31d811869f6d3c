/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A hypervisor does not outlive the process that started it: the library
 * arms PR_SET_PDEATHSIG (SIGKILL) in the child before exec
 * (libuvm/proc/uvm-spawn.c), so when an application that links libuvm is
 * SIGKILLed, with no chance to stop its VMs, they die with it.  And what
 * the killed application leaves (its VM's runtime directory) does not stop
 * the next start of a VM of the same name.
 *
 * The application is tests/orphan-owner (built beside this test): it
 * starts the test guest on a backend, prints the hypervisor's pid and
 * lives until killed.  This process is a child subreaper
 * (PR_SET_CHILD_SUBREAPER), so the hypervisor, orphaned when its owner
 * dies, is reparented to us rather than to init: we reap it ourselves and
 * read how it ended, and if it survives we can still kill it, so that a
 * failing test leaves nothing running.
 *
 * Run on qemu (the test guest under TCG) and on the cloud-hypervisor
 * stand-in (tests/ch-standin, UVM_TEST_CH_STANDIN). */
#include "uvm-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Boot of the test guest under TCG on a shared host (~2 s when idle). */
#define OWNER_READY_TIMEOUT_MS 120000
/* PDEATHSIG is sent as the owner exits; SIGKILL takes effect at once. */
#define ORPHAN_GONE_TIMEOUT_MS 10000

#define VM_NAME "orphan"

typedef TestVmFixture Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  test_vm_fixture_init (f, data, "uvm-orphan-XXXXXX");
}

/* ---- the owner ------------------------------------------------------------ */

typedef struct {
  GPid pid;
  int stdout_fd;
} Owner;

/* Starts tests/orphan-owner for @f's backend, our child (not reaped by
 * GLib: we wait for it ourselves). */
static Owner
owner_start_full (Fixture *f, gboolean detached)
{
  const char *builddir = g_getenv ("UVM_TEST_BUILDDIR");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  Owner owner = { 0, -1 };

  g_assert_nonnull (builddir);
  path = g_build_filename (builddir, "orphan-owner", NULL);
  {
    const char *argv[] = { path, f->b->name, f->dir, VM_NAME, detached ? "detached" : NULL, NULL };

    g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                              NULL, &owner.pid, NULL, &owner.stdout_fd, NULL, &error);
  }
  g_assert_no_error (error);
  return owner;
}

static Owner
owner_start (Fixture *f)
{
  return owner_start_full (f, FALSE);
}

/* The hypervisor pid the owner prints once its guest is up, or 0 when it
 * exits or says nothing in time. */
static int
owner_read_hypervisor_pid (Owner *owner)
{
  char buf[32] = "";
  gsize len = 0;
  gint64 deadline = g_get_monotonic_time () + OWNER_READY_TIMEOUT_MS * 1000;

  while (len < sizeof buf - 1 && memchr (buf, '\n', len) == NULL)
    {
      struct pollfd pfd = { owner->stdout_fd, POLLIN, 0 };
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      ssize_t n;

      if (left_ms <= 0)
        return 0;
      if (poll (&pfd, 1, (int) left_ms) < 0)
        {
          g_assert_cmpint (errno, ==, EINTR);
          continue;
        }
      n = read (owner->stdout_fd, buf + len, sizeof buf - 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return 0;
      len += n;
    }
  return atoi (buf);
}

static void
owner_kill (Owner *owner)
{
  int status;

  g_assert_cmpint (kill (owner->pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (owner->pid, &status, 0), ==, owner->pid);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGKILL);
  g_spawn_close_pid (owner->pid);
  close (owner->stdout_fd);
  owner->stdout_fd = -1;
}

/* ---- reading /proc --------------------------------------------------------- */

/* The parent pid of @pid, from /proc/PID/stat. */
static int
parent_of (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *stat = NULL;
  const char *p;
  char state;
  int ppid;

  g_assert_true (g_file_get_contents (path, &stat, NULL, NULL));
  p = strrchr (stat, ')');   /* the command name may hold anything */
  g_assert_nonnull (p);
  g_assert_cmpint (sscanf (p + 1, " %c %d", &state, &ppid), ==, 2);
  return ppid;
}

/* How many processes have @text in their command line: the hypervisors of
 * this test's VMs all name files below the test's directory. */
static guint
processes_mentioning (const char *text)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (proc);
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *cmdline = NULL;
      gsize len = 0;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_build_filename ("/proc", name, "cmdline", NULL);
      if (!g_file_get_contents (path, &cmdline, &len, NULL))
        continue;   /* gone meanwhile */
      for (gsize i = 0; i < len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      if (strstr (cmdline, text) != NULL)
        n++;
    }
  return n;
}

/* Whether the process of @pidfd exits within @timeout_ms. */
static gboolean
wait_for_exit (int pidfd, guint timeout_ms)
{
  struct pollfd pfd = { pidfd, POLLIN, 0 };
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  int n;

  do
    {
      gint64 left_ms = MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
      n = poll (&pfd, 1, (int) left_ms);
    }
  while (n < 0 && errno == EINTR);
  g_assert_cmpint (n, >=, 0);
  return n == 1;
}

/* Reaps every child left to us (a subreaper) until there is none, for up
 * to @timeout_ms; FALSE when one still runs then. */
static gboolean
reap_orphans (guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      pid_t pid = waitpid (-1, NULL, WNOHANG);

      if (pid < 0)
        return errno == ECHILD;
      if (pid == 0)
        {
          if (g_get_monotonic_time () > deadline)
            return FALSE;
          g_usleep (20 * 1000);
        }
    }
}

/* ---- the test ---------------------------------------------------------------- */

static void
test_hypervisor_dies_with_its_owner (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autofree char *rundir = NULL;
  Owner owner;
  int hypervisor, pidfd, status;
  gboolean gone;

  SKIP_IF_UNAVAILABLE (f);
  g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), ==, 0);
  rundir = g_build_filename (f->dir, "run", VM_NAME, NULL);

  owner = owner_start (f);
  hypervisor = owner_read_hypervisor_pid (&owner);
  if (hypervisor <= 0)
    {
      owner_kill (&owner);
      g_error ("orphan-owner did not report a hypervisor pid (see its messages above)");
    }
  /* Not our child: a pidfd tells us when it exits, whoever reaps it. */
  pidfd = pidfd_open (hypervisor, 0);
  g_assert_cmpint (pidfd, >=, 0);
  g_assert_cmpint (parent_of (hypervisor), ==, owner.pid);
  g_assert_true (g_file_test (rundir, G_FILE_TEST_IS_DIR));

  owner_kill (&owner);
  gone = wait_for_exit (pidfd, ORPHAN_GONE_TIMEOUT_MS);
  if (!gone)
    {
      /* Leave nothing running, then fail. */
      g_assert_cmpint (pidfd_send_signal (pidfd, SIGKILL, NULL, 0), ==, 0);
      g_assert_true (wait_for_exit (pidfd, ORPHAN_GONE_TIMEOUT_MS));
      waitpid (hypervisor, NULL, 0);
    }
  else
    {
      /* Reparented to us, the subreaper: it died of the parent death
       * signal the library armed (SIGKILL), not of anything else. */
      g_assert_cmpint (waitpid (hypervisor, &status, 0), ==, hypervisor);
      g_assert_true (WIFSIGNALED (status));
      g_assert_cmpint (WTERMSIG (status), ==, SIGKILL);
    }
  close (pidfd);
  if (!gone)
    {
      g_test_fail_printf ("the hypervisor (pid %d) was still running %u ms after its owner "
                          "(pid %d) was SIGKILLed: no parent death signal (PR_SET_PDEATHSIG)",
                          hypervisor, ORPHAN_GONE_TIMEOUT_MS, (int) owner.pid);
      return;
    }

  /* Nothing of the VM runs, no child of ours is left over: its helpers
   * (the console relay), orphaned too, end with it; we reap them. */
  g_assert_cmpint (kill (hypervisor, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  g_assert_true (reap_orphans (ORPHAN_GONE_TIMEOUT_MS));
  g_assert_cmpuint (processes_mentioning (f->dir), ==, 0);

  /* The owner could not clean up; its runtime directory is reclaimed by
   * the next start of a VM of that name, here. */
  g_assert_true (g_file_test (rundir, G_FILE_TEST_IS_DIR));
  vm = test_guest_vm_new (f->b, VM_NAME, f->dir, NULL);
  g_assert_cmpstr (uvm_vm_get_runtime_dir (vm), ==, rundir);
  test_vm_start_and_boot (vm);
  g_assert_cmpint (uvm_vm_get_pid (vm), >, 0);
  g_assert_cmpint (uvm_vm_get_pid (vm), !=, hypervisor);
  test_vm_stop_ok (vm);
  g_assert_false (g_file_test (rundir, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (processes_mentioning (f->dir), ==, 0);
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}


/* ---- detached VMs ------------------------------------------------------------ */

/* The runtime root of the test's VMs (test_guest_vm_new(): DIR/run/NAME). */
static char *
run_root (Fixture *f)
{
  return g_build_filename (f->dir, "run", NULL);
}

/* Starts a detached VM through the owner and returns its hypervisor's pid
 * (a pidfd for it in @pidfd), the owner still alive in @owner. */
static int
start_detached (Fixture *f, Owner *owner, int *pidfd)
{
  int hypervisor;

  g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), ==, 0);
  *owner = owner_start_full (f, TRUE);
  hypervisor = owner_read_hypervisor_pid (owner);
  if (hypervisor <= 0)
    {
      owner_kill (owner);
      g_error ("orphan-owner did not report a hypervisor pid (see its messages above)");
    }
  *pidfd = pidfd_open (hypervisor, 0);
  g_assert_cmpint (*pidfd, >=, 0);
  return hypervisor;
}

/* Ends @hypervisor if a failed test left it, and reaps it (we are its
 * subreaper once its owner died). */
static void
end_hypervisor (int hypervisor, int pidfd)
{
  if (!wait_for_exit (pidfd, 0))
    {
      pidfd_send_signal (pidfd, SIGKILL, NULL, 0);
      g_assert_true (wait_for_exit (pidfd, ORPHAN_GONE_TIMEOUT_MS));
    }
  waitpid (hypervisor, NULL, 0);
  close (pidfd);
  /* Its helpers (the console relay) were orphaned to us too. */
  g_assert_true (reap_orphans (ORPHAN_GONE_TIMEOUT_MS));
}

/* The hypervisor's own word on whether its guest runs. */
static gboolean
hypervisor_says_running (Fixture *f, UvmVm *vm)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;

  if (uvm_hypervisor_supports (uvm_vm_get_hypervisor (vm), UVM_FEATURE_RAW_QMP))
    {
      reply = uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, &error);
      g_assert_no_error (error);
      return strstr (reply, "\"running\":true") != NULL;
    }
  reply = uvm_vm_ch_request (vm, "GET", "vm.info", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return strstr (reply, "\"state\":\"Running\"") != NULL;
}

/* The lease file of the dynamic uid the record names, or NULL. */
static char *
recorded_lease (const char *rundir)
{
  g_autofree char *path = g_build_filename (rundir, "state.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *o;

  g_assert_true (json_parser_load_from_file (parser, path, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  return g_strdup (json_object_get_string_member_with_default (o, "user-lease", NULL));
}

/* Whether some process holds the flock of @path. */
static gboolean
lock_held (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  gboolean held;

  g_assert_cmpint (fd, >=, 0);
  held = flock (fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close (fd);
  return held;
}

static UvmVmInfo *
find_listed (GPtrArray *list, const char *name)
{
  for (guint i = 0; i < list->len; i++)
    if (g_str_equal (uvm_vm_info_get_name (g_ptr_array_index (list, i)), name))
      return g_ptr_array_index (list, i);
  return NULL;
}

static void
test_detached_vm_outlives_its_owner_and_is_taken_over (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(UvmVm) second = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *root = NULL, *rundir = NULL, *ours = NULL, *lease = NULL;
  UvmVmInfo *info;
  Owner owner;
  int hypervisor, pidfd, code = 0, sig = 0;

  SKIP_IF_UNAVAILABLE (f);
  root = run_root (f);
  rundir = g_build_filename (root, VM_NAME, NULL);
  hypervisor = start_detached (f, &owner, &pidfd);

  /* While its launcher lives, it is the controller: a second one is told
   * who holds the VM. */
  g_assert_null (uvm_vm_attach (root, VM_NAME, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  ours = g_strdup_printf ("process %d", (int) owner.pid);
  g_assert_nonnull (strstr (error->message, ours));
  g_clear_error (&error);

  lease = recorded_lease (rundir);
  owner_kill (&owner);
  /* Detached: no parent death signal; it runs on without its launcher. */
  g_assert_false (wait_for_exit (pidfd, 1000));
  /* Its dynamic uid stays taken (the hypervisor holds the lease's lock),
   * so no other VM gets it meanwhile. */
  if (lease != NULL)
    g_assert_true (lock_held (lease));
  else
    g_test_message ("no dynamic uid here (not root): no lease to hold");

  list = uvm_vm_list (root, &error);
  g_assert_no_error (error);
  info = find_listed (list, VM_NAME);
  g_assert_nonnull (info);
  g_assert_cmpint (uvm_vm_info_get_pid (info), ==, hypervisor);
  g_assert_false (uvm_vm_info_get_stale (info));
  g_assert_true (uvm_vm_info_get_detached (info));
  g_assert_cmpint (uvm_vm_info_get_controller_pid (info), ==, 0);
  g_assert_cmpstr (uvm_vm_info_get_runtime_dir (info), ==, rundir);
  g_assert_cmpstr (uvm_vm_info_get_hypervisor (info), ==,
                   uvm_hypervisor_to_string (f->b->hypervisor));

  vm = uvm_vm_attach (root, VM_NAME, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (vm);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, hypervisor);
  g_assert_cmpint (uvm_vm_get_lifetime (vm), ==, UVM_VM_LIFETIME_DETACHED);
  g_assert_cmpstr (uvm_vm_get_runtime_dir (vm), ==, rundir);
  /* The definition came with it (the record's frozen copy): the same as
   * the one the owner started. */
  {
    g_autoptr(UvmVm) same = test_guest_vm_new (f->b, VM_NAME, f->dir, NULL);
    g_autofree char *theirs = NULL, *attached = NULL;

    uvm_vm_set_lifetime (same, UVM_VM_LIFETIME_DETACHED);
    theirs = uvm_vm_to_json (same, &error);
    g_assert_no_error (error);
    attached = uvm_vm_to_json (vm, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (attached, ==, theirs);
  }

  /* Now we hold it: a second attacher is told so, naming us. */
  second = uvm_vm_attach (NULL, rundir, NULL, &error);
  g_assert_null (second);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_free (ours);
  ours = g_strdup_printf ("process %d", (int) getpid ());
  g_assert_nonnull (strstr (error->message, ours));
  g_clear_error (&error);

  g_assert_true (uvm_vm_pause (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_PAUSED);
  g_assert_false (hypervisor_says_running (f, vm));
  g_assert_true (uvm_vm_resume (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);
  g_assert_true (hypervisor_says_running (f, vm));

  /* The stop escalation of any VM; how it ended is unknown (not our
   * child), asked for: STOPPED. */
  g_assert_true (uvm_vm_stop (vm, 20000, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  g_assert_true (uvm_vm_get_exit_status (vm, &code, &sig));
  g_assert_cmpint (code, ==, -1);
  g_assert_cmpint (sig, ==, -1);
  g_assert_true (wait_for_exit (pidfd, ORPHAN_GONE_TIMEOUT_MS));
  end_hypervisor (hypervisor, pidfd);

  /* Nothing left: no process, no runtime directory, no record, no lease. */
  g_assert_false (g_file_test (rundir, G_FILE_TEST_EXISTS));
  if (lease != NULL)
    g_assert_false (g_file_test (lease, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (processes_mentioning (f->dir), ==, 0);
  g_clear_pointer (&list, g_ptr_array_unref);
  list = uvm_vm_list (root, &error);
  g_assert_no_error (error);
  g_assert_null (find_listed (list, VM_NAME));
  g_clear_object (&vm);
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
test_stale_record_is_reported_and_reclaimed (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmVm) vm = NULL;
  g_autofree char *root = NULL, *rundir = NULL;
  UvmVmInfo *info;
  Owner owner;
  int hypervisor, pidfd;

  SKIP_IF_UNAVAILABLE (f);
  root = run_root (f);
  rundir = g_build_filename (root, VM_NAME, NULL);
  hypervisor = start_detached (f, &owner, &pidfd);
  owner_kill (&owner);
  /* The hypervisor dies behind everyone's back: the record is stale,
   * already while it is a zombie nobody reaped (we do only after). */
  g_assert_cmpint (pidfd_send_signal (pidfd, SIGKILL, NULL, 0), ==, 0);
  g_assert_true (wait_for_exit (pidfd, ORPHAN_GONE_TIMEOUT_MS));

  list = uvm_vm_list (root, &error);
  g_assert_no_error (error);
  info = find_listed (list, VM_NAME);
  g_assert_nonnull (info);
  g_assert_true (uvm_vm_info_get_stale (info));
  end_hypervisor (hypervisor, pidfd);
  /* Nobody held it: the listing reclaimed it. */
  g_assert_false (g_file_test (rundir, G_FILE_TEST_EXISTS));
  vm = uvm_vm_attach (root, VM_NAME, NULL, &error);
  g_assert_null (vm);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_NOT_FOUND);
  g_assert_cmpuint (processes_mentioning (f->dir), ==, 0);
}

/* A detached VM that runs is not a leftover: the next start of its name
 * is refused, naming it, and changes nothing. */
static void
test_start_of_a_running_detached_name_is_busy (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(UvmVm) attached = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *root = NULL, *pid = NULL;
  Owner owner;
  int hypervisor, pidfd;

  SKIP_IF_UNAVAILABLE (f);
  root = run_root (f);
  hypervisor = start_detached (f, &owner, &pidfd);
  owner_kill (&owner);

  vm = test_guest_vm_new (f->b, VM_NAME, f->dir, NULL);
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  pid = g_strdup_printf ("pid %d", hypervisor);
  g_assert_nonnull (strstr (error->message, pid));
  g_assert_nonnull (strstr (error->message, "attach"));
  g_clear_error (&error);
  g_assert_false (wait_for_exit (pidfd, 0));

  attached = uvm_vm_attach (root, VM_NAME, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (uvm_vm_stop (attached, 0, NULL, &error));
  g_assert_no_error (error);
  end_hypervisor (hypervisor, pidfd);
  g_assert_cmpuint (processes_mentioning (f->dir), ==, 0);
}

static const TestVmCase tests[] = {
  { "hypervisor-dies-with-its-owner", test_hypervisor_dies_with_its_owner },
  { "detached-vm-outlives-its-owner-and-is-taken-over",
    test_detached_vm_outlives_its_owner_and_is_taken_over },
  { "stale-record-is-reported-and-reclaimed", test_stale_record_is_reported_and_reclaimed },
  { "start-of-a-running-detached-name-is-busy", test_start_of_a_running_detached_name_is_busy },
};

int
main (int argc, char **argv)
{
  TestBackends backends;

  test_vm_suite_init (&argc, &argv, &backends);
  for (TestBackend **b = (TestBackend *[]) { backends.qemu, backends.ch_standin, NULL }; *b != NULL; b++)
    test_add_vm_tests ("/orphan", *b, tests, G_N_ELEMENTS (tests),
                       (GTestFixtureFunc) fixture_setup,
                       (GTestFixtureFunc) test_vm_fixture_teardown);
  return test_vm_suite_run (&backends);
}
