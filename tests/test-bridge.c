/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Isolated networks built as a bridge: more than two members, or a
 * cloud-hypervisor member.  Real processes (the cloud-hypervisor stand-in,
 * qemu guests under TCG), each test in a g_test_trap_subprocess() child
 * that first enters a private network namespace, so that every bridge and
 * tap, and all traffic, stay inside it.
 *
 * The names of the bridge and taps are read back from the launch plan,
 * which says which way (socket pair or bridge) the network is built. */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uvm/uvm.h>

#include "uvm-netns-util.h"
#include "uvm-test-util.h"

#define BOOT_TIMEOUT_MS 60000
/* The guest retries a ping for ~20 s before it reports a failure. */
#define PING_TIMEOUT_MS 120000

static TestBackend *qemu_backend, *ch_backend;

/* ---- private network namespace --------------------------------------- */

/* test_netns_enter() and test_netns_probe() are in uvm-netns-util.h;
 * this suite needs real privilege (no user namespace). */

static char *netns_skip_reason;

typedef struct {
  const char *path;
  const TestBackend *backend;
  void (*body) (const TestBackend *backend, const char *dir);
} NetnsTest;

static void
run_in_private_netns (gconstpointer data)
{
  const NetnsTest *test = data;

  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *dir = NULL;

      if (!test_netns_enter (FALSE, &error))
        g_error ("%s", error->message);
      g_assert_true (test_guest_available ());
      dir = g_dir_make_tmp ("uvm-bridge-XXXXXX", NULL);
      g_assert_nonnull (dir);
      test->body (test->backend, dir);
      test_remove_tree (dir);
      return;
    }
  if (netns_skip_reason != NULL)
    {
      g_test_skip (netns_skip_reason);
      return;
    }
  if (test_backend_skip (test->backend))
    return;
  g_test_trap_subprocess (NULL, 400 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* ---- reading the namespace back ---------------------------------------- */

static gboolean
link_exists (const char *name)
{
  g_autofree char *path = g_build_filename ("/sys/class/net", name, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static gboolean
is_bridge (const char *name)
{
  g_autofree char *path = g_build_filename ("/sys/class/net", name, "bridge", NULL);
  return g_file_test (path, G_FILE_TEST_IS_DIR);
}

/* The interfaces of this namespace other than lo, sorted, comma-separated. */
static char *
links_but_lo (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/sys/class/net", 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (strcmp (name, "lo") != 0)
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (char **) names->pdata);
}

static gboolean
has_ipv4 (const char *link)
{
  struct ifaddrs *ifa = NULL;
  gboolean found = FALSE;

  g_assert_cmpint (getifaddrs (&ifa), ==, 0);
  for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next)
    if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET && strcmp (i->ifa_name, link) == 0)
      found = TRUE;
  freeifaddrs (ifa);
  return found;
}

