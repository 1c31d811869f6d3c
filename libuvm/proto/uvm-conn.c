/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connection layer of the QMP and HTTP clients.  See uvm-conn.h. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-conn.h"
#include "proto/uvm-stream.h"

#include <uvm/uvm-error.h>

typedef enum {
  CLOSE_EOF,      /* the peer hung up (or said it would) */
  CLOSE_LOCAL,    /* uvm_conn_close() */
  CLOSE_FINALIZE, /* the last reference went away */
  CLOSE_ERROR,    /* protocol, read or write error, deadline, refusal */
} CloseKind;

struct _UvmConn {
  grefcount           ref_count;
  const UvmConnClass *klass;
  gpointer            owner;
  GMainContext       *context;
  UvmStream          *stream; /* NULL once closed */
  gboolean            closed;
  CloseKind           close_kind;
  GError             *close_error; /* for CLOSE_ERROR, reported to late callers */

  GQueue              requests;   /* of UvmRequest, unanswered, in send order */
  guint               timeout_ms; /* each request's deadline, 0 for none */

  /* "[uvm] <log_prefix> cancel" and "... deadline": the requests'
   * sources, all gone before the connection is. */
  char               *cancel_source_name;
  char               *deadline_source_name;

  GCallback           closed_func;
  gpointer            closed_data;
  GDestroyNotify      closed_notify;
};

static void conn_shutdown (UvmConn *conn, CloseKind kind, const GError *error);

static GError *
close_error_for (UvmConn *conn, CloseKind kind, const GError *error, const char *what)
{
  switch (kind)
    {
    case CLOSE_EOF:
      return g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                          "%s: the hypervisor closed the %s", what, conn->klass->peer_name);
    case CLOSE_LOCAL:
      return g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED, "%s: connection closed", what);
    case CLOSE_FINALIZE:
      return g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s: %s released",
                          what, conn->klass->client_name);
    case CLOSE_ERROR:
    default:
      return g_error_new (error->domain, error->code, "%s: %s", what, error->message);
    }
}

GError *
uvm_conn_close_error (UvmConn *conn, const char *what)
{
  g_return_val_if_fail (conn->closed, NULL);

  return close_error_for (conn, conn->close_kind, conn->close_error, what);
}

/* ---- ending ----------------------------------------------------------- */

typedef struct {
  UvmConn      *conn;
  CloseKind     kind;
  const GError *error;
  gboolean      peer_gone;
} ShutdownData;

/* Completes a request the connection's end leaves unanswered. */
static void
finish_on_shutdown (UvmRequest *request, gpointer user_data)
{
  ShutdownData *data = user_data;
  UvmConn *conn = data->conn;
  gpointer result = NULL;

  if (conn->klass->close_result != NULL)
    result = conn->klass->close_result (conn, request, data->peer_gone, conn->owner);
  if (result != NULL)
    uvm_request_complete (request, result, conn->klass->result_free, NULL);
  else
    uvm_request_complete (request, NULL, conn->klass->result_free,
                          close_error_for (conn, data->kind, data->error,
                                           uvm_request_get_what (request)));
}

/* Ends the connection once; see CloseKind.  @error only for CLOSE_ERROR. */
static void
conn_shutdown (UvmConn *conn, CloseKind kind, const GError *error)
{
  ShutdownData data = { conn, kind, error, FALSE };
  GQueue requests;

  if (conn->closed)
    return;

  /* While finalizing the count is already zero and nobody may call back in. */
  if (kind != CLOSE_FINALIZE)
    uvm_conn_ref (conn);

  conn->closed = TRUE;
  conn->close_kind = kind;
  if (error != NULL)
    conn->close_error = g_error_copy (error);

  /* The socket closes now; nothing queued goes out. */
  g_clear_pointer (&conn->stream, uvm_stream_free);

  /* Losing the peer may be a request's success (QMP's "quit"). */
  data.peer_gone = kind == CLOSE_EOF ||
                   (kind == CLOSE_ERROR &&
                    g_error_matches (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED));

  /* Take everything out before calling out: callbacks may run synchronously
   * and must find the connection in a consistent, closed state. */
  requests = conn->requests;
  g_queue_init (&conn->requests);

  if (conn->klass->closing != NULL)
    conn->klass->closing (conn, conn->owner);

  /* In send order.  Placeholders have no task and are just freed. */
  uvm_request_queue_finish_all (&requests, finish_on_shutdown, &data);

  if (kind != CLOSE_FINALIZE)
    {
      if (conn->closed_func != NULL &&
          (kind != CLOSE_LOCAL || conn->klass->closed_handler_on_local_close))
        conn->klass->call_closed (conn->closed_func, conn->owner,
                                  kind == CLOSE_ERROR ? error : NULL, conn->closed_data);
      uvm_conn_unref (conn);
    }
}

