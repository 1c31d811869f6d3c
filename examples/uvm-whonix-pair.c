/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm-whonix-pair: a Whonix-style workstation behind a gateway, on qemu.
 *
 * The gateway gets two NICs: the uplink (qemu user-mode networking) as
 * eth0 and the internal isolated link as eth1; the workstation gets one,
 * on the internal link, and runs confined (uvm_vm_set_confined()) unless
 * --no-confine. The workstation is put behind the gateway with
 * uvm_vm_set_gateway(), so it is started only once the gateway runs and
 * is stopped when the gateway's hypervisor exits. The Whonix addresses are
 * appended to each kernel command line as uvm.ip= parameters (what the
 * test guest understands); real Whonix images configure themselves.
 *
 * --dry-run prints both launch plans and starts nothing. Ctrl-C stops the
 * workstation, then the gateway. */
#include <glib-unix.h>
#include <stdio.h>
#include <uvm/uvm.h>

typedef struct {
  UvmVm *gateway;
  UvmVm *workstation;
  GMainLoop *loop;
  guint running;
  int interrupts;
} App;

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

  if (!uvm_vm_stop_finish (UVM_VM (source), result, &error))
    g_printerr ("uvm-whonix-pair: stopping the gateway: %s\n", error->message);
}

static void
on_workstation_stopped (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;

  if (!uvm_vm_stop_finish (UVM_VM (source), result, &error))
    g_printerr ("uvm-whonix-pair: stopping the workstation: %s\n", error->message);
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

static void
on_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  App *app = user_data;

  uvm_vm_wait_finish (UVM_VM (source), result, NULL);
  if (--app->running == 0)
    g_main_loop_quit (app->loop);
}

static UvmVm *
guest_new (const char *name, const char *kernel, const char *initramfs, const char *cmdline,
           const char *addresses, gboolean tcg, int memory_mib)
{
  UvmVm *vm = uvm_vm_new (name, UVM_HYPERVISOR_QEMU);
  g_autofree char *full = g_strdup_printf ("%s %s", cmdline, addresses);

  uvm_vm_set_kernel (vm, kernel, initramfs, full);
  uvm_vm_set_memory (vm, (guint64) memory_mib * UVM_MIB);
  if (tcg)
    uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  return vm;
}

int
main (int argc, char **argv)
{
  g_autofree char *kernel = NULL, *initramfs = NULL;
  g_autofree char *gw_kernel = NULL, *gw_initramfs = NULL, *ws_kernel = NULL, *ws_initramfs = NULL;
  g_autofree char *cmdline = NULL;
  gboolean dry_run = FALSE, no_confine = FALSE, tcg = FALSE;
  int memory_mib = 256;
  GOptionEntry entries[] = {
    { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &kernel, "Kernel of both guests", "PATH" },
    { "initramfs", 0, 0, G_OPTION_ARG_FILENAME, &initramfs, "Initramfs of both guests", "PATH" },
    { "gateway-kernel", 0, 0, G_OPTION_ARG_FILENAME, &gw_kernel, "Kernel of the gateway", "PATH" },
    { "gateway-initramfs", 0, 0, G_OPTION_ARG_FILENAME, &gw_initramfs, "Initramfs of the gateway", "PATH" },
    { "workstation-kernel", 0, 0, G_OPTION_ARG_FILENAME, &ws_kernel, "Kernel of the workstation", "PATH" },
    { "workstation-initramfs", 0, 0, G_OPTION_ARG_FILENAME, &ws_initramfs, "Initramfs of the workstation", "PATH" },
    { "cmdline", 0, 0, G_OPTION_ARG_STRING, &cmdline, "Kernel command line of both (default: console=ttyS0)", "ARGS" },
    { "memory", 0, 0, G_OPTION_ARG_INT, &memory_mib, "Memory of each guest in MiB (default 256)", "MIB" },
    { "tcg", 0, 0, G_OPTION_ARG_NONE, &tcg, "Run under TCG instead of preferring KVM", NULL },
    { "no-confine", 0, 0, G_OPTION_ARG_NONE, &no_confine, "Do not confine the workstation's hypervisor", NULL },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "Print both launch plans and exit", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- a workstation behind a gateway");
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmNetwork) uplink = NULL, internal = NULL;
  g_autoptr(UvmVm) gw = NULL, ws = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  App app = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("uvm-whonix-pair: %s\n", error->message);
      return 2;
    }
  if (gw_kernel == NULL)
    gw_kernel = g_strdup (kernel);
  if (ws_kernel == NULL)
    ws_kernel = g_strdup (kernel);
  if (gw_initramfs == NULL)
    gw_initramfs = g_strdup (initramfs);
  if (ws_initramfs == NULL)
    ws_initramfs = g_strdup (initramfs);
  if (gw_kernel == NULL || ws_kernel == NULL)
    {
      g_printerr ("uvm-whonix-pair: give --kernel, or --gateway-kernel and --workstation-kernel\n");
      return 2;
    }
  if (cmdline == NULL)
    cmdline = g_strdup ("console=ttyS0");

  uplink = uvm_network_new_uplink ("whonix-uplink");
  internal = uvm_network_new_isolated ("whonix-internal");
  gw = guest_new ("whonix-gateway", gw_kernel, gw_initramfs, cmdline,
                  "uvm.ip=" UVM_WHONIX_GATEWAY_EXTERNAL " uvm.ip1=" UVM_WHONIX_GATEWAY_INTERNAL,
                  tcg, memory_mib);
  uvm_vm_add_device (gw, uvm_device_new_net (uplink, NULL));     /* eth0 */
  uvm_vm_add_device (gw, uvm_device_new_net (internal, NULL));   /* eth1 */
  ws = guest_new ("whonix-workstation", ws_kernel, ws_initramfs, cmdline,
                  "uvm.ip=" UVM_WHONIX_WORKSTATION_INTERNAL, tcg, memory_mib);
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
  /* The gateway first: the workstation's start is refused otherwise. */
  if (!uvm_vm_start (gw, NULL, &error) || !uvm_vm_start (ws, NULL, &error))
    {
      g_printerr ("uvm-whonix-pair: %s\n", error->message);
      return 1;
    }
  g_print ("gateway console: %s\nworkstation console: %s\n",
           uvm_vm_get_console_path (gw), uvm_vm_get_console_path (ws));
  g_unix_signal_add (SIGINT, on_interrupt, &app);
  g_unix_signal_add (SIGTERM, on_interrupt, &app);
  app.running = 2;
  uvm_vm_wait_async (gw, NULL, on_exited, &app);
  uvm_vm_wait_async (ws, NULL, on_exited, &app);
  g_main_loop_run (loop);
  return 0;
}
