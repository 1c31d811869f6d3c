/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm-console-relay: the serial console of one VM run, interactive and
 * always logged (libvirt's virtlogd has the same job).  libuvm starts it
 * as a helper of the run, before the hypervisor, with three fds the
 * library opened:
 *
 *   --hypervisor-fd N  our end of the hypervisor's serial line (a stream
 *                      socket pair for qemu, the controlling side of a pty
 *                      for cloud-hypervisor)
 *   --log-fd N         the console log, opened for appending
 *   --listen-fd N      the listening unix socket console.sock
 *
 * Every byte from the hypervisor goes to the log first, then to every
 * connected client; what a client sends goes to the hypervisor.  It ends
 * when the hypervisor's side ends (after writing what was left), so the
 * log is complete whoever started the VM and whether or not that process
 * still runs.  It needs no file system access and runs as the VM user.
 * Plain C and poll(): it is small and must start fast. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 32
/* A client that does not read is dropped once this much waits for it:
 * the console never waits for a slow reader. */
#define CLIENT_BACKLOG (1024 * 1024)
/* Input for the guest that waits for it to read: beyond this, clients are
 * not read until the guest took some (the output keeps flowing, so a
 * guest that writes while it does not read never blocks the relay). */
#define INPUT_BACKLOG (1024 * 1024)

typedef struct {
  int fd;
  char *pending;        /* output not yet taken by the client */
  size_t len;
  int dead;             /* dropped: removed at the end of the round */
} Client;

static Client clients[MAX_CLIENTS];
static size_t n_clients;
static char *input;             /* for the hypervisor, not written yet */
static size_t input_len;

static int
parse_fd (const char *text)
{
  char *end = NULL;
  long v;

  errno = 0;
  v = strtol (text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0 || v > 65535)
    return -1;
  return (int) v;
}

/* Writes all of @data to a blocking fd. */
static int
write_all (int fd, const char *data, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      data += n;
      len -= (size_t) n;
    }
  return 0;
}

/* Marks client @i dropped: the arrays are compacted only between poll
 * rounds, so that pfds[] and clients[] keep the same order in a round. */
static void
drop_client (size_t i)
{
  clients[i].dead = 1;
}

static void
compact_clients (void)
{
  size_t kept = 0;

  for (size_t i = 0; i < n_clients; i++)
    {
      if (clients[i].dead)
        {
          close (clients[i].fd);
          free (clients[i].pending);
          continue;
        }
      clients[kept++] = clients[i];
    }
  n_clients = kept;
}

