/* ens-redis-streams.c — durable topics on Redis Streams.
 *
 * Topics matching redis-durable-topics (Redis-style globs) are, besides the
 * pub/sub bridge, appended to the stream <prefix>stream:<topic>:
 *
 *   XADD key MAXLEN ~ <redis-stream-maxlen> * node N topic T from F seq S
 *        data <JSON> ts <ms>
 *
 * through the bridge's outbox, so an event published while Redis is away is
 * appended once it is back (what the outbox had to drop is lost, and an
 * XADD written but unanswered when the link broke is written again: entries
 * are at-least-once, node + seq tell duplicates apart).  The XADD goes out
 * before the event's PUBLISH on the same link, so whoever sees the live event
 * finds it in the stream.  Targeted events (to a single client) are never
 * stored.
 *
 * The agent "durable" reads them back, on any node of the bus:
 *   read    {topic, after?, count?}: the entries after a stream id ("0": from
 *           the start) — a subscriber that reconnects with the id of the
 *           last entry it saw gets what it missed;
 *   consume {topic, group, consumer, count?, claim_idle_ms?}: consumer
 *           groups, at-least-once.  First the consumer's own entries that
 *           were delivered and never acknowledged (a restarted consumer gets
 *           them again, "redelivered"), then, with claim_idle_ms, those a
 *           dead consumer left idle that long (XAUTOCLAIM), then new ones.
 *           So a consumer acks what it processed before asking for more.
 *           Pending entries the stream trimmed away can never be delivered:
 *           they are acknowledged for the consumer and listed in "trimmed";
 *   ack     {topic, group, ids}: XACK;
 *   info    {topic}: length and groups.
 * Reads never block (the command link is shared by the whole bridge):
 * consumers poll, or subscribe to the live topic to know when to consume.
 *
 * Every request is one small Op carried through chained hiredis callbacks;
 * each path answers its responder exactly once and frees the Op.  A NULL
 * reply (the link broke, or the bridge is stopping) answers NOT_AVAILABLE.
 */
#include <string.h>

#include "ens-glob.h"
#include "ens-redis.h"

#define AGENT_NAME "durable"
#define TOPIC_MAX 1024
#define GROUP_NAME_MAX 256
#define COUNT_MAX 10000
#define ERR_UPSTREAM "UPSTREAM_ERROR"

struct _RedisStreams {
  Bridge *b;
  char **patterns;
  guint maxlen;
  char *maxlen_text;
  gboolean agent_added;
  GHashTable *ops; /* Op* waiting for Redis */
  guint64 appended, reads, consumed, redelivered, acked, trimmed;
};

typedef struct {
  RedisStreams *s;
  EnsResponder *responder;
  const char *command; /* awaited, for error messages */
  char *topic;
  char *key;
  char *group;
  char *consumer;
  char *after;
  char *count;
  char *claim_idle_ms; /* NULL: no claiming */
  char **ids;
  gint64 length;
  JsonArray *trimmed;
} Op;

static const char *const actions[] = { "read", "consume", "ack", "info", NULL };

static gboolean
is_durable (RedisStreams *s, const char *topic)
{
  for (guint i = 0; s->patterns[i]; i++)
    if (ens_glob_match (s->patterns[i], topic))
      return TRUE;
  return FALSE;
}

static char *
stream_key (RedisStreams *s, const char *topic)
{
  g_autofree char *suffix = g_strconcat ("stream:", topic, NULL);
  return ens_redis_key (s->b, suffix);
}

/* ---- appending ---- */

