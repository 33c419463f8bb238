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
 * A backend with embedding-models also makes embeddings: POST
 * {base-url}/embeddings with {model, input, dimensions?} for a request of
 * kind "embeddings", finished with {embeddings, model, dims, usage}.
 *
 * The connection pool, retries, timeouts, cancellation, the SSE reader and
 * the reading of answers are the upstream library's
 * (plugins/common/upstream, ens-upstream-openai.h for this API). */
#include "ens-upstream.h"
#include "ens-upstream-messages.h"
#include "ens-json-write.h"

#include <string.h>

#define PLUGIN_ID "provider-openai"

/* What one completion keeps, owned by its EnsUpstreamCall. */
typedef struct {
  JsonNode *request; /* ref, for estimating usage */
  gboolean stream;   /* the requester asked for one */
  EnsUpstreamAnswer *answer;
} OpenAICall;

static void
openai_call_free (gpointer data)
{
  OpenAICall *oc = data;

  if (oc->request)
    json_node_unref (oc->request);
  ens_upstream_answer_free (oc->answer);
  g_free (oc);
}

static void
openai_finish (EnsUpstreamCall *call)
{
  OpenAICall *oc = ens_upstream_call_get_data (call);
  g_autoptr (JsonNode) result = ens_upstream_answer_result (oc->answer, oc->request, oc->answer->stop_reason);

  ens_upstream_call_finish (call, result);
}

/* One `data:` of the stream: a chat.completion.chunk, or [DONE]. */
static void
openai_sse_event (EnsUpstreamCall *call, const char *event, const char *data, gsize len)
{
  OpenAICall *oc = ens_upstream_call_get_data (call);
  g_autoptr (GError) error = NULL;
  gboolean done = FALSE;

  if (!ens_upstream_openai_read_chunk (oc->answer, data, len, &done, &error))
    ens_upstream_call_fail_error (call, error);
  else if (done)
    openai_finish (call);
}

/* A stream that ends without [DONE] was cut short, whatever it said
 * before: the call fails (the library says so), never passes for whole. */
static void
openai_sse_eof (EnsUpstreamCall *call)
{
  (void) call;
}

/* A whole chat.completion (also what a server that ignores "stream" sends). */
static void
openai_plain_body (EnsUpstreamCall *call, const char *body, gsize len)
{
  OpenAICall *oc = ens_upstream_call_get_data (call);
  g_autoptr (GError) error = NULL;

  if (!ens_upstream_openai_read_body (oc->answer, body, len, &error))
    {
      ens_upstream_call_fail_error (call, error);
      return;
    }
  /* The requester asked for a stream: it gets the answer as one chunk. */
  if (oc->stream)
    ens_upstream_answer_flush_text (oc->answer);
  openai_finish (call);
}

static const EnsUpstreamCallClass openai_call_class = {
  .sse_event = openai_sse_event,
  .sse_eof = openai_sse_eof,
  .plain_body = openai_plain_body,
};

/* ------------------------------------------------------------ embeddings */

typedef struct {
  guint inputs;
  char *model;
} EmbedCall;

static void
embed_call_free (gpointer data)
{
  EmbedCall *ec = data;

  g_free (ec->model);
  g_free (ec);
}

static void
embed_plain_body (EnsUpstreamCall *call, const char *body, gsize len)
{
  EmbedCall *ec = ens_upstream_call_get_data (call);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) result = ens_upstream_openai_read_embeddings (ens_upstream_call_get_provider (call)->parse, body,
                                                                     len, ec->inputs, ec->model, &error);

  if (result)
    ens_upstream_call_finish (call, result);
  else
    ens_upstream_call_fail_error (call, error);
}

/* An embeddings answer is never a stream: one that comes as one fails. */
static void
embed_sse_event (EnsUpstreamCall *call, const char *event, const char *data, gsize len)
{
  (void) event, (void) data, (void) len;
  ens_upstream_call_fail (call, ENS_COMPLETION_ERR_UPSTREAM, "answered embeddings with an event stream");
}

static void
embed_sse_eof (EnsUpstreamCall *call)
{
  (void) call;
}

