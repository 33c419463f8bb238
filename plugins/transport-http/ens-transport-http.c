/* ens-transport-http.c — HTTP on libsoup-3: every route of every dialect
 * comes from the route tables (ens-http.h), which also generate
 * /openapi.json and /docs (ens-http-openapi.c).
 *
 * Security: bound to loopback by default; with http-token-file set, every
 * route but the public ones (/health) needs "Authorization: Bearer TOKEN",
 * and binding to any other address refuses to start without a token.
 * Without a token, those routes serve only the daemon's own user and root,
 * as its Unix sockets do (the kernel names the user of each loopback
 * connection: plugins/common/listener, plugins/common/peer).  CORS
 * headers only for the origins in http-cors-origins.  Bodies over
 * http-max-body-bytes get 413 before they are read; a client that takes
 * longer than http-request-timeout-ms to send its request is cut off. */
#include "ens-http.h"
#include "ens-http-sse.h"
#include "ens-http-access-log.h"
#include "ens-http-timers.h"
#include "ens-listener.h"
#include "ens-ws.h"
#include "ens-host-config.h"
#include "ens-json-util.h"

#include <string.h>

#define N_BUCKETS 12
static const double latency_buckets[N_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,   0.1,   0.25,   0.5,   1.0,  5.0 };

typedef struct {
  char *key; /* "GET /api/agents" */
  guint64 count, errors;
  guint64 buckets[N_BUCKETS];
  double sum;
} RouteStats;

struct _EnsHttp {
  const EnsHost *host;
  EnsPlugin *self;
  SoupServer *server;
  EnsListener *listener;
  char *address;
  guint port;
  char *base_url;
  char *token;
  char **cors_origins;
  guint max_body;
  guint request_timeout_ms;
  GPtrArray *routes;       /* const EnsHttpRoute*, all tables */
  GHashTable *by_first;    /* a path's first segment -> GPtrArray of the routes that start with it, in order */
  GHashTable *stats;       /* const EnsHttpRoute* (NULL: unmatched) -> RouteStats */
  GHashTable *calls;       /* SoupServerMessage* -> its live EnsHttpCall* */
  EnsHttpTimers *timers;   /* one a request, until it is read */
  EnsHttpMcp *mcp;         /* sessions of /mcp */
  GHashTable *cache;       /* key -> CachedAnswer */
  guint64 generation;      /* requests that reached the core (health aside) */
  guint64 requests, unauthorized, not_found, too_large, timed_out, events_dropped;
};

struct _EnsHttpCall {
  EnsHttp *http;
  SoupServerMessage *msg;
  const EnsHttpRoute *route;
  GHashTable *params;
  GHashTable *query;
  JsonNode *body;
  EnsClient *client;
  char *pending_id;
  EnsHttpAnswerFunc answer_func;
  gpointer answer_data;
  EnsHttpEventFunc event_func;
  gpointer event_data;
  void (*disconnect_func) (EnsHttpCall *call, gpointer data);
  gpointer disconnect_data;
  guint64 next_id;
  gint64 started_us;
  guint status;
  EnsHttpSse *stream; /* SSE */
  guint keepalive_id; /* SSE: a comment now and then, to notice a vanished client */
  gboolean answered, sse, paused, gone;
};

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
  if (call->paused)
    {
      call->paused = FALSE;
      soup_server_message_unpause (call->msg);
    }
}