void
ens_redis_streams_event (RedisStreams *s, EnsMessage *event, const char *data_json)
{
  char **argv;
  int i = 0;

  if (event->to != NULL || event->topic == NULL || !is_durable (s, event->topic))
    return;
  argv = g_new0 (char *, 19);
  argv[i++] = g_strdup ("XADD");
  argv[i++] = stream_key (s, event->topic);
  argv[i++] = g_strdup ("MAXLEN");
  argv[i++] = g_strdup ("~");
  argv[i++] = g_strdup (s->maxlen_text);
  argv[i++] = g_strdup ("*");
  argv[i++] = g_strdup ("node");
  argv[i++] = g_strdup (s->b->host->node_id ());
  argv[i++] = g_strdup ("topic");
  argv[i++] = g_strdup (event->topic);
  argv[i++] = g_strdup ("from");
  argv[i++] = g_strdup (event->from ? event->from : "");
  argv[i++] = g_strdup ("seq");
  argv[i++] = g_strdup_printf ("%" G_GUINT64_FORMAT, event->seq);
  argv[i++] = g_strdup ("data");
  argv[i++] = g_strdup (data_json);
  argv[i++] = g_strdup ("ts");
  argv[i++] = g_strdup_printf ("%" G_GINT64_FORMAT, event->timestamp_us / 1000);
  s->appended++;
  ens_redis_enqueue (s->b, argv);
}

/* ---- requests: answering ---- */

static void
op_free (Op *op)
{
  g_hash_table_remove (op->s->ops, op);
  g_free (op->topic);
  g_free (op->key);
  g_free (op->group);
  g_free (op->consumer);
  g_free (op->after);
  g_free (op->count);
  g_free (op->claim_idle_ms);
  g_strfreev (op->ids);
  g_clear_pointer (&op->trimmed, json_array_unref);
  g_free (op);
}

/* Answers, then frees @op; @data (transfer none). */
static void
op_answer (Op *op, JsonNode *data)
{
  EnsResponder *responder = op->responder;
  const EnsHost *host = op->s->b->host;

  op_free (op);
  host->respond (responder, data);
}

static void
op_fail (Op *op, const char *code, const char *message, JsonNode *details)
{
  EnsResponder *responder = op->responder;
  const EnsHost *host = op->s->b->host;

  op_free (op);
  host->respond_error (responder, code, message, details);
}

/* TRUE when @reply can be used; else @op is answered (and freed). */
static gboolean
op_reply_ok (Op *op, redisReply *reply)
{
  g_autoptr (JsonNode) details = NULL;
  g_autofree char *message = NULL;
  JsonObject *obj;

  if (reply == NULL)
    {
      op_fail (op, ENS_ERR_NOT_AVAILABLE, "the connection to Redis broke before it answered", NULL);
      return FALSE;
    }
  if (reply->type != REDIS_REPLY_ERROR)
    return TRUE;
  details = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "command", op->command);
  json_object_set_string_member (obj, "redis_error", reply->str ? reply->str : "");
  message = g_strdup_printf ("Redis refused %s on %s: %s", op->command, op->key, reply->str ? reply->str : "?");
  op_fail (op, ERR_UPSTREAM, message, details);
  return FALSE;
}

static void
op_send (Op *op, redisCallbackFn *fn, const char *const *argv)
{
  if (!ens_redis_ready (op->s->b))
    {
      op_fail (op, ENS_ERR_NOT_AVAILABLE, "the connection to Redis broke; try again", NULL);
      return;
    }
  op->command = argv[0];
  if (!ens_redis_command_argv (op->s->b, fn, op, (int) g_strv_length ((char **) argv), (const char **) argv))
    op_fail (op, ENS_ERR_NOT_AVAILABLE, "the connection to Redis is closing; try again", NULL);
}

/* ---- requests: stream entries as JSON ---- */

/* Redis values are bytes; JSON strings are UTF-8. */
static JsonNode *
valid_string_node (const char *str, gsize len)
{
  g_autofree char *text = g_utf8_make_valid (str, (gssize) len);
  return json_node_init_string (json_node_alloc (), text);
}

