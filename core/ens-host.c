/* ens-host.c — the EnsHost table: the only door from a plugin into the
 * daemon.  Thin: each entry forwards to the part that owns the service.
 *
 * Entries that carry a handle (a client, a responder, a completion) find
 * their owner through it.  The others (node_id() has no argument at all)
 * reach the daemon's parts through the one binding below: a C vtable
 * called by plugins has nowhere else to keep it. */
#include "ens-host-private.h"
#include "ens-json.h"
#include "ens-message-private.h"

static EnsHostServices bound;

static void
host_log (EnsPlugin *self, GLogLevelFlags level, const char *message)
{
  const char *id = self ? ens_plugin_get_id (self) : "plugin";

  /* Each plugin logs in its own domain, its id: G_MESSAGES_DEBUG=transport-http
   * (or ensembled --debug=transport-http) shows that plugin's debug lines. */
  g_log (id, level & G_LOG_LEVEL_MASK & ~(G_LOG_LEVEL_ERROR), "%s: %s", id, message);
}

static GVariant *
host_config_get (EnsPlugin *self, const char *key)
{
  (void) self;
  return ens_config_get (bound.config, key);
}

static const char *
host_plugin_id (EnsPlugin *self)
{
  return ens_plugin_get_id (self);
}

/* ------------------------------------------------------------------ connections */

static EnsClient *
host_client_new (EnsPlugin *transport, const EnsClientSink *sink, gpointer sink_data, guint32 flags,
                 const char *peer)
{
  return ens_clients_add (bound.clients, transport, sink, sink_data, flags, peer);
}

static void
host_client_submit (EnsClient *client, EnsMessage *msg)
{
  ens_dispatch_client_submit (bound.dispatch, client, msg);
}

/* ------------------------------------------------------------------ the bus */

static void
host_publish (EnsPlugin *self, const char *topic, JsonNode *data, const char *to)
{
  ens_plugin_bus_publish (bound.plugin_bus, self, topic, data, to);
}

static guint
host_subscribe (EnsPlugin *self, const char *pattern, EnsEventFunc func, gpointer user_data, GDestroyNotify notify)
{
  return ens_plugin_bus_subscribe (bound.plugin_bus, self, pattern, func, user_data, notify);
}

static void
host_unsubscribe (EnsPlugin *self, guint id)
{
  ens_plugin_bus_unsubscribe (bound.plugin_bus, self, id);
}

static void
host_request (EnsPlugin *self, const char *agent, const char *action, JsonNode *data, guint32 timeout_ms,
              EnsReplyFunc func, gpointer user_data)
{
  ens_dispatch_plugin_request (bound.dispatch, self, agent, action, data, timeout_ms, func, user_data);
}

static guint
host_tap (EnsPlugin *self, EnsEventFunc func, gpointer user_data, GDestroyNotify notify)
{
  return ens_plugin_bus_tap (bound.plugin_bus, self, func, user_data, notify);
}

static void
host_untap (EnsPlugin *self, guint id)
{
  ens_plugin_bus_untap (bound.plugin_bus, self, id);
}

static void
host_publish_remote (EnsPlugin *self, const EnsMessageInit *init)
{
  (void) self;
  ens_events_publish_remote (bound.events, init);
}

static guint
host_watch_interest (EnsPlugin *self, EnsInterestFunc func, gpointer user_data)
{
  return ens_plugin_bus_watch_interest (bound.plugin_bus, self, func, user_data);
}

static void
host_unwatch_interest (EnsPlugin *self, guint id)
{
  ens_plugin_bus_unwatch_interest (bound.plugin_bus, self, id);
}

/* ------------------------------------------------------------------ state */

static char *
state_scope (EnsPlugin *self, const char *scope)
{
  return g_strconcat ("plugin:", ens_plugin_get_id (self), ":", scope ? scope : "", NULL);
}

