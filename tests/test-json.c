/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Definition documents (uvm_vm_new_from_json(), uvm_vms_new_from_json(),
 * uvm_vm_to_json(), uvm_vms_to_json()) against docs/definition-schema.md:
 * every member read into its setting, the defaults of absent members, the
 * Whonix pair of the schema document, what a written document holds, and
 * one test per refused document, each naming the JSON path at fault.
 * (That every golden definition of tests/golden/ goes through JSON and
 * back to the same plan is checked in test-plan.c, next to the goldens.)
 *
 * Public API only, linked against the shared library.  Nothing boots and
 * no file is opened: loading a document never looks at the host. */

#include "uvm-test-util.h"

#include <json-glib/json-glib.h>

#include <string.h>

/* Documents are written with ' for " to keep them readable in C. */
static char *
doc (const char *text)
{
  char *json = g_strdup (text);

  g_strdelimit (json, "'", '"');
  return json;
}

static UvmVm *
load_one (const char *text)
{
  g_autofree char *json = doc (text);
  g_autoptr(GError) error = NULL;
  UvmVm *vm = uvm_vm_new_from_json (json, &error);

  g_assert_no_error (error);
  g_assert_nonnull (vm);
  return vm;
}

static char *
srcdir_file (const char *relative)
{
  const char *srcdir = g_getenv ("UVM_TEST_SRCDIR");

  if (srcdir == NULL)
    g_error ("UVM_TEST_SRCDIR is not set: run through meson test");
  return g_build_filename (srcdir, relative, NULL);
}

