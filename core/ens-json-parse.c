/* ens-json-parse.c — the parser for every JSON text from clients and Redis.
 *
 * Strict RFC 8259, one value per text, building the json-glib tree the rest
 * of the daemon uses.  Replaces json-glib's JsonParser (GScanner based: most
 * of the CPU of a request went there).  Iterative with an explicit stack of
 * open containers, so hostile nesting costs no C stack; containers are
 * attached to their parent when opened, so on error the root owns all. */
#include "ens-json.h"

#include <math.h>
#include <string.h>

#define ENS_JSON_MAX_DEPTH 512

/* A growable byte buffer, on the stack while it is small. */
typedef struct
{
  char *data;
  gsize len, cap;
  char local[256];
} Buf;

static void
buf_init (Buf *b)
{
  b->data = b->local;
  b->len = 0;
  b->cap = sizeof b->local;
}

static void
buf_clear (Buf *b)
{
  if (b->data != b->local)
    g_free (b->data);
}

static inline void
buf_reserve (Buf *b, gsize extra)
{
  gsize need = b->len + extra + 1; /* + NUL */

  if (G_LIKELY (need <= b->cap))
    return;
  while (b->cap < need)
    b->cap *= 2;
  if (b->data == b->local)
    b->data = memcpy (g_malloc (b->cap), b->local, b->len);
  else
    b->data = g_realloc (b->data, b->cap);
}

static inline void
buf_append (Buf *b, const char *s, gsize n)
{
  buf_reserve (b, n);
  memcpy (b->data + b->len, s, n);
  b->len += n;
}

typedef struct
{
  JsonObject *object; /* one of the two when building */
  JsonArray *array;
  gboolean is_object;
} Frame;

typedef enum
{
  KIND_NONE, /* a refusal */
  KIND_OBJECT,
  KIND_ARRAY,
  KIND_STRING,
  KIND_INT,
  KIND_DOUBLE,
  KIND_TRUE,
  KIND_FALSE,
  KIND_NULL,
} Kind;

typedef struct
{
  const guchar *text;
  gsize len, pos;
  GError **error;
  Buf key, str; /* the pending member name; a string value or a number */
  gint64 int_value;
  double double_value;
} Parser;

