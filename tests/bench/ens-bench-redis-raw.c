/* ens-bench-redis-raw.c - phases 1 and 2 of ens-bench-redis on raw Redis
 * pub/sub, the baseline: one hiredis connection SUBSCRIBEs, another
 * PUBLISHes; round trips one at a time, then pipelined PUBLISHes with every
 * subscriber on a thread of its own. */
#include "ens-bench-redis.h"

#include <pthread.h>
#include <string.h>

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
              __atomic_store_n (&rs->t_last, ens_bench_now_ns (), __ATOMIC_RELEASE);
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

gboolean
raw_subscribe (redisContext *c, const char *channel, GString *err)
{
  redisReply *r = redisCommand (c, "SUBSCRIBE %s", channel);
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

void
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
  if (!raw_subscribe (sub, RAW_CHANNEL, res->err) || !raw_check (pub, rs, 1, 1, "warm-up", res->err))
    goto out;

  /* latency first, on a quiet path: one at a time, one subscriber */
  for (int i = 0; i < samples; i++)
    {
      uint64_t n = LAT_BASE + (uint64_t) i;
      int k = make_payload (payload, sizeof payload, n);
      int64_t ts = ens_bench_now_ns ();
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
      double us = (double) (ens_bench_now_ns () - ts) / 1000.0;
      g_array_append_val (lat, us);
      if (!raw_get_reply (pub, res->err))
        goto out;
    }
  res->lat = ens_bench_stats_of (lat);

  /* the other subscribers join; all of them must see one more marker */
  for (int i = 1; i < nsubs; i++)
    if ((rs[i].c = redis_open (res->err)) == NULL || !raw_subscribe (rs[i].c, RAW_CHANNEL, res->err))
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
  int64_t t0 = ens_bench_now_ns (), deadline = t0 + (int64_t) (seconds * 1e9), t_pub_end;
  while (ens_bench_now_ns () < deadline)
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
  t_pub_end = ens_bench_now_ns ();
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
