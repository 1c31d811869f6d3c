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
 *                   kind running, in interleaved blocks.  A third series,
 *                   for information, has the raw client add an "id" to each
 *                   request (libuvm sends none and matches replies in
 *                   order): qemu reads QMP input one byte per read(), so
 *                   the request's size is qemu time.
 *
 * The VMs are stopped (forced) and reaped outside the timed regions.  The
 * target is libuvm <= 1.10x raw (ratio of medians) for both.
 *
 * Usage: bench-launch --kernel FILE --initramfs FILE [--rounds N]
 *        [--round-trips M] [--smoke] [--paused] ...      (see --help)
 * bench/run-bench.sh builds everything and runs this with the test guest. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <uvm/uvm.h>

#define VM_NAME "uvm-bench"
#define TARGET_RATIO 1.10
/* A raw read that sees nothing for this long means qemu hangs. */
#define RAW_READ_TIMEOUT_S 30
/* Grace for a raw qemu to exit after "quit" before it gets SIGKILL. */
#define RAW_QUIT_GRACE_MS 5000
#define READY_MARKER "UVM-GUEST-READY"

static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = sig;
}

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static gboolean
fail (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
fail (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL && *error == NULL)
    *error = g_error_new_valist (G_IO_ERROR, G_IO_ERROR_FAILED, format, args);
  va_end (args);
  return FALSE;
}

static gboolean
check_interrupted (GError **error)
{
  if (interrupted)
    return fail (error, "interrupted by signal %d", (int) interrupted);
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
  char *base_dir;      /* temporary: lib/ and raw/ runtime directories */
  char *lib_dir;
  char *raw_dir;
} Config;

/* ---- Statistics ------------------------------------------------------- */

typedef struct {
  GArray *ns;          /* gint64 samples */
} Samples;

typedef struct {
  double median, p10, p90, min, max;
  guint n;
} Summary;

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

/* Linear interpolation between closest ranks. */
static double
quantile (const gint64 *sorted, guint n, double q)
{
  double pos = q * (n - 1);
  guint lo = (guint) pos;
  double frac = pos - lo;

  if (lo + 1 >= n)
    return (double) sorted[n - 1];
  return sorted[lo] + frac * (double) (sorted[lo + 1] - sorted[lo]);
}

static Summary
summarize (const Samples *s, double unit_ns)
{
  Summary r = { 0 };
  g_autoptr(GArray) copy = NULL;
  const gint64 *v;

  r.n = s->ns->len;
  if (r.n == 0)
    return r;
  copy = g_array_copy (s->ns);
  g_array_sort (copy, compare_gint64);
  v = (const gint64 *) copy->data;
  r.median = quantile (v, r.n, 0.5) / unit_ns;
  r.p10 = quantile (v, r.n, 0.1) / unit_ns;
  r.p90 = quantile (v, r.n, 0.9) / unit_ns;
  r.min = v[0] / unit_ns;
  r.max = v[r.n - 1] / unit_ns;
  return r;
}

static void
samples_add (Samples *s, gint64 ns)
{
  g_array_append_val (s->ns, ns);
}

/* ---- The VM definition (the same for both kinds) ----------------------- */

static UvmVm *
make_vm (const Config *cfg, const char *runtime_dir)
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
  /* The console goes to console.log in the runtime directory. */
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
  memset (plan, 0, sizeof *plan);
}

/* The argv libuvm would execute for a definition whose runtime directory is
 * the raw one (so the console file does not collide with the libuvm VM's),
 * parsed back from uvm_vm_get_command_line(). */
