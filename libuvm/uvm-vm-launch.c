/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Executing a launch plan: the runtime directory, the user, the fds the
 * plan lists, the helpers and the hypervisor, the control connection, and
 * the plan's control requests in order.  Ends when the hypervisor is
 * controllable (uvm_vm_start) or the start failed with nothing left. */
#include "uvm-vm-private.h"
#include "proc/uvm-seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static gboolean
prepare_user (UvmVm *self, GError **error)
{
  uid_t uid = self->user_uid;
  gid_t gid = self->user_gid;

  g_clear_pointer (&self->user_lease, uvm_user_lease_release);
  self->have_creds = FALSE;
  if (self->user_uid == UVM_USER_CALLER ||
      (self->user_uid == UVM_USER_DYNAMIC && !uvm_user_can_change_ids ()))
    {
      uid = getuid ();
      gid = getgid ();
    }
  else if (self->user_uid == UVM_USER_DYNAMIC)
    {
      self->user_lease = uvm_user_lease_acquire (self->name, error);
      if (self->user_lease == NULL)
        return FALSE;
      uid = gid = uvm_user_lease_get_uid (self->user_lease);
    }
  if (!uvm_spawn_creds_init (&self->creds, uid, gid, error))
    {
      g_clear_pointer (&self->user_lease, uvm_user_lease_release);
      return FALSE;
    }
  self->have_creds = TRUE;
  return TRUE;
}

/* ---- Start --------------------------------------------------------- */

void
uvm_vm_abort_start (UvmVm *self, GError *error)
{
  /* Someone else's VM: an attach that fails lets go of it, never ends it. */
  if (self->attach_task != NULL)
    {
      uvm_vm_attach_failed (self, error != NULL ? error : g_steal_pointer (&self->start_error));
      return;
    }
  if (self->start_error == NULL)
    self->start_error = error;
  else
    g_clear_error (&error);
  g_cancellable_cancel (self->start_cancellable);
  /* The exit handler completes the start: nothing is reported before the
   * process is reaped and its files are gone. */
  if (self->child != NULL)
    {
      self->sent_kill = TRUE;
      uvm_child_watch_signal (self->child, SIGKILL);
    }
}

static gboolean
on_start_grace (gpointer user_data)
{
  UvmVm *self = user_data;

  g_clear_pointer (&self->start_timeout, g_source_unref);
  uvm_vm_abort_start (self, NULL);   /* the cause is recorded already */
  return G_SOURCE_REMOVE;
}

void
uvm_vm_clear_start_plan (UvmVm *self)
{
  if (self->start_fds != NULL)
    for (guint i = 0; i < self->start_fds->len; i++)
      uvm_close_fd (&g_array_index (self->start_fds, int, i));
  g_clear_pointer (&self->start_fds, g_array_unref);
  g_clear_pointer (&self->start_requests, g_ptr_array_unref);
  g_clear_pointer (&self->start_plan, uvm_plan_free);
  self->start_step = 0;
  self->start_have_state = FALSE;
}

/* A request of the plan failed (@error taken). */
static void
start_request_failed (UvmVm *self, GError *error)
{
  if (g_error_matches (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED) &&
      self->attach_task == NULL &&
      self->child != NULL && !uvm_child_watch_has_exited (self->child))
    {
      /* It closed its end of the control socket: most likely it is
       * exiting, and its own exit status and last log lines are the root
       * cause.  A moment for that before we end it. */
      self->start_error = error;
      g_cancellable_cancel (self->start_cancellable);
      uvm_vm_eof_grace (self, &self->start_timeout, on_start_grace);
      return;
    }
  uvm_vm_abort_start (self, error);
}

