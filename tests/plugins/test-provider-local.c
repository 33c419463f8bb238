/* test-provider-local — the offline provider, dlopen()ed with a fake host:
 * its one backend, plain and streamed answers, determinism, cancel. */
#include "ens-fake-host.h"

#include <string.h>

static const EnsPluginDesc *desc;
static const EnsProviderVTable *vt;
static gpointer instance;

#define REQUEST(stream) \
  "{\"model\":\"local\",\"stream\":" stream ",\"messages\":[" \
  "{\"role\":\"system\",\"content\":\"You are terse.\"}," \
  "{\"role\":\"user\",\"content\":\"Hi there\"}," \
  "{\"role\":\"assistant\",\"content\":\"Hello\"}," \
  "{\"role\":\"user\",\"content\":\"Summarise the design document. Keep it short please\"}]}"

/* Runs one completion to its end; (transfer full) what it reported. */
static FakeCompletion *
run (const char *backend, const char *request, GCancellable *cancellable)
{
  FakeCompletion *fc = fake_completion_new ();
  g_autoptr (JsonNode) req = fake_json (request);

  vt->complete (instance, backend, req, (EnsCompletion *) fc, cancellable);
  /* Never synchronously inside complete(). */
  g_assert_cmpuint (fc->ends, ==, 0);
  g_assert_cmpuint (fc->chunks->len, ==, 0);
  g_assert_true (fake_completion_wait (fc, 5000));
  fake_run_for (20); /* nothing more may arrive */
  g_assert_cmpuint (fc->ends, ==, 1);
  g_assert_cmpuint (fc->after_end, ==, 0);
  return fc;
}

static void
test_backends (void)
{
  g_autoptr (JsonNode) list = vt->backends (instance);
  JsonObject *b;

  g_assert_cmpuint (json_array_get_length (json_node_get_array (list)), ==, 1);
  b = json_array_get_object_element (json_node_get_array (list), 0);
  g_assert_cmpstr (json_object_get_string_member (b, "name"), ==, "local");
  g_assert_cmpstr (json_object_get_string_member (b, "provider"), ==, "provider-local");
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (b, "models"), 0), ==, "local");
  g_assert_cmpfloat (json_object_get_double_member (b, "quality"), ==, 0.3);
  g_assert_cmpfloat (json_object_get_double_member (b, "cost_per_1k_input"), ==, 0);
  g_assert_cmpfloat (json_object_get_double_member (b, "cost_per_1k_output"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (b, "latency_ms"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (b, "context_window"), ==, 32768);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (b, "capabilities")), ==, 5);
  g_assert_true (json_object_get_boolean_member (b, "local"));
}

static void
check_result (FakeCompletion *fc)
{
  JsonObject *r, *usage;
  const char *response;

  g_assert_null (fc->fail_code);
  g_assert_nonnull (fc->result);
  r = json_node_get_object (fc->result);
  response = json_object_get_string_member (r, "response");
  g_test_message ("response: %s", response);
  g_assert_true (g_str_has_prefix (response, "[ensemble local provider \xe2\x80\x94 no LLM is configured] "));
  g_assert_nonnull (strstr (response, "Summarise the design document."));
  g_assert_null (strstr (response, "Hi there")); /* only the last user message */
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "local");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "stop");
  g_assert_true (json_object_get_boolean_member (r, "local"));
  usage = json_object_get_object_member (r, "usage");
  /* 3 + 2 + 1 + 8 words */
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 14);
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), >, 10);
}

static void
test_plain (void)
{
  g_autoptr (FakeCompletion) fc = run ("local", REQUEST ("false"), NULL);

  check_result (fc);
  g_assert_cmpuint (fc->chunks->len, ==, 0);
}

static void
test_stream (void)
{
  g_autoptr (FakeCompletion) fc = run ("local", REQUEST ("true"), NULL);
  const char *response;

  check_result (fc);
  response = json_object_get_string_member (json_node_get_object (fc->result), "response");
  /* Several chunks of a few words that join back to the response. */
  g_assert_cmpuint (fc->chunks->len, >, 5);
  g_assert_cmpstr (fake_completion_text (fc), ==, response);
  for (guint i = 0; i < fc->chunks->len; i++)
    {
      g_autofree char *chunk = g_strstrip (g_strdup (g_ptr_array_index (fc->chunks, i)));
      g_auto (GStrv) words = g_strsplit_set (chunk, " \n", -1);
      g_assert_cmpuint (g_strv_length (words), <=, 6);
    }
}

static void
test_deterministic (void)
{
  g_autoptr (FakeCompletion) a = run ("local", REQUEST ("false"), NULL);
  g_autoptr (FakeCompletion) b = run ("local", REQUEST ("false"), NULL);
  g_autoptr (FakeCompletion) c = run ("local", REQUEST ("true"), NULL);
  g_autofree char *ta = fake_json_text (a->result);
  g_autofree char *tb = fake_json_text (b->result);
  g_autofree char *tc = fake_json_text (c->result);

  g_assert_cmpstr (ta, ==, tb);
  g_assert_cmpstr (ta, ==, tc);
}

