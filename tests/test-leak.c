/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Leak checks of isolated networks built as a library bridge (issue 4):
 * the host has no address on the segment and answers nothing there, ARP
 * and NDP included, even for the addresses it has on other links; and a
 * bridge left by a library process that was SIGKILLed is reclaimed by the
 * next start, while a bridge that is not ours, or still in use, is not.
 *
 * Each test runs in a g_test_trap_subprocess() child that first enters a
 * private network namespace, so that every link, and all traffic, stay in
 * it.  There the "host" has a veth link "hostif" holding 192.0.2.1/24,
 * 198.51.100.1/24 and 2001:db8::1/64, with the weak-host defaults
 * (rp_filter 0, arp_ignore 0) set explicitly: the worst case for a leak.
 *
 * The probes are the test guest's (tests/guest/README.md): uvm.arping and
 * uvm.ndp.  A control (a plain bridge and tap made here, used through
 * uvm_network_new_tap()) shows that the same probes do see the host's
 * answers when there are some: a FAIL in the leak test means something.
 * The IPv6 guards of the bridge (address generation off, disable_ipv6) are
 * also checked one at a time: each alone keeps the host silent to the NDP
 * probe, and with both removed the bridge answers (see below). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uvm/uvm.h>

#include "uvm-netns-util.h"
#include "uvm-test-util.h"

/* Boot (~2 s under TCG), DAD, 3 arpings of up to 3 s, ping6 of 4 s. */
#define PROBE_TIMEOUT_MS 120000

#define GUEST_IP "192.0.2.50/24"
#define PEER_IP "192.0.2.60"
#define HOST_IP "192.0.2.1"
#define HOST_OTHER_IP "198.51.100.1"
#define PROBES "uvm.arping=" HOST_IP ",eth0:" HOST_OTHER_IP " uvm.ndp=eth0"

static TestBackend *qemu_backend, *ch_backend;

/* A test, run by test_netns_add() with this as its data. */
typedef struct {
  const char *path;
  gboolean needs_qemu;
  TestNetnsBody body;
} LeakTest;

/* ---- the host side ----------------------------------------------------------- */

static void
write_sysctl (const char *path, const char *value)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, value, strlen (value)), ==, (ssize_t) strlen (value));
  close (fd);
}

/* The host's addresses on "hostif", and the weak-host defaults. */
static void
set_up_host (void)
{
  write_sysctl ("/proc/sys/net/ipv4/conf/all/rp_filter", "0");
  write_sysctl ("/proc/sys/net/ipv4/conf/default/rp_filter", "0");
  write_sysctl ("/proc/sys/net/ipv4/conf/all/arp_ignore", "0");
  write_sysctl ("/proc/sys/net/ipv4/conf/default/arp_ignore", "0");
  test_run_ok ("ip link set lo up");
  test_run_ok ("ip link add hostif type veth peer name hostif-peer");
  test_run_ok ("ip addr add " HOST_IP "/24 dev hostif");
  test_run_ok ("ip addr add " HOST_OTHER_IP "/24 dev hostif");
  test_run_ok ("ip -6 addr add 2001:db8::1/64 dev hostif nodad");
  test_run_ok ("ip link set hostif-peer up");
  test_run_ok ("ip link set hostif up");
}

static void
tear_down_host (void)
{
  test_run_ok ("ip link del hostif");
}

/* ---- reading the namespace back --------------------------------------------- */

static char *
sysfs_text (const char *link, const char *attr)
{
  g_autofree char *path = g_build_filename ("/sys/class/net", link, attr, NULL);
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return g_strstrip (text);
}

static guint64
link_flags (const char *link)
{
  g_autofree char *text = sysfs_text (link, "flags");
  return g_ascii_strtoull (text, NULL, 16);
}

/* The lock file of library bridge @bridge in this namespace, as
 * libuvm/net/uvm-bridge-owner.h documents it (we run as root). */
static char *
lock_file_of (const char *bridge)
{
  struct stat st;

  g_assert_cmpint (stat ("/proc/thread-self/ns/net", &st), ==, 0);
  return g_strdup_printf ("/run/uvm/.net/%ju:%ju-%s.lock", (uintmax_t) st.st_dev,
                          (uintmax_t) st.st_ino, bridge);
}

