/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The balloon target means the memory the guest keeps, on every backend. */
#include "uvm-test-util.h"

#include <json-glib/json-glib.h>
#include <string.h>

typedef struct {
  char *dir;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("uvm-balloon-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  test_remove_tree (f->dir);
  g_free (f->dir);
}

/* qemu's own account of the guest's memory, from query-balloon. */
static gint64
qemu_balloon_actual (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = uvm_vm_qmp_execute (vm, "query-balloon", NULL, NULL, &error);
  g_autoptr(JsonNode) node = NULL;

  g_assert_no_error (error);
  node = json_from_string (reply, NULL);
  return json_object_get_int_member (json_node_get_object (node), "actual");
}

static gboolean
wait_for_actual (UvmVm *vm, gint64 bytes, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (g_get_monotonic_time () < deadline)
    {
      if (qemu_balloon_actual (vm) == bytes)
        return TRUE;
      g_usleep (100 * 1000);
    }
  return qemu_balloon_actual (vm) == bytes;
}

static void
test_qemu_guest_keeps_the_target (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (!test_guest_available ())
    {
      g_test_skip ("no test guest: set UVM_TEST_GUEST_DIR (meson test sets it)");
      return;
    }
  vm = test_guest_vm_new ("balloon", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_balloon ());
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  /* The guest's virtio_balloon driver is loaded before the marker. */
  g_assert_true (test_vm_wait_for_text (vm, GUEST_READY, 60000));
  g_assert_cmpint (qemu_balloon_actual (vm), ==, 256 * UVM_MIB);

  g_assert_true (uvm_vm_set_balloon_target (vm, 160 * UVM_MIB, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for_actual (vm, 160 * UVM_MIB, 30000));

  g_assert_true (uvm_vm_set_balloon_target (vm, 256 * UVM_MIB, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for_actual (vm, 256 * UVM_MIB, 30000));
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
test_target_without_balloon_device_is_unsupported (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (!test_guest_available ())
    {
      g_test_skip ("no test guest");
      return;
    }
  vm = test_guest_vm_new ("noballoon", f->dir, NULL);
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_false (uvm_vm_set_balloon_target (vm, 128 * UVM_MIB, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
test_target_above_memory_is_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (!test_guest_available ())
    {
      g_test_skip ("no test guest");
      return;
    }
  vm = test_guest_vm_new ("bigballoon", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_balloon ());
  uvm_vm_set_start_paused (vm, TRUE);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_false (uvm_vm_set_balloon_target (vm, 512 * UVM_MIB, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_nonnull (strstr (error->message, "balloon target"));
  g_clear_error (&error);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

static void
test_target_on_stopped_vm_is_not_running (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("idle", UVM_HYPERVISOR_QEMU);
  g_autoptr(GError) error = NULL;

  uvm_vm_add_device (vm, uvm_device_new_balloon ());
  g_assert_false (uvm_vm_set_balloon_target (vm, 128 * UVM_MIB, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_NOT_RUNNING);
}

/* cloud-hypervisor's vm.resize takes the balloon's size; its vm.info
 * reports the memory the guest is left with.  Run on the stand-in, which
 * keeps v53's arithmetic for a guest that inflates at once, and on a real
 * cloud-hypervisor when there is one: the balloon size in its config is
 * control plane; the memory left, only where its guest runs. */
static void
test_cloud_hypervisor_guest_keeps_the_target (Fixture *f, gconstpointer data)
{
  const TestBackend *backend = data;
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *info = NULL;
  g_autoptr(JsonNode) node = NULL;
  JsonObject *obj, *balloon;
  guint status = 0;

  if (test_backend_skip (backend))
    return;
  vm = test_guest_vm_new (backend, "chballoon", f->dir, NULL);
  uvm_vm_add_device (vm, uvm_device_new_balloon ());
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (uvm_vm_set_balloon_target (vm, 160 * UVM_MIB, NULL, &error));
  g_assert_no_error (error);
  info = uvm_vm_ch_request (vm, "GET", "vm.info", NULL, &status, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (status, ==, 200);
  node = json_from_string (info, NULL);
  obj = json_node_get_object (node);
  /* What we asked for: a balloon of the memory taken, 256 - 160 MiB. */
  balloon = json_object_get_object_member (json_object_get_object_member (obj, "config"), "balloon");
  g_assert_nonnull (balloon);
  g_assert_cmpint (json_object_get_int_member (balloon, "size"), ==, 96 * UVM_MIB);
  if (backend->guest_skip_reason != NULL)
    g_test_message ("memory_actual_size %" G_GINT64_FORMAT " not checked: %s",
                    json_object_get_int_member (obj, "memory_actual_size"),
                    backend->guest_skip_reason);
  else
    g_assert_cmpint (json_object_get_int_member (obj, "memory_actual_size"), ==, 160 * UVM_MIB);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
}

int
main (int argc, char **argv)
{
  TestBackend *standin, *real;
  int ret;

  g_test_init (&argc, &argv, NULL);
  standin = test_backend_new_ch_standin ();
  real = test_backend_new_cloud_hypervisor ();
  test_backend_probe_guest (real);
#define ADD(path, fn) g_test_add ("/balloon/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("qemu-guest-keeps-the-target", test_qemu_guest_keeps_the_target);
  ADD ("target-without-balloon-device-is-unsupported", test_target_without_balloon_device_is_unsupported);
  ADD ("target-above-memory-is-refused", test_target_above_memory_is_refused);
  ADD ("target-on-stopped-vm-is-not-running", test_target_on_stopped_vm_is_not_running);
#undef ADD
  g_test_add ("/balloon/cloud-hypervisor-standin/guest-keeps-the-target", Fixture, standin,
              fixture_setup, test_cloud_hypervisor_guest_keeps_the_target, fixture_teardown);
  g_test_add ("/balloon/cloud-hypervisor/guest-keeps-the-target", Fixture, real,
              fixture_setup, test_cloud_hypervisor_guest_keeps_the_target, fixture_teardown);
  ret = g_test_run ();
  test_backend_free (standin);
  test_backend_free (real);
  return ret;
}
