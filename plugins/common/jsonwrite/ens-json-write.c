/* ens-json-write.c — the one JSON writer (see ens-json-write.h). */
#include "ens-json-write.h"

#include <math.h>

void
ens_json_write_string (GString *out, const char *text)
{
  static const char hex[] = "0123456789abcdef";
  const guchar *p = (const guchar *) text;
  const guchar *run = p;

  g_string_append_c (out, '"');
  for (; *p; p++)
    {
      guchar c = *p;
      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      g_string_append_len (out, (const char *) run, p - run);
      run = p + 1;
      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        default:
          g_string_append (out, "\\u00");
          g_string_append_c (out, hex[c >> 4]);
          g_string_append_c (out, hex[c & 15]);
        }
    }
  g_string_append_len (out, (const char *) run, p - run);
  g_string_append_c (out, '"');
}

static void
write_value (GString *out, JsonNode *node)
{
  GType t = json_node_get_value_type (node);

  if (t == G_TYPE_STRING)
    ens_json_write_string (out, json_node_get_string (node));
  else if (t == G_TYPE_INT64)
    ens_json_write_int (out, json_node_get_int (node));
  else if (t == G_TYPE_DOUBLE)
    ens_json_write_double (out, json_node_get_double (node));
  else if (t == G_TYPE_BOOLEAN)
    g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
  else
    g_string_append (out, "null");
}

/* @depth < 0: compact; else the indentation level of @node's line. */
static void
write_node (GString *out, JsonNode *node, int depth)
{
  if (node == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, json_node_get_object (node));
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            if (depth >= 0)
              {
                g_string_append_c (out, '\n');
                g_string_append_printf (out, "%*s", 2 * (depth + 1), "");
              }
            ens_json_write_string (out, name);
            g_string_append (out, depth >= 0 ? ": " : ":");
            write_node (out, member, depth >= 0 ? depth + 1 : -1);
          }
        if (depth >= 0 && !first)
          g_string_append_printf (out, "\n%*s", 2 * depth, "");
        g_string_append_c (out, '}');
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i)
              g_string_append_c (out, ',');
            if (depth >= 0)
              g_string_append_printf (out, "\n%*s", 2 * (depth + 1), "");
            write_node (out, json_array_get_element (array, i), depth >= 0 ? depth + 1 : -1);
          }
        if (depth >= 0 && n > 0)
          g_string_append_printf (out, "\n%*s", 2 * depth, "");
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_VALUE:
      write_value (out, node);
      break;
    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
    }
}

void
ens_json_write (GString *out, JsonNode *node)
{
  write_node (out, node, -1);
}

void
ens_json_write_pretty (GString *out, JsonNode *node)
{
  write_node (out, node, 0);
}

char *
ens_json_write_to_string (JsonNode *node, gboolean pretty)
{
  GString *out = g_string_sized_new (128);

  write_node (out, node, pretty ? 0 : -1);
  return g_string_free (out, FALSE);
}
