/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-private.h"

const char *
uvm_get_version (void)
{
  return UVM_VERSION_S;
}

gboolean
uvm_check_version (guint major, guint minor, guint micro)
{
  if (major != UVM_MAJOR_VERSION)
    return (int) major < UVM_MAJOR_VERSION;
  if (minor != UVM_MINOR_VERSION)
    return (int) minor < UVM_MINOR_VERSION;
  return (int) micro <= UVM_MICRO_VERSION;
}