static gboolean
has_ipv6 (const char *link)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/net/if_inet6", &text, NULL, NULL))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
      guint n = g_strv_length (fields);
      if (n > 0 && strcmp (fields[n - 1], link) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The name quoted after @marker in the launch plan of @vm. */
static char *
plan_name (UvmVm *vm, const char *marker)
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

static char *
bridge_of (UvmVm *vm)
{
  return plan_name (vm, "on bridge '");
}

static char *
tap_of (UvmVm *vm)
{
  return plan_name (vm, ": tap '");
}

/* ---- helpers ------------------------------------------------------------ */

static UvmVm *
member_new (const TestBackend *b, const char *dir, const char *name, UvmNetwork *net,
            const char *cmdline)
{
  UvmVm *vm = test_guest_vm_new (b, name, dir, cmdline);
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  return vm;
}

static char *
console_of (const char *dir, const char *name)
{
  return g_strdup_printf ("%s/%s.console", dir, name);
}

static void
assert_console (const char *dir, const char *name, const char *text)
{
  g_autofree char *console = console_of (dir, name);
  g_autofree char *contents = NULL;

  if (!test_wait_for_text (console, text, PING_TIMEOUT_MS))
    {
      g_file_get_contents (console, &contents, NULL, NULL);
      g_error ("%s: no \"%s\" on the console:\n%s", name, text, contents ? contents : "");
    }
}

/* ---- tests --------------------------------------------------------------- */

/* Two cloud-hypervisor members ping each other over the bridge, which has
 * no host address while they run and is gone, with the taps, after. */
static void
test_two_members_ping_over_bridge (const TestBackend *b, const char *dir)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) a = member_new (b, dir, "a", net, "uvm.ip=10.153.0.1/24 uvm.ping=10.153.0.2");
  g_autoptr(UvmVm) c = member_new (b, dir, "c", net, "uvm.ip=10.153.0.2/24 uvm.ping=10.153.0.1");
  g_autofree char *bridge = bridge_of (a), *bridge_c = bridge_of (c);
  g_autofree char *tap_a = tap_of (a), *tap_c = tap_of (c), *left = NULL;

  g_assert_cmpstr (bridge, ==, bridge_c);
  g_assert_true (g_str_has_prefix (bridge, "uvb"));
  g_assert_cmpstr (tap_a, !=, tap_c);
  g_assert_cmpuint (strlen (tap_a), <=, 15);
  g_assert_false (link_exists (bridge));

  test_vm_start_ok (a);
  g_assert_true (is_bridge (bridge));
  g_assert_true (link_exists (tap_a));
  test_vm_start_ok (c);
  assert_console (dir, "a", "UVM-PING-OK 10.153.0.2");
  assert_console (dir, "c", "UVM-PING-OK 10.153.0.1");

  g_assert_true (is_bridge (bridge));
  g_assert_false (has_ipv4 (bridge));
  g_assert_false (has_ipv6 (bridge));
  g_assert_false (has_ipv6 (tap_a));
  g_assert_false (has_ipv6 (tap_c));

  test_vm_stop_ok (a);
  g_assert_true (is_bridge (bridge));    /* c still uses it */
  g_assert_false (link_exists (tap_a));
  test_vm_stop_ok (c);
  g_assert_false (link_exists (bridge));
  g_assert_false (link_exists (tap_c));
  left = links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* SIGKILL of the last member's hypervisor: the bridge is removed too. */
static void
test_sigkill_of_last_member_removes_bridge (const TestBackend *b, const char *dir)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) a = member_new (b, dir, "a", net, "uvm.ip=10.153.0.1/24");
  g_autoptr(UvmVm) c = member_new (b, dir, "c", net, "uvm.ip=10.153.0.2/24");
  g_autofree char *bridge = bridge_of (a), *left = NULL;

  test_vm_start_ok (a);
  test_vm_start_ok (c);
  g_assert_true (is_bridge (bridge));
  test_vm_stop_ok (a);
  g_assert_true (is_bridge (bridge));
  g_assert_cmpint (kill (uvm_vm_get_pid (c), SIGKILL), ==, 0);
  g_assert_true (test_wait_for_state (c, UVM_VM_STATE_CRASHED, 10000));
  g_assert_false (link_exists (bridge));
  left = links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* Drops CAP_NET_ADMIN from every set of this (root) process. */
static void
drop_cap_net_admin (void)
{
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };
  const guint32 bit = 1u << (CAP_NET_ADMIN % 32);

  g_assert_cmpint (prctl (PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0), ==, 0);
  g_assert_cmpint (syscall (SYS_capget, &header, data), ==, 0);
  data[CAP_NET_ADMIN / 32].effective &= ~bit;
  data[CAP_NET_ADMIN / 32].permitted &= ~bit;
  data[CAP_NET_ADMIN / 32].inheritable &= ~bit;
  g_assert_cmpint (syscall (SYS_capset, &header, data), ==, 0);
}

