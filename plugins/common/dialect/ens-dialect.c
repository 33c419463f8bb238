/* ens-dialect.c — the engine that reads a dialect's table: rows found by
 * name, fields renamed, checked and reshaped, error codes named, frames
 * found in a byte stream.  What each dialect says is in its own file. */
#include "ens-dialect.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const EnsHost *dialect_host;

void
ens_dialect_init (const EnsHost *host)
{
  dialect_host = host;
}

const EnsHost *
ens_dialect_host (void)
{
  return dialect_host;
}

/* ------------------------------------------------------------------ rows */

const EnsDialectEntry *
ens_dialect_find (const EnsDialect *dialect, const char *name, JsonObject *params, gboolean *known)
{
  gboolean seen = FALSE;

  for (const EnsDialectEntry *e = dialect->entries; name && e->name; e++)
    {
      if (strcmp (e->name, name) != 0)
        continue;
      seen = TRUE;
      if (e->when == NULL || g_strcmp0 (ens_member_string (params, e->when), e->is) == 0)
        return e;
    }
  if (known)
    *known = seen;
  return NULL;
}

const EnsDialectEntry *
ens_dialect_find_answered (const EnsDialect *dialect, EnsMessage *answer)
{
  const EnsDialectEntry *first = NULL;

  for (const EnsDialectEntry *e = dialect->entries; answer->tag && e->name; e++)
    if (strcmp (e->name, answer->tag) == 0)
      {
        if (e->when == NULL || g_strcmp0 (e->verb, answer->action) == 0)
          return e;
        if (first == NULL)
          first = e;
      }
  return first;
}

const EnsDialectEntry *
ens_dialect_find_event (const EnsDialect *dialect, const char *topic)
{
  for (const EnsDialectEntry *e = dialect->events; e && topic && e->name; e++)
    if (strcmp (e->name, topic) == 0)
      return e;
  return NULL;
}

void
ens_dialect_variants (const EnsDialect *dialect, const char *name, char *expected, gsize size)
{
  GString *text = g_string_new (NULL);

  for (const EnsDialectEntry *e = dialect->entries; e->name; e++)
    if (strcmp (e->name, name) == 0 && e->is)
      g_string_append_printf (text, "%s\"%s\"", text->len ? " or " : "", e->is);
  g_strlcpy (expected, text->str, size);
  g_string_free (text, TRUE);
}

const char *
ens_dialect_code (const EnsDialect *dialect, const char *code)
{
  if (code == NULL)
    return ENS_ERR_INTERNAL;
  for (const EnsDialectCode *c = dialect->codes; c && c->core; c++)
    if (strcmp (c->core, code) == 0)
      return c->dialect;
  return code;
}

gboolean
ens_dialect_core_invalid (const EnsDialectEntry *entry, JsonNode *details, EnsInvalid *invalid)
{
  JsonObject *obj = details && JSON_NODE_HOLDS_OBJECT (details) ? json_node_get_object (details) : NULL;
  const char *field = ens_member_string (obj, "field"), *expected = ens_member_string (obj, "expected");

  if (entry == NULL || field == NULL || expected == NULL)
    return FALSE;
  for (const EnsField *f = entry->in; f && (f->from || f->to); f++)
    if (f->from && f->to && strcmp (f->to, field) == 0)
      {
        g_autofree char *name = g_strndup (f->from, strcspn (f->from, "|"));
        /* Interned: it outlives the call, as a table's own strings do. */
        ens_invalid_set (invalid, g_intern_string (name), "%s", expected);
        return TRUE;
      }
  return FALSE;
}

/* ------------------------------------------------------------------ paths */

/* (transfer none) the member at @path ("a.b"), JSON null included; NULL
 * when missing. */
