/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Uplinks through passt (UVM_UPLINK_PASST) on real qemu guests under TCG.
 *
 * Each test runs in a g_test_trap_subprocess() child that enters a private
 * network namespace ("inside") and makes a second one ("outside", held by
 * a forked child) joined to it by a veth pair:
 *
 *     inside: 198.51.100.2/24, default via .1  <-veth->  outside: 198.51.100.1/24
 *
 * passt runs inside, as the library's helper; the guest is 10.0.2.15/24
 * via 10.0.2.2 and pings the outside through it.  passt drops to an
 * unprivileged user and pings with ICMP echo sockets, which
 * net.ipv4.ping_group_range of the inside namespace allows. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-glib/json-glib.h>
#include <uvm/uvm.h>

#include "uvm-netns-util.h"
#include "uvm-test-util.h"

/* The guest retries a ping for ~20 s before it reports a failure. */
#define PING_TIMEOUT_MS 120000

static TestBackend *qemu_backend;
static char *netns_skip_reason;
static char *passt_skip_reason;

/* ---- the two namespaces -------------------------------------------------- */

/* The outside namespace (test_netns_outside_start()), with ping allowed
 * to every group here, as passt's ICMP needs. */
static GPid
outside_make (void)
{
  GPid outside = test_netns_outside_start ("uvm-in", "uvm-out");
  int fd;

  /* /proc/sys/net is the namespace's of whoever opens it: ours. */
  fd = open ("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, "0 2147483647", 12), ==, 12);
  close (fd);
  return outside;
}

static void
outside_remove (GPid outside)
{
  test_run_ok ("ip link del uvm-in");   /* both ends */
  test_netns_peer_stop (outside);
}

typedef void (*PasstTestFunc) (const char *dir);

static void
run_in_namespaces (gconstpointer data)
{
  PasstTestFunc body = (PasstTestFunc) data;

  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *dir = NULL;
      GPid outside;

      if (!test_netns_enter (FALSE, &error))
        g_error ("%s", error->message);
      g_assert_true (test_guest_available ());
      outside = outside_make ();
      dir = g_dir_make_tmp ("uvm-passt-XXXXXX", NULL);
      g_assert_nonnull (dir);
      body (dir);
      test_remove_tree (dir);
      outside_remove (outside);
      return;
    }
  if (netns_skip_reason != NULL)
    {
      g_test_skip (netns_skip_reason);
      return;
    }
  if (passt_skip_reason != NULL)
    {
      g_test_skip (passt_skip_reason);
      return;
    }
  if (test_backend_skip (qemu_backend))
    return;
  g_test_trap_subprocess (NULL, 300 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* ---- helpers ------------------------------------------------------------- */

static UvmVm *
gateway_new (const char *dir, const char *cmdline, UvmNetwork **uplink_out)
{
  UvmVm *vm = test_guest_vm_new (qemu_backend, "gw", dir, cmdline);
  UvmNetwork *uplink = uvm_network_new_uplink ("wan");

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_PASST);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  *uplink_out = uplink;
  return vm;
}

static void
assert_console (const char *dir, const char *text)
{
  g_autofree char *console = g_strdup_printf ("%s/gw.console", dir);
  g_autofree char *contents = NULL;

  if (!test_wait_for_text (console, text, PING_TIMEOUT_MS))
    {
      g_file_get_contents (console, &contents, NULL, NULL);
      g_error ("no \"%s\" on the console:\n%s", text, contents ? contents : "");
    }
}

/* The pids of passt processes that are ours: children of this process
 * (zombies too) or in this network namespace. */
static GArray *
passt_pids (void)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  g_autofree char *our_ns = g_file_read_link ("/proc/self/ns/net", NULL);
  const char *name;

  g_assert_nonnull (proc);
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *stat_path = g_strdup_printf ("/proc/%s/stat", name);
      g_autofree char *ns_path = g_strdup_printf ("/proc/%s/ns/net", name);
      g_autofree char *stat = NULL, *ns = NULL;
      const char *comm, *after;
      int ppid = 0;

      if (!g_ascii_isdigit (name[0]) || !g_file_get_contents (stat_path, &stat, NULL, NULL))
        continue;
      comm = strchr (stat, '(');
      after = strrchr (stat, ')');
      if (comm == NULL || after == NULL || !g_str_has_prefix (comm + 1, "passt"))
        continue;
      sscanf (after + 2, "%*c %d", &ppid);
      ns = g_file_read_link (ns_path, NULL);
      if (ppid == getpid () || g_strcmp0 (ns, our_ns) == 0)
        {
          int pid = atoi (name);
          g_array_append_val (pids, pid);
        }
    }
  return pids;
}

