/* Envelope parsing (once) and encoding (once per dialect). */
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

static JsonObject *
parse_line (GBytes *bytes, JsonNode **keep)
{
  gsize len;
  const char *text = g_bytes_get_data (bytes, &len);

  g_assert_cmpint (len, >, 0);
  g_assert_cmpint (text[len - 1], ==, '\n');
  g_assert_null (memchr (text, '\n', len - 1)); /* one line */
  g_autofree char *copy = g_strndup (text, len - 1);

  *keep = json_from_string (copy, NULL);
  g_assert_nonnull (*keep);
  return json_node_get_object (*keep);
}

static EnsMessage *
parse (const char *text)
{
  return ens_message_parse_native (text, strlen (text));
}

static void
test_parse_request (void)
{
  g_autoptr (EnsMessage) m = parse ("{\"id\":\"r1\",\"action\":\"kv.get\",\"agent\":\"naming\",\"timeout_ms\":250,"
                                    "\"data\":{\"key\":\"k\"}}");

  g_assert_cmpint (m->kind, ==, ENS_MESSAGE_REQUEST);
  g_assert_false (ens_message_is_bounce (m));
  g_assert_cmpstr (m->id, ==, "r1");
  g_assert_cmpstr (m->action, ==, "kv.get");
  g_assert_cmpstr (m->agent, ==, "naming");
  g_assert_cmpuint (m->timeout_ms, ==, 250);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (m->data));
  g_assert_cmpuint (m->struct_size, ==, sizeof (EnsMessage));
}

static void
test_parse_numeric_id_round_trip (void)
{
  g_autoptr (EnsMessage) m = parse ("{\"id\":42,\"action\":\"ping\"}");
  g_autoptr (EnsMessage) reply = ens_message_new_reply (m, NULL);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *obj = parse_line (ens_message_encode (reply, ens_message_encode_native), &root);

  g_assert_true (ens_message_id_is_number (m));
  g_assert_cmpint (json_object_get_int_member (obj, "id"), ==, 42);
  g_assert_cmpstr (json_object_get_string_member (obj, "status"), ==, "success");
  g_assert_true (json_object_has_member (obj, "processing_time_ms"));
  g_assert_true (g_str_has_suffix (json_object_get_string_member (obj, "timestamp"), "Z"));
}

