/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Definition documents: JSON text <-> UvmVm, UvmDevice, UvmNetwork and
 * UvmStorage, through their public setters and getters (and the two
 * fields whose getters answer with a default: the hypervisor path and the
 * runtime directory as set).  The schema is docs/definition-schema.md; a
 * change here is a change there.  Nothing here checks what validation
 * checks: a document is refused only for its shape and its references.
 *
 * Over 900 lines on purpose: reading and writing are two halves of one
 * schema, and a member's reader and writer kept in one file (with the
 * member lists and the size units they share) is how they stay in step. */
#include "uvm-vm-private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- errors and paths ---------------------------------------------- */

static gboolean G_GNUC_PRINTF (3, 4)
fail (GError **error, const char *path, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION, "%s: %s", path, message);
  return FALSE;
}

static char *
member_path (const char *parent, const char *member)
{
  return parent[0] != '\0' ? g_strdup_printf ("%s.%s", parent, member) : g_strdup (member);
}

static char *
index_path (const char *parent, guint index)
{
  return g_strdup_printf ("%s[%u]", parent, index);
}

static const char *
node_type_name (JsonNode *node)
{
  if (JSON_NODE_HOLDS_NULL (node))
    return "null";
  if (JSON_NODE_HOLDS_OBJECT (node))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY (node))
    return "an array";
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_STRING: return "a string";
    case G_TYPE_BOOLEAN: return "a boolean";
    case G_TYPE_DOUBLE: return "a fractional number";
    default: return "a number";
    }
}

/* ---- reading members -------------------------------------------------- */

/* Every member of @object must be in @known (NULL-terminated). */
static gboolean
check_members (JsonObject *object, const char *path, const char *const *known,
               const char *what, GError **error)
{
  g_autoptr(GList) members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains (known, l->data))
      {
        g_autofree char *mpath = member_path (path, l->data);
        g_autofree char *list = g_strjoinv (", ", (char **) known);

        return fail (error, mpath, "unknown member; %s has: %s", what, list);
      }
  return TRUE;
}

static JsonObject *
expect_object (JsonNode *node, const char *path, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      fail (error, path, "expected an object, got %s", node_type_name (node));
      return NULL;
    }
  return json_node_get_object (node);
}

static JsonArray *
get_array (JsonObject *object, const char *parent, const char *member, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autofree char *path = member_path (parent, member);

  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      fail (error, path, "expected an array, got %s", node_type_name (node));
      return NULL;
    }
  return json_node_get_array (node);
}

/* *@out is left alone when the member is absent; FALSE only on error. */
static gboolean
get_string (JsonObject *object, const char *parent, const char *member, const char **out,
            GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autofree char *path = NULL;

  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      *out = json_node_get_string (node);
      return TRUE;
    }
  path = member_path (parent, member);
  return fail (error, path, "expected a string, got %s", node_type_name (node));
}

static gboolean
require_string (JsonObject *object, const char *parent, const char *member, const char *what,
                const char **out, GError **error)
{
  if (!json_object_has_member (object, member))
    {
      g_autofree char *path = member_path (parent, member);

      return fail (error, path, "missing; %s needs it", what);
    }
  return get_string (object, parent, member, out, error);
}

static gboolean
get_bool (JsonObject *object, const char *parent, const char *member, gboolean *out,
          GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autofree char *path = NULL;

  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_BOOLEAN)
    {
      *out = json_node_get_boolean (node);
      return TRUE;
    }
  path = member_path (parent, member);
  return fail (error, path, "expected true or false, got %s", node_type_name (node));
}

/* A whole number in [0, max]. */
static gboolean
get_uint (JsonObject *object, const char *parent, const char *member, guint64 max,
          guint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autofree char *path = NULL;
  gint64 value;

  if (node == NULL)
    return TRUE;
  path = member_path (parent, member);
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return fail (error, path, "expected a whole number, got %s", node_type_name (node));
  value = json_node_get_int (node);
  if (value < 0 || (guint64) value > max)
    return fail (error, path, "%" G_GINT64_FORMAT " is out of range (0 to %" G_GUINT64_FORMAT ")",
                 value, max);
  *out = value;
  return TRUE;
}

static const struct {
  const char *suffix;
  guint64 factor;
} size_units[] = {
  { "TiB", UVM_GIB * 1024 }, { "GiB", UVM_GIB }, { "MiB", UVM_MIB }, { "KiB", UVM_KIB },
  { "T", UVM_GIB * 1024 }, { "G", UVM_GIB }, { "M", UVM_MIB }, { "K", UVM_KIB },
  { "B", 1 },
};

