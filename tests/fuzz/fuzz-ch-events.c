/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the parser of cloud-hypervisor's event monitor output
 * (uvm-ch-events.h): pretty-printed JSON objects separated by blank lines,
 * as a broken or hostile VMM could write them into the pipe.
 *
 * Each input is parsed twice: in one piece, and one byte per feed.  A pipe
 * may cut the stream anywhere, so both must deliver the same events in the
 * same order (errors may be counted differently: one feed returns the
 * first of its errors).  Every event has a source and a name. */
#include "fuzz-common.h"

#include "proto/uvm-ch-events.h"

#include <string.h>

/* Small, so that inputs of a few KiB reach the size cap. */
#define MAX_OBJECT 1024

static void
on_event (const char *source, const char *event, JsonObject *properties, gint64 timestamp_us,
          gpointer user_data)
{
  GString *log = user_data;
  g_autofree char *s = NULL, *e = NULL;

  FUZZ_CHECK (source != NULL && event != NULL);
  s = g_strescape (source, NULL);
  e = g_strescape (event, NULL);
  g_string_append_printf (log, "%" G_GINT64_FORMAT " %s %s %s %u\n", timestamp_us, s, e,
                          properties ? "props" : "-",
                          properties ? json_object_get_size (properties) : 0);
}

static GString *
parse (const guint8 *data, gsize size, gsize piece)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (MAX_OBJECT);
  GString *log = g_string_new (NULL);

  for (gsize at = 0; at < size; at += piece)
    {
      GError *error = NULL;
      gboolean ok = uvm_ch_event_parser_feed (parser, (const char *) data + at,
                                              MIN (piece, size - at), on_event, log, &error);

      /* Errors do not stop the stream (one bad event must not silence the
       * rest): feeding goes on. */
      FUZZ_CHECK (ok == (error == NULL));
      g_clear_error (&error);
    }
  return log;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GString *whole, *bytewise;

  fuzz_fatal_warnings ();
  whole = parse (data, size, G_MAXSIZE);
  bytewise = parse (data, size, 1);
  if (strcmp (whole->str, bytewise->str) != 0)
    {
      fprintf (stderr, "in one piece:\n%s\none byte at a time:\n%s\n", whole->str, bytewise->str);
      FUZZ_CHECK (!"the events depend on how the stream was cut");
    }
  g_string_free (whole, TRUE);
  g_string_free (bytewise, TRUE);
  return 0;
}