void
ens_http_pause (EnsHttpCall *call)
{
  if (!call->paused && !call->answered && !call->gone)
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
  SoupMessageHeaders *req = soup_server_message_get_request_headers (call->msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (call->msg);
  const char *origin = soup_message_headers_get_one (req, "Origin");

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
  soup_server_message_set_status (call->msg, status, NULL);
  return TRUE;
}

void
ens_http_reply_text (EnsHttpCall *call, guint status, const char *content_type, const char *text)
{
  if (!answer_begin (call, status))
    return;
  soup_server_message_set_response (call->msg, content_type, SOUP_MEMORY_COPY, text, strlen (text));
  unpause (call);
}

void
ens_http_reply_bytes (EnsHttpCall *call, guint status, const char *content_type, GBytes *body)
{
  if (!answer_begin (call, status))
    return;
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
  soup_server_message_set_response (call->msg, "application/json", SOUP_MEMORY_TAKE, text, strlen (text));
  unpause (call);
}

const char *
ens_http_request_body (EnsHttpCall *call, gsize *len)
{
  SoupMessageBody *body = soup_server_message_get_request_body (call->msg);

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
 * outlives the call (and its client). */
void
ens_http_attach (EnsHttpCall *call, const char *key, gpointer state, GDestroyNotify free_func)
{
  g_object_set_data_full (G_OBJECT (call->msg), key, state, free_func);
}

/* ------------------------------------------------------------ kept answers */

typedef struct {
  GBytes *body;
  gint64 at_us;
  guint64 generation;
} CachedAnswer;

static void
cached_answer_free (CachedAnswer *answer)
{
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
      GSocketAddress *remote = soup_server_message_get_remote_address (call->msg);
      g_autofree char *peer = NULL;
      gboolean admin = call->http->token != NULL; /* authenticated by token */

      if (remote && G_IS_INET_SOCKET_ADDRESS (remote))
        {
          g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
          peer = g_strdup_printf ("http:%s:%u", ip, g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)));
        }
      call->client = call->http->host->client_new (call->http->self, &call_sink, call,
                                                   admin ? ENS_CLIENT_FLAG_ADMIN : 0, peer ? peer : "http");
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

  if (msg->kind == ENS_MESSAGE_EVENT)
    {
      if (call->event_func && !call->gone)
        call->event_func (call, msg, call->event_data);
      return;
    }
  if (msg->kind == ENS_MESSAGE_REQUEST)
    return; /* an HTTP request is never an agent */
  if (call->pending_id && g_strcmp0 (msg->id, call->pending_id) == 0 && call->answer_func && !call->gone)
    {
      EnsHttpAnswerFunc func = call->answer_func;
      call->answer_func = NULL;
      func (call, msg, call->answer_data);
    }
}

static void
sink_disconnect (gpointer sink_data, const char *reason)
{
  EnsHttpCall *call = sink_data;

  if (call->sse)
    ens_http_sse_end (call);
  else
    ens_http_reply_error (call, 503, "SHUTTING_DOWN", reason ? reason : "the daemon is stopping", NULL);
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
  SoupMessageHeaders *h = soup_server_message_get_response_headers (call->msg);

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

static void
record_stats (EnsHttpCall *call)
{
  RouteStats *st = g_hash_table_lookup (call->http->stats, call->route);
  double seconds = (g_get_monotonic_time () - call->started_us) / 1e6;

  if (st == NULL)
    {
      st = g_new0 (RouteStats, 1);
      st->key = g_strdup_printf ("%s %s", call->route ? call->route->method : "-",
                                 call->route ? call->route->path : "unmatched");
      g_hash_table_insert (call->http->stats, (gpointer) call->route, st);
    }
  st->count++;
  if (call->status >= 400)
    st->errors++;
  st->sum += seconds;
  for (guint i = 0; i < N_BUCKETS; i++)
    if (seconds <= latency_buckets[i])
      st->buckets[i]++;
}

static void
call_free (EnsHttpCall *call)
{
  if (call->keepalive_id)
    g_source_remove (call->keepalive_id);
  if (call->client)
    call->http->host->client_close (call->client); /* cancels what it started */
  g_clear_pointer (&call->stream, ens_http_sse_stream_free);
  g_clear_pointer (&call->params, g_hash_table_unref);
  g_clear_pointer (&call->query, g_hash_table_unref);
  g_clear_pointer (&call->body, json_node_unref);
  g_free (call->pending_id);
  g_object_unref (call->msg);
  g_free (call);
}

/* The request ended (answered, or its client went away). */
static void
call_end (EnsHttpCall *call)
{
  gboolean early = !call->answered || call->sse;

  if (call->gone)
    return;
  call->gone = TRUE;
  record_stats (call);
  if (early && call->disconnect_func)
    call->disconnect_func (call, call->disconnect_data);
  g_hash_table_remove (call->http->calls, call->msg); /* frees */
}

/* Matches the path segments against a route's pattern, walking the
 * pattern in place (every request tries every route: nothing is allocated
 * until one matches); fills @params ({name} segments, unescaped) when
 * asked. */
static gboolean
path_matches (const EnsHttpRoute *route, char **segments, GHashTable **params)
{
  const char *p = route->path + 1;
  guint n = 0;

  if (*p != '\0')
    for (;; n++)
      {
        const char *end = strchrnul (p, '/');
        gsize len = (gsize) (end - p);

        if (segments[n] == NULL)
          return FALSE;
        if (*p != '{' && (strncmp (p, segments[n], len) != 0 || segments[n][len] != '\0'))
          return FALSE;
        if (*end == '\0')
          {
            n++;
            break;
          }
        p = end + 1;
      }
  if (segments[n] != NULL)
    return FALSE;
  if (params)
    {
      *params = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      p = route->path + 1;
      for (guint i = 0; i < n; i++)
        {
          const char *end = strchrnul (p, '/');
          if (*p == '{')
            g_hash_table_insert (*params, g_strndup (p + 1, (gsize) (end - p) - 2),
                                 g_uri_unescape_string (segments[i], NULL));
          p = *end ? end + 1 : end;
        }
    }
  return TRUE;
}

static gboolean
method_matches (const EnsHttpRoute *route, const char *method)
{
  return strcmp (route->method, method) == 0 || (strcmp (method, "HEAD") == 0 && strcmp (route->method, "GET") == 0);
}

static gboolean
token_matches (EnsHttp *http, SoupServerMessage *msg)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
  gsize want, got;
  guint diff = 0;

  if (auth == NULL || g_ascii_strncasecmp (auth, "Bearer ", 7) != 0)
    return FALSE;
  auth += 7;
  want = strlen (http->token);
  got = strlen (auth);
  /* Constant time over the token: no early exit on the first difference. */
  for (gsize i = 0; i < want; i++)
    diff |= (guint) (http->token[i] ^ (i < got ? auth[i] : 0));
  return diff == 0 && got == want;
}