/* "<what> at byte N", then " (<hint>)" if any. */
static gboolean G_GNUC_PRINTF (4, 5)
fail (Parser *p, gsize at, const char *hint, const char *format, ...)
{
  va_list args;
  char *what;

  if (p->error == NULL)
    return FALSE; /* most callers only want to know */
  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (p->error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
               "%s at byte %" G_GSIZE_FORMAT "%s%s%s", what, at, hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
  g_free (what);
  return FALSE;
}

/* What was found where something else was expected. */
static gboolean
fail_unexpected (Parser *p, const char *expected)
{
  guchar c;
  g_autofree char *hint = p->error ? g_strconcat ("expected ", expected, NULL) : NULL;

  if (p->pos >= p->len)
    return fail (p, p->pos, hint, "unexpected end of the JSON text");
  c = p->text[p->pos];
  if (c == 0)
    return fail (p, p->pos, hint, "NUL byte");
  if (c > 0x20 && c < 0x7f)
    return fail (p, p->pos, hint, "unexpected character '%c'", c);
  return fail (p, p->pos, hint, "unexpected byte 0x%02x", c);
}

static gboolean
fail_unterminated (Parser *p)
{
  g_autofree char *hint = p->error ? g_strdup_printf ("the string starts at byte %" G_GSIZE_FORMAT, p->pos) : NULL;
  return fail (p, p->len, hint, "unexpected end of the JSON text in a string");
}

static inline void
skip_ws (Parser *p)
{
  while (p->pos < p->len)
    {
      guchar c = p->text[p->pos];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
        break;
      p->pos++;
    }
}

/* Length of the valid UTF-8 sequence at @s (lead byte >= 0x80), 0 if none:
 * no overlong forms, no encoded surrogates, nothing above U+10FFFF. */
static inline gsize
utf8_sequence (const guchar *s, gsize avail)
{
  guchar c = s[0];
  guchar lo = 0x80, hi = 0xbf;
  gsize n;

  if (c < 0xc2)
    return 0;
  else if (c < 0xe0)
    n = 2;
  else if (c < 0xf0)
    {
      n = 3;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    }
  else if (c < 0xf5)
    {
      n = 4;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    }
  else
    return 0;
  if (avail < n || s[1] < lo || s[1] > hi)
    return 0;
  for (gsize i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

static inline int
hex4 (const guchar *s)
{
  int v = 0;

  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value ((char) s[i]);
      if (d < 0)
        return -1;
      v = v << 4 | d;
    }
  return v;
}

/* The string whose opening quote is at p->pos, unescaped into @out
 * (NUL-terminated); p->pos ends after the closing quote. */
static gboolean
parse_string (Parser *p, Buf *out)
{
  const guchar *t = p->text;
  gsize i = p->pos + 1, run = i;

  out->len = 0;
  for (;;)
    {
      guchar c;

      /* The common bytes in one stretch, copied at once. */
      while (i < p->len && (c = t[i]) >= 0x20 && c != '"' && c != '\\' && c < 0x80)
        i++;
      if (i >= p->len)
        return fail_unterminated (p);
      c = t[i];
      if (c >= 0x80)
        {
          gsize n = utf8_sequence (t + i, p->len - i);
          if (n == 0)
            return fail (p, i, NULL, "invalid UTF-8 in a string");
          i += n;
          continue;
        }
      buf_append (out, (const char *) t + run, i - run);
      if (c == '"')
        {
          out->data[out->len] = '\0';
          p->pos = i + 1;
          return TRUE;
        }
      if (c == 0)
        return fail (p, i, NULL, "NUL byte in a string");
      if (c < 0x20)
        return fail (p, i, "must be escaped", "control character 0x%02x in a string", c);
      /* c == '\\' */
      if (i + 1 >= p->len)
        return fail_unterminated (p);
      switch (t[i + 1])
        {
        case '"': buf_append (out, "\"", 1); break;
        case '\\': buf_append (out, "\\", 1); break;
        case '/': buf_append (out, "/", 1); break;
        case 'b': buf_append (out, "\b", 1); break;
        case 'f': buf_append (out, "\f", 1); break;
        case 'n': buf_append (out, "\n", 1); break;
        case 'r': buf_append (out, "\r", 1); break;
        case 't': buf_append (out, "\t", 1); break;
        case 'u':
          {
            char utf8[4];
            gunichar u;
            int v = i + 6 <= p->len ? hex4 (t + i + 2) : -1;

            if (v < 0)
              return fail (p, i, "4 hex digits expected", "invalid \\u escape in a string");
            /* Never cut a string short downstream ("a\u0000/../x"). */
            if (v == 0)
              {
                g_set_error (p->error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                             "\\u0000 (NUL) in a string at byte %" G_GSIZE_FORMAT " is not accepted", i);
                return FALSE;
              }
            u = (gunichar) v;
            if (v >= 0xdc00 && v <= 0xdfff)
              return fail (p, i, NULL, "lone low surrogate \\u%04x in a string", (unsigned) v);
            if (v >= 0xd800 && v <= 0xdbff)
              {
                int lo = i + 12 <= p->len && t[i + 6] == '\\' && t[i + 7] == 'u' ? hex4 (t + i + 8) : -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                  return fail (p, i, "a \\udc00-\\udfff escape must follow", "lone high surrogate \\u%04x in a string",
                               (unsigned) v);
                u = 0x10000 + (((gunichar) v - 0xd800) << 10) + ((gunichar) lo - 0xdc00);
                i += 6;
              }
            buf_append (out, utf8, (gsize) g_unichar_to_utf8 (u, utf8));
            i += 4;
            break;
          }
        default:
          {
            guchar e = t[i + 1];
            if (e > 0x20 && e < 0x7f)
              return fail (p, i, NULL, "invalid escape '\\%c' in a string", e);
            return fail (p, i, NULL, "invalid escape (backslash and byte 0x%02x) in a string", e);
          }
        }
      i += 2;
      run = i;
    }
}

static inline gboolean
is_digit (guchar c)
{
  return c >= '0' && c <= '9';
}

/* The number at p->pos: an integer literal that fits gint64 stays one; any
 * other number (fraction, exponent, too big an integer) is a double. */
static Kind
parse_number (Parser *p)
{
  const guchar *t = p->text;
  gsize start = p->pos, i = start;
  gboolean negative = FALSE, integer = TRUE, overflow = FALSE;
  guint64 magnitude = 0;
  double d;

  if (t[i] == '-')
    {
      negative = TRUE;
      i++;
    }
  if (i >= p->len || !is_digit (t[i]))
    {
      fail (p, start, "a digit must follow '-'", "invalid number");
      return KIND_NONE;
    }
  if (t[i] == '0')
    {
      i++;
      if (i < p->len && is_digit (t[i]))
        {
          fail (p, start, "no leading zeros", "invalid number");
          return KIND_NONE;
        }
    }
  else
    for (; i < p->len && is_digit (t[i]); i++)
      {
        guint digit = t[i] - '0';
        if (magnitude > (G_MAXUINT64 - digit) / 10)
          overflow = TRUE;
        else
          magnitude = magnitude * 10 + digit;
      }
  if (i < p->len && t[i] == '.')
    {
      integer = FALSE;
      i++;
      if (i >= p->len || !is_digit (t[i]))
        {
          fail (p, start, "a digit must follow '.'", "invalid number");
          return KIND_NONE;
        }
      while (i < p->len && is_digit (t[i]))
        i++;
    }
  if (i < p->len && (t[i] == 'e' || t[i] == 'E'))
    {
      integer = FALSE;
      i++;
      if (i < p->len && (t[i] == '+' || t[i] == '-'))
        i++;
      if (i >= p->len || !is_digit (t[i]))
        {
          fail (p, start, "a digit must follow the exponent", "invalid number");
          return KIND_NONE;
        }
      while (i < p->len && is_digit (t[i]))
        i++;
    }
  /* "0x10", "1.2.3", "1e5e5", "12abc": one bad token, not a number then junk. */
  if (i < p->len && (g_ascii_isalnum (t[i]) || t[i] == '.' || t[i] == '+' || t[i] == '-'))
    {
      fail (p, start, NULL, "invalid number");
      return KIND_NONE;
    }
  p->pos = i;

  if (integer && !overflow)
    {
      if (!negative && magnitude <= (guint64) G_MAXINT64)
        {
          p->int_value = (gint64) magnitude;
          return KIND_INT;
        }
      if (negative && magnitude <= (guint64) G_MAXINT64 + 1)
        {
          p->int_value = magnitude == (guint64) G_MAXINT64 + 1 ? G_MININT64 : -(gint64) magnitude;
          return KIND_INT;
        }
    }
  p->str.len = 0;
  buf_append (&p->str, (const char *) t + start, i - start);
  p->str.data[p->str.len] = '\0';
  d = g_ascii_strtod (p->str.data, NULL);
  if (!isfinite (d))
    {
      fail (p, start, NULL, "number out of range");
      return KIND_NONE;
    }
  p->double_value = d;
  return KIND_DOUBLE;
}

/* true, false or null at p->pos (its first letter is already known). */
static Kind
parse_literal (Parser *p)
{
  static const char *const words[] = { "true", "false", "null" };
  const char *word = p->text[p->pos] == 't' ? words[0] : p->text[p->pos] == 'f' ? words[1] : words[2];
  gsize n = strlen (word);

  if (p->len - p->pos < n || memcmp (p->text + p->pos, word, n) != 0
      || (p->len - p->pos > n && g_ascii_isalnum (p->text[p->pos + n])))
    {
      g_autofree char *hint = p->error ? g_strconcat ("expected ", word, NULL) : NULL;
      fail (p, p->pos, hint, "invalid literal");
      return KIND_NONE;
    }
  p->pos += n;
  return word == words[0] ? KIND_TRUE : word == words[1] ? KIND_FALSE : KIND_NULL;
}

/* What ens_json_parse_keep_text() asks for. */
typedef struct
{
  const char *member;
  EnsJsonKeepFunc want;
  gpointer data;
  const char *text; /* out: the member's text, or NULL */
  gsize len;
} Keep;

/* What ens_json_scan_members() asks for. */
typedef struct
{
  EnsJsonMemberFunc func;
  gpointer data;
  Buf name;       /* the top-level member being read */
  gsize from;     /* where its value starts */
  gboolean is_object; /* the text is an object */
} Scan;

/* Parses @text; with @build FALSE it only checks it (no tree, and a
 * non-NULL sentinel for success).  With @keep, the value of the top-level
 * member keep->member, when a container that keep->want wants kept, is only
 * checked and its span noted (keep->text), not built. */
static JsonNode *
parse (const char *text, gsize len, gboolean build, Keep *keep, Scan *scan, GError **error)
{
  guint kept_depth = 0; /* while checking a kept value: the depth it opened at */
  gsize kept_from = 0;
  Frame stack[ENS_JSON_MAX_DEPTH];
  guint depth = 0;
  JsonNode *root = NULL;
  JsonObject *object = NULL;
  JsonArray *array = NULL;
  Kind kind;
  Parser parser = { .text = (const guchar *) text, .len = text ? len : 0, .error = error };
  Parser *p = &parser;
  gboolean ok = FALSE;

  buf_init (&p->key);
  buf_init (&p->str);
  skip_ws (p);
  if (p->pos >= p->len)
    {
      g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA, "empty JSON text");
      goto out;
    }

value:
  skip_ws (p);
  if (p->pos >= p->len)
    {
      fail_unexpected (p, "a value");
      goto out;
    }
  if (scan && depth == 1 && stack[0].is_object)
    {
      scan->name.len = 0;
      buf_append (&scan->name, p->key.data, p->key.len);
      scan->name.data[scan->name.len] = '\0';
      scan->from = p->pos;
    }
  else if (scan && depth == 0)
    scan->is_object = p->text[p->pos] == '{';
  switch (p->text[p->pos])
    {
    case '{':
    case '[':
      if (depth == ENS_JSON_MAX_DEPTH)
        {
          g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                       "JSON nested deeper than %d levels", ENS_JSON_MAX_DEPTH);
          goto out;
        }
      kind = p->text[p->pos] == '{' ? KIND_OBJECT : KIND_ARRAY;
      if (keep && build && depth == 1 && stack[0].is_object && strcmp (p->key.data, keep->member) == 0
          && keep->want (stack[0].object, keep->data))
        {
          /* checked from here to its end, not built (a later member of
           * the same name replaces it, as in the tree) */
          build = FALSE;
          kept_depth = depth + 1;
          kept_from = p->pos;
          json_object_remove_member (stack[0].object, keep->member);
        }
      object = build && kind == KIND_OBJECT ? json_object_new () : NULL;
      array = build && kind == KIND_ARRAY ? json_array_new () : NULL;
      break;
    case '"':
      kind = parse_string (p, &p->str) ? KIND_STRING : KIND_NONE;
      break;
    case 't':
    case 'f':
    case 'n':
      kind = parse_literal (p);
      break;
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      kind = parse_number (p);
      break;
    default:
      fail_unexpected (p, "a value");
      goto out;
    }
  if (kind == KIND_NONE)
    goto out;

  /* Attach at once: from here on the root owns the value.  Members by the
   * typed setters: they skip json_object_set_member's extra lookup. */
  if (!build)
    ;
  else if (depth == 0)
    {
      root = json_node_alloc ();
      switch (kind)
        {
        case KIND_OBJECT:
          json_node_take_object (json_node_init (root, JSON_NODE_OBJECT), object);
          break;
        case KIND_ARRAY:
          json_node_take_array (json_node_init (root, JSON_NODE_ARRAY), array);
          break;
        case KIND_STRING: json_node_init_string (root, p->str.data); break;
        case KIND_INT: json_node_init_int (root, p->int_value); break;
        case KIND_DOUBLE: json_node_init_double (root, p->double_value); break;
        case KIND_TRUE: json_node_init_boolean (root, TRUE); break;
        case KIND_FALSE: json_node_init_boolean (root, FALSE); break;
        default: json_node_init_null (root); break;
        }
    }
  else if (stack[depth - 1].is_object)
    {
      JsonObject *parent = stack[depth - 1].object;
      const char *name = p->key.data;

      if (keep && depth == 1 && strcmp (name, keep->member) == 0)
        keep->text = NULL; /* a later member of that name wins */

      switch (kind)
        {
        case KIND_OBJECT: json_object_set_object_member (parent, name, object); break;
        case KIND_ARRAY: json_object_set_array_member (parent, name, array); break;
        case KIND_STRING: json_object_set_string_member (parent, name, p->str.data); break;
        case KIND_INT: json_object_set_int_member (parent, name, p->int_value); break;
        case KIND_DOUBLE: json_object_set_double_member (parent, name, p->double_value); break;
        case KIND_TRUE: json_object_set_boolean_member (parent, name, TRUE); break;
        case KIND_FALSE: json_object_set_boolean_member (parent, name, FALSE); break;
        default: json_object_set_null_member (parent, name); break;
        }
    }
  else
    {
      JsonArray *parent = stack[depth - 1].array;

      switch (kind)
        {
        case KIND_OBJECT: json_array_add_object_element (parent, object); break;
        case KIND_ARRAY: json_array_add_array_element (parent, array); break;
        case KIND_STRING: json_array_add_string_element (parent, p->str.data); break;
        case KIND_INT: json_array_add_int_element (parent, p->int_value); break;
        case KIND_DOUBLE: json_array_add_double_element (parent, p->double_value); break;
        case KIND_TRUE: json_array_add_boolean_element (parent, TRUE); break;
        case KIND_FALSE: json_array_add_boolean_element (parent, FALSE); break;
        default: json_array_add_null_element (parent); break;
        }
    }

  if (kind == KIND_OBJECT || kind == KIND_ARRAY)
    {
      stack[depth].object = object;
      stack[depth].array = array;
      stack[depth].is_object = kind == KIND_OBJECT;
      depth++;
      p->pos++;
      skip_ws (p);
      if (p->pos < p->len && p->text[p->pos] == (kind == KIND_OBJECT ? '}' : ']'))
        {
          p->pos++;
          depth--;
          goto closed;
        }
      if (kind == KIND_OBJECT)
        goto member;
      goto value;
    }
  if (scan && depth == 1 && stack[0].is_object)
    scan->func (scan->name.data, text + scan->from, p->pos - scan->from, kind == KIND_STRING ? p->str.data : NULL,
                scan->data);

next:
  /* After a complete value: a separator, a closing bracket or the end. */
  if (depth == 0)
    goto done;
  skip_ws (p);
  if (p->pos < p->len && p->text[p->pos] == ',')
    {
      gsize comma = p->pos++;

      skip_ws (p);
      if (p->pos < p->len && p->text[p->pos] == (stack[depth - 1].is_object ? '}' : ']'))
        {
          fail (p, comma, NULL, "trailing comma");
          goto out;
        }
      if (stack[depth - 1].is_object)
        goto member;
      goto value;
    }
  if (p->pos < p->len && p->text[p->pos] == (stack[depth - 1].is_object ? '}' : ']'))
    {
      p->pos++;
      depth--;
      goto closed;
    }
  fail_unexpected (p, stack[depth - 1].is_object ? "',' or '}' after an object member" : "',' or ']' after an array element");
  goto out;

closed:
  /* A container ended: the end of a kept value?  of a scanned member? */
  if (kept_depth != 0 && depth + 1 == kept_depth)
    {
      keep->text = text + kept_from;
      keep->len = p->pos - kept_from;
      kept_depth = 0;
      build = TRUE;
    }
  if (scan && depth == 1 && stack[0].is_object)
    scan->func (scan->name.data, text + scan->from, p->pos - scan->from, NULL, scan->data);
  goto next;

member:
  /* At a member name, whitespace skipped. */
  if (p->pos >= p->len || p->text[p->pos] != '"')
    {
      fail_unexpected (p, "a member name (a string)");
      goto out;
    }
  if (!parse_string (p, &p->key))
    goto out;
  skip_ws (p);
  if (p->pos >= p->len || p->text[p->pos] != ':')
    {
      fail_unexpected (p, "':' after a member name");
      goto out;
    }
  p->pos++;
  goto value;

done:
  skip_ws (p);
  if (p->pos < p->len)
    {
      g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                   "unexpected data after the JSON value at byte %" G_GSIZE_FORMAT " (one JSON value per line)",
                   p->pos);
      goto out;
    }
  /* Immutable, as json_parser_new_immutable() made it: shareable by
   * reference, and its hash is cached. */
  if (build)
    json_node_seal (root);
  else
    root = (JsonNode *) text; /* only tells success */
  ok = TRUE;

