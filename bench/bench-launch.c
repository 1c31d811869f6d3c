/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-launch: what libuvm costs on top of a bare launch of the same qemu.
 *
 * Two measurements, each taken through libuvm and through a minimal raw
 * launch of the *same* qemu argv (read back from the library's launch plan),
 * alternating in one process:
 *
 *   start->ready    libuvm: uvm_vm_start() until it returns TRUE (the QMP
 *                   handshake is done and query-status answered).
 *                   raw: fork + exec of qemu with a pre-bound listening
 *                   socket as the QMP chardev fd, connect, greeting,
 *                   qmp_capabilities, query-status, with blocking sockets;
 *                   timed from before fork() to the query-status reply.
 *   round trip      one query-status: uvm_vm_qmp_execute() (sync) against a
 *                   write + blocking read on the raw socket, one VM of each
 *                   kind running, in interleaved blocks.  The raw client
 *                   sends the request byte for byte as libuvm does, with
 *                   an "id" (libuvm matches replies by id); a third
 *                   series, for information, sends it without the id:
 *                   qemu reads QMP input one byte per read(), so the
 *                   request's size is qemu time (about 20 us for the id).
 *
 *   forced stop     each VM of the start->ready rounds is then stopped,
 *                   timed until reaped: libuvm: uvm_vm_stop (vm, 0) (the
 *                   documented forced stop: no power button; it asks qemu
 *                   to "quit", escalating to signals); raw: SIGKILL +
 *                   blocking waitpid().  The guest is still booting then.
 *   graceful stop   both VMs started and booted (UVM-GUEST-READY on both
 *                   consoles), then each stopped, order alternating, timed
 *                   until reaped: libuvm: uvm_vm_stop (vm, deadline);
 *                   raw: QMP system_powerdown, then a pidfd until exit.
 *                   The console must show UVM-GUEST-POWEROFF afterwards.
 *   stand-in        libuvm's cloud-hypervisor backend against the
 *                   stand-in (tests/ch-standin, a Python program speaking
 *                   the v53 REST API; it simulates the guest): start->ready
 *                   and GET vm.info round trips, against bench-raw-rest.c's
 *                   minimal client of the same API on the same stand-in,
 *                   launched with the same argv.  These measure our client,
 *                   not cloud-hypervisor.
 *
 * Apart from the stops, VMs are stopped and reaped outside the timed
 * regions.  Targets: libuvm <= 1.10x raw (ratio of medians) for
 * start->ready and round trips (qemu and stand-in), forced stop <= 50 ms.
 *
 * Usage: bench-launch --kernel FILE --initramfs FILE [--rounds N]
 *        [--round-trips M] [--smoke] [--paused] [--json FILE] ... (see --help)
 * bench/run-bench.sh builds everything and runs this with the test guest. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <uvm/uvm.h>

#include "bench-raw-rest.h"
#include "bench-util.h"

#define VM_NAME "uvm-bench"
#define TARGET_RATIO 1.10
/* A raw read that sees nothing for this long means qemu hangs. */
#define RAW_READ_TIMEOUT_S 30
/* Grace for a raw qemu to exit after "quit" before it gets SIGKILL. */
#define RAW_QUIT_GRACE_MS 5000
#define READY_MARKER "UVM-GUEST-READY"
#define POWEROFF_MARKER "UVM-GUEST-POWEROFF"
/* The target for libuvm's forced stop, absolute (ms, median). */
#define TARGET_FORCED_STOP_MS 50.0
/* How long a booted guest gets to power off on the button. */
#define GRACEFUL_TIMEOUT_MS 20000

static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = sig;
}

static gboolean
check_interrupted (GError **error)
{
  if (interrupted)
    return bench_fail (error, "interrupted by signal %d", (int) interrupted);
  return TRUE;
}

/* ---- Options ------------------------------------------------------------ */

typedef struct {
  char *kernel;
  char *initramfs;
  char *cmdline;
  char *qemu;          /* as given, or NULL for the library's default */
  char *qemu_path;     /* resolved, absolute */
  int rounds;
  int round_trips;
  int warmup;
  int block;           /* round trips per interleaved block */
  int settle_s;
  gboolean paused;
  gboolean smoke;
  gboolean strict;
  gboolean verbose;
  char *standin;       /* the cloud-hypervisor stand-in, resolved; NULL: none */
  gboolean no_standin;
  char *realch;        /* a real cloud-hypervisor (--cloud-hypervisor, $UVM_BENCH_CLOUD_HYPERVISOR) */
  char *realch_version;   /* its --version, first line */
  gboolean realch_caller; /* /dev/kvm closed to the per-VM user: libuvm runs it as the caller */
  char *json;          /* --json FILE */
  char *base_dir;      /* temporary: lib/, raw/, libch/, rawch/ runtime directories */
  char *lib_dir;
  char *raw_dir;
  char *libch_dir;
  char *rawch_dir;
  char *libreal_dir;
  char *rawreal_dir;
} Config;

/* ---- Statistics ------------------------------------------------------- */

typedef struct {
  GArray *ns;          /* gint64 samples */
} Samples;

/* In units of @unit_ns (1e6: ms, 1e3: µs).  The gint64 -> double
 * conversion is exact (below 2^53 ns) and the division comes after the
 * order statistics, as when the samples were summarized as gint64. */
static BenchSummary
summarize (const Samples *s, double unit_ns)
{
  g_autoptr(GArray) ns = g_array_sized_new (FALSE, FALSE, sizeof (double), s->ns->len);

  for (guint i = 0; i < s->ns->len; i++)
    {
      double v = (double) g_array_index (s->ns, gint64, i);

      g_array_append_val (ns, v);
    }
  return bench_summarize (ns, unit_ns);
}

static void
samples_add (Samples *s, gint64 ns)
{
  g_array_append_val (s->ns, ns);
}

/* ---- The VM definition (the same for both kinds) ----------------------- */

/* @console: (nullable): the console file; NULL: console.log in the runtime
 * directory (which libuvm removes when the VM stops). */
static UvmVm *
make_vm (const Config *cfg, const char *runtime_dir, const char *console)
{
  UvmVm *vm = uvm_vm_new (VM_NAME, UVM_HYPERVISOR_QEMU);

  uvm_vm_set_kernel (vm, cfg->kernel, cfg->initramfs, cfg->cmdline);
  uvm_vm_set_memory (vm, 256 * UVM_MIB);
  uvm_vm_set_vcpus (vm, 1);
  uvm_vm_set_machine (vm, UVM_MACHINE_Q35);
  /* KVM does not run these guests on the machines we measure on; the
   * choice does not matter for what is measured here (the hypervisor's
   * readiness and its control connection, not the guest). */
  uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  uvm_vm_set_start_paused (vm, cfg->paused);
  if (cfg->qemu != NULL)
    uvm_vm_set_hypervisor_path (vm, cfg->qemu);
  uvm_vm_set_runtime_dir (vm, runtime_dir);
  uvm_vm_add_device (vm, uvm_device_new_console (console));
  return vm;
}

/* One cloud-hypervisor side of the comparison: the stand-in, or a real
 * binary; libuvm and the raw client each run it in a directory of their own. */
typedef struct {
  const char *what;        /* "stand-in" or "cloud-hypervisor" */
  const char *binary;
  const char *lib_dir;
  const char *raw_dir;
  gboolean caller_user;    /* uvm_vm_set_user (UVM_USER_CALLER) */
} ChSide;

/* The same guest for the cloud-hypervisor backend, run by @side's binary.
 * Accel stays AUTO: that backend refuses TCG (it only knows KVM). */
static UvmVm *
make_ch_vm (const Config *cfg, const ChSide *side, const char *runtime_dir)
{
  UvmVm *vm = uvm_vm_new (VM_NAME, UVM_HYPERVISOR_CLOUD_HYPERVISOR);

  uvm_vm_set_kernel (vm, cfg->kernel, cfg->initramfs, cfg->cmdline);
  uvm_vm_set_memory (vm, 256 * UVM_MIB);
  uvm_vm_set_vcpus (vm, 1);
  uvm_vm_set_hypervisor_path (vm, side->binary);
  if (side->caller_user)
    uvm_vm_set_user (vm, UVM_USER_CALLER, UVM_USER_CALLER);
  uvm_vm_set_runtime_dir (vm, runtime_dir);
  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  return vm;
}

/* ---- Raw launch ---------------------------------------------------------- */

typedef struct {
  char **argv;          /* argv[0] is the resolved qemu path */
  int control_fd;       /* the fd number the QMP chardev names (fd=N) */
  char *socket_path;
  char *log_path;
  char *console_path;
  GArray *files;        /* RawRestFile: kernel, initramfs, console passed as fds */
} RawPlan;

typedef struct {
  pid_t pid;            /* 0 when not running */
  int fd;               /* connected QMP socket, or -1 */
  char buf[65536];
  size_t len;           /* bytes in buf */
  size_t consumed;      /* bytes of buf handed out as lines already */
  gint64 next_id;       /* for requests sent the way libuvm sends them */
} RawVm;

