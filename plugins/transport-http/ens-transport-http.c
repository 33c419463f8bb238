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

#include "ens-http-private.h"
#include "ens-http-access-log.h"
#include "ens-ws.h"
#include "ens-host-config.h"
#include "ens-json-util.h"

#include <string.h>

static const double latency_buckets[ENS_HTTP_N_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                            0.05,   0.1,   0.25,   0.5,   1.0,  5.0 };

/* ------------------------------------------------------------ routing */

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
token_matches (EnsHttp *http, const char *auth)
{
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

/* NULL when @call may reach a route that is not public, else why not
 * (transfer full).  With a token, the token decides.  Without one the
 * daemon listens on loopback only, and serves there what its Unix sockets
 * serve: its own user and root (the kernel names the connection's user). */
static char *
refusal (EnsHttpCall *call, const char *authorization)
{
  EnsHttp *http = call->http;
  g_autoptr (GError) error = NULL;

  if (http->token)
    return token_matches (http, authorization) ? NULL : g_strdup ("a valid bearer token is required");
  if (call->msg ? ens_listener_peer_is_trusted (call->msg, &error)
                : ens_listener_stream_peer_is_trusted (ens_http_conn_stream (call), &error))
    return NULL;
  return g_strdup_printf ("without http-token-file only the daemon's own user and root are served; %s",
                          error->message);
}

void
ens_http_run (EnsHttpCall *call, const char *authorization)
{
  EnsHttp *http = call->http;
  g_autofree char *why = NULL;

  if (!call->route->public && (why = refusal (call, authorization)) != NULL)
    {
      http->unauthorized++;
      if (call->msg)
        soup_message_headers_replace (soup_server_message_get_response_headers (call->msg), "WWW-Authenticate",
                                      "Bearer realm=\"ensemble\"");
      call->authenticate = "Bearer realm=\"ensemble\"";
      /* OpenAI's clients read their own error shape. */
      if (g_strcmp0 (call->route->tag, "openai") == 0)
        ens_http_openai_reply_error (call, 401, "authentication_error", why, "invalid_api_key");
      else
        ens_http_reply_error (call, 401, "UNAUTHORIZED", why, NULL);
      return;
    }
  call->route->handler (call);
}

const EnsHttpRoute *
ens_http_route_exact (EnsHttp *http, const char *method, const char *path)
{
  for (guint i = 0; i < http->routes->len; i++)
    {
      const EnsHttpRoute *route = g_ptr_array_index (http->routes, i);
      if (strcmp (route->method, method) == 0 && strcmp (route->path, path) == 0)
        return route;
    }
  return NULL;
}

static void
handle (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  EnsHttp *http = user_data;
  const char *method = soup_server_message_get_method (msg);
  EnsHttpCall *call = ens_http_call_new (http, msg, NULL); /* ends with the request (on_request_ended) */
  g_auto (GStrv) segments = g_strsplit (path[0] == '/' ? path + 1 : path, "/", -1);
  gboolean path_known = FALSE;
  GPtrArray *candidates;

  (void) server;
  http->requests++;
  call->query = query ? g_hash_table_ref (query) : NULL;

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
  ens_http_run (call, soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization"));
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

const char *
ens_http_request_id (const char *given, char made[ENS_HTTP_REQUEST_ID_SIZE])
{
  static const char hex[] = "0123456789abcdef";
  guint64 r;

  if (request_id_valid (given))
    return given;
  r = ((guint64) g_random_int () << 32) | g_random_int ();
  memcpy (made, "req_", 4);
  for (int i = 0; i < 16; i++)
    made[4 + i] = hex[(r >> (60 - 4 * i)) & 0xf];
  made[20] = '\0';
  return made;
}

/* Every answer carries an x-request-id: the client's own when it sent a
 * valid one, else one made here. */
static void
set_request_id (SoupServerMessage *msg)
{
  const char *given = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "X-Request-Id");
  char made[ENS_HTTP_REQUEST_ID_SIZE];

  /* The first response header set: nothing to replace. */
  soup_message_headers_append (soup_server_message_get_response_headers (msg), "x-request-id",
                               ens_http_request_id (given, made));
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
    ens_http_call_end (call);
}

static void
on_request_started (SoupServer *server, SoupServerMessage *msg, EnsHttp *http)
{
  (void) server;
  ens_http_timers_start (http->timers, msg);
}

/* ------------------------------------------------------------ its own metrics */

void
ens_http_record_stats (EnsHttpCall *call)
{
  EnsHttpRouteStats *st = g_hash_table_lookup (call->http->stats, call->route);
  double seconds = (g_get_monotonic_time () - call->started_us) / 1e6;

  if (st == NULL)
    {
      st = g_new0 (EnsHttpRouteStats, 1);
      st->key = g_strdup_printf ("%s %s", call->route ? call->route->method : "-",
                                 call->route ? call->route->path : "unmatched");
      g_hash_table_insert (call->http->stats, (gpointer) call->route, st);
    }
  st->count++;
  if (call->status >= 400)
    st->errors++;
  st->sum += seconds;
  for (guint i = 0; i < ENS_HTTP_N_BUCKETS; i++)
    if (seconds <= latency_buckets[i])
      st->buckets[i]++;
}

static void
stats_free (EnsHttpRouteStats *st)
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
      EnsHttpRouteStats *st = value;
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
      EnsHttpRouteStats *st = value;
      for (guint i = 0; i < ENS_HTTP_N_BUCKETS; i++)
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
  http->calls = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) ens_http_call_free);
  http->conns = g_hash_table_new (g_direct_hash, g_direct_equal);
  http->mcp = ens_http_mcp_new ();
  http->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, ens_http_cached_answer_free);
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
  g_object_get (http->server, "server-header", &http->server_header, NULL); /* libsoup's product appended */
  soup_server_add_early_handler (http->server, NULL, handle_early, http, NULL);
  soup_server_add_handler (http->server, NULL, handle, http, NULL);
  ens_ws_attach (http->server, host, self, http->token); /* /ws and /ws/socket/{id} */
  g_signal_connect (http->server, "request-started", G_CALLBACK (on_request_started), http);
  g_signal_connect (http->server, "request-read", G_CALLBACK (on_request_read), http);
  g_signal_connect (http->server, "request-finished", G_CALLBACK (on_request_ended), http);
  g_signal_connect (http->server, "request-aborted", G_CALLBACK (on_request_ended), http);
  http->access_log = ens_host_config_bool (host, self, "http-access-log", FALSE);
  if (http->access_log)
    ens_http_access_log_attach (http->server, host, self);
  http->listener = ens_listener_new (http->server, inet, http->port, error);
  if (http->listener == NULL)
    goto fail;
  ens_listener_set_accept_func (http->listener, ens_http_conn_accept, http);
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
      ens_http_conns_close (http);
      {
        g_autoptr (GList) open = g_hash_table_get_values (http->calls);
        for (GList *l = open; l; l = l->next)
          ens_http_call_end (l->data);
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
  g_clear_pointer (&http->conns, g_hash_table_unref);
  g_free (http->server_header);
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
  /* Plain requests are served without libsoup (ens-http-conn.c) until a
   * connection sends anything else: then libsoup takes it over. */
  json_object_set_int_member (obj, "requests_served_directly", http->conns_served);
  json_object_set_int_member (obj, "connections_handed_over", http->handed_over);
  json_node_take_object (node, obj);
  return node;
}

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "transport-http", "0.1.0",
                   "HTTP: native REST, Centerfire, KSI, Neolith, Rhetor and OpenAI-compatible routes",
                   ENS_PLUGIN_FLAG_NONE, http_init, http_stop, http_describe, NULL)
