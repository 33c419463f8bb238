/* ens-session.c — long-running sessions (the Neolith / KSI-spawn / Rhetor
 * model): a session keeps its conversation; each task runs as a completion
 * whose progress is published for every watcher on "session.<id>.<type>":
 *   task_queued, task_executing, stream_start, stream_chunk {sessionId,
 *   chunk, metadata}, stream_end, tool_call_start, tool_call_result,
 *   task_completed, task_failed, session_spawned, session_status_update
 *   (which carries the whole record but its history as "session").
 * One task runs at a time; a busy session queues up to session-queue-length
 * more (SESSION_BUSY past that), each started when the one before ends.
 * The record keeps the current or last task, its counters (metrics) and the
 * last tasks' outcomes (recent_tasks).
 * Sessions are kept in the state store (scope "sessions"), so a restart
 * lists them; one that was running then reads "interrupted". */
#include "ens-session.h"
#include "ens-session-record.h"
#include "ens-json.h"
#include "ens-completion-params.h"
#include "ens-message-private.h"
#include "ens-tool-loop.h"

#include <string.h>

/* A task waiting for its turn. */
typedef struct {
  char *id;
  char *description;
  JsonObject *params; /* for the completion: max_tokens, temperature, task_type, priority */
  JsonObject *meta;   /* the task's own: type, priority, metadata, assigned_to */
  EnsMessage *request; /* the execute that asked for it */
  JsonObject *loop;    /* its tools: run as a tool loop (ens-tool-loop.h); NULL: one completion */
} EnsSessionTask;

typedef struct {
  EnsSessions *owner;
  char *id;
  JsonObject *record; /* what is stored: id, orchestrator_id, session_type, model, provider, status,
                         created_at, updated_at, ended_at, history, tasks_total, last_result, task,
                         metrics, recent_tasks */
  char *task_id;      /* the running task, if any */
  char *request_id;   /* its completion */
  guint chunks;
  gint64 task_started_us; /* monotonic */
  gint64 created_us, ended_us; /* real time; ended_us 0 while it runs on */
  GQueue waiting;     /* EnsSessionTask*, oldest first */
} EnsSession;

struct _EnsSessions {
  EnsConfig *config;
  EnsState *state;
  EnsCompletions *completions;
  EnsEvents *events;
  EnsToolLoops *loops;
  GHashTable *table; /* id -> EnsSession */
  guint64 next_task;
  guint64 spawned, tasks_completed, tasks_failed, tokens_used;
};

/* What a completion's hooks hold: the session by id (it may be gone). */
typedef struct {
  EnsSessions *sessions;
  char *id;
} HookRef;

static void
task_free (EnsSessionTask *t)
{
  g_free (t->id);
  g_free (t->description);
  g_clear_pointer (&t->params, json_object_unref);
  g_clear_pointer (&t->meta, json_object_unref);
  g_clear_pointer (&t->request, ens_message_unref);
  g_clear_pointer (&t->loop, json_object_unref);
  g_free (t);
}

static void
session_free (EnsSession *s)
{
  g_free (s->id);
  json_object_unref (s->record);
  g_free (s->task_id);
  g_free (s->request_id);
  g_queue_clear_full (&s->waiting, (GDestroyNotify) task_free);
  g_free (s);
}

static void
set_now (JsonObject *obj, const char *member)
{
  ens_json_set_timestamp (obj, member, g_get_real_time ());
}

