/* ens-bench-redis.c - cross-node event delivery through two ensembled daemons
 * bridged by transport-redis, against raw Redis pub/sub in the same run.
 *
 *   1. raw: one hiredis connection SUBSCRIBEs a channel, another PUBLISHes a
 *      ~100-byte JSON payload.  First p50/p99 of single round trips (publish
 *      one, wait until the subscriber has it), on a quiet path; then the
 *      other --subscribers N - 1 connections SUBSCRIBE too, and PUBLISHes go
 *      pipelined in windows for S seconds, each subscriber on its own
 *      thread.  Deliveries/s = messages received by all subscribers / time
 *      from the first publish to the last delivery.
 *   2. ensemble: the same with N native-protocol subscribers on daemon A's
 *      socket (the first one alone for the latency probes) and a
 *      native-protocol publisher on daemon B's socket, so every event goes
 *      B -> Redis -> A.  Only {"event" lines count; ensemble.dropped
 *      notices (A's bounded per-connection queue overflowed) are counted
 *      apart as drops.  The replies to the publisher are read to keep the
 *      window.  After publishing, the subscribers read on until everything
 *      published has arrived or been reported dropped, or nothing came for
 *      2 s.
 *   3. fixed load (--rate, default 10k events/s, 1 subscriber): raw, then
 *      ensemble, publishing at that pace; each delivery's latency from its
 *      publish (the "t" the payload carries) to its arrival; p50/p99 and the
 *      p50 ensemble adds over raw Redis (ens-bench-redis-load.c).
 *
 * Usage: ens-bench-redis --redis-port N [--redis-host H]
 *                        [--socket-a PATH --socket-b PATH]
 *                        [--seconds N] [--quick] [--window N] [--samples N]
 *                        [--subscribers N] [--rate N] [--load-seconds N]
 * Without the sockets only the raw figures are measured.
 * Not part of the test suite; see tests/bench/run-bench-redis.sh.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <glib.h>
#include <hiredis/hiredis.h>

#include "ens-bench-redis.h"

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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RAW_CHANNEL   "ens-bench-raw"  /* outside any daemon's prefix */
#define TOPIC         "bench.xnode"
#define LINE_CAP      512
#define RBUF_CAP      (256 * 1024)
#define IO_TIMEOUT_S  5
#define LAT_BASE      1000000000ULL   /* n of latency probes: never reused */
#define WARM_BASE     9000000000ULL   /* n of warm-up events ... */
#define WARM_MARK     "\"n\":90000000" /* ... and what all of them contain */
#define CHECK_SEQ     9000001000ULL   /* n of the event all subscribers must see */
#define DRAIN_IDLE_NS (2 * 1000000000LL) /* give up waiting after 2 s without progress */
#define MAX_SUBS      1024
/* Cross-node delivery against raw Redis: 0.35x with one subscriber, 0.7x with many. */
#define TARGET_RATIO_ONE  0.35
#define TARGET_RATIO_MANY 0.7

gchar          *opt_host = NULL;
gint            opt_port = 6379;
static gchar   *opt_sock_a = NULL;
static gchar   *opt_sock_b = NULL;
static gdouble  opt_seconds = -1.0;
static gboolean opt_quick = FALSE;
static gint     opt_window = 256;
static gint     opt_samples = -1;
static gint     opt_subscribers = 1;
static gint     opt_rate = 10000;
static gdouble  opt_load_seconds = -1.0;

static GOptionEntry opt_entries[] = {
  { "redis-host", 'H', 0, G_OPTION_ARG_STRING, &opt_host, "Redis host (default 127.0.0.1)", "HOST" },
  { "redis-port", 'p', 0, G_OPTION_ARG_INT, &opt_port, "Redis port (default 6379)", "N" },
  { "socket-a", 'a', 0, G_OPTION_ARG_FILENAME, &opt_sock_a, "ensemble.sock of daemon A (subscriber side)", "PATH" },
  { "socket-b", 'b', 0, G_OPTION_ARG_FILENAME, &opt_sock_b, "ensemble.sock of daemon B (publisher side)", "PATH" },
  { "seconds", 't', 0, G_OPTION_ARG_DOUBLE, &opt_seconds, "publishing time per mode (default 3, --quick 0.5)", "N" },
  { "quick", 'q', 0, G_OPTION_ARG_NONE, &opt_quick, "short run", NULL },
  { "window", 'w', 0, G_OPTION_ARG_INT, &opt_window, "publishes in flight (default 256)", "N" },
  { "samples", 'n', 0, G_OPTION_ARG_INT, &opt_samples, "latency round trips (default 2000, --quick 300)", "N" },
  { "subscribers", 's', 0, G_OPTION_ARG_INT, &opt_subscribers, "subscriber connections in both modes (default 1)", "N" },
  { "rate", 'r', 0, G_OPTION_ARG_INT, &opt_rate, "offered load of the fixed-rate phase, events/s (default 10000; 0: skip it)", "N" },
  { "load-seconds", 'l', 0, G_OPTION_ARG_DOUBLE, &opt_load_seconds, "length of the fixed-rate phase (default 2, --quick 0.5)", "N" },
  { NULL, 0, 0, 0, NULL, NULL, NULL }
};

