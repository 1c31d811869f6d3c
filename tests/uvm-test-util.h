/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for the tests that boot the real test guest. */
#pragma once

#include <uvm/uvm.h>

G_BEGIN_DECLS

/* Console markers printed by tests/guest/init. */
#define GUEST_READY "UVM-GUEST-READY"
#define GUEST_POWEROFF "UVM-GUEST-POWEROFF"
#define GUEST_IGNORING "UVM-GUEST-IGNORING-POWERBUTTON"

/* Paths of the test guest; the test is skipped (with a message) when
 * UVM_TEST_GUEST_DIR does not hold one. */
gboolean    test_guest_available (void);
const char *test_guest_kernel (void);
const char *test_guest_initramfs (void);

/* A qemu VM of the test guest under TCG, with a console log in @dir and
 * its runtime directory under @dir.  @cmdline_extra is appended to the
 * kernel command line (may be NULL). */
UvmVm *test_guest_vm_new (const char *name, const char *dir, const char *cmdline_extra);

/* Iterates the default context until @path contains @text or @timeout_ms
 * passes.  Returns whether it appeared. */
gboolean test_wait_for_text (const char *path, const char *text, guint timeout_ms);

/* Iterates the default context until @vm reaches @state or @timeout_ms. */
gboolean test_wait_for_state (UvmVm *vm, UvmVmState state, guint timeout_ms);

/* Removes @path and everything below it; asserts on failure. */
void test_remove_tree (const char *path);

/* Writes @contents to @path; asserts on failure. */
void test_write_file (const char *path, const char *contents);

/* Number of open fds of this process. */
guint test_count_fds (void);

/* Records every event of a VM. */
typedef struct {
  GPtrArray *events;   /* UvmEvent* */
} EventLog;

void      event_log_attach (EventLog *log, UvmVm *vm);
void      event_log_clear (EventLog *log);
/* Index of the first event of @kind (and, for STATE_CHANGED, @state)
 * at or after @from, or -1. */
int       event_log_find (EventLog *log, guint from, UvmEventKind kind, UvmVmState state);
char     *event_log_describe (EventLog *log);

G_END_DECLS
