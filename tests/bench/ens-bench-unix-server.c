/* ens-bench-unix-server.c - the baselines of ens-bench-unix: an echo
 * server and a 16-way fan-out server on Unix sockets, in the benchmark's
 * own process, speaking just enough of the native protocol for the same
 * client code to drive them and ensembled alike. */
#include "ens-bench-unix.h"

#include "ens-bench-net.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SRV_RBUF_CAP (64 * 1024) /* baseline server read chunk */
#define FAN_TOPIC    ENS_BENCH_UNIX_FAN_TOPIC
#define MAX_SUBS     ENS_BENCH_UNIX_MAX_SUBS

static int
write_all (int fd, const char *buf, size_t len)
{
  return ens_bench_write_all (fd, buf, len, ENS_BENCH_UNIX_IO_TIMEOUT_S * 1000);
}

/* read() again after EINTR: > 0 bytes read, 0 at the end, < 0 on an error */
static ssize_t
read_some (int fd, char *buf, size_t cap)
{
  ssize_t r;
  do
    r = read (fd, buf, cap);
  while (r < 0 && errno == EINTR);
  return r;
}

typedef struct
{
  Server *srv;
  int     fd;
} ConnArg;

static void *
echo_conn_thread (void *arg)
{
  ConnArg *ca = arg;
  int fd = ca->fd;
  char *buf = g_malloc (SRV_RBUF_CAP);
  g_free (ca);
  for (;;)
    {
      ssize_t r = read_some (fd, buf, SRV_RBUF_CAP);
      if (r <= 0)
        break;
      if (write_all (fd, buf, (size_t) r) < 0)
        break;
    }
  close (fd);
  g_free (buf);
  return NULL;
}

static const char FAN_EV_HEAD[] = "{\"event\":\"" FAN_TOPIC "\",\"data\":";
static const char FAN_SUB_REPLY[] =
  "{\"id\":\"s\",\"status\":\"success\",\"data\":{\"subscribed\":[\"" FAN_TOPIC
  "\"],\"total\":1}}\n";

static void
fan_remove_sub (Server *srv, int fd)
{
  pthread_mutex_lock (&srv->lock);
  for (int i = 0; i < srv->nsubs; i++)
    if (srv->subs[i] == fd)
      {
        srv->subs[i] = srv->subs[--srv->nsubs];
        break;
      }
  pthread_mutex_unlock (&srv->lock);
}

/* Publisher side of the fan-out baseline: for every complete line L read,
 * send {"event":"bench.fan","data":L} to every subscriber and echo L back
 * to the publisher as its reply.  One batched write per read per socket. */
static void
fan_publisher (Server *srv, int fd, char *buf, size_t len)
{
  GString *ev = g_string_sized_new (SRV_RBUF_CAP * 2);
  for (;;)
    {
      /* complete lines in buf[0..len) */
      const char *s = buf, *end = buf + len;
      g_string_truncate (ev, 0);
      for (;;)
        {
          const char *nl = memchr (s, '\n', (size_t) (end - s));
          if (!nl)
            break;
          g_string_append_len (ev, FAN_EV_HEAD, sizeof FAN_EV_HEAD - 1);
          g_string_append_len (ev, s, nl - s);
          g_string_append_len (ev, "}\n", 2);
          s = nl + 1;
        }
      size_t whole = (size_t) (s - buf);
      if (whole > 0)
        {
          pthread_mutex_lock (&srv->lock);
          for (int i = 0; i < srv->nsubs; i++)
            (void) write_all (srv->subs[i], ev->str, ev->len);
          pthread_mutex_unlock (&srv->lock);
          if (write_all (fd, buf, whole) < 0)
            break;
          memmove (buf, s, len - whole);
          len -= whole;
        }
      if (len == SRV_RBUF_CAP)
        len = 0;  /* line too long: drop it */
      ssize_t r = read_some (fd, buf + len, SRV_RBUF_CAP - len);
      if (r <= 0)
        break;
      len += (size_t) r;
    }
  g_string_free (ev, TRUE);
}

static void *
fan_conn_thread (void *arg)
{
  ConnArg *ca = arg;
  Server *srv = ca->srv;
  int fd = ca->fd;
  char *buf = g_malloc (SRV_RBUF_CAP);
  size_t len = 0;
  g_free (ca);

  /* first line decides the role */
  while (!memchr (buf, '\n', len))
    {
      if (len == SRV_RBUF_CAP)
        goto done;
      ssize_t r = read_some (fd, buf + len, SRV_RBUF_CAP - len);
      if (r <= 0)
        goto done;
      len += (size_t) r;
    }

  if (memmem (buf, len, "\"action\":\"subscribe\"", 20))
    {
      if (write_all (fd, FAN_SUB_REPLY, sizeof FAN_SUB_REPLY - 1) < 0)
        goto done;
      pthread_mutex_lock (&srv->lock);
      gboolean added = srv->nsubs < MAX_SUBS;
      if (added)
        srv->subs[srv->nsubs++] = fd;
      pthread_mutex_unlock (&srv->lock);
      if (!added)
        goto done;
      /* ignore further input until the subscriber goes away */
      while (read_some (fd, buf, SRV_RBUF_CAP) > 0)
        ;
      fan_remove_sub (srv, fd);
    }
  else
    fan_publisher (srv, fd, buf, len);

done:
  close (fd);
  g_free (buf);
  return NULL;
}

static void *
accept_thread (void *arg)
{
  Server *srv = arg;
  for (;;)
    {
      int fd = accept4 (srv->lfd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          break;  /* listening socket shut down */
        }
      ConnArg *ca = g_new0 (ConnArg, 1);
      ca->srv = srv;
      ca->fd = fd;
      pthread_t t;
      pthread_attr_t attr;
      pthread_attr_init (&attr);
      pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
      if (pthread_create (&t, &attr,
                          srv->mode == SRV_ECHO ? echo_conn_thread : fan_conn_thread,
                          ca) != 0)
        {
          close (fd);
          g_free (ca);
        }
      pthread_attr_destroy (&attr);
    }
  return NULL;
}

gboolean
server_start (Server *srv, SrvMode mode, const char *path, GString *err)
{
  memset (srv, 0, sizeof *srv);
  srv->mode = mode;
  g_strlcpy (srv->path, path, sizeof srv->path);
  pthread_mutex_init (&srv->lock, NULL);
  srv->lfd = ens_bench_listen_unix (path);
  if (srv->lfd < 0)
    {
      g_string_printf (err, "listen %s: %s", path, g_strerror (errno));
      return FALSE;
    }
  if (pthread_create (&srv->accept_thr, NULL, accept_thread, srv) != 0)
    {
      g_string_printf (err, "pthread_create failed");
      close (srv->lfd);
      unlink (path);
      return FALSE;
    }
  return TRUE;
}

void
server_stop (Server *srv)
{
  shutdown (srv->lfd, SHUT_RDWR);   /* wakes accept() on Linux */
  pthread_join (srv->accept_thr, NULL);
  close (srv->lfd);
  unlink (srv->path);
  /* connection threads are detached and exit when their client closes;
   * give them a moment so the next phase starts on a quiet machine */
  g_usleep (50000);
}