static void
test_parse_errors (void)
{
  static const struct {
    const char *text, *code, *id;
  } cases[] = {
    { "not json", ENS_ERR_INVALID_JSON, NULL },
    { "{\"id\":1,\"action\":\"ping\"}{\"id\":2,\"action\":\"ping\"}", ENS_ERR_INVALID_JSON, NULL },
    { "{\"action\":\"ping\"} x", ENS_ERR_INVALID_JSON, NULL },
    { "{\"action\":\"ping\",\"data\":{\"path\":\"a\\u0000/../../x\"}}", ENS_ERR_INVALID_JSON, NULL },
    { "[1,2]", ENS_ERR_INVALID_REQUEST, NULL },
    { "{\"id\":true,\"action\":\"ping\"}", ENS_ERR_INVALID_REQUEST, NULL },
    { "{\"id\":\"x\"}", ENS_ERR_INVALID_REQUEST, "x" },
    { "{\"id\":\"x\",\"action\":\"\"}", ENS_ERR_INVALID_REQUEST, "x" },
    { "{\"id\":\"x\",\"action\":7}", ENS_ERR_INVALID_REQUEST, "x" },
    { "{\"id\":\"x\",\"action\":\"a\",\"agent\":[]}", ENS_ERR_INVALID_REQUEST, "x" },
    { "{\"id\":\"x\",\"action\":\"a\",\"timeout_ms\":-1}", ENS_ERR_INVALID_REQUEST, "x" },
    { "{\"id\":\"x\",\"action\":\"a\",\"timeout_ms\":\"5\"}", ENS_ERR_INVALID_REQUEST, "x" },
    { "{\"reply_to\":{}}", ENS_ERR_INVALID_REQUEST, NULL },
    { "{\"reply_to\":\"q1\",\"status\":\"maybe\"}", ENS_ERR_INVALID_REQUEST, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (EnsMessage) m = parse (cases[i].text);
      if (m->kind != ENS_MESSAGE_ERROR || !ens_message_is_bounce (m) || g_strcmp0 (m->error_code, cases[i].code) ||
          g_strcmp0 (m->id, cases[i].id))
        g_error ("%s: got kind %d code %s id %s", cases[i].text, m->kind, m->error_code, m->id);
      g_assert_nonnull (m->error_message);
    }
}

static void
test_parse_deep_nesting (void)
{
  /* json-glib recurses per level: 100000 levels would overflow the stack. */
  GString *text = g_string_new ("{\"id\":\"deep\",\"action\":\"ping\",\"data\":");
  g_autoptr (EnsMessage) m = NULL;

  for (int i = 0; i < 100000; i++)
    g_string_append_c (text, '[');
  for (int i = 0; i < 100000; i++)
    g_string_append_c (text, ']');
  g_string_append_c (text, '}');
  m = parse (text->str);
  g_assert_cmpint (m->kind, ==, ENS_MESSAGE_ERROR);
  g_assert_cmpstr (m->error_code, ==, ENS_ERR_INVALID_JSON);
  g_string_free (text, TRUE);
}

static void
test_parse_agent_answer (void)
{
  g_autoptr (EnsMessage) ok = parse ("{\"reply_to\":\"q7\",\"status\":\"success\",\"data\":[1]}");
  g_autoptr (EnsMessage) err = parse ("{\"reply_to\":\"q8\",\"status\":\"error\",\"error\":{\"code\":\"NOPE\","
                                      "\"message\":\"no\",\"details\":{\"f\":1}}}");

  g_assert_cmpint (ok->kind, ==, ENS_MESSAGE_REPLY);
  g_assert_false (ens_message_is_bounce (ok));
  g_assert_cmpstr (ok->id, ==, "q7");
  g_assert_cmpint (err->kind, ==, ENS_MESSAGE_ERROR);
  g_assert_false (ens_message_is_bounce (err));
  g_assert_cmpstr (err->error_code, ==, "NOPE");
  g_assert_cmpstr (err->error_message, ==, "no");
  g_assert_nonnull (err->error_details);
}

static void
test_encode_event_once (void)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (JsonNode) data = json_from_string ("{\"text\":\"quote \\\" back\\\\ nl\\n tab\\t ctl\\u0001 é\","
                                                "\"f\":0.1,\"big\":12345678901234,\"neg\":-2.5e-7,\"t\":true,\"n\":null}",
                                                NULL);
  g_autoptr (EnsMessage) ev = NULL;
  g_autoptr (JsonNode) root = NULL;
  GBytes *first, *second;
  JsonObject *obj;

  init.topic = "news.tech";
  init.from = "c1-abc";
  init.to = "c2-abc";
  init.data = data;
  ev = ens_message_new (&init);
  ens_message_set_seq (ev, 7);
  first = ens_message_encode (ev, ens_message_encode_native);
  second = ens_message_encode (ev, ens_message_encode_native);
  g_assert_true (first == second); /* serialised once, shared by every subscriber */

  obj = parse_line (first, &root);
  g_assert_cmpstr (json_object_get_string_member (obj, "event"), ==, "news.tech");
  g_assert_cmpint (json_object_get_int_member (obj, "seq"), ==, 7);
  g_assert_cmpstr (json_object_get_string_member (obj, "to"), ==, "c2-abc");
  g_assert_true (json_node_equal (json_object_get_member (obj, "data"), data));
  g_assert_nonnull (strstr (g_bytes_get_data (first, NULL), "\"f\":0.1,"));
}

