/* ens-upstream-messages.c — see ens-upstream-messages.h. */
#include "ens-upstream-messages.h"
#include "ens-json-write.h"

#include <string.h>

static const char *
string_member (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                         : NULL;
}

static JsonArray *
tool_calls_of (JsonObject *m)
{
  JsonNode *n = json_object_get_member (m, "tool_calls");

  return n && JSON_NODE_HOLDS_ARRAY (n) && json_array_get_length (json_node_get_array (n)) > 0
           ? json_node_get_array (n) : NULL;
}

/* (transfer full) @node in the Chat Completions form, or NULL when it is
 * in it already. */
static JsonNode *
openai_message (JsonNode *node)
{
  JsonObject *m = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *role = string_member (m, "role");
  JsonArray *calls = m ? tool_calls_of (m) : NULL;
  JsonObject *out;
  JsonNode *result;

  if (g_strcmp0 (role, "assistant") == 0 && calls && string_member (json_array_get_object_element (calls, 0), "type") == NULL)
    {
      JsonArray *wire = json_array_new ();
      const char *text = string_member (m, "content");

      out = json_object_new ();
      json_object_set_string_member (out, "role", "assistant");
      if (text && *text)
        json_object_set_string_member (out, "content", text);
      else
        json_object_set_null_member (out, "content");
      for (guint i = 0; i < json_array_get_length (calls); i++)
        {
          JsonNode *el = json_array_get_element (calls, i);
          JsonObject *c = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
          JsonObject *w = json_object_new (), *fn = json_object_new ();
          JsonNode *args = c ? json_object_get_member (c, "arguments") : NULL;
          char *text_args;

          if (args && JSON_NODE_HOLDS_VALUE (args) && json_node_get_value_type (args) == G_TYPE_STRING)
            text_args = g_strdup (json_node_get_string (args));
          else
            text_args = args ? ens_json_write_to_string (args, FALSE) : g_strdup ("{}");
          json_object_set_string_member (w, "id", string_member (c, "id") ? string_member (c, "id") : "");
          json_object_set_string_member (w, "type", "function");
          json_object_set_string_member (fn, "name", string_member (c, "name") ? string_member (c, "name") : "");
          json_object_set_string_member (fn, "arguments", text_args);
          g_free (text_args);
          json_object_set_object_member (w, "function", fn);
          json_array_add_object_element (wire, w);
        }
      json_object_set_array_member (out, "tool_calls", wire);
    }
  else if (g_strcmp0 (role, "tool") == 0 && string_member (m, "tool_call_id"))
    {
      out = json_object_new ();
      json_object_set_string_member (out, "role", "tool");
      json_object_set_string_member (out, "tool_call_id", string_member (m, "tool_call_id"));
      json_object_set_string_member (out, "content", string_member (m, "content") ? string_member (m, "content") : "");
    }
  else
    return NULL;
  result = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (result, out);
  return result;
}

void
ens_upstream_openai_write_message (GString *out, JsonNode *node)
{
  g_autoptr (JsonNode) converted = openai_message (node);

  ens_json_write (out, converted ? converted : node);
}

gboolean
ens_upstream_anthropic_tool_message (JsonArray *out, JsonObject *m)
{
  const char *role = string_member (m, "role");
  guint n = json_array_get_length (out);

  if (g_strcmp0 (role, "assistant") == 0 && tool_calls_of (m))
    {
      JsonArray *calls = tool_calls_of (m), *blocks = json_array_new ();
      JsonObject *msg = json_object_new ();
      const char *text = string_member (m, "content");

      if (text && *text)
        {
          JsonObject *b = json_object_new ();
          json_object_set_string_member (b, "type", "text");
          json_object_set_string_member (b, "text", text);
          json_array_add_object_element (blocks, b);
        }
      for (guint i = 0; i < json_array_get_length (calls); i++)
        {
          JsonNode *el = json_array_get_element (calls, i);
          JsonObject *c = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
          JsonNode *args = c ? json_object_get_member (c, "arguments") : NULL;
          JsonObject *b = json_object_new ();

          json_object_set_string_member (b, "type", "tool_use");
          json_object_set_string_member (b, "id", string_member (c, "id") ? string_member (c, "id") : "");
          json_object_set_string_member (b, "name", string_member (c, "name") ? string_member (c, "name") : "");
          if (args && JSON_NODE_HOLDS_OBJECT (args))
            json_object_set_member (b, "input", json_node_copy (args));
          else
            json_object_set_object_member (b, "input", json_object_new ());
          json_array_add_object_element (blocks, b);
        }
      json_object_set_string_member (msg, "role", "assistant");
      json_object_set_array_member (msg, "content", blocks);
      json_array_add_object_element (out, msg);
      return TRUE;
    }
  if (g_strcmp0 (role, "tool") == 0 && string_member (m, "tool_call_id"))
    {
      JsonObject *last = n ? json_array_get_object_element (out, n - 1) : NULL;
      JsonNode *lc = last ? json_object_get_member (last, "content") : NULL;
      JsonArray *blocks = NULL;
      JsonObject *b = json_object_new ();
      JsonNode *is_error = json_object_get_member (m, "is_error");

      /* Results that follow each other share one user message. */
      if (last && g_strcmp0 (string_member (last, "role"), "user") == 0 && lc && JSON_NODE_HOLDS_ARRAY (lc) &&
          json_array_get_length (json_node_get_array (lc)) > 0 &&
          g_strcmp0 (string_member (json_array_get_object_element (json_node_get_array (lc), 0), "type"),
                     "tool_result") == 0)
        blocks = json_node_get_array (lc);
      json_object_set_string_member (b, "type", "tool_result");
      json_object_set_string_member (b, "tool_use_id", string_member (m, "tool_call_id"));
      json_object_set_string_member (b, "content", string_member (m, "content") ? string_member (m, "content") : "");
      if (is_error && JSON_NODE_HOLDS_VALUE (is_error) && json_node_get_boolean (is_error))
        json_object_set_boolean_member (b, "is_error", TRUE);
      if (blocks)
        json_array_add_object_element (blocks, b);
      else
        {
          JsonObject *msg = json_object_new ();
          blocks = json_array_new ();
          json_array_add_object_element (blocks, b);
          json_object_set_string_member (msg, "role", "user");
          json_object_set_array_member (msg, "content", blocks);
          json_array_add_object_element (out, msg);
        }
      return TRUE;
    }
  return FALSE;
}
