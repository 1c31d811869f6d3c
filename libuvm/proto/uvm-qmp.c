/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client.  See uvm-qmp.h for the contract.
 *
 * The socket is a UvmStream (uvm-stream.h), which reads and writes it on
 * one GMainContext; the pending commands are UvmRequests (uvm-request.h),
 * which also handle cancelling; this file is the framing (input is split
 * on '\n', a command is one line of compact JSON) and the matching of
 * replies.
 *
 * Commands carry no "id" and replies are matched in order: every command
 * not yet answered sits in client->commands, in the order its bytes go out
 * (those the stream has not finished writing, then those held back until
 * the handshake, are always a tail of that list), and each reply belongs
 * to the head.  This is sound because we never negotiate the "oob"
 * capability: without it qemu runs in-band commands one at a time and
 * answers them in the order it read them, and events never carry "return"
 * or "error".  The reason for leaving the id out (DESIGN.md §4 says match
 * by id) is cost: qemu 7.2 reads the monitor one byte per recvmsg() (its
 * monitor_can_read() returns 1), about 3.5 µs a byte, so the 7-11 bytes of
 * ,"id":N cost ~30 µs per command, measured.  Keeping the FIFO in sync is
 * the price: a command cancelled after its first byte went out stays in the
 * list as a placeholder whose reply is dropped; one cancelled before that
 * is taken out of both lists and never sent.  A reply when nothing is on
 * the wire means we lost sync, and closes the connection.
 *
 * A command is pushed to the stream as soon as it may go: at once after
 * the handshake (the stream then writes it before execute_async returns
 * when nothing is ahead), else when qmp_capabilities has been answered;
 * qmp_capabilities itself goes first.  A write error inside the call is
 * reported from an idle source by the stream, never inside it.
 *
 * Reentrancy: GTask may invoke a caller's callback synchronously when we
 * return a result from inside one of our own sources, and the event and
 * closed handlers are always called synchronously.  Any of them may issue
 * commands, close or unref the client, so whoever calls out holds a
 * reference, takes its own entries out of shared structures first, and
 * checks client->closed afterwards. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-qmp.h"
#include "proto/uvm-request.h"
#include "proto/uvm-stream.h"

#include <uvm/uvm-error.h>

#include <string.h>

/* Longest excerpt of a message that goes into a debug line. */
#define LOG_EXCERPT 512

typedef enum {
  CLOSE_EOF,      /* the peer hung up */
  CLOSE_LOCAL,    /* uvm_qmp_client_close() */
  CLOSE_FINALIZE, /* the last reference went away */
  CLOSE_ERROR,    /* protocol, read or write error, or refused handshake */
} CloseKind;

struct _UvmQmpClient {
  grefcount     ref_count;
  GMainContext *context;
  UvmStream    *stream; /* NULL once closed */
  gboolean      closed;
  CloseKind     close_kind;
  GError       *close_error; /* for CLOSE_ERROR, reported to late callers */

  GByteArray *inbuf;    /* holds at most one incomplete line between reads */
  gsize       max_message;

  /* Of UvmRequest (uvm-request.h), unanswered, in send order; each
   * request's "what" is the command name. */
  GQueue      commands;
  /* The handshake's qmp_capabilities while unanswered (in commands, with
   * no task: the handshake has its own), else NULL. */
  UvmRequest *capabilities;

  JsonObject *greeting;
  gboolean    handshake_started;
  gboolean    handshake_done;
  GTask      *handshake_task;
  GSource    *handshake_cancel_source;

  UvmQmpEventFunc  event_func;
  gpointer         event_data;
  GDestroyNotify   event_notify;
  UvmQmpClosedFunc closed_func;
  gpointer         closed_data;
  GDestroyNotify   closed_notify;
};

static void client_shutdown (UvmQmpClient *client, CloseKind kind, const GError *error);

/* ---- small helpers ---------------------------------------------------- */

static gboolean
node_get_int (JsonNode *node, gint64 *out)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (node);
  return TRUE;
}

static const char *
node_get_string (JsonNode *node)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* The error a task gets when the connection ends (or has ended) before its
 * reply.  @what names the request. */
