/* ens-fuzz-dialect.c — one frame of a seed dialect, decoded and answered
 * (see ens-fuzz-dialect.h). */
#include "ens-fuzz-dialect.h"

static void
check_encoded (const EnsDialect *dialect, EnsMessage *msg)
{
  const EnsHost *host = ens_fuzz_host ();
  GBytes *bytes = host->message_encode (msg, dialect->encode);

  if (bytes && g_bytes_get_size (bytes) > 0)
    ens_fuzz_check_lines (bytes);
}

int
ens_fuzz_dialect_run (const EnsDialect *dialect, const char *agent, const uint8_t *data, size_t size)
{
  const EnsHost *host = ens_fuzz_host ();
  EnsDialectFrame frame = { .host = host, .agent = agent };
  g_autoptr (JsonNode) payload = ens_json_parse ((const char *) data, size, NULL);

  dialect->decode (&frame, (const char *) data, size);
  ENS_FUZZ_CHECK ((frame.reply != NULL) != (frame.submit != NULL), "%s", frame.reply ? "bytes back and a message"
                                                                                    : "no outcome");
  if (frame.reply)
    {
      ENS_FUZZ_CHECK (!(frame.flags & ENS_DIALECT_KEEP_OPEN), "kept open after an error");
      ens_fuzz_check_lines (frame.reply);
    }
  else
    {
      EnsMessage *msg = frame.submit;

      ENS_FUZZ_CHECK (msg->kind != ENS_MESSAGE_REQUEST || (msg->action && msg->action[0]), "a request without a verb");
      ens_fuzz_check_lines (host->message_encode (msg, host->encode_native));
      if (msg->kind == ENS_MESSAGE_REQUEST)
        {
          /* The core's answers: a success (the request's own data standing
           * in for what the verb returns), an error naming a field. */
          EnsMessage *reply = ens_message_new_reply (msg, msg->data);
          EnsMessage *error = ens_message_new_invalid (msg, "field", "a value");
          check_encoded (dialect, reply);
          check_encoded (dialect, error);
          host->message_unref (reply);
          host->message_unref (error);
        }
      else
        check_encoded (dialect, msg);
    }

  /* Events anyone may publish: each topic the dialect reshapes, and one
   * it does not, with this frame's JSON as their data. */
  for (const EnsDialectEntry *e = dialect->events; ; e = e ? e + 1 : NULL)
    {
      EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
      EnsMessage *event;

      init.topic = e && e->name ? e->name : "fuzz.topic";
      init.from = "c1";
      init.to = agent;
      init.data = payload;
      event = host->message_new (&init);
      ens_message_set_seq (event, 7);
      check_encoded (dialect, event);
      host->message_unref (event);
      if (e == NULL || e->name == NULL)
        break;
    }
  ens_dialect_frame_clear (&frame);
  return 0;
}
