/* test-json-util.c — plugins/common/json: object nodes keep their stated
 * ownership (the sanitizer run catches a leak or a double free), getters
 * never warn on a wrong type (G_DEBUG=fatal-criticals would abort), and the
 * parameter checks say which field is wrong and what it must be. */
#include "ens-json-util.h"

#include <math.h>
#include <string.h>

static JsonObject *
parse_object (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static void
test_nodes (void)
{
  JsonObject *obj = NULL;
  JsonObject *mine = json_object_new ();
  g_autoptr (JsonNode) a = ens_node_new_object (&obj);
  g_autoptr (JsonNode) b = NULL;
  g_autoptr (JsonNode) c = NULL;
  g_autoptr (JsonNode) d = ens_node_empty_object ();

  g_assert_nonnull (obj);
  g_assert_true (json_node_get_object (a) == obj);
  json_object_set_int_member (obj, "n", 1);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (a), "n"), ==, 1);

  /* ref: both the caller and the node hold the object. */
  c = ens_node_ref_object (mine);
  g_assert_true (json_node_get_object (c) == mine);
  json_object_set_string_member (mine, "still", "mine");
  /* take: the node holds the caller's reference from now on. */
  b = ens_node_take_object (mine);
  g_assert_true (json_node_get_object (b) == mine);
  g_assert_cmpuint (json_object_get_size (json_node_get_object (d)), ==, 0);
}

static void
test_members (void)
{
  g_autoptr (JsonObject) o = parse_object ("{\"s\":\"text\",\"i\":42,\"f\":1.5,\"whole\":10.0,\"big\":1e300,"
                                           "\"b\":true,\"n\":null,\"o\":{\"x\":1},\"a\":[\"p\",2,\"q\",{}]}");
  g_autoptr (JsonObject) to = json_object_new ();

  g_assert_cmpstr (ens_member_string (o, "s"), ==, "text");
  g_assert_null (ens_member_string (o, "i"));
  g_assert_null (ens_member_string (o, "o"));
  g_assert_null (ens_member_string (o, "n"));
  g_assert_null (ens_member_string (o, "missing"));
  g_assert_null (ens_member_string (NULL, "s"));

  g_assert_cmpint (ens_member_int (o, "i", -1), ==, 42);
  g_assert_cmpint (ens_member_int (o, "whole", -1), ==, 10);
  g_assert_cmpint (ens_member_int (o, "f", -1), ==, -1);
  g_assert_cmpint (ens_member_int (o, "big", -1), ==, -1);
  g_assert_cmpint (ens_member_int (o, "s", -1), ==, -1);
  g_assert_cmpint (ens_member_int (o, "b", -1), ==, -1);
  g_assert_cmpint (ens_member_int (o, "o", -1), ==, -1);
  g_assert_cmpfloat (ens_member_double (o, "f", 0), ==, 1.5);
  g_assert_cmpfloat (ens_member_double (o, "i", 0), ==, 42.0);
  g_assert_cmpfloat (ens_member_double (o, "s", 7), ==, 7.0);
  g_assert_true (ens_member_bool (o, "b", FALSE));
  g_assert_false (ens_member_bool (o, "i", FALSE));
  g_assert_true (ens_member_bool (o, "s", TRUE));

  g_assert_nonnull (ens_member_object (o, "o"));
  g_assert_null (ens_member_object (o, "a"));
  g_assert_nonnull (ens_member_array (o, "a"));
  g_assert_null (ens_member_array (o, "o"));
  g_assert_null (ens_member (o, "n"));
  g_assert_nonnull (ens_member (o, "i"));

  g_assert_cmpstr (ens_member_string_or (o, "s", "f"), ==, "text");
  g_assert_cmpstr (ens_member_string_or (o, "i", "f"), ==, "f");
  g_assert_cmpstr (ens_member_string_or (o, "missing", NULL), ==, NULL);
  g_assert_null (ens_array_object (ens_member_array (o, "a"), 0));
  g_assert_null (ens_array_object (NULL, 0));
  g_assert_cmpstr (ens_array_string (ens_member_array (o, "a"), 0), ==, "p");
  g_assert_null (ens_array_string (ens_member_array (o, "a"), 1));
  g_assert_null (ens_array_string (ens_member_array (o, "a"), 3));
  g_assert_nonnull (ens_array_object (ens_member_array (o, "a"), 3));
  g_assert_null (ens_array_string (ens_member_array (o, "a"), 4));
  g_assert_null (ens_array_string (NULL, 0));

  ens_member_copy (to, "copy", o, "o");
  ens_member_copy (to, "nothing", o, "missing");
  ens_member_copy (to, "null", o, "n");
  ens_member_copy (to, "none", NULL, "o");
  g_assert_true (json_object_has_member (to, "copy"));
  g_assert_true (json_object_has_member (to, "null"));
  g_assert_false (json_object_has_member (to, "nothing"));
  g_assert_false (json_object_has_member (to, "none"));
  /* json_node_copy: a new node sharing the object. */
  g_assert_true (json_object_get_member (to, "copy") != json_object_get_member (o, "o"));
  g_assert_true (ens_member_object (to, "copy") == ens_member_object (o, "o"));
}

