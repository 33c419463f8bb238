/* ens-semantic-store.c — agent-semantic's concepts in the state store (scope
 * "concepts", the vector as base64 of little-endian float32; scope "slots"
 * numbers them so start can load them all). */
#include "ens-semantic.h"

#include <math.h>
#include <string.h>

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

/* A stored record ends with ,"vector":"<base64>"} (ens_semantic_persist () writes it
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
JsonNode *
ens_semantic_embedding_info (const char *source, const char *model, guint dims)
{
  JsonObject *o = json_object_new ();
  JsonNode *n = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (o, "source", source);
  json_object_set_string_member (o, "model", model);
  json_object_set_int_member (o, "dims", dims);
  json_node_take_object (n, o);
  return n;
}

gboolean
ens_semantic_persist (Semantic *sem, const char *id, const char *text, JsonNode *metadata, const Embedded *e, gint64 slot,
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
  /* last, so that ens_semantic_load_all () finds it at the end of the text */
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
void
ens_semantic_load_all (Semantic *sem)
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
      ens_semantic_space_add (ens_semantic_space_lookup (sem, source, model, (guint) dims, TRUE), c, vector);
      ens_semantic_df_update (sem, c->text, +1);
      loaded++;
    }
  ENS_LOG (host, sem->self, G_LOG_LEVEL_INFO, "loaded %u concepts in %u spaces%s", loaded,
           g_hash_table_size (sem->spaces), bad ? " (some records unreadable, skipped)" : "");
}

