/* ens-http-routes-seeds.c — the seed systems' HTTP dialects, each a thin
 * translation onto core verbs (README, "Over HTTP and WebSocket"), no logic
 * of its own:
 *
 *   KSI HTTP plan  /api/v1/spawn, /api/v1/agents/register, /api/v1/agents, /api/v1/status
 *   Neolith        /api/daemon, /api/daemon/sessions, /api/daemon/heartbeat,
 *                  /api/daemon/events (Server-Sent Events)
 *   Rhetor/aish    /api/ai/socket/create, /api/ai/specialists,
 *                  /api/ai/specialists/{id}/message, /api/team-chat
 *
 * A Rhetor "AI socket" is a core session whose orchestrator_id is "rhetor"
 * and whose session_type is the specialist's name; its id is the socket id.
 * Neolith's orchestrators and KSI's agents are persistent agent records.
 * Each dialect names its fields its own way: the core's validation errors
 * come back with the dialect's field names. */
#include "ens-http.h"
#include "ens-json-util.h"

#include <string.h>

#define RHETOR_ORCHESTRATOR "rhetor"
#define TEAM_CHAT_DEFAULT_S 30.0
#define TEAM_CHAT_MAX_S 3600.0

/* ------------------------------------------------------------------ helpers */


static JsonObject *
answer_object (EnsMessage *answer)
{
  return answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data) : NULL;
}

static void
reply_object (EnsHttpCall *call, guint status, JsonObject *obj)
{
  g_autoptr (JsonNode) node = ens_node_take_object (obj);
  ens_http_reply_json (call, status, node);
}

static char *
now_iso (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

static void
copy_member (JsonObject *to, const char *to_name, JsonObject *from, const char *from_name)
{
  if (from && json_object_has_member (from, from_name))
    json_object_set_member (to, to_name, json_node_copy (json_object_get_member (from, from_name)));
}

static void
set_string_if (JsonObject *obj, const char *name, const char *value)
{
  if (value)
    json_object_set_string_member (obj, name, value);
}

/* A core field name and the dialect's name for it. */
typedef struct {
  const char *core, *http;
} Rename;

static const Rename ksi_names[] = {
  { "name", "agent_id" }, { "actions", "capabilities" }, { "description", "role" }, { "orchestrator_id", "agent_id" },
  { NULL, NULL },
};
static const Rename neolith_names[] = {
  { "session_id", "sessionId" }, { "orchestrator_id", "orchestratorId" }, { "session_type", "sessionType" },
  { "name", "orchestrator_id" }, { "actions", "capabilities" }, { NULL, NULL },
};
static const Rename rhetor_names[] = {
  { "session_id", "socket_id" }, { "task", "message" }, { "session_type", "name" }, { NULL, NULL },
};

/* A core error as the HTTP error body; INVALID_PARAMETERS becomes 422 with
 * the field as the dialect names it. */
static void
seed_error (EnsHttpCall *call, EnsMessage *answer, const Rename *names)
{
  JsonObject *det = answer->error_details && JSON_NODE_HOLDS_OBJECT (answer->error_details)
                      ? json_node_get_object (answer->error_details) : NULL;
  const char *field = ens_member_string (det, "field");

  if (g_strcmp0 (answer->error_code, ENS_ERR_INVALID_PARAMETERS) == 0 && field)
    {
      for (guint i = 0; names && names[i].core; i++)
        if (strcmp (names[i].core, field) == 0)
          {
            field = names[i].http;
            break;
          }
      ens_http_reply_invalid (call, field, ens_member_string_or (det, "expected", "valid"));
    }
  else
    ens_http_reply_error (call, ens_http_status_for (answer->error_code), answer->error_code, answer->error_message,
                          answer->error_details);
}

/* ---- body fields: each getter answers 422 itself and returns FALSE when
 * the field has the wrong type (null counts as absent). */

static gboolean
get_string (EnsHttpCall *call, JsonObject *body, const char *field, gboolean required, const char **out)
{
  EnsInvalid invalid;

  *out = NULL;
  if (ens_param_string (body, field, required ? ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY : 0, 0, out, &invalid))
    return TRUE;
  ens_http_reply_invalid (call, invalid.field, invalid.expected);
  return FALSE;
}

/* The first of @fields present, as a non-empty string; 422 naming @fields[0]. */
static gboolean
get_string_alias (EnsHttpCall *call, JsonObject *body, const char *const *fields, gboolean required, const char **out)
{
  *out = NULL;
  for (guint i = 0; fields[i]; i++)
    {
      JsonNode *n = json_object_get_member (body, fields[i]);
      if (n == NULL || JSON_NODE_HOLDS_NULL (n))
        continue;
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING || !*json_node_get_string (n))
        {
          ens_http_reply_invalid (call, fields[i], "a non-empty string");
          return FALSE;
        }
      *out = json_node_get_string (n);
      return TRUE;
    }
  if (required)
    {
      ens_http_reply_invalid (call, fields[0], "a non-empty string");
      return FALSE;
    }
  return TRUE;
}