void
uvm_conn_close (UvmConn *conn)
{
  conn_shutdown (conn, CLOSE_LOCAL, NULL);
}

void
uvm_conn_fail (UvmConn *conn, const GError *error)
{
  g_return_if_fail (error != NULL);

  conn_shutdown (conn, CLOSE_ERROR, error);
}

void
uvm_conn_end_of_peer (UvmConn *conn)
{
  conn_shutdown (conn, CLOSE_EOF, NULL);
}

void
uvm_conn_protocol_error (UvmConn *conn, const char *format, ...)
{
  g_autoptr(GError) error = NULL;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (UVM_ERROR, UVM_ERROR_PROTOCOL, format, args);
  va_end (args);
  g_debug ("%s: %s", conn->klass->log_prefix, error->message);
  conn_shutdown (conn, CLOSE_ERROR, error);
}

gboolean
uvm_conn_is_closed (UvmConn *conn)
{
  return conn->closed;
}

/* ---- the stream's callbacks ------------------------------------------- */

static void
on_data (G_GNUC_UNUSED UvmStream *stream,
         const guint8            *bytes,
         gsize                    len,
         gpointer                 user_data)
{
  UvmConn *conn = user_data;

  uvm_conn_ref (conn);
  conn->klass->data (conn, bytes, len, conn->owner);
  uvm_conn_unref (conn);
}

static void
on_closed (G_GNUC_UNUSED UvmStream *stream,
           const GError            *error,
           gpointer                 user_data)
{
  UvmConn *conn = user_data;

  uvm_conn_ref (conn);
  if (error != NULL)
    conn_shutdown (conn, CLOSE_ERROR, error);
  else
    {
      /* The owner may still deliver a reply that ran to EOF, or find the
       * peer left in the middle of one. */
      if (conn->klass->eof != NULL)
        conn->klass->eof (conn, conn->owner);
      conn_shutdown (conn, CLOSE_EOF, NULL);
    }
  uvm_conn_unref (conn);
}

/* ---- lifetime --------------------------------------------------------- */

UvmConn *
uvm_conn_new (int fd, const UvmConnClass *klass, gpointer owner)
{
  static const UvmStreamCallbacks callbacks = { on_data, on_closed };
  UvmConn *conn;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (klass != NULL && klass->data != NULL && klass->call_closed != NULL, NULL);

  conn = g_new0 (UvmConn, 1);
  g_ref_count_init (&conn->ref_count);
  conn->klass = klass;
  conn->owner = owner;
  conn->context = g_main_context_ref_thread_default ();
  g_queue_init (&conn->requests);
  conn->cancel_source_name = g_strdup_printf ("[uvm] %s cancel", klass->log_prefix);
  conn->deadline_source_name = g_strdup_printf ("[uvm] %s deadline", klass->log_prefix);
  conn->stream = uvm_stream_new (fd, klass->stream_label, &callbacks, conn);
  return conn;
}

void
uvm_conn_ref (UvmConn *conn)
{
  g_ref_count_inc (&conn->ref_count);
}

void
uvm_conn_unref (UvmConn *conn)
{
  if (conn == NULL || !g_ref_count_dec (&conn->ref_count))
    return;

  /* No closed handler here: its owner is the one letting go. */
  conn_shutdown (conn, CLOSE_FINALIZE, NULL);

  if (conn->klass->finalize != NULL)
    conn->klass->finalize (conn->owner);
  if (conn->closed_notify != NULL)
    conn->closed_notify (conn->closed_data);
  g_clear_error (&conn->close_error);
  g_free (conn->cancel_source_name);
  g_free (conn->deadline_source_name);
  g_main_context_unref (conn->context);
  g_free (conn);
}

GMainContext *
uvm_conn_get_context (UvmConn *conn)
{
  return conn->context;
}

GQueue *
uvm_conn_get_requests (UvmConn *conn)
{
  return &conn->requests;
}

void
uvm_conn_set_request_timeout (UvmConn *conn, guint timeout_ms)
{
  conn->timeout_ms = timeout_ms;
}

