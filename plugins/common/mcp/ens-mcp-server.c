/* ens-mcp-server.c — one MCP session served over the host's client API
 * (see ens-mcp-server.h).  Every MCP method becomes core verbs or agent
 * requests submitted as the session's client; their answers come back
 * through the client's sink and are turned into the JSON-RPC response. */
#include "ens-mcp-server.h"
#include "ens-jsonrpc.h"
#include "ens-json-util.h"
#include "ens-schema.h"
#include "ens-mcp-private.h"

#include <string.h>

static const char *const versions[] = { ENS_MCP_PROTOCOL_VERSION, "2025-06-18", "2025-03-26", "2024-11-05", NULL };

static const char complete_schema_text[] =
  "{\"type\":\"object\",\"properties\":{"
  "\"prompt\":{\"type\":\"string\",\"minLength\":1,\"description\":\"what to ask the model\"},"
  "\"model\":{\"type\":\"string\",\"description\":\"a model or alias; the router picks when absent\"},"
  "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1},"
  "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2}},"
  "\"required\":[\"prompt\"],\"additionalProperties\":false}";

/* ------------------------------------------------------------------ ops */

Op *
ens_mcp_op_new (EnsMcpSession *s, OpKind kind, JsonNode *rpc_id, EnsMcpAnswerFunc answer, gpointer answer_data)
{
  Op *op = g_new0 (Op, 1);
  op->s = s;
  op->kind = kind;
  op->rpc_id = rpc_id ? json_node_copy (rpc_id) : NULL;
  op->answer = answer;
  op->answer_data = answer_data;
  s->ops = g_list_prepend (s->ops, op);
  return op;
}

static void
op_free (Op *op)
{
  if (op->rpc_id)
    json_node_unref (op->rpc_id);
  if (op->arguments)
    json_node_unref (op->arguments);
  if (op->items)
    json_array_unref (op->items);
  g_free (op->tool);
  g_free (op->uri);
  g_free (op->completion_id);
  g_free (op);
}

/* Ends @op with @response (transfer none, may be NULL); it is freed once no
 * core request of it is outstanding. */
static void
op_finish (Op *op, JsonNode *response)
{
  EnsMcpAnswerFunc answer = op->answer;

  if (op->done)
    return;
  op->done = TRUE;
  op->answer = NULL;
  if (op->completion_id)
    g_hash_table_remove (op->s->by_completion, op->completion_id);
  if (answer)
    answer (response, op->answer_data);
}

static void
op_release (Op *op)
{
  if (op->done && op->outstanding == 0)
    {
      op->s->ops = g_list_remove (op->s->ops, op);
      op_free (op);
    }
}

void
ens_mcp_op_result (Op *op, JsonNode *result)
{
  g_autoptr (JsonNode) response = ens_jsonrpc_result (op->rpc_id, result);
  op_finish (op, response);
}

void
ens_mcp_op_error (Op *op, gint code, const char *message, JsonNode *data)
{
  g_autoptr (JsonNode) response = ens_jsonrpc_error (op->rpc_id, code, message, data);
  op_finish (op, response);
}

/* Submits a core verb (@agent NULL) or an agent's action as the session's
 * client; the answer comes to on_answer() for @op.  @data (transfer none). */
void
ens_mcp_core (Op *op, const char *agent, const char *action, JsonNode *data, guint32 timeout_ms)
{
  EnsMcpSession *s = op->s;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  g_autofree char *id = g_strdup_printf ("mcp%" G_GUINT64_FORMAT, ++s->next_id);
  EnsMessage *msg;

  init.id = id;
  init.agent = agent;
  init.action = action;
  init.data = data;
  init.timeout_ms = timeout_ms;
  msg = s->host->message_new (&init);
  op->outstanding++;
  g_hash_table_insert (s->by_core, g_steal_pointer (&id), op);
  s->host->client_submit (s->client, msg); /* the answer may come before this returns */
  s->host->message_unref (msg);
}

