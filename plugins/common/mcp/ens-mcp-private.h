/* ens-mcp-private.h — what the files of the MCP server share (private to
 * plugins/common/mcp). */
#pragma once

#include "ens-mcp-server.h"
#include "ens-jsonrpc.h"
#include "ens-json-util.h"
#include "ens-schema.h"

#define KV_SCHEME "ensemble://kv/"
#define SESSION_SCHEME "ensemble://sessions/"

typedef enum {
  OP_TOOLS_LIST,
  OP_TOOL_RESOLVE, /* tools/call: agents.list, to find the tool's agent */
  OP_TOOLS_CALL,   /* tools/call: the agent's action */
  OP_COMPLETE,     /* complete: the ack, then COMPLETION_RESULT */
  OP_RES_LIST,     /* sessions.list + agents.list, then kv.list of each agent */
  OP_RES_READ,
  OP_INTERNAL,     /* subscribe/unsubscribe of the session's own: no answer due */
} OpKind;

typedef struct _Op Op;

struct _EnsMcpSession {
  const EnsHost *host;
  EnsPlugin *self;
  EnsClient *client;
  char *id;
  EnsMcpLimits limits;
  EnsMcpSendFunc send;
  gpointer send_data;
  GHashTable *by_core;        /* core request id -> Op (borrowed; ops list owns) */
  GHashTable *by_completion;  /* completion request_id -> Op */
  GHashTable *subscriptions;  /* uri -> topic */
  GList *ops;                 /* Op*, every one in flight */
  EnsSchema *complete_schema;
  guint64 next_id;
  gboolean initialized, closing;
};

struct _Op {
  EnsMcpSession *s;
  OpKind kind;
  JsonNode *rpc_id; /* the JSON-RPC request's id */
  EnsMcpAnswerFunc answer;
  gpointer answer_data;
  guint outstanding; /* core requests not answered yet */
  char *tool, *uri, *completion_id;
  JsonNode *arguments;
  JsonArray *items; /* OP_RES_LIST: resources gathered */
  gboolean done;
};

/* An MCP request in flight (ens-mcp-server.c). */
Op *ens_mcp_op_new (EnsMcpSession *s, OpKind kind, JsonNode *rpc_id, EnsMcpAnswerFunc answer, gpointer answer_data);
/* Answers @op's request; @result (transfer none) NULL is {}. */
void ens_mcp_op_result (Op *op, JsonNode *result);
void ens_mcp_op_error (Op *op, gint code, const char *message, JsonNode *data);
/* Submits a core verb (@agent NULL) or an agent action for @op; @data (transfer none). */
void ens_mcp_core (Op *op, const char *agent, const char *action, JsonNode *data, guint32 timeout_ms);
/* {topics: [@topic]} to @action, answered to nobody. */
void ens_mcp_core_internal (EnsMcpSession *s, const char *action, const char *topic);
/* (transfer full) @text cut at the session's max_result_bytes, saying so. */
char *ens_mcp_capped (EnsMcpSession *s, const char *text, gboolean *cut);

/* Resources (ens-mcp-resources.c). */
void ens_mcp_res_list_answered (Op *op, EnsMessage *answer);
void ens_mcp_res_read_answered (Op *op, EnsMessage *answer);
void ens_mcp_resource_templates (Op *op);
/* resources/read, resources/subscribe, resources/unsubscribe. */
void ens_mcp_resources (EnsMcpSession *s, Op *op, const char *method, JsonObject *params);
/* @uri's agent and key, or session id (each (transfer full)); FALSE for any other. */
gboolean ens_mcp_parse_uri (const char *uri, char **agent, char **key, char **session);
