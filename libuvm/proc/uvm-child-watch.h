/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Watches one child through its pidfd on a GMainContext: GLib 2.74's child
 * watch uses SIGCHLD and waitpid, which another part of the program may
 * disturb; a pidfd is ours alone and cannot name a recycled pid. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _UvmChildWatch UvmChildWatch;

/* Called once, after the child was reaped.  @exit_code is -1 when a signal
 * ended it; @exit_signal is 0 otherwise. */
typedef void (*UvmChildExitFunc) (int exit_code, int exit_signal, gpointer user_data);

/* Takes ownership of @pidfd.  NULL with @error (UVM_ERROR_FAILED) when the
 * pidfd cannot be watched (util/uvm-fd-watch.h: out of fds or memory);
 * the child is then killed (SIGKILL) and reaped, and @pidfd closed, as
 * by uvm_child_watch_free(): a child nobody watches must not run on. */
UvmChildWatch *uvm_child_watch_new (GPid pid, int pidfd, GMainContext *context,
                                    UvmChildExitFunc func, gpointer user_data,
                                    GError **error);
/* Watches @pid, which is NOT our child (a detached VM's hypervisor that
 * another process started): takes @pidfd (pidfd_open()).  It cannot be
 * reaped, so its exit status is unknown: @func gets -1 and -1. */
UvmChildWatch *uvm_child_watch_new_foreign (GPid pid, int pidfd, GMainContext *context,
                                            UvmChildExitFunc func, gpointer user_data,
                                            GError **error);
/* Stops watching without a signal: the process runs on (a detached VM
 * whose supervisor lets go).  Frees. */
void           uvm_child_watch_release (UvmChildWatch *watch);
/* FALSE with errno when the child is gone or the signal failed. */
gboolean       uvm_child_watch_signal (UvmChildWatch *watch, int sig);
GPid           uvm_child_watch_get_pid (UvmChildWatch *watch);
/* Whether the child has exited (a zombie not reaped yet counts), without
 * reaping it. */
gboolean       uvm_child_watch_has_exited (UvmChildWatch *watch);
/* Kills (SIGKILL) and reaps a child still running (a foreign process:
 * waits for its end, up to a few seconds), without calling the exit
 * function; then frees. */
void           uvm_child_watch_free (UvmChildWatch *watch);

G_END_DECLS
