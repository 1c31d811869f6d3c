/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-scale: how libuvm behaves with many VMs in one process.
 *
 * For each count N (default 1, 10, 50, 100) N qemu VMs are started
 * concurrently from this one process, paused (qemu -S: the guests never run
 * during the start, so two cores suffice), and measured:
 *
 *   ready        from the first uvm_vm_start_async() until the last of the N
 *                start callbacks has run (the VM objects are defined
 *                before the clock starts).
 *   memory       the library's own memory per VM: VmRSS of this process
 *                after all N are ready minus VmRSS before the N VM objects
 *                were created, divided by N.  One throwaway VM is started,
 *                resumed, paused and stopped first, so that GLib's and the
 *                library's one-time allocations are not counted, and
 *                malloc_trim() runs before each baseline so that memory
 *                freed by an earlier count is not silently reused.  What
 *                it cannot give back (GSlice magazines, partly used
 *                pages) is reused unseen by later counts: run one count
 *                per process (--counts 100) for the strictest figure.
 *   event        per-VM event latency with all N VMs up: one VM at a time,
 *                the time from uvm_vm_resume_async() (QMP "cont") to the
 *                user's event callback with STATE_CHANGED(RUNNING), which
 *                the library emits on qemu's RESUME event.  It covers our
 *                request, qemu's handling of it, the event on the socket
 *                and the library's dispatch, while the other N-1 VMs'
 *                connections, child watches and sockets are live in the
 *                same main context.  The VM is paused again at once
 *                (the guest runs for about a millisecond), and that
 *                pause -> STATE_CHANGED(PAUSED) time is shown for
 *                information.  Round-robin over the N VMs, R rounds
 *                (--event-rounds, default 5); median and p90 over the
 *                N x R samples.  The target is flat from 1 to 100.
 *                The guests do run between resume and pause, a few ms
 *                each time: many more rounds let them boot (with 20, one
 *                test guest ended its qemu).  QMP system_reset, the obvious
 *                event without a running guest, is a shutdown under the
 *                library's -no-reboot.
 *   stop all     uvm_vm_stop_async (vm, 0) (forced) for all N at once,
 *                until the last callback (every qemu reaped).
 *
 * After each count it checks that nothing is left: every VM stopped with
 * no pid, every runtime directory (under one temporary directory) removed,
 * no child process of ours left.
 *
 * Usage: bench-scale --kernel FILE --initramfs FILE [--counts 1,10,50,100]
 *        [--smoke] [--json FILE] [--csv FILE] ...           (see --help) */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <uvm/uvm.h>

#include "bench-util.h"

#define DEFAULT_COUNTS "1,10,50,100"
#define SMOKE_COUNTS "1,2"
#define MEMORY_TARGET_KIB 64.0
#define MEMORY_TARGET_N 100
/* Generous: 100 qemu processes starting on two cores take seconds. */
#define READY_TIMEOUT_S 300
#define EVENT_TIMEOUT_S 30
#define STOP_TIMEOUT_S 120

static gboolean interrupted;

static gboolean
on_signal (gpointer user_data)
{
  interrupted = TRUE;
  return G_SOURCE_CONTINUE;
}

/* ---- Options -------------------------------------------------------------- */

typedef struct {
  char *kernel;
  char *initramfs;
  char *cmdline;
  char *qemu;           /* as given, or NULL for the library's default */
  char *counts_text;
  char *json_path;
  char *csv_path;
  int memory_mib;
  int event_rounds;     /* resume/pause cycles per VM, at least */
  int event_samples;    /* ... and at least this many samples per count */
  gboolean smoke;
  gboolean verbose;
  GArray *counts;       /* guint */
  char *base_dir;       /* temporary; one runtime directory per VM in it */
} Config;

/* ---- Process figures ------------------------------------------------------ */

/* A "Key:   N kB" field of /proc/PID/status, in KiB; -1 when unreadable. */
static gint64
status_field_kib (const char *status_path, const char *key)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  size_t key_len = strlen (key);

  if (!g_file_get_contents (status_path, &text, NULL, NULL))
    return -1;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], key, key_len) == 0 && lines[i][key_len] == ':')
      return g_ascii_strtoll (lines[i] + key_len + 1, NULL, 10);
  return -1;
}

static gint64
self_rss_kib (void)
{
  return status_field_kib ("/proc/self/status", "VmRSS");
}

static guint
count_open_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  if (dir == NULL)
    return 0;
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n > 0 ? n - 1 : 0;   /* the GDir's own fd */
}

/* Children of ours that exist at all, reaped or not: waitid() with WNOWAIT
 * sees them without taking anything from the library's child watches. */
