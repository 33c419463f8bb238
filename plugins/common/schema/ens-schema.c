/* ens-schema.c — see ens-schema.h.
 *
 * Two walks over the same keywords: compile() checks once that every
 * keyword the validator reads has the shape it expects (and compiles the
 * patterns), so validate() can read them without checking again.  $ref is
 * resolved on use, within the same document; a chain of references that
 * never reaches a value, or one deeper than MAX_DEPTH, is refused. */
#include "ens-schema.h"
#include "ens-json-write.h"

#include <math.h>
#include <string.h>

#define MAX_DEPTH 128     /* schema nesting, and $ref hops while validating */
#define MAX_LISTED 6      /* enum values or property names quoted in a message */

G_DEFINE_QUARK (ens-schema-error-quark, ens_schema_error)

struct _EnsSchema {
  gint refs;
  JsonNode *root;
  GHashTable *patterns; /* pattern text -> GRegex */
};

/* ------------------------------------------------------------------ JSON helpers */

static gboolean
is_number (JsonNode *n)
{
  GType t;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  t = json_node_get_value_type (n);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

static gboolean
is_string (JsonNode *n)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING;
}

static gboolean
is_bool (JsonNode *n)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN;
}

static double
number_of (JsonNode *n)
{
  return json_node_get_value_type (n) == G_TYPE_INT64 ? (double) json_node_get_int (n) : json_node_get_double (n);
}

static gboolean
is_integer (JsonNode *n)
{
  double d;

  if (!is_number (n))
    return FALSE;
  if (json_node_get_value_type (n) == G_TYPE_INT64)
    return TRUE;
  d = json_node_get_double (n);
  return isfinite (d) && d == floor (d);
}

/* A non-negative integer keyword (minLength, maxItems...). */
static gboolean
is_count (JsonNode *n)
{
  return is_integer (n) && number_of (n) >= 0;
}

