/* ens-listener.h — the TCP listener of a libsoup SoupServer (the static
 * library plugins/common/listener), used by transport-http and
 * transport-websocket instead of soup_server_listen().
 *
 * What it does that libsoup's own listener does not:
 *   - listens with a full backlog (SOMAXCONN), so back-to-back connects are
 *     never left to a SYN retry;
 *   - owns every connection it hands to the server: none outlives its use.
 *     libsoup 3.2 (Debian 12) never closes a keep-alive connection that the
 *     client closes between two requests: its fd stayed open until the
 *     server was disconnected.  Such a close is turned into a refused
 *     request that libsoup ends itself (ens-listener-stream.c);
 *   - tells who is behind a loopback connection (ens-peer.h), once per
 *     connection;
 *   - answers a request from its headers and closes, without reading the
 *     body (413 for a declared body over the limit). */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _EnsListener EnsListener;
typedef struct _EnsListenerStream EnsListenerStream; /* one accepted connection */

/* Listens on @address:@port (0: a free port) and hands every accepted
 * connection to @server, which must not listen by itself.  (transfer full);
 * NULL with @error when the address cannot be bound. */
EnsListener *ens_listener_new (SoupServer *server, GInetAddress *address, guint port, GError **error);

/* The port listened on (the kernel's choice when asked for 0). */
guint ens_listener_get_port (EnsListener *listener);

/* Connections accepted and not closed yet. */
guint ens_listener_get_n_connections (EnsListener *listener);

/* Stops listening and closes the connections still open.  Call it after
 * soup_server_disconnect(). */
void ens_listener_free (EnsListener *listener);

/* ---- connections the server does not get at once ----
 * With an accept function set, each accepted connection goes to it
 * (transfer full) instead of the server.  Its taker reads and writes the
 * socket itself and, at any point between two requests, either closes it
 * (ens_listener_stream_close) or hands it to the server with what it has
 * read of the next request already. */
typedef void (*EnsListenerAcceptFunc) (EnsListenerStream *stream, gpointer data);
void ens_listener_set_accept_func (EnsListener *listener, EnsListenerAcceptFunc func, gpointer data);
/* Hands @stream (transfer full) to the server, which reads the @len bytes
 * at @head (copied) before anything more from the socket.  A stream whose
 * listener is gone is closed instead. */
void ens_listener_hand_over (EnsListenerStream *stream, const void *head, gsize len);
/* (transfer none) the stream's socket, and its peer's address. */
GSocket *ens_listener_stream_get_socket (EnsListenerStream *stream);
GSocketAddress *ens_listener_stream_get_remote (EnsListenerStream *stream);
/* ens_listener_peer_is_trusted() for a connection the server has not got. */
gboolean ens_listener_stream_peer_is_trusted (EnsListenerStream *stream, GError **error);
/* Closes @stream's connection (the listener forgets it); the caller still
 * drops its reference. */
void ens_listener_stream_close (EnsListenerStream *stream);

/* Whether the peer of @msg's connection is the daemon's own user or root,
 * as the kernel tells it (looked up on the first call for a connection,
 * then remembered).  FALSE with @error (G_IO_ERROR_PERMISSION_DENIED, a
 * message naming the uid or why none could be told) otherwise. */
gboolean ens_listener_peer_is_trusted (SoupServerMessage *msg, GError **error);

/* (transfer none) the socket of @msg's connection, or NULL when it did not
 * come through an EnsListener. */
GSocket *ens_listener_socket (SoupServerMessage *msg);

/* Answers @msg with @status and the JSON @body (transfer none) right away,
 * without reading the request's body, and closes its connection (after a
 * short grace period in which what the client still sends is read and
 * dropped, so the answer is not lost to a reset).  For an early handler:
 * the message is taken from the server. */
void ens_listener_refuse (SoupServerMessage *msg, guint status, const char *body);

/* Whether @msg's connection is still open (FALSE once it closed, or when
 * it did not come through an EnsListener). */
gboolean ens_listener_is_open (SoupServerMessage *msg);

/* Shuts @msg's connection down (both ways); the server then ends the
 * request itself.  For a client too slow to send its request. */
void ens_listener_cut (SoupServerMessage *msg);

G_END_DECLS
