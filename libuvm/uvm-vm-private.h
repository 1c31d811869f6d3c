/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the files of UvmVm share: the object's fields and the functions one
 * of them offers the others.  Not for backends or anything below: they
 * never see a UvmVm (they get a UvmDesc). */
#pragma once

#include "uvm-private.h"
#include "backend/uvm-backend.h"
#include "plan/uvm-desc.h"
#include "plan/uvm-plan.h"
#include "proc/uvm-child-watch.h"
#include "proc/uvm-spawn.h"
#include "proc/uvm-user.h"
#include "util/uvm-rundir.h"
#include "util/uvm-util.h"

G_BEGIN_DECLS

#define CONTROL_NAME "control.sock"
#define LOG_NAME "hypervisor.log"
#define CONSOLE_NAME "console.log"
#define CONSOLE_SOCKET_NAME "console.sock"
/* Ready normally comes within tens of milliseconds (the control socket does
 * not wait for the guest); this only catches a hypervisor that hangs. */
#define START_TIMEOUT_MS 30000
#define LOG_TAIL_LINES 8
/* A hypervisor that exits closes its sockets a moment before its exit can
 * be seen through the pidfd: an EOF on the control connection counts as a
 * lost connection only when the process still runs this much later. */
#define CONTROL_EOF_GRACE_MS 500

typedef enum {
  STOP_IDLE,
  STOP_POWER_BUTTON,
  STOP_QUIT,
  STOP_TERM,
  STOP_KILL,
} StopPhase;

struct _UvmVm
{
  GObject parent_instance;

  /* Definition. */
  char *name;
  UvmHypervisor hypervisor;
  UvmMachine machine;
  UvmAccel accel;
  char *kernel;
  char *initramfs;
  char *cmdline;
  guint vcpus;
  guint64 memory;
  GPtrArray *devices;
  GStrv extra_args;
  char *hypervisor_path;
  char *runtime_dir;        /* as set, or NULL */
  gboolean start_paused;
  gboolean confined;        /* empty netns + socket filter for the hypervisor */
  guint32 user_uid;         /* uvm_vm_set_user(): a uid, UVM_USER_DYNAMIC or _CALLER */
  guint32 user_gid;
  UvmVm *gateway;           /* weak: cleared by gateway_weak_notify() */
  gulong gateway_handler;   /* on the gateway's "event" signal */
  gboolean gateway_is_self; /* set as its own gateway: refused by validation */
  char *definition_error;   /* a misuse met by a setter, refused by validation */
  UvmVmLifetime lifetime;
  guint control_timeout_ms;
  char *log_dir;            /* uvm_vm_set_log_dir(), or NULL */

  /* Paths of the runtime directory in effect (recomputed on change). */
  char *effective_dir;
  char *control_path;
  char *log_path;
  char *console_path;
  char *console_socket_path;

  /* The current (or last) run. */
  UvmVmState state;
  GMainContext *context;
  UvmRundir *rundir;
  UvmChildWatch *child;
  UvmControl *control;
  gboolean console_in_rundir;
  goffset console_log_start;        /* the console log's size when the run started */
  GPtrArray *helpers;               /* Helper *: the run's helper processes */
  GStrv helper_files;               /* their log files, removed with the run */
  UvmUserLease *user_lease;         /* the run's dynamic uid, or NULL */
  UvmSpawnCreds creds;              /* who the run's processes run as */
  gboolean have_creds;              /* creds are those of a started run */

  GTask *start_task;
  UvmPlan *start_plan;              /* the plan being executed (start only) */
  GPtrArray *start_requests;        /* UvmPlanRequest: those being sent */
  GArray *start_fds;                /* int by index in the plan's fds: those requests send */
  guint start_step;                 /* the request being sent */
  gboolean start_have_state;
  UvmVmState start_state;
  GCancellable *start_cancellable;  /* ours: cancels the ready request */
  GError *start_error;              /* why a start is being aborted */
  GSource *start_timeout;
  GSource *start_cancel_source;

  StopPhase stop_phase;
  guint stop_timeout_ms;
  GSource *stop_timer;
  gboolean exit_expected;           /* a stop or kill was asked for */
  gboolean sent_term;               /* we sent the hypervisor SIGTERM */
  gboolean sent_kill;               /* ... or SIGKILL */

  /* The control connection of the run is lost (see sink_closed()). */
  gboolean control_lost;
  GError *control_error;
  GSource *control_grace;           /* EOF seen; is the process exiting? */
  gboolean guest_panicked;          /* this run's guest reported a panic */
  gboolean guest_shut_down;         /* ... or that it shut down */
  GTask *attach_task;               /* uvm_vm_attach_async() in progress */
  char *attached_lease;             /* its uid's lease file, held by the hypervisor */
  GQueue waiters;                   /* GTask: stop and wait callers */

  gboolean have_exit;
  int exit_code;
  int exit_signal;
};

/* A helper process of a run (passt), watched like the hypervisor. */
typedef struct {
  UvmVm *vm;                /* not a reference: the VM frees its helpers */
  UvmChildWatch *watch;     /* NULL once it exited */
  char *name;               /* the executable as configured ("passt") */
  char *device_id;
  char *network;
} Helper;


/* uvm-vm.c: the object */
gboolean uvm_vm_is_active (UvmVm *self);
void     uvm_vm_emit_event (UvmVm *self, UvmEvent *event);
void     uvm_vm_drop_gateway (UvmVm *self);
/* The gateway relation is no loop (self, cycles). */
gboolean uvm_vm_check_gateway_relation (UvmVm *self, GError **error);
const char *uvm_vm_get_control_path (UvmVm *vm);
/* "devices[N] (ID)": how errors name @device of @vm. */
char    *uvm_vm_describe_device (UvmVm *vm, UvmDevice *device);

