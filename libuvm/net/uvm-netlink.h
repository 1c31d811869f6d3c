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

/* Seals the host side of library-made bridge @name, which should still be
 * down: nothing on the host answers on the segment, or takes anything in
 * from it, even for addresses the host has on other links.
 *
 * Linux is a weak host: it answers ARP arriving on any link for an address
 * it has on any other, and takes IPv4 in for such addresses from any link.
 * A bridge without addresses is still an IPv4 and IPv6 interface of the
 * host.  So, on @name:
 *  - IFF_NOARP: the host neither sends nor answers ARP on it;
 *  - arp_ignore = 8 (never answer) in case something clears IFF_NOARP;
 *  - rp_filter = 1 (strict): no route leads back over the bridge, so every
 *    IPv4 packet arriving on it, for the host or to be forwarded, is
 *    dropped (unicast in an Ethernet broadcast frame, a guessed MAC);
 *  - disable_ipv6 = 1: no IPv6 at all on it (no NDP, no MLD, no echo
 *    reply to ff02::1), beyond the addrgenmode none it was created with.
 * The first three go in one RTM_SETLINK (IFLA_INET_CONF); effective values
 * of arp_ignore and rp_filter are the larger of the link's and "all", so a
 * later change of "all" cannot lower them.  disable_ipv6 has no netlink
 * setter: it is written to /proc/sys/net/ipv6/conf/@name/disable_ipv6,
 * which shows the namespace of the writing thread, so the call first
 * checks (SIOCGSKNS) that the calling thread is in the socket's namespace
 * (UVM_ERROR_FAILED when not).  A later write of 0 to
 * net.ipv6.conf.all.disable_ipv6 re-enables IPv6 on every link, this one
 * included (addrgenmode none still keeps addresses off it).  A kernel
 * without IPv6 needs nothing.  A read-only /proc/sys is
 * UVM_ERROR_PERMISSION: the seal fails closed.
 *
 * Taps are not sealed: a bridge port hands every frame to the bridge, its
 * own stack never sees one (and taps have addrgenmode none). */
gboolean uvm_netlink_seal_host_side (UvmNetlink *nl, const char *name, GError **error);

/* Sets IPv4 forwarding of packets that arrive on @name (the per-link
 * net.ipv4.conf.NAME.forwarding, through IFLA_INET_CONF like the seal);
 * the host's global forwarding is not touched. */
gboolean uvm_netlink_set_ipv4_forwarding (UvmNetlink *nl, const char *name, gboolean on,
                                          GError **error);

/* Sets the alias (IFLA_IFALIAS, at most 255 bytes) of link @name. */
gboolean uvm_netlink_set_alias (UvmNetlink *nl, const char *name, const char *alias,
                                GError **error);

/* What link @name is: *@kind the IFLA_INFO_KIND ("bridge", "tun", NULL
 * for a link without one), *@alias its alias or NULL; both owned by the
 * caller.  A missing link is UVM_ERROR_FAILED. */
gboolean uvm_netlink_get_link_info (UvmNetlink *nl, const char *name, char **kind,
                                    char **alias, GError **error);

/* The identity of the socket's network namespace ("DEV:INODE" of its nsfs
 * inode), which must also be the calling thread's (UVM_ERROR_FAILED when
 * not: files under /proc/sys/net would show another namespace than the
 * socket acts on).  Needs CAP_NET_ADMIN (SIOCGSKNS). */
char *uvm_netlink_get_netns_id (UvmNetlink *nl, GError **error);

/* Deletes link @name.  A link that does not exist is success.  The
 * ownership lock of a bridge this process made with
 * uvm_bridge_owner_create() (net/uvm-bridge-owner.h) is released, whether
 * the deletion succeeded or not. */
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
