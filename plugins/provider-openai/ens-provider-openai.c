/* ens-provider-openai.c — completions over the OpenAI Chat Completions API.
 *
 * Serves every backend configured with plugin='provider-openai': OpenAI
 * itself and the servers speaking the same API (vLLM, llama.cpp server,
 * Ollama).  POST {base-url}/chat/completions with {model, messages,
 * max_tokens?, temperature?, tools?, stream}; a streamed request asks for
 * server-sent events with usage (stream_options.include_usage), and each
 * delta goes to the requester as it arrives.  Without a key no
 * Authorization header is sent: local servers need none.
 *
 * Retries, timeouts, cancellation and the SSE reader are in
 * ens-http-common.c, shared with provider-anthropic. */
#include "ens-http-common.h"

#include <string.h>

#define PLUGIN_ID "provider-openai"

/* What one completion collects, owned by its EnsHttpCall. */
typedef struct {
  JsonNode *request; /* ref, for estimating usage */
  char *model;       /* sent upstream; replaced by the one the upstream reports */
  GString *text;
  EnsToolCalls *tools;
  char *finish_reason;
  gint64 input_tokens, output_tokens; /* -1: not reported */
} OpenAICall;

static void
openai_call_free (gpointer data)
{
  OpenAICall *oc = data;

  if (oc->request)
    json_node_unref (oc->request);
  g_free (oc->model);
  g_string_free (oc->text, TRUE);
  ens_tool_calls_free (oc->tools);
  g_free (oc->finish_reason);
  g_free (oc);
}

static void
openai_set_model (OpenAICall *oc, JsonObject *obj)
{
  const char *model = ens_json_string (obj, "model");

  if (model && *model && g_strcmp0 (model, oc->model) != 0)
    {
      g_free (oc->model);
      oc->model = g_strdup (model);
    }
}

static void
openai_set_usage (OpenAICall *oc, JsonObject *obj)
{
  JsonObject *usage = ens_json_object (obj, "usage");

  if (!usage)
    return;
  if (json_object_has_member (usage, "prompt_tokens"))
    oc->input_tokens = json_object_get_int_member (usage, "prompt_tokens");
  if (json_object_has_member (usage, "completion_tokens"))
    oc->output_tokens = json_object_get_int_member (usage, "completion_tokens");
}

static void
openai_set_finish_reason (OpenAICall *oc, JsonObject *choice)
{
  const char *reason = ens_json_string (choice, "finish_reason");

  if (reason && *reason)
    {
      g_free (oc->finish_reason);
      oc->finish_reason = g_strdup (reason);
    }
}

/* Adds tool calls of a message or delta; @positional: the array position
 * is the index (a non-streamed message has no "index" members). */
static void
openai_add_tool_calls (EnsHttpCall *call, OpenAICall *oc, JsonObject *holder)
{
  JsonNode *node = json_object_get_member (holder, "tool_calls");
  JsonArray *array;

  if (!node || !JSON_NODE_HOLDS_ARRAY (node))
    return;
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *el = json_array_get_element (array, i);
      JsonObject *tc, *fn;
      gint64 index;

      if (!JSON_NODE_HOLDS_OBJECT (el))
        continue;
      tc = json_node_get_object (el);
      fn = ens_json_object (tc, "function");
      index = json_object_has_member (tc, "index") ? json_object_get_int_member (tc, "index") : (gint64) i;
      if (ens_tool_calls_update (oc->tools, index, ens_json_string (tc, "id"), ens_json_string (fn, "name"),
                                 ens_json_string (fn, "arguments")))
        {
          g_autoptr (JsonNode) event = ens_tool_calls_start_event (oc->tools, index);
          ens_http_call_event (call, "tool_call_start", event);
        }
    }
}

