/* ens_json_parse: the tree json-glib would build for strict JSON, refusal of
 * everything else, and a randomized round trip. */
#include "ens-json.h"

#include <math.h>
#include <string.h>

/* Every text is parsed from a heap copy of exactly @len bytes (no NUL after
 * it), so ASan sees any read past the end. */
static JsonNode *
parse_exact (const char *text, gsize len, GError **error)
{
  char *copy = len ? g_memdup2 (text, len) : NULL;
  JsonNode *node = ens_json_parse (copy, len, error);

  g_free (copy);
  return node;
}

/* Same tree: node and value types (int is not double), values, member
 * order; with @numeric, int and double compare by value (the generator
 * may write a double without a fraction).  Stricter than json_node_equal,
 * which ignores member order and int/double. */
static gboolean
same_tree (JsonNode *a, JsonNode *b, gboolean numeric)
{
  if (json_node_get_node_type (a) != json_node_get_node_type (b))
    return FALSE;
  switch (json_node_get_node_type (a))
    {
    case JSON_NODE_NULL:
      return TRUE;
    case JSON_NODE_VALUE:
      {
        GType ta = json_node_get_value_type (a), tb = json_node_get_value_type (b);
        if (numeric && (ta == G_TYPE_INT64 || ta == G_TYPE_DOUBLE) && (tb == G_TYPE_INT64 || tb == G_TYPE_DOUBLE))
          return json_node_equal (a, b);
        if (ta != tb)
          return FALSE;
        if (ta == G_TYPE_DOUBLE)
          {
            double da = json_node_get_double (a), db = json_node_get_double (b);
            return memcmp (&da, &db, sizeof da) == 0; /* -0.0 is not 0.0 */
          }
        return json_node_equal (a, b);
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *x = json_node_get_array (a), *y = json_node_get_array (b);
        guint n = json_array_get_length (x);
        if (n != json_array_get_length (y))
          return FALSE;
        for (guint i = 0; i < n; i++)
          if (!same_tree (json_array_get_element (x, i), json_array_get_element (y, i), numeric))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter ia, ib;
        const char *na, *nb;
        JsonNode *ma, *mb;
        gboolean more_a, more_b;

        json_object_iter_init_ordered (&ia, json_node_get_object (a));
        json_object_iter_init_ordered (&ib, json_node_get_object (b));
        for (;;)
          {
            more_a = json_object_iter_next_ordered (&ia, &na, &ma);
            more_b = json_object_iter_next_ordered (&ib, &nb, &mb);
            if (!more_a || !more_b)
              return more_a == more_b;
            if (strcmp (na, nb) != 0 || !same_tree (ma, mb, numeric))
              return FALSE;
          }
      }
    default:
      return FALSE;
    }
}

static char *
dump (JsonNode *node)
{
  return node ? ens_json_to_string (node) : g_strdup ("(null)");
}

static char *
nested (const char *open, const char *inner, const char *close, guint depth)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < depth; i++)
    g_string_append (s, open);
  g_string_append (s, inner);
  for (guint i = 0; i < depth; i++)
    g_string_append (s, close);
  return g_string_free (s, FALSE);
}

static const char publish_request[] =
  "{\"id\":\"t1\",\"action\":\"publish\",\"data\":{\"topic\":\"bench.topic\",\"data\":"
  "{\"n\":12345,\"text\":\"hello world\",\"ok\":true,\"list\":[1,2,3]}}}";

static const char escapes_document[] =
  "{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
  "\"n\":[0,-0,1.5e-3,-12,9223372036854775807,-9223372036854775808,1E+2],\"t\":[true,false,null,{},[]]}";

