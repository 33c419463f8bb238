/* ens-upstream-openai.c — see ens-upstream-openai.h. */
#include "ens-upstream-openai.h"
#include "ens-upstream-openai-scan.h"

#include <string.h>

/* (transfer full) the root object of @text, or NULL with @error set: for
 * text that is not a JSON object, and for an answer carrying "error". */
static JsonNode *
parse_object (EnsUpstreamAnswer *a, const char *text, gsize len, GError **error)
{
  g_autoptr (GError) parse_error = NULL;
  g_autoptr (JsonNode) root = a->parse (text, len, &parse_error);
  JsonNode *err;

  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "sent malformed JSON: %s",
                   parse_error ? parse_error->message : "not an object");
      return NULL;
    }
  err = json_object_get_member (json_node_get_object (root), "error");
  if (err && !JSON_NODE_HOLDS_NULL (err))
    {
      g_autofree char *detail = ens_upstream_error_message (text, len);
      g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_REPORTED, "reported an error: %s", detail);
      return NULL;
    }
  return g_steal_pointer (&root);
}

static void
read_usage (EnsUpstreamAnswer *a, JsonObject *obj, GError **error)
{
  JsonObject *usage = ens_upstream_object (obj, "usage", NULL, error);
  gint64 n;

  if (ens_upstream_count (usage, "prompt_tokens", "usage", &n, error))
    a->input_tokens = n;
  if (ens_upstream_count (usage, "completion_tokens", "usage", &n, error))
    a->output_tokens = n;
}

/* (transfer none) choices[0], or NULL when there are no choices. */
static JsonObject *
first_choice (JsonObject *obj, GError **error)
{
  JsonArray *choices = ens_upstream_array (obj, "choices", NULL, error);
  JsonNode *first;

  if (!choices || json_array_get_length (choices) == 0)
    return NULL;
  first = json_array_get_element (choices, 0);
  if (JSON_NODE_HOLDS_OBJECT (first))
    return json_node_get_object (first);
  if (!JSON_NODE_HOLDS_NULL (first))
    g_set_error_literal (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "choices[0] is not an object");
  return NULL;
}

/* The tool_calls of a message or a delta, at @where.  A streamed call has
 * its "index"; a whole message's calls are numbered by position. */
static gboolean
read_tool_calls (EnsUpstreamAnswer *a, JsonObject *holder, const char *where, GError **error)
{
  GError *local = NULL;
  JsonArray *array = ens_upstream_array (holder, "tool_calls", where, &local);

  for (guint i = 0; array && !local && i < json_array_get_length (array); i++)
    {
      JsonNode *el = json_array_get_element (array, i);
      char path[128], fn_path[160];
      JsonObject *tc, *fn;
      const char *id, *name, *arguments;
      gint64 index = i;

      g_snprintf (path, sizeof path, "%s.tool_calls[%u]", where, i);
      g_snprintf (fn_path, sizeof fn_path, "%s.function", path);
      if (!JSON_NODE_HOLDS_OBJECT (el))
        {
          g_set_error (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "%s is not an object", path);
          break;
        }
      tc = json_node_get_object (el);
      if (ens_upstream_int (tc, "index", path, &index, &local) && index < 0)
        g_set_error (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "%s.index is negative", path);
      id = ens_upstream_string (tc, "id", path, &local);
      fn = ens_upstream_object (tc, "function", path, &local);
      name = ens_upstream_string (fn, "name", fn_path, &local);
      arguments = ens_upstream_string (fn, "arguments", fn_path, &local);
      if (!local)
        ens_upstream_answer_add_tool_call (a, index, id, name, arguments, &local);
    }
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  return TRUE;
}

gboolean
ens_upstream_openai_read_chunk (EnsUpstreamAnswer *a, const char *data, gsize len, gboolean *done, GError **error)
{
  g_autoptr (JsonNode) root = NULL;
  GError *local = NULL;
  JsonObject *obj, *choice, *delta;
  const char *model, *content, *reason;

  *done = FALSE;
  if (len == 6 && memcmp (data, "[DONE]", 6) == 0)
    {
      *done = TRUE;
      return TRUE;
    }
  if (ens_upstream_openai_scan_chunk (a, data, len))
    return TRUE;
  if (!(root = parse_object (a, data, len, error)))
    return FALSE;
  obj = json_node_get_object (root);
  model = ens_upstream_string (obj, "model", NULL, &local);
  read_usage (a, obj, &local); /* the last chunk, with empty choices */
  choice = first_choice (obj, &local);
  delta = ens_upstream_object (choice, "delta", "choices[0]", &local);
  content = ens_upstream_string (delta, "content", "choices[0].delta", &local);
  reason = ens_upstream_string (choice, "finish_reason", "choices[0]", &local);
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  ens_upstream_answer_set_model (a, model);
  ens_upstream_answer_add_text (a, content, TRUE);
  if (delta && !read_tool_calls (a, delta, "choices[0].delta", error))
    return FALSE;
  ens_upstream_answer_set_stop_reason (a, reason);
  return TRUE;
}

