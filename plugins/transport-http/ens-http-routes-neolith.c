/* ens-http-routes-neolith.c — the Neolith orchestrator-daemon over HTTP:
 * /api/daemon, /api/daemon/sessions, /api/daemon/heartbeat and
 * /api/daemon/events (Server-Sent Events).  Each route is a row of the
 * Neolith dialect (ens_dialect_neolith_rest, plugins/common/dialect/
 * ens-dialect-neolith.c: core verb, fields in and out, status); this file
 * runs the rows and carries the bytes.  Neolith's orchestrators are
 * persistent agent records. */
#include "ens-http-seeds.h"

#include <string.h>

#define NEOLITH (&ens_dialect_neolith_rest)

/* A route that is one row of the dialect, whose name is the route's
 * ("POST /api/daemon"): GET|POST|DELETE /api/daemon, POST|PATCH|DELETE
 * /api/daemon/sessions. */
static void
route_neolith_row (EnsHttpCall *call)
{
  ens_seed_run_route (call, NEOLITH);
}

static void
neolith_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  const char *orch = data;
  JsonObject *in = ens_seed_answer_object (answer), *out;
  JsonArray *sessions, *list;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_dialect_error (call, NULL, answer);
      return;
    }
  sessions = ens_member_array (in, "sessions");
  list = json_array_new ();
  for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      if (orch == NULL || g_strcmp0 (ens_member_string_or (rec, "orchestrator_id", ""), orch) == 0)
        json_array_add_element (list, ens_dialect_neolith_rest_session (rec));
    }
  out = json_object_new ();
  json_object_set_int_member (out, "total", json_array_get_length (list));
  json_object_set_array_member (out, "sessions", list);
  ens_seed_reply_object (call, 200, out);
}

/* GET /api/daemon/sessions (?orchestratorId=) */
static void
route_neolith_sessions (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "sessions.list", NULL, 0, neolith_listed, (gpointer) ens_http_query (call, "orchestratorId"));
}

/* GET|POST /api/daemon/heartbeat: the daemon answers, so it is alive. */
static void
route_neolith_heartbeat (EnsHttpCall *call)
{
  JsonObject *out;
  g_autofree char *ts = NULL;

  if (ens_http_body (call) == NULL)
    return;
  ts = ens_seed_now_iso ();
  out = json_object_new ();
  json_object_set_string_member (out, "status", "ok");
  json_object_set_string_member (out, "timestamp", ts);
  ens_seed_reply_object (call, 200, out);
}

/* GET /api/daemon/events: session.* events as Server-Sent Events, each
 * `event: <type>` with `data: {"type", "data": {sessionId, taskId, ...}}`
 * (the shape of Neolith's WebSocket messages), after a first
 * daemon_status_update. */
/* (transfer full) {"type": @type, "data": @payload} as JSON text. */
static char *
neolith_sse_json (const EnsHost *host, const char *type, JsonObject *payload)
{
  JsonObject *obj = json_object_new ();
  g_autoptr (JsonNode) node = ens_node_take_object (obj);

  json_object_set_string_member (obj, "type", type);
  json_object_set_object_member (obj, "data", json_object_ref (payload));
  return host->json_to_string (node);
}

/* (transfer full) the same as one whole SSE frame. */
static GBytes *
neolith_sse_frame (const EnsHost *host, const char *type, JsonObject *payload)
{
  g_autofree char *text = neolith_sse_json (host, type, payload);
  char *frame = g_strdup_printf ("event: %s\ndata: %s\n\n", type, text);

  return g_bytes_new_take (frame, strlen (frame));
}

static void
neolith_sse_send (EnsHttpCall *call, const char *type, JsonObject *payload)
{
  g_autofree char *text = neolith_sse_json (ens_http_host (call), type, payload);

  ens_http_sse_send (call, type, text);
}

/* Encoders get no context; the host table is the same for every plugin. */
static const EnsHost *neolith_host;

/* An EnsEncodeFunc: a session event as one SSE frame, made once per message
 * for every /api/daemon/events stream. */
static GBytes *
neolith_event_frame (EnsMessage *event)
{
  JsonObject *ev = ens_seed_answer_object (event);
  const char *type = ens_member_string (ev, "type");

  if (type == NULL)
    type = strrchr (event->topic, '.') + 1;
  return neolith_sse_frame (neolith_host, type, ev);
}

static void
neolith_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  (void) data;
  if (ens_seed_answer_object (event) == NULL || !g_str_has_prefix (event->topic, "session."))
    return;
  neolith_host = ens_http_host (call);
  ens_http_sse_send_event (call, neolith_host->message_encode (event, neolith_event_frame));
}

