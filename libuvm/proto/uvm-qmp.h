/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client: one connected stream socket to a qemu monitor in control mode.
 *
 * Runs entirely on the GMainContext that was thread-default when the client
 * was created; no threads.  Framing is line based (qemu ends lines in CRLF,
 * a bare LF is accepted too); a read may carry part of a message or several
 * messages.  Events interleave freely.
 *
 * Commands go out without an "id" and replies are matched to them in send
 * order.  That relies on never enabling the "oob" capability (we do not):
 * then qemu executes in-band commands one at a time and answers them in the
 * order received.  DESIGN.md §4 says to match by id; we deviate because
 * qemu 7.2 reads the monitor one byte per recvmsg() (monitor_can_read()
 * returns 1), ~3.5 µs a byte, so the 7-11 bytes of ,"id":N cost ~30 µs a
 * command, measured (the QMP round trip through libuvm went from ~1.35x a
 * raw client to 1.03-1.06x without it and with the direct write below).
 * An "id" in a reply is ignored; a reply with no command in flight means
 * the two sides are out of step and closes the connection with
 * UVM_ERROR_PROTOCOL.  Private to libuvm. */
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
 * for its reply.  Errors: UVM_ERROR_PROTOCOL (first message is not a
 * greeting, malformed input), UVM_ERROR_HYPERVISOR_DIED (EOF),
 * UVM_ERROR_HYPERVISOR (error reply), G_IO_ERROR_CANCELLED.  Commands issued
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

/* Sends {"execute":command,"arguments":arguments} (compact, no id).
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
 *   UVM_ERROR_PROTOCOL  when the connection breaks on malformed input,
 *   G_IO_ERROR_CANCELLED  (a command not yet written is never sent; one
 *     already written may still run in qemu, and its late reply is
 *     discarded, keeping later replies matched to their commands). */
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
