/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client.  See uvm-qmp.h for the contract.
 *
 * Everything happens on one GMainContext: a GSource reads the socket, a
 * second one (present only while there is something to send) writes it.
 * Input is framed on '\n'; output is a queue of serialized commands.
 * Commands are kept in a table keyed by their integer id until their reply,
 * their cancellation or the end of the connection.
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

#include <uvm/uvm-error.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib-unix.h>

/* Most bytes asked of the kernel per read. */
#define READ_CHUNK 65536
/* The kernel refuses more fds than this in one SCM_RIGHTS message
 * (SCM_MAX_FD). */
#define MAX_FDS 253
/* Longest excerpt of a message that goes into a debug line. */
#define LOG_EXCERPT 512

typedef enum {
  CLOSE_EOF,      /* the peer hung up */
  CLOSE_LOCAL,    /* uvm_qmp_client_close() */
  CLOSE_FINALIZE, /* the last reference went away */
  CLOSE_ERROR,    /* protocol, read or write error, or refused handshake */
} CloseKind;

/* One serialized command waiting to be written. */
typedef struct {
  char  *data;
  gsize  len;
  gsize  offset; /* bytes already written */
  int   *fds;    /* our duplicates; closed as soon as the kernel has them */
  guint  n_fds;
  gint64 id;
} OutChunk;

/* One command waiting for its reply. */
typedef struct {
  gint64        id; /* the key in client->pending */
  char         *command;
  GTask        *task;
  GSource      *cancel_source;
  UvmQmpClient *client; /* not a reference: we never outlive the client */
} Pending;

struct _UvmQmpClient {
  grefcount     ref_count;
  GMainContext *context;
  int           fd; /* -1 once closed */
  gboolean      closed;
  CloseKind     close_kind;
  GError       *close_error; /* for CLOSE_ERROR, reported to late callers */

  GSource    *in_source;
  GSource    *out_source; /* only while something may be written */
  GByteArray *inbuf;      /* holds at most one incomplete line between reads */
  gsize       max_message;

  GQueue      outq;    /* of OutChunk */
  GHashTable *pending; /* &Pending.id -> Pending */
  gint64      next_id;

  JsonObject *greeting;
  gboolean    handshake_started;
  gboolean    handshake_done;
  gint64      caps_id; /* id of qmp_capabilities while in flight, else 0 */
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

static void
close_fds (int *fds, guint n_fds)
{
  for (guint i = 0; i < n_fds; i++)
    if (fds[i] >= 0)
      close (fds[i]);
}

static void
out_chunk_free (gpointer data)
{
  OutChunk *chunk = data;

  close_fds (chunk->fds, chunk->n_fds);
  g_free (chunk->fds);
  g_free (chunk->data);
  g_free (chunk);
}

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

static gboolean
may_send (UvmQmpClient *client, OutChunk *chunk)
{
  /* Until the handshake is done only qmp_capabilities may go out; the rest
   * stays queued behind it. */
  return client->handshake_done || chunk->id == client->caps_id;
}

static gboolean on_writable (int fd, GIOCondition condition, gpointer user_data);

/* Keeps a G_IO_OUT watch exactly while something can be written, so the
 * main loop does not spin on an always-writable socket. */
static void
update_out_source (UvmQmpClient *client)
{
  OutChunk *head = g_queue_peek_head (&client->outq);
  gboolean want = !client->closed && head != NULL && may_send (client, head);

  if (want && client->out_source == NULL)
    {
      client->out_source = g_unix_fd_source_new (client->fd, G_IO_OUT);
      g_source_set_callback (client->out_source, G_SOURCE_FUNC (on_writable), client, NULL);
      g_source_set_static_name (client->out_source, "[uvm] QMP write");
      g_source_attach (client->out_source, client->context);
    }
  else if (!want)
    destroy_source (&client->out_source);
}

static ssize_t
send_chunk (int fd, OutChunk *chunk)
{
  struct iovec iov = {
    .iov_base = chunk->data + chunk->offset,
    .iov_len = chunk->len - chunk->offset,
  };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  g_autofree char *control = NULL;
  ssize_t n;

  if (chunk->n_fds > 0)
    {
      gsize size = CMSG_SPACE (chunk->n_fds * sizeof (int));
      struct cmsghdr *cmsg;

      control = g_malloc0 (size);
      msg.msg_control = control;
      msg.msg_controllen = size;
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (chunk->n_fds * sizeof (int));
      memcpy (CMSG_DATA (cmsg), chunk->fds, chunk->n_fds * sizeof (int));
    }

  do
    n = sendmsg (fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n;
}

static gboolean
on_writable (G_GNUC_UNUSED int          fd,
             G_GNUC_UNUSED GIOCondition condition,
             gpointer                   user_data)
{
  UvmQmpClient *client = user_data;
  OutChunk *chunk;

  while ((chunk = g_queue_peek_head (&client->outq)) != NULL && may_send (client, chunk))
    {
      ssize_t n;

      if (chunk->offset == 0)
        g_debug ("QMP -> %.*s", (int) MIN (chunk->len - 1, LOG_EXCERPT), chunk->data);
      n = send_chunk (client->fd, chunk);

      if (n < 0)
        {
          int saved_errno = errno;
          g_autoptr(GError) error = NULL;

          if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)
            return G_SOURCE_CONTINUE;

          /* EPIPE and friends: the peer is gone, as with EOF. */
          error = g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                               "writing to the QMP socket: %s", g_strerror (saved_errno));
          g_debug ("%s", error->message);
          client_shutdown (client, CLOSE_ERROR, error);
          return G_SOURCE_REMOVE;
        }

      /* The fds travel with the first byte; the kernel holds its own
       * references now. */
      if (n > 0 && chunk->n_fds > 0)
        {
          close_fds (chunk->fds, chunk->n_fds);
          g_clear_pointer (&chunk->fds, g_free);
          chunk->n_fds = 0;
        }

      chunk->offset += n;
      if (chunk->offset == chunk->len)
        out_chunk_free (g_queue_pop_head (&client->outq));
    }

