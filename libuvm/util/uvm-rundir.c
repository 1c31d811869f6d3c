/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/uvm-rundir.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uvm/uvm.h>

#define LOCK_NAME "lock"

struct _UvmRundir
{
  char *path;
  int lock_fd;
};

char *
uvm_rundir_default_path (const char *name)
{
  const char *xdg = g_getenv ("XDG_RUNTIME_DIR");

  if (geteuid () == 0)
    return g_build_filename ("/run/uvm", name, NULL);
  if (xdg != NULL && g_path_is_absolute (xdg))
    return g_build_filename (xdg, "uvm", name, NULL);
  return g_build_filename (g_get_user_runtime_dir (), "uvm", name, NULL);
}

/* The holder's pid as its lock file says, for a Busy message. */
static char *
describe_holder (int fd)
{
  char buf[32] = { 0 };
  g_autofree char *comm_path = NULL, *comm = NULL;
  int pid;

  if (pread (fd, buf, sizeof buf - 1, 0) <= 0 || (pid = atoi (buf)) <= 0)
    return g_strdup ("another process");
  comm_path = g_strdup_printf ("/proc/%d/comm", pid);
  if (g_file_get_contents (comm_path, &comm, NULL, NULL))
    return g_strdup_printf ("process %d (%s)", pid, g_strstrip (comm));
  return g_strdup_printf ("process %d", pid);
}

/* Opens and locks @path/lock, writing our pid into it; -1 with @error. */
static int
lock_dir (const char *path, GError **error)
{
  g_autofree char *lock_path = g_build_filename (path, LOCK_NAME, NULL);
  g_autofree char *pid = g_strdup_printf ("%d\n", (int) getpid ());
  int fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "runtime-dir: cannot open '%s': %s",
                     lock_path, g_strerror (errno));
      return -1;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      int saved = errno;
      g_autofree char *holder = saved == EWOULDBLOCK ? describe_holder (fd) : NULL;

      close (fd);
      if (holder != NULL)
        uvm_set_error (error, UVM_ERROR_BUSY, "runtime-dir: '%s' is in use by a running VM "
                       "(held by %s)", path, holder);
      else
        uvm_set_error (error, UVM_ERROR_START_FAILED, "runtime-dir: locking '%s': %s", path,
                       g_strerror (saved));
      return -1;
    }
  if (ftruncate (fd, 0) != 0 || pwrite (fd, pid, strlen (pid), 0) < 0)
    g_debug ("runtime-dir: cannot note our pid in '%s': %s", lock_path, g_strerror (errno));
  return fd;
}

UvmRundir *
uvm_rundir_take (const char *path, GError **error)
{
  struct stat st;
  UvmRundir *self;
  int fd;

  if (lstat (path, &st) != 0 || !S_ISDIR (st.st_mode))
    {
      uvm_set_error (error, UVM_ERROR_NOT_FOUND, "runtime-dir: '%s' does not exist: no such VM",
                     path);
      return NULL;
    }
  if (st.st_uid != geteuid ())
    {
      uvm_set_error (error, UVM_ERROR_PERMISSION, "runtime-dir: '%s' belongs to uid %u, not to "
                     "this user", path, (unsigned) st.st_uid);
      return NULL;
    }
  fd = lock_dir (path, error);
  if (fd < 0)
    return NULL;
  self = g_new0 (UvmRundir, 1);
  self->path = g_strdup (path);
  self->lock_fd = fd;
  return self;
}

void
uvm_rundir_unlock (UvmRundir *self)
{
  if (self == NULL)
    return;
  close (self->lock_fd);
  g_free (self->path);
  g_free (self);
}

UvmRundir *
uvm_rundir_acquire (const char *path, const char *const *files, GError **error)
{
  struct stat st;
  UvmRundir *self;
  int fd;

  if (g_mkdir_with_parents (path, 0700) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "runtime-dir: cannot create '%s': %s",
                     path, g_strerror (errno));
      return NULL;
    }
  if (lstat (path, &st) != 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid ())
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED,
                     "runtime-dir: '%s' is not a directory owned by this user", path);
      return NULL;
    }
  /* Sockets and logs live here: nobody else may look in. */
  if ((st.st_mode & 0077) != 0 && chmod (path, 0700) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "runtime-dir: chmod '%s': %s",
                     path, g_strerror (errno));
      return NULL;
    }
  fd = lock_dir (path, error);
  if (fd < 0)
    return NULL;
  for (guint i = 0; files != NULL && files[i] != NULL; i++)
    {
      g_autofree char *p = g_path_is_absolute (files[i]) ? g_strdup (files[i])
                                                         : g_build_filename (path, files[i], NULL);
      g_unlink (p);
    }
  self = g_new0 (UvmRundir, 1);
  self->path = g_strdup (path);
  self->lock_fd = fd;
  return self;
}

void
uvm_rundir_release (UvmRundir *self, const char *const *files)
{
  g_autofree char *lock_path = NULL;

  if (self == NULL)
    return;
  for (guint i = 0; files != NULL && files[i] != NULL; i++)
    {
      g_autofree char *p = g_path_is_absolute (files[i]) ? g_strdup (files[i])
                                                         : g_build_filename (self->path, files[i], NULL);
      g_unlink (p);
    }
  lock_path = g_build_filename (self->path, LOCK_NAME, NULL);
  g_unlink (lock_path);
  close (self->lock_fd);
  g_rmdir (self->path);   /* fails harmlessly when the caller keeps files there */
  g_free (self->path);
  g_free (self);
}

void
uvm_rundir_remove_files (UvmRundir *self, const char *const *files)
{
  for (guint i = 0; files != NULL && files[i] != NULL; i++)
    {
      g_autofree char *p = g_path_is_absolute (files[i]) ? g_strdup (files[i])
                                                         : g_build_filename (self->path, files[i], NULL);
      g_unlink (p);
    }
}

int
uvm_rundir_holder_pid (const char *path)
{
  g_autofree char *lock_path = g_build_filename (path, LOCK_NAME, NULL);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (lock_path, &text, NULL, NULL))
    return 0;
  return atoi (text);
}
