/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See uvm-netns-util.h. */

#include "uvm-netns-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static gboolean
write_proc_file (const char *path, const char *text, GError **error)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", path,
                   g_strerror (errno));
      return FALSE;
    }
  ok = write (fd, text, strlen (text)) == (ssize_t) strlen (text);
  if (!ok)
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", path,
                 g_strerror (errno));
  close (fd);
  return ok;
}

gboolean
test_netns_enter (gboolean allow_userns, GError **error)
{
  if (unshare (CLONE_NEWNET | CLONE_NEWNS) != 0)
    {
      uid_t uid = getuid ();
      gid_t gid = getgid ();
      g_autofree char *uid_map = g_strdup_printf ("0 %u 1", (unsigned) uid);
      g_autofree char *gid_map = g_strdup_printf ("0 %u 1", (unsigned) gid);

      if (!allow_userns)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                       "unshare (CLONE_NEWNET | CLONE_NEWNS): %s", g_strerror (errno));
          return FALSE;
        }
      if (errno != EPERM ||
          unshare (CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                       "unshare (CLONE_NEWNET | CLONE_NEWNS), also with CLONE_NEWUSER: %s",
                       g_strerror (errno));
          return FALSE;
        }
      if (!write_proc_file ("/proc/self/setgroups", "deny", error) ||
          !write_proc_file ("/proc/self/uid_map", uid_map, error) ||
          !write_proc_file ("/proc/self/gid_map", gid_map, error))
        return FALSE;
    }
  /* Our mounts stay ours, and the new sysfs shows the new namespace. */
  if (mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount ("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "mounting sysfs: %s",
                   g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

char *
test_netns_probe (gboolean allow_userns)
{
  char answer[512] = "";
  ssize_t n;
  int pipe_fds[2];
  pid_t pid;

  g_assert_cmpint (pipe2 (pipe_fds, O_CLOEXEC), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *text = NULL;

      if (!test_netns_enter (allow_userns, &error))
        text = g_strdup_printf ("cannot run in a private network namespace: %s",
                                error->message);
      else if (open ("/dev/net/tun", O_RDWR | O_CLOEXEC) < 0)
        text = g_strdup_printf ("cannot open /dev/net/tun: %s", g_strerror (errno));
      else
        text = g_strdup ("ok");
      n = write (pipe_fds[1], text, strlen (text));
      _exit (0);
    }
  close (pipe_fds[1]);
  do
    n = read (pipe_fds[0], answer, sizeof answer - 1);
  while (n < 0 && errno == EINTR);
  close (pipe_fds[0]);
  while (waitpid (pid, NULL, 0) < 0)
    g_assert_cmpint (errno, ==, EINTR);
  if (strcmp (answer, "ok") == 0)
    return NULL;
  return g_strdup (n > 0 ? answer : "cannot run in a private network namespace");
}
