/* ens-dispatch.c — what a request does.  Every transport hands its
 * connections' requests here (through host->client_submit); core verbs are
 * answered at once, requests for an agent are forwarded with a deadline and
 * answered when the agent replies, times out or goes away. */
#include "ens-core.h"
#include "ens-paths.h"

#include <string.h>

struct _EnsClient {
  char *id;
  EnsPlugin *transport;
  const EnsClientSink *sink;
  gpointer sink_data;
  guint32 flags;
  char *peer;
  EnsSubscriber *subscriber; /* made on first subscribe */
  GPtrArray *agents;         /* names this connection registered */
  guint pending;             /* its requests waiting for an agent */
  gint64 connected_real_us;
};

typedef struct {
  char *name;
  char **actions;
  char *description;
  EnsClient *client; /* an external agent, or */
  EnsPlugin *plugin; /* an agent plugin; neither: registered, not connected */
  gboolean persistent; /* outlives its connection (KSI REGISTER_AGENT) */
  gint64 registered_real_us;
  /* Added by a plugin through host->agent_add (served by @handle, not the
   * plugin's vtable); @remote ones stand for agents elsewhere. */
  EnsAgentHandleFunc handle;
  gpointer handle_data;
  JsonNode *info;
  gboolean remote;
} EnsAgent;

/* One request waiting for an agent.  For an agent plugin it is also the
 * EnsResponder, which must outlive a timeout until the plugin answers. */
typedef struct {
  char *qid;
  EnsMessage *request;  /* as the requester sent it */
  EnsClient *requester; /* NULL once gone, or for a plugin requester */
  EnsReplyFunc func;    /* plugin requester */
  gpointer user_data;
  EnsPlugin *requesting_plugin;
  char *agent;
  EnsClient *agent_client;
  EnsPlugin *agent_plugin;
  guint timeout_id;
  gboolean finished; /* answered or timed out; a plugin responder still holds it */
} EnsPending;

typedef struct {
  guint id;
  EnsPlugin *plugin;
  EnsSubscriber *subscriber;
  EnsEventFunc func;
  gpointer user_data;
  GDestroyNotify notify;
} PluginSub;

typedef struct {
  EnsDaemon *d;
  EnsClient *client;  /* NULL when a plugin asks */
  EnsPlugin *plugin;
  EnsMessage *msg;
  JsonObject *params; /* msg->data when it is an object */
} EnsCall;

static GHashTable *plugin_subs; /* id -> PluginSub */
static GHashTable *plugin_taps; /* tap id -> EnsPlugin* */
static GHashTable *interest_watches; /* watch id -> EnsPlugin* */
/* Requests already answered (timed out) whose agent plugin still holds the
 * responder: freed when it answers, or when it stops. */
static GHashTable *held_responders;
static guint next_plugin_sub;

#define NAME_MAX_LEN 64

/* ---------------------------------------------------------------- helpers */

static gboolean
valid_name (const char *name)
{
  gsize n = 0;

  if (name == NULL || name[0] == '\0' || name[0] == '.')
    return FALSE;
  for (const char *p = name; *p; p++, n++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return n <= NAME_MAX_LEN;
}

static JsonNode *
field_details (const char *field, const char *expected)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);

  json_object_set_string_member (obj, "field", field);
  json_object_set_string_member (obj, "expected", expected);
  return node;
}

static EnsMessage *
invalid (EnsCall *call, const char *field, const char *expected)
{
  g_autoptr (JsonNode) details = field_details (field, expected);
  g_autofree char *message = g_strdup_printf ("%s must be %s", field, expected);

  return ens_message_new_error (call->msg, ENS_ERR_INVALID_PARAMETERS, message, details);
}

static EnsMessage *
error_reply (EnsCall *call, const char *code, const char *message)
{
  return ens_message_new_error (call->msg, code, message, NULL);
}

/* A string parameter: TRUE and *out set (NULL when optional and absent), or
 * FALSE when present with the wrong type or required and missing. */
static gboolean
param_string (EnsCall *call, const char *field, gboolean required, const char **out)
{
  JsonNode *node = call->params ? json_object_get_member (call->params, field) : NULL;

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return !required;
  *out = ens_json_get_string (call->params, field);
  return *out != NULL && (*out)[0] != '\0';
}

/* A list of strings, or one string taken as a list of one. */
static gboolean
param_strv (EnsCall *call, const char *field, GPtrArray **out)
{
  JsonNode *node = call->params ? json_object_get_member (call->params, field) : NULL;
  GPtrArray *list;

  *out = NULL;
  if (node == NULL)
    return FALSE;
  list = g_ptr_array_new ();
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    g_ptr_array_add (list, (gpointer) json_node_get_string (node));
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *el = json_array_get_element (array, i);
          if (!JSON_NODE_HOLDS_VALUE (el) || json_node_get_value_type (el) != G_TYPE_STRING ||
              json_node_get_string (el)[0] == '\0')
            {
              g_ptr_array_unref (list);
              return FALSE;
            }
          g_ptr_array_add (list, (gpointer) json_node_get_string (el));
        }
    }
  else
    {
      g_ptr_array_unref (list);
      return FALSE;
    }
  *out = list;
  return list->len > 0;
}

/* A JSON array of the first @n strings of @strv (stops at NULL). */
static JsonNode *
strv_node (const char *const *strv, guint n)
{
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < n && strv && strv[i]; i++)
    json_array_add_string_element (array, strv[i]);
  json_node_take_array (node, array);
  return node;
}

/* (transfer container) the values of @table; GLib 2.74 has no such call. */
static GPtrArray *
hash_values (GHashTable *table)
{
  GPtrArray *values = g_ptr_array_sized_new (g_hash_table_size (table));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (values, value);
  return values;
}

/* ---------------------------------------------------------------- clients */

static void
client_deliver (EnsClient *client, EnsMessage *msg)
{
  client->sink->deliver (client->sink_data, msg);
}

static void
client_on_event (EnsMessage *event, gpointer data)
{
  client_deliver (data, event);
}

EnsClient *
ens_dispatch_client_new (EnsPlugin *transport, const EnsClientSink *sink, gpointer sink_data, guint32 flags,
                         const char *peer)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsClient *client = g_new0 (EnsClient, 1);

  client->id = g_strdup_printf ("c%" G_GUINT64_FORMAT "-%s", ++d->next_client, d->node_id);
  client->transport = transport;
  client->sink = sink;
  client->sink_data = sink_data;
  client->flags = flags;
  client->peer = g_strdup (peer);
  client->agents = g_ptr_array_new_with_free_func (g_free);
  client->connected_real_us = g_get_real_time ();
  g_hash_table_insert (d->clients, client->id, client);
  return client;
}

const char *
ens_dispatch_client_id (EnsClient *client)
{
  return client->id;
}

static void pending_finish (EnsDaemon *d, EnsPending *p, EnsMessage *answer);
static void agent_detach_or_remove (EnsDaemon *d, const char *name);

