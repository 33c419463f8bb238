/* ens-ws.c — WebSocket connections on a SoupServer (see ens-ws.h): the
 * handshake, one EnsClient per connection, the native protocol, the output
 * queue.  The Neolith and Rhetor protocols are ens-ws-neolith.c and
 * ens-ws-rhetor.c.
 *
 * Output: libsoup-3.2 has no buffered-amount query, so each connection keeps
 * its own queue and hands a frame to libsoup only while the socket takes
 * data (the output stream polls writable); otherwise it waits for a
 * writable wake-up.  libsoup's own queue thus stays about one frame long,
 * and ours (plugins/common/outbox) is where the slow-consumer policy
 * applies: at max-queue-messages or max-queue-bytes the oldest queued
 * events make room, the client is told once it has caught up, and replies
 * are never dropped.  A client that does not read its replies at all is
 * closed (1008) once twice the limits wait.
 *
 * Incoming messages over ws-max-message-bytes are answered with close 1009.
 * libsoup's own per-frame limit is set to twice that: it cuts the TCP
 * connection without a close frame, so it is only the backstop for frames
 * grossly over the limit. */
#include "ens-ws-private.h"
#include "ens-host-config.h"
#include "ens-listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#define WS_DATA_KEY "ens-ws"
#define KEEPALIVE_SECONDS 30
#define WS_SOCKET_KEY "ens-ws-socket"

/* Encoders get no context; the host table is the same for every plugin. */
static const EnsHost *the_host;

static const EnsClientSink conn_sink;
static const EnsClientSink probe_sink;

/* ------------------------------------------------------------ helpers */

char *
ens_ws_iso_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format_iso8601 (now);
}

GBytes *
ens_ws_node_bytes (JsonNode *node)
{
  char *text = the_host->json_to_string (node);
  return g_bytes_new_take (text, strlen (text));
}

JsonNode *
ens_ws_typed_message (const char *type, JsonNode *payload)
{
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", type);
  json_object_set_member (obj, "payload", payload);
  return node;
}

/* ------------------------------------------------------------ output */

static void pump_start (EnsWsConn *c);

static gboolean
conn_open (EnsWsConn *c)
{
  return !c->gone && soup_websocket_connection_get_state (c->conn) == SOUP_WEBSOCKET_STATE_OPEN;
}

static void
conn_close (EnsWsConn *c, gushort code, const char *reason)
{
  if (conn_open (c))
    soup_websocket_connection_close (c->conn, code, reason);
}

static gboolean
socket_writable (EnsWsConn *c)
{
  return c->output == NULL || g_pollable_output_stream_is_writable (c->output);
}

/* What one main-loop turn writes to a corked connection leaves in one piece
 * when the turn is over: a client that reads "the next message" after one
 * it waited for (Neolith's e2e client) finds the frames that belong together
 * (stream_end, task_completed, session_status_update; the greeting and the
 * handshake) in one read, not split across two. */
static gboolean
uncork (gpointer data)
{
  EnsWsConn *c = data;

  c->uncork_id = 0;
  g_socket_set_option (c->socket, IPPROTO_TCP, TCP_CORK, 0, NULL);
  return G_SOURCE_REMOVE;
}

static void
cork (EnsWsConn *c)
{
  if (c->socket == NULL || c->uncork_id)
    return;
  g_socket_set_option (c->socket, IPPROTO_TCP, TCP_CORK, 1, NULL);
  c->uncork_id = g_idle_add_full (G_PRIORITY_HIGH, uncork, c, NULL);
}

static void
hand_to_soup (EnsWsConn *c, GBytes *bytes)
{
  c->ws->messages_out++;
  cork (c);
  soup_websocket_connection_send_message (c->conn, SOUP_WEBSOCKET_DATA_TEXT, bytes);
}

/* An EnsEncodeFunc: the native JSON line without its '\n', one frame,
 * made once per message and shared by every WebSocket peer. */
