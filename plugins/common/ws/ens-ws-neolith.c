/* ens-ws-neolith.c — the Neolith orchestrator-daemon protocol on the
 * WebSocket port: {type, payload} messages (spawn_session, execute_task,
 * session_status, stop_session, daemon_status, list_sessions, ping,
 * health_check) mapped onto core verbs, session events as Neolith's frames,
 * and the periodic daemon_status_update. */
#include "ens-ws-private.h"

#include <string.h>

/* The daemon's health as Neolith's daemon status. */
static JsonNode *
daemon_status_payload (JsonObject *health)
{
  JsonObject *obj, *metrics = json_object_new (), *subsystems = json_object_new ();
  JsonNode *node = ens_node_new_object (&obj);
  JsonObject *completions = ens_member_object (health, "completions");
  JsonObject *counters = ens_member_object (health, "counters");
  JsonNode *plugins = health ? json_object_get_member (health, "plugins") : NULL;
  g_autofree char *now = ens_ws_iso_now ();

  ens_member_copy (obj, "status", health, "status");
  ens_member_copy (obj, "uptime", health, "uptime_s");
  json_object_set_int_member (obj, "activeSessions", ens_member_int (health, "active_sessions", 0));
  json_object_set_int_member (obj, "queuedTasks", ens_member_int (completions, "queued", 0));
  json_object_set_int_member (metrics, "totalSessions", ens_member_int (health, "sessions", 0));
  json_object_set_int_member (metrics, "connections", ens_member_int (health, "connections", 0));
  json_object_set_int_member (metrics, "agents", ens_member_int (health, "agents", 0));
  json_object_set_int_member (metrics, "pendingRequests", ens_member_int (health, "pending_requests", 0));
  json_object_set_int_member (metrics, "requests", ens_member_int (counters, "requests", 0));
  json_object_set_int_member (metrics, "errors", ens_member_int (counters, "errors", 0));
  json_object_set_int_member (metrics, "eventsPublished", ens_member_int (counters, "events_published", 0));
  json_object_set_int_member (metrics, "eventsDelivered", ens_member_int (counters, "events_delivered", 0));
  json_object_set_int_member (metrics, "tasksRunning", ens_member_int (completions, "running", 0));
  json_object_set_int_member (metrics, "tasksCompleted", ens_member_int (completions, "completed", 0));
  json_object_set_int_member (metrics, "tasksFailed", ens_member_int (completions, "failed", 0));
  ens_member_copy (metrics, "budget", health, "llm_router");
  json_object_set_object_member (obj, "metrics", metrics);
  if (plugins && JSON_NODE_HOLDS_ARRAY (plugins))
    {
      JsonArray *array = json_node_get_array (plugins);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonObject *p = ens_array_object (array, i);
          JsonObject *sub = json_object_new ();
          const char *id = ens_member_string (p, "id");
          if (id == NULL)
            {
              json_object_unref (sub);
              continue;
            }
          json_object_set_string_member (sub, "status", "running");
          ens_member_copy (sub, "kind", p, "kind");
          ens_member_copy (sub, "version", p, "version");
          json_object_set_object_member (subsystems, id, sub);
        }
    }
  json_object_set_object_member (obj, "subsystems", subsystems);
  ens_member_copy (obj, "version", health, "version");
  json_object_set_string_member (obj, "timestamp", now);
  return node;
}

static void
send_health_check (EnsWsConn *c, JsonObject *health)
{
  JsonObject *p;
  JsonNode *payload = ens_node_new_object (&p);
  g_autofree char *now = ens_ws_iso_now ();
  g_autoptr (JsonNode) node = NULL;
  const char *status = ens_member_string (health, "status");

  json_object_set_string_member (p, "status", status ? status : "healthy");
  json_object_set_boolean_member (p, "healthy", g_strcmp0 (status, "healthy") == 0);
  json_object_set_string_member (p, "timestamp", now);
  ens_member_copy (p, "uptime", health, "uptime_s");
  ens_member_copy (p, "version", health, "version");
  ens_member_copy (p, "nodeId", health, "node_id");
  json_object_set_int_member (p, "activeSessions", ens_member_int (health, "active_sessions", 0));
  node = ens_ws_typed_message ("health_check_response", payload);
  /* The orchestrator-daemon's own shape has it at the top level too. */
  json_object_set_boolean_member (json_node_get_object (node), "healthy", g_strcmp0 (status, "healthy") == 0);
  ens_ws_send_node (c, node);
}

