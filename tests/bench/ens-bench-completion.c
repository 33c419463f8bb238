/* ens-bench-completion.c - latency benchmark for ensembled's completions
 * path (native protocol: newline-delimited JSON over a Unix stream socket).
 *
 * One run measures, sequentially (one request in flight at a time) on one
 * connection:
 *   1. "ping" round trip: the transport floor every other figure is
 *      compared with;
 *   2. streaming completions ({"stream":true}): ack time (send -> ack),
 *      client-observed time to the first COMPLETION_CHUNK, and, from the
 *      COMPLETION_RESULT's timings, the daemon's added latency to the first
 *      chunk (client first chunk - provider_first_chunk_ms) and its
 *      in-process hold (received_to_start_ms);
 *   3. the same without streaming: ack time, client-observed result time and
 *      the daemon's added latency to the result (result - provider_ms);
 *   in 2. and 3. one ping follows every completion, giving the transport
 *      floor under the same load: a mostly idle daemon (streaming waits on the
 *      provider's timer) wakes up slower than one kept busy by back-to-back
 *      pings, so 1. alone flatters the floor;
 * then a short concurrent phase: C connections (default 16), each keeping one
 * completion in flight, streaming and not, printing completions/s.
 *
 * Intended to run against the offline provider "local" (plugin
 * provider-local), which answers deterministically; the provider's own time
 * is taken out using the timings the daemon reports, so the figures describe
 * the daemon, not the provider.
 *
 * No JSON library on the hot path: requests are built with snprintf and the
 * few fields needed are picked out of each reply line by key.  Sockets are
 * non-blocking and driven by poll(); each line is timestamped when the read
 * that completed it returned.
 *
 * Usage: ens-bench-completion --socket PATH [--count N] [--quick]
 *                             [--concurrency C] [--provider NAME]
 *
 * Not part of the test suite; see tests/bench/run-bench-completion.sh.
 */
#include "ens-bench-lines.h"
#include "ens-bench-measure.h"
#include "ens-bench-native.h"
#include "ens-bench-net.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LINE_CAP        1024          /* max length of one generated request line */
#define CONN_BUF_CAP    (256 * 1024)  /* per-connection line assembly buffer */
#define ID_CAP          96
#define MAX_CONC        256
#define WARMUP          20            /* untimed requests before each sequential phase */
#define IO_TIMEOUT_S    30            /* per request (sequential) / without progress (concurrent) */
#define DEFAULT_COUNT   2000
#define QUICK_COUNT     300

#define TARGET_ADDED_MS 0.3

/* ------------------------------------------------------------------------ */
/* options */

static gchar    *opt_socket = NULL;
static gint      opt_count = -1;
static gboolean  opt_quick = FALSE;
static gint      opt_conc = 16;
static gchar    *opt_provider = NULL;

static GOptionEntry opt_entries[] = {
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &opt_socket,
    "ensembled socket (e.g. $XDG_RUNTIME_DIR/ensemble/ensemble.sock)", "PATH" },
  { "count", 'n', 0, G_OPTION_ARG_INT, &opt_count,
    "requests per phase (default 2000, --quick 300)", "N" },
  { "quick", 'q', 0, G_OPTION_ARG_NONE, &opt_quick,
    "short run (300 requests per phase)", NULL },
  { "concurrency", 'c', 0, G_OPTION_ARG_INT, &opt_conc,
    "completions in flight in the concurrent phase (default 16)", "C" },
  { "provider", 'p', 0, G_OPTION_ARG_STRING, &opt_provider,
    "pin completions to this provider backend (default: the router decides)", "NAME" },
  { NULL, 0, 0, 0, NULL, NULL, NULL }
};
/* ------------------------------------------------------------------------ */
/* small helpers */

static inline double
ns_to_ms (int64_t ns)
{
  return (double) ns / 1e6;
}

static int
write_all (int fd, const char *buf, size_t len)
{
  return ens_bench_write_all (fd, buf, len, IO_TIMEOUT_S * 1000);
}

typedef enum { LINE_OTHER, LINE_REPLY, LINE_CHUNK, LINE_RESULT } LineKind;

