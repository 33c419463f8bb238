/* ens-transport-mcp.c — the Model Context Protocol on a Unix socket,
 * mcp.sock (0600, in the 0700 socket folder), framed as MCP's stdio
 * transport: one JSON-RPC message per line, both ways.  Each connection is
 * one MCP session (plugins/common/mcp).  `ensemblectl mcp` bridges a
 * desktop client's stdio to it, so a client that launches a command gets
 * Ensemble's tools and resources; only the daemon's own user reaches it.
 *
 * A line longer than http-max-body-bytes is answered with a JSON-RPC
 * error and the connection closed; a peer that stops reading while more
 * than that is queued for it is disconnected. */
#include <ensemble/ensemble.h>

#include "ens-host-config.h"
#include "ens-jsonrpc.h"
#include "ens-mcp-server.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 65536

typedef struct _McpUnix McpUnix;

typedef struct {
  McpUnix *t;
  GSocketConnection *conn;
  GInputStream *in;
  GOutputStream *out;
  EnsMcpSession *session;
  GCancellable *cancel;
  GByteArray *buf;   /* bytes read, not yet a whole line */
  GQueue queue;      /* GBytes to write */
  gsize queued;
  guint8 chunk[READ_CHUNK];
  guint refs;
  gboolean writing, last_write, ended, eof;
} McpConn;

struct _McpUnix {
  const EnsHost *host;
  EnsPlugin *self;
  GSocketService *service;
  char *path;
  gsize max_message;
  EnsMcpLimits limits;
  GList *conns;
  guint64 accepted;
};

static void conn_read (McpConn *c);
static void conn_flush (McpConn *c);

static McpConn *
conn_ref (McpConn *c)
{
  c->refs++;
  return c;
}

/* Pending reads and writes hold a reference each, so a callback that
 * comes after the end (or after stop) finds its connection, ended. */
static void
conn_unref (McpConn *c)
{
  if (--c->refs > 0)
    return;
  g_io_stream_close (G_IO_STREAM (c->conn), NULL, NULL);
  g_object_unref (c->conn);
  g_clear_object (&c->in);
  g_object_unref (c->cancel);
  g_byte_array_unref (c->buf);
  g_queue_clear_full (&c->queue, (GDestroyNotify) g_bytes_unref);
  g_free (c);
}

/* The end: the session closes (answers still due are dropped), pending
 * I/O is cancelled, the listener forgets the connection. */
static void
conn_end (McpConn *c)
{
  if (c->ended)
    return;
  c->ended = TRUE;
  c->t->conns = g_list_remove (c->t->conns, c);
  g_cancellable_cancel (c->cancel);
  g_clear_pointer (&c->session, ens_mcp_session_close);
  conn_unref (c);
}

/* The peer stopped sending: the connection ends once every answer it is
 * owed has been written. */
static void
conn_maybe_end (McpConn *c)
{
  if (c->eof && !c->ended && !c->writing && g_queue_is_empty (&c->queue) && ens_mcp_session_pending (c->session) == 0)
    conn_end (c);
}

static void
written (GObject *source, GAsyncResult *res, gpointer data)
{
  McpConn *c = data;
  g_autoptr (GError) error = NULL;
  GBytes *head;

  c->writing = FALSE;
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, NULL, &error) || c->ended)
    {
      conn_end (c);
      conn_unref (c);
      return;
    }
  head = g_queue_pop_head (&c->queue);
  c->queued -= g_bytes_get_size (head);
  g_bytes_unref (head);
  if (c->last_write && g_queue_is_empty (&c->queue))
    conn_end (c);
  else
    {
      conn_flush (c);
      conn_maybe_end (c);
    }
  conn_unref (c);
}

static void
conn_flush (McpConn *c)
{
  GBytes *head = g_queue_peek_head (&c->queue);

  if (c->writing || head == NULL || c->ended)
    return;
  c->writing = TRUE;
  g_output_stream_write_all_async (c->out, g_bytes_get_data (head, NULL), g_bytes_get_size (head), G_PRIORITY_DEFAULT,
                                   c->cancel, written, conn_ref (c));
}

