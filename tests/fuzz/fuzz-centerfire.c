/* fuzz-centerfire.c — a request on a Centerfire per-agent socket
 * (ens_dialect_centerfire of plugins/common/dialect), and its framing: a
 * JSON value, whole or cut (ens_dialect_scan_value).  Checks:
 * ens-fuzz-dialect.h, and: a text that is one JSON object, array or string
 * is found whole by the scanner, and none of its proper prefixes is. */
#include "ens-fuzz-dialect.h"

#include <string.h>

static void
check_scan (const uint8_t *data, size_t size)
{
  g_autoptr (JsonNode) root = ens_json_parse ((const char *) data, size, NULL);
  gsize start = 0, end = size;

  ENS_FUZZ_CHECK (ens_dialect_scan_value ((const char *) data, size, TRUE) <= size, "a value longer than the text");
  if (root == NULL || JSON_NODE_HOLDS_NULL (root) ||
      (JSON_NODE_HOLDS_VALUE (root) && json_node_get_value_type (root) != G_TYPE_STRING))
    return; /* a number or a literal ends only at white space or the end */
  while (start < size && strchr (" \t\r\n", data[start]))
    start++;
  while (end > start && strchr (" \t\r\n", data[end - 1]))
    end--;
  ENS_FUZZ_CHECK (ens_dialect_scan_value ((const char *) data, size, FALSE) == end,
                  "the value ends at %zu, the scanner says %zu", end,
                  ens_dialect_scan_value ((const char *) data, size, FALSE));
  for (gsize cut = start; cut < end; cut += 1 + cut / 8)
    ENS_FUZZ_CHECK (ens_dialect_scan_value ((const char *) data, cut, FALSE) == 0, "a value found in %zu of %zu bytes",
                    cut, end);
}

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
  check_scan (data, size);
  return ens_fuzz_dialect_run (&ens_dialect_centerfire, "shell", data, size);
}
