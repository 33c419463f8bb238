/* ens-bench-lines.h - newline-delimited lines read from a socket, the way
 * the benchmarks talk to ensembled's native protocol: a line reader that
 * timestamps the read that completed each line, and one request/reply
 * exchange on top of it.
 *
 * Part of the benchmarks' support library (tests/bench/meson.build:
 * ens_bench_dep). */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct
{
  int      fd;         /* owned: closed by ens_bench_lines_clear() */
  char    *buf;        /* owned: @cap bytes */
  size_t   cap;
  size_t   start, len; /* unconsumed bytes: buf[start .. len) */
  int64_t  t_read;     /* when the read that brought the last line returned */
  gboolean blocking;   /* FALSE (the default): reads never block, the reader
                        * polls until its deadline; TRUE: one blocking read
                        * (bounded by the fd's SO_RCVTIMEO) stands for the
                        * wait, and the deadline is not looked at */
} EnsBenchLines;

/* Takes @fd over (its own mode does not matter: see "blocking") with a buffer of
 * @cap bytes, the longest line it can hold.  @fd < 0 gives a reader that
 * owns nothing yet (ens_bench_lines_clear() is then harmless). */
void ens_bench_lines_init (EnsBenchLines *l, int fd, size_t cap);

/* Closes the fd and frees the buffer; @l can be cleared again. */
void ens_bench_lines_clear (EnsBenchLines *l);

/* The next complete line, NUL-terminated in place (without its '\n') and
 * valid until the next call (transfer none); @len gets its length, may be
 * NULL.  Reads only when no complete line is buffered, so l->t_read is the
 * time its last byte arrived.  Waits until @deadline (monotonic ns; <= now:
 * does not wait): poll() then read(), so a wait costs two system calls.  Returns 1 with a line, 0 when the deadline passed, -1 on
 * an error (errno: ECONNRESET when the peer closed, EMSGSIZE when a line
 * does not fit). */
int ens_bench_lines_next (EnsBenchLines *l, int64_t deadline, char **line, size_t *len);

/* ens_bench_lines_next() waiting up to @timeout_ms: the line's length, or
 * -1 with errno set (ETIMEDOUT when nothing came). */
ssize_t ens_bench_lines_wait (EnsBenchLines *l, int timeout_ms, char **line);

/* Moves the unconsumed bytes to the start of the buffer: afterwards they
 * are buf[0 .. len), start is 0. */
void ens_bench_lines_compact (EnsBenchLines *l);

/* Sends @req (may be "") and reads lines up to @timeout_ms each until the
 * first that is not an event: the reply (transfer none, as with
 * ens_bench_lines_next()).  FALSE, with "@what: <reason>" or "@what
 * failed: <reply>" in @err, when it cannot be sent or read or its status is
 * not "success". */
gboolean ens_bench_lines_request (EnsBenchLines *l, const char *req, int timeout_ms, char **reply,
                                  GString *err, const char *what);
