/* ens-ws-neolith.c — the Neolith orchestrator-daemon protocol (wundr's
 * packages/@wundr/orchestrator-daemon: its types/index.ts, test client and
 * e2e script are the judges) on the WebSocket port: {type, payload}
 * messages mapped onto core verbs, the core's answers and session events as
 * wundr's WSResponse messages, field by field.
 *
 *   (open)          {"type":"health_check_response","healthy":true}, at once
 *   ping            {"type":"pong"}
 *   health_check    {"type":"health_check_response","healthy"}
 *   daemon_status   {"type":"daemon_status_update","status":DaemonStatus}
 *   spawn_session   sessions.spawn (its task runs at once) -> {"type":"session_spawned","session","sessionId"}
 *   execute_task    watch the session, sessions.execute -> task_executing at once, then to every watcher
 *                   stream_start, stream_chunk..., stream_end, tool_call_*, task_completed | task_failed,
 *                   session_status_update; a busy session queues the task
 *   session_status  sessions.status -> {"type":"session_status_update","session","sessionId"}
 *   stop_session    sessions.stop, stop watching -> exactly one session_status_update
 *   list_sessions   sessions.list -> {"type":"sessions_list","sessions"} (no Rhetor AI sockets)
 *   anything else   {"type":"error","error":"Unknown message type"}
 *   not {type}      {"type":"error","error":"Invalid message format"}
 * Errors also carry "code" (Ensemble's error code), outside wundr's type.
 *
 * Who gets what: the requester gets the answers; a connection watching a
 * session (it sent execute_task for it) gets the session's task and stream
 * messages from its first own task on, and its session_status_update after
 * each task; every other Neolith connection gets session_status_update when
 * a session is spawned, ends a task or stops (wundr's broadcasts), except
 * for sessions it spawned itself and Rhetor's.  Events published while this
 * connection's own verb runs (the core answers verbs before client_submit
 * returns) are that verb's: the answer says it once.
 * Session events are encoded once per event for every Neolith peer. */
#include "ens-ws-private.h"

#include <stdlib.h>
#include <string.h>

#define RHETOR_ORCHESTRATOR "rhetor"
#define EPISODIC_MAX 20

typedef struct {
  guint64 from_task; /* the first task of this connection's on the session (0: none yet) */
  GHashTable *mine;  /* task ids this connection asked for: their task_executing went with the answer */
} Watch;

struct _EnsWsNeolith {
  GHashTable *watch;       /* session id -> Watch* */
  GHashTable *spawned;     /* session ids this connection spawned */
  const char *verb_session; /* while a verb of this connection runs: the session it is about */
  gboolean verb_spawn;      /* while its spawn runs */
};

static void
watch_free (Watch *w)
{
  g_hash_table_unref (w->mine);
  g_free (w);
}

void
ens_ws_neolith_free (EnsWsNeolith *n)
{
  g_hash_table_unref (n->watch);
  g_hash_table_unref (n->spawned);
  g_free (n);
}

/* ================================================================== shapes */

/* "…T…:SS.uuuuuuZ" (the core's) -> "…T…:SS.mmmZ" (JavaScript's toJSON). */
static char *
js_time (const char *iso)
{
  const char *dot = iso ? strchr (iso, '.') : NULL;

  if (iso == NULL)
    return NULL;
  if (dot == NULL || strlen (dot) < 5)
    return g_strdup (iso);
  return g_strdup_printf ("%.*s.%.3sZ", (int) (dot - iso), iso, dot + 1);
}

static char *
js_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *text = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
  return js_time (text);
}

static void
set_time (JsonObject *to, const char *name, JsonObject *from, const char *member)
{
  g_autofree char *t = js_time (ens_member_string (from, member));
  if (t)
    json_object_set_string_member (to, name, t);
}

static gboolean
is_rhetor (JsonObject *record)
{
  return g_strcmp0 (ens_member_string (record, "orchestrator_id"), RHETOR_ORCHESTRATOR) == 0;
}

/* The core's task status and wundr's Task.status. */
static const char *const task_statuses[][2] = {
  { "running", "in_progress" }, { "completed", "completed" }, { "failed", "failed" },
  { "cancelled", "cancelled" }, { "interrupted", "failed" },
};

