/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A launch plan: what a VM description (plan/uvm-desc.h) turns into
 * before anything exists, and the one script the launcher follows: the fds
 * to make, the helpers and the hypervisor to spawn with them, and the
 * control requests to send in order (with the fds each carries).  Building
 * one is pure (no fds, no files); printing it prints these steps, and the
 * launcher executes exactly them. */
#pragma once

#include <uvm/uvm.h>
#include "plan/uvm-desc.h"

G_BEGIN_DECLS

/* The first fd number handed to the child beyond stdio. */
#define UVM_PLAN_FIRST_FD 3

typedef enum {
  UVM_PLAN_FD_CONTROL_SOCKET,   /* listening control socket, bound by us */
  UVM_PLAN_FD_NET_LINK,         /* one end of an isolated link */
  UVM_PLAN_FD_EVENT_PIPE,       /* child: write end; control: read end */
  UVM_PLAN_FD_TAP,              /* a tap queue, sent over the control socket */
  UVM_PLAN_FD_LIB_TAP,          /* a library-created tap: isolated bridge, host bridge, tap+NAT uplink */
  /* One end of an AF_UNIX SOCK_STREAM socket pair between the hypervisor
   * and a helper (passt): the hypervisor's fd and the helper's fd of this
   * kind with the same device are the two ends of one pair. */
  UVM_PLAN_FD_HELPER_STREAM,
  /* A file the library opens (path, flags) so that the unprivileged
   * hypervisor needs no access to its directory: a disk image, the
   * kernel, the initramfs, the console file. */
  UVM_PLAN_FD_FILE,
  /* The listening console socket (console.sock), bound by us: the
   * console relay accepts its clients on it. */
  UVM_PLAN_FD_CONSOLE_SOCKET,
  /* The controlling side of the console's pty: the relay's; the other
   * side is the hypervisor's stdin and stdout (UvmPlan.stdio_console). */
  UVM_PLAN_FD_CONSOLE_PTY,
} UvmPlanFdKind;

/* How the hypervisor uses a UVM_PLAN_FD_FILE fd. */
typedef enum {
  /* It uses the fd itself (qemu's -add-fd fd sets): no further checks. */
  UVM_PLAN_FILE_FD,
  /* It reopens it as /proc/self/fd/N: the file's mode must let the VM
   * user open it with the same access. */
  UVM_PLAN_FILE_REOPENED,
} UvmPlanFileUse;

/* Not inherited by the child: the control connection sends it. */
#define UVM_PLAN_FD_NOT_INHERITED (-1)

typedef struct {
  int target;                   /* fd number in the child, or NOT_INHERITED */
  UvmPlanFdKind kind;
  const UvmDescDevice *device;  /* the device it serves (of the plan's description), or NULL */
  char *what;                   /* human description for the printed plan */
  /* UVM_PLAN_FD_FILE only: */
  char *path;
  int flags;                    /* open(2) flags; O_CLOEXEC is added */
  UvmPlanFileUse use;
} UvmPlanFd;

/* A process started before the hypervisor and stopped after it (passt),
 * with fds of its own numbered from 3 like the hypervisor's.  It is not
 * confined: it is the part that talks to the host's network. */
typedef struct {
  char *binary;                 /* as configured: looked up in PATH at start */
  GPtrArray *args;              /* arguments after the binary (char *) */
  GPtrArray *fds;               /* UvmPlanFd * in target order */
  const UvmDescDevice *device;  /* the NIC it serves */
  char *what;                   /* human description for the printed plan */
  char *log_path;               /* its stdout/stderr, in the runtime dir */
} UvmPlanHelper;

typedef struct _UvmPlan UvmPlan;

typedef enum {
  UVM_PLAN_REQUEST_PLAIN,
  /* Its reply says which state the guest is in (the last of a start). */
  UVM_PLAN_REQUEST_STATE,
} UvmPlanRequestRole;

/* A control request.  QMP: @method NULL, @target the command, @body its
 * arguments.  REST: @method and @target the HTTP method and path, @body the
 * request body. */
typedef struct {
  char *method;
  char *target;
  char *body;                   /* JSON text, or NULL */
  GArray *fds;                  /* guint: indexes in the plan's fds sent with it (SCM_RIGHTS) */
  UvmPlanRequestRole role;
  /* Also sent, in order, by a process that attaches to the running VM
   * (uvm_vm_attach()): a new connection's handshake and the state query.
   * Carries no fds. */
  gboolean on_attach;
} UvmPlanRequest;

UvmPlanRequest *uvm_plan_request_new (const char *method, const char *target, const char *body,
                                      UvmPlanRequestRole role);
