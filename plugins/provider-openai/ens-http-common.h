/* ens-http-common.h — what the HTTP provider plugins (provider-openai,
 * provider-anthropic) share: backend configuration, one upstream call with
 * timeout, cancellation, retries and an SSE reader, error mapping, and small
 * JSON helpers.  Compiled into each module separately (all symbols stay
 * hidden), so nothing here is part of the plugin ABI.
 *
 * Everything runs on the main loop. */
#pragma once

#include <ensemble/ensemble.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* One configured backend (an org.ensemble.Provider instance).  Ref-counted
 * because a running call keeps its backend (and so its session) alive when
 * the configuration is reloaded under it. */
typedef struct {
  gatomicrefcount ref;
  char *name;
  char *base_url;       /* without a trailing '/'; "" when not configured */
  char *api_key;        /* NULL when none is configured */
  char **models;        /* first = default */
  GHashTable *model_map; /* requested name -> upstream name */
  char **capabilities;
  double quality, cost_input, cost_output;
  guint latency_ms, context_window, max_concurrency, timeout_ms, max_retries;
  SoupSession *session; /* one per backend: its own connection pool */
} EnsHttpBackend;

EnsHttpBackend *ens_http_backend_ref (EnsHttpBackend *backend);
void ens_http_backend_unref (EnsHttpBackend *backend);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsHttpBackend, ens_http_backend_unref)

/* (transfer none) the name sent upstream for @requested (NULL or "": the
 * backend's default model), through model-map; NULL when there is none. */
const char *ens_http_backend_upstream_model (EnsHttpBackend *backend, const char *requested);

typedef struct _EnsHttpCall EnsHttpCall;

/* One provider plugin instance: the host, the backends, running calls. */
typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  const char *id;       /* the plugin's own id, static */
  GPtrArray *backends;  /* EnsHttpBackend*, owned */
  GHashTable *calls;    /* EnsHttpCall* not yet finished (set, one ref each) */
  GHashTable *drains;   /* bodies of finished answers still being closed */
} EnsHttpProvider;

/* (transfer full) a provider with its backends loaded from the
 * configuration: every NAME of the "providers" setting whose plugin key is
 * our plugin id (host->plugin_id) or @id. */
EnsHttpProvider *ens_http_provider_new (const EnsHost *host, EnsPlugin *self, const char *id);
/* Fails every running call with CANCELLED, removes its sources and frees
 * @provider.  Pending libsoup callbacks only drop their references later. */
void ens_http_provider_free (EnsHttpProvider *provider);
/* Reloads the configuration and returns (transfer full) the backends array
 * for EnsProviderVTable.backends(). */
JsonNode *ens_http_provider_backends (EnsHttpProvider *provider);
/* (transfer none) the backend called @name, or NULL. */
EnsHttpBackend *ens_http_provider_find (EnsHttpProvider *provider, const char *name);
/* (transfer full) a JSON object describing the plugin, for describe(). */
JsonNode *ens_http_provider_describe (EnsHttpProvider *provider);

/* What a provider plugs into a call.  Each callback runs on the main loop
 * while the call is still running; it may end the call (finish or fail). */
typedef struct {
  /* One server-sent event of a streamed answer; @event is NULL when the
   * upstream sent no "event:" line (OpenAI does not). */
  void (*sse_event) (EnsHttpCall *call, const char *event, const char *data);
  /* The stream ended without the provider having ended the call. */
  void (*sse_eof) (EnsHttpCall *call);
  /* A whole 2xx body of a non-streamed answer (or of a stream request the
   * upstream answered in one piece).  Must end the call. */
  void (*plain_body) (EnsHttpCall *call, const char *body, gsize len);
} EnsHttpCallClass;

/* (transfer none: the call lives until it ends and its I/O is closed) a new
 * call reporting to @completion.  @backend may be NULL for a call that only
 * fails (ens_http_call_fail_later).  @cancellable (transfer none, may be NULL)
 * is the host's.  @data (transfer full) is the provider's per-call state,
 * freed with @free_data. */
EnsHttpCall *ens_http_call_new (EnsHttpProvider *provider, EnsHttpBackend *backend, EnsCompletion *completion,
                                GCancellable *cancellable, const EnsHttpCallClass *klass, gpointer data,
                                GDestroyNotify free_data);
