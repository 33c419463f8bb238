/* fuzz-sse-anthropic.c — an Anthropic upstream's answer (Messages: an event
 * stream, or a message body), read by plugins/common/upstream as
 * provider-anthropic reads it.  Input and checks: ens-fuzz-upstream.c. */
#include "ens-fuzz-upstream.h"

static const EnsFuzzUpstreamApi api = { ens_upstream_anthropic_read_event, ens_upstream_anthropic_read_body };

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
