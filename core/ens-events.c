/* ens-events.c — publishing and subscribing for connections and for the
 * daemon itself.  A targeted event goes to one connection (a client id, or
 * the connection serving an agent of that name) and to observers of
 * "TOPIC:TARGET"; other subscribers never see it. */
#include "ens-events.h"
#include "ens-glob.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

struct _EnsEvents {
  EnsBus *bus;
  EnsClients *clients;
  EnsAgents *agents;
  EnsConfig *config;
};

EnsEvents *
ens_events_new (EnsBus *bus, EnsClients *clients, EnsAgents *agents, EnsConfig *config)
{
  EnsEvents *events = g_new0 (EnsEvents, 1);

  events->bus = bus;
  events->clients = clients;
  events->agents = agents;
  events->config = config;
  return events;
}

void
ens_events_free (EnsEvents *events)
{
  g_free (events);
}

/* The connection a targeted event goes to: a client id, or the connection
 * serving an agent of that name. */
static EnsClient *
resolve_target (EnsEvents *events, const char *to)
{
  EnsAgent *agent = ens_agents_lookup (events->agents, to);

  return agent && agent->client ? agent->client : ens_clients_lookup (events->clients, to);
}

static EnsSubscriber *
target_subscriber (EnsClient *target)
{
  return target ? ens_client_subscriber (target) : NULL;
}

guint
ens_events_publish (EnsEvents *events, const char *from, const char *topic, JsonNode *data, const char *to)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;
  EnsClient *target = to ? resolve_target (events, to) : NULL;

  init.topic = topic;
  init.to = to;
  init.from = from;
  init.data = data;
  event = ens_message_new (&init);
  return ens_bus_publish (events->bus, event, target_subscriber (target));
}

void
ens_events_publish_remote (EnsEvents *events, const EnsMessageInit *init)
{
  EnsMessageInit copy = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;
  EnsClient *target;

  /* A plugin built for an older minor hands a shorter struct. */
  memcpy (&copy, init, MIN (init->struct_size, sizeof copy));
  copy.struct_size = MIN (init->struct_size, sizeof copy);
  copy.kind = ENS_MESSAGE_EVENT;
  if (copy.topic == NULL || copy.topic[0] == '\0')
    return;
  target = copy.to ? resolve_target (events, copy.to) : NULL;
  event = ens_message_new (&copy);
  ens_message_set_remote (event);
  ens_bus_publish (events->bus, event, target_subscriber (target));
}

/* ------------------------------------------------------------------ verbs */

/* The connection that subscribes: the caller, or (KSI style) the
 * connection of a connected agent named in "agent". */
static EnsMessage *
subscriber_target (EnsEvents *events, EnsCall *call, EnsClient **out)
{
  const char *agent_name;

  *out = call->client;
  if (!ens_call_string (call, "agent", FALSE, &agent_name))
    return ens_call_invalid (call, "agent", "a string");
  if (agent_name)
    {
      EnsAgent *agent = ens_agents_lookup (events->agents, agent_name);
      if (agent == NULL || agent->client == NULL)
        {
          g_autofree char *text = g_strdup_printf ("agent %s is not connected", agent_name);
          return ens_call_error (call, ENS_ERR_AGENT_NOT_CONNECTED, text);
        }
      *out = agent->client;
    }
  if (*out == NULL)
    return ens_call_error (call, ENS_ERR_INVALID_REQUEST, "this action needs a client connection");
  return NULL;
}

static EnsMessage *
subscribe (EnsEvents *events, EnsCall *call, gboolean on)
{
  g_autoptr (GPtrArray) topics = NULL;
  EnsClient *target;
  EnsMessage *err = subscriber_target (events, call, &target);
  guint max = ens_config_get_uint (events->config, "max-subscriptions");
  JsonArray *changed = json_array_new ();
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_json_object_node (&obj);

  json_object_set_array_member (obj, on ? "subscribed" : "unsubscribed", changed);
  if (err)
    return err;
  if (!ens_call_strv (call, "topics", &topics))
    return ens_call_invalid (call, "topics", "a non-empty list of topics or patterns");
  for (guint i = 0; i < topics->len; i++)
    if (strlen (g_ptr_array_index (topics, i)) > 1024)
      return ens_call_invalid (call, "topics", "topics of at most 1024 bytes");
  if (on && ens_subscriber_count (ens_client_subscriber (target)) + topics->len > max)
    {
      g_autofree char *text = g_strdup_printf ("a connection may hold at most %u subscriptions", max);
      return ens_call_error (call, ENS_ERR_OVERLOADED, text);
    }
  for (guint i = 0; i < topics->len; i++)
    {
      const char *topic = g_ptr_array_index (topics, i);
      gboolean done = on ? ens_bus_subscribe (events->bus, target->subscriber, topic)
                         : target->subscriber && ens_bus_unsubscribe (events->bus, target->subscriber, topic);
      if (done)
        json_array_add_string_element (changed, topic);
    }
  json_object_set_int_member (obj, "total", target->subscriber ? ens_subscriber_count (target->subscriber) : 0);
  if (target->subscriber)
    {
      GPtrArray *all = ens_subscriber_patterns (target->subscriber);
      json_object_set_member (obj, "topics", ens_json_strv_node ((const char *const *) all->pdata, all->len));
    }
  return ens_message_new_reply (call->msg, data);
}