/* The core's session status (and its last task) and wundr's Session.status. */
static const char *
session_status (JsonObject *rec)
{
  const char *status = ens_member_string_or (rec, "status", "idle");
  JsonObject *task = ens_member_object (rec, "task");
  const char *task_status = ens_member_string (task, "status");

  if (strcmp (status, "stopped") == 0)
    return "terminated";
  if (strcmp (status, "failed") == 0 || strcmp (status, "interrupted") == 0)
    return "failed";
  if (strcmp (status, "idle") == 0 && g_strcmp0 (task_status, "completed") == 0)
    return "completed";
  return "running"; /* running, or idle with no task yet */
}

/* The session's current or last task as wundr's Task; "pending" when the
 * session has none yet. */
static JsonObject *
task_object (JsonObject *rec)
{
  JsonObject *task = ens_member_object (rec, "task"), *out = json_object_new ();
  const char *status = ens_member_string (task, "status");

  json_object_set_string_member (out, "id", ens_member_string_or (task, "id", ""));
  json_object_set_string_member (out, "type", ens_member_string_or (task, "type", "general"));
  json_object_set_string_member (out, "description", ens_member_string_or (task, "description", ""));
  json_object_set_string_member (out, "priority", ens_member_string_or (task, "priority", "medium"));
  if (ens_member_string (task, "assigned_to"))
    json_object_set_string_member (out, "assignedTo", ens_member_string (task, "assigned_to"));
  json_object_set_string_member (out, "status", "pending");
  for (guint i = 0; status && i < G_N_ELEMENTS (task_statuses); i++)
    if (strcmp (status, task_statuses[i][0]) == 0)
      json_object_set_string_member (out, "status", task_statuses[i][1]);
  set_time (out, "createdAt", task ? task : rec, "created_at");
  set_time (out, "updatedAt", task ? task : rec, task ? "updated_at" : "created_at");
  ens_member_copy (out, "metadata", task, "metadata");
  return out;
}

/* The last tasks' outcomes as wundr's episodic memory entries. */
static JsonArray *
episodic (JsonObject *rec)
{
  JsonArray *recent = ens_member_array (rec, "recent_tasks"), *out = json_array_new ();

  for (guint i = 0; recent && i < json_array_get_length (recent); i++)
    {
      JsonObject *t = ens_array_object (recent, i), *e, *meta;
      const char *status = ens_member_string_or (t, "status", "");
      gboolean ok = strcmp (status, "completed") == 0;
      g_autofree char *id = NULL, *content = NULL;

      if (!ok && strcmp (status, "failed") != 0)
        continue;
      e = json_object_new ();
      meta = json_object_new ();
      id = g_strconcat ("memory_", ens_member_string_or (t, "id", ""), NULL);
      content = g_strdup_printf ("Task: %s\nResult: %s", ens_member_string_or (t, "description", ""),
                                 ens_member_string_or (t, ok ? "response" : "error", ""));
      json_object_set_string_member (e, "id", id);
      json_object_set_string_member (e, "content", content);
      set_time (e, "timestamp", t, "ended_at");
      json_object_set_string_member (e, "type", "interaction");
      json_object_set_string_member (meta, "taskId", ens_member_string_or (t, "id", ""));
      json_object_set_int_member (meta, "tokensUsed", ens_member_int (t, "tokens_used", 0));
      json_object_set_int_member (meta, "toolCallsMade", 0);
      json_object_set_boolean_member (meta, "success", ok);
      json_object_set_object_member (e, "metadata", meta);
      json_array_add_object_element (out, e);
    }
  while (json_array_get_length (out) > EPISODIC_MAX)
    json_array_remove_element (out, 0);
  return out;
}

/* A core session record as wundr's Session. */
static JsonObject *
session_object (JsonObject *rec)
{
  JsonObject *out = json_object_new (), *memory = json_object_new (), *metrics = json_object_new ();
  JsonObject *m = ens_member_object (rec, "metrics");
  const char *orchestrator = ens_member_string (rec, "orchestrator_id");
  const char *type = ens_member_string (rec, "session_type");
  const char *status = session_status (rec);

  json_object_set_string_member (out, "id", ens_member_string_or (rec, "session_id", ens_member_string_or (rec, "id", "")));
  json_object_set_string_member (out, "orchestratorId", orchestrator && *orchestrator ? orchestrator : "default");
  json_object_set_object_member (out, "task", task_object (rec));
  json_object_set_string_member (out, "type", g_strcmp0 (type, "claude-flow") == 0 || g_strcmp0 (type, "ruflo") == 0
                                                ? type : "claude-code");
  json_object_set_string_member (out, "status", status);
  set_time (out, "startedAt", rec, "created_at");
  if (strcmp (status, "running") != 0)
    set_time (out, "endedAt", rec, "ended_at");
  json_object_set_object_member (memory, "scratchpad", json_object_new ());
  json_object_set_array_member (memory, "episodic", episodic (rec));
  json_object_set_array_member (memory, "semantic", json_array_new ());
  json_object_set_object_member (out, "memoryContext", memory);
  json_object_set_int_member (metrics, "tokensUsed", ens_member_int (m, "tokens_used", 0));
  json_object_set_int_member (metrics, "duration", ens_member_int (m, "duration_ms", 0));
  json_object_set_int_member (metrics, "tasksCompleted", ens_member_int (m, "tasks_completed", 0));
  json_object_set_int_member (metrics, "errorsEncountered", ens_member_int (m, "tasks_failed", 0));
  json_object_set_int_member (metrics, "averageResponseTime", ens_member_int (m, "avg_response_ms", 0));
  json_object_set_object_member (out, "metrics", metrics);
  return out;
}