static LineKind
classify (const char *line)
{
  const char *ev = ens_bench_json_after_key (line, "\"event\"");
  if (ev)
    {
      if (strncmp (ev, "\"COMPLETION_CHUNK\"", 18) == 0)
        return LINE_CHUNK;
      if (strncmp (ev, "\"COMPLETION_RESULT\"", 19) == 0)
        return LINE_RESULT;
      return LINE_OTHER;
    }
  return ens_bench_json_after_key (line, "\"id\"") ? LINE_REPLY : LINE_OTHER;
}

/* ------------------------------------------------------------------------ */
/* connection with line assembly */

typedef EnsBenchLines Conn;

static gboolean
conn_open (Conn *c, const char *path, GString *err)
{
  int fd = ens_bench_connect_unix (path);
  ens_bench_lines_init (c, fd, CONN_BUF_CAP);
  if (fd < 0)
    {
      g_string_printf (err, "connect %s: %s", path, g_strerror (errno));
      return FALSE;
    }
  ens_bench_set_nonblock (fd, TRUE);
  return TRUE;
}

/* The next line and the time the read that completed it returned
 * (ens_bench_lines_next()): 1, 0 on timeout, -1 on error. */
static int
conn_line (Conn *c, int64_t deadline, char **line, int64_t *t)
{
  int r = ens_bench_lines_next (c, deadline, line, NULL);
  if (r > 0)
    *t = c->t_read;
  return r;
}

/* conn_line with the error / timeout turned into a message */
static gboolean
conn_line_or_err (Conn *c, int64_t deadline, char **line, int64_t *t, const char *what,
                  GString *err)
{
  int r = conn_line (c, deadline, line, t);
  if (r > 0)
    return TRUE;
  if (r == 0)
    g_string_printf (err, "%s: no answer within %d s", what, IO_TIMEOUT_S);
  else
    g_string_printf (err, "%s: %s", what,
                     errno == ECONNRESET ? "connection closed by the daemon" : g_strerror (errno));
  return FALSE;
}

/* ------------------------------------------------------------------------ */
/* statistics */

static void
print_stats (const char *label, GArray *a)
{
  EnsBenchStats s = ens_bench_stats_of (a);
  if (s.n == 0)
    {
      printf ("%-46s n/a\n", label);
      return;
    }
  printf ("%-46s p50 %8.3f  p90 %8.3f  p99 %8.3f  mean %8.3f ms  (n=%zu)\n", label, s.p50,
          s.p90, s.p99, s.mean, s.n);
}

static void
push (GArray *a, double v)
{
  g_array_append_val (a, v);
}

static void
print_ratio (const char *label, GArray *num, GArray *den)
{
  EnsBenchStats n = ens_bench_stats_of (num), d = ens_bench_stats_of (den);
  if (n.n > 0 && d.n > 0 && d.p50 > 0)
    printf ("ratio %s p50: %.2f\n", label, n.p50 / d.p50);
  else
    printf ("ratio %s p50: n/a\n", label);
}

/* ------------------------------------------------------------------------ */
/* requests */

static int
mk_complete (char *buf, size_t cap, const char *id, uint64_t n, gboolean stream)
{
  if (opt_provider)
    return snprintf (buf, cap,
                     "{\"id\":\"%s\",\"action\":\"complete\",\"data\":{\"prompt\":"
                     "\"benchmark prompt %" PRIu64 "\",\"stream\":%s,\"provider\":\"%s\"}}\n",
                     id, n, stream ? "true" : "false", opt_provider);
  return snprintf (buf, cap,
                   "{\"id\":\"%s\",\"action\":\"complete\",\"data\":{\"prompt\":"
                   "\"benchmark prompt %" PRIu64 "\",\"stream\":%s}}\n",
                   id, n, stream ? "true" : "false");
}

