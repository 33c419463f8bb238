/* test-upstream.c — the upstream library of the HTTP providers
 * (plugins/common/upstream) on bytes, without a network: the SSE reader,
 * tool calls by index, type-checked JSON reads and the two APIs' answer
 * readers.  The providers' own tests (test-provider-openai.c,
 * test-provider-anthropic.c) drive the same code through a fake upstream. */
#include "ens-json-write.h"
#include "ens-upstream.h"

#include <string.h>

/* Tool calls are assembled by index, whatever the order of their pieces. */
static void
test_tool_calls_interleaved (void)
{
  static const char *const chunks[] = {
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":7,\"id\":\"b\",\"function\":{\"name\":\"second\","
    "\"arguments\":\"{\\\"n\\\":\"}},{\"index\":2,\"id\":\"a\",\"function\":{\"name\":\"fir\"}}]}}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":2,\"function\":{\"name\":\"st\",\"arguments\":\"[1\"}}]}}]}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":7,\"id\":null,\"function\":{\"arguments\":\"2}\"}},"
    "{\"index\":2,\"function\":{\"arguments\":\",2]\"}}]}}]}",
    "{\"choices\":[{\"delta\":{\"content\":null},\"finish_reason\":\"tool_calls\"}],\"usage\":null}",
  };
  g_autoptr (EnsUpstreamAnswer) answer = ens_upstream_answer_new (2, NULL, NULL, NULL);
  g_autoptr (JsonNode) result = NULL;
  JsonArray *calls;
  JsonObject *first, *second;

  for (guint i = 0; i < G_N_ELEMENTS (chunks); i++)
    {
      g_autoptr (GError) error = NULL;
      gboolean done;

      g_assert_true (ens_upstream_openai_read_chunk (answer, chunks[i], strlen (chunks[i]), &done, &error));
      g_assert_no_error (error);
    }
  result = ens_upstream_answer_result (answer, NULL, answer->stop_reason);
  calls = json_object_get_array_member (json_node_get_object (result), "tool_calls");
  g_assert_cmpuint (json_array_get_length (calls), ==, 2);
  first = json_array_get_object_element (calls, 0); /* in order of first appearance */
  second = json_array_get_object_element (calls, 1);
  g_assert_cmpstr (json_object_get_string_member (first, "id"), ==, "b");
  g_assert_cmpstr (json_object_get_string_member (first, "name"), ==, "second");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (first, "arguments"), "n"), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (second, "name"), ==, "first");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (second, "arguments")), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (result), "finish_reason"), ==, "tool_calls");
}

/* A set that never had a call (made at its first), and its cap. */
static void
test_tool_calls_empty (void)
{
  g_autoptr (EnsToolCalls) calls = ens_tool_calls_new (1, NULL);
  g_autoptr (JsonNode) none = ens_tool_calls_to_json (calls);
  g_autoptr (JsonNode) start = ens_tool_calls_start_event (calls, 3);
  g_autoptr (JsonNode) one = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *none_text = NULL, *start_text = NULL, *one_text = NULL;
  gboolean started = TRUE;

  g_assert_cmpuint (ens_tool_calls_count (calls), ==, 0);
  none_text = ens_json_write_to_string (none, FALSE);
  g_assert_cmpstr (none_text, ==, "[]");
  start_text = ens_json_write_to_string (start, FALSE);
  g_assert_cmpstr (start_text, ==, "{\"index\":3,\"id\":null,\"name\":\"\"}");

  g_assert_true (ens_tool_calls_update (calls, 3, "c", NULL, "{\"a\":", &started, &error));
  g_assert_false (started); /* no name yet */
  g_assert_true (ens_tool_calls_update (calls, 3, NULL, "f", "1}", &started, &error));
  g_assert_true (started);
  g_assert_false (ens_tool_calls_update (calls, 4, "d", "g", NULL, &started, &error));
  g_assert_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_LIMIT);
  g_assert_cmpuint (ens_tool_calls_count (calls), ==, 1);
  one = ens_tool_calls_to_json (calls);
  one_text = ens_json_write_to_string (one, FALSE);
  g_assert_cmpstr (one_text, ==, "[{\"id\":\"c\",\"type\":\"function\",\"name\":\"f\",\"arguments\":{\"a\":1}}]");
}

