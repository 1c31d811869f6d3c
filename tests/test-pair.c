/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Whonix-style pair as a unit (uvm_vm_set_gateway()): real qemu guests
 * under TCG. The gateway has two NICs, the uplink (qemu user-mode
 * networking) as eth0 and the internal isolated link as eth1; the
 * workstation, confined, has one NIC on the internal link. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include <uvm/uvm.h>

#include "uvm-test-util.h"
#include "whonix-pair.h"

#define BOOT_TIMEOUT_MS 60000
/* The guest retries a ping for ~20 s before it reports a failure. */
#define PING_TIMEOUT_MS 90000

typedef TestVmFixture Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  test_vm_fixture_init (f, data, "uvm-pair-XXXXXX");
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  test_vm_fixture_clear (f);
}

/* The gateway: uplink as eth0, @link as eth1, Whonix addresses. */
static UvmVm *
gateway_new (Fixture *f, UvmNetwork *uplink, UvmNetwork *link, const char *extra)
{
  g_autofree char *cmdline = g_strdup_printf ("uvm.ip=" WHONIX_GATEWAY_EXTERNAL
                                              " uvm.ip1=" WHONIX_GATEWAY_INTERNAL "%s%s",
                                              extra ? " " : "", extra ? extra : "");
  UvmVm *gw = test_guest_vm_new (f->b, "gateway", f->dir, cmdline);

  if (uplink != NULL)
    uvm_vm_add_device (gw, uvm_device_new_net (uplink, NULL));
  uvm_vm_add_device (gw, uvm_device_new_net (link, NULL));
  return gw;
}

/* The confined workstation on @link, behind @gw. */
static UvmVm *
workstation_new (Fixture *f, UvmVm *gw, UvmNetwork *link, const char *extra)
{
  g_autofree char *cmdline = g_strdup_printf ("uvm.ip=" WHONIX_WORKSTATION_INTERNAL "%s%s",
                                              extra ? " " : "", extra ? extra : "");
  UvmVm *ws = test_guest_vm_new (f->b, "workstation", f->dir, cmdline);

  uvm_vm_add_device (ws, uvm_device_new_net (link, NULL));
  uvm_vm_set_confined (ws, TRUE);
  uvm_vm_set_gateway (ws, gw);
  return ws;
}

/* ---- Without guests ---------------------------------------------------- */

static void
test_gateway_reference_is_weak (void)
{
  UvmVm *gw = uvm_vm_new ("gw", UVM_HYPERVISOR_QEMU);
  UvmVm *other = uvm_vm_new ("other", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmVm) ws = uvm_vm_new ("ws", UVM_HYPERVISOR_QEMU);

  g_assert_null (uvm_vm_get_gateway (ws));
  uvm_vm_set_gateway (ws, gw);
  g_assert_true (uvm_vm_get_gateway (ws) == gw);
  uvm_vm_set_gateway (ws, other);
  g_assert_true (uvm_vm_get_gateway (ws) == other);
  uvm_vm_set_gateway (ws, gw);
  /* No reference taken: the gateway goes with its last one... */
  g_object_add_weak_pointer (G_OBJECT (gw), (gpointer *) &gw);
  g_object_unref (gw);
  g_assert_null (gw);
  g_assert_null (uvm_vm_get_gateway (ws));
  /* ...and the workstation's hook on the old one was removed. */
  g_object_unref (other);
  uvm_vm_set_gateway (ws, NULL);
  g_assert_null (uvm_vm_get_gateway (ws));
}

/* ---- With guests ------------------------------------------------------- */

