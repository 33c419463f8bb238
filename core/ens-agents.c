/* ens-agents.c — the agent registry: who serves each agent name, the
 * agents.* verbs, and the events that tell subscribers when an agent comes
 * and goes.  What happens to a request for an agent is ens-requests.c's. */
#include "ens-agents.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

struct _EnsAgents {
  EnsBus *bus;
  GHashTable *table;     /* name -> EnsAgent */
  GHashTable *by_client; /* EnsClient* -> GPtrArray of names it serves, in registration order */
};

static void
agent_free (EnsAgent *agent)
{
  g_free (agent->name);
  ens_agent_tools_free (agent->actions);
  g_free (agent->description);
  if (agent->info)
    json_node_unref (agent->info);
  g_free (agent);
}

EnsAgents *
ens_agents_new (EnsBus *bus)
{
  EnsAgents *agents = g_new0 (EnsAgents, 1);

  agents->bus = g_object_ref (bus);
  agents->table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) agent_free);
  agents->by_client = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) g_ptr_array_unref);
  return agents;
}

void
ens_agents_free (EnsAgents *agents)
{
  if (agents == NULL)
    return;
  g_hash_table_unref (agents->by_client);
  g_hash_table_unref (agents->table);
  g_object_unref (agents->bus);
  g_free (agents);
}

EnsAgent *
ens_agents_lookup (EnsAgents *agents, const char *name)
{
  return g_hash_table_lookup (agents->table, name);
}

guint
ens_agents_count (EnsAgents *agents)
{
  return g_hash_table_size (agents->table);
}

GPtrArray *
ens_agents_served_by (EnsAgents *agents, EnsClient *client)
{
  return g_hash_table_lookup (agents->by_client, client);
}

/* ------------------------------------------------------------------ events */

static void
publish_system (EnsAgents *agents, const char *topic, JsonNode *data)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;

  init.topic = topic;
  init.from = "ensembled";
  init.data = data;
  event = ens_message_new (&init);
  ens_bus_publish (agents->bus, event, NULL);
}

JsonNode *
ens_agent_describe (EnsAgent *agent)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);

  json_object_set_string_member (obj, "name", agent->name);
  json_object_set_member (obj, "actions",
                          ens_json_strv_node ((const char *const *) ens_agent_tools_names (agent->actions), G_MAXUINT));
  json_object_set_member (obj, "tools", ens_agent_tools_describe (agent->actions));
  json_object_set_string_member (obj, "description", agent->description ? agent->description : "");
  if (agent->info)
    {
      JsonObjectIter iter;
      const char *member;
      JsonNode *value;
      json_object_iter_init (&iter, json_node_get_object (agent->info));
      while (json_object_iter_next (&iter, &member, &value))
        json_object_set_member (obj, member, json_node_copy (value));
    }
  json_object_set_string_member (obj, "kind", agent->remote ? "remote" : agent->plugin ? "plugin" : "client");
  if (agent->plugin || agent->client)
    json_object_set_string_member (obj, "owner", agent->plugin ? ens_plugin_get_id (agent->plugin)
                                                                : agent->client->id);
  else
    json_object_set_null_member (obj, "owner");
  json_object_set_boolean_member (obj, "connected", agent->plugin || agent->client);
  json_object_set_boolean_member (obj, "persistent", agent->persistent);
  ens_json_set_timestamp (obj, "registered_at", agent->registered_real_us);
  return node;
}

/* ------------------------------------------------------------------ serving connections */

/* @client serves @name from now on: it holds the connection open. */
static void
client_serves (EnsAgents *agents, EnsClient *client, const char *name)
{
  GPtrArray *names = g_hash_table_lookup (agents->by_client, client);

  if (names == NULL)
    {
      names = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (agents->by_client, client, names);
    }
  g_ptr_array_add (names, g_strdup (name));
  client->holds++;
}