void
ens_dispatch_client_close (EnsClient *client)
{
  EnsDaemon *d = ens_daemon_get ();
  GHashTableIter iter;
  gpointer value;
  g_autoptr (GPtrArray) orphaned = g_ptr_array_new ();

  g_hash_table_remove (d->clients, client->id);
  ens_subscriber_free (d->bus, client->subscriber);
  ens_completion_client_gone (client);

  /* Requests it asked: nobody to answer any more.  Requests it was serving
   * as an agent: their requesters get AGENT_GONE now, not a timeout later. */
  g_hash_table_iter_init (&iter, d->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EnsPending *p = value;
      if (p->requester == client)
        {
          p->requester = NULL;
          client->pending--;
        }
      if (p->agent_client == client)
        g_ptr_array_add (orphaned, p);
    }
  for (guint i = 0; i < orphaned->len; i++)
    {
      EnsPending *p = g_ptr_array_index (orphaned, i);
      g_autofree char *text = g_strdup_printf ("agent %s disconnected before answering", p->agent);
      g_autoptr (EnsMessage) err = ens_message_new_error (p->request, ENS_ERR_AGENT_GONE, text, NULL);
      pending_finish (d, p, err);
    }
  while (client->agents->len > 0)
    agent_detach_or_remove (d, g_ptr_array_index (client->agents, client->agents->len - 1));

  g_ptr_array_unref (client->agents);
  g_free (client->peer);
  g_free (client->id);
  g_free (client);
}

void
ens_dispatch_disconnect_all (EnsDaemon *d, const char *reason)
{
  g_autoptr (GPtrArray) clients = hash_values (d->clients);

  for (guint i = 0; i < clients->len; i++)
    {
      EnsClient *client = g_ptr_array_index (clients, i);
      client->sink->disconnect (client->sink_data, reason);
    }
}

/* ---------------------------------------------------------------- agents */

static void
agent_free (EnsAgent *agent)
{
  g_free (agent->name);
  g_strfreev (agent->actions);
  g_free (agent->description);
  if (agent->info)
    json_node_unref (agent->info);
  g_free (agent);
}

static void
publish_system (EnsDaemon *d, const char *topic, JsonNode *data)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;

  init.topic = topic;
  init.from = "ensembled";
  init.data = data;
  event = ens_message_new (&init);
  d->counters.events_published++;
  d->counters.events_delivered += ens_bus_publish (d->bus, event, NULL);
}

static JsonNode *
agent_describe (EnsAgent *agent)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);

  json_object_set_string_member (obj, "name", agent->name);
  json_object_set_member (obj, "actions", strv_node ((const char *const *) agent->actions, G_MAXUINT));
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
    json_object_set_string_member (obj, "owner", agent->plugin ? ens_plugin_get_desc (agent->plugin)->id
                                                                : agent->client->id);
  else
    json_object_set_null_member (obj, "owner");
  json_object_set_boolean_member (obj, "connected", agent->plugin || agent->client);
  json_object_set_boolean_member (obj, "persistent", agent->persistent);
  ens_json_set_timestamp (obj, "registered_at", agent->registered_real_us);
  return node;
}

static EnsAgent *
agent_new (const char *name, char **actions, const char *description)
{
  EnsAgent *agent = g_new0 (EnsAgent, 1);

  agent->name = g_strdup (name);
  agent->actions = actions ? g_strdupv (actions) : g_new0 (char *, 1);
  agent->description = g_strdup (description);
  agent->registered_real_us = g_get_real_time ();
  return agent;
}

static void
agent_insert (EnsDaemon *d, EnsAgent *agent)
{
  g_autoptr (JsonNode) info = NULL;

  g_hash_table_insert (d->agents, agent->name, agent);
  if (agent->client)
    g_ptr_array_add (agent->client->agents, g_strdup (agent->name));
  info = agent_describe (agent);
  publish_system (d, "ensemble.agent.registered", info);
}

static EnsAgent *
agent_add (EnsDaemon *d, const char *name, char **actions, const char *description, EnsClient *client,
           EnsPlugin *plugin, gboolean persistent)
{
  EnsAgent *agent = agent_new (name, actions, description);

  agent->client = client;
  agent->plugin = plugin;
  agent->persistent = persistent;
  agent_insert (d, agent);
  return agent;
}

static void agent_remove (EnsDaemon *d, const char *name);

/* A local registration takes the name from an agent that stands for one
 * elsewhere; anything else keeps it. */
static EnsAgent *
agent_lookup_local (EnsDaemon *d, const char *name)
{
  EnsAgent *agent = g_hash_table_lookup (d->agents, name);

  if (agent && agent->remote)
    {
      agent_remove (d, name);
      return NULL;
    }
  return agent;
}
static void
agent_remove (EnsDaemon *d, const char *name)
{
  EnsAgent *agent = g_hash_table_lookup (d->agents, name);
  g_autoptr (JsonNode) info = NULL;
  g_autofree char *owned_name = NULL;

  if (agent == NULL)
    return;
  owned_name = g_strdup (name); /* @name may be the client's copy, freed below */
  info = agent_describe (agent);
  if (agent->client)
    for (guint i = 0; i < agent->client->agents->len; i++)
      if (strcmp (g_ptr_array_index (agent->client->agents, i), owned_name) == 0)
        {
          g_ptr_array_remove_index (agent->client->agents, i);
          break;
        }
  g_hash_table_remove (d->agents, owned_name);
  publish_system (d, "ensemble.agent.unregistered", info);
}

/* A persistent agent stays registered without its connection. */
static void
agent_detach_or_remove (EnsDaemon *d, const char *name)
{
  EnsAgent *agent = g_hash_table_lookup (d->agents, name);
  g_autoptr (JsonNode) info = NULL;

  if (agent == NULL || !agent->persistent || agent->client == NULL)
    {
      agent_remove (d, name);
      return;
    }
  for (guint i = 0; i < agent->client->agents->len; i++)
    if (strcmp (g_ptr_array_index (agent->client->agents, i), agent->name) == 0)
      {
        g_ptr_array_remove_index (agent->client->agents, i);
        break;
      }
  agent->client = NULL;
  info = agent_describe (agent);
  publish_system (d, "ensemble.agent.disconnected", info);
}

gboolean
ens_dispatch_register_plugin_agent (EnsPlugin *plugin, GError **error)
{
  EnsDaemon *d = ens_daemon_get ();
  const EnsAgentVTable *vt = ens_plugin_get_desc (plugin)->vtable;

  if (!valid_name (vt->name))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "agent name \"%s\" is not [A-Za-z0-9._-]{1,64}",
                   vt->name ? vt->name : "");
      return FALSE;
    }
  if (agent_lookup_local (d, vt->name))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DUPLICATE, "agent name \"%s\" is already registered",
                   vt->name);
      return FALSE;
    }
  agent_add (d, vt->name, (char **) vt->actions, ens_plugin_get_desc (plugin)->description, NULL, plugin, FALSE);
  return TRUE;
}

