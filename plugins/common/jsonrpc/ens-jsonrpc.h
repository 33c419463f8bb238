/* ens-jsonrpc.h — JSON-RPC 2.0 messages as the Model Context Protocol uses
 * them (the static library plugins/common/jsonrpc), shared by Ensemble's
 * MCP server (plugins/common/mcp) and its MCP client (plugins/agent-mcp).
 *
 * One message is one JSON object: a request {jsonrpc, id, method, params?},
 * a notification (no id), or a response {jsonrpc, id, result | error}.
 * MCP 2025-11-25 sends no batches. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define ENS_MCP_PROTOCOL_VERSION "2025-11-25"

/* JSON-RPC's error codes, and MCP's. */
#define ENS_JSONRPC_PARSE_ERROR -32700
#define ENS_JSONRPC_INVALID_REQUEST -32600
#define ENS_JSONRPC_METHOD_NOT_FOUND -32601
#define ENS_JSONRPC_INVALID_PARAMS -32602
#define ENS_JSONRPC_INTERNAL_ERROR -32603
#define ENS_MCP_RESOURCE_NOT_FOUND -32002

typedef enum {
  ENS_JSONRPC_INVALID = 0,
  ENS_JSONRPC_REQUEST,
  ENS_JSONRPC_NOTIFICATION,
  ENS_JSONRPC_RESPONSE, /* a result or an error */
} EnsJsonRpcKind;

/* What @msg (transfer none) is.  Out parameters point into @msg (transfer
 * none) and may be NULL: @id (request, response), @method (request,
 * notification), @params (an object, or NULL when absent).  For
 * ENS_JSONRPC_INVALID, @why says what is wrong ("jsonrpc must be \"2.0\"");
 * @id is still set when the message had a usable one, so the error can
 * answer it. */
EnsJsonRpcKind ens_jsonrpc_classify (JsonNode *msg, JsonNode **id, const char **method, JsonObject **params,
                                     const char **why);

/* (transfer full) a success response; @id and @result (transfer none) are
 * copied; @result NULL is {}. */
JsonNode *ens_jsonrpc_result (JsonNode *id, JsonNode *result);
/* (transfer full) an error response; @id (NULL: null, as for a message
 * whose id could not be read) and @data (may be NULL) are copied. */
JsonNode *ens_jsonrpc_error (JsonNode *id, gint code, const char *message, JsonNode *data);
/* (transfer full) a request with the integer @id; @params (transfer none,
 * may be NULL) is copied. */
JsonNode *ens_jsonrpc_request (gint64 id, const char *method, JsonNode *params);
/* (transfer full) a notification; @params as for a request. */
JsonNode *ens_jsonrpc_notification (const char *method, JsonNode *params);

/* (transfer full) compact JSON text of @msg, without a newline. */
char *ens_jsonrpc_to_string (JsonNode *msg);

/* The id of a response as an integer; FALSE when it is not one. */
gboolean ens_jsonrpc_id_int (JsonNode *id, gint64 *out);

G_END_DECLS
