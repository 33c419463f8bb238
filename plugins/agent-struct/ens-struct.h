/* ens-struct.h — what the parts of agent-struct share (private to the plugin).
 *
 *   ens-agent-struct.c   the plugin: requests, jobs, names checked by the naming agent
 *   ens-struct-fail.c    error answers, built before they are sent
 *   ens-struct-tree.c    paths and trees read from a request
 *   ens-struct-fs.c      the file system: creating and validating, confined to the root
 *
 * Ownership: a Fail ** out-parameter receives a new Fail (free with
 * ens_struct_fail_free); Entry trees are owned by their Job. */
#pragma once

#include <ensemble/ensemble.h>

#include "ens-json-util.h"

#define STRUCT_MAX_ENTRIES 10000
#define STRUCT_MAX_DEPTH 32
#define STRUCT_MAX_CONTENT (1024 * 1024)
#define STRUCT_MAX_SEGMENT 255
#define STRUCT_MAX_EXTENSION 10
#define STAGING_PREFIX ".ens-staging-"
#define NAMING_AGENT "naming"
#define NAMING_WINDOW 16 /* validate_name requests in flight per job */
#define NAMING_TIMEOUT_MS 10000

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  char *root;  /* (owned) absolute path of the workspace root */
  GList *jobs; /* Job *, waiting for the naming agent; not owned (freed when done) */
} Struct;

typedef enum {
  OP_CREATE_DIRECTORY,
  OP_CREATE_STRUCTURE,
  OP_VALIDATE_STRUCTURE,
} Op;

/* One tree entry; the tree's own top is a nameless directory. */
typedef struct _Entry Entry;
struct _Entry {
  char *name;         /* (owned) one path segment; NULL for the top */
  char *rel;          /* (owned) path relative to the base folder */
  gboolean is_dir;
  char *content;      /* (owned) file content, NULL: empty file / not checked */
  GPtrArray *children; /* Entry *, owned, in the order of the request */
};

/* An error answer, before it is sent. */
typedef struct {
  const char *code;
  char *message;
  JsonNode *details; /* (owned) may be NULL */
} Fail;

typedef struct {
  Struct *st;                 /* NULL once orphaned (the plugin stopped) */
  EnsResponder *responder;    /* NULL once orphaned */
  Op op;
  char **base;                /* (owned) segments of the base folder */
  char *base_rel;             /* (owned) the base folder, "" for the root */
  Entry *tree;                /* (owned) */
  GPtrArray *names;           /* (owned) char *, unique names for the naming agent, in order */
  GPtrArray *name_where;      /* (owned) char *, the first place each name appears */
  GHashTable *name_index;     /* name -> index + 1, keys borrowed from @names */
  GPtrArray *results;         /* Fail * or NULL per name, once answered */
  guint next;                 /* next name to send */
  guint in_flight;
  gboolean failed;            /* a name failed: send no more */
} Job;

typedef struct {
  Job *job;
  guint index;
} Ticket;

/* ens-struct-fail.c: each fail_* stores a new Fail in *out and returns FALSE. */
void ens_struct_fail_free (Fail *fail);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Fail, ens_struct_fail_free)
gboolean ens_struct_fail_set (Fail **out, const char *code, JsonNode *details, const char *format, ...) G_GNUC_PRINTF (4, 5);
JsonNode * ens_struct_details_new (JsonObject **obj, const char *field, const char *expected);
gboolean ens_struct_fail_params (Fail **out, const char *field, const char *expected, const char *why);
gboolean ens_struct_fail_too_large (Fail **out, const char *field, guint64 limit, const char *what);
gboolean ens_struct_fail_name (Fail **out, const char *name, const char *where, const char *rule, const char *reason);
gboolean ens_struct_fail_path (Fail **out, const char *code, const char *field, const char *path, const char *why);
gboolean ens_struct_fail_errno (Fail **out, const char *field, const char *path, const char *what, int err);
void ens_struct_respond_fail (Struct *st, EnsResponder *responder, Fail *fail);

/* ens-struct-tree.c */
void ens_struct_entry_free (Entry *entry);
Entry * ens_struct_entry_new_dir (const char *name, const char *rel);
gboolean ens_struct_parse_path (Job *job, const char *path, gboolean required, Fail **fail);
char * ens_struct_rel_join (const char *a, const char *b);
gboolean ens_struct_is_string_node (JsonNode *node);
gboolean ens_struct_parse_tree (Job *job, JsonObject *obj, Entry *dir, const char *field, guint depth, guint *count, Fail **fail);

/* ens-struct-fs.c: run a job's file-system work and answer its responder. */
void ens_struct_remove_stale_staging (Struct *st);
void ens_struct_run_create (Job *job);
void ens_struct_run_validate (Job *job);