static gboolean
have_children (void)
{
  siginfo_t info = { 0 };

  if (waitid (P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
    return errno != ECHILD;
  return TRUE;   /* 0: children exist (exited or not) */
}

/* ---- VMs -------------------------------------------------------------- */

typedef struct Run Run;

typedef struct {
  Run *run;
  UvmVm *vm;
  char *runtime_dir;
  gboolean start_done, started;
  gboolean stop_done, stopped;
  gboolean op_done;            /* resume/pause finished */
  UvmVmState waiting_for;      /* state whose event we time, or DEFINED */
  gint64 event_at;             /* monotonic us of that event's callback */
  GError *error;               /* first failure of this VM */
} Slot;

struct Run {
  const Config *cfg;
  guint n;
  Slot *slots;
  guint starting;              /* start callbacks outstanding */
  guint stopping;              /* stop callbacks outstanding */
};

static UvmVm *
make_vm (const Config *cfg, const char *name, const char *runtime_dir)
{
  UvmVm *vm = uvm_vm_new (name, UVM_HYPERVISOR_QEMU);

  uvm_vm_set_kernel (vm, cfg->kernel, cfg->initramfs, cfg->cmdline);
  uvm_vm_set_memory (vm, (guint64) cfg->memory_mib * UVM_MIB);
  uvm_vm_set_vcpus (vm, 1);
  uvm_vm_set_machine (vm, UVM_MACHINE_Q35);
  uvm_vm_set_accel (vm, UVM_ACCEL_TCG);   /* no KVM here; the guest is paused anyway */
  uvm_vm_set_start_paused (vm, TRUE);
  if (cfg->qemu != NULL)
    uvm_vm_set_hypervisor_path (vm, cfg->qemu);
  uvm_vm_set_runtime_dir (vm, runtime_dir);
  return vm;
}

static void
on_event (UvmVm *vm, UvmEvent *event, gpointer user_data)
{
  Slot *slot = user_data;

  if (slot->waiting_for != UVM_VM_STATE_DEFINED && slot->event_at == 0 &&
      uvm_event_get_kind (event) == UVM_EVENT_STATE_CHANGED &&
      uvm_event_get_state (event) == slot->waiting_for)
    slot->event_at = g_get_monotonic_time ();
}

static void
slot_fail (Slot *slot, GError *error)
{
  if (slot->error == NULL)
    slot->error = error;
  else
    g_error_free (error);
}

static void
start_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Slot *slot = user_data;
  GError *error = NULL;

  slot->started = uvm_vm_start_finish (UVM_VM (source), result, &error);
  if (!slot->started)
    slot_fail (slot, error);
  slot->start_done = TRUE;
  slot->run->starting--;
}

static void
stop_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Slot *slot = user_data;
  GError *error = NULL;

  slot->stopped = uvm_vm_stop_finish (UVM_VM (source), result, &error);
  if (!slot->stopped)
    slot_fail (slot, error);
  slot->stop_done = TRUE;
  slot->run->stopping--;
}

static void
resume_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Slot *slot = user_data;
  GError *error = NULL;

  if (!uvm_vm_resume_finish (UVM_VM (source), result, &error))
    slot_fail (slot, error);
  slot->op_done = TRUE;
}

static void
pause_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Slot *slot = user_data;
  GError *error = NULL;

  if (!uvm_vm_pause_finish (UVM_VM (source), result, &error))
    slot_fail (slot, error);
  slot->op_done = TRUE;
}

static gboolean
on_deadline (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

typedef gboolean (*Predicate) (gconstpointer data);

static gboolean
all_started (gconstpointer data)
{
  return ((const Run *) data)->starting == 0;
}

static gboolean
all_stopped (gconstpointer data)
{
  const Run *run = data;

  return run->starting == 0 && run->stopping == 0;
}

static gboolean
flag_is_set (gconstpointer data)
{
  return *(const gboolean *) data;
}

static gboolean
event_seen (gconstpointer data)
{
  const Slot *slot = data;

  return slot->event_at != 0 || slot->error != NULL;
}

/* Iterates the default main context until @done (@data) holds, @timeout_s
 * passes or, when @honour_signal, a signal arrives. */
static gboolean
wait_for (Predicate done, gconstpointer data, int timeout_s, gboolean honour_signal, const char *what,
          GError **error)
{
  gboolean expired = FALSE;
  guint deadline = g_timeout_add_seconds (timeout_s, on_deadline, &expired);

  while (!expired && !(honour_signal && interrupted) && !done (data))
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (deadline);
  if (done (data))
    return TRUE;
  if (expired)
    return bench_fail (error, "timed out after %d s waiting for %s", timeout_s, what);
  return bench_fail (error, "interrupted by a signal while waiting for %s", what);
}

/* One timed state change of one VM: from the request to the event
 * callback.  Also waits for the request's own completion, so that nothing
 * overlaps the next measurement. */
static gboolean
time_state_change (Slot *slot, gboolean resume, double *ms, GError **error)
{
  const char *what = resume ? "resume" : "pause";
  gint64 t0;

  slot->op_done = FALSE;
  slot->event_at = 0;
  slot->waiting_for = resume ? UVM_VM_STATE_RUNNING : UVM_VM_STATE_PAUSED;
  t0 = g_get_monotonic_time ();
  if (resume)
    uvm_vm_resume_async (slot->vm, NULL, resume_done, slot);
  else
    uvm_vm_pause_async (slot->vm, NULL, pause_done, slot);
  if (!wait_for (flag_is_set, &slot->op_done, EVENT_TIMEOUT_S, TRUE, what, error) ||
      !wait_for (event_seen, slot, EVENT_TIMEOUT_S, TRUE, "the state-changed event", error))
    {
      g_prefix_error (error, "VM %s: ", uvm_vm_get_name (slot->vm));
      slot->waiting_for = UVM_VM_STATE_DEFINED;
      return FALSE;
    }
  slot->waiting_for = UVM_VM_STATE_DEFINED;
  if (slot->error != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&slot->error), "VM %s: %s: ",
                                  uvm_vm_get_name (slot->vm), what);
      return FALSE;
    }
  *ms = (slot->event_at - t0) / 1000.0;
  return TRUE;
}

