/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the fd watches (util/uvm-fd-watch.h): one epoll fd per
 * main context behind one GSource.  Each test runs its own context and
 * turns it one iteration at a time, so "fires" means "in that iteration". */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif

#include "util/uvm-fd-watch.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

typedef struct Rec Rec;
struct Rec {
  UvmFdWatch  *watch;
  guint        calls;
  GIOCondition last;
  /* Optional behaviour inside the callback. */
  gboolean     remove_self;
  UvmFdWatch **remove_other; /* removes *remove_other and clears it */
  GMainContext *add_in;      /* adds added_watch on add_fd, once */
  int          add_fd;
  Rec         *added;
  GMainContext *nest_in;     /* iterates it (once per call) from inside */
  gboolean     running;
  gboolean     reentered;
};

static gboolean
on_fd (G_GNUC_UNUSED int fd, GIOCondition condition, gpointer user_data)
{
  Rec *rec = user_data;

  if (rec->running)
    rec->reentered = TRUE;
  rec->running = TRUE;
  rec->calls++;
  rec->last = condition;
  if (rec->remove_other != NULL)
    g_clear_pointer (rec->remove_other, uvm_fd_watch_remove);
  if (rec->add_in != NULL)
    {
      Rec *added = rec->added;

      added->watch = uvm_fd_watch_add (rec->add_in, rec->add_fd, G_IO_IN, on_fd, added, NULL);
      g_assert_nonnull (added->watch);
      rec->add_in = NULL;
    }
  if (rec->nest_in != NULL)
    g_main_context_iteration (rec->nest_in, FALSE);
  if (rec->remove_self)
    g_clear_pointer (&rec->watch, uvm_fd_watch_remove);
  rec->running = FALSE;
  /* Ignored when removed above: the return value must not matter then. */
  return G_SOURCE_CONTINUE;
}

static void
make_pipe (int fds[2])
{
  g_assert_no_errno (pipe2 (fds, O_CLOEXEC | O_NONBLOCK));
}

/* A pipe whose read end is readable (one byte in it). */
static void
make_ready_pipe (int fds[2])
{
  make_pipe (fds);
  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
}

static void
close_pipe (int fds[2])
{
  close (fds[0]);
  close (fds[1]);
}

static UvmFdWatch *
add (GMainContext *context, int fd, GIOCondition condition, Rec *rec)
{
  g_autoptr(GError) error = NULL;

  rec->watch = uvm_fd_watch_add (context, fd, condition, on_fd, rec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (rec->watch);
  return rec->watch;
}

static void
iterate_once (GMainContext *context)
{
  g_main_context_iteration (context, FALSE);
}

static guint
count_epoll_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      if (g_strcmp0 (target, "anon_inode:[eventpoll]") == 0)
        n++;
    }
  return n;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_fires_while_readable (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec rec = { 0 };
  int fds[2];
  char buf[2];

  make_pipe (fds);
  add (context, fds[0], G_IO_IN, &rec);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 0);

  g_assert_cmpint (write (fds[1], "ab", 2), ==, 2);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 1);
  g_assert_true (rec.last & G_IO_IN);

  /* Level-triggered: still data, so again; read one byte, still again. */
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 2);
  g_assert_cmpint (read (fds[0], buf, 1), ==, 1);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 3);

  g_assert_cmpint (read (fds[0], buf, 1), ==, 1);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 3);

  uvm_fd_watch_remove (rec.watch);
  close_pipe (fds);
}

static void
test_set_condition_adds_and_removes_out (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec rec = { 0 };
  int fds[2];

  make_pipe (fds);
  /* The write end of an empty pipe is always writable, never readable. */
  add (context, fds[1], G_IO_IN, &rec);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 0);

  uvm_fd_watch_set_condition (rec.watch, G_IO_IN | G_IO_OUT);
  g_assert_cmpint (uvm_fd_watch_get_condition (rec.watch), ==, G_IO_IN | G_IO_OUT);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 1);
  g_assert_cmpint (rec.last, ==, G_IO_OUT);

  uvm_fd_watch_set_condition (rec.watch, G_IO_IN);
  iterate_once (context);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 1);

  uvm_fd_watch_remove (rec.watch);
  close_pipe (fds);
}

