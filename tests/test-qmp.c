/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the QMP client against a scripted peer: the test holds the
 * other end of a socketpair, writes what qemu would write and reads what
 * the client sent. */

#include "proto/uvm-qmp.h"

#include <uvm/uvm-error.h>

#include "uvm-peer-util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>

#define GREETING \
  "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " \
  "\"package\": \"Debian 1:7.2\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* ---- driving the main loop -------------------------------------------- */

/* WAIT_UNTIL(), iterate_briefly() and count_open_fds() are in
 * uvm-peer-util.h. */

/* ---- the scripted peer ------------------------------------------------ */

/* Peer and its helpers are in uvm-peer-util.h. */

/* The ids of the commands the peer has read and not answered yet, in the
 * order read (a GUINT_TO_POINTER each): peer_reply() answers the oldest,
 * as qemu does. */
static GQueue peer_ids = G_QUEUE_INIT;

static UvmQmpClient *
client_new (Peer *peer)
{
  g_queue_clear (&peer_ids);
  return uvm_qmp_client_new (peer_open (peer));
}

/* Takes whatever the client sent so far, without blocking.  TRUE once a
 * complete line is buffered. */
static gboolean
peer_poll (Peer *peer)
{
  peer_receive (peer);
  return strchr (peer->in->str, '\n') != NULL;
}

static char *
peer_read_line (Peer *peer)
{
  char *newline;
  char *line;

  WAIT_UNTIL (peer_poll (peer));
  newline = strchr (peer->in->str, '\n');
  line = g_strndup (peer->in->str, newline - peer->in->str);
  peer->consumed += newline - peer->in->str + 1;
  g_string_erase (peer->in, 0, newline - peer->in->str + 1);
  return line;
}

/* Parses a command line, checks that it carries "execute", a positive
 * integer "id" and maybe "arguments", and nothing else, and queues its id
 * in peer_ids. */
static guint
peer_take_command (const char *line, const char *command, JsonNode **arguments)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *object;
  JsonNode *args;
  JsonNode *id;

  json_parser_load_from_data (parser, line, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (object, "execute"), ==, command);
  id = json_object_get_member (object, "id");
  g_assert_nonnull (id);
  g_assert_cmpint (json_node_get_value_type (id), ==, G_TYPE_INT64);
  g_assert_cmpint (json_node_get_int (id), >, 0);
  args = json_object_get_member (object, "arguments");
  g_assert_cmpuint (json_object_get_size (object), ==, args != NULL ? 3 : 2);
  if (arguments != NULL)
    *arguments = args ? json_node_copy (args) : NULL;
  g_queue_push_tail (&peer_ids, GUINT_TO_POINTER ((guint) json_node_get_int (id)));
  return json_node_get_int (id);
}

/* Reads the next command and checks that it executes @command (see
 * peer_take_command()); its arguments go to @arguments if not NULL.
 * Returns its id. */
static guint
peer_expect_command (Peer *peer, const char *command, JsonNode **arguments)
{
  g_autofree char *line = peer_read_line (peer);

  return peer_take_command (line, command, arguments);
}

/* Reads the next command and checks its exact bytes (without the '\n'),
 * id included; @command is what it executes.  Returns its id. */
static guint
peer_expect_line (Peer *peer, const char *command, const char *expected)
{
  g_autofree char *line = peer_read_line (peer);

  g_assert_cmpstr (line, ==, expected);
  return peer_take_command (line, command, NULL);
}

/* Answers the command with id @id (and forgets it in peer_ids). */
static void
peer_reply_to (Peer *peer, guint id, const char *return_json)
{
  g_autofree char *text = g_strdup_printf ("{\"return\": %s, \"id\": %u}\r\n", return_json, id);

  g_queue_remove (&peer_ids, GUINT_TO_POINTER (id));
  peer_write (peer, text);
}

/* Answers the oldest command read and not answered yet. */
static void
peer_reply (Peer *peer, const char *return_json)
{
  g_assert_false (g_queue_is_empty (&peer_ids));
  peer_reply_to (peer, GPOINTER_TO_UINT (g_queue_peek_head (&peer_ids)), return_json);
}

/* ---- recording what the client reports -------------------------------- */

/* Completion order across commands and events. */
static guint sequence;

typedef struct {
  UvmQmpClient *client; /* not a reference */
  gboolean      done;
  gboolean      ok;
  JsonNode     *ret;
  GError       *error;
  guint         seq;
} Result;

static void
result_clear (Result *r)
{
  g_clear_pointer (&r->ret, json_node_unref);
  g_clear_error (&r->error);
}

static void
on_executed (G_GNUC_UNUSED GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *r = user_data;

  g_assert_false (r->done);
  r->ret = uvm_qmp_client_execute_finish (r->client, res, &r->error);
  g_assert_true ((r->ret == NULL) != (r->error == NULL));
  r->done = TRUE;
  r->seq = ++sequence;
}

static void
on_handshake_done (G_GNUC_UNUSED GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *r = user_data;

  g_assert_false (r->done);
  r->ok = uvm_qmp_client_handshake_finish (r->client, res, &r->error);
  g_assert_true (r->ok == (r->error == NULL));
  r->done = TRUE;
  r->seq = ++sequence;
}

static void
execute_full (UvmQmpClient *client,
              const char   *command,
              const char   *arguments_json,
              const int    *fds,
              guint         n_fds,
              GCancellable *cancellable,
              Result       *r)
{
  g_autoptr(JsonNode) arguments = NULL;

  memset (r, 0, sizeof *r);
  r->client = client;
  if (arguments_json != NULL)
    {
      g_autoptr(GError) error = NULL;

      arguments = json_from_string (arguments_json, &error);
      g_assert_no_error (error);
    }
  uvm_qmp_client_execute_async (client, command, arguments, fds, n_fds, cancellable, on_executed, r);
}

static void
execute (UvmQmpClient *client, const char *command, Result *r)
{
  execute_full (client, command, NULL, NULL, 0, NULL, r);
}

static void
do_handshake (UvmQmpClient *client, Peer *peer)
{
  Result r = { .client = client };

  peer_write (peer, GREETING);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &r);
  peer_expect_command (peer, "qmp_capabilities", NULL);
  peer_reply (peer, "{}");
  WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  g_assert_true (r.ok);
}