/* {type, session, sessionId} */
static JsonNode *
session_message (const char *type, JsonObject *rec)
{
  JsonObject *obj, *session = session_object (rec);
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", type);
  json_object_set_object_member (obj, "session", session);
  json_object_set_string_member (obj, "sessionId", ens_member_string (session, "id"));
  return node;
}

static JsonObject *
subsystem (const char *status, const char *now)
{
  JsonObject *s = json_object_new ();

  json_object_set_string_member (s, "status", status);
  json_object_set_string_member (s, "lastCheck", now);
  return s;
}

/* The daemon's health, its sessions (sessions.list) and its providers
 * (providers.list) as wundr's DaemonStatus. */
static JsonObject *
daemon_status (JsonObject *health, JsonObject *list, JsonObject *providers)
{
  JsonObject *out = json_object_new (), *metrics = json_object_new (), *subsystems = json_object_new ();
  JsonObject *completions = ens_member_object (health, "completions");
  JsonObject *stats = ens_member_object (health, "session_stats");
  JsonArray *sessions = ens_member_array (list, "sessions"), *backends = ens_member_array (providers, "providers");
  const char *status = ens_member_string_or (health, "status", "healthy");
  g_autofree char *now = js_now ();
  g_autoptr (GDateTime) started = NULL;
  gint64 active = 0, ended = 0, spawned = 0, done = ens_member_int (stats, "tasks_completed", 0);
  gint64 failed = ens_member_int (stats, "tasks_failed", 0);
  double ended_ms = 0;
  gboolean real_llm = FALSE;
  JsonNode *up = health ? json_object_get_member (health, "uptime_s") : NULL;

  started = ens_member_string (health, "started_at") ? g_date_time_new_from_iso8601 (ens_member_string (health, "started_at"), NULL) : NULL;
  for (guint i = 0; sessions && i < json_array_get_length (sessions); i++)
    {
      JsonObject *rec = ens_array_object (sessions, i);
      const char *s = session_status (rec);
      g_autoptr (GDateTime) created = NULL, ended_at = NULL;

      if (rec == NULL || is_rhetor (rec))
        continue;
      active += strcmp (s, "running") == 0;
      created = ens_member_string (rec, "created_at") ? g_date_time_new_from_iso8601 (ens_member_string (rec, "created_at"), NULL) : NULL;
      ended_at = ens_member_string (rec, "ended_at") ? g_date_time_new_from_iso8601 (ens_member_string (rec, "ended_at"), NULL) : NULL;
      if (created && started && g_date_time_compare (created, started) >= 0)
        spawned++;
      if (created && ended_at && strcmp (s, "running") != 0)
        {
          ended++;
          ended_ms += g_date_time_difference (ended_at, created) / 1000.0;
        }
    }
  for (guint i = 0; backends && i < json_array_get_length (backends); i++)
    {
      JsonObject *b = ens_array_object (backends, i);
      if (b && !ens_member_bool (b, "local", FALSE))
        real_llm = TRUE;
    }

  json_object_set_string_member (out, "status", strcmp (status, "healthy") == 0    ? "running"
                                                : strcmp (status, "degraded") == 0 ? "degraded"
                                                                                   : "stopped");
  json_object_set_int_member (out, "uptime", up && JSON_NODE_HOLDS_VALUE (up) ? (gint64) (json_node_get_double (up) * 1000 + 0.5) : 0);
  json_object_set_int_member (out, "activeSessions", active);
  json_object_set_int_member (out, "queuedTasks", ens_member_int (completions, "queued", 0) + ens_member_int (stats, "tasks_queued", 0));
  json_object_set_int_member (metrics, "totalSessionsSpawned", spawned);
  json_object_set_int_member (metrics, "totalTasksProcessed", done);
  json_object_set_int_member (metrics, "totalTokensUsed", ens_member_int (completions, "input_tokens", 0) +
                                                             ens_member_int (completions, "output_tokens", 0));
  json_object_set_int_member (metrics, "averageSessionDuration", ended ? (gint64) (ended_ms / ended + 0.5) : 0);
  json_object_set_int_member (metrics, "activeSessions", active);
  json_object_set_double_member (metrics, "successRate", done + failed ? (double) done / (double) (done + failed) : 1.0);
  json_object_set_object_member (out, "metrics", metrics);
  json_object_set_object_member (subsystems, "websocket", subsystem ("running", now));
  json_object_set_object_member (subsystems, "sessionManager", subsystem ("running", now));
  json_object_set_object_member (subsystems, "memoryManager", subsystem ("running", now));
  json_object_set_object_member (subsystems, "llmClient", subsystem (real_llm ? "running" : "degraded", now));
  json_object_set_object_member (subsystems, "mcpRegistry", subsystem ("stopped", now));
  json_object_set_object_member (out, "subsystems", subsystems);
  return out;
}

