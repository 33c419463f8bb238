/* ens-provider-anthropic.c — completions over the Anthropic Messages API.
 *
 * Serves every backend configured with plugin='provider-anthropic':
 * POST {base-url}/v1/messages (base-url default https://api.anthropic.com)
 * with x-api-key and anthropic-version headers and {model, max_tokens,
 * system, messages, temperature?, tools?, stream}.  System messages of the
 * request are joined into "system"; only user and assistant messages go in
 * "messages".  A streamed answer is the Messages event stream
 * (message_start, content_block_*, message_delta, message_stop, ping,
 * error).
 *
 * Stop reasons are reported in the OpenAI vocabulary the other providers
 * use (end_turn -> stop, max_tokens -> length, tool_use -> tool_calls), so
 * requesters see one set.
 *
 * Retries (429, 529 and other 5xx), timeouts, cancellation and the SSE
 * reader are in ../provider-openai/ens-http-common.c. */
#include "ens-http-common.h"

#include <string.h>

#define PLUGIN_ID "provider-anthropic"
#define DEFAULT_BASE_URL "https://api.anthropic.com"
#define API_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 1024

typedef struct {
  JsonNode *request; /* ref, for estimating usage */
  char *model;
  GString *text;
  EnsToolCalls *tools; /* by content block index */
  char *stop_reason;
  gint64 input_tokens, output_tokens; /* -1: not reported */
} AnthropicCall;

static void
anthropic_call_free (gpointer data)
{
  AnthropicCall *ac = data;

  if (ac->request)
    json_node_unref (ac->request);
  g_free (ac->model);
  g_string_free (ac->text, TRUE);
  ens_tool_calls_free (ac->tools);
  g_free (ac->stop_reason);
  g_free (ac);
}

static const char *
finish_reason (const char *stop_reason, gboolean has_tools)
{
  if (!stop_reason)
    return has_tools ? "tool_calls" : "stop";
  if (strcmp (stop_reason, "end_turn") == 0 || strcmp (stop_reason, "stop_sequence") == 0)
    return "stop";
  if (strcmp (stop_reason, "max_tokens") == 0)
    return "length";
  if (strcmp (stop_reason, "tool_use") == 0)
    return "tool_calls";
  return stop_reason;
}

static void
anthropic_set_usage (AnthropicCall *ac, JsonObject *usage)
{
  gint64 n;

  if (ens_json_int (usage, "input_tokens", &n))
    ac->input_tokens = n;
  if (ens_json_int (usage, "output_tokens", &n))
    ac->output_tokens = n;
}

static void
anthropic_set_string (char **field, const char *value)
{
  if (value && *value && g_strcmp0 (*field, value) != 0)
    {
      g_free (*field);
      *field = g_strdup (value);
    }
}

static void
anthropic_finish (EnsHttpCall *call)
{
  AnthropicCall *ac = ens_http_call_get_data (call);
  g_autoptr (JsonNode) tools = ens_tool_calls_count (ac->tools) ? ens_tool_calls_to_json (ac->tools) : NULL;
  g_autoptr (JsonNode) result = NULL;

  if (ac->input_tokens < 0 || ac->output_tokens < 0)
    ac->input_tokens = ac->output_tokens = -1;
  result = ens_http_result_new (ac->request, ac->text->str, ac->model, ac->input_tokens, ac->output_tokens,
                                finish_reason (ac->stop_reason, tools != NULL), tools);
  ens_http_call_finish (call, result);
}

/* A tool_use content block (whole, or the start of a streamed one). */
static void
anthropic_tool_use (EnsHttpCall *call, AnthropicCall *ac, gint64 index, JsonObject *block)
{
  JsonNode *input = json_object_get_member (block, "input");
  g_autofree char *args = NULL;

  /* Streamed blocks start with input {} and send the JSON in pieces. */
  if (input && JSON_NODE_HOLDS_OBJECT (input) && json_object_get_size (json_node_get_object (input)) > 0)
    args = json_to_string (input, FALSE);
  if (ens_tool_calls_update (ac->tools, index, ens_json_string (block, "id"), ens_json_string (block, "name"), args))
    {
      g_autoptr (JsonNode) event = ens_tool_calls_start_event (ac->tools, index);
      ens_http_call_event (call, "tool_call_start", event);
    }
}