static gboolean
get_strv (EnsHttpCall *call, JsonObject *body, const char *field, JsonArray **out)
{
  JsonNode *n = json_object_get_member (body, field);

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (JSON_NODE_HOLDS_ARRAY (n))
    {
      JsonArray *a = json_node_get_array (n);
      gboolean ok = TRUE;
      for (guint i = 0; ok && i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          ok = JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING && *json_node_get_string (e);
        }
      if (ok)
        {
          *out = a;
          return TRUE;
        }
    }
  ens_http_reply_invalid (call, field, "a list of non-empty strings");
  return FALSE;
}

static gboolean
get_number (EnsHttpCall *call, JsonObject *body, const char *field, double min, double max, const char *expected,
            gboolean *present, double *out)
{
  JsonNode *n = json_object_get_member (body, field);
  GType t;

  *present = FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t == G_TYPE_INT64 || t == G_TYPE_DOUBLE)
    {
      *out = json_node_get_double (n);
      if (*out >= min && *out <= max)
        {
          *present = TRUE;
          return TRUE;
        }
    }
  ens_http_reply_invalid (call, field, expected);
  return FALSE;
}

/* The task's outcome from a task_completed event's result. */
static void
copy_result (JsonObject *to, JsonObject *result)
{
  for (const char *const *k = (const char *const[]){ "model", "provider", "usage", "finish_reason", "cost",
                                                     "duration_ms", "tool_calls", NULL };
       *k; k++)
    copy_member (to, *k, result, *k);
}

/* A failed task (task_failed {error, code}) as an HTTP error. */
static void
reply_task_failed (EnsHttpCall *call, JsonObject *ev, JsonNode *event_data)
{
  const char *code = ens_member_string_or (ev, "code", "TASK_FAILED");
  guint status = ens_http_status_for (code);

  ens_http_reply_error (call, status == 500 ? 502 : status, code,
                        ens_member_string_or (ev, "error", "the task failed"), event_data);
}

/* State that outlives the handler is tied to the SoupServerMessage, which
 * outlives the call (and its client): answers or events that arrive after
 * the reply, or never (the peer left), still find it, and it is freed
 * exactly once. */
static void
attach_state (EnsHttpCall *call, const char *key, gpointer state, GDestroyNotify free_func)
{
  g_object_set_data_full (G_OBJECT (ens_http_message (call)), key, state, free_func);
}

/* ================================================================== KSI HTTP plan */

static void
ksi_spawned (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, ksi_names);
      return;
    }
  out = json_object_new ();
  json_object_set_string_member (out, "status", "accepted");
  for (const char *const *k = (const char *const[]){ "session_id", "task_id", "request_id", "watch", NULL }; *k; k++)
    copy_member (out, *k, in, *k);
  if (json_object_has_member (in, "session_id"))
    {
      g_autofree char *topic = g_strconcat ("results:", ens_member_string (in, "session_id"), NULL);
      json_object_set_string_member (out, "result_topic", topic);
    }
  reply_object (call, 202, out);
}

/* POST /api/v1/spawn {task, model?, provider?, session_type?, agent_id?}:
 * a session that runs the task at once; progress on session.<id>.*. */
static void
route_ksi_spawn (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *task, *model, *provider, *type, *agent;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !get_string (call, body, "task", TRUE, &task) ||
      !get_string (call, body, "model", FALSE, &model) || !get_string (call, body, "provider", FALSE, &provider) ||
      !get_string (call, body, "session_type", FALSE, &type) || !get_string (call, body, "agent_id", FALSE, &agent))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "task", task);
  set_string_if (d, "model", model);
  set_string_if (d, "provider", provider);
  set_string_if (d, "session_type", type);
  set_string_if (d, "orchestrator_id", agent);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "sessions.spawn", data, 0, ksi_spawned, NULL);
}

static void
ksi_registered (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, ksi_names);
      return;
    }
  out = json_object_new ();
  json_object_set_string_member (out, "status", "registered");
  copy_member (out, "agent_id", in, "name");
  copy_member (out, "role", in, "description");
  copy_member (out, "capabilities", in, "actions");
  copy_member (out, "registered_at", in, "registered_at");
  json_object_set_member (out, "agent", json_node_copy (answer->data));
  reply_object (call, 201, out);
}

/* POST /api/v1/agents/register {agent_id, role?, capabilities?}: a
 * persistent agent record (the HTTP request does not serve it). */