static void
openai_finish (EnsHttpCall *call)
{
  OpenAICall *oc = ens_http_call_get_data (call);
  g_autoptr (JsonNode) tools = ens_tool_calls_count (oc->tools) ? ens_tool_calls_to_json (oc->tools) : NULL;
  g_autoptr (JsonNode) result = NULL;
  const char *reason = oc->finish_reason ? oc->finish_reason : (tools ? "tool_calls" : "stop");

  /* Usage counts only when both halves were reported. */
  if (oc->input_tokens < 0 || oc->output_tokens < 0)
    oc->input_tokens = oc->output_tokens = -1;
  result = ens_http_result_new (oc->request, oc->text->str, oc->model, oc->input_tokens, oc->output_tokens, reason,
                                tools);
  ens_http_call_finish (call, result);
}

/* (transfer none) the root object of @text, or NULL with the call failed. */
static JsonObject *
openai_parse (EnsHttpCall *call, JsonParser *parser, const char *text, gssize len)
{
  g_autoptr (GError) error = NULL;
  JsonNode *root;
  JsonObject *obj;

  if (!json_parser_load_from_data (parser, text, len, &error) || !(root = json_parser_get_root (parser)) ||
      !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_autofree char *msg = g_strdup_printf ("%s sent malformed JSON: %s", ens_http_call_get_backend (call)->name,
                                              error ? error->message : "not an object");
      ens_http_call_fail (call, "UPSTREAM_ERROR", msg);
      return NULL;
    }
  obj = json_node_get_object (root);
  if (json_object_has_member (obj, "error") && !JSON_NODE_HOLDS_NULL (json_object_get_member (obj, "error")))
    {
      g_autofree char *detail = ens_http_error_message_from_body (text, len < 0 ? strlen (text) : (gsize) len);
      g_autofree char *msg = g_strdup_printf ("%s reported an error: %s", ens_http_call_get_backend (call)->name,
                                              detail);
      ens_http_call_fail (call, "UPSTREAM_ERROR", msg);
      return NULL;
    }
  return obj;
}

static JsonObject *
first_choice (JsonObject *obj)
{
  JsonNode *choices = json_object_get_member (obj, "choices");
  JsonNode *first;

  if (!choices || !JSON_NODE_HOLDS_ARRAY (choices) || json_array_get_length (json_node_get_array (choices)) == 0)
    return NULL;
  first = json_array_get_element (json_node_get_array (choices), 0);
  return JSON_NODE_HOLDS_OBJECT (first) ? json_node_get_object (first) : NULL;
}

/* One `data:` of the stream: a chat.completion.chunk, or [DONE]. */
static void
openai_sse_event (EnsHttpCall *call, const char *event, const char *data)
{
  OpenAICall *oc = ens_http_call_get_data (call);
  g_autoptr (JsonParser) parser = NULL;
  JsonObject *obj, *choice, *delta;

  if (strcmp (data, "[DONE]") == 0)
    {
      openai_finish (call);
      return;
    }
  parser = json_parser_new ();
  if (!(obj = openai_parse (call, parser, data, -1)))
    return;
  openai_set_model (oc, obj);
  openai_set_usage (oc, obj); /* the last chunk, with empty choices */
  choice = first_choice (obj);
  if (!choice)
    return;
  delta = ens_json_object (choice, "delta");
  if (delta)
    {
      const char *content = ens_json_string (delta, "content");

      if (content && *content)
        {
          g_string_append (oc->text, content);
          ens_http_call_chunk (call, content);
        }
      openai_add_tool_calls (call, oc, delta);
    }
  openai_set_finish_reason (oc, choice);
}

/* Servers that end the stream without [DONE] (older llama.cpp) still said
 * why they stopped. */
static void
openai_sse_eof (EnsHttpCall *call)
{
  OpenAICall *oc = ens_http_call_get_data (call);

  if (oc->finish_reason)
    openai_finish (call);
}

