/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Golden launch plans: a set of VM definitions, each compared through the
 * public API (uvm_vm_get_launch_plan() and uvm_vm_get_command_line())
 * against tests/golden/NAME.plan and tests/golden/NAME.cmdline.
 *
 * The fake kernel, images and runtime dirs live in a temporary directory
 * whose path is replaced by "@TMP@" before comparing.  With
 * UVM_UPDATE_GOLDEN=1 in the environment the files are written instead:
 *
 *     UVM_UPDATE_GOLDEN=1 meson test -C build plan
 *
 * then read the diff of tests/golden/ before committing it.  Besides the
 * goldens, every plan is checked for properties that must hold whatever
 * the golden says (see check_plan_structure()), and every definition goes
 * through JSON (uvm_vm_to_json(), uvm_vm_new_from_json()) and back to the
 * same plan and command line. */

#include "uvm-test-util.h"

#include <json-glib/json-glib.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

/* ---- fixture ----------------------------------------------------------- */

typedef struct {
  char *tmp;        /* canonical path, as the library stores paths */
  char *kernel;
  char *initramfs;
} Fixture;

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  const char *base = g_get_tmp_dir ();
  g_autofree char *tmp = NULL;

  /* The goldens hold "@TMP@/vmlinuz" unquoted: a $TMPDIR that the shell
   * would quote (or qemu escape) cannot be replaced back to that. */
  if (!g_regex_match_simple ("^[A-Za-z0-9_./-]+$", base, 0, 0))
    base = "/tmp";
  tmp = g_build_filename (base, "uvm-test-plan-XXXXXX", NULL);
  g_assert_nonnull (g_mkdtemp (tmp));
  fx->tmp = g_canonicalize_filename (tmp, NULL);
  fx->kernel = g_build_filename (fx->tmp, "vmlinuz", NULL);
  fx->initramfs = g_build_filename (fx->tmp, "initramfs.img", NULL);
  test_write_file (fx->kernel, "not really a kernel\n");
  test_write_file (fx->initramfs, "not really an initramfs\n");
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  test_remove_tree (fx->tmp);
  g_assert_false (g_file_test (fx->tmp, G_FILE_TEST_EXISTS));
  g_free (fx->tmp);
  g_free (fx->kernel);
  g_free (fx->initramfs);
}

static char *
tmp_path (Fixture *fx, const char *name)
{
  return g_build_filename (fx->tmp, name, NULL);
}

/* A VM with the fake payload and its runtime dir at @TMP@/run/NAME. */
static UvmVm *
new_vm (Fixture *fx, const char *name, gboolean initramfs, const char *cmdline)
{
  UvmVm *vm = uvm_vm_new (name, UVM_HYPERVISOR_QEMU);
  g_autofree char *rundir = g_build_filename (fx->tmp, "run", name, NULL);

  uvm_vm_set_kernel (vm, fx->kernel, initramfs ? fx->initramfs : NULL, cmdline);
  uvm_vm_set_runtime_dir (vm, rundir);
  return vm;
}

/* An image file that exists, so that validation accepts it. */
static UvmStorage *
new_image (Fixture *fx, const char *name)
{
  g_autofree char *path = tmp_path (fx, name);

  test_write_file (path, "");
  return uvm_storage_new_image (path);
}

/* ---- comparing with the goldens ----------------------------------------- */