out:
  buf_clear (&p->key);
  buf_clear (&p->str);
  if (!ok && root)
    {
      json_node_unref (root);
      root = NULL;
    }
  return root;
}

JsonNode *
ens_json_parse (const char *text, gsize len, GError **error)
{
  return parse (text, len, TRUE, NULL, NULL, error);
}

gboolean
ens_json_check (const char *text, gsize len, GError **error)
{
  return text != NULL && parse (text, len, FALSE, NULL, NULL, error) != NULL;
}

gboolean
ens_json_scan_members (const char *text, gsize len, EnsJsonMemberFunc func, gpointer data, GError **error)
{
  Scan scan = { .func = func, .data = data };
  gboolean ok;

  buf_init (&scan.name);
  ok = text != NULL && parse (text, len, FALSE, NULL, &scan, error) != NULL;
  buf_clear (&scan.name);
  if (ok && !scan.is_object)
    {
      g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA, "not a JSON object");
      return FALSE;
    }
  return ok;
}

/* The end of the value that starts at @i of a text known to be JSON: the
 * brackets and the quotes are followed, nothing is checked.  @len if it
 * runs out (the text was not what the caller said). */
static gsize
skip_value (const guchar *t, gsize len, gsize i)
{
  guint depth = 0;

  while (i < len)
    {
      guchar c = t[i];

      if (c == '"')
        {
          for (i++; i < len && t[i] != '"'; i++)
            if (t[i] == '\\')
              i++;
          i++;
        }
      else if (c == '{' || c == '[')
        depth++, i++;
      else if (c == '}' || c == ']')
        {
          if (depth == 0)
            return i; /* the end of a scalar: the container around it closes */
          i++;
          if (--depth == 0)
            return i;
        }
      else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t'))
        return i;
      else
        i++;
    }
  return MIN (i, len);
}