/* A size: a whole number of bytes, or a string "<digits><unit>" with a
 * binary unit (K = KiB = 1024 bytes, ...; B = bytes). */
static gboolean
get_size (JsonObject *object, const char *parent, const char *member, guint64 *out,
          GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autofree char *path = NULL;
  const char *text;
  const char *end;
  guint64 number;

  if (node == NULL)
    return TRUE;
  path = member_path (parent, member);
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
    return get_uint (object, parent, member, G_MAXINT64, out, error);
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return fail (error, path, "expected a size (a number of bytes or a string such as "
                 "\"512MiB\"), got %s", node_type_name (node));
  text = json_node_get_string (node);
  for (end = text; g_ascii_isdigit (*end); end++)
    ;
  if (end == text)
    return fail (error, path, "expected a size such as \"512MiB\" (digits, then one of "
                 "B, K, KiB, M, MiB, G, GiB, T, TiB), got '%s'", text);
  errno = 0;
  number = g_ascii_strtoull (text, NULL, 10);
  if (errno == ERANGE)
    return fail (error, path, "'%s' is too large", text);
  for (guint i = 0; i < G_N_ELEMENTS (size_units); i++)
    if (g_str_equal (end, size_units[i].suffix))
      {
        if (number > G_MAXUINT64 / size_units[i].factor)
          return fail (error, path, "'%s' is too large", text);
        *out = number * size_units[i].factor;
        return TRUE;
      }
  return fail (error, path, "expected a size such as \"512MiB\" (digits, then one of "
               "B, K, KiB, M, MiB, G, GiB, T, TiB), got '%s'", text);
}

/* An enum value by its nick (the names of docs/definition-schema.md are
 * the nicks glib-mkenums gives the public enums). */
static gboolean
get_enum (JsonObject *object, const char *parent, const char *member, GType type, int *out,
          GError **error)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  g_autofree char *path = NULL;
  const char *nick = NULL;
  GEnumValue *value;
  g_autoptr(GString) list = NULL;

  if (!get_string (object, parent, member, &nick, error))
    return FALSE;
  if (nick == NULL)
    return TRUE;
  value = g_enum_get_value_by_nick (klass, nick);
  if (value != NULL)
    {
      *out = value->value;
      return TRUE;
    }
  list = g_string_new (NULL);
  for (guint i = 0; i < klass->n_values; i++)
    g_string_append_printf (list, "%s%s", i ? ", " : "", klass->values[i].value_nick);
  path = member_path (parent, member);
  return fail (error, path, "'%s' is not one of %s", nick, list->str);
}

static const char *
enum_nick (GType type, int value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  /* The nicks are static strings of the registered type, which is never
   * unloaded. */
  return v != NULL ? v->value_nick : NULL;
}

/* "dynamic", "caller", "UID" or "UID:GID". */
static gboolean
get_user (JsonObject *object, const char *parent, guint32 *uid, guint32 *gid, GError **error)
{
  g_autofree char *path = member_path (parent, "user");
  const char *text = NULL;
  g_auto(GStrv) parts = NULL;
  guint64 ids[2];
  guint n;

  if (!get_string (object, parent, "user", &text, error))
    return FALSE;
  if (text == NULL)
    return TRUE;
  if (g_str_equal (text, "dynamic") || g_str_equal (text, "caller"))
    {
      *uid = *gid = g_str_equal (text, "dynamic") ? UVM_USER_DYNAMIC : UVM_USER_CALLER;
      return TRUE;
    }
  parts = g_strsplit (text, ":", 3);
  n = g_strv_length (parts);
  for (guint i = 0; i < n && n <= 2; i++)
    {
      /* The two highest values are UVM_USER_DYNAMIC and _CALLER, never ids. */
      if (!g_ascii_string_to_unsigned (parts[i], 10, 0, UVM_USER_CALLER - 1, &ids[i], NULL) ||
          !g_ascii_isdigit (parts[i][0]))
        n = 0;
    }
  if (n == 0 || n > 2)
    return fail (error, path, "expected \"dynamic\", \"caller\", \"UID\" or \"UID:GID\" "
                 "(decimal ids below %u), got '%s'", UVM_USER_CALLER, text);
  *uid = ids[0];
  *gid = n == 2 ? ids[1] : ids[0];
  return TRUE;
}

/* ---- reading a document ------------------------------------------------ */

