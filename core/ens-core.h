/* ens-core.h — the daemon's private interfaces between its own modules.
 * Nothing here is ABI; plugins see only include/ensemble/. */
#pragma once

#include "ens-glob.h"
#include <ensemble/ensemble.h>

G_BEGIN_DECLS

/* ---------------------------------------------------------------- message */

EnsMessage *ens_message_new (const EnsMessageInit *init);
EnsMessage *ens_message_ref (EnsMessage *msg);
void ens_message_unref (EnsMessage *msg);
GBytes *ens_message_encode (EnsMessage *msg, EnsEncodeFunc encode);
GBytes *ens_message_encode_native (EnsMessage *msg);
EnsMessage *ens_message_parse_native (const char *text, gsize len);
/* A REPLY/ERROR a client sent as an agent's answer, or an error made by the
 * parser that goes straight back to its sender. */
gboolean ens_message_is_bounce (EnsMessage *msg);
/* An event from another node (publish_remote): taps never see it. */
void ens_message_set_remote (EnsMessage *msg);
gboolean ens_message_is_remote (EnsMessage *msg);
void ens_message_set_seq (EnsMessage *msg, guint64 seq);
/* Only before the message is shared: names the sender. */
void ens_message_set_from (EnsMessage *msg, const char *from);
gboolean ens_message_id_is_number (EnsMessage *msg);
/* (transfer full) a REPLY / ERROR answering @request, from=@from */
EnsMessage *ens_message_new_reply (EnsMessage *request, JsonNode *data);
EnsMessage *ens_message_new_error (EnsMessage *request, const char *code, const char *message,
                                   JsonNode *details);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsMessage, ens_message_unref)

/* JSON helpers shared by the core */
void ens_json_append (GString *out, JsonNode *node);
void ens_json_append_string (GString *out, const char *s);
void ens_json_append_timestamp (GString *out, gint64 real_time_us);
/* @member = the timestamp as a string, in the same ISO 8601 form. */
void ens_json_set_timestamp (JsonObject *obj, const char *member, gint64 real_time_us);
char *ens_json_to_string (JsonNode *node);
/* Untrusted input: depth-limited, one value per text. (transfer full) */
JsonNode *ens_json_parse (const char *text, gsize len, GError **error);
const char *ens_json_get_string (JsonObject *obj, const char *member);
/* Returns a node holding a new empty object (transfer full). */
JsonNode *ens_json_object_node (JsonObject **out_obj);

/* ---------------------------------------------------------------- state */

typedef struct _EnsState EnsState;
EnsState *ens_state_open (const char *dir, GError **error);
void ens_state_close (EnsState *state);
gboolean ens_state_set (EnsState *state, const char *scope, const char *key, const char *value, GError **error);
char *ens_state_get (EnsState *state, const char *scope, const char *key, GError **error);
gboolean ens_state_delete (EnsState *state, const char *scope, const char *key, gboolean *existed, GError **error);
/* (transfer full) keys of @scope starting with @prefix, sorted, at most @limit */
GPtrArray *ens_state_list (EnsState *state, const char *scope, const char *prefix, guint limit, GError **error);
gint64 ens_state_next_sequence (EnsState *state, const char *name, GError **error);

/* ---------------------------------------------------------------- config */

typedef struct _EnsConfig EnsConfig;
typedef void (*EnsConfigChanged) (const char *key, gpointer data);
/* TRUE when this binary runs from the build tree (plugins and schema there). */
gboolean ens_running_uninstalled (void);
/* (transfer full) an install-time path, relocated if this binary runs from
 * a moved installation tree. */
char *ens_installed_path (const char *configured);
/* @keyfile: NULL for the default GSettings backend. */
EnsConfig *ens_config_new (const char *keyfile, GError **error);
void ens_config_free (EnsConfig *config);
/* A command-line override for this run; @value is (transfer floating/full). */
void ens_config_override (EnsConfig *config, const char *key, GVariant *value);
/* (transfer full) effective value; NULL for an unknown key. */
GVariant *ens_config_get (EnsConfig *config, const char *key);
guint ens_config_get_uint (EnsConfig *config, const char *key);
char *ens_config_get_path (EnsConfig *config, const char *key);
char **ens_config_get_strv (EnsConfig *config, const char *key);
/* Calls @func for each key whose value in force changes while the daemon
 * runs (not for keys the command line overrides, not for invalid edits). */
