/* ens-bench-native.c - reading and driving ensembled's native protocol in
 * the benchmark clients (see ens-bench-native.h). */
#include "ens-bench-native.h"

#include "ens-bench-measure.h"
#include "ens-bench-net.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define PIPE_RBUF_CAP (256 * 1024)

const char *
ens_bench_json_after_key (const char *from, const char *qkey)
{
  size_t kl = strlen (qkey);
  for (const char *p = from; (p = strstr (p, qkey)) != NULL; p += kl)
    {
      const char *q = p + kl;
      while (*q == ' ' || *q == '\t')
        q++;
      if (*q != ':')
        continue;
      q++;
      while (*q == ' ' || *q == '\t')
        q++;
      return q;
    }
  return NULL;
}

gboolean
ens_bench_json_get_double (const char *from, const char *qkey, double *out)
{
  const char *p = ens_bench_json_after_key (from, qkey);
  char *end = NULL;
  if (!p)
    return FALSE;
  double v = g_ascii_strtod (p, &end);
  if (end == p)
    return FALSE;
  *out = v;
  return TRUE;
}

gboolean
ens_bench_json_get_string (const char *from, const char *qkey, char *out, size_t cap)
{
  const char *p = ens_bench_json_after_key (from, qkey);
  size_t n = 0;
  if (!p || *p != '"')
    return FALSE;
  for (p++; *p && *p != '"'; p++)
    {
      if (*p == '\\' && p[1])
        {
          if (n + 2 >= cap)
            return FALSE;
          out[n++] = *p++;
        }
      if (n + 1 >= cap)
        return FALSE;
      out[n++] = *p;
    }
  if (*p != '"')
    return FALSE;
  out[n] = '\0';
  return TRUE;
}

gboolean
ens_bench_json_string_is (const char *from, const char *qkey, const char *want)
{
  char buf[128];
  return ens_bench_json_get_string (from, qkey, buf, sizeof buf) && strcmp (buf, want) == 0;
}

gboolean
ens_bench_status_is (const char *line, const char *want)
{
  return ens_bench_json_string_is (line, "\"status\"", want);
}

gboolean
ens_bench_is_event (const char *line)
{
  return g_str_has_prefix (line, "{\"event\":");
}

void
ens_bench_set_err_line (GString *err, const char *what, const char *line)
{
  g_string_printf (err, "%s: %.300s%s", what, line, strlen (line) > 300 ? "..." : "");
}

void
ens_bench_count_event_line (EnsBenchEventCount *c, const char *line, size_t len)
{
  static const char EV_PREFIX[] = "{\"event\":";
  static const char DROP_TOPIC[] = "\"ensemble.dropped\"";
  static const char DROP_MARK[] = "\"event\":\"ensemble.dropped\"";
  static const char COUNT_MARK[] = "\"count\":";
  gboolean is_event = len >= sizeof EV_PREFIX - 1 && memcmp (line, EV_PREFIX, sizeof EV_PREFIX - 1) == 0;
  gboolean is_drop = FALSE;

  if (is_event)
    {
      /* fast path: the topic right after the prefix */
      size_t rest = len - (sizeof EV_PREFIX - 1);
      is_drop = rest >= sizeof DROP_TOPIC - 1 &&
                memcmp (line + sizeof EV_PREFIX - 1, DROP_TOPIC, sizeof DROP_TOPIC - 1) == 0;
    }
  else if (memmem (line, len, DROP_MARK, sizeof DROP_MARK - 1))
    is_drop = TRUE;
  else if (memmem (line, len, "\"event\":", 8))
    is_event = TRUE;

  if (is_drop)
    {
      const char *p = memmem (line, len, COUNT_MARK, sizeof COUNT_MARK - 1);
      uint64_t cnt = 1;
      if (p)
        {
          char tmp[32];
          size_t off = (size_t) (p - line) + sizeof COUNT_MARK - 1;
          size_t m = MIN (len - off, sizeof tmp - 1);
          memcpy (tmp, line + off, m);
          tmp[m] = '\0';
          cnt = g_ascii_strtoull (tmp, NULL, 10);
        }
      c->dropped += cnt;
    }
  else if (is_event)
    c->events++;
  else
    c->other++;
}

