/* ens-transport-redis.c — one bus across several daemons, through Redis.
 *
 * hiredis async on the daemon's main loop (the GLib adapter's GSource), one
 * context for commands (PUBLISH, heartbeats, node listing) and one for
 * PSUBSCRIBE <prefix>*.
 *
 *  out: host->tap sees every local event (never the remote ones) ->
 *       PUBLISH <prefix><topic> {"node","topic","data","from","to"?,"seq"}.
 *       While Redis is away events wait in a bounded outbox (redis-outbox-max,
 *       oldest dropped first, counted and logged); what was written but not
 *       acknowledged by Redis when the link broke goes back to the outbox.
 *  in:  pmessage on <prefix>TOPIC -> host->publish_remote; envelopes from our
 *       own node are ignored; a plain JSON payload is the data (from "redis"),
 *       a non-JSON payload is delivered as a JSON string.
 *  nodes: SET <prefix>node:<id> {node, started_at, agents} PX 3*interval every
 *       redis-heartbeat-ms; KEYS + MGET list the nodes alive.
 */
#include <string.h>

#include <ensemble/ens-host.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <hiredis/adapters/glib.h>
#pragma GCC diagnostic pop

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000

typedef struct _Bridge Bridge;

typedef struct {
  Bridge *b;
  redisAsyncContext *ac;
  gboolean ready; /* authenticated (and subscribed, for the sub link) */
  gboolean is_sub;
} Link;

typedef struct {
  char *channel;
  char *payload;
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
  char *pattern; /* prefix, glob-escaped, then '*' */
  guint outbox_max;
  guint heartbeat_ms;

  Link cmd, sub;
  const char *state; /* disabled, connecting, connected, disconnected */
  char *last_error;
  guint retry_id;
  guint timeout_id;
  guint heartbeat_id;
  guint backoff_ms;
  guint64 connects;
  guint64 reconnects;

  guint tap_id;
  GQueue outbox;   /* Item*, not yet written */
  GQueue inflight; /* Item*, written, PUBLISH reply pending */
  guint64 outbox_dropped;
  guint64 forwarded;
  guint64 received;
  guint64 ignored_own;
  guint64 rejected;

  gint64 started_at;
  JsonNode *agents; /* last agents.list result, an array */
  gboolean agents_pending;
  JsonNode *nodes;  /* array of node info objects, from the last listing */
  gboolean listing;
};

static void item_free (gpointer data)
{
  Item *it = data;
  g_free (it->channel);
  g_free (it->payload);
  g_free (it);
}

/* ---- link plumbing ---- */

/* hiredis calls ev.cleanup whenever it frees a context (lost connection,
 * failed connect, redisAsyncFree): the GSource goes with it. */
static void
link_ev_cleanup (void *data)
{
  RedisSource *src = data;

  redis_source_cleanup (src);
  src->poll_fd.revents = 0; /* dispatch must not touch the freed context */
  g_source_destroy ((GSource *) src);
  g_source_unref ((GSource *) src);
}

static void connection_lost (Bridge *b, const char *why);

static void
link_close (Link *l)
{
  redisAsyncContext *ac = l->ac;

  l->ready = FALSE;
  if (ac == NULL)
    return;
  l->ac = NULL; /* on_disconnect sees NULL: our own teardown */
  redisAsyncFree (ac);
}

static void
on_disconnect (const redisAsyncContext *ac, int status)
{
  Link *l = ac->data;
  g_autofree char *why = NULL;

  if (l == NULL || l->ac == NULL)
    return;
  why = g_strdup (status == REDIS_OK ? "connection closed" : ac->errstr);
  l->ac = NULL;
  l->ready = FALSE;
  connection_lost (l->b, why);
}

static void link_connected (Link *l);

