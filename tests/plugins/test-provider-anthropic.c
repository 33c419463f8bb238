/* test-provider-anthropic.c — provider-anthropic against an in-process
 * server speaking the Messages API wire format, through a fake host.
 *
 * Each backend NAME points at base-url http://127.0.0.1:PORT/NAME, and the
 * server picks its behaviour from NAME. */
#include "ens-fake-host.h"
#include "ens-fake-upstream.h"
#include "ens-upstream.h"

#include <string.h>

typedef struct {
  guint requests;
  JsonNode *body;
  char *api_key, *version;
  gboolean closed;
} Scenario;

static GHashTable *scenarios;
static char *base_url;
static SoupServer *server;
static const EnsPluginDesc *desc;
static const EnsProviderVTable *vt;
static gpointer instance;

static Scenario *
scenario (const char *name)
{
  Scenario *sc = g_hash_table_lookup (scenarios, name);

  if (!sc)
    {
      sc = g_new0 (Scenario, 1);
      g_hash_table_insert (scenarios, g_strdup (name), sc);
    }
  return sc;
}

#define JSON_TYPE "application/json"
#define SSE_TYPE "text/event-stream"

static const char plain_answer[] =
  "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-test-20250101\","
  "\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},{\"type\":\"text\",\"text\":\" there\"},"
  "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup\",\"input\":{\"q\":\"x\"}}],"
  "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":4}}";

static const char *const stream_pieces[] = {
  "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\","
  "\"role\":\"assistant\",\"model\":\"claude-test-20250101\",\"content\":[],\"stop_reason\":null,"
  "\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
  "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
  "{\"type\":\"text\",\"text\":\"\"}}\n\n",
  "event: ping\ndata: {\"type\": \"ping\"}\n\n",
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
  "{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
  "{\"type\":\"text_delta\",\"text\":\" there\"}}\n\n",
  "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
  "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
  "{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"calc\",\"input\":{}}}\n\n",
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
  "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n",
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
  "{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n",
  "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
  "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
  "\"stop_sequence\":null},\"usage\":{\"output_tokens\":7}}\n\n",
  "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
  NULL
};

static const char *const overloaded_pieces[] = {
  "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-test\","
  "\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n",
  "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
  NULL
};

static const char *const apierror_pieces[] = {
  "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-test\","
  "\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n",
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
  "{\"type\":\"text_delta\",\"text\":\"partial\"}}\n\n",
  "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal failure\"}}\n\n",
  NULL
};

static const char *const endless_pieces[] = {
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
  "{\"type\":\"text_delta\",\"text\":\"tick \"}}\n\n",
  NULL
};

static void hostile_reply (SoupServerMessage *msg, JsonNode *request);

static void
server_cb (SoupServer *srv, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  g_auto (GStrv) parts = g_strsplit (path + 1, "/", 2);
  const char *name = parts[0];
  Scenario *sc = scenario (name);
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);

  sc->requests++;
  if (sc->body)
    json_node_unref (sc->body);
  sc->body = fake_server_request_json (msg);
  g_free (sc->api_key);
  sc->api_key = g_strdup (soup_message_headers_get_one (h, "x-api-key"));
  g_free (sc->version);
  sc->version = g_strdup (soup_message_headers_get_one (h, "anthropic-version"));

  if (strcmp (soup_server_message_get_method (msg), "POST") != 0 || !g_str_has_suffix (path, "/v1/messages"))
    fake_server_reply (msg, 404, JSON_TYPE, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
                                            "\"message\":\"no such route\"}}");
  else if (strcmp (name, "plain") == 0 || strcmp (name, "withv1") == 0)
    fake_server_reply (msg, 200, JSON_TYPE, plain_answer);
  else if (strcmp (name, "stream") == 0)
    fake_server_stream (msg, SSE_TYPE, stream_pieces, 5, FALSE, FALSE, &sc->closed);
  else if (strcmp (name, "overloaded") == 0)
    fake_server_stream (msg, SSE_TYPE, overloaded_pieces, 5, FALSE, FALSE, &sc->closed);
  else if (strcmp (name, "apierror") == 0)
    fake_server_stream (msg, SSE_TYPE, apierror_pieces, 5, FALSE, FALSE, &sc->closed);
  else if (strcmp (name, "retry529") == 0)
    {
      if (sc->requests == 1)
        fake_server_reply (msg, 529, JSON_TYPE,
                           "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}");
      else
        fake_server_reply (msg, 200, JSON_TYPE, plain_answer);
    }
  else if (strcmp (name, "auth") == 0)
    fake_server_reply (msg, 401, JSON_TYPE, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                                            "\"message\":\"invalid x-api-key\"}}");
  else if (strcmp (name, "hang") == 0)
    fake_server_hang (msg);
  else if (strcmp (name, "endless") == 0)
    fake_server_stream (msg, SSE_TYPE, endless_pieces, 20, FALSE, TRUE, &sc->closed);
  else if (strcmp (name, "hostile") == 0)
    hostile_reply (msg, sc->body);
  else
    fake_server_reply (msg, 404, JSON_TYPE, "{\"error\":{\"message\":\"unknown scenario\"}}");
}

