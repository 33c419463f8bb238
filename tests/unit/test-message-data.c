/* Data carried as text (EnsMessageInit.data_text): checked when the message
 * is made, written out as it came, parsed only when read, at most once,
 * from any thread. */
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

#define PAYLOAD "{\"n\":1,\"x\":1.50,\"s\":\"\\u00e9\\\"q\",\"a\":[true,null,{}]}"

static EnsMessage *
event_with_text (const char *text, gssize len)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);

  init.topic = "t.x";
  init.from = "c1-n";
  init.data_text = text;
  init.data_text_len = len;
  return ens_message_new (&init);
}

/* The event's line, without its '\n'. */
static char *
native_line (EnsMessage *m)
{
  gsize len;
  const char *line = g_bytes_get_data (ens_message_encode (m, ens_message_encode_native), &len);

  g_assert_cmpint (len, >, 0);
  g_assert_cmpint (line[len - 1], ==, '\n');
  g_assert_null (memchr (line, '\n', len - 1));
  return g_strndup (line, len - 1);
}

static void
test_parsed_on_first_read (void)
{
  g_autoptr (EnsMessage) m = event_with_text (PAYLOAD, -1);
  JsonNode *data;
  JsonObject *obj;

  g_assert_null (m->data); /* nothing parsed yet */
  g_assert_true (ens_message_has_data_text (m));
  data = ens_message_get_data (m);
  g_assert_nonnull (data);
  g_assert_true (m->data == data); /* the field is filled ... */
  g_assert_true (ens_message_get_data (m) == data); /* ... once */
  g_assert_true (json_node_is_immutable (data));
  obj = json_node_get_object (data);
  g_assert_cmpint (json_object_get_int_member (obj, "n"), ==, 1);
  g_assert_cmpfloat (json_object_get_double_member (obj, "x"), ==, 1.5);
  g_assert_cmpstr (json_object_get_string_member (obj, "s"), ==, "\xc3\xa9\"q");
}

static void
test_bytes_reused (void)
{
  g_autoptr (EnsMessage) m = event_with_text ("  " PAYLOAD "\t ", -1);
  g_autofree char *line = native_line (m);
  gsize len;
  const char *text = ens_message_get_data_text (m, &len);

  /* As it came (1.50 and the \u escape stay), white space around it trimmed. */
  g_assert_cmpstr (text, ==, PAYLOAD);
  g_assert_cmpuint (len, ==, strlen (PAYLOAD));
  g_assert_nonnull (strstr (line, ",\"data\":" PAYLOAD ",\"from\":\"c1-n\""));
  g_assert_null (m->data); /* encoding did not parse it */
  g_assert_true (ens_message_get_data_text (m, NULL) == text);
}

static void
test_length_bounded (void)
{
  /* Only data_text_len bytes count: the rest is not part of the text. */
  g_autoptr (EnsMessage) m = event_with_text ("[1,2]garbage", 5);

  g_assert_cmpstr (ens_message_get_data_text (m, NULL), ==, "[1,2]");
  g_assert_cmpint (json_array_get_length (json_node_get_array (ens_message_get_data (m))), ==, 2);
}

static void
test_tree_written_once (void)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (JsonNode) data = ens_json_parse ("{\"b\":2, \"a\" : 0.1}", strlen ("{\"b\":2, \"a\" : 0.1}"), NULL);
  g_autoptr (EnsMessage) m = NULL;
  const char *text;
  gsize len;

  init.topic = "t";
  init.data = data;
  init.data_text = "{\"ignored\":true}"; /* the tree wins */
  m = ens_message_new (&init);
  g_assert_false (ens_message_has_data_text (m));
  text = ens_message_get_data_text (m, &len);
  g_assert_cmpstr (text, ==, "{\"b\":2,\"a\":0.1}");
  g_assert_cmpuint (len, ==, strlen (text));
  g_assert_true (ens_message_get_data_text (m, NULL) == text);
  g_assert_true (ens_message_get_data (m) == data);
  g_autofree char *line = native_line (m);
  g_assert_nonnull (strstr (line, "\"data\":{\"b\":2,\"a\":0.1}"));
}

static void
test_no_data (void)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) m = NULL;
  gsize len = 0;

  init.topic = "t";
  m = ens_message_new (&init);
  g_assert_null (ens_message_get_data (m));
  g_assert_cmpstr (ens_message_get_data_text (m, &len), ==, "null");
  g_assert_cmpuint (len, ==, 4);
  g_autofree char *line = native_line (m);
  g_assert_nonnull (strstr (line, "\"data\":null"));
}

