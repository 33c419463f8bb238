/* ens-upstream-json.c — see ens-upstream-json.h. */
#include "ens-upstream-json.h"
#include "ens-json-write.h"

#include <string.h>

#define MAX_DEPTH 512
#define MESSAGE_CHARS 300

G_DEFINE_QUARK (ens-upstream-error-quark, ens_upstream_error)

const char *
ens_upstream_error_completion_code (const GError *error)
{
  if (error && error->domain == ENS_UPSTREAM_ERROR && error->code == ENS_UPSTREAM_ERROR_OVERLOADED)
    return ENS_COMPLETION_ERR_RATE_LIMITED;
  return ENS_COMPLETION_ERR_UPSTREAM;
}

/* TRUE when no array or object in @text nests deeper than MAX_DEPTH.  Reads
 * strings the way the JSON lexer does, so brackets inside them do not count. */
static gboolean
depth_ok (const char *text, gsize len)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > MAX_DEPTH)
            return FALSE;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

JsonNode *
ens_upstream_json_parse (const char *text, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;

  if (!depth_ok (text, len))
    {
      g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "JSON nested deeper than %d levels",
                   MAX_DEPTH);
      return NULL;
    }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, text, (gssize) len, error))
    return NULL;
  if (!json_parser_get_root (parser))
    {
      g_set_error_literal (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "no JSON value");
      return NULL;
    }
  return json_parser_steal_root (parser);
}

static const char *
type_name (JsonNode *n)
{
  switch (json_node_get_node_type (n))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
      break;
    }
  switch (json_node_get_value_type (n))
    {
    case G_TYPE_STRING:
      return "a string";
    case G_TYPE_BOOLEAN:
      return "a boolean";
    default:
      return "a number";
    }
}

/* The member, or NULL when absent or null; NULL also when *@error is set. */
static JsonNode *
member (JsonObject *obj, const char *name, GError **error)
{
  JsonNode *n;

  if (!obj || (error && *error))
    return NULL;
  n = json_object_get_member (obj, name);
  return n && !JSON_NODE_HOLDS_NULL (n) ? n : NULL;
}

static void
wrong_type (JsonNode *n, const char *where, const char *name, const char *expected, GError **error)
{
  if (!error || *error)
    return;
  g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "%s%s%s is %s, not %s", where ? where : "",
               where ? "." : "", name, type_name (n), expected);
}

const char *
ens_upstream_string (JsonObject *obj, const char *name, const char *where, GError **error)
{
  JsonNode *n = member (obj, name, error);

  if (!n)
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
    return json_node_get_string (n);
  wrong_type (n, where, name, "a string", error);
  return NULL;
}

JsonObject *
ens_upstream_object (JsonObject *obj, const char *name, const char *where, GError **error)
{
  JsonNode *n = member (obj, name, error);

  if (!n)
    return NULL;
  if (JSON_NODE_HOLDS_OBJECT (n))
    return json_node_get_object (n);
  wrong_type (n, where, name, "an object", error);
  return NULL;
}

JsonArray *
ens_upstream_array (JsonObject *obj, const char *name, const char *where, GError **error)
{
  JsonNode *n = member (obj, name, error);

  if (!n)
    return NULL;
  if (JSON_NODE_HOLDS_ARRAY (n))
    return json_node_get_array (n);
  wrong_type (n, where, name, "an array", error);
  return NULL;
}

gboolean
ens_upstream_int (JsonObject *obj, const char *name, const char *where, gint64 *out, GError **error)
{
  JsonNode *n = member (obj, name, error);
  GType type;

  if (!n)
    return FALSE;
  type = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (type == G_TYPE_INT64)
    {
      *out = json_node_get_int (n);
      return TRUE;
    }
  if (type == G_TYPE_DOUBLE)
    {
      double d = json_node_get_double (n);

      /* 3.0 is an integer; 2^63 and beyond, NaN and 0.5 are not. */
      if (d >= -9.2e18 && d <= 9.2e18 && d == (double) (gint64) d)
        {
          *out = (gint64) d;
          return TRUE;
        }
    }
  wrong_type (n, where, name, "an integer", error);
  return FALSE;
}

gboolean
ens_upstream_count (JsonObject *obj, const char *name, const char *where, gint64 *out, GError **error)
{
  gint64 n;

  if (!ens_upstream_int (obj, name, where, &n, error))
    return FALSE;
  if (n < 0)
    {
      if (error && !*error)
        g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "%s%s%s is negative (%" G_GINT64_FORMAT ")",
                     where ? where : "", where ? "." : "", name, n);
      return FALSE;
    }
  *out = n;
  return TRUE;
}

gboolean
ens_upstream_number (JsonObject *obj, const char *name, const char *where, double *out, GError **error)
{
  JsonNode *n = member (obj, name, error);
  GType type;

  if (!n)
    return FALSE;
  type = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (type == G_TYPE_INT64 || type == G_TYPE_DOUBLE)
    {
      *out = json_node_get_double (n);
      return TRUE;
    }
  wrong_type (n, where, name, "a number", error);
  return FALSE;
}

gboolean
ens_upstream_boolean (JsonObject *obj, const char *name, gboolean fallback)
{
  JsonNode *n = member (obj, name, NULL);

  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return fallback;
  return json_node_get_boolean (n);
}

char *
ens_upstream_shorten (const char *text, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid (text, (gssize) len);

  g_strstrip (valid);
  if (!*valid)
    return g_strdup ("(no details)");
  if (g_utf8_strlen (valid, -1) <= MESSAGE_CHARS)
    return g_steal_pointer (&valid);
  *g_utf8_offset_to_pointer (valid, MESSAGE_CHARS) = '\0';
  return g_strconcat (valid, "…", NULL);
}

char *
ens_upstream_error_message (const char *body, gsize len)
{
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *joined = NULL;
  JsonObject *obj, *err;
  const char *message, *type;

  if (!body || len == 0)
    return g_strdup ("(no details)");
  root = ens_upstream_json_parse (body, len, NULL);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    return ens_upstream_shorten (body, len);
  obj = json_node_get_object (root);
  err = ens_upstream_object (obj, "error", NULL, NULL);
  message = ens_upstream_string (err, "message", NULL, NULL);
  type = ens_upstream_string (err, "type", NULL, NULL);
  if (message && type)
    joined = g_strdup_printf ("%s (%s)", message, type);
  else if (message)
    joined = g_strdup (message);
  else if (ens_upstream_string (obj, "error", NULL, NULL))
    joined = g_strdup (ens_upstream_string (obj, "error", NULL, NULL));
  else if (ens_upstream_string (obj, "message", NULL, NULL))
    joined = g_strdup (ens_upstream_string (obj, "message", NULL, NULL));
  else
    return ens_upstream_shorten (body, len);
  return ens_upstream_shorten (joined, strlen (joined));
}

GBytes *
ens_upstream_json_bytes (JsonNode *node)
{
  char *text = ens_json_write_to_string (node, FALSE);

  return g_bytes_new_take (text, strlen (text));
}
