/* ens-daemon.c — the daemon object: builds its parts bottom-up, wires the
 * signals between them (the loader's plugin lifecycle, the connections'
 * closing) in one place, in the order their handlers must run, and adds the
 * daemon's own verbs (ping, health, plugins.list, shutdown). */
#include "ens-daemon.h"
#include "ens-json.h"
#include "ens-message-private.h"
#include "ens-paths.h"

/* ------------------------------------------------------------------ wiring */

static gboolean
on_plugin_started (EnsLoader *loader, EnsPlugin *plugin, gpointer error, gpointer data)
{
  EnsDaemon *d = data;

  (void) loader;
  if (!ens_agents_add_plugin_agent (d->agents, plugin, error))
    return TRUE; /* refused */
  ens_backends_add_plugin (d->backends, plugin);
  return FALSE;
}

/* Nothing of a stopped plugin stays reachable: its completions end first
 * (they publish their results), then its bus hooks, the requests it asked
 * or served, its agents. */
static void
on_plugin_stopped (EnsLoader *loader, EnsPlugin *plugin, gpointer data)
{
  EnsDaemon *d = data;

  (void) loader;
  ens_completions_forget_plugin (d->completions, plugin);
  ens_plugin_bus_forget_plugin (d->plugin_bus, plugin);
  ens_requests_forget_plugin (d->requests, plugin);
  ens_agents_forget_plugin (d->agents, plugin);
}

/* A connection is gone: what it asked stops, what it served is answered
 * AGENT_GONE, its agents are unregistered (persistent ones disconnected). */
static void
on_client_closed (EnsClients *clients, EnsClient *client, gpointer data)
{
  EnsDaemon *d = data;

  (void) clients;
  ens_completions_client_closed (d->completions, client);
  ens_stats_client_closed (d->stats, client);
  ens_requests_client_closed (d->requests, client);
  ens_agents_client_closed (d->agents, client);
}

/* ------------------------------------------------------------------ health */

static JsonNode *
plugins_array (EnsDaemon *d)
{
  GPtrArray *plugins = ens_loader_plugins (d->loader);
  JsonArray *array = json_array_sized_new (plugins->len);
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < plugins->len; i++)
    json_array_add_element (array, ens_plugin_describe (g_ptr_array_index (plugins, i)));
  json_node_take_array (node, array);
  return node;
}

static JsonNode *
failures_array (GPtrArray *failures)
{
  JsonArray *array = json_array_sized_new (failures->len);
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < failures->len; i++)
    {
      EnsPluginFailure *f = g_ptr_array_index (failures, i);
      JsonObject *obj = json_object_new ();

      if (f->id)
        json_object_set_string_member (obj, "id", f->id);
      else
        json_object_set_null_member (obj, "id");
      json_object_set_string_member (obj, "file", f->file);
      json_object_set_string_member (obj, "reason", f->reason);
      json_array_add_object_element (array, obj);
    }
  json_node_take_array (node, array);
  return node;
}

