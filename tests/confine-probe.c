/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a process spawned by uvm_spawn() can do with the network.  Two modes:
 *
 *   confine-probe spawn [--netns] [--filter]
 *       spawns itself in probe mode through the library's internal
 *       uvm_spawn(), with a new network namespace and/or the confinement
 *       filter of uvm_seccomp_build_confinement() as asked, its stdout a
 *       pipe; prints what the probe wrote and exits with its status (or 3
 *       with the GError on stderr when the spawn failed).
 *
 *   confine-probe probe
 *       tries to create sockets and looks at its network namespace; prints
 *       one "key=value" line each (an errno as a number, 0 for success):
 *         AF_INET, AF_INET6, AF_PACKET, AF_NETLINK, AF_UNIX, AF_UNIX-pair
 *             socket(AF_INET, SOCK_STREAM), socket(AF_INET6, SOCK_DGRAM),
 *             socket(AF_PACKET, SOCK_RAW), socket(AF_NETLINK, SOCK_RAW),
 *             socket(AF_UNIX, SOCK_STREAM), socketpair(AF_UNIX, SOCK_DGRAM)
 *         i386-socketcall, i386-socket
 *             socket(AF_INET, SOCK_DGRAM) through the i386 ABI (int $0x80):
 *             socketcall(SYS_SOCKET) and the direct socket syscall; "-1"
 *             when the kernel has no i386 emulation (x86-64 only)
 *         interfaces   the names in /proc/self/net/dev, comma-separated
 *         lo-up        1 when lo is up (SIOCGIFFLAGS on a unix socket)
 *         netns        the /proc/self/ns/net link
 *         seccomp      the Seccomp: field of /proc/self/status
 */
