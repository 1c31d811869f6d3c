/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl as a shell script sees it: --help of every verb, the exit codes
 * and messages of the error cases, the launch plans of a document, and on
 * real qemu guests under TCG: systemd readiness through a real notify
 * socket (READY=1 only after the guest's ready line, STOPPING=1 and a
 * clean exit on SIGTERM), a pair started gateway first and stopped
 * workstation first, a detached VM driven verb by verb, events followed
 * until the guest powers off, and a stale record. */
#include "uvm-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#define BOOT_MS 90000
#define READY_LINE "UVM-GUEST-SHELL"

static const char *const verbs[] = {
  "run", "list", "status", "stop", "kill", "pause", "resume", "console",
  "balloon", "plan", "qmp", "api", "events",
};

typedef struct {
  char *dir;   /* the test's directory */
  char *root;  /* --root */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("uvm-uvmctl-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->root = g_build_filename (f->dir, "run", NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->dir);

  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->root);
  g_free (f->dir);
}

static const char *
uvmctl_path (void)
{
  const char *path = g_getenv ("UVMCTL");

  g_assert_nonnull (path);
  return path;
}

/* argv for uvmctl --root ROOT ARGS... (NULL-terminated varargs). */
static GStrv
uvmctl_argv_va (const char *root, const char *first, va_list ap)
{
  GStrvBuilder *b = g_strv_builder_new ();
  GStrv argv;

  g_strv_builder_add (b, uvmctl_path ());
  if (root != NULL)
    {
      g_strv_builder_add (b, "--root");
      g_strv_builder_add (b, root);
    }
  for (const char *arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_strv_builder_add (b, arg);
  argv = g_strv_builder_end (b);
  g_strv_builder_unref (b);
  return argv;
}

/* Runs uvmctl to its end; returns its exit status (-1 for a signal). */
static int
uvmctl_run_sync (const char *root, char **out, char **err, const char *first, ...)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = NULL;
  g_autofree char *o = NULL, *e = NULL;
  va_list ap;
  int wait_status;

  va_start (ap, first);
  argv = uvmctl_argv_va (root, first, ap);
  va_end (ap);
  g_assert_true (g_spawn_sync (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &o, &e,
                               &wait_status, &error));
  g_assert_no_error (error);
  {
    g_autofree char *cmd = g_strjoinv (" ", argv);
    g_test_message ("%s -> %d\n%s%s", cmd, wait_status, o, e);
  }
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : -1;
}

static gboolean
skip_without_guest (void)
{
  if (test_guest_available ())
    return FALSE;
  g_test_skip ("no test guest in UVM_TEST_GUEST_DIR");
  return TRUE;
}

/* ---- without a VM ----------------------------------------------------- */

static void
test_help_of_every_verb (void)
{
  g_autofree char *top = NULL;

  g_assert_cmpint (uvmctl_run_sync (NULL, &top, NULL, "--help", NULL), ==, 0);
  g_assert_nonnull (strstr (top, "Exit status:"));
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_autofree char *out = NULL, *usage = g_strdup_printf ("uvmctl [OPTION…] %s", verbs[i]);

      g_assert_nonnull (strstr (top, verbs[i]));
      g_assert_cmpint (uvmctl_run_sync (NULL, &out, NULL, verbs[i], "--help", NULL), ==, 0);
      g_assert_nonnull (strstr (out, usage));
      g_assert_nonnull (strstr (out, "--root"));
      g_assert_nonnull (strstr (out, "  4  busy"));
    }
}

static void
assert_usage_error (const char *first, ...)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = NULL;
  g_autofree char *err = NULL;
  va_list ap;
  int wait_status;

  va_start (ap, first);
  argv = uvmctl_argv_va (NULL, first, ap);
  va_end (ap);
  g_assert_true (g_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               &err, &wait_status, &error));
  g_test_message ("%s: %s", first, err);
  g_assert_true (WIFEXITED (wait_status));
  g_assert_cmpint (WEXITSTATUS (wait_status), ==, 2);
  g_assert_true (g_str_has_prefix (err, "uvmctl"));
}

