/* ens-ws.c — the WebSocket protocols on a SoupServer (see ens-ws.h).
 *
 * Output: libsoup-3.2 has no buffered-amount query, so each connection keeps
 * its own queue and hands a frame to libsoup only while the socket takes
 * data (the output stream polls writable); otherwise it waits for a
 * writable wake-up.  libsoup's own queue thus stays about one frame long,
 * and ours is where the slow-consumer policy applies: at max-queue-messages
 * the oldest queued event makes room, the client is told once it has
 * caught up, and replies are never dropped.  A client that does not read
 * its replies at all is closed (1008) once twice that many wait.
 *
 * Incoming messages over ws-max-message-bytes are answered with close 1009.
 * libsoup's own per-frame limit is set to twice that: it cuts the TCP
 * connection without a close frame, so it is only the backstop for frames
 * grossly over the limit. */
#include "ens-ws.h"

#include <string.h>

#define WS_DATA_KEY "ens-ws"
#define KEEPALIVE_SECONDS 30

typedef enum {
  WS_NATIVE,
  WS_NEOLITH,
  WS_RHETOR,
} WsKind;

typedef enum {
  P_IGNORE,
  P_HEALTH_CHECK,
  P_SPAWN,
  P_EXECUTE,
  P_STATUS,
  P_STOP,
  P_DAEMON_STATUS,
  P_LIST,
  P_WRITE,
} PendingKind;

typedef struct {
  PendingKind kind;
  char *session_id;
  char *task; /* spawn_session with a task: run it once spawned */
} Pending;

typedef struct {
  GBytes *bytes;
  gboolean droppable;
} OutItem;

typedef struct _WsConn WsConn;

struct _EnsWs {
  const EnsHost *host;
  EnsPlugin *self;
  SoupServer *server;
  char *token;
  gboolean neolith;
  guint64 max_message;
  guint max_queue;
  guint status_interval_ms;
  guint status_source;
  GHashTable *conns; /* WsConn* set, owned */
  EnsMessage *probe_answer;
  gboolean probing;
  guint64 accepted, refused, messages_in, messages_out, dropped;
};

struct _WsConn {
  EnsWs *ws;
  WsKind kind;
  SoupWebsocketConnection *conn;
  GPollableOutputStream *output; /* NULL: not pollable, libsoup queues */
  GSource *writable;
  EnsClient *client;
  char *socket_id; /* Rhetor: the session */
  GQueue out;      /* OutItem* */
  guint64 dropped, dropped_total;
  GHashTable *watched; /* Neolith: session ids subscribed to */
  GHashTable *pending; /* request id -> Pending* */
  guint64 next_id;
  gboolean gone;
};

/* Encoders get no context; the host table is the same for every plugin. */
static const EnsHost *the_host;

static const EnsClientSink conn_sink;
static const EnsClientSink probe_sink;

/* ------------------------------------------------------------ JSON helpers */

static JsonNode *
object_node (JsonObject **obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  *obj = json_object_new ();
  json_node_take_object (node, *obj);
  return node;
}

static const char *
get_string (JsonObject *obj, const char *member)
{
  JsonNode *n = obj ? json_object_get_member (obj, member) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                        : NULL;
}

static JsonObject *
get_object (JsonObject *obj, const char *member)
{
  JsonNode *n = obj ? json_object_get_member (obj, member) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static gint64
get_int (JsonObject *obj, const char *member)
{
  JsonNode *n = obj ? json_object_get_member (obj, member) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_int (n) : 0;
}

static void
copy_member (JsonObject *to, const char *name, JsonObject *from, const char *member)
{
  JsonNode *n = from ? json_object_get_member (from, member) : NULL;
  if (n)
    json_object_set_member (to, name, json_node_copy (n));
}

static char *
iso_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format_iso8601 (now);
}

static GBytes *
node_bytes (JsonNode *node)
{
  char *text = the_host->json_to_string (node);
  return g_bytes_new_take (text, strlen (text));
}

/* ------------------------------------------------------------ output */

static void pump_start (WsConn *c);

static void
out_item_free (OutItem *item)
{
  g_bytes_unref (item->bytes);
  g_free (item);
}

static gboolean
conn_open (WsConn *c)
{
  return !c->gone && soup_websocket_connection_get_state (c->conn) == SOUP_WEBSOCKET_STATE_OPEN;
}

static void
conn_close (WsConn *c, gushort code, const char *reason)
{
  if (conn_open (c))
    soup_websocket_connection_close (c->conn, code, reason);
}

static gboolean
socket_writable (WsConn *c)
{
  return c->output == NULL || g_pollable_output_stream_is_writable (c->output);
}

static void
hand_to_soup (WsConn *c, GBytes *bytes)
{
  c->ws->messages_out++;
  soup_websocket_connection_send_message (c->conn, SOUP_WEBSOCKET_DATA_TEXT, bytes);
}

