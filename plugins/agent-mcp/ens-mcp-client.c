/* ens-mcp-client.c — one MCP server mounted as a bus agent (see
 * ens-mcp-client.h): the MCP handshake, the tool list, tools/call for each
 * request, and the server's life (restart with backoff). */
#include "ens-mcp-client.h"
#include "ens-jsonrpc.h"
#include "ens-json-util.h"
#include "ens-mcp-link.h"

#include <string.h>

#define BACKOFF_MAX_MS 30000
#define HEALTHY_US (30 * G_USEC_PER_SEC)

typedef enum { STATE_STARTING, STATE_READY, STATE_UNAVAILABLE } State;

static const char *const state_names[] = { "starting", "ready", "unavailable" };

typedef enum { OP_INITIALIZE, OP_LIST, OP_CALL } OpKind;

typedef struct {
  OpKind kind;
  EnsResponder *responder; /* OP_CALL */
  char *tool;
} Pending;

struct _EnsMcpClient {
  const EnsHost *host;
  EnsPlugin *self;
  char *name, *target;
  gboolean http;
  EnsMcpClientLimits limits;
  EnsMcpLink *link;
  State state;
  GHashTable *pending; /* gint64 id -> Pending */
  gint64 next_id;
  JsonArray *tools;     /* as listed by the server, all pages */
  JsonArray *listing;   /* pages of a tools/list in progress */
  char *server_name, *instructions, *last_error;
  guint restart_id, init_timeout_id;
  guint backoff_ms, restarts;
  gint64 up_since_us;
  gboolean registered;
};

static void start (EnsMcpClient *c);
static void lost (EnsMcpClient *c, const char *why);

static void
pending_free (Pending *p)
{
  g_free (p->tool);
  g_free (p);
}

/* ------------------------------------------------------------------ the agent */

static void handle (gpointer data, EnsMessage *request, EnsResponder *responder);

/* {description, tools, mcp: {...}} as listed with the agent; @with_schemas
 * FALSE leaves the input schemas out. */
static JsonNode *
agent_info (EnsMcpClient *c, gboolean with_schemas)
{
  JsonObject *obj, *mcp = json_object_new ();
  JsonNode *node = ens_node_new_object (&obj);
  JsonArray *tools = json_array_new ();
  g_autofree char *desc = g_strdup_printf ("MCP server %s (%s)%s%s", c->server_name ? c->server_name : c->name,
                                           c->target, c->instructions ? ": " : "",
                                           c->instructions ? c->instructions : "");

  for (guint i = 0; c->tools && i < json_array_get_length (c->tools); i++)
    {
      JsonObject *t = ens_array_object (c->tools, i), *out;
      const char *name = ens_member_string (t, "name");
      if (name == NULL)
        continue;
      out = json_object_new ();
      json_object_set_string_member (out, "name", name);
      if (ens_member_string (t, "description"))
        json_object_set_string_member (out, "description", ens_member_string (t, "description"));
      if (with_schemas && ens_member_object (t, "inputSchema"))
        json_object_set_member (out, "input_schema", json_node_copy (ens_member (t, "inputSchema")));
      json_array_add_object_element (tools, out);
    }
  json_object_set_string_member (obj, "description", desc);
  json_object_set_array_member (obj, "tools", tools);
  json_object_set_string_member (mcp, "target", c->target);
  json_object_set_string_member (mcp, "transport", c->http ? "streamable-http" : "stdio");
  json_object_set_string_member (mcp, "state", state_names[c->state]);
  if (c->last_error)
    json_object_set_string_member (mcp, "last_error", c->last_error);
  json_object_set_int_member (mcp, "restarts", c->restarts);
  json_object_set_object_member (obj, "mcp", mcp);
  return node;
}

