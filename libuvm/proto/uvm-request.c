/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pending requests of the QMP and HTTP clients.  See uvm-request.h. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-request.h"

#include <uvm/uvm-error.h>

struct _UvmRequest {
  char           *what;
  /* NULL for a placeholder: a request cancelled once on the wire, whose
   * reply is still to come and is discarded. */
  GTask          *task;
  GSource        *cancel_source;
  UvmStreamChunk *chunk;
  guint64         id;

  /* The deadline's timer, and whom it tells (not a reference). */
  GSource               *deadline_source;
  guint                  timeout_ms;
  UvmRequestExpiredFunc  expired;
  gpointer               expired_data;

  /* For the cancel source; none is a reference (the owner outlives us). */
  GQueue                *queue;
  const char            *log_prefix;
  UvmRequestDroppedFunc  dropped;
  gpointer               user_data;
};

UvmRequest *
uvm_request_new (GTask *task, UvmStreamChunk *chunk, const char *what)
{
  UvmRequest *request = g_new0 (UvmRequest, 1);

  request->task = task;
  request->chunk = chunk;
  request->what = g_strdup (what);
  return request;
}

void
uvm_request_free (UvmRequest *request)
{
  if (request == NULL)
    return;
  g_assert (request->task == NULL);
  if (request->cancel_source != NULL)
    {
      g_source_destroy (request->cancel_source);
      g_clear_pointer (&request->cancel_source, g_source_unref);
    }
  if (request->deadline_source != NULL)
    {
      g_source_destroy (request->deadline_source);
      g_clear_pointer (&request->deadline_source, g_source_unref);
    }
  /* One never sent is dropped; one partly written is still finished
   * (unless the stream stopped writing). */
  uvm_stream_chunk_release (request->chunk);
  g_free (request->what);
  g_free (request);
}

void
uvm_request_complete (UvmRequest     *request,
                      gpointer        result,
                      GDestroyNotify  result_free,
                      GError         *error)
{
  GTask *task = g_steal_pointer (&request->task);

  uvm_request_free (request);
  if (task == NULL)
    {
      if (result != NULL && result_free != NULL)
        result_free (result);
      g_clear_error (&error);
      return;
    }
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, result, result_free);
  g_object_unref (task);
}

gboolean
uvm_request_on_wire (const UvmRequest *request)
{
  return uvm_stream_chunk_started (request->chunk);
}

gboolean
uvm_request_has_task (const UvmRequest *request)
{
  return request->task != NULL;
}

const char *
uvm_request_get_what (const UvmRequest *request)
{
  return request->what;
}

void
uvm_request_set_id (UvmRequest *request, guint64 id)
{
  request->id = id;
}

guint64
uvm_request_get_id (const UvmRequest *request)
{
  return request->id;
}

UvmStreamChunk *
uvm_request_get_chunk (const UvmRequest *request)
{
  return request->chunk;
}

static gboolean
on_cancelled (G_GNUC_UNUSED GCancellable *cancellable, gpointer user_data)
{
  UvmRequest *request = user_data;
  GTask *task = g_steal_pointer (&request->task);
  GError *error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s: cancelled", request->what);

  g_source_destroy (request->cancel_source);
  g_clear_pointer (&request->cancel_source, g_source_unref);
  if (!uvm_request_on_wire (request))
    {
      /* Not a byte out yet: it need not go out at all (freeing drops it
       * from the stream's queue, if it got there). */
      GQueue *queue = request->queue;
      UvmRequestDroppedFunc dropped = request->dropped;
      gpointer data = request->user_data;
      gboolean was_head = g_queue_peek_head (queue) == request;

      g_queue_remove (queue, request);
      uvm_request_free (request);
      if (dropped != NULL)
        dropped (was_head, data);
    }
  else
    {
      /* The peer will answer it (a partly written one is finished first,
       * to keep the framing): it stays in line, without a task, so that
       * its reply is dropped instead of going to the next request. */
      g_debug ("%s: %s cancelled after it was sent; its reply will be discarded",
               request->log_prefix, request->what);
    }

  /* Last: the callback may drop the owner. */
  g_task_return_error (task, error);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

void
uvm_request_attach_cancellable (UvmRequest            *request,
                                GCancellable          *cancellable,
                                GMainContext          *context,
                                GQueue                *queue,
                                const char            *source_name,
                                const char            *log_prefix,
                                UvmRequestDroppedFunc  dropped,
                                gpointer               user_data)
{
  g_return_if_fail (request->cancel_source == NULL);

  if (cancellable == NULL)
    return;
  request->queue = queue;
  request->log_prefix = log_prefix;
  request->dropped = dropped;
  request->user_data = user_data;
  /* A cancellable source rather than a "cancelled" handler: it runs in
   * the owner's context whatever thread cancels, and can be destroyed
   * from anywhere, including its own callback. */
  request->cancel_source = g_cancellable_source_new (cancellable);
  g_source_set_callback (request->cancel_source, G_SOURCE_FUNC (on_cancelled), request, NULL);
  g_source_set_static_name (request->cancel_source, source_name);
  g_source_attach (request->cancel_source, context);
}

GSource *
uvm_deadline_source_new (guint         timeout_ms,
                         GMainContext *context,
                         const char   *source_name,
                         GSourceFunc   func,
                         gpointer      data)
{
  GSource *source;

  g_return_val_if_fail (timeout_ms > 0, NULL);

  /* Monotonic, millisecond precision: deadlines are seconds long, and a
   * wall-clock jump must not fire them. */
  source = g_timeout_source_new (timeout_ms);
  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, source_name);
  g_source_attach (source, context);
  return source;
}

GError *
uvm_deadline_error_new (const char *what, const char *awaited, guint timeout_ms)
{
  return g_error_new (UVM_ERROR, UVM_ERROR_TIMEOUT, "%s: no %s within %u ms",
                      what, awaited, timeout_ms);
}

static gboolean
on_deadline (gpointer user_data)
{
  UvmRequest *request = user_data;

  g_source_destroy (request->deadline_source);
  g_clear_pointer (&request->deadline_source, g_source_unref);
  /* Last: the owner frees the request. */
  request->expired (request, uvm_deadline_error_new (request->what, "reply", request->timeout_ms),
                    request->expired_data);
  return G_SOURCE_REMOVE;
}

void
uvm_request_set_deadline (UvmRequest            *request,
                          guint                  timeout_ms,
                          GMainContext          *context,
                          const char            *source_name,
                          UvmRequestExpiredFunc  expired,
                          gpointer               user_data)
{
  g_return_if_fail (request->deadline_source == NULL);
  g_return_if_fail (expired != NULL);

  if (timeout_ms == 0)
    return;
  request->timeout_ms = timeout_ms;
  request->expired = expired;
  request->expired_data = user_data;
  request->deadline_source = uvm_deadline_source_new (timeout_ms, context, source_name,
                                                      on_deadline, request);
}

void
uvm_request_queue_finish_all (GQueue               *queue,
                              UvmRequestFinishFunc  finish,
                              gpointer              user_data)
{
  GQueue requests = *queue;
  UvmRequest *request;

  g_queue_init (queue);
  while ((request = g_queue_pop_head (&requests)) != NULL)
    {
      if (request->task == NULL)
        uvm_request_free (request);
      else
        finish (request, user_data);
    }
}
