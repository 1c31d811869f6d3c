/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Compiled (never run) by check-version-macros.sh with different
 * UVM_VERSION_MIN_REQUIRED / UVM_VERSION_MAX_ALLOWED: each USE_* uses one
 * kind of API, so the script can tell which declarations warn. */
#include <uvm/uvm.h>

int
main (void)
{
#if defined(USE_0_3_API)
  /* Added in 0.3 (UVM_AVAILABLE_IN_0_3). */
  return uvm_hypervisor_to_string (UVM_HYPERVISOR_QEMU) != NULL ? 0 : 1;
#elif defined(USE_0_2_API)
  /* Added in 0.2 (UVM_AVAILABLE_IN_0_2). */
  return uvm_hypervisor_supports (UVM_HYPERVISOR_QEMU, UVM_FEATURE_BALLOON) ? 0 : 1;
#elif defined(USE_DEPRECATED_API)
  /* Deprecated in 0.3 (UVM_DEPRECATED_IN_0_3_FOR). */
  g_autoptr(UvmVm) vm = uvm_vm_new ("v", UVM_HYPERVISOR_QEMU);
  return uvm_vm_get_cmdline (vm) == NULL ? 0 : 1;
#else
#error "define USE_0_3_API, USE_0_2_API or USE_DEPRECATED_API"
#endif
}
