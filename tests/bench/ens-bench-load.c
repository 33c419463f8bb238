/* ens-bench-load — the gateway benchmark's load generator: one thread,
 * epoll, keep-alive connections, each with one request in flight, driving
 * the same load at an HTTP server or at ensembled's native Unix socket.
 *
 *   requests:  ens-bench-load --http HOST:PORT --path P [--body JSON] -c N -d SECS [--warmup SECS]
 *              ens-bench-load --unix SOCKET --body JSON -c N -d SECS [--warmup SECS]
 *              (--any-status 1: an answer of any status counts, not only 2xx)
 *   streams:   ens-bench-load --http HOST:PORT --path P --body JSON --streams N [--pid PID]
 *
 * Requests: POST (GET without --body) over HTTP/1.1, answered with a
 * Content-Length or a chunked body; on the Unix socket, the native request
 * {"id","action":"complete","data":BODY} per line, done when its
 * COMPLETION_RESULT event arrives.  After the warm-up it counts for SECS and
 * prints one line: ok=N errors=N rps=X p50_ms=X p99_ms=X max_ms=X.
 *
 * Streams: N connections at once, each one streamed request (the body
 * should ask for "stream": true); every SSE `data:` event is timestamped
 * when the read that brought it returned.  A stream stalls when two events
 * are more than 100 ms apart, or when it does not end with `data: [DONE]`
 * within its time.  With --pid it reads that process's RSS and open fds
 * before the streams, once every stream has had its first event (all of
 * them open at once; -1 when they never were) and every 20 ms, keeping the
 * peak.  Prints one line: streams=N finished=N stalled=N max_gap_ms=X
 * p99_gap_ms=X secs=X rss_before_kb rss_open_kb fds_before fds_open
 * rss_peak_kb fds_peak first_p50_ms first_max_ms (from a request sent to
 * its first event: how fast the streams got going).
 *
 * Not part of the test suite; see run-bench-gateway.py. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ens-bench-measure.h"
#include "ens-bench-net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_CAP (256 * 1024)
#define STALL_NS (100 * 1000000LL)

typedef enum { ST_IDLE, ST_HEAD, ST_BODY_LEN, ST_CHUNK_SIZE, ST_CHUNK_DATA, ST_CHUNK_CRLF, ST_TRAILER } State;

typedef struct {
  int fd;
  char buf[BUF_CAP];
  size_t len;
  State st;
  int status;
  size_t remaining; /* body bytes (ST_BODY_LEN) or chunk bytes left */
  int close_after;
  int64_t t0, t_last_event;
  uint64_t seq;
  /* streams */
  char carry[8];
  size_t carry_len;
  unsigned events;
  int done, failed, started;
  int64_t max_gap;
  int64_t first_event; /* ns from the request sent to its first event; 0: none yet */
} Conn;

static const char *opt_http, *opt_unix, *opt_path = "/", *opt_body;
static int opt_conns = 1, opt_streams, opt_pid, opt_any_status;
static double opt_secs = 5, opt_warmup = 1;
static struct sockaddr_in http_addr;
static int epfd;
static char *request;
static size_t request_len;
static int measuring;
static uint64_t n_ok, n_err;
static double *lat;
static size_t lat_len, lat_cap;
static double *gaps; /* ns */
static size_t gaps_len, gaps_cap;

static void
die (const char *what)
{
  fprintf (stderr, "ens-bench-load: %s: %s\n", what, strerror (errno));
  exit (1);
}

