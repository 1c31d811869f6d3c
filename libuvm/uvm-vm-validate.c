/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* From a definition to a launch plan: the checks of a definition (all of
 * them, in one place), the frozen description (plan/uvm-desc.h) a backend
 * plans from, and the plan itself. */
#include "uvm-vm-private.h"

#include <errno.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

gboolean
uvm_vm_check_gateway (UvmVm *self, GError **error)
{
  UvmVm *gw = self->gateway;
  gboolean has_link = FALSE;
  UvmVmState state;

  if (gw == NULL)
    return TRUE;
  state = uvm_vm_get_state (gw);
  if (!uvm_vm_is_active (gw) || (state != UVM_VM_STATE_RUNNING && state != UVM_VM_STATE_PAUSED))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "workstation '%s': its gateway '%s' is %s, not running; start the "
                          "gateway first", self->name, gw->name, uvm_vm_state_to_string (state));
  /* Every NIC of the workstation must be on an isolated network its
   * gateway is on: the gateway is its only way out, so a second NIC (an
   * uplink, a tap, another link) would be a leak. */
  for (guint i = 0; i < self->devices->len; i++)
    {
      UvmDevice *dev = g_ptr_array_index (self->devices, i);
      UvmNetwork *net = uvm_device_get_network (dev);
      gboolean shared = FALSE;

      if (net == NULL)
        continue;
      for (guint j = 0; j < gw->devices->len && uvm_network_get_kind (net) == UVM_NETWORK_ISOLATED; j++)
        if (uvm_device_get_network (g_ptr_array_index (gw->devices, j)) == net)
          shared = TRUE;
      if (!shared)
        {
          g_autofree char *field = uvm_vm_describe_device (self, dev);
          return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                                "workstation '%s': %s is on network '%s', which is not an isolated "
                                "network shared with its gateway '%s'; a workstation reaches the "
                                "network only through its gateway", self->name, field,
                                uvm_network_get_name (net), gw->name);
        }
      has_link = TRUE;
    }
  if (!has_link)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "workstation '%s' shares no isolated network with its gateway '%s'",
                          self->name, gw->name);
  return TRUE;
}

/* ---- Checks of the definition --------------------------------------- */

static gboolean
require (const UvmBackend *backend, UvmFeature feature, const char *field, GError **error)
{
  static const char *const phrase[] = {
    [UVM_FEATURE_MACHINE_Q35] = "the q35 machine type (a qemu machine)",
    [UVM_FEATURE_MACHINE_PC] = "the pc machine type (a qemu machine)",
    [UVM_FEATURE_MACHINE_MICROVM] = "the microvm machine type (a qemu machine)",
    [UVM_FEATURE_SOFTWARE_EMULATION] = "software emulation (TCG); it needs KVM",
    [UVM_FEATURE_USER_NETWORK] = "user-mode networking; use a tap network",
    [UVM_FEATURE_SOCKET_LINK] = "socket-pair links (no socket netdev); use a tap network",
    [UVM_FEATURE_TAP_NETWORK] = "tap networks",
    [UVM_FEATURE_BRIDGE_LINK] = "isolated networks on a bridge of library-created taps",
    [UVM_FEATURE_QCOW2] = "qcow2 images",
    [UVM_FEATURE_BALLOON] = "a memory balloon",
    [UVM_FEATURE_HOTPLUG] = "hotpluggable devices",
    [UVM_FEATURE_PASST_UPLINK] = "passt uplinks (no stream netdev)",
    [UVM_FEATURE_TAP_NAT_UPLINK] = "uplinks through a library-made tap with NAT",
    [UVM_FEATURE_HOST_BRIDGE] = "taps on an existing host bridge",
    [UVM_FEATURE_FIRMWARE_BOOT] = "booting a disk through firmware; set a kernel",
  };

  if (uvm_backend_supports (backend, feature))
    return TRUE;
  return uvm_set_error (error, UVM_ERROR_UNSUPPORTED, "%s: %s does not support %s", field,
                        backend->name, (guint) feature < G_N_ELEMENTS (phrase) && phrase[feature]
                                         ? phrase[feature] : "this feature");
}

