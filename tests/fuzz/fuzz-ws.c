/* fuzz-ws.c — WebSocket messages of the Neolith and Rhetor protocols
 * (plugins/common/ws), on a real libsoup WebSocket connection over a socket
 * pair whose other end this target reads.  (The native protocol at /ws is
 * one ens_message_parse_native per frame: fuzz-message.)
 *
 * Input: PROTOCOL ANSWER TEXT — Neolith ({type, payload}) when the first
 * byte is even, else a Rhetor socket ({"type":"write","content"}); how the
 * core answers the verbs the message asks (an error among a few codes, or a
 * success in the core's shapes); the text frame (made valid UTF-8, as
 * libsoup only hands those over).  Events of the session then arrive with
 * the text as their data: anyone may publish on session.<id>.*.
 * Checks: every frame written to the peer is a text frame of JSON the
 * core's parser accepts (or a close frame); every request to the core has
 * an action; no critical, no leak. */
#include "ens-fuzz.h"
#include "ens-ws-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static EnsWs *ws; /* attached to a server that never listens: the library's own state */
static SoupWebsocketConnection *wsc;
static int peer = -1;
static GByteArray *pending_bytes; /* what the peer read, not yet a whole frame */

static void
open_connection (void)
{
  int sv[2];
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketConnection) stream = NULL;
  g_autoptr (GUri) uri = g_uri_parse ("ws://127.0.0.1/fuzz", G_URI_FLAGS_NONE, NULL);

  if (wsc)
    {
      g_clear_object (&wsc);
      close (peer);
    }
  ENS_FUZZ_CHECK (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s", g_strerror (errno));
  socket = g_socket_new_from_fd (sv[0], NULL);
  stream = g_socket_connection_factory_create_connection (socket);
  wsc = soup_websocket_connection_new (G_IO_STREAM (stream), uri, SOUP_WEBSOCKET_CONNECTION_SERVER, NULL, NULL, NULL);
  peer = sv[1];
  fcntl (peer, F_SETFL, O_NONBLOCK);
  g_byte_array_set_size (pending_bytes, 0);
}

/* Reads what the connection wrote and checks each whole frame. */
static void
drain (void)
{
  guint8 buf[65536];
  ssize_t n;

  while (g_main_context_iteration (NULL, FALSE))
    ;
  while ((n = read (peer, buf, sizeof buf)) > 0)
    g_byte_array_append (pending_bytes, buf, (guint) n);
  for (;;)
    {
      const guint8 *p = pending_bytes->data;
      gsize have = pending_bytes->len, head = 2;
      guint64 len;
      guint opcode;

      if (have < 2)
        return;
      opcode = p[0] & 0x0f;
      len = p[1] & 0x7f;
      ENS_FUZZ_CHECK ((p[1] & 0x80) == 0, "a server frame that is masked");
      if (len == 126)
        {
          if (have < 4)
            return;
          len = (guint64) p[2] << 8 | p[3];
          head = 4;
        }
      else if (len == 127)
        {
          if (have < 10)
            return;
          len = 0;
          for (int i = 2; i < 10; i++)
            len = len << 8 | p[i];
          head = 10;
        }
      if (have < head + len)
        return;
      ENS_FUZZ_CHECK (opcode == 1 || opcode == 8 || opcode == 9 || opcode == 10, "frame opcode %u", opcode);
      if (opcode == 1)
        {
          g_autoptr (GError) error = NULL;
          g_autoptr (JsonNode) node = ens_json_parse ((const char *) p + head, (gsize) len, &error);
          ENS_FUZZ_CHECK (node != NULL, "a frame that is not JSON (%s): %.*s", error->message, (int) MIN (len, 300),
                          (const char *) p + head);
        }
      g_byte_array_remove_range (pending_bytes, 0, (guint) (head + len));
    }
}

static const char *const answer_codes[] = {
  ENS_ERR_AGENT_NOT_FOUND, ENS_ERR_INVALID_PARAMETERS, ENS_ERR_TIMEOUT, ENS_ERR_INTERNAL, "SESSION_NOT_FOUND",
  "SESSION_BUSY",
};

/* The core's answer to @request, in its shapes when it succeeds. */
static EnsMessage *
answer_for (EnsMessage *request, guint selector)
{
  JsonObject *obj, *session;
  g_autoptr (JsonNode) data = NULL;

  if (selector % 4 != 3)
    return ens_message_new_error (request, answer_codes[selector % G_N_ELEMENTS (answer_codes)], "the core says no",
                                  request->data);
  data = ens_node_new_object (&obj);
  session = json_object_new ();
  json_object_set_string_member (session, "session_id", "fz");
  json_object_set_string_member (session, "status", "idle");
  json_object_set_string_member (obj, "session_id", "fz");
  json_object_set_string_member (obj, "task_id", "task_3");
  json_object_set_string_member (obj, "status", "healthy");
  json_object_set_object_member (obj, "session", session);
  json_object_set_array_member (obj, "sessions", json_array_new ());
  json_object_set_array_member (obj, "plugins", json_array_new ());
  return ens_message_new_reply (request, data);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  ws = ens_ws_attach_full (soup_server_new (NULL, NULL), ens_fuzz_host (), NULL, NULL, TRUE);
  pending_bytes = g_byte_array_new ();
  open_connection ();
  return 0;
}

