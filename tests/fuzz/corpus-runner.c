/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a fuzz harness over every file of its corpus directories, without
 * libFuzzer: this is how the corpora (tests/fuzz/corpus/NAME/) run as
 * regression tests in every build, compiler and sanitizers whatever they
 * are.  Usage: fuzz-corpus-NAME DIR|FILE...  Fails when a directory holds
 * no file, so that a lost corpus cannot pass silently; a finding aborts
 * in the harness, after the file's name has been printed. */
#include "fuzz-common.h"

#include <string.h>

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static gboolean
run_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return FALSE;
    }
  /* Named first: if the harness aborts, this is the input. */
  fprintf (stderr, "%s (%" G_GSIZE_FORMAT " bytes)\n", path, len);
  /* A copy of exactly len bytes, so that ASan sees a read past the end. */
  {
    g_autofree guint8 *copy = g_memdup2 (contents, len);

    LLVMFuzzerTestOneInput (copy, len);
  }
  return TRUE;
}

static gboolean
run_dir (const char *path, guint *n_files)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = g_dir_open (path, 0, &error);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  guint before = *n_files;

  if (dir == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return FALSE;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      if (!run_file (names->pdata[i]))
        return FALSE;
      (*n_files)++;
    }
  if (*n_files == before)
    {
      fprintf (stderr, "%s: no corpus files\n", path);
      return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  guint n_files = 0;

  if (argc < 2)
    {
      fprintf (stderr, "usage: %s DIR|FILE...\n", argv[0]);
      return 2;
    }
  for (int i = 1; i < argc; i++)
    {
      gboolean ok;

      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        ok = run_dir (argv[i], &n_files);
      else
        ok = run_file (argv[i]) && ++n_files;
      if (!ok)
        return 1;
    }
  printf ("%u inputs, no finding\n", n_files);
  return 0;
}