/* {"type":"events_dropped","data":{"count","total"}}, as on the WebSocket. */
static GBytes *
neolith_dropped (guint64 count, guint64 total, gpointer data)
{
  EnsHttpCall *call = data;
  g_autoptr (JsonObject) payload = json_object_new ();

  json_object_set_int_member (payload, "count", count);
  json_object_set_int_member (payload, "total", total);
  return neolith_sse_frame (ens_http_host (call), "events_dropped", payload);
}

static void
neolith_subscribed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *status = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_dialect_error (call, NULL, answer);
      return;
    }
  ens_http_sse_begin (call);
  ens_http_sse_on_dropped (call, neolith_dropped, call);
  neolith_sse_send (call, "daemon_status_update", status);
}

static void
neolith_events_health (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *d, *status;
  JsonArray *topics;
  g_autoptr (JsonNode) node = NULL;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_dialect_error (call, NULL, answer);
      return;
    }
  d = json_object_new ();
  topics = json_array_new ();
  json_array_add_string_element (topics, "session.*");
  json_object_set_array_member (d, "topics", topics);
  node = ens_node_take_object (d);
  {
    g_autoptr (JsonNode) shaped = ens_dialect_neolith_rest_status (ens_seed_answer_object (answer));
    status = json_object_ref (json_node_get_object (shaped));
  }
  ens_http_attach (call, "ens-neolith-status", status, (GDestroyNotify) json_object_unref);
  ens_http_on_event (call, neolith_event, NULL);
  ens_http_core (call, NULL, "subscribe", node, 0, neolith_subscribed, status);
}

static void
route_neolith_events (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "health", NULL, 0, neolith_events_health, NULL);
}

/* ------------------------------------------------------------------ the table */

const EnsHttpRoute ens_http_routes_neolith[] = {
  { "GET", "/api/daemon", route_neolith_row, "neolith",
    "Daemon status {status, uptime, activeSessions, totalSessions, queuedTasks, runningTasks, version, ...}", NULL, FALSE },
  { "POST", "/api/daemon", route_neolith_row, "neolith",
    "Register an orchestrator {orchestrator_id | orchestratorId | id, capabilities?} (201)",
    "{\"type\":\"object\",\"properties\":{\"orchestrator_id\":" STR ",\"orchestratorId\":" STR ",\"id\":" STR
    ",\"capabilities\":" STRV "}}", FALSE },
  { "DELETE", "/api/daemon", route_neolith_row, "neolith",
    "Unregister an orchestrator (?orchestratorId= or the body naming it); 404 when unknown",
    "{\"type\":\"object\",\"properties\":{\"orchestrator_id\":" STR ",\"orchestratorId\":" STR ",\"id\":" STR "}}", FALSE },
  { "POST", "/api/daemon/sessions", route_neolith_row, "neolith",
    "Spawn a session {orchestratorId?, task?, sessionType?, model?, provider?} -> {sessionId, status, taskId?} (201)",
    "{\"type\":\"object\",\"properties\":{\"orchestratorId\":" STR ",\"task\":" STR ",\"sessionType\":" STR
    ",\"model\":" STR ",\"provider\":" STR "}}", FALSE },
  { "GET", "/api/daemon/sessions", route_neolith_sessions, "neolith", "Sessions {sessions, total} (?orchestratorId=)",
    NULL, FALSE },
  { "PATCH", "/api/daemon/sessions", route_neolith_row, "neolith",
    "{sessionId, task} runs a task (progress on /api/daemon/events); {sessionId, status:\"stopped\"} stops the session",
    "{\"type\":\"object\",\"required\":[\"sessionId\"],\"properties\":{\"sessionId\":" STR ",\"task\":" STR
    ",\"status\":{\"enum\":[\"stopped\"]}}}", FALSE },
  { "DELETE", "/api/daemon/sessions", route_neolith_row, "neolith", "Stop a session (?sessionId= or {sessionId})",
    "{\"type\":\"object\",\"properties\":{\"sessionId\":" STR "}}", FALSE },
  { "GET", "/api/daemon/heartbeat", route_neolith_heartbeat, "neolith", "Liveness {status:\"ok\", timestamp}", NULL,
    FALSE },
  { "POST", "/api/daemon/heartbeat", route_neolith_heartbeat, "neolith", "Liveness {status:\"ok\", timestamp}", NULL,
    FALSE },
  { "GET", "/api/daemon/events", route_neolith_events, "neolith",
    "Server-Sent Events: daemon_status_update, then every session event {type, data:{sessionId, taskId, ...}}", NULL,
    FALSE },
  { NULL },
};
