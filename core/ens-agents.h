/* ens-agents.h — the agents reachable on the bus (ens-agents.c): served by
 * a connection, by an agent plugin, or by a plugin's handler (bridges), or
 * registered and not connected; their agents.* verbs and lifecycle events
 * ("ensemble.agent.registered", ".connected", ".disconnected",
 * ".unregistered"). */
#pragma once

#include "ens-agent-tools.h"
#include "ens-clients.h"
#include "ens-verbs.h"

G_BEGIN_DECLS

typedef struct _EnsAgents EnsAgents;

typedef struct {
  char *name;
  EnsAgentTools *actions; /* its actions, with their descriptions and input schemas */
  char *description;
  EnsClient *client;   /* an external agent, or */
  EnsPlugin *plugin;   /* an agent plugin; neither: registered, not connected */
  gboolean persistent; /* outlives its connection (KSI REGISTER_AGENT) */
  gboolean replaceable; /* registered with "replace": a later registration with it takes the name over */
  gint64 registered_real_us;
  /* Added by a plugin through host->agent_add (served by @handle, not the
   * plugin's vtable); @remote ones stand for agents elsewhere. */
  EnsAgentHandleFunc handle;
  gpointer handle_data;
  JsonNode *info;
  gboolean remote;
} EnsAgent;

EnsAgents *ens_agents_new (EnsBus *bus);
void ens_agents_free (EnsAgents *agents);
/* agents.list, agents.register, agents.unregister */
void ens_agents_add_verbs (EnsAgents *agents, EnsVerbs *verbs);

/* (transfer none) the agent named @name, or NULL. */
EnsAgent *ens_agents_lookup (EnsAgents *agents, const char *name);
guint ens_agents_count (EnsAgents *agents);
/* (transfer none) the names @client serves, in registration order, or NULL. */
GPtrArray *ens_agents_served_by (EnsAgents *agents, EnsClient *client);
/* (transfer full) {name, actions, tools: [{name, description?,
 * input_schema?}], description, ..., kind, owner, connected, persistent,
 * registered_at} */
JsonNode *ens_agent_describe (EnsAgent *agent);

/* Registers the agent of an agent plugin (other kinds: nothing to do);
 * FALSE with @error when its name is invalid or taken, or the tools its
 * vtable declares are malformed. */
gboolean ens_agents_add_plugin_agent (EnsAgents *agents, EnsPlugin *plugin, GError **error);
/* Loader plugin-stopped: its agents go. */
void ens_agents_forget_plugin (EnsAgents *agents, EnsPlugin *plugin);
/* Clients client-closed: its agents are unregistered, persistent ones
 * only disconnected. */
void ens_agents_client_closed (EnsAgents *agents, EnsClient *client);

/* host->agent_add / host->agent_remove (see ens-host.h); @info's "tools"
 * declares actions as agents.register's "actions" do (a malformed list:
 * FALSE, nothing registered). */
gboolean ens_agents_add_served (EnsAgents *agents, EnsPlugin *self, const char *name, const char *const *actions,
                                JsonNode *info, gboolean remote, EnsAgentHandleFunc handle, gpointer handle_data);
void ens_agents_remove_served (EnsAgents *agents, EnsPlugin *self, const char *name);

G_END_DECLS