static void
test_usage_errors_exit_2 (void)
{
  assert_usage_error (NULL);
  assert_usage_error ("frobnicate", NULL);
  assert_usage_error ("--bogus", "list", NULL);
  assert_usage_error ("status", NULL);
  assert_usage_error ("status", "a", "b", NULL);
  assert_usage_error ("stop", "--no-such-option", "vm", NULL);
  assert_usage_error ("stop", "--timeout", "-1", "vm", NULL);
  assert_usage_error ("balloon", "vm", "12 parsecs", NULL);
  assert_usage_error ("qmp", "vm", NULL);
  assert_usage_error ("run", NULL);
}

static void
test_no_such_vm_exit_3 (Fixture *f, gconstpointer data)
{
  static const char *const cases[][4] = {
    { "status", NULL }, { "stop", NULL }, { "kill", NULL }, { "pause", NULL },
    { "resume", NULL }, { "console", NULL }, { "balloon", "64MiB" },
    { "qmp", "query-status" }, { "api", "GET", "vm.info" }, { "events", NULL },
  };

  g_assert_cmpint (g_mkdir_with_parents (f->root, 0700), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *err = NULL, *prefix = g_strdup_printf ("uvmctl: nosuch: %s: ", cases[i][0]);

      g_assert_cmpint (uvmctl_run_sync (f->root, NULL, &err, cases[i][0], "nosuch", cases[i][1],
                                        cases[i][2], NULL), ==, 3);
      g_assert_true (g_str_has_prefix (err, prefix));
    }
}

static void
test_list_of_an_empty_root (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL;

  g_assert_cmpint (uvmctl_run_sync (f->root, &out, NULL, "list", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "NAME                     HYPERVISOR            PID DETACHED STALE "
                            "CONTROLLER\n");
}

/* ---- definition documents ---------------------------------------------- */

/* A document of the test guest (one VM, or with @gateway a workstation
 * listed before its gateway): a shell on the console, log in f->dir. */
static char *
write_definition (Fixture *f, const char *name, const char *gateway)
{
  g_autofree char *path = g_build_filename (f->dir, "def.json", NULL);
  g_autoptr(GString) text = g_string_new ("{ \"schema\": 1, ");
  g_autoptr(GError) error = NULL;
  const char *names[2] = { name, gateway };

  if (gateway != NULL)
    g_string_append (text, "\"networks\": [ { \"name\": \"inner\", \"kind\": \"isolated\" } ], ");
  g_string_append (text, "\"vms\": [");
  for (guint i = 0; i < (gateway ? 2u : 1u); i++)
    g_string_append_printf (text,
      "%s { \"name\": \"%s\", \"hypervisor\": \"qemu\", \"accel\": \"tcg\", %s%s%s"
      "\"kernel\": \"%s\", \"initramfs\": \"%s\", "
      "\"cmdline\": \"console=ttyS0 quiet uvm.shell=1\", \"memory\": \"256MiB\", "
      "\"devices\": [ { \"kind\": \"console\", \"log_path\": \"%s/%s.log\" }%s ] }",
      i ? "," : "", names[i], i == 0 && gateway ? "\"gateway\": \"" : "",
      i == 0 && gateway ? gateway : "", i == 0 && gateway ? "\", " : "",
      test_guest_kernel (), test_guest_initramfs (), f->dir, names[i],
      gateway ? ", { \"kind\": \"net\", \"network\": \"inner\" }" : "");
  g_string_append (text, " ] }\n");
  g_assert_true (g_file_set_contents (path, text->str, -1, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

static void
test_invalid_definition_exit_1 (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "bad.json", NULL);
  g_autofree char *err = NULL, *err2 = NULL;

  g_assert_true (g_file_set_contents (path, "{\"schema\":1,\"vms\":[{\"name\":\"x\","
                                      "\"hypervisor\":\"qemu\",\"memroy\":1}]}", -1, NULL));
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, &err, "run", path, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "vms[0].memroy: unknown member"));
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, &err2, "plan", "/nonexistent/def.json", NULL),
                   ==, 1);
  g_assert_nonnull (strstr (err2, "/nonexistent/def.json"));
}