static GError *
close_error_for (CloseKind kind, const GError *error, const char *what)
{
  switch (kind)
    {
    case CLOSE_EOF:
      return g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                          "%s: the hypervisor closed the QMP connection", what);
    case CLOSE_LOCAL:
      return g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                          "%s: connection closed", what);
    case CLOSE_FINALIZE:
      return g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                          "%s: QMP client released", what);
    case CLOSE_ERROR:
    default:
      return g_error_new (error->domain, error->code, "%s: %s", what, error->message);
    }
}

static GSource *
attach_cancel_source (UvmQmpClient  *client,
                      GCancellable  *cancellable,
                      GSourceFunc    func,
                      gpointer       data)
{
  /* A cancellable source rather than a "cancelled" handler: it runs in our
   * context whatever thread cancels, and can be destroyed from anywhere,
   * including its own callback. */
  GSource *source = g_cancellable_source_new (cancellable);

  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, "[uvm] QMP cancel");
  g_source_attach (source, client->context);
  return source;
}

static void
destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* ---- output ----------------------------------------------------------- */

/* Serializes a command: {"execute":"name"} or
 * {"execute":"name","arguments":{...}}, no spaces (json-glib's compact
 * output has none) and no id, since every byte costs (see the top), with
 * copies of @fds to go with its first byte. */
static UvmStreamChunk *
command_chunk_new (const char  *command,
                   JsonNode    *arguments,
                   const int   *fds,
                   guint        n_fds,
                   GError     **error)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GBytes) bytes = NULL;
  gsize len;

  json_object_set_string_member (object, "execute", command);
  if (arguments != NULL)
    json_object_set_member (object, "arguments", json_node_copy (arguments));
  node = json_node_init_object (json_node_alloc (), object);
  text = json_to_string (node, FALSE);
  len = strlen (text);

  g_debug ("QMP -> %.*s", (int) MIN (len, LOG_EXCERPT), text);
  bytes = g_bytes_new_take (g_strconcat (text, "\n", NULL), len + 1);
  return uvm_stream_chunk_new (bytes, fds, n_fds, error);
}

/* ---- completing requests ---------------------------------------------- */

