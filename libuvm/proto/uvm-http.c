/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* HTTP/1.1 client for cloud-hypervisor's API socket.  See uvm-http.h for
 * the contract.
 *
 * The parser is pure and incremental.  It reads the header section a byte
 * at a time (it is capped at 16 KiB, so speed does not matter) and checks
 * each line as it completes, so garbage fails at its first line rather
 * than after 16 KiB.  It is strict where leniency would let the two sides
 * disagree about where a response ends: line endings must be CRLF (a bare
 * LF or CR is refused; micro-http always sends CRLF, and RFC 9112 only
 * allows, never requires, accepting a bare LF), Content-Length is digits
 * only with at most one distinct value, Transfer-Encoding is refused,
 * obsolete line folding and control characters (NUL included) are refused.
 *
 * The client, like the QMP client (uvm-qmp.c), runs its socket as a
 * UvmStream (uvm-stream.h) on one GMainContext, its pending requests as
 * UvmRequests (uvm-request.h), and keeps only the framing and the matching
 * here.  Unlike QMP, HTTP/1.1 keep-alive has one request
 * in flight: client->requests holds every request not yet answered, its
 * head is the one being written or awaiting its response, and only the
 * head is pushed to the stream, when it becomes the head.  A request cancelled once any byte of it is out stays at the head
 * without a task: the rest of it is still written (framing) and its
 * response read and dropped, so that the next response goes to the next
 * request.  One cancelled before that is never sent.
 *
 * Interim 1xx responses are skipped.  A response saying "Connection:
 * close", or one that arrives before its request was completely sent (the
 * rest would be read as another request), ends the connection once it is
 * delivered; the stream stops writing meanwhile, so requests behind it
 * fail rather than go to a peer that is leaving.
 *
 * A request is written at once from request_async when nothing is ahead of
 * it; a write error there is reported from an idle source by the stream,
 * never inside the call.
 *
 * Reentrancy: GTask may invoke a caller's callback synchronously when we
 * return a result from inside one of our own sources.  The callback may
 * issue requests, close or unref the client, so whoever calls out holds a
 * reference, takes its own entries out of shared structures first, and
 * checks client->closed afterwards. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-http.h"
#include "proto/uvm-request.h"
#include "proto/uvm-stream.h"

#include <uvm/uvm-error.h>

#include <string.h>

#include <json-glib/json-glib.h>

/* Longest header section (status line, fields, blank line) accepted. */
#define MAX_HEAD 16384

/* ---- responses -------------------------------------------------------- */

void
uvm_http_response_free (UvmHttpResponse *response)
{
  if (response == NULL)
    return;
  g_free (response->reason);
  g_free (response->body);
  g_free (response);
}

/* A JSON array of strings joined with ": ", or NULL if @text is not one
 * (or is an empty one). */
static char *
join_json_string_array (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GString) joined = NULL;
  JsonNode *root;
  JsonArray *array;
  guint n;

  if (!json_parser_load_from_data (parser, text, -1, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    return NULL;
  array = json_node_get_array (root);
  n = json_array_get_length (array);
  if (n == 0)
    return NULL;

  joined = g_string_new (NULL);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
        return NULL;
      if (i > 0)
        g_string_append (joined, ": ");
      g_string_append (joined, json_node_get_string (element));
    }
  return g_string_free (g_steal_pointer (&joined), FALSE);
}

char *
uvm_http_response_error_text (const UvmHttpResponse *response)
{
  g_autofree char *text = NULL;
  char *joined;

  g_return_val_if_fail (response != NULL, NULL);

  /* Up to a NUL, if the body has one: this is for a message. */
  text = g_strndup (response->body != NULL ? response->body : "", response->body_len);
  g_strstrip (text);
  if (*text == '\0')
    {
      g_autofree char *reason = NULL;

      if (response->reason == NULL || *response->reason == '\0')
        return g_strdup_printf ("HTTP %u", response->status);
      reason = g_utf8_make_valid (response->reason, -1);
      return g_strdup_printf ("HTTP %u %s", response->status, reason);
    }

  /* cloud-hypervisor v47 and later: ["Error booting VM","InvalidPayload"],
   * outermost context first. */
  joined = join_json_string_array (text);
  if (joined != NULL)
    return joined;
  return g_utf8_make_valid (text, -1);
}

/* ---- the parser ------------------------------------------------------- */