/* A session event as wundr's message; (transfer full), NULL when wundr has
 * none for it. */
static JsonNode *
event_message (JsonObject *ev)
{
  const char *type = ens_member_string_or (ev, "type", "");
  const char *sid = ens_member_string_or (ev, "sessionId", "");
  JsonObject *obj, *inner, *meta;
  JsonNode *node;

  if (strcmp (type, "session_status_update") == 0 || strcmp (type, "session_spawned") == 0)
    return ens_member_object (ev, "session") ? session_message ("session_status_update", ens_member_object (ev, "session"))
                                             : NULL;
  if (strcmp (type, "task_queued") == 0)
    return NULL;
  node = ens_node_new_object (&obj);
  json_object_set_string_member (obj, "type", type);
  if (strcmp (type, "stream_chunk") == 0)
    {
      JsonObject *m = ens_member_object (ev, "metadata");
      inner = json_object_new ();
      meta = json_object_new ();
      json_object_set_string_member (inner, "sessionId", sid);
      json_object_set_string_member (inner, "chunk", ens_member_string_or (ev, "chunk", ""));
      json_object_set_string_member (meta, "type", "text");
      json_object_set_int_member (meta, "index", ens_member_int (m, "index", 0));
      json_object_set_object_member (inner, "metadata", meta);
      json_object_set_object_member (obj, "data", inner);
    }
  else if (strcmp (type, "stream_start") == 0 || strcmp (type, "stream_end") == 0)
    {
      json_object_set_string_member (obj, "sessionId", sid);
      meta = json_object_new ();
      ens_member_copy (meta, "taskId", ev, "taskId");
      ens_member_copy (meta, "requestId", ev, "request_id");
      ens_member_copy (meta, "finishReason", ev, "finish_reason");
      ens_member_copy (meta, "usage", ev, "usage");
      json_object_set_object_member (obj, "metadata", meta);
    }
  else if (strcmp (type, "tool_call_start") == 0 || strcmp (type, "tool_call_result") == 0)
    {
      JsonObject *d = ens_member_object (ev, "data");
      g_autofree char *now = js_now ();
      gboolean start = strcmp (type, "tool_call_start") == 0;
      inner = json_object_new ();
      json_object_set_string_member (inner, "sessionId", sid);
      json_object_set_string_member (inner, "toolName", ens_member_string_or (d, "name", ""));
      if (start)
        {
          JsonObject *input = json_object_new ();
          ens_member_copy (input, "toolId", d, "id");
          json_object_set_object_member (inner, "toolInput", input);
        }
      json_object_set_string_member (inner, "status", start ? "started" : ens_member_string (d, "error") ? "failed" : "completed");
      ens_member_copy (inner, "result", d, "result");
      ens_member_copy (inner, "error", d, "error");
      json_object_set_string_member (inner, "timestamp", now);
      json_object_set_object_member (obj, "data", inner);
    }
  else if (strcmp (type, "task_executing") == 0 || strcmp (type, "task_completed") == 0 ||
           strcmp (type, "task_failed") == 0)
    {
      json_object_set_string_member (obj, "sessionId", sid);
      json_object_set_string_member (obj, "taskId", ens_member_string_or (ev, "taskId", ""));
      if (strcmp (type, "task_completed") == 0)
        ens_member_copy (obj, "result", ev, "result");
      else if (strcmp (type, "task_failed") == 0)
        json_object_set_string_member (obj, "error", ens_member_string_or (ev, "error", "the task failed"));
    }
  else
    {
      json_node_unref (node);
      return NULL;
    }
  return node;
}

