/* test-provider-openai.c — provider-openai against an in-process server
 * speaking the Chat Completions wire format, through a fake host.
 *
 * Each backend NAME points at base-url http://127.0.0.1:PORT/NAME/v1, and
 * the server picks its behaviour from NAME. */
#include "ens-fake-host.h"
#include "ens-fake-upstream.h"
#include "ens-json.h"
#include "ens-upstream.h"

#include <string.h>

typedef struct {
  guint requests;
  JsonNode *body; /* of the last request */
  char *text;     /* the same as it came */
  char *head;     /* its request line and headers, one a line, in order */
  char *auth;     /* its Authorization header */
  gboolean closed;
} Scenario;

static GHashTable *scenarios; /* name -> Scenario* */
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
  "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-test-2024\","
  "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello there\"},"
  "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}";

static const char *const stream_pieces[] = {
  "data: {\"model\":\"gpt-test-2024\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
  ": keep-alive comment\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n",
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":null}]}\n\n",
  "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
  "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n",
  "data: [DONE]\n\n",
  NULL
};

static const char *const nousage_pieces[] = {
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abcdefgh\"}}]}\n\n",
  "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
  "data: [DONE]\n\n",
  NULL
};

static const char *const tools_pieces[] = {
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
  "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n",
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}}]}\n\n",
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]}\n\n",
  "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
  "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":9}}\n\n",
  "data: [DONE]\n\n",
  NULL
};

static const char tools_plain_answer[] =
  "{\"model\":\"gpt-test\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
  "\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":"
  "\"{\\\"x\\\":1,\\\"y\\\":2}\"}},{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"noop\","
  "\"arguments\":\"not json\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":7,"
  "\"completion_tokens\":4}}";

static const char *const endless_pieces[] = {
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tick \"}}]}\n\n",
  NULL
};

static const char *const stall_pieces[] = {
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n",
  NULL
};

static void hostile_reply (SoupServerMessage *msg, JsonNode *request);

static void
server_cb (SoupServer *srv, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  g_auto (GStrv) parts = g_strsplit (path + 1, "/", 2);
  const char *name = parts[0];
  Scenario *sc = scenario (name);
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");

  sc->requests++;
  if (sc->body)
    json_node_unref (sc->body);
  sc->body = fake_server_request_json (msg);
  {
    SoupMessageBody *raw = soup_server_message_get_request_body (msg);
    g_autoptr (GBytes) bytes = soup_message_body_flatten (raw);
    gsize len;
    const char *data = g_bytes_get_data (bytes, &len);

    g_free (sc->text);
    sc->text = g_strndup (data, len);
  }
  {
    GString *head = g_string_new (NULL);
    SoupMessageHeadersIter iter;
    const char *hname, *hvalue;

    g_string_append_printf (head, "%s %s%s%s\n", soup_server_message_get_method (msg), path,
                            soup_server_message_get_uri (msg) && g_uri_get_query (soup_server_message_get_uri (msg))
                              ? "?" : "",
                            soup_server_message_get_uri (msg) && g_uri_get_query (soup_server_message_get_uri (msg))
                              ? g_uri_get_query (soup_server_message_get_uri (msg)) : "");
    soup_message_headers_iter_init (&iter, soup_server_message_get_request_headers (msg));
    while (soup_message_headers_iter_next (&iter, &hname, &hvalue))
      g_string_append_printf (head, "%s: %s\n", hname, hvalue);
    g_free (sc->head);
    sc->head = g_string_free (head, FALSE);
  }
  g_free (sc->auth);
  sc->auth = g_strdup (auth);

  if (strcmp (soup_server_message_get_method (msg), "POST") != 0 || !g_str_has_suffix (path, "/v1/chat/completions"))
    fake_server_reply (msg, 404, JSON_TYPE, "{\"error\":{\"message\":\"no such route\"}}");
  else if (strcmp (name, "plain") == 0)
    fake_server_reply (msg, 200, JSON_TYPE, plain_answer);
  else if (strcmp (name, "stream") == 0)
    fake_server_stream (msg, SSE_TYPE, stream_pieces, 30, FALSE, FALSE, &sc->closed);
  else if (strcmp (name, "nokey") == 0)
    fake_server_stream (msg, SSE_TYPE, nousage_pieces, 5, FALSE, FALSE, &sc->closed);
  else if (strcmp (name, "tools") == 0)
    fake_server_stream (msg, SSE_TYPE, tools_pieces, 5, FALSE, FALSE, &sc->closed);
  else if (strcmp (name, "toolsplain") == 0)
    fake_server_reply (msg, 200, JSON_TYPE, tools_plain_answer);
  else if (strcmp (name, "retry500") == 0)
    {
      if (sc->requests == 1)
        fake_server_reply (msg, 500, JSON_TYPE, "{\"error\":{\"message\":\"The server had an error\"}}");
      else
        fake_server_reply (msg, 200, JSON_TYPE, plain_answer);
    }
  else if (strcmp (name, "retry429") == 0)
    {
      if (sc->requests == 1)
        {
          soup_message_headers_replace (soup_server_message_get_response_headers (msg), "retry-after", "1");
          fake_server_reply (msg, 429, JSON_TYPE, "{\"error\":{\"message\":\"Rate limit reached\"}}");
        }
      else
        fake_server_reply (msg, 200, JSON_TYPE, plain_answer);
    }
  else if (strcmp (name, "auth") == 0)
    fake_server_reply (msg, 401, JSON_TYPE,
                       "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\"}}");
  else if (strcmp (name, "bad") == 0)
    fake_server_reply (msg, 400, JSON_TYPE, "{\"error\":{\"message\":\"max_tokens is too large\"}}");
  else if (strcmp (name, "down") == 0)
    fake_server_reply (msg, 503, "text/plain", "upstream unavailable");
  else if (strcmp (name, "ratelimited") == 0)
    fake_server_reply (msg, 429, JSON_TYPE, "{\"error\":{\"message\":\"slow down\"}}");
  else if (strcmp (name, "hang") == 0 || strcmp (name, "stopping") == 0)
    fake_server_hang (msg);
  else if (strcmp (name, "stall") == 0)
    fake_server_stream (msg, SSE_TYPE, stall_pieces, 10, TRUE, FALSE, &sc->closed);
  else if (strcmp (name, "endless") == 0)
    fake_server_stream (msg, SSE_TYPE, endless_pieces, 20, FALSE, TRUE, &sc->closed);
  else if (strcmp (name, "ignorestream") == 0)
    fake_server_reply (msg, 200, JSON_TYPE, plain_answer);
  else if (strcmp (name, "truncated") == 0)
    fake_server_stream (msg, SSE_TYPE, stall_pieces, 5, FALSE, FALSE, &sc->closed);
  else if (strcmp (name, "garbage") == 0)
    fake_server_reply (msg, 200, JSON_TYPE, "<html>not json</html>");
  else if (strcmp (name, "hostile") == 0)
    hostile_reply (msg, sc->body);
  else
    fake_server_reply (msg, 404, JSON_TYPE, "{\"error\":{\"message\":\"unknown scenario\"}}");
}

