/* plugins/common/schema: the JSON Schema subset tools use, the messages
 * that name the failing field, and malformed schemas refused up front. */
#include "ens-schema.h"

static JsonNode *
parse (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_node_ref (json_parser_get_root (parser));
}

static EnsSchema *
schema (const char *text)
{
  g_autoptr (GError) error = NULL;
  EnsSchema *s = ens_schema_new_from_text (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (s);
  return s;
}

/* Validates @instance; with @field NULL it must pass, else fail at @field
 * with a message containing @expected. */
static void
expect (EnsSchema *s, const char *instance, const char *field, const char *expected)
{
  g_autoptr (JsonNode) value = parse (instance);
  g_autofree char *got_field = NULL, *got_expected = NULL;
  gboolean ok = ens_schema_validate (s, value, "data", &got_field, &got_expected);

  if (field == NULL)
    {
      if (!ok)
        g_error ("%s should pass, failed: %s must be %s", instance, got_field, got_expected);
      return;
    }
  if (ok)
    g_error ("%s should fail at %s", instance, field);
  g_assert_cmpstr (got_field, ==, field);
  if (strstr (got_expected, expected) == NULL)
    g_error ("%s: expected text \"%s\" lacks \"%s\"", instance, got_expected, expected);
}

static void
refused (const char *text, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  EnsSchema *s = ens_schema_new_from_text (text, &error);

  g_assert_null (s);
  g_assert_error (error, ENS_SCHEMA_ERROR, ENS_SCHEMA_ERROR_INVALID);
  if (strstr (error->message, fragment) == NULL)
    g_error ("%s: message \"%s\" lacks \"%s\"", text, error->message, fragment);
}

static void
test_types (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"type\":\"object\",\"properties\":{"
                                    "\"n\":{\"type\":\"integer\"},\"x\":{\"type\":\"number\"},"
                                    "\"s\":{\"type\":\"string\"},\"b\":{\"type\":\"boolean\"},"
                                    "\"z\":{\"type\":\"null\"},\"a\":{\"type\":\"array\"},"
                                    "\"o\":{\"type\":\"object\"},\"m\":{\"type\":[\"string\",\"null\"]}}}");

  expect (s, "{}", NULL, NULL);
  expect (s, "{\"n\":3,\"x\":1.5,\"s\":\"\",\"b\":false,\"z\":null,\"a\":[],\"o\":{},\"m\":null}", NULL, NULL);
  expect (s, "{\"n\":3.0}", NULL, NULL); /* an integral number is an integer */
  expect (s, "{\"x\":3}", NULL, NULL);
  expect (s, "{\"n\":3.5}", "n", "an integer");
  expect (s, "{\"n\":\"3\"}", "n", "an integer");
  expect (s, "{\"x\":\"1\"}", "x", "a number");
  expect (s, "{\"s\":1}", "s", "a string");
  expect (s, "{\"b\":0}", "b", "true or false");
  expect (s, "{\"z\":0}", "z", "null");
  expect (s, "{\"a\":{}}", "a", "an array");
  expect (s, "{\"o\":[]}", "o", "an object");
  expect (s, "{\"m\":1}", "m", "a string or null");
  expect (s, "[]", "data", "an object"); /* the root is named by the caller */
  g_assert_true (ens_schema_is_object (s));
}

static void
test_objects (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"type\":\"object\",\"required\":[\"name\"],\"additionalProperties\":false,"
                                    "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1},"
                                    "\"tags\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
                                    "\"opts\":{\"type\":\"object\",\"minProperties\":1,\"maxProperties\":2}}}");
  g_autoptr (EnsSchema) p = schema ("{\"type\":\"object\",\"patternProperties\":{\"^x-\":{\"type\":\"integer\"}},"
                                    "\"additionalProperties\":false}");

  expect (s, "{\"name\":\"a\"}", NULL, NULL);
  expect (s, "{}", "name", "present (required)");
  expect (s, "{\"name\":\"\"}", "name", "at least 1 character");
  expect (s, "{\"name\":\"a\",\"extra\":1}", "extra", "absent: not a member");
  expect (s, "{\"name\":\"a\",\"extra\":1}", "extra", "allowed: name, tags, opts");
  expect (s, "{\"name\":\"a\",\"tags\":{\"k\":\"v\",\"odd key\":2}}", "tags[\"odd key\"]", "a string");
  expect (s, "{\"name\":\"a\",\"opts\":{}}", "opts", "at least 1 member");
  expect (s, "{\"name\":\"a\",\"opts\":{\"a\":1,\"b\":2,\"c\":3}}", "opts", "at most 2 members");
  expect (p, "{\"x-a\":1}", NULL, NULL);
  expect (p, "{\"x-a\":\"1\"}", "x-a", "an integer");
  expect (p, "{\"y\":1}", "y", "absent");
}

