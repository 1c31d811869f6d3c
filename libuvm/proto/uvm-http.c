/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* HTTP/1.1 client for cloud-hypervisor's API socket.  See uvm-http.h for
 * the contract.
 *
 * The connection (socket, pending requests, their cancelling and
 * deadlines, how it ends and the errors that gives, references, the closed
 * handler) is a UvmConn (uvm-conn.h); the response parser is
 * uvm-http-parser.c; this file is the serialising of requests and the
 * matching of responses.  HTTP/1.1 keep-alive has one request in flight:
 * the connection's queue holds every request not yet answered, its head
 * is the one being written or awaiting its response, and only the head is
 * pushed to the stream, when it becomes the head.  A request cancelled
 * once any byte of it is out stays at the head without a task: the rest of
 * it is still written (framing) and its response read and dropped, so
 * that the next response goes to the next request.  One cancelled before
 * that is never sent.  A request's deadline ends the connection even for a
 * cancelled one: the connection is in step only once its response has
 * been read.
 *
 * Interim 1xx responses are skipped.  A response saying "Connection:
 * close", or one that arrives before its request was completely sent (the
 * rest would be read as another request), ends the connection once it is
 * delivered; the stream stops writing meanwhile, so requests behind it
 * fail rather than go to a peer that is leaving.
 *
 * A request is written at once from request_async when nothing is ahead of
 * it; a write error there is reported from an idle source by the stream,
 * never inside the call.
 *
 * Reentrancy: GTask may invoke a caller's callback synchronously when we
 * return a result from inside one of our own sources.  The callback may
 * issue requests, close or unref the client: the connection holds a
 * reference across its callbacks, entries are taken out of the queue
 * before calling out, and uvm_conn_is_closed() is checked afterwards. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-http.h"
#include "proto/uvm-conn.h"

#include <string.h>

struct _UvmHttpClient {
  UvmConn       *conn;
  UvmHttpParser *parser;
};

/* ---- output ----------------------------------------------------------- */

/* Pushes the head request to the stream (which writes it at once if it
 * can, calling nobody back).  Called whenever a request becomes the head:
 * issued with nothing ahead, or the one ahead answered or dropped. */
static void
send_head (UvmHttpClient *client)
{
  UvmRequest *r = g_queue_peek_head (uvm_conn_get_requests (client->conn));

  if (r == NULL)
    return;
  g_debug ("HTTP -> %s", uvm_request_get_what (r));
  uvm_conn_push (client->conn, r);
}

/* ---- input ------------------------------------------------------------ */

/* A complete response (transfer full) for the head request. */
static void
handle_response (UvmHttpClient *client, UvmHttpResponse *response)
{
  gboolean closing = uvm_http_parser_last_said_close (client->parser);
  UvmRequest *r = g_queue_peek_head (uvm_conn_get_requests (client->conn));
  gboolean answered_early;

  if (r == NULL) /* cannot happen: input is parsed only for a request */
    {
      uvm_http_response_free (response);
      uvm_conn_protocol_error (client->conn, "HTTP response with no request in flight");
      return;
    }
  g_debug ("HTTP <- %u %s (%" G_GSIZE_FORMAT " bytes) for %s", response->status,
           response->reason, response->body_len, uvm_request_get_what (r));

  /* An interim response (100 Continue and the like, which we never ask
   * for) precedes the real one. */
  if (response->status < 200)
    {
      uvm_http_response_free (response);
      return;
    }

  g_queue_pop_head (uvm_conn_get_requests (client->conn));
  /* Answered before we finished sending it (a server refusing a request
   * can): the rest would be read as another request, so the connection is
   * out of step and ends after this response. */
  answered_early = !uvm_stream_chunk_sent (uvm_request_get_chunk (r));

  /* Nothing more is written, even for a request the callback issues. */
  if (closing || answered_early)
    uvm_conn_stop_writing (client->conn);
  else
    send_head (client); /* the next request, if any */

  if (!uvm_request_has_task (r))
    g_debug ("HTTP: discarding the response to %s, cancelled", uvm_request_get_what (r));
  uvm_request_complete (r, response, (GDestroyNotify) uvm_http_response_free, NULL);

  if (answered_early)
    uvm_conn_protocol_error (client->conn,
                             "the hypervisor answered a request before it was completely sent");
  else if (closing)
    uvm_conn_end_of_peer (client->conn);
}

