/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client: one connected stream socket to a qemu monitor in control mode.
 *
 * Runs entirely on the GMainContext that was thread-default when the client
 * was created; no threads.  Framing is line based (qemu ends lines in CRLF,
 * a bare LF is accepted too); a read may carry part of a message or several
 * messages.  Events interleave freely.
 *
 * Framing: an object may span lines (pretty-printed), lines end in CRLF or
 * LF, and a read may carry part of a message or several (even on one
 * line).  Events interleave freely.
 *
 * Every command, qmp_capabilities included, carries an "id" (a counter) and
 * its reply is matched to it by that id, so replies may come in any order.
 * What cannot be matched (a reply without an id, as qemu sends for input
 * it could not parse; a reply with an id no command in flight has; a line
 * that is not JSON; an object that is neither reply nor event) is dropped
 * with a g_debug line and never taken for another command's answer: the
 * command it may concern gets no reply and fails by its deadline.  Only a
 * message over the size cap, or a first message that is not the greeting,
 * breaks the connection (UVM_ERROR_PROTOCOL).  The id costs a few µs per
 * command with qemu 7.2, which reads the monitor one byte per recvmsg()
 * (its monitor_can_read() returns 1): accepted for correctness.
 *
 * Deadlines: with a request timeout set, a command (or the handshake)
 * unanswered that long fails with UVM_ERROR_TIMEOUT and the connection is
 * shut down with that error (closed handler included): a peer that does
 * not answer is hung or out of step.  Private to libuvm. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define UVM_QMP_DEFAULT_MAX_MESSAGE (4 * 1024 * 1024)

typedef struct _UvmQmpClient UvmQmpClient;

/* Called for every event message, in the client's context.  @data may be
 * NULL when the event has none; @timestamp_us is the event's timestamp in
 * microseconds since the epoch (0 if absent).  Borrowed arguments. */
typedef void (*UvmQmpEventFunc) (UvmQmpClient *client,
                                 const char   *event,
                                 JsonObject   *data,
                                 gint64        timestamp_us,
                                 gpointer      user_data);

/* Called once when the connection ends, for any reason (EOF, protocol error,
 * write error, uvm_qmp_client_close()).  @error is NULL for a clean EOF or an
 * explicit close. */
typedef void (*UvmQmpClosedFunc) (UvmQmpClient *client,
                                  const GError *error,
                                  gpointer      user_data);

/* Takes ownership of @fd (a connected SOCK_STREAM unix socket; it is made
 * non-blocking and close-on-exec).  Starts reading at once in the
 * thread-default main context.  Never fails. */
UvmQmpClient *uvm_qmp_client_new (int fd);

UvmQmpClient *uvm_qmp_client_ref (UvmQmpClient *client);
/* Accepts NULL.  Dropping the last reference closes the connection (pending
 * commands fail with G_IO_ERROR_CANCELLED before it returns). */
void uvm_qmp_client_unref (UvmQmpClient *client);

void uvm_qmp_client_set_max_message (UvmQmpClient *client, gsize max_bytes);

/* Every command issued after this call (and a handshake started after it)
 * must be answered within @timeout_ms of being issued; 0 (the default)
 * means no deadline.  When one passes, that command (or the handshake)
 * fails with UVM_ERROR_TIMEOUT "<command>: no reply within <n> ms" (the
 * handshake: "QMP handshake: no greeting within <n> ms", or "no reply to
 * qmp_capabilities"), then the client closes as for a protocol error with
 * that error: every other pending command fails with UVM_ERROR_TIMEOUT
 * too, and the closed handler receives the error.  A command cancelled
 * after it went out is simply forgotten when its deadline passes. */
void uvm_qmp_client_set_request_timeout (UvmQmpClient *client, guint timeout_ms);

/* Handlers are optional and may be set at any time; @notify frees
 * @user_data when replaced or when the client is finalized. */
void uvm_qmp_client_set_event_handler (UvmQmpClient   *client,
                                       UvmQmpEventFunc func,
                                       gpointer        user_data,
                                       GDestroyNotify  notify);
void uvm_qmp_client_set_closed_handler (UvmQmpClient    *client,
                                        UvmQmpClosedFunc func,
                                        gpointer         user_data,
                                        GDestroyNotify   notify);

/* Waits for the greeting ({"QMP":{...}}), sends qmp_capabilities and waits
 * for its reply.  Lines that are not JSON before the greeting are dropped;
 * a first JSON object that is not the greeting closes the connection.
 * Errors: UVM_ERROR_PROTOCOL (first message is not a greeting, oversized
 * input), UVM_ERROR_HYPERVISOR_DIED (EOF), UVM_ERROR_HYPERVISOR (error
 * reply; the connection closes), UVM_ERROR_TIMEOUT (the request timeout,
 * counted from this call, passed; the connection closes),
 * G_IO_ERROR_CANCELLED (only the wait ends; the negotiation goes on).  Commands issued
 * before the handshake completes are queued and sent after it. */
void     uvm_qmp_client_handshake_async  (UvmQmpClient        *client,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
gboolean uvm_qmp_client_handshake_finish (UvmQmpClient  *client,
                                          GAsyncResult  *result,
                                          GError       **error);
/* The greeting's "QMP" object once received, else NULL. (transfer none) */
JsonObject *uvm_qmp_client_get_greeting (UvmQmpClient *client);

/* Sends {"execute":command,"arguments":arguments,"id":N} (compact).
 * @arguments may be NULL (then omitted) and must be an object node
 * otherwise; it is not taken.  When nothing is queued ahead and the
 * handshake is done, the bytes are written before this returns (the rest,
 * if the socket is full, from the main loop); a write error is reported
 * later from the main loop, never from inside this call, and @callback
 * never runs before it returns.
 * @fds (may be NULL when @n_fds is 0) are attached with SCM_RIGHTS to the
 * first byte of the command; they are not taken (the caller closes them).
 * The command "quit" is special: EOF before its reply counts as success,
 * because qemu may exit before the reply is flushed.
 *
 * finish returns the "return" member (transfer full; an empty object when
 * the reply's return is {}) or NULL with:
 *   UVM_ERROR_HYPERVISOR  "<command>: <desc> (<class>)" for an error reply,
 *   UVM_ERROR_HYPERVISOR_DIED  when the connection ends first,
 *   UVM_ERROR_PROTOCOL  when the connection breaks on oversized input,
 *   UVM_ERROR_TIMEOUT  when its deadline (or another's) passed,
 *   G_IO_ERROR_CANCELLED  (a command not yet written is never sent; one
 *     already written may still run in qemu, and its late reply, known by
 *     its id, is discarded). */
void      uvm_qmp_client_execute_async  (UvmQmpClient        *client,
                                         const char          *command,
                                         JsonNode            *arguments,
                                         const int           *fds,
                                         guint                n_fds,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data);
JsonNode *uvm_qmp_client_execute_finish (UvmQmpClient  *client,
                                         GAsyncResult  *result,
                                         GError       **error);

/* Closes the socket now; pending commands fail with
 * UVM_ERROR_HYPERVISOR_DIED ("connection closed"); the closed handler runs
 * with a NULL error.  Idempotent. */
void     uvm_qmp_client_close (UvmQmpClient *client);
gboolean uvm_qmp_client_is_closed (UvmQmpClient *client);

/* Reads and dispatches (events, replies) everything qemu already sent,
 * now: called when qemu has exited, so that its last events are reported
 * before its exit. */
void     uvm_qmp_client_read_pending (UvmQmpClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmQmpClient, uvm_qmp_client_unref)

G_END_DECLS
