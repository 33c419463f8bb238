/* ens-session.c — long-running sessions (the Neolith / KSI-spawn model): a
 * session keeps its conversation; each task runs as a completion whose
 * progress is published for every watcher on "session.<id>.<type>":
 *   task_executing, stream_start, stream_chunk {sessionId, chunk, metadata},
 *   stream_end, tool_call_start, tool_call_result, task_completed,
 *   task_failed, session_status_update.
 * Sessions are kept in the state store (scope "sessions"), so a restart
 * lists them; one that was running then reads "interrupted". */
#include "ens-session.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

#define MAX_HISTORY 200 /* messages kept per session */

typedef struct {
  EnsSessions *owner;
  char *id;
  JsonObject *record; /* what is stored: id, orchestrator_id, session_type, model, provider, status,
                         created_at, updated_at, history, tasks_total, last_result */
  char *task_id;      /* the running task, if any */
  char *request_id;   /* its completion */
  guint chunks;
} EnsSession;

struct _EnsSessions {
  EnsState *state;
  EnsCompletions *completions;
  EnsEvents *events;
  GHashTable *table; /* id -> EnsSession */
  guint64 next_task;
};

/* What a completion's hooks hold: the session by id (it may be gone). */
typedef struct {
  EnsSessions *sessions;
  char *id;
} HookRef;

static void
session_free (EnsSession *s)
{
  g_free (s->id);
  json_object_unref (s->record);
  g_free (s->task_id);
  g_free (s->request_id);
  g_free (s);
}

static void
set_now (JsonObject *obj, const char *member)
{
  ens_json_set_timestamp (obj, member, g_get_real_time ());
}

static void
persist (EnsSession *s)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;

  set_now (s->record, "updated_at");
  json_node_set_object (node, s->record);
  text = ens_json_to_string (node);
  if (!ens_state_set (s->owner->state, "sessions", s->id, text, &error))
    g_warning ("session %s: cannot store: %s", s->id, error->message);
}

/* Publishes one session event for the watchers of session.<id>.* */
static void
emit (EnsSession *s, const char *type, JsonObject *extra)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  g_autofree char *topic = g_strdup_printf ("session.%s.%s", s->id, type);

  json_object_set_string_member (obj, "type", type);
  json_object_set_string_member (obj, "sessionId", s->id);
  if (s->task_id)
    json_object_set_string_member (obj, "taskId", s->task_id);
  if (extra)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init (&iter, extra);
      while (json_object_iter_next (&iter, &name, &member))
        json_object_set_member (obj, name, json_node_copy (member));
    }
  ens_events_publish (s->owner->events, "ensembled", topic, data, NULL);
}

static void
set_status (EnsSession *s, const char *status)
{
  JsonObject *extra = json_object_new ();

  json_object_set_string_member (s->record, "status", status);
  persist (s);
  json_object_set_string_member (extra, "status", status);
  json_object_set_string_member (extra, "session_type", json_object_get_string_member (s->record, "session_type"));
  json_object_set_int_member (extra, "tasks_total", json_object_get_int_member (s->record, "tasks_total"));
  emit (s, "session_status_update", extra);
  json_object_unref (extra);
}

static void
history_add (EnsSession *s, const char *role, const char *content)
{
  JsonArray *history = json_object_get_array_member (s->record, "history");
  JsonObject *m = json_object_new ();

  json_object_set_string_member (m, "role", role);
  json_object_set_string_member (m, "content", content);
  json_array_add_object_element (history, m);
  while (json_array_get_length (history) > MAX_HISTORY)
    json_array_remove_element (history, 0);
}

/* ---------------------------------------------------------- completion hooks */

static EnsSession *
session_of (gpointer data)
{
  HookRef *ref = data;
  return g_hash_table_lookup (ref->sessions->table, ref->id);
}

static void
hook_ref_free (HookRef *ref)
{
  g_free (ref->id);
  g_free (ref);
}