static void
test_invalid_text (void)
{
  static const char *const bad[] = {
    "{\"a\":", "{\"a\":1} {\"b\":2}", "", "   ", "nul", "[1,]", "\"\xff\"", "\"a\\u0000b\"", "{\"a\":1}x",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (EnsMessage) m = event_with_text (bad[i], -1);
      g_autofree char *line = NULL;

      g_test_message ("bad data text: %s", bad[i]);
      g_assert_false (ens_message_has_data_text (m));
      g_assert_null (ens_message_get_data (m));
      g_assert_cmpstr (ens_message_get_data_text (m, NULL), ==, "null");
      line = native_line (m); /* still one well-formed line */
      g_assert_nonnull (strstr (line, "\"data\":null"));
      g_assert_cmpstr (m->topic, ==, "t.x"); /* the rest of the message is whole */
    }

  /* Nested deeper than the parser takes: refused, not carried. */
  GString *deep = g_string_new (NULL);
  for (int i = 0; i < 600; i++)
    g_string_append_c (deep, '[');
  for (int i = 0; i < 600; i++)
    g_string_append_c (deep, ']');
  g_autoptr (EnsMessage) m = event_with_text (deep->str, (gssize) deep->len);
  g_assert_null (ens_message_get_data (m));
  g_string_free (deep, TRUE);
}

static void
test_line_break_in_text (void)
{
  /* A newline in the white space would split the line on the wire: such
   * text is parsed at once and written compact. */
  g_autoptr (EnsMessage) m = event_with_text ("{\n  \"a\": [1,\r\n 2]\n}", -1);
  g_autofree char *line = native_line (m);

  g_assert_nonnull (m->data);
  g_assert_cmpstr (ens_message_get_data_text (m, NULL), ==, "{\"a\":[1,2]}");
  g_assert_nonnull (strstr (line, "\"data\":{\"a\":[1,2]}"));
}

static void
test_old_init_size (void)
{
  /* A plugin built for ABI 1.3 hands a shorter init: the text members past
   * its struct_size are not read. */
  struct {
    EnsMessageInit init;
  } buf;
  g_autoptr (EnsMessage) m = NULL;

  memset (&buf, 0, sizeof buf);
  buf.init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  buf.init.struct_size = G_STRUCT_OFFSET (EnsMessageInit, data_text);
  buf.init.topic = "t";
  buf.init.data_text = "{\"a\":1}"; /* beyond what a 1.3 plugin knows */
  m = ens_message_new (&buf.init);
  g_assert_null (ens_message_get_data (m));
}

typedef struct {
  EnsMessage *msg;
  JsonNode *seen;
  const char *text;
} Reader;

static gpointer
read_data (gpointer p)
{
  Reader *r = p;

  r->seen = ens_message_get_data (r->msg);
  r->text = ens_message_get_data_text (r->msg, NULL);
  return NULL;
}

static void
test_threads (void)
{
  /* Every thread holding a reference sees the same tree: one parse wins,
   * the others' are freed (the sanitizer build checks for leaks). */
  for (int round = 0; round < 50; round++)
    {
      EnsMessage *m = event_with_text (PAYLOAD, -1);
      Reader readers[4];
      GThread *threads[4];

      for (int i = 0; i < 4; i++)
        {
          readers[i] = (Reader){ .msg = ens_message_ref (m) };
          threads[i] = g_thread_new ("reader", read_data, &readers[i]);
        }
      for (int i = 0; i < 4; i++)
        {
          g_thread_join (threads[i]);
          g_assert_nonnull (readers[i].seen);
          g_assert_true (readers[i].seen == readers[0].seen);
          g_assert_true (readers[i].text == readers[0].text);
          ens_message_unref (m);
        }
      g_assert_true (m->data == readers[0].seen);
      ens_message_unref (m);
    }
  /* The same for text written from a tree. */
  for (int round = 0; round < 50; round++)
    {
      EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
      g_autoptr (JsonNode) data = ens_json_parse (PAYLOAD, strlen (PAYLOAD), NULL);
      EnsMessage *m;
      Reader readers[4];
      GThread *threads[4];

      init.topic = "t";
      init.data = data;
      m = ens_message_new (&init);
      for (int i = 0; i < 4; i++)
        {
          readers[i] = (Reader){ .msg = ens_message_ref (m) };
          threads[i] = g_thread_new ("writer", read_data, &readers[i]);
        }
      for (int i = 0; i < 4; i++)
        {
          g_thread_join (threads[i]);
          g_assert_true (readers[i].text == readers[0].text);
          ens_message_unref (m);
        }
      ens_message_unref (m);
    }
}

static void
test_json_check (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ens_json_check ("{\"a\":[1,2.5e3,\"x\"]}", 19, NULL));
  g_assert_true (ens_json_check (" 1 ", 3, NULL));
  g_assert_false (ens_json_check ("{\"a\":1,}", 8, &error));
  g_assert_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "trailing comma"));
  g_assert_false (ens_json_check (NULL, 0, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/message-data/parsed-on-first-read", test_parsed_on_first_read);
  g_test_add_func ("/message-data/bytes-reused", test_bytes_reused);
  g_test_add_func ("/message-data/length-bounded", test_length_bounded);
  g_test_add_func ("/message-data/tree-written-once", test_tree_written_once);
  g_test_add_func ("/message-data/no-data", test_no_data);
  g_test_add_func ("/message-data/invalid-text", test_invalid_text);
  g_test_add_func ("/message-data/line-break", test_line_break_in_text);
  g_test_add_func ("/message-data/old-init-size", test_old_init_size);
  g_test_add_func ("/message-data/threads", test_threads);
  g_test_add_func ("/message-data/json-check", test_json_check);
  return g_test_run ();
}
