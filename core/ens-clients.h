/* ens-clients.h — the connections transports register (ens-clients.c):
 * ids, their sinks, what keeps each one from idling, and the idle sweep.
 *
 * Signal of EnsClients:
 *   client-closed (EnsClient *client)
 *       the connection is gone (its subscriptions already dropped); the
 *       parts that hold anything of it let go.  The client is freed after.
 */
#pragma once

#include "ens-bus.h"
#include "ens-plugin-private.h"

G_BEGIN_DECLS

#define ENS_TYPE_CLIENTS (ens_clients_get_type ())
G_DECLARE_FINAL_TYPE (EnsClients, ens_clients, ENS, CLIENTS, GObject)

/* One connection.  Fields are read by the core's parts; pending and holds
 * are kept by those that create what they count. */
struct _EnsClient {
  EnsClients *owner;
  char *id;
  EnsPlugin *transport;       /* NULL: a connection of the daemon itself (D-Bus) */
  const EnsClientSink *sink;
  gpointer sink_data;
  guint32 flags;              /* EnsClientFlags */
  char *peer;
  EnsSubscriber *subscriber;  /* made on first need (ens_client_subscriber) */
  guint pending;              /* its requests waiting for an agent */
  guint holds;                /* what it waits for or serves: requests, completions, agents */
  gint64 connected_real_us;
  /* idle sweep */
  gboolean active;            /* sent something since the last sweep */
  gint64 quiet_since_us;      /* monotonic */
  gboolean closing;           /* asked to disconnect */
  gboolean lazy_data;         /* its transport reads data through host->message_data */
};

EnsClients *ens_clients_new (EnsBus *bus, const char *node_id);
/* host->client_new: (transfer full) released by ens_client_close(). */
EnsClient *ens_clients_add (EnsClients *clients, EnsPlugin *transport, const EnsClientSink *sink,
                            gpointer sink_data, guint32 flags, const char *peer);
/* host->client_close: emits client-closed, then frees @client. */
void ens_client_close (EnsClient *client);
const char *ens_client_id (EnsClient *client);
/* Hands @msg (transfer none) to the connection's transport. */
void ens_client_deliver (EnsClient *client, EnsMessage *msg);
/* (transfer none) the client's subscriber, made on first call. */
EnsSubscriber *ens_client_subscriber (EnsClient *client);
/* (transfer none) the client with @id, or NULL. */
EnsClient *ens_clients_lookup (EnsClients *clients, const char *id);
guint ens_clients_count (EnsClients *clients);
/* (transfer container) every connection, in no order; valid until the
 * next one closes. */
GPtrArray *ens_clients_list (EnsClients *clients);
/* Subscriptions held by all connections. */
guint ens_clients_subscriptions (EnsClients *clients);
/* Asks every transport to close every connection (daemon shutdown). */
void ens_clients_disconnect_all (EnsClients *clients, const char *reason);
/* Connections of transports that hold no subscription and nothing pending
 * or served are asked to close after @seconds without a message; 0: never. */
void ens_clients_set_idle_timeout (EnsClients *clients, guint seconds);

G_END_DECLS