/* POSTs @body (JSON) to @url with @headers (NULL-terminated name, value
 * pairs; a NULL value skips the header), retrying 429/5xx answers. */
void ens_http_call_send (EnsHttpCall *call, const char *url, const char *const *headers, GBytes *body,
                         gboolean stream);
/* Ends the call with @code from an idle callback: for errors found before
 * anything was sent, so complete() never reports from inside itself. */
void ens_http_call_fail_later (EnsHttpCall *call, const char *code, const char *message);

gpointer ens_http_call_get_data (EnsHttpCall *call);
EnsHttpBackend *ens_http_call_get_backend (EnsHttpCall *call);
/* TRUE until the call has been finished or failed. */
gboolean ens_http_call_is_running (EnsHttpCall *call);

/* Progress and the end, forwarded to the host.  After finish/fail the call
 * no longer touches the completion. */
void ens_http_call_chunk (EnsHttpCall *call, const char *text);
void ens_http_call_event (EnsHttpCall *call, const char *type, JsonNode *data);
void ens_http_call_finish (EnsHttpCall *call, JsonNode *result);
void ens_http_call_fail (EnsHttpCall *call, const char *code, const char *message);

/* Status code -> completion error code: 401/403 AUTH_FAILED, 429
 * RATE_LIMITED, other 4xx BAD_REQUEST, anything else UPSTREAM_ERROR. */
const char *ens_http_error_code_for_status (guint status);
/* (transfer full) the human message of an upstream error body:
 * {error:{message}} (OpenAI, Anthropic), {error:"..."} (Ollama),
 * {message}, else the text itself, shortened. */
char *ens_http_error_message_from_body (const char *body, gsize len);
/* Delay before retry number @attempt (0-based): 500 ms doubling, at most 8 s. */
guint ens_http_backoff_ms (guint attempt);
/* The wait a retry-after / retry-after-ms header asks for, in ms, or -1. */
gint64 ens_http_retry_after_ms (SoupMessageHeaders *headers);

/* Tool calls as they are assembled from a stream, by index. */
typedef struct _EnsToolCalls EnsToolCalls;
EnsToolCalls *ens_tool_calls_new (void);
void ens_tool_calls_free (EnsToolCalls *calls);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsToolCalls, ens_tool_calls_free)
/* Adds to call @index; @id, @name, @arguments may be NULL.  Returns TRUE the
 * first time the call has a name, i.e. when "tool_call_start" is due. */
gboolean ens_tool_calls_update (EnsToolCalls *calls, gint64 index, const char *id, const char *name,
                                const char *arguments);
/* (transfer full) the tool_call_start event data for @index: {index, id, name}. */
JsonNode *ens_tool_calls_start_event (EnsToolCalls *calls, gint64 index);
/* Number of calls collected. */
guint ens_tool_calls_count (EnsToolCalls *calls);
/* (transfer full) [{id, type:"function", name, arguments}], arguments
 * parsed as JSON when they parse, else the raw text. */
JsonNode *ens_tool_calls_to_json (EnsToolCalls *calls);

/* (transfer full) the completion result {response, model, usage:
 * {input_tokens, output_tokens, estimated?}, finish_reason, tool_calls?};
 * @tool_calls (transfer none) may be NULL or empty.  Negative token counts
 * mean unknown: both are then estimated from @request and @response. */
JsonNode *ens_http_result_new (JsonNode *request, const char *response, const char *model, gint64 input_tokens,
                               gint64 output_tokens, const char *finish_reason, JsonNode *tool_calls);

/* (transfer full) the text of a message content: a string, or the "text"
 * members of an array of parts, joined. */
char *ens_http_content_text (JsonNode *content);
/* (transfer full) @node as compact JSON bytes. */
GBytes *ens_http_json_bytes (JsonNode *node);
/* (transfer none) a string member of @obj, or NULL when absent, null or
 * not a string. */
const char *ens_json_string (JsonObject *obj, const char *member);
/* (transfer none) an object member of @obj, or NULL. */
JsonObject *ens_json_object (JsonObject *obj, const char *member);
/* TRUE with *@out set when @member is a JSON number (integer for _int). */
gboolean ens_json_number (JsonObject *obj, const char *member, double *out);
gboolean ens_json_int (JsonObject *obj, const char *member, gint64 *out);

G_END_DECLS