static JsonNode *
text_node (RedisStreams *s, const redisReply *v, gboolean json, gboolean integer)
{
  gint64 n;

  if (v->type != REDIS_REPLY_STRING && v->type != REDIS_REPLY_STATUS)
    return json_node_new (JSON_NODE_NULL);
  if (json)
    {
      JsonNode *parsed = s->b->host->json_parse (v->str, v->len, NULL);
      if (parsed)
        return parsed;
    }
  if (integer && g_ascii_string_to_signed (v->str, 10, G_MININT64, G_MAXINT64, &n, NULL))
    return json_node_init_int (json_node_alloc (), n);
  return valid_string_node (v->str, v->len); /* not ours: as it is */
}

/* [id, [field, value, ...]] as {id, topic, data, from, node, seq, ts}; NULL
 * for an entry trimmed away while pending (fields nil), its id added to
 * @trimmed.  @redelivered < 0: not a consumer group read. */
static JsonNode *
entry_node (RedisStreams *s, const char *topic, const redisReply *e, int redelivered, JsonArray *trimmed)
{
  JsonObject *obj;
  JsonNode *node;
  const redisReply *fields;

  if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
    return NULL;
  fields = e->element[1];
  if (fields->type != REDIS_REPLY_ARRAY)
    {
      if (trimmed)
        json_array_add_string_element (trimmed, e->element[0]->str);
      return NULL;
    }
  node = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "id", e->element[0]->str);
  json_object_set_string_member (obj, "topic", topic);
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    {
      const redisReply *f = fields->element[i], *v = fields->element[i + 1];
      const char *name = f->type == REDIS_REPLY_STRING ? f->str : "";
      if (g_str_equal (name, "data"))
        json_object_set_member (obj, "data", text_node (s, v, TRUE, FALSE));
      else if (g_str_equal (name, "seq") || g_str_equal (name, "ts"))
        json_object_set_member (obj, name, text_node (s, v, FALSE, TRUE));
      else if (g_str_equal (name, "from") || g_str_equal (name, "node") || g_str_equal (name, "topic"))
        json_object_set_member (obj, name, text_node (s, v, FALSE, FALSE));
    }
  /* An entry someone else XADDed without "data": all its fields are. */
  if (!json_object_has_member (obj, "data"))
    {
      JsonObject *raw = json_object_new ();
      for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING)
          {
            g_autofree char *name = g_utf8_make_valid (fields->element[i]->str, (gssize) fields->element[i]->len);
            json_object_set_member (raw, name, text_node (s, fields->element[i + 1], FALSE, FALSE));
          }
      json_object_set_object_member (obj, "data", raw);
    }
  if (redelivered >= 0)
    json_object_set_boolean_member (obj, "redelivered", redelivered);
  return node;
}

static JsonArray *
entries_array (RedisStreams *s, const char *topic, const redisReply *list, int redelivered, JsonArray *trimmed)
{
  JsonArray *arr = json_array_new ();

  for (size_t i = 0; list && list->type == REDIS_REPLY_ARRAY && i < list->elements; i++)
    {
      JsonNode *n = entry_node (s, topic, list->element[i], redelivered, trimmed);
      if (n)
        json_array_add_element (arr, n);
    }
  return arr;
}

/* ---- read ---- */

static void
on_range (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;
  g_autoptr (JsonNode) answer = NULL;
  JsonObject *obj;
  JsonArray *entries;
  guint n;

  (void) ac;
  if (!op_reply_ok (op, reply))
    return;
  entries = entries_array (op->s, op->topic, reply, -1, NULL);
  n = json_array_get_length (entries);
  answer = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "topic", op->topic);
  json_object_set_string_member (
      obj, "last_id",
      n ? ens_member_string (ens_array_object (entries, n - 1), "id") : op->after);
  json_object_set_array_member (obj, "entries", entries);
  op->s->reads++;
  op_answer (op, answer);
}

static void
start_read (Op *op)
{
  g_autofree char *start = g_strconcat ("(", op->after, NULL);
  const char *argv[] = { "XRANGE", op->key, start, "+", "COUNT", op->count, NULL };

  op_send (op, on_range, argv);
}

/* ---- consume ---- */

