/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl: the verb table, what every verb shares (options, errors, exit
 * codes, attaching), and the read-only verbs list and status. */
#include "uvmctl.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

char *uvmctl_root = NULL;

static int uvmctl_list (int argc, char **argv);
static int uvmctl_status (int argc, char **argv);

static const struct {
  const char *name;
  int (*func) (int argc, char **argv);
  const char *summary;
} verbs[] = {
  { "run", uvmctl_run, "start the VMs of a definition document; stay until they stop" },
  { "list", uvmctl_list, "list the VMs under the runtime root" },
  { "status", uvmctl_status, "show one VM" },
  { "stop", uvmctl_stop, "stop a VM gracefully (power button, then escalation)" },
  { "kill", uvmctl_kill, "kill a VM's hypervisor now" },
  { "pause", uvmctl_pause, "pause a VM's vCPUs" },
  { "resume", uvmctl_resume, "resume a paused VM" },
  { "console", uvmctl_console, "the VM's serial console on this terminal (Ctrl-] ends)" },
  { "balloon", uvmctl_balloon, "set the memory a VM's balloon leaves the guest" },
  { "plan", uvmctl_plan, "print the launch plans of a definition document" },
  { "qmp", uvmctl_qmp, "send a raw QMP command (qemu)" },
  { "api", uvmctl_api, "send a raw REST request (cloud-hypervisor)" },
  { "events", uvmctl_events, "print a VM's events as JSON lines until it ends" },
};

static const GOptionEntry root_entries[] = {
  { "root", 0, 0, G_OPTION_ARG_FILENAME, &uvmctl_root,
    "Runtime root of the VMs (default: /run/uvm as root, $XDG_RUNTIME_DIR/uvm otherwise)", "DIR" },
  { NULL }
};

GOptionContext *
uvmctl_options_new (const char *verb, const char *params, const char *summary,
                    const GOptionEntry *entries)
{
  g_autofree char *usage = g_strdup_printf ("%s%s%s", verb, params ? " " : "", params ? params : "");
  GOptionContext *options = g_option_context_new (usage);

  g_option_context_set_summary (options, summary);
  g_option_context_set_description (options, UVMCTL_EXIT_CODES_HELP);
  g_option_context_add_main_entries (options, root_entries, NULL);
  if (entries != NULL)
    g_option_context_add_main_entries (options, entries, NULL);
  return options;
}

gboolean
uvmctl_parse (GOptionContext *options, int *argc, char ***argv, int min_args, int max_args)
{
  g_autoptr(GError) error = NULL;
  const char *verb = (*argv)[0];

  if (!g_option_context_parse (options, argc, argv, &error))
    {
      g_printerr ("uvmctl %s: %s (see uvmctl %s --help)\n", verb, error->message, verb);
      return FALSE;
    }
  if (*argc - 1 < min_args || *argc - 1 > max_args)
    {
      g_autofree char *expected = min_args == max_args
                                    ? g_strdup_printf ("%d", min_args)
                                    : g_strdup_printf ("%d to %d", min_args, max_args);

      g_printerr ("uvmctl %s: expected %s arguments, got %d (see uvmctl %s --help)\n", verb,
                  expected, *argc - 1, verb);
      return FALSE;
    }
  return TRUE;
}

int
uvmctl_exit_code (const GError *error)
{
  if (error->domain != UVM_ERROR)
    return UVMCTL_EXIT_FAILED;
  switch (error->code)
    {
    case UVM_ERROR_NOT_FOUND:
      return UVMCTL_EXIT_NOT_FOUND;
    case UVM_ERROR_BUSY:
      return UVMCTL_EXIT_BUSY;
    case UVM_ERROR_NOT_RUNNING:
      return UVMCTL_EXIT_NOT_RUNNING;
    default:
      return UVMCTL_EXIT_FAILED;
    }
}

int
uvmctl_fail (const char *name, const char *what, const GError *error)
{
  g_printerr ("uvmctl: %s: %s: %s\n", name, what, error->message);
  return uvmctl_exit_code (error);
}

