/* ens-semantic-embed.c — agent-semantic's local embedding: hashed word
 * unigrams and bigrams and character 3-grams (FNV-1a into signed dimensions),
 * TF-IDF weighted with the stored concepts' document frequencies,
 * L2-normalised. */
#include "ens-semantic.h"

#include <math.h>
#include <string.h>

void
ens_semantic_embedded_clear (Embedded *e)
{
  g_free (e->source);
  g_free (e->model);
  g_free (e->vectors);
}

/* ------------------------------------------------------ local embedding */

static inline guint32
fnv1a (guint32 h, const char *bytes, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      h ^= (guchar) bytes[i];
      h *= 16777619u;
    }
  return h;
}

#define FNV_SEED 2166136261u

typedef struct {
  guint32 hash;
  float weight; /* of its kind */
} Feature;

static int
feature_cmp (gconstpointer a, gconstpointer b)
{
  guint32 x = ((const Feature *) a)->hash, y = ((const Feature *) b)->hash;
  return x < y ? -1 : x > y;
}

static void
add_feature (GArray *out, char kind, const char *a, gsize alen, const char *b, gsize blen, float weight)
{
  Feature f;
  guint32 h = fnv1a (FNV_SEED, &kind, 1);

  h = fnv1a (h, a, alen);
  if (b)
    {
      h = fnv1a (h, "\x1f", 1);
      h = fnv1a (h, b, blen);
    }
  f.hash = h;
  f.weight = weight;
  g_array_append_val (out, f);
}

/* (transfer full) the words of @text: lower-cased runs of letters and digits;
 * a text without any falls back to its runs of non-space characters. */
static GPtrArray *
split_words (const char *text)
{
  g_autofree char *lower = g_utf8_strdown (text, -1);
  GPtrArray *words = g_ptr_array_new_with_free_func (g_free);

  for (int pass = 0; pass < 2 && words->len == 0; pass++)
    {
      const char *p = lower, *start = NULL;

      while (TRUE)
        {
          gunichar ch = *p ? g_utf8_get_char (p) : 0;
          gboolean in_word = ch != 0 && (pass == 0 ? (g_unichar_isalnum (ch) || g_unichar_ismark (ch))
                                                   : !g_unichar_isspace (ch));
          if (in_word && !start)
            start = p;
          else if (!in_word && start)
            {
              g_ptr_array_add (words, g_strndup (start, p - start));
              start = NULL;
            }
          if (!ch)
            break;
          p = g_utf8_next_char (p);
        }
    }
  return words;
}

/* (transfer full) every feature occurrence of @text, sorted by hash so equal
 * features are adjacent (term frequency = run length). */
static GArray *
text_features (const char *text)
{
  g_autoptr (GPtrArray) words = split_words (text);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (Feature));

  for (guint i = 0; i < words->len; i++)
    {
      const char *w = g_ptr_array_index (words, i);
      g_autofree char *padded = g_strconcat ("^", w, "$", NULL);
      const char *p0, *p1, *p2, *p3;

      add_feature (out, 'w', w, strlen (w), NULL, 0, W_UNIGRAM);
      if (i + 1 < words->len)
        {
          const char *next = g_ptr_array_index (words, i + 1);
          add_feature (out, 'b', w, strlen (w), next, strlen (next), W_BIGRAM);
        }
      /* character 3-grams of ^word$, by characters rather than bytes */
      p0 = padded;
      p1 = g_utf8_next_char (p0);
      p2 = g_utf8_next_char (p1);
      while (*p2)
        {
          p3 = g_utf8_next_char (p2);
          add_feature (out, 'c', p0, p3 - p0, NULL, 0, W_TRIGRAM);
          p0 = p1;
          p1 = p2;
          p2 = p3;
        }
    }
  g_array_sort (out, feature_cmp);
  return out;
}

void
ens_semantic_df_update (Semantic *sem, const char *text, int delta)
{
  g_autoptr (GArray) features = text_features (text);

  for (guint i = 0; i < features->len; i++)
    {
      guint32 h = g_array_index (features, Feature, i).hash;
      gpointer key = GUINT_TO_POINTER (h);
      guint n;

      if (i > 0 && g_array_index (features, Feature, i - 1).hash == h)
        continue; /* once per document */
      n = GPOINTER_TO_UINT (g_hash_table_lookup (sem->df, key));
      if (delta > 0)
        g_hash_table_insert (sem->df, key, GUINT_TO_POINTER (n + 1));
      else if (n <= 1)
        g_hash_table_remove (sem->df, key);
      else
        g_hash_table_insert (sem->df, key, GUINT_TO_POINTER (n - 1));
    }
}

void
ens_semantic_normalise (float *v, guint dims)
{
  double sum = 0;

  for (guint i = 0; i < dims; i++)
    sum += (double) v[i] * v[i];
  if (sum > 0)
    {
      float inv = (float) (1.0 / sqrt (sum));
      for (guint i = 0; i < dims; i++)
        v[i] *= inv;
    }
}

/* Writes the local embedding of @text into @out (LOCAL_DIMS floats), weighted
 * with the current document frequencies: idf = ln((N+1)/(df+1)) + 1. */
void
ens_semantic_embed_local (Semantic *sem, const char *text, float *out)
{
  g_autoptr (GArray) features = text_features (text);
  double n_docs = g_hash_table_size (sem->concepts);

  memset (out, 0, LOCAL_DIMS * sizeof (float));
  for (guint i = 0; i < features->len;)
    {
      Feature *f = &g_array_index (features, Feature, i);
      guint tf = 1;
      double df, w;

      while (i + tf < features->len && g_array_index (features, Feature, i + tf).hash == f->hash)
        tf++;
      df = GPOINTER_TO_UINT (g_hash_table_lookup (sem->df, GUINT_TO_POINTER (f->hash)));
      w = f->weight * (1.0 + log (tf)) * (log ((n_docs + 1) / (df + 1)) + 1.0);
      /* low bits pick the dimension, the top bit the sign, so collisions
       * cancel out on average instead of piling up */
      out[f->hash % LOCAL_DIMS] += (f->hash & 0x80000000u) ? (float) -w : (float) w;
      i += tf;
    }
  ens_semantic_normalise (out, LOCAL_DIMS);
}

