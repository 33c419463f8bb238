/* ens-http-routes-ksi.c — KSI's HTTP plan: /api/v1/spawn, /api/v1/agents/register,
 * /api/v1/agents, /api/v1/status.  Each route is a row of the dialect
 * (ens_dialect_ksi_http, plugins/common/dialect/ens-dialect-ksi.c: core
 * verb, fields in and out, status); this file only names them.  A spawned
 * task's outcome is published on results:<session_id>. */
#include "ens-http-seeds.h"

/* Each route is the row named as it is ("POST /api/v1/spawn"). */
static void
route_ksi_row (EnsHttpCall *call)
{
  ens_seed_run_route (call, &ens_dialect_ksi_http);
}

/* ------------------------------------------------------------------ the table */

const EnsHttpRoute ens_http_routes_ksi[] = {
  { "POST", "/api/v1/spawn", route_ksi_row, "ksi",
    "Spawn a session running {task}: 202 {status:\"accepted\", session_id, task_id, request_id}; progress on session.<id>.*",
    "{\"type\":\"object\",\"required\":[\"task\"],\"properties\":{\"task\":" STR ",\"model\":" STR ",\"provider\":" STR
    ",\"session_type\":" STR ",\"agent_id\":" STR "}}", FALSE },
  { "POST", "/api/v1/agents/register", route_ksi_row, "ksi",
    "Register an agent {agent_id, role?, capabilities?} (persistent record, 201)",
    "{\"type\":\"object\",\"required\":[\"agent_id\"],\"properties\":{\"agent_id\":" STR ",\"role\":" STR
    ",\"capabilities\":" STRV "}}", FALSE },
  { "GET", "/api/v1/agents", route_ksi_row, "ksi", "Registered agents {agents, count}", NULL, FALSE },
  { "GET", "/api/v1/status", route_ksi_row, "ksi",
    "Daemon status {status, uptime, agents, sessions, active_sessions, version, ...}", NULL, FALSE },
  { NULL },
};
