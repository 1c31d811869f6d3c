/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Validation before anything starts, and the identities (ids, MACs) a VM
 * gives its devices.  Uses the public API only, linked against the shared
 * library, so every call here also proves its symbol is exported.
 *
 * Nothing boots: a "kernel" is a small regular file in a temporary
 * directory, which is all validation looks at. */

#include "uvm-test-util.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

/* ---- fixture ----------------------------------------------------------- */

typedef struct {
  char *tmp;        /* removed with everything in it after each test */
  char *kernel;     /* a fake kernel: a small regular file */
  char *initramfs;  /* a fake initramfs */
  char *run_parent; /* tmp/run: must stay absent when a start is refused */
  char *rundir;     /* tmp/run/vm: the runtime dir given to VMs */
} Fixture;

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->tmp = g_dir_make_tmp ("uvm-test-validate-XXXXXX", &error);
  g_assert_no_error (error);
  fx->kernel = g_build_filename (fx->tmp, "vmlinuz", NULL);
  fx->initramfs = g_build_filename (fx->tmp, "initrd.img", NULL);
  fx->run_parent = g_build_filename (fx->tmp, "run", NULL);
  fx->rundir = g_build_filename (fx->run_parent, "vm", NULL);
  test_write_file (fx->kernel, "not really a kernel\n");
  test_write_file (fx->initramfs, "not really an initramfs\n");
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  test_remove_tree (fx->tmp);
  g_assert_false (g_file_test (fx->tmp, G_FILE_TEST_EXISTS));
  g_free (fx->tmp);
  g_free (fx->kernel);
  g_free (fx->initramfs);
  g_free (fx->run_parent);
  g_free (fx->rundir);
}

/* A VM that validates: fake kernel and initramfs, runtime dir in tmp. */
static UvmVm *
new_vm (Fixture *fx, const char *name)
{
  UvmVm *vm = uvm_vm_new (name, UVM_HYPERVISOR_QEMU);

  uvm_vm_set_kernel (vm, fx->kernel, fx->initramfs, "console=ttyS0");
  uvm_vm_set_runtime_dir (vm, fx->rundir);
  return vm;
}

static char *
tmp_path (Fixture *fx, const char *name)
{
  return g_build_filename (fx->tmp, name, NULL);
}

/* ---- assertions -------------------------------------------------------- */

static void
assert_mentions (const GError *error, const char *needle)
{
  /* Shown in the TAP output, so a failing strstr says what the message was. */
  g_test_message ("error message: %s", error->message);
  g_assert_nonnull (strstr (error->message, needle));
}

/* The definition is refused with @code by uvm_vm_validate() and, since they
 * validate too, by uvm_vm_get_command_line() and uvm_vm_get_launch_plan();
 * every message names @field (and @detail when not NULL). */
static void
assert_refused (UvmVm *vm, int code, const char *field, const char *detail)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) cmdline_error = NULL;
  g_autoptr(GError) plan_error = NULL;
  g_autofree char *cmdline = NULL;
  g_autofree char *plan = NULL;

  g_assert_false (uvm_vm_validate (vm, &error));
  g_assert_error (error, UVM_ERROR, code);
  assert_mentions (error, field);
  if (detail != NULL)
    assert_mentions (error, detail);

  cmdline = uvm_vm_get_command_line (vm, &cmdline_error);
  g_assert_null (cmdline);
  g_assert_error (cmdline_error, UVM_ERROR, code);
  g_assert_cmpstr (cmdline_error->message, ==, error->message);

  plan = uvm_vm_get_launch_plan (vm, &plan_error);
  g_assert_null (plan);
  g_assert_error (plan_error, UVM_ERROR, code);
  g_assert_cmpstr (plan_error->message, ==, error->message);
}

static void
assert_valid (UvmVm *vm)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_vm_validate (vm, &error));
  g_assert_no_error (error);
}

/* A refused start creates nothing: fails with @code like validation does,
 * leaves no runtime dir (nor its parent), no fd, and the state DEFINED. */
static void
assert_start_creates_nothing (Fixture *fx, UvmVm *vm, int code)
{
  g_autoptr(GError) validate_error = NULL;
  g_autoptr(GError) error = NULL;
  guint fds_before;

  g_assert_false (uvm_vm_validate (vm, &validate_error));
  g_assert_error (validate_error, UVM_ERROR, code);

  /* GLib's process-wide fds exist before we count: the default main
   * context's wakeup fd, and the worker context that GTask's class init
   * creates once (the first start would otherwise look like a leak). */
  g_type_ensure (G_TYPE_TASK);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  fds_before = test_count_fds ();

  g_assert_false (uvm_vm_start (vm, NULL, &error));
  g_assert_error (error, UVM_ERROR, code);
  g_assert_cmpstr (error->message, ==, validate_error->message);

  g_assert_false (g_file_test (fx->rundir, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (fx->run_parent, G_FILE_TEST_EXISTS));
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
  g_assert_false (uvm_vm_get_exit_status (vm, NULL, NULL));
  g_assert_cmpuint (test_count_fds (), ==, fds_before);
}

/* ---- a valid definition ------------------------------------------------ */

static void
test_valid_definition_validates (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "valid");
  g_autofree char *qemu = g_find_program_in_path ("qemu-system-x86_64");

  if (qemu == NULL)
    {
      g_test_skip ("qemu-system-x86_64 is not installed");
      return;
    }
  assert_valid (vm);
}

static void
test_defaults_are_documented_ones (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("defaults", UVM_HYPERVISOR_QEMU);

  g_assert_cmpuint (uvm_vm_get_vcpus (vm), ==, 1);
  g_assert_cmpuint (uvm_vm_get_memory (vm), ==, 256 * UVM_MIB);
  g_assert_cmpint (uvm_vm_get_machine (vm), ==, UVM_MACHINE_DEFAULT);
  g_assert_cmpint (uvm_vm_get_accel (vm), ==, UVM_ACCEL_AUTO);
  g_assert_cmpuint (uvm_vm_get_n_devices (vm), ==, 0);
  g_assert_null (uvm_vm_get_kernel (vm));
  g_assert_cmpstr (uvm_vm_get_hypervisor_path (vm), ==, "qemu-system-x86_64");
  g_assert_nonnull (uvm_vm_get_extra_args (vm));
  g_assert_null (uvm_vm_get_extra_args (vm)[0]);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
}

/* ---- vCPUs and memory -------------------------------------------------- */

