/* ens-json.c — a compact JSON writer into a GString, used for every reply
 * and event the core encodes (writing is ours, so the envelope and the
 * payload go into one buffer in one pass; parsing: ens-json-parse.c). */
#include "ens-json.h"

#include <math.h>

void
ens_json_append_string (GString *out, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  const guchar *p = (const guchar *) s;
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
append_double (GString *out, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (v))
    {
      g_string_append (out, "null"); /* JSON has no NaN/Inf */
      return;
    }
  /* Shortest of %.15g/%.17g that reads back exactly: 0.1 stays 0.1. */
  g_ascii_formatd (buf, sizeof buf, "%.15g", v);
  if (g_ascii_strtod (buf, NULL) != v)
    g_ascii_formatd (buf, sizeof buf, "%.17g", v);
  g_string_append (out, buf);
}

static void
append_value (GString *out, JsonNode *node)
{
  GType t = json_node_get_value_type (node);

  if (t == G_TYPE_STRING)
    ens_json_append_string (out, json_node_get_string (node));
  else if (t == G_TYPE_INT64)
    g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
  else if (t == G_TYPE_DOUBLE)
    append_double (out, json_node_get_double (node));
  else if (t == G_TYPE_BOOLEAN)
    g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
  else
    g_string_append (out, "null");
}

void
ens_json_append (GString *out, JsonNode *node)
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
            ens_json_append_string (out, name);
            g_string_append_c (out, ':');
            ens_json_append (out, member);
          }
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
            ens_json_append (out, json_array_get_element (array, i));
          }
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_VALUE:
      append_value (out, node);
      break;
    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
    }
}

/* ISO 8601 UTC with microseconds ("2026-11-21T05:11:00.123456Z"), the form
 * every dialect uses.  The date part is cached per second: this runs for
 * every reply and event. */
void
ens_json_append_timestamp (GString *out, gint64 real_time_us)
{
  static gint64 cached_second = -1;
  static char cached[32];
  gint64 second = real_time_us / G_USEC_PER_SEC;

  if (second != cached_second)
    {
      time_t t = (time_t) second;
      struct tm tm;
      gmtime_r (&t, &tm);
      strftime (cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
      cached_second = second;
    }
  g_string_append_c (out, '"');
  g_string_append (out, cached);
  g_string_append_printf (out, ".%06dZ\"", (int) (real_time_us % G_USEC_PER_SEC));
}

void
ens_json_set_timestamp (JsonObject *obj, const char *member, gint64 real_time_us)
{
  GString *s = g_string_new (NULL);

  ens_json_append_timestamp (s, real_time_us);
  g_string_truncate (s, s->len - 1); /* without the JSON quotes */
  json_object_set_string_member (obj, member, s->str + 1);
  g_string_free (s, TRUE);
}

char *
ens_json_to_string (JsonNode *node)
{
  GString *out = g_string_sized_new (128);
  ens_json_append (out, node);
  return g_string_free (out, FALSE);
}

const char *
ens_json_get_string (JsonObject *obj, const char *member)
{
  JsonNode *node = obj ? json_object_get_member (obj, member) : NULL;

  if (node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return json_node_get_string (node);
  return NULL;
}

JsonNode *
ens_json_object_node (JsonObject **out_obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *obj = json_object_new ();

  json_node_take_object (node, obj);
  if (out_obj)
    *out_obj = obj;
  return node;
}

JsonNode *
ens_json_strv_node (const char *const *strv, guint n)
{
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < n && strv && strv[i]; i++)
    json_array_add_string_element (array, strv[i]);
  json_node_take_array (node, array);
  return node;
}
