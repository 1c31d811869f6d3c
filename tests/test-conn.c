/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the connection layer under the QMP and HTTP clients
 * (libuvm/proto/uvm-conn.h), through a trivial protocol: a request is a
 * line of text, a reply is a line, replies are matched to requests in
 * order.  What the layer owns is tested here once: how a connection ends
 * and the errors that gives, cancelling, deadlines, fds, lifetimes and
 * reentrancy.  test-qmp.c and test-http.c keep their protocols' framing
 * and matching.
 *
 * The line owner comes in two classes, as the two clients differ:
 * "fifo" writes one request at a time (the next when the one ahead is
 * answered or dropped, as HTTP/1.1), runs no closed handler on a local
 * close and ends the connection when a cancelled request's deadline
 * passes; "pipelined" writes each request at once (as QMP), runs the
 * closed handler on a local close, forgets a cancelled request whose
 * deadline passes, and counts "quit" as answered when the peer leaves. */

#include "proto/uvm-conn.h"

#include <uvm/uvm-error.h>

#include "uvm-peer-util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the line owner ----------------------------------------------------- */

typedef struct _Line Line;

struct _Line {
  UvmConn  *conn;
  GString  *inbuf;
  gboolean  pipelined;
};

typedef void (*LineClosedFunc) (Line *line, const GError *error, gpointer user_data);

UVM_CONN_DEFINE_REF_UNREF (Line, line)

static void
line_push_head (Line *line)
{
  UvmRequest *head = g_queue_peek_head (uvm_conn_get_requests (line->conn));

  if (head != NULL)
    uvm_conn_push (line->conn, head);
}

static void
line_data (UvmConn *conn, const guint8 *bytes, gsize len, gpointer owner)
{
  Line *line = owner;
  char *newline;

  g_string_append_len (line->inbuf, (const char *) bytes, len);
  while (!uvm_conn_is_closed (conn) && (newline = strchr (line->inbuf->str, '\n')) != NULL)
    {
      g_autofree char *reply = g_strndup (line->inbuf->str, newline - line->inbuf->str);
      UvmRequest *head = g_queue_peek_head (uvm_conn_get_requests (conn));

      g_string_erase (line->inbuf, 0, newline - line->inbuf->str + 1);
      if (head == NULL || !uvm_request_on_wire (head))
        {
          uvm_conn_protocol_error (conn, "a reply with no request in flight");
          return;
        }
      g_queue_pop_head (uvm_conn_get_requests (conn));
      if (!line->pipelined)
        line_push_head (line);
      uvm_request_complete (head, g_steal_pointer (&reply), g_free, NULL);
    }
}

/* A last line without its newline is a reply that ran to EOF (as an HTTP
 * body without Content-Length). */
static void
line_eof (UvmConn *conn, gpointer owner)
{
  Line *line = owner;

  if (line->inbuf->len > 0)
    {
      g_string_append_c (line->inbuf, '\n');
      line_data (conn, (const guint8 *) "", 0, owner);
    }
}

static void
line_closing (G_GNUC_UNUSED UvmConn *conn, gpointer owner)
{
  Line *line = owner;

  g_string_truncate (line->inbuf, 0);
}

static gpointer
line_close_result (G_GNUC_UNUSED UvmConn *conn,
                   UvmRequest            *request,
                   gboolean               peer_gone,
                   G_GNUC_UNUSED gpointer owner)
{
  return peer_gone && g_str_equal (uvm_request_get_what (request), "quit") ? g_strdup ("bye") : NULL;
}

static void
line_dropped (G_GNUC_UNUSED UvmConn *conn, gboolean was_head, gpointer owner)
{
  if (was_head)
    line_push_head (owner);
}

static void
line_call_closed (GCallback func, gpointer owner, const GError *error, gpointer data)
{
  ((LineClosedFunc) func) (owner, error, data);
}

/* How many Line objects were finalized. */
static guint lines_finalized;

static void
line_finalize (gpointer owner)
{
  Line *line = owner;

  g_string_free (line->inbuf, TRUE);
  g_free (line);
  lines_finalized++;
}

static const UvmConnClass fifo_class = {
  .log_prefix = "LINE",
  .peer_name = "line connection",
  .client_name = "line client",
  .stream_label = "the line socket",
  .closed_handler_on_local_close = FALSE,
  .forget_expired_placeholders = FALSE,
  .result_free = g_free,
  .data = line_data,
  .eof = line_eof,
  .closing = line_closing,
  .dropped = line_dropped,
  .call_closed = line_call_closed,
  .finalize = line_finalize,
};

