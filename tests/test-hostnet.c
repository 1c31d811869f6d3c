/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Networks that use the host's own stack: taps on an existing host bridge
 * (UVM_NETWORK_BRIDGE) and uplinks through a library-made tap with NAT
 * (UVM_UPLINK_TAP_NAT).  Real processes (qemu guests under TCG and the
 * cloud-hypervisor stand-in), each test in a child that entered a private
 * network namespace first (uvm-netns-util.h).
 *
 * The NAT tests give the namespace a veth to a second namespace,
 * "outside", that holds 198.51.100.1/24 and has no route to the guest's
 * 10.0.2.0/24: a ping from the guest to 198.51.100.1 is answered only
 * when the library masqueraded it to the namespace's 198.51.100.2, so a
 * missing or wrong NAT table makes the test fail. */
#include <string.h>
#include <signal.h>

#include <uvm/uvm.h>

#include "uvm-netns-util.h"
#include "uvm-test-util.h"

/* The guest retries a ping for ~20 s before it reports a failure. */
#define PING_TIMEOUT_MS 120000
#define OUTSIDE TEST_OUTSIDE_ADDRESS

static TestBackend *qemu_backend, *ch_backend;

static gboolean
nft_table_exists (const char *table)
{
  g_autofree char *cmd = g_strdup_printf ("nft list table ip %s", table);
  int status = -1;

  g_autofree char *out = NULL, *err = NULL;

  g_assert_true (g_spawn_command_line_sync (cmd, &out, &err, &status, NULL));
  return g_spawn_check_wait_status (status, NULL);
}

/* An "outside" namespace behind a veth, with forwarding on here: the
 * host's policy the library leaves alone (see UVM_UPLINK_TAP_NAT). */
static GPid
make_outside (void)
{
  GPid outside = test_netns_outside_start ("uvm-vo", "uvm-vi");

  test_run_ok ("sysctl -qw net.ipv4.ip_forward=1");
  return outside;
}

/* ---- host bridge --------------------------------------------------------- */

/* A guest on a host bridge reaches the host's address on that bridge;
 * its tap is a port of the bridge while it runs and gone after; the
 * bridge itself is left as it was. */
static void
test_host_bridge_member_reaches_host (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) net = uvm_network_new_bridge ("lan", "uvm-hostbr");
  g_autoptr(UvmVm) vm = test_guest_vm_new (b, "member", dir,
                                           "uvm.ip=192.0.2.20/24 uvm.ping=192.0.2.1");
  g_autofree char *tap = NULL, *master = NULL, *master_link = NULL, *left = NULL;

  test_run_ok ("ip link add uvm-hostbr type bridge");
  test_run_ok ("ip addr add 192.0.2.1/24 dev uvm-hostbr");
  test_run_ok ("ip link set uvm-hostbr up");
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  tap = test_tap_of (vm);
  g_assert_true (g_str_has_prefix (tap, "uvt"));

  test_vm_start_ok (vm);
  master_link = g_strdup_printf ("/sys/class/net/%s/master", tap);
  master = g_file_read_link (master_link, NULL);
  g_assert_nonnull (master);
  g_assert_true (g_str_has_suffix (master, "/uvm-hostbr"));
  test_assert_console (dir, "member", "UVM-PING-OK 192.0.2.1", PING_TIMEOUT_MS);
  test_vm_stop_ok (vm);

  g_assert_false (test_link_exists (tap));
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "uvm-hostbr");
  test_run_ok ("ip link delete uvm-hostbr");
}

/* A host bridge that does not exist is a start error naming it, and
 * nothing is left behind. */
static void
test_missing_host_bridge_is_refused (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) net = uvm_network_new_bridge ("lan", "uvm-nobr");
  g_autoptr(UvmVm) vm = test_guest_vm_new (b, "member", dir, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *left = NULL;

  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_START_FAILED);
  g_assert_nonnull (strstr (error->message, "host bridge 'uvm-nobr' does not exist"));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* ---- tap + NAT uplink ----------------------------------------------------- */

/* The gateway-style guest (10.0.2.15/24 via 10.0.2.2) reaches an address
 * beyond the namespace's own: only NAT can bring the answer back.  The
 * tap, its address and the table exist while it runs and are gone after
 * a graceful stop. */
