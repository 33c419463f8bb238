/* ens-mcp-resources.c — MCP resources: agents' state (kv.*) and sessions'
 * records, listed, read and subscribed to. */
#include "ens-mcp-private.h"

#include <string.h>

/* ------------------------------------------------------------------ resources */

static void
add_resource (JsonArray *items, const char *uri, const char *name, const char *description)
{
  JsonObject *r = json_object_new ();

  json_object_set_string_member (r, "uri", uri);
  json_object_set_string_member (r, "name", name);
  json_object_set_string_member (r, "description", description);
  json_object_set_string_member (r, "mimeType", "application/json");
  json_array_add_object_element (items, r);
}

void
ens_mcp_res_list_answered (Op *op, EnsMessage *answer)
{
  JsonObject *d = answer->kind == ENS_MESSAGE_REPLY && answer->data && JSON_NODE_HOLDS_OBJECT (answer->data)
                    ? json_node_get_object (answer->data) : NULL;
  JsonArray *list;

  if (d == NULL)
    return; /* a part that failed is left out */
  if ((list = ens_member_array (d, "sessions")))
    for (guint i = 0; i < json_array_get_length (list); i++)
      {
        JsonObject *sess = ens_array_object (list, i);
        const char *id = ens_member_string (sess, "session_id");
        g_autofree char *uri = id ? g_strconcat (SESSION_SCHEME, id, NULL) : NULL;
        g_autofree char *desc = g_strdup_printf ("session %s (%s): its record and transcript", id,
                                                 ens_member_string_or (sess, "status", "?"));
        if (uri)
          add_resource (op->items, uri, id, desc);
      }
  else if ((list = ens_member_array (d, "agents")))
    for (guint i = 0; i < json_array_get_length (list); i++)
      {
        const char *agent = ens_member_string (ens_array_object (list, i), "name");
        JsonObject *obj;
        g_autoptr (JsonNode) data = ens_node_new_object (&obj);
        json_object_set_string_member (obj, "agent", agent);
        ens_mcp_core (op, NULL, "kv.list", data, 0);
      }
  else if ((list = ens_member_array (d, "keys")))
    {
      const char *agent = ens_member_string_or (d, "agent", "");
      for (guint i = 0; i < json_array_get_length (list); i++)
        {
          const char *key = ens_array_string (list, i);
          g_autofree char *esc = key ? g_uri_escape_string (key, NULL, FALSE) : NULL;
          g_autofree char *uri = esc ? g_strconcat (KV_SCHEME, agent, "/", esc, NULL) : NULL;
          g_autofree char *name = g_strdup_printf ("%s/%s", agent, key);
          g_autofree char *desc = g_strdup_printf ("key %s of agent %s's state", key, agent);
          if (uri)
            add_resource (op->items, uri, name, desc);
        }
    }
}

/* @uri's agent and key (KV) or session id; FALSE for anything else. */
gboolean
ens_mcp_parse_uri (const char *uri, char **agent, char **key, char **session)
{
  *agent = *key = *session = NULL;
  if (g_str_has_prefix (uri, KV_SCHEME))
    {
      const char *rest = uri + strlen (KV_SCHEME);
      const char *slash = strchr (rest, '/');
      if (slash == NULL || slash == rest || slash[1] == '\0')
        return FALSE;
      *agent = g_strndup (rest, slash - rest);
      *key = g_uri_unescape_string (slash + 1, NULL);
      if (*key == NULL)
        {
          g_clear_pointer (agent, g_free);
          return FALSE;
        }
      return TRUE;
    }
  if (g_str_has_prefix (uri, SESSION_SCHEME) && uri[strlen (SESSION_SCHEME)] &&
      strchr (uri + strlen (SESSION_SCHEME), '/') == NULL)
    {
      *session = g_strdup (uri + strlen (SESSION_SCHEME));
      return TRUE;
    }
  return FALSE;
}

static void
not_found (Op *op)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_node_new_object (&obj);
  g_autofree char *text = g_strdup_printf ("Resource not found: %s", op->uri);

  json_object_set_string_member (obj, "uri", op->uri);
  ens_mcp_op_error (op, ENS_MCP_RESOURCE_NOT_FOUND, text, data);
}

