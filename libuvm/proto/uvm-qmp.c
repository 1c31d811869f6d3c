/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client.  See uvm-qmp.h for the contract.
 *
 * The socket is a UvmStream (uvm-stream.h), which reads and writes it on
 * one GMainContext; the pending commands are UvmRequests (uvm-request.h),
 * which also handle cancelling and deadlines; this file is the framing and
 * the matching of replies.
 *
 * Matching.  Every command, qmp_capabilities included, carries an "id"
 * (a counter, never reused) and sits in client->commands until its reply
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
 * reference, takes its own entries out of shared structures first, and
 * checks client->closed afterwards. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-qmp.h"
#include "proto/uvm-request.h"
#include "proto/uvm-stream.h"

#include "util/uvm-util.h"

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

typedef enum {
  FRAME_IDLE,    /* between messages: white space is skipped */
  FRAME_OBJECT,  /* inside a top-level object */
  FRAME_GARBAGE, /* dropping a line that is not a message */
} FrameState;

struct _UvmQmpClient {
  grefcount     ref_count;
  GMainContext *context;
  UvmStream    *stream; /* NULL once closed */
  gboolean      closed;
  CloseKind     close_kind;
  GError       *close_error; /* for CLOSE_ERROR, reported to late callers */

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

  /* Of UvmRequest (uvm-request.h), unanswered, in send order; each
   * request's "what" is the command name and its id the "id" it carries. */
  GQueue      commands;
  guint64     next_id;
  guint       timeout_ms; /* for each request, 0 for none */
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
  UvmQmpClosedFunc closed_func;
  gpointer         closed_data;
  GDestroyNotify   closed_notify;
};

static void client_shutdown (UvmQmpClient *client, CloseKind kind, const GError *error);

/* ---- small helpers ---------------------------------------------------- */

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

/* ---- output ----------------------------------------------------------- */

/* Serializes a command: {"execute":"name","id":N} or
 * {"execute":"name","arguments":{...},"id":N}, no spaces (json-glib's
 * compact output has none: qemu 7.2 reads the monitor a byte at a time, so
 * every byte costs a few µs), with copies of @fds to go with its first
 * byte. */
static UvmStreamChunk *
command_chunk_new (const char  *command,
                   JsonNode    *arguments,
                   guint64      id,
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
  json_object_set_int_member (object, "id", (gint64) id);
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

/* The command in flight whose id is @id, or NULL. */
static UvmRequest *
find_command (UvmQmpClient *client, gint64 id)
{
  for (GList *l = client->commands.head; l != NULL; l = l->next)
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
  g_queue_remove (&client->commands, p);

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
  UvmRequest *p = uvm_request_new (NULL, command_chunk_new ("qmp_capabilities", NULL, id, NULL, 0, NULL),
                                   "qmp_capabilities");

  uvm_request_set_id (p, id);
  client->capabilities = p;
  /* The first command in flight, ahead of any queued before the handshake
   * (none of which has been pushed to the stream).  Its deadline is the
   * handshake's. */
  g_queue_push_head (&client->commands, p);
  uvm_stream_push (client->stream, uvm_request_get_chunk (p));
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
          protocol_error (client, "expected the QMP greeting, got another message");
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

  for (i = client->scanned; i < buf->len && !client->closed; i++)
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
      if (!client->closed && i + 1 - unit > client->max_message)
        {
          protocol_error (client, "QMP message of more than %" G_GSIZE_FORMAT " bytes",
                          client->max_message);
        }
    }

  if (client->closed)
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

  uvm_stream_set_read_budget (client->stream,
                              len < client->max_message + 1 ? client->max_message + 1 - len : 1);
}

static void
on_data (G_GNUC_UNUSED UvmStream *stream,
         const guint8            *bytes,
         gsize                    len,
         gpointer                 user_data)
{
  UvmQmpClient *client = user_data;

  uvm_qmp_client_ref (client);
  g_byte_array_append (client->inbuf, bytes, len);
  process_input (client);
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
  client->line_start = TRUE;
  client->max_message = UVM_QMP_DEFAULT_MAX_MESSAGE;
  client->next_id = 1;
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
uvm_qmp_client_set_request_timeout (UvmQmpClient *client, guint timeout_ms)
{
  g_return_if_fail (client != NULL);

  client->timeout_ms = timeout_ms;
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
  client_shutdown (client, CLOSE_ERROR, error);
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
  if (client->timeout_ms > 0)
    {
      client->handshake_timeout_ms = client->timeout_ms;
      client->handshake_deadline_source =
        uvm_deadline_source_new (client->timeout_ms, client->context, "[uvm] QMP handshake deadline",
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

/* A command's deadline passed (see uvm-request.h). */
static void
on_command_expired (UvmRequest *request, GError *error, gpointer user_data)
{
  UvmQmpClient *client = user_data;
  g_autoptr(GError) shutdown_error = NULL;

  g_queue_remove (&client->commands, request);
  if (!uvm_request_has_task (request))
    {
      /* Cancelled, and nobody waits: its reply, should it still come, is
       * dropped as one of an unknown id. */
      g_debug ("QMP: forgetting %s, cancelled and never answered", uvm_request_get_what (request));
      uvm_request_free (request);
      g_error_free (error);
      return;
    }

  /* qemu answers every command; one that does not is hung or out of step
   * with us, and the connection is of no further use.  The command fails
   * first, with its own error, and sends nothing more meanwhile. */
  g_debug ("QMP: %s", error->message);
  shutdown_error = g_error_copy (error);
  uvm_qmp_client_ref (client);
  uvm_stream_stop_writing (client->stream);
  uvm_request_complete (request, NULL, (GDestroyNotify) json_node_unref, error);
  client_shutdown (client, CLOSE_ERROR, shutdown_error);
  uvm_qmp_client_unref (client);
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
  chunk = command_chunk_new (command, arguments, client->next_id, fds, n_fds, &error);
  if (chunk == NULL)
    {
      g_prefix_error (&error, "%s: ", command);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  p = uvm_request_new (g_steal_pointer (&task), chunk, command);
  uvm_request_set_id (p, client->next_id++);
  uvm_request_attach_cancellable (p, cancellable, client->context, &client->commands,
                                  "[uvm] QMP cancel", "QMP", NULL, NULL);
  uvm_request_set_deadline (p, client->timeout_ms, client->context, "[uvm] QMP deadline",
                            on_command_expired, client);
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
