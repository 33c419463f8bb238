/* ens-bench-redis.h - what the phases of ens-bench-redis share
 * (ens-bench-redis.c: helpers, throughput and round-trip phases;
 * ens-bench-redis-load.c: the fixed-rate phase). */
#pragma once

#include <glib.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <sys/types.h>

extern gchar *opt_host;
extern gint opt_port;

typedef struct
{
  size_t n;
  double p50, p99; /* microseconds */
} Lat;

/* Buffered line reader on a socket. */
typedef struct
{
  int    fd;
  char  *buf;
  size_t len;
} Lines;

int64_t now_ns (void);
/* ~100-byte JSON object {"n":N,"t":<now_ns>,...} */
int make_payload (char *buf, size_t cap, uint64_t n);
/* a native publish request of make_payload (n), ending in '\n' */
int make_publish_line (char *buf, size_t cap, uint64_t n);
/* sorts @samples (us) and fills @lat */
void lat_finish (GArray *samples, Lat *lat);
redisContext *redis_open (GString *err);
gboolean raw_subscribe (redisContext *c, GString *err);
int connect_unix (const char *path);
int write_all (int fd, const char *buf, size_t len);
void lines_init (Lines *l, int fd);
void lines_clear (Lines *l);
ssize_t lines_next_timeout (Lines *l, char **line, size_t *consumed, int timeout_ms);
gboolean is_event (const char *line);
/* one request line on a blocking connection; its (success) reply */
ssize_t request (Lines *l, const char *req, char **reply, size_t *consumed, GString *err, const char *what);

/* Phase 3: raw Redis, then ensemble (publish on B, subscribe on A), at
 * @rate publishes/s for @seconds; prints the latency figures.  FALSE when
 * a mode failed. */
gboolean bench_fixed_load (const char *sock_a, const char *sock_b, int rate, double seconds);
