/* ens-upstream-answer.c — see ens-upstream-answer.h. */
#include "ens-upstream-answer.h"
#include "ens-json-util.h"
#include "ens-json-write.h"

#include <string.h>

EnsUpstreamAnswer *
ens_upstream_answer_new (guint max_tool_calls, EnsUpstreamParseFunc parse, const EnsUpstreamSink *sink,
                         gpointer sink_data)
{
  EnsUpstreamAnswer *a = g_new0 (EnsUpstreamAnswer, 1);

  a->text = g_string_new (NULL);
  a->input_tokens = a->output_tokens = -1;
  a->parse = parse ? parse : ens_upstream_json_parse;
  a->tools = ens_tool_calls_new (max_tool_calls, a->parse);
  a->sink = sink;
  a->sink_data = sink_data;
  return a;
}

void
ens_upstream_answer_free (EnsUpstreamAnswer *a)
{
  if (!a)
    return;
  g_string_free (a->text, TRUE);
  g_free (a->model);
  g_free (a->stop_reason);
  ens_tool_calls_free (a->tools);
  g_free (a);
}

void
ens_upstream_answer_set_scanner (EnsUpstreamAnswer *a, const EnsUpstreamScanner *scanner)
{
  a->scanner = scanner;
}

/* *@field = @len bytes of @value, unless it holds them already or @len is 0. */
static void
set_string (char **field, const char *value, gsize len)
{
  if (len == 0 || (*field && strncmp (*field, value, len) == 0 && (*field)[len] == '\0'))
    return;
  g_free (*field);
  *field = g_strndup (value, len);
}

void
ens_upstream_answer_set_model (EnsUpstreamAnswer *a, const char *model)
{
  set_string (&a->model, model, model ? strlen (model) : 0);
}

void
ens_upstream_answer_set_model_len (EnsUpstreamAnswer *a, const char *model, gsize len)
{
  set_string (&a->model, model, len);
}

void
ens_upstream_answer_set_stop_reason (EnsUpstreamAnswer *a, const char *reason)
{
  set_string (&a->stop_reason, reason, reason ? strlen (reason) : 0);
}

void
ens_upstream_answer_set_stop_reason_len (EnsUpstreamAnswer *a, const char *reason, gsize len)
{
  set_string (&a->stop_reason, reason, len);
}

void
ens_upstream_answer_add_text_len (EnsUpstreamAnswer *a, const char *text, gsize len, gboolean stream)
{
  gsize from = a->text->len;

  if (len == 0)
    return;
  g_string_append_len (a->text, text, (gssize) len);
  /* what was appended, NUL-terminated by the GString */
  if (stream && a->sink && a->sink->chunk)
    a->sink->chunk (a->sink_data, a->text->str + from);
}

void
ens_upstream_answer_add_text (EnsUpstreamAnswer *a, const char *text, gboolean stream)
{
  ens_upstream_answer_add_text_len (a, text, text ? strlen (text) : 0, stream);
}

void
ens_upstream_answer_flush_text (EnsUpstreamAnswer *a)
{
  if (a->text->len && a->sink && a->sink->chunk)
    a->sink->chunk (a->sink_data, a->text->str);
}

gboolean
ens_upstream_answer_add_tool_call (EnsUpstreamAnswer *a, gint64 index, const char *id, const char *name,
                                   const char *arguments, GError **error)
{
  gboolean started = FALSE;

  if (!ens_tool_calls_update (a->tools, index, id, name, arguments, &started, error))
    return FALSE;
  if (started && a->sink && a->sink->event)
    {
      g_autoptr (JsonNode) event = ens_tool_calls_start_event (a->tools, index);
      a->sink->event (a->sink_data, "tool_call_start", event);
    }
  return TRUE;
}

/* Rough token count: about four characters a token for English text. */
static gint64
estimate_tokens (gsize chars)
{
  return (gint64) ((chars + 3) / 4);
}

static gint64
estimate_input (JsonNode *request)
{
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  JsonArray *messages = ens_upstream_array (req, "messages", NULL, NULL);
  gsize chars = 0;

  for (guint i = 0; messages && i < json_array_get_length (messages); i++)
    {
      JsonNode *m = json_array_get_element (messages, i);

      if (JSON_NODE_HOLDS_OBJECT (m))
        {
          g_autofree char *t = ens_content_text (json_object_get_member (json_node_get_object (m), "content"), "");
          chars += (gsize) g_utf8_strlen (t, -1);
        }
    }
  return estimate_tokens (chars);
}

JsonNode *
ens_upstream_answer_result (EnsUpstreamAnswer *a, JsonNode *request, const char *finish_reason)
{
  JsonObject *obj = json_object_new (), *usage = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  guint n_tools = ens_tool_calls_count (a->tools);
  g_autoptr (JsonNode) tools = n_tools ? ens_tool_calls_to_json (a->tools) : NULL;
  gint64 input = a->input_tokens, output = a->output_tokens;
  gboolean estimated = input < 0 || output < 0;

  if (estimated)
    {
      gsize chars = (gsize) g_utf8_strlen (a->text->str, (gssize) a->text->len);

      if (tools)
        {
          g_autofree char *t = ens_json_write_to_string (tools, FALSE);
          chars += strlen (t);
        }
      input = estimate_input (request);
      output = estimate_tokens (chars);
    }
  json_object_set_string_member (obj, "response", a->text->str);
  json_object_set_string_member (obj, "model", a->model ? a->model : "");
  json_object_set_int_member (usage, "input_tokens", input);
  json_object_set_int_member (usage, "output_tokens", output);
  if (estimated)
    json_object_set_boolean_member (usage, "estimated", TRUE);
  json_object_set_object_member (obj, "usage", usage);
  json_object_set_string_member (obj, "finish_reason", finish_reason ? finish_reason : tools ? "tool_calls" : "stop");
  if (tools)
    json_object_set_member (obj, "tool_calls", g_steal_pointer (&tools));
  json_node_take_object (node, obj);
  return node;
}
