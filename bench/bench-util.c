/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bench-util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

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

gboolean
bench_parse_command_line (GOptionContext *options, const char *program, const char *guest_hint,
                          int *argc, char ***argv, char **kernel, char **initramfs, char **cmdline)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse (options, argc, argv, &error))
    {
      g_printerr ("%s: %s\n", program, error->message);
      return FALSE;
    }
  if (*kernel == NULL)
    *kernel = g_strdup (g_getenv ("UVM_BENCH_KERNEL"));
  if (*initramfs == NULL)
    *initramfs = g_strdup (g_getenv ("UVM_BENCH_INITRAMFS"));
  if (*cmdline == NULL)
    *cmdline = g_strdup ("console=ttyS0 quiet");
  if (*kernel == NULL || *initramfs == NULL)
    {
      g_printerr ("%s: --kernel and --initramfs (or UVM_BENCH_KERNEL and UVM_BENCH_INITRAMFS) "
                  "are required; %s builds a guest\n", program, guest_hint);
      return FALSE;
    }
  return TRUE;
}

char *
bench_first_line_of_command (const char *const *argv)
{
  g_autofree char *out = NULL;
  char *nl;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                     NULL, &out, NULL, NULL, NULL) || out == NULL)
    return g_strdup ("?");
  if ((nl = strchr (out, '\n')) != NULL)
    *nl = '\0';
  return g_strdup (g_strstrip (out));
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

GString *
bench_json_begin (const char *program, const char *qemu_version, const char *note)
{
  GString *out = g_string_new ("{\n  \"program\": ");
  struct utsname uts;

  uname (&uts);
  bench_json_string (out, program);
  g_string_append (out, ",\n  \"environment\": {\"qemu\": ");
  bench_json_string (out, qemu_version);
  g_string_append_printf (out, ", \"cpus\": %ld, \"kernel\": ", sysconf (_SC_NPROCESSORS_ONLN));
  bench_json_string (out, uts.release);
  g_string_append (out, ", \"note\": ");
  bench_json_string (out, note);
  g_string_append (out, "},\n  \"results\": [");
  return out;
}

gboolean
bench_json_finish (GString *out, const char *path, GError **error)
{
  g_string_append (out, "\n  ]\n}\n");
  return g_file_set_contents (path, out->str, (gssize) out->len, error);
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
