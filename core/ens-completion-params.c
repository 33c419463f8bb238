/* ens-completion-params.c — the parameters of complete and route, read
 * and checked before anything is queued or routed. */
#include "ens-completion-params.h"
#include "ens-json.h"

#include <math.h>
#include <string.h>

gboolean
ens_completion_read_number (JsonObject *p, const char *field, double min, double max, double *out)
{
  JsonNode *n = p ? json_object_get_member (p, field) : NULL;
  GType t;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  t = json_node_get_value_type (n);
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    return FALSE;
  *out = json_node_get_double (n);
  return isfinite (*out) && *out >= min && *out <= max;
}

EnsMessage *
ens_completion_read_route_fields (EnsMessage *request, JsonObject *p, EnsCompletionRoute *out)
{
  const char *task_type = ens_json_get_string (p, "task_type");
  const char *priority = ens_json_get_string (p, "priority");

  out->token_count = -1;
  out->max_latency = 0;
  if (p && json_object_has_member (p, "task_type") && task_type == NULL)
    return ens_message_new_invalid (request, "task_type", "a string");
  if (p && json_object_has_member (p, "priority") &&
      !(priority && (!strcmp (priority, "high") || !strcmp (priority, "medium") || !strcmp (priority, "low"))))
    return ens_message_new_invalid (request, "priority", "\"high\", \"medium\" or \"low\"");
  if (!ens_completion_read_number (p, "token_count", 0, 1e9, &out->token_count))
    return ens_message_new_invalid (request, "token_count", "a number from 0 to 1000000000");
  if (!ens_completion_read_number (p, "max_latency", 0, 3.6e6, &out->max_latency))
    return ens_message_new_invalid (request, "max_latency", "a number of milliseconds from 0 to 3600000");
  out->task_type = task_type ? task_type : "reasoning";
  out->priority = priority ? priority : "medium";
  return NULL;
}

EnsMessage *
ens_completion_read_route (EnsMessage *request, JsonObject *p, JsonObject *route)
{
  EnsCompletionRoute r;
  EnsMessage *err = ens_completion_read_route_fields (request, p, &r);

  if (err)
    return err;
  json_object_set_string_member (route, "task_type", r.task_type);
  json_object_set_string_member (route, "priority", r.priority);
  json_object_set_double_member (route, "max_latency", r.max_latency);
  if (r.token_count >= 0)
    json_object_set_double_member (route, "token_count", r.token_count);
  return NULL;
}

JsonNode *
ens_completion_read_messages (EnsMessage *request, JsonObject *p, EnsMessage **err, gsize *chars)
{
  JsonNode *messages = p ? json_object_get_member (p, "messages") : NULL;
  const char *prompt = ens_json_get_string (p, "prompt");
  const char *system = ens_json_get_string (p, "system");
  JsonArray *array;
  JsonNode *node;

  *chars = 0;
  if (messages)
    {
      JsonArray *in = JSON_NODE_HOLDS_ARRAY (messages) ? json_node_get_array (messages) : NULL;
      if (in == NULL || json_array_get_length (in) == 0)
        {
          *err = ens_message_new_invalid (request, "messages", "a non-empty list of {role, content}");
          return NULL;
        }
      for (guint i = 0; i < json_array_get_length (in); i++)
        {
          JsonNode *m = json_array_get_element (in, i);
          JsonObject *mo = JSON_NODE_HOLDS_OBJECT (m) ? json_node_get_object (m) : NULL;
          const char *role = mo ? ens_json_get_string (mo, "role") : NULL;
          const char *content = mo ? ens_json_get_string (mo, "content") : NULL;
          JsonNode *cnode = mo ? json_object_get_member (mo, "content") : NULL;
          /* An assistant turn that only calls tools has content null. */
          gboolean null_ok = role && strcmp (role, "assistant") == 0 && cnode && JSON_NODE_HOLDS_NULL (cnode);
          if (role == NULL || (content == NULL && !null_ok) ||
              (strcmp (role, "system") && strcmp (role, "user") && strcmp (role, "assistant") && strcmp (role, "tool")))
            {
              *err = ens_message_new_invalid (request, "messages",
                                              "a list of {role: system|user|assistant|tool, content: string "
                                              "(null for an assistant)}");
              return NULL;
            }
          *chars += content ? strlen (content) : 0;
        }
      return json_node_copy (messages);
    }
  if (prompt == NULL || prompt[0] == '\0')
    {
      *err = ens_message_new_invalid (request, "prompt", "a non-empty string (or give messages)");
      return NULL;
    }
  array = json_array_new ();
  if (system)
    {
      JsonObject *m = json_object_new ();
      json_object_set_string_member (m, "role", "system");
      json_object_set_string_member (m, "content", system);
      json_array_add_object_element (array, m);
      *chars += strlen (system);
    }
  {
    JsonObject *m = json_object_new ();
    json_object_set_string_member (m, "role", "user");
    json_object_set_string_member (m, "content", prompt);
    json_array_add_object_element (array, m);
    *chars += strlen (prompt);
  }
  node = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (node, array);
  return node;
}