static gboolean
nodes_equal (JsonNode *a, JsonNode *b)
{
  JsonNodeType ta = JSON_NODE_TYPE (a), tb = JSON_NODE_TYPE (b);

  if (ta != tb)
    return FALSE;
  switch (ta)
    {
    case JSON_NODE_NULL:
      return TRUE;
    case JSON_NODE_VALUE:
      if (is_number (a) && is_number (b))
        return number_of (a) == number_of (b);
      if (json_node_get_value_type (a) != json_node_get_value_type (b))
        return FALSE;
      if (is_string (a))
        return strcmp (json_node_get_string (a), json_node_get_string (b)) == 0;
      return json_node_get_boolean (a) == json_node_get_boolean (b);
    case JSON_NODE_ARRAY:
      {
        JsonArray *x = json_node_get_array (a), *y = json_node_get_array (b);
        guint n = json_array_get_length (x);
        if (n != json_array_get_length (y))
          return FALSE;
        for (guint i = 0; i < n; i++)
          if (!nodes_equal (json_array_get_element (x, i), json_array_get_element (y, i)))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_OBJECT:
      {
        JsonObject *x = json_node_get_object (a), *y = json_node_get_object (b);
        JsonObjectIter iter;
        const char *name;
        JsonNode *value;
        if (json_object_get_size (x) != json_object_get_size (y))
          return FALSE;
        json_object_iter_init (&iter, x);
        while (json_object_iter_next (&iter, &name, &value))
          {
            JsonNode *other = json_object_get_member (y, name);
            if (other == NULL || !nodes_equal (value, other))
              return FALSE;
          }
        return TRUE;
      }
    default:
      return FALSE;
    }
}

/* (transfer full) @n as short JSON text for a message. */
static char *
short_json (JsonNode *n)
{
  g_autofree char *text = ens_json_write_to_string (n, FALSE);

  if (strlen (text) > 40)
    {
      gsize cut = 37;
      while (cut > 0 && (text[cut] & 0xC0) == 0x80)
        cut--;
      return g_strdup_printf ("%.*s...", (int) cut, text);
    }
  return g_steal_pointer (&text);
}

/* ------------------------------------------------------------------ $ref */

/* (transfer none) the schema @ref points at within @root, or NULL. */
static JsonNode *
resolve_ref (JsonNode *root, const char *ref)
{
  g_auto (GStrv) parts = NULL;
  JsonNode *at = root;

  if (ref == NULL || ref[0] != '#')
    return NULL;
  if (ref[1] == '\0')
    return root;
  if (ref[1] != '/')
    return NULL;
  parts = g_strsplit (ref + 2, "/", -1);
  for (guint i = 0; parts[i] && at; i++)
    {
      g_autofree char *unescaped = g_uri_unescape_string (parts[i], NULL);
      GString *token = g_string_new (NULL);
      const char *p = unescaped ? unescaped : parts[i];

      for (; *p; p++)
        if (p[0] == '~' && p[1] == '1')
          g_string_append_c (token, '/'), p++;
        else if (p[0] == '~' && p[1] == '0')
          g_string_append_c (token, '~'), p++;
        else
          g_string_append_c (token, *p);
      if (JSON_NODE_HOLDS_OBJECT (at))
        at = json_object_get_member (json_node_get_object (at), token->str);
      else if (JSON_NODE_HOLDS_ARRAY (at))
        {
          char *end;
          guint64 index = g_ascii_strtoull (token->str, &end, 10);
          JsonArray *array = json_node_get_array (at);
          at = *token->str && *end == '\0' && index < json_array_get_length (array)
                 ? json_array_get_element (array, (guint) index) : NULL;
        }
      else
        at = NULL;
      g_string_free (token, TRUE);
    }
  return at;
}

/* ------------------------------------------------------------------ compiling */

typedef struct {
  EnsSchema *schema;
  GString *where; /* JSON pointer of the keyword being checked */
  GError **error;
} Compile;

static gboolean compile_node (Compile *c, JsonNode *node, guint depth);

static gboolean
refuse (Compile *c, const char *keyword, const char *what)
{
  g_set_error (c->error, ENS_SCHEMA_ERROR, ENS_SCHEMA_ERROR_INVALID, "%s/%s must be %s",
               c->where->len ? c->where->str : "#", keyword, what);
  return FALSE;
}

static gboolean
compile_child (Compile *c, const char *keyword, const char *sub, JsonNode *node, guint depth)
{
  gsize len = c->where->len;
  gboolean ok;

  if (c->where->len == 0)
    g_string_append_c (c->where, '#');
  g_string_append_printf (c->where, "/%s", keyword);
  if (sub)
    g_string_append_printf (c->where, "/%s", sub);
  ok = compile_node (c, node, depth + 1);
  g_string_truncate (c->where, len);
  return ok;
}

static gboolean
valid_type_name (const char *t)
{
  static const char *const names[] = { "object", "array", "string", "number", "integer", "boolean", "null", NULL };
  return t && g_strv_contains (names, t);
}

static gboolean
compile_pattern (Compile *c, const char *keyword, const char *pattern)
{
  g_autoptr (GError) error = NULL;
  GRegex *re;

  if (g_hash_table_contains (c->schema->patterns, pattern))
    return TRUE;
  re = g_regex_new (pattern, G_REGEX_DOLLAR_ENDONLY, 0, &error);
  if (re == NULL)
    {
      g_autofree char *what = g_strdup_printf ("a regular expression (%s)", error->message);
      return refuse (c, keyword, what);
    }
  g_hash_table_insert (c->schema->patterns, g_strdup (pattern), re);
  return TRUE;
}

static gboolean
compile_schema_list (Compile *c, JsonObject *obj, const char *keyword, guint depth)
{
  JsonNode *n = json_object_get_member (obj, keyword);
  JsonArray *list;

  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (n) || json_array_get_length (json_node_get_array (n)) == 0)
    return refuse (c, keyword, "a non-empty list of schemas");
  list = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      char index[16];
      g_snprintf (index, sizeof index, "%u", i);
      if (!compile_child (c, keyword, index, json_array_get_element (list, i), depth))
        return FALSE;
    }
  return TRUE;
}