static JsonNode *
path_get (JsonObject *obj, const char *path, gsize len)
{
  while (obj)
    {
      const char *dot = memchr (path, '.', len);
      gsize n = dot ? (gsize) (dot - path) : len;
      char name[128];
      JsonNode *node;

      if (n >= sizeof name)
        return NULL;
      memcpy (name, path, n);
      name[n] = '\0';
      node = json_object_get_member (obj, name);
      if (dot == NULL || node == NULL)
        return node;
      obj = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      path = dot + 1;
      len -= n + 1;
    }
  return NULL;
}

/* The first of @from's alternatives ("a|b.c") present in @obj. */
static JsonNode *
source (JsonObject *obj, const char *from)
{
  const char *p = from;

  for (;;)
    {
      gsize n = strcspn (p, "|");
      JsonNode *node = path_get (obj, p, n);
      if (node)
        return node;
      if (p[n] == '\0')
        return NULL;
      p += n + 1;
    }
}

/* (transfer none) the object at @path of @obj ("" is @obj itself), made
 * (or made again, over a member that is not an object) as needed. */
static JsonObject *
path_object (JsonObject *obj, const char *path, gsize len)
{
  while (len > 0)
    {
      const char *dot = memchr (path, '.', len);
      gsize n = dot ? (gsize) (dot - path) : len;
      g_autofree char *name = g_strndup (path, n);
      JsonObject *next = ens_member_object (obj, name);

      if (next == NULL)
        {
          next = json_object_new ();
          json_object_set_object_member (obj, name, next);
        }
      obj = next;
      if (dot == NULL)
        break;
      path = dot + 1;
      len -= n + 1;
    }
  return obj;
}

/* Sets @path ("a.b", objects made as needed) of @obj to @node (transfer
 * full). */
static void
path_set (JsonObject *obj, const char *path, JsonNode *node)
{
  const char *last = strrchr (path, '.');
  JsonObject *parent = last ? path_object (obj, path, last - path) : obj;

  json_object_set_member (parent, last ? last + 1 : path, node);
}

/* ------------------------------------------------------------------ values */

/* (transfer full) the node of a table's JSON constant. */
static JsonNode *
constant (const char *text)
{
  JsonNode *node;
  gsize len = strlen (text);

  if (strcmp (text, "true") == 0 || strcmp (text, "false") == 0)
    return json_node_init_boolean (json_node_alloc (), text[0] == 't');
  if (strcmp (text, "null") == 0)
    return json_node_new (JSON_NODE_NULL);
  if (len >= 2 && text[0] == '"' && text[len - 1] == '"' && memchr (text, '\\', len) == NULL)
    {
      g_autofree char *s = g_strndup (text + 1, len - 2);
      return json_node_init_string (json_node_alloc (), s);
    }
  node = json_from_string (text, NULL);
  g_return_val_if_fail (node != NULL, json_node_new (JSON_NODE_NULL)); /* a typo in a table */
  return node;
}

static gboolean
is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

static gboolean
read_int (JsonNode *node, gint64 *out)
{
  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    {
      *out = json_node_get_int (node);
      return TRUE;
    }
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    {
      double d = json_node_get_double (node);
      if (d >= -9.0e15 && d <= 9.0e15 && d == (double) (gint64) d)
        {
          *out = (gint64) d;
          return TRUE;
        }
    }
  return FALSE;
}

/* The alternative of @f's @from that @obj holds, else the first: its
 * length, from *@start. */
static gsize
alternative (const EnsField *f, JsonObject *obj, const char **start)
{
  for (const char *p = f->from; obj && *p;)
    {
      gsize n = strcspn (p, "|");
      if (path_get (obj, p, n))
        {
          *start = p;
          return n;
        }
      p += n;
      if (*p == '|')
        p++;
    }
  *start = f->from;
  return strcspn (f->from, "|");
}

