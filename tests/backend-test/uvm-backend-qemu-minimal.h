/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A backend that exists only in the tests: "qemu-minimal", a second,
 * deliberately small way of running qemu-system-x86_64 (its own plan, its
 * own QMP control class), registered through the same table as the
 * built-in backends.  It proves that a backend is one file plus one table
 * entry: nothing in libuvm knows it.  Links against the internal static
 * library (the table and the plan/QMP internals are not exported from
 * libuvm.so). */
#pragma once

#include "backend/uvm-backend.h"

G_BEGIN_DECLS

/* An UvmHypervisor value no built-in backend takes (the table has 8
 * slots). */
#define TEST_HYPERVISOR_QEMU_MINIMAL ((UvmHypervisor) 7)
#define TEST_QEMU_MINIMAL_NAME "qemu-minimal"

extern const UvmBackend test_backend_qemu_minimal;

/* uvm_backend_register (TEST_HYPERVISOR_QEMU_MINIMAL, &test_backend_qemu_minimal);
 * idempotent.  Call before any VM is used (the table is not locked). */
void test_backend_qemu_minimal_register (void);

G_END_DECLS
