/* ens-dialect-neolith.c — the Neolith dialect: wundr's orchestrator-daemon
 * WebSocket protocol (packages/@wundr/orchestrator-daemon: its
 * src/types/index.ts, its test client and e2e script are the judges).
 *
 * In:  {"type", "payload"}; each type below is a core verb, its payload's
 *      fields renamed onto the verb's (a type not here: "Unknown message
 *      type"; a payload that does not fit: "Invalid message format").
 * Out: wundr's WSResponse messages, field by field: the core's session
 *      record as wundr's Session (camelCase, wundr's status values, dates as
 *      JavaScript writes them), the core's session events as wundr's stream,
 *      tool and task messages, the daemon's health as DaemonStatus.
 *
 * The tables are the dialect; the functions after them say what a table
 * cannot (a status from the record and its last task, a date's precision,
 * the episodic memory, the daemon's counters).  Which connection gets what
 * is the transport's (plugins/common/ws/ens-ws-neolith.c). */
#include "ens-dialect.h"

#include <string.h>

#define EPISODIC_MAX 20

/* ------------------------------------------------------------------ small functions */

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

static JsonNode *
string_node (const char *s)
{
  return json_node_init_string (json_node_alloc (), s);
}

static JsonNode *
take_string_node (char *s)
{
  JsonNode *n = s ? string_node (s) : NULL;
  g_free (s);
  return n;
}

static const char *
node_string (JsonNode *n)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n) : NULL;
}

char *
ens_dialect_neolith_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *text = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
  return js_time (text);
}

/* A core date as JavaScript writes it. */
static JsonNode *
js_date (JsonNode *v, JsonObject *from)
{
  (void) from;
  return take_string_node (js_time (node_string (v)));
}

static JsonNode *
js_now (JsonNode *v, JsonObject *from)
{
  (void) v;
  (void) from;
  return take_string_node (ens_dialect_neolith_now ());
}

/* wundr's `x || default`: absent, null and "" are nothing; a value of the
 * wrong type goes on, for the core to refuse. */
static JsonNode *
nonempty (JsonNode *v, JsonObject *from)
{
  const char *s = node_string (v);

  (void) from;
  if (v == NULL || JSON_NODE_HOLDS_NULL (v) || (s && *s == '\0'))
    return NULL;
  return json_node_copy (v);
}

static JsonNode *
object_only (JsonNode *v, JsonObject *from)
{
  (void) from;
  return v && JSON_NODE_HOLDS_OBJECT (v) ? json_node_copy (v) : NULL;
}

static JsonNode *
orchestrator_or_default (JsonNode *v, JsonObject *from)
{
  const char *s = node_string (v);

  (void) from;
  return string_node (s && *s ? s : "default");
}

/* wundr's session types; anything else is its default. */
static JsonNode *
session_type (JsonNode *v, JsonObject *from)
{
  const char *s = node_string (v);

  (void) from;
  return string_node (g_strcmp0 (s, "claude-flow") == 0 || g_strcmp0 (s, "ruflo") == 0 ? s : "claude-code");
}

/* A task: a string, or wundr's Task object (its description); nothing
 * when missing, not one of those, or empty. */
static JsonNode *
task_text (JsonNode *v, JsonObject *from)
{
  const char *text = node_string (v);

  (void) from;
  if (v && JSON_NODE_HOLDS_OBJECT (v))
    text = ens_member_string (json_node_get_object (v), "description");
  return text && *text ? string_node (text) : NULL;
}

/* The core's task status and wundr's Task.status (none yet: pending). */
static const char *const task_statuses[][2] = {
  { "running", "in_progress" }, { "completed", "completed" }, { "failed", "failed" },
  { "cancelled", "cancelled" }, { "interrupted", "failed" },
};

static JsonNode *
task_status (JsonNode *v, JsonObject *from)
{
  const char *s = node_string (v);

  (void) from;
  for (guint i = 0; s && i < G_N_ELEMENTS (task_statuses); i++)
    if (strcmp (s, task_statuses[i][0]) == 0)
      return string_node (task_statuses[i][1]);
  return string_node ("pending");
}