static void
add_backend (const char *name, guint timeout_ms, gboolean with_key)
{
  g_autoptr (GSettings) s = fake_host_provider_settings (name);
  g_autofree char *url = g_strdup_printf ("%s/%s", base_url, name);
  const char *models[] = { "sonnet", "claude-other", NULL };
  GVariantBuilder map;

  g_settings_set_string (s, "plugin", "provider-anthropic");
  g_settings_set_string (s, "base-url", url);
  g_settings_set_strv (s, "models", models);
  g_variant_builder_init (&map, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&map, "{ss}", "sonnet", "claude-test");
  g_settings_set_value (s, "model-map", g_variant_builder_end (&map));
  g_settings_set_uint (s, "timeout-ms", timeout_ms);
  g_settings_set_uint (s, "max-retries", 2);
  if (with_key)
    g_settings_set_string (s, "api-key-env", "ENS_TEST_ANTHROPIC_KEY");
}

static FakeCompletion *
run (const char *backend, const char *request_json, GCancellable *cancellable, guint wait_ms)
{
  FakeCompletion *c = fake_completion_new ();
  g_autoptr (JsonNode) request = json_from_string (request_json, NULL);

  g_assert_nonnull (request);
  vt->complete (instance, backend, request, (EnsCompletion *) c, cancellable);
  g_assert_cmpuint (c->ends, ==, 0);
  if (wait_ms)
    g_assert_true (fake_completion_wait (c, wait_ms));
  return c;
}

static void
assert_failed (FakeCompletion *c, const char *code, const char *needle)
{
  g_assert_cmpuint (c->ends, ==, 1);
  g_assert_cmpstr (c->fail_code, ==, code);
  if (needle)
    g_assert_nonnull (strstr (c->fail_message, needle));
  g_assert_cmpuint (c->after_end, ==, 0);
}

#define REQUEST                                                                                                    \
  "{\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"Hi\"},"    \
  "{\"role\":\"assistant\",\"content\":\"Hello.\"},{\"role\":\"system\",\"content\":\"Answer in English.\"},"       \
  "{\"role\":\"user\",\"content\":\"Again\"}]}"
#define STREAM_REQUEST                                                                                             \
  "{\"model\":\"claude-other\",\"stream\":true,\"max_tokens\":300,\"temperature\":0.2,"                           \
  "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":\"function\",\"function\":"          \
  "{\"name\":\"calc\",\"description\":\"adds\",\"parameters\":{\"type\":\"object\"}}}]}"

static void
test_backends (void)
{
  g_autoptr (JsonNode) list = vt->backends (instance);
  JsonArray *array = json_node_get_array (list);
  gboolean found_plain = FALSE;

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *o = json_array_get_object_element (array, i);
      g_assert_cmpstr (json_object_get_string_member (o, "provider"), ==, "provider-anthropic");
      g_assert_cmpstr (json_object_get_string_member (o, "name"), !=, "openai-one");
      found_plain |= strcmp (json_object_get_string_member (o, "name"), "plain") == 0;
    }
  g_assert_true (found_plain);
}

