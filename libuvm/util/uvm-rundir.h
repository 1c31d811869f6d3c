/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM's runtime directory: created 0700, held with a lock while its
 * hypervisor runs, emptied of our files and removed afterwards. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _UvmRundir UvmRundir;

/* The default runtime directory of a VM named @name. */
char *uvm_rundir_default_path (const char *name);

/* Creates (mode 0700, parents too) and locks @path.  UVM_ERROR_BUSY when
 * another process or VM holds it.  Stale files named in @files (left by a
 * run that was killed) are removed. */
UvmRundir *uvm_rundir_acquire (const char *path, const char *const *files, GError **error);

/* Removes @files, the lock and the directory when empty; frees. */
void uvm_rundir_release (UvmRundir *rundir, const char *const *files);

G_END_DECLS