static const char *const document_members[] = { "schema", "networks", "vms", NULL };
static const char *const network_members[] = {
  "name", "kind", "uplink_mode", "tap_name", "host_bridge", NULL
};
static const char *const vm_members[] = {
  "name", "hypervisor", "machine", "accel", "kernel", "initramfs", "cmdline", "vcpus",
  "memory", "extra_args", "hypervisor_path", "runtime_dir", "start_paused", "confined",
  "user", "control_timeout_ms", "gateway", "lifetime", "log_dir", "devices", NULL
};
static const char *const net_members[] = {
  "kind", "id", "hotpluggable", "network", "mac", "tap_name", NULL
};
static const char *const disk_members[] = {
  "kind", "id", "hotpluggable", "path", "format", "read_only", "create_size", NULL
};
static const char *const console_members[] = { "kind", "id", "hotpluggable", "log_path", NULL };
static const char *const plain_members[] = { "kind", "id", "hotpluggable", NULL };

static UvmNetwork *
network_from_json (JsonNode *node, const char *path, GError **error)
{
  JsonObject *object = expect_object (node, path, error);
  const char *name = NULL, *tap = NULL, *bridge = NULL;
  int kind = -1, mode = UVM_UPLINK_AUTO;
  g_autoptr(UvmNetwork) network = NULL;

  if (object == NULL || !check_members (object, path, network_members, "a network", error) ||
      !require_string (object, path, "name", "a network", &name, error))
    return NULL;
  if (!json_object_has_member (object, "kind"))
    {
      g_autofree char *kpath = member_path (path, "kind");

      fail (error, kpath, "missing; a network needs it (one of isolated, uplink, tap, bridge)");
      return NULL;
    }
  if (!get_enum (object, path, "kind", UVM_TYPE_NETWORK_KIND, &kind, error))
    return NULL;

  /* Members of another kind are refused rather than ignored: a tap_name
   * on an uplink network is a mistake the writer would want to hear of. */
  if (kind != UVM_NETWORK_UPLINK && json_object_has_member (object, "uplink_mode"))
    {
      g_autofree char *mpath = member_path (path, "uplink_mode");
      fail (error, mpath, "only a network of kind 'uplink' has it");
      return NULL;
    }
  if (kind != UVM_NETWORK_TAP && json_object_has_member (object, "tap_name"))
    {
      g_autofree char *mpath = member_path (path, "tap_name");
      fail (error, mpath, "only a network of kind 'tap' has it");
      return NULL;
    }
  if (kind != UVM_NETWORK_BRIDGE && json_object_has_member (object, "host_bridge"))
    {
      g_autofree char *mpath = member_path (path, "host_bridge");
      fail (error, mpath, "only a network of kind 'bridge' has it");
      return NULL;
    }

  switch (kind)
    {
    case UVM_NETWORK_ISOLATED:
      network = uvm_network_new_isolated (name);
      break;
    case UVM_NETWORK_UPLINK:
      if (!get_enum (object, path, "uplink_mode", UVM_TYPE_UPLINK_MODE, &mode, error))
        return NULL;
      network = uvm_network_new_uplink (name);
      uvm_network_set_uplink_mode (network, mode);
      break;
    case UVM_NETWORK_TAP:
      if (!require_string (object, path, "tap_name", "a network of kind 'tap'", &tap, error))
        return NULL;
      network = uvm_network_new_tap (name, tap);
      break;
    case UVM_NETWORK_BRIDGE:
      if (!require_string (object, path, "host_bridge", "a network of kind 'bridge'", &bridge,
                           error))
        return NULL;
      network = uvm_network_new_bridge (name, bridge);
      break;
    default:
      g_assert_not_reached ();
    }
  return g_steal_pointer (&network);
}