static char *
read_srcdir_file (const char *relative)
{
  g_autofree char *path = srcdir_file (relative);
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

/* ---- every member --------------------------------------------------------- */

static const char every_vm_member[] =
  "{'schema': 1,"
  " 'networks': ["
  "   {'name': 'lan', 'kind': 'isolated'},"
  "   {'name': 'wan', 'kind': 'uplink', 'uplink_mode': 'tap-nat'}"
  " ],"
  " 'vms': [{"
  "   'name': 'full', 'hypervisor': 'cloud-hypervisor', 'machine': 'q35', 'accel': 'tcg',"
  "   'kernel': '/k/vmlinuz', 'initramfs': '/k/initrd', 'cmdline': 'console=ttyS0 quiet',"
  "   'vcpus': 3, 'memory': '768MiB', 'extra_args': ['-a', 'b c', ''],"
  "   'hypervisor_path': '/opt/ch/cloud-hypervisor', 'runtime_dir': '/run/x/full',"
  "   'start_paused': true, 'confined': true, 'user': '4242:4343',"
  "   'control_timeout_ms': 2500, 'lifetime': 'detached', 'log_dir': '/var/log/full',"
  "   'devices': ["
  "     {'kind': 'net', 'network': 'lan', 'id': 'eth-lan', 'mac': '02:00:00:00:00:01',"
  "      'tap_name': 'tap-full', 'hotpluggable': true},"
  "     {'kind': 'disk', 'path': '/img/data.qcow2', 'format': 'qcow2', 'read_only': true,"
  "      'create_size': '2GiB', 'id': 'data'},"
  "     {'kind': 'console', 'log_path': '/log/full.console'},"
  "     {'kind': 'rng', 'id': 'entropy'},"
  "     {'kind': 'balloon'},"
  "     {'kind': 'net', 'network': 'wan'}"
  "   ]"
  " }]}";

static void
test_every_vm_member_reaches_its_setting (void)
{
  g_autoptr(UvmVm) vm = load_one (every_vm_member);
  const char *const expected_args[] = { "-a", "b c", "", NULL };

  g_assert_cmpstr (uvm_vm_get_name (vm), ==, "full");
  g_assert_cmpint (uvm_vm_get_hypervisor (vm), ==, UVM_HYPERVISOR_CLOUD_HYPERVISOR);
  g_assert_cmpint (uvm_vm_get_machine (vm), ==, UVM_MACHINE_Q35);
  g_assert_cmpint (uvm_vm_get_accel (vm), ==, UVM_ACCEL_TCG);
  g_assert_cmpstr (uvm_vm_get_kernel (vm), ==, "/k/vmlinuz");
  g_assert_cmpstr (uvm_vm_get_initramfs (vm), ==, "/k/initrd");
  g_assert_cmpstr (uvm_vm_get_kernel_cmdline (vm), ==, "console=ttyS0 quiet");
  g_assert_cmpuint (uvm_vm_get_vcpus (vm), ==, 3);
  g_assert_cmpuint (uvm_vm_get_memory (vm), ==, 768 * UVM_MIB);
  g_assert_true (g_strv_equal (uvm_vm_get_extra_args (vm), expected_args));
  g_assert_cmpstr (uvm_vm_get_hypervisor_path (vm), ==, "/opt/ch/cloud-hypervisor");
  g_assert_cmpstr (uvm_vm_get_runtime_dir (vm), ==, "/run/x/full");
  g_assert_true (uvm_vm_get_start_paused (vm));
  g_assert_true (uvm_vm_get_confined (vm));
  g_assert_cmpuint (uvm_vm_get_user (vm), ==, 4242);
  g_assert_cmpuint (uvm_vm_get_group (vm), ==, 4343);
  g_assert_cmpuint (uvm_vm_get_control_timeout (vm), ==, 2500);
  g_assert_cmpint (uvm_vm_get_lifetime (vm), ==, UVM_VM_LIFETIME_DETACHED);
  g_assert_cmpstr (uvm_vm_get_log_dir (vm), ==, "/var/log/full");
  g_assert_null (uvm_vm_get_gateway (vm));
  g_assert_cmpuint (uvm_vm_get_n_devices (vm), ==, 6);
}

static void
test_every_device_member_reaches_its_setting (void)
{
  g_autoptr(UvmVm) vm = load_one (every_vm_member);
  UvmDevice *net = uvm_vm_get_device (vm, 0);
  UvmDevice *disk = uvm_vm_get_device (vm, 1);
  UvmDevice *console = uvm_vm_get_device (vm, 2);
  UvmDevice *rng = uvm_vm_get_device (vm, 3);
  UvmDevice *balloon = uvm_vm_get_device (vm, 4);
  UvmStorage *storage = uvm_device_get_storage (disk);

  g_assert_cmpint (uvm_device_get_kind (net), ==, UVM_DEVICE_NET);
  g_assert_cmpstr (uvm_device_get_id (net), ==, "eth-lan");
  g_assert_cmpstr (uvm_device_get_mac (net), ==, "02:00:00:00:00:01");
  g_assert_cmpstr (uvm_device_get_tap_name (net), ==, "tap-full");
  g_assert_true (uvm_device_get_hotpluggable (net));
  g_assert_cmpstr (uvm_network_get_name (uvm_device_get_network (net)), ==, "lan");

  g_assert_cmpint (uvm_device_get_kind (disk), ==, UVM_DEVICE_DISK);
  g_assert_cmpstr (uvm_device_get_id (disk), ==, "data");
  g_assert_false (uvm_device_get_hotpluggable (disk));
  g_assert_cmpstr (uvm_storage_get_path (storage), ==, "/img/data.qcow2");
  g_assert_cmpint (uvm_storage_get_format (storage), ==, UVM_STORAGE_FORMAT_QCOW2);
  g_assert_true (uvm_storage_get_read_only (storage));
  g_assert_cmpuint (uvm_storage_get_create_size (storage), ==, 2 * UVM_GIB);

  g_assert_cmpint (uvm_device_get_kind (console), ==, UVM_DEVICE_CONSOLE);
  g_assert_cmpstr (uvm_device_get_log_path (console), ==, "/log/full.console");
  g_assert_cmpint (uvm_device_get_kind (rng), ==, UVM_DEVICE_RNG);
  g_assert_cmpstr (uvm_device_get_id (rng), ==, "entropy");
  g_assert_cmpint (uvm_device_get_kind (balloon), ==, UVM_DEVICE_BALLOON);
}

static void
test_ids_and_macs_left_out_are_the_ones_add_device_gives (void)
{
  g_autoptr(UvmVm) vm = load_one (every_vm_member);
  g_autoptr(UvmVm) built = uvm_vm_new ("full", UVM_HYPERVISOR_CLOUD_HYPERVISOR);
  g_autoptr(UvmNetwork) wan = uvm_network_new_uplink ("wan");
  UvmDevice *loaded = uvm_vm_get_device (vm, 5);

  /* The second net device: no id, no MAC in the document. */
  uvm_vm_add_device (built, uvm_device_new_net (wan, NULL));
  g_assert_cmpstr (uvm_device_get_id (loaded), ==, "net1");
  g_assert_cmpstr (uvm_device_get_mac (loaded), ==,
                   uvm_device_get_mac (uvm_vm_get_device (built, 0)));
  g_assert_cmpstr (uvm_device_get_id (uvm_vm_get_device (vm, 4)), ==, "balloon0");
}

static void
test_network_kinds_and_their_members (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = doc (
    "{'schema': 1, 'networks': ["
    "  {'name': 'iso', 'kind': 'isolated'},"
    "  {'name': 'up', 'kind': 'uplink'},"
    "  {'name': 'up2', 'kind': 'uplink', 'uplink_mode': 'passt'},"
    "  {'name': 't', 'kind': 'tap', 'tap_name': 'tap7'},"
    "  {'name': 'b', 'kind': 'bridge', 'host_bridge': 'br0'}],"
    " 'vms': [{'name': 'n', 'hypervisor': 'qemu', 'devices': ["
    "  {'kind': 'net', 'network': 'iso'}, {'kind': 'net', 'network': 'up'},"
    "  {'kind': 'net', 'network': 'up2'}, {'kind': 'net', 'network': 't'},"
    "  {'kind': 'net', 'network': 'b'}]}]}");
  g_autoptr(UvmVm) vm = uvm_vm_new_from_json (json, &error);
  UvmNetwork *n[5];

  g_assert_no_error (error);
  for (guint i = 0; i < 5; i++)
    n[i] = uvm_device_get_network (uvm_vm_get_device (vm, i));
  g_assert_cmpint (uvm_network_get_kind (n[0]), ==, UVM_NETWORK_ISOLATED);
  g_assert_cmpint (uvm_network_get_kind (n[1]), ==, UVM_NETWORK_UPLINK);
  g_assert_cmpint (uvm_network_get_uplink_mode (n[1]), ==, UVM_UPLINK_AUTO);
  g_assert_cmpint (uvm_network_get_uplink_mode (n[2]), ==, UVM_UPLINK_PASST);
  g_assert_cmpint (uvm_network_get_kind (n[3]), ==, UVM_NETWORK_TAP);
  g_assert_cmpstr (uvm_network_get_tap_name (n[3]), ==, "tap7");
  g_assert_cmpint (uvm_network_get_kind (n[4]), ==, UVM_NETWORK_BRIDGE);
  g_assert_cmpstr (uvm_network_get_host_bridge (n[4]), ==, "br0");
}

/* ---- defaults and value forms ---------------------------------------------- */

static void
test_absent_members_leave_the_defaults_of_uvm_vm_new (void)
{
  g_autoptr(UvmVm) vm = load_one ("{'schema': 1, 'vms': [{'name': 'd', 'hypervisor': 'qemu'}]}");
  g_autoptr(UvmVm) built = uvm_vm_new ("d", UVM_HYPERVISOR_QEMU);

  g_assert_cmpint (uvm_vm_get_machine (vm), ==, uvm_vm_get_machine (built));
  g_assert_cmpint (uvm_vm_get_accel (vm), ==, uvm_vm_get_accel (built));
  g_assert_null (uvm_vm_get_kernel (vm));
  g_assert_cmpuint (uvm_vm_get_vcpus (vm), ==, 1);
  g_assert_cmpuint (uvm_vm_get_memory (vm), ==, uvm_vm_get_memory (built));
  g_assert_cmpuint (g_strv_length ((char **) uvm_vm_get_extra_args (vm)), ==, 0);
  g_assert_cmpstr (uvm_vm_get_hypervisor_path (vm), ==, uvm_vm_get_hypervisor_path (built));
  g_assert_cmpstr (uvm_vm_get_runtime_dir (vm), ==, uvm_vm_get_runtime_dir (built));
  g_assert_false (uvm_vm_get_start_paused (vm));
  g_assert_false (uvm_vm_get_confined (vm));
  g_assert_cmpuint (uvm_vm_get_user (vm), ==, UVM_USER_DYNAMIC);
  g_assert_cmpuint (uvm_vm_get_control_timeout (vm), ==, UVM_VM_DEFAULT_CONTROL_TIMEOUT_MS);
  g_assert_cmpuint (uvm_vm_get_n_devices (vm), ==, 0);
}

static guint64
load_memory (const char *value)
{
  g_autofree char *text = g_strdup_printf ("{'schema': 1, 'vms': [{'name': 'm', "
                                           "'hypervisor': 'qemu', 'memory': %s}]}", value);
  g_autoptr(UvmVm) vm = load_one (text);

  return uvm_vm_get_memory (vm);
}

static void
test_sizes_are_bytes_or_binary_units (void)
{
  g_assert_cmpuint (load_memory ("268435456"), ==, 256 * UVM_MIB);
  g_assert_cmpuint (load_memory ("'512MiB'"), ==, 512 * UVM_MIB);
  g_assert_cmpuint (load_memory ("'512M'"), ==, 512 * UVM_MIB);
  g_assert_cmpuint (load_memory ("'2GiB'"), ==, 2 * UVM_GIB);
  g_assert_cmpuint (load_memory ("'2G'"), ==, 2 * UVM_GIB);
  g_assert_cmpuint (load_memory ("'65536K'"), ==, 64 * UVM_MIB);
  g_assert_cmpuint (load_memory ("'65536KiB'"), ==, 64 * UVM_MIB);
  g_assert_cmpuint (load_memory ("'1TiB'"), ==, 1024 * UVM_GIB);
  g_assert_cmpuint (load_memory ("'1000B'"), ==, 1000);
}

static void
load_user (const char *value, guint32 *uid, guint32 *gid)
{
  g_autofree char *text = g_strdup_printf ("{'schema': 1, 'vms': [{'name': 'u', "
                                           "'hypervisor': 'qemu', 'user': '%s'}]}", value);
  g_autoptr(UvmVm) vm = load_one (text);

  *uid = uvm_vm_get_user (vm);
  *gid = uvm_vm_get_group (vm);
}

static void
test_user_is_dynamic_caller_uid_or_uid_gid (void)
{
  guint32 uid, gid;

  load_user ("dynamic", &uid, &gid);
  g_assert_cmpuint (uid, ==, UVM_USER_DYNAMIC);
  g_assert_cmpuint (gid, ==, UVM_USER_DYNAMIC);
  load_user ("caller", &uid, &gid);
  g_assert_cmpuint (uid, ==, UVM_USER_CALLER);
  g_assert_cmpuint (gid, ==, UVM_USER_CALLER);
  load_user ("1000", &uid, &gid);
  g_assert_cmpuint (uid, ==, 1000);
  g_assert_cmpuint (gid, ==, 1000);
  load_user ("1000:2000", &uid, &gid);
  g_assert_cmpuint (uid, ==, 1000);
  g_assert_cmpuint (gid, ==, 2000);
}

static void
test_relative_paths_are_taken_from_the_current_directory (void)
{
  g_autoptr(UvmVm) vm = load_one ("{'schema': 1, 'vms': [{'name': 'r', 'hypervisor': 'qemu', "
                                  "'kernel': 'boot/vmlinuz'}]}");
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *expected = g_build_filename (cwd, "boot", "vmlinuz", NULL);

  g_assert_cmpstr (uvm_vm_get_kernel (vm), ==, expected);
}

/* Every setter and constructor of a definition object in the public
 * headers is named in docs/definition-schema.md, as the setter of a
 * member: a new setting without a member in the schema fails here.  Run-time
 * operations that happen to be called set_ are not settings. */
static const char *const not_settings[] = {
  "uvm_vm_set_balloon_target", "uvm_vm_set_balloon_target_async",
  "uvm_vm_set_balloon_target_finish", NULL
};

static void
test_schema_document_names_every_public_setter (void)
{
  g_autofree char *include = srcdir_file ("../include/uvm");
  g_autofree char *schema_doc = read_srcdir_file ("../docs/definition-schema.md");
  g_autoptr(GRegex) regex = g_regex_new ("\\b(uvm_(?:vm|device|network|storage)_"
                                         "(?:set|new)_\\w+|uvm_vm_new)\\s*\\(",
                                         G_REGEX_DEFAULT, G_REGEX_MATCH_DEFAULT, NULL);
  g_autoptr(GDir) dir = g_dir_open (include, 0, NULL);
  g_autoptr(GString) missing = g_string_new (NULL);
  guint seen = 0;
  const char *entry;

  g_assert_nonnull (dir);
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (include, entry, NULL);
      g_autofree char *header = NULL;
      g_autoptr(GMatchInfo) match = NULL;

      if (!g_str_has_suffix (entry, ".h"))
        continue;
      g_file_get_contents (path, &header, NULL, NULL);
      g_assert_nonnull (header);
      for (g_regex_match (regex, header, 0, &match); g_match_info_matches (match);
           g_match_info_next (match, NULL))
        {
          g_autofree char *name = g_match_info_fetch (match, 1);
          g_autofree char *quoted = g_strdup_printf ("`%s()`", name);

          if (g_strv_contains (not_settings, name) || g_str_has_suffix (name, "_json"))
            continue;
          seen++;
          if (strstr (schema_doc, quoted) == NULL && strstr (missing->str, quoted) == NULL)
            g_string_append_printf (missing, " %s", quoted);
        }
    }
  /* The headers have (at least) the 13 VM setters and 9 constructors. */
  g_assert_cmpuint (seen, >=, 22);
  if (missing->len > 0)
    g_test_fail_printf ("docs/definition-schema.md names no member set by:%s", missing->str);
}

