/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bench-raw-rest.h"
#include "bench-util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define API_PREFIX "/api/v1/"
#define READ_TIMEOUT_S 30

static void
rest_close (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

void
raw_rest_init (RawRest *r)
{
  memset (r, 0, sizeof *r);
  r->fd = -1;
  r->events_fd = -1;
}

void
raw_rest_plan_clear (RawRestPlan *plan)
{
  g_strfreev (plan->argv);
  g_free (plan->vm_config);
  if (plan->files != NULL)
    {
      for (guint i = 0; i < plan->files->len; i++)
        g_free (g_array_index (plan->files, RawRestFile, i).path);
      g_array_unref (plan->files);
    }
  g_free (plan->socket_path);
  g_free (plan->log_path);
  g_free (plan->console_path);
  memset (plan, 0, sizeof *plan);
}

gboolean
raw_plan_files_parse (const char *launch_plan, GArray *files, GError **error)
{
  for (const char *line = launch_plan; line != NULL && *line != '\0';
       line = strchr (line, '\n') ? strchr (line, '\n') + 1 : NULL)
    {
      g_autofree char *text = g_strndup (line, strcspn (line, "\n"));
      const char *q1, *q2;
      RawRestFile f = { -1, NULL, 0 };

      if (!g_str_has_prefix (text, "# fd "))
        continue;
      q1 = strchr (text, '\'');
      q2 = q1 ? strchr (q1 + 1, '\'') : NULL;
      if (q2 == NULL)
        continue;
      if (g_str_has_prefix (q2, "' (read-only"))
        f.flags = O_RDONLY;
      else if (g_str_has_prefix (q2, "' (write, append"))
        f.flags = O_WRONLY | O_CREAT | O_APPEND;
      else if (g_str_has_prefix (q2, "' (write"))
        f.flags = O_WRONLY | O_CREAT;
      else if (g_str_has_prefix (q2, "' (read-write"))
        f.flags = O_RDWR;
      else
        continue;   /* a tap, a link: not a file */
      f.fd = atoi (text + 5);
      if (f.fd < 3)
        return bench_fail (error, "file fd below 3 in libuvm's launch plan: %s", text);
      f.path = g_strndup (q1 + 1, q2 - q1 - 1);
      g_array_append_val (files, f);
    }
  return TRUE;
}

int *
raw_plan_files_open (GArray *files, GError **error)
{
  int *fds = g_new (int, files->len + 1);

  for (guint i = 0; i < files->len; i++)
    {
      const RawRestFile *f = &g_array_index (files, RawRestFile, i);

      fds[i] = open (f->path, f->flags | O_CLOEXEC, 0600);
      if (fds[i] < 0)
        {
          bench_fail (error, "raw launch: open %s: %s", f->path, g_strerror (errno));
          while (i-- > 0)
            close (fds[i]);
          g_free (fds);
          return NULL;
        }
    }
  return fds;
}

void
raw_plan_files_close (GArray *files, int *fds)
{
  if (fds == NULL)
    return;
  for (guint i = 0; i < files->len; i++)
    close (fds[i]);
  g_free (fds);
}

gboolean
raw_plan_files_install (GArray *files, int *fds)
{
  /* Out of the way first: one may sit on another's number. */
  for (guint i = 0; i < files->len; i++)
    if ((fds[i] = fcntl (fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
      return FALSE;
  for (guint i = 0; i < files->len; i++)
    if (dup2 (fds[i], ((RawRestFile *) (void *) files->data)[i].fd) < 0)
      return FALSE;
  return TRUE;
}

static int
fd_option (char **argv, const char *option)
{
  for (guint i = 1; argv[i] != NULL && argv[i + 1] != NULL; i++)
    if (g_str_equal (argv[i], option) && g_str_has_prefix (argv[i + 1], "fd="))
      return atoi (argv[i + 1] + 3);
  return -1;
}

gboolean
raw_rest_plan_init (RawRestPlan *plan, const char *command_line, const char *launch_plan,
                    const char *executable, const char *dir, GError **error)
{
  static const char create[] = "PUT " API_PREFIX "vm.create ";
  const char *p;
  int argc = 0;

  memset (plan, 0, sizeof *plan);
  if (!g_shell_parse_argv (command_line, &argc, &plan->argv, error))
    return FALSE;
  g_free (plan->argv[0]);
  plan->argv[0] = g_strdup (executable);
  plan->api_fd = fd_option (plan->argv, "--api-socket");
  plan->event_fd = fd_option (plan->argv, "--event-monitor");
  if (plan->api_fd < 3 || plan->event_fd < 3 || plan->api_fd == plan->event_fd)
    return bench_fail (error, "no --api-socket fd=N and --event-monitor fd=M in libuvm's command line: %s",
                       command_line);
  /* The plan lists the control requests as comment lines, the body on the
   * same line as the request. */
  p = strstr (launch_plan, create);
  if (p == NULL)
    return bench_fail (error, "no \"%s\" request in libuvm's launch plan", create);
  p += strlen (create);
  plan->vm_config = g_strndup (p, strcspn (p, "\n"));
  plan->files = g_array_new (FALSE, TRUE, sizeof (RawRestFile));
  if (!raw_plan_files_parse (launch_plan, plan->files, error))
    return FALSE;
  plan->socket_path = g_build_filename (dir, "control.sock", NULL);
  plan->log_path = g_build_filename (dir, "hypervisor.log", NULL);
  plan->console_path = g_build_filename (dir, "console.log", NULL);
  return TRUE;
}

/* Forks and execs; async-signal-safe calls only in the child.  setsid and
 * PDEATHSIG as libuvm does. */
static pid_t
rest_spawn (const RawRestPlan *plan, int listen_fd, int event_fd, int null_fd, int log_fd,
            int *file_fds)
{
  pid_t parent = getpid ();
  pid_t pid = fork ();

  if (pid != 0)
    return pid;
  setsid ();
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != parent)
    _exit (127);
  if (dup2 (null_fd, 0) < 0 || dup2 (log_fd, 1) < 0 || dup2 (log_fd, 2) < 0)
    _exit (127);
  /* Move both out of the way first: either may sit on the other's number. */
  listen_fd = fcntl (listen_fd, F_DUPFD_CLOEXEC, 64);
  event_fd = fcntl (event_fd, F_DUPFD_CLOEXEC, 64);
  if (listen_fd < 0 || event_fd < 0 || !raw_plan_files_install (plan->files, file_fds) ||
      dup2 (listen_fd, plan->api_fd) < 0 || dup2 (event_fd, plan->event_fd) < 0)
    _exit (127);
  execv (plan->argv[0], plan->argv);
  _exit (127);
}

static gboolean
rest_send (RawRest *r, const char *text, size_t len, GError **error)
{
  while (len > 0)
    {
      ssize_t n = send (r->fd, text, len, MSG_NOSIGNAL);

      if (n < 0)
        return bench_fail (error, "raw REST write: %s", g_strerror (errno));
      text += n;
      len -= (size_t) n;
    }
  return TRUE;
}

/* Reads until @want bytes are in buf. */
static gboolean
rest_fill (RawRest *r, size_t want, GError **error)
{
  if (want >= sizeof r->buf)
    return bench_fail (error, "raw REST: response longer than %zu bytes", sizeof r->buf);
  while (r->len < want)
    {
      ssize_t n = read (r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);

      if (n < 0)
        return bench_fail (error, "raw REST read: %s", errno == EAGAIN ? "timed out" : g_strerror (errno));
      if (n == 0)
        return bench_fail (error, "raw REST: the hypervisor closed the connection (see its log)");
      r->len += (size_t) n;
    }
  return TRUE;
}

gboolean
raw_rest_request (RawRest *r, const char *method, const char *endpoint, const char *body,
                  const char **body_out, GError **error)
{
  char head[512];
  int head_len;
  char *end, *cl;
  size_t header_len, content_length = 0, total;
  guint status;

  /* Drop what the previous call handed out. */
  r->len = 0;
  if (body != NULL)
    head_len = g_snprintf (head, sizeof head,
                           "%s " API_PREFIX "%s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
                           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                           method, endpoint, strlen (body));
  else
    head_len = g_snprintf (head, sizeof head,
                           "%s " API_PREFIX "%s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n",
                           method, endpoint);
  if (!rest_send (r, head, (size_t) head_len, error) ||
      (body != NULL && !rest_send (r, body, strlen (body), error)))
    return FALSE;

  /* One request in flight: whatever arrives belongs to this response. */
  for (;;)
    {
      r->buf[r->len] = '\0';
      if ((end = strstr (r->buf, "\r\n\r\n")) != NULL)
        break;
      if (!rest_fill (r, r->len + 1, error))
        return FALSE;
    }
  header_len = (size_t) (end - r->buf) + 4;
  *end = '\0';
  if (strncmp (r->buf, "HTTP/1.", 7) != 0 || r->len < 12)
    return bench_fail (error, "raw REST %s: not an HTTP response: %s", endpoint, r->buf);
  status = (guint) atoi (r->buf + 9);
  for (cl = r->buf; (cl = strstr (cl, "\r\n")) != NULL; cl += 2)
    if (g_ascii_strncasecmp (cl + 2, "Content-Length:", 15) == 0)
      content_length = (size_t) g_ascii_strtoull (cl + 17, NULL, 10);
  total = header_len + content_length;
  if (!rest_fill (r, total, error))
    return FALSE;
  r->buf[total] = '\0';
  if (r->len != total)
    return bench_fail (error, "raw REST %s: unexpected bytes after the response", endpoint);
  if (status < 200 || status > 299)
    return bench_fail (error, "raw REST %s %s: status %u: %s", method, endpoint, status, r->buf + header_len);
  if (body_out != NULL)
    *body_out = r->buf + header_len;
  return TRUE;
}

gboolean
raw_rest_start (const RawRestPlan *plan, RawRest *r, gint64 *elapsed_ns, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct timeval timeout = { .tv_sec = READ_TIMEOUT_S };
  int listen_fd = -1, null_fd = -1, log_fd = -1, pipe_fds[2] = { -1, -1 };
  const char *info = NULL;
  gboolean ok = FALSE;
  int *file_fds = NULL;
  gint64 t0;

  g_assert (r->pid == 0);
  raw_rest_init (r);
  if (strlen (plan->socket_path) >= sizeof addr.sun_path)
    return bench_fail (error, "socket path too long: %s", plan->socket_path);
  g_strlcpy (addr.sun_path, plan->socket_path, sizeof addr.sun_path);
  unlink (plan->socket_path);
  unlink (plan->console_path);

  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  log_fd = open (plan->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (null_fd < 0 || log_fd < 0 || listen_fd < 0 || pipe2 (pipe_fds, O_CLOEXEC) != 0)
    {
      bench_fail (error, "raw REST setup: %s", g_strerror (errno));
      goto out;
    }
  if (bind (listen_fd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (listen_fd, 16) != 0)
    {
      bench_fail (error, "raw REST setup: %s: %s", plan->socket_path, g_strerror (errno));
      goto out;
    }

  t0 = bench_now_ns ();
  /* Opened in the timed part, as libuvm opens them in its start. */
  file_fds = raw_plan_files_open (plan->files, error);
  if (file_fds == NULL)
    goto out;
  r->pid = rest_spawn (plan, listen_fd, pipe_fds[1], null_fd, log_fd, file_fds);
  if (r->pid < 0)
    {
      r->pid = 0;
      bench_fail (error, "fork: %s", g_strerror (errno));
      goto out;
    }
  /* The events are not read: the hypervisor drops what a full pipe cannot
   * take, and a handful of events never fill it. */
  r->events_fd = pipe_fds[0];
  pipe_fds[0] = -1;
  r->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0 || connect (r->fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      bench_fail (error, "raw REST connect: %s", g_strerror (errno));
      goto out;
    }
  rest_close (&listen_fd);
  setsockopt (r->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (!raw_rest_request (r, "GET", "vmm.ping", NULL, NULL, error) ||
      !raw_rest_request (r, "PUT", "vm.create", plan->vm_config, NULL, error) ||
      !raw_rest_request (r, "PUT", "vm.boot", NULL, NULL, error) ||
      !raw_rest_request (r, "GET", "vm.info", NULL, &info, error))
    goto out;
  *elapsed_ns = bench_now_ns () - t0;
  if (strstr (info, "\"state\":\"Running\"") == NULL)
    {
      bench_fail (error, "raw REST vm.info: not Running: %s", info);
      goto out;
    }
  ok = TRUE;

out:
  raw_plan_files_close (plan->files, file_fds);
  rest_close (&listen_fd);
  rest_close (&null_fd);
  rest_close (&log_fd);
  rest_close (&pipe_fds[0]);
  rest_close (&pipe_fds[1]);
  if (!ok)
    {
      g_autofree char *log = NULL;

      raw_rest_stop (r);
      if (error != NULL && *error != NULL && g_file_get_contents (plan->log_path, &log, NULL, NULL) &&
          *g_strstrip (log) != '\0')
        g_prefix_error (error, "hypervisor log: %s\n", log);
    }
  return ok;
}

void
raw_rest_stop (RawRest *r)
{
  if (r->pid > 0)
    {
      kill (r->pid, SIGKILL);
      while (waitpid (r->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
  r->pid = 0;
  rest_close (&r->fd);
  rest_close (&r->events_fd);
  r->len = 0;
}
