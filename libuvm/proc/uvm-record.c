/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc/uvm-record.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uvm/uvm.h>

#define RECORD_SCHEMA 1

UvmRecord *
uvm_record_new (void)
{
  UvmRecord *record = g_new0 (UvmRecord, 1);

  record->helpers = g_array_new (FALSE, TRUE, sizeof (UvmRecordProcess));
  return record;
}

void
uvm_record_free (UvmRecord *record)
{
  if (record == NULL)
    return;
  g_free (record->name);
  g_free (record->hypervisor);
  g_free (record->process.name);
  for (guint i = 0; i < record->helpers->len; i++)
    g_free (g_array_index (record->helpers, UvmRecordProcess, i).name);
  g_array_unref (record->helpers);
  g_free (record->control_path);
  g_free (record->console_path);
  g_free (record->log_path);
  g_free (record->definition);
  g_free (record->attach_requests);
  g_strfreev (record->files);
  g_free (record->user_lease);
  g_free (record);
}

/* Field 22 (start time) and field 3 (state) of /proc/PID/stat. */
static gboolean
read_stat (GPid pid, char *state, guint64 *start_time)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  const char *p;

  if (pid <= 0 || !g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  /* "PID (COMM) S ...": COMM may hold spaces and parentheses; fields
   * count from after its last ')'.  That is field 3; we want 22. */
  p = strrchr (text, ')');
  if (p == NULL || p[1] != ' ')
    return FALSE;
  *state = p[2];
  p++;
  for (int field = 3; field < 22; field++)
    {
      p = strchr (p + 1, ' ');
      if (p == NULL)
        return FALSE;
    }
  *start_time = g_ascii_strtoull (p + 1, NULL, 10);
  return TRUE;
}

guint64
uvm_process_start_time (GPid pid)
{
  guint64 start = 0;
  char state;

  return read_stat (pid, &state, &start) ? start : 0;
}

gboolean
uvm_record_process_alive (const UvmRecordProcess *process)
{
  guint64 start = 0;
  char state = 0;

  /* A zombie (killed, not reaped yet by its parent) has ended too. */
  return read_stat (process->pid, &state, &start) && start == process->start_time &&
         state != 'Z' && state != 'X';
}

void
uvm_record_add_helper (UvmRecord *record, GPid pid, const char *name)
{
  UvmRecordProcess p = { pid, uvm_process_start_time (pid), g_strdup (name) };

  g_array_append_val (record->helpers, p);
}

static void
add_process (JsonBuilder *b, const UvmRecordProcess *p)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, p->pid);
  json_builder_set_member_name (b, "start-time");
  json_builder_add_int_value (b, (gint64) p->start_time);
  if (p->name != NULL)
    {
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, p->name);
    }
  json_builder_end_object (b);
}

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

