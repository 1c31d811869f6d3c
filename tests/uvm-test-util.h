/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for the tests that boot the real test guest. */
#pragma once

#include <uvm/uvm.h>

G_BEGIN_DECLS

/* Console markers printed by tests/guest/init. */
#define GUEST_READY "UVM-GUEST-READY"
#define GUEST_POWEROFF "UVM-GUEST-POWEROFF"
#define GUEST_IGNORING "UVM-GUEST-IGNORING-POWERBUTTON"

/* Paths of the test guest; the test is skipped (with a message) when
 * UVM_TEST_GUEST_DIR does not hold one. */
gboolean    test_guest_available (void);
const char *test_guest_kernel (void);
const char *test_guest_initramfs (void);

/* A hypervisor the lifecycle suite runs against: passed as the test data
 * of every test registered for it. */
typedef struct {
  const char *name;          /* the first element of the test paths */
  UvmHypervisor hypervisor;
  UvmAccel accel;            /* qemu: TCG; cloud-hypervisor: AUTO (it refuses TCG) */
  char *binary;              /* the hypervisor executable, or NULL for the default */
  char *skip_reason;         /* set when this hypervisor is not available here */
  gboolean caller_user;      /* run the hypervisor as the caller (UVM_USER_CALLER) */
  char *guest_skip_reason;   /* set when the hypervisor runs but its guest does not */
  char *user_skip_reason;    /* caller_user: why the per-VM user cannot run it here */
} TestBackend;

/* qemu-system-x86_64 from PATH, guests under TCG. */
TestBackend *test_backend_new_qemu (void);
/* The Python stand-in for cloud-hypervisor named by UVM_TEST_CH_STANDIN
 * (meson test sets it to tests/ch-standin/cloud-hypervisor). */
TestBackend *test_backend_new_ch_standin (void);
/* A real cloud-hypervisor: UVM_TEST_CLOUD_HYPERVISOR, else
 * "cloud-hypervisor" in PATH; skipped (visibly) when neither.  When
 * /dev/kvm is closed to other users, the per-VM user could not open it:
 * the hypervisor then runs as the caller (UVM_USER_CALLER), said in a test
 * message. */
TestBackend *test_backend_new_cloud_hypervisor (void);
/* "qemu-minimal", the test-only backend of tests/backend-test (real
 * qemu-system-x86_64 under TCG, a plan and a QMP control class of its
 * own), registered in the library's backend table by this call.  Only in
 * programs linked with test_util_internal_dep (the table is internal). */
TestBackend *test_backend_new_qemu_minimal (void);
void         test_backend_free (TestBackend *backend);

/* The backends the VM suites run each test on. */
typedef struct {
  TestBackend *qemu;
  TestBackend *ch_standin;
  TestBackend *cloud_hypervisor;
} TestBackends;

/* g_test_init(), test_warm_up_glib(), then the three backends in @backends;
 * a real cloud-hypervisor's guest is probed once (test_backend_probe_guest()). */
void test_vm_suite_init (int *argc, char ***argv, TestBackends *backends);
/* g_test_run(), then frees @backends; returns what g_test_run() returned. */
int  test_vm_suite_run (TestBackends *backends);

/* When @backend or the test guest is not available here: g_test_skip()
 * with the reason, and TRUE. */
gboolean test_backend_skip (const TestBackend *backend);
/* Boots the test guest once on @backend (a real hypervisor) and sets
 * guest_skip_reason when it does not run here: the hypervisor's own error
 * when it refuses the VM, or what was observed (the state it reports, an
 * empty console).  Stand-ins and qemu under TCG are not probed. */
void     test_backend_probe_guest (TestBackend *backend);
/* test_backend_skip(), and when @backend runs only as the caller here
 * (caller_user): g_test_skip() with what the hypervisor said when started
 * as a per-VM user (user_skip_reason), and TRUE.  For the tests of the
 * per-VM user itself. */
gboolean test_backend_skip_own_user (const TestBackend *backend);
/* test_backend_skip(), and when the guest of @backend does not run here
 * (guest_skip_reason): g_test_skip() with that reason, and TRUE. */
gboolean test_backend_skip_guest (const TestBackend *backend);

/* test_backend_skip() with the backend as a gconstpointer: the skip
 * function of test_netns_add() for cases whose data is a TestBackend. */
gboolean test_backend_skip_cb (gconstpointer backend);

/* test_guest_vm_new (backend, name, dir, cmdline_extra): a VM of the test
 * guest on @backend, with a console log in @dir and its runtime directory
 * under @dir.  @cmdline_extra is appended to the kernel command line (may
 * be NULL).  The three-argument form (name, dir, cmdline_extra) is a qemu
 * VM under TCG, as before backends existed. */
UvmVm *test_guest_vm_new_on (const TestBackend *backend, const char *name, const char *dir,
                             const char *cmdline_extra);
UvmVm *test_guest_vm_new_qemu (const char *name, const char *dir, const char *cmdline_extra);
#define TEST_GUEST_VM_NEW_PICK_(a, b, c, d, func, ...) func
#define test_guest_vm_new(...) \
  TEST_GUEST_VM_NEW_PICK_ (__VA_ARGS__, test_guest_vm_new_on, test_guest_vm_new_qemu, \
                           test_guest_vm_new_arguments_) (__VA_ARGS__)

/* A VM of the test guest (which must be available, also in a test's
 * subprocess) on @backend, as test_guest_vm_new(), with a NIC on @net. */
UvmVm *test_member_new (const TestBackend *backend, const char *dir, const char *name,
                        UvmNetwork *net, const char *cmdline_extra);

/* The name quoted after @marker in the launch plan of @vm (it must be
 * there); test_bridge_of() and test_tap_of() are the bridge and the tap
 * of its first NIC. */