static void
test_plain (void)
{
  g_autoptr (FakeCompletion) c = run ("plain", REQUEST, NULL, 5000);
  Scenario *sc = scenario ("plain");
  JsonObject *r = fake_completion_result (c), *body, *usage, *tc;
  JsonArray *messages;

  g_assert_nonnull (r);
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==, "Hello there");
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "claude-test-20250101");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "tool_calls");
  usage = json_object_get_object_member (r, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 10);
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 4);
  tc = json_array_get_object_element (json_object_get_array_member (r, "tool_calls"), 0);
  g_assert_cmpstr (json_object_get_string_member (tc, "id"), ==, "toolu_1");
  g_assert_cmpstr (json_object_get_string_member (tc, "name"), ==, "lookup");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (tc, "arguments"), "q"), ==, "x");
  g_assert_cmpuint (c->events->len, ==, 1);
  g_assert_cmpuint (c->chunks->len, ==, 0);

  /* What went upstream. */
  g_assert_cmpstr (sc->api_key, ==, "sk-ant-test");
  g_assert_cmpstr (sc->version, ==, "2023-06-01");
  body = json_node_get_object (sc->body);
  g_assert_cmpstr (json_object_get_string_member (body, "model"), ==, "claude-test");
  /* The request set no max_tokens: the model's own maximum, no lower cap
   * (an unknown model: the smallest any Claude takes). */
  g_assert_cmpint (json_object_get_int_member (body, "max_tokens"), ==, 4096);
  g_assert_cmpstr (json_object_get_string_member (body, "system"), ==, "You are terse.\n\nAnswer in English.");
  g_assert_false (json_object_get_boolean_member (body, "stream"));
  g_assert_false (json_object_has_member (body, "temperature"));
  messages = json_object_get_array_member (body, "messages");
  g_assert_cmpuint (json_array_get_length (messages), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (messages, i), "role"), !=,
                     "system");
}

static void
test_base_url_with_v1 (void)
{
  g_autoptr (FakeCompletion) c = run ("withv1", REQUEST, NULL, 5000);

  g_assert_nonnull (fake_completion_result (c));
}

static void
test_stream (void)
{
  g_autoptr (FakeCompletion) c = run ("stream", STREAM_REQUEST, NULL, 5000);
  JsonObject *r = fake_completion_result (c), *usage, *tc, *body, *tool;

  g_assert_nonnull (r);
  g_assert_cmpuint (c->chunks->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (c->chunks, 0), ==, "Hi");
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==, "Hi there");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "stop");
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "claude-test-20250101");
  usage = json_object_get_object_member (r, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 25);
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 7);
  g_assert_false (json_object_has_member (usage, "estimated"));
  g_assert_cmpuint (c->events->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (c->events, 0), "\"name\":\"calc\""));
  tc = json_array_get_object_element (json_object_get_array_member (r, "tool_calls"), 0);
  g_assert_cmpstr (json_object_get_string_member (tc, "id"), ==, "toolu_9");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (tc, "arguments"), "a"), ==, 1);

  body = json_node_get_object (scenario ("stream")->body);
  g_assert_true (json_object_get_boolean_member (body, "stream"));
  g_assert_cmpstr (json_object_get_string_member (body, "model"), ==, "claude-other");
  g_assert_cmpint (json_object_get_int_member (body, "max_tokens"), ==, 300);
  g_assert_cmpfloat (json_object_get_double_member (body, "temperature"), ==, 0.2);
  g_assert_false (json_object_has_member (body, "system"));
  /* An OpenAI-style tool definition went upstream in the Messages form. */
  tool = json_array_get_object_element (json_object_get_array_member (body, "tools"), 0);
  g_assert_cmpstr (json_object_get_string_member (tool, "name"), ==, "calc");
  g_assert_true (json_object_has_member (tool, "input_schema"));
  g_assert_false (json_object_has_member (tool, "type"));
}

static void
test_error_event_overloaded (void)
{
  g_autoptr (FakeCompletion) c = run ("overloaded", STREAM_REQUEST, NULL, 5000);

  assert_failed (c, "RATE_LIMITED", "Overloaded");
}