gboolean
ens_dispatch_agent_add (EnsPlugin *self, const char *name, const char *const *actions, JsonNode *info,
                        gboolean remote, EnsAgentHandleFunc handle, gpointer handle_data)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsAgent *agent;
  JsonObject *obj = info && JSON_NODE_HOLDS_OBJECT (info) ? json_node_get_object (info) : NULL;
  const char *description = obj ? ens_json_get_string (obj, "description") : NULL;

  if (name == NULL || !valid_name (name) || handle == NULL)
    return FALSE;
  agent = g_hash_table_lookup (d->agents, name);
  if (agent && (agent->plugin != self || agent->handle == NULL))
    {
      if (remote || !agent->remote)
        return FALSE;
      agent_remove (d, name); /* a local service beats a stand-in */
      agent = NULL;
    }
  if (agent)
    {
      /* Refreshed by its plugin: the same agent, quietly updated. */
      g_strfreev (agent->actions);
      agent->actions = actions ? g_strdupv ((char **) actions) : g_new0 (char *, 1);
      g_clear_pointer (&agent->info, json_node_unref);
      g_free (agent->description);
      agent->description = g_strdup (description);
    }
  else
    {
      agent = agent_new (name, (char **) actions, description);
      agent->plugin = self;
    }
  agent->handle = handle;
  agent->handle_data = handle_data;
  agent->remote = remote;
  if (obj)
    agent->info = json_node_copy (info);
  if (!g_hash_table_contains (d->agents, name))
    agent_insert (d, agent);
  return TRUE;
}

void
ens_dispatch_agent_remove (EnsPlugin *self, const char *name)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsAgent *agent = name ? g_hash_table_lookup (d->agents, name) : NULL;

  if (agent && agent->plugin == self && agent->handle)
    agent_remove (d, name);
}

/* ---------------------------------------------------------------- pending */

static void
pending_free (EnsPending *p)
{
  if (p->timeout_id)
    g_source_remove (p->timeout_id);
  ens_message_unref (p->request);
  g_free (p->agent);
  g_free (p->qid);
  g_free (p);
}

typedef struct {
  EnsPlugin *plugin;
  EnsReplyFunc func;
  gpointer user_data;
  EnsMessage *answer;
  guint source_id;
} DeferredReply;

/* Answers on their way to plugins: dropped if the plugin stops first. */
static GHashTable *deferred_replies;

static void
deferred_reply_free (DeferredReply *dr)
{
  if (dr->source_id)
    g_source_remove (dr->source_id);
  ens_message_unref (dr->answer);
  g_free (dr);
}

static gboolean
deferred_reply_cb (gpointer data)
{
  DeferredReply *dr = data;

  dr->source_id = 0;
  g_hash_table_steal (deferred_replies, dr);
  dr->func (dr->answer, dr->user_data);
  deferred_reply_free (dr);
  return G_SOURCE_REMOVE;
}

/* Answers a plugin requester from the main loop, never from inside the
 * call that made the request. */
static void
reply_to_plugin (EnsPlugin *plugin, EnsReplyFunc func, gpointer user_data, EnsMessage *answer)
{
  DeferredReply *dr = g_new0 (DeferredReply, 1);

  dr->plugin = plugin;
  dr->func = func;
  dr->user_data = user_data;
  dr->answer = ens_message_ref (answer);
  dr->source_id = g_idle_add_full (G_PRIORITY_DEFAULT, deferred_reply_cb, dr, NULL);
  g_hash_table_add (deferred_replies, dr);
}

static void
pending_finish (EnsDaemon *d, EnsPending *p, EnsMessage *answer)
{
  if (answer->kind == ENS_MESSAGE_ERROR)
    d->counters.errors++;
  if (p->requester)
    {
      p->requester->pending--;
      client_deliver (p->requester, answer);
    }
  else if (p->func)
    reply_to_plugin (p->requesting_plugin, p->func, p->user_data, answer);

  p->finished = TRUE;
  if (p->timeout_id)
    {
      g_source_remove (p->timeout_id);
      p->timeout_id = 0;
    }
  /* An agent plugin still holds the responder: freed when it answers. */
  g_hash_table_steal (d->pending, p->qid);
  if (p->agent_plugin == NULL)
    pending_free (p);
  else
    g_hash_table_add (held_responders, p);
}

static gboolean
pending_timeout_cb (gpointer data)
{
  EnsPending *p = data;
  EnsDaemon *d = ens_daemon_get ();
  g_autofree char *text = NULL;
  g_autoptr (EnsMessage) err = NULL;

  p->timeout_id = 0;
  d->counters.agent_timeouts++;
  text = g_strdup_printf ("agent %s did not answer %s within %u ms", p->agent, p->request->action,
                          p->request->timeout_ms ? p->request->timeout_ms : d->default_timeout_ms);
  err = ens_message_new_error (p->request, ENS_ERR_TIMEOUT, text, NULL);
  pending_finish (d, p, err);
  return G_SOURCE_REMOVE;
}

/* Forwards a request to an agent. The requester is a client or a plugin. */
static void
forward_to_agent (EnsDaemon *d, EnsMessage *msg, EnsClient *requester, EnsPlugin *req_plugin, EnsReplyFunc func,
                  gpointer user_data)
{
  EnsAgent *agent = g_hash_table_lookup (d->agents, msg->agent);
  EnsPending *p;
  guint32 timeout_ms = msg->timeout_ms ? msg->timeout_ms : d->default_timeout_ms;

  d->counters.agent_requests++;
  if (agent == NULL)
    {
      g_autofree char *text = g_strdup_printf ("no agent named %s is registered", msg->agent);
      g_autoptr (JsonNode) details = NULL;
      g_autoptr (EnsMessage) err = NULL;
      JsonObject *obj;

      details = ens_json_object_node (&obj);
      json_object_set_string_member (obj, "agent", msg->agent);
      err = ens_message_new_error (msg, ENS_ERR_AGENT_NOT_FOUND, text, details);
      d->counters.errors++;
      if (requester)
        client_deliver (requester, err);
      else
        reply_to_plugin (req_plugin, func, user_data, err);
      return;
    }

  if (agent->client == NULL && agent->plugin == NULL)
    {
      g_autofree char *text = g_strdup_printf ("agent %s is registered but not connected", msg->agent);
      g_autoptr (EnsMessage) err = ens_message_new_error (msg, ENS_ERR_AGENT_NOT_CONNECTED, text, NULL);
      d->counters.errors++;
      if (requester)
        client_deliver (requester, err);
      else
        reply_to_plugin (req_plugin, func, user_data, err);
      return;
    }

  if (requester && requester->pending >= ens_config_get_uint (d->config, "max-pending-requests"))
    {
      g_autoptr (EnsMessage) err = ens_message_new_error (
        msg, ENS_ERR_OVERLOADED, "too many requests of this connection are waiting for agents (max-pending-requests)",
        NULL);
      d->counters.errors++;
      client_deliver (requester, err);
      return;
    }

  p = g_new0 (EnsPending, 1);
  p->qid = g_strdup_printf ("q%" G_GUINT64_FORMAT, ++d->next_request);
  p->request = ens_message_ref (msg);
  p->requester = requester;
  if (requester)
    requester->pending++;
  p->requesting_plugin = req_plugin;
  p->func = func;
  p->user_data = user_data;
  p->agent = g_strdup (agent->name);
  p->agent_client = agent->client;
  p->agent_plugin = agent->plugin;
  p->timeout_id = g_timeout_add (timeout_ms, pending_timeout_cb, p);
  g_hash_table_insert (d->pending, p->qid, p);

  if (agent->client)
    {
      /* The agent sees the request under our id, so answers from two
       * requesters that used the same id cannot be confused. */
      EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
      g_autoptr (EnsMessage) fwd = NULL;

      init.id = p->qid;
      init.action = msg->action;
      init.agent = agent->name;
      init.from = msg->from;
      init.data = msg->data;
      init.timeout_ms = timeout_ms;
      init.received_us = msg->received_us;
      fwd = ens_message_new (&init);
      client_deliver (agent->client, fwd);
    }
  else
    {
      const EnsAgentVTable *vt = ens_plugin_get_desc (agent->plugin)->vtable;
      if (agent->handle)
        agent->handle (agent->handle_data, msg, (EnsResponder *) p);
      else
        vt->handle (ens_plugin_get_instance (agent->plugin), msg, (EnsResponder *) p);
    }
}