/* That the backend has every feature @desc uses. */
static gboolean
check_features (const UvmDesc *desc, const UvmBackend *backend, GError **error)
{
  static const UvmFeature machine_feature[] = {
    [UVM_MACHINE_Q35] = UVM_FEATURE_MACHINE_Q35,
    [UVM_MACHINE_PC] = UVM_FEATURE_MACHINE_PC,
    [UVM_MACHINE_MICROVM] = UVM_FEATURE_MACHINE_MICROVM,
  };
  static const UvmFeature nic_feature[] = {
    [UVM_DESC_NIC_LINK] = UVM_FEATURE_SOCKET_LINK,
    [UVM_DESC_NIC_TAP] = UVM_FEATURE_TAP_NETWORK,
    [UVM_DESC_NIC_USER] = UVM_FEATURE_USER_NETWORK,
    [UVM_DESC_NIC_PASST] = UVM_FEATURE_PASST_UPLINK,
  };
  static const UvmFeature lib_tap_feature[] = {
    [UVM_NETWORK_ISOLATED] = UVM_FEATURE_BRIDGE_LINK,
    [UVM_NETWORK_UPLINK] = UVM_FEATURE_TAP_NAT_UPLINK,
    [UVM_NETWORK_BRIDGE] = UVM_FEATURE_HOST_BRIDGE,
  };

  if (desc->machine != UVM_MACHINE_DEFAULT && (guint) desc->machine < G_N_ELEMENTS (machine_feature) &&
      !require (backend, machine_feature[desc->machine], "machine", error))
    return FALSE;
  if (desc->accel == UVM_ACCEL_TCG &&
      !require (backend, UVM_FEATURE_SOFTWARE_EMULATION, "accel", error))
    return FALSE;
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);

      if (dev->hotpluggable && !require (backend, UVM_FEATURE_HOTPLUG, dev->field, error))
        return FALSE;
      switch (dev->kind)
        {
        case UVM_DEVICE_NET:
          {
            UvmDevice *object = dev->object;
            UvmNetworkKind kind = uvm_network_get_kind (uvm_device_get_network (object));
            UvmFeature feature = dev->nic == UVM_DESC_NIC_LIB_TAP ? lib_tap_feature[kind]
                                 : nic_feature[dev->nic];

            if (!require (backend, feature, dev->field, error))
              return FALSE;
          }
          break;
        case UVM_DEVICE_DISK:
          if (dev->format == UVM_STORAGE_FORMAT_QCOW2 &&
              !require (backend, UVM_FEATURE_QCOW2, dev->field, error))
            return FALSE;
          break;
        case UVM_DEVICE_BALLOON:
          if (!require (backend, UVM_FEATURE_BALLOON, dev->field, error))
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
check_devices (UvmVm *vm, GError **error)
{
  g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  guint n_consoles = 0, n_balloons = 0;

  for (guint i = 0; i < vm->devices->len; i++)
    {
      UvmDevice *dev = g_ptr_array_index (vm->devices, i);
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
          if (!uvm_network_check_device (uvm_device_get_network (dev), uvm_device_get_tap_name (dev),
                                         field, error))
            return FALSE;
          if (!uvm_mac_is_valid (uvm_device_get_mac (dev)))
            return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                                  "%s: '%s' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)",
                                  field, uvm_device_get_mac (dev));
          break;
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

/* No kernel: the payload is the first disk, booted by the hypervisor's
 * firmware (SeaBIOS on qemu).  The setters keep initramfs and cmdline with
 * a kernel only; refuse them here anyway so a payload is never half-used. */
static gboolean
check_firmware_boot (UvmVm *vm, const UvmBackend *backend, GError **error)
{
  gboolean has_disk = FALSE;

  for (guint i = 0; i < vm->devices->len; i++)
    if (uvm_device_get_kind (g_ptr_array_index (vm->devices, i)) == UVM_DEVICE_DISK)
      has_disk = TRUE;
  if (vm->initramfs != NULL || vm->cmdline != NULL)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "kernel: an initramfs or a command line needs a kernel; set one "
                          "with uvm_vm_set_kernel()");
  if (!has_disk)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "kernel: no payload; set a kernel with uvm_vm_set_kernel() or add a "
                          "disk for the firmware to boot");
  if (!require (backend, UVM_FEATURE_FIRMWARE_BOOT, "kernel", error))
    return FALSE;
  /* Our microvm has no firmware that boots disks (qboot, no option ROMs). */
  if (vm->machine == UVM_MACHINE_MICROVM)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "kernel: the microvm machine type boots a kernel only, not a disk "
                          "through firmware; set a kernel or use the q35 or pc machine type");
  return TRUE;
}