static gboolean
host_state_set (EnsPlugin *self, const char *scope, const char *key, const char *value, GError **error)
{
  g_autofree char *s = state_scope (self, scope);
  return ens_state_set (bound.state, s, key, value, error);
}

static char *
host_state_get (EnsPlugin *self, const char *scope, const char *key, GError **error)
{
  g_autofree char *s = state_scope (self, scope);
  return ens_state_get (bound.state, s, key, error);
}

static gboolean
host_state_delete (EnsPlugin *self, const char *scope, const char *key, GError **error)
{
  g_autofree char *s = state_scope (self, scope);
  return ens_state_delete (bound.state, s, key, NULL, error);
}

static gint64
host_state_next_sequence (EnsPlugin *self, const char *name, GError **error)
{
  g_autofree char *s = state_scope (self, name);
  return ens_state_next_sequence (bound.state, s, error);
}

static GSettings *
host_settings_new (EnsPlugin *self, const char *schema_id, const char *path)
{
  (void) self;
  return ens_config_settings_new (bound.config, schema_id, path);
}

/* ------------------------------------------------------------------ the rest */

static const char *
host_node_id (void)
{
  return bound.node_id;
}

static gboolean
host_agent_add (EnsPlugin *self, const char *name, const char *const *actions, JsonNode *info, gboolean remote,
                EnsAgentHandleFunc handle, gpointer handle_data)
{
  return ens_agents_add_served (bound.agents, self, name, actions, info, remote, handle, handle_data);
}

static void
host_agent_remove (EnsPlugin *self, const char *name)
{
  ens_agents_remove_served (bound.agents, self, name);
}

static void
host_budget_ledger_set (EnsPlugin *self, const EnsBudgetLedger *ledger, gpointer ledger_data)
{
  ens_budget_set_ledger (bound.budget, self, ledger, ledger_data);
}

static const EnsHost host_table = {
  .struct_size = sizeof (EnsHost),
  .abi_major = ENS_ABI_MAJOR,
  .abi_minor = ENS_ABI_MINOR,
  .log = host_log,
  .config_get = host_config_get,
  .plugin_id = host_plugin_id,
  .message_new = ens_message_new,
  .message_ref = ens_message_ref,
  .message_unref = ens_message_unref,
  .message_encode = ens_message_encode,
  .encode_native = ens_message_encode_native,
  .parse_native = ens_message_parse_native,
  .client_new = host_client_new,
  .client_close = ens_client_close,
  .client_id = ens_client_id,
  .client_submit = host_client_submit,
  .publish = host_publish,
  .subscribe = host_subscribe,
  .unsubscribe = host_unsubscribe,
  .request = host_request,
  .respond = ens_responder_respond,
  .respond_error = ens_responder_respond_error,
  .state_set = host_state_set,
  .state_get = host_state_get,
  .state_delete = host_state_delete,
  .state_next_sequence = host_state_next_sequence,
  .settings_new = host_settings_new,
  .json_parse = ens_json_parse,
  .json_to_string = ens_json_to_string,
  .completion_chunk = ens_completion_chunk,
  .completion_event = ens_completion_event,
  .completion_finish = ens_completion_finish,
  .completion_fail = ens_completion_fail,
  .node_id = host_node_id,
  .tap = host_tap,
  .untap = host_untap,
  .publish_remote = host_publish_remote,
  .agent_add = host_agent_add,
  .agent_remove = host_agent_remove,
  .budget_ledger_set = host_budget_ledger_set,
  .watch_interest = host_watch_interest,
  .unwatch_interest = host_unwatch_interest,
  .message_is_bounce = ens_message_is_bounce,
  .message_from_native = ens_message_from_native,
  .message_data = ens_message_get_data,
  .message_data_text = ens_message_get_data_text,
  .json_check = ens_json_check,
  .json_scan_members = ens_json_scan_members,
  .json_scan_checked_members = ens_json_scan_checked_members,
};

const EnsHost *
ens_host_table (const EnsHostServices *services)
{
  bound = *services;
  return &host_table;
}