static gboolean
compile_schema_map (Compile *c, JsonObject *obj, const char *keyword, gboolean patterns, guint depth)
{
  JsonNode *n = json_object_get_member (obj, keyword);
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return refuse (c, keyword, "an object of schemas");
  json_object_iter_init (&iter, json_node_get_object (n));
  while (json_object_iter_next (&iter, &name, &value))
    {
      if (patterns && !compile_pattern (c, keyword, name))
        return FALSE;
      if (!compile_child (c, keyword, name, value, depth))
        return FALSE;
    }
  return TRUE;
}

static gboolean
compile_node (Compile *c, JsonNode *node, guint depth)
{
  JsonObject *obj;
  JsonNode *n;
  static const char *const counts[] = { "minLength", "maxLength", "minItems", "maxItems", "minProperties",
                                        "maxProperties", NULL };
  static const char *const numbers[] = { "minimum", "maximum", NULL };
  static const char *const subschemas[] = { "additionalProperties", "items", "not", "contains",
                                            "additionalItems", NULL };

  if (depth > MAX_DEPTH)
    return refuse (c, "", "nested less deeply");
  if (is_bool (node))
    return TRUE;
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      if (c->where->len == 0)
        {
          g_set_error (c->error, ENS_SCHEMA_ERROR, ENS_SCHEMA_ERROR_INVALID,
                       "a schema must be a JSON object (or true, false)");
          return FALSE;
        }
      g_set_error (c->error, ENS_SCHEMA_ERROR, ENS_SCHEMA_ERROR_INVALID,
                   "%s must be a schema (a JSON object, true or false)", c->where->str);
      return FALSE;
    }
  obj = json_node_get_object (node);

  if ((n = json_object_get_member (obj, "type")))
    {
      if (JSON_NODE_HOLDS_ARRAY (n))
        {
          JsonArray *list = json_node_get_array (n);
          if (json_array_get_length (list) == 0)
            return refuse (c, "type", "a type name or a non-empty list of them");
          for (guint i = 0; i < json_array_get_length (list); i++)
            {
              JsonNode *e = json_array_get_element (list, i);
              if (!is_string (e) || !valid_type_name (json_node_get_string (e)))
                return refuse (c, "type", "a list of object, array, string, number, integer, boolean or null");
            }
        }
      else if (!is_string (n) || !valid_type_name (json_node_get_string (n)))
        return refuse (c, "type", "object, array, string, number, integer, boolean or null");
    }
  if ((n = json_object_get_member (obj, "required")))
    {
      JsonArray *list = JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
      for (guint i = 0; list && i < json_array_get_length (list); i++)
        if (!is_string (json_array_get_element (list, i)))
          list = NULL;
      if (list == NULL && !is_bool (n)) /* draft 3's boolean form: ignored */
        return refuse (c, "required", "a list of property names");
    }
  if ((n = json_object_get_member (obj, "enum")) && !JSON_NODE_HOLDS_ARRAY (n))
    return refuse (c, "enum", "a list of values");
  for (guint i = 0; counts[i]; i++)
    if ((n = json_object_get_member (obj, counts[i])) && !is_count (n))
      return refuse (c, counts[i], "a non-negative integer");
  for (guint i = 0; numbers[i]; i++)
    if ((n = json_object_get_member (obj, numbers[i])) && !is_number (n))
      return refuse (c, numbers[i], "a number");
  if ((n = json_object_get_member (obj, "exclusiveMinimum")) && !is_number (n) && !is_bool (n))
    return refuse (c, "exclusiveMinimum", "a number");
  if ((n = json_object_get_member (obj, "exclusiveMaximum")) && !is_number (n) && !is_bool (n))
    return refuse (c, "exclusiveMaximum", "a number");
  if ((n = json_object_get_member (obj, "multipleOf")) && (!is_number (n) || number_of (n) <= 0))
    return refuse (c, "multipleOf", "a number > 0");
  if ((n = json_object_get_member (obj, "uniqueItems")) && !is_bool (n))
    return refuse (c, "uniqueItems", "true or false");
  if ((n = json_object_get_member (obj, "pattern")))
    {
      if (!is_string (n))
        return refuse (c, "pattern", "a regular expression (a string)");
      if (!compile_pattern (c, "pattern", json_node_get_string (n)))
        return FALSE;
    }
  if ((n = json_object_get_member (obj, "$ref")))
    {
      JsonNode *target;
      if (!is_string (n))
        return refuse (c, "$ref", "a string");
      target = resolve_ref (c->schema->root, json_node_get_string (n));
      if (target == NULL)
        return refuse (c, "$ref", "a reference within this schema (\"#\", \"#/$defs/NAME\", ...)");
      if (!is_bool (target) && !JSON_NODE_HOLDS_OBJECT (target))
        return refuse (c, "$ref", "a reference to a schema");
    }

  if (!compile_schema_map (c, obj, "properties", FALSE, depth) ||
      !compile_schema_map (c, obj, "patternProperties", TRUE, depth) ||
      !compile_schema_map (c, obj, "$defs", FALSE, depth) || !compile_schema_map (c, obj, "definitions", FALSE, depth))
    return FALSE;
  if (!compile_schema_list (c, obj, "anyOf", depth) || !compile_schema_list (c, obj, "oneOf", depth) ||
      !compile_schema_list (c, obj, "allOf", depth) || !compile_schema_list (c, obj, "prefixItems", depth))
    return FALSE;
  for (guint i = 0; subschemas[i]; i++)
    if ((n = json_object_get_member (obj, subschemas[i])))
      {
        if (strcmp (subschemas[i], "items") == 0 && JSON_NODE_HOLDS_ARRAY (n))
          {
            if (!compile_schema_list (c, obj, "items", depth))
              return FALSE;
          }
        else if (!compile_child (c, subschemas[i], NULL, n, depth))
          return FALSE;
      }
  return TRUE;
}