static void
consume_answer (Op *op, JsonArray *entries)
{
  g_autoptr (JsonNode) answer = NULL;
  JsonObject *obj;
  guint n = json_array_get_length (entries);

  answer = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "topic", op->topic);
  json_object_set_string_member (obj, "group", op->group);
  json_object_set_string_member (obj, "consumer", op->consumer);
  json_object_set_array_member (obj, "entries", entries);
  json_object_set_array_member (obj, "trimmed", g_steal_pointer (&op->trimmed));
  op->s->consumed += n;
  for (guint i = 0; i < n; i++)
    if (ens_member_bool (ens_array_object (entries, i), "redelivered", FALSE))
      op->s->redelivered++;
  op_answer (op, answer);
}

/* XREADGROUP answers [[key, entries]] or nil. */
static const redisReply *
readgroup_entries (const redisReply *reply)
{
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 && reply->element[0]->type == REDIS_REPLY_ARRAY
      && reply->element[0]->elements >= 2)
    return reply->element[0]->element[1];
  return NULL;
}

static void
on_read_new (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;

  (void) ac;
  if (op_reply_ok (op, reply))
    consume_answer (op, entries_array (op->s, op->topic, readgroup_entries (reply), FALSE, op->trimmed));
}

static void
read_new (Op *op)
{
  const char *argv[] = { "XREADGROUP", "GROUP", op->group, op->consumer, "COUNT", op->count,
                         "STREAMS", op->key, ">", NULL };

  op_send (op, on_read_new, argv);
}

/* Pending entries whose data is gone are acknowledged: nobody can ever
 * process them, and left pending they would come back forever. */
static void
ack_trimmed (Op *op, guint from)
{
  guint n = json_array_get_length (op->trimmed);
  g_autofree const char **argv = NULL;

  if (n <= from || !ens_redis_ready (op->s->b))
    return;
  argv = g_new0 (const char *, n - from + 3);
  argv[0] = "XACK";
  argv[1] = op->key;
  argv[2] = op->group;
  for (guint i = from; i < n; i++)
    argv[3 + i - from] = ens_array_string (op->trimmed, i);
  op->s->trimmed += n - from;
  ens_redis_command_argv (op->s->b, NULL, NULL, (int) (n - from + 3), argv);
}

static void
on_claimed (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;
  JsonArray *entries;
  guint before;

  (void) ac;
  if (!op_reply_ok (op, reply))
    return;
  before = json_array_get_length (op->trimmed);
  /* [next start, entries, deleted ids (Redis 7: already out of the PEL)] */
  entries = entries_array (op->s, op->topic, reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2
                                                 ? reply->element[1] : NULL, TRUE, op->trimmed);
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < reply->element[2]->elements; i++)
      if (reply->element[2]->element[i]->type == REDIS_REPLY_STRING)
        json_array_add_string_element (op->trimmed, reply->element[2]->element[i]->str);
  ack_trimmed (op, before);
  if (json_array_get_length (entries) > 0)
    consume_answer (op, entries);
  else
    {
      json_array_unref (entries);
      read_new (op);
    }
}

static void
on_pending (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;
  JsonArray *entries;

  (void) ac;
  if (!op_reply_ok (op, reply))
    return;
  entries = entries_array (op->s, op->topic, readgroup_entries (reply), TRUE, op->trimmed);
  ack_trimmed (op, 0);
  if (json_array_get_length (entries) > 0)
    {
      consume_answer (op, entries);
      return;
    }
  json_array_unref (entries);
  if (op->claim_idle_ms)
    {
      const char *argv[] = { "XAUTOCLAIM", op->key, op->group, op->consumer, op->claim_idle_ms, "0-0",
                             "COUNT", op->count, NULL };
      op_send (op, on_claimed, argv);
    }
  else
    read_new (op);
}

