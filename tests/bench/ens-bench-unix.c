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
 * The baseline servers are in ens-bench-unix-server.c.
 * Not part of the test suite; see tests/bench/run-bench.sh.
 */
#include "ens-bench-unix.h"

#include "ens-bench-lines.h"
#include "ens-bench-measure.h"
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

#define LINE_CAP      ENS_BENCH_PIPE_LINE_CAP /* max length of one generated request line */
#define SUB_BUF_CAP   (128 * 1024)  /* per-subscriber line assembly buffer */
#define MAX_SUBS      ENS_BENCH_UNIX_MAX_SUBS
#define MAX_SAMPLES   (4 * 1000 * 1000)
#define IO_TIMEOUT_S  ENS_BENCH_UNIX_IO_TIMEOUT_S
#define FAN_TOPIC     ENS_BENCH_UNIX_FAN_TOPIC

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
/* request line generators (shared by baseline and ensembled phases) */

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

/* Keep up to `window` requests in flight on `fd` for `seconds`, then drain
 * (10 s at most); a new batch as soon as the previous one is written. */
static gboolean
run_pipelined (int fd, double seconds, int window, EnsBenchLineFn fn, void *ud,
               EnsBenchPipeResult *res, GString *err)
{
  EnsBenchPipeOpts opts = { .seconds = seconds, .window = window, .refill_at = window - 1, .drain_s = 10 };
  return ens_bench_pipeline (fd, &opts, fn, ud, res, err);
}

/* ------------------------------------------------------------------------ */
/* client: single request/reply round trips */

typedef struct
{
  size_t n;
  double p50, p99, mean;
} RttResult;

/* Takes @fd over (and closes it). */
static gboolean
run_rtt (int fd, double seconds, EnsBenchLineFn fn, void *ud, RttResult *res, GString *err)
{
  char line[LINE_CAP], *reply;
  EnsBenchLines l;
  uint64_t next_id = 1;
  gboolean ok = TRUE;
  GArray *samples = g_array_sized_new (FALSE, FALSE, sizeof (double), 65536);
  int64_t deadline = ens_bench_now_ns () + (int64_t) (seconds * 1e9);

  /* blocking reads: the wait for each reply is one read() */
  ens_bench_set_nonblock (fd, FALSE);
  ens_bench_set_io_timeout (fd, IO_TIMEOUT_S);
  ens_bench_lines_init (&l, fd, SUB_BUF_CAP);
  l.blocking = TRUE;
  memset (res, 0, sizeof *res);

  while (samples->len < MAX_SAMPLES)
    {
      int64_t t0 = ens_bench_now_ns ();
      if (t0 >= deadline)
        break;
      int k = fn (line, sizeof line, next_id++, ud);
      if (ens_bench_write_all (fd, line, (size_t) k, IO_TIMEOUT_S * 1000) < 0)
        {
          g_string_printf (err, "write: %s", g_strerror (errno));
          ok = FALSE;
          break;
        }
      if (ens_bench_lines_next (&l, 0, &reply, NULL) <= 0)
        {
          g_string_printf (err, "read: %s", errno == ECONNRESET ? "connection closed"
                           : errno == EMSGSIZE ? "reply line too long" : g_strerror (errno));
          ok = FALSE;
          break;
        }
      double us = (double) (ens_bench_now_ns () - t0) / 1000.0;
      g_array_append_val (samples, us);
    }

  EnsBenchStats s = ens_bench_stats_of (samples);
  res->n = s.n;
  res->p50 = s.p50;
  res->p99 = s.p99;
  res->mean = s.mean;
  g_array_free (samples, TRUE);
  ens_bench_lines_clear (&l);
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

static void *
subset_thread (void *arg)
{
  SubSet *ss = arg;
  struct pollfd pfds[MAX_SUBS];
  EnsBenchEventCount count = { 0, 0, 0 };
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
      uint64_t before = count.events;
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
                  count.other++;  /* absurdly long line: discard */
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
              ss->lens[i] = ens_bench_count_event_lines (&count, buf, len + (size_t) r);
              if ((size_t) r < SUB_BUF_CAP - len)
                break;  /* socket drained */
            }
        }
      if (count.events != before)
        __atomic_store_n (&ss->t_last, ens_bench_now_ns (), __ATOMIC_RELEASE);
      __atomic_store_n (&ss->events, count.events, __ATOMIC_RELEASE);
      __atomic_store_n (&ss->dropped, count.dropped, __ATOMIC_RELEASE);
      __atomic_store_n (&ss->other, count.other, __ATOMIC_RELEASE);
      __atomic_store_n (&ss->closed, closed, __ATOMIC_RELEASE);
    }
  return NULL;
}