static char *
replace_all (const char *text, const char *needle, const char *replacement)
{
  g_autoptr(GString) out = g_string_new (text);

  g_string_replace (out, needle, replacement, 0);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* A line diff (longest common subsequence; the files are small), printed
 * unified-style: ' ' common, '-' only expected, '+' only got. */
static char *
line_diff (const char *expected, const char *got)
{
  g_auto(GStrv) a = g_strsplit (expected, "\n", -1);
  g_auto(GStrv) b = g_strsplit (got, "\n", -1);
  guint n = g_strv_length (a), m = g_strv_length (b);
  g_autofree guint *lcs = g_new0 (guint, (n + 1) * (m + 1));
  GString *out = g_string_new (NULL);
  guint i = 0, j = 0;

#define LCS(x, y) lcs[(x) * (m + 1) + (y)]
  for (guint x = n; x-- > 0;)
    for (guint y = m; y-- > 0;)
      LCS (x, y) = g_str_equal (a[x], b[y]) ? LCS (x + 1, y + 1) + 1
                                             : MAX (LCS (x + 1, y), LCS (x, y + 1));
  while (i < n || j < m)
    {
      if (i < n && j < m && g_str_equal (a[i], b[j]))
        g_string_append_printf (out, "  %s\n", a[i++]), j++;
      else if (i < n && (j == m || LCS (i + 1, j) >= LCS (i, j + 1)))
        g_string_append_printf (out, "- %s\n", a[i++]);
      else
        g_string_append_printf (out, "+ %s\n", b[j++]);
    }
#undef LCS
  return g_string_free (out, FALSE);
}

static void
check_golden (Fixture *fx, const char *name, const char *suffix, const char *raw)
{
  const char *srcdir = g_getenv ("UVM_TEST_SRCDIR");
  g_autofree char *file = g_strconcat (name, ".", suffix, NULL);
  g_autofree char *path = NULL;
  g_autofree char *got = replace_all (raw, fx->tmp, "@TMP@");
  g_autofree char *expected = NULL;
  g_autoptr(GError) error = NULL;

  if (srcdir == NULL)
    {
      g_test_fail_printf ("UVM_TEST_SRCDIR is not set: run through meson test, or set it to "
                          "the tests source directory");
      return;
    }
  path = g_build_filename (srcdir, "golden", file, NULL);

  if (g_strcmp0 (g_getenv ("UVM_UPDATE_GOLDEN"), "1") == 0)
    {
      g_autofree char *dir = g_path_get_dirname (path);

      g_assert_no_errno (g_mkdir_with_parents (dir, 0755));
      g_file_set_contents (path, got, -1, &error);
      g_assert_no_error (error);
      g_test_message ("UVM_UPDATE_GOLDEN=1: wrote %s; review it before committing", path);
      return;
    }

  if (!g_file_get_contents (path, &expected, NULL, &error))
    {
      g_test_fail_printf ("golden file %s cannot be read (%s); create it with "
                          "UVM_UPDATE_GOLDEN=1 and review it", path, error->message);
      return;
    }
  if (!g_str_equal (expected, got))
    {
      g_autofree char *diff = line_diff (expected, got);

      g_test_message ("--- expected %s\n+++ got\n%s", path, diff);
      g_test_fail_printf ("%s differs from its golden file %s (diff above; if the change "
                          "is intended, rerun with UVM_UPDATE_GOLDEN=1 and review)",
                          file, path);
    }
}

/* ---- properties every plan has ------------------------------------------ */

/* The argv of the plan's `exec` line (a shell script with one option per
 * line, continued with backslash-newline). */
static GStrv
plan_exec_argv (const char *plan)
{
  const char *start = strstr (plan, "\nexec ");
  const char *end;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  char **argv = NULL;

  g_assert_nonnull (start);
  start += strlen ("\nexec ");
  end = strstr (start, "\n# control requests after spawn");
  g_assert_nonnull (end);
  text = g_strndup (start, end - start);
  g_shell_parse_argv (text, NULL, &argv, &error);
  g_assert_no_error (error);
  return argv;
}

static GStrv
cmdline_argv (const char *cmdline)
{
  g_autoptr(GError) error = NULL;
  char **argv = NULL;

  g_assert_null (strchr (cmdline, '\n'));   /* one line */
  g_shell_parse_argv (cmdline, NULL, &argv, &error);
  g_assert_no_error (error);
  return argv;
}

static gboolean
strv_contains_substring (const char *const *strv, const char *needle)
{
  for (guint i = 0; strv[i] != NULL; i++)
    if (strstr (strv[i], needle) != NULL)
      return TRUE;
  return FALSE;
}

/* The hypervisor's part of a command line: what follows the helpers'
 * commands, each ended by "&". */
static GStrv
hypervisor_argv (GStrv argv)
{
  guint start = 0;

  for (guint i = 0; argv[i] != NULL; i++)
    if (g_str_equal (argv[i], "&"))
      start = i + 1;
  return g_strdupv (argv + start);
}

/* "...,addr.str=N" (a stream netdev on an inherited fd). */
static gboolean
strv_ends_with_addr_str (const char *const *strv, int fd)
{
  g_autofree char *suffix = g_strdup_printf (",addr.str=%d", fd);

  for (guint i = 0; strv[i] != NULL; i++)
    if (g_str_has_suffix (strv[i], suffix))
      return TRUE;
  return FALSE;
}

static void
check_plan_structure (const char *plan, const char *cmdline)
{
  g_auto(GStrv) full_argv = cmdline_argv (cmdline);
  g_auto(GStrv) argv = hypervisor_argv (full_argv);
  g_auto(GStrv) exec_argv = plan_exec_argv (plan);
  g_auto(GStrv) lines = g_strsplit (plan, "\n", -1);
  int next_fd = 3;

  /* The script and the command line say the same thing. */
  g_assert_true (g_strv_equal ((const char *const *) argv, (const char *const *) exec_argv));
  g_assert_true (g_str_has_prefix (plan, "#!/bin/sh\n"));

  /* Never the distribution's or the user's defaults. */
  g_assert_true (g_strv_contains ((const char *const *) argv, "-nodefaults"));
  g_assert_true (g_strv_contains ((const char *const *) argv, "-no-user-config"));

  /* Every fd the plan lists is named on the command line, numbered from 3
   * up without gaps; and every fd the command line names is listed. */
  for (guint i = 0; lines[i] != NULL; i++)
    {
      int fd;
      g_autofree char *fd_ref = NULL;
      g_autofree char *str_ref = NULL;
      g_autofree char *proc_ref = NULL;
      g_autofree char *json_ref = NULL;

      if (!g_str_has_prefix (lines[i], "# fd ") || g_str_has_prefix (lines[i], "# fd 0:"))
        continue;
      fd = atoi (lines[i] + strlen ("# fd "));
      g_assert_cmpint (fd, ==, next_fd);
      next_fd++;
      fd_ref = g_strdup_printf ("fd=%d,", fd);
      str_ref = g_strdup_printf ("local.str=%d", fd);
      proc_ref = g_strdup_printf ("/proc/self/fd/%d", fd);
      json_ref = g_strdup_printf ("\"/proc/self/fd/%d\"", fd);
      /* A file the hypervisor reopens is named /proc/self/fd/N on the
       * command line (qemu) or in the vm.create request (cloud-hypervisor). */
      g_assert_true (strv_contains_substring ((const char *const *) argv, fd_ref) ||
                     strv_contains_substring ((const char *const *) argv, str_ref) ||
                     strv_ends_with_addr_str ((const char *const *) argv, fd) ||
                     g_strv_contains ((const char *const *) argv, proc_ref) ||
                     strstr (plan, json_ref) != NULL);
    }
  for (int fd = next_fd; fd < next_fd + 8; fd++)
    {
      g_autofree char *fd_ref = g_strdup_printf ("fd=%d,", fd);
      g_autofree char *str_ref = g_strdup_printf ("local.str=%d", fd);

      g_assert_false (strv_contains_substring ((const char *const *) argv, fd_ref));
      g_assert_false (strv_contains_substring ((const char *const *) argv, str_ref));
      g_assert_false (strv_ends_with_addr_str ((const char *const *) argv, fd));
    }
}

/* ---- every golden definition round-trips through JSON -------------------- */

/* uvm_vm_to_json() then uvm_vm_new_from_json(): the copy's plan and command
 * line are @vm's, and writing the copy gives the same document. */
static void
check_json_round_trip (UvmVm *vm, const char *plan, const char *cmdline)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = uvm_vm_to_json (vm, &error);
  g_autoptr(UvmVm) copy = NULL;
  g_autofree char *copy_plan = NULL;
  g_autofree char *copy_cmdline = NULL;
  g_autofree char *copy_json = NULL;

  g_assert_no_error (error);
  copy = uvm_vm_new_from_json (json, &error);
  g_assert_no_error (error);
  copy_plan = uvm_vm_get_launch_plan (copy, &error);
  g_assert_no_error (error);
  copy_cmdline = uvm_vm_get_command_line (copy, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (copy_plan, ==, plan);
  g_assert_cmpstr (copy_cmdline, ==, cmdline);
  copy_json = uvm_vm_to_json (copy, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (copy_json, ==, json);
}

/* Plan and command line of @vm: checked for structure, then against the
 * goldens NAME.plan and NAME.cmdline, then through JSON and back. */
static void
check_vm (Fixture *fx, UvmVm *vm, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = uvm_vm_get_launch_plan (vm, &error);
  g_autofree char *cmdline = NULL;
  g_autofree char *cmdline_nl = NULL;

  g_assert_no_error (error);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  check_plan_structure (plan, cmdline);

  cmdline_nl = g_strconcat (cmdline, "\n", NULL);
  check_golden (fx, name, "plan", plan);
  check_golden (fx, name, "cmdline", cmdline_nl);
  check_json_round_trip (vm, plan, cmdline);
}

/* ---- the definitions ----------------------------------------------------- */

/* Only a kernel: every default of the qemu backend (q35, 1 vCPU, 256 MiB,
 * KVM with TCG fallback). */
static void
test_golden_q35_minimal (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "minimal", FALSE, NULL);

  check_vm (fx, vm, "q35-minimal");
}

/* microvm: virtio-mmio devices, no pvpanic; TCG only; the console in the
 * runtime dir; an isolated link whose end is fd 4 (after the control
 * socket's fd 3). */
static void
test_golden_microvm_rng_console_isolated (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "micro", TRUE, "console=ttyS0 reboot=t");
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");

  uvm_vm_set_machine (vm, UVM_MACHINE_MICROVM);
  uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  check_vm (fx, vm, "microvm-rng-console-isolated");
}