static void
test_error_event_api (void)
{
  g_autoptr (FakeCompletion) c = run ("apierror", STREAM_REQUEST, NULL, 5000);

  assert_failed (c, "UPSTREAM_ERROR", "Internal failure");
  g_assert_cmpuint (c->chunks->len, ==, 1);
  g_assert_cmpuint (scenario ("apierror")->requests, ==, 1);
}

static void
test_retry_529 (void)
{
  g_autoptr (FakeCompletion) c = run ("retry529", REQUEST, NULL, 5000);

  g_assert_nonnull (fake_completion_result (c));
  g_assert_cmpuint (scenario ("retry529")->requests, ==, 2);
}

static void
test_auth_failed (void)
{
  g_autoptr (FakeCompletion) c = run ("auth", REQUEST, NULL, 5000);

  assert_failed (c, "AUTH_FAILED", "invalid x-api-key");
  g_assert_cmpuint (scenario ("auth")->requests, ==, 1);
}

static void
test_no_key (void)
{
  g_autoptr (FakeCompletion) c = run ("nokey", REQUEST, NULL, 2000);

  assert_failed (c, "NOT_CONFIGURED", "key");
  g_assert_cmpuint (scenario ("nokey")->requests, ==, 0);
}

static void
test_only_system (void)
{
  g_autoptr (FakeCompletion) c = run ("plain", "{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", NULL, 2000);

  assert_failed (c, "BAD_REQUEST", NULL);
}

static void
test_timeout (void)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr (FakeCompletion) c = run ("hang", REQUEST, NULL, 5000);

  assert_failed (c, "TIMEOUT", NULL);
  g_assert_cmpint ((g_get_monotonic_time () - start) / 1000, <, 2000);
}

static void
test_cancel_mid_stream (void)
{
  g_autoptr (FakeCompletion) c = fake_completion_new ();
  g_autoptr (JsonNode) request = json_from_string (STREAM_REQUEST, NULL);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Scenario *sc = scenario ("endless");
  gint64 start = g_get_monotonic_time (), cancelled_at;

  vt->complete (instance, "endless", request, (EnsCompletion *) c, cancellable);
  while (c->chunks->len < 2 && g_get_monotonic_time () - start < 5 * G_USEC_PER_SEC)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (c->chunks->len, >=, 2);
  cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (cancellable);
  g_assert_true (fake_completion_wait (c, 2000));
  assert_failed (c, "CANCELLED", NULL);
  g_assert_cmpint (c->ended_us - cancelled_at, <, 100 * 1000);
  g_assert_true (fake_run_until (&sc->closed, 3000));
}

/* ------------------------------------------------------- hostile upstream */

/* Backend "hostile" (max-line-bytes 1024, max-answer-bytes 8192,
 * max-tool-calls 3) answers what the request's last message names: one of
 * the cases below, "good" (a plain answer) or "good-stream". */
typedef struct {
  const char *name;
  gboolean stream;     /* the payload is one event, after message_start */
  const char *event;   /* its "event:" name */
  const char *payload; /* its data, or a whole body */
  const char *needle;  /* in the failure message */
} HostileCase;

#define START_EVENT                                                                                                \
  "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-test\","                  \
  "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
