/* ens-ws-rhetor.c — Rhetor / aish AI sockets at /ws/socket/{id}:
 * {"type":"write","content"} runs a task in the socket's session, whose
 * answer comes back as {"type":"read","content","headers"}. */
#include "ens-ws-private.h"

void
ens_ws_rhetor_message (EnsWsConn *c, const char *text, gsize len)
{
  const EnsHost *host = c->ws->host;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = host->json_parse (text, len, &error);
  JsonObject *obj;
  const char *type, *content;

  if (root == NULL)
    {
      g_autofree char *message = g_strdup_printf ("malformed JSON: %s", error->message);
      ens_ws_send_error (c, ENS_ERR_INVALID_JSON, message, c->socket_id, NULL);
      return;
    }
  obj = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  type = ens_member_string (obj, "type");
  if (g_strcmp0 (type, "ping") == 0)
    {
      g_autoptr (JsonNode) node = ens_ws_typed_message ("pong", ens_node_empty_object ());
      ens_ws_send_node (c, node);
      return;
    }
  if (g_strcmp0 (type, "write") != 0)
    {
      ens_ws_send_error (c, ENS_ERR_INVALID_REQUEST, "a message is {\"type\":\"write\",\"content\":TEXT}", c->socket_id,
                  type);
      return;
    }
  content = ens_member_string (obj, "content");
  if (content == NULL || content[0] == '\0')
    {
      ens_ws_send_error (c, ENS_ERR_INVALID_PARAMETERS, "content (a non-empty string) is required", c->socket_id, type);
      return;
    }
  {
    g_autoptr (JsonNode) data = ens_ws_session_params (c->socket_id, content);
    ens_ws_core (c, "sessions.execute", data, ens_ws_pending_new (ENS_WS_PENDING_WRITE, c->socket_id));
  }
}

void
ens_ws_rhetor_event (EnsWsConn *c, EnsMessage *msg)
{
  JsonObject *ev = msg->data && JSON_NODE_HOLDS_OBJECT (msg->data) ? json_node_get_object (msg->data) : NULL;
  const char *type = ens_member_string (ev, "type");
  JsonObject *obj;
  g_autoptr (JsonNode) node = NULL;

  if (g_strcmp0 (type, "task_completed") == 0)
    {
      JsonObject *result = ens_member_object (ev, "result");
      const char *response = ens_member_string (result, "response");
      JsonArray *headers = json_array_new ();
      const char *fields[][2] = { { "Model", ens_member_string (result, "model") },
                                  { "Provider", ens_member_string (result, "provider") },
                                  { "Session-Id", ens_member_string (ev, "sessionId") },
                                  { "Task-Id", ens_member_string (ev, "taskId") } };

      node = ens_node_new_object (&obj);
      json_object_set_string_member (obj, "type", "read");
      json_object_set_string_member (obj, "content", response ? response : "");
      {
        /* aish's read header first: who answered */
        g_autofree char *from = g_strdup_printf ("team-chat-from-%s", c->socket_id);
        json_array_add_string_element (headers, from);
      }
      for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
        if (fields[i][1])
          {
            g_autofree char *h = g_strdup_printf ("%s: %s", fields[i][0], fields[i][1]);
            json_array_add_string_element (headers, h);
          }
      json_object_set_array_member (obj, "headers", headers);
      ens_ws_send_node (c, node);
    }
  else if (g_strcmp0 (type, "task_failed") == 0)
    {
      const char *err = ens_member_string (ev, "error");
      node = ens_node_new_object (&obj);
      json_object_set_string_member (obj, "type", "error");
      json_object_set_string_member (obj, "error", err ? err : "the task failed");
      ens_member_copy (obj, "code", ev, "code");
      json_object_set_string_member (obj, "content", err ? err : "the task failed");
      json_object_set_string_member (obj, "sessionId", c->socket_id);
      ens_ws_send_node (c, node);
    }
}