static const EnsUpstreamCallClass embed_call_class = {
  .sse_event = embed_sse_event,
  .sse_eof = embed_sse_eof,
  .plain_body = embed_plain_body,
};

static void
openai_embed (EnsUpstreamProvider *provider, EnsUpstreamBackend *be, JsonObject *req, EnsCompletion *completion,
              GCancellable *cancellable)
{
  EmbedCall *ec = g_new0 (EmbedCall, 1);
  EnsUpstreamCall *call = ens_upstream_call_new (provider, be, completion, cancellable, &embed_call_class, ec,
                                                 embed_call_free);
  JsonArray *input = ens_upstream_array (req, "input", NULL, NULL);
  const char *asked = ens_upstream_string (req, "model", NULL, NULL);
  JsonObject *body;
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (GBytes) bytes = NULL;
  gint64 dimensions;

  if (!input || json_array_get_length (input) == 0)
    {
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_BAD_REQUEST, "the request has no input");
      return;
    }
  ec->inputs = json_array_get_length (input);
  ec->model = g_strdup (asked ? ens_upstream_backend_model (be, asked) : NULL);
  if (!ec->model)
    {
      g_autofree char *text = g_strdup_printf ("backend %s has no embedding-models", be->name);
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_NOT_CONFIGURED, text);
      return;
    }
  body = json_object_new ();
  json_node_take_object (node, body);
  json_object_set_string_member (body, "model", ec->model);
  json_object_set_array_member (body, "input", json_array_ref (input));
  if (ens_upstream_int (req, "dimensions", NULL, &dimensions, NULL) && dimensions > 0)
    json_object_set_int_member (body, "dimensions", dimensions);
  bytes = ens_upstream_json_bytes (node);
  ens_upstream_call_send_to (call, be->embeddings_uri, bytes, FALSE);
}

/* ------------------------------------------------------------ completions */

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
      json_object_set_string_member (fn, "name", ens_upstream_string (t, "name", NULL, NULL) ? ens_upstream_string (t, "name", NULL, NULL) : "");
      if (ens_upstream_string (t, "description", NULL, NULL))
        json_object_set_string_member (fn, "description", ens_upstream_string (t, "description", NULL, NULL));
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

/* (transfer full) the request body, {model, messages, max_tokens?,
 * temperature?, tools?, tool_choice?, stream, stream_options?} as compact
 * JSON text, or NULL with @error set. */
static GBytes *
openai_body (JsonObject *req, const char *model, gboolean stream, GError **error)
{
  JsonNode *messages = json_object_get_member (req, "messages");
  JsonArray *in;
  GString *out;
  gint64 max_tokens;
  double temperature;

  if (!messages || !JSON_NODE_HOLDS_ARRAY (messages) || json_array_get_length (json_node_get_array (messages)) == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "the request has no messages");
      return NULL;
    }
  out = g_string_sized_new (512);
  g_string_append (out, "{\"model\":");
  ens_json_write_string (out, model);
  /* Messages go as they are (content arrays are the upstream's business),
   * the tool loop's written in the Chat Completions form. */
  g_string_append (out, ",\"messages\":[");
  in = json_node_get_array (messages);
  for (guint i = 0; i < json_array_get_length (in); i++)
    {
      if (i)
        g_string_append_c (out, ',');
      ens_upstream_openai_write_message (out, json_array_get_element (in, i));
    }
  g_string_append_c (out, ']');
  if (ens_upstream_int (req, "max_tokens", NULL, &max_tokens, NULL) && max_tokens > 0)
    {
      g_string_append (out, ",\"max_tokens\":");
      ens_json_write_int (out, max_tokens);
    }
  if (ens_upstream_number (req, "temperature", NULL, &temperature, NULL))
    {
      g_string_append (out, ",\"temperature\":");
      ens_json_write_double (out, temperature);
    }
  if (json_object_has_member (req, "tools") && JSON_NODE_HOLDS_ARRAY (json_object_get_member (req, "tools")) &&
      json_array_get_length (json_object_get_array_member (req, "tools")) > 0)
    {
      g_autoptr (JsonNode) tools = openai_tools (json_object_get_array_member (req, "tools"));

      g_string_append (out, ",\"tools\":");
      ens_json_write (out, tools);
      if (json_object_has_member (req, "tool_choice"))
        {
          g_string_append (out, ",\"tool_choice\":");
          ens_json_write (out, json_object_get_member (req, "tool_choice"));
        }
    }
  g_string_append (out, stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
                               : ",\"stream\":false}");
  return g_string_free_to_bytes (out);
}

