/* ens-redis-agents.c — one set of agents across every daemon on the bus.
 *
 * The wire is the dual-mode agent convention: an agent NAME is served by
 * whoever listens on the Redis channel "agent.NAME.request" and answers on
 * "agent.NAME.response" (or on the request's reply_to).
 *
 *   export: every external agent connected to this node gets a SUBSCRIBE
 *     on its request channel; a request arriving there goes to the agent
 *     through the core (host->request) and its answer is PUBLISHed back.
 *     Agent plugins are not exported: each node that loads one serves it,
 *     and a request published on Redis would be served once per node.
 *   import: PUBSUB CHANNELS agent.*.request lists every agent served
 *     anywhere — other nodes' and external dual-mode processes'.  Each one
 *     not served here becomes a local "remote" agent (host->agent_add), so
 *     every transport reaches it like a local one; its requests are PUBLISHed
 *     with a globally unique id and answered when the response comes back.
 *
 * Listing happens every heartbeat and, debounced, whenever an agent
 * registers or goes anywhere on the bus.
 *
 *   request  {"id","agent","action","data","from","reply_to","node","timeout_ms"}
 *   response {"id","status":"success","data"} or
 *            {"id","status":"error","error":{"code","message","details"}}
 */
#include <string.h>

#include "ens-redis.h"

#define REFRESH_DEBOUNCE_MS 20
#define GRACE_MS 1000 /* past the request's deadline, the core has answered already */

struct _RedisAgents {
  Bridge *b;
  guint event_sub;
  guint refresh_id;
  gboolean listing_local, listing_channels, again;
  JsonNode *local;      /* array: this node's own agents, as agents.list shows them */
  char *local_names;    /* the connected ones' names, one per line, as last announced */
  GHashTable *exported; /* name -> TRUE: SUBSCRIBEd to agent.NAME.request */
  GHashTable *proxies;  /* name -> TRUE: added with host->agent_add (remote) */
  GHashTable *calls;    /* request id -> Call */
  GHashTable *served;   /* Served*: requests of other nodes our agents work on */
  guint64 next_call;
  guint64 sent, answered, requests_served, timeouts, no_listener, stray, rejected;
};

typedef struct {
  RedisAgents *a;
  char *id;
  char *agent;
  EnsResponder *responder;
  guint timer;
} Call;

/* What the PUBLISH of a request remembers: the call may end before. */
typedef struct {
  RedisAgents *a;
  char *id;
} CallRef;

typedef struct {
  RedisAgents *a;
  char *id;
  char *reply_to;
  char *agent;
} Served;

static char *
agent_channel (const char *agent, const char *suffix)
{
  return g_strconcat ("agent.", agent, ".", suffix, NULL);
}

/* ---- calls to agents elsewhere ---- */

static void
call_free (Call *c)
{
  if (c->timer)
    g_source_remove (c->timer);
  g_free (c->id);
  g_free (c->agent);
  g_free (c);
}

/* Ends a call with an error; the responder is answered exactly once. */
static void
call_fail (Call *c, const char *code, const char *message)
{
  RedisAgents *a = c->a;
  EnsResponder *responder = c->responder;

  c->responder = NULL;
  g_hash_table_remove (a->calls, c->id); /* frees c */
  a->b->host->respond_error (responder, code, message, NULL);
}

static gboolean
call_timeout_cb (gpointer data)
{
  Call *c = data;
  g_autofree char *text = g_strdup_printf ("agent %s did not answer through Redis", c->agent);

  c->timer = 0;
  c->a->timeouts++;
  call_fail (c, ENS_ERR_TIMEOUT, text);
  return G_SOURCE_REMOVE;
}

static void refresh_soon (RedisAgents *a);