/* ---- guests ---------------------------------------------------------------------- */

/* The console of @name once @text is on it (which it must be). */
static char *
console_with (const char *dir, const char *name, const char *text)
{
  g_autofree char *console = test_console_path (dir, name);
  char *contents = NULL;

  test_assert_console (dir, name, text, PROBE_TIMEOUT_MS);
  g_assert_true (g_file_get_contents (console, &contents, NULL, NULL));
  return contents;
}

/* Whether @console has the line @line (the console ends lines in CR LF). */
static void
assert_has (const char *console, const char *line)
{
  g_auto(GStrv) lines = g_strsplit (console, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (strcmp (g_strchomp (lines[i]), line) == 0)
      return;
  g_error ("no line \"%s\" on the console:\n%s", line, console);
}

static void
assert_lacks (const char *console, const char *text)
{
  if (strstr (console, text) != NULL)
    g_error ("\"%s\" on the console:\n%s", text, console);
}

/* ---- the leak checks ------------------------------------------------------------- */

/* A cloud-hypervisor member (the stand-in, which answers ARP for its
 * address) makes the network a bridge; the qemu guest probes it. */
static void
test_library_bridge_answers_nothing_from_the_host (gconstpointer data, const char *dir)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) peer = test_member_new (ch_backend, dir, "peer", net, "uvm.ip=" PEER_IP "/24");
  g_autoptr(UvmVm) probe = test_member_new (qemu_backend, dir, "probe", net,
                                       "uvm.ip=" GUEST_IP " uvm.arping=" PEER_IP "," HOST_IP
                                       ",eth0:" HOST_OTHER_IP " uvm.ndp=eth0");
  g_autofree char *bridge = test_bridge_of (probe);
  g_autofree char *console = NULL;

  set_up_host ();
  test_vm_start_ok (peer);
  test_vm_start_ok (probe);
  g_assert_true (test_is_bridge (bridge));
  g_assert_cmphex (link_flags (bridge) & IFF_NOARP, ==, IFF_NOARP);

  console = console_with (dir, "probe", "UVM-NDP-DONE eth0");
  /* The probes work on this segment: the peer answers. */
  assert_has (console, "UVM-ARPING-OK " PEER_IP);
  assert_has (console, "UVM-ARPING-FAIL " HOST_IP);
  assert_has (console, "UVM-ARPING-FAIL " HOST_OTHER_IP);
  assert_lacks (console, "UVM-NDP-REPLY");

  g_assert_false (test_has_ipv4 (bridge));
  g_assert_false (test_has_ipv6 (bridge));
  g_assert_cmphex (link_flags (bridge) & IFF_NOARP, ==, IFF_NOARP);

  test_vm_stop_ok (probe);
  test_vm_stop_ok (peer);
  g_assert_false (test_link_exists (bridge));
  tear_down_host ();
}

/* A persistent tap made as most tools make one, enslaved to @bridge. */
static void
make_plain_tap (const char *name, const char *bridge)
{
  struct ifreq ifr = { 0 };
  int fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);
  g_autofree char *cmd = NULL;

  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (ifr.ifr_name, name, sizeof ifr.ifr_name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_assert_cmpint (ioctl (fd, TUNSETIFF, &ifr), ==, 0);
  g_assert_cmpint (ioctl (fd, TUNSETPERSIST, 1), ==, 0);
  close (fd);
  cmd = g_strdup_printf ("ip link set %s master %s up", name, bridge);
  test_run_ok (cmd);
}

/* The control: the same probes through a bridge with default settings
 * (IPv6 on, ARP on) see the host answer for its addresses on hostif, and
 * the bridge's own link-local address answer to ff02::1. */