static void
test_encode_error (void)
{
  g_autoptr (EnsMessage) req = parse ("{\"id\":\"r9\",\"action\":\"x\"}");
  g_autoptr (JsonNode) details = json_from_string ("{\"field\":\"name\"}", NULL);
  g_autoptr (EnsMessage) err = ens_message_new_error (req, "INVALID_PARAMETERS", "name must be set", details);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *obj = parse_line (ens_message_encode (err, ens_message_encode_native), &root);
  JsonObject *e = json_object_get_object_member (obj, "error");

  g_assert_cmpstr (json_object_get_string_member (obj, "id"), ==, "r9");
  g_assert_cmpstr (json_object_get_string_member (obj, "status"), ==, "error");
  g_assert_cmpstr (json_object_get_string_member (e, "code"), ==, "INVALID_PARAMETERS");
  g_assert_cmpstr (json_object_get_string_member (e, "message"), ==, "name must be set");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (e, "details"), "field"), ==, "name");
}

/* A native publish keeps its data as the text it came as (parsed only when
 * read); anything else, or a publish naming an agent, is parsed whole. */
static void
test_parse_publish_keeps_text (void)
{
  static const char data[] = "{\"topic\":\"t\",\"data\":{\"n\": 1.50}}";
  g_autofree char *line = g_strdup_printf ("{\"id\":1,\"action\":\"publish\",\"data\":%s}", data);
  g_autoptr (EnsMessage) m = parse (line);
  g_autoptr (EnsMessage) to_agent = parse ("{\"id\":2,\"action\":\"publish\",\"data\":{\"a\":1},\"agent\":\"x\"}");
  g_autoptr (EnsMessage) answer = parse ("{\"data\":{\"a\":1},\"reply_to\":\"r\"}");
  g_autoptr (EnsMessage) ping = parse ("{\"id\":3,\"action\":\"ping\",\"data\":{\"a\":1}}");
  g_autoptr (EnsMessage) any_order = parse ("{\"data\":{\"topic\":\"t\"},\"action\":\"publish\",\"id\":-7}");
  g_autoptr (EnsMessage) odd_id = parse ("{\"id\":1.5,\"action\":\"publish\",\"data\":{\"topic\":\"t\"}}");
  gsize len;
  const char *text;

  g_assert_false (ens_message_is_bounce (m));
  g_assert_true (ens_message_has_data_text (m));
  g_assert_null (m->data);
  text = ens_message_get_data_text (m, &len);
  g_assert_cmpmem (text, len, data, strlen (data));
  g_assert_true (JSON_NODE_HOLDS_OBJECT (ens_message_get_data (m)));
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (m->data), "topic"), ==, "t");

  g_assert_true (ens_message_has_data_text (any_order));
  g_assert_cmpstr (any_order->id, ==, "-7");
  g_assert_true (ens_message_id_is_number (any_order));
  g_assert_true (ens_message_is_bounce (odd_id)); /* as ever: id must be a string or an integer */
  g_assert_cmpstr (odd_id->error_code, ==, "INVALID_REQUEST");

  g_assert_cmpstr (to_agent->agent, ==, "x");
  g_assert_nonnull (to_agent->data);
  g_assert_false (ens_message_has_data_text (to_agent));
  g_assert_cmpint (answer->kind, ==, ENS_MESSAGE_REPLY);
  g_assert_nonnull (answer->data);
  g_assert_nonnull (ping->data);
  g_assert_false (ens_message_has_data_text (ping));
}

/* A reply written as text is encoded with that text. */
static void
test_reply_text (void)
{
  g_autoptr (EnsMessage) m = parse ("{\"id\":\"q\",\"action\":\"publish\"}");
  g_autoptr (EnsMessage) reply = ens_message_new_reply_text (m, "{\"seq\":7}", 9);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *obj = parse_line (ens_message_encode (reply, ens_message_encode_native), &root);

  g_assert_cmpstr (json_object_get_string_member (obj, "id"), ==, "q");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (obj, "data"), "seq"), ==, 7);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (ens_message_get_data (reply)), "seq"), ==, 7);
}

/* The same message as the general path (the whole request as a tree, read
 * by ens_message_from_native) makes of it, whether or not the request was
 * read without that tree. */
