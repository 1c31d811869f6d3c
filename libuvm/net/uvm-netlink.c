/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host network plumbing over rtnetlink.  See uvm-netlink.h for the
 * contract.
 *
 * Why one file of ~930 lines: it is one protocol client (one socket, one
 * request buffer, one sequence counter, one ack reader) with a short
 * function per message kind; splitting the message kinds from the
 * transport would export the transport's internals to a second file and
 * gain no separate job.
 *
 * Requests.  Each request is built in nl->req, sent with NLM_F_ACK and a
 * fresh sequence number, and answered by reading until the NLMSG_ERROR
 * that acknowledges it (error 0 is success).  Replies that carry another
 * sequence number are dropped: they can only be late answers to a request
 * that timed out, and must not be taken for the current one's.
 *
 * Links are named in requests by IFLA_IFNAME wherever the kernel accepts
 * it (new/set/del link), so that a missing link is the kernel's ENODEV and
 * not a race between a lookup and the request.  Addresses, masters and the
 * AF_BRIDGE port request take an ifindex; those look the name up first. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "net/uvm-netlink.h"
#include "util/uvm-util.h"

#include <uvm/uvm-error.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

/* A rogue or wedged kernel path must not hang the library forever. */
#define RECV_TIMEOUT_S 5

/* Our requests are a few hundred bytes; a link reply with stats skipped
 * is a few KiB.  32 KiB keeps any single reply from being truncated. */
#define REQ_SIZE  1024
#define RECV_SIZE (32 * 1024)

#define HASH_HEX_LEN 8

struct _UvmNetlink
{
  struct mnl_socket *sock;
  guint32 portid;
  guint32 seq;
  union {
    struct nlmsghdr align;
    char bytes[REQ_SIZE];
  } req;
  char *recv_buf;            /* RECV_SIZE bytes */
};

/* The kernel's answer to one request. */
typedef struct
{
  int error;                 /* positive errno, 0 for success */
  char *message;             /* extended ack text, or NULL */
} NlAck;

static void
nl_ack_clear (NlAck *ack)
{
  g_clear_pointer (&ack->message, g_free);
}

/* ---- names ------------------------------------------------------------- */

/* The kernel's dev_valid_name() rules, plus '%': the library needs the
 * exact name it asked for, and tun would expand "%d" into a number. */
static gboolean
check_name (const char *name, GError **error)
{
  size_t len = strlen (name);

  if (len == 0 || len >= IFNAMSIZ)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "interface name '%s' is %zu bytes; it must be 1-%d bytes", name, len,
                          IFNAMSIZ - 1);
  if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "interface name '%s' is not allowed", name);
  for (const char *p = name; *p; p++)
    if (*p == '/' || *p == ':' || *p == '%' || g_ascii_isspace (*p))
      return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                            "interface name '%s' may not contain '/', ':', '%%' or white space",
                            name);
  return TRUE;
}

char *
uvm_netlink_derive_name (const char *prefix, const char *a, const char *b)
{
  g_autoptr(GChecksum) sum = NULL;

  g_return_val_if_fail (prefix != NULL, NULL);
  g_return_val_if_fail (strlen (prefix) + HASH_HEX_LEN <= IFNAMSIZ - 1, NULL);
  g_return_val_if_fail (a != NULL, NULL);
  g_return_val_if_fail (b != NULL, NULL);

  /* Each string with its NUL, so that ("ab", "c") and ("a", "bc") differ. */
  sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (sum, (const guchar *) a, strlen (a) + 1);
  g_checksum_update (sum, (const guchar *) b, strlen (b) + 1);
  return g_strdup_printf ("%s%.*s", prefix, HASH_HEX_LEN, g_checksum_get_string (sum));
}

/* ---- the socket -------------------------------------------------------- */