void ens_config_watch (EnsConfig *config, EnsConfigChanged func, gpointer data);
/* (transfer full) settings of another schema on the same backend; NULL if
 * the schema is unknown or @path is not "/.../" */
GSettings *ens_config_settings_new (EnsConfig *config, const char *schema_id, const char *path);

/* ---------------------------------------------------------------- plugins */

#define ENS_TYPE_PLUGIN (ens_plugin_get_type ())
G_DECLARE_FINAL_TYPE (EnsPlugin, ens_plugin, ENS, PLUGIN, GObject)

const EnsPluginDesc *ens_plugin_get_desc (EnsPlugin *plugin);
const char *ens_plugin_get_file (EnsPlugin *plugin);
gpointer ens_plugin_get_instance (EnsPlugin *plugin);
JsonNode *ens_plugin_describe (EnsPlugin *plugin);
const char *ens_plugin_kind_name (EnsPluginKind kind);

typedef struct _EnsLoader EnsLoader;
EnsLoader *ens_loader_new (const EnsHost *host);
void ens_loader_free (EnsLoader *loader);
/* Loads one file.  Returns (transfer none) the started plugin or NULL with
 * @error naming the reason; the caller logs it. Used by tests directly. */
EnsPlugin *ens_loader_load_file (EnsLoader *loader, const char *path, char **disabled, GError **error);
/* Scans folders (and their immediate subfolders), loads and starts every
 * plugin in kind order; refusals are logged, never fatal. */
void ens_loader_load_dirs (EnsLoader *loader, char **dirs, char **disabled);
/* Stops every plugin in reverse start order. */
void ens_loader_stop_all (EnsLoader *loader);
/* One plugin, while the daemon runs (live settings). */
gboolean ens_loader_stop_plugin (EnsLoader *loader, const char *id);
gboolean ens_loader_start_id (EnsLoader *loader, char **dirs, const char *id);
gboolean ens_loader_restart (EnsLoader *loader, char **dirs, const char *id);
GPtrArray *ens_loader_plugins (EnsLoader *loader); /* (transfer none) of EnsPlugin */
guint ens_loader_refused_count (EnsLoader *loader);

/* ---------------------------------------------------------------- bus */

#define ENS_TYPE_BUS (ens_bus_get_type ())
G_DECLARE_FINAL_TYPE (EnsBus, ens_bus, ENS, BUS, GObject)

/* Who receives events: a client or a plugin callback. */
typedef struct _EnsSubscriber EnsSubscriber;
typedef void (*EnsSubscriberFunc) (EnsMessage *event, gpointer data);

EnsBus *ens_bus_new (void);
EnsSubscriber *ens_subscriber_new (EnsSubscriberFunc func, gpointer data, GDestroyNotify notify);
/* Drops every subscription of @sub and frees it. */
void ens_subscriber_free (EnsBus *bus, EnsSubscriber *sub);
/* Returns FALSE if @sub already has @pattern. */
gboolean ens_bus_subscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern);
gboolean ens_bus_unsubscribe (EnsBus *bus, EnsSubscriber *sub, const char *pattern);
guint ens_subscriber_count (EnsSubscriber *sub);
/* (transfer none) patterns of @sub */
GPtrArray *ens_subscriber_patterns (EnsSubscriber *sub);
/* Assigns the sequence number and delivers @event (transfer none) to every
 * matching subscriber once; @target, when not NULL, also receives it
 * directly (targeted delivery).  Returns the number of deliveries. */
