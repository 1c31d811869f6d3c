/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Transport for the protocol clients.  See uvm-stream.h for the contract.
 *
 * Lifetime.  The owner holds one reference (uvm_stream_new() to
 * uvm_stream_free()); every call out to the owner holds another, so that
 * a stream freed inside its own callback is finalized only when the call
 * returns.  After any callback the stream checks whether it was closed
 * meanwhile before touching the fd again.
 *
 * Chunks have two holders: the owner's handle (until release) and the
 * queue (while pushed and not completely written).  A chunk is freed when
 * neither holds it.  Its bytes and fds go earlier: the fds once the kernel
 * has them (with the first byte), the bytes once all are written, so a
 * long-lived handle (QMP keeps one per command until the reply) costs
 * little. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-stream.h"
#include "util/uvm-fd-watch.h"

#include "util/uvm-util.h"

#include <uvm/uvm-error.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib-unix.h>

/* The kernel refuses more fds than this in one SCM_RIGHTS message
 * (SCM_MAX_FD). */
#define MAX_FDS 253

struct _UvmStreamChunk {
  GBytes    *bytes;    /* until completely written or unqueued */
  gsize      len;
  gsize      offset;   /* bytes already written */
  int       *fds;      /* our duplicates, until they went out or were dropped */
  guint      n_fds;
  UvmStream *stream;   /* while queued (then link is its node), else NULL */
  GList     *link;
  gboolean   released; /* the owner let go of its handle */
};

struct _UvmStream {
  guint               refs; /* the owner's, plus one per callout in progress */
  GMainContext       *context;
  int                 fd;   /* -1 once closed */
  gboolean            closed;
  char               *label;
  UvmStreamCallbacks  callbacks;
  gpointer            user_data;

  /* One watch for both directions (epoll takes an fd once): always
   * G_IO_IN, plus G_IO_OUT exactly while something may be written. */
  UvmFdWatch         *watch;
  guint8             *readbuf; /* UVM_STREAM_READ_CHUNK bytes */
  gsize               read_budget;
  gboolean            drain;

  GQueue              outq;       /* of UvmStreamChunk, in push order */
  gboolean            writing_stopped;
  /* A write error met inside a call (or the failure to watch the fd in
   * uvm_stream_new()), waiting for close_idle to close the stream; no more
   * writes are tried meanwhile. */
  GError             *write_error;
  GSource            *close_idle;
};

/* ---- small helpers ---------------------------------------------------- */

static void
close_fds (int *fds, guint n_fds)
{
  for (guint i = 0; i < n_fds; i++)
    if (fds[i] >= 0)
      close (fds[i]);
}

static GSource *
attach_source (UvmStream *stream, GSource *source, GSourceFunc func, const char *what)
{
  g_autofree char *name = g_strdup_printf ("[uvm] %s %s", what, stream->label);

  g_source_set_callback (source, func, stream, NULL);
  g_source_set_name (source, name);
  g_source_attach (source, stream->context);
  return source;
}

static void
stream_finalize (UvmStream *stream)
{
  uvm_stream_close (stream);
  g_free (stream->readbuf);
  g_free (stream->label);
  g_main_context_unref (stream->context);
  g_free (stream);
}

static void
stream_ref (UvmStream *stream)
{
  stream->refs++;
}

static void
stream_unref (UvmStream *stream)
{
  if (--stream->refs == 0)
    stream_finalize (stream);
}

/* ---- chunks ----------------------------------------------------------- */

static void
chunk_drop_fds (UvmStreamChunk *chunk)
{
  close_fds (chunk->fds, chunk->n_fds);
  g_clear_pointer (&chunk->fds, g_free);
  chunk->n_fds = 0;
}

static void
chunk_free (UvmStreamChunk *chunk)
{
  chunk_drop_fds (chunk);
  g_clear_pointer (&chunk->bytes, g_bytes_unref);
  g_free (chunk);
}

