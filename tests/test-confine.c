/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Confinement of a hypervisor (uvm_vm_set_confined()): a new, empty network
 * namespace and a seccomp filter that denies new AF_INET, AF_INET6,
 * AF_PACKET and AF_NETLINK sockets.
 *
 *   /confine/plan/...     the definition and the launch plan (pure)
 *   /confine/spawn/...    the child setup itself, seen from inside by
 *                         tests/confine-probe, which spawns itself through
 *                         the library's internal uvm_spawn()
 *   /confine/BACKEND/...  real hypervisors under it: qemu under TCG, the
 *                         cloud-hypervisor stand-in, a real cloud-hypervisor
 *                         when there is one (skipped otherwise)
 *
 * The namespace needs CAP_SYS_ADMIN: tests that make one skip without it. */
#include "uvm-test-util.h"

#include <json-glib/json-glib.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/stat.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BOOT_TIMEOUT_MS 60000

/* ---- Capabilities ---------------------------------------------------- */

static gboolean
have_cap_sys_admin (void)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };

  g_assert_no_errno (syscall (SYS_capget, &hdr, data));
  return (data[CAP_TO_INDEX (CAP_SYS_ADMIN)].effective & CAP_TO_MASK (CAP_SYS_ADMIN)) != 0;
}

/* For good, in this process and everything it starts (bounding set too). */
static void
drop_cap_sys_admin (void)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };
  guint32 mask = CAP_TO_MASK (CAP_SYS_ADMIN);
  int i = CAP_TO_INDEX (CAP_SYS_ADMIN);

  /* The bounding set first: dropping from it needs CAP_SETPCAP, which
   * this drop keeps. */
  if (prctl (PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 1)
    g_assert_no_errno (prctl (PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0));
  g_assert_no_errno (syscall (SYS_capget, &hdr, data));
  data[i].effective &= ~mask;
  data[i].permitted &= ~mask;
  data[i].inheritable &= ~mask;
  g_assert_no_errno (syscall (SYS_capset, &hdr, data));
  g_assert_false (have_cap_sys_admin ());
}

#define SKIP_WITHOUT_CAP_SYS_ADMIN() \
  G_STMT_START { \
    if (!have_cap_sys_admin ()) \
      { \
        g_test_skip ("needs CAP_SYS_ADMIN (root): confinement makes a network namespace"); \
        return; \
      } \
  } G_STMT_END

/* ---- /proc ----------------------------------------------------------- */

static char *
netns_of (int pid)
{
  g_autofree char *path = pid ? g_strdup_printf ("/proc/%d/ns/net", pid)
                              : g_strdup ("/proc/self/ns/net");
  char *link = g_file_read_link (path, NULL);

  g_assert_nonnull (link);
  return link;
}

/* The interface names in /proc/PID/net/dev (the namespace of PID),
 * comma-separated. */
static char *
interfaces_of (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/net/dev", pid);
  g_autofree char *dev = NULL;
  g_auto(GStrv) lines = NULL;
  GString *names = g_string_new (NULL);

  g_assert_true (g_file_get_contents (path, &dev, NULL, NULL));
  lines = g_strsplit (dev, "\n", -1);
  for (guint i = 2; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      if (colon == NULL)
        continue;
      *colon = '\0';
      if (names->len > 0)
        g_string_append_c (names, ',');
      g_string_append (names, g_strstrip (lines[i]));
    }
  return g_string_free (names, FALSE);
}

/* ---- The probe ------------------------------------------------------- */

/* Runs `confine-probe spawn ARGS...` and returns its key=value lines; the
 * probe must succeed. */
static GHashTable *
run_probe (const char *first_arg, ...)
{
  g_autofree char *probe = g_test_build_filename (G_TEST_BUILT, "confine-probe", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  GHashTable *result = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  int status = 0;
  va_list args;

  g_ptr_array_add (argv, probe);
  g_ptr_array_add (argv, (gpointer) "spawn");
  va_start (args, first_arg);
  for (const char *a = first_arg; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                &status, &error);
  g_assert_no_error (error);
  g_test_message ("confine-probe:\n%s%s", out, err);
  g_spawn_check_wait_status (status, &error);
  g_assert_no_error (error);

  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *eq = strchr (lines[i], '=');
      if (eq != NULL)
        g_hash_table_insert (result, g_strndup (lines[i], eq - lines[i]), g_strdup (eq + 1));
    }
  return result;
}

static void
assert_probe_value (GHashTable *probe, const char *key, const char *expected)
{
  const char *value = g_hash_table_lookup (probe, key);

  if (g_strcmp0 (value, expected) != 0)
    g_test_message ("confine-probe %s: expected '%s', got '%s'", key, expected,
                    value ? value : "(missing)");
  g_assert_cmpstr (value, ==, expected);
}

#define EACCES_STR G_STRINGIFY (EACCES)