/* Strict-valid texts: our tree must be json-glib's, types and order too. */
static void
test_valid_like_json_glib (void)
{
  static const char *const texts[] = {
    "null", "true", "false", " \t\r\n null \n\r\t ",
    "0", "-0", "1", "-1", "42", "-42", "123456789012", "9223372036854775807", "-9223372036854775808",
    "0.5", "-0.5", "1.0", "-0.0", "1e3", "1E3", "1e+3", "1e-3", "-1.5e-10", "3.141592653589793",
    "0.1", "1.7976931348623157e308", "-1.7976931348623157e308", "5e-324", "2.2250738585072014e-308",
    "123.456e7", "0e0", "0.0e-0", "12345678901234567890.5",
    "\"\"", "\"abc\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\u20ac\\u20AC\"",
    "\"\\ud83d\\ude00\"", "\"\\uD834\\uDD1E\"", "\"\\udbff\\udfff\"", "\"\\ud800\\udc00\"",
    "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf\"",
    "\"\\u0001\\u001f\\u007f\\u0080\\u07ff\\u0800\\uffff\\ufeff\"", "\"\x7f\"", "\"'\"", "\"/*x*/\"",
    "[]", "[ ]", "[1,2,3]", "[[],[[]],{}]", " \t\r\n[1 , \"a\" ,null,true,false , 1.5]\n ",
    "[\"\",[\"\"],{\"\":\"\"}]", "[-1e-7,1E7,1e07]",
    "{}", "{ }", "{\"a\":1}", "{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}", "{\"\":0}",
    "{\"\xc3\xa9\":\"\\u00e9\"}", "{\"k\\u0041\\n\":1}", "{\"z\":1,\"y\":2,\"x\":3,\"w\":4}",
    "{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":[1,2],\"a\":{\"x\":true}}", "{\"a\":{\"b\":1},\"c\":2,\"a\":null,\"a\":\"s\"}",
    " { \"a\" : 1 , \"b\" : [ 2 , { } ] } ",
    publish_request, escapes_document,
  };
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autofree char *deep_array = nested ("[", "1", "]", 512);
  g_autofree char *deep_object = nested ("{\"a\":", "1", "}", 512);
  g_autofree char *deep_mixed = nested ("[{\"k\":", "1", "}]", 256);
  const char *extra[] = { deep_array, deep_object, deep_mixed };

  for (guint i = 0; i < G_N_ELEMENTS (texts) + G_N_ELEMENTS (extra); i++)
    {
      const char *text = i < G_N_ELEMENTS (texts) ? texts[i] : extra[i - G_N_ELEMENTS (texts)];
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) ours = parse_exact (text, strlen (text), &error);
      JsonNode *theirs;

      if (ours == NULL)
        g_error ("refused %s: %s", text, error->message);
      if (!json_parser_load_from_data (parser, text, -1, &error))
        g_error ("json-glib refused %s: %s", text, error->message);
      theirs = json_parser_get_root (parser);
      if (!json_node_equal (ours, theirs) || !same_tree (ours, theirs, FALSE))
        {
          g_autofree char *a = dump (ours), *b = dump (theirs);
          g_error ("%s: ours %s, json-glib's %s", text, a, b);
        }
      /* Sealed, as json_parser_new_immutable() made it. */
      g_assert_true (json_node_is_immutable (ours));
    }
}

/* Values checked directly: where json-glib differs (it wraps big integers)
 * or to pin the int/double rule. */
static void
test_numbers (void)
{
  static const struct {
    const char *text;
    GType type;
    gint64 i;
    double d;
  } cases[] = {
    { "0", G_TYPE_INT64, 0, 0 },
    { "-0", G_TYPE_INT64, 0, 0 },
    { "9223372036854775807", G_TYPE_INT64, G_MAXINT64, 0 },
    { "-9223372036854775808", G_TYPE_INT64, G_MININT64, 0 },
    { "9223372036854775808", G_TYPE_DOUBLE, 0, 9223372036854775808.0 },
    { "-9223372036854775809", G_TYPE_DOUBLE, 0, -9223372036854775809.0 },
    { "18446744073709551615", G_TYPE_DOUBLE, 0, 18446744073709551615.0 },
    { "18446744073709551616", G_TYPE_DOUBLE, 0, 18446744073709551616.0 },
    { "123456789012345678901234567890", G_TYPE_DOUBLE, 0, 123456789012345678901234567890.0 },
    { "-123456789012345678901234567890", G_TYPE_DOUBLE, 0, -123456789012345678901234567890.0 },
    { "1.0", G_TYPE_DOUBLE, 0, 1.0 },
    { "1e3", G_TYPE_DOUBLE, 0, 1000.0 },
    { "1E-2", G_TYPE_DOUBLE, 0, 0.01 },
    { "0.1", G_TYPE_DOUBLE, 0, 0.1 },
    { "-0.0", G_TYPE_DOUBLE, 0, -0.0 },
    { "1e-400", G_TYPE_DOUBLE, 0, 0.0 }, /* underflow: finite, so kept */
    { "12345", G_TYPE_INT64, 12345, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) node = parse_exact (cases[i].text, strlen (cases[i].text), &error);

      g_assert_no_error (error);
      g_assert_nonnull (node);
      if (json_node_get_value_type (node) != cases[i].type)
        g_error ("%s: type %s", cases[i].text, g_type_name (json_node_get_value_type (node)));
      if (cases[i].type == G_TYPE_INT64)
        g_assert_cmpint (json_node_get_int (node), ==, cases[i].i);
      else
        {
          double d = json_node_get_double (node);
          if (memcmp (&d, &cases[i].d, sizeof d) != 0)
            g_error ("%s: %.17g, expected %.17g", cases[i].text, d, cases[i].d);
        }
    }

  /* Only @len bytes are read: the text needs no NUL after it. */
  {
    g_autoptr (JsonNode) node = parse_exact ("1234", 2, NULL);
    g_assert_cmpint (json_node_get_int (node), ==, 12);
  }
  {
    g_autoptr (JsonNode) node = parse_exact ("{\"a\":1}xyz", 7, NULL);
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "a"), ==, 1);
  }
  /* Duplicate keys: the last value, at the first one's place. */
  {
    static const char text[] = "{\"a\":1,\"b\":2,\"a\":3}";
    g_autoptr (JsonNode) node = parse_exact (text, strlen (text), NULL);
    g_autoptr (GList) names = json_object_get_members (json_node_get_object (node));
    g_assert_cmpuint (g_list_length (names), ==, 2);
    g_assert_cmpstr (names->data, ==, "a");
    g_assert_cmpstr (names->next->data, ==, "b");
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "a"), ==, 3);
  }
}

