/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table of backends, indexed by UvmHypervisor. */
#include "backend/uvm-backend.h"
#include "util/uvm-util.h"

/* Room for the built-in backends and a few a test registers. */
#define N_SLOTS 8

static const UvmBackend *table[N_SLOTS] = {
  [UVM_HYPERVISOR_QEMU] = &uvm_backend_qemu,
  [UVM_HYPERVISOR_CLOUD_HYPERVISOR] = &uvm_backend_cloud_hypervisor,
};

const UvmBackend *
uvm_backend_lookup (UvmHypervisor hypervisor, GError **error)
{
  if ((guint) hypervisor < N_SLOTS && table[hypervisor] != NULL)
    return table[hypervisor];
  uvm_set_error (error, UVM_ERROR_INVALID_DEFINITION, "hypervisor: unknown hypervisor %d",
                 (int) hypervisor);
  return NULL;
}

gboolean
uvm_backend_find (const char *name, UvmHypervisor *hypervisor)
{
  for (guint i = 0; name != NULL && i < N_SLOTS; i++)
    if (table[i] != NULL && g_str_equal (table[i]->name, name))
      {
        if (hypervisor != NULL)
          *hypervisor = (UvmHypervisor) i;
        return TRUE;
      }
  return FALSE;
}

void
uvm_backend_register (UvmHypervisor hypervisor, const UvmBackend *backend)
{
  g_return_if_fail ((guint) hypervisor < N_SLOTS);
  g_return_if_fail (table[hypervisor] == NULL || table[hypervisor] == backend);
  table[hypervisor] = backend;
}

gboolean
uvm_backend_supports (const UvmBackend *backend, UvmFeature feature)
{
  return (guint) feature < 64 && (backend->features & UVM_FEATURE_BIT (feature)) != 0;
}

void
uvm_control_reply_free (UvmControlReply *reply)
{
  if (reply == NULL)
    return;
  g_free (reply->body);
  g_free (reply);
}
