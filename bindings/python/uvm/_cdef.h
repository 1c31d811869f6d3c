/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The part of <uvm/uvm.h> (and of GLib) the Python package uses, in cffi's
 * cdef dialect. uvm_build.py compiles it against the real headers with
 * every function checked as a function pointer of this exact type, and
 * every enum value and struct field checked too: a declaration that
 * disagrees with the headers fails the build instead of corrupting calls.
 * Integer typedefs are `int...` so that the C names stay in the generated
 * code (and are compared by the compiler, not by us). */

/* ---- GLib / GObject / GIO ------------------------------------------- */
typedef int... gboolean;
typedef int... gint;
typedef int... guint;
typedef int... gulong;
typedef int... gint64;
typedef int... guint64;
typedef int... guint32;
typedef int... GQuark;
typedef char gchar;
typedef void *gpointer;

typedef struct _GError {
  GQuark domain;
  gint code;
  gchar *message;
} GError;

typedef struct _GObject GObject;
typedef struct _GMainContext GMainContext;
typedef struct _GSource GSource;
typedef struct _GCancellable GCancellable;
typedef struct _GAsyncResult GAsyncResult;

typedef void (*GDestroyNotify) (gpointer data);
typedef gboolean (*GSourceFunc) (gpointer user_data);
typedef void (*GAsyncReadyCallback) (GObject *source_object, GAsyncResult *res, gpointer data);

typedef struct _GPtrArray {
  gpointer *pdata;
  guint len;
} GPtrArray;

void g_free (gpointer mem);
void g_ptr_array_unref (GPtrArray *array);
void g_error_free (GError *error);
gpointer g_object_ref (gpointer object);
void g_object_unref (gpointer object);

GMainContext *g_main_context_ref_thread_default (void);
void g_main_context_unref (GMainContext *context);
gboolean g_main_context_iteration (GMainContext *context, gboolean may_block);
gboolean g_main_context_pending (GMainContext *context);
GSource *g_timeout_source_new (guint interval);
void g_source_set_callback (GSource *source, GSourceFunc func, gpointer data, GDestroyNotify notify);
guint g_source_attach (GSource *source, GMainContext *context);
void g_source_destroy (GSource *source);
void g_source_unref (GSource *source);

GCancellable *g_cancellable_new (void);
void g_cancellable_cancel (GCancellable *cancellable);

GQuark g_io_error_quark (void);
#define G_IO_ERROR_CANCELLED ...

/* ---- uvm-types.h ----------------------------------------------------- */
typedef enum {
  UVM_HYPERVISOR_QEMU = 0,
  UVM_HYPERVISOR_CLOUD_HYPERVISOR = 1,
} UvmHypervisor;

typedef enum {
  UVM_MACHINE_DEFAULT = 0,
  UVM_MACHINE_Q35 = 1,
  UVM_MACHINE_PC = 2,
  UVM_MACHINE_MICROVM = 3,
} UvmMachine;

typedef enum {
  UVM_ACCEL_AUTO = 0,
  UVM_ACCEL_KVM = 1,
  UVM_ACCEL_TCG = 2,
} UvmAccel;

typedef enum {
  UVM_VM_STATE_DEFINED = 0,
  UVM_VM_STATE_STARTING = 1,
  UVM_VM_STATE_RUNNING = 2,
  UVM_VM_STATE_PAUSED = 3,
  UVM_VM_STATE_STOPPING = 4,
  UVM_VM_STATE_STOPPED = 5,
  UVM_VM_STATE_CRASHED = 6,
} UvmVmState;

typedef enum {
  UVM_FEATURE_MACHINE_Q35 = 0,
  UVM_FEATURE_MACHINE_PC = 1,
  UVM_FEATURE_MACHINE_MICROVM = 2,
  UVM_FEATURE_SOFTWARE_EMULATION = 3,
  UVM_FEATURE_USER_NETWORK = 4,
  UVM_FEATURE_SOCKET_LINK = 5,
  UVM_FEATURE_TAP_NETWORK = 6,
  UVM_FEATURE_QCOW2 = 7,
  UVM_FEATURE_BALLOON = 8,
  UVM_FEATURE_HOTPLUG = 9,
  UVM_FEATURE_RAW_QMP = 10,
  UVM_FEATURE_RAW_REST = 11,
  UVM_FEATURE_BRIDGE_LINK = 12,
  UVM_FEATURE_PASST_UPLINK = 13,
  UVM_FEATURE_TAP_NAT_UPLINK = 14,
  UVM_FEATURE_HOST_BRIDGE = 15,
  UVM_FEATURE_FIRMWARE_BOOT = 16,
} UvmFeature;