guint ens_bus_publish (EnsBus *bus, EnsMessage *event, EnsSubscriber *target);
guint64 ens_bus_last_seq (EnsBus *bus);
/* Interest: which topics and patterns have subscribers (bridges). */
guint ens_bus_watch_interest (EnsBus *bus, EnsInterestFunc func, gpointer data);
void ens_bus_unwatch_interest (EnsBus *bus, guint id);
/* Taps: see every locally originated event after delivery (bridges). */
guint ens_bus_tap (EnsBus *bus, EnsSubscriberFunc func, gpointer data, GDestroyNotify notify);
void ens_bus_untap (EnsBus *bus, guint id);

/* ---------------------------------------------------------------- daemon */

typedef struct _EnsDaemon EnsDaemon;

typedef struct {
  guint64 requests;
  guint64 errors;
  guint64 events_published;
  guint64 events_delivered;
  guint64 agent_requests;
  guint64 agent_timeouts;
} EnsCounters;

struct _EnsDaemon {
  EnsConfig *config;
  EnsState *state;
  EnsBus *bus;
  EnsLoader *loader;
  GMainLoop *loop;
  char *node_id;
  gint64 started_us;       /* monotonic */
  gint64 started_real_us;
  GHashTable *clients;     /* id -> EnsClient */
  GHashTable *agents;      /* name -> EnsAgent */
  GHashTable *pending;     /* internal request id -> EnsPending */
  guint64 next_client;
  guint64 next_request;
  guint32 default_timeout_ms;
  EnsCounters counters;
  gboolean shutting_down;
};

/* Completions (ens-completion.c). */
typedef struct {
  void (*chunk) (gpointer data, const char *request_id, const char *text);
  void (*event) (gpointer data, const char *request_id, const char *type, JsonNode *payload);
  /* @result (transfer none) or NULL with @code and @message */
  void (*done) (gpointer data, const char *request_id, JsonNode *result, const char *code, const char *message);
} EnsCompletionHooks;

void ens_completion_init (void);
void ens_completion_cancel_all (void);
guint ens_completion_running (void);
void ens_completion_shutdown (void);
void ens_completion_add_provider (EnsPlugin *plugin);
void ens_completion_add_router (EnsPlugin *plugin);
void ens_completion_forget_plugin (EnsPlugin *plugin);
/* Queues a completion; *answer is the ack (or the error, and NULL is
 * returned).  Results go to @client_id (may be NULL) and to @hooks. */
EnsCompletion *ens_completion_submit (EnsDaemon *d, EnsMessage *request, JsonObject *params, EnsClient *client,
                                      const char *client_id, const EnsCompletionHooks *hooks, gpointer hooks_data,
                                      EnsMessage **answer);
gboolean ens_completion_pump_idle (gpointer data);
const char *ens_completion_id (EnsCompletion *c);
EnsMessage *ens_completion_route (EnsDaemon *d, EnsMessage *request, JsonObject *params);
EnsMessage *ens_completion_cancel (EnsDaemon *d, EnsMessage *request, JsonObject *params, EnsClient *client,
                                   gboolean admin);
void ens_completion_cancel_id (const char *request_id);
void ens_completion_client_gone (EnsClient *client);
JsonNode *ens_completion_budget (EnsDaemon *d);
JsonNode *ens_completion_providers (void);
JsonNode *ens_completion_stats (EnsDaemon *d);
void ens_completion_chunk (EnsCompletion *c, const char *text);
void ens_completion_event (EnsCompletion *c, const char *type, JsonNode *payload);
void ens_completion_finish (EnsCompletion *c, JsonNode *result);
void ens_completion_fail (EnsCompletion *c, const char *code, const char *message);

/* Publishes an event from the daemon itself; @to resolves like publish's. */
void ens_dispatch_publish (const char *from, const char *topic, JsonNode *data, const char *to);
/* Host entries for bridges (ens-dispatch.c). */
guint ens_dispatch_plugin_tap (EnsPlugin *self, EnsEventFunc func, gpointer user_data, GDestroyNotify notify);
void ens_dispatch_plugin_untap (EnsPlugin *self, guint id);
void ens_dispatch_publish_remote (EnsPlugin *self, const EnsMessageInit *init);
gboolean ens_dispatch_agent_add (EnsPlugin *self, const char *name, const char *const *actions, JsonNode *info,
                                 gboolean remote, EnsAgentHandleFunc handle, gpointer handle_data);