static int
conn_connect (Conn *c)
{
  int fd, one = 1;
  if (opt_unix)
    {
      if ((fd = ens_bench_connect_unix (opt_unix)) < 0)
        return -1;
    }
  else
    {
      fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect (fd, (struct sockaddr *) &http_addr, sizeof http_addr) < 0)
        return -1;
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
  c->fd = fd;
  c->len = 0;
  c->st = ST_IDLE;
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
  if (epoll_ctl (epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
    die ("epoll_ctl");
  return 0;
}

static void
conn_drop (Conn *c)
{
  epoll_ctl (epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close (c->fd);
  c->fd = -1;
}

/* The sockets are blocking: the timeout is never reached. */
static int
send_all (int fd, const char *p, size_t n)
{
  return ens_bench_write_all (fd, p, n, 30000);
}

static int
conn_send (Conn *c)
{
  c->t0 = ens_bench_now_ns ();
  c->st = ST_HEAD;
  if (opt_unix)
    {
      char line[8192];
      int k = snprintf (line, sizeof line, "{\"id\":\"b%llu\",\"action\":\"complete\",\"data\":%s}\n",
                        (unsigned long long) ++c->seq, opt_body);
      return send_all (c->fd, line, (size_t) k);
    }
  return send_all (c->fd, request, request_len);
}

static void
record_latency (int64_t ns)
{
  if (!measuring)
    return;
  if (lat_len == lat_cap)
    {
      lat_cap = lat_cap ? lat_cap * 2 : 65536;
      lat = realloc (lat, lat_cap * sizeof *lat);
    }
  lat[lat_len++] = (double) ns / 1e6;
}

/* A request ended (ok or not); the connection sends the next one. */
static void
request_done (Conn *c, int ok)
{
  int64_t t = ens_bench_now_ns ();
  if (measuring)
    {
      if (ok)
        n_ok++;
      else
        n_err++;
    }
  if (ok)
    record_latency (t - c->t0);
  c->st = ST_IDLE;
  if (opt_streams)
    return;
  if (c->close_after || c->fd < 0)
    {
      if (c->fd >= 0)
        conn_drop (c);
      if (conn_connect (c) < 0)
        die ("connect");
    }
  if (conn_send (c) < 0)
    die ("send");
}

/* SSE events in streamed body bytes: each `data:` is one event. */
static void
stream_bytes (Conn *c, const char *p, size_t n)
{
  char tmp[8 + 4096];
  int64_t t = ens_bench_now_ns ();
  while (n)
    {
      size_t take = n > 4096 ? 4096 : n;
      size_t m = c->carry_len + take;
      unsigned found = 0;
      memcpy (tmp, c->carry, c->carry_len);
      memcpy (tmp + c->carry_len, p, take);
      for (const char *q = tmp; (q = memmem (q, (size_t) (tmp + m - q), "data:", 5)); q += 5)
        found++;
      if (memmem (tmp, m, "[DONE]", 6))
        c->done = 1;
      c->carry_len = m < 5 ? m : 5;
      memcpy (c->carry, tmp + m - c->carry_len, c->carry_len);
      if (found)
        {
          if (c->events > 0)
            {
              int64_t gap = t - c->t_last_event;
              if (gap > c->max_gap)
                c->max_gap = gap;
              if (gaps_len == gaps_cap)
                {
                  gaps_cap = gaps_cap ? gaps_cap * 2 : 65536;
                  gaps = realloc (gaps, gaps_cap * sizeof *gaps);
                }
              gaps[gaps_len++] = (double) gap;
            }
          else
            c->first_event = t - c->t0;
          c->events += found;
          c->t_last_event = t;
        }
      p += take;
      n -= take;
    }
}

static void
body_bytes (Conn *c, const char *p, size_t n)
{
  if (opt_streams)
    stream_bytes (c, p, n);
}

/* An answer counts when its status is 2xx, or any status with --any-status
 * (the cost of answering at all, e.g. a path no route serves). */
static int
status_ok (Conn *c)
{
  return opt_any_status ? c->status >= 100 : c->status >= 200 && c->status < 300;
}

/* Parses what is buffered; returns -1 on a protocol error. */
static int
http_parse (Conn *c)
{
  size_t off = 0;
  for (;;)
    {
      char *s = c->buf + off, *e;
      size_t avail = c->len - off;
      switch (c->st)
        {
        case ST_IDLE:
          goto out;
        case ST_HEAD:
          e = memmem (s, avail, "\r\n\r\n", 4);
          if (e == NULL)
            goto out;
          {
            size_t hl = (size_t) (e - s) + 4;
            int chunked = 0;
            long clen = -1;
            c->status = atoi (s + 9);
            c->close_after = 0;
            for (char *l = s; l && l < e; l = memchr (l, '\n', (size_t) (e - l)), l = l ? l + 1 : l)
              {
                if (strncasecmp (l, "content-length:", 15) == 0)
                  clen = strtol (l + 15, NULL, 10);
                else if (strncasecmp (l, "transfer-encoding:", 18) == 0 && memmem (l, (size_t) (e - l), "chunked", 7))
                  chunked = 1;
                else if (strncasecmp (l, "connection:", 11) == 0 && strncasecmp (l + 11, " close", 6) == 0)
                  c->close_after = 1;
              }
            off += hl;
            if (chunked)
              c->st = ST_CHUNK_SIZE;
            else if (clen >= 0)
              {
                c->st = ST_BODY_LEN;
                c->remaining = (size_t) clen;
              }
            else
              return -1;
          }
          break;
        case ST_BODY_LEN:
          {
            size_t take = avail < c->remaining ? avail : c->remaining;
            body_bytes (c, s, take);
            off += take;
            c->remaining -= take;
            if (c->remaining)
              goto out;
            request_done (c, status_ok (c) && (!opt_streams || c->done));
            if (opt_streams)
              goto out;
          }
          break;
        case ST_CHUNK_SIZE:
          e = memmem (s, avail, "\r\n", 2);
          if (e == NULL)
            goto out;
          c->remaining = strtoul (s, NULL, 16);
          off += (size_t) (e - s) + 2;
          c->st = c->remaining ? ST_CHUNK_DATA : ST_TRAILER;
          break;
        case ST_CHUNK_DATA:
          {
            size_t take = avail < c->remaining ? avail : c->remaining;
            if (take == 0)
              goto out;
            body_bytes (c, s, take);
            off += take;
            c->remaining -= take;
            if (c->remaining == 0)
              c->st = ST_CHUNK_CRLF;
          }
          break;
        case ST_CHUNK_CRLF:
          if (avail < 2)
            goto out;
          off += 2;
          c->st = ST_CHUNK_SIZE;
          break;
        case ST_TRAILER:
          if (avail < 2)
            goto out;
          if (memcmp (s, "\r\n", 2) != 0)
            {
              e = memmem (s, avail, "\r\n", 2);
              if (e == NULL)
                goto out;
              off += (size_t) (e - s) + 2;
              break;
            }
          off += 2;
          request_done (c, status_ok (c) && (!opt_streams || c->done));
          if (opt_streams)
            goto out;
          break;
        }
    }
out:
  memmove (c->buf, c->buf + off, c->len - off);
  c->len -= off;
  return 0;
}

/* Native lines: the COMPLETION_RESULT event ends a request; an error reply
 * (the request refused) too. */
static void
unix_parse (Conn *c)
{
  size_t off = 0;
  char *nl;
  while ((nl = memchr (c->buf + off, '\n', c->len - off)))
    {
      char *l = c->buf + off;
      size_t n = (size_t) (nl - l);
      if (c->st == ST_HEAD)
        {
          if (memmem (l, n, "\"COMPLETION_RESULT\"", 19))
            request_done (c, memmem (l, n, "\"COMPLETION_FAILED\"", 19) == NULL);
          else if (memmem (l, n, "\"status\":\"error\"", 16))
            request_done (c, 0);
        }
      off += n + 1;
    }
  memmove (c->buf, c->buf + off, c->len - off);
  c->len -= off;
}

static void
conn_readable (Conn *c)
{
  for (;;)
    {
      ssize_t n = recv (c->fd, c->buf + c->len, BUF_CAP - c->len, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0)
        {
          int busy = c->st != ST_IDLE;
          conn_drop (c);
          if (opt_streams)
            {
              c->failed = !c->done;
              c->st = ST_IDLE;
              return;
            }
          if (busy)
            request_done (c, 0);
          else if (conn_connect (c) < 0 || conn_send (c) < 0)
            die ("reconnect");
          return;
        }
      c->len += (size_t) n;
      if (opt_unix)
        unix_parse (c);
      else if (http_parse (c) < 0)
        {
          fprintf (stderr, "ens-bench-load: cannot parse the answer\n");
          exit (1);
        }
      if (c->len == BUF_CAP)
        {
          fprintf (stderr, "ens-bench-load: answer too large\n");
          exit (1);
        }
      if (c->fd < 0)
        return;
    }
}

/* The RSS and open fds of --pid; -1 without one. */
static void
proc_sample (long *rss_kb, long *fds)
{
  *rss_kb = opt_pid > 0 ? ens_bench_rss_kb (opt_pid) : -1;
  *fds = opt_pid > 0 ? ens_bench_fd_count (opt_pid) : -1;
}

static void
wait_events (Conn *conns, int timeout_ms)
{
  struct epoll_event evs[512];
  int n = epoll_wait (epfd, evs, 512, timeout_ms);
  (void) conns;
  if (n < 0 && errno != EINTR)
    die ("epoll_wait");
  for (int i = 0; i < n; i++)
    {
      Conn *c = evs[i].data.ptr;
      if (c->fd >= 0)
        conn_readable (c);
    }
}

static int
run_requests (void)
{
  Conn *conns = calloc ((size_t) opt_conns, sizeof *conns);
  int64_t start, end, t;
  for (int i = 0; i < opt_conns; i++)
    if (conn_connect (&conns[i]) < 0 || conn_send (&conns[i]) < 0)
      die ("connect");
  start = ens_bench_now_ns ();
  while ((t = ens_bench_now_ns ()) < start + (int64_t) (opt_warmup * 1e9))
    wait_events (conns, 10);
  measuring = 1;
  start = ens_bench_now_ns ();
  end = start + (int64_t) (opt_secs * 1e9);
  while ((t = ens_bench_now_ns ()) < end)
    wait_events (conns, (int) ((end - t) / 1000000) + 1);
  measuring = 0;
  t = ens_bench_now_ns ();
  ens_bench_sort (lat, lat_len);
  printf ("ok=%llu errors=%llu rps=%.1f p50_ms=%.4f p99_ms=%.4f max_ms=%.3f\n", (unsigned long long) n_ok,
          (unsigned long long) n_err, (double) n_ok / ((double) (t - start) / 1e9),
          ens_bench_percentile (lat, lat_len, 0.50), ens_bench_percentile (lat, lat_len, 0.99),
          lat_len ? lat[lat_len - 1] : 0.0);
  return 0;
}

static int
run_streams (void)
{
  Conn *conns = calloc ((size_t) opt_streams, sizeof *conns);
  long rss0, fds0, rss1 = -1, fds1 = -1, rss_peak = -1, fds_peak = -1;
  int64_t start, deadline, next_sample = 0;
  int open_sampled = 0;
  unsigned finished = 0, stalled = 0;
  int64_t max_gap = 0;

  proc_sample (&rss0, &fds0);
  measuring = 1;
  for (int i = 0; i < opt_streams; i++)
    if (conn_connect (&conns[i]) < 0)
      die ("connect");
  start = ens_bench_now_ns ();
  for (int i = 0; i < opt_streams; i++)
    if (conn_send (&conns[i]) < 0)
      die ("send");
  /* A stream of 20 chunks 10 ms apart takes 0.2 s; each gets 30 s. */
  deadline = start + 30 * 1000000000LL;
  for (;;)
    {
      int active = 0, started = 0;
      for (int i = 0; i < opt_streams; i++)
        {
          active += conns[i].st != ST_IDLE && conns[i].fd >= 0;
          started += conns[i].events > 0 || conns[i].st == ST_IDLE;
        }
      if (!open_sampled && started == opt_streams)
        {
          proc_sample (&rss1, &fds1);
          open_sampled = 1;
        }
      if (opt_pid > 0 && ens_bench_now_ns () >= next_sample)
        {
          long rss, fds;
          proc_sample (&rss, &fds);
          rss_peak = rss > rss_peak ? rss : rss_peak;
          fds_peak = fds > fds_peak ? fds : fds_peak;
          next_sample = ens_bench_now_ns () + 20 * 1000000LL;
        }
      if (active == 0 || ens_bench_now_ns () > deadline)
        break;
      wait_events (conns, 10);
    }
  double secs = (double) (ens_bench_now_ns () - start) / 1e9;
  double *firsts = calloc ((size_t) opt_streams, sizeof *firsts);
  size_t n_firsts = 0;
  for (int i = 0; i < opt_streams; i++)
    {
      Conn *c = &conns[i];
      if (c->events > 0)
        firsts[n_firsts++] = (double) c->first_event;
      int ok = c->done && !c->failed && c->status == 200;
      finished += ok;
      if (!ok || c->max_gap > STALL_NS)
        stalled++;
      if (c->max_gap > max_gap)
        max_gap = c->max_gap;
      if (c->fd >= 0)
        conn_drop (c);
    }
  ens_bench_sort (gaps, gaps_len);
  ens_bench_sort (firsts, n_firsts);
  /* The time to the first chunk is not a gap (a stall): it tells how fast
   * the streams got going, how many of them ran at once. */
  printf ("streams=%d finished=%u stalled=%u max_gap_ms=%.1f p99_gap_ms=%.1f secs=%.2f "
          "rss_before_kb=%ld rss_open_kb=%ld fds_before=%ld fds_open=%ld rss_peak_kb=%ld fds_peak=%ld "
          "first_p50_ms=%.1f first_max_ms=%.1f\n",
          opt_streams, finished, stalled, (double) max_gap / 1e6,
          ens_bench_percentile (gaps, gaps_len, 0.99) / 1e6, secs, rss0, rss1, fds0, fds1, rss_peak,
          fds_peak, n_firsts ? ens_bench_percentile (firsts, n_firsts, 0.5) / 1e6 : 0,
          n_firsts ? firsts[n_firsts - 1] / 1e6 : 0);
  free (firsts);
  return 0;
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i += 2) /* an option and its value */
    {
      const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
      if (v == NULL)
        goto usage;
      if (strcmp (a, "--http") == 0)
        opt_http = v;
      else if (strcmp (a, "--unix") == 0)
        opt_unix = v;
      else if (strcmp (a, "--path") == 0)
        opt_path = v;
      else if (strcmp (a, "--body") == 0)
        opt_body = v;
      else if (strcmp (a, "-c") == 0)
        opt_conns = atoi (v);
      else if (strcmp (a, "-d") == 0)
        opt_secs = atof (v);
      else if (strcmp (a, "--warmup") == 0)
        opt_warmup = atof (v);
      else if (strcmp (a, "--streams") == 0)
        opt_streams = atoi (v);
      else if (strcmp (a, "--pid") == 0)
        opt_pid = atoi (v);
      else if (strcmp (a, "--any-status") == 0)
        opt_any_status = atoi (v);
      else
        goto usage;
    }
  if (!opt_http == !opt_unix || opt_conns < 1 || (opt_unix && (!opt_body || opt_streams)))
    goto usage;
  if (opt_http)
    {
      char host[64];
      const char *colon = strrchr (opt_http, ':');
      if (colon == NULL || (size_t) (colon - opt_http) >= sizeof host)
        goto usage;
      memcpy (host, opt_http, (size_t) (colon - opt_http));
      host[colon - opt_http] = '\0';
      http_addr.sin_family = AF_INET;
      http_addr.sin_port = htons ((uint16_t) atoi (colon + 1));
      if (inet_pton (AF_INET, host, &http_addr.sin_addr) != 1)
        goto usage;
      request = malloc (1024 + (opt_body ? strlen (opt_body) : 0));
      if (opt_body)
        request_len = (size_t) sprintf (request,
                                        "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                                        "Content-Length: %zu\r\n\r\n%s",
                                        opt_path, opt_http, strlen (opt_body), opt_body);
      else
        request_len = (size_t) sprintf (request, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", opt_path, opt_http);
    }
  epfd = epoll_create1 (EPOLL_CLOEXEC);
  return opt_streams ? run_streams () : run_requests ();

usage:
  fprintf (stderr,
           "usage: ens-bench-load (--http HOST:PORT [--path P] | --unix SOCKET) [--body JSON]\n"
           "                      [-c N -d SECS --warmup SECS | --streams N [--pid PID]]\n");
  return 2;
}