/* ---- several VMs: the Whonix pair of docs/definition-schema.md ---------------- */

static void
test_schema_document_shows_the_whonix_pair_of_the_tests (void)
{
  g_autofree char *example = read_srcdir_file ("json/whonix-pair.json");
  g_autofree char *schema_doc = read_srcdir_file ("../docs/definition-schema.md");
  g_autofree char *fenced = g_strconcat ("```json\n", example, "```\n", NULL);

  /* The document's example is the file this test loads, verbatim. */
  g_assert_nonnull (strstr (schema_doc, fenced));
}

static void
test_whonix_pair_shares_one_network_and_sets_the_gateway (void)
{
  g_autofree char *example = read_srcdir_file ("json/whonix-pair.json");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) vms = uvm_vms_new_from_json (example, &error);
  UvmVm *gw, *ws;
  UvmNetwork *gw_internal, *ws_internal;

  g_assert_no_error (error);
  g_assert_cmpuint (vms->len, ==, 2);
  gw = vms->pdata[0];
  ws = vms->pdata[1];
  g_assert_cmpstr (uvm_vm_get_name (gw), ==, "whonix-gateway");
  g_assert_cmpstr (uvm_vm_get_name (ws), ==, "whonix-workstation");
  g_assert_true (uvm_vm_get_gateway (ws) == gw);
  g_assert_null (uvm_vm_get_gateway (gw));
  gw_internal = uvm_device_get_network (uvm_vm_get_device (gw, 2));
  ws_internal = uvm_device_get_network (uvm_vm_get_device (ws, 3));
  g_assert_cmpstr (uvm_network_get_name (gw_internal), ==, "whonix-internal");
  g_assert_true (gw_internal == ws_internal);
  g_assert_cmpint (uvm_network_get_uplink_mode (uvm_device_get_network (
                     uvm_vm_get_device (gw, 1))), ==, UVM_UPLINK_PASST);
}

