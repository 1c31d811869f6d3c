/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc/uvm-spawn.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uvm/uvm.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* What the child was doing when it failed: reported with the errno, so the
 * parent can tell a refused namespace from a missing executable. */
typedef enum {
  STEP_SETUP,          /* session, fds, rlimits, parent death signal */
  STEP_NETNS,          /* unshare (CLONE_NEWNET) */
  STEP_BOUNDING,       /* PR_CAPBSET_DROP */
  STEP_GROUPS,         /* setgroups */
  STEP_GID,            /* setresgid */
  STEP_UID,            /* setresuid */
  STEP_CAPS,           /* clearing the ambient and the other capability sets */
  STEP_NO_NEW_PRIVS,
  STEP_FILTER,         /* PR_SET_SECCOMP */
  STEP_EXEC,
} ChildStep;

/* Everything the child reads, computed before fork. */
typedef struct {
  const UvmSpawnRequest *req;
  int *moved;          /* scratch, one per fd */
  int err_fd;          /* write end of the exec-error pipe */
  int high;            /* first number above every source and target */
  int max_target;
  pid_t parent;
  rlim_t nofile;
} ChildPlan;

static void
close_range_compat (unsigned int first, unsigned int last, rlim_t nofile)
{
  if (first > last)
    return;
  if (syscall (SYS_close_range, first, last, 0) == 0)
    return;
  /* Kernels before 5.9: close one by one up to the fd limit. */
  for (rlim_t fd = first; fd <= last && fd < nofile; fd++)
    close ((int) fd);
}

static G_GNUC_NORETURN void
child_fail (const ChildPlan *cp, ChildStep step, int err)
{
  /* One write of 8 bytes: atomic on a pipe. */
  int report[2] = { (int) step, err };
  ssize_t n G_GNUC_UNUSED = write (cp->err_fd, report, sizeof report);
  _exit (127);
}

/* Runs in the child between fork and exec: async-signal-safe calls only. */
static G_GNUC_NORETURN void
child_exec (ChildPlan *cp)
{
  const UvmSpawnRequest *req = cp->req;
  struct sigaction sa = { .sa_handler = SIG_DFL };
  struct rlimit no_core = { 0, 0 };
  sigset_t all;
  int err_fd;

  for (int sig = 1; sig < NSIG; sig++)
    sigaction (sig, &sa, NULL);   /* fails harmlessly for KILL/STOP */
  sigemptyset (&all);
  sigprocmask (SIG_SETMASK, &all, NULL);

  if (setsid () < 0)
    child_fail (cp, STEP_SETUP, errno);

  /* Move the error pipe and every source above all numbers in play, then
   * dup2 onto the targets: a source may sit on another's target. */
  err_fd = fcntl (cp->err_fd, F_DUPFD_CLOEXEC, cp->high);
  if (err_fd < 0)
    child_fail (cp, STEP_SETUP, errno);
  cp->err_fd = err_fd;
  for (guint i = 0; i < req->n_fds; i++)
    {
      cp->moved[i] = fcntl (req->fds[i].source, F_DUPFD_CLOEXEC, cp->high);
      if (cp->moved[i] < 0)
        child_fail (cp, STEP_SETUP, errno);
    }
  for (guint i = 0; i < req->n_fds; i++)
    if (dup2 (cp->moved[i], req->fds[i].target) < 0)   /* clears CLOEXEC */
      child_fail (cp, STEP_SETUP, errno);
  /* Nothing else may reach the hypervisor: not the caller's fds, not GLib's. */
  close_range_compat ((unsigned) cp->max_target + 1, (unsigned) cp->err_fd - 1, cp->nofile);
  close_range_compat ((unsigned) cp->err_fd + 1, ~0U, cp->nofile);

  if (setrlimit (RLIMIT_CORE, &no_core) != 0)
    child_fail (cp, STEP_SETUP, errno);
  /* After the fds are in place: sockets, links and taps belong to the
   * namespace they were made in and keep working from the new one, which
   * has nothing but a down lo.  Before the drop: it needs CAP_SYS_ADMIN. */
  if (req->new_netns && unshare (CLONE_NEWNET) != 0)
    child_fail (cp, STEP_NETNS, errno);
  if (req->creds != NULL)
    {
      const UvmSpawnCreds *cr = req->creds;
      struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
      struct __user_cap_data_struct none[2] = { { 0 } };

      /* The bounding set first: it needs CAP_SETPCAP, gone after setuid.
       * Empty, even a uid 0 regains nothing at execve. */
      if (cr->drop_bounding)
        for (int cap = 0; cap <= cr->last_cap; cap++)
          if (prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            child_fail (cp, STEP_BOUNDING, errno);
      /* Raw syscalls: glibc's wrappers signal every thread of the process
         * (setxid), and the child has one thread, this one. */
      if (cr->change_ids)
        {
          if (syscall (SYS_setgroups, (size_t) cr->n_groups, cr->groups) != 0)
            child_fail (cp, STEP_GROUPS, errno);
          if (syscall (SYS_setresgid, cr->gid, cr->gid, cr->gid) != 0)
            child_fail (cp, STEP_GID, errno);
          if (syscall (SYS_setresuid, cr->uid, cr->uid, cr->uid) != 0)
            child_fail (cp, STEP_UID, errno);
        }
      /* Leaving uid 0 cleared them already; staying at uid 0
       * (UVM_USER_CALLER) or never having been root does not. */
      if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        child_fail (cp, STEP_CAPS, errno);
      if (syscall (SYS_capset, &hdr, none) != 0)
        child_fail (cp, STEP_CAPS, errno);
    }
  /* After every credential change: each one clears the parent death
   * signal.  A detached child outlives us on purpose (its own session). */
  if (!req->detached && prctl (PR_SET_PDEATHSIG, SIGKILL) != 0)
    child_fail (cp, STEP_SETUP, errno);
  /* The parent may have died before PDEATHSIG was armed. */
  if (!req->detached && getppid () != cp->parent)
    _exit (127);
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    child_fail (cp, STEP_NO_NEW_PRIVS, errno);
  /* Last before exec, so nothing above runs under it; no_new_privs lets an
   * unprivileged process load it. */
  if (req->filter != NULL &&
      prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, req->filter, 0, 0) != 0)
    child_fail (cp, STEP_FILTER, errno);

  execve (req->path, req->argv, req->envp);
  child_fail (cp, STEP_EXEC, errno);
}