  update_out_source (client);
  return G_SOURCE_CONTINUE;
}

/* Serializes a command.  Takes @fds (already our duplicates). */
static OutChunk *
out_chunk_new (gint64      id,
               const char *command,
               JsonNode   *arguments,
               int        *fds,
               guint       n_fds)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *text = NULL;
  OutChunk *chunk = g_new0 (OutChunk, 1);

  json_object_set_string_member (object, "execute", command);
  if (arguments != NULL)
    json_object_set_member (object, "arguments", json_node_copy (arguments));
  json_object_set_int_member (object, "id", id);
  node = json_node_init_object (json_node_alloc (), object);
  text = json_to_string (node, FALSE);

  chunk->data = g_strconcat (text, "\n", NULL);
  chunk->len = strlen (chunk->data);
  chunk->fds = fds;
  chunk->n_fds = n_fds;
  chunk->id = id;
  return chunk;
}

/* A cancelled command that has not been started on the wire need not go
 * out at all; once partly written it must be finished to keep framing. */
static void
drop_unsent_chunk (UvmQmpClient *client, gint64 id)
{
  for (GList *l = client->outq.head; l != NULL; l = l->next)
    {
      OutChunk *chunk = l->data;

      if (chunk->id == id)
        {
          if (chunk->offset == 0)
            {
              out_chunk_free (chunk);
              g_queue_delete_link (&client->outq, l);
              update_out_source (client);
            }
          return;
        }
    }
}

/* ---- completing requests ---------------------------------------------- */

/* Frees @p (already removed from the table) and completes its task with
 * @result (transfer full) or @error (transfer full). */
static void
pending_complete (Pending *p, JsonNode *result, GError *error)
{
  GTask *task = g_steal_pointer (&p->task);

  destroy_source (&p->cancel_source);
  g_free (p->command);
  g_free (p);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, result, (GDestroyNotify) json_node_unref);
  g_object_unref (task);
}

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

static gint
compare_pending_id (gconstpointer a, gconstpointer b)
{
  const Pending *pa = *(const Pending * const *) a;
  const Pending *pb = *(const Pending * const *) b;

  return (pa->id > pb->id) - (pa->id < pb->id);
}

