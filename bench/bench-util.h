/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-util: what bench-launch, bench-scale and bench-raw-rest share: the
 * clock, the GError helper, the summary of a series of samples, and the
 * writers of the result file bench/report.py reads. */
#pragma once

#include <glib.h>

/* CLOCK_MONOTONIC in nanoseconds. */
gint64 bench_now_ns (void);

/* Sets *@error (if @error is not NULL and *@error not yet set) to a
 * G_IO_ERROR_FAILED with the formatted message.  Always returns FALSE, so
 * that `return bench_fail (error, ...);` reads as a failure. */
gboolean bench_fail (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

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

/* Appends one side of a result, {"name": @name, "n": ..., "median": ...,
 * "p10": ..., "p90": ..., "min": ..., "max": ...}. */
void bench_json_side (GString *out, const char *name, BenchSummary s);
