/* ens-upstream-pool.c — see ens-upstream-pool.h.
 *
 * A connection is CONNECTING (GSocketClient, with TLS for https), IDLE (in
 * the pool's idle queue, most recently used first; its read watch stays
 * on, so an upstream that closes it is noticed), BUSY (serving one
 * exchange: the request written without waiting, the answer parsed as it
 * is read) or DRAINING (its exchange was released before the answer's end:
 * the rest is read and dropped, at most DRAIN_BYTES for DRAIN_MS, then the
 * connection is idle again or closed).  For its first DRAIN_SOON_MS a
 * draining connection counts as one about to be free: a request waits
 * for it rather than opening another.
 *
 * An exchange waits in the pool's queue until a connection takes it: an
 * idle one at once, else a new one when the pool has room (and no more
 * than half as many connections as there are requests are being opened),
 * else the next one to finish.  It is freed once its caller released it and no
 * connection holds it any more (a draining connection still parses its
 * answer).
 *
 * Sink callbacks run from the connection's read watch; any of them may
 * release the exchange, which only sets flags there: the connection acts
 * on them once the bytes at hand are parsed. */
#include "ens-upstream-pool.h"

#include <gio/gio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#define READ_BUF 16384
#define DRAIN_BYTES (64 * 1024)
#define DRAIN_MS 2000
#define DRAIN_SOON_MS 50 /* an answer's last bytes are usually this close behind */

typedef enum { CONN_CONNECTING, CONN_IDLE, CONN_BUSY, CONN_DRAINING } ConnState;

typedef struct _Conn Conn;

struct _EnsUpstreamExchange {
  EnsUpstreamPool *pool; /* NULL once the pool is gone */
  Conn *conn;            /* the connection serving it, while one does */
  GBytes *request;
  const EnsUpstreamExchangeSink *sink;
  gpointer user_data;
  EnsUpstreamResponse *response; /* once a connection took it */
  GList link;                    /* in the pool's waiting queue */
  gboolean waiting;
  gboolean released;
  gboolean over;     /* failed or ended: nothing more to report */
  gboolean resent;   /* sent again after its reused connection closed */
  gboolean fresh;    /* must go on a new connection */
  gboolean reporting; /* inside its fail callback */
  gsize drained;     /* bytes dropped since it was released */
};

struct _Conn {
  EnsUpstreamPool *pool; /* NULL: the pool is gone (a connect still pending) */
  ConnState state;
  GIOStream *stream;
  GSocket *socket;
  GPollableInputStream *in;
  GPollableOutputStream *out;
  GSource *reader, *writer;
  GCancellable *cancel; /* of the connect */
  EnsUpstreamExchange *x;
  gsize written;
  gboolean reused;      /* it carried an answer before */
  gboolean finishing;   /* its answer ended inside the current read */
  gboolean close_after; /* an exchange released it ungracefully, or it drained too much */
  gboolean in_read;     /* parsing what it read: a release only sets flags */
  gboolean tls;         /* read and write through @in and @out, else @socket */
  gboolean drain_soon;  /* draining for less than DRAIN_SOON_MS */
  gint64 idle_since;
  guint drain_timer;
  GList link;           /* in the idle queue */
};

struct _EnsUpstreamPool {
  gboolean tls;
  GSocketClient *client;
  GCancellable *proxy_lookup; /* the one proxy lookup, until it answers */
  GSocketConnectable *address;
  guint max_conns, idle_timeout_s;
  guint n_conns, connecting, finishing, draining_soon;
  guint depth;    /* in one of its callbacks: freeing waits for the outermost to return */
  gboolean freed; /* ens_upstream_pool_free() was called inside one */
  GQueue idle;    /* Conn*, most recently used first */
  GQueue waiting; /* EnsUpstreamExchange* */
  GHashTable *conns; /* every open Conn */
  guint idle_timer;
  char buf[READ_BUF];
};

