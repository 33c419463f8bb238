/* fuzz-ksi.c — a line on a KSI socket (ens_ksi_decode_line, transport-unix's
 * ens-unix-dialects library).
 *
 * Checks: every line gets exactly one answer: bytes back at once (JSON, KSI's
 * error shape) or one message for the core (a request tagged with its KSI
 * command, or an agent's answer); only a connecting agent keeps its
 * connection; the request's data, published as an event, encodes (KSI's flat
 * event) to JSON the parser accepts, as does an error answering it. */
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
  ens_ksi_set_host (ens_fuzz_host ());
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const EnsHost *host = ens_fuzz_host ();
  EnsUnixLine out = { 0 };
  EnsMessage *msg;

  ens_ksi_decode_line (host, (const char *) data, size, &out);
  ENS_FUZZ_CHECK ((out.reply != NULL) != (out.submit != NULL), "%s", out.reply ? "an error and a request" : "no answer");
  if (out.reply)
    {
      ENS_FUZZ_CHECK (ens_fuzz_check_lines (out.reply) == 1, "more than one line back");
      ENS_FUZZ_CHECK (!out.keep_open, "kept open after an error");
      ens_unix_line_clear (&out);
      return 0;
    }
  msg = out.submit;
  if (msg->kind == ENS_MESSAGE_REQUEST && msg->tag)
    {
      EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
      EnsMessage *event, *error;

      ENS_FUZZ_CHECK (msg->tag[0] != '\0', "an empty command");
      ENS_FUZZ_CHECK (msg->action && msg->action[0], "command %s without a core verb", msg->tag);
      ENS_FUZZ_CHECK (!out.keep_open || strcmp (msg->action, "agents.register") == 0, "kept open for %s", msg->tag);
      /* The data as an event from a KSI client, and an error answering it. */
      init.topic = msg->tag;
      init.from = msg->action;
      init.to = msg->id;
      init.data = msg->data;
      event = host->message_new (&init);
      ens_fuzz_check_lines (host->message_encode (event, ens_ksi_encode));
      error = ens_message_new_error (msg, "FUZZ", msg->action, msg->data);
      ens_fuzz_check_lines (host->message_encode (error, ens_ksi_encode));
      host->message_unref (event);
      host->message_unref (error);
    }
  else
    {
      /* {"reply_to":...}: the native parser's answer, or its error. */
      ENS_FUZZ_CHECK (!out.keep_open, "kept open for an agent's answer");
      ens_fuzz_check_lines (host->message_encode (msg, ens_ksi_encode));
    }
  ens_unix_line_clear (&out);
  return 0;
}
