/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fd watches multiplexed over one epoll fd per GMainContext.
 *
 * GLib polls every GSource fd on every wake-up, so with one g_unix_fd_source
 * per fd a wake-up costs O(number of VMs).  Here a context has a single
 * GSource holding one epoll fd; its dispatch asks epoll which watches are
 * ready and calls only those, so a wake-up costs O(ready fds).  The epoll
 * fd (O_CLOEXEC) exists while its context has watches.
 *
 * Semantics follow g_unix_fd_source_new(): level-triggered; G_IO_HUP and
 * G_IO_ERR are reported whether asked for or not; callbacks run at
 * G_PRIORITY_DEFAULT in the context the watch was added to; a callback is
 * not re-entered from a nested iteration of that context while it runs.
 * All calls for one context must come from the thread that iterates it.
 *
 * An fd must stay open until its watch is removed: remove the watch before
 * closing the fd, also inside the watch's own callback. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _UvmFdWatch UvmFdWatch;

/* @condition: what was ready.  Return G_SOURCE_CONTINUE to keep the watch,
 * G_SOURCE_REMOVE to remove it (as uvm_fd_watch_remove()); ignored when
 * the callback removed the watch itself. */
typedef gboolean (*UvmFdWatchFunc) (int fd, GIOCondition condition, gpointer user_data);

/* Watches @fd for @condition (G_IO_IN, G_IO_OUT, G_IO_PRI; may be 0 to park
 * the watch) in @context (NULL: the global default context).  The watch is
 * owned by the caller until uvm_fd_watch_remove() or until @func returns
 * G_SOURCE_REMOVE.
 *
 * Returns NULL with @error set (G_FILE_ERROR, from errno) when the context
 * has no epoll fd yet and epoll_create1() fails (out of fds or memory), or
 * when epoll refuses @fd (a regular file, a closed fd, max_user_watches
 * reached, or no fd left for the dup a second watch on @fd needs).
 * Nothing is left behind then. */
UvmFdWatch *uvm_fd_watch_add (GMainContext  *context,
                              int            fd,
                              GIOCondition   condition,
                              UvmFdWatchFunc func,
                              gpointer       user_data,
                              GError       **error);

void uvm_fd_watch_set_condition (UvmFdWatch *watch, GIOCondition condition);

GIOCondition uvm_fd_watch_get_condition (UvmFdWatch *watch);

/* Stops the watch; @func is not called again, also not for events already
 * fetched in the dispatch under way.  Safe inside any watch's callback. */
void uvm_fd_watch_remove (UvmFdWatch *watch);

G_END_DECLS