static UvmDevice *
device_from_json (JsonNode *node, const char *path, GHashTable *networks, GError **error)
{
  JsonObject *object = expect_object (node, path, error);
  g_autoptr(UvmDevice) device = NULL;
  int kind = -1;
  const char *id = NULL;
  gboolean hotpluggable = FALSE;

  if (object == NULL)
    return NULL;
  if (!json_object_has_member (object, "kind"))
    {
      g_autofree char *kpath = member_path (path, "kind");

      fail (error, kpath, "missing; a device needs it (one of net, disk, console, rng, "
            "balloon)");
      return NULL;
    }
  if (!get_enum (object, path, "kind", UVM_TYPE_DEVICE_KIND, &kind, error) ||
      !get_string (object, path, "id", &id, error) ||
      !get_bool (object, path, "hotpluggable", &hotpluggable, error))
    return NULL;

  switch (kind)
    {
    case UVM_DEVICE_NET:
      {
        const char *network_name = NULL, *mac = NULL, *tap = NULL;
        UvmNetwork *network;

        if (!check_members (object, path, net_members, "a 'net' device", error) ||
            !require_string (object, path, "network", "a 'net' device", &network_name, error) ||
            !get_string (object, path, "mac", &mac, error) ||
            !get_string (object, path, "tap_name", &tap, error))
          return NULL;
        network = g_hash_table_lookup (networks, network_name);
        if (network == NULL)
          {
            g_autofree char *npath = member_path (path, "network");

            fail (error, npath, "no network '%s' in \"networks\"", network_name);
            return NULL;
          }
        device = uvm_device_new_net (network, mac);
        uvm_device_set_tap_name (device, tap);
        break;
      }
    case UVM_DEVICE_DISK:
      {
        const char *image = NULL;
        int format = UVM_STORAGE_FORMAT_RAW;
        gboolean read_only = FALSE;
        guint64 create_size = 0;
        g_autoptr(UvmStorage) storage = NULL;

        if (!check_members (object, path, disk_members, "a 'disk' device", error) ||
            !require_string (object, path, "path", "a 'disk' device", &image, error) ||
            !get_enum (object, path, "format", UVM_TYPE_STORAGE_FORMAT, &format, error) ||
            !get_bool (object, path, "read_only", &read_only, error) ||
            !get_size (object, path, "create_size", &create_size, error))
          return NULL;
        storage = uvm_storage_new_image (image);
        uvm_storage_set_format (storage, format);
        uvm_storage_set_read_only (storage, read_only);
        uvm_storage_set_create_size (storage, create_size);
        device = uvm_device_new_disk (storage);
        break;
      }
    case UVM_DEVICE_CONSOLE:
      {
        const char *log_path = NULL;

        if (!check_members (object, path, console_members, "a 'console' device", error) ||
            !get_string (object, path, "log_path", &log_path, error))
          return NULL;
        device = uvm_device_new_console (log_path);
        break;
      }
    case UVM_DEVICE_RNG:
    case UVM_DEVICE_BALLOON:
      {
        g_autofree char *what = g_strdup_printf ("a '%s' device",
                                                 enum_nick (UVM_TYPE_DEVICE_KIND, kind));

        if (!check_members (object, path, plain_members, what, error))
          return NULL;
        device = kind == UVM_DEVICE_RNG ? uvm_device_new_rng () : uvm_device_new_balloon ();
        break;
      }
    default:
      g_assert_not_reached ();
    }
  uvm_device_set_id (device, id);
  uvm_device_set_hotpluggable (device, hotpluggable);
  return g_steal_pointer (&device);
}

static gboolean
extra_args_from_json (JsonObject *object, const char *path, UvmVm *vm, GError **error)
{
  g_autofree char *apath = member_path (path, "extra_args");
  g_autoptr(GStrvBuilder) builder = NULL;
  g_auto(GStrv) args = NULL;
  JsonArray *array;

  if (!json_object_has_member (object, "extra_args"))
    return TRUE;
  if ((array = get_array (object, path, "extra_args", error)) == NULL)
    return FALSE;
  builder = g_strv_builder_new ();
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        {
          g_autofree char *epath = index_path (apath, i);

          return fail (error, epath, "expected a string, got %s", node_type_name (node));
        }
      g_strv_builder_add (builder, json_node_get_string (node));
    }
  args = g_strv_builder_end (builder);
  uvm_vm_set_extra_args (vm, (const char *const *) args);
  return TRUE;
}

