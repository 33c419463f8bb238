/* ens-completion-answer.h — what a completion answers its requester
 * (ens-completion-answer.c): the ack of complete/embed and the result of
 * COMPLETION_RESULT, each as a tree and as the same JSON text written
 * straight (byte for byte what the one writer makes of the tree), for a
 * connection that reads message data as text (ENS_PLUGIN_FLAG_LAZY_DATA):
 * no tree is built, written or freed for it. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The ack: {request_id, status: "queued", queue_position, provider,
 * model?, reasoning, then policy, estimated_cost, confidence, ranking and
 * scores as the decision has them, estimated_time: null}. */
typedef struct {
  const char *request_id;
  guint queue_position;
  const char *provider;
  const char *model;     /* NULL: left out */
  const char *reasoning; /* NULL: "" */
  JsonObject *decision;  /* the router's, (transfer none); the tree shares its members: it must not change */
} EnsCompletionAck;

/* (transfer full) */
JsonNode *ens_completion_ack_node (const EnsCompletionAck *ack);
void ens_completion_ack_write (GString *out, const EnsCompletionAck *ack);

/* The result: every member of the provider's @in (may be NULL), then what
 * the core adds or sets over them (at their place when @in has them). */
typedef struct {
  const char *response; /* the streamed text, set when @in has no string response; NULL: not set */
  const char *provider; /* the backend */
  const char *provider_plugin;
  const char *model;    /* set when @in has no non-empty string model */
  double cost;
  gint64 duration_ms;
  gint64 attempts;
  double received_to_start_ms;
  gboolean has_first_chunk;
  double provider_first_chunk_ms;
  double provider_ms;
  const char *session_id; /* NULL: null */
} EnsCompletionResult;

/* (transfer full) */
JsonNode *ens_completion_result_node (JsonObject *in, const EnsCompletionResult *result);
void ens_completion_result_write (GString *out, JsonObject *in, const EnsCompletionResult *result);

/* (transfer full) what a completion that failed mid-stream had given its
 * requester: {response (@text so far, @len bytes), usage {input_tokens,
 * output_tokens, estimated: true}, provider?, model?}.  The output is
 * estimated (about four characters a token): the upstream tells it only at
 * the end. */
JsonNode *ens_completion_partial_node (const char *text, gsize len, double estimate_in, const char *provider,
                                       const char *model);

G_END_DECLS
