/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl run and plan: the VMs of a definition document
 * (docs/definition-schema.md).  run starts them gateways first, waits for
 * the guests' readiness line when asked, tells systemd (sd_notify), and
 * in the foreground stops them, workstations first, on SIGINT/SIGTERM. */
#include "uvmctl.h"

#include <glib-unix.h>
#include <string.h>

#define DEFAULT_STOP_TIMEOUT_S 30

typedef struct {
  GPtrArray *vms;        /* in start order */
  GMainLoop *loop;
  GCancellable *cancel;  /* cancels the start on a signal */
  guint stop_timeout_ms;
  guint n_alive;
  guint signals;
  gboolean stopping;
  int status;
} Run;

/* Loads DEF.json; a VM that keeps the library's default runtime directory
 * gets ROOT/NAME when --root is given (one that names its own keeps it). */
static GPtrArray *
load_document (const char *path, const char *verb, int *status)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL, *default_root = NULL;
  GPtrArray *vms;

  if (!g_file_get_contents (path, &text, NULL, &error) ||
      (vms = uvm_vms_new_from_json (text, &error)) == NULL)
    {
      *status = uvmctl_fail (path, verb, error);
      return NULL;
    }
  default_root = uvmctl_default_root ();
  for (guint i = 0; uvmctl_root != NULL && i < vms->len; i++)
    {
      UvmVm *vm = vms->pdata[i];
      g_autofree char *dflt = g_build_filename (default_root, uvm_vm_get_name (vm), NULL);

      if (g_str_equal (uvm_vm_get_runtime_dir (vm), dflt))
        {
          g_autofree char *dir = g_build_filename (uvmctl_root, uvm_vm_get_name (vm), NULL);
          uvm_vm_set_runtime_dir (vm, dir);
        }
    }
  return vms;
}

/* Gateways before the workstations behind them, else document order. */
static GPtrArray *
start_order (GPtrArray *vms)
{
  GPtrArray *order = g_ptr_array_new_with_free_func (g_object_unref);

  while (order->len < vms->len)
    for (guint i = 0; i < vms->len; i++)
      {
        UvmVm *vm = vms->pdata[i], *gw = uvm_vm_get_gateway (vm);

        if (g_ptr_array_find (order, vm, NULL))
          continue;
        if (gw == NULL || !g_ptr_array_find (vms, gw, NULL) || g_ptr_array_find (order, gw, NULL))
          g_ptr_array_add (order, g_object_ref (vm));
      }
  return order;
}

static char *
names_of (GPtrArray *vms)
{
  g_autoptr(GString) names = g_string_new (NULL);

  for (guint i = 0; i < vms->len; i++)
    g_string_append_printf (names, "%s%s", i ? ", " : "", uvm_vm_get_name (vms->pdata[i]));
  return g_strdup (names->str);
}

static void
on_event (UvmVm *vm, UvmEvent *event, gpointer user_data)
{
  g_autofree char *text = uvm_event_to_string (event);

  g_printerr ("uvmctl: %s: %s\n", uvm_vm_get_name (vm), text);
}

static void stop_next (Run *run);

static void
on_stopped (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (!uvm_vm_stop_finish (UVM_VM (source), result, &error))
    uvmctl_fail (uvm_vm_get_name (UVM_VM (source)), "stop", error);
  stop_next (user_data);
}

/* Stops the last VM still running, then the one before: workstations
 * before their gateways. */
static void
stop_next (Run *run)
{
  for (guint i = run->vms->len; i > 0; i--)
    {
      UvmVm *vm = run->vms->pdata[i - 1];
      UvmVmState state = uvm_vm_get_state (vm);

      if (state != UVM_VM_STATE_STOPPED && state != UVM_VM_STATE_CRASHED &&
          state != UVM_VM_STATE_DEFINED)
        {
          uvm_vm_stop_async (vm, run->stop_timeout_ms, NULL, on_stopped, run);
          return;
        }
    }
}