/* NULL when @msg may reach a route that is not public, else why not
 * (transfer full).  With a token, the token decides.  Without one the
 * daemon listens on loopback only, and serves there what its Unix sockets
 * serve: its own user and root (the kernel names the connection's user). */
static char *
refusal (EnsHttp *http, SoupServerMessage *msg)
{
  g_autoptr (GError) error = NULL;

  if (http->token)
    return token_matches (http, msg) ? NULL : g_strdup ("a valid bearer token is required");
  if (ens_listener_peer_is_trusted (msg, &error))
    return NULL;
  return g_strdup_printf ("without http-token-file only the daemon's own user and root are served; %s",
                          error->message);
}

static void
handle (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  EnsHttp *http = user_data;
  const char *method = soup_server_message_get_method (msg);
  EnsHttpCall *call = g_new0 (EnsHttpCall, 1);
  g_auto (GStrv) segments = g_strsplit (path[0] == '/' ? path + 1 : path, "/", -1);
  gboolean path_known = FALSE;
  g_autofree char *why = NULL;
  GPtrArray *candidates;

  (void) server;
  http->requests++;
  call->http = http;
  call->msg = g_object_ref (msg);
  call->started_us = g_get_monotonic_time ();
  call->query = query ? g_hash_table_ref (query) : NULL;
  g_hash_table_insert (http->calls, msg, call); /* ends with the request (on_request_ended) */

  /* A trailing slash is the same route. */
  if (segments[0] && g_strv_length (segments) > 1 && segments[g_strv_length (segments) - 1][0] == '\0')
    {
      guint n = g_strv_length (segments);
      g_free (segments[n - 1]);
      segments[n - 1] = NULL;
    }

  candidates = g_hash_table_lookup (http->by_first, segments[0] ? segments[0] : "");
  for (guint i = 0; candidates && i < candidates->len && call->route == NULL; i++)
    {
      const EnsHttpRoute *route = g_ptr_array_index (candidates, i);
      if (!path_matches (route, segments, NULL))
        continue;
      path_known = TRUE;
      if (method_matches (route, method))
        {
          call->route = route;
          path_matches (route, segments, &call->params);
        }
    }

  if (strcmp (method, "OPTIONS") == 0)
    {
      SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
      const char *origin = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Origin");
      if (origin && http->cors_origins && g_strv_contains ((const char *const *) http->cors_origins, origin))
        {
          soup_message_headers_replace (h, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
          soup_message_headers_replace (h, "Access-Control-Allow-Headers", "Authorization, Content-Type");
          soup_message_headers_replace (h, "Access-Control-Max-Age", "600");
        }
      ens_http_reply_text (call, 204, "text/plain", "");
      return;
    }
  if (call->route == NULL)
    {
      if (path_known)
        {
          g_autofree char *text = g_strdup_printf ("%s is not allowed on %s", method, path);
          http->not_found++;
          ens_http_reply_error (call, 405, "METHOD_NOT_ALLOWED", text, NULL);
        }
      else
        {
          g_autofree char *text = g_strdup_printf ("no route %s %s (see /openapi.json)", method, path);
          http->not_found++;
          ens_http_reply_error (call, 404, "NOT_FOUND", text, NULL);
        }
      return;
    }
  if (!call->route->public && (why = refusal (http, msg)) != NULL)
    {
      http->unauthorized++;
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "WWW-Authenticate",
                                    "Bearer realm=\"ensemble\"");
      /* OpenAI's clients read their own error shape. */
      if (g_strcmp0 (call->route->tag, "openai") == 0)
        ens_http_openai_reply_error (call, 401, "authentication_error", why, "invalid_api_key");
      else
        ens_http_reply_error (call, 401, "UNAUTHORIZED", why, NULL);
      return;
    }
  call->route->handler (call);
}

