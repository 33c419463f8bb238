/* ens-bench-net.c - socket helpers of the benchmarks (see ens-bench-net.h). */
#include "ens-bench-net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int
unix_socket (const char *path, struct sockaddr_un *sa)
{
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen (path) >= sizeof sa->sun_path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  strcpy (sa->sun_path, path);
  return socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static int
close_keep_errno (int fd)
{
  int e = errno;
  close (fd);
  errno = e;
  return -1;
}

int
ens_bench_connect_unix (const char *path)
{
  struct sockaddr_un sa;
  int fd = unix_socket (path, &sa);
  if (fd < 0)
    return -1;
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return close_keep_errno (fd);
  return fd;
}

int
ens_bench_listen_unix (const char *path)
{
  struct sockaddr_un sa;
  int fd = unix_socket (path, &sa);
  if (fd < 0)
    return -1;
  unlink (path);
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (fd, 128) < 0)
    return close_keep_errno (fd);
  return fd;
}

void
ens_bench_set_nonblock (int fd, gboolean on)
{
  int fl = fcntl (fd, F_GETFL, 0);
  if (fl >= 0)
    (void) fcntl (fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

void
ens_bench_set_io_timeout (int fd, int seconds)
{
  struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
  (void) setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void) setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int
ens_bench_write_all (int fd, const char *buf, size_t len, int timeout_ms)
{
  while (len > 0)
    {
      ssize_t w = send (fd, buf, len, MSG_NOSIGNAL);
      if (w > 0)
        {
          buf += w;
          len -= (size_t) w;
          continue;
        }
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          struct pollfd p = { .fd = fd, .events = POLLOUT, .revents = 0 };
          if (poll (&p, 1, timeout_ms) <= 0)
            {
              errno = ETIMEDOUT;
              return -1;
            }
          continue;
        }
      return -1;
    }
  return 0;
}

size_t
ens_bench_count_lines (const char *p, size_t len)
{
  size_t n = 0;
  const char *end = p + len;
  while (p < end)
    {
      const char *nl = memchr (p, '\n', (size_t) (end - p));
      if (!nl)
        break;
      n++;
      p = nl + 1;
    }
  return n;
}

size_t
ens_bench_count_mark (const char *p, size_t len, const char *mark)
{
  size_t n = 0, ml = strlen (mark);
  const char *end = p + len, *m;
  while (p < end && (m = memmem (p, (size_t) (end - p), mark, ml)))
    {
      n++;
      p = m + 1;
    }
  return n;
}
