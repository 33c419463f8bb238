/* ens-semantic.h — what the parts of agent-semantic share (private to the plugin).
 *
 *   ens-agent-semantic.c   the plugin: requests, queries, answers, embeddings through the core
 *   ens-semantic-embed.c   the deterministic local embedding (hashed n-grams, TF-IDF)
 *   ens-semantic-space.c   embedding spaces: contiguous matrices of unit vectors
 *   ens-semantic-store.c   concepts in the state store, loaded at start
 *
 * Concepts are owned by Semantic.concepts, spaces by Semantic.spaces; a
 * Space's rows borrow its concepts. */
#pragma once

#include <ensemble/ensemble.h>

#include "ens-json-util.h"

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

/* ens-semantic-embed.c */
void ens_semantic_embedded_clear (Embedded *e);
void ens_semantic_df_update (Semantic *sem, const char *text, int delta);
void ens_semantic_normalise (float *v, guint dims);
void ens_semantic_embed_local (Semantic *sem, const char *text, float *out);

/* ens-semantic-space.c */
void ens_semantic_concept_free (Concept *c);
void ens_semantic_space_free (Space *s);
Space * ens_semantic_space_lookup (Semantic *sem, const char *source, const char *model, guint dims, gboolean create);
void ens_semantic_space_add (Space *s, Concept *c, const float *vector);
void ens_semantic_space_remove (Semantic *sem, Concept *c);
void ens_semantic_concept_forget (Semantic *sem, Concept *c);

/* ens-semantic-store.c */
JsonNode * ens_semantic_embedding_info (const char *source, const char *model, guint dims);
gboolean ens_semantic_persist (Semantic *sem, const char *id, const char *text, JsonNode *metadata, const Embedded *e, gint64 slot, gboolean new_slot, GError **error);
void ens_semantic_load_all (Semantic *sem);