/* ------------------------------------------------------------------------ */
/* helpers */

int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ~100-byte JSON object carrying the sequence number n */
int
make_payload (char *buf, size_t cap, uint64_t n)
{
  return snprintf (buf, cap,
                   "{\"n\":%" PRIu64 ",\"t\":%" PRId64 ",\"kind\":\"bench\","
                   "\"pad\":\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ\"}",
                   n, now_ns ());
}

int
make_publish_line (char *buf, size_t cap, uint64_t n)
{
  char payload[256];
  make_payload (payload, sizeof payload, n);
  return snprintf (buf, cap,
                   "{\"id\":\"%" PRIu64 "\",\"action\":\"publish\",\"data\":"
                   "{\"topic\":\"" TOPIC "\",\"data\":%s}}\n", n, payload);
}

/* does text[0..len) carry "n":<n>, ? */
static gboolean
has_seq (const char *text, size_t len, uint64_t n)
{
  char mark[40];
  int k = snprintf (mark, sizeof mark, "\"n\":%" PRIu64 ",", n);
  return memmem (text, len, mark, (size_t) k) != NULL;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}


void
lat_finish (GArray *samples, Lat *lat)
{
  lat->n = samples->len;
  if (samples->len == 0)
    return;
  qsort (samples->data, samples->len, sizeof (double), cmp_double);
  lat->p50 = g_array_index (samples, double, (size_t) (0.50 * (samples->len - 1) + 0.5));
  lat->p99 = g_array_index (samples, double, (size_t) (0.99 * (samples->len - 1) + 0.5));
}

/* The figures of one mode. */
typedef struct
{
  gboolean ok;
  int      subs;     /* subscriber connections */
  uint64_t sent;     /* publishes acknowledged */
  uint64_t expected; /* deliveries due: (sent - errors) * subs */
  uint64_t received; /* messages / events at all subscribers */
  uint64_t sub_min, sub_max; /* received by the least / most served subscriber */
  uint64_t dropped;  /* ensemble.dropped counts */
  uint64_t errors;   /* error replies to publish */
  int      cut_off;  /* subscribers that lost their connection */
  double   pub_rate; /* acknowledged publishes/s while publishing */
  double   rate;     /* deliveries/s: received / (last delivery - start) */
  Lat      lat;
  GString *err;
  GString *note;     /* why a subscriber was cut off */
} Result;

/* ------------------------------------------------------------------------ */
/* raw Redis */

typedef struct
{
  redisContext *c;
  uint64_t      count;  /* atomic */
  int64_t       t_last; /* atomic */
  char          err[160];
} RawSub;

redisContext *
redis_open (GString *err)
{
  struct timeval tv = { .tv_sec = IO_TIMEOUT_S, .tv_usec = 0 };
  redisContext *c = redisConnectWithTimeout (opt_host, opt_port, tv);

  if (c == NULL || c->err)
    {
      g_string_printf (err, "connect to Redis %s:%d: %s", opt_host, opt_port, c ? c->errstr : "out of memory");
      if (c)
        redisFree (c);
      return NULL;
    }
  redisSetTimeout (c, tv);
  return c;
}

/* Reads messages until the "STOP" message, an error or a timeout. */
static void *
raw_sub_thread (void *arg)
{
  RawSub *rs = arg;
  uint64_t count = 0;

  for (;;)
    {
      redisReply *r = NULL;
      if (redisGetReply (rs->c, (void **) &r) != REDIS_OK || r == NULL)
        {
          g_snprintf (rs->err, sizeof rs->err, "subscriber: %s", rs->c->errstr);
          break;
        }
      gboolean stop = FALSE;
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
        {
          if (r->element[2]->len == 4 && memcmp (r->element[2]->str, "STOP", 4) == 0)
            stop = TRUE;
          else
            {
              count++;
              __atomic_store_n (&rs->count, count, __ATOMIC_RELEASE);
              __atomic_store_n (&rs->t_last, now_ns (), __ATOMIC_RELEASE);
            }
        }
      freeReplyObject (r);
      if (stop)
        break;
    }
  return NULL;
}

static gboolean
raw_get_reply (redisContext *c, GString *err)
{
  redisReply *r = NULL;
  if (redisGetReply (c, (void **) &r) != REDIS_OK || r == NULL)
    {
      g_string_printf (err, "publisher: %s", c->errstr);
      return FALSE;
    }
  gboolean ok = r->type == REDIS_REPLY_INTEGER;
  if (!ok)
    g_string_printf (err, "PUBLISH answered %s", r->type == REDIS_REPLY_ERROR ? r->str : "a non-integer");
  freeReplyObject (r);
  return ok;
}

/* SUBSCRIBEs c to the raw channel (the confirmation is read). */
gboolean
raw_subscribe (redisContext *c, GString *err)
{
  redisReply *r = redisCommand (c, "SUBSCRIBE %s", RAW_CHANNEL);
  if (r == NULL || r->type != REDIS_REPLY_ARRAY)
    {
      g_string_printf (err, "SUBSCRIBE failed: %s", r ? "unexpected reply" : c->errstr);
      if (r)
        freeReplyObject (r);
      return FALSE;
    }
  freeReplyObject (r);
  return TRUE;
}