static void
http_data (UvmConn *conn, const guint8 *bytes, gsize len, gpointer owner)
{
  UvmHttpClient *client = owner;
  const char *data = (const char *) bytes;
  gsize offset = 0;

  /* The parser holds at most max_response bytes, so reads of the stream's
   * default size buffer nothing unbounded.  The connection holds a
   * reference meanwhile. */
  while (offset < len && !uvm_conn_is_closed (conn))
    {
      UvmRequest *head = g_queue_peek_head (uvm_conn_get_requests (conn));
      g_autoptr(GError) error = NULL;
      UvmHttpResponse *response = NULL;
      gsize consumed = 0;

      if (head == NULL || !uvm_request_on_wire (head))
        {
          uvm_conn_protocol_error (conn, "HTTP data from the hypervisor with no request in flight");
          return;
        }
      switch (uvm_http_parser_feed (client->parser, data + offset, len - offset,
                                    &consumed, &response, &error))
        {
        case UVM_HTTP_PARSE_NEED_MORE:
          return;
        case UVM_HTTP_PARSE_DONE:
          offset += consumed;
          handle_response (client, response);
          break;
        case UVM_HTTP_PARSE_ERROR:
        default:
          g_debug ("HTTP: %s", error->message);
          uvm_conn_fail (conn, error);
          return;
        }
    }
}

/* The peer hung up: a body that ran to EOF is complete now; one cut short
 * is an error.  The connection then ends with EOF, unless already over. */
static void
http_eof (UvmConn *conn, gpointer owner)
{
  UvmHttpClient *client = owner;
  g_autoptr(GError) error = NULL;
  UvmHttpResponse *response = NULL;

  switch (uvm_http_parser_finish_eof (client->parser, &response, &error))
    {
    case UVM_HTTP_PARSE_DONE:
      /* The request is on the wire, or the parser would have had no
       * bytes. */
      handle_response (client, response);
      break;
    case UVM_HTTP_PARSE_ERROR:
      g_debug ("HTTP: %s", error->message);
      uvm_conn_fail (conn, error);
      break;
    case UVM_HTTP_PARSE_NEED_MORE:
    default:
      break;
    }
}

static void
http_closing (G_GNUC_UNUSED UvmConn *conn, gpointer owner)
{
  UvmHttpClient *client = owner;

  uvm_http_parser_reset (client->parser);
}

/* A request cancelled before any byte went out has left the queue: if it
 * was next in line, the one behind it is. */
static void
http_dropped (G_GNUC_UNUSED UvmConn *conn, gboolean was_head, gpointer owner)
{
  if (was_head)
    send_head (owner);
}

static void
http_call_closed (GCallback func, gpointer owner, const GError *error, gpointer data)
{
  ((UvmHttpClosedFunc) func) (owner, error, data);
}

static void
http_finalize (gpointer owner)
{
  UvmHttpClient *client = owner;

  uvm_http_parser_free (client->parser);
  g_free (client);
}

static const UvmConnClass http_class = {
  .log_prefix = "HTTP",
  .peer_name = "API connection",
  .client_name = "HTTP client",
  .stream_label = "the API socket",
  .closed_handler_on_local_close = FALSE,
  /* Responses are matched by order: one still to come could not be told
   * from the next request's. */
  .forget_expired_placeholders = FALSE,
  .result_free = (GDestroyNotify) uvm_http_response_free,
  .data = http_data,
  .eof = http_eof,
  .closing = http_closing,
  .dropped = http_dropped,
  .call_closed = http_call_closed,
  .finalize = http_finalize,
};

/* ---- public API ------------------------------------------------------- */

