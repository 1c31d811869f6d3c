/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The 0.3 additions to the public types, through the shared library: the
 * enum GTypes glib-mkenums generates, the hypervisor names, and the kernel
 * command line accessor under its new name (and its deprecated old one). */

#include <string.h>

#include <uvm/uvm.h>

/* ---- enum GTypes ------------------------------------------------------- */

/* @value of the enum @type has the C name @name and the nick @nick. */
static void
assert_enum_value (GType type, int value, const char *name, const char *nick)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  g_assert_nonnull (v);
  g_assert_cmpstr (v->value_name, ==, name);
  g_assert_cmpstr (v->value_nick, ==, nick);
  g_assert_true (g_enum_get_value_by_nick (klass, nick) == v);
}

static void
test_enum_types_are_enums_named_after_the_c_type (void)
{
  struct { GType type; const char *name; } types[] = {
    { UVM_TYPE_HYPERVISOR, "UvmHypervisor" },
    { UVM_TYPE_VM_STATE, "UvmVmState" },
    { UVM_TYPE_EVENT_KIND, "UvmEventKind" },
    { UVM_TYPE_MACHINE, "UvmMachine" },
    { UVM_TYPE_ACCEL, "UvmAccel" },
    { UVM_TYPE_DEVICE_KIND, "UvmDeviceKind" },
    { UVM_TYPE_NETWORK_KIND, "UvmNetworkKind" },
    { UVM_TYPE_UPLINK_MODE, "UvmUplinkMode" },
    { UVM_TYPE_STORAGE_FORMAT, "UvmStorageFormat" },
    { UVM_TYPE_FEATURE, "UvmFeature" },
    { UVM_TYPE_ERROR, "UvmError" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_assert_true (G_TYPE_IS_ENUM (types[i].type));
      g_assert_cmpstr (g_type_name (types[i].type), ==, types[i].name);
      /* Registered once: asking again gives the same type. */
      g_assert_true (g_type_from_name (types[i].name) == types[i].type);
    }
}

static void
test_enum_values_have_their_c_names_and_nicks (void)
{
  assert_enum_value (UVM_TYPE_HYPERVISOR, UVM_HYPERVISOR_CLOUD_HYPERVISOR,
                     "UVM_HYPERVISOR_CLOUD_HYPERVISOR", "cloud-hypervisor");
  assert_enum_value (UVM_TYPE_VM_STATE, UVM_VM_STATE_RUNNING, "UVM_VM_STATE_RUNNING", "running");
  assert_enum_value (UVM_TYPE_EVENT_KIND, UVM_EVENT_GUEST_PANIC, "UVM_EVENT_GUEST_PANIC",
                     "guest-panic");
  assert_enum_value (UVM_TYPE_UPLINK_MODE, UVM_UPLINK_TAP_NAT, "UVM_UPLINK_TAP_NAT", "tap-nat");
  assert_enum_value (UVM_TYPE_FEATURE, UVM_FEATURE_FIRMWARE_BOOT, "UVM_FEATURE_FIRMWARE_BOOT",
                     "firmware-boot");
  assert_enum_value (UVM_TYPE_ERROR, UVM_ERROR_INVALID_DEFINITION, "UVM_ERROR_INVALID_DEFINITION",
                     "invalid-definition");
}

static void
test_enum_types_cover_every_value (void)
{
  g_autoptr(GEnumClass) states = g_type_class_ref (UVM_TYPE_VM_STATE);
  g_autoptr(GEnumClass) hypervisors = g_type_class_ref (UVM_TYPE_HYPERVISOR);

  g_assert_cmpint (states->minimum, ==, UVM_VM_STATE_DEFINED);
  g_assert_cmpint (states->maximum, ==, UVM_VM_STATE_CRASHED);
  g_assert_cmpuint (states->n_values, ==, 7);
  g_assert_cmpuint (hypervisors->n_values, ==, 2);
}

/* The nicks are the names the library prints: the GType and
 * uvm_vm_state_to_string() agree on every state. */
static void
test_vm_state_nicks_match_uvm_vm_state_to_string (void)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (UVM_TYPE_VM_STATE);

  for (guint i = 0; i < klass->n_values; i++)
    g_assert_cmpstr (klass->values[i].value_nick, ==,
                     uvm_vm_state_to_string ((UvmVmState) klass->values[i].value));
}

/* ---- hypervisor names -------------------------------------------------- */

static void
test_hypervisor_to_string_names_each_backend (void)
{
  g_assert_cmpstr (uvm_hypervisor_to_string (UVM_HYPERVISOR_QEMU), ==, "qemu");
  g_assert_cmpstr (uvm_hypervisor_to_string (UVM_HYPERVISOR_CLOUD_HYPERVISOR), ==,
                   "cloud-hypervisor");
}