static void
start_succeeded (UvmVm *self, UvmVmState state)
{
  GError *error = NULL;
  GTask *task;

  /* Before start returns, the record says it is ready: a detached VM can
   * be attached to at once.  A VM that cannot be recorded is not started. */
  if (self->start_plan != NULL && !uvm_vm_write_record (self, self->start_plan, TRUE, &error))
    {
      uvm_vm_abort_start (self, error);
      return;
    }
  uvm_vm_clear_start_plan (self);
  uvm_source_clear (&self->start_timeout);
  uvm_source_clear (&self->start_cancel_source);
  g_clear_object (&self->start_cancellable);
  if (self->attach_task != NULL)
    {
      uvm_vm_set_state (self, state);
      uvm_vm_attach_succeeded (self);
      return;
    }
  task = g_steal_pointer (&self->start_task);
  uvm_vm_set_state (self, state);
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
on_request_reply (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(UvmVm) self = user_data;
  GError *error = NULL;
  g_autoptr(UvmControlReply) reply = g_task_propagate_pointer (G_TASK (result), &error);
  const UvmPlanRequest *request;

  if ((self->start_task == NULL && self->attach_task == NULL) || self->start_error != NULL)
    {
      g_clear_error (&error);   /* aborted already; the exit handler reports */
      return;
    }
  if (reply == NULL)
    {
      start_request_failed (self, error);
      return;
    }
  request = g_ptr_array_index (self->start_requests, self->start_step);
  /* Sent: our copies of the fds it carried are not needed any more. */
  for (guint i = 0; i < request->fds->len; i++)
    uvm_close_fd (&g_array_index (self->start_fds, int, g_array_index (request->fds, guint, i)));
  if (request->role == UVM_PLAN_REQUEST_STATE)
    {
      if (!self->control->klass->reply_state (self->control, reply, &self->start_state, &error))
        {
          uvm_vm_abort_start (self, error);
          return;
        }
      self->start_have_state = TRUE;
    }
  self->start_step++;
  uvm_vm_send_requests (self);
}

/* The plan's control requests, one at a time, in its order: exactly what
 * uvm_vm_get_launch_plan() prints (an attach: the plan's on_attach ones). */
void
uvm_vm_send_requests (UvmVm *self)
{
  const UvmPlanRequest *request;
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));

  if (self->start_step == self->start_requests->len)
    {
      if (!self->start_have_state)
        uvm_vm_abort_start (self, g_error_new (UVM_ERROR, UVM_ERROR_PROTOCOL,
                                               "the %s plan has no request that reports the "
                                               "guest's state",
                                               uvm_hypervisor_to_string (self->hypervisor)));
      else
        start_succeeded (self, self->start_state);
      return;
    }
  request = g_ptr_array_index (self->start_requests, self->start_step);
  for (guint i = 0; i < request->fds->len; i++)
    g_array_append_val (fds, g_array_index (self->start_fds, int,
                                            g_array_index (request->fds, guint, i)));
  self->control->klass->send_async (self->control, request, (const int *) fds->data, fds->len,
                                    FALSE, self->start_cancellable, on_request_reply,
                                    g_object_ref (self));
}

static gboolean on_start_timeout (gpointer user_data);
static gboolean on_start_cancelled (GCancellable *cancellable, gpointer user_data);

void
uvm_vm_arm_start_deadlines (UvmVm *self, GCancellable *cancellable)
{
  self->start_cancellable = g_cancellable_new ();
  self->start_timeout = uvm_vm_attach_source (g_timeout_source_new (START_TIMEOUT_MS),
                                              self->context, on_start_timeout, self);
  if (cancellable != NULL)
    self->start_cancel_source = uvm_vm_attach_source (g_cancellable_source_new (cancellable),
                                                      self->context,
                                                      G_SOURCE_FUNC (on_start_cancelled), self);
}

static gboolean
on_start_timeout (gpointer user_data)
{
  UvmVm *self = user_data;

  g_clear_pointer (&self->start_timeout, g_source_unref);
  uvm_vm_abort_start (self, g_error_new (UVM_ERROR, UVM_ERROR_TIMEOUT,
                                  "it did not become ready within %d ms", START_TIMEOUT_MS));
  return G_SOURCE_REMOVE;
}

static gboolean
on_start_cancelled (GCancellable *cancellable, gpointer user_data)
{
  UvmVm *self = user_data;

  g_clear_pointer (&self->start_cancel_source, g_source_unref);
  uvm_vm_abort_start (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "VM '%s': start cancelled",
                                  self->name));
  return G_SOURCE_REMOVE;
}


