/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The printed launch plan is what runs: the control requests a hypervisor
 * receives during a start are, in order, exactly the ones
 * uvm_vm_get_launch_plan() lists.  The hypervisors record what they
 * receive: the real qemu with its own trace event (`-trace
 * handle_qmp_command`, in its log), the cloud-hypervisor stand-in with
 * UVM_TEST_REQUEST_TRACE (no real cloud-hypervisor runs a guest here); the
 * test compares that record with the printed plan of the same VM. */
#include "uvm-test-util.h"

#include <json-glib/json-glib.h>

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char *dir;
  char *trace;
  UvmVm *qemu;    /* a real qemu whose log holds its handle_qmp_command trace */
  char *tap;      /* a tap the test made, deleted at teardown */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("uvm-executed-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->trace = g_build_filename (f->dir, "requests.trace", NULL);
  g_setenv ("UVM_TEST_REQUEST_TRACE", f->trace, TRUE);   /* the hypervisor inherits it */
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_unsetenv ("UVM_TEST_REQUEST_TRACE");
  if (f->tap != NULL)
    {
      g_autofree char *del = g_strdup_printf ("ip link del %s", f->tap);
      int status = -1;

      g_assert_true (g_spawn_command_line_sync (del, NULL, NULL, &status, NULL));
      g_assert_cmpint (status, ==, 0);
      g_free (f->tap);
    }
  test_remove_tree (f->dir);
  g_free (f->trace);
  g_free (f->dir);
}

/* The request lines of the printed plan of @vm ("#   ..." after the
 * "control requests" heading), with the fd notes written as the peers
 * write them (" + fd" per fd). */
static GPtrArray *
printed_requests (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = uvm_vm_get_launch_plan (vm, &error);
  g_autoptr(GRegex) fd_note = g_regex_new (" \\+ fd s[0-9]+ \\(SCM_RIGHTS\\)", 0, 0, NULL);
  g_auto(GStrv) lines = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  gboolean in_requests = FALSE;

  g_assert_no_error (error);
  lines = g_strsplit (plan, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "# control requests after spawn"))
        in_requests = TRUE;
      else if (g_str_has_prefix (lines[i], "# control requests of a later"))
        break;
      else if (in_requests && g_str_has_prefix (lines[i], "#   "))
        g_ptr_array_add (out, g_regex_replace_literal (fd_note, lines[i] + 4, -1, 0, " + fd", 0,
                                                       NULL));
    }
  g_assert_true (in_requests);
  return out;
}

/* A command qemu's trace shows ("... req: {...}") as the plan prints it:
 * without the connection's "id". */
static char *
qemu_trace_request (const char *line)
{
  const char *req = strstr (line, " req: ");
  g_autoptr(JsonNode) node = NULL;
  JsonObject *o;
  JsonNode *args;
  g_autofree char *args_text = NULL;

  g_assert_nonnull (req);
  node = json_from_string (req + strlen (" req: "), NULL);
  g_assert_nonnull (node);
  o = json_node_get_object (node);
  args = json_object_get_member (o, "arguments");
  if (args == NULL)
    return g_strdup_printf ("{\"execute\": \"%s\"}", json_object_get_string_member (o, "execute"));
  args_text = json_to_string (args, FALSE);
  return g_strdup_printf ("{\"execute\": \"%s\", \"arguments\": %s}",
                          json_object_get_string_member (o, "execute"), args_text);
}

/* The requests the hypervisor recorded so far. */
static GPtrArray *
received_requests (Fixture *f)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  const char *path = f->qemu ? uvm_vm_get_log_path (f->qemu) : f->trace;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (f->qemu != NULL && strstr (lines[i], "handle_qmp_command") != NULL)
        g_ptr_array_add (out, qemu_trace_request (lines[i]));
      else if (f->qemu == NULL && *lines[i] != '\0')
        g_ptr_array_add (out, g_strdup (lines[i]));
    }
  return out;
}

/* Starts @vm, pauses it (resumes it when it starts paused), stops it, and
 * asserts that the requests received up to the end of the start are the
 * printed ones, in order, and that the operation's request (@next) came
 * right after them. */
static void
assert_executed_as_printed (Fixture *f, UvmVm *vm, const char *next)
{
  g_autoptr(GPtrArray) printed = printed_requests (vm);
  g_autoptr(GPtrArray) received = NULL;
  g_autoptr(GError) error = NULL;

  /* A peer's trace file is written by the hypervisor: it runs as the
   * caller then.  qemu's trace goes to its log, under its own user. */
  if (f->qemu == NULL)
    uvm_vm_set_user (vm, UVM_USER_CALLER, UVM_USER_CALLER);
  g_assert_true (uvm_vm_start (vm, NULL, &error));
  g_assert_no_error (error);
  received = received_requests (f);
  g_assert_cmpuint (printed->len, >, 0);
  g_assert_cmpuint (received->len, >=, printed->len);
  for (guint i = 0; i < printed->len; i++)
    {
      g_test_message ("printed : %s", (char *) g_ptr_array_index (printed, i));
      g_test_message ("received: %s", (char *) g_ptr_array_index (received, i));
      g_assert_cmpstr (g_ptr_array_index (received, i), ==, g_ptr_array_index (printed, i));
    }
  /* Nothing else was sent during the start. */
  g_assert_cmpuint (received->len, ==, printed->len);
  /* An operation goes the same way, after them. */
  if (uvm_vm_get_start_paused (vm))
    g_assert_true (uvm_vm_resume (vm, NULL, &error));
  else
    g_assert_true (uvm_vm_pause (vm, NULL, &error));
  g_assert_no_error (error);
  g_clear_pointer (&received, g_ptr_array_unref);
  received = received_requests (f);
  g_assert_cmpuint (received->len, ==, printed->len + 1);
  g_assert_cmpstr (g_ptr_array_index (received, printed->len), ==, next);
  g_assert_true (uvm_vm_stop (vm, 0, NULL, &error));
  g_assert_no_error (error);
}

