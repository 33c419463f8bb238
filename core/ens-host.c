/* ens-host.c — the EnsHost table: the only door from a plugin into the
 * daemon.  Thin: each entry forwards to the module that owns the service. */
#include "ens-core.h"

static EnsDaemon *the_daemon;

EnsDaemon *
ens_daemon_get (void)
{
  return the_daemon;
}

void
ens_daemon_set (EnsDaemon *daemon)
{
  the_daemon = daemon;
}

static void
host_log (EnsPlugin *self, GLogLevelFlags level, const char *message)
{
  const char *id = self ? ens_plugin_get_desc (self)->id : "plugin";

  g_log ("ensembled", level & G_LOG_LEVEL_MASK & ~(G_LOG_LEVEL_ERROR), "%s: %s", id, message);
}

static GVariant *
host_config_get (EnsPlugin *self, const char *key)
{
  (void) self;
  return ens_config_get (the_daemon->config, key);
}

static const char *
host_plugin_id (EnsPlugin *self)
{
  return ens_plugin_get_desc (self)->id;
}

static char *
state_scope (EnsPlugin *self, const char *scope)
{
  return g_strconcat ("plugin:", ens_plugin_get_desc (self)->id, ":", scope ? scope : "", NULL);
}

static gboolean
host_state_set (EnsPlugin *self, const char *scope, const char *key, const char *value, GError **error)
{
  g_autofree char *s = state_scope (self, scope);
  return ens_state_set (the_daemon->state, s, key, value, error);
}

static char *
host_state_get (EnsPlugin *self, const char *scope, const char *key, GError **error)
{
  g_autofree char *s = state_scope (self, scope);
  return ens_state_get (the_daemon->state, s, key, error);
}

static gboolean
host_state_delete (EnsPlugin *self, const char *scope, const char *key, GError **error)
{
  g_autofree char *s = state_scope (self, scope);
  return ens_state_delete (the_daemon->state, s, key, NULL, error);
}

static gint64
host_state_next_sequence (EnsPlugin *self, const char *name, GError **error)
{
  g_autofree char *s = state_scope (self, name);
  return ens_state_next_sequence (the_daemon->state, s, error);
}

static GSettings *
host_settings_new (EnsPlugin *self, const char *schema_id, const char *path)
{
  (void) self;
  return ens_config_settings_new (the_daemon->config, schema_id, path);
}

static const char *
host_node_id (void)
{
  return the_daemon->node_id;
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
  .client_new = ens_dispatch_client_new,
  .client_close = ens_dispatch_client_close,
  .client_id = ens_dispatch_client_id,
  .client_submit = ens_dispatch_client_submit,
  .publish = ens_dispatch_plugin_publish,
  .subscribe = ens_dispatch_plugin_subscribe,
  .unsubscribe = ens_dispatch_plugin_unsubscribe,
  .request = ens_dispatch_plugin_request,
  .respond = ens_dispatch_respond,
  .respond_error = ens_dispatch_respond_error,
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
  .tap = ens_dispatch_plugin_tap,
  .untap = ens_dispatch_plugin_untap,
  .publish_remote = ens_dispatch_publish_remote,
  .agent_add = ens_dispatch_agent_add,
  .agent_remove = ens_dispatch_agent_remove,
  .budget_ledger_set = ens_completion_set_ledger,
  .watch_interest = ens_dispatch_watch_interest,
  .unwatch_interest = ens_dispatch_unwatch_interest,
};

const EnsHost *
ens_host_table (void)
{
  return &host_table;
}
