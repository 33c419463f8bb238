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
 * The connection pool, retries (429, 529 and other 5xx), timeouts,
 * cancellation, the SSE reader and the reading of answers are the upstream
 * library's (plugins/common/upstream, ens-upstream-anthropic.h for this
 * API). */
#include "ens-json-util.h"
#include "ens-upstream.h"
#include "ens-upstream-messages.h"

#include <string.h>

#define PLUGIN_ID "provider-anthropic"
#define DEFAULT_BASE_URL "https://api.anthropic.com"
#define API_VERSION "2023-06-01"
/* The largest max_tokens each model family takes (the Messages API needs
 * one): a request that sets none is not cut shorter than the model would
 * go.  First match wins; other models get the smallest any Claude takes. */
static const struct {
  const char *prefix;
  gint64 max_tokens;
} model_max_tokens[] = {
  { "claude-opus-4", 32000 },     { "claude-sonnet-4", 64000 },   { "claude-haiku-4", 64000 },
  { "claude-3-7-sonnet", 64000 }, { "claude-3-5-sonnet", 8192 },  { "claude-3-5-haiku", 8192 },
};
#define SMALLEST_MAX_TOKENS 4096

/* max_tokens for a request on @model that set none. */
static gint64
default_max_tokens (EnsUpstreamBackend *be, const char *model)
{
  if (be && be->max_output_tokens > 0)
    return be->max_output_tokens;
  for (guint i = 0; model && i < G_N_ELEMENTS (model_max_tokens); i++)
    if (g_str_has_prefix (model, model_max_tokens[i].prefix))
      return model_max_tokens[i].max_tokens;
  return SMALLEST_MAX_TOKENS;
}

typedef struct {
  JsonNode *request; /* ref, for estimating usage */
  gboolean stream;   /* the requester asked for one */
  EnsUpstreamAnswer *answer;
} AnthropicCall;

static void
anthropic_call_free (gpointer data)
{
  AnthropicCall *ac = data;

  if (ac->request)
    json_node_unref (ac->request);
  ens_upstream_answer_free (ac->answer);
  g_free (ac);
}

static void
anthropic_finish (EnsUpstreamCall *call)
{
  AnthropicCall *ac = ens_upstream_call_get_data (call);
  g_autoptr (JsonNode) result = ens_upstream_answer_result (ac->answer, ac->request,
                                                            ens_upstream_anthropic_finish_reason (ac->answer));

  ens_upstream_call_finish (call, result);
}

static void
anthropic_sse_event (EnsUpstreamCall *call, const char *event, const char *data, gsize len)
{
  AnthropicCall *ac = ens_upstream_call_get_data (call);
  g_autoptr (GError) error = NULL;
  gboolean done = FALSE;

  if (!ens_upstream_anthropic_read_event (ac->answer, event, data, len, &done, &error))
    ens_upstream_call_fail_error (call, error);
  else if (done)
    anthropic_finish (call);
}

static void
anthropic_sse_eof (EnsUpstreamCall *call)
{
  /* Without message_stop the answer may be cut short: the call fails. */
}

static void
anthropic_plain_body (EnsUpstreamCall *call, const char *body, gsize len)
{
  AnthropicCall *ac = ens_upstream_call_get_data (call);
  g_autoptr (GError) error = NULL;

  if (!ens_upstream_anthropic_read_body (ac->answer, body, len, &error))
    {
      ens_upstream_call_fail_error (call, error);
      return;
    }
  if (ac->stream)
    ens_upstream_answer_flush_text (ac->answer);
  anthropic_finish (call);
}