static void
test_hypervisor_to_string_of_an_unknown_value_is_null (void)
{
  g_assert_null (uvm_hypervisor_to_string ((UvmHypervisor) 42));
  g_assert_null (uvm_hypervisor_to_string ((UvmHypervisor) -1));
}

static void
test_hypervisor_from_string_parses_each_name (void)
{
  UvmHypervisor h = (UvmHypervisor) 42;

  g_assert_true (uvm_hypervisor_from_string ("qemu", &h));
  g_assert_cmpint (h, ==, UVM_HYPERVISOR_QEMU);
  g_assert_true (uvm_hypervisor_from_string ("cloud-hypervisor", &h));
  g_assert_cmpint (h, ==, UVM_HYPERVISOR_CLOUD_HYPERVISOR);
  /* @out is optional: a name can just be checked. */
  g_assert_true (uvm_hypervisor_from_string ("qemu", NULL));
}

static void
test_hypervisor_from_string_refuses_other_names (void)
{
  const char *bad[] = { "", "QEMU", "Qemu", "cloud_hypervisor", "qemu ", "kvm",
                        "qemu-system-x86_64", "cloud-hypervisor-standin" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      UvmHypervisor h = (UvmHypervisor) 42;

      g_assert_false (uvm_hypervisor_from_string (bad[i], &h));
      g_assert_cmpint (h, ==, 42);   /* left alone */
    }
  g_assert_false (uvm_hypervisor_from_string (NULL, NULL));
}

/* Every value of the enum has a name, and the name parses back to it. */
static void
test_hypervisor_names_round_trip (void)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (UVM_TYPE_HYPERVISOR);

  for (guint i = 0; i < klass->n_values; i++)
    {
      UvmHypervisor h = (UvmHypervisor) klass->values[i].value, back = (UvmHypervisor) 42;
      const char *name = uvm_hypervisor_to_string (h);

      g_assert_nonnull (name);
      g_assert_true (uvm_hypervisor_from_string (name, &back));
      g_assert_cmpint (back, ==, h);
    }
}

/* ---- kernel command line ----------------------------------------------- */

static void
test_kernel_cmdline_is_the_one_set (void)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("names", UVM_HYPERVISOR_QEMU);

  g_assert_null (uvm_vm_get_kernel_cmdline (vm));
  uvm_vm_set_kernel (vm, "/boot/vmlinuz", NULL, "console=ttyS0 quiet");
  g_assert_cmpstr (uvm_vm_get_kernel_cmdline (vm), ==, "console=ttyS0 quiet");
}

static void
test_deprecated_get_cmdline_still_answers_the_same (void)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("names", UVM_HYPERVISOR_QEMU);

  uvm_vm_set_kernel (vm, "/boot/vmlinuz", NULL, "console=ttyS0");
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_assert_cmpstr (uvm_vm_get_cmdline (vm), ==, "console=ttyS0");
  g_assert_true (uvm_vm_get_cmdline (vm) == uvm_vm_get_kernel_cmdline (vm));
  G_GNUC_END_IGNORE_DEPRECATIONS
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/enum-types/are-enums-named-after-the-c-type",
                   test_enum_types_are_enums_named_after_the_c_type);
  g_test_add_func ("/enum-types/values-have-their-c-names-and-nicks",
                   test_enum_values_have_their_c_names_and_nicks);
  g_test_add_func ("/enum-types/cover-every-value", test_enum_types_cover_every_value);
  g_test_add_func ("/enum-types/vm-state-nicks-match-uvm-vm-state-to-string",
                   test_vm_state_nicks_match_uvm_vm_state_to_string);
  g_test_add_func ("/hypervisor/to-string-names-each-backend",
                   test_hypervisor_to_string_names_each_backend);
  g_test_add_func ("/hypervisor/to-string-of-an-unknown-value-is-null",
                   test_hypervisor_to_string_of_an_unknown_value_is_null);
  g_test_add_func ("/hypervisor/from-string-parses-each-name",
                   test_hypervisor_from_string_parses_each_name);
  g_test_add_func ("/hypervisor/from-string-refuses-other-names",
                   test_hypervisor_from_string_refuses_other_names);
  g_test_add_func ("/hypervisor/names-round-trip", test_hypervisor_names_round_trip);
  g_test_add_func ("/vm/kernel-cmdline-is-the-one-set", test_kernel_cmdline_is_the_one_set);
  g_test_add_func ("/vm/deprecated-get-cmdline-still-answers-the-same",
                   test_deprecated_get_cmdline_still_answers_the_same);
  return g_test_run ();
}