/* A whole chat.completion (also what a server that ignores "stream" sends). */
static void
openai_plain_body (EnsHttpCall *call, const char *body, gsize len)
{
  OpenAICall *oc = ens_http_call_get_data (call);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj, *choice, *message;
  const char *content;

  if (!(obj = openai_parse (call, parser, body, (gssize) len)))
    return;
  choice = first_choice (obj);
  message = ens_json_object (choice, "message");
  if (!message)
    {
      g_autofree char *msg = g_strdup_printf ("%s answered without choices[0].message",
                                              ens_http_call_get_backend (call)->name);
      ens_http_call_fail (call, "UPSTREAM_ERROR", msg);
      return;
    }
  openai_set_model (oc, obj);
  openai_set_usage (oc, obj);
  openai_set_finish_reason (oc, choice);
  content = ens_json_string (message, "content");
  g_string_assign (oc->text, content ? content : "");
  /* The requester asked for a stream: it gets the answer as one chunk. */
  if (json_object_get_boolean_member_with_default (json_node_get_object (oc->request), "stream", FALSE))
    ens_http_call_chunk (call, oc->text->str);
  openai_add_tool_calls (call, oc, message);
  openai_finish (call);
}

static const EnsHttpCallClass openai_call_class = {
  .sse_event = openai_sse_event,
  .sse_eof = openai_sse_eof,
  .plain_body = openai_plain_body,
};

/* (transfer full) @tools in the Chat Completions form: entries already
 * {type, function} are kept, bare {name, description, parameters |
 * input_schema} ones are wrapped. */
static JsonNode *
openai_tools (JsonArray *tools)
{
  JsonArray *out = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonNode *el = json_array_get_element (tools, i);
      JsonObject *t, *fn, *wrap;
      JsonNode *params;

      if (!JSON_NODE_HOLDS_OBJECT (el))
        continue;
      t = json_node_get_object (el);
      if (json_object_has_member (t, "type"))
        {
          json_array_add_element (out, json_node_copy (el));
          continue;
        }
      fn = json_object_new ();
      json_object_set_string_member (fn, "name", ens_json_string (t, "name") ? ens_json_string (t, "name") : "");
      if (ens_json_string (t, "description"))
        json_object_set_string_member (fn, "description", ens_json_string (t, "description"));
      params = json_object_get_member (t, "parameters");
      if (!params)
        params = json_object_get_member (t, "input_schema");
      if (params)
        json_object_set_member (fn, "parameters", json_node_copy (params));
      wrap = json_object_new ();
      json_object_set_string_member (wrap, "type", "function");
      json_object_set_object_member (wrap, "function", fn);
      json_array_add_object_element (out, wrap);
    }
  json_node_take_array (node, out);
  return node;
}

/* (transfer full) the request body, or NULL with @error set. */
static JsonNode *
openai_body (JsonObject *req, const char *model, gboolean stream, GError **error)
{
  JsonNode *messages = json_object_get_member (req, "messages");
  JsonNode *node;
  JsonObject *body;
  gint64 max_tokens;
  double temperature;

  if (!messages || !JSON_NODE_HOLDS_ARRAY (messages) || json_array_get_length (json_node_get_array (messages)) == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "the request has no messages");
      return NULL;
    }
  body = json_object_new ();
  json_object_set_string_member (body, "model", model);
  /* Messages go as they are: roles beyond system/user/assistant (tool
   * results) and content arrays are the upstream's business. */
  json_object_set_member (body, "messages", json_node_copy (messages));
  if (ens_json_int (req, "max_tokens", &max_tokens) && max_tokens > 0)
    json_object_set_int_member (body, "max_tokens", max_tokens);
  if (ens_json_number (req, "temperature", &temperature))
    json_object_set_double_member (body, "temperature", temperature);
  if (json_object_has_member (req, "tools") && JSON_NODE_HOLDS_ARRAY (json_object_get_member (req, "tools")) &&
      json_array_get_length (json_object_get_array_member (req, "tools")) > 0)
    {
      json_object_set_member (body, "tools", openai_tools (json_object_get_array_member (req, "tools")));
      if (json_object_has_member (req, "tool_choice"))
        json_object_set_member (body, "tool_choice", json_node_copy (json_object_get_member (req, "tool_choice")));
    }
  json_object_set_boolean_member (body, "stream", stream);
  if (stream)
    {
      JsonObject *opts = json_object_new ();
      json_object_set_boolean_member (opts, "include_usage", TRUE);
      json_object_set_object_member (body, "stream_options", opts);
    }
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, body);
  return node;
}

