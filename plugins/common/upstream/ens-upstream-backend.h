/* ens-upstream-backend.h — one configured upstream backend (an
 * org.ensemble.Provider instance) with its own pool of keep-alive
 * connections.
 *
 * Each backend has one EnsUpstreamPool per host it talks to (its
 * endpoint, its embeddings endpoint): its connections to the upstream are
 * kept open and reused from one completion to the next, at most
 * max-concurrency of them (the core never runs more completions on a
 * backend at once), and closed after idle-timeout-s without use.
 * Ref-counted: a running call keeps its backend (and so its pool) alive
 * when the configuration is reloaded under it. */
#pragma once

#include <ensemble/ensemble.h>
#include "ens-upstream-pool.h"

G_BEGIN_DECLS

typedef struct {
  gatomicrefcount ref;
  char *name;
  char *base_url;        /* without a trailing '/'; "" when not configured */
  char *api_key;         /* NULL when none is configured */
  char **models;         /* first = default */
  GHashTable *model_map; /* requested name -> upstream name */
  char **capabilities;
  char **embedding_models; /* empty: the backend makes no embeddings */
  double quality, cost_input, cost_output;
  guint latency_ms, context_window, max_concurrency, timeout_ms, max_retries;
  guint idle_timeout_s;  /* an unused connection is closed after this */
  gsize max_line_bytes;  /* of one event-stream line */
  gsize max_answer_bytes; /* of a whole answer, plain or streamed */
  guint max_tool_calls;  /* in one answer */
  guint max_output_tokens; /* sent when the request sets none and the API needs one; 0: the model's maximum */

  /* Set by the API's setup (EnsUpstreamApi): where completions go. */
  char *url;             /* NULL: the backend has no endpoint */
  GUri *uri;             /* @url parsed; NULL unless it is an http(s) URL */
  GUri *embeddings_uri;  /* where embeddings go; NULL: nowhere */
  GPtrArray *headers;    /* char*: name, value, name, value... sent with every request */
  GPtrArray *pools;      /* EnsUpstreamPool*, one per scheme://host:port, made on first use */
  GPtrArray *pool_keys;  /* char*: the scheme://host:port of each pool */

  /* private, made on first use: for @uri [0] and @embeddings_uri [1], the
   * requests' heads [stream] (ens_upstream_backend_append_head) and pools */
  GString *heads[2][2];
  EnsUpstreamPool *endpoint_pools[2];
} EnsUpstreamBackend;

EnsUpstreamBackend *ens_upstream_backend_ref (EnsUpstreamBackend *backend);
void ens_upstream_backend_unref (EnsUpstreamBackend *backend);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsUpstreamBackend, ens_upstream_backend_unref)

/* (transfer full) backend @name from its settings @settings (transfer
 * none); problems (an unreadable api-key-file) are logged through @host. */
EnsUpstreamBackend *ens_upstream_backend_load (const EnsHost *host, EnsPlugin *self, const char *name,
                                               GSettings *settings);

/* Sets the endpoint (transfer none): parsed once here, not per request. */
void ens_upstream_backend_set_url (EnsUpstreamBackend *backend, const char *url);
/* Sets the embeddings endpoint (transfer none), parsed once. */
void ens_upstream_backend_set_embeddings_url (EnsUpstreamBackend *backend, const char *url);
/* Adds a header (transfer none) sent with every request of the backend. */
void ens_upstream_backend_add_header (EnsUpstreamBackend *backend, const char *name, const char *value);

/* (transfer none) the pool of connections to @uri's host (an http(s)
 * URI), made on first use. */
EnsUpstreamPool *ens_upstream_backend_pool (EnsUpstreamBackend *backend, GUri *uri);
/* Appends to @out the head of a POST to @uri (an http(s) URI, transfer
 * none) up to its own Content-Type and Content-Length: the request line,
 * Host, User-Agent, Accept (text/event-stream when @stream, else
 * application/json) and the backend's headers (but those the request sets
 * itself, and any with a line break).  Written once for each endpoint of
 * the backend and kind of answer, copied after. */
void ens_upstream_backend_append_head (EnsUpstreamBackend *backend, GUri *uri, gboolean stream, GString *out);
/* Connections of the backend reading the rest of an answer nobody waits for. */
guint ens_upstream_backend_draining (EnsUpstreamBackend *backend);

/* (transfer none) the name sent upstream for @requested (NULL or "": the
 * backend's default model), through model-map; NULL when there is none. */
const char *ens_upstream_backend_model (EnsUpstreamBackend *backend, const char *requested);

G_END_DECLS