static gint64
parse_time (JsonObject *obj, const char *member)
{
  const char *text = ens_json_get_string (obj, member);
  g_autoptr (GDateTime) t = text ? g_date_time_new_from_iso8601 (text, NULL) : NULL;

  return t ? g_date_time_to_unix (t) * G_USEC_PER_SEC + g_date_time_get_microsecond (t) : 0;
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

/* (transfer full) the record as the verbs and events show it: with its id,
 * message count, running task, queue length and duration so far; without
 * the history unless @full. */
static JsonNode *
describe (EnsSession *s, gboolean full)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *copy = json_object_new ();
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;
  JsonObject *m;
  gint64 until = s->ended_us ? s->ended_us : g_get_real_time ();

  json_object_iter_init (&iter, s->record);
  while (json_object_iter_next (&iter, &name, &member))
    if (full || strcmp (name, "history") != 0)
      json_object_set_member (copy, name, json_node_copy (member));
  json_object_set_string_member (copy, "session_id", s->id);
  json_object_set_int_member (copy, "messages", json_array_get_length (json_object_get_array_member (s->record, "history")));
  if (s->task_id)
    json_object_set_string_member (copy, "task_id", s->task_id);
  json_object_set_int_member (copy, "queued_tasks", g_queue_get_length (&s->waiting));
  m = json_object_get_object_member (copy, "metrics");
  json_object_set_int_member (m, "duration_ms", s->created_us && until > s->created_us ? (until - s->created_us) / 1000 : 0);
  json_node_take_object (node, copy);
  return node;
}

/* Publishes one session event for the watchers of session.<id>.*; @task_id
 * may be NULL, @extra (transfer none) too. */
static void
emit (EnsSession *s, const char *type, const char *task_id, JsonObject *extra)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  g_autofree char *topic = g_strdup_printf ("session.%s.%s", s->id, type);

  json_object_set_string_member (obj, "type", type);
  json_object_set_string_member (obj, "sessionId", s->id);
  if (task_id)
    json_object_set_string_member (obj, "taskId", task_id);
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

/* A lifecycle event (session_spawned, session_status_update) with the
 * status, and the record as "session". */
static void
emit_lifecycle (EnsSession *s, const char *type)
{
  JsonObject *extra = json_object_new ();

  json_object_set_string_member (extra, "status", json_object_get_string_member (s->record, "status"));
  json_object_set_string_member (extra, "session_type", json_object_get_string_member (s->record, "session_type"));
  json_object_set_int_member (extra, "tasks_total", json_object_get_int_member (s->record, "tasks_total"));
  json_object_set_member (extra, "session", describe (s, FALSE));
  emit (s, type, NULL, extra);
  json_object_unref (extra);
}

static void
set_status (EnsSession *s, const char *status)
{
  json_object_set_string_member (s->record, "status", status);
  persist (s);
  emit_lifecycle (s, "session_status_update");
}

static void
set_ended (EnsSession *s, gint64 when)
{
  s->ended_us = when;
  ens_session_record_set_ended (s->record, when);
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
    {
      extra = json_object_new ();
      json_object_set_string_member (extra, "request_id", request_id);
      emit (s, "stream_start", s->task_id, extra);
      json_object_unref (extra);
    }
  extra = json_object_new ();
  meta = json_object_new ();
  json_object_set_string_member (extra, "chunk", text);
  json_object_set_string_member (meta, "request_id", request_id);
  json_object_set_int_member (meta, "index", s->chunks - 1);
  json_object_set_object_member (extra, "metadata", meta);
  emit (s, "stream_chunk", s->task_id, extra);
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
  emit (s, type, s->task_id, extra);
  json_object_unref (extra);
}

