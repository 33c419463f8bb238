/* ens-http-conn.c — connections served without libsoup while their
 * requests are plain.
 *
 * libsoup's server costs about 165,000 instructions a request (its
 * parsers, GObject signals, a SoupServerMessage with its header tables),
 * more than the rest of a completion's way through the daemon.  Most
 * requests to a gateway are the same few, sent whole by a client that keeps
 * its connection: those are read and answered here.  A request is plain
 * when what was read is all of it, its path is exactly one of the routes
 * below (no query, no trailing slash), and ens_http_head_parse() finds
 * nothing unusual in it (ens-http-head.h: HTTP/1.1, no chunked body, no
 * Expect, Upgrade or Origin (CORS), a body within http-max-body-bytes that
 * asks for no stream).
 *
 * A connection is taken here only when its first request is there, plain,
 * as it is accepted (peeked at: nothing taken off the socket); any other is
 * libsoup's at once, untouched.  A connection of ours goes to libsoup, with
 * the bytes already read, at its first request that is not plain (a partial
 * one included), for the rest of its life: everything unusual (errors, 413,
 * slow clients, SSE, WebSocket, CORS) keeps its one implementation there.
 * A plain request goes through the same route, refusal and metrics as any
 * other (ens-transport-http.c, ens-http-call.c); the answer carries the
 * headers libsoup would send.
 *
 * One request at a time per connection; while it is under way what the
 * client sends more is read and kept (up to a bound), and answers go out
 * in order.  An answer is written at once; when the socket is full, the
 * connection waits for it to drain before it reads the next request. */
#include "ens-http-private.h"
#include "ens-http-access-log.h"
#include "ens-http-head.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* The routes served here: answers that never stream. */
static const struct {
  const char *method, *path;
} plain_routes[G_N_ELEMENTS (((EnsHttp *) NULL)->plain)] = {
  { "POST", "/v1/chat/completions" },
  { "POST", "/v1/embeddings" },
  { "GET", "/v1/models" },
  { "GET", "/health" },
};

#define READ_SIZE 16384
#define MAX_KEPT (256 * 1024)    /* read ahead while a request is under way */

typedef struct {
  GSource base;
  EnsHttpConn *conn;
  gpointer tag;
} ConnSource;

struct _EnsHttpConn {
  EnsHttp *http;
  EnsListenerStream *stream; /* (owned) */
  int fd;
  ConnSource *source;
  GIOCondition events;       /* what the source polls for */
  GByteArray *in;            /* read, from in_at on not taken yet */
  gsize in_at;
  GString *out;              /* to write, from out_at on */
  gsize out_at;
  EnsHttpCall *call;         /* the request under way, or NULL */
  gboolean settle_due;       /* @call was answered from outside: end it from the source */
  gboolean keep_alive;       /* the request under way leaves the connection open */
  gboolean eof;              /* the client sent its last byte */
  gboolean broken;           /* a write failed: closed from the source */
  char *ip;                  /* the peer's address, once asked for */
  char *peer;                /* "http:IP:PORT", once asked for */
};

static void conn_close (EnsHttpConn *conn);
static gboolean conn_process (EnsHttpConn *conn);
static const char *conn_ip (EnsHttpConn *conn);

/* ------------------------------------------------------------ routes */

static const EnsHttpRoute *
plain_route (EnsHttp *http, const char *method, gsize method_len, const char *path, gsize path_len)
{
  for (guint i = 0; i < G_N_ELEMENTS (plain_routes); i++)
    if (strlen (plain_routes[i].method) == method_len && memcmp (plain_routes[i].method, method, method_len) == 0 &&
        strlen (plain_routes[i].path) == path_len && memcmp (plain_routes[i].path, path, path_len) == 0)
      {
        if (http->plain[i] == NULL)
          http->plain[i] = ens_http_route_exact (http, plain_routes[i].method, plain_routes[i].path);
        return http->plain[i];
      }
  return NULL;
}

/* ------------------------------------------------------------ writing */

static void
conn_watch (EnsHttpConn *conn, GIOCondition events)
{
  if (conn->events != events)
    {
      conn->events = events;
      if (conn->source)
        g_source_modify_unix_fd ((GSource *) conn->source, conn->source->tag, events);
    }
}