static GBytes *
native_frame (EnsMessage *msg)
{
  GBytes *line = the_host->message_encode (msg, the_host->encode_native);

  return g_bytes_new_from_bytes (line, 0, g_bytes_get_size (line) - 1);
}

/* The drop notice in the connection's dialect, after everything queued. */
static void
report_dropped (EnsWsConn *c, guint64 count, guint64 total)
{
  g_autoptr (GBytes) bytes = NULL;
  JsonObject *obj;

  if (c->kind == ENS_WS_NATIVE)
    {
      EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
      g_autoptr (JsonNode) data = ens_node_new_object (&obj);
      EnsMessage *notice;

      json_object_set_int_member (obj, "count", count);
      json_object_set_int_member (obj, "total", total);
      init.topic = "ensemble.dropped";
      init.from = "ensembled";
      init.to = c->ws->host->client_id (c->client);
      init.data = data;
      notice = c->ws->host->message_new (&init);
      bytes = g_bytes_ref (c->ws->host->message_encode (notice, native_frame));
      c->ws->host->message_unref (notice);
    }
  else
    {
      g_autoptr (JsonNode) node = ens_node_new_object (&obj);
      JsonObject *payload = json_object_new ();
      json_object_set_string_member (obj, "type", "events_dropped");
      json_object_set_int_member (payload, "count", count);
      json_object_set_int_member (payload, "total", total);
      json_object_set_object_member (obj, "payload", payload);
      bytes = ens_ws_node_bytes (node);
    }
  ens_outbox_push (c->out, bytes, FALSE);
}

/* Hands queued frames to libsoup while the socket takes them. */
static void
pump (EnsWsConn *c)
{
  guint64 count, total;

  while (!ens_outbox_is_empty (c->out) && conn_open (c) && socket_writable (c))
    {
      g_autoptr (GBytes) frame = ens_outbox_pop (c->out);
      hand_to_soup (c, frame);
      if (ens_outbox_take_dropped (c->out, &count, &total))
        report_dropped (c, count, total);
    }
  if (!conn_open (c))
    ens_outbox_clear (c->out);
  if (!ens_outbox_is_empty (c->out))
    pump_start (c);
}

static gboolean
on_writable (GObject *stream, gpointer data)
{
  EnsWsConn *c = data;

  (void) stream;
  g_clear_pointer (&c->writable, g_source_unref);
  pump (c);
  return G_SOURCE_REMOVE;
}

static void
pump_start (EnsWsConn *c)
{
  if (c->writable || c->output == NULL)
    return;
  c->writable = g_pollable_output_stream_create_source (c->output, NULL);
  g_source_set_callback (c->writable, (GSourceFunc) (void (*) (void)) on_writable, c, NULL);
  g_source_set_static_name (c->writable, "ensemble websocket output");
  g_source_attach (c->writable, NULL);
}

void
ens_ws_send (EnsWsConn *c, GBytes *bytes, gboolean droppable)
{
  if (!conn_open (c))
    return;
  if (ens_outbox_is_empty (c->out) && socket_writable (c))
    {
      hand_to_soup (c, bytes);
      return;
    }
  if (!droppable && ens_outbox_over (c->out, 2))
    {
      /* Twice the limits and still no reading: it does not read its
       * replies (a WebSocket cannot stop reading), so stop serving it. */
      ens_outbox_clear (c->out);
      conn_close (c, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "outbound queue full: the client does not read");
      return;
    }
  c->ws->dropped += ens_outbox_push (c->out, bytes, droppable);
  pump_start (c);
}

void
ens_ws_send_node (EnsWsConn *c, JsonNode *node)
{
  g_autoptr (GBytes) bytes = ens_ws_node_bytes (node);
  ens_ws_send (c, bytes, FALSE);
}

