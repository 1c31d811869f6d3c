/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTTP/1.1 response parser of the cloud-hypervisor API client, and the
 * responses it gives.  See uvm-http-parser.h for the contract.
 *
 * The parser is pure and incremental.  It reads the header section a byte
 * at a time (it is capped at 16 KiB, so speed does not matter) and checks
 * each line as it completes, so garbage fails at its first line rather
 * than after 16 KiB.  It is strict where leniency would let the two sides
 * disagree about where a response ends: line endings must be CRLF (a bare
 * LF or CR is refused; micro-http always sends CRLF, and RFC 9112 only
 * allows, never requires, accepting a bare LF), Content-Length is digits
 * only with at most one distinct value, Transfer-Encoding is refused,
 * obsolete line folding and control characters (NUL included) are refused. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-http-parser.h"

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

gboolean
uvm_http_is_tchar (char c)
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
    if (!uvm_http_is_tchar (line[i]))
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
 * feeds (uvm_http_parser_set_max_response()), hence no plain subtraction. */
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

void
uvm_http_parser_set_max_response (UvmHttpParser *parser, gsize max_response)
{
  g_return_if_fail (parser != NULL);
  g_return_if_fail (max_response > 0);

  parser->max_response = max_response;
}

gboolean
uvm_http_parser_last_said_close (const UvmHttpParser *parser)
{
  g_return_val_if_fail (parser != NULL, FALSE);

  return parser->last_connection_close;
}
