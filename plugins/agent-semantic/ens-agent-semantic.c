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
 *
 * The parts: see ens-semantic.h.
 */
#include "ens-semantic.h"

#include "ens-host-config.h"

#include <math.h>
#include <string.h>

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
        ens_semantic_df_update (sem, old->text, -1);
      ens_semantic_df_update (sem, op->texts[0], +1);
      e->vectors = g_new (float, LOCAL_DIMS);
      ens_semantic_embed_local (sem, op->texts[0], e->vectors);
    }
  if (!ens_semantic_persist (sem, op->id, op->texts[0], op->metadata, e, slot, old == NULL, &error))
    {
      if (local)
        {
          ens_semantic_df_update (sem, op->texts[0], -1);
          if (old)
            ens_semantic_df_update (sem, old->text, +1);
        }
      host->respond_error (op->responder, ENS_ERR_STATE, error->message, NULL);
      return;
    }
  if (old)
    {
      if (!local)
        ens_semantic_df_update (sem, old->text, -1);
      ens_semantic_space_remove (sem, old);
      g_hash_table_remove (sem->concepts, old->id); /* frees old */
    }
  if (!local)
    ens_semantic_df_update (sem, op->texts[0], +1);
  c = g_new0 (Concept, 1);
  c->id = g_strdup (op->id);
  c->text = g_strdup (op->texts[0]);
  c->metadata = json_node_ref (op->metadata);
  c->slot = slot;
  g_hash_table_insert (sem->concepts, c->id, c);
  ens_semantic_space_add (ens_semantic_space_lookup (sem, e->source, e->model, e->dims, TRUE), c, e->vectors);

  o = json_object_new ();
  json_object_set_string_member (o, "id", c->id);
  json_object_set_boolean_member (o, "replaced", old != NULL);
  json_object_set_member (o, "embedding", ens_semantic_embedding_info (e->source, e->model, e->dims));
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
      ens_semantic_embed_local (sem, op->texts[0], e->vectors);
    }
  s = ens_semantic_space_lookup (sem, e->source, e->model, e->dims, FALSE);
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
  json_object_set_member (o, "embedding", ens_semantic_embedding_info (e->source, e->model, e->dims));
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
      ens_semantic_embed_local (sem, op->texts[0], e->vectors);
      ens_semantic_embed_local (sem, op->texts[1], e->vectors + LOCAL_DIMS);
    }
  similarity = CLAMP ((double) dot (e->vectors, e->vectors + e->dims, e->dims), -1.0, 1.0);
  json_object_set_double_member (o, "similarity", similarity);
  json_object_set_member (o, "embedding", ens_semantic_embedding_info (e->source, e->model, e->dims));
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
      ens_semantic_normalise (out, dims);
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
  ens_semantic_embedded_clear (&e);
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
      ens_semantic_embedded_clear (&e);
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
        ens_semantic_concept_forget (sem, c);
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
  sem->concepts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) ens_semantic_concept_free);
  sem->spaces = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) ens_semantic_space_free);
  sem->df = g_hash_table_new (g_direct_hash, g_direct_equal);
  sem->ops = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) op_free);
  /* Unique to this instance: a result for an op of an earlier one is not ours. */
  sem->prefix = g_strdup_printf ("agent-semantic.%08x.", g_random_int ());
  {
    g_autofree char *pattern = g_strdup_printf ("COMPLETION_RESULT:%s*", sem->prefix);
    sem->sub_id = host->subscribe (self, pattern, on_result, sem, NULL);
  }
  ens_semantic_load_all (sem);
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