/* PUBLISHes a non-counted marker that must reach `want` subscribers, then
 * reads it on subs[0..nsubs) (nothing else may be pending there). */
static gboolean
raw_check (redisContext *pub, RawSub *subs, int nsubs, long long want, const char *what, GString *err)
{
  redisReply *r = redisCommand (pub, "PUBLISH %s %s", RAW_CHANNEL, "{\"warmup\":true}");
  if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer != want)
    {
      g_string_printf (err, "%s PUBLISH reached %lld subscriber(s), want %lld", what,
                       r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL, want);
      if (r)
        freeReplyObject (r);
      return FALSE;
    }
  freeReplyObject (r);
  for (int i = 0; i < nsubs; i++)
    {
      r = NULL;
      if (redisGetReply (subs[i].c, (void **) &r) != REDIS_OK || r == NULL)
        {
          g_string_printf (err, "%s message lost at subscriber %d: %s", what, i, subs[i].c->errstr);
          return FALSE;
        }
      freeReplyObject (r);
    }
  return TRUE;
}

static void
run_raw (double seconds, int window, int samples, int nsubs, Result *res)
{
  redisContext *pub = NULL, *sub;
  RawSub *rs = g_new0 (RawSub, nsubs);
  pthread_t *thr = g_new0 (pthread_t, nsubs);
  int started = 0;
  char payload[256];
  GArray *lat = g_array_new (FALSE, FALSE, sizeof (double));
  redisReply *r;

  res->subs = nsubs;
  if ((pub = redis_open (res->err)) == NULL || (rs[0].c = redis_open (res->err)) == NULL)
    goto out;
  sub = rs[0].c;
  if (!raw_subscribe (sub, res->err) || !raw_check (pub, rs, 1, 1, "warm-up", res->err))
    goto out;

  /* latency first, on a quiet path: one at a time, one subscriber */
  for (int i = 0; i < samples; i++)
    {
      uint64_t n = LAT_BASE + (uint64_t) i;
      int k = make_payload (payload, sizeof payload, n);
      int64_t ts = now_ns ();
      int done = 0;
      redisAppendCommand (pub, "PUBLISH %s %b", RAW_CHANNEL, payload, (size_t) k);
      while (!done)
        if (redisBufferWrite (pub, &done) != REDIS_OK)
          {
            g_string_printf (res->err, "publisher: %s", pub->errstr);
            goto out;
          }
      for (;;)
        {
          r = NULL;
          if (redisGetReply (sub, (void **) &r) != REDIS_OK || r == NULL)
            {
              g_string_printf (res->err, "latency probe %d: %s", i, sub->errstr);
              goto out;
            }
          gboolean mine = r->type == REDIS_REPLY_ARRAY && r->elements == 3
                          && r->element[2]->type == REDIS_REPLY_STRING
                          && has_seq (r->element[2]->str, r->element[2]->len, n);
          freeReplyObject (r);
          if (mine)
            break;
        }
      double us = (double) (now_ns () - ts) / 1000.0;
      g_array_append_val (lat, us);
      if (!raw_get_reply (pub, res->err))
        goto out;
    }
  lat_finish (lat, &res->lat);

  /* the other subscribers join; all of them must see one more marker */
  for (int i = 1; i < nsubs; i++)
    if ((rs[i].c = redis_open (res->err)) == NULL || !raw_subscribe (rs[i].c, res->err))
      goto out;
  if (nsubs > 1 && !raw_check (pub, rs, nsubs, nsubs, "subscriber check", res->err))
    goto out;

  /* throughput: keep up to `window` PUBLISHes in flight, refill at half */
  for (; started < nsubs; started++)
    if (pthread_create (&thr[started], NULL, raw_sub_thread, &rs[started]) != 0)
      {
        g_string_printf (res->err, "pthread_create failed");
        goto out;
      }
  uint64_t sent = 0, acked = 0;
  int64_t t0 = now_ns (), deadline = t0 + (int64_t) (seconds * 1e9), t_pub_end;
  while (now_ns () < deadline)
    {
      while (sent - acked < (uint64_t) window)
        {
          int k = make_payload (payload, sizeof payload, sent + 1);
          redisAppendCommand (pub, "PUBLISH %s %b", RAW_CHANNEL, payload, (size_t) k);
          sent++;
        }
      uint64_t target = sent - (uint64_t) window / 2;
      while (acked < target)
        {
          if (!raw_get_reply (pub, res->err))
            goto out;
          acked++;
        }
    }
  while (acked < sent)
    {
      if (!raw_get_reply (pub, res->err))
        goto out;
      acked++;
    }
  t_pub_end = now_ns ();
  /* Redis delivers in order per connection: STOP comes after everything
   * published, so each subscriber drains all of it first (or times out) */
  r = redisCommand (pub, "PUBLISH %s STOP", RAW_CHANNEL);
  if (r)
    freeReplyObject (r);
  for (int i = 0; i < started; i++)
    pthread_join (thr[i], NULL);
  started = 0;
  res->sent = acked;
  res->expected = acked * (uint64_t) nsubs;
  res->sub_min = UINT64_MAX;
  int64_t t_last = 0;
  for (int i = 0; i < nsubs; i++)
    {
      res->received += rs[i].count;
      res->sub_min = MIN (res->sub_min, rs[i].count);
      res->sub_max = MAX (res->sub_max, rs[i].count);
      t_last = MAX (t_last, rs[i].t_last);
      if (rs[i].err[0])
        {
          if (res->cut_off++ == 0)
            g_string_printf (res->note, "subscriber %d: %s", i, rs[i].err);
        }
    }
  res->pub_rate = (double) acked / ((double) (t_pub_end - t0) / 1e9);
  res->rate = t_last > t0 ? (double) res->received / ((double) (t_last - t0) / 1e9) : 0.0;

  res->ok = TRUE;

out:
  if (started)
    {
      /* unblock the subscriber threads: they stop on STOP or their timeout */
      if (pub && !pub->err)
        {
          r = redisCommand (pub, "PUBLISH %s STOP", RAW_CHANNEL);
          if (r)
            freeReplyObject (r);
        }
      for (int i = 0; i < started; i++)
        pthread_join (thr[i], NULL);
    }
  g_array_free (lat, TRUE);
  if (pub)
    redisFree (pub);
  for (int i = 0; i < nsubs; i++)
    if (rs[i].c)
      redisFree (rs[i].c);
  g_free (rs);
  g_free (thr);
}