static void
test_a_workstation_may_come_before_its_gateway (void)
{
  g_autofree char *json = doc ("{'schema': 1, 'vms': ["
                               "{'name': 'ws', 'hypervisor': 'qemu', 'gateway': 'gw'},"
                               "{'name': 'gw', 'hypervisor': 'qemu'}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) vms = uvm_vms_new_from_json (json, &error);

  g_assert_no_error (error);
  g_assert_true (uvm_vm_get_gateway (vms->pdata[0]) == vms->pdata[1]);
}

static void
test_whonix_pair_written_and_read_again_is_the_same_document (void)
{
  g_autofree char *example = read_srcdir_file ("json/whonix-pair.json");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) vms = uvm_vms_new_from_json (example, &error);
  g_autofree char *written = NULL, *rewritten = NULL;
  g_autoptr(GPtrArray) again = NULL;

  g_assert_no_error (error);
  written = uvm_vms_to_json ((UvmVm *const *) vms->pdata, vms->len, &error);
  g_assert_no_error (error);
  again = uvm_vms_new_from_json (written, &error);
  g_assert_no_error (error);
  g_assert_true (uvm_vm_get_gateway (again->pdata[1]) == again->pdata[0]);
  g_assert_true (uvm_device_get_network (uvm_vm_get_device (again->pdata[0], 2)) ==
                 uvm_device_get_network (uvm_vm_get_device (again->pdata[1], 3)));
  rewritten = uvm_vms_to_json ((UvmVm *const *) again->pdata, again->len, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rewritten, ==, written);
}