/* Ends the connection once; see CloseKind.  @error only for CLOSE_ERROR. */
static void
client_shutdown (UvmQmpClient *client, CloseKind kind, const GError *error)
{
  g_autoptr(GPtrArray) pending = NULL;
  GHashTableIter iter;
  gpointer value;
  gboolean quit_succeeds;

  if (client->closed)
    return;

  /* While finalizing the count is already zero and nobody may call back in. */
  if (kind != CLOSE_FINALIZE)
    uvm_qmp_client_ref (client);

  client->closed = TRUE;
  client->close_kind = kind;
  if (error != NULL)
    client->close_error = g_error_copy (error);

  destroy_source (&client->in_source);
  destroy_source (&client->out_source);
  if (client->fd >= 0)
    close (client->fd);
  client->fd = -1;
  g_queue_clear_full (&client->outq, out_chunk_free);

  /* qemu may exit before flushing the reply to "quit", so losing the peer
   * is that command's success. */
  quit_succeeds = kind == CLOSE_EOF ||
                  (kind == CLOSE_ERROR &&
                   g_error_matches (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED));

  /* Take everything out before calling out: callbacks may run synchronously
   * and must find the client in a consistent, closed state. */
  pending = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, client->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      g_ptr_array_add (pending, value);
      g_hash_table_iter_steal (&iter);
    }
  g_ptr_array_sort (pending, compare_pending_id);

  if (client->handshake_task != NULL)
    complete_handshake (client, close_error_for (kind, error, "QMP handshake"));

  for (guint i = 0; i < pending->len; i++)
    {
      Pending *p = pending->pdata[i];

      if (quit_succeeds && g_str_equal (p->command, "quit"))
        {
          JsonNode *empty = json_node_new (JSON_NODE_OBJECT);

          json_node_take_object (empty, json_object_new ());
          pending_complete (p, empty, NULL);
        }
      else
        pending_complete (p, NULL, close_error_for (kind, error, p->command));
    }

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

  client->caps_id = 0;
  if (error_node != NULL)
    {
      /* Without capabilities negotiated qemu accepts no other command, so the
       * connection is of no further use. */
      g_autoptr(GError) error = reply_error ("qmp_capabilities", error_node);

      complete_handshake (client, g_error_copy (error));
      client_shutdown (client, CLOSE_ERROR, error);
      return;
    }

  client->handshake_done = TRUE;
  update_out_source (client);
  complete_handshake (client, NULL);
}