static int
bind_control_socket (const char *path, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "control socket: %s", g_strerror (errno));
      return -1;
    }
  unlink (path);
  /* Bound and listening before the hypervisor exists: our connection
   * queues in the backlog, so there is no socket to wait or poll for. */
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 || chmod (path, 0600) != 0 ||
      listen (fd, 16) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "control socket '%s': %s", path,
                     g_strerror (errno));
      uvm_close_fd (&fd);
    }
  return fd;
}

int
uvm_vm_connect_control (const char *path, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "connecting to '%s': %s", path,
                     g_strerror (errno));
      uvm_close_fd (&fd);
    }
  return fd;
}

/* A log file of a run (the hypervisor's or a helper's stdout and stderr):
 * made new, ours, never a link. */
static int
open_log (const char *path, GError **error)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0)
    uvm_set_error (error, UVM_ERROR_START_FAILED, "opening '%s': %s", path, g_strerror (errno));
  return fd;
}

/* Spawns @helper (at @path) with its fds: stdin /dev/null (@null_fd), its
 * log as stdout and stderr, and the helper's ends of the socket pairs
 * (@helper_ends: device -> fd).  Not confined, but hardened like the
 * hypervisor (uvm_spawn()), and watched. */
static gboolean
spawn_helper (UvmVm *self, const UvmPlanHelper *helper, const char *path, char *const *envp,
              int null_fd, GHashTable *helper_ends, GError **error)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, TRUE, sizeof (UvmSpawnFd));
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GArray) own_fds = g_array_new (FALSE, FALSE, sizeof (int));
  int log_fd = open_log (helper->log_path, error);
  int pidfd = -1;
  GPid pid = 0;
  gboolean ok;
  Helper *h;

  if (log_fd < 0)
    return FALSE;
  g_array_append_vals (fds, (UvmSpawnFd[]) { { null_fd, 0 }, { log_fd, 1 }, { log_fd, 2 } }, 3);
  for (guint i = 0; i < helper->fds->len; i++)
    {
      const UvmPlanFd *pfd = g_ptr_array_index (helper->fds, i);
      UvmSpawnFd sfd = { GPOINTER_TO_INT (g_hash_table_lookup (helper_ends, pfd->device)) - 1,
                         pfd->target };

      /* The console relay's log and socket are its own (closed below). */
      if (pfd->kind == UVM_PLAN_FD_FILE || pfd->kind == UVM_PLAN_FD_CONSOLE_SOCKET)
        {
          sfd.source = uvm_vm_open_helper_fd (self, pfd, error);
          if (sfd.source < 0)
            goto fail;
          g_array_append_val (own_fds, sfd.source);
        }
      /* Socket pairs (and the console's pty) were made with the
       * hypervisor's fds. */
      else if ((pfd->kind != UVM_PLAN_FD_HELPER_STREAM && pfd->kind != UVM_PLAN_FD_CONSOLE_PTY) ||
               sfd.source < 0)
        {
          uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: no socket pair for %s",
                         helper->what, pfd->what);
          goto fail;
        }
      g_array_append_val (fds, sfd);
    }
  g_ptr_array_add (argv, (gpointer) path);
  for (guint i = 0; i < helper->args->len; i++)
    g_ptr_array_add (argv, g_ptr_array_index (helper->args, i));
  g_ptr_array_add (argv, NULL);

  {
    UvmSpawnRequest req = { path, (char *const *) argv->pdata, envp,
                            (const UvmSpawnFd *) fds->data, fds->len, .creds = &self->creds,
                            .detached = self->lifetime == UVM_VM_LIFETIME_DETACHED };
    ok = uvm_spawn (&req, &pid, &pidfd, error);
  }
  close (log_fd);
  for (guint i = 0; i < own_fds->len; i++)
    close (g_array_index (own_fds, int, i));
  if (!ok)
    {
      g_prefix_error (error, "%s: ", helper->what);
      return FALSE;
    }
  h = g_new0 (Helper, 1);
  h->vm = self;
  h->name = g_strdup (helper->binary);
  h->device_id = g_strdup (helper->device->id);
  h->network = g_strdup (helper->device->network);
  h->watch = uvm_child_watch_new (pid, pidfd, self->context, uvm_vm_on_helper_exit, h, error);
  if (h->watch == NULL)
    {
      uvm_vm_helper_free (h);
      g_prefix_error (error, "%s: ", helper->what);
      return FALSE;
    }
  g_ptr_array_add (self->helpers, h);
  return TRUE;