/* What to poll for: output while some is left, input while there is
 * room for it (nothing more after the client's end). */
static void
conn_rewatch (EnsHttpConn *conn)
{
  GIOCondition events = 0;

  if (conn->out_at < conn->out->len)
    events |= G_IO_OUT;
  if (!conn->eof && conn->in->len - conn->in_at < MAX_KEPT)
    events |= G_IO_IN;
  conn_watch (conn, events);
}

/* Writes what it can; FALSE when the connection broke (closed from the
 * source: route code may be under way). */
static gboolean
conn_flush (EnsHttpConn *conn)
{
  if (conn->broken)
    return FALSE;
  while (conn->out_at < conn->out->len)
    {
      gssize n = send (conn->fd, conn->out->str + conn->out_at, conn->out->len - conn->out_at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (n <= 0)
        {
          conn->broken = TRUE;
          return FALSE;
        }
      conn->out_at += (gsize) n;
    }
  if (conn->out_at == conn->out->len)
    {
      g_string_truncate (conn->out, 0);
      conn->out_at = 0;
    }
  conn_rewatch (conn);
  return TRUE;
}

static const char *
http_date (EnsHttp *http)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (now != http->date_second)
    {
      g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (now);
      g_autofree char *text = soup_date_time_to_string (dt, SOUP_DATE_HTTP);
      g_strlcpy (http->date, text, sizeof http->date);
      http->date_second = now;
    }
  return http->date;
}

void
ens_http_conn_answer (EnsHttpCall *call, const char *content_type, const char *body, gsize len)
{
  EnsHttpConn *conn = call->conn;
  GString *out = conn->out;
  char made[ENS_HTTP_REQUEST_ID_SIZE];

  /* The headers libsoup sends, in its order. */
  g_string_append_printf (out, "HTTP/1.1 %u %s\r\nServer: %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %"
                          G_GSIZE_FORMAT "\r\nx-request-id: %s\r\n",
                          call->status, soup_status_get_phrase (call->status), conn->http->server_header,
                          http_date (conn->http), content_type, len, ens_http_request_id (call->request_id, made));
  if (call->authenticate)
    g_string_append_printf (out, "WWW-Authenticate: %s\r\n", call->authenticate);
  g_string_append (out, "\r\n");
  g_string_append_len (out, body, (gssize) len);
  call->response_bytes = len;
  conn_flush (conn); /* a broken connection is closed from the source */
}

/* ------------------------------------------------------------ requests */

/* Ends @conn's call, answered. */
static void
conn_end_call (EnsHttpConn *conn)
{
  EnsHttpCall *call = g_steal_pointer (&conn->call);
  EnsHttp *http = conn->http;

  conn->settle_due = FALSE;
  if (http->access_log)
    {
      ens_http_access_log_line (http->host, http->self, conn_ip (conn), call->route->method,
                                call->route->path, call->status, (gint64) call->response_bytes, call->started_us, "");
    }
  ens_http_call_end (call);
}

void
ens_http_conn_settle (EnsHttpCall *call)
{
  /* Answered from a delivery of the core: ended (its client closed) from
   * the connection's own source, not from inside that delivery. */
  if (call->depth == 0 && call->answered && !call->gone && call->conn && call->conn->call == call)
    call->conn->settle_due = TRUE;
}

static void
conn_hand_over (EnsHttpConn *conn)
{
  EnsListenerStream *stream = g_steal_pointer (&conn->stream);

  conn->http->handed_over++;
  ens_listener_hand_over (stream, conn->in->data + conn->in_at, conn->in->len - conn->in_at);
  conn_close (conn); /* the stream is libsoup's now */
}

/* Serves the plain request @req of @route at the head of the buffer. */
static void
conn_serve (EnsHttpConn *conn, EnsHttpHead *req, const EnsHttpRoute *route)
{
  EnsHttp *http = conn->http;
  char *data = (char *) conn->in->data + conn->in_at;
  EnsHttpCall *call = ens_http_call_new (http, NULL, conn);
  g_autofree char *authorization = NULL;

  http->requests++;
  http->conns_served++;
  conn->call = call;
  conn->keep_alive = !req->close;
  call->route = route;
  call->request_body = g_strndup (data + req->head_len, req->body_len);
  call->request_len = req->body_len;
  if (req->request_id)
    call->request_id = g_strndup (req->request_id, req->request_id_len);
  if (req->authorization)
    authorization = g_strndup (req->authorization, req->authorization_len);
  conn->in_at += req->head_len + req->body_len;

  call->depth++;
  ens_http_run (call, authorization);
  call->depth--;
  if (conn->call == call && call->answered)
    conn_end_call (conn);
}