static void
on_connect (const redisAsyncContext *ac, int status)
{
  Link *l = ac->data;

  if (l == NULL || l->ac == NULL)
    return;
  if (status != REDIS_OK)
    {
      g_autofree char *why = g_strdup (ac->errstr);
      l->ac = NULL; /* hiredis frees it after this callback */
      connection_lost (l->b, why);
      return;
    }
  link_connected (l);
}

static gboolean
link_open (Bridge *b, Link *l)
{
  redisAsyncContext *ac;
  GSource *src;

  ac = b->unix_path ? redisAsyncConnectUnix (b->unix_path) : redisAsyncConnect (b->host_name, b->port);
  if (ac == NULL)
    return FALSE;
  if (ac->err)
    {
      g_free (b->last_error);
      b->last_error = g_strdup (ac->errstr);
      redisAsyncFree (ac);
      return FALSE;
    }
  ac->data = l;
  l->ac = ac;
  l->ready = FALSE;
  src = redis_source_new (ac);
  ac->ev.cleanup = link_ev_cleanup;
  g_source_attach (src, NULL);
  /* after attaching: the connect callback arms the write watch */
  redisAsyncSetConnectCallback (ac, on_connect);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  return TRUE;
}

/* ---- connection state ---- */

static void connect_now (Bridge *b);

static gboolean
retry_cb (gpointer data)
{
  Bridge *b = data;

  b->retry_id = 0;
  connect_now (b);
  return G_SOURCE_REMOVE;
}

static gboolean
connect_timeout_cb (gpointer data)
{
  Bridge *b = data;

  b->timeout_id = 0;
  connection_lost (b, "connect timed out");
  return G_SOURCE_REMOVE;
}

static void trim_outbox (Bridge *b);

static void
connection_lost (Bridge *b, const char *why)
{
  gboolean was_connected = g_str_equal (b->state, "connected");

  if (b->stopping)
    return;
  link_close (&b->cmd);
  link_close (&b->sub);
  g_clear_handle_id (&b->timeout_id, g_source_remove);
  g_clear_handle_id (&b->heartbeat_id, g_source_remove);
  /* Written but not acknowledged: older than anything in the outbox. */
  while (!g_queue_is_empty (&b->inflight))
    g_queue_push_head (&b->outbox, g_queue_pop_tail (&b->inflight));
  trim_outbox (b);
  if (why && g_strcmp0 (why, b->last_error) != 0)
    {
      g_free (b->last_error);
      b->last_error = g_strdup (why);
    }
  if (was_connected)
    ENS_LOG (b->host, b->self, G_LOG_LEVEL_WARNING, "lost Redis at %s (%s); reconnecting", b->url_shown,
             why ? why : "?");
  b->state = "disconnected";
  if (b->retry_id == 0)
    {
      b->retry_id = g_timeout_add (b->backoff_ms, retry_cb, b);
      b->backoff_ms = MIN (b->backoff_ms * 2, BACKOFF_MAX_MS);
    }
}

static void
connect_now (Bridge *b)
{
  b->state = "connecting";
  if (!link_open (b, &b->cmd) || !link_open (b, &b->sub))
    {
      connection_lost (b, b->last_error ? b->last_error : "cannot connect");
      return;
    }
  b->timeout_id = g_timeout_add (CONNECT_TIMEOUT_MS, connect_timeout_cb, b);
}

/* ---- out: local events to Redis ---- */

static void
on_publish_reply (redisAsyncContext *ac, void *reply, void *privdata)
{
  Bridge *b = privdata;

  (void) ac;
  /* NULL: the link is going away; connection_lost() requeues the inflight. */
  if (reply == NULL || b->stopping)
    return;
  if (!g_queue_is_empty (&b->inflight))
    {
      item_free (g_queue_pop_head (&b->inflight));
      b->forwarded++;
    }
}

static void
send_item (Bridge *b, Item *it)
{
  g_queue_push_tail (&b->inflight, it);
  redisAsyncCommand (b->cmd.ac, on_publish_reply, b, "PUBLISH %s %s", it->channel, it->payload);
}

