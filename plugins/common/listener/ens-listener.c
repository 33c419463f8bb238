/* ens-listener.c — accepts TCP connections for a SoupServer (see
 * ens-listener.h and, for the connections themselves,
 * ens-listener-stream.c). */
#include "ens-listener-private.h"
#include "ens-peer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* A refused request's connection: how long, and how much of what the client
 * still sends, is read and dropped before closing (a close with unread
 * input resets the connection, and a reset can destroy the answer before
 * the client reads it). */
#define LINGER_MS 2000
#define LINGER_BYTES (1024 * 1024)

struct _EnsListener {
  SoupServer *server;
  GSocketService *service;
  /* libsoup keeps connections alive only on a server that has a listener of
   * its own: it gets one on a socket pair nobody else can reach, which
   * never has anything to accept. */
  GSocket *idle_pair[2];
  GHashTable *open;        /* EnsListenerStream* not closed yet (not owned) */
  GHashTable *refusals;    /* Refusal* under way (owned) */
  guint port;
  gulong started_id, finished_id, aborted_id;
  EnsListenerAcceptFunc accept_func;
  gpointer accept_data;
};

typedef struct _Refusal Refusal;
static void refusal_free (Refusal *r);

/* ------------------------------------------------------------ requests */

static void
on_request_started (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  EnsListenerStream *stream = ens_listener_stream_of (msg);

  (void) server;
  (void) data;
  if (stream)
    stream->busy = TRUE;
}

static void
on_request_ended (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  EnsListenerStream *stream = ens_listener_stream_of (msg);

  (void) server;
  (void) data;
  if (stream)
    stream->busy = FALSE;
}

/* ------------------------------------------------------------ accepting */

static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  EnsListener *listener = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (EnsListenerStream) stream = NULL;

  (void) service;
  (void) source;
  g_socket_set_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
  stream = ens_listener_stream_new (connection, listener, &error);
  if (stream == NULL)
    return TRUE; /* reset before it was accepted: dropped with @connection */
  g_hash_table_add (listener->open, stream);
  if (listener->accept_func)
    {
      listener->accept_func (g_steal_pointer (&stream), listener->accept_data);
      return TRUE;
    }
  if (!soup_server_accept_iostream (listener->server, G_IO_STREAM (stream), stream->local, stream->remote, &error))
    g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
  return TRUE;
}

EnsListener *
ens_listener_new (SoupServer *server, GInetAddress *address, guint port, GError **error)
{
  EnsListener *listener = g_new0 (EnsListener, 1);
  g_autoptr (GSocketAddress) wanted = g_inet_socket_address_new (address, port);
  g_autoptr (GSocketAddress) effective = NULL;
  g_autoptr (GSocket) listening = NULL;
  int pair[2];

  listener->server = g_object_ref (server);
  listener->open = g_hash_table_new (g_direct_hash, g_direct_equal);
  listener->refusals = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) refusal_free, NULL);
  listener->service = g_socket_service_new ();
  listening = g_socket_new (g_inet_address_get_family (address), G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (listening == NULL)
    goto fail;
  /* "::" is IPv6 only, as libsoup had it. */
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (listening, IPPROTO_IPV6, IPV6_V6ONLY, TRUE, NULL);
  /* The kernel caps it at net.core.somaxconn (4096 by default). */
  g_socket_set_listen_backlog (listening, SOMAXCONN);
  if (!g_socket_bind (listening, wanted, TRUE, error) || !g_socket_listen (listening, error) ||
      !g_socket_listener_add_socket (G_SOCKET_LISTENER (listener->service), listening, NULL, error))
    goto fail;
  effective = g_socket_get_local_address (listening, error);
  if (effective == NULL)
    goto fail;
  listener->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "socketpair: %s", g_strerror (saved));
      goto fail;
    }
  listener->idle_pair[0] = g_socket_new_from_fd (pair[0], error);
  if (listener->idle_pair[0] == NULL)
    {
      close (pair[0]);
      close (pair[1]);
      goto fail;
    }
  listener->idle_pair[1] = g_socket_new_from_fd (pair[1], error);
  if (listener->idle_pair[1] == NULL)
    {
      close (pair[1]);
      goto fail;
    }
  if (!soup_server_listen_socket (server, listener->idle_pair[0], 0, error))
    goto fail;

  listener->started_id = g_signal_connect (server, "request-started", G_CALLBACK (on_request_started), listener);
  listener->finished_id = g_signal_connect (server, "request-finished", G_CALLBACK (on_request_ended), listener);
  listener->aborted_id = g_signal_connect (server, "request-aborted", G_CALLBACK (on_request_ended), listener);
  g_signal_connect (listener->service, "incoming", G_CALLBACK (on_incoming), listener);
  g_socket_service_start (listener->service);
  return listener;

