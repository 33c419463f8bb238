/* ens-http-seeds.c — what the seed systems' HTTP dialects share (see
 * ens-http-seeds.h): answers and errors in their shapes, body fields read
 * with the failing field answered 422, their names for the core's fields. */
#include "ens-http-seeds.h"

#include <string.h>

const EnsSeedRename ens_seed_ksi_names[] = {
  { "name", "agent_id" }, { "actions", "capabilities" }, { "description", "role" }, { "orchestrator_id", "agent_id" },
  { NULL, NULL },
};
const EnsSeedRename ens_seed_neolith_names[] = {
  { "session_id", "sessionId" }, { "orchestrator_id", "orchestratorId" }, { "session_type", "sessionType" },
  { "name", "orchestrator_id" }, { "actions", "capabilities" }, { NULL, NULL },
};
const EnsSeedRename ens_seed_rhetor_names[] = {
  { "session_id", "socket_id" }, { "task", "message" }, { "session_type", "name" }, { NULL, NULL },
};

JsonObject *
ens_seed_answer_object (EnsMessage *answer)
{
  return answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data) : NULL;
}

void
ens_seed_reply_object (EnsHttpCall *call, guint status, JsonObject *obj)
{
  g_autoptr (JsonNode) node = ens_node_take_object (obj);
  ens_http_reply_json (call, status, node);
}

char *
ens_seed_now_iso (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

void
ens_seed_set_string_if (JsonObject *obj, const char *name, const char *value)
{
  if (value)
    json_object_set_string_member (obj, name, value);
}

/* A core error as the HTTP error body; INVALID_PARAMETERS becomes 422 with
 * the field as the dialect names it. */
void
ens_seed_error (EnsHttpCall *call, EnsMessage *answer, const EnsSeedRename *names)
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

gboolean
ens_seed_get_string (EnsHttpCall *call, JsonObject *body, const char *field, gboolean required, const char **out)
{
  EnsInvalid invalid;

  *out = NULL;
  if (ens_param_string (body, field, required ? ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY : 0, 0, out, &invalid))
    return TRUE;
  ens_http_reply_invalid (call, invalid.field, invalid.expected);
  return FALSE;
}

/* The first of @fields present, as a non-empty string; 422 naming @fields[0]. */
gboolean
ens_seed_get_string_alias (EnsHttpCall *call, JsonObject *body, const char *const *fields, gboolean required, const char **out)
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

gboolean
ens_seed_get_strv (EnsHttpCall *call, JsonObject *body, const char *field, JsonArray **out)
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

gboolean
ens_seed_get_number (EnsHttpCall *call, JsonObject *body, const char *field, double min, double max, const char *expected,
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
void
ens_seed_copy_result (JsonObject *to, JsonObject *result)
{
  for (const char *const *k = (const char *const[]){ "model", "provider", "usage", "finish_reason", "cost",
                                                     "duration_ms", "tool_calls", NULL };
       *k; k++)
    ens_member_copy (to, *k, result, *k);
}

/* A failed task (task_failed {error, code}) as an HTTP error. */
void
ens_seed_reply_task_failed (EnsHttpCall *call, JsonObject *ev, JsonNode *event_data)
{
  const char *code = ens_member_string_or (ev, "code", "TASK_FAILED");
  guint status = ens_http_status_for (code);

  ens_http_reply_error (call, status == 500 ? 502 : status, code,
                        ens_member_string_or (ev, "error", "the task failed"), event_data);
}