static void
test_zero_vcpus_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");

  uvm_vm_set_vcpus (vm, 0);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "vcpus", NULL);
}

static void
test_too_many_vcpus_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");

  uvm_vm_set_vcpus (vm, UVM_VM_MAX_VCPUS + 1);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "vcpus", NULL);
}

static void
test_max_vcpus_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  /* The command line validates everything validate does except the binary. */
  uvm_vm_set_vcpus (vm, UVM_VM_MAX_VCPUS);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (cmdline, " -smp 255 "));
}

static void
test_memory_below_minimum_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");

  uvm_vm_set_memory (vm, UVM_VM_MIN_MEMORY - UVM_MIB);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "memory", NULL);
}

static void
test_minimum_memory_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  uvm_vm_set_memory (vm, UVM_VM_MIN_MEMORY);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (cmdline, " -m 64M "));
}

static void
test_memory_not_whole_mib_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");

  uvm_vm_set_memory (vm, 256 * UVM_MIB + 512 * UVM_KIB);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "memory", "whole number of MiB");
}

/* ---- payload ----------------------------------------------------------- */

static void
test_no_kernel_set_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("vm", UVM_HYPERVISOR_QEMU);

  uvm_vm_set_runtime_dir (vm, fx->rundir);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "kernel", "or add a disk");
}

/* A VM with no kernel and one disk image (an empty file: nothing boots). */
static UvmVm *
new_diskboot_vm (Fixture *fx, UvmHypervisor hypervisor)
{
  UvmVm *vm = uvm_vm_new ("vm", hypervisor);
  g_autofree char *image = tmp_path (fx, "boot.img");
  g_autoptr(UvmStorage) storage = uvm_storage_new_image (image);

  test_write_file (image, "");
  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  uvm_vm_set_runtime_dir (vm, fx->rundir);
  return vm;
}

static void
test_no_kernel_with_a_disk_boots_the_disk_on_qemu (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_diskboot_vm (fx, UVM_HYPERVISOR_QEMU);
  g_autoptr(GError) error = NULL;
  g_autofree char *cmdline = NULL;

  uvm_vm_set_machine (vm, UVM_MACHINE_PC);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_test_message ("command line: %s", cmdline);
  g_assert_null (strstr (cmdline, "-kernel"));
  g_assert_null (strstr (cmdline, "-initrd"));
  g_assert_null (strstr (cmdline, "-append"));
  g_assert_nonnull (strstr (cmdline, "id=disk0,drive=disk0-be,bootindex=0"));
}

static void
test_no_kernel_boots_only_the_first_disk (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_diskboot_vm (fx, UVM_HYPERVISOR_QEMU);
  g_autofree char *second = tmp_path (fx, "data.img");
  g_autoptr(UvmStorage) storage = uvm_storage_new_image (second);
  g_autoptr(GError) error = NULL;
  g_autofree char *cmdline = NULL;
  const char *first;

  test_write_file (second, "");
  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  first = strstr (cmdline, "bootindex=");
  g_assert_nonnull (first);
  g_assert_null (strstr (first + 1, "bootindex="));
  g_assert_nonnull (strstr (cmdline, "id=disk0,drive=disk0-be,bootindex=0"));
}

static void
test_kernel_with_a_disk_gives_no_bootindex (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_diskboot_vm (fx, UVM_HYPERVISOR_QEMU);
  g_autoptr(GError) error = NULL;
  g_autofree char *cmdline = NULL;

  uvm_vm_set_kernel (vm, fx->kernel, NULL, NULL);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (cmdline, "-kernel"));
  g_assert_null (strstr (cmdline, "bootindex"));
}

static void
test_no_kernel_on_microvm_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_diskboot_vm (fx, UVM_HYPERVISOR_QEMU);

  uvm_vm_set_machine (vm, UVM_MACHINE_MICROVM);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "kernel", "microvm");
}

static void
test_no_kernel_on_cloud_hypervisor_is_unsupported (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_diskboot_vm (fx, UVM_HYPERVISOR_CLOUD_HYPERVISOR);

  uvm_vm_set_hypervisor_path (vm, "/bin/true");
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "kernel",
                  "cloud-hypervisor does not support booting a disk through firmware");
}

static void
test_no_kernel_and_no_disk_on_cloud_hypervisor_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("vm", UVM_HYPERVISOR_CLOUD_HYPERVISOR);

  uvm_vm_set_runtime_dir (vm, fx->rundir);
  uvm_vm_set_hypervisor_path (vm, "/bin/true");
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "kernel", "no payload");
}

static void
test_missing_kernel_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *missing = tmp_path (fx, "no-such-vmlinuz");

  uvm_vm_set_kernel (vm, missing, NULL, NULL);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "kernel", missing);
}

/* As root access() reads anything, so "unreadable" is tested with paths no
 * one can read as a file: a directory and a dangling symlink. */
static void
test_kernel_that_is_a_directory_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *dir = tmp_path (fx, "kernel.d");

  g_assert_no_errno (g_mkdir (dir, 0700));
  uvm_vm_set_kernel (vm, dir, NULL, NULL);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "kernel", "is not a regular file");
}

static void
test_kernel_that_is_a_dangling_symlink_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *link = tmp_path (fx, "vmlinuz-link");
  g_autofree char *target = tmp_path (fx, "gone");

  g_assert_no_errno (symlink (target, link));
  uvm_vm_set_kernel (vm, link, NULL, NULL);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "kernel", "is not readable");
}

static void
test_missing_initramfs_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *missing = tmp_path (fx, "no-such-initrd");

  uvm_vm_set_kernel (vm, fx->kernel, missing, NULL);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "initramfs", missing);
}

/* ---- names and the runtime dir ----------------------------------------- */

static void
assert_name_refused (Fixture *fx, const char *name)
{
  g_autoptr(UvmVm) vm = new_vm (fx, name);

  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "name", NULL);
}

static void
test_empty_name_is_refused (Fixture *fx, gconstpointer data)
{
  assert_name_refused (fx, "");
}

static void
test_name_with_slash_is_refused (Fixture *fx, gconstpointer data)
{
  assert_name_refused (fx, "a/b");
}

static void
test_name_starting_with_dot_is_refused (Fixture *fx, gconstpointer data)
{
  assert_name_refused (fx, ".hidden");
}

static void
test_name_starting_with_dash_is_refused (Fixture *fx, gconstpointer data)
{
  assert_name_refused (fx, "-v");
}

static void
test_name_with_space_is_refused (Fixture *fx, gconstpointer data)
{
  assert_name_refused (fx, "my vm");
}

