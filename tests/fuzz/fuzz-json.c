/* fuzz-json.c — the core's JSON parser (core/ens-json-parse.c), differential.
 *
 * For every input:
 *  1. it is accepted exactly when a small reference recognizer of RFC 8259
 *     (below, written for this test) accepts it, with the parser's stated
 *     extra refusals: \u0000 in a string, nesting deeper than 512, a number
 *     that is not finite as a double;
 *  2. when accepted, json-glib's JsonParser accepts it too and builds the
 *     same tree (types, values, member order), except that an integer
 *     beyond int64 is a double for us and wrapped by json-glib; json-glib
 *     accepts more (01, 1., .5, single quotes, hex, comments...), which is
 *     the documented strictness, checked by 1;
 *  3. when accepted, the core's writer prints a text that parses back to
 *     the same tree (an integral double may come back as an int);
 *  4. refused, it is refused the same way without a GError to fill, with a
 *     JSON_PARSER_ERROR_INVALID_DATA error that is not empty;
 *  5. ens_json_parse_keep_text (member "data") accepts and refuses the same
 *     texts with the same words; a kept "data" is a span of the input that
 *     parses to the tree's "data", and every other member is the same;
 *  6. ens_json_scan_members accepts the objects it accepts (refuses the
 *     rest); the last value scanned for each name parses to the tree's
 *     member, and a string's decoded text is the tree's string;
 *     ens_json_scan_checked_members reports the same members of an
 *     accepted object, and never reads past the end of anything else.
 */
#include "ens-fuzz.h"

#include <math.h>
#include <string.h>

/* ---- the reference recognizer ---- */

typedef struct {
  const guchar *s;
  gsize n, i;
  guint depth;
} Ref;

static void
ref_ws (Ref *r)
{
  while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\r' || r->s[r->i] == '\n'))
    r->i++;
}

