/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test-only backend "qemu-minimal" (uvm-backend-qemu-minimal.c):
 * the backend table finds it by its name (internal lookups), and through
 * the public API libuvm plans with it, refuses what it lacks naming it,
 * and runs the real test guest on it (qemu under TCG).  The shared lifecycle tests run on it in
 * test-lifecycle; the three of them that read hypervisor-specific names
 * (events, the escape hatch chosen by is_qemu()) are skipped there and
 * checked here with this backend's own names. */
#include "uvm-test-util.h"
#include "uvm-backend-qemu-minimal.h"

#include <json-glib/json-glib.h>

#include <string.h>

#define BOOT_TIMEOUT_MS 60000

static TestBackend *minimal;

typedef TestVmFixture Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  test_vm_fixture_init (f, data, "uvm-qemu-minimal-XXXXXX");
}

/* The hypervisor's own answer to query-status, through the QMP escape
 * hatch (this backend has UVM_FEATURE_RAW_QMP). */
static char *
qmp_status (UvmVm *vm, gboolean *running)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, &error);
  g_autoptr(JsonNode) node = NULL;
  JsonObject *obj;

  g_assert_no_error (error);
  node = json_from_string (reply, NULL);
  g_assert_nonnull (node);
  obj = json_node_get_object (node);
  *running = json_object_get_boolean_member (obj, "running");
  return g_strdup (json_object_get_string_member (obj, "status"));
}

/* ---- The table ------------------------------------------------------- */

static void
test_table_finds_it_by_name (void)
{
  UvmHypervisor hypervisor = UVM_HYPERVISOR_QEMU;

  g_assert_true (uvm_backend_find (TEST_QEMU_MINIMAL_NAME, &hypervisor));
  g_assert_cmpint (hypervisor, ==, TEST_HYPERVISOR_QEMU_MINIMAL);
  g_assert_true (uvm_backend_lookup (TEST_HYPERVISOR_QEMU_MINIMAL, NULL) == &test_backend_qemu_minimal);
}

static void
test_table_reports_only_its_features (void)
{
  UvmHypervisor hv = TEST_HYPERVISOR_QEMU_MINIMAL;

  g_assert_true (uvm_hypervisor_supports (hv, UVM_FEATURE_MACHINE_PC));
  g_assert_true (uvm_hypervisor_supports (hv, UVM_FEATURE_SOFTWARE_EMULATION));
  g_assert_true (uvm_hypervisor_supports (hv, UVM_FEATURE_RAW_QMP));
  g_assert_false (uvm_hypervisor_supports (hv, UVM_FEATURE_MACHINE_Q35));
  g_assert_false (uvm_hypervisor_supports (hv, UVM_FEATURE_MACHINE_MICROVM));
  g_assert_false (uvm_hypervisor_supports (hv, UVM_FEATURE_BALLOON));
  g_assert_false (uvm_hypervisor_supports (hv, UVM_FEATURE_USER_NETWORK));
  g_assert_false (uvm_hypervisor_supports (hv, UVM_FEATURE_RAW_REST));
  /* The built-in qemu backend is not changed by another using qemu. */
  g_assert_true (uvm_hypervisor_supports (UVM_HYPERVISOR_QEMU, UVM_FEATURE_MACHINE_Q35));
}

/* ---- The plan -------------------------------------------------------- */

static void
test_plan_names_the_backend_and_its_requests (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = NULL;
  const char *caps, *cont, *status;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "planned", f->dir, NULL);
  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_test_message ("%s", plan);
  g_assert_nonnull (strstr (plan, "# libuvm launch plan for VM 'planned' (" TEST_QEMU_MINIMAL_NAME ")"));
  g_assert_nonnull (strstr (plan, "-machine pc"));
  g_assert_nonnull (strstr (plan, "-S"));
  /* Created stopped, then let run by the plan, then asked its state. */
  caps = strstr (plan, "{\"execute\": \"qmp_capabilities\"}");
  cont = strstr (plan, "{\"execute\": \"cont\"}");
  status = strstr (plan, "{\"execute\": \"query-status\"}");
  g_assert_nonnull (caps);
  g_assert_true (cont > caps);
  g_assert_true (status > cont);
}

static void
test_plan_of_paused_start_has_no_cont (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "pausedplan", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (plan, "\"cont\""));
  g_assert_nonnull (strstr (plan, "{\"execute\": \"query-status\"}"));
}

/* ---- What it lacks ----------------------------------------------------- */

