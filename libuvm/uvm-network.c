/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-private.h"
#include "backend/uvm-backend.h"
#include "util/uvm-util.h"
#include "net/uvm-bridge-owner.h"
#include "net/uvm-netlink.h"
#include "net/uvm-nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct _UvmNetwork
{
  GObject parent_instance;
  char *name;
  char *tap_name;           /* TAP */
  char *host_bridge;        /* BRIDGE */
  UvmNetworkKind kind;
  UvmUplinkMode uplink_mode; /* UPLINK */
  /* The NICs of VMs on this network (Member), by an opaque key (the
   * device object, never dereferenced here): a device removes itself when
   * finalized.  Networks know nothing of devices but these keys. */
  GArray *members;
  /* Which member holds which end of the isolated link.  A slot is fixed
   * for a member's life and freed when it leaves, so a newcomer takes the
   * free end and never the one the remaining member holds. */
  gconstpointer link_owner[2];
  /* Isolated point-to-point link: both ends of a SOCK_DGRAM socket pair,
   * kept for the network's life so that either VM may restart without the
   * other noticing more than lost frames.  Datagrams keep Ethernet frame
   * boundaries, which a stream socket would not. */
  int link_fds[2];
  /* Isolated network built as a bridge (uvm_network_uses_bridge()): the
   * bridge exists while at least one member's hypervisor holds a tap on
   * it; bridge_users are those members' net devices. */
  gboolean bridge_created;
  GPtrArray *bridge_users;
  /* Tap+NAT uplink: the member whose tap carries the NAT table, and the
   * table's name, while its hypervisor runs. */
  gconstpointer nat_user;
  char *nat_table;
};

typedef struct {
  gconstpointer key;
  UvmHypervisor hypervisor;   /* of the member's VM */
} Member;

G_DEFINE_FINAL_TYPE (UvmNetwork, uvm_network, G_TYPE_OBJECT)

static void
uvm_network_finalize (GObject *object)
{
  UvmNetwork *self = UVM_NETWORK (object);

  if (self->bridge_created)
    {
      g_autoptr(UvmNetlink) nl = uvm_netlink_open (NULL);
      g_autofree char *bridge = uvm_network_bridge_name (self);

      if (nl != NULL)
        uvm_bridge_owner_delete (nl, bridge, NULL);
    }
  if (self->nat_table != NULL)
    uvm_nft_delete_table (self->nat_table, NULL);
  g_free (self->nat_table);
  g_ptr_array_unref (self->bridge_users);
  uvm_close_fd (&self->link_fds[0]);
  uvm_close_fd (&self->link_fds[1]);
  g_array_unref (self->members);
  g_free (self->name);
  g_free (self->tap_name);
  g_free (self->host_bridge);
  G_OBJECT_CLASS (uvm_network_parent_class)->finalize (object);
}

static void
uvm_network_class_init (UvmNetworkClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = uvm_network_finalize;
}

static void
uvm_network_init (UvmNetwork *self)
{
  self->members = g_array_new (FALSE, FALSE, sizeof (Member));
  self->bridge_users = g_ptr_array_new ();
  self->link_fds[0] = self->link_fds[1] = -1;
}

static UvmNetwork *
network_new (const char *name, UvmNetworkKind kind)
{
  UvmNetwork *self;

  g_return_val_if_fail (name != NULL, NULL);
  self = g_object_new (UVM_TYPE_NETWORK, NULL);
  self->name = g_strdup (name);
  self->kind = kind;
  return self;
}

UvmNetwork *
uvm_network_new_isolated (const char *name)
{
  return network_new (name, UVM_NETWORK_ISOLATED);
}

UvmNetwork *
uvm_network_new_uplink (const char *name)
{
  return network_new (name, UVM_NETWORK_UPLINK);
}

UvmNetwork *
uvm_network_new_tap (const char *name, const char *tap_name)
{
  UvmNetwork *self;

  g_return_val_if_fail (tap_name != NULL, NULL);
  self = network_new (name, UVM_NETWORK_TAP);
  if (self != NULL)
    self->tap_name = g_strdup (tap_name);
  return self;
}

UvmNetwork *
uvm_network_new_bridge (const char *name, const char *host_bridge)
{
  UvmNetwork *self;

  g_return_val_if_fail (host_bridge != NULL, NULL);
  self = network_new (name, UVM_NETWORK_BRIDGE);
  if (self != NULL)
    self->host_bridge = g_strdup (host_bridge);
  return self;
}

