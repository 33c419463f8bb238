/* ens-http-routes-openai.c — the OpenAI-compatible API: POST
 * /v1/chat/completions (plain, and stream:true as `data:` lines ending
 * `data: [DONE]`) and GET /v1/models, so the official clients work against
 * the daemon unchanged.  Requests become the core's `complete` verb; the
 * router picks the backend ("auto" or no model: the policy decides; a model
 * name: the backend that serves it).  Errors use OpenAI's body
 * {error:{message, type, param, code}} and its status codes; a stream that
 * fails after it started ends with such an error event and no [DONE]. */
#include "ens-http.h"
#include "ens-http-openai-result.h"
#include "ens-json-util.h"

#include <string.h>

/* ------------------------------------------------------------------ errors */

static JsonNode *
error_node (const char *type, const char *message, const char *param, const char *code)
{
  JsonObject *root = json_object_new ();
  JsonObject *err = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (err, "message", message ? message : "");
  json_object_set_string_member (err, "type", type);
  if (param)
    json_object_set_string_member (err, "param", param);
  else
    json_object_set_null_member (err, "param");
  if (code)
    json_object_set_string_member (err, "code", code);
  else
    json_object_set_null_member (err, "code");
  json_object_set_object_member (root, "error", err);
  json_node_take_object (node, root);
  return node;
}

static void
reply_oa_error (EnsHttpCall *call, guint status, const char *type, const char *message, const char *param,
                const char *code)
{
  g_autoptr (JsonNode) node = error_node (type, message, param, code);
  ens_http_reply_json (call, status, node);
}

/* For the transport's own answers on /v1/... (401 before any handler runs,
 * unknown routes), so OpenAI clients read them too (declared in ens-http.h). */

void
ens_http_openai_reply_error (EnsHttpCall *call, guint status, const char *type, const char *message, const char *code)
{
  reply_oa_error (call, status, type, message, NULL, code);
}

static void
reply_invalid (EnsHttpCall *call, const char *param, const char *message)
{
  reply_oa_error (call, 400, "invalid_request_error", message, param, NULL);
}

/* How a core error code (an ERROR answer's code, or a failed completion's
 * reason) looks to an OpenAI client.  Upstream trouble is 502: the client
 * was right, a provider behind us was not. */
typedef struct {
  const char *core;
  guint status;
  const char *type;
  const char *code;
} ErrorMap;

static const ErrorMap error_map[] = {
  { ENS_ERR_INVALID_PARAMETERS, 400, "invalid_request_error", NULL },
  { "VALIDATION_ERROR", 400, "invalid_request_error", NULL },
  { ENS_ERR_INVALID_REQUEST, 400, "invalid_request_error", NULL },
  { ENS_ERR_INVALID_JSON, 400, "invalid_request_error", NULL },
  { "BAD_REQUEST", 400, "invalid_request_error", NULL },
  { "UNKNOWN_MODEL", 404, "invalid_request_error", "model_not_found" },
  { "UNSUPPORTED_MODEL", 422, "invalid_request_error", "model_not_supported" },
  { ENS_ERR_PERMISSION_DENIED, 403, "permission_error", NULL },
  { "BUDGET_EXCEEDED", 429, "insufficient_quota", "insufficient_quota" },
  { "RATE_LIMITED", 429, "rate_limit_error", "rate_limit_exceeded" },
  { "NO_PROVIDER", 503, "server_error", "no_provider" },
  { "NO_ROUTER", 503, "server_error", "no_router" },
  { "NOT_CONFIGURED", 503, "server_error", "provider_not_configured" },
  { "PROVIDER_STOPPED", 503, "server_error", "provider_stopped" },
  { ENS_ERR_OVERLOADED, 503, "server_error", "overloaded" },
  { ENS_ERR_NOT_AVAILABLE, 503, "server_error", "not_available" },
  { "SHUTTING_DOWN", 503, "server_error", "shutting_down" },
  { "UPSTREAM_ERROR", 502, "server_error", "upstream_error" },
  { "AUTH_FAILED", 502, "server_error", "upstream_auth_failed" },
  { ENS_ERR_TIMEOUT, 504, "server_error", "timeout" },
};

static const ErrorMap *
map_error (const char *core_code)
{
  static const ErrorMap fallback = { NULL, 500, "server_error", NULL };

  for (guint i = 0; core_code && i < G_N_ELEMENTS (error_map); i++)
    if (strcmp (error_map[i].core, core_code) == 0)
      return &error_map[i];
  return &fallback;
}

/* Our request field names are OpenAI's, but for the token limit the client
 * may have said max_completion_tokens. */
