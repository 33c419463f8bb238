/* ens-transport-redis.c — one bus across several daemons, through Redis.
 *
 * hiredis async on the daemon's main loop (its own GSource,
 * ens-redis-source.c), one context for commands (PUBLISH, heartbeats, node
 * listing) and one for PSUBSCRIBE <prefix>*.
 *
 *  out: host->tap sees every local event (never the remote ones) ->
 *       PUBLISH <prefix><topic> {"node","topic","from"?,"to"?,"seq","data"};
 *       a targeted event goes to <prefix><topic>:<to> instead, where only its
 *       target's node and observers of TOPIC:TARGET listen.
 *       While Redis is away events wait in a bounded outbox (redis-outbox-max,
 *       oldest dropped first, counted and logged); what was written but not
 *       acknowledged by Redis when the link broke goes back to the outbox.
 *       "data" is last and is the event's data text as it is: a receiving
 *       node checks it and passes it on unparsed (EnsMessageInit.data_text),
 *       parsed only if something on that node reads it (ens-redis-codec.c).
 *  in:  every topic or pattern local subscribers want is PSUBSCRIBEd as
 *       <prefix><pattern> (the bus speaks Redis globs), plus
 *       <prefix>*:c*-<node> for events targeted at this node's clients;
 *       pmessage -> host->publish_remote; envelopes from our own node are
 *       ignored; a plain JSON payload is the data (from "redis"), a non-JSON
 *       payload is delivered as a JSON string.
 *  nodes: SET <prefix>node:<id> {node, started_at, agents} PX 3*interval every
 *       redis-heartbeat-ms; KEYS + MGET list the nodes alive.
 */
#include <string.h>

#include "ens-glob.h"
#include "ens-redis.h"
#include "ens-host-config.h"

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define GAP_TOPIC "ensemble.redis.gap" /* a local event: never forwarded */

static void
item_free (gpointer data)
{
  Item *it = data;
  g_free (it->cmd);
  g_free (it);
}

/* ---- link plumbing ---- */

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
  ens_redis_source_attach (ac);
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
  ens_redis_agents_lost (b->agents);
  if (b->streams)
    ens_redis_streams_lost (b->streams);
  if (why && g_strcmp0 (why, b->last_error) != 0)
    {
      g_free (b->last_error);
      b->last_error = g_strdup (why);
    }
  if (was_connected)
    {
      ENS_LOG (b->host, b->self, G_LOG_LEVEL_WARNING, "lost Redis at %s (%s); reconnecting", b->url_shown,
               why ? why : "?");
      b->lost_at = g_get_real_time ();
      g_free (b->lost_why);
      b->lost_why = g_strdup (why ? why : "?");
    }
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
      Item *it = g_queue_pop_head (&b->inflight);
      if (((redisReply *) reply)->type == REDIS_REPLY_ERROR)
        {
          /* Redis refused it (out of memory, a key of the wrong type): counted, logged once. */
          if (b->command_errors++ == 0)
            ENS_LOG (b->host, b->self, G_LOG_LEVEL_WARNING, "Redis refused %s: %s", it->name,
                     ((redisReply *) reply)->str);
        }
      else
        b->forwarded++;
      item_free (it);
    }
}

