/* ens-http-seeds.h — private to transport-http: what the seed systems' HTTP
 * dialects share (ens-http-seeds.c).  Their routes are rows of their
 * dialects (plugins/common/dialect: ens_dialect_ksi_http,
 * ens_dialect_neolith_rest, ens_dialect_rhetor), run here by ens_seed_run;
 * the route files keep what a row cannot do (Rhetor's waits for a task's
 * end, Neolith's event stream):
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
#include "ens-dialect.h"

/* JSON Schema snippets for the route tables' body schemas. */
#define STR "{\"type\":\"string\"}"
#define STRV "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"

/* (transfer none) the answer's data as an object, or NULL. */
JsonObject *ens_seed_answer_object (EnsMessage *answer);
/* Answers @obj (transfer full) as JSON with @status. */
void ens_seed_reply_object (EnsHttpCall *call, guint status, JsonObject *obj);
/* (transfer full) now, ISO 8601 UTC with microseconds. */
char *ens_seed_now_iso (void);
/* A failed task (task_failed {error, code}) as an HTTP error; (transfer none). */
void ens_seed_reply_task_failed (EnsHttpCall *call, JsonObject *ev, JsonNode *event_data);

/* ---- a dialect's route rows (plugins/common/dialect): a route is a row
 * named "METHOD /path" whose @answer is the HTTP status. */

/* What a route adds to its answer @out (transfer none) from the core's
 * @answer data (transfer none, may be NULL) and what only the transport
 * knows (a URL, the call's own state). */
typedef void (*EnsSeedFinish) (EnsHttpCall *call, JsonObject *out, JsonObject *answer, gpointer data);

/* The request for @route's row: the body, with the query's parameters the
 * row reads over it, through the row's @in into *@params (transfer full).
 * NULL after answering 422 (naming the field as the row reads it), 400 or
 * 404 (no such row). */
const EnsDialectEntry *ens_seed_request (EnsHttpCall *call, const EnsDialect *dialect, const char *route,
                                         JsonNode **params);
/* A core error about @entry's request as HTTP: 422 naming the field as the
 * row reads it, else the code's status. */
void ens_seed_dialect_error (EnsHttpCall *call, const EnsDialectEntry *entry, EnsMessage *answer);
/* The whole route: ens_seed_request, the row's verb, its answer through
 * @out, @finish (may be NULL), answered with the row's status. */
void ens_seed_run (EnsHttpCall *call, const EnsDialect *dialect, const char *route, EnsSeedFinish finish,
                   gpointer data);
/* ens_seed_run for the row named as the route that matched ("POST /api/daemon"). */
void ens_seed_run_route (EnsHttpCall *call, const EnsDialect *dialect);