guint
uvm_conn_get_request_timeout (UvmConn *conn)
{
  return conn->timeout_ms;
}

void
uvm_conn_set_closed_handler (UvmConn        *conn,
                             GCallback       func,
                             gpointer        data,
                             GDestroyNotify  notify)
{
  gpointer old_data = conn->closed_data;
  GDestroyNotify old_notify = conn->closed_notify;

  conn->closed_func = func;
  conn->closed_data = data;
  conn->closed_notify = notify;
  if (old_notify != NULL)
    old_notify (old_data);
}

/* ---- requests --------------------------------------------------------- */

static void
on_request_dropped (gboolean was_head, gpointer user_data)
{
  UvmConn *conn = user_data;

  conn->klass->dropped (conn, was_head, conn->owner);
}

/* A request's deadline passed (see uvm-request.h and the top of
 * uvm-conn.h). */
static void
on_request_expired (UvmRequest *request, GError *error, gpointer user_data)
{
  UvmConn *conn = user_data;
  g_autoptr(GError) shutdown_error = NULL;

  g_queue_remove (&conn->requests, request);
  if (!uvm_request_has_task (request) && conn->klass->forget_expired_placeholders)
    {
      /* Cancelled, and nobody waits: its reply, should it still come, is
       * dropped as one nobody awaits. */
      g_debug ("%s: forgetting %s, cancelled and never answered",
               conn->klass->log_prefix, uvm_request_get_what (request));
      uvm_request_free (request);
      g_error_free (error);
      return;
    }

  /* The peer is hung or out of step: the request fails first, with its
   * own error, nothing more is sent, even for a request its callback
   * issues, and the connection ends with the same error. */
  g_debug ("%s: %s", conn->klass->log_prefix, error->message);
  shutdown_error = g_error_copy (error);
  uvm_conn_ref (conn);
  uvm_conn_stop_writing (conn);
  uvm_request_complete (request, NULL, conn->klass->result_free, error);
  conn_shutdown (conn, CLOSE_ERROR, shutdown_error);
  uvm_conn_unref (conn);
}

UvmRequest *
uvm_conn_issue (UvmConn    *conn,
                GTask      *task,
                const char *what,
                GBytes     *bytes,
                const int  *fds,
                guint       n_fds)
{
  g_autoptr(GTask) owned = task;
  g_autoptr(GError) error = NULL;
  UvmStreamChunk *chunk;
  UvmRequest *request;

  if (g_task_return_error_if_cancelled (owned))
    return NULL;
  if (conn->closed)
    {
      g_task_return_error (owned, uvm_conn_close_error (conn, what));
      return NULL;
    }
  /* Too many fds, or one that cannot be duplicated (the stream keeps its
   * own copies, so the caller may close theirs at once). */
  chunk = uvm_stream_chunk_new (bytes, fds, n_fds, &error);
  if (chunk == NULL)
    {
      g_prefix_error (&error, "%s: ", what);
      g_task_return_error (owned, g_steal_pointer (&error));
      return NULL;
    }

  request = uvm_request_new (g_steal_pointer (&owned), chunk, what);
  uvm_request_attach_cancellable (request, g_task_get_cancellable (task), conn->context,
                                  &conn->requests, conn->cancel_source_name,
                                  conn->klass->log_prefix,
                                  conn->klass->dropped != NULL ? on_request_dropped : NULL, conn);
  uvm_request_set_deadline (request, conn->timeout_ms, conn->context,
                            conn->deadline_source_name, on_request_expired, conn);
  g_queue_push_tail (&conn->requests, request);
  return request;
}

/* ---- the stream ------------------------------------------------------- */

void
uvm_conn_push (UvmConn *conn, UvmRequest *request)
{
  if (conn->stream != NULL)
    uvm_stream_push (conn->stream, uvm_request_get_chunk (request));
}

void
uvm_conn_stop_writing (UvmConn *conn)
{
  if (conn->stream != NULL)
    uvm_stream_stop_writing (conn->stream);
}

void
uvm_conn_set_read_budget (UvmConn *conn, gsize max_bytes)
{
  if (conn->stream != NULL)
    uvm_stream_set_read_budget (conn->stream, max_bytes);
}

void
uvm_conn_read_pending (UvmConn *conn)
{
  if (conn->stream != NULL)
    uvm_stream_read_pending (conn->stream);
}