static void
openai_complete (gpointer instance, const char *backend, JsonNode *request, EnsCompletion *completion,
                 GCancellable *cancellable)
{
  EnsUpstreamProvider *provider = instance;
  EnsUpstreamBackend *be = ens_upstream_provider_find (provider, backend);
  OpenAICall *oc = g_new0 (OpenAICall, 1);
  EnsUpstreamCall *call;
  JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  const char *model;

  if (be && g_strcmp0 (ens_upstream_string (req, "kind", NULL, NULL), "embeddings") == 0)
    {
      g_free (oc);
      openai_embed (provider, be, req, completion, cancellable);
      return;
    }
  oc->request = request ? json_node_ref (request) : NULL;
  call = ens_upstream_call_new (provider, be, completion, cancellable, &openai_call_class, oc, openai_call_free);

  if (!be)
    {
      g_autofree char *text = g_strdup_printf ("provider-openai has no backend \"%s\"", backend);
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_NOT_CONFIGURED, text);
      return;
    }
  if (!*be->base_url)
    {
      g_autofree char *text = g_strdup_printf ("backend %s has no base-url", be->name);
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
  oc->stream = ens_upstream_boolean (req, "stream", FALSE);
  bytes = openai_body (req, model, oc->stream, &error);
  if (!bytes)
    {
      ens_upstream_call_fail_later (call, ENS_COMPLETION_ERR_BAD_REQUEST, error->message);
      return;
    }
  oc->answer = ens_upstream_answer_new (be->max_tool_calls, provider->parse, ens_upstream_call_sink (), call);
  ens_upstream_answer_set_model (oc->answer, model);
  if (provider->scanner.members)
    ens_upstream_answer_set_scanner (oc->answer, &provider->scanner);
  ens_upstream_call_send (call, bytes, oc->stream);
}

/* The endpoint and the key, once per backend. */
static void
openai_setup (const EnsHost *host, EnsPlugin *self, EnsUpstreamBackend *be)
{
  if (*be->base_url)
    {
      g_autofree char *url = g_strconcat (be->base_url, "/chat/completions", NULL);
      g_autofree char *embeddings = g_strconcat (be->base_url, "/embeddings", NULL);
      ens_upstream_backend_set_url (be, url);
      ens_upstream_backend_set_embeddings_url (be, embeddings);
    }
  if (be->api_key)
    {
      g_autofree char *auth = g_strconcat ("Bearer ", be->api_key, NULL);
      ens_upstream_backend_add_header (be, "Authorization", auth);
      memset (auth, 0, strlen (auth));
    }
}

static const EnsUpstreamApi openai_api = {
  .id = PLUGIN_ID,
  .setup = openai_setup,
};

static JsonNode *
openai_backends (gpointer instance)
{
  return ens_upstream_provider_backends (instance);
}

static gpointer
openai_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  if (!ENS_STRUCT_HAS (host, EnsHost, completion_fail))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old for a provider plugin");
      return NULL;
    }
  return ens_upstream_provider_new (host, self, &openai_api);
}

static void
openai_stop (gpointer instance)
{
  ens_upstream_provider_free (instance);
}

static JsonNode *
openai_describe (gpointer instance)
{
  return ens_upstream_provider_describe (instance);
}

static const EnsProviderVTable openai_vtable = {
  .struct_size = sizeof (EnsProviderVTable),
  .backends = openai_backends,
  .complete = openai_complete,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_PROVIDER, PLUGIN_ID, "1.0",
                   "OpenAI-compatible Chat Completions (OpenAI, vLLM, llama.cpp server, Ollama)",
                   ENS_PLUGIN_FLAG_NONE, openai_init, openai_stop, openai_describe, &openai_vtable)