EnsSchema *
ens_schema_new (JsonNode *schema, GError **error)
{
  EnsSchema *s = g_new0 (EnsSchema, 1);
  Compile c = { .schema = s, .where = g_string_new (NULL), .error = error };
  gboolean ok;

  s->refs = 1;
  s->root = schema ? json_node_copy (schema) : json_node_new (JSON_NODE_NULL);
  s->patterns = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_regex_unref);
  ok = compile_node (&c, s->root, 0);
  g_string_free (c.where, TRUE);
  if (!ok)
    {
      ens_schema_unref (s);
      return NULL;
    }
  return s;
}

EnsSchema *
ens_schema_new_from_text (const char *text, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) parse_error = NULL;

  if (text == NULL || !json_parser_load_from_data (parser, text, -1, &parse_error))
    {
      g_set_error (error, ENS_SCHEMA_ERROR, ENS_SCHEMA_ERROR_INVALID, "the schema is not valid JSON: %s",
                   parse_error ? parse_error->message : "no text");
      return NULL;
    }
  return ens_schema_new (json_parser_get_root (parser), error);
}

EnsSchema *
ens_schema_ref (EnsSchema *schema)
{
  g_atomic_int_inc (&schema->refs);
  return schema;
}

void
ens_schema_unref (EnsSchema *schema)
{
  if (schema == NULL || !g_atomic_int_dec_and_test (&schema->refs))
    return;
  json_node_unref (schema->root);
  g_hash_table_unref (schema->patterns);
  g_free (schema);
}

JsonNode *
ens_schema_get_node (EnsSchema *schema)
{
  return schema->root;
}

gboolean
ens_schema_is_object (EnsSchema *schema)
{
  JsonObject *obj = JSON_NODE_HOLDS_OBJECT (schema->root) ? json_node_get_object (schema->root) : NULL;
  JsonNode *type = obj ? json_object_get_member (obj, "type") : NULL;

  return is_string (type) && strcmp (json_node_get_string (type), "object") == 0;
}

/* ------------------------------------------------------------------ validating */

typedef struct {
  EnsSchema *schema;
  GString *path;   /* from the root, "" for the root itself */
  char *field;     /* the first failure */
  char *expected;
  guint hops;      /* $ref followed on the current branch */
} Check;

static gboolean check_node (Check *k, JsonNode *schema, JsonNode *value);

static gboolean G_GNUC_PRINTF (2, 3)
fail (Check *k, const char *format, ...)
{
  va_list args;

  if (k->expected)
    return FALSE;
  k->field = g_strdup (k->path->str);
  va_start (args, format);
  k->expected = g_strdup_vprintf (format, args);
  va_end (args);
  return FALSE;
}

