/* fuzz-sse-openai.c — an OpenAI-compatible upstream's answer (Chat Completions:
 * an event stream of chat.completion.chunk, or a chat.completion body), read
 * by plugins/common/upstream as provider-openai reads it.  Input and checks:
 * ens-fuzz-upstream.c. */
#include "ens-fuzz-upstream.h"

static gboolean
read_event (EnsUpstreamAnswer *answer, const char *event, const char *data, gsize len, gboolean *done, GError **error)
{
  (void) event; /* OpenAI names no events */
  return ens_upstream_openai_read_chunk (answer, data, len, done, error);
}

static const EnsFuzzUpstreamApi api = { read_event, ens_upstream_openai_read_body };

size_t
LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
  return ens_fuzz_upstream_mutate (data, size, max_size, seed);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  return ens_fuzz_upstream_run (&api, data, size);
}
