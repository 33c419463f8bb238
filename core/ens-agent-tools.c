/* ens-agent-tools.c — see ens-agent-tools.h. */
#include "ens-agent-tools.h"

#include <string.h>

#define MAX_ACTION_BYTES 256

void
ens_agent_tool_free (EnsAgentTool *tool)
{
  if (tool == NULL)
    return;
  g_free (tool->name);
  g_free (tool->description);
  if (tool->schema)
    ens_schema_unref (tool->schema);
  g_free (tool);
}

EnsAgentTools *
ens_agent_tools_new (void)
{
  EnsAgentTools *tools = g_new0 (EnsAgentTools, 1);

  tools->names = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (tools->names, NULL);
  tools->tools = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_agent_tool_free);
  return tools;
}

void
ens_agent_tools_free (EnsAgentTools *tools)
{
  if (tools == NULL)
    return;
  g_ptr_array_unref (tools->names);
  g_ptr_array_unref (tools->tools);
  g_free (tools);
}

static guint
index_of (EnsAgentTools *tools, const char *action)
{
  for (guint i = 0; i < tools->tools->len; i++)
    if (strcmp (((EnsAgentTool *) g_ptr_array_index (tools->tools, i))->name, action) == 0)
      return i;
  return G_MAXUINT;
}

/* Declares @tool (transfer full), replacing an earlier one of its name. */
static void
put (EnsAgentTools *tools, EnsAgentTool *tool)
{
  guint i = index_of (tools, tool->name);

  if (i != G_MAXUINT)
    {
      ens_agent_tool_free (g_ptr_array_index (tools->tools, i));
      g_ptr_array_index (tools->tools, i) = tool;
      return;
    }
  g_ptr_array_add (tools->tools, tool);
  g_ptr_array_index (tools->names, tools->names->len - 1) = g_strdup (tool->name);
  g_ptr_array_add (tools->names, NULL);
}

static gboolean
valid_action (const char *name)
{
  gsize len = name ? strlen (name) : 0;
  return len > 0 && len <= MAX_ACTION_BYTES && g_utf8_validate (name, len, NULL);
}

static gboolean
malformed (char **field, char **expected, const char *member, guint index, const char *sub, const char *what)
{
  *field = sub ? g_strdup_printf ("%s[%u].%s", member, index, sub) : g_strdup_printf ("%s[%u]", member, index);
  *expected = g_strdup (what);
  return FALSE;
}

gboolean
ens_agent_tools_add_list (EnsAgentTools *tools, JsonNode *list, const char *member, char **field, char **expected)
{
  JsonArray *array;
  g_autoptr (GPtrArray) parsed = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_agent_tool_free);

  if (list == NULL || JSON_NODE_HOLDS_NULL (list))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (list))
    {
      *field = g_strdup (member);
      *expected = g_strdup ("a list of actions, each a name or {name, description?, input_schema?}");
      return FALSE;
    }
  /* All or nothing: nothing is declared unless every entry is well-formed. */
  array = json_node_get_array (list);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *e = json_array_get_element (array, i);
      EnsAgentTool *tool = g_new0 (EnsAgentTool, 1);
      JsonObject *obj;
      JsonNode *n;

      g_ptr_array_add (parsed, tool);
      if (JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING)
        {
          if (!valid_action (json_node_get_string (e)))
            return malformed (field, expected, member, i, NULL, "an action name of 1-256 bytes of UTF-8");
          tool->name = g_strdup (json_node_get_string (e));
          continue;
        }
      if (!JSON_NODE_HOLDS_OBJECT (e))
        return malformed (field, expected, member, i, NULL, "an action name or {name, description?, input_schema?}");
      obj = json_node_get_object (e);
      n = json_object_get_member (obj, "name");
      if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING ||
          !valid_action (json_node_get_string (n)))
        return malformed (field, expected, member, i, "name", "an action name of 1-256 bytes of UTF-8");
      tool->name = g_strdup (json_node_get_string (n));
      n = json_object_get_member (obj, "description");
      if (n && !JSON_NODE_HOLDS_NULL (n))
        {
          if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
            return malformed (field, expected, member, i, "description", "a string");
          tool->description = g_strdup (json_node_get_string (n));
        }
      n = json_object_get_member (obj, "input_schema");
      if (n && !JSON_NODE_HOLDS_NULL (n))
        {
          g_autoptr (GError) error = NULL;
          tool->schema = ens_schema_new (n, &error);
          if (tool->schema == NULL)
            {
              g_autofree char *what = g_strdup_printf ("a JSON Schema (%s)", error->message);
              return malformed (field, expected, member, i, "input_schema", what);
            }
          if (!ens_schema_is_object (tool->schema))
            return malformed (field, expected, member, i, "input_schema",
                              "a JSON Schema of an object (\"type\": \"object\"): requests carry objects");
        }
    }
  for (guint i = 0; i < parsed->len; i++)
    put (tools, g_steal_pointer (&g_ptr_array_index (parsed, i)));
  return TRUE;
}

void
ens_agent_tools_add_names (EnsAgentTools *tools, const char *const *names)
{
  for (guint i = 0; names && names[i]; i++)
    if (valid_action (names[i]) && index_of (tools, names[i]) == G_MAXUINT)
      {
        EnsAgentTool *tool = g_new0 (EnsAgentTool, 1);
        tool->name = g_strdup (names[i]);
        put (tools, tool);
      }
}

EnsAgentTool *
ens_agent_tools_find (EnsAgentTools *tools, const char *action)
{
  guint i = action ? index_of (tools, action) : G_MAXUINT;
  return i == G_MAXUINT ? NULL : g_ptr_array_index (tools->tools, i);
}

char **
ens_agent_tools_names (EnsAgentTools *tools)
{
  return (char **) tools->names->pdata;
}

JsonNode *
ens_agent_tools_describe (EnsAgentTools *tools)
{
  JsonArray *array = json_array_sized_new (tools->tools->len);
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < tools->tools->len; i++)
    {
      EnsAgentTool *tool = g_ptr_array_index (tools->tools, i);
      JsonObject *obj = json_object_new ();

      json_object_set_string_member (obj, "name", tool->name);
      if (tool->description)
        json_object_set_string_member (obj, "description", tool->description);
      if (tool->schema)
        json_object_set_member (obj, "input_schema", json_node_copy (ens_schema_get_node (tool->schema)));
      json_array_add_object_element (array, obj);
    }
  json_node_take_array (node, array);
  return node;
}

gboolean
ens_agent_tools_check (EnsAgentTools *tools, const char *action, JsonNode *data, char **field, char **expected)
{
  EnsAgentTool *tool = ens_agent_tools_find (tools, action);
  g_autoptr (JsonNode) empty = NULL;

  if (tool == NULL || tool->schema == NULL)
    return TRUE;
  if (data == NULL)
    {
      empty = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (empty, json_object_new ());
    }
  return ens_schema_validate (tool->schema, data ? data : empty, "data", field, expected);
}