static gboolean
plain_name (const char *name)
{
  if (!*name || g_ascii_isdigit (*name))
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-' && *p != '$' && *p != '@')
      return FALSE;
  return TRUE;
}

static void
path_push_member (GString *path, const char *name)
{
  if (plain_name (name))
    {
      if (path->len)
        g_string_append_c (path, '.');
      g_string_append (path, name);
    }
  else
    {
      g_autofree char *escaped = g_strescape (name, NULL);
      g_string_append_printf (path, "[\"%s\"]", escaped);
    }
}

static const char *
type_phrase (const char *t)
{
  if (strcmp (t, "object") == 0)
    return "an object";
  if (strcmp (t, "array") == 0)
    return "an array";
  if (strcmp (t, "string") == 0)
    return "a string";
  if (strcmp (t, "number") == 0)
    return "a number";
  if (strcmp (t, "integer") == 0)
    return "an integer";
  if (strcmp (t, "boolean") == 0)
    return "true or false";
  return "null";
}

static gboolean
has_type (JsonNode *value, const char *t)
{
  if (strcmp (t, "null") == 0)
    return JSON_NODE_HOLDS_NULL (value);
  if (strcmp (t, "object") == 0)
    return JSON_NODE_HOLDS_OBJECT (value);
  if (strcmp (t, "array") == 0)
    return JSON_NODE_HOLDS_ARRAY (value);
  if (strcmp (t, "string") == 0)
    return is_string (value);
  if (strcmp (t, "boolean") == 0)
    return is_bool (value);
  if (strcmp (t, "integer") == 0)
    return is_integer (value);
  return is_number (value); /* number */
}

static gboolean
check_type (Check *k, JsonNode *type, JsonNode *value)
{
  GString *phrase;
  JsonArray *list;

  if (is_string (type))
    return has_type (value, json_node_get_string (type)) ||
           fail (k, "%s", type_phrase (json_node_get_string (type)));
  list = json_node_get_array (type);
  for (guint i = 0; i < json_array_get_length (list); i++)
    if (has_type (value, json_node_get_string (json_array_get_element (list, i))))
      return TRUE;
  phrase = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      if (i)
        g_string_append (phrase, i + 1 == json_array_get_length (list) ? " or " : ", ");
      g_string_append (phrase, type_phrase (json_node_get_string (json_array_get_element (list, i))));
    }
  fail (k, "%s", phrase->str);
  g_string_free (phrase, TRUE);
  return FALSE;
}

static gboolean
check_enum (Check *k, JsonArray *values, JsonNode *value)
{
  GString *phrase;
  guint n = json_array_get_length (values);

  for (guint i = 0; i < n; i++)
    if (nodes_equal (json_array_get_element (values, i), value))
      return TRUE;
  phrase = g_string_new (n == 1 ? "exactly " : "one of ");
  for (guint i = 0; i < n && i < MAX_LISTED; i++)
    {
      g_autofree char *text = short_json (json_array_get_element (values, i));
      g_string_append_printf (phrase, "%s%s", i ? ", " : "", text);
    }
  if (n > MAX_LISTED)
    g_string_append_printf (phrase, " (and %u more)", n - MAX_LISTED);
  fail (k, "%s", phrase->str);
  g_string_free (phrase, TRUE);
  return FALSE;
}

