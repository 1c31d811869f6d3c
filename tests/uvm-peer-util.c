/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See uvm-peer-util.h. */

#include "uvm-peer-util.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
peer_util_wake_up (G_GNUC_UNUSED gpointer data)
{
  return G_SOURCE_CONTINUE;
}

void
iterate_briefly (void)
{
  for (int i = 0; i < 100 && g_main_context_iteration (NULL, FALSE); i++)
    ;
}

guint
count_open_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  /* Not the main context's epoll fd (util/uvm-fd-watch.c): it comes with
   * the context's first watch and goes with its last, whichever object
   * that is; these tests count an object's own fds.  test-lifecycle counts
   * it, as no fd must outlive the VMs. */
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      if (g_strcmp0 (target, "anon_inode:[eventpoll]") != 0)
        n++;
    }
  return n;
}

int
peer_open (Peer *peer)
{
  int sv[2];

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  peer->fd = sv[1];
  peer->in = g_string_new (NULL);
  peer->fds = g_array_new (FALSE, FALSE, sizeof (int));
  peer->fd_offset = -1;
  peer->consumed = 0;
  peer->eof = FALSE;
  return sv[0];
}

void
peer_close_fds (Peer *peer)
{
  for (guint i = 0; i < peer->fds->len; i++)
    close (g_array_index (peer->fds, int, i));
  g_array_set_size (peer->fds, 0);
}

void
peer_hang_up (Peer *peer)
{
  if (peer->fd >= 0)
    close (peer->fd);
  peer->fd = -1;
}

void
peer_clear (Peer *peer)
{
  peer_hang_up (peer);
  peer_close_fds (peer);
  g_array_unref (peer->fds);
  g_string_free (peer->in, TRUE);
}

void
peer_write_len (Peer *peer, const char *data, gsize len)
{
  gsize done = 0;

  while (done < len)
    {
      ssize_t n = send (peer->fd, data + done, len - done, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      done += n;
    }
}

void
peer_write (Peer *peer, const char *text)
{
  peer_write_len (peer, text, strlen (text));
}

void
peer_receive (Peer *peer)
{
  for (;;)
    {
      char buf[65536];
      union {
        char buf[CMSG_SPACE (16 * sizeof (int))];
        struct cmsghdr align;
      } control;
      struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
      struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.buf, .msg_controllen = sizeof control.buf,
      };
      ssize_t n = recvmsg (peer->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_assert_cmpint (errno, ==, EAGAIN);
          break;
        }
      g_assert_false (msg.msg_flags & MSG_CTRUNC);
      for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
        {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            {
              guint count = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);

              g_array_append_vals (peer->fds, CMSG_DATA (c), count);
              peer->fd_offset = peer->consumed + peer->in->len;
            }
        }
      if (n == 0)
        {
          peer->eof = TRUE;
          break;
        }
      g_string_append_len (peer->in, buf, n);
    }
}

gboolean
peer_sees_eof (Peer *peer)
{
  peer_receive (peer);
  return peer->eof;
}

gsize
peer_bytes_waiting (Peer *peer)
{
  int n = 0;

  g_assert_no_errno (ioctl (peer->fd, FIONREAD, &n));
  return n;
}

void
peer_assert_same_file (int fd, const struct stat *original)
{
  struct stat st;

  g_assert_no_errno (fstat (fd, &st));
  g_assert_cmpuint (st.st_dev, ==, original->st_dev);
  g_assert_cmpuint (st.st_ino, ==, original->st_ino);
}
