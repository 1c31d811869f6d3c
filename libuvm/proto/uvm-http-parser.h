/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTTP/1.1 response parser under the cloud-hypervisor API client
 * (uvm-http.h), and the responses it gives: pure, incremental, fuzzed
 * (tests/fuzz/fuzz-http.c) and unit-tested.  Private to libuvm. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  guint status;          /* e.g. 200, 204, 500 */
  char *reason;          /* reason phrase, may be "" */
  char *body;            /* NUL-terminated; "" when there was none */
  gsize body_len;
} UvmHttpResponse;

void uvm_http_response_free (UvmHttpResponse *response);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmHttpResponse, uvm_http_response_free)

/* The text of an error response for a GError: cloud-hypervisor v47 and
 * later send a JSON array of strings (joined with ": "), older ones plain
 * text; an empty body gives "HTTP <status> <reason>". */
char *uvm_http_response_error_text (const UvmHttpResponse *response);

/* ---- Incremental response parser (pure; fuzzed and unit-tested) ------- */

typedef struct _UvmHttpParser UvmHttpParser;

typedef enum {
  UVM_HTTP_PARSE_NEED_MORE,   /* consumed everything, response incomplete */
  UVM_HTTP_PARSE_DONE,        /* a response is complete; see *consumed */
  UVM_HTTP_PARSE_ERROR,       /* malformed or over the size cap; GError set */
} UvmHttpParseResult;

/* @max_response: the cap on a whole response (header section and body).
 * The client never sends HEAD, so no parameter says a body is absent. */
UvmHttpParser *uvm_http_parser_new (gsize max_response);
void           uvm_http_parser_free (UvmHttpParser *parser);
void           uvm_http_parser_reset (UvmHttpParser *parser);
/* Feeds @len bytes; sets *consumed to how many were used (bytes after a
 * complete response belong to the next one).  On DONE, *response receives
 * the response (transfer full) and the parser is ready for the next.
 * Rules: status line "HTTP/1.x NNN reason"; header names case-insensitive;
 * Content-Length (digits only, at most one distinct value) gives the body;
 * 1xx, 204 and 304 have no body; Transfer-Encoding is refused (micro-http
 * never sends it); no Content-Length on another status means an empty body
 * unless "Connection: close", then the body runs to EOF (see _finish_eof).
 * Header section capped at 16 KiB and the whole response at max_response:
 * UVM_ERROR_PROTOCOL beyond. */
UvmHttpParseResult uvm_http_parser_feed (UvmHttpParser *parser, const char *data, gsize len,
                                         gsize *consumed, UvmHttpResponse **response,
                                         GError **error);
/* At EOF: DONE with the response for a read-to-EOF body, else ERROR
 * (truncated) or NEED_MORE when nothing of a response had arrived. */
UvmHttpParseResult uvm_http_parser_finish_eof (UvmHttpParser *parser, UvmHttpResponse **response,
                                               GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmHttpParser, uvm_http_parser_free)

/* Lowers or raises the cap on a whole response; may be called between
 * feeds (a response already over the new cap fails at its next byte). */
void     uvm_http_parser_set_max_response (UvmHttpParser *parser, gsize max_response);
/* Whether the last complete response said "Connection: close": the peer
 * is about to hang up. */
gboolean uvm_http_parser_last_said_close (const UvmHttpParser *parser);

/* Whether @c may appear in an RFC 9110 token (header names, methods). */
gboolean uvm_http_is_tchar (char c);

G_END_DECLS