/* An EnsEncodeFunc: a session event as wundr's frame (empty: none), made
 * once per event for every Neolith peer. */
static GBytes *
encode_event (EnsMessage *msg)
{
  JsonObject *ev = msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
  g_autoptr (JsonNode) node = ev ? event_message (ev) : NULL;

  return node ? ens_ws_node_bytes (node) : g_bytes_new_static ("", 0);
}

/* ================================================================== sending */

static void
send_simple (EnsWsConn *c, const char *type)
{
  JsonObject *obj;
  g_autoptr (JsonNode) node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", type);
  ens_ws_send_node (c, node);
}

static void
send_health (EnsWsConn *c, gboolean healthy)
{
  JsonObject *obj;
  g_autoptr (JsonNode) node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", "health_check_response");
  json_object_set_boolean_member (obj, "healthy", healthy);
  ens_ws_send_node (c, node);
}

/* {type:"error", error, code} */
static void
send_error (EnsWsConn *c, const char *code, const char *error)
{
  ens_ws_send_error (c, code, error, NULL, NULL);
}

static void
send_invalid (EnsWsConn *c, const char *code)
{
  send_error (c, code, "Invalid message format");
}

static void
send_task (EnsWsConn *c, const char *type, const char *sid, const char *task_id, const char *error)
{
  JsonObject *obj;
  g_autoptr (JsonNode) node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", type);
  json_object_set_string_member (obj, "sessionId", sid);
  json_object_set_string_member (obj, "taskId", task_id);
  if (error)
    json_object_set_string_member (obj, "error", error);
  ens_ws_send_node (c, node);
}

/* Probes @action on a client of its own; (transfer full) the reply's data
 * object, or NULL. */
static JsonNode *
probe_data (EnsWs *ws, const char *action)
{
  EnsMessage *answer = ens_ws_probe (ws, action, NULL);
  JsonNode *data = NULL;

  if (answer && answer->kind == ENS_MESSAGE_REPLY && answer->data && JSON_NODE_HOLDS_OBJECT (answer->data))
    data = json_node_ref (answer->data);
  if (answer)
    ws->host->message_unref (answer);
  return data;
}

/* (transfer full) {"type":"daemon_status_update","status"} from @health. */
static JsonNode *
daemon_status_message (EnsWs *ws, JsonObject *health)
{
  g_autoptr (JsonNode) list = probe_data (ws, "sessions.list");
  g_autoptr (JsonNode) providers = probe_data (ws, "providers.list");
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", "daemon_status_update");
  json_object_set_object_member (obj, "status",
                                 daemon_status (health, list ? json_node_get_object (list) : NULL,
                                                providers ? json_node_get_object (providers) : NULL));
  return node;
}

/* ================================================================== answers */

static guint64
task_number (const char *task_id)
{
  return task_id && g_str_has_prefix (task_id, "task_") ? g_ascii_strtoull (task_id + 5, NULL, 10) : 0;
}

static Watch *
watch_of (EnsWsConn *c, const char *sid)
{
  return sid ? g_hash_table_lookup (c->neolith->watch, sid) : NULL;
}

static void
unwatch (EnsWsConn *c, const char *sid)
{
  g_hash_table_remove (c->neolith->watch, sid);
  ens_ws_unwatch_session (c, sid);
}

/* The wundr text for a refused execute. */
static char *
execute_refusal (EnsMessage *answer, const char *sid)
{
  if (g_strcmp0 (answer->error_code, "SESSION_NOT_FOUND") == 0)
    return g_strdup_printf ("Session not found: %s", sid);
  if (g_strcmp0 (answer->error_code, "SESSION_STOPPED") == 0)
    return g_strdup_printf ("Session %s is not running (status: terminated)", sid);
  return g_strdup (answer->error_message ? answer->error_message : answer->error_code);
}