static void
on_request_published (redisAsyncContext *ac, void *r, void *privdata)
{
  CallRef *ref = privdata;
  RedisAgents *a = ref->a;
  redisReply *reply = r;
  Call *c;

  (void) ac;
  /* The call may be over already (answered, timed out): look it up again. */
  c = a->b->stopping ? NULL : g_hash_table_lookup (a->calls, ref->id);
  g_free (ref->id);
  g_free (ref);
  if (c == NULL)
    return;
  if (reply == NULL)
    call_fail (c, ENS_ERR_NOT_AVAILABLE, "the connection to Redis broke before the request was sent");
  else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
    {
      g_autofree char *text = g_strdup_printf ("nobody listens on agent.%s.request any more", c->agent);
      a->no_listener++;
      call_fail (c, ENS_ERR_AGENT_GONE, text);
      refresh_soon (a);
    }
}

static void
proxy_handle (gpointer data, EnsMessage *request, EnsResponder *responder)
{
  RedisAgents *a = data;
  Bridge *b = a->b;
  Call *c;
  CallRef *ref;
  JsonObject *obj;
  g_autoptr (JsonNode) node = NULL;
  g_autofree char *channel = NULL, *reply_to = NULL, *payload = NULL;
  guint32 timeout_ms = request->timeout_ms;
  const char *argv[3];

  if (!ens_redis_ready (b))
    {
      b->host->respond_error (responder, ENS_ERR_NOT_AVAILABLE,
                              "Redis is unreachable: agents of other nodes cannot be asked now", NULL);
      return;
    }
  if (timeout_ms == 0)
    {
      g_autoptr (GVariant) v = b->host->config_get (b->self, "request-timeout-ms");
      timeout_ms = v ? g_variant_get_uint32 (v) : 30000;
    }
  c = g_new0 (Call, 1);
  c->a = a;
  c->id = g_strdup_printf ("%s:r%" G_GUINT64_FORMAT, b->host->node_id (), ++a->next_call);
  c->agent = g_strdup (request->agent);
  c->responder = responder;
  c->timer = g_timeout_add (timeout_ms + GRACE_MS, call_timeout_cb, c);
  g_hash_table_insert (a->calls, c->id, c);

  channel = agent_channel (request->agent, "request");
  reply_to = agent_channel (request->agent, "response");
  node = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "id", c->id);
  json_object_set_string_member (obj, "agent", request->agent);
  json_object_set_string_member (obj, "action", request->action);
  json_object_set_member (obj, "data", request->data ? json_node_copy (request->data) : json_node_new (JSON_NODE_NULL));
  if (request->from)
    json_object_set_string_member (obj, "from", request->from);
  json_object_set_string_member (obj, "reply_to", reply_to);
  json_object_set_string_member (obj, "node", b->host->node_id ());
  json_object_set_int_member (obj, "timeout_ms", timeout_ms);
  payload = b->host->json_to_string (node);
  argv[0] = "PUBLISH";
  argv[1] = channel;
  argv[2] = payload;
  ref = g_new0 (CallRef, 1);
  ref->a = a;
  ref->id = g_strdup (c->id);
  a->sent++;
  if (!ens_redis_command_argv (b, on_request_published, ref, 3, argv))
    {
      g_free (ref->id);
      g_free (ref);
      call_fail (c, ENS_ERR_NOT_AVAILABLE, "the connection to Redis is closing");
    }
}

static void
take_response (RedisAgents *a, const char *payload, gsize len)
{
  EnsRedisResponse resp;
  EnsResponder *responder;
  Call *c;

  ens_redis_decode_response (a->b->host, payload, len, &resp);
  c = resp.id ? g_hash_table_lookup (a->calls, resp.id) : NULL;
  if (c == NULL)
    {
      a->stray++; /* another node's call, or one that timed out */
      ens_redis_response_clear (&resp);
      return;
    }
  responder = c->responder;
  c->responder = NULL;
  a->answered++;
  g_hash_table_remove (a->calls, resp.id);
  if (resp.failed)
    a->b->host->respond_error (responder, resp.code, resp.message, resp.details);
  else
    a->b->host->respond (responder, resp.data);
  ens_redis_response_clear (&resp);
}

/* ---- requests for agents of this node ---- */