/* Takes @chunk off its stream's queue; frees it if the owner let go. */
static void
chunk_unqueue (UvmStreamChunk *chunk)
{
  UvmStream *stream = chunk->stream;

  g_queue_delete_link (&stream->outq, chunk->link);
  chunk->stream = NULL;
  chunk->link = NULL;
  /* Nothing more will be written from it. */
  chunk_drop_fds (chunk);
  g_clear_pointer (&chunk->bytes, g_bytes_unref);
  if (chunk->released)
    chunk_free (chunk);
}

UvmStreamChunk *
uvm_stream_chunk_new (GBytes     *bytes,
                      const int  *fds,
                      guint       n_fds,
                      GError    **error)
{
  UvmStreamChunk *chunk;
  g_autofree int *dups = NULL;

  g_return_val_if_fail (bytes != NULL && g_bytes_get_size (bytes) > 0, NULL);
  g_return_val_if_fail (fds != NULL || n_fds == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (n_fds > MAX_FDS)
    {
      g_set_error (error, UVM_ERROR, UVM_ERROR_FAILED, "too many file descriptors (%u)", n_fds);
      return NULL;
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
              g_set_error (error, UVM_ERROR, UVM_ERROR_FAILED, "duplicating fd %d: %s", fds[i],
                           g_strerror (saved_errno));
              return NULL;
            }
        }
    }

  chunk = g_new0 (UvmStreamChunk, 1);
  chunk->bytes = g_bytes_ref (bytes);
  chunk->len = g_bytes_get_size (bytes);
  chunk->fds = g_steal_pointer (&dups);
  chunk->n_fds = n_fds;
  return chunk;
}

gboolean
uvm_stream_chunk_started (const UvmStreamChunk *chunk)
{
  g_return_val_if_fail (chunk != NULL, FALSE);

  return chunk->offset > 0;
}

gboolean
uvm_stream_chunk_sent (const UvmStreamChunk *chunk)
{
  g_return_val_if_fail (chunk != NULL, FALSE);

  return chunk->offset == chunk->len;
}

static void update_out_watch (UvmStream *stream);

void
uvm_stream_chunk_release (UvmStreamChunk *chunk)
{
  UvmStream *stream;

  if (chunk == NULL)
    return;
  g_return_if_fail (!chunk->released);

  chunk->released = TRUE;
  stream = chunk->stream;
  if (stream == NULL)
    {
      chunk_free (chunk);
      return;
    }
  /* Partly written: the queue keeps it until its last byte is out. */
  if (chunk->offset > 0)
    return;
  chunk_unqueue (chunk);
  /* The one behind it, if any, may be next now. */
  update_out_watch (stream);
}

/* ---- closing ---------------------------------------------------------- */

void
uvm_stream_close (UvmStream *stream)
{
  UvmStreamChunk *chunk;

  g_return_if_fail (stream != NULL);

  if (stream->closed)
    return;
  stream->closed = TRUE;

  /* Before close(): epoll must not keep a closed fd's registration. */
  g_clear_pointer (&stream->watch, uvm_fd_watch_remove);
  uvm_source_clear (&stream->close_idle);
  g_clear_error (&stream->write_error);
  if (stream->fd >= 0)
    close (stream->fd);
  stream->fd = -1;

  while ((chunk = g_queue_peek_head (&stream->outq)) != NULL)
    chunk_unqueue (chunk);
}

/* The stream ended by itself: closes it, then tells the owner, who may
 * free it meanwhile. */
static void
stream_fail (UvmStream *stream, const GError *error)
{
  stream_ref (stream);
  uvm_stream_close (stream);
  if (stream->callbacks.closed != NULL)
    stream->callbacks.closed (stream, error, stream->user_data);
  stream_unref (stream);
}

/* ---- output ----------------------------------------------------------- */

static gboolean
may_write (UvmStream *stream)
{
  return !stream->closed && !stream->writing_stopped && stream->write_error == NULL;
}

static gboolean
wants_write (UvmStream *stream)
{
  return may_write (stream) && stream->outq.length > 0;
}