static void
on_group_created (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;
  const char *argv[] = { "XREADGROUP", "GROUP", op->group, op->consumer, "COUNT", op->count,
                         "STREAMS", op->key, "0", NULL };
  /* BUSYGROUP: it exists already, the usual case. */
  gboolean exists = reply && reply->type == REDIS_REPLY_ERROR && reply->str
                    && g_str_has_prefix (reply->str, "BUSYGROUP");

  (void) ac;
  if (exists || op_reply_ok (op, reply))
    op_send (op, on_pending, argv);
}

static void
start_consume (Op *op)
{
  /* From "0": a new group gets everything the stream still holds. */
  const char *argv[] = { "XGROUP", "CREATE", op->key, op->group, "0", "MKSTREAM", NULL };

  op->trimmed = json_array_new ();
  op_send (op, on_group_created, argv);
}

/* ---- ack ---- */

static void
on_acked (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;
  g_autoptr (JsonNode) answer = NULL;
  JsonObject *obj;
  gint64 n;

  (void) ac;
  if (!op_reply_ok (op, reply))
    return;
  n = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
  answer = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "topic", op->topic);
  json_object_set_string_member (obj, "group", op->group);
  json_object_set_int_member (obj, "acked", n);
  op->s->acked += (guint64) MAX (n, 0);
  op_answer (op, answer);
}

static void
start_ack (Op *op)
{
  guint n = g_strv_length (op->ids);
  g_autofree const char **argv = g_new0 (const char *, n + 4);

  argv[0] = "XACK";
  argv[1] = op->key;
  argv[2] = op->group;
  for (guint i = 0; i < n; i++)
    argv[3 + i] = op->ids[i];
  op_send (op, on_acked, argv);
}

/* ---- info ---- */

static void
on_groups (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;
  g_autoptr (JsonNode) answer = NULL;
  JsonObject *obj;
  JsonArray *groups;
  gboolean missing;

  (void) ac;
  /* A stream that never was: no groups. */
  missing = reply && reply->type == REDIS_REPLY_ERROR && reply->str && strstr (reply->str, "no such key");
  if (!missing && !op_reply_ok (op, reply))
    return;
  groups = json_array_new ();
  for (size_t i = 0; !missing && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
    {
      const redisReply *g = reply->element[i];
      JsonObject *go = json_object_new ();
      /* a flat list of names and values */
      for (size_t j = 0; g->type == REDIS_REPLY_ARRAY && j + 1 < g->elements; j += 2)
        {
          const char *name = g->element[j]->str ? g->element[j]->str : "";
          const redisReply *v = g->element[j + 1];
          if (g_str_equal (name, "name") && v->str)
            json_object_set_string_member (go, "name", v->str);
          else if (g_str_equal (name, "last-delivered-id") && v->str)
            json_object_set_string_member (go, "last_delivered_id", v->str);
          else if ((g_str_equal (name, "consumers") || g_str_equal (name, "pending") || g_str_equal (name, "lag"))
                   && v->type == REDIS_REPLY_INTEGER)
            json_object_set_int_member (go, name, v->integer);
        }
      json_array_add_object_element (groups, go);
    }
  answer = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "topic", op->topic);
  json_object_set_int_member (obj, "length", op->length);
  json_object_set_array_member (obj, "groups", groups);
  op_answer (op, answer);
}

static void
on_length (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  redisReply *reply = r;
  const char *argv[] = { "XINFO", "GROUPS", op->key, NULL };

  (void) ac;
  if (!op_reply_ok (op, reply))
    return;
  op->length = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
  op_send (op, on_groups, argv);
}

static void
start_info (Op *op)
{
  const char *argv[] = { "XLEN", op->key, NULL };

  op_send (op, on_length, argv);
}

/* ---- requests: validation ---- */

static void
invalid (RedisStreams *s, EnsResponder *responder, const EnsInvalid *invalid)
{
  g_autoptr (JsonNode) details = ens_invalid_details (invalid);
  g_autofree char *message = ens_invalid_message (invalid);

  s->b->host->respond_error (responder, ENS_ERR_INVALID_PARAMETERS, message, details);
}

