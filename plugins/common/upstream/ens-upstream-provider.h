/* ens-upstream-provider.h — one HTTP provider plugin instance
 * (provider-openai, provider-anthropic): its backends from the
 * configuration, its running calls, and what it tells the core.
 *
 * Everything runs on the main loop. */
#pragma once

#include "ens-upstream-backend.h"
#include "ens-upstream-json.h"

G_BEGIN_DECLS

/* What a provider plugin says about its API. */
typedef struct {
  const char *id; /* the plugin id, e.g. "provider-openai" */
  /* Sets @backend's endpoint (ens_upstream_backend_set_url; none when it
   * cannot have one) and its fixed headers (ens_upstream_backend_add_header),
   * once, when the backend is loaded; also what it lacks and the API
   * implies (e.g. its models).  @host and @self are the plugin's. */
  void (*setup) (const EnsHost *host, EnsPlugin *self, EnsUpstreamBackend *backend);
} EnsUpstreamApi;

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  const EnsUpstreamApi *api;
  EnsUpstreamParseFunc parse; /* the host's JSON parser, or the library's */
  /* the host's scanner for the same JSON (members NULL: the host has none) */
  EnsUpstreamScanner scanner;
  GPtrArray *backends;        /* EnsUpstreamBackend*, owned */
  GHashTable *calls;          /* EnsUpstreamCall* not yet ended (a set, one reference each) */
} EnsUpstreamProvider;

/* (transfer full) a provider with its backends loaded from the
 * configuration: every NAME of the "providers" setting whose plugin key is
 * our plugin id (host->plugin_id) or @api->id.  @api (transfer none) is
 * static. */
EnsUpstreamProvider *ens_upstream_provider_new (const EnsHost *host, EnsPlugin *self, const EnsUpstreamApi *api);
/* Fails every running call with CANCELLED and frees @provider; the
 * backends' pools close with the last reference to their backend. */
void ens_upstream_provider_free (EnsUpstreamProvider *provider);
/* Reloads the configuration and returns (transfer full) the backends array
 * for EnsProviderVTable.backends(). */
JsonNode *ens_upstream_provider_backends (EnsUpstreamProvider *provider);
/* (transfer none) the backend called @name, or NULL. */
EnsUpstreamBackend *ens_upstream_provider_find (EnsUpstreamProvider *provider, const char *name);
/* (transfer full) a JSON object describing the plugin, for describe(). */
JsonNode *ens_upstream_provider_describe (EnsUpstreamProvider *provider);

G_END_DECLS
