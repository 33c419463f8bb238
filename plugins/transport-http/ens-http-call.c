/* ens-http-call.c — one HTTP request in flight (ens-http.h's EnsHttpCall),
 * on libsoup or on a connection of our own (ens-http-conn.c): its answer,
 * its client in the core, its SSE stream, its end. */
#include "ens-http-private.h"
#include "ens-http-access-log.h"
#include "ens-host-config.h"

#include <string.h>

static const EnsClientSink call_sink;

/* ------------------------------------------------------------ accessors */

const EnsHost *ens_http_host (EnsHttpCall *call) { return call->http->host; }
EnsPlugin *ens_http_self (EnsHttpCall *call) { return call->http->self; }
const EnsHttpRoute *ens_http_route (EnsHttpCall *call) { return call->route; }
SoupServerMessage *ens_http_message (EnsHttpCall *call) { return call->msg; }
const char *ens_http_base_url (EnsHttpCall *call) { return call->http->base_url; }
EnsHttp *ens_http_instance (EnsHttpCall *call) { return call->http; }
const GPtrArray *ens_http_routes (EnsHttp *http) { return http->routes; }
gboolean ens_http_token_required (EnsHttp *http) { return http->token != NULL; }

const char *
ens_http_param (EnsHttpCall *call, const char *name)
{
  return call->params ? g_hash_table_lookup (call->params, name) : NULL;
}

const char *
ens_http_query (EnsHttpCall *call, const char *name)
{
  return call->query ? g_hash_table_lookup (call->query, name) : NULL;
}

/* ------------------------------------------------------------ answering */

static void
unpause (EnsHttpCall *call)
{
  if (call->paused && call->msg)
    {
      call->paused = FALSE;
      soup_server_message_unpause (call->msg);
    }
}

void
ens_http_pause (EnsHttpCall *call)
{
  if (!call->paused && !call->answered && !call->gone && call->msg)
    {
      call->paused = TRUE;
      soup_server_message_pause (call->msg);
    }
}

EnsHttpMcp *
ens_http_mcp (EnsHttp *http)
{
  return http->mcp;
}

static void
cors_headers (EnsHttpCall *call)
{
  SoupMessageHeaders *req;
  SoupMessageHeaders *resp;
  const char *origin;

  if (call->msg == NULL)
    return; /* an own connection serves no request with an Origin */
  req = soup_server_message_get_request_headers (call->msg);
  resp = soup_server_message_get_response_headers (call->msg);
  origin = soup_message_headers_get_one (req, "Origin");

  if (origin && call->http->cors_origins && g_strv_contains ((const char *const *) call->http->cors_origins, origin))
    {
      soup_message_headers_replace (resp, "Access-Control-Allow-Origin", origin);
      soup_message_headers_replace (resp, "Vary", "Origin");
    }
}

/* The answer's status and headers; FALSE when the call was answered
 * already (or its client is gone). */
static gboolean
answer_begin (EnsHttpCall *call, guint status)
{
  if (call->answered || call->gone)
    return FALSE;
  call->answered = TRUE;
  call->status = status;
  cors_headers (call);
  if (call->msg)
    soup_server_message_set_status (call->msg, status, NULL);
  return TRUE;
}

void
ens_http_reply_text (EnsHttpCall *call, guint status, const char *content_type, const char *text)
{
  if (!answer_begin (call, status))
    return;
  if (call->conn)
    ens_http_conn_answer (call, content_type, text, strlen (text));
  else
    soup_server_message_set_response (call->msg, content_type, SOUP_MEMORY_COPY, text, strlen (text));
  unpause (call);
}

void
ens_http_reply_bytes (EnsHttpCall *call, guint status, const char *content_type, GBytes *body)
{
  if (!answer_begin (call, status))
    return;
  if (call->conn)
    {
      gsize len;
      const char *data = g_bytes_get_data (body, &len);
      ens_http_conn_answer (call, content_type, data, len);
      return;
    }
  soup_message_headers_replace (soup_server_message_get_response_headers (call->msg), "Content-Type", content_type);
  soup_message_body_append_bytes (soup_server_message_get_response_body (call->msg), body);
  unpause (call);
}