static UvmVm *
vm_from_json (JsonObject *object, const char *path, GHashTable *networks, GError **error)
{
  const char *name = NULL, *hv_name = NULL, *kernel = NULL, *initramfs = NULL, *cmdline = NULL;
  const char *hv_path = NULL, *runtime_dir = NULL, *log_dir = NULL;
  UvmHypervisor hypervisor;
  int machine = UVM_MACHINE_DEFAULT, accel = UVM_ACCEL_AUTO;
  int lifetime = UVM_VM_LIFETIME_ATTACHED;
  guint64 vcpus = 1, memory = 0, timeout = UVM_VM_DEFAULT_CONTROL_TIMEOUT_MS;
  gboolean start_paused = FALSE, confined = FALSE;
  guint32 uid = UVM_USER_DYNAMIC, gid = UVM_USER_DYNAMIC;
  g_autoptr(UvmVm) vm = NULL;

  if (!check_members (object, path, vm_members, "a VM", error) ||
      !require_string (object, path, "name", "a VM", &name, error) ||
      !require_string (object, path, "hypervisor", "a VM", &hv_name, error))
    return NULL;
  if (!uvm_hypervisor_from_string (hv_name, &hypervisor))
    {
      g_autofree char *hpath = member_path (path, "hypervisor");
      g_autoptr(GString) list = g_string_new (NULL);
      GEnumClass *klass = g_type_class_ref (UVM_TYPE_HYPERVISOR);

      for (guint i = 0; i < klass->n_values; i++)
        {
          const char *known = uvm_hypervisor_to_string (klass->values[i].value);
          if (known != NULL)
            g_string_append_printf (list, "%s%s", list->len ? ", " : "", known);
        }
      g_type_class_unref (klass);
      fail (error, hpath, "'%s' is not one of %s", hv_name, list->str);
      return NULL;
    }
  if (!get_enum (object, path, "machine", UVM_TYPE_MACHINE, &machine, error) ||
      !get_enum (object, path, "accel", UVM_TYPE_ACCEL, &accel, error) ||
      !get_enum (object, path, "lifetime", UVM_TYPE_VM_LIFETIME, &lifetime, error) ||
      !get_string (object, path, "kernel", &kernel, error) ||
      !get_string (object, path, "initramfs", &initramfs, error) ||
      !get_string (object, path, "cmdline", &cmdline, error) ||
      !get_uint (object, path, "vcpus", G_MAXUINT, &vcpus, error) ||
      !get_size (object, path, "memory", &memory, error) ||
      !get_string (object, path, "hypervisor_path", &hv_path, error) ||
      !get_string (object, path, "runtime_dir", &runtime_dir, error) ||
      !get_string (object, path, "log_dir", &log_dir, error) ||
      !get_bool (object, path, "start_paused", &start_paused, error) ||
      !get_bool (object, path, "confined", &confined, error) ||
      !get_user (object, path, &uid, &gid, error) ||
      !get_uint (object, path, "control_timeout_ms", G_MAXUINT, &timeout, error))
    return NULL;
  if (kernel == NULL && (initramfs != NULL || cmdline != NULL))
    {
      g_autofree char *kpath = member_path (path, initramfs ? "initramfs" : "cmdline");

      fail (error, kpath, "needs \"kernel\" (a VM that boots from its disk has neither)");
      return NULL;
    }

  vm = uvm_vm_new (name, hypervisor);
  uvm_vm_set_machine (vm, machine);
  uvm_vm_set_accel (vm, accel);
  if (kernel != NULL)
    uvm_vm_set_kernel (vm, kernel, initramfs, cmdline);
  uvm_vm_set_vcpus (vm, vcpus);
  if (json_object_has_member (object, "memory"))
    uvm_vm_set_memory (vm, memory);
  if (!extra_args_from_json (object, path, vm, error))
    return NULL;
  uvm_vm_set_hypervisor_path (vm, hv_path);
  if (runtime_dir != NULL)
    uvm_vm_set_runtime_dir (vm, runtime_dir);
  uvm_vm_set_start_paused (vm, start_paused);
  uvm_vm_set_confined (vm, confined);
  uvm_vm_set_user (vm, uid, gid);
  uvm_vm_set_control_timeout (vm, timeout);
  uvm_vm_set_lifetime (vm, lifetime);
  if (log_dir != NULL)
    uvm_vm_set_log_dir (vm, log_dir);

  if (json_object_has_member (object, "devices"))
    {
      g_autofree char *dpath = member_path (path, "devices");
      JsonArray *devices = get_array (object, path, "devices", error);

      if (devices == NULL)
        return NULL;
      for (guint i = 0; i < json_array_get_length (devices); i++)
        {
          g_autofree char *epath = index_path (dpath, i);
          UvmDevice *device = device_from_json (json_array_get_element (devices, i), epath,
                                                networks, error);

          if (device == NULL)
            return NULL;
          uvm_vm_add_device (vm, device);
        }
    }
  return g_steal_pointer (&vm);
}

static JsonNode *
parse (const char *json, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  g_return_val_if_fail (json != NULL, NULL);
  if (!json_parser_load_from_data (parser, json, -1, &local))
    {
      const char *message = local->message;
      guint line = 0, column = 0;
      int consumed = 0;

      /* json-glib says "<data>:LINE:COLUMN: Parse error: WHAT" (the
       * "<data>" stands for a file name it has not got). */
      if (g_str_has_prefix (message, "<data>:"))
        message += strlen ("<data>:");
      if (sscanf (message, "%u:%u: %n", &line, &column, &consumed) == 2 && consumed > 0)
        {
          message += consumed;
          if (g_str_has_prefix (message, "Parse error: "))
            message += strlen ("Parse error: ");
          g_set_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION,
                       "not JSON: line %u, column %u: %s", line, column, message);
        }
      else
        g_set_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION, "not JSON: %s", message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION,
                   "not JSON: the text is empty");
      return NULL;
    }
  return json_node_copy (root);
}