static void
send_item (Bridge *b, Item *it)
{
  g_queue_push_tail (&b->inflight, it);
  redisAsyncFormattedCommand (b->cmd.ac, on_publish_reply, b, it->cmd, it->len);
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

gboolean
ens_redis_ready (Bridge *b)
{
  return g_str_equal (b->state, "connected") && b->cmd.ac != NULL;
}

gboolean
ens_redis_command (Bridge *b, redisCallbackFn *fn, void *privdata, const char *format, ...)
{
  va_list ap;
  int rc;

  if (b->cmd.ac == NULL)
    return FALSE;
  va_start (ap, format);
  rc = redisvAsyncCommand (b->cmd.ac, fn, privdata, format, ap);
  va_end (ap);
  return rc == REDIS_OK;
}

gboolean
ens_redis_command_argv (Bridge *b, redisCallbackFn *fn, void *privdata, int argc, const char **argv)
{
  return b->cmd.ac && redisAsyncCommandArgv (b->cmd.ac, fn, privdata, argc, argv, NULL) == REDIS_OK;
}

static void
enqueue (Bridge *b, Item *it)
{
  if (ens_redis_ready (b))
    send_item (b, it);
  else
    {
      g_queue_push_tail (&b->outbox, it);
      trim_outbox (b);
    }
}

void
ens_redis_enqueue (Bridge *b, char **argv)
{
  Item *it = g_new0 (Item, 1);
  char *cmd = NULL;
  int len = redisFormatCommandArgv (&cmd, (int) g_strv_length (argv), (const char **) argv, NULL);

  g_strlcpy (it->name, argv[0], sizeof it->name);
  it->cmd = g_memdup2 (cmd, (gsize) len);
  it->len = (gsize) len;
  redisFreeCommand (cmd);
  g_strfreev (argv);
  enqueue (b, it);
}
void
ens_redis_subscribe (Bridge *b, const char *channel, redisCallbackFn *fn, void *privdata)
{
  if (b->sub.ac && b->sub.ready)
    redisAsyncCommand (b->sub.ac, fn, privdata, "SUBSCRIBE %s", channel);
}

void
ens_redis_unsubscribe (Bridge *b, const char *channel)
{
  if (b->sub.ac && b->sub.ready)
    redisAsyncCommand (b->sub.ac, NULL, NULL, "UNSUBSCRIBE %s", channel);
}

char *
ens_redis_key (Bridge *b, const char *suffix)
{
  return g_strconcat (b->prefix, suffix, NULL);
}

static void on_sub_message (redisAsyncContext *ac, void *r, void *privdata);

void
ens_redis_want (Bridge *b, const char *redis_pattern, gboolean wanted)
{
  gboolean live = b->sub.ac && b->sub.ready;

  if (wanted && !g_hash_table_contains (b->interest, redis_pattern))
    {
      g_hash_table_insert (b->interest, g_strdup (redis_pattern), GINT_TO_POINTER (FALSE));
      if (live)
        redisAsyncCommand (b->sub.ac, on_sub_message, b, "PSUBSCRIBE %s", redis_pattern);
    }
  else if (!wanted && g_hash_table_remove (b->interest, redis_pattern) && live)
    redisAsyncCommand (b->sub.ac, NULL, NULL, "PUNSUBSCRIBE %s", redis_pattern);
}

/* A local subscriber wants a topic or pattern: so do we, on Redis. */
static void
on_interest (const char *pattern, gboolean wanted, gpointer user_data)
{
  Bridge *b = user_data;
  g_autofree char *redis_pattern = NULL;

  if (ens_glob_is_pattern (pattern))
    redis_pattern = g_strconcat (b->prefix_glob, pattern, NULL);
  else
    {
      g_autofree char *esc = ens_redis_glob_escape (pattern);
      redis_pattern = g_strconcat (b->prefix_glob, esc, NULL);
    }
  ens_redis_want (b, redis_pattern, wanted);
}

static void
on_tap (EnsMessage *event, gpointer user_data)
{
  Bridge *b = user_data;
  const char *data;
  Item *it;

  if (event->kind != ENS_MESSAGE_EVENT || event->topic == NULL)
    return;
  if (strcmp (event->topic, GAP_TOPIC) == 0)
    return; /* about this node's own link: news to nobody elsewhere */
  data = b->host->message_data_text (event, NULL); /* written once, or the text it came as */
  it = g_new0 (Item, 1);
  g_strlcpy (it->name, "PUBLISH", sizeof it->name);
  it->cmd = ens_redis_encode_publish (b->prefix, b->own_prefix, event, data, &it->len);
  if (b->streams)
    ens_redis_streams_event (b->streams, event, data);
  enqueue (b, it);
}

/* ---- in: Redis to local subscribers ---- */

static void
deliver_in (Bridge *b, const char *channel, const char *payload, gsize len)
{
  EnsRedisIn in;

  switch (ens_redis_decode_event (b->host, b->prefix, b->own_prefix, channel, payload, len, &in))
    {
    case ENS_REDIS_IN_DELIVER:
      b->received++;
      b->host->publish_remote (b->self, &in.event);
      break;
    case ENS_REDIS_IN_OWN:
      b->ignored_own++; /* our own event, back from Redis */
      break;
    case ENS_REDIS_IN_REJECTED:
      b->rejected++;
      break;
    case ENS_REDIS_IN_FOREIGN:
    default:
      break;
    }
  ens_redis_in_clear (&in);
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
      /* Redis confirms: events on it reach us from now on. */
      if (reply->element[1]->str && g_hash_table_contains (b->interest, reply->element[1]->str))
        g_hash_table_insert (b->interest, g_strdup (reply->element[1]->str), GINT_TO_POINTER (TRUE));
      if (!b->sub.ready)
        {
          b->sub.ready = TRUE;
          link_connected (&b->sub);
        }
    }
  else if (g_str_equal (kind, "pmessage") && reply->elements >= 4 && reply->element[2]->str
           && reply->element[3]->str)
    deliver_in (b, reply->element[2]->str, reply->element[3]->str, reply->element[3]->len);
}

/* ---- nodes ---- */

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

char *
ens_redis_glob_escape (const char *s)
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

static gboolean heartbeat_cb (gpointer data);