/* ---- what a written document holds ------------------------------------------ */

static JsonObject *
written_vm (JsonNode *root)
{
  return json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (root), "vms"), 0);
}

static void
test_written_document_sets_every_value_and_leaves_out_unset_ones (void)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("w", UVM_HYPERVISOR_QEMU);
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object, *console;

  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  json = uvm_vm_to_json (vm, &error);
  g_assert_no_error (error);
  root = json_from_string (json, &error);
  g_assert_no_error (error);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root), "schema"), ==,
                   UVM_JSON_SCHEMA_VERSION);
  object = written_vm (root);
  /* Defaults are written... */
  g_assert_cmpint (json_object_get_int_member (object, "vcpus"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (object, "memory"), ==, "256MiB");
  g_assert_cmpstr (json_object_get_string_member (object, "machine"), ==, "default");
  g_assert_cmpstr (json_object_get_string_member (object, "user"), ==, "dynamic");
  console = json_array_get_object_element (json_object_get_array_member (object, "devices"),
                                           0);
  g_assert_cmpstr (json_object_get_string_member (console, "id"), ==, "console0");
  /* ...what is unset is not (the getters' defaults are not settings). */
  g_assert_false (json_object_has_member (object, "kernel"));
  g_assert_false (json_object_has_member (object, "runtime_dir"));
  g_assert_false (json_object_has_member (object, "hypervisor_path"));
  g_assert_false (json_object_has_member (object, "gateway"));
  g_assert_false (json_object_has_member (console, "log_path"));
  g_assert_true (g_str_has_suffix (json, "}\n"));
}

static void
test_written_sizes_use_the_largest_exact_unit (void)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("s", UVM_HYPERVISOR_QEMU);
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autoptr(JsonNode) root = NULL;

  uvm_vm_set_memory (vm, 3 * UVM_GIB / 2);
  json = uvm_vm_to_json (vm, &error);
  g_assert_no_error (error);
  root = json_from_string (json, &error);
  g_assert_cmpstr (json_object_get_string_member (written_vm (root), "memory"), ==, "1536MiB");
  g_clear_pointer (&json, g_free);
  g_clear_pointer (&root, json_node_unref);

  uvm_vm_set_memory (vm, 100 * UVM_MIB + 1);
  json = uvm_vm_to_json (vm, &error);
  g_assert_no_error (error);
  root = json_from_string (json, &error);
  g_assert_cmpint (json_object_get_int_member (written_vm (root), "memory"), ==,
                   100 * UVM_MIB + 1);
}

static void
test_written_user_is_uid_colon_gid (void)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("u", UVM_HYPERVISOR_QEMU);
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autoptr(JsonNode) root = NULL;

  uvm_vm_set_user (vm, 5000, 6000);
  json = uvm_vm_to_json (vm, &error);
  g_assert_no_error (error);
  root = json_from_string (json, &error);
  g_assert_cmpstr (json_object_get_string_member (written_vm (root), "user"), ==, "5000:6000");
}

/* ---- what cannot be written ------------------------------------------------ */

static void
test_writing_a_workstation_without_its_gateway_is_refused (void)
{
  g_autoptr(UvmVm) gw = uvm_vm_new ("gw", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmVm) ws = uvm_vm_new ("ws", UVM_HYPERVISOR_QEMU);
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;

  uvm_vm_set_gateway (ws, gw);
  json = uvm_vm_to_json (ws, &error);
  g_assert_null (json);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_cmpstr (error->message, ==, "vms[0]: VM 'ws' has gateway 'gw', which is not among "
                   "the VMs written; write both together");
}

static void
test_writing_two_networks_of_one_name_is_refused (void)
{
  g_autoptr(UvmVm) a = uvm_vm_new ("a", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmVm) b = uvm_vm_new ("b", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmNetwork) one = uvm_network_new_isolated ("lan");
  g_autoptr(UvmNetwork) other = uvm_network_new_isolated ("lan");
  UvmVm *const vms[] = { a, b };
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;

  uvm_vm_add_device (a, uvm_device_new_net (one, NULL));
  uvm_vm_add_device (b, uvm_device_new_rng ());
  uvm_vm_add_device (b, uvm_device_new_net (other, NULL));
  json = uvm_vms_to_json (vms, 2, &error);
  g_assert_null (json);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_cmpstr (error->message, ==, "vms[1].devices[1].network: two different networks are "
                   "named 'lan'; a document refers to networks by name");
}

static void
test_writing_two_vms_of_one_name_is_refused (void)
{
  g_autoptr(UvmVm) a = uvm_vm_new ("same", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmVm) b = uvm_vm_new ("same", UVM_HYPERVISOR_QEMU);
  UvmVm *const vms[] = { a, b };
  g_autoptr(GError) error = NULL;
  g_autofree char *json = uvm_vms_to_json (vms, 2, &error);

  g_assert_null (json);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_cmpstr (error->message, ==, "vms[1]: two of the VMs are named 'same'; a document "
                   "names each VM once");
}

/* ---- refused documents: each error names its path ----------------------------- */

typedef struct {
  const char *name;
  const char *json;      /* ' for " */
  const char *message;   /* the whole message, or its start when it ends in "..." */
} BadDocument;

#define VM0 "{'schema': 1, 'vms': [{'name': 'v', 'hypervisor': 'qemu', "