typedef struct _UvmVm UvmVm;
typedef struct _UvmDevice UvmDevice;
typedef struct _UvmNetwork UvmNetwork;
typedef struct _UvmStorage UvmStorage;
typedef struct _UvmEvent UvmEvent;

/* ---- uvm-version.h, uvm-error.h -------------------------------------- */
const char *uvm_get_version (void);

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
} UvmError;

GQuark uvm_error_quark (void);

/* ---- uvm-storage.h --------------------------------------------------- */
typedef enum {
  UVM_STORAGE_FORMAT_RAW = 0,
  UVM_STORAGE_FORMAT_QCOW2 = 1,
} UvmStorageFormat;

UvmStorage *uvm_storage_new_image (const char *path);
const char *uvm_storage_get_path (UvmStorage *storage);
void uvm_storage_set_read_only (UvmStorage *storage, gboolean read_only);
gboolean uvm_storage_get_read_only (UvmStorage *storage);
void uvm_storage_set_format (UvmStorage *storage, UvmStorageFormat format);
UvmStorageFormat uvm_storage_get_format (UvmStorage *storage);
void uvm_storage_set_create_size (UvmStorage *storage, guint64 size_bytes);
guint64 uvm_storage_get_create_size (UvmStorage *storage);

/* ---- uvm-network.h --------------------------------------------------- */
typedef enum {
  UVM_NETWORK_ISOLATED = 0,
  UVM_NETWORK_UPLINK = 1,
  UVM_NETWORK_TAP = 2,
  UVM_NETWORK_BRIDGE = 3,
} UvmNetworkKind;

typedef enum {
  UVM_UPLINK_AUTO = 0,
  UVM_UPLINK_USER = 1,
  UVM_UPLINK_PASST = 2,
  UVM_UPLINK_TAP_NAT = 3,
} UvmUplinkMode;

UvmNetwork *uvm_network_new_isolated (const char *name);
UvmNetwork *uvm_network_new_uplink (const char *name);
UvmNetwork *uvm_network_new_tap (const char *name, const char *tap_name);
UvmNetwork *uvm_network_new_bridge (const char *name, const char *host_bridge);
const char *uvm_network_get_tap_name (UvmNetwork *network);
const char *uvm_network_get_host_bridge (UvmNetwork *network);
void uvm_network_set_uplink_mode (UvmNetwork *network, UvmUplinkMode mode);
UvmUplinkMode uvm_network_get_uplink_mode (UvmNetwork *network);
const char *uvm_network_get_name (UvmNetwork *network);
UvmNetworkKind uvm_network_get_kind (UvmNetwork *network);

/* ---- uvm-device.h ---------------------------------------------------- */
typedef enum {
  UVM_DEVICE_NET = 0,
  UVM_DEVICE_DISK = 1,
  UVM_DEVICE_CONSOLE = 2,
  UVM_DEVICE_RNG = 3,
  UVM_DEVICE_BALLOON = 4,
} UvmDeviceKind;

UvmDevice *uvm_device_new_net (UvmNetwork *network, const char *mac);
UvmDevice *uvm_device_new_disk (UvmStorage *storage);
UvmDevice *uvm_device_new_console (const char *log_path);
UvmDevice *uvm_device_new_rng (void);
UvmDevice *uvm_device_new_balloon (void);
UvmDeviceKind uvm_device_get_kind (UvmDevice *device);
void uvm_device_set_id (UvmDevice *device, const char *id);
const char *uvm_device_get_id (UvmDevice *device);
void uvm_device_set_hotpluggable (UvmDevice *device, gboolean hotpluggable);
gboolean uvm_device_get_hotpluggable (UvmDevice *device);
const char *uvm_device_get_mac (UvmDevice *device);
const char *uvm_device_get_log_path (UvmDevice *device);
void uvm_device_set_tap_name (UvmDevice *device, const char *tap_name);
const char *uvm_device_get_tap_name (UvmDevice *device);
UvmNetwork *uvm_device_get_network (UvmDevice *device);
UvmStorage *uvm_device_get_storage (UvmDevice *device);

