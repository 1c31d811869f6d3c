/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connection layer under the QMP and HTTP clients: what a request/reply
 * client over one socket needs whatever it speaks.  A UvmConn owns the
 * UvmStream (uvm-stream.h), the queue of UvmRequests (uvm-request.h) in
 * send order, the reference count of its owner, how and why the
 * connection ended (and the errors that gives, at once and to late
 * callers), cancelling, each request's deadline and the closed handler.
 * The owner (UvmQmpClient, UvmHttpClient) keeps only its framing and the
 * matching of replies to requests, and is told through a UvmConnClass.
 * Private to libuvm.
 *
 * Lifetime.  The owner's ref/unref are uvm_conn_ref/unref: the last unref
 * ends the connection (pending requests fail with G_IO_ERROR_CANCELLED
 * "<what>: <client> released", no closed handler), then calls the class's
 * finalize on the owner.  Runs on the GMainContext that was thread-default
 * at creation; no threads.
 *
 * Ending.  The connection ends once, for one of four reasons (EOF, a local
 * close, the last unref, an error).  Then, in this order: the socket is
 * closed (nothing queued goes out), the queue is emptied, the class's
 * closing hook runs (the owner completes what is not a request, e.g. the
 * QMP handshake, and resets its framer), each request with a task is
 * completed (in send order; with the close error, or with what the class's
 * close_result gives), and last the closed handler runs (not after the
 * last unref, nor after a local close unless the class says so).  Requests
 * issued afterwards fail at once with the same error.  Errors:
 *   EOF: UVM_ERROR_HYPERVISOR_DIED "<what>: the hypervisor closed the <peer>"
 *   local close: UVM_ERROR_HYPERVISOR_DIED "<what>: connection closed"
 *   last unref: G_IO_ERROR_CANCELLED "<what>: <client> released"
 *   error: the error's domain and code, "<what>: <message>".
 *
 * Deadlines.  With a request timeout set, a request unanswered that long
 * fails with UVM_ERROR_TIMEOUT "<what>: no reply within <n> ms"; nothing
 * more is written, and the connection ends with that error (the peer is
 * hung or out of step).  A request cancelled once on the wire (a
 * placeholder) is, by the class's choice, either just forgotten (replies
 * matched by id) or treated the same (replies matched by order).
 *
 * Reentrancy.  Completing a request or calling a handler may run a
 * caller's callback synchronously, which may issue requests, close or
 * unref the owner.  The layer holds a reference across every callback of
 * the stream and every shutdown; an owner calling out from elsewhere
 * (its own sources) holds one too and checks uvm_conn_is_closed() after. */
#pragma once

#include <gio/gio.h>

#include "proto/uvm-request.h"

G_BEGIN_DECLS

typedef struct _UvmConn UvmConn;

typedef struct {
  /* Static strings: the log prefix ("QMP", also in the names of the
   * requests' sources), the peer in the EOF error ("QMP connection"), the
   * client in the released error ("QMP client"), the stream's label ("the
   * QMP socket"). */
  const char *log_prefix;
  const char *peer_name;
  const char *client_name;
  const char *stream_label;

  /* Whether uvm_conn_close() also runs the closed handler (with a NULL
   * error). */
  gboolean    closed_handler_on_local_close;
  /* Whether a placeholder whose deadline passes is only forgotten rather
   * than ending the connection. */
  gboolean    forget_expired_placeholders;
  /* Frees a result nobody took (json_node_unref, uvm_http_response_free). */
  GDestroyNotify result_free;

  /* @len (> 0) bytes were read.  Required. */
  void     (*data)         (UvmConn *conn, const guint8 *bytes, gsize len, gpointer owner);
  /* The peer hung up; runs before the connection ends with EOF (it may
   * deliver a last reply, or end it with an error itself).  Optional. */
  void     (*eof)          (UvmConn *conn, gpointer owner);
  /* The connection is ending; see "Ending".  Optional. */
  void     (*closing)      (UvmConn *conn, gpointer owner);
  /* For a request left unanswered by the end of the connection: a result
   * that makes it succeed (transfer full), or NULL to fail it with the
   * close error.  @peer_gone says the peer left (EOF or the socket died).
   * Optional. */
  gpointer (*close_result) (UvmConn *conn, UvmRequest *request, gboolean peer_gone,
                            gpointer owner);
  /* A request cancelled before any byte went out left the queue; see
   * UvmRequestDroppedFunc.  Optional. */
  void     (*dropped)      (UvmConn *conn, gboolean was_head, gpointer owner);
  /* Calls the closed handler @func (as set, of the owner's own type) with
   * @owner first: the layer stores it untyped.  Required. */
  void     (*call_closed)  (GCallback func, gpointer owner, const GError *error, gpointer data);
  /* Frees @owner after the last unref, once the connection has ended. */
  void     (*finalize)     (gpointer owner);
} UvmConnClass;