static void
test_workstation_start_refused_without_running_gateway (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL;
  g_autoptr(GError) error = NULL;

  SKIP_IF_UNAVAILABLE (f);
  link = uvm_network_new_isolated ("whonix-internal");
  gw = gateway_new (f, NULL, link, NULL);
  ws = workstation_new (f, gw, link, NULL);

  /* Defined, never started. */
  g_assert_false (uvm_vm_start (ws, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_nonnull (strstr (error->message, "gateway"));
  g_clear_error (&error);
  g_assert_cmpint (uvm_vm_get_state (ws), ==, UVM_VM_STATE_DEFINED);
  g_assert_cmpint (uvm_vm_get_pid (ws), ==, 0);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (ws), G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);

  /* Started, then stopped: refused again. */
  test_vm_start_ok (gw);
  test_vm_stop_ok (gw);
  g_assert_false (uvm_vm_start (ws, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_clear_error (&error);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (ws), G_FILE_TEST_EXISTS));
  g_assert_cmpint (uvm_vm_get_pid (ws), ==, 0);
}

static void
test_workstation_start_refused_without_shared_isolated_network (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL, other = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL, ws2 = NULL;
  g_autoptr(GError) error = NULL;

  SKIP_IF_UNAVAILABLE (f);
  link = uvm_network_new_isolated ("whonix-internal");
  other = uvm_network_new_isolated ("elsewhere");
  gw = gateway_new (f, NULL, link, NULL);
  ws = workstation_new (f, gw, other, NULL);
  test_vm_start_ok (gw);

  g_assert_false (uvm_vm_start (ws, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_nonnull (strstr (error->message, "isolated network"));
  g_clear_error (&error);
  g_assert_cmpint (uvm_vm_get_pid (ws), ==, 0);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (ws), G_FILE_TEST_EXISTS));

  /* A workstation with no network at all is refused as well. */
  ws2 = uvm_vm_new ("bare", uvm_vm_get_hypervisor (ws));
  uvm_vm_set_gateway (ws2, gw);
  g_assert_false (uvm_vm_start (ws2, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_clear_error (&error);
  test_vm_stop_ok (gw);
}

/* The gateway is the workstation's only way out: a second NIC on anything
 * else (here the gateway's own uplink) is refused before anything starts. */
static void
test_workstation_with_a_second_way_out_is_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL, uplink = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL;
  g_autoptr(GError) error = NULL;

  SKIP_IF_UNAVAILABLE (f);
  link = uvm_network_new_isolated ("whonix-internal");
  uplink = uvm_network_new_uplink ("whonix-uplink");
  gw = gateway_new (f, NULL, link, NULL);
  ws = workstation_new (f, gw, link, NULL);
  uvm_vm_set_confined (ws, FALSE);   /* so that only the gateway rule can refuse it */
  uvm_vm_add_device (ws, uvm_device_new_net (uplink, NULL));
  test_vm_start_ok (gw);

  g_assert_false (uvm_vm_start (ws, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_nonnull (strstr (error->message, "whonix-uplink"));
  g_assert_nonnull (strstr (error->message, "only through its gateway"));
  g_assert_cmpint (uvm_vm_get_pid (ws), ==, 0);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (ws), G_FILE_TEST_EXISTS));
  test_vm_stop_ok (gw);
}

/* @vm's hypervisor runs with no uid 0 and no capability; returns its uid. */
static guint
assert_unprivileged (UvmVm *vm)
{
  int pid = uvm_vm_get_pid (vm);
  g_autofree char *uid = test_proc_status_field (pid, "Uid");
  g_autofree char *cap_eff = test_proc_status_field (pid, "CapEff");
  g_autofree char *cap_bnd = test_proc_status_field (pid, "CapBnd");
  g_auto(GStrv) uids = g_strsplit (uid, "\t", -1);

  g_test_message ("%s (pid %d): Uid %s, CapEff %s, CapBnd %s", uvm_vm_get_name (vm), pid, uid,
                  cap_eff, cap_bnd);
  g_assert_cmpuint (g_strv_length (uids), ==, 4);
  for (guint i = 0; i < 4; i++)
    g_assert_cmpstr (uids[i], !=, "0");
  g_assert_cmpstr (cap_eff, ==, "0000000000000000");
  return (guint) g_ascii_strtoull (uids[0], NULL, 10);
}

/* The workstation pings its gateway, both hypervisors running as users of
 * their own without capabilities. */
static void
test_workstation_reaches_gateway (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL, uplink = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL;

  SKIP_IF_UNAVAILABLE (f);
  link = uvm_network_new_isolated ("whonix-internal");
  uplink = uvm_network_new_uplink ("whonix-uplink");
  gw = gateway_new (f, uplink, link, NULL);
  ws = workstation_new (f, gw, link, "uvm.ping=10.152.152.10");
  test_vm_start_ok (gw);
  test_vm_start_ok (ws);
  g_assert_true (test_vm_wait_for_text (ws, "UVM-PING-OK 10.152.152.10",
                                     PING_TIMEOUT_MS));
  g_assert_cmpuint (assert_unprivileged (gw), !=, assert_unprivileged (ws));
  test_vm_stop_ok (ws);
  test_vm_stop_ok (gw);
}

static void
test_workstation_cannot_reach_uplink (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL, uplink = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL;
  g_autofree char *console = NULL;

  SKIP_IF_UNAVAILABLE (f);
  link = uvm_network_new_isolated ("whonix-internal");
  uplink = uvm_network_new_uplink ("whonix-uplink");
  gw = gateway_new (f, uplink, link, "uvm.ping=" WHONIX_UPLINK_GATEWAY);
  /* The gateway's uplink address too: the workstation has no route off
   * its /18, so anything beyond the gateway is unreachable. */
  ws = workstation_new (f, gw, link, "uvm.ping=10.152.152.10," WHONIX_UPLINK_GATEWAY ",10.0.2.15");
  test_vm_start_ok (gw);
  test_vm_start_ok (ws);
  /* The address is reachable from the right place... */
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (gw),
                                     "UVM-PING-OK " WHONIX_UPLINK_GATEWAY, PING_TIMEOUT_MS));
  /* ...and not from the workstation, which does reach its gateway. */
  g_assert_true (test_vm_wait_for_text (ws, "UVM-PING-OK 10.152.152.10",
                                     PING_TIMEOUT_MS));
  g_assert_true (test_wait_for_text (uvm_vm_get_console_path (ws),
                                     "UVM-PING-FAIL " WHONIX_UPLINK_GATEWAY, PING_TIMEOUT_MS));
  g_assert_true (test_vm_wait_for_text (ws, "UVM-PING-FAIL 10.0.2.15",
                                     PING_TIMEOUT_MS));
  g_assert_true (g_file_get_contents (uvm_vm_get_console_path (ws), &console, NULL, NULL));
  g_assert_null (strstr (console, "UVM-PING-OK " WHONIX_UPLINK_GATEWAY));
  g_assert_null (strstr (console, "UVM-PING-OK 10.0.2.15"));
  test_vm_stop_ok (ws);
  test_vm_stop_ok (gw);
}

