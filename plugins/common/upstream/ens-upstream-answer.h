/* ens-upstream-answer.h — what one completion collects from its upstream:
 * the text, the model that answered, the usage, why it stopped and its tool
 * calls; and the completion result built from them.
 *
 * The wire readers (ens-upstream-openai.h, ens-upstream-anthropic.h) fill
 * an answer from the upstream's bytes and report progress through its
 * sink: the text as it arrives and "tool_call_start" events.  Without a
 * sink (a fuzz target, a unit test) the answer is only collected. */
#pragma once

#include "ens-tool-calls.h"
#include "ens-upstream-json.h"

G_BEGIN_DECLS

/* Where progress goes; each function may be NULL. */
typedef struct {
  void (*chunk) (gpointer user_data, const char *text);
  /* @data (transfer none) */
  void (*event) (gpointer user_data, const char *type, JsonNode *data);
} EnsUpstreamSink;

typedef struct {
  GString *text;        /* the answer so far */
  char *model;          /* the model the upstream says answered; NULL until it did */
  char *stop_reason;    /* why it stopped, in the upstream's words; NULL until it said */
  gint64 input_tokens;  /* -1 until reported */
  gint64 output_tokens; /* -1 until reported */
  EnsToolCalls *tools;
  EnsUpstreamParseFunc parse;
  /* NULL, or the host's scanner, for the same JSON as @parse (transfer
   * none): see ens_upstream_answer_set_scanner() */
  const EnsUpstreamScanner *scanner;

  /* private */
  const EnsUpstreamSink *sink;
  gpointer sink_data;
} EnsUpstreamAnswer;

/* (transfer full) an empty answer: at most @max_tool_calls tool calls, JSON
 * parsed with @parse (NULL: ens_upstream_json_parse), progress reported to
 * @sink (transfer none, may be NULL: it must outlive the answer) with
 * @sink_data. */
EnsUpstreamAnswer *ens_upstream_answer_new (guint max_tool_calls, EnsUpstreamParseFunc parse,
                                            const EnsUpstreamSink *sink, gpointer sink_data);
void ens_upstream_answer_free (EnsUpstreamAnswer *answer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsUpstreamAnswer, ens_upstream_answer_free)

/* From now on the readers take the common shapes of an answer from its
 * text with @scanner (transfer none, outlives the answer; NULL: never),
 * which must accept exactly the JSON the answer's parse function does. */
void ens_upstream_answer_set_scanner (EnsUpstreamAnswer *answer, const EnsUpstreamScanner *scanner);

/* Sets the model, replacing an earlier one; NULL and "" are ignored. */
void ens_upstream_answer_set_model (EnsUpstreamAnswer *answer, const char *model);
/* The same for @len bytes of @model (no NUL among them). */
void ens_upstream_answer_set_model_len (EnsUpstreamAnswer *answer, const char *model, gsize len);
/* Sets the stop reason, replacing an earlier one; NULL and "" are ignored. */
void ens_upstream_answer_set_stop_reason (EnsUpstreamAnswer *answer, const char *reason);
/* The same for @len bytes of @reason (no NUL among them). */
void ens_upstream_answer_set_stop_reason_len (EnsUpstreamAnswer *answer, const char *reason, gsize len);
/* Appends @text (NULL and "" are ignored) and, when @stream, reports it as
 * a chunk. */
void ens_upstream_answer_add_text (EnsUpstreamAnswer *answer, const char *text, gboolean stream);
/* The same for @len bytes of @text (no NUL among them). */
void ens_upstream_answer_add_text_len (EnsUpstreamAnswer *answer, const char *text, gsize len, gboolean stream);
/* ens_tool_calls_update on the answer's calls, reporting "tool_call_start"
 * when due. */
gboolean ens_upstream_answer_add_tool_call (EnsUpstreamAnswer *answer, gint64 index, const char *id,
                                            const char *name, const char *arguments, GError **error);
/* Reports the whole text as one chunk (an upstream that answered a stream
 * request in one piece). */
void ens_upstream_answer_flush_text (EnsUpstreamAnswer *answer);

/* (transfer full) the completion result {response, model, usage:
 * {input_tokens, output_tokens, estimated?}, finish_reason, tool_calls?}.
 * Usage counts when both halves were reported; otherwise both are
 * estimated from @request (transfer none, the completion request, may be
 * NULL) and the answer.  @finish_reason (transfer none) in the OpenAI
 * vocabulary every provider reports in; NULL: "tool_calls" when there are
 * tool calls, else "stop". */
JsonNode *ens_upstream_answer_result (EnsUpstreamAnswer *answer, JsonNode *request, const char *finish_reason);

G_END_DECLS