static void
report_dropped (WsConn *c)
{
  g_autoptr (GBytes) bytes = NULL;
  JsonObject *obj;

  if (c->kind == WS_NATIVE)
    {
      EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
      g_autoptr (JsonNode) data = object_node (&obj);
      EnsMessage *notice;
      GBytes *line;

      json_object_set_int_member (obj, "count", c->dropped);
      json_object_set_int_member (obj, "total", c->dropped_total);
      init.topic = "ensemble.dropped";
      init.from = "ensembled";
      init.to = c->ws->host->client_id (c->client);
      init.data = data;
      notice = c->ws->host->message_new (&init);
      line = c->ws->host->message_encode (notice, c->ws->host->encode_native);
      bytes = g_bytes_new_from_bytes (line, 0, g_bytes_get_size (line) - 1);
      c->ws->host->message_unref (notice);
    }
  else
    {
      g_autoptr (JsonNode) node = object_node (&obj);
      JsonObject *payload = json_object_new ();
      json_object_set_string_member (obj, "type", "events_dropped");
      json_object_set_int_member (payload, "count", c->dropped);
      json_object_set_int_member (payload, "total", c->dropped_total);
      json_object_set_object_member (obj, "payload", payload);
      bytes = node_bytes (node);
    }
  c->dropped = 0;
  /* Not droppable, and after everything already queued. */
  {
    OutItem *item = g_new (OutItem, 1);
    item->bytes = g_steal_pointer (&bytes);
    item->droppable = FALSE;
    g_queue_push_tail (&c->out, item);
  }
}

/* Hands queued frames to libsoup while the socket takes them. */
static void
pump (WsConn *c)
{
  while (c->out.length > 0 && conn_open (c) && socket_writable (c))
    {
      OutItem *item = g_queue_pop_head (&c->out);
      hand_to_soup (c, item->bytes);
      out_item_free (item);
      if (c->dropped && c->out.length <= c->ws->max_queue / 2)
        report_dropped (c);
    }
  if (!conn_open (c))
    g_queue_clear_full (&c->out, (GDestroyNotify) out_item_free);
  if (c->out.length > 0)
    pump_start (c);
}

static gboolean
on_writable (GObject *stream, gpointer data)
{
  WsConn *c = data;

  (void) stream;
  g_clear_pointer (&c->writable, g_source_unref);
  pump (c);
  return G_SOURCE_REMOVE;
}

static void
pump_start (WsConn *c)
{
  if (c->writable || c->output == NULL)
    return;
  c->writable = g_pollable_output_stream_create_source (c->output, NULL);
  g_source_set_callback (c->writable, (GSourceFunc) (void (*) (void)) on_writable, c, NULL);
  g_source_set_static_name (c->writable, "ensemble websocket output");
  g_source_attach (c->writable, NULL);
}

static void
conn_send (WsConn *c, GBytes *bytes, gboolean droppable)
{
  if (!conn_open (c))
    return;
  if (c->out.length == 0 && socket_writable (c))
    {
      hand_to_soup (c, bytes);
      return;
    }
  if (c->out.length >= c->ws->max_queue)
    {
      if (droppable)
        {
          GList *l;
          for (l = c->out.head; l; l = l->next)
            if (((OutItem *) l->data)->droppable)
              break;
          c->dropped++;
          c->dropped_total++;
          c->ws->dropped++;
          if (l == NULL)
            return; /* only replies queued: the new event goes */
          out_item_free (l->data);
          g_queue_delete_link (&c->out, l);
        }
      else if (c->out.length >= 2 * c->ws->max_queue)
        {
          /* It does not read its replies: stop serving it. */
          g_queue_clear_full (&c->out, (GDestroyNotify) out_item_free);
          conn_close (c, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "outbound queue full: the client does not read");
          return;
        }
    }
  {
    OutItem *item = g_new (OutItem, 1);
    item->bytes = g_bytes_ref (bytes);
    item->droppable = droppable;
    g_queue_push_tail (&c->out, item);
  }
  pump_start (c);
}

static void
conn_send_node (WsConn *c, JsonNode *node, gboolean droppable)
{
  g_autoptr (GBytes) bytes = node_bytes (node);
  conn_send (c, bytes, droppable);
}

/* {type:"error", error, code?, sessionId?} */
static void
send_error (WsConn *c, const char *code, const char *message, const char *session_id, const char *request_type)
{
  JsonObject *obj;
  g_autoptr (JsonNode) node = object_node (&obj);

  json_object_set_string_member (obj, "type", "error");
  json_object_set_string_member (obj, "error", message);
  if (code)
    json_object_set_string_member (obj, "code", code);
  if (session_id)
    json_object_set_string_member (obj, "sessionId", session_id);
  if (request_type)
    json_object_set_string_member (obj, "requestType", request_type);
  conn_send_node (c, node, FALSE);
}

/* ------------------------------------------------------------ the core */

static void
pending_free (Pending *p)
{
  g_free (p->session_id);
  g_free (p->task);
  g_free (p);
}

static Pending *
pending_new (PendingKind kind, const char *session_id)
{
  Pending *p = g_new0 (Pending, 1);
  p->kind = kind;
  p->session_id = g_strdup (session_id);
  return p;
}

/* Submits a core verb as this connection's client; @p (transfer full) says
 * what to do with the answer, which may come before this returns. */
static void
conn_core (WsConn *c, const char *action, JsonNode *data, Pending *p)
{
  const EnsHost *host = c->ws->host;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  char id[32];
  EnsMessage *msg;

  g_snprintf (id, sizeof id, "ws%" G_GUINT64_FORMAT, ++c->next_id);
  g_hash_table_insert (c->pending, g_strdup (id), p);
  init.id = id;
  init.action = action;
  init.data = data;
  msg = host->message_new (&init);
  host->client_submit (c->client, msg);
  host->message_unref (msg);
}

static JsonNode *
session_params (const char *session_id, const char *task)
{
  JsonObject *obj;
  JsonNode *node = object_node (&obj);

  json_object_set_string_member (obj, "session_id", session_id);
  if (task)
    json_object_set_string_member (obj, "task", task);
  return node;
}