/* pc: a read-only raw disk, a writable qcow2 disk, a user-mode uplink, and
 * a console log whose path has a comma (doubled in the qemu option) and a
 * space (shell-quoted). */
static void
test_golden_pc_disks_uplink_console (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "pc-box", TRUE, "console=ttyS0 root=/dev/vda ro");
  g_autoptr(UvmStorage) base = new_image (fx, "base.img");
  g_autoptr(UvmStorage) data_disk = new_image (fx, "data.qcow2");
  g_autoptr(UvmNetwork) wan = uvm_network_new_uplink ("wan");
  g_autofree char *log = tmp_path (fx, "logs/console, serial.log");

  uvm_vm_set_machine (vm, UVM_MACHINE_PC);
  uvm_storage_set_read_only (base, TRUE);
  uvm_storage_set_format (data_disk, UVM_STORAGE_FORMAT_QCOW2);
  uvm_vm_add_device (vm, uvm_device_new_disk (base));
  uvm_vm_add_device (vm, uvm_device_new_disk (data_disk));
  uvm_vm_add_device (vm, uvm_device_new_net (wan, NULL));
  uvm_vm_add_device (vm, uvm_device_new_console (log));
  check_vm (fx, vm, "pc-disks-uplink-console");
}

/* q35 with a hotpluggable disk (on a root port of its own) next to a fixed
 * rng, 2 vCPUs, 1 GiB, KVM only, started paused, and extra arguments with
 * spaces and quotes that must reach qemu unsplit. */