static void
test_remove_self_inside_callback (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec rec = { .remove_self = TRUE };
  int fds[2];

  make_ready_pipe (fds);
  add (context, fds[0], G_IO_IN, &rec);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 1);
  g_assert_null (rec.watch);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 1);
  close_pipe (fds);
}

static void
test_remove_other_ready_watch_inside_callback (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec a = { 0 }, b = { 0 };
  int pa[2], pb[2];

  /* Both ready in one dispatch; whichever runs first removes the other,
   * whose fetched event must then be dropped (valgrind: no use after free). */
  make_ready_pipe (pa);
  make_ready_pipe (pb);
  add (context, pa[0], G_IO_IN, &a);
  add (context, pb[0], G_IO_IN, &b);
  a.remove_other = &b.watch;
  b.remove_other = &a.watch;
  iterate_once (context);
  g_assert_cmpuint (a.calls + b.calls, ==, 1);
  iterate_once (context);
  g_assert_cmpuint (a.calls + b.calls, ==, 1 + 1);
  g_assert_true (a.calls == 2 || b.calls == 2);

  uvm_fd_watch_remove (a.watch);
  uvm_fd_watch_remove (b.watch);
  close_pipe (pa);
  close_pipe (pb);
}

static void
test_add_inside_callback (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec a = { 0 }, b = { 0 };
  int pa[2], pb[2];

  make_ready_pipe (pa);
  make_ready_pipe (pb);
  a.add_in = context;
  a.add_fd = pb[0];
  a.added = &b;
  add (context, pa[0], G_IO_IN, &a);
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_nonnull (b.watch);
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 2);
  g_assert_cmpuint (b.calls, ==, 1);

  uvm_fd_watch_remove (a.watch);
  uvm_fd_watch_remove (b.watch);
  close_pipe (pa);
  close_pipe (pb);
}

static void
test_nested_iteration_runs_others_not_self (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec a = { 0 }, b = { 0 };
  int pa[2], pb[2];

  make_ready_pipe (pa);
  add (context, pa[0], G_IO_IN, &a);
  a.nest_in = context;
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 1);

  /* Now b becomes ready, and a's callback iterates from inside: b runs,
   * a (still readable) is not re-entered, and it resumes afterwards. */
  make_ready_pipe (pb);
  add (context, pb[0], G_IO_IN, &b);
  a.calls = 0;
  b.calls = 0;
  /* One outer iteration may dispatch a and b together, then a's nested
   * one dispatches b again: b at least once, a once. */
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (b.calls, >=, 1);
  g_assert_false (a.reentered);

  a.nest_in = NULL;
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 2);
  g_assert_false (a.reentered);

  uvm_fd_watch_remove (a.watch);
  uvm_fd_watch_remove (b.watch);
  close_pipe (pa);
  close_pipe (pb);
}

static void
test_two_watches_on_one_fd (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec a = { 0 }, b = { 0 };
  int fds[2];

  make_ready_pipe (fds);
  add (context, fds[0], G_IO_IN, &a);
  add (context, fds[0], G_IO_IN, &b);   /* epoll has fds[0]: a dup goes in */
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (b.calls, ==, 1);

  /* Independent: removing one leaves the other, either way round. */
  uvm_fd_watch_remove (a.watch);
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (b.calls, ==, 2);
  add (context, fds[0], G_IO_IN, &a);
  uvm_fd_watch_remove (b.watch);
  iterate_once (context);
  g_assert_cmpuint (a.calls, ==, 2);
  g_assert_cmpuint (b.calls, ==, 2);

  uvm_fd_watch_remove (a.watch);
  close_pipe (fds);
}

static void
test_hup_delivered_unasked (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Rec rec = { 0 };
  int fds[2];

  make_pipe (fds);
  add (context, fds[0], 0, &rec);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 0);

  close (fds[1]);
  iterate_once (context);
  g_assert_cmpuint (rec.calls, ==, 1);
  g_assert_cmpint (rec.last, ==, G_IO_HUP);

  uvm_fd_watch_remove (rec.watch);
  close (fds[0]);
}