static void
assert_like_the_tree (const char *text)
{
  g_autoptr (EnsMessage) fast = parse (text);
  g_autoptr (JsonNode) root = ens_json_parse (text, strlen (text), NULL);
  g_autoptr (EnsMessage) tree = ens_message_from_native (root);
  JsonNode *a, *b;

  g_assert_nonnull (root);
  g_assert_cmpint (fast->kind, ==, tree->kind);
  g_assert_cmpstr (fast->id, ==, tree->id);
  g_assert_cmpint (ens_message_id_is_number (fast), ==, ens_message_id_is_number (tree));
  g_assert_cmpstr (fast->action, ==, tree->action);
  g_assert_cmpstr (fast->agent, ==, tree->agent);
  g_assert_cmpuint (fast->timeout_ms, ==, tree->timeout_ms);
  g_assert_cmpstr (fast->error_code, ==, tree->error_code);
  g_assert_cmpint (ens_message_is_bounce (fast), ==, ens_message_is_bounce (tree));
  a = ens_message_get_data (fast);
  b = ens_message_get_data (tree);
  g_assert_true ((a == NULL) == (b == NULL));
  if (a)
    g_assert_true (json_node_equal (a, b));
}

static void
test_parse_plain_like_the_tree (void)
{
  static const char *const lines[] = {
    "{\"id\":\"r1\",\"action\":\"complete\",\"data\":{\"prompt\":\"Say hello.\",\"model\":\"m\"}}",
    "{\"action\":\"ping\"}",
    "{\"id\":7,\"action\":\"ping\",\"data\":null}",
    "{\"id\":null,\"action\":\"echo\",\"data\":[1,2.5,\"x\",{\"y\":[]}]}",
    "{\"id\":\"q\\\"uote\",\"action\":\"a\\u00e9\",\"data\":\"text \\n\"}",
    "{\"data\":{\"k\":1},\"id\":\"r\",\"action\":\"kv.set\",\"extra\":{\"ignored\":true}}",
    "{\"id\":\"r\",\"action\":\"first\",\"action\":\"second\",\"data\":1,\"data\":{\"last\":1}}",
    "{\"id\":1,\"id\":\"two\",\"action\":\"ping\"}",
    "{\"id\":\"p\",\"action\":\"publish\",\"data\":{\"topic\":\"t\",\"data\":{\"a\":1}}}",
    "{\"id\":\"p\",\"action\":\"publish\",\"data\":\"just text\"}",
    "{\"id\":\"p\",\"action\":\"publish\"}",
    /* Left to the general path by this one, with the same outcome. */
    "{\"id\":\"r\",\"action\":\"kv.get\",\"agent\":\"naming\",\"data\":{}}",
    "{\"id\":\"r\",\"action\":\"x\",\"timeout_ms\":100}",
    "{\"id\":\"r\",\"action\":\"\"}",
    "{\"id\":\"r\",\"action\":3}",
    "{\"id\":1.5,\"action\":\"ping\"}",
    "{\"id\":\"r\"}",
    "{\"reply_to\":\"q\",\"data\":{}}",
    "{\"id\":\"r\",\"action\":\"x\",\"data\":{\"agent\":\"in the data\"}}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (lines); i++)
    assert_like_the_tree (lines[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/message/parse-request", test_parse_request);
  g_test_add_func ("/message/parse-plain-like-the-tree", test_parse_plain_like_the_tree);
  g_test_add_func ("/message/parse-publish-keeps-text", test_parse_publish_keeps_text);
  g_test_add_func ("/message/reply-text", test_reply_text);
  g_test_add_func ("/message/numeric-id", test_parse_numeric_id_round_trip);
  g_test_add_func ("/message/parse-errors", test_parse_errors);
  g_test_add_func ("/message/agent-answer", test_parse_agent_answer);
  g_test_add_func ("/message/deep-nesting", test_parse_deep_nesting);
  g_test_add_func ("/message/encode-event-once", test_encode_event_once);
  g_test_add_func ("/message/encode-error", test_encode_error);
  return g_test_run ();
}