/* An external agent's answer (a REPLY or ERROR whose id is our qid). */
static void
agent_answer (EnsDaemon *d, EnsClient *client, EnsMessage *answer)
{
  EnsPending *p = g_hash_table_lookup (d->pending, answer->id);
  g_autoptr (EnsMessage) reply = NULL;

  if (p == NULL || p->agent_client != client)
    {
      g_autofree char *text = g_strdup_printf ("no request %s is waiting for an answer from this connection "
                                               "(answered already, timed out, or never sent)", answer->id);
      g_autoptr (EnsMessage) err = ens_message_new_error (answer, ENS_ERR_UNKNOWN_REQUEST, text, NULL);
      d->counters.errors++;
      client_deliver (client, err);
      return;
    }
  if (answer->kind == ENS_MESSAGE_ERROR)
    reply = ens_message_new_error (p->request, answer->error_code, answer->error_message, answer->error_details);
  else
    reply = ens_message_new_reply (p->request, answer->data);
  pending_finish (d, p, reply);
}

static void
responder_answer (EnsResponder *responder, EnsMessage *reply)
{
  EnsPending *p = (EnsPending *) responder;

  if (!p->finished)
    pending_finish (ens_daemon_get (), p, reply);
  g_hash_table_steal (held_responders, p);
  pending_free (p);
}

void
ens_dispatch_respond (EnsResponder *responder, JsonNode *data)
{
  EnsPending *p = (EnsPending *) responder;
  g_autoptr (EnsMessage) reply = ens_message_new_reply (p->request, data);

  responder_answer (responder, reply);
}

void
ens_dispatch_respond_error (EnsResponder *responder, const char *code, const char *message, JsonNode *details)
{
  EnsPending *p = (EnsPending *) responder;
  g_autoptr (EnsMessage) err = ens_message_new_error (p->request, code ? code : ENS_ERR_INTERNAL,
                                                      message ? message : "the agent reported an error", details);

  responder_answer (responder, err);
}

/* ---------------------------------------------------------------- verbs */

static EnsMessage *
verb_ping (EnsCall *call)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);

  json_object_set_boolean_member (obj, "pong", TRUE);
  return ens_message_new_reply (call->msg, data);
}

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

JsonNode *
ens_dispatch_health (EnsDaemon *d)
{
  JsonObject *obj, *counters;
  JsonNode *node = ens_json_object_node (&obj);
  JsonNode *cnode = ens_json_object_node (&counters);
  guint subscriptions = 0;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, d->clients);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsClient *) value)->subscriber)
      subscriptions += ens_subscriber_count (((EnsClient *) value)->subscriber);

  json_object_set_string_member (obj, "status", d->shutting_down ? "stopping" : "healthy");
  json_object_set_string_member (obj, "version", ENS_VERSION);
  json_object_set_string_member (obj, "node_id", d->node_id);
  json_object_set_double_member (obj, "uptime_s",
                                 (double) ((g_get_monotonic_time () - d->started_us) / 1000) / 1000.0);
  ens_json_set_timestamp (obj, "started_at", d->started_real_us);
  json_object_set_member (obj, "plugins", plugins_array (d));
  json_object_set_int_member (obj, "plugins_refused", ens_loader_refused_count (d->loader));
  json_object_set_int_member (obj, "agents", g_hash_table_size (d->agents));
  json_object_set_int_member (obj, "connections", g_hash_table_size (d->clients));
  json_object_set_int_member (obj, "subscriptions", subscriptions);
  json_object_set_int_member (obj, "pending_requests", g_hash_table_size (d->pending));
  json_object_set_int_member (obj, "processes", ens_process_running ());
  json_object_set_member (obj, "llm_router", ens_completion_budget (d));
  json_object_set_member (obj, "completions", ens_completion_stats (d));
  json_object_set_int_member (obj, "sessions", ens_session_count (FALSE));
  json_object_set_int_member (obj, "active_sessions", ens_session_count (TRUE));
  json_object_set_int_member (counters, "requests", d->counters.requests);
  json_object_set_int_member (counters, "errors", d->counters.errors);
  json_object_set_int_member (counters, "events_published", d->counters.events_published);
  json_object_set_int_member (counters, "events_delivered", d->counters.events_delivered);
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

static EnsMessage *
verb_health (EnsCall *call)
{
  g_autoptr (JsonNode) data = ens_dispatch_health (call->d);
  return ens_message_new_reply (call->msg, data);
}

static EnsMessage *
verb_plugins (EnsCall *call)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);

  json_object_set_member (obj, "plugins", plugins_array (call->d));
  return ens_message_new_reply (call->msg, data);
}

static int
by_agent_name (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(EnsAgent *const *) a)->name, (*(EnsAgent *const *) b)->name);
}

static EnsMessage *
verb_agents_list (EnsCall *call)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  g_autoptr (GPtrArray) agents = hash_values (call->d->agents);
  JsonArray *array = json_array_sized_new (agents->len);

  g_ptr_array_sort (agents, by_agent_name);
  for (guint i = 0; i < agents->len; i++)
    json_array_add_element (array, agent_describe (g_ptr_array_index (agents, i)));
  json_object_set_array_member (obj, "agents", array);
  return ens_message_new_reply (call->msg, data);
}

static EnsMessage *
needs_connection (EnsCall *call)
{
  return error_reply (call, ENS_ERR_INVALID_REQUEST, "this action needs a client connection");
}

