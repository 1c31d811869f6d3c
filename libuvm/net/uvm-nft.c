/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nftables tables for tap+NAT uplinks.  See uvm-nft.h for the contract.
 *
 * libnftables takes commands as text, the same language as nft(8), and
 * sends them to the kernel as one netlink batch; the text is built only
 * from names the library derived itself ("uvm_" + an interface name) and
 * the fixed subnet, never from user input that could carry nft syntax. */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "uvm"
#endif

#include "net/uvm-nft.h"
#include "util/uvm-util.h"

#include <uvm/uvm-error.h>

#include <nftables/libnftables.h>
#include <string.h>

/* Interface and table names the library makes are [A-Za-z0-9_-] only, so
 * they can go into the command text unquoted. */
static gboolean
is_plain_name (const char *name)
{
  if (name == NULL || *name == '\0' || strlen (name) > 64)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

/* Runs @cmd; on failure sets @error from nftables' error text. */
static gboolean
run (const char *cmd, const char *what, GError **error)
{
  struct nft_ctx *nft = nft_ctx_new (NFT_CTX_DEFAULT);
  g_autofree char *text = NULL;
  gboolean ok;

  if (nft == NULL)
    return uvm_set_error (error, UVM_ERROR_FAILED, "%s: cannot create an nftables context", what);
  nft_ctx_buffer_output (nft);
  nft_ctx_buffer_error (nft);
  ok = nft_run_cmd_from_buffer (nft, cmd) == 0;
  if (!ok)
    text = g_strstrip (g_strdup (nft_ctx_get_error_buffer (nft)));
  nft_ctx_free (nft);
  if (ok)
    return TRUE;
  if (text != NULL && strstr (text, "Operation not permitted") != NULL)
    return uvm_set_error (error, UVM_ERROR_PERMISSION,
                          "%s needs CAP_NET_ADMIN (nftables: Operation not permitted)", what);
  return uvm_set_error (error, UVM_ERROR_FAILED, "%s: nftables: %s", what,
                        text != NULL && *text != '\0' ? text : "failed");
}

gboolean
uvm_nft_add_masquerade (const char *table, const char *tap, const char *subnet, GError **error)
{
  g_autofree char *cmd = NULL;
  g_autofree char *what = NULL;

  g_return_val_if_fail (is_plain_name (table) && is_plain_name (tap), FALSE);
  g_return_val_if_fail (subnet != NULL && strspn (subnet, "0123456789./") == strlen (subnet), FALSE);

  what = g_strdup_printf ("masquerading %s from tap '%s' (nftables table 'ip %s')", subnet, tap,
                          table);
  /* "add table" is a no-op on an existing table and "flush table" empties
   * it, so a table left by a killed process is reused, not duplicated. */
  cmd = g_strdup_printf ("add table ip %1$s\n"
                         "flush table ip %1$s\n"
                         "add chain ip %1$s postrouting "
                         "{ type nat hook postrouting priority srcnat; policy accept; }\n"
                         "add rule ip %1$s postrouting iifname \"%2$s\" oifname != \"%2$s\" "
                         "ip saddr %3$s masquerade\n",
                         table, tap, subnet);
  return run (cmd, what, error);
}

gboolean
uvm_nft_table_exists (const char *table)
{
  g_autofree char *cmd = NULL;
  struct nft_ctx *nft;
  gboolean ok;

  if (!is_plain_name (table))
    return FALSE;
  nft = nft_ctx_new (NFT_CTX_DEFAULT);
  if (nft == NULL)
    return FALSE;
  nft_ctx_buffer_output (nft);
  nft_ctx_buffer_error (nft);
  cmd = g_strdup_printf ("list table ip %s", table);
  ok = nft_run_cmd_from_buffer (nft, cmd) == 0;
  nft_ctx_free (nft);
  return ok;
}

gboolean
uvm_nft_delete_table (const char *table, GError **error)
{
  g_autofree char *cmd = NULL;
  g_autofree char *what = NULL;

  g_return_val_if_fail (is_plain_name (table), FALSE);
  if (!uvm_nft_table_exists (table))
    return TRUE;
  what = g_strdup_printf ("deleting nftables table 'ip %s'", table);
  cmd = g_strdup_printf ("delete table ip %s\n", table);
  return run (cmd, what, error);
}