void
ens_ws_neolith_answer (EnsWsConn *c, EnsWsPending *p, EnsMessage *answer)
{
  JsonObject *data = answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data) : NULL;

  if (p->kind == ENS_WS_PENDING_IGNORE)
    return;
  if (p->kind == ENS_WS_PENDING_EXECUTE)
    {
      Watch *w = watch_of (c, p->session_id);
      const char *task_id = ens_member_string (data, "task_id");

      if (answer->kind == ENS_MESSAGE_ERROR || task_id == NULL)
        {
          /* wundr: task_executing, then task_failed (its taskId: the task's
           * text, as the core made no task) */
          g_autofree char *error = execute_refusal (answer, p->session_id);
          send_task (c, "task_executing", p->session_id, p->task, NULL);
          send_task (c, "task_failed", p->session_id, p->task, error);
          if (w && w->from_task == 0)
            unwatch (c, p->session_id);
          return;
        }
      if (w)
        {
          g_hash_table_add (w->mine, g_strdup (task_id));
          if (w->from_task == 0)
            w->from_task = task_number (task_id);
        }
      send_task (c, "task_executing", p->session_id, task_id, NULL);
      return;
    }
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      g_autofree char *error = NULL;
      if (g_strcmp0 (answer->error_code, "SESSION_NOT_FOUND") == 0 && p->session_id)
        error = g_strdup_printf ("Session not found: %s", p->session_id);
      send_error (c, answer->error_code, error ? error : answer->error_message ? answer->error_message : answer->error_code);
      return;
    }
  switch (p->kind)
    {
    case ENS_WS_PENDING_SPAWN:
      {
        /* With a task the answer is the execute ack and the record. */
        JsonObject *rec = ens_member_object (data, "session") ? ens_member_object (data, "session") : data;
        g_autoptr (JsonNode) node = session_message ("session_spawned", rec);
        const char *sid = ens_member_string (rec, "session_id");
        if (sid)
          g_hash_table_add (c->neolith->spawned, g_strdup (sid));
        ens_ws_send_node (c, node);
      }
      break;
    case ENS_WS_PENDING_STATUS:
    case ENS_WS_PENDING_STOP:
      {
        g_autoptr (JsonNode) node = session_message ("session_status_update", data);
        ens_ws_send_node (c, node);
      }
      break;
    case ENS_WS_PENDING_DAEMON_STATUS:
      {
        g_autoptr (JsonNode) node = daemon_status_message (c->ws, data);
        ens_ws_send_node (c, node);
      }
      break;
    case ENS_WS_PENDING_LIST:
      {
        JsonObject *obj;
        g_autoptr (JsonNode) node = ens_node_new_object (&obj);
        JsonArray *in = ens_member_array (data, "sessions"), *out = json_array_new ();
        for (guint i = 0; in && i < json_array_get_length (in); i++)
          {
            JsonObject *rec = ens_array_object (in, i);
            if (rec && !is_rhetor (rec))
              json_array_add_object_element (out, session_object (rec));
          }
        json_object_set_string_member (obj, "type", "sessions_list");
        json_object_set_array_member (obj, "sessions", out);
        ens_ws_send_node (c, node);
      }
      break;
    default:
      break;
    }
}

/* ================================================================== events */

void
ens_ws_neolith_event (EnsWsConn *c, EnsMessage *msg)
{
  EnsWsNeolith *n = c->neolith;
  JsonObject *ev = msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
  const char *type = ens_member_string_or (ev, "type", "");
  const char *sid = ens_member_string_or (ev, "sessionId", "");
  const char *task_id = ens_member_string (ev, "taskId");
  Watch *w = watch_of (c, sid);
  GBytes *bytes;

  if (ev == NULL || n->verb_spawn || g_strcmp0 (n->verb_session, sid) == 0)
    return; /* this connection's own verb: its answer says it */
  if (strcmp (type, "session_status_update") == 0 || strcmp (type, "session_spawned") == 0)
    {
      JsonObject *rec = ens_member_object (ev, "session");
      if (rec == NULL || is_rhetor (rec) || g_strcmp0 (ens_member_string (ev, "status"), "running") == 0)
        return; /* wundr tells of spawns, ends and stops; Rhetor's are not Neolith's */
      if (w == NULL && g_hash_table_contains (n->spawned, sid))
        return; /* the spawner learnt of it from session_spawned */
    }
  else
    {
      if (w == NULL || (task_id && task_number (task_id) < w->from_task) || w->from_task == 0)
        return; /* not watched, or a task from before this connection watched */
      if (strcmp (type, "task_executing") == 0 && task_id && g_hash_table_contains (w->mine, task_id))
        return; /* said with the answer to execute_task */
    }
  bytes = c->ws->host->message_encode (msg, encode_event);
  if (g_bytes_get_size (bytes) > 0)
    ens_ws_send (c, bytes, TRUE);
}