static void
test_plain_bridge_control_answers_from_the_host (gconstpointer data, const char *dir)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_tap ("ctl", "ctltap");
  g_autoptr(UvmVm) probe = NULL;
  g_autoptr(GPtrArray) bridge_addrs = NULL;
  g_autofree char *console = NULL;
  g_autofree char *reply = NULL;
  gint64 deadline;

  set_up_host ();
  test_run_ok ("ip link add ctlbr type bridge");
  test_run_ok ("ip link set ctlbr up");
  make_plain_tap ("ctltap", "ctlbr");
  probe = test_member_new (qemu_backend, dir, "probe", net, "uvm.ip=" GUEST_IP " " PROBES);
  test_vm_start_ok (probe);

  console = console_with (dir, "probe", "UVM-NDP-DONE eth0");
  assert_has (console, "UVM-ARPING-OK " HOST_IP);
  assert_has (console, "UVM-ARPING-OK " HOST_OTHER_IP);
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while ((bridge_addrs = test_ipv6_addresses ("ctlbr"))->len == 0 &&
         g_get_monotonic_time () < deadline)
    {
      g_clear_pointer (&bridge_addrs, g_ptr_array_unref);
      g_usleep (50 * 1000);
    }
  g_assert_cmpuint (bridge_addrs->len, ==, 1);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (bridge_addrs, 0), "fe80::"));
  reply = g_strdup_printf ("UVM-NDP-REPLY %s", (char *) g_ptr_array_index (bridge_addrs, 0));
  assert_has (console, reply);

  test_vm_stop_ok (probe);
  test_run_ok ("ip link del ctltap");
  test_run_ok ("ip link del ctlbr");
  tear_down_host ();
}

/* ---- the two IPv6 guards, one at a time ------------------------------------------- */

/* The library bridge keeps the host off IPv6 on the segment twice over:
 * IPv6 address generation off (addrgenmode none: no fe80:: address, so
 * no source for a reply) and disable_ipv6 (the host's IPv6 stack ignores
 * the link).  Each test below removes one of them from outside, as an
 * administrator or a tool might, and the guest's NDP probe (an echo
 * request to ff02::1 from its link-local address, tests/guest) must still
 * get no answer from the host; so if the library ever drops either guard,
 * the test that removes the other one fails.  The control removes both:
 * then the bridge's link-local answers, so the probe can see an answer
 * on this very bridge.
 *
 * Every one of these tests also turns ARP back on (clears IFF_NOARP, the
 * IPv4 seal): on a NOARP link the kernel does not resolve IPv6 neighbours
 * either, it sends to the link's own MAC address, so the host's reply
 * never reaches the guest.  Measured: with both IPv6 guards removed and
 * IFF_NOARP kept, the probe gets no answer.  Left on, it would hide the
 * loss of either IPv6 guard. */
typedef enum {
  GUARD_ADDR_GEN_MODE = 1 << 0,
  GUARD_DISABLE_IPV6 = 1 << 1,
} Ipv6Guard;

/* net.ipv6.conf.@link.@name, a number. */
static gint64
ipv6_conf (const char *link, const char *name)
{
  g_autofree char *path = g_build_filename ("/proc/sys/net/ipv6/conf", link, name, NULL);
  g_autofree char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return g_ascii_strtoll (text, NULL, 10);
}

/* ip link set dev @link @settings */
static void
ip_link_set (const char *link, const char *settings)
{
  g_autofree char *cmd = g_strdup_printf ("ip link set dev %s %s", link, settings);
  test_run_ok (cmd);
}

/* Takes IFF_NOARP and the guards in @removed off @bridge, which the
 * library made, sealed and set up. */
static void
remove_ipv6_guards (const char *bridge, guint removed)
{
  g_autofree char *disable = g_build_filename ("/proc/sys/net/ipv6/conf", bridge, "disable_ipv6",
                                               NULL);

  ip_link_set (bridge, "arp on");
  g_assert_cmphex (link_flags (bridge) & IFF_NOARP, ==, 0);
  if (removed & GUARD_ADDR_GEN_MODE)
    {
      /* The mode is applied when the link comes up: bounce it. */
      ip_link_set (bridge, "addrgenmode eui64");
      ip_link_set (bridge, "down");
      ip_link_set (bridge, "up");
      g_assert_cmpint (ipv6_conf (bridge, "addr_gen_mode"), ==, 0);   /* eui64 */
    }
  if (removed & GUARD_DISABLE_IPV6)
    {
      write_sysctl (disable, "0");
      g_assert_cmpint (ipv6_conf (bridge, "disable_ipv6"), ==, 0);
    }
}

