/* agent-semantic — concepts and similarity, on the bus as "semantic".
 *
 *   store_concept       {id?, text, metadata?}      -> {id, replaced, embedding}
 *   query_concepts      {text, top_k?, filter?}     -> {results: [{id, score, text, metadata}], embedding, searched}
 *   semantic_similarity {a, b}                      -> {similarity, embedding}
 *   delete_concept      {id}                        -> {deleted, id}
 *
 * embedding = {source: "local" | "provider:<name>", model, dims}.
 *
 * Vectors come from the daemon's embed verb, routed to that provider backend
 * (as every embedding request is: the backend's queue, budget, fallback and
 * counts) when the setting semantic-embeddings-provider names one, with the
 * model semantic-embeddings-model (empty: the backend's first embedding
 * model); the answer comes as a COMPLETION_RESULT targeted at the op;
 * otherwise
 * from a deterministic local embedding: hashed word unigrams and bigrams and
 * character 3-grams (FNV-1a into 512 signed dimensions), TF-IDF weighted with
 * document frequencies over the stored concepts, L2-normalised.
 *
 * Storage: every concept is one record in the state store (scope "concepts",
 * key = id; the vector as base64 of little-endian float32).  The host offers
 * no key listing, so each concept also owns a slot number (scope "slots",
 * key = the number, value = the id) drawn from a sequence: init walks the
 * slots up to the sequence's high-water mark and loads everything.
 *
 * In memory, concepts of one embedding space (source, model, dims) sit in one
 * contiguous row-major float matrix of unit vectors; a query is a brute-force
 * dot product over the rows of its own space with a bounded min-heap for the
 * top k (no full sort).  Deleting swaps the last row into the hole.
 */
#include <ensemble/ensemble.h>

#include "ens-host-config.h"
#include "ens-json-util.h"

#include <math.h>
#include <string.h>

#define LOCAL_DIMS 512
#define LOCAL_MODEL "ens-hash-ngram-tfidf-v1"
#define TOP_K_DEFAULT 5
#define TOP_K_MAX 100
#define ID_MAX_BYTES 256
#define MAX_DIMS 65536
#define ERR_EMBEDDINGS "EMBEDDINGS_FAILED"

/* Relative weight of the three kinds of local features: whole words carry
 * most meaning, bigrams some order, character 3-grams catch inflections
 * (sat/sitting share little, mat/mats a lot) but are many per word. */
#define W_UNIGRAM 1.0f
#define W_BIGRAM 0.7f
#define W_TRIGRAM 0.35f

/* ------------------------------------------------------------------ types */

typedef struct _Space Space;

typedef struct {
  char *id;
  char *text;
  JsonNode *metadata; /* an object node, (owned) */
  Space *space;       /* (unowned) */
  guint row;          /* in space */
  gint64 slot;
} Concept;

struct _Space {
  char *key; /* source '\n' model '\n' dims */
  char *source;
  char *model;
  guint dims;
  float *vectors; /* rows x dims, unit length, (owned) */
  gsize rows, capacity;
  GPtrArray *concepts; /* Concept* by row, (unowned) */
};

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  GHashTable *concepts; /* id -> Concept* (owned) */
  GHashTable *spaces;   /* key -> Space* (owned) */
  GHashTable *df;       /* feature hash -> number of concepts with it */
  GHashTable *ops;      /* target -> Op waiting for embeddings (owned) */
  char *prefix;         /* of the targets, unique to this instance */
  guint64 seq;
  guint sub_id;         /* COMPLETION_RESULT:<prefix>* */
} Semantic;

typedef enum {
  OP_STORE,
  OP_QUERY,
  OP_SIMILARITY,
} OpKind;

/* One request waiting for its embeddings. */
typedef struct {
  Semantic *sem; /* NULL once the plugin stopped */
  OpKind kind;
  EnsResponder *responder;
  char *texts[2];
  guint n_texts;
  char *id;           /* store */
  JsonNode *metadata; /* store, (owned) */
  guint top_k;        /* query */
  JsonObject *filter; /* query, (owned) may be NULL */
  char *provider;     /* backend name */
  char *model;        /* "" : the backend's default */
  char *target;       /* where its COMPLETION_RESULT goes */
  gboolean acked;     /* embed answered (the op may be freed once also done) */
  gboolean done;      /* answered */
} Op;

/* What an embedding produced: n vectors of dims floats, unit length. */
typedef struct {
  char *source;
  char *model;
  guint dims;
  float *vectors;
} Embedded;

static void
embedded_clear (Embedded *e)
{
  g_free (e->source);
  g_free (e->model);
  g_free (e->vectors);
}

static void
concept_free (Concept *c)
{
  g_free (c->id);
  g_free (c->text);
  if (c->metadata)
    json_node_unref (c->metadata);
  g_free (c);
}

static void
space_free (Space *s)
{
  g_free (s->key);
  g_free (s->source);
  g_free (s->model);
  g_free (s->vectors);
  g_ptr_array_unref (s->concepts);
  g_free (s);
}