static void pool_kick (EnsUpstreamPool *pool);
static void pool_destroy (EnsUpstreamPool *pool);

/* Around every callback of the main loop that may report to a call: a
 * call ending there may drop the last reference to its backend, and so
 * free the pool under the callback. */
static void
pool_enter (EnsUpstreamPool *pool)
{
  pool->depth++;
}

/* FALSE when the pool is gone (and with it every connection). */
static gboolean
pool_leave (EnsUpstreamPool *pool)
{
  if (--pool->depth == 0 && pool->freed)
    {
      pool_destroy (pool);
      return FALSE;
    }
  return TRUE;
}
static gboolean conn_start (Conn *c, EnsUpstreamExchange *x);

/* ------------------------------------------------------------ exchanges */

static void
exchange_free (EnsUpstreamExchange *x)
{
  g_bytes_unref (x->request);
  ens_upstream_response_free (x->response);
  g_free (x);
}

/* Frees @x once nobody holds it. */
static void
exchange_maybe_free (EnsUpstreamExchange *x)
{
  if (x->released && !x->conn && !x->waiting && !x->reporting)
    exchange_free (x);
}

/* Reports the failure of @x, which no connection holds any more. */
static void
exchange_fail (EnsUpstreamExchange *x, const GError *error)
{
  if (!x->over && !x->released)
    {
      x->over = TRUE;
      x->reporting = TRUE;
      x->sink->fail (x->user_data, error);
      x->reporting = FALSE;
    }
  x->over = TRUE;
  exchange_maybe_free (x);
}

EnsUpstreamResponse *
ens_upstream_exchange_response (EnsUpstreamExchange *x)
{
  return x->response;
}

/* ---------------------------------------------------------- connections */

/* Stops @c's drain timer. */
static void
drain_stop (Conn *c)
{
  if (c->drain_timer)
    g_source_remove (c->drain_timer);
  c->drain_timer = 0;
  if (c->drain_soon && c->pool)
    c->pool->draining_soon--;
  c->drain_soon = FALSE;
}

static void
conn_close (Conn *c)
{
  EnsUpstreamPool *pool = c->pool;

  if (c->reader)
    {
      g_source_destroy (c->reader);
      g_clear_pointer (&c->reader, g_source_unref);
    }
  if (c->writer)
    {
      g_source_destroy (c->writer);
      g_clear_pointer (&c->writer, g_source_unref);
    }
  drain_stop (c);
  if (c->state == CONN_IDLE && pool)
    g_queue_unlink (&pool->idle, &c->link);
  if (c->finishing && pool)
    pool->finishing--;
  if (c->stream)
    {
      /* The socket first: a TLS close then has nothing to wait for. */
      g_socket_close (c->socket, NULL);
      g_io_stream_close (c->stream, NULL, NULL);
      g_clear_object (&c->stream);
    }
  g_clear_object (&c->cancel);
  if (pool)
    {
      pool->n_conns--;
      g_hash_table_remove (pool->conns, c);
    }
  g_free (c);
}

static gboolean
on_idle_timer (gpointer user_data)
{
  EnsUpstreamPool *pool = user_data;
  gint64 now = g_get_monotonic_time (), life = (gint64) pool->idle_timeout_s * G_USEC_PER_SEC;
  Conn *oldest;

  pool->idle_timer = 0;
  while ((oldest = g_queue_peek_tail (&pool->idle)) && oldest->idle_since + life <= now + 1000)
    conn_close (oldest);
  if (oldest)
    pool->idle_timer = g_timeout_add ((guint) ((oldest->idle_since + life - now) / 1000 + 1), on_idle_timer, pool);
  return G_SOURCE_REMOVE;
}


/* @c has no exchange: it takes a waiting one, else goes idle.  FALSE when
 * @c is gone. */
