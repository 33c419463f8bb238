/* fuzz-jsonrpc.c — one JSON-RPC 2.0 message as the MCP server and client
 * read it (ens_jsonrpc_classify, plugins/common/jsonrpc), after the core's
 * JSON parser.
 *
 * Checks: a request has an id and a method, a notification a method and no
 * id, a response an id; params, when given, is an object; an invalid
 * message says why; the success and the error answering it (its id when it
 * had a usable one, else null) are JSON objects the parser accepts, with
 * "jsonrpc":"2.0" and the id as it came. */
#include "ens-fuzz.h"
#include "ens-jsonrpc.h"

#include <string.h>

static void
check_answer (JsonNode *answer, JsonNode *id)
{
  g_autofree char *text = ens_jsonrpc_to_string (answer);
  g_autoptr (JsonNode) back = ens_json_parse (text, strlen (text), NULL);
  JsonObject *obj;
  JsonNode *back_id;

  ENS_FUZZ_CHECK (back && JSON_NODE_HOLDS_OBJECT (back), "an answer that is not an object: %s", text);
  obj = json_node_get_object (back);
  ENS_FUZZ_CHECK (g_strcmp0 (json_object_get_string_member_with_default (obj, "jsonrpc", NULL), "2.0") == 0,
                  "no jsonrpc 2.0: %s", text);
  back_id = json_object_get_member (obj, "id");
  ENS_FUZZ_CHECK (back_id != NULL, "an answer without an id: %s", text);
  if (id == NULL)
    ENS_FUZZ_CHECK (JSON_NODE_HOLDS_NULL (back_id), "an id out of nothing: %s", text);
  else
    ENS_FUZZ_CHECK (ens_fuzz_same_tree (id, back_id, TRUE), "the id not echoed: %s", text);
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
  g_autoptr (JsonNode) msg = ens_json_parse ((const char *) data, size, NULL);
  JsonNode *id = NULL;
  const char *method = NULL, *why = NULL;
  JsonObject *params = NULL;
  EnsJsonRpcKind kind;
  gint64 n;

  if (msg == NULL)
    return 0; /* answered PARSE_ERROR before classify (fuzz-json covers the parser) */
  kind = ens_jsonrpc_classify (msg, &id, &method, &params, &why);
  switch (kind)
    {
    case ENS_JSONRPC_REQUEST:
      ENS_FUZZ_CHECK (id != NULL && method != NULL, "a request without an id or a method");
      break;
    case ENS_JSONRPC_NOTIFICATION:
      ENS_FUZZ_CHECK (id == NULL && method != NULL, "a notification with an id, or without a method");
      break;
    case ENS_JSONRPC_RESPONSE:
      ENS_FUZZ_CHECK (id != NULL, "a response without an id");
      break;
    case ENS_JSONRPC_INVALID:
      ENS_FUZZ_CHECK (why != NULL && why[0] != '\0', "invalid, without saying why");
      break;
    default:
      ENS_FUZZ_CHECK (FALSE, "kind %d", (int) kind);
    }
  if (id)
    (void) ens_jsonrpc_id_int (id, &n);
  {
    g_autoptr (JsonNode) ok = ens_jsonrpc_result (id, params ? msg : NULL);
    g_autoptr (JsonNode) err = ens_jsonrpc_error (id, ENS_JSONRPC_INVALID_REQUEST, why ? why : "no", msg);
    g_autoptr (JsonNode) req = ens_jsonrpc_request (7, method ? method : "m", msg);
    g_autoptr (JsonNode) note = ens_jsonrpc_notification (method ? method : "m", NULL);
    g_autofree char *t1 = ens_jsonrpc_to_string (req);
    g_autofree char *t2 = ens_jsonrpc_to_string (note);
    g_autoptr (JsonNode) b1 = ens_json_parse (t1, strlen (t1), NULL);
    g_autoptr (JsonNode) b2 = ens_json_parse (t2, strlen (t2), NULL);

    check_answer (ok, id);
    check_answer (err, id);
    ENS_FUZZ_CHECK (b1 && b2, "a request or notification that is not JSON: %s %s", t1, t2);
  }
  return 0;
}
