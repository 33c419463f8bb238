/* ens-bench-redis-load.c - phase 3 of ens-bench-redis: latency at a fixed
 * offered load.  The publisher sends one ~100-byte payload every 1/rate s
 * (on an absolute schedule: a late send does not push the next ones back),
 * the one subscriber notes each delivery's age from the "t" its payload
 * carries (CLOCK_MONOTONIC of this process).  Raw Redis pub/sub first, then
 * ensemble (publish on daemon B, subscribe on daemon A: B -> Redis -> A);
 * the figure of merit is the p50 that ensemble adds over raw Redis. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ens-bench-redis.h"

#include "ens-bench-native.h"
#include "ens-bench-net.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOAD_CHANNEL "ens-bench-load"
#define LOAD_TOPIC   "bench.xload" /* as long as the TOPIC of make_publish_line */
#define LOAD_BASE    5000000000ULL /* n of the measured publishes */
#define LOAD_STOP    5999999999ULL /* n of the last one, which ends the subscriber */
#define LOAD_WARM    5900000000ULL /* n of warm-up publishes (not measured) */
#define TARGET_ADDED_P50_MS 0.15

G_STATIC_ASSERT (sizeof LOAD_TOPIC == sizeof TOPIC);

typedef struct
{
  redisContext *c; /* raw */
  EnsBenchLines *lines; /* ensemble */
  GArray *samples; /* us */
  uint64_t got;
  char err[160];
} LoadSub;

/* The age of the payload in @text, or < 0 when it is not a measured one. */
static double
sample_of (const char *text, size_t len, gboolean *stop)
{
  const char *n = memmem (text, len, "\"n\":", 4), *t = memmem (text, len, "\"t\":", 4);
  uint64_t seq;

  *stop = FALSE;
  if (n == NULL || t == NULL)
    return -1;
  seq = g_ascii_strtoull (n + 4, NULL, 10);
  if (seq == LOAD_STOP)
    *stop = TRUE;
  if (seq < LOAD_BASE || seq >= LOAD_WARM)
    return -1;
  return (double) (ens_bench_now_ns () - g_ascii_strtoll (t + 4, NULL, 10)) / 1000.0;
}

static void *
raw_load_sub (void *arg)
{
  LoadSub *ls = arg;

  for (;;)
    {
      redisReply *r = NULL;
      gboolean stop = FALSE;

      if (redisGetReply (ls->c, (void **) &r) != REDIS_OK || r == NULL)
        {
          g_snprintf (ls->err, sizeof ls->err, "raw subscriber: %s", ls->c->errstr);
          return NULL;
        }
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
        {
          double us = sample_of (r->element[2]->str, r->element[2]->len, &stop);
          if (us >= 0)
            {
              g_array_append_val (ls->samples, us);
              ls->got++;
            }
        }
      freeReplyObject (r);
      if (stop)
        return NULL;
    }
}

static void *
ens_load_sub (void *arg)
{
  LoadSub *ls = arg;
  for (;;)
    {
      char *line;
      gboolean stop = FALSE;
      ssize_t len = ens_bench_lines_wait (ls->lines, 5000, &line);

      if (len < 0)
        {
          g_snprintf (ls->err, sizeof ls->err, "subscriber on A: %s", g_strerror (errno));
          return NULL;
        }
      if (!ens_bench_is_event (line))
        continue;
      double us = sample_of (line, (size_t) len, &stop);
      if (us >= 0)
        {
          g_array_append_val (ls->samples, us);
          ls->got++;
        }
      if (stop)
        return NULL;
    }
}

typedef struct
{
  gboolean ok;
  uint64_t sent, got;
  double achieved; /* publishes/s */
  EnsBenchStats lat; /* microseconds */
  GString *err;
} LoadResult;

/* Sends PUBLISH n without waiting for its answer (read_answers reads them). */
static void
raw_publish (redisContext *pub, uint64_t n, GString *err)
{
  char payload[256];
  int k = make_payload (payload, sizeof payload, n), done = 0;

  redisAppendCommand (pub, "PUBLISH %s %b", LOAD_CHANNEL, payload, (size_t) k);
  while (!done)
    if (redisBufferWrite (pub, &done) != REDIS_OK)
      {
        g_string_printf (err, "PUBLISH: %s", pub->errstr);
        return;
      }
}

/* Reads the PUBLISH answers there are (@wait: until *@answered == @sent). */
static void
read_answers (redisContext *pub, uint64_t *answered, uint64_t sent, gboolean wait, GString *err)
{
  while (*answered < sent)
    {
      void *r = NULL;
      struct pollfd p = { .fd = pub->fd, .events = POLLIN };

      if (redisReaderGetReply (pub->reader, &r) != REDIS_OK)
        {
          g_string_printf (err, "PUBLISH answer: %s", pub->reader->errstr);
          return;
        }
      if (r != NULL)
        {
          freeReplyObject (r);
          (*answered)++;
          continue;
        }
      if (poll (&p, 1, wait ? 5000 : 0) <= 0)
        {
          if (wait)
            g_string_printf (err, "PUBLISH answers: timed out");
          return;
        }
      if (redisBufferRead (pub) != REDIS_OK)
        {
          g_string_printf (err, "PUBLISH answer: %s", pub->errstr);
          return;
        }
    }
}