/* Fails the call for an error object {type, message}. */
static void
anthropic_fail (EnsHttpCall *call, JsonObject *err)
{
  const char *type = ens_json_string (err, "type");
  const char *message = ens_json_string (err, "message");
  g_autofree char *text = g_strdup_printf ("%s reported %s: %s", ens_http_call_get_backend (call)->name,
                                           type ? type : "an error", message ? message : "(no details)");

  ens_http_call_fail (call, g_strcmp0 (type, "overloaded_error") == 0 || g_strcmp0 (type, "rate_limit_error") == 0
                              ? "RATE_LIMITED"
                              : "UPSTREAM_ERROR",
                      text);
}

static JsonObject *
anthropic_parse (EnsHttpCall *call, JsonParser *parser, const char *text, gssize len)
{
  g_autoptr (GError) error = NULL;
  JsonNode *root;

  if (!json_parser_load_from_data (parser, text, len, &error) || !(root = json_parser_get_root (parser)) ||
      !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_autofree char *msg = g_strdup_printf ("%s sent malformed JSON: %s", ens_http_call_get_backend (call)->name,
                                              error ? error->message : "not an object");
      ens_http_call_fail (call, "UPSTREAM_ERROR", msg);
      return NULL;
    }
  return json_node_get_object (root);
}

static void
anthropic_sse_event (EnsHttpCall *call, const char *event, const char *data)
{
  AnthropicCall *ac = ens_http_call_get_data (call);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj, *block, *delta;
  const char *type;
  gint64 index = 0;

  if (!(obj = anthropic_parse (call, parser, data, -1)))
    return;
  /* The event name is repeated as "type" in the data; either will do. */
  type = event ? event : ens_json_string (obj, "type");
  if (!type)
    return;
  ens_json_int (obj, "index", &index);

  if (strcmp (type, "message_start") == 0)
    {
      JsonObject *message = ens_json_object (obj, "message");

      anthropic_set_string (&ac->model, ens_json_string (message, "model"));
      anthropic_set_usage (ac, ens_json_object (message, "usage"));
    }
  else if (strcmp (type, "content_block_start") == 0 && (block = ens_json_object (obj, "content_block")))
    {
      const char *block_type = ens_json_string (block, "type");

      if (g_strcmp0 (block_type, "tool_use") == 0)
        anthropic_tool_use (call, ac, index, block);
      else if (g_strcmp0 (block_type, "text") == 0 && ens_json_string (block, "text"))
        {
          g_string_append (ac->text, ens_json_string (block, "text"));
          ens_http_call_chunk (call, ens_json_string (block, "text"));
        }
    }
  else if (strcmp (type, "content_block_delta") == 0 && (delta = ens_json_object (obj, "delta")))
    {
      const char *delta_type = ens_json_string (delta, "type");

      if (g_strcmp0 (delta_type, "text_delta") == 0 && ens_json_string (delta, "text"))
        {
          g_string_append (ac->text, ens_json_string (delta, "text"));
          ens_http_call_chunk (call, ens_json_string (delta, "text"));
        }
      else if (g_strcmp0 (delta_type, "input_json_delta") == 0)
        ens_tool_calls_update (ac->tools, index, NULL, NULL, ens_json_string (delta, "partial_json"));
      /* thinking_delta, signature_delta: not part of the answer. */
    }
  else if (strcmp (type, "message_delta") == 0)
    {
      anthropic_set_string (&ac->stop_reason, ens_json_string (ens_json_object (obj, "delta"), "stop_reason"));
      anthropic_set_usage (ac, ens_json_object (obj, "usage"));
    }
  else if (strcmp (type, "message_stop") == 0)
    anthropic_finish (call);
  else if (strcmp (type, "error") == 0)
    anthropic_fail (call, ens_json_object (obj, "error"));
  /* ping, content_block_stop and future event types need nothing. */
}

static void
anthropic_sse_eof (EnsHttpCall *call)
{
  /* Without message_stop the answer may be cut short: the common code
   * fails the call. */
}

