/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client.  See uvm-qmp.h for the contract.
 *
 * The connection (socket, pending commands, their cancelling and
 * deadlines, how it ends and the errors that gives, references, the closed
 * handler) is a UvmConn (uvm-conn.h); this file is the framing, the
 * handshake, events and the matching of replies.
 *
 * Matching.  Every command, qmp_capabilities included, carries an "id"
 * (a counter, never reused) and sits in the connection's queue until its reply
 * comes or its deadline passes; qemu echoes the id, and a reply goes to the
 * command with that id, wherever it is in the list.  A reply without an id
 * (qemu's answer to input it could not parse), with an id we do not know
 * (or of a command we have not finished sending), and anything that is not
 * a reply, an event or the greeting is dropped with a debug line: it can
 * concern at most one command, which then gets no reply and fails by its
 * deadline.  A command cancelled once on the wire stays in the list as a
 * placeholder, its id reserved, so that its late reply is recognised and
 * dropped; its deadline, when it passes, just forgets it.  Linear search:
 * a handful of commands are in flight at most.
 *
 * Framing.  qemu writes one compact object per line (CRLF) or, with
 * pretty=on, one object over several lines; a read may carry part of a
 * message or several, even on one line.  The input is scanned byte by byte
 * (brace depth, string and escape state), and a top-level object ends when
 * its depth returns to 0; anything else at depth 0 but white space is
 * garbage up to the next newline.  A raw newline cannot be inside a JSON
 * string, so one there ends the broken object as garbage; a '{' at the
 * start of a line inside an unfinished object starts a new message (qemu
 * indents nested lines), so a garbage line with an unbalanced '{' does not
 * swallow the messages after it.  An object that ends but does not parse is
 * dropped up to its first newline and the rest scanned again, looking only
 * for a '{' at the start of a line, which keeps the rescanning linear.
 * Only a message (or garbage line) over max_message breaks the connection.
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
 * reference (the connection does, across its callbacks), takes its own
 * entries out of shared structures first, and checks
 * uvm_conn_is_closed() afterwards. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-qmp.h"
#include "proto/uvm-conn.h"

#include "util/uvm-util.h"

#include <uvm/uvm-error.h>

#include <string.h>

/* Longest excerpt of a message that goes into a debug line. */
#define LOG_EXCERPT 512

typedef enum {
  FRAME_IDLE,    /* between messages: white space is skipped */
  FRAME_OBJECT,  /* inside a top-level object */
  FRAME_GARBAGE, /* dropping a line that is not a message */
} FrameState;

struct _UvmQmpClient {
  UvmConn      *conn;

  /* The framer (see the top): inbuf starts at the first byte of the unit
   * being framed (object or garbage line), of which scanned bytes are
   * scanned; the rest is its state. */
  GByteArray *inbuf;
  gsize       scanned;
  FrameState  frame;
  guint       depth;
  gboolean    in_string;
  gboolean    escaped;
  gboolean    line_start;  /* the next byte begins a line */
  gboolean    resyncing;   /* after a failed parse: only a '{' at column 0 */
  gsize       max_message;

  /* The pending commands are the connection's requests; each request's
   * "what" is the command name and its id the "id" it carries. */
  guint64     next_id;
  /* The handshake's qmp_capabilities while unanswered (in commands, with
   * no task: the handshake has its own), else NULL. */
  UvmRequest *capabilities;

  JsonObject *greeting;
  gboolean    handshake_started;
  gboolean    handshake_done;
  GTask      *handshake_task;
  GSource    *handshake_cancel_source;
  GSource    *handshake_deadline_source;
  guint       handshake_timeout_ms;

  UvmQmpEventFunc  event_func;
  gpointer         event_data;
  GDestroyNotify   event_notify;
};

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
  g_source_attach (source, uvm_conn_get_context (client->conn));
  return source;
}

/* ---- output ----------------------------------------------------------- */

/* Serializes a command: {"execute":"name","id":N} or
 * {"execute":"name","arguments":{...},"id":N}, no spaces (json-glib's
 * compact output has none: qemu 7.2 reads the monitor a byte at a time, so
 * every byte costs a few µs), newline-terminated. */