#define TEXT_EVENT                                                                                                 \
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"                      \
  "{\"type\":\"text_delta\",\"text\":\"so far \"}}\n\n"

static const HostileCase hostile_cases[] = {
  /* Wrong types everywhere the provider reads, streamed... */
  { "start-model", TRUE, "message_start", "{\"message\":{\"model\":5}}", "message.model is a number" },
  { "start-message", TRUE, "message_start", "{\"message\":\"m\"}", "message is a string, not an object" },
  { "start-usage", TRUE, "message_start", "{\"message\":{\"usage\":{\"input_tokens\":\"3\"}}}",
    "message.usage.input_tokens is a string" },
  { "index-object", TRUE, "content_block_delta", "{\"index\":{\"name\":\"g\"},\"delta\":{}}",
    "index is an object, not an integer" },
  { "index-negative", TRUE, "content_block_start",
    "{\"index\":-2,\"content_block\":{\"type\":\"tool_use\",\"name\":\"f\"}}", "index is negative" },
  { "block-string", TRUE, "content_block_start", "{\"index\":0,\"content_block\":\"text\"}",
    "content_block is a string" },
  { "block-type-number", TRUE, "content_block_start", "{\"index\":0,\"content_block\":{\"type\":1}}",
    "content_block.type is a number" },
  { "block-text-array", TRUE, "content_block_start", "{\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":[]}}",
    "content_block.text is an array" },
  { "tool-name-number", TRUE, "content_block_start",
    "{\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":9,\"input\":{}}}",
    "content_block.name is a number" },
  { "tool-input-string", TRUE, "content_block_start",
    "{\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":\"{}\"}}",
    "content_block.input is a string, not an object" },
  { "delta-text-number", TRUE, "content_block_delta",
    "{\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":1.5}}", "delta.text is a number" },
  { "delta-json-bool", TRUE, "content_block_delta",
    "{\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":true}}", "delta.partial_json is a boolean" },
  { "delta-array", TRUE, "content_block_delta", "{\"index\":0,\"delta\":[]}", "delta is an array" },
  { "stop-reason-object", TRUE, "message_delta", "{\"delta\":{\"stop_reason\":{}},\"usage\":{\"output_tokens\":1}}",
    "delta.stop_reason is an object" },
  { "usage-negative", TRUE, "message_delta", "{\"delta\":{},\"usage\":{\"output_tokens\":-7}}",
    "usage.output_tokens is negative" },
  { "type-number", TRUE, NULL, "{\"type\":4}", "type is a number" },
  { "error-string", TRUE, "error", "{\"type\":\"error\",\"error\":\"bad\"}", "error is a string, not an object" },
  { "error-message-number", TRUE, "error", "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":5}}",
    "error.message is a number" },
  { "data-array", TRUE, "ping", "[]", "malformed JSON" },
  /* ... and in a whole answer. */
  { "plain-content-object", FALSE, NULL, "{\"type\":\"message\",\"content\":{}}", "content is an object, not an array" },
  { "plain-block-number", FALSE, NULL, "{\"type\":\"message\",\"content\":[1]}", "content[0] is not an object" },
  { "plain-text-number", FALSE, NULL, "{\"content\":[{\"type\":\"text\",\"text\":2}]}", "content[0].text is a number" },
  { "plain-tool-id-array", FALSE, NULL, "{\"content\":[{\"type\":\"tool_use\",\"id\":[],\"name\":\"f\"}]}",
    "content[0].id is an array" },
  { "plain-usage-string", FALSE, NULL, "{\"content\":[],\"usage\":\"lots\"}", "usage is a string" },
  { "plain-model-number", FALSE, NULL, "{\"content\":[],\"model\":1}", "model is a number" },
  { "plain-no-content", FALSE, NULL, "{\"type\":\"message\"}", "without content" },
  /* Caps. */
  { "too-many-tool-calls", FALSE, NULL,
    "{\"content\":[{\"type\":\"tool_use\",\"name\":\"a\"},{\"type\":\"tool_use\",\"name\":\"b\"},{\"type\":"
    "\"tool_use\",\"name\":\"c\"},{\"type\":\"tool_use\",\"name\":\"d\"}]}",
    "more than 3 tool calls (max-tool-calls)" },
  { "long-line", TRUE, NULL, NULL, "line longer than 1024 bytes (max-line-bytes)" },
  { "long-stream", TRUE, NULL, NULL, "streamed answer larger than 8192 bytes (max-answer-bytes)" },
  { "long-answer", FALSE, NULL, NULL, "answer larger than 8192 bytes (max-answer-bytes)" },
};

static const HostileCase *
hostile_case (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (hostile_cases); i++)
    if (g_strcmp0 (hostile_cases[i].name, name) == 0)
      return &hostile_cases[i];
  return NULL;
}