static void
add_backend (const char *name, guint timeout_ms, guint max_retries, gboolean with_key)
{
  g_autoptr (GSettings) s = fake_host_provider_settings (name);
  g_autofree char *url = g_strdup_printf ("%s/%s/v1/", base_url, name); /* trailing '/' is dropped */
  const char *models[] = { "fast", "gpt-test-big", NULL };
  GVariantBuilder map;

  g_settings_set_string (s, "plugin", "provider-openai");
  g_settings_set_string (s, "base-url", url);
  g_settings_set_strv (s, "models", models);
  g_variant_builder_init (&map, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&map, "{ss}", "fast", "gpt-test");
  g_settings_set_value (s, "model-map", g_variant_builder_end (&map));
  g_settings_set_uint (s, "timeout-ms", timeout_ms);
  g_settings_set_uint (s, "max-retries", max_retries);
  g_settings_set_double (s, "quality", 0.9);
  g_settings_set_double (s, "cost-input-per-1k", 0.5);
  if (with_key)
    {
      g_autofree char *file = fake_key_file ("sk-test-key");
      g_settings_set_string (s, "api-key-file", file);
    }
  else
    {
      g_settings_reset (s, "api-key-file");
      g_settings_set_string (s, "api-key-env", "ENS_TEST_UNSET_KEY_VARIABLE");
    }
}

static void
plugin_start (void)
{
  g_autoptr (GError) error = NULL;

  instance = desc->init (fake_host (), fake_plugin_self (), &error);
  g_assert_no_error (error);
  g_assert_nonnull (instance);
}

/* (transfer full) a completion of @request_json on @backend, run to its end. */
static FakeCompletion *
run (const char *backend, const char *request_json, GCancellable *cancellable, guint wait_ms)
{
  FakeCompletion *c = fake_completion_new ();
  g_autoptr (JsonNode) request = json_from_string (request_json, NULL);

  g_assert_nonnull (request);
  vt->complete (instance, backend, request, (EnsCompletion *) c, cancellable);
  /* Never reported from inside complete(). */
  g_assert_cmpuint (c->ends, ==, 0);
  if (wait_ms)
    g_assert_true (fake_completion_wait (c, wait_ms));
  return c;
}

#define SIMPLE_REQUEST "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}]}"
#define STREAM_REQUEST \
  "{\"model\":\"gpt-test-big\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello world\"}]}"

static void
assert_failed (FakeCompletion *c, const char *code, const char *needle)
{
  g_assert_cmpuint (c->ends, ==, 1);
  g_assert_cmpstr (c->fail_code, ==, code);
  if (needle)
    g_assert_nonnull (strstr (c->fail_message, needle));
  g_assert_cmpuint (c->after_end, ==, 0);
}