static const UvmConnClass pipelined_class = {
  .log_prefix = "LINE",
  .peer_name = "line connection",
  .client_name = "line client",
  .stream_label = "the line socket",
  .closed_handler_on_local_close = TRUE,
  .forget_expired_placeholders = TRUE,
  .result_free = g_free,
  .data = line_data,
  .eof = line_eof,
  .closing = line_closing,
  .close_result = line_close_result,
  .call_closed = line_call_closed,
  .finalize = line_finalize,
};

static Line *
line_new (Peer *peer, const UvmConnClass *klass)
{
  Line *line = g_new0 (Line, 1);

  line->inbuf = g_string_new (NULL);
  line->pipelined = klass == &pipelined_class;
  line->conn = uvm_conn_new (peer_open (peer), klass, line);
  return line;
}

/* ---- recording what the layer reports ------------------------------------ */

static guint sequence;

typedef struct {
  gboolean done;
  char    *reply;
  GError  *error;
  guint    seq;
} Result;

static void
result_clear (Result *r)
{
  g_clear_pointer (&r->reply, g_free);
  g_clear_error (&r->error);
}

static void
on_done (G_GNUC_UNUSED GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *r = user_data;

  g_assert_false (r->done);
  r->reply = g_task_propagate_pointer (G_TASK (res), &r->error);
  g_assert_true ((r->reply == NULL) != (r->error == NULL));
  r->done = TRUE;
  r->seq = ++sequence;
}

/* Sends the line @text (named @text too, unless @what says otherwise). */
static void
issue_with (Line                *line,
            const char          *what,
            const char          *text,
            const int           *fds,
            guint                n_fds,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            Result              *r)
{
  g_autofree char *with_newline = g_strconcat (text, "\n", NULL);
  g_autoptr(GBytes) bytes = g_bytes_new (with_newline, strlen (with_newline));
  GTask *task = g_task_new (NULL, cancellable, callback, r);
  UvmRequest *request;

  request = uvm_conn_issue (line->conn, task, what != NULL ? what : text, bytes, fds, n_fds);
  if (request == NULL)
    return;
  if (line->pipelined || g_queue_peek_head (uvm_conn_get_requests (line->conn)) == request)
    uvm_conn_push (line->conn, request);
}

static void
issue_full (Line *line, const char *text, const int *fds, guint n_fds, GCancellable *cancellable,
            Result *r)
{
  memset (r, 0, sizeof *r);
  issue_with (line, NULL, text, fds, n_fds, cancellable, on_done, r);
}

static void
issue (Line *line, const char *text, Result *r)
{
  issue_full (line, text, NULL, 0, NULL, r);
}

typedef struct {
  guint   count;
  GError *error;
} Closed;

static void
on_closed (G_GNUC_UNUSED Line *line, const GError *error, gpointer user_data)
{
  Closed *c = user_data;

  c->count++;
  g_clear_error (&c->error);
  if (error != NULL)
    c->error = g_error_copy (error);
}

static void
set_closed_handler (Line *line, LineClosedFunc func, gpointer data)
{
  uvm_conn_set_closed_handler (line->conn, G_CALLBACK (func), data, NULL);
}

/* ---- the scripted peer's side ------------------------------------------ */

static gboolean
peer_poll (Peer *peer)
{
  peer_receive (peer);
  return strchr (peer->in->str, '\n') != NULL;
}

static void
peer_expect_line (Peer *peer, const char *expected)
{
  char *newline;

  WAIT_UNTIL (peer_poll (peer));
  newline = strchr (peer->in->str, '\n');
  *newline = '\0';
  g_assert_cmpstr (peer->in->str, ==, expected);
  peer->consumed += newline - peer->in->str + 1;
  g_string_erase (peer->in, 0, newline - peer->in->str + 1);
}

/* GLib opens fds of its own on first use (the main context's wakeup,
 * GTask's helper thread); let that happen before counting fds, so that a
 * test also holds when run alone (-p). */
static void
warm_up_glib (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  Result r;

  issue (line, "ping", &r);
  line_unref (line);
  WAIT_UNTIL (r.done);
  result_clear (&r);
  peer_clear (&peer);
}

/* ---- requests and replies ------------------------------------------------ */

/* Pushed with nothing ahead, a request is on the wire before issue
 * returns, and completes from the main loop only. */
