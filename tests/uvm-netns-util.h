/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private network namespaces for the suites that make links and taps
 * (test-netlink, test-bridge).  GLib only, so that it links with either the
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

G_END_DECLS