static void
test_gateway_death_stops_workstation (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmNetwork) link = NULL, uplink = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL;
  EventLog log = { 0 };
  g_autofree char *states = NULL;
  int ws_pid, exited, stopping, stopped;
  gint64 t0;

  SKIP_IF_UNAVAILABLE (f);
  link = uvm_network_new_isolated ("whonix-internal");
  uplink = uvm_network_new_uplink ("whonix-uplink");
  gw = gateway_new (f, uplink, link, NULL);
  ws = workstation_new (f, gw, link, "uvm.ping=10.152.152.10");
  test_vm_start_ok (gw);
  test_vm_start_ok (ws);
  g_assert_true (test_vm_wait_for_text (ws, "UVM-PING-OK 10.152.152.10",
                                     PING_TIMEOUT_MS));
  event_log_attach (&log, ws);
  ws_pid = uvm_vm_get_pid (ws);
  g_assert_cmpint (ws_pid, >, 0);

  /* From outside, as an OOM kill or a crash would. */
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (kill (uvm_vm_get_pid (gw), SIGKILL), ==, 0);
  g_assert_true (test_wait_for_state (ws, UVM_VM_STATE_STOPPED, 5000));
  g_test_message ("workstation stopped %" G_GINT64_FORMAT " ms after the gateway's SIGKILL",
                  (g_get_monotonic_time () - t0) / 1000);
  g_assert_cmpint (uvm_vm_get_state (gw), ==, UVM_VM_STATE_CRASHED);
  g_assert_cmpint (uvm_vm_get_pid (ws), ==, 0);
  g_assert_cmpint (kill (ws_pid, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);

  states = event_log_states (&log);
  g_test_message ("workstation states: %s", states);
  stopping = event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_STOPPING);
  exited = event_log_find (&log, 0, UVM_EVENT_HYPERVISOR_EXITED, 0);
  stopped = event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_STOPPED);
  g_assert_cmpint (stopping, >=, 0);
  g_assert_cmpint (exited, >, stopping);
  g_assert_cmpint (stopped, >, exited);
  event_log_clear (&log);

  /* Fail closed afterwards too: no restart behind a dead gateway. */
  {
    g_autoptr(GError) error = NULL;

    g_assert_false (uvm_vm_start (ws, NULL, &error));
    g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  }
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (ws), G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (gw), G_FILE_TEST_EXISTS));
}

