/* ens-listener-stream.c — one accepted TCP connection, as handed to the
 * SoupServer with soup_server_accept_iostream().
 *
 * libsoup 3.2 (fixed upstream in 3.3, commit d20c6601 "server: do not leak
 * idle connections closed by the client"): after answering a keep-alive
 * request it reads the next one; when that read ends (EOF or an error)
 * before a single byte, the new message has never "started", so it has no
 * completion callback, SoupServer never learns of the end, and the
 * connection (its fd, its objects) stays in the server's client list until
 * the server is disconnected.  A message that has started does end
 * properly: on its error libsoup disconnects the connection.
 *
 * So the input stream here watches for exactly that: an end of input while
 * libsoup has no request under way (SoupServer's request-started and
 * request-finished signals, followed by ens-listener.c).  It then shuts the
 * socket for writing (the client sees the FIN it would have seen from a
 * server closing an idle connection) and hands libsoup one NUL byte
 * followed by the end: a request line that cannot parse, so the message
 * starts, fails, its answer cannot be written, and libsoup disconnects and
 * drops the connection itself.  Nothing reaches a handler (the request
 * never gets past its headers), and nothing reaches the client. */
#include "ens-listener-private.h"

#include <string.h>

/* Each plugin that links this library has its own copy of these types, and
 * GType names are global to the process: each copy registers its types
 * under names of its own (the address of a static in the copy). */
#define DEFINE_LOCAL_TYPE(TypeName, type_name, PARENT_TYPE, extra)                                      \
  static gpointer type_name##_parent_class;                                                            \
  static void type_name##_init (TypeName *self);                                                       \
  static void type_name##_class_init (TypeName##Class *klass);                                         \
  static void type_name##_class_intern_init (gpointer klass, gpointer data)                            \
  {                                                                                                    \
    (void) data;                                                                                       \
    type_name##_parent_class = g_type_class_peek_parent (klass);                                       \
    type_name##_class_init ((TypeName##Class *) klass);                                                \
  }                                                                                                    \
  GType type_name##_get_type (void)                                                                    \
  {                                                                                                    \
    static gsize type_id = 0;                                                                          \
    if (g_once_init_enter (&type_id))                                                                  \
      {                                                                                                \
        g_autofree char *name = g_strdup_printf (#TypeName "_%p", (void *) &type_id);                  \
        GType id = g_type_register_static_simple (PARENT_TYPE, name, sizeof (TypeName##Class),         \
                                                  type_name##_class_intern_init, sizeof (TypeName),    \
                                                  (GInstanceInitFunc) (void (*) (void)) type_name##_init, \
                                                  G_TYPE_FLAG_FINAL);                                  \
        extra;                                                                                         \
        g_once_init_leave (&type_id, id);                                                              \
      }                                                                                                \
    return type_id;                                                                                    \
  }

/* ------------------------------------------------------------ input */

#define ENS_TYPE_LISTENER_INPUT (ens_listener_input_get_type ())
G_DECLARE_FINAL_TYPE (EnsListenerInput, ens_listener_input, ENS, LISTENER_INPUT, GInputStream)

struct _EnsListenerInput {
  GInputStream parent;
  GInputStream *base;       /* the socket's input stream (owned) */
  GSocket *socket;          /* its socket (owned) */
  EnsListenerStream *owner; /* not a reference: the owner holds this stream */
  GBytes *head;             /* given back before the socket is read again (ens_listener_stream_unread) */
  gsize head_at;
};

static void ens_listener_input_pollable_init (GPollableInputStreamInterface *iface);

static const GInterfaceInfo pollable_info = {
  .interface_init = (GInterfaceInitFunc) (void (*) (void)) ens_listener_input_pollable_init,
};

DEFINE_LOCAL_TYPE (EnsListenerInput, ens_listener_input, G_TYPE_INPUT_STREAM,
                   g_type_add_interface_static (id, G_TYPE_POLLABLE_INPUT_STREAM, &pollable_info))

/* Whether this libsoup loses connections closed between requests. */
static gboolean
soup_loses_idle_closes (void)
{
  return soup_get_major_version () == 3 && soup_get_minor_version () < 3;
}

/* After a read of the socket: passes it on, or turns an end between
 * requests into the NUL byte described above. */
static gssize
after_read (EnsListenerInput *in, void *buffer, gsize count, gssize n, GError *read_error, GError **error)
{
  EnsListenerStream *owner = in->owner;

  if (n > 0 || count == 0 || owner == NULL || owner->busy || !soup_loses_idle_closes () ||
      g_error_matches (read_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ||
      g_error_matches (read_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      if (read_error)
        g_propagate_error (error, read_error);
      return n;
    }
  g_clear_error (&read_error);
  owner->ended = TRUE;
  g_socket_shutdown (ens_listener_stream_get_socket (owner), FALSE, TRUE, NULL);
  ((guint8 *) buffer)[0] = '\0';
  return 1;
}

/* What is left of the head, copied to @buffer: bytes, or 0 when none. */
static gssize
read_head (EnsListenerInput *in, void *buffer, gsize count)
{
  gsize len;
  const char *data;

  if (in->head == NULL || count == 0)
    return 0;
  data = g_bytes_get_data (in->head, &len);
  count = MIN (count, len - in->head_at);
  memcpy (buffer, data + in->head_at, count);
  in->head_at += count;
  if (in->head_at == len)
    g_clear_pointer (&in->head, g_bytes_unref);
  return (gssize) count;
}

static gssize
input_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  EnsListenerInput *in = ENS_LISTENER_INPUT (stream);
  GError *read_error = NULL;
  gssize n;

  if ((n = read_head (in, buffer, count)) > 0)
    return n;
  if (in->owner && in->owner->ended)
    return 0;
  n = g_input_stream_read (in->base, buffer, count, cancellable, &read_error);
  return after_read (in, buffer, count, n, read_error, error);
}

static gssize
input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count, GError **error)
{
  EnsListenerInput *in = ENS_LISTENER_INPUT (stream);
  GError *read_error = NULL;
  gssize n;

  if ((n = read_head (in, buffer, count)) > 0)
    return n;
  if (in->owner && in->owner->ended)
    return 0;
  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (in->base), buffer, count, NULL,
                                                &read_error);
  return after_read (in, buffer, count, n, read_error, error);
}

static gboolean
input_can_poll (GPollableInputStream *stream)
{
  (void) stream;
  return TRUE;
}

static gboolean
input_is_readable (GPollableInputStream *stream)
{
  EnsListenerInput *in = ENS_LISTENER_INPUT (stream);

  return in->head != NULL || (in->owner && in->owner->ended) || g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (in->base));
}