static const BadDocument bad_documents[] = {
  { "not-json", "{'schema': 1,\n 'vms': [}",
    "not JSON: line 2, column 10: unexpected character `}', expected character `]'" },
  { "text-after-the-document", "{'schema': 1, 'vms': []} x",
    "not JSON: line 1, column 26: ..." },
  { "empty-text", "",
    "not JSON: the text is empty" },
  { "document-not-an-object", "[1]",
    "document: expected an object, got an array" },
  { "schema-missing", "{'vms': []}",
    "schema: missing; a document starts with \"schema\": 1" },
  { "schema-unknown-version", "{'schema': 2, 'vms': []}",
    "schema: version 2 is not known to this libuvm, which reads version 1" },
  { "schema-not-a-number", "{'schema': '1', 'vms': []}",
    "schema: expected a whole number, got a string" },
  { "document-unknown-member", "{'schema': 1, 'vms': [], 'vm': {}}",
    "vm: unknown member; a document has: schema, networks, vms" },
  { "vms-missing", "{'schema': 1}",
    "vms: missing; a document defines its VMs in \"vms\"" },
  { "vms-empty", "{'schema': 1, 'vms': []}",
    "vms: empty; a document defines at least one VM" },
  { "vms-not-an-array", "{'schema': 1, 'vms': {}}",
    "vms: expected an array, got an object" },
  { "vm-not-an-object", "{'schema': 1, 'vms': ['v']}",
    "vms[0]: expected an object, got a string" },
  { "vm-unknown-member", VM0 "'memroy': '1G'}]}",
    "vms[0].memroy: unknown member; a VM has: name, hypervisor, machine, accel, kernel, "
    "initramfs, cmdline, vcpus, memory, extra_args, hypervisor_path, runtime_dir, "
    "start_paused, confined, user, control_timeout_ms, gateway, lifetime, log_dir, devices" },
  { "vm-name-missing", "{'schema': 1, 'vms': [{'hypervisor': 'qemu'}]}",
    "vms[0].name: missing; a VM needs it" },
  { "vm-hypervisor-missing", "{'schema': 1, 'vms': [{'name': 'v'}]}",
    "vms[0].hypervisor: missing; a VM needs it" },
  { "vm-hypervisor-unknown", "{'schema': 1, 'vms': [{'name': 'v', 'hypervisor': 'kvm'}]}",
    "vms[0].hypervisor: 'kvm' is not one of qemu, cloud-hypervisor" },
  { "vm-machine-unknown", VM0 "'machine': 'virt'}]}",
    "vms[0].machine: 'virt' is not one of default, q35, pc, microvm" },
  { "vm-accel-unknown", VM0 "'accel': 'hvf'}]}",
    "vms[0].accel: 'hvf' is not one of auto, kvm, tcg" },
  { "vm-vcpus-negative", VM0 "'vcpus': -1}]}",
    "vms[0].vcpus: -1 is out of range (0 to 4294967295)" },
  { "vm-vcpus-fraction", VM0 "'vcpus': 1.5}]}",
    "vms[0].vcpus: expected a whole number, got a fractional number" },
  { "vm-memory-not-a-size", VM0 "'memory': true}]}",
    "vms[0].memory: expected a size (a number of bytes or a string such as \"512MiB\"), "
    "got a boolean" },
  { "vm-memory-unknown-unit", VM0 "'memory': '512 MB'}]}",
    "vms[0].memory: expected a size such as \"512MiB\" (digits, then one of B, K, KiB, M, "
    "MiB, G, GiB, T, TiB), got '512 MB'" },
  { "vm-memory-too-large", VM0 "'memory': '99999999999TiB'}]}",
    "vms[0].memory: '99999999999TiB' is too large" },
  { "vm-start-paused-not-a-boolean", VM0 "'start_paused': 'yes'}]}",
    "vms[0].start_paused: expected true or false, got a string" },
  { "vm-cmdline-without-kernel", VM0 "'cmdline': 'quiet'}]}",
    "vms[0].cmdline: needs \"kernel\" (a VM that boots from its disk has neither)" },
  { "vm-initramfs-without-kernel", VM0 "'initramfs': '/i'}]}",
    "vms[0].initramfs: needs \"kernel\" (a VM that boots from its disk has neither)" },
  { "vm-extra-args-not-strings", VM0 "'extra_args': ['-m', 512]}]}",
    "vms[0].extra_args[1]: expected a string, got a number" },
  { "vm-user-malformed", VM0 "'user': 'root'}]}",
    "vms[0].user: expected \"dynamic\", \"caller\", \"UID\" or \"UID:GID\" (decimal ids below "
    "4294967294), got 'root'" },
  { "vm-user-special-number", VM0 "'user': '4294967295'}]}",
    "vms[0].user: expected \"dynamic\", \"caller\", \"UID\" or \"UID:GID\" (decimal ids below "
    "4294967294), got '4294967295'" },
  { "vm-kernel-null", VM0 "'kernel': null}]}",
    "vms[0].kernel: expected a string, got null" },
  { "vm-gateway-unknown", VM0 "'gateway': 'gw'}]}",
    "vms[0].gateway: no VM 'gw' in \"vms\"" },
  { "vm-name-twice", "{'schema': 1, 'vms': [{'name': 'v', 'hypervisor': 'qemu'}, "
    "{'name': 'v', 'hypervisor': 'qemu'}]}",
    "vms[1].name: 'v' names an earlier VM already" },
  { "device-kind-missing", VM0 "'devices': [{'id': 'x'}]}]}",
    "vms[0].devices[0].kind: missing; a device needs it (one of net, disk, console, rng, "
    "balloon)" },
  { "device-kind-unknown", VM0 "'devices': [{'kind': 'rng'}, {'kind': 'rng'}, "
    "{'kind': 'gpu'}]}]}",
    "vms[0].devices[2].kind: 'gpu' is not one of net, disk, console, rng, balloon" },
  { "device-member-of-another-kind", VM0 "'devices': [{'kind': 'disk', 'path': '/d', "
    "'mac': '02:00:00:00:00:01'}]}]}",
    "vms[0].devices[0].mac: unknown member; a 'disk' device has: kind, id, hotpluggable, "
    "path, format, read_only, create_size" },
  { "device-rng-with-a-path", VM0 "'devices': [{'kind': 'rng', 'path': '/dev/random'}]}]}",
    "vms[0].devices[0].path: unknown member; a 'rng' device has: kind, id, hotpluggable" },
  { "device-network-unknown", "{'schema': 1, 'networks': [{'name': 'wan', "
    "'kind': 'uplink'}], 'vms': [{'name': 'v', 'hypervisor': 'qemu', 'devices': ["
    "{'kind': 'net', 'network': 'wan'}, {'kind': 'net', 'network': 'lan'}]}]}",
    "vms[0].devices[1].network: no network 'lan' in \"networks\"" },
  { "device-network-missing", VM0 "'devices': [{'kind': 'net'}]}]}",
    "vms[0].devices[0].network: missing; a 'net' device needs it" },
  { "device-disk-path-missing", VM0 "'devices': [{'kind': 'disk'}]}]}",
    "vms[0].devices[0].path: missing; a 'disk' device needs it" },
  { "device-disk-format-unknown", VM0 "'devices': [{'kind': 'disk', 'path': '/d', "
    "'format': 'vmdk'}]}]}",
    "vms[0].devices[0].format: 'vmdk' is not one of raw, qcow2" },
  { "device-hotpluggable-not-a-boolean", VM0 "'devices': [{'kind': 'rng', "
    "'hotpluggable': 1}]}]}",
    "vms[0].devices[0].hotpluggable: expected true or false, got a number" },
  { "devices-not-an-array", VM0 "'devices': {'kind': 'rng'}}]}",
    "vms[0].devices: expected an array, got an object" },
  { "network-kind-unknown", "{'schema': 1, 'networks': [{'name': 'n', 'kind': 'vlan'}], "
    "'vms': [{'name': 'v', 'hypervisor': 'qemu'}]}",
    "networks[0].kind: 'vlan' is not one of isolated, uplink, tap, bridge" },
  { "network-kind-missing", "{'schema': 1, 'networks': [{'name': 'n'}], "
    "'vms': [{'name': 'v', 'hypervisor': 'qemu'}]}",
    "networks[0].kind: missing; a network needs it (one of isolated, uplink, tap, bridge)" },
  { "network-name-missing", "{'schema': 1, 'networks': [{'kind': 'isolated'}], "
    "'vms': [{'name': 'v', 'hypervisor': 'qemu'}]}",
    "networks[0].name: missing; a network needs it" },
  { "network-name-twice", "{'schema': 1, 'networks': [{'name': 'n', 'kind': 'isolated'}, "
    "{'name': 'n', 'kind': 'uplink'}], 'vms': [{'name': 'v', 'hypervisor': 'qemu'}]}",
    "networks[1].name: 'n' names an earlier network already" },
  { "network-tap-name-missing", "{'schema': 1, 'networks': [{'name': 't', 'kind': 'tap'}], "
    "'vms': [{'name': 'v', 'hypervisor': 'qemu'}]}",
    "networks[0].tap_name: missing; a network of kind 'tap' needs it" },
  { "network-host-bridge-missing", "{'schema': 1, 'networks': [{'name': 'b', "
    "'kind': 'bridge'}], 'vms': [{'name': 'v', 'hypervisor': 'qemu'}]}",
    "networks[0].host_bridge: missing; a network of kind 'bridge' needs it" },
  { "network-uplink-mode-on-isolated", "{'schema': 1, 'networks': [{'name': 'n', "
    "'kind': 'isolated', 'uplink_mode': 'passt'}], 'vms': [{'name': 'v', "
    "'hypervisor': 'qemu'}]}",
    "networks[0].uplink_mode: only a network of kind 'uplink' has it" },
  { "network-uplink-mode-unknown", "{'schema': 1, 'networks': [{'name': 'n', "
    "'kind': 'uplink', 'uplink_mode': 'slirp'}], 'vms': [{'name': 'v', "
    "'hypervisor': 'qemu'}]}",
    "networks[0].uplink_mode: 'slirp' is not one of auto, user, passt, tap-nat" },
  { "network-unknown-member", "{'schema': 1, 'networks': [{'name': 'n', "
    "'kind': 'isolated', 'mtu': 1500}], 'vms': [{'name': 'v', 'hypervisor': 'qemu'}]}",
    "networks[0].mtu: unknown member; a network has: name, kind, uplink_mode, tap_name, "
    "host_bridge" },
};