JsonNode *
ens_daemon_health (EnsDaemon *d)
{
  JsonObject *obj, *counters;
  JsonNode *node = ens_json_object_node (&obj);
  JsonNode *cnode = ens_json_object_node (&counters);
  GPtrArray *failures = ens_loader_failures (d->loader);

  /* Degraded: a plugin found in the plugin folders, not disabled, does not
   * run (a transport that cannot bind its port, an init that failed). */
  json_object_set_string_member (obj, "status", d->shutting_down ? "stopping"
                                               : failures->len > 0 ? "degraded"
                                                                   : "healthy");
  json_object_set_string_member (obj, "version", ENS_VERSION);
  json_object_set_string_member (obj, "node_id", d->node_id);
  json_object_set_double_member (obj, "uptime_s",
                                 (double) ((g_get_monotonic_time () - d->started_us) / 1000) / 1000.0);
  ens_json_set_timestamp (obj, "started_at", d->started_real_us);
  json_object_set_member (obj, "plugins", plugins_array (d));
  json_object_set_int_member (obj, "plugins_refused", ens_loader_refused_count (d->loader));
  json_object_set_member (obj, "failed_plugins", failures_array (failures));
  json_object_set_int_member (obj, "agents", ens_agents_count (d->agents));
  json_object_set_int_member (obj, "connections", ens_clients_count (d->clients));
  json_object_set_int_member (obj, "subscriptions", ens_clients_subscriptions (d->clients));
  json_object_set_int_member (obj, "pending_requests", ens_requests_count (d->requests));
  json_object_set_int_member (obj, "processes", ens_processes_running (d->processes));
  json_object_set_member (obj, "llm_router", ens_budget_describe (d->budget));
  json_object_set_member (obj, "completions", ens_completions_stats (d->completions));
  json_object_set_int_member (obj, "sessions", ens_sessions_count (d->sessions, FALSE));
  json_object_set_int_member (obj, "active_sessions", ens_sessions_count (d->sessions, TRUE));
  json_object_set_member (obj, "session_stats", ens_sessions_stats (d->sessions));
  json_object_set_int_member (counters, "requests", d->counters.requests);
  json_object_set_int_member (counters, "errors", d->counters.errors);
  json_object_set_int_member (counters, "events_published", ens_bus_published (d->bus));
  json_object_set_int_member (counters, "events_delivered", ens_bus_delivered (d->bus));
  json_object_set_int_member (counters, "agent_requests", d->counters.agent_requests);
  json_object_set_int_member (counters, "agent_timeouts", d->counters.agent_timeouts);
  json_object_set_int_member (counters, "bus_seq", ens_bus_last_seq (d->bus));
  json_object_set_member (obj, "counters", cnode);
  {
    g_autofree char *socket_dir = ens_config_get_path (d->config, "socket-dir");
    g_autofree char *state_dir = ens_config_get_path (d->config, "state-dir");
    json_object_set_string_member (obj, "socket_dir", socket_dir);
    json_object_set_string_member (obj, "state_dir", state_dir);
  }
  return node;
}

/* ------------------------------------------------------------------ verbs */

static EnsMessage *
verb_ping (EnsCall *call, gpointer data)
{
  JsonObject *obj;
  g_autoptr (JsonNode) reply = ens_json_object_node (&obj);

  (void) data;
  json_object_set_boolean_member (obj, "pong", TRUE);
  return ens_message_new_reply (call->msg, reply);
}

static EnsMessage *
verb_health (EnsCall *call, gpointer data)
{
  g_autoptr (JsonNode) reply = ens_daemon_health (data);
  return ens_message_new_reply (call->msg, reply);
}

static EnsMessage *
verb_plugins (EnsCall *call, gpointer data)
{
  JsonObject *obj;
  g_autoptr (JsonNode) reply = ens_json_object_node (&obj);

  json_object_set_member (obj, "plugins", plugins_array (data));
  return ens_message_new_reply (call->msg, reply);
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (((EnsDaemon *) data)->loop);
  return G_SOURCE_REMOVE;
}

static EnsMessage *
verb_shutdown (EnsCall *call, gpointer data)
{
  EnsDaemon *d = data;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = NULL;

  if (!ens_call_is_admin (call))
    return ens_call_error (call, ENS_ERR_PERMISSION_DENIED, "shutdown is for admin connections only");
  g_message ("shutdown requested by %s (%s)", call->client->id, call->client->peer ? call->client->peer : "?");
  d->shutting_down = TRUE;
  /* After this reply is written: the transport flushes in the same turn. */
  g_idle_add_full (G_PRIORITY_LOW, quit_cb, d, NULL);

  reply = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "status", "shutting_down");
  return ens_message_new_reply (call->msg, reply);
}

/* The order verbs are listed in (UNKNOWN_ACTION): the daemon's, agents,
 * events, kv, processes, completions, sessions, stats, shutdown. */
static void
add_verbs (EnsDaemon *d)
{
  ens_verbs_add (d->verbs, "ping", verb_ping, d);
  ens_verbs_add (d->verbs, "health", verb_health, d);
  ens_verbs_add (d->verbs, "plugins.list", verb_plugins, d);
  ens_agents_add_verbs (d->agents, d->verbs);
  ens_events_add_verbs (d->events, d->verbs);
  d->kv.state = d->state;
  d->kv.events = d->events;
  ens_kv_add_verbs (d->verbs, &d->kv);
  ens_processes_add_verbs (d->processes, d->verbs);
  ens_completions_add_verbs (d->completions, d->verbs);
  ens_backends_add_verbs (d->backends, d->verbs);
  ens_sessions_add_verbs (d->sessions, d->verbs);
  ens_stats_add_verbs (d->stats, d->verbs);
  ens_verbs_add (d->verbs, "shutdown", verb_shutdown, d);
}

/* ------------------------------------------------------------------ life */