/* Serves the buffered requests while they are plain and nothing is under
 * way or waiting to be written.  FALSE when @conn is closed (and freed) or
 * handed over. */
static gboolean
conn_process (EnsHttpConn *conn)
{
  while (conn->call == NULL && conn->out->len == 0)
    {
      EnsHttpHead req;
      const EnsHttpRoute *route;

      if (!conn->keep_alive)
        {
          conn_close (conn);
          return FALSE;
        }
      switch (ens_http_head_parse ((const char *) conn->in->data + conn->in_at, conn->in->len - conn->in_at,
                                   conn->http->max_body, &req))
        {
        case ENS_HTTP_HEAD_NONE:
          if (!conn->eof)
            return TRUE;
          conn_close (conn);
          return FALSE;
        case ENS_HTTP_HEAD_PLAIN:
          route = plain_route (conn->http, req.method, req.method_len, req.path, req.path_len);
          if (route)
            {
              conn_serve (conn, &req, route); /* never closes @conn */
              if (conn->broken)
                return TRUE; /* closed from the source */
              break;
            }
          G_GNUC_FALLTHROUGH;
        case ENS_HTTP_HEAD_OTHER:
          conn_hand_over (conn);
          return FALSE;
        }
    }
  return TRUE;
}

/* Reads what is there; FALSE when the connection broke (and is closed). */
static gboolean
conn_read (EnsHttpConn *conn)
{
  if (conn->in_at > 0)
    {
      /* What was taken goes: a pipelining client never leaves it empty. */
      g_byte_array_remove_range (conn->in, 0, (guint) conn->in_at);
      conn->in_at = 0;
    }
  while (!conn->eof && conn->in->len < MAX_KEPT)
    {
      gsize had = conn->in->len;
      gssize n;

      g_byte_array_set_size (conn->in, had + READ_SIZE);
      n = recv (conn->fd, conn->in->data + had, READ_SIZE, 0);
      g_byte_array_set_size (conn->in, had + (n > 0 ? (gsize) n : 0));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (n < 0)
        {
          conn_close (conn); /* reset: a request under way ends as its client went away */
          return FALSE;
        }
      if (n == 0)
        conn->eof = TRUE;
      else if ((gsize) n < READ_SIZE)
        break;
    }
  conn_rewatch (conn);
  return TRUE;
}

/* ------------------------------------------------------------ the source */

static gboolean
conn_source_prepare (GSource *source, gint *timeout)
{
  ConnSource *cs = (ConnSource *) source;

  *timeout = -1;
  return cs->conn->settle_due || cs->conn->broken;
}

