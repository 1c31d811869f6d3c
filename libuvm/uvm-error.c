/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-private.h"

G_DEFINE_QUARK (uvm-error-quark, uvm_error)