static void
conn_send (McpConn *c, JsonNode *msg)
{
  g_autofree char *text = NULL;
  gsize len;

  if (c->ended || c->last_write || msg == NULL)
    return;
  text = ens_jsonrpc_to_string (msg);
  len = strlen (text);
  if (c->queued + len > c->t->max_message * 4)
    {
      /* The write under way fails and ends the connection from its own
       * callback, never from inside the session's. */
      ENS_LOG (c->t->host, c->t->self, G_LOG_LEVEL_MESSAGE, "mcp.sock: a peer that does not read is disconnected");
      c->last_write = TRUE;
      g_cancellable_cancel (c->cancel);
      return;
    }
  text = g_realloc (text, len + 2);
  text[len] = '\n';
  text[len + 1] = '\0';
  c->queued += len + 1;
  g_queue_push_tail (&c->queue, g_bytes_new_take (g_steal_pointer (&text), len + 1));
  conn_flush (c);
}

static void
notify_cb (JsonNode *msg, gpointer data)
{
  conn_send (data, msg);
}

static void
answer_cb (JsonNode *response, gpointer data)
{
  McpConn *c = data;

  /* Never ends the connection here: a write was just queued, or the end
   * waits for the read or write under way. */
  conn_send (c, response);
}

/* Every whole line in the buffer goes to the session. */
static void
conn_lines (McpConn *c)
{
  guint8 *nl;
  gsize start = 0;

  while (!c->ended && !c->last_write && (nl = memchr (c->buf->data + start, '\n', c->buf->len - start)) != NULL)
    {
      gsize len = nl - (c->buf->data + start);
      const char *line = (const char *) c->buf->data + start;
      gsize trimmed = len > 0 && line[len - 1] == '\r' ? len - 1 : len;

      if (len > c->t->max_message)
        break;
      if (trimmed > 0)
        ens_mcp_session_handle_text (c->session, line, trimmed, answer_cb, c);
      start += len + 1;
    }
  if (c->ended)
    return;
  g_byte_array_remove_range (c->buf, 0, MIN (start, c->buf->len));
  if (!c->last_write && (c->buf->len > c->t->max_message))
    {
      g_autoptr (JsonNode) err = ens_jsonrpc_error (NULL, ENS_JSONRPC_INVALID_REQUEST,
                                                    "message too long (over http-max-body-bytes); closing", NULL);
      conn_send (c, err);
      c->last_write = TRUE; /* what is queued is written; then the end */
      g_byte_array_set_size (c->buf, 0);
      if (!c->writing && g_queue_is_empty (&c->queue))
        conn_end (c);
    }
}

static void
read_done (GObject *source, GAsyncResult *res, gpointer data)
{
  McpConn *c = data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  if (c->ended)
    ;
  else if (n < 0)
    conn_end (c); /* the connection broke: what it asked is dropped with it */
  else if (n == 0)
    {
      c->eof = TRUE; /* half-closed: the answers still due go out first */
      conn_lines (c);
      conn_maybe_end (c);
    }
  else
    {
      g_byte_array_append (c->buf, c->chunk, n);
      conn_lines (c);
      if (!c->ended && !c->last_write)
        conn_read (c);
    }
  conn_unref (c);
}

static void
conn_read (McpConn *c)
{
  g_input_stream_read_async (c->in, c->chunk, sizeof c->chunk, G_PRIORITY_DEFAULT, c->cancel, read_done,
                             conn_ref (c));
}