/* A verb of the session's own whose answer nobody waits for. */
void
ens_mcp_core_internal (EnsMcpSession *s, const char *action, const char *topic)
{
  Op *op = ens_mcp_op_new (s, OP_INTERNAL, NULL, NULL, NULL);
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_node_new_object (&obj);
  JsonArray *topics = json_array_new ();

  json_array_add_string_element (topics, topic);
  json_object_set_array_member (obj, "topics", topics);
  op->done = TRUE;
  ens_mcp_core (op, NULL, action, data, 0);
}

/* ------------------------------------------------------------------ results */

/* Cuts @text to the limit on a character boundary; (transfer full). */
char *
ens_mcp_capped (EnsMcpSession *s, const char *text, gboolean *cut)
{
  gsize len = strlen (text), max = s->limits.max_result_bytes;
  const char *end;

  *cut = max > 0 && len > max;
  if (!*cut)
    return g_strdup (text);
  end = g_utf8_find_prev_char (text, text + max + 1);
  if (end == NULL)
    end = text;
  return g_strdup_printf ("%.*s\n[truncated: the result is %" G_GSIZE_FORMAT " bytes, over this server's cap of %"
                          G_GSIZE_FORMAT " bytes (mcp-max-result-bytes)]",
                          (int) (end - text), text, len, max);
}

/* A CallToolResult: {content: [{type: text, text}], structuredContent?, isError}. */
static JsonNode *
tool_result (EnsMcpSession *s, const char *text, JsonNode *structured, gboolean is_error)
{
  JsonObject *obj, *item = json_object_new ();
  JsonNode *node = ens_node_new_object (&obj);
  JsonArray *content = json_array_new ();
  gboolean cut;
  g_autofree char *body = ens_mcp_capped (s, text, &cut);

  json_object_set_string_member (item, "type", "text");
  json_object_set_string_member (item, "text", body);
  json_array_add_object_element (content, item);
  json_object_set_array_member (obj, "content", content);
  if (structured && JSON_NODE_HOLDS_OBJECT (structured) && !cut)
    json_object_set_member (obj, "structuredContent", json_node_copy (structured));
  json_object_set_boolean_member (obj, "isError", is_error);
  return node;
}

/* A tool's failure as a result the model can read (MCP: tool errors are
 * results with isError, not protocol errors). */
static JsonNode *
tool_error (EnsMcpSession *s, const char *code, const char *message, JsonNode *details)
{
  JsonObject *d = details && JSON_NODE_HOLDS_OBJECT (details) ? json_node_get_object (details) : NULL;
  const char *field = ens_member_string (d, "field");
  g_autofree char *text = NULL;
  JsonObject *obj, *err;
  g_autoptr (JsonNode) structured = ens_node_new_object (&obj);

  if (g_strcmp0 (code, ENS_ERR_INVALID_PARAMETERS) == 0 && field)
    text = g_strdup_printf ("invalid arguments: %s must be %s", field,
                            ens_member_string_or (d, "expected", "valid"));
  else
    text = g_strdup_printf ("%s: %s", code ? code : "ERROR", message ? message : "the tool failed");
  err = json_object_new ();
  json_object_set_string_member (err, "code", code ? code : "ERROR");
  json_object_set_string_member (err, "message", message ? message : "");
  if (details)
    json_object_set_member (err, "details", json_node_copy (details));
  json_object_set_object_member (obj, "error", err);
  return tool_result (s, text, structured, TRUE);
}

/* ------------------------------------------------------------------ tools */

static JsonObject *
describe_tool (const char *name, const char *description, JsonNode *schema)
{
  JsonObject *t = json_object_new ();

  json_object_set_string_member (t, "name", name);
  json_object_set_string_member (t, "description", description);
  if (schema && JSON_NODE_HOLDS_OBJECT (schema))
    json_object_set_member (t, "inputSchema", json_node_copy (schema));
  else
    {
      JsonObject *any = json_object_new ();
      json_object_set_string_member (any, "type", "object");
      json_object_set_object_member (t, "inputSchema", any);
    }
  return t;
}

/* Calls @func for every tool of every agent in agents.list's @data until it
 * returns TRUE. */
typedef gboolean (*ToolFunc) (JsonObject *agent, JsonObject *tool, const char *full_name, gpointer data);