static void
route_ksi_register (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *agent, *role;
  JsonArray *caps;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !get_string (call, body, "agent_id", TRUE, &agent) ||
      !get_string (call, body, "role", FALSE, &role) || !get_strv (call, body, "capabilities", &caps))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "name", agent);
  json_object_set_boolean_member (d, "persistent", TRUE);
  set_string_if (d, "description", role);
  if (caps)
    json_object_set_array_member (d, "actions", json_array_ref (caps));
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "agents.register", data, 0, ksi_registered, NULL);
}

static void
ksi_agents (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;
  JsonArray *agents;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, ksi_names);
      return;
    }
  agents = ens_member_array (in, "agents");
  out = json_object_new ();
  json_object_set_array_member (out, "agents", json_array_ref (agents));
  json_object_set_int_member (out, "count", json_array_get_length (agents));
  reply_object (call, 200, out);
}

static void
route_ksi_agents (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "agents.list", NULL, 0, ksi_agents, NULL);
}

static void
ksi_status (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, ksi_names);
      return;
    }
  out = json_object_new ();
  copy_member (out, "status", in, "status");
  copy_member (out, "uptime", in, "uptime_s");
  for (const char *const *k = (const char *const[]){ "agents", "sessions", "active_sessions", "connections", "version",
                                                     "node_id", "started_at", "completions", NULL };
       *k; k++)
    copy_member (out, *k, in, *k);
  reply_object (call, 200, out);
}

static void
route_ksi_status (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "health", NULL, 0, ksi_status, NULL);
}

/* ================================================================== Neolith */

/* The daemon's health as Neolith's daemon status. */
static JsonObject *
neolith_status (JsonObject *h)
{
  JsonObject *out = json_object_new ();
  JsonObject *comp = h && json_object_has_member (h, "completions") ? ens_member_object (h, "completions")
                                                                      : NULL;
  g_autofree char *ts = now_iso ();
  const char *health = h ? ens_member_string_or (h, "status", "healthy") : "healthy";

  json_object_set_string_member (out, "status", strcmp (health, "healthy") == 0 ? "running" : health);
  json_object_set_string_member (out, "health", health);
  copy_member (out, "uptime", h, "uptime_s");
  copy_member (out, "activeSessions", h, "active_sessions");
  copy_member (out, "totalSessions", h, "sessions");
  json_object_set_int_member (out, "queuedTasks", comp ? ens_member_int (comp, "queued", 0) : 0);
  json_object_set_int_member (out, "runningTasks", comp ? ens_member_int (comp, "running", 0) : 0);
  copy_member (out, "agents", h, "agents");
  copy_member (out, "connections", h, "connections");
  copy_member (out, "version", h, "version");
  copy_member (out, "nodeId", h, "node_id");
  copy_member (out, "startedAt", h, "started_at");
  json_object_set_string_member (out, "timestamp", ts);
  return out;
}

/* A core session record in Neolith's names. */
static JsonObject *
neolith_session (JsonObject *rec)
{
  JsonObject *out = json_object_new ();
  static const Rename fields[] = {
    { "session_id", "sessionId" }, { "orchestrator_id", "orchestratorId" }, { "session_type", "sessionType" },
    { "status", "status" },        { "model", "model" },                   { "provider", "provider" },
    { "created_at", "createdAt" }, { "updated_at", "updatedAt" },          { "tasks_total", "tasksTotal" },
    { "messages", "messages" },    { "task_id", "currentTaskId" },         { NULL, NULL },
  };

  for (guint i = 0; fields[i].core; i++)
    copy_member (out, fields[i].http, rec, fields[i].core);
  return out;
}

static void
neolith_daemon_status (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    seed_error (call, answer, neolith_names);
  else
    reply_object (call, 200, neolith_status (answer_object (answer)));
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
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, neolith_names);
      return;
    }
  out = json_object_new ();
  json_object_set_boolean_member (out, "success", TRUE);
  json_object_set_boolean_member (out, "registered", TRUE);
  copy_member (out, "orchestratorId", in, "name");
  copy_member (out, "capabilities", in, "actions");
  copy_member (out, "registeredAt", in, "registered_at");
  reply_object (call, 201, out);
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

  if (body == NULL || !get_string_alias (call, body, orchestrator_fields, TRUE, &id) ||
      !get_strv (call, body, "capabilities", &caps))
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
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, neolith_names);
      return;
    }
  out = json_object_new ();
  json_object_set_boolean_member (out, "success", TRUE);
  copy_member (out, "orchestratorId", in, "name");
  copy_member (out, "unregistered", in, "unregistered");
  reply_object (call, 200, out);
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
  if ((id == NULL || !*id) && !get_string_alias (call, body, orchestrator_fields, TRUE, &id))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "name", id);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "agents.unregister", data, 0, neolith_unregistered, NULL);
}

