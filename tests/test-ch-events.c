/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of cloud-hypervisor's event monitor reader: the incremental
 * parser fed by hand, then the monitor on a real pipe written by the test
 * the way the VMM writes it (one non-blocking write per event). */

#include "proto/uvm-ch-events.h"

#include <uvm/uvm-error.h>

#include "uvm-peer-util.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

/* What cloud-hypervisor v53 writes (serde_json::to_string_pretty + "\n\n"). */
#define BOOTED_EVENT \
  "{\n" \
  "  \"timestamp\": {\n" \
  "    \"secs\": 0,\n" \
  "    \"nanos\": 29219380\n" \
  "  },\n" \
  "  \"source\": \"vm\",\n" \
  "  \"event\": \"booted\",\n" \
  "  \"properties\": null\n" \
  "}\n\n"

/* ---- collecting events ------------------------------------------------ */

typedef struct {
  char       *source;
  char       *event;
  JsonObject *properties; /* a reference, or NULL */
  gint64      timestamp_us;
} Event;

static void
event_free (gpointer data)
{
  Event *e = data;

  g_free (e->source);
  g_free (e->event);
  g_clear_pointer (&e->properties, json_object_unref);
  g_free (e);
}

static GPtrArray *
events_new (void)
{
  return g_ptr_array_new_with_free_func (event_free);
}

/* A UvmChEventFunc; @user_data is a GPtrArray from events_new(). */
static void
collect (const char *source,
         const char *event,
         JsonObject *properties,
         gint64      timestamp_us,
         gpointer    user_data)
{
  GPtrArray *events = user_data;
  Event *e = g_new0 (Event, 1);

  g_assert_nonnull (source);
  g_assert_nonnull (event);
  e->source = g_strdup (source);
  e->event = g_strdup (event);
  e->properties = properties != NULL ? json_object_ref (properties) : NULL;
  e->timestamp_us = timestamp_us;
  g_ptr_array_add (events, e);
}

static Event *
event_at (GPtrArray *events, guint i)
{
  g_assert_cmpuint (i, <, events->len);
  return g_ptr_array_index (events, i);
}

static void
assert_event (GPtrArray *events, guint i, const char *source, const char *event)
{
  Event *e = event_at (events, i);

  g_assert_cmpstr (e->source, ==, source);
  g_assert_cmpstr (e->event, ==, event);
}

static const char *
event_property (GPtrArray *events, guint i, const char *name)
{
  Event *e = event_at (events, i);

  g_assert_nonnull (e->properties);
  g_assert_true (json_object_has_member (e->properties, name));
  return json_object_get_string_member (e->properties, name);
}

/* One event as cloud-hypervisor prints it; @properties is raw JSON text
 * ("null", or an object indented as serde would). */
static char *
pretty_event (gint64 secs, gint64 nanos, const char *source, const char *event,
              const char *properties)
{
  return g_strdup_printf ("{\n"
                          "  \"timestamp\": {\n"
                          "    \"secs\": %" G_GINT64_FORMAT ",\n"
                          "    \"nanos\": %" G_GINT64_FORMAT "\n"
                          "  },\n"
                          "  \"source\": \"%s\",\n"
                          "  \"event\": \"%s\",\n"
                          "  \"properties\": %s\n"
                          "}\n\n",
                          secs, nanos, source, event, properties);
}

static gboolean
feed (UvmChEventParser *parser, const char *text, GPtrArray *events, GError **error)
{
  return uvm_ch_event_parser_feed (parser, text, strlen (text), collect, events, error);
}

static void
feed_ok (UvmChEventParser *parser, const char *text, GPtrArray *events)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (feed (parser, text, events, &error));
  g_assert_no_error (error);
}

static void
feed_protocol_error (UvmChEventParser *parser, const char *text, GPtrArray *events)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (feed (parser, text, events, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PROTOCOL);
}

/* ---- the parser ------------------------------------------------------- */

static void
test_single_pretty_event (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();

  feed_ok (parser, BOOTED_EVENT, events);
  g_assert_cmpuint (events->len, ==, 1);
  assert_event (events, 0, "vm", "booted");
  g_assert_null (event_at (events, 0)->properties);
  g_assert_cmpint (event_at (events, 0)->timestamp_us, ==, 29219);
}