static void
each_tool (JsonNode *data, ToolFunc func, gpointer user_data)
{
  JsonObject *d = data && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL;
  JsonArray *agents = ens_member_array (d, "agents");

  for (guint i = 0; agents && i < json_array_get_length (agents); i++)
    {
      JsonObject *a = ens_array_object (agents, i);
      JsonArray *tools = ens_member_array (a, "tools");
      const char *agent = ens_member_string (a, "name");

      for (guint j = 0; agent && tools && j < json_array_get_length (tools); j++)
        {
          JsonObject *t = ens_array_object (tools, j);
          const char *action = ens_member_string (t, "name");
          g_autofree char *full = action ? g_strconcat (agent, ".", action, NULL) : NULL;
          if (full && func (a, t, full, user_data))
            return;
        }
    }
}

static gboolean
add_tool (JsonObject *agent, JsonObject *tool, const char *full_name, gpointer data)
{
  const char *desc = ens_member_string (tool, "description");
  const char *agent_desc = ens_member_string (agent, "description");
  g_autofree char *fallback = g_strdup_printf ("%s on agent %s%s%s", ens_member_string (tool, "name"),
                                               ens_member_string (agent, "name"),
                                               agent_desc && *agent_desc ? ": " : "", agent_desc ? agent_desc : "");

  json_array_add_object_element (data, describe_tool (full_name, desc && *desc ? desc : fallback,
                                                      ens_member (tool, "input_schema")));
  return FALSE;
}

static void
tools_listed (Op *op, EnsMessage *answer)
{
  JsonObject *obj;
  g_autoptr (JsonNode) result = ens_node_new_object (&obj);
  JsonArray *tools = json_array_new ();

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_mcp_op_error (op, ENS_JSONRPC_INTERNAL_ERROR, answer->error_message, NULL);
      json_array_unref (tools);
      return;
    }
  each_tool (answer->data, add_tool, tools);
  json_array_add_object_element (tools, describe_tool ("complete",
                                                       "An LLM completion: the router picks a provider by quality, "
                                                       "cost, latency and budget; answers the model's text",
                                                       ens_schema_get_node (op->s->complete_schema)));
  json_object_set_array_member (obj, "tools", tools);
  ens_mcp_op_result (op, result);
}

typedef struct {
  const char *wanted;
  const char *agent, *action;
} Lookup;

static gboolean
find_tool (JsonObject *agent, JsonObject *tool, const char *full_name, gpointer data)
{
  Lookup *l = data;

  if (strcmp (full_name, l->wanted) != 0)
    return FALSE;
  l->agent = ens_member_string (agent, "name");
  l->action = ens_member_string (tool, "name");
  return TRUE;
}

/* agents.list answered: the tool's agent and action, then the call. */
static void
tool_resolved (Op *op, EnsMessage *answer)
{
  Lookup l = { .wanted = op->tool };
  g_autofree char *text = NULL;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_mcp_op_error (op, ENS_JSONRPC_INTERNAL_ERROR, answer->error_message, NULL);
      return;
    }
  each_tool (answer->data, find_tool, &l);
  if (l.agent == NULL)
    {
      JsonObject *obj;
      g_autoptr (JsonNode) data = ens_node_new_object (&obj);
      json_object_set_string_member (obj, "name", op->tool);
      text = g_strdup_printf ("Unknown tool: %s (tools/list names them)", op->tool);
      ens_mcp_op_error (op, ENS_JSONRPC_INVALID_PARAMS, text, data);
      return;
    }
  op->kind = OP_TOOLS_CALL;
  ens_mcp_core (op, l.agent, l.action, op->arguments, op->s->limits.tool_timeout_ms);
}

static void
tool_answered (Op *op, EnsMessage *answer)
{
  g_autoptr (JsonNode) result = NULL;

  if (answer->kind == ENS_MESSAGE_ERROR)
    result = tool_error (op->s, answer->error_code, answer->error_message, answer->error_details);
  else
    {
      g_autofree char *text = answer->data ? op->s->host->json_to_string (answer->data) : g_strdup ("null");
      result = tool_result (op->s, text, answer->data, FALSE);
    }
  ens_mcp_op_result (op, result);
}