static void
run_raw_load (int rate, double seconds, LoadResult *res)
{
  LoadSub ls = { .samples = g_array_new (FALSE, FALSE, sizeof (double)) };
  redisContext *pub = NULL;
  pthread_t thr;
  uint64_t total = (uint64_t) (rate * seconds), answered = 0;
  int64_t interval = 1000000000LL / rate, t0, t_end;

  if ((ls.c = redis_open (res->err)) == NULL || (pub = redis_open (res->err)) == NULL)
    goto out;
  if (!raw_subscribe (ls.c, LOAD_CHANNEL, res->err))
    goto out;
  if (pthread_create (&thr, NULL, raw_load_sub, &ls) != 0)
    {
      g_string_printf (res->err, "pthread_create failed");
      goto out;
    }
  t0 = ens_bench_now_ns ();
  for (uint64_t i = 0; i < total && res->err->len == 0; i++)
    {
      ens_bench_sleep_until (t0 + (int64_t) i * interval);
      raw_publish (pub, LOAD_BASE + i, res->err);
      res->sent++;
      read_answers (pub, &answered, res->sent, FALSE, res->err);
    }
  t_end = ens_bench_now_ns ();
  raw_publish (pub, LOAD_STOP, res->err);
  read_answers (pub, &answered, res->sent + 1, TRUE, res->err);
  pthread_join (thr, NULL);
  if (ls.err[0])
    g_string_assign (res->err, ls.err);
  res->got = ls.got;
  res->achieved = (double) res->sent / ((double) (t_end - t0) / 1e9);
  res->lat = ens_bench_stats_of (ls.samples);
  res->ok = res->err->len == 0;

out:
  g_array_free (ls.samples, TRUE);
  if (pub)
    redisFree (pub);
  if (ls.c)
    redisFree (ls.c);
}

/* Reads the publish replies that are there (all of them with @wait). */
static gboolean
drain_replies (EnsBenchLines *b, uint64_t *replies, uint64_t want, GString *err)
{
  while (*replies < want)
    {
      char *line;
      ssize_t len = ens_bench_lines_wait (b, want == G_MAXUINT64 ? 0 : 5000, &line);

      if (len < 0 && errno == ETIMEDOUT && want == G_MAXUINT64)
        return TRUE;
      if (len < 0)
        {
          g_string_printf (err, "publisher on B: %s", g_strerror (errno));
          return FALSE;
        }
      if (!ens_bench_is_event (line))
        (*replies)++;
    }
  return TRUE;
}