static void
test_backends (void)
{
  g_autoptr (JsonNode) list = vt->backends (instance);
  JsonArray *array;
  JsonObject *plain = NULL;

  g_assert_true (JSON_NODE_HOLDS_ARRAY (list));
  array = json_node_get_array (list);
  g_assert_cmpuint (json_array_get_length (array), >=, 10);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *o = json_array_get_object_element (array, i);
      g_assert_cmpstr (json_object_get_string_member (o, "name"), !=, "other"); /* another plugin's */
      if (strcmp (json_object_get_string_member (o, "name"), "plain") == 0)
        plain = o;
    }
  g_assert_nonnull (plain);
  g_assert_cmpstr (json_object_get_string_member (plain, "provider"), ==, "provider-openai");
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (plain, "models"), 0), ==, "fast");
  g_assert_cmpfloat (json_object_get_double_member (plain, "quality"), ==, 0.9);
  g_assert_cmpfloat (json_object_get_double_member (plain, "cost_per_1k_input"), ==, 0.5);
  g_assert_false (json_object_get_boolean_member (plain, "local"));
  g_assert_true (json_object_has_member (plain, "max_concurrency"));
  g_assert_true (json_object_has_member (plain, "context_window"));
}

static void
test_plain (void)
{
  g_autoptr (FakeCompletion) c = run ("plain", "{\"max_tokens\":50,\"temperature\":0.5,\"messages\":[{\"role\":\"system\","
                                               "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}]}",
                                      NULL, 5000);
  Scenario *sc = scenario ("plain");
  JsonObject *r = fake_completion_result (c), *body, *usage;

  g_assert_nonnull (r);
  g_assert_cmpuint (c->ends, ==, 1);
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==, "Hello there");
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "gpt-test-2024");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "stop");
  usage = json_object_get_object_member (r, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 12);
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 3);
  g_assert_false (json_object_has_member (usage, "estimated"));
  g_assert_false (json_object_has_member (r, "tool_calls"));
  g_assert_cmpuint (c->chunks->len, ==, 0); /* not asked to stream */

  /* What went upstream: the default model through model-map, the key. */
  g_assert_cmpstr (sc->auth, ==, "Bearer sk-test-key");
  body = json_node_get_object (sc->body);
  g_assert_cmpstr (json_object_get_string_member (body, "model"), ==, "gpt-test");
  g_assert_cmpint (json_object_get_int_member (body, "max_tokens"), ==, 50);
  g_assert_cmpfloat (json_object_get_double_member (body, "temperature"), ==, 0.5);
  g_assert_false (json_object_get_boolean_member (body, "stream"));
  g_assert_false (json_object_has_member (body, "stream_options"));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (body, "messages")), ==, 2);
}

/* The port the fake upstream listens on. */
static guint
server_port (void)
{
  g_autoptr (GUri) uri = g_uri_parse (base_url, G_URI_FLAGS_NONE, NULL);

  return (guint) g_uri_get_port (uri);
}

/* What goes upstream, byte for byte: members in this order, messages as
 * they came but for the tool loop's, written in the Chat Completions form,
 * numbers as the core writes them. */
static void
test_request_bytes (void)
{
  static const char request[] =
    "{\"stream\":true,\"max_tokens\":7,\"temperature\":0.1,\"model\":\"fast\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be \\\"brief\\\" \\u00e9\\n\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],\"name\":\"u\",\"n\":1.5e300},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"name\":\"get\","
    "\"arguments\":{\"q\":1}},{\"id\":\"c2\",\"name\":\"put\",\"arguments\":\"{}\"}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"name\":\"get\",\"content\":\"42\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c3\",\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}],"
    "\"tools\":[{\"name\":\"get\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\"}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"put\"}},7],\"tool_choice\":\"auto\"}";
  static const char expected[] =
    "{\"model\":\"gpt-test\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be \\\"brief\\\" \xc3\xa9\\n\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],\"name\":\"u\",\"n\":1.5e+300},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
    "\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"q\\\":1}\"}},{\"id\":\"c2\",\"type\":\"function\","
    "\"function\":{\"name\":\"put\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c3\",\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}],"
    "\"max_tokens\":7,\"temperature\":0.1,"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"description\":\"d\","
    "\"parameters\":{\"type\":\"object\"}}},{\"type\":\"function\",\"function\":{\"name\":\"put\"}}],"
    "\"tool_choice\":\"auto\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
  g_autoptr (FakeCompletion) c = run ("plain", request, NULL, 5000);
  g_autoptr (FakeCompletion) plain = NULL;

  g_autofree char *head = NULL;

  g_assert_nonnull (fake_completion_result (c));
  g_assert_cmpstr (scenario ("plain")->text, ==, expected);
  head = g_strdup_printf ("POST /plain/v1/chat/completions\nHost: 127.0.0.1:%u\nUser-Agent: ensemble-provider/1.0\n"
                          "Accept: text/event-stream\nAuthorization: Bearer sk-test-key\n"
                          "Content-Type: application/json\nContent-Length: %zu\n",
                          server_port (), strlen (expected));
  g_assert_cmpstr (scenario ("plain")->head, ==, head);
  plain = run ("plain", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", NULL, 5000);
  g_assert_nonnull (fake_completion_result (plain));
  g_assert_cmpstr (scenario ("plain")->text, ==,
                   "{\"model\":\"gpt-test\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                   "\"stream\":false}");
  g_free (head);
  head = g_strdup_printf ("POST /plain/v1/chat/completions\nHost: 127.0.0.1:%u\nUser-Agent: ensemble-provider/1.0\n"
                          "Accept: application/json\nAuthorization: Bearer sk-test-key\n"
                          "Content-Type: application/json\nContent-Length: %zu\n",
                          server_port (), strlen (scenario ("plain")->text));
  g_assert_cmpstr (scenario ("plain")->head, ==, head);
}

static void
test_stream (void)
{
  g_autoptr (FakeCompletion) c = run ("stream", STREAM_REQUEST, NULL, 5000);
  Scenario *sc = scenario ("stream");
  JsonObject *r = fake_completion_result (c), *body, *usage;

  g_assert_nonnull (r);
  g_assert_cmpuint (c->chunks->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (c->chunks, 0), ==, "Hel");
  g_assert_cmpstr (fake_completion_text (c), ==, "Hello world");
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==, "Hello world");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "stop");
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "gpt-test-2024");
  usage = json_object_get_object_member (r, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 3);
  g_assert_false (json_object_has_member (usage, "estimated"));

  body = json_node_get_object (sc->body);
  g_assert_cmpstr (json_object_get_string_member (body, "model"), ==, "gpt-test-big"); /* not in the map */
  g_assert_true (json_object_get_boolean_member (body, "stream"));
  g_assert_true (json_object_get_boolean_member (json_object_get_object_member (body, "stream_options"),
                                                 "include_usage"));
}