static void
publish_response (RedisAgents *a, const char *reply_to, JsonNode *response)
{
  char **argv = g_new0 (char *, 4);

  argv[0] = g_strdup ("PUBLISH");
  argv[1] = g_strdup (reply_to);
  argv[2] = a->b->host->json_to_string (response);
  ens_redis_enqueue (a->b, argv);
}

static void
served_free (Served *s)
{
  g_free (s->id);
  g_free (s->reply_to);
  g_free (s->agent);
  g_free (s);
}

static void
on_local_answer (EnsMessage *answer, gpointer user_data)
{
  Served *s = user_data;
  RedisAgents *a = s->a;
  g_autoptr (JsonNode) response = NULL;

  if (answer->kind == ENS_MESSAGE_ERROR)
    response = ens_redis_error_response (s->id, answer->error_code, answer->error_message, answer->error_details);
  else
    {
      JsonObject *obj;
      response = ens_node_new_object (&obj);
      json_object_set_string_member (obj, "id", s->id);
      json_object_set_string_member (obj, "status", "success");
      json_object_set_member (obj, "data", answer->data ? json_node_copy (answer->data)
                                                        : json_node_new (JSON_NODE_NULL));
    }
  json_object_set_string_member (json_node_get_object (response), "agent", s->agent);
  json_object_set_string_member (json_node_get_object (response), "node", a->b->host->node_id ());
  a->requests_served++;
  publish_response (a, s->reply_to, response);
  g_hash_table_remove (a->served, s);
}

static void
take_request (RedisAgents *a, const char *agent, const char *payload, gsize len)
{
  Bridge *b = a->b;
  EnsRedisRequest req;
  g_autofree char *default_reply = agent_channel (agent, "response");
  Served *s;

  ens_redis_decode_request (b->host, payload, len, &req);
  if (req.id == NULL || req.id[0] == '\0')
    {
      a->rejected++; /* nobody to tell: no id to answer */
      ens_redis_request_clear (&req);
      return;
    }
  if (req.action == NULL || req.action[0] == '\0')
    {
      g_autoptr (JsonNode) err = ens_redis_error_response (req.id, ENS_ERR_INVALID_REQUEST,
                                                           "a request on agent.NAME.request needs \"id\" and \"action\" strings",
                                                           NULL);
      a->rejected++;
      publish_response (a, req.reply_to ? req.reply_to : default_reply, err);
      ens_redis_request_clear (&req);
      return;
    }
  s = g_new0 (Served, 1);
  s->a = a;
  s->id = g_strdup (req.id);
  s->reply_to = g_strdup (req.reply_to ? req.reply_to : default_reply);
  s->agent = g_strdup (agent);
  g_hash_table_add (a->served, s);
  b->host->request (b->self, agent, req.action, req.data, req.timeout_ms, on_local_answer, s);
  ens_redis_request_clear (&req);
}

static void
on_agent_message (redisAsyncContext *ac, void *r, void *privdata)
{
  RedisAgents *a = privdata;
  redisReply *reply = r;
  const char *channel, *payload, *dot;
  g_autofree char *agent = NULL;

  (void) ac;
  if (reply == NULL || a->b->stopping || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
      g_strcmp0 (reply->element[0]->str, "message") != 0 || reply->element[1]->str == NULL ||
      reply->element[2]->str == NULL)
    return;
  channel = reply->element[1]->str;
  payload = reply->element[2]->str;
  if (!g_str_has_prefix (channel, "agent.") || (dot = strrchr (channel, '.')) == channel + 5)
    return;
  agent = g_strndup (channel + 6, dot - (channel + 6));
  if (strcmp (dot, ".request") == 0 && g_hash_table_contains (a->exported, agent))
    take_request (a, agent, payload, reply->element[2]->len);
  else if (strcmp (dot, ".response") == 0)
    take_response (a, payload, reply->element[2]->len);
}

/* ---- listing ---- */

