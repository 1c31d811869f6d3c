/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sd_notify(3) protocol without libsystemd: one datagram of
 * newline-separated VAR=VALUE lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET, a path, or an abstract address written with a leading
 * '@'.  Without $NOTIFY_SOCKET (not under systemd) nothing is sent. */
#include "uvmctl.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *notify_socket;

void
uvmctl_notify_init (void)
{
  const char *value = g_getenv ("NOTIFY_SOCKET");

  /* Kept for this process only: the hypervisor and its helpers are not
   * the service's main process and must not speak for it. */
  if (value != NULL && (value[0] == '/' || value[0] == '@') && value[1] != '\0')
    notify_socket = g_strdup (value);
  g_unsetenv ("NOTIFY_SOCKET");
}

void
uvmctl_notify (const char *text)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  gsize len;
  socklen_t addr_len;
  int fd;

  if (notify_socket == NULL)
    return;
  len = strlen (notify_socket);
  if (len >= sizeof addr.sun_path)
    {
      g_printerr ("uvmctl: NOTIFY_SOCKET: '%s' is too long for a unix socket address\n",
                  notify_socket);
      return;
    }
  memcpy (addr.sun_path, notify_socket, len);
  addr_len = offsetof (struct sockaddr_un, sun_path) + len;
  if (addr.sun_path[0] == '@')
    addr.sun_path[0] = '\0'; /* abstract: no terminating NUL in the length */
  else
    addr_len++;
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || sendto (fd, text, strlen (text), MSG_NOSIGNAL, (struct sockaddr *) &addr,
                        addr_len) < 0)
    g_printerr ("uvmctl: NOTIFY_SOCKET: sending '%s' to '%s': %s\n", text, notify_socket,
                g_strerror (errno));
  if (fd >= 0)
    close (fd);
}
