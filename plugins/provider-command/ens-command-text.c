/* ens-command-text.c — the text provider-command gives a command (the
 * conversation flattened, {prompt} and {model} in its arguments) and reads
 * back from it (UTF-8 in whole characters, JSON output, usage). */
#include "ens-command.h"

#include <math.h>
#include <string.h>

/* ---- text helpers ---- */

/* (transfer full) the conversation as one text: the system prompt first,
 * then the turns.  A lone user message is passed as it is; a longer
 * conversation labels each turn so the program sees who said what. */
char *
ens_command_flatten_prompt (JsonArray *messages)
{
  GString *system = g_string_new (NULL);
  g_autoptr (GPtrArray) turns = g_ptr_array_new_with_free_func (g_free);
  guint users = 0, assistants = 0;
  GString *out;

  for (guint i = 0; messages && i < json_array_get_length (messages); i++)
    {
      JsonNode *m = json_array_get_element (messages, i);
      JsonObject *obj = JSON_NODE_HOLDS_OBJECT (m) ? json_node_get_object (m) : NULL;
      const char *role = obj ? json_object_get_string_member_with_default (obj, "role", "user") : "user";
      g_autofree char *text = ens_content_text (obj ? json_object_get_member (obj, "content") : NULL, "");

      if (g_strcmp0 (role, "system") == 0)
        {
          if (system->len)
            g_string_append (system, "\n\n");
          g_string_append (system, text);
        }
      else
        {
          gboolean assistant = g_strcmp0 (role, "assistant") == 0;
          assistants += assistant;
          users += !assistant;
          g_ptr_array_add (turns, g_strconcat (assistant ? "Assistant: " : "User: ", text, NULL));
        }
    }

  out = g_string_new (system->str);
  if (users == 1 && assistants == 0)
    {
      /* Drop the "User: " label of the only turn. */
      if (out->len)
        g_string_append (out, "\n\n");
      g_string_append (out, (char *) g_ptr_array_index (turns, 0) + strlen ("User: "));
    }
  else
    for (guint i = 0; i < turns->len; i++)
      {
        if (out->len)
          g_string_append (out, "\n\n");
        g_string_append (out, g_ptr_array_index (turns, i));
      }
  g_string_free (system, TRUE);
  return g_string_free (out, FALSE);
}

/* (transfer full) @arg with every {prompt} and {model} replaced. */
char *
ens_command_expand_arg (const char *arg, const char *prompt, const char *model)
{
  GString *out = g_string_new (arg);

  g_string_replace (out, "{model}", model, 0);
  g_string_replace (out, "{prompt}", prompt, 0);
  return g_string_free (out, FALSE);
}

/* (transfer full) the longest valid UTF-8 prefix of @pending, which it
 * removes; an incomplete character at the end waits for the next read
 * unless @flush. */
char *
ens_command_take_utf8 (GString *pending, gboolean flush)
{
  const char *end;
  gsize keep = 0, n;
  char *text;

  if (!flush && !g_utf8_validate_len (pending->str, pending->len, &end))
    {
      gsize rest = pending->len - (gsize) (end - pending->str);
      if (rest < 4 && g_utf8_get_char_validated (end, (gssize) rest) == (gunichar) -2)
        keep = rest;
    }
  n = pending->len - keep;
  text = g_utf8_make_valid (pending->str, (gssize) n);
  g_string_erase (pending, 0, (gssize) n);
  return text;
}

/* (transfer full) the last non-empty line of @text, or NULL. */
char *
ens_command_last_line (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = g_strv_length (lines); i > 0; i--)
    {
      g_autofree char *line = g_utf8_make_valid (lines[i - 1], -1);
      g_strstrip (line);
      if (*line)
        return g_steal_pointer (&line);
    }
  return NULL;
}

gint64
ens_command_estimate_tokens (glong chars)
{
  return (chars + 3) / 4;
}
/* (transfer full) the text of a "content" member: a string or an array of
 * {type: "text", text} blocks (the Anthropic shape); NULL otherwise. */
char *
ens_command_json_text_member (JsonObject *obj, const char *member)
{
  JsonNode *node = json_object_get_member (obj, member);

  if (node == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (node));
  if (JSON_NODE_HOLDS_ARRAY (node))
    return ens_content_text (node, "");
  return NULL;
}

/* (transfer full) the JSON object the command printed: the whole output, or
 * failing that its last line (programs that log before the result). */
JsonNode *
ens_command_parse_output (const char *text)
{
  g_autoptr (JsonNode) root = json_from_string (text, NULL);
  g_autofree char *line = NULL;

  if (root && JSON_NODE_HOLDS_OBJECT (root))
    return g_steal_pointer (&root);
  line = ens_command_last_line (text);
  g_clear_pointer (&root, json_node_unref);
  if (line)
    root = json_from_string (line, NULL);
  if (root && JSON_NODE_HOLDS_OBJECT (root))
    return g_steal_pointer (&root);
  return NULL;
}

gint64
ens_command_usage_member (JsonObject *usage, const char *name, const char *alias, gboolean *found)
{
  const char *names[] = { name, alias };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      JsonNode *n = usage && names[i] ? json_object_get_member (usage, names[i]) : NULL;
      if (n && JSON_NODE_HOLDS_VALUE (n) &&
          (json_node_get_value_type (n) == G_TYPE_INT64 || json_node_get_value_type (n) == G_TYPE_DOUBLE))
        {
          *found = TRUE;
          return json_node_get_int (n);
        }
    }
  return 0;
}

/* A number member of @obj, or @def. */
double
ens_command_json_number (JsonObject *obj, const char *member, double def)
{
  JsonNode *n = json_object_get_member (obj, member);

  if (n && JSON_NODE_HOLDS_VALUE (n) &&
      (json_node_get_value_type (n) == G_TYPE_INT64 || json_node_get_value_type (n) == G_TYPE_DOUBLE))
    return json_node_get_double (n);
  return def;
}

