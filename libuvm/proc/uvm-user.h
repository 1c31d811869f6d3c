/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who a hypervisor (and its helpers) runs as: the credentials a child
 * switches to before exec, and the per-VM uids handed out from a reserved
 * range while libuvm runs as root. */
#pragma once

#include <glib.h>
#include <sys/stat.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* The reserved range of dynamic VM users (uid = gid): UVM_USER_RANGE_SIZE
 * ids from UVM_USER_RANGE_FIRST, outside the ranges systemd documents for
 * system, regular, dynamic and container users. */
#define UVM_USER_RANGE_FIRST 2000000000u
#define UVM_USER_RANGE_SIZE  65536u

/* What the child does about its credentials, computed before fork. */
typedef struct {
  /* setgroups (groups), setresgid (gid), setresuid (uid): only when we
   * hold CAP_SETUID and CAP_SETGID. */
  gboolean change_ids;
  uid_t uid;
  gid_t gid;
  gid_t groups[2];
  int n_groups;
  /* PR_CAPBSET_DROP 0..last_cap: only with CAP_SETPCAP. */
  gboolean drop_bounding;
  int last_cap;
} UvmSpawnCreds;

/* Fills @creds for running as @uid/@gid (with the group of /dev/kvm as
 * the only supplementary group).  Without CAP_SETUID/CAP_SETGID the ids
 * stay ours: @uid/@gid must then be ours too, else UVM_ERROR_PERMISSION. */
gboolean uvm_spawn_creds_init (UvmSpawnCreds *creds, uid_t uid, gid_t gid, GError **error);

/* Whether this process may change uids/gids (CAP_SETUID and CAP_SETGID
 * in its effective set). */
gboolean uvm_user_can_change_ids (void);

/* A dynamic VM user held for one run: a lock file under the library's
 * runtime root, so two VMs running at once never share a uid. */
typedef struct _UvmUserLease UvmUserLease;

/* Allocates a uid from the reserved range, probing from a start point
 * derived from @vm_name.  UVM_ERROR_BUSY when the range is full. */
UvmUserLease *uvm_user_lease_acquire (const char *vm_name, GError **error);
uid_t         uvm_user_lease_get_uid (const UvmUserLease *lease);
/* Unlocks and removes the lock file; NULL is fine. */
void          uvm_user_lease_release (UvmUserLease *lease);
/* The locked, read-only fd of the lease: a detached hypervisor inherits a
 * copy, which holds the lock (flock: one open file description) while it
 * runs, whatever becomes of us. */
int           uvm_user_lease_get_fd (const UvmUserLease *lease);
const char   *uvm_user_lease_get_path (const UvmUserLease *lease);
/* Lets go of our fd and keeps the file: a hypervisor holds the lock. */
void          uvm_user_lease_forget (UvmUserLease *lease);
/* Removes the lease file @path when nobody holds it any more (after a
 * taken-over detached VM ended). */
void          uvm_user_lease_reclaim (const char *path);

/* Whether a process with @uid, @gid and @groups (no capabilities) may
 * open the file of @st for @mode (R_OK/W_OK), by its mode bits alone. */
gboolean uvm_user_may_access (const struct stat *st, const UvmSpawnCreds *creds, int mode);

G_END_DECLS
