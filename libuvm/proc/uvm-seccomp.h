/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The seccomp filter of a confined hypervisor, built with libseccomp in the
 * parent and kept as plain BPF for the child to load (uvm-spawn.c): the
 * child between fork and exec may not call into libseccomp. */
#pragma once

#include <glib.h>
#include <linux/filter.h>

G_BEGIN_DECLS

/* The socket families a confined hypervisor cannot create, as the launch
 * plan and the documentation name them. */
#define UVM_SECCOMP_DENIED_FAMILIES "AF_INET, AF_INET6, AF_PACKET, AF_NETLINK"

/* A BPF program ready for prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog). */
typedef struct sock_fprog UvmSeccompProgram;

/* Builds the confinement filter: a denylist (default: allow) under which
 * socket() of a family in UVM_SECCOMP_DENIED_FAMILIES fails with EACCES,
 * for every syscall ABI the kernel runs for a native process (x86-64:
 * also i386, where socketcall (SYS_SOCKET) hides the family behind a
 * pointer and is therefore denied for every family, and x32).  It stacks
 * with the hypervisor's own allowlist (qemu -sandbox, cloud-hypervisor's
 * filters) and leaves io_uring alone.
 *
 * Returns a new program (free with uvm_seccomp_program_free()), or NULL
 * with UVM_ERROR_FAILED. */
UvmSeccompProgram *uvm_seccomp_build_confinement (GError **error);

void uvm_seccomp_program_free (UvmSeccompProgram *program);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmSeccompProgram, uvm_seccomp_program_free)

G_END_DECLS
