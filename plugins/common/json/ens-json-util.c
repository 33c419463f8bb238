/* ens-json-util.c — JSON helpers for plugins (see ens-json-util.h). */
#include "ens-json-util.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ------------------------------------------------------------ object nodes */

JsonNode *
ens_node_new_object (JsonObject **obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  *obj = json_object_new ();
  json_node_take_object (node, *obj);
  return node;
}

JsonNode *
ens_node_take_object (JsonObject *obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, obj);
  return node;
}

JsonNode *
ens_node_ref_object (JsonObject *obj)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_set_object (node, obj);
  return node;
}

JsonNode *
ens_node_empty_object (void)
{
  return ens_node_take_object (json_object_new ());
}

/* ------------------------------------------------------------ typed members */

static gboolean
holds_type (JsonNode *n, GType type)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == type;
}

/* An integral number within gint64: an integer, or a double without a
 * fraction (1e3, 10.0). */
static gboolean
node_integer (JsonNode *n, gint64 *out)
{
  if (holds_type (n, G_TYPE_INT64))
    {
      *out = json_node_get_int (n);
      return TRUE;
    }
  if (holds_type (n, G_TYPE_DOUBLE))
    {
      double d = json_node_get_double (n);
      /* 2^63 is exactly representable; anything at or past it is out. */
      if (isfinite (d) && d == floor (d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        {
          *out = (gint64) d;
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
node_number (JsonNode *n, double *out)
{
  if (holds_type (n, G_TYPE_INT64))
    *out = (double) json_node_get_int (n);
  else if (holds_type (n, G_TYPE_DOUBLE))
    *out = json_node_get_double (n);
  else
    return FALSE;
  return TRUE;
}

JsonNode *
ens_member (JsonObject *obj, const char *name)
{
  JsonNode *n = obj ? json_object_get_member (obj, name) : NULL;

  return n && !JSON_NODE_HOLDS_NULL (n) ? n : NULL;
}

const char *
ens_member_string (JsonObject *obj, const char *name)
{
  JsonNode *n = ens_member (obj, name);

  return holds_type (n, G_TYPE_STRING) ? json_node_get_string (n) : NULL;
}

const char *
ens_member_string_or (JsonObject *obj, const char *name, const char *fallback)
{
  const char *s = ens_member_string (obj, name);

  return s ? s : fallback;
}

JsonObject *
ens_member_object (JsonObject *obj, const char *name)
{
  JsonNode *n = ens_member (obj, name);

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

JsonArray *
ens_member_array (JsonObject *obj, const char *name)
{
  JsonNode *n = ens_member (obj, name);

  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

gint64
ens_member_int (JsonObject *obj, const char *name, gint64 fallback)
{
  gint64 v;

  return node_integer (ens_member (obj, name), &v) ? v : fallback;
}

double
ens_member_double (JsonObject *obj, const char *name, double fallback)
{
  double v;

  return node_number (ens_member (obj, name), &v) ? v : fallback;
}

gboolean
ens_member_bool (JsonObject *obj, const char *name, gboolean fallback)
{
  JsonNode *n = ens_member (obj, name);

  return holds_type (n, G_TYPE_BOOLEAN) ? json_node_get_boolean (n) : fallback;
}

void
ens_member_copy (JsonObject *to, const char *name, JsonObject *from, const char *member)
{
  JsonNode *n = from ? json_object_get_member (from, member) : NULL;

  if (n)
    json_object_set_member (to, name, json_node_copy (n));
}

const char *
ens_array_string (JsonArray *array, guint index)
{
  JsonNode *n = array && index < json_array_get_length (array) ? json_array_get_element (array, index) : NULL;

  return holds_type (n, G_TYPE_STRING) ? json_node_get_string (n) : NULL;
}

JsonObject *
ens_array_object (JsonArray *array, guint index)
{
  JsonNode *n = array && index < json_array_get_length (array) ? json_array_get_element (array, index) : NULL;

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

char *
ens_content_text (JsonNode *content, const char *separator)
{
  GString *text = g_string_new (NULL);

  if (content && JSON_NODE_HOLDS_VALUE (content) && json_node_get_value_type (content) == G_TYPE_STRING)
    g_string_append (text, json_node_get_string (content));
  else if (content && JSON_NODE_HOLDS_ARRAY (content))
    {
      JsonArray *parts = json_node_get_array (content);

      for (guint i = 0; i < json_array_get_length (parts); i++)
        {
          const char *t = ens_member_string (ens_array_object (parts, i), "text");

          if (t == NULL)
            continue;
          if (text->len)
            g_string_append (text, separator);
          g_string_append (text, t);
        }
    }
  return g_string_free (text, FALSE);
}

/* ------------------------------------------------------------ parameters */

gboolean
ens_invalid_set (EnsInvalid *invalid, const char *field, const char *expected_format, ...)
{
  va_list ap;

  invalid->field = field;
  va_start (ap, expected_format);
  g_vsnprintf (invalid->expected, sizeof invalid->expected, expected_format, ap);
  va_end (ap);
  return FALSE;
}

char *
ens_invalid_message (const EnsInvalid *invalid)
{
  return g_strdup_printf ("%s must be %s", invalid->field, invalid->expected);
}

JsonNode *
ens_invalid_details (const EnsInvalid *invalid)
{
  JsonObject *obj, *f = json_object_new ();
  JsonNode *node = ens_node_new_object (&obj);
  JsonArray *fields = json_array_new ();

  json_object_set_string_member (obj, "field", invalid->field);
  json_object_set_string_member (obj, "expected", invalid->expected);
  json_object_set_string_member (f, "field", invalid->field);
  json_object_set_string_member (f, "expected", invalid->expected);
  json_array_add_object_element (fields, f);
  json_object_set_array_member (obj, "fields", fields);
  return node;
}

/* The member to check: NULL when missing or null, which is invalid only
 * when required (*@ok says which). */
static JsonNode *
param_node (JsonObject *params, const char *field, EnsParamFlags flags, gboolean *ok)
{
  JsonNode *n = ens_member (params, field);

  *ok = n != NULL || !(flags & ENS_PARAM_REQUIRED);
  return n;
}

gboolean
ens_param_string (JsonObject *params, const char *field, EnsParamFlags flags, gsize max_bytes, const char **out,
                  EnsInvalid *invalid)
{
  gboolean ok;
  JsonNode *n = param_node (params, field, flags, &ok);
  const char *s = holds_type (n, G_TYPE_STRING) ? json_node_get_string (n) : NULL;
  gsize min = flags & ENS_PARAM_NON_EMPTY ? 1 : 0;

  if (ok && n == NULL)
    return TRUE;
  if (s && strlen (s) >= min && (max_bytes == 0 || strlen (s) <= max_bytes))
    {
      *out = s;
      return TRUE;
    }
  if (max_bytes)
    return ens_invalid_set (invalid, field, "a string of %" G_GSIZE_FORMAT " to %" G_GSIZE_FORMAT " bytes", min,
                            max_bytes);
  return ens_invalid_set (invalid, field, min ? "a non-empty string" : "a string");
}

gboolean
ens_param_int (JsonObject *params, const char *field, EnsParamFlags flags, gint64 min, gint64 max, gint64 *out,
               EnsInvalid *invalid)
{
  gboolean ok;
  JsonNode *n = param_node (params, field, flags, &ok);
  gint64 v;

  if (ok && n == NULL)
    return TRUE;
  if (node_integer (n, &v) && v >= min && v <= max)
    {
      *out = v;
      return TRUE;
    }
  return ens_invalid_set (invalid, field, "an integer from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, min, max);
}

gboolean
ens_param_double (JsonObject *params, const char *field, EnsParamFlags flags, double min, double max, double *out,
                  EnsInvalid *invalid)
{
  gboolean ok;
  JsonNode *n = param_node (params, field, flags, &ok);
  double v;

  if (ok && n == NULL)
    return TRUE;
  if (node_number (n, &v) && v >= min && v <= max)
    {
      *out = v;
      return TRUE;
    }
  return ens_invalid_set (invalid, field, "a number from %g to %g", min, max);
}

gboolean
ens_param_bool (JsonObject *params, const char *field, EnsParamFlags flags, gboolean *out, EnsInvalid *invalid)
{
  gboolean ok;
  JsonNode *n = param_node (params, field, flags, &ok);

  if (ok && n == NULL)
    return TRUE;
  if (holds_type (n, G_TYPE_BOOLEAN))
    {
      *out = json_node_get_boolean (n);
      return TRUE;
    }
  return ens_invalid_set (invalid, field, "a boolean");
}

gboolean
ens_param_object (JsonObject *params, const char *field, EnsParamFlags flags, JsonObject **out, EnsInvalid *invalid)
{
  gboolean ok;
  JsonNode *n = param_node (params, field, flags, &ok);

  if (ok && n == NULL)
    return TRUE;
  if (n && JSON_NODE_HOLDS_OBJECT (n))
    {
      *out = json_node_get_object (n);
      return TRUE;
    }
  return ens_invalid_set (invalid, field, "an object");
}

gboolean
ens_param_array (JsonObject *params, const char *field, EnsParamFlags flags, JsonArray **out, EnsInvalid *invalid)
{
  gboolean ok;
  JsonNode *n = param_node (params, field, flags, &ok);

  if (ok && n == NULL)
    return TRUE;
  if (n && JSON_NODE_HOLDS_ARRAY (n) &&
      (!(flags & ENS_PARAM_NON_EMPTY) || json_array_get_length (json_node_get_array (n)) > 0))
    {
      *out = json_node_get_array (n);
      return TRUE;
    }
  return ens_invalid_set (invalid, field, flags & ENS_PARAM_NON_EMPTY ? "a non-empty array" : "an array");
}

gboolean
ens_param_strings (JsonObject *params, const char *field, EnsParamFlags flags, JsonArray **out,
                   EnsInvalid *invalid)
{
  gboolean ok;
  JsonNode *n = param_node (params, field, flags, &ok);
  JsonArray *array = n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
  guint len = array ? json_array_get_length (array) : 0;
  gboolean non_empty = (flags & ENS_PARAM_NON_EMPTY) != 0;

  if (ok && n == NULL)
    return TRUE;
  if (array == NULL || (non_empty && len == 0))
    goto bad;
  for (guint i = 0; i < len; i++)
    {
      const char *s = ens_array_string (array, i);
      if (s == NULL || (non_empty && s[0] == '\0'))
        goto bad;
    }
  *out = array;
  return TRUE;

bad:
  return ens_invalid_set (invalid, field, non_empty ? "a non-empty array of non-empty strings" : "an array of strings");
}