static void
test_filter_denies_inet_inet6_packet_netlink_sockets (void)
{
  g_autoptr(GHashTable) probe = run_probe ("--filter", NULL);

  assert_probe_value (probe, "seccomp", "2");
  assert_probe_value (probe, "AF_INET", EACCES_STR);
  assert_probe_value (probe, "AF_INET6", EACCES_STR);
  assert_probe_value (probe, "AF_PACKET", EACCES_STR);
  assert_probe_value (probe, "AF_NETLINK", EACCES_STR);
}

static void
test_filter_leaves_unix_sockets_alone (void)
{
  g_autoptr(GHashTable) probe = run_probe ("--filter", NULL);

  assert_probe_value (probe, "seccomp", "2");
  assert_probe_value (probe, "AF_UNIX", "0");
  assert_probe_value (probe, "AF_UNIX-pair", "0");
}

static void
test_filter_denies_i386_socket_calls (void)
{
  g_autoptr(GHashTable) plain = NULL, filtered = NULL;

#if !defined(__x86_64__)
  g_test_skip ("the i386 ABI exists on x86-64 only");
  return;
#endif
  /* Only a socket made and closed at once: nothing is sent. */
  plain = run_probe (NULL);
  if (g_strcmp0 (g_hash_table_lookup (plain, "i386-socketcall"), "0") != 0 ||
      g_strcmp0 (g_hash_table_lookup (plain, "i386-socket"), "0") != 0)
    {
      g_test_skip ("this kernel runs no i386 system calls (no IA32 emulation)");
      return;
    }
  filtered = run_probe ("--filter", NULL);
  /* socketcall hides the family behind a pointer: denied for any. */
  assert_probe_value (filtered, "i386-socketcall", EACCES_STR);
  assert_probe_value (filtered, "i386-socket", EACCES_STR);
}

static void
test_namespace_alone_denies_no_socket (void)
{
  g_autoptr(GHashTable) probe = NULL;

  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  /* What the filter tests deny is the filter's doing, and the probe can
   * tell success. */
  probe = run_probe ("--netns", NULL);
  assert_probe_value (probe, "seccomp", "0");
  for (const char *const *key = (const char *const[]) { "AF_INET", "AF_INET6", "AF_PACKET",
                                                        "AF_NETLINK", "AF_UNIX", NULL };
       *key != NULL; key++)
    assert_probe_value (probe, *key, "0");
}

static void
test_new_namespace_has_only_a_down_lo (void)
{
  g_autoptr(GHashTable) probe = NULL;
  g_autofree char *ours = netns_of (0);

  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  probe = run_probe ("--netns", "--filter", NULL);
  g_assert_true (g_str_has_prefix (g_hash_table_lookup (probe, "netns"), "net:["));
  g_assert_cmpstr (g_hash_table_lookup (probe, "netns"), !=, ours);
  assert_probe_value (probe, "interfaces", "lo");
  assert_probe_value (probe, "lo-up", "0");
}

static void
test_namespace_refused_is_a_permission_error (void)
{
  if (g_test_subprocess ())
    {
      g_autofree char *probe = g_test_build_filename (G_TEST_BUILT, "confine-probe", NULL);
      const char *argv[] = { probe, "spawn", "--netns", NULL };
      g_autofree char *out = NULL, *err = NULL;
      g_autofree char *expected = NULL;
      g_autoptr(GError) error = NULL;
      int status;

      if (have_cap_sys_admin ())
        drop_cap_sys_admin ();
      g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                    &status, &error);
      g_assert_no_error (error);
      g_test_message ("confine-probe: %s", err);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 3);
      expected = g_strdup_printf ("uvm-error-quark %d ", UVM_ERROR_PERMISSION);
      g_assert_true (g_str_has_prefix (err, expected));
      g_assert_nonnull (strstr (err, "CAP_SYS_ADMIN"));
      return;
    }
  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* ---- VMs ------------------------------------------------------------- */

typedef TestVmFixture Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  test_vm_fixture_init (f, data, "uvm-confine-XXXXXX");
}

/* A confined VM of the test guest on the fixture's backend. */
static UvmVm *
confined_vm_new (Fixture *f, const char *name, const char *cmdline_extra)
{
  UvmVm *vm = test_guest_vm_new (f->b, name, f->dir, cmdline_extra);

  uvm_vm_set_confined (vm, TRUE);
  return vm;
}

/* No process, no runtime directory, no fd more than before the test. */
static void
assert_gone (Fixture *f, UvmVm *vm)
{
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
assert_stopped_and_gone (Fixture *f, UvmVm *vm)
{
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  assert_gone (f, vm);
}

static void
test_confined_vm_boots_and_stops_gracefully (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int code = -1;

  SKIP_IF_NO_GUEST (f);
  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  vm = confined_vm_new (f, "confined", NULL);
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  test_vm_start_and_boot (vm);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);
  /* The power button, heard by the guest: the control socket works from
   * inside the namespace. */
  g_assert_true (uvm_vm_stop (vm, 20000, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (vm), GUEST_POWEROFF, 1));
  g_assert_true (uvm_vm_get_exit_status (vm, &code, NULL));
  g_assert_cmpint (code, ==, 0);
  assert_stopped_and_gone (f, vm);
}

