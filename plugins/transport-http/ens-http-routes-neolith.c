/* ens-http-routes-neolith.c — the Neolith orchestrator-daemon over HTTP:
 * /api/daemon, /api/daemon/sessions, /api/daemon/heartbeat and
 * /api/daemon/events (Server-Sent Events), a thin translation onto core
 * verbs.  Neolith's orchestrators are persistent agent records. */
#include "ens-http-seeds.h"

#include <string.h>

/* The daemon's health as Neolith's daemon status. */
static JsonObject *
neolith_status (JsonObject *h)
{
  JsonObject *out = json_object_new ();
  JsonObject *comp = h && json_object_has_member (h, "completions") ? ens_member_object (h, "completions")
                                                                      : NULL;
  g_autofree char *ts = ens_seed_now_iso ();
  const char *health = h ? ens_member_string_or (h, "status", "healthy") : "healthy";

  json_object_set_string_member (out, "status", strcmp (health, "healthy") == 0 ? "running" : health);
  json_object_set_string_member (out, "health", health);
  ens_member_copy (out, "uptime", h, "uptime_s");
  ens_member_copy (out, "activeSessions", h, "active_sessions");
  ens_member_copy (out, "totalSessions", h, "sessions");
  json_object_set_int_member (out, "queuedTasks", comp ? ens_member_int (comp, "queued", 0) : 0);
  json_object_set_int_member (out, "runningTasks", comp ? ens_member_int (comp, "running", 0) : 0);
  ens_member_copy (out, "agents", h, "agents");
  ens_member_copy (out, "connections", h, "connections");
  ens_member_copy (out, "version", h, "version");
  ens_member_copy (out, "nodeId", h, "node_id");
  ens_member_copy (out, "startedAt", h, "started_at");
  json_object_set_string_member (out, "timestamp", ts);
  return out;
}

/* A core session record in Neolith's names. */
static JsonObject *
neolith_session (JsonObject *rec)
{
  JsonObject *out = json_object_new ();
  static const EnsSeedRename fields[] = {
    { "session_id", "sessionId" }, { "orchestrator_id", "orchestratorId" }, { "session_type", "sessionType" },
    { "status", "status" },        { "model", "model" },                   { "provider", "provider" },
    { "created_at", "createdAt" }, { "updated_at", "updatedAt" },          { "tasks_total", "tasksTotal" },
    { "messages", "messages" },    { "task_id", "currentTaskId" },         { NULL, NULL },
  };

  for (guint i = 0; fields[i].core; i++)
    ens_member_copy (out, fields[i].http, rec, fields[i].core);
  return out;
}

static void
neolith_daemon_status (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    ens_seed_error (call, answer, ens_seed_neolith_names);
  else
    ens_seed_reply_object (call, 200, neolith_status (ens_seed_answer_object (answer)));
}

/* GET /api/daemon */
static void
route_neolith_status (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "health", NULL, 0, neolith_daemon_status, NULL);
}

static const char *const orchestrator_fields[] = { "orchestrator_id", "orchestratorId", "id", NULL };

static void
neolith_registered (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_neolith_names);
      return;
    }
  out = json_object_new ();
  json_object_set_boolean_member (out, "success", TRUE);
  json_object_set_boolean_member (out, "registered", TRUE);
  ens_member_copy (out, "orchestratorId", in, "name");
  ens_member_copy (out, "capabilities", in, "actions");
  ens_member_copy (out, "registeredAt", in, "registered_at");
  ens_seed_reply_object (call, 201, out);
}

/* POST /api/daemon {orchestrator_id | orchestratorId | id, capabilities?}:
 * registers an orchestrator (a persistent agent record). */
static void
route_neolith_register (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *id;
  JsonArray *caps;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !ens_seed_get_string_alias (call, body, orchestrator_fields, TRUE, &id) ||
      !ens_seed_get_strv (call, body, "capabilities", &caps))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "name", id);
  json_object_set_boolean_member (d, "persistent", TRUE);
  json_object_set_string_member (d, "description", "Neolith orchestrator");
  if (caps)
    json_object_set_array_member (d, "actions", json_array_ref (caps));
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "agents.register", data, 0, neolith_registered, NULL);
}

