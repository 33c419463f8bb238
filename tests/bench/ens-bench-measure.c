/* ens-bench-measure.c - the clock, latency statistics and /proc readings
 * shared by the benchmarks (see ens-bench-measure.h). */
#include "ens-bench-measure.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
ens_bench_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
ens_bench_sleep_until (int64_t t_ns)
{
  struct timespec ts = { .tv_sec = t_ns / 1000000000LL, .tv_nsec = t_ns % 1000000000LL };

  while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

void
ens_bench_sort (double *v, size_t n)
{
  if (n > 1)
    qsort (v, n, sizeof (double), cmp_double);
}

double
ens_bench_percentile (const double *sorted, size_t n, double q)
{
  if (n == 0)
    return 0.0;
  return sorted[(size_t) (q * (double) (n - 1) + 0.5)];
}

EnsBenchStats
ens_bench_stats_of (GArray *samples)
{
  EnsBenchStats s = { 0, 0, 0, 0, 0, 0 };
  if (samples == NULL || samples->len == 0)
    return s;
  double *v = (double *) (void *) samples->data, sum = 0;
  size_t n = samples->len;
  ens_bench_sort (v, n);
  for (size_t i = 0; i < n; i++)
    sum += v[i];
  s.n = n;
  s.p50 = ens_bench_percentile (v, n, 0.50);
  s.p90 = ens_bench_percentile (v, n, 0.90);
  s.p99 = ens_bench_percentile (v, n, 0.99);
  s.mean = sum / (double) n;
  s.max = v[n - 1];
  return s;
}

long
ens_bench_rss_kb (int pid)
{
  char path[64], line[256];
  long kb = -1;
  FILE *f;

  if (pid > 0)
    snprintf (path, sizeof path, "/proc/%d/status", pid);
  else
    snprintf (path, sizeof path, "/proc/self/status");
  if ((f = fopen (path, "r")) == NULL)
    return -1;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, "VmRSS:", 6) == 0)
      kb = strtol (line + 6, NULL, 10);
  fclose (f);
  return kb;
}

long
ens_bench_fd_count (int pid)
{
  char path[64];
  long fds = 0;
  struct dirent *de;
  DIR *d;

  if (pid > 0)
    snprintf (path, sizeof path, "/proc/%d/fd", pid);
  else
    snprintf (path, sizeof path, "/proc/self/fd");
  if ((d = opendir (path)) == NULL)
    return -1;
  while ((de = readdir (d)))
    if (de->d_name[0] != '.')
      fds++;
  closedir (d);
  return fds;
}
