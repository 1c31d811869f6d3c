/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(UVM_INSIDE) && !defined(UVM_COMPILATION)
#error "Only <uvm/uvm.h> can be included directly."
#endif

#include <uvm/uvm-types.h>

G_BEGIN_DECLS

/**
 * UvmEventKind:
 * @UVM_EVENT_STATE_CHANGED: the VM's #UvmVmState changed; see
 *   uvm_event_get_state() and uvm_event_get_previous_state().
 * @UVM_EVENT_GUEST_SHUTDOWN: the guest powered itself off (or asked to).
 * @UVM_EVENT_GUEST_RESET: the guest reset itself (with qemu's -no-reboot the
 *   hypervisor then exits).
 * @UVM_EVENT_GUEST_PANIC: the guest reported a panic (needs a panic device
 *   the guest drives, e.g. pvpanic).
 * @UVM_EVENT_HYPERVISOR_EXITED: the hypervisor process exited and was
 *   reaped; see uvm_event_get_exit_code() and uvm_event_get_exit_signal().
 * @UVM_EVENT_DEVICE_DELETED: a device finished unplugging; see
 *   uvm_event_get_device_id().
 * @UVM_EVENT_HYPERVISOR_EVENT: any other event of the hypervisor, passed
 *   through; see uvm_event_get_name() and uvm_event_get_data_json().
 * @UVM_EVENT_CONTROL_LOST: the control connection to a hypervisor that still
 *   runs was lost (closed by the hypervisor, broken by what is not the
 *   protocol, or a request got no answer within the control timeout).
 *   uvm_event_get_name() is "control-lost" and uvm_event_get_data_json() an
 *   object whose "error" member says why. From then on requests fail with
 *   %UVM_ERROR_CONTROL_LOST and a stop uses signals only; see
 *   uvm_vm_get_control_lost(). Since 0.3.
 * @UVM_EVENT_CONSOLE_MATCH: a line of the guest's console matched the
 *   pattern of uvm_vm_wait_for_console_async(). uvm_event_get_name() is
 *   "console-match" and uvm_event_get_data_json() an object with the
 *   "pattern" and the matching "line". Since 0.3.
 *
 * What a #UvmEvent reports. Later releases may add kinds: ignore unknown ones.
 */
typedef enum {
  UVM_EVENT_STATE_CHANGED = 0,
  UVM_EVENT_GUEST_SHUTDOWN = 1,
  UVM_EVENT_GUEST_RESET = 2,
  UVM_EVENT_GUEST_PANIC = 3,
  UVM_EVENT_HYPERVISOR_EXITED = 4,
  UVM_EVENT_DEVICE_DELETED = 5,
  UVM_EVENT_HYPERVISOR_EVENT = 6,
  UVM_EVENT_CONTROL_LOST = 7,
  UVM_EVENT_CONSOLE_MATCH = 8,
} UvmEventKind;

#define UVM_TYPE_EVENT (uvm_event_get_type ())
/**
 * uvm_event_get_type:
 *
 * Returns: the #GType of the boxed #UvmEvent.
 */
UVM_AVAILABLE_IN_0_1
GType uvm_event_get_type (void) G_GNUC_CONST;

/**
 * uvm_event_ref:
 * @event: (nullable): a #UvmEvent
 *
 * Takes a reference. Events are immutable and may be kept after the signal
 * handler that received them returns.
 *
 * Returns: (transfer full) (nullable): @event
 */
UVM_AVAILABLE_IN_0_1
UvmEvent *uvm_event_ref (UvmEvent *event);

/**
 * uvm_event_unref:
 * @event: (nullable): a #UvmEvent
 *
 * Drops a reference; accepts %NULL.
 *
 * Returns: %NULL, so that `ev = uvm_event_unref (ev);` clears a pointer.
 */
UVM_AVAILABLE_IN_0_1
UvmEvent *uvm_event_unref (UvmEvent *event);

/**
 * uvm_event_get_kind:
 * @event: a #UvmEvent
 *
 * Returns: what the event reports.
 */
UVM_AVAILABLE_IN_0_1
UvmEventKind uvm_event_get_kind (const UvmEvent *event);

/**
 * uvm_event_get_state:
 * @event: a #UvmEvent
 *
 * Returns: for %UVM_EVENT_STATE_CHANGED the new state; for other kinds the
 *   VM's state when the event was emitted.
 */
UVM_AVAILABLE_IN_0_1
UvmVmState uvm_event_get_state (const UvmEvent *event);

/**
 * uvm_event_get_previous_state:
 * @event: a #UvmEvent
 *
 * Returns: for %UVM_EVENT_STATE_CHANGED the state before; otherwise the same
 *   as uvm_event_get_state().
 */
UVM_AVAILABLE_IN_0_1
UvmVmState uvm_event_get_previous_state (const UvmEvent *event);

/**
 * uvm_event_get_exit_code:
 * @event: a #UvmEvent
 *
 * Returns: for %UVM_EVENT_HYPERVISOR_EXITED, the exit code when the process
 *   exited normally, else -1.
 */
UVM_AVAILABLE_IN_0_1
int uvm_event_get_exit_code (const UvmEvent *event);

/**
 * uvm_event_get_exit_signal:
 * @event: a #UvmEvent
 *
 * Returns: for %UVM_EVENT_HYPERVISOR_EXITED, the signal that ended the
 *   process, else 0.
 */
UVM_AVAILABLE_IN_0_1
int uvm_event_get_exit_signal (const UvmEvent *event);

/**
 * uvm_event_get_device_id:
 * @event: a #UvmEvent
 *
 * Returns: (transfer none) (nullable): the device concerned, for
 *   %UVM_EVENT_DEVICE_DELETED; else %NULL.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_event_get_device_id (const UvmEvent *event);

/**
 * uvm_event_get_name:
 * @event: a #UvmEvent
 *
 * Returns: (transfer none) (nullable): the hypervisor's own name of the event
 *   behind this one (e.g. qemu's "SHUTDOWN"), or %NULL for events the
 *   library made (state changes, exit).
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_event_get_name (const UvmEvent *event);

/**
 * uvm_event_get_data_json:
 * @event: a #UvmEvent
 *
 * Returns: (transfer none) (nullable): the hypervisor's data for the event as
 *   a JSON text, or %NULL when it had none.
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_event_get_data_json (const UvmEvent *event);

/**
 * uvm_event_get_timestamp:
 * @event: a #UvmEvent
 *
 * Returns: when the event happened, in microseconds of the monotonic clock
 *   (g_get_monotonic_time()) of this process; for hypervisor events, when
 *   the library received it.
 */
UVM_AVAILABLE_IN_0_1
gint64 uvm_event_get_timestamp (const UvmEvent *event);

/**
 * uvm_event_to_string:
 * @event: a #UvmEvent
 *
 * Describes the event in one line for logs, e.g. "state-changed running
 * (was starting)" or "hypervisor-exited signal 9".
 *
 * Returns: (transfer full): a newly allocated string.
 */
UVM_AVAILABLE_IN_0_1
char *uvm_event_to_string (const UvmEvent *event);

/**
 * uvm_event_kind_to_string:
 * @kind: a #UvmEventKind
 *
 * Returns: (transfer none): a static name ("guest-shutdown", ...), or
 *   "unknown".
 */
UVM_AVAILABLE_IN_0_1
const char *uvm_event_kind_to_string (UvmEventKind kind);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmEvent, uvm_event_unref)

G_END_DECLS