static void
neolith_spawned (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, neolith_names);
      return;
    }
  if (json_object_has_member (in, "task_id")) /* spawned with a task: the execute ack */
    {
      out = json_object_new ();
      copy_member (out, "sessionId", in, "session_id");
      copy_member (out, "status", in, "status");
      copy_member (out, "taskId", in, "task_id");
      copy_member (out, "requestId", in, "request_id");
    }
  else
    out = neolith_session (in);
  reply_object (call, 201, out);
}

/* POST /api/daemon/sessions {orchestratorId?, task?, sessionType?, model?, provider?} */
static void
route_neolith_spawn (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *orch, *task, *type, *model, *provider;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !get_string (call, body, "orchestratorId", FALSE, &orch) ||
      !get_string (call, body, "task", FALSE, &task) || !get_string (call, body, "sessionType", FALSE, &type) ||
      !get_string (call, body, "model", FALSE, &model) || !get_string (call, body, "provider", FALSE, &provider))
    return;
  d = json_object_new ();
  set_string_if (d, "orchestrator_id", orch);
  set_string_if (d, "task", task && *task ? task : NULL);
  set_string_if (d, "session_type", type);
  set_string_if (d, "model", model);
  set_string_if (d, "provider", provider);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "sessions.spawn", data, 0, neolith_spawned, NULL);
}

static void
neolith_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  const char *orch = data;
  JsonObject *in = answer_object (answer), *out;
  JsonArray *sessions, *list;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, neolith_names);
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
  reply_object (call, 200, out);
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
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, neolith_names);
      return;
    }
  out = json_object_new ();
  copy_member (out, "sessionId", in, "session_id");
  copy_member (out, "taskId", in, "task_id");
  copy_member (out, "requestId", in, "request_id");
  copy_member (out, "status", in, "status");
  reply_object (call, 200, out);
}

static void
neolith_stopped (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, neolith_names);
      return;
    }
  out = json_object_new ();
  json_object_set_boolean_member (out, "success", TRUE);
  copy_member (out, "sessionId", in, "session_id");
  copy_member (out, "status", in, "status");
  reply_object (call, 200, out);
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

  if (body == NULL || !get_string (call, body, "sessionId", TRUE, &id) ||
      !get_string (call, body, "status", FALSE, &status))
    return;
  if (status)
    {
      if (strcmp (status, "stopped") != 0)
        ens_http_reply_invalid (call, "status", "\"stopped\" (or send task to run one)");
      else
        neolith_stop (call, id);
      return;
    }
  if (!get_string (call, body, "task", TRUE, &task))
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
  if ((id == NULL || !*id) && !get_string (call, body, "sessionId", TRUE, &id))
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
  ts = now_iso ();
  out = json_object_new ();
  json_object_set_string_member (out, "status", "ok");
  json_object_set_string_member (out, "timestamp", ts);
  reply_object (call, 200, out);
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
  JsonObject *ev = answer_object (event);
  const char *type = ens_member_string (ev, "type");

  if (type == NULL)
    type = strrchr (event->topic, '.') + 1;
  return neolith_sse_frame (neolith_host, type, ev);
}

static void
neolith_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  (void) data;
  if (answer_object (event) == NULL || !g_str_has_prefix (event->topic, "session."))
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
      seed_error (call, answer, neolith_names);
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
      seed_error (call, answer, neolith_names);
      return;
    }
  d = json_object_new ();
  topics = json_array_new ();
  json_array_add_string_element (topics, "session.*");
  json_object_set_array_member (d, "topics", topics);
  node = ens_node_take_object (d);
  status = neolith_status (answer_object (answer));
  attach_state (call, "ens-neolith-status", status, (GDestroyNotify) json_object_unref);
  ens_http_on_event (call, neolith_event, NULL);
  ens_http_core (call, NULL, "subscribe", node, 0, neolith_subscribed, status);
}

static void
route_neolith_events (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "health", NULL, 0, neolith_events_health, NULL);
}

/* ================================================================== Rhetor / aish */

static gboolean
rhetor_socket (JsonObject *rec)
{
  return g_strcmp0 (ens_member_string_or (rec, "orchestrator_id", ""), RHETOR_ORCHESTRATOR) == 0;
}

/* A socket takes messages until it is stopped. */
static gboolean
rhetor_active (JsonObject *rec)
{
  return g_strcmp0 (ens_member_string_or (rec, "status", ""), "stopped") != 0;
}

static char *
rhetor_ws_url (EnsHttpCall *call, const char *id)
{
  const char *base = ens_http_base_url (call);
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);

  if (g_str_has_prefix (base, "https://"))
    return g_strdup_printf ("wss://%s/ws/socket/%s", base + 8, escaped);
  return g_strdup_printf ("ws://%s/ws/socket/%s", g_str_has_prefix (base, "http://") ? base + 7 : base, escaped);
}