static GBytes *
command_bytes_new (const char *command,
                   JsonNode   *arguments,
                   guint64     id)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *text = NULL;
  gsize len;

  json_object_set_string_member (object, "execute", command);
  if (arguments != NULL)
    json_object_set_member (object, "arguments", json_node_copy (arguments));
  json_object_set_int_member (object, "id", (gint64) id);
  node = json_node_init_object (json_node_alloc (), object);
  text = json_to_string (node, FALSE);
  len = strlen (text);

  g_debug ("QMP -> %.*s", (int) MIN (len, LOG_EXCERPT), text);
  return g_bytes_new_take (g_strconcat (text, "\n", NULL), len + 1);
}

/* ---- completing requests ---------------------------------------------- */

static void
complete_handshake (UvmQmpClient *client, GError *error)
{
  GTask *task = g_steal_pointer (&client->handshake_task);

  uvm_source_clear (&client->handshake_cancel_source);
  uvm_source_clear (&client->handshake_deadline_source);
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

/* The connection is ending (uvm-conn.h): the handshake fails like a
 * command, after the queue was emptied. */
static void
qmp_closing (UvmConn *conn, gpointer owner)
{
  UvmQmpClient *client = owner;

  client->capabilities = NULL;
  if (client->handshake_task != NULL)
    complete_handshake (client, uvm_conn_close_error (conn, "QMP handshake"));
}

/* qemu may exit before flushing the reply to "quit", so losing the peer
 * is that command's success. */
static gpointer
qmp_close_result (G_GNUC_UNUSED UvmConn *conn,
                  UvmRequest            *request,
                  gboolean               peer_gone,
                  G_GNUC_UNUSED gpointer owner)
{
  JsonNode *empty;

  if (!peer_gone || !g_str_equal (uvm_request_get_what (request), "quit"))
    return NULL;
  empty = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (empty, json_object_new ());
  return empty;
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

      klass = uvm_json_node_get_string (json_object_get_member (object, "class"));
      desc = uvm_json_node_get_string (json_object_get_member (object, "desc"));
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
      uvm_conn_fail (client->conn, error);
      return;
    }

  /* Every command still in line was issued before the handshake and held
   * back: they go now, in order. */
  client->handshake_done = TRUE;
  for (GList *l = uvm_conn_get_requests (client->conn)->head; l != NULL; l = l->next)
    uvm_conn_push (client->conn, l->data);
  complete_handshake (client, NULL);
}

/* The command in flight whose id is @id, or NULL. */
static UvmRequest *
find_command (UvmQmpClient *client, gint64 id)
{
  for (GList *l = uvm_conn_get_requests (client->conn)->head; l != NULL; l = l->next)
    if (id > 0 && uvm_request_get_id (l->data) == (guint64) id)
      return l->data;
  return NULL;
}

/* A reply goes to the command whose id it echoes; any other is dropped
 * (see the top). */
