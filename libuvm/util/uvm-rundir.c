/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/uvm-rundir.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
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

UvmRundir *
uvm_rundir_acquire (const char *path, const char *const *files, GError **error)
{
  g_autofree char *lock_path = g_build_filename (path, LOCK_NAME, NULL);
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
  fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "runtime-dir: cannot open '%s': %s",
                     lock_path, g_strerror (errno));
      return NULL;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      int saved = errno;
      close (fd);
      uvm_set_error (error, saved == EWOULDBLOCK ? UVM_ERROR_BUSY : UVM_ERROR_START_FAILED,
                     "runtime-dir: '%s' is in use by a running VM (%s)", path,
                     g_strerror (saved));
      return NULL;
    }
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