static void
raw_plan_clear (RawPlan *plan)
{
  g_strfreev (plan->argv);
  g_free (plan->socket_path);
  g_free (plan->log_path);
  g_free (plan->console_path);
  if (plan->files != NULL)
    {
      for (guint i = 0; i < plan->files->len; i++)
        g_free (g_array_index (plan->files, RawRestFile, i).path);
      g_array_unref (plan->files);
    }
  memset (plan, 0, sizeof *plan);
}

/* The argv libuvm would execute for a definition whose runtime directory is
 * the raw one (so the console file does not collide with the libuvm VM's),
 * parsed back from uvm_vm_get_command_line(). */
static gboolean
raw_plan_init (RawPlan *plan, const Config *cfg, GError **error)
{
  g_autoptr(UvmVm) vm = make_vm (cfg, cfg->raw_dir, NULL);
  g_autofree char *line = uvm_vm_get_command_line (vm, error);
  g_autofree char *launch_plan = line ? uvm_vm_get_launch_plan (vm, error) : NULL;
  int argc = 0;

  memset (plan, 0, sizeof *plan);
  plan->control_fd = -1;
  plan->files = g_array_new (FALSE, TRUE, sizeof (RawRestFile));
  if (launch_plan == NULL || !g_shell_parse_argv (line, &argc, &plan->argv, error) ||
      !raw_plan_files_parse (launch_plan, plan->files, error))
    return FALSE;
  /* Exec the binary the library would find in PATH, looked up once. */
  g_free (plan->argv[0]);
  plan->argv[0] = g_strdup (cfg->qemu_path);
  for (int i = 1; i + 1 < argc; i++)
    {
      const char *fd;

      if (!g_str_equal (plan->argv[i], "-chardev") || !g_str_has_prefix (plan->argv[i + 1], "socket,") ||
          strstr (plan->argv[i + 1], "id=uvm-qmp") == NULL)
        continue;
      fd = strstr (plan->argv[i + 1], ",fd=");
      if (fd != NULL)
        plan->control_fd = atoi (fd + 4);
    }
  if (plan->control_fd < 3)
    return bench_fail (error, "no QMP chardev with fd=N (N > 2) in libuvm's command line: %s", line);
  plan->socket_path = g_build_filename (cfg->raw_dir, "control.sock", NULL);
  plan->log_path = g_build_filename (cfg->raw_dir, "hypervisor.log", NULL);
  plan->console_path = g_build_filename (cfg->raw_dir, "console.log", NULL);
  return TRUE;
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* The next line (CR/LF stripped, NUL-terminated, valid until the next
 * call), or NULL with @error at EOF, timeout or error. */
static const char *
raw_read_line (RawVm *r, GError **error)
{
  char *nl;

  if (r->consumed > 0)
    {
      memmove (r->buf, r->buf + r->consumed, r->len - r->consumed);
      r->len -= r->consumed;
      r->consumed = 0;
    }
  while ((nl = memchr (r->buf, '\n', r->len)) == NULL)
    {
      ssize_t n;

      if (r->len >= sizeof r->buf - 1)
        {
          bench_fail (error, "raw QMP: line longer than %zu bytes", sizeof r->buf);
          return NULL;
        }
      n = read (r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
      if (n < 0 && errno == EINTR && !interrupted)
        continue;
      if (n < 0)
        {
          bench_fail (error, "raw QMP read: %s", errno == EAGAIN ? "timed out" : g_strerror (errno));
          return NULL;
        }
      if (n == 0)
        {
          bench_fail (error, "raw QMP: qemu closed the connection (see its log)");
          return NULL;
        }
      r->len += (size_t) n;
    }
  r->consumed = (size_t) (nl - r->buf) + 1;
  *nl = '\0';
  if (nl > r->buf && nl[-1] == '\r')
    nl[-1] = '\0';
  return r->buf;
}

static gboolean
raw_send (RawVm *r, const char *text, size_t len, GError **error)
{
  while (len > 0)
    {
      ssize_t n = send (r->fd, text, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR && !interrupted)
        continue;
      if (n < 0)
        return bench_fail (error, "raw QMP write: %s", g_strerror (errno));
      text += n;
      len -= (size_t) n;
    }
  return TRUE;
}

/* Waits for the reply to the command just sent, skipping events.  @out, if
 * given, receives the reply line (valid until the next read). */
static gboolean
raw_wait_reply (RawVm *r, const char *what, const char **out, GError **error)
{
  const char *line;

  for (;;)
    {
      if ((line = raw_read_line (r, error)) == NULL)
        return FALSE;
      if (strstr (line, "\"event\"") != NULL)
        continue;
      if (strstr (line, "\"return\"") != NULL)
        break;
      return bench_fail (error, "raw QMP %s: unexpected reply: %s", what, line);
    }
  if (out != NULL)
    *out = line;
  return TRUE;
}

#define QMP_CAPABILITIES "{\"execute\":\"qmp_capabilities\"}\n"
#define QMP_QUERY_STATUS "{\"execute\":\"query-status\"}\n"
#define QMP_QUIT "{\"execute\":\"quit\"}\n"

/* Forks and execs qemu with @listen_fd as the control fd; async-signal-safe
 * calls only in the child.  setsid and PDEATHSIG as libuvm does, so that
 * neither a Ctrl-C on the terminal nor our death leaves qemu behind. */
static pid_t
raw_spawn (const RawPlan *plan, int listen_fd, int null_fd, int log_fd, int *file_fds)
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
  /* The files first (moved above 64, then onto their numbers), so that
   * the listening socket's number is not taken afterwards. */
  if ((listen_fd = fcntl (listen_fd, F_DUPFD_CLOEXEC, 64)) < 0 ||
      !raw_plan_files_install (plan->files, file_fds))
    _exit (127);
  if (listen_fd == plan->control_fd)
    {
      if (fcntl (listen_fd, F_SETFD, 0) < 0)
        _exit (127);
    }
  else if (dup2 (listen_fd, plan->control_fd) < 0)   /* clears CLOEXEC */
    _exit (127);
  execv (plan->argv[0], plan->argv);
  _exit (127);
}

/* Reaps @r's qemu: "quit" on the control socket, then SIGKILL after a grace
 * period.  Never fails; used on every path. */
static void
raw_stop (RawVm *r)
{
  gint64 deadline;
  int status;

  if (r->pid <= 0)
    {
      close_fd (&r->fd);
      return;
    }
  if (r->fd >= 0)
    {
      GError *error = NULL;

      if (raw_send (r, QMP_QUIT, strlen (QMP_QUIT), &error))
        {
          /* Until EOF: qemu closes the socket as it exits. */
          while (raw_read_line (r, NULL) != NULL)
            ;
        }
      g_clear_error (&error);
      close_fd (&r->fd);
    }
  deadline = g_get_monotonic_time () + RAW_QUIT_GRACE_MS * 1000;
  for (;;)
    {
      pid_t w = waitpid (r->pid, &status, WNOHANG);

      if (w == r->pid || (w < 0 && errno != EINTR))
        break;
      if (g_get_monotonic_time () >= deadline)
        {
          kill (r->pid, SIGKILL);
          while (waitpid (r->pid, &status, 0) < 0 && errno == EINTR)
            ;
          break;
        }
      g_usleep (2000);
    }
  r->pid = 0;
  r->len = r->consumed = 0;
}

/* Sets up the listening socket (untimed, as the brief for the raw launch
 * says: pre-bound), then times fork -> greeting -> qmp_capabilities ->
 * query-status. */
static gboolean
raw_start (const RawPlan *plan, RawVm *r, gint64 *elapsed_ns, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct timeval timeout = { .tv_sec = RAW_READ_TIMEOUT_S };
  int listen_fd = -1, null_fd = -1, log_fd = -1;
  int *file_fds = NULL;
  const char *line;
  gboolean ok = FALSE;
  gint64 t0;

  g_assert (r->pid == 0);
  r->fd = -1;
  r->len = r->consumed = 0;
  r->next_id = 3;   /* as libuvm's client: 1 and 2 went to the handshake */
  if (strlen (plan->socket_path) >= sizeof addr.sun_path)
    return bench_fail (error, "socket path too long: %s", plan->socket_path);
  g_strlcpy (addr.sun_path, plan->socket_path, sizeof addr.sun_path);
  unlink (plan->socket_path);
  unlink (plan->console_path);   /* libuvm, too, starts each run afresh */

  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  log_fd = open (plan->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (null_fd < 0 || log_fd < 0 || listen_fd < 0)
    {
      bench_fail (error, "raw setup: %s", g_strerror (errno));
      goto out;
    }
  if (bind (listen_fd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (listen_fd, 16) != 0)
    {
      bench_fail (error, "raw setup: %s: %s", plan->socket_path, g_strerror (errno));
      goto out;
    }

  t0 = bench_now_ns ();
  /* Opened in the timed part, as libuvm opens them in its start. */
  file_fds = raw_plan_files_open (plan->files, error);
  if (file_fds == NULL)
    goto out;
  r->pid = raw_spawn (plan, listen_fd, null_fd, log_fd, file_fds);
  raw_plan_files_close (plan->files, g_steal_pointer (&file_fds));
  if (r->pid < 0)
    {
      r->pid = 0;
      bench_fail (error, "fork: %s", g_strerror (errno));
      goto out;
    }
  r->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0 || connect (r->fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      bench_fail (error, "raw connect: %s", g_strerror (errno));
      goto out;
    }
  /* qemu has its copy; ours would keep the socket alive if qemu died. */
  close_fd (&listen_fd);
  setsockopt (r->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

  if ((line = raw_read_line (r, error)) == NULL)
    goto out;
  if (strstr (line, "\"QMP\"") == NULL)
    {
      bench_fail (error, "raw QMP: expected the greeting, got: %s", line);
      goto out;
    }
  if (!raw_send (r, QMP_CAPABILITIES, strlen (QMP_CAPABILITIES), error) ||
      !raw_wait_reply (r, "qmp_capabilities", NULL, error) ||
      !raw_send (r, QMP_QUERY_STATUS, strlen (QMP_QUERY_STATUS), error) ||
      !raw_wait_reply (r, "query-status", &line, error))
    goto out;
  *elapsed_ns = bench_now_ns () - t0;
  if (strstr (line, "\"status\"") == NULL)
    {
      bench_fail (error, "raw query-status: no status in %s", line);
      goto out;
    }
  ok = TRUE;

out:
  close_fd (&listen_fd);
  close_fd (&null_fd);
  close_fd (&log_fd);
  if (!ok)
    {
      g_autofree char *log = NULL;

      raw_stop (r);
      if (error != NULL && *error != NULL && g_file_get_contents (plan->log_path, &log, NULL, NULL) &&
          *g_strstrip (log) != '\0')
        g_prefix_error (error, "qemu log: %s\n", log);
    }
  return ok;
}

/* @with_id: send the request byte for byte as libuvm's QMP client does
 * (json-glib's compact output with an integer id), to tell the cost of the
 * request's size in qemu from the cost of the library's machinery. */
static gboolean
raw_round_trip (RawVm *r, gboolean with_id, gint64 *elapsed_ns, GError **error)
{
  char with_id_text[96];
  const char *text = QMP_QUERY_STATUS;
  gint64 t0;

  if (with_id)
    {
      g_snprintf (with_id_text, sizeof with_id_text,
                  "{\"execute\":\"query-status\",\"id\":%" G_GINT64_FORMAT "}\n", r->next_id++);
      text = with_id_text;
    }
  t0 = bench_now_ns ();
  if (!raw_send (r, text, strlen (text), error) ||
      !raw_wait_reply (r, "query-status", NULL, error))
    return FALSE;
  *elapsed_ns = bench_now_ns () - t0;
  return TRUE;
}

static void
raw_reaped (RawVm *r)
{
  r->pid = 0;
  close_fd (&r->fd);
  r->len = r->consumed = 0;
}

/* Forced stop: SIGKILL, timed until waitpid() has reaped qemu. */
static void
raw_kill (RawVm *r, gint64 *elapsed_ns)
{
  gint64 t0 = bench_now_ns ();

  g_assert (r->pid > 0);
  kill (r->pid, SIGKILL);
  while (waitpid (r->pid, NULL, 0) < 0 && errno == EINTR)
    ;
  *elapsed_ns = bench_now_ns () - t0;
  raw_reaped (r);
}

/* Graceful stop: system_powerdown, then wait on a pidfd for qemu to exit
 * (it does when the guest powers off: no -no-shutdown), timed until reaped.
 * On failure qemu is still running; raw_stop() ends it. */
static gboolean
raw_powerdown (RawVm *r, gint64 *elapsed_ns, GError **error)
{
  static const char request[] = "{\"execute\":\"system_powerdown\"}\n";
  gint64 t0 = bench_now_ns ();
  gint64 deadline = g_get_monotonic_time () + GRACEFUL_TIMEOUT_MS * 1000;
  int pidfd = (int) syscall (SYS_pidfd_open, r->pid, 0);
  gboolean exited = FALSE;

  if (pidfd < 0)
    return bench_fail (error, "pidfd_open: %s", g_strerror (errno));
  if (!raw_send (r, request, strlen (request), error) ||
      !raw_wait_reply (r, "system_powerdown", NULL, error))
    {
      close (pidfd);
      return FALSE;
    }
  while (!exited)
    {
      struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      int n;

      if (left_ms <= 0)
        break;
      n = poll (&pfd, 1, (int) left_ms);
      if (n < 0 && errno == EINTR && interrupted)
        break;
      exited = n > 0;
    }
  close (pidfd);
  if (!exited)
    return bench_fail (error, "raw qemu did not exit within %d ms of system_powerdown", GRACEFUL_TIMEOUT_MS);
  while (waitpid (r->pid, NULL, 0) < 0 && errno == EINTR)
    ;
  *elapsed_ns = bench_now_ns () - t0;
  raw_reaped (r);
  return TRUE;
}

/* ---- libuvm --------------------------------------------------------------- */

static void
lib_stop (UvmVm **vm)
{
  if (*vm == NULL)
    return;
  if (uvm_vm_get_pid (*vm) != 0)
    {
      g_autoptr(GError) error = NULL;

      /* Forced: quit, then signals; returns once qemu is reaped. */
      if (!uvm_vm_stop (*vm, 0, NULL, &error))
        g_printerr ("bench-launch: libuvm stop: %s\n", error->message);
    }
  /* Disposing a VM that still runs kills and reaps its qemu. */
  g_clear_object (vm);
}

/* uvm_vm_stop (vm, @timeout_ms), timed until it returns (qemu reaped); the
 * VM object is disposed of afterwards, untimed. */
static gboolean
lib_stop_timed (UvmVm **vm, guint timeout_ms, gint64 *elapsed_ns, GError **error)
{
  gint64 t0 = bench_now_ns ();
  gboolean ok = uvm_vm_stop (*vm, timeout_ms, NULL, error);

  *elapsed_ns = bench_now_ns () - t0;
  if (ok && uvm_vm_get_pid (*vm) != 0)
    ok = bench_fail (error, "libuvm stop returned with the hypervisor still running");
  if (!ok)
    lib_stop (vm);
  g_clear_object (vm);
  return ok;
}

static gboolean
lib_start_vm (UvmVm *def, UvmVmState expected, UvmVm **out, gint64 *elapsed_ns, GError **error)
{
  g_autoptr(UvmVm) vm = def;
  gboolean ok;
  gint64 t0;

  t0 = bench_now_ns ();
  ok = uvm_vm_start (vm, NULL, error);
  *elapsed_ns = bench_now_ns () - t0;
  if (!ok)
    return FALSE;
  if (uvm_vm_get_state (vm) != expected)
    {
      bench_fail (error, "libuvm VM is %s after start, expected %s",
                  uvm_vm_state_to_string (uvm_vm_get_state (vm)), uvm_vm_state_to_string (expected));
      lib_stop (&vm);
      return FALSE;
    }
  *out = g_steal_pointer (&vm);
  return TRUE;
}

/* @console as for make_vm(). */
static gboolean
lib_start (const Config *cfg, const char *console, UvmVm **out, gint64 *elapsed_ns, GError **error)
{
  return lib_start_vm (make_vm (cfg, cfg->lib_dir, console),
                       cfg->paused ? UVM_VM_STATE_PAUSED : UVM_VM_STATE_RUNNING, out, elapsed_ns, error);
}

static gboolean
lib_ch_start (const Config *cfg, const ChSide *side, UvmVm **out, gint64 *elapsed_ns, GError **error)
{
  return lib_start_vm (make_ch_vm (cfg, side, side->lib_dir), UVM_VM_STATE_RUNNING, out, elapsed_ns,
                       error);
}

static gboolean
lib_ch_round_trip (UvmVm *vm, gint64 *elapsed_ns, GError **error)
{
  g_autofree char *reply = NULL;
  guint status = 0;
  gint64 t0 = bench_now_ns ();

  reply = uvm_vm_ch_request (vm, "GET", "vm.info", NULL, &status, NULL, error);
  *elapsed_ns = bench_now_ns () - t0;
  if (reply == NULL)
    return FALSE;
  if (status != 200 || strstr (reply, "\"state\"") == NULL)
    return bench_fail (error, "libuvm vm.info: status %u: %s", status, reply);
  return TRUE;
}

static gboolean
raw_ch_round_trip (RawRest *r, gint64 *elapsed_ns, GError **error)
{
  const char *body = NULL;
  gint64 t0 = bench_now_ns ();

  if (!raw_rest_request (r, "GET", "vm.info", NULL, &body, error))
    return FALSE;
  *elapsed_ns = bench_now_ns () - t0;
  if (strstr (body, "\"state\"") == NULL)
    return bench_fail (error, "raw vm.info: no state in %s", body);
  return TRUE;
}

static gboolean
lib_round_trip (UvmVm *vm, gint64 *elapsed_ns, GError **error)
{
  char *reply;
  gint64 t0 = bench_now_ns ();

  reply = uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, error);
  *elapsed_ns = bench_now_ns () - t0;
  if (reply == NULL)
    return FALSE;
  if (strstr (reply, "\"status\"") == NULL)
    {
      bench_fail (error, "libuvm query-status: no status in %s", reply);
      g_free (reply);
      return FALSE;
    }
  g_free (reply);
  return TRUE;
}

/* ---- Measurements ---------------------------------------------------------- */

typedef struct {
  Samples lib_start, raw_start, lib_rtt, raw_rtt, raw_id_rtt;
  Samples lib_kill, raw_kill, lib_powerdown, raw_powerdown;
  /* [0] libuvm, [1] raw: the stand-in, and a real cloud-hypervisor */
  Samples ch_start[2], ch_rtt[2], real_start[2], real_rtt[2];
  gboolean settled;    /* both guests reached READY_MARKER before the round trips */
  double settle_s;
  double boot_s;       /* the longest wait for READY_MARKER before a graceful stop */
  char *standin_skipped;   /* why the stand-in rows are missing, or NULL */
  char *realch_skipped;    /* why the real cloud-hypervisor rows are missing, or NULL */
} Results;

/* Start->ready pairs: the order alternates each round (AB, BA, ...) so that
 * neither side always runs right after the other's teardown.  Warm-up
 * pairs (page cache, first exec) are not recorded. */
static gboolean
measure_starts (const Config *cfg, const RawPlan *plan, Results *res, RawVm *raw, UvmVm **lib,
                GError **error)
{
  int total = cfg->warmup + cfg->rounds;

  for (int i = 0; i < total; i++)
    {
      gboolean record = i >= cfg->warmup;

      for (int side = 0; side < 2; side++)
        {
          gboolean do_lib = (side == 0) == (i % 2 == 0);
          gint64 ns = 0;

          if (!check_interrupted (error))
            return FALSE;
          gint64 stop_ns = 0;

          if (do_lib)
            {
              if (!lib_start (cfg, NULL, lib, &ns, error) || !lib_stop_timed (lib, 0, &stop_ns, error))
                return FALSE;
              if (record)
                {
                  samples_add (&res->lib_start, ns);
                  samples_add (&res->lib_kill, stop_ns);
                }
            }
          else
            {
              if (!raw_start (plan, raw, &ns, error))
                return FALSE;
              raw_kill (raw, &stop_ns);
              if (record)
                {
                  samples_add (&res->raw_start, ns);
                  samples_add (&res->raw_kill, stop_ns);
                }
            }
          if (cfg->verbose)
            g_printerr ("bench-launch: start %s%d %s: %.1f ms, forced stop %.1f ms\n", record ? "" : "warm-up ",
                        record ? i - cfg->warmup + 1 : i + 1, do_lib ? "libuvm" : "raw", ns / 1e6,
                        stop_ns / 1e6);
        }
    }
  return TRUE;
}

static gboolean
file_contains (const char *path, const char *needle)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  return g_file_get_contents (path, &text, &len, NULL) &&
         g_strstr_len (text, (gssize) len, needle) != NULL;
}

/* Lets both guests finish booting (under TCG a booting guest keeps a core
 * busy, which would be noise in the round trips).  Returns whether both
 * consoles showed the test guest's READY marker in time. */
static gboolean
wait_settled (const Config *cfg, UvmVm *lib, const RawPlan *plan, double *waited_s)
{
  gint64 start = g_get_monotonic_time ();
  gint64 deadline = start + (gint64) cfg->settle_s * G_USEC_PER_SEC;
  const char *lib_console = uvm_vm_get_console_path (lib);
  gboolean ok = FALSE;

  while (!interrupted)
    {
      if (file_contains (lib_console, READY_MARKER) && file_contains (plan->console_path, READY_MARKER))
        {
          ok = TRUE;
          /* The guest's init goes on a moment after printing the marker. */
          g_usleep (200 * 1000);
          break;
        }
      if (g_get_monotonic_time () >= deadline)
        break;
      g_usleep (50 * 1000);
    }
  *waited_s = (g_get_monotonic_time () - start) / 1e6;
  return ok;
}

/* Graceful stops: each round starts one VM of each kind, lets both boot
 * (the power button is lost before the guest listens for it), then stops
 * them one after the other, the order alternating, each timed until its
 * qemu is reaped.  The second one's guest sits idle meanwhile. */
static gboolean
measure_graceful (const Config *cfg, const RawPlan *plan, Results *res, RawVm *raw, UvmVm **lib,
                  GError **error)
{
  for (int i = 0; i < cfg->rounds; i++)
    {
      /* Outside the runtime directory, which goes with the VM: the
       * POWEROFF marker is checked after the stop. */
      g_autofree char *lib_console = g_build_filename (cfg->base_dir, "lib-console.log", NULL);
      gint64 ns = 0;
      double waited = 0;

      g_unlink (lib_console);   /* qemu appends */
      if (!lib_start (cfg, lib_console, lib, &ns, error) || !raw_start (plan, raw, &ns, error))
        return FALSE;
      if (cfg->paused &&
          (!uvm_vm_resume (*lib, NULL, error) ||
           !raw_send (raw, "{\"execute\":\"cont\"}\n", strlen ("{\"execute\":\"cont\"}\n"), error) ||
           !raw_wait_reply (raw, "cont", NULL, error)))
        return FALSE;
      if (!wait_settled (cfg, *lib, plan, &waited))
        return check_interrupted (error) &&
               bench_fail (error, "graceful stop: the guests did not print %s within %d s (--settle)",
                           READY_MARKER, cfg->settle_s);
      res->boot_s = MAX (res->boot_s, waited);
      for (int side = 0; side < 2; side++)
        {
          gboolean do_lib = (side == 0) == (i % 2 == 0);

          if (!check_interrupted (error))
            return FALSE;
          if (do_lib ? !lib_stop_timed (lib, GRACEFUL_TIMEOUT_MS, &ns, error)
                     : !raw_powerdown (raw, &ns, error))
            return FALSE;
          /* Powered off by the guest, not escalated to quit or signals. */
          if (!file_contains (do_lib ? lib_console : plan->console_path, POWEROFF_MARKER))
            return bench_fail (error, "%s graceful stop: no %s on the console", do_lib ? "libuvm" : "raw",
                               POWEROFF_MARKER);
          samples_add (do_lib ? &res->lib_powerdown : &res->raw_powerdown, ns);
          if (cfg->verbose)
            g_printerr ("bench-launch: graceful stop %d %s: %.1f ms\n", i + 1, do_lib ? "libuvm" : "raw",
                        ns / 1e6);
        }
    }
  return TRUE;
}

/* Cloud-hypervisor start->ready (@side's binary), alternating like
 * measure_starts(), then GET vm.info round trips in interleaved blocks with
 * one of each running; into @start (libuvm, raw) and @rtt (libuvm, raw). */
static gboolean
measure_ch (const Config *cfg, const ChSide *side, const RawRestPlan *plan, Samples start[2],
            Samples rtt[2], RawRest *raw, UvmVm **lib, GError **error)
{
  int total = cfg->warmup + cfg->rounds;
  int done = 0, block = 0;
  gint64 ns = 0;

  for (int i = 0; i < total; i++)
    for (int turn = 0; turn < 2; turn++)
      {
        gboolean do_lib = (turn == 0) == (i % 2 == 0);

        if (!check_interrupted (error))
          return FALSE;
        if (do_lib ? !lib_ch_start (cfg, side, lib, &ns, error) : !raw_rest_start (plan, raw, &ns, error))
          return FALSE;
        if (do_lib)
          lib_stop (lib);
        else
          raw_rest_stop (raw);
        if (i >= cfg->warmup)
          samples_add (do_lib ? &start[0] : &start[1], ns);
        if (cfg->verbose)
          g_printerr ("bench-launch: %s start %s%d %s: %.1f ms\n", side->what, i >= cfg->warmup ? "" : "warm-up ",
                      i >= cfg->warmup ? i - cfg->warmup + 1 : i + 1, do_lib ? "libuvm" : "raw", ns / 1e6);
      }

  if (!lib_ch_start (cfg, side, lib, &ns, error) || !raw_rest_start (plan, raw, &ns, error))
    return FALSE;
  for (int i = 0; i < MIN (cfg->round_trips, 20); i++)
    if (!lib_ch_round_trip (*lib, &ns, error) || !raw_ch_round_trip (raw, &ns, error))
      return FALSE;
  while (done < cfg->round_trips)
    {
      int n = MIN (cfg->block, cfg->round_trips - done);

      for (int k = 0; k < 2; k++)
        {
          gboolean do_lib = (block + k) % 2 == 0;

          if (!check_interrupted (error))
            return FALSE;
          for (int j = 0; j < n; j++)
            {
              if (do_lib ? !lib_ch_round_trip (*lib, &ns, error) : !raw_ch_round_trip (raw, &ns, error))
                return FALSE;
              samples_add (do_lib ? &rtt[0] : &rtt[1], ns);
            }
        }
      done += n;
      block++;
    }
  lib_stop (lib);
  raw_rest_stop (raw);
  return TRUE;
}

static gboolean
measure_round_trips (const Config *cfg, const RawPlan *plan, Results *res, RawVm *raw,
                     UvmVm **lib, GError **error)
{
  gint64 ns = 0;
  int done = 0, block = 0;

  if (!lib_start (cfg, NULL, lib, &ns, error) || !raw_start (plan, raw, &ns, error))
    return FALSE;
  if (cfg->paused)
    res->settled = TRUE;
  else
    res->settled = wait_settled (cfg, *lib, plan, &res->settle_s);
  if (!check_interrupted (error))
    return FALSE;

  /* Warm-up: first calls fault in code and grow buffers. */
  for (int i = 0; i < MIN (cfg->round_trips, 20); i++)
    if (!lib_round_trip (*lib, &ns, error) || !raw_round_trip (raw, FALSE, &ns, error) ||
        !raw_round_trip (raw, TRUE, &ns, error))
      return FALSE;

  /* Interleaved blocks of the three kinds (libuvm, raw, raw sending
   * libuvm's bytes), rotating which goes first. */
  while (done < cfg->round_trips)
    {
      int n = MIN (cfg->block, cfg->round_trips - done);

      for (int k = 0; k < 3; k++)
        {
          int side = (block + k) % 3;

          if (!check_interrupted (error))
            return FALSE;
          for (int i = 0; i < n; i++)
            {
              gboolean ok = side == 0 ? lib_round_trip (*lib, &ns, error)
                                      : raw_round_trip (raw, side == 2, &ns, error);
              if (!ok)
                return FALSE;
              samples_add (side == 0 ? &res->lib_rtt : side == 1 ? &res->raw_rtt : &res->raw_id_rtt, ns);
            }
        }
      done += n;
      block++;
    }
  return TRUE;
}

/* ---- Report ------------------------------------------------------------- */

static char *
cpu_model (void)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/cpuinfo", &text, NULL, NULL))
    return g_strdup ("?");
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "model name"))
      {
        const char *colon = strchr (lines[i], ':');
        if (colon != NULL)
          return g_strstrip (g_strdup (colon + 1));
      }
  return g_strdup ("?");
}

