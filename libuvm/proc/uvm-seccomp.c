/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc/uvm-seccomp.h"
#include "util/uvm-util.h"

#include <errno.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uvm/uvm.h>

static const int denied_families[] = { AF_INET, AF_INET6, AF_PACKET, AF_NETLINK };

/* The other ABIs a native process can enter the kernel through: each needs
 * its own rules, or a socket would be one `int $0x80` away. */
static const struct {
  guint32 native;
  guint32 compat;
} compat_arches[] = {
  { SCMP_ARCH_X86_64, SCMP_ARCH_X86 },
  { SCMP_ARCH_X86_64, SCMP_ARCH_X32 },
  { SCMP_ARCH_AARCH64, SCMP_ARCH_ARM },
};

void
uvm_seccomp_program_free (UvmSeccompProgram *program)
{
  if (program == NULL)
    return;
  g_free (program->filter);
  g_free (program);
}

/* seccomp_export_bpf() writes to an fd (libseccomp 2.5 has no in-memory
 * export): a memfd, read back whole. */
static UvmSeccompProgram *
export_program (scmp_filter_ctx ctx, GError **error)
{
  UvmSeccompProgram *program = NULL;
  g_autofree guint8 *bytes = NULL;
  gsize len = 0;
  off_t size;
  int rc, fd;

  fd = memfd_create ("uvm-seccomp", MFD_CLOEXEC);
  if (fd < 0)
    {
      uvm_set_error (error, UVM_ERROR_FAILED, "confinement filter: memfd_create: %s",
                     g_strerror (errno));
      return NULL;
    }
  rc = seccomp_export_bpf (ctx, fd);
  if (rc != 0)
    {
      uvm_set_error (error, UVM_ERROR_FAILED, "confinement filter: seccomp_export_bpf: %s",
                     g_strerror (-rc));
      goto out;
    }
  size = lseek (fd, 0, SEEK_END);
  if (size <= 0 || size % sizeof (struct sock_filter) != 0 ||
      size / sizeof (struct sock_filter) > BPF_MAXINSNS)
    {
      uvm_set_error (error, UVM_ERROR_FAILED,
                     "confinement filter: libseccomp exported %lld bytes, not a BPF program",
                     (long long) size);
      goto out;
    }
  bytes = g_malloc (size);
  while (len < (gsize) size)
    {
      ssize_t n = pread (fd, bytes + len, size - len, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          uvm_set_error (error, UVM_ERROR_FAILED, "confinement filter: reading it back: %s",
                         n < 0 ? g_strerror (errno) : "short read");
          goto out;
        }
      len += n;
    }
  program = g_new0 (UvmSeccompProgram, 1);
  program->len = size / sizeof (struct sock_filter);
  program->filter = (struct sock_filter *) g_steal_pointer (&bytes);

out:
  uvm_close_fd (&fd);
  return program;
}

UvmSeccompProgram *
uvm_seccomp_build_confinement (GError **error)
{
  UvmSeccompProgram *program = NULL;
  scmp_filter_ctx ctx;
  guint32 native = seccomp_arch_native ();
  const char *step = "seccomp_init";
  int rc = 0;

  /* A denylist: the hypervisor's own filter (qemu -sandbox, the allowlists
   * of cloud-hypervisor) decides everything else, and io_uring stays. */
  ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (ctx == NULL)
    {
      uvm_set_error (error, UVM_ERROR_FAILED, "confinement filter: seccomp_init failed");
      return NULL;
    }
  /* Unreachable where every ABI of the machine has rules (x86-64); on other
   * machines an ABI without rules fails as if the kernel lacked it, rather
   * than killing a hypervisor that a denylist means to leave alone. */
  step = "bad-architecture action";
  rc = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO (ENOSYS));
  for (guint i = 0; rc == 0 && i < G_N_ELEMENTS (compat_arches); i++)
    if (compat_arches[i].native == native)
      {
        step = "seccomp_arch_add";
        rc = seccomp_arch_add (ctx, compat_arches[i].compat);
      }
  for (guint i = 0; rc == 0 && i < G_N_ELEMENTS (denied_families); i++)
    {
      /* Masked to 32 bits: the kernel reads an int, so garbage in the upper
       * half of the register must not make AF_INET look like something
       * else.  On i386, libseccomp turns this into socketcall (SYS_SOCKET)
       * for any family (the arguments sit behind a pointer) plus the direct
       * socket syscall with the family checked. */
      step = "seccomp_rule_add (socket)";
      rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EACCES), SCMP_SYS (socket), 1,
                             SCMP_A0 (SCMP_CMP_MASKED_EQ, 0xffffffffu,
                                      (scmp_datum_t) denied_families[i]));
    }
  if (rc != 0)
    uvm_set_error (error, UVM_ERROR_FAILED, "confinement filter: %s: %s", step, g_strerror (-rc));
  else
    program = export_program (ctx, error);
  seccomp_release (ctx);
  return program;
}
