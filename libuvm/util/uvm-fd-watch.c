/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See uvm-fd-watch.h.
 *
 * Lifetime.  A watch has one reference from its owner (until removed) and
 * one per dispatch that fetched an event for it, so a watch removed by an
 * earlier callback in the same batch is skipped, not used after free.  The
 * per-context source exists while the context has watches: created by the
 * first add, destroyed by the last remove (the context keeps it alive
 * until a dispatch under way returns), so no VM, no epoll fd. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "util/uvm-fd-watch.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Events fetched per dispatch; more stay ready (level-triggered) for the
 * next iteration, and epoll rotates its ready list, so none starves. */
#define MAX_EVENTS 64

typedef struct {
  GSource       source;
  GMainContext *context; /* a reference; the key in loops */
  guint         n_watches;
  int           epfd;
} FdLoop;

struct _UvmFdWatch {
  FdLoop        *loop;     /* NULL once removed */
  int            fd;       /* the caller's */
  int            reg_fd;   /* registered with epoll: fd, or our dup of it */
  GIOCondition   condition;
  UvmFdWatchFunc func;
  gpointer       user_data;
  guint          refs;
  gboolean       in_call;   /* its callback is running */
  gboolean       suspended; /* taken out of epoll during a nested iteration */
};

/* GMainContext -> FdLoop; contexts may be iterated in different threads. */
static GMutex loops_lock;
static GHashTable *loops;

static guint32
epoll_events (GIOCondition condition)
{
  /* poll(2) and epoll share the bit values for these; HUP and ERR are
   * always reported. */
  return condition & (G_IO_IN | G_IO_OUT | G_IO_PRI);
}

static gboolean
epoll_set (FdLoop *loop, int op, UvmFdWatch *watch)
{
  struct epoll_event ev = { .events = epoll_events (watch->condition), .data.ptr = watch };

  return epoll_ctl (loop->epfd, op, watch->reg_fd, op == EPOLL_CTL_DEL ? NULL : &ev) == 0;
}

static void
watch_unref (UvmFdWatch *watch)
{
  if (--watch->refs == 0)
    g_free (watch);
}

static gboolean
fd_loop_dispatch (GSource *source, G_GNUC_UNUSED GSourceFunc callback, G_GNUC_UNUSED gpointer data)
{
  FdLoop *loop = (FdLoop *) source;
  struct epoll_event events[MAX_EVENTS];
  int n;

  do
    n = epoll_wait (loop->epfd, events, MAX_EVENTS, 0);
  while (n < 0 && errno == EINTR);

  for (int i = 0; i < n; i++)
    ((UvmFdWatch *) events[i].data.ptr)->refs++;

  for (int i = 0; i < n; i++)
    {
      UvmFdWatch *watch = events[i].data.ptr;
      gboolean keep;

      if (watch->loop == NULL)
        continue;   /* removed by an earlier callback */
      if (watch->in_call)
        {
          /* A nested iteration of the context from inside this watch's
           * callback: like a non-recursive GSource, the watch sleeps until
           * the callback returns; out of epoll so the poll does not spin. */
          if (!watch->suspended && epoll_set (loop, EPOLL_CTL_DEL, watch))
            watch->suspended = TRUE;
          continue;
        }

      watch->in_call = TRUE;
      keep = watch->func (watch->fd, events[i].events & (G_IO_IN | G_IO_OUT | G_IO_PRI |
                                                         G_IO_ERR | G_IO_HUP),
                          watch->user_data);
      watch->in_call = FALSE;

      if (watch->loop == NULL)
        continue;
      if (!keep)
        uvm_fd_watch_remove (watch);
      else if (watch->suspended)
        {
          watch->suspended = FALSE;
          epoll_set (watch->loop, EPOLL_CTL_ADD, watch);
        }
    }

  for (int i = 0; i < n; i++)
    watch_unref (events[i].data.ptr);

  return G_SOURCE_CONTINUE;
}

static void
fd_loop_finalize (GSource *source)
{
  FdLoop *loop = (FdLoop *) source;

  close (loop->epfd);
  g_main_context_unref (loop->context);
}

static GSourceFuncs fd_loop_funcs = {
  .dispatch = fd_loop_dispatch,
  .finalize = fd_loop_finalize,
};