#define MAX_INPUTS 2048

EnsMessage *
ens_completion_read_input (EnsMessage *request, JsonObject *p, JsonObject *params, gsize *chars)
{
  JsonNode *input = p ? json_object_get_member (p, "input") : NULL;
  JsonArray *out;
  double dimensions = -1;
  const char *expected = "a non-empty string, or a list of 1 to 2048 non-empty strings";

  *chars = 0;
  if (input == NULL)
    return ens_message_new_invalid (request, "input", expected);
  out = json_array_new ();
  if (JSON_NODE_HOLDS_VALUE (input) && json_node_get_value_type (input) == G_TYPE_STRING &&
      json_node_get_string (input)[0])
    json_array_add_string_element (out, json_node_get_string (input));
  else if (JSON_NODE_HOLDS_ARRAY (input) && json_array_get_length (json_node_get_array (input)) > 0 &&
           json_array_get_length (json_node_get_array (input)) <= MAX_INPUTS)
    {
      JsonArray *in = json_node_get_array (input);
      for (guint i = 0; i < json_array_get_length (in); i++)
        {
          JsonNode *el = json_array_get_element (in, i);
          if (!JSON_NODE_HOLDS_VALUE (el) || json_node_get_value_type (el) != G_TYPE_STRING ||
              json_node_get_string (el)[0] == '\0')
            break;
          json_array_add_string_element (out, json_node_get_string (el));
        }
      if (json_array_get_length (out) != json_array_get_length (in))
        g_clear_pointer (&out, json_array_unref);
    }
  else
    {
      json_array_unref (out);
      out = NULL;
    }
  if (out == NULL)
    return ens_message_new_invalid (request, "input", expected);
  for (guint i = 0; i < json_array_get_length (out); i++)
    *chars += strlen (json_array_get_string_element (out, i));
  json_object_set_string_member (params, "kind", "embeddings");
  json_object_set_array_member (params, "input", out);
  if (!ens_completion_read_number (p, "dimensions", 1, 65536, &dimensions) ||
      (dimensions > 0 && dimensions != (double) (gint64) dimensions))
    return ens_message_new_invalid (request, "dimensions", "a whole number from 1 to 65536");
  if (dimensions > 0)
    json_object_set_int_member (params, "dimensions", (gint64) dimensions);
  return NULL;
}

EnsMessage *
ens_completion_unsuited_model (EnsMessage *request, const char *field, const char *asked, gboolean embed)
{
  g_autofree char *text = NULL;
  JsonObject *det;
  g_autoptr (JsonNode) details = ens_json_object_node (&det);

  if (embed)
    text = g_strdup_printf ("the %s \"%s\" does not make embeddings (no backend lists it in embedding-models)", field,
                            asked);
  else
    text = g_strdup_printf ("the %s \"%s\" makes embeddings only (the embed verb, POST /v1/embeddings)", field, asked);
  json_object_set_string_member (det, "field", field);
  return ens_message_new_error (request, ENS_COMPLETION_ERR_UNSUPPORTED_MODEL, text, details);
}
