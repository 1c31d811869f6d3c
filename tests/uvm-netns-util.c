/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See uvm-netns-util.h. */

#include "uvm-netns-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

typedef struct {
  char *path;
  gconstpointer data;
  TestNetnsBody body;
  TestNetnsSkip skip;
} NetnsCase;

static char *netns_skip_reason;
static gboolean netns_probed;

static void
run_netns_case (gconstpointer user_data)
{
  const NetnsCase *c = user_data;

  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *dir = NULL;

      if (!test_netns_enter (FALSE, &error))
        g_error ("%s", error->message);
      dir = g_dir_make_tmp ("uvm-netns-XXXXXX", NULL);
      g_assert_nonnull (dir);
      c->body (c->data, dir);
      {
        g_autofree char *quoted = g_shell_quote (dir);
        g_autofree char *cmd = g_strdup_printf ("rm -rf -- %s", quoted);
        test_run_ok (cmd);
      }
      return;
    }
  if (!netns_probed)
    {
      netns_skip_reason = test_netns_probe (FALSE);
      netns_probed = TRUE;
    }
  if (netns_skip_reason != NULL)
    {
      g_test_skip (netns_skip_reason);
      return;
    }
  if (c->skip != NULL && c->skip (c->data))
    return;
  g_test_trap_subprocess (NULL, 400 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

void
test_netns_add (const char *path, gconstpointer data, TestNetnsBody body, TestNetnsSkip skip)
{
  NetnsCase *c = g_new0 (NetnsCase, 1);   /* lives as long as the test program */

  c->path = g_strdup (path);
  c->data = data;
  c->body = body;
  c->skip = skip;
  g_test_add_data_func (c->path, c, run_netns_case);
}

gboolean
test_link_exists (const char *name)
{
  g_autofree char *path = g_build_filename ("/sys/class/net", name, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

gboolean
test_is_bridge (const char *name)
{
  g_autofree char *path = g_build_filename ("/sys/class/net", name, "bridge", NULL);
  return g_file_test (path, G_FILE_TEST_IS_DIR);
}

char *
test_links_but_lo (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/sys/class/net", 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (strcmp (name, "lo") != 0)
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (char **) names->pdata);
}

gboolean
test_has_ipv4 (const char *link)
{
  struct ifaddrs *ifa = NULL;
  gboolean found = FALSE;

  g_assert_cmpint (getifaddrs (&ifa), ==, 0);
  for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next)
    if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET && strcmp (i->ifa_name, link) == 0)
      found = TRUE;
  freeifaddrs (ifa);
  return found;
}

GPtrArray *
test_ipv6_addresses (const char *link)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *found = g_ptr_array_new_with_free_func (g_free);

  g_assert_true (g_file_get_contents ("/proc/net/if_inet6", &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) f = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
      const char *fields[6];
      guint n = 0;

      for (guint j = 0; f[j] != NULL && n < G_N_ELEMENTS (fields); j++)
        if (*f[j] != '\0')
          fields[n++] = f[j];
      if (n == 6 && strcmp (fields[5], link) == 0 && strlen (fields[0]) == 32)
        {
          struct in6_addr addr;
          char out[INET6_ADDRSTRLEN];

          for (guint b = 0; b < 16; b++)
            addr.s6_addr[b] = (guint8) (g_ascii_xdigit_value (fields[0][2 * b]) << 4 |
                                        g_ascii_xdigit_value (fields[0][2 * b + 1]));
          g_assert_nonnull (inet_ntop (AF_INET6, &addr, out, sizeof out));
          g_ptr_array_add (found, g_strdup (out));
        }
    }
  return found;
}

gboolean
test_has_ipv6 (const char *link)
{
  g_autoptr(GPtrArray) addrs = test_ipv6_addresses (link);
  return addrs->len > 0;
}

void
test_drop_cap_net_admin (void)
{
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };
  const guint32 bit = 1u << (CAP_NET_ADMIN % 32);

  g_assert_cmpint (prctl (PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0), ==, 0);
  g_assert_cmpint (syscall (SYS_capget, &header, data), ==, 0);
  data[CAP_NET_ADMIN / 32].effective &= ~bit;
  data[CAP_NET_ADMIN / 32].permitted &= ~bit;
  data[CAP_NET_ADMIN / 32].inheritable &= ~bit;
  g_assert_cmpint (syscall (SYS_capset, &header, data), ==, 0);
}

void
test_run_ok (const char *command_line)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_auto(GStrv) argv = NULL;
  int status = -1;

  if (!g_shell_parse_argv (command_line, NULL, &argv, &error) ||
      !g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                     &error))
    g_error ("%s: %s", command_line, error->message);
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("%s: %s\n%s%s", command_line, error->message, out, err);
}

GPid
test_netns_peer_start (void)
{
  int ready[2];
  char byte = 0;
  pid_t pid;

  g_assert_cmpint (pipe2 (ready, O_CLOEXEC), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (ready[0]);
      if (prctl (PR_SET_PDEATHSIG, SIGKILL) != 0 || unshare (CLONE_NEWNET) != 0)
        _exit (1);
      if (write (ready[1], "x", 1) != 1)
        _exit (1);
      for (;;)
        pause ();
    }
  close (ready[1]);
  g_assert_cmpint (read (ready[0], &byte, 1), ==, 1);
  close (ready[0]);
  return pid;
}

void
test_netns_peer_stop (GPid pid)
{
  int status;

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
}

GPid
test_netns_outside_start (const char *inside_link, const char *outside_link)
{
  GPid outside = test_netns_peer_start ();
  g_autofree char *veth = g_strdup_printf ("ip link add %s type veth peer name %s netns %d",
                                           inside_link, outside_link, (int) outside);
  g_autofree char *addr = g_strdup_printf ("ip addr add " TEST_INSIDE_ADDRESS "/24 dev %s", inside_link);
  g_autofree char *up = g_strdup_printf ("ip link set %s up", inside_link);
  g_autofree char *out_lo = g_strdup_printf ("nsenter -t %d -n ip link set lo up", (int) outside);
  g_autofree char *out_addr = g_strdup_printf ("nsenter -t %d -n ip addr add " TEST_OUTSIDE_ADDRESS "/24 dev %s",
                                               (int) outside, outside_link);
  g_autofree char *out_up = g_strdup_printf ("nsenter -t %d -n ip link set %s up", (int) outside, outside_link);

  test_run_ok ("ip link set lo up");
  test_run_ok (veth);
  test_run_ok (addr);
  test_run_ok (up);
  test_run_ok (out_lo);
  test_run_ok (out_addr);
  test_run_ok (out_up);
  test_run_ok ("ip route add default via " TEST_OUTSIDE_ADDRESS);
  return outside;
}