/* {type:"error", error, code?, sessionId?} */
void
ens_ws_send_error (EnsWsConn *c, const char *code, const char *message, const char *session_id, const char *request_type)
{
  JsonObject *obj;
  g_autoptr (JsonNode) node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "type", "error");
  json_object_set_string_member (obj, "error", message);
  if (code)
    json_object_set_string_member (obj, "code", code);
  if (session_id)
    json_object_set_string_member (obj, "sessionId", session_id);
  if (request_type)
    json_object_set_string_member (obj, "requestType", request_type);
  ens_ws_send_node (c, node);
}

/* ------------------------------------------------------------ the core */

void
ens_ws_pending_free (EnsWsPending *p)
{
  g_free (p->session_id);
  g_free (p->task);
  g_free (p);
}

EnsWsPending *
ens_ws_pending_new (EnsWsPendingKind kind, const char *session_id)
{
  EnsWsPending *p = g_new0 (EnsWsPending, 1);
  p->kind = kind;
  p->session_id = g_strdup (session_id);
  return p;
}

/* Submits a core verb as this connection's client; @p (transfer full) says
 * what to do with the answer, which may come before this returns. */
void
ens_ws_core (EnsWsConn *c, const char *action, JsonNode *data, EnsWsPending *p)
{
  const EnsHost *host = c->ws->host;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  char id[32];
  EnsMessage *msg;

  g_snprintf (id, sizeof id, "ws%" G_GUINT64_FORMAT, ++c->next_id);
  g_hash_table_insert (c->pending, g_strdup (id), p);
  init.id = id;
  init.action = action;
  init.data = data;
  msg = host->message_new (&init);
  host->client_submit (c->client, msg);
  host->message_unref (msg);
}

JsonNode *
ens_ws_session_params (const char *session_id, const char *task)
{
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_string_member (obj, "session_id", session_id);
  if (task)
    json_object_set_string_member (obj, "task", task);
  return node;
}

static void
subscription (EnsWsConn *c, const char *action, const char *topic)
{
  JsonObject *obj;
  g_autoptr (JsonNode) data = ens_node_new_object (&obj);
  JsonArray *topics = json_array_new ();

  json_array_add_string_element (topics, topic);
  json_object_set_array_member (obj, "topics", topics);
  ens_ws_core (c, action, data, ens_ws_pending_new (ENS_WS_PENDING_IGNORE, NULL));
}

void
ens_ws_subscribe (EnsWsConn *c, const char *topic)
{
  subscription (c, "subscribe", topic);
}

/* Subscribes the connection to session.<id>.* once. */
void
ens_ws_watch_session (EnsWsConn *c, const char *session_id)
{
  g_autofree char *topic = NULL;

  if (g_hash_table_contains (c->watched, session_id))
    return;
  g_hash_table_add (c->watched, g_strdup (session_id));
  topic = g_strdup_printf ("session.%s.*", session_id);
  subscription (c, "subscribe", topic);
}

void
ens_ws_unwatch_session (EnsWsConn *c, const char *session_id)
{
  g_autofree char *topic = NULL;

  if (!g_hash_table_remove (c->watched, session_id))
    return;
  topic = g_strdup_printf ("session.%s.*", session_id);
  subscription (c, "unsubscribe", topic);
}

/* ------------------------------------------------------------ the sink */