static void
test_name_longer_than_max_is_refused (Fixture *fx, gconstpointer data)
{
  g_autofree char *name = g_strnfill (UVM_VM_NAME_MAX + 1, 'a');

  assert_name_refused (fx, name);
}

static void
test_name_of_max_length_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autofree char *name = g_strnfill (UVM_VM_NAME_MAX, 'a');
  g_autoptr(UvmVm) vm = new_vm (fx, name);
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cmdline);
}

static void
test_name_with_dot_dash_underscore_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "web-1_prod.example");
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cmdline);
}

/* A runtime dir whose control socket path (DIR/control.sock) is @len bytes. */
static char *
rundir_for_control_path_length (Fixture *fx, gsize len)
{
  gsize suffix = strlen ("/control.sock");
  gsize prefix = strlen (fx->tmp) + 1;
  g_autofree char *pad = NULL;

  if (len < prefix + suffix + 1)
    return NULL;
  pad = g_strnfill (len - prefix - suffix, 'd');
  return g_build_filename (fx->tmp, pad, NULL);
}

static void
test_control_socket_path_too_long_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  /* sun_path holds 108 bytes including the terminating NUL. */
  g_autofree char *rundir = rundir_for_control_path_length (fx, 108);
  g_autofree char *control = NULL;

  if (rundir == NULL)
    {
      g_test_skip ("the temporary directory's path is too long for this test");
      return;
    }
  uvm_vm_set_runtime_dir (vm, rundir);
  g_assert_cmpstr (uvm_vm_get_runtime_dir (vm), ==, rundir);
  control = g_build_filename (rundir, "control.sock", NULL);
  g_assert_cmpuint (strlen (control), ==, 108);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "runtime-dir", control);
}

static void
test_control_socket_path_of_107_bytes_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *rundir = rundir_for_control_path_length (fx, 107);
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  if (rundir == NULL)
    {
      g_test_skip ("the temporary directory's path is too long for this test");
      return;
    }
  uvm_vm_set_runtime_dir (vm, rundir);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cmdline);
}

/* ---- devices ----------------------------------------------------------- */

static void
test_duplicate_device_ids_are_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  UvmDevice *a = uvm_device_new_rng ();
  UvmDevice *b = uvm_device_new_console (NULL);

  uvm_device_set_id (a, "same");
  uvm_device_set_id (b, "same");
  uvm_vm_add_device (vm, a);
  uvm_vm_add_device (vm, b);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[1]", "'same'");
}

static void
test_explicit_id_equal_to_a_default_id_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  UvmDevice *explicit_id = uvm_device_new_console (NULL);

  /* The rng added second gets "rng0", which the console took already. */
  uvm_device_set_id (explicit_id, "rng0");
  uvm_vm_add_device (vm, explicit_id);
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[1]", "'rng0'");
}

static void
test_malformed_device_id_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  UvmDevice *dev = uvm_device_new_rng ();

  uvm_device_set_id (dev, "0rng,x");   /* starts with a digit, has a comma */
  uvm_vm_add_device (vm, dev);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[0]", "id");
}

static void
test_device_id_longer_than_31_bytes_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  UvmDevice *dev = uvm_device_new_rng ();
  g_autofree char *id = g_strnfill (32, 'r');

  uvm_device_set_id (dev, id);
  uvm_vm_add_device (vm, dev);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[0]", "id");
}

static void
test_device_id_of_31_bytes_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  UvmDevice *dev = uvm_device_new_rng ();
  g_autofree char *id = g_strnfill (31, 'r');
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  uvm_device_set_id (dev, id);
  uvm_vm_add_device (vm, dev);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (cmdline, id));
}

static void
test_malformed_mac_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autoptr(UvmNetwork) net = uvm_network_new_uplink ("wan");

  uvm_vm_add_device (vm, uvm_device_new_net (net, "52:54:00:12:34"));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[0]", "52:54:00:12:34");
}

static void
test_multicast_mac_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autoptr(UvmNetwork) net = uvm_network_new_uplink ("wan");

  /* First octet odd: the group bit. */
  uvm_vm_add_device (vm, uvm_device_new_net (net, "53:54:00:12:34:56"));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[0]", "53:54:00:12:34:56");
}

static void
test_hotpluggable_device_on_microvm_is_unsupported (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  UvmDevice *dev = uvm_device_new_rng ();

  uvm_vm_set_machine (vm, UVM_MACHINE_MICROVM);
  uvm_device_set_hotpluggable (dev, TRUE);
  g_assert_true (uvm_device_get_hotpluggable (dev));
  uvm_vm_add_device (vm, dev);
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "devices[0]", "hotpluggable");
}

static void
test_hotpluggable_device_on_q35_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  UvmDevice *dev = uvm_device_new_rng ();
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  uvm_vm_set_machine (vm, UVM_MACHINE_Q35);
  uvm_device_set_hotpluggable (dev, TRUE);
  uvm_vm_add_device (vm, dev);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cmdline);
}

static void
test_third_member_makes_isolated_network_a_bridge (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("triangle");
  g_autoptr(UvmVm) a = new_vm (fx, "a");
  g_autoptr(UvmVm) b = new_vm (fx, "b");
  g_autoptr(UvmVm) c = new_vm (fx, "c");
  g_autofree char *cmdline = NULL, *plan_b = NULL, *plan_c = NULL;
  g_autoptr(GError) error = NULL;

  uvm_vm_add_device (a, uvm_device_new_net (net, NULL));
  uvm_vm_add_device (b, uvm_device_new_net (net, NULL));
  cmdline = uvm_vm_get_command_line (b, &error);   /* two are a link */
  g_assert_no_error (error);
  g_assert_nonnull (strstr (cmdline, "dgram"));

  /* A third member: the same network is now a bridge for every member,
   * and the plans say so. */
  uvm_vm_add_device (c, uvm_device_new_net (net, NULL));
  g_assert_true (uvm_vm_validate (c, &error));
  g_assert_no_error (error);
  plan_b = uvm_vm_get_launch_plan (b, &error);
  g_assert_no_error (error);
  plan_c = uvm_vm_get_launch_plan (c, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (plan_b, "dgram"));
  g_assert_nonnull (strstr (plan_b, "tap,id="));
  g_assert_nonnull (strstr (plan_b, "on bridge 'uvb"));
  g_assert_nonnull (strstr (plan_c, "on bridge 'uvb"));
  g_assert_nonnull (strstr (plan_c, "open port"));
}