static void
client_stops_serving (EnsAgents *agents, EnsClient *client, const char *name)
{
  GPtrArray *names = g_hash_table_lookup (agents->by_client, client);

  for (guint i = 0; names && i < names->len; i++)
    if (strcmp (g_ptr_array_index (names, i), name) == 0)
      {
        g_ptr_array_remove_index (names, i);
        client->holds--;
        break;
      }
  if (names && names->len == 0)
    g_hash_table_remove (agents->by_client, client);
}

/* ------------------------------------------------------------------ registry */

/* @actions (transfer full), may be NULL: none. */
static EnsAgent *
agent_new (const char *name, EnsAgentTools *actions, const char *description)
{
  EnsAgent *agent = g_new0 (EnsAgent, 1);

  agent->name = g_strdup (name);
  agent->actions = actions ? actions : ens_agent_tools_new ();
  agent->description = g_strdup (description);
  agent->registered_real_us = g_get_real_time ();
  return agent;
}

static void
agent_insert (EnsAgents *agents, EnsAgent *agent)
{
  g_autoptr (JsonNode) info = NULL;

  g_hash_table_insert (agents->table, agent->name, agent);
  if (agent->client)
    client_serves (agents, agent->client, agent->name);
  info = ens_agent_describe (agent);
  publish_system (agents, "ensemble.agent.registered", info);
}

static EnsAgent *
agent_add (EnsAgents *agents, const char *name, EnsAgentTools *actions, const char *description, EnsClient *client,
           EnsPlugin *plugin, gboolean persistent)
{
  EnsAgent *agent = agent_new (name, actions, description);

  agent->client = client;
  agent->plugin = plugin;
  agent->persistent = persistent;
  agent_insert (agents, agent);
  return agent;
}

static void
agent_remove (EnsAgents *agents, const char *name)
{
  EnsAgent *agent = g_hash_table_lookup (agents->table, name);
  g_autoptr (JsonNode) info = NULL;
  g_autofree char *owned_name = NULL;

  if (agent == NULL)
    return;
  owned_name = g_strdup (name); /* @name may be the serving list's copy, freed below */
  info = ens_agent_describe (agent);
  if (agent->client)
    client_stops_serving (agents, agent->client, owned_name);
  g_hash_table_remove (agents->table, owned_name);
  publish_system (agents, "ensemble.agent.unregistered", info);
}

/* A local registration takes the name from an agent that stands for one
 * elsewhere; anything else keeps it. */
static EnsAgent *
agent_lookup_local (EnsAgents *agents, const char *name)
{
  EnsAgent *agent = g_hash_table_lookup (agents->table, name);

  if (agent && agent->remote)
    {
      agent_remove (agents, name);
      return NULL;
    }
  return agent;
}

/* A persistent agent stays registered without its connection. */
static void
agent_detach_or_remove (EnsAgents *agents, const char *name)
{
  EnsAgent *agent = g_hash_table_lookup (agents->table, name);
  g_autoptr (JsonNode) info = NULL;

  if (agent == NULL || !agent->persistent || agent->client == NULL)
    {
      agent_remove (agents, name);
      return;
    }
  client_stops_serving (agents, agent->client, agent->name);
  agent->client = NULL;
  info = ens_agent_describe (agent);
  publish_system (agents, "ensemble.agent.disconnected", info);
}

void
ens_agents_client_closed (EnsAgents *agents, EnsClient *client)
{
  GPtrArray *names;

  /* Last registered first. */
  while ((names = g_hash_table_lookup (agents->by_client, client)))
    {
      g_autofree char *name = g_strdup (g_ptr_array_index (names, names->len - 1));
      EnsAgent *agent = g_hash_table_lookup (agents->table, name);

      if (agent && agent->client == client)
        agent_detach_or_remove (agents, name);
      else
        client_stops_serving (agents, client, name);
    }
}