static void
expect_refused (const char *text, gsize len, const char *message_part)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = parse_exact (text, len, &error);
  g_autofree char *head = g_strndup (text ? text : "", MIN (len, 120));
  g_autofree char *shown = g_strescape (head, NULL);

  if (node != NULL)
    {
      g_autofree char *got = dump (node);
      g_error ("accepted \"%s\" (%" G_GSIZE_FORMAT " bytes) as %s", shown, len, got);
    }
  if (!g_error_matches (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA))
    g_error ("\"%s\": no JSON_PARSER_ERROR_INVALID_DATA error", shown);
  /* Every message names the place, except these two. */
  if (strstr (error->message, " at byte ") == NULL && strcmp (error->message, "empty JSON text") != 0
      && strstr (error->message, "nested deeper") == NULL)
    g_error ("\"%s\": message without a byte offset: %s", shown, error->message);
  if (message_part && strstr (error->message, message_part) == NULL)
    g_error ("\"%s\": message \"%s\" lacks \"%s\"", shown, error->message, message_part);
  /* Refused as well without an error to fill. */
  g_assert_null (parse_exact (text, len, NULL));
}

static void
test_invalid (void)
{
  static const struct {
    const char *text;
    const char *message; /* a part of it, or NULL */
  } cases[] = {
    /* empty */
    { "", "empty JSON text" },
    { " \t\r\n ", "empty JSON text" },
    /* trailing data */
    { "{\"id\":1} x", "unexpected data after the JSON value at byte 9 (one JSON value per line)" },
    { "{}{}", "unexpected data after the JSON value at byte 2 (one JSON value per line)" },
    { "1 2", "unexpected data after the JSON value at byte 2" },
    { "[] []", "unexpected data after the JSON value" },
    { "\"a\"\"b\"", "unexpected data after the JSON value" },
    { "true false", "unexpected data after the JSON value" },
    { "null,", "unexpected data after the JSON value" },
    { "{\"id\":1,\"action\":\"ping\"}{\"id\":2,\"action\":\"ping\"}", "one JSON value per line" },
    { "{} \x0b", "unexpected data after the JSON value" },
    { "{} \x0c", "unexpected data after the JSON value" },
    { "\x0b{}", NULL }, /* only space, tab, CR, LF are whitespace */
    /* NUL: escaped, raw */
    { "\"a\\u0000b\"", "\\u0000 (NUL) in a string at byte 2 is not accepted" },
    { "{\"path\":\"nul\\u0000/../../x\"}", "\\u0000 (NUL)" },
    { "{\"a\\u0000\":1}", "\\u0000 (NUL)" },
    /* raw control characters in strings */
    { "\"a\x01" "b\"", "control character 0x01 in a string at byte 2" },
    { "\"\t\"", "control character" },
    { "\"\n\"", "control character" },
    { "\"\x1f\"", "control character" },
    /* escapes */
    { "\"\\x41\"", "invalid escape '\\x'" },
    { "\"\\'\"", "invalid escape" },
    { "\"\\a\"", "invalid escape" },
    { "\"\\U0041\"", "invalid escape" },
    { "\"\\u12\"", "\\u escape" },
    { "\"\\u12g4\"", "\\u escape" },
    { "\"\\u-123\"", "\\u escape" },
    { "\"\\", NULL },
    { "\"\\u", NULL },
    { "\"\\u00", NULL },
    /* lone or invalid surrogates */
    { "\"\\ud800\"", "lone high surrogate" },
    { "\"\\udbff\"", "lone high surrogate" },
    { "\"\\udc00\"", "lone low surrogate" },
    { "\"\\udfff\\ud800\"", "lone low surrogate" },
    { "\"\\ud800\\u0041\"", "lone high surrogate" },
    { "\"\\ud800\\ud800\"", "lone high surrogate" },
    { "\"\\ud800x\"", "lone high surrogate" },
    { "\"\\ud800\\n\"", "lone high surrogate" },
    { "\"\\ud800\\udc0\"", "surrogate" },
    { "\"\\ud800\\", NULL },
    /* bad UTF-8 */
    { "\"\xff\"", "invalid UTF-8 in a string at byte 1" },
    { "\"\x80\"", "invalid UTF-8" },
    { "\"\xc0\xaf\"", "invalid UTF-8" },          /* overlong '/' */
    { "\"\xc1\xbf\"", "invalid UTF-8" },
    { "\"\xe0\x80\xaf\"", "invalid UTF-8" },      /* overlong, 3 bytes */
    { "\"\xf0\x80\x80\xaf\"", "invalid UTF-8" },  /* overlong, 4 bytes */
    { "\"\xed\xa0\x80\"", "invalid UTF-8" },      /* encoded surrogate U+D800 */
    { "\"\xed\xbf\xbf\"", "invalid UTF-8" },      /* U+DFFF */
    { "\"\xf4\x90\x80\x80\"", "invalid UTF-8" },  /* U+110000 */
    { "\"\xf5\x80\x80\x80\"", "invalid UTF-8" },
    { "\"\xf8\x88\x80\x80\x80\"", "invalid UTF-8" },
    { "\"\xe2\x82\"", "invalid UTF-8" },          /* cut sequence */
    { "\"\xe2\x82", NULL },
    { "\"\xf0\x9f\x98\"", "invalid UTF-8" },
    { "\"\xc3\"", "invalid UTF-8" },
    { "\"\xc3\xc3\xa9\"", "invalid UTF-8" },
    { "{\"id\":\"\xff\xfe\",\"action\":\"ping\"}", "invalid UTF-8" },
    { "{\"\xff\":1}", "invalid UTF-8" },
    { "\xef\xbb\xbf{}", "unexpected byte 0xef" }, /* a BOM is not whitespace */
    { "[\xc3\xa9]", "unexpected byte 0xc3" },
    /* numbers */
    { "+1", "unexpected character '+'" },
    { "1.", "invalid number at byte 0 (a digit must follow '.')" },
    { ".5", "unexpected character '.'" },
    { "01", "invalid number at byte 0 (no leading zeros)" },
    { "-01", "no leading zeros" },
    { "00", "no leading zeros" },
    { "[1,007]", "invalid number at byte 3 (no leading zeros)" },
    { "-", "a digit must follow '-'" },
    { "--1", "a digit must follow '-'" },
    { "- 1", "a digit must follow '-'" },
    { "-.5", "a digit must follow '-'" },
    { "1e", "exponent" },
    { "1e+", "exponent" },
    { "1E-", "exponent" },
    { "1.e1", "a digit must follow '.'" },
    { "0.e1", "a digit must follow '.'" },
    { "0x10", "invalid number" },
    { "1.2.3", "invalid number" },
    { "1e5e5", "invalid number" },
    { "12abc", "invalid number" },
    { "1-2", "invalid number" },
    { "NaN", "unexpected character 'N'" },
    { "-NaN", "invalid number" },
    { "Infinity", "unexpected character 'I'" },
    { "-Infinity", "invalid number" },
    { "1e400", "number out of range at byte 0" },
    { "-1e400", "number out of range" },
    { "[1e309]", "number out of range at byte 1" },
    { "1" "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "number out of range" },
    /* literals */
    { "tru", "invalid literal at byte 0 (expected true)" },
    { "True", "unexpected character 'T'" },
    { "nul", "invalid literal at byte 0 (expected null)" },
    { "nulls", "invalid literal" },
    { "falsee", "invalid literal" },
    { "fals", "invalid literal" },
    { "undefined", "unexpected character 'u'" },
    { "[nul]", "invalid literal" },
    /* structure */
    { "[1,]", "trailing comma at byte 2" },
    { "{\"a\":1,}", "trailing comma at byte 6" },
    { "[1, ]", "trailing comma" },
    { "{\"a\":1 , }", "trailing comma" },
    { "[,1]", "unexpected character ','" },
    { "[1,,2]", "unexpected character ','" },
    { "{,}", "member name" },
    { "{\"a\"}", "':'" },
    { "{\"a\" 1}", "':'" },
    { "{\"a\":}", "expected a value" },
    { "{a:1}", "member name" },
    { "{1:1}", "member name" },
    { "{'a':1}", "unexpected character '''" },
    { "'a'", "unexpected character '''" },
    { "[1 2]", "',' or ']'" },
    { "{\"a\":1 \"b\":2}", "',' or '}'" },
    { "]", NULL },
    { "}", NULL },
    { "[}", NULL },
    { "{]", NULL },
    { "[1}", "',' or ']'" },
    { "{\"a\":1]", "',' or '}'" },
    { ":", NULL },
    { ",", NULL },
    { "\"unterminated", "unexpected end of the JSON text in a string" },
    { "[1,2", "unexpected end of the JSON text" },
    { "{bad", "member name" },
    /* no comments */
    { "/* c */ 1", "unexpected character '/'" },
    { "1 // c", "unexpected data after the JSON value" },
    { "# c", NULL },
    { "{\"a\":1}/**/", "unexpected data after the JSON value" },
    { "[1,/*x*/2]", NULL },
  };
  static const struct {
    const char *text;
    gsize len;
    const char *message;
  } with_nul[] = {
    { "\0", 1, "NUL byte" },
    { "\0\0\0", 3, "NUL byte" },
    { "[1,\0 2]", 7, "NUL byte" },
    { "\"a\0b\"", 5, "NUL byte in a string at byte 2" },
    { "{} \0", 4, "unexpected data after the JSON value at byte 3" },
    { "{\"id\":\"n\",\"action\":\"ping\"\0}", 27, "NUL byte" },
    { "1\0", 2, "unexpected data after the JSON value" },
  };
  g_autofree char *too_deep_array = nested ("[", "1", "]", 513);
  g_autofree char *too_deep_object = nested ("{\"a\":", "1", "}", 513);
  g_autofree char *too_deep_mixed = nested ("[{\"k\":", "[1]", "}]", 256);
  g_autofree char *hostile_array = nested ("[", "", "", 100000);
  g_autofree char *hostile_object = nested ("{\"a\":", "1", "}", 100000);
  const char *deep[] = { too_deep_array, too_deep_object, too_deep_mixed, hostile_array, hostile_object };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_refused (cases[i].text, strlen (cases[i].text), cases[i].message);
  for (guint i = 0; i < G_N_ELEMENTS (with_nul); i++)
    expect_refused (with_nul[i].text, with_nul[i].len, with_nul[i].message);
  for (guint i = 0; i < G_N_ELEMENTS (deep); i++)
    expect_refused (deep[i], strlen (deep[i]), "JSON nested deeper than 512 levels");
  expect_refused (NULL, 0, "empty JSON text");
}

/* Every proper prefix of a document is refused (none is valid JSON). */
static void
test_truncated (void)
{
  g_autofree char *deep = nested ("[{\"k\":", "\"\\ud83d\\ude00\"", "}]", 20);
  const char *documents[] = {
    publish_request, escapes_document, deep,
    "{\"a\":[1,-2.5e+3,true,false,null,\"x\"],\"b\":{\"c\":{}}}",
    "[\"\xf0\x9f\x98\x80\xc3\xa9\",-0.0,123456789012345678901234567890]",
  };

  for (guint d = 0; d < G_N_ELEMENTS (documents); d++)
    {
      gsize len = strlen (documents[d]);
      g_autoptr (JsonNode) whole = parse_exact (documents[d], len, NULL);

      g_assert_nonnull (whole);
      for (gsize n = 0; n < len; n++)
        expect_refused (documents[d], n, NULL);
    }
}

/* ---- randomized round trip ---- */

static char *
random_string (GRand *rand)
{
  GString *s = g_string_new (NULL);
  gint n = g_rand_int_range (rand, 0, 14);

  for (gint i = 0; i < n; i++)
    {
      gunichar c;
      switch (g_rand_int_range (rand, 0, 8))
        {
        case 0: c = "\"\\/\b\f\n\r\t"[g_rand_int_range (rand, 0, 8)]; break;
        /* Control characters, never NUL; nor 0x1f: json-glib 1.6's generator
         * writes it raw (its escaping stops at 0x1e), which is not JSON. */
        case 1: c = (gunichar) g_rand_int_range (rand, 1, 0x1f); break;
        case 2: c = (gunichar) g_rand_int_range (rand, 0x80, 0x800); break;
        case 3:
          do
            c = (gunichar) g_rand_int_range (rand, 0x800, 0x10000);
          while (c >= 0xd800 && c <= 0xdfff);
          break;
        case 4: c = (gunichar) g_rand_int_range (rand, 0x10000, 0x110000); break;
        default: c = (gunichar) g_rand_int_range (rand, 0x20, 0x80); break;
        }
      g_string_append_unichar (s, c);
    }
  return g_string_free (s, FALSE);
}

static double
random_double (GRand *rand)
{
  switch (g_rand_int_range (rand, 0, 4))
    {
    case 0: return g_rand_double_range (rand, -1000, 1000);
    case 1: return (double) g_rand_int_range (rand, -100, 100); /* integral doubles */
    case 2: return ldexp (g_rand_double_range (rand, -1, 1), g_rand_int_range (rand, -1070, 1024));
    default: return g_rand_double_range (rand, -1e-5, 1e-5);
    }
}

static gint64
random_int (GRand *rand)
{
  static const gint64 edges[] = { 0, 1, -1, G_MAXINT64, G_MININT64, G_MAXINT32, G_MININT32, 9007199254740993 };

  switch (g_rand_int_range (rand, 0, 3))
    {
    case 0: return edges[g_rand_int_range (rand, 0, G_N_ELEMENTS (edges))];
    case 1: return g_rand_int_range (rand, -1000, 1000);
    default: return (gint64) ((guint64) g_rand_int (rand) << 32 | g_rand_int (rand));
    }
}

static JsonNode *
random_tree (GRand *rand, guint depth)
{
  /* A container at the root, scalars only at the depth limit. */
  gint kind = depth == 0 ? g_rand_int_range (rand, 6, 9) : g_rand_int_range (rand, 0, depth >= 8 ? 6 : 9);

  switch (kind)
    {
    case 0: return json_node_init_null (json_node_alloc ());
    case 1: return json_node_init_boolean (json_node_alloc (), g_rand_boolean (rand));
    case 2: return json_node_init_int (json_node_alloc (), random_int (rand));
    case 3: return json_node_init_double (json_node_alloc (), random_double (rand));
    case 4:
    case 5:
      {
        g_autofree char *s = random_string (rand);
        return json_node_init_string (json_node_alloc (), s);
      }
    case 6:
    case 7:
      {
        JsonObject *obj = json_object_new ();
        gint n = g_rand_int_range (rand, 0, 6);
        for (gint i = 0; i < n; i++)
          {
            g_autofree char *key = random_string (rand);
            json_object_set_member (obj, key, random_tree (rand, depth + 1));
          }
        JsonNode *node = json_node_init_object (json_node_alloc (), obj);
        json_object_unref (obj);
        return node;
      }
    default:
      {
        JsonArray *array = json_array_new ();
        gint n = g_rand_int_range (rand, 0, 6);
        for (gint i = 0; i < n; i++)
          json_array_add_element (array, random_tree (rand, depth + 1));
        JsonNode *node = json_node_init_array (json_node_alloc (), array);
        json_array_unref (array);
        return node;
      }
    }
}

static void
random_ws (GRand *rand, GString *out)
{
  while (g_rand_int_range (rand, 0, 4) == 0)
    g_string_append_c (out, " \t\r\n"[g_rand_int_range (rand, 0, 4)]);
}

/* Strings with every character possibly written as \uXXXX (a surrogate
 * pair above the BMP), random hex case, random whitespace: what the
 * generator never writes. */
static void
write_escaped_string (GRand *rand, GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const char *p = s; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      gboolean upper = g_rand_boolean (rand);

      if (c < 0x20 || c == '"' || c == '\\' || g_rand_int_range (rand, 0, 3) == 0)
        {
          if (c >= 0x10000)
            g_string_append_printf (out, upper ? "\\u%04X\\u%04X" : "\\u%04x\\u%04x",
                                    0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 0x3ff));
          else
            g_string_append_printf (out, upper ? "\\u%04X" : "\\u%04x", c);
        }
      else
        g_string_append_len (out, p, g_utf8_next_char (p) - p);
    }
  g_string_append_c (out, '"');
}

