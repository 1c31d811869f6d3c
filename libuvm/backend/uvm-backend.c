/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backend/uvm-backend.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

const UvmBackend *
uvm_backend_lookup (UvmHypervisor hypervisor, GError **error)
{
  switch (hypervisor)
    {
    case UVM_HYPERVISOR_QEMU:
      return &uvm_backend_qemu;
    case UVM_HYPERVISOR_CLOUD_HYPERVISOR:
      return &uvm_backend_cloud_hypervisor;
    default:
      uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                     "hypervisor: unknown hypervisor %d", (int) hypervisor);
      return NULL;
    }
}

gboolean
uvm_backend_supports (const UvmBackend *backend, UvmFeature feature)
{
  return (guint) feature < 64 && (backend->features & UVM_FEATURE_BIT (feature)) != 0;
}

char *
uvm_lib_tap_description (UvmVm *vm, UvmDevice *dev)
{
  UvmNetwork *net = uvm_device_get_network (dev);
  g_autofree char *tap = uvm_network_member_tap_name (net, dev, uvm_vm_get_name (vm));
  const char *port = uvm_vm_get_gateway (vm) != NULL ? "isolated port (workstation)" : "open port";

  switch (uvm_network_get_kind (net))
    {
    case UVM_NETWORK_BRIDGE:
      return g_strdup_printf ("%s: tap '%s' (created by the library, IFF_VNET_HDR) on the host "
                              "bridge '%s' of network '%s', %s", uvm_device_get_id (dev), tap,
                              uvm_network_get_host_bridge (net), uvm_network_get_name (net), port);
    case UVM_NETWORK_UPLINK:
      {
        g_autofree char *table = uvm_network_nat_table_name (tap);
        return g_strdup_printf ("%s: tap '%s' (created by the library, IFF_VNET_HDR) of the uplink "
                                "'%s': host side " UVM_TAP_NAT_HOST_CIDR ", forwarding on this tap, "
                                "nftables table 'ip %s' masquerading " UVM_TAP_NAT_SUBNET,
                                uvm_device_get_id (dev), tap, uvm_network_get_name (net), table);
      }
    default:
      {
        g_autofree char *bridge = uvm_network_bridge_name (net);
        return g_strdup_printf ("%s: tap '%s' (created by the library, IFF_VNET_HDR) on bridge '%s' "
                                "of the isolated network '%s' (bridge: more than two members or a "
                                "cloud-hypervisor member; no host address), %s",
                                uvm_device_get_id (dev), tap, bridge, uvm_network_get_name (net),
                                port);
      }
    }
}

/* What each feature is called in "<backend> does not support ..." errors. */
static const char *
feature_phrase (UvmFeature feature)
{
  switch (feature)
    {
    case UVM_FEATURE_MACHINE_Q35: return "the q35 machine type (a qemu machine)";
    case UVM_FEATURE_MACHINE_PC: return "the pc machine type (a qemu machine)";
    case UVM_FEATURE_MACHINE_MICROVM: return "the microvm machine type (a qemu machine)";
    case UVM_FEATURE_SOFTWARE_EMULATION: return "software emulation (TCG); it needs KVM";
    case UVM_FEATURE_USER_NETWORK: return "user-mode networking; use a tap network";
    case UVM_FEATURE_SOCKET_LINK: return "socket-pair links (no socket netdev); use a tap network";
    case UVM_FEATURE_TAP_NETWORK: return "tap networks";
    case UVM_FEATURE_BRIDGE_LINK: return "isolated networks on a bridge of library-created taps";
    case UVM_FEATURE_QCOW2: return "qcow2 images";
    case UVM_FEATURE_BALLOON: return "a memory balloon";
    case UVM_FEATURE_HOTPLUG: return "hotpluggable devices";
    case UVM_FEATURE_PASST_UPLINK: return "passt uplinks (no stream netdev)";
    case UVM_FEATURE_TAP_NAT_UPLINK: return "uplinks through a library-made tap with NAT";
    case UVM_FEATURE_HOST_BRIDGE: return "taps on an existing host bridge";
    case UVM_FEATURE_FIRMWARE_BOOT: return "booting a disk through firmware; set a kernel";
    default: return "this feature";
    }
}

static gboolean
require (const UvmBackend *backend, UvmFeature feature, const char *field, GError **error)
{
  if (uvm_backend_supports (backend, feature))
    return TRUE;
  return uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "%s: %s does not support %s", field,
                        backend->name, feature_phrase (feature));
}