typedef struct
{
  EnsBenchPipeResult pub;
  uint64_t   events;
  uint64_t   dropped;
  uint64_t   other;
  uint64_t   missing;  /* expected - events - dropped, if positive */
  double     secs;
  double     rate;
} FanResult;

/* One subscriber on @path: connected, subscribed, non-blocking; with what
 * was read past the reply at the start of *@buf (SUB_BUF_CAP bytes, transfer
 * full), its length in *@len. */
static int
fan_subscribe (const char *path, int i, char **buf, size_t *len, GString *err)
{
  EnsBenchLines l;
  char *reply;
  int fd = ens_bench_connect_unix (path);
  if (fd < 0)
    {
      g_string_printf (err, "connect subscriber %d: %s", i, g_strerror (errno));
      return -1;
    }
  g_autofree char *what = g_strdup_printf ("subscribe %d", i);
  ens_bench_lines_init (&l, fd, SUB_BUF_CAP);
  if (!ens_bench_lines_request (&l, SUBSCRIBE_LINE, IO_TIMEOUT_S * 1000, &reply, err, what))
    {
      ens_bench_lines_clear (&l);
      return -1;
    }
  ens_bench_lines_compact (&l);
  *buf = g_steal_pointer (&l.buf);
  *len = l.len;
  ens_bench_set_nonblock (fd, TRUE);
  return fd;
}

static gboolean
run_fanout (const char *path, double seconds, int nsubs, int window,
            FanResult *res, GString *err)
{
  SubSet *ss = g_new0 (SubSet, 1);
  gboolean ok = TRUE;
  gboolean thread_started = FALSE;
  pthread_t thr;
  int pub = -1;
  int64_t t0 = 0;

  memset (res, 0, sizeof *res);
  for (int i = 0; i < nsubs; i++)
    {
      int fd = fan_subscribe (path, i, &ss->bufs[ss->n], &ss->lens[ss->n], err);
      if (fd < 0)
        {
          ok = FALSE;
          goto out;
        }
      ss->fds[ss->n++] = fd;
    }

  pub = ens_bench_connect_unix (path);
  if (pub < 0)
    {
      g_string_printf (err, "connect publisher: %s", g_strerror (errno));
      ok = FALSE;
      goto out;
    }

  t0 = ens_bench_now_ns ();
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
  int64_t last_progress = ens_bench_now_ns ();
  int64_t give_up = last_progress + 10 * 1000000000LL;
  for (;;)
    {
      uint64_t seen = __atomic_load_n (&ss->events, __ATOMIC_ACQUIRE) +
                      __atomic_load_n (&ss->dropped, __ATOMIC_ACQUIRE);
      int64_t now = ens_bench_now_ns ();
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
/* phases */

typedef struct
{
  gboolean           ok;
  EnsBenchPipeResult pipe;
  RttResult          rtt;
  GString           *err;
} ReqResult;

static void
run_reqrep (const char *path, double seconds, int window, ReqResult *rr)
{
  rr->ok = FALSE;
  int fd = ens_bench_connect_unix (path);
  if (fd < 0)
    {
      g_string_printf (rr->err, "connect %s: %s", path, g_strerror (errno));
      return;
    }
  /* sanity probe: the reply must not be an error reply (echo returns the line) */
  static const char PROBE[] = "{\"id\":\"probe\",\"action\":\"ping\"}\n";
  EnsBenchLines l;
  char *reply;
  ens_bench_lines_init (&l, fd, 4096);
  if (ens_bench_write_all (fd, PROBE, sizeof PROBE - 1, IO_TIMEOUT_S * 1000) < 0 ||
      ens_bench_lines_wait (&l, IO_TIMEOUT_S * 1000, &reply) < 0)
    {
      g_string_printf (rr->err, "probe: %s", g_strerror (errno));
      ens_bench_lines_clear (&l);
      return;
    }
  if (ens_bench_status_is (reply, "error"))
    {
      g_string_printf (rr->err, "probe ping failed: %s", reply);
      ens_bench_lines_clear (&l);
      return;
    }

  gboolean ok = run_pipelined (fd, seconds, window, mk_ping, NULL, &rr->pipe, rr->err);
  ens_bench_lines_clear (&l);
  if (!ok)
    return;

  fd = ens_bench_connect_unix (path);
  if (fd < 0)
    {
      g_string_printf (rr->err, "connect %s: %s", path, g_strerror (errno));
      return;
    }
  rr->ok = run_rtt (fd, seconds, mk_ping, NULL, &rr->rtt, rr->err);
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