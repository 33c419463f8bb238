/* ens-dialect-centerfire.c — the Centerfire per-agent socket: a request
 * {id, interface, agent, action, data} on orchestrator-<agent>.sock goes to
 * that agent; the answer {id, status, data | error{code,message,details},
 * timestamp, processing_time_ms} is the native reply shape, so the native
 * encoder serves it unchanged.  One request per connection, as Centerfire
 * clients send raw JSON and wait for the close. */
#include "ens-unix.h"
#include "ens-json-util.h"

#include <string.h>

static void
bounce (EnsUnixConn *conn, const char *id, const char *code, const char *message)
{
  const EnsHost *host = ens_unix_host (conn);
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_ERROR);
  EnsMessage *err;

  init.id = id;
  init.error_code = code;
  init.error_message = message;
  err = host->message_new (&init);
  ens_unix_send (conn, host->message_encode (err, host->encode_native));
  host->message_unref (err);
}

void
ens_centerfire_handle_line (EnsUnixConn *conn, const char *line, gsize len)
{
  const EnsHost *host = ens_unix_host (conn);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  JsonObject *obj;
  JsonNode *id_node;
  const char *agent;
  EnsMessage *msg;
  EnsInvalid invalid;

  root = host->json_parse (line, len, &error);
  if (root == NULL)
    {
      g_autofree char *text = g_strdup_printf ("malformed JSON: %s", error->message);
      bounce (conn, NULL, ENS_ERR_INVALID_JSON, text);
      return;
    }
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      bounce (conn, NULL, ENS_ERR_INVALID_REQUEST, "a request is a JSON object {id, interface, agent, action, data}");
      return;
    }
  obj = json_node_get_object (root);
  id_node = json_object_get_member (obj, "id");
  if (id_node && !(JSON_NODE_HOLDS_VALUE (id_node) && json_node_get_value_type (id_node) == G_TYPE_STRING))
    {
      bounce (conn, NULL, ENS_ERR_INVALID_REQUEST, "id must be a string");
      return;
    }
  init.id = id_node ? json_node_get_string (id_node) : NULL;
  if (!ens_param_string (obj, "action", ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY, 0, &init.action, &invalid))
    {
      bounce (conn, init.id, ENS_ERR_INVALID_REQUEST, "action must be a non-empty string");
      return;
    }
  agent = NULL;
  if (!ens_param_string (obj, "agent", ENS_PARAM_OPTIONAL, 0, &agent, &invalid))
    {
      bounce (conn, init.id, ENS_ERR_INVALID_REQUEST, "agent must be a string");
      return;
    }
  if (agent && strcmp (agent, ens_unix_agent (conn)) != 0)
    {
      g_autofree char *text = g_strdup_printf ("this socket serves agent %s, not %s", ens_unix_agent (conn), agent);
      bounce (conn, init.id, ENS_ERR_INVALID_REQUEST, text);
      return;
    }
  init.agent = ens_unix_agent (conn);
  init.data = json_object_get_member (obj, "data");
  msg = host->message_new (&init);
  host->client_submit (ens_unix_client (conn), msg);
  host->message_unref (msg);
}