static void
test_without_cap_net_admin_is_permission_error (const TestBackend *b, const char *dir)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) a = member_new (b, dir, "a", net, "uvm.ip=10.153.0.1/24");
  g_autoptr(UvmVm) c = member_new (b, dir, "c", net, "uvm.ip=10.153.0.2/24");
  g_autoptr(GError) error = NULL;
  g_autofree char *left = NULL;
  guint fds_before;

  drop_cap_net_admin ();
  /* A first attempt sets up what GLib keeps for the process (the main
   * context's wakeup fd): the second is counted. */
  g_assert_false (uvm_vm_start (c, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PERMISSION);
  g_clear_error (&error);
  fds_before = test_count_fds ();
  g_assert_false (uvm_vm_start (a, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PERMISSION);
  g_test_message ("error message: %s", error->message);
  g_assert_nonnull (strstr (error->message, "CAP_NET_ADMIN"));
  g_assert_nonnull (strstr (error->message, "bridge"));
  g_assert_nonnull (strstr (error->message, "'lan'"));
  g_assert_cmpint (uvm_vm_get_pid (a), ==, 0);
  g_assert_cmpint (uvm_vm_get_state (a), !=, UVM_VM_STATE_RUNNING);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (a), G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, fds_before);
  left = links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* Three qemu members (so a bridge): the gateway reaches both workstations
 * and they reach it, but their ports are isolated from each other. */
static void
test_three_qemu_members_with_isolated_workstations (const TestBackend *b, const char *dir)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan3");
  g_autoptr(UvmVm) gw = member_new (b, dir, "gw", net,
                                    "uvm.ip=10.153.1.1/24 uvm.ping=10.153.1.2,10.153.1.3");
  g_autoptr(UvmVm) ws1 = member_new (b, dir, "ws1", net,
                                     "uvm.ip=10.153.1.2/24 uvm.ping=10.153.1.1,10.153.1.3");
  g_autoptr(UvmVm) ws2 = member_new (b, dir, "ws2", net,
                                     "uvm.ip=10.153.1.3/24 uvm.ping=10.153.1.1,10.153.1.2");
  g_autoptr(GError) error = NULL;
  g_autofree char *bridge = NULL, *plan_ws1 = NULL, *plan_gw = NULL, *left = NULL;

  uvm_vm_set_gateway (ws1, gw);
  uvm_vm_set_gateway (ws2, gw);
  bridge = bridge_of (gw);
  plan_gw = uvm_vm_get_launch_plan (gw, &error);
  g_assert_no_error (error);
  plan_ws1 = uvm_vm_get_launch_plan (ws1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (plan_gw, "open port"));
  g_assert_nonnull (strstr (plan_ws1, "isolated port (workstation)"));

  test_vm_start_ok (gw);
  test_vm_start_ok (ws1);
  test_vm_start_ok (ws2);
  g_assert_true (is_bridge (bridge));
  g_assert_false (has_ipv4 (bridge));
  g_assert_false (has_ipv6 (bridge));

  assert_console (dir, "ws1", "UVM-PING-OK 10.153.1.1");
  assert_console (dir, "ws2", "UVM-PING-OK 10.153.1.1");
  assert_console (dir, "gw", "UVM-PING-OK 10.153.1.2");
  assert_console (dir, "gw", "UVM-PING-OK 10.153.1.3");
  assert_console (dir, "ws1", "UVM-PING-FAIL 10.153.1.3");
  assert_console (dir, "ws2", "UVM-PING-FAIL 10.153.1.2");

  test_vm_stop_ok (ws1);
  test_vm_stop_ok (ws2);
  g_assert_true (is_bridge (bridge));
  test_vm_stop_ok (gw);
  g_assert_false (link_exists (bridge));
  left = links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

int
main (int argc, char **argv)
{
  static NetnsTest tests[] = {
    { "/bridge/ch-standin/two-members-ping-over-bridge", NULL, test_two_members_ping_over_bridge },
    { "/bridge/ch-standin/sigkill-of-last-member-removes-bridge", NULL,
      test_sigkill_of_last_member_removes_bridge },
    { "/bridge/ch-standin/without-cap-net-admin-is-permission-error", NULL,
      test_without_cap_net_admin_is_permission_error },
    { "/bridge/qemu/three-members-with-isolated-workstations", NULL,
      test_three_qemu_members_with_isolated_workstations },
  };
  int ret;

  g_test_init (&argc, &argv, NULL);
  qemu_backend = test_backend_new_qemu ();
  ch_backend = test_backend_new_ch_standin ();
  tests[0].backend = tests[1].backend = tests[2].backend = ch_backend;
  tests[3].backend = qemu_backend;
  if (!g_test_subprocess ())
    netns_skip_reason = test_netns_probe (FALSE);
  for (guint i = 0; i < G_N_ELEMENTS (tests); i++)
    g_test_add_data_func (tests[i].path, &tests[i], run_in_private_netns);
  ret = g_test_run ();
  test_backend_free (qemu_backend);
  test_backend_free (ch_backend);
  g_free (netns_skip_reason);
  return ret;
}