static void
hook_chunk (gpointer data, const char *request_id, const char *text)
{
  EnsSession *s = session_of (data);
  JsonObject *extra, *meta;

  if (s == NULL)
    return;
  if (s->chunks++ == 0)
    emit (s, "stream_start", NULL);
  extra = json_object_new ();
  meta = json_object_new ();
  json_object_set_string_member (extra, "chunk", text);
  json_object_set_string_member (meta, "request_id", request_id);
  json_object_set_int_member (meta, "index", s->chunks - 1);
  json_object_set_object_member (extra, "metadata", meta);
  emit (s, "stream_chunk", extra);
  json_object_unref (extra);
}

static void
hook_event (gpointer data, const char *request_id, const char *type, JsonNode *payload)
{
  EnsSession *s = session_of (data);
  JsonObject *extra;

  if (s == NULL)
    return;
  extra = json_object_new ();
  json_object_set_string_member (extra, "request_id", request_id);
  json_object_set_member (extra, "data", payload ? json_node_copy (payload) : json_node_new (JSON_NODE_NULL));
  emit (s, type, extra);
  json_object_unref (extra);
}

static void
hook_done (gpointer data, const char *request_id, JsonNode *result, const char *code, const char *message)
{
  EnsSession *s = session_of (data);
  JsonObject *extra;

  hook_ref_free (data);
  if (s == NULL || g_strcmp0 (s->request_id, request_id) != 0)
    return;
  if (s->chunks > 0)
    emit (s, "stream_end", NULL);
  extra = json_object_new ();
  if (result)
    {
      JsonObject *r = json_node_get_object (result);
      const char *response = ens_json_get_string (r, "response");
      history_add (s, "assistant", response ? response : "");
      json_object_set_member (s->record, "last_result", json_node_copy (result));
      json_object_set_member (extra, "result", json_node_copy (result));
      emit (s, "task_completed", extra);
    }
  else
    {
      json_object_set_string_member (extra, "error", message ? message : code);
      json_object_set_string_member (extra, "code", code);
      emit (s, "task_failed", extra);
    }
  json_object_unref (extra);
  {
    /* The KSI spawn contract: each task's outcome on results:<session>. */
    JsonObject *r;
    g_autoptr (JsonNode) rnode = ens_json_object_node (&r);
    g_autofree char *topic = g_strconcat ("results:", s->id, NULL);
    json_object_set_string_member (r, "session_id", s->id);
    json_object_set_string_member (r, "task_id", s->task_id);
    json_object_set_string_member (r, "request_id", request_id);
    json_object_set_string_member (r, "status", result ? "completed" : "failed");
    if (result)
      json_object_set_member (r, "result", json_node_copy (result));
    else
      {
        json_object_set_string_member (r, "error", message ? message : code);
        json_object_set_string_member (r, "code", code);
      }
    ens_events_publish (s->owner->events, "ensembled", topic, rnode, NULL);
  }
  g_clear_pointer (&s->task_id, g_free);
  g_clear_pointer (&s->request_id, g_free);
  if (g_strcmp0 (json_object_get_string_member (s->record, "status"), "stopped") != 0)
    set_status (s, result ? "idle" : "failed");
}

static const EnsCompletionHooks session_hooks = { hook_chunk, hook_event, hook_done };

/* ---------------------------------------------------------- verbs */

static gboolean
optional_string (JsonObject *p, const char *field, const char **out)
{
  JsonNode *n = p ? json_object_get_member (p, field) : NULL;

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  *out = ens_json_get_string (p, field);
  return *out != NULL;
}

static EnsSession *
lookup (EnsSessions *sessions, EnsMessage *request, JsonObject *p, EnsMessage **err)
{
  const char *id = ens_json_get_string (p, "session_id");
  EnsSession *s = id ? g_hash_table_lookup (sessions->table, id) : NULL;

  *err = NULL;
  if (id == NULL)
    *err = ens_message_new_invalid (request, "session_id", "a string");
  else if (s == NULL)
    *err = ens_message_new_error (request, "SESSION_NOT_FOUND", "no session with that session_id", NULL);
  return s;
}