static void
test_confined_hypervisor_has_an_empty_network_namespace (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ours = netns_of (0), *theirs = NULL, *interfaces = NULL;
  int pid;

  SKIP_IF_UNAVAILABLE (f);
  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  vm = confined_vm_new (f, "netns", NULL);
  test_vm_start_and_boot_on (f->b, vm);
  pid = uvm_vm_get_pid (vm);
  theirs = netns_of (pid);
  interfaces = interfaces_of (pid);
  g_test_message ("ours %s, the hypervisor's %s with interfaces '%s'", ours, theirs, interfaces);
  g_assert_cmpstr (theirs, !=, ours);
  g_assert_cmpstr (interfaces, ==, "lo");
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  assert_stopped_and_gone (f, vm);
}

static int
seccomp_filters_of (int pid)
{
  g_autofree char *n = test_proc_status_field (pid, "Seccomp_filters");

  g_assert_nonnull (n);
  return atoi (n);
}

static void
test_confined_hypervisor_runs_under_one_more_seccomp_filter (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) plain = NULL, confined = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *mode = NULL, *nnp = NULL;
  int plain_filters, confined_filters;

  SKIP_IF_UNAVAILABLE (f);
  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  /* The hypervisor may load filters of its own (qemu -sandbox): ours is
   * the one a confined run has beyond an unconfined one. */
  plain = test_guest_vm_new (f->b, "plain", f->dir, NULL);
  uvm_vm_set_start_paused (plain, TRUE);
  g_assert_true (uvm_vm_start (plain, NULL, &error));
  g_assert_no_error (error);
  plain_filters = seccomp_filters_of (uvm_vm_get_pid (plain));
  g_assert_true (uvm_vm_stop (plain, 0, NULL, &error));

  confined = confined_vm_new (f, "filtered", NULL);
  uvm_vm_set_start_paused (confined, TRUE);
  g_assert_true (uvm_vm_start (confined, NULL, &error));
  g_assert_no_error (error);
  mode = test_proc_status_field (uvm_vm_get_pid (confined), "Seccomp");
  nnp = test_proc_status_field (uvm_vm_get_pid (confined), "NoNewPrivs");
  confined_filters = seccomp_filters_of (uvm_vm_get_pid (confined));
  g_test_message ("seccomp filters: unconfined %d, confined %d", plain_filters, confined_filters);
  g_assert_cmpstr (mode, ==, "2");
  g_assert_cmpstr (nnp, ==, "1");
  g_assert_cmpint (confined_filters, ==, plain_filters + 1);
  g_assert_true (uvm_vm_stop (confined, 0, NULL, &error));
  g_assert_no_error (error);
  assert_stopped_and_gone (f, confined);
}

static void
test_unconfined_hypervisor_stays_in_our_network_namespace (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ours = netns_of (0), *theirs = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "unconfined", f->dir, NULL);
  g_assert_false (uvm_vm_get_confined (vm));
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  theirs = netns_of (uvm_vm_get_pid (vm));
  g_assert_cmpstr (theirs, ==, ours);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  assert_stopped_and_gone (f, vm);
}

static void
test_start_without_cap_sys_admin_is_a_permission_error (Fixture *f, gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(UvmVm) vm = NULL;
      g_autoptr(GError) error = NULL;
      guint fds_before;

      g_assert_false (test_backend_skip (f->b));   /* the parent checked */
      if (have_cap_sys_admin ())
        drop_cap_sys_admin ();
      fds_before = test_count_fds ();
      vm = confined_vm_new (f, "nocap", NULL);
      g_assert_false (uvm_vm_start (vm, NULL, &error));
      g_test_message ("start: %s", error->message);
      g_assert_error (error, UVM_ERROR, UVM_ERROR_PERMISSION);
      g_assert_nonnull (strstr (error->message, "CAP_SYS_ADMIN"));
      /* Refused in the child before exec: nothing ran, nothing is left. */
      g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
      g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
      g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
      g_assert_cmpuint (test_count_fds (), ==, fds_before);
      return;
    }
  SKIP_IF_UNAVAILABLE (f);
  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* ---- Least privilege (uvm_vm_set_user()) ------------------------------ */

/* Whether this process can change users, as the library checks it. */
static gboolean
can_change_ids (void)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };

  g_assert_no_errno (syscall (SYS_capget, &hdr, data));
  return (data[0].effective & CAP_TO_MASK (CAP_SETUID)) &&
         (data[0].effective & CAP_TO_MASK (CAP_SETGID));
}