/* uvm-vm-validate.c: definition -> description -> plan */
/* Every check of the definition, then the frozen description and the
 * backend's plan of it; @backend_out (may be NULL) gets the backend. */
UvmPlan *uvm_vm_build_plan (UvmVm *vm, const UvmBackend **backend_out, GError **error);
/* At start: a workstation's gateway runs. */
gboolean uvm_vm_check_gateway (UvmVm *self, GError **error);
/* The hypervisor executable, resolved in PATH. */
char    *uvm_vm_resolve_binary (const UvmPlan *plan, GError **error);
/* The executables of @plan's helpers, looked up in PATH. */
GStrv    uvm_vm_resolve_helpers (const UvmPlan *plan, GError **error);

/* uvm-vm-launch.c: plan -> processes */
/* The start failed (@error, or the cause recorded already when NULL):
 * end what runs; the exit handler completes the start task. */
void     uvm_vm_abort_start (UvmVm *self, GError *error);
/* Drops the plan of a start and closes the fds it still holds. */
void     uvm_vm_clear_start_plan (UvmVm *self);
/* Sends the requests of start_requests from start_step on, then completes
 * the start (or attach) with the state the STATE request's reply said. */
void     uvm_vm_send_requests (UvmVm *self);
/* A new close-on-exec socket connected to the control socket @path. */
int      uvm_vm_connect_control (const char *path, GError **error);
/* The start (or attach) deadline, and @cancellable's cancellation. */
void     uvm_vm_arm_start_deadlines (UvmVm *self, GCancellable *cancellable);

/* uvm-vm-attach.c: the state record, detached VMs, attach and list */
/* Writes the run's state record (@ready: the control handshake is done). */
gboolean uvm_vm_write_record (UvmVm *self, const UvmPlan *plan, gboolean ready, GError **error);
/* At start, with @dir locked and before its files are removed: a record
 * of a live ready hypervisor is UVM_ERROR_BUSY (a detached VM runs); one
 * whose process is gone is removed; the hypervisor of a start that never
 * finished (its launcher died) is killed and its record removed. */
gboolean uvm_vm_reclaim_record (const char *dir, const char *name, GError **error);
/* Lets go of a running detached VM without a signal: control connection,
 * watches of the hypervisor and helpers, timers, the runtime dir's lock
 * (files and record stay), the uid lease (kept by the hypervisor). */
void     uvm_vm_let_go (UvmVm *self);
/* A start or attach succeeded (in uvm-vm-launch.c's executor). */
void     uvm_vm_attach_succeeded (UvmVm *self);
void     uvm_vm_attach_failed (UvmVm *self, GError *error);

/* uvm-vm-supervise.c: state, exit, stop */
extern const UvmControlSink uvm_vm_control_sink;
void     uvm_vm_set_state (UvmVm *self, UvmVmState state);
GSource *uvm_vm_attach_source (GSource *source, GMainContext *context, GSourceFunc func,
                               gpointer data);
void     uvm_vm_helper_free (gpointer data);
/* The hypervisor closed its control connection and still runs: the one
 * rule for that, during a start and after it.  It is most likely exiting,
 * and its own exit (code, log) is the news; @on_expiry runs on @self when
 * it still runs CONTROL_EOF_GRACE_MS later.  The timer goes in @slot. */
void     uvm_vm_eof_grace (UvmVm *self, GSource **slot, GSourceFunc on_expiry);
void     uvm_vm_on_helper_exit (int code, int sig, gpointer user_data);
void     uvm_vm_on_child_exit (int code, int sig, gpointer user_data);
void     uvm_vm_stop_helpers (UvmVm *self);
/* The files of a run in its runtime directory (for uvm_rundir_acquire()). */
GStrv    uvm_vm_run_files (UvmVm *self);
void     uvm_vm_finish_run (UvmVm *self);
/* A request failed with @error: a dead or broken connection is a lost
 * control connection. */
void     uvm_vm_note_request_error (UvmVm *self, const GError *error);

/* uvm-vm-console.c: the console of a run */
/* Opens a helper fd that is no socket pair: the console log (a
 * UVM_PLAN_FD_FILE, its size at start recorded) or the listening console
 * socket.  -1 with @error. */
int      uvm_vm_open_helper_fd (UvmVm *self, const UvmPlanFd *pfd, GError **error);
/* A pty for the console relay, in raw mode: @controller for the relay,
 * @terminal for the hypervisor's stdin and stdout.  Both O_CLOEXEC. */
gboolean uvm_vm_open_console_pty (int *controller, int *terminal, GError **error);
/* Gives the console relay (a helper of @self, just reaped hypervisor) a
 * moment to write what the hypervisor left before it is ended. */
void     uvm_vm_drain_console_relay (UvmVm *self);
/* Whether @helper is the console relay (its exit is no uplink's). */
gboolean uvm_vm_helper_is_console_relay (const Helper *helper);

/* uvm-vm-control.c: requests to the running hypervisor */
/* Sends the backend's request for @op (@guest_bytes: the balloon target). */
void     uvm_vm_control_op_async (UvmVm *self, UvmControlOp op, guint64 guest_bytes,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
gboolean uvm_vm_control_op_finish (GAsyncResult *result, GError **error);

/* Sync variants: run the async call and iterate the thread-default
 * context, where GTask delivers the callback. */
typedef struct {
  GAsyncResult *result;
} UvmSyncCall;
void          uvm_vm_sync_call_done (GObject *source, GAsyncResult *result, gpointer user_data);
GAsyncResult *uvm_vm_sync_call_wait (UvmSyncCall *call);

G_END_DECLS
