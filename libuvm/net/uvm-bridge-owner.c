/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ownership of library bridges across processes.  See uvm-bridge-owner.h
 * for the contract.
 *
 * The lock is taken before the bridge is made, so that of two library
 * processes starting the same network only one ever touches the bridge:
 * once we hold the lock, a bridge of that name with our alias can only be
 * a killed owner's.  Lock files are removed while still locked; a taker
 * checks after flock() that the file it locked is still the one at the
 * path, since it may have opened it just before its owner removed it. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "net/uvm-bridge-owner.h"
#include "util/uvm-rundir.h"
#include "util/uvm-util.h"

#include <uvm/uvm-error.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALIAS_PREFIX "libuvm isolated network "
#define ALIAS_MAX 255             /* IFALIASZ - 1 */
#define LOCK_ATTEMPTS 8

/* Lock file path -> its locked fd, for the bridges this process owns. */
G_LOCK_DEFINE_STATIC (owned);
static GHashTable *owned;

char *
uvm_bridge_owner_alias (const char *network)
{
  char *alias = g_strconcat (ALIAS_PREFIX, network, NULL);

  if (strlen (alias) > ALIAS_MAX)
    alias[ALIAS_MAX] = '\0';
  return alias;
}

char *
uvm_bridge_owner_lock_dir (void)
{
  return uvm_rundir_default_path (".net");
}

static char *
lock_path (UvmNetlink *nl, const char *name, GError **error)
{
  g_autofree char *netns = uvm_netlink_get_netns_id (nl, error);
  g_autofree char *dir = NULL;
  g_autofree char *file = NULL;

  if (netns == NULL)
    return NULL;
  dir = uvm_bridge_owner_lock_dir ();
  file = g_strdup_printf ("%s-%s.lock", netns, name);
  return g_build_filename (dir, file, NULL);
}

static gboolean
ensure_lock_dir (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  struct stat st;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    return uvm_set_error (error, UVM_ERROR_START_FAILED, "cannot create '%s': %s", dir,
                          g_strerror (errno));
  /* Someone else's directory could hand our locks to them. */
  if (lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid ())
    return uvm_set_error (error, UVM_ERROR_START_FAILED,
                          "'%s' is not a directory owned by this user", dir);
  return TRUE;
}

/* The locked fd of lock file @path, or -1. */
static int
take_lock (const char *path, const char *name, GError **error)
{
  for (guint attempt = 0; attempt < LOCK_ATTEMPTS; attempt++)
    {
      struct stat held, now;
      int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

      if (fd < 0)
        {
          uvm_set_error (error, UVM_ERROR_START_FAILED, "cannot open lock file '%s': %s", path,
                         g_strerror (errno));
          return -1;
        }
      if (flock (fd, LOCK_EX | LOCK_NB) != 0)
        {
          int saved = errno;
          close (fd);
          if (saved == EWOULDBLOCK)
            uvm_set_error (error, UVM_ERROR_BUSY,
                           "bridge '%s' is in use by another process (or another network of "
                           "this one), which holds '%s'", name, path);
          else
            uvm_set_error (error, UVM_ERROR_START_FAILED, "cannot lock '%s': %s", path,
                           g_strerror (saved));
          return -1;
        }
      if (fstat (fd, &held) == 0 && stat (path, &now) == 0 && held.st_dev == now.st_dev &&
          held.st_ino == now.st_ino)
        return fd;
      /* Removed by its owner after our open(): nobody else will find this
       * file, so holding it means nothing.  Try the new one. */
      close (fd);
    }
  uvm_set_error (error, UVM_ERROR_START_FAILED, "lock file '%s' keeps being replaced", path);
  return -1;
}

static void
drop_lock (const char *path, int fd)
{
  /* Removed before it is unlocked: see the top of the file. */
  g_unlink (path);
  close (fd);
}

/* Removes the lock files nobody holds.  Their existence says nothing (a
 * taker creates a missing one), but a process that died owning a bridge
 * in a namespace that is gone by now leaves one nobody would reuse. */
static void
collect_unheld_lock_files (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *entry;

  while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL;
      struct stat held, now;
      int fd;

      if (!g_str_has_suffix (entry, ".lock"))
        continue;
      path = g_build_filename (dir, entry, NULL);
      fd = open (path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
      if (fd < 0)
        continue;
      if (flock (fd, LOCK_EX | LOCK_NB) == 0 && fstat (fd, &held) == 0 &&
          stat (path, &now) == 0 && held.st_dev == now.st_dev && held.st_ino == now.st_ino)
        g_unlink (path);       /* while locked: see the top of the file */
      close (fd);
    }
}

