/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What libuvm knows about the hypervisors themselves: their names and what
 * each can do, answered from the library's backend table. */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <uvm/uvm-types.h>

G_BEGIN_DECLS

/**
 * uvm_hypervisor_supports:
 * @hypervisor: a #UvmHypervisor
 * @feature: a #UvmFeature
 *
 * Asks a backend what it can do, before building a definition: the same
 * table validation uses. Pure; does not look for the executable.
 * Since 0.2.
 *
 * Returns: %TRUE when @hypervisor supports @feature; %FALSE for unknown
 *   hypervisors or features.
 */
UVM_AVAILABLE_IN_0_2
gboolean uvm_hypervisor_supports (UvmHypervisor hypervisor, UvmFeature feature);

/**
 * uvm_hypervisor_to_string:
 * @hypervisor: a #UvmHypervisor
 *
 * The name of a hypervisor as the library's backend for it calls it:
 * "qemu" or "cloud-hypervisor". uvm_hypervisor_from_string() takes the same
 * names. Pure; callable from any thread. Since 0.3.
 *
 * Returns: (transfer none) (nullable): a static string, or %NULL when this
 *   build of libuvm has no backend for @hypervisor.
 */
UVM_AVAILABLE_IN_0_3
const char *uvm_hypervisor_to_string (UvmHypervisor hypervisor);

/**
 * uvm_hypervisor_from_string:
 * @name: a hypervisor name, as uvm_hypervisor_to_string() returns it
 *   (compared exactly: case matters)
 * @out: (out) (optional): where to store the hypervisor, or %NULL to only
 *   check the name
 *
 * Parses a hypervisor name, e.g. from a command line or a configuration
 * file. Every value of #UvmHypervisor that this build has a backend for
 * has a name. Pure; callable from any thread. Since 0.3.
 *
 * Returns: %TRUE and @out set when @name is a known hypervisor; %FALSE,
 *   with @out left alone, otherwise (also for a %NULL @name).
 */
UVM_AVAILABLE_IN_0_3
gboolean uvm_hypervisor_from_string (const char *name, UvmHypervisor *out);

G_END_DECLS