/* The core's session status, and its last task's, as wundr's Session.status. */
static const char *
status_of (JsonObject *rec)
{
  const char *status = ens_member_string_or (rec, "status", "idle");
  const char *task = ens_member_string (ens_member_object (rec, "task"), "status");

  if (strcmp (status, "stopped") == 0)
    return "terminated";
  if (strcmp (status, "failed") == 0 || strcmp (status, "interrupted") == 0)
    return "failed";
  if (strcmp (status, "idle") == 0 && g_strcmp0 (task, "completed") == 0)
    return "completed";
  return "running"; /* running, or idle with no task yet */
}

static JsonNode *
session_status (JsonNode *v, JsonObject *rec)
{
  (void) v;
  return string_node (status_of (rec));
}

/* endedAt: only once the session is not running. */
static JsonNode *
ended_at (JsonNode *v, JsonObject *rec)
{
  return strcmp (status_of (rec), "running") != 0 ? js_date (v, rec) : NULL;
}

/* The last tasks' outcomes as wundr's episodic memory entries. */
static JsonNode *
episodic (JsonNode *v, JsonObject *rec)
{
  JsonArray *recent = v && JSON_NODE_HOLDS_ARRAY (v) ? json_node_get_array (v) : NULL, *out = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  (void) rec;
  json_node_take_array (node, out);
  for (guint i = 0; recent && i < json_array_get_length (recent); i++)
    {
      JsonObject *t = ens_array_object (recent, i), *e, *meta;
      const char *status = ens_member_string_or (t, "status", "");
      gboolean ok = strcmp (status, "completed") == 0;
      g_autofree char *id = NULL, *content = NULL, *when = NULL;

      if (!ok && strcmp (status, "failed") != 0)
        continue;
      e = json_object_new ();
      meta = json_object_new ();
      id = g_strconcat ("memory_", ens_member_string_or (t, "id", ""), NULL);
      content = g_strdup_printf ("Task: %s\nResult: %s", ens_member_string_or (t, "description", ""),
                                 ens_member_string_or (t, ok ? "response" : "error", ""));
      json_object_set_string_member (e, "id", id);
      json_object_set_string_member (e, "content", content);
      if ((when = js_time (ens_member_string (t, "ended_at"))))
        json_object_set_string_member (e, "timestamp", when);
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
  return node;
}

/* ------------------------------------------------------------------ the Session table */

/* A core session record → wundr's Session (types/index.ts), one line a field. */
static const EnsField session_out[] = {
  ENS_MAP_OR ("session_id|id", "id", ANY, "\"\""),
  ENS_FUNC ("orchestrator_id", "orchestratorId", OPTIONAL, orchestrator_or_default),
  ENS_MAP_OR ("task.id", "task.id", ANY, "\"\""),
  ENS_MAP_OR ("task.type", "task.type", ANY, "\"general\""),
  ENS_MAP_OR ("task.description", "task.description", ANY, "\"\""),
  ENS_MAP_OR ("task.priority", "task.priority", ANY, "\"medium\""),
  ENS_MAP ("task.assigned_to", "task.assignedTo", STRING, OPTIONAL),
  ENS_FUNC ("task.status", "task.status", OPTIONAL, task_status),
  ENS_FUNC ("task.created_at|created_at", "task.createdAt", OPTIONAL, js_date),
  ENS_FUNC ("task.updated_at|created_at", "task.updatedAt", OPTIONAL, js_date),
  ENS_MAP ("task.metadata", "task.metadata", ANY, OPTIONAL),
  ENS_FUNC ("session_type", "type", OPTIONAL, session_type),
  ENS_FUNC (NULL, "status", OPTIONAL, session_status),
  ENS_FUNC ("created_at", "startedAt", OPTIONAL, js_date),
  ENS_FUNC ("ended_at", "endedAt", OPTIONAL, ended_at),
  ENS_SET ("memoryContext.scratchpad", "{}"),
  ENS_FUNC ("recent_tasks", "memoryContext.episodic", OPTIONAL, episodic),
  ENS_SET ("memoryContext.semantic", "[]"),
  ENS_MAP_OR ("metrics.tokens_used", "metrics.tokensUsed", ANY, "0"),
  ENS_MAP_OR ("metrics.duration_ms", "metrics.duration", ANY, "0"),
  ENS_MAP_OR ("metrics.tasks_completed", "metrics.tasksCompleted", ANY, "0"),
  ENS_MAP_OR ("metrics.tasks_failed", "metrics.errorsEncountered", ANY, "0"),
  ENS_MAP_OR ("metrics.avg_response_ms", "metrics.averageResponseTime", ANY, "0"),
  ENS_FIELDS_END,
};

gboolean
ens_dialect_neolith_is_rhetor (JsonObject *record)
{
  return g_strcmp0 (ens_member_string (record, "orchestrator_id"), ENS_RHETOR_ORCHESTRATOR) == 0;
}

static JsonNode *
session_of (JsonObject *rec)
{
  g_autoptr (JsonNode) in = json_node_init_object (json_node_alloc (), rec);
  return ens_dialect_reshape (session_out, 0, in);
}

/* session: the record at @v, or the object read itself (a spawn's answer
 * is the execute ack with the record in "session", or the record). */
static JsonNode *
session (JsonNode *v, JsonObject *from)
{
  JsonObject *rec = v && JSON_NODE_HOLDS_OBJECT (v) ? json_node_get_object (v) : from;
  return rec ? session_of (rec) : NULL;
}

static JsonNode *
session_id (JsonNode *v, JsonObject *from)
{
  JsonObject *rec = v && JSON_NODE_HOLDS_OBJECT (v) ? json_node_get_object (v) : from;
  const char *id = ens_member_string (rec, "session_id");
  return string_node (id ? id : ens_member_string_or (rec, "id", ""));
}

/* A record that is an event's "session": required (no record, no message). */
static JsonNode *
event_session (JsonNode *v, JsonObject *from)
{
  (void) from;
  return v && JSON_NODE_HOLDS_OBJECT (v) ? session_of (json_node_get_object (v)) : NULL;
}

static JsonNode *
event_session_id (JsonNode *v, JsonObject *from)
{
  return v && JSON_NODE_HOLDS_OBJECT (v) ? session_id (v, from) : NULL;
}

/* The sessions of a list, Rhetor's AI sockets left out. */
static JsonNode *
sessions (JsonNode *v, JsonObject *from)
{
  JsonArray *in = v && JSON_NODE_HOLDS_ARRAY (v) ? json_node_get_array (v) : NULL, *out = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  (void) from;
  json_node_take_array (node, out);
  for (guint i = 0; in && i < json_array_get_length (in); i++)
    {
      JsonObject *rec = ens_array_object (in, i);
      if (rec && !ens_dialect_neolith_is_rhetor (rec))
        json_array_add_element (out, session_of (rec));
    }
  return node;
}

/* ------------------------------------------------------------------ messages in → core verbs */

static const EnsField spawn_in[] = {
  ENS_MAP ("payload", NULL, OBJECT, REQUIRED),
  ENS_FUNC ("payload.orchestratorId", "orchestrator_id", OPTIONAL, orchestrator_or_default),
  ENS_FUNC ("payload.sessionType", "session_type", OPTIONAL, session_type),
  ENS_FUNC ("payload.model", "model", OPTIONAL, nonempty),
  ENS_FUNC ("payload.provider", "provider", OPTIONAL, nonempty),
  ENS_FUNC ("payload.task", "task", OPTIONAL, task_text),
  ENS_SET ("task_meta", "{}"),
  ENS_FUNC ("payload.task.type", "task_meta.type", OPTIONAL, nonempty),
  ENS_FUNC ("payload.task.priority", "task_meta.priority", OPTIONAL, nonempty),
  ENS_FUNC ("payload.task.assignedTo", "task_meta.assigned_to", OPTIONAL, nonempty),
  ENS_MAP ("payload.task.metadata", "task_meta.metadata", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField execute_in[] = {
  ENS_MAP ("payload", NULL, OBJECT, REQUIRED),
  ENS_MAP ("payload.sessionId", "session_id", STRING, REQUIRED),
  ENS_FUNC ("payload.task", "task", REQUIRED, task_text),
  ENS_FUNC ("payload.context", "task_meta.metadata.executionContext", OPTIONAL, object_only),
  ENS_FIELDS_END,
};

static const EnsField session_in[] = {
  ENS_MAP ("payload", NULL, OBJECT, REQUIRED),
  ENS_MAP ("payload.sessionId", "session_id", STRING, REQUIRED),
  ENS_FIELDS_END,
};

/* ------------------------------------------------------------------ the core's answers → wundr's */

static const EnsField spawned_out[] = {
  ENS_SET ("type", "\"session_spawned\""),
  ENS_FUNC ("session", "session", OPTIONAL, session),
  ENS_FUNC ("session", "sessionId", OPTIONAL, session_id),
  ENS_FIELDS_END,
};

static const EnsField status_out[] = {
  ENS_SET ("type", "\"session_status_update\""),
  ENS_FUNC (NULL, "session", OPTIONAL, session),
  ENS_FUNC (NULL, "sessionId", OPTIONAL, session_id),
  ENS_FIELDS_END,
};

static const EnsField list_out[] = {
  ENS_SET ("type", "\"sessions_list\""),
  ENS_FUNC ("sessions", "sessions", OPTIONAL, sessions),
  ENS_FIELDS_END,
};

static const EnsField executing_out[] = {
  ENS_SET ("type", "\"task_executing\""),
  ENS_MAP_OR ("session_id", "sessionId", ANY, "\"\""),
  ENS_MAP_OR ("task_id", "taskId", ANY, "\"\""),
  ENS_FIELDS_END,
};

/* The rows: wundr's message type → the core verb, its payload in, the
 * answer out (@answer: wundr's name for it).  ping is answered here;
 * health_check and daemon_status gather what they say from the core's
 * health (ens_dialect_neolith_daemon_status). */
static const EnsDialectEntry entries[] = {
  { "ping", NULL, NULL, NULL, NULL, NULL, "pong", ENS_DIALECT_ANSWERED_HERE },
  { "health_check", "health", NULL, NULL, NULL, NULL, "health_check_response", 0 },
  { "daemon_status", "health", NULL, NULL, NULL, NULL, "daemon_status_update", 0 },
  { "spawn_session", "sessions.spawn", NULL, NULL, spawn_in, spawned_out, "session_spawned", 0 },
  { "execute_task", "sessions.execute", NULL, NULL, execute_in, executing_out, "task_executing", 0 },
  { "session_status", "sessions.status", NULL, NULL, session_in, status_out, "session_status_update", 0 },
  { "stop_session", "sessions.stop", NULL, NULL, session_in, status_out, "session_status_update", 0 },
  { "list_sessions", "sessions.list", NULL, NULL, NULL, list_out, "sessions_list", 0 },
  { NULL },
};

/* ------------------------------------------------------------------ the core's session events → wundr's */

static JsonNode *
tool_status (JsonNode *v, JsonObject *from)
{
  (void) v;
  return string_node (ens_member_string (ens_member_object (from, "data"), "error") ? "failed" : "completed");
}

static const EnsField stream_edge_out[] = { /* stream_start, stream_end */
  ENS_MAP ("type", "type", ANY, OPTIONAL),
  ENS_MAP_OR ("sessionId", "sessionId", ANY, "\"\""),
  ENS_SET ("metadata", "{}"),
  ENS_MAP ("taskId", "metadata.taskId", ANY, OPTIONAL),
  ENS_MAP ("request_id", "metadata.requestId", ANY, OPTIONAL),
  ENS_MAP ("finish_reason", "metadata.finishReason", ANY, OPTIONAL),
  ENS_MAP ("usage", "metadata.usage", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField stream_chunk_out[] = {
  ENS_SET ("type", "\"stream_chunk\""),
  ENS_MAP_OR ("sessionId", "data.sessionId", ANY, "\"\""),
  ENS_MAP_OR ("chunk", "data.chunk", ANY, "\"\""),
  ENS_SET ("data.metadata.type", "\"text\""),
  ENS_MAP_OR ("metadata.index", "data.metadata.index", ANY, "0"),
  ENS_FIELDS_END,
};

static const EnsField tool_start_out[] = {
  ENS_SET ("type", "\"tool_call_start\""),
  ENS_MAP_OR ("sessionId", "data.sessionId", ANY, "\"\""),
  ENS_MAP_OR ("data.name", "data.toolName", ANY, "\"\""),
  ENS_SET ("data.toolInput", "{}"),
  ENS_MAP ("data.id", "data.toolInput.toolId", ANY, OPTIONAL),
  ENS_SET ("data.status", "\"started\""),
  ENS_FUNC (NULL, "data.timestamp", OPTIONAL, js_now),
  ENS_FIELDS_END,
};

static const EnsField tool_result_out[] = {
  ENS_SET ("type", "\"tool_call_result\""),
  ENS_MAP_OR ("sessionId", "data.sessionId", ANY, "\"\""),
  ENS_MAP_OR ("data.name", "data.toolName", ANY, "\"\""),
  ENS_FUNC (NULL, "data.status", OPTIONAL, tool_status),
  ENS_MAP ("data.result", "data.result", ANY, OPTIONAL),
  ENS_MAP ("data.error", "data.error", ANY, OPTIONAL),
  ENS_FUNC (NULL, "data.timestamp", OPTIONAL, js_now),
  ENS_FIELDS_END,
};

static const EnsField task_out[] = { /* task_executing, task_completed */
  ENS_MAP ("type", "type", ANY, OPTIONAL),
  ENS_MAP_OR ("sessionId", "sessionId", ANY, "\"\""),
  ENS_MAP_OR ("taskId", "taskId", ANY, "\"\""),
  ENS_MAP ("result", "result", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField task_failed_out[] = {
  ENS_SET ("type", "\"task_failed\""),
  ENS_MAP_OR ("sessionId", "sessionId", ANY, "\"\""),
  ENS_MAP_OR ("taskId", "taskId", ANY, "\"\""),
  ENS_MAP_OR ("error", "error", ANY, "\"the task failed\""),
  ENS_FIELDS_END,
};

static const EnsField session_event_out[] = { /* session_spawned, session_status_update */
  ENS_SET ("type", "\"session_status_update\""),
  ENS_FUNC ("session", "session", REQUIRED, event_session),
  ENS_FUNC ("session", "sessionId", REQUIRED, event_session_id),
  ENS_FIELDS_END,
};

/* By the event's type (session.<id>.<type>); a type not here (task_queued)
 * has no wundr message. */
static const EnsDialectEntry events[] = {
  { "stream_start", NULL, NULL, NULL, NULL, stream_edge_out, NULL, 0 },
  { "stream_chunk", NULL, NULL, NULL, NULL, stream_chunk_out, NULL, 0 },
  { "stream_end", NULL, NULL, NULL, NULL, stream_edge_out, NULL, 0 },
  { "tool_call_start", NULL, NULL, NULL, NULL, tool_start_out, NULL, 0 },
  { "tool_call_result", NULL, NULL, NULL, NULL, tool_result_out, NULL, 0 },
  { "task_executing", NULL, NULL, NULL, NULL, task_out, NULL, 0 },
  { "task_completed", NULL, NULL, NULL, NULL, task_out, NULL, 0 },
  { "task_failed", NULL, NULL, NULL, NULL, task_failed_out, NULL, 0 },
  { "session_spawned", NULL, NULL, NULL, NULL, session_event_out, NULL, 0 },
  { "session_status_update", NULL, NULL, NULL, NULL, session_event_out, NULL, 0 },
  { NULL },
};

/* The core's codes and wundr's texts: before, the session id, after. */
static const struct {
  const char *code, *before, *after;
} texts[] = {
  { "SESSION_NOT_FOUND", "Session not found: ", "" },
  { "SESSION_STOPPED", "Session ", " is not running (status: terminated)" },
  { NULL, NULL, NULL },
};

/* An encoder: a session event as wundr's frame (empty: none); made once
 * per event for every Neolith peer. */
static GBytes *
encode_event (EnsMessage *msg)
{
  JsonObject *ev = msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
  g_autoptr (JsonNode) node = ev ? ens_dialect_neolith_event (ev) : NULL;
  char *text;

  if (node == NULL)
    return g_bytes_new_static ("", 0);
  text = ens_dialect_host ()->json_to_string (node);
  return g_bytes_new_take (text, strlen (text));
}

const EnsDialect ens_dialect_neolith = {
  .name = "neolith",
  .entries = entries,
  .events = events,
  .codes = NULL,
  .flags = 0,
  .framing = ENS_DIALECT_FRAMING_MESSAGE,
  .decode = NULL, /* the transport reads {type, payload} with ens_dialect_neolith_decode */
  .encode = encode_event,
};

/* ------------------------------------------------------------------ what the transport calls */

const EnsDialectEntry *
ens_dialect_neolith_decode (JsonObject *message, JsonObject *params, const char **error)
{
  const char *type = ens_member_string (message, "type");
  const EnsDialectEntry *entry;
  EnsInvalid invalid;

  *error = NULL;
  if (message == NULL || type == NULL)
    {
      *error = "Invalid message format";
      return NULL;
    }
  if ((entry = ens_dialect_find (&ens_dialect_neolith, type, NULL, NULL)) == NULL)
    {
      *error = "Unknown message type";
      return NULL;
    }
  if (entry->in && !ens_dialect_map (entry->in, message, params, &invalid))
    {
      *error = "Invalid message format";
      return NULL;
    }
  return entry;
}

JsonNode *
ens_dialect_neolith_answer (const EnsDialectEntry *entry, JsonNode *data)
{
  return ens_dialect_reshape (entry->out, 0, data);
}

JsonNode *
ens_dialect_neolith_event (JsonObject *event)
{
  const EnsDialectEntry *row = ens_dialect_find_event (&ens_dialect_neolith, ens_member_string (event, "type"));
  JsonObject *out;
  JsonNode *node;
  EnsInvalid invalid;

  if (row == NULL)
    return NULL;
  node = ens_node_new_object (&out);
  if (!ens_dialect_map (row->out, event, out, &invalid))
    g_clear_pointer (&node, json_node_unref); /* a session event without its record */
  return node;
}

JsonNode *
ens_dialect_neolith_simple (const char *type)
{
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", type);
  return node;
}

JsonNode *
ens_dialect_neolith_health (gboolean healthy)
{
  JsonNode *node = ens_dialect_neolith_simple ("health_check_response");

  json_object_set_boolean_member (json_node_get_object (node), "healthy", healthy);
  return node;
}

JsonNode *
ens_dialect_neolith_task (const char *type, const char *session_id, const char *task_id, const char *error)
{
  JsonNode *node = ens_dialect_neolith_simple (type);
  JsonObject *obj = json_node_get_object (node);

  json_object_set_string_member (obj, "sessionId", session_id);
  json_object_set_string_member (obj, "taskId", task_id);
  if (error)
    json_object_set_string_member (obj, "error", error);
  return node;
}

char *
ens_dialect_neolith_error_text (const char *code, const char *message, const char *session_id)
{
  for (guint i = 0; session_id && code && texts[i].code; i++)
    if (strcmp (texts[i].code, code) == 0)
      return g_strconcat (texts[i].before, session_id, texts[i].after, NULL);
  return g_strdup (message ? message : code ? code : "error");
}

/* ------------------------------------------------------------------ DaemonStatus */

static JsonObject *
subsystem (const char *status, const char *now)
{
  JsonObject *s = json_object_new ();

  json_object_set_string_member (s, "status", status);
  json_object_set_string_member (s, "lastCheck", now);
  return s;
}

/* The daemon's health, its sessions (sessions.list) and its providers
 * (providers.list) as wundr's DaemonStatus: counted, so a function. */
JsonNode *
ens_dialect_neolith_daemon_status (JsonObject *health, JsonObject *list, JsonObject *providers)
{
  JsonNode *node = ens_dialect_neolith_simple ("daemon_status_update");
  JsonObject *out = json_object_new (), *metrics = json_object_new (), *subsystems = json_object_new ();
  JsonObject *completions = ens_member_object (health, "completions");
  JsonObject *stats = ens_member_object (health, "session_stats");
  JsonArray *recs = ens_member_array (list, "sessions"), *backends = ens_member_array (providers, "providers");
  const char *status = ens_member_string_or (health, "status", "healthy");
  g_autofree char *now = ens_dialect_neolith_now ();
  g_autoptr (GDateTime) started = NULL;
  gint64 active = 0, ended = 0, spawned = 0, done = ens_member_int (stats, "tasks_completed", 0);
  gint64 failed = ens_member_int (stats, "tasks_failed", 0);
  double ended_ms = 0;
  gboolean real_llm = FALSE;
  JsonNode *up = health ? json_object_get_member (health, "uptime_s") : NULL;

  started = ens_member_string (health, "started_at") ? g_date_time_new_from_iso8601 (ens_member_string (health, "started_at"), NULL) : NULL;
  for (guint i = 0; recs && i < json_array_get_length (recs); i++)
    {
      JsonObject *rec = ens_array_object (recs, i);
      const char *s;
      g_autoptr (GDateTime) created = NULL, ended_at = NULL;

      if (rec == NULL || ens_dialect_neolith_is_rhetor (rec))
        continue;
      s = status_of (rec);
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
  json_object_set_object_member (json_node_get_object (node), "status", out);
  return node;
}

/* ================================================================== Neolith over HTTP (/api/daemon...) */

/* Ensemble's REST face for Neolith's orchestrators and sessions: each route
 * a row (transport-http runs it: the body, with the query's parameters over
 * it, through @in; the answer through @out; @answer the HTTP status). */

static JsonNode *
now_iso (JsonNode *v, JsonObject *from)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

  (void) v;
  (void) from;
  return take_string_node (g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ"));
}

/* healthy: running; anything else as it is. */
static JsonNode *
running (JsonNode *v, JsonObject *from)
{
  const char *s = node_string (v);

  (void) from;
  return string_node (s == NULL || strcmp (s, "healthy") == 0 ? "running" : s);
}

/* A PATCH that runs a task says no status. */
static JsonNode *
absent (JsonNode *v, JsonObject *from)
{
  (void) from;
  return v == NULL || JSON_NODE_HOLDS_NULL (v) ? json_node_init_boolean (json_node_alloc (), TRUE) : NULL;
}

static const EnsField rest_status_out[] = {
  ENS_FUNC ("status", "status", OPTIONAL, running),
  ENS_MAP_OR ("status", "health", ANY, "\"healthy\""),
  ENS_MAP ("uptime_s", "uptime", ANY, OPTIONAL),
  ENS_MAP ("active_sessions", "activeSessions", ANY, OPTIONAL),
  ENS_MAP ("sessions", "totalSessions", ANY, OPTIONAL),
  ENS_MAP_OR ("completions.queued", "queuedTasks", ANY, "0"),
  ENS_MAP_OR ("completions.running", "runningTasks", ANY, "0"),
  ENS_MAP ("agents", "agents", ANY, OPTIONAL),
  ENS_MAP ("connections", "connections", ANY, OPTIONAL),
  ENS_MAP ("version", "version", ANY, OPTIONAL),
  ENS_MAP ("node_id", "nodeId", ANY, OPTIONAL),
  ENS_MAP ("started_at", "startedAt", ANY, OPTIONAL),
  ENS_FUNC (NULL, "timestamp", OPTIONAL, now_iso),
  ENS_FIELDS_END,
};

static const EnsField rest_register_in[] = {
  ENS_MAP ("orchestrator_id|orchestratorId|id", "name", STRING, REQUIRED),
  ENS_MAP ("capabilities", "actions", STRINGS, NONEMPTY),
  ENS_SET ("persistent", "true"),
  ENS_SET ("description", "\"Neolith orchestrator\""),
  ENS_FIELDS_END,
};

static const EnsField rest_register_out[] = {
  ENS_SET ("success", "true"),
  ENS_SET ("registered", "true"),
  ENS_MAP ("name", "orchestratorId", ANY, OPTIONAL),
  ENS_MAP ("actions", "capabilities", ANY, OPTIONAL),
  ENS_MAP ("registered_at", "registeredAt", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField rest_unregister_in[] = {
  ENS_MAP ("orchestrator_id|orchestratorId|id", "name", STRING, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField rest_unregister_out[] = {
  ENS_SET ("success", "true"),
  ENS_MAP ("name", "orchestratorId", ANY, OPTIONAL),
  ENS_MAP ("unregistered", "unregistered", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField rest_spawn_in[] = {
  ENS_MAP ("orchestratorId", "orchestrator_id", STRING, OPTIONAL),
  ENS_CHECK ("task", STRING),
  ENS_FUNC ("task", "task", OPTIONAL, nonempty),
  ENS_MAP ("sessionType", "session_type", STRING, OPTIONAL),
  ENS_MAP ("model", "model", STRING, OPTIONAL),
  ENS_MAP ("provider", "provider", STRING, OPTIONAL),
  ENS_FIELDS_END,
};

/* A session record (or a spawn's execute ack) in Neolith's REST names. */
static const EnsField rest_session_out[] = {
  ENS_MAP ("session_id", "sessionId", ANY, OPTIONAL),
  ENS_MAP ("orchestrator_id", "orchestratorId", ANY, OPTIONAL),
  ENS_MAP ("session_type", "sessionType", ANY, OPTIONAL),
  ENS_MAP ("status", "status", ANY, OPTIONAL),
  ENS_MAP ("model", "model", ANY, OPTIONAL),
  ENS_MAP ("provider", "provider", ANY, OPTIONAL),
  ENS_MAP ("created_at", "createdAt", ANY, OPTIONAL),
  ENS_MAP ("updated_at", "updatedAt", ANY, OPTIONAL),
  ENS_MAP ("tasks_total", "tasksTotal", ANY, OPTIONAL),
  ENS_MAP ("messages", "messages", ANY, OPTIONAL),
  ENS_MAP ("task_id", "taskId", ANY, OPTIONAL),
  ENS_MAP ("request_id", "requestId", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField rest_execute_in[] = {
  ENS_MAP ("sessionId", "session_id", STRING, REQUIRED),
  ENS_FUNC_CHECK ("status", absent, "\"stopped\" (or send task to run one)"),
  ENS_MAP ("task", "task", STRING, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField rest_executed_out[] = {
  ENS_MAP ("session_id", "sessionId", ANY, OPTIONAL),
  ENS_MAP ("task_id", "taskId", ANY, OPTIONAL),
  ENS_MAP ("request_id", "requestId", ANY, OPTIONAL),
  ENS_MAP ("status", "status", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField rest_stop_in[] = {
  ENS_MAP ("sessionId", "session_id", STRING, REQUIRED),
  ENS_FIELDS_END,
};

static const EnsField rest_stopped_out[] = {
  ENS_SET ("success", "true"),
  ENS_MAP ("session_id", "sessionId", ANY, OPTIONAL),
  ENS_MAP ("status", "status", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsDialectEntry rest_entries[] = {
  { "GET /api/daemon", "health", NULL, NULL, NULL, rest_status_out, "200", 0 },
  { "POST /api/daemon", "agents.register", NULL, NULL, rest_register_in, rest_register_out, "201", 0 },
  { "DELETE /api/daemon", "agents.unregister", NULL, NULL, rest_unregister_in, rest_unregister_out, "200", 0 },
  { "POST /api/daemon/sessions", "sessions.spawn", NULL, NULL, rest_spawn_in, rest_session_out, "201", 0 },
  { "GET /api/daemon/sessions", "sessions.list", NULL, NULL, NULL, NULL, "200", 0 },
  { "PATCH /api/daemon/sessions", "sessions.stop", "status", "stopped", rest_stop_in, rest_stopped_out, "200", 0 },
  { "PATCH /api/daemon/sessions", "sessions.execute", NULL, NULL, rest_execute_in, rest_executed_out, "200", 0 },
  { "DELETE /api/daemon/sessions", "sessions.stop", NULL, NULL, rest_stop_in, rest_stopped_out, "200", 0 },
  { NULL },
};

const EnsDialect ens_dialect_neolith_rest = {
  .name = "neolith-rest",
  .entries = rest_entries,
  .framing = ENS_DIALECT_FRAMING_MESSAGE,
};

JsonNode *
ens_dialect_neolith_rest_session (JsonObject *record)
{
  g_autoptr (JsonNode) in = json_node_init_object (json_node_alloc (), record);
  return ens_dialect_reshape (rest_session_out, 0, in);
}

JsonNode *
ens_dialect_neolith_rest_status (JsonObject *health)
{
  g_autoptr (JsonNode) in = health ? json_node_init_object (json_node_alloc (), health) : NULL;
  return ens_dialect_reshape (rest_status_out, 0, in);
}