static EnsMessage *
verb_agents_register (EnsCall *call)
{
  const char *name, *description;
  g_autoptr (GPtrArray) actions = NULL;
  JsonNode *actions_node = call->params ? json_object_get_member (call->params, "actions") : NULL;
  JsonNode *persistent_node = call->params ? json_object_get_member (call->params, "persistent") : NULL;
  gboolean persistent = FALSE;
  EnsAgent *existing, *agent;
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;

  if (!param_string (call, "name", TRUE, &name) || !valid_name (name))
    return invalid (call, "name", "a name of 1-64 characters from [A-Za-z0-9._-], not starting with '.'");
  if (!param_string (call, "description", FALSE, &description))
    return invalid (call, "description", "a string");
  if (actions_node && !param_strv (call, "actions", &actions) &&
      !(JSON_NODE_HOLDS_ARRAY (actions_node) && json_array_get_length (json_node_get_array (actions_node)) == 0))
    return invalid (call, "actions", "a list of non-empty strings");
  if (persistent_node)
    {
      if (!JSON_NODE_HOLDS_VALUE (persistent_node) || json_node_get_value_type (persistent_node) != G_TYPE_BOOLEAN)
        return invalid (call, "persistent", "true or false");
      persistent = json_node_get_boolean (persistent_node);
    }
  if (!persistent && call->client == NULL)
    return needs_connection (call);

  existing = agent_lookup_local (call->d, name);
  if (existing && existing->client == NULL && existing->plugin == NULL && !persistent)
    {
      /* A registered agent connecting: this connection now serves it. */
      g_autoptr (JsonNode) info = NULL;
      existing->client = call->client;
      g_ptr_array_add (call->client->agents, g_strdup (name));
      info = agent_describe (existing);
      publish_system (call->d, "ensemble.agent.connected", info);
      agent = existing;
    }
  else if (existing && !(persistent && existing->persistent && existing->client == NULL && existing->plugin == NULL))
    {
      g_autofree char *text = g_strdup_printf ("an agent named %s is already registered", name);
      g_autoptr (JsonNode) details = agent_describe (existing);
      return ens_message_new_error (call->msg, ENS_ERR_AGENT_EXISTS, text, details);
    }
  else
    {
      if (existing)
        agent_remove (call->d, name); /* re-registering a detached record updates it */
      if (actions)
        g_ptr_array_add (actions, NULL);
      agent = agent_add (call->d, name, actions ? (char **) actions->pdata : NULL, description,
                         persistent ? NULL : call->client, NULL, persistent);
    }

  data = agent_describe (agent);
  obj = json_node_get_object (data);
  json_object_set_boolean_member (obj, "registered", TRUE);
  if (call->client)
    json_object_set_string_member (obj, "client_id", call->client->id);
  return ens_message_new_reply (call->msg, data);
}

static EnsMessage *
verb_agents_unregister (EnsCall *call)
{
  const char *name;
  EnsAgent *agent;
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;
  gboolean detached_only;

  if (!param_string (call, "name", TRUE, &name))
    return invalid (call, "name", "a non-empty string");
  agent = g_hash_table_lookup (call->d->agents, name);
  if (agent == NULL)
    return error_reply (call, ENS_ERR_AGENT_NOT_FOUND, "no agent by that name is registered");
  if (agent->plugin || (agent->client && agent->client != call->client))
    return error_reply (call, ENS_ERR_PERMISSION_DENIED,
                        "only the connection serving an agent may unregister it");
  /* The connection of a persistent agent disconnects it; the record goes
   * only when nobody serves it. */
  detached_only = agent->persistent && agent->client != NULL;
  agent_detach_or_remove (call->d, name);

  data = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "name", name);
  json_object_set_boolean_member (obj, "unregistered", !detached_only);
  json_object_set_boolean_member (obj, "disconnected", TRUE);
  return ens_message_new_reply (call->msg, data);
}

/* The connection that subscribes: the caller, or (KSI style) the
 * connection of a connected agent named in "agent". */
static EnsMessage *
subscriber_target (EnsCall *call, EnsClient **out)
{
  const char *agent_name;

  *out = call->client;
  if (!param_string (call, "agent", FALSE, &agent_name))
    return invalid (call, "agent", "a string");
  if (agent_name)
    {
      EnsAgent *agent = g_hash_table_lookup (call->d->agents, agent_name);
      if (agent == NULL || agent->client == NULL)
        {
          g_autofree char *text = g_strdup_printf ("agent %s is not connected", agent_name);
          return error_reply (call, ENS_ERR_AGENT_NOT_CONNECTED, text);
        }
      *out = agent->client;
    }
  if (*out == NULL)
    return needs_connection (call);
  return NULL;
}

static EnsMessage *
verb_subscribe (EnsCall *call, gboolean subscribe)
{
  g_autoptr (GPtrArray) topics = NULL;
  EnsClient *target;
  EnsMessage *err = subscriber_target (call, &target);
  guint max = ens_config_get_uint (call->d->config, "max-subscriptions");
  JsonArray *changed = json_array_new ();
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);

  json_object_set_array_member (obj, subscribe ? "subscribed" : "unsubscribed", changed);
  if (err)
    return err;
  if (!param_strv (call, "topics", &topics))
    return invalid (call, "topics", "a non-empty list of topics or patterns");
  for (guint i = 0; i < topics->len; i++)
    if (strlen (g_ptr_array_index (topics, i)) > 1024)
      return invalid (call, "topics", "topics of at most 1024 bytes");
  if (subscribe && target->subscriber == NULL)
    target->subscriber = ens_subscriber_new (client_on_event, target, NULL);
  if (subscribe && ens_subscriber_count (target->subscriber) + topics->len > max)
    {
      g_autofree char *text = g_strdup_printf ("a connection may hold at most %u subscriptions", max);
      return error_reply (call, ENS_ERR_OVERLOADED, text);
    }
  for (guint i = 0; i < topics->len; i++)
    {
      const char *topic = g_ptr_array_index (topics, i);
      gboolean done = subscribe ? ens_bus_subscribe (call->d->bus, target->subscriber, topic)
                                : target->subscriber && ens_bus_unsubscribe (call->d->bus, target->subscriber, topic);
      if (done)
        json_array_add_string_element (changed, topic);
    }
  json_object_set_int_member (obj, "total", target->subscriber ? ens_subscriber_count (target->subscriber) : 0);
  if (target->subscriber)
    {
      GPtrArray *all = ens_subscriber_patterns (target->subscriber);
      json_object_set_member (obj, "topics", strv_node ((const char *const *) all->pdata, all->len));
    }
  return ens_message_new_reply (call->msg, data);
}

/* The connection a targeted event goes to: a client id, or the connection
 * serving an agent of that name.  It gets a subscriber to receive it. */
static EnsClient *
resolve_target (EnsDaemon *d, const char *to)
{
  EnsAgent *agent = g_hash_table_lookup (d->agents, to);
  EnsClient *client = agent && agent->client ? agent->client : g_hash_table_lookup (d->clients, to);

  if (client && client->subscriber == NULL)
    client->subscriber = ens_subscriber_new (client_on_event, client, NULL);
  return client;
}