/* Chunks reach the host as they arrive, not when the body is complete. */
static void
test_stream_incremental (void)
{
  g_autoptr (FakeCompletion) c = fake_completion_new ();
  g_autoptr (JsonNode) request = json_from_string (STREAM_REQUEST, NULL);
  gint64 start = g_get_monotonic_time ();

  vt->complete (instance, "stream", request, (EnsCompletion *) c, NULL);
  while (c->chunks->len == 0 && g_get_monotonic_time () - start < 5 * G_USEC_PER_SEC)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (c->chunks->len, >=, 1);
  g_assert_cmpuint (c->ends, ==, 0); /* the server is still writing (30 ms a piece) */
  g_assert_true (fake_completion_wait (c, 5000));
  g_assert_nonnull (fake_completion_result (c));
}

static void
test_stream_no_usage_no_key (void)
{
  g_autoptr (FakeCompletion) c = run ("nokey", STREAM_REQUEST, NULL, 5000);
  JsonObject *r = fake_completion_result (c), *usage;

  g_assert_nonnull (r);
  g_assert_null (scenario ("nokey")->auth); /* no key: no Authorization header */
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==, "abcdefgh");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "length");
  usage = json_object_get_object_member (r, "usage");
  g_assert_true (json_object_get_boolean_member (usage, "estimated"));
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 2); /* 8 chars / 4 */
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 4);  /* 15 chars / 4, rounded up */
}

static void
test_tool_calls_stream (void)
{
  g_autoptr (FakeCompletion) c = run ("tools", "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],"
                                               "\"tools\":[{\"name\":\"get_weather\",\"description\":\"d\","
                                               "\"parameters\":{\"type\":\"object\"}}]}",
                                      NULL, 5000);
  JsonObject *r = fake_completion_result (c), *tc, *body, *tool;
  JsonArray *calls;

  g_assert_nonnull (r);
  g_assert_cmpuint (c->events->len, ==, 1);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (c->events, 0), "tool_call_start "));
  g_assert_nonnull (strstr (g_ptr_array_index (c->events, 0), "\"name\":\"get_weather\""));
  g_assert_nonnull (strstr (g_ptr_array_index (c->events, 0), "\"id\":\"call_1\""));
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "tool_calls");
  calls = json_object_get_array_member (r, "tool_calls");
  g_assert_cmpuint (json_array_get_length (calls), ==, 1);
  tc = json_array_get_object_element (calls, 0);
  g_assert_cmpstr (json_object_get_string_member (tc, "id"), ==, "call_1");
  g_assert_cmpstr (json_object_get_string_member (tc, "name"), ==, "get_weather");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (tc, "arguments"), "city"), ==,
                   "Paris");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (r, "usage"), "output_tokens"), ==, 9);

  /* A bare tool definition went upstream in the {type, function} form. */
  body = json_node_get_object (scenario ("tools")->body);
  tool = json_array_get_object_element (json_object_get_array_member (body, "tools"), 0);
  g_assert_cmpstr (json_object_get_string_member (tool, "type"), ==, "function");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (tool, "function"), "name"), ==,
                   "get_weather");
}

static void
test_tool_calls_plain (void)
{
  g_autoptr (FakeCompletion) c = run ("toolsplain", SIMPLE_REQUEST, NULL, 5000);
  JsonObject *r = fake_completion_result (c);
  JsonArray *calls;

  g_assert_nonnull (r);
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==, "");
  calls = json_object_get_array_member (r, "tool_calls");
  g_assert_cmpuint (json_array_get_length (calls), ==, 2);
  g_assert_cmpint (json_object_get_int_member (
                     json_object_get_object_member (json_array_get_object_element (calls, 0), "arguments"), "y"),
                   ==, 2);
  /* Arguments that are not JSON stay a string. */
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (calls, 1), "arguments"), ==,
                   "not json");
  g_assert_cmpuint (c->events->len, ==, 2);
}

