/* ens-session-record.c — a session's record (see ens-session-record.h). */
#include "ens-session-record.h"
#include "ens-json.h"

#include <string.h>

#define MAX_HISTORY 200        /* messages kept per session */
#define RECENT_TASKS 20        /* outcomes kept per session */
#define RECENT_TEXT_CHARS 4096 /* of each outcome's answer */

static void
set_now (JsonObject *obj, const char *member)
{
  ens_json_set_timestamp (obj, member, g_get_real_time ());
}

JsonObject *
ens_session_record_new (const char *id, const char *orchestrator, const char *type, const char *model,
                        const char *provider, const char *system, gint64 created_us)
{
  JsonObject *record = json_object_new ();

  json_object_set_string_member (record, "id", id);
  json_object_set_string_member (record, "orchestrator_id", orchestrator ? orchestrator : "");
  json_object_set_string_member (record, "session_type", type ? type : "default");
  if (model)
    json_object_set_string_member (record, "model", model);
  if (provider)
    json_object_set_string_member (record, "provider", provider);
  json_object_set_string_member (record, "status", "idle");
  ens_json_set_timestamp (record, "created_at", created_us);
  json_object_set_array_member (record, "history", json_array_new ());
  json_object_set_int_member (record, "tasks_total", 0);
  ens_session_record_metrics (record);
  json_object_set_array_member (record, "recent_tasks", json_array_new ());
  if (system)
    ens_session_record_history_add (record, "system", system);
  return record;
}

JsonObject *
ens_session_record_metrics (JsonObject *record)
{
  JsonNode *n = json_object_get_member (record, "metrics");

  if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n))
    {
      JsonObject *m = json_object_new ();
      for (const char *const *k = (const char *const[]){ "tokens_used", "duration_ms", "tasks_completed",
                                                         "tasks_failed", "avg_response_ms", NULL };
           *k; k++)
        json_object_set_int_member (m, *k, 0);
      json_object_set_object_member (record, "metrics", m);
    }
  return json_object_get_object_member (record, "metrics");
}

void
ens_session_record_history_add (JsonObject *record, const char *role, const char *content)
{
  JsonArray *history = json_object_get_array_member (record, "history");
  JsonObject *m = json_object_new ();

  json_object_set_string_member (m, "role", role);
  json_object_set_string_member (m, "content", content);
  json_array_add_object_element (history, m);
  while (json_array_get_length (history) > MAX_HISTORY)
    json_array_remove_element (history, 0);
}

void
ens_session_record_set_ended (JsonObject *record, gint64 when)
{
  if (when)
    ens_json_set_timestamp (record, "ended_at", when);
  else if (json_object_has_member (record, "ended_at"))
    json_object_remove_member (record, "ended_at");
}

