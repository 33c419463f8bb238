/* ens-backends.h — what completions can run on (ens-backends.c): the
 * backends provider plugins serve, with what is observed of each (latency,
 * errors, cooldown, concurrency), and the router policies that rank them;
 * the verbs route, providers.list and budget. */
#pragma once

#include "ens-budget.h"
#include "ens-verbs.h"

G_BEGIN_DECLS

typedef struct _EnsBackends EnsBackends;

typedef struct {
  char *name;
  EnsPlugin *plugin;
  JsonObject *info;     /* what backends() said */
  double latency_ms;    /* moving average, starts at the configured value */
  double error_rate;    /* moving average of failures, 0..1 */
  guint consecutive_failures;
  gint64 cooldown_until; /* monotonic us */
  guint running;
  guint max_concurrency;
  /* Read from the info once (it does not change): */
  double cost_in, cost_out; /* USD per 1000 tokens */
  gboolean local;           /* the offline provider's ("local": true) */
  JsonArray *models;        /* (transfer none, in info) "models", or NULL */
  JsonObject *model_map;    /* (transfer none, in info) "model_map", or NULL */
  guint64 calls, failures, input_tokens, output_tokens;
  double cost;
  JsonNode *candidate;  /* what routers are shown, built once; the observed
                         * members are refreshed in place for each decision */
} EnsBackend;

EnsBackends *ens_backends_new (EnsConfig *config, EnsBudget *budget);
void ens_backends_free (EnsBackends *backends);

/* A started plugin: a provider's backends and a router join (other kinds:
 * nothing to do). */
void ens_backends_add_plugin (EnsBackends *backends, EnsPlugin *plugin);
/* A plugin stopped: its backends and its router leave. */
void ens_backends_forget_plugin (EnsBackends *backends, EnsPlugin *plugin);

/* (transfer none) the backend @name, or NULL. */
EnsBackend *ens_backends_lookup (EnsBackends *backends, const char *name);
guint ens_backends_count (EnsBackends *backends);
/* Completions running on all backends. */
guint ens_backends_running (EnsBackends *backends);
/* TRUE when some backend is named @model or lists it. */
gboolean ens_backends_serve_model (EnsBackends *backends, const char *model);
/* TRUE when @model is one of @b's models (backend info "models"). */
gboolean ens_backend_lists_model (EnsBackend *b, const char *model);
/* (transfer none) the model @b runs when asked for @model (NULL: its
 * default, the first of its models, else its name), through its model_map:
 * the name the upstream is sent. */
const char *ens_backend_model (EnsBackend *b, const char *model);
/* TRUE when @b makes embeddings (backend info "embedding_models", a
 * non-empty list). */
gboolean ens_backend_can_embed (EnsBackend *b);
/* (transfer none) the embedding model @b runs when asked for @model (NULL,
 * or one it does not list: its first); NULL when it cannot embed. */
const char *ens_backend_embedding_model (EnsBackend *b, const char *model);
/* TRUE when some backend that embeds is named @model or lists it among its
 * embedding models. */
gboolean ens_backends_serve_embedding (EnsBackends *backends, const char *model);
/* TRUE when @b is the offline provider's (backend info "local": true). */
gboolean ens_backend_is_local (EnsBackend *b);
/* TRUE when no real backend is configured: every backend is local (or there
 * is none).  The offline provider then answers whatever model is asked. */
gboolean ens_backends_offline_only (EnsBackends *backends);
/* (transfer full) what the model-aliases setting maps @name to, or NULL. */
char *ens_backends_alias (EnsBackends *backends, const char *name);
/* (transfer full) the model @requested (transfer none, may be NULL) stands
 * for, through the model-aliases setting: @requested itself when a backend
 * is named so or serves it; else the model its alias names when one serves
 * that; else a model a real backend serves whose name contains the alias
 * ("sonnet" -> "claude-3-7-sonnet-latest"); else @requested unchanged. */
char *ens_backends_resolve_model (EnsBackends *backends, const char *requested);
/* (transfer full) {providers: [each backend, with its counts], aliases:
 * [{alias, model, provider}, for each alias some real backend serves]} */
JsonNode *ens_backends_describe (EnsBackends *backends);
/* (transfer full) the active router's decision for @route (an object;
 * budget_remaining is filled in), ranking included; NULL with @code and
 * @message (transfer full) when no backend or no router fits.  A route of
 * kind "embeddings" ranks the backends that embed, by their embedding
 * models. */
JsonNode *ens_backends_decide (EnsBackends *backends, JsonNode *route, const char **code, char **message);
/* TRUE when a loaded router plugin is called @policy; else FALSE with *@why
 * (transfer full) naming the loaded ones. */
gboolean ens_backends_has_policy (EnsBackends *backends, const char *policy, char **why);
/* (transfer none) the name of a loaded router policy, @preferred when it is
 * loaded; NULL when none is. */
const char *ens_backends_some_policy (EnsBackends *backends, const char *preferred);
/* A call on @b that started at @started_us ended; a failure may put the
 * backend in cooldown. */
void ens_backends_observe (EnsBackends *backends, EnsBackend *b, gint64 started_us, gboolean failed);

/* (transfer full) UNKNOWN_MODEL answering @request: no backend serves
 * @asked, given in @field (naming what its alias stands for), with the
 * backends listed. */
EnsMessage *ens_backends_unknown_model (EnsBackends *backends, EnsMessage *request, const char *field,
                                        const char *asked);
/* The verbs route, providers.list and budget. */
void ens_backends_add_verbs (EnsBackends *backends, EnsVerbs *verbs);

/* USD for @input and @output tokens on @b. */
double ens_backend_cost (EnsBackend *b, double input, double output);
/* A number from an object of backend info or usage; @fallback otherwise. */
double ens_info_double (JsonObject *info, const char *member, double fallback);

G_END_DECLS