static void
test_two_consoles_are_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");

  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[1]", "console");
}

static void
test_missing_disk_image_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *missing = tmp_path (fx, "no-such-disk.img");
  g_autoptr(UvmStorage) storage = uvm_storage_new_image (missing);

  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[0]", missing);
}

static void
test_missing_raw_image_with_create_size_is_accepted (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *missing = tmp_path (fx, "new-disk.img");
  g_autoptr(UvmStorage) storage = uvm_storage_new_image (missing);
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  uvm_storage_set_create_size (storage, 16 * UVM_MIB);
  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cmdline);
  /* Validating creates nothing: the image is made at start. */
  g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
}

static void
test_read_only_storage_with_create_size_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *path = tmp_path (fx, "ro.img");
  g_autoptr(UvmStorage) storage = uvm_storage_new_image (path);

  uvm_storage_set_read_only (storage, TRUE);
  uvm_storage_set_create_size (storage, 16 * UVM_MIB);
  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[0]", "read-only");
}

static void
test_qcow2_storage_with_create_size_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *path = tmp_path (fx, "disk.qcow2");
  g_autoptr(UvmStorage) storage = uvm_storage_new_image (path);

  uvm_storage_set_format (storage, UVM_STORAGE_FORMAT_QCOW2);
  uvm_storage_set_create_size (storage, 16 * UVM_MIB);
  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "devices[0]", "raw");
}

/* ---- the hypervisor ---------------------------------------------------- */

/* uvm_vm_validate() looks the binary up; uvm_vm_get_command_line() is pure
 * and does not, so it still prints the command line. */
static void
assert_binary_refused_by_validate_only (UvmVm *vm, const char *binary)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) cmdline_error = NULL;
  g_autofree char *cmdline = NULL;
  g_auto(GStrv) argv = NULL;

  g_assert_false (uvm_vm_validate (vm, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  assert_mentions (error, "hypervisor-path");
  assert_mentions (error, binary);

  cmdline = uvm_vm_get_command_line (vm, &cmdline_error);
  g_assert_no_error (cmdline_error);
  g_assert_true (g_shell_parse_argv (cmdline, NULL, &argv, NULL));
  g_assert_cmpstr (argv[0], ==, binary);
}

static void
test_hypervisor_not_in_path_is_refused_by_validate_not_by_command_line (Fixture *fx,
                                                                        gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  const char *name = "uvm-test-no-such-hypervisor";

  uvm_vm_set_hypervisor_path (vm, name);
  g_assert_cmpstr (uvm_vm_get_hypervisor_path (vm), ==, name);
  assert_binary_refused_by_validate_only (vm, name);
}

static void
test_hypervisor_not_executable_is_refused_by_validate_not_by_command_line (Fixture *fx,
                                                                           gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *path = tmp_path (fx, "qemu-not-executable");

  /* Mode 0644: no execute bit, which stops root as well. */
  test_write_file (path, "#!/bin/sh\nexit 0\n");
  g_assert_no_errno (chmod (path, 0644));
  uvm_vm_set_hypervisor_path (vm, path);
  assert_binary_refused_by_validate_only (vm, path);
}

/* cloud-hypervisor: what it lacks is refused before anything starts. */
static UvmVm *
new_ch_vm (Fixture *fx)
{
  UvmVm *vm = uvm_vm_new ("vm", UVM_HYPERVISOR_CLOUD_HYPERVISOR);

  uvm_vm_set_kernel (vm, fx->kernel, NULL, NULL);
  uvm_vm_set_runtime_dir (vm, fx->rundir);
  /* Validation looks the binary up last; any executable will do here. */
  uvm_vm_set_hypervisor_path (vm, "/bin/true");
  return vm;
}

static void
test_cloud_hypervisor_refuses_qemu_machine_types (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);

  assert_valid (vm);
  uvm_vm_set_machine (vm, UVM_MACHINE_MICROVM);
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "machine", "microvm");
}

static void
test_cloud_hypervisor_refuses_software_emulation (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);

  uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "accel", "KVM");
}

static void
test_cloud_hypervisor_refuses_user_mode_networking (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_USER);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "net0", "user-mode");
  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_PASST);
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "net0", "passt");
}

static void
test_cloud_hypervisor_refuses_passt_uplink (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_PASST);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "net0", "passt");
}

/* passt is looked up in PATH like the hypervisor: by validation and start,
 * not by the pure command line. */
static void
test_passt_not_in_path_is_refused_by_validate (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "gw");
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");
  g_autofree char *old_path = g_strdup (g_getenv ("PATH"));
  g_autofree char *line = NULL;
  g_autoptr(GError) error = NULL;
  gboolean valid;

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_PASST);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  uvm_vm_set_hypervisor_path (vm, "/bin/true");
  g_setenv ("PATH", fx->tmp, TRUE);   /* holds no passt */
  valid = uvm_vm_validate (vm, &error);
  line = uvm_vm_get_command_line (vm, NULL);
  g_setenv ("PATH", old_path, TRUE);
  g_assert_false (valid);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  assert_mentions (error, "net0");
  assert_mentions (error, "'passt'");
  assert_mentions (error, "'up'");
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "passt "));
}

/* An uplink left on AUTO is a library-made tap with NAT on
 * cloud-hypervisor, and stays user-mode networking on qemu. */
static void
test_auto_uplink_follows_the_hypervisor (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) ch = new_ch_vm (fx);
  g_autoptr(UvmVm) qemu = new_vm (fx, "gw");
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");
  g_autoptr(UvmNetwork) uplink2 = uvm_network_new_uplink ("up2");
  g_autofree char *ch_plan = NULL, *qemu_line = NULL;
  g_autoptr(GError) error = NULL;

  uvm_vm_add_device (ch, uvm_device_new_net (uplink, NULL));
  uvm_vm_add_device (qemu, uvm_device_new_net (uplink2, NULL));
  ch_plan = uvm_vm_get_launch_plan (ch, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (ch_plan, "host side 10.0.2.2/24"));
  g_assert_nonnull (strstr (ch_plan, "nftables table 'ip uvm_uvt"));
  qemu_line = uvm_vm_get_command_line (qemu, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (qemu_line, "-netdev user,id="));
  g_assert_cmpint (uvm_network_get_uplink_mode (uplink), ==, UVM_UPLINK_AUTO);
}