static gboolean
incoming (GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  McpUnix *t = data;
  McpConn *c = g_new0 (McpConn, 1);
  g_autofree char *peer = g_strdup_printf ("mcp.sock:%" G_GUINT64_FORMAT, ++t->accepted);

  (void) service;
  (void) source;
  c->t = t;
  c->refs = 1; /* the listener's, dropped by conn_end() */
  c->conn = g_object_ref (connection);
  c->in = g_object_ref (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  c->out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  c->cancel = g_cancellable_new ();
  c->buf = g_byte_array_new ();
  g_queue_init (&c->queue);
  /* The socket is 0600 in a 0700 folder: the peer is the daemon's own user. */
  c->session = ens_mcp_session_new (t->host, t->self, ENS_CLIENT_FLAG_ADMIN, peer, &t->limits, notify_cb, c);
  t->conns = g_list_prepend (t->conns, c);
  conn_read (c);
  return TRUE;
}

/* ------------------------------------------------------------------ plugin */

static void mcp_stop (gpointer instance);

static gpointer
mcp_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  McpUnix *t = g_new0 (McpUnix, 1);
  g_autofree char *dir = ens_host_config_string (host, self, "socket-dir", "");
  g_autoptr (GSocketAddress) addr = NULL;
  struct stat st;

  t->host = host;
  t->self = self;
  t->max_message = ens_host_config_uint (host, self, "http-max-body-bytes", 4194304);
  t->limits.max_result_bytes = ens_host_config_uint (host, self, "mcp-max-result-bytes", 1048576);
  t->limits.tool_timeout_ms = ens_host_config_uint (host, self, "mcp-tool-timeout-ms", 0);
  if (!*dir)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no socket-dir");
      goto fail;
    }
  if (g_mkdir_with_parents (dir, 0700) != 0 || lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) ||
      st.st_uid != getuid ())
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "socket folder %s is not a folder of ours", dir);
      goto fail;
    }
  if ((st.st_mode & 0777) != 0700 && chmod (dir, 0700) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot make %s private", dir);
      goto fail;
    }
  t->path = g_build_filename (dir, "mcp.sock", NULL);
  if (g_file_test (t->path, G_FILE_TEST_EXISTS))
    {
      /* Stale unless someone answers on it. */
      g_autoptr (GSocketClient) probe = g_socket_client_new ();
      g_autoptr (GSocketAddress) a = g_unix_socket_address_new (t->path);
      g_autoptr (GSocketConnection) live = g_socket_client_connect (probe, G_SOCKET_CONNECTABLE (a), NULL, NULL);
      if (live)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, "%s is served by another running daemon",
                       t->path);
          goto fail;
        }
      g_unlink (t->path);
    }
  t->service = g_socket_service_new ();
  addr = g_unix_socket_address_new (t->path);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (t->service), addr, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, error))
    goto fail;
  if (chmod (t->path, 0600) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot make %s private", t->path);
      goto fail;
    }
  g_signal_connect (t->service, "incoming", G_CALLBACK (incoming), t);
  g_socket_service_start (t->service);
  ENS_LOG (host, self, G_LOG_LEVEL_MESSAGE, "MCP on %s (ensemblectl mcp)", t->path);
  return t;

fail:
  mcp_stop (t);
  return NULL;
}

static void
mcp_stop (gpointer instance)
{
  McpUnix *t = instance;

  if (t->service)
    {
      g_socket_service_stop (t->service);
      g_socket_listener_close (G_SOCKET_LISTENER (t->service));
      g_signal_handlers_disconnect_by_data (t->service, t);
      g_clear_object (&t->service);
      g_unlink (t->path);
    }
  /* Connections end now; callbacks still pending find them ended. */
  while (t->conns)
    conn_end (t->conns->data);
  g_free (t->path);
  g_free (t);
}

static JsonNode *
mcp_describe (gpointer instance)
{
  McpUnix *t = instance;
  JsonObject *obj = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (obj, "socket", t->path);
  json_object_set_int_member (obj, "sessions", g_list_length (t->conns));
  json_node_take_object (node, obj);
  return node;
}

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-mcp", "0.1.0",
                   "MCP on a Unix socket (mcp.sock), one JSON-RPC message per line, for ensemblectl mcp",
                   ENS_PLUGIN_FLAG_NONE, mcp_init, mcp_stop, mcp_describe, NULL)