static void
test_arrays (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\","
                                    "\"minItems\":1,\"maxItems\":3,\"uniqueItems\":true,\"items\":{"
                                    "\"type\":\"object\",\"required\":[\"id\"],\"properties\":{\"id\":{"
                                    "\"type\":\"integer\",\"minimum\":1}}}},"
                                    "\"pair\":{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"number\"}],"
                                    "\"items\":false},"
                                    "\"old\":{\"items\":[{\"type\":\"string\"}],\"additionalItems\":{\"type\":\"null\"}}}}");

  expect (s, "{\"items\":[{\"id\":1},{\"id\":2}]}", NULL, NULL);
  expect (s, "{\"items\":[]}", "items", "at least 1 item");
  expect (s, "{\"items\":[{\"id\":1},{\"id\":2},{\"id\":3},{\"id\":4}]}", "items", "at most 3 items");
  expect (s, "{\"items\":[{\"id\":1},{\"id\":1.0}]}", "items[1]", "repeats item 0");
  expect (s, "{\"items\":[{\"id\":1},{}]}", "items[1].id", "present (required)");
  expect (s, "{\"items\":[{\"id\":0}]}", "items[0].id", "a number >= 1");
  expect (s, "{\"pair\":[\"a\",1]}", NULL, NULL);
  expect (s, "{\"pair\":[\"a\",\"b\"]}", "pair[1]", "a number");
  expect (s, "{\"pair\":[\"a\",1,2]}", "pair[2]", "absent");
  expect (s, "{\"old\":[\"a\",null,null]}", NULL, NULL);
  expect (s, "{\"old\":[\"a\",1]}", "old[1]", "null");
}

static void
test_numbers_strings (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"properties\":{\"n\":{\"minimum\":0,\"maximum\":10},"
                                    "\"e\":{\"exclusiveMinimum\":0,\"exclusiveMaximum\":1},"
                                    "\"d4\":{\"minimum\":0,\"exclusiveMinimum\":true},"
                                    "\"m\":{\"multipleOf\":0.5},\"i\":{\"multipleOf\":3},"
                                    "\"s\":{\"maxLength\":3,\"pattern\":\"^[a-z]+$\"}}}");

  expect (s, "{\"n\":0,\"e\":0.5,\"d4\":1,\"m\":1.5,\"i\":9,\"s\":\"abc\"}", NULL, NULL);
  expect (s, "{\"n\":-1}", "n", ">= 0");
  expect (s, "{\"n\":10.5}", "n", "<= 10");
  expect (s, "{\"e\":0}", "e", "> 0");
  expect (s, "{\"e\":1}", "e", "< 1");
  expect (s, "{\"d4\":0}", "d4", "> 0");
  expect (s, "{\"m\":1.25}", "m", "a multiple of 0.5");
  expect (s, "{\"i\":10}", "i", "a multiple of 3");
  expect (s, "{\"s\":\"abcd\"}", "s", "at most 3 characters");
  expect (s, "{\"s\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", "s", "matching /^[a-z]+$/"); /* 3 characters, 6 bytes */
  expect (s, "{\"s\":\"A\"}", "s", "matching");
  expect (s, "{\"n\":\"x\"}", NULL, NULL); /* number keywords do not apply to strings */
}

static void
test_enum_const (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"properties\":{\"p\":{\"enum\":[\"low\",\"high\",1,null,{\"a\":[1]}]},"
                                    "\"c\":{\"const\":\"x\"}}}");

  expect (s, "{\"p\":\"low\",\"c\":\"x\"}", NULL, NULL);
  expect (s, "{\"p\":1.0}", NULL, NULL);
  expect (s, "{\"p\":null}", NULL, NULL);
  expect (s, "{\"p\":{\"a\":[1]}}", NULL, NULL);
  expect (s, "{\"p\":\"mid\"}", "p", "one of \"low\", \"high\", 1, null");
  expect (s, "{\"p\":{\"a\":[2]}}", "p", "one of");
  expect (s, "{\"c\":\"y\"}", "c", "exactly \"x\"");
}

static void
test_combinators (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"properties\":{"
                                    "\"any\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]},"
                                    "\"one\":{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]},"
                                    "\"all\":{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":2}]},"
                                    "\"not\":{\"not\":{\"type\":\"string\"}},"
                                    "\"deep\":{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"k\":{\"type\":\"integer\"}},"
                                    "\"required\":[\"k\"]},{\"type\":\"string\"}]}}}");

  expect (s, "{\"any\":\"a\",\"one\":1,\"all\":3,\"not\":1,\"deep\":{\"k\":1}}", NULL, NULL);
  expect (s, "{\"any\":1.5}", "any", "one of 2 alternatives (anyOf)");
  expect (s, "{\"one\":3}", "one", "exactly one of 2 alternatives");
  expect (s, "{\"one\":2.5}", NULL, NULL); /* only the second */
  expect (s, "{\"all\":1}", "all", ">= 2");
  expect (s, "{\"not\":\"s\"}", "not", "\"not\"");
  expect (s, "{\"deep\":{\"k\":\"1\"}}", "deep.k", "an integer"); /* the alternative it meant */
}