static void
write_tree (GRand *rand, GString *out, JsonNode *node)
{
  random_ws (rand, out);
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      gboolean first = TRUE;

      g_string_append_c (out, '{');
      json_object_iter_init_ordered (&iter, json_node_get_object (node));
      while (json_object_iter_next_ordered (&iter, &name, &member))
        {
          if (!first)
            g_string_append_c (out, ',');
          first = FALSE;
          random_ws (rand, out);
          write_escaped_string (rand, out, name);
          random_ws (rand, out);
          g_string_append_c (out, ':');
          write_tree (rand, out, member);
        }
      random_ws (rand, out);
      g_string_append_c (out, '}');
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      g_string_append_c (out, '[');
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          if (i)
            g_string_append_c (out, ',');
          write_tree (rand, out, json_array_get_element (array, i));
        }
      random_ws (rand, out);
      g_string_append_c (out, ']');
    }
  else if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    write_escaped_string (rand, out, json_node_get_string (node));
  else
    ens_json_write (out, node);
  random_ws (rand, out);
}

static void
test_round_trip (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20261121);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  gsize bytes = 0;

  for (guint i = 0; i < 2000; i++)
    {
      g_autoptr (JsonNode) tree = random_tree (rand, 0);
      g_autoptr (GString) escaped = g_string_new (NULL);
      g_autofree char *text = NULL;
      gsize len;

      json_generator_set_pretty (generator, g_rand_boolean (rand));
      json_generator_set_root (generator, tree);
      text = json_generator_to_data (generator, &len);
      write_tree (rand, escaped, tree);
      bytes += len + escaped->len;

      for (guint k = 0; k < 2; k++)
        {
          const char *t = k ? escaped->str : text;
          gsize n = k ? escaped->len : len;
          g_autoptr (GError) error = NULL;
          g_autoptr (JsonNode) back = parse_exact (t, n, &error);

          if (back == NULL)
            g_error ("tree %u: refused %s: %s", i, t, error->message);
          if (!json_node_equal (tree, back) || !same_tree (tree, back, TRUE))
            {
              g_autofree char *got = dump (back);
              g_error ("tree %u: %s came back as %s", i, t, got);
            }
        }
    }
  g_test_message ("2000 trees, %" G_GSIZE_FORMAT " bytes of JSON parsed", bytes);
}

