/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the QMP client (uvm-qmp.h) with what a broken or hostile qemu
 * could send on the monitor socket.  The input is the peer's whole side of
 * the conversation: written into the other end of a socketpair in pieces,
 * the client's main context iterated until idle after each, then EOF.
 *
 * Meanwhile the client has a handshake and four commands in flight, as the
 * library has them: a plain one, one with arguments, one carrying an fd
 * (SCM_RIGHTS), one cancelled after the first piece (its late reply must
 * be discarded), and "quit" (EOF before its reply is success).  Whatever
 * the input, when it is over every callback has run exactly once, the
 * closed handler once, nothing is left in the main context, and dropping
 * the client frees everything (LeakSanitizer) and closes its socket. */
#include "fuzz-common.h"

#include "proto/uvm-qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Odd, so that message boundaries fall everywhere within pieces. */
#define PIECE 61
/* Small, so that inputs of a few KiB reach the size cap. */
#define MAX_MESSAGE 2048

enum { CMD_STATUS, CMD_ARGS, CMD_FD, CMD_CANCELLED, CMD_QUIT, N_CMDS };

typedef struct {
  guint handshakes;       /* handshake callbacks run */
  guint replies[N_CMDS];  /* command callbacks run, per command */
  guint closed;           /* closed handler runs */
  guint events;
} Run;

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *run = user_data;
  GError *error = NULL;
  gboolean ok = uvm_qmp_client_handshake_finish (NULL, result, &error);

  FUZZ_CHECK (ok == (error == NULL));
  g_clear_error (&error);
  run->handshakes++;
}

typedef struct {
  Run *run;
  guint which;
} Pending;

static void
on_reply (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Pending *p = user_data;
  GError *error = NULL;
  JsonNode *ret = uvm_qmp_client_execute_finish (NULL, result, &error);

  FUZZ_CHECK ((ret == NULL) != (error == NULL));
  if (p->which == CMD_CANCELLED)
    FUZZ_CHECK (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_clear_pointer (&ret, json_node_unref);
  g_clear_error (&error);
  p->run->replies[p->which]++;
}

static void
on_event (UvmQmpClient *client, const char *event, JsonObject *data, gint64 timestamp_us,
          gpointer user_data)
{
  Run *run = user_data;

  FUZZ_CHECK (event != NULL);
  if (data != NULL)
    (void) json_object_get_size (data);
  run->events++;
}

static void
on_closed (UvmQmpClient *client, const GError *error, gpointer user_data)
{
  Run *run = user_data;

  run->closed++;
}

static void
iterate_until_idle (GMainContext *context)
{
  while (g_main_context_iteration (context, FALSE))
    ;
}

/* Reads what the client sent, as qemu would, so that its writes never
 * block, and closes the fds that came with it. */
static void
drain_peer (int fd)
{
  for (;;)
    {
      char buf[4096];
      union {
        struct cmsghdr align;
        char space[CMSG_SPACE (sizeof (int) * 8)];
      } control;
      struct iovec iov = { buf, sizeof buf };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = control.space, .msg_controllen = sizeof control.space };
      ssize_t n = recvmsg (fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

      if (n <= 0)
        return;
      for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
          {
            int *fds = (int *) CMSG_DATA (c);
            gsize n_fds = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);

            for (gsize i = 0; i < n_fds; i++)
              close (fds[i]);
          }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GMainContext *context = g_main_context_new ();
  GCancellable *cancellable = g_cancellable_new ();
  Run run = { 0 };
  Pending pending[N_CMDS];
  UvmQmpClient *client;
  JsonNode *args;
  int sv[2], passed_fd, client_fd;
  gboolean peer_open = TRUE;

  fuzz_fatal_warnings ();
  /* A context of its own: nothing of one input can touch the next. */
  g_main_context_push_thread_default (context);

  FUZZ_CHECK (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  client_fd = sv[0];
  client = uvm_qmp_client_new (client_fd);
  uvm_qmp_client_set_max_message (client, MAX_MESSAGE);
  uvm_qmp_client_set_event_handler (client, on_event, &run, NULL);
  uvm_qmp_client_set_closed_handler (client, on_closed, &run, NULL);

  uvm_qmp_client_handshake_async (client, NULL, on_handshake, &run);
  for (guint i = 0; i < N_CMDS; i++)
    pending[i] = (Pending) { &run, i };
  uvm_qmp_client_execute_async (client, "query-status", NULL, NULL, 0, NULL, on_reply,
                                &pending[CMD_STATUS]);
  args = json_from_string ("{\"command-line\": \"info block\"}", NULL);
  uvm_qmp_client_execute_async (client, "human-monitor-command", args, NULL, 0, NULL, on_reply,
                                &pending[CMD_ARGS]);
  json_node_unref (args);
  passed_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  FUZZ_CHECK (passed_fd >= 0);
  uvm_qmp_client_execute_async (client, "getfd", NULL, &passed_fd, 1, NULL, on_reply,
                                &pending[CMD_FD]);
  close (passed_fd);   /* not taken by the client */
  uvm_qmp_client_execute_async (client, "query-block", NULL, NULL, 0, cancellable, on_reply,
                                &pending[CMD_CANCELLED]);
  uvm_qmp_client_execute_async (client, "quit", NULL, NULL, 0, NULL, on_reply,
                                &pending[CMD_QUIT]);
  iterate_until_idle (context);

  for (gsize at = 0; at < size && peer_open; at += PIECE)
    {
      gsize len = MIN (PIECE, size - at);

      /* The client may have hung up on a protocol error: then the rest
       * of the input goes nowhere (EPIPE), as it would from qemu. */
      if (send (sv[1], data + at, len, MSG_NOSIGNAL) != (ssize_t) len)
        peer_open = FALSE;
      if (at == 0)
        g_cancellable_cancel (cancellable);
      iterate_until_idle (context);
      drain_peer (sv[1]);
    }
  g_cancellable_cancel (cancellable);
  iterate_until_idle (context);

  /* EOF: whatever was still waiting fails now. */
  close (sv[1]);
  iterate_until_idle (context);
  FUZZ_CHECK (run.handshakes == 1);
  for (guint i = 0; i < N_CMDS; i++)
    FUZZ_CHECK (run.replies[i] == 1);
  FUZZ_CHECK (run.closed == 1);
  FUZZ_CHECK (uvm_qmp_client_is_closed (client));

  uvm_qmp_client_unref (client);
  iterate_until_idle (context);
  /* Nothing else opens fds meanwhile (no threads), so the number is
   * still free unless the client leaked its socket. */
  FUZZ_CHECK (fcntl (client_fd, F_GETFD) == -1 && errno == EBADF);
  g_object_unref (cancellable);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  return 0;
}