static EnsMessage *
verb_publish (EnsCall *call)
{
  EnsDaemon *d = call->d;
  const char *topic, *to, *from_agent;
  EnsClient *target = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;
  guint delivered;

  if (!param_string (call, "topic", TRUE, &topic) || strlen (topic) > 1024)
    return invalid (call, "topic", "a non-empty string of at most 1024 bytes");
  if (ens_glob_is_pattern (topic))
    return invalid (call, "topic", "a topic without glob characters (* ? [ \\)");
  if (!param_string (call, "to", FALSE, &to))
    return invalid (call, "to", "a client id or agent name");
  if (!param_string (call, "from_agent", FALSE, &from_agent))
    return invalid (call, "from_agent", "an agent name");
  if (from_agent && !valid_name (from_agent))
    return invalid (call, "from_agent", "an agent name of 1-64 characters from [A-Za-z0-9._-]");
  if (to)
    target = resolve_target (d, to);

  init.topic = topic;
  init.to = to;
  init.from = from_agent ? from_agent : call->client ? call->client->id : ens_plugin_get_desc (call->plugin)->id;
  init.data = call->params ? json_object_get_member (call->params, "data") : NULL;
  event = ens_message_new (&init);
  d->counters.events_published++;
  delivered = ens_bus_publish (d->bus, event, target ? target->subscriber : NULL);
  d->counters.events_delivered += delivered;

  data = ens_json_object_node (&obj);
  json_object_set_int_member (obj, "seq", event->seq);
  json_object_set_int_member (obj, "delivered", delivered);
  if (to)
    json_object_set_boolean_member (obj, "target_found", target != NULL);
  return ens_message_new_reply (call->msg, data);
}

/* kv.*: per-agent state, scope "agent:<name>" in the state store. */
static EnsMessage *
kv_params (EnsCall *call, const char **agent, const char **key, char **scope)
{
  if (!param_string (call, "agent", TRUE, agent) || !valid_name (*agent))
    return invalid (call, "agent", "an agent name of 1-64 characters from [A-Za-z0-9._-]");
  if (key && (!param_string (call, "key", TRUE, key) || strlen (*key) > 1024))
    return invalid (call, "key", "a non-empty string of at most 1024 bytes");
  *scope = g_strconcat ("agent:", *agent, NULL);
  return NULL;
}

static EnsMessage *
state_error (EnsCall *call, GError *error)
{
  g_warning ("state store: %s", error->message);
  return error_reply (call, ENS_ERR_STATE, error->message);
}

static EnsMessage *
verb_kv (EnsCall *call)
{
  const char *action = call->msg->action + 3; /* after "kv." */
  const char *agent, *key = NULL;
  g_autofree char *scope = NULL;
  g_autoptr (GError) error = NULL;
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);
  EnsMessage *err = kv_params (call, &agent, strcmp (action, "list") == 0 ? NULL : &key, &scope);

  if (err)
    return err;
  json_object_set_string_member (obj, "agent", agent);
  if (key)
    json_object_set_string_member (obj, "key", key);

  if (strcmp (action, "set") == 0)
    {
      JsonNode *value = json_object_get_member (call->params, "value");
      g_autofree char *text = NULL;

      if (value == NULL)
        return invalid (call, "value", "present (any JSON value)");
      text = ens_json_to_string (value);
      if (!ens_state_set (call->d->state, scope, key, text, &error))
        return state_error (call, error);
      json_object_set_boolean_member (obj, "stored", TRUE);
    }
  else if (strcmp (action, "get") == 0)
    {
      g_autofree char *text = ens_state_get (call->d->state, scope, key, &error);
      g_autoptr (JsonNode) value = NULL;

      if (error)
        return state_error (call, error);
      if (text)
        value = json_from_string (text, NULL);
      json_object_set_member (obj, "value", value ? json_node_ref (value) : json_node_new (JSON_NODE_NULL));
      json_object_set_boolean_member (obj, "found", text != NULL);
    }
  else if (strcmp (action, "delete") == 0)
    {
      gboolean existed = FALSE;
      if (!ens_state_delete (call->d->state, scope, key, &existed, &error))
        return state_error (call, error);
      json_object_set_boolean_member (obj, "deleted", existed);
    }
  else /* list */
    {
      const char *prefix;
      g_autoptr (GPtrArray) keys = NULL;

      if (!param_string (call, "prefix", FALSE, &prefix) &&
          !(ens_json_get_string (call->params, "prefix") && !*ens_json_get_string (call->params, "prefix")))
        return invalid (call, "prefix", "a string");
      keys = ens_state_list (call->d->state, scope, prefix, 10000, &error);
      if (keys == NULL)
        return state_error (call, error);
      json_object_set_member (obj, "keys", strv_node ((const char *const *) keys->pdata, keys->len));
    }
  return ens_message_new_reply (call->msg, data);
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (((EnsDaemon *) data)->loop);
  return G_SOURCE_REMOVE;
}

static EnsMessage *
verb_shutdown (EnsCall *call)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = NULL;

  if (call->client == NULL || !(call->client->flags & ENS_CLIENT_FLAG_ADMIN))
    return error_reply (call, ENS_ERR_PERMISSION_DENIED, "shutdown is for admin connections only");
  g_message ("shutdown requested by %s (%s)", call->client->id, call->client->peer ? call->client->peer : "?");
  call->d->shutting_down = TRUE;
  /* After this reply is written: the transport flushes in the same turn. */
  g_idle_add_full (G_PRIORITY_LOW, quit_cb, call->d, NULL);

  data = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "status", "shutting_down");
  return ens_message_new_reply (call->msg, data);
}

static EnsMessage *
verb_processes_spawn (EnsCall *call)
{
  return ens_process_spawn (call->d, call->msg, call->params);
}

static EnsMessage *
verb_processes_list (EnsCall *call)
{
  return ens_process_list (call->msg);
}

/* complete {prompt | messages, model?, provider?, stream?, max_tokens?,
 * temperature?, task_type?, priority?, max_latency?, token_count?,
 * client_id?}: acknowledged at once; results come as targeted events to the
 * requester, or to client_id (a client id or agent name, as KSI names it). */
static EnsMessage *
verb_complete (EnsCall *call)
{
  const char *client_id = NULL;
  EnsMessage *answer = NULL;

  if (!param_string (call, "client_id", FALSE, &client_id))
    return invalid (call, "client_id", "a client id or agent name");
  if (client_id && call->client && strcmp (client_id, call->client->id) != 0)
    {
      /* Results for someone else (KSI asks on completion.sock, listens on
       * messaging.sock): the asking connection may close at once. */
      ens_completion_submit (call->d, call->msg, call->params, NULL, client_id, NULL, NULL, &answer);
      return answer;
    }
  if (client_id == NULL && call->client)
    client_id = call->client->id;
  ens_completion_submit (call->d, call->msg, call->params, call->client, client_id, NULL, NULL, &answer);
  return answer;
}

static EnsMessage *
verb_complete_cancel (EnsCall *call)
{
  return ens_completion_cancel (call->d, call->msg, call->params, call->client,
                                call->client && (call->client->flags & ENS_CLIENT_FLAG_ADMIN));
}

static EnsMessage *
verb_route (EnsCall *call)
{
  return ens_completion_route (call->d, call->msg, call->params);
}