/* A library bridge (a stand-in peer makes the network one), with the
 * guards in @removed taken off before the qemu guest that probes it
 * starts.  Returns the probe's console once its NDP probe is over; the
 * VMs are stopped and the bridge is gone. */
static char *
ndp_probe_without_guards (const char *dir, guint removed, char **bridge_out,
                          GPtrArray **bridge_addrs_out)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan6");
  g_autoptr(UvmVm) peer = test_member_new (ch_backend, dir, "peer", net, "uvm.ip=" PEER_IP "/24");
  g_autoptr(UvmVm) probe = test_member_new (qemu_backend, dir, "probe", net,
                                            "uvm.ip=" GUEST_IP " uvm.ndp=eth0");
  g_autofree char *bridge = test_bridge_of (probe);
  char *console;

  set_up_host ();
  test_vm_start_ok (peer);   /* makes, seals and sets up the bridge */
  g_assert_true (test_is_bridge (bridge));
  remove_ipv6_guards (bridge, removed);
  test_vm_start_ok (probe);
  console = console_with (dir, "probe", "UVM-NDP-DONE eth0");
  /* The bridge's addresses while the probe ran (tentative ones too). */
  *bridge_addrs_out = test_ipv6_addresses (bridge);
  /* What remains of the guards. */
  g_test_message ("%s after the probe: addr_gen_mode %" G_GINT64_FORMAT ", disable_ipv6 %"
                  G_GINT64_FORMAT ", %u IPv6 address(es)", bridge,
                  ipv6_conf (bridge, "addr_gen_mode"), ipv6_conf (bridge, "disable_ipv6"),
                  (*bridge_addrs_out)->len);

  test_vm_stop_ok (probe);
  test_vm_stop_ok (peer);
  g_assert_false (test_link_exists (bridge));
  tear_down_host ();
  *bridge_out = g_steal_pointer (&bridge);
  return console;
}

/* With address generation back on (eui64, the bridge bounced), only
 * disable_ipv6 keeps the host silent: no address appears, nothing answers. */
static void
test_disable_ipv6_alone_keeps_the_host_silent (gconstpointer data, const char *dir)
{
  g_autoptr(GPtrArray) addrs = NULL;
  g_autofree char *bridge = NULL;
  g_autofree char *console = ndp_probe_without_guards (dir, GUARD_ADDR_GEN_MODE, &bridge, &addrs);

  assert_lacks (console, "UVM-NDP-REPLY");
  g_assert_cmpuint (addrs->len, ==, 0);
}

/* With disable_ipv6 back to 0, only address generation off keeps the host
 * silent: the bridge has no link-local address to answer from. */
static void
test_addrgenmode_none_alone_keeps_the_host_silent (gconstpointer data, const char *dir)
{
  g_autoptr(GPtrArray) addrs = NULL;
  g_autofree char *bridge = NULL;
  g_autofree char *console = ndp_probe_without_guards (dir, GUARD_DISABLE_IPV6, &bridge, &addrs);

  assert_lacks (console, "UVM-NDP-REPLY");
  g_assert_cmpuint (addrs->len, ==, 0);
}

/* The control: without either guard the bridge gets a link-local address
 * and it answers the probe (the probe sees an answer when there is one). */
static void
test_without_both_ipv6_guards_the_bridge_answers (gconstpointer data, const char *dir)
{
  g_autoptr(GPtrArray) addrs = NULL;
  g_autofree char *bridge = NULL;
  g_autofree char *console = ndp_probe_without_guards (dir, GUARD_ADDR_GEN_MODE | GUARD_DISABLE_IPV6,
                                                       &bridge, &addrs);
  gboolean answered = FALSE;

  g_assert_cmpuint (addrs->len, >=, 1);
  for (guint i = 0; i < addrs->len; i++)
    {
      const char *addr = g_ptr_array_index (addrs, i);
      g_autofree char *reply = g_strdup_printf ("UVM-NDP-REPLY %s", addr);

      g_assert_true (g_str_has_prefix (addr, "fe80::"));
      if (strstr (console, reply) != NULL)
        answered = TRUE;
    }
  if (!answered)
    g_error ("no answer from the link-local address of %s on the console:\n%s", bridge, console);
}