typedef struct {
  GString *log;
  guint stop_after;
} SseLog;

static gboolean
sse_log_event (const char *event, const char *data, gsize len, gpointer user_data)
{
  SseLog *l = user_data;

  g_assert_cmpuint (strlen (data), ==, len);
  g_string_append_printf (l->log, "[%s|%s]", event ? event : "-", data);
  return l->stop_after == 0 || --l->stop_after > 0;
}

/* (transfer full) the events of @text fed @piece bytes at a time. */
static char *
sse_events (const char *text, gsize piece, gsize max_line, guint stop_after, GError **error)
{
  SseLog l = { g_string_new (NULL), stop_after };
  g_autoptr (EnsSseReader) r = ens_sse_reader_new (max_line, sse_log_event, &l);
  gsize len = strlen (text);
  gboolean ok = TRUE;

  for (gsize at = 0; ok && at < len; at += piece)
    ok = ens_sse_reader_feed (r, text + at, MIN (piece, len - at), error);
  if (ok)
    ens_sse_reader_finish (r, error);
  return g_string_free (l.log, FALSE);
}

static void
test_sse_reader (void)
{
  static const char stream[] = "\xEF\xBB\xBF: a comment\r\n"
                               "data: one\r\n\r\n"
                               "event: named\rdata:two\r\rdata: three\n"
                               "data: lines\n"
                               "id: 7\nretry: 10\nfield without colon\n\n"
                               "data\n\n"
                               "event: lonely\n\n"
                               "data: unterminated";
  static const char expected[] = "[-|one][named|two][-|three\nlines][-|][-|unterminated]";

  /* Any split, down to one byte at a time (CRLF across two pieces too). */
  for (gsize piece = 1; piece <= sizeof stream; piece++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *events = sse_events (stream, piece, 64, 0, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (events, ==, expected);
    }
  /* The callback stops the reader. */
  {
    g_autofree char *events = sse_events (stream, 5, 64, 2, NULL);
    g_assert_cmpstr (events, ==, "[-|one][named|two]");
  }
  /* A line over the cap, in one piece or many; an event's data too. */
  for (gsize piece = 1; piece <= 100; piece += 33)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GError) error2 = NULL;
      g_autofree char *events = sse_events ("data: ok\n\ndata: 0123456789012345678901234567890\n\n", piece, 24, 0,
                                            &error);
      g_autofree char *events2 = sse_events ("data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n", piece,
                                             24, 0, &error2);

      g_assert_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_LIMIT);
      g_assert_cmpstr (events, ==, "[-|ok]");
      g_assert_error (error2, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_LIMIT);
      g_assert_cmpstr (events2, ==, "");
    }
  /* CR-only lines by the megabyte stay linear (no quadratic rescans). */
  {
    gsize n = 4 << 20;
    g_autofree char *crs = g_malloc (n + 1);
    g_autoptr (GError) error = NULL;
    g_autofree char *events = NULL;

    memset (crs, '\r', n);
    crs[n] = '\0';
    events = sse_events (crs, 16384, 64, 0, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (events, ==, "");
  }
}



/* Absent and null read as absent; another type is an error naming the
 * member, and the first error sticks. */