static void
complete_acked (Op *op, EnsMessage *answer)
{
  JsonObject *d = answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data) : NULL;
  const char *request_id = ens_member_string (d, "request_id");

  if (answer->kind == ENS_MESSAGE_ERROR || request_id == NULL)
    {
      g_autoptr (JsonNode) result = tool_error (op->s, answer->error_code ? answer->error_code : "COMPLETION_FAILED",
                                                answer->error_message ? answer->error_message : "no request id",
                                                answer->error_details);
      ens_mcp_op_result (op, result);
      return;
    }
  op->completion_id = g_strdup (request_id);
  g_hash_table_insert (op->s->by_completion, op->completion_id, op);
}

static void
complete_ended (Op *op, JsonObject *d)
{
  JsonObject *result_obj = ens_member_object (d, "result");
  g_autoptr (JsonNode) result = NULL;

  if (result_obj)
    {
      JsonNode *node = ens_member (d, "result");
      result = tool_result (op->s, ens_member_string_or (result_obj, "response", ""), node, FALSE);
    }
  else
    result = tool_error (op->s, ens_member_string_or (d, "reason", "COMPLETION_FAILED"),
                         ens_member_string_or (d, "error", "the completion failed"), NULL);
  ens_mcp_op_result (op, result);
}

static void
tools_call (EnsMcpSession *s, Op *op, JsonObject *params)
{
  const char *name = ens_member_string (params, "name");
  JsonNode *args = ens_member (params, "arguments");

  if (name == NULL || !*name)
    {
      ens_mcp_op_error (op, ENS_JSONRPC_INVALID_PARAMS, "params.name must be a non-empty string (the tool's name)", NULL);
      return;
    }
  if (args && !JSON_NODE_HOLDS_OBJECT (args) && !JSON_NODE_HOLDS_NULL (args))
    {
      ens_mcp_op_error (op, ENS_JSONRPC_INVALID_PARAMS, "params.arguments must be an object", NULL);
      return;
    }
  op->tool = g_strdup (name);
  op->arguments = args && JSON_NODE_HOLDS_OBJECT (args) ? json_node_copy (args) : ens_node_empty_object ();
  if (strcmp (name, "complete") == 0)
    {
      g_autofree char *field = NULL, *expected = NULL;
      if (!ens_schema_validate (s->complete_schema, op->arguments, "arguments", &field, &expected))
        {
          JsonObject *d;
          g_autoptr (JsonNode) details = ens_node_new_object (&d);
          g_autofree char *message = g_strdup_printf ("%s must be %s", field, expected);
          g_autoptr (JsonNode) result = NULL;
          json_object_set_string_member (d, "field", field);
          json_object_set_string_member (d, "expected", expected);
          result = tool_error (s, ENS_ERR_INVALID_PARAMETERS, message, details);
          ens_mcp_op_result (op, result);
          return;
        }
      op->kind = OP_COMPLETE;
      ens_mcp_core (op, NULL, "complete", op->arguments, 0);
      return;
    }
  op->kind = OP_TOOL_RESOLVE;
  ens_mcp_core (op, NULL, "agents.list", NULL, 0);
}

/* ------------------------------------------------------------------ answers and events */

static void
notify (EnsMcpSession *s, const char *method, JsonNode *params)
{
  g_autoptr (JsonNode) msg = NULL;

  if (s->send == NULL || !s->initialized)
    return;
  msg = ens_jsonrpc_notification (method, params);
  s->send (msg, s->send_data);
}

/* One count of @op's is released: the resource listing ends with its last
 * answer; @op is freed once done and nothing is outstanding. */
static void
op_unhold (Op *op)
{
  op->outstanding--;
  if (op->kind == OP_RES_LIST && !op->done && op->outstanding == 0)
    {
      JsonObject *obj;
      g_autoptr (JsonNode) result = ens_node_new_object (&obj);
      json_object_set_array_member (obj, "resources", json_array_ref (op->items));
      ens_mcp_op_result (op, result);
    }
  op_release (op);
}

/* The answer stays counted while it is handled, so that answers that come
 * back inside (core verbs answer at once) never free @op under it. */
