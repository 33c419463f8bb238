/* test-completion-answer.c — a completion's ack and result written straight
 * as text are, byte for byte, what the one writer makes of their trees:
 * with and without the optional members, with provider results that carry
 * members the core sets over (in their place), of every JSON type, and with
 * doubles that need every digit. */
#include "ens-completion-answer.h"
#include "ens-json.h"

#include <string.h>

static JsonObject *
object_of (const char *text, JsonNode **holder)
{
  g_autoptr (GError) error = NULL;

  *holder = ens_json_parse (text, strlen (text), &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (*holder));
  return json_node_get_object (*holder);
}

static void
assert_result_same (JsonObject *in, const EnsCompletionResult *r)
{
  g_autoptr (JsonNode) tree = ens_completion_result_node (in, r);
  g_autofree char *want = ens_json_write_to_string (tree, FALSE);
  g_autoptr (GString) got = g_string_new (NULL);

  ens_completion_result_write (got, in, r);
  g_assert_cmpstr (got->str, ==, want);
  /* And it is JSON that reads back to the same tree. */
  {
    g_autoptr (JsonNode) back = ens_json_parse (got->str, got->len, NULL);
    g_assert_nonnull (back);
    g_assert_true (json_node_equal (back, tree));
  }
}

static void
test_result (void)
{
  static const char *const provider_results[] = {
    NULL,
    "{}",
    "{\"response\":\"Hello!\",\"usage\":{\"input_tokens\":12,\"output_tokens\":3},\"model\":\"gpt-x\","
    "\"finish_reason\":\"stop\"}",
    /* Members the core sets over, where the provider put them. */
    "{\"provider\":\"theirs\",\"cost\":\"free\",\"response\":null,\"timings\":[1,2],\"id\":\"x\","
    "\"session_id\":7,\"attempts\":true,\"duration_ms\":-1,\"provider_plugin\":{}}",
    /* A model the core replaces (empty, not a string) or keeps. */
    "{\"model\":\"\"}",
    "{\"model\":null,\"response\":\"kept\"}",
    "{\"model\":\"upstream-name\",\"tool_calls\":[{\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}",
    "{\"embeddings\":[[0.1,-2.5e-7,3],[1e300,0.30000000000000004]],\"usage\":{\"input_tokens\":4}}",
    "{\"text\":\"quote \\\" backslash \\\\ newline \\n tab \\t nul-ish \\u0001 unicode \\u00e9\",\"n\":null,"
    "\"b\":false,\"big\":9007199254740993,\"neg\":-0.0}",
  };
  EnsCompletionResult results[] = {
    { .response = "streamed text", .provider = "instant", .provider_plugin = "provider-openai", .model = "bench",
      .cost = 0, .duration_ms = 3, .attempts = 1, .received_to_start_ms = 0.012, .provider_ms = 1.234 },
    { .response = NULL, .provider = "b", .provider_plugin = "provider-local", .model = "m", .cost = 0.00012345678901234,
      .duration_ms = 120000, .attempts = 3, .received_to_start_ms = 0.1, .has_first_chunk = TRUE,
      .provider_first_chunk_ms = 17.125, .provider_ms = 1e-7, .session_id = "sess-1" },
    { .response = "", .provider = "p\"q", .provider_plugin = "x", .model = NULL, .cost = 1.0 / 3,
      .duration_ms = 0, .attempts = 2, .received_to_start_ms = -0.0, .provider_ms = 2.5e21, .session_id = "" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (provider_results); i++)
    for (guint j = 0; j < G_N_ELEMENTS (results); j++)
      {
        g_autoptr (JsonNode) holder = NULL;
        JsonObject *in = provider_results[i] ? object_of (provider_results[i], &holder) : NULL;

        assert_result_same (in, &results[j]);
      }
}

static void
test_result_overrides_in_place (void)
{
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *in = object_of ("{\"a\":1,\"provider\":\"theirs\",\"model\":\"\"}", &holder);
  EnsCompletionResult r = { .provider = "mine", .provider_plugin = "pp", .model = "asked", .attempts = 1 };
  g_autoptr (GString) got = g_string_new (NULL);
  g_autoptr (JsonNode) back = NULL;
  JsonObject *o;
  g_autoptr (GList) names = NULL;

  ens_completion_result_write (got, in, &r);
  back = ens_json_parse (got->str, got->len, NULL);
  o = json_node_get_object (back);
  g_assert_cmpstr (json_object_get_string_member (o, "provider"), ==, "mine");
  g_assert_cmpstr (json_object_get_string_member (o, "model"), ==, "asked");
  g_assert_false (json_object_has_member (o, "response"));
  g_assert_true (json_object_get_null_member (o, "session_id"));
  g_assert_cmpuint (json_object_get_size (o), ==, 9);
  names = json_object_get_members (o);
  /* Each name once (the provider's place taken, nothing appended twice). */
  for (GList *l = names; l; l = l->next)
    g_assert_null (g_list_find_custom (l->next, l->data, (GCompareFunc) strcmp));
}

static void
test_ack (void)
{
  static const char *const decisions[] = {
    "{\"provider\":\"instant\",\"reasoning\":\"instant: score 0.76\",\"estimated_cost\":0,\"confidence\":0.7594,"
    "\"policy\":\"multifactor\",\"ranking\":[\"instant\",\"other\"],\"scores\":{\"instant\":0.7594,"
    "\"other\":0.1}}",
    "{\"provider\":\"a\"}",
    "{\"provider\":\"a\",\"scores\":{},\"policy\":\"cheapest\",\"estimated_cost\":1.0000000000000002,"
    "\"extra\":[1,2,3]}",
    "{\"provider\":\"a\",\"scores\":{\"a\":{\"x\":0.5,\"y\":[0.25]},\"b\":1,\"c\":1.5e-300,\"d\":null},"
    "\"confidence\":\"high\",\"ranking\":[],\"estimated_cost\":0.000123}",
  };
  EnsCompletionAck acks[] = {
    { .request_id = "req_0123456789ab", .queue_position = 1, .provider = "instant", .model = "bench-instant",
      .reasoning = "instant: score 0.76 (quality 0.95, cost 1.00, latency 0.80, context 1.00)" },
    { .request_id = "req_x", .queue_position = 4096, .provider = "a", .model = NULL, .reasoning = NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (decisions); i++)
    for (guint j = 0; j < G_N_ELEMENTS (acks); j++)
      {
        g_autoptr (JsonNode) holder = NULL;
        g_autoptr (JsonNode) tree = NULL;
        g_autofree char *want = NULL;
        g_autoptr (GString) got = g_string_new (NULL);
        EnsCompletionAck ack = acks[j];

        ack.decision = object_of (decisions[i], &holder);
        tree = ens_completion_ack_node (&ack);
        want = ens_json_write_to_string (tree, FALSE);
        ens_completion_ack_write (got, &ack);
        g_assert_cmpstr (got->str, ==, want);
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/completion-answer/result", test_result);
  g_test_add_func ("/completion-answer/result-overrides-in-place", test_result_overrides_in_place);
  g_test_add_func ("/completion-answer/ack", test_ack);
  return g_test_run ();
}
