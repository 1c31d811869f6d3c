/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cloud-hypervisor's event monitor.  See uvm-ch-events.h for the contract.
 *
 * Framing.  cloud-hypervisor writes every event with
 * serde_json::to_string_pretty followed by a blank line.  We do not rely on
 * the blank line: a small scanner follows the nesting of braces, knowing
 * about strings and backslash escapes, so that braces and quotes inside
 * strings do not count, and an object ends at the brace that brings the
 * depth back to zero.  Between objects only JSON whitespace may appear.
 * Each complete object is then parsed with json-glib.  Only the object
 * being assembled is kept, and never more than max_object bytes of it.
 *
 * Recovery.  One bad event must not silence the ones after it, so after an
 * error the parser resumes at the next top-level '{'.  Precisely:
 *
 *  - after text outside an object (anything but whitespace between events):
 *    we are outside every object and every string, so the next '{' byte,
 *    wherever it is, opens the next object;
 *  - after a complete object that is invalid JSON or lacks a string
 *    "source" or "event": its closing brace took us back outside, so again
 *    the next '{' opens the next object;
 *  - after an object that grew past max_object bytes, or that holds a raw
 *    newline inside a string (invalid JSON, and the mark of an event cut
 *    short): the rest of that object is skipped without being stored.  The
 *    skip ends either after the brace that closes it (the scanner keeps
 *    following strings and nesting while skipping; a raw newline inside a
 *    string makes that tracking meaningless and ends it), or at a '{' that
 *    begins a line, i.e. immediately follows a '\n', whichever comes first.
 *    In cloud-hypervisor's pretty-printed output only a top-level object
 *    starts a line (nested objects are indented, and a JSON string cannot
 *    hold a raw newline), so the second rule finds the next event even
 *    when the broken one never ends, e.g. an unterminated string.
 *
 * Everything skipped counts as part of the error that started the skip:
 * one error per bad object or per run of stray text, never one per byte.
 * When one feed meets several errors the first is returned and the others
 * are logged with g_debug; events after an error are still delivered by the
 * same call.
 *
 * The monitor reads the pipe as a UvmStream (uvm-stream.h) in drain mode:
 * every wake-up reads until the pipe is empty (cloud-hypervisor drops
 * events while the pipe is full).  Callbacks may free the monitor: the
 * stream is closed at once, but the monitor only marks itself while the
 * parser is being fed and is freed when that ends.  Freeing a parser from
 * inside its own callback is not supported. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "proto/uvm-ch-events.h"
#include "proto/uvm-stream.h"

#include "util/uvm-util.h"

#include <uvm/uvm-error.h>

#include <string.h>

/* Longest excerpt of an event that goes into a debug line. */
#define LOG_EXCERPT 256

typedef enum {
  MODE_OUTSIDE,      /* between objects: whitespace, then '{' */
  MODE_OBJECT,       /* assembling an object in parser->object */
  MODE_SKIP_TEXT,    /* after stray text: up to the next '{' */
  MODE_SKIP_OBJECT,  /* the rest of a broken object (see Recovery above) */
} Mode;

struct _UvmChEventParser {
  gsize       max_object;
  Mode        mode;
  /* Scanner state, meaningful in MODE_OBJECT and, while tracking, in
   * MODE_SKIP_OBJECT. */
  gsize       depth;
  gboolean    in_string;
  gboolean    escaped;
  gboolean    tracking;      /* MODE_SKIP_OBJECT: depth and strings known */
  gboolean    at_line_start; /* the previous byte was '\n' (or none yet) */
  GByteArray *object;        /* the object so far, at most max_object bytes */
  guint64     offset;        /* bytes fed so far, for messages */
  guint64     object_offset; /* where the current object started */
};

/* The state of one feed call: its callback and the errors it met. */
typedef struct {
  UvmChEventFunc func;
  gpointer       user_data;
  GError        *error;  /* the first one */
  guint          n_more; /* errors after the first */
} Feed;