/* one ping round trip, in ms; < 0 on failure */
static double
one_ping (Conn *c, uint64_t n, GString *err)
{
  char line[LINE_CAP], id[ID_CAP];
  snprintf (id, sizeof id, "p%" PRIu64, n);
  int k = snprintf (line, sizeof line, "{\"id\":\"%s\",\"action\":\"ping\"}\n", id);
  int64_t t0 = ens_bench_now_ns ();
  if (write_all (c->fd, line, (size_t) k) < 0)
    {
      g_string_printf (err, "ping: write: %s", g_strerror (errno));
      return -1;
    }
  int64_t deadline = t0 + (int64_t) IO_TIMEOUT_S * 1000000000LL;
  for (;;)
    {
      char *l;
      int64_t t;
      if (!conn_line_or_err (c, deadline, &l, &t, "ping", err))
        return -1;
      if (classify (l) != LINE_REPLY || !ens_bench_json_string_is (l, "\"id\"", id))
        continue;  /* a stray event */
      if (!ens_bench_json_after_key (l, "\"pong\""))
        {
          ens_bench_set_err_line (err, "ping failed", l);
          return -1;
        }
      return ns_to_ms (t - t0);
    }
}

typedef struct
{
  double  ack_ms;        /* send -> ack */
  double  first_ms;      /* send -> first COMPLETION_CHUNK; < 0 if none */
  double  result_ms;     /* send -> COMPLETION_RESULT */
  double  hold_ms;       /* timings.received_to_start_ms; < 0 if absent */
  double  prov_first_ms; /* timings.provider_first_chunk_ms; < 0 if absent */
  double  prov_ms;       /* timings.provider_ms; < 0 if absent */
  guint   chunks;
  char    provider[ID_CAP];
} OneResult;

/* The fields a COMPLETION_RESULT line carries for us; FALSE (with @err) when
 * it reports a failure. */
static gboolean
parse_result (const char *l, OneResult *o, GString *err)
{
  const char *res = ens_bench_json_after_key (l, "\"result\"");
  if (!res || *res != '{')
    {
      ens_bench_set_err_line (err, "completion failed", l);
      return FALSE;
    }
  const char *tm = ens_bench_json_after_key (res, "\"timings\"");
  o->hold_ms = o->prov_first_ms = o->prov_ms = -1;
  if (tm && *tm == '{')
    {
      /* only inside the timings object (flat: numbers only) */
      char obj[512];
      const char *end = strchr (tm, '}');
      size_t len = end ? (size_t) (end - tm) : 0;
      double v;
      if (len > 0 && len < sizeof obj)
        {
          memcpy (obj, tm, len);
          obj[len] = '\0';
          if (ens_bench_json_get_double (obj, "\"received_to_start_ms\"", &v))
            o->hold_ms = v;
          if (ens_bench_json_get_double (obj, "\"provider_first_chunk_ms\"", &v))
            o->prov_first_ms = v;
          if (ens_bench_json_get_double (obj, "\"provider_ms\"", &v))
            o->prov_ms = v;
        }
    }
  return TRUE;
}

