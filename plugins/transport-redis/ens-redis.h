/* ens-redis.h — what the parts of transport-redis share (internal).
 *
 *   ens-transport-redis.c  the links to Redis, the event bridge, node heartbeats
 *   ens-redis-agents.c     agents across nodes and dual-mode agents
 *   ens-redis-streams.c    durable topics on Redis Streams
 *   ens-redis-budget.c     one daily budget for every daemon
 *   ens-redis-source.c     a hiredis context on the GLib main loop
 */
#pragma once

#include <ensemble/ens-host.h>

#include "ens-redis-codec.h"

#include "ens-json-util.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <hiredis/async.h>
#pragma GCC diagnostic pop

typedef struct _Bridge Bridge;
typedef struct _RedisAgents RedisAgents;
typedef struct _RedisStreams RedisStreams;
typedef struct _RedisBudget RedisBudget;

typedef struct {
  Bridge *b;
  redisAsyncContext *ac;
  gboolean ready; /* authenticated (and subscribed, for the sub link) */
  gboolean is_sub;
} Link;

/* One command waiting to be written, in Redis' wire format. */
typedef struct {
  char *cmd;
  gsize len;
  char name[16]; /* its command, for the log */
} Item;

struct _Bridge {
  const EnsHost *host;
  EnsPlugin *self;
  gboolean enabled;
  gboolean stopping;

  /* configuration */
  char *url_shown;
  char *host_name;
  int port;
  char *unix_path;
  char *password;
  int db;
  char *prefix;
  char *prefix_glob; /* the prefix, glob-escaped, to build patterns on */
  char *node_pattern; /* targeted events for clients of this node */
  char *own_prefix;   /* {"node":"<our id>" : how our own envelopes start */
  guint outbox_max;
  guint heartbeat_ms;

  Link cmd, sub;
  const char *state; /* disabled, connecting, connected, disconnected */
  char *last_error;
  gint64 lost_at;  /* real time (µs) the link broke, 0: not since the last notice */
  char *lost_why;
  guint retry_id;
  guint timeout_id;
  guint heartbeat_id;
  guint backoff_ms;
  guint64 connects;
  guint64 reconnects;

  guint tap_id;
  guint interest_id;
  GHashTable *interest; /* Redis pattern -> TRUE: PSUBSCRIBEd for local subscribers */
  GQueue outbox;   /* Item*, not yet written */
  GQueue inflight; /* Item*, written, reply pending */
  guint64 outbox_dropped;
  guint64 forwarded;
  guint64 received;
  guint64 ignored_own;
  guint64 rejected;
  guint64 command_errors; /* queued commands Redis answered with an error */

  gint64 started_at;
  JsonNode *nodes; /* array of node info objects, from the last listing */
  gboolean listing;

  RedisAgents *agents;
  RedisStreams *streams;
  RedisBudget *budget;
};

/* Runs @ac's I/O on the default main context until hiredis frees it
 * (ens-redis-source.c). */
void ens_redis_source_attach (redisAsyncContext *ac);

/* TRUE when commands can be sent now. */
gboolean ens_redis_ready (Bridge *b);
/* Sends a command on the command link now (the caller checked
 * ens_redis_ready); @fn gets the reply, NULL when the link broke.  FALSE:
 * hiredis refused it (the link is closing) and @fn will not be called. */
gboolean ens_redis_command (Bridge *b, redisCallbackFn *fn, void *privdata, const char *format, ...);
gboolean ens_redis_command_argv (Bridge *b, redisCallbackFn *fn, void *privdata, int argc, const char **argv);
/* Queues a command that must reach Redis: written now if connected, else
 * held in the bounded outbox and written on reconnect.  Takes @argv. */
void ens_redis_enqueue (Bridge *b, char **argv);
/* SUBSCRIBE / UNSUBSCRIBE on the subscription link (no-op while it is
 * down: ens_redis_agents_connected subscribes again). */
void ens_redis_subscribe (Bridge *b, const char *channel, redisCallbackFn *fn, void *privdata);
void ens_redis_unsubscribe (Bridge *b, const char *channel);
/* Local interest in a Redis pattern (PSUBSCRIBE while anyone wants it). */
void ens_redis_want (Bridge *b, const char *redis_pattern, gboolean wanted);
/* @s with Redis glob characters escaped (transfer full). */
char *ens_redis_glob_escape (const char *s);
/* The key "<prefix><suffix>" (transfer full). */
char *ens_redis_key (Bridge *b, const char *suffix);
/* Writes this node's heartbeat entry now (its agents changed) and lists
 * the nodes again. */
void ens_redis_heartbeat (Bridge *b);

/* Agents across nodes (ens-redis-agents.c). */
RedisAgents *ens_redis_agents_new (Bridge *b);
void ens_redis_agents_connected (RedisAgents *a);
void ens_redis_agents_lost (RedisAgents *a);
void ens_redis_agents_refresh (RedisAgents *a);
/* (transfer full) array of this node's own agents, for its heartbeat */
JsonNode *ens_redis_agents_local (RedisAgents *a);
void ens_redis_agents_describe (RedisAgents *a, JsonObject *obj);
void ens_redis_agents_free (RedisAgents *a);

/* Durable topics (ens-redis-streams.c). */
RedisStreams *ens_redis_streams_new (Bridge *b, GError **error);
/* Called for every local event the bridge forwards, with its data as
 * JSON text (serialized once for both). */
void ens_redis_streams_event (RedisStreams *s, EnsMessage *event, const char *data_json);
void ens_redis_streams_lost (RedisStreams *s);
void ens_redis_streams_describe (RedisStreams *s, JsonObject *obj);
void ens_redis_streams_free (RedisStreams *s);

/* Shared budget (ens-redis-budget.c). */
RedisBudget *ens_redis_budget_new (Bridge *b);
void ens_redis_budget_connected (RedisBudget *g);
void ens_redis_budget_describe (RedisBudget *g, JsonObject *obj);
void ens_redis_budget_free (RedisBudget *g);