static const char *
return_string (Result *r, const char *member)
{
  g_assert_no_error (r->error);
  g_assert_nonnull (r->ret);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (r->ret));
  return json_object_get_string_member (json_node_get_object (r->ret), member);
}

typedef struct {
  char       *name;
  JsonObject *data;
  gint64      timestamp_us;
  guint       seq;
} Event;

static void
event_free (gpointer p)
{
  Event *e = p;

  g_free (e->name);
  g_clear_pointer (&e->data, json_object_unref);
  g_free (e);
}

static void
on_event (G_GNUC_UNUSED UvmQmpClient *client,
          const char                 *name,
          JsonObject                 *data,
          gint64                      timestamp_us,
          gpointer                    user_data)
{
  Event *e = g_new0 (Event, 1);

  e->name = g_strdup (name);
  e->data = data ? json_object_ref (data) : NULL;
  e->timestamp_us = timestamp_us;
  e->seq = ++sequence;
  g_ptr_array_add (user_data, e);
}

typedef struct {
  guint   count;
  GError *error;
} Closed;

static void
on_closed (G_GNUC_UNUSED UvmQmpClient *client, const GError *error, gpointer user_data)
{
  Closed *c = user_data;

  c->count++;
  g_clear_error (&c->error);
  if (error != NULL)
    c->error = g_error_copy (error);
}

/* ---- handshake -------------------------------------------------------- */

