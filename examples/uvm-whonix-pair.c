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
#include <uvm/uvm.h>

typedef struct {
  UvmVm *gateway;
  UvmVm *workstation;
  GMainLoop *loop;
  guint running;
  int interrupts;
  int status;
  FILE *consoles[2];
  GString *pending[2];
} App;

/* Copies what the consoles wrote since the last call to stdout, a whole
 * line at a time, prefixed with the VM's name. */
static gboolean
copy_consoles (gpointer user_data)
{
  App *app = user_data;
  UvmVm *vms[] = { app->gateway, app->workstation };

  for (guint i = 0; i < G_N_ELEMENTS (vms); i++)
    {
      const char *path = uvm_vm_get_console_path (vms[i]);
      char buf[4096];
      size_t n;
      char *nl;

      if (app->consoles[i] == NULL && path != NULL)
        app->consoles[i] = fopen (path, "re");
      if (app->consoles[i] == NULL)
        continue;
      while ((n = fread (buf, 1, sizeof buf, app->consoles[i])) > 0)
        g_string_append_len (app->pending[i], buf, n);
      clearerr (app->consoles[i]);
      while ((nl = memchr (app->pending[i]->str, '\n', app->pending[i]->len)) != NULL)
        {
          gsize len = nl - app->pending[i]->str;

          if (len > 0 && app->pending[i]->str[len - 1] == '\r')
            len--;
          g_print ("[%s] %.*s\n", uvm_vm_get_name (vms[i]), (int) len, app->pending[i]->str);
          g_string_erase (app->pending[i], 0, nl - app->pending[i]->str + 1);
        }
    }
  fflush (stdout);
  return G_SOURCE_CONTINUE;
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

static UvmVm *
guest_new (const char *name, const char *kernel, const char *initramfs, const char *cmdline,
           const char *addresses, gboolean tcg, int memory_mib, const char *console_dir)
{
  UvmVm *vm = uvm_vm_new (name, UVM_HYPERVISOR_QEMU);
  g_autofree char *full = g_strdup_printf ("%s %s", cmdline, addresses);
  g_autofree char *console = NULL;

  uvm_vm_set_kernel (vm, kernel, initramfs, full);
  uvm_vm_set_memory (vm, (guint64) memory_mib * UVM_MIB);
  if (tcg)
    uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  if (console_dir != NULL)
    console = g_strdup_printf ("%s/%s.console.log", console_dir, name);
  uvm_vm_add_device (vm, uvm_device_new_console (console));
  return vm;
}

int
main (int argc, char **argv)
{
  g_autofree char *kernel = NULL, *initramfs = NULL;
  g_autofree char *gw_kernel = NULL, *gw_initramfs = NULL, *ws_kernel = NULL, *ws_initramfs = NULL;
  g_autofree char *cmdline = NULL, *console_dir = NULL, *ws_addresses = NULL;
  gboolean dry_run = FALSE, no_confine = FALSE, tcg = FALSE, ping = FALSE;
  int memory_mib = 256, run_for = 0;
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
    { "ping", 0, 0, G_OPTION_ARG_NONE, &ping, "Have the workstation ping the gateway (test guest: uvm.ping=)", NULL },
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
  ws_addresses = g_strdup_printf ("uvm.ip=%s%s%.*s", UVM_WHONIX_WORKSTATION_INTERNAL,
                                  ping ? " uvm.ping=" : "",
                                  ping ? (int) strcspn (UVM_WHONIX_GATEWAY_INTERNAL, "/") : 0,
                                  UVM_WHONIX_GATEWAY_INTERNAL);

  uplink = uvm_network_new_uplink ("whonix-uplink");
  internal = uvm_network_new_isolated ("whonix-internal");
  gw = guest_new ("whonix-gateway", gw_kernel, gw_initramfs, cmdline,
                  "uvm.ip=" UVM_WHONIX_GATEWAY_EXTERNAL " uvm.ip1=" UVM_WHONIX_GATEWAY_INTERNAL,
                  tcg, memory_mib, console_dir);
  uvm_vm_add_device (gw, uvm_device_new_net (uplink, NULL));     /* eth0 */
  uvm_vm_add_device (gw, uvm_device_new_net (internal, NULL));   /* eth1 */
  ws = guest_new ("whonix-workstation", ws_kernel, ws_initramfs, cmdline,
                  ws_addresses, tcg, memory_mib, console_dir);
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
  fflush (stdout);
  g_unix_signal_add (SIGINT, on_interrupt, &app);
  g_unix_signal_add (SIGTERM, on_interrupt, &app);
  if (run_for > 0)
    g_timeout_add_seconds ((guint) run_for, on_run_for_expired, &app);
  app.pending[0] = g_string_new (NULL);
  app.pending[1] = g_string_new (NULL);
  g_timeout_add (50, copy_consoles, &app);
  app.running = 2;
  uvm_vm_wait_async (gw, NULL, on_exited, &app);
  uvm_vm_wait_async (ws, NULL, on_exited, &app);
  g_main_loop_run (loop);
  for (guint i = 0; i < G_N_ELEMENTS (app.consoles); i++)
    {
      if (app.pending[i]->len > 0)
        g_string_append_c (app.pending[i], '\n');
    }
  copy_consoles (&app);
  for (guint i = 0; i < G_N_ELEMENTS (app.consoles); i++)
    {
      if (app.consoles[i] != NULL)
        fclose (app.consoles[i]);
      g_string_free (app.pending[i], TRUE);
    }
  return app.status;
}
