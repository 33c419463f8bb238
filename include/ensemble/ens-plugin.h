/* ens-plugin.h — what a plugin exports: one descriptor, found through one symbol.
 *
 * ABI rule (as in GStreamer): the host loads a plugin when
 *   desc->abi_major == ENS_ABI_MAJOR && desc->abi_minor <= ENS_ABI_MINOR
 * and desc->struct_size is at least the size that minor defined.  Fields are
 * only ever appended; a new field is read only when struct_size covers it
 * (ENS_STRUCT_HAS).  Every other symbol of a plugin stays hidden.
 *
 * Minors: 1.0 the first; 1.1 appends EnsHost.message_is_bounce; 1.2
 * EnsHost.message_from_native; 1.3 EnsAgentVTable.tools (actions with
 * descriptions and input schemas); 1.4 data carried as text
 * (EnsMessageInit.data_text, EnsHost.message_data, message_data_text,
 * json_check, ENS_PLUGIN_FLAG_LAZY_DATA); 1.5 JSON read without a tree
 * (EnsHost.json_scan_members, json_scan_checked_members,
 * ENS_CLIENT_FLAG_LAZY_DATA).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define ENS_ABI_MAJOR 1
#define ENS_ABI_MINOR 5

/* The one exported symbol, and its type. */
#define ENS_PLUGIN_QUERY_SYMBOL "ens_plugin_query"

/* TRUE when a sized struct (first member: guint32 struct_size) is large
 * enough to contain @field. */
#define ENS_STRUCT_HAS(ptr, type, field) \
  ((ptr)->struct_size >= G_STRUCT_OFFSET (type, field) + sizeof (((type *) 0)->field))

typedef enum {
  ENS_PLUGIN_KIND_TRANSPORT = 1,
  ENS_PLUGIN_KIND_AGENT = 2,
  ENS_PLUGIN_KIND_ROUTER = 3,
  ENS_PLUGIN_KIND_PROVIDER = 4,
} EnsPluginKind;

typedef enum {
  ENS_PLUGIN_FLAG_NONE = 0,
  /* The module may be dlclose()d after stop(); without it, it stays resident. */
  ENS_PLUGIN_FLAG_UNLOADABLE = 1 << 0,
  /* Since 1.4: the plugin reads message data only through
   * host->message_data() (or message_data_text()), so the host may hand it
   * messages (sink deliver, subscriptions, taps) whose data is still text
   * and EnsMessage.data still NULL.  Without it, the host parses the data
   * before the plugin sees the message. */
  ENS_PLUGIN_FLAG_LAZY_DATA = 1 << 1,
} EnsPluginFlags;

typedef struct _EnsHost EnsHost;           /* ens-host.h */
typedef struct _EnsPlugin EnsPlugin;       /* opaque: the host's handle on one loaded plugin */
typedef struct _EnsMessage EnsMessage;     /* ens-message.h */
typedef struct _EnsResponder EnsResponder; /* opaque: answers exactly one request */

/* Kind ENS_PLUGIN_KIND_AGENT: an in-process agent reachable on the bus as
 * @name.  handle() is called on the main loop for every request addressed to
 * the agent; it must answer exactly once through host->respond() or
 * host->respond_error(), now or later.  @request is (transfer none): ref it to
 * keep it past the call.  @responder is owned by the host until answered. */
typedef struct {
  guint32 struct_size;
  const char *name;
  const char *const *actions; /* NULL-terminated, shown in listings */
  void (*handle) (gpointer instance, EnsMessage *request, EnsResponder *responder);
  /* Since ABI 1.3, may be NULL: what the actions are, as JSON text: a list
   * of {name, description?, input_schema?}, input_schema a JSON Schema of
   * the request's data ("type": "object").  The host checks every request
   * to an action with a schema against it and answers INVALID_PARAMETERS
   * ({field, expected}) itself; handle() sees only what fits.  Listed with
   * the agent ("tools") and served as MCP tools.  Actions named here need
   * not be in @actions.  A malformed list refuses the plugin. */
  const char *tools;
} EnsAgentVTable;