static void
test_epoll_fd_only_while_watches_exist (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  guint before = count_epoll_fds ();
  Rec a = { 0 }, b = { 0 };
  int fds[2];

  make_pipe (fds);
  add (context, fds[0], G_IO_IN, &a);
  g_assert_cmpuint (count_epoll_fds (), ==, before + 1);
  add (context, fds[1], G_IO_OUT, &b);
  g_assert_cmpuint (count_epoll_fds (), ==, before + 1);
  uvm_fd_watch_remove (a.watch);
  g_assert_cmpuint (count_epoll_fds (), ==, before + 1);
  uvm_fd_watch_remove (b.watch);
  g_assert_cmpuint (count_epoll_fds (), ==, before);

  /* And again, for a context whose first epoll fd went. */
  add (context, fds[0], G_IO_IN, &a);
  g_assert_cmpuint (count_epoll_fds (), ==, before + 1);
  uvm_fd_watch_remove (a.watch);
  g_assert_cmpuint (count_epoll_fds (), ==, before);
  close_pipe (fds);
}

static void
test_contexts_are_independent (void)
{
  g_autoptr(GMainContext) c1 = g_main_context_new ();
  g_autoptr(GMainContext) c2 = g_main_context_new ();
  guint before = count_epoll_fds ();
  Rec a = { 0 }, b = { 0 };
  int pa[2], pb[2];

  make_ready_pipe (pa);
  make_ready_pipe (pb);
  add (c1, pa[0], G_IO_IN, &a);
  add (c2, pb[0], G_IO_IN, &b);
  g_assert_cmpuint (count_epoll_fds (), ==, before + 2);

  iterate_once (c1);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (b.calls, ==, 0);
  iterate_once (c2);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (b.calls, ==, 1);

  uvm_fd_watch_remove (a.watch);
  g_assert_cmpuint (count_epoll_fds (), ==, before + 1);
  iterate_once (c2);
  g_assert_cmpuint (b.calls, ==, 2);
  uvm_fd_watch_remove (b.watch);
  g_assert_cmpuint (count_epoll_fds (), ==, before);
  close_pipe (pa);
  close_pipe (pb);
}

static void
test_add_fails_with_error_for_unwatchable_fd (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  guint before = count_epoll_fds ();
  Rec rec = { 0 };
  int fd = open ("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

  /* epoll refuses regular files (EPERM): NULL and an error, no abort, and
   * no epoll fd left behind. */
  g_assert_no_errno (fd);
  g_assert_null (uvm_fd_watch_add (context, fd, G_IO_IN, on_fd, &rec, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_PERM);
  g_assert_cmpuint (count_epoll_fds (), ==, before);
  close (fd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/fd-watch/fires-while-readable", test_fires_while_readable);
  g_test_add_func ("/fd-watch/set-condition-adds-and-removes-out",
                   test_set_condition_adds_and_removes_out);
  g_test_add_func ("/fd-watch/remove-self-inside-callback", test_remove_self_inside_callback);
  g_test_add_func ("/fd-watch/remove-other-ready-watch-inside-callback",
                   test_remove_other_ready_watch_inside_callback);
  g_test_add_func ("/fd-watch/add-inside-callback", test_add_inside_callback);
  g_test_add_func ("/fd-watch/nested-iteration-runs-others-not-self",
                   test_nested_iteration_runs_others_not_self);
  g_test_add_func ("/fd-watch/two-watches-on-one-fd", test_two_watches_on_one_fd);
  g_test_add_func ("/fd-watch/hup-delivered-unasked", test_hup_delivered_unasked);
  g_test_add_func ("/fd-watch/epoll-fd-only-while-watches-exist",
                   test_epoll_fd_only_while_watches_exist);
  g_test_add_func ("/fd-watch/contexts-are-independent", test_contexts_are_independent);
  g_test_add_func ("/fd-watch/add-fails-with-error-for-unwatchable-fd",
                   test_add_fails_with_error_for_unwatchable_fd);

  return g_test_run ();
}