static void
sink_deliver (gpointer sink_data, EnsMessage *msg)
{
  EnsWsConn *c = sink_data;
  const EnsHost *host = c->ws->host;

  if (c->kind == ENS_WS_NATIVE)
    {
      ens_ws_send (c, host->message_encode (msg, native_frame), msg->kind == ENS_MESSAGE_EVENT);
      return;
    }
  if (msg->kind == ENS_MESSAGE_REPLY || msg->kind == ENS_MESSAGE_ERROR)
    {
      EnsWsPending *p = msg->id ? g_hash_table_lookup (c->pending, msg->id) : NULL;
      if (p == NULL)
        {
          if (msg->kind == ENS_MESSAGE_ERROR)
            ens_ws_send_error (c, msg->error_code, msg->error_message ? msg->error_message : msg->error_code, NULL, NULL);
          return;
        }
      {
        gpointer key = NULL;
        g_hash_table_steal_extended (c->pending, msg->id, &key, NULL);
        g_free (key);
      }
      if (c->kind == ENS_WS_NEOLITH)
        ens_ws_neolith_answer (c, p, msg);
      else if (msg->kind == ENS_MESSAGE_ERROR && p->kind != ENS_WS_PENDING_IGNORE)
        ens_ws_send_error (c, msg->error_code, msg->error_message ? msg->error_message : msg->error_code,
                           c->socket_id, NULL);
      ens_ws_pending_free (p);
      return;
    }
  if (msg->kind != ENS_MESSAGE_EVENT || msg->topic == NULL || !g_str_has_prefix (msg->topic, "session."))
    return;
  if (c->kind == ENS_WS_NEOLITH)
    ens_ws_neolith_event (c, msg);
  else
    ens_ws_rhetor_event (c, msg);
}

static void
sink_disconnect (gpointer sink_data, const char *reason)
{
  EnsWsConn *c = sink_data;
  conn_close (c, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, reason ? reason : "daemon shutting down");
}

static const EnsClientSink conn_sink = {
  .struct_size = sizeof (EnsClientSink),
  .deliver = sink_deliver,
  .disconnect = sink_disconnect,
};

static void
probe_deliver (gpointer sink_data, EnsMessage *msg)
{
  EnsWs *ws = sink_data;
  if (ws->probing && ws->probe_answer == NULL && msg->kind != ENS_MESSAGE_EVENT)
    ws->probe_answer = ws->host->message_ref (msg);
}

static void
probe_disconnect (gpointer sink_data, const char *reason)
{
  (void) sink_data;
  (void) reason;
}

static const EnsClientSink probe_sink = {
  .struct_size = sizeof (EnsClientSink),
  .deliver = probe_deliver,
  .disconnect = probe_disconnect,
};

/* Asks the core on a client of its own, made for the question (a standing
 * one would show in every connection count).  Core verbs answer before
 * client_submit returns; (transfer full) the answer, or NULL if it did not. */
EnsMessage *
ens_ws_probe (EnsWs *ws, const char *action, JsonNode *data)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  EnsClient *client = ws->host->client_new (ws->self, &probe_sink, ws, 0, "ws:internal");
  EnsMessage *msg, *answer;

  init.id = "probe";
  init.action = action;
  init.data = data;
  msg = ws->host->message_new (&init);
  ws->probing = TRUE;
  ws->host->client_submit (client, msg);
  ws->probing = FALSE;
  ws->host->client_close (client);
  ws->host->message_unref (msg);
  answer = ws->probe_answer;
  ws->probe_answer = NULL;
  return answer;
}

/* ------------------------------------------------------------ connections */