/* ---- reclaiming a stale bridge --------------------------------------------------- */

/* A child that starts stand-in "s1" on isolated network "stale" (a bridge:
 * a cloud-hypervisor member) and then waits to be killed.  Forked before
 * this process has any threads. */
static pid_t
start_owner_child (const char *dir)
{
  char buf[32] = "";
  int fds[2];
  pid_t pid;
  ssize_t n;

  g_assert_cmpint (pipe2 (fds, O_CLOEXEC), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("stale");
      g_autoptr(UvmVm) vm = test_member_new (ch_backend, dir, "s1", net, "uvm.ip=10.153.9.1/24");
      g_autofree char *msg = NULL;

      close (fds[0]);
      test_vm_start_ok (vm);
      msg = g_strdup_printf ("%d\n", uvm_vm_get_pid (vm));
      if (write (fds[1], msg, strlen (msg)) != (ssize_t) strlen (msg))
        _exit (1);
      for (;;)
        pause ();
    }
  close (fds[1]);
  do
    n = read (fds[0], buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close (fds[0]);
  if (n <= 0)
    g_error ("the child that owns the bridge did not start its VM");
  return pid;
}

static void
kill_child (pid_t pid)
{
  int status;

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status));
}

static gboolean
wait_for_link_gone (const char *name, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;

  while (test_link_exists (name))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      g_usleep (20 * 1000);
    }
  return TRUE;
}

/* The library process that made the bridge is SIGKILLed: its hypervisor
 * and tap go, the bridge stays; the next start reclaims it and works. */
static void
test_stale_bridge_of_killed_process_is_reclaimed (gconstpointer data, const char *dir)
{
  pid_t child = start_owner_child (dir);
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("stale");
  g_autoptr(UvmVm) s1 = test_member_new (ch_backend, dir, "s1", net, NULL);
  g_autoptr(UvmVm) s2 = test_member_new (ch_backend, dir, "s2", net, "uvm.ip=10.153.9.2/24");
  g_autoptr(UvmVm) s3 = test_member_new (ch_backend, dir, "s3", net,
                                    "uvm.ip=10.153.9.3/24 uvm.ping=10.153.9.2");
  g_autofree char *bridge = test_bridge_of (s2);
  g_autofree char *old_tap = test_tap_of (s1);   /* the child's: same VM and network names */
  g_autofree char *lock = lock_file_of (bridge);
  g_autofree char *alias = NULL;
  g_autofree char *console = NULL;
  g_autofree char *master = NULL;
  g_autofree char *tap = test_tap_of (s2);

  g_assert_true (test_is_bridge (bridge));
  g_assert_true (test_link_exists (old_tap));
  alias = sysfs_text (bridge, "ifalias");
  g_assert_cmpstr (alias, ==, "libuvm isolated network stale");
  g_assert_true (g_file_test (lock, G_FILE_TEST_IS_REGULAR));

  kill_child (child);
  g_assert_true (wait_for_link_gone (old_tap, 10000));
  g_assert_true (test_is_bridge (bridge));
  g_assert_true (g_file_test (lock, G_FILE_TEST_IS_REGULAR));

  test_vm_start_ok (s2);
  test_vm_start_ok (s3);
  g_assert_true (test_is_bridge (bridge));
  g_assert_cmphex (link_flags (bridge) & IFF_NOARP, ==, IFF_NOARP);
  master = g_file_read_link (g_build_filename ("/sys/class/net", tap, "master", NULL), NULL);
  g_assert_nonnull (master);
  g_assert_true (g_str_has_suffix (master, bridge));
  console = console_with (dir, "s3", "UVM-PING-OK 10.153.9.2");

  test_vm_stop_ok (s3);
  test_vm_stop_ok (s2);
  g_assert_false (test_link_exists (bridge));
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
}