size_t
LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
  return ens_fuzz_mutate_json (data, size, max_size, seed, 2);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const EnsHost *host = ens_fuzz_host ();
  g_autofree char *raw = NULL, *text = NULL;
  EnsWsConn *c;
  guint answer, rounds = 0;

  if (size < 2)
    return 0;
  g_ptr_array_unref (ens_fuzz_take_submitted ());
  if (soup_websocket_connection_get_state (wsc) != SOUP_WEBSOCKET_STATE_OPEN)
    open_connection ();
  answer = data[1];
  raw = g_strndup ((const char *) data + 2, size - 2);
  text = g_utf8_make_valid (raw, -1);

  c = g_new0 (EnsWsConn, 1);
  c->ws = ws;
  c->conn = wsc;
  c->kind = data[0] % 2 ? ENS_WS_RHETOR : ENS_WS_NEOLITH;
  c->socket_id = c->kind == ENS_WS_RHETOR ? g_strdup ("fz") : NULL;
  c->client = ens_fuzz_host ()->client_new (NULL, NULL, NULL, 0, "fuzz");
  c->out = ens_outbox_new (4096, 4 * 1024 * 1024);
  c->watched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  c->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) ens_ws_pending_free);
  if (c->kind == ENS_WS_NEOLITH)
    ens_ws_neolith_open (c); /* the greeting; its subscriptions */

  if (c->kind == ENS_WS_RHETOR)
    ens_ws_rhetor_message (c, text, strlen (text));
  else
    ens_ws_neolith_message (c, text, strlen (text));

  /* The core answers what was asked, as its sink would hand it over. */
  for (;;)
    {
      g_autoptr (GPtrArray) asked = ens_fuzz_take_submitted ();
      if (asked->len == 0 || rounds++ >= 8)
        break;
      for (guint i = 0; i < asked->len; i++)
        {
          EnsMessage *request = asked->pdata[i];
          EnsWsPending *p;
          gpointer key = NULL;
          EnsMessage *reply;

          ENS_FUZZ_CHECK (request->kind == ENS_MESSAGE_REQUEST && request->action && request->action[0],
                          "a request without an action");
          ens_fuzz_check_lines (host->message_encode (request, host->encode_native));
          p = request->id ? g_hash_table_lookup (c->pending, request->id) : NULL;
          if (p == NULL)
            continue;
          g_hash_table_steal_extended (c->pending, request->id, &key, NULL);
          g_free (key);
          reply = answer_for (request, answer);
          ens_ws_neolith_answer (c, p, reply);
          ens_ws_pending_free (p);
          host->message_unref (reply);
          answer >>= 2;
        }
    }

  /* Events of the session: the text as their data and, for Neolith, the
   * same object naming the session "fz" and a task after the one its
   * execute_task answer named (so a connection watching it passes it on). */
  {
    g_autoptr (JsonNode) payload = ens_json_parse (text, strlen (text), NULL);
    g_autoptr (JsonNode) shaped = payload && JSON_NODE_HOLDS_OBJECT (payload) ? json_node_copy (payload) : NULL;
    static const char *const topics[] = { "session.fz.task_completed", "session.fz.stream_chunk" };

    if (shaped)
      {
        JsonObject *o = json_node_get_object (shaped);
        if (!json_object_has_member (o, "type"))
          json_object_set_string_member (o, "type", "stream_chunk");
        json_object_set_string_member (o, "sessionId", "fz");
        json_object_set_string_member (o, "taskId", "task_9");
      }
    for (guint i = 0; i < 2 * G_N_ELEMENTS (topics); i++)
      {
        EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
        EnsMessage *event;

        init.topic = topics[i % G_N_ELEMENTS (topics)];
        init.from = "c1";
        init.data = i < G_N_ELEMENTS (topics) ? payload : shaped;
        event = host->message_new (&init);
        if (c->kind == ENS_WS_NEOLITH)
          ens_ws_neolith_event (c, event);
        else
          ens_ws_rhetor_event (c, event);
        host->message_unref (event);
      }
  }
  drain ();

  c->gone = TRUE;
  g_clear_pointer (&c->neolith, ens_ws_neolith_free);
  ens_outbox_free (c->out);
  g_hash_table_unref (c->watched);
  g_hash_table_unref (c->pending);
  g_free (c->socket_id);
  g_free (c);
  return 0;
}