static void
test_plan_prints_gateway_first (Fixture *f, gconstpointer data)
{
  g_autofree char *def = NULL, *out = NULL, *gw_dir = NULL;
  const char *gw, *ws;

  if (skip_without_guest ())
    return;
  def = write_definition (f, "ws", "gw");
  g_assert_cmpint (uvmctl_run_sync (f->root, &out, NULL, "plan", def, NULL), ==, 0);
  gw = strstr (out, "launch plan for VM 'gw'");
  ws = strstr (out, "launch plan for VM 'ws'");
  g_assert_nonnull (gw);
  g_assert_nonnull (ws);
  g_assert_true (gw < ws);
  /* --root gives a VM without its own runtime_dir ROOT/NAME. */
  gw_dir = g_strdup_printf ("runtime directory: %s/gw ", f->root);
  g_assert_nonnull (strstr (out, gw_dir));
}

/* ---- on real guests ----------------------------------------------------- */

/* An AF_UNIX datagram socket bound at @address ('@' for abstract). */
static int
notify_socket_new (const char *address)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  socklen_t len = offsetof (struct sockaddr_un, sun_path) + strlen (address);
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  memcpy (addr.sun_path, address, strlen (address));
  if (address[0] == '@')
    addr.sun_path[0] = '\0';
  else
    len++;
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, len), ==, 0);
  return fd;
}

/* The next datagram, within @timeout_ms (fails the test otherwise). */
static char *
notify_receive (int fd, guint timeout_ms)
{
  struct pollfd pfd = { fd, POLLIN, 0 };
  char buf[4096];
  ssize_t n;

  if (poll (&pfd, 1, (int) timeout_ms) != 1)
    g_error ("no notification within %u ms", timeout_ms);
  n = recv (fd, buf, sizeof buf - 1, 0);
  g_assert_cmpint (n, >, 0);
  buf[n] = '\0';
  return g_strdup (buf);
}

static GPid
uvmctl_spawn (Fixture *f, const char *notify_address, const char *first, ...)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = NULL, envp = g_get_environ ();
  va_list ap;
  GPid pid;

  va_start (ap, first);
  argv = uvmctl_argv_va (f->root, first, ap);
  va_end (ap);
  if (notify_address != NULL)
    envp = g_environ_setenv (envp, "NOTIFY_SOCKET", notify_address, TRUE);
  g_assert_true (g_spawn_async (NULL, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                &error));
  g_assert_no_error (error);
  return pid;
}

/* The exit status of @pid, which must exit within 60 s (it is killed and
 * the test fails otherwise, rather than hanging). */
static int
wait_exit (GPid pid)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  int wait_status;
  pid_t got;

  while ((got = waitpid (pid, &wait_status, WNOHANG)) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (50000);
  if (got == 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, &wait_status, 0);
      g_error ("uvmctl %d did not exit within 60 s", (int) pid);
    }
  g_assert_cmpint (got, ==, pid);
  g_assert_true (WIFEXITED (wait_status));
  return WEXITSTATUS (wait_status);
}

/* The hypervisor pid that `uvmctl list` shows for @name. */
static int
listed_pid (Fixture *f, const char *name)
{
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_cmpint (uvmctl_run_sync (f->root, &out, NULL, "list", NULL), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      g_auto(GStrv) cols = g_strsplit_set (lines[i], " ", -1);
      g_autoptr(GPtrArray) words = g_ptr_array_new ();

      for (guint c = 0; cols[c] != NULL; c++)
        if (*cols[c] != '\0')
          g_ptr_array_add (words, cols[c]);
      if (words->len == 6 && g_str_equal (words->pdata[0], name))
        return atoi (words->pdata[2]);
    }
  g_error ("'%s' not listed:\n%s", name, out);
}

/* Neither the hypervisor @pid (a zombie waiting for init counts as gone)
 * nor the VM's runtime directory is left. */
static void
assert_nothing_left (Fixture *f, const char *name, int pid)
{
  g_autofree char *dir = g_build_filename (f->root, name, NULL);
  g_autofree char *stat_path = g_strdup_printf ("/proc/%d/stat", pid);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *stat = NULL;
      const char *state;

      if (!g_file_get_contents (stat_path, &stat, NULL, NULL))
        break;
      state = strrchr (stat, ')');
      if (state != NULL && state[2] == 'Z')
        {
          waitpid (pid, NULL, WNOHANG); /* ours as the subreaper (see main) */
          break;
        }
      if (g_get_monotonic_time () > deadline)
        g_error ("the hypervisor %d of '%s' still runs", pid, name);
      g_usleep (50000);
    }
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
}