static EnsMessage *
verb_subscribe (EnsCall *call, gpointer data)
{
  return subscribe (data, call, TRUE);
}

static EnsMessage *
verb_unsubscribe (EnsCall *call, gpointer data)
{
  return subscribe (data, call, FALSE);
}

static EnsMessage *
verb_publish (EnsCall *call, gpointer data)
{
  EnsEvents *events = data;
  const char *topic, *to, *from_agent;
  EnsClient *target = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = NULL;
  guint delivered;

  if (!ens_call_string (call, "topic", TRUE, &topic) || strlen (topic) > 1024)
    return ens_call_invalid (call, "topic", "a non-empty string of at most 1024 bytes");
  if (ens_glob_is_pattern (topic))
    return ens_call_invalid (call, "topic", "a topic without glob characters (* ? [ \\)");
  if (!ens_call_string (call, "to", FALSE, &to))
    return ens_call_invalid (call, "to", "a client id or agent name");
  if (!ens_call_string (call, "from_agent", FALSE, &from_agent))
    return ens_call_invalid (call, "from_agent", "an agent name");
  if (from_agent && !ens_name_valid (from_agent))
    return ens_call_invalid (call, "from_agent", "an agent name of 1-64 characters from [A-Za-z0-9._-]");
  if (to)
    target = resolve_target (events, to);

  init.topic = topic;
  init.to = to;
  init.from = from_agent ? from_agent : call->client ? call->client->id : ens_plugin_get_id (call->plugin);
  init.data = call->params ? json_object_get_member (call->params, "data") : NULL;
  event = ens_message_new (&init);
  delivered = ens_bus_publish (events->bus, event, target_subscriber (target));

  reply = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "topic", topic);
  json_object_set_string_member (obj, "from", event->from);
  if (to)
    json_object_set_string_member (obj, "to", to);
  json_object_set_int_member (obj, "seq", event->seq);
  json_object_set_int_member (obj, "delivered", delivered);
  if (to)
    json_object_set_boolean_member (obj, "target_found", target != NULL);
  return ens_message_new_reply (call->msg, reply);
}

static int
by_string (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* bus.stats: who is connected and what each one listens to.
 * {connected_agents: [the agents connections serve], subscriptions:
 * {pattern: [subscriber]}, connections, events_published}; a subscriber is
 * named by the first agent its connection serves, else by its client id. */
static EnsMessage *
verb_bus_stats (EnsCall *call, gpointer data)
{
  EnsEvents *events = data;
  g_autoptr (GPtrArray) clients = ens_clients_list (events->clients);
  g_autoptr (GPtrArray) connected = g_ptr_array_new ();
  g_autoptr (GHashTable) by_pattern = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                             (GDestroyNotify) json_array_unref);
  g_autoptr (GList) patterns = NULL;
  JsonObject *obj, *subscriptions = json_object_new ();
  g_autoptr (JsonNode) reply = ens_json_object_node (&obj);

  for (guint i = 0; i < clients->len; i++)
    {
      EnsClient *client = g_ptr_array_index (clients, i);
      GPtrArray *names = ens_agents_served_by (events->agents, client);
      const char *name = names && names->len ? g_ptr_array_index (names, 0) : client->id;
      GPtrArray *mine = client->subscriber ? ens_subscriber_patterns (client->subscriber) : NULL;

      for (guint j = 0; names && j < names->len; j++)
        g_ptr_array_add (connected, g_ptr_array_index (names, j));
      for (guint j = 0; mine && j < mine->len; j++)
        {
          const char *pattern = g_ptr_array_index (mine, j);
          JsonArray *who = g_hash_table_lookup (by_pattern, pattern);
          if (who == NULL)
            {
              who = json_array_new ();
              g_hash_table_insert (by_pattern, (gpointer) pattern, who);
            }
          json_array_add_string_element (who, name);
        }
    }
  g_ptr_array_sort (connected, by_string);
  patterns = g_list_sort (g_hash_table_get_keys (by_pattern), (GCompareFunc) strcmp);
  for (GList *l = patterns; l; l = l->next)
    json_object_set_array_member (subscriptions, l->data, json_array_ref (g_hash_table_lookup (by_pattern, l->data)));
  json_object_set_member (obj, "connected_agents",
                          ens_json_strv_node ((const char *const *) connected->pdata, connected->len));
  json_object_set_object_member (obj, "subscriptions", subscriptions);
  json_object_set_int_member (obj, "connections", clients->len);
  json_object_set_int_member (obj, "events_published", ens_bus_published (events->bus));
  return ens_message_new_reply (call->msg, reply);
}

void
ens_events_add_verbs (EnsEvents *events, EnsVerbs *verbs)
{
  ens_verbs_add (verbs, "bus.stats", verb_bus_stats, events);
  ens_verbs_add (verbs, "subscribe", verb_subscribe, events);
  ens_verbs_add (verbs, "unsubscribe", verb_unsubscribe, events);
  ens_verbs_add (verbs, "publish", verb_publish, events);
}
