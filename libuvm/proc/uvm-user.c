/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VM users and the credentials a child takes.  See uvm-user.h.
 *
 * Dynamic uids are held with lock files like the bridge locks
 * (net/uvm-bridge-owner.c): flock()ed for the run, removed while still
 * locked, and a taker checks after flock() that the file it locked is
 * still the one at the path. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proc/uvm-user.h"
#include "util/uvm-rundir.h"
#include "util/uvm-util.h"

#include <uvm/uvm-error.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KVM_DEVICE "/dev/kvm"
#define CAP_LAST_CAP_FILE "/proc/sys/kernel/cap_last_cap"

struct _UvmUserLease {
  uid_t uid;
  char *path;
  int fd;
};

/* Whether @cap is in our effective set. */
static gboolean
have_cap (int cap)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2] = { { 0 } };

  if (syscall (SYS_capget, &hdr, data) != 0)
    return FALSE;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

gboolean
uvm_user_can_change_ids (void)
{
  return have_cap (CAP_SETUID) && have_cap (CAP_SETGID);
}

static int
last_cap (void)
{
  g_autofree char *text = NULL;
  gint64 value;

  /* The running kernel may know more capabilities than our headers. */
  if (g_file_get_contents (CAP_LAST_CAP_FILE, &text, NULL, NULL) &&
      (value = g_ascii_strtoll (text, NULL, 10)) > 0 && value < 64)
    return (int) value;
  return CAP_LAST_CAP;
}

gboolean
uvm_spawn_creds_init (UvmSpawnCreds *creds, uid_t uid, gid_t gid, GError **error)
{
  struct stat kvm;

  memset (creds, 0, sizeof *creds);
  creds->uid = uid;
  creds->gid = gid;
  creds->drop_bounding = have_cap (CAP_SETPCAP);
  creds->last_cap = last_cap ();
  creds->change_ids = uvm_user_can_change_ids ();
  if (!creds->change_ids)
    {
      /* Not root: the hypervisor runs as we do, which is all we can do. */
      if (uid != getuid () || gid != getgid ())
        return uvm_set_error (error, UVM_ERROR_PERMISSION,
                              "user: running the hypervisor as uid %u gid %u needs CAP_SETUID "
                              "and CAP_SETGID, which this process (uid %u) lacks",
                              (unsigned) uid, (unsigned) gid, (unsigned) getuid ());
      creds->uid = getuid ();
      creds->gid = getgid ();
      return TRUE;
    }
  /* The only supplementary group: the one that opens /dev/kvm (never
   * root's group, which opens far more). */
  if (stat (KVM_DEVICE, &kvm) == 0 && S_ISCHR (kvm.st_mode) && kvm.st_gid != 0)
    creds->groups[creds->n_groups++] = kvm.st_gid;
  return TRUE;
}

gboolean
uvm_user_may_access (const struct stat *st, const UvmSpawnCreds *creds, int mode)
{
  mode_t bits = 0;
  int shift = 0;   /* others */

  if (st->st_uid == creds->uid)
    shift = 6;
  else
    {
      gboolean in_group = st->st_gid == creds->gid;
      for (int i = 0; i < creds->n_groups; i++)
        in_group |= st->st_gid == creds->groups[i];
      if (in_group)
        shift = 3;
    }
  if (mode & R_OK)
    bits |= 4;
  if (mode & W_OK)
    bits |= 2;
  return ((st->st_mode >> shift) & bits) == bits;
}

/* The lock file of @uid in @dir, locked: -1 when another run holds it. */
static int
try_lock (const char *path)
{
  for (guint attempt = 0; attempt < 8; attempt++)
    {
      struct stat held, now;
      /* Read-only: the fd may be handed to a detached hypervisor to hold
       * the lock (uvm_user_lease_get_fd()); it must not write the file. */
      int fd = open (path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

      if (fd < 0)
        return -1;
      if (flock (fd, LOCK_EX | LOCK_NB) != 0)
        {
          close (fd);
          return -1;
        }
      if (fstat (fd, &held) == 0 && stat (path, &now) == 0 && held.st_dev == now.st_dev &&
          held.st_ino == now.st_ino)
        return fd;
      close (fd);   /* removed by its holder after our open(): try again */
    }
  return -1;
}

/* Leases whose holder was killed (no unlink then): nobody holds their
 * lock.  Removed as a release would (locked, still linked): a taker that
 * opened one meanwhile sees it unlinked and tries again. */
static void
collect_stale_leases (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL;
      int fd;

      if (!g_str_has_suffix (name, ".lock"))
        continue;
      path = g_build_filename (dir, name, NULL);
      fd = try_lock (path);
      if (fd < 0)
        continue;
      g_unlink (path);
      close (fd);
    }
}

UvmUserLease *
uvm_user_lease_acquire (const char *vm_name, GError **error)
{
  g_autofree char *dir = uvm_rundir_default_path (".users");
  guint start = g_str_hash (vm_name) % UVM_USER_RANGE_SIZE;
  struct stat st;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "user: cannot create '%s': %s", dir,
                     g_strerror (errno));
      return NULL;
    }
  /* Someone else's directory could hand our uids to them. */
  if (lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid ())
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED,
                     "user: '%s' is not a directory owned by this user", dir);
      return NULL;
    }
  collect_stale_leases (dir);
  /* The same name usually gets the same uid, which keeps files a VM
   * made readable to it across runs; a clash moves to the next free one. */
  for (guint i = 0; i < UVM_USER_RANGE_SIZE; i++)
    {
      uid_t uid = UVM_USER_RANGE_FIRST + (start + i) % UVM_USER_RANGE_SIZE;
      g_autofree char *name = g_strdup_printf ("%u.lock", (unsigned) uid);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      int fd = try_lock (path);

      if (fd >= 0)
        {
          UvmUserLease *lease = g_new0 (UvmUserLease, 1);
          lease->uid = uid;
          lease->path = g_steal_pointer (&path);
          lease->fd = fd;
          return lease;
        }
    }
  uvm_set_error (error, UVM_ERROR_BUSY, "user: all %u dynamic VM users (uid %u to %u) are in use",
                 UVM_USER_RANGE_SIZE, UVM_USER_RANGE_FIRST,
                 UVM_USER_RANGE_FIRST + UVM_USER_RANGE_SIZE - 1);
  return NULL;
}

uid_t
uvm_user_lease_get_uid (const UvmUserLease *lease)
{
  return lease->uid;
}

void
uvm_user_lease_release (UvmUserLease *lease)
{
  if (lease == NULL)
    return;
  /* Removed before it is unlocked: see the top of the file. */
  g_unlink (lease->path);
  close (lease->fd);
  g_free (lease->path);
  g_free (lease);
}

int
uvm_user_lease_get_fd (const UvmUserLease *lease)
{
  return lease->fd;
}

const char *
uvm_user_lease_get_path (const UvmUserLease *lease)
{
  return lease->path;
}

void
uvm_user_lease_forget (UvmUserLease *lease)
{
  if (lease == NULL)
    return;
  close (lease->fd);   /* the hypervisor's copy holds the lock on */
  g_free (lease->path);
  g_free (lease);
}

void
uvm_user_lease_reclaim (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0)
    return;
  /* Held: its hypervisor (or a new run of that uid) still runs. */
  if (flock (fd, LOCK_EX | LOCK_NB) == 0)
    g_unlink (path);   /* removed before it is unlocked, as a release does */
  close (fd);
}