static void
complete_handshake (UvmQmpClient *client, GError *error)
{
  GTask *task = g_steal_pointer (&client->handshake_task);

  destroy_source (&client->handshake_cancel_source);
  if (task == NULL)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

typedef struct {
  CloseKind     kind;
  const GError *error;
  gboolean      quit_succeeds;
} ShutdownData;

/* Fails a command the connection's end leaves unanswered, except "quit". */
static void
finish_on_shutdown (UvmRequest *request, gpointer user_data)
{
  ShutdownData *data = user_data;
  const char *command = uvm_request_get_what (request);

  if (data->quit_succeeds && g_str_equal (command, "quit"))
    {
      JsonNode *empty = json_node_new (JSON_NODE_OBJECT);

      json_node_take_object (empty, json_object_new ());
      uvm_request_complete (request, empty, (GDestroyNotify) json_node_unref, NULL);
    }
  else
    uvm_request_complete (request, NULL, (GDestroyNotify) json_node_unref,
                          close_error_for (data->kind, data->error, command));
}

/* Ends the connection once; see CloseKind.  @error only for CLOSE_ERROR. */
static void
client_shutdown (UvmQmpClient *client, CloseKind kind, const GError *error)
{
  GQueue commands;
  ShutdownData data = { kind, error, FALSE };

  if (client->closed)
    return;

  /* While finalizing the count is already zero and nobody may call back in. */
  if (kind != CLOSE_FINALIZE)
    uvm_qmp_client_ref (client);

  client->closed = TRUE;
  client->close_kind = kind;
  if (error != NULL)
    client->close_error = g_error_copy (error);

  /* The socket closes now; nothing queued goes out. */
  g_clear_pointer (&client->stream, uvm_stream_free);

  /* qemu may exit before flushing the reply to "quit", so losing the peer
   * is that command's success. */
  data.quit_succeeds = kind == CLOSE_EOF ||
                  (kind == CLOSE_ERROR &&
                   g_error_matches (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED));

  /* Take everything out before calling out: callbacks may run synchronously
   * and must find the client in a consistent, closed state. */
  commands = client->commands;
  g_queue_init (&client->commands);
  client->capabilities = NULL;

  if (client->handshake_task != NULL)
    complete_handshake (client, close_error_for (kind, error, "QMP handshake"));

  /* In send order.  Placeholders and qmp_capabilities have no task. */
  uvm_request_queue_finish_all (&commands, finish_on_shutdown, &data);

  if (kind != CLOSE_FINALIZE)
    {
      if (client->closed_func != NULL)
        client->closed_func (client, kind == CLOSE_ERROR ? error : NULL, client->closed_data);
      uvm_qmp_client_unref (client);
    }
}

static void protocol_error (UvmQmpClient *client, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
protocol_error (UvmQmpClient *client, const char *format, ...)
{
  g_autoptr(GError) error = NULL;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (UVM_ERROR, UVM_ERROR_PROTOCOL, format, args);
  va_end (args);
  g_debug ("QMP: %s", error->message);
  client_shutdown (client, CLOSE_ERROR, error);
}

/* ---- input ------------------------------------------------------------ */

static GError *
reply_error (const char *command, JsonNode *error_node)
{
  const char *klass = NULL;
  const char *desc = NULL;

  if (JSON_NODE_HOLDS_OBJECT (error_node))
    {
      JsonObject *object = json_node_get_object (error_node);

      klass = node_get_string (json_object_get_member (object, "class"));
      desc = node_get_string (json_object_get_member (object, "desc"));
    }
  return g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR, "%s: %s (%s)", command,
                      desc ? desc : "unknown error", klass ? klass : "no class");
}

static void
handle_capabilities_reply (UvmQmpClient *client, JsonObject *message)
{
  JsonNode *error_node = json_object_get_member (message, "error");

  if (error_node != NULL)
    {
      /* Without capabilities negotiated qemu accepts no other command, so the
       * connection is of no further use. */
      g_autoptr(GError) error = reply_error ("qmp_capabilities", error_node);

      complete_handshake (client, g_error_copy (error));
      client_shutdown (client, CLOSE_ERROR, error);
      return;
    }

  /* Every command still in line was issued before the handshake and held
   * back: they go now, in order. */
  client->handshake_done = TRUE;
  for (GList *l = client->commands.head; l != NULL; l = l->next)
    uvm_stream_push (client->stream, uvm_request_get_chunk (l->data));
  complete_handshake (client, NULL);
}

/* Every reply belongs to the oldest unanswered command (see the top).  An
 * "id" member, which we never send, is ignored like any other unknown one:
 * matching stays in order. */
static void
handle_reply (UvmQmpClient *client, JsonObject *message)
{
  JsonNode *error_node = json_object_get_member (message, "error");
  UvmRequest *p = g_queue_peek_head (&client->commands);

  /* Once any byte of a command is out, qemu may answer it as soon as it
   * has parsed the closing brace. */
  if (p == NULL || !uvm_request_on_wire (p))
    {
      protocol_error (client, "QMP reply with no command in flight");
      return;
    }
  g_queue_pop_head (&client->commands);

  if (p == client->capabilities)
    {
      client->capabilities = NULL;
      uvm_request_free (p);
      handle_capabilities_reply (client, message);
      return;
    }
  if (!uvm_request_has_task (p))
    {
      g_debug ("QMP: discarding the reply to %s, cancelled", uvm_request_get_what (p));
      uvm_request_free (p);
      return;
    }

  if (error_node != NULL)
    uvm_request_complete (p, NULL, (GDestroyNotify) json_node_unref,
                          reply_error (uvm_request_get_what (p), error_node));
  else
    uvm_request_complete (p, json_node_copy (json_object_get_member (message, "return")),
                          (GDestroyNotify) json_node_unref, NULL);
}

static void
handle_event (UvmQmpClient *client, JsonObject *message)
{
  const char *name = node_get_string (json_object_get_member (message, "event"));
  JsonNode *data = json_object_get_member (message, "data");
  JsonNode *timestamp = json_object_get_member (message, "timestamp");
  gint64 timestamp_us = 0;

  if (name == NULL)
    {
      protocol_error (client, "QMP event without a name");
      return;
    }
  if (timestamp != NULL && JSON_NODE_HOLDS_OBJECT (timestamp))
    {
      JsonObject *t = json_node_get_object (timestamp);
      gint64 seconds = 0, microseconds = 0;

      node_get_int (json_object_get_member (t, "seconds"), &seconds);
      node_get_int (json_object_get_member (t, "microseconds"), &microseconds);
      timestamp_us = seconds * G_USEC_PER_SEC + microseconds;
    }

  if (client->event_func != NULL)
    client->event_func (client, name,
                        data != NULL && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL,
                        timestamp_us, client->event_data);
}

static void
send_capabilities (UvmQmpClient *client)
{
  /* No "enable": without "oob" replies come in order (see the top). */
  UvmRequest *p = uvm_request_new (NULL, command_chunk_new ("qmp_capabilities", NULL, NULL, 0, NULL),
                                   "qmp_capabilities");

  client->capabilities = p;
  /* The first command in flight, ahead of any queued before the handshake
   * (none of which has been pushed to the stream). */
  g_queue_push_head (&client->commands, p);
  uvm_stream_push (client->stream, uvm_request_get_chunk (p));
}

static void
handle_line (UvmQmpClient *client, const char *line, gsize len)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonNode *root;
  JsonObject *message;

  g_debug ("QMP <- %.*s", (int) MIN (len, LOG_EXCERPT), line);
  if (!json_parser_load_from_data (parser, line, len, &error))
    {
      protocol_error (client, "malformed QMP message: %s", error->message);
      return;
    }
  root = json_parser_get_root (parser);
  if (root == NULL) /* only whitespace */
    return;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      protocol_error (client, "QMP message is not a JSON object");
      return;
    }
  message = json_node_get_object (root);

  if (client->greeting == NULL)
    {
      JsonNode *qmp = json_object_get_member (message, "QMP");

      if (qmp == NULL || !JSON_NODE_HOLDS_OBJECT (qmp))
        {
          protocol_error (client, "expected the QMP greeting, got another message");
          return;
        }
      client->greeting = json_object_ref (json_node_get_object (qmp));
      if (client->handshake_started)
        send_capabilities (client);
    }
  else if (json_object_has_member (message, "event"))
    handle_event (client, message);
  else if (json_object_has_member (message, "return") || json_object_has_member (message, "error"))
    handle_reply (client, message);
  else
    protocol_error (client, "unexpected QMP message");
}

