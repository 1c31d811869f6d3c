/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <uvm/uvm-types.h>

G_BEGIN_DECLS

/**
 * UvmNetworkKind:
 * @UVM_NETWORK_ISOLATED: a VM-to-VM segment on which the host has no
 *   address. Exactly two qemu VMs are linked point to point by a
 *   `socketpair(AF_UNIX, SOCK_DGRAM)` that never touches the host's network
 *   stack. With more than two members, or a cloud-hypervisor member (since
 *   0.2), the library creates a bridge (no IPv4, IPv6 address generation
 *   off) and one non-persistent tap per member NIC, enslaved to it; the
 *   ports of workstations (VMs with uvm_vm_set_gateway()) are isolated from
 *   each other. This needs CAP_NET_ADMIN (%UVM_ERROR_PERMISSION otherwise).
 *   The launch plan says which of the two a network is.
 * @UVM_NETWORK_UPLINK: NAT to the outside for one VM (a gateway). How is
 *   chosen with uvm_network_set_uplink_mode(): qemu's user-mode
 *   networking, a passt helper process, or a library-made tap with NAT on
 *   the host.
 * @UVM_NETWORK_TAP: an existing tap interface of the host, by name; the
 *   library opens it (`/dev/net/tun`, IFF_TAP, IFF_NO_PI, IFF_VNET_HDR) and
 *   hands the fd to the hypervisor. Since 0.2.
 * @UVM_NETWORK_BRIDGE: an existing bridge of the host, by name: the library
 *   creates one non-persistent tap per member NIC and enslaves it to that
 *   bridge (CAP_NET_ADMIN). The bridge itself is the host's and is never
 *   changed or deleted. Since 0.2.
 *
 * What a #UvmNetwork is.
 */
typedef enum {
  UVM_NETWORK_ISOLATED = 0,
  UVM_NETWORK_UPLINK = 1,
  UVM_NETWORK_TAP = 2,
  UVM_NETWORK_BRIDGE = 3,
} UvmNetworkKind;

/**
 * UvmUplinkMode:
 * @UVM_UPLINK_AUTO: qemu: %UVM_UPLINK_USER; cloud-hypervisor:
 *   %UVM_UPLINK_TAP_NAT (it has no user-mode networking).
 * @UVM_UPLINK_USER: qemu's user-mode networking (slirp) inside the qemu
 *   process; guest 10.0.2.15/24, gateway 10.0.2.2. qemu only.
 * @UVM_UPLINK_PASST: a `passt` process the library starts before qemu and
 *   connects to it with a stream socket pair (`passt --fd`, qemu's
 *   `-netdev stream`); the guest is told 10.0.2.15/24 via 10.0.2.2 and
 *   passt runs with `--no-map-gw`, so the gateway address does not reach
 *   the host. IPv4 only; no inbound ports are forwarded. passt must be
 *   found in PATH at validation and start (%UVM_ERROR_INVALID_DEFINITION
 *   otherwise, naming it and the network). It logs to `passt-ID.log` (ID:
 *   the device's id) in the runtime directory, is not confined (a confined
 *   VM may use this mode: qemu holds only its end of the pair), and is
 *   killed and reaped when the hypervisor exits, before the exit is
 *   reported. Should passt exit while the VM runs, the VM keeps running
 *   without its uplink and emits a %UVM_EVENT_HYPERVISOR_EVENT named
 *   "uplink-helper-exited" whose data holds "helper", "network", "device",
 *   "exit-code" and "exit-signal". qemu only.
 * @UVM_UPLINK_TAP_NAT: a tap the library creates for the VM, with
 *   10.0.2.2/24 on the host side, IPv4 forwarding enabled on that tap only
 *   and an nftables table (named "uvm_" plus the tap name) that masquerades
 *   10.0.2.0/24; the guest uses 10.0.2.15/24 via 10.0.2.2. Needs
 *   CAP_NET_ADMIN (%UVM_ERROR_PERMISSION otherwise). Forwarding of the
 *   replies on the host's outside interface (net.ipv4.ip_forward) is the
 *   host's policy: the library never changes it, and without it the guest
 *   reaches the host's 10.0.2.2 only. The tap, its address and the table
 *   are removed when the VM's hypervisor exits. Only one VM on a host (or
 *   network namespace) can use this mode at a time.
 *
 * How an %UVM_NETWORK_UPLINK reaches the outside. Since 0.2.
 */
typedef enum {
  UVM_UPLINK_AUTO = 0,
  UVM_UPLINK_USER = 1,
  UVM_UPLINK_PASST = 2,
  UVM_UPLINK_TAP_NAT = 3,
} UvmUplinkMode;

#define UVM_TYPE_NETWORK (uvm_network_get_type ())
UVM_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (UvmNetwork, uvm_network, UVM, NETWORK, GObject)