/* ------------------------------------------------------------------------ */
/* native protocol over Unix sockets */

int
connect_unix (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof sa.sun_path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  strcpy (sa.sun_path, path);
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

static void
set_nonblock (int fd, gboolean on)
{
  int fl = fcntl (fd, F_GETFL, 0);
  if (fl >= 0)
    (void) fcntl (fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

int
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, buf, len);
      if (w > 0)
        {
          buf += w;
          len -= (size_t) w;
        }
      else if (w < 0 && errno == EINTR)
        continue;
      else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          struct pollfd p = { .fd = fd, .events = POLLOUT };
          if (poll (&p, 1, IO_TIMEOUT_S * 1000) <= 0)
            {
              errno = ETIMEDOUT;
              return -1;
            }
        }
      else
        return -1;
    }
  return 0;
}


void
lines_init (Lines *l, int fd)
{
  l->fd = fd;
  l->buf = g_malloc (RBUF_CAP);
  l->len = 0;
}

void
lines_clear (Lines *l)
{
  if (l->fd >= 0)
    close (l->fd);
  l->fd = -1;
  g_clear_pointer (&l->buf, g_free);
}

/* Next line (without '\n', NUL-terminated, valid until the next call);
 * waits at most timeout_ms for more data. Returns its length, or -1. */
ssize_t
lines_next_timeout (Lines *l, char **line, size_t *consumed, int timeout_ms)
{
  for (;;)
    {
      if (*consumed)
        {
          memmove (l->buf, l->buf + *consumed, l->len - *consumed);
          l->len -= *consumed;
          *consumed = 0;
        }
      char *nl = memchr (l->buf, '\n', l->len);
      if (nl)
        {
          *nl = '\0';
          *line = l->buf;
          *consumed = (size_t) (nl - l->buf) + 1;
          return nl - l->buf;
        }
      if (l->len >= RBUF_CAP - 1)
        {
          errno = EMSGSIZE;
          return -1;
        }
      struct pollfd p = { .fd = l->fd, .events = POLLIN };
      int pr = poll (&p, 1, timeout_ms);
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr <= 0)
        {
          errno = pr == 0 ? ETIMEDOUT : errno;
          return -1;
        }
      ssize_t r = read (l->fd, l->buf + l->len, RBUF_CAP - 1 - l->len);
      if (r < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (r <= 0)
        {
          errno = r == 0 ? ECONNRESET : errno;
          return -1;
        }
      l->len += (size_t) r;
    }
}

static ssize_t
lines_next (Lines *l, char **line, size_t *consumed)
{
  return lines_next_timeout (l, line, consumed, IO_TIMEOUT_S * 1000);
}

gboolean
is_event (const char *line)
{
  return g_str_has_prefix (line, "{\"event\":");
}

static gboolean
is_success (const char *line)
{
  return strstr (line, "\"status\":\"success\"") != NULL;
}

/* Subscriber thread on daemon A: counts events, and ensemble.dropped. */
typedef struct
{
  int      fd;
  char    *buf;      /* RBUF_CAP bytes; starts with what `Lines` had read ahead */
  size_t   len;
  int      stop;     /* atomic */
  uint64_t events;   /* atomic */
  uint64_t dropped;  /* atomic */
  uint64_t other;
  int64_t  t_last;   /* atomic */
  int      closed;   /* atomic */
} EnsSub;