static void
rhetor_created (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;
  g_autofree char *url = NULL;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, rhetor_names);
      return;
    }
  url = rhetor_ws_url (call, ens_member_string (in, "session_id"));
  out = json_object_new ();
  copy_member (out, "socket_id", in, "session_id");
  json_object_set_string_member (out, "websocket_url", url);
  copy_member (out, "name", in, "session_type");
  copy_member (out, "model", in, "model");
  copy_member (out, "provider", in, "provider");
  copy_member (out, "status", in, "status");
  copy_member (out, "created_at", in, "created_at");
  reply_object (call, 200, out);
}

/* POST /api/ai/socket/create {name | specialist?, model?, provider?, system?} */
static void
route_rhetor_create (EnsHttpCall *call)
{
  static const char *const name_fields[] = { "name", "specialist", NULL };
  JsonObject *body = ens_http_body (call), *d;
  const char *name, *model, *provider, *system;
  g_autofree char *default_system = NULL;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !get_string_alias (call, body, name_fields, FALSE, &name) ||
      !get_string (call, body, "model", FALSE, &model) || !get_string (call, body, "provider", FALSE, &provider) ||
      !get_string (call, body, "system", FALSE, &system))
    return;
  if (name == NULL)
    name = "assistant";
  if (system == NULL)
    system = default_system = g_strdup_printf ("You are %s, an AI specialist reached through Rhetor.", name);
  d = json_object_new ();
  json_object_set_string_member (d, "orchestrator_id", RHETOR_ORCHESTRATOR);
  json_object_set_string_member (d, "session_type", name);
  json_object_set_string_member (d, "system", system);
  set_string_if (d, "model", model);
  set_string_if (d, "provider", provider);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "sessions.spawn", data, 0, rhetor_created, NULL);
}

static JsonObject *
rhetor_specialist (EnsHttpCall *call, JsonObject *rec)
{
  JsonObject *out = json_object_new ();
  const char *id = ens_member_string (rec, "session_id");
  g_autofree char *url = rhetor_ws_url (call, id);

  json_object_set_string_member (out, "id", id);
  json_object_set_string_member (out, "socket_id", id);
  copy_member (out, "name", rec, "session_type");
  json_object_set_boolean_member (out, "active", rhetor_active (rec));
  copy_member (out, "status", rec, "status");
  if (json_object_has_member (rec, "model"))
    copy_member (out, "model", rec, "model");
  else
    json_object_set_string_member (out, "model", "auto"); /* the router decides per message */
  copy_member (out, "provider", rec, "provider");
  copy_member (out, "created_at", rec, "created_at");
  copy_member (out, "messages", rec, "messages");
  copy_member (out, "tasks_total", rec, "tasks_total");
  json_object_set_string_member (out, "websocket_url", url);
  return out;
}

static void
rhetor_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = answer_object (answer), *out;
  JsonArray *sessions, *list;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      seed_error (call, answer, rhetor_names);
      return;
    }
  sessions = ens_member_array (in, "sessions");
  list = json_array_new ();
  for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      if (rhetor_socket (rec))
        json_array_add_object_element (list, rhetor_specialist (call, rec));
    }
  out = json_object_new ();
  json_object_set_int_member (out, "count", json_array_get_length (list));
  json_object_set_array_member (out, "specialists", list);
  reply_object (call, 200, out);
}

/* GET /api/ai/specialists */
static void
route_rhetor_specialists (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "sessions.list", NULL, 0, rhetor_listed, NULL);
}

/* ---- POST /api/ai/specialists/{id}/message {message, temperature?}:
 * watch session.<id>.*, run the message as the session's task, answer with
 * its task_completed (or task_failed). */

typedef struct {
  char *socket_id;
  char *task_id; /* from the execute ack; events of other tasks are not ours */
  JsonNode *execute;
  gboolean done;
} MessageCall;

static void
message_call_free (gpointer data)
{
  MessageCall *mc = data;
  g_free (mc->socket_id);
  g_free (mc->task_id);
  g_clear_pointer (&mc->execute, json_node_unref);
  g_free (mc);
}

static void
message_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  MessageCall *mc = data;
  JsonObject *ev = answer_object (event), *out;
  const char *type;

  if (mc->done || mc->task_id == NULL || ev == NULL ||
      g_strcmp0 (ens_member_string_or (ev, "taskId", ""), mc->task_id) != 0)
    return;
  type = ens_member_string_or (ev, "type", "");
  if (strcmp (type, "task_completed") == 0)
    {
      JsonObject *result = ens_member_object (ev, "result");
      mc->done = TRUE;
      out = json_object_new ();
      json_object_set_string_member (out, "response",
                                     result ? ens_member_string_or (result, "response", "") : "");
      json_object_set_string_member (out, "socket_id", mc->socket_id);
      json_object_set_string_member (out, "task_id", mc->task_id);
      copy_result (out, result);
      ens_http_on_event (call, NULL, NULL);
      reply_object (call, 200, out);
    }
  else if (strcmp (type, "task_failed") == 0)
    {
      mc->done = TRUE;
      ens_http_on_event (call, NULL, NULL);
      reply_task_failed (call, ev, event->data);
    }
}