/* This stream's source around the socket's own (GIO's socket input stream
 * would put one more source in between): readable exactly when the socket
 * is, an end of input included (the read that follows turns it into the
 * NUL byte). */
static GSource *
input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  EnsListenerInput *in = ENS_LISTENER_INPUT (stream);
  GSource *source = g_pollable_source_new (G_OBJECT (stream));
  /* With a head still to give, readable at once. */
  GSource *socket_source = in->head ? g_idle_source_new () : g_socket_create_source (in->socket, G_IO_IN, cancellable);

  g_source_set_dummy_callback (socket_source);
  /* GLib takes a source's fds out of the poll set while it dispatches,
   * unless it may recurse: each time a wake-up of the loop and one more
   * iteration.  libsoup's callbacks never run the loop. */
  g_source_set_can_recurse (source, TRUE);
  g_source_set_can_recurse (socket_source, TRUE);
  g_source_add_child_source (source, socket_source);
  g_source_unref (socket_source);
  return source;
}

static gboolean
input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  /* The socket is closed with the connection (stream_close). */
  (void) stream;
  (void) cancellable;
  (void) error;
  return TRUE;
}

static void
ens_listener_input_finalize (GObject *object)
{
  EnsListenerInput *in = ENS_LISTENER_INPUT (object);

  g_clear_object (&in->base);
  g_clear_object (&in->socket);
  g_clear_pointer (&in->head, g_bytes_unref);
  G_OBJECT_CLASS (ens_listener_input_parent_class)->finalize (object);
}

static void
ens_listener_input_init (EnsListenerInput *in)
{
  (void) in;
}

static void
ens_listener_input_class_init (EnsListenerInputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = ens_listener_input_finalize;
  input_class->read_fn = input_read;
  input_class->close_fn = input_close;
}

static void
ens_listener_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = input_can_poll;
  iface->is_readable = input_is_readable;
  iface->create_source = input_create_source;
  iface->read_nonblocking = input_read_nonblocking;
}

/* ------------------------------------------------------------ connection */

DEFINE_LOCAL_TYPE (EnsListenerStream, ens_listener_stream, G_TYPE_IO_STREAM, (void) 0)

