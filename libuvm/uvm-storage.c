/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-private.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

struct _UvmStorage
{
  GObject parent_instance;
  char *path;
  UvmStorageFormat format;
  guint64 create_size;
  gboolean read_only;
};

G_DEFINE_FINAL_TYPE (UvmStorage, uvm_storage, G_TYPE_OBJECT)

static void
uvm_storage_finalize (GObject *object)
{
  UvmStorage *self = UVM_STORAGE (object);

  g_free (self->path);
  G_OBJECT_CLASS (uvm_storage_parent_class)->finalize (object);
}

static void
uvm_storage_class_init (UvmStorageClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = uvm_storage_finalize;
}

static void
uvm_storage_init (UvmStorage *self)
{
}

UvmStorage *
uvm_storage_new_image (const char *path)
{
  UvmStorage *self;

  g_return_val_if_fail (path != NULL, NULL);
  self = g_object_new (UVM_TYPE_STORAGE, NULL);
  self->path = uvm_absolute_path (path);
  return self;
}

const char *
uvm_storage_get_path (UvmStorage *storage)
{
  g_return_val_if_fail (UVM_IS_STORAGE (storage), NULL);
  return storage->path;
}

void
uvm_storage_set_read_only (UvmStorage *storage, gboolean read_only)
{
  g_return_if_fail (UVM_IS_STORAGE (storage));
  storage->read_only = !!read_only;
}

gboolean
uvm_storage_get_read_only (UvmStorage *storage)
{
  g_return_val_if_fail (UVM_IS_STORAGE (storage), FALSE);
  return storage->read_only;
}

void
uvm_storage_set_format (UvmStorage *storage, UvmStorageFormat format)
{
  g_return_if_fail (UVM_IS_STORAGE (storage));
  storage->format = format;
}

UvmStorageFormat
uvm_storage_get_format (UvmStorage *storage)
{
  g_return_val_if_fail (UVM_IS_STORAGE (storage), UVM_STORAGE_FORMAT_RAW);
  return storage->format;
}

void
uvm_storage_set_create_size (UvmStorage *storage, guint64 size_bytes)
{
  g_return_if_fail (UVM_IS_STORAGE (storage));
  storage->create_size = size_bytes;
}

guint64
uvm_storage_get_create_size (UvmStorage *storage)
{
  g_return_val_if_fail (UVM_IS_STORAGE (storage), 0);
  return storage->create_size;
}

/* Validation: the image must be usable as configured.  @field names the
 * device in messages ("devices[1] (disk0)"). */
gboolean
uvm_storage_check (UvmStorage *storage, const char *field, GError **error)
{
  int mode = storage->read_only ? R_OK : (R_OK | W_OK);

  if (storage->create_size > 0)
    {
      if (storage->read_only)
        return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                              "%s: storage '%s' is read-only and so cannot be created",
                              field, storage->path);
      if (storage->format != UVM_STORAGE_FORMAT_RAW)
        return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                              "%s: only raw images can be created ('%s')",
                              field, storage->path);
      if (access (storage->path, F_OK) != 0)
        {
          g_autofree char *dir = g_path_get_dirname (storage->path);
          if (access (dir, W_OK | X_OK) != 0)
            return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                                  "%s: cannot create image '%s': directory '%s': %s",
                                  field, storage->path, dir, g_strerror (errno));
          return TRUE;
        }
    }
  if (access (storage->path, mode) != 0)
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "%s: image '%s' is not %s: %s", field, storage->path,
                          storage->read_only ? "readable" : "readable and writable",
                          g_strerror (errno));
  if (!g_file_test (storage->path, G_FILE_TEST_IS_REGULAR))
    return uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION,
                          "%s: image '%s' is not a regular file", field, storage->path);
  return TRUE;
}

/* At start: create the sparse image when asked and missing.  The library
 * opens it for the hypervisor (an fd), but cloud-hypervisor reopens it
 * through /proc/self/fd, which takes the VM user's own right to it: a new
 * image belongs to the VM user. */
gboolean
uvm_storage_prepare (UvmStorage *storage, uid_t owner, gid_t group, GError **error)
{
  int fd;

  if (storage->create_size == 0)
    return TRUE;
  fd = open (storage->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      if (errno == EEXIST)
        return TRUE;
      return uvm_set_error (error, UVM_ERROR_START_FAILED,
                            "cannot create image '%s': %s", storage->path,
                            g_strerror (errno));
    }
  if (ftruncate (fd, (off_t) storage->create_size) != 0)
    {
      int saved = errno;
      close (fd);
      unlink (storage->path);
      return uvm_set_error (error, UVM_ERROR_START_FAILED,
                            "cannot size image '%s': %s", storage->path,
                            g_strerror (saved));
    }
  if (owner != (uid_t) -1 && fchown (fd, owner, group) != 0)
    {
      int saved = errno;
      close (fd);
      unlink (storage->path);
      return uvm_set_error (error, UVM_ERROR_START_FAILED,
                            "cannot give image '%s' to uid %u: %s", storage->path,
                            (unsigned) owner, g_strerror (saved));
    }
  close (fd);
  return TRUE;
}