/* One completion on @c, waiting for its result. */
static gboolean
one_completion (Conn *c, uint64_t n, gboolean stream, OneResult *o, GString *err)
{
  char line[LINE_CAP], id[ID_CAP], rid[ID_CAP] = "";
  gboolean got_ack = FALSE, got_result = FALSE;

  memset (o, 0, sizeof *o);
  o->first_ms = -1;
  snprintf (id, sizeof id, "c%" PRIu64, n);
  int k = mk_complete (line, sizeof line, id, n, stream);
  if (k <= 0 || k >= LINE_CAP)
    {
      g_string_printf (err, "request line too long");
      return FALSE;
    }
  int64_t t0 = ens_bench_now_ns ();
  if (write_all (c->fd, line, (size_t) k) < 0)
    {
      g_string_printf (err, "complete: write: %s", g_strerror (errno));
      return FALSE;
    }
  int64_t deadline = t0 + (int64_t) IO_TIMEOUT_S * 1000000000LL;
  while (!got_ack || !got_result)
    {
      char *l;
      int64_t t;
      if (!conn_line_or_err (c, deadline, &l, &t, "complete", err))
        return FALSE;
      switch (classify (l))
        {
        case LINE_REPLY:
          if (!ens_bench_json_string_is (l, "\"id\"", id))
            break;
          if (!ens_bench_json_get_string (l, "\"request_id\"", rid, sizeof rid))
            {
              ens_bench_set_err_line (err, "complete refused", l);
              return FALSE;
            }
          (void) ens_bench_json_get_string (l, "\"provider\"", o->provider, sizeof o->provider);
          o->ack_ms = ns_to_ms (t - t0);
          got_ack = TRUE;
          break;
        case LINE_CHUNK:
          /* one completion in flight: before the ack (never seen) it is ours */
          if (rid[0] && !ens_bench_json_string_is (l, "\"request_id\"", rid))
            break;
          if (o->chunks++ == 0)
            o->first_ms = ns_to_ms (t - t0);
          break;
        case LINE_RESULT:
          if (rid[0] && !ens_bench_json_string_is (l, "\"request_id\"", rid))
            break;
          if (!parse_result (l, o, err))
            return FALSE;
          o->result_ms = ns_to_ms (t - t0);
          got_result = TRUE;
          break;
        case LINE_OTHER:
        default:
          break;
        }
    }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* sequential phases */

typedef struct
{
  gboolean ok;
  GArray  *ping;
  GString *err;
} PingPhase;

static void
run_ping_phase (Conn *c, guint count, PingPhase *ph)
{
  ph->ok = FALSE;
  for (guint i = 0; i < WARMUP * 5; i++)
    if (one_ping (c, i, ph->err) < 0)
      return;
  for (guint i = 0; i < count; i++)
    {
      double ms = one_ping (c, 1000000 + i, ph->err);
      if (ms < 0)
        return;
      push (ph->ping, ms);
    }
  ph->ok = TRUE;
}

typedef struct
{
  gboolean  stream;
  gboolean  ok;
  GArray   *ack;        /* send -> ack */
  GArray   *client;     /* send -> first chunk (stream) / result (no stream) */
  GArray   *prov;       /* provider_first_chunk_ms (stream) / provider_ms */
  GArray   *added;      /* client - prov */
  GArray   *hold;       /* received_to_start_ms */
  GArray   *result;     /* send -> result (both) */
  GArray   *ping;       /* a ping after each completion: the floor under the same load */
  guint     no_chunk;   /* streamed completions without a chunk */
  guint     no_timings; /* results without the timings needed */
  char      provider[ID_CAP];
  GString  *err;
} SeqPhase;

static void
seq_phase_init (SeqPhase *ph, gboolean stream, guint count)
{
  memset (ph, 0, sizeof *ph);
  ph->stream = stream;
  ph->ack = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  ph->client = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  ph->prov = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  ph->added = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  ph->hold = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  ph->result = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  ph->ping = g_array_sized_new (FALSE, FALSE, sizeof (double), count);
  ph->err = g_string_new (NULL);
}

static void
seq_phase_clear (SeqPhase *ph)
{
  g_array_unref (ph->ack);
  g_array_unref (ph->client);
  g_array_unref (ph->prov);
  g_array_unref (ph->added);
  g_array_unref (ph->hold);
  g_array_unref (ph->result);
  g_array_unref (ph->ping);
  g_string_free (ph->err, TRUE);
}

static void
run_seq_phase (Conn *c, guint count, SeqPhase *ph)
{
  OneResult o;
  uint64_t base = ph->stream ? 2000000 : 3000000;

  ph->ok = FALSE;
  for (guint i = 0; i < WARMUP; i++)
    if (!one_completion (c, base + i, ph->stream, &o, ph->err))
      return;
  g_strlcpy (ph->provider, o.provider[0] ? o.provider : "?", sizeof ph->provider);
  base += WARMUP;
  for (guint i = 0; i < count; i++)
    {
      if (!one_completion (c, base + i, ph->stream, &o, ph->err))
        return;
      double pms = one_ping (c, base + i, ph->err);
      if (pms < 0)
        return;
      push (ph->ping, pms);
      push (ph->ack, o.ack_ms);
      push (ph->result, o.result_ms);
      if (o.hold_ms >= 0)
        push (ph->hold, o.hold_ms);
      double client = ph->stream ? o.first_ms : o.result_ms;
      double prov = ph->stream ? o.prov_first_ms : o.prov_ms;
      if (ph->stream && o.chunks == 0)
        {
          ph->no_chunk++;
          continue;
        }
      push (ph->client, client);
      if (prov < 0)
        {
          ph->no_timings++;
          continue;
        }
      push (ph->prov, prov);
      push (ph->added, client - prov);
    }
  ph->ok = TRUE;
}

static void
print_seq_phase (SeqPhase *ph)
{
  const char *m = ph->stream ? "stream" : "no stream";
  char label[128];

  if (!ph->ok)
    {
      printf ("completions (%s): FAILED (%s)\n", m, ph->err->str);
      return;
    }
#define LBL(...) (snprintf (label, sizeof label, __VA_ARGS__), label)
  print_stats (LBL ("%s: ack (send -> ack)", m), ph->ack);
  if (ph->stream)
    {
      print_stats (LBL ("%s: first chunk (client, send -> chunk)", m), ph->client);
      print_stats (LBL ("%s: provider_first_chunk_ms", m), ph->prov);
      print_stats (LBL ("%s: daemon added to first chunk", m), ph->added);
      print_stats (LBL ("%s: result (client, send -> result)", m), ph->result);
    }
  else
    {
      print_stats (LBL ("%s: result (client, send -> result)", m), ph->client);
      print_stats (LBL ("%s: provider_ms", m), ph->prov);
      print_stats (LBL ("%s: daemon added to result", m), ph->added);
    }
  print_stats (LBL ("%s: daemon hold (received_to_start_ms)", m), ph->hold);
  print_stats (LBL ("%s: ping after each completion", m), ph->ping);
#undef LBL
  if (ph->no_chunk)
    printf ("%s: %u completions streamed no chunk (provider does not stream?)\n", m,
            ph->no_chunk);
  if (ph->no_timings)
    printf ("%s: %u results without the provider timings\n", m, ph->no_timings);
  fflush (stdout);
}

/* ------------------------------------------------------------------------ */
/* concurrent phase: C connections, one completion in flight on each */

typedef struct
{
  Conn     c;
  gboolean busy;
  int64_t  t0;
  char     id[ID_CAP];
  char     rid[ID_CAP];
} Slot;

typedef struct
{
  gboolean ok;
  guint    done;
  double   secs;
  double   rate;
  GArray  *lat;   /* send -> result */
  GString *err;
} ConcResult;

static gboolean
slot_send (Slot *s, uint64_t n, gboolean stream, GString *err)
{
  char line[LINE_CAP];
  snprintf (s->id, sizeof s->id, "k%" PRIu64, n);
  s->rid[0] = '\0';
  int k = mk_complete (line, sizeof line, s->id, n, stream);
  s->t0 = ens_bench_now_ns ();
  if (write_all (s->c.fd, line, (size_t) k) < 0)
    {
      g_string_printf (err, "complete: write: %s", g_strerror (errno));
      return FALSE;
    }
  s->busy = TRUE;
  return TRUE;
}

static void
run_concurrent (const char *path, guint count, int conc, gboolean stream, ConcResult *res)
{
  Slot *slots = g_new0 (Slot, conc);
  struct pollfd *pfd = g_new0 (struct pollfd, conc);
  int opened = 0;
  guint sent = 0;
  uint64_t base = stream ? 4000000 : 5000000;
  int64_t t_start = 0, t_last = 0, last_progress;

  res->ok = FALSE;
  res->done = 0;
  for (; opened < conc; opened++)
    if (!conn_open (&slots[opened].c, path, res->err))
      goto out;

  t_start = ens_bench_now_ns ();
  for (int i = 0; i < conc && sent < count; i++)
    if (!slot_send (&slots[i], base + sent++, stream, res->err))
      goto out;
  last_progress = t_start;

  while (res->done < count)
    {
      for (int i = 0; i < conc; i++)
        {
          pfd[i].fd = slots[i].busy ? slots[i].c.fd : -1;
          pfd[i].events = POLLIN;
          pfd[i].revents = 0;
        }
      int pr = poll (pfd, (nfds_t) conc, 100);
      if (pr < 0 && errno != EINTR)
        {
          g_string_printf (res->err, "poll: %s", g_strerror (errno));
          goto out;
        }
      if (ens_bench_now_ns () - last_progress > (int64_t) IO_TIMEOUT_S * 1000000000LL)
        {
          g_string_printf (res->err, "no result for %d s (%u of %u done)", IO_TIMEOUT_S,
                           res->done, count);
          goto out;
        }
      if (pr <= 0)
        continue;
      for (int i = 0; i < conc; i++)
        {
          Slot *s = &slots[i];
          if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          for (;;)
            {
              char *l;
              int64_t t;
              int r = conn_line (&s->c, 0, &l, &t);
              if (r == 0)
                break;
              if (r < 0)
                {
                  g_string_printf (res->err, "connection %d: %s", i,
                                   errno == ECONNRESET ? "closed by the daemon"
                                                       : g_strerror (errno));
                  goto out;
                }
              LineKind kind = classify (l);
              if (kind == LINE_REPLY && ens_bench_json_string_is (l, "\"id\"", s->id))
                {
                  if (!ens_bench_json_get_string (l, "\"request_id\"", s->rid, sizeof s->rid))
                    {
                      ens_bench_set_err_line (res->err, "complete refused", l);
                      goto out;
                    }
                }
              else if (kind == LINE_RESULT && s->busy &&
                       (!s->rid[0] || ens_bench_json_string_is (l, "\"request_id\"", s->rid)))
                {
                  OneResult o;
                  if (!parse_result (l, &o, res->err))
                    goto out;
                  push (res->lat, ns_to_ms (t - s->t0));
                  res->done++;
                  t_last = last_progress = t;
                  s->busy = FALSE;
                  if (sent < count && !slot_send (s, base + sent++, stream, res->err))
                    goto out;
                }
            }
        }
    }
  res->ok = TRUE;

out:
  if (t_start && t_last > t_start)
    {
      res->secs = (double) (t_last - t_start) / 1e9;
      res->rate = (double) res->done / res->secs;
    }
  for (int i = 0; i < opened; i++)
    ens_bench_lines_clear (&slots[i].c);
  g_free (pfd);
  g_free (slots);
}

static void
print_concurrent (const char *m, int conc, ConcResult *r)
{
  if (!r->ok)
    {
      printf ("concurrent %d in flight (%s): FAILED (%s)\n", conc, m, r->err->str);
      return;
    }
  EnsBenchStats s = ens_bench_stats_of (r->lat);
  printf ("concurrent %d in flight (%s): %.0f completions/s  (n=%u in %.2f s; "
          "send -> result p50 %.3f  p99 %.3f ms)\n",
          conc, m, r->rate, r->done, r->secs, s.p50, s.p99);
  fflush (stdout);
}

/* ------------------------------------------------------------------------ */

static void
print_target (const char *label, SeqPhase *ph)
{
  if (!ph->ok || ph->added->len == 0)
    {
      printf ("%s p50: n/a (target < %.1f ms): MISS\n", label, TARGET_ADDED_MS);
      return;
    }
  EnsBenchStats added = ens_bench_stats_of (ph->added), ack = ens_bench_stats_of (ph->ack);
  printf ("%s p50: %.3f ms (ack p50 %.3f ms; target < %.1f ms): %s\n", label, added.p50,
          ack.p50, TARGET_ADDED_MS, added.p50 < TARGET_ADDED_MS ? "PASS" : "MISS");
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  GOptionContext *ctx = g_option_context_new ("- ensembled completions latency benchmark");
  g_option_context_add_main_entries (ctx, opt_entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "ens-bench-completion: %s\n", error->message);
      return 2;
    }
  g_option_context_free (ctx);
  if (!opt_socket)
    {
      fprintf (stderr, "ens-bench-completion: --socket PATH is required\n");
      return 2;
    }
  if (opt_provider && strpbrk (opt_provider, "\"\\"))
    {
      fprintf (stderr, "ens-bench-completion: bad --provider\n");
      return 2;
    }

  guint count = opt_count > 0 ? (guint) opt_count : (opt_quick ? QUICK_COUNT : DEFAULT_COUNT);
  int conc = CLAMP (opt_conc, 1, MAX_CONC);
  int rc = 0;

  signal (SIGPIPE, SIG_IGN);

  fprintf (stderr, "# %u requests per phase, sequential (after %d warm-up), then %d in flight%s%s\n",
           count, WARMUP, conc, opt_provider ? "; provider " : "",
           opt_provider ? opt_provider : "");

  Conn c;
  GString *cerr = g_string_new (NULL);
  if (!conn_open (&c, opt_socket, cerr))
    {
      fprintf (stderr, "ens-bench-completion: %s\n", cerr->str);
      g_string_free (cerr, TRUE);
      return 1;
    }
  g_string_free (cerr, TRUE);

  /* (a) the transport floor */
  PingPhase ping = { FALSE, g_array_sized_new (FALSE, FALSE, sizeof (double), count),
                     g_string_new (NULL) };
  run_ping_phase (&c, count, &ping);
  if (ping.ok)
    print_stats ("ping rtt (transport floor)", ping.ping);
  else
    {
      printf ("ping: FAILED (%s)\n", ping.err->str);
      rc = 1;
    }
  fflush (stdout);

  /* (b)(c) streaming, then without */
  SeqPhase st, ns;
  seq_phase_init (&st, TRUE, count);
  seq_phase_init (&ns, FALSE, count);
  if (ping.ok)
    {
      run_seq_phase (&c, count, &st);
      if (st.ok)
        printf ("# provider: %s\n", st.provider);
      print_seq_phase (&st);
      if (!st.ok)
        rc = 1;
    }
  if (ping.ok && st.ok)
    {
      run_seq_phase (&c, count, &ns);
      print_seq_phase (&ns);
      if (!ns.ok)
        rc = 1;
    }
  ens_bench_lines_clear (&c);

  /* concurrent */
  ConcResult cst = { FALSE, 0, 0, 0, g_array_new (FALSE, FALSE, sizeof (double)), g_string_new (NULL) };
  ConcResult cns = { FALSE, 0, 0, 0, g_array_new (FALSE, FALSE, sizeof (double)), g_string_new (NULL) };
  if (rc == 0)
    {
      run_concurrent (opt_socket, count, conc, TRUE, &cst);
      print_concurrent ("stream", conc, &cst);
      run_concurrent (opt_socket, count, conc, FALSE, &cns);
      print_concurrent ("no stream", conc, &cns);
      if (!cst.ok || !cns.ok)
        rc = 1;
    }

  /* ratios against the transport floor, and the summary */
  if (ping.ok && st.ok)
    {
      print_ratio ("stream ack/ping", st.ack, ping.ping);
      print_ratio ("stream added-to-first-chunk/ping", st.added, ping.ping);
      print_ratio ("stream hold/ping", st.hold, ping.ping);
      print_ratio ("stream added-to-first-chunk/interleaved ping", st.added, st.ping);
    }
  if (ping.ok && ns.ok)
    {
      print_ratio ("no-stream ack/ping", ns.ack, ping.ping);
      print_ratio ("no-stream added-to-result/ping", ns.added, ping.ping);
      print_ratio ("no-stream hold/ping", ns.hold, ping.ping);
      print_ratio ("no-stream added-to-result/interleaved ping", ns.added, ns.ping);
    }
  print_target ("daemon added latency", &st);
  print_target ("daemon added latency (no stream, to result)", &ns);
  fflush (stdout);

  seq_phase_clear (&st);
  seq_phase_clear (&ns);
  g_array_unref (ping.ping);
  g_string_free (ping.err, TRUE);
  g_array_unref (cst.lat);
  g_string_free (cst.err, TRUE);
  g_array_unref (cns.lat);
  g_string_free (cns.err, TRUE);
  return rc;
}