static void
test_several_events_in_one_chunk (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autofree char *a = pretty_event (0, 1000, "vmm", "starting", "null");
  g_autofree char *b = pretty_event (0, 2000, "vm", "booting", "null");
  g_autofree char *c = pretty_event (0, 3000, "vm", "booted", "null");
  g_autofree char *d = pretty_event (1, 0, "guest", "panic", "null");
  g_autofree char *chunk = g_strconcat (a, b, c, d, NULL);

  feed_ok (parser, chunk, events);
  g_assert_cmpuint (events->len, ==, 4);
  assert_event (events, 0, "vmm", "starting");
  assert_event (events, 1, "vm", "booting");
  assert_event (events, 2, "vm", "booted");
  assert_event (events, 3, "guest", "panic");
  g_assert_cmpint (event_at (events, 1)->timestamp_us, ==, 2);
  g_assert_cmpint (event_at (events, 3)->timestamp_us, ==, G_USEC_PER_SEC);
}

/* Each event is reported by the feed of its closing brace, not before and
 * not later; the scanner's state (depth, string, escape) survives across
 * calls at every possible split. */
static void
test_event_split_byte_by_byte (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autofree char *first = pretty_event (3, 500000, "vm", "device-removed",
                                         "{\n    \"id\": \"a}b\\\"{\\\\\"\n  }");
  g_autofree char *text = g_strconcat (first, BOOTED_EVENT, NULL);
  gsize first_end = strlen (first) - 2; /* after its closing brace */
  gsize second_end = strlen (text) - 2;

  for (gsize i = 0; text[i] != '\0'; i++)
    {
      g_autoptr(GError) error = NULL;
      guint expected = (i + 1 >= second_end) ? 2 : (i + 1 >= first_end) ? 1 : 0;

      g_assert_true (uvm_ch_event_parser_feed (parser, text + i, 1, collect, events, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (events->len, ==, expected);
    }
  assert_event (events, 0, "vm", "device-removed");
  g_assert_cmpstr (event_property (events, 0, "id"), ==, "a}b\"{\\");
  g_assert_cmpint (event_at (events, 0)->timestamp_us, ==, 3 * G_USEC_PER_SEC + 500);
  assert_event (events, 1, "vm", "booted");
}

static void
test_braces_and_quotes_in_strings (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  /* An unbalanced '}' and '{' and an escaped quote in one string; a string
   * ending in an escaped backslash (the quote after it does close it); a
   * lone '{' in a key. */
  const char *text =
    "{\"source\":\"vm\",\"event\":\"device-removed\","
    "\"properties\":{\"id\":\"a}b\\\"{\",\"path\":\"c:\\\\\",\"{\":\"}}}\"}}\n\n"
    BOOTED_EVENT;

  feed_ok (parser, text, events);
  g_assert_cmpuint (events->len, ==, 2);
  assert_event (events, 0, "vm", "device-removed");
  g_assert_cmpstr (event_property (events, 0, "id"), ==, "a}b\"{");
  g_assert_cmpstr (event_property (events, 0, "path"), ==, "c:\\");
  g_assert_cmpstr (event_property (events, 0, "{"), ==, "}}}");
  assert_event (events, 1, "vm", "booted");
}

static void
test_missing_blank_line (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  /* Back to back; a single newline; extra whitespace and CRLF. */
  const char *text =
    "{\"source\":\"vm\",\"event\":\"pausing\"}{\"source\":\"vm\",\"event\":\"paused\"}\n"
    "{\"source\":\"vm\",\"event\":\"resuming\"}\r\n \t\n\n\n"
    "  {\"source\":\"vm\",\"event\":\"resumed\"}";

  feed_ok (parser, text, events);
  g_assert_cmpuint (events->len, ==, 4);
  assert_event (events, 0, "vm", "pausing");
  assert_event (events, 1, "vm", "paused");
  assert_event (events, 2, "vm", "resuming");
  assert_event (events, 3, "vm", "resumed");
}

static void
test_timestamp_in_microseconds (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autofree char *a = pretty_event (12, 345678999, "vm", "shutdown", "null");
  g_autofree char *b = pretty_event (1700000000, 999, "vm", "deleted", "null");

  feed_ok (parser, a, events);
  feed_ok (parser, b, events);
  feed_ok (parser, "{\"source\":\"vmm\",\"event\":\"shutdown\"}", events);
  g_assert_cmpuint (events->len, ==, 3);
  /* nanos / 1000, truncated */
  g_assert_cmpint (event_at (events, 0)->timestamp_us, ==, G_GINT64_CONSTANT (12345678));
  g_assert_cmpint (event_at (events, 1)->timestamp_us, ==, G_GINT64_CONSTANT (1700000000000000));
  /* absent */
  g_assert_cmpint (event_at (events, 2)->timestamp_us, ==, 0);
}

static void
test_properties_null_or_object (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autofree char *null_props = pretty_event (0, 0, "vm", "power-button", "null");
  g_autofree char *object_props = pretty_event (0, 0, "vm", "device-removed",
                                                "{\n    \"id\": \"_disk0\"\n  }");

  feed_ok (parser, null_props, events);
  feed_ok (parser, object_props, events);
  feed_ok (parser, "{\"source\":\"vm\",\"event\":\"snapshotted\"}", events);
  feed_ok (parser, "{\"source\":\"vm\",\"event\":\"restored\",\"properties\":{}}", events);
  g_assert_cmpuint (events->len, ==, 4);

  g_assert_null (event_at (events, 0)->properties);
  assert_event (events, 1, "vm", "device-removed");
  g_assert_cmpstr (event_property (events, 1, "id"), ==, "_disk0");
  g_assert_cmpuint (json_object_get_size (event_at (events, 1)->properties), ==, 1);
  g_assert_null (event_at (events, 2)->properties);
  g_assert_nonnull (event_at (events, 3)->properties);
  g_assert_cmpuint (json_object_get_size (event_at (events, 3)->properties), ==, 0);
}

/* Text between objects is an error; the parser resumes at the next '{',
 * in the same call, on the same line or in a later call. */
static void
test_garbage_between_objects (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *a = pretty_event (0, 0, "vm", "booting", "null");
  g_autofree char *b = pretty_event (0, 0, "vm", "booted", "null");
  g_autofree char *chunk = g_strconcat (a, "garbage here\n]}\n", b, NULL);

  g_assert_false (feed (parser, chunk, events, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_cmpuint (events->len, ==, 2);
  assert_event (events, 0, "vm", "booting");
  assert_event (events, 1, "vm", "booted");

  /* Stray text right before a brace, on the same line. */
  feed_protocol_error (parser, "xyz{\"source\":\"vm\",\"event\":\"pausing\"}", events);
  g_assert_cmpuint (events->len, ==, 3);
  assert_event (events, 2, "vm", "pausing");

  /* Garbage alone; the next event comes in a later call, which succeeds. */
  feed_protocol_error (parser, "\n\nnot json at all\n", events);
  g_assert_cmpuint (events->len, ==, 3);
  feed_ok (parser, BOOTED_EVENT, events);
  g_assert_cmpuint (events->len, ==, 4);
  assert_event (events, 3, "vm", "booted");
}

/* One error per run of garbage or bad object, not per byte: continuing
 * stray text in a later call is part of the same error. */
static void
test_garbage_reported_once (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();

  feed_protocol_error (parser, "abc", events);
  feed_ok (parser, "def\nghi\n", events);
  feed_ok (parser, BOOTED_EVENT, events);
  g_assert_cmpuint (events->len, ==, 1);
}

/* Several errors in one call: the first is returned, the count of the
 * others appended; every valid event still arrives. */
static void
test_several_errors_in_one_feed (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autoptr(GError) error = NULL;
  const char *text =
    "junk\n"
    "{\"source\":\"vm\",\"event\":\"paused\"}\n"
    "{\"source\":\"vm\"}\n"
    "{\"source\":\"vm\",\"event\":\"resumed\"}\n";

  g_assert_false (feed (parser, text, events, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "junk"));
  g_assert_nonnull (strstr (error->message, "1 more"));
  g_assert_cmpuint (events->len, ==, 2);
  assert_event (events, 0, "vm", "paused");
  assert_event (events, 1, "vm", "resumed");
}

static gsize
heap_in_use (void)
{
  struct mallinfo2 info = mallinfo2 ();

  return info.uordblks + info.hblkhd;
}

/* An object that never ends: 1 MiB of an open string.  The error comes
 * once, and the parser keeps no more than the limit meanwhile.  (Recovery
 * from it is the next test.) */
static void
test_oversized_object_is_not_buffered (void)
{
  const gsize mib = 1024 * 1024;
  const char *head = "{\n  \"source\": \"vm\",\n  \"event\": \"x\",\n  \"properties\": {\n    \"id\": \"";
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *chunk = g_malloc (mib);
  gsize before, after;
  gboolean ok;

  memset (chunk, 'a', mib);
  memcpy (chunk, head, strlen (head));

  before = heap_in_use ();
  ok = uvm_ch_event_parser_feed (parser, chunk, mib, collect, events, &error);
  after = heap_in_use ();
  g_assert_false (ok);
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "limit"));
  /* The limit, with room for GByteArray's doubling, not the megabyte.
   * (Under valgrind mallinfo2() reports nothing and this holds trivially.) */
  g_assert_cmpuint (after, <, before + 4 * UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);

  /* More of the same string is skipped silently, and still not kept. */
  memset (chunk, 'a', mib);
  for (guint i = 0; i < 16; i++)
    {
      g_autoptr(GError) more_error = NULL;

      g_assert_true (uvm_ch_event_parser_feed (parser, chunk, mib, collect, events, &more_error));
      g_assert_no_error (more_error);
    }
  g_assert_cmpuint (heap_in_use (), <, before + 4 * UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_assert_cmpuint (events->len, ==, 0);
}

/* Recovery, as defined in uvm-ch-events.c: after an object that went over
 * the limit the parser skips the rest of it and resumes either after its
 * closing brace or at a '{' that begins a line, whichever comes first.
 * Here the string never closes; the next event still comes through, in
 * the call that carries it, without a second error. */
static void
test_oversized_unterminated_recovers_at_line_start (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autoptr(GString) open = g_string_new ("{\n  \"source\": \"vm\",\n  \"event\": \"x\",\n  \"properties\": {\n    \"id\": \"");
  /* 1 MiB of string that never closes; braces and escaped quotes in it
   * keep the skipped object "open" for a scanner that follows strings, so
   * only the line-start rule can end the skip. */
  while (open->len < 1024 * 1024)
    g_string_append (open, "aaaa}{\\\"");

  feed_protocol_error (parser, open->str, events);
  g_assert_cmpuint (events->len, ==, 0);
  feed_ok (parser, "\n\n" BOOTED_EVENT, events);
  g_assert_cmpuint (events->len, ==, 1);
  assert_event (events, 0, "vm", "booted");
  /* Back to normal, object after object. */
  feed_ok (parser, BOOTED_EVENT BOOTED_EVENT, events);
  g_assert_cmpuint (events->len, ==, 3);
}

/* The other way out: an oversized but well-formed object ends at its own
 * closing brace, so an event right after it on the same line arrives. */
static void
test_oversized_object_recovers_after_its_end (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (1024);
  g_autoptr(GPtrArray) events = events_new ();
  g_autoptr(GString) text = g_string_new ("{\"source\":\"vm\",\"event\":\"big\",\"properties\":{\"blob\":\"");

  for (guint i = 0; i < 1000; i++)
    g_string_append (text, "{}\\\"");
  g_string_append (text, "\",\"nested\":{\"a\":{\"b\":{}}}}}");
  g_string_append (text, "{\"source\":\"vm\",\"event\":\"after\"}");

  feed_protocol_error (parser, text->str, events);
  g_assert_cmpuint (events->len, ==, 1);
  assert_event (events, 0, "vm", "after");
}

/* The limit counts the object's bytes from '{' to '}' inclusive. */
static void
test_object_limit_is_exact (void)
{
  const char *object = "{\"source\":\"vm\",\"event\":\"booted\"}";
  g_autoptr(UvmChEventParser) fits = uvm_ch_event_parser_new (strlen (object));
  g_autoptr(UvmChEventParser) too_small = uvm_ch_event_parser_new (strlen (object) - 1);
  g_autoptr(GPtrArray) events = events_new ();

  feed_ok (fits, object, events);
  g_assert_cmpuint (events->len, ==, 1);
  feed_protocol_error (too_small, object, events);
  g_assert_cmpuint (events->len, ==, 1);
}

static void
test_invalid_json_in_balanced_braces (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autoptr(GError) error = NULL;
  const char *text =
    "{\n  \"source\": \"vm\",\n  \"event\": booted\n}\n\n"
    BOOTED_EVENT
    "{\"source\": \"vm\" \"event\": \"x\"}"
    "{\"source\":\"vm\",\"event\":\"paused\"}";

  g_assert_false (feed (parser, text, events, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_cmpuint (events->len, ==, 2);
  assert_event (events, 0, "vm", "booted");
  assert_event (events, 1, "vm", "paused");
}

static void
test_object_without_event (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();
  g_autoptr(GError) error = NULL;

  g_assert_false (feed (parser, "{\n  \"source\": \"vm\",\n  \"properties\": null\n}\n\n", events, &error));
  g_assert_error (error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "\"event\""));
  /* Not a string is as bad as absent; so is a missing source. */
  feed_protocol_error (parser, "{\"source\":\"vm\",\"event\":5}", events);
  feed_protocol_error (parser, "{\"source\":\"vm\",\"event\":null}", events);
  feed_protocol_error (parser, "{\"event\":\"booted\"}", events);
  feed_protocol_error (parser, "{}", events);
  g_assert_cmpuint (events->len, ==, 0);
  /* None of that sticks. */
  feed_ok (parser, BOOTED_EVENT, events);
  g_assert_cmpuint (events->len, ==, 1);
}

/* An event cut short inside a string: the raw newline that follows cannot
 * be part of a JSON string, so the object is abandoned there and the next
 * event, which begins a line, is parsed. */
static void
test_event_cut_short_in_string (void)
{
  g_autoptr(UvmChEventParser) parser = uvm_ch_event_parser_new (UVM_CH_EVENTS_DEFAULT_MAX_OBJECT);
  g_autoptr(GPtrArray) events = events_new ();

  feed_ok (parser, "{\n  \"source\": \"vm\",\n  \"event\": \"boo", events);
  feed_protocol_error (parser, "\n\n" BOOTED_EVENT, events);
  g_assert_cmpuint (events->len, ==, 1);
  assert_event (events, 0, "vm", "booted");
}

/* ---- the monitor on a pipe -------------------------------------------- */

/* WAIT_UNTIL(), iterate_briefly() and count_open_fds() are in
 * uvm-peer-util.h. */

typedef struct {
  GPtrArray         *events;
  guint              closed;
  UvmChEventMonitor *monitor;
  int                writer;   /* the VMM's end, non-blocking */
  gboolean           free_on_event;
  gboolean           free_on_closed;
} Watch;

static void
watch_event (const char *source,
             const char *event,
             JsonObject *properties,
             gint64      timestamp_us,
             gpointer    user_data)
{
  Watch *w = user_data;

  collect (source, event, properties, timestamp_us, w->events);
  if (w->free_on_event)
    g_clear_pointer (&w->monitor, uvm_ch_event_monitor_free);
}

static gboolean
watch_closed (gpointer user_data)
{
  Watch *w = user_data;

  w->closed++;
  if (w->free_on_closed)
    g_clear_pointer (&w->monitor, uvm_ch_event_monitor_free);
  return G_SOURCE_REMOVE;
}

static void
watch_start (Watch *w)
{
  int fds[2];

  memset (w, 0, sizeof *w);
  g_assert_no_errno (pipe2 (fds, O_CLOEXEC | O_NONBLOCK));
  w->writer = fds[1];
  w->events = events_new ();
  w->monitor = uvm_ch_event_monitor_new (fds[0], watch_event, watch_closed, w);
  g_assert_nonnull (w->monitor);
}

static void
watch_close_writer (Watch *w)
{
  if (w->writer >= 0)
    close (w->writer);
  w->writer = -1;
}

static void
watch_clear (Watch *w)
{
  g_clear_pointer (&w->monitor, uvm_ch_event_monitor_free);
  watch_close_writer (w);
  g_clear_pointer (&w->events, g_ptr_array_unref);
}

/* Writes @text in one write(), as cloud-hypervisor does; while the pipe is
 * full, lets the main loop run (the monitor drains it) and tries again.
 * Counts the times the pipe was full in @n_full. */
static void
vmm_write (Watch *w, const char *text, guint *n_full)
{
  gsize len = strlen (text);
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  gsize done = 0;

  while (done < len)
    {
      ssize_t n = write (w->writer, text + done, len - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          if (n_full != NULL)
            (*n_full)++;
          if (g_get_monotonic_time () > deadline)
            g_error ("the event pipe stayed full for 5 s");
          /* The monitor's fd is readable (the pipe is full), so this does
           * not block. */
          g_main_context_iteration (NULL, TRUE);
          continue;
        }
      g_assert_cmpint (n, >, 0);
      done += n;
    }
}

static void
test_monitor_delivers_events (void)
{
  Watch w;
  g_autofree char *removed = pretty_event (5, 7000, "vm", "device-removed",
                                           "{\n    \"id\": \"net1\"\n  }");

  watch_start (&w);
  vmm_write (&w, BOOTED_EVENT, NULL);
  WAIT_UNTIL (w.events->len == 1);
  assert_event (w.events, 0, "vm", "booted");
  g_assert_cmpint (event_at (w.events, 0)->timestamp_us, ==, 29219);

  /* Half an event, then the rest. */
  vmm_write (&w, "{\n  \"source\": \"vm\",\n  \"ev", NULL);
  iterate_briefly ();
  g_assert_cmpuint (w.events->len, ==, 1);
  vmm_write (&w, "ent\": \"pausing\"\n}\n\n", NULL);
  vmm_write (&w, removed, NULL);
  WAIT_UNTIL (w.events->len == 3);
  assert_event (w.events, 1, "vm", "pausing");
  assert_event (w.events, 2, "vm", "device-removed");
  g_assert_cmpstr (event_property (w.events, 2, "id"), ==, "net1");
  g_assert_cmpint (event_at (w.events, 2)->timestamp_us, ==, 5 * G_USEC_PER_SEC + 7);
  g_assert_cmpuint (w.closed, ==, 0);
  watch_clear (&w);
}

/* The monitor takes the fd as it is and makes it non-blocking and
 * close-on-exec. */
static void
test_monitor_sets_fd_flags (void)
{
  UvmChEventMonitor *monitor;
  int fds[2];

  g_assert_no_errno (pipe (fds));
  g_assert_cmpint (fcntl (fds[0], F_GETFL) & O_NONBLOCK, ==, 0);
  g_assert_cmpint (fcntl (fds[0], F_GETFD) & FD_CLOEXEC, ==, 0);
  monitor = uvm_ch_event_monitor_new (fds[0], collect, NULL, NULL);
  g_assert_cmpint (fcntl (fds[0], F_GETFL) & O_NONBLOCK, ==, O_NONBLOCK);
  g_assert_cmpint (fcntl (fds[0], F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
  uvm_ch_event_monitor_free (monitor);
  close (fds[1]);
}

/* 200 events in one burst, several times what the pipe holds, from a
 * writer that retries whenever the pipe is full: all arrive, in order. */
static void
test_monitor_burst_larger_than_pipe (void)
{
  g_autofree char *padding = g_strnfill (400, 'p');
  guint n_full = 0;
  gsize total = 0;
  int pipe_size;
  Watch w;

  watch_start (&w);
  pipe_size = fcntl (w.writer, F_GETPIPE_SZ);
  g_assert_cmpint (pipe_size, >, 0);

  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *props = g_strdup_printf ("{\n    \"id\": \"dev%u\",\n    \"pad\": \"%s\"\n  }",
                                                i, padding);
      g_autofree char *text = pretty_event (i, 0, "vm", "device-removed", props);

      g_assert_cmpuint (strlen (text), <=, PIPE_BUF); /* atomic, like the VMM's */
      total += strlen (text);
      vmm_write (&w, text, &n_full);
    }
  g_assert_cmpuint (total, >, (gsize) pipe_size);
  /* The burst did overflow the pipe: the writer had to wait. */
  g_assert_cmpuint (n_full, >, 0);

  WAIT_UNTIL (w.events->len == 200);
  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *id = g_strdup_printf ("dev%u", i);

      assert_event (w.events, i, "vm", "device-removed");
      g_assert_cmpstr (event_property (w.events, i, "id"), ==, id);
      g_assert_cmpint (event_at (w.events, i)->timestamp_us, ==, (gint64) i * G_USEC_PER_SEC);
    }
  watch_clear (&w);
}

/* One wake-up empties the pipe, however much more than one read it holds
 * (the VMM drops what does not fit, so nothing may wait for the next
 * iteration). */
static void
test_monitor_drains_pipe_in_one_wake_up (void)
{
  g_autofree char *padding = g_strnfill (1000, 'p');
  gsize total = 0;
  Watch w;

  watch_start (&w);
  if (fcntl (w.writer, F_SETPIPE_SZ, 1024 * 1024) < 0)
    {
      g_test_skip ("cannot enlarge the pipe");
      watch_clear (&w);
      return;
    }
  for (guint i = 0; i < 300; i++)
    {
      g_autofree char *props = g_strdup_printf ("{\n    \"seq\": \"%u\",\n    \"pad\": \"%s\"\n  }",
                                                i, padding);
      g_autofree char *text = pretty_event (0, i * 1000, "vm", "resumed", props);

      total += strlen (text);
      g_assert_cmpint (write (w.writer, text, strlen (text)), ==, (gssize) strlen (text));
    }
  /* Well over the monitor's 64 KiB read buffer. */
  g_assert_cmpuint (total, >, 4 * 65536);

  /* The fd is readable already: one non-blocking iteration dispatches the
   * monitor once. */
  g_assert_true (g_main_context_iteration (NULL, FALSE));
  g_assert_cmpuint (w.events->len, ==, 300);
  g_assert_cmpstr (event_property (w.events, 299, "seq"), ==, "299");
  watch_clear (&w);
}

/* Garbage on the pipe is skipped; the monitor goes on. */
static void
test_monitor_skips_protocol_errors (void)
{
  Watch w;

  watch_start (&w);
  vmm_write (&w, "this is not JSON\n{\"source\":\"vm\"}\n" BOOTED_EVENT, NULL);
  WAIT_UNTIL (w.events->len == 1);
  assert_event (w.events, 0, "vm", "booted");
  vmm_write (&w, "{\"source\":\"vm\",\"event\":\"shutdown\"}", NULL);
  WAIT_UNTIL (w.events->len == 2);
  assert_event (w.events, 1, "vm", "shutdown");
  g_assert_cmpuint (w.closed, ==, 0);
  watch_clear (&w);
}

/* Events written before the VMM exits all arrive, then the closed
 * callback, exactly once. */
static void
test_monitor_closed_once_at_eof (void)
{
  g_autofree char *shutdown = pretty_event (9, 0, "vmm", "shutdown", "null");
  Watch w;

  watch_start (&w);
  vmm_write (&w, BOOTED_EVENT, NULL);
  vmm_write (&w, shutdown, NULL);
  watch_close_writer (&w);
  WAIT_UNTIL (w.closed > 0);
  g_assert_cmpuint (w.events->len, ==, 2);
  assert_event (w.events, 1, "vmm", "shutdown");

  /* And never again. */
  for (int i = 0; i < 5; i++)
    {
      g_usleep (2000);
      iterate_briefly ();
    }
  g_assert_cmpuint (w.closed, ==, 1);
  watch_clear (&w);
}

/* An event cut short by the VMM's exit is dropped; closed still comes. */
static void
test_monitor_eof_discards_incomplete_event (void)
{
  Watch w;

  watch_start (&w);
  vmm_write (&w, BOOTED_EVENT "{\n  \"source\": \"vm\",\n  \"event\": \"shut", NULL);
  watch_close_writer (&w);
  WAIT_UNTIL (w.closed > 0);
  g_assert_cmpuint (w.events->len, ==, 1);
  g_assert_cmpuint (w.closed, ==, 1);
  watch_clear (&w);
}

/* The event callback may free the monitor: no more callbacks, not even for
 * the events read in the same wake-up, and the pipe is closed. */
static void
test_monitor_freed_from_event_callback (void)
{
  Watch w;

  watch_start (&w);
  w.free_on_event = TRUE;
  vmm_write (&w, BOOTED_EVENT BOOTED_EVENT BOOTED_EVENT, NULL);
  WAIT_UNTIL (w.monitor == NULL);
  iterate_briefly ();
  g_assert_cmpuint (w.events->len, ==, 1);
  g_assert_cmpuint (w.closed, ==, 0);
  /* Nobody reads any more. */
  g_assert_cmpint (write (w.writer, "{", 1), ==, -1);
  g_assert_cmpint (errno, ==, EPIPE);
  watch_clear (&w);
}

static void
test_monitor_freed_from_closed_callback (void)
{
  Watch w;

  watch_start (&w);
  w.free_on_closed = TRUE;
  vmm_write (&w, BOOTED_EVENT, NULL);
  watch_close_writer (&w);
  WAIT_UNTIL (w.monitor == NULL);
  iterate_briefly ();
  g_assert_cmpuint (w.closed, ==, 1);
  g_assert_cmpuint (w.events->len, ==, 1);
  watch_clear (&w);
}

/* The monitor reads in the context that was thread-default when it was
 * created, and only there. */
static void
test_monitor_uses_thread_default_context (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  gint64 deadline;
  Watch w;

  g_main_context_push_thread_default (context);
  watch_start (&w);
  g_main_context_pop_thread_default (context);

  vmm_write (&w, BOOTED_EVENT, NULL);
  iterate_briefly ();
  g_assert_cmpuint (w.events->len, ==, 0);

  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (w.events->len == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (context, FALSE);
      g_usleep (1000);
    }
  assert_event (w.events, 0, "vm", "booted");
  watch_clear (&w);
}

/* Freeing the monitor with bytes still in the pipe and half an event in
 * the parser closes the pipe and frees everything (valgrind checks the
 * memory; the fd table is checked here). */
static void
test_monitor_free_with_data_pending (void)
{
  guint baseline;
  Watch w;

  /* Warm up: GLib opens fds of its own the first time round (the main
   * context's wake-up eventfd); let that happen before the count. */
  watch_start (&w);
  vmm_write (&w, BOOTED_EVENT, NULL);
  WAIT_UNTIL (w.events->len == 1);
  watch_clear (&w);
  iterate_briefly ();
  baseline = count_open_fds ();

  watch_start (&w);
  g_assert_cmpuint (count_open_fds (), ==, baseline + 2);
  vmm_write (&w, BOOTED_EVENT "{\n  \"source\": \"vm\",\n  \"event\": \"pau", NULL);
  WAIT_UNTIL (w.events->len == 1);
  /* Unread bytes in the pipe too. */
  vmm_write (&w, "sing\"\n}\n\n" BOOTED_EVENT, NULL);
  g_clear_pointer (&w.monitor, uvm_ch_event_monitor_free);

  g_assert_cmpuint (count_open_fds (), ==, baseline + 1);
  g_assert_cmpint (write (w.writer, "{", 1), ==, -1);
  g_assert_cmpint (errno, ==, EPIPE);
  iterate_briefly ();
  g_assert_cmpuint (w.events->len, ==, 1);
  g_assert_cmpuint (w.closed, ==, 0);
  watch_clear (&w);
  g_assert_cmpuint (count_open_fds (), ==, baseline);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Writes to a pipe nobody reads must fail with EPIPE, not kill us. */
  signal (SIGPIPE, SIG_IGN);

  g_test_add_func ("/ch-events/parser/single-pretty-event", test_single_pretty_event);
  g_test_add_func ("/ch-events/parser/several-events-in-one-chunk", test_several_events_in_one_chunk);
  g_test_add_func ("/ch-events/parser/event-split-byte-by-byte", test_event_split_byte_by_byte);
  g_test_add_func ("/ch-events/parser/braces-and-quotes-in-strings", test_braces_and_quotes_in_strings);
  g_test_add_func ("/ch-events/parser/missing-blank-line", test_missing_blank_line);
  g_test_add_func ("/ch-events/parser/timestamp-in-microseconds", test_timestamp_in_microseconds);
  g_test_add_func ("/ch-events/parser/properties-null-or-object", test_properties_null_or_object);
  g_test_add_func ("/ch-events/parser/garbage-between-objects", test_garbage_between_objects);
  g_test_add_func ("/ch-events/parser/garbage-reported-once", test_garbage_reported_once);
  g_test_add_func ("/ch-events/parser/several-errors-in-one-feed", test_several_errors_in_one_feed);
  g_test_add_func ("/ch-events/parser/oversized-object-is-not-buffered", test_oversized_object_is_not_buffered);
  g_test_add_func ("/ch-events/parser/oversized-unterminated-recovers-at-line-start",
                   test_oversized_unterminated_recovers_at_line_start);
  g_test_add_func ("/ch-events/parser/oversized-object-recovers-after-its-end",
                   test_oversized_object_recovers_after_its_end);
  g_test_add_func ("/ch-events/parser/object-limit-is-exact", test_object_limit_is_exact);
  g_test_add_func ("/ch-events/parser/invalid-json-in-balanced-braces", test_invalid_json_in_balanced_braces);
  g_test_add_func ("/ch-events/parser/object-without-event", test_object_without_event);
  g_test_add_func ("/ch-events/parser/event-cut-short-in-string", test_event_cut_short_in_string);

  g_test_add_func ("/ch-events/monitor/delivers-events", test_monitor_delivers_events);
  g_test_add_func ("/ch-events/monitor/sets-fd-flags", test_monitor_sets_fd_flags);
  g_test_add_func ("/ch-events/monitor/burst-larger-than-pipe", test_monitor_burst_larger_than_pipe);
  g_test_add_func ("/ch-events/monitor/drains-pipe-in-one-wake-up", test_monitor_drains_pipe_in_one_wake_up);
  g_test_add_func ("/ch-events/monitor/skips-protocol-errors", test_monitor_skips_protocol_errors);
  g_test_add_func ("/ch-events/monitor/closed-once-at-eof", test_monitor_closed_once_at_eof);
  g_test_add_func ("/ch-events/monitor/eof-discards-incomplete-event", test_monitor_eof_discards_incomplete_event);
  g_test_add_func ("/ch-events/monitor/freed-from-event-callback", test_monitor_freed_from_event_callback);
  g_test_add_func ("/ch-events/monitor/freed-from-closed-callback", test_monitor_freed_from_closed_callback);
  g_test_add_func ("/ch-events/monitor/uses-thread-default-context", test_monitor_uses_thread_default_context);
  g_test_add_func ("/ch-events/monitor/free-with-data-pending", test_monitor_free_with_data_pending);

  return g_test_run ();
}