/* Registers the agent, or updates what it lists. */
static void
publish_agent (EnsMcpClient *c)
{
  g_autoptr (JsonNode) info = agent_info (c, TRUE);

  if (c->host->agent_add (c->self, c->name, NULL, info, FALSE, handle, c))
    {
      c->registered = TRUE;
      return;
    }
  /* A schema this daemon cannot check: the tools without schemas. */
  g_clear_pointer (&info, json_node_unref);
  info = agent_info (c, FALSE);
  if (c->host->agent_add (c->self, c->name, NULL, info, FALSE, handle, c))
    {
      ENS_LOG (c->host, c->self, G_LOG_LEVEL_WARNING,
               "MCP server %s: its tools' input schemas are not checked (one is not a schema this daemon reads)",
               c->name);
      c->registered = TRUE;
    }
  else
    ENS_LOG (c->host, c->self, G_LOG_LEVEL_WARNING, "MCP server %s: agent %s cannot be registered (name taken?)",
             c->name, c->name);
}

/* ------------------------------------------------------------------ messages */

static gint64
send_request (EnsMcpClient *c, const char *method, JsonNode *params, Pending *p)
{
  gint64 id = ++c->next_id;
  g_autoptr (JsonNode) msg = ens_jsonrpc_request (id, method, params);

  g_hash_table_insert (c->pending, g_memdup2 (&id, sizeof id), p);
  ens_mcp_link_send (c->link, msg);
  return id;
}

static void
send_notification (EnsMcpClient *c, const char *method)
{
  g_autoptr (JsonNode) msg = ens_jsonrpc_notification (method, NULL);
  ens_mcp_link_send (c->link, msg);
}

static void
list_tools (EnsMcpClient *c, const char *cursor)
{
  Pending *p = g_new0 (Pending, 1);
  JsonObject *obj;
  g_autoptr (JsonNode) params = ens_node_new_object (&obj);

  p->kind = OP_LIST;
  if (cursor)
    json_object_set_string_member (obj, "cursor", cursor);
  else
    {
      g_clear_pointer (&c->listing, json_array_unref);
      c->listing = json_array_new ();
    }
  send_request (c, "tools/list", params, p);
}

/* The text of a CallToolResult's content, joined. */
static char *
content_text (JsonObject *result)
{
  JsonArray *content = ens_member_array (result, "content");
  GString *s = g_string_new (NULL);

  for (guint i = 0; content && i < json_array_get_length (content); i++)
    {
      JsonObject *item = ens_array_object (content, i);
      const char *type = ens_member_string_or (item, "type", "");
      if (strcmp (type, "text") == 0 && ens_member_string (item, "text"))
        g_string_append (s, ens_member_string (item, "text"));
      else if (strcmp (type, "resource") == 0 && ens_member_object (item, "resource"))
        g_string_append (s, ens_member_string_or (ens_member_object (item, "resource"), "text", ""));
      else if (*type)
        g_string_append_printf (s, "[%s]", type);
    }
  return g_string_free (s, FALSE);
}

