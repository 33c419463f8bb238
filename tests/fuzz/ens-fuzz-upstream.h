/* ens-fuzz-upstream.h — the part of fuzz-sse-openai and fuzz-sse-anthropic
 * they share (ens-fuzz-upstream.c): an answer read from untrusted bytes. */
#pragma once

#include "ens-fuzz.h"
#include "ens-upstream.h"

G_BEGIN_DECLS

/* One API's readers (plugins/common/upstream). */
typedef struct {
  gboolean (*read_event) (EnsUpstreamAnswer *answer, const char *event, const char *data, gsize len,
                          gboolean *done, GError **error);
  gboolean (*read_body) (EnsUpstreamAnswer *answer, const char *body, gsize len, GError **error);
} EnsFuzzUpstreamApi;

/* LLVMFuzzerTestOneInput and LLVMFuzzerCustomMutator of such a target. */
int ens_fuzz_upstream_run (const EnsFuzzUpstreamApi *api, const uint8_t *data, size_t size);
size_t ens_fuzz_upstream_mutate (uint8_t *data, size_t size, size_t max_size, unsigned int seed);

G_END_DECLS
