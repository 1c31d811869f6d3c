/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <uvm/uvm.h>

gboolean
uvm_set_error (GError **error, int code, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL)
    *error = g_error_new_valist (UVM_ERROR, code, format, args);
  va_end (args);
  return FALSE;
}

char *
uvm_absolute_path (const char *path)
{
  g_autofree char *cwd = NULL;

  if (g_path_is_absolute (path))
    return g_canonicalize_filename (path, NULL);
  cwd = g_get_current_dir ();
  return g_canonicalize_filename (path, cwd);
}

static gboolean
is_shell_safe (const char *arg)
{
  if (*arg == '\0')
    return FALSE;
  for (const char *p = arg; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("_@%+=:,./-", *p) == NULL)
      return FALSE;
  return TRUE;
}

char *
uvm_shell_quote (const char *arg)
{
  GString *out;

  if (is_shell_safe (arg))
    return g_strdup (arg);
  out = g_string_new ("'");
  for (const char *p = arg; *p; p++)
    {
      if (*p == '\'')
        g_string_append (out, "'\\''");
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '\'');
  return g_string_free (out, FALSE);
}

void
uvm_append_qemu_value (GString *str, const char *value)
{
  for (const char *p = value; *p; p++)
    {
      if (*p == ',')
        g_string_append_c (str, ',');
      g_string_append_c (str, *p);
    }
}

char *
uvm_read_file_tail (const char *path, guint max_lines)
{
  g_autofree char *contents = NULL;
  gsize len = 0;
  const char *start, *p;
  guint lines = 0;

  if (!g_file_get_contents (path, &contents, &len, NULL) || len == 0)
    return NULL;
  /* Drop trailing newlines so the last line counts as one. */
  while (len > 0 && (contents[len - 1] == '\n' || contents[len - 1] == '\r'))
    contents[--len] = '\0';
  if (len == 0)
    return NULL;
  start = contents;
  if (len > 4096)
    start = contents + len - 4096;
  for (p = contents + len; p > start; p--)
    if (p[-1] == '\n' && ++lines >= max_lines)
      break;
  return g_strdup (p);
}

void
uvm_close_fd (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
  *fd = -1;
}

void
uvm_source_clear (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

const char *
uvm_json_node_get_string (JsonNode *node)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

gboolean
uvm_json_node_get_int (JsonNode *node, gint64 *out)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (node);
  return TRUE;
}