static gboolean
log_has (Fixture *f, const char *name, const char *text)
{
  g_autofree char *path = g_strdup_printf ("%s/%s.log", f->dir, name);
  g_autofree char *log = NULL;

  return g_file_get_contents (path, &log, NULL, NULL) && strstr (log, text) != NULL;
}

static void
test_notify_ready_after_guest_line (Fixture *f, gconstpointer data)
{
  const char *address_kind = data;
  g_autofree char *def = NULL, *address = NULL, *status_out = NULL, *pause_err = NULL;
  g_autofree char *busy = NULL;
  gboolean ready = FALSE;
  int fd, pid;
  GPid run;

  if (skip_without_guest ())
    return;
  def = write_definition (f, "svc", NULL);
  address = g_str_equal (address_kind, "abstract")
              ? g_strdup_printf ("@uvmctl-test-%d", (int) getpid ())
              : g_build_filename (f->dir, "notify.sock", NULL);
  fd = notify_socket_new (address);
  run = uvmctl_spawn (f, address, "run", def, "--ready-pattern", READY_LINE, NULL);

  /* STATUS= lines first; READY=1 only once the guest printed its line. */
  while (!ready)
    {
      g_autofree char *msg = notify_receive (fd, BOOT_MS);
      gboolean guest_up = log_has (f, "svc", READY_LINE);

      g_test_message ("notify: %s (ready line in the log: %d)", msg, guest_up);
      ready = strstr (msg, "READY=1") != NULL;
      g_assert_true (ready == guest_up || !ready);
      if (ready)
        {
          g_assert_true (guest_up);
          g_assert_nonnull (strstr (msg, "STATUS=running svc"));
        }
    }

  /* While `run` controls it: status works, a second controller is busy. */
  g_assert_cmpint (uvmctl_run_sync (f->root, &status_out, NULL, "status", "svc", NULL), ==, 0);
  g_assert_nonnull (strstr (status_out, "another process controls it"));
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, &pause_err, "pause", "svc", NULL), ==, 4);
  busy = g_strdup_printf ("process %d (uvmctl)", (int) run);
  g_assert_true (g_str_has_prefix (pause_err, "uvmctl: svc: pause: "));
  g_assert_nonnull (strstr (pause_err, busy));
  pid = listed_pid (f, "svc");

  /* systemd's stop: SIGTERM to the main process. */
  g_assert_cmpint (kill (run, SIGTERM), ==, 0);
  {
    g_autofree char *msg = notify_receive (fd, 30000);
    g_assert_nonnull (strstr (msg, "STOPPING=1"));
  }
  g_assert_cmpint (wait_exit (run), ==, 0);
  g_assert_true (log_has (f, "svc", "UVM-GUEST-POWEROFF")); /* graceful: the guest powered off */
  assert_nothing_left (f, "svc", pid);
  close (fd);
}

/* A document of a workstation listed before its gateway: the gateway starts
 * (and is ready) first, and on SIGTERM the workstation stops first. */
static void
test_run_pair_gateway_first_stopped_last (Fixture *f, gconstpointer data)
{
  g_autofree char *def = NULL, *address = NULL, *log = NULL, *ready = NULL;
  g_autofree char *log_path = g_build_filename (f->dir, "run.stderr", NULL);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) envp = g_get_environ ();
  const char *gw_up, *ws_up, *gw_down, *ws_down;
  int fd, err_fd;
  GPid run;

  if (skip_without_guest ())
    return;
  def = write_definition (f, "ws", "gw");
  address = g_build_filename (f->dir, "notify.sock", NULL);
  fd = notify_socket_new (address);
  envp = g_environ_setenv (envp, "NOTIFY_SOCKET", address, TRUE);
  err_fd = g_open (log_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  g_assert_cmpint (err_fd, >=, 0);
  {
    const char *argv[] = { uvmctl_path (), "--root", f->root, "run", def, "--ready-pattern",
                           READY_LINE, NULL };
    g_assert_true (g_spawn_async_with_fds (NULL, (char **) argv, envp, G_SPAWN_DO_NOT_REAP_CHILD,
                                           NULL, NULL, &run, -1, -1, err_fd, &error));
    g_assert_no_error (error);
  }
  close (err_fd);
  do
    {
      g_free (ready);
      ready = notify_receive (fd, BOOT_MS);
    }
  while (strstr (ready, "READY=1") == NULL);
  g_assert_nonnull (strstr (ready, "STATUS=running gw, ws"));
  g_assert_true (log_has (f, "gw", READY_LINE) && log_has (f, "ws", READY_LINE));
  g_assert_cmpint (kill (run, SIGTERM), ==, 0);
  g_assert_cmpint (wait_exit (run), ==, 0);
  close (fd);

  g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
  g_test_message ("uvmctl run:\n%s", log);
  gw_up = strstr (log, "uvmctl: gw: running (pid");
  ws_up = strstr (log, "uvmctl: ws: running (pid");
  ws_down = strstr (log, "uvmctl: ws: state-changed stopped");
  gw_down = strstr (log, "uvmctl: gw: state-changed stopping");
  g_assert_true (gw_up && ws_up && gw_down && ws_down);
  g_assert_true (gw_up < ws_up);
  g_assert_true (ws_down < gw_down);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *dir = g_build_filename (f->root, i ? "ws" : "gw", NULL);
      g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
    }
}