size_t
ens_bench_count_event_lines (EnsBenchEventCount *c, char *buf, size_t len)
{
  const char *s = buf, *end = buf + len, *nl;
  while ((nl = memchr (s, '\n', (size_t) (end - s))))
    {
      ens_bench_count_event_line (c, s, (size_t) (nl - s));
      s = nl + 1;
    }
  size_t rest = (size_t) (end - s);
  if (rest && s != buf)
    memmove (buf, s, rest);
  return rest;
}

/* Reads what there is of the replies; FALSE (with @err) on an error. */
static gboolean
pipe_read (int fd, char *rbuf, EnsBenchPipeResult *res, GString *err)
{
  for (;;)
    {
      ssize_t r = read (fd, rbuf, PIPE_RBUF_CAP);
      if (r > 0)
        {
          res->replies += ens_bench_count_lines (rbuf, (size_t) r);
          res->errors += ens_bench_count_mark (rbuf, (size_t) r, "\"status\":\"error\"");
          if ((size_t) r < PIPE_RBUF_CAP)
            return TRUE; /* drained */
          continue;
        }
      if (r == 0)
        {
          g_string_printf (err, "server closed the connection (%" PRIu64 " of %" PRIu64 " replies received)",
                           res->replies, res->sent);
          return FALSE;
        }
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return TRUE;
      g_string_printf (err, "read: %s", g_strerror (errno));
      return FALSE;
    }
}

gboolean
ens_bench_pipeline (int fd, const EnsBenchPipeOpts *opts, EnsBenchLineFn fn, void *user_data,
                    EnsBenchPipeResult *res, GString *err)
{
  uint64_t window = (uint64_t) MAX (opts->window, 1), refill_at = (uint64_t) MAX (opts->refill_at, 0);
  size_t ocap = (size_t) window * ENS_BENCH_PIPE_LINE_CAP;
  g_autofree char *obuf = g_malloc (ocap);
  g_autofree char *rbuf = g_malloc (PIPE_RBUF_CAP);
  size_t olen = 0, ooff = 0;
  uint64_t next_id = 1;
  gboolean stopping = FALSE, ok = TRUE;
  int64_t deadline, drain_deadline = 0;

  memset (res, 0, sizeof *res);
  ens_bench_set_nonblock (fd, TRUE);
  res->t0 = res->t_end = ens_bench_now_ns ();
  deadline = res->t0 + (int64_t) (opts->seconds * 1e9);
  for (;;)
    {
      int64_t now = ens_bench_now_ns ();
      if (!stopping && now >= deadline)
        {
          stopping = TRUE;
          drain_deadline = now + (int64_t) (opts->drain_s * 1e9);
        }
      if (stopping && res->replies >= res->sent)
        {
          res->t_end = now;
          break;
        }
      if (stopping && now >= drain_deadline)
        {
          g_string_printf (err, "timed out draining replies (%" PRIu64 " of %" PRIu64 " received)", res->replies,
                           res->sent);
          ok = FALSE;
          break;
        }

      /* a new batch once the previous one is written whole */
      if (!stopping && ooff == olen && res->sent - res->replies <= refill_at)
        {
          olen = ooff = 0;
          while (res->sent - res->replies < window)
            {
              int k = fn (obuf + olen, ocap - olen, next_id++, user_data);
              if (k <= 0 || k >= ENS_BENCH_PIPE_LINE_CAP)
                {
                  g_string_printf (err, "request line too long");
                  ok = FALSE;
                  goto out;
                }
              olen += (size_t) k;
              res->sent++;
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

      struct pollfd p = { .fd = fd, .events = POLLIN | (ooff < olen ? POLLOUT : 0), .revents = 0 };
      if (poll (&p, 1, 100) < 0)
        {
          if (errno == EINTR)
            continue;
          g_string_printf (err, "poll: %s", g_strerror (errno));
          ok = FALSE;
          break;
        }
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && !pipe_read (fd, rbuf, res, err))
        {
          ok = FALSE;
          break;
        }
    }

out:
  if (!ok)
    res->t_end = ens_bench_now_ns ();
  res->secs = (double) (res->t_end - res->t0) / 1e9;
  res->rate = res->secs > 0 ? (double) res->replies / res->secs : 0.0;
  return ok;
}