static const char *const tuned_extra_args[] = {
  "-fw_cfg", "name=opt/uvm/motd,string=it's a \"test\"",
  "-smbios", "type=11,value=hello world",
  NULL
};

static void
test_golden_q35_hotplug_kvm_paused_extra (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "tuned", TRUE, "console=ttyS0 quiet");
  g_autoptr(UvmStorage) hot = new_image (fx, "hot.img");
  UvmDevice *disk = uvm_device_new_disk (hot);

  uvm_vm_set_machine (vm, UVM_MACHINE_Q35);
  uvm_vm_set_vcpus (vm, 2);
  uvm_vm_set_memory (vm, UVM_GIB);
  uvm_vm_set_accel (vm, UVM_ACCEL_KVM);
  uvm_vm_set_start_paused (vm, TRUE);
  uvm_vm_set_extra_args (vm, tuned_extra_args);
  uvm_device_set_hotpluggable (disk, TRUE);
  uvm_vm_add_device (vm, disk);
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  check_vm (fx, vm, "q35-hotplug-kvm-paused-extra");
}

/* Firmware boot: no kernel, so no -kernel/-initrd/-append; the first disk
 * (raw) gets bootindex=0 for SeaBIOS, the second (qcow2) none; the console
 * is the first serial port, where a boot loader writes. */
static void
test_golden_q35_firmware_diskboot (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("diskboot", UVM_HYPERVISOR_QEMU);
  g_autofree char *rundir = g_build_filename (fx->tmp, "run", "diskboot", NULL);
  g_autoptr(UvmStorage) boot = new_image (fx, "boot.img");
  g_autoptr(UvmStorage) data_disk = new_image (fx, "data.qcow2");

  uvm_vm_set_runtime_dir (vm, rundir);
  uvm_vm_set_accel (vm, UVM_ACCEL_TCG);
  uvm_storage_set_format (data_disk, UVM_STORAGE_FORMAT_QCOW2);
  uvm_vm_add_device (vm, uvm_device_new_disk (boot));
  uvm_vm_add_device (vm, uvm_device_new_disk (data_disk));
  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  check_vm (fx, vm, "q35-firmware-diskboot");
}

/* Both VMs in one document (uvm_vms_to_json()): read back, they share one
 * network object again, and each plan is the original's. */
