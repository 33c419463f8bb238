/* ens-redis-codec.h — what transport-redis writes to and reads from Redis,
 * without a connection: the event envelope between nodes, and the requests
 * and responses of agents across nodes (the dual-mode agent convention).
 * The static library ens-redis-codec, linked by the plugin and by the fuzz
 * targets; everything read is untrusted (any Redis client may publish). */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

/* ---- events between nodes ---- */

/* {"node":"<id>" — how every envelope of node @node_id starts, so that a
 * node skips its own echoes without parsing them.  (transfer full) */
char *ens_redis_envelope_prefix (const char *node_id);

/* (transfer full) the envelope of a local event:
 * <prefix>,"topic","from"?,"to"?,"seq","data"}; @data_json is the event's
 * data as JSON text (host->message_data_text: written once, or the text it
 * came as), "data" last so that a node reading it passes it on unparsed. */
char *ens_redis_encode_event (const char *envelope_prefix, EnsMessage *event, const char *data_json);
/* (transfer full) the command PUBLISH <prefix><topic>[:<to>] <envelope>
 * in Redis' wire format (RESP), *@len bytes (no NUL counted). */
char *ens_redis_encode_publish (const char *prefix, const char *envelope_prefix, EnsMessage *event,
                                const char *data_json, gsize *len);

typedef enum {
  ENS_REDIS_IN_DELIVER,  /* in->event is for host->publish_remote */
  ENS_REDIS_IN_FOREIGN,  /* a channel outside the bridge's prefix */
  ENS_REDIS_IN_OWN,      /* this node's own event, back from Redis */
  ENS_REDIS_IN_REJECTED, /* not deliverable: not UTF-8 text, or no concrete topic */
} EnsRedisInVerdict;

/* An incoming event; its strings and nodes point into what it holds, and
 * into the payload (data_text of a node's envelope: checked, not parsed). */
typedef struct {
  EnsMessageInit event; /* kind EVENT: topic, data or data_text, from, to */
  JsonNode *root;       /* (private) */
  JsonNode *text;       /* (private) */
  char head[512];       /* (private) the envelope's strings */
} EnsRedisIn;

/* Decodes a message published on @channel: a node's envelope, any JSON (the
 * data, from "redis"), or any other UTF-8 text (a JSON string).  Clear @in
 * afterwards, whatever the verdict. */
EnsRedisInVerdict ens_redis_decode_event (const EnsHost *host, const char *prefix, const char *envelope_prefix,
                                          const char *channel, const char *payload, gsize len, EnsRedisIn *in);
void ens_redis_in_clear (EnsRedisIn *in);

/* ---- agents across nodes ---- */

/* A request on agent.NAME.request:
 * {"id","agent","action","data","from","reply_to","node","timeout_ms"}.
 * Members that are absent or of another type are NULL (timeout 0). */
typedef struct {
  const char *id, *action, *reply_to; /* reply_to: non-empty or NULL */
  JsonNode *data;
  guint32 timeout_ms; /* at most a day */
  JsonNode *root;     /* (private) */
} EnsRedisRequest;

void ens_redis_decode_request (const EnsHost *host, const char *payload, gsize len, EnsRedisRequest *req);
void ens_redis_request_clear (EnsRedisRequest *req);

/* A response on agent.NAME.response (or a request's reply_to):
 * {"id","status":"success","data"} or
 * {"id","status":"error","error":{"code","message","details"}}. */
typedef struct {
  const char *id;      /* NULL: not a response anyone can be waiting for */
  gboolean failed;
  const char *code;    /* failed: never NULL */
  const char *message; /* failed: never NULL */
  JsonNode *details;   /* failed: may be NULL */
  JsonNode *data;      /* success: "data", else "result", may be NULL */
  JsonNode *root;      /* (private) */
} EnsRedisResponse;

void ens_redis_decode_response (const EnsHost *host, const char *payload, gsize len, EnsRedisResponse *resp);
void ens_redis_response_clear (EnsRedisResponse *resp);

/* (transfer full) {"id","status":"error","error":{"code","message","details"?}} */
JsonNode *ens_redis_error_response (const char *id, const char *code, const char *message, JsonNode *details);

G_END_DECLS
