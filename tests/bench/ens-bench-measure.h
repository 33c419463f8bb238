/* ens-bench-measure.h - what every benchmark measures with: the monotonic
 * clock, latency samples and their percentiles, a process's memory and fds.
 *
 * Part of the benchmarks' support library (tests/bench/meson.build:
 * ens_bench_dep).  Nothing here allocates on behalf of the caller. */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ens_bench_now_ns (void);

/* Sleeps until the monotonic time @t_ns (absolute; at once if it is past). */
void ens_bench_sleep_until (int64_t t_ns);

typedef struct
{
  size_t n;
  double p50, p90, p99; /* nearest rank: sorted[(size_t) (q * (n - 1) + 0.5)] */
  double mean, max;
} EnsBenchStats;

/* Sorts @v[0..n) in place, ascending. */
void ens_bench_sort (double *v, size_t n);

/* The @q-quantile (0..1) of @sorted[0..n), nearest rank; 0 when n is 0. */
double ens_bench_percentile (const double *sorted, size_t n, double q);

/* The figures of the samples (doubles) in @samples, which it sorts in place
 * (transfer none: the array stays the caller's).  All zero when @samples is
 * NULL or empty. */
EnsBenchStats ens_bench_stats_of (GArray *samples);

/* Resident memory in KiB and the number of open file descriptors of the
 * process @pid (0: this process); -1 when /proc does not tell. */
long ens_bench_rss_kb (int pid);
long ens_bench_fd_count (int pid);
