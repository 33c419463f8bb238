/* ens-bench-native.h - ensembled's native protocol (one compact JSON
 * object a line) as the benchmark clients see it, with no JSON library on
 * the hot path: the few fields they need picked out of a line by key,
 * events and ensemble.dropped notices counted, and requests pipelined on
 * one connection with replies counted by '\n'.
 *
 * Part of the benchmarks' support library (tests/bench/meson.build:
 * ens_bench_dep).  Nothing here allocates on behalf of the caller. */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* Longest request line ens_bench_pipeline() lets an EnsBenchLineFn write. */
#define ENS_BENCH_PIPE_LINE_CAP 512

/* Key lookup: @qkey is the key with its quotes ("\"status\""), matched
 * where a ':' follows it.  Inside JSON strings every '"' is escaped, so a
 * key is never matched inside a string value; the first match wins, so pass
 * a @from inside the object you mean when a key occurs at several depths.
 * Returns where the value starts (transfer none: inside @from), or NULL. */
const char *ens_bench_json_after_key (const char *from, const char *qkey);
gboolean ens_bench_json_get_double (const char *from, const char *qkey, double *out);
/* Copies a string value into @out[0..cap) (escapes kept verbatim); FALSE if
 * absent, not a string or longer than cap - 1. */
gboolean ens_bench_json_get_string (const char *from, const char *qkey, char *out, size_t cap);
gboolean ens_bench_json_string_is (const char *from, const char *qkey, const char *want);

/* The reply line's "status" is @want ("success", "error"). */
gboolean ens_bench_status_is (const char *line, const char *want);

/* The line starts {"event": */
gboolean ens_bench_is_event (const char *line);

/* "@what: " and the first 300 characters of @line into @err. */
void ens_bench_set_err_line (GString *err, const char *what, const char *line);

/* What a subscriber connection received. */
typedef struct
{
  uint64_t events;  /* event lines, not counting ensemble.dropped notices */
  uint64_t dropped; /* the "count"s of ensemble.dropped notices */
  uint64_t other;   /* anything else (replies) */
} EnsBenchEventCount;

/* Counts the line @line[0..len) (no '\n'). */
void ens_bench_count_event_line (EnsBenchEventCount *c, const char *line, size_t len);

/* Counts the whole lines in @buf[0..len), moves the incomplete rest to the
 * start of @buf and returns its length. */
size_t ens_bench_count_event_lines (EnsBenchEventCount *c, char *buf, size_t len);

/* Writes request @n (from 1 on) into @buf[0..cap), '\n'-terminated;
 * returns its length (snprintf's). */
typedef int (*EnsBenchLineFn) (char *buf, size_t cap, uint64_t n, void *user_data);

typedef struct
{
  double seconds;   /* how long new requests are sent */
  int    window;    /* requests in flight at most */
  int    refill_at; /* a new batch is written once no more than this many are in flight */
  double drain_s;   /* how long the replies still due may take afterwards */
} EnsBenchPipeOpts;

typedef struct
{
  uint64_t sent;
  uint64_t replies;
  uint64_t errors;  /* replies with "status":"error" */
  int64_t  t0, t_end;
  double   secs;    /* t_end - t0 */
  double   rate;    /* replies / secs */
} EnsBenchPipeResult;

/* Pipelines requests made by @fn on @fd (made non-blocking) as @opts says;
 * batches are written whole, replies counted by '\n', all driven by poll()
 * so that it never deadlocks against a server blocked on a full socket.
 * FALSE, with the reason in @err, when a request or its reply fails; @res
 * holds what was done either way. */
gboolean ens_bench_pipeline (int fd, const EnsBenchPipeOpts *opts, EnsBenchLineFn fn, void *user_data,
                             EnsBenchPipeResult *res, GString *err);