static gboolean
check_features (UvmVm *vm, const UvmBackend *backend, GError **error)
{
  static const UvmFeature machine_feature[] = {
    [UVM_MACHINE_Q35] = UVM_FEATURE_MACHINE_Q35,
    [UVM_MACHINE_PC] = UVM_FEATURE_MACHINE_PC,
    [UVM_MACHINE_MICROVM] = UVM_FEATURE_MACHINE_MICROVM,
  };
  UvmMachine machine = uvm_vm_get_machine (vm);

  if (machine != UVM_MACHINE_DEFAULT && (guint) machine < G_N_ELEMENTS (machine_feature) &&
      !require (backend, machine_feature[machine], "machine", error))
    return FALSE;
  if (uvm_vm_get_accel (vm) == UVM_ACCEL_TCG &&
      !require (backend, UVM_FEATURE_SOFTWARE_EMULATION, "accel", error))
    return FALSE;
  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    {
      UvmDevice *dev = uvm_vm_get_device (vm, i);
      g_autofree char *field = uvm_vm_describe_device (vm, dev);
      static const UvmFeature net_feature[] = {
        [UVM_NETWORK_ISOLATED] = UVM_FEATURE_SOCKET_LINK,
        [UVM_NETWORK_UPLINK] = UVM_FEATURE_USER_NETWORK,
        [UVM_NETWORK_TAP] = UVM_FEATURE_TAP_NETWORK,
        [UVM_NETWORK_BRIDGE] = UVM_FEATURE_HOST_BRIDGE,
      };
      static const UvmFeature uplink_feature[] = {
        [UVM_UPLINK_USER] = UVM_FEATURE_USER_NETWORK,
        [UVM_UPLINK_PASST] = UVM_FEATURE_PASST_UPLINK,
        [UVM_UPLINK_TAP_NAT] = UVM_FEATURE_TAP_NAT_UPLINK,
      };

      if (uvm_device_get_hotpluggable (dev) && !require (backend, UVM_FEATURE_HOTPLUG, field, error))
        return FALSE;
      switch (uvm_device_get_kind (dev))
        {
        case UVM_DEVICE_NET:
          {
            UvmNetwork *net = uvm_device_get_network (dev);
            UvmFeature feature = uvm_network_uses_bridge (net) ? UVM_FEATURE_BRIDGE_LINK
                                 : net_feature[uvm_network_get_kind (net)];

            if (uvm_network_get_kind (net) == UVM_NETWORK_UPLINK)
              feature = uplink_feature[uvm_network_effective_uplink_mode (net, uvm_vm_get_hypervisor (vm))];
            if (!require (backend, feature, field, error))
              return FALSE;
          }
          break;
        case UVM_DEVICE_DISK:
          if (uvm_storage_get_format (uvm_device_get_storage (dev)) == UVM_STORAGE_FORMAT_QCOW2 &&
              !require (backend, UVM_FEATURE_QCOW2, field, error))
            return FALSE;
          break;
        case UVM_DEVICE_BALLOON:
          if (!require (backend, UVM_FEATURE_BALLOON, field, error))
            return FALSE;
          break;
        default:
          break;
        }
    }
  return TRUE;
}

static gboolean
name_is_valid (const char *name)
{
  gsize len = strlen (name);

  if (len == 0 || len > UVM_VM_NAME_MAX || name[0] == '.' || name[0] == '-')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("._-", *p) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
id_is_valid (const char *id)
{
  gsize len = strlen (id);

  if (len == 0 || len > 31 || !g_ascii_isalpha (id[0]))
    return FALSE;
  for (const char *p = id; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  return TRUE;
}

static gboolean
check_readable_file (const char *field, const char *path, GError **error)
{
  if (access (path, R_OK) != 0)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "%s: '%s' is not readable: %s",
                          field, path, g_strerror (errno));
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "%s: '%s' is not a regular file",
                          field, path);
  return TRUE;
}