static void
ens_sub_line (EnsSub *es, const char *s, size_t len, uint64_t *events, uint64_t *dropped)
{
  static const char EV[] = "{\"event\":";
  static const char DROP[] = "{\"event\":\"ensemble.dropped\"";

  if (len < sizeof EV - 1 || memcmp (s, EV, sizeof EV - 1) != 0)
    es->other++;
  else if (len >= sizeof DROP - 1 && memcmp (s, DROP, sizeof DROP - 1) == 0)
    {
      const char *c = memmem (s, len, "\"count\":", 8);
      *dropped += c ? g_ascii_strtoull (c + 8, NULL, 10) : 1;
    }
  else
    (*events)++;
}

/* Counts the whole lines in es->buf[0..total) and keeps the rest. */
static void
ens_sub_lines (EnsSub *es, size_t total, uint64_t *events, uint64_t *dropped)
{
  const char *s = es->buf, *end = es->buf + total, *nl;
  while ((nl = memchr (s, '\n', (size_t) (end - s))))
    {
      ens_sub_line (es, s, (size_t) (nl - s), events, dropped);
      s = nl + 1;
    }
  es->len = (size_t) (end - s);
  if (es->len && s != es->buf)
    memmove (es->buf, s, es->len);
}

static void *
ens_sub_thread (void *arg)
{
  EnsSub *es = arg;
  char *buf = es->buf;
  uint64_t events = 0, dropped = 0;

  ens_sub_lines (es, es->len, &events, &dropped);
  set_nonblock (es->fd, TRUE);
  while (!__atomic_load_n (&es->stop, __ATOMIC_ACQUIRE))
    {
      struct pollfd p = { .fd = es->fd, .events = POLLIN };
      if (poll (&p, 1, 20) <= 0)
        continue;
      for (;;)
        {
          if (es->len == RBUF_CAP)
            es->len = 0; /* absurd line: drop it */
          ssize_t r = read (es->fd, buf + es->len, RBUF_CAP - es->len);
          if (r < 0 && errno == EINTR)
            continue;
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break; /* drained */
          if (r <= 0)
            {
              __atomic_store_n (&es->closed, 1, __ATOMIC_RELEASE);
              goto out;
            }
          ens_sub_lines (es, es->len + (size_t) r, &events, &dropped);
        }
      if (events != es->events)
        __atomic_store_n (&es->t_last, now_ns (), __ATOMIC_RELEASE);
      __atomic_store_n (&es->events, events, __ATOMIC_RELEASE);
      __atomic_store_n (&es->dropped, dropped, __ATOMIC_RELEASE);
    }
out:
  __atomic_store_n (&es->events, events, __ATOMIC_RELEASE);
  __atomic_store_n (&es->dropped, dropped, __ATOMIC_RELEASE);
  return NULL;
}

/* Publisher on daemon B: up to `window` publish requests in flight for
 * `seconds` (refilled at half the window), replies counted by '\n'. */
static gboolean
ens_publish_pipelined (int fd, double seconds, int window, uint64_t *acked_out, uint64_t *errors_out,
                       int64_t *t_end_out, GString *err)
{
  static const char ERR_MARK[] = "\"status\":\"error\"";
  size_t ocap = (size_t) window * LINE_CAP;
  g_autofree char *obuf = g_malloc (ocap);
  g_autofree char *rbuf = g_malloc (RBUF_CAP);
  size_t olen = 0, ooff = 0;
  uint64_t sent = 0, got = 0, errs = 0;
  int64_t deadline = now_ns () + (int64_t) (seconds * 1e9), drain_deadline = 0;
  gboolean stopping = FALSE;

  set_nonblock (fd, TRUE);
  for (;;)
    {
      int64_t now = now_ns ();
      if (!stopping && now >= deadline)
        {
          stopping = TRUE;
          drain_deadline = now + 30 * 1000000000LL;
        }
      if (stopping && ooff == olen && got >= sent)
        break;
      if (stopping && now >= drain_deadline)
        {
          g_string_printf (err, "timed out draining publish replies (%" PRIu64 " of %" PRIu64 ")", got, sent);
          return FALSE;
        }
      if (!stopping && ooff == olen && sent - got <= (uint64_t) window / 2)
        {
          olen = ooff = 0;
          while (sent - got < (uint64_t) window)
            {
              olen += (size_t) make_publish_line (obuf + olen, ocap - olen, ++sent);
            }
        }
      if (ooff < olen)
        {
          ssize_t w = write (fd, obuf + ooff, olen - ooff);
          if (w > 0)
            ooff += (size_t) w;
          else if (w < 0 && errno != EAGAIN && errno != EINTR)
            {
              g_string_printf (err, "publisher write: %s", g_strerror (errno));
              return FALSE;
            }
        }
      struct pollfd p = { .fd = fd, .events = POLLIN | (ooff < olen ? POLLOUT : 0) };
      if (poll (&p, 1, 100) < 0 && errno != EINTR)
        {
          g_string_printf (err, "poll: %s", g_strerror (errno));
          return FALSE;
        }
      if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      for (;;)
        {
          ssize_t r = read (fd, rbuf, RBUF_CAP);
          if (r > 0)
            {
              const char *s = rbuf, *end = rbuf + r, *m;
              for (const char *q = s; (q = memchr (q, '\n', (size_t) (end - q))); q++)
                got++;
              while ((m = memmem (s, (size_t) (end - s), ERR_MARK, sizeof ERR_MARK - 1)))
                {
                  errs++;
                  s = m + 1;
                }
              continue;
            }
          if (r == 0)
            {
              g_string_printf (err, "daemon B closed the publisher connection");
              return FALSE;
            }
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          g_string_printf (err, "publisher read: %s", g_strerror (errno));
          return FALSE;
        }
    }
  *acked_out = got;
  *errors_out = errs;
  *t_end_out = now_ns ();
  return TRUE;
}