static void
test_refs_and_booleans (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
                                    "\"v\":{\"type\":\"integer\"},\"next\":{\"$ref\":\"#/$defs/node\"}}}},"
                                    "\"type\":\"object\",\"properties\":{\"list\":{\"$ref\":\"#/$defs/node\"},"
                                    "\"any\":true,\"never\":false,\"old\":{\"$ref\":\"#/definitions/x\"}},"
                                    "\"definitions\":{\"x\":{\"type\":\"string\"}}}");
  g_autoptr (EnsSchema) loop = schema ("{\"$ref\":\"#\"}");
  g_autoptr (EnsSchema) yes = schema ("true");
  g_autoptr (EnsSchema) no = schema ("false");

  expect (s, "{\"list\":{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3}}},\"any\":[1]}", NULL, NULL);
  expect (s, "{\"list\":{\"v\":1,\"next\":{\"v\":\"2\"}}}", "list.next.v", "an integer");
  expect (s, "{\"never\":1}", "never", "absent");
  expect (s, "{\"old\":1}", "old", "a string");
  expect (loop, "{}", "data", "nested too deeply"); /* a reference to itself never ends: refused, not a crash */
  expect (yes, "[1,{}]", NULL, NULL);
  expect (no, "1", "data", "absent");
  g_assert_false (ens_schema_is_object (yes));
}

static void
test_annotations_and_null (void)
{
  g_autoptr (EnsSchema) s = schema ("{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"title\":\"t\","
                                    "\"description\":\"d\",\"type\":\"object\",\"properties\":{\"u\":{"
                                    "\"type\":\"string\",\"format\":\"uri\",\"default\":\"x\",\"examples\":[1]}}}");
  g_autofree char *field = NULL, *expected = NULL;

  expect (s, "{\"u\":\"not a uri\"}", NULL, NULL); /* format is an annotation here */
  g_assert_false (ens_schema_validate (s, NULL, "arguments", &field, &expected)); /* NULL: JSON null */
  g_assert_cmpstr (field, ==, "arguments");
  g_assert_cmpstr (expected, ==, "an object");
}

static void
test_malformed (void)
{
  refused ("[1]", "must be a JSON object");
  refused ("{\"type\":\"float\"}", "#/type must be");
  refused ("{\"type\":[]}", "#/type must be");
  refused ("{\"properties\":{\"a\":{\"type\":7}}}", "#/properties/a/type must be");
  refused ("{\"properties\":[]}", "#/properties must be an object of schemas");
  refused ("{\"properties\":{\"a\":3}}", "#/properties/a must be a schema");
  refused ("{\"required\":\"a\"}", "#/required must be a list of property names");
  refused ("{\"required\":[1]}", "#/required");
  refused ("{\"minLength\":-1}", "#/minLength must be a non-negative integer");
  refused ("{\"maxItems\":1.5}", "#/maxItems");
  refused ("{\"minimum\":\"0\"}", "#/minimum must be a number");
  refused ("{\"multipleOf\":0}", "#/multipleOf must be a number > 0");
  refused ("{\"pattern\":\"(\"}", "#/pattern must be a regular expression");
  refused ("{\"patternProperties\":{\"[\":{}}}", "#/patternProperties must be a regular expression");
  refused ("{\"anyOf\":[]}", "#/anyOf must be a non-empty list");
  refused ("{\"items\":{\"items\":{\"type\":\"x\"}}}", "#/items/items/type");
  refused ("{\"$ref\":\"#/$defs/missing\"}", "#/$ref must be a reference within this schema");
  refused ("{\"$ref\":\"http://example.com/s.json\"}", "#/$ref");
  refused ("{\"enum\":\"a\"}", "#/enum must be a list");
  refused ("not json", "not valid JSON");
}

static void
test_deep_schema (void)
{
  GString *text = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  EnsSchema *s;

  for (int i = 0; i < 200; i++)
    g_string_append (text, "{\"items\":");
  g_string_append (text, "true");
  for (int i = 0; i < 200; i++)
    g_string_append_c (text, '}');
  s = ens_schema_new_from_text (text->str, &error);
  g_assert_null (s);
  g_assert_error (error, ENS_SCHEMA_ERROR, ENS_SCHEMA_ERROR_INVALID);
  g_string_free (text, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/schema/types", test_types);
  g_test_add_func ("/schema/objects", test_objects);
  g_test_add_func ("/schema/arrays", test_arrays);
  g_test_add_func ("/schema/numbers-strings", test_numbers_strings);
  g_test_add_func ("/schema/enum-const", test_enum_const);
  g_test_add_func ("/schema/combinators", test_combinators);
  g_test_add_func ("/schema/refs-booleans", test_refs_and_booleans);
  g_test_add_func ("/schema/annotations-null", test_annotations_and_null);
  g_test_add_func ("/schema/malformed", test_malformed);
  g_test_add_func ("/schema/deep-schema", test_deep_schema);
  return g_test_run ();
}