/* One result: a table row and an entry of the --json file. */
typedef enum { TARGET_KIND_NONE, TARGET_KIND_RATIO, TARGET_KIND_VALUE } TargetKind;

typedef struct {
  const char *id;            /* NULL: table only, for information */
  const char *table;         /* short label for the table */
  char *label;               /* the JSON label */
  const char *unit;
  double unit_ns;
  const Samples *a, *b;
  TargetKind target;
  double target_value;
  const char *skipped;       /* reason, or NULL */
} Row;

#define N_ROWS 9

static void
build_rows (const Config *cfg, const Results *res, Row rows[N_ROWS])
{
  const char *paused = cfg->paused ? ", paused" : "";

  rows[0] = (Row) { "start_ready", "start->ready ms",
                    g_strdup_printf ("start → ready (qemu, TCG%s)", paused), "ms", 1e6,
                    &res->lib_start, &res->raw_start, TARGET_KIND_RATIO, TARGET_RATIO, NULL };
  /* Like for like: the raw client sends the same bytes, id included. */
  rows[1] = (Row) { "round_trip", "round trip us",
                    g_strdup_printf ("QMP round trip, query-status with an id (qemu, TCG%s)", paused),
                    "us", 1e3, &res->lib_rtt, &res->raw_id_rtt, TARGET_KIND_RATIO, TARGET_RATIO, NULL };
  rows[2] = (Row) { NULL, "round trip us, raw without id", NULL, "us", 1e3,
                    &res->lib_rtt, &res->raw_rtt, TARGET_KIND_NONE, 0, NULL };
  rows[3] = (Row) { "stop_forced", "forced stop ms",
                    g_strdup_printf ("forced stop until reaped (qemu, TCG%s; libuvm: uvm_vm_stop timeout 0, "
                                     "raw: SIGKILL + waitpid)", paused), "ms", 1e6,
                    &res->lib_kill, &res->raw_kill, TARGET_KIND_VALUE, TARGET_FORCED_STOP_MS, NULL };
  rows[4] = (Row) { "stop_graceful", "graceful stop ms",
                    g_strdup ("graceful stop until reaped (qemu, TCG, booted guest powers off on the ACPI "
                              "power button; raw: system_powerdown + pidfd)"), "ms", 1e6,
                    &res->lib_powerdown, &res->raw_powerdown, TARGET_KIND_NONE, 0, NULL };
  rows[5] = (Row) { "standin_start_ready", "stand-in start->ready ms",
                    g_strdup ("start → ready, cloud-hypervisor backend (stand-in: measures our client, "
                              "not the hypervisor)"), "ms", 1e6,
                    &res->ch_start[0], &res->ch_start[1], TARGET_KIND_RATIO, TARGET_RATIO, res->standin_skipped };
  rows[6] = (Row) { "standin_round_trip", "stand-in round trip us",
                    g_strdup ("REST round trip, GET vm.info (stand-in: measures our client, not the "
                              "hypervisor)"), "us", 1e3,
                    &res->ch_rtt[0], &res->ch_rtt[1], TARGET_KIND_RATIO, TARGET_RATIO, res->standin_skipped };
  rows[7] = (Row) { "realch_start_ready", "real CH start->ready ms",
                    g_strdup_printf ("start → ready, cloud-hypervisor backend (%s: vmm.ping, vm.create, "
                                     "vm.boot, vm.info)", cfg->realch_version ? cfg->realch_version
                                                                               : "real cloud-hypervisor"),
                    "ms", 1e6, &res->real_start[0], &res->real_start[1], TARGET_KIND_RATIO, TARGET_RATIO,
                    res->realch_skipped };
  rows[8] = (Row) { "realch_round_trip", "real CH round trip us",
                    g_strdup_printf ("REST round trip, GET vm.info (%s)", cfg->realch_version
                                                                        ? cfg->realch_version
                                                                        : "real cloud-hypervisor"),
                    "us", 1e3, &res->real_rtt[0], &res->real_rtt[1], TARGET_KIND_RATIO, TARGET_RATIO,
                    res->realch_skipped };
}