fail:
  close (log_fd);
  for (guint i = 0; i < own_fds->len; i++)
    close (g_array_index (own_fds, int, i));
  return FALSE;
}

/* Opens the file of @pfd (UVM_PLAN_FD_FILE) for the hypervisor.  What it
 * reopens through /proc/self/fd must be open to the VM user by the file's
 * mode: checked here, so that the error names the file. */
static int
open_plan_file (UvmVm *self, const UvmPlanFd *pfd, GError **error)
{
  int access_mode = (pfd->flags & O_ACCMODE) == O_RDONLY ? R_OK
                    : (pfd->flags & O_ACCMODE) == O_WRONLY ? W_OK : (R_OK | W_OK);
  gboolean created = FALSE;
  struct stat st;
  int fd = -1;

  if (pfd->flags & O_CREAT)
    {
      fd = open (pfd->path, pfd->flags | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
      created = fd >= 0;
    }
  if (fd < 0)
    fd = open (pfd->path, (pfd->flags & ~O_CREAT) | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: cannot open '%s': %s", pfd->what,
                     pfd->path, g_strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: fstat: %s", pfd->what,
                     g_strerror (errno));
      uvm_close_fd (&fd);
      return -1;
    }
  /* A file the hypervisor reopens (cloud-hypervisor's serial file, a
   * created image) belongs to the VM user when we made it, now or for an
   * earlier run of a dynamic user (whose uid may differ this time); a file
   * of anyone else is left as it is. */
  if (pfd->use == UVM_PLAN_FILE_REOPENED && self->creds.change_ids &&
      st.st_uid != self->creds.uid &&
      (created || (st.st_uid >= UVM_USER_RANGE_FIRST &&
                   st.st_uid - UVM_USER_RANGE_FIRST < UVM_USER_RANGE_SIZE)))
    {
      if (fchown (fd, self->creds.uid, self->creds.gid) != 0)
        {
          uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: chown: %s", pfd->what,
                         g_strerror (errno));
          uvm_close_fd (&fd);
          return -1;
        }
      st.st_uid = self->creds.uid;
    }
  if (pfd->use == UVM_PLAN_FILE_REOPENED && !uvm_user_may_access (&st, &self->creds, access_mode))
    {
      uvm_set_error (error, UVM_ERROR_PERMISSION,
                     "%s: the hypervisor reopens '%s' through /proc/self/fd as uid %u gid %u, "
                     "and the file's mode %04o (owner %u, group %u) does not let that user %s "
                     "it; make it %s for the VM user, or choose another user "
                     "(uvm_vm_set_user())", pfd->what, pfd->path, (unsigned) self->creds.uid,
                     (unsigned) self->creds.gid, (unsigned) (st.st_mode & 07777),
                     (unsigned) st.st_uid, (unsigned) st.st_gid,
                     access_mode == R_OK ? "read" : access_mode == W_OK ? "write" : "read and write",
                     access_mode == R_OK ? "readable" : access_mode == W_OK ? "writable"
                     : "readable and writable");
      uvm_close_fd (&fd);
      return -1;
    }
  return fd;
}

static void
close_fd_value (gpointer value)
{
  close (GPOINTER_TO_INT (value) - 1);
}

/* Opens every fd the plan lists plus stdio, spawns the helpers, then the
 * hypervisor, and connects: @launch gets the control connection's fds,
 * @request_fds (by index in the plan's fds) the fds requests send.  On
 * failure everything opened here is closed again and every helper ended. */