/* Subscribes the connection to session.<id>.* once. */
static void
watch_session (WsConn *c, const char *session_id)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;
  JsonArray *topics;

  if (g_hash_table_contains (c->watched, session_id))
    return;
  g_hash_table_add (c->watched, g_strdup (session_id));
  data = object_node (&obj);
  topics = json_array_new ();
  {
    g_autofree char *topic = g_strdup_printf ("session.%s.*", session_id);
    json_array_add_string_element (topics, topic);
  }
  json_object_set_array_member (obj, "topics", topics);
  conn_core (c, "subscribe", data, pending_new (P_IGNORE, NULL));
}

/* ------------------------------------------------------------ Neolith */

/* The daemon's health as Neolith's daemon status. */
static JsonNode *
daemon_status_payload (JsonObject *health)
{
  JsonObject *obj, *metrics = json_object_new (), *subsystems = json_object_new ();
  JsonNode *node = object_node (&obj);
  JsonObject *completions = get_object (health, "completions");
  JsonObject *counters = get_object (health, "counters");
  JsonNode *plugins = health ? json_object_get_member (health, "plugins") : NULL;
  g_autofree char *now = iso_now ();

  copy_member (obj, "status", health, "status");
  copy_member (obj, "uptime", health, "uptime_s");
  json_object_set_int_member (obj, "activeSessions", get_int (health, "active_sessions"));
  json_object_set_int_member (obj, "queuedTasks", get_int (completions, "queued"));
  json_object_set_int_member (metrics, "totalSessions", get_int (health, "sessions"));
  json_object_set_int_member (metrics, "connections", get_int (health, "connections"));
  json_object_set_int_member (metrics, "agents", get_int (health, "agents"));
  json_object_set_int_member (metrics, "pendingRequests", get_int (health, "pending_requests"));
  json_object_set_int_member (metrics, "requests", get_int (counters, "requests"));
  json_object_set_int_member (metrics, "errors", get_int (counters, "errors"));
  json_object_set_int_member (metrics, "eventsPublished", get_int (counters, "events_published"));
  json_object_set_int_member (metrics, "eventsDelivered", get_int (counters, "events_delivered"));
  json_object_set_int_member (metrics, "tasksRunning", get_int (completions, "running"));
  json_object_set_int_member (metrics, "tasksCompleted", get_int (completions, "completed"));
  json_object_set_int_member (metrics, "tasksFailed", get_int (completions, "failed"));
  copy_member (metrics, "budget", health, "llm_router");
  json_object_set_object_member (obj, "metrics", metrics);
  if (plugins && JSON_NODE_HOLDS_ARRAY (plugins))
    {
      JsonArray *array = json_node_get_array (plugins);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonObject *p = json_array_get_object_element (array, i);
          JsonObject *sub = json_object_new ();
          const char *id = get_string (p, "id");
          if (id == NULL)
            {
              json_object_unref (sub);
              continue;
            }
          json_object_set_string_member (sub, "status", "running");
          copy_member (sub, "kind", p, "kind");
          copy_member (sub, "version", p, "version");
          json_object_set_object_member (subsystems, id, sub);
        }
    }
  json_object_set_object_member (obj, "subsystems", subsystems);
  copy_member (obj, "version", health, "version");
  json_object_set_string_member (obj, "timestamp", now);
  return node;
}

static JsonNode *
typed_message (const char *type, JsonNode *payload)
{
  JsonObject *obj;
  JsonNode *node = object_node (&obj);

  json_object_set_string_member (obj, "type", type);
  json_object_set_member (obj, "payload", payload);
  return node;
}

static void
send_health_check (WsConn *c, JsonObject *health)
{
  JsonObject *p;
  JsonNode *payload = object_node (&p);
  g_autofree char *now = iso_now ();
  g_autoptr (JsonNode) node = NULL;
  const char *status = get_string (health, "status");

  json_object_set_string_member (p, "status", status ? status : "healthy");
  json_object_set_boolean_member (p, "healthy", g_strcmp0 (status, "healthy") == 0);
  json_object_set_string_member (p, "timestamp", now);
  copy_member (p, "uptime", health, "uptime_s");
  copy_member (p, "version", health, "version");
  copy_member (p, "nodeId", health, "node_id");
  json_object_set_int_member (p, "activeSessions", get_int (health, "active_sessions"));
  node = typed_message ("health_check_response", payload);
  /* The orchestrator-daemon's own shape has it at the top level too. */
  json_object_set_boolean_member (json_node_get_object (node), "healthy", g_strcmp0 (status, "healthy") == 0);
  conn_send_node (c, node, FALSE);
}

/* {type, sessionId, payload:{sessionId, status, session}} */
static void
send_session_message (WsConn *c, const char *type, JsonObject *record, const char *status)
{
  JsonObject *p;
  JsonNode *payload = object_node (&p);
  g_autoptr (JsonNode) node = NULL;
  const char *sid = get_string (record, "session_id");

  json_object_set_string_member (p, "sessionId", sid ? sid : "");
  json_object_set_string_member (p, "status", status ? status : get_string (record, "status"));
  if (record)
    {
      JsonObject *copy = json_object_new ();
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init (&iter, record);
      while (json_object_iter_next (&iter, &name, &member))
        json_object_set_member (copy, name, json_node_copy (member));
      json_object_set_object_member (p, "session", copy);
    }
  node = typed_message (type, payload);
  json_object_set_string_member (json_node_get_object (node), "sessionId", sid ? sid : "");
  json_object_set_string_member (json_node_get_object (node), "status", json_object_get_string_member (p, "status"));
  conn_send_node (c, node, FALSE);
}

