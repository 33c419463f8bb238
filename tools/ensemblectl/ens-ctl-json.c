/* ensemblectl: JSON — parsing arguments and replies, printing them the way
 * people and scripts read them, and reading members of a given type. */
#include "ens-ctl.h"

#include <math.h>
#include <string.h>

JsonNode *
ens_json_parse (const char *text, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  JsonNode *root;

  if (!json_parser_load_from_data (parser, text, -1, error))
    return NULL;
  root = json_parser_steal_root (parser);
  if (root == NULL)
    g_set_error_literal (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE, "empty document");
  return root;
}

static void ens_json_write (GString *out, JsonNode *node, gboolean pretty, gboolean human, guint depth);

static void
ens_json_write_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      switch (*p)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        default:
          if (*p < 0x20)
            g_string_append_printf (out, "\\u%04x", *p);
          else
            g_string_append_c (out, (char) *p);
        }
    }
  g_string_append_c (out, '"');
}

/* json-glib 1.6 prints doubles with %.17g (0.1 -> 0.10000000000000001);
 * use the shortest form that reads back as the same value instead. */
static void
ens_json_write_double (GString *out, double d)
{
  static const char *const formats[] = { "%.15g", "%.16g", "%.17g" };
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (d))
    {
      g_string_append (out, "null");
      return;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_ascii_formatd (buf, sizeof buf, formats[i], d);
      if (g_ascii_strtod (buf, NULL) == d)
        break;
    }
  g_string_append (out, buf);
  /* Keep it a double for whoever parses our output. */
  if (strpbrk (buf, ".eE") == NULL)
    g_string_append (out, ".0");
}

static void
ens_json_newline (GString *out, gboolean pretty, guint depth)
{
  if (!pretty)
    return;
  g_string_append_c (out, '\n');
  for (guint i = 0; i < depth; i++)
    g_string_append (out, "  ");
}

static void
ens_json_write (GString *out, JsonNode *node, gboolean pretty, gboolean human, guint depth)
{
  switch (node != NULL ? json_node_get_node_type (node) : JSON_NODE_NULL)
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *obj = json_node_get_object (node);
        g_autoptr(GList) names = json_object_get_members (obj);

        if (names == NULL)
          {
            g_string_append (out, "{}");
            break;
          }
        g_string_append_c (out, '{');
        for (GList *l = names; l != NULL; l = l->next)
          {
            ens_json_newline (out, pretty, depth + 1);
            ens_json_write_string (out, l->data);
            g_string_append (out, pretty ? ": " : ":");
            ens_json_write (out, json_object_get_member (obj, l->data), pretty, human, depth + 1);
            if (l->next != NULL)
              g_string_append_c (out, ',');
          }
        ens_json_newline (out, pretty, depth);
        g_string_append_c (out, '}');
      }
      break;

    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        if (n == 0)
          {
            g_string_append (out, "[]");
            break;
          }
        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            ens_json_newline (out, pretty, depth + 1);
            ens_json_write (out, json_array_get_element (array, i), pretty, human, depth + 1);
            if (i + 1 < n)
              g_string_append_c (out, ',');
          }
        ens_json_newline (out, pretty, depth);
        g_string_append_c (out, ']');
      }
      break;

    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          if (human && isfinite (json_node_get_double (node)))
            {
              g_autofree char *text = ens_human_number (json_node_get_double (node));

              g_string_append (out, text);
            }
          else
            ens_json_write_double (out, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_STRING:
          ens_json_write_string (out, json_node_get_string (node));
          break;
        default:
          g_string_append (out, "null");
          break;
        }
      break;

    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
      break;
    }
}

char *
ens_json_to_string (JsonNode *node, gboolean pretty)
{
  GString *out = g_string_new (NULL);

  ens_json_write (out, node, pretty, FALSE, 0);
  return g_string_free (out, FALSE);
}

char *
ens_json_to_human_string (JsonNode *node)
{
  GString *out = g_string_new (NULL);

  ens_json_write (out, node, FALSE, TRUE, 0);
  return g_string_free (out, FALSE);
}

char *
ens_human_number (double v)
{
  double mag = fabs (v);
  int decimals;
  char format[16], buf[G_ASCII_DTOSTR_BUF_SIZE];
  char *text, *end;

  if (!isfinite (v))
    return g_strdup ("-");
  if (v == floor (v) && mag < 1e15)
    return g_strdup_printf ("%.0f", v);
  /* About three significant digits, never in exponent form: people read
   * costs such as 0.000123 as they are. */
  if (mag >= 1000)
    decimals = 0;
  else if (mag >= 100)
    decimals = 1;
  else if (mag >= 1)
    decimals = 2;
  else
    decimals = MIN (2 - (int) floor (log10 (mag)), 9);
  g_snprintf (format, sizeof format, "%%.%df", decimals);
  g_ascii_formatd (buf, sizeof buf, format, v);
  text = g_strdup (buf);
  /* 1.50 -> 1.5, 2.00 -> 2 */
  if (strchr (text, '.') != NULL)
    {
      end = text + strlen (text) - 1;
      while (*end == '0')
        *end-- = '\0';
      if (*end == '.')
        *end = '\0';
    }
  if (strcmp (text, "-0") == 0)
    {
      g_free (text);
      text = g_strdup ("0");
    }
  return text;
}

char *
ens_display_text (JsonNode *node)
{
  const char *s = ens_json_node_string (node);

  if (s != NULL)
    return g_strdup (s);
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return ens_human_number (json_node_get_double (node));
  return ens_json_to_human_string (node);
}

char *
ens_json_text (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  return ens_json_node_text (node);
}

gboolean
ens_json_number (JsonObject *obj, const char *name, double *out)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    *out = (double) json_node_get_int (node);
  else if (type == G_TYPE_DOUBLE)
    *out = json_node_get_double (node);
  else
    return FALSE;
  return TRUE;
}

JsonObject *
ens_json_object (JsonObject *obj, const char *name)
{
  return ens_json_node_object (obj ? json_object_get_member (obj, name) : NULL);
}

JsonArray *
ens_json_array (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

gboolean
ens_json_bool (JsonObject *obj, const char *name)
{
  JsonNode *node = obj ? json_object_get_member (obj, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_BOOLEAN && json_node_get_boolean (node);
}

JsonObject *
ens_json_node_object (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

const char *
ens_json_node_string (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
           ? json_node_get_string (node)
           : NULL;
}

char *
ens_json_node_text (JsonNode *node)
{
  const char *s = ens_json_node_string (node);

  return s ? g_strdup (s) : ens_json_to_string (node, FALSE);
}

JsonNode *
ens_json_arg (const char *what, const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = ens_json_parse (text, &error);

  if (node == NULL)
    ens_usage_error ("invalid JSON for %s '%s': %s", what, text, error->message);
  return node;
}