void
ens_http_reply_json (EnsHttpCall *call, guint status, JsonNode *body)
{
  char *text;

  if (!answer_begin (call, status))
    return;
  text = call->http->host->json_to_string (body);
  if (call->conn)
    {
      ens_http_conn_answer (call, "application/json", text, strlen (text));
      g_free (text);
      return;
    }
  soup_server_message_set_response (call->msg, "application/json", SOUP_MEMORY_TAKE, text, strlen (text));
  unpause (call);
}

const char *
ens_http_request_body (EnsHttpCall *call, gsize *len)
{
  SoupMessageBody *body;

  if (call->conn)
    {
      *len = call->request_len;
      return call->request_body;
    }
  body = soup_server_message_get_request_body (call->msg);
  *len = body->length;
  return body->data;
}

JsonObject *
ens_http_body (EnsHttpCall *call)
{
  if (call->body == NULL)
    {
      gsize len;
      const char *data = ens_http_request_body (call, &len);
      call->body = ens_http_parse_body (call, data, len);
    }
  return call->body ? json_node_get_object (call->body) : NULL;
}

/* State that outlives the handler is tied to the SoupServerMessage, which
 * outlives the call (and its client).  On an own connection nothing reaches
 * the call after its end (its client is closed first): the call keeps it. */
void
ens_http_attach (EnsHttpCall *call, const char *key, gpointer state, GDestroyNotify free_func)
{
  if (call->conn)
    {
      g_datalist_set_data_full (&call->attached, key, state, free_func);
      return;
    }
  g_object_set_data_full (G_OBJECT (call->msg), key, state, free_func);
}

/* ------------------------------------------------------------ kept answers */

typedef struct {
  GBytes *body;
  gint64 at_us;
  guint64 generation;
} CachedAnswer;

void
ens_http_cached_answer_free (gpointer data)
{
  CachedAnswer *answer = data;

  g_bytes_unref (answer->body);
  g_free (answer);
}

GBytes *
ens_http_cache_get (EnsHttpCall *call, const char *key, gint64 max_age_us)
{
  CachedAnswer *answer = g_hash_table_lookup (call->http->cache, key);

  if (answer == NULL || answer->generation != call->http->generation ||
      g_get_monotonic_time () - answer->at_us >= max_age_us)
    return NULL;
  return answer->body;
}

void
ens_http_cache_put (EnsHttpCall *call, const char *key, GBytes *body)
{
  CachedAnswer *answer = g_new (CachedAnswer, 1);

  answer->body = g_bytes_ref (body);
  answer->at_us = g_get_monotonic_time ();
  answer->generation = call->http->generation;
  g_hash_table_replace (call->http->cache, g_strdup (key), answer);
}

/* ------------------------------------------------------------ the core */

static EnsClient *
call_client (EnsHttpCall *call)
{
  if (call->client == NULL)
    {
      GSocketAddress *remote = call->msg ? soup_server_message_get_remote_address (call->msg) : NULL;
      g_autofree char *peer = call->conn ? ens_http_conn_peer (call) : NULL;
      gboolean admin = call->http->token != NULL; /* authenticated by token */

      if (remote && G_IS_INET_SOCKET_ADDRESS (remote))
        {
          g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
          peer = g_strdup_printf ("http:%s:%u", ip, g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)));
        }
      call->client = call->http->host->client_new (call->http->self, &call_sink, call,
                                                   (admin ? ENS_CLIENT_FLAG_ADMIN : 0) |
                                                     (call->read_text ? ENS_CLIENT_FLAG_LAZY_DATA : 0),
                                                   peer ? peer : "http");
    }
  return call->client;
}

const char *
ens_http_client_id (EnsHttpCall *call)
{
  return call->http->host->client_id (call_client (call));
}

