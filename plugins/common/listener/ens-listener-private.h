/* ens-listener-private.h — inside plugins/common/listener: one accepted
 * connection as the SoupServer sees it (ens-listener-stream.c). */
#pragma once

#include "ens-listener.h"

G_BEGIN_DECLS

#define ENS_TYPE_LISTENER_STREAM (ens_listener_stream_get_type ())
G_DECLARE_FINAL_TYPE (EnsListenerStream, ens_listener_stream, ENS, LISTENER_STREAM, GIOStream)

typedef enum {
  ENS_PEER_UNKNOWN,
  ENS_PEER_TRUSTED,
  ENS_PEER_REFUSED,
} EnsPeerVerdict;

struct _EnsListenerStream {
  GIOStream parent;
  GSocketConnection *base;     /* the accepted socket (owned) */
  GInputStream *input;         /* what libsoup reads (owned) */
  GSocketAddress *local;       /* ends of the connection, also handed to libsoup (owned) */
  GSocketAddress *remote;
  EnsListener *listener;       /* NULL once closed, or once the listener is gone */
  gboolean busy;               /* libsoup has a request of this connection under way */
  gboolean ended;              /* a close between requests was turned into a refused request */
  EnsPeerVerdict peer;
  char *peer_refusal;          /* why the peer is refused */
};

/* A connection of @listener around @base (transfer none).  (transfer full);
 * NULL with @error when the socket has no addresses (already reset). */
EnsListenerStream *ens_listener_stream_new (GSocketConnection *base, EnsListener *listener, GError **error);

/* Called by @stream when it closes or goes: @listener forgets it. */
void ens_listener_forget (EnsListener *listener, EnsListenerStream *stream);

/* The connection @msg came on, (transfer none); NULL for a message of a
 * connection no listener made. */
EnsListenerStream *ens_listener_stream_of (SoupServerMessage *msg);

/* Makes @stream's input give the @len bytes at @head (copied) before
 * reading the socket again. */
void ens_listener_stream_unread (EnsListenerStream *stream, const void *head, gsize len);

G_END_DECLS
