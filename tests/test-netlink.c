/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host network plumbing (net/uvm-netlink.h) against the real kernel.
 *
 * Every test that creates links runs its body in a g_test_trap_subprocess()
 * child that first enters new network and mount namespaces and mounts a
 * fresh sysfs there (sysfs shows the links of the namespace that mounted
 * it, so without this /sys/class/net would show the host's).  Nothing is
 * created in the host's namespace; the child's namespace and everything in
 * it vanish when the child exits.  As root that needs nothing more; as
 * another user the child also makes a user namespace, where it is root.
 *
 * What the tests assert is kernel state read back independently of the
 * module: /sys/class/net, /proc/net/if_inet6, /proc/sys/net/ipv6, an
 * RTM_GETADDR dump, frames read from tap fds.  Where a check could pass
 * vacuously (no IPv6 address), a control link made without the module
 * shows that the same check does see an address when there is one. */

#include "net/uvm-netlink.h"
#include "net/uvm-bridge-owner.h"

#include <uvm/uvm-error.h>

#include "uvm-netns-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

/* Big enough for any one message of an address dump. */
#define DUMP_BUF_SIZE (32 * 1024)

/* Why the namespace tests cannot run here, or NULL. */
static char *netns_skip_reason;

/* Evaluates @cond until it holds or @timeout_ms pass; its last value. */
#define WAIT_FOR(cond, timeout_ms)                                            \
  ({                                                                          \
    gint64 wait_deadline_ = g_get_monotonic_time () + (timeout_ms) * 1000;    \
    gboolean wait_ok_;                                                        \
    while (!(wait_ok_ = !!(cond)) && g_get_monotonic_time () < wait_deadline_) \
      g_usleep (10 * 1000);                                                   \
    wait_ok_;                                                                 \
  })

/* ---- private namespaces ------------------------------------------------ */

/* test_netns_enter() and test_netns_probe() are in uvm-netns-util.h;
 * a user namespace will do here. */

typedef struct
{
  const char *path;
  void (*body) (void);
} NetnsTest;

static void
run_in_private_netns (gconstpointer data)
{
  const NetnsTest *test = data;

  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      if (!test_netns_enter (TRUE, &error))
        g_error ("%s", error->message);
      test->body ();
      return;
    }
  if (netns_skip_reason != NULL)
    {
      g_test_skip (netns_skip_reason);
      return;
    }
  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, 0);
  g_test_trap_assert_passed ();
}

/* ---- reading kernel state back ---------------------------------------- */

static char *
sysfs_path (const char *link, const char *attr)
{
  return g_build_filename ("/sys/class/net", link, attr, NULL);
}

static gboolean
sysfs_exists (const char *link, const char *attr)
{
  g_autofree char *path = sysfs_path (link, attr);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static guint64
sysfs_read_number (const char *link, const char *attr)
{
  g_autofree char *path = sysfs_path (link, attr);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return g_ascii_strtoull (text, NULL, 0);    /* "0x1003" or "1" */
}

static gboolean
link_is_up (const char *link)
{
  return (sysfs_read_number (link, "flags") & IFF_UP) != 0;
}

/* The IPv6 addresses of @link in /proc/net/if_inet6, one hex string each:
 * every address, tentative ones (DAD not done) included. */
static GPtrArray *
ipv6_addresses (const char *link)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *found = g_ptr_array_new_with_free_func (g_free);

  g_file_get_contents ("/proc/net/if_inet6", &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      /* address ifindex prefixlen scope flags name */
      g_auto(GStrv) f = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
      guint n = 0;
      const char *fields[6];

      for (guint j = 0; f[j] != NULL && n < G_N_ELEMENTS (fields); j++)
        if (*f[j] != '\0')
          fields[n++] = f[j];
      if (n == 6 && strcmp (fields[5], link) == 0)
        g_ptr_array_add (found, g_strdup (fields[0]));
    }
  return found;
}

static gboolean
has_ipv6_address (const char *link)
{
  g_autoptr(GPtrArray) addrs = ipv6_addresses (link);
  return addrs->len > 0;
}

typedef struct
{
  unsigned ifindex;
  GPtrArray *found;            /* "a.b.c.d/len" */
} AddrDump;