static void
neolith_unregistered (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_neolith_names);
      return;
    }
  out = json_object_new ();
  json_object_set_boolean_member (out, "success", TRUE);
  ens_member_copy (out, "orchestratorId", in, "name");
  ens_member_copy (out, "unregistered", in, "unregistered");
  ens_seed_reply_object (call, 200, out);
}

/* DELETE /api/daemon (?orchestratorId= or a body naming it). */
static void
route_neolith_unregister (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *id = NULL;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL)
    return;
  for (guint i = 0; orchestrator_fields[i] && id == NULL; i++)
    id = ens_http_query (call, orchestrator_fields[i]);
  if ((id == NULL || !*id) && !ens_seed_get_string_alias (call, body, orchestrator_fields, TRUE, &id))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "name", id);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "agents.unregister", data, 0, neolith_unregistered, NULL);
}

static void
neolith_spawned (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_neolith_names);
      return;
    }
  if (json_object_has_member (in, "task_id")) /* spawned with a task: the execute ack */
    {
      out = json_object_new ();
      ens_member_copy (out, "sessionId", in, "session_id");
      ens_member_copy (out, "status", in, "status");
      ens_member_copy (out, "taskId", in, "task_id");
      ens_member_copy (out, "requestId", in, "request_id");
    }
  else
    out = neolith_session (in);
  ens_seed_reply_object (call, 201, out);
}

/* POST /api/daemon/sessions {orchestratorId?, task?, sessionType?, model?, provider?} */
static void
route_neolith_spawn (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *orch, *task, *type, *model, *provider;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !ens_seed_get_string (call, body, "orchestratorId", FALSE, &orch) ||
      !ens_seed_get_string (call, body, "task", FALSE, &task) || !ens_seed_get_string (call, body, "sessionType", FALSE, &type) ||
      !ens_seed_get_string (call, body, "model", FALSE, &model) || !ens_seed_get_string (call, body, "provider", FALSE, &provider))
    return;
  d = json_object_new ();
  ens_seed_set_string_if (d, "orchestrator_id", orch);
  ens_seed_set_string_if (d, "task", task && *task ? task : NULL);
  ens_seed_set_string_if (d, "session_type", type);
  ens_seed_set_string_if (d, "model", model);
  ens_seed_set_string_if (d, "provider", provider);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "sessions.spawn", data, 0, neolith_spawned, NULL);
}

static void
neolith_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  const char *orch = data;
  JsonObject *in = ens_seed_answer_object (answer), *out;
  JsonArray *sessions, *list;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_neolith_names);
      return;
    }
  sessions = ens_member_array (in, "sessions");
  list = json_array_new ();
  for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      if (orch == NULL || g_strcmp0 (ens_member_string_or (rec, "orchestrator_id", ""), orch) == 0)
        json_array_add_object_element (list, neolith_session (rec));
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

static void
neolith_executed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_neolith_names);
      return;
    }
  out = json_object_new ();
  ens_member_copy (out, "sessionId", in, "session_id");
  ens_member_copy (out, "taskId", in, "task_id");
  ens_member_copy (out, "requestId", in, "request_id");
  ens_member_copy (out, "status", in, "status");
  ens_seed_reply_object (call, 200, out);
}

static void
neolith_stopped (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_neolith_names);
      return;
    }
  out = json_object_new ();
  json_object_set_boolean_member (out, "success", TRUE);
  ens_member_copy (out, "sessionId", in, "session_id");
  ens_member_copy (out, "status", in, "status");
  ens_seed_reply_object (call, 200, out);
}

