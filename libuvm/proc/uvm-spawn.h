/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fork + exec of a hypervisor with exactly the fds it should have. */
#pragma once

#include <glib.h>
#include <linux/filter.h>

#include "proc/uvm-user.h"

G_BEGIN_DECLS

typedef struct {
  int source;   /* fd in this process (not taken) */
  int target;   /* number it gets in the child */
} UvmSpawnFd;

typedef struct {
  const char *path;          /* resolved executable */
  char *const *argv;         /* argv[0] included */
  char *const *envp;
  const UvmSpawnFd *fds;     /* stdin/stdout/stderr included, as targets 0-2 */
  guint n_fds;
  /* Confinement (both optional): a new, empty network namespace, and a
   * seccomp filter loaded last before execve (built by the caller, e.g.
   * uvm_seccomp_build_confinement(); not taken). */
  gboolean new_netns;
  const struct sock_fprog *filter;
  /* Least privilege (optional, not taken): the bounding set emptied, the
   * ids changed, every capability set cleared (see uvm_spawn_creds_init()).
   * NULL keeps our credentials: only for tests. */
  const UvmSpawnCreds *creds;
  /* Outlives its parent: no parent-death signal (a detached VM). */
  gboolean detached;
} UvmSpawnRequest;

/* Spawns the child: new session, default signal dispositions and an empty
 * mask, exactly the requested fds (everything else closed), core dumps off
 * (guest memory holds secrets), optionally its own network namespace
 * (unshare (CLONE_NEWNET): only a down lo; the fds it gets keep working),
 * then with @creds the bounding set dropped, setgroups/setresgid/setresuid,
 * the ambient, inheritable, permitted and effective sets cleared; unless
 * @detached, killed when this thread exits (PR_SET_PDEATHSIG, armed after
 * the id changes, which clear it); no_new_privs, optionally @filter.  Everything the child needs is built
 * before fork; the child makes only async-signal-safe calls.
 *
 * On success returns TRUE with the pid and a pidfd (O_CLOEXEC).  A failure
 * of the child's setup or of exec is reported through a close-on-exec pipe
 * (the step and its errno), the child reaped, and FALSE returned with
 * UVM_ERROR_START_FAILED, or UVM_ERROR_PERMISSION naming CAP_SYS_ADMIN when
 * the new network namespace was refused with EPERM, or naming the
 * credential step that was refused. */
gboolean uvm_spawn (const UvmSpawnRequest *request, GPid *pid_out, int *pidfd_out,
                    GError **error);

G_END_DECLS