/* The KSI spawn contract: each task's outcome on results:<session>. */
static void
publish_result (EnsSession *s, const char *task_id, const char *request_id, JsonNode *result, const char *code,
                const char *message)
{
  JsonObject *r;
  g_autoptr (JsonNode) rnode = ens_json_object_node (&r);
  g_autofree char *topic = g_strconcat ("results:", s->id, NULL);

  json_object_set_string_member (r, "session_id", s->id);
  json_object_set_string_member (r, "task_id", task_id);
  if (request_id)
    json_object_set_string_member (r, "request_id", request_id);
  else
    json_object_set_null_member (r, "request_id");
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

/* A task that ends without running (the session stopped, or its
 * completion was refused): task_failed and its result. */
static void
task_dropped (EnsSession *s, EnsSessionTask *t, const char *code, const char *message)
{
  JsonObject *extra = json_object_new ();

  json_object_set_string_member (extra, "error", message);
  json_object_set_string_member (extra, "code", code);
  emit (s, "task_failed", t->id, extra);
  json_object_unref (extra);
  publish_result (s, t->id, NULL, NULL, code, message);
  if (g_strcmp0 (code, ENS_COMPLETION_ERR_CANCELLED) != 0)
    {
      JsonObject *m = ens_session_record_metrics (s->record);
      json_object_set_int_member (m, "tasks_failed", json_object_get_int_member_with_default (m, "tasks_failed", 0) + 1);
      s->owner->tasks_failed++;
    }
}

static EnsMessage *task_start (EnsSession *s, EnsSessionTask *t);

/* After a task: the next waiting one that starts, or the session rests
 * with @status (its ended_at set). */
static void
run_next (EnsSession *s, const char *status)
{
  EnsSessionTask *t;

  while ((t = g_queue_pop_head (&s->waiting)))
    {
      g_autoptr (EnsMessage) refused = task_start (s, t);
      if (refused == NULL)
        {
          task_free (t);
          return;
        }
      task_dropped (s, t, refused->error_code, refused->error_message ? refused->error_message : refused->error_code);
      task_free (t);
      status = "failed";
    }
  set_ended (s, g_get_real_time ());
  set_status (s, status);
}

static void
hook_done (gpointer data, const char *request_id, JsonNode *result, const char *code, const char *message)
{
  EnsSession *s = session_of (data);
  JsonObject *extra;
  g_autofree char *task_id = NULL;
  gint64 tokens = 0, ms;
  gboolean cancelled = g_strcmp0 (code, ENS_COMPLETION_ERR_CANCELLED) == 0;
  const char *response = NULL;

  hook_ref_free (data);
  if (s == NULL || g_strcmp0 (s->request_id, request_id) != 0)
    return;
  task_id = g_steal_pointer (&s->task_id);
  g_clear_pointer (&s->request_id, g_free);
  if (s->chunks > 0)
    {
      JsonObject *r = result ? json_node_get_object (result) : NULL;
      extra = json_object_new ();
      json_object_set_string_member (extra, "request_id", request_id);
      if (r && json_object_has_member (r, "finish_reason"))
        json_object_set_member (extra, "finish_reason", json_node_copy (json_object_get_member (r, "finish_reason")));
      if (r && json_object_has_member (r, "usage"))
        json_object_set_member (extra, "usage", json_node_copy (json_object_get_member (r, "usage")));
      emit (s, "stream_end", task_id, extra);
      json_object_unref (extra);
    }

  /* The counters */
  ms = (g_get_monotonic_time () - s->task_started_us) / 1000;
  if (result)
    {
      JsonObject *r = json_node_get_object (result);
      JsonNode *u = json_object_get_member (r, "usage");
      JsonObject *usage = u && JSON_NODE_HOLDS_OBJECT (u) ? json_node_get_object (u) : NULL;
      tokens = (gint64) (ens_info_double (usage, "input_tokens", 0) + ens_info_double (usage, "output_tokens", 0));
      response = ens_json_get_string (r, "response");
      s->owner->tasks_completed++;
    }
  else if (!cancelled)
    s->owner->tasks_failed++;
  s->owner->tokens_used += tokens;
  ens_session_record_task_end (s->record, result ? "completed" : cancelled ? "cancelled" : "failed", response,
                               result ? NULL : message, tokens, ms);

  extra = json_object_new ();
  if (result)
    {
      ens_session_record_history_add (s->record, "assistant", response ? response : "");
      json_object_set_member (s->record, "last_result", json_node_copy (result));
      json_object_set_member (extra, "result", json_node_copy (result));
      emit (s, "task_completed", task_id, extra);
    }
  else
    {
      json_object_set_string_member (extra, "error", message ? message : code);
      json_object_set_string_member (extra, "code", code);
      emit (s, "task_failed", task_id, extra);
    }
  json_object_unref (extra);
  publish_result (s, task_id, request_id, result, code, message);
  if (g_strcmp0 (json_object_get_string_member (s->record, "status"), "stopped") == 0)
    persist (s);
  else
    run_next (s, result ? "idle" : "failed");
}

static const EnsCompletionHooks session_hooks = { hook_chunk, hook_event, hook_done };

/* ---------------------------------------------------------- tasks */

/* Starts @t (transfer none) now: NULL, or (transfer full) the error that
 * refused its completion (nothing changed then). */
static EnsMessage *
task_start (EnsSession *s, EnsSessionTask *t)
{
  EnsSessions *sessions = s->owner;
  g_autoptr (JsonObject) cp = json_object_new ();
  JsonArray *history = json_array_new ();
  JsonArray *past = json_object_get_array_member (s->record, "history");
  EnsMessage *answer = NULL;
  EnsCompletion *c;
  const char *request_id = NULL;
  HookRef *hook_ref;
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;

  /* The whole conversation goes to the provider. */
  for (guint i = 0; i < json_array_get_length (past); i++)
    json_array_add_element (history, json_node_copy (json_array_get_element (past, i)));
  {
    JsonObject *m = json_object_new ();
    json_object_set_string_member (m, "role", "user");
    json_object_set_string_member (m, "content", t->description);
    json_array_add_object_element (history, m);
  }
  json_object_set_array_member (cp, "messages", history);
  if (json_object_has_member (s->record, "model"))
    json_object_set_string_member (cp, "model", json_object_get_string_member (s->record, "model"));
  if (json_object_has_member (s->record, "provider"))
    json_object_set_string_member (cp, "provider", json_object_get_string_member (s->record, "provider"));
  json_object_iter_init (&iter, t->params);
  while (json_object_iter_next (&iter, &name, &member))
    json_object_set_member (cp, name, json_node_copy (member));

  hook_ref = g_new0 (HookRef, 1); /* freed by hook_done */
  hook_ref->sessions = sessions;
  hook_ref->id = g_strdup (s->id);
  if (t->loop)
    request_id = ens_tool_loop_start (sessions->loops, t->request, cp, t->loop, &session_hooks, hook_ref, &answer);
  else if ((c = ens_completions_submit (sessions->completions, t->request, cp, NULL, NULL, &session_hooks, hook_ref,
                                        &answer)))
    request_id = ens_completion_id (c);
  if (request_id == NULL)
    {
      hook_ref_free (hook_ref);
      return answer; /* refused: the error says why */
    }
  g_clear_pointer (&answer, ens_message_unref);

  ens_session_record_history_add (s->record, "user", t->description);
  s->task_id = g_strdup (t->id);
  s->request_id = g_strdup (request_id);
  s->chunks = 0;
  s->task_started_us = g_get_monotonic_time ();
  ens_session_record_task_begin (s->record, t->id, t->description, t->meta);
  set_ended (s, 0);
  json_object_set_int_member (s->record, "tasks_total", json_object_get_int_member (s->record, "tasks_total") + 1);
  set_status (s, "running");
  {
    JsonObject *extra = json_object_new ();
    json_object_set_string_member (extra, "task", t->description);
    json_object_set_string_member (extra, "request_id", s->request_id);
    json_object_set_member (extra, "task_record", json_node_copy (json_object_get_member (s->record, "task")));
    emit (s, "task_executing", t->id, extra);
    json_object_unref (extra);
  }
  return NULL;
}

/* (transfer full) a task for @description from an execute's parameters,
 * each checked now (a queued task cannot be refused for them later); NULL
 * with *err (transfer full) set. */
static EnsSessionTask *
task_new (EnsMessage *request, JsonObject *p, const char *description, EnsMessage **err)
{
  EnsSessionTask *t;
  JsonObject *params, *meta;
  double number = 0;
  g_autoptr (JsonObject) route = json_object_new ();

  g_autoptr (JsonObject) loop = NULL;

  if ((*err = ens_session_read_task_meta (request, p, &meta)))
    return NULL;
  loop = ens_tool_loop_read (request, p, err);
  if (*err)
    {
      g_clear_pointer (&meta, json_object_unref);
      return NULL;
    }
  if (!ens_completion_read_number (p, "max_tokens", 1, 1e6, &number))
    *err = ens_message_new_invalid (request, "max_tokens", "a number from 1 to 1000000");
  else if (!ens_completion_read_number (p, "temperature", 0, 2, &number))
    *err = ens_message_new_invalid (request, "temperature", "a number from 0 to 2");
  else
    *err = ens_completion_read_route (request, p, route);
  if (*err)
    {
      g_clear_pointer (&meta, json_object_unref);
      return NULL;
    }
  params = json_object_new ();
  for (const char *const *f = (const char *const[]){ "max_tokens", "temperature", "task_type", "priority", NULL }; *f; f++)
    if (p && json_object_has_member (p, *f) && !JSON_NODE_HOLDS_NULL (json_object_get_member (p, *f)))
      json_object_set_member (params, *f, json_node_copy (json_object_get_member (p, *f)));
  t = g_new0 (EnsSessionTask, 1);
  t->description = g_strdup (description);
  t->params = params;
  t->meta = meta ? meta : json_object_new ();
  t->request = ens_message_ref (request);
  t->loop = g_steal_pointer (&loop);
  return t;
}

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

/* Runs @t (transfer full) on @s now, or queues it when a task runs; the
 * answer to @request: the ack, or why not. */
static EnsMessage *
session_submit (EnsSession *s, EnsSessionTask *t, EnsMessage *request)
{
  EnsSessions *sessions = s->owner;
  EnsMessage *err;
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  g_autofree char *topic_pattern = g_strdup_printf ("session.%s.*", s->id);

  json_object_set_string_member (obj, "session_id", s->id);
  json_object_set_string_member (obj, "watch", topic_pattern);
  if (s->task_id)
    {
      guint limit = ens_config_get_uint (sessions->config, "session-queue-length");
      JsonObject *extra;

      if (g_queue_get_length (&s->waiting) >= limit)
        {
          JsonObject *det;
          g_autoptr (JsonNode) details = ens_json_object_node (&det);
          json_object_set_string_member (det, "task_id", s->task_id);
          json_object_set_int_member (det, "queued", g_queue_get_length (&s->waiting));
          json_object_set_int_member (det, "session_queue_length", limit);
          task_free (t);
          return ens_message_new_error (request, "SESSION_BUSY",
                                        "the session is running a task and its queue is full (session-queue-length); "
                                        "wait for task_completed",
                                        details);
        }
      t->id = g_strdup_printf ("task_%" G_GUINT64_FORMAT, ++sessions->next_task);
      g_queue_push_tail (&s->waiting, t);
      extra = json_object_new ();
      json_object_set_string_member (extra, "task", t->description);
      json_object_set_int_member (extra, "queue_position", g_queue_get_length (&s->waiting));
      emit (s, "task_queued", t->id, extra);
      json_object_unref (extra);
      json_object_set_string_member (obj, "task_id", t->id);
      json_object_set_string_member (obj, "status", "queued");
      json_object_set_int_member (obj, "queue_position", g_queue_get_length (&s->waiting));
      return ens_message_new_reply (request, data);
    }
  t->id = g_strdup_printf ("task_%" G_GUINT64_FORMAT, sessions->next_task + 1);
  err = task_start (s, t);
  task_free (t);
  if (err)
    return err;
  sessions->next_task++;
  json_object_set_string_member (obj, "task_id", s->task_id);
  json_object_set_string_member (obj, "request_id", s->request_id);
  json_object_set_string_member (obj, "status", "executing");
  return ens_message_new_reply (request, data);
}

/* The task of an execute (or spawn) {task | prompt, ...}: (transfer full),
 * or NULL with *err (transfer full). */
static EnsSessionTask *
read_task (EnsMessage *request, JsonObject *p, EnsMessage **err)
{
  const char *task = ens_json_get_string (p, "task");

  if (task == NULL)
    task = ens_json_get_string (p, "prompt");
  if (task == NULL || task[0] == '\0')
    {
      *err = ens_message_new_invalid (request, "task", "a non-empty string");
      return NULL;
    }
  return task_new (request, p, task, err);
}

static EnsMessage *
session_execute (EnsSessions *sessions, EnsMessage *request, JsonObject *p)
{
  EnsMessage *err = NULL;
  EnsSession *s = lookup (sessions, request, p, &err);
  EnsSessionTask *t;

  if (s == NULL)
    return err;
  if ((t = read_task (request, p, &err)) == NULL)
    return err;
  if (g_strcmp0 (json_object_get_string_member (s->record, "status"), "stopped") == 0)
    {
      task_free (t);
      return ens_message_new_error (request, "SESSION_STOPPED", "the session was stopped", NULL);
    }
  return session_submit (s, t, request);
}

/* A session id a caller chose: it names topics, so no glob characters. */
static gboolean
session_id_valid (const char *id)
{
  return ens_name_valid (id);
}

/* sessions.spawn, and sessions.ensure (@ensure: an existing session_id is
 * the answer, created:false). */
static EnsMessage *
session_spawn (EnsSessions *sessions, EnsMessage *request, JsonObject *p, gboolean ensure)
{
  const char *orchestrator, *type, *model, *provider, *task, *system, *id;
  EnsSession *s;
  JsonObject *meta = NULL;
  EnsSessionTask *t = NULL;
  EnsMessage *err;

  if (!optional_string (p, "session_id", &id) || (id && !session_id_valid (id)) || (ensure && id == NULL))
    return ens_message_new_invalid (request, "session_id", "1 to 64 characters of A-Z a-z 0-9 . _ - (not first .)");
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
  if ((err = ens_session_read_task_meta (request, p, &meta)))
    return err;
  g_clear_pointer (&meta, json_object_unref);
  if (task && !ensure && (t = read_task (request, p, &err)) == NULL)
    return err;

  if (id && (s = g_hash_table_lookup (sessions->table, id)))
    {
      g_autoptr (JsonNode) data = NULL;
      JsonObject *det;
      g_autoptr (JsonNode) details = NULL;

      g_clear_pointer (&t, task_free);
      if (ensure)
        {
          data = describe (s, TRUE);
          json_object_set_boolean_member (json_node_get_object (data), "created", FALSE);
          return ens_message_new_reply (request, data);
        }
      details = ens_json_object_node (&det);
      json_object_set_string_member (det, "session_id", id);
      return ens_message_new_error (request, "SESSION_EXISTS", "a session with that session_id exists", details);
    }

  s = g_new0 (EnsSession, 1);
  s->owner = sessions;
  s->id = id ? g_strdup (id) : g_strdup_printf ("sess_%08x%08x", g_random_int (), g_random_int ());
  s->created_us = g_get_real_time ();
  s->record = ens_session_record_new (s->id, orchestrator, type, model, provider, system, s->created_us);
  g_queue_init (&s->waiting);
  g_hash_table_insert (sessions->table, s->id, s);
  sessions->spawned++;
  persist (s);
  emit_lifecycle (s, "session_spawned");

  if (t)
    {
      /* Spawn with a task runs it at once; the answer is the execute ack,
       * with the record as it now is. */
      EnsMessage *answer = session_submit (s, t, request);
      if (answer->kind == ENS_MESSAGE_REPLY && answer->data && JSON_NODE_HOLDS_OBJECT (answer->data))
        json_object_set_member (json_node_get_object (answer->data), "session", describe (s, FALSE));
      return answer;
    }
  {
    g_autoptr (JsonNode) data = describe (s, TRUE);
    if (ensure)
      json_object_set_boolean_member (json_node_get_object (data), "created", TRUE);
    return ens_message_new_reply (request, data);
  }
}

static EnsMessage *
session_status (EnsSessions *sessions, EnsMessage *request, JsonObject *p)
{
  EnsMessage *err = NULL;
  EnsSession *s = lookup (sessions, request, p, &err);
  g_autoptr (JsonNode) data = NULL;

  if (s == NULL)
    return err;
  data = describe (s, TRUE);
  return ens_message_new_reply (request, data);
}

/* Stops @s: status stopped, the running task cancelled (its task_failed
 * CANCELLED follows), the waiting ones dropped with task_failed now. */
static EnsMessage *
session_stop (EnsSessions *sessions, EnsMessage *request, JsonObject *p)
{
  EnsMessage *err = NULL;
  EnsSession *s = lookup (sessions, request, p, &err);
  g_autoptr (JsonNode) data = NULL;
  EnsSessionTask *t;

  if (s == NULL)
    return err;
  if (g_strcmp0 (json_object_get_string_member (s->record, "status"), "stopped") != 0)
    {
      if (s->task_id)
        ens_session_record_task_set_status (s->record, "cancelled");
      set_ended (s, g_get_real_time ());
      set_status (s, "stopped");
      while ((t = g_queue_pop_head (&s->waiting)))
        {
          task_dropped (s, t, ENS_COMPLETION_ERR_CANCELLED, "the session was stopped before the task started");
          task_free (t);
        }
      if (s->request_id && !ens_tool_loops_cancel (sessions->loops, s->request_id))
        ens_completions_cancel_id (sessions->completions, s->request_id); /* task_failed (CANCELLED) follows */
    }
  data = describe (s, TRUE);
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
    json_array_add_element (array, describe (g_ptr_array_index (all, i), FALSE)); /* the list stays small */
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

JsonNode *
ens_sessions_stats (EnsSessions *sessions)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  GHashTableIter iter;
  gpointer value;
  guint queued = 0, ended = 0;
  double total_ms = 0;

  g_hash_table_iter_init (&iter, sessions->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EnsSession *s = value;
      queued += g_queue_get_length (&s->waiting);
      if (s->ended_us && s->created_us && s->ended_us >= s->created_us)
        {
          ended++;
          total_ms += (s->ended_us - s->created_us) / 1000.0;
        }
    }
  json_object_set_int_member (obj, "spawned", sessions->spawned);
  json_object_set_int_member (obj, "tasks_completed", sessions->tasks_completed);
  json_object_set_int_member (obj, "tasks_failed", sessions->tasks_failed);
  json_object_set_int_member (obj, "tasks_queued", queued);
  json_object_set_int_member (obj, "tokens_used", sessions->tokens_used);
  json_object_set_int_member (obj, "ended", ended);
  json_object_set_int_member (obj, "avg_session_ms", ended ? (gint64) (total_ms / ended + 0.5) : 0);
  return node;
}

/* ---------------------------------------------------------- verbs */

static EnsMessage *
verb_spawn (EnsCall *call, gpointer data)
{
  return session_spawn (data, call->msg, call->params, FALSE);
}

static EnsMessage *
verb_ensure (EnsCall *call, gpointer data)
{
  return session_spawn (data, call->msg, call->params, TRUE);
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
  ens_verbs_add (verbs, "sessions.ensure", verb_ensure, sessions);
  ens_verbs_add (verbs, "sessions.execute", verb_execute, sessions);
  ens_verbs_add (verbs, "sessions.status", verb_status, sessions);
  ens_verbs_add (verbs, "sessions.stop", verb_stop, sessions);
  ens_verbs_add (verbs, "sessions.list", verb_list, sessions);
}

/* A record read back after a restart: what ran died with the daemon. */
static void
restore (EnsSession *s)
{
  JsonObject *task = ens_session_record_task (s->record);

  s->created_us = parse_time (s->record, "created_at");
  s->ended_us = parse_time (s->record, "ended_at");
  ens_session_record_metrics (s->record);
  if (g_strcmp0 (json_object_get_string_member_with_default (s->record, "status", ""), "running") == 0)
    {
      json_object_set_string_member (s->record, "status", "interrupted");
      if (task && g_strcmp0 (ens_json_get_string (task, "status"), "running") == 0)
        ens_session_record_task_set_status (s->record, "interrupted");
    }
}

EnsSessions *
ens_sessions_new (EnsConfig *config, EnsState *state, EnsCompletions *completions, EnsEvents *events,
                  EnsRequests *requests, EnsAgents *agents)
{
  EnsSessions *sessions = g_new0 (EnsSessions, 1);
  g_autoptr (GPtrArray) keys = ens_state_list (state, "sessions", "", G_MAXINT, NULL);

  sessions->config = config;
  sessions->state = state;
  sessions->completions = completions;
  sessions->events = events;
  sessions->loops = ens_tool_loops_new (completions, requests, agents);
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
      g_queue_init (&s->waiting);
      restore (s);
      g_hash_table_insert (sessions->table, s->id, s);
    }
  return sessions;
}

void
ens_sessions_free (EnsSessions *sessions)
{
  if (sessions == NULL)
    return;
  ens_tool_loops_free (sessions->loops); /* may end tasks: before the sessions go */
  g_hash_table_unref (sessions->table);
  g_free (sessions);
}