static EnsMessage *
verb_providers (EnsCall *call)
{
  g_autoptr (JsonNode) data = ens_completion_providers ();
  return ens_message_new_reply (call->msg, data);
}

static EnsMessage *
verb_budget (EnsCall *call)
{
  g_autoptr (JsonNode) data = ens_completion_budget (call->d);
  return ens_message_new_reply (call->msg, data);
}

static EnsMessage *
verb_session_spawn (EnsCall *call)
{
  return ens_session_spawn (call->d, call->msg, call->params);
}

static EnsMessage *
verb_session_execute (EnsCall *call)
{
  return ens_session_execute (call->d, call->msg, call->params);
}

static EnsMessage *
verb_session_status (EnsCall *call)
{
  return ens_session_status (call->msg, call->params);
}

static EnsMessage *
verb_session_stop (EnsCall *call)
{
  return ens_session_stop (call->msg, call->params);
}

static EnsMessage *
verb_session_list (EnsCall *call)
{
  return ens_session_list (call->msg);
}

typedef EnsMessage *(*VerbFunc) (EnsCall *call);

static EnsMessage *verb_subscribe_on (EnsCall *call) { return verb_subscribe (call, TRUE); }
static EnsMessage *verb_unsubscribe (EnsCall *call) { return verb_subscribe (call, FALSE); }

static const struct {
  const char *action;
  VerbFunc func;
} verbs[] = {
  { "ping", verb_ping },
  { "health", verb_health },
  { "plugins.list", verb_plugins },
  { "agents.list", verb_agents_list },
  { "agents.register", verb_agents_register },
  { "agents.unregister", verb_agents_unregister },
  { "subscribe", verb_subscribe_on },
  { "unsubscribe", verb_unsubscribe },
  { "publish", verb_publish },
  { "kv.set", verb_kv },
  { "kv.get", verb_kv },
  { "kv.delete", verb_kv },
  { "kv.list", verb_kv },
  { "processes.spawn", verb_processes_spawn },
  { "processes.list", verb_processes_list },
  { "complete", verb_complete },
  { "complete.cancel", verb_complete_cancel },
  { "route", verb_route },
  { "providers.list", verb_providers },
  { "budget", verb_budget },
  { "sessions.spawn", verb_session_spawn },
  { "sessions.execute", verb_session_execute },
  { "sessions.status", verb_session_status },
  { "sessions.stop", verb_session_stop },
  { "sessions.list", verb_session_list },
  { "shutdown", verb_shutdown },
};

static EnsMessage *
run_verb (EnsCall *call)
{
  JsonNode *data = call->msg->data;

  if (data && !JSON_NODE_HOLDS_OBJECT (data) && !JSON_NODE_HOLDS_NULL (data))
    return invalid (call, "data", "an object");
  call->params = data && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL;
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    if (strcmp (verbs[i].action, call->msg->action) == 0)
      return verbs[i].func (call);

  {
    g_autofree char *text = g_strdup_printf ("unknown action \"%s\"; to ask an agent, name it in \"agent\"",
                                             call->msg->action);
    JsonObject *obj;
    g_autoptr (JsonNode) details = ens_json_object_node (&obj);
    JsonArray *known = json_array_new ();

    for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
      json_array_add_string_element (known, verbs[i].action);
    json_object_set_array_member (obj, "actions", known);
    return ens_message_new_error (call->msg, ENS_ERR_UNKNOWN_ACTION, text, details);
  }
}

void
ens_dispatch_client_submit (EnsClient *client, EnsMessage *msg)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsCall call = { .d = d, .client = client, .msg = msg };
  g_autoptr (EnsMessage) answer = NULL;

  if (ens_message_is_bounce (msg))
    {
      d->counters.errors++;
      client_deliver (client, msg);
      return;
    }
  if (msg->kind == ENS_MESSAGE_REPLY || msg->kind == ENS_MESSAGE_ERROR)
    {
      agent_answer (d, client, msg);
      return;
    }
  d->counters.requests++;
  /* Stamp the sender before anything keeps the message: replies and
   * forwarded requests name it. */
  if (g_strcmp0 (msg->from, client->id) != 0)
    ens_message_set_from (msg, client->id);
  if (msg->agent)
    {
      forward_to_agent (d, msg, client, NULL, NULL, NULL);
      return;
    }
  answer = run_verb (&call);
  if (answer->kind == ENS_MESSAGE_ERROR)
    d->counters.errors++;
  client_deliver (client, answer);
}

/* ---------------------------------------------------------------- plugins */

void
ens_dispatch_plugin_request (EnsPlugin *self, const char *agent, const char *action, JsonNode *data,
                             guint32 timeout_ms, EnsReplyFunc func, gpointer user_data)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  g_autoptr (EnsMessage) msg = NULL;

  init.action = action;
  init.agent = agent;
  init.from = ens_plugin_get_desc (self)->id;
  init.data = data;
  init.timeout_ms = timeout_ms;
  msg = ens_message_new (&init);
  if (agent)
    forward_to_agent (d, msg, NULL, self, func, user_data);
  else
    {
      EnsCall call = { .d = d, .plugin = self, .msg = msg };
      g_autoptr (EnsMessage) answer = run_verb (&call);
      reply_to_plugin (self, func, user_data, answer);
    }
}

void
ens_dispatch_publish (const char *from, const char *topic, JsonNode *data, const char *to)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;
  EnsClient *target = to ? resolve_target (d, to) : NULL;

  init.topic = topic;
  init.to = to;
  init.from = from;
  init.data = data;
  event = ens_message_new (&init);
  d->counters.events_published++;
  d->counters.events_delivered += ens_bus_publish (d->bus, event, target ? target->subscriber : NULL);
}

typedef struct {
  EnsPlugin *plugin;
  EnsEventFunc func;
  gpointer user_data;
  GDestroyNotify notify;
} PluginTap;

static void
plugin_tap_event (EnsMessage *event, gpointer data)
{
  PluginTap *pt = data;
  pt->func (event, pt->user_data);
}

static void
plugin_tap_free (gpointer data)
{
  PluginTap *pt = data;

  if (pt->notify)
    pt->notify (pt->user_data);
  g_free (pt);
}

guint
ens_dispatch_plugin_tap (EnsPlugin *self, EnsEventFunc func, gpointer user_data, GDestroyNotify notify)
{
  PluginTap *pt = g_new0 (PluginTap, 1);
  guint id;

  pt->plugin = self;
  pt->func = func;
  pt->user_data = user_data;
  pt->notify = notify;
  id = ens_bus_tap (ens_daemon_get ()->bus, plugin_tap_event, pt, plugin_tap_free);
  g_hash_table_insert (plugin_taps, GUINT_TO_POINTER (id), self);
  return id;
}

void
ens_dispatch_plugin_untap (EnsPlugin *self, guint id)
{
  if (g_hash_table_lookup (plugin_taps, GUINT_TO_POINTER (id)) != self)
    return;
  g_hash_table_remove (plugin_taps, GUINT_TO_POINTER (id));
  ens_bus_untap (ens_daemon_get ()->bus, id);
}