/* ---- One count ------------------------------------------------------------ */

typedef struct {
  guint n;
  guint ready;                 /* how many started */
  gboolean complete;           /* all N started, measured and stopped clean */
  char *failure;               /* what went wrong, or NULL */
  double ready_ms;
  double memory_per_vm_kib;
  gint64 rss_before_kib, rss_after_kib;
  double fds_per_vm;
  double qemu_rss_per_vm_kib;  /* information: the hypervisors' own RSS */
  int rounds;                  /* resume/pause cycles per VM at this count */
  GArray *latency_ms;          /* resume -> RUNNING callback, N x rounds */
  GArray *pause_ms;            /* pause -> PAUSED callback, information */
  double stop_all_ms;
  gboolean clean;              /* nothing left after the stop */
} CountResult;

static void
count_result_clear (CountResult *r)
{
  g_free (r->failure);
  g_clear_pointer (&r->latency_ms, g_array_unref);
  g_clear_pointer (&r->pause_ms, g_array_unref);
}

static void
note_failure (CountResult *r, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
note_failure (CountResult *r, const char *format, ...)
{
  va_list args;
  char *text;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("bench-scale: N=%u: %s\n", r->n, text);
  if (r->failure == NULL)
    r->failure = text;
  else
    g_free (text);
}

static double
qemu_rss_sum_kib (Run *run)
{
  gint64 sum = 0;

  for (guint i = 0; i < run->n; i++)
    {
      int pid = uvm_vm_get_pid (run->slots[i].vm);
      g_autofree char *path = NULL;
      gint64 kib;

      if (pid <= 0)
        continue;
      path = g_strdup_printf ("/proc/%d/status", pid);
      kib = status_field_kib (path, "VmRSS");
      if (kib > 0)
        sum += kib;
    }
  return (double) sum;
}

/* Stops every VM of @run that has a hypervisor, all at once, forced; fills
 * r->stop_all_ms when @timed.  Always leaves no VM running that it could
 * stop (the unref after it kills what is left). */
static void
stop_all (Run *run, CountResult *r, gboolean timed)
{
  g_autoptr(GError) error = NULL;
  gint64 t0;

  run->stopping = 0;
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < run->n; i++)
    {
      Slot *slot = &run->slots[i];

      /* A start still under way (timed out, interrupted) is cancelled by
       * the stop; its callback, too, must run before the slot goes. */
      if (!slot->started && slot->start_done)
        continue;
      run->stopping++;
      uvm_vm_stop_async (slot->vm, 0, NULL, stop_done, slot);
    }
  /* A signal must not cut the stop short: wait through it. */
  if (!wait_for (all_stopped, run, STOP_TIMEOUT_S, FALSE, "the VMs to stop", &error))
    note_failure (r, "stop all: %s (%u stops, %u starts outstanding)", error->message, run->stopping,
                  run->starting);
  else if (timed)
    r->stop_all_ms = (g_get_monotonic_time () - t0) / 1000.0;
}

/* Nothing left: VMs stopped and without pid, runtime directories gone. */
static gboolean
check_clean (Run *run, CountResult *r)
{
  gboolean clean = TRUE;

  for (guint i = 0; i < run->n; i++)
    {
      Slot *slot = &run->slots[i];

      if (slot->started && (uvm_vm_get_pid (slot->vm) != 0 || uvm_vm_get_state (slot->vm) != UVM_VM_STATE_STOPPED))
        {
          note_failure (r, "VM %s still has a hypervisor (pid %d, state %s) after its stop",
                        uvm_vm_get_name (slot->vm), uvm_vm_get_pid (slot->vm),
                        uvm_vm_state_to_string (uvm_vm_get_state (slot->vm)));
          clean = FALSE;
        }
      if (g_file_test (slot->runtime_dir, G_FILE_TEST_EXISTS))
        {
          note_failure (r, "runtime directory %s left behind", slot->runtime_dir);
          clean = FALSE;
        }
    }
  return clean;
}