/* Fills @invalid for @f, whose value in @obj did not pass; FALSE. */
static gboolean
expect (const EnsField *f, JsonObject *obj, EnsInvalid *invalid)
{
  /* The field as the client spelt it (the alternative it sent, else the
   * first), interned so that it outlives the call as the table's own
   * strings do. */
  const char *start = f->to;
  gsize len = f->from ? alternative (f, obj, &start) : strlen (f->to);
  g_autofree char *name = g_strndup (start, len);
  const char *field = g_intern_string (name);
  gboolean required = (f->flags & ENS_FIELD_REQUIRED) != 0;

  switch (f->type)
    {
    case ENS_FIELD_STRING:
      return ens_invalid_set (invalid, field, "%s",
                              required || (f->flags & ENS_FIELD_NONEMPTY) ? "a non-empty string" : "a string");
    case ENS_FIELD_STRINGS:
      return ens_invalid_set (invalid, field, "%s",
                              required ? "a non-empty list of non-empty strings"
                              : (f->flags & ENS_FIELD_NONEMPTY) ? "a list of non-empty strings" : "a list of strings");
    case ENS_FIELD_WORDS:
      return ens_invalid_set (invalid, field, "a list of strings or a comma-separated string");
    case ENS_FIELD_INT:
      return ens_invalid_set (invalid, field, "an integer from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, f->min,
                              f->max);
    case ENS_FIELD_NUMBER:
      return ens_invalid_set (invalid, field, "a number %s %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                              (f->flags & ENS_FIELD_ABOVE_MIN) ? "above" : "from", f->min, f->max);
    case ENS_FIELD_FUNC:
      return ens_invalid_set (invalid, field, "%s", f->value ? f->value : "given (any JSON value)");
    case ENS_FIELD_BOOL:
      return ens_invalid_set (invalid, field, "true or false");
    case ENS_FIELD_OBJECT:
    case ENS_FIELD_SPREAD:
    case ENS_FIELD_MAP:
      return ens_invalid_set (invalid, field, "an object");
    case ENS_FIELD_EACH:
    case ENS_FIELD_KEYED:
      return ens_invalid_set (invalid, field, "a list of objects");
    default:
      return ens_invalid_set (invalid, field, "given (any JSON value)");
    }
}

static gboolean map_fields (const EnsField *fields, JsonObject *from, JsonObject *to, gboolean strict,
                            EnsInvalid *invalid);

/* (transfer full) @node's object through @each (NULL: a copy), or NULL
 * when it is not an object, or (*@nested set, @invalid filled) when a
 * field inside it fails. */
static JsonNode *
map_object (const EnsField *each, JsonNode *node, gboolean strict, gboolean *nested, EnsInvalid *invalid)
{
  JsonObject *out;
  JsonNode *result;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  if (each == NULL)
    return json_node_copy (node);
  result = ens_node_new_object (&out);
  if (!map_fields (each, json_node_get_object (node), out, strict, invalid))
    {
      *nested = TRUE;
      json_node_unref (result);
      return NULL;
    }
  return result;
}

static JsonNode *
new_array (JsonArray **array)
{
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  *array = json_array_new ();
  json_node_take_array (node, *array);
  return node;
}

/* What @f writes for @src (transfer none; JSON null included; NULL:
 * missing): *@out (transfer full), NULL for nothing.  FALSE when @src
 * fails the check; *@nested then says that a field inside it failed and
 * @invalid already names it. */
static gboolean
convert (const EnsField *f, JsonObject *from, JsonNode *src, gboolean strict, JsonNode **out, gboolean *nested,
         EnsInvalid *invalid)
{
  gboolean required = (f->flags & ENS_FIELD_REQUIRED) != 0;

  *out = NULL;
  switch (f->type)
    {
    case ENS_FIELD_FUNC:
      *out = f->func (src, from);
      return *out != NULL || !required;
    case ENS_FIELD_SET:
      *out = constant (f->value);
      return TRUE;
    case ENS_FIELD_PRESENT:
      *out = json_node_init_boolean (json_node_alloc (),
                                     (src != NULL && !JSON_NODE_HOLDS_NULL (src)) != !!(f->flags & ENS_FIELD_NOT));
      return TRUE;
    case ENS_FIELD_CHOOSE:
      if (src == NULL)
        *out = f->fallback ? constant (f->fallback) : NULL;
      else
        *out = constant (JSON_NODE_HOLDS_VALUE (src) && json_node_get_value_type (src) == G_TYPE_BOOLEAN &&
                             json_node_get_boolean (src)
                           ? f->value
                           : f->other);
      return TRUE;
    case ENS_FIELD_ANY:
      /* JSON null is a value here (SET_AGENT_KV stores it). */
      if (src != NULL)
        *out = json_node_copy (src);
      else if (f->fallback)
        *out = constant (f->fallback);
      return src != NULL || !required;
    default:
      break;
    }
  if (src == NULL || JSON_NODE_HOLDS_NULL (src))
    {
      if (f->fallback)
        *out = constant (f->fallback);
      return !required;
    }

  switch (f->type)
    {
    case ENS_FIELD_STRING:
      if (!is_string (src) || ((required || (f->flags & ENS_FIELD_NONEMPTY)) && json_node_get_string (src)[0] == '\0'))
        return FALSE;
      *out = json_node_copy (src);
      return TRUE;
    case ENS_FIELD_STRINGS:
    case ENS_FIELD_WORDS:
      {
        JsonArray *list, *in;

        if (f->type == ENS_FIELD_WORDS && is_string (src))
          {
            g_auto (GStrv) parts = g_strsplit (json_node_get_string (src), ",", -1);
            *out = new_array (&list);
            for (guint i = 0; parts[i]; i++)
              if (g_strstrip (parts[i])[0])
                json_array_add_string_element (list, parts[i]);
            return TRUE;
          }
        if (!JSON_NODE_HOLDS_ARRAY (src))
          return FALSE;
        in = json_node_get_array (src);
        if (required && json_array_get_length (in) == 0)
          return FALSE;
        for (guint i = 0; i < json_array_get_length (in); i++)
          {
            JsonNode *el = json_array_get_element (in, i);
            if (!is_string (el) || ((required || (f->flags & ENS_FIELD_NONEMPTY)) && json_node_get_string (el)[0] == '\0'))
              return FALSE;
          }
        *out = json_node_copy (src);
        return TRUE;
      }
    case ENS_FIELD_OBJECT:
    case ENS_FIELD_SPREAD:
      if (!JSON_NODE_HOLDS_OBJECT (src))
        return FALSE;
      *out = json_node_copy (src);
      return TRUE;
    case ENS_FIELD_INT:
      {
        gint64 v;
        if (!read_int (src, &v) || v < f->min || v > f->max)
          return FALSE;
        *out = json_node_init_int (json_node_alloc (), v * (f->scale ? f->scale : 1));
        return TRUE;
      }
    case ENS_FIELD_NUMBER:
      {
        GType t = JSON_NODE_HOLDS_VALUE (src) ? json_node_get_value_type (src) : G_TYPE_INVALID;
        double v;

        if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
          return FALSE;
        v = json_node_get_double (src);
        if (v < (double) f->min || v > (double) f->max || ((f->flags & ENS_FIELD_ABOVE_MIN) && v <= (double) f->min))
          return FALSE;
        *out = json_node_copy (src);
        return TRUE;
      }
    case ENS_FIELD_BOOL:
      if (!JSON_NODE_HOLDS_VALUE (src) || json_node_get_value_type (src) != G_TYPE_BOOLEAN)
        return FALSE;
      *out = json_node_copy (src);
      return TRUE;
    case ENS_FIELD_MAP:
      *out = map_object (f->each, src, strict, nested, invalid);
      return *out != NULL;
    case ENS_FIELD_EACH:
    case ENS_FIELD_KEYED:
      {
        JsonArray *in, *list = NULL;
        JsonObject *keyed = NULL;

        if (!JSON_NODE_HOLDS_ARRAY (src))
          return FALSE;
        in = json_node_get_array (src);
        *out = f->type == ENS_FIELD_KEYED ? ens_node_new_object (&keyed) : new_array (&list);
        for (guint i = 0; i < json_array_get_length (in); i++)
          {
            JsonNode *el = json_array_get_element (in, i);
            JsonObject *obj = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
            const char *key = keyed ? ens_member_string (obj, f->key) : NULL;
            JsonNode *mapped = keyed && key == NULL ? NULL : map_object (f->each, el, strict, nested, invalid);

            if (mapped == NULL)
              {
                if (strict)
                  {
                    g_clear_pointer (out, json_node_unref);
                    return FALSE;
                  }
                *nested = FALSE;
                continue; /* shaping an answer: an element that does not fit is left out */
              }
            if (keyed)
              json_object_set_member (keyed, key, mapped);
            else
              json_array_add_element (list, mapped);
          }
        return TRUE;
      }
    default:
      return FALSE;
    }
}

/* Whether @fields read the top-level member @name (KEEP_REST keeps the
 * others). */
static gboolean
read_by_fields (const EnsField *fields, const char *name)
{
  gsize n = strlen (name);

  for (const EnsField *f = fields; f && (f->from || f->to); f++)
    {
      if (f->type == ENS_FIELD_INCLUDE && read_by_fields (f->each, name))
        return TRUE;
      for (const char *p = f->from; p && *p;)
        {
          gsize len = strcspn (p, ".|");
          if (len == n && strncmp (p, name, n) == 0)
            return TRUE;
          p += strcspn (p, "|");
          if (*p == '|')
            p++;
        }
    }
  return FALSE;
}

static gboolean
map_fields (const EnsField *fields, JsonObject *from, JsonObject *to, gboolean strict, EnsInvalid *invalid)
{
  for (const EnsField *f = fields; f && (f->from || f->to); f++)
    {
      JsonNode *src = f->from && from ? source (from, f->from) : NULL;
      JsonNode *out = NULL;
      gboolean nested = FALSE;

      if (f->type == ENS_FIELD_INCLUDE)
        {
          if (!map_fields (f->each, from, to, strict, invalid))
            return FALSE;
          continue;
        }

      if (!convert (f, from, src, strict, &out, &nested, invalid))
        {
          if (!strict)
            continue; /* shaping an answer: what does not fit is left out */
          return nested ? FALSE : expect (f, from, invalid);
        }
      if (out == NULL)
        continue;
      if (f->to == NULL)
        json_node_unref (out); /* checked only */
      else if (f->type == ENS_FIELD_SPREAD)
        {
          JsonObject *target = path_object (to, f->to, strlen (f->to));
          JsonObjectIter iter;
          const char *name;
          JsonNode *member;

          json_object_iter_init_ordered (&iter, json_node_get_object (out));
          while (json_object_iter_next_ordered (&iter, &name, &member))
            json_object_set_member (target, name, json_node_copy (member));
          json_node_unref (out);
        }
      else
        path_set (to, f->to, out);
    }
  return TRUE;
}

gboolean
ens_dialect_map (const EnsField *fields, JsonObject *from, JsonObject *to, EnsInvalid *invalid)
{
  memset (invalid, 0, sizeof *invalid);
  return map_fields (fields, from, to, TRUE, invalid);
}

JsonNode *
ens_dialect_reshape (const EnsField *fields, guint flags, JsonNode *data)
{
  JsonObject *in = data && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL;
  JsonObject *out;
  JsonNode *node;
  EnsInvalid ignored;

  if (fields == NULL)
    return data ? json_node_copy (data) : ens_node_empty_object ();
  node = ens_node_new_object (&out);
  if (in && (flags & ENS_DIALECT_KEEP_REST))
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;

      json_object_iter_init_ordered (&iter, in);
      while (json_object_iter_next_ordered (&iter, &name, &member))
        if (!read_by_fields (fields, name))
          json_object_set_member (out, name, json_node_copy (member));
    }
  map_fields (fields, in, out, FALSE, &ignored);
  return node;
}