UvmNetlink *
uvm_netlink_open (GError **error)
{
  g_autoptr(UvmNetlink) nl = g_new0 (UvmNetlink, 1);
  struct timeval tv = { .tv_sec = RECV_TIMEOUT_S };
  int one = 1;
  int fd;

  nl->sock = mnl_socket_open2 (NETLINK_ROUTE, SOCK_CLOEXEC);
  if (nl->sock == NULL)
    {
      uvm_set_error (error, UVM_ERROR_FAILED, "opening a netlink socket failed: %s",
                     g_strerror (errno));
      return NULL;
    }
  if (mnl_socket_bind (nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
    {
      uvm_set_error (error, UVM_ERROR_FAILED, "binding the netlink socket failed: %s",
                     g_strerror (errno));
      return NULL;
    }
  nl->portid = mnl_socket_get_portid (nl->sock);
  fd = mnl_socket_get_fd (nl->sock);
  if (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    {
      uvm_set_error (error, UVM_ERROR_FAILED, "setting the netlink receive timeout failed: %s",
                     g_strerror (errno));
      return NULL;
    }
  /* Optional: the kernel's own words for an error (older kernels have no
   * extended acks), and acks that do not echo the whole request back. */
  (void) setsockopt (fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void) setsockopt (fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  nl->recv_buf = g_malloc (RECV_SIZE);
  return g_steal_pointer (&nl);
}

void
uvm_netlink_close (UvmNetlink *nl)
{
  if (nl == NULL)
    return;
  if (nl->sock != NULL)
    mnl_socket_close (nl->sock);
  g_free (nl->recv_buf);
  g_free (nl);
}

static struct nlmsghdr *
nl_request (UvmNetlink *nl, guint16 type, guint16 flags)
{
  struct nlmsghdr *nlh;

  memset (nl->req.bytes, 0, sizeof nl->req.bytes);
  nlh = mnl_nlmsg_put_header (nl->req.bytes);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  return nlh;
}

static void
parse_ack (const struct nlmsghdr *nlh, NlAck *ack)
{
  const struct nlmsgerr *err = mnl_nlmsg_get_payload (nlh);
  const struct nlattr *attr;
  size_t offset;

  ack->error = err->error < 0 ? -err->error : err->error;
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
    return;
  /* The TLVs follow the echoed request: its header only when capped. */
  offset = sizeof *err;
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
    {
      if (err->msg.nlmsg_len < sizeof (struct nlmsghdr))
        return;
      offset += err->msg.nlmsg_len - sizeof (struct nlmsghdr);
    }
  if (offset >= mnl_nlmsg_get_payload_len (nlh))
    return;
  mnl_attr_for_each (attr, nlh, offset)
    {
      if (mnl_attr_get_type (attr) == NLMSGERR_ATTR_MSG &&
          mnl_attr_validate (attr, MNL_TYPE_NUL_STRING) >= 0)
        {
          g_free (ack->message);
          ack->message = g_strdup (mnl_attr_get_str (attr));
        }
    }
}

/* A request of @type about the link named @name (an AF_UNSPEC ifinfomsg
 * and IFLA_IFNAME): the caller sets the ifinfomsg's flags, if any, through
 * mnl_nlmsg_get_payload() and adds its attributes. */
static struct nlmsghdr *
nl_link_request (UvmNetlink *nl, guint16 type, guint16 flags, const char *name)
{
  struct nlmsghdr *nlh = nl_request (nl, type, flags);
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header (nlh, sizeof *ifm);

  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  return nlh;
}

/* Sends @nlh and reads until its ack, handing every other answer to it to
 * @data_cb.  FALSE (with @error) when the kernel could not be asked or did
 * not answer; TRUE with the kernel's verdict in @ack otherwise. */
static gboolean
nl_transact (UvmNetlink *nl, struct nlmsghdr *nlh, const char *what, mnl_cb_t data_cb,
             void *data, NlAck *ack, GError **error)
{
  guint32 seq;

  if (++nl->seq == 0)
    nl->seq = 1;
  seq = nl->seq;
  nlh->nlmsg_seq = seq;

  if (mnl_socket_sendto (nl->sock, nlh, nlh->nlmsg_len) < 0)
    return uvm_set_error (error, UVM_ERROR_FAILED, "%s: sending the netlink request failed: %s",
                          what, g_strerror (errno));
  for (;;)
    {
      const struct nlmsghdr *msg;
      ssize_t n;
      int len;

      n = mnl_socket_recvfrom (nl->sock, nl->recv_buf, RECV_SIZE);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return uvm_set_error (error, UVM_ERROR_TIMEOUT,
                                  "%s: the kernel did not answer within %d s", what,
                                  RECV_TIMEOUT_S);
          return uvm_set_error (error, UVM_ERROR_FAILED,
                                "%s: reading the netlink answer failed: %s", what,
                                g_strerror (errno));
        }
      len = (int) n;
      for (msg = (const struct nlmsghdr *) nl->recv_buf; mnl_nlmsg_ok (msg, len);
           msg = mnl_nlmsg_next (msg, &len))
        {
          if (msg->nlmsg_seq != seq || msg->nlmsg_pid != nl->portid)
            continue;
          if (msg->nlmsg_type == NLMSG_ERROR)
            {
              if (msg->nlmsg_len < mnl_nlmsg_size (sizeof (struct nlmsgerr)))
                return uvm_set_error (error, UVM_ERROR_FAILED,
                                      "%s: the kernel sent a truncated netlink ack", what);
              parse_ack (msg, ack);
              return TRUE;
            }
          if (msg->nlmsg_type >= NLMSG_MIN_TYPE && data_cb != NULL)
            (void) data_cb (msg, data);
        }
    }
}

/* Turns the kernel's refusal of "@what" on link @link into an error. */
static gboolean
ack_error (const NlAck *ack, const char *what, const char *link, GError **error)
{
  switch (ack->error)
    {
    case EPERM:
    case EACCES:
      return uvm_set_error (error, UVM_ERROR_PERMISSION, "%s needs CAP_NET_ADMIN", what);
    case EEXIST:
      return uvm_set_error (error, UVM_ERROR_BUSY, "link '%s' exists already", link);
    case ENODEV:
      return uvm_set_error (error, UVM_ERROR_FAILED, "%s: link '%s' does not exist", what, link);
    default:
      return uvm_set_error (error, UVM_ERROR_FAILED, "%s failed: %s%s%s%s", what,
                            g_strerror (ack->error), ack->message ? " (" : "",
                            ack->message ? ack->message : "", ack->message ? ")" : "");
    }
}

/* One request whose only answer is the ack. */
static gboolean
nl_run (UvmNetlink *nl, struct nlmsghdr *nlh, const char *what, const char *link,
        GError **error)
{
  NlAck ack = { 0 };
  gboolean ok;

  if (!nl_transact (nl, nlh, what, NULL, NULL, &ack, error))
    return FALSE;
  ok = ack.error == 0 || ack_error (&ack, what, link, error);
  nl_ack_clear (&ack);
  return ok;
}

/* ---- link lookup ------------------------------------------------------- */

static int
ifindex_cb (const struct nlmsghdr *nlh, void *data)
{
  const struct ifinfomsg *ifm;

  if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size (sizeof *ifm))
    return MNL_CB_OK;
  ifm = mnl_nlmsg_get_payload (nlh);
  *(int *) data = ifm->ifi_index;
  return MNL_CB_OK;
}

/* The ifindex of @name; 0 with *@missing set when there is no such link
 * (then @error is not set), 0 with @error on other failures. */
static int
lookup_ifindex (UvmNetlink *nl, const char *name, const char *what, gboolean *missing,
                GError **error)
{
  struct nlmsghdr *nlh = nl_link_request (nl, RTM_GETLINK, 0, name);
  NlAck ack = { 0 };
  int ifindex = 0;

  *missing = FALSE;
  mnl_attr_put_u32 (nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (!nl_transact (nl, nlh, what, ifindex_cb, &ifindex, &ack, error))
    return 0;
  if (ack.error == ENODEV)
    *missing = TRUE;
  else if (ack.error != 0)
    ack_error (&ack, what, name, error);
  else if (ifindex <= 0)
    uvm_set_error (error, UVM_ERROR_FAILED, "%s: the kernel acknowledged the lookup of link "
                   "'%s' without describing it", what, name);
  nl_ack_clear (&ack);
  return ack.error == 0 && ifindex > 0 ? ifindex : 0;
}

/* The ifindex of @name, which must exist; 0 with @error otherwise. */
static int
require_ifindex (UvmNetlink *nl, const char *name, const char *what, GError **error)
{
  gboolean missing;
  int ifindex = lookup_ifindex (nl, name, what, &missing, error);

  if (missing)
    uvm_set_error (error, UVM_ERROR_FAILED, "%s: link '%s' does not exist", what, name);
  return ifindex;
}

gboolean
uvm_netlink_link_exists (UvmNetlink *nl, const char *name)
{
  g_autoptr(GError) error = NULL;
  gboolean missing;
  int ifindex;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!check_name (name, NULL))
    return FALSE;
  ifindex = lookup_ifindex (nl, name, "looking up a link", &missing, &error);
  if (error != NULL)
    g_debug ("%s", error->message);
  return ifindex > 0;
}

/* ---- links ------------------------------------------------------------- */

/* Turns IPv6 address generation off on @name, which must still be down:
 * it never gets a link-local (or any autoconfigured) IPv6 address then. */
static gboolean
set_addr_gen_mode_none (UvmNetlink *nl, const char *name, const char *what, GError **error)
{
  struct nlmsghdr *nlh = nl_link_request (nl, RTM_SETLINK, 0, name);
  struct nlattr *af_spec, *inet6;

  af_spec = mnl_attr_nest_start (nlh, IFLA_AF_SPEC);
  inet6 = mnl_attr_nest_start (nlh, AF_INET6);
  mnl_attr_put_u8 (nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
  mnl_attr_nest_end (nlh, inet6);
  mnl_attr_nest_end (nlh, af_spec);
  return nl_run (nl, nlh, what, name, error);
}

gboolean
uvm_netlink_create_bridge (UvmNetlink *nl, const char *name, GError **error)
{
  g_autofree char *what = NULL;
  struct nlmsghdr *nlh;
  struct nlattr *linkinfo;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  what = g_strdup_printf ("creating bridge '%s'", name);
  nlh = nl_link_request (nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name);
  linkinfo = mnl_attr_nest_start (nlh, IFLA_LINKINFO);
  mnl_attr_put_strz (nlh, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end (nlh, linkinfo);
  if (!nl_run (nl, nlh, what, name, error))
    return FALSE;

  /* Not in the RTM_NEWLINK above: the kernel refuses IFLA_AF_SPEC for
   * AF_INET6 at creation (EAFNOSUPPORT, seen on 6.18; the inet6 part of a
   * link exists only once the link is registered).  A new link is down, and
   * a down link gets no address, so setting the mode right after creation
   * and before anyone sets it up is just as good.  If that fails, the bridge
   * must not stay behind with address generation on. */
  if (!set_addr_gen_mode_none (nl, name, what, error))
    {
      g_autoptr(GError) cleanup_error = NULL;
      if (!uvm_netlink_delete_link (nl, name, &cleanup_error))
        g_debug ("%s: removing it again: %s", what, cleanup_error->message);
      return FALSE;
    }
  return TRUE;
}

int
uvm_netlink_create_tap (UvmNetlink *nl, const char *name, GError **error)
{
  g_autofree char *what = NULL;
  struct ifreq ifr = { 0 };
  int fd;

  g_return_val_if_fail (nl != NULL, -1);
  g_return_val_if_fail (name != NULL, -1);

  if (!check_name (name, error))
    return -1;
  what = g_strdup_printf ("creating tap '%s'", name);
  fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    {
      int saved = errno;
      if (saved == EACCES || saved == EPERM)
        uvm_set_error (error, UVM_ERROR_PERMISSION,
                       "%s needs read and write access to /dev/net/tun: %s", what,
                       g_strerror (saved));
      else
        uvm_set_error (error, UVM_ERROR_FAILED, "%s: cannot open /dev/net/tun: %s", what,
                       g_strerror (saved));
      return -1;
    }
  g_strlcpy (ifr.ifr_name, name, sizeof ifr.ifr_name);
  /* IFF_TUN_EXCL: never attach to a tap (or fail on another link) that
   * happens to carry the name; a new one or EBUSY.  Not IFF_PERSIST: the
   * tap lives exactly as long as an fd on it. */
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL;
  if (ioctl (fd, TUNSETIFF, &ifr) != 0)
    {
      int saved = errno;
      uvm_close_fd (&fd);
      if (saved == EPERM || saved == EACCES)
        uvm_set_error (error, UVM_ERROR_PERMISSION, "%s needs CAP_NET_ADMIN", what);
      else if (saved == EBUSY || saved == EEXIST)
        uvm_set_error (error, UVM_ERROR_BUSY, "link '%s' exists already", name);
      else
        uvm_set_error (error, UVM_ERROR_FAILED, "%s failed: %s", what, g_strerror (saved));
      return -1;
    }

  /* The tap is down until someone sets it up: no address can appear
   * between its creation and this. */
  if (!set_addr_gen_mode_none (nl, name, what, error))
    {
      uvm_close_fd (&fd);      /* and with it the tap */
      return -1;
    }
  return fd;
}

gboolean
uvm_netlink_set_master (UvmNetlink *nl, const char *link, const char *master, GError **error)
{
  g_autofree char *what = NULL;
  struct nlmsghdr *nlh;
  int master_index = 0;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (link != NULL, FALSE);

  if (!check_name (link, error) || (master != NULL && !check_name (master, error)))
    return FALSE;
  if (master != NULL)
    {
      what = g_strdup_printf ("enslaving '%s' to '%s'", link, master);
      master_index = require_ifindex (nl, master, what, error);
      if (master_index == 0)
        return FALSE;
    }
  else
    what = g_strdup_printf ("releasing '%s' from its master", link);

  nlh = nl_link_request (nl, RTM_SETLINK, 0, link);
  mnl_attr_put_u32 (nlh, IFLA_MASTER, (guint32) master_index);
  return nl_run (nl, nlh, what, link, error);
}

gboolean
uvm_netlink_set_port_isolated (UvmNetlink *nl, const char *port, gboolean isolated,
                               GError **error)
{
  g_autofree char *what = NULL;
  struct nlmsghdr *nlh;
  struct ifinfomsg *ifm;
  struct nlattr *protinfo;
  NlAck ack = { 0 };
  gboolean ok;
  int ifindex;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (port != NULL, FALSE);

  if (!check_name (port, error))
    return FALSE;
  what = g_strdup_printf ("%s port isolation on '%s'", isolated ? "setting" : "clearing", port);
  /* AF_BRIDGE requests find the port by index only. */
  ifindex = require_ifindex (nl, port, what, error);
  if (ifindex == 0)
    return FALSE;

  nlh = nl_request (nl, RTM_SETLINK, 0);
  ifm = mnl_nlmsg_put_extra_header (nlh, sizeof *ifm);
  ifm->ifi_family = AF_BRIDGE;
  ifm->ifi_index = ifindex;
  /* NLA_F_NESTED is what tells the bridge that IFLA_PROTINFO holds
   * IFLA_BRPORT_* attributes (without it the kernel takes the payload for
   * the old one-byte port state).  libmnl sets it on every nest; spelled
   * out because here it matters. */
  protinfo = mnl_attr_nest_start (nlh, IFLA_PROTINFO | NLA_F_NESTED);
  mnl_attr_put_u8 (nlh, IFLA_BRPORT_ISOLATED, isolated ? 1 : 0);
  mnl_attr_nest_end (nlh, protinfo);

  if (!nl_transact (nl, nlh, what, NULL, NULL, &ack, error))
    return FALSE;
  if (ack.error == EOPNOTSUPP)
    ok = uvm_set_error (error, UVM_ERROR_FAILED, "%s failed: '%s' is not a bridge port",
                        what, port);
  else
    ok = ack.error == 0 || ack_error (&ack, what, port, error);
  nl_ack_clear (&ack);
  return ok;
}

gboolean
uvm_netlink_set_up (UvmNetlink *nl, const char *name, gboolean up, GError **error)
{
  g_autofree char *what = NULL;
  struct nlmsghdr *nlh;
  struct ifinfomsg *ifm;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  what = g_strdup_printf ("setting link '%s' %s", name, up ? "up" : "down");
  nlh = nl_link_request (nl, RTM_SETLINK, 0, name);
  ifm = mnl_nlmsg_get_payload (nlh);
  ifm->ifi_change = IFF_UP;
  ifm->ifi_flags = up ? IFF_UP : 0;
  return nl_run (nl, nlh, what, name, error);
}

gboolean
uvm_netlink_delete_link (UvmNetlink *nl, const char *name, GError **error)
{
  g_autofree char *what = NULL;
  struct nlmsghdr *nlh;
  NlAck ack = { 0 };
  gboolean ok;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  what = g_strdup_printf ("deleting link '%s'", name);
  nlh = nl_link_request (nl, RTM_DELLINK, 0, name);
  if (!nl_transact (nl, nlh, what, NULL, NULL, &ack, error))
    return FALSE;
  /* Gone already is what the caller wants. */
  ok = ack.error == 0 || ack.error == ENODEV || ack_error (&ack, what, name, error);
  nl_ack_clear (&ack);
  return ok;
}

gboolean
uvm_netlink_add_address (UvmNetlink *nl, const char *name, const char *cidr, GError **error)
{
  g_autofree char *what = NULL;
  g_auto(GStrv) parts = NULL;
  struct in_addr addr;
  guint64 prefix_len;
  struct nlmsghdr *nlh;
  struct ifaddrmsg *ifa;
  NlAck ack = { 0 };
  gboolean ok;
  int ifindex;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (cidr != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  parts = g_strsplit (cidr, "/", 2);
  if (g_strv_length (parts) != 2 || inet_pton (AF_INET, parts[0], &addr) != 1 ||
      !g_ascii_string_to_unsigned (parts[1], 10, 0, 32, &prefix_len, NULL))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "address '%s' for link '%s' is not an IPv4 address with a prefix "
                          "length (a.b.c.d/len)", cidr, name);

  what = g_strdup_printf ("adding address %s to link '%s'", cidr, name);
  ifindex = require_ifindex (nl, name, what, error);
  if (ifindex == 0)
    return FALSE;

  nlh = nl_request (nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifa = mnl_nlmsg_put_extra_header (nlh, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (unsigned char) prefix_len;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (unsigned) ifindex;
  mnl_attr_put (nlh, IFA_LOCAL, sizeof addr, &addr);
  mnl_attr_put (nlh, IFA_ADDRESS, sizeof addr, &addr);
  if (!nl_transact (nl, nlh, what, NULL, NULL, &ack, error))
    return FALSE;
  if (ack.error == EEXIST)
    ok = uvm_set_error (error, UVM_ERROR_BUSY, "address %s exists already on link '%s'",
                        cidr, name);
  else
    ok = ack.error == 0 || ack_error (&ack, what, name, error);
  nl_ack_clear (&ack);
  return ok;
}

/* ---- namespace identity -------------------------------------------------- */

char *
uvm_netlink_get_netns_id (UvmNetlink *nl, GError **error)
{
  struct stat sock_ns, thread_ns;
  int ns_fd;

  g_return_val_if_fail (nl != NULL, NULL);

  /* The answer is an O_CLOEXEC fd on the socket's namespace. */
  ns_fd = ioctl (mnl_socket_get_fd (nl->sock), SIOCGSKNS);
  if (ns_fd < 0)
    {
      int saved = errno;
      if (saved == EPERM || saved == EACCES)
        uvm_set_error (error, UVM_ERROR_PERMISSION,
                       "finding the network namespace of the netlink socket needs CAP_NET_ADMIN");
      else
        uvm_set_error (error, UVM_ERROR_FAILED,
                       "finding the network namespace of the netlink socket failed: %s",
                       g_strerror (saved));
      return NULL;
    }
  if (fstat (ns_fd, &sock_ns) != 0)
    {
      int saved = errno;
      close (ns_fd);
      uvm_set_error (error, UVM_ERROR_FAILED, "fstat of a network namespace fd failed: %s",
                     g_strerror (saved));
      return NULL;
    }
  close (ns_fd);
  if (stat ("/proc/thread-self/ns/net", &thread_ns) != 0)
    {
      uvm_set_error (error, UVM_ERROR_FAILED,
                     "cannot read /proc/thread-self/ns/net (is /proc mounted?): %s",
                     g_strerror (errno));
      return NULL;
    }
  if (sock_ns.st_dev != thread_ns.st_dev || sock_ns.st_ino != thread_ns.st_ino)
    {
      uvm_set_error (error, UVM_ERROR_FAILED,
                     "the calling thread has left the network namespace the netlink socket "
                     "was opened in");
      return NULL;
    }
  return g_strdup_printf ("%ju:%ju", (uintmax_t) sock_ns.st_dev, (uintmax_t) sock_ns.st_ino);
}

/* ---- sealing the host side ------------------------------------------------ */

typedef struct
{
  guint16 id;
  guint32 value;
} Ipv4Conf;

/* What the IPv4 side of a sealed link is set to (see the header). */
static const Ipv4Conf sealed_ipv4_conf[] = {
  { IPV4_DEVCONF_ARP_IGNORE, 8 },   /* do not reply for any local address */
  { IPV4_DEVCONF_RP_FILTER, 1 },    /* strict: nothing routes back over it */
};

/* Writes @text to /proc/sys file @path. */
static gboolean
write_sysctl (const char *path, const char *text, const char *what, GError **error)
{
  size_t len = strlen (text);
  ssize_t n;
  int fd, saved;

  fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0)
    {
      do
        n = write (fd, text, len);
      while (n < 0 && errno == EINTR);
      saved = errno;
      close (fd);
      if (n == (ssize_t) len)
        return TRUE;
      if (n >= 0)
        saved = EIO;
    }
  else
    saved = errno;
  if (saved == EACCES || saved == EPERM || saved == EROFS)
    return uvm_set_error (error, UVM_ERROR_PERMISSION,
                          "%s: cannot write %s (needs CAP_NET_ADMIN and a writable /proc/sys): "
                          "%s", what, path, g_strerror (saved));
  return uvm_set_error (error, UVM_ERROR_FAILED, "%s: cannot write %s: %s", what, path,
                        g_strerror (saved));
}

/* One RTM_SETLINK: @flags within @change, and per-link IPv4 settings
 * (IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF). */
static gboolean
set_link_ipv4 (UvmNetlink *nl, const char *name, unsigned change, unsigned flags,
               const Ipv4Conf *conf, guint n_conf, const char *what, GError **error)
{
  struct nlmsghdr *nlh = nl_link_request (nl, RTM_SETLINK, 0, name);
  struct ifinfomsg *ifm = mnl_nlmsg_get_payload (nlh);
  struct nlattr *af_spec, *inet, *nest;

  ifm->ifi_change = change;
  ifm->ifi_flags = flags;
  af_spec = mnl_attr_nest_start (nlh, IFLA_AF_SPEC);
  inet = mnl_attr_nest_start (nlh, AF_INET);
  nest = mnl_attr_nest_start (nlh, IFLA_INET_CONF);
  for (guint i = 0; i < n_conf; i++)
    mnl_attr_put_u32 (nlh, conf[i].id, conf[i].value);
  mnl_attr_nest_end (nlh, nest);
  mnl_attr_nest_end (nlh, inet);
  mnl_attr_nest_end (nlh, af_spec);
  return nl_run (nl, nlh, what, name, error);
}

gboolean
uvm_netlink_set_ipv4_forwarding (UvmNetlink *nl, const char *name, gboolean on, GError **error)
{
  const Ipv4Conf conf = { IPV4_DEVCONF_FORWARDING, on ? 1 : 0 };
  g_autofree char *what = NULL;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  what = g_strdup_printf ("setting IPv4 forwarding on '%s'", name);
  return set_link_ipv4 (nl, name, 0, 0, &conf, 1, what, error);
}

gboolean
uvm_netlink_seal_host_side (UvmNetlink *nl, const char *name, GError **error)
{
  g_autofree char *what = NULL;
  g_autofree char *netns = NULL;
  g_autofree char *path = NULL;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  what = g_strdup_printf ("sealing the host side of '%s'", name);

  if (!set_link_ipv4 (nl, name, IFF_NOARP, IFF_NOARP, sealed_ipv4_conf,
                      G_N_ELEMENTS (sealed_ipv4_conf), what, error))
    return FALSE;

  /* No IPv6 in this kernel (ipv6.disable=1): nothing to turn off. */
  if (!g_file_test ("/proc/sys/net/ipv6/conf", G_FILE_TEST_IS_DIR))
    return TRUE;
  /* /proc/sys/net shows the writer's namespace: it must be the socket's. */
  netns = uvm_netlink_get_netns_id (nl, error);
  if (netns == NULL)
    return g_prefix_error (error, "%s: ", what), FALSE;
  path = g_build_filename ("/proc/sys/net/ipv6/conf", name, "disable_ipv6", NULL);
  return write_sysctl (path, "1", what, error);
}

/* ---- aliases and link kinds ------------------------------------------------ */

gboolean
uvm_netlink_set_alias (UvmNetlink *nl, const char *name, const char *alias, GError **error)
{
  g_autofree char *what = NULL;
  struct nlmsghdr *nlh;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (alias != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  if (strlen (alias) > 255)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "alias for link '%s' is %zu bytes; at most 255 are allowed", name,
                          strlen (alias));
  what = g_strdup_printf ("setting the alias of link '%s'", name);
  nlh = nl_link_request (nl, RTM_SETLINK, 0, name);
  mnl_attr_put_strz (nlh, IFLA_IFALIAS, alias);
  return nl_run (nl, nlh, what, name, error);
}

typedef struct
{
  gboolean seen;
  char *kind;
  char *alias;
} LinkInfo;

static int
link_info_cb (const struct nlmsghdr *nlh, void *data)
{
  LinkInfo *info = data;
  const struct ifinfomsg *ifm;
  const struct nlattr *attr, *inner;

  if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size (sizeof *ifm))
    return MNL_CB_OK;
  ifm = mnl_nlmsg_get_payload (nlh);
  info->seen = TRUE;
  mnl_attr_for_each (attr, nlh, sizeof *ifm)
    {
      switch (mnl_attr_get_type (attr))
        {
        case IFLA_IFALIAS:
          if (mnl_attr_validate (attr, MNL_TYPE_NUL_STRING) >= 0)
            {
              g_free (info->alias);
              info->alias = g_strdup (mnl_attr_get_str (attr));
            }
          break;
        case IFLA_LINKINFO:
          if (mnl_attr_validate (attr, MNL_TYPE_NESTED) < 0)
            break;
          mnl_attr_for_each_nested (inner, attr)
            if (mnl_attr_get_type (inner) == IFLA_INFO_KIND &&
                mnl_attr_validate (inner, MNL_TYPE_NUL_STRING) >= 0)
              {
                g_free (info->kind);
                info->kind = g_strdup (mnl_attr_get_str (inner));
              }
          break;
        default:
          break;
        }
    }
  return MNL_CB_OK;
}

gboolean
uvm_netlink_get_link_info (UvmNetlink *nl, const char *name, char **kind, char **alias,
                           GError **error)
{
  g_autofree char *what = NULL;
  struct nlmsghdr *nlh;
  LinkInfo info = { 0 };
  NlAck ack = { 0 };
  gboolean ok;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!check_name (name, error))
    return FALSE;
  what = g_strdup_printf ("looking up link '%s'", name);
  nlh = nl_link_request (nl, RTM_GETLINK, 0, name);
  mnl_attr_put_u32 (nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (!nl_transact (nl, nlh, what, link_info_cb, &info, &ack, error))
    ok = FALSE;
  else if (ack.error != 0)
    ok = ack_error (&ack, what, name, error);
  else if (!info.seen)
    ok = uvm_set_error (error, UVM_ERROR_FAILED,
                        "%s: the kernel acknowledged the lookup without describing it", what);
  else
    ok = TRUE;
  nl_ack_clear (&ack);
  if (ok && kind != NULL)
    *kind = g_steal_pointer (&info.kind);
  if (ok && alias != NULL)
    *alias = g_steal_pointer (&info.alias);
  g_free (info.kind);
  g_free (info.alias);
  return ok;
}