const char *
uvm_network_get_host_bridge (UvmNetwork *network)
{
  g_return_val_if_fail (UVM_IS_NETWORK (network), NULL);
  return network->host_bridge;
}

void
uvm_network_set_uplink_mode (UvmNetwork *network, UvmUplinkMode mode)
{
  g_return_if_fail (UVM_IS_NETWORK (network));
  g_return_if_fail (mode >= UVM_UPLINK_AUTO && mode <= UVM_UPLINK_TAP_NAT);
  network->uplink_mode = mode;
}

UvmUplinkMode
uvm_network_get_uplink_mode (UvmNetwork *network)
{
  g_return_val_if_fail (UVM_IS_NETWORK (network), UVM_UPLINK_AUTO);
  return network->uplink_mode;
}

UvmUplinkMode
uvm_network_effective_uplink_mode (UvmNetwork *network, UvmHypervisor hypervisor)
{
  const UvmBackend *backend;

  if (network->kind != UVM_NETWORK_UPLINK)
    return UVM_UPLINK_AUTO;
  if (network->uplink_mode != UVM_UPLINK_AUTO)
    return network->uplink_mode;
  backend = uvm_backend_lookup (hypervisor, NULL);
  return backend != NULL ? backend->default_uplink : UVM_UPLINK_AUTO;
}

const char *
uvm_network_get_tap_name (UvmNetwork *network)
{
  g_return_val_if_fail (UVM_IS_NETWORK (network), NULL);
  return network->tap_name;
}

static gboolean
check_ifname (const char *name, const char *field, const char *what, GError **error)
{
  if (strlen (name) == 0 || strlen (name) >= IFNAMSIZ || strcspn (name, "/:% \t\n") != strlen (name))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "%s: %s '%s' must be 1-%d bytes without '/', ':', '%%' or white space",
                          field, what, name, IFNAMSIZ - 1);
  return TRUE;
}

gboolean
uvm_network_check_device (UvmNetwork *network, const char *tap, const char *field,
                          GError **error)
{
  if (tap != NULL && !check_ifname (tap, field, "tap name", error))
    return FALSE;
  return uvm_network_check (network, field, error);
}

gboolean
uvm_network_check (UvmNetwork *network, const char *field, GError **error)
{
  if (network->kind == UVM_NETWORK_BRIDGE)
    return check_ifname (network->host_bridge, field, "host bridge", error);
  if (network->kind != UVM_NETWORK_TAP)
    return TRUE;
  if (strlen (network->tap_name) == 0 || strlen (network->tap_name) >= IFNAMSIZ)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "%s: tap name '%s' must be 1-%d bytes", field, network->tap_name,
                          IFNAMSIZ - 1);
  if (if_nametoindex (network->tap_name) == 0)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "%s: tap '%s' does not exist in this network namespace", field,
                          network->tap_name);
  return TRUE;
}

int
uvm_network_open_tap_fd (UvmNetwork *network, GError **error)
{
  struct ifreq ifr = { 0 };
  int fd;

  fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    {
      uvm_set_error (error, errno == EACCES || errno == EPERM ? UVM_ERROR_PERMISSION : UVM_ERROR_FAILED,
                     "network '%s': cannot open /dev/net/tun: %s", network->name, g_strerror (errno));
      return -1;
    }
  g_strlcpy (ifr.ifr_name, network->tap_name, sizeof ifr.ifr_name);
  /* The vnet header lets the hypervisor offload checksums and segmentation;
   * both qemu (vnet_hdr=on) and cloud-hypervisor expect it. */
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl (fd, TUNSETIFF, &ifr) != 0)
    {
      int saved = errno;
      close (fd);
      uvm_set_error (error, saved == EPERM ? UVM_ERROR_PERMISSION : UVM_ERROR_START_FAILED,
                     "network '%s': attaching to tap '%s' %s: %s", network->name, network->tap_name,
                     saved == EPERM ? "needs CAP_NET_ADMIN or ownership of the tap" : "failed",
                     g_strerror (saved));
      return -1;
    }
  return fd;
}

const char *
uvm_network_get_name (UvmNetwork *network)
{
  g_return_val_if_fail (UVM_IS_NETWORK (network), NULL);
  return network->name;
}

