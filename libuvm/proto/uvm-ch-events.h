/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cloud-hypervisor's event monitor (--event-monitor fd=N): a stream of
 * pretty-printed JSON objects separated by blank lines, each
 * {"timestamp":{"secs":S,"nanos":N},"source":"vm","event":"booted",
 *  "properties":{...}|null}.  The VMM writes without blocking and drops
 * events when the pipe is full, so the reader drains it promptly. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define UVM_CH_EVENTS_DEFAULT_MAX_OBJECT (64 * 1024)

/* @source and @event borrowed; @properties NULL when absent or null;
 * @timestamp_us from secs/nanos (0 when absent). */
typedef void (*UvmChEventFunc) (const char *source, const char *event, JsonObject *properties,
                                gint64 timestamp_us, gpointer user_data);

/* Pure incremental parser: objects are delimited by brace depth (string-
 * and escape-aware), not by blank lines, so a missing blank line or extra
 * whitespace does not matter.  Text outside objects other than whitespace
 * is an error, as is an object over @max_object bytes, invalid JSON, or an
 * object without string "source" and "event". */
typedef struct _UvmChEventParser UvmChEventParser;
UvmChEventParser *uvm_ch_event_parser_new (gsize max_object);
void              uvm_ch_event_parser_free (UvmChEventParser *parser);
/* Calls @func for each complete object in order.  On error returns FALSE
 * with UVM_ERROR_PROTOCOL; the parser then skips to the next top-level '{'
 * (one bad event must not silence the rest), so feeding may continue. */
gboolean          uvm_ch_event_parser_feed (UvmChEventParser *parser, const char *data, gsize len,
                                            UvmChEventFunc func, gpointer user_data, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmChEventParser, uvm_ch_event_parser_free)

/* Reads the read end of the event pipe (takes @fd) on the thread-default
 * context, drains all available bytes on each wake-up, and calls @func per
 * event.  Protocol errors are logged with g_debug and skipped.  @closed is
 * called once at EOF (may be NULL). */
typedef struct _UvmChEventMonitor UvmChEventMonitor;
UvmChEventMonitor *uvm_ch_event_monitor_new (int fd, UvmChEventFunc func, GSourceFunc closed,
                                             gpointer user_data);
void               uvm_ch_event_monitor_free (UvmChEventMonitor *monitor);
/* Reads and delivers what is in the pipe now (the VMM has exited: its last
 * events must come before its exit).  Must not be called from @func. */
void               uvm_ch_event_monitor_read_pending (UvmChEventMonitor *monitor);

G_END_DECLS