typedef struct {
  char *request_id;
  char *id;            /* "chatcmpl-<request_id>" */
  char *model;         /* for stream chunks: the model that runs (the core says which) */
  char *provider;      /* from the ack, for system_fingerprint */
  const char *max_tokens_field;
  gint64 created;
  gboolean stream, include_usage, started, streamed_text;
} ChatCall;

static void
chat_free (ChatCall *cc)
{
  g_free (cc->request_id);
  g_free (cc->id);
  g_free (cc->model);
  g_free (cc->provider);
  g_free (cc);
}

static const char *
param_for (ChatCall *cc, const char *field)
{
  if (g_strcmp0 (field, "max_tokens") == 0)
    return cc->max_tokens_field;
  if (g_strcmp0 (field, "prompt") == 0 || g_strcmp0 (field, "data") == 0)
    return "messages";
  return field;
}

/* The core refused the request (ERROR answer to `complete`). */
static void
reply_core_error (EnsHttpCall *call, ChatCall *cc, EnsMessage *answer)
{
  const ErrorMap *m = map_error (answer->error_code);
  JsonObject *det = answer->error_details && JSON_NODE_HOLDS_OBJECT (answer->error_details)
                      ? json_node_get_object (answer->error_details) : NULL;
  const char *field = ens_member_string (det, "field");

  reply_oa_error (call, m->status, m->type, answer->error_message, cc ? param_for (cc, field) : field,
                  m->code ? m->code : NULL);
}

/* ------------------------------------------------------------------ shared */

void
ens_http_openai_reply_invalid (EnsHttpCall *call, const char *param, const char *message)
{
  reply_invalid (call, param, message);
}

/* Well formed, but not something the daemon can do. */
void
ens_http_openai_reply_unprocessable (EnsHttpCall *call, const char *param, const char *message)
{
  reply_oa_error (call, 422, "invalid_request_error", message, param, "unsupported_value");
}

void
ens_http_openai_reply_refusal (EnsHttpCall *call, EnsMessage *answer, const char *param_rename)
{
  const ErrorMap *m = map_error (answer->error_code);
  JsonObject *det = answer->error_details && JSON_NODE_HOLDS_OBJECT (answer->error_details)
                      ? json_node_get_object (answer->error_details) : NULL;
  const char *field = ens_member_string (det, "field");

  if (param_rename && g_strcmp0 (field, "max_tokens") == 0)
    field = param_rename;
  else if (g_strcmp0 (field, "prompt") == 0 || g_strcmp0 (field, "data") == 0)
    field = "messages";
  reply_oa_error (call, m->status, m->type, answer->error_message, field, m->code);
}

void
ens_http_openai_reply_failure (EnsHttpCall *call, JsonObject *d)
{
  const char *reason = ens_member_string_or (d, "reason", "COMPLETION_FAILED");
  const char *message = ens_member_string_or (d, "error", "the completion failed");
  const ErrorMap *m = map_error (reason);
  guint status = m->core ? m->status : 502; /* an unknown failure is the provider's */
  const char *code = m->code ? m->code : (m->core ? NULL : "upstream_error");

  reply_oa_error (call, status, m->type, message, NULL, code);
}

/* ------------------------------------------------------------------ helpers */


static gboolean
is_type (JsonNode *n, GType type)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == type;
}

static gboolean
is_number (JsonNode *n)
{
  return is_type (n, G_TYPE_INT64) || is_type (n, G_TYPE_DOUBLE);
}

/* The body, parsed here rather than with ens_http_body so that malformed
 * JSON gets OpenAI's error body.  NULL after answering. */
JsonObject *
ens_http_openai_body (EnsHttpCall *call, JsonNode **out)
{
  gsize len;
  const char *body = ens_http_request_body (call, &len);
  g_autoptr (GError) error = NULL;
  JsonNode *node;

  if (len == 0)
    {
      reply_invalid (call, NULL, "the request body must be a JSON object");
      return NULL;
    }
  node = ens_http_host (call)->json_parse (body, len, &error);
  if (node == NULL)
    {
      g_autofree char *text = g_strdup_printf ("We could not parse the JSON body of your request: %s",
                                               error ? error->message : "malformed JSON");
      reply_invalid (call, NULL, text);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      json_node_unref (node);
      reply_invalid (call, NULL, "the request body must be a JSON object");
      return NULL;
    }
  *out = node;
  return json_node_get_object (node);
}

/* OpenAI message content: a string, null (an assistant turn that only
 * calls tools), or a list of parts of which only text ones are supported.
 * (transfer full) the text, or NULL with @why set. */