static void
rows_clear (Row rows[N_ROWS])
{
  for (int i = 0; i < N_ROWS; i++)
    g_free (rows[i].label);
}

static gboolean
row_met (const Row *row)
{
  BenchSummary a = summarize (row->a, row->unit_ns), b = summarize (row->b, row->unit_ns);

  switch (row->target)
    {
    case TARGET_KIND_RATIO:
      return b.median > 0 && a.median / b.median <= row->target_value;
    case TARGET_KIND_VALUE:
      return a.n > 0 && a.median <= row->target_value;
    case TARGET_KIND_NONE:
    default:
      return TRUE;
    }
}

static void
print_row (const Row *row)
{
  BenchSummary a = summarize (row->a, row->unit_ns), b = summarize (row->b, row->unit_ns);
  double ratio = b.median > 0 ? a.median / b.median : 0;
  g_autofree char *target = NULL;

  if (row->skipped != NULL)
    {
      g_print ("| %-24s | %8s | %8s | %8s | %8s | %8s | %8s | %7s | %-11s | %-4s |\n", row->table, "-", "-",
               "-", "-", "-", "-", "-", "skipped", "-");
      return;
    }
  switch (row->target)
    {
    case TARGET_KIND_RATIO:
      target = g_strdup_printf ("<= %.2fx", row->target_value);
      break;
    case TARGET_KIND_VALUE:
      target = g_strdup_printf ("<= %.0f %s", row->target_value, row->unit);
      break;
    case TARGET_KIND_NONE:
    default:
      target = g_strdup ("(info)");
      break;
    }
  g_print ("| %-24s | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %6.3fx | %-11s | %-4s |\n", row->table,
           a.median, a.p10, a.p90, b.median, b.p10, b.p90, ratio, target,
           row->target == TARGET_KIND_NONE ? "" : row_met (row) ? "yes" : "NO");
}