static void
message_executed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  MessageCall *mc = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      mc->done = TRUE;
      seed_error (call, answer, rhetor_names);
      return;
    }
  mc->task_id = g_strdup (ens_member_string (answer_object (answer), "task_id"));
}

static void
message_subscribed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  MessageCall *mc = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      mc->done = TRUE;
      seed_error (call, answer, rhetor_names);
      return;
    }
  ens_http_core (call, NULL, "sessions.execute", mc->execute, 0, message_executed, mc);
}

static void
route_rhetor_message (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d, *sub;
  const char *message;
  gboolean has_temp;
  double temperature;
  MessageCall *mc;
  JsonArray *topics;
  g_autoptr (JsonNode) sub_node = NULL;
  g_autofree char *topic = NULL;

  if (body == NULL || !get_string (call, body, "message", TRUE, &message) ||
      !get_number (call, body, "temperature", 0, 2, "a number from 0 to 2", &has_temp, &temperature))
    return;
  mc = g_new0 (MessageCall, 1);
  mc->socket_id = g_strdup (ens_http_param (call, "id"));
  attach_state (call, "ens-rhetor-message", mc, message_call_free);
  d = json_object_new ();
  json_object_set_string_member (d, "session_id", mc->socket_id);
  json_object_set_string_member (d, "task", message);
  if (has_temp)
    json_object_set_double_member (d, "temperature", temperature);
  mc->execute = ens_node_take_object (d);

  topic = g_strdup_printf ("session.%s.*", mc->socket_id);
  sub = json_object_new ();
  topics = json_array_new ();
  json_array_add_string_element (topics, topic);
  json_object_set_array_member (sub, "topics", topics);
  sub_node = ens_node_take_object (sub);
  ens_http_on_event (call, message_event, mc);
  ens_http_core (call, NULL, "subscribe", sub_node, 0, message_subscribed, mc);
}

/* ---- POST /api/team-chat {message, moderation_mode?, timeout?}: the
 * message runs in every active AI socket at once (one task each); the
 * answer gathers what came back before the timeout. */

typedef struct {
  char *id, *name, *task_id;
  gboolean done;
} Member;

typedef struct {
  EnsHttpCall *call;
  char *message;
  char *moderation_mode;
  guint timeout_ms;
  guint timer;
  GPtrArray *members;     /* Member* */
  guint next;             /* the next member to start */
  JsonObject *responses;  /* id -> {content, name, model, ...} */
  JsonObject *errors;     /* id -> {code, error} */
  gboolean replied;
} TeamChat;

static void
member_free (Member *m)
{
  g_free (m->id);
  g_free (m->name);
  g_free (m->task_id);
  g_free (m);
}

static void
team_chat_free (gpointer data)
{
  TeamChat *tc = data;

  if (tc->timer)
    g_source_remove (tc->timer);
  g_free (tc->message);
  g_free (tc->moderation_mode);
  g_clear_pointer (&tc->members, g_ptr_array_unref);
  g_clear_pointer (&tc->responses, json_object_unref);
  g_clear_pointer (&tc->errors, json_object_unref);
  g_free (tc);
}

static void
team_chat_reply (TeamChat *tc)
{
  JsonObject *out;
  JsonArray *timed_out = json_array_new ();

  if (tc->replied)
    {
      json_array_unref (timed_out);
      return;
    }
  tc->replied = TRUE;
  if (tc->timer)
    {
      g_source_remove (tc->timer);
      tc->timer = 0;
    }
  for (guint i = 0; tc->members && i < tc->members->len; i++)
    {
      Member *m = g_ptr_array_index (tc->members, i);
      if (!m->done)
        json_array_add_string_element (timed_out, m->id);
    }
  out = json_object_new ();
  json_object_set_string_member (out, "message", tc->message);
  if (tc->moderation_mode)
    json_object_set_string_member (out, "moderation_mode", tc->moderation_mode);
  json_object_set_int_member (out, "count", tc->members ? tc->members->len : 0);
  json_object_set_object_member (out, "responses", json_object_ref (tc->responses));
  json_object_set_object_member (out, "errors", json_object_ref (tc->errors));
  json_object_set_array_member (out, "timed_out", timed_out);
  ens_http_on_event (tc->call, NULL, NULL);
  reply_object (tc->call, 200, out);
}