/* @name exists although we hold its lock: reclaim it if it is a bridge
 * with our alias (its owner was killed), else leave it alone (BUSY). */
static gboolean
reclaim (UvmNetlink *nl, const char *name, const char *network, const char *alias,
         GError **error)
{
  g_autofree char *kind = NULL;
  g_autofree char *found = NULL;

  if (!uvm_netlink_get_link_info (nl, name, &kind, &found, error))
    return FALSE;
  if (g_strcmp0 (kind, "bridge") != 0 || g_strcmp0 (found, alias) != 0)
    return uvm_set_error (error, UVM_ERROR_BUSY,
                          "link '%s' exists already and was not made by libuvm for this "
                          "network (it is %s%s, %s%s%s); it is left alone", name,
                          kind ? "a " : "a link of no kind", kind ? kind : "",
                          found ? "alias '" : "no alias", found ? found : "", found ? "'" : "");
  g_info ("isolated network '%s': reclaiming bridge '%s', left behind by a libuvm process "
          "that was killed", network, name);
  if (!uvm_netlink_delete_link (nl, name, error))
    return FALSE;
  return uvm_netlink_create_bridge (nl, name, error);
}

gboolean
uvm_bridge_owner_create (UvmNetlink *nl, const char *name, const char *network,
                         GError **error)
{
  g_autofree char *alias = NULL;
  g_autofree char *path = NULL;
  GError *local = NULL;
  int fd;

  g_return_val_if_fail (nl != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (network != NULL, FALSE);

  path = lock_path (nl, name, &local);
  if (path == NULL || !ensure_lock_dir (path, &local))
    goto fail;
  {
    g_autofree char *dir = g_path_get_dirname (path);
    collect_unheld_lock_files (dir);
  }
  fd = take_lock (path, name, &local);
  if (fd < 0)
    goto fail;
  alias = uvm_bridge_owner_alias (network);
  if (!uvm_netlink_create_bridge (nl, name, &local))
    {
      if (!g_error_matches (local, UVM_ERROR, UVM_ERROR_BUSY))
        goto fail_locked;
      g_clear_error (&local);
      if (!reclaim (nl, name, network, alias, &local))
        goto fail_locked;
    }
  /* Not in the creating request: iproute2 sends IFLA_IFALIAS there and
   * the kernel (6.18) does not apply it.
   * A process killed between the two leaves a bridge without the alias,
   * which is never reclaimed (BUSY, for a person to look at). */
  if (!uvm_netlink_set_alias (nl, name, alias, &local))
    {
      g_autoptr(GError) cleanup_error = NULL;
      if (!uvm_bridge_owner_delete (nl, name, &cleanup_error))
        g_debug ("removing bridge '%s' again: %s", name, cleanup_error->message);
      goto fail_locked;
    }

  G_LOCK (owned);
  if (owned == NULL)
    owned = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (owned, g_steal_pointer (&path), GINT_TO_POINTER (fd));
  G_UNLOCK (owned);
  return TRUE;

fail_locked:
  drop_lock (path, fd);
fail:
  if (g_error_matches (local, UVM_ERROR, UVM_ERROR_PERMISSION) ||
      g_error_matches (local, UVM_ERROR, UVM_ERROR_START_FAILED))
    g_prefix_error (&local, "creating bridge '%s': ", name);
  g_propagate_error (error, local);
  return FALSE;
}

static void
forget (UvmNetlink *nl, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  gpointer key, fd;

  G_LOCK (owned);
  if (owned == NULL || g_hash_table_size (owned) == 0)
    {
      G_UNLOCK (owned);
      return;
    }
  G_UNLOCK (owned);
  path = lock_path (nl, name, &error);
  if (path == NULL)
    {
      g_debug ("releasing the lock of bridge '%s': %s", name, error->message);
      return;
    }
  G_LOCK (owned);
  if (g_hash_table_steal_extended (owned, path, &key, &fd))
    {
      drop_lock (path, GPOINTER_TO_INT (fd));
      g_free (key);
    }
  G_UNLOCK (owned);
}

gboolean
uvm_bridge_owner_delete (UvmNetlink *nl, const char *name, GError **error)
{
  gboolean ok = uvm_netlink_delete_link (nl, name, error);

  forget (nl, name);
  return ok;
}