static void
begin_stop (Run *run, const char *why)
{
  g_autofree char *names = names_of (run->vms);
  g_autofree char *text = g_strdup_printf ("STOPPING=1\nSTATUS=stopping %s (%s)", names, why);

  if (run->stopping)
    return;
  run->stopping = TRUE;
  uvmctl_notify (text);
  stop_next (run);
}

static gboolean
on_signal (gpointer user_data)
{
  Run *run = user_data;

  g_cancellable_cancel (run->cancel);
  if (++run->signals == 1)
    begin_stop (run, "asked to stop");
  else
    for (guint i = 0; i < run->vms->len; i++) /* a second signal: no more waiting */
      uvm_vm_kill (run->vms->pdata[i], NULL);
  return G_SOURCE_CONTINUE;
}

static void
on_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *run = user_data;
  UvmVm *vm = UVM_VM (source);

  uvm_vm_wait_finish (vm, result, NULL);
  if (uvm_vm_get_state (vm) == UVM_VM_STATE_CRASHED)
    run->status = UVMCTL_EXIT_FAILED;
  if (!run->stopping)
    {
      /* One VM of the document ended by itself: the document is one
       * service, so the others are stopped too. */
      g_printerr ("uvmctl: %s: ended by itself (%s); stopping the others\n",
                  uvm_vm_get_name (vm), uvm_vm_state_to_string (uvm_vm_get_state (vm)));
      begin_stop (run, "a VM ended");
    }
  if (--run->n_alive == 0)
    g_main_loop_quit (run->loop);
}

/* Starts each VM and waits for its readiness line; on failure stops the
 * ones started (workstations first) and returns the exit code. */
static int
start_all (Run *run, const char *ready_pattern, guint ready_timeout_ms)
{
  for (guint i = 0; i < run->vms->len; i++)
    {
      UvmVm *vm = run->vms->pdata[i];
      const char *name = uvm_vm_get_name (vm);
      g_autofree char *text = g_strdup_printf ("STATUS=starting %s", name);
      g_autoptr(GError) error = NULL;
      g_autofree char *line = NULL;

      uvmctl_notify (text);
      uvm_vm_connect_event (vm, on_event, NULL, NULL);
      if (!uvm_vm_start (vm, run->cancel, &error))
        run->status = uvmctl_fail (name, "start", error);
      else if (ready_pattern != NULL && uvm_vm_get_console_path (vm) != NULL &&
               (line = uvm_vm_wait_for_console (vm, ready_pattern, ready_timeout_ms, run->cancel,
                                                &error)) == NULL)
        run->status = uvmctl_fail (name, "waiting for the ready pattern", error);
      else
        g_printerr ("uvmctl: %s: running (pid %d)%s%s\n", name, uvm_vm_get_pid (vm),
                    line ? ", ready: " : "", line ? line : "");
      if (run->status != UVMCTL_EXIT_OK)
        {
          run->stopping = TRUE;
          for (guint j = i + 1; j > 0; j--)
            uvm_vm_stop (run->vms->pdata[j - 1], run->stop_timeout_ms, NULL, NULL);
          return run->status == UVMCTL_EXIT_OK ? UVMCTL_EXIT_FAILED : run->status;
        }
    }
  return UVMCTL_EXIT_OK;
}

