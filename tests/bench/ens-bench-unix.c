/* ens-bench-unix.c - throughput / latency benchmark for ensembled's native
 * protocol (newline-delimited JSON over a Unix stream socket).
 *
 * One run measures, with the same client code:
 *   1. a raw in-binary C echo server (baseline): pipelined req/s + p50/p99
 *      single round trip;
 *   2. ensembled "ping": pipelined req/s + p50/p99 single round trip;
 *   3. 16-way fan-out: an in-binary raw fan-out server (baseline) and
 *      ensembled publish/subscribe; event deliveries/s across subscribers.
 *
 * No JSON parsing on the hot path: requests are built with snprintf and
 * replies are delimited by counting '\n'.  All client sockets that may see
 * unsolicited or pipelined traffic are non-blocking and driven by poll(), so
 * the client can never deadlock against a server blocked on a full socket
 * buffer.
 *
 * Usage: ens-bench-unix [--socket PATH] [--seconds N] [--quick]
 *                       [--window N] [--subscribers N]
 * Without --socket only the baseline figures are measured.
 *
 * Not part of the test suite; see tests/bench/run-bench.sh.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <glib.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_CAP      512           /* max length of one generated request line */
#define RBUF_CAP      (256 * 1024)  /* client read chunk */
#define SRV_RBUF_CAP  (64 * 1024)   /* baseline server read chunk */
#define SUB_BUF_CAP   (128 * 1024)  /* per-subscriber line assembly buffer */
#define MAX_SUBS      256
#define MAX_SAMPLES   (4 * 1000 * 1000)
#define IO_TIMEOUT_S  5
#define FAN_TOPIC     "bench.fan"

#define TARGET_PIPELINED  100000.0
#define TARGET_FANOUT    1000000.0

/* ------------------------------------------------------------------------ */
/* options */

static gchar   *opt_socket = NULL;
static gdouble  opt_seconds = -1.0;
static gboolean opt_quick = FALSE;
static gint     opt_window = 256;
static gint     opt_subs = 16;

static GOptionEntry opt_entries[] = {
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &opt_socket,
    "ensembled socket (e.g. $XDG_RUNTIME_DIR/ensemble/ensemble.sock); "
    "without it only baselines run", "PATH" },
  { "seconds", 't', 0, G_OPTION_ARG_DOUBLE, &opt_seconds,
    "duration of each phase in seconds (default 3, --quick 0.5)", "N" },
  { "quick", 'q', 0, G_OPTION_ARG_NONE, &opt_quick,
    "short run (0.5 s per phase)", NULL },
  { "window", 'w', 0, G_OPTION_ARG_INT, &opt_window,
    "requests kept in flight when pipelining (default 256)", "N" },
  { "subscribers", 'n', 0, G_OPTION_ARG_INT, &opt_subs,
    "fan-out subscriber connections (default 16)", "N" },
  { NULL, 0, 0, 0, NULL, NULL, NULL }
};

/* ------------------------------------------------------------------------ */
/* small helpers */

static inline int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
set_nonblock (int fd, gboolean on)
{
  int fl = fcntl (fd, F_GETFL, 0);
  if (fl < 0)
    return;
  if (on)
    fl |= O_NONBLOCK;
  else
    fl &= ~O_NONBLOCK;
  (void) fcntl (fd, F_SETFL, fl);
}

static void
set_io_timeout (int fd, int seconds)
{
  struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
  (void) setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void) setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Write everything; works for blocking and non-blocking fds. */
static int
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, buf, len);
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
          if (poll (&p, 1, IO_TIMEOUT_S * 1000) <= 0)
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

static int
fill_sockaddr (struct sockaddr_un *sa, const char *path)
{
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen (path) >= sizeof sa->sun_path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  strcpy (sa->sun_path, path);
  return 0;
}