/* Handles every complete line in inbuf; newly read bytes start at
 * @scan_from (the ones before contain no newline). */
static void
process_input (UvmQmpClient *client, gsize scan_from)
{
  GByteArray *buf = client->inbuf;
  gsize start = 0;
  guint8 *newline;

  while ((newline = memchr (buf->data + scan_from, '\n', buf->len - scan_from)) != NULL)
    {
      gsize end = newline - buf->data;
      gsize len = end - start;

      if (len > 0 && buf->data[start + len - 1] == '\r')
        len--;
      if (len > client->max_message)
        {
          protocol_error (client, "QMP message of %" G_GSIZE_FORMAT " bytes exceeds the limit of %"
                          G_GSIZE_FORMAT, len, client->max_message);
        }
      else if (len > 0)
        handle_line (client, (const char *) buf->data + start, len);

      if (client->closed)
        {
          g_byte_array_set_size (buf, 0);
          return;
        }
      start = scan_from = end + 1;
    }

  g_byte_array_remove_range (buf, 0, start);
  /* One byte of slack for a '\r' still waiting for its '\n'. */
  if (buf->len > client->max_message + 1)
    {
      protocol_error (client, "QMP message exceeds the limit of %" G_GSIZE_FORMAT " bytes",
                      client->max_message);
      g_byte_array_set_size (buf, 0);
    }
}

/* Keeps the buffer within max_message + 2 bytes (a line, its CRLF): an
 * endless line must fail one read past the limit, not grow the buffer. */