/* The four ids of a "Uid:" or "Gid:" line, each equal to @id. */
static void
assert_ids (int pid, const char *field, guint32 id)
{
  g_autofree char *line = test_proc_status_field (pid, field);
  g_auto(GStrv) ids = NULL;

  g_assert_nonnull (line);
  ids = g_strsplit (line, "\t", -1);
  g_assert_cmpuint (g_strv_length (ids), ==, 4);   /* real, effective, saved, filesystem */
  for (guint i = 0; i < 4; i++)
    g_assert_cmpuint ((guint32) g_ascii_strtoull (ids[i], NULL, 10), ==, id);
}

static void
assert_status (int pid, const char *field, const char *expected)
{
  g_autofree char *value = test_proc_status_field (pid, field);

  g_assert_cmpstr (value, ==, expected);
}

/* @pid runs as @uid/@gid with no capability in any set (the bounding set
 * too), under no_new_privs and, with @seccomp, a filter. */
static void
assert_least_privilege (int pid, guint32 uid, guint32 gid, gboolean seccomp)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree char *status = NULL;

  g_assert_true (g_file_get_contents (path, &status, NULL, NULL));
  g_test_message ("pid %d:\n%s", pid, status);
  assert_ids (pid, "Uid", uid);
  assert_ids (pid, "Gid", gid);
  for (const char *const *cap = (const char *const[]) { "CapInh", "CapPrm", "CapEff", "CapBnd",
                                                        "CapAmb", NULL }; *cap; cap++)
    assert_status (pid, *cap, "0000000000000000");
  assert_status (pid, "NoNewPrivs", "1");
  if (seccomp)
    assert_status (pid, "Seccomp", "2");
}

static void
test_confined_hypervisor_runs_as_a_vm_user_without_capabilities (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  guint32 uid = 0, gid = 0;

  SKIP_IF_OWN_USER_REFUSED (f);
  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  vm = confined_vm_new (f, "leastpriv", NULL);
  g_assert_cmpuint (uvm_vm_get_user (vm), ==, UVM_USER_DYNAMIC);
  g_assert_false (uvm_vm_get_run_user (vm, &uid, &gid));
  test_vm_start_and_boot_on (f->b, vm);
  g_assert_true (uvm_vm_get_run_user (vm, &uid, &gid));
  if (can_change_ids ())
    {
      /* A dynamic user of its own, from the reserved range. */
      g_assert_cmpuint (uid, >=, 2000000000u);
      g_assert_cmpuint (uid, <, 2000000000u + 65536u);
      g_assert_cmpuint (gid, ==, uid);
    }
  else
    {
      g_assert_cmpuint (uid, ==, getuid ());
      g_assert_cmpuint (gid, ==, getgid ());
    }
  g_assert_cmpuint (uid, !=, 0);
  assert_least_privilege (uvm_vm_get_pid (vm), uid, gid, TRUE);
  /* It still boots and is controlled: the fds it was given suffice. */
  g_assert_true (uvm_vm_stop (vm, 20000, NULL, &error));
  g_assert_no_error (error);
  assert_stopped_and_gone (f, vm);
}

/* A launcher killed while its VM ran could not remove its uid's lease
 * file; the next allocation removes such files nobody holds, and keeps
 * the ones somebody does. */