#include "proc/uvm-seccomp.h"
#include "proc/uvm-spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int
socket_errno (int family, int type)
{
  int fd = socket (family, type | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return errno;
  close (fd);
  return 0;
}

#if defined(__x86_64__)
static sigjmp_buf no_int80;

static void
on_int80_fault (int sig)
{
  siglongjmp (no_int80, 1);
}

/* An i386 system call from this 64-bit process; the kernel returns
 * -errno.  r8-r11 are cleared on return from a compat call. */
static long
int80 (long nr, long a, long b, long c)
{
  long ret;

  __asm__ volatile ("int $0x80"
                    : "=a" (ret)
                    : "a" (nr), "b" (a), "c" (b), "d" (c)
                    : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

/* 0, an errno, or -1 when int $0x80 is not available (a kernel without
 * i386 emulation raises SIGSEGV). */
static long
i386_socket_errno (gboolean socketcall)
{
  struct sigaction sa = { .sa_handler = on_int80_fault }, old_segv, old_ill;
  volatile long result = -1;

  sigaction (SIGSEGV, &sa, &old_segv);
  sigaction (SIGILL, &sa, &old_ill);
  if (sigsetjmp (no_int80, 1) == 0)
    {
      long ret;

      if (socketcall)
        {
          /* socketcall's arguments are read through a 32-bit pointer. */
          guint32 *args = mmap (NULL, 4096, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
          if (args == MAP_FAILED)
            return -1;
          args[0] = AF_INET;
          args[1] = SOCK_DGRAM;
          args[2] = 0;
          ret = int80 (102 /* socketcall */, 1 /* SYS_SOCKET */, (long) (guintptr) args, 0);
          munmap (args, 4096);
        }
      else
        ret = int80 (359 /* socket */, AF_INET, SOCK_DGRAM, 0);
      if (ret >= 0)
        close ((int) ret);
      result = ret < 0 ? -ret : 0;
    }
  sigaction (SIGSEGV, &old_segv, NULL);
  sigaction (SIGILL, &old_ill, NULL);
  return result;
}
#endif

static void
print_interfaces (void)
{
  g_autofree char *dev = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GString) names = g_string_new (NULL);

  if (!g_file_get_contents ("/proc/self/net/dev", &dev, NULL, NULL))
    {
      printf ("interfaces=?\n");
      return;
    }
  /* Two header lines, then "  name: counters...". */
  lines = g_strsplit (dev, "\n", -1);
  for (guint i = 2; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      if (colon == NULL)
        continue;
      *colon = '\0';
      if (names->len > 0)
        g_string_append_c (names, ',');
      g_string_append (names, g_strstrip (lines[i]));
    }
  printf ("interfaces=%s\n", names->str);
}

static int
probe (void)
{
  struct ifreq ifr = { 0 };
  g_autofree char *netns = g_file_read_link ("/proc/self/ns/net", NULL);
  g_autofree char *status = NULL;
  const char *seccomp = NULL;
  int pair[2], fd;

  printf ("AF_INET=%d\n", socket_errno (AF_INET, SOCK_STREAM));
  printf ("AF_INET6=%d\n", socket_errno (AF_INET6, SOCK_DGRAM));
  printf ("AF_PACKET=%d\n", socket_errno (AF_PACKET, SOCK_RAW));
  printf ("AF_NETLINK=%d\n", socket_errno (AF_NETLINK, SOCK_RAW));
  printf ("AF_UNIX=%d\n", socket_errno (AF_UNIX, SOCK_STREAM));
  if (socketpair (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) == 0)
    {
      printf ("AF_UNIX-pair=0\n");
      close (pair[0]);
      close (pair[1]);
    }
  else
    printf ("AF_UNIX-pair=%d\n", errno);
#if defined(__x86_64__)
  printf ("i386-socketcall=%ld\n", i386_socket_errno (TRUE));
  printf ("i386-socket=%ld\n", i386_socket_errno (FALSE));
#endif
  print_interfaces ();

  /* Interface ioctls act on the namespace of the socket they are made on. */
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  g_strlcpy (ifr.ifr_name, "lo", sizeof ifr.ifr_name);
  if (fd >= 0 && ioctl (fd, SIOCGIFFLAGS, &ifr) == 0)
    printf ("lo-up=%d\n", (ifr.ifr_flags & IFF_UP) ? 1 : 0);
  else
    printf ("lo-up=?\n");
  if (fd >= 0)
    close (fd);

  printf ("netns=%s\n", netns ? netns : "?");
  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    seccomp = strstr (status, "\nSeccomp:\t");
  printf ("seccomp=%c\n", seccomp ? seccomp[strlen ("\nSeccomp:\t")] : '?');
  return fflush (stdout) == 0 ? 0 : 1;
}

static int
spawn (gboolean netns, gboolean filter)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmSeccompProgram) program = NULL;
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr(GString) output = g_string_new (NULL);
  char *argv[] = { self, (char *) "probe", NULL };
  g_auto(GStrv) envp = g_get_environ ();
  int out[2], null_fd, pidfd, status;
  char buf[4096];
  ssize_t n;
  GPid pid;

  if (self == NULL || pipe2 (out, O_CLOEXEC) != 0)
    return 3;
  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (filter)
    {
      program = uvm_seccomp_build_confinement (&error);
      if (program == NULL)
        {
          g_printerr ("%s\n", error->message);
          return 3;
        }
    }
  {
    UvmSpawnFd fds[] = { { null_fd, 0 }, { out[1], 1 }, { STDERR_FILENO, 2 } };
    UvmSpawnRequest req = { self, argv, envp, fds, G_N_ELEMENTS (fds),
                            .new_netns = netns, .filter = program };

    if (!uvm_spawn (&req, &pid, &pidfd, &error))
      {
        /* "domain code message", for the test to check the error code. */
        g_printerr ("%s %d %s\n", g_quark_to_string (error->domain), error->code,
                    error->message);
        return 3;
      }
  }
  close (out[1]);
  close (null_fd);
  while ((n = read (out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      g_string_append_len (output, buf, n);
  close (out[0]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  close (pidfd);
  fputs (output->str, stdout);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
main (int argc, char **argv)
{
  gboolean netns = FALSE, filter = FALSE;

  if (argc == 2 && g_str_equal (argv[1], "probe"))
    return probe ();
  if (argc < 2 || !g_str_equal (argv[1], "spawn"))
    {
      g_printerr ("usage: %s spawn [--netns] [--filter] | probe\n", argv[0]);
      return 2;
    }
  for (int i = 2; i < argc; i++)
    {
      if (g_str_equal (argv[i], "--netns"))
        netns = TRUE;
      else if (g_str_equal (argv[i], "--filter"))
        filter = TRUE;
      else
        return 2;
    }
  return spawn (netns, filter);
}
