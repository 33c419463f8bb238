/* fuzz-centerfire.c — a line on a Centerfire per-agent socket
 * (ens_centerfire_decode_line, transport-unix's ens-unix-dialects library).
 *
 * Checks: exactly one answer: an error back at once (one native JSON line)
 * or a request for the socket's own agent with a non-empty action, which
 * encodes (native, as pushed to an external agent) to JSON. */
#include "ens-fuzz.h"
#include "ens-unix-dialect.h"

#include <string.h>

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
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const EnsHost *host = ens_fuzz_host ();
  EnsUnixLine out = { 0 };

  ens_centerfire_decode_line (host, "shell", (const char *) data, size, &out);
  ENS_FUZZ_CHECK ((out.reply != NULL) != (out.submit != NULL), "%s", out.reply ? "an error and a request" : "no answer");
  ENS_FUZZ_CHECK (!out.keep_open, "kept open");
  if (out.reply)
    ENS_FUZZ_CHECK (ens_fuzz_check_lines (out.reply) == 1, "more than one line back");
  else
    {
      ENS_FUZZ_CHECK (out.submit->kind == ENS_MESSAGE_REQUEST, "not a request");
      ENS_FUZZ_CHECK (g_strcmp0 (out.submit->agent, "shell") == 0, "a request for agent %s", out.submit->agent);
      ENS_FUZZ_CHECK (out.submit->action && out.submit->action[0], "no action");
      ens_fuzz_check_lines (host->message_encode (out.submit, host->encode_native));
    }
  ens_unix_line_clear (&out);
  return 0;
}