static void
test_detached_vm_verb_by_verb (Fixture *f, gconstpointer data)
{
  g_autofree char *def = NULL, *paused = NULL, *running = NULL, *status_out = NULL;
  g_autofree char *events = NULL;
  g_autofree char *events_path = g_build_filename (f->dir, "events.jsonl", NULL);
  g_autoptr(GError) error = NULL;
  int pid, out_fd;
  GPid follower;

  if (skip_without_guest ())
    return;
  def = write_definition (f, "bg", NULL);
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, NULL, "run", "--detach", "--ready-pattern",
                                    READY_LINE, def, NULL), ==, 0);
  pid = listed_pid (f, "bg");
  g_assert_cmpint (uvmctl_run_sync (f->root, &status_out, NULL, "status", "bg", NULL), ==, 0);
  g_assert_nonnull (strstr (status_out, "state: running\n"));
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, NULL, "pause", "bg", NULL), ==, 0);
  g_assert_cmpint (uvmctl_run_sync (f->root, &paused, NULL, "qmp", "bg", "query-status", NULL),
                   ==, 0);
  g_assert_nonnull (strstr (paused, "\"status\":\"paused\""));
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, NULL, "resume", "bg", NULL), ==, 0);
  g_assert_cmpint (uvmctl_run_sync (f->root, &running, NULL, "qmp", "bg", "query-status", NULL),
                   ==, 0);
  g_assert_nonnull (strstr (running, "\"status\":\"running\""));
  /* Raw requests of the other hypervisor and devices it lacks fail (1). */
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, NULL, "api", "bg", "GET", "vm.info", NULL), ==, 1);
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, NULL, "balloon", "bg", "128MiB", NULL), ==, 1);

  /* events follows it until the guest, told on its console (through the
   * console socket, as events controls the VM), powers off. */
  out_fd = g_open (events_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  g_assert_cmpint (out_fd, >=, 0);
  {
    g_auto(GStrv) argv = g_strsplit ("X --root R events bg", " ", -1);
    g_free (argv[0]);
    argv[0] = g_strdup (uvmctl_path ());
    g_free (argv[2]);
    argv[2] = g_strdup (f->root);
    g_assert_true (g_spawn_async_with_fds (NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                           NULL, &follower, -1, out_fd, -1, &error));
    g_assert_no_error (error);
  }
  close (out_fd);
  /* Until events holds the VM: then a controller is named in the list. */
  for (int i = 0; i < 200; i++)
    {
      g_autofree char *list = NULL;
      g_autofree char *mine = g_strdup_printf (" %d\n", (int) follower);

      g_assert_cmpint (uvmctl_run_sync (f->root, &list, NULL, "list", NULL), ==, 0);
      if (strstr (list, mine) != NULL)
        break;
      g_usleep (50000);
    }
  {
    g_autofree char *script = g_strdup_printf ("printf 'poweroff -f\\n' | '%s' --root '%s' "
                                               "console bg", uvmctl_path (), f->root);
    const char *sh[] = { "/bin/sh", "-c", script, NULL };
    int wait_status = 0;

    g_assert_true (g_spawn_sync (NULL, (char **) sh, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
                                 NULL, &wait_status, &error));
    g_assert_no_error (error);
    g_assert_true (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 0);
  }
  g_assert_cmpint (wait_exit (follower), ==, 0);
  g_assert_true (g_file_get_contents (events_path, &events, NULL, NULL));
  g_test_message ("events:\n%s", events);
  g_assert_nonnull (strstr (events, "{\"vm\":\"bg\",\"kind\":\"hypervisor-exited\""));
  g_assert_nonnull (strstr (events, "\"kind\":\"state-changed\",\"state\":\"stopped\""));
  assert_nothing_left (f, "bg", pid);
}

