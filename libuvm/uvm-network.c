/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-private.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
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
  UvmNetworkKind kind;
  /* Net devices attached to a VM on this network, not referenced: a device
   * removes itself when finalized. */
  GPtrArray *members;
  /* Which member holds which end of the isolated link.  A slot is fixed
   * for a member's life and freed when it leaves, so a newcomer takes the
   * free end and never the one the remaining member holds. */
  UvmDevice *link_owner[2];
  /* Isolated point-to-point link: both ends of a SOCK_DGRAM socket pair,
   * kept for the network's life so that either VM may restart without the
   * other noticing more than lost frames.  Datagrams keep Ethernet frame
   * boundaries, which a stream socket would not. */
  int link_fds[2];
};

G_DEFINE_FINAL_TYPE (UvmNetwork, uvm_network, G_TYPE_OBJECT)

static void
uvm_network_finalize (GObject *object)
{
  UvmNetwork *self = UVM_NETWORK (object);

  uvm_close_fd (&self->link_fds[0]);
  uvm_close_fd (&self->link_fds[1]);
  g_ptr_array_unref (self->members);
  g_free (self->name);
  g_free (self->tap_name);
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
  self->members = g_ptr_array_new ();
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

const char *
uvm_network_get_tap_name (UvmNetwork *network)
{
  g_return_val_if_fail (UVM_IS_NETWORK (network), NULL);
  return network->tap_name;
}

gboolean
uvm_network_check (UvmNetwork *network, const char *field, GError **error)
{
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
uvm_network_add_member (UvmNetwork *network, UvmDevice *device)
{
  g_ptr_array_add (network->members, device);
  for (guint i = 0; i < G_N_ELEMENTS (network->link_owner); i++)
    if (network->link_owner[i] == NULL)
      {
        network->link_owner[i] = device;
        break;
      }
}

void
uvm_network_remove_member (UvmNetwork *network, UvmDevice *device)
{
  g_ptr_array_remove (network->members, device);
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
uvm_network_open_link_fd (UvmNetwork *network, UvmDevice *device, GError **error)
{
  guint index = 0;
  int fd;

  while (index < G_N_ELEMENTS (network->link_owner) && network->link_owner[index] != device)
    index++;
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