static void
call_answered (EnsMcpClient *c, Pending *p, JsonObject *result, JsonObject *error)
{
  if (error)
    {
      gint64 code = ens_member_int (error, "code", 0);
      const char *message = ens_member_string_or (error, "message", "the MCP server refused the call");
      JsonObject *d;
      g_autoptr (JsonNode) details = ens_node_new_object (&d);
      json_object_set_int_member (d, "mcp_code", code);
      json_object_set_string_member (d, "tool", p->tool);
      if (ens_member (error, "data"))
        json_object_set_member (d, "data", json_node_copy (ens_member (error, "data")));
      c->host->respond_error (p->responder,
                              code == ENS_JSONRPC_INVALID_PARAMS ? ENS_ERR_INVALID_PARAMETERS
                              : code == ENS_JSONRPC_METHOD_NOT_FOUND ? ENS_ERR_UNKNOWN_ACTION
                                                                      : "MCP_ERROR",
                              message, details);
    }
  else if (result == NULL)
    c->host->respond_error (p->responder, "MCP_ERROR", "the MCP server answered with no result", NULL);
  else
    {
      g_autofree char *text = content_text (result);
      JsonObject *out;
      g_autoptr (JsonNode) data = ens_node_new_object (&out);
      g_autofree char *whole = NULL;
      gsize size;

      if (ens_member_bool (result, "isError", FALSE))
        {
          JsonObject *d;
          g_autoptr (JsonNode) details = ens_node_new_object (&d);
          json_object_set_string_member (d, "tool", p->tool);
          json_object_set_member (d, "content", json_node_copy (ens_member (result, "content")));
          c->host->respond_error (p->responder, "TOOL_ERROR", *text ? text : "the tool failed", details);
          p->responder = NULL;
          return;
        }
      json_object_set_string_member (out, "text", text);
      if (ens_member (result, "content"))
        json_object_set_member (out, "content", json_node_copy (ens_member (result, "content")));
      if (ens_member_object (result, "structuredContent"))
        json_object_set_member (out, "structuredContent", json_node_copy (ens_member (result, "structuredContent")));
      whole = c->host->json_to_string (data);
      size = strlen (whole);
      if (c->limits.max_result_bytes && size > c->limits.max_result_bytes)
        {
          /* Over the cap: the text alone, cut on a character boundary. */
          gsize keep = MIN (strlen (text), c->limits.max_result_bytes);
          const char *end = g_utf8_find_prev_char (text, text + keep + 1);
          g_autofree char *cut = g_strdup_printf ("%.*s\n[truncated: the result is %" G_GSIZE_FORMAT
                                                  " bytes, over the cap of %" G_GSIZE_FORMAT " bytes]",
                                                  (int) (end ? end - text : 0), text, size,
                                                  c->limits.max_result_bytes);
          JsonObject *small;
          g_autoptr (JsonNode) capped = ens_node_new_object (&small);
          json_object_set_string_member (small, "text", cut);
          json_object_set_boolean_member (small, "truncated", TRUE);
          json_object_set_int_member (small, "bytes", size);
          c->host->respond (p->responder, capped);
        }
      else
        c->host->respond (p->responder, data);
    }
  p->responder = NULL;
}

static void
initialized (EnsMcpClient *c, JsonObject *result)
{
  JsonObject *info = ens_member_object (result, "serverInfo");

  g_clear_handle_id (&c->init_timeout_id, g_source_remove);
  g_free (c->server_name);
  c->server_name = g_strdup (ens_member_string (info, "title") ? ens_member_string (info, "title")
                                                                  : ens_member_string (info, "name"));
  g_free (c->instructions);
  c->instructions = g_strdup (ens_member_string (result, "instructions"));
  send_notification (c, "notifications/initialized");
  list_tools (c, NULL);
}

static void
listed (EnsMcpClient *c, JsonObject *result)
{
  JsonArray *tools = ens_member_array (result, "tools");
  const char *cursor = ens_member_string (result, "nextCursor");

  for (guint i = 0; tools && i < json_array_get_length (tools); i++)
    if (ens_array_object (tools, i))
      json_array_add_element (c->listing, json_node_copy (json_array_get_element (tools, i)));
  if (cursor && *cursor && json_array_get_length (c->listing) < 10000)
    {
      list_tools (c, cursor);
      return;
    }
  g_clear_pointer (&c->tools, json_array_unref);
  c->tools = g_steal_pointer (&c->listing);
  if (c->state != STATE_READY)
    {
      c->state = STATE_READY;
      c->up_since_us = g_get_monotonic_time ();
      g_clear_pointer (&c->last_error, g_free);
      ENS_LOG (c->host, c->self, G_LOG_LEVEL_MESSAGE, "MCP server %s ready: %u tools", c->name,
               json_array_get_length (c->tools));
    }
  publish_agent (c);
}

static void
on_response (EnsMcpClient *c, JsonNode *id, JsonObject *obj)
{
  gint64 n;
  Pending *p;
  JsonObject *result = ens_member_object (obj, "result");
  JsonObject *error = ens_member_object (obj, "error");

  gpointer key, value;

  if (!ens_jsonrpc_id_int (id, &n) || !g_hash_table_steal_extended (c->pending, &n, &key, &value))
    return; /* nothing asked that */
  g_free (key);
  p = value;
  switch (p->kind)
    {
    case OP_INITIALIZE:
      if (result)
        initialized (c, result);
      else
        {
          g_autofree char *why = g_strdup_printf ("it refused initialize: %s",
                                                  ens_member_string_or (error, "message", "?"));
          lost (c, why);
        }
      break;
    case OP_LIST:
      if (result)
        listed (c, result);
      break;
    case OP_CALL:
      call_answered (c, p, result, error);
      break;
    }
  pending_free (p);
}