static gboolean
want_if_publish (JsonObject *head, gpointer data)
{
  (*(guint *) data)++;
  return g_strcmp0 (json_object_get_string_member_with_default (head, "action", NULL), "publish") == 0;
}

/* ens_json_parse_keep_text: the kept member's exact text, the rest as the
 * tree; not kept when not a container, not wanted, or nested deeper;
 * errors inside the kept text as ens_json_parse reports them. */
static void
test_keep_text (void)
{
  static const struct {
    const char *text;
    const char *kept; /* NULL: nothing kept */
    const char *tree; /* the tree without it, as ens_json_write writes it */
  } cases[] = {
    { "{\"action\":\"publish\",\"data\":{\"n\": 1.50, \"s\":\"\\u00e9\"}}", "{\"n\": 1.50, \"s\":\"\\u00e9\"}",
      "{\"action\":\"publish\"}" },
    { "{\"action\":\"publish\",\"data\":[1,[2,{}]],\"id\":3}", "[1,[2,{}]]", "{\"action\":\"publish\",\"id\":3}" },
    { "{\"action\":\"publish\",\"data\":{}}", "{}", "{\"action\":\"publish\"}" },
    { "{\"action\":\"publish\",\"data\":[]}", "[]", "{\"action\":\"publish\"}" },
    /* scalars are built */
    { "{\"action\":\"publish\",\"data\":5}", NULL, "{\"action\":\"publish\",\"data\":5}" },
    /* not wanted: the action is not there yet, or another */
    { "{\"data\":{\"a\":1},\"action\":\"publish\"}", NULL, "{\"data\":{\"a\":1},\"action\":\"publish\"}" },
    { "{\"action\":\"ping\",\"data\":{\"a\":1}}", NULL, "{\"action\":\"ping\",\"data\":{\"a\":1}}" },
    /* only the top level's member */
    { "{\"action\":\"publish\",\"x\":{\"data\":{\"a\":1}}}", NULL, "{\"action\":\"publish\",\"x\":{\"data\":{\"a\":1}}}" },
    /* a later member of the same name wins */
    { "{\"action\":\"publish\",\"data\":{\"a\":1},\"data\":2}", NULL, "{\"action\":\"publish\",\"data\":2}" },
    { "{\"action\":\"publish\",\"data\":3,\"data\":{\"b\":2}}", "{\"b\":2}", "{\"action\":\"publish\"}" },
    { "{\"action\":\"publish\",\"data\":{\"a\":1},\"data\":{\"b\":2}}", "{\"b\":2}", "{\"action\":\"publish\"}" },
    /* not an object at the top */
    { "[{\"data\":{}}]", NULL, "[{\"data\":{}}]" },
  };
  static const char *const bad[] = {
    "{\"action\":\"publish\",\"data\":{\"a\":}}",
    "{\"action\":\"publish\",\"data\":{\"a\":1}",
    "{\"action\":\"publish\",\"data\":{\"a\":\"\\u0000\"}}",
    "{\"action\":\"publish\",\"data\":[1,]}",
    "{\"action\":\"publish\",\"data\":{\"a\":1}} x",
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize len = strlen (cases[i].text), kept_len = 99;
      char *copy = g_memdup2 (cases[i].text, len);
      const char *kept = NULL;
      guint asked = 0;
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) root = ens_json_parse_keep_text (copy, len, "data", want_if_publish, &asked, &kept,
                                                            &kept_len, &error);
      g_autoptr (GString) tree = g_string_new (NULL);

      g_assert_no_error (error);
      g_assert_nonnull (root);
      ens_json_write (tree, root);
      g_assert_cmpstr (tree->str, ==, cases[i].tree);
      if (cases[i].kept == NULL)
        {
          g_assert_null (kept);
          g_assert_cmpuint (kept_len, ==, 0);
        }
      else
        {
          g_assert_true (kept >= copy && kept + kept_len <= copy + len); /* a span of the text */
          g_assert_cmpmem (kept, kept_len, cases[i].kept, strlen (cases[i].kept));
        }
      g_free (copy);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      gsize len = strlen (bad[i]), kept_len = 99;
      const char *kept = "x";
      guint asked = 0;
      g_autoptr (GError) error = NULL, plain = NULL;
      g_autoptr (JsonNode) root = ens_json_parse_keep_text (bad[i], len, "data", want_if_publish, &asked, &kept,
                                                            &kept_len, &error);
      g_autoptr (JsonNode) none = ens_json_parse (bad[i], len, &plain);

      g_assert_null (root);
      g_assert_null (none);
      g_assert_null (kept);
      g_assert_cmpuint (kept_len, ==, 0);
      g_assert_cmpstr (error->message, ==, plain->message); /* the same words */
    }
}