static gboolean
conn_available (Conn *c)
{
  EnsUpstreamPool *pool = c->pool;

  for (GList *l = pool->waiting.head; l; l = l->next)
    {
      EnsUpstreamExchange *x = l->data;

      if (x->fresh && c->reused)
        continue;
      g_queue_unlink (&pool->waiting, &x->link);
      x->waiting = FALSE;
      return conn_start (c, x);
    }
  if (pool->waiting.length > 0)
    {
      /* Only requests that must go on a new connection wait: this one
       * makes room for it. */
      conn_close (c);
      pool_kick (pool);
      return FALSE;
    }
  c->state = CONN_IDLE;
  c->idle_since = g_get_monotonic_time ();
  g_queue_push_head_link (&pool->idle, &c->link);
  if (!pool->idle_timer)
    pool->idle_timer = g_timeout_add (pool->idle_timeout_s * 1000, on_idle_timer, pool);
  return TRUE;
}

/* @c broke (@error); its exchange is sent again when nothing of an answer
 * came on a reused connection (closed by the upstream as the request
 * went), else it fails.  @c is gone after. */
static void
conn_broken (Conn *c, const GError *error)
{
  EnsUpstreamPool *pool = c->pool;
  EnsUpstreamExchange *x = c->x;

  c->x = NULL;
  if (x)
    {
      gboolean closed = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
                        g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);

      x->conn = NULL;
      if (closed && !ens_upstream_response_started (x->response) && c->reused && !x->resent && !x->released)
        {
          x->resent = TRUE;
          x->fresh = TRUE;
          x->waiting = TRUE;
          g_queue_push_head_link (&pool->waiting, &x->link);
        }
      else
        exchange_fail (x, error);
    }
  conn_close (c);
  pool_kick (pool);
}

/* @c's exchange is over (its answer read, or dropped): @c serves the next
 * one, or is closed when it cannot carry another.  FALSE when @c is gone. */
static gboolean
conn_done (Conn *c)
{
  EnsUpstreamPool *pool = c->pool;
  EnsUpstreamExchange *x = c->x;
  gboolean reusable = !c->close_after && ens_upstream_response_done (x->response) &&
                      ens_upstream_response_keep_alive (x->response) && c->written == g_bytes_get_size (x->request);

  drain_stop (c);
  c->x = NULL;
  x->conn = NULL;
  x->over = TRUE;
  exchange_maybe_free (x);
  if (c->finishing)
    {
      c->finishing = FALSE;
      pool->finishing--;
    }
  if (!reusable)
    {
      conn_close (c);
      pool_kick (pool);
      return FALSE;
    }
  c->reused = TRUE;
  return conn_available (c);
}

static gboolean
on_drain_timeout (gpointer user_data)
{
  Conn *c = user_data;
  EnsUpstreamPool *pool = c->pool;

  pool_enter (pool);
  c->drain_timer = 0;
  c->close_after = TRUE;
  conn_done (c);
  pool_leave (pool);
  return G_SOURCE_REMOVE;
}

static gboolean
on_drain_late (gpointer user_data)
{
  Conn *c = user_data;
  EnsUpstreamPool *pool = c->pool;

  pool_enter (pool);
  c->drain_soon = FALSE;
  pool->draining_soon--;
  c->drain_timer = g_timeout_add (DRAIN_MS - DRAIN_SOON_MS, on_drain_timeout, c);
  pool_kick (pool); /* what waited for it gets another connection */
  pool_leave (pool);
  return G_SOURCE_REMOVE;
}

static void
start_draining (Conn *c)
{
  c->state = CONN_DRAINING;
  c->drain_soon = TRUE;
  c->pool->draining_soon++;
  c->drain_timer = g_timeout_add (DRAIN_SOON_MS, on_drain_late, c);
}

/* ------------------------------------------------------- reading answers */

static void
sink_head (gpointer user_data)
{
  Conn *c = user_data;

  if (!c->x->released && !c->close_after)
    c->x->sink->head (c->x->user_data);
}