GPtrArray *
uvm_vms_new_from_json (const char *json, GError **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GHashTable) networks = NULL;
  g_autoptr(GHashTable) by_name = NULL;
  g_autoptr(GPtrArray) vms = NULL;
  JsonObject *document;
  JsonArray *array;
  guint64 schema = 0;

  g_return_val_if_fail (json != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if ((root = parse (json, error)) == NULL)
    return NULL;
  if ((document = expect_object (root, "document", error)) == NULL ||
      !check_members (document, "", document_members, "a document", error))
    return NULL;
  if (!json_object_has_member (document, "schema"))
    {
      fail (error, "schema", "missing; a document starts with \"schema\": %d",
            UVM_JSON_SCHEMA_VERSION);
      return NULL;
    }
  if (!get_uint (document, "", "schema", G_MAXINT64, &schema, error))
    return NULL;
  if (schema != UVM_JSON_SCHEMA_VERSION)
    {
      fail (error, "schema", "version %" G_GUINT64_FORMAT " is not known to this libuvm, "
            "which reads version %d", schema, UVM_JSON_SCHEMA_VERSION);
      return NULL;
    }

  networks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  if (json_object_has_member (document, "networks"))
    {
      if ((array = get_array (document, "", "networks", error)) == NULL)
        return NULL;
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          g_autofree char *path = index_path ("networks", i);
          UvmNetwork *network = network_from_json (json_array_get_element (array, i), path,
                                                   error);
          const char *name;

          if (network == NULL)
            return NULL;
          name = uvm_network_get_name (network);
          if (g_hash_table_contains (networks, name))
            {
              g_autofree char *npath = member_path (path, "name");

              fail (error, npath, "'%s' names an earlier network already", name);
              g_object_unref (network);
              return NULL;
            }
          g_hash_table_insert (networks, g_strdup (name), network);
        }
    }

  if (!json_object_has_member (document, "vms"))
    {
      fail (error, "vms", "missing; a document defines its VMs in \"vms\"");
      return NULL;
    }
  if ((array = get_array (document, "", "vms", error)) == NULL)
    return NULL;
  if (json_array_get_length (array) == 0)
    {
      fail (error, "vms", "empty; a document defines at least one VM");
      return NULL;
    }
  vms = g_ptr_array_new_with_free_func (g_object_unref);
  by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      g_autofree char *path = index_path ("vms", i);
      JsonObject *object = expect_object (json_array_get_element (array, i), path, error);
      UvmVm *vm;

      if (object == NULL || (vm = vm_from_json (object, path, networks, error)) == NULL)
        return NULL;
      g_ptr_array_add (vms, vm);
      if (g_hash_table_contains (by_name, uvm_vm_get_name (vm)))
        {
          g_autofree char *npath = member_path (path, "name");

          fail (error, npath, "'%s' names an earlier VM already", uvm_vm_get_name (vm));
          return NULL;
        }
      g_hash_table_insert (by_name, (gpointer) uvm_vm_get_name (vm), vm);
    }

  /* Gateways last: a workstation may come before its gateway. */
  for (guint i = 0; i < vms->len; i++)
    {
      g_autofree char *path = index_path ("vms", i);
      JsonObject *object = json_array_get_object_element (array, i);
      const char *gateway_name = NULL;
      UvmVm *gateway;

      if (!get_string (object, path, "gateway", &gateway_name, error))
        return NULL;
      if (gateway_name == NULL)
        continue;
      gateway = g_hash_table_lookup (by_name, gateway_name);
      if (gateway == NULL)
        {
          g_autofree char *gpath = member_path (path, "gateway");

          fail (error, gpath, "no VM '%s' in \"vms\"", gateway_name);
          return NULL;
        }
      uvm_vm_set_gateway (g_ptr_array_index (vms, i), gateway);
    }
  return g_steal_pointer (&vms);
}