static void
on_answer (Op *op, EnsMessage *answer)
{
  if (!op->done)
    switch (op->kind)
      {
      case OP_TOOLS_LIST:
        tools_listed (op, answer);
        break;
      case OP_TOOL_RESOLVE:
        tool_resolved (op, answer);
        break;
      case OP_TOOLS_CALL:
        tool_answered (op, answer);
        break;
      case OP_COMPLETE:
        complete_acked (op, answer);
        break;
      case OP_RES_LIST:
        ens_mcp_res_list_answered (op, answer);
        break;
      case OP_RES_READ:
        ens_mcp_res_read_answered (op, answer);
        break;
      case OP_INTERNAL:
        break;
      }
  op_unhold (op);
}

static void
on_event (EnsMcpSession *s, EnsMessage *event)
{
  JsonObject *d = event->data && JSON_NODE_HOLDS_OBJECT (event->data) ? json_node_get_object (event->data) : NULL;
  GHashTableIter iter;
  gpointer key, value;

  if (event->topic == NULL)
    return;
  if (g_str_has_prefix (event->topic, "COMPLETION_"))
    {
      Op *op = g_hash_table_lookup (s->by_completion, ens_member_string_or (d, "request_id", ""));
      if (op && strcmp (event->topic, "COMPLETION_RESULT") == 0)
        {
          complete_ended (op, d);
          op_release (op);
        }
      return;
    }
  if (g_str_has_prefix (event->topic, "ensemble.agent."))
    {
      notify (s, "notifications/tools/list_changed", NULL);
      return;
    }
  g_hash_table_iter_init (&iter, s->subscriptions);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const char *uri = key, *topic = value;
      gboolean hit;
      if (g_str_has_suffix (topic, ".*"))
        hit = strncmp (event->topic, topic, strlen (topic) - 1) == 0;
      else
        {
          g_autofree char *agent = NULL, *k = NULL, *session = NULL;
          hit = strcmp (event->topic, topic) == 0 && ens_mcp_parse_uri (uri, &agent, &k, &session) &&
                g_strcmp0 (ens_member_string (d, "key"), k) == 0;
        }
      if (hit)
        {
          JsonObject *obj;
          g_autoptr (JsonNode) params = ens_node_new_object (&obj);
          json_object_set_string_member (obj, "uri", uri);
          notify (s, "notifications/resources/updated", params);
        }
    }
}

static void
sink_deliver (gpointer sink_data, EnsMessage *msg)
{
  EnsMcpSession *s = sink_data;
  gpointer key, value;

  if (msg->kind == ENS_MESSAGE_EVENT)
    {
      on_event (s, msg);
      return;
    }
  if (msg->kind != ENS_MESSAGE_REPLY && msg->kind != ENS_MESSAGE_ERROR)
    return;
  if (msg->id && g_hash_table_steal_extended (s->by_core, msg->id, &key, &value))
    {
      g_free (key);
      on_answer (value, msg);
    }
}

static void
sink_disconnect (gpointer sink_data, const char *reason)
{
  EnsMcpSession *s = sink_data;
  (void) reason;
  /* The daemon stops: answer what is due; the transport closes us. */
  for (GList *l = s->ops; l; l = l->next)
    op_finish (l->data, NULL);
}

static const EnsClientSink session_sink = {
  .struct_size = sizeof (EnsClientSink),
  .deliver = sink_deliver,
  .disconnect = sink_disconnect,
};

/* ------------------------------------------------------------------ methods */