static gboolean
check_number (Check *k, JsonObject *s, JsonNode *value)
{
  double x = number_of (value);
  JsonNode *n;

  if ((n = json_object_get_member (s, "minimum")))
    {
      JsonNode *ex = json_object_get_member (s, "exclusiveMinimum");
      gboolean exclusive = is_bool (ex) && json_node_get_boolean (ex);
      if (exclusive ? !(x > number_of (n)) : !(x >= number_of (n)))
        return fail (k, "a number %s %g", exclusive ? ">" : ">=", number_of (n));
    }
  if ((n = json_object_get_member (s, "maximum")))
    {
      JsonNode *ex = json_object_get_member (s, "exclusiveMaximum");
      gboolean exclusive = is_bool (ex) && json_node_get_boolean (ex);
      if (exclusive ? !(x < number_of (n)) : !(x <= number_of (n)))
        return fail (k, "a number %s %g", exclusive ? "<" : "<=", number_of (n));
    }
  if ((n = json_object_get_member (s, "exclusiveMinimum")) && is_number (n) && !(x > number_of (n)))
    return fail (k, "a number > %g", number_of (n));
  if ((n = json_object_get_member (s, "exclusiveMaximum")) && is_number (n) && !(x < number_of (n)))
    return fail (k, "a number < %g", number_of (n));
  if ((n = json_object_get_member (s, "multipleOf")))
    {
      double m = number_of (n), q = x / m;
      gboolean ok = (json_node_get_value_type (value) == G_TYPE_INT64 && json_node_get_value_type (n) == G_TYPE_INT64)
                      ? json_node_get_int (value) % json_node_get_int (n) == 0
                      : isfinite (q) && fabs (q - round (q)) < 1e-9;
      if (!ok)
        return fail (k, "a multiple of %g", m);
    }
  return TRUE;
}

static gboolean
check_string (Check *k, JsonObject *s, JsonNode *value)
{
  const char *text = json_node_get_string (value);
  glong chars = g_utf8_validate (text, -1, NULL) ? g_utf8_strlen (text, -1) : (glong) strlen (text);
  JsonNode *n;

  if ((n = json_object_get_member (s, "minLength")) && chars < number_of (n))
    return fail (k, "a string of at least %.0f character%s", number_of (n), number_of (n) == 1 ? "" : "s");
  if ((n = json_object_get_member (s, "maxLength")) && chars > number_of (n))
    return fail (k, "a string of at most %.0f character%s", number_of (n), number_of (n) == 1 ? "" : "s");
  if ((n = json_object_get_member (s, "pattern")))
    {
      GRegex *re = g_hash_table_lookup (k->schema->patterns, json_node_get_string (n));
      if (re && !g_regex_match (re, text, 0, NULL))
        return fail (k, "a string matching /%s/", json_node_get_string (n));
    }
  return TRUE;
}

static gboolean
check_array (Check *k, JsonObject *s, JsonNode *value)
{
  JsonArray *array = json_node_get_array (value);
  guint len = json_array_get_length (array);
  JsonNode *n, *items = json_object_get_member (s, "items");
  JsonNode *prefix = json_object_get_member (s, "prefixItems");
  guint fixed = 0;
  gsize base = k->path->len;

  if ((n = json_object_get_member (s, "minItems")) && len < number_of (n))
    return fail (k, "an array of at least %.0f item%s", number_of (n), number_of (n) == 1 ? "" : "s");
  if ((n = json_object_get_member (s, "maxItems")) && len > number_of (n))
    return fail (k, "an array of at most %.0f item%s", number_of (n), number_of (n) == 1 ? "" : "s");
  if ((n = json_object_get_member (s, "uniqueItems")) && json_node_get_boolean (n))
    for (guint i = 0; i < len; i++)
      for (guint j = i + 1; j < len; j++)
        if (nodes_equal (json_array_get_element (array, i), json_array_get_element (array, j)))
          {
            g_string_append_printf (k->path, "[%u]", j);
            fail (k, "different from every other item (it repeats item %u)", i);
            g_string_truncate (k->path, base);
            return FALSE;
          }
  /* A list of schemas: one per position (prefixItems, or draft 4-7 items). */
  if (prefix == NULL && items && JSON_NODE_HOLDS_ARRAY (items))
    {
      prefix = items;
      items = json_object_get_member (s, "additionalItems");
    }
  if (prefix)
    {
      JsonArray *list = json_node_get_array (prefix);
      fixed = MIN (len, json_array_get_length (list));
      for (guint i = 0; i < fixed; i++)
        {
          gboolean ok;
          g_string_append_printf (k->path, "[%u]", i);
          ok = check_node (k, json_array_get_element (list, i), json_array_get_element (array, i));
          g_string_truncate (k->path, base);
          if (!ok)
            return FALSE;
        }
    }
  if (items)
    for (guint i = fixed; i < len; i++)
      {
        gboolean ok;
        g_string_append_printf (k->path, "[%u]", i);
        ok = check_node (k, items, json_array_get_element (array, i));
        g_string_truncate (k->path, base);
        if (!ok)
          return FALSE;
      }
  return TRUE;
}