static void
trim_outbox (Bridge *b)
{
  guint dropped = 0;

  while (g_queue_get_length (&b->outbox) > b->outbox_max)
    {
      item_free (g_queue_pop_head (&b->outbox));
      dropped++;
    }
  if (dropped)
    {
      b->outbox_dropped += dropped;
      ENS_LOG (b->host, b->self, G_LOG_LEVEL_WARNING,
               "Redis unavailable: outbox full (%u), dropped %u oldest event(s), %" G_GUINT64_FORMAT " in all",
               b->outbox_max, dropped, b->outbox_dropped);
    }
}

static void
on_tap (EnsMessage *event, gpointer user_data)
{
  Bridge *b = user_data;
  Item *it;
  JsonObject *obj;
  g_autoptr (JsonNode) node = NULL;

  if (event->kind != ENS_MESSAGE_EVENT || event->topic == NULL)
    return;
  obj = json_object_new ();
  node = json_node_init_object (json_node_alloc (), obj);
  json_object_set_string_member (obj, "node", b->host->node_id ());
  json_object_set_string_member (obj, "topic", event->topic);
  if (event->data)
    json_object_set_member (obj, "data", json_node_copy (event->data));
  else
    json_object_set_null_member (obj, "data");
  if (event->from)
    json_object_set_string_member (obj, "from", event->from);
  if (event->to)
    json_object_set_string_member (obj, "to", event->to);
  json_object_set_int_member (obj, "seq", (gint64) event->seq);
  json_object_unref (obj);

  it = g_new0 (Item, 1);
  it->channel = g_strconcat (b->prefix, event->topic, NULL);
  it->payload = b->host->json_to_string (node);
  if (g_str_equal (b->state, "connected") && b->cmd.ac)
    send_item (b, it);
  else
    {
      g_queue_push_tail (&b->outbox, it);
      trim_outbox (b);
    }
}

/* ---- in: Redis to local subscribers ---- */

static gboolean
is_concrete_topic (const char *t)
{
  return t[0] != '\0' && strpbrk (t, "*?[") == NULL;
}

static void
deliver_in (Bridge *b, const char *channel, const char *payload, gsize len)
{
  const char *topic;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (JsonNode) str = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  JsonObject *obj;

  if (!g_str_has_prefix (channel, b->prefix))
    return;
  topic = channel + strlen (b->prefix);
  if (!is_concrete_topic (topic) || !g_utf8_validate (payload, len, NULL))
    {
      b->rejected++;
      return;
    }
  root = b->host->json_parse (payload, len, NULL);
  init.topic = topic;
  init.from = "redis";
  if (root == NULL)
    {
      g_autofree char *text = g_strndup (payload, len);
      str = json_node_init_string (json_node_alloc (), text);
      init.data = str;
    }
  else if (JSON_NODE_HOLDS_OBJECT (root) && (obj = json_node_get_object (root))
           && json_object_has_member (obj, "node"))
    {
      const char *node = json_object_get_string_member_with_default (obj, "node", "");
      if (g_str_equal (node, b->host->node_id ()))
        {
          b->ignored_own++;
          return;
        }
      init.data = json_object_get_member (obj, "data");
      init.from = json_object_get_string_member_with_default (obj, "from", "redis");
      init.to = json_object_get_string_member_with_default (obj, "to", NULL);
    }
  else
    init.data = root;
  b->received++;
  b->host->publish_remote (b->self, &init);
}