static void
test_retry_500 (void)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr (FakeCompletion) c = run ("retry500", SIMPLE_REQUEST, NULL, 5000);
  gint64 elapsed_ms = (g_get_monotonic_time () - start) / 1000;

  g_assert_nonnull (fake_completion_result (c));
  g_assert_cmpuint (scenario ("retry500")->requests, ==, 2);
  g_assert_cmpint (elapsed_ms, >=, 450); /* the first backoff step */
  g_assert_cmpint (elapsed_ms, <, 3000);
}

static void
test_retry_429 (void)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr (FakeCompletion) c = run ("retry429", SIMPLE_REQUEST, NULL, 5000);
  gint64 elapsed_ms = (g_get_monotonic_time () - start) / 1000;

  g_assert_nonnull (fake_completion_result (c));
  g_assert_cmpuint (scenario ("retry429")->requests, ==, 2);
  g_assert_cmpint (elapsed_ms, >=, 950); /* retry-after: 1 */
  g_assert_cmpint (elapsed_ms, <, 4000);
}

static void
test_auth_failed (void)
{
  g_autoptr (FakeCompletion) c = run ("auth", SIMPLE_REQUEST, NULL, 5000);

  assert_failed (c, "AUTH_FAILED", "Incorrect API key provided");
  g_assert_nonnull (strstr (c->fail_message, "401"));
  g_assert_cmpuint (scenario ("auth")->requests, ==, 1); /* never retried */
}

static void
test_bad_request (void)
{
  g_autoptr (FakeCompletion) c = run ("bad", SIMPLE_REQUEST, NULL, 5000);

  assert_failed (c, "BAD_REQUEST", "max_tokens is too large");
  g_assert_cmpuint (scenario ("bad")->requests, ==, 1);
}

static void
test_persistent_503 (void)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr (FakeCompletion) c = run ("down", SIMPLE_REQUEST, NULL, 8000);
  gint64 elapsed_ms = (g_get_monotonic_time () - start) / 1000;

  assert_failed (c, "UPSTREAM_ERROR", "upstream unavailable");
  g_assert_cmpuint (scenario ("down")->requests, ==, 3); /* max-retries 2 */
  g_assert_cmpint (elapsed_ms, >=, 1400);                 /* 500 + 1000 ms */
  g_assert_cmpint (elapsed_ms, <, 5000);
}

static void
test_rate_limited (void)
{
  g_autoptr (FakeCompletion) c = run ("ratelimited", SIMPLE_REQUEST, NULL, 5000);

  assert_failed (c, "RATE_LIMITED", "slow down");
  g_assert_cmpuint (scenario ("ratelimited")->requests, ==, 1); /* max-retries 0 */
}

static void
test_timeout (void)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr (FakeCompletion) c = run ("hang", SIMPLE_REQUEST, NULL, 5000);
  gint64 elapsed_ms = (g_get_monotonic_time () - start) / 1000;

  assert_failed (c, "TIMEOUT", NULL);
  g_assert_cmpint (elapsed_ms, >=, 250);
  g_assert_cmpint (elapsed_ms, <, 2000);
  g_assert_cmpuint (scenario ("hang")->requests, ==, 1);
}

/* A stream that stops sending times out; what was streamed stays. */
static void
test_stall (void)
{
  g_autoptr (FakeCompletion) c = run ("stall", STREAM_REQUEST, NULL, 5000);

  assert_failed (c, "TIMEOUT", NULL);
  g_assert_cmpuint (c->chunks->len, ==, 1);
  g_assert_cmpuint (scenario ("stall")->requests, ==, 1); /* never retried after a chunk */
}

static void
test_truncated (void)
{
  g_autoptr (FakeCompletion) c = run ("truncated", STREAM_REQUEST, NULL, 5000);

  assert_failed (c, "UPSTREAM_ERROR", "ended");
  g_assert_cmpuint (c->chunks->len, ==, 1);
}

static void
test_malformed (void)
{
  g_autoptr (FakeCompletion) c = run ("garbage", SIMPLE_REQUEST, NULL, 5000);

  assert_failed (c, "UPSTREAM_ERROR", "malformed");
}

/* A server that answers a stream request in one piece: one chunk. */
static void
test_ignored_stream (void)
{
  g_autoptr (FakeCompletion) c = run ("ignorestream", STREAM_REQUEST, NULL, 5000);

  g_assert_nonnull (fake_completion_result (c));
  g_assert_cmpuint (c->chunks->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (c->chunks, 0), ==, "Hello there");
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
  g_assert_false (sc->closed);
  cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (cancellable);
  g_assert_true (fake_completion_wait (c, 2000));
  assert_failed (c, "CANCELLED", NULL);
  g_assert_cmpint (c->ended_us - cancelled_at, <, 100 * 1000); /* at once */
  /* The upstream request is aborted: the server sees the connection go. */
  g_assert_true (fake_run_until (&sc->closed, 3000));
  fake_run_for (50);
  g_assert_cmpuint (c->after_end, ==, 0);
}

