/* ens-upstream-anthropic.c — see ens-upstream-anthropic.h. */
#include "ens-upstream-anthropic.h"
#include "ens-json-write.h"

#include <string.h>

static JsonNode *
parse_object (EnsUpstreamAnswer *a, const char *text, gsize len, GError **error)
{
  g_autoptr (GError) parse_error = NULL;
  JsonNode *root = a->parse (text, len, &parse_error);

  if (root && JSON_NODE_HOLDS_OBJECT (root))
    return root;
  g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "sent malformed JSON: %s",
               parse_error ? parse_error->message : "not an object");
  if (root)
    json_node_unref (root);
  return NULL;
}

/* Sets @error for an error object {type, message}. */
static void
reported (JsonObject *obj, GError **error)
{
  GError *local = NULL;
  JsonObject *err = ens_upstream_object (obj, "error", NULL, &local);
  const char *type = ens_upstream_string (err, "type", "error", &local);
  const char *message = ens_upstream_string (err, "message", "error", &local);
  g_autofree char *text = NULL;

  if (local)
    {
      g_propagate_error (error, local);
      return;
    }
  text = ens_upstream_shorten (message ? message : "", message ? strlen (message) : 0);
  g_set_error (error, ENS_UPSTREAM_ERROR,
               g_strcmp0 (type, "overloaded_error") == 0 || g_strcmp0 (type, "rate_limit_error") == 0
                 ? ENS_UPSTREAM_ERROR_OVERLOADED
                 : ENS_UPSTREAM_ERROR_REPORTED,
               "reported %s: %s", type ? type : "an error", text);
}

static void
read_usage (EnsUpstreamAnswer *a, JsonObject *usage, const char *where, GError **error)
{
  gint64 n;

  if (ens_upstream_count (usage, "input_tokens", where, &n, error))
    a->input_tokens = n;
  if (ens_upstream_count (usage, "output_tokens", where, &n, error))
    a->output_tokens = n;
}

/* A tool_use content block at @index (whole, or the start of a streamed
 * one, whose input is {} and comes in pieces). */
static gboolean
read_tool_use (EnsUpstreamAnswer *a, gint64 index, JsonObject *block, const char *where, GError **error)
{
  GError *local = NULL;
  const char *id = ens_upstream_string (block, "id", where, &local);
  const char *name = ens_upstream_string (block, "name", where, &local);
  JsonObject *input = ens_upstream_object (block, "input", where, &local);
  g_autofree char *args = NULL;

  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (input && json_object_get_size (input) > 0)
    {
      g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

      json_node_set_object (node, input);
      args = ens_json_write_to_string (node, FALSE);
    }
  return ens_upstream_answer_add_tool_call (a, index, id, name, args, error);
}

static gboolean
read_block_start (EnsUpstreamAnswer *a, JsonObject *obj, gint64 index, GError **error)
{
  GError *local = NULL;
  JsonObject *block = ens_upstream_object (obj, "content_block", NULL, &local);
  const char *type = ens_upstream_string (block, "type", "content_block", &local);
  const char *text = NULL;

  if (g_strcmp0 (type, "text") == 0)
    text = ens_upstream_string (block, "text", "content_block", &local);
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (g_strcmp0 (type, "tool_use") == 0)
    return read_tool_use (a, index, block, "content_block", error);
  ens_upstream_answer_add_text (a, text, TRUE);
  return TRUE;
}

static gboolean
read_block_delta (EnsUpstreamAnswer *a, JsonObject *obj, gint64 index, GError **error)
{
  GError *local = NULL;
  JsonObject *delta = ens_upstream_object (obj, "delta", NULL, &local);
  const char *type = ens_upstream_string (delta, "type", "delta", &local);
  const char *text = NULL, *partial = NULL;

  if (g_strcmp0 (type, "text_delta") == 0)
    text = ens_upstream_string (delta, "text", "delta", &local);
  else if (g_strcmp0 (type, "input_json_delta") == 0)
    partial = ens_upstream_string (delta, "partial_json", "delta", &local);
  /* thinking_delta, signature_delta: not part of the answer. */
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  ens_upstream_answer_add_text (a, text, TRUE);
  if (partial)
    return ens_upstream_answer_add_tool_call (a, index, NULL, NULL, partial, error);
  return TRUE;
}

