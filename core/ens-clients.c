/* ens-clients.c — the connections of every transport, and the idle sweep.
 *
 * The sweep costs nothing per message: a submit only sets client->active.
 * A timer, at a quarter of the idle timeout, looks at every connection once:
 * one that was active, or holds anything (a subscription, an agent it
 * serves, a request or completion it waits for), starts a quiet period; one
 * quiet for the whole timeout is asked to close through its sink's
 * disconnect(), and its transport closes it. */
#include "ens-clients.h"
#include "ens-message-private.h"

#define IDLE_REASON "idle: no subscription, agent or pending work (idle-timeout-seconds)"

struct _EnsClients {
  GObject parent;
  EnsBus *bus;
  char *node_id;
  GHashTable *table; /* id -> EnsClient */
  guint64 next_client;
  guint idle_timeout_s;
  guint sweep_id;
};

G_DEFINE_FINAL_TYPE (EnsClients, ens_clients, G_TYPE_OBJECT)

enum { SIGNAL_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
ens_clients_finalize (GObject *object)
{
  EnsClients *clients = ENS_CLIENTS (object);

  if (clients->sweep_id)
    g_source_remove (clients->sweep_id);
  g_hash_table_unref (clients->table);
  g_object_unref (clients->bus);
  g_free (clients->node_id);
  G_OBJECT_CLASS (ens_clients_parent_class)->finalize (object);
}

static void
ens_clients_class_init (EnsClientsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ens_clients_finalize;
  signals[SIGNAL_CLOSED] = g_signal_new ("client-closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                         NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static void
ens_clients_init (EnsClients *clients)
{
  clients->table = g_hash_table_new (g_str_hash, g_str_equal);
}

EnsClients *
ens_clients_new (EnsBus *bus, const char *node_id)
{
  EnsClients *clients = g_object_new (ENS_TYPE_CLIENTS, NULL);

  clients->bus = g_object_ref (bus);
  clients->node_id = g_strdup (node_id);
  return clients;
}

EnsClient *
ens_clients_add (EnsClients *clients, EnsPlugin *transport, const EnsClientSink *sink, gpointer sink_data,
                 guint32 flags, const char *peer)
{
  EnsClient *client = g_new0 (EnsClient, 1);

  client->owner = clients;
  client->id = g_strdup_printf ("c%" G_GUINT64_FORMAT "-%s", ++clients->next_client, clients->node_id);
  client->transport = transport;
  client->sink = sink;
  client->sink_data = sink_data;
  client->flags = flags;
  client->lazy_data = (transport && ens_plugin_reads_data_lazily (transport)) || (flags & ENS_CLIENT_FLAG_LAZY_DATA);
  client->peer = g_strdup (peer);
  client->connected_real_us = g_get_real_time ();
  client->quiet_since_us = g_get_monotonic_time ();
  g_hash_table_insert (clients->table, client->id, client);
  g_debug ("client %s connected (%s, via %s)", client->id, peer ? peer : "?",
           transport ? ens_plugin_get_id (transport) : "the core");
  return client;
}

const char *
ens_client_id (EnsClient *client)
{
  return client->id;
}

void
ens_client_deliver (EnsClient *client, EnsMessage *msg)
{
  if (!client->lazy_data)
    ens_message_get_data (msg); /* the transport may read msg->data */
  client->sink->deliver (client->sink_data, msg);
}

static void
client_on_event (EnsMessage *event, gpointer data)
{
  ens_client_deliver (data, event);
}

EnsSubscriber *
ens_client_subscriber (EnsClient *client)
{
  if (client->subscriber == NULL)
    client->subscriber = ens_subscriber_new (client_on_event, client, NULL);
  return client->subscriber;
}

void
ens_client_close (EnsClient *client)
{
  EnsClients *clients = client->owner;

  g_debug ("client %s closed", client->id);
  g_hash_table_remove (clients->table, client->id);
  ens_subscriber_free (clients->bus, client->subscriber);
  client->subscriber = NULL;
  g_signal_emit (clients, signals[SIGNAL_CLOSED], 0, client);
  g_free (client->peer);
  g_free (client->id);
  g_free (client);
}

EnsClient *
ens_clients_lookup (EnsClients *clients, const char *id)
{
  return g_hash_table_lookup (clients->table, id);
}

guint
ens_clients_count (EnsClients *clients)
{
  return g_hash_table_size (clients->table);
}

GPtrArray *
ens_clients_list (EnsClients *clients)
{
  GPtrArray *list = g_ptr_array_sized_new (g_hash_table_size (clients->table));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, clients->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (list, value);
  return list;
}

guint
ens_clients_subscriptions (EnsClients *clients)
{
  GHashTableIter iter;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&iter, clients->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((EnsClient *) value)->subscriber)
      n += ens_subscriber_count (((EnsClient *) value)->subscriber);
  return n;
}

/* (transfer container) the ids of the clients for which @pick says yes. */
static GPtrArray *
pick_ids (EnsClients *clients, gboolean (*pick) (EnsClient *client, gpointer data), gpointer data)
{
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, clients->table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (pick == NULL || pick (value, data))
      g_ptr_array_add (ids, g_strdup (((EnsClient *) value)->id));
  return ids;
}

/* Each one looked up again: a disconnect may close its client at once. */
static void
disconnect_ids (EnsClients *clients, GPtrArray *ids, const char *reason)
{
  for (guint i = 0; i < ids->len; i++)
    {
      EnsClient *client = g_hash_table_lookup (clients->table, g_ptr_array_index (ids, i));
      if (client)
        {
          client->closing = TRUE;
          client->sink->disconnect (client->sink_data, reason);
        }
    }
}

void
ens_clients_disconnect_all (EnsClients *clients, const char *reason)
{
  g_autoptr (GPtrArray) ids = pick_ids (clients, NULL, NULL);

  disconnect_ids (clients, ids, reason);
}

/* ------------------------------------------------------------------ idle */

static gboolean
idle_too_long (EnsClient *client, gpointer data)
{
  EnsClients *clients = client->owner;
  gint64 now = *(gint64 *) data;
  gboolean holds = client->holds > 0 || (client->subscriber && ens_subscriber_count (client->subscriber) > 0);

  if (client->transport == NULL || client->closing)
    return FALSE;
  if (client->active || holds)
    {
      client->active = FALSE;
      client->quiet_since_us = now;
      return FALSE;
    }
  return now - client->quiet_since_us >= (gint64) clients->idle_timeout_s * G_USEC_PER_SEC;
}

static gboolean
sweep_cb (gpointer data)
{
  EnsClients *clients = data;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (GPtrArray) ids = pick_ids (clients, idle_too_long, &now);

  for (guint i = 0; i < ids->len; i++)
    {
      EnsClient *client = g_hash_table_lookup (clients->table, g_ptr_array_index (ids, i));
      g_message ("closing idle connection %s (%s)", client->id, client->peer ? client->peer : "?");
    }
  disconnect_ids (clients, ids, IDLE_REASON);
  return G_SOURCE_CONTINUE;
}

void
ens_clients_set_idle_timeout (EnsClients *clients, guint seconds)
{
  if (clients->sweep_id)
    g_source_remove (clients->sweep_id);
  clients->sweep_id = 0;
  clients->idle_timeout_s = seconds;
  if (seconds > 0)
    clients->sweep_id = g_timeout_add (CLAMP (seconds * 250u, 100u, 15000u), sweep_cb, clients);
}