/* The result file of /tmp/bench-json.md's contract (read by bench/report.py). */
static gboolean
write_json (const Config *cfg, const Row rows[N_ROWS], const char *qemu_version, const char *note,
            GError **error)
{
  g_autoptr(GString) out = bench_json_begin ("bench-launch", qemu_version, note);
  gboolean first = TRUE;

  for (int i = 0; i < N_ROWS; i++)
    {
      const Row *row = &rows[i];

      if (row->id == NULL)
        continue;
      g_string_append_printf (out, "%s\n    {\"id\": \"%s\", ", first ? "" : ",", row->id);
      first = FALSE;
      if (row->skipped != NULL)
        {
          g_string_append (out, "\"skipped\": ");
          bench_json_string (out, row->skipped);
          g_string_append (out, "}");
          continue;
        }
      g_string_append (out, "\"label\": ");
      bench_json_string (out, row->label);
      g_string_append_printf (out, ", \"unit\": \"%s\",\n     \"a\": ", row->unit);
      bench_json_side (out, "libuvm", summarize (row->a, row->unit_ns));
      g_string_append (out, ",\n     \"b\": ");
      bench_json_side (out, "raw", summarize (row->b, row->unit_ns));
      if (row->target == TARGET_KIND_RATIO)
        {
          g_string_append (out, ",\n     \"target\": {\"max_ratio\": ");
          bench_json_number (out, row->target_value);
          g_string_append (out, "}");
        }
      else if (row->target == TARGET_KIND_VALUE)
        {
          g_string_append (out, ",\n     \"target\": {\"max_value\": ");
          bench_json_number (out, row->target_value);
          g_string_append (out, "}");
        }
      g_string_append (out, "}");
    }
  return bench_json_finish (out, cfg->json, error);
}