static void
collect_member (const char *name, const char *value, gsize value_len, const char *string, gpointer data)
{
  g_string_append_printf (data, "%s=%.*s%s%s;", name, (int) value_len, value, string ? "|" : "", string ? string : "");
}

/* ens_json_scan_members: each top-level member in order, its value's exact
 * text and a string decoded; refusals as ens_json_parse's. */
static void
test_scan_members (void)
{
  static const struct {
    const char *text;
    const char *members; /* NULL: refused */
  } cases[] = {
    { "{}", "" },
    { " { \"a\" : 1 , \"b\":[1, {\"c\":2}] ,\"d\":\"x\\u00e9\\n\",\"e\":null,\"a\":{ }} ",
      "a=1;b=[1, {\"c\":2}];d=\"x\\u00e9\\n\"|x\xc3\xa9\n;e=null;a={ };" },
    { "{\"k\\\"q\":true}", "k\"q=true;" },
    { "[1]", NULL },
    { "\"s\"", NULL },
    { "{\"a\":1,}", NULL },
    { "{\"a\":1", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) got = g_string_new (NULL);
      g_autoptr (GError) error = NULL;
      gsize len = strlen (cases[i].text);
      g_autofree char *copy = g_memdup2 (cases[i].text, len);
      gboolean ok = ens_json_scan_members (copy, len, collect_member, got, &error);

      if (cases[i].members == NULL)
        {
          g_assert_false (ok);
          g_assert_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA);
        }
      else
        {
          g_autoptr (GString) checked = g_string_new (NULL);

          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_cmpstr (got->str, ==, cases[i].members);
          /* the same members from the variant that trusts the text */
          g_assert_true (ens_json_scan_checked_members (copy, len, collect_member, checked));
          g_assert_cmpstr (checked->str, ==, cases[i].members);
        }
    }
}