static gboolean
check_object (Check *k, JsonObject *s, JsonNode *value)
{
  JsonObject *obj = json_node_get_object (value);
  JsonObject *props = json_object_get_member (s, "properties") ? json_object_get_object_member (s, "properties") : NULL;
  JsonObject *patterns = json_object_get_member (s, "patternProperties")
                           ? json_object_get_object_member (s, "patternProperties") : NULL;
  JsonNode *additional = json_object_get_member (s, "additionalProperties");
  JsonNode *required = json_object_get_member (s, "required");
  JsonNode *n;
  gsize base = k->path->len;
  guint size = json_object_get_size (obj);
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;

  if ((n = json_object_get_member (s, "minProperties")) && size < number_of (n))
    return fail (k, "an object of at least %.0f member%s", number_of (n), number_of (n) == 1 ? "" : "s");
  if ((n = json_object_get_member (s, "maxProperties")) && size > number_of (n))
    return fail (k, "an object of at most %.0f member%s", number_of (n), number_of (n) == 1 ? "" : "s");
  if (required && JSON_NODE_HOLDS_ARRAY (required))
    {
      JsonArray *list = json_node_get_array (required);
      for (guint i = 0; i < json_array_get_length (list); i++)
        {
          const char *want = json_node_get_string (json_array_get_element (list, i));
          if (!json_object_has_member (obj, want))
            {
              path_push_member (k->path, want);
              fail (k, "present (required)");
              g_string_truncate (k->path, base);
              return FALSE;
            }
        }
    }
  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &name, &member))
    {
      JsonNode *sub = props ? json_object_get_member (props, name) : NULL;
      gboolean matched = sub != NULL, ok = TRUE;

      path_push_member (k->path, name);
      if (sub)
        ok = check_node (k, sub, member);
      if (ok && patterns)
        {
          JsonObjectIter piter;
          const char *pattern;
          JsonNode *psub;
          json_object_iter_init (&piter, patterns);
          while (ok && json_object_iter_next (&piter, &pattern, &psub))
            {
              GRegex *re = g_hash_table_lookup (k->schema->patterns, pattern);
              if (re && g_regex_match (re, name, 0, NULL))
                {
                  matched = TRUE;
                  ok = check_node (k, psub, member);
                }
            }
        }
      if (ok && !matched && additional)
        {
          if (is_bool (additional) && !json_node_get_boolean (additional))
            {
              GString *allowed = g_string_new (NULL);
              GList *names = props ? json_object_get_members (props) : NULL; /* in the schema's order */
              guint listed = 0;
              for (GList *l = names; l; l = l->next)
                if (listed++ < MAX_LISTED)
                  g_string_append_printf (allowed, "%s%s", listed > 1 ? ", " : "", (const char *) l->data);
              g_list_free (names);
              if (listed > MAX_LISTED)
                g_string_append_printf (allowed, " (and %u more)", listed - MAX_LISTED);
              fail (k, "absent: not a member this object may have%s%s%s", listed ? " (allowed: " : "",
                    allowed->str, listed ? ")" : "");
              g_string_free (allowed, TRUE);
              ok = FALSE;
            }
          else
            ok = check_node (k, additional, member);
        }
      g_string_truncate (k->path, base);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* Runs @schema on @value without reporting: TRUE when it matches; a
 * failure's place and message go to *@field and *@expected. */
static gboolean
try_node (Check *k, JsonNode *schema, JsonNode *value, char **field, char **expected)
{
  Check t = { .schema = k->schema, .path = g_string_new (k->path->str), .hops = k->hops };
  gboolean ok = check_node (&t, schema, value);

  g_string_free (t.path, TRUE);
  if (field)
    *field = g_steal_pointer (&t.field);
  if (expected)
    *expected = g_steal_pointer (&t.expected);
  g_free (t.field);
  g_free (t.expected);
  return ok;
}

/* anyOf (@one FALSE) or oneOf: how many alternatives match; when none,
 * the failure that got deepest into the value is the one reported, as the
 * alternative the caller most likely meant. */
static gboolean
check_alternatives (Check *k, JsonArray *list, JsonNode *value, gboolean one)
{
  guint n = json_array_get_length (list), matched = 0;
  g_autofree char *best_field = NULL, *best_expected = NULL;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *field = NULL, *expected = NULL;
      if (try_node (k, json_array_get_element (list, i), value, &field, &expected))
        matched++;
      else if (best_field == NULL || strlen (field) > strlen (best_field))
        {
          g_free (best_field);
          g_free (best_expected);
          best_field = g_steal_pointer (&field);
          best_expected = g_steal_pointer (&expected);
        }
    }
  if (one && matched > 1)
    return fail (k, "a value matching exactly one of %u alternatives (oneOf), not %u", n, matched);
  if (matched > 0)
    return TRUE;
  if (best_field && strlen (best_field) > k->path->len)
    {
      /* The value has the shape of one alternative but fails inside it. */
      if (!k->expected)
        {
          k->field = g_steal_pointer (&best_field);
          k->expected = g_steal_pointer (&best_expected);
        }
      return FALSE;
    }
  if (n == 1)
    return fail (k, "%s", best_expected);
  return fail (k, "a value matching one of %u alternatives (%s), e.g. %s", n, one ? "oneOf" : "anyOf",
               best_expected ? best_expected : "?");
}

