/* ens-mcp-server.h — Ensemble as a Model Context Protocol server (the
 * static library plugins/common/mcp), spoken by transport-http at /mcp
 * (Streamable HTTP) and by transport-mcp on mcp.sock (newline-delimited,
 * as MCP's stdio; `ensemblectl mcp` bridges a desktop client's stdio to it).
 *
 * One EnsMcpSession is one MCP session: one client of the host (so replies,
 * completion results and subscribed events reach it alone).  It serves
 *   tools      each agent action as "AGENT.ACTION" with its input schema,
 *              and "complete" (a completion through the router);
 *              notifications/tools/list_changed when agents come and go;
 *   resources  ensemble://kv/AGENT/KEY (agent state) and
 *              ensemble://sessions/ID (a session's record and transcript),
 *              with resources/subscribe → notifications/resources/updated;
 *   ping, and notifications/cancelled for any request in flight.
 * The transport only carries messages: every JSON-RPC text goes to
 * ens_mcp_session_handle_text(), and what comes back goes to the peer. */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

typedef struct _EnsMcpSession EnsMcpSession;

/* A message for the peer outside any answer (a notification); @msg
 * (transfer none). */
typedef void (*EnsMcpSendFunc) (JsonNode *msg, gpointer user_data);
/* The one answer to a message handed to ens_mcp_session_handle*(): the
 * response (transfer none), or NULL when none is due (a notification, a
 * response, a request the peer cancelled, or the session closed). */
typedef void (*EnsMcpAnswerFunc) (JsonNode *response, gpointer user_data);

typedef struct {
  gsize max_result_bytes;  /* a tool result's or resource's text is cut there (and says so) */
  guint32 tool_timeout_ms; /* deadline of a tool call; 0: the daemon's default */
} EnsMcpLimits;

/* (transfer full) a session served as a client of @self (a transport) with
 * @flags (EnsClientFlags) and @peer (for listings); @send (may be NULL:
 * notifications are dropped) with @send_data borrowed until close. */
EnsMcpSession *ens_mcp_session_new (const EnsHost *host, EnsPlugin *self, guint32 flags, const char *peer,
                                    const EnsMcpLimits *limits, EnsMcpSendFunc send, gpointer send_data);
/* (transfer none) a random id for Mcp-Session-Id. */
const char *ens_mcp_session_id (EnsMcpSession *session);
/* Whether initialize has been answered. */
gboolean ens_mcp_session_initialized (EnsMcpSession *session);
/* Sets where notifications go from now on (NULL: dropped). */
void ens_mcp_session_set_send (EnsMcpSession *session, EnsMcpSendFunc send, gpointer send_data);

/* Handles one JSON-RPC message (transfer none); @answer is called exactly
 * once, maybe before this returns.  Malformed JSON or JSON-RPC is answered
 * with its error (-32700, -32600) and nothing else happens. */
void ens_mcp_session_handle (EnsMcpSession *session, JsonNode *msg, EnsMcpAnswerFunc answer, gpointer answer_data);
void ens_mcp_session_handle_text (EnsMcpSession *session, const char *text, gsize len, EnsMcpAnswerFunc answer,
                                  gpointer answer_data);
/* @answer_data is going away (its HTTP request ended): answers still due to
 * it are dropped, and their work cancelled where it can be. */
void ens_mcp_session_forget (EnsMcpSession *session, gpointer answer_data);

/* How many requests still owe an answer (a transport whose peer stopped
 * sending waits for them before it closes). */
guint ens_mcp_session_pending (EnsMcpSession *session);

/* Ends the session: answers still due are called with NULL, its client
 * closes, and @session is freed. */
void ens_mcp_session_close (EnsMcpSession *session);

G_END_DECLS