static void
neolith_stop (EnsHttpCall *call, const char *session_id)
{
  JsonObject *d = json_object_new ();
  g_autoptr (JsonNode) data = ens_node_take_object (d);

  json_object_set_string_member (d, "session_id", session_id);
  ens_http_core (call, NULL, "sessions.stop", data, 0, neolith_stopped, NULL);
}

/* PATCH /api/daemon/sessions {sessionId, task} runs a task;
 * {sessionId, status:"stopped"} stops the session. */
static void
route_neolith_patch (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *id, *task, *status;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !ens_seed_get_string (call, body, "sessionId", TRUE, &id) ||
      !ens_seed_get_string (call, body, "status", FALSE, &status))
    return;
  if (status)
    {
      if (strcmp (status, "stopped") != 0)
        ens_http_reply_invalid (call, "status", "\"stopped\" (or send task to run one)");
      else
        neolith_stop (call, id);
      return;
    }
  if (!ens_seed_get_string (call, body, "task", TRUE, &task))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "session_id", id);
  json_object_set_string_member (d, "task", task);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "sessions.execute", data, 0, neolith_executed, NULL);
}

/* DELETE /api/daemon/sessions (?sessionId= or {sessionId}) */
static void
route_neolith_delete (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  const char *id;

  if (body == NULL)
    return;
  id = ens_http_query (call, "sessionId");
  if ((id == NULL || !*id) && !ens_seed_get_string (call, body, "sessionId", TRUE, &id))
    return;
  neolith_stop (call, id);
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
      ens_seed_error (call, answer, ens_seed_neolith_names);
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
      ens_seed_error (call, answer, ens_seed_neolith_names);
      return;
    }
  d = json_object_new ();
  topics = json_array_new ();
  json_array_add_string_element (topics, "session.*");
  json_object_set_array_member (d, "topics", topics);
  node = ens_node_take_object (d);
  status = neolith_status (ens_seed_answer_object (answer));
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
  { "GET", "/api/daemon", route_neolith_status, "neolith",
    "Daemon status {status, uptime, activeSessions, totalSessions, queuedTasks, runningTasks, version, ...}", NULL, FALSE },
  { "POST", "/api/daemon", route_neolith_register, "neolith",
    "Register an orchestrator {orchestrator_id | orchestratorId | id, capabilities?} (201)",
    "{\"type\":\"object\",\"properties\":{\"orchestrator_id\":" STR ",\"orchestratorId\":" STR ",\"id\":" STR
    ",\"capabilities\":" STRV "}}", FALSE },
  { "DELETE", "/api/daemon", route_neolith_unregister, "neolith",
    "Unregister an orchestrator (?orchestratorId= or the body naming it); 404 when unknown",
    "{\"type\":\"object\",\"properties\":{\"orchestrator_id\":" STR ",\"orchestratorId\":" STR ",\"id\":" STR "}}", FALSE },
  { "POST", "/api/daemon/sessions", route_neolith_spawn, "neolith",
    "Spawn a session {orchestratorId?, task?, sessionType?, model?, provider?} -> {sessionId, status, taskId?} (201)",
    "{\"type\":\"object\",\"properties\":{\"orchestratorId\":" STR ",\"task\":" STR ",\"sessionType\":" STR
    ",\"model\":" STR ",\"provider\":" STR "}}", FALSE },
  { "GET", "/api/daemon/sessions", route_neolith_sessions, "neolith", "Sessions {sessions, total} (?orchestratorId=)",
    NULL, FALSE },
  { "PATCH", "/api/daemon/sessions", route_neolith_patch, "neolith",
    "{sessionId, task} runs a task (progress on /api/daemon/events); {sessionId, status:\"stopped\"} stops the session",
    "{\"type\":\"object\",\"required\":[\"sessionId\"],\"properties\":{\"sessionId\":" STR ",\"task\":" STR
    ",\"status\":{\"enum\":[\"stopped\"]}}}", FALSE },
  { "DELETE", "/api/daemon/sessions", route_neolith_delete, "neolith", "Stop a session (?sessionId= or {sessionId})",
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