/* An id a client may give its request (X-Request-Id): 1-128 characters of
 * [A-Za-z0-9._:-]. */
static gboolean
request_id_valid (const char *id)
{
  gsize n = 0;

  for (; id && id[n]; n++)
    if (!g_ascii_isalnum (id[n]) && !strchr ("._:-", id[n]))
      return FALSE;
  return n > 0 && n <= 128;
}

/* Every answer carries an x-request-id: the client's own when it sent a
 * valid one, else one made here. */
static void
set_request_id (SoupServerMessage *msg)
{
  static const char hex[] = "0123456789abcdef";
  const char *given = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "X-Request-Id");
  char made[21] = "req_";

  if (!request_id_valid (given))
    {
      guint64 r = ((guint64) g_random_int () << 32) | g_random_int ();
      for (int i = 0; i < 16; i++)
        made[4 + i] = hex[(r >> (60 - 4 * i)) & 0xf];
      made[20] = '\0';
      given = made;
    }
  /* The first response header set: nothing to replace. */
  soup_message_headers_append (soup_server_message_get_response_headers (msg), "x-request-id", given);
}

/* Early: the headers are in, the body is not.  Refuse what is too big
 * before reading it. */
static void
handle_early (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  EnsHttp *http = user_data;
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  goffset length = soup_message_headers_get_content_length (h);

  (void) server;
  (void) path;
  (void) query;
  set_request_id (msg);
  /* Answered from the headers and the connection closed: the body is
   * never read (libsoup would read all of it before answering). */
  if (soup_message_headers_get_encoding (h) == SOUP_ENCODING_CHUNKED)
    {
      /* Its size is unknown until read: ask for Content-Length instead. */
      http->too_large++;
      ens_listener_refuse (msg, 411, "{\"error\":{\"code\":\"LENGTH_REQUIRED\",\"message\":\"send the body with a "
                                     "Content-Length\",\"details\":{}}}");
      ens_http_timers_clear (http->timers, msg); /* the connection is the refusal's now */
      return;
    }
  if (length > (goffset) http->max_body)
    {
      http->too_large++;
      ens_listener_refuse (msg, 413, "{\"error\":{\"code\":\"BODY_TOO_LARGE\",\"message\":\"request body over "
                                     "http-max-body-bytes\",\"details\":{}}}");
      ens_http_timers_clear (http->timers, msg);
    }
}

static void
on_request_read (SoupServer *server, SoupServerMessage *msg, EnsHttp *http)
{
  (void) server;
  ens_http_timers_clear (http->timers, msg);
}

/* The request ended: answered (request-finished), or failed or its client
 * went away (request-aborted).  (A request cut before its headers were in
 * ends with neither: its timer finds its connection closed.) */
static void
on_request_ended (SoupServer *server, SoupServerMessage *msg, EnsHttp *http)
{
  EnsHttpCall *call;

  (void) server;
  ens_http_timers_clear (http->timers, msg);
  call = g_hash_table_lookup (http->calls, msg);
  if (call)
    call_end (call);
}

static void
on_request_started (SoupServer *server, SoupServerMessage *msg, EnsHttp *http)
{
  (void) server;
  ens_http_timers_start (http->timers, msg);
}

/* ------------------------------------------------------------ its own metrics */

static void
stats_free (RouteStats *st)
{
  g_free (st->key);
  g_free (st);
}