static int
the_passt_pid (void)
{
  g_autoptr(GArray) pids = passt_pids ();

  g_assert_cmpuint (pids->len, ==, 1);
  return g_array_index (pids, int, 0);
}

static void
assert_no_passt (void)
{
  g_autoptr(GArray) pids = passt_pids ();

  g_assert_cmpuint (pids->len, ==, 0);
}

static char *
passt_log_of (UvmVm *vm)
{
  return g_build_filename (uvm_vm_get_runtime_dir (vm), "passt-net0.log", NULL);
}

/* ---- tests ---------------------------------------------------------------- */

/* The guest reaches the outside through passt; passt runs as our child
 * while the VM runs, logging into the runtime dir; after a graceful stop
 * no passt, no fd and no runtime dir is left. */
static void
test_guest_reaches_outside_and_stop_leaves_nothing (const char *dir)
{
  g_autoptr(UvmNetwork) uplink = NULL;
  g_autoptr(UvmVm) vm = gateway_new (dir, "uvm.ip=10.0.2.15/24 uvm.gw=10.0.2.2 "
                                     "uvm.ping=198.51.100.1", &uplink);
  g_autofree char *log = passt_log_of (vm);
  guint fds = test_count_fds ();
  gint64 t0 = g_get_monotonic_time ();

  assert_no_passt ();
  test_vm_start_ok (vm);
  g_assert_cmpint (the_passt_pid (), >, 0);
  g_assert_true (g_file_test (log, G_FILE_TEST_IS_REGULAR));
  assert_console (dir, "UVM-PING-OK 198.51.100.1");
  g_test_message ("start to UVM-PING-OK 198.51.100.1: %.1f s",
                  (g_get_monotonic_time () - t0) / 1e6);

  test_vm_stop_ok (vm);
  assert_no_passt ();
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, fds);
}

/* A TCP listener on every address of this namespace, port @port; the
 * kernel completes handshakes into the backlog, no accept() needed. */
static int
listen_tcp (guint16 port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
  int one = 1;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), ==, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sin, sizeof sin), ==, 0);
  g_assert_cmpint (listen (fd, 8), ==, 0);
  return fd;
}

/* The gateway address is not mapped to the host (--no-map-gw): a TCP
 * service listening on every host address is reached at the host's own
 * address (passt connects out; the probe works) but not at 10.0.2.2,
 * which passt would map to the host's loopback without the option; ping
 * gets no answer from 10.0.2.2 either.  Then a SIGKILL of qemu from
 * outside: passt is ended and reaped with it, before the crash is
 * reported. */
static void
test_gateway_address_does_not_answer_and_sigkill_leaves_nothing (const char *dir)
{
  g_autoptr(UvmNetwork) uplink = NULL;
  int listener = listen_tcp (5555);
  g_autoptr(UvmVm) vm = gateway_new (dir, "uvm.ip=10.0.2.15/24 uvm.gw=10.0.2.2 uvm.ping=10.0.2.2 "
                                     "uvm.tcp=198.51.100.2:5555,10.0.2.2:5555",
                                     &uplink);
  g_autofree char *cmdline_path = NULL, *cmdline = NULL;
  guint fds = test_count_fds ();
  gsize len = 0;
  int passt;

  test_vm_start_ok (vm);
  passt = the_passt_pid ();
  cmdline_path = g_strdup_printf ("/proc/%d/cmdline", passt);
  g_assert_true (g_file_get_contents (cmdline_path, &cmdline, &len, NULL));
  assert_console (dir, "UVM-PING-FAIL 10.0.2.2");
  assert_console (dir, "UVM-TCP-OK 198.51.100.2:5555");
  assert_console (dir, "UVM-TCP-FAIL 10.0.2.2:5555");
  g_assert_nonnull (memmem (cmdline, len, "--no-map-gw", sizeof "--no-map-gw"));

  g_assert_cmpint (kill (uvm_vm_get_pid (vm), SIGKILL), ==, 0);
  g_assert_true (test_wait_for_state (vm, UVM_VM_STATE_CRASHED, 10000));
  assert_no_passt ();
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, fds);
  close (listener);
}

/* Confinement is qemu's (empty netns, no inet sockets): it only holds its
 * end of the socket pair, so the guest still gets out through passt. */
