/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm-whonix-pair: a Whonix-style workstation behind a gateway, on qemu
 * or cloud-hypervisor (--hypervisor, the same for both VMs).
 *
 * The gateway gets two NICs: the uplink as eth0 and the internal isolated
 * network as eth1; the workstation gets one, on the internal network, and
 * runs confined (uvm_vm_set_confined()) unless --no-confine. The
 * workstation is put behind the gateway with uvm_vm_set_gateway(), so it
 * is started only once the gateway runs and is stopped when the gateway's
 * hypervisor exits.
 *
 * The uplink is what --uplink says (uvm_network_set_uplink_mode()): auto
 * (qemu: user-mode networking; cloud-hypervisor: a tap with NAT), user,
 * passt or tap-nat. A mode the library or the hypervisor cannot do is
 * reported with the library's error and nothing starts. On qemu the
 * internal network of two members is a socket pair; on cloud-hypervisor
 * (no socket netdev) the library makes it a bridge of taps with no host
 * address. Bridges and tap-nat uplinks need CAP_NET_ADMIN: run as root, or
 * in a user and network namespace of your own.
 *
 * Each guest boots either a kernel (--kernel and --initramfs for both, or
 * the --gateway-... and --workstation-... ones) or a disk image
 * (--gateway-disk, --workstation-disk: raw, or qcow2 when the name ends in
 * .qcow2, or as --disk-format says) through the firmware, which is how
 * real Whonix KVM images (Whonix-Gateway-*.qcow2, Whonix-Workstation-
 * *.qcow2) run. Disk images are qemu only: cloud-hypervisor here boots
 * kernels only. A guest with a disk and its own --gateway-kernel or
 * --workstation-kernel boots that kernel with the disk attached (e.g.
 * root=/dev/vda). The disks are used in place and written to.
 *
 * The Whonix addresses are appended to each kernel command line as uvm.ip=
 * parameters (what the test guest understands); real Whonix images
 * configure themselves.
 *
 * --ping makes the workstation ping the gateway's internal address (the
 * test guest's uvm.ping=). Both consoles are copied to stdout, each line
 * prefixed with the VM's name; --console-dir keeps them as files.
 *
 * --dry-run prints both launch plans and starts nothing. Ctrl-C (or the
 * end of --run-for) stops the workstation, then the gateway, gracefully;
 * a second Ctrl-C stops both without waiting. */
#include <errno.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uvm/uvm.h>

#include "example-util.h"

#include "whonix-pair.h"

static const char *const uplink_modes[] = {
  [UVM_UPLINK_AUTO] = "auto",
  [UVM_UPLINK_USER] = "user",
  [UVM_UPLINK_PASST] = "passt",
  [UVM_UPLINK_TAP_NAT] = "tap-nat",
};

typedef struct {
  UvmVm *gateway;
  UvmVm *workstation;
  GMainLoop *loop;
  guint running;
  int interrupts;
  int status;
  int consoles[2];          /* clients of the VMs' console sockets, or -1 */
  guint console_watches[2];
  GString *pending[2];
} App;

/* Prints the complete lines of console @i, prefixed with the VM's name. */
static void
print_lines (App *app, guint i)
{
  UvmVm *vm = i == 0 ? app->gateway : app->workstation;
  char *nl;

  while ((nl = memchr (app->pending[i]->str, '\n', app->pending[i]->len)) != NULL)
    {
      gsize len = nl - app->pending[i]->str;

      if (len > 0 && app->pending[i]->str[len - 1] == '\r')
        len--;
      g_print ("[%s] %.*s\n", uvm_vm_get_name (vm), (int) len, app->pending[i]->str);
      g_string_erase (app->pending[i], 0, nl - app->pending[i]->str + 1);
    }
  fflush (stdout);
}

/* Reads console @i: what is there now, or (@to_the_end, once the VM is
 * gone and its relay closed the socket) everything up to the end. */
static void
read_console (App *app, guint i, gboolean to_the_end)
{
  char buf[4096];
  ssize_t n;

  if (app->consoles[i] < 0)
    return;
  while ((n = recv (app->consoles[i], buf, sizeof buf, to_the_end ? 0 : MSG_DONTWAIT)) > 0)
    g_string_append_len (app->pending[i], buf, (gsize) n);
  print_lines (app, i);
}