UvmNetworkKind
uvm_network_get_kind (UvmNetwork *network)
{
  g_return_val_if_fail (UVM_IS_NETWORK (network), UVM_NETWORK_ISOLATED);
  return network->kind;
}

void
uvm_network_add_member (UvmNetwork *network, gconstpointer device, UvmHypervisor hypervisor)
{
  Member member = { device, hypervisor };

  g_array_append_val (network->members, member);
  for (guint i = 0; i < G_N_ELEMENTS (network->link_owner); i++)
    if (network->link_owner[i] == NULL)
      {
        network->link_owner[i] = device;
        break;
      }
}

/* ---- Isolated networks as a bridge --------------------------------- */

gboolean
uvm_network_uses_bridge (UvmNetwork *network)
{
  if (network->kind != UVM_NETWORK_ISOLATED)
    return FALSE;
  if (network->members->len > 2)
    return TRUE;
  /* A member whose hypervisor has no socket-pair link needs the bridge. */
  for (guint i = 0; i < network->members->len; i++)
    if (!uvm_hypervisor_supports (g_array_index (network->members, Member, i).hypervisor,
                                  UVM_FEATURE_SOCKET_LINK))
      return TRUE;
  return FALSE;
}

char *
uvm_network_bridge_name (UvmNetwork *network)
{
  return uvm_netlink_derive_name ("uvb", network->name, "");
}

char *
uvm_network_member_tap_name (UvmNetwork *network, const char *tap, const char *vm_name)
{
  if (tap != NULL)
    return g_strdup (tap);
  return uvm_netlink_derive_name ("uvt", vm_name, network->name);
}

gboolean
uvm_network_uses_lib_tap (UvmNetwork *network, UvmHypervisor hypervisor)
{
  switch (network->kind)
    {
    case UVM_NETWORK_BRIDGE:
      return TRUE;
    case UVM_NETWORK_UPLINK:
      return uvm_network_effective_uplink_mode (network, hypervisor) == UVM_UPLINK_TAP_NAT;
    case UVM_NETWORK_ISOLATED:
      return uvm_network_uses_bridge (network);
    default:
      return FALSE;
    }
}

