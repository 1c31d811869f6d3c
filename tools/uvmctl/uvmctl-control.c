/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The verbs that take over a running VM for one operation
 * (uvm_vm_attach()) and let go of it afterwards: stop, kill, pause,
 * resume, balloon, qmp, api, and events, which stays until the VM ends. */
#include "uvmctl.h"

#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#define DEFAULT_STOP_TIMEOUT_S 30
#define KILL_WAIT_MS 10000

int
uvmctl_stop (int argc, char **argv)
{
  int timeout = DEFAULT_STOP_TIMEOUT_S, status = UVMCTL_EXIT_OK;
  const GOptionEntry entries[] = {
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
      "Seconds the guest gets to power off after the power button; 0 skips the button "
      "(default 30)", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("stop", "NAME",
                        "Stops a VM: the power button, up to --timeout for the guest to power\n"
                        "off, then the hypervisor's quit, SIGTERM and SIGKILL. Returns once the\n"
                        "hypervisor is gone and its runtime directory removed.",
                        entries);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  if (timeout < 0)
    {
      g_printerr ("uvmctl stop: --timeout takes seconds >= 0\n");
      return UVMCTL_EXIT_USAGE;
    }
  if ((vm = uvmctl_attach (argv[1], "stop", &status)) == NULL)
    return status;
  if (!uvm_vm_stop (vm, (guint) timeout * 1000, NULL, &error))
    return uvmctl_fail (argv[1], "stop", error);
  return UVMCTL_EXIT_OK;
}

int
uvmctl_kill (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("kill", "NAME",
                        "Sends SIGKILL to a VM's hypervisor and waits until it is gone.", NULL);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int status = UVMCTL_EXIT_OK;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  if ((vm = uvmctl_attach (argv[1], "kill", &status)) == NULL)
    return status;
  if (!uvm_vm_kill (vm, &error) || !uvm_vm_wait (vm, KILL_WAIT_MS, NULL, &error))
    return uvmctl_fail (argv[1], "kill", error);
  return UVMCTL_EXIT_OK;
}

static int
pause_or_resume (int argc, char **argv, gboolean pause)
{
  const char *verb = pause ? "pause" : "resume";
  g_autoptr(GOptionContext) options =
    uvmctl_options_new (verb, "NAME",
                        pause ? "Pauses a VM's vCPUs (it stays paused after uvmctl exits)."
                              : "Resumes a paused VM.",
                        NULL);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int status = UVMCTL_EXIT_OK;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  if ((vm = uvmctl_attach (argv[1], verb, &status)) == NULL)
    return status;
  if (!(pause ? uvm_vm_pause (vm, NULL, &error) : uvm_vm_resume (vm, NULL, &error)))
    return uvmctl_fail (argv[1], verb, error);
  return UVMCTL_EXIT_OK;
}

int
uvmctl_pause (int argc, char **argv)
{
  return pause_or_resume (argc, argv, TRUE);
}

int
uvmctl_resume (int argc, char **argv)
{
  return pause_or_resume (argc, argv, FALSE);
}

int
uvmctl_balloon (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("balloon", "NAME SIZE",
                        "Asks the guest's balloon driver to leave it SIZE of memory (a number\n"
                        "of bytes, or digits and a unit: B, K, KiB, M, MiB, G, GiB, T, TiB).\n"
                        "The VM needs a balloon device.",
                        NULL);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  int status = UVMCTL_EXIT_OK;
  guint64 size;

  if (!uvmctl_parse (options, &argc, &argv, 2, 2))
    return UVMCTL_EXIT_USAGE;
  if (!uvmctl_parse_size (argv[2], &size))
    {
      g_printerr ("uvmctl balloon: SIZE: expected a size such as 512MiB, got '%s'\n", argv[2]);
      return UVMCTL_EXIT_USAGE;
    }
  if ((vm = uvmctl_attach (argv[1], "balloon", &status)) == NULL)
    return status;
  if (!uvm_vm_set_balloon_target (vm, size, NULL, &error))
    return uvmctl_fail (argv[1], "balloon", error);
  return UVMCTL_EXIT_OK;
}

int
uvmctl_qmp (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("qmp", "NAME COMMAND [ARGS-JSON]",
                        "Sends a raw QMP command to a qemu VM and prints the reply's \"return\"\n"
                        "value as JSON. ARGS-JSON is the command's arguments object.",
                        NULL);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;
  int status = UVMCTL_EXIT_OK;

  if (!uvmctl_parse (options, &argc, &argv, 2, 3))
    return UVMCTL_EXIT_USAGE;
  if ((vm = uvmctl_attach (argv[1], "qmp", &status)) == NULL)
    return status;
  reply = uvm_vm_qmp_execute (vm, argv[2], argc > 3 ? argv[3] : NULL, NULL, &error);
  if (reply == NULL)
    return uvmctl_fail (argv[1], "qmp", error);
  g_print ("%s\n", reply);
  return UVMCTL_EXIT_OK;
}

int
uvmctl_api (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("api", "NAME METHOD ENDPOINT [BODY-JSON]",
                        "Sends a raw request to a cloud-hypervisor VM's REST API (METHOD GET or\n"
                        "PUT, ENDPOINT such as vm.info) and prints the response body. A status\n"
                        "other than 2xx is named on stderr and gives exit status 1.",
                        NULL);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *body = NULL;
  int status = UVMCTL_EXIT_OK;
  guint http = 0;

  if (!uvmctl_parse (options, &argc, &argv, 3, 4))
    return UVMCTL_EXIT_USAGE;
  if ((vm = uvmctl_attach (argv[1], "api", &status)) == NULL)
    return status;
  body = uvm_vm_ch_request (vm, argv[2], argv[3], argc > 4 ? argv[4] : NULL, &http, NULL, &error);
  if (body == NULL)
    return uvmctl_fail (argv[1], "api", error);
  if (*body != '\0')
    g_print ("%s\n", body);
  if (http < 200 || http > 299)
    {
      g_printerr ("uvmctl: %s: api: %s %s: HTTP status %u\n", argv[1], argv[2], argv[3], http);
      return UVMCTL_EXIT_FAILED;
    }
  return UVMCTL_EXIT_OK;
}

/* One event as one line of JSON: what uvm_event_get_*() tell. */
static void
print_event (UvmVm *vm, UvmEvent *event, gpointer user_data)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  UvmEventKind kind = uvm_event_get_kind (event);
  const char *data = uvm_event_get_data_json (event);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "vm");
  json_builder_add_string_value (b, uvm_vm_get_name (vm));
  json_builder_set_member_name (b, "kind");
  json_builder_add_string_value (b, uvm_event_kind_to_string (kind));
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, uvm_vm_state_to_string (uvm_event_get_state (event)));
  if (kind == UVM_EVENT_STATE_CHANGED)
    {
      json_builder_set_member_name (b, "previous_state");
      json_builder_add_string_value (b, uvm_vm_state_to_string (uvm_event_get_previous_state (event)));
    }
  if (kind == UVM_EVENT_HYPERVISOR_EXITED)
    {
      json_builder_set_member_name (b, "exit_code");
      json_builder_add_int_value (b, uvm_event_get_exit_code (event));
      json_builder_set_member_name (b, "exit_signal");
      json_builder_add_int_value (b, uvm_event_get_exit_signal (event));
    }
  if (uvm_event_get_device_id (event) != NULL)
    {
      json_builder_set_member_name (b, "device_id");
      json_builder_add_string_value (b, uvm_event_get_device_id (event));
    }
  if (uvm_event_get_name (event) != NULL)
    {
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, uvm_event_get_name (event));
    }
  if (data != NULL)
    {
      JsonNode *node = json_from_string (data, NULL);

      json_builder_set_member_name (b, "data");
      if (node != NULL)
        json_builder_add_value (b, node);
      else
        json_builder_add_string_value (b, data); /* not JSON after all: as text */
    }
  json_builder_set_member_name (b, "timestamp_us");
  json_builder_add_int_value (b, uvm_event_get_timestamp (event));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  g_print ("%s\n", text);
  fflush (stdout);
}

static void
on_ended (GObject *source, GAsyncResult *result, gpointer user_data)
{
  uvm_vm_wait_finish (UVM_VM (source), result, NULL);
  g_main_loop_quit (user_data);
}

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

int
uvmctl_events (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("events", "NAME",
                        "Takes over a VM and prints each of its events as one JSON object a line\n"
                        "(vm, kind, state, and by kind previous_state, exit_code, exit_signal,\n"
                        "device_id, name, data, timestamp_us) until the VM ends. SIGINT or\n"
                        "SIGTERM ends it sooner and leaves the VM running.",
                        NULL);
  g_autoptr(UvmVm) vm = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  int status = UVMCTL_EXIT_OK;
  guint sigint, sigterm;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  if ((vm = uvmctl_attach (argv[1], "events", &status)) == NULL)
    return status;
  loop = g_main_loop_new (NULL, FALSE);
  uvm_vm_connect_event (vm, print_event, NULL, NULL);
  uvm_vm_wait_async (vm, NULL, on_ended, loop);
  sigint = g_unix_signal_add (SIGINT, on_signal, loop);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  return UVMCTL_EXIT_OK;
}