static void
sink_body (gpointer user_data, const char *data, gsize len)
{
  Conn *c = user_data;
  EnsUpstreamExchange *x = c->x;

  if (c->close_after)
    return;
  if (!x->released)
    x->sink->body (x->user_data, data, len);
  else if ((x->drained += len) > DRAIN_BYTES)
    c->close_after = TRUE;
}

static void
sink_end (gpointer user_data)
{
  Conn *c = user_data;
  EnsUpstreamExchange *x = c->x;

  /* Counted first: a request made from the callback waits for this
   * connection instead of opening another. */
  if (!c->close_after && ens_upstream_response_keep_alive (x->response))
    {
      c->finishing = TRUE;
      c->pool->finishing++;
    }
  if (!x->released && !c->close_after)
    {
      x->over = TRUE;
      x->sink->end (x->user_data);
    }
  x->over = TRUE;
}

static const EnsUpstreamResponseSink response_sink = { sink_head, sink_body, sink_end };

/* @n bytes read on @c.  FALSE when @c is gone. */
static gboolean
conn_bytes (Conn *c, const char *data, gsize n)
{
  EnsUpstreamExchange *x = c->x;
  g_autoptr (GError) error = NULL;
  gssize used;

  if (!x)
    {
      EnsUpstreamPool *pool = c->pool;
      conn_close (c); /* an idle connection spoke: not worth keeping */
      pool_kick (pool);
      return FALSE;
    }
  c->in_read = TRUE;
  used = ens_upstream_response_feed (x->response, data, n, &response_sink, c, &error);
  c->in_read = FALSE;
  if (used < 0)
    {
      conn_broken (c, error);
      return FALSE;
    }
  if (ens_upstream_response_done (x->response))
    {
      if ((gsize) used < n)
        c->close_after = TRUE; /* bytes after the answer */
      return conn_done (c);
    }
  if (c->close_after)
    return conn_done (c); /* released ungracefully, or drained too much */
  if (x->released && c->state == CONN_BUSY)
    start_draining (c);
  return TRUE;
}

static gssize
conn_read (Conn *c, GError **error)
{
  if (c->tls)
    return g_pollable_input_stream_read_nonblocking (c->in, c->pool->buf, READ_BUF, NULL, error);
  return g_socket_receive_with_blocking (c->socket, c->pool->buf, READ_BUF, FALSE, NULL, error);
}

static gboolean
conn_readable (Conn *c)
{
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      gssize n = conn_read (c, &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
      if (n < 0)
        {
          conn_broken (c, error);
          return G_SOURCE_REMOVE;
        }
      if (n == 0)
        {
          gboolean complete = FALSE;

          if (c->x)
            {
              c->in_read = TRUE;
              complete = ens_upstream_response_eof (c->x->response, &response_sink, c);
              c->in_read = FALSE;
            }
          if (complete)
            {
              c->close_after = TRUE;
              conn_done (c);
            }
          else
            {
              g_autoptr (GError) eof = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                            "the upstream closed the connection");
              conn_broken (c, eof);
            }
          return G_SOURCE_REMOVE;
        }
      if (!conn_bytes (c, c->pool->buf, (gsize) n))
        return G_SOURCE_REMOVE;
      if (n < READ_BUF)
        return G_SOURCE_CONTINUE;
    }
}

static gboolean
conn_readable_guarded (Conn *c)
{
  EnsUpstreamPool *pool = c->pool;
  gboolean more;

  pool_enter (pool);
  more = conn_readable (c);
  return pool_leave (pool) ? more : G_SOURCE_REMOVE;
}

static gboolean
on_socket_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  return conn_readable_guarded (user_data);
}

static gboolean
on_stream_readable (GObject *stream, gpointer user_data)
{
  return conn_readable_guarded (user_data);
}

/* ------------------------------------------------------- writing requests */

static gboolean conn_write (Conn *c);