void
ens_http_metrics_text (EnsHttp *http, GString *out)
{
  GHashTableIter iter;
  gpointer value;

  g_string_append (out, "# HELP ensemble_http_requests_total HTTP requests by route and outcome.\n"
                        "# TYPE ensemble_http_requests_total counter\n");
  g_hash_table_iter_init (&iter, http->stats);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      RouteStats *st = value;
      g_string_append_printf (out, "ensemble_http_requests_total{route=\"%s\",outcome=\"ok\"} %" G_GUINT64_FORMAT "\n",
                              st->key, st->count - st->errors);
      g_string_append_printf (out, "ensemble_http_requests_total{route=\"%s\",outcome=\"error\"} %" G_GUINT64_FORMAT "\n",
                              st->key, st->errors);
    }
  g_string_append (out, "# HELP ensemble_http_request_duration_seconds Time from request to response.\n"
                        "# TYPE ensemble_http_request_duration_seconds histogram\n");
  g_hash_table_iter_init (&iter, http->stats);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      RouteStats *st = value;
      for (guint i = 0; i < N_BUCKETS; i++)
        g_string_append_printf (out, "ensemble_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %" G_GUINT64_FORMAT "\n",
                                st->key, latency_buckets[i], st->buckets[i]);
      g_string_append_printf (out, "ensemble_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" G_GUINT64_FORMAT "\n",
                              st->key, st->count);
      g_string_append_printf (out, "ensemble_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", st->key, st->sum);
      g_string_append_printf (out, "ensemble_http_request_duration_seconds_count{route=\"%s\"} %" G_GUINT64_FORMAT "\n",
                              st->key, st->count);
    }
  g_string_append_printf (out,
                          "# HELP ensemble_http_open_requests Requests in progress (SSE streams included).\n"
                          "# TYPE ensemble_http_open_requests gauge\nensemble_http_open_requests %u\n"
                          "# HELP ensemble_http_refused_total Requests refused before their handler.\n"
                          "# TYPE ensemble_http_refused_total counter\n"
                          "ensemble_http_refused_total{reason=\"unauthorized\"} %" G_GUINT64_FORMAT "\n"
                          "ensemble_http_refused_total{reason=\"not_found\"} %" G_GUINT64_FORMAT "\n"
                          "ensemble_http_refused_total{reason=\"too_large\"} %" G_GUINT64_FORMAT "\n"
                          "ensemble_http_refused_total{reason=\"timeout\"} %" G_GUINT64_FORMAT "\n",
                          g_hash_table_size (http->calls), http->unauthorized, http->not_found, http->too_large,
                          http->timed_out);
}

/* ------------------------------------------------------------ plugin */

static gboolean
is_loopback (const char *address)
{
  g_autoptr (GInetAddress) a = g_inet_address_new_from_string (address);
  return a != NULL && g_inet_address_get_is_loopback (a);
}

static void http_stop (gpointer instance);