static gboolean
spawn_plan (UvmVm *self, UvmPlan *plan, const char *binary, char *const *helper_paths,
            const UvmSeccompProgram *filter, UvmLaunchResult *launch, GArray *request_fds,
            GError **error)
{
  const UvmDesc *desc = plan->desc;
  g_autoptr(GArray) fds = g_array_new (FALSE, TRUE, sizeof (UvmSpawnFd));
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_auto(GStrv) envp = g_get_environ ();
  /* The helpers' ends of the socket pairs, by device (fd + 1: 0 is none). */
  g_autoptr(GHashTable) helper_ends = g_hash_table_new_full (NULL, NULL, NULL, close_fd_value);
  int null_fd = -1, log_fd = -1, pidfd = -1, console_tty = -1;
  gboolean ok = FALSE;
  GPid pid = 0;

  launch->control_fd = launch->event_fd = -1;
  g_array_set_size (request_fds, plan->fds->len);
  for (guint i = 0; i < request_fds->len; i++)
    g_array_index (request_fds, int, i) = -1;
  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "opening '/dev/null': %s", g_strerror (errno));
      goto out;
    }
  log_fd = open_log (desc->log_path, error);
  if (log_fd < 0)
    goto out;
  /* cloud-hypervisor's console is its stdin and stdout: a pty whose
   * other side goes to the console relay. */
  if (plan->stdio_console != NULL)
    {
      int controller;

      if (!uvm_vm_open_console_pty (&controller, &console_tty, error))
        goto out;
      g_hash_table_insert (helper_ends, (gpointer) plan->stdio_console,
                           GINT_TO_POINTER (controller + 1));
    }
  g_array_append_vals (fds, (UvmSpawnFd[]) { { console_tty >= 0 ? console_tty : null_fd, 0 },
                                             { console_tty >= 0 ? console_tty : log_fd, 1 },
                                             { log_fd, 2 } }, 3);
  /* Images to create exist before the plan's files are opened. */
  for (guint i = 0; i < uvm_desc_get_n_devices (desc); i++)
    {
      UvmDevice *dev = uvm_desc_get_device (desc, i)->object;
      if (uvm_device_get_kind (dev) == UVM_DEVICE_DISK &&
          !uvm_storage_prepare (uvm_device_get_storage (dev),
                                self->creds.change_ids ? self->creds.uid : (uid_t) -1,
                                self->creds.gid, error))
        goto out;
    }

  for (guint i = 0; i < plan->fds->len; i++)
    {
      const UvmPlanFd *pfd = g_ptr_array_index (plan->fds, i);
      UvmSpawnFd sfd = { -1, pfd->target };
      int pipe_fds[2];

      switch (pfd->kind)
        {
        case UVM_PLAN_FD_CONTROL_SOCKET:
          sfd.source = bind_control_socket (desc->control_path, error);
          break;
        case UVM_PLAN_FD_NET_LINK:
          sfd.source = uvm_network_open_link_fd (uvm_device_get_network (pfd->device->object),
                                                 pfd->device->object, error);
          break;
        case UVM_PLAN_FD_EVENT_PIPE:
          if (pipe2 (pipe_fds, O_CLOEXEC) != 0)
            {
              uvm_set_error (error, UVM_ERROR_START_FAILED, "event pipe: %s", g_strerror (errno));
              break;
            }
          sfd.source = pipe_fds[1];
          launch->event_fd = pipe_fds[0];
          break;
        case UVM_PLAN_FD_TAP:
          sfd.source = uvm_network_open_tap_fd (uvm_device_get_network (pfd->device->object),
                                                error);
          break;
        case UVM_PLAN_FD_HELPER_STREAM:
          {
            int pair[2];

            /* Stream, not datagram: qemu's stream netdev and passt --fd
             * frame with a length prefix. */
            if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
              {
                uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: socketpair: %s", pfd->what,
                               g_strerror (errno));
                break;
              }
            sfd.source = pair[0];
            g_hash_table_insert (helper_ends, (gpointer) pfd->device, GINT_TO_POINTER (pair[1] + 1));
          }
          break;
        case UVM_PLAN_FD_FILE:
          sfd.source = open_plan_file (self, pfd, error);
          break;
        case UVM_PLAN_FD_CONSOLE_SOCKET:
        case UVM_PLAN_FD_CONSOLE_PTY:
          /* The console relay's, never the hypervisor's. */
          uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: not an fd of the hypervisor",
                         pfd->what);
          break;
        case UVM_PLAN_FD_LIB_TAP:
          /* A workstation's port is isolated: it reaches only the
           * non-isolated ports (its gateway), never another workstation. */
          sfd.source = uvm_network_open_lib_tap (uvm_device_get_network (pfd->device->object),
                                                 pfd->device->object, pfd->device->tap,
                                                 desc->workstation, error);
          break;
        }
      if (sfd.source < 0)
        goto out;
      if (pfd->target == UVM_PLAN_FD_NOT_INHERITED)
        {
          g_array_index (request_fds, int, i) = sfd.source;   /* a request sends it */
          continue;
        }
      g_array_append_val (fds, sfd);
    }

  /* Helpers first: passt is there when qemu starts talking to it. */
  for (guint i = 0; i < plan->helpers->len; i++)
    if (!spawn_helper (self, g_ptr_array_index (plan->helpers, i), helper_paths[i], envp, null_fd,
                       helper_ends, error))
      goto out;
  /* Our copies of their ends would keep the pairs open after a helper died. */
  g_hash_table_remove_all (helper_ends);

  g_ptr_array_add (argv, (gpointer) binary);
  for (guint i = 0; i < plan->args->len; i++)
    g_ptr_array_add (argv, g_ptr_array_index (plan->args, i));
  g_ptr_array_add (argv, NULL);

  {
    /* Confined: every fd above was opened here, in our namespace, so the
     * links, taps, control socket and event pipe work from the empty one. */
    UvmSpawnRequest req = { binary, (char *const *) argv->pdata, envp,
                            (const UvmSpawnFd *) fds->data, fds->len,
                            .new_netns = desc->confined, .filter = filter,
                            .creds = &self->creds, .detached = desc->detached };
    if (!uvm_spawn (&req, &pid, &pidfd, error))
      goto out;
  }
  self->child = uvm_child_watch_new (pid, pidfd, self->context, uvm_vm_on_child_exit, self, error);
  if (self->child == NULL)
    goto out;
  launch->control_fd = uvm_vm_connect_control (desc->control_path, error);
  if (launch->control_fd < 0)
    {
      /* Cannot control it: do not leave it running. */
      uvm_child_watch_free (self->child);
      self->child = NULL;
      goto out;
    }
  ok = TRUE;

