/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A minimal libuvm consumer, built by tests/check-consumers.sh once against
 * an installed libuvm (pkg-config) and once with libuvm as a meson
 * subproject.  Uses only what a user gets: the one public header and the
 * exported API.  Prints the library version, then the qemu command line of a
 * minimal VM whose kernel is a fake file written here (validation only
 * checks that it exists and is readable). */
#include <stdio.h>
#include <stdlib.h>
#include <glib/gstdio.h>
#include <uvm/uvm.h>

#if !UVM_CHECK_VERSION (0, 1, 0)
#error "libuvm headers older than 0.1.0"
#endif

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *kernel = NULL;
  g_autofree char *cmdline = NULL;
  g_autoptr(UvmVm) vm = NULL;
  int status = EXIT_FAILURE;

  if (!uvm_check_version (UVM_MAJOR_VERSION, UVM_MINOR_VERSION, UVM_MICRO_VERSION))
    {
      fprintf (stderr, "consumer: loaded libuvm %s is older than the headers, %s\n",
               uvm_get_version (), UVM_VERSION_S);
      return EXIT_FAILURE;
    }
  printf ("%s\n", uvm_get_version ());

  dir = g_dir_make_tmp ("uvm-consumer-XXXXXX", &error);
  if (dir == NULL)
    goto out;
  kernel = g_build_filename (dir, "vmlinuz", NULL);
  if (!g_file_set_contents (kernel, "not a kernel\n", -1, &error))
    goto out;

  vm = uvm_vm_new ("consumer", UVM_HYPERVISOR_QEMU);
  if (vm == NULL)
    {
      fprintf (stderr, "consumer: uvm_vm_new returned NULL\n");
      goto out;
    }
  uvm_vm_set_kernel (vm, kernel, NULL, "console=ttyS0");
  cmdline = uvm_vm_get_command_line (vm, &error);
  if (cmdline == NULL)
    goto out;
  printf ("%s\n", cmdline);
  status = EXIT_SUCCESS;

out:
  if (error != NULL)
    fprintf (stderr, "consumer: %s\n", error->message);
  if (kernel != NULL)
    g_unlink (kernel);
  if (dir != NULL)
    g_rmdir (dir);
  if (fflush (stdout) != 0)
    status = EXIT_FAILURE;
  return status;
}
