/* ens-bench-net.h - the socket chores of the benchmark clients and their
 * baseline servers: Unix-socket connect/listen, non-blocking mode, whole
 * writes, counting lines and marks in what was read.
 *
 * Part of the benchmarks' support library (tests/bench/meson.build:
 * ens_bench_dep).  File descriptors returned are the caller's to close;
 * nothing else is allocated.  Functions returning int give 0 (or an fd) on
 * success and -1 with errno set on failure. */
#pragma once

#include <glib.h>
#include <stddef.h>

/* A connected AF_UNIX stream socket (blocking, close-on-exec). */
int ens_bench_connect_unix (const char *path);

/* A listening AF_UNIX stream socket on @path (an old file there is
 * removed; backlog 128). */
int ens_bench_listen_unix (const char *path);

void ens_bench_set_nonblock (int fd, gboolean on);

/* SO_RCVTIMEO and SO_SNDTIMEO of @fd. */
void ens_bench_set_io_timeout (int fd, int seconds);

/* Sends all of @buf on the socket @fd, blocking or not: when its buffer is
 * full it waits up to @timeout_ms for room (then fails with ETIMEDOUT).
 * Never raises SIGPIPE. */
int ens_bench_write_all (int fd, const char *buf, size_t len, int timeout_ms);

/* The '\n' in @p[0..len). */
size_t ens_bench_count_lines (const char *p, size_t len);

/* The occurrences of the NUL-terminated @mark in @p[0..len). */
size_t ens_bench_count_mark (const char *p, size_t len, const char *mark);
