/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-raw-rest: the raw side of bench-launch's cloud-hypervisor rows.
 *
 * A minimal launcher and HTTP/1.1 client for cloud-hypervisor's REST API
 * (here: the stand-in), with blocking sockets and nothing else: spawn with a
 * pre-bound listening socket as the API fd and a pipe as the event monitor
 * fd, then the requests the library sends (vmm.ping, vm.create, vm.boot,
 * vm.info) on one keep-alive connection.  Responses are parsed only as far
 * as a client must: status line, Content-Length, body. */
#pragma once

#include <sys/types.h>
#include <glib.h>

/* A file libuvm opens and passes as fd @fd (the VmConfig says
 * /proc/self/fd/N): the raw side opens and passes it the same way. */
typedef struct {
  int fd;
  char *path;
  int flags;            /* open(2) flags */
} RawRestFile;

/* The files of a libuvm launch plan ("# fd N: ... 'PATH' (read-only ...",
 * "(write ...", "(read-write ..."): libuvm opens them and the hypervisor
 * gets them as fd N.  Appends a RawRestFile to @files for each. */
gboolean raw_plan_files_parse (const char *launch_plan, GArray *files, GError **error);
/* Opens each of @files (in the parent); NULL with @error on failure.  The
 * array has one fd per file; close with raw_plan_files_close(). */
int     *raw_plan_files_open (GArray *files, GError **error);
void     raw_plan_files_close (GArray *files, int *fds);
/* In the child after fork (async-signal-safe): each opened fd onto its
 * number, CLOEXEC cleared.  @fds is changed (the child's copy).  FALSE on
 * failure. */
gboolean raw_plan_files_install (GArray *files, int *fds);

typedef struct {
  char **argv;          /* argv[0] is the resolved executable */
  int api_fd;           /* --api-socket fd=N */
  int event_fd;         /* --event-monitor fd=N */
  char *vm_config;      /* the body of PUT vm.create */
  GArray *files;        /* RawRestFile: what the VmConfig names as /proc/self/fd/N */
  char *socket_path;
  char *log_path;
  char *console_path;
} RawRestPlan;

typedef struct {
  pid_t pid;            /* 0 when not running */
  int fd;               /* connected API socket, or -1 */
  int events_fd;        /* our end of the event monitor pipe, or -1 */
  char buf[65536];
  size_t len;
} RawRest;

void raw_rest_init (RawRest *r);

/* Fills @plan from libuvm's command line and launch plan of the same VM
 * definition (whose runtime directory is @dir). */
gboolean raw_rest_plan_init (RawRestPlan *plan, const char *command_line, const char *launch_plan,
                             const char *executable, const char *dir, GError **error);
void raw_rest_plan_clear (RawRestPlan *plan);

/* Binds the API socket (untimed), then times fork -> vmm.ping -> vm.create
 * -> vm.boot -> vm.info (state Running). */
gboolean raw_rest_start (const RawRestPlan *plan, RawRest *r, gint64 *elapsed_ns, GError **error);

/* One request; @body_out (optional) receives the response body (valid
 * until the next call).  Fails on a status other than 2xx. */
gboolean raw_rest_request (RawRest *r, const char *method, const char *endpoint, const char *body,
                           const char **body_out, GError **error);

/* SIGKILL and reap; never fails, used on every path. */
void raw_rest_stop (RawRest *r);
