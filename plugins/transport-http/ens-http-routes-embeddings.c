/* ens-http-routes-embeddings.c — POST /v1/embeddings, OpenAI's embeddings
 * API: {input (a string or a list of strings), model?, encoding_format?
 * ("float" | "base64"), dimensions?, user?} becomes the core's embed verb,
 * routed to a backend that makes embeddings; the answer is {object: "list",
 * data: [{object: "embedding", index, embedding}], model, usage}.  With
 * encoding_format "base64" (what the official clients ask for unless told
 * otherwise) each embedding is the base64 of its little-endian float32s.
 * Errors are OpenAI's (ens-http-routes-openai.c). */
#include "ens-http.h"
#include "ens-json-util.h"

#include <string.h>

typedef struct {
  char *request_id;
  gboolean base64;
} EmbedCall;

static void
embed_free (EmbedCall *ec)
{
  g_free (ec->request_id);
  g_free (ec);
}

static void
embed_done (EnsHttpCall *call, EmbedCall *ec)
{
  ens_http_on_event (call, NULL, NULL);
  ens_http_on_disconnect (call, NULL, NULL);
  embed_free (ec);
}

/* (transfer full) @vector as base64 of little-endian float32s. */
static char *
vector_base64 (JsonArray *vector)
{
  guint n = json_array_get_length (vector);
  g_autofree guint32 *raw = g_new (guint32, MAX (n, 1));

  for (guint i = 0; i < n; i++)
    {
      JsonNode *x = json_array_get_element (vector, i);
      float f = JSON_NODE_HOLDS_VALUE (x) && (json_node_get_value_type (x) == G_TYPE_DOUBLE ||
                                              json_node_get_value_type (x) == G_TYPE_INT64)
                  ? (float) json_node_get_double (x) : 0.0f;
      guint32 bits;

      memcpy (&bits, &f, sizeof bits);
      raw[i] = GUINT32_TO_LE (bits);
    }
  return g_base64_encode ((const guchar *) raw, n * sizeof (guint32));
}

static void
reply_embeddings (EnsHttpCall *call, EmbedCall *ec, JsonObject *result)
{
  JsonArray *embeddings = ens_member_array (result, "embeddings");
  JsonObject *usage = ens_member_object (result, "usage");
  gint64 tokens = MAX (ens_member_int (usage, "input_tokens", 0), 0);
  JsonObject *out = json_object_new (), *u = json_object_new ();
  JsonArray *data = json_array_new ();
  g_autoptr (JsonNode) node = NULL;

  for (guint i = 0; embeddings && i < json_array_get_length (embeddings); i++)
    {
      JsonNode *el = json_array_get_element (embeddings, i);
      JsonObject *item = json_object_new ();

      json_object_set_string_member (item, "object", "embedding");
      json_object_set_int_member (item, "index", i);
      if (!JSON_NODE_HOLDS_ARRAY (el))
        json_object_set_array_member (item, "embedding", json_array_new ());
      else if (ec->base64)
        {
          g_autofree char *text = vector_base64 (json_node_get_array (el));
          json_object_set_string_member (item, "embedding", text);
        }
      else
        json_object_set_member (item, "embedding", json_node_ref (el));
      json_array_add_object_element (data, item);
    }
  json_object_set_string_member (out, "object", "list");
  json_object_set_array_member (out, "data", data);
  json_object_set_string_member (out, "model", ens_member_string_or (result, "model", ""));
  json_object_set_int_member (u, "prompt_tokens", tokens);
  json_object_set_int_member (u, "total_tokens", tokens);
  json_object_set_object_member (out, "usage", u);
  node = ens_node_ref_object (out);
  json_object_unref (out);
  ens_http_reply_json (call, 200, node);
}

static void
embed_event (EnsHttpCall *call, EnsMessage *event, gpointer data)
{
  EmbedCall *ec = data;
  JsonObject *d = event->data && JSON_NODE_HOLDS_OBJECT (event->data) ? json_node_get_object (event->data) : NULL;

  if (d == NULL || ec->request_id == NULL || g_strcmp0 (event->topic, "COMPLETION_RESULT") != 0 ||
      g_strcmp0 (ens_member_string_or (d, "request_id", ""), ec->request_id) != 0)
    return;
  if (json_object_has_member (d, "result") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (d, "result")))
    reply_embeddings (call, ec, ens_member_object (d, "result"));
  else
    ens_http_openai_reply_failure (call, d);
  embed_done (call, ec);
}