/* (transfer full) the bytes of a case without a fixed payload. */
static char *
hostile_generated (const char *name)
{
  GString *s = g_string_new (NULL);

  if (strcmp (name, "long-line") == 0)
    {
      g_string_append (s, "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"");
      for (guint i = 0; i < 2048; i++)
        g_string_append_c (s, 'x');
      g_string_append (s, "\"}}\n\n");
    }
  else if (strcmp (name, "long-stream") == 0)
    {
      for (guint i = 0; i < 100; i++)
        g_string_append (s, TEXT_EVENT);
    }
  else if (strcmp (name, "long-answer") == 0)
    {
      g_string_append (s, "{\"content\":[{\"type\":\"text\",\"text\":\"");
      for (guint i = 0; i < 10000; i++)
        g_string_append_c (s, 'y');
      g_string_append (s, "\"}]}");
    }
  return g_string_free (s, FALSE);
}

static void
hostile_reply (SoupServerMessage *msg, JsonNode *request)
{
  JsonArray *messages = json_object_get_array_member (json_node_get_object (request), "messages");
  JsonObject *last = json_array_get_object_element (messages, json_array_get_length (messages) - 1);
  const char *name = json_object_get_string_member (last, "content");
  const HostileCase *hc = hostile_case (name);
  g_autofree char *generated = hc && !hc->payload ? hostile_generated (name) : NULL;
  g_autofree char *event = NULL;

  if (strcmp (name, "good") == 0)
    {
      fake_server_reply (msg, 200, JSON_TYPE, plain_answer);
      return;
    }
  if (strcmp (name, "good-stream") == 0)
    {
      fake_server_stream (msg, SSE_TYPE, stream_pieces, 1, FALSE, FALSE, NULL);
      return;
    }
  g_assert_nonnull (hc);
  if (!hc->stream)
    {
      fake_server_reply (msg, 200, JSON_TYPE, generated ? generated : hc->payload);
      return;
    }
  if (generated)
    event = g_steal_pointer (&generated);
  else if (hc->event)
    event = g_strdup_printf ("event: %s\ndata: %s\n\n", hc->event, hc->payload);
  else
    event = g_strdup_printf ("data: %s\n\n", hc->payload);
  {
    const char *pieces[] = { START_EVENT, TEXT_EVENT, event, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                             NULL };
    fake_server_stream (msg, SSE_TYPE, pieces, 1, FALSE, FALSE, NULL);
  }
}

static FakeCompletion *
run_hostile (const char *name, gboolean stream)
{
  g_autofree char *request = g_strdup_printf ("{\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                                              stream ? "true" : "false", name);
  return run ("hostile", request, NULL, 5000);
}

/* Each case fails its own completion with UPSTREAM_ERROR and a message
 * that says what was wrong (no critical: the test runs with
 * G_DEBUG=fatal-criticals), and the backend serves the next completions,
 * plain and streamed, as ever. */
static void
test_hostile_upstream (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (hostile_cases); i++)
    {
      const HostileCase *hc = &hostile_cases[i];
      guint requests = scenario ("hostile")->requests;
      g_autoptr (FakeCompletion) c = run_hostile (hc->name, hc->stream);
      g_autoptr (FakeCompletion) good = run_hostile ("good", FALSE);
      g_autoptr (FakeCompletion) good_stream = run_hostile ("good-stream", TRUE);

      g_test_message ("case %s: %s", hc->name, c->fail_message);
      assert_failed (c, "UPSTREAM_ERROR", hc->needle);
      g_assert_true (g_str_has_prefix (c->fail_message, "hostile: "));
      g_assert_cmpuint (scenario ("hostile")->requests, ==, requests + 3); /* never retried */
      g_assert_cmpstr (json_object_get_string_member (fake_completion_result (good), "response"), ==, "Hello there");
      g_assert_cmpstr (fake_completion_text (good_stream), ==, "Hi there");
    }
}

/* The same events, read without a network through the library's pure
 * function (what the fuzz targets drive). */
static void
test_hostile_events_pure (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (hostile_cases); i++)
    {
      const HostileCase *hc = &hostile_cases[i];
      g_autoptr (EnsUpstreamAnswer) answer = ens_upstream_answer_new (3, NULL, NULL, NULL);
      g_autoptr (GError) error = NULL;
      gboolean done = FALSE, ok;

      if (!hc->payload)
        continue;
      ok = hc->stream ? ens_upstream_anthropic_read_event (answer, hc->event, hc->payload, strlen (hc->payload), &done,
                                                           &error)
                      : ens_upstream_anthropic_read_body (answer, hc->payload, strlen (hc->payload), &error);
      g_assert_false (ok);
      g_assert_error (error, ENS_UPSTREAM_ERROR, error->code);
      g_assert_nonnull (strstr (error->message, hc->needle));
      g_assert_false (done);
    }
}

