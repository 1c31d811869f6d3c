/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc/uvm-child-watch.h"
#include "util/uvm-fd-watch.h"

#include <uvm/uvm-error.h>

#include <errno.h>
#include <poll.h>
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
  gboolean foreign;         /* not our child: never reaped by us */
  UvmFdWatch *watch;
  UvmChildExitFunc func;
  gpointer user_data;
};

/* A foreign process has ended when its pidfd is readable. */
static gboolean
foreign_ended (UvmChildWatch *self, int timeout_ms)
{
  struct pollfd p = { .fd = self->pidfd, .events = POLLIN };
  int n;

  while ((n = poll (&p, 1, timeout_ms)) < 0 && errno == EINTR)
    ;
  return n > 0;
}

static gboolean
reap (UvmChildWatch *self, int options, int *code, int *sig)
{
  siginfo_t info = { 0 };

  if (self->foreign)
    {
      if (!foreign_ended (self, (options & WNOHANG) ? 0 : 5000))
        return FALSE;
      self->reaped = TRUE;
      *code = *sig = -1;   /* only its parent learns how it ended */
      return TRUE;
    }

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
  /* Now, while the pidfd is open: self may be freed below. */
  g_clear_pointer (&self->watch, uvm_fd_watch_remove);
  self->func (code, sig, self->user_data);   /* may free self */
  return G_SOURCE_REMOVE;
}

static UvmChildWatch *
watch_new (GPid pid, int pidfd, gboolean foreign, GMainContext *context, UvmChildExitFunc func,
           gpointer user_data, GError **error)
{
  UvmChildWatch *self = g_new0 (UvmChildWatch, 1);
  g_autoptr(GError) watch_error = NULL;

  self->pid = pid;
  self->pidfd = pidfd;
  self->foreign = foreign;
  self->func = func;
  self->user_data = user_data;
  self->watch = uvm_fd_watch_add (context, pidfd, G_IO_IN, on_pidfd_readable, self, &watch_error);
  if (self->watch == NULL)
    {
      /* An unwatched child would never be reported: none at all (killed
       * and reaped by the free, as for any child still running). */
      g_set_error (error, UVM_ERROR, UVM_ERROR_FAILED, "watching process %d: %s", (int) pid,
                   watch_error->message);
      uvm_child_watch_free (self);
      return NULL;
    }
  return self;
}

UvmChildWatch *
uvm_child_watch_new (GPid pid, int pidfd, GMainContext *context, UvmChildExitFunc func,
                     gpointer user_data, GError **error)
{
  return watch_new (pid, pidfd, FALSE, context, func, user_data, error);
}

UvmChildWatch *
uvm_child_watch_new_foreign (GPid pid, int pidfd, GMainContext *context, UvmChildExitFunc func,
                             gpointer user_data, GError **error)
{
  return watch_new (pid, pidfd, TRUE, context, func, user_data, error);
}

void
uvm_child_watch_release (UvmChildWatch *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->watch, uvm_fd_watch_remove);
  close (self->pidfd);
  g_free (self);
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
  if (self->foreign)
    return foreign_ended (self, 0);
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
  g_clear_pointer (&self->watch, uvm_fd_watch_remove);
  if (!self->reaped)
    {
      pidfd_send_signal (self->pidfd, SIGKILL, NULL, 0);
      reap (self, 0, &code, &sig);
    }
  close (self->pidfd);
  g_free (self);
}