static void
check_json_pair_round_trip (UvmVm *left, UvmVm *right)
{
  UvmVm *const vms[] = { left, right };
  g_autoptr(GError) error = NULL;
  g_autofree char *json = uvm_vms_to_json (vms, G_N_ELEMENTS (vms), &error);
  g_autoptr(GPtrArray) copies = NULL;

  g_assert_no_error (error);
  copies = uvm_vms_new_from_json (json, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (copies->len, ==, 2);
  g_assert_true (uvm_device_get_network (uvm_vm_get_device (copies->pdata[0], 0)) ==
                 uvm_device_get_network (uvm_vm_get_device (copies->pdata[1], 0)));
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *plan = uvm_vm_get_launch_plan (vms[i], &error);
      g_autofree char *copy_plan = NULL;
      g_autofree char *cmdline = uvm_vm_get_command_line (vms[i], &error);
      g_autofree char *copy_cmdline = NULL;

      g_assert_no_error (error);
      copy_plan = uvm_vm_get_launch_plan (copies->pdata[i], &error);
      g_assert_no_error (error);
      copy_cmdline = uvm_vm_get_command_line (copies->pdata[i], &error);
      g_assert_no_error (error);
      g_assert_cmpstr (copy_plan, ==, plan);
      g_assert_cmpstr (copy_cmdline, ==, cmdline);
    }
}

/* Two VMs on one isolated network: each gets its own end as fd 4. */
static void
test_golden_isolated_pair (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("link");
  g_autoptr(UvmVm) left = new_vm (fx, "left", TRUE, "console=ttyS0");
  g_autoptr(UvmVm) right = new_vm (fx, "right", TRUE, "console=ttyS0");

  uvm_vm_add_device (left, uvm_device_new_net (net, NULL));
  uvm_vm_add_device (right, uvm_device_new_net (net, NULL));
  check_vm (fx, left, "isolated-pair-left");
  check_vm (fx, right, "isolated-pair-right");
  check_json_pair_round_trip (left, right);
}

/* A confined gateway with a passt uplink and an isolated link: passt is a
 * helper started first, with its own fd 3 (its end of the stream socket
 * pair) and its log in the runtime dir; qemu's end is fd 4, after the
 * control socket, and the link's end fd 5.  Confinement applies to qemu
 * only and allows the passt uplink. */
static void
test_golden_qemu_passt_confined (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "gw", TRUE, "console=ttyS0");
  g_autoptr(UvmNetwork) wan = uvm_network_new_uplink ("wan");
  g_autoptr(UvmNetwork) lan = uvm_network_new_isolated ("lan");
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = NULL;
  g_autofree char *cmdline = NULL;
  g_auto(GStrv) argv = NULL;

  uvm_network_set_uplink_mode (wan, UVM_UPLINK_PASST);
  uvm_vm_set_confined (vm, TRUE);
  uvm_vm_add_device (vm, uvm_device_new_net (wan, NULL));
  uvm_vm_add_device (vm, uvm_device_new_net (lan, NULL));
  check_vm (fx, vm, "qemu-passt-confined");

  /* passt's own line, ahead of qemu's, names its fd 3. */
  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (plan, "\n#   fd 3: net0: passt's end of the stream socket pair"));
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  argv = cmdline_argv (cmdline);
  g_assert_cmpstr (argv[0], ==, "passt");
  for (guint i = 0; argv[i] != NULL && !g_str_equal (argv[i], "&"); i++)
    if (g_str_equal (argv[i], "--fd"))
      g_assert_cmpstr (argv[i + 1], ==, "3");
  g_assert_true (g_strv_contains ((const char *const *) argv, "--no-map-gw"));
}

/* ---- cloud-hypervisor ---------------------------------------------------- */

/* The JSON body of the "PUT .../ENDPOINT {...}" request line of a plan. */
static JsonNode *
plan_request_body (const char *plan, const char *endpoint)
{
  g_autofree char *needle = g_strdup_printf ("PUT /api/v1/%s ", endpoint);
  const char *start = strstr (plan, needle);
  g_autofree char *line = NULL;
  g_autoptr(GError) error = NULL;
  JsonNode *node;
  const char *end;

  g_assert_nonnull (start);
  start += strlen (needle);
  end = strchr (start, '\n');
  line = g_strndup (start, end - start);
  /* vm.add-net lines end with a note on the fd that goes with them. */
  if (strstr (line, " + fd") != NULL)
    *strstr (line, " + fd") = '\0';
  node = json_from_string (line, &error);
  g_assert_no_error (error);
  return node;
}

/* Checked as check_vm() does, with what only cloud-hypervisor's plans
 * have (the payload in vm.create), then through JSON and back. */