/* Returns whether the targets were met; *@json_ok: whether --json, if
 * given, was written. */
static gboolean
report (const Config *cfg, const Results *res, const char *lib_command_line, gboolean same_argv,
        gboolean *json_ok)
{
  g_autofree char *qemu_version = bench_first_line_of_command ((const char *const[]) { cfg->qemu_path, "--version", NULL });
  g_autofree char *cpu = cpu_model ();
  g_autofree char *note = NULL;
  BenchSummary ls = summarize (&res->lib_start, 1e6), rs = summarize (&res->raw_start, 1e6);
  BenchSummary lr = summarize (&res->lib_rtt, 1e3), rr = summarize (&res->raw_id_rtt, 1e3);
  BenchSummary rn = summarize (&res->raw_rtt, 1e3);
  Row rows[N_ROWS];
  struct utsname uts;
  gboolean met = TRUE;

  g_autofree char *rtt_note = NULL;

  uname (&uts);
  build_rows (cfg, res, rows);
  if (cfg->paused)
    rtt_note = g_strdup (" (paused)");
  else if (res->settled)
    rtt_note = g_strdup_printf (" (guests booted: %s seen after %.1f s)", READY_MARKER, res->settle_s);
  else
    rtt_note = g_strdup_printf (" (guests NOT seen booted: no %s within %d s; TCG boot load may add noise)",
                                READY_MARKER, cfg->settle_s);
  g_print ("\n## libuvm launch benchmark%s\n\n", cfg->smoke ? " (smoke)" : "");
  g_print ("- machine: %ld CPUs (%s), Linux %s\n", sysconf (_SC_NPROCESSORS_ONLN), cpu, uts.release);
  g_print ("- qemu: %s (%s)\n", qemu_version, cfg->qemu_path);
  g_print ("- libuvm %s, GLib %u.%u.%u\n", uvm_get_version (), glib_major_version,
           glib_minor_version, glib_micro_version);
  g_print ("- guest: q35, TCG, 1 vCPU, 256M, console to a file, %s; kernel %s, initramfs %s, append \"%s\"\n",
           cfg->paused ? "started paused (-S)" : "not paused (guest boots during the measurement)",
           cfg->kernel, cfg->initramfs, cfg->cmdline);
  g_print ("- start->ready: %d round%s of one libuvm and one raw start, order alternating, after %d warm-up round%s\n",
           cfg->rounds, cfg->rounds == 1 ? "" : "s", cfg->warmup, cfg->warmup == 1 ? "" : "s");
  g_print ("- forced stop: each VM of those rounds right after its start (guest still booting), until reaped; "
           "libuvm: uvm_vm_stop (vm, 0) (no power button: QMP quit, signals only if that fails); raw: SIGKILL + waitpid\n");
  g_print ("- graceful stop: %d round%s; one VM of each kind started, both guests booted (%s, at most %.1f s), then "
           "each stopped, order alternating, until reaped; libuvm: uvm_vm_stop (vm, %d); raw: system_powerdown, "
           "pidfd; %s seen on every console\n",
           cfg->rounds, cfg->rounds == 1 ? "" : "s", READY_MARKER, res->boot_s, GRACEFUL_TIMEOUT_MS,
           POWEROFF_MARKER);
  g_print ("- QMP round trip (query-status): %d per side, in interleaved blocks of %d, one VM of each kind running%s\n",
           cfg->round_trips, cfg->block, rtt_note);
  g_print ("- raw = same argv (%s), fork+exec with the pre-bound socket as fd, blocking socket, "
           "greeting + qmp_capabilities + query-status; timed from before fork\n",
           same_argv ? "identical to libuvm's up to the runtime directory" : "DIFFERS from libuvm's");
  g_print ("- qemu argv (libuvm): %s\n", lib_command_line);
  if (res->realch_skipped != NULL)
    g_print ("- real cloud-hypervisor rows skipped: %s\n", res->realch_skipped);
  else
    g_print ("- real cloud-hypervisor rows: %s (%s) through libuvm's backend%s vs. the same raw "
             "HTTP/1.1 client, same argv and VmConfig (kernel, initramfs, console passed as fds), "
             "running as root with all capabilities; vmm.ping + vm.create + vm.boot + vm.info "
             "timed from before fork; %d start rounds + %d warm-up, %d GET vm.info round trips "
             "per side. vm.boot returns once the vCPUs are started: the guest's own boot is not in "
             "the figure (on this machine it does not run at all)\n",
             cfg->realch, cfg->realch_version,
             cfg->realch_caller ? " as the caller (UVM_USER_CALLER: /dev/kvm is closed to the "
                                  "per-VM user), no capabilities, seccomp denylist" : "",
             cfg->rounds, cfg->warmup, cfg->round_trips);
  if (res->standin_skipped != NULL)
    g_print ("- stand-in rows skipped: %s\n", res->standin_skipped);
  else
    g_print ("- stand-in rows: libuvm's cloud-hypervisor backend against %s (Python, simulated guest) vs. a raw "
             "HTTP/1.1 client (bench-raw-rest.c) of the same stand-in, same argv, pre-bound API socket, "
             "vmm.ping + vm.create + vm.boot + vm.info timed from before fork; %d start rounds + %d warm-up, "
             "%d GET vm.info round trips per side. THESE MEASURE OUR CLIENT, NOT cloud-hypervisor.\n",
             cfg->standin, cfg->rounds, cfg->warmup, cfg->round_trips);
  g_print ("\n| %-24s | %8s | %8s | %8s | %8s | %8s | %8s | %7s | %-11s | %-4s |\n", "measurement", "libuvm", "p10",
           "p90", "raw", "p10", "p90", "ratio", "target", "met");
  g_print ("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------------", "---------:", "---------:",
           "---------:", "---------:", "---------:", "---------:", "--------:", "-------------", "------");
  for (int i = 0; i < N_ROWS; i++)
    {
      print_row (&rows[i]);
      if (rows[i].skipped == NULL && !row_met (&rows[i]))
        met = FALSE;
    }
  g_print ("\n(medians, p10/p90 by nearest rank; ratio = libuvm median / raw median; min/max start ms: libuvm "
           "%.1f/%.1f, raw %.1f/%.1f; round trip us: libuvm %.1f/%.1f, raw %.1f/%.1f)\n",
           ls.min, ls.max, rs.min, rs.max, lr.min, lr.max, rr.min, rr.max);
  g_print ("(round trip: the raw client sends {\"execute\":\"query-status\",\"id\":N} as libuvm does (it matches "
           "replies by id); \"raw without id\", for information, median %.1f us: qemu reads QMP input one byte per read, "
           "so the id's bytes cost qemu time)\n", rn.median);
  g_print ("targets (libuvm <= %.2fx raw for start->ready and round trips, qemu and stand-in; forced stop <= %.0f ms): %s\n",
           TARGET_RATIO, TARGET_FORCED_STOP_MS, met ? "met" : "NOT met");

  if (cfg->json != NULL)
    {
      g_autoptr(GError) error = NULL;

      note = g_strdup_printf ("%s; guest q35 TCG 1 vCPU 256M%s; %d rounds, %d round trips%s; stand-in rows "
                              "measure our client, not cloud-hypervisor", cpu, cfg->paused ? " paused" : "",
                              cfg->rounds, cfg->round_trips, cfg->smoke ? " (smoke)" : "");
      if (!write_json (cfg, rows, qemu_version, note, &error))
        {
          g_printerr ("bench-launch: --json: %s\n", error->message);
          *json_ok = FALSE;
        }
    }
  rows_clear (rows);
  return met;
}

/* ---- main ------------------------------------------------------------------- */