static void
op_free (Op *op)
{
  for (guint i = 0; i < op->n_texts; i++)
    g_free (op->texts[i]);
  g_free (op->id);
  if (op->metadata)
    json_node_unref (op->metadata);
  if (op->filter)
    json_object_unref (op->filter);
  g_free (op->provider);
  g_free (op->model);
  g_free (op->target);
  g_free (op);
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

static void
df_update (Semantic *sem, const char *text, int delta)
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

static void
normalise (float *v, guint dims)
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
static void
embed_local (Semantic *sem, const char *text, float *out)
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
  normalise (out, LOCAL_DIMS);
}

/* --------------------------------------------------------------- spaces */

static char *
space_key (const char *source, const char *model, guint dims)
{
  return g_strdup_printf ("%s\n%s\n%u", source, model, dims);
}

static Space *
space_lookup (Semantic *sem, const char *source, const char *model, guint dims, gboolean create)
{
  g_autofree char *key = space_key (source, model, dims);
  Space *s = g_hash_table_lookup (sem->spaces, key);

  if (!s && create)
    {
      s = g_new0 (Space, 1);
      s->key = g_steal_pointer (&key);
      s->source = g_strdup (source);
      s->model = g_strdup (model);
      s->dims = dims;
      s->concepts = g_ptr_array_new ();
      g_hash_table_insert (sem->spaces, s->key, s);
    }
  return s;
}

static void
space_add (Space *s, Concept *c, const float *vector)
{
  if (s->rows == s->capacity)
    {
      s->capacity = MAX (s->capacity * 2, 64);
      s->vectors = g_realloc_n (s->vectors, s->capacity * s->dims, sizeof (float));
    }
  memcpy (s->vectors + s->rows * s->dims, vector, s->dims * sizeof (float));
  c->space = s;
  c->row = s->rows++;
  g_ptr_array_add (s->concepts, c);
}

/* Removes @c's row: the last row moves into its place. */
static void
space_remove (Semantic *sem, Concept *c)
{
  Space *s = c->space;
  gsize last = s->rows - 1;

  if (c->row != last)
    {
      Concept *moved = g_ptr_array_index (s->concepts, last);
      memcpy (s->vectors + (gsize) c->row * s->dims, s->vectors + last * s->dims, s->dims * sizeof (float));
      moved->row = c->row;
      s->concepts->pdata[c->row] = moved;
    }
  g_ptr_array_set_size (s->concepts, last);
  s->rows = last;
  c->space = NULL;
  if (s->rows == 0)
    g_hash_table_remove (sem->spaces, s->key); /* frees s */
}

/* Drops @c from memory (space, df, table; frees it). */
static void
concept_forget (Semantic *sem, Concept *c)
{
  space_remove (sem, c);
  df_update (sem, c->text, -1);
  g_hash_table_remove (sem->concepts, c->id);
}

/* Four-wide dot product: GCC/Clang vector extensions, unaligned loads. */
typedef float v4f __attribute__ ((vector_size (16)));

static inline float
dot (const float *a, const float *b, guint n)
{
  v4f s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
  guint i = 0;
  float sum;

  for (; i + 16 <= n; i += 16)
    {
      v4f a0, a1, a2, a3, b0, b1, b2, b3;
      memcpy (&a0, a + i, 16);
      memcpy (&a1, a + i + 4, 16);
      memcpy (&a2, a + i + 8, 16);
      memcpy (&a3, a + i + 12, 16);
      memcpy (&b0, b + i, 16);
      memcpy (&b1, b + i + 4, 16);
      memcpy (&b2, b + i + 8, 16);
      memcpy (&b3, b + i + 12, 16);
      s0 += a0 * b0;
      s1 += a1 * b1;
      s2 += a2 * b2;
      s3 += a3 * b3;
    }
  s0 += s1 + s2 + s3;
  sum = s0[0] + s0[1] + s0[2] + s0[3];
  for (; i < n; i++)
    sum += a[i] * b[i];
  return sum;
}

typedef struct {
  float score;
  guint row;
} Hit;

/* Min-heap on score: the root is the weakest of the best k so far. */
static void
heap_sift_down (Hit *h, guint n, guint i)
{
  while (TRUE)
    {
      guint l = 2 * i + 1, r = l + 1, m = i;
      Hit t;
      if (l < n && h[l].score < h[m].score)
        m = l;
      if (r < n && h[r].score < h[m].score)
        m = r;
      if (m == i)
        return;
      t = h[i];
      h[i] = h[m];
      h[m] = t;
      i = m;
    }
}

static void
heap_push (Hit *h, guint *n, guint k, float score, guint row)
{
  if (*n < k)
    {
      guint i = (*n)++;
      h[i].score = score;
      h[i].row = row;
      while (i > 0 && h[(i - 1) / 2].score > h[i].score)
        {
          Hit t = h[i];
          h[i] = h[(i - 1) / 2];
          h[(i - 1) / 2] = t;
          i = (i - 1) / 2;
        }
    }
  else if (score > h[0].score)
    {
      h[0].score = score;
      h[0].row = row;
      heap_sift_down (h, *n, 0);
    }
}