static int
ipv4_address_cb (const struct nlmsghdr *nlh, void *data)
{
  AddrDump *dump = data;
  const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload (nlh);
  const struct nlattr *attr;

  if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET ||
      ifa->ifa_index != dump->ifindex)
    return MNL_CB_OK;
  mnl_attr_for_each (attr, nlh, sizeof *ifa)
    {
      char text[INET_ADDRSTRLEN];

      if (mnl_attr_get_type (attr) != IFA_LOCAL ||
          mnl_attr_get_payload_len (attr) != sizeof (struct in_addr))
        continue;
      g_assert_nonnull (inet_ntop (AF_INET, mnl_attr_get_payload (attr), text, sizeof text));
      g_ptr_array_add (dump->found, g_strdup_printf ("%s/%u", text, ifa->ifa_prefixlen));
    }
  return MNL_CB_OK;
}

/* The IPv4 addresses of @link, from an RTM_GETADDR dump. */
static GPtrArray *
ipv4_addresses (const char *link)
{
  g_autofree char *buf = g_malloc (DUMP_BUF_SIZE);
  AddrDump dump = { if_nametoindex (link), g_ptr_array_new_with_free_func (g_free) };
  struct mnl_socket *sock = mnl_socket_open2 (NETLINK_ROUTE, SOCK_CLOEXEC);
  struct nlmsghdr *nlh;
  struct ifaddrmsg *ifa;
  unsigned seq = 1, portid;
  int ret;

  g_assert_cmpuint (dump.ifindex, >, 0);
  g_assert_nonnull (sock);
  g_assert_cmpint (mnl_socket_bind (sock, 0, MNL_SOCKET_AUTOPID), ==, 0);
  portid = mnl_socket_get_portid (sock);
  nlh = mnl_nlmsg_put_header (buf);
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq;
  ifa = mnl_nlmsg_put_extra_header (nlh, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  g_assert_cmpint (mnl_socket_sendto (sock, nlh, nlh->nlmsg_len), >, 0);
  do
    {
      ssize_t n = mnl_socket_recvfrom (sock, buf, DUMP_BUF_SIZE);
      g_assert_cmpint (n, >, 0);
      ret = mnl_cb_run (buf, (size_t) n, seq, portid, ipv4_address_cb, &dump);
    }
  while (ret > MNL_CB_STOP);
  g_assert_cmpint (ret, ==, MNL_CB_STOP);
  mnl_socket_close (sock);
  return dump.found;
}

/* ---- links made without the module (controls) -------------------------- */

/* A bridge as the old ioctl makes it: IPv6 address generation as the
 * namespace's default has it (on). */
static void
make_plain_bridge (const char *name)
{
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ioctl (fd, SIOCBRADDBR, name), ==, 0);
  close (fd);
}

/* A tap as most programs make one: address generation on. */
static int
make_plain_tap (const char *name)
{
  struct ifreq ifr = { 0 };
  int fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);

  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (ifr.ifr_name, name, sizeof ifr.ifr_name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  g_assert_cmpint (ioctl (fd, TUNSETIFF, &ifr), ==, 0);
  return fd;
}

/* ---- module shorthands ------------------------------------------------- */

static UvmNetlink *
open_netlink (void)
{
  g_autoptr(GError) error = NULL;
  UvmNetlink *nl = uvm_netlink_open (&error);

  g_assert_no_error (error);
  g_assert_nonnull (nl);
  return nl;
}

static void
create_bridge (UvmNetlink *nl, const char *name)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_netlink_create_bridge (nl, name, &error));
  g_assert_no_error (error);
}

static int
create_tap (UvmNetlink *nl, const char *name)
{
  g_autoptr(GError) error = NULL;
  int fd = uvm_netlink_create_tap (nl, name, &error);

  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  return fd;
}

static void
set_up (UvmNetlink *nl, const char *name)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_netlink_set_up (nl, name, TRUE, &error));
  g_assert_no_error (error);
}

static void
set_master (UvmNetlink *nl, const char *link, const char *master)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_netlink_set_master (nl, link, master, &error));
  g_assert_no_error (error);
}

static void
set_isolated (UvmNetlink *nl, const char *port, gboolean isolated)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_netlink_set_port_isolated (nl, port, isolated, &error));
  g_assert_no_error (error);
}

static char *
sysfs_master (const char *link)
{
  g_autofree char *path = sysfs_path (link, "master");
  g_autofree char *target = g_file_read_link (path, NULL);

  return target ? g_path_get_basename (target) : NULL;
}

/* ---- bridges ------------------------------------------------------------ */