/* The raw argv, with its runtime directory replaced by libuvm's, must be
 * libuvm's argv: otherwise the comparison is not of the same qemu. */
static gboolean
argv_matches (const Config *cfg, const RawPlan *plan, const char *lib_line)
{
  g_auto(GStrv) lib_argv = NULL;
  int lib_argc = 0;

  if (!g_shell_parse_argv (lib_line, &lib_argc, &lib_argv, NULL) ||
      (guint) lib_argc != g_strv_length (plan->argv))
    return FALSE;
  for (int i = 1; i < lib_argc; i++)
    {
      g_autoptr(GString) s = g_string_new (plan->argv[i]);

      g_string_replace (s, cfg->raw_dir, cfg->lib_dir, 0);
      if (!g_str_equal (s->str, lib_argv[i]))
        return FALSE;
    }
  return TRUE;
}

static char *
resolve_qemu (const Config *cfg, GError **error)
{
  g_autoptr(UvmVm) vm = make_vm (cfg, cfg->lib_dir, NULL);
  const char *bin = uvm_vm_get_hypervisor_path (vm);
  char *path;

  if (!uvm_vm_validate (vm, error))
    return NULL;
  if (strchr (bin, '/') != NULL)
    return g_canonicalize_filename (bin, NULL);
  path = g_find_program_in_path (bin);
  if (path == NULL)
    bench_fail (error, "%s not found in PATH", bin);
  return path;
}

/* --standin's default: tests/ch-standin/cloud-hypervisor of the source tree.
 * meson compiles with __FILE__ relative to the build directory, which is
 * the parent of this executable's; a source-relative or absolute __FILE__
 * and the current directory are tried too. */
static char *
find_standin (void)
{
  static const char rel[] = "tests/ch-standin/cloud-hypervisor";
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *src_of_file = g_path_get_dirname (__FILE__);
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);

  if (g_path_is_absolute (src_of_file))
    g_ptr_array_add (candidates, g_build_filename (src_of_file, "..", rel, NULL));
  else if (exe != NULL)
    {
      g_autofree char *exe_dir = g_path_get_dirname (exe);

      g_ptr_array_add (candidates, g_build_filename (exe_dir, "..", src_of_file, "..", rel, NULL));
    }
  g_ptr_array_add (candidates, g_strdup (rel));
  for (guint i = 0; i < candidates->len; i++)
    {
      const char *c = g_ptr_array_index (candidates, i);

      if (g_file_test (c, G_FILE_TEST_IS_EXECUTABLE) && !g_file_test (c, G_FILE_TEST_IS_DIR))
        return g_canonicalize_filename (c, NULL);
    }
  return NULL;
}

/* One cloud-hypervisor part (@side): its rows are skipped (with the reason
 * in *@skipped) rather than failing the run, except that a binary that was
 * found but failed makes the exit status 1. */
static gboolean
run_ch (const Config *cfg, const ChSide *side, Samples start[2], Samples rtt[2], char **skipped,
        UvmVm **lib)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(UvmVm) def = NULL;
  g_autofree char *line = NULL;
  g_autofree char *launch_plan = NULL;
  RawRestPlan plan = { 0 };
  RawRest raw;
  gboolean ok = FALSE;

  raw_rest_init (&raw);
  if (*skipped != NULL)
    {
      g_printerr ("bench-launch: %s rows skipped: %s\n", side->what, *skipped);
      return TRUE;
    }
  if (g_mkdir (side->raw_dir, 0700) != 0)
    {
      bench_fail (&error, "mkdir %s: %s", side->raw_dir, g_strerror (errno));
      goto out;
    }
  def = make_ch_vm (cfg, side, side->raw_dir);
  line = uvm_vm_get_command_line (def, &error);
  if (line != NULL)
    launch_plan = uvm_vm_get_launch_plan (def, &error);
  if (launch_plan == NULL ||
      !raw_rest_plan_init (&plan, line, launch_plan, side->binary, side->raw_dir, &error))
    goto out;
  g_printerr ("bench-launch: %s %s: %d start round%s + %d warm-up, %d round trips per side...\n",
              side->what, side->binary, cfg->rounds, cfg->rounds == 1 ? "" : "s", cfg->warmup,
              cfg->round_trips);
  ok = measure_ch (cfg, side, &plan, start, rtt, &raw, lib, &error);

out:
  raw_rest_stop (&raw);
  lib_stop (lib);
  if (plan.socket_path != NULL)
    {
      g_unlink (plan.socket_path);
      g_unlink (plan.log_path);
      g_unlink (plan.console_path);
    }
  g_rmdir (side->raw_dir);
  g_rmdir (side->lib_dir);
  raw_rest_plan_clear (&plan);
  if (!ok)
    {
      *skipped = g_strdup_printf ("error: %s", error ? error->message : "failed");
      g_printerr ("bench-launch: %s rows skipped: %s\n", side->what, *skipped);
    }
  return ok;
}

/* The stand-in part (see run_ch()). */
static gboolean
run_standin (const Config *cfg, Results *res, UvmVm **lib)
{
  ChSide side = { "stand-in", cfg->standin, cfg->libch_dir, cfg->rawch_dir, FALSE };

  if (cfg->no_standin)
    res->standin_skipped = g_strdup ("--no-standin");
  else if (cfg->standin == NULL)
    res->standin_skipped = g_strdup ("no cloud-hypervisor stand-in found (--standin PATH)");
  return run_ch (cfg, &side, res->ch_start, res->ch_rtt, &res->standin_skipped, lib);
}

/* The real cloud-hypervisor part (see run_ch()), when one is named. */
static gboolean
run_realch (const Config *cfg, Results *res, UvmVm **lib)
{
  ChSide side = { "cloud-hypervisor", cfg->realch, cfg->libreal_dir, cfg->rawreal_dir,
                  cfg->realch_caller };

  if (cfg->realch == NULL)
    res->realch_skipped = g_strdup ("no real cloud-hypervisor: set UVM_BENCH_CLOUD_HYPERVISOR "
                                    "or --cloud-hypervisor PATH");
  else if (cfg->realch_version == NULL)
    res->realch_skipped = g_strdup_printf ("%s --version did not answer", cfg->realch);
  return run_ch (cfg, &side, res->real_start, res->real_rtt, &res->realch_skipped, lib);
}

/* The real binary's version, and whether libuvm must run it as the caller:
 * the per-VM user cannot open a /dev/kvm that is closed to other users. */
static void
probe_realch (Config *cfg)
{
  g_autofree char *out = NULL;
  const char *argv[] = { cfg->realch, "--version", NULL };
  struct stat st;

  if (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                    NULL, NULL) && out != NULL && *out != '\0')
    cfg->realch_version = g_strndup (out, strcspn (out, "\n"));
  cfg->realch_caller = stat ("/dev/kvm", &st) == 0 &&
                       (st.st_mode & (S_IROTH | S_IWOTH)) != (S_IROTH | S_IWOTH);
}

static void
ensure_std_fds (void)
{
  /* A raw launch dup2s onto 0-2: none of our fds may sit there. */
  for (int fd = 0; fd < 3; fd++)
    if (fcntl (fd, F_GETFD) < 0)
      {
        int n = open ("/dev/null", O_RDWR);
        if (n >= 0 && n != fd)
          close (n);
      }
}

