/* ens-transport-websocket.c — the WebSocket port (ws-address:ws-port, 8787 by
 * default): the Neolith orchestrator-daemon protocol at "/", the native
 * protocol at "/ws", Rhetor AI sockets at "/ws/socket/{id}" (ens-ws.c).
 *
 * Security as transport-http: loopback by default; with http-token-file set
 * every handshake needs the bearer token (header, or ?token= for browsers),
 * and any other address refuses to start without one; without a token only
 * the daemon's own user and root are served (plugins/common/listener). */
#include "ens-listener.h"
#include "ens-ws.h"
#include "ens-host-config.h"

#include <string.h>

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  SoupServer *server;
  EnsListener *listener;
  EnsWs *ws;
  char *address;
  char *url;
  char *token;
  guint port;
} EnsWsTransport;

static void ws_stop (gpointer instance);

static gpointer
ws_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  EnsWsTransport *t = g_new0 (EnsWsTransport, 1);
  g_autoptr (GInetAddress) inet = NULL;

  t->host = host;
  t->self = self;
  t->address = ens_host_config_string (host, self, "ws-address", "127.0.0.1");
  t->port = ens_host_config_uint (host, self, "ws-port", 8787);
  if (!ens_host_config_token (host, self, "http-token-file", &t->token, error))
    goto fail;
  inet = g_inet_address_new_from_string (t->address);
  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "ws-address %s is not an IP address", t->address);
      goto fail;
    }
  if (!g_inet_address_get_is_loopback (inet) && t->token == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "refusing to serve WebSockets on %s without http-token-file: anyone on the network could use the "
                   "daemon",
                   t->address);
      goto fail;
    }

  t->server = soup_server_new ("server-header", "ensembled/0.1 ", NULL);
  t->ws = ens_ws_attach_full (t->server, host, self, t->token, TRUE);
  t->listener = ens_listener_new (t->server, inet, t->port, error);
  if (t->listener == NULL)
    goto fail;
  t->port = ens_listener_get_port (t->listener);
  t->url = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6 ? g_strdup_printf ("ws://[%s]:%u", t->address, t->port)
                                                                   : g_strdup_printf ("ws://%s:%u", t->address, t->port);
  ENS_LOG (host, self, G_LOG_LEVEL_MESSAGE, "listening on %s%s", t->url,
           t->token ? " (bearer token required)" : "");
  return t;

fail:
  ws_stop (t);
  return NULL;
}

static void
ws_stop (gpointer instance)
{
  EnsWsTransport *t = instance;

  if (t->server)
    {
      ens_ws_detach (t->server); /* closes every connection and its client */
      soup_server_disconnect (t->server);
    }
  g_clear_pointer (&t->listener, ens_listener_free);
  g_clear_object (&t->server);
  g_free (t->token);
  g_free (t->address);
  g_free (t->url);
  g_free (t);
}

static JsonNode *
ws_describe (gpointer instance)
{
  EnsWsTransport *t = instance;
  JsonNode *node = ens_ws_describe (t->ws);
  JsonObject *obj = json_node_get_object (node);

  json_object_set_string_member (obj, "url", t->url);
  json_object_set_boolean_member (obj, "token_required", t->token != NULL);
  return node;
}

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-websocket", "0.1.0",
                   "WebSocket: the Neolith orchestrator-daemon protocol, the native protocol on /ws and Rhetor AI "
                   "sockets on /ws/socket/{id}", ENS_PLUGIN_FLAG_NONE, ws_init, ws_stop, ws_describe, NULL)