void
ens_http_core (EnsHttpCall *call, const char *agent, const char *action, JsonNode *data, guint32 timeout_ms,
               EnsHttpAnswerFunc func, gpointer user_data)
{
  const EnsHost *host = call->http->host;
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  EnsClient *client = call_client (call);
  EnsMessage *msg;

  if (strcmp (action, "health") != 0)
    call->http->generation++; /* answers kept so far may be out of date */
  g_free (call->pending_id);
  call->pending_id = g_strdup_printf ("h%" G_GUINT64_FORMAT, ++call->next_id);
  call->answer_func = func;
  call->answer_data = user_data;
  init.id = call->pending_id;
  init.action = action;
  init.agent = agent;
  init.data = data;
  init.timeout_ms = timeout_ms;
  msg = host->message_new (&init);
  host->client_submit (client, msg); /* the answer may come before this returns */
  host->message_unref (msg);
  /* Held open until answered; an answer that came already is written as
   * soon as the handler returns (a pause would cost the server one more
   * turn of the main loop to resume). */
  ens_http_pause (call);
}

void
ens_http_read_text (EnsHttpCall *call)
{
  g_return_if_fail (call->client == NULL);
  call->read_text = TRUE;
}

void
ens_http_on_event (EnsHttpCall *call, EnsHttpEventFunc func, gpointer user_data)
{
  call_client (call);
  call->event_func = func;
  call->event_data = user_data;
}

void
ens_http_on_disconnect (EnsHttpCall *call, void (*func) (EnsHttpCall *call, gpointer data), gpointer data)
{
  call->disconnect_func = func;
  call->disconnect_data = data;
}

static void
sink_deliver (gpointer sink_data, EnsMessage *msg)
{
  EnsHttpCall *call = sink_data;

  if (msg->kind == ENS_MESSAGE_REQUEST || call->gone)
    return; /* an HTTP request is never an agent */
  call->depth++;
  if (msg->kind == ENS_MESSAGE_EVENT)
    {
      if (call->event_func)
        call->event_func (call, msg, call->event_data);
    }
  else if (call->pending_id && g_strcmp0 (msg->id, call->pending_id) == 0 && call->answer_func)
    {
      EnsHttpAnswerFunc func = call->answer_func;
      call->answer_func = NULL;
      func (call, msg, call->answer_data);
    }
  call->depth--;
  if (call->conn)
    ens_http_conn_settle (call);
}

static void
sink_disconnect (gpointer sink_data, const char *reason)
{
  EnsHttpCall *call = sink_data;

  call->depth++;
  if (call->sse)
    ens_http_sse_end (call);
  else
    ens_http_reply_error (call, 503, "SHUTTING_DOWN", reason ? reason : "the daemon is stopping", NULL);
  call->depth--;
  if (call->conn)
    ens_http_conn_settle (call);
}

static const EnsClientSink call_sink = {
  .struct_size = sizeof (EnsClientSink),
  .deliver = sink_deliver,
  .disconnect = sink_disconnect,
};

/* ------------------------------------------------------------ SSE */

static gboolean
sse_keepalive (gpointer data)
{
  EnsHttpCall *call = data;
  static const char comment[] = ": keepalive\n\n";
  g_autoptr (GBytes) frame = NULL;

  if (!call->sse || call->gone)
    {
      call->keepalive_id = 0;
      return G_SOURCE_REMOVE;
    }
  frame = g_bytes_new_static (comment, sizeof comment - 1);
  ens_http_sse_stream_push (call->stream, frame, FALSE);
  return G_SOURCE_CONTINUE;
}