static void
neolith_answer (WsConn *c, Pending *p, EnsMessage *answer)
{
  JsonObject *data = answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data)
                                                                         : NULL;
  static const char *const request_types[] = {
    [P_IGNORE] = NULL,          [P_HEALTH_CHECK] = "health_check", [P_SPAWN] = "spawn_session",
    [P_EXECUTE] = "execute_task", [P_STATUS] = "session_status",    [P_STOP] = "stop_session",
    [P_DAEMON_STATUS] = "daemon_status", [P_LIST] = "list_sessions", [P_WRITE] = "write",
  };

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      if (p->kind != P_IGNORE)
        send_error (c, answer->error_code, answer->error_message ? answer->error_message : answer->error_code,
                    p->session_id, request_types[p->kind]);
      return;
    }
  switch (p->kind)
    {
    case P_HEALTH_CHECK:
      send_health_check (c, data);
      break;
    case P_SPAWN:
      {
        const char *sid = get_string (data, "session_id");
        send_session_message (c, "session_spawned", data, NULL);
        if (sid)
          {
            watch_session (c, sid);
            if (p->task)
              {
                g_autoptr (JsonNode) params = session_params (sid, p->task);
                conn_core (c, "sessions.execute", params, pending_new (P_EXECUTE, sid));
              }
          }
      }
      break;
    case P_STATUS:
      send_session_message (c, "session_status_update", data, NULL);
      break;
    case P_STOP:
      send_session_message (c, "session_status_update", data, "stopped");
      break;
    case P_DAEMON_STATUS:
      {
        g_autoptr (JsonNode) node = typed_message ("daemon_status_update", daemon_status_payload (data));
        conn_send_node (c, node, FALSE);
      }
      break;
    case P_LIST:
      {
        JsonObject *pl;
        JsonNode *payload = object_node (&pl);
        g_autoptr (JsonNode) node = NULL;
        copy_member (pl, "sessions", data, "sessions");
        copy_member (pl, "total", data, "total");
        node = typed_message ("sessions_list", payload);
        copy_member (json_node_get_object (node), "sessions", data, "sessions");
        conn_send_node (c, node, FALSE);
      }
      break;
    case P_EXECUTE: /* progress comes as session events */
    case P_WRITE:
    case P_IGNORE:
    default:
      break;
    }
}

/* A session event {type, sessionId, taskId, ...} as Neolith expects it: the
 * fields at the top level (the orchestrator-daemon's shape), and again under
 * payload and data.  Encoded once per event for every Neolith watcher. */
static GBytes *
neolith_encode (EnsMessage *msg)
{
  JsonObject *obj, *inner;
  g_autoptr (JsonNode) node = object_node (&obj);
  JsonObject *ev = msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
  JsonNode *inner_node = object_node (&inner);
  const char *type = get_string (ev, "type");

  json_object_set_string_member (obj, "type", type ? type : "event");
  if (ev)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init (&iter, ev);
      while (json_object_iter_next (&iter, &name, &member))
        if (strcmp (name, "type") != 0)
          {
            json_object_set_member (obj, name, json_node_copy (member));
            json_object_set_member (inner, name, json_node_copy (member));
          }
    }
  else
    {
      json_object_set_string_member (obj, "topic", msg->topic ? msg->topic : "");
      if (msg->data)
        json_object_set_member (inner, "data", json_node_copy (msg->data));
    }
  json_object_set_member (obj, "data", json_node_copy (inner_node));
  json_object_set_member (obj, "payload", inner_node);
  return node_bytes (node);
}

/* A task: a string, or Neolith's Task object (its description). */
static char *
task_text (JsonObject *payload)
{
  JsonNode *n = payload ? json_object_get_member (payload, "task") : NULL;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (n));
  if (JSON_NODE_HOLDS_OBJECT (n))
    {
      const char *d = get_string (json_node_get_object (n), "description");
      if (d == NULL)
        d = get_string (json_node_get_object (n), "prompt");
      return d ? g_strdup (d) : the_host->json_to_string (n);
    }
  return (char *) -1; /* wrong type */
}