/* Kind ENS_PLUGIN_KIND_ROUTER: a routing policy, chosen by the router-policy
 * setting through @name.  choose() ranks the candidates for one request:
 *   @request (transfer none): {token_count, task_type, priority ("high" |
 *     "medium" | "low"), max_latency (ms, 0 = none), model?,
 *     budget_remaining (USD, < 0 = unlimited)}
 *   @candidates (transfer none): array of backends, each {name, provider,
 *     models, quality (0..1), cost_per_1k (USD per 1000 tokens),
 *     latency_ms (observed moving average), error_rate (0..1),
 *     context_window, capabilities, local}
 * Returns (transfer full) {provider: the chosen backend's name, reasoning,
 * estimated_cost, confidence (0..1), ranking: [backend names, best first,
 * the fallback order]}, or NULL with @error set when none fits. */
typedef struct {
  guint32 struct_size;
  const char *name;
  JsonNode *(*choose) (gpointer instance, JsonNode *request, JsonNode *candidates, GError **error);
} EnsRouterVTable;

typedef struct _EnsCompletion EnsCompletion; /* opaque: one running completion */

/* How a completion ends badly: the codes a provider reports through
 * host->completion_fail(), and the core in a failed COMPLETION_RESULT
 * ({code: "COMPLETION_FAILED", reason: one of these, error: text}). */
#define ENS_COMPLETION_FAILED "COMPLETION_FAILED"
/* Reported by providers.  The first five make the core try the next backend
 * of the router's ranking, as long as nothing was streamed yet. */
#define ENS_COMPLETION_ERR_UPSTREAM "UPSTREAM_ERROR"     /* the backend failed, or answered what cannot be read */
#define ENS_COMPLETION_ERR_TIMEOUT "TIMEOUT"             /* the backend took too long */
#define ENS_COMPLETION_ERR_RATE_LIMITED "RATE_LIMITED"   /* the backend said so (HTTP 429) */
#define ENS_COMPLETION_ERR_AUTH_FAILED "AUTH_FAILED"     /* the backend refused the credentials */
#define ENS_COMPLETION_ERR_NOT_CONFIGURED "NOT_CONFIGURED" /* no endpoint, key or command for this backend */
#define ENS_COMPLETION_ERR_CANCELLED "CANCELLED"         /* the cancellable was cancelled */
#define ENS_COMPLETION_ERR_BAD_REQUEST "BAD_REQUEST"     /* the request itself is wrong: no fallback */
/* Reported by the core only. */
#define ENS_COMPLETION_ERR_NO_PROVIDER "NO_PROVIDER"     /* nothing fits, or every fit failed */
#define ENS_COMPLETION_ERR_NO_ROUTER "NO_ROUTER"         /* the router-policy setting names no loaded router */
#define ENS_COMPLETION_ERR_BUDGET_EXCEEDED "BUDGET_EXCEEDED"
#define ENS_COMPLETION_ERR_PROVIDER_STOPPED "PROVIDER_STOPPED"
#define ENS_COMPLETION_ERR_UNKNOWN_MODEL "UNKNOWN_MODEL" /* an error reply to "complete": no backend serves it */
#define ENS_COMPLETION_ERR_UNSUPPORTED_MODEL "UNSUPPORTED_MODEL" /* an error reply: served, not for this kind of request */

/* Kind ENS_PLUGIN_KIND_PROVIDER: answers completions on one or more
 * backends (e.g. two OpenAI-compatible endpoints served by one plugin).
 * backends() returns (transfer full) an array of {name, models, quality,
 * cost_per_1k_input, cost_per_1k_output, latency_ms, context_window,
 * capabilities, max_concurrency, local, embedding_models?}; called at start
 * and when the configuration changes.  A backend with embedding_models (a
 * non-empty list) makes embeddings too.
 * complete() starts one completion on @backend:
 *   @request (transfer none): {model, messages: [{role, content}],
 *     max_tokens?, temperature?, stream (bool), tools?}; or, only on a
 *     backend with embedding_models, {kind: "embeddings", model, input:
 *     [string...], dimensions?}, finished with {embeddings: [[number...]...]
 *     (one per input, in order), model, usage: {input_tokens}}
 *   progress goes to host->completion_chunk / completion_event, and the end,
 *   exactly once, to host->completion_finish or host->completion_fail;
 *   @cancellable (transfer none) is cancelled when the requester cancels or
 *   goes away: stop upstream work and report completion_fail
 *   (ENS_COMPLETION_ERR_CANCELLED).
 * @completion stays valid until finish/fail has been called. */
