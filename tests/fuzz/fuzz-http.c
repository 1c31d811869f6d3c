/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the HTTP response parser (uvm-http-parser.h) with what a hostile or
 * broken cloud-hypervisor could send on its API socket: a stream of
 * responses (keep-alive), then EOF.
 *
 * Each input is parsed twice: in one piece, and one byte per feed.  Both
 * must give the same responses and end the same way, because a socket may
 * cut the stream anywhere.  Every response must be well formed (a status of
 * three digits, a NUL-terminated body of body_len bytes) and its error text
 * must be computable. */
#include "fuzz-common.h"

#include "proto/uvm-http-parser.h"

#include <string.h>

/* Small, so that inputs of a few KiB reach the size cap. */
#define MAX_RESPONSE 2048

typedef enum { END_EOF_CLEAN, END_EOF_DONE, END_ERROR } End;

typedef struct {
  GString *log;  /* one line per response: status, reason, body (escaped) */
  End      end;
} Outcome;

/* The body may hold NULs, which g_strescape() would stop at. */
static char *
escape_bytes (const char *data, gsize len)
{
  GString *out = g_string_sized_new (len);

  for (gsize i = 0; i < len; i++)
    {
      guchar c = data[i];

      if (c >= 0x20 && c < 0x7f && c != '\\')
        g_string_append_c (out, c);
      else
        g_string_append_printf (out, "\\x%02x", c);
    }
  return g_string_free (out, FALSE);
}

static void
record (Outcome *out, UvmHttpResponse *response)
{
  g_autofree char *reason = NULL, *body = NULL, *text = NULL;

  FUZZ_CHECK (response != NULL);
  FUZZ_CHECK (response->status >= 100 && response->status <= 999);
  FUZZ_CHECK (response->reason != NULL && response->body != NULL);
  FUZZ_CHECK (response->body[response->body_len] == '\0');
  FUZZ_CHECK (response->body_len <= MAX_RESPONSE);
  text = uvm_http_response_error_text (response);
  FUZZ_CHECK (text != NULL);
  reason = g_strescape (response->reason, NULL);
  body = escape_bytes (response->body, response->body_len);
  g_string_append_printf (out->log, "%u %s [%" G_GSIZE_FORMAT "] %s\n", response->status, reason,
                          response->body_len, body);
  uvm_http_response_free (response);
}

/* Feeds @data in pieces of at most @piece bytes, as a client would from its
 * reads, then EOF. */
static void
parse (const guint8 *data, gsize size, gsize piece, Outcome *out)
{
  g_autoptr(UvmHttpParser) parser = uvm_http_parser_new (MAX_RESPONSE);
  gsize at = 0;
  guint empty_dones = 0;

  out->log = g_string_new (NULL);
  while (at < size)
    {
      gsize len = MIN (piece, size - at);
      gsize used = 0;

      /* A read's bytes are fed until the parser has taken all of them: a
       * complete response leaves the rest for the next. */
      while (len > 0)
        {
          UvmHttpResponse *response = NULL;
          GError *error = NULL;
          UvmHttpParseResult r;

          used = G_MAXSIZE;
          r = uvm_http_parser_feed (parser, (const char *) data + at, len, &used, &response, &error);
          FUZZ_CHECK (used <= len);
          if (r == UVM_HTTP_PARSE_ERROR)
            {
              FUZZ_CHECK (error != NULL && response == NULL);
              g_error_free (error);
              out->end = END_ERROR;
              return;
            }
          FUZZ_CHECK (error == NULL);
          if (r == UVM_HTTP_PARSE_DONE)
            record (out, response);
          else
            {
              FUZZ_CHECK (response == NULL);
              FUZZ_CHECK (used == len);
            }
          /* Feeding the same bytes again without progress must not give
           * responses forever. */
          empty_dones = used == 0 ? empty_dones + 1 : 0;
          FUZZ_CHECK (empty_dones <= 1);
          at += used;
          len -= used;
        }
    }

  {
    UvmHttpResponse *response = NULL;
    GError *error = NULL;

    switch (uvm_http_parser_finish_eof (parser, &response, &error))
      {
      case UVM_HTTP_PARSE_DONE:
        FUZZ_CHECK (error == NULL);
        record (out, response);
        out->end = END_EOF_DONE;
        break;
      case UVM_HTTP_PARSE_NEED_MORE:
        FUZZ_CHECK (error == NULL && response == NULL);
        out->end = END_EOF_CLEAN;
        break;
      case UVM_HTTP_PARSE_ERROR:
        FUZZ_CHECK (error != NULL && response == NULL);
        g_error_free (error);
        out->end = END_ERROR;
        break;
      default:
        FUZZ_CHECK (!"finish_eof returned no UvmHttpParseResult");
      }
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Outcome whole = { NULL }, bytewise = { NULL };

  fuzz_fatal_warnings ();
  parse (data, size, G_MAXSIZE, &whole);
  parse (data, size, 1, &bytewise);
  if (whole.end != bytewise.end || strcmp (whole.log->str, bytewise.log->str) != 0)
    {
      fprintf (stderr, "in one piece (end %d):\n%s\none byte at a time (end %d):\n%s\n",
               whole.end, whole.log->str, bytewise.end, bytewise.log->str);
      FUZZ_CHECK (!"the responses depend on how the stream was cut");
    }
  g_string_free (whole.log, TRUE);
  g_string_free (bytewise.log, TRUE);
  return 0;
}