static void
test_leases_of_killed_launchers_are_collected (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  const char *stale = "/run/uvm/.users/2000065531.lock";
  const char *held = "/run/uvm/.users/2000065532.lock";
  int held_fd;

  SKIP_IF_OWN_USER_REFUSED (f);
  if (!can_change_ids () || geteuid () != 0)
    {
      g_test_skip ("dynamic users need root (CAP_SETUID, CAP_SETGID)");
      return;
    }
  g_assert_cmpint (g_mkdir_with_parents ("/run/uvm/.users", 0700), ==, 0);
  test_write_file (stale, "");
  held_fd = open (held, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  g_assert_cmpint (held_fd, >=, 0);
  g_assert_cmpint (flock (held_fd, LOCK_EX | LOCK_NB), ==, 0);

  vm = test_guest_vm_new (f->b, "lease-collect", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (held, G_FILE_TEST_EXISTS));
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  g_assert_no_error (error);
  g_unlink (held);
  close (held_fd);
}

static void
test_two_running_vms_get_different_uids (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) one = NULL, two = NULL;
  g_autoptr(GError) error = NULL;
  guint32 uid1 = 0, uid2 = 0;

  SKIP_IF_OWN_USER_REFUSED (f);
  if (!can_change_ids ())
    {
      g_test_skip ("needs CAP_SETUID and CAP_SETGID (run as root)");
      return;
    }
  one = test_guest_vm_new (f->b, "uid-one", f->dir, NULL);
  two = test_guest_vm_new (f->b, "uid-two", f->dir, NULL);
  uvm_vm_set_start_paused (one, TRUE);
  uvm_vm_set_start_paused (two, TRUE);
  g_assert_true (uvm_vm_start (one, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_start (two, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_get_run_user (one, &uid1, NULL));
  g_assert_true (uvm_vm_get_run_user (two, &uid2, NULL));
  g_test_message ("uids %u and %u", uid1, uid2);
  g_assert_cmpuint (uid1, !=, uid2);
  assert_ids (uvm_vm_get_pid (one), "Uid", uid1);
  assert_ids (uvm_vm_get_pid (two), "Uid", uid2);
  g_assert_true (uvm_vm_stop (one, 0, NULL, &error));
  g_assert_true (uvm_vm_stop (two, 0, NULL, &error));
  g_assert_no_error (error);
}

static void
test_same_name_gets_a_free_uid_when_its_own_is_taken (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) one = NULL, two = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *other_dir = NULL;
  guint32 uid1 = 0, uid2 = 0;

  SKIP_IF_OWN_USER_REFUSED (f);
  if (!can_change_ids ())
    {
      g_test_skip ("needs CAP_SETUID and CAP_SETGID (run as root)");
      return;
    }
  /* Same name (same start point), other runtime dirs: the lock moves the
   * second one on. */
  other_dir = g_build_filename (f->dir, "other", NULL);
  g_assert_no_errno (g_mkdir (other_dir, 0700));
  one = test_guest_vm_new (f->b, "twin", f->dir, NULL);
  two = test_guest_vm_new (f->b, "twin", other_dir, NULL);
  uvm_vm_set_start_paused (one, TRUE);
  uvm_vm_set_start_paused (two, TRUE);
  g_assert_true (uvm_vm_start (one, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_start (two, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_get_run_user (one, &uid1, NULL));
  g_assert_true (uvm_vm_get_run_user (two, &uid2, NULL));
  g_assert_cmpuint (uid1, !=, uid2);
  g_assert_true (uvm_vm_stop (one, 0, NULL, &error));
  g_assert_true (uvm_vm_stop (two, 0, NULL, &error));
  g_assert_no_error (error);
}

static void
test_caller_user_keeps_uid_but_no_capabilities (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  guint32 uid = 1, gid = 1;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "caller", f->dir, NULL);
  uvm_vm_set_user (vm, UVM_USER_CALLER, 0);
  g_assert_cmpuint (uvm_vm_get_user (vm), ==, UVM_USER_CALLER);
  g_assert_cmpuint (uvm_vm_get_group (vm), ==, UVM_USER_CALLER);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_get_run_user (vm, &uid, &gid));
  g_assert_cmpuint (uid, ==, getuid ());
  g_assert_cmpuint (gid, ==, getgid ());
  /* As root: still uid 0, but nothing of root's power. */
  assert_least_privilege (uvm_vm_get_pid (vm), getuid (), getgid (), FALSE);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  g_assert_no_error (error);
}

static void
test_explicit_user_is_used (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  SKIP_IF_OWN_USER_REFUSED (f);
  if (!can_change_ids ())
    {
      g_test_skip ("needs CAP_SETUID and CAP_SETGID (run as root)");
      return;
    }
  vm = test_guest_vm_new (f->b, "explicit", f->dir, NULL);
  uvm_vm_set_user (vm, 4242, 4343);
  g_assert_cmpuint (uvm_vm_get_user (vm), ==, 4242);
  g_assert_cmpuint (uvm_vm_get_group (vm), ==, 4343);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  assert_least_privilege (uvm_vm_get_pid (vm), 4242, 4343, FALSE);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  g_assert_no_error (error);
}

static void
test_unreadable_kernel_is_a_permission_error_naming_it (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *kernel = g_build_filename (f->dir, "private-kernel", NULL);

  SKIP_IF_OWN_USER_REFUSED (f);
  if (!can_change_ids ())
    {
      g_test_skip ("needs CAP_SETUID and CAP_SETGID (run as root)");
      return;
    }
  /* Readable by its owner only: the VM user may not reopen it. */
  g_assert_true (g_file_set_contents (kernel, "not a kernel", -1, NULL));
  g_assert_no_errno (chmod (kernel, 0600));
  vm = test_guest_vm_new (f->b, "privkernel", f->dir, NULL);
  uvm_vm_set_kernel (vm, kernel, NULL, NULL);
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_test_message ("start: %s", error->message);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PERMISSION);
  g_assert_nonnull (strstr (error->message, kernel));
  assert_gone (f, vm);
}

/* ---- qemu only ------------------------------------------------------- */