static int
connect_unix (const char *path)
{
  struct sockaddr_un sa;
  if (fill_sockaddr (&sa, path) < 0)
    return -1;
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  return fd;
}

static int
listen_unix (const char *path)
{
  struct sockaddr_un sa;
  if (fill_sockaddr (&sa, path) < 0)
    return -1;
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  unlink (path);
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (fd, 128) < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  return fd;
}

static size_t
count_newlines (const char *p, size_t len)
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

/* Send one line and read exactly one reply line (blocking, with timeout).
 * Anything after the first '\n' is discarded. Returns reply length or -1. */
static ssize_t
request_reply (int fd, const char *line, size_t len, char *reply, size_t cap)
{
  set_nonblock (fd, FALSE);
  set_io_timeout (fd, IO_TIMEOUT_S);
  if (write_all (fd, line, len) < 0)
    return -1;
  size_t got = 0;
  for (;;)
    {
      if (got + 1 >= cap)
        {
          errno = EMSGSIZE;
          return -1;
        }
      ssize_t r = read (fd, reply + got, cap - 1 - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        {
          errno = ECONNRESET;
          return -1;
        }
      char *nl = memchr (reply + got, '\n', (size_t) r);
      got += (size_t) r;
      if (nl)
        {
          *nl = '\0';
          return nl - reply;
        }
    }
}

/* true if the reply line has "status" : "<want>" (whitespace tolerant) */
static gboolean
reply_status_is (const char *reply, const char *want)
{
  const char *p = strstr (reply, "\"status\"");
  if (!p)
    return FALSE;
  p += 8;
  while (*p == ' ' || *p == '\t' || *p == ':')
    p++;
  size_t wl = strlen (want);
  return *p == '"' && strncmp (p + 1, want, wl) == 0 && p[1 + wl] == '"';
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
percentile (GArray *sorted, double q)
{
  if (sorted->len == 0)
    return 0.0;
  size_t idx = (size_t) (q * (double) (sorted->len - 1) + 0.5);
  return g_array_index (sorted, double, idx);
}

/* ------------------------------------------------------------------------ */
/* request line generators (shared by baseline and ensembled phases) */

typedef int (*LineFn) (char *buf, size_t cap, uint64_t n, void *ud);

static int
mk_ping (char *buf, size_t cap, uint64_t n, void *ud)
{
  (void) ud;
  return snprintf (buf, cap, "{\"id\":\"%" PRIu64 "\",\"action\":\"ping\"}\n", n);
}

static int
mk_publish (char *buf, size_t cap, uint64_t n, void *ud)
{
  const char *topic = ud;
  return snprintf (buf, cap,
                   "{\"id\":\"%" PRIu64 "\",\"action\":\"publish\",\"data\":"
                   "{\"topic\":\"%s\",\"data\":{\"n\":%" PRIu64 "}}}\n",
                   n, topic, n);
}

static const char SUBSCRIBE_LINE[] =
  "{\"id\":\"s\",\"action\":\"subscribe\",\"data\":{\"topics\":[\"" FAN_TOPIC "\"]}}\n";

/* ------------------------------------------------------------------------ */
/* client: pipelined request/reply */

typedef struct
{
  uint64_t sent;
  uint64_t replies;
  uint64_t errors;   /* replies containing "status":"error" */
  double   secs;
  double   rate;
} PipeResult;

static const char ERR_MARK[] = "\"status\":\"error\"";

/* Keep up to `window` requests in flight on `fd` for `seconds`, then drain.
 * Writes are batched (the buffer is refilled only once fully written),
 * replies are counted by '\n'. Non-blocking + poll, so no deadlock. */
static gboolean
run_pipelined (int fd, double seconds, int window, LineFn fn, void *ud,
               PipeResult *res, GString *err)
{
  size_t ocap = (size_t) window * LINE_CAP;
  char *obuf = g_malloc (ocap);
  char *rbuf = g_malloc (RBUF_CAP);
  size_t olen = 0, ooff = 0;
  uint64_t sent = 0, got = 0, errs = 0, next_id = 1;
  gboolean stopping = FALSE, ok = TRUE;
  int64_t t0 = now_ns ();
  int64_t deadline = t0 + (int64_t) (seconds * 1e9);
  int64_t drain_deadline = 0;
  int64_t t_end = t0;

  set_nonblock (fd, TRUE);
  memset (res, 0, sizeof *res);

  for (;;)
    {
      int64_t now = now_ns ();
      if (!stopping && now >= deadline)
        {
          stopping = TRUE;
          drain_deadline = now + 10 * 1000000000LL;
        }
      if (stopping)
        {
          if (got >= sent)
            {
              t_end = now;
              break;
            }
          if (now >= drain_deadline)
            {
              g_string_printf (err, "timed out draining replies (%" PRIu64
                               " of %" PRIu64 " received)", got, sent);
              ok = FALSE;
              break;
            }
        }

      /* refill a batch once the previous one is fully written */
      if (!stopping && ooff == olen && sent - got < (uint64_t) window)
        {
          olen = ooff = 0;
          while (sent - got < (uint64_t) window)
            {
              int k = fn (obuf + olen, ocap - olen, next_id++, ud);
              if (k <= 0 || k >= LINE_CAP)
                {
                  g_string_printf (err, "request line too long");
                  ok = FALSE;
                  goto out;
                }
              olen += (size_t) k;
              sent++;
            }
        }

      if (ooff < olen)
        {
          ssize_t w = write (fd, obuf + ooff, olen - ooff);
          if (w > 0)
            ooff += (size_t) w;
          else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            {
              g_string_printf (err, "write: %s", g_strerror (errno));
              ok = FALSE;
              break;
            }
        }

      struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
      if (ooff < olen)
        p.events |= POLLOUT;
      int pr = poll (&p, 1, 100);
      if (pr < 0)
        {
          if (errno == EINTR)
            continue;
          g_string_printf (err, "poll: %s", g_strerror (errno));
          ok = FALSE;
          break;
        }
      if (p.revents & (POLLIN | POLLHUP | POLLERR))
        {
          for (;;)
            {
              ssize_t r = read (fd, rbuf, RBUF_CAP);
              if (r > 0)
                {
                  got += count_newlines (rbuf, (size_t) r);
                  const char *s = rbuf, *end = rbuf + r;
                  while (s < end)
                    {
                      const char *m = memmem (s, (size_t) (end - s), ERR_MARK,
                                              sizeof ERR_MARK - 1);
                      if (!m)
                        break;
                      errs++;
                      s = m + 1;
                    }
                  if ((size_t) r < RBUF_CAP)
                    break;
                  continue;
                }
              if (r == 0)
                {
                  g_string_printf (err, "server closed the connection (%" PRIu64
                                   " of %" PRIu64 " replies received)", got, sent);
                  ok = FALSE;
                  goto out;
                }
              if (errno == EINTR)
                continue;
              if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
              g_string_printf (err, "read: %s", g_strerror (errno));
              ok = FALSE;
              goto out;
            }
        }
    }

out:
  if (!ok)
    t_end = now_ns ();
  res->sent = sent;
  res->replies = got;
  res->errors = errs;
  res->secs = (double) (t_end - t0) / 1e9;
  res->rate = res->secs > 0 ? (double) got / res->secs : 0.0;
  g_free (obuf);
  g_free (rbuf);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* client: single request/reply round trips */

typedef struct
{
  size_t n;
  double p50, p99, mean;
} RttResult;

static gboolean
run_rtt (int fd, double seconds, LineFn fn, void *ud, RttResult *res, GString *err)
{
  char line[LINE_CAP];
  char *rbuf = g_malloc (SUB_BUF_CAP);
  size_t rlen = 0;
  uint64_t next_id = 1;
  gboolean ok = TRUE;
  GArray *samples = g_array_sized_new (FALSE, FALSE, sizeof (double), 65536);
  int64_t deadline = now_ns () + (int64_t) (seconds * 1e9);
  double sum = 0;

  set_nonblock (fd, FALSE);
  set_io_timeout (fd, IO_TIMEOUT_S);
  memset (res, 0, sizeof *res);

  while (samples->len < MAX_SAMPLES)
    {
      int64_t t0 = now_ns ();
      if (t0 >= deadline)
        break;
      int k = fn (line, sizeof line, next_id++, ud);
      if (write_all (fd, line, (size_t) k) < 0)
        {
          g_string_printf (err, "write: %s", g_strerror (errno));
          ok = FALSE;
          break;
        }
      for (;;)
        {
          char *nl = memchr (rbuf, '\n', rlen);
          if (nl)
            {
              size_t used = (size_t) (nl - rbuf) + 1;
              memmove (rbuf, nl + 1, rlen - used);
              rlen -= used;
              break;
            }
          if (rlen == SUB_BUF_CAP)
            {
              g_string_printf (err, "reply line too long");
              ok = FALSE;
              goto out;
            }
          ssize_t r = read (fd, rbuf + rlen, SUB_BUF_CAP - rlen);
          if (r > 0)
            {
              rlen += (size_t) r;
              continue;
            }
          if (r < 0 && errno == EINTR)
            continue;
          g_string_printf (err, "read: %s", r == 0 ? "connection closed"
                                                    : g_strerror (errno));
          ok = FALSE;
          goto out;
        }
      double us = (double) (now_ns () - t0) / 1000.0;
      sum += us;
      g_array_append_val (samples, us);
    }

out:
  if (samples->len > 0)
    {
      qsort (samples->data, samples->len, sizeof (double), cmp_double);
      res->n = samples->len;
      res->p50 = percentile (samples, 0.50);
      res->p99 = percentile (samples, 0.99);
      res->mean = sum / (double) samples->len;
    }
  g_array_free (samples, TRUE);
  g_free (rbuf);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* client: fan-out subscribers (one poll() thread for all connections) */

typedef struct
{
  int      n;
  int      fds[MAX_SUBS];
  char    *bufs[MAX_SUBS];
  size_t   lens[MAX_SUBS];
  int      stop;          /* atomic */
  /* published by the thread with __atomic stores */
  uint64_t events;
  uint64_t dropped;
  uint64_t other;
  int64_t  t_last;        /* time of last received event */
  int      closed;        /* connections closed by the peer */
} SubSet;

static const char EV_PREFIX[] = "{\"event\":";
static const char DROP_MARK[] = "\"event\":\"ensemble.dropped\"";
static const char COUNT_MARK[] = "\"count\":";

static void
classify_line (const char *line, size_t len, uint64_t *events, uint64_t *dropped,
               uint64_t *other)
{
  gboolean is_event = len >= sizeof EV_PREFIX - 1 &&
                      memcmp (line, EV_PREFIX, sizeof EV_PREFIX - 1) == 0;
  gboolean is_drop = FALSE;

  if (is_event)
    {
      /* fast path: normal event, topic right after the prefix */
      const char *t = line + sizeof EV_PREFIX - 1;
      size_t rest = len - (sizeof EV_PREFIX - 1);
      if (rest >= 18 && memcmp (t, "\"ensemble.dropped\"", 18) == 0)
        is_drop = TRUE;
    }
  else if (memmem (line, len, DROP_MARK, sizeof DROP_MARK - 1))
    is_drop = TRUE;
  else if (memmem (line, len, "\"event\":", 8))
    is_event = TRUE;

  if (is_drop)
    {
      const char *c = memmem (line, len, COUNT_MARK, sizeof COUNT_MARK - 1);
      uint64_t cnt = 1;
      if (c)
        {
          char tmp[32];
          size_t off = (size_t) (c - line) + sizeof COUNT_MARK - 1;
          size_t m = MIN (len - off, sizeof tmp - 1);
          memcpy (tmp, line + off, m);
          tmp[m] = '\0';
          cnt = g_ascii_strtoull (tmp, NULL, 10);
        }
      *dropped += cnt;
    }
  else if (is_event)
    (*events)++;
  else
    (*other)++;
}

static void *
subset_thread (void *arg)
{
  SubSet *ss = arg;
  struct pollfd pfds[MAX_SUBS];
  uint64_t events = 0, dropped = 0, other = 0;
  int closed = 0;

  for (int i = 0; i < ss->n; i++)
    {
      pfds[i].fd = ss->fds[i];
      pfds[i].events = POLLIN;
      pfds[i].revents = 0;
    }

  while (!__atomic_load_n (&ss->stop, __ATOMIC_ACQUIRE))
    {
      int pr = poll (pfds, (nfds_t) ss->n, 20);
      if (pr <= 0)
        continue;
      uint64_t before = events;
      for (int i = 0; i < ss->n; i++)
        {
          if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          /* a few reads per connection per round keeps things fair */
          for (int rounds = 0; rounds < 4; rounds++)
            {
              char *buf = ss->bufs[i];
              size_t len = ss->lens[i];
              if (len == SUB_BUF_CAP)
                {
                  other++;  /* absurdly long line: discard */
                  len = 0;
                }
              ssize_t r = read (pfds[i].fd, buf + len, SUB_BUF_CAP - len);
              if (r == 0)
                {
                  closed++;
                  pfds[i].fd = -pfds[i].fd - 1;  /* ignore from now on */
                  break;
                }
              if (r < 0)
                {
                  if (errno == EINTR)
                    continue;
                  if (errno != EAGAIN && errno != EWOULDBLOCK)
                    {
                      closed++;
                      pfds[i].fd = -pfds[i].fd - 1;
                    }
                  break;
                }
              size_t total = len + (size_t) r;
              const char *s = buf, *end = buf + total;
              for (;;)
                {
                  const char *nl = memchr (s, '\n', (size_t) (end - s));
                  if (!nl)
                    break;
                  classify_line (s, (size_t) (nl - s), &events, &dropped, &other);
                  s = nl + 1;
                }
              size_t rest = (size_t) (end - s);
              if (rest && s != buf)
                memmove (buf, s, rest);
              ss->lens[i] = rest;
              if ((size_t) r < SUB_BUF_CAP - len)
                break;  /* socket drained */
            }
        }
      if (events != before)
        __atomic_store_n (&ss->t_last, now_ns (), __ATOMIC_RELEASE);
      __atomic_store_n (&ss->events, events, __ATOMIC_RELEASE);
      __atomic_store_n (&ss->dropped, dropped, __ATOMIC_RELEASE);
      __atomic_store_n (&ss->other, other, __ATOMIC_RELEASE);
      __atomic_store_n (&ss->closed, closed, __ATOMIC_RELEASE);
    }
  return NULL;
}

typedef struct
{
  PipeResult pub;
  uint64_t   events;
  uint64_t   dropped;
  uint64_t   other;
  uint64_t   missing;  /* expected - events - dropped, if positive */
  double     secs;
  double     rate;
} FanResult;

static gboolean
run_fanout (const char *path, double seconds, int nsubs, int window,
            FanResult *res, GString *err)
{
  SubSet *ss = g_new0 (SubSet, 1);
  gboolean ok = TRUE;
  gboolean thread_started = FALSE;
  pthread_t thr;
  int pub = -1;
  char reply[4096];
  int64_t t0 = 0;

  memset (res, 0, sizeof *res);
  for (int i = 0; i < nsubs; i++)
    {
      int fd = connect_unix (path);
      if (fd < 0)
        {
          g_string_printf (err, "connect subscriber %d: %s", i, g_strerror (errno));
          ok = FALSE;
          goto out;
        }
      ss->fds[ss->n] = fd;
      ss->bufs[ss->n] = g_malloc (SUB_BUF_CAP);
      ss->n++;
      ssize_t rl = request_reply (fd, SUBSCRIBE_LINE, sizeof SUBSCRIBE_LINE - 1,
                                  reply, sizeof reply);
      if (rl < 0)
        {
          g_string_printf (err, "subscribe %d: %s", i, g_strerror (errno));
          ok = FALSE;
          goto out;
        }
      if (!reply_status_is (reply, "success"))
        {
          g_string_printf (err, "subscribe %d failed: %s", i, reply);
          ok = FALSE;
          goto out;
        }
      set_nonblock (fd, TRUE);
    }

  pub = connect_unix (path);
  if (pub < 0)
    {
      g_string_printf (err, "connect publisher: %s", g_strerror (errno));
      ok = FALSE;
      goto out;
    }

  t0 = now_ns ();
  ss->t_last = t0;
  if (pthread_create (&thr, NULL, subset_thread, ss) != 0)
    {
      g_string_printf (err, "pthread_create failed");
      ok = FALSE;
      goto out;
    }
  thread_started = TRUE;

  ok = run_pipelined (pub, seconds, window, mk_publish, (void *) FAN_TOPIC,
                      &res->pub, err);
  if (!ok)
    goto out;

  /* let the subscribers drain what is still in flight */
  uint64_t expected = res->pub.replies * (uint64_t) nsubs;
  uint64_t last_seen = 0;
  int64_t last_progress = now_ns ();
  int64_t give_up = last_progress + 10 * 1000000000LL;
  for (;;)
    {
      uint64_t seen = __atomic_load_n (&ss->events, __ATOMIC_ACQUIRE) +
                      __atomic_load_n (&ss->dropped, __ATOMIC_ACQUIRE);
      int64_t now = now_ns ();
      if (seen >= expected)
        break;
      if (seen != last_seen)
        {
          last_seen = seen;
          last_progress = now;
        }
      if (now - last_progress > 1000000000LL || now > give_up)
        break;
      if (__atomic_load_n (&ss->closed, __ATOMIC_ACQUIRE) == nsubs)
        break;
      g_usleep (5000);
    }

out:
  if (thread_started)
    {
      __atomic_store_n (&ss->stop, 1, __ATOMIC_RELEASE);
      pthread_join (thr, NULL);
      res->events = ss->events;
      res->dropped = ss->dropped;
      res->other = ss->other;
      uint64_t want = res->pub.replies * (uint64_t) nsubs;
      if (want > res->events + res->dropped)
        res->missing = want - res->events - res->dropped;
      res->secs = (double) (ss->t_last - t0) / 1e9;
      res->rate = res->secs > 0 ? (double) res->events / res->secs : 0.0;
      if (ok && ss->closed > 0)
        {
          g_string_printf (err, "%d subscriber connection(s) closed by server",
                           ss->closed);
          ok = FALSE;
        }
    }
  if (pub >= 0)
    close (pub);
  for (int i = 0; i < ss->n; i++)
    {
      close (ss->fds[i]);
      g_free (ss->bufs[i]);
    }
  g_free (ss);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* in-binary baseline servers: echo and 16-way fan-out */

typedef enum { SRV_ECHO, SRV_FANOUT } SrvMode;

typedef struct
{
  SrvMode         mode;
  int             lfd;
  char            path[108];
  pthread_t       accept_thr;
  pthread_mutex_t lock;        /* guards subs; held while fanning out */
  int             subs[MAX_SUBS];
  int             nsubs;
} Server;

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
      ssize_t r = read (fd, buf, SRV_RBUF_CAP);
      if (r < 0 && errno == EINTR)
        continue;
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
      ssize_t r = read (fd, buf + len, SRV_RBUF_CAP - len);
      if (r < 0 && errno == EINTR)
        continue;
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
      ssize_t r = read (fd, buf + len, SRV_RBUF_CAP - len);
      if (r < 0 && errno == EINTR)
        continue;
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
      for (;;)
        {
          ssize_t r = read (fd, buf, SRV_RBUF_CAP);
          if (r < 0 && errno == EINTR)
            continue;
          if (r <= 0)
            break;
        }
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

static gboolean
server_start (Server *srv, SrvMode mode, const char *path, GString *err)
{
  memset (srv, 0, sizeof *srv);
  srv->mode = mode;
  g_strlcpy (srv->path, path, sizeof srv->path);
  pthread_mutex_init (&srv->lock, NULL);
  srv->lfd = listen_unix (path);
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

static void
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

/* ------------------------------------------------------------------------ */
/* phases */

typedef struct
{
  gboolean   ok;
  PipeResult pipe;
  RttResult  rtt;
  GString   *err;
} ReqResult;

static void
run_reqrep (const char *path, double seconds, int window, ReqResult *rr)
{
  rr->ok = FALSE;
  int fd = connect_unix (path);
  if (fd < 0)
    {
      g_string_printf (rr->err, "connect %s: %s", path, g_strerror (errno));
      return;
    }
  /* sanity probe: the reply must be a success reply (echo returns the line) */
  char line[LINE_CAP], reply[4096];
  int k = snprintf (line, sizeof line, "{\"id\":\"probe\",\"action\":\"ping\"}\n");
  if (request_reply (fd, line, (size_t) k, reply, sizeof reply) < 0)
    {
      g_string_printf (rr->err, "probe: %s", g_strerror (errno));
      close (fd);
      return;
    }
  if (reply_status_is (reply, "error"))
    {
      g_string_printf (rr->err, "probe ping failed: %s", reply);
      close (fd);
      return;
    }

  gboolean ok = run_pipelined (fd, seconds, window, mk_ping, NULL, &rr->pipe, rr->err);
  close (fd);
  if (!ok)
    return;

  fd = connect_unix (path);
  if (fd < 0)
    {
      g_string_printf (rr->err, "connect %s: %s", path, g_strerror (errno));
      return;
    }
  ok = run_rtt (fd, seconds, mk_ping, NULL, &rr->rtt, rr->err);
  close (fd);
  rr->ok = ok;
}

static void
print_reqrep (const char *label, ReqResult *rr)
{
  if (!rr->ok)
    {
      printf ("%s: FAILED (%s)\n", label, rr->err->str);
      return;
    }
  printf ("%s: %.0f req/s  p50 %.1f us  p99 %.1f us", label, rr->pipe.rate,
          rr->rtt.p50, rr->rtt.p99);
  if (rr->pipe.errors)
    printf ("  (%" PRIu64 " error replies!)", rr->pipe.errors);
  printf ("\n");
  fflush (stdout);
}

static void
print_ratio (const char *label, gboolean ok, double num, double den)
{
  if (ok && den > 0)
    printf ("ratio %s: %.2f\n", label, num / den);
  else
    printf ("ratio %s: n/a\n", label);
  fflush (stdout);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  GOptionContext *ctx = g_option_context_new ("- ensembled native protocol benchmark");
  g_option_context_add_main_entries (ctx, opt_entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "ens-bench-unix: %s\n", error->message);
      return 2;
    }
  g_option_context_free (ctx);

  double seconds = opt_seconds > 0 ? opt_seconds : (opt_quick ? 0.5 : 3.0);
  int window = CLAMP (opt_window, 1, 65536);
  int nsubs = CLAMP (opt_subs, 1, MAX_SUBS);

  signal (SIGPIPE, SIG_IGN);

  g_autofree char *tmpdir = g_dir_make_tmp ("ens-bench-XXXXXX", &error);
  if (!tmpdir)
    {
      fprintf (stderr, "ens-bench-unix: %s\n", error->message);
      return 2;
    }
  g_autofree char *echo_path = g_build_filename (tmpdir, "echo.sock", NULL);
  g_autofree char *fan_path = g_build_filename (tmpdir, "fan.sock", NULL);

  int rc = 0;
  Server srv;

  fprintf (stderr, "# %.2f s per phase, window %d, %d subscribers%s\n", seconds,
           window, nsubs, opt_socket ? "" : " (no --socket: baselines only)");

  /* 1. baseline echo */
  ReqResult base = { .err = g_string_new (NULL) };
  if (server_start (&srv, SRV_ECHO, echo_path, base.err))
    {
      run_reqrep (echo_path, seconds, window, &base);
      server_stop (&srv);
    }
  print_reqrep ("baseline echo pipelined", &base);
  if (!base.ok)
    rc = 1;

  /* 2. ensembled ping */
  ReqResult ens = { .err = g_string_new (NULL) };
  if (opt_socket)
    {
      run_reqrep (opt_socket, seconds, window, &ens);
      print_reqrep ("ensembled ping pipelined", &ens);
      if (!ens.ok)
        rc = 1;
      print_ratio ("ensembled/baseline pipelined", base.ok && ens.ok,
                   ens.pipe.rate, base.pipe.rate);
      print_ratio ("ensembled/baseline p50 rtt", base.ok && ens.ok,
                   ens.rtt.p50, base.rtt.p50);
    }

  /* 3a. baseline fan-out */
  FanResult fbase, fens;
  GString *ferr = g_string_new (NULL);
  gboolean fbase_ok = FALSE, fens_ok = FALSE;
  if (server_start (&srv, SRV_FANOUT, fan_path, ferr))
    {
      fbase_ok = run_fanout (fan_path, seconds, nsubs, window, &fbase, ferr);
      server_stop (&srv);
    }
  if (fbase_ok)
    {
      printf ("fanout baseline: %.0f deliveries/s (publish %.0f/s", fbase.rate,
              fbase.pub.rate);
      if (fbase.missing)
        printf (", missing %" PRIu64, fbase.missing);
      printf (")\n");
    }
  else
    {
      printf ("fanout baseline: FAILED (%s)\n", ferr->str);
      rc = 1;
    }
  fflush (stdout);

  /* 3b. ensembled fan-out */
  if (opt_socket)
    {
      g_string_truncate (ferr, 0);
      fens_ok = run_fanout (opt_socket, seconds, nsubs, window, &fens, ferr);
      if (fens_ok)
        {
          printf ("fanout ensembled: %.0f deliveries/s (publish %.0f/s, dropped %"
                  PRIu64, fens.rate, fens.pub.rate, fens.dropped);
          if (fens.missing)
            printf (", missing %" PRIu64, fens.missing);
          if (fens.pub.errors)
            printf (", %" PRIu64 " publish errors", fens.pub.errors);
          printf (")\n");
        }
      else
        {
          printf ("fanout ensembled: FAILED (%s)\n", ferr->str);
          rc = 1;
        }
      print_ratio ("fanout ensembled/baseline", fbase_ok && fens_ok, fens.rate,
                   fbase.rate);

      gboolean pass_pipe = ens.ok && ens.pipe.rate >= TARGET_PIPELINED;
      gboolean pass_fan = fens_ok && fens.rate >= TARGET_FANOUT;
      printf ("targets: pipelined >= %.0f req/s: %s ; fanout >= %.0f deliveries/s: %s\n",
              TARGET_PIPELINED, pass_pipe ? "PASS" : "MISS",
              TARGET_FANOUT, pass_fan ? "PASS" : "MISS");
    }

  g_string_free (ferr, TRUE);
  g_string_free (base.err, TRUE);
  g_string_free (ens.err, TRUE);
  rmdir (tmpdir);
  return rc;
}
