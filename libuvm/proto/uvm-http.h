/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small HTTP/1.1 client for cloud-hypervisor's API socket.
 *
 * Why our own: cloud-hypervisor takes file descriptors (tap fds for
 * vm.add-net) as SCM_RIGHTS on the same sendmsg() as the request bytes,
 * which no HTTP library can do.  Kept to what micro-http speaks: requests
 * with Content-Length (never chunked), keep-alive, one request in flight at
 * a time, responses with Content-Length or none (204).  Runs on the
 * GMainContext that was thread-default at creation; no threads. */
#pragma once

#include <gio/gio.h>

/* UvmHttpResponse and the response parser (used by the tests and fuzzers
 * through this header too). */
#include "proto/uvm-http-parser.h"

G_BEGIN_DECLS

#define UVM_HTTP_DEFAULT_MAX_RESPONSE (1024 * 1024)

/* ---- Client over a connected unix stream socket ----------------------- */

typedef struct _UvmHttpClient UvmHttpClient;

/* Takes ownership of @fd (made non-blocking, close-on-exec). */
UvmHttpClient *uvm_http_client_new (int fd);
UvmHttpClient *uvm_http_client_ref (UvmHttpClient *client);
/* Accepts NULL.  The last reference closes the socket; pending requests
 * fail with G_IO_ERROR_CANCELLED. */
void           uvm_http_client_unref (UvmHttpClient *client);
void           uvm_http_client_set_max_response (UvmHttpClient *client, gsize max_bytes);
/* Every request issued after this call must be answered within
 * @timeout_ms of being issued (queued time included); 0 (the default)
 * means no deadline.  When one passes, that request fails with
 * UVM_ERROR_TIMEOUT "<METHOD> <path>: no reply within <n> ms" and the
 * client closes: the socket is shut, and every other pending request (and
 * any issued later) fails with UVM_ERROR_TIMEOUT too. */
void           uvm_http_client_set_request_timeout (UvmHttpClient *client, guint timeout_ms);

/* Called once when the connection ends by itself: EOF (@error NULL), a
 * read, write or protocol error, or a request's deadline (@error set);
 * not for uvm_http_client_close() or the last unref.  Runs after the
 * pending requests have failed.  Replaces any earlier handler. */
typedef void (*UvmHttpClosedFunc) (UvmHttpClient *client,
                                   const GError  *error,
                                   gpointer       user_data);
void           uvm_http_client_set_closed_handler (UvmHttpClient    *client,
                                                   UvmHttpClosedFunc func,
                                                   gpointer          user_data);

/* Sends "@method @path HTTP/1.1" with Host: localhost, Accept:
 * application/json, and for a non-NULL @body Content-Type: application/json
 * and Content-Length (a PUT without body sends Content-Length: 0).
 * Requests are queued and sent one at a time, each after the previous
 * response.  @fds (not taken; dup'ed at call time) travel as SCM_RIGHTS
 * with the first byte of the request.  The request is written before this
 * returns when nothing is ahead of it.
 *
 * finish returns the response whatever its status (transfer full), or
 * NULL with: UVM_ERROR_HYPERVISOR_DIED (EOF or reset before a complete
 * response), UVM_ERROR_PROTOCOL (malformed, oversized), UVM_ERROR_TIMEOUT
 * (see uvm_http_client_set_request_timeout()), G_IO_ERROR_CANCELLED
 * (a request already sent is still answered; its response is read and
 * dropped so the connection stays in sync). */
void             uvm_http_client_request_async  (UvmHttpClient      *client,
                                                 const char         *method,
                                                 const char         *path,
                                                 const char         *body,
                                                 const int          *fds,
                                                 guint               n_fds,
                                                 GCancellable       *cancellable,
                                                 GAsyncReadyCallback callback,
                                                 gpointer            user_data);
UvmHttpResponse *uvm_http_client_request_finish (UvmHttpClient *client,
                                                 GAsyncResult  *result,
                                                 GError       **error);
void             uvm_http_client_close (UvmHttpClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmHttpClient, uvm_http_client_unref)

G_END_DECLS
