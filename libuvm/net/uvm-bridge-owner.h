/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ownership of the bridges the library makes, across processes.  Private
 * to libuvm.
 *
 * A library bridge outlives a library process that is SIGKILLed: its taps
 * vanish with the hypervisors' fds (the hypervisors die with
 * PR_SET_PDEATHSIG), the bridge does not.  So that the next start can
 * reclaim it, and only it, every library bridge
 *  - carries the alias (IFLA_IFALIAS) "libuvm isolated network NAME", and
 *  - has a lock file, flock()ed by the process that made it for as long as
 *    that process owns the bridge: DIR/DEV:INODE-BRIDGE.lock, DEV:INODE
 *    naming the network namespace, DIR being /run/uvm/.net for root and
 *    $XDG_RUNTIME_DIR/uvm/.net otherwise (".net" since no VM name starts
 *    with a dot, so no VM's runtime directory is ever this one).
 * The kernel drops the flock when its owner dies, however it dies.  The
 * lock file is removed when the owner deletes the bridge; one left by a
 * killed process is taken over by the next owner.
 *
 * Runs in the calling thread, no main context; process-wide state behind a
 * mutex. */
#pragma once

#include <glib.h>

#include "net/uvm-netlink.h"

G_BEGIN_DECLS

/* Creates bridge @name for the isolated network @network, down, with
 * addrgenmode none (uvm_netlink_create_bridge()) and the alias above, and
 * holds its lock until this process deletes it with
 * uvm_netlink_delete_link().  The caller seals and sets it up.
 *
 * A link of that name that exists already is reclaimed (deleted and made
 * anew) when it is a bridge with the alias of @network and no process
 * holds its lock: its owner was killed.  Otherwise UVM_ERROR_BUSY: with a
 * message saying that another process (or another network of this one)
 * uses it when the lock is held, and that it was not made by libuvm for
 * this network when the alias or kind differ; that link is left alone.
 * UVM_ERROR_PERMISSION without CAP_NET_ADMIN; UVM_ERROR_START_FAILED when
 * the lock directory cannot be made or used. */
gboolean uvm_bridge_owner_create (UvmNetlink *nl, const char *name, const char *network,
                                  GError **error);

/* Deletes bridge @name (uvm_netlink_delete_link()) and releases the lock
 * this process holds on it, if any, removing the lock file.  The lock goes
 * also when deleting failed: a later start finds the bridge unlocked and
 * with our alias, and reclaims it. */
gboolean uvm_bridge_owner_delete (UvmNetlink *nl, const char *name, GError **error);

/* The alias that marks the bridge of isolated network @network (at most
 * 255 bytes: a longer network name is cut).  Free with g_free(). */
char *uvm_bridge_owner_alias (const char *network);

/* The lock directory (see above).  Free with g_free(). */
char *uvm_bridge_owner_lock_dir (void);

G_END_DECLS
