/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The owner process of test-orphan: a program linking libuvm that starts
 * the test guest and then just lives, as an application would, until it is
 * killed.
 *
 *   orphan-owner BACKEND DIR NAME [detached]
 *
 * with BACKEND the name of a test backend (TestBackend.name: "qemu" or
 * "cloud-hypervisor-standin"; test-orphan passes its own), starts VM NAME of the test guest (test_guest_vm_new(), so its runtime
 * directory is DIR/run/NAME and its console DIR/NAME.console) on that
 * backend, waits for the guest to be up, prints the hypervisor's pid and a
 * newline on stdout, and runs its main loop.  With "detached" the VM is
 * started with UVM_VM_LIFETIME_DETACHED.  Any failure exits non-zero
 * before anything is printed. */
#include "uvm-test-util.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(UvmVm) vm = NULL;
  TestBackend *(*const known[]) (void) = { test_backend_new_qemu, test_backend_new_ch_standin };
  TestBackend *backend = NULL;

  if (argc != 4 && !(argc == 5 && strcmp (argv[4], "detached") == 0))
    {
      fprintf (stderr, "usage: %s BACKEND DIR NAME [detached]\n", argv[0]);
      return 2;
    }
  /* If the test dies first, so do we (and, through the library, the VM). */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) != 0)
    return 1;
  /* By the backends' own names, so this list is all there is to edit. */
  for (guint i = 0; i < G_N_ELEMENTS (known) && backend == NULL; i++)
    {
      backend = known[i] ();
      if (strcmp (backend->name, argv[1]) != 0)
        g_clear_pointer (&backend, test_backend_free);
    }
  if (backend == NULL)
    {
      fprintf (stderr, "%s: unknown backend '%s'\n", argv[0], argv[1]);
      return 2;
    }
  if (backend->skip_reason != NULL || !test_guest_available ())
    {
      fprintf (stderr, "%s: %s\n", argv[0],
               backend->skip_reason ? backend->skip_reason : "no test guest");
      return 1;
    }

  vm = test_guest_vm_new (backend, argv[3], argv[2], NULL);
  if (argc == 5)
    uvm_vm_set_lifetime (vm, UVM_VM_LIFETIME_DETACHED);
  test_vm_start_and_boot (vm);
  printf ("%d\n", uvm_vm_get_pid (vm));
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (loop);   /* until SIGKILL */
  return 0;
}