static void feed_error (Feed *feed, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
feed_error (Feed *feed, const char *format, ...)
{
  GError *error;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (UVM_ERROR, UVM_ERROR_PROTOCOL, format, args);
  va_end (args);

  if (feed->error == NULL)
    feed->error = error;
  else
    {
      feed->n_more++;
      g_debug ("cloud-hypervisor events: %s", error->message);
      g_error_free (error);
    }
}

static gint64
node_get_int (JsonNode *node)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return 0;
  return json_node_get_int (node);
}

/* {"secs": S, "nanos": N} in microseconds; 0 when absent or unusable. */
static gint64
timestamp_to_us (JsonNode *node)
{
  JsonObject *timestamp;
  gint64 secs, nanos;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return 0;
  timestamp = json_node_get_object (node);
  secs = node_get_int (json_object_get_member (timestamp, "secs"));
  nanos = node_get_int (json_object_get_member (timestamp, "nanos"));
  /* serde writes a Duration (both unsigned, nanos < 10^9); keep anything
   * else from overflowing. */
  if (secs < 0 || secs > G_MAXINT64 / G_USEC_PER_SEC - 1 || nanos < 0 || nanos >= 1000000000)
    return 0;
  return secs * G_USEC_PER_SEC + nanos / 1000;
}

/* Parses the complete object in parser->object and reports it. */
static void
handle_object (UvmChEventParser *parser, Feed *feed)
{
  g_autoptr(JsonParser) json = json_parser_new ();
  g_autoptr(GError) error = NULL;
  const char *text = (const char *) parser->object->data;
  gsize len = parser->object->len;
  JsonNode *root;
  JsonObject *object;
  JsonNode *properties;
  const char *source, *event;

  if (!json_parser_load_from_data (json, text, len, &error))
    {
      feed_error (feed, "malformed event at byte %" G_GUINT64_FORMAT ": %s: %.*s",
                  parser->object_offset, error->message, (int) MIN (len, LOG_EXCERPT), text);
      return;
    }
  /* The scanner only hands over text from '{' to its matching '}'. */
  root = json_parser_get_root (json);
  g_assert (root != NULL && JSON_NODE_HOLDS_OBJECT (root));
  object = json_node_get_object (root);

  source = uvm_json_node_get_string (json_object_get_member (object, "source"));
  event = uvm_json_node_get_string (json_object_get_member (object, "event"));
  if (source == NULL || event == NULL)
    {
      feed_error (feed, "event at byte %" G_GUINT64_FORMAT " lacks a string \"%s\": %.*s",
                  parser->object_offset, source == NULL ? "source" : "event",
                  (int) MIN (len, LOG_EXCERPT), text);
      return;
    }

  properties = json_object_get_member (object, "properties");
  if (properties != NULL && !JSON_NODE_HOLDS_OBJECT (properties))
    {
      if (!JSON_NODE_HOLDS_NULL (properties))
        g_debug ("cloud-hypervisor events: %s %s: ignoring properties that are not an object",
                 source, event);
      properties = NULL;
    }

  if (feed->func != NULL)
    feed->func (source, event, properties != NULL ? json_node_get_object (properties) : NULL,
                timestamp_to_us (json_object_get_member (object, "timestamp")), feed->user_data);
}

static void
start_object (UvmChEventParser *parser)
{
  parser->mode = MODE_OBJECT;
  parser->depth = 1;
  parser->in_string = FALSE;
  parser->escaped = FALSE;
  parser->object_offset = parser->offset;
  g_byte_array_set_size (parser->object, 0);
}

/* Follows strings and nesting for one byte @c of an object.  FALSE when a
 * raw newline shows up inside a string. */
static gboolean
scan_byte (UvmChEventParser *parser, char c)
{
  if (parser->in_string)
    {
      if (parser->escaped)
        parser->escaped = FALSE;
      else if (c == '\\')
        parser->escaped = TRUE;
      else if (c == '"')
        parser->in_string = FALSE;
      else if (c == '\n')
        return FALSE;
    }
  else if (c == '"')
    parser->in_string = TRUE;
  else if (c == '{')
    parser->depth++;
  else if (c == '}')
    parser->depth--;
  return TRUE;
}

static gboolean
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

