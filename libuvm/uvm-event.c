/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "uvm-private.h"

struct _UvmEvent
{
  gatomicrefcount ref;
  UvmEventKind kind;
  UvmVmState state;
  UvmVmState previous;
  int exit_code;
  int exit_signal;
  char *name;
  char *data_json;
  char *device_id;
  gint64 timestamp;
};

static void
event_boxed_free (UvmEvent *event)
{
  uvm_event_unref (event);
}

G_DEFINE_BOXED_TYPE (UvmEvent, uvm_event, uvm_event_ref, event_boxed_free)

static UvmEvent *
event_new (UvmEventKind kind, UvmVmState state)
{
  UvmEvent *self = g_new0 (UvmEvent, 1);

  g_atomic_ref_count_init (&self->ref);
  self->kind = kind;
  self->state = self->previous = state;
  self->exit_code = -1;
  self->timestamp = g_get_monotonic_time ();
  return self;
}

UvmEvent *
uvm_event_new_state_changed (UvmVmState state, UvmVmState previous)
{
  UvmEvent *self = event_new (UVM_EVENT_STATE_CHANGED, state);

  self->previous = previous;
  return self;
}

UvmEvent *
uvm_event_new_exited (UvmVmState state, int exit_code, int exit_signal)
{
  UvmEvent *self = event_new (UVM_EVENT_HYPERVISOR_EXITED, state);

  self->exit_code = exit_code;
  self->exit_signal = exit_signal;
  return self;
}

UvmEvent *
uvm_event_new_hypervisor (UvmEventKind kind, UvmVmState state, const char *name,
                          JsonObject *data, const char *device_id)
{
  UvmEvent *self = event_new (kind, state);

  self->name = g_strdup (name);
  self->device_id = g_strdup (device_id);
  if (data != NULL)
    {
      g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), data);
      self->data_json = json_to_string (node, FALSE);
    }
  return self;
}

UvmEvent *
uvm_event_ref (UvmEvent *event)
{
  if (event != NULL)
    g_atomic_ref_count_inc (&event->ref);
  return event;
}

UvmEvent *
uvm_event_unref (UvmEvent *event)
{
  if (event != NULL && g_atomic_ref_count_dec (&event->ref))
    {
      g_free (event->name);
      g_free (event->data_json);
      g_free (event->device_id);
      g_free (event);
    }
  return NULL;
}

UvmEventKind
uvm_event_get_kind (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, UVM_EVENT_HYPERVISOR_EVENT);
  return event->kind;
}

UvmVmState
uvm_event_get_state (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, UVM_VM_STATE_DEFINED);
  return event->state;
}

UvmVmState
uvm_event_get_previous_state (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, UVM_VM_STATE_DEFINED);
  return event->previous;
}

int
uvm_event_get_exit_code (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, -1);
  return event->exit_code;
}

int
uvm_event_get_exit_signal (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, 0);
  return event->exit_signal;
}

const char *
uvm_event_get_device_id (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);
  return event->device_id;
}

const char *
uvm_event_get_name (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);
  return event->name;
}

const char *
uvm_event_get_data_json (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);
  return event->data_json;
}

gint64
uvm_event_get_timestamp (const UvmEvent *event)
{
  g_return_val_if_fail (event != NULL, 0);
  return event->timestamp;
}

const char *
uvm_vm_state_to_string (UvmVmState state)
{
  static const char *const names[] = {
    "defined", "starting", "running", "paused", "stopping", "stopped", "crashed",
  };

  if ((guint) state < G_N_ELEMENTS (names))
    return names[state];
  return "unknown";
}

const char *
uvm_event_kind_to_string (UvmEventKind kind)
{
  static const char *const names[] = {
    "state-changed", "guest-shutdown", "guest-reset", "guest-panic",
    "hypervisor-exited", "device-deleted", "hypervisor-event", "control-lost",
    "console-match",
  };

  if ((guint) kind < G_N_ELEMENTS (names))
    return names[kind];
  return "unknown";
}

char *
uvm_event_to_string (const UvmEvent *event)
{
  GString *out;

  g_return_val_if_fail (event != NULL, NULL);
  out = g_string_new (uvm_event_kind_to_string (event->kind));
  switch (event->kind)
    {
    case UVM_EVENT_STATE_CHANGED:
      g_string_append_printf (out, " %s (was %s)", uvm_vm_state_to_string (event->state),
                              uvm_vm_state_to_string (event->previous));
      break;
    case UVM_EVENT_HYPERVISOR_EXITED:
      if (event->exit_signal != 0)
        g_string_append_printf (out, " signal %d", event->exit_signal);
      else
        g_string_append_printf (out, " code %d", event->exit_code);
      break;
    case UVM_EVENT_DEVICE_DELETED:
      g_string_append_printf (out, " %s", event->device_id ? event->device_id : "?");
      break;
    default:
      break;
    }
  if (event->name != NULL)
    g_string_append_printf (out, " [%s%s%s]", event->name,
                            event->data_json ? " " : "",
                            event->data_json ? event->data_json : "");
  return g_string_free (out, FALSE);
}

void
uvm_event_set_state (UvmEvent *event, UvmVmState state)
{
  event->state = event->previous = state;
}
