/* ens-http-answer.c — how every route answers, on top of the transport's
 * ens_http_reply_json / ens_http_core (ens-http.h): the error shapes, the
 * HTTP status of each core error code, the JSON body of a request. */
#include "ens-http.h"
#include "ens-json-util.h"

#include <string.h>

/* Written straight to its text: every refused request (404, 401, 422...)
 * answers one. */
void
ens_http_reply_error (EnsHttpCall *call, guint status, const char *code, const char *message, JsonNode *details)
{
  GString *out = g_string_sized_new (128);

  g_string_append (out, "{\"error\":{\"code\":");
  ens_json_write_string (out, code);
  g_string_append (out, ",\"message\":");
  ens_json_write_string (out, message ? message : "");
  g_string_append (out, ",\"details\":");
  if (details)
    ens_json_write (out, details);
  else
    g_string_append (out, "{}");
  g_string_append (out, "}}");
  ens_http_reply_text (call, status, "application/json", out->str);
  g_string_free (out, TRUE);
}

void
ens_http_reply_invalid (EnsHttpCall *call, const char *field, const char *expected)
{
  EnsInvalid invalid;
  g_autoptr (JsonNode) details = NULL;
  g_autofree char *message = NULL;

  ens_invalid_set (&invalid, field, "%s", expected);
  details = ens_invalid_details (&invalid);
  message = ens_invalid_message (&invalid);
  ens_http_reply_error (call, 422, "VALIDATION_ERROR", message, details);
}

guint
ens_http_status_for (const char *code)
{
  static const struct {
    const char *code;
    guint status;
  } map[] = {
    { ENS_ERR_INVALID_PARAMETERS, 422 }, { "VALIDATION_ERROR", 422 }, { ENS_ERR_INVALID_REQUEST, 400 },
    { ENS_ERR_INVALID_JSON, 400 },       { ENS_ERR_UNKNOWN_ACTION, 404 }, { ENS_ERR_AGENT_NOT_FOUND, 404 },
    { ENS_ERR_NOT_FOUND, 404 },          { "SESSION_NOT_FOUND", 404 },   { "UNKNOWN_MODEL", 404 },
    { ENS_ERR_AGENT_EXISTS, 409 },       { "SESSION_BUSY", 409 },        { "SESSION_STOPPED", 409 },
    { ENS_ERR_PERMISSION_DENIED, 403 },  { ENS_ERR_TIMEOUT, 504 },        { ENS_ERR_AGENT_GONE, 502 },
    { ENS_ERR_AGENT_NOT_CONNECTED, 503 }, { ENS_ERR_OVERLOADED, 503 },   { ENS_ERR_NOT_AVAILABLE, 503 },
    { "NO_PROVIDER", 503 },              { "NO_ROUTER", 503 },           { "BUDGET_EXCEEDED", 402 },
    { ENS_ERR_LINE_TOO_LONG, 413 },      { "TOO_LARGE", 413 },           { "NAMESPACE_COLLISION", 409 },
    { "HAS_CHILDREN", 409 },             { "PATH_EXISTS", 409 },         { "DEPENDENTS_RUNNING", 409 },
    { "DEPENDENCY_FAILED", 409 },        { "INVALID_NAME", 422 },        { "PATH_ESCAPE", 403 },
    { "NOT_A_DIRECTORY", 409 },
    { "EMBEDDINGS_FAILED", 502 },        { "NAMING_UNAVAILABLE", 503 },  { "SPAWN_FAILED", 500 },
  };

  for (guint i = 0; code && i < G_N_ELEMENTS (map); i++)
    if (strcmp (map[i].code, code) == 0)
      return map[i].status;
  return 500;
}

JsonNode *
ens_http_parse_body (EnsHttpCall *call, const char *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node;

  if (len == 0)
    return ens_node_empty_object ();
  node = ens_http_host (call)->json_parse (data, len, &error);
  if (node == NULL)
    {
      g_autofree char *text = g_strdup_printf ("malformed JSON body: %s", error->message);
      ens_http_reply_error (call, 400, ENS_ERR_INVALID_JSON, text, NULL);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      json_node_unref (node);
      ens_http_reply_invalid (call, "body", "a JSON object");
      return NULL;
    }
  return node;
}

static void
reply_with_answer (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  (void) data;
  if (answer->kind == ENS_MESSAGE_ERROR)
    ens_http_reply_error (call, ens_http_status_for (answer->error_code), answer->error_code, answer->error_message,
                          answer->error_details);
  else
    ens_http_reply_json (call, 200, answer->data);
}

void
ens_http_core_reply (EnsHttpCall *call, const char *agent, const char *action, JsonNode *data)
{
  ens_http_core (call, agent, action, data, 0, reply_with_answer, NULL);
}