/* Events targeted at an agent served here come on <prefix>TOPIC:NAME. */
static void
want_targeted (RedisAgents *a, const char *name, gboolean on)
{
  g_autofree char *esc = ens_redis_glob_escape (name);
  g_autofree char *pattern = g_strconcat (a->b->prefix_glob, "*:", esc, NULL);

  ens_redis_want (a->b, pattern, on);
}

static void
channel_set (RedisAgents *a, GHashTable *set, const char *name, const char *suffix, gboolean on)
{
  g_autofree char *channel = agent_channel (name, suffix);

  if (set == a->exported)
    want_targeted (a, name, on);

  if (on && !g_hash_table_contains (set, name))
    {
      g_hash_table_add (set, g_strdup (name));
      ens_redis_subscribe (a->b, channel, on_agent_message, a);
    }
  else if (!on && g_hash_table_contains (set, name))
    {
      g_hash_table_remove (set, name);
      ens_redis_unsubscribe (a->b, channel);
    }
}

static gboolean
is_local (RedisAgents *a, const char *name)
{
  JsonArray *arr = a->local ? json_node_get_array (a->local) : NULL;

  for (guint i = 0; arr && i < json_array_get_length (arr); i++)
    if (g_strcmp0 (ens_member_string_or (ens_array_object (arr, i), "name", ""),
                   name) == 0)
      return TRUE;
  return FALSE;
}

/* Which live node serves @name, from the heartbeats; NULL: an external
 * dual-mode agent. */
static const char *
serving_node (Bridge *b, const char *name)
{
  JsonArray *nodes = b->nodes ? json_node_get_array (b->nodes) : NULL;

  for (guint i = 0; nodes && i < json_array_get_length (nodes); i++)
    {
      JsonObject *n = ens_array_object (nodes, i);
      JsonNode *agents = json_object_get_member (n, "agents");
      JsonArray *arr = agents && JSON_NODE_HOLDS_ARRAY (agents) ? json_node_get_array (agents) : NULL;
      if (g_strcmp0 (ens_member_string_or (n, "node", ""), b->host->node_id ()) == 0)
        continue;
      for (guint j = 0; arr && j < json_array_get_length (arr); j++)
        {
          JsonNode *e = json_array_get_element (arr, j);
          if (JSON_NODE_HOLDS_OBJECT (e) &&
              g_strcmp0 (ens_member_string_or (json_node_get_object (e), "name", ""), name) == 0)
            return ens_member_string (n, "node");
        }
    }
  return NULL;
}

static void
import_agents (RedisAgents *a, GHashTable *listening)
{
  Bridge *b = a->b;
  GHashTableIter iter;
  gpointer key;
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);

  g_hash_table_iter_init (&iter, listening);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      const char *name = key, *node;
      JsonObject *obj;
      g_autoptr (JsonNode) info = NULL;

      if (is_local (a, name))
        continue;
      node = serving_node (b, name);
      info = ens_node_new_object (&obj);
      json_object_set_string_member (obj, "via", "redis");
      if (node)
        json_object_set_string_member (obj, "node", node);
      else
        json_object_set_boolean_member (obj, "dual_mode", TRUE);
      json_object_set_string_member (obj, "description",
                                     node ? "an agent of another node" : "a dual-mode agent on Redis");
      if (b->host->agent_add (b->self, name, NULL, info, TRUE, proxy_handle, a))
        channel_set (a, a->proxies, name, "response", TRUE);
    }
  g_hash_table_iter_init (&iter, a->proxies);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (listening, key) || is_local (a, key))
      g_ptr_array_add (gone, g_strdup (key));
  for (guint i = 0; i < gone->len; i++)
    {
      const char *name = g_ptr_array_index (gone, i);
      b->host->agent_remove (b->self, name);
      channel_set (a, a->proxies, name, "response", FALSE);
    }
}

