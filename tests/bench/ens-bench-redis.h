/* ens-bench-redis.h - what the parts of ens-bench-redis share
 * (ens-bench-redis.c: options, payloads, the ensemble phases and the
 * figures; ens-bench-redis-raw.c: the raw Redis phases;
 * ens-bench-redis-load.c: the fixed-rate phase). */
#pragma once

#include "ens-bench-lines.h"
#include "ens-bench-measure.h"

#include <glib.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <sys/types.h>

#define RAW_CHANNEL   "ens-bench-raw"  /* outside any daemon's prefix */
#define TOPIC         "bench.xnode"
#define LINE_CAP      512
#define RBUF_CAP      (256 * 1024)
#define IO_TIMEOUT_S  5
#define LAT_BASE      1000000000ULL   /* n of latency probes: never reused */

extern gchar *opt_host;
extern gint opt_port;

/* The figures of one mode. */
typedef struct
{
  gboolean ok;
  int      subs;     /* subscriber connections */
  uint64_t sent;     /* publishes acknowledged */
  uint64_t expected; /* deliveries due: (sent - errors) * subs */
  uint64_t received; /* messages / events at all subscribers */
  uint64_t sub_min, sub_max; /* received by the least / most served subscriber */
  uint64_t dropped;  /* ensemble.dropped counts */
  uint64_t errors;   /* error replies to publish */
  int      cut_off;  /* subscribers that lost their connection */
  double   pub_rate; /* acknowledged publishes/s while publishing */
  double   rate;     /* deliveries/s: received / (last delivery - start) */
  EnsBenchStats lat; /* round trips, microseconds */
  GString *err;
  GString *note;     /* why a subscriber was cut off */
} Result;

/* ~100-byte JSON object {"n":N,"t":<ens_bench_now_ns ()>,...} */
int make_payload (char *buf, size_t cap, uint64_t n);
/* a native publish request of make_payload (n), ending in '\n' */
int make_publish_line (char *buf, size_t cap, uint64_t n);
/* does text[0..len) carry "n":<n>, ? */
gboolean has_seq (const char *text, size_t len, uint64_t n);

/* A connection to the Redis of the options (transfer full: redisFree), or
 * NULL with the reason in @err. */
redisContext *redis_open (GString *err);
/* SUBSCRIBEs @c to @channel (the confirmation is read). */
gboolean raw_subscribe (redisContext *c, const char *channel, GString *err);

/* Phases 1 and 2 on raw Redis: round trips, then throughput with @nsubs
 * subscribers; fills @res. */
void run_raw (double seconds, int window, int samples, int nsubs, Result *res);

/* Phase 3: raw Redis, then ensemble (publish on B, subscribe on A), at
 * @rate publishes/s for @seconds; prints the latency figures.  FALSE when
 * a mode failed. */
gboolean bench_fixed_load (const char *sock_a, const char *sock_b, int rate, double seconds);