static gpointer
http_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  EnsHttp *http = g_new0 (EnsHttp, 1);
  g_autoptr (GInetAddress) inet = NULL;
  const EnsHttpRoute *const tables[] = { ens_http_routes_native, ens_http_routes_ksi, ens_http_routes_neolith,
                                         ens_http_routes_rhetor, ens_http_routes_openai, ens_http_routes_embeddings,
                                         ens_http_routes_console, ens_http_routes_mcp, ens_http_routes_metrics,
                                         ens_http_routes_meta };

  http->host = host;
  http->self = self;
  http->routes = g_ptr_array_new ();
  http->stats = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) stats_free);
  http->calls = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) call_free);
  http->mcp = ens_http_mcp_new ();
  http->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) cached_answer_free);
  http->by_first = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  for (guint t = 0; t < G_N_ELEMENTS (tables); t++)
    for (const EnsHttpRoute *r = tables[t]; r->method; r++)
      {
        /* Every pattern starts with a literal segment ("" for "/"). */
        const char *first = r->path + 1;
        char *key = g_strndup (first, strcspn (first, "/"));
        GPtrArray *same = g_hash_table_lookup (http->by_first, key);

        g_assert (key[0] != '{');
        if (same == NULL)
          g_hash_table_insert (http->by_first, g_strdup (key), (same = g_ptr_array_new ()));
        g_ptr_array_add (same, (gpointer) r);
        g_ptr_array_add (http->routes, (gpointer) r);
        g_free (key);
      }

  http->address = ens_host_config_string (host, self, "http-address", "127.0.0.1");
  http->port = ens_host_config_uint (host, self, "http-port", 8090);
  http->cors_origins = ens_host_config_strv (host, self, "http-cors-origins");
  http->max_body = ens_host_config_uint (host, self, "http-max-body-bytes", 4194304);
  http->request_timeout_ms = ens_host_config_uint (host, self, "http-request-timeout-ms", 30000);
  http->timers = ens_http_timers_new (http->request_timeout_ms, &http->timed_out);
  if (!ens_host_config_token (host, self, "http-token-file", &http->token, error))
    goto fail;
  inet = g_inet_address_new_from_string (http->address);
  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "http-address %s is not an IP address", http->address);
      goto fail;
    }
  if (!is_loopback (http->address) && http->token == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "refusing to serve HTTP on %s without http-token-file: anyone on the network could use the daemon",
                   http->address);
      goto fail;
    }

  http->server = soup_server_new ("server-header", "ensembled/0.1 ", NULL);
  soup_server_add_early_handler (http->server, NULL, handle_early, http, NULL);
  soup_server_add_handler (http->server, NULL, handle, http, NULL);
  ens_ws_attach (http->server, host, self, http->token); /* /ws and /ws/socket/{id} */
  g_signal_connect (http->server, "request-started", G_CALLBACK (on_request_started), http);
  g_signal_connect (http->server, "request-read", G_CALLBACK (on_request_read), http);
  g_signal_connect (http->server, "request-finished", G_CALLBACK (on_request_ended), http);
  g_signal_connect (http->server, "request-aborted", G_CALLBACK (on_request_ended), http);
  if (ens_host_config_bool (host, self, "http-access-log", FALSE))
    ens_http_access_log_attach (http->server, host, self);
  http->listener = ens_listener_new (http->server, inet, http->port, error);
  if (http->listener == NULL)
    goto fail;
  http->port = ens_listener_get_port (http->listener);
  http->base_url = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6
                     ? g_strdup_printf ("http://[%s]:%u", http->address, http->port)
                     : g_strdup_printf ("http://%s:%u", http->address, http->port);
  ENS_LOG (host, self, G_LOG_LEVEL_MESSAGE, "listening on %s%s", http->base_url,
           http->token ? " (bearer token required)" : "");
  return http;

fail:
  http_stop (http);
  return NULL;
}

static void
http_stop (gpointer instance)
{
  EnsHttp *http = instance;

  if (http->server)
    {
      ens_http_access_log_detach (http->server);
      ens_ws_detach (http->server); /* closes the WebSocket connections and their clients */
      /* Requests under way end as their connections are about to. */
      {
        g_autoptr (GList) open = g_hash_table_get_values (http->calls);
        for (GList *l = open; l; l = l->next)
          call_end (l->data);
      }
      soup_server_disconnect (http->server);
      g_signal_handlers_disconnect_by_data (http->server, http);
    }
  g_clear_pointer (&http->listener, ens_listener_free);
  /* MCP sessions end (their answers still due are dropped), then the calls. */
  g_clear_pointer (&http->mcp, ens_http_mcp_free);
  /* Calls still open (SSE streams): their clients close now. */
  g_hash_table_remove_all (http->calls);
  g_clear_object (&http->server);
  g_hash_table_unref (http->calls);
  g_clear_pointer (&http->timers, ens_http_timers_free);
  g_hash_table_unref (http->stats);
  g_ptr_array_unref (http->routes);
  g_hash_table_unref (http->by_first);
  g_hash_table_unref (http->cache);
  g_strfreev (http->cors_origins);
  g_free (http->token);
  g_free (http->address);
  g_free (http->base_url);
  g_free (http);
}

static JsonNode *
http_describe (gpointer instance)
{
  EnsHttp *http = instance;
  JsonObject *obj = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (obj, "url", http->base_url);
  json_object_set_boolean_member (obj, "token_required", http->token != NULL);
  json_object_set_int_member (obj, "routes", http->routes->len);
  json_object_set_int_member (obj, "requests", http->requests);
  json_object_set_int_member (obj, "open_requests", g_hash_table_size (http->calls));
  json_object_set_int_member (obj, "events_dropped", http->events_dropped);
  json_object_set_int_member (obj, "mcp_sessions", ens_http_mcp_n_sessions (http->mcp));
  json_object_set_int_member (obj, "connections", http->listener ? ens_listener_get_n_connections (http->listener) : 0);
  json_node_take_object (node, obj);
  return node;
}

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-http", "0.1.0",
                   "HTTP: native REST, Centerfire, KSI, Neolith, Rhetor and OpenAI-compatible routes",
                   ENS_PLUGIN_FLAG_NONE, http_init, http_stop, http_describe, NULL)