static void
check_ch_vm (Fixture *fx, UvmVm *vm, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = uvm_vm_get_launch_plan (vm, &error);
  g_autofree char *cmdline = uvm_vm_get_command_line (vm, NULL);
  g_autofree char *cmdline_nl = NULL;
  g_autoptr(JsonNode) config = NULL;
  g_autofree char *kernel_line = NULL;
  JsonObject *payload;

  g_assert_no_error (error);
  /* No payload on the command line: everything goes through vm.create. */
  g_assert_nonnull (strstr (cmdline, "--api-socket fd=3 --event-monitor fd=4"));
  g_assert_null (strstr (cmdline, "--kernel"));
  g_assert_nonnull (strstr (plan, "# fd 3: control socket (REST API)"));
  g_assert_nonnull (strstr (plan, "# fd 4: event monitor"));
  config = plan_request_body (plan, "vm.create");
  payload = json_object_get_object_member (json_node_get_object (config), "payload");
  /* The kernel is an fd the library opened, named through /proc. */
  g_assert_cmpstr (json_object_get_string_member (payload, "kernel"), ==, "/proc/self/fd/5");
  kernel_line = g_strdup_printf ("# fd 5: kernel '%s' (read-only", fx->kernel);
  g_assert_nonnull (strstr (plan, kernel_line));

  cmdline_nl = g_strconcat (cmdline, "\n", NULL);
  check_golden (fx, name, "plan", plan);
  check_golden (fx, name, "cmdline", cmdline_nl);
  check_json_round_trip (vm, plan, cmdline);
}

/* Disks (read-only raw, qcow2), rng, the console, 2 vCPUs, 1 GiB. */
static void
test_golden_ch_disks_rng_console (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("ch", UVM_HYPERVISOR_CLOUD_HYPERVISOR);
  g_autofree char *rundir = g_build_filename (fx->tmp, "run", NULL);
  g_autofree char *base = g_build_filename (fx->tmp, "base.img", NULL);
  g_autofree char *data_img = g_build_filename (fx->tmp, "data.qcow2", NULL);
  g_autoptr(UvmStorage) ro = NULL, rw = NULL;

  test_write_file (base, "");
  test_write_file (data_img, "");
  ro = uvm_storage_new_image (base);
  rw = uvm_storage_new_image (data_img);
  uvm_storage_set_read_only (ro, TRUE);
  uvm_storage_set_format (rw, UVM_STORAGE_FORMAT_QCOW2);
  uvm_vm_set_kernel (vm, fx->kernel, fx->initramfs, "console=ttyS0 quiet");
  uvm_vm_set_runtime_dir (vm, rundir);
  uvm_vm_set_vcpus (vm, 2);
  uvm_vm_set_memory (vm, UVM_GIB);
  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  uvm_vm_add_device (vm, uvm_device_new_rng ());
  uvm_vm_add_device (vm, uvm_device_new_disk (ro));
  uvm_vm_add_device (vm, uvm_device_new_disk (rw));
  check_ch_vm (fx, vm, "ch-disks-rng-console");
}

/* A tap NIC: its fd is not inherited but sent with vm.add-net; started
 * paused, so no vm.boot.  Validation only checks that the interface
 * exists, and the plan is pure, so the loopback interface stands in for a
 * tap here. */
static void
test_golden_ch_tap_paused (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = uvm_vm_new ("chtap", UVM_HYPERVISOR_CLOUD_HYPERVISOR);
  g_autoptr(UvmNetwork) tap = uvm_network_new_tap ("wan", "lo");
  g_autofree char *rundir = g_build_filename (fx->tmp, "run", NULL);
  g_autoptr(JsonNode) net = NULL;
  g_autofree char *plan = NULL;

  uvm_vm_set_kernel (vm, fx->kernel, NULL, NULL);
  uvm_vm_set_runtime_dir (vm, rundir);
  uvm_vm_set_start_paused (vm, TRUE);
  uvm_vm_add_device (vm, uvm_device_new_net (tap, NULL));
  check_ch_vm (fx, vm, "ch-tap-paused");

  plan = uvm_vm_get_launch_plan (vm, NULL);
  g_assert_null (strstr (plan, "vm.boot"));
  g_assert_nonnull (strstr (plan, "# fd s1, sent over the control socket: net0: tap 'lo'"));
  net = plan_request_body (plan, "vm.add-net");
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (net), "mac"), ==,
                   uvm_device_get_mac (uvm_vm_get_device (vm, 0)));
}