/* ---- uvm-event.h ----------------------------------------------------- */
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

UvmEventKind uvm_event_get_kind (const UvmEvent *event);
UvmVmState uvm_event_get_state (const UvmEvent *event);
UvmVmState uvm_event_get_previous_state (const UvmEvent *event);
int uvm_event_get_exit_code (const UvmEvent *event);
int uvm_event_get_exit_signal (const UvmEvent *event);
const char *uvm_event_get_device_id (const UvmEvent *event);
const char *uvm_event_get_name (const UvmEvent *event);
const char *uvm_event_get_data_json (const UvmEvent *event);
gint64 uvm_event_get_timestamp (const UvmEvent *event);
char *uvm_event_to_string (const UvmEvent *event);

/* ---- uvm-hypervisor.h ------------------------------------------------ */
gboolean uvm_hypervisor_supports (UvmHypervisor hypervisor, UvmFeature feature);
const char *uvm_hypervisor_to_string (UvmHypervisor hypervisor);
gboolean uvm_hypervisor_from_string (const char *name, UvmHypervisor *out);

/* ---- uvm-vm.h -------------------------------------------------------- */
typedef void (*UvmEventFunc) (UvmVm *vm, UvmEvent *event, gpointer user_data);

UvmVm *uvm_vm_new (const char *name, UvmHypervisor hypervisor);
const char *uvm_vm_get_name (UvmVm *vm);
UvmHypervisor uvm_vm_get_hypervisor (UvmVm *vm);
void uvm_vm_set_machine (UvmVm *vm, UvmMachine machine);
UvmMachine uvm_vm_get_machine (UvmVm *vm);
void uvm_vm_set_accel (UvmVm *vm, UvmAccel accel);
UvmAccel uvm_vm_get_accel (UvmVm *vm);
void uvm_vm_set_kernel (UvmVm *vm, const char *kernel, const char *initramfs, const char *cmdline);
const char *uvm_vm_get_kernel (UvmVm *vm);
const char *uvm_vm_get_initramfs (UvmVm *vm);
const char *uvm_vm_get_kernel_cmdline (UvmVm *vm);
void uvm_vm_set_vcpus (UvmVm *vm, guint vcpus);
guint uvm_vm_get_vcpus (UvmVm *vm);
void uvm_vm_set_memory (UvmVm *vm, guint64 bytes);
guint64 uvm_vm_get_memory (UvmVm *vm);
void uvm_vm_add_device (UvmVm *vm, UvmDevice *device);
guint uvm_vm_get_n_devices (UvmVm *vm);
UvmDevice *uvm_vm_get_device (UvmVm *vm, guint index);
void uvm_vm_set_extra_args (UvmVm *vm, const char *const *args);
const char *const *uvm_vm_get_extra_args (UvmVm *vm);
void uvm_vm_set_hypervisor_path (UvmVm *vm, const char *path);
const char *uvm_vm_get_hypervisor_path (UvmVm *vm);
void uvm_vm_set_runtime_dir (UvmVm *vm, const char *path);
const char *uvm_vm_get_runtime_dir (UvmVm *vm);
void uvm_vm_set_start_paused (UvmVm *vm, gboolean paused);
gboolean uvm_vm_get_start_paused (UvmVm *vm);
void uvm_vm_set_confined (UvmVm *vm, gboolean confined);
gboolean uvm_vm_get_confined (UvmVm *vm);
#define UVM_USER_DYNAMIC 0xffffffff
#define UVM_USER_CALLER 0xfffffffe
void uvm_vm_set_user (UvmVm *vm, guint32 uid, guint32 gid);
guint32 uvm_vm_get_user (UvmVm *vm);
guint32 uvm_vm_get_group (UvmVm *vm);
gboolean uvm_vm_get_run_user (UvmVm *vm, guint32 *uid, guint32 *gid);
void uvm_vm_set_gateway (UvmVm *workstation, UvmVm *gateway);
UvmVm *uvm_vm_get_gateway (UvmVm *vm);
gboolean uvm_vm_validate (UvmVm *vm, GError **error);
char *uvm_vm_get_command_line (UvmVm *vm, GError **error);
char *uvm_vm_get_launch_plan (UvmVm *vm, GError **error);