static void
run_free (Run *run)
{
  for (guint i = 0; i < run->n; i++)
    {
      Slot *slot = &run->slots[i];

      /* Dropping a VM that still runs kills and reaps its qemu. */
      g_clear_object (&slot->vm);
      g_free (slot->runtime_dir);
      g_clear_error (&slot->error);
    }
  g_free (run->slots);
  g_free (run);
}

static Run *
run_new (const Config *cfg, guint n, const char *tag)
{
  Run *run = g_new0 (Run, 1);

  run->cfg = cfg;
  run->n = n;
  run->slots = g_new0 (Slot, n);
  for (guint i = 0; i < n; i++)
    {
      Slot *slot = &run->slots[i];
      g_autofree char *name = g_strdup_printf ("scale-%s-%u", tag, i);

      slot->run = run;
      slot->runtime_dir = g_build_filename (cfg->base_dir, name, NULL);
      slot->vm = make_vm (cfg, name, slot->runtime_dir);
      uvm_vm_connect_event (slot->vm, on_event, slot, NULL);
    }
  return run;
}

/* Starts all VMs of @run at once and waits for every callback. */
static void
start_all (Run *run, CountResult *r)
{
  g_autoptr(GError) error = NULL;
  gint64 t0;

  run->starting = run->n;
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < run->n; i++)
    uvm_vm_start_async (run->slots[i].vm, NULL, start_done, &run->slots[i]);
  if (!wait_for (all_started, run, READY_TIMEOUT_S, TRUE, "the VMs to be ready", &error))
    note_failure (r, "start: %s (%u starts outstanding)", error->message, run->starting);
  r->ready_ms = (g_get_monotonic_time () - t0) / 1000.0;
  for (guint i = 0; i < run->n; i++)
    if (run->slots[i].started)
      r->ready++;
  if (r->ready < run->n)
    {
      const char *first = NULL;

      for (guint i = 0; i < run->n && first == NULL; i++)
        if (run->slots[i].error != NULL)
          first = run->slots[i].error->message;
      note_failure (r, "only %u of %u VMs started; first error: %s", r->ready, run->n,
                    first != NULL ? first : "(none reported: timed out or interrupted)");
    }
}

/* The throwaway VM: everything the measured ones do, once, so that one-time
 * allocations (GTypes, json-glib, the main context's arrays, libc's
 * buffers) are in the baseline. */
static gboolean
warm_up (const Config *cfg, GError **error)
{
  CountResult r = { .n = 1 };
  Run *run = run_new (cfg, 1, "warmup");
  double ms;
  gboolean ok;

  start_all (run, &r);
  ok = r.ready == 1 && time_state_change (&run->slots[0], TRUE, &ms, error) &&
       time_state_change (&run->slots[0], FALSE, &ms, error);
  stop_all (run, &r, FALSE);
  ok = ok && check_clean (run, &r);
  if (!ok && (error == NULL || *error == NULL))
    bench_fail (error, "warm-up VM: %s", r.failure != NULL ? r.failure : "failed");
  run_free (run);
  count_result_clear (&r);
  return ok;
}