static void
neolith_message (WsConn *c, const char *text, gsize len)
{
  const EnsHost *host = c->ws->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (text, len, &error);
  JsonObject *obj, *payload;
  const char *type, *sid;

  if (root == NULL)
    {
      g_autofree char *message = g_strdup_printf ("malformed JSON: %s", error->message);
      send_error (c, ENS_ERR_INVALID_JSON, message, NULL, NULL);
      return;
    }
  obj = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  type = get_string (obj, "type");
  if (type == NULL)
    {
      send_error (c, ENS_ERR_INVALID_REQUEST, "a message is a JSON object {type, payload}", NULL, NULL);
      return;
    }
  payload = get_object (obj, "payload");
  if (payload == NULL)
    payload = obj; /* tolerate the fields at the top level */
  sid = get_string (payload, "sessionId");
  if (sid == NULL)
    sid = get_string (payload, "session_id");

  if (strcmp (type, "ping") == 0)
    {
      JsonObject *p;
      JsonNode *pl = object_node (&p);
      g_autofree char *now = iso_now ();
      g_autoptr (JsonNode) node = NULL;
      json_object_set_string_member (p, "timestamp", now);
      node = typed_message ("pong", pl);
      conn_send_node (c, node, FALSE);
    }
  else if (strcmp (type, "health_check") == 0)
    conn_core (c, "health", NULL, pending_new (P_HEALTH_CHECK, NULL));
  else if (strcmp (type, "daemon_status") == 0)
    conn_core (c, "health", NULL, pending_new (P_DAEMON_STATUS, NULL));
  else if (strcmp (type, "list_sessions") == 0)
    conn_core (c, "sessions.list", NULL, pending_new (P_LIST, NULL));
  else if (strcmp (type, "spawn_session") == 0)
    {
      static const char *const fields[][2] = {
        { "orchestratorId", "orchestrator_id" }, { "orchestrator_id", "orchestrator_id" },
        { "sessionType", "session_type" },       { "session_type", "session_type" },
        { "model", "model" },                    { "provider", "provider" },
        { "system", "system" },
      };
      JsonObject *params;
      g_autoptr (JsonNode) data = object_node (&params);
      g_autofree char *task = task_text (payload);
      Pending *p;

      if (task == (char *) -1)
        {
          g_steal_pointer (&task);
          send_error (c, ENS_ERR_INVALID_PARAMETERS, "task must be a string or a task object", NULL, type);
          return;
        }
      for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
        {
          JsonNode *n = json_object_get_member (payload, fields[i][0]);
          if (n && !JSON_NODE_HOLDS_NULL (n))
            json_object_set_member (params, fields[i][1], json_node_copy (n));
        }
      /* The task runs once this connection watches the new session. */
      p = pending_new (P_SPAWN, NULL);
      p->task = g_steal_pointer (&task);
      conn_core (c, "sessions.spawn", data, p);
    }
  else if (strcmp (type, "execute_task") == 0 || strcmp (type, "session_status") == 0 ||
           strcmp (type, "stop_session") == 0)
    {
      g_autoptr (JsonNode) data = NULL;

      if (sid == NULL || sid[0] == '\0')
        {
          send_error (c, ENS_ERR_INVALID_PARAMETERS, "payload.sessionId (a string) is required", NULL, type);
          return;
        }
      if (strcmp (type, "execute_task") == 0)
        {
          g_autofree char *task = task_text (payload);
          if (task == NULL || task == (char *) -1 || task[0] == '\0')
            {
              if (task == (char *) -1)
                g_steal_pointer (&task);
              send_error (c, ENS_ERR_INVALID_PARAMETERS, "payload.task (a non-empty string) is required", sid, type);
              return;
            }
          /* Watch first: task_executing is published while the verb runs. */
          watch_session (c, sid);
          data = session_params (sid, task);
          conn_core (c, "sessions.execute", data, pending_new (P_EXECUTE, sid));
        }
      else
        {
          data = session_params (sid, NULL);
          conn_core (c, strcmp (type, "stop_session") == 0 ? "sessions.stop" : "sessions.status", data,
                     pending_new (strcmp (type, "stop_session") == 0 ? P_STOP : P_STATUS, sid));
        }
    }
  else
    {
      g_autofree char *message = g_strdup_printf ("unknown message type '%s'", type);
      send_error (c, ENS_ERR_UNKNOWN_ACTION, message, sid, type);
    }
}

/* ------------------------------------------------------------ Rhetor */

static void
rhetor_message (WsConn *c, const char *text, gsize len)
{
  const EnsHost *host = c->ws->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (text, len, &error);
  JsonObject *obj;
  const char *type, *content;

  if (root == NULL)
    {
      g_autofree char *message = g_strdup_printf ("malformed JSON: %s", error->message);
      send_error (c, ENS_ERR_INVALID_JSON, message, c->socket_id, NULL);
      return;
    }
  obj = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  type = get_string (obj, "type");
  if (g_strcmp0 (type, "ping") == 0)
    {
      g_autoptr (JsonNode) node = typed_message ("pong", json_node_init_object (json_node_alloc (), json_object_new ()));
      conn_send_node (c, node, FALSE);
      return;
    }
  if (g_strcmp0 (type, "write") != 0)
    {
      send_error (c, ENS_ERR_INVALID_REQUEST, "a message is {\"type\":\"write\",\"content\":TEXT}", c->socket_id,
                  type);
      return;
    }
  content = get_string (obj, "content");
  if (content == NULL || content[0] == '\0')
    {
      send_error (c, ENS_ERR_INVALID_PARAMETERS, "content (a non-empty string) is required", c->socket_id, type);
      return;
    }
  {
    g_autoptr (JsonNode) data = session_params (c->socket_id, content);
    conn_core (c, "sessions.execute", data, pending_new (P_WRITE, c->socket_id));
  }
}

static void
rhetor_event (WsConn *c, EnsMessage *msg)
{
  JsonObject *ev = msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
  const char *type = get_string (ev, "type");
  JsonObject *obj;
  g_autoptr (JsonNode) node = NULL;

  if (g_strcmp0 (type, "task_completed") == 0)
    {
      JsonObject *result = get_object (ev, "result");
      const char *response = get_string (result, "response");
      JsonArray *headers = json_array_new ();
      const char *fields[][2] = { { "Model", get_string (result, "model") },
                                  { "Provider", get_string (result, "provider") },
                                  { "Session-Id", get_string (ev, "sessionId") },
                                  { "Task-Id", get_string (ev, "taskId") } };

      node = object_node (&obj);
      json_object_set_string_member (obj, "type", "read");
      json_object_set_string_member (obj, "content", response ? response : "");
      for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
        if (fields[i][1])
          {
            g_autofree char *h = g_strdup_printf ("%s: %s", fields[i][0], fields[i][1]);
            json_array_add_string_element (headers, h);
          }
      json_object_set_array_member (obj, "headers", headers);
      conn_send_node (c, node, FALSE);
    }
  else if (g_strcmp0 (type, "task_failed") == 0)
    {
      const char *err = get_string (ev, "error");
      node = object_node (&obj);
      json_object_set_string_member (obj, "type", "error");
      json_object_set_string_member (obj, "error", err ? err : "the task failed");
      copy_member (obj, "code", ev, "code");
      json_object_set_string_member (obj, "content", err ? err : "the task failed");
      json_object_set_string_member (obj, "sessionId", c->socket_id);
      conn_send_node (c, node, FALSE);
    }
}