static void
on_channels (redisAsyncContext *ac, void *r, void *privdata)
{
  RedisAgents *a = privdata;
  redisReply *reply = r;
  g_autoptr (GHashTable) listening = NULL;

  (void) ac;
  if (reply == NULL || a->b->stopping)
    return;
  a->listing_channels = FALSE;
  if (reply->type != REDIS_REPLY_ARRAY)
    return;
  listening = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (size_t i = 0; i < reply->elements; i++)
    {
      const char *ch = reply->element[i]->str;
      gsize len = ch ? strlen (ch) : 0;
      if (len > 14 && g_str_has_prefix (ch, "agent.") && g_str_has_suffix (ch, ".request"))
        g_hash_table_add (listening, g_strndup (ch + 6, len - 14));
    }
  import_agents (a, listening);
  if (a->again)
    refresh_soon (a);
}

static void
on_agents_list (EnsMessage *reply, gpointer user_data)
{
  RedisAgents *a = user_data;
  JsonNode *agents;
  JsonArray *arr, *mine;
  g_autoptr (GHashTable) want = NULL;
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;
  g_autoptr (GString) key_text = g_string_new (NULL);

  a->listing_local = FALSE;
  if (a->b->stopping || reply->kind != ENS_MESSAGE_REPLY || reply->data == NULL ||
      !JSON_NODE_HOLDS_OBJECT (reply->data))
    return;
  agents = json_object_get_member (json_node_get_object (reply->data), "agents");
  if (agents == NULL || !JSON_NODE_HOLDS_ARRAY (agents))
    return;
  arr = json_node_get_array (agents);
  mine = json_array_new ();
  want = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *ag = ens_array_object (arr, i);
      if (g_strcmp0 (ens_member_string_or (ag, "kind", ""), "remote") == 0)
        continue;
      json_array_add_element (mine, json_node_copy (json_array_get_element (arr, i)));
      /* Only external agents go on Redis: an agent plugin runs on every
       * node that loads it, and a request published for it would be served
       * by each of them. */
      if (ens_member_bool (ag, "connected", FALSE) && ens_member_string (ag, "name") &&
          g_strcmp0 (ens_member_string_or (ag, "kind", ""), "client") == 0)
        {
          g_hash_table_add (want, (gpointer) ens_member_string (ag, "name"));
          g_string_append_printf (key_text, "%s\n", ens_member_string (ag, "name"));
        }
    }
  g_clear_pointer (&a->local, json_node_unref);
  a->local = json_node_init_array (json_node_alloc (), mine);
  json_array_unref (mine);

  if (!ens_redis_ready (a->b))
    return;
  if (g_strcmp0 (key_text->str, a->local_names) != 0)
    {
      g_free (a->local_names);
      a->local_names = g_strdup (key_text->str);
      ens_redis_heartbeat (a->b); /* other nodes learn who serves what sooner */
    }
  /* Export: listen on the request channel of every agent served here. */
  g_hash_table_iter_init (&iter, want);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    channel_set (a, a->exported, key, "request", TRUE);
  g_hash_table_iter_init (&iter, a->exported);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (want, key))
      g_ptr_array_add (gone, g_strdup (key));
  for (guint i = 0; i < gone->len; i++)
    channel_set (a, a->exported, g_ptr_array_index (gone, i), "request", FALSE);
  /* Import: everyone else's. */
  if (!a->listing_channels)
    {
      a->listing_channels = TRUE;
      a->again = FALSE;
      ens_redis_command (a->b, on_channels, a, "PUBSUB CHANNELS %s", "agent.*.request");
    }
  else
    a->again = TRUE;
}

void
ens_redis_agents_refresh (RedisAgents *a)
{
  if (a->listing_local)
    return;
  a->listing_local = TRUE;
  a->b->host->request (a->b->self, NULL, "agents.list", NULL, 0, on_agents_list, a);
}

static gboolean
refresh_cb (gpointer data)
{
  RedisAgents *a = data;

  a->refresh_id = 0;
  ens_redis_agents_refresh (a);
  return G_SOURCE_REMOVE;
}

static void
refresh_soon (RedisAgents *a)
{
  if (a->refresh_id == 0 && !a->b->stopping)
    a->refresh_id = g_timeout_add (REFRESH_DEBOUNCE_MS, refresh_cb, a);
}