/* Takes ownership of @fd and starts reading it at once.  @klass (static)
 * and @owner are not copied or referenced. */
UvmConn      *uvm_conn_new (int fd, const UvmConnClass *klass, gpointer owner);
void          uvm_conn_ref (UvmConn *conn);
/* The last reference ends the connection and finalizes the owner. */
void          uvm_conn_unref (UvmConn *conn);

GMainContext *uvm_conn_get_context (UvmConn *conn);
/* The pending requests, in send order; the owner may look and take out
 * (a reply matched) but adds only with uvm_conn_issue(). */
GQueue       *uvm_conn_get_requests (UvmConn *conn);

void          uvm_conn_set_request_timeout (UvmConn *conn, guint timeout_ms);
guint         uvm_conn_get_request_timeout (UvmConn *conn);
/* @func is the owner's closed handler type, called through the class's
 * call_closed; @notify frees @data when replaced or at finalization. */
void          uvm_conn_set_closed_handler (UvmConn        *conn,
                                           GCallback       func,
                                           gpointer        data,
                                           GDestroyNotify  notify);

/* Queues a request for @task (transfer full) named @what, of @bytes and
 * copies of @fds, with the cancellable of @task and the request timeout.
 * Returns it (owned by the queue), or NULL when @task has been completed
 * instead: already cancelled, the connection ended, or the fds cannot be
 * carried ("<what>: ..."); never calls back.  The owner decides when its
 * chunk is pushed (uvm_conn_push()). */
UvmRequest   *uvm_conn_issue (UvmConn    *conn,
                              GTask      *task,
                              const char *what,
                              GBytes     *bytes,
                              const int  *fds,
                              guint       n_fds);
/* The error a request named @what gets once the connection has ended. */
GError       *uvm_conn_close_error (UvmConn *conn, const char *what);

/* Sends @request's chunk (see uvm_stream_push()). */
void          uvm_conn_push (UvmConn *conn, UvmRequest *request);
/* Writes nothing more (see uvm_stream_stop_writing()). */
void          uvm_conn_stop_writing (UvmConn *conn);
void          uvm_conn_set_read_budget (UvmConn *conn, gsize max_bytes);
/* Delivers what the peer already sent, now (uvm_stream_read_pending()). */
void          uvm_conn_read_pending (UvmConn *conn);

/* Ends the connection: explicit close (see "Ending"). */
void          uvm_conn_close (UvmConn *conn);
/* Ends the connection with @error (its copy goes to every request). */
void          uvm_conn_fail (UvmConn *conn, const GError *error);
/* Ends it with UVM_ERROR_PROTOCOL and a debug line. */
void          uvm_conn_protocol_error (UvmConn *conn, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* Ends it as if the peer had hung up (it said it would). */
void          uvm_conn_end_of_peer (UvmConn *conn);
gboolean      uvm_conn_is_closed (UvmConn *conn);

/* Defines PREFIX_ref() and PREFIX_unref() (accepts NULL) of an owner type
 * whose member "conn" is its UvmConn: its references are the connection's. */
#define UVM_CONN_DEFINE_REF_UNREF(TypeName, prefix) \
  TypeName *                                         \
  prefix##_ref (TypeName *self)                      \
  {                                                  \
    g_return_val_if_fail (self != NULL, NULL);       \
    uvm_conn_ref (self->conn);                       \
    return self;                                     \
  }                                                  \
                                                     \
  void                                               \
  prefix##_unref (TypeName *self)                    \
  {                                                  \
    if (self != NULL)                                \
      uvm_conn_unref (self->conn);                   \
  }

G_END_DECLS
