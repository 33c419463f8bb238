/* fuzz-ksi.c — a line on a KSI socket (ens_dialect_ksi of
 * plugins/common/dialect): decoded into a core request or an error, the
 * core's answers and the bus's events encoded back.  Checks:
 * ens-fuzz-dialect.h. */
#include "ens-fuzz-dialect.h"

size_t
LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
  return ens_fuzz_mutate_json (data, size, max_size, seed, 0);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  ens_dialect_init (ens_fuzz_host ());
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  return ens_fuzz_dialect_run (&ens_dialect_ksi, NULL, data, size);
}
