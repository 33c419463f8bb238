/* ens-jsonrpc.c — JSON-RPC 2.0 messages (see ens-jsonrpc.h). */
#include "ens-jsonrpc.h"
#include "ens-json-write.h"

#include <string.h>

static gboolean
id_usable (JsonNode *id)
{
  if (id == NULL || !JSON_NODE_HOLDS_VALUE (id))
    return FALSE;
  switch (json_node_get_value_type (id))
    {
    case G_TYPE_STRING:
    case G_TYPE_INT64:
      return TRUE;
    default:
      return FALSE; /* MCP: a string or an integer, never null */
    }
}

EnsJsonRpcKind
ens_jsonrpc_classify (JsonNode *msg, JsonNode **id, const char **method, JsonObject **params, const char **why)
{
  JsonObject *obj;
  JsonNode *v, *idn, *m, *p;
  const char *dummy;

  if (why == NULL)
    why = &dummy;
  if (id)
    *id = NULL;
  if (method)
    *method = NULL;
  if (params)
    *params = NULL;
  if (msg == NULL || !JSON_NODE_HOLDS_OBJECT (msg))
    {
      *why = JSON_NODE_HOLDS_ARRAY (msg) ? "batches are not part of MCP: send one message at a time"
                                         : "a message must be a JSON object";
      return ENS_JSONRPC_INVALID;
    }
  obj = json_node_get_object (msg);
  idn = json_object_get_member (obj, "id");
  if (id && id_usable (idn))
    *id = idn;
  v = json_object_get_member (obj, "jsonrpc");
  if (v == NULL || !JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING ||
      strcmp (json_node_get_string (v), "2.0") != 0)
    {
      *why = "jsonrpc must be \"2.0\"";
      return ENS_JSONRPC_INVALID;
    }
  if (idn && !id_usable (idn))
    {
      *why = "id must be a string or an integer";
      return ENS_JSONRPC_INVALID;
    }
  m = json_object_get_member (obj, "method");
  if (m == NULL)
    {
      if (idn && (json_object_has_member (obj, "result") ^ json_object_has_member (obj, "error")))
        return ENS_JSONRPC_RESPONSE;
      *why = idn ? "a response carries exactly one of result and error" : "method is missing";
      return ENS_JSONRPC_INVALID;
    }
  if (!JSON_NODE_HOLDS_VALUE (m) || json_node_get_value_type (m) != G_TYPE_STRING || !*json_node_get_string (m))
    {
      *why = "method must be a non-empty string";
      return ENS_JSONRPC_INVALID;
    }
  p = json_object_get_member (obj, "params");
  if (p && !JSON_NODE_HOLDS_OBJECT (p) && !JSON_NODE_HOLDS_NULL (p))
    {
      *why = "params must be an object";
      return ENS_JSONRPC_INVALID;
    }
  if (method)
    *method = json_node_get_string (m);
  if (params && p && JSON_NODE_HOLDS_OBJECT (p))
    *params = json_node_get_object (p);
  return idn ? ENS_JSONRPC_REQUEST : ENS_JSONRPC_NOTIFICATION;
}

static JsonObject *
envelope (JsonNode **node)
{
  JsonObject *obj = json_object_new ();
  *node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (*node, obj);
  json_object_set_string_member (obj, "jsonrpc", "2.0");
  return obj;
}

JsonNode *
ens_jsonrpc_result (JsonNode *id, JsonNode *result)
{
  JsonNode *node;
  JsonObject *obj = envelope (&node);

  json_object_set_member (obj, "id", id ? json_node_copy (id) : json_node_new (JSON_NODE_NULL));
  if (result)
    json_object_set_member (obj, "result", json_node_copy (result));
  else
    json_object_set_object_member (obj, "result", json_object_new ());
  return node;
}

JsonNode *
ens_jsonrpc_error (JsonNode *id, gint code, const char *message, JsonNode *data)
{
  JsonNode *node;
  JsonObject *obj = envelope (&node);
  JsonObject *err = json_object_new ();

  json_object_set_member (obj, "id", id ? json_node_copy (id) : json_node_new (JSON_NODE_NULL));
  json_object_set_int_member (err, "code", code);
  json_object_set_string_member (err, "message", message ? message : "error");
  if (data)
    json_object_set_member (err, "data", json_node_copy (data));
  json_object_set_object_member (obj, "error", err);
  return node;
}

JsonNode *
ens_jsonrpc_request (gint64 id, const char *method, JsonNode *params)
{
  JsonNode *node;
  JsonObject *obj = envelope (&node);

  json_object_set_int_member (obj, "id", id);
  json_object_set_string_member (obj, "method", method);
  if (params)
    json_object_set_member (obj, "params", json_node_copy (params));
  return node;
}

JsonNode *
ens_jsonrpc_notification (const char *method, JsonNode *params)
{
  JsonNode *node;
  JsonObject *obj = envelope (&node);

  json_object_set_string_member (obj, "method", method);
  if (params)
    json_object_set_member (obj, "params", json_node_copy (params));
  return node;
}

char *
ens_jsonrpc_to_string (JsonNode *msg)
{
  return ens_json_write_to_string (msg, FALSE);
}

gboolean
ens_jsonrpc_id_int (JsonNode *id, gint64 *out)
{
  if (id == NULL || !JSON_NODE_HOLDS_VALUE (id) || json_node_get_value_type (id) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (id);
  return TRUE;
}
