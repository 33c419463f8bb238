/* ens-http-routes-mcp.c — the Model Context Protocol's Streamable HTTP
 * transport at /mcp (MCP 2025-11-25): POST one JSON-RPC message (a request
 * is answered with its JSON response, anything else with 202), GET a
 * Server-Sent Events stream of the session's notifications, DELETE to end
 * the session.  Sessions are named by Mcp-Session-Id, given out with the
 * answer to initialize.  What MCP means is in plugins/common/mcp; this file
 * carries the messages. */
#include "ens-http.h"
#include "ens-host-config.h"
#include "ens-jsonrpc.h"
#include "ens-json-util.h"
#include "ens-mcp-server.h"

#include <string.h>

#define SESSION_HEADER "Mcp-Session-Id"
#define MAX_SESSIONS 256

typedef struct {
  EnsHttpMcp *mcp;
  EnsMcpSession *session;
  EnsHttpCall *stream; /* the GET stream notifications go to, or NULL */
  gint64 last_used_us;
} McpHttpSession;

struct _EnsHttpMcp {
  GHashTable *sessions; /* Mcp-Session-Id -> McpHttpSession */
};

static void
session_free (McpHttpSession *ms)
{
  if (ms->stream)
    {
      ens_http_on_disconnect (ms->stream, NULL, NULL);
      ens_http_sse_end (ms->stream);
    }
  ens_mcp_session_close (ms->session);
  g_free (ms);
}

EnsHttpMcp *
ens_http_mcp_new (void)
{
  EnsHttpMcp *mcp = g_new0 (EnsHttpMcp, 1);
  mcp->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) session_free);
  return mcp;
}

void
ens_http_mcp_free (EnsHttpMcp *mcp)
{
  if (mcp == NULL)
    return;
  g_hash_table_unref (mcp->sessions);
  g_free (mcp);
}

guint
ens_http_mcp_n_sessions (EnsHttpMcp *mcp)
{
  return mcp ? g_hash_table_size (mcp->sessions) : 0;
}

/* ------------------------------------------------------------------ answers */

static void
reply_rpc (EnsHttpCall *call, guint status, JsonNode *msg)
{
  ens_http_reply_json (call, status, msg);
}

static void
reply_rpc_error (EnsHttpCall *call, guint status, gint code, const char *message)
{
  g_autoptr (JsonNode) msg = ens_jsonrpc_error (NULL, code, message, NULL);
  reply_rpc (call, status, msg);
}

static void
answered (JsonNode *response, gpointer data)
{
  EnsHttpCall *call = data;

  if (response == NULL)
    ens_http_reply_text (call, 202, "application/json", "");
  else
    {
      /* A malformed message is a bad request; an answered one is 200. */
      JsonObject *err = ens_member_object (json_node_get_object (response), "error");
      gint64 code = ens_member_int (err, "code", 0);
      reply_rpc (call, code == ENS_JSONRPC_PARSE_ERROR || code == ENS_JSONRPC_INVALID_REQUEST ? 400 : 200, response);
    }
}

static void
forget (EnsHttpCall *call, gpointer data)
{
  McpHttpSession *ms = data;
  ens_mcp_session_forget (ms->session, call);
}

static void
notify_stream (JsonNode *msg, gpointer data)
{
  McpHttpSession *ms = data;
  g_autofree char *text = NULL;

  if (ms->stream == NULL)
    return; /* no stream open: MCP lets the server drop it */
  text = ens_jsonrpc_to_string (msg);
  ens_http_sse_send (ms->stream, "message", text);
}

/* ------------------------------------------------------------------ sessions */

static EnsHttpMcp *
mcp_of (EnsHttpCall *call)
{
  return ens_http_mcp (ens_http_instance (call));
}

/* The session the request names; answers 400/404 and returns NULL if none. */
static McpHttpSession *
session_of (EnsHttpCall *call)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (ens_http_message (call));
  const char *id = soup_message_headers_get_one (h, SESSION_HEADER);
  McpHttpSession *ms;

  if (id == NULL)
    {
      reply_rpc_error (call, 400, ENS_JSONRPC_INVALID_REQUEST,
                       "Bad Request: no Mcp-Session-Id header (send initialize first)");
      return NULL;
    }
  ms = g_hash_table_lookup (mcp_of (call)->sessions, id);
  if (ms == NULL)
    {
      reply_rpc_error (call, 404, ENS_JSONRPC_INVALID_REQUEST, "Session not found: it ended or never was; initialize again");
      return NULL;
    }
  ms->last_used_us = g_get_monotonic_time ();
  soup_message_headers_replace (soup_server_message_get_response_headers (ens_http_message (call)), SESSION_HEADER, id);
  return ms;
}