static void
team_chat_check (TeamChat *tc)
{
  if (tc->next < tc->members->len)
    return; /* still starting tasks */
  for (guint i = 0; i < tc->members->len; i++)
    if (!((Member *) g_ptr_array_index (tc->members, i))->done)
      return;
  team_chat_reply (tc);
}

static gboolean
team_chat_timeout (gpointer data)
{
  TeamChat *tc = data;

  tc->timer = 0;
  team_chat_reply (tc);
  return G_SOURCE_REMOVE;
}

static void
team_chat_gone (EnsHttpCall *call, gpointer data)
{
  TeamChat *tc = data;

  (void) call;
  tc->replied = TRUE; /* nobody to answer; the tasks finish in their sessions */
  if (tc->timer)
    {
      g_source_remove (tc->timer);
      tc->timer = 0;
    }
}

static void team_chat_start_next (TeamChat *tc);

static void
team_chat_executed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  TeamChat *tc = data;
  Member *m = g_ptr_array_index (tc->members, tc->next);

  (void) call;
  if (tc->replied)
    return;
  tc->next++;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      JsonObject *e = json_object_new ();
      json_object_set_string_member (e, "code", answer->error_code);
      json_object_set_string_member (e, "error", answer->error_message ? answer->error_message : answer->error_code);
      json_object_set_object_member (tc->errors, m->id, e);
      m->done = TRUE;
    }
  else
    m->task_id = g_strdup (ens_member_string (answer_object (answer), "task_id"));
  team_chat_start_next (tc);
}

static void
team_chat_start_next (TeamChat *tc)
{
  Member *m;
  JsonObject *d;
  g_autoptr (JsonNode) data = NULL;

  if (tc->next >= tc->members->len)
    {
      team_chat_check (tc);
      return;
    }
  /* One request at a time per call; each ack is immediate, the tasks then
   * run side by side. */
  m = g_ptr_array_index (tc->members, tc->next);
  d = json_object_new ();
  json_object_set_string_member (d, "session_id", m->id);
  json_object_set_string_member (d, "task", tc->message);
  data = ens_node_take_object (d);
  ens_http_core (tc->call, NULL, "sessions.execute", data, 0, team_chat_executed, tc);
}

static void
team_chat_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  TeamChat *tc = data;
  JsonObject *ev = answer_object (event);
  const char *sid, *type, *task;

  (void) call;
  if (tc->replied || ev == NULL)
    return;
  sid = ens_member_string_or (ev, "sessionId", "");
  type = ens_member_string_or (ev, "type", "");
  task = ens_member_string_or (ev, "taskId", "");
  if (strcmp (type, "task_completed") != 0 && strcmp (type, "task_failed") != 0)
    return;
  for (guint i = 0; i < tc->members->len; i++)
    {
      Member *m = g_ptr_array_index (tc->members, i);
      if (m->done || m->task_id == NULL || strcmp (m->id, sid) != 0 || strcmp (m->task_id, task) != 0)
        continue;
      m->done = TRUE;
      if (strcmp (type, "task_completed") == 0)
        {
          JsonObject *result = ens_member_object (ev, "result");
          JsonObject *r = json_object_new ();
          json_object_set_string_member (r, "content",
                                         result ? ens_member_string_or (result, "response", "") : "");
          json_object_set_string_member (r, "name", m->name);
          json_object_set_string_member (r, "socket_id", m->id);
          copy_result (r, result);
          json_object_set_object_member (tc->responses, m->id, r);
        }
      else
        {
          JsonObject *e = json_object_new ();
          json_object_set_string_member (e, "code", ens_member_string_or (ev, "code", "TASK_FAILED"));
          json_object_set_string_member (e, "error", ens_member_string_or (ev, "error", ""));
          json_object_set_object_member (tc->errors, m->id, e);
        }
      team_chat_check (tc);
      return;
    }
}

static void
team_chat_subscribed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  TeamChat *tc = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      tc->replied = TRUE;
      seed_error (call, answer, rhetor_names);
      return;
    }
  tc->timer = g_timeout_add (tc->timeout_ms, team_chat_timeout, tc);
  team_chat_start_next (tc);
}