static gboolean
validate_devices (UvmVm *vm, GError **error)
{
  g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  guint n_consoles = 0, n_balloons = 0;

  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    {
      UvmDevice *dev = uvm_vm_get_device (vm, i);
      const char *id = uvm_device_get_id (dev);
      g_autofree char *field = uvm_vm_describe_device (vm, dev);

      if (!id_is_valid (id))
        return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                              "%s: id must be 1-31 letters, digits, '-' or '_', starting with a letter",
                              field);
      if (!g_hash_table_add (ids, (gpointer) id))
        return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                              "%s: duplicate device id '%s'", field, id);
      switch (uvm_device_get_kind (dev))
        {
        case UVM_DEVICE_NET:
          {
            UvmNetwork *net = uvm_device_get_network (dev);
            if (!uvm_network_check_device (net, dev, field, error))
              return FALSE;
            if (!uvm_mac_is_valid (uvm_device_get_mac (dev)))
              return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                                    "%s: '%s' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)",
                                    field, uvm_device_get_mac (dev));
            break;
          }
        case UVM_DEVICE_DISK:
          if (!uvm_storage_check (uvm_device_get_storage (dev), field, error))
            return FALSE;
          break;
        case UVM_DEVICE_CONSOLE:
          if (++n_consoles > 1)
            return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                                  "%s: a VM has at most one console device", field);
          break;
        case UVM_DEVICE_RNG:
          break;
        case UVM_DEVICE_BALLOON:
          if (++n_balloons > 1)
            return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                                  "%s: a VM has at most one balloon device", field);
          break;
        }
    }
  return TRUE;
}

static gboolean
has_disk (UvmVm *vm)
{
  for (guint i = 0; i < uvm_vm_get_n_devices (vm); i++)
    if (uvm_device_get_kind (uvm_vm_get_device (vm, i)) == UVM_DEVICE_DISK)
      return TRUE;
  return FALSE;
}

/* No kernel: the payload is the first disk, booted by the hypervisor's
 * firmware (SeaBIOS on qemu).  The setters keep initramfs and cmdline with
 * a kernel only; refuse them here anyway so a payload is never half-used. */
static gboolean
check_firmware_boot (UvmVm *vm, const UvmBackend *backend, GError **error)
{
  if (uvm_vm_get_initramfs (vm) != NULL || uvm_vm_get_cmdline (vm) != NULL)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "kernel: an initramfs or a command line needs a kernel; set one "
                          "with uvm_vm_set_kernel()");
  if (!has_disk (vm))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "kernel: no payload; set a kernel with uvm_vm_set_kernel() or add a "
                          "disk for the firmware to boot");
  if (!require (backend, UVM_FEATURE_FIRMWARE_BOOT, "kernel", error))
    return FALSE;
  /* Our microvm has no firmware that boots disks (qboot, no option ROMs). */
  if (uvm_vm_get_machine (vm) == UVM_MACHINE_MICROVM)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "kernel: the microvm machine type boots a kernel only, not a disk "
                          "through firmware; set a kernel or use the q35 or pc machine type");
  return TRUE;
}

gboolean
uvm_backend_validate_common (UvmVm *vm, const UvmBackend *backend, GError **error)
{
  const char *name = uvm_vm_get_name (vm);
  const char *kernel = uvm_vm_get_kernel (vm);
  const char *initramfs = uvm_vm_get_initramfs (vm);
  guint64 memory = uvm_vm_get_memory (vm);
  guint vcpus = uvm_vm_get_vcpus (vm);
  struct sockaddr_un sun;

  if (!name_is_valid (name))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "name: '%s' must be 1-%d letters, digits, '.', '_' or '-', "
                          "not starting with '.' or '-'", name, UVM_VM_NAME_MAX);
  if (vcpus < 1 || vcpus > UVM_VM_MAX_VCPUS)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "vcpus: %u is out of range (1-%d)", vcpus, UVM_VM_MAX_VCPUS);
  if (memory < UVM_VM_MIN_MEMORY)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "memory: %" G_GUINT64_FORMAT " bytes is less than the minimum of %"
                          G_GUINT64_FORMAT " MiB", memory, UVM_VM_MIN_MEMORY / UVM_MIB);
  if (memory % UVM_MIB != 0)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "memory: %" G_GUINT64_FORMAT " bytes is not a whole number of MiB",
                          memory);
  if (kernel == NULL && !check_firmware_boot (vm, backend, error))
    return FALSE;
  if (kernel != NULL && !check_readable_file ("kernel", kernel, error))
    return FALSE;
  if (initramfs != NULL && !check_readable_file ("initramfs", initramfs, error))
    return FALSE;
  if (strlen (uvm_vm_get_control_path (vm)) >= sizeof sun.sun_path)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "runtime-dir: control socket path '%s' is longer than a unix socket "
                          "address allows (%zu bytes); use a shorter name or runtime directory",
                          uvm_vm_get_control_path (vm), sizeof sun.sun_path - 1);
  return validate_devices (vm, error) && check_features (vm, backend, error);
}
