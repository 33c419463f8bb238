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
 * Session events are encoded once per event for every Neolith peer.
 *
 * What each message is, and every shape, is the Neolith dialect's
 * (plugins/common/dialect/ens-dialect-neolith.c); this file decides who
 * gets which frame. */
#include "ens-ws-private.h"
#include "ens-dialect.h"

#include <stdlib.h>
#include <string.h>

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

/* ================================================================== sending */

static void
send_take (EnsWsConn *c, JsonNode *node)
{
  ens_ws_send_node (c, node);
  json_node_unref (node);
}

/* {type:"error", error, code} */
static void
send_error (EnsWsConn *c, const char *code, const char *error)
{
  ens_ws_send_error (c, code, error, NULL, NULL);
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

  return ens_dialect_neolith_daemon_status (health, list ? json_node_get_object (list) : NULL,
                                            providers ? json_node_get_object (providers) : NULL);
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
          g_autofree char *error = ens_dialect_neolith_error_text (answer->error_code, answer->error_message,
                                                                   p->session_id);
          send_take (c, ens_dialect_neolith_task ("task_executing", p->session_id, p->task, NULL));
          send_take (c, ens_dialect_neolith_task ("task_failed", p->session_id, p->task, error));
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
      send_take (c, ens_dialect_neolith_task ("task_executing", p->session_id, task_id, NULL));
      return;
    }
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      g_autofree char *error = ens_dialect_neolith_error_text (answer->error_code, answer->error_message, p->session_id);
      send_error (c, answer->error_code, error);
      return;
    }
  if (p->kind == ENS_WS_PENDING_DAEMON_STATUS)
    send_take (c, daemon_status_message (c->ws, data));
  else if (p->entry)
    {
      if (p->kind == ENS_WS_PENDING_SPAWN)
        {
          JsonObject *rec = ens_member_object (data, "session") ? ens_member_object (data, "session") : data;
          const char *sid = ens_member_string (rec, "session_id");
          if (sid)
            g_hash_table_add (c->neolith->spawned, g_strdup (sid));
        }
      send_take (c, ens_dialect_neolith_answer (p->entry, answer->data));
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
      if (rec == NULL || ens_dialect_neolith_is_rhetor (rec) || g_strcmp0 (ens_member_string (ev, "status"), "running") == 0)
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
  bytes = c->ws->host->message_encode (msg, ens_dialect_neolith.encode);
  if (g_bytes_get_size (bytes) > 0)
    ens_ws_send (c, bytes, TRUE);
}

/* ================================================================== requests */

/* Runs @entry's verb with @data for this connection; events for @sid (or
 * any new session, @spawn) published meanwhile are the verb's own. */
static void
run_verb (EnsWsConn *c, const EnsDialectEntry *entry, JsonNode *data, EnsWsPendingKind kind, const char *sid,
          gboolean spawn)
{
  EnsWsPending *p = ens_ws_pending_new (kind, sid);

  p->entry = entry;
  if (kind == ENS_WS_PENDING_EXECUTE)
    p->task = g_strdup (ens_member_string (json_node_get_object (data), "task"));
  c->neolith->verb_session = sid;
  c->neolith->verb_spawn = spawn;
  ens_ws_core (c, entry->verb, data, p);
  c->neolith->verb_session = NULL;
  c->neolith->verb_spawn = FALSE;
}

static void
watch (EnsWsConn *c, const char *sid)
{
  Watch *w;

  if (watch_of (c, sid))
    return;
  w = g_new0 (Watch, 1);
  w->mine = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (c->neolith->watch, g_strdup (sid), w);
  ens_ws_watch_session (c, sid);
}

void
ens_ws_neolith_message (EnsWsConn *c, const char *text, gsize len)
{
  const EnsHost *host = c->ws->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (text, len, &error);
  JsonObject *obj = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonObject *params;
  g_autoptr (JsonNode) data = ens_node_new_object (&params);
  const EnsDialectEntry *entry;
  const char *refusal, *type, *sid;

  if (root == NULL)
    {
      send_error (c, ENS_ERR_INVALID_JSON, "Invalid message format");
      return;
    }
  if ((entry = ens_dialect_neolith_decode (obj, params, &refusal)) == NULL)
    {
      gboolean unknown = g_strcmp0 (refusal, "Unknown message type") == 0;
      send_error (c, unknown ? ENS_ERR_UNKNOWN_ACTION : ens_member_string (obj, "type") ? ENS_ERR_INVALID_PARAMETERS
                                                                                       : ENS_ERR_INVALID_REQUEST,
                  refusal);
      return;
    }
  type = entry->name;
  sid = ens_member_string (params, "session_id");
  if (entry->flags & ENS_DIALECT_ANSWERED_HERE)
    send_take (c, ens_dialect_neolith_simple (entry->answer)); /* ping: pong */
  else if (strcmp (type, "health_check") == 0)
    {
      g_autoptr (JsonNode) health = probe_data (c->ws, entry->verb);
      const char *status = health ? ens_member_string (json_node_get_object (health), "status") : NULL;
      send_take (c, ens_dialect_neolith_health (g_strcmp0 (status, "healthy") == 0 || g_strcmp0 (status, "degraded") == 0));
    }
  else if (strcmp (type, "daemon_status") == 0)
    run_verb (c, entry, NULL, ENS_WS_PENDING_DAEMON_STATUS, NULL, FALSE);
  else if (strcmp (type, "list_sessions") == 0)
    run_verb (c, entry, NULL, ENS_WS_PENDING_LIST, NULL, FALSE);
  else if (strcmp (type, "spawn_session") == 0)
    run_verb (c, entry, data, ENS_WS_PENDING_SPAWN, NULL, TRUE);
  else if (strcmp (type, "execute_task") == 0)
    {
      watch (c, sid);
      run_verb (c, entry, data, ENS_WS_PENDING_EXECUTE, sid, FALSE);
    }
  else if (strcmp (type, "session_status") == 0)
    run_verb (c, entry, data, ENS_WS_PENDING_STATUS, sid, FALSE);
  else if (strcmp (type, "stop_session") == 0)
    {
      /* One answer: what the stop publishes is its own, and the
       * connection stops watching before the cancelled task ends. */
      run_verb (c, entry, data, ENS_WS_PENDING_STOP, sid, FALSE);
      if (watch_of (c, sid))
        unwatch (c, sid);
    }
}

/* ================================================================== open, tick */

void
ens_ws_neolith_open (EnsWsConn *c)
{
  c->neolith = g_new0 (EnsWsNeolith, 1);
  c->neolith->watch = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) watch_free);
  c->neolith->spawned = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* The orchestrator-daemon greets at once, before reading anything. */
  send_take (c, ens_dialect_neolith_health (TRUE));
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
