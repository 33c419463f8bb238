/* ens-json.c — the core's JSON helpers: timestamps, small node builders and
 * compact text (the writer itself is plugins/common/jsonwrite, shared with the
 * plugins; parsing: ens-json-parse.c). */
#include "ens-json.h"


/* ISO 8601 UTC with microseconds ("2026-11-21T05:11:00.123456Z"), the form
 * every dialect uses.  The date part is cached per second: this runs for
 * every reply and event. */
/* @value with exactly @width digits, zeros in front (it has no more). */
static void
append_fixed (GString *out, guint value, guint width)
{
  char digits[10];

  for (guint i = width; i > 0; i--, value /= 10)
    digits[i - 1] = (char) ('0' + value % 10);
  g_string_append_len (out, digits, width);
}

void
ens_json_append_millis (GString *out, gint64 us)
{
  if (us < 0)
    us = 0;
  ens_json_write_uint (out, (guint64) us / 1000);
  g_string_append_c (out, '.');
  append_fixed (out, (guint) (us % 1000), 3);
}

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
  g_string_append_c (out, '.');
  append_fixed (out, (guint) (real_time_us % G_USEC_PER_SEC), 6);
  g_string_append_len (out, "Z\"", 2);
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
  return ens_json_write_to_string (node, FALSE);
}

const char *
ens_json_get_string (JsonObject *obj, const char *member)
{
  JsonNode *node = obj ? json_object_get_member (obj, member) : NULL;

  if (node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return json_node_get_string (node);
  return NULL;
}

static JsonNode *
value_of_type (JsonObject *obj, const char *member, GType type)
{
  JsonNode *n = json_object_get_member (obj, member);
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == type ? n : NULL;
}

void
ens_json_put_string (JsonObject *obj, const char *member, const char *value)
{
  JsonNode *n = value_of_type (obj, member, G_TYPE_STRING);

  if (n)
    json_node_set_string (n, value);
  else
    json_object_set_string_member (obj, member, value);
}

void
ens_json_put_double (JsonObject *obj, const char *member, double value)
{
  JsonNode *n = value_of_type (obj, member, G_TYPE_DOUBLE);

  if (n)
    json_node_set_double (n, value);
  else
    json_object_set_double_member (obj, member, value);
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
