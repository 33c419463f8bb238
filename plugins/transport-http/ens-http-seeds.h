/* ens-http-seeds.h — private to transport-http: what the seed systems' HTTP
 * dialects share (ens-http-seeds.c).  Each dialect is a thin translation onto
 * core verbs in a file of its own, no logic of its own (README, "Over HTTP and
 * WebSocket"):
 *
 *   KSI HTTP plan  ens-http-routes-ksi.c      /api/v1/...
 *   Neolith        ens-http-routes-neolith.c  /api/daemon...
 *   Rhetor/aish    ens-http-routes-rhetor.c   /api/ai/..., /api/team-chat
 *
 * Each dialect names its fields its own way: the core's validation errors come
 * back with the dialect's field names. */
#pragma once

#include "ens-http.h"
#include "ens-json-util.h"

/* JSON Schema snippets for the route tables' body schemas. */
#define STR "{\"type\":\"string\"}"
#define STRV "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"

/* A core field name and the dialect's name for it. */
typedef struct {
  const char *core, *http;
} EnsSeedRename;

/* Each NULL-terminated. */
extern const EnsSeedRename ens_seed_ksi_names[];
extern const EnsSeedRename ens_seed_neolith_names[];
extern const EnsSeedRename ens_seed_rhetor_names[];

/* (transfer none) the answer's data as an object, or NULL. */
JsonObject *ens_seed_answer_object (EnsMessage *answer);
/* Answers @obj (transfer full) as JSON with @status. */
void ens_seed_reply_object (EnsHttpCall *call, guint status, JsonObject *obj);
/* (transfer full) now, ISO 8601 UTC with microseconds. */
char *ens_seed_now_iso (void);
/* Sets @name to @value when @value is not NULL; all (transfer none). */
void ens_seed_set_string_if (JsonObject *obj, const char *name, const char *value);
/* A core error (transfer none) as the HTTP error body; INVALID_PARAMETERS
 * becomes 422 with the field as the dialect (@names) calls it. */
void ens_seed_error (EnsHttpCall *call, EnsMessage *answer, const EnsSeedRename *names);

/* Body fields: each answers 422 itself and returns FALSE when the field has
 * the wrong type (null counts as absent); results (transfer none) live as
 * long as @body. */
gboolean ens_seed_get_string (EnsHttpCall *call, JsonObject *body, const char *field, gboolean required,
                              const char **out);
/* The first of @fields present, as a non-empty string; 422 naming @fields[0]. */
gboolean ens_seed_get_string_alias (EnsHttpCall *call, JsonObject *body, const char *const *fields, gboolean required,
                                    const char **out);
/* A list of non-empty strings, or absent (*@out NULL). */
gboolean ens_seed_get_strv (EnsHttpCall *call, JsonObject *body, const char *field, JsonArray **out);
/* A number in [@min, @max]; *@present says whether it was given. */
gboolean ens_seed_get_number (EnsHttpCall *call, JsonObject *body, const char *field, double min, double max,
                              const char *expected, gboolean *present, double *out);

/* Copies a task_completed event's result (model, provider, usage, ...) into
 * @to; both (transfer none). */
void ens_seed_copy_result (JsonObject *to, JsonObject *result);
/* A failed task (task_failed {error, code}) as an HTTP error; (transfer none). */
void ens_seed_reply_task_failed (EnsHttpCall *call, JsonObject *ev, JsonNode *event_data);