static void
test_cancel_before (void)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (FakeCompletion) c = NULL;

  g_cancellable_cancel (cancellable);
  c = run ("plain", SIMPLE_REQUEST, cancellable, 2000);
  assert_failed (c, "CANCELLED", NULL);
}

static void
test_not_configured (void)
{
  g_autoptr (FakeCompletion) c = run ("nonexistent", SIMPLE_REQUEST, NULL, 2000);
  g_autoptr (FakeCompletion) c2 = run ("plain", "{\"messages\":[]}", NULL, 2000);

  assert_failed (c, "NOT_CONFIGURED", "nonexistent");
  assert_failed (c2, "BAD_REQUEST", "messages");
}

static void
test_refused (void)
{
  g_autoptr (FakeCompletion) c = run ("refused", SIMPLE_REQUEST, NULL, 5000);

  assert_failed (c, "UPSTREAM_ERROR", NULL);
}

/* stop() with a call in flight: the call ends (CANCELLED), the upstream
 * request is dropped, and nothing reaches the host afterwards. */
static void
test_stop_in_flight (void)
{
  g_autoptr (FakeCompletion) c = fake_completion_new ();
  g_autoptr (FakeCompletion) c2 = fake_completion_new ();
  g_autoptr (JsonNode) request = json_from_string (SIMPLE_REQUEST, NULL);
  g_autoptr (JsonNode) stream_request = json_from_string (STREAM_REQUEST, NULL);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();

  vt->complete (instance, "stopping", request, (EnsCompletion *) c, cancellable);
  vt->complete (instance, "endless", stream_request, (EnsCompletion *) c2, NULL);
  fake_run_for (150);
  g_assert_cmpuint (c->ends, ==, 0);
  g_assert_cmpuint (c2->ends, ==, 0);
  desc->stop (instance);
  instance = NULL;
  assert_failed (c, "CANCELLED", NULL);
  assert_failed (c2, "CANCELLED", NULL);
  g_cancellable_cancel (cancellable); /* after stop: must not reach the plugin */
  fake_run_for (200);
  g_assert_cmpuint (c->after_end, ==, 0);
  g_assert_cmpuint (c2->after_end, ==, 0);
  plugin_start ();
}

/* ------------------------------------------------------- hostile upstream */

/* Backend "hostile" (max-line-bytes 1024, max-answer-bytes 8192,
 * max-tool-calls 3) answers what the request's last message names: one of
 * the cases below, "good" (a plain answer) or "good-stream". */
typedef struct {
  const char *name;
  gboolean stream; /* the payload is one event's data, after a good chunk */
  const char *payload;
  const char *needle; /* in the failure message */
} HostileCase;

#define GOOD_CHUNK "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"so far \"}}]}"

