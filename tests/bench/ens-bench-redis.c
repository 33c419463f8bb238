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
 * Phases 1 and 2 on raw Redis are in ens-bench-redis-raw.c.
 *
 * Usage: ens-bench-redis --redis-port N [--redis-host H]
 *                        [--socket-a PATH --socket-b PATH]
 *                        [--seconds N] [--quick] [--window N] [--samples N]
 *                        [--subscribers N] [--rate N] [--load-seconds N]
 * Without the sockets only the raw figures are measured.
 * Not part of the test suite; see tests/bench/run-bench-redis.sh.
 */#include "ens-bench-redis.h"

#include "ens-bench-native.h"
#include "ens-bench-net.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* ~100-byte JSON object carrying the sequence number n */
int
make_payload (char *buf, size_t cap, uint64_t n)
{
  return snprintf (buf, cap,
                   "{\"n\":%" PRIu64 ",\"t\":%" PRId64 ",\"kind\":\"bench\","
                   "\"pad\":\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ\"}",
                   n, ens_bench_now_ns ());
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

gboolean
has_seq (const char *text, size_t len, uint64_t n)
{
  char mark[40];
  int k = snprintf (mark, sizeof mark, "\"n\":%" PRIu64 ",", n);
  return memmem (text, len, mark, (size_t) k) != NULL;
}

/* ------------------------------------------------------------------------ */
/* native protocol over Unix sockets */

static ssize_t
lines_next (EnsBenchLines *l, char **line)
{
  return ens_bench_lines_wait (l, IO_TIMEOUT_S * 1000, line);
}

static gboolean
is_success (const char *line)
{
  return ens_bench_status_is (line, "success");
}

/* Subscriber thread on daemon A: counts events, and ensemble.dropped. */
typedef struct
{
  int      fd;
  char    *buf;      /* RBUF_CAP bytes; starts with what the line reader had read ahead */
  size_t   len;
  int      stop;     /* atomic */
  uint64_t events;   /* atomic */
  uint64_t dropped;  /* atomic */
  int64_t  t_last;   /* atomic */
  int      closed;   /* atomic */
} EnsSub;

static void *
ens_sub_thread (void *arg)
{
  EnsSub *es = arg;
  char *buf = es->buf;
  EnsBenchEventCount count = { 0, 0, 0 };

  es->len = ens_bench_count_event_lines (&count, buf, es->len);
  ens_bench_set_nonblock (es->fd, TRUE);
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
          es->len = ens_bench_count_event_lines (&count, buf, es->len + (size_t) r);
        }
      if (count.events != es->events)
        __atomic_store_n (&es->t_last, ens_bench_now_ns (), __ATOMIC_RELEASE);
      __atomic_store_n (&es->events, count.events, __ATOMIC_RELEASE);
      __atomic_store_n (&es->dropped, count.dropped, __ATOMIC_RELEASE);
    }
out:
  __atomic_store_n (&es->events, count.events, __ATOMIC_RELEASE);
  __atomic_store_n (&es->dropped, count.dropped, __ATOMIC_RELEASE);
  return NULL;
}

static int
publish_line (char *buf, size_t cap, uint64_t n, void *user_data)
{
  (void) user_data;
  return make_publish_line (buf, cap, n);
}

/* Publisher on daemon B: up to `window` publish requests in flight for
 * `seconds` (refilled at half the window), replies counted by '\n'. */
static gboolean
ens_publish_pipelined (int fd, double seconds, int window, uint64_t *acked_out, uint64_t *errors_out,
                       int64_t *t_end_out, GString *err)
{
  EnsBenchPipeOpts opts = { .seconds = seconds, .window = window, .refill_at = window / 2, .drain_s = 30 };
  EnsBenchPipeResult pr;

  if (!ens_bench_pipeline (fd, &opts, publish_line, NULL, &pr, err))
    {
      g_string_prepend (err, "publisher on B: ");
      return FALSE;
    }
  *acked_out = pr.replies;
  *errors_out = pr.errors;
  *t_end_out = pr.t_end;
  return TRUE;
}