int
main (int argc, char **argv)
{
  const char *names[] = { "plain", "withv1", "stream", "overloaded", "apierror", "retry529", "auth", "nokey",
                          "hang", "endless", "hostile", "openai-one", NULL };
  gpointer first;
  g_autoptr (GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  fake_host_init ("provider-anthropic");
  g_setenv ("ENS_TEST_ANTHROPIC_KEY", "sk-ant-test", TRUE);
  scenarios = g_hash_table_new (g_str_hash, g_str_equal);
  base_url = fake_server_start (&server, server_cb, NULL);

  for (guint i = 0; names[i]; i++)
    add_backend (names[i], 10000, strcmp (names[i], "nokey") != 0);
  add_backend ("hang", 300, TRUE);
  {
    g_autoptr (GSettings) h = fake_host_provider_settings ("hostile");
    g_settings_set_uint (h, "max-line-bytes", 1024);
    g_settings_set_uint (h, "max-answer-bytes", 8192);
    g_settings_set_uint (h, "max-tool-calls", 3);
  }
  {
    g_autoptr (GSettings) s = fake_host_provider_settings ("withv1");
    g_autoptr (GSettings) o = fake_host_provider_settings ("openai-one");
    g_autofree char *url = g_strdup_printf ("%s/withv1/v1", base_url);
    g_settings_set_string (s, "base-url", url);
    g_settings_set_string (o, "plugin", "provider-openai");
  }
  fake_host_set_providers (names);

  desc = fake_plugin_load ("ENS_PROVIDER_ANTHROPIC");
  g_assert_cmpint (desc->kind, ==, ENS_PLUGIN_KIND_PROVIDER);
  g_assert_cmpstr (desc->id, ==, "provider-anthropic");
  vt = desc->vtable;
  /* init/stop with nothing running, then the instance the tests use. */
  first = desc->init (fake_host (), fake_plugin_self (), &error);
  g_assert_no_error (error);
  desc->stop (first);
  instance = desc->init (fake_host (), fake_plugin_self (), &error);
  g_assert_no_error (error);

  g_test_add_func ("/provider-anthropic/backends", test_backends);
  g_test_add_func ("/provider-anthropic/plain", test_plain);
  g_test_add_func ("/provider-anthropic/base-url-with-v1", test_base_url_with_v1);
  g_test_add_func ("/provider-anthropic/stream", test_stream);
  g_test_add_func ("/provider-anthropic/error-event-overloaded", test_error_event_overloaded);
  g_test_add_func ("/provider-anthropic/error-event-api", test_error_event_api);
  g_test_add_func ("/provider-anthropic/retry-529", test_retry_529);
  g_test_add_func ("/provider-anthropic/auth-401", test_auth_failed);
  g_test_add_func ("/provider-anthropic/no-key", test_no_key);
  g_test_add_func ("/provider-anthropic/only-system", test_only_system);
  g_test_add_func ("/provider-anthropic/timeout", test_timeout);
  g_test_add_func ("/provider-anthropic/cancel-mid-stream", test_cancel_mid_stream);
  g_test_add_func ("/provider-anthropic/hostile-upstream", test_hostile_upstream);
  g_test_add_func ("/provider-anthropic/hostile-events-pure", test_hostile_events_pure);
  ret = g_test_run ();

  desc->stop (instance);
  fake_run_for (50);
  soup_server_disconnect (server);
  g_object_unref (server);
  fake_run_for (100); /* let the server's closed connections be freed */
  return ret;
}