int
uvmctl_run (int argc, char **argv)
{
  gboolean detach = FALSE;
  g_autofree char *ready_pattern = NULL;
  int stop_timeout = DEFAULT_STOP_TIMEOUT_S, ready_timeout = 0;
  const GOptionEntry entries[] = {
    { "detach", 'd', 0, G_OPTION_ARG_NONE, &detach,
      "Start the VMs detached and exit once they run (and are ready)", NULL },
    { "ready-pattern", 0, 0, G_OPTION_ARG_STRING, &ready_pattern,
      "Wait until a line of each VM's console matches TEXT (a GRegex; a plain word is a substring) "
      "before starting the next and before READY=1 (VMs without a console are not waited for)", "TEXT" },
    { "ready-timeout", 0, 0, G_OPTION_ARG_INT, &ready_timeout,
      "Give up waiting for the ready pattern after S seconds (default: no limit)", "S" },
    { "stop-timeout", 0, 0, G_OPTION_ARG_INT, &stop_timeout,
      "Seconds each guest gets to power off after the power button (default 30)", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("run", "DEF.json",
                        "Starts the VMs of a definition document (docs/definition-schema.md),\n"
                        "gateways before the workstations behind them. A VM that keeps the\n"
                        "default runtime directory gets ROOT/NAME under --root.\n\n"
                        "In the foreground (without --detach) it stays until the VMs stop:\n"
                        "SIGINT or SIGTERM stops them gracefully, workstations first (a second\n"
                        "signal kills them); when one VM ends by itself the others are stopped.\n"
                        "Exit status 0 when every VM stopped cleanly, 1 when one crashed.\n\n"
                        "Under systemd (Type=notify, $NOTIFY_SOCKET) it sends READY=1 once every\n"
                        "VM runs and, with --ready-pattern, its console printed the pattern;\n"
                        "STATUS= as it goes, and STOPPING=1 when it stops them.",
                        entries);
  g_autoptr(GPtrArray) loaded = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_autofree char *names = NULL, *ready = NULL;
  Run run = { 0 };
  int status = UVMCTL_EXIT_OK;
  guint sigint, sigterm;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  if (stop_timeout < 0 || ready_timeout < 0)
    {
      g_printerr ("uvmctl run: --stop-timeout and --ready-timeout take seconds >= 0\n");
      return UVMCTL_EXIT_USAGE;
    }
  if ((loaded = load_document (argv[1], "run", &status)) == NULL)
    return status;
  run.vms = start_order (loaded);
  run.loop = loop = g_main_loop_new (NULL, FALSE);
  run.cancel = cancel;
  run.stop_timeout_ms = (guint) stop_timeout * 1000;
  for (guint i = 0; detach && i < run.vms->len; i++)
    uvm_vm_set_lifetime (run.vms->pdata[i], UVM_VM_LIFETIME_DETACHED);

  /* Before the first start, so that a signal during a start or the wait
   * for readiness is a stop, not a kill of uvmctl. */
  sigint = g_unix_signal_add (SIGINT, on_signal, &run);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, &run);
  status = start_all (&run, ready_pattern, (guint) ready_timeout * 1000);
  if (status == UVMCTL_EXIT_OK && !g_cancellable_is_cancelled (cancel))
    {
      names = names_of (run.vms);
      ready = g_strdup_printf ("READY=1\nSTATUS=running %s", names);
      uvmctl_notify (ready);
      if (!detach)
        {
          run.n_alive = run.vms->len;
          for (guint i = 0; i < run.vms->len; i++)
            uvm_vm_wait_async (run.vms->pdata[i], NULL, on_exited, &run);
          g_main_loop_run (loop);
          status = run.status;
        }
    }
  else if (status == UVMCTL_EXIT_OK)
    status = UVMCTL_EXIT_FAILED;
  g_source_remove (sigint);
  g_source_remove (sigterm);
  /* Detached VMs are let go of with the last reference. */
  g_ptr_array_unref (run.vms);
  return status;
}

int
uvmctl_plan (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("plan", "DEF.json",
                        "Prints the launch plan of each VM of a definition document (what run\n"
                        "would execute: argv, fds, helpers, control requests), in start order.",
                        NULL);
  g_autoptr(GPtrArray) loaded = NULL, order = NULL;
  int status = UVMCTL_EXIT_OK;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  if ((loaded = load_document (argv[1], "plan", &status)) == NULL)
    return status;
  order = start_order (loaded);
  for (guint i = 0; i < order->len; i++)
    {
      UvmVm *vm = order->pdata[i];
      g_autoptr(GError) error = NULL;
      g_autofree char *plan = uvm_vm_get_launch_plan (vm, &error);

      if (plan == NULL)
        return uvmctl_fail (uvm_vm_get_name (vm), "plan", error);
      if (order->len > 1)
        g_print ("%s# VM %s\n", i ? "\n" : "", uvm_vm_get_name (vm));
      g_print ("%s", plan);
    }
  return UVMCTL_EXIT_OK;
}
