/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM's runtime directory: created 0700, held with a lock while its
 * hypervisor runs, emptied of our files and removed afterwards. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _UvmRundir UvmRundir;

/* The default runtime directory of a VM named @name. */
char *uvm_rundir_default_path (const char *name);

/* Creates (mode 0700, parents too) and locks @path; the lock file holds
 * our pid.  UVM_ERROR_BUSY naming the holder's pid when another process
 * or VM holds it.  With @files, stale files named in it (left by a run
 * that was killed) are removed. */
UvmRundir *uvm_rundir_acquire (const char *path, const char *const *files, GError **error);

/* Locks the existing directory @path (a detached VM's, to take over its
 * supervision): nothing is created or removed.  UVM_ERROR_NOT_FOUND when
 * it does not exist; UVM_ERROR_BUSY naming the holder as above. */
UvmRundir *uvm_rundir_take (const char *path, GError **error);

/* Removes @files (names in the directory, or absolute paths). */
void uvm_rundir_remove_files (UvmRundir *rundir, const char *const *files);

/* Lets go of the lock and keeps every file (a detached VM runs on); frees. */
void uvm_rundir_unlock (UvmRundir *rundir);

/* The pid the lock file of @path names (its holder, or the last one), or 0. */
int uvm_rundir_holder_pid (const char *path);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmRundir, uvm_rundir_unlock)

/* Removes @files, the lock and the directory when empty; frees. */
void uvm_rundir_release (UvmRundir *rundir, const char *const *files);

G_END_DECLS