/* {type, sessionId, payload:{sessionId, status, session}} */
static void
send_session_message (EnsWsConn *c, const char *type, JsonObject *record, const char *status)
{
  JsonObject *p;
  JsonNode *payload = ens_node_new_object (&p);
  g_autoptr (JsonNode) node = NULL;
  const char *sid = ens_member_string (record, "session_id");

  json_object_set_string_member (p, "sessionId", sid ? sid : "");
  json_object_set_string_member (p, "status", status ? status : ens_member_string (record, "status"));
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
  node = ens_ws_typed_message (type, payload);
  json_object_set_string_member (json_node_get_object (node), "sessionId", sid ? sid : "");
  json_object_set_string_member (json_node_get_object (node), "status", ens_member_string (p, "status"));
  ens_ws_send_node (c, node);
}

void
ens_ws_neolith_answer (EnsWsConn *c, EnsWsPending *p, EnsMessage *answer)
{
  JsonObject *data = answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data)
                                                                         : NULL;
  static const char *const request_types[] = {
    [ENS_WS_PENDING_IGNORE] = NULL,          [ENS_WS_PENDING_HEALTH_CHECK] = "health_check", [ENS_WS_PENDING_SPAWN] = "spawn_session",
    [ENS_WS_PENDING_EXECUTE] = "execute_task", [ENS_WS_PENDING_STATUS] = "session_status",    [ENS_WS_PENDING_STOP] = "stop_session",
    [ENS_WS_PENDING_DAEMON_STATUS] = "daemon_status", [ENS_WS_PENDING_LIST] = "list_sessions", [ENS_WS_PENDING_WRITE] = "write",
  };

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      if (p->kind != ENS_WS_PENDING_IGNORE)
        ens_ws_send_error (c, answer->error_code, answer->error_message ? answer->error_message : answer->error_code,
                    p->session_id, request_types[p->kind]);
      return;
    }
  switch (p->kind)
    {
    case ENS_WS_PENDING_HEALTH_CHECK:
      send_health_check (c, data);
      break;
    case ENS_WS_PENDING_SPAWN:
      {
        const char *sid = ens_member_string (data, "session_id");
        send_session_message (c, "session_spawned", data, NULL);
        if (sid)
          {
            ens_ws_watch_session (c, sid);
            if (p->task)
              {
                g_autoptr (JsonNode) params = ens_ws_session_params (sid, p->task);
                ens_ws_core (c, "sessions.execute", params, ens_ws_pending_new (ENS_WS_PENDING_EXECUTE, sid));
              }
          }
      }
      break;
    case ENS_WS_PENDING_STATUS:
      send_session_message (c, "session_status_update", data, NULL);
      break;
    case ENS_WS_PENDING_STOP:
      send_session_message (c, "session_status_update", data, "stopped");
      break;
    case ENS_WS_PENDING_DAEMON_STATUS:
      {
        g_autoptr (JsonNode) node = ens_ws_typed_message ("daemon_status_update", daemon_status_payload (data));
        ens_ws_send_node (c, node);
      }
      break;
    case ENS_WS_PENDING_LIST:
      {
        JsonObject *pl;
        JsonNode *payload = ens_node_new_object (&pl);
        g_autoptr (JsonNode) node = NULL;
        ens_member_copy (pl, "sessions", data, "sessions");
        ens_member_copy (pl, "total", data, "total");
        node = ens_ws_typed_message ("sessions_list", payload);
        ens_member_copy (json_node_get_object (node), "sessions", data, "sessions");
        ens_ws_send_node (c, node);
      }
      break;
    case ENS_WS_PENDING_EXECUTE: /* progress comes as session events */
    case ENS_WS_PENDING_WRITE:
    case ENS_WS_PENDING_IGNORE:
    default:
      break;
    }
}