static void
measure_count (const Config *cfg, guint n, CountResult *r)
{
  g_autofree char *tag = g_strdup_printf ("%u", n);
  guint fds_before, fds_after;
  Run *run;

  memset (r, 0, sizeof *r);
  r->n = n;
  /* As many samples at N = 1 as at N = 100: a median of 5 is no figure. */
  r->rounds = MAX (cfg->event_rounds, (cfg->event_samples + (int) n - 1) / (int) n);
  r->latency_ms = g_array_new (FALSE, FALSE, sizeof (double));
  r->pause_ms = g_array_new (FALSE, FALSE, sizeof (double));

  /* Give back what an earlier count freed, so that it is not reused unseen. */
  malloc_trim (0);
  r->rss_before_kib = self_rss_kib ();
  fds_before = count_open_fds ();

  run = run_new (cfg, n, tag);
  g_printerr ("bench-scale: N=%u: starting...\n", n);
  start_all (run, r);
  r->rss_after_kib = self_rss_kib ();
  fds_after = count_open_fds ();
  if (r->ready > 0)
    {
      r->memory_per_vm_kib = (double) (r->rss_after_kib - r->rss_before_kib) / n;
      r->fds_per_vm = (double) ((int) fds_after - (int) fds_before) / r->ready;
      r->qemu_rss_per_vm_kib = qemu_rss_sum_kib (run) / r->ready;
    }

  g_printerr ("bench-scale: N=%u: %u ready in %.1f ms; event latency...\n", n, r->ready, r->ready_ms);
  /* Round-robin over the VMs, one VM at a time: each round visits all N. */
  for (int round = 0; round < r->rounds && !interrupted && r->failure == NULL; round++)
    for (guint i = 0; i < n && !interrupted; i++)
      {
        Slot *slot = &run->slots[i];
        g_autoptr(GError) error = NULL;
        double resume_ms, pause_ms;

        if (!slot->started)
          continue;
        if (!time_state_change (slot, TRUE, &resume_ms, &error) ||
            !time_state_change (slot, FALSE, &pause_ms, &error))
          {
            note_failure (r, "event latency: %s", error->message);
            break;
          }
        g_array_append_val (r->latency_ms, resume_ms);
        g_array_append_val (r->pause_ms, pause_ms);
        if (cfg->verbose)
          g_printerr ("bench-scale: N=%u: round %d, VM %u: resume %.3f ms, pause %.3f ms\n", n, round, i,
                      resume_ms, pause_ms);
      }

  g_printerr ("bench-scale: N=%u: stopping all...\n", n);
  stop_all (run, r, TRUE);
  r->clean = check_clean (run, r);
  run_free (run);
  if (have_children ())
    {
      note_failure (r, "a child process of ours is left after all VMs were stopped and dropped");
      r->clean = FALSE;
    }
  r->complete = r->failure == NULL && r->ready == n && r->latency_ms->len == n * (guint) r->rounds && r->clean;
}

/* ---- Output --------------------------------------------------------------- */

static void
json_result (GString *out, gboolean *first, const char *id_prefix, guint n, const char *label,
             const char *unit, BenchSummary s, const char *target, const char *skipped)
{
  g_autofree char *id = g_strdup_printf ("%s_%u", id_prefix, n);

  g_string_append (out, *first ? "\n    " : ",\n    ");
  *first = FALSE;
  g_string_append (out, "{\"id\": ");
  bench_json_string (out, id);
  if (skipped != NULL)
    {
      g_string_append (out, ", \"skipped\": ");
      bench_json_string (out, skipped);
      g_string_append (out, "}");
      return;
    }
  g_string_append (out, ", \"label\": ");
  bench_json_string (out, label);
  g_string_append (out, ", \"unit\": ");
  bench_json_string (out, unit);
  g_string_append (out, ", \"a\": ");
  bench_json_side (out, "libuvm", s);
  g_string_append (out, ", \"b\": null");
  if (target != NULL)
    g_string_append_printf (out, ", \"target\": %s", target);
  g_string_append (out, "}");
}

static gboolean
write_json (const Config *cfg, const char *qemu_version, const char *note, const CountResult *results,
            guint n_results, GError **error)
{
  g_autoptr(GString) out = bench_json_begin ("bench-scale", qemu_version, note);
  gboolean first = TRUE;

  for (guint i = 0; i < n_results; i++)
    {
      const CountResult *r = &results[i];
      g_autofree char *skipped = NULL;
      g_autofree char *l_ready = g_strdup_printf ("N=%u VMs started at once → all ready (qemu, TCG, paused)", r->n);
      g_autofree char *l_lat = g_strdup_printf ("event latency, N=%u VMs up: resume request → STATE_CHANGED(RUNNING) "
                                                "callback, one VM at a time, %d per VM", r->n, r->rounds);
      g_autofree char *l_mem = g_strdup_printf ("library memory per VM, N=%u (this process's RSS growth / N)", r->n);
      g_autofree char *l_stop = g_strdup_printf ("forced stop of N=%u VMs at once → all reaped", r->n);
      g_autofree char *mem_target = r->n == MEMORY_TARGET_N ? g_strdup_printf ("{\"max_value\": %g}", MEMORY_TARGET_KIB) : NULL;

      if (!r->complete)
        {
          skipped = g_strdup_printf ("%u of %u VMs started; %s", r->ready, r->n, r->failure ? r->failure : "failed");
          g_printerr ("bench-scale: N=%u: written as skipped: %s\n", r->n, skipped);
        }
      json_result (out, &first, "scale_ready", r->n, l_ready, "ms", bench_summary_of_one (r->ready_ms), NULL, skipped);
      json_result (out, &first, "scale_event_latency", r->n, l_lat, "ms", bench_summarize (r->latency_ms, 1), NULL, skipped);
      json_result (out, &first, "scale_memory_per_vm", r->n, l_mem, "KiB", bench_summary_of_one (r->memory_per_vm_kib),
                   mem_target, skipped);
      json_result (out, &first, "scale_stop_all", r->n, l_stop, "ms", bench_summary_of_one (r->stop_all_ms), NULL, skipped);
    }
  return bench_json_finish (out, cfg->json_path, error);
}