static void
on_sub_message (redisAsyncContext *ac, void *r, void *privdata)
{
  Bridge *b = privdata;
  redisReply *reply = r;
  const char *kind;

  (void) ac;
  if (reply == NULL || b->stopping || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
    return;
  kind = reply->element[0]->str;
  if (kind == NULL)
    return;
  if (g_str_equal (kind, "psubscribe"))
    {
      b->sub.ready = TRUE;
      link_connected (&b->sub);
    }
  else if (g_str_equal (kind, "pmessage") && reply->elements >= 4 && reply->element[2]->str
           && reply->element[3]->str)
    deliver_in (b, reply->element[2]->str, reply->element[3]->str, reply->element[3]->len);
}

/* ---- nodes ---- */

static void
on_agents (EnsMessage *reply, gpointer user_data)
{
  Bridge *b = user_data;
  JsonObject *obj;

  b->agents_pending = FALSE;
  if (b->stopping || reply->kind != ENS_MESSAGE_REPLY || reply->data == NULL || !JSON_NODE_HOLDS_OBJECT (reply->data))
    return;
  obj = json_node_get_object (reply->data);
  if (json_object_has_member (obj, "agents"))
    {
      g_clear_pointer (&b->agents, json_node_unref);
      b->agents = json_node_copy (json_object_get_member (obj, "agents"));
    }
}

static void
on_nodes_values (redisAsyncContext *ac, void *r, void *privdata)
{
  Bridge *b = privdata;
  redisReply *reply = r;
  JsonArray *arr;

  (void) ac;
  if (reply == NULL || b->stopping)
    return;
  b->listing = FALSE;
  if (reply->type != REDIS_REPLY_ARRAY)
    return;
  arr = json_array_new ();
  for (size_t i = 0; i < reply->elements; i++)
    {
      redisReply *e = reply->element[i];
      JsonNode *n;
      if (e->type != REDIS_REPLY_STRING)
        continue;
      n = b->host->json_parse (e->str, e->len, NULL);
      if (n && JSON_NODE_HOLDS_OBJECT (n) && json_object_has_member (json_node_get_object (n), "node"))
        json_array_add_element (arr, n);
      else if (n)
        json_node_unref (n);
    }
  g_clear_pointer (&b->nodes, json_node_unref);
  b->nodes = json_node_init_array (json_node_alloc (), arr);
  json_array_unref (arr);
}

static void
on_nodes_keys (redisAsyncContext *ac, void *r, void *privdata)
{
  Bridge *b = privdata;
  redisReply *reply = r;
  g_autofree const char **argv = NULL;

  if (reply == NULL || b->stopping)
    return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || b->cmd.ac == NULL)
    {
      b->listing = FALSE;
      return;
    }
  argv = g_new0 (const char *, reply->elements + 1);
  argv[0] = "MGET";
  for (size_t i = 0; i < reply->elements; i++)
    argv[i + 1] = reply->element[i]->str ? reply->element[i]->str : "";
  redisAsyncCommandArgv (ac, on_nodes_values, b, (int) reply->elements + 1, argv, NULL);
}

static char *
glob_escape (const char *s)
{
  GString *out = g_string_new (NULL);
  for (; *s; s++)
    {
      if (strchr ("*?[]\\", *s))
        g_string_append_c (out, '\\');
      g_string_append_c (out, *s);
    }
  return g_string_free (out, FALSE);
}

static JsonNode *
empty_array_node (void)
{
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (node, json_array_new ());
  return node;
}

static gboolean
heartbeat_cb (gpointer data)
{
  Bridge *b = data;
  JsonObject *obj;
  g_autoptr (JsonNode) node = NULL;
  g_autofree char *text = NULL;
  g_autofree char *key = NULL;
  g_autofree char *esc = NULL;
  g_autofree char *px = NULL;
  g_autofree char *keys = NULL;

  if (b->cmd.ac == NULL || !b->cmd.ready)
    return G_SOURCE_CONTINUE;
  obj = json_object_new ();
  node = json_node_init_object (json_node_alloc (), obj);
  json_object_set_string_member (obj, "node", b->host->node_id ());
  json_object_set_int_member (obj, "started_at", b->started_at);
  json_object_set_int_member (obj, "updated_at", g_get_real_time () / 1000);
  json_object_set_member (obj, "agents", b->agents ? json_node_copy (b->agents)
                                                   : empty_array_node ());
  json_object_unref (obj);
  text = b->host->json_to_string (node);
  key = g_strconcat (b->prefix, "node:", b->host->node_id (), NULL);
  px = g_strdup_printf ("%u", b->heartbeat_ms * 3);
  redisAsyncCommand (b->cmd.ac, NULL, NULL, "SET %s %s PX %s", key, text, px);
  if (!b->listing)
    {
      esc = glob_escape (b->prefix);
      keys = g_strconcat (esc, "node:*", NULL);
      b->listing = TRUE;
      redisAsyncCommand (b->cmd.ac, on_nodes_keys, b, "KEYS %s", keys);
    }
  if (!b->agents_pending)
    {
      b->agents_pending = TRUE;
      b->host->request (b->self, NULL, "agents.list", NULL, 0, on_agents, b);
    }
  return G_SOURCE_CONTINUE;
}