/* A session event {type, sessionId, taskId, ...} as Neolith expects it: the
 * fields at the top level (the orchestrator-daemon's shape), and again under
 * payload and data.  Encoded once per event for every Neolith watcher. */
GBytes *
ens_ws_neolith_encode (EnsMessage *msg)
{
  JsonObject *obj, *inner;
  g_autoptr (JsonNode) node = ens_node_new_object (&obj);
  JsonObject *ev = msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
  JsonNode *inner_node = ens_node_new_object (&inner);
  const char *type = ens_member_string (ev, "type");

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
  return ens_ws_node_bytes (node);
}

/* A task: a string, or Neolith's Task object (its description). */
static char *
task_text (const EnsHost *host, JsonObject *payload)
{
  JsonNode *n = payload ? json_object_get_member (payload, "task") : NULL;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (n));
  if (JSON_NODE_HOLDS_OBJECT (n))
    {
      const char *d = ens_member_string (json_node_get_object (n), "description");
      if (d == NULL)
        d = ens_member_string (json_node_get_object (n), "prompt");
      return d ? g_strdup (d) : host->json_to_string (n);
    }
  return (char *) -1; /* wrong type */
}

void
ens_ws_neolith_message (EnsWsConn *c, const char *text, gsize len)
{
  const EnsHost *host = c->ws->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (text, len, &error);
  JsonObject *obj, *payload;
  const char *type, *sid;

  if (root == NULL)
    {
      g_autofree char *message = g_strdup_printf ("malformed JSON: %s", error->message);
      ens_ws_send_error (c, ENS_ERR_INVALID_JSON, message, NULL, NULL);
      return;
    }
  obj = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  type = ens_member_string (obj, "type");
  if (type == NULL)
    {
      ens_ws_send_error (c, ENS_ERR_INVALID_REQUEST, "a message is a JSON object {type, payload}", NULL, NULL);
      return;
    }
  payload = ens_member_object (obj, "payload");
  if (payload == NULL)
    payload = obj; /* tolerate the fields at the top level */
  sid = ens_member_string (payload, "sessionId");
  if (sid == NULL)
    sid = ens_member_string (payload, "session_id");

  if (strcmp (type, "ping") == 0)
    {
      JsonObject *p;
      JsonNode *pl = ens_node_new_object (&p);
      g_autofree char *now = ens_ws_iso_now ();
      g_autoptr (JsonNode) node = NULL;
      json_object_set_string_member (p, "timestamp", now);
      node = ens_ws_typed_message ("pong", pl);
      ens_ws_send_node (c, node);
    }
  else if (strcmp (type, "health_check") == 0)
    ens_ws_core (c, "health", NULL, ens_ws_pending_new (ENS_WS_PENDING_HEALTH_CHECK, NULL));
  else if (strcmp (type, "daemon_status") == 0)
    ens_ws_core (c, "health", NULL, ens_ws_pending_new (ENS_WS_PENDING_DAEMON_STATUS, NULL));
  else if (strcmp (type, "list_sessions") == 0)
    ens_ws_core (c, "sessions.list", NULL, ens_ws_pending_new (ENS_WS_PENDING_LIST, NULL));
  else if (strcmp (type, "spawn_session") == 0)
    {
      static const char *const fields[][2] = {
        { "orchestratorId", "orchestrator_id" }, { "orchestrator_id", "orchestrator_id" },
        { "sessionType", "session_type" },       { "session_type", "session_type" },
        { "model", "model" },                    { "provider", "provider" },
        { "system", "system" },
      };
      JsonObject *params;
      g_autoptr (JsonNode) data = ens_node_new_object (&params);
      g_autofree char *task = task_text (host, payload);
      EnsWsPending *p;

      if (task == (char *) -1)
        {
          g_steal_pointer (&task);
          ens_ws_send_error (c, ENS_ERR_INVALID_PARAMETERS, "task must be a string or a task object", NULL, type);
          return;
        }
      for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
        {
          JsonNode *n = json_object_get_member (payload, fields[i][0]);
          if (n && !JSON_NODE_HOLDS_NULL (n))
            json_object_set_member (params, fields[i][1], json_node_copy (n));
        }
      /* The task runs once this connection watches the new session. */
      p = ens_ws_pending_new (ENS_WS_PENDING_SPAWN, NULL);
      p->task = g_steal_pointer (&task);
      ens_ws_core (c, "sessions.spawn", data, p);
    }
  else if (strcmp (type, "execute_task") == 0 || strcmp (type, "session_status") == 0 ||
           strcmp (type, "stop_session") == 0)
    {
      g_autoptr (JsonNode) data = NULL;

      if (sid == NULL || sid[0] == '\0')
        {
          ens_ws_send_error (c, ENS_ERR_INVALID_PARAMETERS, "payload.sessionId (a string) is required", NULL, type);
          return;
        }
      if (strcmp (type, "execute_task") == 0)
        {
          g_autofree char *task = task_text (host, payload);
          if (task == NULL || task == (char *) -1 || task[0] == '\0')
            {
              if (task == (char *) -1)
                g_steal_pointer (&task);
              ens_ws_send_error (c, ENS_ERR_INVALID_PARAMETERS, "payload.task (a non-empty string) is required", sid, type);
              return;
            }
          /* Watch first: task_executing is published while the verb runs. */
          ens_ws_watch_session (c, sid);
          data = ens_ws_session_params (sid, task);
          ens_ws_core (c, "sessions.execute", data, ens_ws_pending_new (ENS_WS_PENDING_EXECUTE, sid));
        }
      else
        {
          data = ens_ws_session_params (sid, NULL);
          ens_ws_core (c, strcmp (type, "stop_session") == 0 ? "sessions.stop" : "sessions.status", data,
                     ens_ws_pending_new (strcmp (type, "stop_session") == 0 ? ENS_WS_PENDING_STOP : ENS_WS_PENDING_STATUS, sid));
        }
    }
  else
    {
      g_autofree char *message = g_strdup_printf ("unknown message type '%s'", type);
      ens_ws_send_error (c, ENS_ERR_UNKNOWN_ACTION, message, sid, type);
    }
}