static void
team_chat_listed (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  TeamChat *tc = data;
  JsonArray *sessions, *topics;
  JsonObject *sub;
  g_autoptr (JsonNode) sub_node = NULL;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      tc->replied = TRUE;
      seed_error (call, answer, rhetor_names);
      return;
    }
  sessions = ens_member_array (answer_object (answer), "sessions");
  topics = json_array_new ();
  for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      g_autofree char *topic = NULL;
      Member *m;
      if (!rhetor_socket (rec) || !rhetor_active (rec))
        continue;
      m = g_new0 (Member, 1);
      m->id = g_strdup (ens_member_string (rec, "session_id"));
      m->name = g_strdup (ens_member_string_or (rec, "session_type", ""));
      g_ptr_array_add (tc->members, m);
      topic = g_strdup_printf ("session.%s.*", m->id);
      json_array_add_string_element (topics, topic);
    }
  if (tc->members->len == 0)
    {
      json_array_unref (topics);
      team_chat_reply (tc);
      return;
    }
  sub = json_object_new ();
  json_object_set_array_member (sub, "topics", topics);
  sub_node = ens_node_take_object (sub);
  ens_http_on_event (call, team_chat_event, tc);
  ens_http_core (call, NULL, "subscribe", sub_node, 0, team_chat_subscribed, tc);
}

static void
route_team_chat (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call);
  const char *message, *mode;
  gboolean has_timeout;
  double timeout = TEAM_CHAT_DEFAULT_S;
  TeamChat *tc;

  if (body == NULL || !get_string (call, body, "message", TRUE, &message) ||
      !get_string (call, body, "moderation_mode", FALSE, &mode) ||
      !get_number (call, body, "timeout", 0.001, TEAM_CHAT_MAX_S, "a number of seconds from 0.001 to 3600",
                   &has_timeout, &timeout))
    return;
  tc = g_new0 (TeamChat, 1);
  tc->call = call;
  tc->message = g_strdup (message);
  tc->moderation_mode = g_strdup (mode);
  tc->timeout_ms = (guint) (timeout * 1000.0);
  tc->members = g_ptr_array_new_with_free_func ((GDestroyNotify) member_free);
  tc->responses = json_object_new ();
  tc->errors = json_object_new ();
  attach_state (call, "ens-team-chat", tc, team_chat_free);
  ens_http_on_disconnect (call, team_chat_gone, tc);
  ens_http_core (call, NULL, "sessions.list", NULL, 0, team_chat_listed, tc);
}

/* ================================================================== the table */

#define STR "{\"type\":\"string\"}"
#define STRV "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"

const EnsHttpRoute ens_http_routes_seeds[] = {
  /* KSI HTTP plan */
  { "POST", "/api/v1/spawn", route_ksi_spawn, "ksi",
    "Spawn a session running {task}: 202 {status:\"accepted\", session_id, task_id, request_id}; progress on session.<id>.*",
    "{\"type\":\"object\",\"required\":[\"task\"],\"properties\":{\"task\":" STR ",\"model\":" STR ",\"provider\":" STR
    ",\"session_type\":" STR ",\"agent_id\":" STR "}}", FALSE },
  { "POST", "/api/v1/agents/register", route_ksi_register, "ksi",
    "Register an agent {agent_id, role?, capabilities?} (persistent record, 201)",
    "{\"type\":\"object\",\"required\":[\"agent_id\"],\"properties\":{\"agent_id\":" STR ",\"role\":" STR
    ",\"capabilities\":" STRV "}}", FALSE },
  { "GET", "/api/v1/agents", route_ksi_agents, "ksi", "Registered agents {agents, count}", NULL, FALSE },
  { "GET", "/api/v1/status", route_ksi_status, "ksi",
    "Daemon status {status, uptime, agents, sessions, active_sessions, version, ...}", NULL, FALSE },

  /* Neolith */
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

  /* Rhetor / aish */
  { "POST", "/api/ai/socket/create", route_rhetor_create, "rhetor",
    "Create an AI socket (a session) {name | specialist?, model?, provider?, system?} -> {socket_id, websocket_url}",
    "{\"type\":\"object\",\"properties\":{\"name\":" STR ",\"specialist\":" STR ",\"model\":" STR ",\"provider\":" STR
    ",\"system\":" STR "}}", FALSE },
  { "GET", "/api/ai/specialists", route_rhetor_specialists, "rhetor",
    "AI sockets {count, specialists:[{id, name, active, status, model, ...}]}", NULL, FALSE },
  { "POST", "/api/ai/specialists/{id}/message", route_rhetor_message, "rhetor",
    "Send {message, temperature?} to an AI socket and wait for {response, socket_id, model, usage}",
    "{\"type\":\"object\",\"required\":[\"message\"],\"properties\":{\"message\":" STR
    ",\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2}}}", FALSE },
  { "POST", "/api/team-chat", route_team_chat, "rhetor",
    "Send {message, moderation_mode?, timeout? (s, default 30)} to every active AI socket at once -> "
    "{responses:{<id>:{content, model, ...}}, errors, timed_out}",
    "{\"type\":\"object\",\"required\":[\"message\"],\"properties\":{\"message\":" STR ",\"moderation_mode\":" STR
    ",\"timeout\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":3600}}}", FALSE },
  { NULL },
};