gboolean
ens_agents_add_plugin_agent (EnsAgents *agents, EnsPlugin *plugin, GError **error)
{
  const EnsPluginDesc *desc = ens_plugin_get_desc (plugin);
  const EnsAgentVTable *vt = desc->vtable;
  g_autoptr (EnsAgentTools) actions = NULL;

  if (desc->kind != ENS_PLUGIN_KIND_AGENT)
    return TRUE;
  if (!ens_name_valid (vt->name))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "agent name \"%s\" is not [A-Za-z0-9._-]{1,64}",
                   vt->name ? vt->name : "");
      return FALSE;
    }
  if (agent_lookup_local (agents, vt->name))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DUPLICATE, "agent name \"%s\" is already registered",
                   vt->name);
      return FALSE;
    }
  actions = ens_agent_tools_new ();
  if (ENS_STRUCT_HAS (vt, EnsAgentVTable, tools) && vt->tools)
    {
      g_autoptr (GError) parse_error = NULL;
      g_autoptr (JsonNode) list = ens_json_parse (vt->tools, strlen (vt->tools), &parse_error);
      g_autofree char *field = NULL, *expected = NULL;

      if (list == NULL)
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "the agent vtable's tools are not JSON: %s",
                       parse_error->message);
          return FALSE;
        }
      if (!ens_agent_tools_add_list (actions, list, "tools", &field, &expected))
        {
          g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "the agent vtable's %s must be %s", field,
                       expected);
          return FALSE;
        }
    }
  ens_agent_tools_add_names (actions, vt->actions);
  agent_add (agents, vt->name, g_steal_pointer (&actions), desc->description, NULL, plugin, FALSE);
  return TRUE;
}

gboolean
ens_agents_add_served (EnsAgents *agents, EnsPlugin *self, const char *name, const char *const *actions,
                       JsonNode *info, gboolean remote, EnsAgentHandleFunc handle, gpointer handle_data)
{
  EnsAgent *agent;
  JsonObject *obj = info && JSON_NODE_HOLDS_OBJECT (info) ? json_node_get_object (info) : NULL;
  const char *description = obj ? ens_json_get_string (obj, "description") : NULL;
  g_autoptr (EnsAgentTools) tools = ens_agent_tools_new ();
  g_autofree char *field = NULL, *expected = NULL;
  gboolean changed = FALSE;

  if (name == NULL || !ens_name_valid (name) || handle == NULL)
    return FALSE;
  if (obj && !ens_agent_tools_add_list (tools, json_object_get_member (obj, "tools"), "tools", &field, &expected))
    {
      g_warning ("%s: agent %s not added: info.%s must be %s", ens_plugin_get_id (self), name, field, expected);
      return FALSE;
    }
  ens_agent_tools_add_names (tools, actions);
  agent = g_hash_table_lookup (agents->table, name);
  if (agent && (agent->plugin != self || agent->handle == NULL))
    {
      if (remote || !agent->remote)
        return FALSE;
      agent_remove (agents, name); /* a local service beats a stand-in */
      agent = NULL;
    }
  if (agent)
    {
      /* Refreshed by its plugin: the same agent, quietly updated, unless
       * what it serves changed (an MCP server's tool list did): then
       * ensemble.agent.updated says so. */
      g_autoptr (JsonNode) before = ens_agent_tools_describe (agent->actions);
      g_autoptr (JsonNode) after = ens_agent_tools_describe (tools);
      changed = !json_node_equal (before, after);
      ens_agent_tools_free (agent->actions);
      agent->actions = g_steal_pointer (&tools);
      g_clear_pointer (&agent->info, json_node_unref);
      g_free (agent->description);
      agent->description = g_strdup (description);
    }
  else
    {
      agent = agent_new (name, g_steal_pointer (&tools), description);
      agent->plugin = self;
    }
  agent->handle = handle;
  agent->handle_data = handle_data;
  agent->remote = remote;
  if (obj)
    {
      /* The plugin's members but "tools", which are listed from the actions. */
      JsonObject *copy;
      JsonObjectIter iter;
      const char *member;
      JsonNode *value;
      agent->info = ens_json_object_node (&copy);
      json_object_iter_init (&iter, obj);
      while (json_object_iter_next (&iter, &member, &value))
        if (strcmp (member, "tools") != 0)
          json_object_set_member (copy, member, json_node_copy (value));
    }
  if (!g_hash_table_contains (agents->table, name))
    agent_insert (agents, agent);
  else if (changed)
    {
      g_autoptr (JsonNode) described = ens_agent_describe (agent);
      publish_system (agents, "ensemble.agent.updated", described);
    }
  return TRUE;
}

