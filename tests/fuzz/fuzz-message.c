/* fuzz-message.c — the native envelope (ens_message_parse_native): one
 * line from a client becomes a request, an agent's answer, or an error that
 * goes back to the client; never NULL, never a critical.
 *
 * Checks: a request has a non-empty action and a timeout in range; the
 * message, and a reply and an error made from it, encode (native wire) to
 * JSON the parser accepts, echoing the id as it came (string or integer);
 * a line that is JSON makes the message its tree makes (whichever way it was
 * read). */
#include "ens-fuzz.h"

#include <string.h>

static void
check_id_echo (EnsMessage *msg, GBytes *bytes)
{
  gsize size;
  const char *text = g_bytes_get_data (bytes, &size);
  g_autoptr (JsonNode) root = ens_json_parse (text, size - 1, NULL);
  JsonNode *id;

  ENS_FUZZ_CHECK (root && JSON_NODE_HOLDS_OBJECT (root), "the encoding is not an object");
  id = json_object_get_member (json_node_get_object (root), "id");
  ENS_FUZZ_CHECK (id != NULL, "the encoding has no id");
  if (msg->id == NULL)
    ENS_FUZZ_CHECK (JSON_NODE_HOLDS_NULL (id), "no id, but not null");
  else if (ens_message_id_is_number (msg))
    {
      g_autofree char *back = NULL;
      ENS_FUZZ_CHECK (JSON_NODE_HOLDS_VALUE (id) && json_node_get_value_type (id) == G_TYPE_INT64,
                      "a numeric id %s not echoed as an integer", msg->id);
      back = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (id));
      ENS_FUZZ_CHECK (strcmp (back, msg->id) == 0, "id %s echoed as %s", msg->id, back);
    }
  else
    ENS_FUZZ_CHECK (JSON_NODE_HOLDS_VALUE (id) && json_node_get_value_type (id) == G_TYPE_STRING &&
                      strcmp (json_node_get_string (id), msg->id) == 0,
                    "the string id %s not echoed", msg->id);
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
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  EnsMessage *msg = ens_message_parse_native ((const char *) data, size);
  GBytes *bytes;

  ENS_FUZZ_CHECK (msg != NULL, "NULL message");
  switch (msg->kind)
    {
    case ENS_MESSAGE_REQUEST:
      ENS_FUZZ_CHECK (!ens_message_is_bounce (msg), "a request marked as a bounce");
      ENS_FUZZ_CHECK (msg->action && msg->action[0], "a request without an action");
      ENS_FUZZ_CHECK (msg->timeout_ms <= 3600000, "timeout %u out of range", msg->timeout_ms);
      break;
    case ENS_MESSAGE_REPLY:
      ENS_FUZZ_CHECK (msg->id != NULL, "an agent's answer that answers no id");
      break;
    case ENS_MESSAGE_ERROR:
      /* (an agent's own code is passed on as it came, even "") */
      ENS_FUZZ_CHECK (msg->error_code && msg->error_message, "an error without code or message");
      ENS_FUZZ_CHECK (!ens_message_is_bounce (msg) || msg->error_code[0], "a bounce without a code");
      ENS_FUZZ_CHECK (ens_message_is_bounce (msg) || msg->id != NULL, "an agent's error that answers no id");
      break;
    default:
      ENS_FUZZ_CHECK (FALSE, "kind %d", msg->kind);
    }

  bytes = ens_message_encode (msg, ens_message_encode_native);
  ENS_FUZZ_CHECK (bytes == ens_message_encode (msg, ens_message_encode_native), "the encoding is not cached");
  ENS_FUZZ_CHECK (ens_fuzz_check_lines (bytes) == 1, "not one line");
  check_id_echo (msg, bytes);

  if (msg->kind == ENS_MESSAGE_REQUEST)
    {
      EnsMessage *reply = ens_message_new_reply (msg, msg->data);
      EnsMessage *error = ens_message_new_error (msg, "FUZZ", msg->action, msg->data);

      ens_fuzz_check_lines (ens_message_encode (reply, ens_message_encode_native));
      check_id_echo (reply, ens_message_encode (reply, ens_message_encode_native));
      ens_fuzz_check_lines (ens_message_encode (error, ens_message_encode_native));
      check_id_echo (error, ens_message_encode (error, ens_message_encode_native));
      ens_message_unref (reply);
      ens_message_unref (error);
    }
  /* However it was read (without a tree of the whole, or with one), the
   * message is the one the tree makes. */
  {
    g_autoptr (JsonNode) root = ens_json_parse ((const char *) data, size, NULL);
    if (root != NULL)
      {
        EnsMessage *tree = ens_message_from_native (root);
        JsonNode *a = ens_message_get_data (msg), *b = ens_message_get_data (tree);

        ENS_FUZZ_CHECK (msg->kind == tree->kind && g_strcmp0 (msg->id, tree->id) == 0 &&
                          ens_message_id_is_number (msg) == ens_message_id_is_number (tree) &&
                          g_strcmp0 (msg->action, tree->action) == 0 && g_strcmp0 (msg->agent, tree->agent) == 0 &&
                          msg->timeout_ms == tree->timeout_ms && g_strcmp0 (msg->error_code, tree->error_code) == 0,
                        "read otherwise than the tree reads it");
        ENS_FUZZ_CHECK ((a == NULL) == (b == NULL) && (a == NULL || json_node_equal (a, b)),
                        "data read otherwise than the tree reads it");
        ens_message_unref (tree);
      }
  }
  ens_message_unref (msg);
  return 0;
}