static const HostileCase hostile_cases[] = {
  /* Wrong types everywhere the provider reads, streamed... */
  { "index-object", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":{\"name\":\"g\"}}]}}]}",
    "choices[0].delta.tool_calls[0].index is an object, not an integer" },
  { "index-fraction", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0.5}]}}]}", "index is a number" },
  { "index-negative", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1}]}}]}", "index is negative" },
  { "index-huge", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1e300}]}}]}", "index is a number" },
  { "tool-call-number", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":[7]}}]}", "tool_calls[0] is not an object" },
  { "tool-calls-object", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":{\"0\":{}}}}]}",
    "tool_calls is an object, not an array" },
  { "tool-id-number", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":5}]}}]}", ".id is a number" },
  { "function-string", TRUE, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":\"f\"}]}}]}",
    ".function is a string, not an object" },
  { "function-name-number", TRUE,
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":1}}]}}]}",
    "function.name is a number, not a string" },
  { "arguments-array", TRUE,
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":[1]}}]}}]}",
    "function.arguments is an array, not a string" },
  { "usage-string", TRUE, "{\"choices\":[],\"usage\":{\"prompt_tokens\":\"5\",\"completion_tokens\":3}}",
    "usage.prompt_tokens is a string, not an integer" },
  { "usage-negative", TRUE, "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":-3}}",
    "usage.completion_tokens is negative" },
  { "usage-array", TRUE, "{\"choices\":[],\"usage\":[5,3]}", "usage is an array, not an object" },
  { "content-number", TRUE, "{\"choices\":[{\"delta\":{\"content\":42}}]}", "delta.content is a number" },
  { "content-object", TRUE, "{\"choices\":[{\"delta\":{\"content\":{\"text\":\"x\"}}}]}", "delta.content is an object" },
  { "delta-string", TRUE, "{\"choices\":[{\"delta\":\"x\"}]}", "choices[0].delta is a string" },
  { "choices-object", TRUE, "{\"choices\":{\"0\":{}}}", "choices is an object, not an array" },
  { "choice-number", TRUE, "{\"choices\":[3]}", "choices[0] is not an object" },
  { "finish-number", TRUE, "{\"choices\":[{\"delta\":{},\"finish_reason\":1}]}", "finish_reason is a number" },
  { "model-object", TRUE, "{\"model\":{},\"choices\":[]}", "model is an object, not a string" },
  { "chunk-array", TRUE, "[1,2,3]", "malformed JSON" },
  { "chunk-broken", TRUE, "{\"choices\":[{\"delta\":", "malformed JSON" },
  { "error-object", TRUE, "{\"error\":{\"message\":\"the model fell over\"}}", "reported an error: the model fell over" },
  /* ... and in a whole answer. */
  { "plain-content-number", FALSE,
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":7},\"finish_reason\":\"stop\"}]}",
    "message.content is a number" },
  { "plain-usage-bool", FALSE,
    "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":true,\"completion_tokens\":1}}",
    "usage.prompt_tokens is a boolean" },
  { "plain-arguments-number", FALSE,
    "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\","
    "\"arguments\":3}}]}}]}",
    "message.tool_calls[0].function.arguments is a number" },
  { "plain-index-string", FALSE,
    "{\"choices\":[{\"message\":{\"tool_calls\":[{\"index\":\"0\",\"function\":{\"name\":\"f\"}}]}}]}",
    "tool_calls[0].index is a string" },
  { "plain-no-message", FALSE, "{\"choices\":[{\"text\":\"legacy\"}]}", "without choices[0].message" },
  { "plain-message-array", FALSE, "{\"choices\":[{\"message\":[]}]}", "choices[0].message is an array" },
  /* Caps. */
  { "too-many-tool-calls", TRUE,
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"a\"}},{\"index\":1,\"function\":"
    "{\"name\":\"b\"}},{\"index\":2,\"function\":{\"name\":\"c\"}},{\"index\":3,\"function\":{\"name\":\"d\"}}]}}]}",
    "more than 3 tool calls (max-tool-calls)" },
  { "long-line", TRUE, NULL, "line longer than 1024 bytes (max-line-bytes)" },
  { "long-event", TRUE, NULL, "more than 1024 bytes of data (max-line-bytes)" },
  { "long-stream", TRUE, NULL, "streamed answer larger than 8192 bytes (max-answer-bytes)" },
  { "long-answer", FALSE, NULL, "answer larger than 8192 bytes (max-answer-bytes)" },
  { "deep", FALSE, NULL, "deeper than 512 levels" },
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
      /* One line of 2 KiB, arriving in pieces with the next ones. */
      g_string_append (s, "data: {\"choices\":[{\"delta\":{\"content\":\"");
      for (guint i = 0; i < 2048; i++)
        g_string_append_c (s, 'x');
      g_string_append (s, "\"}}]}\n\n");
    }
  else if (strcmp (name, "long-event") == 0)
    {
      /* Short lines, one event. */
      for (guint i = 0; i < 40; i++)
        g_string_append (s, "data: 0123456789012345678901234567890123456789\n");
      g_string_append (s, "\n");
    }
  else if (strcmp (name, "long-stream") == 0)
    {
      for (guint i = 0; i < 200; i++)
        g_string_append (s, "data: " GOOD_CHUNK "\n\n");
    }
  else if (strcmp (name, "long-answer") == 0)
    {
      g_string_append (s, "{\"choices\":[{\"message\":{\"content\":\"");
      for (guint i = 0; i < 10000; i++)
        g_string_append_c (s, 'y');
      g_string_append (s, "\"}}]}");
    }
  else if (strcmp (name, "deep") == 0)
    {
      for (guint i = 0; i < 2000; i++)
        g_string_append_c (s, '[');
      for (guint i = 0; i < 2000; i++)
        g_string_append_c (s, ']');
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
  event = generated ? g_steal_pointer (&generated) : g_strdup_printf ("data: %s\n\n", hc->payload);
  {
    const char *pieces[] = { "data: " GOOD_CHUNK "\n\n", event, "data: [DONE]\n\n", NULL };
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
      g_assert_nonnull (fake_completion_result (good));
      g_assert_cmpstr (json_object_get_string_member (fake_completion_result (good), "response"), ==, "Hello there");
      g_assert_cmpstr (fake_completion_text (good_stream), ==, "Hello world");
    }
}

/* The same payloads, read without a network through the library's pure
 * functions (what the fuzz targets drive). */
static void
test_hostile_chunks_pure (void)
{
  static const EnsUpstreamScanner scanner = { ens_json_scan_members, ens_json_scan_checked_members };

  /* json-glib's trees, the core's, the core's after its scanner */
  for (guint i = 0; i < 3 * G_N_ELEMENTS (hostile_cases); i++)
    {
      const HostileCase *hc = &hostile_cases[i % G_N_ELEMENTS (hostile_cases)];
      guint how = i / G_N_ELEMENTS (hostile_cases);
      g_autoptr (EnsUpstreamAnswer) answer = ens_upstream_answer_new (3, how ? ens_json_parse : NULL, NULL, NULL);
      g_autoptr (GError) error = NULL;
      gboolean done = FALSE, ok;

      if (how == 2)
        ens_upstream_answer_set_scanner (answer, &scanner);
      if (!hc->payload)
        continue;
      ok = hc->stream ? ens_upstream_openai_read_chunk (answer, hc->payload, strlen (hc->payload), &done, &error)
                      : ens_upstream_openai_read_body (answer, hc->payload, strlen (hc->payload), &error);
      g_assert_false (ok);
      g_assert_error (error, ENS_UPSTREAM_ERROR, error->code);
      g_assert_nonnull (strstr (error->message, hc->needle));
      g_assert_false (done);
    }
}