static gboolean
conn_writable_guarded (Conn *c)
{
  EnsUpstreamPool *pool = c->pool;
  gboolean more;

  pool_enter (pool);
  more = conn_write (c) && c->writer;
  return pool_leave (pool) && more ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static gboolean
on_socket_writable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  return conn_writable_guarded (user_data);
}

static gboolean
on_stream_writable (GObject *stream, gpointer user_data)
{
  return conn_writable_guarded (user_data);
}

/* Writes what is left of the request.  FALSE when @c is gone. */
static gboolean
conn_write (Conn *c)
{
  gsize len;
  const char *data = g_bytes_get_data (c->x->request, &len);

  while (c->written < len)
    {
      g_autoptr (GError) error = NULL;
      gssize n = c->tls ? g_pollable_output_stream_write_nonblocking (c->out, data + c->written, len - c->written,
                                                                       NULL, &error)
                        : g_socket_send_with_blocking (c->socket, data + c->written, len - c->written, FALSE, NULL,
                                                       &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (!c->writer)
            {
              if (c->tls)
                {
                  c->writer = g_pollable_output_stream_create_source (c->out, NULL);
                  g_source_set_callback (c->writer, G_SOURCE_FUNC (on_stream_writable), c, NULL);
                }
              else
                {
                  c->writer = g_socket_create_source (c->socket, G_IO_OUT, NULL);
                  g_source_set_callback (c->writer, G_SOURCE_FUNC (on_socket_writable), c, NULL);
                }
              g_source_set_can_recurse (c->writer, TRUE);
              g_source_attach (c->writer, NULL);
            }
          return TRUE;
        }
      if (n < 0)
        {
          conn_broken (c, error);
          return FALSE;
        }
      c->written += (gsize) n;
    }
  if (c->writer)
    {
      g_source_destroy (c->writer);
      g_clear_pointer (&c->writer, g_source_unref);
    }
  return TRUE;
}

/* @c takes @x: the request goes out at once.  FALSE when @c is gone. */
static gboolean
conn_start (Conn *c, EnsUpstreamExchange *x)
{
  c->state = CONN_BUSY;
  c->x = x;
  c->written = 0;
  c->close_after = FALSE;
  x->conn = c;
  if (x->response)
    ens_upstream_response_reset (x->response);
  else
    x->response = ens_upstream_response_new (FALSE);
  return conn_write (c);
}

/* ------------------------------------------------------------ connecting */

static void
on_connected (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Conn *c = user_data;
  EnsUpstreamPool *pool = c->pool;
  g_autoptr (GError) error = NULL;
  GSocketConnection *sc = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), res, &error);

  if (!pool)
    {
      g_clear_object (&sc);
      g_clear_object (&c->cancel);
      g_free (c);
      return;
    }
  pool->connecting--;
  pool_enter (pool);
  if (!sc)
    {
      EnsUpstreamExchange *x = g_queue_peek_head (&pool->waiting);

      conn_close (c);
      if (x)
        {
          g_queue_unlink (&pool->waiting, &x->link);
          x->waiting = FALSE;
          exchange_fail (x, error);
        }
      pool_kick (pool);
      pool_leave (pool);
      return;
    }
  g_clear_object (&c->cancel);
  c->stream = G_IO_STREAM (sc);
  c->socket = g_socket_connection_get_socket (sc);
  g_socket_set_option (c->socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  c->tls = pool->tls;
  if (c->tls)
    {
      c->in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (c->stream));
      c->out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (c->stream));
      c->reader = g_pollable_input_stream_create_source (c->in, NULL);
      g_source_set_callback (c->reader, G_SOURCE_FUNC (on_stream_readable), c, NULL);
    }
  else
    {
      c->reader = g_socket_create_source (c->socket, G_IO_IN, NULL);
      g_source_set_callback (c->reader, G_SOURCE_FUNC (on_socket_readable), c, NULL);
    }
  /* GLib takes a source's fds out of the poll set while it dispatches,
   * unless it may recurse: each time a wake-up of the loop and one more
   * iteration.  Nothing here runs the loop from a dispatch. */
  g_source_set_can_recurse (c->reader, TRUE);
  g_source_attach (c->reader, NULL);
  if (conn_available (c))
    pool_kick (pool); /* one fewer being opened: more may be */
  pool_leave (pool);
}