static const EnsUpstreamCallClass anthropic_call_class = {
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
      if (ens_upstream_object (t, "function", NULL, NULL))
        t = ens_upstream_object (t, "function", NULL, NULL);
      tool = json_object_new ();
      json_object_set_string_member (tool, "name", ens_upstream_string (t, "name", NULL, NULL) ? ens_upstream_string (t, "name", NULL, NULL) : "");
      if (ens_upstream_string (t, "description", NULL, NULL))
        json_object_set_string_member (tool, "description", ens_upstream_string (t, "description", NULL, NULL));
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
anthropic_body (EnsUpstreamBackend *be, JsonObject *req, const char *model, gboolean stream, GError **error)
{
  JsonNode *messages = json_object_get_member (req, "messages");
  JsonArray *out;
  JsonObject *body;
  JsonNode *node;
  g_autoptr (GString) system = g_string_new (NULL);
  gint64 max_tokens = -1;
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
      const char *role = ens_upstream_string (m, "role", NULL, NULL);

      if (m && ens_upstream_anthropic_tool_message (out, m))
        continue; /* the tool loop's: tool_use and tool_result blocks */
      if (g_strcmp0 (role, "system") == 0)
        {
          g_autofree char *text = ens_content_text (json_object_get_member (m, "content"), "");

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
  if (!ens_upstream_int (req, "max_tokens", NULL, &max_tokens, NULL) || max_tokens <= 0)
    max_tokens = default_max_tokens (be, model);
  json_object_set_int_member (body, "max_tokens", max_tokens);
  if (system->len)
    json_object_set_string_member (body, "system", system->str);
  json_object_set_array_member (body, "messages", out);
  if (ens_upstream_number (req, "temperature", NULL, &temperature, NULL))
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
  EnsUpstreamProvider *provider = instance;
  EnsUpstreamBackend *be = ens_upstream_provider_find (provider, backend);
  AnthropicCall *ac = g_new0 (AnthropicCall, 1);
  EnsUpstreamCall *call;
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  g_autoptr (JsonNode) body = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  const char *model;

  ac->request = request ? json_node_ref (request) : NULL;
  call = ens_upstream_call_new (provider, be, completion, cancellable, &anthropic_call_class, ac, anthropic_call_free);

  if (!be)
    {
      g_autofree char *text = g_strdup_printf ("provider-anthropic has no backend \"%s\"", backend);
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_NOT_CONFIGURED, text);
      return;
    }
  if (!be->api_key)
    {
      g_autofree char *text = g_strdup_printf ("backend %s has no API key (api-key-file or api-key-env)", be->name);
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_NOT_CONFIGURED, text);
      return;
    }
  if (!req)
    {
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_BAD_REQUEST, "the request is not a JSON object");
      return;
    }
  model = ens_upstream_backend_model (be, ens_upstream_string (req, "model", NULL, NULL));
  if (!model)
    {
      g_autofree char *text = g_strdup_printf ("backend %s has no models and the request names none", be->name);
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_NOT_CONFIGURED, text);
      return;
    }
  ac->stream = ens_upstream_boolean (req, "stream", FALSE);
  body = anthropic_body (be, req, model, ac->stream, &error);
  if (!body)
    {
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_BAD_REQUEST, error->message);
      return;
    }
  ac->answer = ens_upstream_answer_new (be->max_tool_calls, provider->parse, ens_upstream_call_sink (), call);
  ens_upstream_answer_set_model (ac->answer, model);
  bytes = ens_upstream_json_bytes (body);
  ens_upstream_call_send (call, bytes, ac->stream);
}

/* (transfer full) the Claude models the model-aliases setting names
 * (sonnet, opus, haiku by default), for a backend configured without
 * models: what every alias of a Claude model then lands on. */
static char **
alias_models (const EnsHost *host, EnsPlugin *self)
{
  g_autoptr (GVariant) aliases = host->config_get (self, "model-aliases");
  g_autoptr (GStrvBuilder) models = g_strv_builder_new ();
  g_autoptr (GPtrArray) seen = g_ptr_array_new ();
  GVariantIter iter;
  const char *alias, *target;

  if (aliases && g_variant_is_of_type (aliases, G_VARIANT_TYPE ("a{ss}")))
    {
      g_variant_iter_init (&iter, aliases);
      while (g_variant_iter_next (&iter, "{&s&s}", &alias, &target))
        if (g_str_has_prefix (target, "claude") &&
            !g_ptr_array_find_with_equal_func (seen, target, g_str_equal, NULL))
          g_ptr_array_add (seen, (gpointer) target);
    }
  /* sonnet first: the default model of such a backend */
  for (guint pass = 0; pass < 2; pass++)
    for (guint i = 0; i < seen->len; i++)
      if ((strstr (g_ptr_array_index (seen, i), "sonnet") != NULL) == (pass == 0))
        g_strv_builder_add (models, g_ptr_array_index (seen, i));
  return g_strv_builder_end (models);
}

/* The endpoint and the headers, once per backend. */
static void
anthropic_setup (const EnsHost *host, EnsPlugin *self, EnsUpstreamBackend *be)
{
  if (!be->models || !be->models[0])
    {
      g_strfreev (be->models);
      be->models = alias_models (host, self);
    }
  const char *base = *be->base_url ? be->base_url : DEFAULT_BASE_URL;
  /* Accept a base-url configured with or without the /v1. */
  g_autofree char *url = g_strconcat (base, g_str_has_suffix (base, "/v1") ? "/messages" : "/v1/messages", NULL);

  ens_upstream_backend_set_url (be, url);
  ens_upstream_backend_add_header (be, "x-api-key", be->api_key);
  ens_upstream_backend_add_header (be, "anthropic-version", API_VERSION);
}

static const EnsUpstreamApi anthropic_api = {
  .id = PLUGIN_ID,
  .setup = anthropic_setup,
};

static JsonNode *
anthropic_backends (gpointer instance)
{
  return ens_upstream_provider_backends (instance);
}

static gpointer
anthropic_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  if (!ENS_STRUCT_HAS (host, EnsHost, completion_fail))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old for a provider plugin");
      return NULL;
    }
  return ens_upstream_provider_new (host, self, &anthropic_api);
}

static void
anthropic_stop (gpointer instance)
{
  ens_upstream_provider_free (instance);
}

static JsonNode *
anthropic_describe (gpointer instance)
{
  return ens_upstream_provider_describe (instance);
}

static const EnsProviderVTable anthropic_vtable = {
  .struct_size = sizeof (EnsProviderVTable),
  .backends = anthropic_backends,
  .complete = anthropic_complete,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_PROVIDER, PLUGIN_ID, "1.0", "Anthropic Messages API", ENS_PLUGIN_FLAG_NONE,
                   anthropic_init, anthropic_stop, anthropic_describe, &anthropic_vtable)