static char *
content_text (JsonNode *content, const char **why)
{
  GString *out;
  JsonArray *parts;

  if (content == NULL || JSON_NODE_HOLDS_NULL (content))
    return g_strdup ("");
  if (is_type (content, G_TYPE_STRING))
    return g_strdup (json_node_get_string (content));
  if (!JSON_NODE_HOLDS_ARRAY (content))
    {
      *why = "content must be a string or a list of content parts";
      return NULL;
    }
  parts = json_node_get_array (content);
  out = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonNode *el = json_array_get_element (parts, i);
      JsonObject *part = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      const char *type = ens_member_string (part, "type");
      JsonNode *text = part ? json_object_get_member (part, "text") : NULL;

      if (g_strcmp0 (type, "text") != 0 || !is_type (text, G_TYPE_STRING))
        {
          *why = "only content parts of type \"text\" (with a string \"text\") are supported";
          g_string_free (out, TRUE);
          return NULL;
        }
      if (out->len)
        g_string_append_c (out, '\n');
      g_string_append (out, json_node_get_string (text));
    }
  return g_string_free (out, FALSE);
}

/* (transfer full) the messages as the core takes them, or NULL after
 * answering 400. */
static JsonNode *
read_messages (EnsHttpCall *call, JsonObject *body)
{
  JsonNode *messages = json_object_get_member (body, "messages");
  JsonArray *in, *out;
  JsonNode *node;

  if (messages == NULL)
    {
      reply_invalid (call, "messages", "Missing required parameter: 'messages'.");
      return NULL;
    }
  in = JSON_NODE_HOLDS_ARRAY (messages) ? json_node_get_array (messages) : NULL;
  if (in == NULL || json_array_get_length (in) == 0)
    {
      reply_invalid (call, "messages", "'messages' must be a non-empty array of {role, content}.");
      return NULL;
    }
  out = json_array_new ();
  node = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (node, out);
  for (guint i = 0; i < json_array_get_length (in); i++)
    {
      JsonNode *el = json_array_get_element (in, i);
      JsonObject *m = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      JsonNode *role_node = m ? json_object_get_member (m, "role") : NULL;
      const char *role = is_type (role_node, G_TYPE_STRING) ? json_node_get_string (role_node) : NULL;
      const char *why = NULL;
      g_autofree char *text = NULL;
      g_autofree char *message = NULL;
      JsonObject *copy;
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;

      if (role && strcmp (role, "developer") == 0)
        role = "system"; /* the newer name for the same thing */
      else if (role && strcmp (role, "function") == 0)
        role = "tool";
      if (role == NULL || (strcmp (role, "system") && strcmp (role, "user") && strcmp (role, "assistant") &&
                           strcmp (role, "tool")))
        why = "role must be one of system, developer, user, assistant, tool";
      else
        text = content_text (json_object_get_member (m, "content"), &why);
      if (why)
        {
          message = g_strdup_printf ("Invalid value for 'messages[%u]': %s.", i, why);
          reply_invalid (call, "messages", message);
          json_node_unref (node);
          return NULL;
        }
      /* Other members (tool_calls, tool_call_id, name) go along: providers
       * that speak OpenAI pass them upstream. */
      copy = json_object_new ();
      json_object_iter_init (&iter, m);
      while (json_object_iter_next (&iter, &name, &member))
        if (strcmp (name, "role") && strcmp (name, "content"))
          json_object_set_member (copy, name, json_node_copy (member));
      json_object_set_string_member (copy, "role", role);
      /* content: null (an assistant turn calling tools) stays null upstream. */
      if (strcmp (role, "assistant") == 0 && json_object_get_member (m, "content") &&
          JSON_NODE_HOLDS_NULL (json_object_get_member (m, "content")))
        json_object_set_null_member (copy, "content");
      else
        json_object_set_string_member (copy, "content", text);
      json_array_add_object_element (out, copy);
    }
  return node;
}

/* OpenAI's finish reasons from what providers report. */
static JsonObject *
usage_object (JsonObject *result)
{
  JsonObject *u = ens_member_object (result, "usage");
  JsonObject *out = json_object_new ();
  gint64 in = ens_http_chat_token_count (ens_member_int (u, "input_tokens", 0));
  gint64 o = ens_http_chat_token_count (ens_member_int (u, "output_tokens", 0));

  json_object_set_int_member (out, "prompt_tokens", in);
  json_object_set_int_member (out, "completion_tokens", o);
  json_object_set_int_member (out, "total_tokens", in + o);
  return out;
}

static char *
fingerprint (const char *provider)
{
  return g_strconcat ("ensemble-", provider ? provider : "unknown", NULL);
}

/* ------------------------------------------------------------------ plain */