gboolean
ens_ws_neolith_status_tick (gpointer data)
{
  EnsWs *ws = data;
  GHashTableIter iter;
  gpointer key;
  gboolean any = FALSE;
  EnsMessage *answer;
  g_autoptr (GBytes) bytes = NULL;

  g_hash_table_iter_init (&iter, ws->conns);
  while (!any && g_hash_table_iter_next (&iter, &key, NULL))
    any = ((EnsWsConn *) key)->kind == ENS_WS_NEOLITH;
  if (!any)
    return G_SOURCE_CONTINUE;
  answer = ens_ws_probe (ws, "health", NULL);
  if (answer == NULL)
    return G_SOURCE_CONTINUE;
  if (answer->kind == ENS_MESSAGE_REPLY && answer->data && JSON_NODE_HOLDS_OBJECT (answer->data))
    {
      g_autoptr (JsonNode) node = ens_ws_typed_message ("daemon_status_update",
                                                 daemon_status_payload (json_node_get_object (answer->data)));
      bytes = ens_ws_node_bytes (node);
    }
  ws->host->message_unref (answer);
  if (bytes == NULL)
    return G_SOURCE_CONTINUE;
  /* The same bytes for everyone, as an event: a slow reader may miss one. */
  g_hash_table_iter_init (&iter, ws->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (((EnsWsConn *) key)->kind == ENS_WS_NEOLITH)
      ens_ws_send (key, bytes, TRUE);
  return G_SOURCE_CONTINUE;
}
