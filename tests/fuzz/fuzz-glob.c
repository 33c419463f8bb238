/* fuzz-glob.c — the bus's Redis-style glob matcher (ens_glob_match,
 * ens_glob_is_pattern), differential against a reference written for this
 * test: the pattern cut into tokens, then matched by dynamic programming.
 *
 * Input: PATTERN NUL STRING (without a NUL, the input is both).  Checks:
 * the matcher agrees with the reference; a text that is not a pattern
 * matches only itself; what P matches, "*P" matches. */
#include "ens-fuzz.h"

#include <string.h>

typedef enum { TOK_STAR, TOK_ANY, TOK_SET } TokKind;

typedef struct {
  TokKind kind;
  gboolean set[256]; /* TOK_SET: the bytes it matches (a literal is a set of one) */
} Tok;

/* The documented grammar: '*' any run, '?' one byte, '\x' the byte x (a
 * trailing '\' is itself), '[...]' a class: '^' first negates, '\x' is x,
 * 'a-z' a range (ends swapped when reversed, bytes compared as C chars,
 * as Redis does), ']' closes, an unclosed class runs to the end. */
static GArray *
tokenize (const char *p)
{
  GArray *toks = g_array_new (FALSE, TRUE, sizeof (Tok));

  while (*p)
    {
      Tok t = { 0 };

      if (*p == '*')
        {
          t.kind = TOK_STAR;
          p++;
        }
      else if (*p == '?')
        {
          t.kind = TOK_ANY;
          p++;
        }
      else if (*p == '[')
        {
          gboolean negate = FALSE;

          t.kind = TOK_SET;
          p++;
          if (*p == '^')
            {
              negate = TRUE;
              p++;
            }
          while (*p && *p != ']')
            {
              if (p[0] == '\\' && p[1])
                {
                  t.set[(guchar) p[1]] = TRUE;
                  p += 2;
                }
              else if (p[1] == '-' && p[2] && p[2] != ']')
                {
                  signed char lo = (signed char) p[0], hi = (signed char) p[2];
                  if (lo > hi)
                    {
                      signed char x = lo;
                      lo = hi;
                      hi = x;
                    }
                  for (int c = lo; c <= hi; c++)
                    t.set[(guchar) (signed char) c] = TRUE;
                  p += 3;
                }
              else
                t.set[(guchar) *p++] = TRUE;
            }
          if (*p == ']')
            p++;
          if (negate)
            for (int c = 0; c < 256; c++)
              t.set[c] = !t.set[c];
        }
      else
        {
          t.kind = TOK_SET;
          if (p[0] == '\\' && p[1])
            p++;
          t.set[(guchar) *p++] = TRUE;
        }
      g_array_append_val (toks, t);
    }
  return toks;
}

static gboolean
reference_match (const char *pattern, const char *s)
{
  g_autoptr (GArray) toks = tokenize (pattern);
  gsize n = strlen (s), nt = toks->len;
  /* row[j]: tokens [0, i) match s[0, j) */
  g_autofree gboolean *row = g_new0 (gboolean, n + 1);
  g_autofree gboolean *next = g_new0 (gboolean, n + 1);

  row[0] = TRUE;
  for (gsize i = 0; i < nt; i++)
    {
      const Tok *t = &g_array_index (toks, Tok, i);

      memset (next, 0, (n + 1) * sizeof *next);
      for (gsize j = 0; j <= n; j++)
        {
          if (t->kind == TOK_STAR)
            next[j] = row[j] || (j > 0 && next[j - 1]);
          else if (j > 0 && row[j - 1])
            next[j] = t->kind == TOK_ANY || t->set[(guchar) s[j - 1]];
        }
      memcpy (row, next, (n + 1) * sizeof *row);
    }
  return row[n];
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *nul = memchr (data, '\0', size);
  g_autofree char *pattern = g_strndup ((const char *) data, nul ? (gsize) (nul - (const char *) data) : size);
  g_autofree char *string = nul ? g_strndup (nul + 1, size - (gsize) (nul + 1 - (const char *) data))
                                : g_strdup (pattern);
  gboolean match = ens_glob_match (pattern, string);

  if (strlen (pattern) * (strlen (string) + 1) <= 4 * 1024 * 1024)
    ENS_FUZZ_CHECK (match == reference_match (pattern, string), "ens_glob_match (\"%s\", \"%s\") = %d",
                    pattern, string, match);
  if (!ens_glob_is_pattern (pattern))
    ENS_FUZZ_CHECK (match == (strcmp (pattern, string) == 0), "the literal \"%s\" and \"%s\": %d", pattern, string,
                    match);
  /* What P matches, "*P" matches too. */
  {
    g_autofree char *starred = g_strconcat ("*", pattern, NULL);
    if (match)
      ENS_FUZZ_CHECK (ens_glob_match (starred, string), "\"*%s\" refuses \"%s\"", pattern, string);
  }
  return 0;
}