typedef struct {
  guint32 struct_size;
  JsonNode *(*backends) (gpointer instance);
  void (*complete) (gpointer instance, const char *backend, JsonNode *request, EnsCompletion *completion,
                    GCancellable *cancellable);
} EnsProviderVTable;

/* The descriptor a plugin returns from ens_plugin_query().  Static storage,
 * owned by the plugin, valid while the module is loaded. */
typedef struct {
  guint32 abi_major;
  guint32 abi_minor;
  guint32 struct_size;
  EnsPluginKind kind;
  const char *id;          /* unique, "<kind>-<name>", e.g. "transport-unix" */
  const char *version;
  const char *description;
  guint32 flags;           /* EnsPluginFlags */

  /* Called once on the main loop.  Returns (transfer full) the instance, or
   * NULL with @error set, in which case stop() is not called. @host and
   * @self stay valid until stop() returns. */
  gpointer (*init) (const EnsHost *host, EnsPlugin *self, GError **error);
  /* Undo everything init() and later calls set up: sources, callbacks,
   * subscriptions, files.  After it returns the host holds no pointer into
   * the plugin and the plugin none into the host. Frees @instance. */
  void (*stop) (gpointer instance);
  /* Optional: (transfer full) a JSON object shown in health and listings. */
  JsonNode *(*describe) (gpointer instance);
  /* Kind-specific vtable, NULL for transports: EnsAgentVTable,
   * EnsRouterVTable or EnsProviderVTable, matching @kind. */
  const void *vtable;
} EnsPluginDesc;

typedef const EnsPluginDesc *(*EnsPluginQueryFunc) (void);

#define ENS_PLUGIN_EXPORT __attribute__ ((visibility ("default")))

/* Defines the one exported symbol of a plugin.  Usage, at file scope:
 *   ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-unix", "1.0",
 *                      "Unix sockets", ENS_PLUGIN_FLAG_NONE, my_init, my_stop,
 *                      my_describe, NULL)
 * @flags_ is a set of EnsPluginFlags. */
#define ENS_PLUGIN_DEFINE(kind_, id_, version_, description_, flags_, init_, stop_, describe_, vtable_) \
  ENS_PLUGIN_EXPORT const EnsPluginDesc *ens_plugin_query (void);                              \
  const EnsPluginDesc *ens_plugin_query (void)                                                 \
  {                                                                                            \
    static const EnsPluginDesc desc = {                                                        \
      .abi_major = ENS_ABI_MAJOR,                                                              \
      .abi_minor = ENS_ABI_MINOR,                                                              \
      .struct_size = sizeof (EnsPluginDesc),                                                   \
      .kind = (kind_),                                                                         \
      .id = (id_),                                                                             \
      .version = (version_),                                                                   \
      .description = (description_),                                                          \
      .flags = (flags_),                                                                       \
      .init = (init_),                                                                         \
      .stop = (stop_),                                                                         \
      .describe = (describe_),                                                                 \
      .vtable = (vtable_),                                                                     \
    };                                                                                         \
    return &desc;                                                                              \
  }

/* Error domain for plugin loading and for errors plugins report to the host. */
#define ENS_PLUGIN_ERROR (ens_plugin_error_quark ())
static inline GQuark
ens_plugin_error_quark (void)
{
  return g_quark_from_static_string ("ens-plugin-error-quark");
}

typedef enum {
  ENS_PLUGIN_ERROR_FAILED,
  ENS_PLUGIN_ERROR_NO_SYMBOL,
  ENS_PLUGIN_ERROR_ABI,
  ENS_PLUGIN_ERROR_DUPLICATE,
  ENS_PLUGIN_ERROR_UNSAFE_FILE,
  ENS_PLUGIN_ERROR_INIT,
  ENS_PLUGIN_ERROR_DISABLED,
} EnsPluginError;

G_END_DECLS