static JsonNode *
describe (EnsSession *s)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *copy = json_object_new ();
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;

  json_object_iter_init (&iter, s->record);
  while (json_object_iter_next (&iter, &name, &member))
    json_object_set_member (copy, name, json_node_copy (member));
  json_object_set_string_member (copy, "session_id", s->id);
  json_object_set_int_member (copy, "messages", json_array_get_length (json_object_get_array_member (s->record, "history")));
  if (s->task_id)
    json_object_set_string_member (copy, "task_id", s->task_id);
  json_node_take_object (node, copy);
  return node;
}

static EnsMessage *session_execute (EnsSessions *sessions, EnsMessage *request, JsonObject *p);

static EnsMessage *
session_spawn (EnsSessions *sessions, EnsMessage *request, JsonObject *p)
{
  const char *orchestrator, *type, *model, *provider, *task, *system;
  EnsSession *s;

  if (!optional_string (p, "orchestrator_id", &orchestrator))
    return ens_message_new_invalid (request, "orchestrator_id", "a string");
  if (!optional_string (p, "session_type", &type))
    return ens_message_new_invalid (request, "session_type", "a string");
  if (!optional_string (p, "model", &model))
    return ens_message_new_invalid (request, "model", "a string");
  if (!optional_string (p, "provider", &provider))
    return ens_message_new_invalid (request, "provider", "a string");
  if (!optional_string (p, "task", &task))
    return ens_message_new_invalid (request, "task", "a string");
  if (!optional_string (p, "system", &system))
    return ens_message_new_invalid (request, "system", "a string");

  s = g_new0 (EnsSession, 1);
  s->owner = sessions;
  s->id = g_strdup_printf ("sess_%08x%08x", g_random_int (), g_random_int ());
  s->record = json_object_new ();
  json_object_set_string_member (s->record, "id", s->id);
  json_object_set_string_member (s->record, "orchestrator_id", orchestrator ? orchestrator : "");
  json_object_set_string_member (s->record, "session_type", type ? type : "default");
  if (model)
    json_object_set_string_member (s->record, "model", model);
  if (provider)
    json_object_set_string_member (s->record, "provider", provider);
  json_object_set_string_member (s->record, "status", "idle");
  set_now (s->record, "created_at");
  json_object_set_array_member (s->record, "history", json_array_new ());
  json_object_set_int_member (s->record, "tasks_total", 0);
  if (system)
    history_add (s, "system", system);
  g_hash_table_insert (sessions->table, s->id, s);
  persist (s);
  {
    JsonObject *extra = json_object_new ();
    json_object_set_string_member (extra, "status", "idle");
    json_object_set_string_member (extra, "session_type", json_object_get_string_member (s->record, "session_type"));
    json_object_set_int_member (extra, "tasks_total", 0);
    emit (s, "session_spawned", extra);
    json_object_unref (extra);
  }

  if (task)
    {
      /* Spawn with a task runs it at once; the answer is the execute ack. */
      JsonObject *exec = json_object_new ();
      EnsMessage *answer;
      json_object_set_string_member (exec, "session_id", s->id);
      json_object_set_string_member (exec, "task", task);
      answer = session_execute (sessions, request, exec);
      json_object_unref (exec);
      return answer;
    }
  {
    g_autoptr (JsonNode) data = describe (s);
    return ens_message_new_reply (request, data);
  }
}

