/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host side of tap+NAT uplinks (UVM_UPLINK_TAP_NAT): one nftables
 * table per uplink tap, through libnftables.  Private to libuvm.
 *
 * Each call runs one nftables batch in the network namespace of the
 * calling thread; the kernel applies a batch whole or not at all, so a
 * failure leaves no half-made table.  Errors (UVM_ERROR domain):
 * UVM_ERROR_PERMISSION when the kernel refuses for want of CAP_NET_ADMIN
 * (the message says so), UVM_ERROR_FAILED with nftables' own text
 * otherwise. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Creates (or, when a table of that name is left from a process that was
 * killed, empties and refills) table "ip @table" with one postrouting NAT
 * chain that masquerades packets from @subnet ("10.0.2.0/24") that came in
 * on @tap and leave through another interface. */
gboolean uvm_nft_add_masquerade (const char *table, const char *tap, const char *subnet,
                                 GError **error);

/* Deletes table "ip @table"; a table that does not exist is success. */
gboolean uvm_nft_delete_table (const char *table, GError **error);

/* Whether table "ip @table" exists. */
gboolean uvm_nft_table_exists (const char *table);

G_END_DECLS
