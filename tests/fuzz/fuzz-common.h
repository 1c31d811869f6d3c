/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the fuzz harnesses share.  Each harness defines the libFuzzer entry
 * point LLVMFuzzerTestOneInput(); it is linked either with libFuzzer (the
 * fuzz-NAME executables of a -Dfuzzing=true clang build) or with
 * corpus-runner.c (the fuzz-corpus-NAME tests of every build). */
#pragma once

#include <glib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

G_BEGIN_DECLS

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A property of the code under test that must hold for every input: its
 * failure is a finding, so it aborts (libFuzzer then saves the input),
 * whatever NDEBUG or G_DISABLE_ASSERT say. */
#define FUZZ_CHECK(cond)                                                      \
  G_STMT_START {                                                              \
    if (G_UNLIKELY (!(cond)))                                                 \
      {                                                                       \
        fprintf (stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort ();                                                             \
      }                                                                       \
  } G_STMT_END

/* A warning or a critical from the library on any input is a finding (a
 * critical is a precondition the library broke itself): both abort, also
 * under libFuzzer, which sets no G_DEBUG. */
static inline void
fuzz_fatal_warnings (void)
{
  static gsize once;

  if (g_once_init_enter (&once))
    {
      g_log_set_always_fatal (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      g_once_init_leave (&once, 1);
    }
}

G_END_DECLS