static gboolean
check_node (Check *k, JsonNode *schema, JsonNode *value)
{
  JsonObject *s;
  JsonNode *n;

  if (is_bool (schema))
    return json_node_get_boolean (schema) || fail (k, "absent (nothing is allowed here)");
  s = json_node_get_object (schema);

  if ((n = json_object_get_member (s, "$ref")))
    {
      gboolean ok;
      if (++k->hops > MAX_DEPTH)
        return fail (k, "a value the schema can check ($ref nested too deeply)");
      ok = check_node (k, resolve_ref (k->schema->root, json_node_get_string (n)), value);
      k->hops--;
      if (!ok)
        return FALSE;
    }
  if ((n = json_object_get_member (s, "type")) && !check_type (k, n, value))
    return FALSE;
  if ((n = json_object_get_member (s, "const")) && !nodes_equal (n, value))
    {
      g_autofree char *text = short_json (n);
      return fail (k, "exactly %s", text);
    }
  if ((n = json_object_get_member (s, "enum")) && !check_enum (k, json_node_get_array (n), value))
    return FALSE;
  if (is_number (value) && !check_number (k, s, value))
    return FALSE;
  if (is_string (value) && !check_string (k, s, value))
    return FALSE;
  if (JSON_NODE_HOLDS_ARRAY (value) && !check_array (k, s, value))
    return FALSE;
  if (JSON_NODE_HOLDS_OBJECT (value) && !check_object (k, s, value))
    return FALSE;

  if ((n = json_object_get_member (s, "allOf")))
    {
      JsonArray *list = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (list); i++)
        if (!check_node (k, json_array_get_element (list, i), value))
          return FALSE;
    }
  if ((n = json_object_get_member (s, "anyOf")) && !check_alternatives (k, json_node_get_array (n), value, FALSE))
    return FALSE;
  if ((n = json_object_get_member (s, "oneOf")) && !check_alternatives (k, json_node_get_array (n), value, TRUE))
    return FALSE;
  if ((n = json_object_get_member (s, "not")) && try_node (k, n, value, NULL, NULL))
    return fail (k, "a value the schema's \"not\" does not match");
  return TRUE;
}

gboolean
ens_schema_validate (EnsSchema *schema, JsonNode *instance, const char *root, char **field, char **expected)
{
  g_autoptr (JsonNode) null = instance ? NULL : json_node_new (JSON_NODE_NULL);
  Check k = { .schema = schema, .path = g_string_new (NULL) };
  gboolean ok = check_node (&k, schema->root, instance ? instance : null);

  g_string_free (k.path, TRUE);
  if (!ok && field)
    *field = k.field && *k.field ? g_steal_pointer (&k.field) : g_strdup (root ? root : "value");
  if (!ok && expected)
    *expected = g_steal_pointer (&k.expected);
  g_free (k.field);
  g_free (k.expected);
  return ok;
}
