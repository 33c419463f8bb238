/* ens-mcp-client.h — one configured MCP server mounted as a bus agent
 * (private to agent-mcp).  The server's tools become the agent's actions,
 * with their input schemas; a request to one is a tools/call.  A server
 * that exits is restarted with backoff (backoff_ms doubling to 30 s, back
 * to backoff_ms once it has run for 30 s), its agent kept and marked unavailable
 * meanwhile: requests get NOT_AVAILABLE, calls in flight MCP_SERVER_EXITED.
 * notifications/tools/list_changed refreshes the actions. */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

typedef struct _EnsMcpClient EnsMcpClient;

typedef struct {
  gsize max_result_bytes; /* a tool's answer longer than this is cut, saying so */
  guint32 init_timeout_ms; /* initialize must answer within it */
  guint32 backoff_ms;      /* first wait before a restart (mcp-restart-backoff-ms) */
} EnsMcpClientLimits;

/* (transfer full) agent @name for the server @target: an http:// or
 * https:// URL (Streamable HTTP), else a command line (stdio).  Starts it
 * at once. */
EnsMcpClient *ens_mcp_client_new (const EnsHost *host, EnsPlugin *self, const char *name, const char *target,
                                  const EnsMcpClientLimits *limits);
/* (transfer full) {name, target, transport, state, tools, restarts, last_error?, pid?} */
JsonNode *ens_mcp_client_describe (EnsMcpClient *client);
/* Stops the server and removes the agent; requests it holds are the
 * host's to answer. */
void ens_mcp_client_free (EnsMcpClient *client);

G_END_DECLS
