/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm-run: a thin launcher.  Boots a kernel + initramfs, prints the launch
 * plan on request, stays attached printing events, and stops the VM
 * gracefully on Ctrl-C (a second Ctrl-C forces it). */
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uvm/uvm.h>

#include "example-util.h"

typedef struct {
  UvmVm *vm;
  int console_fd;               /* our client of the console socket, or -1 */
  guint console_watch;
  GMainLoop *loop;
  guint stop_timeout_ms;
  int interrupts;
  int status;
} App;

static void
on_event (UvmVm *vm, UvmEvent *event, gpointer user_data)
{
  g_autofree char *text = uvm_event_to_string (event);

  g_printerr ("uvm-run: %s: %s\n", uvm_vm_get_name (vm), text);
}

/* The console, copied to the terminal as the guest writes it: a client of
 * the VM's console socket (uvm_vm_open_console()), so nothing polls. */
static void
copy_console (App *app, gboolean to_the_end)
{
  char buf[4096];
  ssize_t n;

  if (app->console_fd < 0)
    return;
  while ((n = recv (app->console_fd, buf, sizeof buf, to_the_end ? 0 : MSG_DONTWAIT)) > 0)
    fwrite (buf, 1, (size_t) n, stdout);
  fflush (stdout);
}

static gboolean
on_console (int fd, GIOCondition condition, gpointer user_data)
{
  App *app = user_data;

  copy_console (app, FALSE);
  if (condition & (G_IO_HUP | G_IO_ERR))
    {
      app->console_watch = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* What is typed on our stdin goes to the guest's console. */
static gboolean
on_stdin (int fd, GIOCondition condition, gpointer user_data)
{
  App *app = user_data;
  char buf[1024];
  ssize_t n = read (fd, buf, sizeof buf);

  if (n <= 0)
    return G_SOURCE_REMOVE;
  if (app->console_fd >= 0 && send (app->console_fd, buf, (size_t) n, MSG_NOSIGNAL) < 0)
    return G_SOURCE_REMOVE;
  return G_SOURCE_CONTINUE;
}

static void
on_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = uvm_vm_wait_for_console_finish (UVM_VM (source), result, &error);

  if (line != NULL)
    g_printerr ("uvm-run: %s: guest ready: %s\n", uvm_vm_get_name (UVM_VM (source)), line);
  else
    g_printerr ("uvm-run: waiting for the guest: %s\n", error->message);
}

static void
on_stopped (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (!uvm_vm_stop_finish (UVM_VM (source), result, &error))
    g_printerr ("uvm-run: stop: %s\n", error->message);
}

static gboolean
on_interrupt (gpointer user_data)
{
  App *app = user_data;

  /* First Ctrl-C: power button with a deadline; second: no more waiting. */
  uvm_vm_stop_async (app->vm, ++app->interrupts == 1 ? app->stop_timeout_ms : 0, NULL,
                     on_stopped, app);
  if (app->interrupts > 1)
    uvm_vm_kill (app->vm, NULL);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_run_for_expired (gpointer user_data)
{
  on_interrupt (user_data);
  return G_SOURCE_REMOVE;
}

static void
on_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;
  int code = 0, sig = 0;

  uvm_vm_wait_finish (UVM_VM (source), result, NULL);
  uvm_vm_get_exit_status (app->vm, &code, &sig);
  app->status = sig ? 128 + sig : code;
  /* The relay wrote the hypervisor's last words and closed: read to EOF. */
  copy_console (app, TRUE);
  g_main_loop_quit (app->loop);
}

static gboolean
parse_machine (const char *name, UvmMachine *out)
{
  if (g_str_equal (name, "q35"))
    *out = UVM_MACHINE_Q35;
  else if (g_str_equal (name, "pc"))
    *out = UVM_MACHINE_PC;
  else if (g_str_equal (name, "microvm"))
    *out = UVM_MACHINE_MICROVM;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_accel (const char *name, UvmAccel *out)
{
  if (g_str_equal (name, "auto"))
    *out = UVM_ACCEL_AUTO;
  else if (g_str_equal (name, "kvm"))
    *out = UVM_ACCEL_KVM;
  else if (g_str_equal (name, "tcg"))
    *out = UVM_ACCEL_TCG;
  else
    return FALSE;
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *name = g_strdup ("uvm-run");
  g_autofree char *kernel = NULL, *initramfs = NULL, *cmdline = NULL, *machine = NULL;
  g_autofree char *accel = NULL, *console = NULL, *memory = NULL, *hypervisor = NULL;
  g_autofree char *hypervisor_path = NULL, *tap = NULL, *ready = NULL;
  g_auto(GStrv) disks = NULL, extra = NULL;
  gboolean print_plan = FALSE, dry_run = FALSE, user_net = FALSE, rng = FALSE;
  int vcpus = 1, stop_timeout = 10, run_for = 0;
  GOptionEntry entries[] = {
    { "name", 'n', 0, G_OPTION_ARG_STRING, &name, "VM name (default uvm-run)", "NAME" },
    { "hypervisor", 'H', 0, G_OPTION_ARG_STRING, &hypervisor, "qemu or cloud-hypervisor (default qemu)", "NAME" },
    { "hypervisor-path", 0, 0, G_OPTION_ARG_FILENAME, &hypervisor_path, "Hypervisor executable (default: looked up in PATH)", "FILE" },
    { "kernel", 'k', 0, G_OPTION_ARG_FILENAME, &kernel, "Kernel image", "FILE" },
    { "initramfs", 'i', 0, G_OPTION_ARG_FILENAME, &initramfs, "Initramfs", "FILE" },
    { "cmdline", 'c', 0, G_OPTION_ARG_STRING, &cmdline, "Kernel command line", "TEXT" },
    { "memory", 'm', 0, G_OPTION_ARG_STRING, &memory, "Memory, e.g. 256M or 1G (default 256M)", "SIZE" },
    { "cpus", 'p', 0, G_OPTION_ARG_INT, &vcpus, "vCPUs (default 1)", "N" },
    { "machine", 'M', 0, G_OPTION_ARG_STRING, &machine, "q35, pc or microvm", "TYPE" },
    { "accel", 'a', 0, G_OPTION_ARG_STRING, &accel, "auto, kvm or tcg (default auto)", "ACCEL" },
    { "disk", 'd', 0, G_OPTION_ARG_FILENAME_ARRAY, &disks, "Raw disk image (repeatable; suffix :ro for read-only)", "FILE" },
    { "user-net", 0, 0, G_OPTION_ARG_NONE, &user_net, "Add a NIC on a user-mode (NAT) uplink (qemu)", NULL },
    { "tap", 0, 0, G_OPTION_ARG_STRING, &tap, "Add a NIC on an existing tap interface", "IFNAME" },
    { "rng", 0, 0, G_OPTION_ARG_NONE, &rng, "Add a virtio entropy device", NULL },
    { "console-log", 0, 0, G_OPTION_ARG_FILENAME, &console, "Write the serial console to FILE (default: this terminal)", "FILE" },
    { "ready", 0, 0, G_OPTION_ARG_STRING, &ready, "Report when a console line matches PATTERN (a GRegex)", "PATTERN" },
    { "stop-timeout", 't', 0, G_OPTION_ARG_INT, &stop_timeout, "Seconds the guest gets to power off on Ctrl-C (default 10)", "S" },
    { "extra-arg", 'x', 0, G_OPTION_ARG_STRING_ARRAY, &extra, "Extra hypervisor argument (repeatable)", "ARG" },
    { "run-for", 0, 0, G_OPTION_ARG_INT, &run_for, "Stop gracefully after S seconds (default: on Ctrl-C only)", "S" },
    { "print-plan", 0, 0, G_OPTION_ARG_NONE, &print_plan, "Print the launch plan before starting", NULL },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "Print the launch plan and exit", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- boot a microVM with libuvm");
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  App app = { .console_fd = -1 };
  UvmMachine m = UVM_MACHINE_DEFAULT;
  UvmAccel a = UVM_ACCEL_AUTO;
  guint64 mem = 256 * UVM_MIB;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("uvm-run: %s\n", error->message);
      return 2;
    }
  if (kernel == NULL)
    {
      g_printerr ("uvm-run: --kernel is required (see --help)\n");
      return 2;
    }
  if ((machine && !parse_machine (machine, &m)) || (accel && !parse_accel (accel, &a)))
    {
      g_printerr ("uvm-run: unknown --machine or --accel value\n");
      return 2;
    }
  if (memory != NULL)
    {
      guint64 n = 0;
      char *end = NULL;
      n = g_ascii_strtoull (memory, &end, 10);
      mem = (*end == 'G' || *end == 'g') ? n * UVM_GIB : (*end == 'K' || *end == 'k') ? n * UVM_KIB
            : (*end == '\0') ? n : n * UVM_MIB;
    }

  UvmHypervisor hv = UVM_HYPERVISOR_QEMU;
  if (hypervisor != NULL && !uvm_hypervisor_from_string (hypervisor, &hv))
    {
      g_autofree char *names = hypervisor_names ();

      g_printerr ("uvm-run: --hypervisor: '%s' is not one of: %s\n", hypervisor, names);
      return 2;
    }
  vm = uvm_vm_new (name, hv);
  uvm_vm_set_hypervisor_path (vm, hypervisor_path);
  uvm_vm_set_kernel (vm, kernel, initramfs, cmdline ? cmdline : "console=ttyS0");
  uvm_vm_set_memory (vm, mem);
  uvm_vm_set_vcpus (vm, (guint) MAX (vcpus, 0));
  uvm_vm_set_machine (vm, m);
  uvm_vm_set_accel (vm, a);
  uvm_vm_set_extra_args (vm, (const char *const *) extra);
  /* Without --console-log the console log goes to the runtime directory,
   * and this launcher is a client of the console: the guest's output on
   * the terminal, the terminal's input to the guest. */
  uvm_vm_add_device (vm, uvm_device_new_console (console));
  if (rng)
    uvm_vm_add_device (vm, uvm_device_new_rng ());
  if (user_net)
    {
      g_autoptr(UvmNetwork) uplink = uvm_network_new_uplink ("uplink");
      uvm_vm_add_device (vm, uvm_device_new_net (uplink, NULL));
    }
  if (tap != NULL)
    {
      g_autoptr(UvmNetwork) net = uvm_network_new_tap ("tap", tap);
      uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
    }
  for (guint i = 0; disks && disks[i]; i++)
    {
      gboolean ro = g_str_has_suffix (disks[i], ":ro");
      g_autofree char *path = ro ? g_strndup (disks[i], strlen (disks[i]) - 3) : g_strdup (disks[i]);
      g_autoptr(UvmStorage) st = uvm_storage_new_image (path);
      uvm_storage_set_read_only (st, ro);
      uvm_vm_add_device (vm, uvm_device_new_disk (st));
    }

  if (print_plan || dry_run)
    {
      g_autofree char *plan = uvm_vm_get_launch_plan (vm, &error);
      if (plan == NULL)
        {
          g_printerr ("uvm-run: %s\n", error->message);
          return 1;
        }
      g_print ("%s", plan);
      if (dry_run)
        return 0;
    }

  loop = g_main_loop_new (NULL, FALSE);
  app.vm = vm;
  app.loop = loop;
  app.stop_timeout_ms = (guint) MAX (stop_timeout, 0) * 1000;
  uvm_vm_connect_event (vm, on_event, &app, NULL);
  if (!uvm_vm_start (vm, NULL, &error))
    {
      g_printerr ("uvm-run: %s\n", error->message);
      return 1;
    }
  g_unix_signal_add (SIGINT, on_interrupt, &app);
  g_unix_signal_add (SIGTERM, on_interrupt, &app);
  if (run_for > 0)
    g_timeout_add_seconds ((guint) run_for, on_run_for_expired, &app);
  if (console == NULL)
    {
      app.console_fd = uvm_vm_open_console (vm, &error);
      if (app.console_fd < 0)
        {
          g_printerr ("uvm-run: %s\n", error->message);
          g_clear_error (&error);
        }
      else
        {
          app.console_watch = g_unix_fd_add (app.console_fd, G_IO_IN, on_console, &app);
          g_unix_fd_add (STDIN_FILENO, G_IO_IN, on_stdin, &app);
        }
    }
  if (ready != NULL)
    uvm_vm_wait_for_console_async (vm, ready, NULL, on_ready, &app);
  uvm_vm_wait_async (vm, NULL, on_exited, &app);
  g_main_loop_run (loop);
  if (app.console_watch != 0)
    g_source_remove (app.console_watch);
  if (app.console_fd >= 0)
    close (app.console_fd);
  return app.status;
}