gboolean
uvm_record_write (const UvmRecord *record, const char *dir, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *path = g_build_filename (dir, UVM_RECORD_NAME, NULL);
  g_autoptr(GError) local = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "schema");
  json_builder_add_int_value (b, RECORD_SCHEMA);
  add_string (b, "name", record->name);
  add_string (b, "hypervisor", record->hypervisor);
  json_builder_set_member_name (b, "lifetime");
  json_builder_add_string_value (b, record->detached ? "detached" : "attached");
  json_builder_set_member_name (b, "ready");
  json_builder_add_boolean_value (b, record->ready);
  json_builder_set_member_name (b, "process");
  add_process (b, &record->process);
  json_builder_set_member_name (b, "helpers");
  json_builder_begin_array (b);
  for (guint i = 0; i < record->helpers->len; i++)
    add_process (b, &g_array_index (record->helpers, UvmRecordProcess, i));
  json_builder_end_array (b);
  add_string (b, "control-socket", record->control_path);
  add_string (b, "console", record->console_path);
  add_string (b, "log", record->log_path);
  add_string (b, "user-lease", record->user_lease);
  json_builder_set_member_name (b, "console-log-start");
  json_builder_add_int_value (b, record->console_log_start);
  if (record->definition != NULL)
    {
      JsonNode *def = json_from_string (record->definition, NULL);

      if (def != NULL)
        {
          json_builder_set_member_name (b, "definition");
          json_builder_add_value (b, def);
        }
    }
  json_builder_set_member_name (b, "files");
  json_builder_begin_array (b);
  for (guint i = 0; record->files != NULL && record->files[i] != NULL; i++)
    json_builder_add_string_value (b, record->files[i]);
  json_builder_end_array (b);
  if (record->attach_requests != NULL)
    {
      JsonNode *reqs = json_from_string (record->attach_requests, NULL);

      if (reqs != NULL)
        {
          json_builder_set_member_name (b, "attach-requests");
          json_builder_add_value (b, reqs);
        }
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = json_to_string (root, TRUE);
  /* Written whole or not at all: a reader never sees half a record. */
  if (!g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
    return uvm_set_error (error, UVM_ERROR_START_FAILED, "state record '%s': %s", path,
                          local->message);
  return TRUE;
}

static gboolean
read_process (JsonNode *node, UvmRecordProcess *p)
{
  JsonObject *o = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  gint64 pid = 0, start = 0;

  if (o == NULL || !uvm_json_node_get_int (json_object_get_member (o, "pid"), &pid) ||
      !uvm_json_node_get_int (json_object_get_member (o, "start-time"), &start) || pid <= 0)
    return FALSE;
  p->pid = (GPid) pid;
  p->start_time = (guint64) start;
  p->name = g_strdup (uvm_json_node_get_string (json_object_get_member (o, "name")));
  return TRUE;
}

UvmRecord *
uvm_record_read (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, UVM_RECORD_NAME, NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(UvmRecord) record = uvm_record_new ();
  JsonObject *o;
  JsonNode *helpers, *def;
  gint64 schema = 0;

  if (!g_file_get_contents (path, &text, NULL, &local))
    {
      uvm_set_error (error, g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                              ? UVM_ERROR_NOT_FOUND : UVM_ERROR_FAILED,
                     "state record '%s': %s", path, local->message);
      return NULL;
    }
  root = json_from_string (text, &local);
  o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (o == NULL || !uvm_json_node_get_int (json_object_get_member (o, "schema"), &schema) ||
      schema != RECORD_SCHEMA ||
      !read_process (json_object_get_member (o, "process"), &record->process))
    {
      uvm_set_error (error, UVM_ERROR_PROTOCOL, "state record '%s' is not a libuvm state "
                     "record of schema %d", path, RECORD_SCHEMA);
      return NULL;
    }
  record->name = g_strdup (uvm_json_node_get_string (json_object_get_member (o, "name")));
  record->hypervisor = g_strdup (uvm_json_node_get_string (json_object_get_member (o, "hypervisor")));
  record->detached = g_strcmp0 (uvm_json_node_get_string (json_object_get_member (o, "lifetime")),
                                "detached") == 0;
  record->ready = json_object_get_boolean_member_with_default (o, "ready", FALSE);
  record->control_path = g_strdup (uvm_json_node_get_string (json_object_get_member (o, "control-socket")));
  record->console_path = g_strdup (uvm_json_node_get_string (json_object_get_member (o, "console")));
  record->log_path = g_strdup (uvm_json_node_get_string (json_object_get_member (o, "log")));
  record->user_lease = g_strdup (uvm_json_node_get_string (json_object_get_member (o, "user-lease")));
  if (!uvm_json_node_get_int (json_object_get_member (o, "console-log-start"),
                              &record->console_log_start) || record->console_log_start < 0)
    record->console_log_start = 0;
  helpers = json_object_get_member (o, "helpers");
  if (helpers != NULL && JSON_NODE_HOLDS_ARRAY (helpers))
    {
      JsonArray *a = json_node_get_array (helpers);

      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          UvmRecordProcess p = { 0 };

          if (read_process (json_array_get_element (a, i), &p))
            g_array_append_val (record->helpers, p);
        }
    }
  def = json_object_get_member (o, "definition");
  if (def != NULL && JSON_NODE_HOLDS_OBJECT (def))
    record->definition = json_to_string (def, FALSE);
  def = json_object_get_member (o, "files");
  if (def != NULL && JSON_NODE_HOLDS_ARRAY (def))
    {
      JsonArray *a = json_node_get_array (def);
      GStrvBuilder *files = g_strv_builder_new ();

      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          const char *name = uvm_json_node_get_string (json_array_get_element (a, i));

          /* Names in the directory or absolute paths it gave; never "..". */
          if (name != NULL && strstr (name, "..") == NULL)
            g_strv_builder_add (files, name);
        }
      record->files = g_strv_builder_end (files);
      g_strv_builder_unref (files);
    }
  def = json_object_get_member (o, "attach-requests");
  if (def != NULL && JSON_NODE_HOLDS_ARRAY (def))
    record->attach_requests = json_to_string (def, FALSE);
  if (record->name == NULL || record->hypervisor == NULL || record->control_path == NULL)
    {
      uvm_set_error (error, UVM_ERROR_PROTOCOL, "state record '%s' lacks its name, hypervisor "
                     "or control socket", path);
      return NULL;
    }
  return g_steal_pointer (&record);
}

void
uvm_record_remove (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, UVM_RECORD_NAME, NULL);

  g_unlink (path);
}
