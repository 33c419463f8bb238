/* ens-semantic-space.c — agent-semantic's embedding spaces: the concepts of
 * one (source, model, dims) as one contiguous row-major matrix of unit
 * vectors; deleting swaps the last row into the hole. */
#include "ens-semantic.h"

#include <string.h>

void
ens_semantic_concept_free (Concept *c)
{
  g_free (c->id);
  g_free (c->text);
  if (c->metadata)
    json_node_unref (c->metadata);
  g_free (c);
}

void
ens_semantic_space_free (Space *s)
{
  g_free (s->key);
  g_free (s->source);
  g_free (s->model);
  g_free (s->vectors);
  g_ptr_array_unref (s->concepts);
  g_free (s);
}

/* --------------------------------------------------------------- spaces */

static char *
space_key (const char *source, const char *model, guint dims)
{
  return g_strdup_printf ("%s\n%s\n%u", source, model, dims);
}

Space *
ens_semantic_space_lookup (Semantic *sem, const char *source, const char *model, guint dims, gboolean create)
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

void
ens_semantic_space_add (Space *s, Concept *c, const float *vector)
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
void
ens_semantic_space_remove (Semantic *sem, Concept *c)
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
void
ens_semantic_concept_forget (Semantic *sem, Concept *c)
{
  ens_semantic_space_remove (sem, c);
  ens_semantic_df_update (sem, c->text, -1);
  g_hash_table_remove (sem->concepts, c->id);
}
