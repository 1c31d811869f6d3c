/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host network plumbing over rtnetlink (libmnl): the bridges and taps the
 * library creates for isolated and uplink networks.  Private to libuvm.
 *
 * One UvmNetlink is one NETLINK_ROUTE socket (O_CLOEXEC, blocking, with a
 * 5 s receive timeout so that a kernel that never answers cannot hang the
 * caller).  Every call is synchronous: it sends one request with NLM_F_ACK
 * and reads until the kernel's acknowledgement; it runs in the calling
 * thread and uses no main context.  A UvmNetlink is not thread-safe.
 *
 * Everything acts on the network namespace of the calling thread at the
 * time uvm_netlink_open() was called (the socket's namespace).
 *
 * Errors (UVM_ERROR domain):
 *  - UVM_ERROR_INVALID_DEFINITION: an interface name that is not 1-15 bytes
 *    or has a character the kernel refuses ('/', ':', '%', white space),
 *    or an address that is not "a.b.c.d/len";
 *  - UVM_ERROR_PERMISSION (EPERM, EACCES): the message names the missing
 *    privilege (CAP_NET_ADMIN) and what it was needed for;
 *  - UVM_ERROR_BUSY (EEXIST): the link (or address) exists already;
 *  - UVM_ERROR_TIMEOUT: the kernel did not answer within 5 s;
 *  - UVM_ERROR_FAILED: anything else, with the operation, strerror and the
 *    kernel's extended-ack text when it gave one. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _UvmNetlink UvmNetlink;

/* Opens the socket.  Needs no privilege (the requests that change
 * something do). */
UvmNetlink *uvm_netlink_open (GError **error);

/* Closes the socket and frees @nl; accepts NULL. */
void uvm_netlink_close (UvmNetlink *nl);

/* Creates bridge @name, down, with no address: IPv6 address generation is
 * off (IFLA_INET6_ADDR_GEN_MODE = NONE) from creation on, so no fe80::
 * address appears when it goes up.  An existing link of that name is
 * UVM_ERROR_BUSY. */
gboolean uvm_netlink_create_bridge (UvmNetlink *nl, const char *name, GError **error);

/* Creates tap @name (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) and returns its
 * queue fd (O_CLOEXEC | O_NONBLOCK), owned by the caller, or -1.  The tap
 * is not persistent: it vanishes when the last fd on it is closed (ours
 * and the hypervisor's copy), which makes cleanup after a SIGKILL
 * automatic.  It is left down, with IPv6 address generation off.  An
 * existing link of that name is UVM_ERROR_BUSY (the tap is never attached
 * to an existing one). */
int uvm_netlink_create_tap (UvmNetlink *nl, const char *name, GError **error);

/* Enslaves @link to bridge @master, or releases it from its master when
 * @master is NULL. */
gboolean uvm_netlink_set_master (UvmNetlink *nl, const char *link, const char *master,
                                 GError **error);

/* Sets or clears bridge port isolation (IFLA_BRPORT_ISOLATED) on @port,
 * which must be enslaved to a bridge already.  An isolated port exchanges
 * frames only with non-isolated ports of the bridge: workstations are
 * isolated from each other, the gateway's port is not isolated. */
gboolean uvm_netlink_set_port_isolated (UvmNetlink *nl, const char *port, gboolean isolated,
                                        GError **error);

/* Sets @name administratively up or down (IFF_UP). */
gboolean uvm_netlink_set_up (UvmNetlink *nl, const char *name, gboolean up, GError **error);

/* Deletes link @name.  A link that does not exist is success. */
gboolean uvm_netlink_delete_link (UvmNetlink *nl, const char *name, GError **error);

/* Adds IPv4 address @cidr ("10.0.2.2/24") to link @name. */
gboolean uvm_netlink_add_address (UvmNetlink *nl, const char *name, const char *cidr,
                                  GError **error);

/* Whether a link named @name exists (FALSE as well for an invalid name or
 * when the kernel cannot be asked). */
gboolean uvm_netlink_link_exists (UvmNetlink *nl, const char *name);

/* A deterministic interface name: @prefix (at most 7 bytes) followed by 8
 * hex digits of a hash of @a and @b, so at most 15 bytes, e.g. "uvt" plus
 * a hash of the VM and network names.  Free with g_free(). */
char *uvm_netlink_derive_name (const char *prefix, const char *a, const char *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmNetlink, uvm_netlink_close)

G_END_DECLS
