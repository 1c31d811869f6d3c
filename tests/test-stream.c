/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the transport under the protocol clients (uvm-stream.h):
 * the test holds the other end of a socketpair (or a pipe's write end) and
 * checks what goes out, in what order and with which fds, and when the
 * stream calls back. */

#include "proto/uvm-stream.h"

#include <uvm/uvm-error.h>

#include "uvm-peer-util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Big enough never to fit a socketpair's buffer: written partly at once. */
#define BIG_LEN (4 * 1024 * 1024)

/* ---- driving the main loop -------------------------------------------- */

/* WAIT_UNTIL(), iterate_briefly() and count_open_fds() are in
 * uvm-peer-util.h. */

/* ---- what the stream calls back --------------------------------------- */

typedef enum { ACT_NONE, ACT_CLOSE, ACT_FREE } Action;

typedef struct {
  UvmStream *stream;     /* NULL once a callback freed it */
  GString   *data;
  guint      n_data;
  gsize      max_read;
  guint      n_closed;
  GError    *error;      /* the closed callback's */
  gboolean   inside_call; /* the test is inside a uvm_stream_*() call */
  Action     on_data;
  Action     on_closed;
} Rec;

static void
act (Rec *rec, UvmStream *stream, Action action)
{
  if (action == ACT_CLOSE)
    uvm_stream_close (stream);
  else if (action == ACT_FREE)
    {
      uvm_stream_free (stream);
      rec->stream = NULL;
    }
}

static void
rec_data (UvmStream *stream, const guint8 *bytes, gsize len, gpointer user_data)
{
  Rec *rec = user_data;

  g_assert_false (rec->inside_call);
  g_assert_true (stream == rec->stream);
  g_assert_cmpuint (len, >, 0);
  g_string_append_len (rec->data, (const char *) bytes, len);
  rec->n_data++;
  rec->max_read = MAX (rec->max_read, len);
  act (rec, stream, rec->on_data);
}

static void
rec_closed (UvmStream *stream, const GError *error, gpointer user_data)
{
  Rec *rec = user_data;

  g_assert_false (rec->inside_call);
  g_assert_true (stream == rec->stream);
  g_assert_true (uvm_stream_is_closed (stream));
  rec->n_closed++;
  if (error != NULL)
    rec->error = g_error_copy (error);
  act (rec, stream, rec->on_closed);
}

static const UvmStreamCallbacks rec_callbacks = { rec_data, rec_closed };

/* A stream on one end of a socketpair; *peer gets the other. */
static void
rec_start (Rec *rec, int *peer)
{
  int sv[2];

  memset (rec, 0, sizeof *rec);
  rec->data = g_string_new (NULL);
  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  *peer = sv[1];
  rec->stream = uvm_stream_new (sv[0], "the test socket", &rec_callbacks, rec);
}

static void
rec_clear (Rec *rec)
{
  g_clear_pointer (&rec->stream, uvm_stream_free);
  g_string_free (rec->data, TRUE);
  g_clear_error (&rec->error);
}

/* ---- the peer --------------------------------------------------------- */

static UvmStreamChunk *
chunk_of (const char *text, const int *fds, guint n_fds)
{
  g_autoptr(GBytes) bytes = g_bytes_new (text, strlen (text));
  g_autoptr(GError) error = NULL;
  UvmStreamChunk *chunk = uvm_stream_chunk_new (bytes, fds, n_fds, &error);

  g_assert_no_error (error);
  return chunk;
}

static UvmStreamChunk *
big_chunk (char fill, const int *fds, guint n_fds)
{
  char *blob = g_malloc (BIG_LEN);
  g_autoptr(GBytes) bytes = NULL;

  memset (blob, fill, BIG_LEN);
  bytes = g_bytes_new_take (blob, BIG_LEN);
  return uvm_stream_chunk_new (bytes, fds, n_fds, NULL);
}

static gsize
bytes_waiting (int fd)
{
  int n = 0;

  g_assert_no_errno (ioctl (fd, FIONREAD, &n));
  return n;
}

/* One recvmsg of at most @len bytes without waiting: its length (or -1) in
 * last_read_len, the fds that came with it counted, appended to @fds when
 * not NULL, else closed. */
static ssize_t last_read_len;

static guint
peer_recv (int fd, char *buf, gsize len, GArray *fds)
{
  union {
    char buf[CMSG_SPACE (16 * sizeof (int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = buf, .iov_len = len };
  struct msghdr msg = {
    .msg_iov = &iov, .msg_iovlen = 1,
    .msg_control = control.buf, .msg_controllen = sizeof control.buf,
  };
  guint n_fds = 0;

  last_read_len = recvmsg (fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (last_read_len <= 0)
    return 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        guint count = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        int *received = (int *) CMSG_DATA (c);

        for (guint i = 0; i < count; i++)
          {
            if (fds != NULL)
              g_array_append_val (fds, received[i]);
            else
              close (received[i]);
          }
        n_fds += count;
      }
  return n_fds;
}

/* Reads exactly @len bytes, already waiting; returns how many fds came
 * with them (appended to @fds when not NULL, else closed). */
static guint
peer_read_exactly (int fd, char *buf, gsize len, GArray *fds)
{
  gsize done = 0;
  guint n_fds = 0;

  while (done < len)
    {
      n_fds += peer_recv (fd, buf + done, len - done, fds);
      if (last_read_len < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (last_read_len, >, 0);
      done += last_read_len;
    }
  return n_fds;
}

/* Everything the stream sends until @want bytes have come, iterating the
 * main loop so that its G_IO_OUT source runs.  Counts the fds that came
 * with them in *n_fds, if not NULL, and closes them. */
static GString *
peer_read_all_fds (int fd, gsize want, guint *n_fds)
{
  GString *in = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  g_autofree char *buf = g_malloc (65536);

  if (n_fds != NULL)
    *n_fds = 0;
  while (in->len < want)
    {
      guint got = peer_recv (fd, buf, MIN (65536, want - in->len), NULL);
      ssize_t n = last_read_len;

      if (n_fds != NULL)
        *n_fds += got;
      if (n > 0)
        g_string_append_len (in, buf, n);
      else
        {
          g_assert_true (n < 0 && (errno == EAGAIN || errno == EINTR));
          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
          g_main_context_iteration (NULL, FALSE);
        }
    }
  return in;
}

static GString *
peer_read_all (int fd, gsize want)
{
  return peer_read_all_fds (fd, want, NULL);
}

static gboolean
all_bytes_are (const char *data, gsize len, char c)
{
  for (gsize i = 0; i < len; i++)
    if (data[i] != c)
      return FALSE;
  return TRUE;
}

/* ---- writing ---------------------------------------------------------- */

/* Chunks go out whole and in push order, each one's fds with its first
 * byte and nowhere else; the caller's own fds may be closed at once. */
static void
test_chunks_in_order_with_fds (void)
{
  Rec rec;
  int peer, pipe_a[2], pipe_c[2];
  struct stat st_a, st_c, st;
  UvmStreamChunk *a, *b, *c;
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  char buf[16];

  rec_start (&rec, &peer);
  g_assert_no_errno (pipe2 (pipe_a, O_CLOEXEC));
  g_assert_no_errno (pipe2 (pipe_c, O_CLOEXEC));
  g_assert_no_errno (fstat (pipe_a[0], &st_a));
  g_assert_no_errno (fstat (pipe_c[1], &st_c));

  a = chunk_of ("aaaa", pipe_a, 1);
  b = chunk_of ("bb", NULL, 0);
  c = chunk_of ("cccccc", (int[]) { pipe_c[1], pipe_c[0] }, 2);
  for (int i = 0; i < 2; i++)
    {
      close (pipe_a[i]);
      close (pipe_c[i]);
    }

  rec.inside_call = TRUE;
  uvm_stream_push (rec.stream, a);
  uvm_stream_push (rec.stream, b);
  uvm_stream_push (rec.stream, c);
  rec.inside_call = FALSE;
  /* All written before push returned. */
  g_assert_cmpuint (bytes_waiting (peer), ==, 12);
  g_assert_true (uvm_stream_chunk_sent (a) && uvm_stream_chunk_sent (b) && uvm_stream_chunk_sent (c));

  g_assert_cmpuint (peer_read_exactly (peer, buf, 4, fds), ==, 1);
  g_assert_cmpmem (buf, 4, "aaaa", 4);
  g_assert_cmpuint (peer_read_exactly (peer, buf, 2, fds), ==, 0);
  g_assert_cmpmem (buf, 2, "bb", 2);
  g_assert_cmpuint (peer_read_exactly (peer, buf, 6, fds), ==, 2);
  g_assert_cmpmem (buf, 6, "cccccc", 6);

  g_assert_no_errno (fstat (g_array_index (fds, int, 0), &st));
  g_assert_cmpuint (st.st_ino, ==, st_a.st_ino);
  g_assert_no_errno (fstat (g_array_index (fds, int, 1), &st));
  g_assert_cmpuint (st.st_ino, ==, st_c.st_ino);
  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, int, i));

  uvm_stream_chunk_release (a);
  uvm_stream_chunk_release (b);
  uvm_stream_chunk_release (c);
  rec_clear (&rec);
  close (peer);
}

/* A chunk goes nowhere until pushed, and push order, not creation order,
 * is the order on the wire: how owners hold messages back. */
static void
test_held_until_pushed (void)
{
  Rec rec;
  int peer;
  UvmStreamChunk *first = chunk_of ("first\n", NULL, 0);
  UvmStreamChunk *second = chunk_of ("second\n", NULL, 0);
  g_autoptr(GString) in = NULL;

  rec_start (&rec, &peer);
  iterate_briefly ();
  g_assert_cmpuint (bytes_waiting (peer), ==, 0);
  g_assert_false (uvm_stream_chunk_started (first));

  uvm_stream_push (rec.stream, second);
  uvm_stream_push (rec.stream, first);
  in = peer_read_all (peer, 13);
  g_assert_cmpstr (in->str, ==, "second\nfirst\n");

  uvm_stream_chunk_release (first);
  uvm_stream_chunk_release (second);
  rec_clear (&rec);
  close (peer);
}

/* Behind a partly written chunk: releasing one that has not started drops
 * it (never sent, its fds closed); the partly written one is finished and
 * the next one follows it. */
static void
test_release_unstarted_drops_it (void)
{
  Rec rec;
  int peer, pipe_fds[2];
  UvmStreamChunk *big, *dropped, *next;
  guint baseline;
  g_autoptr(GString) in = NULL;

  rec_start (&rec, &peer);
  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  baseline = count_open_fds ();

  big = big_chunk ('x', NULL, 0);
  uvm_stream_push (rec.stream, big);
  g_assert_true (uvm_stream_chunk_started (big));
  g_assert_false (uvm_stream_chunk_sent (big));

  dropped = chunk_of ("dropped\n", pipe_fds, 2);
  g_assert_cmpuint (count_open_fds (), ==, baseline + 2);
  uvm_stream_push (rec.stream, dropped);
  next = chunk_of ("next\n", NULL, 0);
  uvm_stream_push (rec.stream, next);
  g_assert_false (uvm_stream_chunk_started (dropped));

  rec.inside_call = TRUE;
  uvm_stream_chunk_release (dropped);
  rec.inside_call = FALSE;
  g_assert_cmpuint (count_open_fds (), ==, baseline);

  in = peer_read_all (peer, BIG_LEN + 5);
  g_assert_true (all_bytes_are (in->str, BIG_LEN, 'x'));
  g_assert_cmpstr (in->str + BIG_LEN, ==, "next\n");
  iterate_briefly ();
  g_assert_cmpuint (bytes_waiting (peer), ==, 0);
  g_assert_true (uvm_stream_chunk_sent (big));

  uvm_stream_chunk_release (big);
  uvm_stream_chunk_release (next);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  rec_clear (&rec);
  close (peer);
}

/* Releasing a partly written chunk does not cut it: the peer needs the
 * rest to find where the next message begins.  Its fds went with the first
 * byte only. */
static void
test_release_partly_written_finishes_it (void)
{
  Rec rec;
  int peer, pipe_fds[2];
  UvmStreamChunk *big, *next;
  g_autoptr(GString) in = NULL;
  guint n_fds;

  rec_start (&rec, &peer);
  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  big = big_chunk ('y', pipe_fds, 2);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  uvm_stream_push (rec.stream, big);
  g_assert_true (uvm_stream_chunk_started (big));
  g_assert_false (uvm_stream_chunk_sent (big));
  uvm_stream_chunk_release (big);

  next = chunk_of ("next\n", NULL, 0);
  uvm_stream_push (rec.stream, next);
  in = peer_read_all_fds (peer, BIG_LEN + 5, &n_fds);
  g_assert_true (all_bytes_are (in->str, BIG_LEN, 'y'));
  /* Once, with the first byte, not again with the rest. */
  g_assert_cmpuint (n_fds, ==, 2);
  g_assert_cmpstr (in->str + BIG_LEN, ==, "next\n");

  uvm_stream_chunk_release (next);
  rec_clear (&rec);
  close (peer);
}

/* After stop_writing nothing more goes out, not even the rest of a partly
 * written chunk, and the stream stays open for reading. */
static void
test_stop_writing (void)
{
  Rec rec;
  int peer;
  UvmStreamChunk *big, *later;
  gsize out_before;
  gsize total = 0;

  rec_start (&rec, &peer);
  big = big_chunk ('z', NULL, 0);
  uvm_stream_push (rec.stream, big);
  out_before = bytes_waiting (peer);
  g_assert_cmpuint (out_before, >, 0);

  uvm_stream_stop_writing (rec.stream);
  later = chunk_of ("later\n", NULL, 0);
  uvm_stream_push (rec.stream, later);

  /* Drain the peer's side while the main loop runs: nothing more comes. */
  for (int i = 0; i < 20; i++)
    {
      char buf[65536];
      ssize_t n;

      while ((n = recv (peer, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        total += n;
      iterate_briefly ();
      g_usleep (1000);
    }
  g_assert_cmpuint (total, ==, out_before);
  g_assert_false (uvm_stream_chunk_sent (big));
  g_assert_false (uvm_stream_chunk_started (later));

  /* Reading goes on. */
  g_assert_cmpint (write (peer, "hello", 5), ==, 5);
  WAIT_UNTIL (rec.data->len == 5);
  g_assert_false (uvm_stream_is_closed (rec.stream));

  uvm_stream_chunk_release (big);
  uvm_stream_chunk_release (later);
  rec_clear (&rec);
  close (peer);
}

/* A write error inside push never calls back from inside: the stream
 * closes from the main loop, calling closed once with the error. */
static void
test_write_error_is_deferred (void)
{
  Rec rec;
  int peer;
  UvmStreamChunk *a = chunk_of ("a\n", NULL, 0);
  UvmStreamChunk *b = chunk_of ("b\n", NULL, 0);

  rec_start (&rec, &peer);
  g_assert_no_errno (shutdown (peer, SHUT_RD));

  rec.inside_call = TRUE;
  uvm_stream_push (rec.stream, a);
  uvm_stream_push (rec.stream, b);
  rec.inside_call = FALSE;
  g_assert_cmpuint (rec.n_closed, ==, 0);
  g_assert_false (uvm_stream_is_closed (rec.stream));
  g_assert_false (uvm_stream_chunk_started (a));

  WAIT_UNTIL (rec.n_closed > 0);
  g_assert_error (rec.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_nonnull (strstr (rec.error->message, "writing to the test socket"));
  g_assert_true (uvm_stream_is_closed (rec.stream));
  iterate_briefly ();
  g_assert_cmpuint (rec.n_closed, ==, 1);

  /* Handles outlive the queue. */
  g_assert_false (uvm_stream_chunk_started (b));
  uvm_stream_chunk_release (a);
  uvm_stream_chunk_release (b);
  rec_clear (&rec);
  close (peer);
}

/* Closing unqueues everything (fds closed at once) and calls nothing; the
 * handles stay valid until released. */
static void
test_close_unqueues (void)
{
  Rec rec;
  int peer, pipe_fds[2];
  UvmStreamChunk *big, *queued;
  guint baseline;

  rec_start (&rec, &peer);
  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  baseline = count_open_fds ();
  big = big_chunk ('w', NULL, 0);
  uvm_stream_push (rec.stream, big);
  queued = chunk_of ("queued\n", pipe_fds, 2);
  uvm_stream_push (rec.stream, queued);
  g_assert_cmpuint (count_open_fds (), ==, baseline + 2);

  uvm_stream_close (rec.stream);
  g_assert_true (uvm_stream_is_closed (rec.stream));
  /* The stream's socket and the duplicates are gone. */
  g_assert_cmpuint (count_open_fds (), ==, baseline - 1);
  uvm_stream_close (rec.stream);
  iterate_briefly ();
  g_assert_cmpuint (rec.n_closed, ==, 0);
  g_assert_true (uvm_stream_chunk_started (big));
  g_assert_false (uvm_stream_chunk_started (queued));

  /* Pushing to a closed stream sends nothing. */
  uvm_stream_chunk_release (queued);
  queued = chunk_of ("late\n", NULL, 0);
  uvm_stream_push (rec.stream, queued);
  g_assert_false (uvm_stream_chunk_started (queued));

  uvm_stream_chunk_release (big);
  uvm_stream_chunk_release (queued);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  rec_clear (&rec);
  close (peer);
}

static void
test_chunk_errors (void)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static ("x", 1);
  g_autoptr(GError) error = NULL;
  int many[254];
  int bad_fd;
  guint baseline;

  for (guint i = 0; i < G_N_ELEMENTS (many); i++)
    many[i] = 0;
  g_assert_null (uvm_stream_chunk_new (bytes, many, G_N_ELEMENTS (many), &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "too many file descriptors (254)"));
  g_clear_error (&error);

  /* A bad fd after good ones: the duplicates made so far are closed. */
  bad_fd = -1;
  baseline = count_open_fds ();
  g_assert_null (uvm_stream_chunk_new (bytes, (int[]) { 0, 1, bad_fd }, 3, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "duplicating fd"));
  g_assert_cmpuint (count_open_fds (), ==, baseline);
}

/* ---- reading ---------------------------------------------------------- */

/* Without drain mode a wake-up reads once, at most the budget. */
static void
test_read_budget (void)
{
  Rec rec;
  int peer;

  rec_start (&rec, &peer);
  uvm_stream_set_read_budget (rec.stream, 3);
  g_assert_cmpint (write (peer, "0123456789", 10), ==, 10);
  g_assert_true (g_main_context_iteration (NULL, FALSE));
  g_assert_cmpuint (rec.n_data, ==, 1);
  WAIT_UNTIL (rec.data->len == 10);
  g_assert_cmpstr (rec.data->str, ==, "0123456789");
  g_assert_cmpuint (rec.max_read, ==, 3);
  g_assert_cmpuint (rec.n_data, ==, 4);

  /* Clamped to the read buffer, and to at least one byte. */
  uvm_stream_set_read_budget (rec.stream, 0);
  g_assert_cmpint (write (peer, "ab", 2), ==, 2);
  WAIT_UNTIL (rec.data->len == 12);
  g_assert_cmpuint (rec.n_data, ==, 6);

  rec_clear (&rec);
  close (peer);
}

/* In drain mode one wake-up reads until the pipe is empty. */
static void
test_drain_reads_until_eagain (void)
{
  Rec rec;
  int fds[2];
  g_autofree char *blob = g_malloc (4 * UVM_STREAM_READ_CHUNK);

  memset (&rec, 0, sizeof rec);
  rec.data = g_string_new (NULL);
  g_assert_no_errno (pipe2 (fds, O_CLOEXEC));
  if (fcntl (fds[1], F_SETPIPE_SZ, 1024 * 1024) < 0)
    {
      g_test_skip ("cannot enlarge the pipe");
      close (fds[0]);
      close (fds[1]);
      g_string_free (rec.data, TRUE);
      return;
    }
  rec.stream = uvm_stream_new (fds[0], "the test pipe", &rec_callbacks, &rec);
  uvm_stream_set_drain (rec.stream, TRUE);
  memset (blob, 'd', 4 * UVM_STREAM_READ_CHUNK);
  g_assert_cmpint (write (fds[1], blob, 4 * UVM_STREAM_READ_CHUNK), ==, 4 * UVM_STREAM_READ_CHUNK);

  g_assert_true (g_main_context_iteration (NULL, FALSE));
  g_assert_cmpuint (rec.data->len, ==, 4 * UVM_STREAM_READ_CHUNK);
  g_assert_cmpuint (rec.n_data, >=, 4);

  /* EOF in the same wake-up as the last bytes. */
  g_assert_cmpint (write (fds[1], "end", 3), ==, 3);
  close (fds[1]);
  g_assert_true (g_main_context_iteration (NULL, FALSE));
  g_assert_cmpuint (rec.data->len, ==, 4 * UVM_STREAM_READ_CHUNK + 3);
  g_assert_cmpuint (rec.n_closed, ==, 1);
  g_assert_no_error (rec.error);

  rec_clear (&rec);
}

/* EOF closes the stream and calls closed once, without an error. */
static void
test_eof_closes_once (void)
{
  Rec rec;
  int peer;

  rec_start (&rec, &peer);
  g_assert_cmpint (write (peer, "bye", 3), ==, 3);
  close (peer);
  WAIT_UNTIL (rec.n_closed > 0);
  g_assert_cmpstr (rec.data->str, ==, "bye");
  g_assert_no_error (rec.error);
  g_assert_true (uvm_stream_is_closed (rec.stream));
  iterate_briefly ();
  g_assert_cmpuint (rec.n_closed, ==, 1);
  rec_clear (&rec);
}

/* Closing or freeing the stream from inside the data callback: nothing
 * more is read or called, even in drain mode with more waiting; the peer
 * sees the socket closed. */
static void
check_ended_inside_data (Action action)
{
  Rec rec;
  int peer;

  rec_start (&rec, &peer);
  rec.on_data = action;
  uvm_stream_set_drain (rec.stream, TRUE);
  uvm_stream_set_read_budget (rec.stream, 1);
  g_assert_cmpint (write (peer, "abc", 3), ==, 3);
  WAIT_UNTIL (rec.n_data > 0);
  iterate_briefly ();
  g_assert_cmpuint (rec.n_data, ==, 1);
  g_assert_cmpstr (rec.data->str, ==, "a");
  g_assert_cmpuint (rec.n_closed, ==, 0);
  if (action == ACT_FREE)
    g_assert_null (rec.stream);
  else
    g_assert_true (uvm_stream_is_closed (rec.stream));
  g_assert_cmpint (send (peer, "d", 1, MSG_NOSIGNAL), ==, -1);
  g_assert_cmpint (errno, ==, EPIPE);
  rec_clear (&rec);
  close (peer);
}

static void
test_close_inside_data (void)
{
  check_ended_inside_data (ACT_CLOSE);
}

static void
test_free_inside_data (void)
{
  check_ended_inside_data (ACT_FREE);
}

static void
test_free_inside_closed (void)
{
  Rec rec;
  int peer;

  rec_start (&rec, &peer);
  rec.on_closed = ACT_FREE;
  close (peer);
  WAIT_UNTIL (rec.n_closed > 0);
  g_assert_null (rec.stream);
  iterate_briefly ();
  g_assert_cmpuint (rec.n_closed, ==, 1);
  rec_clear (&rec);
}

/* A write error pending (deferred) when the owner frees the stream: the
 * deferred close never calls back. */
static void
test_free_with_write_error_pending (void)
{
  Rec rec;
  int peer;
  UvmStreamChunk *a = chunk_of ("a\n", NULL, 0);

  rec_start (&rec, &peer);
  g_assert_no_errno (shutdown (peer, SHUT_RD));
  uvm_stream_push (rec.stream, a);
  g_clear_pointer (&rec.stream, uvm_stream_free);
  iterate_briefly ();
  g_assert_cmpuint (rec.n_closed, ==, 0);
  uvm_stream_chunk_release (a);
  rec_clear (&rec);
  close (peer);
}

/* The stream reads in the context that was thread-default when it was
 * created, and only there. */
static void
test_uses_thread_default_context (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec rec;
  int peer;

  g_main_context_push_thread_default (context);
  rec_start (&rec, &peer);
  g_main_context_pop_thread_default (context);

  g_assert_cmpint (write (peer, "x", 1), ==, 1);
  iterate_briefly ();
  g_assert_cmpuint (rec.n_data, ==, 0);
  while (rec.n_data == 0)
    g_main_context_iteration (context, TRUE);
  g_assert_cmpstr (rec.data->str, ==, "x");
  rec_clear (&rec);
  close (peer);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);

  g_test_add_func ("/stream/write/chunks-in-order-with-fds", test_chunks_in_order_with_fds);
  g_test_add_func ("/stream/write/held-until-pushed", test_held_until_pushed);
  g_test_add_func ("/stream/write/release-unstarted-drops-it", test_release_unstarted_drops_it);
  g_test_add_func ("/stream/write/release-partly-written-finishes-it",
                   test_release_partly_written_finishes_it);
  g_test_add_func ("/stream/write/stop-writing", test_stop_writing);
  g_test_add_func ("/stream/write/write-error-is-deferred", test_write_error_is_deferred);
  g_test_add_func ("/stream/write/close-unqueues", test_close_unqueues);
  g_test_add_func ("/stream/write/chunk-errors", test_chunk_errors);
  g_test_add_func ("/stream/read/budget", test_read_budget);
  g_test_add_func ("/stream/read/drain-reads-until-eagain", test_drain_reads_until_eagain);
  g_test_add_func ("/stream/read/eof-closes-once", test_eof_closes_once);
  g_test_add_func ("/stream/reentrancy/close-inside-data", test_close_inside_data);
  g_test_add_func ("/stream/reentrancy/free-inside-data", test_free_inside_data);
  g_test_add_func ("/stream/reentrancy/free-inside-closed", test_free_inside_closed);
  g_test_add_func ("/stream/reentrancy/free-with-write-error-pending",
                   test_free_with_write_error_pending);
  g_test_add_func ("/stream/uses-thread-default-context", test_uses_thread_default_context);

  return g_test_run ();
}