static int
hit_cmp_desc (gconstpointer a, gconstpointer b)
{
  const Hit *x = a, *y = b;
  if (x->score != y->score)
    return x->score < y->score ? 1 : -1;
  return x->row < y->row ? -1 : x->row > y->row;
}

static gboolean
filter_matches (JsonObject *filter, Concept *c)
{
  JsonObject *meta = JSON_NODE_HOLDS_OBJECT (c->metadata) ? json_node_get_object (c->metadata) : NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *want;

  json_object_iter_init (&iter, filter);
  while (json_object_iter_next (&iter, &name, &want))
    {
      JsonNode *have = meta ? json_object_get_member (meta, name) : NULL;
      if (!have || !json_node_equal (have, want))
        return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------- persistence */

static char *
vector_to_base64 (const float *v, guint dims)
{
  g_autofree guint32 *le = g_new (guint32, dims);

  for (guint i = 0; i < dims; i++)
    {
      guint32 bits;
      memcpy (&bits, &v[i], 4);
      le[i] = GUINT32_TO_LE (bits);
    }
  return g_base64_encode ((const guchar *) le, (gsize) dims * 4);
}

/* (transfer full) the vector, or NULL when @text (@len bytes of base64) is
 * not @dims floats. */
static float *
vector_from_base64 (const char *text, gsize len, guint dims)
{
  g_autofree guchar *raw = g_malloc (len / 4 * 3 + 3);
  gint state = 0;
  guint save = 0;
  gsize n = g_base64_decode_step (text, len, raw, &state, &save);
  float *v;

  if (dims == 0 || n != (gsize) dims * 4)
    return NULL;
  v = g_new (float, dims);
  for (guint i = 0; i < dims; i++)
    {
      guint32 bits;
      memcpy (&bits, raw + (gsize) i * 4, 4);
      bits = GUINT32_FROM_LE (bits);
      memcpy (&v[i], &bits, 4);
    }
  return v;
}

/* A stored record ends with ,"vector":"<base64>"} (persist () writes it
 * last).  Cuts that member off @json in place and points @b64 / @len at the
 * base64 text, so the JSON parser only reads the small rest: parsing
 * thousands of base64 characters per concept made a restart with 100k
 * concepts take seconds.  FALSE (and @json untouched) for any other shape. */
static gboolean
split_vector (char *json, const char **b64, gsize *len)
{
  static const char marker[] = ",\"vector\":\"";
  gsize n = strlen (json), m = strlen (marker);
  char *end, *start;

  if (n < m + 2 || json[n - 1] != '}' || json[n - 2] != '"')
    return FALSE;
  end = json + n - 2;
  /* backwards over the base64 text (it has no quotes) to the marker */
  for (start = end; start > json && (g_ascii_isalnum (start[-1]) || start[-1] == '+' || start[-1] == '/' ||
                                      start[-1] == '='); start--)
    ;
  if ((gsize) (start - json) < m || memcmp (start - m, marker, m) != 0)
    return FALSE;
  *b64 = start;
  *len = end - start;
  start -= m; /* (start[-m] would add a wrapped unsigned offset) */
  start[0] = '}';
  start[1] = '\0';
  return TRUE;
}

/* (transfer full) a node holding a new empty object. */
static JsonNode *
embedding_info (const char *source, const char *model, guint dims)
{
  JsonObject *o = json_object_new ();
  JsonNode *n = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (o, "source", source);
  json_object_set_string_member (o, "model", model);
  json_object_set_int_member (o, "dims", dims);
  json_node_take_object (n, o);
  return n;
}

static gboolean
persist (Semantic *sem, const char *id, const char *text, JsonNode *metadata, const Embedded *e, gint64 slot,
         gboolean new_slot, GError **error)
{
  JsonObject *o = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonNode) id_node = json_node_new (JSON_NODE_VALUE);
  g_autofree char *json = NULL;
  g_autofree char *id_json = NULL;
  g_autofree char *slot_key = g_strdup_printf ("%" G_GINT64_FORMAT, slot);

  json_object_set_string_member (o, "id", id);
  json_object_set_string_member (o, "text", text);
  json_object_set_member (o, "metadata", json_node_copy (metadata));
  json_object_set_string_member (o, "source", e->source);
  json_object_set_string_member (o, "model", e->model);
  json_object_set_int_member (o, "dims", e->dims);
  json_object_set_int_member (o, "slot", slot);
  /* last, so that load_all () finds it at the end of the text */
  {
    JsonNode *v = json_node_new (JSON_NODE_VALUE);
    char *b64 = vector_to_base64 (e->vectors, e->dims);
    json_node_set_string (v, b64);
    g_free (b64);
    json_object_set_member (o, "vector", v);
  }
  json_node_take_object (node, o);
  json = sem->host->json_to_string (node);
  if (!sem->host->state_set (sem->self, "concepts", id, json, error))
    return FALSE;
  if (new_slot)
    {
      json_node_set_string (id_node, id);
      id_json = sem->host->json_to_string (id_node);
      if (!sem->host->state_set (sem->self, "slots", slot_key, id_json, error))
        {
          sem->host->state_delete (sem->self, "concepts", id, NULL);
          return FALSE;
        }
    }
  return TRUE;
}

/* Loads every concept: slots 1 .. the sequence's high-water mark. */
static void
load_all (Semantic *sem)
{
  const EnsHost *host = sem->host;
  g_autoptr (GError) error = NULL;
  gint64 ceiling = host->state_next_sequence (sem->self, "slot", &error);
  guint loaded = 0, bad = 0;

  if (ceiling < 0)
    {
      ENS_LOG (host, sem->self, G_LOG_LEVEL_WARNING, "cannot read the concept slots: %s", error->message);
      return;
    }
  for (gint64 slot = 1; slot < ceiling; slot++)
    {
      g_autofree char *key = g_strdup_printf ("%" G_GINT64_FORMAT, slot);
      g_autofree char *id_json = host->state_get (sem->self, "slots", key, NULL);
      g_autoptr (JsonNode) id_node = NULL;
      g_autoptr (JsonNode) rec = NULL;
      g_autofree char *rec_json = NULL;
      g_autofree float *vector = NULL;
      JsonObject *o;
      const char *id, *text, *source, *model, *b64 = NULL;
      gsize b64_len = 0;
      JsonNode *meta;
      gint64 dims;
      Concept *c;

      if (!id_json)
        continue; /* deleted */
      id_node = host->json_parse (id_json, strlen (id_json), NULL);
      id = id_node && JSON_NODE_HOLDS_VALUE (id_node) ? json_node_get_string (id_node) : NULL;
      if (id)
        rec_json = host->state_get (sem->self, "concepts", id, NULL);
      if (rec_json && split_vector (rec_json, &b64, &b64_len))
        rec = host->json_parse (rec_json, strlen (rec_json), NULL);
      o = rec && JSON_NODE_HOLDS_OBJECT (rec) ? json_node_get_object (rec) : NULL;
      if (!o || ens_member_int (o, "slot", -1) != slot)
        {
          bad++;
          continue;
        }
      text = ens_member_string (o, "text");
      source = ens_member_string (o, "source");
      model = ens_member_string (o, "model");
      dims = ens_member_int (o, "dims", 0);
      meta = json_object_get_member (o, "metadata");
      if (!text || !source || !model || !b64 || dims <= 0 || dims > 65536 ||
          !(vector = vector_from_base64 (b64, b64_len, (guint) dims)) || g_hash_table_contains (sem->concepts, id))
        {
          bad++;
          continue;
        }
      c = g_new0 (Concept, 1);
      c->id = g_strdup (id);
      c->text = g_strdup (text);
      c->metadata = meta && JSON_NODE_HOLDS_OBJECT (meta) ? json_node_copy (meta) : ens_node_empty_object ();
      c->slot = slot;
      g_hash_table_insert (sem->concepts, c->id, c);
      space_add (space_lookup (sem, source, model, (guint) dims, TRUE), c, vector);
      df_update (sem, c->text, +1);
      loaded++;
    }
  ENS_LOG (host, sem->self, G_LOG_LEVEL_INFO, "loaded %u concepts in %u spaces%s", loaded,
           g_hash_table_size (sem->spaces), bad ? " (some records unreadable, skipped)" : "");
}

/* ---------------------------------------------------------------- answers */

static void
respond_invalid (Semantic *sem, EnsResponder *responder, const char *field, const char *expected)
{
  EnsInvalid invalid;
  g_autoptr (JsonNode) details = NULL;
  g_autofree char *message = NULL;

  ens_invalid_set (&invalid, field, "%s", expected);
  details = ens_invalid_details (&invalid);
  message = ens_invalid_message (&invalid);
  sem->host->respond_error (responder, ENS_ERR_INVALID_PARAMETERS, message, details);
}

/* @reason: the core's code (UPSTREAM_ERROR, UNKNOWN_MODEL, ...). */
static void
respond_embeddings_failed (Semantic *sem, Op *op, const char *message, const char *reason)
{
  JsonObject *o = json_object_new ();
  g_autoptr (JsonNode) details = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (o, "provider", op->provider);
  json_object_set_string_member (o, "model", op->model);
  if (reason)
    json_object_set_string_member (o, "reason", reason);
  json_node_take_object (details, o);
  sem->host->respond_error (op->responder, ERR_EMBEDDINGS, message, details);
}

static void
finish_store (Semantic *sem, Op *op, Embedded *e)
{
  const EnsHost *host = sem->host;
  Concept *old = g_hash_table_lookup (sem->concepts, op->id);
  g_autoptr (GError) error = NULL;
  gboolean local = e->vectors == NULL;
  gint64 slot;
  Concept *c;
  JsonObject *o;
  g_autoptr (JsonNode) answer = json_node_new (JSON_NODE_OBJECT);

  if (old)
    slot = old->slot;
  else if ((slot = host->state_next_sequence (sem->self, "slot", &error)) < 0)
    {
      host->respond_error (op->responder, ENS_ERR_STATE, error->message, NULL);
      return;
    }
  if (local)
    {
      /* the document frequencies count the new text (and no longer the one it
       * replaces) before it is weighted; undone if the write fails */
      if (old)
        df_update (sem, old->text, -1);
      df_update (sem, op->texts[0], +1);
      e->vectors = g_new (float, LOCAL_DIMS);
      embed_local (sem, op->texts[0], e->vectors);
    }
  if (!persist (sem, op->id, op->texts[0], op->metadata, e, slot, old == NULL, &error))
    {
      if (local)
        {
          df_update (sem, op->texts[0], -1);
          if (old)
            df_update (sem, old->text, +1);
        }
      host->respond_error (op->responder, ENS_ERR_STATE, error->message, NULL);
      return;
    }
  if (old)
    {
      if (!local)
        df_update (sem, old->text, -1);
      space_remove (sem, old);
      g_hash_table_remove (sem->concepts, old->id); /* frees old */
    }
  if (!local)
    df_update (sem, op->texts[0], +1);
  c = g_new0 (Concept, 1);
  c->id = g_strdup (op->id);
  c->text = g_strdup (op->texts[0]);
  c->metadata = json_node_ref (op->metadata);
  c->slot = slot;
  g_hash_table_insert (sem->concepts, c->id, c);
  space_add (space_lookup (sem, e->source, e->model, e->dims, TRUE), c, e->vectors);

  o = json_object_new ();
  json_object_set_string_member (o, "id", c->id);
  json_object_set_boolean_member (o, "replaced", old != NULL);
  json_object_set_member (o, "embedding", embedding_info (e->source, e->model, e->dims));
  json_node_take_object (answer, o);
  host->respond (op->responder, answer);
}

static void
finish_query (Semantic *sem, Op *op, Embedded *e)
{
  Space *s;
  g_autofree Hit *heap = NULL;
  guint n = 0, searched = 0;
  JsonObject *o = json_object_new ();
  JsonArray *results = json_array_new ();
  g_autoptr (JsonNode) answer = json_node_new (JSON_NODE_OBJECT);

  if (!e->vectors)
    {
      e->vectors = g_new (float, LOCAL_DIMS);
      embed_local (sem, op->texts[0], e->vectors);
    }
  s = space_lookup (sem, e->source, e->model, e->dims, FALSE);
  heap = g_new (Hit, op->top_k);
  if (s)
    {
      const float *q = e->vectors;
      for (guint r = 0; r < s->rows; r++)
        {
          if (op->filter && !filter_matches (op->filter, g_ptr_array_index (s->concepts, r)))
            continue;
          searched++;
          heap_push (heap, &n, op->top_k, dot (q, s->vectors + (gsize) r * s->dims, s->dims), r);
        }
    }
  qsort (heap, n, sizeof (Hit), hit_cmp_desc);
  for (guint i = 0; i < n; i++)
    {
      Concept *c = g_ptr_array_index (s->concepts, heap[i].row);
      JsonObject *hit = json_object_new ();
      json_object_set_string_member (hit, "id", c->id);
      json_object_set_double_member (hit, "score", CLAMP ((double) heap[i].score, -1.0, 1.0));
      json_object_set_string_member (hit, "text", c->text);
      json_object_set_member (hit, "metadata", json_node_copy (c->metadata));
      json_array_add_object_element (results, hit);
    }
  json_object_set_array_member (o, "results", results);
  json_object_set_member (o, "embedding", embedding_info (e->source, e->model, e->dims));
  json_object_set_int_member (o, "searched", searched);
  json_node_take_object (answer, o);
  sem->host->respond (op->responder, answer);
}

static void
finish_similarity (Semantic *sem, Op *op, Embedded *e)
{
  JsonObject *o = json_object_new ();
  g_autoptr (JsonNode) answer = json_node_new (JSON_NODE_OBJECT);
  double similarity;

  if (!e->vectors)
    {
      e->vectors = g_new (float, 2 * LOCAL_DIMS);
      embed_local (sem, op->texts[0], e->vectors);
      embed_local (sem, op->texts[1], e->vectors + LOCAL_DIMS);
    }
  similarity = CLAMP ((double) dot (e->vectors, e->vectors + e->dims, e->dims), -1.0, 1.0);
  json_object_set_double_member (o, "similarity", similarity);
  json_object_set_member (o, "embedding", embedding_info (e->source, e->model, e->dims));
  json_node_take_object (answer, o);
  sem->host->respond (op->responder, answer);
}

/* Answers @op with its embeddings; @e->vectors NULL means "local, compute
 * now" (a store first updates the document frequencies). */
static void
op_finish (Semantic *sem, Op *op, Embedded *e)
{
  switch (op->kind)
    {
    case OP_STORE:
      finish_store (sem, op, e);
      break;
    case OP_QUERY:
      finish_query (sem, op, e);
      break;
    case OP_SIMILARITY:
      finish_similarity (sem, op, e);
      break;
    }
}

/* ------------------------------------------------------ provider embeddings */

/* Reads result.embeddings (one list of numbers per text, in order) into @e. */
static gboolean
parse_embeddings (Op *op, JsonObject *result, Embedded *e, char **why)
{
  JsonArray *arr = ens_member_array (result, "embeddings");
  guint dims = 0;

  if (!arr)
    return (*why = g_strdup ("the result has no \"embeddings\" list")), FALSE;
  if (json_array_get_length (arr) != op->n_texts)
    return (*why = g_strdup_printf ("asked for %u embeddings, got %u", op->n_texts, json_array_get_length (arr))),
           FALSE;
  for (guint i = 0; i < op->n_texts; i++)
    {
      JsonNode *vec_node = json_array_get_element (arr, i);
      JsonArray *vec = JSON_NODE_HOLDS_ARRAY (vec_node) ? json_node_get_array (vec_node) : NULL;
      float *out;

      if (!vec)
        return (*why = g_strdup_printf ("embeddings[%u] is not a list", i)), FALSE;
      if (dims == 0)
        {
          dims = json_array_get_length (vec);
          if (dims == 0 || dims > MAX_DIMS)
            return (*why = g_strdup_printf ("embeddings[%u] has %u dimensions", i, dims)), FALSE;
          e->vectors = g_new0 (float, (gsize) dims * op->n_texts);
        }
      if (json_array_get_length (vec) != dims)
        return (*why = g_strdup ("the embeddings differ in length")), FALSE;
      out = e->vectors + (gsize) i * dims;
      for (guint j = 0; j < dims; j++)
        {
          JsonNode *x = json_array_get_element (vec, j);
          if (!JSON_NODE_HOLDS_VALUE (x) ||
              (json_node_get_value_type (x) != G_TYPE_DOUBLE && json_node_get_value_type (x) != G_TYPE_INT64))
            return (*why = g_strdup_printf ("embeddings[%u][%u] is not a number", i, j)), FALSE;
          out[j] = (float) json_node_get_double (x);
        }
      normalise (out, dims);
    }
  e->dims = dims;
  return TRUE;
}

/* An op is freed once answered and its embed request acknowledged (the
 * acknowledgement's callback holds it until then). */
static void
op_settle (Semantic *sem, Op *op)
{
  if (op->done && op->acked)
    g_hash_table_remove (sem->ops, op->target); /* frees op */
}

/* COMPLETION_RESULT:<target>, for one of our ops. */
static void
on_result (EnsMessage *event, gpointer user_data)
{
  Semantic *sem = user_data;
  Op *op = event->to ? g_hash_table_lookup (sem->ops, event->to) : NULL;
  JsonObject *d = event->data && JSON_NODE_HOLDS_OBJECT (event->data) ? json_node_get_object (event->data) : NULL;
  JsonObject *result = ens_member_object (d, "result");
  g_autofree char *why = NULL;
  Embedded e = { 0 };

  if (op == NULL || op->done)
    return;
  op->done = TRUE;
  if (result == NULL)
    {
      g_autofree char *text = g_strdup_printf ("embeddings from %s failed: %s", op->provider,
                                               ens_member_string_or (d, "error", "no reason given"));
      respond_embeddings_failed (sem, op, text, ens_member_string (d, "reason"));
    }
  else if (!parse_embeddings (op, result, &e, &why))
    {
      g_autofree char *text = g_strdup_printf ("embeddings from %s: %s", op->provider, why);
      respond_embeddings_failed (sem, op, text, "UPSTREAM_ERROR");
    }
  else
    {
      const char *model = ens_member_string (result, "model");
      e.source = g_strdup_printf ("provider:%s", op->provider);
      e.model = g_strdup (model && *model ? model : op->model);
      op_finish (sem, op, &e);
    }
  embedded_clear (&e);
  op_settle (sem, op);
}

/* The embed verb's answer: queued, or refused (an unknown backend, one that
 * makes no embeddings...). */
static void
on_embed_ack (EnsMessage *reply, gpointer user_data)
{
  Op *op = user_data;
  Semantic *sem = op->sem;

  op->acked = TRUE;
  if (reply->kind == ENS_MESSAGE_ERROR && !op->done)
    {
      op->done = TRUE;
      respond_embeddings_failed (sem, op, reply->error_message, reply->error_code);
    }
  op_settle (sem, op);
}

static char *
config_string (Semantic *sem, const char *key)
{
  return ens_host_config_string (sem->host, sem->self, key, "");
}

/* Computes @op's embeddings: by the embed verb on the backend the settings
 * name (the answer comes later), or locally (answered now).  Read per
 * request, so a settings change applies to the next request. */
static void
op_run (Semantic *sem, Op *op)
{
  g_autofree char *provider = config_string (sem, "semantic-embeddings-provider");
  JsonObject *data;
  JsonArray *input;
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  g_strstrip (provider);
  if (!*provider)
    {
      Embedded e = { .source = g_strdup ("local"), .model = g_strdup (LOCAL_MODEL), .dims = LOCAL_DIMS };
      op_finish (sem, op, &e);
      embedded_clear (&e);
      op_free (op);
      return;
    }
  op->sem = sem;
  op->provider = g_strdup (provider);
  op->model = config_string (sem, "semantic-embeddings-model");
  g_strstrip (op->model);
  op->target = g_strdup_printf ("%s%" G_GUINT64_FORMAT, sem->prefix, ++sem->seq);
  g_hash_table_insert (sem->ops, op->target, op);

  data = json_object_new ();
  json_node_take_object (node, data);
  input = json_array_new ();
  for (guint i = 0; i < op->n_texts; i++)
    json_array_add_string_element (input, op->texts[i]);
  json_object_set_array_member (data, "input", input);
  json_object_set_string_member (data, "provider", provider);
  if (*op->model)
    json_object_set_string_member (data, "model", op->model);
  json_object_set_string_member (data, "client_id", op->target);
  sem->host->request (sem->self, NULL, "embed", node, 0, on_embed_ack, op);
}

/* ----------------------------------------------------------------- requests */

/* (transfer none) a non-empty string member, or NULL. */
static const char *
get_text (JsonObject *params, const char *name, gboolean *present)
{
  const char *text = ens_member_string (params, name);

  *present = ens_member (params, name) != NULL;
  if (text == NULL)
    return NULL;
  for (const char *p = text; *p; p++)
    if (!g_ascii_isspace (*p))
      return text;
  return NULL;
}

static char *
new_id (Semantic *sem)
{
  while (TRUE)
    {
      char *id = g_strdup_printf ("c_%08x%08x", g_random_int (), g_random_int ());
      if (!g_hash_table_contains (sem->concepts, id))
        return id;
      g_free (id);
    }
}

static void
semantic_handle (gpointer instance, EnsMessage *request, EnsResponder *responder)
{
  Semantic *sem = instance;
  const EnsHost *host = sem->host;
  JsonObject *params = request->data && JSON_NODE_HOLDS_OBJECT (request->data) ? json_node_get_object (request->data)
                                                                                 : NULL;
  const char *action = request->action;
  gboolean present;
  const char *field = NULL, *expected = NULL;
  Op *op;

  if (request->data && !params && !JSON_NODE_HOLDS_NULL (request->data))
    {
      respond_invalid (sem, responder, "data", "an object");
      return;
    }

  if (g_strcmp0 (action, "delete_concept") == 0)
    {
      const char *id = get_text (params, "id", &present);
      Concept *c;
      g_autoptr (GError) error = NULL;
      JsonObject *o;
      g_autoptr (JsonNode) answer = json_node_new (JSON_NODE_OBJECT);

      if (!id)
        {
          respond_invalid (sem, responder, "id", "a non-empty string");
          return;
        }
      c = g_hash_table_lookup (sem->concepts, id);
      if (c)
        {
          g_autofree char *slot_key = g_strdup_printf ("%" G_GINT64_FORMAT, c->slot);
          if (!host->state_delete (sem->self, "concepts", c->id, &error))
            {
              host->respond_error (responder, ENS_ERR_STATE, error->message, NULL);
              return;
            }
          host->state_delete (sem->self, "slots", slot_key, NULL); /* a stale slot is skipped at load */
        }
      o = json_object_new ();
      json_object_set_boolean_member (o, "deleted", c != NULL);
      json_object_set_string_member (o, "id", id);
      json_node_take_object (answer, o);
      if (c)
        concept_forget (sem, c);
      host->respond (responder, answer);
      return;
    }

  op = g_new0 (Op, 1);
  op->responder = responder;
  if (g_strcmp0 (action, "store_concept") == 0)
    {
      const char *text = get_text (params, "text", &present);
      const char *id = get_text (params, "id", &present);
      JsonNode *meta = params ? json_object_get_member (params, "metadata") : NULL;

      op->kind = OP_STORE;
      if (!text)
        {
          field = "text";
          expected = "a non-empty string";
          goto invalid;
        }
      if (present && (!id || strlen (id) > ID_MAX_BYTES || !g_utf8_validate (id, -1, NULL)))
        {
          field = "id";
          expected = "a non-empty string of at most 256 bytes";
          goto invalid;
        }
      if (meta && !JSON_NODE_HOLDS_NULL (meta) && !JSON_NODE_HOLDS_OBJECT (meta))
        {
          field = "metadata";
          expected = "an object";
          goto invalid;
        }
      op->texts[op->n_texts++] = g_strdup (text);
      op->id = id ? g_strdup (id) : new_id (sem);
      op->metadata = meta && JSON_NODE_HOLDS_OBJECT (meta) ? json_node_copy (meta)
                                                           : ens_node_empty_object ();
    }
  else if (g_strcmp0 (action, "query_concepts") == 0)
    {
      const char *text = get_text (params, "text", &present);
      JsonNode *k = params ? json_object_get_member (params, "top_k") : NULL;
      JsonNode *filter = params ? json_object_get_member (params, "filter") : NULL;
      gint64 top_k = TOP_K_DEFAULT;

      op->kind = OP_QUERY;
      if (!text)
        {
          field = "text";
          expected = "a non-empty string";
          goto invalid;
        }
      if (k && !JSON_NODE_HOLDS_NULL (k))
        {
          GType t = JSON_NODE_HOLDS_VALUE (k) ? json_node_get_value_type (k) : G_TYPE_INVALID;
          double d = t == G_TYPE_DOUBLE ? json_node_get_double (k) : 0;
          if (t == G_TYPE_INT64)
            top_k = json_node_get_int (k);
          else if (t == G_TYPE_DOUBLE && d == floor (d) && d >= -1e9 && d <= 1e9)
            top_k = (gint64) d;
          else
            top_k = -1;
          if (top_k < 1 || top_k > TOP_K_MAX)
            {
              field = "top_k";
              expected = "an integer from 1 to 100";
              goto invalid;
            }
        }
      if (filter && !JSON_NODE_HOLDS_NULL (filter) && !JSON_NODE_HOLDS_OBJECT (filter))
        {
          field = "filter";
          expected = "an object of metadata key -> exact value";
          goto invalid;
        }
      op->texts[op->n_texts++] = g_strdup (text);
      op->top_k = (guint) top_k;
      if (filter && JSON_NODE_HOLDS_OBJECT (filter) && json_object_get_size (json_node_get_object (filter)) > 0)
        op->filter = json_object_ref (json_node_get_object (filter));
    }
  else if (g_strcmp0 (action, "semantic_similarity") == 0)
    {
      const char *a = get_text (params, "a", &present);
      const char *b = get_text (params, "b", &present);

      op->kind = OP_SIMILARITY;
      if (!a)
        {
          field = "a";
          expected = "a non-empty string";
          goto invalid;
        }
      if (!b)
        {
          field = "b";
          expected = "a non-empty string";
          goto invalid;
        }
      op->texts[op->n_texts++] = g_strdup (a);
      op->texts[op->n_texts++] = g_strdup (b);
    }
  else
    {
      g_autofree char *text = g_strdup_printf ("semantic has no action \"%s\"", action ? action : "");
      op_free (op);
      host->respond_error (responder, ENS_ERR_UNKNOWN_ACTION, text, NULL);
      return;
    }
  op_run (sem, op);
  return;

invalid:
  op_free (op);
  respond_invalid (sem, responder, field, expected);
}

/* ------------------------------------------------------------------ plugin */

static gpointer
semantic_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Semantic *sem;

  if (host->struct_size < sizeof (EnsHost))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old");
      return NULL;
    }
  sem = g_new0 (Semantic, 1);
  sem->host = host;
  sem->self = self;
  sem->concepts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) concept_free);
  sem->spaces = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) space_free);
  sem->df = g_hash_table_new (g_direct_hash, g_direct_equal);
  sem->ops = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) op_free);
  /* Unique to this instance: a result for an op of an earlier one is not ours. */
  sem->prefix = g_strdup_printf ("agent-semantic.%08x.", g_random_int ());
  {
    g_autofree char *pattern = g_strdup_printf ("COMPLETION_RESULT:%s*", sem->prefix);
    sem->sub_id = host->subscribe (self, pattern, on_result, sem, NULL);
  }
  load_all (sem);
  return sem;
}