/* Makes room: the session used longest ago without a stream goes. */
static void
evict (EnsHttpMcp *mcp)
{
  GHashTableIter iter;
  gpointer key, value;
  const char *oldest = NULL;
  gint64 when = G_MAXINT64;

  g_hash_table_iter_init (&iter, mcp->sessions);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      McpHttpSession *ms = value;
      if (ms->stream == NULL && ms->last_used_us < when)
        {
          when = ms->last_used_us;
          oldest = key;
        }
    }
  if (oldest)
    g_hash_table_remove (mcp->sessions, oldest);
}

static McpHttpSession *
session_new (EnsHttpCall *call)
{
  const EnsHost *host = ens_http_host (call);
  EnsPlugin *self = ens_http_self (call);
  EnsHttpMcp *mcp = mcp_of (call);
  McpHttpSession *ms = g_new0 (McpHttpSession, 1);
  EnsMcpLimits limits = {
    .max_result_bytes = ens_host_config_uint (host, self, "mcp-max-result-bytes", 1048576),
    .tool_timeout_ms = ens_host_config_uint (host, self, "mcp-tool-timeout-ms", 0),
  };

  if (g_hash_table_size (mcp->sessions) >= MAX_SESSIONS)
    evict (mcp);
  ms->mcp = mcp;
  ms->last_used_us = g_get_monotonic_time ();
  ms->session = ens_mcp_session_new (host, self, 0, "mcp-http", &limits, notify_stream, ms);
  g_hash_table_insert (mcp->sessions, g_strdup (ens_mcp_session_id (ms->session)), ms);
  soup_message_headers_replace (soup_server_message_get_response_headers (ens_http_message (call)), SESSION_HEADER,
                                ens_mcp_session_id (ms->session));
  return ms;
}

static gboolean
is_initialize (JsonNode *msg)
{
  const char *method = NULL;
  return ens_jsonrpc_classify (msg, NULL, &method, NULL, NULL) == ENS_JSONRPC_REQUEST &&
         strcmp (method, "initialize") == 0;
}

/* ------------------------------------------------------------------ routes */

static void
route_post (EnsHttpCall *call)
{
  SoupMessageBody *body = soup_server_message_get_request_body (ens_http_message (call));
  SoupMessageHeaders *h = soup_server_message_get_request_headers (ens_http_message (call));
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) msg = NULL;
  McpHttpSession *ms;

  msg = ens_http_host (call)->json_parse (body->data ? body->data : "", body->length, &error);
  if (msg == NULL)
    {
      g_autofree char *text = g_strdup_printf ("Parse error: %s", error->message);
      reply_rpc_error (call, 400, ENS_JSONRPC_PARSE_ERROR, text);
      return;
    }
  if (is_initialize (msg) && soup_message_headers_get_one (h, SESSION_HEADER) == NULL)
    ms = session_new (call);
  else if ((ms = session_of (call)) == NULL)
    return;
  ens_http_on_disconnect (call, forget, ms);
  ens_mcp_session_handle (ms->session, msg, answered, call);
  ens_http_pause (call); /* unless answered already */
}

static void
stream_gone (EnsHttpCall *call, gpointer data)
{
  McpHttpSession *ms = data;
  if (ms->stream == call)
    ms->stream = NULL;
}

static void
route_get (EnsHttpCall *call)
{
  McpHttpSession *ms = session_of (call);

  if (ms == NULL)
    return;
  if (ms->stream)
    {
      EnsHttpCall *old = ms->stream;
      ms->stream = NULL;
      ens_http_on_disconnect (old, NULL, NULL);
      ens_http_sse_end (old);
    }
  ens_http_sse_begin (call);
  ms->stream = call;
  ens_http_on_disconnect (call, stream_gone, ms);
  ens_http_sse_comment (call, "mcp"); /* the headers leave now */
}

static void
route_delete (EnsHttpCall *call)
{
  McpHttpSession *ms = session_of (call);

  if (ms == NULL)
    return;
  g_hash_table_remove (ms->mcp->sessions, ens_mcp_session_id (ms->session));
  ens_http_reply_text (call, 200, "application/json", "{}");
}

static const char post_schema[] =
  "{\"type\":\"object\",\"required\":[\"jsonrpc\"],\"properties\":{\"jsonrpc\":{\"const\":\"2.0\"},"
  "\"id\":{\"type\":[\"string\",\"integer\"]},\"method\":{\"type\":\"string\"},\"params\":{\"type\":\"object\"}}}";

const EnsHttpRoute ens_http_routes_mcp[] = {
  { "POST", "/mcp", route_post, "mcp",
    "MCP Streamable HTTP: one JSON-RPC message (initialize first; then send its Mcp-Session-Id)", post_schema, FALSE },
  { "GET", "/mcp", route_get, "mcp", "MCP Streamable HTTP: the session's notifications as Server-Sent Events", NULL,
    FALSE },
  { "DELETE", "/mcp", route_delete, "mcp", "MCP Streamable HTTP: ends the session", NULL, FALSE },
  { NULL },
};