/* ------------------------------------------------------------------ requests */

EnsMessage *
ens_dialect_request (const EnsHost *host, const EnsDialectEntry *entry, const char *agent, JsonObject *params,
                     EnsInvalid *invalid)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  g_autoptr (JsonNode) data = NULL;
  JsonObject *obj;

  if (entry->in)
    {
      data = ens_node_new_object (&obj);
      if (!ens_dialect_map (entry->in, params, obj, invalid))
        return NULL;
    }
  else
    data = params ? ens_node_ref_object (params) : ens_node_empty_object ();
  init.action = entry->verb;
  init.agent = agent;
  init.tag = entry->name;
  init.data = data;
  init.received_us = g_get_monotonic_time ();
  return host->message_new (&init);
}

const char *
ens_dialect_hold_key (EnsMessage *msg)
{
  return msg->data && JSON_NODE_HOLDS_OBJECT (msg->data)
           ? ens_member_string (json_node_get_object (msg->data), "request_id")
           : NULL;
}

/* ------------------------------------------------------------------ frames */

gsize
ens_dialect_scan_value (const char *buf, gsize len, gboolean at_eof)
{
  gsize i = 0;
  guint depth = 0;
  gboolean in_string = FALSE;

  while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
    i++;
  if (i == len)
    return 0;
  if (buf[i] != '{' && buf[i] != '[' && buf[i] != '"')
    {
      /* A number, a literal or garbage: up to white space. */
      for (; i < len; i++)
        if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')
          return i;
      return at_eof ? len : 0;
    }
  for (; i < len; i++)
    {
      char c = buf[i];

      if (in_string)
        {
          if (c == '\\')
            i++; /* the escaped byte, whatever it is */
          else if (c == '"')
            {
              in_string = FALSE;
              if (depth == 0)
                return i + 1;
            }
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if (c == '{' || c == '[')
        depth++;
      else if ((c == '}' || c == ']') && depth > 0 && --depth == 0)
        return i + 1;
    }
  return 0;
}

void
ens_dialect_frame_reply (EnsDialectFrame *frame, GBytes *bytes)
{
  if (frame->reply == NULL)
    frame->reply = bytes;
  else
    {
      gsize a, b;
      const guint8 *pa = g_bytes_get_data (frame->reply, &a), *pb = g_bytes_get_data (bytes, &b);
      guint8 *both = g_malloc (a + b);

      memcpy (both, pa, a);
      memcpy (both + a, pb, b);
      g_bytes_unref (frame->reply);
      g_bytes_unref (bytes);
      frame->reply = g_bytes_new_take (both, a + b);
    }
}

void
ens_dialect_frame_clear (EnsDialectFrame *frame)
{
  g_clear_pointer (&frame->reply, g_bytes_unref);
  if (frame->submit)
    {
      frame->host->message_unref (frame->submit);
      frame->submit = NULL;
    }
}

/* ------------------------------------------------------------------ writing */

void
ens_dialect_append_json (GString *out, JsonNode *node)
{
  g_autofree char *text = NULL;

  if (node == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  text = dialect_host->json_to_string (node);
  g_string_append (out, text);
}

void
ens_dialect_append_string (GString *out, const char *s)
{
  JsonNode *node = json_node_init_string (json_node_alloc (), s ? s : "");

  ens_dialect_append_json (out, node);
  json_node_unref (node);
}

void
ens_dialect_append_timestamp (GString *out, gint64 unix_us)
{
  time_t t = (time_t) (unix_us / G_USEC_PER_SEC);
  struct tm tm;
  char date[32];

  gmtime_r (&t, &tm);
  strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  g_string_append_printf (out, "\"%s.%06dZ\"", date, (int) (unix_us % G_USEC_PER_SEC));
}