fail:
  ens_listener_free (listener);
  return NULL;
}

void
ens_listener_set_accept_func (EnsListener *listener, EnsListenerAcceptFunc func, gpointer data)
{
  listener->accept_func = func;
  listener->accept_data = data;
}

void
ens_listener_hand_over (EnsListenerStream *stream, const void *head, gsize len)
{
  g_autoptr (GError) error = NULL;

  if (stream->listener != NULL)
    {
      ens_listener_stream_unread (stream, head, len);
      if (!soup_server_accept_iostream (stream->listener->server, G_IO_STREAM (stream), stream->local, stream->remote,
                                        &error))
        g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
    }
  else
    g_io_stream_close (G_IO_STREAM (stream), NULL, NULL); /* the listener is gone */
  g_object_unref (stream);
}

void
ens_listener_stream_close (EnsListenerStream *stream)
{
  g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
}

GSocketAddress *
ens_listener_stream_get_remote (EnsListenerStream *stream)
{
  return stream->remote;
}

guint
ens_listener_get_port (EnsListener *listener)
{
  return listener->port;
}

guint
ens_listener_get_n_connections (EnsListener *listener)
{
  return g_hash_table_size (listener->open);
}

void
ens_listener_forget (EnsListener *listener, EnsListenerStream *stream)
{
  g_hash_table_remove (listener->open, stream);
}

void
ens_listener_free (EnsListener *listener)
{
  GList *streams;

  if (listener == NULL)
    return;
  if (listener->service)
    {
      g_socket_service_stop (listener->service);
      g_socket_listener_close (G_SOCKET_LISTENER (listener->service));
      g_signal_handlers_disconnect_by_data (listener->service, listener);
      g_clear_object (&listener->service);
    }
  if (listener->started_id)
    {
      g_signal_handler_disconnect (listener->server, listener->started_id);
      g_signal_handler_disconnect (listener->server, listener->finished_id);
      g_signal_handler_disconnect (listener->server, listener->aborted_id);
    }
  /* Nothing of ours runs after this: refusals end now, and what the
   * server has not closed yet closes here. */
  g_hash_table_unref (listener->refusals);
  streams = g_hash_table_get_keys (listener->open);
  g_hash_table_remove_all (listener->open);
  for (GList *l = streams; l; l = l->next)
    {
      EnsListenerStream *stream = l->data;
      stream->listener = NULL;
      g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
    }
  g_list_free (streams);
  g_hash_table_unref (listener->open);
  g_clear_object (&listener->idle_pair[0]); /* the server's listener holds it until disconnected */
  if (listener->idle_pair[1])
    g_socket_close (listener->idle_pair[1], NULL);
  g_clear_object (&listener->idle_pair[1]);
  g_object_unref (listener->server);
  g_free (listener);
}

/* ------------------------------------------------------------ the peer */

GSocket *
ens_listener_socket (SoupServerMessage *msg)
{
  EnsListenerStream *stream = ens_listener_stream_of (msg);

  return stream ? ens_listener_stream_get_socket (stream) : NULL;
}

gboolean
ens_listener_peer_is_trusted (SoupServerMessage *msg, GError **error)
{
  EnsListenerStream *stream = ens_listener_stream_of (msg);

  if (stream == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                           "the connection's peer cannot be told");
      return FALSE;
    }
  return ens_listener_stream_peer_is_trusted (stream, error);
}

gboolean
ens_listener_stream_peer_is_trusted (EnsListenerStream *stream, GError **error)
{
  if (stream->peer == ENS_PEER_UNKNOWN)
    {
      g_autoptr (GError) lookup_error = NULL;
      guint32 uid;

      if (!ens_peer_tcp_uid (stream->local, stream->remote, &uid, &lookup_error))
        stream->peer_refusal = g_strdup_printf ("the connection's user cannot be told (%s)", lookup_error->message);
      else if (!ens_peer_uid_is_trusted (uid))
        stream->peer_refusal = g_strdup_printf ("the connection comes from uid %u", uid);
      stream->peer = stream->peer_refusal ? ENS_PEER_REFUSED : ENS_PEER_TRUSTED;
    }
  if (stream->peer == ENS_PEER_TRUSTED)
    return TRUE;
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, stream->peer_refusal);
  return FALSE;
}