/* A non-empty string of at most @max bytes; required or not. */
static gboolean
param_string (JsonObject *params, const char *field, gboolean required, gsize max, const char **out)
{
  EnsInvalid unused;

  *out = NULL;
  return ens_param_string (params, field, (required ? ENS_PARAM_REQUIRED : 0) | ENS_PARAM_NON_EMPTY, max, out, &unused);
}

static gboolean
param_int (JsonObject *params, const char *field, gint64 min, gint64 max, gint64 *out)
{
  EnsInvalid unused;

  return ens_param_int (params, field, ENS_PARAM_OPTIONAL, min, max, out, &unused);
}

/* MS or MS-SEQ, digits only: what XADD * makes. */
static gboolean
valid_stream_id (const char *id)
{
  const char *p = id;

  for (int part = 0; part < 2; part++)
    {
      const char *start = p;
      g_autofree char *digits = NULL;
      while (g_ascii_isdigit (*p))
        p++;
      digits = g_strndup (start, p - start);
      if (!g_ascii_string_to_unsigned (digits, 10, 0, G_MAXUINT64, NULL, NULL))
        return FALSE;
      if (*p == '\0')
        return TRUE;
      if (*p++ != '-')
        return FALSE;
    }
  return FALSE;
}

/* What a request asked for, validated. */
typedef struct {
  const char *topic, *after, *group, *consumer;
  gint64 count, claim_idle_ms; /* claim_idle_ms < 0: not given */
  GPtrArray *ids;
} Params;

/* TRUE with @p filled, or FALSE with @invalid filled (the expected texts
 * here say more than the checks' own). */
static gboolean
parse_params (const char *action, JsonObject *params, Params *p, EnsInvalid *invalid)
{
  gboolean consume = g_str_equal (action, "consume"), ack = g_str_equal (action, "ack");

#define BAD(f, e) return ens_invalid_set (invalid, (f), "%s", (e))

  p->count = g_str_equal (action, "read") ? 100 : 10;
  p->claim_idle_ms = -1;
  if (!param_string (params, "topic", TRUE, TOPIC_MAX, &p->topic) || ens_glob_is_pattern (p->topic))
    BAD ("topic", "a topic (a non-empty string of at most 1024 bytes, without * ? [ \\)");
  if (g_str_equal (action, "read") && (!param_string (params, "after", FALSE, 41, &p->after)
                                       || (p->after && !valid_stream_id (p->after))))
    BAD ("after", "a stream id such as \"1700000000000-0\" (\"0\": from the start)");
  if ((consume || ack) && !param_string (params, "group", TRUE, GROUP_NAME_MAX, &p->group))
    BAD ("group", "a non-empty string of at most 256 bytes");
  if (consume && !param_string (params, "consumer", TRUE, GROUP_NAME_MAX, &p->consumer))
    BAD ("consumer", "a non-empty string of at most 256 bytes");
  if ((consume || g_str_equal (action, "read")) && !param_int (params, "count", 1, COUNT_MAX, &p->count))
    BAD ("count", "an integer from 1 to 10000");
  if (consume && !param_int (params, "claim_idle_ms", 0, G_MAXINT32, &p->claim_idle_ms))
    BAD ("claim_idle_ms", "an integer from 0 to 2147483647 (milliseconds)");
  if (ack)
    {
      JsonArray *arr = ens_member_array (params, "ids");
      guint len = arr ? json_array_get_length (arr) : 0;

      if (len == 0 || len > COUNT_MAX)
        BAD ("ids", "a list of 1 to 10000 stream ids");
      p->ids = g_ptr_array_new_full (len + 1, g_free);
      for (guint i = 0; i < len; i++)
        {
          const char *id = ens_array_string (arr, i);
          if (id == NULL || !valid_stream_id (id))
            BAD ("ids", "a list of stream ids such as \"1700000000000-0\"");
          g_ptr_array_add (p->ids, g_strdup (id));
        }
      g_ptr_array_add (p->ids, NULL);
    }
  return TRUE;
#undef BAD
}