void
ens_mcp_res_read_answered (Op *op, EnsMessage *answer)
{
  JsonObject *d = answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data) : NULL;
  JsonNode *value;
  JsonObject *obj, *item;
  g_autoptr (JsonNode) result = NULL;
  JsonArray *contents;
  g_autofree char *text = NULL, *body = NULL;
  gboolean cut;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      if (g_strcmp0 (answer->error_code, ENS_ERR_NOT_FOUND) == 0 || g_str_has_suffix (answer->error_code, "NOT_FOUND"))
        not_found (op);
      else
        ens_mcp_op_error (op, ENS_JSONRPC_INVALID_PARAMS, answer->error_message, answer->error_details);
      return;
    }
  if (json_object_has_member (d, "found"))
    {
      if (!ens_member_bool (d, "found", FALSE))
        {
          not_found (op);
          return;
        }
      value = ens_member (d, "value");
      text = op->s->host->json_to_string (value);
    }
  else
    text = op->s->host->json_to_string (answer->data);
  body = ens_mcp_capped (op->s, text, &cut);
  result = ens_node_new_object (&obj);
  contents = json_array_new ();
  item = json_object_new ();
  json_object_set_string_member (item, "uri", op->uri);
  json_object_set_string_member (item, "mimeType", "application/json");
  json_object_set_string_member (item, "text", body);
  json_array_add_object_element (contents, item);
  json_object_set_array_member (obj, "contents", contents);
  ens_mcp_op_result (op, result);
}

void
ens_mcp_resources (EnsMcpSession *s, Op *op, const char *method, JsonObject *params)
{
  const char *uri = ens_member_string (params, "uri");
  g_autofree char *agent = NULL, *key = NULL, *session = NULL;
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_node_new_object (&obj);

  if (uri == NULL)
    {
      ens_mcp_op_error (op, ENS_JSONRPC_INVALID_PARAMS, "params.uri must be a string", NULL);
      return;
    }
  op->uri = g_strdup (uri);
  if (!ens_mcp_parse_uri (uri, &agent, &key, &session))
    {
      g_autofree char *text = g_strdup_printf ("Resource not found: %s (resources are %sAGENT/KEY and %sID)", uri,
                                               KV_SCHEME, SESSION_SCHEME);
      JsonObject *d;
      g_autoptr (JsonNode) details = ens_node_new_object (&d);
      json_object_set_string_member (d, "uri", uri);
      ens_mcp_op_error (op, ENS_MCP_RESOURCE_NOT_FOUND, text, details);
      return;
    }
  if (strcmp (method, "resources/read") == 0)
    {
      op->kind = OP_RES_READ;
      if (session)
        {
          json_object_set_string_member (obj, "session_id", session);
          ens_mcp_core (op, NULL, "sessions.status", data, 0);
        }
      else
        {
          json_object_set_string_member (obj, "agent", agent);
          json_object_set_string_member (obj, "key", key);
          ens_mcp_core (op, NULL, "kv.get", data, 0);
        }
      return;
    }
  if (strcmp (method, "resources/subscribe") == 0 && !g_hash_table_contains (s->subscriptions, uri))
    {
      char *topic = session ? g_strdup_printf ("session.%s.*", session) : g_strdup_printf ("ensemble.kv.%s", agent);
      g_hash_table_insert (s->subscriptions, g_strdup (uri), topic);
      ens_mcp_core_internal (s, "subscribe", topic);
    }
  else if (strcmp (method, "resources/unsubscribe") == 0)
    {
      const char *topic = g_hash_table_lookup (s->subscriptions, uri);
      if (topic)
        {
          ens_mcp_core_internal (s, "unsubscribe", topic); /* copies the topic first */
          g_hash_table_remove (s->subscriptions, uri);
        }
    }
  ens_mcp_op_result (op, NULL);
}

void
ens_mcp_resource_templates (Op *op)
{
  JsonObject *obj;
  g_autoptr (JsonNode) result = ens_node_new_object (&obj);
  JsonArray *list = json_array_new ();
  const char *const t[][3] = {
    { KV_SCHEME "{agent}/{key}", "agent state", "a key of an agent's state (kv.*), as JSON" },
    { SESSION_SCHEME "{session_id}", "session", "a session's record and transcript, as JSON" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (t); i++)
    {
      JsonObject *r = json_object_new ();
      json_object_set_string_member (r, "uriTemplate", t[i][0]);
      json_object_set_string_member (r, "name", t[i][1]);
      json_object_set_string_member (r, "description", t[i][2]);
      json_object_set_string_member (r, "mimeType", "application/json");
      json_array_add_object_element (list, r);
    }
  json_object_set_array_member (obj, "resourceTemplates", list);
  ens_mcp_op_result (op, result);
}

