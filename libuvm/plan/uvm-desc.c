/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "plan/uvm-desc.h"

static void
desc_device_free (gpointer data)
{
  UvmDescDevice *dev = data;

  g_free (dev->id);
  g_free (dev->field);
  g_free (dev->mac);
  g_free (dev->network);
  g_free (dev->tap);
  g_free (dev->tap_what);
  g_free (dev->path);
  g_clear_object (&dev->object);
  g_free (dev);
}

UvmDesc *
uvm_desc_new (void)
{
  UvmDesc *desc = g_new0 (UvmDesc, 1);

  g_atomic_ref_count_init (&desc->ref);
  desc->devices = g_ptr_array_new_with_free_func (desc_device_free);
  return desc;
}

UvmDesc *
uvm_desc_ref (UvmDesc *desc)
{
  g_atomic_ref_count_inc (&desc->ref);
  return desc;
}

void
uvm_desc_unref (UvmDesc *desc)
{
  if (desc == NULL || !g_atomic_ref_count_dec (&desc->ref))
    return;
  g_free (desc->name);
  g_free (desc->kernel);
  g_free (desc->initramfs);
  g_free (desc->cmdline);
  g_ptr_array_unref (desc->devices);
  g_strfreev (desc->extra_args);
  g_free (desc->binary);
  g_free (desc->runtime_dir);
  g_free (desc->control_path);
  g_free (desc->log_path);
  g_free (desc->console_path);
  g_free (desc->console_socket_path);
  g_free (desc);
}

UvmDescDevice *
uvm_desc_add_device (UvmDesc *desc, UvmDeviceKind kind, const char *id, const char *field,
                     UvmDevice *object)
{
  UvmDescDevice *dev = g_new0 (UvmDescDevice, 1);

  dev->kind = kind;
  dev->id = g_strdup (id);
  dev->field = g_strdup (field);
  dev->object = object ? g_object_ref (object) : NULL;
  g_ptr_array_add (desc->devices, dev);
  return dev;
}

guint
uvm_desc_get_n_devices (const UvmDesc *desc)
{
  return desc->devices->len;
}

const UvmDescDevice *
uvm_desc_get_device (const UvmDesc *desc, guint index)
{
  g_return_val_if_fail (index < desc->devices->len, NULL);
  return g_ptr_array_index (desc->devices, index);
}

const UvmDescDevice *
uvm_desc_find_kind (const UvmDesc *desc, UvmDeviceKind kind)
{
  for (guint i = 0; i < desc->devices->len; i++)
    if (((UvmDescDevice *) g_ptr_array_index (desc->devices, i))->kind == kind)
      return g_ptr_array_index (desc->devices, i);
  return NULL;
}