static void
test_long_and_empty (void)
{
  g_autoptr (GString) big = g_string_new ("{\"messages\":[{\"role\":\"user\",\"content\":\"");
  g_autoptr (FakeCompletion) fc = NULL;
  g_autoptr (FakeCompletion) none = NULL;
  const char *response;

  for (guint i = 0; i < 300; i++)
    g_string_append (big, "word\\u00e9 ");
  g_string_append (big, "\"}]}");
  fc = run ("local", big->str, NULL);
  response = json_object_get_string_member (json_node_get_object (fc->result), "response");
  /* The echo is cut at 400 characters. */
  g_assert_cmpint (g_utf8_strlen (response, -1), <, 1000);
  g_assert_nonnull (strstr (response, "300 words"));

  none = run ("local", "{\"messages\":[]}", NULL);
  g_assert_nonnull (none->result);
  g_assert_nonnull (strstr (json_object_get_string_member (json_node_get_object (none->result), "response"),
                            "no user message"));
}

/* Words of one and two characters, the last one ending the string: their
 * character 3-grams must not read past it (an overflow the sanitizer build
 * catches). */
static void
test_embeddings_of_short_words (void)
{
  g_autoptr (FakeCompletion) fc =
    run ("local", "{\"kind\":\"embeddings\",\"input\":[\"x\",\"ab\",\"a b\",\"\xc3\xa9\",\"cat x\"]}", NULL);
  JsonArray *embeddings;

  g_assert_null (fc->fail_code);
  embeddings = json_object_get_array_member (json_node_get_object (fc->result), "embeddings");
  g_assert_cmpuint (json_array_get_length (embeddings), ==, 5);
  for (guint i = 0; i < 5; i++)
    {
      JsonArray *v = json_array_get_array_element (embeddings, i);
      double norm = 0;
      for (guint j = 0; j < json_array_get_length (v); j++)
        norm += json_array_get_double_element (v, j) * json_array_get_double_element (v, j);
      g_assert_cmpfloat_with_epsilon (norm, 1.0, 1e-4); /* each text is a unit vector */
    }
}

static void
test_cancel (void)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (FakeCompletion) fc = fake_completion_new ();
  g_autoptr (JsonNode) req = fake_json (REQUEST ("true"));
  guint chunks;

  vt->complete (instance, "local", req, (EnsCompletion *) fc, cancellable);
  /* Let a few chunks through, then cancel mid-stream. */
  while (fc->chunks->len < 3)
    g_main_context_iteration (NULL, TRUE);
  g_cancellable_cancel (cancellable);
  g_assert_true (fake_completion_wait (fc, 2000));
  chunks = fc->chunks->len;
  fake_run_for (50);
  g_assert_cmpuint (fc->ends, ==, 1);
  g_assert_cmpstr (fc->fail_code, ==, "CANCELLED");
  g_assert_null (fc->result);
  g_assert_cmpuint (fc->chunks->len, ==, chunks); /* the timer stopped */
  g_assert_cmpuint (fc->after_end, ==, 0);
}

static void
test_cancelled_before (void)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (FakeCompletion) fc = NULL;

  g_cancellable_cancel (cancellable);
  fc = run ("local", REQUEST ("false"), cancellable);
  g_assert_cmpstr (fc->fail_code, ==, "CANCELLED");
}

static void
test_unknown_backend (void)
{
  g_autoptr (FakeCompletion) fc = run ("gpt", REQUEST ("false"), NULL);

  g_assert_cmpstr (fc->fail_code, ==, "NOT_CONFIGURED");
}

static void
test_stop_while_running (void)
{
  g_autoptr (GError) error = NULL;
  gpointer other = desc->init (fake_host (), fake_plugin_self (), &error);
  g_autoptr (FakeCompletion) fc = fake_completion_new ();
  g_autoptr (JsonNode) req = fake_json (REQUEST ("true"));

  g_assert_no_error (error);
  vt->complete (other, "local", req, (EnsCompletion *) fc, NULL);
  desc->stop (other);
  /* stop() removed its timers: nothing more reaches the host. */
  fake_run_for (50);
  g_assert_cmpuint (fc->ends, ==, 0);
  g_assert_cmpuint (fc->chunks->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  fake_host_init ("provider-local");
  desc = fake_plugin_load ("ENS_PROVIDER_LOCAL");
  g_assert_cmpint (desc->kind, ==, ENS_PLUGIN_KIND_PROVIDER);
  g_assert_cmpstr (desc->id, ==, "provider-local");
  vt = desc->vtable;
  instance = desc->init (fake_host (), fake_plugin_self (), &error);
  g_assert_no_error (error);

  g_test_add_func ("/provider-local/backends", test_backends);
  g_test_add_func ("/provider-local/plain", test_plain);
  g_test_add_func ("/provider-local/stream", test_stream);
  g_test_add_func ("/provider-local/deterministic", test_deterministic);
  g_test_add_func ("/provider-local/long-and-empty", test_long_and_empty);
  g_test_add_func ("/provider-local/embeddings-of-short-words", test_embeddings_of_short_words);
  g_test_add_func ("/provider-local/cancel", test_cancel);
  g_test_add_func ("/provider-local/cancelled-before", test_cancelled_before);
  g_test_add_func ("/provider-local/unknown-backend", test_unknown_backend);
  g_test_add_func ("/provider-local/stop-while-running", test_stop_while_running);
  status = g_test_run ();
  desc->stop (instance);
  return status;
}