static void
test_params (void)
{
  g_autoptr (JsonObject) p = parse_object ("{\"name\":\"ok\",\"empty\":\"\",\"num\":5,\"neg\":-3,\"frac\":0.5,"
                                           "\"flag\":false,\"obj\":{},\"arr\":[],\"strs\":[\"a\",\"b\"],"
                                           "\"mixed\":[\"a\",1],\"blank\":[\"a\",\"\"],\"nul\":null}");
  EnsInvalid inv = { 0 };
  const char *s = "unchanged";
  gint64 i = 99;
  double d = 9.5;
  gboolean b = TRUE;
  JsonObject *o = NULL;
  JsonArray *a = NULL;

  g_assert_true (ens_param_string (p, "name", ENS_PARAM_REQUIRED, 10, &s, &inv));
  g_assert_cmpstr (s, ==, "ok");
  /* Missing or null and optional: accepted, *out untouched. */
  s = "unchanged";
  g_assert_true (ens_param_string (p, "missing", ENS_PARAM_OPTIONAL, 0, &s, &inv));
  g_assert_true (ens_param_string (p, "nul", ENS_PARAM_OPTIONAL, 0, &s, &inv));
  g_assert_cmpstr (s, ==, "unchanged");
  g_assert_true (ens_param_string (NULL, "name", ENS_PARAM_OPTIONAL, 0, &s, &inv));

  g_assert_false (ens_param_string (p, "missing", ENS_PARAM_REQUIRED, 0, &s, &inv));
  g_assert_cmpstr (inv.field, ==, "missing");
  g_assert_cmpstr (inv.expected, ==, "a string");
  g_assert_false (ens_param_string (p, "nul", ENS_PARAM_REQUIRED | ENS_PARAM_NON_EMPTY, 0, &s, &inv));
  g_assert_cmpstr (inv.expected, ==, "a non-empty string");
  g_assert_false (ens_param_string (p, "num", ENS_PARAM_OPTIONAL, 0, &s, &inv));
  g_assert_cmpstr (inv.field, ==, "num");
  g_assert_true (ens_param_string (p, "empty", ENS_PARAM_OPTIONAL, 0, &s, &inv));
  g_assert_cmpstr (s, ==, "");
  g_assert_false (ens_param_string (p, "empty", ENS_PARAM_NON_EMPTY, 8, &s, &inv));
  g_assert_cmpstr (inv.expected, ==, "a string of 1 to 8 bytes");
  g_assert_false (ens_param_string (p, "name", ENS_PARAM_OPTIONAL, 1, &s, &inv));
  g_assert_cmpstr (inv.expected, ==, "a string of 0 to 1 bytes");

  g_assert_true (ens_param_int (p, "num", ENS_PARAM_REQUIRED, 1, 10, &i, &inv));
  g_assert_cmpint (i, ==, 5);
  g_assert_false (ens_param_int (p, "neg", ENS_PARAM_OPTIONAL, 0, 10, &i, &inv));
  g_assert_cmpstr (inv.field, ==, "neg");
  g_assert_cmpstr (inv.expected, ==, "an integer from 0 to 10");
  g_assert_false (ens_param_int (p, "frac", ENS_PARAM_OPTIONAL, 0, 10, &i, &inv));
  g_assert_false (ens_param_int (p, "name", ENS_PARAM_OPTIONAL, 0, 10, &i, &inv));
  g_assert_false (ens_param_int (p, "flag", ENS_PARAM_OPTIONAL, 0, 10, &i, &inv));
  i = 7;
  g_assert_true (ens_param_int (p, "missing", ENS_PARAM_OPTIONAL, 0, 10, &i, &inv));
  g_assert_cmpint (i, ==, 7);

  g_assert_true (ens_param_double (p, "frac", ENS_PARAM_REQUIRED, 0, 1, &d, &inv));
  g_assert_cmpfloat (d, ==, 0.5);
  g_assert_true (ens_param_double (p, "num", ENS_PARAM_REQUIRED, 0, 10, &d, &inv));
  g_assert_cmpfloat (d, ==, 5.0);
  g_assert_false (ens_param_double (p, "num", ENS_PARAM_REQUIRED, 0, 1, &d, &inv));
  g_assert_cmpstr (inv.expected, ==, "a number from 0 to 1");

  g_assert_true (ens_param_bool (p, "flag", ENS_PARAM_REQUIRED, &b, &inv));
  g_assert_false (b);
  g_assert_false (ens_param_bool (p, "num", ENS_PARAM_OPTIONAL, &b, &inv));
  g_assert_cmpstr (inv.expected, ==, "a boolean");

  g_assert_true (ens_param_object (p, "obj", ENS_PARAM_REQUIRED, &o, &inv));
  g_assert_nonnull (o);
  g_assert_false (ens_param_object (p, "arr", ENS_PARAM_REQUIRED, &o, &inv));
  g_assert_cmpstr (inv.expected, ==, "an object");

  g_assert_true (ens_param_array (p, "arr", ENS_PARAM_REQUIRED, &a, &inv));
  g_assert_false (ens_param_array (p, "arr", ENS_PARAM_NON_EMPTY, &a, &inv));
  g_assert_cmpstr (inv.expected, ==, "a non-empty array");
  g_assert_true (ens_param_strings (p, "strs", ENS_PARAM_REQUIRED, &a, &inv));
  g_assert_cmpuint (json_array_get_length (a), ==, 2);
  g_assert_false (ens_param_strings (p, "mixed", ENS_PARAM_REQUIRED, &a, &inv));
  g_assert_cmpstr (inv.expected, ==, "an array of strings");
  g_assert_true (ens_param_strings (p, "blank", ENS_PARAM_OPTIONAL, &a, &inv));
  g_assert_false (ens_param_strings (p, "blank", ENS_PARAM_NON_EMPTY, &a, &inv));
  g_assert_cmpstr (inv.expected, ==, "a non-empty array of non-empty strings");
}