static void
test_typed_reads (void)
{
  static const char text[] = "{\"s\":\"x\",\"n\":null,\"i\":3,\"f\":3.0,\"h\":0.5,\"neg\":-1,\"o\":{},\"a\":[],"
                             "\"b\":true}";
  g_autoptr (JsonNode) root = ens_upstream_json_parse (text, strlen (text), NULL);
  JsonObject *obj = json_node_get_object (root);
  g_autoptr (GError) error = NULL;
  gint64 i = 0;
  double d = 0;

  g_assert_cmpstr (ens_upstream_string (obj, "s", NULL, &error), ==, "x");
  g_assert_null (ens_upstream_string (obj, "n", NULL, &error));
  g_assert_null (ens_upstream_string (obj, "missing", NULL, &error));
  g_assert_true (ens_upstream_int (obj, "i", NULL, &i, &error) && i == 3);
  g_assert_true (ens_upstream_int (obj, "f", NULL, &i, &error) && i == 3);
  g_assert_true (ens_upstream_number (obj, "h", NULL, &d, &error) && d == 0.5);
  g_assert_nonnull (ens_upstream_object (obj, "o", NULL, &error));
  g_assert_nonnull (ens_upstream_array (obj, "a", NULL, &error));
  g_assert_true (ens_upstream_boolean (obj, "b", FALSE));
  g_assert_true (ens_upstream_boolean (obj, "s", TRUE)); /* lenient: the fallback */
  g_assert_no_error (error);

  g_assert_false (ens_upstream_int (obj, "h", "usage", &i, &error));
  g_assert_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED);
  g_assert_cmpstr (error->message, ==, "usage.h is a number, not an integer");
  /* Sticky: later reads do nothing and keep the first error. */
  g_assert_null (ens_upstream_string (obj, "s", NULL, &error));
  g_assert_null (ens_upstream_object (obj, "a", NULL, &error));
  g_assert_cmpstr (error->message, ==, "usage.h is a number, not an integer");
  g_clear_error (&error);
  g_assert_false (ens_upstream_count (obj, "neg", NULL, &i, &error));
  g_assert_cmpstr (error->message, ==, "neg is negative (-1)");
  g_clear_error (&error);
  /* Without an error to set, a wrong type reads as absent. */
  g_assert_null (ens_upstream_object (obj, "a", NULL, NULL));
  g_assert_null (ens_upstream_string (NULL, "s", NULL, NULL));
}

/* json-glib recurses once per level: nesting is refused before it parses,
 * brackets inside strings do not count. */
static void
test_parse_depth (void)
{
  GString *deep = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ok = NULL;
  JsonNode *refused;

  for (guint i = 0; i < 512; i++)
    g_string_append_c (deep, '[');
  g_string_append (deep, "\"[[[[\\\"[[[[\"");
  for (guint i = 0; i < 512; i++)
    g_string_append_c (deep, ']');
  ok = ens_upstream_json_parse (deep->str, deep->len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ok);
  g_string_prepend_c (deep, '[');
  g_string_append_c (deep, ']');
  refused = ens_upstream_json_parse (deep->str, deep->len, &error);
  g_assert_null (refused);
  g_assert_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_MALFORMED);
  g_string_free (deep, TRUE);
}

typedef struct {
  GString *chunks;
  GString *events;
} Sink;

static void
sink_chunk (gpointer data, const char *text)
{
  g_string_append_printf (((Sink *) data)->chunks, "<%s>", text);
}

static void
sink_event (gpointer data, const char *type, JsonNode *node)
{
  g_autofree char *json = json_to_string (node, FALSE);
  g_string_append_printf (((Sink *) data)->events, "%s %s;", type, json);
}

static const EnsUpstreamSink test_sink = { sink_chunk, sink_event };

/* An Anthropic event stream, read event by event: chunks and
 * tool_call_start reported as they come, the result in OpenAI's words. */
static void
test_anthropic_stream (void)
{
  static const char *const events[][2] = {
    { "message_start", "{\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}" },
    { "content_block_start", "{\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}" },
    { "content_block_delta", "{\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}" },
    { "content_block_delta", "{\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}" },
    { "content_block_start", "{\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"calc\","
                             "\"input\":{}}}" },
    { "content_block_delta", "{\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}" },
    { "content_block_delta", "{\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}" },
    { "ping", "{\"type\":\"ping\"}" },
    { NULL, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":5}}" },
    { "message_stop", "{\"type\":\"message_stop\"}" },
  };
  Sink sink = { g_string_new (NULL), g_string_new (NULL) };
  g_autoptr (EnsUpstreamAnswer) answer = ens_upstream_answer_new (8, NULL, &test_sink, &sink);
  g_autoptr (JsonNode) result = NULL;
  JsonObject *r, *call;
  gboolean done = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      g_autoptr (GError) error = NULL;

      g_assert_false (done);
      g_assert_true (ens_upstream_anthropic_read_event (answer, events[i][0], events[i][1], strlen (events[i][1]),
                                                        &done, &error));
      g_assert_no_error (error);
    }
  g_assert_true (done);
  g_assert_cmpstr (sink.chunks->str, ==, "<Hi>");
  g_assert_cmpstr (sink.events->str, ==, "tool_call_start {\"index\":1,\"id\":\"t1\",\"name\":\"calc\"};");
  result = ens_upstream_answer_result (answer, NULL, ens_upstream_anthropic_finish_reason (answer));
  r = json_node_get_object (result);
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==, "Hi");
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "claude-x");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "tool_calls");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (r, "usage"), "output_tokens"), ==, 5);
  call = json_array_get_object_element (json_object_get_array_member (r, "tool_calls"), 0);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (call, "arguments"), "a"), ==, 1);
  g_string_free (sink.chunks, TRUE);
  g_string_free (sink.events, TRUE);
}