/**
 * uvm_network_new_isolated:
 * @name: a name for the segment; it feeds the derived MAC addresses, so two
 *   segments should not share one
 *
 * Creates an isolated VM-to-VM segment. Several #UvmVm objects join it by
 * holding net devices created with uvm_device_new_net() on it. Between two
 * qemu VMs, the host side of the link (a socket pair) is created when the
 * first member starts and held by this object until it is finalized, so
 * either member may restart. Otherwise (see %UVM_NETWORK_ISOLATED) the
 * bridge, named "uvb" plus a hash of @name, is created when the first
 * member starts and deleted when the last member's hypervisor has exited
 * (also after a SIGKILL); each member's tap, named "uvt" plus a hash of the
 * VM and network names, vanishes with its hypervisor. Which of the two is
 * decided by the membership, so add every member before the first start.
 *
 * Returns: (transfer full): a new #UvmNetwork.
 */
UVM_AVAILABLE_IN_0_1
UvmNetwork *uvm_network_new_isolated (const char *name);

/**
 * uvm_network_new_uplink:
 * @name: a name for the uplink
 *
 * Creates an uplink: NAT from the guest to the outside world through the
 * hypervisor's user-mode network stack (qemu). The guest sees the usual
 * slirp addresses: 10.0.2.15/24 via 10.0.2.2.
 *
 * Returns: (transfer full): a new #UvmNetwork.
 */
UVM_AVAILABLE_IN_0_1
UvmNetwork *uvm_network_new_uplink (const char *name);

/**
 * uvm_network_new_tap:
 * @name: a name for the network
 * @tap_name: the name of an existing tap interface (at most 15 bytes)
 *
 * Uses a tap the caller created (e.g. `ip tuntap add dev NAME mode tap`,
 * owned by the user running the VM, or with CAP_NET_ADMIN). Validation
 * checks that it exists; opening it needs ownership of the tap or
 * CAP_NET_ADMIN (%UVM_ERROR_PERMISSION otherwise). One VM uses it at a
 * time.
 *
 * Returns: (transfer full): a new #UvmNetwork.
 */
UVM_AVAILABLE_IN_0_2
UvmNetwork *uvm_network_new_tap (const char *name, const char *tap_name);

/**
 * uvm_network_get_tap_name:
 * @network: a #UvmNetwork
 *
 * Returns: (transfer none) (nullable): the tap interface of a
 *   %UVM_NETWORK_TAP network, else %NULL.
 */
UVM_AVAILABLE_IN_0_2
const char *uvm_network_get_tap_name (UvmNetwork *network);

/**
 * uvm_network_new_bridge:
 * @name: a name for the network; it feeds the derived MAC addresses and
 *   tap names
 * @host_bridge: the name of an existing bridge of the host (1-15 bytes)
 *
 * Creates a network whose members are attached to @host_bridge, an
 * existing Linux bridge, through taps the library creates when each
 * member starts (named "uvt" plus a hash of the VM and network names
 * unless set with uvm_device_set_tap_name()) and which vanish when that
 * member's hypervisor exits. That the bridge exists is checked when a
 * member starts. Since 0.2.
 *
 * Returns: (transfer full): a new #UvmNetwork.
 */
UVM_AVAILABLE_IN_0_2
UvmNetwork *uvm_network_new_bridge (const char *name, const char *host_bridge);

/**
 * uvm_network_get_host_bridge:
 * @network: a #UvmNetwork
 *
 * Gets the host bridge of a %UVM_NETWORK_BRIDGE network. Since 0.2.
 *
 * Returns: (nullable): the bridge name, or %NULL for other kinds.
 */
UVM_AVAILABLE_IN_0_2
const char *uvm_network_get_host_bridge (UvmNetwork *network);

/**
 * uvm_network_set_uplink_mode:
 * @network: a %UVM_NETWORK_UPLINK #UvmNetwork
 * @mode: how the uplink reaches the outside
 *
 * Chooses how an uplink is built. A mode the VM's hypervisor cannot use is
 * refused when the VM is validated or started (%UVM_ERROR_UNSUPPORTED),
 * before anything is created. Ignored for other kinds. Since 0.2.
 */
UVM_AVAILABLE_IN_0_2
void uvm_network_set_uplink_mode (UvmNetwork *network, UvmUplinkMode mode);

/**
 * uvm_network_get_uplink_mode:
 * @network: a #UvmNetwork
 *
 * Gets the mode set with uvm_network_set_uplink_mode(). Since 0.2.
 *
 * Returns: the uplink mode (%UVM_UPLINK_AUTO unless set).
 */
UVM_AVAILABLE_IN_0_2
UvmUplinkMode uvm_network_get_uplink_mode (UvmNetwork *network);

/**
 * uvm_network_get_name:
 * @network: a #UvmNetwork
 *
 * Returns: (transfer none): the name given at creation.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_network_get_name (UvmNetwork *network);

/**
 * uvm_network_get_kind:
 * @network: a #UvmNetwork
 *
 * Returns: what kind of network this is.
 */
UVM_AVAILABLE_IN_0_1
UvmNetworkKind uvm_network_get_kind (UvmNetwork *network);

G_END_DECLS
