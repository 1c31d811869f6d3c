/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state record of a run: `state.json` in the VM's runtime directory,
 * written (atomically: a temporary file renamed over it) when the
 * hypervisor has been spawned and again when it is ready.  It lets another
 * process find, check and take over a detached VM: which hypervisor, which
 * process (pid and start time, so that a reused pid is never taken for
 * it), its helpers, its sockets and files, and the frozen definition. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define UVM_RECORD_NAME "state.json"

typedef struct {
  GPid pid;
  guint64 start_time;     /* /proc/PID/stat field 22 (clock ticks since boot) */
  char *name;             /* "passt", "uvm-console-relay" */
} UvmRecordProcess;

typedef struct {
  char *name;
  char *hypervisor;       /* the backend's name */
  gboolean detached;
  gboolean ready;         /* FALSE: written after spawn, before the control handshake */
  UvmRecordProcess process;
  GArray *helpers;        /* UvmRecordProcess */
  char *control_path;
  char *console_path;     /* may be NULL */
  char *log_path;
  char *definition;       /* JSON (uvm_vm_to_json()), or NULL */
  /* JSON array of the requests an attacher sends, in order: objects with
   * "method" (absent for QMP), "target", "body" (JSON text or absent),
   * "state" (true for the one whose reply says the guest's state). */
  char *attach_requests;
  GStrv files;            /* the run's files in the directory, removed with it */
  char *user_lease;       /* the lock file of its dynamic uid, or NULL */
  gint64 console_log_start;  /* the console log's size when the run started */
} UvmRecord;

UvmRecord *uvm_record_new (void);
void       uvm_record_free (UvmRecord *record);
void       uvm_record_add_helper (UvmRecord *record, GPid pid, const char *name);
/* Writes @record as @dir/state.json, atomically, mode 0600. */
gboolean   uvm_record_write (const UvmRecord *record, const char *dir, GError **error);
/* NULL with UVM_ERROR_NOT_FOUND when there is none, UVM_ERROR_PROTOCOL
 * when it cannot be read as a record. */
UvmRecord *uvm_record_read (const char *dir, GError **error);
void       uvm_record_remove (const char *dir);

/* The start time of @pid (field 22 of /proc/PID/stat), 0 when it is gone. */
guint64    uvm_process_start_time (GPid pid);
/* Whether @process still runs and is the same process (start time). */
gboolean   uvm_record_process_alive (const UvmRecordProcess *process);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmRecord, uvm_record_free)

G_END_DECLS
