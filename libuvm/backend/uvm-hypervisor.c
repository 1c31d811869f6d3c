/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public questions about hypervisors (<uvm/uvm-hypervisor.h>), answered
 * from the backend table alone: a new backend gets its name and features
 * here without an edit to this file. */
#include "backend/uvm-backend.h"


gboolean
uvm_hypervisor_supports (UvmHypervisor hypervisor, UvmFeature feature)
{
  const UvmBackend *backend = uvm_backend_lookup (hypervisor, NULL);

  return backend != NULL && uvm_backend_supports (backend, feature);
}

const char *
uvm_hypervisor_to_string (UvmHypervisor hypervisor)
{
  const UvmBackend *backend = uvm_backend_lookup (hypervisor, NULL);

  return backend != NULL ? backend->name : NULL;
}

gboolean
uvm_hypervisor_from_string (const char *name, UvmHypervisor *out)
{
  /* The table, not the enum: a backend registered at run time (tests) is
   * found by its name too. */
  return uvm_backend_find (name, out);
}