/* Publishes n on B and waits until A's subscriber has it; the reply to
 * the publish is read afterwards.  Returns the time in us, or < 0. */
static double
ens_round_trip (EnsBenchLines *a, EnsBenchLines *b, uint64_t n, GString *err)
{
  char line[LINE_CAP], *got;
  int k = make_publish_line (line, sizeof line, n);
  int64_t ts = ens_bench_now_ns ();
  ssize_t len;

  if (ens_bench_write_all (b->fd, line, (size_t) k, IO_TIMEOUT_S * 1000) < 0)
    {
      g_string_printf (err, "publish %" PRIu64 ": %s", n, g_strerror (errno));
      return -1;
    }
  do
    len = lines_next (a, &got);
  while (len >= 0 && !(ens_bench_is_event (got) && has_seq (got, (size_t) len, n)));
  if (len < 0)
    {
      g_string_printf (err, "event %" PRIu64 " never reached daemon A: %s", n, g_strerror (errno));
      return -1;
    }
  double us = (double) (ens_bench_now_ns () - ts) / 1000.0;
  len = lines_next (b, &got);
  if (len < 0 || !is_success (got))
    {
      g_string_printf (err, "publish %" PRIu64 ": %s", n, len < 0 ? g_strerror (errno) : got);
      return -1;
    }
  return us;
}

/* The subscriber thread takes the connection over, with whatever `l` has
 * read ahead. */
static void
lines_hand_over (EnsBenchLines *l, EnsSub *es)
{
  ens_bench_lines_compact (l);
  es->fd = l->fd;
  es->buf = g_steal_pointer (&l->buf);
  es->len = l->len;
  l->len = 0;
}

/* Connects to @path and subscribes to TOPIC; FALSE with @err. */
static gboolean
subscribe_on_a (EnsBenchLines *l, const char *path, GString *err)
{
  static const char SUB[] =
    "{\"id\":\"sub\",\"action\":\"subscribe\",\"data\":{\"topics\":[\"" TOPIC "\"]}}\n";
  char *reply;
  int fd = ens_bench_connect_unix (path);
  if (fd < 0)
    {
      g_string_printf (err, "connect %s: %s", path, g_strerror (errno));
      return FALSE;
    }
  ens_bench_lines_init (l, fd, RBUF_CAP);
  return ens_bench_lines_request (l, SUB, IO_TIMEOUT_S * 1000, &reply, err, "subscribe on A");
}

/* Publishes request @n on @b and reads its reply. */
static gboolean
publish_on_b (EnsBenchLines *b, uint64_t n)
{
  char line[LINE_CAP], *got;
  int k = make_publish_line (line, sizeof line, n);
  return ens_bench_write_all (b->fd, line, (size_t) k, IO_TIMEOUT_S * 1000) >= 0 && lines_next (b, &got) >= 0 &&
         is_success (got);
}