/* A detached VM outlives its launcher's objects: a tap+NAT uplink (whose
 * NAT table the launcher's network holds) is refused, naming the device
 * and what to use instead; the same VM attached, or with passt, is fine. */
static void
test_detached_vm_refuses_tap_nat_uplink (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = NULL;

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_TAP_NAT);
  uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
  uvm_vm_set_lifetime (vm, UVM_VM_LIFETIME_DETACHED);
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "net0", "passt uplink");
  uvm_vm_set_lifetime (vm, UVM_VM_LIFETIME_ATTACHED);
  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_clear_pointer (&plan, g_free);
  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_PASST);
  uvm_vm_set_lifetime (vm, UVM_VM_LIFETIME_DETACHED);
  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
}

/* Tap names the user sets must be names the kernel accepts; so must a
 * host bridge's. */
static void
test_tap_and_bridge_names_are_checked (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autoptr(UvmNetwork) bridged = uvm_network_new_bridge ("lan", "br-with-a-much-too-long-name");
  g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("up");
  UvmDevice *nic = uvm_device_new_net (uplink, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  uvm_network_set_uplink_mode (uplink, UVM_UPLINK_TAP_NAT);
  uvm_device_set_tap_name (nic, "bad/name");
  uvm_vm_add_device (vm, nic);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "net0", "tap name 'bad/name'");
  uvm_device_set_tap_name (nic, "0123456789abcdef");
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "net0", "1-15 bytes");
  uvm_device_set_tap_name (nic, "gw-up");
  g_assert_cmpstr (uvm_device_get_tap_name (nic), ==, "gw-up");
  line = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (line, "tap 'gw-up'"));
  g_assert_nonnull (strstr (line, "table 'ip uvm_gw_up'"));

  uvm_vm_add_device (vm, uvm_device_new_net (bridged, NULL));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "net1", "host bridge");
  g_assert_cmpstr (uvm_network_get_host_bridge (bridged), ==, "br-with-a-much-too-long-name");
  g_assert_null (uvm_network_get_host_bridge (uplink));
}

/* cloud-hypervisor has no socket netdev: an isolated network with a
 * cloud-hypervisor member is built as a bridge, for all its members. */
static void
test_cloud_hypervisor_isolated_network_is_a_bridge (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);
  g_autoptr(UvmVm) peer = new_vm (fx, "peer");
  g_autoptr(UvmNetwork) link = uvm_network_new_isolated ("link");
  g_autofree char *plan = NULL, *peer_plan = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (uvm_hypervisor_supports (UVM_HYPERVISOR_CLOUD_HYPERVISOR,
                                          UVM_FEATURE_BRIDGE_LINK));
  g_assert_true (uvm_hypervisor_supports (UVM_HYPERVISOR_QEMU, UVM_FEATURE_BRIDGE_LINK));
  g_assert_false (uvm_hypervisor_supports (UVM_HYPERVISOR_CLOUD_HYPERVISOR,
                                           UVM_FEATURE_SOCKET_LINK));
  uvm_vm_add_device (vm, uvm_device_new_net (link, NULL));
  uvm_vm_add_device (peer, uvm_device_new_net (link, NULL));
  g_assert_true (uvm_vm_validate (vm, &error));
  g_assert_no_error (error);
  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (plan, "on bridge 'uvb"));
  g_assert_nonnull (strstr (plan, "vm.add-net"));
  peer_plan = uvm_vm_get_launch_plan (peer, &error);   /* a qemu member of it */
  g_assert_no_error (error);
  g_assert_null (strstr (peer_plan, "dgram"));
  g_assert_nonnull (strstr (peer_plan, "on bridge 'uvb"));
}

static void
test_cloud_hypervisor_binary_not_found (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);
  g_autoptr(GError) error = NULL;

  uvm_vm_set_hypervisor_path (vm, "no-such-cloud-hypervisor-binary");
  g_assert_false (uvm_vm_validate (vm, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_INVALID_DEFINITION);
  assert_mentions (error, "hypervisor-path");
}

static void
test_backends_state_what_they_support (Fixture *fx, gconstpointer data)
{
  const UvmHypervisor qemu = UVM_HYPERVISOR_QEMU, ch = UVM_HYPERVISOR_CLOUD_HYPERVISOR;

  g_assert_true (uvm_hypervisor_supports (qemu, UVM_FEATURE_SOCKET_LINK));
  g_assert_true (uvm_hypervisor_supports (qemu, UVM_FEATURE_USER_NETWORK));
  g_assert_true (uvm_hypervisor_supports (qemu, UVM_FEATURE_MACHINE_MICROVM));
  g_assert_true (uvm_hypervisor_supports (qemu, UVM_FEATURE_SOFTWARE_EMULATION));
  g_assert_true (uvm_hypervisor_supports (qemu, UVM_FEATURE_RAW_QMP));
  g_assert_false (uvm_hypervisor_supports (qemu, UVM_FEATURE_RAW_REST));
  g_assert_true (uvm_hypervisor_supports (qemu, UVM_FEATURE_FIRMWARE_BOOT));

  g_assert_true (uvm_hypervisor_supports (ch, UVM_FEATURE_TAP_NETWORK));
  g_assert_true (uvm_hypervisor_supports (ch, UVM_FEATURE_BALLOON));
  g_assert_true (uvm_hypervisor_supports (ch, UVM_FEATURE_QCOW2));
  g_assert_true (uvm_hypervisor_supports (ch, UVM_FEATURE_RAW_REST));
  g_assert_false (uvm_hypervisor_supports (ch, UVM_FEATURE_USER_NETWORK));
  g_assert_false (uvm_hypervisor_supports (ch, UVM_FEATURE_SOCKET_LINK));
  g_assert_false (uvm_hypervisor_supports (ch, UVM_FEATURE_MACHINE_Q35));
  g_assert_false (uvm_hypervisor_supports (ch, UVM_FEATURE_MACHINE_MICROVM));
  g_assert_false (uvm_hypervisor_supports (ch, UVM_FEATURE_SOFTWARE_EMULATION));
  g_assert_false (uvm_hypervisor_supports (ch, UVM_FEATURE_RAW_QMP));
  g_assert_false (uvm_hypervisor_supports (ch, UVM_FEATURE_FIRMWARE_BOOT));

  g_assert_false (uvm_hypervisor_supports (qemu, (UvmFeature) 999));
  g_assert_false (uvm_hypervisor_supports ((UvmHypervisor) 42, UVM_FEATURE_QCOW2));
}