/* ------------------------------------------------------------ the sink */

static void
sink_deliver (gpointer sink_data, EnsMessage *msg)
{
  WsConn *c = sink_data;
  const EnsHost *host = c->ws->host;

  if (c->kind == WS_NATIVE)
    {
      GBytes *line = host->message_encode (msg, host->encode_native);
      g_autoptr (GBytes) frame = g_bytes_new_from_bytes (line, 0, g_bytes_get_size (line) - 1); /* minus '\n' */
      conn_send (c, frame, msg->kind == ENS_MESSAGE_EVENT);
      return;
    }
  if (msg->kind == ENS_MESSAGE_REPLY || msg->kind == ENS_MESSAGE_ERROR)
    {
      Pending *p = msg->id ? g_hash_table_lookup (c->pending, msg->id) : NULL;
      if (p == NULL)
        {
          if (msg->kind == ENS_MESSAGE_ERROR)
            send_error (c, msg->error_code, msg->error_message ? msg->error_message : msg->error_code, NULL, NULL);
          return;
        }
      {
        gpointer key = NULL;
        g_hash_table_steal_extended (c->pending, msg->id, &key, NULL);
        g_free (key);
      }
      neolith_answer (c, p, msg);
      pending_free (p);
      return;
    }
  if (msg->kind != ENS_MESSAGE_EVENT || msg->topic == NULL || !g_str_has_prefix (msg->topic, "session."))
    return;
  if (c->kind == WS_NEOLITH)
    conn_send (c, host->message_encode (msg, neolith_encode), TRUE);
  else
    rhetor_event (c, msg);
}

static void
sink_disconnect (gpointer sink_data, const char *reason)
{
  WsConn *c = sink_data;
  conn_close (c, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, reason ? reason : "daemon shutting down");
}

static const EnsClientSink conn_sink = {
  .struct_size = sizeof (EnsClientSink),
  .deliver = sink_deliver,
  .disconnect = sink_disconnect,
};

static void
probe_deliver (gpointer sink_data, EnsMessage *msg)
{
  EnsWs *ws = sink_data;
  if (ws->probing && ws->probe_answer == NULL && msg->kind != ENS_MESSAGE_EVENT)
    ws->probe_answer = ws->host->message_ref (msg);
}

static void
probe_disconnect (gpointer sink_data, const char *reason)
{
  (void) sink_data;
  (void) reason;
}

static const EnsClientSink probe_sink = {
  .struct_size = sizeof (EnsClientSink),
  .deliver = probe_deliver,
  .disconnect = probe_disconnect,
};

/* Asks the core on a client of its own, made for the question (a standing
 * one would show in every connection count).  Core verbs answer before
 * client_submit returns; (transfer full) the answer, or NULL if it did not. */
static EnsMessage *
probe (EnsWs *ws, const char *action, JsonNode *data)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  EnsClient *client = ws->host->client_new (ws->self, &probe_sink, ws, 0, "ws:internal");
  EnsMessage *msg, *answer;

  init.id = "probe";
  init.action = action;
  init.data = data;
  msg = ws->host->message_new (&init);
  ws->probing = TRUE;
  ws->host->client_submit (client, msg);
  ws->probing = FALSE;
  ws->host->client_close (client);
  ws->host->message_unref (msg);
  answer = ws->probe_answer;
  ws->probe_answer = NULL;
  return answer;
}

/* ------------------------------------------------------------ connections */

static void
conn_free (WsConn *c)
{
  c->gone = TRUE;
  if (c->client)
    c->ws->host->client_close (c->client); /* cancels what it started; no deliver() follows */
  if (c->writable)
    {
      g_source_destroy (c->writable);
      g_source_unref (c->writable);
    }
  g_signal_handlers_disconnect_by_data (c->conn, c);
  if (soup_websocket_connection_get_state (c->conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (c->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "daemon shutting down");
  g_object_unref (c->conn);
  g_queue_clear_full (&c->out, (GDestroyNotify) out_item_free);
  g_hash_table_unref (c->watched);
  g_hash_table_unref (c->pending);
  g_free (c->socket_id);
  g_free (c);
}

static void
on_closed (SoupWebsocketConnection *conn, WsConn *c)
{
  (void) conn;
  g_hash_table_remove (c->ws->conns, c); /* frees */
}

static void
on_message (SoupWebsocketConnection *conn, gint type, GBytes *message, WsConn *c)
{
  gsize len;
  const char *text = g_bytes_get_data (message, &len);

  (void) conn;
  if (!conn_open (c))
    return;
  c->ws->messages_in++;
  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    {
      conn_close (c, SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA, "binary frames are not supported: send JSON text");
      return;
    }
  if (len > c->ws->max_message)
    {
      conn_close (c, SOUP_WEBSOCKET_CLOSE_TOO_BIG, "message over ws-max-message-bytes");
      return;
    }
  if (text == NULL)
    text = "";
  switch (c->kind)
    {
    case WS_NATIVE:
      {
        const EnsHost *host = c->ws->host;
        EnsMessage *msg = host->parse_native (text, len);
        host->client_submit (c->client, msg);
        host->message_unref (msg);
      }
      break;
    case WS_NEOLITH:
      neolith_message (c, text, len);
      break;
    case WS_RHETOR:
      rhetor_message (c, text, len);
      break;
    default:
      break;
    }
}

static char *
peer_name (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  if (remote && G_IS_INET_SOCKET_ADDRESS (remote))
    {
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
      return g_strdup_printf ("ws:%s:%u", ip, g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)));
    }
  return g_strdup ("ws");
}