static void
conn_connect (EnsUpstreamPool *pool)
{
  Conn *c = g_new0 (Conn, 1);

  c->pool = pool;
  c->state = CONN_CONNECTING;
  c->cancel = g_cancellable_new ();
  c->link.data = c;
  pool->n_conns++;
  pool->connecting++;
  g_hash_table_add (pool->conns, c);
  g_socket_client_connect_async (pool->client, pool->address, c->cancel, on_connected, c);
}

/* Idle connections take waiting exchanges; new ones are opened for the
 * rest while the pool has room, at most about half as many at once as
 * there are requests. */
static void
pool_kick (EnsUpstreamPool *pool)
{
  GList *l;

again:
  for (l = pool->waiting.head; l && pool->idle.head; l = l->next)
    {
      EnsUpstreamExchange *x = l->data;

      if (x->fresh)
        continue;
      g_queue_unlink (&pool->waiting, &x->link);
      x->waiting = FALSE;
      conn_start (((GList *) g_queue_pop_head_link (&pool->idle))->data, x);
      goto again;
    }
  while (pool->waiting.length > pool->connecting + pool->finishing + pool->draining_soon)
    {
      /* Requests sent or waiting: while more than half as many connections
       * are being opened, the rest wait for those (libsoup's rule: a burst
       * does not open a connection per request at once). */
      guint requests = pool->waiting.length + (pool->n_conns - pool->connecting - pool->idle.length);

      if (pool->connecting > requests / 2)
        break;
      if (pool->n_conns < pool->max_conns)
        conn_connect (pool);
      else if (pool->idle.tail)
        conn_close (pool->idle.tail->data); /* room for one that must be new */
      else
        break;
    }
}

/* ----------------------------------------------------------------- pool */

static void
on_proxy_known (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) proxies = g_proxy_resolver_lookup_finish (G_PROXY_RESOLVER (source), res, &error);
  EnsUpstreamPool *pool;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* the pool is gone */
  pool = user_data;
  g_clear_object (&pool->proxy_lookup);
  /* No proxy for this host: connections skip the lookup GSocketClient
   * would make for each of them (libproxy: ~500,000 instructions). */
  if (proxies && proxies[0] && g_strcmp0 (proxies[0], "direct://") == 0 && !proxies[1])
    g_socket_client_set_enable_proxy (pool->client, FALSE);
}

EnsUpstreamPool *
ens_upstream_pool_new (const char *scheme, const char *host, guint16 port, guint max_conns, guint idle_timeout_s)
{
  EnsUpstreamPool *pool = g_new0 (EnsUpstreamPool, 1);
  gboolean v6 = strchr (host, ':') != NULL;
  g_autofree char *uri = NULL;

  pool->tls = g_ascii_strcasecmp (scheme, "https") == 0;
  pool->client = g_socket_client_new ();
  g_socket_client_set_tls (pool->client, pool->tls);
  pool->address = g_network_address_new (host, port);
  /* Whether the host is reached through a proxy, asked once. */
  uri = g_strdup_printf ("%s://%s%s%s:%u", pool->tls ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "", port);
  pool->proxy_lookup = g_cancellable_new ();
  g_proxy_resolver_lookup_async (g_proxy_resolver_get_default (), uri, pool->proxy_lookup, on_proxy_known, pool);
  pool->max_conns = MAX (max_conns, 1);
  pool->idle_timeout_s = MAX (idle_timeout_s, 1);
  g_queue_init (&pool->idle);
  g_queue_init (&pool->waiting);
  pool->conns = g_hash_table_new (g_direct_hash, g_direct_equal);
  return pool;
}