static void
conn_free (EnsWsConn *c)
{
  c->gone = TRUE;
  if (c->client)
    c->ws->host->client_close (c->client); /* cancels what it started; no deliver() follows */
  if (c->writable)
    {
      g_source_destroy (c->writable);
      g_source_unref (c->writable);
    }
  if (c->uncork_id)
    g_source_remove (c->uncork_id);
  g_clear_object (&c->socket);
  g_clear_pointer (&c->neolith, ens_ws_neolith_free);
  g_signal_handlers_disconnect_by_data (c->conn, c);
  if (soup_websocket_connection_get_state (c->conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (c->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "daemon shutting down");
  g_object_unref (c->conn);
  ens_outbox_free (c->out);
  g_hash_table_unref (c->watched);
  g_hash_table_unref (c->pending);
  g_free (c->socket_id);
  g_free (c);
}

static void
on_closed (SoupWebsocketConnection *conn, EnsWsConn *c)
{
  (void) conn;
  g_hash_table_remove (c->ws->conns, c); /* frees */
}

static void
on_message (SoupWebsocketConnection *conn, gint type, GBytes *message, EnsWsConn *c)
{
  gsize len;
  const char *text = g_bytes_get_data (message, &len);

  (void) conn;
  if (!conn_open (c))
    return;
  c->ws->messages_in++;
  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    {
      conn_close (c, SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA, "binary frames are not supported: send JSON text");
      return;
    }
  if (len > c->ws->max_message)
    {
      conn_close (c, SOUP_WEBSOCKET_CLOSE_TOO_BIG, "message over ws-max-message-bytes");
      return;
    }
  if (text == NULL)
    text = "";
  switch (c->kind)
    {
    case ENS_WS_NATIVE:
      {
        const EnsHost *host = c->ws->host;
        EnsMessage *msg = host->parse_native (text, len);
        host->client_submit (c->client, msg);
        host->message_unref (msg);
      }
      break;
    case ENS_WS_NEOLITH:
      ens_ws_neolith_message (c, text, len);
      break;
    case ENS_WS_RHETOR:
      ens_ws_rhetor_message (c, text, len);
      break;
    default:
      break;
    }
}

static char *
peer_name (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  if (remote && G_IS_INET_SOCKET_ADDRESS (remote))
    {
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
      return g_strdup_printf ("ws:%s:%u", ip, g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)));
    }
  return g_strdup ("ws");
}

/* "/ws/socket/ID" -> "ID" (transfer none), NULL for other paths. */
static const char *
rhetor_socket_id (const char *path)
{
  return g_str_has_prefix (path, "/ws/socket/") ? path + strlen ("/ws/socket/") : NULL;
}

static void
on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path, SoupWebsocketConnection *conn,
              gpointer data)
{
  EnsWs *ws = data;
  EnsWsConn *c = g_new0 (EnsWsConn, 1);
  g_autofree char *peer = peer_name (msg);
  const char *socket_id = rhetor_socket_id (path);
  GOutputStream *os = g_io_stream_get_output_stream (soup_websocket_connection_get_io_stream (conn));

  (void) server;
  ws->accepted++;
  c->ws = ws;
  c->conn = g_object_ref (conn);
  c->kind = socket_id ? ENS_WS_RHETOR : strcmp (path, "/ws") == 0 || !ws->neolith ? ENS_WS_NATIVE : ENS_WS_NEOLITH;
  c->socket_id = g_strdup (socket_id);
  if (G_IS_POLLABLE_OUTPUT_STREAM (os) && g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (os)))
    c->output = G_POLLABLE_OUTPUT_STREAM (os);
  c->out = ens_outbox_new (ens_host_config_uint (ws->host, ws->self, "max-queue-messages", 4096),
                           ens_host_config_uint (ws->host, ws->self, "max-queue-bytes", 4194304));
  c->watched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  c->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) ens_ws_pending_free);
  g_hash_table_add (ws->conns, c);

  soup_websocket_connection_set_keepalive_interval (conn, KEEPALIVE_SECONDS);
  soup_websocket_connection_set_max_incoming_payload_size (conn, ws->max_message > G_MAXUINT64 / 2
                                                                    ? 0
                                                                    : ws->max_message * 2 + 1024);
  g_signal_connect (conn, "message", G_CALLBACK (on_message), c);
  g_signal_connect (conn, "closed", G_CALLBACK (on_closed), c);
  c->client = ws->host->client_new (ws->self, &conn_sink, c, ws->token ? ENS_CLIENT_FLAG_ADMIN : 0, peer);

  if (c->kind == ENS_WS_NEOLITH)
    {
      GSocket *socket = g_object_get_data (G_OBJECT (msg), WS_SOCKET_KEY);
      c->socket = socket ? g_object_ref (socket) : NULL;
      ens_ws_neolith_open (c);
    }
  else if (c->kind == ENS_WS_RHETOR)
    ens_ws_watch_session (c, socket_id);
}