/* "/ws/socket/ID" -> "ID" (transfer none), NULL for other paths. */
static const char *
rhetor_socket_id (const char *path)
{
  return g_str_has_prefix (path, "/ws/socket/") ? path + strlen ("/ws/socket/") : NULL;
}

static void
on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path, SoupWebsocketConnection *conn,
              gpointer data)
{
  EnsWs *ws = data;
  WsConn *c = g_new0 (WsConn, 1);
  g_autofree char *peer = peer_name (msg);
  const char *socket_id = rhetor_socket_id (path);
  GOutputStream *os = g_io_stream_get_output_stream (soup_websocket_connection_get_io_stream (conn));

  (void) server;
  ws->accepted++;
  c->ws = ws;
  c->conn = g_object_ref (conn);
  c->kind = socket_id ? WS_RHETOR : strcmp (path, "/ws") == 0 || !ws->neolith ? WS_NATIVE : WS_NEOLITH;
  c->socket_id = g_strdup (socket_id);
  if (G_IS_POLLABLE_OUTPUT_STREAM (os) && g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (os)))
    c->output = G_POLLABLE_OUTPUT_STREAM (os);
  g_queue_init (&c->out);
  c->watched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  c->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) pending_free);
  g_hash_table_add (ws->conns, c);

  soup_websocket_connection_set_keepalive_interval (conn, KEEPALIVE_SECONDS);
  soup_websocket_connection_set_max_incoming_payload_size (conn, ws->max_message > G_MAXUINT64 / 2
                                                                    ? 0
                                                                    : ws->max_message * 2 + 1024);
  g_signal_connect (conn, "message", G_CALLBACK (on_message), c);
  g_signal_connect (conn, "closed", G_CALLBACK (on_closed), c);
  c->client = ws->host->client_new (ws->self, &conn_sink, c, ws->token ? ENS_CLIENT_FLAG_ADMIN : 0, peer);

  if (c->kind == WS_NEOLITH)
    conn_core (c, "health", NULL, pending_new (P_HEALTH_CHECK, NULL));
  else if (c->kind == WS_RHETOR)
    watch_session (c, socket_id);
}

/* ------------------------------------------------------------ the handshake */

static gboolean
token_matches (const char *want, const char *got)
{
  gsize n = strlen (want), m = got ? strlen (got) : 0;
  guint diff = 0;

  if (got == NULL)
    return FALSE;
  /* Constant time over the token: no early exit on the first difference. */
  for (gsize i = 0; i < n; i++)
    diff |= (guint) (want[i] ^ (i < m ? got[i] : 0));
  return diff == 0 && n == m;
}

static void
refuse (SoupServerMessage *msg, guint status, const char *code, const char *message)
{
  g_autofree char *body = NULL;
  g_autofree char *escaped = g_strescape (message, NULL);

  body = g_strdup_printf ("{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":{}}}", code, escaped);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