/* The GError for a child that reported @err at @step. */
static gboolean
child_error (const UvmSpawnRequest *req, ChildStep step, int err, GError **error)
{
  static const char *const step_names[] = {
    [STEP_SETUP] = "setting up the child",
    [STEP_NETNS] = "unshare (CLONE_NEWNET)",
    [STEP_BOUNDING] = "emptying the capability bounding set (PR_CAPBSET_DROP)",
    [STEP_GROUPS] = "setgroups",
    [STEP_GID] = "setresgid",
    [STEP_UID] = "setresuid",
    [STEP_CAPS] = "clearing the capability sets (capset)",
    [STEP_NO_NEW_PRIVS] = "prctl (PR_SET_NO_NEW_PRIVS)",
    [STEP_FILTER] = "loading the seccomp filter (PR_SET_SECCOMP)",
  };

  switch (step)
    {
    case STEP_EXEC:
      return uvm_set_error (error, UVM_ERROR_START_FAILED, "cannot execute '%s': %s", req->path,
                            g_strerror (err));
    case STEP_NETNS:
      if (err == EPERM)
        return uvm_set_error (error, UVM_ERROR_PERMISSION,
                              "confined: creating the empty network namespace for '%s' needs "
                              "CAP_SYS_ADMIN (unshare (CLONE_NEWNET): %s); run as root or with "
                              "CAP_SYS_ADMIN, or do not confine the VM",
                              req->path, g_strerror (err));
      return uvm_set_error (error, UVM_ERROR_START_FAILED,
                            "confined: cannot make a network namespace for '%s': unshare "
                            "(CLONE_NEWNET): %s", req->path, g_strerror (err));
    case STEP_BOUNDING:
    case STEP_GROUPS:
    case STEP_GID:
    case STEP_UID:
    case STEP_CAPS:
      if (err == EPERM)
        return uvm_set_error (error, UVM_ERROR_PERMISSION, "starting '%s' as uid %u gid %u: %s: %s",
                              req->path, (unsigned) req->creds->uid, (unsigned) req->creds->gid,
                              step_names[step], g_strerror (err));
      G_GNUC_FALLTHROUGH;
    case STEP_SETUP:
    case STEP_NO_NEW_PRIVS:
    case STEP_FILTER:
      return uvm_set_error (error, UVM_ERROR_START_FAILED, "starting '%s': %s: %s", req->path,
                            step_names[step], g_strerror (err));
    }
  return uvm_set_error (error, UVM_ERROR_START_FAILED, "starting '%s': child setup failed",
                        req->path);
}

gboolean
uvm_spawn (const UvmSpawnRequest *req, GPid *pid_out, int *pidfd_out, GError **error)
{
  g_autofree int *moved = g_new0 (int, req->n_fds ? req->n_fds : 1);
  ChildPlan cp = { req, moved, -1, 0, -1, getpid (), 1024 };
  struct rlimit rl;
  int pipe_fds[2];
  int report[2] = { 0, 0 };
  ssize_t n;
  pid_t pid;
  int pidfd;

  for (guint i = 0; i < req->n_fds; i++)
    {
      cp.high = MAX (cp.high, MAX (req->fds[i].source, req->fds[i].target));
      cp.max_target = MAX (cp.max_target, req->fds[i].target);
    }
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0)
    cp.nofile = rl.rlim_cur;

  if (pipe2 (pipe_fds, O_CLOEXEC) != 0)
    return uvm_set_error (error, UVM_ERROR_START_FAILED, "pipe: %s", g_strerror (errno));
  cp.err_fd = pipe_fds[1];
  cp.high = MAX (cp.high, MAX (pipe_fds[0], pipe_fds[1])) + 1;

  pid = fork ();
  if (pid < 0)
    {
      int saved = errno;
      close (pipe_fds[0]);
      close (pipe_fds[1]);
      return uvm_set_error (error, UVM_ERROR_START_FAILED, "fork: %s", g_strerror (saved));
    }
  if (pid == 0)
    child_exec (&cp);

  close (pipe_fds[1]);
  /* Safe against pid reuse: the child is ours and not reaped yet. */
  pidfd = pidfd_open (pid, 0);
  do
    n = read (pipe_fds[0], report, sizeof report);
  while (n < 0 && errno == EINTR);
  close (pipe_fds[0]);

  if (n != 0)
    {
      int status;
      if (pidfd >= 0)
        close (pidfd);
      while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      if (n != sizeof report)
        return uvm_set_error (error, UVM_ERROR_START_FAILED, "starting '%s': child setup failed",
                              req->path);
      return child_error (req, (ChildStep) report[0], report[1], error);
    }
  if (pidfd < 0)
    {
      /* Without a pidfd there is no safe way to watch it: do not leave it. */
      int saved = errno, status;
      kill (pid, SIGKILL);
      while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      return uvm_set_error (error, UVM_ERROR_START_FAILED, "pidfd_open: %s (Linux 5.3 or later is needed)",
                            g_strerror (saved));
    }
  *pid_out = pid;
  *pidfd_out = pidfd;
  return TRUE;
}