EnsDaemon *
ens_daemon_new (EnsConfig *config, EnsState *state, const char *node_id)
{
  EnsDaemon *d = g_new0 (EnsDaemon, 1);
  EnsHostServices services = { 0 };

  d->config = config;
  d->state = state;
  d->node_id = g_strdup (node_id);
  d->started_us = g_get_monotonic_time ();
  d->started_real_us = g_get_real_time ();
  d->loop = g_main_loop_new (NULL, FALSE);

  d->bus = ens_bus_new ();
  d->clients = ens_clients_new (d->bus, d->node_id);
  ens_clients_set_idle_timeout (d->clients, ens_config_get_uint (config, "idle-timeout-seconds"));
  d->verbs = ens_verbs_new ();
  d->agents = ens_agents_new (d->bus);
  d->requests = ens_requests_new (d->agents, config, &d->counters);
  d->dispatch = ens_dispatch_new (d->requests, d->verbs, &d->counters);
  d->events = ens_events_new (d->bus, d->clients, d->agents, config);
  d->plugin_bus = ens_plugin_bus_new (d->bus, d->events);
  d->processes = ens_processes_new (config, d->bus);
  d->budget = ens_budget_new (config, state);
  d->backends = ens_backends_new (config, d->budget);
  d->completions = ens_completions_new (config, d->backends, d->budget, d->events);
  d->sessions = ens_sessions_new (config, state, d->completions, d->events, d->requests, d->agents);
  d->stats = ens_stats_new (&d->counters, d->bus, d->clients, d->completions);
  d->heap = ens_heap_new (d->completions);
  add_verbs (d);
  g_signal_connect (d->clients, "client-closed", G_CALLBACK (on_client_closed), d);

  services.config = config;
  services.state = state;
  services.node_id = d->node_id;
  services.clients = d->clients;
  services.dispatch = d->dispatch;
  services.agents = d->agents;
  services.plugin_bus = d->plugin_bus;
  services.events = d->events;
  services.budget = d->budget;
  d->loader = ens_loader_new (ens_host_table (&services));
  g_signal_connect (d->loader, "plugin-started", G_CALLBACK (on_plugin_started), d);
  g_signal_connect (d->loader, "plugin-stopped", G_CALLBACK (on_plugin_stopped), d);
  return d;
}

void
ens_daemon_load_plugins (EnsDaemon *d, char **dirs, char **disabled)
{
  ens_loader_load_dirs (d->loader, dirs, disabled);
}

gboolean
ens_daemon_has_transport (EnsDaemon *d)
{
  GPtrArray *plugins = ens_loader_plugins (d->loader);

  for (guint i = 0; i < plugins->len; i++)
    if (ens_plugin_get_desc (g_ptr_array_index (plugins, i))->kind == ENS_PLUGIN_KIND_TRANSPORT)
      return TRUE;
  return FALSE;
}

void
ens_daemon_quit (EnsDaemon *d)
{
  d->shutting_down = TRUE;
  g_main_loop_quit (d->loop);
}

void
ens_daemon_stop (EnsDaemon *d)
{
  d->shutting_down = TRUE;
  ens_processes_stop_all (d->processes);
  /* Running completions are cancelled while their providers still run,
   * and get a moment to say so. */
  ens_completions_cancel_all (d->completions);
  for (gint64 until = g_get_monotonic_time () + 200000;
       ens_completions_running (d->completions) > 0 && g_get_monotonic_time () < until;)
    g_main_context_iteration (NULL, FALSE);
  ens_loader_stop_all (d->loader); /* in reverse order */
}

void
ens_daemon_free (EnsDaemon *d)
{
  if (d == NULL)
    return;
  ens_loader_free (d->loader);
  ens_heap_free (d->heap);
  ens_stats_free (d->stats);
  ens_sessions_free (d->sessions);
  ens_completions_free (d->completions);
  ens_backends_free (d->backends);
  ens_budget_free (d->budget);
  ens_processes_free (d->processes);
  ens_plugin_bus_free (d->plugin_bus);
  ens_events_free (d->events);
  ens_dispatch_free (d->dispatch);
  ens_requests_free (d->requests);
  ens_agents_free (d->agents);
  ens_verbs_free (d->verbs);
  g_object_unref (d->clients);
  g_object_unref (d->bus);
  ens_state_close (d->state);
  ens_config_free (d->config);
  g_main_loop_unref (d->loop);
  g_free (d->node_id);
  g_free (d);
}