int
main (int argc, char **argv)
{
  const char *names[] = { "plain", "stream", "nokey", "tools", "toolsplain", "retry500", "retry429", "auth", "bad",
                          "down", "ratelimited", "hang", "stall", "endless", "ignorestream", "truncated",
                          "garbage", "refused", "stopping", "hostile", "other", NULL };
  int ret;

  g_test_init (&argc, &argv, NULL);
  fake_host_init ("provider-openai");
  /* The daemon's JSON: answers of the common shapes read without a tree. */
  if (g_getenv ("ENS_TEST_CORE_JSON"))
    fake_host_set_json (ens_json_parse, ens_json_scan_members, ens_json_scan_checked_members);
  scenarios = g_hash_table_new (g_str_hash, g_str_equal);
  base_url = fake_server_start (&server, server_cb, NULL);

  for (guint i = 0; names[i]; i++)
    add_backend (names[i], 10000, 2, TRUE);
  add_backend ("nokey", 10000, 2, FALSE);
  add_backend ("hang", 300, 2, TRUE);
  add_backend ("stall", 300, 2, TRUE);
  add_backend ("ratelimited", 10000, 0, TRUE);
  {
    g_autoptr (GSettings) h = fake_host_provider_settings ("hostile");
    g_settings_set_uint (h, "max-line-bytes", 1024);
    g_settings_set_uint (h, "max-answer-bytes", 8192);
    g_settings_set_uint (h, "max-tool-calls", 3);
  }
  {
    g_autoptr (GSettings) s = fake_host_provider_settings ("other");
    g_autoptr (GSettings) r = fake_host_provider_settings ("refused");
    g_settings_set_string (s, "plugin", "provider-anthropic");
    g_settings_set_string (r, "base-url", "http://127.0.0.1:1/v1"); /* nothing listens on port 1 */
  }
  fake_host_set_providers (names);

  desc = fake_plugin_load ("ENS_PROVIDER_OPENAI");
  g_assert_cmpint (desc->kind, ==, ENS_PLUGIN_KIND_PROVIDER);
  g_assert_cmpstr (desc->id, ==, "provider-openai");
  vt = desc->vtable;
  g_assert_cmpuint (vt->struct_size, >=, sizeof (EnsProviderVTable));
  plugin_start ();

  g_test_add_func ("/provider-openai/backends", test_backends);
  g_test_add_func ("/provider-openai/plain", test_plain);
  g_test_add_func ("/provider-openai/request-bytes", test_request_bytes);
  g_test_add_func ("/provider-openai/stream", test_stream);
  g_test_add_func ("/provider-openai/stream-incremental", test_stream_incremental);
  g_test_add_func ("/provider-openai/stream-no-usage-no-key", test_stream_no_usage_no_key);
  g_test_add_func ("/provider-openai/tool-calls-stream", test_tool_calls_stream);
  g_test_add_func ("/provider-openai/tool-calls-plain", test_tool_calls_plain);
  g_test_add_func ("/provider-openai/retry-500", test_retry_500);
  g_test_add_func ("/provider-openai/retry-429-retry-after", test_retry_429);
  g_test_add_func ("/provider-openai/auth-401", test_auth_failed);
  g_test_add_func ("/provider-openai/bad-400", test_bad_request);
  g_test_add_func ("/provider-openai/persistent-503", test_persistent_503);
  g_test_add_func ("/provider-openai/rate-limited", test_rate_limited);
  g_test_add_func ("/provider-openai/timeout", test_timeout);
  g_test_add_func ("/provider-openai/stream-stall", test_stall);
  g_test_add_func ("/provider-openai/stream-truncated", test_truncated);
  g_test_add_func ("/provider-openai/malformed", test_malformed);
  g_test_add_func ("/provider-openai/stream-ignored", test_ignored_stream);
  g_test_add_func ("/provider-openai/cancel-mid-stream", test_cancel_mid_stream);
  g_test_add_func ("/provider-openai/cancel-before", test_cancel_before);
  g_test_add_func ("/provider-openai/not-configured", test_not_configured);
  g_test_add_func ("/provider-openai/connection-refused", test_refused);
  g_test_add_func ("/provider-openai/hostile-upstream", test_hostile_upstream);
  g_test_add_func ("/provider-openai/hostile-chunks-pure", test_hostile_chunks_pure);
  g_test_add_func ("/provider-openai/stop-in-flight", test_stop_in_flight);
  ret = g_test_run ();

  desc->stop (instance);
  fake_run_for (50);
  soup_server_disconnect (server);
  g_object_unref (server);
  fake_run_for (100); /* let the server's closed connections be freed */
  return ret;
}