void ens_dispatch_agent_remove (EnsPlugin *self, const char *name);
guint ens_dispatch_watch_interest (EnsPlugin *self, EnsInterestFunc func, gpointer user_data);
void ens_dispatch_unwatch_interest (EnsPlugin *self, guint id);
/* The daily budget through a plugin's ledger (ens-completion.c). */
void ens_completion_set_ledger (EnsPlugin *self, const EnsBudgetLedger *ledger, gpointer ledger_data);

/* Sessions (ens-session.c). */
void ens_session_init (EnsDaemon *d);
void ens_session_shutdown (void);
EnsMessage *ens_session_spawn (EnsDaemon *d, EnsMessage *request, JsonObject *params);
EnsMessage *ens_session_execute (EnsDaemon *d, EnsMessage *request, JsonObject *params);
EnsMessage *ens_session_status (EnsMessage *request, JsonObject *params);
EnsMessage *ens_session_stop (EnsMessage *request, JsonObject *params);
EnsMessage *ens_session_list (EnsMessage *request);
guint ens_session_count (gboolean active_only);

/* Settings that change while the daemon runs (ens-live.c). */
void ens_live_start (EnsDaemon *d);

/* D-Bus (ens-dbus.c); all of these are no-ops without a bus. */
gboolean ens_dbus_start (EnsDaemon *d, GBusType bus_type);
void ens_dbus_shutdown (void);
void ens_dbus_plugin_loaded (EnsPlugin *plugin);
void ens_dbus_plugin_stopped (EnsPlugin *plugin);
void ens_dbus_plugin_failed (const char *file, const char *reason);
void ens_dbus_export_sessions (JsonNode *list);

/* Spawned agent processes (ens-process.c). */
EnsMessage *ens_process_spawn (EnsDaemon *d, EnsMessage *request, JsonObject *params);
EnsMessage *ens_process_list (EnsMessage *request);
guint ens_process_running (void);
void ens_process_stop_all (void);

/* The host table handed to plugins (ens-host.c). */
const EnsHost *ens_host_table (void);
EnsDaemon *ens_daemon_get (void);
void ens_daemon_set (EnsDaemon *daemon);

/* Dispatch of core verbs and agent requests (ens-dispatch.c). */
void ens_dispatch_init (EnsDaemon *d);
void ens_dispatch_shutdown (EnsDaemon *d);
void ens_dispatch_client_submit (EnsClient *client, EnsMessage *msg);
EnsClient *ens_dispatch_client_new (EnsPlugin *transport, const EnsClientSink *sink, gpointer sink_data,
                                    guint32 flags, const char *peer);
void ens_dispatch_client_close (EnsClient *client);
const char *ens_dispatch_client_id (EnsClient *client);
void ens_dispatch_plugin_request (EnsPlugin *self, const char *agent, const char *action, JsonNode *data,
                                  guint32 timeout_ms, EnsReplyFunc func, gpointer user_data);
void ens_dispatch_plugin_publish (EnsPlugin *self, const char *topic, JsonNode *data, const char *to);
guint ens_dispatch_plugin_subscribe (EnsPlugin *self, const char *pattern, EnsEventFunc func,
                                     gpointer user_data, GDestroyNotify notify);
void ens_dispatch_plugin_unsubscribe (EnsPlugin *self, guint id);
void ens_dispatch_plugin_forget (EnsPlugin *self);
void ens_dispatch_respond (EnsResponder *responder, JsonNode *data);
void ens_dispatch_respond_error (EnsResponder *responder, const char *code, const char *message,
                                 JsonNode *details);
/* Registers the agent of an agent plugin; FALSE with @error if taken. */
gboolean ens_dispatch_register_plugin_agent (EnsPlugin *plugin, GError **error);
void ens_dispatch_disconnect_all (EnsDaemon *d, const char *reason);
/* (transfer full) the health object */
JsonNode *ens_dispatch_health (EnsDaemon *d);

G_END_DECLS