gboolean
ens_json_scan_checked_members (const char *text, gsize len, EnsJsonMemberFunc func, gpointer data)
{
  Parser parser = { .text = (const guchar *) text, .len = text ? len : 0 };
  Parser *p = &parser;
  gboolean ok = FALSE;

  buf_init (&p->key);
  buf_init (&p->str);
  skip_ws (p);
  if (p->pos >= p->len || p->text[p->pos] != '{')
    goto out;
  p->pos++;
  skip_ws (p);
  if (p->pos < p->len && p->text[p->pos] == '}')
    {
      ok = TRUE;
      goto out;
    }
  while (p->pos < p->len && p->text[p->pos] == '"')
    {
      gsize from;

      if (!parse_string (p, &p->key))
        goto out;
      skip_ws (p);
      if (p->pos >= p->len || p->text[p->pos] != ':')
        goto out;
      p->pos++;
      skip_ws (p);
      if (p->pos >= p->len)
        goto out;
      from = p->pos;
      if (p->text[p->pos] == '"')
        {
          if (!parse_string (p, &p->str))
            goto out;
          func (p->key.data, text + from, p->pos - from, p->str.data, data);
        }
      else
        {
          p->pos = skip_value (p->text, p->len, p->pos);
          func (p->key.data, text + from, p->pos - from, NULL, data);
        }
      skip_ws (p);
      if (p->pos < p->len && p->text[p->pos] == ',')
        {
          p->pos++;
          skip_ws (p);
          continue;
        }
      ok = p->pos < p->len && p->text[p->pos] == '}';
      break;
    }

out:
  buf_clear (&p->key);
  buf_clear (&p->str);
  return ok;
}

JsonNode *
ens_json_parse_keep_text (const char *text, gsize len, const char *member, EnsJsonKeepFunc want, gpointer data,
                          const char **kept, gsize *kept_len, GError **error)
{
  Keep keep = { .member = member, .want = want, .data = data };
  JsonNode *root = parse (text, len, TRUE, &keep, NULL, error);

  *kept = root ? keep.text : NULL;
  *kept_len = root && keep.text ? keep.len : 0;
  return root;
}
