/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Making events (uvm-event.c): for the VM and for the backends' control
 * connections, which include this and nothing else of the object layer. */
#pragma once

#include <uvm/uvm.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

UvmEvent *uvm_event_new_state_changed (UvmVmState state, UvmVmState previous);
UvmEvent *uvm_event_new_exited (UvmVmState state, int exit_code, int exit_signal);
/* @data may be NULL; it is serialized now. @device_id may be NULL. */
UvmEvent *uvm_event_new_hypervisor (UvmEventKind kind, UvmVmState state,
                                    const char *name, JsonObject *data,
                                    const char *device_id);
/* Events are filled in by backends without knowing the VM's state; the VM
 * stamps it just before emitting. */
void uvm_event_set_state (UvmEvent *event, UvmVmState state);

G_END_DECLS
