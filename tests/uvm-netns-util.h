/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private network namespaces for the suites that make links and taps
 * (test-netlink, test-bridge, test-leak, test-hostnet, test-passt).  GLib only, so that it links with either the
 * internal or the shared library. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* New network and mount namespaces for this process, with a sysfs of the
 * new network namespace on /sys.  With @allow_userns, a user namespace too
 * when we are not privileged enough for the first two. */
gboolean test_netns_enter (gboolean allow_userns, GError **error);

/* Why a child cannot make its namespaces (test_netns_enter (@allow_userns))
 * or open /dev/net/tun, or NULL when it can: asked once, in a throwaway
 * child, so that the test process itself never changes namespace.  The
 * child's answer comes through a pipe ("ok" or the reason), not its exit
 * status, which a tool such as valgrind may change. */
char *test_netns_probe (gboolean allow_userns);

/* A test whose body runs in a g_test_trap_subprocess() child that entered
 * a private network (and mount) namespace first, with real privilege (no
 * user namespace), and gets a new temporary directory (removed after).
 * The parent skips it, with the reason, when such namespaces cannot be
 * made here, or when @skip returns TRUE for @data (it calls g_test_skip()
 * itself). */
typedef void (*TestNetnsBody) (gconstpointer data, const char *dir);
typedef gboolean (*TestNetnsSkip) (gconstpointer data);
void test_netns_add (const char *path, gconstpointer data, TestNetnsBody body,
                     TestNetnsSkip skip);

/* Whether interface @name exists in this namespace. */
gboolean test_link_exists (const char *name);
/* Whether interface @name exists and is a bridge. */
gboolean test_is_bridge (const char *name);
/* The interfaces of this namespace other than lo, sorted, comma-separated
 * ("" when there are none). */
char *test_links_but_lo (void);
/* Whether @link has an IPv4 address. */
gboolean test_has_ipv4 (const char *link);
/* The IPv6 addresses of @link (tentative ones included), as text, from
 * /proc/net/if_inet6 (which must be readable). */
GPtrArray *test_ipv6_addresses (const char *link);
/* Whether @link has an IPv6 address (test_ipv6_addresses()). */
gboolean test_has_ipv6 (const char *link);
/* Drops CAP_NET_ADMIN from every capability set of this (root) process;
 * it keeps the others, so a refusal can only come from that one. */
void test_drop_cap_net_admin (void);
/* A child process in a network namespace of its own, which lives as long
 * as the child: for a second namespace ("outside") that `ip link ... netns
 * PID` and `nsenter -t PID -n` can reach.  The child dies with this
 * process (PR_SET_PDEATHSIG), so nothing outlives a failed test.  Stop it
 * with test_netns_peer_stop(). */
GPid test_netns_peer_start (void);
void test_netns_peer_stop (GPid pid);
/* test_netns_peer_start() joined to this namespace by a veth, for a test
 * that reaches "outside": @inside_link here with TEST_INSIDE_ADDRESS/24
 * and the default route via TEST_OUTSIDE_ADDRESS, @outside_link there
 * with TEST_OUTSIDE_ADDRESS/24; lo up on both sides.  Stop it with
 * test_netns_peer_stop(). */
#define TEST_OUTSIDE_ADDRESS "198.51.100.1"
#define TEST_INSIDE_ADDRESS "198.51.100.2"
GPid test_netns_outside_start (const char *inside_link, const char *outside_link);
/* Runs @command_line (g_shell_parse_argv() syntax), asserting it exits 0;
 * for setting up a test namespace with iproute2. */
void test_run_ok (const char *command_line);

G_END_DECLS
