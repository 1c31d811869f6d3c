/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Isolated networks built as a bridge: more than two members, or a
 * cloud-hypervisor member.  Real processes (the cloud-hypervisor stand-in,
 * qemu guests under TCG), each test in a g_test_trap_subprocess() child
 * that first enters a private network namespace, so that every bridge and
 * tap, and all traffic, stay inside it.
 *
 * The names of the bridge and taps are read back from the launch plan,
 * which says which way (socket pair or bridge) the network is built. */
#include <signal.h>
#include <string.h>

#include <uvm/uvm.h>

#include "uvm-netns-util.h"
#include "uvm-test-util.h"

#define BOOT_TIMEOUT_MS 60000
/* The guest retries a ping for ~20 s before it reports a failure. */
#define PING_TIMEOUT_MS 120000

static TestBackend *qemu_backend, *ch_backend;

/* ---- tests --------------------------------------------------------------- */

/* Two cloud-hypervisor members ping each other over the bridge, which has
 * no host address while they run and is gone, with the taps, after. */
static void
test_two_members_ping_over_bridge (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) a = test_member_new (b, dir, "a", net,
                                        "uvm.ip=10.153.0.1/24 uvm.ping=10.153.0.2");
  g_autoptr(UvmVm) c = test_member_new (b, dir, "c", net,
                                        "uvm.ip=10.153.0.2/24 uvm.ping=10.153.0.1");
  g_autofree char *bridge = test_bridge_of (a), *bridge_c = test_bridge_of (c);
  g_autofree char *tap_a = test_tap_of (a), *tap_c = test_tap_of (c), *left = NULL;

  g_assert_cmpstr (bridge, ==, bridge_c);
  g_assert_true (g_str_has_prefix (bridge, "uvb"));
  g_assert_cmpstr (tap_a, !=, tap_c);
  g_assert_cmpuint (strlen (tap_a), <=, 15);
  g_assert_false (test_link_exists (bridge));

  test_vm_start_ok (a);
  g_assert_true (test_is_bridge (bridge));
  g_assert_true (test_link_exists (tap_a));
  test_vm_start_ok (c);
  test_assert_console (dir, "a", "UVM-PING-OK 10.153.0.2", PING_TIMEOUT_MS);
  test_assert_console (dir, "c", "UVM-PING-OK 10.153.0.1", PING_TIMEOUT_MS);

  g_assert_true (test_is_bridge (bridge));
  g_assert_false (test_has_ipv4 (bridge));
  g_assert_false (test_has_ipv6 (bridge));
  g_assert_false (test_has_ipv6 (tap_a));
  g_assert_false (test_has_ipv6 (tap_c));

  test_vm_stop_ok (a);
  g_assert_true (test_is_bridge (bridge));    /* c still uses it */
  g_assert_false (test_link_exists (tap_a));
  test_vm_stop_ok (c);
  g_assert_false (test_link_exists (bridge));
  g_assert_false (test_link_exists (tap_c));
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* SIGKILL of the last member's hypervisor: the bridge is removed too. */
static void
test_sigkill_of_last_member_removes_bridge (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) a = test_member_new (b, dir, "a", net, "uvm.ip=10.153.0.1/24");
  g_autoptr(UvmVm) c = test_member_new (b, dir, "c", net, "uvm.ip=10.153.0.2/24");
  g_autofree char *bridge = test_bridge_of (a), *left = NULL;

  test_vm_start_ok (a);
  test_vm_start_ok (c);
  g_assert_true (test_is_bridge (bridge));
  test_vm_stop_ok (a);
  g_assert_true (test_is_bridge (bridge));
  g_assert_cmpint (kill (uvm_vm_get_pid (c), SIGKILL), ==, 0);
  g_assert_true (test_wait_for_state (c, UVM_VM_STATE_CRASHED, 10000));
  g_assert_false (test_link_exists (bridge));
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