char *
uvm_network_nat_table_name (const char *tap)
{
  g_autofree char *table = g_strdup_printf ("uvm_%s", tap);

  /* nft names: keep [A-Za-z0-9_] (a tap name may hold '-' or '.'). */
  for (char *p = table; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_')
      *p = '_';
  return g_steal_pointer (&table);
}

/* Whether @addr is an IPv4 address of an interface of this namespace.
 * (Not a bind() probe: with lo down, binding any address succeeds.) */
static gboolean
host_has_address (const char *addr)
{
  struct ifaddrs *list = NULL;
  struct in_addr want;
  gboolean found = FALSE;

  if (inet_pton (AF_INET, addr, &want) != 1 || getifaddrs (&list) != 0)
    return FALSE;
  for (struct ifaddrs *i = list; i != NULL && !found; i = i->ifa_next)
    found = i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
            ((struct sockaddr_in *) i->ifa_addr)->sin_addr.s_addr == want.s_addr;
  freeifaddrs (list);
  return found;
}

/* A new non-persistent tap @tap, enslaved to @bridge (an isolated port
 * for a @workstation: it reaches only non-isolated ports, its gateway) and
 * up; its queue fd, or -1.  On failure the tap is gone with the fd. */
static int
open_bridge_port (UvmNetlink *nl, const char *tap, const char *bridge, gboolean workstation,
                  GError **error)
{
  int fd = uvm_netlink_create_tap (nl, tap, error);

  if (fd >= 0 &&
      (!uvm_netlink_set_master (nl, tap, bridge, error) ||
       (workstation && !uvm_netlink_set_port_isolated (nl, tap, TRUE, error)) ||
       !uvm_netlink_set_up (nl, tap, TRUE, error)))
    uvm_close_fd (&fd);
  return fd;
}

/* A member of a host-bridge network: a new tap on the host's bridge. */
static int
open_host_bridge_tap (UvmNetwork *network, const char *tap, gboolean workstation, GError **error)
{
  g_autoptr(UvmNetlink) nl = NULL;
  GError *local = NULL;
  int fd = -1;

  nl = uvm_netlink_open (&local);
  if (nl != NULL && !uvm_netlink_link_exists (nl, network->host_bridge))
    uvm_set_error (&local, UVM_ERROR_START_FAILED, "host bridge '%s' does not exist",
                   network->host_bridge);
  else if (nl != NULL)
    fd = open_bridge_port (nl, tap, network->host_bridge, workstation, &local);
  if (fd < 0)
    {
      g_prefix_error (&local, "network '%s' (taps on host bridge '%s'): ", network->name,
                      network->host_bridge);
      g_propagate_error (error, local);
    }
  return fd;
}

/* The NAT table goes; the tap (and with it its address) went with the
 * hypervisor's last fd. */
static void
release_nat (UvmNetwork *network)
{
  g_autoptr(GError) error = NULL;

  if (!uvm_nft_delete_table (network->nat_table, &error))
    g_warning ("uplink '%s': %s", network->name, error->message);
  g_clear_pointer (&network->nat_table, g_free);
  network->nat_user = NULL;
}

/* A tap+NAT uplink: a new tap with the host side address, forwarding of
 * what comes in on it, and the masquerading table. */
static int
open_nat_tap (UvmNetwork *network, gconstpointer device, const char *tap, GError **error)
{
  g_autoptr(UvmNetlink) nl = NULL;
  g_autofree char *table = uvm_network_nat_table_name (tap);
  GError *local = NULL;
  int fd = -1;

  if (network->nat_user != NULL)
    {
      uvm_set_error (&local, UVM_ERROR_BUSY, "a tap+NAT uplink serves one VM, and another "
                     "member's hypervisor holds it");
      goto fail;
    }
  if (host_has_address (UVM_TAP_NAT_HOST))
    {
      uvm_set_error (&local, UVM_ERROR_BUSY, UVM_TAP_NAT_HOST " is an address of this host (network "
                     "namespace) already: another tap+NAT uplink, or a local network using "
                     "10.0.2.0/24");
      goto fail;
    }
  nl = uvm_netlink_open (&local);
  if (nl == NULL)
    goto fail;
  fd = uvm_netlink_create_tap (nl, tap, &local);
  if (fd < 0)
    goto fail;
  if (!uvm_netlink_add_address (nl, tap, UVM_TAP_NAT_HOST_CIDR, &local) ||
      !uvm_netlink_set_ipv4_forwarding (nl, tap, TRUE, &local) ||
      !uvm_nft_add_masquerade (table, tap, UVM_TAP_NAT_SUBNET, &local))
    goto fail;
  network->nat_user = device;
  network->nat_table = g_steal_pointer (&table);
  if (!uvm_netlink_set_up (nl, tap, TRUE, &local))
    {
      release_nat (network);
      goto fail;
    }
  return fd;

fail:
  uvm_close_fd (&fd);   /* the tap and its address go with it */
  g_prefix_error (&local, "uplink '%s' (tap with NAT): ", network->name);
  g_propagate_error (error, local);
  return -1;
}

static void
delete_bridge_if_unused (UvmNetwork *network, UvmNetlink *nl)
{
  g_autoptr(UvmNetlink) own = NULL;
  g_autofree char *bridge = NULL;
  g_autoptr(GError) error = NULL;

  if (!network->bridge_created || network->bridge_users->len > 0)
    return;
  bridge = uvm_network_bridge_name (network);
  if (nl == NULL)
    nl = own = uvm_netlink_open (&error);
  if (nl == NULL || !uvm_bridge_owner_delete (nl, bridge, &error))
    g_warning ("isolated network '%s': cannot delete bridge '%s': %s", network->name, bridge,
               error->message);
  network->bridge_created = FALSE;
}

static gboolean
prefix_network_error (UvmNetwork *network, GError **error, GError *local)
{
  if (g_error_matches (local, UVM_ERROR, UVM_ERROR_PERMISSION))
    g_prefix_error (&local, "isolated network '%s' (a bridge, since it has more than two members "
                    "or a cloud-hypervisor member): ", network->name);
  else
    g_prefix_error (&local, "isolated network '%s': ", network->name);
  g_propagate_error (error, local);
  return FALSE;
}

/* A member of an isolated network built as a bridge: the bridge (made by
 * its first user) and a new tap on it. */
static int
open_isolated_bridge_tap (UvmNetwork *network, gconstpointer device, const char *tap,
                          gboolean workstation, GError **error)
{
  g_autoptr(UvmNetlink) nl = NULL;
  g_autofree char *bridge = uvm_network_bridge_name (network);
  GError *local = NULL;
  int fd = -1;

  if (network->link_fds[0] >= 0)
    {
      uvm_set_error (error, UVM_ERROR_BUSY,
                     "isolated network '%s' was linked as a socket pair when it had two qemu "
                     "members; it cannot become a bridge while that link exists", network->name);
      return -1;
    }
  nl = uvm_netlink_open (&local);
  if (nl == NULL)
    return prefix_network_error (network, error, local), -1;
  if (!network->bridge_created)
    {
      /* Created down with addrgenmode none, no IPv4 ever, marked and
       * locked as ours (one left by a killed process is reclaimed), and
       * sealed before it goes up: the host has no address on the segment
       * and answers nothing there (ARP, NDP) for its other addresses. */
      if (!uvm_bridge_owner_create (nl, bridge, network->name, &local))
        return prefix_network_error (network, error, local), -1;
      network->bridge_created = TRUE;
      if (!uvm_netlink_seal_host_side (nl, bridge, &local) ||
          !uvm_netlink_set_up (nl, bridge, TRUE, &local))
        goto fail;
    }
  fd = open_bridge_port (nl, tap, bridge, workstation, &local);
  if (fd < 0)
    goto fail;
  if (!g_ptr_array_find (network->bridge_users, (gpointer) device, NULL))
    g_ptr_array_add (network->bridge_users, (gpointer) device);
  return fd;

fail:
  delete_bridge_if_unused (network, nl);
  prefix_network_error (network, error, local);
  return -1;
}

int
uvm_network_open_lib_tap (UvmNetwork *network, gconstpointer device, const char *tap,
                          gboolean workstation, GError **error)
{
  switch (network->kind)
    {
    case UVM_NETWORK_BRIDGE:
      return open_host_bridge_tap (network, tap, workstation, error);
    case UVM_NETWORK_UPLINK:
      return open_nat_tap (network, device, tap, error);
    case UVM_NETWORK_ISOLATED:
      return open_isolated_bridge_tap (network, device, tap, workstation, error);
    default:
      uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "network '%s': the library makes no tap "
                     "for this kind", network->name);
      return -1;
    }
}

