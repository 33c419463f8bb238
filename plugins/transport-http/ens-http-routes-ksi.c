/* ens-http-routes-ksi.c — KSI's HTTP plan: /api/v1/spawn, /api/v1/agents/register,
 * /api/v1/agents, /api/v1/status, a thin translation onto core verbs.  KSI's
 * agents are persistent agent records; a spawned task's outcome is published
 * on results:<session_id>. */
#include "ens-http-seeds.h"

#include <string.h>

static void
ksi_spawned (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_ksi_names);
      return;
    }
  out = json_object_new ();
  json_object_set_string_member (out, "status", "accepted");
  for (const char *const *k = (const char *const[]){ "session_id", "task_id", "request_id", "watch", NULL }; *k; k++)
    ens_member_copy (out, *k, in, *k);
  if (json_object_has_member (in, "session_id"))
    {
      g_autofree char *topic = g_strconcat ("results:", ens_member_string (in, "session_id"), NULL);
      json_object_set_string_member (out, "result_topic", topic);
    }
  ens_seed_reply_object (call, 202, out);
}

/* POST /api/v1/spawn {task, model?, provider?, session_type?, agent_id?}:
 * a session that runs the task at once; progress on session.<id>.*. */
static void
route_ksi_spawn (EnsHttpCall *call)
{
  JsonObject *body = ens_http_body (call), *d;
  const char *task, *model, *provider, *type, *agent;
  g_autoptr (JsonNode) data = NULL;

  if (body == NULL || !ens_seed_get_string (call, body, "task", TRUE, &task) ||
      !ens_seed_get_string (call, body, "model", FALSE, &model) || !ens_seed_get_string (call, body, "provider", FALSE, &provider) ||
      !ens_seed_get_string (call, body, "session_type", FALSE, &type) || !ens_seed_get_string (call, body, "agent_id", FALSE, &agent))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "task", task);
  ens_seed_set_string_if (d, "model", model);
  ens_seed_set_string_if (d, "provider", provider);
  ens_seed_set_string_if (d, "session_type", type);
  ens_seed_set_string_if (d, "orchestrator_id", agent);
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "sessions.spawn", data, 0, ksi_spawned, NULL);
}

static void
ksi_registered (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_ksi_names);
      return;
    }
  out = json_object_new ();
  json_object_set_string_member (out, "status", "registered");
  ens_member_copy (out, "agent_id", in, "name");
  ens_member_copy (out, "role", in, "description");
  ens_member_copy (out, "capabilities", in, "actions");
  ens_member_copy (out, "registered_at", in, "registered_at");
  json_object_set_member (out, "agent", json_node_copy (answer->data));
  ens_seed_reply_object (call, 201, out);
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

  if (body == NULL || !ens_seed_get_string (call, body, "agent_id", TRUE, &agent) ||
      !ens_seed_get_string (call, body, "role", FALSE, &role) || !ens_seed_get_strv (call, body, "capabilities", &caps))
    return;
  d = json_object_new ();
  json_object_set_string_member (d, "name", agent);
  json_object_set_boolean_member (d, "persistent", TRUE);
  ens_seed_set_string_if (d, "description", role);
  if (caps)
    json_object_set_array_member (d, "actions", json_array_ref (caps));
  data = ens_node_take_object (d);
  ens_http_core (call, NULL, "agents.register", data, 0, ksi_registered, NULL);
}

static void
ksi_agents (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;
  JsonArray *agents;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_ksi_names);
      return;
    }
  agents = ens_member_array (in, "agents");
  out = json_object_new ();
  json_object_set_array_member (out, "agents", json_array_ref (agents));
  json_object_set_int_member (out, "count", json_array_get_length (agents));
  ens_seed_reply_object (call, 200, out);
}

static void
route_ksi_agents (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "agents.list", NULL, 0, ksi_agents, NULL);
}

static void
ksi_status (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  JsonObject *in = ens_seed_answer_object (answer), *out;

  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_error (call, answer, ens_seed_ksi_names);
      return;
    }
  out = json_object_new ();
  ens_member_copy (out, "status", in, "status");
  ens_member_copy (out, "uptime", in, "uptime_s");
  for (const char *const *k = (const char *const[]){ "agents", "sessions", "active_sessions", "connections", "version",
                                                     "node_id", "started_at", "completions", NULL };
       *k; k++)
    ens_member_copy (out, *k, in, *k);
  ens_seed_reply_object (call, 200, out);
}

static void
route_ksi_status (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "health", NULL, 0, ksi_status, NULL);
}

/* ------------------------------------------------------------------ the table */

const EnsHttpRoute ens_http_routes_ksi[] = {
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
  { NULL },
};