static void
test_confined_vm_reaches_outside (const char *dir)
{
  g_autoptr(UvmNetwork) uplink = NULL;
  g_autoptr(UvmVm) vm = gateway_new (dir, "uvm.ip=10.0.2.15/24 uvm.gw=10.0.2.2 "
                                     "uvm.ping=198.51.100.1", &uplink);

  uvm_vm_set_confined (vm, TRUE);
  test_vm_start_ok (vm);
  assert_console (dir, "UVM-PING-OK 198.51.100.1");
  test_vm_stop_ok (vm);
  assert_no_passt ();
}

/* passt dying while the VM runs is an event naming the uplink; the VM
 * keeps running and stops normally. */
static void
test_passt_exit_is_an_event_and_vm_keeps_running (const char *dir)
{
  g_autoptr(UvmNetwork) uplink = NULL;
  g_autoptr(UvmVm) vm = gateway_new (dir, NULL, &uplink);
  EventLog events = { 0 };
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *data;
  int index;

  event_log_attach (&events, vm);
  test_vm_start_ok (vm);
  g_assert_cmpint (kill (the_passt_pid (), SIGTERM), ==, 0);
  for (int i = 0; i < 100 && event_log_find_name (&events, 0, "uplink-helper-exited") < 0; i++)
    g_main_context_iteration (NULL, TRUE);
  index = event_log_find_name (&events, 0, "uplink-helper-exited");
  g_assert_cmpint (index, >=, 0);
  g_assert_true (json_parser_load_from_data (
    parser, uvm_event_get_data_json (g_ptr_array_index (events.events, index)), -1, NULL));
  data = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (data, "network"), ==, "wan");
  g_assert_cmpstr (json_object_get_string_member (data, "helper"), ==, "passt");
  assert_no_passt ();   /* reaped */
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);
  test_vm_stop_ok (vm);
  event_log_clear (&events);
}

/* Without passt in PATH the start fails before anything exists. */
static void
test_passt_missing_fails_before_anything_exists (const char *dir)
{
  g_autoptr(UvmNetwork) uplink = NULL;
  g_autoptr(UvmVm) vm = gateway_new (dir, NULL, &uplink);
  g_autofree char *qemu = g_find_program_in_path ("qemu-system-x86_64");
  g_autofree char *old_path = g_strdup (g_getenv ("PATH"));
  g_autoptr(GError) error = NULL;
  guint fds;

  g_assert_nonnull (qemu);
  uvm_vm_set_hypervisor_path (vm, qemu);
  g_setenv ("PATH", dir, TRUE);   /* no passt there */
  /* A first attempt makes what GLib keeps for the process. */
  g_assert_false (uvm_vm_start (vm, NULL, NULL));
  fds = test_count_fds ();
  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_setenv ("PATH", old_path, TRUE);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_test_message ("error message: %s", error->message);
  g_assert_nonnull (strstr (error->message, "passt"));
  g_assert_nonnull (strstr (error->message, "'wan'"));
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
  g_assert_false (g_file_test (uvm_vm_get_runtime_dir (vm), G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, fds);
  assert_no_passt ();
}

int
main (int argc, char **argv)
{
  static const struct {
    const char *path;
    PasstTestFunc func;
  } tests[] = {
    { "/passt/guest-reaches-outside-and-stop-leaves-nothing",
      test_guest_reaches_outside_and_stop_leaves_nothing },
    { "/passt/gateway-address-does-not-answer-and-sigkill-leaves-nothing",
      test_gateway_address_does_not_answer_and_sigkill_leaves_nothing },
    { "/passt/confined-vm-reaches-outside", test_confined_vm_reaches_outside },
    { "/passt/passt-exit-is-an-event-and-vm-keeps-running",
      test_passt_exit_is_an_event_and_vm_keeps_running },
    { "/passt/passt-missing-fails-before-anything-exists",
      test_passt_missing_fails_before_anything_exists },
  };
  g_autofree char *passt = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  test_warm_up_glib ();
  qemu_backend = test_backend_new_qemu ();
  if (!g_test_subprocess ())
    {
      netns_skip_reason = test_netns_probe (FALSE);
      passt = g_find_program_in_path ("passt");
      if (passt == NULL)
        passt_skip_reason = g_strdup ("passt is not installed (apt-get install passt)");
    }
  for (guint i = 0; i < G_N_ELEMENTS (tests); i++)
    g_test_add_data_func (tests[i].path, (gconstpointer) tests[i].func, run_in_namespaces);
  ret = g_test_run ();
  test_backend_free (qemu_backend);
  g_free (netns_skip_reason);
  g_free (passt_skip_reason);
  return ret;
}