static void
anthropic_plain_body (EnsHttpCall *call, const char *body, gsize len)
{
  AnthropicCall *ac = ens_http_call_get_data (call);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj;
  JsonNode *content;

  if (!(obj = anthropic_parse (call, parser, body, (gssize) len)))
    return;
  if (g_strcmp0 (ens_json_string (obj, "type"), "error") == 0)
    {
      anthropic_fail (call, ens_json_object (obj, "error"));
      return;
    }
  content = json_object_get_member (obj, "content");
  if (!content || !JSON_NODE_HOLDS_ARRAY (content))
    {
      g_autofree char *msg = g_strdup_printf ("%s answered without content", ens_http_call_get_backend (call)->name);
      ens_http_call_fail (call, "UPSTREAM_ERROR", msg);
      return;
    }
  anthropic_set_string (&ac->model, ens_json_string (obj, "model"));
  anthropic_set_string (&ac->stop_reason, ens_json_string (obj, "stop_reason"));
  anthropic_set_usage (ac, ens_json_object (obj, "usage"));
  for (guint i = 0; i < json_array_get_length (json_node_get_array (content)); i++)
    {
      JsonNode *el = json_array_get_element (json_node_get_array (content), i);
      JsonObject *block = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      const char *block_type = ens_json_string (block, "type");

      if (g_strcmp0 (block_type, "text") == 0 && ens_json_string (block, "text"))
        g_string_append (ac->text, ens_json_string (block, "text"));
      else if (g_strcmp0 (block_type, "tool_use") == 0)
        anthropic_tool_use (call, ac, i, block);
    }
  if (json_object_get_boolean_member_with_default (json_node_get_object (ac->request), "stream", FALSE))
    ens_http_call_chunk (call, ac->text->str);
  anthropic_finish (call);
}

static const EnsHttpCallClass anthropic_call_class = {
  .sse_event = anthropic_sse_event,
  .sse_eof = anthropic_sse_eof,
  .plain_body = anthropic_plain_body,
};

/* (transfer full) @tools in the Messages form {name, description,
 * input_schema}, from that form itself, OpenAI's {type: "function",
 * function: {name, description, parameters}} or a bare {name, parameters}. */
static JsonNode *
anthropic_tools (JsonArray *tools)
{
  JsonArray *out = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonNode *el = json_array_get_element (tools, i);
      JsonObject *t, *tool;
      JsonNode *schema;

      if (!JSON_NODE_HOLDS_OBJECT (el))
        continue;
      t = json_node_get_object (el);
      if (ens_json_object (t, "function"))
        t = ens_json_object (t, "function");
      tool = json_object_new ();
      json_object_set_string_member (tool, "name", ens_json_string (t, "name") ? ens_json_string (t, "name") : "");
      if (ens_json_string (t, "description"))
        json_object_set_string_member (tool, "description", ens_json_string (t, "description"));
      schema = json_object_get_member (t, "input_schema");
      if (!schema)
        schema = json_object_get_member (t, "parameters");
      if (schema)
        json_object_set_member (tool, "input_schema", json_node_copy (schema));
      else
        {
          JsonObject *empty = json_object_new ();
          json_object_set_string_member (empty, "type", "object");
          json_object_set_object_member (tool, "input_schema", empty);
        }
      json_array_add_object_element (out, tool);
    }
  json_node_take_array (node, out);
  return node;
}