static void
update_read_budget (UvmQmpClient *client)
{
  gsize len = client->inbuf->len;

  uvm_stream_set_read_budget (client->stream,
                              len < client->max_message + 2 ? client->max_message + 2 - len : 1);
}

static void
on_data (G_GNUC_UNUSED UvmStream *stream,
         const guint8            *bytes,
         gsize                    len,
         gpointer                 user_data)
{
  UvmQmpClient *client = user_data;
  gsize old_len = client->inbuf->len;

  uvm_qmp_client_ref (client);
  g_byte_array_append (client->inbuf, bytes, len);
  process_input (client, old_len);
  if (!client->closed)
    update_read_budget (client);
  uvm_qmp_client_unref (client);
}

static void
on_closed (G_GNUC_UNUSED UvmStream *stream,
           const GError            *error,
           gpointer                 user_data)
{
  UvmQmpClient *client = user_data;

  if (error != NULL)
    {
      client_shutdown (client, CLOSE_ERROR, error);
      return;
    }
  if (client->inbuf->len > 0)
    g_debug ("QMP: discarding %u bytes of an incomplete message at EOF", client->inbuf->len);
  g_byte_array_set_size (client->inbuf, 0);
  client_shutdown (client, CLOSE_EOF, NULL);
}

/* ---- public API ------------------------------------------------------- */

UvmQmpClient *
uvm_qmp_client_new (int fd)
{
  static const UvmStreamCallbacks callbacks = { on_data, on_closed };
  UvmQmpClient *client;

  g_return_val_if_fail (fd >= 0, NULL);

  client = g_new0 (UvmQmpClient, 1);
  g_ref_count_init (&client->ref_count);
  client->context = g_main_context_ref_thread_default ();
  client->inbuf = g_byte_array_new ();
  client->max_message = UVM_QMP_DEFAULT_MAX_MESSAGE;
  g_queue_init (&client->commands);
  client->stream = uvm_stream_new (fd, "the QMP socket", &callbacks, client);
  update_read_budget (client);

  return client;
}

UvmQmpClient *
uvm_qmp_client_ref (UvmQmpClient *client)
{
  g_return_val_if_fail (client != NULL, NULL);

  g_ref_count_inc (&client->ref_count);
  return client;
}

void
uvm_qmp_client_unref (UvmQmpClient *client)
{
  if (client == NULL || !g_ref_count_dec (&client->ref_count))
    return;

  /* No closed handler here: its owner is the one letting go. */
  client_shutdown (client, CLOSE_FINALIZE, NULL);

  if (client->event_notify != NULL)
    client->event_notify (client->event_data);
  if (client->closed_notify != NULL)
    client->closed_notify (client->closed_data);
  g_clear_pointer (&client->greeting, json_object_unref);
  g_byte_array_unref (client->inbuf);
  g_clear_error (&client->close_error);
  g_main_context_unref (client->context);
  g_free (client);
}

void
uvm_qmp_client_set_max_message (UvmQmpClient *client, gsize max_bytes)
{
  g_return_if_fail (client != NULL);
  g_return_if_fail (max_bytes > 0);

  /* GByteArray lengths are guint; keep max + slack representable. */
  client->max_message = MIN (max_bytes, G_MAXUINT / 2);
  if (client->stream != NULL)
    update_read_budget (client);
}

void
uvm_qmp_client_set_event_handler (UvmQmpClient   *client,
                                  UvmQmpEventFunc func,
                                  gpointer        user_data,
                                  GDestroyNotify  notify)
{
  gpointer old_data;
  GDestroyNotify old_notify;

  g_return_if_fail (client != NULL);

  old_data = client->event_data;
  old_notify = client->event_notify;
  client->event_func = func;
  client->event_data = user_data;
  client->event_notify = notify;
  if (old_notify != NULL)
    old_notify (old_data);
}

void
uvm_qmp_client_set_closed_handler (UvmQmpClient    *client,
                                   UvmQmpClosedFunc func,
                                   gpointer         user_data,
                                   GDestroyNotify   notify)
{
  gpointer old_data;
  GDestroyNotify old_notify;

  g_return_if_fail (client != NULL);

  old_data = client->closed_data;
  old_notify = client->closed_notify;
  client->closed_func = func;
  client->closed_data = user_data;
  client->closed_notify = notify;
  if (old_notify != NULL)
    old_notify (old_data);
}