guint
ens_dispatch_watch_interest (EnsPlugin *self, EnsInterestFunc func, gpointer user_data)
{
  guint id = ens_bus_watch_interest (ens_daemon_get ()->bus, func, user_data);

  g_hash_table_insert (interest_watches, GUINT_TO_POINTER (id), self);
  return id;
}

void
ens_dispatch_unwatch_interest (EnsPlugin *self, guint id)
{
  if (g_hash_table_lookup (interest_watches, GUINT_TO_POINTER (id)) != self)
    return;
  g_hash_table_remove (interest_watches, GUINT_TO_POINTER (id));
  ens_bus_unwatch_interest (ens_daemon_get ()->bus, id);
}

void
ens_dispatch_publish_remote (EnsPlugin *self, const EnsMessageInit *init)
{
  EnsDaemon *d = ens_daemon_get ();
  EnsMessageInit copy = *init;
  g_autoptr (EnsMessage) event = NULL;
  EnsClient *target;

  (void) self;
  copy.kind = ENS_MESSAGE_EVENT;
  if (copy.topic == NULL || copy.topic[0] == '\0')
    return;
  target = copy.to ? resolve_target (d, copy.to) : NULL;
  event = ens_message_new (&copy);
  ens_message_set_remote (event);
  d->counters.events_delivered += ens_bus_publish (d->bus, event, target ? target->subscriber : NULL);
}

void
ens_dispatch_plugin_publish (EnsPlugin *self, const char *topic, JsonNode *data, const char *to)
{
  ens_dispatch_publish (ens_plugin_get_desc (self)->id, topic, data, to);
}

static void
plugin_sub_event (EnsMessage *event, gpointer data)
{
  PluginSub *ps = data;
  ps->func (event, ps->user_data);
}

static void
plugin_sub_free (gpointer data)
{
  PluginSub *ps = data;

  if (ps->notify)
    ps->notify (ps->user_data);
  g_free (ps);
}

guint
ens_dispatch_plugin_subscribe (EnsPlugin *self, const char *pattern, EnsEventFunc func, gpointer user_data,
                               GDestroyNotify notify)
{
  EnsDaemon *d = ens_daemon_get ();
  PluginSub *ps = g_new0 (PluginSub, 1);

  ps->id = ++next_plugin_sub;
  ps->plugin = self;
  ps->func = func;
  ps->user_data = user_data;
  ps->notify = notify;
  ps->subscriber = ens_subscriber_new (plugin_sub_event, ps, plugin_sub_free);
  ens_bus_subscribe (d->bus, ps->subscriber, pattern);
  g_hash_table_insert (plugin_subs, GUINT_TO_POINTER (ps->id), ps);
  return ps->id;
}

void
ens_dispatch_plugin_unsubscribe (EnsPlugin *self, guint id)
{
  PluginSub *ps = g_hash_table_lookup (plugin_subs, GUINT_TO_POINTER (id));

  if (ps == NULL || ps->plugin != self)
    return;
  g_hash_table_remove (plugin_subs, GUINT_TO_POINTER (id));
  ens_subscriber_free (ens_daemon_get ()->bus, ps->subscriber); /* frees ps */
}

/* A plugin stopped (or failed to start): nothing of it stays reachable. */
void
ens_dispatch_plugin_forget (EnsPlugin *self)
{
  EnsDaemon *d = ens_daemon_get ();
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr (GPtrArray) subs = g_ptr_array_new ();
  g_autoptr (GPtrArray) agents = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) served = g_ptr_array_new ();

  ens_completion_forget_plugin (self);

  g_hash_table_iter_init (&iter, plugin_taps);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value == self)
      {
        ens_bus_untap (d->bus, GPOINTER_TO_UINT (key));
        g_hash_table_iter_remove (&iter);
      }
  g_hash_table_iter_init (&iter, interest_watches);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value == self)
      {
        ens_bus_unwatch_interest (d->bus, GPOINTER_TO_UINT (key));
        g_hash_table_iter_remove (&iter);
      }
  g_hash_table_iter_init (&iter, plugin_subs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((PluginSub *) value)->plugin == self)
      g_ptr_array_add (subs, value);
  for (guint i = 0; i < subs->len; i++)
    ens_dispatch_plugin_unsubscribe (self, ((PluginSub *) g_ptr_array_index (subs, i))->id);

  g_hash_table_iter_init (&iter, d->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EnsPending *p = value;
      if (p->requesting_plugin == self)
        p->func = NULL;
      if (p->agent_plugin == self)
        g_ptr_array_add (served, p);
    }
  for (guint i = 0; i < served->len; i++)
    {
      EnsPending *p = g_ptr_array_index (served, i);
      g_autoptr (EnsMessage) err = ens_message_new_error (p->request, ENS_ERR_AGENT_GONE, "the agent plugin stopped", NULL);
      p->agent_plugin = NULL; /* the plugin can no longer answer: free it here */
      pending_finish (d, p, err);
    }
  g_ptr_array_set_size (served, 0);
  g_hash_table_iter_init (&iter, deferred_replies);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    if (((DeferredReply *) value)->plugin == self)
      g_hash_table_iter_remove (&iter);
  g_hash_table_iter_init (&iter, held_responders);
  while (g_hash_table_iter_next (&iter, &value, NULL))
    if (((EnsPending *) value)->agent_plugin == self)
      {
        g_hash_table_iter_steal (&iter);
        pending_free (value);
      }

  g_hash_table_iter_init (&iter, d->agents);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsAgent *) value)->plugin == self)
      g_ptr_array_add (agents, g_strdup (((EnsAgent *) value)->name));
  for (guint i = 0; i < agents->len; i++)
    agent_remove (d, g_ptr_array_index (agents, i));
}

void
ens_dispatch_init (EnsDaemon *d)
{
  d->clients = g_hash_table_new (g_str_hash, g_str_equal);
  d->agents = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) agent_free);
  d->pending = g_hash_table_new (g_str_hash, g_str_equal);
  plugin_subs = g_hash_table_new (g_direct_hash, g_direct_equal);
  plugin_taps = g_hash_table_new (g_direct_hash, g_direct_equal);
  interest_watches = g_hash_table_new (g_direct_hash, g_direct_equal);
  held_responders = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) pending_free, NULL);
  deferred_replies = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) deferred_reply_free, NULL);
}

void
ens_dispatch_shutdown (EnsDaemon *d)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, d->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      g_hash_table_iter_steal (&iter);
      pending_free (value);
    }
  g_clear_pointer (&d->pending, g_hash_table_unref);
  g_clear_pointer (&d->agents, g_hash_table_unref);
  g_clear_pointer (&d->clients, g_hash_table_unref);
  g_clear_pointer (&plugin_subs, g_hash_table_unref);
  g_clear_pointer (&plugin_taps, g_hash_table_unref);
  g_clear_pointer (&interest_watches, g_hash_table_unref);
  g_clear_pointer (&held_responders, g_hash_table_unref);
  g_clear_pointer (&deferred_replies, g_hash_table_unref);
}
