/* fuzz-redis.c — what the Redis bridge reads from Redis (transport-redis's
 * ens-redis-codec library): any client may publish on its channels.
 *
 * Input: one selector byte, then
 *   'e' (or anything else): CHANNEL NUL PAYLOAD, a message on a subscribed
 *       channel (without a NUL: the payload on "ensemble:fuzz.topic");
 *   'q': a request on agent.NAME.request;   'r': a response.
 * Checks: an event to deliver has a concrete UTF-8 topic and a sender, and
 * survives a trip through another node (encoded, decoded: same topic, from,
 * to, data) and is written as Redis' PUBLISH command; a request's fields
 * are strings or absent and its timeout at most a day; a failed response
 * has a code and a message; what the bridge writes back is JSON. */
#include "ens-fuzz.h"
#include "ens-redis-codec.h"

#include <string.h>

#define PREFIX "ensemble:"

static char *own_prefix;

static gboolean
same_data (JsonNode *a, JsonNode *b)
{
  g_autoptr (JsonNode) null = json_node_new (JSON_NODE_NULL);
  return ens_fuzz_same_tree (a ? a : null, b ? b : null, TRUE);
}

static void
check_event (const EnsHost *host, const char *channel, const uint8_t *payload, gsize len)
{
  EnsRedisIn in, back;
  EnsMessage *msg;
  g_autofree char *data = NULL, *envelope = NULL, *other = NULL, *back_channel = NULL;
  EnsRedisInVerdict verdict = ens_redis_decode_event (host, PREFIX, own_prefix, channel, (const char *) payload, len, &in);

  if (verdict != ENS_REDIS_IN_DELIVER)
    {
      ENS_FUZZ_CHECK (verdict != ENS_REDIS_IN_FOREIGN || !g_str_has_prefix (channel, PREFIX), "foreign in the prefix");
      ens_redis_in_clear (&in);
      return;
    }
  ENS_FUZZ_CHECK (in.event.topic && in.event.topic[0] && strpbrk (in.event.topic, "*?[") == NULL,
                  "delivered on topic \"%s\"", in.event.topic ? in.event.topic : "(null)");
  ENS_FUZZ_CHECK (g_utf8_validate (in.event.topic, -1, NULL), "a topic that is not UTF-8");
  ENS_FUZZ_CHECK (in.event.from != NULL, "no sender");

  /* Through another node: what it would PUBLISH, read back here. */
  msg = host->message_new (&in.event);
  data = g_strdup (host->message_data_text (msg, NULL)); /* the text it came as, or written once */
  other = ens_redis_envelope_prefix ("other-node");
  envelope = ens_redis_encode_event (other, msg, data);
  {
    g_autoptr (JsonNode) parsed = host->json_parse (envelope, strlen (envelope), NULL);
    ENS_FUZZ_CHECK (parsed != NULL, "an envelope that is not JSON: %s", envelope);
  }
  {
    /* the same envelope, as the PUBLISH command written for Redis */
    gsize cmd_len;
    g_autofree char *cmd = ens_redis_encode_publish (PREFIX, other, msg, data, &cmd_len);
    g_autofree char *publish_to = msg->to ? g_strconcat (PREFIX, msg->topic, ":", msg->to, NULL)
                                          : g_strconcat (PREFIX, msg->topic, NULL);
    g_autoptr (GString) want = g_string_new ("*3\r\n$7\r\nPUBLISH\r\n");

    g_string_append_printf (want, "$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen (publish_to), publish_to, strlen (envelope),
                            envelope);
    ENS_FUZZ_CHECK (cmd_len == want->len && memcmp (cmd, want->str, cmd_len) == 0, "a PUBLISH command not as Redis reads it");
  }
  back_channel = g_strconcat (PREFIX, msg->topic, NULL);
  ENS_FUZZ_CHECK (ens_redis_decode_event (host, PREFIX, own_prefix, back_channel, envelope, strlen (envelope), &back)
                    == ENS_REDIS_IN_DELIVER,
                  "not delivered back: %s", envelope);
  {
    /* A node's envelope brings the data as text (data_text), checked but
     * not parsed: the message made of it reads the same. */
    EnsMessage *again = host->message_new (&back.event);
    ENS_FUZZ_CHECK (g_strcmp0 (back.event.topic, msg->topic) == 0 && g_strcmp0 (back.event.from, msg->from) == 0 &&
                      g_strcmp0 (back.event.to, msg->to) == 0 &&
                      same_data (host->message_data (again), host->message_data (msg)),
                    "changed on the way: %s", envelope);
    ENS_FUZZ_CHECK (back.event.data == NULL && back.event.data_text != NULL, "a node's envelope parsed whole: %s",
                    envelope);
    host->message_unref (again);
  }
  ens_redis_in_clear (&back);
  host->message_unref (msg);
  ens_redis_in_clear (&in);
}

static void
check_request (const EnsHost *host, const uint8_t *payload, gsize len)
{
  EnsRedisRequest req;

  ens_redis_decode_request (host, (const char *) payload, len, &req);
  ENS_FUZZ_CHECK (req.timeout_ms <= 24 * 3600 * 1000, "timeout %u", req.timeout_ms);
  ENS_FUZZ_CHECK (req.reply_to == NULL || req.reply_to[0], "an empty reply_to");
  if (req.id)
    {
      g_autoptr (JsonNode) err = ens_redis_error_response (req.id, "INVALID_REQUEST", req.action ? req.action : "x",
                                                           req.data);
      g_autofree char *text = host->json_to_string (err);
      g_autoptr (JsonNode) parsed = host->json_parse (text, strlen (text), NULL);
      ENS_FUZZ_CHECK (parsed != NULL, "an error response that is not JSON: %s", text);
    }
  ens_redis_request_clear (&req);
}

static void
check_response (const EnsHost *host, const uint8_t *payload, gsize len)
{
  EnsRedisResponse resp;

  ens_redis_decode_response (host, (const char *) payload, len, &resp);
  if (resp.id && resp.failed)
    ENS_FUZZ_CHECK (resp.code && resp.message, "a failure without code or message");
  ens_redis_response_clear (&resp);
}

/* The JSON is the payload: after the selector, after the channel's NUL. */
size_t
LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
  const uint8_t *nul = size > 1 && data[0] != 'q' && data[0] != 'r' ? memchr (data + 1, '\0', size - 1) : NULL;
  return ens_fuzz_mutate_json (data, size, max_size, seed, nul ? (size_t) (nul + 1 - data) : 1);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  own_prefix = ens_redis_envelope_prefix (ens_fuzz_host ()->node_id ());
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const EnsHost *host = ens_fuzz_host ();

  if (size == 0)
    return 0;
  switch (data[0])
    {
    case 'q':
      check_request (host, data + 1, size - 1);
      break;
    case 'r':
      check_response (host, data + 1, size - 1);
      break;
    default:
      {
        const uint8_t *nul = memchr (data + 1, '\0', size - 1);
        if (nul)
          {
            g_autofree char *channel = g_strndup ((const char *) data + 1, (gsize) (nul - data - 1));
            check_event (host, channel, nul + 1, size - (gsize) (nul + 1 - data));
          }
        else
          check_event (host, PREFIX "fuzz.topic", data + 1, size - 1);
      }
    }
  return 0;
}