/* Sends one request line on a blocking connection; returns its reply. */
ssize_t
request (Lines *l, const char *req, char **reply, size_t *consumed, GString *err, const char *what)
{
  ssize_t n;
  if (write_all (l->fd, req, strlen (req)) < 0)
    {
      g_string_printf (err, "%s: write: %s", what, g_strerror (errno));
      return -1;
    }
  do
    n = lines_next (l, reply, consumed);
  while (n >= 0 && is_event (*reply));
  if (n < 0)
    g_string_printf (err, "%s: %s", what, g_strerror (errno));
  else if (!is_success (*reply))
    {
      g_string_printf (err, "%s failed: %s", what, *reply);
      n = -1;
    }
  return n;
}

/* Publishes n on B and waits until A's subscriber has it; the reply to
 * the publish is read afterwards.  Returns the time in us, or < 0. */
static double
ens_round_trip (Lines *a, size_t *ca, Lines *b, size_t *cb, uint64_t n, GString *err)
{
  char line[LINE_CAP], *got;
  int k = make_publish_line (line, sizeof line, n);
  int64_t ts = now_ns ();
  ssize_t len;

  if (write_all (b->fd, line, (size_t) k) < 0)
    {
      g_string_printf (err, "publish %" PRIu64 ": %s", n, g_strerror (errno));
      return -1;
    }
  do
    len = lines_next (a, &got, ca);
  while (len >= 0 && !(is_event (got) && has_seq (got, (size_t) len, n)));
  if (len < 0)
    {
      g_string_printf (err, "event %" PRIu64 " never reached daemon A: %s", n, g_strerror (errno));
      return -1;
    }
  double us = (double) (now_ns () - ts) / 1000.0;
  len = lines_next (b, &got, cb);
  if (len < 0 || !is_success (got))
    {
      g_string_printf (err, "publish %" PRIu64 ": %s", n, len < 0 ? g_strerror (errno) : got);
      return -1;
    }
  return us;
}

/* The subscriber thread takes the connection over, with whatever `l` has
 * read past the `consumed` bytes. */
static void
lines_hand_over (Lines *l, size_t consumed, EnsSub *es)
{
  memmove (l->buf, l->buf + consumed, l->len - consumed);
  es->fd = l->fd;
  es->buf = l->buf;
  es->len = l->len - consumed;
  l->buf = NULL;
  l->len = 0;
}