/* The chat.completion, written straight to text (its tree, built,
 * serialised and freed, cost three times as much); only tool calls, when
 * there are any, go through the serialiser.  @tools (transfer none) may be
 * NULL. */
static void
reply_completion (EnsHttpCall *call, ChatCall *cc, const EnsHttpChatResult *r, JsonArray *tools)
{
  const char *provider = r->provider ? r->provider : cc->provider;
  const char *model = r->model ? r->model : cc->model;
  g_autofree char *fp = fingerprint (provider);
  g_autoptr (GString) out = g_string_sized_new (512);

  g_string_append (out, "{\"id\":");
  ens_json_write_string (out, cc->id);
  g_string_append_printf (out, ",\"object\":\"chat.completion\",\"created\":%" G_GINT64_FORMAT ",\"model\":",
                          cc->created);
  if (model)
    ens_json_write_string (out, model);
  else
    g_string_append (out, "null");
  g_string_append (out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
  if (tools && r->response[0] == '\0')
    g_string_append (out, "null"); /* as OpenAI answers a pure tool call */
  else
    ens_json_write_string (out, r->response);
  if (tools)
    {
      g_autoptr (JsonNode) node = json_node_new (JSON_NODE_ARRAY);
      g_autofree char *text = NULL;

      json_node_set_array (node, tools);
      text = ens_http_host (call)->json_to_string (node);
      g_string_append (out, ",\"tool_calls\":");
      g_string_append (out, text);
    }
  g_string_append (out, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
  ens_json_write_string (out, ens_http_chat_finish_reason (r->finish_reason, tools != NULL));
  g_string_append_printf (out,
                          "}],\"usage\":{\"prompt_tokens\":%" G_GINT64_FORMAT ",\"completion_tokens\":%" G_GINT64_FORMAT
                          ",\"total_tokens\":%" G_GINT64_FORMAT "},\"system_fingerprint\":",
                          r->input_tokens, r->output_tokens, r->input_tokens + r->output_tokens);
  ens_json_write_string (out, fp);
  g_string_append_c (out, '}');
  ens_http_reply_text (call, 200, "application/json", out->str);
}

/* ------------------------------------------------------------------ stream */

static void
send_json (EnsHttpCall *call, JsonObject *obj)
{
  g_autoptr (JsonNode) node = ens_node_ref_object (obj);
  g_autofree char *text = ens_http_host (call)->json_to_string (node);

  ens_http_sse_send (call, NULL, text); /* OpenAI's stream has no event: lines */
  json_object_unref (obj);
}

/* A chat.completion.chunk with one choice holding @delta (taken). */
static void
send_chunk (EnsHttpCall *call, ChatCall *cc, const char *model, const char *provider, JsonObject *delta,
            const char *finish)
{
  JsonObject *out = json_object_new ();
  JsonArray *choices = json_array_new ();
  JsonObject *choice = json_object_new ();
  g_autofree char *fp = fingerprint (provider);

  json_object_set_string_member (out, "id", cc->id);
  json_object_set_string_member (out, "object", "chat.completion.chunk");
  json_object_set_int_member (out, "created", cc->created);
  json_object_set_string_member (out, "model", model);
  json_object_set_string_member (out, "system_fingerprint", fp);
  json_object_set_int_member (choice, "index", 0);
  json_object_set_object_member (choice, "delta", delta);
  json_object_set_null_member (choice, "logprobs");
  if (finish)
    json_object_set_string_member (choice, "finish_reason", finish);
  else
    json_object_set_null_member (choice, "finish_reason");
  json_array_add_object_element (choices, choice);
  json_object_set_array_member (out, "choices", choices);
  if (cc->include_usage)
    json_object_set_null_member (out, "usage"); /* only the last chunk counts */
  send_json (call, out);
}

/* A chat.completion.chunk whose delta is @text alone, the shape of nearly
 * every chunk of a stream: written straight to text, as send_chunk() would
 * serialise it (building and freeing that tree cost three times as much as
 * the text). */
static void
send_text_chunk (EnsHttpCall *call, ChatCall *cc, const char *text)
{
  g_autoptr (GString) out = g_string_sized_new (256);
  g_autofree char *fp = fingerprint (cc->provider);

  g_string_append (out, "{\"id\":");
  ens_json_write_string (out, cc->id);
  g_string_append_printf (out, ",\"object\":\"chat.completion.chunk\",\"created\":%" G_GINT64_FORMAT ",\"model\":",
                          cc->created);
  if (cc->model)
    ens_json_write_string (out, cc->model);
  else
    g_string_append (out, "null");
  g_string_append (out, ",\"system_fingerprint\":");
  ens_json_write_string (out, fp);
  g_string_append (out, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
  ens_json_write_string (out, text);
  g_string_append (out, "},\"logprobs\":null,\"finish_reason\":null}]");
  if (cc->include_usage)
    g_string_append (out, ",\"usage\":null");
  g_string_append_c (out, '}');
  ens_http_sse_send (call, NULL, out->str);
}

/* The stream starts with the first chunk or the result, so a completion
 * that fails before any text still gets a proper HTTP error status. */
static void
stream_start (EnsHttpCall *call, ChatCall *cc)
{
  JsonObject *delta;

  if (cc->started)
    return;
  cc->started = TRUE;
  ens_http_sse_begin (call);
  delta = json_object_new ();
  json_object_set_string_member (delta, "role", "assistant");
  json_object_set_string_member (delta, "content", "");
  send_chunk (call, cc, cc->model, cc->provider, delta, NULL);
}

static void
stream_result (EnsHttpCall *call, ChatCall *cc, JsonObject *result)
{
  JsonArray *tools = ens_http_chat_tool_calls (ens_http_host (call), result, TRUE);
  const char *model;
  const char *provider = ens_member_string_or (result, "provider", cc->provider);
  const char *response = ens_member_string_or (result, "response", "");

  /* Every chunk names one model: the one the first chunk named, else the
   * one that answered. */
  if (!cc->started && ens_member_string (result, "model"))
    {
      g_free (cc->model);
      cc->model = g_strdup (ens_member_string (result, "model"));
    }
  model = cc->model;

  stream_start (call, cc);
  /* A provider that did not stream: its whole answer as one chunk. */
  if (!cc->streamed_text && response && response[0])
    {
      JsonObject *delta = json_object_new ();
      json_object_set_string_member (delta, "content", response);
      send_chunk (call, cc, model, provider, delta, NULL);
    }
  if (tools)
    {
      JsonObject *delta = json_object_new ();
      json_object_set_array_member (delta, "tool_calls", tools);
      send_chunk (call, cc, model, provider, delta, NULL);
    }
  send_chunk (call, cc, model, provider, json_object_new (), ens_http_chat_finish_reason (ens_member_string (result, "finish_reason"), tools != NULL));
  if (cc->include_usage)
    {
      JsonObject *out = json_object_new ();
      g_autofree char *fp = fingerprint (provider);
      json_object_set_string_member (out, "id", cc->id);
      json_object_set_string_member (out, "object", "chat.completion.chunk");
      json_object_set_int_member (out, "created", cc->created);
      json_object_set_string_member (out, "model", model);
      json_object_set_string_member (out, "system_fingerprint", fp);
      json_object_set_array_member (out, "choices", json_array_new ());
      json_object_set_object_member (out, "usage", usage_object (result));
      send_json (call, out);
    }
  ens_http_sse_send (call, NULL, "[DONE]");
  ens_http_sse_end (call);
}

/* ------------------------------------------------------------------ the completion */

static void
chat_done (EnsHttpCall *call, ChatCall *cc)
{
  /* Nothing more may reach @cc: it is freed here. */
  ens_http_on_event (call, NULL, NULL);
  ens_http_on_disconnect (call, NULL, NULL);
  chat_free (cc);
}

static void
chat_failed (EnsHttpCall *call, ChatCall *cc, JsonObject *d)
{
  const char *reason = ens_member_string_or (d, "reason", "COMPLETION_FAILED");
  const char *message = ens_member_string_or (d, "error", "the completion failed");
  const ErrorMap *m = map_error (reason);
  guint status = m->core ? m->status : 502; /* an unknown failure is the provider's */
  const char *code = m->code ? m->code : (m->core ? NULL : "upstream_error");

  if (!cc->started)
    {
      reply_oa_error (call, status, m->type, message, NULL, code);
      return;
    }
  /* Headers went out with 200: the error is the stream's last word. */
  {
    g_autoptr (JsonNode) node = error_node (m->type, message, NULL, code);
    g_autofree char *text = ens_http_host (call)->json_to_string (node);
    /* No [DONE]: a client must not take a broken answer for a whole one. */
    ens_http_sse_send (call, NULL, text);
    ens_http_sse_end (call);
  }
}

static void
chat_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  ChatCall *cc = data;
  const EnsHost *host = ens_http_host (call);
  JsonObject *d;

  if (event->data == NULL && cc->request_id) /* text: ens_http_read_text() */
    {
      EnsHttpChatResult r;
      gsize len;
      const char *text;

      if (g_strcmp0 (event->topic, "COMPLETION_RESULT") != 0)
        return; /* chunks and tool events: not for a plain answer */
      text = host->message_data_text (event, &len);
      if (ens_http_chat_result_from_text (host, text, len, cc->request_id, &r))
        {
          reply_completion (call, cc, &r, NULL);
          ens_http_chat_result_clear (&r);
          chat_done (call, cc);
          return;
        }
      host->message_data (event); /* anything else: from the tree */
    }
  d = event->data && JSON_NODE_HOLDS_OBJECT (event->data) ? json_node_get_object (event->data) : NULL;

  if (d == NULL || cc->request_id == NULL ||
      g_strcmp0 (ens_member_string_or (d, "request_id", ""), cc->request_id) != 0)
    return;
  if (g_strcmp0 (event->topic, "COMPLETION_CHUNK") == 0)
    {
      const char *chunk = ens_member_string (d, "chunk");

      if (!cc->stream || chunk == NULL || chunk[0] == '\0')
        return;
      if (!cc->started && ens_member_string (d, "model"))
        {
          g_free (cc->model);
          cc->model = g_strdup (ens_member_string (d, "model")); /* after a fallback, another backend's */
        }
      stream_start (call, cc);
      cc->streamed_text = TRUE;
      send_text_chunk (call, cc, chunk);
      return;
    }
  if (g_strcmp0 (event->topic, "COMPLETION_RESULT") != 0)
    return; /* COMPLETION_EVENT (tool_call_start): the result carries the calls */
  if (json_object_has_member (d, "result") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (d, "result")))
    {
      JsonObject *result = ens_member_object (d, "result");
      if (cc->stream)
        stream_result (call, cc, result);
      else
        {
          g_autoptr (JsonArray) tools = ens_http_chat_tool_calls (ens_http_host (call), result, FALSE);
          EnsHttpChatResult r;

          ens_http_chat_result_from_tree (result, &r);
          reply_completion (call, cc, &r, tools);
          ens_http_chat_result_clear (&r);
        }
    }
  else
    chat_failed (call, cc, d);
  chat_done (call, cc);
}

static void
chat_acked (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  ChatCall *cc = data;
  JsonObject *ack;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      reply_core_error (call, cc, answer);
      chat_done (call, cc);
      return;
    }
  g_free (cc->model);
  cc->model = NULL;
  if (answer->data == NULL) /* text: ens_http_read_text() */
    {
      gsize len;
      const char *text = ens_http_host (call)->message_data_text (answer, &len);
      ens_http_chat_ack_from_text (ens_http_host (call), text, len, &cc->request_id, &cc->provider, &cc->model);
    }
  else
    {
      ack = json_node_get_object (answer->data);
      cc->request_id = g_strdup (ens_member_string (ack, "request_id"));
      cc->provider = g_strdup (ens_member_string (ack, "provider"));
      cc->model = g_strdup (ens_member_string (ack, "model"));
    }
  cc->id = g_strconcat ("chatcmpl-", cc->request_id, NULL);
  if (cc->model == NULL)
    cc->model = g_strdup (cc->provider ? cc->provider : "auto");
}