/* uvm_vm_validate() of @vm fails with UVM_ERROR_UNSUPPORTED naming the
 * backend and @field. */
static void
assert_refused (UvmVm *vm, const char *field)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (uvm_vm_validate (vm, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_UNSUPPORTED);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, TEST_QEMU_MINIMAL_NAME));
  g_assert_true (g_str_has_prefix (error->message, field));
}

static void
test_refuses_q35_machine_naming_the_backend (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "q35", f->dir, NULL);
  uvm_vm_set_machine (vm, UVM_MACHINE_Q35);
  assert_refused (vm, "machine:");
}

static void
test_refuses_balloon_naming_the_backend (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "balloon", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_balloon ());
  assert_refused (vm, "devices[1]");
}

/* An uplink in AUTO mode resolves to the backend's default (user-mode
 * NAT), which it does not implement either: refused, not planned. */
static void
test_refuses_uplink_nic_naming_the_backend (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(UvmNetwork) net = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "uplink", f->dir, NULL);
  net = uvm_network_new_uplink ("outside");
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  assert_refused (vm, "devices[1]");
}

/* A device kind no feature bit covers: the backend's own check. */
static void
test_refuses_rng_naming_the_backend (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "rng", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  assert_refused (vm, "devices[1]");
}

static void
test_start_of_refused_definition_spawns_nothing (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "refused", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_balloon ());
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, TEST_QEMU_MINIMAL_NAME));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

static void
test_rest_escape_hatch_is_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "rest", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  test_vm_start_ok (vm);
  reply = uvm_vm_ch_request (vm, "GET", "vm.info", NULL, NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  test_vm_stop_ok (vm);
}

/* ---- What its own plan does -------------------------------------------- */
/* (The generic lifecycle runs on it in test-lifecycle: /qemu-minimal/...) */

/* The plan's "cont" ran the vCPUs: qemu said RESUME before the start
 * finished (the state it reported then was not the library's to take). */
static void
test_start_resumes_the_stopped_guest_with_cont (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  EventLog log = { NULL };
  g_autofree char *status = NULL;
  gboolean running = FALSE;
  int resume, ready;

  SKIP_IF_UNAVAILABLE (f);
  vm = test_guest_vm_new (f->b, "cont", f->dir, NULL);
  event_log_attach (&log, vm);
  test_vm_start_ok (vm);
  resume = event_log_find_name (&log, 0, "RESUME");
  ready = event_log_find (&log, 0, UVM_EVENT_STATE_CHANGED, UVM_VM_STATE_RUNNING);
  g_assert_cmpint (resume, >, 0);
  g_assert_cmpint (ready, >, resume);
  status = qmp_status (vm, &running);
  g_assert_cmpstr (status, ==, "running");
  g_assert_true (running);
  test_vm_stop_ok (vm);
  event_log_clear (&log);
}

static const TestVmCase vm_tests[] = {
  { "plan/names-the-backend-and-its-requests", test_plan_names_the_backend_and_its_requests },
  { "plan/paused-start-has-no-cont", test_plan_of_paused_start_has_no_cont },
  { "refuses/q35-machine-naming-the-backend", test_refuses_q35_machine_naming_the_backend },
  { "refuses/balloon-naming-the-backend", test_refuses_balloon_naming_the_backend },
  { "refuses/rng-naming-the-backend", test_refuses_rng_naming_the_backend },
  { "refuses/uplink-nic-naming-the-backend", test_refuses_uplink_nic_naming_the_backend },
  { "refuses/start-of-unsupported-definition-spawns-nothing", test_start_of_refused_definition_spawns_nothing },
  { "refuses/rest-escape-hatch", test_rest_escape_hatch_is_refused },
  { "start-resumes-the-stopped-guest-with-cont", test_start_resumes_the_stopped_guest_with_cont },
};

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  test_warm_up_glib ();
  minimal = test_backend_new_qemu_minimal ();

  g_test_add_func ("/" TEST_QEMU_MINIMAL_NAME "/table/finds-it-by-name", test_table_finds_it_by_name);
  g_test_add_func ("/" TEST_QEMU_MINIMAL_NAME "/table/reports-only-its-features",
                   test_table_reports_only_its_features);
  test_add_vm_tests ("", minimal, vm_tests, G_N_ELEMENTS (vm_tests),
                     (GTestFixtureFunc) fixture_setup, (GTestFixtureFunc) test_vm_fixture_teardown);

  ret = g_test_run ();
  test_backend_free (minimal);
  return ret;
}
