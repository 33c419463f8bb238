/* ens-upstream-openai.h — reading an OpenAI Chat Completions answer (OpenAI,
 * vLLM, llama.cpp server, Ollama) into an EnsUpstreamAnswer.
 *
 * Pure functions on bytes: a fuzz target or a unit test calls them without
 * a network.  Every value read is type-checked (absent and null are fine,
 * another type is ENS_UPSTREAM_ERROR_MALFORMED naming the member); an
 * "error" in the answer is ENS_UPSTREAM_ERROR_REPORTED. */
#pragma once

#include "ens-upstream-answer.h"

G_BEGIN_DECLS

/* One "data:" of a streamed answer (a chat.completion.chunk), @len bytes
 * (transfer none).  Text deltas are reported as chunks, new tool calls as
 * tool_call_start.  *@done becomes TRUE at "[DONE]". */
gboolean ens_upstream_openai_read_chunk (EnsUpstreamAnswer *answer, const char *data, gsize len, gboolean *done,
                                         GError **error);

/* A whole chat.completion body, @len bytes (transfer none). */
gboolean ens_upstream_openai_read_body (EnsUpstreamAnswer *answer, const char *body, gsize len, GError **error);

G_END_DECLS