static GQuark
stream_quark (void)
{
  return g_quark_from_static_string ("ens-listener-stream");
}

static GInputStream *
stream_get_input (GIOStream *io)
{
  return ENS_LISTENER_STREAM (io)->input;
}

static GOutputStream *
stream_get_output (GIOStream *io)
{
  return g_io_stream_get_output_stream (G_IO_STREAM (ENS_LISTENER_STREAM (io)->base));
}

static void
forget (EnsListenerStream *self)
{
  EnsListener *listener = g_steal_pointer (&self->listener);

  if (listener)
    ens_listener_forget (listener, self);
}

static gboolean
stream_close (GIOStream *io, GCancellable *cancellable, GError **error)
{
  EnsListenerStream *self = ENS_LISTENER_STREAM (io);

  forget (self);
  return g_io_stream_close (G_IO_STREAM (self->base), cancellable, error);
}

/* Closing a socket does not block: done in place, not in a thread as
 * GIOStream would (as GSocketConnection does). */
static void
stream_close_async (GIOStream *io, int priority, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer data)
{
  g_autoptr (GTask) task = g_task_new (io, cancellable, callback, data);
  GError *error = NULL;

  (void) priority;
  if (stream_close (io, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
stream_close_finish (GIOStream *io, GAsyncResult *result, GError **error)
{
  (void) io;
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
ens_listener_stream_finalize (GObject *object)
{
  EnsListenerStream *self = ENS_LISTENER_STREAM (object);

  forget (self);
  if (self->remote)
    g_object_set_qdata (G_OBJECT (self->remote), stream_quark (), NULL);
  if (self->input)
    ENS_LISTENER_INPUT (self->input)->owner = NULL;
  g_clear_object (&self->input);
  g_clear_object (&self->base);
  g_clear_object (&self->local);
  g_clear_object (&self->remote);
  g_free (self->peer_refusal);
  G_OBJECT_CLASS (ens_listener_stream_parent_class)->finalize (object);
}

static void
ens_listener_stream_init (EnsListenerStream *self)
{
  (void) self;
}

static void
ens_listener_stream_class_init (EnsListenerStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *io_class = G_IO_STREAM_CLASS (klass);

  object_class->finalize = ens_listener_stream_finalize;
  io_class->get_input_stream = stream_get_input;
  io_class->get_output_stream = stream_get_output;
  io_class->close_fn = stream_close;
  io_class->close_async = stream_close_async;
  io_class->close_finish = stream_close_finish;
}

EnsListenerStream *
ens_listener_stream_new (GSocketConnection *base, EnsListener *listener, GError **error)
{
  g_autoptr (GSocketAddress) local = g_socket_connection_get_local_address (base, error);
  g_autoptr (GSocketAddress) remote = local ? g_socket_connection_get_remote_address (base, error) : NULL;
  EnsListenerStream *self;
  EnsListenerInput *in;

  if (remote == NULL)
    return NULL;
  self = g_object_new (ENS_TYPE_LISTENER_STREAM, NULL);
  self->base = g_object_ref (base);
  self->local = g_steal_pointer (&local);
  self->remote = g_steal_pointer (&remote);
  in = g_object_new (ENS_TYPE_LISTENER_INPUT, NULL);
  in->base = g_object_ref (g_io_stream_get_input_stream (G_IO_STREAM (base)));
  in->socket = g_object_ref (g_socket_connection_get_socket (base));
  in->owner = self;
  self->input = G_INPUT_STREAM (in);
  /* libsoup keeps the remote address object it is given: the way back from
   * a message to its connection. */
  g_object_set_qdata (G_OBJECT (self->remote), stream_quark (), self);
  self->listener = listener;
  return self;
}

EnsListenerStream *
ens_listener_stream_of (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  return remote ? g_object_get_qdata (G_OBJECT (remote), stream_quark ()) : NULL;
}

void
ens_listener_stream_unread (EnsListenerStream *stream, const void *head, gsize len)
{
  EnsListenerInput *in = ENS_LISTENER_INPUT (stream->input);

  g_return_if_fail (in->head == NULL);
  if (len > 0)
    {
      in->head = g_bytes_new (head, len);
      in->head_at = 0;
    }
}

GSocket *
ens_listener_stream_get_socket (EnsListenerStream *stream)
{
  return g_socket_connection_get_socket (stream->base);
}