static void
check_message (const char *message, const char *expected)
{
  if (g_str_has_suffix (expected, "..."))
    {
      g_autofree char *start = g_strndup (expected, strlen (expected) - 3);

      if (!g_str_has_prefix (message, start))
        g_error ("message '%s' does not start with '%s'", message, start);
    }
  else
    g_assert_cmpstr (message, ==, expected);
}

static void
test_bad_document_is_refused_naming_its_path (gconstpointer data)
{
  const BadDocument *bad = data;
  g_autofree char *json = doc (bad->json);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) vms = uvm_vms_new_from_json (json, &error);

  g_assert_null (vms);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  check_message (error->message, bad->message);
}

static void
test_single_vm_form_refuses_two_vms (void)
{
  g_autofree char *json = doc ("{'schema': 1, 'vms': [{'name': 'a', 'hypervisor': 'qemu'}, "
                               "{'name': 'b', 'hypervisor': 'qemu'}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmVm) vm = uvm_vm_new_from_json (json, &error);

  g_assert_null (vm);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_cmpstr (error->message, ==, "vms: 2 VMs where one was expected (read a document of "
                   "several VMs with uvm_vms_new_from_json())");
}

static void
test_single_vm_form_reports_the_errors_of_the_document (void)
{
  g_autofree char *json = doc (VM0 "'vcpus': 'two'}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmVm) vm = uvm_vm_new_from_json (json, &error);

  g_assert_null (vm);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  g_assert_cmpstr (error->message, ==, "vms[0].vcpus: expected a whole number, got a string");
}

/* What the setters accept, loading accepts: validation refuses it later,
 * with the message a definition built in C gets. */
static void
test_definition_errors_are_left_to_validation (void)
{
  g_autoptr(UvmVm) vm = load_one (VM0 "'vcpus': 0}]}");
  g_autoptr(GError) error = NULL;

  g_assert_false (uvm_vm_validate (vm, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
}

/* ---- main ---------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/json/read/every-vm-member-reaches-its-setting",
                   test_every_vm_member_reaches_its_setting);
  g_test_add_func ("/json/read/every-device-member-reaches-its-setting",
                   test_every_device_member_reaches_its_setting);
  g_test_add_func ("/json/read/ids-and-macs-left-out-are-the-ones-add-device-gives",
                   test_ids_and_macs_left_out_are_the_ones_add_device_gives);
  g_test_add_func ("/json/read/network-kinds-and-their-members",
                   test_network_kinds_and_their_members);
  g_test_add_func ("/json/read/absent-members-leave-the-defaults-of-uvm-vm-new",
                   test_absent_members_leave_the_defaults_of_uvm_vm_new);
  g_test_add_func ("/json/read/sizes-are-bytes-or-binary-units",
                   test_sizes_are_bytes_or_binary_units);
  g_test_add_func ("/json/read/user-is-dynamic-caller-uid-or-uid-gid",
                   test_user_is_dynamic_caller_uid_or_uid_gid);
  g_test_add_func ("/json/read/relative-paths-are-taken-from-the-current-directory",
                   test_relative_paths_are_taken_from_the_current_directory);
  g_test_add_func ("/json/read/definition-errors-are-left-to-validation",
                   test_definition_errors_are_left_to_validation);
  g_test_add_func ("/json/schema-document-names-every-public-setter",
                   test_schema_document_names_every_public_setter);
  g_test_add_func ("/json/pair/schema-document-shows-the-whonix-pair-of-the-tests",
                   test_schema_document_shows_the_whonix_pair_of_the_tests);
  g_test_add_func ("/json/pair/whonix-pair-shares-one-network-and-sets-the-gateway",
                   test_whonix_pair_shares_one_network_and_sets_the_gateway);
  g_test_add_func ("/json/pair/a-workstation-may-come-before-its-gateway",
                   test_a_workstation_may_come_before_its_gateway);
  g_test_add_func ("/json/pair/written-and-read-again-is-the-same-document",
                   test_whonix_pair_written_and_read_again_is_the_same_document);
  g_test_add_func ("/json/write/sets-every-value-and-leaves-out-unset-ones",
                   test_written_document_sets_every_value_and_leaves_out_unset_ones);
  g_test_add_func ("/json/write/sizes-use-the-largest-exact-unit",
                   test_written_sizes_use_the_largest_exact_unit);
  g_test_add_func ("/json/write/user-is-uid-colon-gid", test_written_user_is_uid_colon_gid);
  g_test_add_func ("/json/write/a-workstation-without-its-gateway-is-refused",
                   test_writing_a_workstation_without_its_gateway_is_refused);
  g_test_add_func ("/json/write/two-networks-of-one-name-are-refused",
                   test_writing_two_networks_of_one_name_is_refused);
  g_test_add_func ("/json/write/two-vms-of-one-name-are-refused",
                   test_writing_two_vms_of_one_name_is_refused);
  for (guint i = 0; i < G_N_ELEMENTS (bad_documents); i++)
    {
      g_autofree char *path = g_strdup_printf ("/json/refused/%s", bad_documents[i].name);

      g_test_add_data_func (path, &bad_documents[i], test_bad_document_is_refused_naming_its_path);
    }
  g_test_add_func ("/json/refused/single-vm-form-with-two-vms",
                   test_single_vm_form_refuses_two_vms);
  g_test_add_func ("/json/refused/single-vm-form-reports-the-errors-of-the-document",
                   test_single_vm_form_reports_the_errors_of_the_document);

  return g_test_run ();
}
