/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The transport under the QMP client, the HTTP client and the
 * cloud-hypervisor event monitor: one file descriptor, read and (for a
 * socket) written from the GMainContext that was thread-default when the
 * stream was created; no threads.  It knows nothing of framing or of
 * requests: the owner frames what the data callback hands it, and decides
 * when each message it has built may go out.  Private to libuvm.
 *
 * Reading.  A GSource watches the fd.  Each wake-up reads at most the read
 * budget (so an owner with a size cap never has to buffer more than its cap
 * plus one read) and hands the bytes to the data callback; in drain mode a
 * wake-up goes on reading until the fd would block (for a pipe whose writer
 * drops what does not fit).  EOF or a read error closes the stream and calls
 * the closed callback.
 *
 * Writing.  A message is a chunk: bytes plus fds, which travel as
 * SCM_RIGHTS with its first byte.  The stream sends pushed chunks whole and
 * in push order (a partly written chunk is always finished before the next
 * starts, so the peer's framing holds), each written before push returns
 * when nothing is queued ahead of it and the rest from a G_IO_OUT source
 * that exists only while something is queued.  Holding a message back
 * (QMP commands until the handshake, HTTP requests until the previous
 * response) is the owner's business: it creates the chunk at call time
 * (the fds are duplicated then, so its caller may close its own) and pushes
 * it when it may go.
 *
 * Errors inside calls.  No uvm_stream_*() function calls the owner back.
 * A write error met inside one (push) only records the error, stops all
 * writing and closes the stream from an idle source, which then calls the
 * closed callback: owners promise their own callers that no callback runs
 * inside an API call.  A write error met in the G_IO_OUT source closes at
 * once.
 *
 * Reentrancy.  The callbacks run from the stream's sources only.  Inside
 * them the owner may call any uvm_stream_*() function on the stream, push,
 * close it or free it: the stream keeps itself alive until the callback
 * returns, and after a close or a free it calls nothing more, not even for
 * the rest of a drain.  The stream holds no reference to @user_data: an
 * owner whose callbacks may drop its own last reference holds one across
 * them. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The most bytes one read asks for, whatever the budget. */
#define UVM_STREAM_READ_CHUNK 65536

typedef struct _UvmStream      UvmStream;
typedef struct _UvmStreamChunk UvmStreamChunk;

typedef struct {
  /* @len (> 0) bytes were read; @bytes is valid until the call returns. */
  void (*data)   (UvmStream    *stream,
                  const guint8 *bytes,
                  gsize         len,
                  gpointer      user_data);
  /* Optional.  The stream ended by itself: EOF (@error NULL), a read error
   * or a write error (UVM_ERROR_HYPERVISOR_DIED "reading from <label>: ..."
   * or "writing to <label>: ...": the peer is gone), or the fd could not be
   * watched at all (UVM_ERROR_FAILED "watching <label>: ...", out of fds
   * or memory; reported from the main loop, as write errors met inside
   * uvm_stream_push() are).  It is already closed
   * when this runs.  Called at most once, and never after an explicit
   * uvm_stream_close() or uvm_stream_free(). */
  void (*closed) (UvmStream    *stream,
                  const GError *error,
                  gpointer      user_data);
} UvmStreamCallbacks;

/* Takes ownership of @fd (made non-blocking and close-on-exec) and starts
 * reading it at once in the thread-default main context.  @label names the
 * fd in error messages and source names, e.g. "the QMP socket".
 * @callbacks is copied.  Never fails: when the fd cannot be watched,
 * @callbacks.closed reports it from the main loop (see there). */
UvmStream *uvm_stream_new (int                       fd,
                           const char               *label,
                           const UvmStreamCallbacks *callbacks,
                           gpointer                  user_data);
/* Closes the stream if it is not yet and lets go of it.  Allowed inside a
 * callback (the memory then goes when the callback returns).  Accepts
 * NULL. */
void       uvm_stream_free (UvmStream *stream);
/* Closes the fd now: no more reading or writing, queued chunks are
 * unqueued (unsent; their fds closed; their handles stay valid), a pending
 * deferred close is cancelled, no callback runs any more.  Idempotent. */
void       uvm_stream_close (UvmStream *stream);
gboolean   uvm_stream_is_closed (UvmStream *stream);

/* The most bytes the next reads may hand over (at least 1, at most
 * UVM_STREAM_READ_CHUNK; the default).  An owner capping a message sets
 * its remaining room, so an oversized message is seen one read past the
 * cap instead of being buffered. */
void       uvm_stream_set_read_budget (UvmStream *stream, gsize max_bytes);
/* In drain mode every wake-up reads until EAGAIN (or EOF), calling the
 * data callback once per read, rather than reading once. */
void       uvm_stream_set_drain (UvmStream *stream, gboolean drain);
/* Reads and delivers everything the peer already sent, now, until EAGAIN,
 * EOF or a close: for a peer that has exited, whose last words must be
 * heard before its exit is reported.  The callbacks run from inside. */
void       uvm_stream_read_pending (UvmStream *stream);

/* A message to send: @bytes (referenced, not copied; not empty) and
 * duplicates (F_DUPFD_CLOEXEC) of @fds, which stay the caller's.  Fails
 * (UVM_ERROR_FAILED) with more fds than one SCM_RIGHTS message can carry
 * or when duplicating one fails.  The caller owns the handle, pushed or
 * not, until uvm_stream_chunk_release(). */
UvmStreamChunk *uvm_stream_chunk_new (GBytes     *bytes,
                                      const int  *fds,
                                      guint       n_fds,
                                      GError    **error);
/* Whether any byte has gone out: from then on the peer has part of the
 * message and it can no longer be taken back. */
gboolean        uvm_stream_chunk_started (const UvmStreamChunk *chunk);
/* Whether every byte has gone out. */
gboolean        uvm_stream_chunk_sent (const UvmStreamChunk *chunk);
/* The caller is done with @chunk.  One that has not started is dropped
 * (never sent; its fds closed).  One partly written is still finished,
 * since the peer needs the rest to find where the next message begins,
 * and freed by the stream then.  Accepts NULL. */
void            uvm_stream_chunk_release (UvmStreamChunk *chunk);

/* Queues @chunk (created, not pushed before) behind those pushed earlier,
 * and writes it before returning if nothing is queued ahead (never calling
 * back; see the top).  On a closed stream, or one that stopped writing, it
 * never goes out. */
void       uvm_stream_push (UvmStream *stream, UvmStreamChunk *chunk);
/* Writes nothing more, ever, not even the rest of a partly written chunk;
 * what is queued stays queued, its fds open, until the stream is closed.
 * For a peer that is leaving or out of step, which must be sent nothing
 * more while the owner completes what it can before closing. */
void       uvm_stream_stop_writing (UvmStream *stream);

G_END_DECLS