static void
initialize (EnsMcpSession *s, Op *op, JsonObject *params)
{
  const char *wanted = ens_member_string (params, "protocolVersion");
  JsonObject *obj, *caps, *tools, *res, *info;
  g_autoptr (JsonNode) result = ens_node_new_object (&obj);

  if (wanted == NULL)
    {
      ens_mcp_op_error (op, ENS_JSONRPC_INVALID_PARAMS, "params.protocolVersion must be a string", NULL);
      return;
    }
  json_object_set_string_member (obj, "protocolVersion",
                                 g_strv_contains (versions, wanted) ? wanted : ENS_MCP_PROTOCOL_VERSION);
  caps = json_object_new ();
  tools = json_object_new ();
  json_object_set_boolean_member (tools, "listChanged", TRUE);
  json_object_set_object_member (caps, "tools", tools);
  res = json_object_new ();
  json_object_set_boolean_member (res, "subscribe", TRUE);
  json_object_set_boolean_member (res, "listChanged", FALSE);
  json_object_set_object_member (caps, "resources", res);
  json_object_set_object_member (obj, "capabilities", caps);
  info = json_object_new ();
  json_object_set_string_member (info, "name", "ensemble");
  json_object_set_string_member (info, "title", "Ensemble");
  json_object_set_string_member (info, "version", "0.1.0");
  json_object_set_object_member (obj, "serverInfo", info);
  json_object_set_string_member (obj, "instructions",
                                 "Each agent on the Ensemble bus serves its actions as tools named AGENT.ACTION; "
                                 "\"complete\" asks an LLM through Ensemble's router. Resources are agents' state "
                                 "(ensemble://kv/AGENT/KEY) and sessions (ensemble://sessions/ID).");
  if (!s->initialized)
    {
      s->initialized = TRUE;
      ens_mcp_core_internal (s, "subscribe", "ensemble.agent.*");
    }
  ens_mcp_op_result (op, result);
}

static void
cancelled (EnsMcpSession *s, JsonObject *params)
{
  JsonNode *id = ens_member (params, "requestId");

  if (id == NULL || !JSON_NODE_HOLDS_VALUE (id))
    return;
  for (GList *l = s->ops; l; l = l->next)
    {
      Op *op = l->data;
      if (!op->done && op->rpc_id && json_node_equal (op->rpc_id, id))
        {
          if (op->completion_id)
            {
              JsonObject *obj;
              g_autoptr (JsonNode) data = ens_node_new_object (&obj);
              json_object_set_string_member (obj, "request_id", op->completion_id);
              Op *c = ens_mcp_op_new (s, OP_INTERNAL, NULL, NULL, NULL);
              c->done = TRUE;
              ens_mcp_core (c, NULL, "complete.cancel", data, 0);
            }
          op_finish (op, NULL);
          op_release (op);
          return;
        }
    }
}

static void
dispatch (EnsMcpSession *s, const char *method, JsonObject *params, Op *op)
{
  if (strcmp (method, "initialize") == 0)
    initialize (s, op, params);
  else if (strcmp (method, "ping") == 0)
    ens_mcp_op_result (op, NULL);
  else if (strcmp (method, "tools/list") == 0)
    {
      op->kind = OP_TOOLS_LIST;
      ens_mcp_core (op, NULL, "agents.list", NULL, 0);
    }
  else if (strcmp (method, "tools/call") == 0)
    {
      op->kind = OP_TOOLS_CALL;
      tools_call (s, op, params);
    }
  else if (strcmp (method, "resources/list") == 0)
    {
      op->kind = OP_RES_LIST;
      op->items = json_array_new ();
      ens_mcp_core (op, NULL, "sessions.list", NULL, 0);
      ens_mcp_core (op, NULL, "agents.list", NULL, 0);
    }
  else if (strcmp (method, "resources/templates/list") == 0)
    ens_mcp_resource_templates (op);
  else if (strcmp (method, "resources/read") == 0 || strcmp (method, "resources/subscribe") == 0 ||
           strcmp (method, "resources/unsubscribe") == 0)
    ens_mcp_resources (s, op, method, params);
  else
    {
      g_autofree char *text = g_strdup_printf ("Method not found: %s", method);
      ens_mcp_op_error (op, ENS_JSONRPC_METHOD_NOT_FOUND, text, NULL);
    }
}