static void
run_ensemble (double seconds, int window, int samples, int nsubs, Result *res)
{
  static const char SUB[] =
    "{\"id\":\"sub\",\"action\":\"subscribe\",\"data\":{\"topics\":[\"" TOPIC "\"]}}\n";
  Lines *a = g_new0 (Lines, nsubs), b = { .fd = -1 };
  size_t *ca = g_new0 (size_t, nsubs), cb = 0;
  char *reply;
  EnsSub *es = g_new0 (EnsSub, nsubs);
  pthread_t *thr = g_new0 (pthread_t, nsubs);
  int started = 0;
  GArray *lat = g_array_new (FALSE, FALSE, sizeof (double));

  res->subs = nsubs;
  for (int i = 0; i < nsubs; i++)
    {
      a[i].fd = -1;
      es[i].fd = -1;
    }
  int fa = connect_unix (opt_sock_a);
  if (fa < 0)
    {
      g_string_printf (res->err, "connect %s: %s", opt_sock_a, g_strerror (errno));
      goto out;
    }
  lines_init (&a[0], fa);
  int fb = connect_unix (opt_sock_b);
  if (fb < 0)
    {
      g_string_printf (res->err, "connect %s: %s", opt_sock_b, g_strerror (errno));
      goto out;
    }
  lines_init (&b, fb);
  if (request (&a[0], SUB, &reply, &ca[0], res->err, "subscribe on A") < 0)
    goto out;

  /* warm-up: A's bridge may still be subscribing on Redis, so publish
   * every 200 ms until an event arrives (10 s at most) */
  gboolean warm = FALSE;
  for (int k = 0; k < 50 && !warm; k++)
    {
      char line[LINE_CAP], *got;
      int n = make_publish_line (line, sizeof line, WARM_BASE + (uint64_t) k);
      if (write_all (b.fd, line, (size_t) n) < 0 || lines_next (&b, &got, &cb) < 0 || !is_success (got))
        {
          g_string_printf (res->err, "warm-up publish on B failed");
          goto out;
        }
      int64_t until = now_ns () + 200 * 1000000LL;
      while (!warm && now_ns () < until)
        {
          ssize_t len = lines_next_timeout (&a[0], &got, &ca[0], 20);
          if (len < 0 && errno != ETIMEDOUT)
            {
              g_string_printf (res->err, "subscriber on A: %s", g_strerror (errno));
              goto out;
            }
          if (len >= 0 && is_event (got) && memmem (got, (size_t) len, WARM_MARK, sizeof WARM_MARK - 1))
            warm = TRUE;
        }
    }
  if (!warm)
    {
      g_string_printf (res->err, "no event published on B reached A within 10 s");
      goto out;
    }

  /* latency, one at a time, with the first subscriber only */
  for (int i = 0; i < samples; i++)
    {
      double us = ens_round_trip (&a[0], &ca[0], &b, &cb, LAT_BASE + (uint64_t) i, res->err);
      if (us < 0)
        goto out;
      g_array_append_val (lat, us);
    }
  lat_finish (lat, &res->lat);

  /* the other subscribers join; all of them must see one more event */
  if (nsubs > 1)
    {
      char line[LINE_CAP], *got;
      for (int i = 1; i < nsubs; i++)
        {
          int fd = connect_unix (opt_sock_a);
          if (fd < 0)
            {
              g_string_printf (res->err, "connect %s (subscriber %d): %s", opt_sock_a, i, g_strerror (errno));
              goto out;
            }
          lines_init (&a[i], fd);
          if (request (&a[i], SUB, &reply, &ca[i], res->err, "subscribe on A") < 0)
            goto out;
        }
      int n = make_publish_line (line, sizeof line, CHECK_SEQ);
      if (write_all (b.fd, line, (size_t) n) < 0 || lines_next (&b, &got, &cb) < 0 || !is_success (got))
        {
          g_string_printf (res->err, "check publish on B failed");
          goto out;
        }
      for (int i = 0; i < nsubs; i++)
        {
          ssize_t len;
          do
            len = lines_next (&a[i], &got, &ca[i]);
          while (len >= 0 && !(is_event (got) && has_seq (got, (size_t) len, CHECK_SEQ)));
          if (len < 0)
            {
              g_string_printf (res->err, "check event never reached subscriber %d: %s", i, g_strerror (errno));
              goto out;
            }
        }
    }

  /* throughput: the subscriber threads take A's sockets over */
  for (int i = 0; i < nsubs; i++)
    lines_hand_over (&a[i], ca[i], &es[i]);
  for (; started < nsubs; started++)
    if (pthread_create (&thr[started], NULL, ens_sub_thread, &es[started]) != 0)
      {
        g_string_printf (res->err, "pthread_create failed");
        goto out;
      }
  uint64_t acked = 0, errors = 0;
  int64_t t0 = now_ns (), t_pub_end = t0;
  if (!ens_publish_pipelined (b.fd, seconds, window, &acked, &errors, &t_pub_end, res->err))
    goto out;
  /* wait for the deliveries still on their way: until every subscriber
   * has all of them (received or reported dropped), or nothing came for
   * 2 s, or 60 s in all */
  uint64_t due = (acked - errors) * (uint64_t) nsubs, last = 0;
  int64_t last_progress = now_ns (), give_up = last_progress + 60 * 1000000000LL;
  for (;;)
    {
      uint64_t seen = 0;
      gboolean closed = FALSE;
      for (int i = 0; i < nsubs; i++)
        {
          seen += __atomic_load_n (&es[i].events, __ATOMIC_ACQUIRE) + __atomic_load_n (&es[i].dropped, __ATOMIC_ACQUIRE);
          closed |= __atomic_load_n (&es[i].closed, __ATOMIC_ACQUIRE) != 0;
        }
      int64_t now = now_ns ();
      if (seen >= due || closed || now > give_up)
        break;
      if (seen != last)
        {
          last = seen;
          last_progress = now;
        }
      else if (now - last_progress > DRAIN_IDLE_NS)
        break;
      g_usleep (2000);
    }
  for (int i = 0; i < started; i++)
    __atomic_store_n (&es[i].stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < started; i++)
    pthread_join (thr[i], NULL);
  started = 0;
  res->sent = acked;
  res->errors = errors;
  res->expected = due;
  res->sub_min = UINT64_MAX;
  int64_t t_last = 0;
  for (int i = 0; i < nsubs; i++)
    {
      res->received += es[i].events;
      res->dropped += es[i].dropped;
      res->sub_min = MIN (res->sub_min, es[i].events);
      res->sub_max = MAX (res->sub_max, es[i].events);
      t_last = MAX (t_last, es[i].t_last);
      if (es[i].closed && res->cut_off++ == 0)
        g_string_printf (res->note, "daemon A closed subscriber %d's connection", i);
    }
  res->pub_rate = (double) acked / ((double) (t_pub_end - t0) / 1e9);
  res->rate = t_last > t0 ? (double) res->received / ((double) (t_last - t0) / 1e9) : 0.0;
  res->ok = TRUE;

out:
  for (int i = 0; i < started; i++)
    __atomic_store_n (&es[i].stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < started; i++)
    pthread_join (thr[i], NULL);
  g_array_free (lat, TRUE);
  for (int i = 0; i < nsubs; i++)
    {
      lines_clear (&a[i]); /* closes the socket the thread had */
      g_free (es[i].buf);
    }
  lines_clear (&b);
  g_free (a);
  g_free (ca);
  g_free (es);
  g_free (thr);
}