static void
test_invalid (void)
{
  EnsInvalid inv;
  g_autofree char *message = NULL;
  g_autoptr (JsonNode) details = NULL;
  JsonObject *obj;
  JsonArray *fields;

  g_assert_false (ens_invalid_set (&inv, "count", "an integer from %d to %d", 1, 100));
  message = ens_invalid_message (&inv);
  g_assert_cmpstr (message, ==, "count must be an integer from 1 to 100");
  details = ens_invalid_details (&inv);
  obj = json_node_get_object (details);
  g_assert_cmpstr (ens_member_string (obj, "field"), ==, "count");
  g_assert_cmpstr (ens_member_string (obj, "expected"), ==, "an integer from 1 to 100");
  fields = ens_member_array (obj, "fields");
  g_assert_cmpuint (json_array_get_length (fields), ==, 1);
  g_assert_cmpstr (ens_member_string (json_array_get_object_element (fields, 0), "field"), ==, "count");

  /* An expected text longer than the buffer is cut, not overrun. */
  {
    g_autofree char *longtext = g_strnfill (1000, 'x');
    ens_invalid_set (&inv, "f", "%s", longtext);
    g_assert_cmpuint (strlen (inv.expected), ==, sizeof inv.expected - 1);
  }
}

/* Quoted text reads back, through json-glib, as the string it was. */
static void
test_quote (void)
{
  const char *texts[] = { "", "plain", "say \"hi\"", "back\\slash", "tab\tnew\nline\rret\b\f",
                          "\x01\x1f ctl", "caf\xc3\xa9 \xe2\x82\xac utf-8", "</script>" };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr (GString) out = g_string_new ("{\"v\":");
      g_autoptr (JsonObject) obj = NULL;

      ens_json_write_string (out, texts[i]);
      g_string_append_c (out, '}');
      obj = parse_object (out->str);
      g_assert_cmpstr (json_object_get_string_member (obj, "v"), ==, texts[i]);
    }
  {
    g_autoptr (GString) out = g_string_new (NULL);
    ens_json_write_string (out, "a\"b\x01");
    g_assert_cmpstr (out->str, ==, "\"a\\\"b\\u0001\"");
  }
}

