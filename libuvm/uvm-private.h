/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal API shared by the public objects, the backends and the tests. */
#pragma once

#include <uvm/uvm.h>
#include <json-glib/json-glib.h>
#include "uvm-event-private.h"

G_BEGIN_DECLS

/* uvm-device.c */
/* Called by uvm_vm_add_device(): claims the device for one VM, fills in the
 * id and a derived MAC.  FALSE when another VM owns it already. */
gboolean    uvm_device_claim (UvmDevice *device, const char *vm_name, UvmHypervisor hypervisor,
                              const char *default_id);
gboolean    uvm_device_is_claimed (UvmDevice *device);
char       *uvm_derive_mac (const char *vm_name, const char *network_name);
gboolean    uvm_mac_is_valid (const char *mac);

/* uvm-network.c.  A network knows its member NICs only by an opaque key
 * (@device: the device object, never dereferenced) and the hypervisor of
 * their VM; it calls nothing of uvm-device.c. */
void     uvm_network_add_member    (UvmNetwork *network, gconstpointer device,
                                    UvmHypervisor hypervisor);
void     uvm_network_remove_member (UvmNetwork *network, gconstpointer device);
guint    uvm_network_get_n_members (UvmNetwork *network);
/* A new close-on-exec fd for @device's end of an isolated link (the caller
 * owns it); creates the link on first use. */
int      uvm_network_open_link_fd  (UvmNetwork *network, gconstpointer device, GError **error);
/* Validation of what the network itself needs (a tap that exists). */
gboolean uvm_network_check         (UvmNetwork *network, const char *field, GError **error);
/* The same plus what the NIC itself sets: its tap name override @tap
 * (may be NULL). */
gboolean uvm_network_check_device  (UvmNetwork *network, const char *tap, const char *field,
                                    GError **error);
/* A new close-on-exec fd attached to the tap of a TAP network. */
int      uvm_network_open_tap_fd   (UvmNetwork *network, GError **error);
/* Whether an isolated network is built as a library-created bridge with a
 * tap per member NIC rather than a socket pair: when it has more than two
 * members or a member whose hypervisor has no socket-pair links
 * (UVM_FEATURE_SOCKET_LINK).  Deterministic: it depends only on the
 * membership. */
gboolean uvm_network_uses_bridge   (UvmNetwork *network);
/* Derived names: "uvb" + hash of the network name; "uvt" + hash of the VM
 * and network names.  Free with g_free(). */
char    *uvm_network_bridge_name   (UvmNetwork *network);
/* The tap the library makes for a member NIC (of a bridged isolated
 * network, a host-bridge network or a tap+NAT uplink): the NIC's override
 * @tap, else "uvt" + hash of the VM and network names. */
char    *uvm_network_member_tap_name (UvmNetwork *network, const char *tap, const char *vm_name);
/* Whether @device's NIC is a tap the library creates (UVM_PLAN_FD_LIB_TAP). */
gboolean uvm_network_uses_lib_tap  (UvmNetwork *network, UvmHypervisor hypervisor);
/* The nftables table of a tap+NAT uplink ("uvm_" + tap name). */
char    *uvm_network_nat_table_name (const char *tap);
#define UVM_TAP_NAT_HOST "10.0.2.2"
#define UVM_TAP_NAT_HOST_CIDR UVM_TAP_NAT_HOST "/24"
#define UVM_TAP_NAT_SUBNET "10.0.2.0/24"
/* The tap @tap the library makes for @device (UVM_PLAN_FD_LIB_TAP), by
 * kind: isolated (the network's bridge, made by its first user), host
 * bridge, or tap+NAT uplink (host address, forwarding, NAT table).  A
 * non-persistent tap, an isolated bridge port for a @workstation; returns
 * its queue fd (the caller owns it), or -1. */
int      uvm_network_open_lib_tap  (UvmNetwork *network, gconstpointer device, const char *tap,
                                    gboolean workstation, GError **error);
/* @device's hypervisor is gone (its tap with it): the NAT table of an
 * uplink goes; the bridge of an isolated network goes with its last user.
 * A no-op for a device that holds no tap. */
void     uvm_network_release_lib_tap (UvmNetwork *network, gconstpointer device);

/* The uplink mode a VM of @hypervisor gets: the one set, or AUTO resolved
 * by the backend's default_uplink.  AUTO for non-uplinks. */
UvmUplinkMode uvm_network_effective_uplink_mode (UvmNetwork *network, UvmHypervisor hypervisor);


G_END_DECLS

G_BEGIN_DECLS
/* uvm-storage.c */
gboolean uvm_storage_check   (UvmStorage *storage, const char *field, GError **error);
/* Creates the image when asked and missing; a new image is given to
 * @owner/@group (the VM user) unless @owner is (uid_t) -1. */
gboolean uvm_storage_prepare (UvmStorage *storage, uid_t owner, gid_t group, GError **error);
G_END_DECLS