void
ens_mcp_session_handle (EnsMcpSession *s, JsonNode *msg, EnsMcpAnswerFunc answer, gpointer answer_data)
{
  JsonNode *id;
  const char *method, *why = NULL;
  JsonObject *params;
  Op *op;

  switch (ens_jsonrpc_classify (msg, &id, &method, &params, &why))
    {
    case ENS_JSONRPC_INVALID:
      {
        g_autoptr (JsonNode) response = ens_jsonrpc_error (id, ENS_JSONRPC_INVALID_REQUEST, why, NULL);
        answer (response, answer_data);
        return;
      }
    case ENS_JSONRPC_RESPONSE: /* this server asks its peers nothing */
      answer (NULL, answer_data);
      return;
    case ENS_JSONRPC_NOTIFICATION:
      if (strcmp (method, "notifications/cancelled") == 0)
        cancelled (s, params);
      answer (NULL, answer_data);
      return;
    case ENS_JSONRPC_REQUEST:
      break;
    }
  op = ens_mcp_op_new (s, OP_INTERNAL, id, answer, answer_data);
  op->outstanding++; /* held while dispatched */
  dispatch (s, method, params, op);
  op_unhold (op);
}

void
ens_mcp_session_handle_text (EnsMcpSession *s, const char *text, gsize len, EnsMcpAnswerFunc answer,
                             gpointer answer_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) msg = s->host->json_parse (text, len, &error);

  if (msg == NULL)
    {
      g_autofree char *why = g_strdup_printf ("Parse error: %s", error->message);
      g_autoptr (JsonNode) response = ens_jsonrpc_error (NULL, ENS_JSONRPC_PARSE_ERROR, why, NULL);
      answer (response, answer_data);
      return;
    }
  ens_mcp_session_handle (s, msg, answer, answer_data);
}

void
ens_mcp_session_forget (EnsMcpSession *s, gpointer answer_data)
{
  GList *l = s->ops;

  while (l)
    {
      Op *op = l->data;
      l = l->next;
      if (!op->done && op->answer_data == answer_data)
        {
          op->answer = NULL;
          if (op->completion_id)
            {
              JsonObject *obj;
              g_autoptr (JsonNode) data = ens_node_new_object (&obj);
              Op *c = ens_mcp_op_new (s, OP_INTERNAL, NULL, NULL, NULL);
              json_object_set_string_member (obj, "request_id", op->completion_id);
              c->done = TRUE;
              ens_mcp_core (c, NULL, "complete.cancel", data, 0);
            }
          op_finish (op, NULL);
          op_release (op);
        }
    }
}

/* ------------------------------------------------------------------ lifetime */

EnsMcpSession *
ens_mcp_session_new (const EnsHost *host, EnsPlugin *self, guint32 flags, const char *peer,
                     const EnsMcpLimits *limits, EnsMcpSendFunc send, gpointer send_data)
{
  EnsMcpSession *s = g_new0 (EnsMcpSession, 1);

  s->host = host;
  s->self = self;
  s->limits = *limits;
  s->send = send;
  s->send_data = send_data;
  s->id = g_uuid_string_random ();
  s->by_core = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  s->by_completion = g_hash_table_new (g_str_hash, g_str_equal);
  s->subscriptions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  s->complete_schema = ens_schema_new_from_text (complete_schema_text, NULL);
  g_assert (s->complete_schema);
  s->client = host->client_new (self, &session_sink, s, flags, peer);
  return s;
}

const char *
ens_mcp_session_id (EnsMcpSession *s)
{
  return s->id;
}

gboolean
ens_mcp_session_initialized (EnsMcpSession *s)
{
  return s->initialized;
}

guint
ens_mcp_session_pending (EnsMcpSession *s)
{
  guint n = 0;

  for (GList *l = s->ops; l; l = l->next)
    if (!((Op *) l->data)->done && ((Op *) l->data)->answer)
      n++;
  return n;
}

void
ens_mcp_session_set_send (EnsMcpSession *s, EnsMcpSendFunc send, gpointer send_data)
{
  s->send = send;
  s->send_data = send_data;
}

void
ens_mcp_session_close (EnsMcpSession *s)
{
  s->closing = TRUE;
  for (GList *l = s->ops; l; l = l->next)
    op_finish (l->data, NULL);
  /* No deliver() after this: answers still out are dropped with it. */
  s->host->client_close (s->client);
  g_list_free_full (s->ops, (GDestroyNotify) op_free);
  g_hash_table_unref (s->by_core);
  g_hash_table_unref (s->by_completion);
  g_hash_table_unref (s->subscriptions);
  ens_schema_unref (s->complete_schema);
  g_free (s->id);
  g_free (s);
}