/* The checks that need no backend knowledge beyond its features. */
static gboolean
check_common (UvmVm *vm, const UvmBackend *backend, GError **error)
{
  struct sockaddr_un sun;

  if (!name_is_valid (vm->name))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "name: '%s' must be 1-%d letters, digits, '.', '_' or '-', "
                          "not starting with '.' or '-'", vm->name, UVM_VM_NAME_MAX);
  if (vm->vcpus < 1 || vm->vcpus > UVM_VM_MAX_VCPUS)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "vcpus: %u is out of range (1-%d)", vm->vcpus, UVM_VM_MAX_VCPUS);
  if (vm->memory < UVM_VM_MIN_MEMORY)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "memory: %" G_GUINT64_FORMAT " bytes is less than the minimum of %"
                          G_GUINT64_FORMAT " MiB", vm->memory, UVM_VM_MIN_MEMORY / UVM_MIB);
  if (vm->memory % UVM_MIB != 0)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "memory: %" G_GUINT64_FORMAT " bytes is not a whole number of MiB",
                          vm->memory);
  if (vm->kernel == NULL && !check_firmware_boot (vm, backend, error))
    return FALSE;
  if (vm->kernel != NULL && !check_readable_file ("kernel", vm->kernel, error))
    return FALSE;
  if (vm->initramfs != NULL && !check_readable_file ("initramfs", vm->initramfs, error))
    return FALSE;
  if (strlen (vm->control_path) >= sizeof sun.sun_path)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "runtime-dir: control socket path '%s' is longer than a unix socket "
                          "address allows (%zu bytes); use a shorter name or runtime directory",
                          vm->control_path, sizeof sun.sun_path - 1);
  if (vm->log_dir != NULL && !g_file_test (vm->log_dir, G_FILE_TEST_IS_DIR))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "log-dir: '%s' is not an existing directory", vm->log_dir);
  return check_devices (vm, error);
}

/* What confinement rules out: a network stack inside the hypervisor that
 * needs host sockets (qemu's user-mode networking, slirp).  A passt uplink
 * is fine: passt, not confined, holds the host sockets and the hypervisor
 * only its end of a socket pair; so is a tap the library makes. */
static gboolean
check_confinement (const UvmDesc *desc, GError **error)
{
  if (!desc->confined)
    return TRUE;
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      const UvmDescDevice *dev = uvm_desc_get_device (desc, i);

      if (dev->kind == UVM_DEVICE_NET && dev->nic == UVM_DESC_NIC_USER)
        return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                              "%s: uplink '%s' is qemu user-mode networking, which needs host "
                              "sockets; a confined VM has none (empty network namespace, no "
                              "inet sockets). Reach the outside through a gateway VM on an "
                              "isolated network, or do not confine this VM",
                              dev->field, dev->network);
    }
  return TRUE;
}

/* ---- The description -------------------------------------------------- */

/* How @dev's NIC reaches @net on a VM of @hypervisor. */
static UvmDescNic
nic_mode (UvmNetwork *net, UvmHypervisor hypervisor)
{
  if (uvm_network_uses_lib_tap (net, hypervisor))
    return UVM_DESC_NIC_LIB_TAP;
  switch (uvm_network_get_kind (net))
    {
    case UVM_NETWORK_TAP:
      return UVM_DESC_NIC_TAP;
    case UVM_NETWORK_UPLINK:
      return uvm_network_effective_uplink_mode (net, hypervisor) == UVM_UPLINK_PASST
               ? UVM_DESC_NIC_PASST : UVM_DESC_NIC_USER;
    default:
      return UVM_DESC_NIC_LINK;
    }
}