static void
test_unconfined_qemu_is_unprivileged_under_its_sandbox (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  guint32 uid = 0, gid = 0;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "sandboxed", f->dir, NULL);
  test_vm_start_and_boot (vm);
  g_assert_true (uvm_vm_get_run_user (vm, &uid, &gid));
  g_assert_cmpuint (uid, !=, 0);
  /* qemu -sandbox: a filter even when not confined. */
  assert_least_privilege (uvm_vm_get_pid (vm), uid, gid, TRUE);
  g_assert_true (uvm_vm_stop (vm, 20000, NULL, &error));
  g_assert_no_error (error);
  assert_stopped_and_gone (f, vm);
}

/* The pid of a passt child of this process, or 0. */
static int
passt_child_pid (void)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *stat_path = g_strdup_printf ("/proc/%s/stat", name);
      g_autofree char *stat = NULL;
      const char *after;
      int ppid = 0;

      if (!g_ascii_isdigit (name[0]) || !g_file_get_contents (stat_path, &stat, NULL, NULL) ||
          strstr (stat, "(passt") == NULL || (after = strrchr (stat, ')')) == NULL)
        continue;
      sscanf (after + 2, "%*c %d", &ppid);
      if (ppid == getpid ())
        return atoi (name);
    }
  return 0;
}

static void
test_passt_runs_as_the_vm_user_without_capabilities (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("wan");
  g_autoptr(GError) error = NULL;
  g_autofree char *passt = g_find_program_in_path ("passt");
  guint32 uid = 0, gid = 0;
  int pid;

  SKIP_IF_UNAVAILABLE (f);
  if (passt == NULL)
    {
      g_test_skip ("passt is not installed (apt-get install passt)");
      return;
    }
  vm = test_guest_vm_new (f->b, "passtgw", f->dir, NULL);
  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_PASST);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_get_run_user (vm, &uid, &gid));
  pid = passt_child_pid ();
  g_assert_cmpint (pid, >, 0);
  /* passt moves itself into a user namespace of its own (its sandbox),
   * where the bounding set starts full again: capabilities there rule
   * only that namespace, owned by the VM user.  Everything else is as
   * for the hypervisor, and passt's own seccomp filter is on. */
  assert_ids (pid, "Uid", uid);
  assert_ids (pid, "Gid", gid);
  for (const char *const *cap = (const char *const[]) { "CapInh", "CapPrm", "CapEff", "CapAmb",
                                                        NULL }; *cap; cap++)
    assert_status (pid, *cap, "0000000000000000");
  assert_status (pid, "NoNewPrivs", "1");
  assert_status (pid, "Seccomp", "2");
  {
    g_autofree char *bnd = test_proc_status_field (pid, "CapBnd");
    g_autofree char *ours = g_file_read_link ("/proc/self/ns/user", NULL);
    g_autofree char *path = g_strdup_printf ("/proc/%d/ns/user", pid);
    g_autofree char *theirs = g_file_read_link (path, NULL);

    g_test_message ("passt CapBnd %s, user namespace %s (ours %s)", bnd, theirs, ours);
    if (g_strcmp0 (bnd, "0000000000000000") != 0)
      g_assert_cmpstr (theirs, !=, ours);
  }
  g_assert_cmpuint (uid, !=, 0);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  g_assert_no_error (error);
}

static void
test_confined_qemu_is_refused_an_inet_socket (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;

  SKIP_IF_UNAVAILABLE (f);
  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  vm = confined_vm_new (f, "nosocket", NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  /* A socket netdev makes qemu call socket (AF_INET, SOCK_STREAM): the
   * filter answers EACCES before the empty namespace could refuse the
   * address (which would say "Cannot assign requested address"). */
  reply = uvm_vm_qmp_execute (vm, "netdev_add",
                              "{\"type\":\"socket\",\"id\":\"escape\",\"listen\":\"127.0.0.1:0\"}",
                              NULL, &error);
  g_assert_null (reply);
  g_test_message ("netdev_add: %s", error->message);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_HYPERVISOR);
  g_assert_nonnull (strstr (error->message, g_strerror (EACCES)));
  g_clear_error (&error);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  assert_stopped_and_gone (f, vm);
}