static void
embed_acked (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  EmbedCall *ec = data;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_http_openai_reply_refusal (call, answer, NULL);
      embed_done (call, ec);
      return;
    }
  ec->request_id = g_strdup (answer->data && JSON_NODE_HOLDS_OBJECT (answer->data)
                               ? ens_member_string (json_node_get_object (answer->data), "request_id") : NULL);
}

static void
embed_gone (EnsHttpCall *call, gpointer data)
{
  (void) call;
  embed_free (data); /* the client closes with the call: the core cancels */
}

static gboolean
is_string (JsonNode *n)
{
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING;
}

/* POST /v1/embeddings */
static void
route_embeddings (EnsHttpCall *call)
{
  g_autoptr (JsonNode) body_node = NULL;
  JsonObject *body = ens_http_openai_body (call, &body_node);
  JsonNode *input, *model, *format, *dimensions;
  JsonObject *data;
  g_autoptr (JsonNode) data_node = NULL;
  EmbedCall *ec;
  gboolean base64 = FALSE;

  if (body == NULL)
    return;
  input = json_object_get_member (body, "input");
  if (input == NULL || JSON_NODE_HOLDS_NULL (input))
    {
      ens_http_openai_reply_invalid (call, "input", "Missing required parameter: 'input'.");
      return;
    }
  if (JSON_NODE_HOLDS_ARRAY (input) && json_array_get_length (json_node_get_array (input)) > 0 &&
      !is_string (json_array_get_element (json_node_get_array (input), 0)) &&
      JSON_NODE_HOLDS_VALUE (json_array_get_element (json_node_get_array (input), 0)))
    {
      /* Token ids (as tiktoken makes them) name no text the backends take. */
      ens_http_openai_reply_unprocessable (call, "input",
                                           "'input' as token ids is not supported: send the text.");
      return;
    }
  model = json_object_get_member (body, "model");
  if (model && !JSON_NODE_HOLDS_NULL (model) && !is_string (model))
    {
      ens_http_openai_reply_invalid (call, "model", "'model' must be a string.");
      return;
    }
  format = json_object_get_member (body, "encoding_format");
  if (format && !JSON_NODE_HOLDS_NULL (format))
    {
      if (!is_string (format) ||
          (strcmp (json_node_get_string (format), "float") && strcmp (json_node_get_string (format), "base64")))
        {
          ens_http_openai_reply_invalid (call, "encoding_format", "'encoding_format' must be \"float\" or \"base64\".");
          return;
        }
      base64 = strcmp (json_node_get_string (format), "base64") == 0;
    }
  dimensions = json_object_get_member (body, "dimensions");

  /* The core checks input and dimensions, with their names. */
  data = json_object_new ();
  data_node = ens_node_ref_object (data);
  json_object_unref (data);
  json_object_set_member (data, "input", json_node_copy (input));
  if (is_string (model) && json_node_get_string (model)[0] && strcmp (json_node_get_string (model), "auto") != 0)
    json_object_set_string_member (data, "model", json_node_get_string (model));
  if (dimensions && !JSON_NODE_HOLDS_NULL (dimensions))
    json_object_set_member (data, "dimensions", json_node_copy (dimensions));

  ec = g_new0 (EmbedCall, 1);
  ec->base64 = base64;
  ens_http_on_event (call, embed_event, ec);
  ens_http_on_disconnect (call, embed_gone, ec);
  ens_http_core (call, NULL, "embed", data_node, 0, embed_acked, ec);
}

const EnsHttpRoute ens_http_routes_embeddings[] = {
  { "POST", "/v1/embeddings", route_embeddings, "openai",
    "OpenAI embeddings: {input (a string or a list of strings), model? (an embedding model, a backend or "
    "\"auto\"), encoding_format? (\"float\" | \"base64\"), dimensions?}, routed to a backend that makes embeddings",
    "{\"type\":\"object\",\"required\":[\"input\"],\"properties\":{\"input\":{\"oneOf\":[{\"type\":\"string\"},"
    "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":2048}]},"
    "\"model\":{\"type\":\"string\"},\"encoding_format\":{\"enum\":[\"float\",\"base64\"]},"
    "\"dimensions\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":65536},\"user\":{\"type\":\"string\"}}}",
    FALSE },
  { NULL },
};
