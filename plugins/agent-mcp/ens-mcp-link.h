/* ens-mcp-link.h — how agent-mcp reaches one MCP server: a link carries
 * JSON-RPC messages both ways and says when the server is gone.  Two kinds:
 * a command speaking MCP's stdio transport (ens-mcp-link-stdio.c) and a
 * Streamable HTTP URL (ens-mcp-link-http.c).  Private to agent-mcp. */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

typedef struct _EnsMcpLink EnsMcpLink;

/* A message from the server, (transfer none). */
typedef void (*EnsMcpLinkMessageFunc) (JsonNode *msg, gpointer user_data);
/* The server is gone (exited, closed, unreachable); @why for a person.
 * Called at most once; no message follows. */
typedef void (*EnsMcpLinkClosedFunc) (const char *why, gpointer user_data);

typedef struct {
  void (*send) (EnsMcpLink *link, JsonNode *msg);
  void (*free) (EnsMcpLink *link);
} EnsMcpLinkClass;

struct _EnsMcpLink {
  const EnsMcpLinkClass *klass;
  EnsMcpLinkMessageFunc on_message;
  EnsMcpLinkClosedFunc on_closed;
  gpointer user_data;
  gsize max_message; /* a longer message from the server closes the link */
  /* How a message from the server is parsed: host->json_parse, whose depth
   * limit a hostile server cannot get around.  Set by the caller. */
  JsonNode *(*parse) (const char *text, gsize len, GError **error);
};

/* Starts @argv (transfer none) with stdin/stdout as the link; NULL with
 * @error when it cannot start. */
EnsMcpLink *ens_mcp_link_stdio_new (char **argv, gsize max_message, EnsMcpLinkMessageFunc on_message,
                                    EnsMcpLinkClosedFunc on_closed, gpointer user_data, GError **error);
/* Posts to @url; @token (may be NULL) goes as a bearer token. */
EnsMcpLink *ens_mcp_link_http_new (const char *url, const char *token, gsize max_message,
                                   EnsMcpLinkMessageFunc on_message, EnsMcpLinkClosedFunc on_closed,
                                   gpointer user_data, GError **error);

/* @msg (transfer none). */
void ens_mcp_link_send (EnsMcpLink *link, JsonNode *msg);
/* Ends the link (a process is killed); no callback follows. */
void ens_mcp_link_free (EnsMcpLink *link);

G_END_DECLS