/* ---- handshake ---- */

static void
on_handshake (redisAsyncContext *ac, void *r, void *privdata)
{
  Link *l = privdata;
  redisReply *reply = r;

  (void) ac;
  if (reply == NULL || l->b->stopping || l->ac == NULL)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_autofree char *why = g_strdup_printf ("Redis refused: %s", reply->str);
      ENS_LOG (l->b->host, l->b->self, G_LOG_LEVEL_WARNING, "%s", why);
      connection_lost (l->b, why);
    }
}

static void
on_handshake_done (redisAsyncContext *ac, void *r, void *privdata)
{
  Link *l = privdata;
  redisReply *reply = r;

  (void) ac;
  if (reply == NULL || l->b->stopping || l->ac == NULL)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      on_handshake (ac, r, privdata);
      return;
    }
  l->ready = TRUE;
  link_connected (l);
}

static void
link_connected (Link *l)
{
  Bridge *b = l->b;

  if (!l->ready)
    {
      /* TCP (or unix) connected: authenticate, then select / subscribe. */
      if (b->password)
        redisAsyncCommand (l->ac, on_handshake, l, "AUTH %s", b->password);
      if (l->is_sub)
        redisAsyncCommand (l->ac, on_sub_message, b, "PSUBSCRIBE %s", b->pattern);
      else if (b->db)
        redisAsyncCommand (l->ac, on_handshake_done, l, "SELECT %d", b->db);
      else
        redisAsyncCommand (l->ac, on_handshake_done, l, "PING");
      return;
    }
  if (!b->cmd.ready || !b->sub.ready || g_str_equal (b->state, "connected"))
    return;
  /* both links ready */
  g_clear_handle_id (&b->timeout_id, g_source_remove);
  b->state = "connected";
  b->backoff_ms = BACKOFF_MIN_MS;
  if (b->connects++ > 0)
    b->reconnects++;
  ENS_LOG (b->host, b->self, G_LOG_LEVEL_MESSAGE, "connected to Redis at %s%s (%u queued event(s) to flush)",
           b->url_shown, b->reconnects ? " again" : "", g_queue_get_length (&b->outbox));
  while (!g_queue_is_empty (&b->outbox))
    send_item (b, g_queue_pop_head (&b->outbox));
  heartbeat_cb (b);
  b->heartbeat_id = g_timeout_add (b->heartbeat_ms, heartbeat_cb, b);
}

/* ---- configuration ---- */