static EnsMessage *
session_execute (EnsSessions *sessions, EnsMessage *request, JsonObject *p)
{
  EnsMessage *err = NULL;
  EnsSession *s = lookup (sessions, request, p, &err);
  const char *task = ens_json_get_string (p, "task");
  const char *status;
  JsonObject *cp, *obj;
  g_autoptr (JsonNode) cp_node = NULL;
  g_autoptr (JsonNode) data = NULL;
  EnsMessage *answer = NULL;
  EnsCompletion *c;
  JsonArray *history;
  g_autofree char *topic_pattern = NULL;
  HookRef *hook_ref;

  if (s == NULL)
    return err;
  topic_pattern = g_strdup_printf ("session.%s.*", s->id);
  if (task == NULL)
    task = ens_json_get_string (p, "prompt");
  if (task == NULL || task[0] == '\0')
    return ens_message_new_invalid (request, "task", "a non-empty string");
  status = json_object_get_string_member (s->record, "status");
  if (s->task_id)
    return ens_message_new_error (request, "SESSION_BUSY", "the session is running a task; wait for task_completed",
                                  NULL);
  if (g_strcmp0 (status, "stopped") == 0)
    return ens_message_new_error (request, "SESSION_STOPPED", "the session was stopped", NULL);

  /* The whole conversation goes to the provider. */
  cp_node = ens_json_object_node (&cp);
  history = json_array_new ();
  {
    JsonArray *past = json_object_get_array_member (s->record, "history");
    for (guint i = 0; i < json_array_get_length (past); i++)
      json_array_add_element (history, json_node_copy (json_array_get_element (past, i)));
  }
  {
    JsonObject *m = json_object_new ();
    json_object_set_string_member (m, "role", "user");
    json_object_set_string_member (m, "content", task);
    json_array_add_object_element (history, m);
  }
  json_object_set_array_member (cp, "messages", history);
  if (json_object_has_member (s->record, "model"))
    json_object_set_string_member (cp, "model", json_object_get_string_member (s->record, "model"));
  if (json_object_has_member (s->record, "provider"))
    json_object_set_string_member (cp, "provider", json_object_get_string_member (s->record, "provider"));
  for (const char *const *f = (const char *const[]){ "max_tokens", "temperature", "task_type", "priority", NULL }; *f; f++)
    if (p && json_object_has_member (p, *f))
      json_object_set_member (cp, *f, json_node_copy (json_object_get_member (p, *f)));

  hook_ref = g_new0 (HookRef, 1); /* freed by hook_done */
  hook_ref->sessions = sessions;
  hook_ref->id = g_strdup (s->id);
  c = ens_completions_submit (sessions->completions, request, cp, NULL, NULL, &session_hooks, hook_ref, &answer);
  if (c == NULL)
    {
      hook_ref_free (hook_ref);
      return answer; /* refused: the error says why */
    }
  ens_message_unref (answer);

  history_add (s, "user", task);
  s->task_id = g_strdup_printf ("task_%" G_GUINT64_FORMAT, ++sessions->next_task);
  s->request_id = g_strdup (ens_completion_id (c));
  s->chunks = 0;
  json_object_set_int_member (s->record, "tasks_total", json_object_get_int_member (s->record, "tasks_total") + 1);
  set_status (s, "running");
  {
    JsonObject *extra = json_object_new ();
    json_object_set_string_member (extra, "task", task);
    json_object_set_string_member (extra, "request_id", s->request_id);
    emit (s, "task_executing", extra);
    json_object_unref (extra);
  }

  data = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "session_id", s->id);
  json_object_set_string_member (obj, "task_id", s->task_id);
  json_object_set_string_member (obj, "request_id", s->request_id);
  json_object_set_string_member (obj, "status", "executing");
  json_object_set_string_member (obj, "watch", topic_pattern);
  return ens_message_new_reply (request, data);
}

static EnsMessage *
session_status (EnsSessions *sessions, EnsMessage *request, JsonObject *p)
{
  EnsMessage *err = NULL;
  EnsSession *s = lookup (sessions, request, p, &err);
  g_autoptr (JsonNode) data = NULL;

  if (s == NULL)
    return err;
  data = describe (s);
  return ens_message_new_reply (request, data);
}

static EnsMessage *
session_stop (EnsSessions *sessions, EnsMessage *request, JsonObject *p)
{
  EnsMessage *err = NULL;
  EnsSession *s = lookup (sessions, request, p, &err);
  g_autoptr (JsonNode) data = NULL;

  if (s == NULL)
    return err;
  set_status (s, "stopped");
  if (s->request_id)
    ens_completions_cancel_id (sessions->completions, s->request_id); /* task_failed (CANCELLED) follows */
  data = describe (s);
  return ens_message_new_reply (request, data);
}