/* ---- specific promises -------------------------------------------------- */

/* A VM whose start would create a runtime dir, a console log in it, a
 * control socket and an isolated link (a socket pair). */
static UvmVm *
new_vm_with_everything (Fixture *fx, UvmNetwork *net)
{
  UvmVm *vm = new_vm (fx, "pure", TRUE, NULL);

  uvm_vm_add_device (vm, uvm_device_new_console (NULL));
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  return vm;
}

static void
test_launch_plan_is_pure (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) vm = new_vm_with_everything (fx, net);
  g_autofree char *run = tmp_path (fx, "run");
  g_autofree char *plan = NULL;
  g_autoptr(GError) error = NULL;
  guint fds = test_count_fds ();

  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (plan);
  g_assert_false (g_file_test (run, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, fds);
  g_assert_cmpint (uvm_vm_get_state (vm), ==, UVM_VM_STATE_DEFINED);
}

static void
test_command_line_is_pure (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan");
  g_autoptr(UvmVm) vm = new_vm_with_everything (fx, net);
  g_autofree char *run = tmp_path (fx, "run");
  g_autofree char *cmdline = NULL;
  g_autoptr(GError) error = NULL;
  guint fds = test_count_fds ();

  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cmdline);
  g_assert_false (g_file_test (run, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (test_count_fds (), ==, fds);
}

static void
test_extra_args_reach_the_command_line_unsplit (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "extra", FALSE, NULL);
  g_autofree char *cmdline = NULL;
  g_auto(GStrv) argv = NULL;
  g_autoptr(GError) error = NULL;
  guint n, k = G_N_ELEMENTS (tuned_extra_args) - 1;

  uvm_vm_set_extra_args (vm, tuned_extra_args);
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  argv = cmdline_argv (cmdline);
  n = g_strv_length (argv);
  g_assert_cmpuint (n, >, k);
  for (guint i = 0; i < k; i++)
    g_assert_cmpstr (argv[n - k + i], ==, tuned_extra_args[i]);
}

static void
test_commas_in_option_values_are_doubled (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "commas", FALSE, NULL);
  g_autoptr(UvmStorage) image = new_image (fx, "a,b, c.img");
  g_autofree char *expected = NULL;
  g_autofree char *cmdline = NULL;
  g_auto(GStrv) argv = NULL;
  g_autoptr(GError) error = NULL;

  uvm_vm_add_device (vm, uvm_device_new_disk (image));
  cmdline = uvm_vm_get_command_line (vm, &error);
  g_assert_no_error (error);
  argv = cmdline_argv (cmdline);
  /* The path reaches qemu as the opaque label of the disk's fd set
   * (fd 3: control socket, 4: kernel, 5: disk).  (Up to 0.2 the console
   * file was the carrier; the console now goes through its relay.) */
  expected = g_strdup_printf ("fd=5,set=5,opaque=%s/a,,b,, c.img", fx->tmp);
  g_assert_true (g_strv_contains ((const char *const *) argv, expected));
  g_assert_true (g_strv_contains ((const char *const *) argv,
                                  "driver=raw,node-name=disk0-be,read-only=off,file.driver=file,"
                                  "file.filename=/dev/fdset/5"));
}

/* The plan is meant to be read and run as a shell script: text that comes
 * from the caller (a runtime dir, a network name) must not turn a comment
 * line into a command. */
static void
test_plan_comments_cannot_become_commands (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmNetwork) net = uvm_network_new_isolated ("lan\ntouch network-name-ran");
  g_autoptr(UvmVm) vm = uvm_vm_new ("vm", UVM_HYPERVISOR_QEMU);
  g_autofree char *rundir = tmp_path (fx, "run\ntouch runtime-dir-ran\n");
  g_autofree char *plan = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;
  gboolean in_exec = FALSE;
  GString *commands = g_string_new (NULL);
  g_autofree char *found = NULL;

  uvm_vm_set_kernel (vm, fx->kernel, NULL, NULL);
  uvm_vm_set_runtime_dir (vm, rundir);
  uvm_vm_add_device (vm, uvm_device_new_net (net, NULL));
  plan = uvm_vm_get_launch_plan (vm, &error);
  g_assert_no_error (error);

  /* Outside the exec command (and its continuation lines), every line is
   * a comment. */
  lines = g_strsplit (plan, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];

      if (g_str_has_prefix (line, "exec "))
        in_exec = TRUE;
      if (in_exec)
        {
          in_exec = g_str_has_suffix (line, "\\");
          continue;
        }
      if (line[0] != '\0' && line[0] != '#')
        g_string_append_printf (commands, "  %s\n", line);
    }
  found = g_string_free (commands, FALSE);
  /* Names and paths are escaped in comment lines (\x0a), so a newline in
   * them cannot start a line the shell would run. */
  if (found[0] != '\0')
    g_test_message ("lines of the plan that a shell would run:\n%s", found);
  g_assert_cmpstr (found, ==, "");
  g_assert_nonnull (strstr (plan, "lan\\x0atouch network-name-ran"));
}