static void
on_message (JsonNode *msg, gpointer data)
{
  EnsMcpClient *c = data;
  JsonNode *id;
  const char *method;
  JsonObject *params;

  switch (ens_jsonrpc_classify (msg, &id, &method, &params, NULL))
    {
    case ENS_JSONRPC_RESPONSE:
      on_response (c, id, json_node_get_object (msg));
      break;
    case ENS_JSONRPC_NOTIFICATION:
      if (strcmp (method, "notifications/tools/list_changed") == 0 && c->state == STATE_READY)
        list_tools (c, NULL);
      break;
    case ENS_JSONRPC_REQUEST:
      {
        /* The server asks: ping is answered; nothing else was offered. */
        g_autoptr (JsonNode) answer = NULL;
        if (strcmp (method, "ping") == 0)
          answer = ens_jsonrpc_result (id, NULL);
        else
          {
            g_autofree char *text = g_strdup_printf ("Method not found: %s (Ensemble offers no client features)", method);
            answer = ens_jsonrpc_error (id, ENS_JSONRPC_METHOD_NOT_FOUND, text, NULL);
          }
        ens_mcp_link_send (c->link, answer);
        break;
      }
    case ENS_JSONRPC_INVALID:
      break;
    }
}

/* ------------------------------------------------------------------ life */

static gboolean
restart_cb (gpointer data)
{
  EnsMcpClient *c = data;

  c->restart_id = 0;
  start (c);
  return G_SOURCE_REMOVE;
}

/* The server is gone: calls in flight fail, the agent is marked
 * unavailable, a restart is scheduled. */
static void
lost (EnsMcpClient *c, const char *why)
{
  GHashTableIter iter;
  gpointer value;

  g_free (c->last_error);
  c->last_error = g_strdup (why);
  g_clear_handle_id (&c->init_timeout_id, g_source_remove);
  g_hash_table_iter_init (&iter, c->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Pending *p = value;
      if (p->kind == OP_CALL && p->responder)
        {
          g_autofree char *text = g_strdup_printf ("MCP server %s died during the call: %s", c->name, why);
          c->host->respond_error (p->responder, "MCP_SERVER_EXITED", text, NULL);
          p->responder = NULL;
        }
    }
  g_hash_table_remove_all (c->pending);
  g_clear_pointer (&c->link, ens_mcp_link_free);
  if (c->state == STATE_READY && g_get_monotonic_time () - c->up_since_us >= HEALTHY_US)
    c->backoff_ms = c->limits.backoff_ms;
  c->state = STATE_UNAVAILABLE;
  c->restarts++;
  ENS_LOG (c->host, c->self, G_LOG_LEVEL_WARNING, "MCP server %s is unavailable (%s); restarting in %u ms", c->name,
           why, c->backoff_ms);
  if (c->registered)
    publish_agent (c);
  c->restart_id = g_timeout_add (c->backoff_ms, restart_cb, c);
  c->backoff_ms = MIN (c->backoff_ms * 2, MAX (BACKOFF_MAX_MS, c->limits.backoff_ms));
}

static void
on_closed (const char *why, gpointer data)
{
  lost (data, why);
}

static gboolean
init_timeout_cb (gpointer data)
{
  EnsMcpClient *c = data;

  c->init_timeout_id = 0;
  lost (c, "it did not answer initialize in time");
  return G_SOURCE_REMOVE;
}