/* The table and validation agree: what a backend lacks, it refuses. */
static void
test_unsupported_feature_is_refused_as_the_table_says (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);

  g_assert_false (uvm_hypervisor_supports (UVM_HYPERVISOR_CLOUD_HYPERVISOR, UVM_FEATURE_MACHINE_PC));
  uvm_vm_set_machine (vm, UVM_MACHINE_PC);
  assert_refused (vm, UVM_ERROR_UNSUPPORTED, "machine", "does not support");
}

static void
test_missing_tap_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_ch_vm (fx);
  g_autoptr(UvmNetwork) tap = uvm_network_new_tap ("t", "uvmnosuchtap0");

  uvm_vm_add_device (vm, uvm_device_new_net (tap, NULL));
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "net0", "does not exist");
}

/* ---- a refused start creates nothing ------------------------------------ */

static void
test_start_with_bad_memory_creates_nothing (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");

  uvm_vm_set_memory (vm, 100 * UVM_MIB + 1);
  assert_start_creates_nothing (fx, vm, UVM_ERROR_INVALID_DEFINITION);
}

static void
test_start_with_missing_kernel_creates_nothing (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autofree char *missing = tmp_path (fx, "no-such-vmlinuz");

  uvm_vm_set_kernel (vm, missing, NULL, NULL);
  assert_start_creates_nothing (fx, vm, UVM_ERROR_INVALID_DEFINITION);
}

static void
test_start_with_missing_hypervisor_creates_nothing (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");

  uvm_vm_set_hypervisor_path (vm, "uvm-test-no-such-hypervisor");
  assert_start_creates_nothing (fx, vm, UVM_ERROR_INVALID_DEFINITION);
}

/* ---- derived identity --------------------------------------------------- */

static gboolean
mac_is_well_formed (const char *mac)
{
  return g_regex_match_simple ("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", mac, 0, 0);
}

/* The MAC a fresh VM named @vm_name derives for a net device on a fresh
 * isolated network named @net_name. */
static char *
derived_mac (const char *vm_name, const char *net_name)
{
  g_autoptr(UvmVm) vm = uvm_vm_new (vm_name, UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated (net_name);
  UvmDevice *dev = uvm_device_new_net (net, NULL);

  g_assert_null (uvm_device_get_mac (dev));
  uvm_vm_add_device (vm, dev);
  g_assert_nonnull (uvm_device_get_mac (dev));
  return g_strdup (uvm_device_get_mac (dev));
}

static void
test_derived_mac_is_locally_administered_unicast (Fixture *fx, gconstpointer data)
{
  g_autofree char *mac = derived_mac ("alpha", "lan");
  guint first;

  g_test_message ("derived MAC: %s", mac);
  g_assert_true (mac_is_well_formed (mac));
  first = (guint) g_ascii_strtoull (mac, NULL, 16);
  g_assert_cmpuint (first & 3, ==, 2);
}

static void
test_derived_mac_is_stable_for_same_names (Fixture *fx, gconstpointer data)
{
  g_autofree char *first = derived_mac ("alpha", "lan");
  g_autofree char *second = derived_mac ("alpha", "lan");

  g_assert_cmpstr (first, ==, second);
}

static void
test_derived_mac_differs_for_another_vm_name (Fixture *fx, gconstpointer data)
{
  g_autofree char *alpha = derived_mac ("alpha", "lan");
  g_autofree char *beta = derived_mac ("beta", "lan");

  g_assert_cmpstr (alpha, !=, beta);
}

static void
test_derived_mac_differs_for_another_network_name (Fixture *fx, gconstpointer data)
{
  g_autofree char *lan = derived_mac ("alpha", "lan");
  g_autofree char *dmz = derived_mac ("alpha", "dmz");

  g_assert_cmpstr (lan, !=, dmz);
}

static void
test_derived_mac_validates (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "vm");
  g_autoptr(UvmNetwork) net = uvm_network_new_uplink ("wan");
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;

  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (cmdline, uvm_device_get_mac (uvm_vm_get_device (vm, 0))));
}

static void
test_explicit_mac_is_kept (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("alpha", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  UvmDevice *dev = uvm_device_new_net (net, "52:54:00:12:34:56");

  g_assert_cmpstr (uvm_device_get_mac (dev), ==, "52:54:00:12:34:56");
  uvm_vm_add_device (vm, dev);
  g_assert_cmpstr (uvm_device_get_mac (dev), ==, "52:54:00:12:34:56");
  g_assert_true (uvm_device_get_network (dev) == net);
}

static void
test_default_ids_follow_kind_and_order (Fixture *fx, gconstpointer data)
{
  static const char *const expected[] = { "net0", "disk0", "net1", "console0", "rng0", "disk1" };
  g_autoptr(UvmVm) vm = uvm_vm_new ("vm", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmNetwork) net = uvm_network_new_uplink ("wan");
  g_autofree char *image = tmp_path (fx, "disk.img");
  g_autoptr(UvmStorage) storage = uvm_storage_new_image (image);
  UvmDevice *devices[] = {
    uvm_device_new_net (net, NULL),
    uvm_device_new_disk (storage),
    uvm_device_new_net (net, NULL),
    uvm_device_new_console (NULL),
    uvm_device_new_rng (),
    uvm_device_new_disk (storage),
  };

  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    {
      g_assert_null (uvm_device_get_id (devices[i]));
      uvm_vm_add_device (vm, devices[i]);
    }
  g_assert_cmpuint (uvm_vm_get_n_devices (vm), ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_assert_true (uvm_vm_get_device (vm, i) == devices[i]);
      g_assert_cmpstr (uvm_device_get_id (devices[i]), ==, expected[i]);
    }
  g_assert_null (uvm_vm_get_device (vm, G_N_ELEMENTS (expected)));
}

static void
test_explicit_id_is_kept (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("vm", UVM_HYPERVISOR_QEMU);
  UvmDevice *dev = uvm_device_new_rng ();

  uvm_device_set_id (dev, "entropy");
  uvm_vm_add_device (vm, dev);
  g_assert_cmpstr (uvm_device_get_id (dev), ==, "entropy");
}

static void
test_device_of_another_vm_is_refused_with_a_critical (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) first = uvm_vm_new ("first", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmVm) second = uvm_vm_new ("second", UVM_HYPERVISOR_QEMU);
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autofree char *first_mac = derived_mac ("first", "lan");
  UvmDevice *dev = uvm_device_new_net (net, NULL);

  uvm_vm_add_device (first, dev);
  g_assert_cmpstr (uvm_device_get_mac (dev), ==, first_mac);

  /* The VM takes over a reference (transfer full), so give it one of its
   * own; the refused add drops it again. */
  g_test_expect_message ("uvm", G_LOG_LEVEL_CRITICAL, "*belongs to another VM*");
  uvm_vm_add_device (second, g_object_ref (dev));
  g_test_assert_expected_messages ();

  g_assert_cmpuint (uvm_vm_get_n_devices (second), ==, 0);
  g_assert_cmpuint (uvm_vm_get_n_devices (first), ==, 1);
  g_assert_true (uvm_vm_get_device (first, 0) == dev);
  g_assert_cmpstr (uvm_device_get_id (dev), ==, "net0");
  g_assert_cmpstr (uvm_device_get_mac (dev), ==, first_mac);
  /* Fail closed: the VM missing the device is not a valid definition. */
  uvm_vm_set_kernel (second, fx->kernel, NULL, NULL);
  uvm_vm_set_runtime_dir (second, fx->rundir);
  assert_refused (second, UVM_ERROR_INVALID_DEFINITION, "devices[0]", "belongs to another VM");
  assert_start_creates_nothing (fx, second, UVM_ERROR_INVALID_DEFINITION);
}