static gboolean
on_handshake_cancelled (G_GNUC_UNUSED GCancellable *cancellable, gpointer user_data)
{
  UvmQmpClient *client = user_data;

  /* Only the caller stops waiting; the negotiation itself goes on, so that
   * commands queued behind it are not stranded. */
  complete_handshake (client, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           "QMP handshake cancelled"));
  return G_SOURCE_REMOVE;
}

void
uvm_qmp_client_handshake_async (UvmQmpClient        *client,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (client != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_qmp_client_handshake_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (client->closed)
    {
      g_task_return_error (task, close_error_for (client->close_kind, client->close_error,
                                                  "QMP handshake"));
      return;
    }
  if (client->handshake_done)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (client->handshake_task != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "QMP handshake already in progress");
      return;
    }

  client->handshake_task = g_steal_pointer (&task);
  if (cancellable != NULL)
    client->handshake_cancel_source =
      attach_cancel_source (client, cancellable, G_SOURCE_FUNC (on_handshake_cancelled), client);

  if (!client->handshake_started)
    {
      client->handshake_started = TRUE;
      if (client->greeting != NULL)
        send_capabilities (client);
    }
}

/* The finish functions never touch @client: with unref, callbacks may run
 * while it is being finalized. */
gboolean
uvm_qmp_client_handshake_finish (G_GNUC_UNUSED UvmQmpClient *client,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == uvm_qmp_client_handshake_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

JsonObject *
uvm_qmp_client_get_greeting (UvmQmpClient *client)
{
  g_return_val_if_fail (client != NULL, NULL);

  return client->greeting;
}

void
uvm_qmp_client_execute_async (UvmQmpClient        *client,
                              const char          *command,
                              JsonNode            *arguments,
                              const int           *fds,
                              guint                n_fds,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  UvmStreamChunk *chunk;
  UvmRequest *p;

  g_return_if_fail (client != NULL);
  g_return_if_fail (command != NULL);
  g_return_if_fail (arguments == NULL || JSON_NODE_HOLDS_OBJECT (arguments));
  g_return_if_fail (fds != NULL || n_fds == 0);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_qmp_client_execute_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (client->closed)
    {
      g_task_return_error (task, close_error_for (client->close_kind, client->close_error, command));
      return;
    }
  /* Too many fds, or one that cannot be duplicated (the stream keeps its
   * own copies, so the caller may close theirs at once). */
  chunk = command_chunk_new (command, arguments, fds, n_fds, &error);
  if (chunk == NULL)
    {
      g_prefix_error (&error, "%s: ", command);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  p = uvm_request_new (g_steal_pointer (&task), chunk, command);
  uvm_request_attach_cancellable (p, cancellable, client->context, &client->commands,
                                  "[uvm] QMP cancel", "QMP", NULL, NULL);
  g_queue_push_tail (&client->commands, p);

  /* Held back until the handshake; then straight to the socket when
   * nothing is queued ahead.  This calls nobody back: a write error is
   * reported from an idle source, and the task completes from the main
   * loop at the earliest. */
  if (client->handshake_done)
    uvm_stream_push (client->stream, chunk);
}

JsonNode *
uvm_qmp_client_execute_finish (G_GNUC_UNUSED UvmQmpClient *client,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == uvm_qmp_client_execute_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

void
uvm_qmp_client_close (UvmQmpClient *client)
{
  g_return_if_fail (client != NULL);

  client_shutdown (client, CLOSE_LOCAL, NULL);
}

void
uvm_qmp_client_read_pending (UvmQmpClient *client)
{
  g_return_if_fail (client != NULL);

  if (client->stream != NULL)
    uvm_stream_read_pending (client->stream);
}

gboolean
uvm_qmp_client_is_closed (UvmQmpClient *client)
{
  g_return_val_if_fail (client != NULL, TRUE);

  return client->closed;
}