static void
chat_gone (EnsHttpCall *call, gpointer data)
{
  (void) call;
  chat_free (data); /* the client closes with the call: the core cancels */
}

/* POST /v1/chat/completions */
static void
route_chat_completions (EnsHttpCall *call)
{
  g_autoptr (JsonNode) body_node = NULL;
  JsonObject *body = ens_http_openai_body (call, &body_node);
  JsonObject *data;
  g_autoptr (JsonNode) data_node = NULL;
  g_autoptr (JsonNode) messages = NULL;
  JsonNode *model, *stream, *opts, *n, *temperature, *tools, *max_tokens;
  const char *max_field = "max_tokens";
  gboolean streaming = FALSE, include_usage = FALSE;
  ChatCall *cc;

  if (body == NULL)
    return;
  model = json_object_get_member (body, "model");
  if (model && !JSON_NODE_HOLDS_NULL (model) && !is_type (model, G_TYPE_STRING))
    {
      reply_invalid (call, "model", "'model' must be a string.");
      return;
    }
  stream = json_object_get_member (body, "stream");
  if (stream && !JSON_NODE_HOLDS_NULL (stream))
    {
      if (!is_type (stream, G_TYPE_BOOLEAN))
        {
          reply_invalid (call, "stream", "'stream' must be a boolean.");
          return;
        }
      streaming = json_node_get_boolean (stream);
    }
  opts = json_object_get_member (body, "stream_options");
  if (opts && !JSON_NODE_HOLDS_NULL (opts))
    {
      JsonNode *iu = JSON_NODE_HOLDS_OBJECT (opts) ? json_object_get_member (json_node_get_object (opts), "include_usage") : NULL;
      if (!JSON_NODE_HOLDS_OBJECT (opts) || (iu && !JSON_NODE_HOLDS_NULL (iu) && !is_type (iu, G_TYPE_BOOLEAN)))
        {
          reply_invalid (call, "stream_options", "'stream_options' must be an object {include_usage: boolean}.");
          return;
        }
      if (!streaming)
        {
          reply_invalid (call, "stream_options",
                         "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
          return;
        }
      include_usage = iu && is_type (iu, G_TYPE_BOOLEAN) && json_node_get_boolean (iu);
    }
  n = json_object_get_member (body, "n");
  if (n && !JSON_NODE_HOLDS_NULL (n) && !(is_number (n) && json_node_get_double (n) == 1))
    {
      reply_invalid (call, "n", "Only n=1 is supported: one choice per request.");
      return;
    }
  temperature = json_object_get_member (body, "temperature");
  if (temperature && !JSON_NODE_HOLDS_NULL (temperature) &&
      !(is_number (temperature) && json_node_get_double (temperature) >= 0 && json_node_get_double (temperature) <= 2))
    {
      reply_invalid (call, "temperature", "'temperature' must be a number from 0 to 2.");
      return;
    }
  max_tokens = json_object_get_member (body, "max_completion_tokens");
  if (max_tokens && !JSON_NODE_HOLDS_NULL (max_tokens))
    max_field = "max_completion_tokens";
  else
    max_tokens = json_object_get_member (body, "max_tokens");
  if (max_tokens && !JSON_NODE_HOLDS_NULL (max_tokens) &&
      !(is_type (max_tokens, G_TYPE_INT64) && json_node_get_int (max_tokens) >= 1))
    {
      g_autofree char *text = g_strdup_printf ("'%s' must be a positive integer.", max_field);
      reply_invalid (call, max_field, text);
      return;
    }
  tools = json_object_get_member (body, "tools");
  if (tools && !JSON_NODE_HOLDS_NULL (tools) && !JSON_NODE_HOLDS_ARRAY (tools))
    {
      reply_invalid (call, "tools", "'tools' must be an array of {type: \"function\", function: {...}}.");
      return;
    }
  messages = read_messages (call, body);
  if (messages == NULL)
    return;

  /* The core's complete verb: the router picks the backend from the model. */
  data = json_object_new ();
  data_node = ens_node_ref_object (data);
  json_object_unref (data);
  json_object_set_member (data, "messages", json_node_ref (messages));
  if (is_type (model, G_TYPE_STRING) && json_node_get_string (model)[0] &&
      strcmp (json_node_get_string (model), "auto") != 0)
    json_object_set_string_member (data, "model", json_node_get_string (model));
  json_object_set_boolean_member (data, "stream", streaming);
  if (max_tokens && !JSON_NODE_HOLDS_NULL (max_tokens))
    json_object_set_int_member (data, "max_tokens", json_node_get_int (max_tokens));
  if (temperature && !JSON_NODE_HOLDS_NULL (temperature))
    json_object_set_double_member (data, "temperature", json_node_get_double (temperature));
  if (tools && JSON_NODE_HOLDS_ARRAY (tools) && json_array_get_length (json_node_get_array (tools)) > 0)
    json_object_set_member (data, "tools", json_node_copy (tools));

  cc = g_new0 (ChatCall, 1);
  cc->stream = streaming;
  cc->include_usage = include_usage;
  cc->max_tokens_field = max_field;
  cc->created = g_get_real_time () / G_USEC_PER_SEC;
  if (!streaming)
    ens_http_read_text (call); /* the ack and the result: read without their trees */
  ens_http_on_event (call, chat_event, cc);
  ens_http_on_disconnect (call, chat_gone, cc);
  ens_http_core (call, NULL, "complete", data_node, 0, chat_acked, cc);
}

/* ------------------------------------------------------------------ models */

static void
add_model (JsonArray *data, GHashTable *seen, const char *id, const char *owner)
{
  JsonObject *m;

  if (id == NULL || !g_hash_table_add (seen, g_strdup (id)))
    return;
  m = json_object_new ();
  json_object_set_string_member (m, "id", id);
  json_object_set_string_member (m, "object", "model");
  json_object_set_int_member (m, "created", 0);
  json_object_set_string_member (m, "owned_by", owner);
  json_array_add_object_element (data, m);
}

/* (transfer full) every name the router answers to: each backend's models,
 * the backend names themselves, the model aliases that resolve, and "auto". */
static JsonArray *
model_list (EnsMessage *answer)
{
  JsonObject *in = JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data) : NULL;
  JsonNode *pnode = in ? json_object_get_member (in, "providers") : NULL;
  JsonArray *providers = pnode && JSON_NODE_HOLDS_ARRAY (pnode) ? json_node_get_array (pnode) : NULL;
  JsonArray *aliases = ens_member_array (in, "aliases");
  JsonArray *data = json_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  add_model (data, seen, "auto", "ensemble");
  for (guint i = 0; providers && i < json_array_get_length (providers); i++)
    {
      JsonNode *el = json_array_get_element (providers, i);
      JsonObject *p = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      const char *name = ens_member_string (p, "name");
      JsonNode *mnode = p ? json_object_get_member (p, "models") : NULL;
      JsonArray *models = mnode && JSON_NODE_HOLDS_ARRAY (mnode) ? json_node_get_array (mnode) : NULL;

      if (name == NULL)
        continue;
      for (guint j = 0; models && j < json_array_get_length (models); j++)
        {
          JsonNode *m = json_array_get_element (models, j);
          if (is_type (m, G_TYPE_STRING))
            add_model (data, seen, json_node_get_string (m), name);
        }
      add_model (data, seen, name, name);
    }
  /* The aliases that resolve (model-aliases), owned by the backend serving them. */
  for (guint i = 0; aliases && i < json_array_get_length (aliases); i++)
    {
      JsonObject *a = ens_array_object (aliases, i);
      add_model (data, seen, ens_member_string (a, "alias"), ens_member_string_or (a, "provider", "ensemble"));
    }
  return data;
}