static gboolean
conn_source_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  ConnSource *cs = (ConnSource *) source;
  EnsHttpConn *conn = cs->conn;
  GIOCondition ready = g_source_query_unix_fd (source, cs->tag);

  (void) callback;
  (void) data;
  if (conn->settle_due)
    conn_end_call (conn);
  if (conn->broken || ((ready & (G_IO_ERR | G_IO_HUP)) && !(ready & G_IO_IN)))
    {
      conn_close (conn);
      return G_SOURCE_CONTINUE;
    }
  if ((ready & G_IO_OUT) && !conn_flush (conn))
    {
      conn_close (conn);
      return G_SOURCE_CONTINUE;
    }
  if ((ready & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && !conn_read (conn))
    return G_SOURCE_CONTINUE;
  conn_process (conn);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = {
  .prepare = conn_source_prepare,
  .dispatch = conn_source_dispatch,
};

/* ------------------------------------------------------------ connections */

/* The source that waits for @conn's socket. */
static void
conn_attach (EnsHttpConn *conn)
{
  GSource *source = g_source_new (&conn_source_funcs, sizeof (ConnSource));

  conn->source = (ConnSource *) source;
  conn->source->conn = conn;
  conn->source->tag = g_source_add_unix_fd (source, conn->fd, conn->events);
  /* Nothing runs the loop from inside a dispatch: the fd stays in the poll
   * set while it dispatches (no wake-up of the loop for each). */
  g_source_set_can_recurse (source, TRUE);
  g_source_set_name (source, "ens-http-conn");
  g_source_attach (source, NULL);
}

/* Whether the @len bytes at @data start with a request served here. */
static gboolean
conn_is_plain (EnsHttp *http, const char *data, gsize len)
{
  EnsHttpHead req;

  return ens_http_head_parse (data, len, http->max_body, &req) == ENS_HTTP_HEAD_PLAIN &&
         plain_route (http, req.method, req.method_len, req.path, req.path_len) != NULL;
}

void
ens_http_conn_accept (EnsListenerStream *stream, gpointer data)
{
  EnsHttp *http = data;
  EnsHttpConn *conn;
  char first[READ_SIZE];
  gssize n;

  /* Served here only when its first request is there as the connection is
   * accepted, whole and plain (a client that connects to send one has
   * mostly sent it by then).  Anything else, a request still on its way
   * included, is libsoup's at once, as the connection came: a connection
   * kept waiting here for its first bytes, then handed over, left 1,024
   * concurrent SSE streams stalling (gaps of 110-300 ms), where libsoup
   * taking them at once leaves none (tests/bench/run-bench-gateway.py). */
  do
    n = recv (g_socket_get_fd (ens_listener_stream_get_socket (stream)), first, sizeof first, MSG_PEEK);
  while (n < 0 && errno == EINTR);
  if (n <= 0 || !conn_is_plain (http, first, (gsize) n))
    {
      http->handed_over++;
      ens_listener_hand_over (stream, NULL, 0);
      return;
    }
  conn = g_new0 (EnsHttpConn, 1);
  conn->http = http;
  conn->stream = stream;
  conn->fd = g_socket_get_fd (ens_listener_stream_get_socket (stream));
  conn->in = g_byte_array_sized_new (READ_SIZE);
  conn->out = g_string_sized_new (1024);
  conn->keep_alive = TRUE;
  conn->events = G_IO_IN;
  g_hash_table_add (http->conns, conn);
  if (conn_read (conn) && conn_process (conn))
    conn_attach (conn);
}

/* Closes @conn (when its stream was handed over: only forgets it) and
 * frees it.  Called from its source or at the end only, never under route
 * code. */
static void
conn_close (EnsHttpConn *conn)
{
  g_hash_table_remove (conn->http->conns, conn);
  if (conn->source)
    {
      g_source_destroy ((GSource *) conn->source);
      g_source_unref ((GSource *) conn->source);
    }
  if (conn->call)
    ens_http_call_end (g_steal_pointer (&conn->call)); /* not answered: its client went away */
  if (conn->stream)
    {
      ens_listener_stream_close (conn->stream);
      g_clear_object (&conn->stream);
    }
  g_byte_array_unref (conn->in);
  g_string_free (conn->out, TRUE);
  g_free (conn->ip);
  g_free (conn->peer);
  g_free (conn);
}

void
ens_http_conns_close (EnsHttp *http)
{
  g_autoptr (GList) conns = g_hash_table_get_keys (http->conns);

  for (GList *l = conns; l; l = l->next)
    conn_close (l->data);
}

EnsListenerStream *
ens_http_conn_stream (EnsHttpCall *call)
{
  return call->conn->stream;
}

/* (transfer none) the peer's IP address, or NULL. */
static const char *
conn_ip (EnsHttpConn *conn)
{
  GSocketAddress *remote = ens_listener_stream_get_remote (conn->stream);

  if (conn->ip == NULL && G_IS_INET_SOCKET_ADDRESS (remote))
    conn->ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  return conn->ip;
}

char *
ens_http_conn_peer (EnsHttpCall *call)
{
  EnsHttpConn *conn = call->conn;

  if (conn->peer == NULL)
    conn->peer = conn_ip (conn) ? g_strdup_printf ("http:%s:%u", conn->ip,
                                                   g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (
                                                     ens_listener_stream_get_remote (conn->stream))))
                                : g_strdup ("http");
  return g_strdup (conn->peer);
}