void
ens_agents_remove_served (EnsAgents *agents, EnsPlugin *self, const char *name)
{
  EnsAgent *agent = name ? g_hash_table_lookup (agents->table, name) : NULL;

  if (agent && agent->plugin == self && agent->handle)
    agent_remove (agents, name);
}

void
ens_agents_forget_plugin (EnsAgents *agents, EnsPlugin *plugin)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, agents->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsAgent *) value)->plugin == plugin)
      g_ptr_array_add (names, g_strdup (((EnsAgent *) value)->name));
  for (guint i = 0; i < names->len; i++)
    agent_remove (agents, g_ptr_array_index (names, i));
}

/* ------------------------------------------------------------------ verbs */

static int
by_agent_name (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(EnsAgent *const *) a)->name, (*(EnsAgent *const *) b)->name);
}

static EnsMessage *
verb_list (EnsCall *call, gpointer data)
{
  EnsAgents *agents = data;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = ens_json_object_node (&obj);
  g_autoptr (GPtrArray) all = g_ptr_array_sized_new (g_hash_table_size (agents->table));
  JsonArray *array;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, agents->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (all, value);
  g_ptr_array_sort (all, by_agent_name);
  array = json_array_sized_new (all->len);
  for (guint i = 0; i < all->len; i++)
    json_array_add_element (array, ens_agent_describe (g_ptr_array_index (all, i)));
  json_object_set_array_member (obj, "agents", array);
  return ens_message_new_reply (call->msg, reply);
}

static EnsMessage *
needs_connection (EnsCall *call)
{
  return ens_call_error (call, ENS_ERR_INVALID_REQUEST, "this action needs a client connection");
}