static void
test_bridge_is_created_down (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();

  create_bridge (nl, "uvm-int");
  g_assert_true (uvm_netlink_link_exists (nl, "uvm-int"));
  g_assert_true (sysfs_exists ("uvm-int", "bridge"));
  g_assert_false (link_is_up ("uvm-int"));
}

static void
test_bridge_has_addr_gen_mode_none (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autofree char *mode = NULL;

  create_bridge (nl, "uvm-int");
  g_assert_true (g_file_get_contents ("/proc/sys/net/ipv6/conf/uvm-int/addr_gen_mode", &mode,
                                      NULL, NULL));
  g_assert_cmpint (atoi (mode), ==, 1);     /* IN6_ADDR_GEN_MODE_NONE */
}

static void
test_bridge_gets_no_address_when_up (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GPtrArray) ipv4 = NULL;

  create_bridge (nl, "uvm-int");
  make_plain_bridge ("ctl-br");
  set_up (nl, "uvm-int");
  set_up (nl, "ctl-br");
  g_assert_true (link_is_up ("uvm-int"));

  /* The control shows that an address would be seen: the kernel gives an
   * up bridge (it has carrier even without ports) an fe80:: address at
   * once, tentative until DAD. */
  g_assert_true (WAIT_FOR (has_ipv6_address ("ctl-br"), 5000));
  g_assert_false (has_ipv6_address ("uvm-int"));
  ipv4 = ipv4_addresses ("uvm-int");
  g_assert_cmpuint (ipv4->len, ==, 0);
}

static void
test_bridge_existing_name_is_busy (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;

  create_bridge (nl, "uvm-int");
  g_assert_false (uvm_netlink_create_bridge (nl, "uvm-int", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "'uvm-int' exists already"));
}

/* ---- taps ----------------------------------------------------------------- */