UvmChEventParser *
uvm_ch_event_parser_new (gsize max_object)
{
  UvmChEventParser *parser;

  g_return_val_if_fail (max_object > 0, NULL);

  parser = g_new0 (UvmChEventParser, 1);
  /* GByteArray lengths are guint. */
  parser->max_object = MIN (max_object, G_MAXUINT / 2);
  parser->mode = MODE_OUTSIDE;
  parser->at_line_start = TRUE;
  parser->object = g_byte_array_new ();
  return parser;
}

void
uvm_ch_event_parser_free (UvmChEventParser *parser)
{
  if (parser == NULL)
    return;
  g_byte_array_unref (parser->object);
  g_free (parser);
}

gboolean
uvm_ch_event_parser_feed (UvmChEventParser *parser,
                          const char       *data,
                          gsize             len,
                          UvmChEventFunc    func,
                          gpointer          user_data,
                          GError          **error)
{
  Feed feed = { func, user_data, NULL, 0 };
  /* Start of the bytes of this call that belong to the current object and
   * are not yet in parser->object (MODE_OBJECT only). */
  gsize span = 0;

  g_return_val_if_fail (parser != NULL, FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (gsize i = 0; i < len; i++, parser->offset++)
    {
      char c = data[i];
      gboolean line_start = parser->at_line_start;

      parser->at_line_start = c == '\n';

      switch (parser->mode)
        {
        case MODE_OUTSIDE:
          if (c == '{')
            {
              start_object (parser);
              span = i;
            }
          else if (!is_space (c))
            {
              /* The stray text up to the end of its line or the next
               * brace, whichever is first, at most 32 bytes. */
              gsize n = 0;
              g_autofree char *raw = NULL;
              g_autofree char *excerpt = NULL;

              while (i + n < len && n < 32 && data[i + n] != '\n' && data[i + n] != '{')
                n++;
              raw = g_strndup (data + i, n);
              excerpt = g_strescape (raw, NULL);

              feed_error (&feed, "unexpected text between events at byte %" G_GUINT64_FORMAT
                          ": \"%s\"", parser->offset, excerpt);
              parser->mode = MODE_SKIP_TEXT;
            }
          break;

        case MODE_SKIP_TEXT:
          if (c == '{')
            {
              start_object (parser);
              span = i;
            }
          break;

        case MODE_OBJECT:
          if (!scan_byte (parser, c))
            {
              feed_error (&feed, "event at byte %" G_GUINT64_FORMAT
                          " has a line break inside a string (cut short?)",
                          parser->object_offset);
              g_byte_array_set_size (parser->object, 0);
              parser->mode = MODE_SKIP_OBJECT;
              parser->tracking = FALSE;
            }
          else if (parser->object->len + (i - span) + 1 > parser->max_object)
            {
              feed_error (&feed, "event at byte %" G_GUINT64_FORMAT " exceeds the limit of %"
                          G_GSIZE_FORMAT " bytes", parser->object_offset, parser->max_object);
              g_byte_array_set_size (parser->object, 0);
              parser->mode = parser->depth == 0 ? MODE_OUTSIDE : MODE_SKIP_OBJECT;
              parser->tracking = TRUE;
            }
          else if (parser->depth == 0)
            {
              g_byte_array_append (parser->object, (const guint8 *) data + span, i - span + 1);
              parser->mode = MODE_OUTSIDE;
              handle_object (parser, &feed);
              g_byte_array_set_size (parser->object, 0);
            }
          break;

        case MODE_SKIP_OBJECT:
          if (c == '{' && line_start)
            {
              g_debug ("cloud-hypervisor events: resuming at byte %" G_GUINT64_FORMAT
                       ", a '{' that starts a line", parser->offset);
              start_object (parser);
              span = i;
            }
          else if (parser->tracking)
            {
              if (!scan_byte (parser, c))
                parser->tracking = FALSE;
              else if (parser->depth == 0)
                parser->mode = MODE_OUTSIDE;
            }
          break;

        default:
          g_assert_not_reached ();
        }
    }

  if (parser->mode == MODE_OBJECT && span < len)
    g_byte_array_append (parser->object, (const guint8 *) data + span, len - span);

  if (feed.error != NULL)
    {
      if (feed.n_more > 0)
        {
          GError *first = feed.error;

          feed.error = g_error_new (UVM_ERROR, UVM_ERROR_PROTOCOL, "%s (and %u more errors)",
                                    first->message, feed.n_more);
          g_error_free (first);
        }
      g_propagate_error (error, feed.error);
      return FALSE;
    }
  return TRUE;
}

/* ---- the monitor ------------------------------------------------------ */

struct _UvmChEventMonitor {
  UvmStream        *stream; /* NULL once closed */
  UvmChEventParser *parser;
  UvmChEventFunc    func;
  GSourceFunc       closed;
  gpointer          user_data;
  gboolean          feeding;        /* inside uvm_ch_event_parser_feed() */
  gboolean          free_requested; /* freed by a callback meanwhile */
};

static void
monitor_finalize (UvmChEventMonitor *monitor)
{
  uvm_stream_free (monitor->stream);
  uvm_ch_event_parser_free (monitor->parser);
  g_free (monitor);
}

static void
monitor_event (const char *source,
               const char *event,
               JsonObject *properties,
               gint64      timestamp_us,
               gpointer    user_data)
{
  UvmChEventMonitor *monitor = user_data;

  /* The rest of the read is still parsed after a callback freed us, but
   * nobody hears of it. */
  if (monitor->free_requested)
    return;
  g_debug ("cloud-hypervisor event: %s %s", source, event);
  if (monitor->func != NULL)
    monitor->func (source, event, properties, timestamp_us, monitor->user_data);
}

/* One read of the drain (the stream reads on until the pipe is empty,
 * unless a callback freed us). */
static void
on_data (G_GNUC_UNUSED UvmStream *stream,
         const guint8            *bytes,
         gsize                    len,
         gpointer                 user_data)
{
  UvmChEventMonitor *monitor = user_data;
  g_autoptr(GError) error = NULL;

  monitor->feeding = TRUE;
  if (!uvm_ch_event_parser_feed (monitor->parser, (const char *) bytes, len,
                                 monitor_event, monitor, &error))
    g_debug ("cloud-hypervisor events: %s; skipped", error->message);
  monitor->feeding = FALSE;

  if (monitor->free_requested)
    monitor_finalize (monitor);
}

/* EOF, or a read error, which is taken as EOF (the stream logged it). */
static void
on_closed (G_GNUC_UNUSED UvmStream    *stream,
           G_GNUC_UNUSED const GError *error,
           gpointer                    user_data)
{
  UvmChEventMonitor *monitor = user_data;
  GSourceFunc closed = monitor->closed;

  if (monitor->parser->mode == MODE_OBJECT || monitor->parser->mode == MODE_SKIP_OBJECT)
    g_debug ("cloud-hypervisor events: discarding an incomplete event at EOF");
  g_clear_pointer (&monitor->stream, uvm_stream_free);
  /* Last: it may free the monitor. */
  if (closed != NULL)
    closed (monitor->user_data);
}

UvmChEventMonitor *
uvm_ch_event_monitor_new (int            fd,
                          UvmChEventFunc func,
                          GSourceFunc    closed,
                          gpointer       user_data)
{
  static const UvmStreamCallbacks callbacks = { on_data, on_closed };
  UvmChEventMonitor *monitor;

  g_return_val_if_fail (fd >= 0, NULL);

  monitor = g_new0 (UvmChEventMonitor, 1);
  monitor->parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  monitor->func = func;
  monitor->closed = closed;
  monitor->user_data = user_data;
  monitor->stream = uvm_stream_new (fd, "the event pipe", &callbacks, monitor);
  uvm_stream_set_drain (monitor->stream, TRUE);

  return monitor;
}

void
uvm_ch_event_monitor_read_pending (UvmChEventMonitor *monitor)
{
  if (monitor != NULL && monitor->stream != NULL)
    uvm_stream_read_pending (monitor->stream);
}

void
uvm_ch_event_monitor_free (UvmChEventMonitor *monitor)
{
  if (monitor == NULL)
    return;

  if (monitor->feeding)
    {
      /* Called from an event callback: on_data finishes the job once the
       * parser is done with this read.  The pipe closes now. */
      g_clear_pointer (&monitor->stream, uvm_stream_free);
      monitor->free_requested = TRUE;
      return;
    }
  monitor_finalize (monitor);
}
