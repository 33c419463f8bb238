/* ens-completion.h — completions (ens-completion.c): acknowledged at once,
 * queued, routed, run on a provider backend, streamed to the requester as
 * targeted events, settled against the budget, retried on the next-ranked
 * backend when one fails before streaming.  The verbs complete, embed and
 * complete.cancel are ens-completion-verbs.c's. */
#pragma once

#include "ens-backends.h"
#include "ens-events.h"

G_BEGIN_DECLS

typedef struct _EnsCompletions EnsCompletions;

/* What a session hears of its completion (instead of events). */
typedef struct {
  void (*chunk) (gpointer data, const char *request_id, const char *text);
  void (*event) (gpointer data, const char *request_id, const char *type, JsonNode *payload);
  /* @result (transfer none) or NULL with @code and @message */
  void (*done) (gpointer data, const char *request_id, JsonNode *result, const char *code, const char *message);
} EnsCompletionHooks;

EnsCompletions *ens_completions_new (EnsConfig *config, EnsBackends *backends, EnsBudget *budget,
                                     EnsEvents *events);
void ens_completions_free (EnsCompletions *completions);
void ens_completions_add_verbs (EnsCompletions *completions, EnsVerbs *verbs);
/* Starts what was submitted and waits for its start now, instead of at the
 * next turn of the main loop (after the submitter's ack was delivered). */
void ens_completions_pump_due (EnsCompletions *completions);

/* Queues a completion (@params kind "embeddings": embeddings, see the
 * embed verb); *answer is (transfer full) the ack, or the error and
 * NULL is returned.  Results go as events to @client_id (may be NULL) and
 * to @hooks; @client, when not NULL, is the requesting connection, which
 * may cancel it and whose going away cancels it. */
EnsCompletion *ens_completions_submit (EnsCompletions *completions, EnsMessage *request, JsonObject *params,
                                       EnsClient *client, const char *client_id, const EnsCompletionHooks *hooks,
                                       gpointer hooks_data, EnsMessage **answer);
/* Cancels the completion of @request_id for @asker: NULL when done, else
 * ENS_ERR_NOT_FOUND (none queued or running) or ENS_ERR_PERMISSION_DENIED
 * (@asker is not its requester and not @admin). */
const char *ens_completions_cancel_for (EnsCompletions *completions, const char *request_id, EnsClient *asker,
                                        gboolean admin);
/* (transfer none) the request_id of @completion */
const char *ens_completion_id (EnsCompletion *completion);
void ens_completions_cancel_id (EnsCompletions *completions, const char *request_id);
/* Before plugins stop: every completion ends; running ones are cancelled. */
void ens_completions_cancel_all (EnsCompletions *completions);
/* Completions running on a provider now. */
guint ens_completions_running (EnsCompletions *completions);
/* (transfer full) {router_policy, providers, queued, running, completed,
 * failed, fallbacks, input_tokens, output_tokens} */
JsonNode *ens_completions_stats (EnsCompletions *completions);
/* Since start: completions that ended with a result, those that failed, and
 * the summed durations (queued to result, ms) of the first (ens-stats.c). */
void ens_completions_totals (EnsCompletions *completions, guint64 *completed, guint64 *failed,
                             double *completed_ms);

/* Loader plugin-stopped (its running completions end, its backends and
 * ledger go), clients client-closed. */
void ens_completions_forget_plugin (EnsCompletions *completions, EnsPlugin *plugin);
void ens_completions_client_closed (EnsCompletions *completions, EnsClient *client);

/* What a provider reports (host->completion_*). */
void ens_completion_chunk (EnsCompletion *completion, const char *text);
void ens_completion_event (EnsCompletion *completion, const char *type, JsonNode *payload);
void ens_completion_finish (EnsCompletion *completion, JsonNode *result);
void ens_completion_fail (EnsCompletion *completion, const char *code, const char *message);

G_END_DECLS