UvmVm *
uvmctl_attach (const char *name, const char *what, int *status)
{
  g_autoptr(GError) error = NULL;
  UvmVm *vm = uvm_vm_attach (uvmctl_root, name, NULL, &error);

  if (vm == NULL)
    *status = uvmctl_fail (name, what, error);
  return vm;
}

char *
uvmctl_default_root (void)
{
  /* The directory the library would give a VM, less the VM's name. */
  g_autoptr(UvmVm) probe = uvm_vm_new ("uvmctl-probe", UVM_HYPERVISOR_QEMU);

  return g_path_get_dirname (uvm_vm_get_runtime_dir (probe));
}

UvmVmInfo *
uvmctl_find (const char *name, const char *what, int *status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) infos = uvm_vm_list (uvmctl_root, &error);

  if (infos == NULL)
    {
      *status = uvmctl_fail (name, what, error);
      return NULL;
    }
  for (guint i = 0; i < infos->len; i++)
    if (g_str_equal (uvm_vm_info_get_name (infos->pdata[i]), name))
      return uvm_vm_info_ref (infos->pdata[i]);
  g_printerr ("uvmctl: %s: %s: no such VM under %s\n", name, what,
              uvmctl_root ? uvmctl_root : "the default runtime root");
  *status = UVMCTL_EXIT_NOT_FOUND;
  return NULL;
}

gboolean
uvmctl_parse_size (const char *text, guint64 *out)
{
  static const struct { const char *unit; guint64 factor; } units[] = {
    { "", 1 }, { "B", 1 }, { "K", UVM_KIB }, { "KiB", UVM_KIB }, { "M", UVM_MIB },
    { "MiB", UVM_MIB }, { "G", UVM_GIB }, { "GiB", UVM_GIB },
    { "T", UVM_GIB * 1024 }, { "TiB", UVM_GIB * 1024 },
  };
  const char *end = text;
  guint64 n;

  while (g_ascii_isdigit (*end))
    end++;
  if (end == text || end - text > 15)
    return FALSE;
  n = g_ascii_strtoull (text, NULL, 10);
  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    if (g_str_equal (end, units[i].unit))
      {
        *out = n * units[i].factor;
        return TRUE;
      }
  return FALSE;
}

static int
uvmctl_list (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("list", NULL,
                        "Lists the VMs with a state record under the runtime root, one a line:\n"
                        "NAME HYPERVISOR PID DETACHED STALE CONTROLLER (the pid of the process\n"
                        "that controls it, or - when none does). Stale records are reclaimed.",
                        NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) infos = NULL;

  if (!uvmctl_parse (options, &argc, &argv, 0, 0))
    return UVMCTL_EXIT_USAGE;
  infos = uvm_vm_list (uvmctl_root, &error);
  if (infos == NULL)
    {
      g_printerr ("uvmctl: list: %s\n", error->message);
      return uvmctl_exit_code (error);
    }
  g_print ("%-24s %-16s %8s %-8s %-5s %s\n", "NAME", "HYPERVISOR", "PID", "DETACHED", "STALE",
           "CONTROLLER");
  for (guint i = 0; i < infos->len; i++)
    {
      UvmVmInfo *info = infos->pdata[i];
      int controller = uvm_vm_info_get_controller_pid (info);
      g_autofree char *ctl = controller > 0 ? g_strdup_printf ("%d", controller) : g_strdup ("-");

      g_print ("%-24s %-16s %8d %-8s %-5s %s\n", uvm_vm_info_get_name (info),
               uvm_vm_info_get_hypervisor (info), uvm_vm_info_get_pid (info),
               uvm_vm_info_get_detached (info) ? "yes" : "no",
               uvm_vm_info_get_stale (info) ? "yes" : "no", ctl);
    }
  return UVMCTL_EXIT_OK;
}