static void
not_durable (RedisStreams *s, EnsResponder *responder, const char *topic)
{
  g_autoptr (JsonNode) details = NULL;
  g_autofree char *text = g_strdup_printf ("topic %s is not durable (setting redis-durable-topics)", topic);
  JsonObject *obj;
  JsonArray *patterns = json_array_new ();

  for (guint i = 0; s->patterns[i]; i++)
    json_array_add_string_element (patterns, s->patterns[i]);
  details = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "topic", topic);
  json_object_set_array_member (obj, "durable_topics", patterns);
  s->b->host->respond_error (responder, ENS_ERR_NOT_FOUND, text, details);
}

static void
durable_handle (gpointer data, EnsMessage *request, EnsResponder *responder)
{
  RedisStreams *s = data;
  const EnsHost *host = s->b->host;
  const char *action = request->action ? request->action : "";
  EnsInvalid bad = { NULL };
  Params p = { 0 };
  Op *op;

  if (!g_strv_contains (actions, action))
    {
      g_autofree char *text = g_strdup_printf ("the agent %s has no action '%s' (read, consume, ack, info)",
                                               AGENT_NAME, action);
      host->respond_error (responder, ENS_ERR_UNKNOWN_ACTION, text, NULL);
      return;
    }
  if (request->data == NULL || !JSON_NODE_HOLDS_OBJECT (request->data))
    ens_invalid_set (&bad, "data", "an object with at least \"topic\"");
  else if (!parse_params (action, json_node_get_object (request->data), &p, &bad))
    g_clear_pointer (&p.ids, g_ptr_array_unref);
  if (bad.field)
    {
      invalid (s, responder, &bad);
      return;
    }
  if (!is_durable (s, p.topic))
    {
      g_clear_pointer (&p.ids, g_ptr_array_unref);
      not_durable (s, responder, p.topic);
      return;
    }
  if (!ens_redis_ready (s->b))
    {
      g_autofree char *text = g_strdup_printf ("Redis is unreachable (%s): durable topics cannot be used now",
                                               s->b->state);
      g_clear_pointer (&p.ids, g_ptr_array_unref);
      host->respond_error (responder, ENS_ERR_NOT_AVAILABLE, text, NULL);
      return;
    }

  op = g_new0 (Op, 1);
  op->s = s;
  op->responder = responder;
  op->topic = g_strdup (p.topic);
  op->key = stream_key (s, p.topic);
  op->count = g_strdup_printf ("%" G_GINT64_FORMAT, p.count);
  op->after = g_strdup (p.after ? p.after : "0");
  op->group = g_strdup (p.group);
  op->consumer = g_strdup (p.consumer);
  if (p.claim_idle_ms >= 0)
    op->claim_idle_ms = g_strdup_printf ("%" G_GINT64_FORMAT, p.claim_idle_ms);
  if (p.ids)
    op->ids = (char **) g_ptr_array_free (p.ids, FALSE);
  g_hash_table_add (s->ops, op);
  if (g_str_equal (action, "read"))
    start_read (op);
  else if (g_str_equal (action, "consume"))
    start_consume (op);
  else if (g_str_equal (action, "ack"))
    start_ack (op);
  else
    start_info (op);
}

/* ---- lifecycle ---- */