/* What the launch plan says of the tap the library makes for @dev. */
static char *
lib_tap_description (UvmVm *vm, const UvmDescDevice *dev, UvmNetwork *net)
{
  const char *port = vm->gateway != NULL ? "isolated port (workstation)" : "open port";

  switch (uvm_network_get_kind (net))
    {
    case UVM_NETWORK_BRIDGE:
      return g_strdup_printf ("%s: tap '%s' (created by the library, IFF_VNET_HDR) on the host "
                              "bridge '%s' of network '%s', %s", dev->id, dev->tap,
                              uvm_network_get_host_bridge (net), dev->network, port);
    case UVM_NETWORK_UPLINK:
      {
        g_autofree char *table = uvm_network_nat_table_name (dev->tap);
        return g_strdup_printf ("%s: tap '%s' (created by the library, IFF_VNET_HDR) of the uplink "
                                "'%s': host side " UVM_TAP_NAT_HOST_CIDR ", forwarding on this tap, "
                                "nftables table 'ip %s' masquerading " UVM_TAP_NAT_SUBNET,
                                dev->id, dev->tap, dev->network, table);
      }
    default:
      {
        g_autofree char *bridge = uvm_network_bridge_name (net);
        return g_strdup_printf ("%s: tap '%s' (created by the library, IFF_VNET_HDR) on bridge '%s' "
                                "of the isolated network '%s' (bridge: more than two members or a "
                                "member whose hypervisor has no socket-pair links; no host "
                                "address), %s", dev->id, dev->tap, bridge, dev->network, port);
      }
    }
}

/* Freezes the checked definition of @vm: every later step reads this. */
static UvmDesc *
describe (UvmVm *vm, const UvmBackend *backend)
{
  UvmDesc *desc = uvm_desc_new ();
  const UvmDescDevice *first_disk;

  desc->name = g_strdup (vm->name);
  desc->hypervisor = vm->hypervisor;
  desc->machine = vm->machine;
  desc->accel = vm->accel;
  desc->kernel = g_strdup (vm->kernel);
  desc->initramfs = g_strdup (vm->initramfs);
  desc->cmdline = g_strdup (vm->cmdline);
  desc->vcpus = vm->vcpus;
  desc->memory = vm->memory;
  desc->extra_args = g_strdupv (vm->extra_args);
  desc->binary = g_strdup (uvm_vm_get_hypervisor_path (vm));
  desc->runtime_dir = g_strdup (vm->effective_dir);
  desc->control_path = g_strdup (vm->control_path);
  desc->log_path = g_strdup (vm->log_path);
  desc->console_path = g_strdup (uvm_vm_get_console_path (vm));
  if (desc->console_path != NULL)
    desc->console_socket_path = g_strdup (vm->console_socket_path);
  desc->start_paused = vm->start_paused;
  desc->confined = vm->confined;
  desc->workstation = vm->gateway != NULL;
  desc->detached = vm->lifetime == UVM_VM_LIFETIME_DETACHED;
  desc->uid = vm->user_uid;
  desc->gid = vm->user_gid;
  for (guint i = 0; i < vm->devices->len; i++)
    {
      UvmDevice *object = g_ptr_array_index (vm->devices, i);
      g_autofree char *field = uvm_vm_describe_device (vm, object);
      UvmDescDevice *dev = uvm_desc_add_device (desc, uvm_device_get_kind (object),
                                                uvm_device_get_id (object), field, object);
      UvmNetwork *net = uvm_device_get_network (object);
      UvmStorage *storage = uvm_device_get_storage (object);

      dev->hotpluggable = uvm_device_get_hotpluggable (object);
      if (dev->kind == UVM_DEVICE_NET)
        {
          dev->mac = g_strdup (uvm_device_get_mac (object));
          dev->network = g_strdup (uvm_network_get_name (net));
          dev->nic = nic_mode (net, vm->hypervisor);
          if (dev->nic == UVM_DESC_NIC_LIB_TAP)
            {
              dev->tap = uvm_network_member_tap_name (net, uvm_device_get_tap_name (object),
                                                      vm->name);
              dev->tap_what = lib_tap_description (vm, dev, net);
            }
          else if (dev->nic == UVM_DESC_NIC_TAP)
            dev->tap = g_strdup (uvm_network_get_tap_name (net));
        }
      else if (dev->kind == UVM_DEVICE_DISK)
        {
          dev->path = g_strdup (uvm_storage_get_path (storage));
          dev->read_only = uvm_storage_get_read_only (storage);
          dev->format = uvm_storage_get_format (storage);
        }
    }
  /* Without a kernel the firmware boots the first disk. */
  first_disk = uvm_desc_find_kind (desc, UVM_DEVICE_DISK);
  if (desc->kernel == NULL && first_disk != NULL)
    ((UvmDescDevice *) first_disk)->boot = TRUE;
  return desc;
}

