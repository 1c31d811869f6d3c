/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request-matching layer the QMP and HTTP clients share: one request
 * waiting for its reply, from the moment it is issued, in the owner's
 * queue (a GQueue of UvmRequest, in send order).  It holds the caller's
 * GTask, the request's bytes as a stream chunk (uvm-stream.h), a cancel
 * source and a description for messages.  The owner keeps what is
 * protocol-specific: framing, when a chunk is pushed, which reply belongs
 * to which request, and the errors a closed connection gives.
 *
 * Cancelling.  A request none of whose bytes has gone out is taken out of
 * the queue, freed (its chunk never goes out) and fails with
 * G_IO_ERROR_CANCELLED.  One on the wire cannot be taken back: the peer
 * will answer it, so it keeps its place as a placeholder without a task,
 * whose reply the owner completes like any other and which is dropped.
 * The cancel source runs in the owner's GMainContext whatever thread
 * cancels.
 *
 * Deadlines.  A request may be given a deadline, counted from when it is
 * issued (its owner sets it at once).  When it passes, the layer tells the
 * owner, with a UVM_ERROR_TIMEOUT error naming the request ("<what>: no
 * reply within <n> ms"); what follows is the owner's: both clients fail
 * the request and then shut the connection down, since a peer that does
 * not answer is out of step.  The timer is a GSource in the owner's
 * context, destroyed with the request.  The same timer, without a
 * request, serves deadlines that are not a request's (the QMP handshake).
 * Private to libuvm. */
#pragma once

#include <gio/gio.h>

#include "proto/uvm-stream.h"

G_BEGIN_DECLS

typedef struct _UvmRequest UvmRequest;

/* @request, cancelled before any byte went out, was just taken out of its
 * queue and freed; @was_head says it was at the queue's head then.  Runs
 * before the task fails, so the owner can push what is next in line. */
typedef void (*UvmRequestDroppedFunc) (gboolean was_head, gpointer user_data);

/* The connection is ending and @request (out of its queue, with a task)
 * must be completed now with uvm_request_complete(). */
typedef void (*UvmRequestFinishFunc) (UvmRequest *request, gpointer user_data);

/* The deadline of @request passed.  @request is still in its queue (with
 * or without a task: a placeholder's deadline passes too); the owner takes
 * it out and completes or frees it.  @error (transfer full) is
 * UVM_ERROR_TIMEOUT "<what>: no reply within <n> ms". */
typedef void (*UvmRequestExpiredFunc) (UvmRequest *request,
                                       GError     *error,
                                       gpointer    user_data);

/* Takes @task (may be NULL for a request whose reply nobody waits for),
 * @chunk and @what (e.g. "PUT /api/v1/vm.boot"; copied). */
UvmRequest     *uvm_request_new (GTask          *task,
                                 UvmStreamChunk *chunk,
                                 const char     *what);
/* Makes @cancellable (may be NULL: then nothing) cancel @request, which
 * sits in @queue, from a source attached to @context and named
 * @source_name (static).  See the top; @dropped (may be NULL) is told when
 * the request leaves the queue.  @log_prefix (static) starts debug lines.
 * @user_data is not referenced: the owner outlives its requests. */
void            uvm_request_attach_cancellable (UvmRequest            *request,
                                                GCancellable          *cancellable,
                                                GMainContext          *context,
                                                GQueue                *queue,
                                                const char            *source_name,
                                                const char            *log_prefix,
                                                UvmRequestDroppedFunc  dropped,
                                                gpointer               user_data);
/* Gives @request a deadline @timeout_ms from now (0: none, then nothing
 * happens), a source attached to @context and named @source_name
 * (static); @expired is called from it (see above).  At most once per
 * request.  @user_data is not referenced. */
void            uvm_request_set_deadline (UvmRequest            *request,
                                          guint                  timeout_ms,
                                          GMainContext          *context,
                                          const char            *source_name,
                                          UvmRequestExpiredFunc  expired,
                                          gpointer               user_data);
/* A one-shot timer of @timeout_ms (> 0) calling @func (@data) from
 * @context, named @source_name (static): the deadline of something that
 * is not a request.  The caller owns the returned source (destroy and
 * unref it). */
GSource        *uvm_deadline_source_new (guint         timeout_ms,
                                         GMainContext *context,
                                         const char   *source_name,
                                         GSourceFunc   func,
                                         gpointer      data);
/* UVM_ERROR_TIMEOUT "<what>: no <awaited> within <timeout_ms> ms", e.g.
 * "query-status: no reply within 5000 ms". */
GError         *uvm_deadline_error_new (const char *what,
                                        const char *awaited,
                                        guint       timeout_ms);

/* Frees @request, already out of its queue and without a task (or whose
 * task has been completed).  A chunk never sent is dropped; one partly
 * written is still finished.  Accepts NULL. */
void            uvm_request_free (UvmRequest *request);
/* Frees @request (already out of its queue) and completes its task, if it
 * still has one, with @error or else @result (both transfer full; @result
 * freed with @result_free when nobody takes it).  The task's callback may
 * run from inside, so the owner must be consistent before calling this. */
void            uvm_request_complete (UvmRequest     *request,
                                      gpointer        result,
                                      GDestroyNotify  result_free,
                                      GError         *error);
/* Whether any byte of it has gone out: it can no longer be taken back. */
gboolean        uvm_request_on_wire (const UvmRequest *request);
/* Whether a caller still waits for it (FALSE for a placeholder). */
gboolean        uvm_request_has_task (const UvmRequest *request);
const char     *uvm_request_get_what (const UvmRequest *request);
/* A number the owner matches replies with (QMP's "id"); 0 until set. */
void            uvm_request_set_id (UvmRequest *request, guint64 id);
guint64         uvm_request_get_id (const UvmRequest *request);
UvmStreamChunk *uvm_request_get_chunk (const UvmRequest *request);

/* Empties @queue first (callbacks find it consistent), then, in order,
 * frees each placeholder and hands each request with a task to @finish. */
void            uvm_request_queue_finish_all (GQueue               *queue,
                                              UvmRequestFinishFunc  finish,
                                              gpointer              user_data);

G_END_DECLS
