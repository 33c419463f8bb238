/* ens-upstream-anthropic.h — reading an Anthropic Messages answer into an
 * EnsUpstreamAnswer.
 *
 * Pure functions on bytes, like ens-upstream-openai.h: every value read is
 * type-checked; an error event or body is ENS_UPSTREAM_ERROR_REPORTED, or
 * ENS_UPSTREAM_ERROR_OVERLOADED for overloaded_error and rate_limit_error.
 * The stop reason is kept in Anthropic's words; ens_upstream_anthropic_finish_reason()
 * says it in the OpenAI vocabulary every provider reports in. */
#pragma once

#include "ens-upstream-answer.h"

G_BEGIN_DECLS

/* One event of the Messages event stream: @event (may be NULL: the data's
 * "type" names it) and its data, @len bytes (transfer none).  Text deltas
 * are reported as chunks, tool_use blocks as tool_call_start.  *@done
 * becomes TRUE at message_stop. */
gboolean ens_upstream_anthropic_read_event (EnsUpstreamAnswer *answer, const char *event, const char *data,
                                            gsize len, gboolean *done, GError **error);

/* A whole message body, @len bytes (transfer none). */
gboolean ens_upstream_anthropic_read_body (EnsUpstreamAnswer *answer, const char *body, gsize len, GError **error);

/* (transfer none) the finish reason for the answer's stop reason:
 * end_turn/stop_sequence -> stop, max_tokens -> length, tool_use ->
 * tool_calls; NULL when none was given. */
const char *ens_upstream_anthropic_finish_reason (EnsUpstreamAnswer *answer);

G_END_DECLS