/* The number writers say what printf says. */
static void
test_numbers_written (void)
{
  static const guint64 values[] = { 0, 1, 9, 10, 999, 1000, 123456789, G_MAXUINT32, G_MAXUINT64 };
  static const gint64 micros[] = { -5, 0, 1, 999, 1000, 1001, 123456, 3600000000 };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr (GString) out = g_string_new ("x");
      g_autofree char *want = g_strdup_printf ("x%" G_GUINT64_FORMAT, values[i]);
      ens_json_write_uint (out, values[i]);
      g_assert_cmpstr (out->str, ==, want);
    }
  for (guint i = 0; i < G_N_ELEMENTS (micros); i++)
    {
      g_autoptr (GString) out = g_string_new (NULL);
      double ms = micros[i] / 1000.0;
      g_autofree char *want = g_strdup_printf ("%.3f", ms < 0 ? 0.0 : ms);
      ens_json_append_millis (out, micros[i]);
      g_assert_cmpstr (out->str, ==, want);
    }
  {
    g_autoptr (GString) out = g_string_new (NULL);
    ens_json_append_timestamp (out, G_GINT64_CONSTANT (1780000000000042));
    g_assert_cmpstr (out->str, ==, "\"2026-05-28T20:26:40.000042Z\"");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/json/numbers-written", test_numbers_written);
  g_test_add_func ("/json/scan-members", test_scan_members);
  g_test_add_func ("/json/keep-text", test_keep_text);
  g_test_add_func ("/json/valid-like-json-glib", test_valid_like_json_glib);
  g_test_add_func ("/json/numbers", test_numbers);
  g_test_add_func ("/json/invalid", test_invalid);
  g_test_add_func ("/json/truncated", test_truncated);
  g_test_add_func ("/json/round-trip", test_round_trip);
  return g_test_run ();
}