static int
by_created (gconstpointer a, gconstpointer b)
{
  EnsSession *x = *(EnsSession *const *) a, *y = *(EnsSession *const *) b;
  int c = g_strcmp0 (json_object_get_string_member (x->record, "created_at"),
                     json_object_get_string_member (y->record, "created_at"));
  return c ? c : strcmp (x->id, y->id);
}

JsonNode *
ens_sessions_list (EnsSessions *sessions)
{
  JsonObject *obj;
  JsonNode *data = ens_json_object_node (&obj);
  JsonArray *array = json_array_new ();
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, sessions->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (all, value);
  g_ptr_array_sort (all, by_created);
  for (guint i = 0; i < all->len; i++)
    {
      JsonNode *n = describe (g_ptr_array_index (all, i));
      json_object_remove_member (json_node_get_object (n), "history"); /* the list stays small */
      json_array_add_element (array, n);
    }
  json_object_set_array_member (obj, "sessions", array);
  json_object_set_int_member (obj, "total", all->len);
  return data;
}

guint
ens_sessions_count (EnsSessions *sessions, gboolean active_only)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer value;

  if (!active_only)
    return g_hash_table_size (sessions->table);
  g_hash_table_iter_init (&iter, sessions->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    n += ((EnsSession *) value)->task_id != NULL;
  return n;
}

/* ---------------------------------------------------------- verbs */

static EnsMessage *
verb_spawn (EnsCall *call, gpointer data)
{
  return session_spawn (data, call->msg, call->params);
}

static EnsMessage *
verb_execute (EnsCall *call, gpointer data)
{
  return session_execute (data, call->msg, call->params);
}

static EnsMessage *
verb_status (EnsCall *call, gpointer data)
{
  return session_status (data, call->msg, call->params);
}

static EnsMessage *
verb_stop (EnsCall *call, gpointer data)
{
  return session_stop (data, call->msg, call->params);
}

static EnsMessage *
verb_list (EnsCall *call, gpointer data)
{
  g_autoptr (JsonNode) list = ens_sessions_list (data);
  return ens_message_new_reply (call->msg, list);
}

void
ens_sessions_add_verbs (EnsSessions *sessions, EnsVerbs *verbs)
{
  ens_verbs_add (verbs, "sessions.spawn", verb_spawn, sessions);
  ens_verbs_add (verbs, "sessions.execute", verb_execute, sessions);
  ens_verbs_add (verbs, "sessions.status", verb_status, sessions);
  ens_verbs_add (verbs, "sessions.stop", verb_stop, sessions);
  ens_verbs_add (verbs, "sessions.list", verb_list, sessions);
}

EnsSessions *
ens_sessions_new (EnsState *state, EnsCompletions *completions, EnsEvents *events)
{
  EnsSessions *sessions = g_new0 (EnsSessions, 1);
  g_autoptr (GPtrArray) keys = ens_state_list (state, "sessions", "", G_MAXINT, NULL);

  sessions->state = state;
  sessions->completions = completions;
  sessions->events = events;
  sessions->table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) session_free);
  for (guint i = 0; keys && i < keys->len; i++)
    {
      const char *id = g_ptr_array_index (keys, i);
      g_autofree char *text = ens_state_get (state, "sessions", id, NULL);
      g_autoptr (JsonNode) node = text ? json_from_string (text, NULL) : NULL;
      EnsSession *s;

      if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node) ||
          !json_object_has_member (json_node_get_object (node), "history"))
        continue;
      s = g_new0 (EnsSession, 1);
      s->owner = sessions;
      s->id = g_strdup (id);
      s->record = json_object_ref (json_node_get_object (node));
      if (g_strcmp0 (json_object_get_string_member_with_default (s->record, "status", ""), "running") == 0)
        json_object_set_string_member (s->record, "status", "interrupted"); /* its task died with the daemon */
      g_hash_table_insert (sessions->table, s->id, s);
    }
  return sessions;
}

void
ens_sessions_free (EnsSessions *sessions)
{
  if (sessions == NULL)
    return;
  g_hash_table_unref (sessions->table);
  g_free (sessions);
}