gboolean
ens_upstream_anthropic_read_event (EnsUpstreamAnswer *a, const char *event, const char *data, gsize len,
                                   gboolean *done, GError **error)
{
  g_autoptr (JsonNode) root = NULL;
  GError *local = NULL;
  JsonObject *obj;
  const char *type;
  gint64 index = 0;

  *done = FALSE;
  if (!(root = parse_object (a, data, len, error)))
    return FALSE;
  obj = json_node_get_object (root);
  /* The event name is repeated as "type" in the data; either will do. */
  type = ens_upstream_string (obj, "type", NULL, &local);
  if (event)
    type = event;
  if (ens_upstream_int (obj, "index", NULL, &index, &local) && index < 0)
    g_set_error_literal (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "index is negative");
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (!type)
    return TRUE;

  if (strcmp (type, "message_start") == 0)
    {
      JsonObject *message = ens_upstream_object (obj, "message", NULL, &local);
      const char *model = ens_upstream_string (message, "model", "message", &local);

      read_usage (a, ens_upstream_object (message, "usage", "message", &local), "message.usage", &local);
      ens_upstream_answer_set_model (a, model);
    }
  else if (strcmp (type, "content_block_start") == 0)
    return read_block_start (a, obj, index, error);
  else if (strcmp (type, "content_block_delta") == 0)
    return read_block_delta (a, obj, index, error);
  else if (strcmp (type, "message_delta") == 0)
    {
      JsonObject *delta = ens_upstream_object (obj, "delta", NULL, &local);

      ens_upstream_answer_set_stop_reason (a, ens_upstream_string (delta, "stop_reason", "delta", &local));
      read_usage (a, ens_upstream_object (obj, "usage", NULL, &local), "usage", &local);
    }
  else if (strcmp (type, "message_stop") == 0)
    *done = TRUE;
  else if (strcmp (type, "error") == 0)
    reported (obj, &local);
  /* ping, content_block_stop and event types to come need nothing. */
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  return TRUE;
}

gboolean
ens_upstream_anthropic_read_body (EnsUpstreamAnswer *a, const char *body, gsize len, GError **error)
{
  g_autoptr (JsonNode) root = NULL;
  GError *local = NULL;
  JsonObject *obj;
  JsonArray *content;
  const char *model, *reason;

  if (!(root = parse_object (a, body, len, error)))
    return FALSE;
  obj = json_node_get_object (root);
  if (g_strcmp0 (ens_upstream_string (obj, "type", NULL, NULL), "error") == 0)
    {
      reported (obj, error);
      return FALSE;
    }
  content = ens_upstream_array (obj, "content", NULL, &local);
  if (!content && !local)
    g_set_error_literal (&local, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "answered without content");
  model = ens_upstream_string (obj, "model", NULL, &local);
  reason = ens_upstream_string (obj, "stop_reason", NULL, &local);
  read_usage (a, ens_upstream_object (obj, "usage", NULL, &local), "usage", &local);
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  ens_upstream_answer_set_model (a, model);
  ens_upstream_answer_set_stop_reason (a, reason);
  for (guint i = 0; i < json_array_get_length (content); i++)
    {
      JsonNode *el = json_array_get_element (content, i);
      char where[48];
      JsonObject *block;
      const char *type, *text = NULL;

      g_snprintf (where, sizeof where, "content[%u]", i);
      if (!JSON_NODE_HOLDS_OBJECT (el))
        {
          g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED, "%s is not an object", where);
          return FALSE;
        }
      block = json_node_get_object (el);
      type = ens_upstream_string (block, "type", where, &local);
      if (g_strcmp0 (type, "text") == 0)
        text = ens_upstream_string (block, "text", where, &local);
      if (local)
        {
          g_propagate_error (error, local);
          return FALSE;
        }
      ens_upstream_answer_add_text (a, text, FALSE);
      if (g_strcmp0 (type, "tool_use") == 0 && !read_tool_use (a, i, block, where, error))
        return FALSE;
    }
  return TRUE;
}

const char *
ens_upstream_anthropic_finish_reason (EnsUpstreamAnswer *a)
{
  const char *r = a->stop_reason;

  if (!r)
    return NULL;
  if (strcmp (r, "end_turn") == 0 || strcmp (r, "stop_sequence") == 0)
    return "stop";
  if (strcmp (r, "max_tokens") == 0)
    return "length";
  if (strcmp (r, "tool_use") == 0)
    return "tool_calls";
  return r;
}