static int
uvmctl_status (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("status", "NAME",
                        "Shows one VM: its record (hypervisor, pid, runtime directory, whether\n"
                        "detached, stale, who controls it) and, when no other process controls\n"
                        "it, its state (attaching briefly). Exit status 0 when it runs, 5 when\n"
                        "its record is stale, 3 when there is no such VM.",
                        NULL);
  g_autoptr(UvmVmInfo) info = NULL;
  const char *name, *state = NULL;
  g_autoptr(UvmVm) vm = NULL;
  int status = UVMCTL_EXIT_OK, controller;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  name = argv[1];
  if ((info = uvmctl_find (name, "status", &status)) == NULL)
    return status;
  controller = uvm_vm_info_get_controller_pid (info);
  if (uvm_vm_info_get_stale (info))
    state = "stale (the process is gone; record reclaimed)";
  else if (controller == 0 && (vm = uvmctl_attach (name, "status", &status)) != NULL)
    state = uvm_vm_state_to_string (uvm_vm_get_state (vm));
  else if (controller == 0)
    return status;
  g_print ("name: %s\n", name);
  g_print ("state: %s\n", state ? state : "running (another process controls it)");
  g_print ("hypervisor: %s\n", uvm_vm_info_get_hypervisor (info));
  g_print ("pid: %d\n", uvm_vm_info_get_pid (info));
  g_print ("detached: %s\n", uvm_vm_info_get_detached (info) ? "yes" : "no");
  g_print ("controller: %d\n", controller);
  g_print ("runtime-dir: %s\n", uvm_vm_info_get_runtime_dir (info));
  return uvm_vm_info_get_stale (info) ? UVMCTL_EXIT_NOT_RUNNING : UVMCTL_EXIT_OK;
}

static void
print_help (FILE *out)
{
  fprintf (out, "Usage: uvmctl [--root DIR] VERB [OPTIONS] [ARGUMENTS]\n\n"
                "Controls libuvm microVMs. Verbs (uvmctl VERB --help for each):\n");
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    fprintf (out, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
  fprintf (out, "\nOptions:\n"
                "  --root DIR  runtime root of the VMs (default: /run/uvm as root,\n"
                "              $XDG_RUNTIME_DIR/uvm otherwise)\n"
                "  --version   print libuvm's version\n\n%s", UVMCTL_EXIT_CODES_HELP);
}

int
main (int argc, char **argv)
{
  int i = 1;

  setlocale (LC_ALL, "");
  g_set_prgname ("uvmctl");
  /* Read before any thread exists: the children must not inherit it. */
  uvmctl_notify_init ();
  while (i < argc && argv[i][0] == '-')
    {
      if (g_str_equal (argv[i], "--help") || g_str_equal (argv[i], "-h"))
        {
          print_help (stdout);
          return UVMCTL_EXIT_OK;
        }
      if (g_str_equal (argv[i], "--version"))
        {
          g_print ("uvmctl (libuvm %s)\n", uvm_get_version ());
          return UVMCTL_EXIT_OK;
        }
      if (g_str_equal (argv[i], "--root") && i + 1 < argc)
        {
          uvmctl_root = g_strdup (argv[i + 1]);
          i += 2;
        }
      else if (g_str_has_prefix (argv[i], "--root="))
        uvmctl_root = g_strdup (argv[i++] + strlen ("--root="));
      else
        {
          g_printerr ("uvmctl: unknown option '%s' (see uvmctl --help)\n", argv[i]);
          return UVMCTL_EXIT_USAGE;
        }
    }
  if (i >= argc)
    {
      g_printerr ("uvmctl: no verb given\n\n");
      print_help (stderr);
      return UVMCTL_EXIT_USAGE;
    }
  for (guint v = 0; v < G_N_ELEMENTS (verbs); v++)
    if (g_str_equal (argv[i], verbs[v].name))
      return verbs[v].func (argc - i, argv + i);
  g_printerr ("uvmctl: unknown verb '%s' (see uvmctl --help)\n", argv[i]);
  return UVMCTL_EXIT_USAGE;
}