/* (transfer full) the request body, or NULL with @error set. */
static JsonNode *
anthropic_body (JsonObject *req, const char *model, gboolean stream, GError **error)
{
  JsonNode *messages = json_object_get_member (req, "messages");
  JsonArray *out;
  JsonObject *body;
  JsonNode *node;
  g_autoptr (GString) system = g_string_new (NULL);
  gint64 max_tokens = DEFAULT_MAX_TOKENS;
  double temperature;

  if (!messages || !JSON_NODE_HOLDS_ARRAY (messages))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "the request has no messages");
      return NULL;
    }
  out = json_array_new ();
  for (guint i = 0; i < json_array_get_length (json_node_get_array (messages)); i++)
    {
      JsonNode *el = json_array_get_element (json_node_get_array (messages), i);
      JsonObject *m = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      const char *role = ens_json_string (m, "role");

      if (g_strcmp0 (role, "system") == 0)
        {
          g_autofree char *text = ens_http_content_text (json_object_get_member (m, "content"));

          if (*text)
            {
              if (system->len)
                g_string_append (system, "\n\n");
              g_string_append (system, text);
            }
        }
      else if (g_strcmp0 (role, "user") == 0 || g_strcmp0 (role, "assistant") == 0)
        {
          JsonObject *copy = json_object_new ();
          JsonNode *content = json_object_get_member (m, "content");

          json_object_set_string_member (copy, "role", role);
          json_object_set_member (copy, "content", content && !JSON_NODE_HOLDS_NULL (content)
                                                     ? json_node_copy (content)
                                                     : json_node_init_string (json_node_alloc (), ""));
          json_array_add_object_element (out, copy);
        }
    }
  if (json_array_get_length (out) == 0)
    {
      json_array_unref (out);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "the request has no user or assistant messages");
      return NULL;
    }
  body = json_object_new ();
  json_object_set_string_member (body, "model", model);
  if (ens_json_int (req, "max_tokens", &max_tokens) && max_tokens <= 0)
    max_tokens = DEFAULT_MAX_TOKENS;
  json_object_set_int_member (body, "max_tokens", max_tokens);
  if (system->len)
    json_object_set_string_member (body, "system", system->str);
  json_object_set_array_member (body, "messages", out);
  if (ens_json_number (req, "temperature", &temperature))
    json_object_set_double_member (body, "temperature", temperature);
  if (json_object_has_member (req, "tools") && JSON_NODE_HOLDS_ARRAY (json_object_get_member (req, "tools")) &&
      json_array_get_length (json_object_get_array_member (req, "tools")) > 0)
    json_object_set_member (body, "tools", anthropic_tools (json_object_get_array_member (req, "tools")));
  json_object_set_boolean_member (body, "stream", stream);
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, body);
  return node;
}

static void
anthropic_complete (gpointer instance, const char *backend, JsonNode *request, EnsCompletion *completion,
                    GCancellable *cancellable)
{
  EnsHttpProvider *provider = instance;
  EnsHttpBackend *be = ens_http_provider_find (provider, backend);
  AnthropicCall *ac = g_new0 (AnthropicCall, 1);
  EnsHttpCall *call;
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  g_autoptr (JsonNode) body = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  const char *base, *model;
  gboolean stream;

  ac->request = request ? json_node_ref (request) : NULL;
  ac->text = g_string_new (NULL);
  ac->tools = ens_tool_calls_new ();
  ac->input_tokens = ac->output_tokens = -1;
  call = ens_http_call_new (provider, be, completion, cancellable, &anthropic_call_class, ac, anthropic_call_free);

  if (!be)
    {
      g_autofree char *text = g_strdup_printf ("provider-anthropic has no backend \"%s\"", backend);
      ens_http_call_fail_later (call, "NOT_CONFIGURED", text);
      return;
    }
  if (!be->api_key)
    {
      g_autofree char *text = g_strdup_printf ("backend %s has no API key (api-key-file or api-key-env)", be->name);
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
  body = anthropic_body (req, model, stream, &error);
  if (!body)
    {
      ens_http_call_fail_later (call, "BAD_REQUEST", error->message);
      return;
    }
  ac->model = g_strdup (model);
  bytes = ens_http_json_bytes (body);
  base = *be->base_url ? be->base_url : DEFAULT_BASE_URL;
  /* Accept a base-url configured with or without the /v1. */
  url = g_strconcat (base, g_str_has_suffix (base, "/v1") ? "/messages" : "/v1/messages", NULL);
  {
    const char *headers[] = { "x-api-key", be->api_key, "anthropic-version", API_VERSION, NULL };
    ens_http_call_send (call, url, headers, bytes, stream);
  }
}

static JsonNode *
anthropic_backends (gpointer instance)
{
  return ens_http_provider_backends (instance);
}

static gpointer
anthropic_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  if (!ENS_STRUCT_HAS (host, EnsHost, completion_fail))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old for a provider plugin");
      return NULL;
    }
  return ens_http_provider_new (host, self, PLUGIN_ID);
}

static void
anthropic_stop (gpointer instance)
{
  ens_http_provider_free (instance);
}

static JsonNode *
anthropic_describe (gpointer instance)
{
  return ens_http_provider_describe (instance);
}

static const EnsProviderVTable anthropic_vtable = {
  .struct_size = sizeof (EnsProviderVTable),
  .backends = anthropic_backends,
  .complete = anthropic_complete,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_PROVIDER, PLUGIN_ID, "1.0", "Anthropic Messages API", ENS_PLUGIN_FLAG_NONE,
                   anthropic_init, anthropic_stop, anthropic_describe, &anthropic_vtable)