static void
test_without_cap_net_admin_is_permission_error (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) a = test_member_new (b, dir, "a", net, "uvm.ip=10.153.0.1/24");
  g_autoptr(UvmVm) c = test_member_new (b, dir, "c", net, "uvm.ip=10.153.0.2/24");
  g_autoptr(GError) error = NULL;
  g_autofree char *left = NULL;
  guint fds_before;

  test_drop_cap_net_admin ();
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
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* Three qemu members (so a bridge): the gateway reaches both workstations
 * and they reach it, but their ports are isolated from each other. */
static void
test_three_qemu_members_with_isolated_workstations (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan3");
  g_autoptr(UvmVm) gw = test_member_new (b, dir, "gw", net,
                                         "uvm.ip=10.153.1.1/24 uvm.ping=10.153.1.2,10.153.1.3");
  g_autoptr(UvmVm) ws1 = test_member_new (b, dir, "ws1", net,
                                          "uvm.ip=10.153.1.2/24 uvm.ping=10.153.1.1,10.153.1.3");
  g_autoptr(UvmVm) ws2 = test_member_new (b, dir, "ws2", net,
                                          "uvm.ip=10.153.1.3/24 uvm.ping=10.153.1.1,10.153.1.2");
  g_autoptr(GError) error = NULL;
  g_autofree char *bridge = NULL, *plan_ws1 = NULL, *plan_gw = NULL, *left = NULL;

  uvm_vm_set_gateway (ws1, gw);
  uvm_vm_set_gateway (ws2, gw);
  bridge = test_bridge_of (gw);
  plan_gw = uvm_vm_get_launch_plan (gw, &error);
  g_assert_no_error (error);
  plan_ws1 = uvm_vm_get_launch_plan (ws1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (plan_gw, "open port"));
  g_assert_nonnull (strstr (plan_ws1, "isolated port (workstation)"));

  test_vm_start_ok (gw);
  test_vm_start_ok (ws1);
  test_vm_start_ok (ws2);
  g_assert_true (test_is_bridge (bridge));
  g_assert_false (test_has_ipv4 (bridge));
  g_assert_false (test_has_ipv6 (bridge));

  test_assert_console (dir, "ws1", "UVM-PING-OK 10.153.1.1", PING_TIMEOUT_MS);
  test_assert_console (dir, "ws2", "UVM-PING-OK 10.153.1.1", PING_TIMEOUT_MS);
  test_assert_console (dir, "gw", "UVM-PING-OK 10.153.1.2", PING_TIMEOUT_MS);
  test_assert_console (dir, "gw", "UVM-PING-OK 10.153.1.3", PING_TIMEOUT_MS);
  test_assert_console (dir, "ws1", "UVM-PING-FAIL 10.153.1.3", PING_TIMEOUT_MS);
  test_assert_console (dir, "ws2", "UVM-PING-FAIL 10.153.1.2", PING_TIMEOUT_MS);

  test_vm_stop_ok (ws1);
  test_vm_stop_ok (ws2);
  g_assert_true (test_is_bridge (bridge));
  test_vm_stop_ok (gw);
  g_assert_false (test_link_exists (bridge));
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  qemu_backend = test_backend_new_qemu ();
  ch_backend = test_backend_new_ch_standin ();
  test_netns_add ("/bridge/ch-standin/two-members-ping-over-bridge", ch_backend,
                  test_two_members_ping_over_bridge, test_backend_skip_cb);
  test_netns_add ("/bridge/ch-standin/sigkill-of-last-member-removes-bridge", ch_backend,
                  test_sigkill_of_last_member_removes_bridge, test_backend_skip_cb);
  test_netns_add ("/bridge/ch-standin/without-cap-net-admin-is-permission-error", ch_backend,
                  test_without_cap_net_admin_is_permission_error, test_backend_skip_cb);
  test_netns_add ("/bridge/qemu/three-members-with-isolated-workstations", qemu_backend,
                  test_three_qemu_members_with_isolated_workstations, test_backend_skip_cb);
  ret = g_test_run ();
  test_backend_free (qemu_backend);
  test_backend_free (ch_backend);
  return ret;
}
