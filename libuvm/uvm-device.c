/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-private.h"
#include "util/uvm-util.h"

#include <string.h>

struct _UvmDevice
{
  GObject parent_instance;
  UvmDeviceKind kind;
  char *id;
  gboolean hotpluggable;
  gboolean claimed;
  UvmNetwork *network;   /* NET */
  char *mac;             /* NET */
  char *tap_name;        /* NET: override of the derived tap name */
  UvmStorage *storage;   /* DISK */
  char *log_path;        /* CONSOLE */
};

G_DEFINE_FINAL_TYPE (UvmDevice, uvm_device, G_TYPE_OBJECT)

static void
uvm_device_finalize (GObject *object)
{
  UvmDevice *self = UVM_DEVICE (object);

  if (self->network != NULL)
    {
      if (self->claimed)
        uvm_network_remove_member (self->network, self);
      g_object_unref (self->network);
    }
  g_clear_object (&self->storage);
  g_free (self->id);
  g_free (self->mac);
  g_free (self->tap_name);
  g_free (self->log_path);
  G_OBJECT_CLASS (uvm_device_parent_class)->finalize (object);
}

static void
uvm_device_class_init (UvmDeviceClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = uvm_device_finalize;
}

static void
uvm_device_init (UvmDevice *self)
{
}

static UvmDevice *
device_new (UvmDeviceKind kind)
{
  UvmDevice *self = g_object_new (UVM_TYPE_DEVICE, NULL);

  self->kind = kind;
  return self;
}

UvmDevice *
uvm_device_new_net (UvmNetwork *network, const char *mac)
{
  UvmDevice *self;

  g_return_val_if_fail (UVM_IS_NETWORK (network), NULL);
  self = device_new (UVM_DEVICE_NET);
  self->network = g_object_ref (network);
  self->mac = g_strdup (mac);
  return self;
}

UvmDevice *
uvm_device_new_disk (UvmStorage *storage)
{
  UvmDevice *self;

  g_return_val_if_fail (UVM_IS_STORAGE (storage), NULL);
  self = device_new (UVM_DEVICE_DISK);
  self->storage = g_object_ref (storage);
  return self;
}

UvmDevice *
uvm_device_new_console (const char *log_path)
{
  UvmDevice *self = device_new (UVM_DEVICE_CONSOLE);

  self->log_path = log_path != NULL ? uvm_absolute_path (log_path) : NULL;
  return self;
}

UvmDevice *
uvm_device_new_rng (void)
{
  return device_new (UVM_DEVICE_RNG);
}

UvmDevice *
uvm_device_new_balloon (void)
{
  return device_new (UVM_DEVICE_BALLOON);
}

UvmDeviceKind
uvm_device_get_kind (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), UVM_DEVICE_NET);
  return device->kind;
}

void
uvm_device_set_id (UvmDevice *device, const char *id)
{
  g_return_if_fail (UVM_IS_DEVICE (device));
  g_free (device->id);
  device->id = g_strdup (id);
}

const char *
uvm_device_get_id (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), NULL);
  return device->id;
}

void
uvm_device_set_hotpluggable (UvmDevice *device, gboolean hotpluggable)
{
  g_return_if_fail (UVM_IS_DEVICE (device));
  device->hotpluggable = !!hotpluggable;
}

gboolean
uvm_device_get_hotpluggable (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), FALSE);
  return device->hotpluggable;
}

UvmNetwork *
uvm_device_get_network (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), NULL);
  return device->network;
}

UvmStorage *
uvm_device_get_storage (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), NULL);
  return device->storage;
}

const char *
uvm_device_get_mac (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), NULL);
  return device->mac;
}

const char *
uvm_device_get_log_path (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), NULL);
  return device->log_path;
}

/* A locally administered unicast MAC from a hash of both names: stable
 * across runs and hosts, distinct per (VM, network) pair, and never one a
 * vendor could have burnt into real hardware. */
char *
uvm_derive_mac (const char *vm_name, const char *network_name)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize len = sizeof digest;

  g_checksum_update (sum, (const guchar *) "uvm-mac\0", 8);
  g_checksum_update (sum, (const guchar *) vm_name, strlen (vm_name) + 1);
  g_checksum_update (sum, (const guchar *) network_name, strlen (network_name) + 1);
  g_checksum_get_digest (sum, digest, &len);
  digest[0] = (digest[0] & 0xfc) | 0x02;
  return g_strdup_printf ("%02x:%02x:%02x:%02x:%02x:%02x", digest[0], digest[1],
                          digest[2], digest[3], digest[4], digest[5]);
}

gboolean
uvm_mac_is_valid (const char *mac)
{
  guint first;

  if (strlen (mac) != 17)
    return FALSE;
  for (int i = 0; i < 17; i++)
    {
      if (i % 3 == 2 ? mac[i] != ':' : !g_ascii_isxdigit (mac[i]))
        return FALSE;
    }
  first = (g_ascii_xdigit_value (mac[0]) << 4) | g_ascii_xdigit_value (mac[1]);
  return (first & 0x01) == 0;  /* multicast addresses cannot name a NIC */
}

gboolean
uvm_device_claim (UvmDevice *device, const char *vm_name, UvmHypervisor hypervisor,
                  const char *default_id)
{
  if (device->claimed)
    return FALSE;
  device->claimed = TRUE;
  if (device->id == NULL)
    device->id = g_strdup (default_id);
  if (device->kind == UVM_DEVICE_NET)
    {
      /* A network's members are the interfaces of VMs, not every device
       * object ever made for it. */
      uvm_network_add_member (device->network, device, hypervisor);
      if (device->mac == NULL)
        device->mac = uvm_derive_mac (vm_name, uvm_network_get_name (device->network));
    }
  return TRUE;
}

void
uvm_device_set_tap_name (UvmDevice *device, const char *tap_name)
{
  g_return_if_fail (UVM_IS_DEVICE (device));
  g_free (device->tap_name);
  device->tap_name = g_strdup (tap_name);
}

const char *
uvm_device_get_tap_name (UvmDevice *device)
{
  g_return_val_if_fail (UVM_IS_DEVICE (device), NULL);
  return device->tap_name;
}

gboolean
uvm_device_is_claimed (UvmDevice *device)
{
  return device->claimed;
}