int
main (int argc, char **argv)
{
  Config cfg = { .rounds = 20, .round_trips = 200, .warmup = 1, .block = 10, .settle_s = 30 };
  gboolean met_ok = FALSE, json_ok = TRUE, standin_ok = TRUE;
  GOptionEntry entries[] = {
    { "kernel", 'k', 0, G_OPTION_ARG_FILENAME, &cfg.kernel, "Guest kernel (default: $UVM_BENCH_KERNEL)", "FILE" },
    { "initramfs", 'i', 0, G_OPTION_ARG_FILENAME, &cfg.initramfs, "Guest initramfs (default: $UVM_BENCH_INITRAMFS)", "FILE" },
    { "cmdline", 'c', 0, G_OPTION_ARG_STRING, &cfg.cmdline, "Kernel command line (default \"console=ttyS0 quiet\")", "TEXT" },
    { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &cfg.qemu, "qemu binary (default: the library's, from PATH)", "PATH" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &cfg.rounds, "Start->ready rounds, one start of each kind per round (default 20)", "N" },
    { "round-trips", 't', 0, G_OPTION_ARG_INT, &cfg.round_trips, "QMP round trips per side (default 200)", "M" },
    { "warmup", 'w', 0, G_OPTION_ARG_INT, &cfg.warmup, "Unrecorded start rounds first (default 1)", "N" },
    { "block", 'b', 0, G_OPTION_ARG_INT, &cfg.block, "Round trips per interleaved block (default 10)", "N" },
    { "settle", 0, 0, G_OPTION_ARG_INT, &cfg.settle_s, "Seconds to wait for both guests to boot before the round trips (default 30)", "S" },
    { "paused", 'p', 0, G_OPTION_ARG_NONE, &cfg.paused, "Start the VMs paused (-S) on both sides", NULL },
    { "standin", 0, 0, G_OPTION_ARG_FILENAME, &cfg.standin, "cloud-hypervisor stand-in (default: tests/ch-standin/cloud-hypervisor of the source tree)", "PATH" },
    { "no-standin", 0, 0, G_OPTION_ARG_NONE, &cfg.no_standin, "Skip the stand-in rows", NULL },
    { "cloud-hypervisor", 0, 0, G_OPTION_ARG_FILENAME, &cfg.realch, "A real cloud-hypervisor for its own rows (default: $UVM_BENCH_CLOUD_HYPERVISOR; none: rows skipped)", "PATH" },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &cfg.json, "Also write the results to FILE (bench result JSON)", "FILE" },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &cfg.smoke, "Quick check that every part works: 1 round, 5 round trips", NULL },
    { "strict", 0, 0, G_OPTION_ARG_NONE, &cfg.strict, "Exit with status 3 when the target is not met", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &cfg.verbose, "Print every start time", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- libuvm start->ready and QMP round trip vs. a raw qemu launch");
  g_autoptr(GError) error = NULL;
  g_autofree char *lib_line = NULL;
  g_autoptr(UvmVm) lib_vm_def = NULL;
  struct sigaction sa = { .sa_handler = on_signal };
  Results res = { 0 };
  Samples *all_samples[] = { &res.lib_start, &res.raw_start, &res.lib_rtt, &res.raw_rtt, &res.raw_id_rtt,
                             &res.lib_kill, &res.raw_kill, &res.lib_powerdown, &res.raw_powerdown,
                             &res.ch_start[0], &res.ch_start[1], &res.ch_rtt[0], &res.ch_rtt[1],
                             &res.real_start[0], &res.real_start[1], &res.real_rtt[0], &res.real_rtt[1] };
  RawPlan plan = { 0 };
  RawVm *raw = g_new0 (RawVm, 1);
  UvmVm *lib = NULL;
  gboolean same_argv, ran = FALSE;
  int status = 1;

  raw->fd = -1;
  for (guint i = 0; i < G_N_ELEMENTS (all_samples); i++)
    all_samples[i]->ns = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_option_context_set_description (options,
    "Times uvm_vm_start() (to ready: QMP negotiated, query-status answered),\n"
    "uvm_vm_qmp_execute(\"query-status\"), forced and graceful uvm_vm_stop()\n"
    "against a minimal launch of the same qemu argv over a raw socket, and the\n"
    "cloud-hypervisor backend's start and GET vm.info against a raw REST client,\n"
    "both on the stand-in, alternating in one process; prints medians, p10/p90\n"
    "and the libuvm/raw ratio.  bench/run-bench.sh builds the test guest and\n"
    "runs this.\n");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!bench_parse_command_line (options, "bench-launch", "bench/run-bench.sh", &argc, &argv, &cfg.kernel,
                                 &cfg.initramfs, &cfg.cmdline))
    return 2;
  if (cfg.smoke)
    {
      cfg.rounds = 1;
      cfg.round_trips = 5;
      cfg.warmup = 0;
    }
  if (cfg.rounds < 1 || cfg.round_trips < 1 || cfg.warmup < 0 || cfg.block < 1 || cfg.settle_s < 0)
    {
      g_printerr ("bench-launch: --rounds, --round-trips and --block must be at least 1\n");
      return 2;
    }

  ensure_std_fds ();
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);

  /* Short paths: the control socket's must fit in sun_path. */
  cfg.base_dir = g_dir_make_tmp ("uvm-bench-XXXXXX", &error);
  if (cfg.base_dir == NULL)
    goto out;
  cfg.lib_dir = g_build_filename (cfg.base_dir, "lib", NULL);
  cfg.raw_dir = g_build_filename (cfg.base_dir, "raw", NULL);
  cfg.libch_dir = g_build_filename (cfg.base_dir, "libch", NULL);
  cfg.rawch_dir = g_build_filename (cfg.base_dir, "rawch", NULL);
  cfg.libreal_dir = g_build_filename (cfg.base_dir, "libreal", NULL);
  cfg.rawreal_dir = g_build_filename (cfg.base_dir, "rawreal", NULL);
  if (g_mkdir (cfg.raw_dir, 0700) != 0)
    {
      bench_fail (&error, "mkdir %s: %s", cfg.raw_dir, g_strerror (errno));
      goto out;
    }

  if (cfg.standin != NULL)
    {
      char *given = cfg.standin;

      cfg.standin = g_canonicalize_filename (given, NULL);
      g_free (given);
    }
  else if (!cfg.no_standin)
    cfg.standin = find_standin ();
  if (cfg.realch == NULL && g_getenv ("UVM_BENCH_CLOUD_HYPERVISOR") != NULL &&
      *g_getenv ("UVM_BENCH_CLOUD_HYPERVISOR") != '\0')
    cfg.realch = g_strdup (g_getenv ("UVM_BENCH_CLOUD_HYPERVISOR"));
  if (cfg.realch != NULL)
    {
      char *given = cfg.realch;

      cfg.realch = g_canonicalize_filename (given, NULL);
      g_free (given);
      probe_realch (&cfg);
    }
  cfg.qemu_path = resolve_qemu (&cfg, &error);
  if (cfg.qemu_path == NULL)
    goto out;
  lib_vm_def = make_vm (&cfg, cfg.lib_dir, NULL);
  lib_line = uvm_vm_get_command_line (lib_vm_def, &error);
  if (lib_line == NULL || !raw_plan_init (&plan, &cfg, &error))
    goto out;
  same_argv = argv_matches (&cfg, &plan, lib_line);
  if (!same_argv)
    g_printerr ("bench-launch: warning: the raw argv differs from libuvm's\n");
  g_printerr ("bench-launch: %d start round%s + %d warm-up, %d round trips per side...\n",
              cfg.rounds, cfg.rounds == 1 ? "" : "s", cfg.warmup, cfg.round_trips);

  if (!measure_starts (&cfg, &plan, &res, raw, &lib, &error))
    goto out;
  g_printerr ("bench-launch: %d graceful stop round%s...\n", cfg.rounds, cfg.rounds == 1 ? "" : "s");
  if (!measure_graceful (&cfg, &plan, &res, raw, &lib, &error))
    goto out;
  if (!measure_round_trips (&cfg, &plan, &res, raw, &lib, &error))
    goto out;
  raw_stop (raw);
  lib_stop (&lib);
  standin_ok = run_standin (&cfg, &res, &lib);
  if (!run_realch (&cfg, &res, &lib))
    standin_ok = FALSE;
  if (!check_interrupted (&error))
    goto out;
  ran = TRUE;

out:
  /* Every qemu is reaped before we go, on every path. */
  raw_stop (raw);
  lib_stop (&lib);
  if (ran)
    {
      met_ok = report (&cfg, &res, lib_line, same_argv, &json_ok);
      status = !json_ok || !standin_ok ? 1 : cfg.strict && !met_ok ? 3 : 0;
    }
  else
    g_printerr ("bench-launch: %s\n", error ? error->message : "failed");

  if (cfg.base_dir != NULL)
    {
      static const char *const raw_files[] = { "control.sock", "hypervisor.log", "console.log" };

      for (guint i = 0; i < G_N_ELEMENTS (raw_files); i++)
        {
          g_autofree char *path = g_build_filename (cfg.raw_dir, raw_files[i], NULL);
          g_unlink (path);
        }
      g_autofree char *lib_console = g_build_filename (cfg.base_dir, "lib-console.log", NULL);

      g_unlink (lib_console);
      g_rmdir (cfg.raw_dir);
      g_rmdir (cfg.lib_dir);
      g_rmdir (cfg.rawch_dir);   /* gone unless run_standin() was interrupted */
      g_rmdir (cfg.libch_dir);   /* libuvm removes it itself; gone unless a run failed */
      g_rmdir (cfg.rawreal_dir);
      g_rmdir (cfg.libreal_dir);
      g_rmdir (cfg.base_dir);
    }
  raw_plan_clear (&plan);
  for (guint i = 0; i < G_N_ELEMENTS (all_samples); i++)
    g_array_unref (all_samples[i]->ns);
  g_free (res.standin_skipped);
  g_free (res.realch_skipped);
  g_free (raw);
  g_free (cfg.kernel);
  g_free (cfg.initramfs);
  g_free (cfg.cmdline);
  g_free (cfg.qemu);
  g_free (cfg.qemu_path);
  g_free (cfg.base_dir);
  g_free (cfg.lib_dir);
  g_free (cfg.raw_dir);
  g_free (cfg.libch_dir);
  g_free (cfg.rawch_dir);
  g_free (cfg.standin);
  g_free (cfg.realch);
  g_free (cfg.realch_version);
  g_free (cfg.libreal_dir);
  g_free (cfg.rawreal_dir);
  g_free (cfg.json);
  return interrupted ? 130 : status;
}