UvmHttpClient *
uvm_http_client_new (int fd)
{
  UvmHttpClient *client;

  g_return_val_if_fail (fd >= 0, NULL);

  client = g_new0 (UvmHttpClient, 1);
  client->parser = uvm_http_parser_new (UVM_HTTP_DEFAULT_MAX_RESPONSE);
  client->conn = uvm_conn_new (fd, &http_class, client);

  return client;
}

/* The last reference ends the connection, then frees the client (the
 * class's finalize). */
UVM_CONN_DEFINE_REF_UNREF (UvmHttpClient, uvm_http_client)

void
uvm_http_client_set_closed_handler (UvmHttpClient    *client,
                                    UvmHttpClosedFunc func,
                                    gpointer          user_data)
{
  g_return_if_fail (client != NULL);

  uvm_conn_set_closed_handler (client->conn, G_CALLBACK (func), user_data, NULL);
}

void
uvm_http_client_set_request_timeout (UvmHttpClient *client, guint timeout_ms)
{
  g_return_if_fail (client != NULL);

  uvm_conn_set_request_timeout (client->conn, timeout_ms);
}

void
uvm_http_client_set_max_response (UvmHttpClient *client, gsize max_bytes)
{
  g_return_if_fail (client != NULL);
  g_return_if_fail (max_bytes > 0);

  uvm_http_parser_set_max_response (client->parser, max_bytes);
}

static gboolean
is_valid_method (const char *method)
{
  if (*method == '\0')
    return FALSE;
  for (const char *p = method; *p != '\0'; p++)
    if (!uvm_http_is_tchar (*p))
      return FALSE;
  return TRUE;
}

static gboolean
is_valid_target (const char *path)
{
  if (*path != '/')
    return FALSE;
  for (const char *p = path; *p != '\0'; p++)
    if ((guchar) *p <= 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static GBytes *
request_serialize (const char *method, const char *path, const char *body)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "%s %s HTTP/1.1\r\n"
                                "Host: localhost\r\n"
                                "Accept: application/json\r\n", method, path);
  if (body != NULL)
    g_string_append_printf (text, "Content-Type: application/json\r\n"
                                  "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n%s",
                            strlen (body), body);
  else if (!g_str_equal (method, "GET") && !g_str_equal (method, "HEAD"))
    /* Methods with content say it is empty (RFC 9110 §8.6). */
    g_string_append (text, "Content-Length: 0\r\n\r\n");
  else
    g_string_append (text, "\r\n");

  return g_string_free_to_bytes (text);
}

void
uvm_http_client_request_async (UvmHttpClient      *client,
                               const char         *method,
                               const char         *path,
                               const char         *body,
                               const int          *fds,
                               guint               n_fds,
                               GCancellable       *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer            user_data)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *what = NULL;
  GTask *task;
  UvmRequest *r;

  g_return_if_fail (client != NULL);
  g_return_if_fail (method != NULL && is_valid_method (method));
  g_return_if_fail (path != NULL && is_valid_target (path));
  g_return_if_fail (fds != NULL || n_fds == 0);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_http_client_request_async);
  what = g_strdup_printf ("%s %s", method, path);

  bytes = request_serialize (method, path, body);
  r = uvm_conn_issue (client->conn, task, what, bytes, fds, n_fds);
  if (r == NULL)
    return; /* failed at once: cancelled, closed, or fds it cannot carry */

  /* Straight to the socket when nothing is ahead.  This calls nobody back:
   * a write error is reported from an idle source, and the task completes
   * from the main loop at the earliest. */
  if (g_queue_peek_head (uvm_conn_get_requests (client->conn)) == r)
    send_head (client);
}

/* Never touches @client: with unref, callbacks may run while it is being
 * finalized. */
UvmHttpResponse *
uvm_http_client_request_finish (G_GNUC_UNUSED UvmHttpClient *client,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == uvm_http_client_request_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

void
uvm_http_client_close (UvmHttpClient *client)
{
  g_return_if_fail (client != NULL);

  uvm_conn_close (client->conn);
}