/* An agent came or went, here or on another node. */
static void
on_agent_event (EnsMessage *event, gpointer user_data)
{
  (void) event;
  refresh_soon (user_data);
}

RedisAgents *
ens_redis_agents_new (Bridge *b)
{
  RedisAgents *a = g_new0 (RedisAgents, 1);

  a->b = b;
  a->exported = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  a->proxies = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  a->calls = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) call_free);
  a->served = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) served_free, NULL);
  a->event_sub = b->host->subscribe (b->self, "ensemble.agent.*", on_agent_event, a, NULL);
  return a;
}

/* Both links are up (again): listen again on every channel. */
void
ens_redis_agents_connected (RedisAgents *a)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, a->exported);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_autofree char *channel = agent_channel (key, "request");
      ens_redis_subscribe (a->b, channel, on_agent_message, a);
    }
  g_hash_table_iter_init (&iter, a->proxies);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_autofree char *channel = agent_channel (key, "response");
      ens_redis_subscribe (a->b, channel, on_agent_message, a);
    }
  a->listing_channels = FALSE;
  ens_redis_agents_refresh (a);
}

/* Answers published while the link was down never arrive. */
static void
fail_all_calls (RedisAgents *a, const char *code, const char *message)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, a->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (all, value);
  for (guint i = 0; i < all->len; i++)
    call_fail (g_ptr_array_index (all, i), code, message);
}

void
ens_redis_agents_lost (RedisAgents *a)
{
  a->listing_channels = FALSE;
  fail_all_calls (a, ENS_ERR_NOT_AVAILABLE, "the connection to Redis broke before the agent answered");
}

JsonNode *
ens_redis_agents_local (RedisAgents *a)
{
  JsonNode *empty;

  if (a->local)
    return json_node_copy (a->local);
  empty = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (empty, json_array_new ());
  return empty;
}

void
ens_redis_agents_describe (RedisAgents *a, JsonObject *obj)
{
  JsonObject *o = json_object_new ();
  JsonArray *imported = json_array_new ();
  g_autoptr (GList) names = g_list_sort (g_hash_table_get_keys (a->proxies), (GCompareFunc) strcmp);

  for (GList *l = names; l; l = l->next)
    json_array_add_string_element (imported, l->data);
  json_object_set_int_member (o, "exported", g_hash_table_size (a->exported));
  json_object_set_array_member (o, "imported", imported);
  json_object_set_int_member (o, "waiting", g_hash_table_size (a->calls));
  json_object_set_int_member (o, "requests_sent", (gint64) a->sent);
  json_object_set_int_member (o, "answers_received", (gint64) a->answered);
  json_object_set_int_member (o, "requests_served", (gint64) a->requests_served);
  json_object_set_int_member (o, "timeouts", (gint64) a->timeouts);
  json_object_set_int_member (o, "no_listener", (gint64) a->no_listener);
  json_object_set_int_member (o, "stray_answers", (gint64) a->stray);
  json_object_set_int_member (o, "rejected_requests", (gint64) a->rejected);
  json_object_set_object_member (obj, "agents", o);
}

void
ens_redis_agents_free (RedisAgents *a)
{
  GHashTableIter iter;
  gpointer key;

  fail_all_calls (a, ENS_ERR_AGENT_GONE, "the Redis bridge stopped");
  g_clear_handle_id (&a->refresh_id, g_source_remove);
  if (a->event_sub)
    a->b->host->unsubscribe (a->b->self, a->event_sub);
  g_hash_table_iter_init (&iter, a->proxies);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    a->b->host->agent_remove (a->b->self, key);
  g_hash_table_unref (a->exported);
  g_hash_table_unref (a->proxies);
  g_hash_table_unref (a->calls);
  g_hash_table_unref (a->served); /* the core forgets the answers owed to a stopped plugin */
  g_clear_pointer (&a->local, json_node_unref);
  g_free (a->local_names);
  g_free (a);
}