typedef enum {
  PARSE_HEAD,        /* in the header section */
  PARSE_BODY,        /* reading Content-Length bytes */
  PARSE_BODY_TO_EOF, /* "Connection: close" without Content-Length */
  PARSE_FAILED,      /* after an error, until reset */
} ParseState;

struct _UvmHttpParser {
  gsize       max_response;
  ParseState  state;

  GString    *line;     /* the header line being read, CRLF included */
  gsize       head_len; /* bytes of the header section so far */
  gboolean    have_status;
  guint       status;
  char       *reason;
  gboolean    have_length;
  guint64     length;
  gboolean    connection_close;

  GString    *body;

  /* Whether the last complete response said "Connection: close": the
   * client then knows the peer is about to hang up. */
  gboolean    last_connection_close;
};

static void
parser_clear_response (UvmHttpParser *parser)
{
  g_string_truncate (parser->line, 0);
  parser->head_len = 0;
  parser->have_status = FALSE;
  parser->status = 0;
  g_clear_pointer (&parser->reason, g_free);
  parser->have_length = FALSE;
  parser->length = 0;
  parser->connection_close = FALSE;
  g_string_truncate (parser->body, 0);
}

UvmHttpParser *
uvm_http_parser_new (gsize max_response)
{
  UvmHttpParser *parser;

  g_return_val_if_fail (max_response > 0, NULL);

  parser = g_new0 (UvmHttpParser, 1);
  parser->max_response = max_response;
  parser->state = PARSE_HEAD;
  parser->line = g_string_new (NULL);
  parser->body = g_string_new (NULL);
  return parser;
}

void
uvm_http_parser_free (UvmHttpParser *parser)
{
  if (parser == NULL)
    return;
  g_string_free (parser->line, TRUE);
  g_string_free (parser->body, TRUE);
  g_free (parser->reason);
  g_free (parser);
}

void
uvm_http_parser_reset (UvmHttpParser *parser)
{
  g_return_if_fail (parser != NULL);

  parser_clear_response (parser);
  parser->state = PARSE_HEAD;
}

static UvmHttpParseResult parser_fail (UvmHttpParser *parser, GError **error,
                                       const char *format, ...) G_GNUC_PRINTF (3, 4);

static UvmHttpParseResult
parser_fail (UvmHttpParser *parser, GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL)
    *error = g_error_new_valist (UVM_ERROR, UVM_ERROR_PROTOCOL, format, args);
  va_end (args);
  parser_clear_response (parser);
  parser->state = PARSE_FAILED;
  return UVM_HTTP_PARSE_ERROR;
}