static FdLoop *
fd_loop_get (GMainContext *context, GError **error)
{
  FdLoop *loop;
  int epfd;

  g_mutex_lock (&loops_lock);
  if (loops == NULL)
    loops = g_hash_table_new (NULL, NULL);
  loop = g_hash_table_lookup (loops, context);
  if (loop == NULL)
    {
      epfd = epoll_create1 (EPOLL_CLOEXEC);
      if (epfd < 0)
        {
          /* Out of fds or memory: the caller's to report, not ours to abort. */
          int saved_errno = errno;

          g_mutex_unlock (&loops_lock);
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       "epoll_create1: %s", g_strerror (saved_errno));
          return NULL;
        }

      loop = (FdLoop *) g_source_new (&fd_loop_funcs, sizeof (FdLoop));
      loop->context = g_main_context_ref (context);
      loop->epfd = epfd;
      g_source_set_static_name (&loop->source, "[uvm] fd watches");
      /* Nested iterations (the sync API) must still see the other fds. */
      g_source_set_can_recurse (&loop->source, TRUE);
      g_source_add_unix_fd (&loop->source, epfd, G_IO_IN);
      g_source_attach (&loop->source, context);
      g_hash_table_insert (loops, context, loop);
    }
  g_mutex_unlock (&loops_lock);
  return loop;
}

static void
fd_loop_release (FdLoop *loop)
{
  if (--loop->n_watches > 0)
    return;
  g_mutex_lock (&loops_lock);
  g_hash_table_remove (loops, loop->context);
  g_mutex_unlock (&loops_lock);
  g_source_destroy (&loop->source);
  g_source_unref (&loop->source);
}

UvmFdWatch *
uvm_fd_watch_add (GMainContext  *context,
                  int            fd,
                  GIOCondition   condition,
                  UvmFdWatchFunc func,
                  gpointer       user_data,
                  GError       **error)
{
  UvmFdWatch *watch;
  FdLoop *loop;
  int saved_errno;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (context == NULL)
    context = g_main_context_default ();
  loop = fd_loop_get (context, error);
  if (loop == NULL)
    return NULL;

  watch = g_new0 (UvmFdWatch, 1);
  watch->loop = loop;
  watch->fd = fd;
  watch->reg_fd = fd;
  watch->condition = condition;
  watch->func = func;
  watch->user_data = user_data;
  watch->refs = 1;
  loop->n_watches++;

  if (epoll_set (loop, EPOLL_CTL_ADD, watch))
    return watch;
  if (errno == EEXIST)
    {
      /* epoll takes an fd once; a second watch on it goes in as a dup. */
      watch->reg_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
      if (watch->reg_fd >= 0 && epoll_set (loop, EPOLL_CTL_ADD, watch))
        return watch;
    }

  /* EBADF, EPERM (a regular file), ENOMEM, ENOSPC (max_user_watches),
   * EMFILE for the dup: nothing to watch; undo, which also drops an epoll
   * fd made for this watch alone. */
  saved_errno = errno;
  if (watch->reg_fd != fd && watch->reg_fd >= 0)
    close (watch->reg_fd);
  watch->reg_fd = -1;
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               "watching fd %d: %s", fd, g_strerror (saved_errno));
  watch->loop = NULL;
  fd_loop_release (loop);
  watch_unref (watch);
  return NULL;
}

void
uvm_fd_watch_set_condition (UvmFdWatch *watch, GIOCondition condition)
{
  g_return_if_fail (watch != NULL && watch->loop != NULL);

  if (watch->condition == condition)
    return;
  watch->condition = condition;
  if (!watch->suspended)
    epoll_set (watch->loop, EPOLL_CTL_MOD, watch);
}

GIOCondition
uvm_fd_watch_get_condition (UvmFdWatch *watch)
{
  g_return_val_if_fail (watch != NULL, 0);

  return watch->condition;
}

void
uvm_fd_watch_remove (UvmFdWatch *watch)
{
  FdLoop *loop;

  if (watch == NULL || watch->loop == NULL)
    return;
  loop = g_steal_pointer (&watch->loop);
  if (!watch->suspended)
    epoll_set (loop, EPOLL_CTL_DEL, watch);
  if (watch->reg_fd != watch->fd && watch->reg_fd >= 0)
    close (watch->reg_fd);
  fd_loop_release (loop);
  watch_unref (watch);
}