/* ---- the gateway relation ------------------------------------------------ */

/* A workstation and a gateway on one isolated network, as the pair has. */
static void
add_link (UvmVm *vm, UvmNetwork *net)
{
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
}

static void
test_vm_as_its_own_gateway_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "ws");
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("int");

  add_link (vm, net);
  uvm_vm_set_gateway (vm, vm);   /* no critical: a definition error */
  g_assert_true (uvm_vm_get_gateway (vm) == vm);
  assert_refused (vm, UVM_ERROR_INVALID_DEFINITION, "gateway", "its own gateway");
  assert_start_creates_nothing (fx, vm, UVM_ERROR_INVALID_DEFINITION);
  /* Clearing it makes the definition valid again. */
  uvm_vm_set_gateway (vm, NULL);
  g_assert_null (uvm_vm_get_gateway (vm));
  assert_valid (vm);
}

static void
test_gateway_cycle_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) a = new_vm (fx, "a");
  g_autoptr(UvmVm) b = new_vm (fx, "b");
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("int");

  add_link (a, net);
  add_link (b, net);
  uvm_vm_set_gateway (a, b);
  uvm_vm_set_gateway (b, a);
  assert_refused (a, UVM_ERROR_INVALID_DEFINITION, "gateway", "cycle ('a' -> 'b' -> 'a'");
  assert_refused (b, UVM_ERROR_INVALID_DEFINITION, "gateway", "cycle ('b' -> 'a' -> 'b'");
  assert_start_creates_nothing (fx, a, UVM_ERROR_INVALID_DEFINITION);
}

static void
test_longer_gateway_cycle_is_refused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) a = new_vm (fx, "a");
  g_autoptr(UvmVm) b = new_vm (fx, "b");
  g_autoptr(UvmVm) c = new_vm (fx, "c");

  uvm_vm_set_gateway (a, b);
  uvm_vm_set_gateway (b, c);
  uvm_vm_set_gateway (c, b);   /* a is behind a cycle it is not part of */
  assert_refused (a, UVM_ERROR_INVALID_DEFINITION, "gateway", "cycle");
}

static void
test_gateway_chain_without_cycle_validates (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) ws = new_vm (fx, "ws");
  g_autoptr(UvmVm) gw = new_vm (fx, "gw");
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("int");

  add_link (ws, net);
  add_link (gw, net);
  uvm_vm_set_gateway (ws, gw);
  /* Validation checks the relation, not that the gateway runs (start does). */
  assert_valid (ws);
  assert_valid (gw);
}