void
ens_redis_heartbeat (Bridge *b)
{
  if (ens_redis_ready (b))
    heartbeat_cb (b);
}

static gboolean
heartbeat_cb (gpointer data)
{
  Bridge *b = data;
  JsonObject *obj;
  g_autoptr (JsonNode) node = NULL;
  g_autofree char *text = NULL;
  g_autofree char *key = NULL;
  g_autofree char *px = NULL;
  g_autofree char *keys = NULL;

  if (b->cmd.ac == NULL || !b->cmd.ready)
    return G_SOURCE_CONTINUE;
  obj = json_object_new ();
  node = json_node_init_object (json_node_alloc (), obj);
  json_object_set_string_member (obj, "node", b->host->node_id ());
  json_object_set_int_member (obj, "started_at", b->started_at);
  json_object_set_int_member (obj, "updated_at", g_get_real_time () / 1000);
  json_object_set_member (obj, "agents", ens_redis_agents_local (b->agents));
  json_object_unref (obj);
  text = b->host->json_to_string (node);
  key = g_strconcat (b->prefix, "node:", b->host->node_id (), NULL);
  px = g_strdup_printf ("%u", b->heartbeat_ms * 3);
  redisAsyncCommand (b->cmd.ac, NULL, NULL, "SET %s %s PX %s", key, text, px);
  if (!b->listing)
    {
      keys = g_strconcat (b->prefix_glob, "node:*", NULL);
      b->listing = TRUE;
      redisAsyncCommand (b->cmd.ac, on_nodes_keys, b, "KEYS %s", keys);
    }
  ens_redis_agents_refresh (b->agents);
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

/* (transfer full) @us of real time as 2026-12-06T12:00:00.123456Z */
static char *
iso8601 (gint64 us)
{
  g_autoptr (GDateTime) second = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  g_autoptr (GDateTime) t = g_date_time_add (second, us % G_USEC_PER_SEC);

  return g_date_time_format (t, "%Y-%m-%dT%H:%M:%S.%fZ");
}

/* Back after a broken link: what other nodes published meanwhile, and
 * what Redis still held for this node when it dropped the link (a
 * subscriber that falls too far behind is dropped: client-output-buffer-
 * limit pubsub), did not arrive and never will (pub/sub delivers at most
 * once; durable topics are on Redis Streams).  Local clients learn it from
 * the event ensemble.redis.gap {since, until, down_ms, reason, node}, which
 * stays on this node. */
static void
announce_gap (Bridge *b)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_node_new_object (&obj);
  gint64 now = g_get_real_time ();
  g_autofree char *since = iso8601 (b->lost_at), *until = iso8601 (now);

  json_object_set_string_member (obj, "since", since);
  json_object_set_string_member (obj, "until", until);
  json_object_set_int_member (obj, "down_ms", (now - b->lost_at) / 1000);
  json_object_set_string_member (obj, "reason", b->lost_why ? b->lost_why : "?");
  json_object_set_string_member (obj, "node", b->host->node_id ());
  b->lost_at = 0;
  g_clear_pointer (&b->lost_why, g_free);
  b->host->publish (b->self, GAP_TOPIC, data, NULL);
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
        redisAsyncCommand (l->ac, on_sub_message, b, "PSUBSCRIBE %s", b->node_pattern);
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
  if (b->lost_at)
    announce_gap (b);
  while (!g_queue_is_empty (&b->outbox))
    send_item (b, g_queue_pop_head (&b->outbox));
  {
    GHashTableIter iter;
    gpointer pattern;
    g_hash_table_iter_init (&iter, b->interest);
    while (g_hash_table_iter_next (&iter, &pattern, NULL))
      {
        g_hash_table_iter_replace (&iter, GINT_TO_POINTER (FALSE));
        redisAsyncCommand (b->sub.ac, on_sub_message, b, "PSUBSCRIBE %s", (const char *) pattern);
      }
  }
  ens_redis_agents_connected (b->agents);
  if (b->budget)
    ens_redis_budget_connected (b->budget);
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

static void redis_stop (gpointer instance);

static gpointer
redis_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Bridge *b;
  g_autofree char *url = NULL;
  g_autofree char *esc = NULL;

  if (!ENS_STRUCT_HAS (host, EnsHost, unwatch_interest))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI,
                   "the daemon's host table lacks the bus-bridge entries (watch_interest): too old");
      return NULL;
    }
  b = g_new0 (Bridge, 1);
  url = ens_host_config_string (host, self, "redis-url", "");

  b->host = host;
  b->self = self;
  b->cmd.b = b->sub.b = b;
  b->sub.is_sub = TRUE;
  g_queue_init (&b->outbox);
  g_queue_init (&b->inflight);
  b->state = "disabled";
  b->backoff_ms = BACKOFF_MIN_MS;
  b->started_at = g_get_real_time () / 1000;
  b->prefix = ens_host_config_string (host, self, "redis-prefix", "ensemble:");
  b->outbox_max = ens_host_config_uint (host, self, "redis-outbox-max", 10000);
  b->heartbeat_ms = MAX (ens_host_config_uint (host, self, "redis-heartbeat-ms", 2000), 50);
  b->prefix_glob = ens_redis_glob_escape (b->prefix);
  esc = ens_redis_glob_escape (host->node_id ());
  b->node_pattern = g_strconcat (b->prefix_glob, "*:c*-", esc, NULL);
  b->interest = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  b->own_prefix = ens_redis_envelope_prefix (host->node_id ());

  g_strstrip (url);
  if (url[0] == '\0')
    return b; /* bridge off */
  if (!parse_url (b, url, error))
    {
      redis_stop (b);
      return NULL;
    }
  b->enabled = TRUE;
  b->streams = ens_redis_streams_new (b, error);
  if (b->streams == NULL)
    {
      redis_stop (b);
      return NULL;
    }
  b->agents = ens_redis_agents_new (b);
  if (ens_host_config_bool (host, self, "redis-shared-budget", TRUE))
    b->budget = ens_redis_budget_new (b);
  b->tap_id = host->tap (self, on_tap, b, NULL);
  b->interest_id = host->watch_interest (self, on_interest, b);
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
  if (b->interest_id)
    b->host->unwatch_interest (b->self, b->interest_id);
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
  /* Links first: their callbacks (reply NULL) still find the parts alive. */
  link_close (&b->cmd);
  link_close (&b->sub);
  g_clear_pointer (&b->agents, ens_redis_agents_free);
  g_clear_pointer (&b->budget, ens_redis_budget_free);
  g_clear_pointer (&b->streams, ens_redis_streams_free);
  if (g_queue_get_length (&b->outbox) + g_queue_get_length (&b->inflight) > 0)
    ENS_LOG (b->host, b->self, G_LOG_LEVEL_WARNING, "stopping with %u event(s) not delivered to Redis",
             g_queue_get_length (&b->outbox) + g_queue_get_length (&b->inflight));
  g_queue_clear_full (&b->outbox, item_free);
  g_queue_clear_full (&b->inflight, item_free);
  g_clear_pointer (&b->nodes, json_node_unref);
  g_free (b->last_error);
  g_free (b->lost_why);
  g_free (b->url_shown);
  g_free (b->host_name);
  g_free (b->unix_path);
  g_free (b->password);
  g_free (b->prefix);
  g_free (b->prefix_glob);
  g_free (b->node_pattern);
  g_free (b->own_prefix);
  g_hash_table_unref (b->interest);
  g_free (b);
}