static void
semantic_stop (gpointer instance)
{
  Semantic *sem = instance;

  /* Ops waiting for embeddings: the host answers their requests
   * (AGENT_GONE) and drops the embed answers still due to us. */
  sem->host->unsubscribe (sem->self, sem->sub_id);
  g_hash_table_unref (sem->ops);
  g_free (sem->prefix);
  g_hash_table_unref (sem->spaces);
  g_hash_table_unref (sem->concepts);
  g_hash_table_unref (sem->df);
  g_free (sem);
}

static JsonNode *
semantic_describe (gpointer instance)
{
  Semantic *sem = instance;
  g_autofree char *provider = config_string (sem, "semantic-embeddings-provider");
  JsonObject *o = json_object_new ();
  JsonNode *n = json_node_new (JSON_NODE_OBJECT);
  JsonArray *spaces = json_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_strstrip (provider);
  json_object_set_int_member (o, "concepts", g_hash_table_size (sem->concepts));
  json_object_set_string_member (o, "embeddings", *provider ? provider : "local");
  g_hash_table_iter_init (&iter, sem->spaces);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Space *s = value;
      JsonObject *so = json_object_new ();
      json_object_set_string_member (so, "source", s->source);
      json_object_set_string_member (so, "model", s->model);
      json_object_set_int_member (so, "dims", s->dims);
      json_object_set_int_member (so, "concepts", (gint64) s->rows);
      json_array_add_object_element (spaces, so);
    }
  json_object_set_array_member (o, "spaces", spaces);
  json_node_take_object (n, o);
  return n;
}

static const char *const semantic_actions[] = { "store_concept", "query_concepts", "semantic_similarity",
                                                "delete_concept", NULL };

static const EnsAgentVTable semantic_vtable = {
  .struct_size = sizeof (EnsAgentVTable),
  .name = "semantic",
  .actions = semantic_actions,
  .handle = semantic_handle,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_AGENT, "agent-semantic", "1.0",
                   "Concepts and semantic similarity (provider or local embeddings)", ENS_PLUGIN_FLAG_NONE,
                   semantic_init, semantic_stop, semantic_describe, &semantic_vtable)