static gboolean
parse_url (Bridge *b, const char *url, GError **error)
{
  g_autofree char *scheme = NULL, *user = NULL, *password = NULL, *host = NULL, *path = NULL;
  g_autofree char *query = NULL;
  int port = -1;

  if (!g_uri_split_with_user (url, G_URI_FLAGS_HAS_PASSWORD, &scheme, &user, &password, NULL, &host, &port,
                              &path, &query, NULL, error))
    return FALSE;
  if (g_strcmp0 (scheme, "unix") == 0)
    {
      if (path == NULL || path[0] != '/')
        goto bad;
      b->unix_path = g_steal_pointer (&path);
    }
  else if (g_strcmp0 (scheme, "redis") == 0)
    {
      b->host_name = g_strdup (host && host[0] ? host : "127.0.0.1");
      b->port = port > 0 ? port : 6379;
      if (path && path[0] == '/' && path[1])
        {
          char *end = NULL;
          gint64 db = g_ascii_strtoll (path + 1, &end, 10);
          if (*end || db < 0 || db > G_MAXINT)
            goto bad;
          b->db = (int) db;
        }
    }
  else
    goto bad;
  if (query)
    {
      g_auto (GStrv) parts = g_strsplit (query, "&", -1);
      for (guint i = 0; parts[i]; i++)
        {
          if (g_str_has_prefix (parts[i], "db="))
            b->db = atoi (parts[i] + 3);
          else if (g_str_has_prefix (parts[i], "password="))
            {
              g_free (password);
              password = g_uri_unescape_string (parts[i] + 9, NULL);
            }
        }
    }
  if (password && password[0])
    b->password = g_steal_pointer (&password);
  b->url_shown = b->unix_path ? g_strdup_printf ("unix://%s%s", b->password ? "***@" : "", b->unix_path)
                              : g_strdup_printf ("redis://%s%s:%d/%d", b->password ? ":***@" : "", b->host_name,
                                                 b->port, b->db);
  return TRUE;

bad:
  g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_INIT,
               "redis-url: expected redis://[:password@]host:port[/db] or unix:///path, got '%s'", url);
  return FALSE;
}

static char *
config_string (const EnsHost *host, EnsPlugin *self, const char *key, const char *fallback)
{
  g_autoptr (GVariant) v = host->config_get (self, key);
  return g_strdup (v ? g_variant_get_string (v, NULL) : fallback);
}

static guint
config_uint (const EnsHost *host, EnsPlugin *self, const char *key, guint fallback)
{
  g_autoptr (GVariant) v = host->config_get (self, key);
  return v ? g_variant_get_uint32 (v) : fallback;
}

static void redis_stop (gpointer instance);

static gpointer
redis_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Bridge *b = g_new0 (Bridge, 1);
  g_autofree char *url = config_string (host, self, "redis-url", "");
  g_autofree char *esc = NULL;

  b->host = host;
  b->self = self;
  b->cmd.b = b->sub.b = b;
  b->sub.is_sub = TRUE;
  g_queue_init (&b->outbox);
  g_queue_init (&b->inflight);
  b->state = "disabled";
  b->backoff_ms = BACKOFF_MIN_MS;
  b->started_at = g_get_real_time () / 1000;
  b->prefix = config_string (host, self, "redis-prefix", "ensemble:");
  b->outbox_max = config_uint (host, self, "redis-outbox-max", 10000);
  b->heartbeat_ms = MAX (config_uint (host, self, "redis-heartbeat-ms", 2000), 50);
  esc = glob_escape (b->prefix);
  b->pattern = g_strconcat (esc, "*", NULL);

  g_strstrip (url);
  if (url[0] == '\0')
    return b; /* bridge off */
  if (!parse_url (b, url, error))
    {
      redis_stop (b);
      return NULL;
    }
  b->enabled = TRUE;
  b->tap_id = host->tap (self, on_tap, b, NULL);
  ENS_LOG (host, self, G_LOG_LEVEL_MESSAGE, "bridging the bus through Redis at %s, prefix '%s', node '%s'",
           b->url_shown, b->prefix, host->node_id ());
  connect_now (b);
  return b;
}