static void
test_dropping_pair_leaves_nothing (Fixture *f, gconstpointer data)
{
  UvmNetwork *link, *uplink;
  UvmVm *gw, *ws;
  g_autofree char *gw_dir = NULL, *ws_dir = NULL;
  int gw_pid, ws_pid;

  SKIP_IF_UNAVAILABLE (f);
  link = uvm_network_new_isolated ("whonix-internal");
  uplink = uvm_network_new_uplink ("whonix-uplink");
  gw = gateway_new (f, uplink, link, NULL);
  ws = workstation_new (f, gw, link, NULL);
  test_vm_start_ok (gw);
  test_vm_start_ok (ws);
  gw_pid = uvm_vm_get_pid (gw);
  ws_pid = uvm_vm_get_pid (ws);
  gw_dir = g_strdup (uvm_vm_get_runtime_dir (gw));
  ws_dir = g_strdup (uvm_vm_get_runtime_dir (ws));
  g_assert_true (g_file_test (ws_dir, G_FILE_TEST_IS_DIR));

  /* The gateway first: dropping it kills its hypervisor, which stops the
   * workstation, and clears the workstation's weak reference. */
  g_object_unref (gw);
  g_assert_cmpint (kill (gw_pid, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  g_assert_null (uvm_vm_get_gateway (ws));
  g_assert_true (test_wait_for_state (ws, UVM_VM_STATE_STOPPED, 5000));
  g_assert_cmpint (kill (ws_pid, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  g_object_unref (ws);
  g_object_unref (link);   /* the network holds the socket pair until here */
  g_object_unref (uplink);
  /* Let any finished task go. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (g_file_test (gw_dir, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (ws_dir, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);

  /* The other order: the workstation dropped while both run. */
  link = uvm_network_new_isolated ("whonix-internal");
  gw = gateway_new (f, NULL, link, NULL);
  ws = workstation_new (f, gw, link, NULL);
  test_vm_start_ok (gw);
  test_vm_start_ok (ws);
  ws_pid = uvm_vm_get_pid (ws);
  g_object_unref (ws);
  g_assert_cmpint (kill (ws_pid, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  gw_pid = uvm_vm_get_pid (gw);
  /* Its handler on the gateway went with it: the gateway's exit touches
   * nothing freed. */
  test_vm_stop_ok (gw);
  g_object_unref (gw);
  g_object_unref (link);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (kill (gw_pid, 0), ==, -1);
  g_assert_false (g_file_test (gw_dir, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (ws_dir, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

typedef void (*TestFunc) (Fixture *f, gconstpointer data);

static const struct {
  const char *path;
  TestFunc func;
} qemu_tests[] = {
  { "workstation-start-refused-without-running-gateway", test_workstation_start_refused_without_running_gateway },
  { "workstation-start-refused-without-shared-isolated-network", test_workstation_start_refused_without_shared_isolated_network },
  { "workstation-with-a-second-way-out-is-refused", test_workstation_with_a_second_way_out_is_refused },
  { "workstation-reaches-gateway", test_workstation_reaches_gateway },
  { "workstation-cannot-reach-uplink", test_workstation_cannot_reach_uplink },
  { "gateway-death-stops-workstation", test_gateway_death_stops_workstation },
  { "dropping-pair-leaves-nothing", test_dropping_pair_leaves_nothing },
};

int
main (int argc, char **argv)
{
  TestBackend *qemu;
  int ret;

  g_test_init (&argc, &argv, NULL);
  test_warm_up_glib ();
  qemu = test_backend_new_qemu ();

  g_test_add_func ("/pair/gateway-reference-is-weak", test_gateway_reference_is_weak);
  for (gsize i = 0; i < G_N_ELEMENTS (qemu_tests); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pair/%s/%s", qemu->name, qemu_tests[i].path);

      g_test_add (path, Fixture, qemu, fixture_setup, qemu_tests[i].func, fixture_teardown);
    }
  ret = g_test_run ();
  test_backend_free (qemu);
  return ret;
}
