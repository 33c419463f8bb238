/* ens-ws.h — WebSockets on a libsoup-3 SoupServer: the static library
 * plugins/common/ws, linked by transport-websocket and transport-http (each
 * module keeps its own copy; every symbol stays hidden).
 *
 * Paths:
 *   /ws                 the native protocol: each text frame one request
 *                       {id, action, data, agent?} or an agent's {reply_to};
 *                       replies and events come back as native JSON frames.
 *   /ws/socket/{id}     Rhetor / aish: {"type":"write","content"} in, the
 *                       session's answer as {"type":"read","content","headers"}.
 *   anything else       the Neolith orchestrator-daemon protocol ({type, payload}),
 *                       only where asked for (transport-websocket's own port).
 *
 * Each connection is one EnsClient; closing the socket closes the client, so
 * the core cancels whatever it started.  Slow readers: at most
 * max-queue-messages frames wait per connection; past that the oldest events
 * are dropped and the client is told ({"event":"ensemble.dropped"} natively,
 * {"type":"events_dropped"} otherwise).  Replies are never dropped. */
#pragma once

#include <ensemble/ensemble.h>
#include <libsoup/soup.h>

typedef struct _EnsWs EnsWs;

/* Adds the native protocol at "/ws" and the Rhetor sockets at
 * "/ws/socket/{id}" to @server.  @token (may be NULL): the bearer token
 * every handshake must carry ("Authorization: Bearer TOKEN" or, for
 * browsers, "?token=TOKEN"), else 401.  Reads ws-max-message-bytes and
 * max-queue-messages through @host.  Everything it made goes away with
 * ens_ws_detach() or, at the latest, when @server is finalized. */
void ens_ws_attach (SoupServer *server, const EnsHost *host, EnsPlugin *self, const char *token);

/* Closes every WebSocket connection of @server (1001) and closes their
 * clients, removes the handlers.  Call it in stop() before dropping the
 * server; harmless when nothing is attached. */
void ens_ws_detach (SoupServer *server);

/* As ens_ws_attach(); with @neolith, the Neolith protocol on every other path
 * too, with its periodic daemon_status_update (ws-status-interval-ms).
 * Returns the attachment (owned by @server) for ens_ws_describe(). */
EnsWs *ens_ws_attach_full (SoupServer *server, const EnsHost *host, EnsPlugin *self, const char *token,
                           gboolean neolith);

/* (transfer full) counters for describe(): connections, accepted, refused,
 * messages_in, messages_out, events_dropped. */
JsonNode *ens_ws_describe (EnsWs *ws);