static gboolean
write_csv (const Config *cfg, const CountResult *results, guint n_results, GError **error)
{
  g_autoptr(GString) out = g_string_new ("n,ready_ms,latency_median_ms,latency_p90_ms,memory_per_vm_kib,stop_all_ms\n");

  for (guint i = 0; i < n_results; i++)
    {
      const CountResult *r = &results[i];
      BenchSummary lat = bench_summarize (r->latency_ms, 1);
      char buf[5][G_ASCII_DTOSTR_BUF_SIZE];

      if (!r->complete)
        continue;   /* a plot of partial runs would mislead */
      g_string_append_printf (out, "%u,%s,%s,%s,%s,%s\n", r->n,
                              g_ascii_formatd (buf[0], sizeof buf[0], "%.3f", r->ready_ms),
                              g_ascii_formatd (buf[1], sizeof buf[1], "%.3f", lat.median),
                              g_ascii_formatd (buf[2], sizeof buf[2], "%.3f", lat.p90),
                              g_ascii_formatd (buf[3], sizeof buf[3], "%.1f", r->memory_per_vm_kib),
                              g_ascii_formatd (buf[4], sizeof buf[4], "%.3f", r->stop_all_ms));
    }
  return g_file_set_contents (cfg->csv_path, out->str, (gssize) out->len, error);
}

static void
print_report (const Config *cfg, const char *qemu_version, const char *limits_note,
              const CountResult *results, guint n_results)
{
  struct utsname uts;
  double lat_first = 0, lat_last = 0;
  const CountResult *mem_row = NULL;

  uname (&uts);
  g_print ("\n## libuvm scale benchmark%s\n\n", cfg->smoke ? " (smoke)" : "");
  g_print ("- machine: %ld CPUs, Linux %s; %s\n", sysconf (_SC_NPROCESSORS_ONLN), uts.release, qemu_version);
  g_print ("- libuvm %s, GLib %u.%u.%u\n", uvm_get_version (), glib_major_version, glib_minor_version,
           glib_micro_version);
  g_print ("- each VM: q35, TCG, 1 vCPU, %d MiB, started paused (-S), no devices; kernel %s, initramfs %s\n",
           cfg->memory_mib, cfg->kernel, cfg->initramfs);
  g_print ("- %s\n", limits_note);
  g_print ("- ready: first uvm_vm_start_async() -> last start callback (VM objects defined before)\n");
  g_print ("- event latency: max(%d, %d/N) rounds over the N VMs, one VM at a time, all N up: uvm_vm_resume_async() (QMP cont) -> the event "
           "callback with STATE_CHANGED(RUNNING) (qemu's RESUME event); the VM is paused again at once; "
           "pause -> STATE_CHANGED(PAUSED) shown for information\n", cfg->event_rounds, cfg->event_samples);
  g_print ("- library memory per VM: (VmRSS of this process when all are ready - VmRSS before the VM objects "
           "were created) / N, after one throwaway start/resume/pause/stop and malloc_trim(); later counts may reuse memory "
           "earlier ones freed (run --counts N alone for the strictest figure); "
           "qemu RSS per VM (the hypervisors' own) for information\n");
  g_print ("- stop all: uvm_vm_stop_async (vm, 0) for all N at once -> last callback (every qemu reaped)\n\n");

  g_print ("| %4s | %5s | %9s | %9s | %9s | %9s | %9s | %10s | %9s | %8s | %9s | %-5s |\n", "N", "ready",
           "ready ms", "lat p50", "lat p90", "lat max", "pause p50", "lib KiB/VM", "fds/VM", "qemu MiB", "stop ms",
           "clean");
  g_print ("|-----:|------:|----------:|----------:|----------:|----------:|----------:|-----------:|----------:|---------:|----------:|-------|\n");
  for (guint i = 0; i < n_results; i++)
    {
      const CountResult *r = &results[i];
      BenchSummary lat = bench_summarize (r->latency_ms, 1), pause = bench_summarize (r->pause_ms, 1);

      g_print ("| %4u | %5u | %9.1f | %9.3f | %9.3f | %9.3f | %9.3f | %10.1f | %9.1f | %8.1f | %9.1f | %-5s |\n",
               r->n, r->ready, r->ready_ms, lat.median, lat.p90, lat.max, pause.median, r->memory_per_vm_kib,
               r->fds_per_vm, r->qemu_rss_per_vm_kib / 1024.0, r->stop_all_ms, r->clean ? "yes" : "NO");
      if (lat.n > 0)
        {
          if (lat_first == 0)
            lat_first = lat.median;
          lat_last = lat.median;
        }
      if (r->n == MEMORY_TARGET_N)
        mem_row = r;
    }
  g_print ("\n(lat = resume -> RUNNING event callback in ms, median/p90/max over N x rounds samples; "
           "lib KiB/VM = this process's RSS growth / N (%" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT " KiB at the "
           "largest N); fds/VM = this process's open fds per running VM)\n",
           n_results ? results[n_results - 1].rss_before_kib : 0, n_results ? results[n_results - 1].rss_after_kib : 0);
  for (guint i = 0; i < n_results; i++)
    if (results[i].failure != NULL)
      g_print ("N=%u: FAILED: %s\n", results[i].n, results[i].failure);
  if (lat_first > 0)
    g_print ("event latency median, largest N / smallest N: %.2fx (target: flat)\n", lat_last / lat_first);
  if (mem_row != NULL)
    g_print ("library memory per VM at N=%u: %.1f KiB (target <= %.0f KiB): %s\n", mem_row->n,
             mem_row->memory_per_vm_kib, MEMORY_TARGET_KIB,
             mem_row->complete && mem_row->memory_per_vm_kib <= MEMORY_TARGET_KIB ? "met" : "NOT met");
}