/* ------------------------------------------------------------ the handshake */

static gboolean
token_matches (const char *want, const char *got)
{
  gsize n = strlen (want), m = got ? strlen (got) : 0;
  guint diff = 0;

  if (got == NULL)
    return FALSE;
  /* Constant time over the token: no early exit on the first difference. */
  for (gsize i = 0; i < n; i++)
    diff |= (guint) (want[i] ^ (i < m ? got[i] : 0));
  return diff == 0 && n == m;
}

static void
refuse (SoupServerMessage *msg, guint status, const char *code, const char *message)
{
  g_autofree char *body = NULL;
  g_autofree char *escaped = g_strescape (message, NULL);

  body = g_strdup_printf ("{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":{}}}", code, escaped);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

/* Runs before libsoup answers the handshake: a status set here refuses it. */
static void
on_handshake (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  EnsWs *ws = data;
  const char *socket_id = rhetor_socket_id (path);
  g_autoptr (GError) peer_error = NULL;

  (void) server;
  if (ws->neolith && !g_str_has_prefix (path, "/ws") &&
      soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Upgrade") == NULL)
    {
      /* The orchestrator-daemon answers plain GET /health on its port, and
       * 404 to anything else that is not a WebSocket. */
      if (strcmp (path, "/health") == 0)
        {
          g_autofree char *now = ens_ws_iso_now ();
          g_autofree char *body = g_strdup_printf ("{\"status\":\"healthy\",\"timestamp\":\"%s\"}", now);
          soup_server_message_set_status (msg, 200, NULL);
          soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
        }
      else
        {
          soup_server_message_set_status (msg, 404, NULL);
          soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "Not Found", 9);
        }
      return;
    }
  if (ws->token)
    {
      const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
      const char *given = auth && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0 ? auth + 7
                                                                                : query ? g_hash_table_lookup (query, "token")
                                                                                        : NULL;
      if (!token_matches (ws->token, given))
        {
          ws->refused++;
          soup_message_headers_replace (soup_server_message_get_response_headers (msg), "WWW-Authenticate",
                                        "Bearer realm=\"ensemble\"");
          refuse (msg, 401, "UNAUTHORIZED", "a valid bearer token is required (Authorization header or ?token=)");
          return;
        }
    }
  else if (!ens_listener_peer_is_trusted (msg, &peer_error))
    {
      /* No token: loopback only, and only the daemon's own user and root. */
      g_autofree char *why = g_strdup_printf ("without http-token-file only the daemon's own user and root are "
                                              "served; %s", peer_error->message);
      ws->refused++;
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "WWW-Authenticate",
                                    "Bearer realm=\"ensemble\"");
      refuse (msg, 401, "UNAUTHORIZED", why);
      return;
    }
  if (g_str_has_prefix (path, "/ws") && strcmp (path, "/ws") != 0 && strcmp (path, "/ws/") != 0 && socket_id == NULL)
    {
      ws->refused++;
      refuse (msg, 404, "NOT_FOUND", "WebSocket paths: /ws (native protocol) and /ws/socket/{socket_id}");
      return;
    }
  if (socket_id)
    {
      g_autoptr (JsonNode) params = NULL;
      EnsMessage *answer;

      if (socket_id[0] == '\0' || strchr (socket_id, '/'))
        {
          ws->refused++;
          refuse (msg, 404, "SESSION_NOT_FOUND", "no AI socket with that id (POST /api/ai/socket/create makes one)");
          return;
        }
      params = ens_ws_session_params (socket_id, NULL);
      answer = ens_ws_probe (ws, "sessions.status", params);
      if (answer && answer->kind == ENS_MESSAGE_ERROR)
        {
          ws->refused++;
          refuse (msg, 404, "SESSION_NOT_FOUND", "no AI socket with that id (POST /api/ai/socket/create makes one)");
        }
      if (answer)
        ws->host->message_unref (answer);
      return;
    }
  if (ws->neolith && !g_str_has_prefix (path, "/ws"))
    {
      /* A Neolith connection: the greeting goes with the handshake's
       * answer, in one piece (see cork()). */
      GSocket *socket = ens_listener_socket (msg);
      if (socket && g_socket_set_option (socket, IPPROTO_TCP, TCP_CORK, 1, NULL))
        g_object_set_data_full (G_OBJECT (msg), WS_SOCKET_KEY, g_object_ref (socket), g_object_unref);
    }
}