/* An embeddings answer: vectors put in order by index, usage read; every
 * answer that does not fit the inputs is refused, saying what is wrong. */
static void
test_openai_embeddings (void)
{
  static const char good[] = "{\"data\":[{\"index\":1,\"embedding\":[3,4]},{\"index\":0,\"embedding\":[0.5,-1]}],"
                             "\"model\":\"emb-v2\",\"usage\":{\"prompt_tokens\":7,\"total_tokens\":7}}";
  static const struct {
    const char *body;
    const char *says;
  } bad[] = {
    { "{\"data\":[{\"embedding\":[1]}]}", "answered 1 embeddings for 2 inputs" },
    { "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,\"embedding\":[2]}]}", "out of range or repeated" },
    { "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":5,\"embedding\":[2]}]}", "out of range or repeated" },
    { "{\"data\":[{\"embedding\":[1,2]},{\"embedding\":[2]}]}", "as long as the others" },
    { "{\"data\":[{\"embedding\":[]},{\"embedding\":[]}]}", "data[0].embedding is not a list of 1 to" },
    { "{\"data\":[{\"embedding\":[1]},{\"embedding\":[\"x\"]}]}", "data[1].embedding[0] is not a number" },
    { "{\"data\":[{\"embedding\":\"AAAA\"},{\"embedding\":[1]}]}", "data[0].embedding" },
    { "{\"data\":[1,2]}", "data[0] is not an object" },
    { "{\"data\":{}}", "data" },
    { "{\"error\":{\"message\":\"no such model\"}}", "no such model" },
    { "not json", "malformed JSON" },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) result = ens_upstream_openai_read_embeddings (NULL, good, strlen (good), 2, "asked", &error);
  JsonObject *r;
  JsonArray *e;

  g_assert_no_error (error);
  r = json_node_get_object (result);
  e = json_object_get_array_member (r, "embeddings");
  g_assert_cmpfloat (json_array_get_double_element (json_array_get_array_element (e, 0), 1), ==, -1);
  g_assert_cmpfloat (json_array_get_double_element (json_array_get_array_element (e, 1), 0), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "emb-v2");
  g_assert_cmpint (json_object_get_int_member (r, "dims"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (r, "usage"), "input_tokens"), ==, 7);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) err = NULL;
      g_autoptr (JsonNode) none = ens_upstream_openai_read_embeddings (NULL, bad[i].body, strlen (bad[i].body), 2,
                                                                       "asked", &err);
      g_assert_null (none);
      g_assert_error (err, ENS_UPSTREAM_ERROR, err->code);
      if (!strstr (err->message, bad[i].says))
        g_error ("%s: %s (wanted %s)", bad[i].body, err->message, bad[i].says);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/upstream/sse-reader", test_sse_reader);
  g_test_add_func ("/upstream/tool-calls-interleaved", test_tool_calls_interleaved);
  g_test_add_func ("/upstream/tool-calls-empty", test_tool_calls_empty);
  g_test_add_func ("/upstream/typed-reads", test_typed_reads);
  g_test_add_func ("/upstream/parse-depth", test_parse_depth);
  g_test_add_func ("/upstream/anthropic-stream", test_anthropic_stream);
  g_test_add_func ("/upstream/openai-embeddings", test_openai_embeddings);
  return g_test_run ();
}