/* ---- Limits --------------------------------------------------------------- */

/* Raises the soft RLIMIT_NOFILE to the hard one; says what there is. */
static char *
raise_nofile (void)
{
  struct rlimit rl;
  rlim_t before;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return g_strdup_printf ("RLIMIT_NOFILE: unknown (%s)", g_strerror (errno));
  before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        g_printerr ("bench-scale: cannot raise RLIMIT_NOFILE to %llu: %s\n", (unsigned long long) rl.rlim_max,
                    g_strerror (errno));
      getrlimit (RLIMIT_NOFILE, &rl);
    }
  return g_strdup_printf ("RLIMIT_NOFILE soft %llu (was %llu), hard %llu",
                          (unsigned long long) rl.rlim_cur, (unsigned long long) before,
                          (unsigned long long) rl.rlim_max);
}

static gboolean
parse_counts (Config *cfg, GError **error)
{
  g_auto(GStrv) parts = g_strsplit (cfg->counts_text, ",", -1);

  cfg->counts = g_array_new (FALSE, FALSE, sizeof (guint));
  for (guint i = 0; parts[i] != NULL; i++)
    {
      guint64 v;

      if (!g_ascii_string_to_unsigned (g_strstrip (parts[i]), 10, 1, 10000, &v, NULL))
        return bench_fail (error, "--counts: \"%s\" is not a count from 1 to 10000", parts[i]);
      g_array_append_vals (cfg->counts, &(guint) { (guint) v }, 1);
    }
  if (cfg->counts->len == 0)
    return bench_fail (error, "--counts is empty");
  return TRUE;
}

/* ---- main ----------------------------------------------------------------- */

static void
remove_base_dir (const char *base_dir)
{
  g_autoptr(GDir) dir = g_dir_open (base_dir, 0, NULL);
  const char *name;

  /* Normally empty: the library removes each runtime directory.  Leftovers
   * were reported; clear what is simple (a failed run's empty dirs). */
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (base_dir, name, NULL);
      g_printerr ("bench-scale: left behind: %s\n", path);
      g_rmdir (path);
    }
  if (g_rmdir (base_dir) != 0)
    g_printerr ("bench-scale: could not remove %s: %s\n", base_dir, g_strerror (errno));
}