/* ================================================================== requests */

/* A task: a string, or Neolith's Task object (its description); NULL when
 * missing, not one of those, or empty. (transfer none) */
static const char *
task_text (JsonObject *payload)
{
  JsonNode *n = payload ? json_object_get_member (payload, "task") : NULL;
  const char *text = NULL;

  if (n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
    text = json_node_get_string (n);
  else if (n && JSON_NODE_HOLDS_OBJECT (n))
    text = ens_member_string (json_node_get_object (n), "description");
  return text && *text ? text : NULL;
}

/* Runs @action with @data for this connection; events for @sid (or any
 * new session, @spawn) published meanwhile are the verb's own. */
static void
run_verb (EnsWsConn *c, const char *action, JsonNode *data, EnsWsPending *p, const char *sid, gboolean spawn)
{
  c->neolith->verb_session = sid;
  c->neolith->verb_spawn = spawn;
  ens_ws_core (c, action, data, p);
  c->neolith->verb_session = NULL;
  c->neolith->verb_spawn = FALSE;
}

/* @member of @from as @name, unless absent, null or "" (wundr's `x || default`);
 * a value of the wrong type goes on, for the core to refuse. */
static void
set_nonempty (JsonObject *to, const char *name, JsonObject *from, const char *member)
{
  JsonNode *n = from ? json_object_get_member (from, member) : NULL;
  const char *v = ens_member_string (from, member);

  if (n && !JSON_NODE_HOLDS_NULL (n) && !(v && *v == '\0'))
    json_object_set_member (to, name, json_node_copy (n));
}

static void
spawn_session (EnsWsConn *c, JsonObject *payload)
{
  JsonObject *params, *meta = json_object_new ();
  g_autoptr (JsonNode) data = ens_node_new_object (&params);
  JsonNode *task = json_object_get_member (payload, "task");
  JsonObject *task_obj = task && JSON_NODE_HOLDS_OBJECT (task) ? json_node_get_object (task) : NULL;
  const char *orchestrator = ens_member_string (payload, "orchestratorId");
  const char *type = ens_member_string (payload, "sessionType");
  const char *text = task_text (payload);

  json_object_set_string_member (params, "orchestrator_id", orchestrator && *orchestrator ? orchestrator : "default");
  json_object_set_string_member (params, "session_type", g_strcmp0 (type, "claude-flow") == 0 || g_strcmp0 (type, "ruflo") == 0
                                                           ? type : "claude-code");
  set_nonempty (params, "model", payload, "model");
  set_nonempty (params, "provider", payload, "provider");
  if (text)
    json_object_set_string_member (params, "task", text);
  set_nonempty (meta, "type", task_obj, "type");
  set_nonempty (meta, "priority", task_obj, "priority");
  set_nonempty (meta, "assigned_to", task_obj, "assignedTo");
  ens_member_copy (meta, "metadata", task_obj, "metadata");
  json_object_set_object_member (params, "task_meta", meta);
  run_verb (c, "sessions.spawn", data, ens_ws_pending_new (ENS_WS_PENDING_SPAWN, NULL), NULL, TRUE);
}

static void
execute_task (EnsWsConn *c, const char *sid, JsonObject *payload)
{
  const char *text = task_text (payload);
  JsonObject *params;
  g_autoptr (JsonNode) data = NULL;
  JsonObject *context = ens_member_object (payload, "context");
  EnsWsPending *p;

  if (text == NULL)
    {
      send_invalid (c, ENS_ERR_INVALID_PARAMETERS);
      return;
    }
  if (watch_of (c, sid) == NULL)
    {
      Watch *w = g_new0 (Watch, 1);
      w->mine = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (c->neolith->watch, g_strdup (sid), w);
      ens_ws_watch_session (c, sid);
    }
  data = ens_node_new_object (&params);
  json_object_set_string_member (params, "session_id", sid);
  json_object_set_string_member (params, "task", text);
  if (context)
    {
      JsonObject *meta = json_object_new (), *metadata = json_object_new ();
      json_object_set_object_member (metadata, "executionContext", json_object_ref (context));
      json_object_set_object_member (meta, "metadata", metadata);
      json_object_set_object_member (params, "task_meta", meta);
    }
  p = ens_ws_pending_new (ENS_WS_PENDING_EXECUTE, sid);
  p->task = g_strdup (text);
  run_verb (c, "sessions.execute", data, p, sid, FALSE);
}

void
ens_ws_neolith_message (EnsWsConn *c, const char *text, gsize len)
{
  const EnsHost *host = c->ws->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (text, len, &error);
  JsonObject *obj = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonObject *payload = ens_member_object (obj, "payload");
  const char *type = ens_member_string (obj, "type");
  const char *sid = ens_member_string (payload, "sessionId");

  if (root == NULL)
    {
      send_invalid (c, ENS_ERR_INVALID_JSON);
      return;
    }
  if (type == NULL)
    {
      send_invalid (c, ENS_ERR_INVALID_REQUEST);
      return;
    }
  if (strcmp (type, "ping") == 0)
    send_simple (c, "pong");
  else if (strcmp (type, "health_check") == 0)
    {
      g_autoptr (JsonNode) health = probe_data (c->ws, "health");
      const char *status = health ? ens_member_string (json_node_get_object (health), "status") : NULL;
      send_health (c, g_strcmp0 (status, "healthy") == 0 || g_strcmp0 (status, "degraded") == 0);
    }
  else if (strcmp (type, "daemon_status") == 0)
    ens_ws_core (c, "health", NULL, ens_ws_pending_new (ENS_WS_PENDING_DAEMON_STATUS, NULL));
  else if (strcmp (type, "list_sessions") == 0)
    ens_ws_core (c, "sessions.list", NULL, ens_ws_pending_new (ENS_WS_PENDING_LIST, NULL));
  else if (strcmp (type, "spawn_session") == 0 || strcmp (type, "execute_task") == 0 ||
           strcmp (type, "session_status") == 0 || strcmp (type, "stop_session") == 0)
    {
      g_autoptr (JsonNode) data = NULL;

      if (payload == NULL || (strcmp (type, "spawn_session") != 0 && (sid == NULL || *sid == '\0')))
        send_invalid (c, ENS_ERR_INVALID_PARAMETERS);
      else if (strcmp (type, "spawn_session") == 0)
        spawn_session (c, payload);
      else if (strcmp (type, "execute_task") == 0)
        execute_task (c, sid, payload);
      else if (strcmp (type, "session_status") == 0)
        {
          data = ens_ws_session_params (sid, NULL);
          ens_ws_core (c, "sessions.status", data, ens_ws_pending_new (ENS_WS_PENDING_STATUS, sid));
        }
      else
        {
          /* One answer: what the stop publishes is its own, and the
           * connection stops watching before the cancelled task ends. */
          data = ens_ws_session_params (sid, NULL);
          run_verb (c, "sessions.stop", data, ens_ws_pending_new (ENS_WS_PENDING_STOP, sid), sid, FALSE);
          if (watch_of (c, sid))
            unwatch (c, sid);
        }
    }
  else
    send_error (c, ENS_ERR_UNKNOWN_ACTION, "Unknown message type");
}

/* ================================================================== open, tick */

void
ens_ws_neolith_open (EnsWsConn *c)
{
  c->neolith = g_new0 (EnsWsNeolith, 1);
  c->neolith->watch = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) watch_free);
  c->neolith->spawned = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* The orchestrator-daemon greets at once, before reading anything. */
  send_health (c, TRUE);
  /* Its broadcasts: a session spawned, a task's end, a stop. */
  ens_ws_subscribe (c, "session.*.session_spawned");
  ens_ws_subscribe (c, "session.*.session_status_update");
}

gboolean
ens_ws_neolith_status_tick (gpointer data)
{
  EnsWs *ws = data;
  GHashTableIter iter;
  gpointer key;
  gboolean any = FALSE;
  g_autoptr (JsonNode) health = NULL;
  g_autoptr (JsonNode) node = NULL;
  g_autoptr (GBytes) bytes = NULL;

  g_hash_table_iter_init (&iter, ws->conns);
  while (!any && g_hash_table_iter_next (&iter, &key, NULL))
    any = ((EnsWsConn *) key)->kind == ENS_WS_NEOLITH;
  if (!any || (health = probe_data (ws, "health")) == NULL)
    return G_SOURCE_CONTINUE;
  node = daemon_status_message (ws, json_node_get_object (health));
  bytes = ens_ws_node_bytes (node);
  /* The same bytes for everyone, as an event: a slow reader may miss one. */
  g_hash_table_iter_init (&iter, ws->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (((EnsWsConn *) key)->kind == ENS_WS_NEOLITH)
      ens_ws_send (key, bytes, TRUE);
  return G_SOURCE_CONTINUE;
}