static void
test_tap_nat_reaches_outside (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("wan");
  g_autoptr(UvmVm) vm = test_guest_vm_new (b, "gw", dir,
                                           "uvm.ip=10.0.2.15/24 uvm.gw=10.0.2.2 "
                                           "uvm.ping=" OUTSIDE);
  UvmDevice *nic = uvm_device_new_net (uplink, NULL);
  g_autofree char *fwd = NULL, *left = NULL;
  GPid outside = make_outside ();
  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_TAP_NAT);
  uvm_device_set_tap_name (nic, "uvm-gw-up");
  uvm_vm_add_device (vm, nic);

  test_vm_start_ok (vm);
  g_assert_true (test_link_exists ("uvm-gw-up"));
  g_assert_true (nft_table_exists ("uvm_uvm_gw_up"));
  g_assert_true (g_file_get_contents ("/proc/sys/net/ipv4/conf/uvm-gw-up/forwarding", &fwd,
                                      NULL, NULL));
  g_assert_cmpstr (g_strstrip (fwd), ==, "1");
  test_assert_console (dir, "gw", "UVM-PING-OK " OUTSIDE, PING_TIMEOUT_MS);
  test_vm_stop_ok (vm);

  g_assert_false (test_link_exists ("uvm-gw-up"));
  g_assert_false (nft_table_exists ("uvm_uvm_gw_up"));
  test_run_ok ("ip link delete uvm-vo");
  test_netns_peer_stop (outside);
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* After a SIGKILL of the hypervisor the tap and the table are gone too;
 * the uplink can be used again at once. */
static void
test_tap_nat_cleanup_after_sigkill (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("wan");
  g_autoptr(UvmVm) vm = test_guest_vm_new (b, "gw", dir, NULL);
  g_autofree char *tap = NULL, *table = NULL, *left = NULL;

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_TAP_NAT);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  tap = test_tap_of (vm);
  table = g_strdup_printf ("uvm_%s", tap);
  for (int round = 0; round < 2; round++)
    {
      test_vm_start_ok (vm);
      g_assert_true (test_link_exists (tap));
      g_assert_true (nft_table_exists (table));
      g_assert_cmpint (kill (uvm_vm_get_pid (vm), SIGKILL), ==, 0);
      g_assert_true (test_wait_for_state (vm, UVM_VM_STATE_CRASHED, 10000));
      g_assert_false (test_link_exists (tap));
      g_assert_false (nft_table_exists (table));
    }
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

/* 10.0.2.2 taken already (a second tap+NAT uplink, a local network): the
 * start is refused before anything is made. */
static void
test_tap_nat_refuses_taken_address (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("wan");
  g_autoptr(UvmVm) vm = test_guest_vm_new (b, "gw", dir, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *left = NULL;

  test_run_ok ("ip link add uvm-other type bridge");
  test_run_ok ("ip addr add 10.0.2.2/24 dev uvm-other");
  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_TAP_NAT);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "10.0.2.2 is an address of this host"));
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "uvm-other");
}

/* Without CAP_NET_ADMIN: a permission error that names it, nothing left. */
static void
test_tap_nat_without_cap_net_admin (gconstpointer data, const char *dir)
{
  const TestBackend *b = data;
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("wan");
  g_autoptr(UvmVm) vm = test_guest_vm_new (b, "gw", dir, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *left = NULL;

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_TAP_NAT);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  test_drop_cap_net_admin ();
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PERMISSION);
  g_assert_nonnull (strstr (error->message, "CAP_NET_ADMIN"));
  g_assert_nonnull (strstr (error->message, "uplink 'wan'"));
  left = test_links_but_lo ();
  g_assert_cmpstr (left, ==, "");
}

int
main (int argc, char **argv)
{
  static const struct {
    const char *path;
    TestNetnsBody body;
  } cases[] = {
    { "host-bridge/member-reaches-host", test_host_bridge_member_reaches_host },
    { "host-bridge/missing-bridge-is-refused", test_missing_host_bridge_is_refused },
    { "tap-nat/reaches-outside", test_tap_nat_reaches_outside },
    { "tap-nat/cleanup-after-sigkill", test_tap_nat_cleanup_after_sigkill },
    { "tap-nat/refuses-taken-address", test_tap_nat_refuses_taken_address },
    { "tap-nat/without-cap-net-admin", test_tap_nat_without_cap_net_admin },
  };
  int ret;

  g_test_init (&argc, &argv, NULL);
  qemu_backend = test_backend_new_qemu ();
  ch_backend = test_backend_new_ch_standin ();
  (void) test_guest_available ();   /* finds the guest's paths, in the children too */
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const TestBackend *backends[] = { qemu_backend, ch_backend };

      for (guint j = 0; j < G_N_ELEMENTS (backends); j++)
        {
          g_autofree char *path = g_strdup_printf ("/hostnet/%s/%s", backends[j]->name,
                                                   cases[i].path);
          test_netns_add (path, backends[j], cases[i].body, test_backend_skip_cb);
        }
    }
  ret = g_test_run ();
  test_backend_free (qemu_backend);
  test_backend_free (ch_backend);
  return ret;
}
