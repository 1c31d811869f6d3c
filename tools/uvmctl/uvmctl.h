/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl: a command-line tool on libuvm's public API only (it links
 * libuvm.so as any application does).  One file per few verbs. */
#pragma once

#include <uvm/uvm.h>

/* Exit codes a shell can rely on (also in every --help and the README). */
enum {
  UVMCTL_EXIT_OK = 0,
  UVMCTL_EXIT_FAILED = 1,      /* the operation failed; the library's error is quoted */
  UVMCTL_EXIT_USAGE = 2,       /* the command line is wrong */
  UVMCTL_EXIT_NOT_FOUND = 3,   /* no such VM (UVM_ERROR_NOT_FOUND) */
  UVMCTL_EXIT_BUSY = 4,        /* another process controls the VM (UVM_ERROR_BUSY) */
  UVMCTL_EXIT_NOT_RUNNING = 5, /* the VM is not running, or its record is stale */
};

#define UVMCTL_EXIT_CODES_HELP \
  "Exit status:\n" \
  "  0  success\n" \
  "  1  the operation failed (the library's error is on stderr)\n" \
  "  2  usage error (unknown verb or option, wrong arguments)\n" \
  "  3  no such VM under the runtime root\n" \
  "  4  busy: another process controls the VM (its pid is named)\n" \
  "  5  the VM is not running, or its record is stale (reclaimed)\n"

/* The runtime root of --root, or NULL for the library's default. */
extern char *uvmctl_root;

/* A verb's option context: PARAMS is its parameter string, SUMMARY its
 * help text; --root is accepted after the verb as well. */
GOptionContext *uvmctl_options_new (const char *verb, const char *params, const char *summary,
                                    const GOptionEntry *entries);
/* Parses ARGV (the verb at argv[0]) and checks that between MIN and MAX
 * arguments remain; prints the problem and returns FALSE otherwise. */
gboolean uvmctl_parse (GOptionContext *options, int *argc, char ***argv, int min_args,
                       int max_args);

/* The exit code for a library error (see the enum). */
int uvmctl_exit_code (const GError *error);
/* Prints "uvmctl: NAME: WHAT: MESSAGE" on stderr; returns the exit code. */
int uvmctl_fail (const char *name, const char *what, const GError *error);

/* uvm_vm_attach() under --root; NULL after uvmctl_fail(), *status set. */
UvmVm *uvmctl_attach (const char *name, const char *what, int *status);
/* The library's default runtime root (as uvm_vm_list() takes NULL). */
char *uvmctl_default_root (void);
/* The UvmVmInfo of NAME from uvm_vm_list(), or NULL with *status set
 * (3 when it is not listed) and the reason printed. */
UvmVmInfo *uvmctl_find (const char *name, const char *what, int *status);

/* "512MiB", "1G", "1073741824": the sizes of definition documents. */
gboolean uvmctl_parse_size (const char *text, guint64 *out);

/* sd_notify(3)'s datagram protocol, spoken without libsystemd. */
void uvmctl_notify_init (void);
void uvmctl_notify (const char *text);

int uvmctl_run (int argc, char **argv);
int uvmctl_plan (int argc, char **argv);
int uvmctl_stop (int argc, char **argv);
int uvmctl_kill (int argc, char **argv);
int uvmctl_pause (int argc, char **argv);
int uvmctl_resume (int argc, char **argv);
int uvmctl_balloon (int argc, char **argv);
int uvmctl_qmp (int argc, char **argv);
int uvmctl_api (int argc, char **argv);
int uvmctl_events (int argc, char **argv);
int uvmctl_console (int argc, char **argv);
