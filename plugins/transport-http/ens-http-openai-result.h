/* ens-http-openai-result.h — inside the routes library: what a non-streamed
 * chat.completion is made of, read from the core's COMPLETION_RESULT
 * (its result object) as a tree or, without one, from its text. */
#pragma once

#include <ensemble/ensemble.h>

typedef struct {
  char *response;      /* "" when the result has none */
  char *provider;      /* or NULL */
  char *model;         /* or NULL */
  char *finish_reason; /* the provider's, or NULL */
  gint64 input_tokens, output_tokens;
} EnsHttpChatResult;

/* Fills @out from @result (transfer none). */
void ens_http_chat_result_from_tree (JsonObject *result, EnsHttpChatResult *out);
/* Fills @out from the text of a COMPLETION_RESULT's data (@text, @len: a
 * checked JSON object, as host->message_data_text() gives it) when its
 * request_id is @request_id and it holds a result that needs no tree: no
 * tool calls, and every member read of the type it must have (a token
 * count a plain integer).  FALSE otherwise (@out untouched): read the
 * tree. */
gboolean ens_http_chat_result_from_text (const EnsHost *host, const char *text, gsize len, const char *request_id,
                                         EnsHttpChatResult *out);
void ens_http_chat_result_clear (EnsHttpChatResult *r);
/* The strings of complete's ack, from its text (as message_data_text()
 * gives it): each (transfer full) the member's string, or NULL when it is
 * missing or not a string. */
void ens_http_chat_ack_from_text (const EnsHost *host, const char *text, gsize len, char **request_id,
                                  char **provider, char **model);

/* The result's tool calls ({id, type, name, arguments (any JSON)}) in
 * OpenAI's shape {id, type:"function", function:{name, arguments (JSON
 * text)}}; @with_index for stream deltas.  (transfer full), NULL when there
 * are none. */
JsonArray *ens_http_chat_tool_calls (const EnsHost *host, JsonObject *result, gboolean with_index);
/* OpenAI's finish_reason for the provider's @reason (may be NULL). */
const char *ens_http_chat_finish_reason (const char *reason, gboolean has_tools);
/* A token count as a result reports it: bounded so that the sum of two is
 * one too. */
gint64 ens_http_chat_token_count (gint64 count);
