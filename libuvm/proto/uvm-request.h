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
 * cancels.  Private to libuvm. */
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
UvmStreamChunk *uvm_request_get_chunk (const UvmRequest *request);

/* Empties @queue first (callbacks find it consistent), then, in order,
 * frees each placeholder and hands each request with a task to @finish. */
void            uvm_request_queue_finish_all (GQueue               *queue,
                                              UvmRequestFinishFunc  finish,
                                              gpointer              user_data);

G_END_DECLS