static void
test_handshake (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result r = { .client = client };
  g_autofree char *line = NULL;
  JsonObject *greeting;

  g_assert_null (uvm_qmp_client_get_greeting (client));
  peer_write (&peer, GREETING);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &r);

  /* The first command of the connection: id 1. */
  line = peer_read_line (&peer);
  g_assert_cmpstr (line, ==, "{\"execute\":\"qmp_capabilities\",\"id\":1}");
  g_assert_false (r.done);

  peer_write (&peer, "{\"return\": {}, \"id\": 1}\r\n");
  WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);
  g_assert_true (r.ok);

  greeting = uvm_qmp_client_get_greeting (client);
  g_assert_nonnull (greeting);
  g_assert_true (json_object_has_member (greeting, "version"));
  g_assert_false (uvm_qmp_client_is_closed (client));

  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_handshake_greeting_after_call (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result r = { .client = client };

  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &r);
  iterate_briefly ();
  /* Nothing may be sent before the greeting. */
  g_assert_false (peer_poll (&peer));

  peer_write (&peer, GREETING);
  peer_expect_command (&peer, "qmp_capabilities", NULL);
  peer_reply (&peer, "{}");
  WAIT_UNTIL (r.done);
  g_assert_true (r.ok);

  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_commands_queued_until_handshake (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result hs = { .client = client };
  Result cmd;

  execute (client, "query-status", &cmd);
  peer_write (&peer, GREETING);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &hs);

  /* The queued command took id 1 when issued; qmp_capabilities, sent
   * first, has the next. */
  peer_expect_line (&peer, "qmp_capabilities", "{\"execute\":\"qmp_capabilities\",\"id\":2}");
  iterate_briefly ();
  g_assert_false (peer_poll (&peer));
  g_assert_false (hs.done);

  peer_reply (&peer, "{}");
  peer_expect_line (&peer, "query-status", "{\"execute\":\"query-status\",\"id\":1}");
  g_assert_true (hs.done && hs.ok);
  g_assert_false (cmd.done);

  peer_reply (&peer, "{\"status\": \"running\"}");
  WAIT_UNTIL (cmd.done);
  g_assert_cmpstr (return_string (&cmd, "status"), ==, "running");

  result_clear (&cmd);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_handshake_not_greeting (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result hs = { .client = client };
  Result cmd;
  Closed closed = { 0 };

  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  execute (client, "query-status", &cmd);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &hs);
  peer_write (&peer, "{\"return\": {}, \"id\": 1}\r\n");

  WAIT_UNTIL (hs.done && cmd.done);
  g_assert_error (hs.error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_error (cmd.error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_true (uvm_qmp_client_is_closed (client));
  g_assert_null (uvm_qmp_client_get_greeting (client));
  WAIT_UNTIL (peer_sees_eof (&peer));

  result_clear (&hs);
  result_clear (&cmd);
  g_clear_error (&closed.error);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_handshake_error_reply (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result hs = { .client = client };

  peer_write (&peer, GREETING);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &hs);
  peer_expect_command (&peer, "qmp_capabilities", NULL);
  peer_write (&peer, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 1}\r\n");
  WAIT_UNTIL (hs.done);
  g_assert_error (hs.error, UVM_ERROR, UVM_ERROR_HYPERVISOR);
  g_assert_nonnull (strstr (hs.error->message, "GenericError"));
  g_assert_true (uvm_qmp_client_is_closed (client));

  result_clear (&hs);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* ---- events and framing ----------------------------------------------- */

/* Found by fuzz-qmp (tests/fuzz/corpus/qmp/regression-timestamp-overflow):
 * a timestamp qemu would never send is no timestamp, and computing it must
 * not overflow. */
static void
test_event_timestamp_out_of_range_is_zero (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (event_free);

  do_handshake (client, &peer);
  uvm_qmp_client_set_event_handler (client, on_event, g_ptr_array_ref (events),
                                    (GDestroyNotify) g_ptr_array_unref);
  peer_write (&peer, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 9223372036854775, "
                     "\"microseconds\": 1000000}}\r\n");
  peer_write (&peer, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": -1, "
                     "\"microseconds\": 0}}\r\n");
  peer_write (&peer, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, "
                     "\"microseconds\": 1000000}}\r\n");
  WAIT_UNTIL (events->len == 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (((Event *) events->pdata[i])->timestamp_us, ==, 0);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_events_interleaved (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (event_free);
  Result a, b;
  Event *e;

  do_handshake (client, &peer);
  uvm_qmp_client_set_event_handler (client, on_event, g_ptr_array_ref (events),
                                    (GDestroyNotify) g_ptr_array_unref);
  execute (client, "stop", &a);
  execute (client, "cont", &b);
  peer_expect_command (&peer, "stop", NULL);
  peer_expect_command (&peer, "cont", NULL);

  peer_write (&peer, "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, "
                     "\"event\": \"STOP\", \"data\": {\"reason\": \"pause\"}}\r\n");
  WAIT_UNTIL (events->len == 1);
  /* An event is not a reply, even to a command in flight. */
  g_assert_false (a.done);
  peer_reply (&peer, "{}");
  WAIT_UNTIL (a.done);
  peer_write (&peer, "{\"event\": \"RESUME\"}\r\n");
  WAIT_UNTIL (events->len == 2);
  g_assert_false (b.done);
  peer_reply (&peer, "{}");
  WAIT_UNTIL (b.done);

  e = events->pdata[0];
  g_assert_cmpstr (e->name, ==, "STOP");
  g_assert_nonnull (e->data);
  g_assert_cmpstr (json_object_get_string_member (e->data, "reason"), ==, "pause");
  g_assert_cmpint (e->timestamp_us, ==, G_GINT64_CONSTANT (1700000000123456));
  e = events->pdata[1];
  g_assert_cmpstr (e->name, ==, "RESUME");
  g_assert_null (e->data);
  g_assert_cmpint (e->timestamp_us, ==, 0);

  g_assert_cmpuint (((Event *) events->pdata[0])->seq, <, a.seq);
  g_assert_cmpuint (a.seq, <, ((Event *) events->pdata[1])->seq);
  g_assert_cmpuint (((Event *) events->pdata[1])->seq, <, b.seq);
  g_assert_no_error (a.error);
  g_assert_no_error (b.error);

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_reply_split_across_reads (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result r;
  g_autofree char *reply = NULL;
  gsize len;

  do_handshake (client, &peer);
  execute (client, "query-status", &r);
  reply = g_strdup_printf ("{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": %u}\r\n",
                           peer_expect_command (&peer, "query-status", NULL));
  len = strlen (reply);

  /* One byte per write, each read by the client before the next arrives.
   * The object is complete at its closing brace, before the CRLF. */
  for (gsize i = 0; i < len; i++)
    {
      g_assert_true (r.done == (i > len - 3));
      peer_write_len (&peer, reply + i, 1);
      iterate_briefly ();
    }
  WAIT_UNTIL (r.done);
  g_assert_cmpstr (return_string (&r, "status"), ==, "running");
  g_assert_true (json_object_get_boolean_member (json_node_get_object (r.ret), "running"));

  result_clear (&r);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_messages_merged_in_one_write (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (event_free);
  Result a, b;
  guint id_a, id_b;
  g_autofree char *text = NULL;

  do_handshake (client, &peer);
  uvm_qmp_client_set_event_handler (client, on_event, g_ptr_array_ref (events),
                                    (GDestroyNotify) g_ptr_array_unref);

  execute (client, "one", &a);
  execute (client, "two", &b);
  id_a = peer_expect_command (&peer, "one", NULL);
  id_b = peer_expect_command (&peer, "two", NULL);

  text = g_strdup_printf ("{\"event\": \"E1\"}\r\n"
                          "{\"return\": {\"n\": \"one\"}, \"id\": %u}\r\n"
                          "{\"event\": \"E2\"}\r\n"
                          "{\"return\": {\"n\": \"two\"}, \"id\": %u}\r\n", id_a, id_b);
  peer_write (&peer, text);
  WAIT_UNTIL (a.done && b.done && events->len == 2);

  g_assert_cmpstr (return_string (&a, "n"), ==, "one");
  g_assert_cmpstr (return_string (&b, "n"), ==, "two");
  g_assert_cmpstr (((Event *) events->pdata[0])->name, ==, "E1");
  g_assert_cmpstr (((Event *) events->pdata[1])->name, ==, "E2");

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_replies_matched_in_send_order (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result r[3];
  const char *names[3] = { "a", "b", "c" };

  do_handshake (client, &peer);
  for (guint i = 0; i < 3; i++)
    execute (client, names[i], &r[i]);
  for (guint i = 0; i < 3; i++)
    peer_expect_command (&peer, names[i], NULL);

  /* One reply at a time: each completes exactly the oldest command. */
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *payload = g_strdup_printf ("{\"n\": \"%s\"}", names[i]);

      peer_reply (&peer, payload);
      WAIT_UNTIL (r[i].done);
      iterate_briefly ();
      for (guint j = i + 1; j < 3; j++)
        g_assert_false (r[j].done);
      g_assert_cmpstr (return_string (&r[i], "n"), ==, names[i]);
    }
  g_assert_cmpuint (r[0].seq, <, r[1].seq);
  g_assert_cmpuint (r[1].seq, <, r[2].seq);
  g_assert_false (uvm_qmp_client_is_closed (client));

  for (guint i = 0; i < 3; i++)
    result_clear (&r[i]);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_reply_with_nothing_in_flight (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result a, b;
  guint id_a;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  execute (client, "a", &a);
  id_a = peer_expect_command (&peer, "a", NULL);
  peer_reply (&peer, "{\"n\": \"a\"}");
  WAIT_UNTIL (a.done);
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");

  /* One reply too many, with the id just answered: no command is in
   * flight for it, so it is dropped and the connection stays up (this
   * closed the connection when replies were matched in send order). */
  peer_reply_to (&peer, id_a, "{\"n\": \"extra\"}");
  iterate_briefly ();
  g_assert_false (uvm_qmp_client_is_closed (client));
  g_assert_cmpuint (closed.count, ==, 0);

  /* The next command gets its own answer. */
  execute (client, "b", &b);
  peer_expect_command (&peer, "b", NULL);
  peer_reply (&peer, "{\"n\": \"b\"}");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (return_string (&b, "n"), ==, "b");
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_error_reply (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result r, next;

  do_handshake (client, &peer);
  execute_full (client, "device_add", "{\"driver\": \"virtio-net-pci\", \"id\": \"x\"}",
                NULL, 0, NULL, &r);
  /* The arguments' own "id" is just an argument. */
  peer_expect_line (&peer, "device_add", "{\"execute\":\"device_add\","
                    "\"arguments\":{\"driver\":\"virtio-net-pci\",\"id\":\"x\"},\"id\":2}");
  peer_write (&peer, "{\"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"Duplicate ID 'x' for device\"}, \"id\": 2}\r\n");
  g_queue_remove (&peer_ids, GUINT_TO_POINTER (2));
  WAIT_UNTIL (r.done);

  g_assert_error (r.error, UVM_ERROR, UVM_ERROR_HYPERVISOR);
  g_assert_nonnull (strstr (r.error->message, "device_add"));
  g_assert_nonnull (strstr (r.error->message, "GenericError"));
  g_assert_nonnull (strstr (r.error->message, "Duplicate ID 'x' for device"));

  /* An error reply is an answer, not a broken connection. */
  g_assert_false (uvm_qmp_client_is_closed (client));
  execute (client, "query-status", &next);
  peer_expect_command (&peer, "query-status", NULL);
  peer_reply (&peer, "{\"status\": \"running\"}");
  WAIT_UNTIL (next.done);
  g_assert_cmpstr (return_string (&next, "status"), ==, "running");

  result_clear (&r);
  result_clear (&next);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* A reply whose id no command in flight has (never used, not an integer)
 * answers nobody: dropped, and the command waiting gets its own. */
static void
test_reply_with_unknown_id_dropped (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result a;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  execute (client, "a", &a);
  peer_expect_command (&peer, "a", NULL);

  peer_write (&peer, "{\"return\": {\"n\": \"wrong\"}, \"id\": 1000}\r\n");
  peer_write (&peer, "{\"id\": \"a\", \"return\": {\"n\": \"wrong\"}}\r\n");
  peer_write (&peer, "{\"id\": -1, \"error\": {\"class\": \"GenericError\", \"desc\": \"wrong\"}}\r\n");
  iterate_briefly ();
  g_assert_false (a.done);
  g_assert_false (uvm_qmp_client_is_closed (client));

  peer_reply (&peer, "{\"n\": \"a\"}");
  WAIT_UNTIL (a.done);
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");
  g_assert_false (uvm_qmp_client_is_closed (client));
  g_assert_cmpuint (closed.count, ==, 0);

  result_clear (&a);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_crlf_and_lf (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result a, b;
  guint id_a, id_b;
  g_autofree char *text = NULL;

  do_handshake (client, &peer);
  execute (client, "a", &a);
  execute (client, "b", &b);
  id_a = peer_expect_command (&peer, "a", NULL);
  id_b = peer_expect_command (&peer, "b", NULL);

  /* Empty lines of either kind are ignored too (not taken for replies). */
  text = g_strdup_printf ("\r\n\n{\"return\": {\"n\": \"a\"}, \"id\": %u}\n"
                          "\n\r\n{\"return\": {\"n\": \"b\"}, \"id\": %u}\r\n", id_a, id_b);
  peer_write (&peer, text);
  WAIT_UNTIL (a.done && b.done);
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");
  g_assert_cmpstr (return_string (&b, "n"), ==, "b");
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* ---- matching by id and framing ------------------------------------ */

/* Two commands in flight, answered second first: each reply reaches the
 * command whose id it echoes. */
static void
test_replies_out_of_order (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result a, b;
  guint id_a, id_b;

  do_handshake (client, &peer);
  execute (client, "a", &a);
  execute (client, "b", &b);
  id_a = peer_expect_command (&peer, "a", NULL);
  id_b = peer_expect_command (&peer, "b", NULL);
  g_assert_cmpuint (id_a, !=, id_b);

  peer_reply_to (&peer, id_b, "{\"n\": \"b\"}");
  WAIT_UNTIL (b.done);
  iterate_briefly ();
  g_assert_false (a.done);
  g_assert_cmpstr (return_string (&b, "n"), ==, "b");

  peer_reply_to (&peer, id_a, "{\"n\": \"a\"}");
  WAIT_UNTIL (a.done);
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");
  g_assert_cmpuint (b.seq, <, a.seq);
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* A peer echoing ids that are no longer, or not yet, a command's in
 * flight (one already answered, qmp_capabilities', one not yet sent) never
 * makes a call return another call's answer. */
static void
test_hostile_ids_never_cross_answers (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result hs = { .client = client };
  Result queued, a, b;
  guint caps_id, queued_id, id_a, id_b;
  g_autofree char *forged = NULL;

  /* Issued before the handshake: it has an id but is not on the wire. */
  execute (client, "queued", &queued);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &hs);
  peer_write (&peer, GREETING);
  caps_id = peer_expect_command (&peer, "qmp_capabilities", NULL);
  /* The queued command took id 1 and has not been sent. */
  forged = g_strdup_printf ("{\"return\": {\"n\": \"forged\"}, \"id\": %u}\r\n", caps_id - 1);
  peer_write (&peer, forged);
  iterate_briefly ();
  g_assert_false (queued.done);
  peer_reply (&peer, "{}");
  WAIT_UNTIL (hs.done);
  g_assert_true (hs.ok);
  queued_id = peer_expect_command (&peer, "queued", NULL);
  g_assert_cmpuint (queued_id, ==, caps_id - 1);
  peer_reply (&peer, "{\"n\": \"queued\"}");
  WAIT_UNTIL (queued.done);
  g_assert_cmpstr (return_string (&queued, "n"), ==, "queued");

  execute (client, "a", &a);
  id_a = peer_expect_command (&peer, "a", NULL);
  peer_reply (&peer, "{\"n\": \"a\"}");
  WAIT_UNTIL (a.done);
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");

  execute (client, "b", &b);
  id_b = peer_expect_command (&peer, "b", NULL);
  /* Replays of answered ids: a's, qmp_capabilities', the queued one's. */
  peer_reply_to (&peer, id_a, "{\"n\": \"a again\"}");
  peer_reply_to (&peer, caps_id, "{\"n\": \"capabilities again\"}");
  peer_reply_to (&peer, queued_id, "{\"n\": \"queued again\"}");
  iterate_briefly ();
  g_assert_false (b.done);

  peer_reply_to (&peer, id_b, "{\"n\": \"b\"}");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (return_string (&b, "n"), ==, "b");
  /* The answered ones kept their own answers. */
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");
  g_assert_cmpstr (return_string (&queued, "n"), ==, "queued");
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&queued);
  result_clear (&a);
  result_clear (&b);
  result_clear (&hs);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* qemu with pretty=on: objects over several lines, here with LF only. */
static void
test_pretty_printed_reply_and_event (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (event_free);
  g_autofree char *text = NULL;
  Result r;
  Event *e;

  do_handshake (client, &peer);
  uvm_qmp_client_set_event_handler (client, on_event, g_ptr_array_ref (events),
                                    (GDestroyNotify) g_ptr_array_unref);
  execute (client, "query-status", &r);
  text = g_strdup_printf ("{\n"
                          "    \"timestamp\": {\n"
                          "        \"seconds\": 1700000000,\n"
                          "        \"microseconds\": 5\n"
                          "    },\n"
                          "    \"event\": \"STOP\",\n"
                          "    \"data\": {\n"
                          "        \"reason\": \"{not a brace}\"\n"
                          "    }\n"
                          "}\n"
                          "{\n"
                          "    \"return\": {\n"
                          "        \"status\": \"paused\",\n"
                          "        \"running\": false\n"
                          "    },\n"
                          "    \"id\": %u\n"
                          "}\n", peer_expect_command (&peer, "query-status", NULL));
  peer_write (&peer, text);
  WAIT_UNTIL (r.done && events->len == 1);

  e = events->pdata[0];
  g_assert_cmpstr (e->name, ==, "STOP");
  g_assert_cmpstr (json_object_get_string_member (e->data, "reason"), ==, "{not a brace}");
  g_assert_cmpint (e->timestamp_us, ==, G_GINT64_CONSTANT (1700000000000005));
  g_assert_cmpstr (return_string (&r, "status"), ==, "paused");
  g_assert_cmpuint (e->seq, <, r.seq);
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&r);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* The same kind of message, CRLF, one byte per read. */
static void
test_pretty_printed_byte_by_byte (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autofree char *text = NULL;
  Result r;

  do_handshake (client, &peer);
  execute (client, "query-status", &r);
  text = g_strdup_printf ("{\r\n"
                          "    \"return\": {\r\n"
                          "        \"status\": \"a \\\"quoted\\\" \\\\ }\"\r\n"
                          "    },\r\n"
                          "    \"id\": %u\r\n"
                          "}\r\n", peer_expect_command (&peer, "query-status", NULL));
  for (const char *p = text; *p != '\0'; p++)
    {
      peer_write_len (&peer, p, 1);
      iterate_briefly ();
    }
  WAIT_UNTIL (r.done);
  g_assert_cmpstr (return_string (&r, "status"), ==, "a \"quoted\" \\ }");

  result_clear (&r);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* Several messages on one line, with no separator at all. */
static void
test_messages_coalesced_on_one_line (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (event_free);
  g_autofree char *text = NULL;
  Result a, b;
  guint id_a, id_b;

  do_handshake (client, &peer);
  uvm_qmp_client_set_event_handler (client, on_event, g_ptr_array_ref (events),
                                    (GDestroyNotify) g_ptr_array_unref);
  execute (client, "a", &a);
  execute (client, "b", &b);
  id_a = peer_expect_command (&peer, "a", NULL);
  id_b = peer_expect_command (&peer, "b", NULL);

  text = g_strdup_printf ("{\"event\":\"E1\"}{\"return\":{\"n\":\"}b{\"},\"id\":%u}"
                          "  {\"return\":{\"n\":\"a\"},\"id\":%u}{\"event\":\"E2\"}\r\n", id_b, id_a);
  peer_write (&peer, text);
  WAIT_UNTIL (a.done && b.done && events->len == 2);
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");
  g_assert_cmpstr (return_string (&b, "n"), ==, "}b{");
  g_assert_cmpstr (((Event *) events->pdata[0])->name, ==, "E1");
  g_assert_cmpstr (((Event *) events->pdata[1])->name, ==, "E2");

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* Lines that are not JSON before the greeting are dropped too (a peer
 * printing a banner); the first JSON object must be the greeting. */
static void
test_garbage_before_greeting_dropped (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result hs = { .client = client };

  peer_write (&peer, "qemu: warning: something\r\n");
  peer_write (&peer, GREETING);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &hs);
  peer_expect_command (&peer, "qmp_capabilities", NULL);
  peer_reply (&peer, "{}");
  WAIT_UNTIL (hs.done);
  g_assert_no_error (hs.error);
  g_assert_nonnull (uvm_qmp_client_get_greeting (client));

  result_clear (&hs);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_eof_mid_reply (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  g_autofree char *half = NULL;
  Result r;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  execute (client, "query-status", &r);
  half = g_strdup_printf ("{\"id\": %u, \"return\": {\"status\": \"runn",
                          peer_expect_command (&peer, "query-status", NULL));
  peer_write (&peer, half);
  iterate_briefly ();
  g_assert_false (r.done);

  peer_hang_up (&peer);
  WAIT_UNTIL (r.done && closed.count > 0);
  g_assert_error (r.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_nonnull (strstr (r.error->message, "query-status"));
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_no_error (closed.error);

  result_clear (&r);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* A command cancelled on the wire is forgotten when its deadline passes,
 * without closing; its id stays unknown, so a late reply is still
 * dropped. */
static void
test_cancelled_command_deadline_forgets_it (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Closed closed = { 0 };
  Result a, b;
  guint id_a;
  gint64 until;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  uvm_qmp_client_set_request_timeout (client, 100);
  execute_full (client, "a", NULL, NULL, 0, cancellable, &a);
  id_a = peer_expect_command (&peer, "a", NULL);
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  until = g_get_monotonic_time () + 250 * 1000;
  WAIT_UNTIL (g_get_monotonic_time () > until);
  g_assert_false (uvm_qmp_client_is_closed (client));
  g_assert_cmpuint (closed.count, ==, 0);

  uvm_qmp_client_set_request_timeout (client, 0);
  execute (client, "b", &b);
  peer_expect_command (&peer, "b", NULL);
  peer_reply_to (&peer, id_a, "{\"n\": \"a\"}");
  iterate_briefly ();
  g_assert_false (b.done);
  peer_reply (&peer, "{\"n\": \"b\"}");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (return_string (&b, "n"), ==, "b");

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_handshake_timeout_without_greeting (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result hs = { .client = client };
  Result queued;

  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  uvm_qmp_client_set_request_timeout (client, 100);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &hs);
  /* Issued later, so its own deadline is later too. */
  g_usleep (30 * 1000);
  execute (client, "query-status", &queued);

  WAIT_UNTIL (hs.done && queued.done);
  g_assert_error (hs.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_cmpstr (hs.error->message, ==, "QMP handshake: no greeting within 100 ms");
  g_assert_error (queued.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_true (uvm_qmp_client_is_closed (client));
  WAIT_UNTIL (peer_sees_eof (&peer));
  /* Nothing was sent: no greeting, no qmp_capabilities. */
  g_assert_cmpuint (peer.in->len, ==, 0);

  result_clear (&hs);
  result_clear (&queued);
  g_clear_error (&closed.error);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_handshake_timeout_without_capabilities_reply (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result hs = { .client = client };

  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  uvm_qmp_client_set_request_timeout (client, 100);
  peer_write (&peer, GREETING);
  uvm_qmp_client_handshake_async (client, NULL, on_handshake_done, &hs);
  peer_expect_command (&peer, "qmp_capabilities", NULL);

  WAIT_UNTIL (hs.done);
  g_assert_error (hs.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_cmpstr (hs.error->message, ==, "QMP handshake: no reply to qmp_capabilities within 100 ms");
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.error, UVM_ERROR, UVM_ERROR_TIMEOUT);
  g_assert_true (uvm_qmp_client_is_closed (client));

  result_clear (&hs);
  g_clear_error (&closed.error);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* ---- broken input ----------------------------------------------------- */

/* Sends @bad while a command is pending, then the command's reply: @bad
 * is dropped, the command gets its own answer and the connection stays
 * up.  (These closed the connection with UVM_ERROR_PROTOCOL before
 * replies were matched by id.) */
static void
check_dropped (const char *bad)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result r;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  execute (client, "query-status", &r);
  peer_expect_command (&peer, "query-status", NULL);
  peer_write (&peer, bad);
  iterate_briefly ();
  g_assert_false (r.done);

  peer_reply (&peer, "{\"status\": \"running\"}");
  WAIT_UNTIL (r.done);
  g_assert_cmpstr (return_string (&r, "status"), ==, "running");
  g_assert_false (uvm_qmp_client_is_closed (client));
  g_assert_cmpuint (closed.count, ==, 0);

  result_clear (&r);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* An unbalanced '{': the next message, at the start of its line, is read. */
static void
test_malformed_json (void)
{
  check_dropped ("{\"return\": {}, \r\n");
}

/* Balanced but not JSON, on one line. */
static void
test_object_that_does_not_parse (void)
{
  check_dropped ("{\"return\": {}, }\r\n");
}

/* Balanced over several lines but not JSON: dropped up to its first
 * newline, its other lines then taken for garbage, not for messages. */
static void
test_multi_line_object_that_does_not_parse (void)
{
  check_dropped ("{\r\n"
                 "    \"return\": {\"n\": {\"x\": 1}},\r\n"
                 "    {\"return\": {}, \"id\": 2}\r\n"
                 "}\r\n");
}

static void
test_non_object_message (void)
{
  check_dropped ("[1, 2, 3]\r\n");
}

static void
test_unrecognised_object (void)
{
  check_dropped ("{\"something\": \"else\"}\r\n");
}

static void
test_garbage_line (void)
{
  check_dropped ("Segmentation fault (core dumped) {\r\n");
}

/* A raw newline cannot be inside a JSON string: the broken object ends
 * there, and the quote it leaves open swallows nothing. */
static void
test_unterminated_string (void)
{
  check_dropped ("{\"error\": {\"desc\": \"cut short\n");
}

/* qemu's answer to input it could not parse carries no id: it belongs to
 * no command. */
static void
test_idless_error_reply (void)
{
  check_dropped ("{\"error\": {\"class\": \"GenericError\", "
                 "\"desc\": \"JSON parse error, invalid keyword 'x'\"}}\r\n");
}

static void
test_event_without_name (void)
{
  check_dropped ("{\"event\": 42}\r\n");
}

static void
test_oversized_message (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result r;
  char chunk[65536];
  gsize total = 0;
  const gsize flood = 64 * 1024 * 1024;
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  uvm_qmp_client_set_max_message (client, 1024);
  execute (client, "query-status", &r);
  peer_expect_command (&peer, "query-status", NULL);

  /* An endless line: the client must give up and hang up long before the
   * peer gets it all out. */
  memset (chunk, 'x', sizeof chunk);
  chunk[0] = '{';
  while (total < flood)
    {
      ssize_t n = send (peer.fd, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL);

      if (n > 0)
        total += n;
      else if (n < 0 && (errno == EAGAIN || errno == EINTR))
        {
          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
          g_main_context_iteration (NULL, FALSE);
        }
      else
        {
          g_assert_true (errno == EPIPE || errno == ECONNRESET);
          break;
        }
    }
  g_assert_cmpuint (total, <, 4 * 1024 * 1024);

  WAIT_UNTIL (r.done);
  g_assert_error (r.error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.error, UVM_ERROR, UVM_ERROR_PROTOCOL);

  result_clear (&r);
  g_clear_error (&closed.error);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_message_limit_is_exact (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result a, b;
  /* For a (id 2) and b (id 3), after qmp_capabilities (id 1). */
  const char *fits = "{\"return\": {\"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}, \"id\": 2}";
  /* The same length plus one, for the other command. */
  const char *too_long = "{\"return\": {\"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}, \"id\": 3}";

  do_handshake (client, &peer);
  execute (client, "a", &a);
  execute (client, "b", &b);
  g_assert_cmpuint (peer_expect_command (&peer, "a", NULL), ==, 2);
  g_assert_cmpuint (peer_expect_command (&peer, "b", NULL), ==, 3);

  g_assert_cmpuint (strlen (too_long), ==, strlen (fits) + 1);
  uvm_qmp_client_set_max_message (client, strlen (fits));

  peer_write (&peer, fits);
  peer_write (&peer, "\r\n");
  WAIT_UNTIL (a.done);
  g_assert_no_error (a.error);
  g_assert_false (uvm_qmp_client_is_closed (client));

  peer_write (&peer, too_long);
  peer_write (&peer, "\r\n");
  WAIT_UNTIL (b.done);
  g_assert_error (b.error, UVM_ERROR, UVM_ERROR_PROTOCOL);
  g_assert_true (uvm_qmp_client_is_closed (client));

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_eof_after_quit (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result quit, other;

  do_handshake (client, &peer);
  execute (client, "query-status", &other);
  execute (client, "quit", &quit);
  peer_expect_command (&peer, "query-status", NULL);
  peer_expect_command (&peer, "quit", NULL);

  peer_hang_up (&peer);
  WAIT_UNTIL (quit.done && other.done);
  g_assert_no_error (quit.error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (quit.ret));
  g_assert_cmpuint (json_object_get_size (json_node_get_object (quit.ret)), ==, 0);
  g_assert_error (other.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);

  result_clear (&quit);
  result_clear (&other);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* ---- cancellation ----------------------------------------------------- */

static void
test_cancel_pending (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result a, b;

  do_handshake (client, &peer);
  execute_full (client, "slow", NULL, NULL, 0, cancellable, &a);
  peer_expect_command (&peer, "slow", NULL);

  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  execute (client, "next", &b);
  peer_expect_command (&peer, "next", NULL);
  /* The late reply of the cancelled command must not reach the next one. */
  peer_reply (&peer, "{\"n\": \"slow\"}");
  iterate_briefly ();
  g_assert_false (b.done);
  g_assert_false (uvm_qmp_client_is_closed (client));
  peer_reply (&peer, "{\"n\": \"next\"}");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (return_string (&b, "n"), ==, "next");
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_cancel_unsent (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result a, b;

  /* Queued behind the handshake, so not on the wire yet. */
  execute_full (client, "never", NULL, NULL, 0, cancellable, &a);
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* It never goes out, and no reply is expected for it: the first one
   * after the handshake is the next command's. */
  do_handshake (client, &peer);
  execute (client, "next", &b);
  peer_expect_command (&peer, "next", NULL);
  peer_reply (&peer, "{\"n\": \"next\"}");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (return_string (&b, "n"), ==, "next");
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* Several commands on the wire, the oldest cancelled: its reply, when it
 * comes, must be dropped, not handed to the command after it. */
static void
test_cancelled_sent_command_keeps_order (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result a, b, c;

  do_handshake (client, &peer);
  execute_full (client, "a", NULL, NULL, 0, cancellable, &a);
  execute (client, "b", &b);
  peer_expect_command (&peer, "a", NULL);
  peer_expect_command (&peer, "b", NULL);

  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (a.done);
  g_assert_error (a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* Issued after the cancellation, behind the placeholder. */
  execute (client, "c", &c);
  peer_expect_command (&peer, "c", NULL);

  peer_reply (&peer, "{\"n\": \"a\"}");
  iterate_briefly ();
  g_assert_false (b.done);
  g_assert_false (c.done);

  peer_reply (&peer, "{\"n\": \"b\"}");
  WAIT_UNTIL (b.done);
  g_assert_cmpstr (return_string (&b, "n"), ==, "b");
  iterate_briefly ();
  g_assert_false (c.done);

  peer_reply (&peer, "{\"n\": \"c\"}");
  WAIT_UNTIL (c.done);
  g_assert_cmpstr (return_string (&c, "n"), ==, "c");
  g_assert_false (uvm_qmp_client_is_closed (client));

  result_clear (&a);
  result_clear (&b);
  result_clear (&c);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

static void
test_cancel_handshake (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result hs = { .client = client };

  uvm_qmp_client_handshake_async (client, cancellable, on_handshake_done, &hs);
  g_cancellable_cancel (cancellable);
  WAIT_UNTIL (hs.done);
  g_assert_error (hs.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  result_clear (&hs);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* ---- writing --------------------------------------------------------- */

static void
test_execute_writes_before_returning (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Result a, b;

  do_handshake (client, &peer);
  execute (client, "query-status", &a);
  /* No main-loop iteration: the whole command is there already. */
  g_assert_true (peer_poll (&peer));
  peer_expect_line (&peer, "query-status", "{\"execute\":\"query-status\",\"id\":2}");
  g_assert_false (a.done);

  /* Also while another command is in flight (written, unanswered). */
  execute_full (client, "x", "{\"a\": [1, 2], \"b\": {\"c\": true}}", NULL, 0, NULL, &b);
  g_assert_true (peer_poll (&peer));
  peer_expect_line (&peer, "x", "{\"execute\":\"x\",\"arguments\":{\"a\":[1,2],\"b\":{\"c\":true}},\"id\":3}");
  g_assert_false (b.done);

  peer_reply (&peer, "{\"n\": \"a\"}");
  peer_reply (&peer, "{\"n\": \"b\"}");
  WAIT_UNTIL (a.done && b.done);
  g_assert_cmpstr (return_string (&a, "n"), ==, "a");
  g_assert_cmpstr (return_string (&b, "n"), ==, "b");

  result_clear (&a);
  result_clear (&b);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* The same through the output queue: issued before the handshake, the
 * command goes out from the G_IO_OUT source, its fds with its first byte. */
static void
test_fd_passing_when_queued (void)
{
  /* getfd took id 1 when issued. */
  const char *caps_line = "{\"execute\":\"qmp_capabilities\",\"id\":2}\n";
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  int pipe_fds[2];
  struct stat original;
  struct stat st;
  Result r;

  g_assert_no_errno (pipe2 (pipe_fds, O_CLOEXEC));
  g_assert_no_errno (fstat (pipe_fds[0], &original));
  execute_full (client, "getfd", "{\"fdname\": \"queued\"}", pipe_fds, 1, NULL, &r);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  iterate_briefly ();
  g_assert_false (peer_poll (&peer));

  do_handshake (client, &peer);
  peer_expect_line (&peer, "getfd", "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"queued\"},\"id\":1}");
  g_assert_cmpuint (peer.fds->len, ==, 1);
  /* With the first byte after the capabilities line. */
  g_assert_cmpint (peer.fd_offset, ==, (gssize) strlen (caps_line));
  g_assert_no_errno (fstat (g_array_index (peer.fds, int, 0), &st));
  g_assert_cmpuint (st.st_dev, ==, original.st_dev);
  g_assert_cmpuint (st.st_ino, ==, original.st_ino);

  peer_reply (&peer, "{}");
  WAIT_UNTIL (r.done);
  g_assert_no_error (r.error);

  result_clear (&r);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* ---- the connection's parameters (the rest is tests/test-conn.c) ------ */

/* The errors of a connection that ends name the command and the QMP
 * connection. */
static void
test_eof_error_names_command_and_qmp_connection (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result r;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  execute (client, "query-status", &r);
  peer_expect_command (&peer, "query-status", NULL);
  peer_hang_up (&peer);

  WAIT_UNTIL (r.done);
  g_assert_error (r.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpstr (r.error->message, ==, "query-status: the hypervisor closed the QMP connection");
  g_assert_true (uvm_qmp_client_is_closed (client));
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_no_error (closed.error);

  result_clear (&r);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

/* The QMP client's owner hears of its own close too (a NULL error, once). */
static void
test_close_runs_closed_handler (void)
{
  Peer peer;
  UvmQmpClient *client = client_new (&peer);
  Closed closed = { 0 };
  Result pending;

  do_handshake (client, &peer);
  uvm_qmp_client_set_closed_handler (client, on_closed, &closed, NULL);
  execute (client, "query-status", &pending);
  peer_expect_command (&peer, "query-status", NULL);

  uvm_qmp_client_close (client);
  g_assert_true (uvm_qmp_client_is_closed (client));
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_no_error (closed.error);
  uvm_qmp_client_close (client);
  g_assert_cmpuint (closed.count, ==, 1);
  WAIT_UNTIL (pending.done);
  g_assert_error (pending.error, UVM_ERROR, UVM_ERROR_HYPERVISOR_DIED);
  g_assert_cmpstr (pending.error->message, ==, "query-status: connection closed");

  result_clear (&pending);
  uvm_qmp_client_unref (client);
  peer_clear (&peer);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/qmp/handshake", test_handshake);
  g_test_add_func ("/qmp/handshake-greeting-after-call", test_handshake_greeting_after_call);
  g_test_add_func ("/qmp/commands-queued-until-handshake", test_commands_queued_until_handshake);
  g_test_add_func ("/qmp/first-message-not-greeting", test_handshake_not_greeting);
  g_test_add_func ("/qmp/handshake-error-reply", test_handshake_error_reply);
  g_test_add_func ("/qmp/events-interleaved-with-replies", test_events_interleaved);
  g_test_add_func ("/qmp/event-timestamp-out-of-range-is-zero",
                   test_event_timestamp_out_of_range_is_zero);
  g_test_add_func ("/qmp/reply-split-across-reads", test_reply_split_across_reads);
  g_test_add_func ("/qmp/messages-merged-in-one-write", test_messages_merged_in_one_write);
  g_test_add_func ("/qmp/replies-matched-in-send-order", test_replies_matched_in_send_order);
  g_test_add_func ("/qmp/reply-with-nothing-in-flight-dropped", test_reply_with_nothing_in_flight);
  g_test_add_func ("/qmp/reply-with-unknown-id-dropped", test_reply_with_unknown_id_dropped);
  g_test_add_func ("/qmp/error-reply", test_error_reply);
  g_test_add_func ("/qmp/replies-out-of-order", test_replies_out_of_order);
  g_test_add_func ("/qmp/hostile-ids-never-cross-answers", test_hostile_ids_never_cross_answers);
  g_test_add_func ("/qmp/pretty-printed-reply-and-event-lf", test_pretty_printed_reply_and_event);
  g_test_add_func ("/qmp/pretty-printed-byte-by-byte-crlf", test_pretty_printed_byte_by_byte);
  g_test_add_func ("/qmp/messages-coalesced-on-one-line", test_messages_coalesced_on_one_line);
  g_test_add_func ("/qmp/garbage-before-greeting-dropped", test_garbage_before_greeting_dropped);
  g_test_add_func ("/qmp/eof-mid-reply-fails-pending", test_eof_mid_reply);
  g_test_add_func ("/qmp/timeout/cancelled-command-forgotten", test_cancelled_command_deadline_forgets_it);
  g_test_add_func ("/qmp/timeout/handshake-without-greeting", test_handshake_timeout_without_greeting);
  g_test_add_func ("/qmp/timeout/handshake-without-capabilities-reply",
                   test_handshake_timeout_without_capabilities_reply);
  g_test_add_func ("/qmp/crlf-and-lf", test_crlf_and_lf);
  g_test_add_func ("/qmp/dropped/unbalanced-brace-line", test_malformed_json);
  g_test_add_func ("/qmp/dropped/object-that-does-not-parse", test_object_that_does_not_parse);
  g_test_add_func ("/qmp/dropped/multi-line-object-that-does-not-parse",
                   test_multi_line_object_that_does_not_parse);
  g_test_add_func ("/qmp/dropped/non-object-message", test_non_object_message);
  g_test_add_func ("/qmp/dropped/unrecognised-object", test_unrecognised_object);
  g_test_add_func ("/qmp/dropped/garbage-line", test_garbage_line);
  g_test_add_func ("/qmp/dropped/unterminated-string", test_unterminated_string);
  g_test_add_func ("/qmp/dropped/id-less-error-reply", test_idless_error_reply);
  g_test_add_func ("/qmp/dropped/event-without-name", test_event_without_name);
  g_test_add_func ("/qmp/oversized-message", test_oversized_message);
  g_test_add_func ("/qmp/message-limit-is-exact", test_message_limit_is_exact);
  g_test_add_func ("/qmp/eof-after-quit-is-success", test_eof_after_quit);
  g_test_add_func ("/qmp/eof-error-names-command-and-qmp-connection",
                   test_eof_error_names_command_and_qmp_connection);
  g_test_add_func ("/qmp/close-runs-closed-handler", test_close_runs_closed_handler);
  g_test_add_func ("/qmp/execute-writes-before-returning", test_execute_writes_before_returning);
  g_test_add_func ("/qmp/cancel-pending", test_cancel_pending);
  g_test_add_func ("/qmp/cancel-unsent", test_cancel_unsent);
  g_test_add_func ("/qmp/cancelled-sent-command-keeps-order", test_cancelled_sent_command_keeps_order);
  g_test_add_func ("/qmp/cancel-handshake", test_cancel_handshake);
  g_test_add_func ("/qmp/fd-passing-when-queued", test_fd_passing_when_queued);

  return g_test_run ();
}