static void
start (EnsMcpClient *c)
{
  g_autoptr (GError) error = NULL;
  JsonObject *obj, *info;
  g_autoptr (JsonNode) params = ens_node_new_object (&obj);
  Pending *p;

  c->state = STATE_STARTING;
  if (c->http)
    c->link = ens_mcp_link_http_new (c->target, NULL, 64 * 1024 * 1024, on_message, on_closed, c, &error);
  else
    {
      g_auto (GStrv) argv = NULL;
      if (g_shell_parse_argv (c->target, NULL, &argv, &error))
        c->link = ens_mcp_link_stdio_new (argv, 64 * 1024 * 1024, on_message, on_closed, c, &error);
    }
  if (c->link == NULL)
    {
      lost (c, error->message);
      return;
    }
  c->link->parse = c->host->json_parse;
  json_object_set_string_member (obj, "protocolVersion", ENS_MCP_PROTOCOL_VERSION);
  json_object_set_object_member (obj, "capabilities", json_object_new ());
  info = json_object_new ();
  json_object_set_string_member (info, "name", "ensemble");
  json_object_set_string_member (info, "version", "0.1.0");
  json_object_set_object_member (obj, "clientInfo", info);
  p = g_new0 (Pending, 1);
  p->kind = OP_INITIALIZE;
  c->init_timeout_id = g_timeout_add (c->limits.init_timeout_ms, init_timeout_cb, c);
  send_request (c, "initialize", params, p);
}

static void
handle (gpointer data, EnsMessage *request, EnsResponder *responder)
{
  EnsMcpClient *c = data;
  JsonObject *obj;
  g_autoptr (JsonNode) params = ens_node_new_object (&obj);
  Pending *p;

  if (c->state != STATE_READY)
    {
      g_autofree char *text = g_strdup_printf ("MCP server %s is %s%s%s", c->name, state_names[c->state],
                                               c->last_error ? ": " : "", c->last_error ? c->last_error : "");
      c->host->respond_error (responder, ENS_ERR_NOT_AVAILABLE, text, NULL);
      return;
    }
  json_object_set_string_member (obj, "name", request->action);
  json_object_set_member (obj, "arguments", request->data && JSON_NODE_HOLDS_OBJECT (request->data)
                                              ? json_node_copy (request->data)
                                              : ens_node_empty_object ());
  p = g_new0 (Pending, 1);
  p->kind = OP_CALL;
  p->responder = responder;
  p->tool = g_strdup (request->action);
  send_request (c, "tools/call", params, p);
}

EnsMcpClient *
ens_mcp_client_new (const EnsHost *host, EnsPlugin *self, const char *name, const char *target,
                    const EnsMcpClientLimits *limits)
{
  EnsMcpClient *c = g_new0 (EnsMcpClient, 1);

  c->host = host;
  c->self = self;
  c->name = g_strdup (name);
  c->target = g_strdup (target);
  c->http = g_str_has_prefix (target, "http://") || g_str_has_prefix (target, "https://");
  c->limits = *limits;
  c->backoff_ms = c->limits.backoff_ms;
  c->pending = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, (GDestroyNotify) pending_free);
  publish_agent (c); /* listed at once, "starting" */
  start (c);
  return c;
}

JsonNode *
ens_mcp_client_describe (EnsMcpClient *c)
{
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "name", c->name);
  json_object_set_string_member (obj, "target", c->target);
  json_object_set_string_member (obj, "transport", c->http ? "streamable-http" : "stdio");
  json_object_set_string_member (obj, "state", state_names[c->state]);
  json_object_set_int_member (obj, "tools", c->tools ? json_array_get_length (c->tools) : 0);
  json_object_set_int_member (obj, "restarts", c->restarts);
  if (c->last_error)
    json_object_set_string_member (obj, "last_error", c->last_error);
  return node;
}

void
ens_mcp_client_free (EnsMcpClient *c)
{
  GHashTableIter iter;
  gpointer value;

  g_clear_handle_id (&c->restart_id, g_source_remove);
  g_clear_handle_id (&c->init_timeout_id, g_source_remove);
  /* Responders still held are the host's to free at stop. */
  g_hash_table_iter_init (&iter, c->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    ((Pending *) value)->responder = NULL;
  g_hash_table_unref (c->pending);
  g_clear_pointer (&c->link, ens_mcp_link_free);
  if (c->registered)
    c->host->agent_remove (c->self, c->name);
  g_clear_pointer (&c->tools, json_array_unref);
  g_clear_pointer (&c->listing, json_array_unref);
  g_free (c->server_name);
  g_free (c->instructions);
  g_free (c->last_error);
  g_free (c->name);
  g_free (c->target);
  g_free (c);
}