JsonObject *
ens_session_record_task (JsonObject *record)
{
  JsonNode *n = json_object_get_member (record, "task");
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

void
ens_session_record_task_set_status (JsonObject *record, const char *status)
{
  JsonObject *task = ens_session_record_task (record);

  if (task == NULL)
    return;
  json_object_set_string_member (task, "status", status);
  set_now (task, "updated_at");
}

void
ens_session_record_task_begin (JsonObject *record, const char *id, const char *description, JsonObject *meta)
{
  JsonObject *task = json_object_new ();
  const char *type = meta ? ens_json_get_string (meta, "type") : NULL;
  const char *priority = meta ? ens_json_get_string (meta, "priority") : NULL;
  const char *assigned = meta ? ens_json_get_string (meta, "assigned_to") : NULL;

  json_object_set_string_member (task, "id", id);
  json_object_set_string_member (task, "description", description);
  json_object_set_string_member (task, "type", type ? type : "general");
  json_object_set_string_member (task, "priority", priority ? priority : "medium");
  json_object_set_string_member (task, "status", "running");
  set_now (task, "created_at");
  set_now (task, "updated_at");
  if (meta && json_object_has_member (meta, "metadata"))
    json_object_set_member (task, "metadata", json_node_copy (json_object_get_member (meta, "metadata")));
  if (assigned)
    json_object_set_string_member (task, "assigned_to", assigned);
  json_object_set_object_member (record, "task", task);
}

static void
add_int (JsonObject *obj, const char *member, gint64 n)
{
  json_object_set_int_member (obj, member, json_object_get_int_member_with_default (obj, member, 0) + n);
}

void
ens_session_record_task_end (JsonObject *record, const char *status, const char *response, const char *error,
                             gint64 tokens, gint64 ms)
{
  JsonObject *task = ens_session_record_task (record), *m = ens_session_record_metrics (record);
  JsonObject *r = json_object_new ();
  JsonNode *n = json_object_get_member (record, "recent_tasks");
  JsonArray *recent;

  add_int (m, "tokens_used", tokens);
  if (strcmp (status, "cancelled") != 0)
    {
      gint64 done = json_object_get_int_member_with_default (m, "tasks_completed", 0) +
                    json_object_get_int_member_with_default (m, "tasks_failed", 0);
      double avg = json_object_get_double_member_with_default (m, "avg_response_ms", 0);
      add_int (m, strcmp (status, "completed") == 0 ? "tasks_completed" : "tasks_failed", 1);
      json_object_set_int_member (m, "avg_response_ms", (gint64) ((avg * done + ms) / (done + 1) + 0.5));
    }
  ens_session_record_task_set_status (record, status);

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    json_object_set_array_member (record, "recent_tasks", json_array_new ());
  recent = json_object_get_array_member (record, "recent_tasks");
  json_object_set_string_member (r, "id", task ? ens_json_get_string (task, "id") : "");
  json_object_set_string_member (r, "description", task ? ens_json_get_string (task, "description") : "");
  json_object_set_string_member (r, "status", status);
  if (response)
    {
      g_autofree char *cut = g_utf8_strlen (response, -1) > RECENT_TEXT_CHARS
                               ? g_utf8_substring (response, 0, RECENT_TEXT_CHARS) : NULL;
      json_object_set_string_member (r, "response", cut ? cut : response);
    }
  if (error)
    json_object_set_string_member (r, "error", error);
  json_object_set_int_member (r, "tokens_used", tokens);
  json_object_set_int_member (r, "duration_ms", ms);
  set_now (r, "ended_at");
  json_array_add_object_element (recent, r);
  while (json_array_get_length (recent) > RECENT_TASKS)
    json_array_remove_element (recent, 0);
}

EnsMessage *
ens_session_read_task_meta (EnsMessage *request, JsonObject *p, JsonObject **out)
{
  JsonNode *n = p ? json_object_get_member (p, "task_meta") : NULL;
  JsonObject *meta, *copy;

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return ens_message_new_invalid (request, "task_meta", "an object {type?, priority?, metadata?, assigned_to?}");
  meta = json_node_get_object (n);
  for (const char *const *k = (const char *const[]){ "type", "priority", "assigned_to", NULL }; *k; k++)
    {
      JsonNode *v = json_object_get_member (meta, *k);
      const char *text = ens_json_get_string (meta, *k);
      if (v && !JSON_NODE_HOLDS_NULL (v) && (text == NULL || text[0] == '\0'))
        {
          g_autofree char *field = g_strconcat ("task_meta.", *k, NULL);
          return ens_message_new_invalid (request, field, "a non-empty string");
        }
    }
  n = json_object_get_member (meta, "metadata");
  if (n && !JSON_NODE_HOLDS_NULL (n) && !JSON_NODE_HOLDS_OBJECT (n))
    return ens_message_new_invalid (request, "task_meta.metadata", "an object");
  copy = json_object_new ();
  for (const char *const *k = (const char *const[]){ "type", "priority", "assigned_to", "metadata", NULL }; *k; k++)
    if (json_object_has_member (meta, *k) && !JSON_NODE_HOLDS_NULL (json_object_get_member (meta, *k)))
      json_object_set_member (copy, *k, json_node_copy (json_object_get_member (meta, *k)));
  *out = copy;
  return NULL;
}