void
uvm_network_release_lib_tap (UvmNetwork *network, gconstpointer device)
{
  if (network->nat_user == device && device != NULL)
    release_nat (network);
  else if (g_ptr_array_remove (network->bridge_users, (gpointer) device))
    delete_bridge_if_unused (network, NULL);
}

void
uvm_network_remove_member (UvmNetwork *network, gconstpointer device)
{
  for (guint i = 0; i < network->members->len; i++)
    if (g_array_index (network->members, Member, i).key == device)
      {
        g_array_remove_index (network->members, i);
        break;
      }
  uvm_network_release_lib_tap (network, device);
  for (guint i = 0; i < G_N_ELEMENTS (network->link_owner); i++)
    if (network->link_owner[i] == device)
      network->link_owner[i] = NULL;
}

guint
uvm_network_get_n_members (UvmNetwork *network)
{
  return network->members->len;
}

int
uvm_network_open_link_fd (UvmNetwork *network, gconstpointer device, GError **error)
{
  guint index = 0;
  int fd;

  while (index < G_N_ELEMENTS (network->link_owner) && network->link_owner[index] != device)
    index++;
  if (network->bridge_users->len > 0)
    {
      uvm_set_error (error, UVM_ERROR_BUSY,
                     "isolated network '%s' is a bridge in use; it cannot be linked as a socket "
                     "pair until its members have stopped", network->name);
      return -1;
    }
  if (network->kind != UVM_NETWORK_ISOLATED || index == G_N_ELEMENTS (network->link_owner))
    {
      uvm_set_error (error, UVM_ERROR_UNSUPPORTED,
                     "network '%s': no link end for this device", network->name);
      return -1;
    }
  if (network->link_fds[0] < 0 &&
      socketpair (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, network->link_fds) != 0)
    {
      uvm_set_error (error, UVM_ERROR_FAILED, "network '%s': socketpair: %s",
                     network->name, g_strerror (errno));
      return -1;
    }
  fd = fcntl (network->link_fds[index], F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    uvm_set_error (error, UVM_ERROR_FAILED, "network '%s': dup: %s",
                   network->name, g_strerror (errno));
  return fd;
}
