/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-util: what bench-launch, bench-scale and bench-raw-rest share: the
 * clock, the GError helper, the command line's guest options, the summary
 * of a series of samples, and the writers of the result file bench/report.py
 * reads. */
#pragma once

#include <glib.h>

/* CLOCK_MONOTONIC in nanoseconds. */
gint64 bench_now_ns (void);

/* Sets *@error (if @error is not NULL and *@error not yet set) to a
 * G_IO_ERROR_FAILED with the formatted message.  Always returns FALSE, so
 * that `return bench_fail (error, ...);` reads as a failure. */
gboolean bench_fail (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Parses @argv with @options (its entries already added), then fills what
 * the command line left NULL: *@kernel and *@initramfs from
 * $UVM_BENCH_KERNEL and $UVM_BENCH_INITRAMFS, *@cmdline with the default
 * console line.  On a parse error or without a kernel and initramfs, prints
 * why to stderr, prefixed with @program and ending in @guest_hint (what
 * builds a guest), and returns FALSE: exit with 2. */
gboolean bench_parse_command_line (GOptionContext *options, const char *program, const char *guest_hint,
                                   int *argc, char ***argv, char **kernel, char **initramfs, char **cmdline);

/* The first line @argv (searched in PATH) writes to stdout, stripped, or
 * "?" if it cannot be run.  Free with g_free(). */
char *bench_first_line_of_command (const char *const *argv);

/* A series of samples as the result file states it; all zero when n is 0. */
typedef struct {
  double median, p10, p90, min, max;
  guint n;
} BenchSummary;

/* Nearest rank: the smallest sample with at least @q * @n samples <= it
 * (the definition bench/report.py's result files use).  @sorted: @n > 0
 * values in ascending order. */
double bench_quantile (const double *sorted, guint n, double q);

/* Summarizes @values (a GArray of double, left unchanged), every field
 * divided by @unit (1 to keep the samples' unit; 1e6 turns ns into ms).
 * The median of an even count is the mean of the middle two. */
BenchSummary bench_summarize (const GArray *values, double unit);

/* A single measurement as a summary of one sample. */
BenchSummary bench_summary_of_one (double value);

/* Appends @text as a JSON string: quotes, with '"', '\\' and control
 * characters escaped; other bytes (UTF-8) as they are. */
void bench_json_string (GString *out, const char *text);

/* Appends @value with three decimals and a '.' whatever the locale. */
void bench_json_number (GString *out, double value);

/* A new result file, open up to its "results" array: {"program": @program,
 * "environment": {"qemu": @qemu_version, "cpus": online CPUs, "kernel":
 * this host's release, "note": @note}, "results": [ ... */
GString *bench_json_begin (const char *program, const char *qemu_version, const char *note);

/* Closes the "results" array and the object bench_json_begin() opened in
 * @out and writes @out to @path. */
gboolean bench_json_finish (GString *out, const char *path, GError **error);

/* Appends one side of a result, {"name": @name, "n": ..., "median": ...,
 * "p10": ..., "p90": ..., "min": ..., "max": ...}. */
void bench_json_side (GString *out, const char *name, BenchSummary s);
