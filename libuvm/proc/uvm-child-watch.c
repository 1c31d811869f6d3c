/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc/uvm-child-watch.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct _UvmChildWatch
{
  GPid pid;
  int pidfd;
  gboolean reaped;
  GSource *source;
  UvmChildExitFunc func;
  gpointer user_data;
};

static gboolean
reap (UvmChildWatch *self, int options, int *code, int *sig)
{
  siginfo_t info = { 0 };

  while (waitid (P_PIDFD, self->pidfd, &info, WEXITED | options) < 0)
    if (errno != EINTR)
      return FALSE;
  if (info.si_pid == 0)
    return FALSE;   /* WNOHANG and still running */
  self->reaped = TRUE;
  *code = info.si_code == CLD_EXITED ? info.si_status : -1;
  *sig = info.si_code == CLD_EXITED ? 0 : info.si_status;
  return TRUE;
}

static gboolean
on_pidfd_readable (int fd, GIOCondition condition, gpointer user_data)
{
  UvmChildWatch *self = user_data;
  int code, sig;

  if (!reap (self, WNOHANG, &code, &sig))
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&self->source, g_source_unref);
  self->func (code, sig, self->user_data);   /* may free self */
  return G_SOURCE_REMOVE;
}

UvmChildWatch *
uvm_child_watch_new (GPid pid, int pidfd, GMainContext *context, UvmChildExitFunc func,
                     gpointer user_data)
{
  UvmChildWatch *self = g_new0 (UvmChildWatch, 1);

  self->pid = pid;
  self->pidfd = pidfd;
  self->func = func;
  self->user_data = user_data;
  self->source = g_unix_fd_source_new (pidfd, G_IO_IN);
  g_source_set_callback (self->source, G_SOURCE_FUNC (on_pidfd_readable), self, NULL);
  g_source_set_static_name (self->source, "uvm child watch");
  g_source_attach (self->source, context);
  return self;
}

gboolean
uvm_child_watch_signal (UvmChildWatch *self, int sig)
{
  if (self->reaped)
    {
      errno = ESRCH;
      return FALSE;
    }
  return pidfd_send_signal (self->pidfd, sig, NULL, 0) == 0;
}

GPid
uvm_child_watch_get_pid (UvmChildWatch *self)
{
  return self->reaped ? 0 : self->pid;
}

gboolean
uvm_child_watch_has_exited (UvmChildWatch *self)
{
  siginfo_t info = { 0 };

  if (self->reaped)
    return TRUE;
  while (waitid (P_PIDFD, self->pidfd, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
    if (errno != EINTR)
      return FALSE;
  return info.si_pid != 0;
}

void
uvm_child_watch_free (UvmChildWatch *self)
{
  int code, sig;

  if (self == NULL)
    return;
  if (self->source != NULL)
    {
      g_source_destroy (self->source);
      g_clear_pointer (&self->source, g_source_unref);
    }
  if (!self->reaped)
    {
      pidfd_send_signal (self->pidfd, SIGKILL, NULL, 0);
      reap (self, 0, &code, &sig);
    }
  close (self->pidfd);
  g_free (self);
}