static void
test_tap_is_created_with_vnet_header (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  int fd = create_tap (nl, "uvt-ws");
  guint64 flags;

  g_assert_cmpint (fcntl (fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
  g_assert_cmpint (fcntl (fd, F_GETFL) & O_NONBLOCK, ==, O_NONBLOCK);
  g_assert_true (sysfs_exists ("uvt-ws", "tun_flags"));
  flags = sysfs_read_number ("uvt-ws", "tun_flags");
  g_assert_cmphex (flags & (IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), ==,
                   IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
  g_assert_cmphex (flags & IFF_PERSIST, ==, 0);
  g_assert_false (link_is_up ("uvt-ws"));
  close (fd);
}

static void
test_tap_gets_no_address_when_up (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GPtrArray) ipv4 = NULL;
  int fd = create_tap (nl, "uvt-ws");
  int ctl_fd = make_plain_tap ("ctl-tap");

  set_up (nl, "uvt-ws");
  set_up (nl, "ctl-tap");
  g_assert_true (WAIT_FOR (has_ipv6_address ("ctl-tap"), 5000));
  g_assert_false (has_ipv6_address ("uvt-ws"));
  ipv4 = ipv4_addresses ("uvt-ws");
  g_assert_cmpuint (ipv4->len, ==, 0);
  close (ctl_fd);
  close (fd);
}

static void
test_tap_vanishes_when_fd_closed (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  int fd = create_tap (nl, "uvt-ws");

  set_up (nl, "uvt-ws");
  g_assert_true (sysfs_exists ("uvt-ws", NULL));
  close (fd);
  g_assert_true (WAIT_FOR (!sysfs_exists ("uvt-ws", NULL), 5000));
  g_assert_false (uvm_netlink_link_exists (nl, "uvt-ws"));
}

static void
test_tap_existing_name_is_busy (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;
  int fd = create_tap (nl, "uvt-ws");

  /* Not attached as a second queue of the existing tap. */
  g_assert_cmpint (uvm_netlink_create_tap (nl, "uvt-ws", &error), ==, -1);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_clear_error (&error);
  /* Nor does another kind of link of that name become a tap. */
  create_bridge (nl, "uvm-int");
  g_assert_cmpint (uvm_netlink_create_tap (nl, "uvm-int", &error), ==, -1);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  close (fd);
}

/* ---- bridge ports -------------------------------------------------------- */

static void
test_port_is_enslaved_to_bridge (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autofree char *master = NULL;
  int fd;

  create_bridge (nl, "uvm-int");
  fd = create_tap (nl, "uvt-ws");
  g_assert_null (sysfs_master ("uvt-ws"));
  set_master (nl, "uvt-ws", "uvm-int");
  master = sysfs_master ("uvt-ws");
  g_assert_cmpstr (master, ==, "uvm-int");
  g_assert_true (sysfs_exists ("uvt-ws", "brport"));

  set_master (nl, "uvt-ws", NULL);
  g_assert_null (sysfs_master ("uvt-ws"));
  close (fd);
}

static void
test_port_isolation_reads_back (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  int fd;

  create_bridge (nl, "uvm-int");
  fd = create_tap (nl, "uvt-ws");
  set_master (nl, "uvt-ws", "uvm-int");
  g_assert_cmpuint (sysfs_read_number ("uvt-ws", "brport/isolated"), ==, 0);
  set_isolated (nl, "uvt-ws", TRUE);
  g_assert_cmpuint (sysfs_read_number ("uvt-ws", "brport/isolated"), ==, 1);
  set_isolated (nl, "uvt-ws", FALSE);
  g_assert_cmpuint (sysfs_read_number ("uvt-ws", "brport/isolated"), ==, 0);
  close (fd);
}

static void
test_port_isolation_needs_a_bridge_port (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;
  int fd = create_tap (nl, "uvt-ws");

  g_assert_false (uvm_netlink_set_port_isolated (nl, "uvt-ws", TRUE, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "not a bridge port"));
  close (fd);
}

#define TEST_ETHERTYPE 0x88b5   /* IEEE local experimental */

/* Writes a broadcast frame carrying @marker into the tap behind @fd, as a
 * guest would: behind a virtio-net header (IFF_VNET_HDR). */
static void
send_frame (int fd, guint8 src_id, const char *marker)
{
  guint8 frame[sizeof (struct virtio_net_hdr) + 64] = { 0 };
  guint8 *eth = frame + sizeof (struct virtio_net_hdr);
  const guint8 src[6] = { 0x02, 0, 0, 0, 0, src_id };

  memset (eth, 0xff, 6);
  memcpy (eth + 6, src, 6);
  eth[12] = TEST_ETHERTYPE >> 8;
  eth[13] = TEST_ETHERTYPE & 0xff;
  g_strlcpy ((char *) eth + 14, marker, 64 - 14);
  g_assert_cmpint (write (fd, frame, sizeof frame), ==, sizeof frame);
}

/* Whether a frame carrying @marker comes out of the tap behind @fd within
 * @timeout_ms (other frames are read and ignored). */
static gboolean
receives_frame (int fd, const char *marker, int timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;

  for (;;)
    {
      guint8 frame[2048];
      struct pollfd pfd = { fd, POLLIN, 0 };
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      ssize_t n;

      if (left < 0 || poll (&pfd, 1, (int) left) == 0)
        return FALSE;
      n = read (fd, frame, sizeof frame);
      if (n < 0 && errno == EAGAIN)
        continue;
      g_assert_cmpint (n, >, 0);
      if ((size_t) n > sizeof (struct virtio_net_hdr) + 14 &&
          memmem (frame, (size_t) n, marker, strlen (marker)) != NULL)
        return TRUE;
    }
}

static void
test_port_isolated_ports_reach_only_non_isolated_ones (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  const char *ports[] = { "uvt-ws1", "uvt-ws2", "uvt-gw" };
  int fds[G_N_ELEMENTS (ports)];
  enum { WS1, WS2, GW };

  create_bridge (nl, "uvm-int");
  for (guint i = 0; i < G_N_ELEMENTS (ports); i++)
    {
      fds[i] = create_tap (nl, ports[i]);
      set_master (nl, ports[i], "uvm-int");
      set_up (nl, ports[i]);
    }
  set_isolated (nl, ports[WS1], TRUE);
  set_isolated (nl, ports[WS2], TRUE);
  set_up (nl, "uvm-int");

  /* Isolated to non-isolated gets through, isolated to isolated does not:
   * the bridge floods a frame to all ports in one go, so once the gateway
   * has it, ws2 would have it too. */
  send_frame (fds[WS1], 1, "from-ws1-a");
  g_assert_true (receives_frame (fds[GW], "from-ws1-a", 5000));
  g_assert_false (receives_frame (fds[WS2], "from-ws1-a", 200));
  /* Non-isolated to isolated gets through. */
  send_frame (fds[GW], 3, "from-gw");
  g_assert_true (receives_frame (fds[WS1], "from-gw", 5000));
  g_assert_true (receives_frame (fds[WS2], "from-gw", 5000));

  /* The control: with ws2 no longer isolated, the same path works. */
  set_isolated (nl, ports[WS2], FALSE);
  send_frame (fds[WS1], 1, "from-ws1-b");
  g_assert_true (receives_frame (fds[WS2], "from-ws1-b", 5000));

  for (guint i = 0; i < G_N_ELEMENTS (ports); i++)
    close (fds[i]);
}

/* ---- addresses ------------------------------------------------------------ */

static void
test_address_is_added (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GPtrArray) ipv4 = NULL;
  g_autoptr(GError) error = NULL;

  create_bridge (nl, "uvm-up");
  g_assert_true (uvm_netlink_add_address (nl, "uvm-up", "10.0.2.2/24", &error));
  g_assert_no_error (error);
  ipv4 = ipv4_addresses ("uvm-up");
  g_assert_cmpuint (ipv4->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (ipv4, 0), ==, "10.0.2.2/24");

  g_assert_false (uvm_netlink_add_address (nl, "uvm-up", "10.0.2.2/24", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
}

static void
test_address_must_be_ipv4_cidr (void)
{
  const char *bad[] = { "10.0.2.2", "10.0.2.2/33", "10.0.2/24", "fd00::1/64", "10.0.2.2/",
                        "10.0.2.2/24/1", "" };
  g_autoptr(UvmNetlink) nl = open_netlink ();

  create_bridge (nl, "uvm-up");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) ipv4 = NULL;

      g_assert_false (uvm_netlink_add_address (nl, "uvm-up", bad[i], &error));
      g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
      ipv4 = ipv4_addresses ("uvm-up");
      g_assert_cmpuint (ipv4->len, ==, 0);
    }
}

/* ---- deletion and names ---------------------------------------------------- */

static void
test_delete_removes_link (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;

  create_bridge (nl, "uvm-int");
  g_assert_true (sysfs_exists ("uvm-int", NULL));
  g_assert_true (uvm_netlink_delete_link (nl, "uvm-int", &error));
  g_assert_no_error (error);
  g_assert_false (sysfs_exists ("uvm-int", NULL));
  g_assert_false (uvm_netlink_link_exists (nl, "uvm-int"));
}

static void
test_delete_missing_link_succeeds (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;

  g_assert_false (uvm_netlink_link_exists (nl, "uvm-none"));
  g_assert_true (uvm_netlink_delete_link (nl, "uvm-none", &error));
  g_assert_no_error (error);
}

static void
test_name_longer_than_15_bytes_is_invalid (void)
{
  const char *name16 = "uvm-0123456789ab";
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (strlen (name16), ==, 16);
  g_assert_false (uvm_netlink_create_bridge (nl, name16, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_nonnull (strstr (error->message, name16));
  g_clear_error (&error);
  g_assert_cmpint (uvm_netlink_create_tap (nl, name16, &error), ==, -1);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_clear_error (&error);
  g_assert_false (uvm_netlink_create_bridge (nl, "", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_clear_error (&error);
  g_assert_false (uvm_netlink_create_bridge (nl, "uvm/int", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);

  /* 15 bytes is fine. */
  create_bridge (nl, "uvm-0123456789a");
  g_assert_true (sysfs_exists ("uvm-0123456789a", "bridge"));
}

/* ---- privilege ------------------------------------------------------------- */

static void
test_bridge_without_cap_net_admin_is_permission_error (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(UvmNetlink) unprivileged = NULL;
  g_autoptr(GError) error = NULL;

  create_bridge (nl, "uvm-ok");     /* possible before */
  test_drop_cap_net_admin ();
  unprivileged = open_netlink ();
  g_assert_false (uvm_netlink_create_bridge (unprivileged, "uvm-int", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PERMISSION);
  g_assert_nonnull (strstr (error->message, "CAP_NET_ADMIN"));
  g_assert_nonnull (strstr (error->message, "creating bridge 'uvm-int'"));
  g_assert_false (uvm_netlink_link_exists (unprivileged, "uvm-int"));
}

static void
test_tap_without_cap_net_admin_is_permission_error (void)
{
  g_autoptr(UvmNetlink) nl = NULL;
  g_autoptr(GError) error = NULL;

  test_drop_cap_net_admin ();
  nl = open_netlink ();
  g_assert_cmpint (uvm_netlink_create_tap (nl, "uvt-ws", &error), ==, -1);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PERMISSION);
  g_assert_nonnull (strstr (error->message, "CAP_NET_ADMIN"));
  g_assert_nonnull (strstr (error->message, "creating tap 'uvt-ws'"));
  g_assert_false (uvm_netlink_link_exists (nl, "uvt-ws"));
}

/* ---- sealing the host side ----------------------------------------------- */

static guint64
sysctl_read_number (const char *family, const char *link, const char *key)
{
  g_autofree char *path = g_build_filename ("/proc/sys/net", family, "conf", link, key, NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return g_ascii_strtoull (text, NULL, 10);
}

static void
seal (UvmNetlink *nl, const char *name)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_netlink_seal_host_side (nl, name, &error));
  g_assert_no_error (error);
}

static void
test_seal_sets_noarp (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();

  create_bridge (nl, "uvm-int");
  create_bridge (nl, "ctl-br");
  seal (nl, "uvm-int");
  g_assert_cmphex (sysfs_read_number ("uvm-int", "flags") & IFF_NOARP, ==, IFF_NOARP);
  g_assert_cmphex (sysfs_read_number ("ctl-br", "flags") & IFF_NOARP, ==, 0);
  g_assert_false (link_is_up ("uvm-int"));       /* only IFF_NOARP changed */
}

static void
test_seal_ignores_arp_and_filters_reverse_path (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();

  create_bridge (nl, "uvm-int");
  create_bridge (nl, "ctl-br");
  seal (nl, "uvm-int");
  g_assert_cmpuint (sysctl_read_number ("ipv4", "uvm-int", "arp_ignore"), ==, 8);
  g_assert_cmpuint (sysctl_read_number ("ipv4", "uvm-int", "rp_filter"), ==, 1);
  g_assert_cmpuint (sysctl_read_number ("ipv4", "ctl-br", "arp_ignore"), ==,
                    sysctl_read_number ("ipv4", "default", "arp_ignore"));
}

static void
test_seal_disables_ipv6 (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();

  create_bridge (nl, "uvm-int");
  create_bridge (nl, "ctl-br");
  seal (nl, "uvm-int");
  g_assert_cmpuint (sysctl_read_number ("ipv6", "uvm-int", "disable_ipv6"), ==, 1);
  g_assert_cmpuint (sysctl_read_number ("ipv6", "ctl-br", "disable_ipv6"), ==, 0);
  set_up (nl, "uvm-int");
  g_assert_false (has_ipv6_address ("uvm-int"));
}

static void
test_seal_missing_link_is_error (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;

  g_assert_false (uvm_netlink_seal_host_side (nl, "uvm-none", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "'uvm-none' does not exist"));
}

/* ---- aliases and bridge ownership -------------------------------------------- */

static void
test_alias_reads_back_with_kind (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;
  g_autofree char *kind = NULL, *alias = NULL;

  create_bridge (nl, "uvm-int");
  g_assert_true (uvm_netlink_get_link_info (nl, "uvm-int", &kind, &alias, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (kind, ==, "bridge");
  g_assert_null (alias);
  g_clear_pointer (&kind, g_free);

  g_assert_true (uvm_netlink_set_alias (nl, "uvm-int", "libuvm isolated network lan", &error));
  g_assert_no_error (error);
  g_assert_true (uvm_netlink_get_link_info (nl, "uvm-int", &kind, &alias, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (alias, ==, "libuvm isolated network lan");
}

/* The lock file of bridge @name in this namespace, as bridge-owner names it. */
static char *
owner_lock_path (UvmNetlink *nl, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *netns = uvm_netlink_get_netns_id (nl, &error);
  g_autofree char *dir = uvm_bridge_owner_lock_dir ();
  g_autofree char *file = NULL;

  g_assert_no_error (error);
  file = g_strdup_printf ("%s-%s.lock", netns, name);
  return g_build_filename (dir, file, NULL);
}

static void
owner_create (UvmNetlink *nl, const char *name, const char *network)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_bridge_owner_create (nl, name, network, &error));
  g_assert_no_error (error);
}

static void
test_owner_bridge_is_marked_locked_and_released (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;
  g_autofree char *lock = owner_lock_path (nl, "uvb-lan");
  g_autofree char *alias = NULL;

  owner_create (nl, "uvb-lan", "lan");
  g_assert_true (uvm_netlink_get_link_info (nl, "uvb-lan", NULL, &alias, &error));
  g_assert_cmpstr (alias, ==, "libuvm isolated network lan");
  g_assert_true (g_file_test (lock, G_FILE_TEST_IS_REGULAR));
  g_assert_true (uvm_bridge_owner_delete (nl, "uvb-lan", &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
}

static void
test_owner_bridge_of_live_owner_is_busy (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(UvmNetlink) other = open_netlink ();
  g_autoptr(GError) error = NULL;

  owner_create (nl, "uvb-lan", "lan");
  /* flock() locks belong to an open file: a second taker in the same
   * process is turned away like another process would be. */
  g_assert_false (uvm_bridge_owner_create (other, "uvb-lan", "lan", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "in use by another process"));
  g_assert_true (uvm_netlink_link_exists (nl, "uvb-lan"));
  g_assert_true (uvm_bridge_owner_delete (nl, "uvb-lan", NULL));
}

static void
test_owner_stale_bridge_of_dead_owner_is_reclaimed (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;
  g_autofree char *lock = owner_lock_path (nl, "uvb-lan");
  g_autofree char *alias = NULL;
  int status;
  pid_t pid;

  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      g_autoptr(UvmNetlink) child_nl = uvm_netlink_open (NULL);
      /* Dies owning it, as after SIGKILL: no deletion, the lock dropped by
       * the kernel. */
      _exit (child_nl != NULL && uvm_bridge_owner_create (child_nl, "uvb-lan", "lan", NULL) &&
             uvm_netlink_seal_host_side (child_nl, "uvb-lan", NULL) ? 0 : 1);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_assert_true (uvm_netlink_link_exists (nl, "uvb-lan"));
  g_assert_true (g_file_test (lock, G_FILE_TEST_EXISTS));

  owner_create (nl, "uvb-lan", "lan");
  /* Made anew: the old one's settings are gone. */
  g_assert_cmphex (sysfs_read_number ("uvb-lan", "flags") & IFF_NOARP, ==, 0);
  g_assert_true (uvm_netlink_get_link_info (nl, "uvb-lan", NULL, &alias, &error));
  g_assert_cmpstr (alias, ==, "libuvm isolated network lan");
  g_assert_true (uvm_bridge_owner_delete (nl, "uvb-lan", NULL));
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
}

static void
test_owner_bridge_without_our_alias_is_busy_and_kept (void)
{
  g_autoptr(UvmNetlink) nl = open_netlink ();
  g_autoptr(GError) error = NULL;
  g_autofree char *lock = owner_lock_path (nl, "uvb-lan");

  make_plain_bridge ("uvb-lan");
  g_assert_false (uvm_bridge_owner_create (nl, "uvb-lan", "lan", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "not made by libuvm"));
  g_assert_true (uvm_netlink_link_exists (nl, "uvb-lan"));
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  /* Nor one with the alias of another network. */
  g_assert_true (uvm_netlink_set_alias (nl, "uvb-lan", "libuvm isolated network wan", &error));
  g_assert_false (uvm_bridge_owner_create (nl, "uvb-lan", "lan", &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_BUSY);
  g_assert_true (uvm_netlink_link_exists (nl, "uvb-lan"));
  g_assert_true (uvm_bridge_owner_delete (nl, "uvb-lan", NULL));
}

/* ---- derived names (pure: no namespace needed) ----------------------------- */

static void
test_derive_name_is_deterministic (void)
{
  g_autofree char *a = uvm_netlink_derive_name ("uvt", "workstation", "internal");
  g_autofree char *b = uvm_netlink_derive_name ("uvt", "workstation", "internal");

  g_assert_cmpstr (a, ==, b);
  g_assert_true (g_str_has_prefix (a, "uvt"));
  for (const char *p = a + 3; *p; p++)
    g_assert_true (g_ascii_isxdigit (*p));
}

static void
test_derive_name_fits_ifnamsiz (void)
{
  g_autofree char *longest = uvm_netlink_derive_name ("uvm-tap", "a-very-long-vm-name-indeed",
                                                      "and-a-long-network-name");
  g_autofree char *short_one = uvm_netlink_derive_name ("uvt", "", "");

  g_assert_cmpuint (strlen (longest), ==, IFNAMSIZ - 1);
  g_assert_cmpuint (strlen (short_one), <=, IFNAMSIZ - 1);
  g_assert_cmpuint (strlen (short_one), ==, 3 + 8);
}

static void
test_derive_name_differs_when_inputs_differ (void)
{
  const char *pairs[][2] = {
    { "workstation", "internal" }, { "gateway", "internal" }, { "workstation", "uplink" },
    { "internal", "workstation" }, { "ab", "c" }, { "a", "bc" },
  };
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (pairs); i++)
    {
      char *name = uvm_netlink_derive_name ("uvt", pairs[i][0], pairs[i][1]);
      g_assert_false (g_hash_table_contains (seen, name));
      g_hash_table_add (seen, name);
    }
}

static const NetnsTest netns_tests[] = {
  { "/netlink/bridge/is-created-down", test_bridge_is_created_down },
  { "/netlink/bridge/has-addr-gen-mode-none", test_bridge_has_addr_gen_mode_none },
  { "/netlink/bridge/gets-no-address-when-up", test_bridge_gets_no_address_when_up },
  { "/netlink/bridge/existing-name-is-busy", test_bridge_existing_name_is_busy },
  { "/netlink/bridge/without-cap-net-admin-is-permission-error",
    test_bridge_without_cap_net_admin_is_permission_error },
  { "/netlink/tap/is-created-with-vnet-header", test_tap_is_created_with_vnet_header },
  { "/netlink/tap/gets-no-address-when-up", test_tap_gets_no_address_when_up },
  { "/netlink/tap/vanishes-when-fd-closed", test_tap_vanishes_when_fd_closed },
  { "/netlink/tap/existing-name-is-busy", test_tap_existing_name_is_busy },
  { "/netlink/tap/without-cap-net-admin-is-permission-error",
    test_tap_without_cap_net_admin_is_permission_error },
  { "/netlink/port/is-enslaved-to-bridge", test_port_is_enslaved_to_bridge },
  { "/netlink/port/isolation-reads-back", test_port_isolation_reads_back },
  { "/netlink/port/isolation-needs-a-bridge-port", test_port_isolation_needs_a_bridge_port },
  { "/netlink/port/isolated-ports-reach-only-non-isolated-ones",
    test_port_isolated_ports_reach_only_non_isolated_ones },
  { "/netlink/address/is-added", test_address_is_added },
  { "/netlink/address/must-be-ipv4-cidr", test_address_must_be_ipv4_cidr },
  { "/netlink/link/delete-removes-link", test_delete_removes_link },
  { "/netlink/link/delete-missing-link-succeeds", test_delete_missing_link_succeeds },
  { "/netlink/link/name-longer-than-15-bytes-is-invalid",
    test_name_longer_than_15_bytes_is_invalid },
  { "/netlink/seal/sets-noarp", test_seal_sets_noarp },
  { "/netlink/seal/ignores-arp-and-filters-reverse-path",
    test_seal_ignores_arp_and_filters_reverse_path },
  { "/netlink/seal/disables-ipv6", test_seal_disables_ipv6 },
  { "/netlink/seal/missing-link-is-error", test_seal_missing_link_is_error },
  { "/netlink/alias/reads-back-with-kind", test_alias_reads_back_with_kind },
  { "/netlink/owner/bridge-is-marked-locked-and-released",
    test_owner_bridge_is_marked_locked_and_released },
  { "/netlink/owner/bridge-of-live-owner-is-busy", test_owner_bridge_of_live_owner_is_busy },
  { "/netlink/owner/stale-bridge-of-dead-owner-is-reclaimed",
    test_owner_stale_bridge_of_dead_owner_is_reclaimed },
  { "/netlink/owner/bridge-without-our-alias-is-busy-and-kept",
    test_owner_bridge_without_our_alias_is_busy_and_kept },
};

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  /* Only the parent probes; a subprocess runs one test in its namespace. */
  if (!g_test_subprocess ())
    netns_skip_reason = test_netns_probe (TRUE);

  for (guint i = 0; i < G_N_ELEMENTS (netns_tests); i++)
    g_test_add_data_func (netns_tests[i].path, &netns_tests[i], run_in_private_netns);
  g_test_add_func ("/netlink/derive-name/is-deterministic", test_derive_name_is_deterministic);
  g_test_add_func ("/netlink/derive-name/fits-ifnamsiz", test_derive_name_fits_ifnamsiz);
  g_test_add_func ("/netlink/derive-name/differs-when-inputs-differ",
                   test_derive_name_differs_when_inputs_differ);

  ret = g_test_run ();
  g_free (netns_skip_reason);
  return ret;
}
