/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <uvm/uvm-types.h>

G_BEGIN_DECLS

/**
 * UVM_ERROR:
 *
 * The error domain of libuvm. Cancellation is reported as
 * %G_IO_ERROR_CANCELLED, as elsewhere in GIO.
 */
#define UVM_ERROR (uvm_error_quark ())

/**
 * UvmError:
 * @UVM_ERROR_FAILED: an error that fits no other code (a system call failed).
 * @UVM_ERROR_INVALID_DEFINITION: the VM definition is wrong; the message
 *   names the field. Nothing was started.
 * @UVM_ERROR_UNSUPPORTED: the definition asks for something the chosen
 *   hypervisor or machine type cannot do. Nothing was started.
 * @UVM_ERROR_START_FAILED: the hypervisor could not be executed, or exited or
 *   failed during start; the message quotes its last log lines.
 * @UVM_ERROR_HYPERVISOR_DIED: the hypervisor exited while a request waited.
 * @UVM_ERROR_PROTOCOL: the control socket carried something that is not the
 *   protocol (malformed or oversized message).
 * @UVM_ERROR_HYPERVISOR: the hypervisor answered a request with an error; the
 *   message quotes it.
 * @UVM_ERROR_TIMEOUT: a deadline passed.
 * @UVM_ERROR_BUSY: the VM is running already, another operation is under
 *   way, or its runtime directory is held by another process.
 * @UVM_ERROR_NOT_RUNNING: the operation needs a running hypervisor.
 * @UVM_ERROR_PERMISSION: a privilege is missing; the message says which and
 *   what for.
 * @UVM_ERROR_CONTROL_LOST: the hypervisor still runs, but libuvm lost its
 *   control connection to it (the hypervisor closed it, sent what is not the
 *   protocol, or left a request unanswered past the control timeout; see
 *   uvm_vm_set_control_timeout()). No request can reach it any more: only a
 *   stop, which then goes straight to signals, or uvm_vm_kill(). Since 0.3.
 * @UVM_ERROR_NOT_FOUND: there is no such VM (uvm_vm_attach(): no runtime
 *   directory or no state record for that name). Since 0.3.
 *
 * Error codes in the %UVM_ERROR domain. New codes may be added in later
 * releases; treat unknown codes like %UVM_ERROR_FAILED.
 */
typedef enum {
  UVM_ERROR_FAILED = 0,
  UVM_ERROR_INVALID_DEFINITION = 1,
  UVM_ERROR_UNSUPPORTED = 2,
  UVM_ERROR_START_FAILED = 3,
  UVM_ERROR_HYPERVISOR_DIED = 4,
  UVM_ERROR_PROTOCOL = 5,
  UVM_ERROR_HYPERVISOR = 6,
  UVM_ERROR_TIMEOUT = 7,
  UVM_ERROR_BUSY = 8,
  UVM_ERROR_NOT_RUNNING = 9,
  UVM_ERROR_PERMISSION = 10,
  UVM_ERROR_CONTROL_LOST = 11,
  UVM_ERROR_NOT_FOUND = 12,
} UvmError;

/**
 * uvm_error_quark:
 *
 * Returns: the #GQuark of the %UVM_ERROR domain.
 */
UVM_AVAILABLE_IN_0_1
GQuark uvm_error_quark (void);

G_END_DECLS
