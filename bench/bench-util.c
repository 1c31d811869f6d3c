/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bench-util.h"

#include <stdarg.h>
#include <time.h>

#include <gio/gio.h>

gint64
bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

gboolean
bench_fail (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL && *error == NULL)
    *error = g_error_new_valist (G_IO_ERROR, G_IO_ERROR_FAILED, format, args);
  va_end (args);
  return FALSE;
}

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

double
bench_quantile (const double *sorted, guint n, double q)
{
  double want = q * n;
  guint rank = (guint) want;

  if (rank + 1e-9 < want)   /* ceil, deaf to rounding noise in q * n */
    rank++;

  return sorted[CLAMP (rank, 1, n) - 1];
}

BenchSummary
bench_summarize (const GArray *values, double unit)
{
  BenchSummary s = { 0 };
  g_autoptr(GArray) copy = NULL;
  const double *d;

  s.n = values->len;
  if (s.n == 0)
    return s;
  copy = g_array_copy ((GArray *) values);
  g_array_sort (copy, compare_double);
  d = (const double *) copy->data;
  s.median = (s.n % 2 == 1 ? d[s.n / 2] : (d[s.n / 2 - 1] + d[s.n / 2]) / 2) / unit;
  s.p10 = bench_quantile (d, s.n, 0.1) / unit;
  s.p90 = bench_quantile (d, s.n, 0.9) / unit;
  s.min = d[0] / unit;
  s.max = d[s.n - 1] / unit;
  return s;
}

BenchSummary
bench_summary_of_one (double value)
{
  return (BenchSummary) { value, value, value, value, value, 1 };
}

void
bench_json_string (GString *out, const char *text)
{
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (out, "\\%c", *p);
      else if ((guchar) *p < 0x20)
        g_string_append_printf (out, "\\u%04x", (guchar) *p);
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

void
bench_json_number (GString *out, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append (out, g_ascii_formatd (buf, sizeof buf, "%.3f", value));
}

void
bench_json_side (GString *out, const char *name, BenchSummary s)
{
  g_string_append (out, "{\"name\": ");
  bench_json_string (out, name);
  g_string_append_printf (out, ", \"n\": %u, \"median\": ", s.n);
  bench_json_number (out, s.median);
  g_string_append (out, ", \"p10\": ");
  bench_json_number (out, s.p10);
  g_string_append (out, ", \"p90\": ");
  bench_json_number (out, s.p90);
  g_string_append (out, ", \"min\": ");
  bench_json_number (out, s.min);
  g_string_append (out, ", \"max\": ");
  bench_json_number (out, s.max);
  g_string_append (out, "}");
}
