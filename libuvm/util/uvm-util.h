/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers with no state. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* g_set_error in the UVM_ERROR domain; always returns FALSE so a check can
 * read `return uvm_set_error (...)`. */
gboolean uvm_set_error (GError **error, int code, const char *format, ...) G_GNUC_PRINTF (3, 4);

char *uvm_absolute_path (const char *path);

/* Quotes @arg for a POSIX shell only when it needs it. */
char *uvm_shell_quote (const char *arg);

/* Appends @value to @str with qemu's option-value escaping: ',' doubled. */
void uvm_append_qemu_value (GString *str, const char *value);

/* The last @max_lines lines of a file, at most 4 KiB, or NULL. */
char *uvm_read_file_tail (const char *path, guint max_lines);

/* close() that keeps errno and accepts -1; sets *fd to -1. */
void uvm_close_fd (int *fd);

/* Destroys and unrefs *@source when set; sets it to NULL. */
void uvm_source_clear (GSource **source);

/* The string of a JSON string value, or NULL for anything else. */
const char *uvm_json_node_get_string (JsonNode *node);
/* The integer of a JSON integer value into @out; FALSE for anything else. */
gboolean    uvm_json_node_get_int (JsonNode *node, gint64 *out);

G_END_DECLS