static int
ref_hex4 (Ref *r, gsize at)
{
  int v = 0;

  if (at + 4 > r->n)
    return -1;
  for (gsize k = at; k < at + 4; k++)
    {
      guchar c = r->s[k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
  return v;
}

static gboolean
ref_string (Ref *r)
{
  r->i++; /* the quote */
  while (r->i < r->n)
    {
      guchar c = r->s[r->i];

      if (c == '"')
        {
          r->i++;
          return TRUE;
        }
      if (c < 0x20)
        return FALSE;
      if (c >= 0x80)
        {
          /* A run of non-ASCII bytes is whole UTF-8 sequences or nothing;
           * g_utf8_validate refuses overlongs, surrogates, > U+10FFFF. */
          gsize start = r->i;
          while (r->i < r->n && r->s[r->i] >= 0x80)
            r->i++;
          if (!g_utf8_validate_len ((const char *) r->s + start, r->i - start, NULL))
            return FALSE;
          continue;
        }
      if (c != '\\')
        {
          r->i++;
          continue;
        }
      if (r->i + 1 >= r->n)
        return FALSE;
      c = r->s[r->i + 1];
      if (c == 'u')
        {
          int v = ref_hex4 (r, r->i + 2);
          if (v <= 0) /* malformed, or \u0000: refused by choice */
            return FALSE;
          r->i += 6;
          if (v >= 0xdc00 && v <= 0xdfff)
            return FALSE;
          if (v >= 0xd800 && v <= 0xdbff)
            {
              int lo;
              if (r->i + 1 >= r->n || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
                return FALSE;
              lo = ref_hex4 (r, r->i + 2);
              if (lo < 0xdc00 || lo > 0xdfff)
                return FALSE;
              r->i += 6;
            }
          continue;
        }
      if (strchr ("\"\\/bfnrt", c) == NULL || c == 0)
        return FALSE;
      r->i += 2;
    }
  return FALSE;
}

static gboolean
ref_digits (Ref *r)
{
  gsize start = r->i;

  while (r->i < r->n && g_ascii_isdigit (r->s[r->i]))
    r->i++;
  return r->i > start;
}

static gboolean
ref_number (Ref *r)
{
  gsize start = r->i;
  char *text;
  double d;

  if (r->s[r->i] == '-')
    r->i++;
  if (r->i >= r->n || !g_ascii_isdigit (r->s[r->i]))
    return FALSE;
  if (r->s[r->i] == '0')
    r->i++;
  else
    ref_digits (r);
  if (r->i < r->n && r->s[r->i] == '.')
    {
      r->i++;
      if (!ref_digits (r))
        return FALSE;
    }
  if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E'))
    {
      r->i++;
      if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
        r->i++;
      if (!ref_digits (r))
        return FALSE;
    }
  text = g_strndup ((const char *) r->s + start, r->i - start);
  d = g_ascii_strtod (text, NULL);
  g_free (text);
  return isfinite (d); /* refused by choice: 1e400 */
}

static gboolean
ref_literal (Ref *r, const char *word)
{
  gsize n = strlen (word);

  if (r->n - r->i < n || memcmp (r->s + r->i, word, n) != 0)
    return FALSE;
  r->i += n;
  return TRUE;
}

static gboolean ref_value (Ref *r);

static gboolean
ref_container (Ref *r, guchar close)
{
  gboolean first = TRUE;

  if (++r->depth > 512) /* refused by choice */
    return FALSE;
  r->i++;
  for (;;)
    {
      ref_ws (r);
      if (r->i >= r->n)
        return FALSE;
      if (first && r->s[r->i] == close)
        break;
      if (!first)
        {
          if (r->s[r->i] == close)
            break;
          if (r->s[r->i] != ',')
            return FALSE;
          r->i++;
          ref_ws (r);
          if (r->i >= r->n)
            return FALSE;
        }
      first = FALSE;
      if (close == '}')
        {
          if (r->s[r->i] != '"' || !ref_string (r))
            return FALSE;
          ref_ws (r);
          if (r->i >= r->n || r->s[r->i] != ':')
            return FALSE;
          r->i++;
        }
      if (!ref_value (r))
        return FALSE;
    }
  r->i++;
  r->depth--;
  return TRUE;
}

static gboolean
ref_value (Ref *r)
{
  ref_ws (r);
  if (r->i >= r->n)
    return FALSE;
  switch (r->s[r->i])
    {
    case '{': return ref_container (r, '}');
    case '[': return ref_container (r, ']');
    case '"': return ref_string (r);
    case 't': return ref_literal (r, "true");
    case 'f': return ref_literal (r, "false");
    case 'n': return ref_literal (r, "null");
    default:
      if (r->s[r->i] == '-' || g_ascii_isdigit (r->s[r->i]))
        return ref_number (r);
      return FALSE;
    }
}

static gboolean
ref_accepts (const guchar *s, gsize n)
{
  Ref r = { s, n, 0, 0 };

  if (!ref_value (&r))
    return FALSE;
  ref_ws (&r);
  return r.i == n;
}

/* ---- the tree against json-glib's ---- */

/* Like ens_fuzz_same_tree, but where json-glib wrapped an integer beyond
 * int64 (a double >= 2^63 in magnitude for us), any int64 of it matches. */
static gboolean
same_as_json_glib (JsonNode *ours, JsonNode *theirs)
{
  if (JSON_NODE_HOLDS_VALUE (ours) && JSON_NODE_HOLDS_VALUE (theirs) &&
      json_node_get_value_type (ours) == G_TYPE_DOUBLE && json_node_get_value_type (theirs) == G_TYPE_INT64)
    return fabs (json_node_get_double (ours)) >= 9223372036854775808.0 &&
           floor (json_node_get_double (ours)) == json_node_get_double (ours);
  if (JSON_NODE_HOLDS_ARRAY (ours) && JSON_NODE_HOLDS_ARRAY (theirs))
    {
      JsonArray *x = json_node_get_array (ours), *y = json_node_get_array (theirs);
      if (json_array_get_length (x) != json_array_get_length (y))
        return FALSE;
      for (guint i = 0; i < json_array_get_length (x); i++)
        if (!same_as_json_glib (json_array_get_element (x, i), json_array_get_element (y, i)))
          return FALSE;
      return TRUE;
    }
  if (JSON_NODE_HOLDS_OBJECT (ours) && JSON_NODE_HOLDS_OBJECT (theirs))
    {
      JsonObjectIter ia, ib;
      const char *na, *nb;
      JsonNode *ma, *mb;

      json_object_iter_init_ordered (&ia, json_node_get_object (ours));
      json_object_iter_init_ordered (&ib, json_node_get_object (theirs));
      for (;;)
        {
          gboolean more_a = json_object_iter_next_ordered (&ia, &na, &ma);
          gboolean more_b = json_object_iter_next_ordered (&ib, &nb, &mb);
          if (!more_a || !more_b)
            return more_a == more_b;
          if (strcmp (na, nb) != 0 || !same_as_json_glib (ma, mb))
            return FALSE;
        }
    }
  return ens_fuzz_same_tree (ours, theirs, FALSE);
}

size_t
LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
  return ens_fuzz_mutate_json (data, size, max_size, seed, 0);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  return 0;
}

static gboolean
keep_any (JsonObject *head, gpointer user_data)
{
  (void) head;
  (void) user_data;
  return TRUE;
}

/* 5: parsed keeping "data" as text, against the whole tree @ours (NULL:
 * refused with @error). */
static void
check_keep_text (const uint8_t *data, size_t size, JsonNode *ours, GError *error)
{
  g_autoptr (GError) kept_error = NULL;
  const char *kept;
  gsize kept_len;
  g_autoptr (JsonNode) head = ens_json_parse_keep_text ((const char *) data, size, "data", keep_any, NULL, &kept,
                                                        &kept_len, &kept_error);
  JsonObject *whole, *rest;
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;

  ENS_FUZZ_CHECK ((head != NULL) == (ours != NULL), "keeping text: %s", head ? "accepted" : "refused");
  if (ours == NULL)
    {
      ENS_FUZZ_CHECK (g_strcmp0 (error->message, kept_error->message) == 0, "keeping text: other words: %s",
                      kept_error->message);
      return;
    }
  if (kept == NULL)
    {
      ENS_FUZZ_CHECK (ens_fuzz_same_tree (ours, head, FALSE), "keeping text: nothing kept, another tree");
      return;
    }
  ENS_FUZZ_CHECK (JSON_NODE_HOLDS_OBJECT (ours) && kept >= (const char *) data &&
                    kept + kept_len <= (const char *) data + size, "kept text outside the input");
  whole = json_node_get_object (ours);
  rest = json_node_get_object (head);
  {
    g_autoptr (JsonNode) back = ens_json_parse (kept, kept_len, NULL);
    ENS_FUZZ_CHECK (back != NULL && json_object_has_member (whole, "data") &&
                      ens_fuzz_same_tree (back, json_object_get_member (whole, "data"), FALSE),
                    "the kept text is not the tree's data");
  }
  ENS_FUZZ_CHECK (!json_object_has_member (rest, "data") && json_object_get_size (rest) + 1 == json_object_get_size (whole),
                  "keeping text: other members");
  json_object_iter_init (&iter, rest);
  while (json_object_iter_next (&iter, &name, &member))
    ENS_FUZZ_CHECK (json_object_has_member (whole, name) &&
                      ens_fuzz_same_tree (member, json_object_get_member (whole, name), FALSE),
                    "keeping text: member %s differs", name);
}

typedef struct {
  JsonObject *whole;
  GHashTable *last;   /* name -> its last value's text (a copy) */
  GHashTable *string; /* name -> its last value's decoded string, if one */
} ScanCheck;

static void
scan_check_member (const char *name, const char *value, gsize value_len, const char *string, gpointer user_data)
{
  ScanCheck *sc = user_data;

  g_hash_table_insert (sc->last, g_strdup (name), g_strndup (value, value_len));
  if (string)
    g_hash_table_insert (sc->string, g_strdup (name), g_strdup (string));
  else
    g_hash_table_remove (sc->string, name);
}

static void
log_member (const char *name, const char *value, gsize value_len, const char *string, gpointer user_data)
{
  g_string_append_printf (user_data, "%s\x01%.*s\x01%s\x02", name, (int) value_len, value, string ? string : "\x03");
}

/* 6 */
static void
check_scan (const uint8_t *data, size_t size, JsonNode *ours)
{
  ScanCheck sc = { 0 };
  g_autoptr (GHashTable) last = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GHashTable) strings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gboolean is_object = ours && JSON_NODE_HOLDS_OBJECT (ours);
  gboolean ok;
  GHashTableIter iter;
  gpointer name, text;

  sc.whole = is_object ? json_node_get_object (ours) : NULL;
  sc.last = last;
  sc.string = strings;
  ok = ens_json_scan_members ((const char *) data, size, scan_check_member, &sc, NULL);
  ENS_FUZZ_CHECK (ok == is_object, "scan: %s", ok ? "accepted" : "refused");
  {
    /* the trusting variant: the same members of an object (compared as the
     * log of every call); anything at all read safely otherwise (ASan) */
    g_autoptr (GString) a = g_string_new (NULL), b = g_string_new (NULL);
    gboolean trusted;

    if (ok)
      ens_json_scan_members ((const char *) data, size, log_member, a, NULL);
    trusted = ens_json_scan_checked_members ((const char *) data, size, log_member, b);
    if (ok)
      ENS_FUZZ_CHECK (trusted && g_string_equal (a, b), "checked scan differs: %s / %s", a->str, b->str);
  }
  if (!ok)
    return;
  ENS_FUZZ_CHECK (g_hash_table_size (last) == json_object_get_size (sc.whole), "scan: other members");
  g_hash_table_iter_init (&iter, last);
  while (g_hash_table_iter_next (&iter, &name, &text))
    {
      g_autoptr (JsonNode) back = ens_json_parse (text, strlen (text), NULL);
      const char *string = g_hash_table_lookup (strings, name);
      JsonNode *member = json_object_get_member (sc.whole, name);

      ENS_FUZZ_CHECK (back != NULL && member != NULL && ens_fuzz_same_tree (back, member, FALSE),
                      "scan: member %s is not the tree's", (const char *) name);
      ENS_FUZZ_CHECK ((string != NULL) == (JSON_NODE_HOLDS_VALUE (member) &&
                                           json_node_get_value_type (member) == G_TYPE_STRING) &&
                        (string == NULL || strcmp (string, json_node_get_string (member)) == 0),
                      "scan: member %s: not the tree's string", (const char *) name);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ours = ens_json_parse ((const char *) data, size, &error);
  g_autoptr (JsonNode) quiet = ens_json_parse ((const char *) data, size, NULL);
  gboolean reference = ref_accepts (data, size);

  ENS_FUZZ_CHECK ((ours != NULL) == reference, "%s, the reference recognizer %s (%s)",
                  ours ? "accepted" : "refused", reference ? "accepts" : "refuses", error ? error->message : "");
  ENS_FUZZ_CHECK ((quiet != NULL) == (ours != NULL), "a different answer without a GError");
  check_keep_text (data, size, ours, error);
  check_scan (data, size, ours);
  if (ours == NULL)
    {
      ENS_FUZZ_CHECK (g_error_matches (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA) &&
                        error->message[0] != '\0',
                      "refused without a proper error");
      return 0;
    }
  ENS_FUZZ_CHECK (error == NULL, "accepted with an error set");
  ENS_FUZZ_CHECK (ens_fuzz_same_tree (ours, quiet, FALSE), "a different tree without a GError");

  /* json-glib, from its own NUL-terminated copy (accepted texts hold no NUL). */
  {
    g_autoptr (JsonParser) parser = json_parser_new_immutable ();
    g_autoptr (GError) their_error = NULL;
    g_autofree char *copy = g_strndup ((const char *) data, size);

    ENS_FUZZ_CHECK (json_parser_load_from_data (parser, copy, (gssize) size, &their_error),
                    "json-glib refuses what we accept: %s", their_error->message);
    ENS_FUZZ_CHECK (same_as_json_glib (ours, json_parser_get_root (parser)), "not json-glib's tree");
  }

  /* The writer's text reads back as the same tree. */
  {
    g_autofree char *text = ens_json_to_string (ours);
    g_autoptr (GError) back_error = NULL;
    g_autoptr (JsonNode) back = ens_json_parse (text, strlen (text), &back_error);

    ENS_FUZZ_CHECK (back != NULL, "the writer's text is refused: %s", back_error->message);
    ENS_FUZZ_CHECK (ens_fuzz_same_tree (ours, back, TRUE), "the writer's text reads back differently: %s", text);
  }
  return 0;
}