static gboolean
is_tchar (char c)
{
  /* RFC 9110 token characters. */
  return g_ascii_isalnum (c) || (c != '\0' && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

/* "HTTP/1.x NNN reason", the reason possibly empty, its separating space
 * possibly missing when it is. */
static gboolean
parse_status_line (UvmHttpParser *parser, const char *line, gsize len)
{
  if (len < 12 || memcmp (line, "HTTP/1.", 7) != 0 || !g_ascii_isdigit (line[7]) ||
      line[8] != ' ' || !g_ascii_isdigit (line[9]) || !g_ascii_isdigit (line[10]) ||
      !g_ascii_isdigit (line[11]) || (len > 12 && line[12] != ' '))
    return FALSE;

  parser->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (parser->status < 100 || parser->status > 599)
    return FALSE;
  parser->reason = len > 13 ? g_strndup (line + 13, len - 13) : g_strdup ("");
  parser->have_status = TRUE;
  return TRUE;
}

static gboolean
is_ows (char c)
{
  return c == ' ' || c == '\t';
}

/* Whether the comma-separated list @value holds the token @token. */
static gboolean
list_has_token (const char *value, gsize len, const char *token)
{
  gsize token_len = strlen (token);
  gsize start = 0;

  while (start <= len)
    {
      const char *comma = memchr (value + start, ',', len - start);
      gsize end = comma != NULL ? (gsize) (comma - value) : len;
      gsize a = start, b = end;

      while (a < b && is_ows (value[a]))
        a++;
      while (b > a && is_ows (value[b - 1]))
        b--;
      if (b - a == token_len && g_ascii_strncasecmp (value + a, token, token_len) == 0)
        return TRUE;
      start = end + 1;
    }
  return FALSE;
}

static UvmHttpParseResult
parse_field (UvmHttpParser *parser, const char *line, gsize len, GError **error)
{
  const char *colon;
  gsize name_len, a, b;
  const char *value;
  gsize value_len;

  if (is_ows (line[0]))
    return parser_fail (parser, error, "HTTP response uses obsolete header line folding");
  colon = memchr (line, ':', len);
  if (colon == NULL || colon == line)
    return parser_fail (parser, error, "malformed HTTP header line");
  name_len = colon - line;
  for (gsize i = 0; i < name_len; i++)
    if (!is_tchar (line[i]))
      return parser_fail (parser, error, "malformed HTTP header name");

  a = name_len + 1;
  b = len;
  while (a < b && is_ows (line[a]))
    a++;
  while (b > a && is_ows (line[b - 1]))
    b--;
  value = line + a;
  value_len = b - a;

  if (name_len == 14 && g_ascii_strncasecmp (line, "Content-Length", 14) == 0)
    {
      guint64 length = 0;

      if (value_len == 0)
        return parser_fail (parser, error, "empty HTTP Content-Length");
      for (gsize i = 0; i < value_len; i++)
        {
          if (!g_ascii_isdigit (value[i]))
            return parser_fail (parser, error, "malformed HTTP Content-Length \"%.*s\"",
                                (int) MIN (value_len, 64), value);
          guint digit = value[i] - '0';

          if (length > (G_MAXUINT64 - digit) / 10)
            return parser_fail (parser, error, "HTTP Content-Length out of range");
          length = length * 10 + digit;
        }
      if (parser->have_length && parser->length != length)
        return parser_fail (parser, error, "conflicting HTTP Content-Length values %" G_GUINT64_FORMAT
                            " and %" G_GUINT64_FORMAT, parser->length, length);
      parser->have_length = TRUE;
      parser->length = length;
    }
  else if (name_len == 17 && g_ascii_strncasecmp (line, "Transfer-Encoding", 17) == 0)
    {
      /* micro-http never sends it; chunked decoding is not worth having. */
      return parser_fail (parser, error, "HTTP Transfer-Encoding \"%.*s\" is not supported",
                          (int) MIN (value_len, 64), value);
    }
  else if (name_len == 10 && g_ascii_strncasecmp (line, "Connection", 10) == 0)
    {
      if (list_has_token (value, value_len, "close"))
        parser->connection_close = TRUE;
    }
  return UVM_HTTP_PARSE_NEED_MORE;
}

static UvmHttpResponse *
parser_take_response (UvmHttpParser *parser)
{
  UvmHttpResponse *response = g_new0 (UvmHttpResponse, 1);

  response->status = parser->status;
  response->reason = g_steal_pointer (&parser->reason);
  response->body_len = parser->body->len;
  /* Not g_strndup, which stops at a NUL: the body may hold some. */
  response->body = g_malloc (parser->body->len + 1);
  memcpy (response->body, parser->body->str, parser->body->len + 1);
  parser->last_connection_close = parser->connection_close;
  parser_clear_response (parser);
  parser->state = PARSE_HEAD;
  return response;
}

/* Bytes the response may still grow by.  The cap can be lowered between
 * feeds (uvm_http_client_set_max_response()), hence no plain subtraction. */
static gsize
parser_room (UvmHttpParser *parser)
{
  gsize used = parser->head_len + parser->body->len;

  return parser->max_response > used ? parser->max_response - used : 0;
}

/* The blank line ended the header section: decides how the body ends. */
static UvmHttpParseResult
parse_head_done (UvmHttpParser *parser, GError **error)
{
  guint status = parser->status;

  if (status < 200 || status == 204 || status == 304)
    return UVM_HTTP_PARSE_DONE;
  if (parser->have_length)
    {
      if (parser->length > parser_room (parser))
        return parser_fail (parser, error, "HTTP response of %" G_GSIZE_FORMAT " + %" G_GUINT64_FORMAT
                            " bytes exceeds the limit of %" G_GSIZE_FORMAT,
                            parser->head_len, parser->length, parser->max_response);
      if (parser->length == 0)
        return UVM_HTTP_PARSE_DONE;
      parser->state = PARSE_BODY;
      return UVM_HTTP_PARSE_NEED_MORE;
    }
  if (parser->connection_close)
    {
      parser->state = PARSE_BODY_TO_EOF;
      return UVM_HTTP_PARSE_NEED_MORE;
    }
  return UVM_HTTP_PARSE_DONE;
}

/* Takes header bytes until the header section ends (DONE when the response
 * has no body, NEED_MORE with the state moved to a body state otherwise),
 * the input does, or an error. */
static UvmHttpParseResult
feed_head (UvmHttpParser *parser, const char *data, gsize len, gsize *used, GError **error)
{
  for (gsize i = 0; i < len; i++)
    {
      GString *line = parser->line;
      char c = data[i];
      char prev = line->len > 0 ? line->str[line->len - 1] : '\0';
      UvmHttpParseResult result;

      *used = i + 1;
      if (c == '\0')
        return parser_fail (parser, error, "NUL byte in the HTTP response header");
      if (prev == '\r' && c != '\n')
        return parser_fail (parser, error, "bare CR in the HTTP response header");
      if (c == '\n' && prev != '\r')
        return parser_fail (parser, error, "bare LF in the HTTP response header (CRLF required)");
      if ((((guchar) c < 0x20) && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
        return parser_fail (parser, error, "control character 0x%02x in the HTTP response header",
                            (guchar) c);
      if (parser->head_len >= MAX_HEAD)
        return parser_fail (parser, error, "HTTP response header exceeds %d bytes", MAX_HEAD);
      if (parser->head_len >= parser->max_response)
        return parser_fail (parser, error, "HTTP response exceeds the limit of %" G_GSIZE_FORMAT " bytes",
                            parser->max_response);

      g_string_append_c (line, c);
      parser->head_len++;
      if (c != '\n')
        continue;

      /* A complete line, without its CRLF: */
      if (!parser->have_status)
        {
          if (!parse_status_line (parser, line->str, line->len - 2))
            return parser_fail (parser, error, "malformed HTTP status line \"%.*s\"",
                                (int) MIN (line->len - 2, 64), line->str);
          result = UVM_HTTP_PARSE_NEED_MORE;
        }
      else if (line->len == 2)
        {
          g_string_truncate (line, 0);
          return parse_head_done (parser, error);
        }
      else
        result = parse_field (parser, line->str, line->len - 2, error);

      if (result == UVM_HTTP_PARSE_ERROR)
        return result;
      g_string_truncate (line, 0);
    }
  return UVM_HTTP_PARSE_NEED_MORE;
}

UvmHttpParseResult
uvm_http_parser_feed (UvmHttpParser    *parser,
                      const char       *data,
                      gsize             len,
                      gsize            *consumed,
                      UvmHttpResponse **response,
                      GError          **error)
{
  gsize offset = 0;

  g_return_val_if_fail (parser != NULL, UVM_HTTP_PARSE_ERROR);
  g_return_val_if_fail (data != NULL || len == 0, UVM_HTTP_PARSE_ERROR);
  g_return_val_if_fail (consumed != NULL, UVM_HTTP_PARSE_ERROR);
  g_return_val_if_fail (response != NULL && *response == NULL, UVM_HTTP_PARSE_ERROR);
  g_return_val_if_fail (error == NULL || *error == NULL, UVM_HTTP_PARSE_ERROR);

  *consumed = 0;
  if (parser->state == PARSE_FAILED)
    {
      g_set_error_literal (error, UVM_ERROR, UVM_ERROR_PROTOCOL,
                           "HTTP parser used after an error without a reset");
      return UVM_HTTP_PARSE_ERROR;
    }

  if (parser->state == PARSE_HEAD)
    {
      UvmHttpParseResult result = feed_head (parser, data, len, &offset, error);

      *consumed = offset;
      if (result == UVM_HTTP_PARSE_ERROR)
        return result;
      if (result == UVM_HTTP_PARSE_DONE)
        {
          *response = parser_take_response (parser);
          return result;
        }
      if (parser->state == PARSE_HEAD)
        return UVM_HTTP_PARSE_NEED_MORE;
    }

  if (parser->state == PARSE_BODY)
    {
      gsize want = parser->length - parser->body->len;
      gsize take = MIN (want, len - offset);

      g_string_append_len (parser->body, data + offset, take);
      offset += take;
      *consumed = offset;
      if (parser->body->len < parser->length)
        return UVM_HTTP_PARSE_NEED_MORE;
      *response = parser_take_response (parser);
      return UVM_HTTP_PARSE_DONE;
    }

  /* PARSE_BODY_TO_EOF: everything is body, up to the cap. */
  g_assert (parser->state == PARSE_BODY_TO_EOF);
  if (len - offset > parser_room (parser))
    {
      *consumed = len;
      return parser_fail (parser, error, "HTTP response exceeds the limit of %" G_GSIZE_FORMAT " bytes",
                          parser->max_response);
    }
  g_string_append_len (parser->body, data + offset, len - offset);
  *consumed = len;
  return UVM_HTTP_PARSE_NEED_MORE;
}

UvmHttpParseResult
uvm_http_parser_finish_eof (UvmHttpParser    *parser,
                            UvmHttpResponse **response,
                            GError          **error)
{
  g_return_val_if_fail (parser != NULL, UVM_HTTP_PARSE_ERROR);
  g_return_val_if_fail (response != NULL && *response == NULL, UVM_HTTP_PARSE_ERROR);
  g_return_val_if_fail (error == NULL || *error == NULL, UVM_HTTP_PARSE_ERROR);

  switch (parser->state)
    {
    case PARSE_HEAD:
      if (parser->head_len == 0)
        return UVM_HTTP_PARSE_NEED_MORE;
      g_set_error (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                   "connection closed after %" G_GSIZE_FORMAT " bytes of an HTTP response header",
                   parser->head_len);
      break;
    case PARSE_BODY:
      g_set_error (error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                   "connection closed after %" G_GSIZE_FORMAT " of %" G_GUINT64_FORMAT
                   " HTTP response body bytes", parser->body->len, parser->length);
      break;
    case PARSE_BODY_TO_EOF:
      *response = parser_take_response (parser);
      return UVM_HTTP_PARSE_DONE;
    case PARSE_FAILED:
    default:
      g_set_error_literal (error, UVM_ERROR, UVM_ERROR_PROTOCOL,
                           "HTTP parser used after an error without a reset");
      return UVM_HTTP_PARSE_ERROR;
    }
  parser_clear_response (parser);
  parser->state = PARSE_FAILED;
  return UVM_HTTP_PARSE_ERROR;
}

/* ---- the client ------------------------------------------------------- */

typedef enum {
  CLOSE_EOF,      /* the peer hung up (or said it would) */
  CLOSE_LOCAL,    /* uvm_http_client_close() */
  CLOSE_FINALIZE, /* the last reference went away */
  CLOSE_ERROR,    /* protocol, read or write error */
} CloseKind;

struct _UvmHttpClient {
  grefcount      ref_count;
  GMainContext  *context;
  UvmStream     *stream; /* NULL once closed */
  gboolean       closed;
  CloseKind      close_kind;
  GError        *close_error; /* for CLOSE_ERROR, reported to late callers */

  UvmHttpParser *parser;

  /* Unanswered requests (UvmRequest, uvm-request.h; "what" is e.g.
   * "PUT /api/v1/vm.boot", the chunk holds request line, header, body and
   * fds) in order; the head is being written or awaits its response, the
   * others are not pushed to the stream yet. */
  GQueue         requests;
  guint          timeout_ms; /* each request's deadline, 0 for none */

  UvmHttpClosedFunc closed_func;
  gpointer          closed_data;
};

static void client_shutdown (UvmHttpClient *client, CloseKind kind, const GError *error);

/* The error a request gets when the connection ends (or has ended) before
 * its response. */
static GError *
close_error_for (CloseKind kind, const GError *error, const char *what)
{
  switch (kind)
    {
    case CLOSE_EOF:
      return g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED,
                          "%s: the hypervisor closed the API connection", what);
    case CLOSE_LOCAL:
      return g_error_new (UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED, "%s: connection closed", what);
    case CLOSE_FINALIZE:
      return g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s: HTTP client released", what);
    case CLOSE_ERROR:
    default:
      return g_error_new (error->domain, error->code, "%s: %s", what, error->message);
    }
}

/* ---- output ----------------------------------------------------------- */

/* Pushes the head request to the stream (which writes it at once if it
 * can, calling nobody back).  Called whenever a request becomes the head:
 * issued with nothing ahead, or the one ahead answered or dropped. */
static void
send_head (UvmHttpClient *client)
{
  UvmRequest *r = g_queue_peek_head (&client->requests);

  if (r == NULL)
    return;
  g_debug ("HTTP -> %s", uvm_request_get_what (r));
  uvm_stream_push (client->stream, uvm_request_get_chunk (r));
}

/* ---- closing ---------------------------------------------------------- */

typedef struct {
  CloseKind     kind;
  const GError *error;
} ShutdownData;

/* Fails a request the connection's end leaves unanswered. */
static void
finish_on_shutdown (UvmRequest *request, gpointer user_data)
{
  ShutdownData *data = user_data;

  uvm_request_complete (request, NULL, (GDestroyNotify) uvm_http_response_free,
                        close_error_for (data->kind, data->error, uvm_request_get_what (request)));
}

/* Ends the connection once; see CloseKind.  @error only for CLOSE_ERROR. */
static void
client_shutdown (UvmHttpClient *client, CloseKind kind, const GError *error)
{
  ShutdownData data = { kind, error };

  if (client->closed)
    return;

  /* While finalizing the count is already zero and nobody may call back in. */
  if (kind != CLOSE_FINALIZE)
    uvm_http_client_ref (client);

  client->closed = TRUE;
  client->close_kind = kind;
  if (error != NULL)
    client->close_error = g_error_copy (error);

  /* The socket closes now; nothing queued goes out. */
  g_clear_pointer (&client->stream, uvm_stream_free);
  uvm_http_parser_reset (client->parser);

  /* Take everything out before calling out: callbacks may run synchronously
   * and must find the client in a consistent, closed state. */
  uvm_request_queue_finish_all (&client->requests, finish_on_shutdown, &data);

  if (kind != CLOSE_FINALIZE)
    {
      if (kind != CLOSE_LOCAL && client->closed_func != NULL)
        client->closed_func (client, kind == CLOSE_ERROR ? error : NULL, client->closed_data);
      uvm_http_client_unref (client);
    }
}

static void protocol_error (UvmHttpClient *client, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
protocol_error (UvmHttpClient *client, const char *format, ...)
{
  g_autoptr(GError) error = NULL;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (UVM_ERROR, UVM_ERROR_PROTOCOL, format, args);
  va_end (args);
  g_debug ("HTTP: %s", error->message);
  client_shutdown (client, CLOSE_ERROR, error);
}

/* ---- input ------------------------------------------------------------ */

/* A complete response (transfer full) for the head request. */
static void
handle_response (UvmHttpClient *client, UvmHttpResponse *response)
{
  gboolean closing = client->parser->last_connection_close;
  UvmRequest *r = g_queue_peek_head (&client->requests);
  gboolean answered_early;

  if (r == NULL) /* cannot happen: input is parsed only for a request */
    {
      uvm_http_response_free (response);
      protocol_error (client, "HTTP response with no request in flight");
      return;
    }
  g_debug ("HTTP <- %u %s (%" G_GSIZE_FORMAT " bytes) for %s", response->status,
           response->reason, response->body_len, uvm_request_get_what (r));

  /* An interim response (100 Continue and the like, which we never ask
   * for) precedes the real one. */
  if (response->status < 200)
    {
      uvm_http_response_free (response);
      return;
    }

  g_queue_pop_head (&client->requests);
  /* Answered before we finished sending it (a server refusing a request
   * can): the rest would be read as another request, so the connection is
   * out of step and ends after this response. */
  answered_early = !uvm_stream_chunk_sent (uvm_request_get_chunk (r));

  /* Nothing more is written, even for a request the callback issues. */
  if (closing || answered_early)
    uvm_stream_stop_writing (client->stream);
  else
    send_head (client); /* the next request, if any */

  if (!uvm_request_has_task (r))
    g_debug ("HTTP: discarding the response to %s, cancelled", uvm_request_get_what (r));
  uvm_request_complete (r, response, (GDestroyNotify) uvm_http_response_free, NULL);

  if (answered_early)
    protocol_error (client, "the hypervisor answered a request before it was completely sent");
  else if (closing)
    client_shutdown (client, CLOSE_EOF, NULL);
}

static void
process_input (UvmHttpClient *client, const char *data, gsize len)
{
  gsize offset = 0;

  while (offset < len && !client->closed)
    {
      UvmRequest *head = g_queue_peek_head (&client->requests);
      g_autoptr(GError) error = NULL;
      UvmHttpResponse *response = NULL;
      gsize consumed = 0;

      if (head == NULL || !uvm_request_on_wire (head))
        {
          protocol_error (client, "HTTP data from the hypervisor with no request in flight");
          return;
        }
      switch (uvm_http_parser_feed (client->parser, data + offset, len - offset,
                                    &consumed, &response, &error))
        {
        case UVM_HTTP_PARSE_NEED_MORE:
          return;
        case UVM_HTTP_PARSE_DONE:
          offset += consumed;
          handle_response (client, response);
          break;
        case UVM_HTTP_PARSE_ERROR:
        default:
          g_debug ("HTTP: %s", error->message);
          client_shutdown (client, CLOSE_ERROR, error);
          return;
        }
    }
}

static void
handle_eof (UvmHttpClient *client)
{
  g_autoptr(GError) error = NULL;
  UvmHttpResponse *response = NULL;

  switch (uvm_http_parser_finish_eof (client->parser, &response, &error))
    {
    case UVM_HTTP_PARSE_DONE:
      /* A body that ran to EOF: the request is on the wire, or the parser
       * would have had no bytes. */
      handle_response (client, response);
      client_shutdown (client, CLOSE_EOF, NULL);
      break;
    case UVM_HTTP_PARSE_ERROR:
      g_debug ("HTTP: %s", error->message);
      client_shutdown (client, CLOSE_ERROR, error);
      break;
    case UVM_HTTP_PARSE_NEED_MORE:
    default:
      client_shutdown (client, CLOSE_EOF, NULL);
      break;
    }
}

static void
on_data (G_GNUC_UNUSED UvmStream *stream,
         const guint8            *bytes,
         gsize                    len,
         gpointer                 user_data)
{
  UvmHttpClient *client = user_data;

  /* The parser holds at most max_response bytes, so reads of the stream's
   * default size buffer nothing unbounded. */
  uvm_http_client_ref (client);
  process_input (client, (const char *) bytes, len);
  uvm_http_client_unref (client);
}

static void
on_closed (G_GNUC_UNUSED UvmStream *stream,
           const GError            *error,
           gpointer                 user_data)
{
  UvmHttpClient *client = user_data;

  if (error != NULL)
    client_shutdown (client, CLOSE_ERROR, error);
  else
    handle_eof (client);
}

/* ---- public API ------------------------------------------------------- */

UvmHttpClient *
uvm_http_client_new (int fd)
{
  static const UvmStreamCallbacks callbacks = { on_data, on_closed };
  UvmHttpClient *client;

  g_return_val_if_fail (fd >= 0, NULL);

  client = g_new0 (UvmHttpClient, 1);
  g_ref_count_init (&client->ref_count);
  client->context = g_main_context_ref_thread_default ();
  client->parser = uvm_http_parser_new (UVM_HTTP_DEFAULT_MAX_RESPONSE);
  g_queue_init (&client->requests);
  client->stream = uvm_stream_new (fd, "the API socket", &callbacks, client);

  return client;
}

UvmHttpClient *
uvm_http_client_ref (UvmHttpClient *client)
{
  g_return_val_if_fail (client != NULL, NULL);

  g_ref_count_inc (&client->ref_count);
  return client;
}

void
uvm_http_client_unref (UvmHttpClient *client)
{
  if (client == NULL || !g_ref_count_dec (&client->ref_count))
    return;

  client_shutdown (client, CLOSE_FINALIZE, NULL);

  uvm_http_parser_free (client->parser);
  g_clear_error (&client->close_error);
  g_main_context_unref (client->context);
  g_free (client);
}

void
uvm_http_client_set_closed_handler (UvmHttpClient    *client,
                                    UvmHttpClosedFunc func,
                                    gpointer          user_data)
{
  g_return_if_fail (client != NULL);

  client->closed_func = func;
  client->closed_data = user_data;
}

void
uvm_http_client_set_request_timeout (UvmHttpClient *client, guint timeout_ms)
{
  g_return_if_fail (client != NULL);

  client->timeout_ms = timeout_ms;
}

void
uvm_http_client_set_max_response (UvmHttpClient *client, gsize max_bytes)
{
  g_return_if_fail (client != NULL);
  g_return_if_fail (max_bytes > 0);

  client->parser->max_response = max_bytes;
}

/* A request cancelled before any byte went out has left the queue: if it
 * was next in line, the one behind it is. */
static void
on_request_dropped (gboolean was_head, gpointer user_data)
{
  if (was_head)
    send_head (user_data);
}

/* A request's deadline passed (see uvm-request.h): whether it was waiting
 * for its response or behind another, the server is hung, and a response
 * still to come could not be told from the next one's, so the connection
 * ends with the same error.  Even a cancelled request's: the connection is
 * in step only once its response has been read. */
static void
on_request_expired (UvmRequest *request, GError *error, gpointer user_data)
{
  UvmHttpClient *client = user_data;
  g_autoptr(GError) shutdown_error = g_error_copy (error);

  g_debug ("HTTP: %s", error->message);
  uvm_http_client_ref (client);
  g_queue_remove (&client->requests, request);
  /* Nothing more goes out, even for a request the callback issues. */
  uvm_stream_stop_writing (client->stream);
  uvm_request_complete (request, NULL, (GDestroyNotify) uvm_http_response_free, error);
  client_shutdown (client, CLOSE_ERROR, shutdown_error);
  uvm_http_client_unref (client);
}

static gboolean
is_valid_method (const char *method)
{
  if (*method == '\0')
    return FALSE;
  for (const char *p = method; *p != '\0'; p++)
    if (!is_tchar (*p))
      return FALSE;
  return TRUE;
}

static gboolean
is_valid_target (const char *path)
{
  if (*path != '/')
    return FALSE;
  for (const char *p = path; *p != '\0'; p++)
    if ((guchar) *p <= 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static GBytes *
request_serialize (const char *method, const char *path, const char *body)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "%s %s HTTP/1.1\r\n"
                                "Host: localhost\r\n"
                                "Accept: application/json\r\n", method, path);
  if (body != NULL)
    g_string_append_printf (text, "Content-Type: application/json\r\n"
                                  "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n%s",
                            strlen (body), body);
  else if (!g_str_equal (method, "GET") && !g_str_equal (method, "HEAD"))
    /* Methods with content say it is empty (RFC 9110 §8.6). */
    g_string_append (text, "Content-Length: 0\r\n\r\n");
  else
    g_string_append (text, "\r\n");

  return g_string_free_to_bytes (text);
}

void
uvm_http_client_request_async (UvmHttpClient      *client,
                               const char         *method,
                               const char         *path,
                               const char         *body,
                               const int          *fds,
                               guint               n_fds,
                               GCancellable       *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer            user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *what = NULL;
  UvmStreamChunk *chunk;
  UvmRequest *r;

  g_return_if_fail (client != NULL);
  g_return_if_fail (method != NULL && is_valid_method (method));
  g_return_if_fail (path != NULL && is_valid_target (path));
  g_return_if_fail (fds != NULL || n_fds == 0);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, uvm_http_client_request_async);
  what = g_strdup_printf ("%s %s", method, path);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (client->closed)
    {
      g_task_return_error (task, close_error_for (client->close_kind, client->close_error, what));
      return;
    }
  /* Too many fds, or one that cannot be duplicated (the stream keeps its
   * own copies, so the caller may close theirs at once). */
  bytes = request_serialize (method, path, body);
  chunk = uvm_stream_chunk_new (bytes, fds, n_fds, &error);
  if (chunk == NULL)
    {
      g_prefix_error (&error, "%s: ", what);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  r = uvm_request_new (g_steal_pointer (&task), chunk, what);
  uvm_request_attach_cancellable (r, cancellable, client->context, &client->requests,
                                  "[uvm] HTTP cancel", "HTTP", on_request_dropped, client);
  uvm_request_set_deadline (r, client->timeout_ms, client->context, "[uvm] HTTP deadline",
                            on_request_expired, client);
  g_queue_push_tail (&client->requests, r);

  /* Straight to the socket when nothing is ahead.  This calls nobody back:
   * a write error is reported from an idle source, and the task completes
   * from the main loop at the earliest. */
  if (g_queue_peek_head (&client->requests) == r)
    send_head (client);
}

/* Never touches @client: with unref, callbacks may run while it is being
 * finalized. */
UvmHttpResponse *
uvm_http_client_request_finish (G_GNUC_UNUSED UvmHttpClient *client,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == uvm_http_client_request_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

void
uvm_http_client_close (UvmHttpClient *client)
{
  g_return_if_fail (client != NULL);

  client_shutdown (client, CLOSE_LOCAL, NULL);
}