static void
handle_reply (UvmQmpClient *client, JsonObject *message)
{
  JsonNode *error_node = json_object_get_member (message, "error");
  JsonNode *id_node = json_object_get_member (message, "id");
  UvmRequest *p = NULL;
  gint64 id = 0;

  if (id_node == NULL)
    {
      /* qemu's answer to input it could not parse (which would be a bug of
       * ours), or a peer that does not echo ids: it cannot be told which
       * command it belongs to, so it belongs to none. */
      g_autoptr(GError) error = error_node ? reply_error ("a message", error_node) : NULL;

      g_debug ("QMP: dropping a reply without an id%s%s", error ? ": " : "",
               error ? error->message : "");
      return;
    }
  if (uvm_json_node_get_int (id_node, &id))
    p = find_command (client, id);
  /* Once any byte of a command is out, qemu may answer it as soon as it
   * has parsed the closing brace; before that, nobody can. */
  if (p == NULL || !uvm_request_on_wire (p))
    {
      g_debug ("QMP: dropping a reply with an id that is no command's in flight");
      return;
    }
  g_queue_remove (uvm_conn_get_requests (client->conn), p);

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
  const char *name = uvm_json_node_get_string (json_object_get_member (message, "event"));
  JsonNode *data = json_object_get_member (message, "data");
  JsonNode *timestamp = json_object_get_member (message, "timestamp");
  gint64 timestamp_us = 0;

  if (name == NULL)
    {
      g_debug ("QMP: dropping an event without a name");
      return;
    }
  if (timestamp != NULL && JSON_NODE_HOLDS_OBJECT (timestamp))
    {
      JsonObject *t = json_node_get_object (timestamp);
      gint64 seconds = 0, microseconds = 0;

      uvm_json_node_get_int (json_object_get_member (t, "seconds"), &seconds);
      uvm_json_node_get_int (json_object_get_member (t, "microseconds"), &microseconds);
      /* qemu sends seconds since the epoch and microseconds below 10^6;
       * anything else is no timestamp (0), never an overflow. */
      if (seconds >= 0 && seconds < G_MAXINT64 / G_USEC_PER_SEC - 1 &&
          microseconds >= 0 && microseconds < G_USEC_PER_SEC)
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
  /* No "enable": we need no capability, "oob" included. */
  guint64 id = client->next_id++;
  g_autoptr(GBytes) bytes = command_bytes_new ("qmp_capabilities", NULL, id);
  UvmRequest *p = uvm_request_new (NULL, uvm_stream_chunk_new (bytes, NULL, 0, NULL),
                                   "qmp_capabilities");

  uvm_request_set_id (p, id);
  client->capabilities = p;
  /* The first command in flight, ahead of any queued before the handshake
   * (none of which has been pushed to the stream).  Its deadline is the
   * handshake's. */
  g_queue_push_head (uvm_conn_get_requests (client->conn), p);
  uvm_conn_push (client->conn, p);
}

/* One complete top-level object of @len bytes.  FALSE if it does not
 * parse (the framer then resynchronizes); anything else is handled here. */
static gboolean
handle_message (UvmQmpClient *client, const char *text, gsize len)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonNode *root;
  JsonObject *message;

  g_debug ("QMP <- %.*s", (int) MIN (len, LOG_EXCERPT), text);
  if (!json_parser_load_from_data (parser, text, len, &error))
    {
      g_debug ("QMP: dropping a message that does not parse: %s", error->message);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) /* cannot be: it is {...} */
    return FALSE;
  message = json_node_get_object (root);

  if (client->greeting == NULL)
    {
      JsonNode *qmp = json_object_get_member (message, "QMP");

      /* Garbage before the greeting is dropped like any, but a first
       * message that is not the greeting means this is no QMP server we
       * can speak to (or not from its start). */
      if (qmp == NULL || !JSON_NODE_HOLDS_OBJECT (qmp))
        {
          uvm_conn_protocol_error (client->conn, "expected the QMP greeting, got another message");
          return TRUE;
        }
      client->greeting = json_object_ref (json_node_get_object (qmp));
      if (client->handshake_started)
        send_capabilities (client);
    }
  else if (json_object_has_member (message, "return") || json_object_has_member (message, "error"))
    handle_reply (client, message);
  else if (json_object_has_member (message, "event"))
    handle_event (client, message);
  else
    g_debug ("QMP: dropping a message that is neither a reply nor an event");
  return TRUE;
}

static void
drop_garbage (const guint8 *bytes, gsize len, const char *why)
{
  while (len > 0 && (bytes[len - 1] == '\n' || bytes[len - 1] == '\r'))
    len--;
  g_debug ("QMP: dropping %s: %.*s", why, (int) MIN (len, LOG_EXCERPT), (const char *) bytes);
}