/* ---- the VM user (uvm_vm_set_user()) --------------------------------------- */

static void
test_user_is_dynamic_until_set (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "user", FALSE, NULL);
  g_autofree char *plan = NULL;

  g_assert_cmpuint (uvm_vm_get_user (vm), ==, UVM_USER_DYNAMIC);
  g_assert_cmpuint (uvm_vm_get_group (vm), ==, UVM_USER_DYNAMIC);
  g_assert_false (uvm_vm_get_run_user (vm, NULL, NULL));
  plan = uvm_vm_get_launch_plan (vm, NULL);
  g_assert_nonnull (strstr (plan, "\n# user: dynamic (as root: a uid of its own, 2000000000 to "
                                  "2000065535; otherwise the caller's)"));
}

static void
test_launch_plan_names_the_user_set (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "user", FALSE, NULL);
  g_autofree char *explicit_plan = NULL, *caller_plan = NULL;

  uvm_vm_set_user (vm, 4242, 4343);
  explicit_plan = uvm_vm_get_launch_plan (vm, NULL);
  g_assert_nonnull (strstr (explicit_plan, "\n# user: uid 4242 gid 4343, for the hypervisor "
                                           "and its helpers"));
  uvm_vm_set_user (vm, UVM_USER_CALLER, 4343);
  g_assert_cmpuint (uvm_vm_get_group (vm), ==, UVM_USER_CALLER);
  caller_plan = uvm_vm_get_launch_plan (vm, NULL);
  g_assert_nonnull (strstr (caller_plan, "\n# user: the caller's, for the hypervisor"));
}

static void
test_special_gid_with_a_real_uid_means_the_uid (Fixture *fx, gconstpointer data)
{
  g_autoptr(UvmVm) vm = new_vm (fx, "user", FALSE, NULL);

  /* Never -1 (setresgid's "keep root's group"). */
  uvm_vm_set_user (vm, 5000, UVM_USER_DYNAMIC);
  g_assert_cmpuint (uvm_vm_get_user (vm), ==, 5000);
  g_assert_cmpuint (uvm_vm_get_group (vm), ==, 5000);
}

/* ---- main ---------------------------------------------------------------- */

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/plan/golden/q35-minimal", test_golden_q35_minimal);
  ADD ("/plan/golden/microvm-rng-console-isolated", test_golden_microvm_rng_console_isolated);
  ADD ("/plan/golden/pc-disks-uplink-console", test_golden_pc_disks_uplink_console);
  ADD ("/plan/golden/q35-hotplug-kvm-paused-extra", test_golden_q35_hotplug_kvm_paused_extra);
  ADD ("/plan/golden/isolated-pair", test_golden_isolated_pair);
  ADD ("/plan/golden/qemu-passt-confined", test_golden_qemu_passt_confined);
  ADD ("/plan/golden/q35-firmware-diskboot", test_golden_q35_firmware_diskboot);

  ADD ("/plan/launch-plan-is-pure", test_launch_plan_is_pure);
  ADD ("/plan/command-line-is-pure", test_command_line_is_pure);
  ADD ("/plan/extra-args-reach-the-command-line-unsplit",
       test_extra_args_reach_the_command_line_unsplit);
  ADD ("/plan/commas-in-option-values-are-doubled", test_commas_in_option_values_are_doubled);
  ADD ("/plan/comments-cannot-become-commands", test_plan_comments_cannot_become_commands);
  ADD ("/plan/golden/ch-disks-rng-console", test_golden_ch_disks_rng_console);
  ADD ("/plan/golden/ch-tap-paused", test_golden_ch_tap_paused);
  ADD ("/plan/user/is-dynamic-until-set", test_user_is_dynamic_until_set);
  ADD ("/plan/user/launch-plan-names-the-user-set", test_launch_plan_names_the_user_set);
  ADD ("/plan/user/special-gid-with-a-real-uid-means-the-uid",
       test_special_gid_with_a_real_uid_means_the_uid);

  return g_test_run ();
}