static void
openai_complete (gpointer instance, const char *backend, JsonNode *request, EnsCompletion *completion,
                 GCancellable *cancellable)
{
  EnsHttpProvider *provider = instance;
  EnsHttpBackend *be = ens_http_provider_find (provider, backend);
  OpenAICall *oc = g_new0 (OpenAICall, 1);
  EnsHttpCall *call;
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  g_autoptr (JsonNode) body = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *auth = NULL;
  const char *model;
  gboolean stream;

  oc->request = request ? json_node_ref (request) : NULL;
  oc->text = g_string_new (NULL);
  oc->tools = ens_tool_calls_new ();
  oc->input_tokens = oc->output_tokens = -1;
  call = ens_http_call_new (provider, be, completion, cancellable, &openai_call_class, oc, openai_call_free);

  if (!be)
    {
      g_autofree char *text = g_strdup_printf ("provider-openai has no backend \"%s\"", backend);
      ens_http_call_fail_later (call, "NOT_CONFIGURED", text);
      return;
    }
  if (!*be->base_url)
    {
      g_autofree char *text = g_strdup_printf ("backend %s has no base-url", be->name);
      ens_http_call_fail_later (call, "NOT_CONFIGURED", text);
      return;
    }
  if (!req)
    {
      ens_http_call_fail_later (call, "BAD_REQUEST", "the request is not a JSON object");
      return;
    }
  model = ens_http_backend_upstream_model (be, ens_json_string (req, "model"));
  if (!model)
    {
      g_autofree char *text = g_strdup_printf ("backend %s has no models and the request names none", be->name);
      ens_http_call_fail_later (call, "NOT_CONFIGURED", text);
      return;
    }
  stream = json_object_get_boolean_member_with_default (req, "stream", FALSE);
  body = openai_body (req, model, stream, &error);
  if (!body)
    {
      ens_http_call_fail_later (call, "BAD_REQUEST", error->message);
      return;
    }
  oc->model = g_strdup (model);
  bytes = ens_http_json_bytes (body);
  url = g_strconcat (be->base_url, "/chat/completions", NULL);
  auth = be->api_key ? g_strconcat ("Bearer ", be->api_key, NULL) : NULL;
  {
    const char *headers[] = { "Authorization", auth, NULL };
    ens_http_call_send (call, url, headers, bytes, stream);
  }
  if (auth)
    memset (auth, 0, strlen (auth));
}

static JsonNode *
openai_backends (gpointer instance)
{
  return ens_http_provider_backends (instance);
}

static gpointer
openai_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  if (!ENS_STRUCT_HAS (host, EnsHost, completion_fail))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old for a provider plugin");
      return NULL;
    }
  return ens_http_provider_new (host, self, PLUGIN_ID);
}

static void
openai_stop (gpointer instance)
{
  ens_http_provider_free (instance);
}

static JsonNode *
openai_describe (gpointer instance)
{
  return ens_http_provider_describe (instance);
}

static const EnsProviderVTable openai_vtable = {
  .struct_size = sizeof (EnsProviderVTable),
  .backends = openai_backends,
  .complete = openai_complete,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_PROVIDER, PLUGIN_ID, "1.0",
                   "OpenAI-compatible Chat Completions (OpenAI, vLLM, llama.cpp server, Ollama)",
                   ENS_PLUGIN_FLAG_NONE, openai_init, openai_stop, openai_describe, &openai_vtable)
