/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whonix's own addressing, for the guests' configuration: application
 * constants of the Whonix-style pair (examples/uvm-whonix-pair.c,
 * tests/test-pair.c; examples/uvm-whonix-pair.py has the same), not libuvm
 * API: the library does not configure guests. */
#pragma once

/**
 * WHONIX_GATEWAY_INTERNAL:
 *
 * The Whonix gateway's address on the internal (isolated) network, as
 * ADDR/PREFIX, for the guests' configuration (libuvm does not configure
 * guests). There is no DHCP on the internal side: both guests set their
 * addresses statically. The gateway is a proxy (Tor), not a router: it must
 * not forward between its two interfaces.
 */
#define WHONIX_GATEWAY_INTERNAL "10.152.152.10/18"

/**
 * WHONIX_WORKSTATION_INTERNAL:
 *
 * The Whonix workstation's address on the internal network, as
 * ADDR/PREFIX, for the workstation's configuration; its default route and
 * DNS point at the gateway (%WHONIX_GATEWAY_INTERNAL without the
 * prefix). Static: no DHCP on the internal side.
 */
#define WHONIX_WORKSTATION_INTERNAL "10.152.152.11/18"

/**
 * WHONIX_GATEWAY_EXTERNAL:
 *
 * The Whonix gateway's address on its uplink, as ADDR/PREFIX, for the
 * gateway's configuration: the address qemu user-mode networking hands out
 * by default, with %WHONIX_UPLINK_GATEWAY as its default route.
 */
#define WHONIX_GATEWAY_EXTERNAL "10.0.2.15/24"

/**
 * WHONIX_UPLINK_GATEWAY:
 *
 * The next hop of the Whonix gateway's uplink (qemu user-mode networking's
 * default router), for the gateway's configuration. The workstation must
 * never reach it.
 */
#define WHONIX_UPLINK_GATEWAY "10.0.2.2"
