/* ens-http-private.h — inside the transport-http plugin only (not the routes
 * library, not the fuzz targets): the instance, one request in flight, and
 * what the plugin's files tell each other.
 *
 *   ens-transport-http.c  the plugin: settings, the SoupServer, which route
 *                         serves a request, who may reach it, its metrics;
 *   ens-http-call.c       a request in flight (ens-http.h's EnsHttpCall):
 *                         its answer, its client in the core, SSE;
 *   ens-http-conn.c       connections served without libsoup, as long as
 *                         their requests are plain (see there). */
#pragma once

#include "ens-http.h"
#include "ens-http-sse.h"
#include "ens-http-timers.h"
#include "ens-listener.h"

#define ENS_HTTP_N_BUCKETS 12

typedef struct {
  char *key; /* "GET /api/agents" */
  guint64 count, errors;
  guint64 buckets[ENS_HTTP_N_BUCKETS];
  double sum;
} EnsHttpRouteStats;

typedef struct _EnsHttpConn EnsHttpConn; /* ens-http-conn.c */

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
  char *server_header;     /* what libsoup sends as Server:, sent alike without it */
  guint max_body;
  guint request_timeout_ms;
  gboolean access_log;     /* http-access-log */
  GPtrArray *routes;       /* const EnsHttpRoute*, all tables */
  GHashTable *by_first;    /* a path's first segment -> GPtrArray of the routes that start with it, in order */
  GHashTable *stats;       /* const EnsHttpRoute* (NULL: unmatched) -> EnsHttpRouteStats */
  GHashTable *calls;       /* SoupServerMessage* (own connections: the call itself) -> its live EnsHttpCall* */
  GHashTable *conns;       /* EnsHttpConn* served without libsoup (owned) */
  EnsHttpTimers *timers;   /* one a request, until it is read */
  EnsHttpMcp *mcp;         /* sessions of /mcp */
  GHashTable *cache;       /* key -> CachedAnswer */
  guint64 generation;      /* requests that reached the core (health aside) */
  guint64 requests, unauthorized, not_found, too_large, timed_out, events_dropped;
  guint64 conns_served, handed_over; /* own connections: requests served, connections given to libsoup */
  const EnsHttpRoute *plain[4];       /* the routes own connections serve (ens-http-conn.c) */
  char date[40];                      /* Date: of this second */
  gint64 date_second;
};

struct _EnsHttpCall {
  EnsHttp *http;
  SoupServerMessage *msg;  /* NULL on an own connection */
  EnsHttpConn *conn;       /* the own connection, or NULL */
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
  gboolean read_text; /* ens_http_read_text() */
  /* Own connection only. */
  char *request_body;       /* NUL-terminated copy */
  char *request_id;         /* X-Request-Id as sent, or NULL */
  gsize request_len;
  GData *attached;          /* ens_http_attach() */
  const char *authenticate; /* a WWW-Authenticate to send, static */
  guint depth;              /* route code under way on this call: it may not end yet */
  gsize response_bytes;     /* the answer's body, for the access log */
};

/* ens-http-call.c: a new call of @http; @msg (transfer none, referenced)
 * or @conn: exactly one of them.  Registered in http->calls. */
EnsHttpCall *ens_http_call_new (EnsHttp *http, SoupServerMessage *msg, EnsHttpConn *conn);
/* The request ended (answered, or its client went away): stats, the
 * disconnect callback if it was still due, and the call is freed. */
void ens_http_call_end (EnsHttpCall *call);
/* The free function of http->cache's values. */
void ens_http_cached_answer_free (gpointer answer);
/* The free function of http->calls. */
void ens_http_call_free (EnsHttpCall *call);

/* ens-transport-http.c: runs @call's route, once its route is set: 401 if
 * the caller may not reach it (@authorization: the request's header, or
 * NULL), else the handler. */
void ens_http_run (EnsHttpCall *call, const char *authorization);
/* The x-request-id of an answer: @given when it is a valid one (1-128 of
 * [A-Za-z0-9._:-]), else one made in @made ("req_" and 16 hex digits). */
#define ENS_HTTP_REQUEST_ID_SIZE 21
const char *ens_http_request_id (const char *given, char made[ENS_HTTP_REQUEST_ID_SIZE]);
/* Counts the call in the route's metrics. */
void ens_http_record_stats (EnsHttpCall *call);
/* (transfer none) the route serving exactly @method @path, or NULL. */
const EnsHttpRoute *ens_http_route_exact (EnsHttp *http, const char *method, const char *path);

/* ens-http-conn.c: the listener's accept function (@data: the EnsHttp). */
void ens_http_conn_accept (EnsListenerStream *stream, gpointer data);
/* Writes @call's answer on its own connection: @status, @content_type,
 * then @body (@len bytes, copied). */
void ens_http_conn_answer (EnsHttpCall *call, const char *content_type, const char *body, gsize len);
/* (transfer none) the connection under @call, an own connection's call. */
EnsListenerStream *ens_http_conn_stream (EnsHttpCall *call);
/* The peer of @call's own connection ("http:127.0.0.1:40000"), (transfer full). */
char *ens_http_conn_peer (EnsHttpCall *call);
/* Route code on @call returned: the call ends if it was answered. */
void ens_http_conn_settle (EnsHttpCall *call);
/* Closes every own connection (their calls end). */
void ens_http_conns_close (EnsHttp *http);
