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

/* An embeddings answer {data: [{index?, embedding: [number...]}...], model?,
 * usage?} for @n inputs: (transfer full) {embeddings: [[number...]...] (by
 * index), model (the answer's, else @model), dims, usage: {input_tokens,
 * output_tokens: 0, estimated?}}, or NULL with @error set: for a count other
 * than @n, indexes out of range or twice, vectors of 0 or more than 65536
 * numbers or of different lengths.  @parse may be NULL. */
JsonNode *ens_upstream_openai_read_embeddings (EnsUpstreamParseFunc parse, const char *body, gsize len, guint n,
                                               const char *model, GError **error);

G_END_DECLS
