/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Firmware boot on qemu: a VM with no kernel boots its first disk through
 * SeaBIOS.  The disk holds the boot sector of tests/guest/make-bootsector.py
 * (path in UVM_TEST_BOOTSECTOR), which prints a marker on COM1, the console
 * device, and halts; qemu runs under TCG.  The test is skipped (with a
 * message) when qemu-system-x86_64 is not installed. */
#include "uvm-test-util.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define DISK_BOOT_MARKER "UVM-DISK-BOOT-OK"
#define BOOT_TIMEOUT_MS 60000
/* SeaBIOS refuses to read a disk smaller than about one cylinder of its
 * translated geometry (a 64 KiB image fails, 1 MiB boots), so the sector
 * goes at the start of a sparse 1 MiB image. */
#define DISK_SIZE (1024 * 1024)

typedef struct {
  char *dir;
  guint fds_before;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("uvm-diskboot-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->fds_before = test_count_fds ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  test_remove_tree (f->dir);
  g_free (f->dir);
}

/* A raw disk image in @dir holding the boot sector; NULL (and the test
 * skipped) when the sector was not built. */
static char *
make_boot_disk (const char *dir)
{
  const char *sector_path = g_getenv ("UVM_TEST_BOOTSECTOR");
  g_autofree char *sector = NULL;
  g_autoptr(GError) error = NULL;
  char *image;
  gsize len = 0;

  if (sector_path == NULL)
    {
      g_test_skip ("UVM_TEST_BOOTSECTOR is not set: run through meson test");
      return NULL;
    }
  g_file_get_contents (sector_path, &sector, &len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (len, ==, 512);
  g_assert_cmpuint ((guchar) sector[510], ==, 0x55);
  g_assert_cmpuint ((guchar) sector[511], ==, 0xaa);

  image = g_build_filename (dir, "boot.img", NULL);
  g_file_set_contents (image, sector, len, &error);
  g_assert_no_error (error);
  g_assert_no_errno (truncate (image, DISK_SIZE));
  return image;
}

static void
test_qemu_boots_the_first_disk_without_a_kernel (Fixture *f, gconstpointer data)
{
  g_autofree char *qemu = g_find_program_in_path ("qemu-system-x86_64");
  g_autofree char *image = NULL;
  g_autofree char *console = g_build_filename (f->dir, "console.log", NULL);
  g_autofree char *rundir = g_build_filename (f->dir, "run", NULL);
  g_autofree char *cmdline = NULL;
  g_autoptr(UvmStorage) storage = NULL;
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0, booted, stopped;
  int pid;

  if (qemu == NULL)
    {
      g_test_skip ("qemu-system-x86_64 is not installed");
      return;
    }
  image = make_boot_disk (f->dir);
  if (image == NULL)
    return;

  vm = uvm_vm_new ("diskboot", UVM_HYPERVISOR_QEMU);
  uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  uvm_vm_set_memory (vm, UVM_VM_MIN_MEMORY);
  uvm_vm_set_runtime_dir (vm, rundir);
  storage = uvm_storage_new_image (image);
  g_assert_cmpint (uvm_storage_get_format (storage), ==, UVM_STORAGE_FORMAT_RAW);
  uvm_vm_add_device (vm, uvm_device_new_disk (storage));
  uvm_vm_add_device (vm, uvm_device_new_console (console));
  g_assert_null (uvm_vm_get_kernel (vm));

  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_test_message ("command line: %s", cmdline);

  t0 = g_get_monotonic_time ();
  test_vm_start_ok (vm);
  pid = uvm_vm_get_pid (vm);
  g_assert_cmpint (pid, >, 0);
  g_assert_true (test_wait_for_text (console, DISK_BOOT_MARKER, BOOT_TIMEOUT_MS));
  booted = g_get_monotonic_time ();
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_RUNNING);

  /* The sector halts with interrupts off and ignores the power button: a
   * short deadline, then the library's escalation (quit) ends qemu. */
  g_assert_true (uvm_vm_stop (vm, 500, NULL, &error));
  g_assert_no_error (error);
  stopped = g_get_monotonic_time ();
  g_test_message ("marker on the console %.2f s after start; stopped in %.2f s",
                  (booted - t0) / 1e6, (stopped - booted) / 1e6);

  /* Nothing left: no runtime dir, no process, no fd. */
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_STOPPED);
  g_assert_cmpint (uvm_vm_get_pid (vm), ==, 0);
  g_assert_false (g_file_test (rundir, G_FILE_TEST_EXISTS));
  g_assert_cmpint (waitpid (pid, NULL, WNOHANG), ==, -1);
  g_assert_cmpint (errno, ==, ECHILD);
  g_assert_cmpint (kill (pid, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  g_clear_object (&vm);
  g_assert_cmpuint (test_count_fds (), ==, f->fds_before);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  test_warm_up_glib ();
  g_test_add ("/diskboot/qemu/boots-the-first-disk-without-a-kernel", Fixture, NULL,
              fixture_setup, test_qemu_boots_the_first_disk_without_a_kernel, fixture_teardown);
  return g_test_run ();
}
