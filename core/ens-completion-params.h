/* ens-completion-params.h — reading the parameters of the complete and
 * route verbs (ens-completion-params.c): every value checked, an
 * INVALID_PARAMETERS error naming the field otherwise. */
#pragma once

#include "ens-message-private.h"

G_BEGIN_DECLS

/* A number @field of @p within [@min, @max] into *out; TRUE when absent or
 * null (*out untouched), FALSE when present and not such a number. */
gboolean ens_completion_read_number (JsonObject *p, const char *field, double min, double max, double *out);
/* The routing fields shared by "complete" and "route". */
typedef struct {
  const char *task_type; /* (transfer none) "reasoning" unless given */
  const char *priority;  /* (transfer none) "high" | "medium" | "low", "medium" unless given */
  double max_latency;    /* ms, 0: none */
  double token_count;    /* < 0: not given */
} EnsCompletionRoute;

/* The routing fields of @p into @out; NULL when valid, else (transfer
 * full) the error answering @request. */
EnsMessage *ens_completion_read_route_fields (EnsMessage *request, JsonObject *p, EnsCompletionRoute *out);
/* The same into @route ({task_type, priority, max_latency, token_count?}). */
EnsMessage *ens_completion_read_route (EnsMessage *request, JsonObject *p, JsonObject *route);
/* (transfer full) the messages: given, or made from prompt (+ system); the
 * characters in them in *chars.  NULL with *err (transfer full) set. */
JsonNode *ens_completion_read_messages (EnsMessage *request, JsonObject *p, EnsMessage **err, gsize *chars);
/* What to embed (the embed verb): input, a non-empty string or a list of
 * 1-2048 of them, and dimensions? (1-65536), into @params as a provider
 * takes them ({kind: "embeddings", input: [...], dimensions?}); the
 * characters in *chars.  NULL when valid, else (transfer full) the error
 * answering @request. */
EnsMessage *ens_completion_read_input (EnsMessage *request, JsonObject *p, JsonObject *params, gsize *chars);

/* (transfer full) UNSUPPORTED_MODEL answering @request: @asked, in @field
 * ("model" or "provider"), is served, but not for this kind of request
 * (@embed: embeddings asked of a chat model; else the reverse). */
EnsMessage *ens_completion_unsuited_model (EnsMessage *request, const char *field, const char *asked, gboolean embed);

G_END_DECLS