/* A VM of the test guest on the real qemu (TCG), tracing the QMP commands
 * it receives into its log. */
static UvmVm *
real_qemu_vm (Fixture *f, const char *name)
{
  const char *const trace[] = { "-trace", "handle_qmp_command", NULL };
  UvmVm *vm = test_guest_vm_new (name, f->dir, NULL);

  uvm_vm_set_extra_args (vm, trace);
  f->qemu = vm;
  return vm;
}

static UvmVm *
standin_vm (Fixture *f, const char *name)
{
  TestBackend *b = test_backend_new_ch_standin ();
  UvmVm *vm = test_guest_vm_new_on (b, name, f->dir, NULL);

  test_backend_free (b);
  return vm;
}

/* The stand-in and the test guest (its kernel is read by the plan). */
static gboolean
skip_unavailable (void)
{
  TestBackend *b = test_backend_new_ch_standin ();
  gboolean skip = test_backend_skip (b);

  test_backend_free (b);
  return skip;
}

static void
test_qemu_start_sends_the_printed_requests (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;

  if (skip_unavailable ())
    return;
  vm = real_qemu_vm (f, "execq");
  assert_executed_as_printed (f, vm, "{\"execute\": \"stop\"}");
}

static void
test_qemu_paused_start_sends_the_printed_requests (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;

  if (skip_unavailable ())
    return;
  vm = real_qemu_vm (f, "execqp");
  uvm_vm_set_start_paused (vm, TRUE);
  assert_executed_as_printed (f, vm, "{\"execute\": \"cont\"}");
}

static void
test_ch_start_sends_the_printed_requests (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;

  if (skip_unavailable ())
    return;
  vm = standin_vm (f, "execc");
  assert_executed_as_printed (f, vm, "PUT /api/v1/vm.pause");
}

/* Disks, rng and balloon in vm.create; paused: no vm.boot. */
static void
test_ch_paused_start_with_devices_sends_the_printed_requests (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autofree char *image = NULL;
  g_autoptr(UvmStorage) storage = NULL;

  if (skip_unavailable ())
    return;
  vm = standin_vm (f, "execcd");
  image = g_build_filename (f->dir, "data.img", NULL);
  storage = uvm_storage_new_image (image);
  uvm_storage_set_create_size (storage, 4 * UVM_MIB);
  /* The VM takes the devices; a disk before the others on purpose. */
  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  uvm_vm_add_device (vm, uvm_device_new_balloon ());
  uvm_vm_set_start_paused (vm, TRUE);
  /* Created, never booted: the resume is vm.boot. */
  assert_executed_as_printed (f, vm, "PUT /api/v1/vm.boot");
}

/* vm.add-net carries a real tap fd (SCM_RIGHTS): the note " + fd" must be
 * on the same request in both. */
static void
test_ch_tap_start_sends_the_printed_requests_with_the_fd (Fixture *f, gconstpointer data)
{
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(UvmNetwork) net = NULL;
  g_autoptr(GError) error = NULL;
  const char *tap = "uvmexec0";
  g_autofree char *add = g_strdup_printf ("ip tuntap add dev %s mode tap", tap);
  int status = -1;

  if (skip_unavailable ())
    return;
  if (geteuid () != 0)
    {
      g_test_skip ("making a tap needs root");
      return;
    }
  g_assert_true (g_spawn_command_line_sync (add, NULL, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpint (status, ==, 0);
  f->tap = g_strdup (tap);
  vm = standin_vm (f, "execct");
  net = uvm_network_new_tap ("lan", tap);
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  assert_executed_as_printed (f, vm, "PUT /api/v1/vm.pause");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  test_warm_up_glib ();
#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/executed/qemu/start-sends-the-printed-requests",
       test_qemu_start_sends_the_printed_requests);
  ADD ("/executed/qemu/paused-start-sends-the-printed-requests",
       test_qemu_paused_start_sends_the_printed_requests);
  ADD ("/executed/cloud-hypervisor-standin/start-sends-the-printed-requests",
       test_ch_start_sends_the_printed_requests);
  ADD ("/executed/cloud-hypervisor-standin/paused-start-with-devices-sends-the-printed-requests",
       test_ch_paused_start_with_devices_sends_the_printed_requests);
  ADD ("/executed/cloud-hypervisor-standin/tap-start-sends-the-printed-requests-with-the-fd",
       test_ch_tap_start_sends_the_printed_requests_with_the_fd);
#undef ADD
  return g_test_run ();
}