/* ------------------------------------------------------------ refusing early */

struct _Refusal {
  EnsListener *listener;
  GIOStream *io;             /* taken from the server (owned) */
  EnsListenerStream *stream; /* (owned) */
  GSource *drain;            /* what the client still sends, read and dropped */
  guint timeout_id;
  gsize drained;
};

/* Removed from listener->refusals: closes the connection. */
static void
refusal_free (Refusal *r)
{
  if (r->drain)
    {
      g_source_destroy (r->drain);
      g_source_unref (r->drain);
    }
  if (r->timeout_id)
    g_source_remove (r->timeout_id);
  g_io_stream_close (G_IO_STREAM (r->stream), NULL, NULL);
  g_clear_object (&r->io);
  g_object_unref (r->stream);
  g_free (r);
}

static gboolean
refusal_drain (GSocket *socket, GIOCondition condition, gpointer data)
{
  Refusal *r = data;
  char buffer[16384];

  (void) condition;
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_socket_receive_with_blocking (socket, buffer, sizeof buffer, FALSE, NULL, &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
      if (n <= 0 || (r->drained += (gsize) n) >= LINGER_BYTES)
        {
          g_hash_table_remove (r->listener->refusals, r);
          return G_SOURCE_REMOVE;
        }
    }
}

static gboolean
refusal_timeout (gpointer data)
{
  Refusal *r = data;

  r->timeout_id = 0;
  g_hash_table_remove (r->listener->refusals, r);
  return G_SOURCE_REMOVE;
}

void
ens_listener_refuse (SoupServerMessage *msg, guint status, const char *body)
{
  EnsListenerStream *stream = ens_listener_stream_of (msg);
  g_autofree char *answer = NULL;
  GSocket *socket;
  Refusal *r;
  gssize sent;

  if (stream == NULL || stream->listener == NULL)
    {
      /* Not a connection of a listener: the server answers once it has
       * read the body. */
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
      soup_server_message_set_status (msg, status, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
      return;
    }
  {
    /* The headers the server set so far that every answer carries. */
    const char *id = soup_message_headers_get_one (soup_server_message_get_response_headers (msg), "x-request-id");
    g_autofree char *id_line = id ? g_strdup_printf ("x-request-id: %s\r\n", id) : g_strdup ("");

    answer = g_strdup_printf ("HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                              "%sConnection: close\r\n\r\n%s",
                              status, soup_status_get_phrase (status), strlen (body), id_line, body);
  }
  r = g_new0 (Refusal, 1);
  r->listener = stream->listener;
  r->stream = g_object_ref (stream);
  /* The server lets go of the connection: the body is never read. */
  r->io = soup_server_message_steal_connection (msg);
  g_hash_table_add (r->listener->refusals, r);
  socket = ens_listener_stream_get_socket (stream);
  /* A few hundred bytes on a connection nothing was written to yet. */
  sent = g_socket_send_with_blocking (socket, answer, strlen (answer), FALSE, NULL, NULL);
  if (sent != (gssize) strlen (answer))
    {
      g_hash_table_remove (r->listener->refusals, r);
      return;
    }
  /* No more from us; what the client still sends is read and dropped until
   * it stops, for a while. */
  g_socket_shutdown (socket, FALSE, TRUE, NULL);
  r->drain = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (r->drain, (GSourceFunc) (void (*) (void)) refusal_drain, r, NULL);
  g_source_attach (r->drain, g_main_context_get_thread_default ());
  r->timeout_id = g_timeout_add (LINGER_MS, refusal_timeout, r);
}

gboolean
ens_listener_is_open (SoupServerMessage *msg)
{
  EnsListenerStream *stream = ens_listener_stream_of (msg);

  return stream != NULL && stream->listener != NULL;
}

void
ens_listener_cut (SoupServerMessage *msg)
{
  EnsListenerStream *stream = ens_listener_stream_of (msg);

  if (stream)
    g_socket_shutdown (ens_listener_stream_get_socket (stream), TRUE, TRUE, NULL);
}