static void
models_answer (EnsHttpCall *call, EnsMessage *answer, gpointer user_data)
{
  JsonObject *out;
  g_autoptr (JsonNode) node = NULL;

  (void) user_data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      reply_core_error (call, NULL, answer);
      return;
    }
  out = json_object_new ();
  json_object_set_string_member (out, "object", "list");
  json_object_set_array_member (out, "data", model_list (answer));
  node = ens_node_ref_object (out);
  json_object_unref (out);
  ens_http_reply_json (call, 200, node);
}

/* GET /v1/models */
static void
route_models (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "providers.list", NULL, 0, models_answer, NULL);
}

static void
model_answer (EnsHttpCall *call, EnsMessage *answer, gpointer user_data)
{
  const char *id = ens_http_param (call, "model");
  g_autoptr (JsonArray) list = NULL;
  g_autofree char *text = NULL;

  (void) user_data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      reply_core_error (call, NULL, answer);
      return;
    }
  list = model_list (answer);
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *el = json_array_get_element (list, i);
      if (g_strcmp0 (ens_member_string (json_node_get_object (el), "id"), id) == 0)
        {
          ens_http_reply_json (call, 200, el);
          return;
        }
    }
  text = g_strdup_printf ("The model '%s' does not exist (GET /v1/models lists them).", id);
  reply_oa_error (call, 404, "invalid_request_error", text, "model", "model_not_found");
}