/* ---- uvm-json.h ------------------------------------------------------ */
#define UVM_JSON_SCHEMA_VERSION ...
GPtrArray *uvm_vms_new_from_json (const char *json, GError **error);
char *uvm_vms_to_json (UvmVm *const *vms, guint n_vms, GError **error);
UvmVm *uvm_vm_new_from_json (const char *json, GError **error);
char *uvm_vm_to_json (UvmVm *vm, GError **error);

void uvm_vm_start_async (UvmVm *vm, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
gboolean uvm_vm_start_finish (UvmVm *vm, GAsyncResult *result, GError **error);
void uvm_vm_pause_async (UvmVm *vm, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
gboolean uvm_vm_pause_finish (UvmVm *vm, GAsyncResult *result, GError **error);
void uvm_vm_resume_async (UvmVm *vm, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);
gboolean uvm_vm_resume_finish (UvmVm *vm, GAsyncResult *result, GError **error);
void uvm_vm_stop_async (UvmVm *vm, guint timeout_ms, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data);
gboolean uvm_vm_stop_finish (UvmVm *vm, GAsyncResult *result, GError **error);
gboolean uvm_vm_kill (UvmVm *vm, GError **error);
gboolean uvm_vm_wait (UvmVm *vm, int timeout_ms, GCancellable *cancellable, GError **error);
UvmVmState uvm_vm_get_state (UvmVm *vm);
int uvm_vm_get_pid (UvmVm *vm);
gboolean uvm_vm_get_exit_status (UvmVm *vm, int *exit_code, int *exit_signal);
void uvm_vm_set_control_timeout (UvmVm *vm, guint timeout_ms);
guint uvm_vm_get_control_timeout (UvmVm *vm);
gboolean uvm_vm_get_control_lost (UvmVm *vm, GError **error);
const char *uvm_vm_get_console_path (UvmVm *vm);
const char *uvm_vm_get_log_path (UvmVm *vm);
void uvm_vm_set_log_dir (UvmVm *vm, const char *path);
const char *uvm_vm_get_log_dir (UvmVm *vm);
const char *uvm_vm_get_console_socket_path (UvmVm *vm);
int uvm_vm_open_console (UvmVm *vm, GError **error);
void uvm_vm_wait_for_console_async (UvmVm *vm, const char *pattern, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
char *uvm_vm_wait_for_console_finish (UvmVm *vm, GAsyncResult *result, GError **error);
gulong uvm_vm_connect_event (UvmVm *vm, UvmEventFunc func, gpointer user_data,
                             GDestroyNotify notify);
void uvm_vm_disconnect_event (UvmVm *vm, gulong handler_id);
void uvm_vm_qmp_execute_async (UvmVm *vm, const char *command, const char *arguments_json,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
char *uvm_vm_qmp_execute_finish (UvmVm *vm, GAsyncResult *result, GError **error);
void uvm_vm_set_balloon_target_async (UvmVm *vm, guint64 guest_bytes, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
gboolean uvm_vm_set_balloon_target_finish (UvmVm *vm, GAsyncResult *result, GError **error);
void uvm_vm_ch_request_async (UvmVm *vm, const char *method, const char *endpoint,
                              const char *body_json, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
char *uvm_vm_ch_request_finish (UvmVm *vm, GAsyncResult *result, guint *status,
                                GError **error);

/* ---- Callbacks into Python (defined by cffi in the module) ----------- */
extern "Python" void _uvm_py_on_event (UvmVm *vm, UvmEvent *event, gpointer user_data);
extern "Python" void _uvm_py_on_ready (GObject *source_object, GAsyncResult *res, gpointer data);
extern "Python" gboolean _uvm_py_on_timeout (gpointer user_data);