/* ------------------------------------------------------------ attach */

static void
ws_free (EnsWs *ws)
{
  GHashTableIter iter;
  gpointer key;

  if (ws->status_source)
    g_source_remove (ws->status_source);
  /* Tell the peers, then let the clients go (the core cancels their work). */
  g_hash_table_iter_init (&iter, ws->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    conn_close (key, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "daemon shutting down");
  g_hash_table_unref (ws->conns);
  g_free (ws->token);
  g_free (ws);
}

EnsWs *
ens_ws_attach_full (SoupServer *server, const EnsHost *host, EnsPlugin *self, const char *token, gboolean neolith)
{
  EnsWs *ws = g_new0 (EnsWs, 1);

  the_host = host;
  ens_dialect_init (host);
  ws->host = host;
  ws->self = self;
  ws->server = server;
  ws->token = token && token[0] ? g_strdup (token) : NULL;
  ws->neolith = neolith;
  ws->max_message = ens_host_config_uint (host, self, "ws-max-message-bytes", 1048576);
  ws->status_interval_ms = ens_host_config_uint (host, self, "ws-status-interval-ms", 0);
  ws->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) conn_free, NULL);
  g_object_set_data_full (G_OBJECT (server), WS_DATA_KEY, ws, (GDestroyNotify) ws_free);

  /* Compression costs more CPU per frame than JSON events save on loopback. */
  soup_server_remove_websocket_extension (server, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  soup_server_add_handler (server, "/ws", on_handshake, ws, NULL);
  soup_server_add_websocket_handler (server, "/ws", NULL, NULL, on_websocket, ws, NULL);
  if (neolith)
    {
      soup_server_add_handler (server, NULL, on_handshake, ws, NULL);
      soup_server_add_websocket_handler (server, NULL, NULL, NULL, on_websocket, ws, NULL);
      if (ws->status_interval_ms > 0)
        ws->status_source = g_timeout_add (ws->status_interval_ms, ens_ws_neolith_status_tick, ws);
    }
  return ws;
}

void
ens_ws_attach (SoupServer *server, const EnsHost *host, EnsPlugin *self, const char *token)
{
  ens_ws_attach_full (server, host, self, token, FALSE);
}

void
ens_ws_detach (SoupServer *server)
{
  EnsWs *ws = g_object_get_data (G_OBJECT (server), WS_DATA_KEY);

  if (ws == NULL)
    return;
  soup_server_remove_handler (server, "/ws");
  if (ws->neolith)
    soup_server_remove_handler (server, NULL);
  g_object_set_data (G_OBJECT (server), WS_DATA_KEY, NULL); /* ws_free */
}

JsonNode *
ens_ws_describe (EnsWs *ws)
{
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);

  json_object_set_int_member (obj, "connections", g_hash_table_size (ws->conns));
  json_object_set_int_member (obj, "accepted", ws->accepted);
  json_object_set_int_member (obj, "refused", ws->refused);
  json_object_set_int_member (obj, "messages_in", ws->messages_in);
  json_object_set_int_member (obj, "messages_out", ws->messages_out);
  json_object_set_int_member (obj, "events_dropped", ws->dropped);
  json_object_set_int_member (obj, "max_message_bytes", ws->max_message);
  return node;
}