static void
test_request_written_before_returning (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  Result a, b;

  issue (line, "a", &a);
  /* No main-loop iteration. */
  g_assert_true (peer_poll (&peer));
  peer_expect_line (&peer, "a");
  /* Also while another is in flight. */
  issue (line, "b", &b);
  g_assert_true (peer_poll (&peer));
  peer_expect_line (&peer, "b");
  g_assert_false (a.done);
  g_assert_false (b.done);

  peer_write (&peer, "ra\nrb\n");
  WAIT_UNTIL (a.done && b.done);
  g_assert_cmpstr (a.reply, ==, "ra");
  g_assert_cmpstr (b.reply, ==, "rb");
  g_assert_cmpuint (a.seq, <, b.seq);

  result_clear (&a);
  result_clear (&b);
  line_unref (line);
  peer_clear (&peer);
}

/* ---- how a connection ends ----------------------------------------------- */

static void
test_eof_fails_pending_and_later_requests (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  Closed closed = { 0 };
  Result a, b, late;

  set_closed_handler (line, on_closed, &closed);
  issue (line, "a", &a);
  issue (line, "b", &b);
  peer_expect_line (&peer, "a");
  peer_hang_up (&peer);

  WAIT_UNTIL (a.done && b.done);
  g_assert_error (a.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpstr (a.error->message, ==, "a: the hypervisor closed the line connection");
  g_assert_error (b.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpstr (b.error->message, ==, "b: the hypervisor closed the line connection");
  g_assert_cmpuint (a.seq, <, b.seq);
  g_assert_true (uvm_conn_is_closed (line->conn));
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_no_error (closed.error);

  issue (line, "late", &late);
  WAIT_UNTIL (late.done);
  g_assert_error (late.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpstr (late.error->message, ==, "late: the hypervisor closed the line connection");

  /* Closing again later changes nothing. */
  iterate_briefly ();
  uvm_conn_close (line->conn);
  g_assert_cmpuint (closed.count, ==, 1);

  result_clear (&a);
  result_clear (&b);
  result_clear (&late);
  line_unref (line);
  peer_clear (&peer);
}

static void
test_close_fails_pending_and_later_requests (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  Result pending, queued, late;

  issue (line, "pending", &pending);
  issue (line, "queued", &queued);
  peer_expect_line (&peer, "pending");

  uvm_conn_close (line->conn);
  uvm_conn_close (line->conn);
  g_assert_true (uvm_conn_is_closed (line->conn));
  issue (line, "late", &late);
  WAIT_UNTIL (pending.done && queued.done && late.done);
  g_assert_error (pending.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpstr (pending.error->message, ==, "pending: connection closed");
  g_assert_error (queued.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_error (late.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpstr (late.error->message, ==, "late: connection closed");
  WAIT_UNTIL (peer_sees_eof (&peer));

  result_clear (&pending);
  result_clear (&queued);
  result_clear (&late);
  line_unref (line);
  peer_clear (&peer);
}

/* QMP's class hears of its own close (NULL error, once), HTTP's not. */
static void
test_closed_handler_on_local_close_as_the_class_says (void)
{
  Peer told_peer, untold_peer;
  Line *told = line_new (&told_peer, &pipelined_class);
  Line *untold = line_new (&untold_peer, &fifo_class);
  Closed at_told = { 0 }, at_untold = { 0 };

  set_closed_handler (told, on_closed, &at_told);
  set_closed_handler (untold, on_closed, &at_untold);
  uvm_conn_close (told->conn);
  uvm_conn_close (untold->conn);
  g_assert_cmpuint (at_told.count, ==, 1);
  g_assert_no_error (at_told.error);
  uvm_conn_close (told->conn);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (at_told.count, ==, 1);
  g_assert_cmpuint (at_untold.count, ==, 0);

  line_unref (told);
  line_unref (untold);
  peer_clear (&told_peer);
  peer_clear (&untold_peer);
}

static void
test_write_error_ends_connection (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  Closed closed = { 0 };
  Result r;

  set_closed_handler (line, on_closed, &closed);
  /* The peer stops reading: the next write gets EPIPE. */
  g_assert_no_errno (shutdown (peer.fd, SHUT_RD));
  issue (line, "a", &r);

  WAIT_UNTIL (r.done);
  g_assert_error (r.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_true (uvm_conn_is_closed (line->conn));
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);

  result_clear (&r);
  g_clear_error (&closed.error);
  line_unref (line);
  peer_clear (&peer);
}

/* The owner may hand a request a result when the peer leaves (QMP's
 * "quit", whose reply qemu may never flush); the others still fail. */
static void
test_close_result_answers_request_when_peer_leaves (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  Result quit, other;

  issue (line, "other", &other);
  issue (line, "quit", &quit);
  peer_expect_line (&peer, "other");
  peer_expect_line (&peer, "quit");
  peer_hang_up (&peer);

  WAIT_UNTIL (quit.done && other.done);
  g_assert_no_error (quit.error);
  g_assert_cmpstr (quit.reply, ==, "bye");
  g_assert_error (other.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);

  result_clear (&quit);
  result_clear (&other);
  line_unref (line);
  peer_clear (&peer);
}

/* ---- calling back from inside calls: never ------------------------------ */

static gboolean inside_issue;

static void
on_done_not_inside (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_assert_false (inside_issue);
  /* Dispatched by the main loop, not called from the test's own code. */
  g_assert_cmpint (g_main_depth (), >, 0);
  on_done (source, res, user_data);
}

static void
on_closed_not_inside (Line *line, const GError *error, gpointer user_data)
{
  g_assert_false (inside_issue);
  g_assert_cmpint (g_main_depth (), >, 0);
  on_closed (line, error, user_data);
}

static void
test_write_error_in_direct_path_is_not_reentrant (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  Closed closed = { 0 };
  Result a = { 0 }, b = { 0 };

  set_closed_handler (line, on_closed_not_inside, &closed);
  g_assert_no_errno (shutdown (peer.fd, SHUT_RD));

  inside_issue = TRUE;
  issue_with (line, NULL, "a", NULL, 0, NULL, on_done_not_inside, &a);
  issue_with (line, NULL, "b", NULL, 0, NULL, on_done_not_inside, &b);
  inside_issue = FALSE;
  g_assert_cmpuint (closed.count, ==, 0);
  g_assert_false (a.done);
  g_assert_false (b.done);

  WAIT_UNTIL (a.done && b.done && closed.count > 0);
  g_assert_error (a.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_error (b.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpuint (a.seq, <, b.seq);
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_true (uvm_conn_is_closed (line->conn));

  result_clear (&a);
  result_clear (&b);
  g_clear_error (&closed.error);
  line_unref (line);
  peer_clear (&peer);
}

/* ---- lifetimes ----------------------------------------------------------- */

static void
test_unref_fails_pending_as_cancelled_and_leaks_no_fds (void)
{
  guint baseline, finalized;
  Closed closed = { 0 };
  Peer peer;
  Line *line;
  int pipe_fds[2];
  Result a, b;

  warm_up_glib ();
  baseline = count_open_fds ();
  finalized = lines_finalized;
  line = line_new (&peer, &fifo_class);
  set_closed_handler (line, on_closed, &closed);

  /* a is on the wire; b waits behind it with copies of two fds. */
  issue (line, "a", &a);
  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  issue_full (line, "b", pipe_fds, 2, NULL, &b);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  peer_expect_line (&peer, "a");
  g_assert_cmpuint (count_open_fds (), ==, baseline + 2 /* socketpair */ + 2 /* copies */);

  line_unref (line);
  g_assert_cmpuint (lines_finalized, ==, finalized + 1);
  WAIT_UNTIL (a.done && b.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpstr (a.error->message, ==, "a: line client released");
  g_assert_error (b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (a.seq, <, b.seq);
  /* Its owner let go: nobody is told. */
  g_assert_cmpuint (closed.count, ==, 0);
  WAIT_UNTIL (peer_sees_eof (&peer));
  g_assert_cmpuint (peer.fds->len, ==, 0);

  result_clear (&a);
  result_clear (&b);
  peer_clear (&peer);
  g_assert_cmpuint (count_open_fds (), ==, baseline);
}

/* Released between a direct write error and the close it schedules: the
 * scheduled close must not run on a freed connection. */
static void
test_unref_with_write_error_pending (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  Closed closed = { 0 };
  Result r;

  set_closed_handler (line, on_closed, &closed);
  g_assert_no_errno (shutdown (peer.fd, SHUT_RD));
  issue (line, "a", &r);
  line_unref (line);

  WAIT_UNTIL (r.done);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  iterate_briefly ();
  g_assert_cmpuint (closed.count, ==, 0);

  result_clear (&r);
  peer_clear (&peer);
}

static void
on_closed_count_notify (gpointer data)
{
  (*(guint *) data)++;
}

/* The closed handler's data is freed when replaced and at the end. */
static void
test_closed_handler_data_freed_when_replaced_and_at_unref (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  guint first = 0, second = 0;

  uvm_conn_set_closed_handler (line->conn, G_CALLBACK (on_closed), &first, on_closed_count_notify);
  uvm_conn_set_closed_handler (line->conn, G_CALLBACK (on_closed), &second, on_closed_count_notify);
  g_assert_cmpuint (first, ==, 1);
  g_assert_cmpuint (second, ==, 0);
  line_unref (line);
  g_assert_cmpuint (second, ==, 1);

  peer_clear (&peer);
}

typedef struct {
  Result r;
  Line  *to_unref;
} UnrefOnDone;

static void
on_done_unref (GObject *source, GAsyncResult *res, gpointer user_data)
{
  UnrefOnDone *u = user_data;

  on_done (source, res, &u->r);
  g_clear_pointer (&u->to_unref, line_unref);
}

/* The last reference goes from a callback while more input is being
 * handled. */
static void
test_callback_unrefs_owner (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  UnrefOnDone a = { .to_unref = line };
  Result b;

  issue_with (line, NULL, "a", NULL, 0, NULL, on_done_unref, &a.r);
  issue (line, "b", &b);
  peer_expect_line (&peer, "a");
  peer_expect_line (&peer, "b");

  peer_write (&peer, "ra\nrb\nextra\n");
  WAIT_UNTIL (a.r.done && b.done);
  g_assert_cmpstr (a.r.reply, ==, "ra");
  g_assert_null (a.to_unref);
  /* The layer held on until the read was handled: b got its reply, and
   * the stray line after it ended the connection. */
  g_assert_cmpstr (b.reply, ==, "rb");
  WAIT_UNTIL (peer_sees_eof (&peer));

  result_clear (&a.r);
  result_clear (&b);
  peer_clear (&peer);
}

/* The same when the reply is handled at EOF: the connection ends after the
 * callback dropped the last reference. */
static void
test_callback_at_eof_unrefs_owner (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  UnrefOnDone a = { .to_unref = line };
  Result b;
  guint finalized = lines_finalized;

  issue_with (line, NULL, "a", NULL, 0, NULL, on_done_unref, &a.r);
  issue (line, "b", &b);
  peer_expect_line (&peer, "a");
  peer_write (&peer, "ra");
  peer_hang_up (&peer);

  WAIT_UNTIL (a.r.done && b.done);
  g_assert_cmpstr (a.r.reply, ==, "ra");
  g_assert_null (a.to_unref);
  /* The layer held on until EOF was handled: b saw the peer leave. */
  g_assert_error (b.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpuint (lines_finalized, ==, finalized + 1);

  result_clear (&a.r);
  result_clear (&b);
  peer_clear (&peer);
}

static void
on_closed_unref (Line *line, G_GNUC_UNUSED const GError *error, gpointer user_data)
{
  guint *count = user_data;

  (*count)++;
  line_unref (line);
}

static void
test_closed_handler_unrefs_owner (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  guint count = 0, finalized = lines_finalized;
  Result r;

  set_closed_handler (line, on_closed_unref, &count);
  issue (line, "a", &r);
  peer_expect_line (&peer, "a");

  peer_hang_up (&peer);
  WAIT_UNTIL (r.done && count == 1);
  g_assert_error (r.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpuint (lines_finalized, ==, finalized + 1);

  result_clear (&r);
  peer_clear (&peer);
}

/* ---- cancelling --------------------------------------------------------- */

static void
test_cancel_before_issue_never_sends (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result a;

  g_cancellable_cancel (cancellable);
  issue_full (line, "a", NULL, 0, cancellable, &a);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  iterate_briefly ();
  g_assert_false (peer_poll (&peer));
  g_assert_cmpuint (peer.in->len, ==, 0);

  result_clear (&a);
  line_unref (line);
  peer_clear (&peer);
}

/* Cancelled behind another, a request never goes out and the one behind
 * it is next (the class's dropped hook). */
static void
test_cancel_queued_never_sends (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result a, b, c;

  issue (line, "a", &a);
  issue_full (line, "b", NULL, 0, cancellable, &b);
  issue (line, "c", &c);
  peer_expect_line (&peer, "a");
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (b.done);
  g_assert_error (b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  peer_write (&peer, "ra\n");
  peer_expect_line (&peer, "c");
  peer_write (&peer, "rc\n");
  WAIT_UNTIL (a.done && c.done);
  g_assert_cmpstr (a.reply, ==, "ra");
  g_assert_cmpstr (c.reply, ==, "rc");
  iterate_briefly ();
  g_assert_false (peer_poll (&peer));

  result_clear (&a);
  result_clear (&b);
  result_clear (&c);
  line_unref (line);
  peer_clear (&peer);
}

/* Cancelled on the wire, a request keeps its place: its reply is read and
 * dropped, the next reply goes to the next request. */
static void
test_cancel_on_wire_drops_its_reply (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result a, b;

  issue_full (line, "a", NULL, 0, cancellable, &a);
  issue (line, "b", &b);
  peer_expect_line (&peer, "a");
  peer_expect_line (&peer, "b");
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  peer_write (&peer, "ra\n");
  iterate_briefly ();
  g_assert_false (b.done);
  peer_write (&peer, "rb\n");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (b.reply, ==, "rb");
  g_assert_false (uvm_conn_is_closed (line->conn));

  result_clear (&a);
  result_clear (&b);
  line_unref (line);
  peer_clear (&peer);
}

/* A request too big for the socket buffer is written partly at once and
 * finished from the main loop.  Cancelled meanwhile, it is still finished
 * (framing); one queued behind it and cancelled never goes out. */
static void
test_cancel_while_partly_written_finishes_it (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  g_autoptr(GCancellable) cancel_big = g_cancellable_new ();
  g_autoptr(GCancellable) cancel_queued = g_cancellable_new ();
  const gsize blob_len = 4 * 1024 * 1024;
  g_autofree char *blob = g_malloc (blob_len + 1);
  Result big, queued, c;

  memset (blob, 'x', blob_len);
  blob[blob_len] = '\0';
  memset (&big, 0, sizeof big);
  issue_with (line, "big", blob, NULL, 0, cancel_big, on_done, &big);
  /* Part of it is out already, not all. */
  g_assert_cmpuint (peer_bytes_waiting (&peer), >, 0);
  g_assert_cmpuint (peer_bytes_waiting (&peer), <, blob_len);

  issue_full (line, "queued", NULL, 0, cancel_queued, &queued);
  g_cancellable_cancel (cancel_queued);
  WAIT_UNTIL (queued.done);
  g_assert_error (queued.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_cancellable_cancel (cancel_big);
  WAIT_UNTIL (big.done);
  g_assert_error (big.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  issue (line, "c", &c);

  /* All of the big one, then "c": "queued" never went out. */
  peer_expect_line (&peer, blob);
  peer_expect_line (&peer, "c");
  peer_write (&peer, "rbig\n");
  iterate_briefly ();
  g_assert_false (c.done);
  peer_write (&peer, "rc\n");
  WAIT_UNTIL (c.done);
  g_assert_cmpstr (c.reply, ==, "rc");
  iterate_briefly ();
  g_assert_false (peer_poll (&peer));
  g_assert_false (uvm_conn_is_closed (line->conn));

  result_clear (&big);
  result_clear (&queued);
  result_clear (&c);
  line_unref (line);
  peer_clear (&peer);
}

/* ---- fds ----------------------------------------------------------------- */

static void
test_fds_travel_with_first_byte (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  int pipe_fds[2];
  struct stat original[2];
  guint baseline;
  Result r;
  char byte = 0;

  warm_up_glib ();
  baseline = count_open_fds ();
  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  for (guint i = 0; i < 2; i++)
    g_assert_no_errno (fstat (pipe_fds[i], &original[i]));
  issue_full (line, "getfd", pipe_fds, 2, NULL, &r);
  /* The layer has its own copies; ours can go at once. */
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  /* Written directly, fds included, before any main-loop iteration. */
  g_assert_true (peer_poll (&peer));
  g_assert_cmpuint (peer.fds->len, ==, 2);
  g_assert_cmpint (peer.fd_offset, ==, 0);
  peer_expect_line (&peer, "getfd");

  for (guint i = 0; i < 2; i++)
    peer_assert_same_file (g_array_index (peer.fds, int, i), &original[i]);
  g_assert_cmpint (write (g_array_index (peer.fds, int, 1), "!", 1), ==, 1);
  g_assert_cmpint (read (g_array_index (peer.fds, int, 0), &byte, 1), ==, 1);
  g_assert_cmpint (byte, ==, '!');

  peer_write (&peer, "ok\n");
  WAIT_UNTIL (r.done);
  g_assert_cmpstr (r.reply, ==, "ok");

  /* The layer's copies are gone once sent: only the peer's remain. */
  g_assert_cmpuint (count_open_fds (), ==, baseline + 2);
  peer_close_fds (&peer);
  g_assert_cmpuint (count_open_fds (), ==, baseline);

  result_clear (&r);
  line_unref (line);
  peer_clear (&peer);
}

/* ---- deadlines ----------------------------------------------------------- */

/* A peer that reads a request and never answers: it fails with
 * UVM_ERROR_TIMEOUT naming it, the one queued behind fails too (never
 * sent), the closed handler hears the same error and the connection is
 * over (later requests refused). */
static void
test_timeout_fails_request_and_ends_connection (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  Closed closed = { 0 };
  Result a, queued, late;

  set_closed_handler (line, on_closed, &closed);
  uvm_conn_set_request_timeout (line->conn, 100);
  issue (line, "a", &a);
  peer_expect_line (&peer, "a");
  /* Issued later: its deadline is later. */
  g_usleep (30 * 1000);
  issue (line, "queued", &queued);

  WAIT_UNTIL (a.done && queued.done);
  g_assert_error (a.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_cmpstr (a.error->message, ==, "a: no reply within 100 ms");
  g_assert_error (queued.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (queued.error->message, "queued"));
  g_assert_cmpuint (a.seq, <, queued.seq);
  g_assert_true (uvm_conn_is_closed (line->conn));
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_cmpstr (closed.error->message, ==, "a: no reply within 100 ms");
  WAIT_UNTIL (peer_sees_eof (&peer));
  g_assert_cmpuint (peer.in->len, ==, 0);

  issue (line, "late", &late);
  WAIT_UNTIL (late.done);
  g_assert_error (late.error, UVM_ERROR, UVM_ERROR_TIMEOUT);

  result_clear (&a);
  result_clear (&queued);
  result_clear (&late);
  g_clear_error (&closed.error);
  line_unref (line);
  peer_clear (&peer);
}

/* Replies in time leave no timer behind, and the connection is kept. */
static void
test_timeout_reply_in_time_keeps_connection (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  Closed closed = { 0 };
  Result a, b;
  gint64 until;

  set_closed_handler (line, on_closed, &closed);
  uvm_conn_set_request_timeout (line->conn, 100);
  issue (line, "a", &a);
  peer_expect_line (&peer, "a");
  peer_write (&peer, "ra\n");
  WAIT_UNTIL (a.done);
  g_assert_cmpstr (a.reply, ==, "ra");

  until = g_get_monotonic_time () + 250 * 1000;
  WAIT_UNTIL (g_get_monotonic_time () > until);
  g_assert_false (uvm_conn_is_closed (line->conn));
  g_assert_false (peer_sees_eof (&peer));
  g_assert_cmpuint (closed.count, ==, 0);

  issue (line, "b", &b);
  peer_expect_line (&peer, "b");
  peer_write (&peer, "rb\n");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (b.reply, ==, "rb");

  result_clear (&a);
  result_clear (&b);
  line_unref (line);
  peer_clear (&peer);
}

/* Matched by order (HTTP), a request cancelled on the wire and never
 * answered still ends the connection when its deadline passes. */
static void
test_timeout_of_cancelled_request_ends_connection_when_matched_by_order (void)
{
  Peer peer;
  Line *line = line_new (&peer, &fifo_class);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result a, late;

  uvm_conn_set_request_timeout (line->conn, 100);
  issue_full (line, "a", NULL, 0, cancellable, &a);
  peer_expect_line (&peer, "a");
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  WAIT_UNTIL (peer_sees_eof (&peer));
  issue (line, "late", &late);
  WAIT_UNTIL (late.done);
  g_assert_error (late.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_cmpstr (late.error->message, ==, "late: a: no reply within 100 ms");

  result_clear (&a);
  result_clear (&late);
  line_unref (line);
  peer_clear (&peer);
}

/* Matched by id (QMP), it is forgotten instead: nothing ends. */
static void
test_timeout_of_cancelled_request_forgotten_when_matched_by_id (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Closed closed = { 0 };
  Result a, b;
  gint64 until;

  set_closed_handler (line, on_closed, &closed);
  uvm_conn_set_request_timeout (line->conn, 100);
  issue_full (line, "a", NULL, 0, cancellable, &a);
  peer_expect_line (&peer, "a");
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  until = g_get_monotonic_time () + 250 * 1000;
  WAIT_UNTIL (g_get_monotonic_time () > until);
  g_assert_false (uvm_conn_is_closed (line->conn));
  g_assert_cmpuint (closed.count, ==, 0);
  g_assert_cmpuint (g_queue_get_length (uvm_conn_get_requests (line->conn)), ==, 0);

  uvm_conn_set_request_timeout (line->conn, 0);
  issue (line, "b", &b);
  peer_expect_line (&peer, "b");
  peer_write (&peer, "rb\n");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (b.reply, ==, "rb");

  result_clear (&a);
  result_clear (&b);
  line_unref (line);
  peer_clear (&peer);
}

/* ---- reading now ---------------------------------------------------------- */

/* What the peer already sent is handled inside uvm_conn_read_pending(),
 * EOF included. */
static void
test_read_pending_delivers_before_returning (void)
{
  Peer peer;
  Line *line = line_new (&peer, &pipelined_class);
  Result a, b;

  issue (line, "a", &a);
  issue (line, "b", &b);
  peer_expect_line (&peer, "a");
  peer_expect_line (&peer, "b");
  peer_write (&peer, "ra\n");
  peer_hang_up (&peer);

  uvm_conn_read_pending (line->conn);
  /* Handled already (GTask runs the callbacks from the main loop). */
  g_assert_true (uvm_conn_is_closed (line->conn));
  g_assert_true (g_queue_is_empty (uvm_conn_get_requests (line->conn)));
  WAIT_UNTIL (a.done && b.done);
  g_assert_cmpstr (a.reply, ==, "ra");
  g_assert_error (b.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);

  result_clear (&a);
  result_clear (&b);
  line_unref (line);
  peer_clear (&peer);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/conn/request-written-before-returning", test_request_written_before_returning);
  g_test_add_func ("/conn/end/eof-fails-pending-and-later-requests",
                   test_eof_fails_pending_and_later_requests);
  g_test_add_func ("/conn/end/close-fails-pending-and-later-requests",
                   test_close_fails_pending_and_later_requests);
  g_test_add_func ("/conn/end/closed-handler-on-local-close-as-the-class-says",
                   test_closed_handler_on_local_close_as_the_class_says);
  g_test_add_func ("/conn/end/write-error-ends-connection", test_write_error_ends_connection);
  g_test_add_func ("/conn/end/close-result-answers-request-when-peer-leaves",
                   test_close_result_answers_request_when_peer_leaves);
  g_test_add_func ("/conn/write-error-in-direct-path-is-not-reentrant",
                   test_write_error_in_direct_path_is_not_reentrant);
  g_test_add_func ("/conn/lifetime/unref-fails-pending-as-cancelled-and-leaks-no-fds",
                   test_unref_fails_pending_as_cancelled_and_leaks_no_fds);
  g_test_add_func ("/conn/lifetime/unref-with-write-error-pending", test_unref_with_write_error_pending);
  g_test_add_func ("/conn/lifetime/closed-handler-data-freed-when-replaced-and-at-unref",
                   test_closed_handler_data_freed_when_replaced_and_at_unref);
  g_test_add_func ("/conn/lifetime/callback-unrefs-owner", test_callback_unrefs_owner);
  g_test_add_func ("/conn/lifetime/callback-at-eof-unrefs-owner", test_callback_at_eof_unrefs_owner);
  g_test_add_func ("/conn/lifetime/closed-handler-unrefs-owner", test_closed_handler_unrefs_owner);
  g_test_add_func ("/conn/cancel/before-issue-never-sends", test_cancel_before_issue_never_sends);
  g_test_add_func ("/conn/cancel/queued-never-sends", test_cancel_queued_never_sends);
  g_test_add_func ("/conn/cancel/on-wire-drops-its-reply", test_cancel_on_wire_drops_its_reply);
  g_test_add_func ("/conn/cancel/while-partly-written-finishes-it",
                   test_cancel_while_partly_written_finishes_it);
  g_test_add_func ("/conn/fds-travel-with-first-byte", test_fds_travel_with_first_byte);
  g_test_add_func ("/conn/timeout/fails-request-and-ends-connection",
                   test_timeout_fails_request_and_ends_connection);
  g_test_add_func ("/conn/timeout/reply-in-time-keeps-connection",
                   test_timeout_reply_in_time_keeps_connection);
  g_test_add_func ("/conn/timeout/cancelled-request-ends-connection-when-matched-by-order",
                   test_timeout_of_cancelled_request_ends_connection_when_matched_by_order);
  g_test_add_func ("/conn/timeout/cancelled-request-forgotten-when-matched-by-id",
                   test_timeout_of_cancelled_request_forgotten_when_matched_by_id);
  g_test_add_func ("/conn/read-pending-delivers-before-returning",
                   test_read_pending_delivers_before_returning);

  return g_test_run ();
}
