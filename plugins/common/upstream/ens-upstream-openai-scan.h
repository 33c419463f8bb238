/* ens-upstream-openai-scan.h — the common shapes of an OpenAI Chat
 * Completions answer read from its text, without a JSON tree.
 *
 * A whole chat.completion whose choices[0].message has text and no tool
 * calls, and a chat.completion.chunk whose choices[0].delta has text (or
 * nothing) and no tool calls, are read with the host's scanner
 * (EnsUpstreamAnswer.scanner): members are taken as they come, strings
 * without escapes straight from the text.  Anything else — malformed JSON,
 * an "error", tool calls, a member of an unexpected type, a count that is
 * not a plain non-negative integer, no choices[0].message — is left to the
 * typed reader of ens-upstream-openai.h, which reads it, or refuses it, as
 * it always did: these functions then change nothing in the answer. */
#pragma once

#include "ens-upstream-answer.h"

G_BEGIN_DECLS

/* TRUE when @body (@len bytes, transfer none) was a common chat.completion,
 * now read into @answer as ens_upstream_openai_read_body() would have; FALSE
 * (nothing read) when it needs the typed reader, or @answer has no scanner. */
gboolean ens_upstream_openai_scan_body (EnsUpstreamAnswer *answer, const char *body, gsize len);

/* The same for one chat.completion.chunk (not "[DONE]"), read as
 * ens_upstream_openai_read_chunk() would have, its text reported. */
gboolean ens_upstream_openai_scan_chunk (EnsUpstreamAnswer *answer, const char *data, gsize len);

G_END_DECLS