static JsonNode *
redis_describe (gpointer instance)
{
  Bridge *b = instance;
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);
  JsonArray *names;

  json_object_set_string_member (obj, "state", b->state);
  json_object_set_string_member (obj, "node", b->host->node_id ());
  if (!b->enabled)
    return node;
  names = json_array_new ();
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
  json_object_set_int_member (obj, "command_errors", (gint64) b->command_errors);
  if (b->nodes)
    {
      JsonArray *arr = json_node_get_array (b->nodes);
      for (guint i = 0; i < json_array_get_length (arr); i++)
        json_array_add_string_element (
            names, ens_member_string_or (ens_array_object (arr, i), "node", ""));
      json_object_set_member (obj, "node_details", json_node_copy (b->nodes));
    }
  json_object_set_array_member (obj, "nodes", names);
  {
    /* What Redis confirmed we listen to; the others are on their way. */
    JsonArray *patterns = json_array_new ();
    g_autoptr (GList) keys = g_list_sort (g_hash_table_get_keys (b->interest), (GCompareFunc) strcmp);
    for (GList *l = keys; l; l = l->next)
      if (g_hash_table_lookup (b->interest, l->data) && g_str_equal (b->state, "connected"))
        json_array_add_string_element (patterns, l->data);
    json_object_set_array_member (obj, "patterns", patterns);
    json_object_set_int_member (obj, "patterns_pending", g_hash_table_size (b->interest) - json_array_get_length (patterns));
  }
  ens_redis_agents_describe (b->agents, obj);
  ens_redis_streams_describe (b->streams, obj);
  if (b->budget)
    ens_redis_budget_describe (b->budget, obj);
  return node;
}

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-redis", "0.1.0",
                   "Redis bridge: one bus across several daemons (pub/sub, targeted delivery, node heartbeats)",
                   ENS_PLUGIN_FLAG_LAZY_DATA, redis_init, redis_stop, redis_describe, NULL)