/* Sends publish request @n (its reply is read later) on @b. */
static gboolean
publish_load (EnsBenchLines *b, uint64_t n, GString *err)
{
  char line[LINE_CAP];
  int k = make_publish_line (line, sizeof line, n);

  /* the topic of the throughput phases, renamed */
  memcpy (strstr (line, TOPIC), LOAD_TOPIC, sizeof LOAD_TOPIC - 1);
  if (ens_bench_write_all (b->fd, line, (size_t) k, IO_TIMEOUT_S * 1000) < 0)
    {
      g_string_printf (err, "publish: %s", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static void
run_ens_load (const char *sock_a, const char *sock_b, int rate, double seconds, LoadResult *res)
{
  static const char SUB[] = "{\"id\":\"sub\",\"action\":\"subscribe\",\"data\":{\"topics\":[\"" LOAD_TOPIC "\"]}}\n";
  EnsBenchLines a, b;
  char line[LINE_CAP], *reply;
  LoadSub ls = { .samples = g_array_new (FALSE, FALSE, sizeof (double)), .lines = &a };
  pthread_t thr;
  gboolean warm = FALSE, started = FALSE;
  uint64_t total = (uint64_t) (rate * seconds), replies = 0, sent = 0;
  int64_t interval = 1000000000LL / rate, t0, t_end;
  int fd;

  ens_bench_lines_init (&a, -1, 0);
  ens_bench_lines_init (&b, -1, 0);
  if ((fd = ens_bench_connect_unix (sock_a)) < 0)
    {
      g_string_printf (res->err, "connect %s: %s", sock_a, g_strerror (errno));
      goto out;
    }
  ens_bench_lines_init (&a, fd, RBUF_CAP);
  if ((fd = ens_bench_connect_unix (sock_b)) < 0)
    {
      g_string_printf (res->err, "connect %s: %s", sock_b, g_strerror (errno));
      goto out;
    }
  ens_bench_lines_init (&b, fd, RBUF_CAP);
  if (!ens_bench_lines_request (&a, SUB, IO_TIMEOUT_S * 1000, &reply, res->err, "subscribe on A"))
    goto out;
  /* A's bridge subscribes on Redis meanwhile: publish until one arrives */
  for (int k = 0; k < 100 && !warm; k++)
    {
      int n = snprintf (line, sizeof line,
                        "{\"id\":\"w\",\"action\":\"publish\",\"data\":{\"topic\":\"" LOAD_TOPIC "\",\"data\":"
                        "{\"n\":%" PRIu64 "}}}\n", (uint64_t) LOAD_WARM);
      if (ens_bench_write_all (b.fd, line, (size_t) n, IO_TIMEOUT_S * 1000) < 0 ||
          !ens_bench_lines_request (&b, "", IO_TIMEOUT_S * 1000, &reply, res->err, "warm-up publish"))
        goto out;
      int64_t until = ens_bench_now_ns () + 100 * 1000000LL;
      while (!warm && ens_bench_now_ns () < until)
        {
          ssize_t len = ens_bench_lines_wait (&a, 20, &reply);
          if (len < 0 && errno != ETIMEDOUT)
            {
              g_string_printf (res->err, "subscriber on A: %s", g_strerror (errno));
              goto out;
            }
          warm = len >= 0 && ens_bench_is_event (reply);
        }
    }
  if (!warm)
    {
      g_string_printf (res->err, "no event published on B reached A within 10 s");
      goto out;
    }
  /* the thread reads on from where `a` is */
  if (pthread_create (&thr, NULL, ens_load_sub, &ls) != 0)
    {
      g_string_printf (res->err, "pthread_create failed");
      goto out;
    }
  started = TRUE;
  t0 = ens_bench_now_ns ();
  for (uint64_t i = 0; i < total; i++)
    {
      ens_bench_sleep_until (t0 + (int64_t) i * interval);
      if (!publish_load (&b, LOAD_BASE + i, res->err))
        goto out;
      sent++;
      if (!drain_replies (&b, &replies, G_MAXUINT64, res->err))
        goto out;
    }
  t_end = ens_bench_now_ns ();
  if (!publish_load (&b, LOAD_STOP, res->err))
    goto out;
  sent++;
  if (!drain_replies (&b, &replies, sent, res->err))
    goto out;
  pthread_join (thr, NULL);
  started = FALSE;
  if (ls.err[0])
    g_string_assign (res->err, ls.err);
  res->sent = sent - 1;
  res->got = ls.got;
  res->achieved = (double) res->sent / ((double) (t_end - t0) / 1e9);
  res->lat = ens_bench_stats_of (ls.samples);
  res->ok = res->err->len == 0;

out:
  if (started)
    {
      shutdown (a.fd, SHUT_RDWR); /* the thread's read fails: it ends */
      pthread_join (thr, NULL);
    }
  g_array_free (ls.samples, TRUE);
  ens_bench_lines_clear (&a);
  ens_bench_lines_clear (&b);
}

static void
print_load (const char *label, int rate, LoadResult *r)
{
  if (!r->ok)
    printf ("fixed load %s: FAILED (%s)\n", label, r->err->str);
  else
    printf ("fixed load %s: offered %d/s (sent %.0f/s), %" PRIu64 " of %" PRIu64
            " delivered: latency p50 %.1f us  p99 %.1f us\n",
            label, rate, r->achieved, r->got, r->sent, r->lat.p50, r->lat.p99);
  fflush (stdout);
}

gboolean
bench_fixed_load (const char *sock_a, const char *sock_b, int rate, double seconds)
{
  LoadResult raw = { .err = g_string_new (NULL) }, ens = { .err = g_string_new (NULL) };
  gboolean ok;

  fprintf (stderr, "# fixed load: %d publishes/s for %.2f s, 1 subscriber\n", rate, seconds);
  run_raw_load (rate, seconds, &raw);
  print_load ("raw redis pub/sub", rate, &raw);
  run_ens_load (sock_a, sock_b, rate, seconds, &ens);
  print_load ("ensemble cross-node", rate, &ens);
  ok = raw.ok && ens.ok;
  if (ok)
    {
      double added = (ens.lat.p50 - raw.lat.p50) / 1000.0;
      printf ("added p50 latency at %d events/s: %.3f ms (ensemble %.3f ms vs raw %.3f ms; target <= %.2f ms): %s\n",
              rate, added, ens.lat.p50 / 1000.0, raw.lat.p50 / 1000.0, TARGET_ADDED_P50_MS,
              added <= TARGET_ADDED_P50_MS ? "PASS" : "MISS");
    }
  g_string_free (raw.err, TRUE);
  g_string_free (ens.err, TRUE);
  return ok;
}