/* ---- Plan ------------------------------------------------------------- */

UvmPlan *
uvm_vm_build_plan (UvmVm *vm, const UvmBackend **backend_out, GError **error)
{
  g_autoptr(UvmDesc) desc = NULL;
  const UvmBackend *backend;

  if (vm->definition_error != NULL)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "%s", vm->definition_error), NULL;
  if (!uvm_vm_check_gateway_relation (vm, error))
    return NULL;
  backend = uvm_backend_lookup (vm->hypervisor, error);
  if (backend == NULL || !check_common (vm, backend, error))
    return NULL;
  desc = describe (vm, backend);
  if (!check_features (desc, backend, error) || !backend->validate (desc, error) ||
      !check_confinement (desc, error))
    return NULL;
  if (backend_out != NULL)
    *backend_out = backend;
  return backend->build_plan (desc, error);
}

char *
uvm_vm_resolve_binary (const UvmPlan *plan, GError **error)
{
  const char *bin = plan->binary;
  char *path;

  if (strchr (bin, '/') != NULL)
    {
      if (access (bin, X_OK) == 0 && g_file_test (bin, G_FILE_TEST_IS_REGULAR))
        return uvm_absolute_path (bin);
      uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                     "hypervisor-path: '%s' is not an executable file", bin);
      return NULL;
    }
  path = g_find_program_in_path (bin);
  if (path == NULL)
    uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                   "hypervisor-path: '%s' was not found in PATH (is the hypervisor installed?)",
                   bin);
  return path;
}

GStrv
uvm_vm_resolve_helpers (const UvmPlan *plan, GError **error)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < plan->helpers->len; i++)
    {
      const UvmPlanHelper *helper = g_ptr_array_index (plan->helpers, i);
      char *path;

      /* Ours, in libexecdir (or where the build tree says), not in PATH. */
      if (g_str_equal (helper->binary, "uvm-console-relay"))
        {
          const char *relay = g_getenv ("UVM_CONSOLE_RELAY");

          if (relay == NULL || relay[0] == '\0')
            relay = UVM_CONSOLE_RELAY_PATH;
          if (!g_file_test (relay, G_FILE_TEST_IS_EXECUTABLE))
            {
              uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                             "%s: the console relay '%s' is missing or not executable (is "
                             "libuvm installed completely? UVM_CONSOLE_RELAY may name another)",
                             helper->device->field, relay);
              return NULL;
            }
          g_ptr_array_add (paths, g_strdup (relay));
          continue;
        }
      path = g_find_program_in_path (helper->binary);
      if (path == NULL)
        {
          uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                         "%s: the uplink '%s' runs '%s', which was not found in PATH (install "
                         "%s, or choose another uplink mode)", helper->device->field,
                         helper->device->network, helper->binary, helper->binary);
          return NULL;
        }
      g_ptr_array_add (paths, path);
    }
  g_ptr_array_add (paths, NULL);
  return (GStrv) g_ptr_array_free (g_steal_pointer (&paths), FALSE);
}

gboolean
uvm_vm_validate (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = NULL;
  g_autofree char *bin = NULL;
  g_auto(GStrv) helpers = NULL;

  g_return_val_if_fail (UVM_IS_VM (vm), FALSE);
  plan = uvm_vm_build_plan (vm, NULL, error);
  if (plan == NULL)
    return FALSE;
  bin = uvm_vm_resolve_binary (plan, error);
  if (bin != NULL)
    helpers = uvm_vm_resolve_helpers (plan, error);
  return helpers != NULL;
}

char *
uvm_vm_get_command_line (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = NULL;

  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  plan = uvm_vm_build_plan (vm, NULL, error);
  return plan ? uvm_plan_to_command_line (plan) : NULL;
}

char *
uvm_vm_get_launch_plan (UvmVm *vm, GError **error)
{
  g_autoptr(UvmPlan) plan = NULL;

  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  plan = uvm_vm_build_plan (vm, NULL, error);
  return plan ? uvm_plan_to_script (plan) : NULL;
}
