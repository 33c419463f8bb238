/* ens-bench-lines.c - the line reader of the benchmark clients (see
 * ens-bench-lines.h). */
#include "ens-bench-lines.h"

#include "ens-bench-measure.h"
#include "ens-bench-net.h"
#include "ens-bench-native.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
ens_bench_lines_init (EnsBenchLines *l, int fd, size_t cap)
{
  memset (l, 0, sizeof *l);
  l->fd = fd;
  l->cap = cap;
  l->buf = fd >= 0 ? g_malloc (cap) : NULL;
}

void
ens_bench_lines_clear (EnsBenchLines *l)
{
  if (l->fd >= 0)
    close (l->fd);
  l->fd = -1;
  g_clear_pointer (&l->buf, g_free);
  l->start = l->len = 0;
}

void
ens_bench_lines_compact (EnsBenchLines *l)
{
  if (l->start == 0)
    return;
  memmove (l->buf, l->buf + l->start, l->len - l->start);
  l->len -= l->start;
  l->start = 0;
}

/* Waits until @fd is readable or @deadline passed (FALSE, errno
 * ETIMEDOUT) or poll() failed (FALSE). */
static gboolean
wait_readable (int fd, int64_t deadline)
{
  for (;;)
    {
      int64_t left = deadline - ens_bench_now_ns ();
      if (left <= 0)
        {
          errno = ETIMEDOUT;
          return FALSE;
        }
      struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
      int pr = poll (&p, 1, (int) ((left + 999999) / 1000000));
      if (pr > 0)
        return TRUE;
      if (pr < 0 && errno != EINTR)
        return FALSE;
    }
}

int
ens_bench_lines_next (EnsBenchLines *l, int64_t deadline, char **line, size_t *len)
{
  gboolean polled = FALSE;

  for (;;)
    {
      char *nl = memchr (l->buf + l->start, '\n', l->len - l->start);
      if (nl)
        {
          *nl = '\0';
          *line = l->buf + l->start;
          if (len)
            *len = (size_t) (nl - *line);
          l->start = (size_t) (nl + 1 - l->buf);
          return 1;
        }
      ens_bench_lines_compact (l);
      if (l->len == l->cap)
        {
          errno = EMSGSIZE;
          return -1;
        }
      /* About to wait: poll, then read once, rather than first a read that
       * finds nothing. */
      if (!l->blocking && !polled && deadline > ens_bench_now_ns ())
        {
          if (!wait_readable (l->fd, deadline))
            return errno == ETIMEDOUT ? 0 : -1;
          polled = TRUE;
        }
      ssize_t r = recv (l->fd, l->buf + l->len, l->cap - l->len, l->blocking ? 0 : MSG_DONTWAIT);
      polled = FALSE;
      if (r > 0)
        {
          l->t_read = ens_bench_now_ns ();
          l->len += (size_t) r;
          continue;
        }
      if (r == 0)
        {
          errno = ECONNRESET;
          return -1;
        }
      if (errno == EINTR)
        continue;
      if (l->blocking || (errno != EAGAIN && errno != EWOULDBLOCK))
        return -1;
      if (deadline <= ens_bench_now_ns ())
        return 0;
      if (!wait_readable (l->fd, deadline))
        return errno == ETIMEDOUT ? 0 : -1;
      polled = TRUE;
    }
}

ssize_t
ens_bench_lines_wait (EnsBenchLines *l, int timeout_ms, char **line)
{
  size_t len = 0;
  int r = ens_bench_lines_next (l, ens_bench_now_ns () + (int64_t) timeout_ms * 1000000, line, &len);
  if (r == 0)
    errno = ETIMEDOUT;
  return r > 0 ? (ssize_t) len : -1;
}

gboolean
ens_bench_lines_request (EnsBenchLines *l, const char *req, int timeout_ms, char **reply, GString *err,
                         const char *what)
{
  ssize_t n;
  if (ens_bench_write_all (l->fd, req, strlen (req), timeout_ms) < 0)
    {
      g_string_printf (err, "%s: write: %s", what, g_strerror (errno));
      return FALSE;
    }
  do
    n = ens_bench_lines_wait (l, timeout_ms, reply);
  while (n >= 0 && ens_bench_is_event (*reply));
  if (n < 0)
    {
      g_string_printf (err, "%s: %s", what, g_strerror (errno));
      return FALSE;
    }
  if (!ens_bench_status_is (*reply, "success"))
    {
      g_string_printf (err, "%s failed: %s", what, *reply);
      return FALSE;
    }
  return TRUE;
}