gboolean
ens_upstream_openai_read_body (EnsUpstreamAnswer *a, const char *body, gsize len, GError **error)
{
  g_autoptr (JsonNode) root = NULL;
  GError *local = NULL;
  JsonObject *obj, *choice, *message;
  const char *model, *content, *reason;

  if (ens_upstream_openai_scan_body (a, body, len))
    return TRUE;
  if (!(root = parse_object (a, body, len, error)))
    return FALSE;
  obj = json_node_get_object (root);
  choice = first_choice (obj, &local);
  message = ens_upstream_object (choice, "message", "choices[0]", &local);
  if (!message && !local)
    g_set_error_literal (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "answered without choices[0].message");
  model = ens_upstream_string (obj, "model", NULL, &local);
  read_usage (a, obj, &local);
  reason = ens_upstream_string (choice, "finish_reason", "choices[0]", &local);
  content = ens_upstream_string (message, "content", "choices[0].message", &local);
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  ens_upstream_answer_set_model (a, model);
  ens_upstream_answer_set_stop_reason (a, reason);
  ens_upstream_answer_add_text (a, content, FALSE);
  return read_tool_calls (a, message, "choices[0].message", error);
}

#define MAX_DIMS 65536

static void
array_unref0 (gpointer array)
{
  if (array)
    json_array_unref (array);
}

JsonNode *
ens_upstream_openai_read_embeddings (EnsUpstreamParseFunc parse, const char *body, gsize len, guint n,
                                     const char *model, GError **error)
{
  EnsUpstreamAnswer *a = ens_upstream_answer_new (0, parse, NULL, NULL);
  g_autoptr (JsonNode) root = parse_object (a, body, len, error);
  g_autoptr (GPtrArray) slots = g_ptr_array_new_full (n, array_unref0);
  GError *local = NULL;
  JsonObject *obj, *out, *usage;
  JsonArray *data, *embeddings;
  JsonNode *node = NULL;
  guint dims = 0;

  g_ptr_array_set_size (slots, n);
  if (!root)
    goto out;
  obj = json_node_get_object (root);
  data = ens_upstream_array (obj, "data", NULL, &local);
  ens_upstream_answer_set_model (a, ens_upstream_string (obj, "model", NULL, &local));
  read_usage (a, obj, &local);
  if (!local && (!data || json_array_get_length (data) != n))
    g_set_error (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "answered %u embeddings for %u inputs",
                 data ? json_array_get_length (data) : 0, n);
  for (guint i = 0; !local && i < n; i++)
    {
      JsonNode *el = json_array_get_element (data, i);
      char where[48];
      JsonArray *vector, *copy;
      gint64 index = i;

      g_snprintf (where, sizeof where, "data[%u]", i);
      if (!JSON_NODE_HOLDS_OBJECT (el))
        {
          g_set_error (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "%s is not an object", where);
          break;
        }
      ens_upstream_int (json_node_get_object (el), "index", where, &index, &local);
      vector = ens_upstream_array (json_node_get_object (el), "embedding", where, &local);
      if (local)
        break;
      if (index < 0 || index >= n || g_ptr_array_index (slots, index))
        {
          g_set_error (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED,
                       "%s.index is out of range or repeated", where);
          break;
        }
      if (!vector || json_array_get_length (vector) == 0 || json_array_get_length (vector) > MAX_DIMS ||
          (dims && json_array_get_length (vector) != dims))
        {
          g_set_error (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED,
                       "%s.embedding is not a list of 1 to %u numbers as long as the others", where, MAX_DIMS);
          break;
        }
      dims = json_array_get_length (vector);
      copy = json_array_sized_new (dims);
      for (guint j = 0; j < dims; j++)
        {
          JsonNode *x = json_array_get_element (vector, j);
          if (!JSON_NODE_HOLDS_VALUE (x) ||
              (json_node_get_value_type (x) != G_TYPE_DOUBLE && json_node_get_value_type (x) != G_TYPE_INT64))
            {
              g_set_error (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED,
                           "%s.embedding[%u] is not a number", where, j);
              break;
            }
          json_array_add_double_element (copy, json_node_get_double (x));
        }
      g_ptr_array_index (slots, index) = copy;
    }
  if (local)
    {
      g_propagate_error (error, local);
      goto out;
    }
  out = json_object_new ();
  embeddings = json_array_sized_new (n);
  for (guint i = 0; i < n; i++)
    json_array_add_array_element (embeddings, json_array_ref (g_ptr_array_index (slots, i)));
  json_object_set_array_member (out, "embeddings", embeddings);
  json_object_set_string_member (out, "model", a->model ? a->model : model ? model : "");
  json_object_set_int_member (out, "dims", dims);
  usage = json_object_new ();
  json_object_set_int_member (usage, "input_tokens", MAX (a->input_tokens, 0));
  json_object_set_int_member (usage, "output_tokens", 0);
  if (a->input_tokens < 0)
    json_object_set_boolean_member (usage, "estimated", TRUE);
  json_object_set_object_member (out, "usage", usage);
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, out);
out:
  ens_upstream_answer_free (a);
  return node;
}