/* Watches G_IO_OUT exactly while something can be written, so the main
 * loop does not spin on an always-writable socket. */
static void
update_out_watch (UvmStream *stream)
{
  if (stream->watch != NULL)
    uvm_fd_watch_set_condition (stream->watch,
                                G_IO_IN | (wants_write (stream) ? G_IO_OUT : 0));
}

static ssize_t
send_chunk (int fd, UvmStreamChunk *chunk)
{
  struct iovec iov = {
    .iov_base = (char *) g_bytes_get_data (chunk->bytes, NULL) + chunk->offset,
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

/* Writes queued chunks until the queue is empty or the kernel would block.
 * Calls nobody.  FALSE on a write error, with its errno in @error_errno;
 * what was not written stays queued. */
static gboolean
write_queued (UvmStream *stream, int *error_errno)
{
  UvmStreamChunk *chunk;

  while ((chunk = g_queue_peek_head (&stream->outq)) != NULL)
    {
      ssize_t n = send_chunk (stream->fd, chunk);

      if (n < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return TRUE;
          *error_errno = errno;
          return FALSE;
        }

      /* The fds travel with the first byte; the kernel holds its own
       * references now. */
      if (n > 0)
        chunk_drop_fds (chunk);
      chunk->offset += n;
      if (chunk->offset == chunk->len)
        chunk_unqueue (chunk);
    }
  return TRUE;
}

static GError *
write_error_new (UvmStream *stream, int error_errno)
{
  /* EPIPE and friends: the peer is gone, as with EOF. */
  GError *error = g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED, "writing to %s: %s",
                               stream->label, g_strerror (error_errno));

  g_debug ("%s", error->message);
  return error;
}

static void
on_writable (UvmStream *stream)
{
  int error_errno = 0;

  if (!write_queued (stream, &error_errno))
    {
      g_autoptr(GError) error = write_error_new (stream, error_errno);

      stream_fail (stream, error);
      return;
    }

  update_out_watch (stream);
}

static gboolean
on_deferred_close (gpointer user_data)
{
  UvmStream *stream = user_data;
  g_autoptr(GError) error = g_steal_pointer (&stream->write_error);

  /* The context keeps the source alive until we return. */
  g_clear_pointer (&stream->close_idle, g_source_unref);
  stream_fail (stream, error);
  return G_SOURCE_REMOVE;
}

/* Closes the stream with @error (taken) from an idle, for a failure met
 * where the owner may not expect to be called back. */
static void
fail_later (UvmStream *stream, GError *error)
{
  GSource *idle = g_idle_source_new ();

  stream->write_error = error;
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  stream->close_idle = attach_source (stream, idle, on_deferred_close, "deferred close of");
}

void
uvm_stream_push (UvmStream *stream, UvmStreamChunk *chunk)
{
  int error_errno = 0;

  g_return_if_fail (stream != NULL);
  g_return_if_fail (chunk != NULL && !chunk->released);
  g_return_if_fail (chunk->stream == NULL && chunk->offset == 0 && chunk->bytes != NULL);

  if (stream->closed)
    return;
  g_queue_push_tail (&stream->outq, chunk);
  chunk->stream = stream;
  chunk->link = stream->outq.tail;

  /* Straight to the socket when nothing is ahead, saving a main-loop
   * iteration.  Our callers' callers may not expect to be called back
   * from inside: a write error only schedules the close. */
  if (stream->outq.head == chunk->link && may_write (stream) &&
      !write_queued (stream, &error_errno))
    fail_later (stream, write_error_new (stream, error_errno));
  update_out_watch (stream);
}

void
uvm_stream_stop_writing (UvmStream *stream)
{
  g_return_if_fail (stream != NULL);

  stream->writing_stopped = TRUE;
  update_out_watch (stream);
}

/* ---- input ------------------------------------------------------------ */

/* Reads once, or until EAGAIN when @all; stops at EOF or when closed. */
static void
read_available (UvmStream *stream, gboolean all)
{
  do
    {
      ssize_t n;
      int saved_errno;

      do
        n = read (stream->fd, stream->readbuf, stream->read_budget);
      while (n < 0 && errno == EINTR);
      saved_errno = errno;

      if (n < 0 && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
        break;
      if (n < 0)
        {
          g_autoptr(GError) error = g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                                                 "reading from %s: %s", stream->label,
                                                 g_strerror (saved_errno));
          g_debug ("%s", error->message);
          stream_fail (stream, error);
        }
      else if (n == 0)
        stream_fail (stream, NULL);
      else
        stream->callbacks.data (stream, stream->readbuf, n, stream->user_data);
    }
  /* Until EAGAIN in drain mode, unless the owner closed us meanwhile. */
  while (all && !stream->closed);
}

/* HUP and ERR come with either direction, as poll() reports them to
 * both of GLib's fd sources; the read goes first and sees the EOF or the
 * error, as when the read source was the older one. */
static gboolean
on_ready (G_GNUC_UNUSED int fd,
          GIOCondition      condition,
          gpointer          user_data)
{
  UvmStream *stream = user_data;
  gboolean keep;

  stream_ref (stream);
  if (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR))
    read_available (stream, stream->drain);
  if (condition & (G_IO_OUT | G_IO_HUP | G_IO_ERR) && wants_write (stream))
    on_writable (stream);
  keep = !stream->closed;
  stream_unref (stream);

  return keep ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

void
uvm_stream_read_pending (UvmStream *stream)
{
  g_return_if_fail (stream != NULL);

  if (stream->closed)
    return;
  stream_ref (stream);
  read_available (stream, TRUE);
  stream_unref (stream);
}

/* ---- the stream ------------------------------------------------------- */

UvmStream *
uvm_stream_new (int                       fd,
                const char               *label,
                const UvmStreamCallbacks *callbacks,
                gpointer                  user_data)
{
  UvmStream *stream;
  g_autoptr(GError) watch_error = NULL;
  int flags;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (label != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL && callbacks->data != NULL, NULL);

  flags = fcntl (fd, F_GETFD);
  if (flags >= 0)
    fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);

  stream = g_new0 (UvmStream, 1);
  stream->refs = 1;
  stream->context = g_main_context_ref_thread_default ();
  stream->fd = fd;
  stream->label = g_strdup (label);
  stream->callbacks = *callbacks;
  stream->user_data = user_data;
  stream->readbuf = g_malloc (UVM_STREAM_READ_CHUNK);
  stream->read_budget = UVM_STREAM_READ_CHUNK;
  g_queue_init (&stream->outq);

  /* HUP and ERR wake us too (always), for a read that then sees EOF or the error. */
  stream->watch = uvm_fd_watch_add (stream->context, fd, G_IO_IN, on_ready, stream, &watch_error);
  if (stream->watch == NULL)
    {
      /* Out of fds or memory: the stream cannot work, and ends as after an
       * I/O error, from the main loop (the owner is not ready for a
       * callback before this returns). */
      GError *stream_error = g_error_new (UVM_ERROR, UVM_ERROR_FAILED, "watching %s: %s",
                                          stream->label, watch_error->message);

      g_debug ("%s", stream_error->message);
      fail_later (stream, stream_error);
    }
  return stream;
}

void
uvm_stream_free (UvmStream *stream)
{
  if (stream == NULL)
    return;

  uvm_stream_close (stream);
  stream_unref (stream);
}

gboolean
uvm_stream_is_closed (UvmStream *stream)
{
  g_return_val_if_fail (stream != NULL, TRUE);

  return stream->closed;
}

void
uvm_stream_set_read_budget (UvmStream *stream, gsize max_bytes)
{
  g_return_if_fail (stream != NULL);

  stream->read_budget = CLAMP (max_bytes, 1, UVM_STREAM_READ_CHUNK);
}

void
uvm_stream_set_drain (UvmStream *stream, gboolean drain)
{
  g_return_if_fail (stream != NULL);

  stream->drain = drain;
}