/* ---- main ---------------------------------------------------------------- */

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/validate/valid-definition-validates", test_valid_definition_validates);
  ADD ("/validate/new-vm-has-documented-defaults", test_defaults_are_documented_ones);

  ADD ("/validate/zero-vcpus-is-refused", test_zero_vcpus_is_refused);
  ADD ("/validate/more-than-max-vcpus-is-refused", test_too_many_vcpus_is_refused);
  ADD ("/validate/max-vcpus-is-accepted", test_max_vcpus_is_accepted);
  ADD ("/validate/memory-below-minimum-is-refused", test_memory_below_minimum_is_refused);
  ADD ("/validate/minimum-memory-is-accepted", test_minimum_memory_is_accepted);
  ADD ("/validate/memory-not-whole-mib-is-refused", test_memory_not_whole_mib_is_refused);

  ADD ("/validate/kernel/not-set-is-refused", test_no_kernel_set_is_refused);
  ADD ("/validate/kernel/none-with-a-disk-boots-the-disk-on-qemu",
       test_no_kernel_with_a_disk_boots_the_disk_on_qemu);
  ADD ("/validate/kernel/none-boots-only-the-first-disk", test_no_kernel_boots_only_the_first_disk);
  ADD ("/validate/kernel/set-with-a-disk-gives-no-bootindex",
       test_kernel_with_a_disk_gives_no_bootindex);
  ADD ("/validate/kernel/none-on-microvm-is-refused", test_no_kernel_on_microvm_is_refused);
  ADD ("/validate/kernel/none-on-cloud-hypervisor-is-unsupported",
       test_no_kernel_on_cloud_hypervisor_is_unsupported);
  ADD ("/validate/kernel/none-and-no-disk-on-cloud-hypervisor-is-refused",
       test_no_kernel_and_no_disk_on_cloud_hypervisor_is_refused);
  ADD ("/validate/kernel/missing-file-is-refused", test_missing_kernel_is_refused);
  ADD ("/validate/kernel/directory-is-refused", test_kernel_that_is_a_directory_is_refused);
  ADD ("/validate/kernel/dangling-symlink-is-refused",
       test_kernel_that_is_a_dangling_symlink_is_refused);
  ADD ("/validate/initramfs/missing-file-is-refused", test_missing_initramfs_is_refused);

  ADD ("/validate/name/empty-is-refused", test_empty_name_is_refused);
  ADD ("/validate/name/slash-is-refused", test_name_with_slash_is_refused);
  ADD ("/validate/name/leading-dot-is-refused", test_name_starting_with_dot_is_refused);
  ADD ("/validate/name/leading-dash-is-refused", test_name_starting_with_dash_is_refused);
  ADD ("/validate/name/space-is-refused", test_name_with_space_is_refused);
  ADD ("/validate/name/longer-than-max-is-refused", test_name_longer_than_max_is_refused);
  ADD ("/validate/name/max-length-is-accepted", test_name_of_max_length_is_accepted);
  ADD ("/validate/name/dot-dash-underscore-are-accepted",
       test_name_with_dot_dash_underscore_is_accepted);
  ADD ("/validate/runtime-dir/control-socket-path-too-long-is-refused",
       test_control_socket_path_too_long_is_refused);
  ADD ("/validate/runtime-dir/control-socket-path-of-107-bytes-is-accepted",
       test_control_socket_path_of_107_bytes_is_accepted);

  ADD ("/validate/device/duplicate-ids-are-refused", test_duplicate_device_ids_are_refused);
  ADD ("/validate/device/explicit-id-equal-to-a-default-id-is-refused",
       test_explicit_id_equal_to_a_default_id_is_refused);
  ADD ("/validate/device/malformed-id-is-refused", test_malformed_device_id_is_refused);
  ADD ("/validate/device/id-longer-than-31-bytes-is-refused",
       test_device_id_longer_than_31_bytes_is_refused);
  ADD ("/validate/device/id-of-31-bytes-is-accepted", test_device_id_of_31_bytes_is_accepted);
  ADD ("/validate/device/hotpluggable-on-microvm-is-unsupported",
       test_hotpluggable_device_on_microvm_is_unsupported);
  ADD ("/validate/device/hotpluggable-on-q35-is-accepted",
       test_hotpluggable_device_on_q35_is_accepted);
  ADD ("/validate/net/malformed-mac-is-refused", test_malformed_mac_is_refused);
  ADD ("/validate/net/multicast-mac-is-refused", test_multicast_mac_is_refused);
  ADD ("/validate/net/third-member-makes-isolated-network-a-bridge",
       test_third_member_makes_isolated_network_a_bridge);
  ADD ("/validate/console/two-consoles-are-refused", test_two_consoles_are_refused);
  ADD ("/validate/disk/missing-image-is-refused", test_missing_disk_image_is_refused);
  ADD ("/validate/disk/missing-raw-image-with-create-size-is-accepted",
       test_missing_raw_image_with_create_size_is_accepted);
  ADD ("/validate/disk/read-only-with-create-size-is-refused",
       test_read_only_storage_with_create_size_is_refused);
  ADD ("/validate/disk/qcow2-with-create-size-is-refused",
       test_qcow2_storage_with_create_size_is_refused);

  ADD ("/validate/hypervisor/not-in-path-is-refused-by-validate-but-not-by-pure-command-line",
       test_hypervisor_not_in_path_is_refused_by_validate_not_by_command_line);
  ADD ("/validate/hypervisor/not-executable-is-refused-by-validate-but-not-by-pure-command-line",
       test_hypervisor_not_executable_is_refused_by_validate_not_by_command_line);
  ADD ("/validate/cloud-hypervisor/refuses-qemu-machine-types",
       test_cloud_hypervisor_refuses_qemu_machine_types);
  ADD ("/validate/cloud-hypervisor/refuses-software-emulation",
       test_cloud_hypervisor_refuses_software_emulation);
  ADD ("/validate/cloud-hypervisor/refuses-user-mode-networking",
       test_cloud_hypervisor_refuses_user_mode_networking);
  ADD ("/validate/cloud-hypervisor/refuses-passt-uplink", test_cloud_hypervisor_refuses_passt_uplink);
  ADD ("/validate/network/passt-not-in-path-is-refused-by-validate",
       test_passt_not_in_path_is_refused_by_validate);
  ADD ("/validate/network/auto-uplink-follows-the-hypervisor",
       test_auto_uplink_follows_the_hypervisor);
  ADD ("/validate/lifetime/detached-refuses-tap-nat-uplink", test_detached_vm_refuses_tap_nat_uplink);
  ADD ("/validate/network/tap-and-bridge-names-are-checked", test_tap_and_bridge_names_are_checked);
  ADD ("/validate/cloud-hypervisor/isolated-network-is-a-bridge",
       test_cloud_hypervisor_isolated_network_is_a_bridge);
  ADD ("/validate/cloud-hypervisor/binary-not-found", test_cloud_hypervisor_binary_not_found);
  ADD ("/validate/network/missing-tap-is-refused", test_missing_tap_is_refused);
  ADD ("/validate/features/backends-state-what-they-support", test_backends_state_what_they_support);
  ADD ("/validate/features/unsupported-feature-is-refused-as-the-table-says",
       test_unsupported_feature_is_refused_as_the_table_says);

  ADD ("/validate/start/bad-memory-creates-nothing", test_start_with_bad_memory_creates_nothing);
  ADD ("/validate/start/missing-kernel-creates-nothing",
       test_start_with_missing_kernel_creates_nothing);
  ADD ("/validate/start/missing-hypervisor-creates-nothing",
       test_start_with_missing_hypervisor_creates_nothing);

  ADD ("/identity/derived-mac-is-locally-administered-unicast",
       test_derived_mac_is_locally_administered_unicast);
  ADD ("/identity/derived-mac-is-stable-for-same-vm-and-network-names",
       test_derived_mac_is_stable_for_same_names);
  ADD ("/identity/derived-mac-differs-for-another-vm-name",
       test_derived_mac_differs_for_another_vm_name);
  ADD ("/identity/derived-mac-differs-for-another-network-name",
       test_derived_mac_differs_for_another_network_name);
  ADD ("/identity/derived-mac-validates-and-reaches-the-command-line",
       test_derived_mac_validates);
  ADD ("/identity/explicit-mac-is-kept", test_explicit_mac_is_kept);
  ADD ("/identity/default-ids-follow-kind-and-order", test_default_ids_follow_kind_and_order);
  ADD ("/identity/explicit-id-is-kept", test_explicit_id_is_kept);
  ADD ("/identity/device-of-another-vm-is-refused-with-a-critical",
       test_device_of_another_vm_is_refused_with_a_critical);

  ADD ("/validate/gateway/vm-as-its-own-gateway-is-refused", test_vm_as_its_own_gateway_is_refused);
  ADD ("/validate/gateway/cycle-is-refused", test_gateway_cycle_is_refused);
  ADD ("/validate/gateway/longer-cycle-is-refused", test_longer_gateway_cycle_is_refused);
  ADD ("/validate/gateway/chain-without-cycle-validates",
       test_gateway_chain_without_cycle_validates);

  return g_test_run ();
}