static void
test_link_between_confined_and_unconfined_vm_carries_ping (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL;
  g_autoptr(UvmVm) ws = NULL, gw = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ws_netns = NULL, *gw_netns = NULL;

  SKIP_IF_UNAVAILABLE (f);
  SKIP_WITHOUT_CAP_SYS_ADMIN ();
  link = uvm_network_new_isolated ("confine-link");
  gw = test_guest_vm_new (f->b, "gw", f->dir, "uvm.ip=10.99.0.1/24 uvm.ping=10.99.0.2");
  ws = confined_vm_new (f, "ws", "uvm.ip=10.99.0.2/24 uvm.ping=10.99.0.1");
  uvm_vm_add_device (gw, uvm_device_new_net (link, NULL));
  uvm_vm_add_device (ws, uvm_device_new_net (link, NULL));

  g_assert_true (uvm_vm_start (gw, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_start (ws, NULL, &error));
  g_assert_no_error (error);
  ws_netns = netns_of (uvm_vm_get_pid (ws));
  gw_netns = netns_of (uvm_vm_get_pid (gw));
  g_assert_cmpstr (ws_netns, !=, gw_netns);
  /* The socket pair end was opened in our namespace and works from the
   * empty one, both ways. */
  g_assert_true (test_vm_wait_for_text (ws, "UVM-PING-OK 10.99.0.1", BOOT_TIMEOUT_MS));
  g_assert_true (test_vm_wait_for_text (gw, "UVM-PING-OK 10.99.0.2", BOOT_TIMEOUT_MS));
  g_assert_true (uvm_vm_stop (ws, 0, NULL, &error));
  g_assert_true (uvm_vm_stop (gw, 0, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&ws);
  g_clear_object (&gw);
  g_clear_object (&link);   /* the network holds the socket pair until here */
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
test_user_mode_uplink_is_refused_naming_the_device (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("outside");
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "slirp", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  /* Fine unconfined... */
  g_assert_true (uvm_vm_validate (vm, &error));
  g_assert_no_error (error);

  uvm_vm_set_confined (vm, TRUE);
  g_assert_false (uvm_vm_validate (vm, &error));
  g_test_message ("validate: %s", error->message);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  /* devices[0] is the console of the test guest. */
  g_assert_true (g_str_has_prefix (error->message, "devices[1] (net0): "));
  g_assert_nonnull (strstr (error->message, "user-mode networking"));
  g_assert_nonnull (strstr (error->message, "'outside'"));
  g_clear_error (&error);

  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_null (plan);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_clear_error (&error);
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
}

/* ---- Definition and plan (pure) --------------------------------------- */

static UvmVm *
plan_vm_new (const char *dir, UvmHypervisor hypervisor)
{
  g_autofree char *kernel = g_build_filename (dir, "vmlinuz", NULL);
  g_autofree char *rundir = g_build_filename (dir, "run", NULL);
  UvmVm *vm = uvm_vm_new ("plan", hypervisor);

  test_write_file (kernel, "not really a kernel");
  uvm_vm_set_kernel (vm, kernel, NULL, "console=ttyS0");
  uvm_vm_set_runtime_dir (vm, rundir);
  uvm_vm_set_hypervisor_path (vm, "/nonexistent/hypervisor");
  return vm;
}

static void
test_confined_is_off_until_set (void)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("flag", UVM_HYPERVISOR_QEMU);

  g_assert_false (uvm_vm_get_confined (vm));
  uvm_vm_set_confined (vm, TRUE);
  g_assert_true (uvm_vm_get_confined (vm));
  uvm_vm_set_confined (vm, FALSE);
  g_assert_false (uvm_vm_get_confined (vm));
}

#define CONFINED_LINE \
  "# confined: empty network namespace; seccomp denies AF_INET, AF_INET6, AF_PACKET, " \
  "AF_NETLINK sockets\n"

static void
test_launch_plan_shows_confinement_above_exec (gconstpointer data)
{
  UvmHypervisor hypervisor = GPOINTER_TO_INT (data);
  g_autofree char *dir = g_dir_make_tmp ("uvm-confine-plan-XXXXXX", NULL);
  g_autoptr(UvmVm) vm = plan_vm_new (dir, hypervisor);
  g_autoptr(GError) error = NULL;
  g_autofree char *plain = NULL, *confined = NULL, *expected = NULL;
  const char *exec_line;

  plain = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (plain, "# confined"));
  uvm_vm_set_confined (vm, TRUE);
  confined = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_test_message ("%s", confined);
  /* The unconfined plan with one line more, just above the exec line. */
  exec_line = strstr (plain, "\nexec ");
  g_assert_nonnull (exec_line);
  expected = g_strdup_printf ("%.*s" CONFINED_LINE "%s", (int) (exec_line + 1 - plain), plain,
                              exec_line + 1);
  g_assert_cmpstr (confined, ==, expected);
  test_remove_tree (dir);
}

static void
test_confinement_leaves_the_command_line_alone (gconstpointer data)
{
  UvmHypervisor hypervisor = GPOINTER_TO_INT (data);
  g_autofree char *dir = g_dir_make_tmp ("uvm-confine-plan-XXXXXX", NULL);
  g_autoptr(UvmVm) vm = plan_vm_new (dir, hypervisor);
  g_autoptr(GError) error = NULL;
  g_autofree char *plain = NULL, *confined = NULL;

  plain = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  uvm_vm_set_confined (vm, TRUE);
  confined = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (confined, ==, plain);
  test_remove_tree (dir);
}

/* ---- Registration ---------------------------------------------------- */

typedef TestVmCase TestCase;

static const TestCase shared_tests[] = {
  { "confined-vm-boots-and-stops-gracefully", test_confined_vm_boots_and_stops_gracefully },
  { "confined-hypervisor-has-an-empty-network-namespace", test_confined_hypervisor_has_an_empty_network_namespace },
  { "confined-hypervisor-runs-under-one-more-seccomp-filter", test_confined_hypervisor_runs_under_one_more_seccomp_filter },
  { "unconfined-hypervisor-stays-in-our-network-namespace", test_unconfined_hypervisor_stays_in_our_network_namespace },
  { "start-without-cap-sys-admin-is-a-permission-error", test_start_without_cap_sys_admin_is_a_permission_error },
  { "confined-hypervisor-runs-as-a-vm-user-without-capabilities", test_confined_hypervisor_runs_as_a_vm_user_without_capabilities },
  { "two-running-vms-get-different-uids", test_two_running_vms_get_different_uids },
  { "leases-of-killed-launchers-are-collected", test_leases_of_killed_launchers_are_collected },
  { "same-name-gets-a-free-uid-when-its-own-is-taken", test_same_name_gets_a_free_uid_when_its_own_is_taken },
  { "caller-user-keeps-uid-but-no-capabilities", test_caller_user_keeps_uid_but_no_capabilities },
  { "explicit-user-is-used", test_explicit_user_is_used },
  { "unreadable-kernel-is-a-permission-error-naming-it", test_unreadable_kernel_is_a_permission_error_naming_it },
};

static const TestCase qemu_tests[] = {
  { "confined-qemu-is-refused-an-inet-socket", test_confined_qemu_is_refused_an_inet_socket },
  { "link-between-confined-and-unconfined-vm-carries-ping", test_link_between_confined_and_unconfined_vm_carries_ping },
  { "user-mode-uplink-is-refused-naming-the-device", test_user_mode_uplink_is_refused_naming_the_device },
  { "unconfined-qemu-is-unprivileged-under-its-sandbox", test_unconfined_qemu_is_unprivileged_under_its_sandbox },
  { "passt-runs-as-the-vm-user-without-capabilities", test_passt_runs_as_the_vm_user_without_capabilities },
};

static void
add_tests (const TestBackend *backend, const TestCase *tests, gsize n_tests)
{
  test_add_vm_tests ("/confine", backend, tests, n_tests,
                     (GTestFixtureFunc) fixture_setup, (GTestFixtureFunc) test_vm_fixture_teardown);
}

int
main (int argc, char **argv)
{
  TestBackends backends;

  test_vm_suite_init (&argc, &argv, &backends);

  g_test_add_func ("/confine/plan/confined-is-off-until-set", test_confined_is_off_until_set);
  g_test_add_data_func ("/confine/plan/qemu/launch-plan-shows-confinement-above-exec",
                        GINT_TO_POINTER (UVM_HYPERVISOR_QEMU),
                        test_launch_plan_shows_confinement_above_exec);
  g_test_add_data_func ("/confine/plan/cloud-hypervisor/launch-plan-shows-confinement-above-exec",
                        GINT_TO_POINTER (UVM_HYPERVISOR_CLOUD_HYPERVISOR),
                        test_launch_plan_shows_confinement_above_exec);
  g_test_add_data_func ("/confine/plan/qemu/confinement-leaves-the-command-line-alone",
                        GINT_TO_POINTER (UVM_HYPERVISOR_QEMU),
                        test_confinement_leaves_the_command_line_alone);
  g_test_add_data_func ("/confine/plan/cloud-hypervisor/confinement-leaves-the-command-line-alone",
                        GINT_TO_POINTER (UVM_HYPERVISOR_CLOUD_HYPERVISOR),
                        test_confinement_leaves_the_command_line_alone);

  g_test_add_func ("/confine/spawn/filter-denies-inet-inet6-packet-netlink-sockets",
                   test_filter_denies_inet_inet6_packet_netlink_sockets);
  g_test_add_func ("/confine/spawn/filter-leaves-unix-sockets-alone",
                   test_filter_leaves_unix_sockets_alone);
  g_test_add_func ("/confine/spawn/filter-denies-i386-socket-calls",
                   test_filter_denies_i386_socket_calls);
  g_test_add_func ("/confine/spawn/namespace-alone-denies-no-socket",
                   test_namespace_alone_denies_no_socket);
  g_test_add_func ("/confine/spawn/new-namespace-has-only-a-down-lo",
                   test_new_namespace_has_only_a_down_lo);
  g_test_add_func ("/confine/spawn/namespace-refused-is-a-permission-error",
                   test_namespace_refused_is_a_permission_error);

  add_tests (backends.qemu, shared_tests, G_N_ELEMENTS (shared_tests));
  add_tests (backends.qemu, qemu_tests, G_N_ELEMENTS (qemu_tests));
  add_tests (backends.ch_standin, shared_tests, G_N_ELEMENTS (shared_tests));
  add_tests (backends.cloud_hypervisor, shared_tests, G_N_ELEMENTS (shared_tests));

  return test_vm_suite_run (&backends);
}