/* Sends what waits for client @i without blocking; -1: drop it. */
static int
flush_client (size_t i)
{
  Client *c = &clients[i];

  while (c->len > 0)
    {
      ssize_t n = send (c->fd, c->pending, c->len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
      if (n <= 0)
        return -1;
      memmove (c->pending, c->pending + n, c->len - (size_t) n);
      c->len -= (size_t) n;
    }
  return 0;
}

static int
queue_client (size_t i, const char *data, size_t len)
{
  Client *c = &clients[i];
  char *grown;

  if (c->len + len > CLIENT_BACKLOG)
    return -1;
  grown = realloc (c->pending, c->len + len);
  if (grown == NULL)
    return -1;
  c->pending = grown;
  memcpy (c->pending + c->len, data, len);
  c->len += len;
  return flush_client (i);
}

/* Output of the guest: the log first (so that a client that sees it can
 * find it in the log), then every client. */
static void
distribute (int log_fd, const char *data, size_t len)
{
  if (write_all (log_fd, data, len) != 0)
    fprintf (stderr, "uvm-console-relay: writing the log: %s\n", strerror (errno));
  for (size_t i = 0; i < n_clients; i++)
    if (!clients[i].dead && queue_client (i, data, len) != 0)
      drop_client (i);
}

/* Queues client input for the hypervisor; -1 when out of memory. */
static int
queue_input (const char *data, size_t len)
{
  char *grown = realloc (input, input_len + len);

  if (grown == NULL)
    return -1;
  input = grown;
  memcpy (input + input_len, data, len);
  input_len += len;
  return 0;
}

/* Writes what waits for the hypervisor without blocking; -1: it is gone. */
static int
flush_input (int hv_fd)
{
  while (input_len > 0)
    {
      ssize_t n = write (hv_fd, input, input_len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
      if (n <= 0)
        return -1;
      memmove (input, input + n, input_len - (size_t) n);
      input_len -= (size_t) n;
    }
  return 0;
}

static void
usage (void)
{
  fprintf (stderr, "usage: uvm-console-relay --hypervisor-fd N --log-fd N --listen-fd N\n");
  exit (2);
}

int
main (int argc, char **argv)
{
  int hv_fd = -1, log_fd = -1, listen_fd = -1;
  char buf[16384];

  for (int i = 1; i < argc; i++)
    {
      int *slot = strcmp (argv[i], "--hypervisor-fd") == 0 ? &hv_fd
                  : strcmp (argv[i], "--log-fd") == 0 ? &log_fd
                  : strcmp (argv[i], "--listen-fd") == 0 ? &listen_fd : NULL;
      if (slot == NULL || i + 1 == argc || (*slot = parse_fd (argv[++i])) < 0)
        usage ();
    }
  if (hv_fd < 0 || log_fd < 0 || listen_fd < 0)
    usage ();
  signal (SIGPIPE, SIG_IGN);
  /* None of these reaches anything we might start (we start nothing). */
  fcntl (hv_fd, F_SETFD, FD_CLOEXEC);
  fcntl (log_fd, F_SETFD, FD_CLOEXEC);
  fcntl (listen_fd, F_SETFD, FD_CLOEXEC);
  /* Never blocked by the guest: its input is queued (flush_input()). */
  fcntl (hv_fd, F_SETFL, fcntl (hv_fd, F_GETFL) | O_NONBLOCK);

  for (;;)
    {
      struct pollfd pfds[2 + MAX_CLIENTS];
      size_t polled;
      nfds_t n = 0;

      compact_clients ();
      polled = n_clients;

      pfds[n++] = (struct pollfd) { hv_fd, POLLIN | (input_len > 0 ? POLLOUT : 0), 0 };
      pfds[n++] = (struct pollfd) { listen_fd, n_clients < MAX_CLIENTS ? POLLIN : 0, 0 };
      for (size_t i = 0; i < n_clients; i++)
        pfds[n++] = (struct pollfd) { clients[i].fd,
                                      (input_len < INPUT_BACKLOG ? POLLIN : 0) |
                                      (clients[i].len > 0 ? POLLOUT : 0), 0 };
      if (poll (pfds, n, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          fprintf (stderr, "uvm-console-relay: poll: %s\n", strerror (errno));
          return 1;
        }

      if (pfds[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          ssize_t got = read (hv_fd, buf, sizeof buf);

          /* EOF (socket) or EIO (pty whose other side is closed): the
           * hypervisor is gone, and everything it wrote was read. */
          if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
            break;
          if (got > 0)
            distribute (log_fd, buf, (size_t) got);
        }
      /* A hypervisor that cannot take input any more is ending: what it
       * still wrote is read above until the end of file. */
      if ((pfds[0].revents & POLLOUT) && flush_input (hv_fd) != 0)
        input_len = 0;

      /* pfds[2 + i] is clients[i] (new clients come after them). */
      for (size_t i = 0; i < polled; i++)
        {
          short re = pfds[2 + i].revents;

          if (re == 0 || clients[i].dead)
            continue;
          if (re & POLLIN)
            {
              ssize_t got = recv (clients[i].fd, buf, sizeof buf, MSG_DONTWAIT);
              if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
              if (got <= 0)
                {
                  drop_client (i);
                  continue;
                }
              if (queue_input (buf, (size_t) got) != 0)
                {
                  fprintf (stderr, "uvm-console-relay: input for the hypervisor: %s\n",
                           strerror (errno));
                  drop_client (i);
                  continue;
                }
              if (flush_input (hv_fd) != 0)
                input_len = 0;
            }
          else if (re & (POLLHUP | POLLERR))
            {
              drop_client (i);
              continue;
            }
          if ((re & POLLOUT) && flush_client (i) != 0)
            drop_client (i);
        }

      if (pfds[1].revents & POLLIN)
        {
          int fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (fd >= 0)
            clients[n_clients++] = (Client) { fd, NULL, 0, 0 };
        }
    }

  /* What clients still wait for, once, without blocking; then the end
   * (closing their sockets tells them the console is gone). */
  for (size_t i = 0; i < n_clients; i++)
    if (!clients[i].dead)
      flush_client (i);
  return 0;
}