UvmVm *
uvm_vm_new_from_json (const char *json, GError **error)
{
  g_autoptr(GPtrArray) vms = NULL;

  g_return_val_if_fail (json != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if ((vms = uvm_vms_new_from_json (json, error)) == NULL)
    return NULL;
  if (vms->len != 1)
    {
      fail (error, "vms", "%u VMs where one was expected (read a document of several VMs "
            "with uvm_vms_new_from_json())", vms->len);
      return NULL;
    }
  return g_object_ref (g_ptr_array_index (vms, 0));
}

/* ---- writing a document -------------------------------------------------- */

/* The largest binary unit that divides @bytes, as a string; a count that
 * is not a whole number of KiB as a number. */
static void
add_size (JsonBuilder *b, const char *member, guint64 bytes)
{
  json_builder_set_member_name (b, member);
  for (guint i = 0; i < 4; i++)
    if (bytes != 0 && bytes % size_units[i].factor == 0)
      {
        g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT "%s",
                                                 bytes / size_units[i].factor,
                                                 size_units[i].suffix);
        json_builder_add_string_value (b, text);
        return;
      }
  if (bytes <= G_MAXINT64)
    json_builder_add_int_value (b, bytes);
  else
    {
      g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT "B", bytes);
      json_builder_add_string_value (b, text);
    }
}

static void
add_string (JsonBuilder *b, const char *member, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, member);
  json_builder_add_string_value (b, value);
}

static void
add_bool (JsonBuilder *b, const char *member, gboolean value)
{
  json_builder_set_member_name (b, member);
  json_builder_add_boolean_value (b, value);
}

static void
add_network (JsonBuilder *b, UvmNetwork *network)
{
  UvmNetworkKind kind = uvm_network_get_kind (network);

  json_builder_begin_object (b);
  add_string (b, "name", uvm_network_get_name (network));
  add_string (b, "kind", enum_nick (UVM_TYPE_NETWORK_KIND, kind));
  if (kind == UVM_NETWORK_UPLINK)
    add_string (b, "uplink_mode",
                enum_nick (UVM_TYPE_UPLINK_MODE, uvm_network_get_uplink_mode (network)));
  if (kind == UVM_NETWORK_TAP)
    add_string (b, "tap_name", uvm_network_get_tap_name (network));
  if (kind == UVM_NETWORK_BRIDGE)
    add_string (b, "host_bridge", uvm_network_get_host_bridge (network));
  json_builder_end_object (b);
}

static void
add_device (JsonBuilder *b, UvmDevice *device)
{
  UvmDeviceKind kind = uvm_device_get_kind (device);

  json_builder_begin_object (b);
  add_string (b, "kind", enum_nick (UVM_TYPE_DEVICE_KIND, kind));
  add_string (b, "id", uvm_device_get_id (device));
  add_bool (b, "hotpluggable", uvm_device_get_hotpluggable (device));
  switch (kind)
    {
    case UVM_DEVICE_NET:
      add_string (b, "network", uvm_network_get_name (uvm_device_get_network (device)));
      add_string (b, "mac", uvm_device_get_mac (device));
      add_string (b, "tap_name", uvm_device_get_tap_name (device));
      break;
    case UVM_DEVICE_DISK:
      {
        UvmStorage *storage = uvm_device_get_storage (device);

        add_string (b, "path", uvm_storage_get_path (storage));
        add_string (b, "format", enum_nick (UVM_TYPE_STORAGE_FORMAT,
                                            uvm_storage_get_format (storage)));
        add_bool (b, "read_only", uvm_storage_get_read_only (storage));
        if (uvm_storage_get_create_size (storage) != 0)
          add_size (b, "create_size", uvm_storage_get_create_size (storage));
        break;
      }
    case UVM_DEVICE_CONSOLE:
      add_string (b, "log_path", uvm_device_get_log_path (device));
      break;
    case UVM_DEVICE_RNG:
    case UVM_DEVICE_BALLOON:
    default:
      break;
    }
  json_builder_end_object (b);
}