out:
  /* The child has its copies; ours would keep the link and socket alive
   * after the hypervisor died. */
  for (guint i = 3; i < fds->len; i++)
    close (g_array_index (fds, UvmSpawnFd, i).source);
  uvm_close_fd (&null_fd);
  uvm_close_fd (&log_fd);
  uvm_close_fd (&console_tty);
  if (!ok)
    {
      for (guint i = 0; i < request_fds->len; i++)
        uvm_close_fd (&g_array_index (request_fds, int, i));
      uvm_close_fd (&launch->event_fd);
      uvm_vm_stop_helpers (self);
    }
  return ok;
}

void
uvm_vm_start_async (UvmVm *vm, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(UvmPlan) plan = NULL;
  g_autofree char *binary = NULL;
  g_auto(GStrv) helper_paths = NULL;
  g_autoptr(UvmSeccompProgram) filter = NULL;
  const UvmBackend *backend = NULL;
  GError *error = NULL;
  g_autoptr(GArray) request_fds = g_array_new (FALSE, FALSE, sizeof (int));
  UvmLaunchResult launch = { -1, -1 };

  g_return_if_fail (UVM_IS_VM (vm));
  task = g_task_new (vm, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_vm_start_async);

  if (uvm_vm_is_active (vm))
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_BUSY, "VM '%s' is %s already",
                               vm->name, uvm_vm_state_to_string (vm->state));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  /* The definition first (the gateway relation included), then whether
   * its gateway runs. */
  plan = uvm_vm_build_plan (vm, &backend, &error);
  if (plan != NULL && !uvm_vm_check_gateway (vm, &error))
    g_clear_pointer (&plan, uvm_plan_free);
  if (plan != NULL)
    binary = uvm_vm_resolve_binary (plan, &error);
  if (binary != NULL)
    helper_paths = uvm_vm_resolve_helpers (plan, &error);
  if (helper_paths != NULL && vm->confined)
    filter = uvm_seccomp_build_confinement (&error);
  if (helper_paths == NULL || (vm->confined && filter == NULL))
    {
      g_task_return_error (task, error);
      return;
    }

  vm->console_in_rundir = FALSE;
  if (uvm_vm_get_console_path (vm) != NULL)
    {
      g_autofree char *default_console = g_build_filename (vm->effective_dir, CONSOLE_NAME, NULL);
      vm->console_in_rundir = g_str_equal (default_console, uvm_vm_get_console_path (vm));
    }
  g_strfreev (vm->helper_files);
  {
    GStrvBuilder *logs = g_strv_builder_new ();
    g_auto(GStrv) files = NULL;

    for (guint i = 0; i < plan->helpers->len; i++)
      g_strv_builder_add (logs, ((UvmPlanHelper *) g_ptr_array_index (plan->helpers, i))->log_path);
    vm->helper_files = g_strv_builder_end (logs);
    g_strv_builder_unref (logs);
    files = uvm_vm_run_files (vm);
    /* Locked first; then what an earlier run left (a detached VM that
     * still runs must not lose its files); then the stale files go. */
    vm->rundir = uvm_rundir_acquire (vm->effective_dir, NULL, &error);
    if (vm->rundir != NULL && !uvm_vm_reclaim_record (vm->effective_dir, vm->name, &error))
      g_clear_pointer (&vm->rundir, uvm_rundir_unlock);
    if (vm->rundir != NULL)
      uvm_rundir_remove_files (vm->rundir, (const char *const *) files);
  }
  if (vm->rundir == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (!prepare_user (vm, &error))
    {
      uvm_vm_finish_run (vm);
      g_task_return_error (task, error);
      return;
    }
  g_clear_pointer (&vm->context, g_main_context_unref);
  vm->context = g_main_context_ref_thread_default ();
  vm->exit_expected = FALSE;
  vm->sent_term = vm->sent_kill = FALSE;
  vm->guest_panicked = FALSE;
  vm->guest_shut_down = FALSE;
  vm->have_exit = FALSE;
  vm->control_lost = FALSE;
  g_clear_error (&vm->control_error);
  g_clear_error (&vm->start_error);

  if (!spawn_plan (vm, plan, binary, helper_paths, filter, &launch, request_fds, &error))
    {
      uvm_vm_finish_run (vm);
      g_task_return_error (task, error);
      return;
    }
  /* The record exists from here on: a launcher killed during the start
   * leaves a hypervisor the next start or attach can find and end. */
  if (!uvm_vm_write_record (vm, plan, FALSE, &error))
    {
      uvm_close_fd (&launch.control_fd);
      uvm_close_fd (&launch.event_fd);
      uvm_vm_clear_start_plan (vm);
      g_clear_pointer (&request_fds, g_array_unref);
      uvm_child_watch_free (vm->child);
      vm->child = NULL;
      uvm_vm_finish_run (vm);
      g_task_return_error (task, error);
      return;
    }
  vm->control = backend->control_new (plan, &launch, &uvm_vm_control_sink, vm);
  vm->start_requests = g_ptr_array_ref (plan->requests);
  vm->start_fds = g_steal_pointer (&request_fds);
  vm->start_step = 0;
  vm->start_have_state = FALSE;
  vm->control->klass->set_request_timeout (vm->control, vm->control_timeout_ms);
  vm->start_task = g_steal_pointer (&task);
  vm->start_plan = g_steal_pointer (&plan);
  uvm_vm_arm_start_deadlines (vm, cancellable);
  uvm_vm_set_state (vm, UVM_VM_STATE_STARTING);
  uvm_vm_send_requests (vm);
}

gboolean
uvm_vm_start_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Sync variants: run the async call and iterate the thread-default context,
 * where GTask delivers the callback. */
gboolean
uvm_vm_start (UvmVm *vm, GCancellable *cancellable, GError **error)
{
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  uvm_vm_start_async (vm, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_start_finish (vm, result, error);
}

