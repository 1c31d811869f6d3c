/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the protocol and transport unit tests (test-qmp,
 * test-http, test-ch-events, test-stream): driving the main loop with a
 * timeout, counting open fds, and a scripted peer on the other end of a
 * socketpair.  GLib only, so that it links with the internal library. */
#pragma once

#include <glib.h>

#include <sys/stat.h>

G_BEGIN_DECLS

/* A GSourceFunc that does nothing and stays: the wake-up of WAIT_UNTIL(). */
gboolean peer_util_wake_up (gpointer data);

/* Iterates the default main context until @cond holds; a bug fails the test
 * after a few seconds instead of hanging the suite.  The 10 ms wake-up keeps
 * a blocking iteration from sleeping past a condition that does not depend
 * on a source (bytes arriving at the peer). */
#define WAIT_UNTIL(cond)                                                      \
  G_STMT_START {                                                              \
    gint64 wait_deadline_ = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;     \
    guint wait_wake_ = g_timeout_add (10, peer_util_wake_up, NULL);           \
    while (!(cond))                                                           \
      {                                                                       \
        if (g_get_monotonic_time () > wait_deadline_)                         \
          g_error ("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #cond); \
        g_main_context_iteration (NULL, TRUE);                                \
      }                                                                       \
    g_source_remove (wait_wake_);                                             \
  } G_STMT_END

/* Dispatches whatever is ready now, a bounded number of times. */
void iterate_briefly (void);

/* Number of entries of /proc/self/fd (the directory's own fd included). */
guint count_open_fds (void);

/* The scripted peer: the test's end of a socketpair, with what it received. */
typedef struct {
  int      fd;
  GString *in;        /* received bytes not yet taken (as lines, requests) */
  GArray  *fds;       /* fds received with SCM_RIGHTS */
  gssize   fd_offset; /* offset in the stream of the byte carrying them */
  gsize    consumed;  /* bytes of the stream already taken */
  gboolean eof;
} Peer;

/* Makes a socketpair, keeps one end in @peer and returns the other (the
 * client's). */
int peer_open (Peer *peer);

/* Closes the fds received so far and forgets them. */
void peer_close_fds (Peer *peer);

/* Closes the peer's end (the client sees EOF); idempotent. */
void peer_hang_up (Peer *peer);

/* Hangs up and frees everything @peer holds. */
void peer_clear (Peer *peer);

/* Writes all @len bytes of @data (or all of @text), asserting success. */
void peer_write_len (Peer *peer, const char *data, gsize len);
void peer_write (Peer *peer, const char *text);

/* Takes whatever the client sent so far, without blocking: bytes go to
 * peer->in, SCM_RIGHTS fds to peer->fds (and their offset to
 * peer->fd_offset), EOF sets peer->eof. */
void peer_receive (Peer *peer);

/* Receives what is there; TRUE once the client closed its end. */
gboolean peer_sees_eof (Peer *peer);

/* Bytes the client wrote that the peer has not received yet (FIONREAD). */
gsize peer_bytes_waiting (Peer *peer);

/* Asserts that @fd (one the peer received) is the file @original was
 * taken of (same device and inode). */
void peer_assert_same_file (int fd, const struct stat *original);

G_END_DECLS
