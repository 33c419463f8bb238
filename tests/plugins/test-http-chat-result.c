/* test-http-chat-result.c — transport-http reads a non-streamed
 * COMPLETION_RESULT for a chat.completion from its text with the core's
 * scanner (ens-http-openai-result.h), or leaves it to the tree: on every
 * text it reads itself, the same as the tree gives; each case says which
 * way it goes. */
#include "ens-http-openai-result.h"
#include "ens-json.h"

#include <string.h>

static EnsHost host;

typedef struct {
  const char *data;   /* the event's data */
  gboolean by_text;   /* read without the tree */
} Case;

static const Case cases[] = {
  { "{\"request_id\":\"r1\",\"client_id\":\"c1\",\"to\":\"c1\",\"result\":{\"response\":\"Hi \\\"there\\\"\\n\\u00e9\","
    "\"provider\":\"p\",\"model\":\"m-1\",\"finish_reason\":\"stop\",\"usage\":{\"input_tokens\":10,"
    "\"output_tokens\":6},\"cost\":0.0001,\"latency_ms\":12.5,\"backend\":\"b\"}}", TRUE },
  { "{\"request_id\":\"r1\",\"result\":{}}", TRUE },                                     /* nothing: "" and zeros */
  { "{\"request_id\":\"r1\",\"result\":{\"response\":7,\"model\":null,\"provider\":[1]}}", TRUE }, /* not strings */
  { "{\"request_id\":\"r1\",\"result\":{\"model\":\"a\",\"model\":\"b\",\"usage\":{\"input_tokens\":1},"
    "\"usage\":{\"output_tokens\":2}}}", TRUE },                                           /* the last one wins */
  { "{\"request_id\":\"r1\",\"result\":{\"response\":\"x\",\"usage\":null}}", TRUE },
  { "{\"request_id\":\"r1\",\"result\":{\"usage\":{\"input_tokens\":-5,\"output_tokens\":4611686018427387904}}}", TRUE },
  { "{\"result\":{\"response\":\"x\"},\"request_id\":\"r1\"}", TRUE },                    /* any order */
  { "{\"request_id\":\"r1\",\"result\":{\"usage\":{\"input_tokens\":10.0}}}", FALSE },     /* not a plain integer */
  { "{\"request_id\":\"r1\",\"result\":{\"usage\":{\"input_tokens\":\"10\"}}}", FALSE },
  { "{\"request_id\":\"r1\",\"result\":{\"usage\":{\"input_tokens\":99999999999999999999}}}", FALSE },
  { "{\"request_id\":\"r1\",\"result\":{\"usage\":[]}}", FALSE },
  { "{\"request_id\":\"r1\",\"result\":{\"response\":\"\",\"tool_calls\":[{\"id\":\"t\",\"name\":\"f\"}]}}", FALSE },
  { "{\"request_id\":\"r1\",\"result\":{\"tool_calls\":[]}}", FALSE },
  { "{\"request_id\":\"other\",\"result\":{\"response\":\"x\"}}", FALSE },                /* not ours */
  { "{\"request_id\":\"r1\",\"reason\":\"UPSTREAM_ERROR\",\"error\":\"boom\"}", FALSE },  /* a failure */
  { "{\"request_id\":\"r1\",\"result\":\"text\"}", FALSE },
};

static void
check_same (const EnsHttpChatResult *a, const EnsHttpChatResult *b)
{
  g_assert_cmpstr (a->response, ==, b->response);
  g_assert_cmpstr (a->provider, ==, b->provider);
  g_assert_cmpstr (a->model, ==, b->model);
  g_assert_cmpstr (a->finish_reason, ==, b->finish_reason);
  g_assert_cmpint (a->input_tokens, ==, b->input_tokens);
  g_assert_cmpint (a->output_tokens, ==, b->output_tokens);
}

static void
test_cases (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *data = cases[i].data;
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) tree = ens_json_parse (data, strlen (data), &error);
      EnsHttpChatResult by_text = { 0 };
      gboolean read;

      g_test_message ("case %u: %s", i, data);
      g_assert_no_error (error);
      read = ens_http_chat_result_from_text (&host, data, strlen (data), "r1", &by_text);
      g_assert_cmpint (read, ==, cases[i].by_text);
      if (read)
        {
          JsonObject *result = json_object_get_object_member (json_node_get_object (tree), "result");
          EnsHttpChatResult by_tree = { 0 };

          ens_http_chat_result_from_tree (result, &by_tree);
          check_same (&by_text, &by_tree);
          ens_http_chat_result_clear (&by_tree);
          ens_http_chat_result_clear (&by_text);
        }
    }
}

/* What the first case holds, read from its text. */
static void
test_common_answer (void)
{
  EnsHttpChatResult r = { 0 };

  g_assert_true (ens_http_chat_result_from_text (&host, cases[0].data, strlen (cases[0].data), "r1", &r));
  g_assert_cmpstr (r.response, ==, "Hi \"there\"\n\xc3\xa9");
  g_assert_cmpstr (r.model, ==, "m-1");
  g_assert_cmpstr (r.provider, ==, "p");
  g_assert_cmpstr (ens_http_chat_finish_reason (r.finish_reason, FALSE), ==, "stop");
  g_assert_cmpint (r.input_tokens, ==, 10);
  g_assert_cmpint (r.output_tokens, ==, 6);
  ens_http_chat_result_clear (&r);
}

static void
test_ack (void)
{
  static const char ack[] = "{\"request_id\":\"r\\u0031\",\"provider\":\"openai\",\"model\":null,\"queued\":false}";
  g_autofree char *request_id = NULL, *provider = NULL, *model = NULL;

  ens_http_chat_ack_from_text (&host, ack, strlen (ack), &request_id, &provider, &model);
  g_assert_cmpstr (request_id, ==, "r1");
  g_assert_cmpstr (provider, ==, "openai");
  g_assert_null (model);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  host.struct_size = sizeof host;
  host.json_scan_members = ens_json_scan_members;
  host.json_scan_checked_members = ens_json_scan_checked_members;
  g_test_add_func ("/http-chat-result/cases", test_cases);
  g_test_add_func ("/http-chat-result/common-answer", test_common_answer);
  g_test_add_func ("/http-chat-result/ack", test_ack);
  return g_test_run ();
}