static gboolean
on_console (int fd, GIOCondition condition, gpointer user_data)
{
  App *app = user_data;
  guint i = fd == app->consoles[0] ? 0 : 1;

  read_console (app, i, FALSE);
  if (condition & (G_IO_HUP | G_IO_ERR))
    {
      app->console_watches[i] = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* Follows the console of VM @i (just started) through its console socket:
 * no polling.  Output from before the connection is in its console log. */
static void
follow_console (App *app, guint i)
{
  UvmVm *vm = i == 0 ? app->gateway : app->workstation;
  g_autoptr(GError) error = NULL;

  app->consoles[i] = uvm_vm_open_console (vm, &error);
  if (app->consoles[i] < 0)
    {
      g_printerr ("uvm-whonix-pair: %s\n", error->message);
      return;
    }
  app->console_watches[i] = g_unix_fd_add (app->consoles[i], G_IO_IN, on_console, app);
}

static void
on_event (UvmVm *vm, UvmEvent *event, gpointer user_data)
{
  g_autofree char *text = uvm_event_to_string (event);

  g_printerr ("uvm-whonix-pair: %s: %s\n", uvm_vm_get_name (vm), text);
}

static void
on_gateway_stopped (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  App *app = user_data;

  if (!uvm_vm_stop_finish (UVM_VM (source), result, &error))
    {
      g_printerr ("uvm-whonix-pair: stopping the gateway: %s\n", error->message);
      app->status = 1;
    }
}

static void
on_workstation_stopped (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;

  if (!uvm_vm_stop_finish (UVM_VM (source), result, &error))
    {
      g_printerr ("uvm-whonix-pair: stopping the workstation: %s\n", error->message);
      app->status = 1;
    }
  /* Workstation first, then the gateway. */
  uvm_vm_stop_async (app->gateway, app->interrupts > 1 ? 0 : 10000, NULL, on_gateway_stopped, app);
}

static gboolean
on_interrupt (gpointer user_data)
{
  App *app = user_data;
  guint timeout_ms = ++app->interrupts == 1 ? 10000 : 0;

  uvm_vm_stop_async (app->workstation, timeout_ms, NULL, on_workstation_stopped, app);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_run_for_expired (gpointer user_data)
{
  g_printerr ("uvm-whonix-pair: --run-for time is up, stopping\n");
  on_interrupt (user_data);
  return G_SOURCE_REMOVE;
}

static void
on_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;

  uvm_vm_wait_finish (UVM_VM (source), result, NULL);
  /* The library stops the workstation when the gateway exits; when the
   * workstation exits on its own, take the gateway down too. */
  if (UVM_VM (source) == app->workstation && app->interrupts == 0)
    {
      app->interrupts = 1;
      uvm_vm_stop_async (app->gateway, 10000, NULL, on_gateway_stopped, app);
    }
  if (--app->running == 0)
    g_main_loop_quit (app->loop);
}

/* What one guest boots. */
typedef struct {
  const char *name;
  char *kernel;
  char *initramfs;
  char *disk;
} Payload;

static void
payload_clear (Payload *p)
{
  g_free (p->kernel);
  g_free (p->initramfs);
  g_free (p->disk);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Payload, payload_clear)

static UvmVm *
guest_new (UvmHypervisor hypervisor, const Payload *payload, const char *cmdline,
           const char *addresses, UvmStorageFormat disk_format, gboolean tcg, int memory_mib,
           const char *console_dir)
{
  UvmVm *vm = uvm_vm_new (payload->name, hypervisor);
  g_autofree char *console = NULL;

  /* No kernel: the firmware boots the disk, and the addresses are the
   * image's own business. */
  if (payload->kernel != NULL)
    {
      g_autofree char *full = g_strdup_printf ("%s %s", cmdline, addresses);

      uvm_vm_set_kernel (vm, payload->kernel, payload->initramfs, full);
    }
  if (payload->disk != NULL)
    {
      g_autoptr(UvmStorage) storage = uvm_storage_new_image (payload->disk);

      uvm_storage_set_format (storage, disk_format);
      uvm_vm_add_device (vm, uvm_device_new_disk (storage));
    }
  uvm_vm_set_memory (vm, (guint64) memory_mib * UVM_MIB);
  if (tcg)
    uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  if (console_dir != NULL)
    console = g_strdup_printf ("%s/%s.console.log", console_dir, payload->name);
  uvm_vm_add_device (vm, uvm_device_new_console (console));
  return vm;
}

/* Fills in what --kernel and --initramfs give both guests: only to a guest
 * without a disk, which otherwise boots through the firmware.  FALSE, with
 * a message, when the guest has nothing to boot. */
static gboolean
payload_complete (Payload *p, const char *option, const char *kernel, const char *initramfs)
{
  if (p->kernel == NULL && p->disk == NULL)
    {
      p->kernel = g_strdup (kernel);
      if (p->initramfs == NULL)
        p->initramfs = g_strdup (initramfs);
    }
  if (p->kernel == NULL && p->disk == NULL)
    {
      g_printerr ("uvm-whonix-pair: the %s needs a kernel or a disk: give --kernel, "
                  "--%s-kernel or --%s-disk\n", option, option, option);
      return FALSE;
    }
  if (p->kernel == NULL && p->initramfs != NULL)
    {
      g_printerr ("uvm-whonix-pair: --%s-initramfs needs a kernel (--%s-kernel); a disk "
                  "boots through the firmware\n", option, option);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_disk_format (const char *text, const char *path, UvmStorageFormat *format)
{
  if (text == NULL)
    text = path != NULL && g_str_has_suffix (path, ".qcow2") ? "qcow2" : "raw";
  if (g_str_equal (text, "raw"))
    *format = UVM_STORAGE_FORMAT_RAW;
  else if (g_str_equal (text, "qcow2"))
    *format = UVM_STORAGE_FORMAT_QCOW2;
  else
    {
      g_printerr ("uvm-whonix-pair: --disk-format: '%s' is not raw or qcow2\n", text);
      return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *kernel = NULL, *initramfs = NULL;
  g_auto(Payload) gp = { "whonix-gateway" };
  g_auto(Payload) wp = { "whonix-workstation" };
  g_autofree char *cmdline = NULL, *console_dir = NULL, *ws_addresses = NULL;
  g_autofree char *hypervisor_name = NULL, *uplink_name = NULL, *disk_format = NULL;
  gboolean dry_run = FALSE, no_confine = FALSE, tcg = FALSE, ping = FALSE;
  int memory_mib = 256, run_for = 0;
  GOptionEntry entries[] = {
    { "hypervisor", 0, 0, G_OPTION_ARG_STRING, &hypervisor_name, "qemu (default) or cloud-hypervisor, for both VMs", "NAME" },
    { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &kernel, "Kernel of both guests (of those without a disk)", "PATH" },
    { "initramfs", 0, 0, G_OPTION_ARG_FILENAME, &initramfs, "Initramfs of both guests (of those without a disk)", "PATH" },
    { "gateway-kernel", 0, 0, G_OPTION_ARG_FILENAME, &gp.kernel, "Kernel of the gateway", "PATH" },
    { "gateway-initramfs", 0, 0, G_OPTION_ARG_FILENAME, &gp.initramfs, "Initramfs of the gateway", "PATH" },
    { "gateway-disk", 0, 0, G_OPTION_ARG_FILENAME, &gp.disk, "Disk image of the gateway, booted by the firmware unless --gateway-kernel (qemu only)", "PATH" },
    { "workstation-kernel", 0, 0, G_OPTION_ARG_FILENAME, &wp.kernel, "Kernel of the workstation", "PATH" },
    { "workstation-initramfs", 0, 0, G_OPTION_ARG_FILENAME, &wp.initramfs, "Initramfs of the workstation", "PATH" },
    { "workstation-disk", 0, 0, G_OPTION_ARG_FILENAME, &wp.disk, "Disk image of the workstation, booted by the firmware unless --workstation-kernel (qemu only)", "PATH" },
    { "disk-format", 0, 0, G_OPTION_ARG_STRING, &disk_format, "raw or qcow2 for both disks (default: qcow2 for names ending in .qcow2, else raw)", "FORMAT" },
    { "cmdline", 0, 0, G_OPTION_ARG_STRING, &cmdline, "Kernel command line of both (default: console=ttyS0)", "ARGS" },
    { "uplink", 0, 0, G_OPTION_ARG_STRING, &uplink_name, "The gateway's uplink: auto (default), user, passt or tap-nat", "MODE" },
    { "memory", 0, 0, G_OPTION_ARG_INT, &memory_mib, "Memory of each guest in MiB (default 256)", "MIB" },
    { "tcg", 0, 0, G_OPTION_ARG_NONE, &tcg, "Run under TCG instead of preferring KVM (qemu only)", NULL },
    { "no-confine", 0, 0, G_OPTION_ARG_NONE, &no_confine, "Do not confine the workstation's hypervisor", NULL },
    { "ping", 0, 0, G_OPTION_ARG_NONE, &ping, "Have the workstation ping the gateway (test guest: uvm.ping=; needs a workstation kernel)", NULL },
    { "console-dir", 0, 0, G_OPTION_ARG_FILENAME, &console_dir, "Keep the consoles as DIR/NAME.console.log (default: runtime directory)", "DIR" },
    { "run-for", 0, 0, G_OPTION_ARG_INT, &run_for, "Stop both gracefully after S seconds (default: on Ctrl-C only)", "S" },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "Print both launch plans and exit", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- a workstation behind a gateway");
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmNetwork) uplink = NULL, internal = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  UvmHypervisor hypervisor = UVM_HYPERVISOR_QEMU;
  UvmUplinkMode uplink_mode = UVM_UPLINK_AUTO;
  UvmStorageFormat gw_format = UVM_STORAGE_FORMAT_RAW, ws_format = UVM_STORAGE_FORMAT_RAW;
  App app = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
    "Each guest boots a kernel, or a disk image through the firmware (qemu only;\n"
    "real Whonix KVM images: --gateway-disk Whonix-Gateway.qcow2\n"
    "--workstation-disk Whonix-Workstation.qcow2 --memory 2048).\n"
    "\n"
    "Needs CAP_NET_ADMIN (root, or a user and network namespace of your own):\n"
    "  --uplink tap-nat, and --hypervisor cloud-hypervisor, whose internal\n"
    "  network is a bridge of library-made taps and whose default uplink is\n"
    "  tap-nat.\n"
    "The workstation is confined (empty network namespace, no new inet\n"
    "sockets) unless --no-confine. Ctrl-C stops the workstation, then the\n"
    "gateway; a second Ctrl-C stops both at once.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("uvm-whonix-pair: %s\n", error->message);
      return 2;
    }
  if (hypervisor_name != NULL && !uvm_hypervisor_from_string (hypervisor_name, &hypervisor))
    {
      g_autofree char *names = hypervisor_names ();

      g_printerr ("uvm-whonix-pair: --hypervisor: '%s' is not one of: %s\n",
                  hypervisor_name, names);
      return 2;
    }
  if (uplink_name != NULL)
    {
      guint i;

      for (i = 0; i < G_N_ELEMENTS (uplink_modes); i++)
        if (g_str_equal (uplink_name, uplink_modes[i]))
          break;
      if (i == G_N_ELEMENTS (uplink_modes))
        {
          g_printerr ("uvm-whonix-pair: --uplink: '%s' is not auto, user, passt or tap-nat\n",
                      uplink_name);
          return 2;
        }
      uplink_mode = (UvmUplinkMode) i;
    }
  if (hypervisor == UVM_HYPERVISOR_CLOUD_HYPERVISOR && (gp.disk != NULL || wp.disk != NULL))
    {
      g_printerr ("uvm-whonix-pair: --%s-disk: disk images are for qemu; cloud-hypervisor "
                  "boots kernels only here (no firmware boot)\n",
                  gp.disk != NULL ? "gateway" : "workstation");
      return 2;
    }
  if (!parse_disk_format (disk_format, gp.disk, &gw_format) ||
      !parse_disk_format (disk_format, wp.disk, &ws_format) ||
      !payload_complete (&gp, "gateway", kernel, initramfs) ||
      !payload_complete (&wp, "workstation", kernel, initramfs))
    return 2;
  if (ping && wp.kernel == NULL)
    {
      g_printerr ("uvm-whonix-pair: --ping needs a workstation kernel (the test guest); a disk "
                  "image has its own tools\n");
      return 2;
    }
  if (cmdline == NULL)
    cmdline = g_strdup ("console=ttyS0");
  if (run_for < 0 || memory_mib <= 0)
    {
      g_printerr ("uvm-whonix-pair: --run-for and --memory must be positive\n");
      return 2;
    }
  if (console_dir != NULL && g_mkdir_with_parents (console_dir, 0700) < 0)
    {
      g_printerr ("uvm-whonix-pair: cannot create %s: %s\n", console_dir, g_strerror (errno));
      return 1;
    }
  /* The gateway's internal address without its prefix. */
  ws_addresses = g_strdup_printf ("uvm.ip=%s%s%.*s", WHONIX_WORKSTATION_INTERNAL,
                                  ping ? " uvm.ping=" : "",
                                  ping ? (int) strcspn (WHONIX_GATEWAY_INTERNAL, "/") : 0,
                                  WHONIX_GATEWAY_INTERNAL);

  uplink = uvm_network_new_uplink ("whonix-uplink");
  uvm_network_set_uplink_mode (uplink, uplink_mode);
  internal = uvm_network_new_isolated ("whonix-internal");
  gw = guest_new (hypervisor, &gp, cmdline,
                  "uvm.ip=" WHONIX_GATEWAY_EXTERNAL " uvm.ip1=" WHONIX_GATEWAY_INTERNAL,
                  gw_format, tcg, memory_mib, console_dir);
  uvm_vm_add_device (gw, uvm_device_new_net (uplink, NULL));     /* eth0 */
  uvm_vm_add_device (gw, uvm_device_new_net (internal, NULL));   /* eth1 */
  ws = guest_new (hypervisor, &wp, cmdline, ws_addresses, ws_format, tcg, memory_mib,
                  console_dir);
  uvm_vm_add_device (ws, uvm_device_new_net (internal, NULL));
  uvm_vm_set_confined (ws, !no_confine);
  uvm_vm_set_gateway (ws, gw);

  if (dry_run)
    {
      UvmVm *vms[] = { gw, ws };

      for (guint i = 0; i < G_N_ELEMENTS (vms); i++)
        {
          g_autofree char *plan = uvm_vm_get_launch_plan (vms[i], &error);

          if (plan == NULL)
            {
              g_printerr ("uvm-whonix-pair: %s\n", error->message);
              return 1;
            }
          g_print ("# ---- %s\n%s", uvm_vm_get_name (vms[i]), plan);
        }
      return 0;
    }

  loop = g_main_loop_new (NULL, FALSE);
  app.gateway = gw;
  app.workstation = ws;
  app.loop = loop;
  uvm_vm_connect_event (gw, on_event, &app, NULL);
  uvm_vm_connect_event (ws, on_event, &app, NULL);
  app.consoles[0] = app.consoles[1] = -1;
  app.pending[0] = g_string_new (NULL);
  app.pending[1] = g_string_new (NULL);
  /* The gateway first: the workstation's start is refused otherwise.
   * Each console is followed from the moment its VM runs. */
  if (!uvm_vm_start (gw, NULL, &error))
    {
      g_printerr ("uvm-whonix-pair: %s\n", error->message);
      return 1;
    }
  follow_console (&app, 0);
  if (!uvm_vm_start (ws, NULL, &error))
    {
      g_printerr ("uvm-whonix-pair: %s\n", error->message);
      return 1;
    }
  follow_console (&app, 1);
  g_print ("gateway console: %s\nworkstation console: %s\n",
           uvm_vm_get_console_path (gw), uvm_vm_get_console_path (ws));
  fflush (stdout);
  g_unix_signal_add (SIGINT, on_interrupt, &app);
  g_unix_signal_add (SIGTERM, on_interrupt, &app);
  if (run_for > 0)
    g_timeout_add_seconds ((guint) run_for, on_run_for_expired, &app);
  app.running = 2;
  uvm_vm_wait_async (gw, NULL, on_exited, &app);
  uvm_vm_wait_async (ws, NULL, on_exited, &app);
  g_main_loop_run (loop);
  /* Both are gone: their relays wrote the last words and closed. */
  for (guint i = 0; i < G_N_ELEMENTS (app.consoles); i++)
    {
      read_console (&app, i, TRUE);
      if (app.pending[i]->len > 0)
        g_string_append_c (app.pending[i], '\n');
      print_lines (&app, i);
      if (app.console_watches[i] != 0)
        g_source_remove (app.console_watches[i]);
      if (app.consoles[i] >= 0)
        close (app.consoles[i]);
      g_string_free (app.pending[i], TRUE);
    }
  return app.status;
}
