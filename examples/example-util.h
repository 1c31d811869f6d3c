/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the C examples share. */
#pragma once

#include <uvm/uvm.h>

/* The names uvm_hypervisor_from_string() takes ("qemu, cloud-hypervisor"),
 * from the library: every value of the enum's GType it has a name for. */
static inline char *
hypervisor_names (void)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (UVM_TYPE_HYPERVISOR);
  GString *names = g_string_new (NULL);

  for (guint i = 0; i < klass->n_values; i++)
    {
      const char *name = uvm_hypervisor_to_string ((UvmHypervisor) klass->values[i].value);

      if (name != NULL)
        g_string_append_printf (names, "%s%s", names->len > 0 ? ", " : "", name);
    }
  return g_string_free (names, FALSE);
}

