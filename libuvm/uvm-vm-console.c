/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The console of a run, on the library's side: the log directory, the fds
 * the launcher makes for the console relay (libexec/uvm-console-relay.c:
 * the log, the listening console socket, cloud-hypervisor's pty), opening
 * the console, and waiting for a pattern in its output.
 *
 * The relay, not the library, moves the bytes: the console keeps being
 * logged and served when the process that started the VM is gone.  A
 * wait reads the log (which also holds what came before the wait began),
 * woken by inotify when it grows, and holds a connection to the console
 * socket only to learn that the relay ended.  (The socket cannot be the
 * wake-up: what the relay writes between our connect() and its accept()
 * reaches the log but not us.) */
#include "uvm-vm-private.h"
#include "uvm-event-private.h"
#include "util/uvm-fd-watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

/* A console line longer than this is matched by its last part only. */
#define MAX_LINE (64 * 1024)
/* How long the relay may take to write what the hypervisor left, once the
 * hypervisor is gone: it only has to read a closed socket or pty. */
#define RELAY_DRAIN_MS 2000

/* ---- Definition ---------------------------------------------------- */

void
uvm_vm_set_log_dir (UvmVm *vm, const char *path)
{
  g_return_if_fail (UVM_IS_VM (vm));
  if (uvm_vm_is_active (vm))
    {
      g_critical ("uvm_vm_set_log_dir: VM '%s' is running; its console log cannot move under it",
                  vm->name);
      return;
    }
  g_free (vm->log_dir);
  vm->log_dir = path != NULL ? uvm_absolute_path (path) : NULL;
  g_clear_pointer (&vm->console_path, g_free);   /* recomputed */
}

const char *
uvm_vm_get_log_dir (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return vm->log_dir;
}

const char *
uvm_vm_get_console_socket_path (UvmVm *vm)
{
  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  return uvm_vm_get_console_path (vm) != NULL ? vm->console_socket_path : NULL;
}

/* ---- The launcher's part ------------------------------------------- */

static int
bind_console_socket (const char *path, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  if (strlen (path) >= sizeof addr.sun_path)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "console socket '%s': the path is too long "
                     "for a unix socket", path);
      return -1;
    }
  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "console socket: %s", g_strerror (errno));
      return -1;
    }
  unlink (path);
  /* Listening before the relay runs: an early client waits in the backlog. */
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 || chmod (path, 0600) != 0 ||
      listen (fd, 16) != 0)
    {
      uvm_set_error (error, UVM_ERROR_START_FAILED, "console socket '%s': %s", path,
                     g_strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

int
uvm_vm_open_helper_fd (UvmVm *self, const UvmPlanFd *pfd, GError **error)
{
  struct stat st;
  int fd;

  switch (pfd->kind)
    {
    case UVM_PLAN_FD_CONSOLE_SOCKET:
      return bind_console_socket (self->console_socket_path, error);
    case UVM_PLAN_FD_FILE:
      /* The console log: the relay appends to it.  Never a link we did
       * not expect to follow into someone else's file: O_NOFOLLOW. */
      fd = open (pfd->path, pfd->flags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
      if (fd < 0 || fstat (fd, &st) != 0)
        {
          uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: cannot open '%s': %s", pfd->what,
                         pfd->path, g_strerror (errno));
          if (fd >= 0)
            close (fd);
          return -1;
        }
      /* What the log held before is an earlier run's: a wait reads on
       * from here. */
      self->console_log_start = st.st_size;
      return fd;
    default:
      uvm_set_error (error, UVM_ERROR_START_FAILED, "%s: not a file or socket of a helper",
                     pfd->what);
      return -1;
    }
}

gboolean
uvm_vm_open_console_pty (int *controller, int *terminal, GError **error)
{
  char name[64];
  struct termios tio;
  int c, t = -1;

  c = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (c < 0 || grantpt (c) != 0 || unlockpt (c) != 0 || ptsname_r (c, name, sizeof name) != 0 ||
      (t = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
    goto fail;
  /* Raw, as cloud-hypervisor makes its stdout when it is a terminal: no
   * echo, no line editing, no newline translation between the guest's
   * serial port and the relay.  Set here so that it holds from the first
   * byte, whatever the hypervisor does. */
  if (tcgetattr (t, &tio) != 0)
    goto fail;
  cfmakeraw (&tio);
  if (tcsetattr (t, TCSANOW, &tio) != 0)
    goto fail;
  *controller = c;
  *terminal = t;
  return TRUE;

fail:
  uvm_set_error (error, UVM_ERROR_START_FAILED, "console pty: %s", g_strerror (errno));
  if (c >= 0)
    close (c);
  if (t >= 0)
    close (t);
  return FALSE;
}

gboolean
uvm_vm_helper_is_console_relay (const Helper *helper)
{
  return g_strcmp0 (helper->name, "uvm-console-relay") == 0;
}

void
uvm_vm_drain_console_relay (UvmVm *self)
{
  gint64 deadline = g_get_monotonic_time () + RELAY_DRAIN_MS * G_TIME_SPAN_MILLISECOND;

  for (guint i = 0; i < self->helpers->len; i++)
    {
      Helper *helper = g_ptr_array_index (self->helpers, i);
      struct pollfd pfd = { -1, POLLIN, 0 };
      int left;

      if (!uvm_vm_helper_is_console_relay (helper) || helper->watch == NULL ||
          uvm_child_watch_has_exited (helper->watch))
        continue;
      /* Our unreaped child: its pid cannot be anyone else's yet.  A
       * pidfd turns readable when it exits; bounded, since a relay that
       * hangs is ended like any helper afterwards. */
      pfd.fd = (int) syscall (SYS_pidfd_open, uvm_child_watch_get_pid (helper->watch), 0);
      if (pfd.fd < 0)
        continue;
      left = (int) ((deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);
      while (left > 0 && poll (&pfd, 1, left) < 0 && errno == EINTR)
        left = (int) ((deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND);
      close (pfd.fd);
    }
}

/* ---- Opening the console ------------------------------------------- */

static int
connect_console (UvmVm *vm, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  if (uvm_vm_get_console_path (vm) == NULL)
    {
      uvm_set_error (error, UVM_ERROR_NOT_RUNNING, "VM '%s' has no console device", vm->name);
      return -1;
    }
  if (!uvm_vm_is_active (vm))
    {
      uvm_set_error (error, UVM_ERROR_NOT_RUNNING, "VM '%s' has no hypervisor process",
                     vm->name);
      return -1;
    }
  g_strlcpy (addr.sun_path, vm->console_socket_path, sizeof addr.sun_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      uvm_set_error (error, UVM_ERROR_NOT_RUNNING, "VM '%s': connecting to its console socket "
                     "'%s': %s", vm->name, vm->console_socket_path, g_strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  return fd;
}

int
uvm_vm_open_console (UvmVm *vm, GError **error)
{
  g_return_val_if_fail (UVM_IS_VM (vm), -1);
  return connect_console (vm, error);
}

/* ---- Waiting for a pattern ----------------------------------------- */

typedef struct {
  UvmVm *vm;                /* a reference */
  GRegex *regex;
  char *pattern;
  int sock;                 /* a client of the console socket: its end is the relay's */
  int log_fd;
  int inotify_fd;           /* wake-ups: the log was written */
  GString *line;            /* the current line, not yet ended */
  UvmFdWatch *watch;        /* on sock */
  UvmFdWatch *log_watch;    /* on inotify_fd */
  GSource *timeout;
  GSource *cancel_source;
  guint timeout_ms;
} ConsoleWait;

static void
console_wait_free (gpointer data)
{
  ConsoleWait *w = data;

  g_clear_pointer (&w->watch, uvm_fd_watch_remove);
  g_clear_pointer (&w->log_watch, uvm_fd_watch_remove);
  uvm_source_clear (&w->timeout);
  uvm_source_clear (&w->cancel_source);
  if (w->sock >= 0)
    close (w->sock);
  if (w->inotify_fd >= 0)
    close (w->inotify_fd);
  if (w->log_fd >= 0)
    close (w->log_fd);
  g_clear_pointer (&w->regex, g_regex_unref);
  g_free (w->pattern);
  g_string_free (w->line, TRUE);
  g_object_unref (w->vm);
  g_free (w);
}

/* Ends the wait once: the sources go first so that none fires again. */
static void
console_wait_done (GTask *task, char *line, GError *error)
{
  ConsoleWait *w = g_task_get_task_data (task);

  g_clear_pointer (&w->watch, uvm_fd_watch_remove);
  g_clear_pointer (&w->log_watch, uvm_fd_watch_remove);
  uvm_source_clear (&w->timeout);
  uvm_source_clear (&w->cancel_source);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    {
      g_autoptr(JsonObject) data = json_object_new ();
      g_autoptr(UvmEvent) event = NULL;

      json_object_set_string_member (data, "pattern", w->pattern);
      json_object_set_string_member (data, "line", line);
      event = uvm_event_new_hypervisor (UVM_EVENT_CONSOLE_MATCH, w->vm->state, "console-match",
                                        data, NULL);
      uvm_vm_emit_event (w->vm, event);
      g_task_return_pointer (task, line, g_free);
    }
  g_object_unref (task);
}

/* Whether @text (one line, without its newline) matches.  A line not
 * ended yet (@ended FALSE) has no end for `$` to match: a pattern ending
 * in `$` waits for the whole line. */
static char *
match_line (ConsoleWait *w, const char *text, gssize len, gboolean ended)
{
  if (g_regex_match_full (w->regex, text, len, 0, ended ? 0 : G_REGEX_MATCH_NOTEOL, NULL, NULL))
    return g_strndup (text, len);
  return NULL;
}

/* Reads the log on from where the wait is: the matching line (newly
 * allocated), or NULL with nothing matched so far. */
static char *
scan_log (ConsoleWait *w)
{
  char buf[8192];

  for (;;)
    {
      ssize_t got = read (w->log_fd, buf, sizeof buf);
      const char *p, *end;

      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        break;
      for (p = buf, end = buf + got; p < end;)
        {
          const char *nl = memchr (p, '\n', (size_t) (end - p));
          const char *stop = nl ? nl : end;
          char *hit;

          g_string_append_len (w->line, p, stop - p);
          p = nl ? nl + 1 : end;
          if (nl == NULL)
            break;
          if (w->line->len > 0 && w->line->str[w->line->len - 1] == '\r')
            g_string_truncate (w->line, w->line->len - 1);
          hit = match_line (w, w->line->str, (gssize) w->line->len, TRUE);
          g_string_truncate (w->line, 0);
          if (hit != NULL)
            return hit;
        }
      if (w->line->len > MAX_LINE)
        g_string_erase (w->line, 0, (gssize) (w->line->len - MAX_LINE));
    }
  /* A line not ended yet counts too: a prompt has no newline. */
  if (w->line->len > 0)
    return match_line (w, w->line->str, (gssize) w->line->len, FALSE);
  return NULL;
}

/* The log was written: read on. */
static gboolean
on_log_written (int fd, GIOCondition condition, gpointer user_data)
{
  GTask *task = user_data;
  ConsoleWait *w = g_task_get_task_data (task);
  char events[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  char *hit;

  while (read (fd, events, sizeof events) > 0)
    ;
  hit = scan_log (w);
  if (hit != NULL)
    {
      w->log_watch = NULL;   /* removed by G_SOURCE_REMOVE */
      console_wait_done (task, hit, NULL);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* The relay's output for us (not needed: the log has it) or its end. */
static gboolean
on_console_readable (int fd, GIOCondition condition, gpointer user_data)
{
  GTask *task = user_data;
  ConsoleWait *w = g_task_get_task_data (task);
  char discard[4096];
  gboolean closed = FALSE;
  char *hit;

  for (;;)
    {
      ssize_t got = recv (fd, discard, sizeof discard, MSG_DONTWAIT);
      if (got > 0)
        continue;
      if (got < 0 && errno == EINTR)
        continue;
      closed = got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
      break;
    }
  if (!closed)
    return G_SOURCE_CONTINUE;
  /* The relay is gone, after writing everything to the log. */
  w->watch = NULL;
  hit = scan_log (w);
  if (hit != NULL)
    console_wait_done (task, hit, NULL);
  else
    console_wait_done (task, NULL,
                       g_error_new (UVM_ERROR, UVM_ERROR_NOT_RUNNING,
                                    "VM '%s': the console closed (the hypervisor exited) "
                                    "before /%s/ appeared on it", w->vm->name, w->pattern));
  return G_SOURCE_REMOVE;
}

static gboolean
on_console_timeout (gpointer user_data)
{
  GTask *task = user_data;
  ConsoleWait *w = g_task_get_task_data (task);

  g_clear_pointer (&w->timeout, g_source_unref);
  console_wait_done (task, NULL,
                     g_error_new (UVM_ERROR, UVM_ERROR_TIMEOUT,
                                  "VM '%s': /%s/ did not appear on the console within %u ms",
                                  w->vm->name, w->pattern, w->timeout_ms));
  return G_SOURCE_REMOVE;
}

static gboolean
on_console_cancelled (GCancellable *cancellable, gpointer user_data)
{
  GTask *task = user_data;
  ConsoleWait *w = g_task_get_task_data (task);

  g_clear_pointer (&w->cancel_source, g_source_unref);
  console_wait_done (task, NULL,
                     g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                  "VM '%s': waiting for /%s/ on the console was cancelled",
                                  w->vm->name, w->pattern));
  return G_SOURCE_REMOVE;
}

/* The wait, with a deadline when @timeout_ms is not 0. */
static void
wait_for_console (UvmVm *vm, const char *pattern, guint timeout_ms, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (vm, cancellable, callback, user_data);
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  GError *error = NULL;
  ConsoleWait *w;
  char *hit;

  g_task_set_source_tag (task, uvm_vm_wait_for_console_async);
  w = g_new0 (ConsoleWait, 1);
  w->vm = g_object_ref (vm);
  w->pattern = g_strdup (pattern);
  w->sock = w->log_fd = w->inotify_fd = -1;
  w->line = g_string_new (NULL);
  w->timeout_ms = timeout_ms;
  /* Raw: console output need not be UTF-8. */
  w->regex = g_regex_new (pattern, G_REGEX_RAW | G_REGEX_OPTIMIZE, 0, &error);
  if (w->regex == NULL)
    {
      GError *bad = g_error_new (UVM_ERROR, UVM_ERROR_FAILED, "pattern: /%s/ is no regular "
                                 "expression: %s", pattern, error->message);
      g_clear_error (&error);
      g_task_set_task_data (task, w, console_wait_free);
      g_task_return_error (task, bad);
      g_object_unref (task);
      return;
    }
  g_task_set_task_data (task, w, console_wait_free);
  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }
  /* Watched first, then read: a write after the read wakes us up. */
  w->sock = connect_console (vm, &error);
  if (w->sock >= 0)
    {
      const char *path = uvm_vm_get_console_path (vm);

      w->inotify_fd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
      if (w->inotify_fd < 0 || inotify_add_watch (w->inotify_fd, path, IN_MODIFY) < 0)
        error = g_error_new (UVM_ERROR, UVM_ERROR_FAILED, "VM '%s': watching the console log "
                             "'%s': %s", vm->name, path, g_strerror (errno));
      else
        {
          w->log_fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
          if (w->log_fd < 0 || lseek (w->log_fd, vm->console_log_start, SEEK_SET) < 0)
            error = g_error_new (UVM_ERROR, UVM_ERROR_FAILED, "VM '%s': reading the console "
                                 "log '%s': %s", vm->name, path, g_strerror (errno));
        }
    }
  if (error != NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  hit = scan_log (w);
  if (hit != NULL)
    {
      console_wait_done (task, hit, NULL);
      return;
    }
  w->log_watch = uvm_fd_watch_add (context, w->inotify_fd, G_IO_IN, on_log_written, task, &error);
  if (w->log_watch != NULL)
    w->watch = uvm_fd_watch_add (context, w->sock, G_IO_IN, on_console_readable, task, &error);
  if (w->watch == NULL)
    {
      console_wait_done (task, NULL, error);
      return;
    }
  if (timeout_ms > 0)
    w->timeout = uvm_vm_attach_source (g_timeout_source_new (timeout_ms), context,
                                       on_console_timeout, task);
  if (cancellable != NULL)
    w->cancel_source = uvm_vm_attach_source (g_cancellable_source_new (cancellable), context,
                                             G_SOURCE_FUNC (on_console_cancelled), task);
}

void
uvm_vm_wait_for_console_async (UvmVm *vm, const char *pattern, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (UVM_IS_VM (vm));
  g_return_if_fail (pattern != NULL);
  wait_for_console (vm, pattern, 0, cancellable, callback, user_data);
}

char *
uvm_vm_wait_for_console_finish (UvmVm *vm, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, vm), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

char *
uvm_vm_wait_for_console (UvmVm *vm, const char *pattern, guint timeout_ms,
                         GCancellable *cancellable, GError **error)
{
  UvmSyncCall call = { NULL };
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (UVM_IS_VM (vm), NULL);
  g_return_val_if_fail (pattern != NULL, NULL);
  wait_for_console (vm, pattern, timeout_ms, cancellable, uvm_vm_sync_call_done, &call);
  result = uvm_vm_sync_call_wait (&call);
  return uvm_vm_wait_for_console_finish (vm, result, error);
}