static void
run_ensemble (double seconds, int window, int samples, int nsubs, Result *res)
{
  EnsBenchLines *a = g_new0 (EnsBenchLines, nsubs), b;
  EnsSub *es = g_new0 (EnsSub, nsubs);
  pthread_t *thr = g_new0 (pthread_t, nsubs);
  int started = 0;
  GArray *lat = g_array_new (FALSE, FALSE, sizeof (double));

  res->subs = nsubs;
  for (int i = 0; i < nsubs; i++)
    {
      ens_bench_lines_init (&a[i], -1, 0);
      es[i].fd = -1;
    }
  ens_bench_lines_init (&b, -1, 0);
  if (!subscribe_on_a (&a[0], opt_sock_a, res->err))
    goto out;
  int fb = ens_bench_connect_unix (opt_sock_b);
  if (fb < 0)
    {
      g_string_printf (res->err, "connect %s: %s", opt_sock_b, g_strerror (errno));
      goto out;
    }
  ens_bench_lines_init (&b, fb, RBUF_CAP);

  /* warm-up: A's bridge may still be subscribing on Redis, so publish
   * every 200 ms until an event arrives (10 s at most) */
  gboolean warm = FALSE;
  for (int k = 0; k < 50 && !warm; k++)
    {
      char *got;
      if (!publish_on_b (&b, WARM_BASE + (uint64_t) k))
        {
          g_string_printf (res->err, "warm-up publish on B failed");
          goto out;
        }
      int64_t until = ens_bench_now_ns () + 200 * 1000000LL;
      while (!warm && ens_bench_now_ns () < until)
        {
          ssize_t len = ens_bench_lines_wait (&a[0], 20, &got);
          if (len < 0 && errno != ETIMEDOUT)
            {
              g_string_printf (res->err, "subscriber on A: %s", g_strerror (errno));
              goto out;
            }
          if (len >= 0 && ens_bench_is_event (got) && memmem (got, (size_t) len, WARM_MARK, sizeof WARM_MARK - 1))
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
      double us = ens_round_trip (&a[0], &b, LAT_BASE + (uint64_t) i, res->err);
      if (us < 0)
        goto out;
      g_array_append_val (lat, us);
    }
  res->lat = ens_bench_stats_of (lat);

  /* the other subscribers join; all of them must see one more event */
  if (nsubs > 1)
    {
      char *got;
      for (int i = 1; i < nsubs; i++)
        if (!subscribe_on_a (&a[i], opt_sock_a, res->err))
          {
            g_string_append_printf (res->err, " (subscriber %d)", i);
            goto out;
          }
      if (!publish_on_b (&b, CHECK_SEQ))
        {
          g_string_printf (res->err, "check publish on B failed");
          goto out;
        }
      for (int i = 0; i < nsubs; i++)
        {
          ssize_t len;
          do
            len = lines_next (&a[i], &got);
          while (len >= 0 && !(ens_bench_is_event (got) && has_seq (got, (size_t) len, CHECK_SEQ)));
          if (len < 0)
            {
              g_string_printf (res->err, "check event never reached subscriber %d: %s", i, g_strerror (errno));
              goto out;
            }
        }
    }

  /* throughput: the subscriber threads take A's sockets over */
  for (int i = 0; i < nsubs; i++)
    lines_hand_over (&a[i], &es[i]);
  for (; started < nsubs; started++)
    if (pthread_create (&thr[started], NULL, ens_sub_thread, &es[started]) != 0)
      {
        g_string_printf (res->err, "pthread_create failed");
        goto out;
      }
  uint64_t acked = 0, errors = 0;
  int64_t t0 = ens_bench_now_ns (), t_pub_end = t0;
  if (!ens_publish_pipelined (b.fd, seconds, window, &acked, &errors, &t_pub_end, res->err))
    goto out;
  /* wait for the deliveries still on their way: until every subscriber
   * has all of them (received or reported dropped), or nothing came for
   * 2 s, or 60 s in all */
  uint64_t due = (acked - errors) * (uint64_t) nsubs, last = 0;
  int64_t last_progress = ens_bench_now_ns (), give_up = last_progress + 60 * 1000000000LL;
  for (;;)
    {
      uint64_t seen = 0;
      gboolean closed = FALSE;
      for (int i = 0; i < nsubs; i++)
        {
          seen += __atomic_load_n (&es[i].events, __ATOMIC_ACQUIRE) + __atomic_load_n (&es[i].dropped, __ATOMIC_ACQUIRE);
          closed |= __atomic_load_n (&es[i].closed, __ATOMIC_ACQUIRE) != 0;
        }
      int64_t now = ens_bench_now_ns ();
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
      ens_bench_lines_clear (&a[i]); /* closes the socket the thread had */
      g_free (es[i].buf);
    }
  ens_bench_lines_clear (&b);
  g_free (a);
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