void            uvm_plan_request_free (UvmPlanRequest *request);
/* One line: `{"execute": "CMD", "arguments": BODY}` or `METHOD PATH BODY`,
 * then " + fd sN (SCM_RIGHTS)" for each fd it carries, N its number
 * among the plan's fds sent over the control socket.  @plan may be NULL
 * for a request of no plan. */
char           *uvm_plan_request_to_string (const UvmPlanRequest *request, const UvmPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmPlanRequest, uvm_plan_request_free)

struct _UvmPlan {
  UvmDesc *desc;                /* what it was built from (ref held) */
  char *backend_name;
  char *binary;                 /* as configured, not resolved */
  GPtrArray *args;              /* arguments after the binary (char *) */
  GPtrArray *fds;               /* UvmPlanFd * in target order */
  GPtrArray *requests;          /* UvmPlanRequest *: sent after spawn, in order */
  GPtrArray *helpers;           /* UvmPlanHelper *, started in this order */
  /* The console device whose pty is the hypervisor's stdin and stdout
   * (cloud-hypervisor's serial "Tty" mode), or NULL: stdin /dev/null,
   * stdout the hypervisor's log. */
  const UvmDescDevice *stdio_console;
};

/* A plan for @desc (a reference is taken) by backend @backend_name. */
UvmPlan *uvm_plan_new (UvmDesc *desc, const char *backend_name);
void     uvm_plan_free (UvmPlan *plan);
void     uvm_plan_add_args (UvmPlan *plan, const char *first, ...) G_GNUC_NULL_TERMINATED;
/* Takes ownership of @arg. */
void     uvm_plan_take_arg (UvmPlan *plan, char *arg);
/* Returns the fd number the child will see. */
int      uvm_plan_add_fd (UvmPlan *plan, UvmPlanFdKind kind, const UvmDescDevice *device,
                          const char *what);
/* An fd the parent opens and a control request sends (taps); returns its
 * index in @plan->fds, for uvm_plan_request_add_fd(). */
guint    uvm_plan_add_control_fd (UvmPlan *plan, UvmPlanFdKind kind, const UvmDescDevice *device,
                                  const char *what);
/* Appends @request (taken) to the requests sent after spawn. */
UvmPlanRequest *uvm_plan_add_request (UvmPlan *plan, UvmPlanRequest *request);
/* @request carries the fd of @plan->fds[@index]. */
void     uvm_plan_request_add_fd (UvmPlanRequest *request, guint index);
/* A file opened at spawn time with @flags (O_CLOEXEC added, O_CREAT with
 * mode 0600); returns the fd number the child will see. */
int      uvm_plan_add_file_fd (UvmPlan *plan, const char *path, int flags, UvmPlanFileUse use,
                               const char *what);

/* A helper for @device; @log_path receives its stdout and stderr. */
UvmPlanHelper *uvm_plan_add_helper (UvmPlan *plan, const char *binary,
                                    const UvmDescDevice *device, const char *what,
                                    const char *log_path);
void     uvm_plan_helper_add_args (UvmPlanHelper *helper, const char *first, ...) G_GNUC_NULL_TERMINATED;
/* Returns the fd number the helper will see. */
int      uvm_plan_helper_add_fd (UvmPlanHelper *helper, UvmPlanFdKind kind,
                                 const UvmDescDevice *device, const char *what);

/* A file opened at spawn time for the helper (O_CLOEXEC added, O_CREAT
 * with mode 0600); the helper uses the fd itself.  Returns the fd number
 * the helper will see. */
int      uvm_plan_helper_add_file_fd (UvmPlanHelper *helper, const char *path, int flags,
                                      const char *what);

/* The console relay (uvm-console-relay, libexec/) of @console, the same
 * for every backend: the log @plan->desc->console_path (appended), the
 * listening socket @plan->desc->console_socket_path, and its end of the
 * hypervisor's serial line: @hv_kind UVM_PLAN_FD_HELPER_STREAM (the
 * hypervisor's end is a plan fd of that kind and device, added by the
 * backend) or UVM_PLAN_FD_CONSOLE_PTY (the hypervisor's stdin and stdout;
 * sets @plan->stdio_console).  @hv_what describes the relay's end. */
UvmPlanHelper *uvm_plan_add_console_relay (UvmPlan *plan, const UvmDescDevice *console,
                                           UvmPlanFdKind hv_kind, const char *hv_what);

/* The hypervisor's command line on one line, preceded by each helper's
 * command line and " & " (as a shell would start them). */
char    *uvm_plan_to_command_line (const UvmPlan *plan);
char    *uvm_plan_to_script (const UvmPlan *plan);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UvmPlan, uvm_plan_free)

G_END_DECLS