int
main (int argc, char **argv)
{
  Config cfg = { .memory_mib = 128, .event_rounds = 5, .event_samples = 200 };
  GOptionEntry entries[] = {
    { "kernel", 'k', 0, G_OPTION_ARG_FILENAME, &cfg.kernel, "Guest kernel (default: $UVM_BENCH_KERNEL)", "FILE" },
    { "initramfs", 'i', 0, G_OPTION_ARG_FILENAME, &cfg.initramfs, "Guest initramfs (default: $UVM_BENCH_INITRAMFS)", "FILE" },
    { "cmdline", 'c', 0, G_OPTION_ARG_STRING, &cfg.cmdline, "Kernel command line (default \"console=ttyS0 quiet\")", "TEXT" },
    { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &cfg.qemu, "qemu binary (default: the library's, from PATH)", "PATH" },
    { "counts", 'n', 0, G_OPTION_ARG_STRING, &cfg.counts_text, "Numbers of VMs, comma-separated (default " DEFAULT_COUNTS ")", "N,N,..." },
    { "memory", 'm', 0, G_OPTION_ARG_INT, &cfg.memory_mib, "Guest memory per VM in MiB (default 128: with 64 the test guest's kernel resets as soon as it runs, and -no-reboot ends qemu; at least 64)", "MIB" },
    { "event-rounds", 'r', 0, G_OPTION_ARG_INT, &cfg.event_rounds, "Resume/pause cycles per VM for the event latency, at least (default 5)", "R" },
    { "event-samples", 0, 0, G_OPTION_ARG_INT, &cfg.event_samples, "Event latency samples per count, at least (default 200: more rounds for small N)", "S" },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &cfg.smoke, "Quick check that the benchmark works: counts " SMOKE_COUNTS, NULL },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &cfg.json_path, "Write the results as JSON (see bench/report.py)", "FILE" },
    { "csv", 0, 0, G_OPTION_ARG_FILENAME, &cfg.csv_path, "Write a CSV for bench/plot-scale.gp", "FILE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &cfg.verbose, "Print every VM's latency", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- many libuvm VMs in one process");
  g_autoptr(GError) error = NULL;
  g_autofree char *limits = NULL, *qemu_version = NULL, *note = NULL;
  CountResult *results = NULL;
  guint n_results = 0, max_n = 0;
  gboolean all_complete = TRUE;
  int status = 1;

  g_option_context_set_description (options,
    "Starts N paused qemu VMs concurrently from this process for each N and\n"
    "measures the time until all are ready, this process's memory per VM, the\n"
    "resume -> event callback latency per VM with all N up, and a forced stop\n"
    "of all N at once.  Prints a Markdown table; --json and --csv write files.\n");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!bench_parse_command_line (options, "bench-scale", "tests/guest/build-guest.sh", &argc, &argv, &cfg.kernel,
                                 &cfg.initramfs, &cfg.cmdline))
    return 2;
  if (cfg.counts_text == NULL)
    cfg.counts_text = g_strdup (cfg.smoke ? SMOKE_COUNTS : DEFAULT_COUNTS);
  if (cfg.event_rounds < 1 || cfg.memory_mib < 64)
    {
      g_printerr ("bench-scale: --event-rounds must be at least 1 and --memory at least 64\n");
      return 2;
    }
  if (!parse_counts (&cfg, &error))
    {
      g_printerr ("bench-scale: %s\n", error->message);
      return 2;
    }
  for (guint i = 0; i < cfg.counts->len; i++)
    max_n = MAX (max_n, g_array_index (cfg.counts, guint, i));

  g_unix_signal_add (SIGINT, on_signal, NULL);
  g_unix_signal_add (SIGTERM, on_signal, NULL);
  g_unix_signal_add (SIGHUP, on_signal, NULL);
  limits = raise_nofile ();
  qemu_version = bench_first_line_of_command ((const char *const[]) { cfg.qemu ? cfg.qemu : "qemu-system-x86_64", "--version", NULL });

  /* Short: the control sockets' paths must fit in sun_path. */
  cfg.base_dir = g_dir_make_tmp ("uvm-scale-XXXXXX", &error);
  if (cfg.base_dir == NULL)
    goto out;

  {
    g_autoptr(UvmVm) probe = make_vm (&cfg, "scale-probe", cfg.base_dir);
    if (!uvm_vm_validate (probe, &error))
      goto out;
  }

  g_printerr ("bench-scale: %s; warming up...\n", limits);
  if (!warm_up (&cfg, &error))
    goto out;

  results = g_new0 (CountResult, cfg.counts->len);
  for (guint i = 0; i < cfg.counts->len && !interrupted; i++)
    {
      measure_count (&cfg, g_array_index (cfg.counts, guint, i), &results[i]);
      n_results++;
      all_complete = all_complete && results[i].complete;
    }

  {
    double fds = 0;
    guint base_fds = count_open_fds ();

    for (guint i = 0; i < n_results; i++)
      fds = MAX (fds, results[i].fds_per_vm);
    note = g_strdup_printf ("%s; needed for N VMs: about %u + %.0f x N open fds in this process "
                            "(%.0f for N=%u); paused q35 TCG guests of %d MiB",
                            limits, base_fds, fds, base_fds + fds * max_n, max_n, cfg.memory_mib);
  }
  print_report (&cfg, qemu_version, note, results, n_results);
  status = all_complete && !interrupted ? 0 : 1;

  if (cfg.json_path != NULL && !write_json (&cfg, qemu_version, note, results, n_results, &error))
    status = 1;
  if (error == NULL && cfg.csv_path != NULL && !write_csv (&cfg, results, n_results, &error))
    status = 1;

out:
  if (error != NULL)
    g_printerr ("bench-scale: %s\n", error->message);
  if (cfg.base_dir != NULL)
    remove_base_dir (cfg.base_dir);
  for (guint i = 0; i < n_results; i++)
    count_result_clear (&results[i]);
  g_free (results);
  if (cfg.counts != NULL)
    g_array_unref (cfg.counts);
  g_free (cfg.kernel);
  g_free (cfg.initramfs);
  g_free (cfg.cmdline);
  g_free (cfg.qemu);
  g_free (cfg.counts_text);
  g_free (cfg.json_path);
  g_free (cfg.csv_path);
  g_free (cfg.base_dir);
  return interrupted ? 130 : status;
}
