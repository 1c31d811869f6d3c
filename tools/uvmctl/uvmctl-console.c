/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl console: the guest's serial console on this terminal, in raw
 * mode, until the escape key (Ctrl-], as virsh console), the end of the
 * VM, or a signal.  The terminal's settings are restored on every way
 * out. */
#include "uvmctl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define ESCAPE_KEY 0x1d /* Ctrl-] */

static struct termios saved_tty;
static gboolean tty_raw;
static volatile sig_atomic_t got_signal;

static void
restore_tty (void)
{
  if (tty_raw)
    tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved_tty);
  tty_raw = FALSE;
}

static void
on_signal (int sig)
{
  got_signal = sig;
}

static gboolean
make_raw (void)
{
  struct termios raw;

  if (!isatty (STDIN_FILENO))
    return TRUE; /* a pipe: passed through as it is */
  if (tcgetattr (STDIN_FILENO, &saved_tty) < 0)
    return FALSE;
  raw = saved_tty;
  cfmakeraw (&raw);
  if (tcsetattr (STDIN_FILENO, TCSAFLUSH, &raw) < 0)
    return FALSE;
  tty_raw = TRUE;
  atexit (restore_tty);
  return TRUE;
}

/* The documented console socket of the VM's runtime directory, for a VM
 * another process controls (uvm_vm_get_console_socket_path()). */
static int
connect_socket (const char *name, int *status)
{
  g_autoptr(UvmVmInfo) info = uvmctl_find (name, "console", status);
  g_autofree char *path = NULL;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  if (info == NULL)
    return -1;
  path = g_build_filename (uvm_vm_info_get_runtime_dir (info), "console.sock", NULL);
  if (strlen (path) >= sizeof addr.sun_path)
    {
      g_printerr ("uvmctl: %s: console: '%s' is too long for a socket address\n", name, path);
      *status = UVMCTL_EXIT_FAILED;
      return -1;
    }
  strcpy (addr.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      g_printerr ("uvmctl: %s: console: connecting to '%s': %s\n", name, path, g_strerror (errno));
      *status = errno == ENOENT || errno == ECONNREFUSED ? UVMCTL_EXIT_NOT_RUNNING
                                                         : UVMCTL_EXIT_FAILED;
      if (fd >= 0)
        close (fd);
      return -1;
    }
  return fd;
}

/* A connected console: through uvm_vm_open_console() of a briefly attached
 * VM, let go of at once so that other verbs (stop) can take it over while
 * the session lasts; when another process controls it, its socket. */
static int
open_console (const char *name, int *status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmVm) vm = uvm_vm_attach (uvmctl_root, name, NULL, &error);
  int fd;

  if (vm == NULL && g_error_matches (error, UVM_ERROR, UVM_ERROR_BUSY))
    return connect_socket (name, status);
  if (vm == NULL || (fd = uvm_vm_open_console (vm, &error)) < 0)
    {
      *status = uvmctl_fail (name, "console", error);
      return -1;
    }
  return fd;
}

static gboolean
write_all (int fd, const char *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      buf += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Copies between the terminal and @fd; returns why it ended. */
static const char *
relay (int fd)
{
  struct pollfd fds[2] = { { STDIN_FILENO, POLLIN, 0 }, { fd, POLLIN, 0 } };
  char buf[4096];

  while (!got_signal)
    {
      ssize_t n;

      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return "poll failed";
        }
      if (fds[1].revents)
        {
          n = read (fd, buf, sizeof buf);
          if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return "the console closed (the VM ended)";
          if (n > 0 && !write_all (STDOUT_FILENO, buf, (gsize) n))
            return "the terminal closed";
        }
      if (fds[0].revents)
        {
          char *escape;

          n = read (STDIN_FILENO, buf, sizeof buf);
          if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return "end of input"; /* a script's pipe: it decides how long to wait */
          if (n < 0)
            continue;
          escape = memchr (buf, ESCAPE_KEY, (gsize) n);
          if (!write_all (fd, buf, escape ? (gsize) (escape - buf) : (gsize) n))
            return "the console closed (the VM ended)";
          if (escape != NULL)
            return NULL;
        }
    }
  return "interrupted by a signal";
}

int
uvmctl_console (int argc, char **argv)
{
  g_autoptr(GOptionContext) options =
    uvmctl_options_new ("console", "NAME",
                        "Connects this terminal to a VM's serial console (raw mode: every key\n"
                        "goes to the guest). Ctrl-] ends the session; so does the end of the VM,\n"
                        "the end of input (stdin not a terminal), or SIGTERM/SIGHUP. The\n"
                        "terminal's settings are restored. The VM is not held: other verbs\n"
                        "(stop) work while the console is open.",
                        NULL);
  struct sigaction sa = { .sa_handler = on_signal };
  const char *why;
  int status = UVMCTL_EXIT_OK, fd;

  if (!uvmctl_parse (options, &argc, &argv, 1, 1))
    return UVMCTL_EXIT_USAGE;
  if ((fd = open_console (argv[1], &status)) < 0)
    return status;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  if (!make_raw ())
    {
      g_printerr ("uvmctl: %s: console: cannot set the terminal to raw mode: %s\n", argv[1],
                  g_strerror (errno));
      close (fd);
      return UVMCTL_EXIT_FAILED;
    }
  g_printerr ("Connected to the console of %s. Escape character is ^]\r\n", argv[1]);
  why = relay (fd);
  restore_tty ();
  close (fd);
  g_printerr ("\nuvmctl: %s: console: %s\n", argv[1], why ? why : "ended (^])");
  return UVMCTL_EXIT_OK;
}