/* ------------------------------------------------------------------------ */

static void
print_result (const char *label, const char *unit, Result *r)
{
  g_autofree char *title = g_strdup_printf ("%s (%d subscriber%s)", label, r->subs, r->subs == 1 ? "" : "s");

  if (!r->ok)
    {
      printf ("%s: FAILED (%s)\n", title, r->err->str);
      fflush (stdout);
      return;
    }
  printf ("%s: %.0f %s delivered (publish %.0f/s; %" PRIu64 " of %" PRIu64 " received", title, r->rate, unit,
          r->pub_rate, r->received, r->expected);
  if (r->subs > 1)
    printf (" [%" PRIu64 "..%" PRIu64 " per subscriber]", r->sub_min, r->sub_max);
  if (r->dropped)
    printf (", %" PRIu64 " dropped by the daemon (ensemble.dropped)", r->dropped);
  if (r->errors)
    printf (", %" PRIu64 " publish errors", r->errors);
  if (r->expected > r->received + r->dropped)
    printf (", %" PRIu64 " missing", r->expected - r->received - r->dropped);
  if (r->cut_off)
    printf (", %d subscriber%s cut off: %s", r->cut_off, r->cut_off == 1 ? "" : "s", r->note->str);
  printf (")\n%s latency (%zu round trips, 1 subscriber): p50 %.1f us  p99 %.1f us\n", label, r->lat.n, r->lat.p50,
          r->lat.p99);
  fflush (stdout);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- cross-node delivery through Redis, vs raw Redis pub/sub");

  g_option_context_add_main_entries (ctx, opt_entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "ens-bench-redis: %s\n", error->message);
      return 2;
    }
  if ((opt_sock_a == NULL) != (opt_sock_b == NULL))
    {
      fprintf (stderr, "ens-bench-redis: give both --socket-a and --socket-b, or neither\n");
      return 2;
    }
  if (opt_host == NULL)
    opt_host = g_strdup ("127.0.0.1");
  double seconds = opt_seconds > 0 ? opt_seconds : (opt_quick ? 0.5 : 3.0);
  int window = CLAMP (opt_window, 2, 65536);
  int samples = CLAMP (opt_samples > 0 ? opt_samples : (opt_quick ? 300 : 2000), 1, 1000000);
  int nsubs = CLAMP (opt_subscribers, 1, MAX_SUBS);
  const char *subs_s = nsubs == 1 ? "" : "s";
  int rc = 0;

  signal (SIGPIPE, SIG_IGN);
  fprintf (stderr, "# %.2f s publishing per mode, window %d, %d latency round trips, %d subscriber%s, Redis %s:%d\n",
           seconds, window, samples, nsubs, subs_s, opt_host, opt_port);

  Result raw = { .err = g_string_new (NULL), .note = g_string_new (NULL) };
  run_raw (seconds, window, samples, nsubs, &raw);
  print_result ("raw redis pub/sub", "msgs/s", &raw);
  if (!raw.ok)
    rc = 1;

  Result ens = { .err = g_string_new (NULL), .note = g_string_new (NULL) };
  if (opt_sock_a)
    {
      run_ensemble (seconds, window, samples, nsubs, &ens);
      print_result ("ensemble cross-node", "events/s", &ens);
      if (!ens.ok)
        rc = 1;
    }

  if (raw.ok && ens.ok && raw.rate > 0)
    {
      double ratio = ens.rate / raw.rate;
      double target = nsubs == 1 ? TARGET_RATIO_ONE : TARGET_RATIO_MANY;
      printf ("cross-node delivery (%d subscriber%s): %.0f deliveries/s vs raw Redis %.0f deliveries/s: ratio %.2f "
              "(target >= %.2f): %s\n",
              nsubs, subs_s, ens.rate, raw.rate, ratio, target, ratio >= target ? "PASS" : "MISS");
      printf ("p50 latency: ensemble %.3f ms vs raw %.3f ms\n", ens.lat.p50 / 1000.0, raw.lat.p50 / 1000.0);
    }
  else if (opt_sock_a)
    printf ("cross-node delivery (%d subscriber%s): n/a (a mode failed)\n", nsubs, subs_s);

  if (opt_rate > 0 && nsubs == 1 && opt_sock_a && rc == 0)
    {
      double load_seconds = opt_load_seconds > 0 ? opt_load_seconds : (opt_quick ? 0.5 : 2.0);
      if (!bench_fixed_load (opt_sock_a, opt_sock_b, opt_rate, load_seconds))
        rc = 1;
    }

  g_string_free (raw.err, TRUE);
  g_string_free (raw.note, TRUE);
  g_string_free (ens.err, TRUE);
  g_string_free (ens.note, TRUE);
  g_free (opt_host);
  g_free (opt_sock_a);
  g_free (opt_sock_b);
  return rc;
}