void
ens_http_sse_begin (EnsHttpCall *call)
{
  const EnsHost *host = call->http->host;
  EnsPlugin *self = call->http->self;
  SoupMessageHeaders *h;

  /* An own connection takes no request that may stream (ens-http-conn.c). */
  g_return_if_fail (call->msg != NULL);
  h = soup_server_message_get_response_headers (call->msg);
  call->sse = TRUE;
  call->answered = TRUE;
  call->status = 200;
  cors_headers (call);
  soup_server_message_set_status (call->msg, 200, NULL);
  soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
  soup_message_headers_set_content_type (h, "text/event-stream", NULL);
  soup_message_headers_replace (h, "Cache-Control", "no-cache");
  soup_message_headers_replace (h, "X-Accel-Buffering", "no");
  /* Limits read per stream: a changed setting applies to the next one. */
  call->stream = ens_http_sse_stream_new (call->msg, ens_host_config_uint (host, self, "max-queue-messages", 4096),
                                          ens_host_config_uint (host, self, "max-queue-bytes", 4194304));
  call->keepalive_id = g_timeout_add_seconds (15, sse_keepalive, call);
  if (!call->paused)
    {
      call->paused = TRUE;
      soup_server_message_pause (call->msg);
    }
}

void
ens_http_sse_send (EnsHttpCall *call, const char *event, const char *data)
{
  GString *chunk;
  g_autoptr (GBytes) frame = NULL;

  if (!call->sse || call->gone)
    return;
  chunk = g_string_new (NULL);
  if (event)
    g_string_append_printf (chunk, "event: %s\n", event);
  g_string_append_printf (chunk, "data: %s\n\n", data);
  frame = g_string_free_to_bytes (chunk);
  ens_http_sse_stream_push (call->stream, frame, FALSE);
}

void
ens_http_sse_comment (EnsHttpCall *call, const char *text)
{
  g_autoptr (GBytes) frame = NULL;

  if (!call->sse || call->gone)
    return;
  frame = g_bytes_new_take (g_strdup_printf (": %s\n\n", text), strlen (text) + 4);
  ens_http_sse_stream_push (call->stream, frame, FALSE);
}

void
ens_http_sse_send_event (EnsHttpCall *call, GBytes *frame)
{
  if (!call->sse || call->gone)
    return;
  call->http->events_dropped += ens_http_sse_stream_push (call->stream, frame, TRUE);
}

void
ens_http_sse_on_dropped (EnsHttpCall *call, EnsHttpSseNoticeFunc notice, gpointer data)
{
  if (call->stream)
    ens_http_sse_stream_set_notice (call->stream, notice, data);
}

void
ens_http_sse_end (EnsHttpCall *call)
{
  if (!call->sse || call->gone)
    return;
  call->sse = FALSE;
  ens_http_sse_stream_end (call->stream);
}

/* ------------------------------------------------------------ lifecycle */

EnsHttpCall *
ens_http_call_new (EnsHttp *http, SoupServerMessage *msg, EnsHttpConn *conn)
{
  EnsHttpCall *call = g_new0 (EnsHttpCall, 1);

  call->http = http;
  call->msg = msg ? g_object_ref (msg) : NULL;
  call->conn = conn;
  call->started_us = g_get_monotonic_time ();
  g_hash_table_insert (http->calls, msg ? (gpointer) msg : call, call); /* until ens_http_call_end */
  return call;
}

void
ens_http_call_free (EnsHttpCall *call)
{
  if (call->keepalive_id)
    g_source_remove (call->keepalive_id);
  if (call->client)
    call->http->host->client_close (call->client); /* cancels what it started */
  g_clear_pointer (&call->stream, ens_http_sse_stream_free);
  g_clear_pointer (&call->params, g_hash_table_unref);
  g_clear_pointer (&call->query, g_hash_table_unref);
  g_clear_pointer (&call->body, json_node_unref);
  g_datalist_clear (&call->attached);
  g_free (call->request_body);
  g_free (call->request_id);
  g_free (call->pending_id);
  g_clear_object (&call->msg);
  g_free (call);
}

void
ens_http_call_end (EnsHttpCall *call)
{
  gboolean early = !call->answered || call->sse;

  if (call->gone)
    return;
  call->gone = TRUE;
  ens_http_record_stats (call);
  if (early && call->disconnect_func)
    call->disconnect_func (call, call->disconnect_data);
  g_hash_table_remove (call->http->calls, call->msg ? (gpointer) call->msg : call); /* frees */
}
