/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public questions about hypervisors (<uvm/uvm-hypervisor.h>), answered
 * from the backend table alone: a new backend gets its name and features
 * here without an edit to this file. */
#include "backend/uvm-backend.h"

#include <string.h>

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
  /* The enum's GType knows every value the headers declare; the backend
   * table says which of them this build can run and what it calls them. */
  g_autoptr(GEnumClass) klass = g_type_class_ref (UVM_TYPE_HYPERVISOR);

  if (name == NULL)
    return FALSE;
  for (guint i = 0; i < klass->n_values; i++)
    {
      UvmHypervisor hypervisor = (UvmHypervisor) klass->values[i].value;
      const char *known = uvm_hypervisor_to_string (hypervisor);

      if (known != NULL && strcmp (known, name) == 0)
        {
          if (out != NULL)
            *out = hypervisor;
          return TRUE;
        }
    }
  return FALSE;
}