static gboolean
is_space (guint8 c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Frames and handles everything in inbuf (see the top); the first
 * client->scanned bytes were scanned before. */
static void
process_input (UvmQmpClient *client)
{
  GByteArray *buf = client->inbuf;
  gsize unit = 0; /* where the unit being framed starts */
  gsize i;

  for (i = client->scanned; i < buf->len && !uvm_conn_is_closed (client->conn); i++)
    {
      guint8 c = buf->data[i];
      gboolean at_line_start = client->line_start;

      client->line_start = c == '\n';
      switch (client->frame)
        {
        case FRAME_IDLE:
          if (c == '{' && (!client->resyncing || at_line_start))
            {
              client->frame = FRAME_OBJECT;
              client->depth = 1;
              client->in_string = client->escaped = FALSE;
              client->resyncing = FALSE;
              unit = i;
            }
          else if (is_space (c))
            unit = i + 1;
          else
            {
              client->frame = FRAME_GARBAGE;
              unit = i;
            }
          break;

        case FRAME_GARBAGE:
          if (c == '\n')
            {
              drop_garbage (buf->data + unit, i - unit, "a line that is not a message");
              client->frame = FRAME_IDLE;
              unit = i + 1;
            }
          break;

        case FRAME_OBJECT:
          if (client->in_string)
            {
              if (c == '\n')
                {
                  drop_garbage (buf->data + unit, i - unit, "a line with an unterminated string");
                  client->frame = FRAME_IDLE;
                  unit = i + 1;
                }
              else if (client->escaped)
                client->escaped = FALSE;
              else if (c == '\\')
                client->escaped = TRUE;
              else if (c == '"')
                client->in_string = FALSE;
            }
          else if (c == '{' && at_line_start)
            {
              drop_garbage (buf->data + unit, i - unit, "an unfinished message");
              client->depth = 1;
              unit = i;
            }
          else if (c == '"')
            client->in_string = TRUE;
          else if (c == '{')
            client->depth++;
          else if (c == '}' && --client->depth == 0)
            {
              gsize len = i + 1 - unit;

              client->frame = FRAME_IDLE;
              if (len > client->max_message)
                break; /* reported below */
              if (!handle_message (client, (const char *) buf->data + unit, len))
                {
                  const guint8 *newline = memchr (buf->data + unit, '\n', len);

                  if (newline != NULL)
                    {
                      /* Again from the next line on: only a '{' at the
                       * start of a line can begin a message there. */
                      i = newline - buf->data;
                      client->line_start = TRUE;
                      client->resyncing = TRUE;
                    }
                }
              unit = i + 1;
            }
          break;

        default:
          g_assert_not_reached ();
        }

      /* unit <= i + 1 always: a finished unit moves it past i. */
      if (!uvm_conn_is_closed (client->conn) && i + 1 - unit > client->max_message)
        {
          uvm_conn_protocol_error (client->conn, "QMP message of more than %" G_GSIZE_FORMAT " bytes",
                          client->max_message);
        }
    }

  if (uvm_conn_is_closed (client->conn))
    {
      g_byte_array_set_size (buf, 0);
      client->scanned = 0;
      return;
    }
  g_byte_array_remove_range (buf, 0, unit);
  client->scanned = i - unit;
}

/* Keeps the buffer within max_message + 1 bytes: a message that never ends
 * must fail one read past the limit, not grow the buffer. */
static void
update_read_budget (UvmQmpClient *client)
{
  gsize len = client->inbuf->len;

  uvm_conn_set_read_budget (client->conn,
                              len < client->max_message + 1 ? client->max_message + 1 - len : 1);
}

static void
qmp_data (G_GNUC_UNUSED UvmConn *conn, const guint8 *bytes, gsize len, gpointer owner)
{
  UvmQmpClient *client = owner;

  /* The connection holds a reference meanwhile. */
  g_byte_array_append (client->inbuf, bytes, len);
  process_input (client);
  if (!uvm_conn_is_closed (client->conn))
    update_read_budget (client);
}

static void
qmp_eof (G_GNUC_UNUSED UvmConn *conn, gpointer owner)
{
  UvmQmpClient *client = owner;

  if (client->inbuf->len > 0)
    g_debug ("QMP: discarding %u bytes of an incomplete message at EOF", client->inbuf->len);
  g_byte_array_set_size (client->inbuf, 0);
}

static void
qmp_call_closed (GCallback func, gpointer owner, const GError *error, gpointer data)
{
  ((UvmQmpClosedFunc) func) (owner, error, data);
}

static void
qmp_finalize (gpointer owner)
{
  UvmQmpClient *client = owner;

  if (client->event_notify != NULL)
    client->event_notify (client->event_data);
  g_clear_pointer (&client->greeting, json_object_unref);
  g_byte_array_unref (client->inbuf);
  g_free (client);
}

static const UvmConnClass qmp_class = {
  .log_prefix = "QMP",
  .peer_name = "QMP connection",
  .client_name = "QMP client",
  .stream_label = "the QMP socket",
  .closed_handler_on_local_close = TRUE,
  /* A late reply is known by its id and dropped. */
  .forget_expired_placeholders = TRUE,
  .result_free = (GDestroyNotify) json_node_unref,
  .data = qmp_data,
  .eof = qmp_eof,
  .closing = qmp_closing,
  .close_result = qmp_close_result,
  .call_closed = qmp_call_closed,
  .finalize = qmp_finalize,
};

/* ---- public API ------------------------------------------------------- */

UvmQmpClient *
uvm_qmp_client_new (int fd)
{
  UvmQmpClient *client;

  g_return_val_if_fail (fd >= 0, NULL);

  client = g_new0 (UvmQmpClient, 1);
  client->inbuf = g_byte_array_new ();
  client->line_start = TRUE;
  client->max_message = UVM_QMP_DEFAULT_MAX_MESSAGE;
  client->next_id = 1;
  client->conn = uvm_conn_new (fd, &qmp_class, client);
  update_read_budget (client);

  return client;
}

/* The last reference ends the connection, then frees the client (the
 * class's finalize). */
UVM_CONN_DEFINE_REF_UNREF (UvmQmpClient, uvm_qmp_client)

void
uvm_qmp_client_set_max_message (UvmQmpClient *client, gsize max_bytes)
{
  g_return_if_fail (client != NULL);
  g_return_if_fail (max_bytes > 0);

  /* GByteArray lengths are guint; keep max + slack representable. */
  client->max_message = MIN (max_bytes, G_MAXUINT / 2);
  update_read_budget (client);
}

void
uvm_qmp_client_set_request_timeout (UvmQmpClient *client, guint timeout_ms)
{
  g_return_if_fail (client != NULL);

  uvm_conn_set_request_timeout (client->conn, timeout_ms);
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
  g_return_if_fail (client != NULL);

  uvm_conn_set_closed_handler (client->conn, G_CALLBACK (func), user_data, notify);
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

static gboolean
on_handshake_deadline (gpointer user_data)
{
  UvmQmpClient *client = user_data;
  g_autoptr(GError) error = NULL;

  error = uvm_deadline_error_new ("QMP handshake",
                                  client->greeting == NULL ? "greeting" : "reply to qmp_capabilities",
                                  client->handshake_timeout_ms);
  g_debug ("QMP: %s", error->message);
  /* A peer that does not greet or answer is of no use: the caller learns
   * why first, then the connection ends with the same error.
   * complete_handshake() destroys this source (GLib keeps it alive until
   * we return). */
  uvm_qmp_client_ref (client);
  complete_handshake (client, g_error_copy (error));
  uvm_conn_fail (client->conn, error);
  uvm_qmp_client_unref (client);
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
  if (uvm_conn_is_closed (client->conn))
    {
      g_task_return_error (task, uvm_conn_close_error (client->conn, "QMP handshake"));
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
  if (uvm_conn_get_request_timeout (client->conn) > 0)
    {
      client->handshake_timeout_ms = uvm_conn_get_request_timeout (client->conn);
      client->handshake_deadline_source =
        uvm_deadline_source_new (client->handshake_timeout_ms, uvm_conn_get_context (client->conn),
                                 "[uvm] QMP handshake deadline",
                                 on_handshake_deadline, client);
    }

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
  g_autoptr(GBytes) bytes = NULL;
  GTask *task;
  UvmRequest *p;

  g_return_if_fail (client != NULL);
  g_return_if_fail (command != NULL);
  g_return_if_fail (arguments == NULL || JSON_NODE_HOLDS_OBJECT (arguments));
  g_return_if_fail (fds != NULL || n_fds == 0);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_qmp_client_execute_async);

  bytes = command_bytes_new (command, arguments, client->next_id);
  p = uvm_conn_issue (client->conn, task, command, bytes, fds, n_fds);
  if (p == NULL)
    return; /* failed at once: cancelled, closed, or fds it cannot carry */
  uvm_request_set_id (p, client->next_id++);

  /* Held back until the handshake; then straight to the socket when
   * nothing is queued ahead.  This calls nobody back: a write error is
   * reported from an idle source, and the task completes from the main
   * loop at the earliest. */
  if (client->handshake_done)
    uvm_conn_push (client->conn, p);
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

  uvm_conn_close (client->conn);
}

void
uvm_qmp_client_read_pending (UvmQmpClient *client)
{
  g_return_if_fail (client != NULL);

  uvm_conn_read_pending (client->conn);
}

gboolean
uvm_qmp_client_is_closed (UvmQmpClient *client)
{
  g_return_val_if_fail (client != NULL, TRUE);

  return uvm_conn_is_closed (client->conn);
}