/* Runs before libsoup answers the handshake: a status set here refuses it. */
static void
on_handshake (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  EnsWs *ws = data;
  const char *socket_id = rhetor_socket_id (path);

  (void) server;
  if (ws->neolith && !g_str_has_prefix (path, "/ws") && strcmp (path, "/health") == 0 &&
      soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Upgrade") == NULL)
    {
      /* The orchestrator-daemon answers plain GET /health on its port. */
      g_autofree char *now = iso_now ();
      g_autofree char *body = g_strdup_printf ("{\"status\":\"healthy\",\"timestamp\":\"%s\"}", now);
      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
      return;
    }
  if (ws->token)
    {
      const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
      const char *given = auth && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0 ? auth + 7
                                                                                : query ? g_hash_table_lookup (query, "token")
                                                                                        : NULL;
      if (!token_matches (ws->token, given))
        {
          ws->refused++;
          soup_message_headers_replace (soup_server_message_get_response_headers (msg), "WWW-Authenticate",
                                        "Bearer realm=\"ensemble\"");
          refuse (msg, 401, "UNAUTHORIZED", "a valid bearer token is required (Authorization header or ?token=)");
          return;
        }
    }
  if (g_str_has_prefix (path, "/ws") && strcmp (path, "/ws") != 0 && strcmp (path, "/ws/") != 0 && socket_id == NULL)
    {
      ws->refused++;
      refuse (msg, 404, "NOT_FOUND", "WebSocket paths: /ws (native protocol) and /ws/socket/{socket_id}");
      return;
    }
  if (socket_id)
    {
      g_autoptr (JsonNode) params = NULL;
      EnsMessage *answer;

      if (socket_id[0] == '\0' || strchr (socket_id, '/'))
        {
          ws->refused++;
          refuse (msg, 404, "SESSION_NOT_FOUND", "no AI socket with that id (POST /api/ai/socket/create makes one)");
          return;
        }
      params = session_params (socket_id, NULL);
      answer = probe (ws, "sessions.status", params);
      if (answer && answer->kind == ENS_MESSAGE_ERROR)
        {
          ws->refused++;
          refuse (msg, 404, "SESSION_NOT_FOUND", "no AI socket with that id (POST /api/ai/socket/create makes one)");
        }
      if (answer)
        ws->host->message_unref (answer);
    }
}

/* ------------------------------------------------------------ periodic status */

static gboolean
status_tick (gpointer data)
{
  EnsWs *ws = data;
  GHashTableIter iter;
  gpointer key;
  gboolean any = FALSE;
  EnsMessage *answer;
  g_autoptr (GBytes) bytes = NULL;

  g_hash_table_iter_init (&iter, ws->conns);
  while (!any && g_hash_table_iter_next (&iter, &key, NULL))
    any = ((WsConn *) key)->kind == WS_NEOLITH;
  if (!any)
    return G_SOURCE_CONTINUE;
  answer = probe (ws, "health", NULL);
  if (answer == NULL)
    return G_SOURCE_CONTINUE;
  if (answer->kind == ENS_MESSAGE_REPLY && answer->data && JSON_NODE_HOLDS_OBJECT (answer->data))
    {
      g_autoptr (JsonNode) node = typed_message ("daemon_status_update",
                                                 daemon_status_payload (json_node_get_object (answer->data)));
      bytes = node_bytes (node);
    }
  ws->host->message_unref (answer);
  if (bytes == NULL)
    return G_SOURCE_CONTINUE;
  /* The same bytes for everyone, as an event: a slow reader may miss one. */
  g_hash_table_iter_init (&iter, ws->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (((WsConn *) key)->kind == WS_NEOLITH)
      conn_send (key, bytes, TRUE);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------ attach */

static guint
config_uint (const EnsHost *host, EnsPlugin *self, const char *key, guint fallback)
{
  g_autoptr (GVariant) v = host->config_get (self, key);
  return v && g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (v) : fallback;
}

static void
ws_free (EnsWs *ws)
{
  GHashTableIter iter;
  gpointer key;

  if (ws->status_source)
    g_source_remove (ws->status_source);
  /* Tell the peers, then let the clients go (the core cancels their work). */
  g_hash_table_iter_init (&iter, ws->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    conn_close (key, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "daemon shutting down");
  g_hash_table_unref (ws->conns);
  g_free (ws->token);
  g_free (ws);
}

EnsWs *
ens_ws_attach_full (SoupServer *server, const EnsHost *host, EnsPlugin *self, const char *token, gboolean neolith)
{
  EnsWs *ws = g_new0 (EnsWs, 1);

  the_host = host;
  ws->host = host;
  ws->self = self;
  ws->server = server;
  ws->token = token && token[0] ? g_strdup (token) : NULL;
  ws->neolith = neolith;
  ws->max_message = config_uint (host, self, "ws-max-message-bytes", 1048576);
  ws->max_queue = MAX (config_uint (host, self, "max-queue-messages", 4096), 2);
  ws->status_interval_ms = config_uint (host, self, "ws-status-interval-ms", 30000);
  ws->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) conn_free, NULL);
  g_object_set_data_full (G_OBJECT (server), WS_DATA_KEY, ws, (GDestroyNotify) ws_free);

  /* Compression costs more CPU per frame than JSON events save on loopback. */
  soup_server_remove_websocket_extension (server, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  soup_server_add_handler (server, "/ws", on_handshake, ws, NULL);
  soup_server_add_websocket_handler (server, "/ws", NULL, NULL, on_websocket, ws, NULL);
  if (neolith)
    {
      soup_server_add_handler (server, NULL, on_handshake, ws, NULL);
      soup_server_add_websocket_handler (server, NULL, NULL, NULL, on_websocket, ws, NULL);
      if (ws->status_interval_ms > 0)
        ws->status_source = g_timeout_add (ws->status_interval_ms, status_tick, ws);
    }
  return ws;
}

void
ens_ws_attach (SoupServer *server, const EnsHost *host, EnsPlugin *self, const char *token)
{
  ens_ws_attach_full (server, host, self, token, FALSE);
}

void
ens_ws_detach (SoupServer *server)
{
  EnsWs *ws = g_object_get_data (G_OBJECT (server), WS_DATA_KEY);

  if (ws == NULL)
    return;
  soup_server_remove_handler (server, "/ws");
  if (ws->neolith)
    soup_server_remove_handler (server, NULL);
  g_object_set_data (G_OBJECT (server), WS_DATA_KEY, NULL); /* ws_free */
}

JsonNode *
ens_ws_describe (EnsWs *ws)
{
  JsonObject *obj;
  JsonNode *node = object_node (&obj);

  json_object_set_int_member (obj, "connections", g_hash_table_size (ws->conns));
  json_object_set_int_member (obj, "accepted", ws->accepted);
  json_object_set_int_member (obj, "refused", ws->refused);
  json_object_set_int_member (obj, "messages_in", ws->messages_in);
  json_object_set_int_member (obj, "messages_out", ws->messages_out);
  json_object_set_int_member (obj, "events_dropped", ws->dropped);
  json_object_set_int_member (obj, "max_message_bytes", ws->max_message);
  return node;
}