void
ens_upstream_pool_free (EnsUpstreamPool *pool)
{
  if (!pool)
    return;
  if (pool->depth > 0)
    pool->freed = TRUE; /* the outermost callback frees it */
  else
    pool_destroy (pool);
}

static void
pool_destroy (EnsUpstreamPool *pool)
{
  GList *conns;

  while (pool->waiting.head)
    {
      EnsUpstreamExchange *x = pool->waiting.head->data;

      g_queue_unlink (&pool->waiting, &x->link);
      x->waiting = FALSE;
      x->pool = NULL;
      exchange_maybe_free (x);
    }
  conns = g_hash_table_get_keys (pool->conns);
  g_hash_table_steal_all (pool->conns);
  for (GList *l = conns; l; l = l->next)
    {
      Conn *c = l->data;

      c->pool = NULL;
      if (c->state == CONN_CONNECTING)
        {
          g_cancellable_cancel (c->cancel); /* its callback frees it */
          continue;
        }
      if (c->x)
        {
          EnsUpstreamExchange *x = c->x;

          c->x = NULL;
          x->conn = NULL;
          x->pool = NULL;
          x->over = TRUE;
          exchange_maybe_free (x);
        }
      conn_close (c);
    }
  g_list_free (conns);
  if (pool->proxy_lookup)
    g_cancellable_cancel (pool->proxy_lookup);
  g_clear_object (&pool->proxy_lookup);
  if (pool->idle_timer)
    g_source_remove (pool->idle_timer);
  g_object_unref (pool->client);
  g_object_unref (pool->address);
  g_hash_table_unref (pool->conns);
  g_free (pool);
}

guint
ens_upstream_pool_connections (EnsUpstreamPool *pool)
{
  return pool->n_conns;
}

guint
ens_upstream_pool_draining (EnsUpstreamPool *pool)
{
  GHashTableIter iter;
  gpointer key;
  guint n = 0;

  g_hash_table_iter_init (&iter, pool->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    n += ((Conn *) key)->state == CONN_DRAINING;
  return n;
}

EnsUpstreamExchange *
ens_upstream_pool_send (EnsUpstreamPool *pool, GBytes *request, const EnsUpstreamExchangeSink *sink,
                        gpointer user_data)
{
  EnsUpstreamExchange *x = g_new0 (EnsUpstreamExchange, 1);

  x->pool = pool;
  x->request = g_bytes_ref (request);
  x->sink = sink;
  x->user_data = user_data;
  x->link.data = x;
  x->waiting = TRUE;
  g_queue_push_tail_link (&pool->waiting, &x->link);
  pool_kick (pool);
  return x;
}

static void exchange_release (EnsUpstreamExchange *x, gboolean graceful);

void
ens_upstream_exchange_release (EnsUpstreamExchange *x, gboolean graceful)
{
  EnsUpstreamPool *pool = x->conn ? x->conn->pool : x->waiting ? x->pool : NULL;

  g_return_if_fail (!x->released);
  if (!pool)
    {
      exchange_release (x, graceful);
      return;
    }
  pool_enter (pool);
  exchange_release (x, graceful);
  pool_leave (pool);
}

static void
exchange_release (EnsUpstreamExchange *x, gboolean graceful)
{
  Conn *c = x->conn;

  x->released = TRUE;
  if (x->waiting)
    {
      g_queue_unlink (&x->pool->waiting, &x->link);
      x->waiting = FALSE;
    }
  if (!c)
    {
      exchange_maybe_free (x);
      return;
    }
  if (!graceful)
    c->close_after = TRUE;
  if (c->in_read)
    return; /* acted on once the bytes at hand are parsed */
  if (!graceful)
    conn_done (c);
  else if (c->state == CONN_BUSY)
    start_draining (c);
}
