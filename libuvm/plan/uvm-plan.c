/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "plan/uvm-plan.h"

#include <fcntl.h>
#include "proc/uvm-seccomp.h"
#include "proc/uvm-user.h"
#include "util/uvm-util.h"

static void
plan_fd_free (gpointer data)
{
  UvmPlanFd *fd = data;

  g_free (fd->what);
  g_free (fd->path);
  g_free (fd);
}

static void
plan_helper_free (gpointer data)
{
  UvmPlanHelper *helper = data;

  g_free (helper->binary);
  g_ptr_array_unref (helper->args);
  g_ptr_array_unref (helper->fds);
  g_free (helper->what);
  g_free (helper->log_path);
  g_free (helper);
}

UvmPlanRequest *
uvm_plan_request_new (const char *method, const char *target, const char *body,
                      UvmPlanRequestRole role)
{
  UvmPlanRequest *request = g_new0 (UvmPlanRequest, 1);

  request->method = g_strdup (method);
  request->target = g_strdup (target);
  request->body = g_strdup (body);
  request->fds = g_array_new (FALSE, FALSE, sizeof (guint));
  request->role = role;
  return request;
}

void
uvm_plan_request_free (UvmPlanRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->method);
  g_free (request->target);
  g_free (request->body);
  g_array_unref (request->fds);
  g_free (request);
}

void
uvm_plan_request_add_fd (UvmPlanRequest *request, guint index)
{
  g_array_append_val (request->fds, index);
}

/* The number of @plan->fds[@index] among the fds sent over the control
 * socket, from 1 ("s1" in the printed plan). */
static guint
control_fd_number (const UvmPlan *plan, guint index)
{
  guint n = 0;

  for (guint i = 0; i <= index && i < plan->fds->len; i++)
    if (((UvmPlanFd *) g_ptr_array_index (plan->fds, i))->target == UVM_PLAN_FD_NOT_INHERITED)
      n++;
  return n;
}

char *
uvm_plan_request_to_string (const UvmPlanRequest *request, const UvmPlan *plan)
{
  GString *out = g_string_new (NULL);

  if (request->method == NULL)
    {
      g_string_append_printf (out, "{\"execute\": \"%s\"", request->target);
      if (request->body != NULL)
        g_string_append_printf (out, ", \"arguments\": %s", request->body);
      g_string_append_c (out, '}');
    }
  else
    {
      g_string_append_printf (out, "%s %s", request->method, request->target);
      if (request->body != NULL)
        g_string_append_printf (out, " %s", request->body);
    }
  for (guint i = 0; i < request->fds->len; i++)
    {
      guint index = g_array_index (request->fds, guint, i);

      if (plan != NULL)
        g_string_append_printf (out, " + fd s%u (SCM_RIGHTS)", control_fd_number (plan, index));
      else
        g_string_append (out, " + fd (SCM_RIGHTS)");
    }
  return g_string_free (out, FALSE);
}

UvmPlan *
uvm_plan_new (UvmDesc *desc, const char *backend_name)
{
  UvmPlan *plan = g_new0 (UvmPlan, 1);

  plan->desc = uvm_desc_ref (desc);
  plan->backend_name = g_strdup (backend_name);
  plan->binary = g_strdup (desc->binary);
  plan->args = g_ptr_array_new_with_free_func (g_free);
  plan->fds = g_ptr_array_new_with_free_func (plan_fd_free);
  plan->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) uvm_plan_request_free);
  plan->helpers = g_ptr_array_new_with_free_func (plan_helper_free);
  return plan;
}

void
uvm_plan_free (UvmPlan *plan)
{
  if (plan == NULL)
    return;
  uvm_desc_unref (plan->desc);
  g_free (plan->backend_name);
  g_free (plan->binary);
  g_ptr_array_unref (plan->args);
  g_ptr_array_unref (plan->fds);
  g_ptr_array_unref (plan->requests);
  g_ptr_array_unref (plan->helpers);
  g_free (plan);
}