/* The one writer: numbers json-glib's json_to_string() writes as invalid JSON
 * ("1e+30.0", "nan.0") are valid here, and every text reads back the same. */
static void
test_write (void)
{
  static const double doubles[] = { 1e30, -1e17, 1e-300, 0.1, 2.5, 1e308, 123456789012345678.0, -0.0 };
  g_autoptr (JsonParser) parser = json_parser_new ();

  for (guint i = 0; i < G_N_ELEMENTS (doubles); i++)
    {
      g_autoptr (JsonNode) node = json_node_new (JSON_NODE_VALUE);
      g_autofree char *text = NULL;

      json_node_set_double (node, doubles[i]);
      text = ens_json_write_to_string (node, FALSE);
      g_assert_null (strstr (text, "e+30.0"));
      g_assert_true (json_parser_load_from_data (parser, text, -1, NULL));
      g_assert_cmpfloat (json_node_get_double (json_parser_get_root (parser)), ==, doubles[i]);
    }
  {
    g_autoptr (JsonNode) node = json_node_new (JSON_NODE_VALUE);
    g_autofree char *nan_text = NULL;
    g_autofree char *big = NULL;

    json_node_set_double (node, NAN);
    nan_text = ens_json_write_to_string (node, FALSE);
    g_assert_cmpstr (nan_text, ==, "null");
    json_node_set_double (node, 1e30);
    big = ens_json_write_to_string (node, FALSE);
    g_assert_cmpstr (big, ==, "1e+30");
  }
  {
    const char *doc = "{\"a\":[1,2.5,{\"b\":\"x\\n\\u0001\"}],\"e\":{},\"f\":[],\"g\":null,\"h\":true}";
    g_autofree char *compact = NULL;
    g_autofree char *pretty = NULL;

    g_assert_true (json_parser_load_from_data (parser, doc, -1, NULL));
    compact = ens_json_write_to_string (json_parser_get_root (parser), FALSE);
    g_assert_cmpstr (compact, ==, doc);
    pretty = ens_json_write_to_string (json_parser_get_root (parser), TRUE);
    g_assert_cmpstr (pretty, ==,
                     "{\n  \"a\": [\n    1,\n    2.5,\n    {\n      \"b\": \"x\\n\\u0001\"\n    }\n  ],\n"
                     "  \"e\": {},\n  \"f\": [],\n  \"g\": null,\n  \"h\": true\n}");
    g_assert_true (json_parser_load_from_data (parser, pretty, -1, NULL));
  }
}

/* A message's content as text: a string as it is, the string "text" of each
 * part with the separator between them, anything else nothing. */
static void
test_content_text (void)
{
  static const struct { const char *json; const char *sep; const char *want; } cases[] = {
    { "\"plain\"", "\n", "plain" },
    { "[{\"type\":\"text\",\"text\":\"a\"},{\"text\":\"b\"}]", "\n", "a\nb" },
    { "[{\"text\":\"a\"},{\"text\":\"b\"}]", "", "ab" },
    { "[{\"text\":\"\"},{\"text\":\"b\"},{\"text\":3},\"c\",null,{\"image\":{}}]", "\n", "b" },
    { "42", "\n", "" },
    { "{\"text\":\"x\"}", "\n", "" },
    { "null", "\n", "" },
  };
  g_autofree char *none = ens_content_text (NULL, "\n");

  g_assert_cmpstr (none, ==, "");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (JsonNode) node = json_from_string (cases[i].json, NULL);
      g_autofree char *text = ens_content_text (node, cases[i].sep);

      g_assert_cmpstr (text, ==, cases[i].want);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/json-util/nodes", test_nodes);
  g_test_add_func ("/json-util/members", test_members);
  g_test_add_func ("/json-util/params", test_params);
  g_test_add_func ("/json-util/invalid", test_invalid);
  g_test_add_func ("/json-util/quote", test_quote);
  g_test_add_func ("/json-util/write", test_write);
  g_test_add_func ("/json-util/content-text", test_content_text);
  return g_test_run ();
}