/* While the process that made the bridge lives, it is not taken from it. */
static void
test_bridge_of_live_process_is_busy (gconstpointer data, const char *dir)
{
  pid_t child = start_owner_child (dir);
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("stale");
  g_autoptr(UvmVm) s2 = test_member_new (ch_backend, dir, "s2", net, "uvm.ip=10.153.9.2/24");
  g_autoptr(GError) error = NULL;
  g_autofree char *bridge = test_bridge_of (s2);
  g_autofree char *lock = lock_file_of (bridge);
  g_autofree char *cmd = NULL;

  g_assert_false (uvm_vm_start (s2, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_test_message ("error message: %s", error->message);
  g_assert_nonnull (strstr (error->message, "in use by another process"));
  g_assert_true (test_is_bridge (bridge));
  g_assert_cmpint (kill (child, 0), ==, 0);

  /* Clean up what the killed child leaves: the bridge and its lock file. */
  kill_child (child);
  cmd = g_strdup_printf ("ip link del dev %s", bridge);
  test_run_ok (cmd);
  g_assert_cmpint (unlink (lock), ==, 0);
}

/* A link of the bridge's name that the library did not make (no alias) is
 * left alone: BUSY, and it is still there. */
static void
test_bridge_without_our_alias_is_busy_and_kept (gconstpointer data, const char *dir)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("stale");
  g_autoptr(UvmVm) s2 = test_member_new (ch_backend, dir, "s2", net, "uvm.ip=10.153.9.2/24");
  g_autoptr(GError) error = NULL;
  g_autofree char *bridge = test_bridge_of (s2);
  g_autofree char *lock = lock_file_of (bridge);
  g_autofree char *cmd = g_strdup_printf ("ip link add %s type bridge", bridge);

  test_run_ok (cmd);
  g_assert_false (uvm_vm_start (s2, NULL, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_test_message ("error message: %s", error->message);
  g_assert_nonnull (strstr (error->message, "not made by libuvm"));
  g_assert_true (test_is_bridge (bridge));
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
  g_free (cmd);
  cmd = g_strdup_printf ("ip link del dev %s", bridge);
  test_run_ok (cmd);
}

/* Every test needs the stand-in; some qemu too. */
static gboolean
skip_unavailable (gconstpointer data)
{
  const LeakTest *test = data;

  return test_backend_skip (ch_backend) || (test->needs_qemu && test_backend_skip (qemu_backend));
}

int
main (int argc, char **argv)
{
  static const LeakTest tests[] = {
    { "/leak/library-bridge/answers-nothing-from-the-host", TRUE,
      test_library_bridge_answers_nothing_from_the_host },
    { "/leak/control/plain-bridge-answers-from-the-host", TRUE,
      test_plain_bridge_control_answers_from_the_host },
    { "/leak/ipv6-guards/disable-ipv6-alone-keeps-the-host-silent", TRUE,
      test_disable_ipv6_alone_keeps_the_host_silent },
    { "/leak/ipv6-guards/addrgenmode-none-alone-keeps-the-host-silent", TRUE,
      test_addrgenmode_none_alone_keeps_the_host_silent },
    { "/leak/ipv6-guards/control-without-both-the-bridge-answers", TRUE,
      test_without_both_ipv6_guards_the_bridge_answers },
    { "/leak/reclaim/stale-bridge-of-killed-process-is-reclaimed", FALSE,
      test_stale_bridge_of_killed_process_is_reclaimed },
    { "/leak/reclaim/bridge-of-live-process-is-busy", FALSE,
      test_bridge_of_live_process_is_busy },
    { "/leak/reclaim/bridge-without-our-alias-is-busy-and-kept", FALSE,
      test_bridge_without_our_alias_is_busy_and_kept },
  };
  int ret;

  g_test_init (&argc, &argv, NULL);
  qemu_backend = test_backend_new_qemu ();
  ch_backend = test_backend_new_ch_standin ();
  for (guint i = 0; i < G_N_ELEMENTS (tests); i++)
    test_netns_add (tests[i].path, &tests[i], tests[i].body, skip_unavailable);
  ret = g_test_run ();
  test_backend_free (qemu_backend);
  test_backend_free (ch_backend);
  return ret;
}
