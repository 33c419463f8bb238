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

/* Publishes @event (transfer full), to the subscriber of the client its
 * @to names alone when it names one. */
static guint
publish (EnsEvents *events, EnsMessage *event)
{
  EnsClient *target = event->to ? resolve_target (events, event->to) : NULL;
  guint delivered = ens_bus_publish (events->bus, event, target_subscriber (target));

  ens_message_unref (event);
  return delivered;
}

guint
ens_events_publish (EnsEvents *events, const char *from, const char *topic, JsonNode *data, const char *to)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);

  init.topic = topic;
  init.to = to;
  init.from = from;
  init.data = data;
  return publish (events, ens_message_new (&init));
}

guint
ens_events_publish_text (EnsEvents *events, const char *from, const char *topic, const char *data_text, gsize len,
                         const char *to)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);

  init.topic = topic;
  init.to = to;
  init.from = from;
  init.data_text = data_text;
  init.data_text_len = (gssize) len;
  return publish (events, ens_message_new_checked (&init)); /* the core's own text */
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

/* publish's parameters, from the tree or from the text. */
typedef struct {
  const char *topic, *to, *from_agent; /* NULL: absent (or null) */
  gboolean topic_bad, to_bad, from_bad; /* present, but not a non-empty string */
  char *owned[3];
  const char *data_text; /* a container's text, or NULL */
  gsize data_len;
  JsonNode *data; /* a scalar's node (owned), or NULL */
} PublishParams;

static void
publish_params_clear (PublishParams *pp)
{
  for (guint i = 0; i < G_N_ELEMENTS (pp->owned); i++)
    g_free (pp->owned[i]);
  g_clear_pointer (&pp->data, json_node_unref);
}

static void
scan_string (PublishParams *pp, guint slot, const char **out, gboolean *bad, const char *value, const char *string)
{
  g_clear_pointer (&pp->owned[slot], g_free);
  *out = NULL;
  *bad = FALSE;
  if (string)
    {
      *out = pp->owned[slot] = g_strdup (string);
      *bad = string[0] == '\0';
    }
  else
    *bad = value[0] != 'n'; /* null is absent, anything else the wrong type */
}

static void
scan_publish_member (const char *name, const char *value, gsize value_len, const char *string, gpointer user_data)
{
  PublishParams *pp = user_data;

  if (strcmp (name, "topic") == 0)
    scan_string (pp, 0, &pp->topic, &pp->topic_bad, value, string);
  else if (strcmp (name, "to") == 0)
    scan_string (pp, 1, &pp->to, &pp->to_bad, value, string);
  else if (strcmp (name, "from_agent") == 0)
    scan_string (pp, 2, &pp->from_agent, &pp->from_bad, value, string);
  else if (strcmp (name, "data") == 0)
    {
      g_clear_pointer (&pp->data, json_node_unref);
      pp->data_text = NULL;
      pp->data_len = 0;
      if (value[0] == '{' || value[0] == '[')
        {
          pp->data_text = value;
          pp->data_len = value_len;
        }
      else
        pp->data = ens_json_parse (value, value_len, NULL);
    }
}

/* From the text (a native request: the event's data goes on unparsed), or
 * from the tree. */
static void
publish_params_read (EnsCall *call, PublishParams *pp)
{
  if (call->params_text)
    {
      /* checked when the request was read */
      ens_json_scan_checked_members (call->params_text, call->params_text_len, scan_publish_member, pp);
      return;
    }
  pp->topic_bad = !ens_call_string (call, "topic", TRUE, &pp->topic);
  pp->to_bad = !ens_call_string (call, "to", FALSE, &pp->to);
  pp->from_bad = !ens_call_string (call, "from_agent", FALSE, &pp->from_agent);
  if (call->params && json_object_has_member (call->params, "data"))
    pp->data = json_node_ref (json_object_get_member (call->params, "data"));
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PublishParams, publish_params_clear)

/* The reply to a publish, written as text: {topic, from, to?, seq,
 * delivered, target_found?}. */
static EnsMessage *
publish_reply (EnsCall *call, EnsMessage *event, const char *to, EnsClient *target, guint delivered)
{
  g_autoptr (GString) out = g_string_sized_new (128);

  g_string_append (out, "{\"topic\":");
  ens_json_write_string (out, event->topic);
  g_string_append (out, ",\"from\":");
  ens_json_write_string (out, event->from);
  if (to)
    {
      g_string_append (out, ",\"to\":");
      ens_json_write_string (out, to);
    }
  g_string_append (out, ",\"seq\":");
  ens_json_write_uint (out, event->seq);
  g_string_append (out, ",\"delivered\":");
  ens_json_write_uint (out, delivered);
  if (to)
    g_string_append (out, target ? ",\"target_found\":true" : ",\"target_found\":false");
  g_string_append_c (out, '}');
  return ens_message_new_reply_text (call->msg, out->str, out->len);
}

/* publish {topic, data?, to?, from_agent?} */
static EnsMessage *
verb_publish (EnsCall *call, gpointer data)
{
  EnsEvents *events = data;
  EnsClient *target = NULL;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (EnsMessage) event = NULL;
  g_auto (PublishParams) pp = { 0 };
  guint delivered;

  publish_params_read (call, &pp);
  if (pp.topic_bad || pp.topic == NULL || strlen (pp.topic) > 1024)
    return ens_call_invalid (call, "topic", "a non-empty string of at most 1024 bytes");
  if (ens_glob_is_pattern (pp.topic))
    return ens_call_invalid (call, "topic", "a topic without glob characters (* ? [ \\)");
  if (pp.to_bad)
    return ens_call_invalid (call, "to", "a client id or agent name");
  if (pp.from_bad)
    return ens_call_invalid (call, "from_agent", "an agent name");
  if (pp.from_agent && !ens_name_valid (pp.from_agent))
    return ens_call_invalid (call, "from_agent", "an agent name of 1-64 characters from [A-Za-z0-9._-]");
  if (pp.to)
    target = resolve_target (events, pp.to);

  init.topic = pp.topic;
  init.to = pp.to;
  init.from = pp.from_agent ? pp.from_agent : call->client ? call->client->id : ens_plugin_get_id (call->plugin);
  init.data = pp.data;
  init.data_text = pp.data_text;
  init.data_text_len = (gssize) pp.data_len;
  event = pp.data_text ? ens_message_new_checked (&init) : ens_message_new (&init);
  delivered = ens_bus_publish (events->bus, event, target_subscriber (target));
  return publish_reply (call, event, pp.to, target, delivered);
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
  ens_verbs_add_text (verbs, "publish", verb_publish, events);
}