static gboolean
raw_plan_init (RawPlan *plan, const Config *cfg, GError **error)
{
  g_autoptr(UvmVm) vm = make_vm (cfg, cfg->raw_dir);
  g_autofree char *line = uvm_vm_get_command_line (vm, error);
  int argc = 0;

  memset (plan, 0, sizeof *plan);
  plan->control_fd = -1;
  if (line == NULL || !g_shell_parse_argv (line, &argc, &plan->argv, error))
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
    return fail (error, "no QMP chardev with fd=N (N > 2) in libuvm's command line: %s", line);
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
          fail (error, "raw QMP: line longer than %zu bytes", sizeof r->buf);
          return NULL;
        }
      n = read (r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
      if (n < 0 && errno == EINTR && !interrupted)
        continue;
      if (n < 0)
        {
          fail (error, "raw QMP read: %s", errno == EAGAIN ? "timed out" : g_strerror (errno));
          return NULL;
        }
      if (n == 0)
        {
          fail (error, "raw QMP: qemu closed the connection (see its log)");
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
        return fail (error, "raw QMP write: %s", g_strerror (errno));
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
      return fail (error, "raw QMP %s: unexpected reply: %s", what, line);
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
raw_spawn (const RawPlan *plan, int listen_fd, int null_fd, int log_fd)
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
  const char *line;
  gboolean ok = FALSE;
  gint64 t0;

  g_assert (r->pid == 0);
  r->fd = -1;
  r->len = r->consumed = 0;
  r->next_id = 3;   /* as libuvm's client: 1 and 2 went to the handshake */
  if (strlen (plan->socket_path) >= sizeof addr.sun_path)
    return fail (error, "socket path too long: %s", plan->socket_path);
  g_strlcpy (addr.sun_path, plan->socket_path, sizeof addr.sun_path);
  unlink (plan->socket_path);
  unlink (plan->console_path);   /* libuvm, too, starts each run afresh */

  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  log_fd = open (plan->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (null_fd < 0 || log_fd < 0 || listen_fd < 0)
    {
      fail (error, "raw setup: %s", g_strerror (errno));
      goto out;
    }
  if (bind (listen_fd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (listen_fd, 16) != 0)
    {
      fail (error, "raw setup: %s: %s", plan->socket_path, g_strerror (errno));
      goto out;
    }

  t0 = now_ns ();
  r->pid = raw_spawn (plan, listen_fd, null_fd, log_fd);
  if (r->pid < 0)
    {
      r->pid = 0;
      fail (error, "fork: %s", g_strerror (errno));
      goto out;
    }
  r->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0 || connect (r->fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      fail (error, "raw connect: %s", g_strerror (errno));
      goto out;
    }
  /* qemu has its copy; ours would keep the socket alive if qemu died. */
  close_fd (&listen_fd);
  setsockopt (r->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

  if ((line = raw_read_line (r, error)) == NULL)
    goto out;
  if (strstr (line, "\"QMP\"") == NULL)
    {
      fail (error, "raw QMP: expected the greeting, got: %s", line);
      goto out;
    }
  if (!raw_send (r, QMP_CAPABILITIES, strlen (QMP_CAPABILITIES), error) ||
      !raw_wait_reply (r, "qmp_capabilities", NULL, error) ||
      !raw_send (r, QMP_QUERY_STATUS, strlen (QMP_QUERY_STATUS), error) ||
      !raw_wait_reply (r, "query-status", &line, error))
    goto out;
  *elapsed_ns = now_ns () - t0;
  if (strstr (line, "\"status\"") == NULL)
    {
      fail (error, "raw query-status: no status in %s", line);
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
  t0 = now_ns ();
  if (!raw_send (r, text, strlen (text), error) ||
      !raw_wait_reply (r, "query-status", NULL, error))
    return FALSE;
  *elapsed_ns = now_ns () - t0;
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

static gboolean
lib_start (const Config *cfg, UvmVm **out, gint64 *elapsed_ns, GError **error)
{
  g_autoptr(UvmVm) vm = make_vm (cfg, cfg->lib_dir);
  UvmVmState expected = cfg->paused ? UVM_VM_STATE_PAUSED : UVM_VM_STATE_RUNNING;
  gboolean ok;
  gint64 t0;

  t0 = now_ns ();
  ok = uvm_vm_start (vm, NULL, error);
  *elapsed_ns = now_ns () - t0;
  if (!ok)
    return FALSE;
  if (uvm_vm_get_state (vm) != expected)
    {
      fail (error, "libuvm VM is %s after start, expected %s",
            uvm_vm_state_to_string (uvm_vm_get_state (vm)), uvm_vm_state_to_string (expected));
      lib_stop (&vm);
      return FALSE;
    }
  *out = g_steal_pointer (&vm);
  return TRUE;
}

static gboolean
lib_round_trip (UvmVm *vm, gint64 *elapsed_ns, GError **error)
{
  char *reply;
  gint64 t0 = now_ns ();

  reply = uvm_vm_qmp_execute (vm, "query-status", NULL, NULL, error);
  *elapsed_ns = now_ns () - t0;
  if (reply == NULL)
    return FALSE;
  if (strstr (reply, "\"status\"") == NULL)
    {
      fail (error, "libuvm query-status: no status in %s", reply);
      g_free (reply);
      return FALSE;
    }
  g_free (reply);
  return TRUE;
}

/* ---- Measurements ---------------------------------------------------------- */

typedef struct {
  Samples lib_start, raw_start, lib_rtt, raw_rtt, raw_id_rtt;
  gboolean settled;    /* both guests reached READY_MARKER before the round trips */
  double settle_s;
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
          if (do_lib)
            {
              if (!lib_start (cfg, lib, &ns, error))
                return FALSE;
              lib_stop (lib);
              if (record)
                samples_add (&res->lib_start, ns);
            }
          else
            {
              if (!raw_start (plan, raw, &ns, error))
                return FALSE;
              raw_stop (raw);
              if (record)
                samples_add (&res->raw_start, ns);
            }
          if (cfg->verbose)
            g_printerr ("bench-launch: start %s%d %s: %.1f ms\n", record ? "" : "warm-up ",
                        record ? i - cfg->warmup + 1 : i + 1, do_lib ? "libuvm" : "raw", ns / 1e6);
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

static gboolean
measure_round_trips (const Config *cfg, const RawPlan *plan, Results *res, RawVm *raw,
                     UvmVm **lib, GError **error)
{
  gint64 ns = 0;
  int done = 0, block = 0;

  if (!lib_start (cfg, lib, &ns, error) || !raw_start (plan, raw, &ns, error))
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
first_line_of_command (const char *const *argv)
{
  g_autofree char *out = NULL;
  char *nl;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                     &status, NULL) || out == NULL)
    return g_strdup ("?");
  if ((nl = strchr (out, '\n')) != NULL)
    *nl = '\0';
  return g_strdup (g_strstrip (out));
}

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

/* @met: NULL for an informational row, not part of the target. */
static void
print_row (const char *what, Summary lib, Summary raw, gboolean *met)
{
  double ratio = raw.median > 0 ? lib.median / raw.median : 0;
  gboolean ok = ratio > 0 && ratio <= TARGET_RATIO;

  g_print ("| %-24s | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %6.3fx | %-7s |\n",
           what, lib.median, lib.p10, lib.p90, raw.median, raw.p10, raw.p90, ratio,
           met == NULL ? "(info)" : ok ? "yes" : "NO");
  if (met != NULL && !ok)
    *met = FALSE;
}

static gboolean
report (const Config *cfg, const Results *res, const char *lib_command_line, gboolean same_argv)
{
  g_autofree char *qemu_version = first_line_of_command ((const char *const[]) { cfg->qemu_path, "--version", NULL });
  g_autofree char *cpu = cpu_model ();
  Summary ls = summarize (&res->lib_start, 1e6), rs = summarize (&res->raw_start, 1e6);
  Summary lr = summarize (&res->lib_rtt, 1e3), rr = summarize (&res->raw_rtt, 1e3);
  Summary ri = summarize (&res->raw_id_rtt, 1e3);
  struct utsname uts;
  gboolean met = TRUE;

  g_autofree char *rtt_note = NULL;

  uname (&uts);
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
  g_print ("- QMP round trip (query-status): %d per side, in interleaved blocks of %d, one VM of each kind running%s\n",
           cfg->round_trips, cfg->block, rtt_note);
  g_print ("- raw = same argv (%s), fork+exec with the pre-bound socket as fd, blocking socket, "
           "greeting + qmp_capabilities + query-status; timed from before fork\n",
           same_argv ? "identical to libuvm's up to the runtime directory" : "DIFFERS from libuvm's");
  g_print ("- qemu argv (libuvm): %s\n\n", lib_command_line);

  g_print ("| %-24s | %8s | %8s | %8s | %8s | %8s | %8s | %7s | %-7s |\n", "measurement", "libuvm", "p10",
           "p90", "raw", "p10", "p90", "ratio", "<=1.10x");
  g_print ("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------------", "---------:", "---------:",
           "---------:", "---------:", "---------:", "---------:", "--------:", "---------");
  print_row ("start->ready ms", ls, rs, &met);
  print_row ("round trip us", lr, rr, &met);
  print_row ("round trip us, raw + id", lr, ri, NULL);
  g_print ("\n(medians; ratio = libuvm median / raw median; min/max start ms: libuvm %.1f/%.1f, raw %.1f/%.1f; "
           "round trip us: libuvm %.1f/%.1f, raw %.1f/%.1f)\n",
           ls.min, ls.max, rs.min, rs.max, lr.min, lr.max, rr.min, rr.max);
  g_print ("(\"raw + id\": the raw client sending {\"execute\":\"query-status\",\"id\":N}, which libuvm does not (it matches "
           "replies in order), on the same raw qemu, median %.1f us: qemu reads QMP input one byte per read, so request size costs qemu time)\n",
           ri.median);
  g_print ("target (libuvm <= %.2fx raw for both): %s\n", TARGET_RATIO, met ? "met" : "NOT met");
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
  g_autoptr(UvmVm) vm = make_vm (cfg, cfg->lib_dir);
  const char *bin = uvm_vm_get_hypervisor_path (vm);
  char *path;

  if (!uvm_vm_validate (vm, error))
    return NULL;
  if (strchr (bin, '/') != NULL)
    return g_canonicalize_filename (bin, NULL);
  path = g_find_program_in_path (bin);
  if (path == NULL)
    fail (error, "%s not found in PATH", bin);
  return path;
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
  gboolean met_ok = FALSE;
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
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &cfg.smoke, "Quick check that the benchmark works: 1 round, 5 round trips", NULL },
    { "strict", 0, 0, G_OPTION_ARG_NONE, &cfg.strict, "Exit with status 3 when the target is not met", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &cfg.verbose, "Print every start time", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- libuvm start->ready and QMP round trip vs. a raw qemu launch");
  g_autoptr(GError) error = NULL;
  g_autofree char *lib_line = NULL;
  g_autoptr(UvmVm) lib_vm_def = NULL;
  struct sigaction sa = { .sa_handler = on_signal };
  Results res = { { g_array_new (FALSE, FALSE, sizeof (gint64)) },
                  { g_array_new (FALSE, FALSE, sizeof (gint64)) },
                  { g_array_new (FALSE, FALSE, sizeof (gint64)) },
                  { g_array_new (FALSE, FALSE, sizeof (gint64)) },
                  { g_array_new (FALSE, FALSE, sizeof (gint64)) }, FALSE, 0 };
  RawPlan plan = { 0 };
  RawVm *raw = g_new0 (RawVm, 1);
  UvmVm *lib = NULL;
  gboolean same_argv, ran = FALSE;
  int status = 1;

  raw->fd = -1;
  g_option_context_set_description (options,
    "Times uvm_vm_start() (to ready: QMP negotiated, query-status answered) and\n"
    "uvm_vm_qmp_execute(\"query-status\") against a minimal launch of the same\n"
    "qemu argv over a raw socket, alternating in one process; prints medians,\n"
    "p10/p90 and the libuvm/raw ratio.  bench/run-bench.sh builds the test guest\n"
    "and runs this.\n");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("bench-launch: %s\n", error->message);
      return 2;
    }
  if (cfg.kernel == NULL)
    cfg.kernel = g_strdup (g_getenv ("UVM_BENCH_KERNEL"));
  if (cfg.initramfs == NULL)
    cfg.initramfs = g_strdup (g_getenv ("UVM_BENCH_INITRAMFS"));
  if (cfg.cmdline == NULL)
    cfg.cmdline = g_strdup ("console=ttyS0 quiet");
  if (cfg.smoke)
    {
      cfg.rounds = 1;
      cfg.round_trips = 5;
      cfg.warmup = 0;
    }
  if (cfg.kernel == NULL || cfg.initramfs == NULL)
    {
      g_printerr ("bench-launch: --kernel and --initramfs (or UVM_BENCH_KERNEL and "
                  "UVM_BENCH_INITRAMFS) are required; bench/run-bench.sh builds a guest\n");
      return 2;
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
  if (g_mkdir (cfg.raw_dir, 0700) != 0)
    {
      fail (&error, "mkdir %s: %s", cfg.raw_dir, g_strerror (errno));
      goto out;
    }

  cfg.qemu_path = resolve_qemu (&cfg, &error);
  if (cfg.qemu_path == NULL)
    goto out;
  lib_vm_def = make_vm (&cfg, cfg.lib_dir);
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
  if (!measure_round_trips (&cfg, &plan, &res, raw, &lib, &error))
    goto out;
  ran = TRUE;

out:
  /* Every qemu is reaped before we go, on every path. */
  raw_stop (raw);
  lib_stop (&lib);
  if (ran)
    {
      met_ok = report (&cfg, &res, lib_line, same_argv);
      status = cfg.strict && !met_ok ? 3 : 0;
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
      g_rmdir (cfg.raw_dir);
      g_rmdir (cfg.lib_dir);   /* libuvm removes it itself; gone unless a run failed */
      g_rmdir (cfg.base_dir);
    }
  raw_plan_clear (&plan);
  g_array_unref (res.lib_start.ns);
  g_array_unref (res.raw_start.ns);
  g_array_unref (res.lib_rtt.ns);
  g_array_unref (res.raw_rtt.ns);
  g_array_unref (res.raw_id_rtt.ns);
  g_free (raw);
  g_free (cfg.kernel);
  g_free (cfg.initramfs);
  g_free (cfg.cmdline);
  g_free (cfg.qemu);
  g_free (cfg.qemu_path);
  g_free (cfg.base_dir);
  g_free (cfg.lib_dir);
  g_free (cfg.raw_dir);
  return interrupted ? 130 : status;
}
