/* ens-tool-calls.c — see ens-tool-calls.h. */
#include "ens-tool-calls.h"

typedef struct {
  gint64 index; /* the hash key points here */
  char *id;
  GString *name;
  GString *arguments;
  gboolean announced;
} ToolCall;

struct _EnsToolCalls {
  guint max_calls;
  EnsUpstreamParseFunc parse;
  /* made with the first call (most answers have none) */
  GPtrArray *order;   /* ToolCall*, owned, in order of first appearance */
  GHashTable *by_index; /* &index -> ToolCall* */
};

static void
tool_call_free (ToolCall *tc)
{
  g_free (tc->id);
  if (tc->name)
    g_string_free (tc->name, TRUE);
  g_string_free (tc->arguments, TRUE);
  g_free (tc);
}

EnsToolCalls *
ens_tool_calls_new (guint max_calls, EnsUpstreamParseFunc parse)
{
  EnsToolCalls *calls = g_new0 (EnsToolCalls, 1);

  calls->max_calls = max_calls;
  calls->parse = parse ? parse : ens_upstream_json_parse;
  return calls;
}

void
ens_tool_calls_free (EnsToolCalls *calls)
{
  if (!calls)
    return;
  g_clear_pointer (&calls->by_index, g_hash_table_unref);
  g_clear_pointer (&calls->order, g_ptr_array_unref);
  g_free (calls);
}

gboolean
ens_tool_calls_update (EnsToolCalls *calls, gint64 index, const char *id, const char *name, const char *arguments,
                       gboolean *started, GError **error)
{
  ToolCall *tc;

  if (!calls->order)
    {
      calls->order = g_ptr_array_new_with_free_func ((GDestroyNotify) tool_call_free);
      calls->by_index = g_hash_table_new (g_int64_hash, g_int64_equal);
    }
  tc = g_hash_table_lookup (calls->by_index, &index);
  if (started)
    *started = FALSE;
  if (!tc)
    {
      if (calls->order->len >= calls->max_calls)
        {
          g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_LIMIT, "more than %u tool calls (max-tool-calls)",
                       calls->max_calls);
          return FALSE;
        }
      tc = g_new0 (ToolCall, 1);
      tc->index = index;
      tc->arguments = g_string_new (NULL);
      g_ptr_array_add (calls->order, tc);
      g_hash_table_insert (calls->by_index, &tc->index, tc);
    }
  if (id && *id && !tc->id)
    tc->id = g_strdup (id);
  if (name && *name)
    {
      /* Some servers send the name in pieces, like the arguments. */
      if (!tc->name)
        tc->name = g_string_new (name);
      else
        g_string_append (tc->name, name);
    }
  if (arguments)
    g_string_append (tc->arguments, arguments);
  if (tc->name && !tc->announced)
    {
      tc->announced = TRUE;
      if (started)
        *started = TRUE;
    }
  return TRUE;
}

guint
ens_tool_calls_count (EnsToolCalls *calls)
{
  return calls->order ? calls->order->len : 0;
}

JsonNode *
ens_tool_calls_start_event (EnsToolCalls *calls, gint64 index)
{
  ToolCall *tc = calls->by_index ? g_hash_table_lookup (calls->by_index, &index) : NULL;
  JsonObject *obj = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_int_member (obj, "index", index);
  if (tc && tc->id)
    json_object_set_string_member (obj, "id", tc->id);
  else
    json_object_set_null_member (obj, "id");
  json_object_set_string_member (obj, "name", tc && tc->name ? tc->name->str : "");
  json_node_take_object (node, obj);
  return node;
}

JsonNode *
ens_tool_calls_to_json (EnsToolCalls *calls)
{
  guint n = ens_tool_calls_count (calls);
  JsonArray *array = json_array_sized_new (n);
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < n; i++)
    {
      ToolCall *tc = g_ptr_array_index (calls->order, i);
      JsonObject *obj = json_object_new ();
      const char *args = tc->arguments->len ? tc->arguments->str : "{}";
      JsonNode *parsed = calls->parse (args, tc->arguments->len ? tc->arguments->len : 2, NULL);

      json_object_set_string_member (obj, "id", tc->id ? tc->id : "");
      json_object_set_string_member (obj, "type", "function");
      json_object_set_string_member (obj, "name", tc->name ? tc->name->str : "");
      if (parsed)
        json_object_set_member (obj, "arguments", parsed);
      else
        json_object_set_string_member (obj, "arguments", args);
      json_array_add_object_element (array, obj);
    }
  json_node_take_array (node, array);
  return node;
}