static EnsMessage *
verb_register (EnsCall *call, gpointer data)
{
  EnsAgents *agents = data;
  const char *name, *description;
  g_autoptr (EnsAgentTools) actions = ens_agent_tools_new ();
  g_autofree char *field = NULL, *expected = NULL;
  JsonNode *actions_node = call->params ? json_object_get_member (call->params, "actions") : NULL;
  JsonNode *persistent_node = call->params ? json_object_get_member (call->params, "persistent") : NULL;
  JsonNode *replace_node = call->params ? json_object_get_member (call->params, "replace") : NULL;
  gboolean persistent = FALSE, replace = FALSE;
  EnsAgent *existing, *agent;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = NULL;

  if (!ens_call_string (call, "name", TRUE, &name) || !ens_name_valid (name))
    return ens_call_invalid (call, "name", "a name of 1-64 characters from [A-Za-z0-9._-], not starting with '.'");
  if (!ens_call_string (call, "description", FALSE, &description))
    return ens_call_invalid (call, "description", "a string");
  if (actions_node && JSON_NODE_HOLDS_VALUE (actions_node) && json_node_get_value_type (actions_node) == G_TYPE_STRING)
    {
      /* One name, taken as a list of one. */
      const char *one[] = { json_node_get_string (actions_node), NULL };
      if (!*one[0])
        return ens_call_invalid (call, "actions", "a list of actions, each a name or {name, description?, input_schema?}");
      ens_agent_tools_add_names (actions, one);
    }
  else if (!ens_agent_tools_add_list (actions, actions_node, "actions", &field, &expected))
    return ens_call_invalid (call, field, expected);
  if (persistent_node)
    {
      if (!JSON_NODE_HOLDS_VALUE (persistent_node) || json_node_get_value_type (persistent_node) != G_TYPE_BOOLEAN)
        return ens_call_invalid (call, "persistent", "true or false");
      persistent = json_node_get_boolean (persistent_node);
    }
  if (replace_node)
    {
      if (!JSON_NODE_HOLDS_VALUE (replace_node) || json_node_get_value_type (replace_node) != G_TYPE_BOOLEAN)
        return ens_call_invalid (call, "replace", "true or false");
      replace = json_node_get_boolean (replace_node);
    }
  if (!persistent && call->client == NULL)
    return needs_connection (call);

  existing = agent_lookup_local (agents, name);
  if (existing && replace && existing->replaceable && existing->client && !persistent)
    {
      /* The last connection wins (KSI): the name moves to this one; the
       * other stays open and serves it no more. */
      if (existing->client != call->client)
        {
          g_autoptr (JsonNode) info = NULL;
          client_stops_serving (agents, existing->client, name);
          existing->client = call->client;
          client_serves (agents, call->client, name);
          info = ens_agent_describe (existing);
          publish_system (agents, "ensemble.agent.connected", info);
        }
      agent = existing;
    }
  else if (existing && existing->client == NULL && existing->plugin == NULL && !persistent)
    {
      /* A registered agent connecting: this connection now serves it. */
      g_autoptr (JsonNode) info = NULL;
      existing->client = call->client;
      existing->replaceable = replace;
      if (actions_node)
        {
          /* It says what it serves now. */
          ens_agent_tools_free (existing->actions);
          existing->actions = g_steal_pointer (&actions);
        }
      client_serves (agents, call->client, name);
      info = ens_agent_describe (existing);
      publish_system (agents, "ensemble.agent.connected", info);
      agent = existing;
    }
  else if (existing && !(persistent && existing->persistent && existing->client == NULL && existing->plugin == NULL))
    {
      g_autofree char *text = g_strdup_printf ("an agent named %s is already registered", name);
      g_autoptr (JsonNode) details = ens_agent_describe (existing);
      return ens_message_new_error (call->msg, ENS_ERR_AGENT_EXISTS, text, details);
    }
  else
    {
      if (existing)
        agent_remove (agents, name); /* re-registering a detached record updates it */
      agent = agent_add (agents, name, g_steal_pointer (&actions), description, persistent ? NULL : call->client,
                         NULL, persistent);
      agent->replaceable = replace && !persistent;
    }

  reply = ens_agent_describe (agent);
  obj = json_node_get_object (reply);
  json_object_set_boolean_member (obj, "registered", TRUE);
  if (call->client)
    json_object_set_string_member (obj, "client_id", call->client->id);
  return ens_message_new_reply (call->msg, reply);
}

static EnsMessage *
verb_unregister (EnsCall *call, gpointer data)
{
  EnsAgents *agents = data;
  const char *name;
  EnsAgent *agent;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = NULL;
  gboolean detached_only;

  if (!ens_call_string (call, "name", TRUE, &name))
    return ens_call_invalid (call, "name", "a non-empty string");
  agent = g_hash_table_lookup (agents->table, name);
  if (agent == NULL)
    return ens_call_error (call, ENS_ERR_AGENT_NOT_FOUND, "no agent by that name is registered");
  if (agent->plugin || (agent->client && agent->client != call->client))
    return ens_call_error (call, ENS_ERR_PERMISSION_DENIED, "only the connection serving an agent may unregister it");
  /* The connection of a persistent agent disconnects it; the record goes
   * only when nobody serves it. */
  detached_only = agent->persistent && agent->client != NULL;
  agent_detach_or_remove (agents, name);

  reply = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "name", name);
  json_object_set_boolean_member (obj, "unregistered", !detached_only);
  json_object_set_boolean_member (obj, "disconnected", TRUE);
  return ens_message_new_reply (call->msg, reply);
}

void
ens_agents_add_verbs (EnsAgents *agents, EnsVerbs *verbs)
{
  ens_verbs_add (verbs, "agents.list", verb_list, agents);
  ens_verbs_add (verbs, "agents.register", verb_register, agents);
  ens_verbs_add (verbs, "agents.unregister", verb_unregister, agents);
}