char *test_plan_name (UvmVm *vm, const char *marker);
char *test_bridge_of (UvmVm *vm);
char *test_tap_of (UvmVm *vm);

/* The console log of test guest @name in @dir (see test_guest_vm_new()). */
char *test_console_path (const char *dir, const char *name);
/* Waits up to @timeout_ms for @text on the console of test guest @name in
 * @dir; fails the test, showing the console, when it does not come. */
void test_assert_console (const char *dir, const char *name, const char *text,
                          guint timeout_ms);

/* Iterates the default context until @path contains @text or @timeout_ms
 * passes.  Returns whether it appeared. */
gboolean test_wait_for_text (const char *path, const char *text, guint timeout_ms);
/* Whether a whole line with @text appears on the console of @vm within
 * @timeout_ms: for a running VM through uvm_vm_wait_for_console() (no
 * polling; output since its start counts), for one that stopped in its
 * console log. */
gboolean test_vm_wait_for_text (UvmVm *vm, const char *text, guint timeout_ms);

/* Iterates the default context until @vm reaches @state or @timeout_ms. */
gboolean test_wait_for_state (UvmVm *vm, UvmVmState state, guint timeout_ms);

/* Removes @path and everything below it; asserts on failure. */
void test_remove_tree (const char *path);

/* Writes @contents to @path; asserts on failure. */
void test_write_file (const char *path, const char *contents);

/* The value of @field ("Uid", "CapEff", "Seccomp", ...) in
 * /proc/@pid/status, or NULL when the file has no such field.  Free with
 * g_free(). */
char *test_proc_status_field (int pid, const char *field);

/* Number of open fds of this process. */
guint test_count_fds (void);

/* Records every event of a VM. */
typedef struct {
  GPtrArray *events;   /* UvmEvent* */
} EventLog;

void      event_log_attach (EventLog *log, UvmVm *vm);
void      event_log_clear (EventLog *log);
/* Index of the first event of @kind (and, for STATE_CHANGED, @state)
 * at or after @from, or -1. */
int       event_log_find (EventLog *log, guint from, UvmEventKind kind, UvmVmState state);
/* Index of the first event at or after @from whose hypervisor name
 * (uvm_event_get_name()) is @name, or -1. */
int       event_log_find_name (EventLog *log, guint from, const char *name);
/* The new states of the STATE_CHANGED events, in order, comma-separated
 * ("starting,running,..."). */
char     *event_log_states (EventLog *log);
char     *event_log_describe (EventLog *log);

/* Makes GLib's lazily made singletons, each with an eventfd (the default
 * main context, the worker context GTask's class makes), exist before any
 * test counts fds, also in a test run alone or in a subprocess.  Call from
 * main() after g_test_init(). */
void test_warm_up_glib (void);

/* The fixture of the suites that boot the test guest on a backend: the
 * backend (the test data), a temporary directory for the VMs, and the
 * number of open fds before the test. */
typedef struct {
  const TestBackend *b;
  char *dir;
  guint fds_before;
} TestVmFixture;

/* Fills @f: @backend, a new directory from @tmpl (for g_dir_make_tmp()),
 * the fd count. */
void test_vm_fixture_init (TestVmFixture *f, const TestBackend *backend, const char *tmpl);
/* Removes the directory and frees what test_vm_fixture_init() made. */
void test_vm_fixture_clear (TestVmFixture *f);
/* test_vm_fixture_clear() as the teardown for test_add_vm_tests(). */
void test_vm_fixture_teardown (TestVmFixture *f, gconstpointer data);

/* uvm_vm_start() / uvm_vm_stop (vm, 0, ...) of @vm, asserting success. */
void test_vm_start_ok (UvmVm *vm);
void test_vm_stop_ok (UvmVm *vm);
/* test_vm_start_ok(), then waits up to a minute for GUEST_READY on the
 * console, asserting it comes. */
void test_vm_start_and_boot (UvmVm *vm);
/* test_vm_start_and_boot() when the guest of @backend runs here; otherwise
 * (guest_skip_reason) only test_vm_start_ok() and RUNNING asserted, with a
 * test message that the console was not checked and why: for the tests
 * whose point is the control plane, not the guest. */
void test_vm_start_and_boot_on (const TestBackend *backend, UvmVm *vm);

/* Skips the test (returning from it) when the fixture's backend or the
 * test guest is not available here. */
#define SKIP_IF_UNAVAILABLE(f) \
  G_STMT_START { if (test_backend_skip ((f)->b)) return; } G_STMT_END

/* Skips the test (returning from it) when the fixture's backend, the test
 * guest, or the guest's run on this backend is not available here: for the
 * tests whose point is what the guest prints or does. */
#define SKIP_IF_NO_GUEST(f) \
  G_STMT_START { if (test_backend_skip_guest ((f)->b)) return; } G_STMT_END

/* Skips the test (returning from it) when the fixture's backend runs only
 * as the caller here: for the tests of the per-VM user. */
#define SKIP_IF_OWN_USER_REFUSED(f) \
  G_STMT_START { if (test_backend_skip_own_user ((f)->b)) return; } G_STMT_END

/* A test run on each backend: its path below the backend's name. */
typedef void (*TestVmFunc) (TestVmFixture *f, gconstpointer data);
typedef struct {
  const char *path;
  TestVmFunc func;
} TestVmCase;

/* Registers each of @tests as "@prefix/BACKEND/PATH" with @backend as the
 * test data, on a TestVmFixture set up and torn down by @setup and
 * @teardown. */
void test_add_vm_tests (const char *prefix, const TestBackend *backend,
                        const TestVmCase *tests, gsize n_tests,
                        GTestFixtureFunc setup, GTestFixtureFunc teardown);


G_END_DECLS