/* GET /v1/models/{model} */
static void
route_model (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "providers.list", NULL, 0, model_answer, NULL);
}

/* ------------------------------------------------------------------ the table */

const EnsHttpRoute ens_http_routes_openai[] = {
  { "POST", "/v1/chat/completions", route_chat_completions, "openai",
    "OpenAI chat completion: {model (a model, a backend or \"auto\"), messages, stream?, stream_options?, "
    "max_tokens?, temperature?, tools?}; stream:true answers as `data:` lines ending `data: [DONE]`",
    "{\"type\":\"object\",\"required\":[\"messages\"],\"properties\":{\"model\":{\"type\":\"string\"},"
    "\"messages\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"object\",\"required\":[\"role\"],"
    "\"properties\":{\"role\":{\"enum\":[\"system\",\"developer\",\"user\",\"assistant\",\"tool\"]},"
    "\"content\":{\"type\":[\"string\",\"array\",\"null\"]}}}},"
    "\"stream\":{\"type\":\"boolean\"},\"stream_options\":{\"type\":\"object\",\"properties\":{\"include_usage\":{\"type\":\"boolean\"}}},"
    "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1},\"max_completion_tokens\":{\"type\":\"integer\",\"minimum\":1},"
    "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2},\"n\":{\"const\":1},"
    "\"tools\":{\"type\":\"array\"},\"user\":{\"type\":\"string\"}}}",
    FALSE },
  { "GET", "/v1/models", route_models, "openai",
    "OpenAI model list: every model of every provider backend, each backend name, the model aliases that resolve, "
    "and \"auto\"", NULL, FALSE },
  { "GET", "/v1/models/{model}", route_model, "openai", "One model of GET /v1/models (404 model_not_found)", NULL,
    FALSE },
  { NULL },
};
