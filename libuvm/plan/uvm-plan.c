/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "plan/uvm-plan.h"
#include "proc/uvm-seccomp.h"
#include "util/uvm-util.h"

static void
plan_fd_free (gpointer data)
{
  UvmPlanFd *fd = data;

  g_clear_object (&fd->device);
  g_free (fd->what);
  g_free (fd);
}

UvmPlan *
uvm_plan_new (const char *vm_name, const char *backend_name, const char *binary)
{
  UvmPlan *plan = g_new0 (UvmPlan, 1);

  plan->vm_name = g_strdup (vm_name);
  plan->backend_name = g_strdup (backend_name);
  plan->binary = g_strdup (binary);
  plan->args = g_ptr_array_new_with_free_func (g_free);
  plan->fds = g_ptr_array_new_with_free_func (plan_fd_free);
  plan->requests = g_ptr_array_new_with_free_func (g_free);
  return plan;
}

void
uvm_plan_free (UvmPlan *plan)
{
  if (plan == NULL)
    return;
  g_free (plan->vm_name);
  g_free (plan->backend_name);
  g_free (plan->binary);
  g_ptr_array_unref (plan->args);
  g_ptr_array_unref (plan->fds);
  g_ptr_array_unref (plan->requests);
  g_free (plan->runtime_dir);
  g_free (plan->control_path);
  g_free (plan->log_path);
  if (plan->backend_data_free != NULL)
    plan->backend_data_free (plan->backend_data);
  g_free (plan);
}

void
uvm_plan_add_args (UvmPlan *plan, const char *first, ...)
{
  va_list args;

  va_start (args, first);
  for (const char *a = first; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (plan->args, g_strdup (a));
  va_end (args);
}

void
uvm_plan_take_arg (UvmPlan *plan, char *arg)
{
  g_ptr_array_add (plan->args, arg);
}

static UvmPlanFd *
plan_fd_new (UvmPlan *plan, int target, UvmPlanFdKind kind, UvmDevice *device, const char *what)
{
  UvmPlanFd *fd = g_new0 (UvmPlanFd, 1);

  fd->target = target;
  fd->kind = kind;
  fd->device = device ? g_object_ref (device) : NULL;
  fd->what = g_strdup (what);
  g_ptr_array_add (plan->fds, fd);
  return fd;
}

void
uvm_plan_add_control_fd (UvmPlan *plan, UvmPlanFdKind kind, UvmDevice *device, const char *what)
{
  plan_fd_new (plan, UVM_PLAN_FD_NOT_INHERITED, kind, device, what);
}

int
uvm_plan_add_fd (UvmPlan *plan, UvmPlanFdKind kind, UvmDevice *device, const char *what)
{
  int target = UVM_PLAN_FIRST_FD;

  /* Inherited fds are numbered densely from 3, in the order added. */
  for (guint i = 0; i < plan->fds->len; i++)
    if (((UvmPlanFd *) g_ptr_array_index (plan->fds, i))->target != UVM_PLAN_FD_NOT_INHERITED)
      target++;
  return plan_fd_new (plan, target, kind, device, what)->target;
}

void
uvm_plan_add_request (UvmPlan *plan, const char *request)
{
  g_ptr_array_add (plan->requests, g_strdup (request));
}

char *
uvm_plan_to_command_line (const UvmPlan *plan)
{
  GString *out = g_string_new (NULL);
  g_autofree char *bin = uvm_shell_quote (plan->binary);

  g_string_append (out, bin);
  for (guint i = 0; i < plan->args->len; i++)
    {
      g_autofree char *q = uvm_shell_quote (g_ptr_array_index (plan->args, i));
      g_string_append_c (out, ' ');
      g_string_append (out, q);
    }
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

/* The runner script users read: one option (with its value) per line. */
char *
uvm_plan_to_script (const UvmPlan *plan)
{
  GString *out = g_string_new (NULL);
  g_autofree char *bin = uvm_shell_quote (plan->binary);

  g_autofree char *title = g_strdup_printf ("libuvm launch plan for VM '%s' (%s)",
                                            plan->vm_name, plan->backend_name);

  g_string_append (out, "#!/bin/sh\n");
  append_comment (out, "", title, "");
  append_comment (out, "runtime directory: ", plan->runtime_dir, " (mode 0700)");
  append_comment (out, "hypervisor stdout/stderr: ", plan->log_path, "");
  g_string_append (out, "# fd 0: /dev/null\n");
  for (guint i = 0; i < plan->fds->len; i++)
    {
      const UvmPlanFd *fd = g_ptr_array_index (plan->fds, i);
      g_autofree char *label = fd->target == UVM_PLAN_FD_NOT_INHERITED
                                 ? g_strdup ("sent over the control socket: ")
                                 : g_strdup_printf ("fd %d: ", fd->target);
      append_comment (out, label, fd->what, "");
    }
  if (plan->confined)
    g_string_append (out, "# confined: empty network namespace; seccomp denies "
                          UVM_SECCOMP_DENIED_FAMILIES " sockets\n");
  g_string_append (out, "exec ");
  g_string_append (out, bin);
  for (guint i = 0; i < plan->args->len; i++)
    {
      const char *arg = g_ptr_array_index (plan->args, i);
      g_autofree char *q = uvm_shell_quote (arg);
      g_string_append (out, arg[0] == '-' ? " \\\n    " : " ");
      g_string_append (out, q);
    }
  g_string_append (out, "\n# control requests after spawn, in order:\n");
  for (guint i = 0; i < plan->requests->len; i++)
    append_comment (out, "  ", g_ptr_array_index (plan->requests, i), "");
  return g_string_free (out, FALSE);
}