static void
add_vm (JsonBuilder *b, UvmVm *vm)
{
  g_autofree char *user = NULL;

  json_builder_begin_object (b);
  add_string (b, "name", vm->name);
  add_string (b, "hypervisor", uvm_hypervisor_to_string (vm->hypervisor));
  add_string (b, "machine", enum_nick (UVM_TYPE_MACHINE, vm->machine));
  add_string (b, "accel", enum_nick (UVM_TYPE_ACCEL, vm->accel));
  add_string (b, "kernel", vm->kernel);
  add_string (b, "initramfs", vm->initramfs);
  add_string (b, "cmdline", vm->cmdline);
  json_builder_set_member_name (b, "vcpus");
  json_builder_add_int_value (b, vm->vcpus);
  add_size (b, "memory", vm->memory);
  json_builder_set_member_name (b, "extra_args");
  json_builder_begin_array (b);
  for (guint i = 0; vm->extra_args[i] != NULL; i++)
    json_builder_add_string_value (b, vm->extra_args[i]);
  json_builder_end_array (b);
  /* The fields as set: their getters answer with the defaults in effect,
   * which a later library (or another host) may choose differently. */
  add_string (b, "hypervisor_path", vm->hypervisor_path);
  add_string (b, "runtime_dir", vm->runtime_dir);
  add_bool (b, "start_paused", vm->start_paused);
  add_bool (b, "confined", vm->confined);
  add_string (b, "lifetime", enum_nick (UVM_TYPE_VM_LIFETIME, vm->lifetime));
  add_string (b, "log_dir", vm->log_dir);
  if (vm->user_uid == UVM_USER_DYNAMIC || vm->user_uid == UVM_USER_CALLER)
    user = g_strdup (vm->user_uid == UVM_USER_DYNAMIC ? "dynamic" : "caller");
  else
    user = g_strdup_printf ("%u:%u", vm->user_uid, vm->user_gid);
  add_string (b, "user", user);
  json_builder_set_member_name (b, "control_timeout_ms");
  json_builder_add_int_value (b, vm->control_timeout_ms);
  if (uvm_vm_get_gateway (vm) != NULL)
    add_string (b, "gateway", uvm_vm_get_gateway (vm)->name);
  json_builder_set_member_name (b, "devices");
  json_builder_begin_array (b);
  for (guint i = 0; i < vm->devices->len; i++)
    add_device (b, g_ptr_array_index (vm->devices, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
}

/* What a document cannot say, refused before anything is written. */
static gboolean
check_writable (UvmVm *const *vms, guint n_vms, GPtrArray *networks, GError **error)
{
  g_autoptr(GHashTable) vm_names = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) net_names = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < n_vms; i++)
    {
      UvmVm *vm = vms[i];
      UvmVm *gateway = uvm_vm_get_gateway (vm);
      g_autofree char *path = index_path ("vms", i);
      gboolean gateway_written = FALSE;

      if (vm->definition_error != NULL)
        return fail (error, path, "VM '%s' has a definition error, which a document cannot "
                     "say: %s", vm->name, vm->definition_error);
      if (uvm_hypervisor_to_string (vm->hypervisor) == NULL)
        return fail (error, path, "VM '%s' has a hypervisor (%d) without a name in this "
                     "libuvm", vm->name, vm->hypervisor);
      if (g_hash_table_contains (vm_names, vm->name))
        return fail (error, path, "two of the VMs are named '%s'; a document names each VM "
                     "once", vm->name);
      g_hash_table_add (vm_names, vm->name);
      for (guint j = 0; j < n_vms && gateway != NULL; j++)
        gateway_written |= vms[j] == gateway;
      if (gateway != NULL && !gateway_written)
        return fail (error, path, "VM '%s' has gateway '%s', which is not among the VMs "
                     "written; write both together", vm->name, gateway->name);

      for (guint d = 0; d < vm->devices->len; d++)
        {
          UvmNetwork *network = uvm_device_get_network (g_ptr_array_index (vm->devices, d));
          UvmNetwork *same_name;

          if (network == NULL)
            continue;
          same_name = g_hash_table_lookup (net_names, uvm_network_get_name (network));
          if (same_name != NULL && same_name != network)
            {
              g_autofree char *dpath = g_strdup_printf ("%s.devices[%u].network", path, d);

              return fail (error, dpath, "two different networks are named '%s'; a document "
                           "refers to networks by name", uvm_network_get_name (network));
            }
          if (same_name == NULL)
            {
              g_hash_table_insert (net_names, (gpointer) uvm_network_get_name (network),
                                   network);
              g_ptr_array_add (networks, network);
            }
        }
    }
  return TRUE;
}

char *
uvm_vms_to_json (UvmVm *const *vms, guint n_vms, GError **error)
{
  g_autoptr(GPtrArray) networks = g_ptr_array_new ();
  g_autoptr(JsonBuilder) b = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  g_return_val_if_fail (vms != NULL && n_vms > 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  for (guint i = 0; i < n_vms; i++)
    g_return_val_if_fail (UVM_IS_VM (vms[i]), NULL);

  if (!check_writable (vms, n_vms, networks, error))
    return NULL;

  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "schema");
  json_builder_add_int_value (b, UVM_JSON_SCHEMA_VERSION);
  json_builder_set_member_name (b, "networks");
  json_builder_begin_array (b);
  for (guint i = 0; i < networks->len; i++)
    add_network (b, g_ptr_array_index (networks, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "vms");
  json_builder_begin_array (b);
  for (guint i = 0; i < n_vms; i++)
    add_vm (b, vms[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  generator = json_generator_new ();
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_indent (generator, 2);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  return g_strconcat (text, "\n", NULL);
}

char *
uvm_vm_to_json (UvmVm *vm, GError **error)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return uvm_vms_to_json (&vm, 1, error);
}