RedisStreams *
ens_redis_streams_new (Bridge *b, GError **error)
{
  const EnsHost *host = b->host;
  g_autoptr (GVariant) topics = host->config_get (b->self, "redis-durable-topics");
  g_autoptr (GVariant) maxlen = host->config_get (b->self, "redis-stream-maxlen");
  g_autoptr (JsonNode) info = NULL;
  RedisStreams *s;
  JsonObject *obj;

  if (topics && !g_variant_is_of_type (topics, G_VARIANT_TYPE_STRING_ARRAY))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_INIT, "redis-durable-topics: expected a list of strings");
      return NULL;
    }
  if (maxlen && (!g_variant_is_of_type (maxlen, G_VARIANT_TYPE_UINT32) || g_variant_get_uint32 (maxlen) == 0))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_INIT, "redis-stream-maxlen: expected a number above 0");
      return NULL;
    }
  s = g_new0 (RedisStreams, 1);
  s->b = b;
  s->patterns = topics ? g_variant_dup_strv (topics, NULL) : g_new0 (char *, 1);
  s->maxlen = maxlen ? g_variant_get_uint32 (maxlen) : 100000;
  s->maxlen_text = g_strdup_printf ("%u", s->maxlen);
  s->ops = g_hash_table_new (g_direct_hash, g_direct_equal);
  for (guint i = 0; s->patterns[i]; i++)
    if (s->patterns[i][0] == '\0' || strlen (s->patterns[i]) > TOPIC_MAX)
      {
        g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_INIT,
                     "redis-durable-topics: entry %u must be a topic or pattern of 1 to %d bytes", i + 1, TOPIC_MAX);
        ens_redis_streams_free (s);
        return NULL;
      }

  /* Registered even without durable topics: asking for one then gets a
   * clear NOT_FOUND rather than "no agent named durable". */
  info = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "description",
                                 "durable topics on Redis Streams: read again, consumer groups, acknowledgements");
  if (host->agent_add (b->self, AGENT_NAME, actions, info, FALSE, durable_handle, s))
    s->agent_added = TRUE;
  else
    ENS_LOG (host, b->self, G_LOG_LEVEL_WARNING,
             "another agent is named '%s': durable topics are stored but cannot be read through this node",
             AGENT_NAME);
  if (s->patterns[0])
    {
      g_autofree char *list = g_strjoinv (", ", s->patterns);
      ENS_LOG (host, b->self, G_LOG_LEVEL_MESSAGE, "durable topics (Redis Streams, about %u entries each): %s",
               s->maxlen, list);
    }
  return s;
}

/* The link broke: every Op waiting got its NULL reply and was answered;
 * appends wait in the bridge's outbox.  Nothing to keep. */
void
ens_redis_streams_lost (RedisStreams *s)
{
  (void) s;
}

void
ens_redis_streams_describe (RedisStreams *s, JsonObject *obj)
{
  JsonObject *o = json_object_new ();
  JsonArray *topics = json_array_new ();

  for (guint i = 0; s->patterns[i]; i++)
    json_array_add_string_element (topics, s->patterns[i]);
  json_object_set_array_member (o, "topics", topics);
  json_object_set_int_member (o, "maxlen", s->maxlen);
  json_object_set_boolean_member (o, "agent", s->agent_added);
  json_object_set_int_member (o, "appended", (gint64) s->appended);
  json_object_set_int_member (o, "reads", (gint64) s->reads);
  json_object_set_int_member (o, "consumed", (gint64) s->consumed);
  json_object_set_int_member (o, "redelivered", (gint64) s->redelivered);
  json_object_set_int_member (o, "acked", (gint64) s->acked);
  json_object_set_int_member (o, "trimmed_pending", (gint64) s->trimmed);
  json_object_set_int_member (o, "waiting", g_hash_table_size (s->ops));
  json_object_set_object_member (obj, "durable", o);
}

void
ens_redis_streams_free (RedisStreams *s)
{
  GHashTableIter iter;
  gpointer op;

  if (s->agent_added)
    s->b->host->agent_remove (s->b->self, AGENT_NAME);
  /* The links are closed: every Op was answered.  Should hiredis have
   * refused a command (its callback then never runs), answer it here. */
  while (g_hash_table_size (s->ops) > 0)
    {
      g_hash_table_iter_init (&iter, s->ops);
      g_hash_table_iter_next (&iter, &op, NULL);
      op_fail (op, ENS_ERR_NOT_AVAILABLE, "the Redis bridge stopped", NULL);
    }
  g_hash_table_unref (s->ops);
  g_strfreev (s->patterns);
  g_free (s->maxlen_text);
  g_free (s);
}