static void
handle_reply (UvmQmpClient *client, JsonObject *message)
{
  JsonNode *error_node = json_object_get_member (message, "error");
  gint64 id;
  Pending *p;

  if (!node_get_int (json_object_get_member (message, "id"), &id))
    {
      g_debug ("QMP: ignoring a reply without an integer id");
      return;
    }
  if (client->caps_id != 0 && id == client->caps_id)
    {
      handle_capabilities_reply (client, message);
      return;
    }
  p = g_hash_table_lookup (client->pending, &id);
  if (p == NULL)
    {
      /* Typically the late reply of a cancelled command. */
      g_debug ("QMP: ignoring a reply with unknown id %" G_GINT64_FORMAT, id);
      return;
    }
  g_hash_table_remove (client->pending, &id);

  if (error_node != NULL)
    pending_complete (p, NULL, reply_error (p->command, error_node));
  else
    pending_complete (p, json_node_copy (json_object_get_member (message, "return")), NULL);
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
  client->caps_id = client->next_id++;
  /* Ahead of any command queued before the handshake. */
  g_queue_push_head (&client->outq, out_chunk_new (client->caps_id, "qmp_capabilities", NULL, NULL, 0));
  update_out_source (client);
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

static gboolean
on_readable (G_GNUC_UNUSED int          fd,
             G_GNUC_UNUSED GIOCondition condition,
             gpointer                   user_data)
{
  UvmQmpClient *client = user_data;
  GByteArray *buf = client->inbuf;
  gsize old_len = buf->len;
  gsize room;
  ssize_t n;
  int saved_errno;

  /* Never read much past the limit: an endless line must fail, not grow
   * the buffer. */
  if (old_len < client->max_message + 2)
    room = MIN (READ_CHUNK, client->max_message + 2 - old_len);
  else
    room = 1;

  g_byte_array_set_size (buf, old_len + room);
  do
    n = read (client->fd, buf->data + old_len, room);
  while (n < 0 && errno == EINTR);
  saved_errno = errno;
  g_byte_array_set_size (buf, old_len + MAX (n, 0));

  if (n < 0 && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
    return G_SOURCE_CONTINUE;

  uvm_qmp_client_ref (client);
  if (n < 0)
    {
      g_autoptr(GError) error = g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                                             "reading from the QMP socket: %s",
                                             g_strerror (saved_errno));
      g_debug ("%s", error->message);
      client_shutdown (client, CLOSE_ERROR, error);
    }
  else if (n == 0)
    {
      if (old_len > 0)
        g_debug ("QMP: discarding %" G_GSIZE_FORMAT " bytes of an incomplete message at EOF", old_len);
      g_byte_array_set_size (buf, 0);
      client_shutdown (client, CLOSE_EOF, NULL);
    }
  else
    process_input (client, old_len);
  uvm_qmp_client_unref (client);

  return G_SOURCE_CONTINUE;
}

/* ---- public API ------------------------------------------------------- */

UvmQmpClient *
uvm_qmp_client_new (int fd)
{
  UvmQmpClient *client;
  int flags;

  g_return_val_if_fail (fd >= 0, NULL);

  flags = fcntl (fd, F_GETFD);
  if (flags >= 0)
    fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);

  client = g_new0 (UvmQmpClient, 1);
  g_ref_count_init (&client->ref_count);
  client->context = g_main_context_ref_thread_default ();
  client->fd = fd;
  client->inbuf = g_byte_array_new ();
  client->max_message = UVM_QMP_DEFAULT_MAX_MESSAGE;
  g_queue_init (&client->outq);
  client->pending = g_hash_table_new (g_int64_hash, g_int64_equal);
  client->next_id = 1;

  client->in_source = g_unix_fd_source_new (fd, G_IO_IN);
  g_source_set_callback (client->in_source, G_SOURCE_FUNC (on_readable), client, NULL);
  g_source_set_static_name (client->in_source, "[uvm] QMP read");
  g_source_attach (client->in_source, client->context);

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
  g_hash_table_unref (client->pending);
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

static gboolean
on_command_cancelled (G_GNUC_UNUSED GCancellable *cancellable, gpointer user_data)
{
  Pending *p = user_data;
  UvmQmpClient *client = p->client;

  /* Out of the table: a late reply is then just an unknown id. */
  g_hash_table_remove (client->pending, &p->id);
  drop_unsent_chunk (client, p->id);
  pending_complete (p, NULL, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                          "%s: cancelled", p->command));
  return G_SOURCE_REMOVE;
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
  g_autofree int *dups = NULL;
  Pending *p;

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
  if (n_fds > MAX_FDS)
    {
      g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_FAILED,
                               "%s: too many file descriptors (%u)", command, n_fds);
      return;
    }

  /* Our own copies, so the caller may close theirs at once. */
  if (n_fds > 0)
    {
      dups = g_new (int, n_fds);
      for (guint i = 0; i < n_fds; i++)
        {
          dups[i] = fcntl (fds[i], F_DUPFD_CLOEXEC, 3);
          if (dups[i] < 0)
            {
              int saved_errno = errno;

              close_fds (dups, i);
              g_task_return_new_error (task, UVM_ERROR, UVM_ERROR_FAILED,
                                       "%s: duplicating fd %d: %s", command, fds[i],
                                       g_strerror (saved_errno));
              return;
            }
        }
    }

  p = g_new0 (Pending, 1);
  p->id = client->next_id++;
  p->command = g_strdup (command);
  p->task = g_steal_pointer (&task);
  p->client = client;
  if (cancellable != NULL)
    p->cancel_source = attach_cancel_source (client, cancellable,
                                             G_SOURCE_FUNC (on_command_cancelled), p);
  g_hash_table_insert (client->pending, &p->id, p);

  /* Written from the main loop, never from here, so a write error cannot
   * call the closed handler back inside this call. */
  g_queue_push_tail (&client->outq,
                     out_chunk_new (p->id, command, arguments, g_steal_pointer (&dups), n_fds));
  update_out_source (client);
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

gboolean
uvm_qmp_client_is_closed (UvmQmpClient *client)
{
  g_return_val_if_fail (client != NULL, TRUE);

  return client->closed;
}