/* Starts @name detached and SIGKILLs its hypervisor behind the library's
 * back; returns the pid it had. */
static int
start_and_kill_behind_its_back (Fixture *f, const char *name)
{
  g_autofree char *def = write_definition (f, name, NULL);
  int pid;

  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, NULL, "run", "--detach", def, NULL), ==, 0);
  pid = listed_pid (f, name);
  /* Gone for good: reaped by this process, its subreaper. */
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (pid, NULL, 0), ==, pid);
  return pid;
}

static void
test_stale_record_exit_5 (Fixture *f, gconstpointer data)
{
  g_autofree char *status_out = NULL, *err = NULL;
  int pid;

  if (skip_without_guest ())
    return;
  /* status reports the stale record (5); listing reclaims it, so the
   * name is gone afterwards (3). */
  pid = start_and_kill_behind_its_back (f, "gone");
  g_assert_cmpint (uvmctl_run_sync (f->root, &status_out, NULL, "status", "gone", NULL), ==, 5);
  g_assert_nonnull (strstr (status_out, "state: stale"));
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, NULL, "status", "gone", NULL), ==, 3);
  assert_nothing_left (f, "gone", pid);

  /* A verb that attaches gets the library's NOT_RUNNING (5), quoted. */
  pid = start_and_kill_behind_its_back (f, "gone2");
  g_assert_cmpint (uvmctl_run_sync (f->root, NULL, &err, "stop", "gone2", NULL), ==, 5);
  g_assert_true (g_str_has_prefix (err, "uvmctl: gone2: stop: "));
  assert_nothing_left (f, "gone2", pid);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* The hypervisor of `run --detach` outlives uvmctl; as the subreaper of
   * what it leaves, this process reaps it, as init would, but at once. */
  g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 1), ==, 0);
  g_test_add_func ("/uvmctl/help/every-verb", test_help_of_every_verb);
  g_test_add_func ("/uvmctl/usage/errors-exit-2", test_usage_errors_exit_2);
  g_test_add ("/uvmctl/no-such-vm/exit-3", Fixture, NULL, fixture_setup, test_no_such_vm_exit_3,
              fixture_teardown);
  g_test_add ("/uvmctl/list/empty-root", Fixture, NULL, fixture_setup,
              test_list_of_an_empty_root, fixture_teardown);
  g_test_add ("/uvmctl/definition/invalid-exit-1", Fixture, NULL, fixture_setup,
              test_invalid_definition_exit_1, fixture_teardown);
  g_test_add ("/uvmctl/plan/gateway-first", Fixture, NULL, fixture_setup,
              test_plan_prints_gateway_first, fixture_teardown);
  g_test_add ("/uvmctl/notify/path/ready-after-guest-line", Fixture, "path", fixture_setup,
              test_notify_ready_after_guest_line, fixture_teardown);
  g_test_add ("/uvmctl/notify/abstract/ready-after-guest-line", Fixture, "abstract",
              fixture_setup, test_notify_ready_after_guest_line, fixture_teardown);
  g_test_add ("/uvmctl/run/pair-gateway-first-stopped-last", Fixture, NULL, fixture_setup,
              test_run_pair_gateway_first_stopped_last, fixture_teardown);
  g_test_add ("/uvmctl/detached/verb-by-verb", Fixture, NULL, fixture_setup,
              test_detached_vm_verb_by_verb, fixture_teardown);
  g_test_add ("/uvmctl/stale/exit-5", Fixture, NULL, fixture_setup, test_stale_record_exit_5,
              fixture_teardown);
  return g_test_run ();
}