static void
redis_stop (gpointer instance)
{
  Bridge *b = instance;

  b->stopping = TRUE;
  if (b->tap_id)
    b->host->untap (b->self, b->tap_id);
  g_clear_handle_id (&b->retry_id, g_source_remove);
  g_clear_handle_id (&b->timeout_id, g_source_remove);
  g_clear_handle_id (&b->heartbeat_id, g_source_remove);
  /* Leave the node list at once rather than at expiry (best effort). */
  if (b->cmd.ac && b->cmd.ready)
    {
      g_autofree char *key = g_strconcat (b->prefix, "node:", b->host->node_id (), NULL);
      redisContext *c;
      struct timeval tv = { 0, 200000 };
      c = b->unix_path ? redisConnectUnixWithTimeout (b->unix_path, tv)
                       : redisConnectWithTimeout (b->host_name, b->port, tv);
      if (c && !c->err)
        {
          redisSetTimeout (c, tv);
          if (b->password)
            freeReplyObject (redisCommand (c, "AUTH %s", b->password));
          if (b->db)
            freeReplyObject (redisCommand (c, "SELECT %d", b->db));
          freeReplyObject (redisCommand (c, "DEL %s", key));
        }
      if (c)
        redisFree (c);
    }
  link_close (&b->cmd);
  link_close (&b->sub);
  if (g_queue_get_length (&b->outbox) + g_queue_get_length (&b->inflight) > 0)
    ENS_LOG (b->host, b->self, G_LOG_LEVEL_WARNING, "stopping with %u event(s) not delivered to Redis",
             g_queue_get_length (&b->outbox) + g_queue_get_length (&b->inflight));
  g_queue_clear_full (&b->outbox, item_free);
  g_queue_clear_full (&b->inflight, item_free);
  g_clear_pointer (&b->agents, json_node_unref);
  g_clear_pointer (&b->nodes, json_node_unref);
  g_free (b->last_error);
  g_free (b->url_shown);
  g_free (b->host_name);
  g_free (b->unix_path);
  g_free (b->password);
  g_free (b->prefix);
  g_free (b->pattern);
  g_free (b);
}

static JsonNode *
object_node (JsonObject *obj)
{
  JsonNode *node = json_node_init_object (json_node_alloc (), obj);
  json_object_unref (obj);
  return node;
}

static JsonNode *
redis_describe (gpointer instance)
{
  Bridge *b = instance;
  JsonObject *obj = json_object_new ();
  JsonArray *names = json_array_new ();

  json_object_set_string_member (obj, "state", b->state);
  json_object_set_string_member (obj, "node", b->host->node_id ());
  if (!b->enabled)
    {
      json_array_unref (names);
      return object_node (obj);
    }
  json_object_set_string_member (obj, "url", b->url_shown);
  json_object_set_string_member (obj, "prefix", b->prefix);
  if (b->last_error)
    json_object_set_string_member (obj, "last_error", b->last_error);
  json_object_set_int_member (obj, "reconnects", (gint64) b->reconnects);
  json_object_set_int_member (obj, "outbox", g_queue_get_length (&b->outbox));
  json_object_set_int_member (obj, "outbox_max", b->outbox_max);
  json_object_set_int_member (obj, "outbox_dropped", (gint64) b->outbox_dropped);
  json_object_set_int_member (obj, "inflight", g_queue_get_length (&b->inflight));
  json_object_set_int_member (obj, "forwarded", (gint64) b->forwarded);
  json_object_set_int_member (obj, "received", (gint64) b->received);
  json_object_set_int_member (obj, "ignored_own", (gint64) b->ignored_own);
  json_object_set_int_member (obj, "rejected", (gint64) b->rejected);
  if (b->nodes)
    {
      JsonArray *arr = json_node_get_array (b->nodes);
      for (guint i = 0; i < json_array_get_length (arr); i++)
        json_array_add_string_element (
            names, json_object_get_string_member_with_default (json_array_get_object_element (arr, i), "node", ""));
      json_object_set_member (obj, "node_details", json_node_copy (b->nodes));
    }
  json_object_set_array_member (obj, "nodes", names);
  return object_node (obj);
}

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-redis", "0.1.0",
                   "Redis bridge: one bus across several daemons (pub/sub, targeted delivery, node heartbeats)",
                   redis_init, redis_stop, redis_describe, NULL)