static void
add_args_va (GPtrArray *to, const char *first, va_list args)
{
  for (const char *a = first; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (to, g_strdup (a));
}

void
uvm_plan_add_args (UvmPlan *plan, const char *first, ...)
{
  va_list args;

  va_start (args, first);
  add_args_va (plan->args, first, args);
  va_end (args);
}

void
uvm_plan_take_arg (UvmPlan *plan, char *arg)
{
  g_ptr_array_add (plan->args, arg);
}

static UvmPlanFd *
plan_fd_new (GPtrArray *fds, int target, UvmPlanFdKind kind, const UvmDescDevice *device,
             const char *what)
{
  UvmPlanFd *fd = g_new0 (UvmPlanFd, 1);

  fd->target = target;
  fd->kind = kind;
  fd->device = device;
  fd->what = g_strdup (what);
  g_ptr_array_add (fds, fd);
  return fd;
}

guint
uvm_plan_add_control_fd (UvmPlan *plan, UvmPlanFdKind kind, const UvmDescDevice *device,
                         const char *what)
{
  plan_fd_new (plan->fds, UVM_PLAN_FD_NOT_INHERITED, kind, device, what);
  return plan->fds->len - 1;
}

static int
add_inherited_fd (GPtrArray *fds, UvmPlanFdKind kind, const UvmDescDevice *device,
                  const char *what)
{
  int target = UVM_PLAN_FIRST_FD;

  /* Inherited fds are numbered densely from 3, in the order added. */
  for (guint i = 0; i < fds->len; i++)
    if (((UvmPlanFd *) g_ptr_array_index (fds, i))->target != UVM_PLAN_FD_NOT_INHERITED)
      target++;
  return plan_fd_new (fds, target, kind, device, what)->target;
}

int
uvm_plan_add_fd (UvmPlan *plan, UvmPlanFdKind kind, const UvmDescDevice *device, const char *what)
{
  return add_inherited_fd (plan->fds, kind, device, what);
}

UvmPlanHelper *
uvm_plan_add_helper (UvmPlan *plan, const char *binary, const UvmDescDevice *device,
                     const char *what, const char *log_path)
{
  UvmPlanHelper *helper = g_new0 (UvmPlanHelper, 1);

  helper->binary = g_strdup (binary);
  helper->args = g_ptr_array_new_with_free_func (g_free);
  helper->fds = g_ptr_array_new_with_free_func (plan_fd_free);
  helper->device = device;
  helper->what = g_strdup (what);
  helper->log_path = g_strdup (log_path);
  g_ptr_array_add (plan->helpers, helper);
  return helper;
}

void
uvm_plan_helper_add_args (UvmPlanHelper *helper, const char *first, ...)
{
  va_list args;

  va_start (args, first);
  add_args_va (helper->args, first, args);
  va_end (args);
}

int
uvm_plan_helper_add_fd (UvmPlanHelper *helper, UvmPlanFdKind kind,
                        const UvmDescDevice *device, const char *what)
{
  return add_inherited_fd (helper->fds, kind, device, what);
}

int
uvm_plan_add_file_fd (UvmPlan *plan, const char *path, int flags, UvmPlanFileUse use,
                      const char *what)
{
  int target = add_inherited_fd (plan->fds, UVM_PLAN_FD_FILE, NULL, what);
  UvmPlanFd *fd = g_ptr_array_index (plan->fds, plan->fds->len - 1);

  fd->path = g_strdup (path);
  fd->flags = flags;
  fd->use = use;
  return target;
}

int
uvm_plan_helper_add_file_fd (UvmPlanHelper *helper, const char *path, int flags, const char *what)
{
  int target = add_inherited_fd (helper->fds, UVM_PLAN_FD_FILE, NULL, what);
  UvmPlanFd *fd = g_ptr_array_index (helper->fds, helper->fds->len - 1);

  fd->path = g_strdup (path);
  fd->flags = flags;
  fd->use = UVM_PLAN_FILE_FD;
  return target;
}

UvmPlanHelper *
uvm_plan_add_console_relay (UvmPlan *plan, const UvmDescDevice *console, UvmPlanFdKind hv_kind,
                            const char *hv_what)
{
  const UvmDesc *desc = plan->desc;
  g_autofree char *log_path = g_build_filename (desc->runtime_dir, "console-relay.log", NULL);
  g_autofree char *what = g_strdup_printf ("%s: console relay (every byte of the serial line "
                                           "to the log and to the clients of the console "
                                           "socket; their input to the guest)", console->id);
  g_autofree char *log_what = g_strdup_printf ("%s: console log '%s' (write, append)",
                                               console->id, desc->console_path);
  g_autofree char *sock_what = g_strdup_printf ("%s: console socket, listening on %s",
                                                console->id, desc->console_socket_path);
  UvmPlanHelper *relay = uvm_plan_add_helper (plan, "uvm-console-relay", console, what, log_path);
  g_autofree char *hv_fd = g_strdup_printf ("%d", uvm_plan_helper_add_fd (relay, hv_kind, console,
                                                                          hv_what));
  g_autofree char *log_fd = g_strdup_printf ("%d", uvm_plan_helper_add_file_fd (relay,
                                               desc->console_path, O_WRONLY | O_CREAT | O_APPEND,
                                               log_what));
  g_autofree char *sock_fd = g_strdup_printf ("%d", uvm_plan_helper_add_fd (relay,
                                                UVM_PLAN_FD_CONSOLE_SOCKET, console, sock_what));

  if (hv_kind == UVM_PLAN_FD_CONSOLE_PTY)
    plan->stdio_console = console;
  uvm_plan_helper_add_args (relay, "--hypervisor-fd", hv_fd, "--log-fd", log_fd,
                            "--listen-fd", sock_fd, NULL);
  return relay;
}

UvmPlanRequest *
uvm_plan_add_request (UvmPlan *plan, UvmPlanRequest *request)
{
  g_ptr_array_add (plan->requests, request);
  return request;
}

static void
append_command (GString *out, const char *binary, GPtrArray *args)
{
  g_autofree char *bin = uvm_shell_quote (binary);

  g_string_append (out, bin);
  for (guint i = 0; i < args->len; i++)
    {
      g_autofree char *q = uvm_shell_quote (g_ptr_array_index (args, i));
      g_string_append_c (out, ' ');
      g_string_append (out, q);
    }
}

char *
uvm_plan_to_command_line (const UvmPlan *plan)
{
  GString *out = g_string_new (NULL);

  /* Helpers first, in the background, as they are started. */
  for (guint i = 0; i < plan->helpers->len; i++)
    {
      const UvmPlanHelper *helper = g_ptr_array_index (plan->helpers, i);
      append_command (out, helper->binary, helper->args);
      g_string_append (out, " & ");
    }
  append_command (out, plan->binary, plan->args);
  return g_string_free (out, FALSE);
}

/* Text from names and paths goes into "# ..." comment lines: a newline in
 * it would end the comment and turn the rest into a command of the script.
 * Control characters are written as \xNN instead. */
static void
append_comment_text (GString *out, const char *text)
{
  for (const guchar *p = (const guchar *) text; *p; p++)
    {
      if (*p < 0x20 || *p == 0x7f)
        g_string_append_printf (out, "\\x%02x", *p);
      else
        g_string_append_c (out, (char) *p);
    }
}

static void
append_comment (GString *out, const char *label, const char *text, const char *suffix)
{
  g_string_append_printf (out, "# %s", label);
  append_comment_text (out, text);
  g_string_append_printf (out, "%s\n", suffix);
}

/* "# fd N: ..." lines, with @indent after the "# " (helpers' are indented
 * so that the hypervisor's fds stay the "# fd N:" lines). */
static void
append_fds (GString *out, const char *indent, GPtrArray *fds, const char *stdin_text)
{
  g_autofree char *null_line = g_strdup_printf ("# %sfd 0: %s\n", indent, stdin_text);
  guint sent = 0;

  g_string_append (out, null_line);
  for (guint i = 0; i < fds->len; i++)
    {
      const UvmPlanFd *fd = g_ptr_array_index (fds, i);
      g_autofree char *label = fd->target == UVM_PLAN_FD_NOT_INHERITED
                                 ? g_strdup_printf ("%sfd s%u, sent over the control socket: ",
                                                    indent, ++sent)
                                 : g_strdup_printf ("%sfd %d: ", indent, fd->target);
      append_comment (out, label, fd->what, "");
    }
}

/* @binary and @args, one option (with its value) per line. */
static void
append_script_command (GString *out, const char *binary, GPtrArray *args)
{
  g_autofree char *bin = uvm_shell_quote (binary);

  g_string_append (out, bin);
  for (guint i = 0; i < args->len; i++)
    {
      const char *arg = g_ptr_array_index (args, i);
      g_autofree char *q = uvm_shell_quote (arg);
      g_string_append (out, arg[0] == '-' ? " \\\n    " : " ");
      g_string_append (out, q);
    }
}

/* Who the processes run as (uvm_vm_set_user()). */
static void
append_user (GString *out, const UvmPlan *plan)
{
  g_string_append (out, "# user: ");
  if (plan->desc->uid == UVM_USER_DYNAMIC)
    g_string_append_printf (out, "dynamic (as root: a uid of its own, %u to %u; otherwise the "
                                 "caller's)", UVM_USER_RANGE_FIRST,
                            UVM_USER_RANGE_FIRST + UVM_USER_RANGE_SIZE - 1);
  else if (plan->desc->uid == UVM_USER_CALLER)
    g_string_append (out, "the caller's");
  else
    g_string_append_printf (out, "uid %u gid %u", plan->desc->uid, plan->desc->gid);
  g_string_append (out, ", for the hypervisor and its helpers; supplementary group: the owner "
                        "of /dev/kvm; no capabilities, empty bounding set, no_new_privs\n");
}

/* The runner script users read: one option (with its value) per line. */
char *
uvm_plan_to_script (const UvmPlan *plan)
{
  GString *out = g_string_new (NULL);

  g_autofree char *title = g_strdup_printf ("libuvm launch plan for VM '%s' (%s)",
                                            plan->desc->name, plan->backend_name);

  g_string_append (out, "#!/bin/sh\n");
  append_comment (out, "", title, "");
  append_comment (out, "runtime directory: ", plan->desc->runtime_dir, " (mode 0700)");
  append_user (out, plan);
  /* Helpers run before the hypervisor and are stopped after it exits; the
   * library makes the socket pairs between them (a shell cannot). */
  for (guint i = 0; i < plan->helpers->len; i++)
    {
      const UvmPlanHelper *helper = g_ptr_array_index (plan->helpers, i);

      append_comment (out, "helper: ", helper->what,
                      " (started before the hypervisor, not confined; terminated when the "
                      "hypervisor exits)");
      append_comment (out, "  stdout/stderr: ", helper->log_path, "");
      append_fds (out, "  ", helper->fds, "/dev/null");
      append_script_command (out, helper->binary, helper->args);
      g_string_append (out, " &\n");
    }
  if (plan->stdio_console != NULL)
    {
      g_autofree char *label = g_strdup_printf ("%s: the terminal side of the console's pty "
                                                "(its other side is the relay's)",
                                                plan->stdio_console->id);
      append_comment (out, "hypervisor stderr: ", plan->desc->log_path, "");
      append_comment (out, "hypervisor stdin/stdout: ", label, "");
      append_fds (out, "", plan->fds, "the console's pty, terminal side (fd 1 too; above)");
    }
  else
    {
      append_comment (out, "hypervisor stdout/stderr: ", plan->desc->log_path, "");
      append_fds (out, "", plan->fds, "/dev/null");
    }
  if (plan->desc->confined)
    g_string_append (out, "# confined: empty network namespace; seccomp denies "
                          UVM_SECCOMP_DENIED_FAMILIES " sockets\n");
  g_string_append (out, "exec ");
  append_script_command (out, plan->binary, plan->args);
  g_string_append (out, "\n# control requests after spawn, in order (the launcher sends "
                        "exactly these):\n");
  for (guint i = 0; i < plan->requests->len; i++)
    {
      g_autofree char *text = uvm_plan_request_to_string (g_ptr_array_index (plan->requests, i),
                                                          plan);
      append_comment (out, "  ", text, "");
    }
  g_string_append (out, "# control requests of a later uvm_vm_attach () from another process, "
                        "in order:\n");
  for (guint i = 0; i < plan->requests->len; i++)
    {
      const UvmPlanRequest *request = g_ptr_array_index (plan->requests, i);
      g_autofree char *text = NULL;

      if (!request->on_attach)
        continue;
      text = uvm_plan_request_to_string (request, plan);
      append_comment (out, "  ", text, "");
    }
  return g_string_free (out, FALSE);
}
